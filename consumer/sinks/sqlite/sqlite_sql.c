/*-------------------------------------------------------------------------
 *
 * sqlite_sql.c
 *		The SQLite sink's small SQL helpers, under both sink_sqlite.c and
 *		sqlite_schema.c: running and preparing statements with errors that
 *		name the target, and building statement text.
 *
 * consumer/sinks/sqlite/sqlite_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/sqlite.h"

static void text_put(WireText *text, const char *str, size_t len);

bool
lite_fail(SqliteSink *s, const char *what)
{
	error_set(RESULT_TARGET, "could not %s target database \"%s\": %s",
			  what, s->path, sqlite3_errmsg(s->db));
	return false;
}

bool
lite_exec(SqliteSink *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return lite_fail(s, what);
	return true;
}

bool
lite_prepare(SqliteSink *s, const char *sql, sqlite3_stmt **stmt,
			 const char *what)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK)
	{
		*stmt = NULL;
		return lite_fail(s, what);
	}
	return true;
}

/* Step a statement that returns no rows, then reset it. */
bool
lite_step_done(SqliteSink *s, sqlite3_stmt *stmt, const char *what)
{
	int			rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE)
		return lite_fail(s, what);
	return true;
}

void
sql_reset(SqliteSink *s)
{
	wire_text_reset(&s->sql);
}

void
sql_add(SqliteSink *s, const char *text)
{
	text_add(&s->sql, text);
}

/* Append to a text, or exit: statements are small, so this cannot fail. */
static void
text_put(WireText *text, const char *str, size_t len)
{
	if (!wire_text_append(text, str, len))
	{
		fprintf(stderr, "dsplug-consumer: could not build a statement: out of memory\n");
		exit(EXIT_RUNTIME);
	}
}

void
text_add(WireText *text, const char *str)
{
	text_put(text, str, strlen(str));
}

/* A quoted identifier: "name", with embedded quotes doubled. */
void
text_ident(WireText *text, const char *ident)
{
	text_put(text, "\"", 1);
	for (const char *p = ident; *p != '\0'; p++)
	{
		text_put(text, p, 1);
		if (*p == '"')
			text_put(text, p, 1);
	}
	text_put(text, "\"", 1);
}

void
sql_ident(SqliteSink *s, const char *ident)
{
	text_ident(&s->sql, ident);
}
