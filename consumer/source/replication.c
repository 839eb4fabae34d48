/*-------------------------------------------------------------------------
 *
 * replication.c
 *		The walsender protocol on a replication connection, as
 *		pg_recvlogical speaks it: the slot's checks, START_REPLICATION with
 *		the plugin's options, XLogData and keepalive messages in, standby
 *		status updates out, and the end of the stream.
 *
 * Nothing here decides what to confirm or what to do with a frame: the
 * core (core/stream.c) does, with what these functions read.
 *
 * consumer/source/replication.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "source/source.h"

static bool result_failed(PGresult *res, const char *what);

static inline uint64_t
read_u64(const char *p)
{
	uint64_t	v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (uint8_t) p[i];
	return v;
}

static inline void
write_u64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
	{
		p[i] = (char) (v & 0xFF);
		v >>= 8;
	}
}

/*
 * A command failed: a later attempt can fix some failures (the server
 * going down or starting up, a slot still held by our previous walsender,
 * a lost connection: RESULT_RETRY), not the rest (RESULT_SERVER).  Takes
 * ownership of res.
 */
static bool
result_failed(PGresult *res, const char *what)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	bool		retry = sqlstate == NULL || source_retryable_sqlstate(sqlstate);

	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	if (msg == NULL || *msg == '\0')
		msg = "connection lost";
	error_set(retry ? RESULT_RETRY : RESULT_SERVER, "could not %s: %s",
			  what, msg);
	PQclear(res);
	return false;
}

/*
 * Check slot: if it exists, it must be a logical dsplug slot of the
 * database connected to (RESULT_SERVER otherwise).  Sets info.
 */
bool
repl_check_slot(PGconn *conn, const char *slot, ReplSlot *info)
{
	char	   *lit = PQescapeLiteral(conn, slot, strlen(slot));
	char		sql[1024];
	PGresult   *res;

	memset(info, 0, sizeof(ReplSlot));
	if (lit == NULL)
		return source_conn_failed(conn, "check the replication slot");
	snprintf(sql, sizeof(sql),
			 "SELECT s.plugin, s.slot_type, s.confirmed_flush_lsn, d.datname, "
			 "d.datname = current_database(), s.two_phase "
			 "FROM pg_catalog.pg_replication_slots s "
			 "LEFT JOIN pg_catalog.pg_database d ON d.oid = s.datoid "
			 "WHERE s.slot_name = %s", lit);
	PQfreemem(lit);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_failed(res, "check the replication slot");
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		return true;
	}

	if (strcmp(PQgetvalue(res, 0, 1), "logical") != 0)
	{
		error_set(RESULT_SERVER, "could not start replication: replication slot \"%s\" is a physical slot, not a logical dsplug slot",
				  slot);
		PQclear(res);
		return false;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "dsplug") != 0)
	{
		error_set(RESULT_SERVER, "could not start replication: replication slot \"%s\" uses output plugin \"%s\", not dsplug",
				  slot, PQgetvalue(res, 0, 0));
		PQclear(res);
		return false;
	}
	if (strcmp(PQgetvalue(res, 0, 4), "t") != 0)
	{
		error_set(RESULT_SERVER, "could not start replication: replication slot \"%s\" belongs to database \"%s\", not to the one connected to",
				  slot, PQgetvalue(res, 0, 3));
		PQclear(res);
		return false;
	}
	info->exists = true;
	info->two_phase = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	if (!PQgetisnull(res, 0, 2) &&
		!parse_lsn(PQgetvalue(res, 0, 2), &info->confirmed_lsn))
		info->confirmed_lsn = INVALID_LSN;
	PQclear(res);
	return true;
}

/*
 * The slot must exist and no walsender may be streaming from it (another
 * consumer could then move it).  false after error_set().
 */
bool
repl_check_slot_idle(PGconn *conn, const char *slot)
{
	char	   *lit = PQescapeLiteral(conn, slot, strlen(slot));
	char		sql[512];
	PGresult   *res;

	if (lit == NULL)
		return source_conn_failed(conn, "check the replication slot");
	snprintf(sql, sizeof(sql),
			 "SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
			 lit);
	PQfreemem(lit);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		error_set(RESULT_SERVER, "could not check replication slot \"%s\": %s",
				  slot, PQresultStatus(res) == PGRES_TUPLES_OK ?
				  "it does not exist" : PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	if (!PQgetisnull(res, 0, 0))
	{
		error_set(RESULT_RETRY, "could not backfill from replication slot \"%s\": it is in use by process %s",
				  slot, PQgetvalue(res, 0, 0));
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * START_REPLICATION SLOT slot LOGICAL start with proto_version (the one
 * wire version the consumer reads: a plugin that does not speak it refuses
 * with both versions named), publication_names and the options that have
 * a value.  The connection is then in COPY BOTH mode.
 */
bool
repl_start(PGconn *conn, const char *slot, uint64_t start, int proto_version,
		   const char *publications, const ReplOption *options, int noptions)
{
	char	   *ident = PQescapeIdentifier(conn, slot, strlen(slot));
	char	   *pubs = PQescapeLiteral(conn, publications, strlen(publications));
	size_t		len;
	char	   *sql;
	PGresult   *res;

	if (ident == NULL || pubs == NULL)
	{
		PQfreemem(ident);
		PQfreemem(pubs);
		return source_conn_failed(conn, "start replication");
	}
	len = strlen(ident) + strlen(pubs) + 256;
	for (int i = 0; i < noptions; i++)
	{
		if (options[i].value != NULL)
			len += strlen(options[i].name) + 2 * strlen(options[i].value) + 32;
	}
	sql = xmalloc(len);
	snprintf(sql, len,
			 "START_REPLICATION SLOT %s LOGICAL %X/%X (\"proto_version\" '%d', \"publication_names\" %s",
			 ident, LSN_FORMAT_ARGS(start), proto_version, pubs);
	PQfreemem(ident);
	PQfreemem(pubs);
	for (int i = 0; i < noptions; i++)
	{
		char	   *lit;

		if (options[i].value == NULL)
			continue;
		lit = PQescapeLiteral(conn, options[i].value, strlen(options[i].value));
		if (lit == NULL)
		{
			free(sql);
			return source_conn_failed(conn, "start replication");
		}
		strcat(sql, ", \"");
		strcat(sql, options[i].name);
		strcat(sql, "\" ");
		strcat(sql, lit);
		PQfreemem(lit);
	}
	strcat(sql, ")");

	res = PQexec(conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
		return result_failed(res, "start replication");
	PQclear(res);
	return true;
}

/*
 * Read the next message without waiting.  REPL_MESSAGE: *msg points into
 * *buf, which the caller releases with repl_release().  REPL_FAILED and
 * REPL_ENDED: error_set() says why (RESULT_RETRY: a new session may do
 * better).
 */
ReplRead
repl_read(PGconn *conn, ReplMessage *msg, char **buf)
{
	int			r;
	char	   *b = NULL;

	*buf = NULL;
	r = PQgetCopyData(conn, &b, 1);
	if (r == 0)
	{
		/* libpq's buffer is empty: read what the socket has */
		if (PQconsumeInput(conn) == 0)
		{
			source_conn_failed(conn, "receive data");
			return REPL_FAILED;
		}
		r = PQgetCopyData(conn, &b, 1);
	}
	if (r == 0)
		return REPL_NONE;
	if (r == -1)
	{
		PGresult   *res = PQgetResult(conn);

		/* the server ended the stream, normally with an error */
		if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
		{
			result_failed(res, "receive data");
			return REPL_FAILED;
		}
		PQclear(res);
		error_set(RESULT_RETRY, "could not receive data: the server ended replication (shutting down?)");
		return REPL_ENDED;
	}
	if (r == -2)
	{
		source_conn_failed(conn, "receive data");
		return REPL_FAILED;
	}

	*buf = b;
	memset(msg, 0, sizeof(ReplMessage));
	msg->type = b[0];
	if (b[0] == 'k')
	{
		if (r < 18)
		{
			error_set(RESULT_RUNTIME, "could not read keepalive message: %d bytes, expected 18",
					  r);
			return REPL_FAILED;
		}
		msg->wal_end = read_u64(b + 1);
		msg->reply_requested = b[17] != 0;
		return REPL_MESSAGE;
	}
	if (b[0] == 'w')
	{
		if (r < 25)
		{
			error_set(RESULT_RUNTIME, "could not read XLogData message: %d bytes, expected at least 25",
					  r);
			return REPL_FAILED;
		}
		msg->data_start = read_u64(b + 1);
		msg->wal_end = read_u64(b + 9);
		msg->data = (const uint8_t *) b + 25;
		msg->len = (size_t) r - 25;
		return REPL_MESSAGE;
	}
	error_set(RESULT_RUNTIME, "could not read replication message: unknown message type 0x%02x",
			  (unsigned char) b[0]);
	return REPL_FAILED;
}

void
repl_release(char *buf)
{
	if (buf != NULL)
		PQfreemem(buf);
}

/*
 * Wait until the socket is readable, the timeout passes or a signal comes,
 * then take in what arrived.  false when the connection is gone.
 */
bool
repl_wait(PGconn *conn, int64_t timeout_us)
{
	int			fd = PQsocket(conn);
	fd_set		fds;
	struct timeval tv;

	if (fd < 0)
		return false;
	FD_ZERO(&fds);
	FD_SET(fd, &fds);
	tv.tv_sec = (time_t) (timeout_us / 1000000);
	tv.tv_usec = (suseconds_t) (timeout_us % 1000000);
	if (select(fd + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
		return false;
	return PQconsumeInput(conn) != 0;
}

/*
 * A standby status update: write = received, flush = apply = what the
 * consumer confirms.  false when it could not be sent.
 */
bool
repl_send_status(PGconn *conn, uint64_t write, uint64_t flush,
				 bool request_reply)
{
	char		msg[1 + 8 + 8 + 8 + 8 + 1];

	msg[0] = 'r';
	write_u64(msg + 1, write);
	write_u64(msg + 9, flush);
	write_u64(msg + 17, flush);
	write_u64(msg + 25, (uint64_t) postgres_now_us());
	msg[33] = request_reply ? 1 : 0;
	return PQputCopyData(conn, msg, sizeof(msg)) > 0 && PQflush(conn) == 0;
}

/*
 * End the stream: CopyDone, then drain what the server still sends until
 * it ends the copy.  Failures are ignored: the connection is closed next.
 */
void
repl_end(PGconn *conn)
{
	PGresult   *res;

	if (PQputCopyEnd(conn, NULL) <= 0 || PQflush(conn) != 0)
		return;
	for (;;)
	{
		char	   *buf;
		int			r = PQgetCopyData(conn, &buf, 0);

		if (r < 0)
			break;
		PQfreemem(buf);
	}
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
}
