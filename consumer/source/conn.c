/*-------------------------------------------------------------------------
 *
 * conn.c
 *		Connections to the source: opening them (replication or normal),
 *		the session settings every reader of values shares, snapshot slots,
 *		and which failures a later attempt may not see.
 *
 * consumer/source/conn.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/source.h"

static bool permanent_connect_failure(PGconn *conn);

/*
 * Is conninfo a connection string libpq can read?  Like psql -d, a plain
 * word is a database name and always is.  false with libpq's reason in
 * err otherwise.
 */
bool
source_check_conninfo(const char *conninfo, char *err, size_t errsize)
{
	char	   *msg = NULL;
	PQconninfoOption *parsed;
	size_t		len;

	if (strchr(conninfo, '=') == NULL &&
		strncmp(conninfo, "postgres://", 11) != 0 &&
		strncmp(conninfo, "postgresql://", 13) != 0)
		return true;
	parsed = PQconninfoParse(conninfo, &msg);
	if (parsed != NULL)
	{
		PQconninfoFree(parsed);
		return true;
	}
	snprintf(err, errsize, "%s", msg != NULL ? msg : "out of memory");
	PQfreemem(msg);
	len = strlen(err);
	while (len > 0 && err[len - 1] == '\n')
		err[--len] = '\0';
	return false;
}

/*
 * SQLSTATE classes worth retrying: connection exceptions (08), transaction
 * rollbacks (40), insufficient resources (53), operator intervention such
 * as a shutdown (57), and an object in use (55006: the slot is still
 * active for our previous walsender).
 */
bool
source_retryable_sqlstate(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "40", 2) == 0 ||
		strncmp(sqlstate, "53", 2) == 0 || strncmp(sqlstate, "57", 2) == 0 ||
		strcmp(sqlstate, "55006") == 0;
}

/*
 * Connect to conninfo, as a replication connection (replication=database)
 * or a normal one.  On failure returns NULL after error_set():
 * RESULT_RETRY for a server that is down, RESULT_SERVER for one that
 * refuses us.
 */
PGconn *
source_connect(const char *conninfo, bool replication)
{
	const char *keys[4];
	const char *values[4];
	int			n = 0;
	PGconn	   *conn;

	keys[n] = "dbname";
	values[n++] = conninfo;
	if (replication)
	{
		keys[n] = "replication";
		values[n++] = "database";
	}
	keys[n] = "fallback_application_name";
	values[n++] = "dsplug-consumer";
	keys[n] = NULL;
	values[n] = NULL;

	conn = PQconnectdbParams(keys, values, 1);
	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
		return conn;

	error_set(conn != NULL && !permanent_connect_failure(conn) ?
			  RESULT_RETRY : RESULT_SERVER, "could not connect to the server: %s",
			  conn != NULL ? PQerrorMessage(conn) : "out of memory");
	PQfinish(conn);
	return NULL;
}

/*
 * libpq reports no SQLSTATE for a failed connection, so refusals are told
 * from a server that is down by their messages.
 */
static bool
permanent_connect_failure(PGconn *conn)
{
	static const char *const refusals[] = {
		"authentication failed", "no pg_hba.conf entry", "does not exist",
		"permission denied", "must be superuser", "no password supplied",
		"password is required", "invalid", "unsupported", "SSL",
		"certificate", NULL
	};
	const char *msg = PQerrorMessage(conn);

	if (PQconnectionNeedsPassword(conn))
		return true;
	/* "the database system is starting up / shutting down" is transient */
	if (strstr(msg, "the database system is") != NULL)
		return false;
	for (int i = 0; refusals[i] != NULL; i++)
	{
		if (strstr(msg, refusals[i]) != NULL)
			return true;
	}
	return false;
}

/*
 * Make values that travel as text (KIND_TEXT: ranges, user types, arrays
 * of odd shapes) independent of the server's settings, the same in the
 * walsender that decodes and in the sessions that copy or read rows
 * again: output functions follow these settings.
 */
bool
source_set_formats(PGconn *conn)
{
	PGresult   *res = PQexec(conn,
							 "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
							 "SET TimeZone = 'UTC'; SET extra_float_digits = 1; "
							 "SET bytea_output = 'hex'");
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

/*
 * CREATE_REPLICATION_SLOT ... LOGICAL dsplug (SNAPSHOT 'export') on a
 * replication connection: the snapshot it returns (a malloc'ed name the
 * caller frees) shows exactly the transactions that committed before the
 * slot's consistent point *lsn, and lives until the connection's next
 * command.  Returns false after error_set(): RESULT_SERVER for a refusal.
 */
bool
source_create_slot(PGconn *conn, const char *name, bool temporary,
				   char **snapshot, uint64_t *lsn)
{
	char	   *ident = PQescapeIdentifier(conn, name, strlen(name));
	char		sql[512];
	PGresult   *res;

	if (ident == NULL)
	{
		error_set(RESULT_RETRY, "could not create replication slot \"%s\": %s",
				  name, PQerrorMessage(conn));
		return false;
	}
	snprintf(sql, sizeof(sql),
			 "CREATE_REPLICATION_SLOT %s%s LOGICAL dsplug (SNAPSHOT 'export')",
			 ident, temporary ? " TEMPORARY" : "");
	PQfreemem(ident);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		PQnfields(res) < 3)
	{
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		bool		retry = sqlstate == NULL || source_retryable_sqlstate(sqlstate);

		error_set(retry ? RESULT_RETRY : RESULT_SERVER,
				  "could not create replication slot \"%s\": %s", name,
				  PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	if (!parse_lsn(PQgetvalue(res, 0, 1), lsn))
	{
		error_set(RESULT_RETRY, "could not create replication slot \"%s\": invalid consistent point \"%s\"",
				  name, PQgetvalue(res, 0, 1));
		PQclear(res);
		return false;
	}
	*snapshot = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return true;
}

/*
 * Open a REPEATABLE READ, READ ONLY transaction on an exported snapshot,
 * on a normal connection.
 */
bool
source_begin_snapshot(PGconn *conn, const char *snapshot)
{
	char	   *lit = PQescapeLiteral(conn, snapshot, strlen(snapshot));
	char		sql[256];
	PGresult   *res;

	if (lit == NULL)
		return source_conn_failed(conn, "start the backfill transaction");
	snprintf(sql, sizeof(sql),
			 "SET client_encoding = 'UTF8'; "
			 "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
			 "SET TRANSACTION SNAPSHOT %s", lit);
	PQfreemem(lit);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		error_set(RESULT_RETRY, "could not import the backfill snapshot: %s",
				  PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * The connection failed while doing what: false after error_set() with
 * RESULT_RETRY.
 */
bool
source_conn_failed(PGconn *conn, const char *what)
{
	error_set(RESULT_RETRY, "could not %s: %s", what,
			  conn != NULL ? PQerrorMessage(conn) : "no connection");
	return false;
}
