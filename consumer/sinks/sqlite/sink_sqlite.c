/*-------------------------------------------------------------------------
 *
 * sink_sqlite.c
 *		The embedded target: one SQLite database per region.
 *
 * Mapping.  A source table becomes the SQLite table "<schema>_<table>"
 * with the same column names.  Its key is the replica identity key when
 * the identity is DEFAULT (the primary key) or USING INDEX, otherwise the
 * primary key; it becomes the SQLite PRIMARY KEY, so an upsert finds the
 * row the source changed.  (Under USING INDEX the identity index wins over
 * a different primary key because changes identify rows by it: an update
 * of the primary key alone sends no old key.)  Values are stored as:
 *
 *		int2/4/8			INTEGER
 *		float4/8			REAL (NaN, which SQLite cannot store as a REAL,
 *							as the TEXT 'NaN')
 *		boolean				INTEGER 0/1
 *		bytea				BLOB
 *		timestamptz			TEXT 2026-11-23T10:00:00.123456Z (UTC)
 *		timestamp			TEXT 2026-11-23T10:00:00.123456
 *		date				TEXT 2026-11-23; infinities as infinity/-infinity
 *		json, jsonb			TEXT, the JSON PostgreSQL prints
 *		arrays				TEXT, a JSON array (multi-dimensional arrays and
 *							lower bounds other than 1: PostgreSQL's text)
 *		everything else		TEXT as PostgreSQL prints it (numeric, time,
 *							interval, uuid, enums, ranges, ...)
 *
 * The renderings are proto/wire_text.c's, shared with the SQL inspection
 * functions, so a value reads the same everywhere.
 *
 * Changes.  Inserts and updates are upserts on the key; an update that
 * carries an old key moves the row (UPDATE OR REPLACE of the row found by
 * the old key, or an upsert when there is none); deletes delete by key;
 * truncate empties the table.  Columns an update marks as unchanged TOAST
 * are left out of the statement, so the stored value stays.  Tables
 * without a key: under REPLICA IDENTITY FULL an update or delete changes
 * one row equal to the old row in every column; with no identity at all
 * PostgreSQL refuses updates and deletes of a table whose publication
 * publishes them, so only inserts arrive, and are appended.
 *
 * Relations without columns (CREATE TABLE t (), every column dropped, or
 * only generated columns) still have rows, and SQLite tables need a
 * column: such a table is created with the one column _dsplug_no_columns,
 * always NULL, and holds one row per source row (INSERT ... DEFAULT
 * VALUES).  Under FULL an update changes nothing and a delete removes one
 * row, as every row equals the old row.  A column the source adds later is
 * added next to the placeholder.
 *
 * Schema changes.  A description with a column the table lacks adds it
 * (ALTER TABLE ADD COLUMN).  A column the description no longer has
 * (dropped on the source) is kept and no longer written: new rows have
 * NULL there.  A changed key rebuilds the table with the new PRIMARY KEY.
 * A renamed table (same oid, new name) is renamed.  Column types are never
 * changed: after ALTER COLUMN TYPE, new values take the new kind's storage.
 *
 * Durability.  The database runs in WAL mode with synchronous=FULL: when
 * COMMIT returns, the transaction is on disk, including the row of
 * _dsplug_state that records the end LSN of the last source transaction it
 * holds.  flushed_lsn() reports exactly that LSN, and it is all the
 * consumer confirms to PostgreSQL, so the slot never lets go of a change
 * this database could still lose, even to a power failure.  Grouping many
 * source transactions per SQLite transaction (apply.c) keeps the fsyncs
 * few.
 *
 * Statements are prepared once per table and shape (which columns are
 * written) and kept until the table's description changes.
 *
 * consumer/sinks/sqlite/sink_sqlite.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sinks/sqlite/sqlite.h"
static bool sqlite_open(Sink *sink, const char *uri,
						const SinkOption *options, int noptions,
						const char *slot,
						uint64_t *applied_lsn);
static bool sqlite_begin(Sink *sink);
static bool sqlite_change(Sink *sink, const SinkChange *change);
static bool sqlite_truncate(Sink *sink, const Dsplug__Relation *const *rels,
							size_t nrels, bool cascade, bool restart_identity,
							uint64_t commit_lsn, uint64_t position);
static bool sqlite_commit(Sink *sink, uint64_t end_lsn);
static void sqlite_abort(Sink *sink);
static bool sqlite_begin_copy(Sink *sink, const Dsplug__Relation *rel,
							  uint64_t copy_lsn);
static bool sqlite_end_copy(Sink *sink, const Dsplug__Relation *rel,
							uint64_t copy_lsn);
static bool sqlite_flushed_lsn(Sink *sink, uint64_t *lsn);
static void sqlite_close(Sink *sink);

static void sql_param(SqliteSink *s, int n);

static Stmt *get_stmt(SqliteSink *s, Table *t, StmtOp op,
					  const uint8_t *write, const uint8_t *match);
static bool build_stmt(SqliteSink *s, Table *t, Stmt *st);
static bool writes_any(const Table *t, const Stmt *st);
static bool bind_value(SqliteSink *s, sqlite3_stmt *stmt, int param,
					   const Dsplug__Value *value, const TableColumn *col);
static bool run_change(SqliteSink *s, Table *t, StmtOp op,
					   const Dsplug__Tuple *row, const uint8_t *write,
					   const Dsplug__Tuple *old, const uint8_t *match,
					   int *changes);

static const SinkOps sqlite_ops = {
	.open = sqlite_open,
	.relation = lite_relation,
	.begin = sqlite_begin,
	.change = sqlite_change,
	.truncate = sqlite_truncate,
	.begin_copy = sqlite_begin_copy,
	.end_copy = sqlite_end_copy,
	.commit = sqlite_commit,
	.abort = sqlite_abort,
	.sync = NULL,				/* COMMIT returns once it is on disk */
	.flushed_lsn = sqlite_flushed_lsn,
	.close = sqlite_close,
};

static const SinkOptionDef sqlite_options[] = {
	{NULL, NULL, false}
};

/* sqlite:PATH (also sqlite:///abs/path and sqlite://rel/path); no options */
const SinkType sink_sqlite_type = {
	.scheme = "sqlite",
	.uri_help = "sqlite:PATH",
	.help = NULL,
	.options = sqlite_options,
	.check_options = NULL,
	.ops = &sqlite_ops,
};

/* ---------------------------------------------------------------------
 * Opening and the state table
 * ---------------------------------------------------------------------
 */

/*
 * Open (or create) the database, take the writer's lock, and read the LSN
 * it holds.  The lock is a flock() on the database file itself, held until
 * close: two consumers writing one target would each confirm what the
 * other applied.  (SQLite's own locks are fcntl() locks, which flock()
 * does not disturb on Linux.)
 */
static bool
sqlite_open(Sink *sink, const char *uri, const SinkOption *options,
			int noptions, const char *slot, uint64_t *applied_lsn)
{
	const char *location = uri + strlen("sqlite:");
	SqliteSink *s;
	sqlite3_stmt *stmt = NULL;
	struct stat st;
	int			rc;

	(void) options;
	(void) noptions;
	if (strncmp(location, "//", 2) == 0)
		location += 2;			/* sqlite:///abs/path and sqlite://rel/path */
	if (*location == '\0')
	{
		error_set(RESULT_TARGET, "could not open target \"%s\": no database path after \"sqlite:\"",
				  uri);
		return false;
	}
	s = xmalloc(sizeof(SqliteSink));

	memset(s, 0, sizeof(SqliteSink));
	sink->private_data = s;
	s->path = xstrdup(location);
	s->lock_fd = -1;
	wire_text_init(&s->sql, NULL);
	wire_text_init(&s->value, NULL);

	if (stat(location, &st) == 0 && S_ISDIR(st.st_mode))
	{
		error_set(RESULT_TARGET, "could not open target database \"%s\": it is a directory",
				  location);
		goto error;
	}
	s->lock_fd = open(location, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lock_fd < 0)
	{
		error_set(RESULT_TARGET, "could not open target database \"%s\": %s",
				  location, strerror(errno));
		goto error;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
	{
		error_set(RESULT_TARGET, "could not lock target database \"%s\": %s",
				  location, errno == EWOULDBLOCK ?
				  "another dsplug-consumer is writing to it" : strerror(errno));
		goto error;
	}

	/*
	 * One thread uses the connection: no mutexes, and no memory statistics
	 * (kept under a global mutex).  sqlite3_config only works before the
	 * library initializes, which this first open does.
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	rc = sqlite3_open_v2(location, &s->db,
						 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
	{
		error_set(RESULT_TARGET, "could not open target database \"%s\": %s",
				  location, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto error;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 10000);

	/*
	 * The first statement reads the file: a file that is not a database
	 * fails here.  16 MB of page cache keeps a huge transaction's memory
	 * bounded (SQLite spills to the WAL file).
	 */
	if (!lite_exec(s, "PRAGMA journal_mode = WAL", "open") ||
		!lite_exec(s, "PRAGMA synchronous = FULL", "set synchronous on") ||
		!lite_exec(s, "PRAGMA cache_size = -16384", "set the cache size of") ||
		!lite_exec(s, "CREATE TABLE IF NOT EXISTS _dsplug_state ("
				  "id INTEGER PRIMARY KEY CHECK (id = 1), "
				  "slot TEXT, "
				  "lsn INTEGER NOT NULL, "
				  "lsn_text TEXT NOT NULL, "
				  "updated_at TEXT NOT NULL)",
				  "create the state table in") ||
		!lite_prepare_schema(s))
		goto error;

	if (!lite_prepare(s, "SELECT slot, lsn FROM _dsplug_state WHERE id = 1",
				 &stmt, "read the state of"))
		goto error;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
	{
		const char *stored = (const char *) sqlite3_column_text(stmt, 0);

		s->committed_lsn = (uint64_t) sqlite3_column_int64(stmt, 1);
		if (stored != NULL)
			s->slot = xstrdup(stored);
	}
	else if (rc != SQLITE_DONE)
	{
		lite_fail(s, "read the state of");
		goto error;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;

	if (slot != NULL && s->slot != NULL && strcmp(slot, s->slot) != 0)
	{
		error_set(RESULT_TARGET, "could not use target database \"%s\": it follows slot \"%s\", not \"%s\"",
				  location, s->slot, slot);
		goto error;
	}
	if (slot != NULL && s->slot == NULL)
		s->slot = xstrdup(slot);

	if (!lite_prepare(s, "INSERT INTO _dsplug_state (id, slot, lsn, lsn_text, updated_at) "
				 "VALUES (1, ?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
				 "ON CONFLICT (id) DO UPDATE SET slot = excluded.slot, lsn = excluded.lsn, "
				 "lsn_text = excluded.lsn_text, updated_at = excluded.updated_at",
				 &s->save_state, "prepare the state update of"))
		goto error;

	/* a new target belongs to its slot from the start */
	if (rc == SQLITE_DONE && slot != NULL &&
		(!sqlite_begin(sink) || !sqlite_commit(sink, INVALID_LSN)))
		goto error;

	*applied_lsn = s->committed_lsn;
	return true;

error:
	if (stmt != NULL)
		sqlite3_finalize(stmt);
	sqlite_close(sink);
	return false;
}

static void
sqlite_close(Sink *sink)
{
	SqliteSink *s = sink->private_data;

	if (s == NULL)
		return;
	if (s->in_txn)
		sqlite_abort(sink);
	forget_tables(s);
	free(s->tables);
	sqlite3_finalize(s->save_state);
	for (int i = 0; i < SCHEMA_STMTS; i++)
		sqlite3_finalize(s->schema_stmts[i]);
	if (s->db != NULL)
		sqlite3_close(s->db);
	/* after sqlite3_close: the lock must outlive every write */
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	wire_text_free(&s->sql);
	wire_text_free(&s->value);
	free(s->slot);
	free(s->path);
	free(s);
	sink->private_data = NULL;
}

static bool
sqlite_begin(Sink *sink)
{
	SqliteSink *s = sink->private_data;

	if (!lite_exec(s, "BEGIN IMMEDIATE", "begin a transaction in"))
		return false;
	s->in_txn = true;
	return true;
}

/*
 * Commit the open transaction with end_lsn recorded in _dsplug_state, in
 * the same transaction as the data: the database holds both or neither.
 */
static bool
sqlite_commit(Sink *sink, uint64_t end_lsn)
{
	SqliteSink *s = sink->private_data;
	char		lsn_text[32];

	if (end_lsn < s->committed_lsn)
		end_lsn = s->committed_lsn;
	snprintf(lsn_text, sizeof(lsn_text), "%X/%X", LSN_FORMAT_ARGS(end_lsn));
	if (s->slot != NULL)
		sqlite3_bind_text(s->save_state, 1, s->slot, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s->save_state, 1);
	sqlite3_bind_int64(s->save_state, 2, (sqlite3_int64) end_lsn);
	sqlite3_bind_text(s->save_state, 3, lsn_text, -1, SQLITE_STATIC);
	if (!lite_step_done(s, s->save_state, "record the applied LSN in"))
		return false;
	if (!lite_exec(s, "COMMIT", "commit a transaction in"))
		return false;
	s->in_txn = false;
	s->committed_lsn = end_lsn;
	return true;
}

/*
 * Roll back.  Table definitions made in the transaction are gone too, so
 * the cached descriptions are forgotten; the core sends every relation's
 * description again before its next change (a new session does).
 */
static void
sqlite_abort(Sink *sink)
{
	SqliteSink *s = sink->private_data;

	if (!s->in_txn)
		return;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_txn = false;
	forget_tables(s);
}

static bool
sqlite_flushed_lsn(Sink *sink, uint64_t *lsn)
{
	SqliteSink *s = sink->private_data;

	*lsn = s->committed_lsn;
	return true;
}

/* A copy of rel's rows begins: they replace the table's. */
static bool
sqlite_begin_copy(Sink *sink, const Dsplug__Relation *rel, uint64_t copy_lsn)
{
	(void) copy_lsn;
	return sqlite_truncate(sink, &rel, 1, false, false, INVALID_LSN, 0);
}

/* The copy is complete: remember its LSN with the table (lite_relation). */
static bool
sqlite_end_copy(Sink *sink, const Dsplug__Relation *rel, uint64_t copy_lsn)
{
	return lite_set_copied(sink, rel, copy_lsn);
}

/* ---------------------------------------------------------------------
 * Changes
 * ---------------------------------------------------------------------
 */

static bool
sqlite_change(Sink *sink, const SinkChange *change)
{
	SqliteSink *s = sink->private_data;
	Table	   *t = table_lookup(s, change->relation->oid);
	uint8_t		wbuf[256];
	uint8_t		mbuf[256];
	uint8_t    *write = NULL;
	uint8_t    *match = NULL;
	int			changes = 0;
	bool		ok = false;

	if (t == NULL || (size_t) t->ncols != change->relation->n_columns)
	{
		error_set(RESULT_RUNTIME, "could not apply a change to relation %u: it was not described to the target",
				  change->relation->oid);
		return false;
	}

	/* which columns to write: all but unchanged TOAST */
	if (change->new_ != NULL)
	{
		bool		all = true;

		write = (t->ncols <= (int) sizeof(wbuf)) ? wbuf : xmalloc((size_t) t->ncols);
		for (int c = 0; c < t->ncols; c++)
		{
			write[c] = change->new_->values[c]->kind_case !=
				DSPLUG__VALUE__KIND_UNCHANGED_TOAST;
			all &= write[c];
		}
		if (all && write != wbuf)
			free(write);
		if (all)
			write = NULL;		/* NULL: every column, the common case */
	}

	switch (change->kind)
	{
		case SINK_INSERT:
			ok = run_change(s, t, t->nkeys > 0 ? OP_UPSERT : OP_INSERT,
							change->new_, write, NULL, NULL, &changes);
			break;
		case SINK_UPDATE:
			if (t->nkeys > 0)
			{
				/* with an old key, move the row it names; else upsert */
				if (change->old != NULL)
				{
					ok = run_change(s, t, OP_MOVE, change->new_, write,
									change->old, NULL, &changes);
					if (!ok || changes > 0)
						break;
				}
				ok = run_change(s, t, OP_UPSERT, change->new_, write,
								NULL, NULL, &changes);
			}
			else if (change->old != NULL)
			{
				match = (t->ncols <= (int) sizeof(mbuf)) ? mbuf : xmalloc((size_t) t->ncols);
				for (int c = 0; c < t->ncols; c++)
					match[c] = change->old->values[c]->kind_case !=
						DSPLUG__VALUE__KIND_UNCHANGED_TOAST;
				ok = run_change(s, t, OP_UPDATE_MATCH, change->new_, write,
								change->old, match, &changes);
				if (ok && changes == 0)
					ok = run_change(s, t, OP_INSERT, change->new_, write,
									NULL, NULL, &changes);
			}
			else
			{
				if (!t->warned)
					log_warning("table \"%s\" has no key or replica identity: updates are appended as new rows",
								t->name);
				t->warned = true;
				ok = run_change(s, t, OP_INSERT, change->new_, write,
								NULL, NULL, &changes);
			}
			break;
		case SINK_DELETE:
			if (t->nkeys > 0)
				ok = run_change(s, t, OP_DELETE, NULL, NULL, change->old, NULL,
								&changes);
			else if (t->identity == DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_FULL)
			{
				match = (t->ncols <= (int) sizeof(mbuf)) ? mbuf : xmalloc((size_t) t->ncols);
				for (int c = 0; c < t->ncols; c++)
					match[c] = change->old->values[c]->kind_case !=
						DSPLUG__VALUE__KIND_UNCHANGED_TOAST;
				ok = run_change(s, t, OP_DELETE_MATCH, NULL, NULL,
								change->old, match, &changes);
			}
			else
			{
				if (!t->warned)
					log_warning("table \"%s\" has no key or replica identity: deletes cannot be applied",
								t->name);
				t->warned = true;
				ok = true;
			}
			break;
	}

	if (write != NULL && write != wbuf)
		free(write);
	if (match != NULL && match != mbuf)
		free(match);
	return ok;
}

/*
 * Run one statement for a change: bind the written columns of row (in
 * column order), then the old row's key columns (OP_MOVE, OP_DELETE) or
 * its matched columns (OP_*_MATCH), and step.  *changes is the number of
 * rows changed.
 */
static bool
run_change(SqliteSink *s, Table *t, StmtOp op, const Dsplug__Tuple *row,
		   const uint8_t *write, const Dsplug__Tuple *old,
		   const uint8_t *match, int *changes)
{
	Stmt	   *st = get_stmt(s, t, op, write, match);
	int			param = 1;
	int			rc;

	if (st == NULL)
		return false;
	if (row != NULL)
	{
		for (int c = 0; c < t->ncols; c++)
		{
			if (write != NULL && !write[c])
				continue;
			if (!bind_value(s, st->stmt, param++, row->values[c], &t->cols[c]))
				return false;
		}
	}
	if (op == OP_MOVE || op == OP_DELETE)
	{
		for (int c = 0; c < t->ncols; c++)
		{
			if (t->cols[c].key &&
				!bind_value(s, st->stmt, param++, old->values[c], &t->cols[c]))
				return false;
		}
	}
	else if (op == OP_UPDATE_MATCH || op == OP_DELETE_MATCH)
	{
		for (int c = 0; c < t->ncols; c++)
		{
			if (match[c] &&
				!bind_value(s, st->stmt, param++, old->values[c], &t->cols[c]))
				return false;
		}
	}

	rc = sqlite3_step(st->stmt);
	sqlite3_reset(st->stmt);
	if (rc != SQLITE_DONE)
	{
		error_set(RESULT_TARGET, "could not write to table \"%s\" of target database \"%s\": %s",
				  t->name, s->path, sqlite3_errmsg(s->db));
		return false;
	}
	*changes = sqlite3_changes(s->db);
	return true;
}

/*
 * Bind one value in the column's storage (file header).  Text values of
 * the batch are bound in place: they live until the change is applied.
 * Rendered values are copied by SQLite (SQLITE_TRANSIENT).
 */
static bool
bind_value(SqliteSink *s, sqlite3_stmt *stmt, int param,
		   const Dsplug__Value *value, const TableColumn *col)
{
	int			rc;
	char		buf[WIRE_DATETIME_BUFLEN];
	size_t		n;

	(void) col;
	switch (value->kind_case)
	{
		case DSPLUG__VALUE__KIND__NOT_SET:
		case DSPLUG__VALUE__KIND_UNCHANGED_TOAST:
			rc = sqlite3_bind_null(stmt, param);
			break;
		case DSPLUG__VALUE__KIND_INT:
			rc = sqlite3_bind_int64(stmt, param, value->int_);
			break;
		case DSPLUG__VALUE__KIND_FLOAT4:
			if (isnan(value->float4))
				rc = sqlite3_bind_text(stmt, param, "NaN", 3, SQLITE_STATIC);
			else
				rc = sqlite3_bind_double(stmt, param, (double) value->float4);
			break;
		case DSPLUG__VALUE__KIND_FLOAT8:
			if (isnan(value->float8))
				rc = sqlite3_bind_text(stmt, param, "NaN", 3, SQLITE_STATIC);
			else
				rc = sqlite3_bind_double(stmt, param, value->float8);
			break;
		case DSPLUG__VALUE__KIND_BOOL:
			rc = sqlite3_bind_int(stmt, param, value->bool_ ? 1 : 0);
			break;
		case DSPLUG__VALUE__KIND_BYTEA:
			/* a NULL pointer would bind SQL NULL, not an empty blob */
			rc = sqlite3_bind_blob64(stmt, param,
									 value->bytea.len > 0 ? (const void *) value->bytea.data : "",
									 value->bytea.len, SQLITE_STATIC);
			break;
		case DSPLUG__VALUE__KIND_TEXT:
			rc = sqlite3_bind_text64(stmt, param, value->text,
									 strlen(value->text), SQLITE_STATIC,
									 SQLITE_UTF8);
			break;
		case DSPLUG__VALUE__KIND_JSON:
			rc = sqlite3_bind_text64(stmt, param, value->json,
									 strlen(value->json), SQLITE_STATIC,
									 SQLITE_UTF8);
			break;
		case DSPLUG__VALUE__KIND_DATE:
			n = wire_format_date(buf, value->date);
			rc = sqlite3_bind_text(stmt, param, buf, (int) n, SQLITE_TRANSIENT);
			break;
		case DSPLUG__VALUE__KIND_TIMESTAMP:
			n = wire_format_timestamp(buf, value->timestamp, false);
			rc = sqlite3_bind_text(stmt, param, buf, (int) n, SQLITE_TRANSIENT);
			break;
		case DSPLUG__VALUE__KIND_TIMESTAMPTZ:
			n = wire_format_timestamp(buf, value->timestamptz, true);
			rc = sqlite3_bind_text(stmt, param, buf, (int) n, SQLITE_TRANSIENT);
			break;
		default:
			/* numeric, time, uuid, interval, arrays: the canonical text */
			wire_text_reset(&s->value);
			if (!wire_text_append_value(&s->value, value, NULL))
			{
				error_set(RESULT_RUNTIME, "could not render a value of column \"%s\": out of memory",
						  col->name);
				return false;
			}
			rc = sqlite3_bind_text64(stmt, param, s->value.data, s->value.len,
									 SQLITE_TRANSIENT, SQLITE_UTF8);
			break;
	}
	if (rc != SQLITE_OK)
	{
		error_set(RESULT_TARGET, "could not bind a value of column \"%s\": %s",
				  col->name, sqlite3_errstr(rc));
		return false;
	}
	return true;
}

static bool
sqlite_truncate(Sink *sink, const Dsplug__Relation *const *rels, size_t nrels,
				bool cascade, bool restart_identity, uint64_t commit_lsn,
				uint64_t position)
{
	SqliteSink *s = sink->private_data;

	(void) cascade;
	(void) restart_identity;
	(void) commit_lsn;
	(void) position;
	for (size_t i = 0; i < nrels; i++)
	{
		Table	   *t = table_lookup(s, rels[i]->oid);

		if (t == NULL)
		{
			error_set(RESULT_RUNTIME, "could not truncate relation %u: it was not described to the target",
					  rels[i]->oid);
			return false;
		}
		sql_reset(s);
		sql_add(s, "DELETE FROM ");
		sql_ident(s, t->name);
		if (!lite_exec(s, s->sql.data, "truncate a table in"))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Statements
 * ---------------------------------------------------------------------
 */

static bool
flags_equal(const uint8_t *a, const uint8_t *b, int n)
{
	if (a == NULL || b == NULL)
		return a == b;
	return memcmp(a, b, (size_t) n) == 0;
}

/* The cached statement for op and shape, prepared on first use. */
static Stmt *
get_stmt(SqliteSink *s, Table *t, StmtOp op, const uint8_t *write,
		 const uint8_t *match)
{
	Stmt	   *st;

	for (st = t->stmts; st != NULL; st = st->next)
	{
		if (st->op == op && flags_equal(st->write, write, t->ncols) &&
			flags_equal(st->match, match, t->ncols))
			return st;
	}

	st = xmalloc(sizeof(Stmt));
	memset(st, 0, sizeof(Stmt));
	st->op = op;
	if (write != NULL)
		st->write = memcpy(xmalloc((size_t) t->ncols), write, (size_t) t->ncols);
	if (match != NULL)
		st->match = memcpy(xmalloc((size_t) t->ncols), match, (size_t) t->ncols);
	if (!build_stmt(s, t, st))
	{
		free(st->write);
		free(st->match);
		free(st);
		return NULL;
	}
	st->next = t->stmts;
	t->stmts = st;
	return st;
}

#define WRITES(st, c)	((st)->write == NULL || (st)->write[c])

/* Does the statement write any column?  (Not for a relation without any.) */
static bool
writes_any(const Table *t, const Stmt *st)
{
	for (int c = 0; c < t->ncols; c++)
	{
		if (WRITES(st, c))
			return true;
	}
	return false;
}

/* Write and prepare the SQL of a statement (see StmtOp). */
static bool
build_stmt(SqliteSink *s, Table *t, Stmt *st)
{
	int			param = 1;
	bool		first = true;
	bool		any_update = false;

	sql_reset(s);
	switch (st->op)
	{
		case OP_UPSERT:
		case OP_INSERT:
			sql_add(s, "INSERT INTO ");
			sql_ident(s, t->name);
			if (st->op == OP_INSERT && !writes_any(t, st))
			{
				/* a relation without columns: a row of NULLs */
				sql_add(s, " DEFAULT VALUES");
				break;
			}
			sql_add(s, " (");
			for (int c = 0; c < t->ncols; c++)
			{
				if (!WRITES(st, c))
					continue;
				if (!first)
					sql_add(s, ", ");
				sql_ident(s, t->cols[c].name);
				first = false;
			}
			sql_add(s, ") VALUES (");
			first = true;
			for (int c = 0; c < t->ncols; c++)
			{
				if (!WRITES(st, c))
					continue;
				if (!first)
					sql_add(s, ", ");
				sql_param(s, param++);
				first = false;
			}
			sql_add(s, ")");
			if (st->op == OP_INSERT)
				break;
			sql_add(s, " ON CONFLICT (");
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
			sql_add(s, ") DO UPDATE SET ");
			first = true;
			for (int c = 0; c < t->ncols; c++)
			{
				if (!WRITES(st, c) || t->cols[c].key)
					continue;
				if (!first)
					sql_add(s, ", ");
				sql_ident(s, t->cols[c].name);
				sql_add(s, " = excluded.");
				sql_ident(s, t->cols[c].name);
				first = false;
				any_update = true;
			}
			if (!any_update)
			{
				/* every written column is a key column: nothing to update */
				s->sql.len -= strlen(" DO UPDATE SET ");
				s->sql.data[s->sql.len] = '\0';
				sql_add(s, " DO NOTHING");
			}
			break;

		case OP_MOVE:
		case OP_UPDATE_MATCH:
			/* OR REPLACE: the new key may hold a stale copy of the row */
			sql_add(s, st->op == OP_MOVE ? "UPDATE OR REPLACE " : "UPDATE ");
			sql_ident(s, t->name);
			sql_add(s, " SET ");
			for (int c = 0; c < t->ncols; c++)
			{
				if (!WRITES(st, c))
					continue;
				if (!first)
					sql_add(s, ", ");
				sql_ident(s, t->cols[c].name);
				sql_add(s, " = ");
				sql_param(s, param++);
				first = false;
			}
			if (first)
			{
				/*
				 * nothing written (all unchanged TOAST, or no columns): a
				 * no-op update, which still counts the row it finds
				 */
				sql_add(s, "rowid = rowid");
			}
			/* FALLTHROUGH */
		case OP_DELETE:
		case OP_DELETE_MATCH:
			if (st->op == OP_DELETE || st->op == OP_DELETE_MATCH)
			{
				sql_add(s, "DELETE FROM ");
				sql_ident(s, t->name);
			}
			if (st->op == OP_MOVE || st->op == OP_DELETE)
			{
				sql_add(s, " WHERE ");
				first = true;
				for (int c = 0; c < t->ncols; c++)
				{
					if (!t->cols[c].key)
						continue;
					if (!first)
						sql_add(s, " AND ");
					sql_ident(s, t->cols[c].name);
					sql_add(s, " = ");
					sql_param(s, param++);
					first = false;
				}
			}
			else
			{
				/* one row equal to the old row: IS compares NULLs too */
				sql_add(s, " WHERE rowid = (SELECT rowid FROM ");
				sql_ident(s, t->name);
				sql_add(s, " WHERE ");
				first = true;
				for (int c = 0; c < t->ncols; c++)
				{
					if (!st->match[c])
						continue;
					if (!first)
						sql_add(s, " AND ");
					sql_ident(s, t->cols[c].name);
					sql_add(s, " IS ");
					sql_param(s, param++);
					first = false;
				}
				if (first)
					sql_add(s, "true");
				sql_add(s, " LIMIT 1)");
			}
			break;
	}

	if (sqlite3_prepare_v3(s->db, s->sql.data, (int) s->sql.len,
						   SQLITE_PREPARE_PERSISTENT, &st->stmt, NULL) != SQLITE_OK)
	{
		error_set(RESULT_TARGET, "could not prepare a statement for table \"%s\" of target database \"%s\": %s",
				  t->name, s->path, sqlite3_errmsg(s->db));
		return false;
	}
	return true;
}

static void
sql_param(SqliteSink *s, int n)
{
	char		buf[16];

	snprintf(buf, sizeof(buf), "?%d", n);
	sql_add(s, buf);
}
