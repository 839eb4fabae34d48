/*-------------------------------------------------------------------------
 *
 * sqlite.h
 *		Private declarations of the SQLite sink, shared by sink_sqlite.c
 *		(opening, transactions, changes, statements), sqlite_schema.c
 *		(relations: tables, columns, keys) and sqlite_sql.c (SQL helpers).
 *
 * consumer/sinks/sqlite/sqlite.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_SINK_SQLITE_H
#define DSPLUG_SINK_SQLITE_H

#include <sqlite3.h>

#include "common/common.h"
#include "sinks/sink.h"
#include "wire_text.h"

/* statements sqlite_schema.c prepares once (SchemaStmt) */
#define SCHEMA_STMTS	6

/* What a prepared statement does; statements are cached by op and shape. */
typedef enum StmtOp
{
	OP_UPSERT,					/* insert, or update the row with the key */
	OP_INSERT,					/* append (tables without a key) */
	OP_MOVE,					/* update the row found by the old key */
	OP_DELETE,					/* delete the row with the key */
	OP_UPDATE_MATCH,			/* update one row equal to the old row */
	OP_DELETE_MATCH				/* delete one row equal to the old row */
} StmtOp;

/*
 * A prepared statement for one op and shape.  write[] says which columns
 * the statement writes (all but unchanged TOAST), match[] which columns of
 * the old row it compares (OP_*_MATCH: those with a value or NULL).
 */
typedef struct Stmt
{
	struct Stmt *next;
	StmtOp		op;
	uint8_t    *write;			/* ncols flags, or NULL: none */
	uint8_t    *match;			/* ncols flags, or NULL: none */
	sqlite3_stmt *stmt;
} Stmt;

/* A column of the latest description. */
typedef struct TableColumn
{
	char	   *name;
	Dsplug__Kind kind;
	bool		key;			/* part of the table's key (see header) */
	bool		primary_key;	/* Column.primary_key, to compare descriptions */
	bool		identity;		/* Column.key, to compare descriptions */
} TableColumn;

/*
 * A source relation as this sink maps it, from its latest description.
 * Rebuilt whenever a description differs from the one it was built from.
 */
typedef struct Table
{
	uint32_t	oid;
	char	   *schema;			/* source schema and name */
	char	   *relname;
	int			identity;		/* Dsplug__ReplicaIdentity */
	char	   *name;			/* SQLite table name */
	int			ncols;
	TableColumn *cols;
	int			nkeys;			/* 0: no key */
	uint64_t	copied_lsn;
	Stmt	   *stmts;
	bool		warned;			/* the no-key warning was given */
} Table;

typedef struct SqliteSink
{
	sqlite3    *db;
	char	   *path;
	int			lock_fd;
	char	   *slot;			/* slot recorded in _dsplug_state */
	bool		in_txn;
	uint64_t	committed_lsn;	/* end LSN in _dsplug_state, committed */

	/* tables by oid: open addressing, a power of two slots */
	Table	  **tables;
	size_t		ntables;
	size_t		nslots;
	Table	   *last;			/* the last table looked up */

	sqlite3_stmt *save_state;
	sqlite3_stmt *schema_stmts[SCHEMA_STMTS];	/* sqlite_schema.c's */

	WireText	sql;			/* statement text being built */
	WireText	value;			/* a value's text being rendered */
} SqliteSink;

/* sqlite_schema.c */
extern bool lite_relation(Sink *sink, const Dsplug__Relation *rel,
						  SinkRelationInfo *info);
extern bool lite_set_copied(Sink *sink, const Dsplug__Relation *rel,
							uint64_t lsn);
extern bool lite_prepare_schema(SqliteSink *s);
extern Table *table_lookup(SqliteSink *s, uint32_t oid);
extern void table_free(Table *t);
extern void forget_tables(SqliteSink *s);

/* sqlite_sql.c: statements and errors */
extern bool lite_exec(SqliteSink *s, const char *sql, const char *what);
extern bool lite_prepare(SqliteSink *s, const char *sql, sqlite3_stmt **stmt,
						 const char *what);
extern bool lite_step_done(SqliteSink *s, sqlite3_stmt *stmt,
						   const char *what);
extern bool lite_fail(SqliteSink *s, const char *what);
extern void sql_reset(SqliteSink *s);
extern void sql_add(SqliteSink *s, const char *text);
extern void sql_ident(SqliteSink *s, const char *ident);
extern void text_add(WireText *text, const char *str);
extern void text_ident(WireText *text, const char *ident);

#endif							/* DSPLUG_SINK_SQLITE_H */
