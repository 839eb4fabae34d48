/*-------------------------------------------------------------------------
 *
 * copy.c
 *		Tables read under an exported snapshot: what the publications
 *		publish, each relation described from the catalog as the plugin
 *		describes it, its rows read with binary COPY and decoded into the
 *		dsplug Values a streamed row would carry; and one row read again by
 *		its key (toast_fetch.c).  Where the rows go is the caller's
 *		business (core/backfill.c).
 *
 * Values.  Rows are read with COPY (SELECT ...) TO STDOUT (FORMAT binary),
 * which gives PostgreSQL's stored representation of the typed kinds:
 * microseconds and days since 2000-01-01, numeric's base-10000 digits,
 * IEEE floats, the bytes of text and bytea.  Those are exactly the wire
 * encodings (proto/WIRE.md), so each row becomes the same dsplug Values a
 * streamed row would, and the sink stores it identically.  Types that
 * travel as their output function's text are selected through concat(),
 * which calls the output function, with the same session settings as the
 * walsender that decodes (source_set_formats).  Arrays are read typed,
 * with their text alongside for the shapes the wire sends as text.
 *
 * consumer/source/copy.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source/source.h"
#include "wire_text.h"
#include "wire_types.h"

/* numeric_send's sign word */
#define NUMERIC_POS		0x0000
#define NUMERIC_NEG		0x4000
#define NUMERIC_NAN		0xC000
#define NUMERIC_PINF	0xD000
#define NUMERIC_NINF	0xF000

#define COPY_SIGNATURE		"PGCOPY\n\377\r\n\0"
#define COPY_SIGNATURE_LEN	11
#define TICK_ROWS			4096

/* Memory for one row's Values, reset after each row. */
typedef struct ArenaOld
{
	struct ArenaOld *next;
	char	   *block;
} ArenaOld;

typedef struct Arena
{
	char	   *block;
	size_t		used;
	size_t		size;
	ArenaOld   *old;			/* blocks outgrown during the current row */
} Arena;

/* The state of one table's copy. */
typedef struct TableCopy
{
	const Dsplug__Relation *rel;
	int			nfields;		/* fields per COPY row: columns + array texts */
	int		   *array_text;		/* per column: field of its text, or -1 */
	Arena		arena;
	Dsplug__Value **values;
	Dsplug__Tuple tuple;
	const uint8_t **fdata;		/* the current row's fields */
	int32_t    *flen;			/* their lengths, -1 for NULL */
	uint64_t	rows;
	const char *what;			/* "schema"."name", for messages */
} TableCopy;

/*
 * One row read again from the source (source_read_row), decoded as a
 * copied row is: its values point into the arena and into res, both kept
 * until the next read.
 */
struct RowReader
{
	TableCopy	tc;
	PGresult   *res;
	char		what[512];
};


static bool copy_rows(PGconn *conn, TableCopy *tc, SourceRowFn row_fn,
					  void *row_arg, void (*tick) (void *), void *tick_arg);
static bool select_list(PGconn *conn, TableCopy *tc, WireText *sql);
static bool decode_row(TableCopy *tc);
static bool decode_value(TableCopy *tc, Dsplug__Kind kind, uint32_t typoid,
						 const uint8_t *p, int32_t len, Dsplug__Value *v);
static bool decode_array(TableCopy *tc, const Dsplug__Column *col,
						 const uint8_t *p, int32_t len, Dsplug__Value *v);
static char *publications_array(const char *names);
static void *arena_alloc(Arena *a, size_t size);
static void arena_reset(Arena *a);
static void arena_free(Arena *a);
static void sqlbuf_add(WireText *buf, const char *s);

static inline uint16_t
get16(const uint8_t *p)
{
	return (uint16_t) ((p[0] << 8) | p[1]);
}

static inline uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | p[3];
}

static inline uint64_t
get64(const uint8_t *p)
{
	return ((uint64_t) get32(p) << 32) | get32(p + 4);
}

/*
 * Read the current values of want's columns (some of rel's, in any order)
 * of rel's row whose primary key equals key's (a tuple in rel's layout
 * whose primary key columns are set), over conn, a normal connection
 * configured by source_set_formats.  The values are exactly those a copy
 * of the row would hold: the same select list, binary results (the send
 * functions' output, as binary COPY gives).  *row is NULL when no such row
 * exists now; otherwise it, and the values it points to, belong to
 * *reader (created on first use, freed by source_read_row_free) and are
 * valid until the next read.  false after error_set(): RESULT_RETRY for a
 * lost connection or a server failure worth retrying.
 *
 * The row is read from rel itself (a row of an inheritance child is not
 * rel's: the child is published on its own), or from its partitions when
 * rel is a partitioned table published via its root.  COPY takes no
 * parameters, so this is a query with the key as typed text parameters
 * (each read by its type's input function; the primary key's index finds
 * the row).
 */
bool
source_read_row(PGconn *conn, const Dsplug__Relation *rel,
				  const Dsplug__Relation *want, const Dsplug__Tuple *key,
				  RowReader **reader, const Dsplug__Tuple **row)
{
	RowReader  *rr = *reader;
	WireText	sql;
	WireText   *texts = NULL;
	const char **params = NULL;
	Oid		   *types = NULL;
	int			nparams = 0;
	int			ntexts = 0;
	char	   *ident;
	char		oid[16];
	char		num[32];
	bool		ok = false;

	*row = NULL;
	if (rr == NULL)
	{
		rr = xmalloc(sizeof(RowReader));
		memset(rr, 0, sizeof(RowReader));
		*reader = rr;
	}
	PQclear(rr->res);
	rr->res = NULL;
	arena_reset(&rr->tc.arena);
	free(rr->tc.array_text);
	free(rr->tc.values);
	free(rr->tc.fdata);
	free(rr->tc.flen);
	rr->tc.rel = want;
	snprintf(rr->what, sizeof(rr->what), "\"%s\".\"%s\"", rel->schema, rel->name);
	rr->tc.what = rr->what;
	rr->tc.array_text = xmalloc(sizeof(int) * (want->n_columns + 1));
	rr->tc.values = xmalloc(sizeof(Dsplug__Value *) * (want->n_columns + 1));
	dsplug__tuple__init(&rr->tc.tuple);
	rr->tc.tuple.n_values = want->n_columns;
	rr->tc.tuple.values = rr->tc.values;

	wire_text_init(&sql, NULL);
	if (!select_list(conn, &rr->tc, &sql))
		goto done;
	rr->tc.fdata = xmalloc(sizeof(uint8_t *) * (size_t) (rr->tc.nfields + 1));
	rr->tc.flen = xmalloc(sizeof(int32_t) * (size_t) (rr->tc.nfields + 1));

	sqlbuf_add(&sql, " FROM ");
	if ((ident = PQescapeIdentifier(conn, rel->schema, strlen(rel->schema))) == NULL)
	{
		source_conn_failed(conn, "build the query reading a row");
		goto done;
	}
	sqlbuf_add(&sql, ident);
	PQfreemem(ident);
	sqlbuf_add(&sql, ".");
	if ((ident = PQescapeIdentifier(conn, rel->name, strlen(rel->name))) == NULL)
	{
		source_conn_failed(conn, "build the query reading a row");
		goto done;
	}
	sqlbuf_add(&sql, ident);
	PQfreemem(ident);
	sqlbuf_add(&sql, " dsplug_r WHERE ");

	texts = xmalloc(sizeof(WireText) * (rel->n_columns + 1));
	params = xmalloc(sizeof(char *) * (rel->n_columns + 1));
	types = xmalloc(sizeof(Oid) * (rel->n_columns + 1));
	for (size_t c = 0; c < rel->n_columns; c++)
	{
		const Dsplug__Column *col = rel->columns[c];
		const Dsplug__Value *v = c < key->n_values ? key->values[c] : NULL;

		if (!col->primary_key)
			continue;
		if (v == NULL || v->kind_case == DSPLUG__VALUE__KIND__NOT_SET ||
			v->kind_case == DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
		{
			error_set(RESULT_TARGET, "could not read a row of table %s: the change does not carry its key column \"%s\"",
					  rr->what, col->name);
			goto done;
		}
		wire_text_init(&texts[nparams], NULL);
		if (!wire_text_append_value(&texts[nparams], v, col))
		{
			wire_text_free(&texts[nparams]);
			error_set(RESULT_RUNTIME, "could not read a row of table %s: out of memory", rr->what);
			goto done;
		}
		ntexts++;
		params[nparams] = texts[nparams].data;
		types[nparams] = col->type_oid;
		nparams++;
		if ((ident = PQescapeIdentifier(conn, col->name, strlen(col->name))) == NULL)
		{
			source_conn_failed(conn, "build the query reading a row");
			goto done;
		}
		sqlbuf_add(&sql, "dsplug_r.");
		sqlbuf_add(&sql, ident);
		PQfreemem(ident);
		snprintf(num, sizeof(num), " = $%d AND ", nparams);
		sqlbuf_add(&sql, num);
	}
	if (nparams == 0)
	{
		error_set(RESULT_TARGET, "could not read a row of table %s: it has no primary key", rr->what);
		goto done;
	}
	snprintf(oid, sizeof(oid), "%u", rel->oid);
	params[nparams] = oid;
	types[nparams] = OIDOID;
	nparams++;
	snprintf(num, sizeof(num), "$%d", nparams);
	sqlbuf_add(&sql, "(dsplug_r.tableoid = ");
	sqlbuf_add(&sql, num);
	sqlbuf_add(&sql, " OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = ");
	sqlbuf_add(&sql, num);
	sqlbuf_add(&sql, ") = 'p')");

	rr->res = PQexecParams(conn, sql.data, nparams, types, params, NULL, NULL, 1);
	if (PQresultStatus(rr->res) != PGRES_TUPLES_OK)
	{
		const char *sqlstate = PQresultErrorField(rr->res, PG_DIAG_SQLSTATE);

		error_set(sqlstate == NULL || source_retryable_sqlstate(sqlstate) ?
				  RESULT_RETRY : RESULT_SERVER,
				  "could not read a row of table %s: %s", rr->what,
				  PQresultErrorMessage(rr->res));
		goto done;
	}
	if (PQntuples(rr->res) > 1 || PQnfields(rr->res) != rr->tc.nfields)
	{
		error_set(RESULT_TARGET, "could not read a row of table %s: %d rows of %d fields for one key",
				  rr->what, PQntuples(rr->res), PQnfields(rr->res));
		goto done;
	}
	if (PQntuples(rr->res) == 1)
	{
		for (int f = 0; f < rr->tc.nfields; f++)
		{
			rr->tc.fdata[f] = (const uint8_t *) PQgetvalue(rr->res, 0, f);
			rr->tc.flen[f] = PQgetisnull(rr->res, 0, f) ? -1 :
				PQgetlength(rr->res, 0, f);
		}
		if (!decode_row(&rr->tc))
			goto done;
		*row = &rr->tc.tuple;
	}
	ok = true;

done:
	for (int i = 0; i < ntexts; i++)
		wire_text_free(&texts[i]);
	free(texts);
	free(params);
	free(types);
	wire_text_free(&sql);
	return ok;
}

void
source_read_row_free(RowReader *reader)
{
	if (reader == NULL)
		return;
	PQclear(reader->res);
	arena_free(&reader->tc.arena);
	free(reader->tc.array_text);
	free(reader->tc.values);
	free(reader->tc.fdata);
	free(reader->tc.flen);
	free(reader);
}


/*
 * What the publications publish, as the plugin publishes it: one row per
 * relation (leaf partitions, or the root with publish_via_partition_root),
 * with oid, schema, name, replica identity, relkind, the row filters OR-ed
 * (NULL: every row) and the column list as an int2[] literal (NULL: every
 * column).  A relation without a filter in one publication has none, as
 * in pgoutput.  With only_oid, only that relation.  The caller frees
 * *tables with source_tables_free.
 */
bool
source_published_tables(PGconn *conn, const char *publications,
						uint32_t only_oid, SourceTables *tables)
{
	char	   *pubs = publications_array(publications);
	char		oid[16];
	const char *params[2] = {pubs, NULL};
	PGresult   *res;

	tables->res = NULL;
	if (only_oid != 0)
	{
		snprintf(oid, sizeof(oid), "%u", only_oid);
		params[1] = oid;
	}

	res = PQexecParams(conn,
					   "SELECT p FROM unnest($1::text[]) p "
					   "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = p)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		error_set(RESULT_RETRY, "could not list the publications: %s",
				  PQresultErrorMessage(res));
		goto error;
	}
	if (PQntuples(res) > 0)
	{
		error_set(RESULT_SERVER, "could not copy the published tables: publication \"%s\" does not exist",
				  PQgetvalue(res, 0, 0));
		goto error;
	}
	PQclear(res);

	res = PQexecParams(conn,
					   "SELECT c.oid, n.nspname, c.relname, c.relreplident, c.relkind, "
					   "CASE WHEN pg_catalog.bool_or(g.qual IS NULL) THEN NULL "
					   "ELSE pg_catalog.string_agg('(' || pg_catalog.pg_get_expr(g.qual, g.relid) || ')', ' OR ') END, "
					   "(pg_catalog.array_agg(g.attrs::pg_catalog.int2[]::text) FILTER (WHERE g.attrs IS NOT NULL))[1] "
					   "FROM unnest($1::text[]) p, "
					   "LATERAL pg_catalog.pg_get_publication_tables(p) g "
					   "JOIN pg_catalog.pg_class c ON c.oid = g.relid "
					   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					   "WHERE $2::oid IS NULL OR c.oid = $2::oid "
					   "GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 3",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		error_set(RESULT_RETRY, "could not list the published tables: %s",
				  PQresultErrorMessage(res));
		goto error;
	}
	free(pubs);
	tables->res = res;
	return true;

error:
	PQclear(res);
	free(pubs);
	return false;
}

/*
 * A relation description from the catalog, as the plugin would send it
 * (plugin/encode.c): columns not dropped, not generated, and in the column
 * list if there is one (row `row` of source_published_tables), each with the kind
 * WIRE.md assigns its type, the replica identity and primary key.
 */
bool
source_describe(PGconn *conn, const SourceTables *published, int row,
				SourceRelation *out)
{
	PGresult   *tables = published->res;
	const char *oid = PQgetvalue(tables, row, 0);
	const char *schema = PQgetvalue(tables, row, 1);
	const char *name = PQgetvalue(tables, row, 2);
	const char *replident = PQgetvalue(tables, row, 3);
	const char *params[2] = {oid, PQgetisnull(tables, row, 6) ? NULL :
	PQgetvalue(tables, row, 6)};
	PGresult   *res;
	int			n;

	res = PQexecParams(conn,
					   "SELECT a.attname, a.atttypid, pg_catalog.format_type(a.atttypid, NULL), "
					   "a.atttypmod, a.attnotnull, "
					   "t.typlen = -1 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc, "
					   "t.typelem, "
					   "a.attnum = ANY (coalesce((SELECT i.indkey::int2[] FROM pg_catalog.pg_index i "
					   "  WHERE i.indrelid = a.attrelid AND i.indisprimary), '{}')), "
					   "c.relreplident = 'f' OR a.attnum = ANY (coalesce((SELECT i.indkey::int2[] FROM pg_catalog.pg_index i "
					   "  WHERE i.indrelid = a.attrelid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary "
					   "  WHEN 'i' THEN i.indisreplident ELSE false END), '{}')) "
					   "FROM pg_catalog.pg_attribute a "
					   "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
					   "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
					   "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
					   "AND a.attgenerated = '' "
					   "AND ($2::int2[] IS NULL OR a.attnum = ANY ($2::int2[])) "
					   "ORDER BY a.attnum",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		error_set(RESULT_RETRY, "could not describe table \"%s\".\"%s\": %s",
				  schema, name, PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}

	n = PQntuples(res);
	dsplug__relation__init(&out->rel);
	out->rel.oid = (uint32_t) strtoul(oid, NULL, 10);
	out->rel.schema = xstrdup(schema);
	out->rel.name = xstrdup(name);
	switch (replident[0])
	{
		case 'n':
			out->rel.replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_NOTHING;
			break;
		case 'f':
			out->rel.replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_FULL;
			break;
		case 'i':
			out->rel.replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_INDEX;
			break;
		default:
			out->rel.replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_DEFAULT;
			break;
	}
	out->colmem = xmalloc(sizeof(Dsplug__Column) * (size_t) (n + 1));
	out->cols = xmalloc(sizeof(Dsplug__Column *) * (size_t) (n + 1));
	for (int i = 0; i < n; i++)
	{
		Dsplug__Column *col = &out->colmem[i];
		uint32_t	typoid = (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL, 10);
		uint32_t	elem = (uint32_t) strtoul(PQgetvalue(res, i, 6), NULL, 10);
		bool		is_array = PQgetvalue(res, i, 5)[0] == 't';

		dsplug__column__init(col);
		col->name = xstrdup(PQgetvalue(res, i, 0));
		col->type_oid = typoid;
		col->type_name = xstrdup(PQgetvalue(res, i, 2));
		col->typmod = atoi(PQgetvalue(res, i, 3));
		col->not_null = PQgetvalue(res, i, 4)[0] == 't';
		col->primary_key = PQgetvalue(res, i, 7)[0] == 't';
		col->key = PQgetvalue(res, i, 8)[0] == 't';
		/* the plugin's kinds, from the one table (proto/wire_types.h) */
		col->kind = wire_column_kind(typoid, is_array ? elem : 0,
									 &col->element_kind);
		if (col->kind == DSPLUG__KIND__KIND_ARRAY)
			col->element_type_oid = elem;
		out->cols[i] = col;
	}
	out->rel.n_columns = (size_t) n;
	out->rel.columns = out->cols;
	PQclear(res);
	return true;
}

/* The number of relations source_published_tables found. */
int
source_tables_count(const SourceTables *tables)
{
	return tables->res != NULL ? PQntuples(tables->res) : 0;
}

void
source_tables_free(SourceTables *tables)
{
	PQclear(tables->res);
	tables->res = NULL;
}

void
source_describe_free(SourceRelation *r)
{
	for (size_t i = 0; i < r->rel.n_columns; i++)
	{
		free(r->colmem[i].name);
		free(r->colmem[i].type_name);
	}
	free(r->colmem);
	free(r->cols);
	free(r->rel.schema);
	free(r->rel.name);
}

/*
 * COPY the rows of relation i of tables (the columns rel describes, the
 * rows the publications' row filters pass) and hand each to row_fn.  A
 * partitioned table (published via its root) is read with its partitions,
 * any other without its inheritance children, which are published on
 * their own.  tick, if set, is called every few thousand rows.  *rows is
 * the number of rows read.
 */
bool
source_copy_table(PGconn *conn, const SourceTables *tables, int i,
				  const Dsplug__Relation *rel, SourceRowFn row_fn,
				  void *row_arg, void (*tick) (void *), void *tick_arg,
				  uint64_t *rows)
{
	bool		partitioned = PQgetvalue(tables->res, i, 4)[0] == 'p';
	const char *rowfilter = PQgetisnull(tables->res, i, 5) ? NULL :
		PQgetvalue(tables->res, i, 5);
	WireText	sqlbuf;
	TableCopy	tc;
	char	   *ident;
	char		what[512];
	PGresult   *res;
	bool		ok;

	memset(&tc, 0, sizeof(TableCopy));
	tc.rel = rel;
	snprintf(what, sizeof(what), "\"%s\".\"%s\"", rel->schema, rel->name);
	tc.what = what;
	tc.array_text = xmalloc(sizeof(int) * (rel->n_columns + 1));

	wire_text_init(&sqlbuf, NULL);
	sqlbuf_add(&sqlbuf, "COPY (");
	if (!select_list(conn, &tc, &sqlbuf))
	{
		wire_text_free(&sqlbuf);
		free(tc.array_text);
		return false;
	}
	sqlbuf_add(&sqlbuf, partitioned ? " FROM " : " FROM ONLY ");
	ident = PQescapeIdentifier(conn, rel->schema, strlen(rel->schema));
	if (ident != NULL)
	{
		sqlbuf_add(&sqlbuf, ident);
		PQfreemem(ident);
	}
	sqlbuf_add(&sqlbuf, ".");
	ident = PQescapeIdentifier(conn, rel->name, strlen(rel->name));
	if (ident != NULL)
	{
		sqlbuf_add(&sqlbuf, ident);
		PQfreemem(ident);
	}
	if (rowfilter != NULL)
	{
		sqlbuf_add(&sqlbuf, " WHERE ");
		sqlbuf_add(&sqlbuf, rowfilter);
	}
	sqlbuf_add(&sqlbuf, ") TO STDOUT (FORMAT binary)");

	res = PQexec(conn, sqlbuf.data);
	wire_text_free(&sqlbuf);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		error_set(sqlstate != NULL && strcmp(sqlstate, "42501") == 0 ?
				  RESULT_SERVER : RESULT_RETRY,
				  "could not copy table %s: %s", what, PQresultErrorMessage(res));
		PQclear(res);
		free(tc.array_text);
		return false;
	}
	PQclear(res);

	tc.values = xmalloc(sizeof(Dsplug__Value *) * (rel->n_columns + 1));
	tc.fdata = xmalloc(sizeof(uint8_t *) * (size_t) tc.nfields);
	tc.flen = xmalloc(sizeof(int32_t) * (size_t) tc.nfields);
	dsplug__tuple__init(&tc.tuple);
	tc.tuple.n_values = rel->n_columns;
	tc.tuple.values = tc.values;

	ok = copy_rows(conn, &tc, row_fn, row_arg, tick, tick_arg);
	*rows = tc.rows;

	/* the copy's end, or what is left of it after a failure */
	while ((res = PQgetResult(conn)) != NULL)
	{
		if (ok && PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			error_set(RESULT_RETRY, "could not copy table %s: %s", what,
					  PQresultErrorMessage(res));
			ok = false;
		}
		PQclear(res);
	}
	arena_free(&tc.arena);
	free(tc.values);
	free(tc.fdata);
	free(tc.flen);
	free(tc.array_text);
	return ok;
}

/*
 * Append "SELECT <rel's columns>" to sql, as the stream carries them: the
 * typed kinds as themselves (their binary form is the wire's), types that
 * travel as text through their output function, arrays with their text
 * alongside.  Sets tc->array_text (allocated by the caller, one per
 * column) and tc->nfields.  Shared by the copy and by read_row.
 */
static bool
select_list(PGconn *conn, TableCopy *tc, WireText *sql)
{
	const Dsplug__Relation *rel = tc->rel;
	char	   *ident;
	int			field = (int) rel->n_columns;

	sqlbuf_add(sql, "SELECT ");
	for (size_t c = 0; c < rel->n_columns; c++)
	{
		const Dsplug__Column *col = rel->columns[c];

		ident = PQescapeIdentifier(conn, col->name, strlen(col->name));
		if (ident == NULL)
			return source_conn_failed(conn, "build the copy query");
		if (c > 0)
			sqlbuf_add(sql, ", ");
		tc->array_text[c] = -1;
		if (col->kind == DSPLUG__KIND__KIND_TEXT &&
			!wire_type_is_character(col->type_oid))
		{
			/* the output function's text, NULL kept NULL */
			sqlbuf_add(sql, "CASE WHEN pg_catalog.num_nulls(");
			sqlbuf_add(sql, ident);
			sqlbuf_add(sql, ") = 0 THEN pg_catalog.concat(");
			sqlbuf_add(sql, ident);
			sqlbuf_add(sql, ") END");
		}
		else
			sqlbuf_add(sql, ident);
		PQfreemem(ident);
	}
	/* arrays: their text too, for the shapes the wire sends as text */
	for (size_t c = 0; c < rel->n_columns; c++)
	{
		const Dsplug__Column *col = rel->columns[c];

		if (col->kind != DSPLUG__KIND__KIND_ARRAY)
			continue;
		ident = PQescapeIdentifier(conn, col->name, strlen(col->name));
		if (ident == NULL)
			return source_conn_failed(conn, "build the copy query");
		sqlbuf_add(sql, ", CASE WHEN pg_catalog.array_ndims(");
		sqlbuf_add(sql, ident);
		sqlbuf_add(sql, ") > 1 OR pg_catalog.array_lower(");
		sqlbuf_add(sql, ident);
		sqlbuf_add(sql, ", 1) <> 1 THEN pg_catalog.concat(");
		sqlbuf_add(sql, ident);
		sqlbuf_add(sql, ") END");
		PQfreemem(ident);
		tc->array_text[c] = field++;
	}
	tc->nfields = field;
	return true;
}

/*
 * Read the COPY stream: the binary header, then rows, each a field count
 * and length-prefixed fields, until the end.  Rows may arrive split across
 * or packed into CopyData messages, so they are parsed from a buffer.
 */
static bool
copy_rows(PGconn *conn, TableCopy *tc, SourceRowFn row_fn, void *row_arg,
		  void (*tick) (void *), void *tick_arg)
{
	uint8_t    *buf = NULL;
	size_t		len = 0;
	size_t		cap = 0;
	bool		header = false;
	bool		trailer = false;
	bool		ok = false;

	for (;;)
	{
		char	   *chunk;
		int			r = PQgetCopyData(conn, &chunk, 0);
		size_t		pos = 0;

		if (r == -1)
			break;
		if (r == -2)
		{
			source_conn_failed(conn, "copy the published tables");
			goto done;
		}
		if (len + (size_t) r > cap)
		{
			cap = (len + (size_t) r) * 2;
			buf = xrealloc(buf, cap);
		}
		memcpy(buf + len, chunk, (size_t) r);
		len += (size_t) r;
		PQfreemem(chunk);

		if (!header)
		{
			uint32_t	extlen;

			if (len < COPY_SIGNATURE_LEN + 8)
				continue;
			if (memcmp(buf, COPY_SIGNATURE, COPY_SIGNATURE_LEN) != 0)
			{
				error_set(RESULT_RUNTIME, "could not copy table %s: not a binary COPY stream",
						  tc->what);
				goto done;
			}
			extlen = get32(buf + COPY_SIGNATURE_LEN + 4);
			if (len < COPY_SIGNATURE_LEN + 8 + (size_t) extlen)
				continue;
			pos = COPY_SIGNATURE_LEN + 8 + extlen;
			header = true;
		}

		while (len - pos >= 2 && !trailer)
		{
			int16_t		nf = (int16_t) get16(buf + pos);
			size_t		p = pos + 2;
			bool		complete = true;

			if (nf == -1)
			{
				trailer = true;
				pos += 2;
				break;
			}
			if (nf != tc->nfields)
			{
				error_set(RESULT_RUNTIME, "could not copy table %s: a row has %d fields, expected %d",
						  tc->what, nf, tc->nfields);
				goto done;
			}
			for (int f = 0; f < nf; f++)
			{
				int32_t		flen;

				if (len - p < 4)
				{
					complete = false;
					break;
				}
				flen = (int32_t) get32(buf + p);
				p += 4;
				tc->fdata[f] = buf + p;
				tc->flen[f] = flen;
				if (flen > 0)
				{
					if (len - p < (size_t) flen)
					{
						complete = false;
						break;
					}
					p += (size_t) flen;
				}
			}
			if (!complete)
				break;

			arena_reset(&tc->arena);
			if (!decode_row(tc))
				goto done;
			if (!row_fn(row_arg, tc->rel, &tc->tuple))
				goto done;
			pos = p;
			tc->rows++;
			if (tc->rows % TICK_ROWS == 0)
			{
				if (stop_requested)
				{
					error_set(RESULT_RETRY, "could not copy table %s: interrupted", tc->what);
					goto done;
				}
				if (tick != NULL)
					tick(tick_arg);
			}
		}

		memmove(buf, buf + pos, len - pos);
		len -= pos;
	}
	if (!trailer)
	{
		error_set(RESULT_RETRY, "could not copy table %s: the COPY stream ended early",
				  tc->what);
		goto done;
	}
	ok = true;

done:
	free(buf);
	return ok;
}

/*
 * One row's Values, from the fields copy_rows located.  Memory is the
 * arena's, valid until the next row.
 */
static bool
decode_row(TableCopy *tc)
{
	const Dsplug__Relation *rel = tc->rel;
	for (size_t c = 0; c < rel->n_columns; c++)
	{
		const Dsplug__Column *col = rel->columns[c];
		Dsplug__Value *v = arena_alloc(&tc->arena, sizeof(Dsplug__Value));
		const uint8_t *data = tc->fdata[c];
		int32_t		flen = tc->flen[c];

		dsplug__value__init(v);
		tc->values[c] = v;
		if (flen < 0)
			continue;			/* NULL: no field set */

		if (col->kind == DSPLUG__KIND__KIND_ARRAY)
		{
			int			tf = tc->array_text[c];

			if (tf >= 0 && tc->flen[tf] >= 0)
			{
				/* a shape the wire sends as text */
				char	   *text = arena_alloc(&tc->arena, (size_t) tc->flen[tf] + 1);

				memcpy(text, tc->fdata[tf], (size_t) tc->flen[tf]);
				text[tc->flen[tf]] = '\0';
				v->kind_case = DSPLUG__VALUE__KIND_TEXT;
				v->text = text;
			}
			else if (!decode_array(tc, col, data, flen, v))
				return false;
		}
		else if (!decode_value(tc, col->kind, col->type_oid, data, flen, v))
			return false;
	}
	return true;
}

/*
 * One binary COPY value of a typed kind (or text) as the wire carries it:
 * the send functions write PostgreSQL's stored form, big-endian, which is
 * the wire's (proto/WIRE.md).
 */
static bool
decode_value(TableCopy *tc, Dsplug__Kind kind, uint32_t typoid,
			 const uint8_t *p, int32_t len, Dsplug__Value *v)
{
	switch (kind)
	{
		case DSPLUG__KIND__KIND_INT:
			v->kind_case = DSPLUG__VALUE__KIND_INT;
			if (len == 2)
				v->int_ = (int16_t) get16(p);
			else if (len == 4)
				v->int_ = (int32_t) get32(p);
			else if (len == 8)
				v->int_ = (int64_t) get64(p);
			else
				goto bad;
			return true;
		case DSPLUG__KIND__KIND_FLOAT4:
			{
				uint32_t	bits;

				if (len != 4)
					goto bad;
				bits = get32(p);
				v->kind_case = DSPLUG__VALUE__KIND_FLOAT4;
				memcpy(&v->float4, &bits, 4);
				return true;
			}
		case DSPLUG__KIND__KIND_FLOAT8:
			{
				uint64_t	bits;

				if (len != 8)
					goto bad;
				bits = get64(p);
				v->kind_case = DSPLUG__VALUE__KIND_FLOAT8;
				memcpy(&v->float8, &bits, 8);
				return true;
			}
		case DSPLUG__KIND__KIND_BOOL:
			if (len != 1)
				goto bad;
			v->kind_case = DSPLUG__VALUE__KIND_BOOL;
			v->bool_ = p[0] != 0;
			return true;
		case DSPLUG__KIND__KIND_BYTEA:
			v->kind_case = DSPLUG__VALUE__KIND_BYTEA;
			v->bytea.len = (size_t) len;
			v->bytea.data = (uint8_t *) p;
			return true;
		case DSPLUG__KIND__KIND_UUID:
			if (len != 16)
				goto bad;
			v->kind_case = DSPLUG__VALUE__KIND_UUID;
			v->uuid.len = 16;
			v->uuid.data = (uint8_t *) p;
			return true;
		case DSPLUG__KIND__KIND_DATE:
			if (len != 4)
				goto bad;
			v->kind_case = DSPLUG__VALUE__KIND_DATE;
			v->date = (int32_t) get32(p);
			return true;
		case DSPLUG__KIND__KIND_TIME:
			if (len != 8)
				goto bad;
			v->kind_case = DSPLUG__VALUE__KIND_TIME;
			v->time = (int64_t) get64(p);
			return true;
		case DSPLUG__KIND__KIND_TIMESTAMP:
			if (len != 8)
				goto bad;
			v->kind_case = DSPLUG__VALUE__KIND_TIMESTAMP;
			v->timestamp = (int64_t) get64(p);
			return true;
		case DSPLUG__KIND__KIND_TIMESTAMPTZ:
			if (len != 8)
				goto bad;
			v->kind_case = DSPLUG__VALUE__KIND_TIMESTAMPTZ;
			v->timestamptz = (int64_t) get64(p);
			return true;
		case DSPLUG__KIND__KIND_INTERVAL:
			{
				Dsplug__Interval *iv;

				if (len != 16)
					goto bad;
				iv = arena_alloc(&tc->arena, sizeof(Dsplug__Interval));
				dsplug__interval__init(iv);
				iv->microseconds = (int64_t) get64(p);
				iv->days = (int32_t) get32(p + 8);
				iv->months = (int32_t) get32(p + 12);
				v->kind_case = DSPLUG__VALUE__KIND_INTERVAL;
				v->interval = iv;
				return true;
			}
		case DSPLUG__KIND__KIND_NUMERIC:
			{
				Dsplug__Numeric *num;
				uint16_t	ndigits;
				uint16_t	sign;

				if (len < 8)
					goto bad;
				ndigits = get16(p);
				sign = get16(p + 4);
				if ((size_t) len != 8 + (size_t) ndigits * 2)
					goto bad;
				num = arena_alloc(&tc->arena, sizeof(Dsplug__Numeric));
				dsplug__numeric__init(num);
				num->weight = (int16_t) get16(p + 2);
				num->dscale = get16(p + 6);
				switch (sign)
				{
					case NUMERIC_POS:
						break;
					case NUMERIC_NEG:
						num->negative = true;
						break;
					case NUMERIC_NAN:
						num->special = DSPLUG__NUMERIC_SPECIAL__NUMERIC_NAN;
						break;
					case NUMERIC_PINF:
						num->special = DSPLUG__NUMERIC_SPECIAL__NUMERIC_POSITIVE_INFINITY;
						break;
					case NUMERIC_NINF:
						num->special = DSPLUG__NUMERIC_SPECIAL__NUMERIC_NEGATIVE_INFINITY;
						break;
					default:
						goto bad;
				}
				if (num->special != DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE)
				{
					num->weight = 0;
					num->dscale = 0;
					ndigits = 0;
				}
				num->n_digits = ndigits;
				num->digits = arena_alloc(&tc->arena, sizeof(uint32_t) * (ndigits + 1u));
				for (uint16_t d = 0; d < ndigits; d++)
					num->digits[d] = get16(p + 8 + 2 * d);
				v->kind_case = DSPLUG__VALUE__KIND_NUMERIC;
				v->numeric = num;
				return true;
			}
		case DSPLUG__KIND__KIND_JSON:
			{
				char	   *text;

				/* jsonb_send writes a format version, 1, before the text */
				if (typoid == JSONBOID)
				{
					if (len < 1 || p[0] != 1)
						goto bad;
					p++;
					len--;
				}
				text = arena_alloc(&tc->arena, (size_t) len + 1);
				memcpy(text, p, (size_t) len);
				text[len] = '\0';
				v->kind_case = DSPLUG__VALUE__KIND_JSON;
				v->json = text;
				return true;
			}
		default:
			{
				/* the character types' bytes, or an output function's text */
				char	   *text = arena_alloc(&tc->arena, (size_t) len + 1);

				memcpy(text, p, (size_t) len);
				text[len] = '\0';
				v->kind_case = DSPLUG__VALUE__KIND_TEXT;
				v->text = text;
				return true;
			}
	}

bad:
	error_set(RESULT_RUNTIME, "could not copy table %s: unexpected binary value of %d bytes for type %u",
			  tc->what, len, typoid);
	return false;
}

/*
 * array_send's format: dimensions, a has-nulls flag, the element type,
 * then per dimension its size and lower bound, then the elements, each
 * length-prefixed (-1 for NULL).  Only one-dimensional arrays with lower
 * bound 1 (and empty ones) get here.
 */
static bool
decode_array(TableCopy *tc, const Dsplug__Column *col, const uint8_t *p,
			 int32_t len, Dsplug__Value *v)
{
	const uint8_t *end = p + len;
	Dsplug__Array *arr;
	int32_t		ndim;
	int32_t		nelem = 0;

	if (len < 12)
		goto bad;
	ndim = (int32_t) get32(p);
	p += 12;
	if (ndim == 1)
	{
		if (end - p < 8)
			goto bad;
		nelem = (int32_t) get32(p);
		if ((int32_t) get32(p + 4) != 1 || nelem < 0)
			goto bad;
		p += 8;
	}
	else if (ndim != 0)
		goto bad;

	arr = arena_alloc(&tc->arena, sizeof(Dsplug__Array));
	dsplug__array__init(arr);
	arr->n_elements = (size_t) nelem;
	arr->elements = arena_alloc(&tc->arena, sizeof(Dsplug__Value *) * ((size_t) nelem + 1));
	for (int32_t i = 0; i < nelem; i++)
	{
		Dsplug__Value *e = arena_alloc(&tc->arena, sizeof(Dsplug__Value));
		int32_t		elen;

		dsplug__value__init(e);
		arr->elements[i] = e;
		if (end - p < 4)
			goto bad;
		elen = (int32_t) get32(p);
		p += 4;
		if (elen < 0)
			continue;
		if (end - p < elen)
			goto bad;
		if (!decode_value(tc, col->element_kind, col->element_type_oid, p, elen, e))
			return false;
		p += elen;
	}
	v->kind_case = DSPLUG__VALUE__KIND_ARRAY;
	v->array = arr;
	return true;

bad:
	error_set(RESULT_RUNTIME, "could not copy table %s: unexpected binary array in column \"%s\"",
			  tc->what, col->name);
	return false;
}

/*
 * --publication's comma-separated names as a text[] literal, read the way
 * the plugin reads publication_names (SplitIdentifierString): unquoted
 * names are folded to lower case, "quoted" ones kept, "" inside quotes is
 * a quote.  The caller frees the result.
 */
static char *
publications_array(const char *names)
{
	size_t		cap = strlen(names) * 2 + 8;
	char	   *out = xmalloc(cap);
	size_t		n = 0;
	const char *p = names;
	bool		first = true;

	out[n++] = '{';
	while (*p != '\0')
	{
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		if (!first)
			out[n++] = ',';
		first = false;
		out[n++] = '"';
		if (*p == '"')
		{
			p++;
			while (*p != '\0')
			{
				if (*p == '"')
				{
					if (p[1] != '"')
					{
						p++;
						break;
					}
					p++;
				}
				if (*p == '\\' || *p == '"')
					out[n++] = '\\';
				out[n++] = *p++;
			}
		}
		else
		{
			while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n')
			{
				char		ch = *p++;

				if (ch >= 'A' && ch <= 'Z')
					ch = (char) (ch + ('a' - 'A'));
				if (ch == '\\' || ch == '"')
					out[n++] = '\\';
				out[n++] = ch;
			}
		}
		out[n++] = '"';
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == ',')
			p++;
	}
	out[n++] = '}';
	out[n] = '\0';
	return out;
}

static void *
arena_alloc(Arena *a, size_t size)
{
	void	   *p;

	size = (size + 7) & ~(size_t) 7;
	if (a->used + size > a->size)
	{
		size_t		newsize = a->size > 0 ? a->size * 2 : 64 * 1024;

		while (newsize < size)
			newsize *= 2;
		if (a->block != NULL)
		{
			ArenaOld   *old = xmalloc(sizeof(ArenaOld));

			old->block = a->block;
			old->next = a->old;
			a->old = old;
		}
		a->block = xmalloc(newsize);
		a->size = newsize;
		a->used = 0;
	}
	p = a->block + a->used;
	a->used += size;
	return p;
}

/* Forget the row's values; blocks outgrown during it are freed. */
static void
arena_reset(Arena *a)
{
	while (a->old != NULL)
	{
		ArenaOld   *old = a->old;

		a->old = old->next;
		free(old->block);
		free(old);
	}
	a->used = 0;
}

static void
arena_free(Arena *a)
{
	arena_reset(a);
	free(a->block);
	a->block = NULL;
	a->size = 0;
}


static void
sqlbuf_add(WireText *buf, const char *s)
{
	if (!wire_text_append(buf, s, strlen(s)))
	{
		fprintf(stderr, "dsplug-consumer: could not build a query: out of memory\n");
		exit(EXIT_RUNTIME);
	}
}
