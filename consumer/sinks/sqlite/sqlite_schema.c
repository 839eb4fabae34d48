/*-------------------------------------------------------------------------
 *
 * sqlite_schema.c
 *		The SQLite sink's tables: from relation descriptions to CREATE
 *		TABLE, ADD COLUMN, key rebuilds and renames, and the map from
 *		relation oid to what the sink knows of the table.
 *
 * See sink_sqlite.c for the mapping of tables, keys and values.
 *
 * consumer/sinks/sqlite/sqlite_schema.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/sqlite.h"

static void table_insert(SqliteSink *s, Table *t);
static void table_remove(SqliteSink *s, uint32_t oid);
static bool same_description(const Table *t, const Dsplug__Relation *rel);
static Table *table_from_description(const Dsplug__Relation *rel);
static bool table_exists(SqliteSink *s, const char *name, bool *exists);
static bool create_table(SqliteSink *s, const Table *t);
static bool alter_table(SqliteSink *s, const Table *t, bool known_columns,
						bool *added);
static bool rebuild_table(SqliteSink *s, const Table *t);
static const char *column_type(Dsplug__Kind kind);

/*
 * The one column of a table made for a relation without columns (SQLite
 * needs at least one): always NULL; its rows stand for the source's rows.
 */
#define NO_COLUMNS_PLACEHOLDER	"_dsplug_no_columns"

/* The statements of schema_stmts[], prepared once by lite_prepare_schema */
typedef enum SchemaStmt
{
	LOAD_RELATION,
	SAVE_RELATION,
	SAVE_COPIED,
	LOAD_COLUMN,
	FORGET_COLUMNS,
	SAVE_COLUMN
} SchemaStmt;

static const char *const schema_sql[SCHEMA_STMTS] = {
	[LOAD_RELATION] = "SELECT table_name, copied_lsn FROM _dsplug_relations WHERE oid = ?1",
	[SAVE_RELATION] = "INSERT INTO _dsplug_relations (oid, schema_name, relation_name, table_name) "
	"VALUES (?1, ?2, ?3, ?4) ON CONFLICT (oid) DO UPDATE SET "
	"schema_name = excluded.schema_name, relation_name = excluded.relation_name, "
	"table_name = excluded.table_name",
	[SAVE_COPIED] = "UPDATE _dsplug_relations SET copied_lsn = ?2 WHERE oid = ?1",
	[LOAD_COLUMN] = "SELECT 1 FROM _dsplug_columns WHERE oid = ?1 AND name = ?2",
	[FORGET_COLUMNS] = "DELETE FROM _dsplug_columns WHERE oid = ?1",
	[SAVE_COLUMN] = "INSERT INTO _dsplug_columns (oid, name) VALUES (?1, ?2)",
};

/* ---------------------------------------------------------------------
 * Relations
 * ---------------------------------------------------------------------
 */

/*
 * What the sink remembers of relations, next to the data:
 * _dsplug_relations maps each relation oid to its table (so a renamed
 * source table is followed) and records when its rows were copied;
 * _dsplug_columns lists the columns of its latest description (so a column
 * dropped and added again on the source is told from one that stayed).
 */
bool
lite_prepare_schema(SqliteSink *s)
{
	if (!lite_exec(s, "CREATE TABLE IF NOT EXISTS _dsplug_relations ("
				   "oid INTEGER PRIMARY KEY, "
				   "schema_name TEXT NOT NULL, "
				   "relation_name TEXT NOT NULL, "
				   "table_name TEXT NOT NULL, "
				   "copied_lsn INTEGER NOT NULL DEFAULT 0)",
				   "create the relation table in") ||
		!lite_exec(s, "CREATE TABLE IF NOT EXISTS _dsplug_columns ("
				   "oid INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (oid, name))",
				   "create the column table in"))
		return false;
	for (int i = 0; i < SCHEMA_STMTS; i++)
	{
		if (!lite_prepare(s, schema_sql[i], &s->schema_stmts[i],
						  "prepare a statement on"))
			return false;
	}
	return true;
}

/*
 * Make the table match a description: create it, add columns, rebuild it
 * for a new key, or rename it.  Called inside a transaction.
 */
bool
lite_relation(Sink *sink, const Dsplug__Relation *rel, SinkRelationInfo *info)
{
	SqliteSink *s = sink->private_data;
	Table	   *old = table_lookup(s, rel->oid);
	sqlite3_stmt *load = s->schema_stmts[LOAD_RELATION];
	sqlite3_stmt *save = s->schema_stmts[SAVE_RELATION];
	Table	   *t;
	char	   *mapped = NULL;
	bool		exists;
	int			rc;

	info->created = false;
	info->columns_added = false;
	if (old != NULL && same_description(old, rel))
	{
		info->copied_lsn = old->copied_lsn;
		return true;
	}

	t = table_from_description(rel);

	/* what the database remembers of this oid */
	sqlite3_bind_int64(load, 1, rel->oid);
	rc = sqlite3_step(load);
	if (rc == SQLITE_ROW)
	{
		mapped = xstrdup((const char *) sqlite3_column_text(load, 0));
		t->copied_lsn = (uint64_t) sqlite3_column_int64(load, 1);
	}
	sqlite3_reset(load);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
	{
		lite_fail(s, "look up a relation in");
		goto error;
	}

	if (!table_exists(s, t->name, &exists))
		goto error;

	/* renamed on the source: follow it if the new name is free */
	if (!exists && mapped != NULL && strcmp(mapped, t->name) != 0)
	{
		bool		old_exists;

		if (!table_exists(s, mapped, &old_exists))
			goto error;
		if (old_exists)
		{
			sql_reset(s);
			sql_add(s, "ALTER TABLE ");
			sql_ident(s, mapped);
			sql_add(s, " RENAME TO ");
			sql_ident(s, t->name);
			if (!lite_exec(s, s->sql.data, "rename a table in"))
				goto error;
			exists = true;
		}
	}

	info->created = !exists;
	if (!exists)
	{
		if (!create_table(s, t))
			goto error;
	}
	else if (!alter_table(s, t, mapped != NULL, &info->columns_added))
		goto error;

	sqlite3_bind_int64(save, 1, rel->oid);
	sqlite3_bind_text(save, 2, t->schema, -1, SQLITE_STATIC);
	sqlite3_bind_text(save, 3, t->relname, -1, SQLITE_STATIC);
	sqlite3_bind_text(save, 4, t->name, -1, SQLITE_STATIC);
	if (!lite_step_done(s, save, "record a relation in"))
		goto error;
	sqlite3_bind_int64(s->schema_stmts[FORGET_COLUMNS], 1, rel->oid);
	if (!lite_step_done(s, s->schema_stmts[FORGET_COLUMNS], "record the columns of a relation in"))
		goto error;
	for (int c = 0; c < t->ncols; c++)
	{
		sqlite3_bind_int64(s->schema_stmts[SAVE_COLUMN], 1, rel->oid);
		sqlite3_bind_text(s->schema_stmts[SAVE_COLUMN], 2, t->cols[c].name, -1,
						  SQLITE_STATIC);
		if (!lite_step_done(s, s->schema_stmts[SAVE_COLUMN],
							"record the columns of a relation in"))
			goto error;
	}

	if (old != NULL)
		table_remove(s, rel->oid);
	table_insert(s, t);
	info->copied_lsn = t->copied_lsn;
	free(mapped);
	return true;

error:
	free(mapped);
	table_free(t);
	return false;
}

bool
lite_set_copied(Sink *sink, const Dsplug__Relation *rel, uint64_t lsn)
{
	SqliteSink *s = sink->private_data;
	Table	   *t = table_lookup(s, rel->oid);
	sqlite3_stmt *stmt = s->schema_stmts[SAVE_COPIED];

	sqlite3_bind_int64(stmt, 1, rel->oid);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64) lsn);
	if (!lite_step_done(s, stmt, "record a copied relation in"))
		return false;
	if (t != NULL)
		t->copied_lsn = lsn;
	return true;
}

/* Is t still what rel describes?  (Names, kinds, keys.) */
static bool
same_description(const Table *t, const Dsplug__Relation *rel)
{
	if ((size_t) t->ncols != rel->n_columns ||
		t->identity != (int) rel->replica_identity ||
		strcmp(t->schema, rel->schema) != 0 ||
		strcmp(t->relname, rel->name) != 0)
		return false;
	for (int c = 0; c < t->ncols; c++)
	{
		const Dsplug__Column *col = rel->columns[c];

		if (strcmp(t->cols[c].name, col->name) != 0 ||
			t->cols[c].kind != col->kind ||
			t->cols[c].identity != col->key ||
			t->cols[c].primary_key != col->primary_key)
			return false;
	}
	return true;
}

/*
 * The mapping of a description (see the file header for the key).  The
 * result is owned by the caller until table_insert hands it to the sink.
 */
static Table *
table_from_description(const Dsplug__Relation *rel)
{
	Table	   *t = xmalloc(sizeof(Table));
	bool		by_identity;
	size_t		len;

	memset(t, 0, sizeof(Table));
	t->oid = rel->oid;
	t->schema = xstrdup(rel->schema);
	t->relname = xstrdup(rel->name);
	t->identity = (int) rel->replica_identity;
	len = strlen(rel->schema) + 1 + strlen(rel->name) + 1;
	t->name = xmalloc(len);
	snprintf(t->name, len, "%s_%s", rel->schema, rel->name);

	by_identity = rel->replica_identity == DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_DEFAULT ||
		rel->replica_identity == DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_INDEX;
	t->ncols = (int) rel->n_columns;
	t->cols = xmalloc(sizeof(TableColumn) * (rel->n_columns + 1));
	for (size_t c = 0; c < rel->n_columns; c++)
	{
		const Dsplug__Column *col = rel->columns[c];
		TableColumn *tc = &t->cols[c];

		tc->name = xstrdup(col->name);
		tc->kind = col->kind;
		tc->identity = col->key;
		tc->primary_key = col->primary_key;
		tc->key = by_identity ? col->key : col->primary_key;
		if (tc->key)
			t->nkeys++;
	}
	return t;
}

static const char *
column_type(Dsplug__Kind kind)
{
	switch (kind)
	{
		case DSPLUG__KIND__KIND_INT:
		case DSPLUG__KIND__KIND_BOOL:
			return "INTEGER";
		case DSPLUG__KIND__KIND_FLOAT4:
		case DSPLUG__KIND__KIND_FLOAT8:
			return "REAL";
		case DSPLUG__KIND__KIND_BYTEA:
			return "BLOB";
		default:
			return "TEXT";
	}
}

static bool
table_exists(SqliteSink *s, const char *name, bool *exists)
{
	sqlite3_stmt *stmt;
	int			rc;

	if (!lite_prepare(s, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
				 &stmt, "look up a table in"))
		return false;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return lite_fail(s, "look up a table in");
	*exists = (rc == SQLITE_ROW);
	return true;
}

/*
 * CREATE TABLE with the description's columns and key, or with only the
 * placeholder column for a relation without columns.
 */
static bool
create_table(SqliteSink *s, const Table *t)
{
	bool		first = true;

	sql_reset(s);
	sql_add(s, "CREATE TABLE ");
	sql_ident(s, t->name);
	sql_add(s, " (");
	if (t->ncols == 0)
	{
		sql_ident(s, NO_COLUMNS_PLACEHOLDER);
		sql_add(s, " INTEGER");
	}
	for (int c = 0; c < t->ncols; c++)
	{
		if (c > 0)
			sql_add(s, ", ");
		sql_ident(s, t->cols[c].name);
		sql_add(s, " ");
		sql_add(s, column_type(t->cols[c].kind));
	}
	if (t->nkeys > 0)
	{
		sql_add(s, ", PRIMARY KEY (");
		for (int c = 0; c < t->ncols; c++)
		{
			if (!t->cols[c].key)
				continue;
			if (!first)
				sql_add(s, ", ");
			sql_ident(s, t->cols[c].name);
			first = false;
		}
		sql_add(s, ")");
	}
	sql_add(s, ")");
	return lite_exec(s, s->sql.data, "create a table in");
}

/*
 * Bring an existing table up to a description: add the columns it lacks,
 * and rebuild it when its key is not the description's.  A column that is
 * new to the relation (*added) gets NULL in the existing rows, as after
 * ADD COLUMN: either the table lacked it, or it holds a column of that
 * name that the source dropped and has now added again (known_columns:
 * _dsplug_columns says which columns the last description had).
 */
static bool
alter_table(SqliteSink *s, const Table *t, bool known_columns, bool *added)
{
	sqlite3_stmt *stmt;
	bool		key_differs = false;
	uint8_t    *present = xmalloc((size_t) t->ncols + 1);
	int			rc;

	memset(present, 0, (size_t) t->ncols + 1);
	if (!lite_prepare(s, "SELECT name, pk FROM pragma_table_info(?1)", &stmt,
					  "read the columns of a table in"))
	{
		free(present);
		return false;
	}
	sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
	{
		const char *name = (const char *) sqlite3_column_text(stmt, 0);
		bool		in_pk = sqlite3_column_int(stmt, 1) > 0;
		bool		found = false;

		for (int c = 0; c < t->ncols; c++)
		{
			if (strcmp(t->cols[c].name, name) == 0)
			{
				present[c] = 1;
				found = true;
				if (in_pk != t->cols[c].key)
					key_differs = true;
			}
		}
		if (!found && in_pk)
			key_differs = true;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
	{
		free(present);
		return lite_fail(s, "read the columns of a table in");
	}

	for (int c = 0; c < t->ncols && known_columns; c++)
	{
		sqlite3_stmt *load = s->schema_stmts[LOAD_COLUMN];

		if (!present[c])
			continue;
		sqlite3_bind_int64(load, 1, t->oid);
		sqlite3_bind_text(load, 2, t->cols[c].name, -1, SQLITE_STATIC);
		rc = sqlite3_step(load);
		sqlite3_reset(load);
		if (rc == SQLITE_DONE)
		{
			/* dropped on the source and added again: forget old values */
			sql_reset(s);
			sql_add(s, "UPDATE ");
			sql_ident(s, t->name);
			sql_add(s, " SET ");
			sql_ident(s, t->cols[c].name);
			sql_add(s, " = NULL");
			if (!lite_exec(s, s->sql.data, "reset a column in"))
			{
				free(present);
				return false;
			}
			*added = true;
		}
		else if (rc != SQLITE_ROW)
		{
			free(present);
			return lite_fail(s, "look up a column in");
		}
	}

	for (int c = 0; c < t->ncols; c++)
	{
		if (present[c])
			continue;
		/* a new key column cannot be added in place: the rebuild adds it */
		if (t->cols[c].key)
			key_differs = true;
		sql_reset(s);
		sql_add(s, "ALTER TABLE ");
		sql_ident(s, t->name);
		sql_add(s, " ADD COLUMN ");
		sql_ident(s, t->cols[c].name);
		sql_add(s, " ");
		sql_add(s, column_type(t->cols[c].kind));
		if (!lite_exec(s, s->sql.data, "add a column in"))
		{
			free(present);
			return false;
		}
		*added = true;
	}
	free(present);

	if (key_differs)
		return rebuild_table(s, t);
	return true;
}

/*
 * SQLite cannot change a primary key in place: copy the table into one
 * with the new key, keeping every column it has (dropped ones too).  Rows
 * that collide on the new key can only be stale copies of one source row,
 * so the last one wins.
 */
static bool
rebuild_table(SqliteSink *s, const Table *t)
{
	static const char tmpname[] = "_dsplug_rebuild";
	sqlite3_stmt *stmt;
	WireText	cols;
	bool		first = true;
	bool		ok;
	int			rc;

	wire_text_init(&cols, NULL);
	sql_reset(s);
	sql_add(s, "CREATE TABLE ");
	sql_ident(s, tmpname);
	sql_add(s, " (");
	if (!lite_prepare(s, "SELECT name, type FROM pragma_table_info(?1)", &stmt,
				 "read the columns of a table in"))
		return false;
	sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
	{
		const char *name = (const char *) sqlite3_column_text(stmt, 0);
		const char *type = (const char *) sqlite3_column_text(stmt, 1);

		if (!first)
		{
			sql_add(s, ", ");
			text_add(&cols, ", ");
		}
		sql_ident(s, name);
		sql_add(s, " ");
		sql_add(s, type);
		text_ident(&cols, name);
		first = false;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
	{
		wire_text_free(&cols);
		return lite_fail(s, "read the columns of a table in");
	}
	if (t->nkeys > 0)
	{
		sql_add(s, ", PRIMARY KEY (");
		first = true;
		for (int c = 0; c < t->ncols; c++)
		{
			if (!t->cols[c].key)
				continue;
			if (!first)
				sql_add(s, ", ");
			sql_ident(s, t->cols[c].name);
			first = false;
		}
		sql_add(s, ")");
	}
	sql_add(s, ")");
	ok = lite_exec(s, s->sql.data, "rebuild a table in");

	if (ok)
	{
		sql_reset(s);
		sql_add(s, "INSERT OR REPLACE INTO ");
		sql_ident(s, tmpname);
		sql_add(s, " (");
		sql_add(s, cols.data);
		sql_add(s, ") SELECT ");
		sql_add(s, cols.data);
		sql_add(s, " FROM ");
		sql_ident(s, t->name);
		ok = lite_exec(s, s->sql.data, "rebuild a table in");
	}
	if (ok)
	{
		sql_reset(s);
		sql_add(s, "DROP TABLE ");
		sql_ident(s, t->name);
		ok = lite_exec(s, s->sql.data, "rebuild a table in");
	}
	if (ok)
	{
		sql_reset(s);
		sql_add(s, "ALTER TABLE ");
		sql_ident(s, tmpname);
		sql_add(s, " RENAME TO ");
		sql_ident(s, t->name);
		ok = lite_exec(s, s->sql.data, "rebuild a table in");
	}
	wire_text_free(&cols);
	return ok;
}

/* ---------------------------------------------------------------------
 * The table map (oid -> Table), open addressing
 * ---------------------------------------------------------------------
 */

static size_t
oid_hash(uint32_t oid)
{
	return (size_t) (oid * UINT32_C(2654435761));
}

Table *
table_lookup(SqliteSink *s, uint32_t oid)
{
	size_t		mask = s->nslots - 1;

	if (s->last != NULL && s->last->oid == oid)
		return s->last;
	if (s->nslots == 0)
		return NULL;
	for (size_t h = oid_hash(oid) & mask;; h = (h + 1) & mask)
	{
		if (s->tables[h] == NULL)
			return NULL;
		if (s->tables[h]->oid == oid)
		{
			s->last = s->tables[h];
			return s->last;
		}
	}
}

static void
table_insert(SqliteSink *s, Table *t)
{
	if ((s->ntables + 1) * 2 > s->nslots)
	{
		size_t		newn = s->nslots > 0 ? s->nslots * 2 : 64;
		Table	  **newtab = xmalloc(newn * sizeof(Table *));

		memset(newtab, 0, newn * sizeof(Table *));
		for (size_t i = 0; i < s->nslots; i++)
		{
			size_t		h;

			if (s->tables[i] == NULL)
				continue;
			for (h = oid_hash(s->tables[i]->oid) & (newn - 1); newtab[h] != NULL;
				 h = (h + 1) & (newn - 1))
				;
			newtab[h] = s->tables[i];
		}
		free(s->tables);
		s->tables = newtab;
		s->nslots = newn;
	}
	for (size_t h = oid_hash(t->oid) & (s->nslots - 1);; h = (h + 1) & (s->nslots - 1))
	{
		if (s->tables[h] == NULL)
		{
			s->tables[h] = t;
			s->ntables++;
			return;
		}
	}
}

/* Remove and free; later entries of the probe chain are put back. */
static void
table_remove(SqliteSink *s, uint32_t oid)
{
	size_t		mask = s->nslots - 1;
	size_t		h;

	if (s->nslots == 0)
		return;
	for (h = oid_hash(oid) & mask; s->tables[h] != NULL; h = (h + 1) & mask)
	{
		if (s->tables[h]->oid == oid)
			break;
	}
	if (s->tables[h] == NULL)
		return;
	if (s->last == s->tables[h])
		s->last = NULL;
	table_free(s->tables[h]);
	s->tables[h] = NULL;
	s->ntables--;
	for (h = (h + 1) & mask; s->tables[h] != NULL; h = (h + 1) & mask)
	{
		Table	   *moved = s->tables[h];

		s->tables[h] = NULL;
		s->ntables--;
		table_insert(s, moved);
	}
}

void
table_free(Table *t)
{
	Stmt	   *st;

	if (t == NULL)
		return;
	while ((st = t->stmts) != NULL)
	{
		t->stmts = st->next;
		sqlite3_finalize(st->stmt);
		free(st->write);
		free(st->match);
		free(st);
	}
	for (int c = 0; c < t->ncols; c++)
		free(t->cols[c].name);
	free(t->cols);
	free(t->schema);
	free(t->relname);
	free(t->name);
	free(t);
}

void
forget_tables(SqliteSink *s)
{
	for (size_t i = 0; i < s->nslots; i++)
	{
		table_free(s->tables[i]);
		s->tables[i] = NULL;
	}
	s->ntables = 0;
	s->last = NULL;
}

