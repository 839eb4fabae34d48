/*-------------------------------------------------------------------------
 *
 * stream.c
 *		The replication client: connect with replication=database, check
 *		the slot, create it or backfill when asked, START_REPLICATION with
 *		the plugin's options, then read XLogData and keepalives, hand frames
 *		to apply.c, and send standby status updates; reconnect with backoff
 *		when the connection is lost.  Modelled on pg_recvlogical.
 *
 * What is confirmed.  The flush (and apply) position of every standby
 * status update comes from confirmable_lsn() and nowhere else; see there.
 *
 * Failures.  Losing the connection, a server shutdown or restart, a slot
 * still held by a walsender that has not noticed our previous connection
 * died: retried with exponential backoff, forever.  A refusal (no such
 * slot, a slot of another plugin, permission or authentication denied, an
 * unknown publication, a wire version the server's plugin does not speak)
 * ends the run with EXIT_SERVER: retrying would not change the answer.
 *
 * consumer/stream.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"

#define BACKOFF_MIN_MS		500
#define BACKOFF_MAX_MS		15000

/* one of these ends a session */
typedef enum SessionResult
{
	SESSION_CONTINUE,			/* go on with the session */
	SESSION_DONE,				/* --endpos reached, or stop requested */
	SESSION_RETRY,				/* connection lost: reconnect */
	SESSION_FATAL				/* error_set() says why and how to exit */
} SessionResult;

typedef struct Stream
{
	const ConsumerOptions *opts;
	Applier    *applier;
	PGconn	   *conn;
	Recorder   *recorder;
	Status		status;

	uint64_t	received_lsn;	/* start of the latest XLogData */
	uint64_t	server_lsn;		/* the server's latest walEnd */
	uint64_t	keepalive_lsn;	/* walEnd of the latest keepalive */
	uint64_t	sent_flush;		/* flush position last sent */
	int64_t		last_feedback;	/* clock_us() of the last update sent */
	bool		two_phase;		/* prepared transactions are decoded: the
								 * option was given or the slot has
								 * two_phase */
	bool		backfilled;		/* the target was filled this run */
	bool		streamed;		/* the session got as far as streaming */
	bool		copy_failed;	/* a mid-stream copy lost its connection */
} Stream;

static SessionResult run_session(Stream *st);
static SessionResult prepare_slot(Stream *st);
static SessionResult start_replication(Stream *st);
static SessionResult stream_loop(Stream *st);
static SessionResult finish(Stream *st);
static SessionResult handle_message(Stream *st, const char *buf, int len);
static SessionResult connection_lost(Stream *st, const char *what);
static SessionResult result_error(PGresult *res, const char *what);
static uint64_t confirmable_lsn(Stream *st);
static uint64_t reached_lsn(Stream *st);
static bool send_feedback(Stream *st, bool force, bool request_reply);
static bool wait_socket(Stream *st, int64_t timeout_us);
static void sleep_interruptible(int ms);
static bool copy_relation_hook(void *arg, const Dsplug__Relation *rel,
							   bool created, uint64_t *copied_lsn);
static void copy_tick(void *arg);
static char *quote_literal(PGconn *conn, const char *s);
static char *quote_ident(PGconn *conn, const char *s);
static bool permanent_connect_failure(PGconn *conn);

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
 * Stream until --endpos or a stop request, reconnecting as needed.
 * Returns the exit code.
 */
int
stream_run(const ConsumerOptions *opts, Applier *a)
{
	Stream		st;
	int			backoff = BACKOFF_MIN_MS;
	int			code = EXIT_OK;

	memset(&st, 0, sizeof(Stream));
	st.opts = opts;
	st.applier = a;
	status_init(&st.status, opts->status_interval);
	if (opts->record_file != NULL &&
		(st.recorder = recorder_open(opts->record_file)) == NULL)
		return error_exit_code();
	if (opts->backfill || opts->create_slot)
	{
		a->copy_hook = copy_relation_hook;
		a->copy_arg = &st;
	}
	a->toast = toast_fetcher_create(opts);

	for (;;)
	{
		SessionResult r;

		st.streamed = false;
		st.copy_failed = false;
		a->source_failed = false;
		r = run_session(&st);

		/* keep what is complete; a transaction cut short comes again */
		if (!apply_end_session(a))
			r = SESSION_FATAL;
		if (st.conn != NULL)
		{
			PQfinish(st.conn);
			st.conn = NULL;
		}

		if (r == SESSION_FATAL)
		{
			code = error_exit_code();
			break;
		}
		if (r == SESSION_DONE || stop_requested)
			break;

		if (st.streamed)
			backoff = BACKOFF_MIN_MS;
		log_warning("%s; reconnecting in %.1f s", error_message(),
					backoff / 1000.0);
		error_clear();
		sleep_interruptible(backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		if (stop_requested)
			break;
	}

	status_tick(&st.status, a, confirmable_lsn(&st), st.server_lsn, true);
	toast_fetcher_free(a->toast);
	a->toast = NULL;
	if (st.recorder != NULL && !recorder_close(st.recorder) && code == EXIT_OK)
		code = error_exit_code();
	return code;
}

static SessionResult
run_session(Stream *st)
{
	bool		retryable;
	SessionResult r;

	st->conn = connect_server(st->opts, true, &retryable);
	if (st->conn == NULL)
		return retryable ? SESSION_RETRY : SESSION_FATAL;
	if (!set_session_formats(st->conn))
		return connection_lost(st, "configure the replication connection");

	r = prepare_slot(st);
	if (r != SESSION_CONTINUE)
		return r;
	if (stop_requested)
		return SESSION_DONE;
	r = start_replication(st);
	if (r != SESSION_CONTINUE)
		return r;
	return stream_loop(st);
}

/*
 * Check the slot: it must exist (or be created with --create-slot), be a
 * logical dsplug slot, and belong to this database.  A target without a
 * position is filled first when --create-slot or --backfill asks for it:
 * with a slot created here, under the snapshot the creation exported;
 * otherwise under a temporary slot's (backfill.c).  Returns
 * SESSION_CONTINUE when streaming may start.
 */
static SessionResult
prepare_slot(Stream *st)
{
	const ConsumerOptions *opts = st->opts;
	char	   *lit = quote_literal(st->conn, opts->slot);
	char		sql[1024];
	PGresult   *res;

	if (lit == NULL)
		return connection_lost(st, "check the replication slot");
	snprintf(sql, sizeof(sql),
			 "SELECT s.plugin, s.slot_type, s.confirmed_flush_lsn, d.datname, "
			 "d.datname = current_database(), s.two_phase "
			 "FROM pg_catalog.pg_replication_slots s "
			 "LEFT JOIN pg_catalog.pg_database d ON d.oid = s.datoid "
			 "WHERE s.slot_name = %s", lit);
	PQfreemem(lit);
	res = PQexec(st->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(res, "check the replication slot");

	if (PQntuples(res) == 0)
	{
		char	   *snapshot = NULL;
		uint64_t	lsn;

		PQclear(res);
		if (!opts->create_slot)
		{
			error_set(EXIT_SERVER, "could not start replication: replication slot \"%s\" does not exist (create it, or use --create-slot)",
					  opts->slot);
			return SESSION_FATAL;
		}

		/*
		 * A new slot: its exported snapshot is valid until this connection
		 * runs its next command, which is START_REPLICATION after the copy.
		 * The copy replaces the published tables' contents, so a target
		 * that held changes from a dropped slot of this name is made whole
		 * again.
		 */
		if (!create_snapshot_slot(st->conn, opts->slot, false, &snapshot, &lsn))
			return error_exit_code() == EXIT_SERVER ? SESSION_FATAL : SESSION_RETRY;
		log_info("created replication slot \"%s\" at %X/%X", opts->slot,
				 LSN_FORMAT_ARGS(lsn));
		if (!backfill_run(opts, st->applier->sink, snapshot, lsn))
		{
			free(snapshot);
			if (stop_requested)
				return SESSION_DONE;
			return error_exit_code() == EXIT_SERVER ||
				error_exit_code() == EXIT_TARGET ? SESSION_FATAL : SESSION_RETRY;
		}
		free(snapshot);
		st->applier->applied_lsn = st->applier->sink->ops->flushed_lsn(st->applier->sink);
		st->backfilled = true;
		st->two_phase = opts->two_phase;
		/* a new slot's confirmed position is its consistent point */
		if (lsn > st->sent_flush)
			st->sent_flush = lsn;
		return SESSION_CONTINUE;
	}

	if (strcmp(PQgetvalue(res, 0, 1), "logical") != 0)
	{
		error_set(EXIT_SERVER, "could not start replication: replication slot \"%s\" is a physical slot, not a logical dsplug slot",
				  opts->slot);
		PQclear(res);
		return SESSION_FATAL;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "dsplug") != 0)
	{
		error_set(EXIT_SERVER, "could not start replication: replication slot \"%s\" uses output plugin \"%s\", not dsplug",
				  opts->slot, PQgetvalue(res, 0, 0));
		PQclear(res);
		return SESSION_FATAL;
	}
	if (strcmp(PQgetvalue(res, 0, 4), "t") != 0)
	{
		error_set(EXIT_SERVER, "could not start replication: replication slot \"%s\" belongs to database \"%s\", not to the one connected to",
				  opts->slot, PQgetvalue(res, 0, 3));
		PQclear(res);
		return SESSION_FATAL;
	}
	/*
	 * Once a slot has two_phase (created so, or marked by the first session
	 * that asked for it), PostgreSQL decodes prepared transactions in every
	 * session, with the option or without: they are handled either way.
	 */
	st->two_phase = opts->two_phase || strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	if (!PQgetisnull(res, 0, 2))
	{
		uint64_t	confirmed;

		/* the server's position: never confirm less than it has */
		if (parse_lsn(PQgetvalue(res, 0, 2), &confirmed) &&
			confirmed > st->sent_flush)
			st->sent_flush = confirmed;
	}
	PQclear(res);

	if ((opts->backfill || opts->create_slot) && !st->backfilled &&
		st->applier->sink->ops->flushed_lsn(st->applier->sink) == INVALID_LSN)
	{
		uint64_t	lsn;

		if (!backfill_temporary_slot(opts, st->applier->sink, &lsn))
		{
			if (stop_requested)
				return SESSION_DONE;
			return error_exit_code() == EXIT_SERVER ||
				error_exit_code() == EXIT_TARGET ? SESSION_FATAL : SESSION_RETRY;
		}
		st->applier->applied_lsn = st->applier->sink->ops->flushed_lsn(st->applier->sink);
		st->backfilled = true;
	}
	return SESSION_CONTINUE;
}

/*
 * START_REPLICATION from what the target holds, with the plugin options.
 *
 * With two-phase decoding, from the slot's confirmed position instead:
 * the target may hold transactions that committed after the PREPARE of a
 * transaction still prepared, and PostgreSQL sends that PREPARE again only
 * when decoding starts at or before it (the confirmed position is held
 * there, apply.c).  Transactions between the two positions are sent again
 * and skipped.
 */
static SessionResult
start_replication(Stream *st)
{
	const ConsumerOptions *opts = st->opts;
	Applier    *a = st->applier;
	uint64_t	start = a->sink->ops->flushed_lsn(a->sink);
	char	   *slot = quote_ident(st->conn, opts->slot);
	char	   *pubs = quote_literal(st->conn, opts->publications);
	char	   *extra[5] = {NULL, NULL, NULL, NULL, NULL};
	const char *names[5] = {"compression", "compression_level", "batch_size",
	"streaming", "two_phase"};
	const char *values[5] = {opts->compression, opts->compression_level,
		opts->batch_size, opts->streaming ? "on" : NULL,
	opts->two_phase ? "on" : NULL};
	size_t		len;
	char	   *sql;
	PGresult   *res;

	if (slot == NULL || pubs == NULL)
	{
		PQfreemem(slot);
		PQfreemem(pubs);
		return connection_lost(st, "start replication");
	}
	if (st->two_phase && st->sent_flush < start)
		start = st->sent_flush;
	len = strlen(slot) + strlen(pubs) + 256;
	for (int i = 0; i < 5; i++)
	{
		if (values[i] != NULL)
		{
			extra[i] = quote_literal(st->conn, values[i]);
			if (extra[i] == NULL)
				return connection_lost(st, "start replication");
			len += strlen(extra[i]) + 32;
		}
	}

	/*
	 * proto_version asks for the one wire version this consumer reads; a
	 * plugin that does not speak it refuses with both versions named.
	 */
	sql = xmalloc(len);
	snprintf(sql, len,
			 "START_REPLICATION SLOT %s LOGICAL %X/%X (\"proto_version\" '%d', \"publication_names\" %s",
			 slot, LSN_FORMAT_ARGS(start), DSPLUG_WIRE_VERSION, pubs);
	for (int i = 0; i < 5; i++)
	{
		if (extra[i] == NULL)
			continue;
		strcat(sql, ", \"");
		strcat(sql, names[i]);
		strcat(sql, "\" ");
		strcat(sql, extra[i]);
		PQfreemem(extra[i]);
	}
	strcat(sql, ")");
	PQfreemem(slot);
	PQfreemem(pubs);

	res = PQexec(st->conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
		return result_error(res, "start replication");
	PQclear(res);

	log_info("streaming slot \"%s\" from %X/%X into %s", opts->slot,
			 LSN_FORMAT_ARGS(start), a->sink->uri);

	/* the server sends from the later of start and its confirmed position */
	apply_new_session(a, start > st->sent_flush ? start : st->sent_flush);
	/* what we asked for, and nothing a damaged version byte may claim */
	wire_decoder_require_version(a->decoder, DSPLUG_WIRE_VERSION);
	st->streamed = true;
	st->last_feedback = clock_us();
	return SESSION_CONTINUE;
}

/*
 * The replication loop.  Frames are applied as they come; when the
 * connection has nothing more for now, the open group is committed and,
 * if that moved the confirmable position, a status update goes out at
 * once, so the slot follows the target closely.
 */
static SessionResult
stream_loop(Stream *st)
{
	const ConsumerOptions *opts = st->opts;
	Applier    *a = st->applier;
	int64_t		feedback_us = (int64_t) opts->feedback_interval * 1000000;

	for (;;)
	{
		char	   *buf = NULL;
		int			r;
		SessionResult sr;
		int64_t		now;

		if (stop_requested)
			return finish(st);

		now = clock_us();
		if (now - st->last_feedback >= feedback_us &&
			!send_feedback(st, true, false))
			return connection_lost(st, "send a status update");
		if (!apply_tick(a))
			return SESSION_FATAL;
		status_tick(&st->status, a, confirmable_lsn(st), st->server_lsn, false);

		r = PQgetCopyData(st->conn, &buf, 1);
		if (r == 0)
		{
			/* libpq's buffer is empty: read what the socket has */
			if (PQconsumeInput(st->conn) == 0)
				return connection_lost(st, "receive data");
			r = PQgetCopyData(st->conn, &buf, 1);
		}
		if (r == 0)
		{
			int64_t		timeout;

			/*
			 * The server has sent nothing more for now: commit what is
			 * complete and confirm it, so the target and the slot follow
			 * closely when the stream is slow, and group many
			 * transactions per commit when it is fast.
			 */
			if (!apply_idle(a))
				return SESSION_FATAL;
			if (opts->endpos != INVALID_LSN && !apply_pending(a) &&
				reached_lsn(st) >= opts->endpos)
				return finish(st);
			if (confirmable_lsn(st) > st->sent_flush &&
				!send_feedback(st, false, false))
				return connection_lost(st, "send a status update");

			timeout = feedback_us - (clock_us() - st->last_feedback);
			if (a->group_open)
				timeout = (int64_t) opts->group_ms * 1000 / 2;
			if (timeout > 1000000)
				timeout = 1000000;
			if (timeout < 0)
				timeout = 0;
			if (!wait_socket(st, timeout))
				return connection_lost(st, "wait for data");
			if (PQconsumeInput(st->conn) == 0)
				return connection_lost(st, "receive data");
			continue;
		}
		if (r == -1)
		{
			PGresult   *res = PQgetResult(st->conn);

			/* the server ended the stream, normally with an error */
			if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
				return result_error(res, "receive data");
			PQclear(res);
			error_set(EXIT_RUNTIME, "could not receive data: the server ended replication (shutting down?)");
			return SESSION_RETRY;
		}
		if (r == -2)
			return connection_lost(st, "receive data");

		sr = handle_message(st, buf, r);
		PQfreemem(buf);
		if (sr != SESSION_CONTINUE)
			return sr;
		if (a->endpos_reached)
			return finish(st);
	}
}

/*
 * One CopyData message: XLogData ('w') carries a frame, a keepalive ('k')
 * the server's position and whether it wants an answer now.
 */
static SessionResult
handle_message(Stream *st, const char *buf, int len)
{
	if (len >= 1 && buf[0] == 'k')
	{
		uint64_t	wal_end;

		if (len < 18)
		{
			error_set(EXIT_RUNTIME, "could not read keepalive message: %d bytes, expected 18",
					  len);
			return SESSION_FATAL;
		}
		wal_end = read_u64(buf + 1);
		if (wal_end > st->server_lsn)
			st->server_lsn = wal_end;
		if (wal_end > st->keepalive_lsn)
			st->keepalive_lsn = wal_end;
		if (buf[17] && !send_feedback(st, true, false))
			return connection_lost(st, "send a status update");
		return SESSION_CONTINUE;
	}
	if (len >= 1 && buf[0] == 'w')
	{
		uint64_t	data_start;
		uint64_t	wal_end;

		if (len < 25)
		{
			error_set(EXIT_RUNTIME, "could not read XLogData message: %d bytes, expected at least 25",
					  len);
			return SESSION_FATAL;
		}
		data_start = read_u64(buf + 1);
		wal_end = read_u64(buf + 9);
		if (data_start > st->received_lsn)
			st->received_lsn = data_start;
		if (wal_end > st->server_lsn)
			st->server_lsn = wal_end;
		if (st->recorder != NULL &&
			!recorder_write(st->recorder, data_start, wal_end,
							(const uint8_t *) buf + 25, (size_t) len - 25))
			return SESSION_FATAL;
		if (!apply_frame(st->applier, (const uint8_t *) buf + 25,
						 (size_t) len - 25, data_start))
		{
			/*
			 * A copy, or a read of unchanged TOAST values, that lost its
			 * connection is retried: the transaction being applied is
			 * rolled back and sent again.
			 */
			if ((st->copy_failed || st->applier->source_failed) &&
				error_exit_code() == EXIT_RUNTIME)
				return SESSION_RETRY;
			return SESSION_FATAL;
		}
		return SESSION_CONTINUE;
	}
	error_set(EXIT_RUNTIME, "could not read replication message: unknown message type 0x%02x",
			  len >= 1 ? (unsigned char) buf[0] : 0);
	return SESSION_FATAL;
}

/*
 * Stop cleanly: commit what is complete (a transaction cut short is rolled
 * back and comes again next time), confirm it, end the stream.
 */
static SessionResult
finish(Stream *st)
{
	Sink	   *sink = st->applier->sink;
	PGresult   *res;

	if (!apply_end_session(st->applier))
		return SESSION_FATAL;
	/* an asynchronous sink: wait until what it was given is durable */
	if (sink->ops->sync != NULL && !sink->ops->sync(sink))
		return SESSION_FATAL;
	if (!send_feedback(st, true, false))
		return SESSION_DONE;	/* nothing lost: the next run resends */
	if (PQputCopyEnd(st->conn, NULL) <= 0 || PQflush(st->conn) != 0)
		return SESSION_DONE;

	/* drain what the server still sends until it ends the copy */
	for (;;)
	{
		char	   *buf;
		int			r = PQgetCopyData(st->conn, &buf, 0);

		if (r >= 0)
		{
			PQfreemem(buf);
			continue;
		}
		break;
	}
	while ((res = PQgetResult(st->conn)) != NULL)
		PQclear(res);
	log_info("stopped at %X/%X", LSN_FORMAT_ARGS(confirmable_lsn(st)));
	return SESSION_DONE;
}

/*
 * The position this consumer may confirm: the invariant of the whole
 * program lives here.
 *
 * It is the sink's flushed_lsn(), what the target durably holds, and never
 * more, with one exception that is still safe: when nothing is in flight
 * (no transaction being received, no open group, nothing the sink has not
 * made durable yet) and the server's latest
 * keepalive reported a walEnd at or beyond everything received, that
 * walEnd.  A keepalive's walEnd is where the walsender has read WAL up to;
 * every transaction that committed before it has been sent ahead of the
 * keepalive on this connection, so it was received, and with nothing in
 * flight it is in the target (or was filtered out by the publications).  A
 * transaction still running on the server commits after walEnd, so the
 * slot sends it even though walEnd is confirmed: confirmed_flush only
 * decides which commits are sent again.  This lets the slot advance over
 * WAL without published changes (an idle database, other tables), instead
 * of retaining it for nothing.  (reached_lsn computes this, and caps it at
 * what this session has received.)
 *
 * Two further caps: with two-phase decoding, never past the PREPARE of a
 * prepared transaction whose COMMIT PREPARED the target does not durably
 * hold (apply_hold_lsn); and never past what this session has received
 * (reached_lsn), since a two-phase session starts before the target's
 * position.
 *
 * The result never goes backwards: the server's own confirmed position is
 * its floor.
 */
static uint64_t
confirmable_lsn(Stream *st)
{
	uint64_t	lsn = reached_lsn(st);
	uint64_t	hold = apply_hold_lsn(st->applier);

	/*
	 * Two-phase: never past the PREPARE of a prepared transaction the
	 * target does not hold durably, so that the server sends it again
	 * after a restart (apply.c, "Prepared transactions").  The cost is
	 * that WAL from there on is decoded again after a restart, and
	 * transactions the target already holds are sent again and skipped.
	 */
	if (hold != INVALID_LSN && lsn > hold)
		lsn = hold;
	if (lsn < st->sent_flush)
		lsn = st->sent_flush;
	return lsn;
}

/*
 * How far the target holds the stream: what confirmable_lsn() would be
 * without the prepare holds and without its floor.  --endpos compares with
 * this (a prepared transaction is held, not missing).
 *
 * It is never beyond what this session has received: a two-phase session
 * starts at the slot's confirmed position, before the target's, and the
 * PREPAREs between the two must be received again (and held) before the
 * target's position may be confirmed.
 */
static uint64_t
reached_lsn(Stream *st)
{
	Applier    *a = st->applier;
	uint64_t	lsn = a->sink->ops->flushed_lsn(a->sink);
	uint64_t	reached = a->session_lsn;
	bool		caught_up = st->keepalive_lsn >= st->received_lsn &&
		!a->in_txn && a->receiving == NULL;

	/*
	 * "Nothing in flight" includes an asynchronous sink's commits that its
	 * server has not acknowledged yet: everything given to the sink must be
	 * durable (flushed == applied).  Streamed transactions still in
	 * progress are not in flight: they commit after the keepalive, and the
	 * server sends them again, whole, if the consumer stops before.
	 */
	if (!apply_pending(a) && lsn >= a->applied_lsn &&
		st->keepalive_lsn > lsn && caught_up)
		lsn = st->keepalive_lsn;
	if (caught_up && st->keepalive_lsn > reached)
		reached = st->keepalive_lsn;
	if (lsn > reached)
		lsn = reached;
	return lsn;
}

/*
 * Send a standby status update: write = what was received, flush = apply =
 * confirmable_lsn().  Without force, only when there is something new to
 * confirm.
 */
static bool
send_feedback(Stream *st, bool force, bool request_reply)
{
	char		msg[1 + 8 + 8 + 8 + 8 + 1];
	uint64_t	flush = confirmable_lsn(st);
	uint64_t	write = st->received_lsn > flush ? st->received_lsn : flush;

	if (!force && flush <= st->sent_flush)
		return true;
	msg[0] = 'r';
	write_u64(msg + 1, write);
	write_u64(msg + 9, flush);
	write_u64(msg + 17, flush);
	write_u64(msg + 25, (uint64_t) postgres_now_us());
	msg[33] = request_reply ? 1 : 0;
	if (PQputCopyData(st->conn, msg, sizeof(msg)) <= 0 || PQflush(st->conn) != 0)
		return false;
	st->sent_flush = flush;
	st->last_feedback = clock_us();
	return true;
}

/* Wait until the socket is readable, the timeout passes, or a signal. */
static bool
wait_socket(Stream *st, int64_t timeout_us)
{
	int			fd = PQsocket(st->conn);
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
	return true;
}

static void
sleep_interruptible(int ms)
{
	while (ms > 0 && !stop_requested)
	{
		struct timespec ts = {0, 100 * 1000 * 1000};

		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

/* The connection broke: retry, with the reason kept for the log line. */
static SessionResult
connection_lost(Stream *st, const char *what)
{
	error_set(EXIT_RUNTIME, "could not %s: %s", what,
			  st->conn != NULL ? PQerrorMessage(st->conn) : "no connection");
	return SESSION_RETRY;
}

/*
 * A command failed: retry what a later attempt can fix (the server going
 * down or starting up, a slot still held by our previous walsender, a lost
 * connection), refuse the rest.  Takes ownership of res.
 */
static SessionResult
result_error(PGresult *res, const char *what)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	bool		retry = sqlstate == NULL || is_retryable_sqlstate(sqlstate);

	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	if (msg == NULL || *msg == '\0')
		msg = "connection lost";
	error_set(retry ? EXIT_RUNTIME : EXIT_SERVER, "could not %s: %s", what, msg);
	PQclear(res);
	return retry ? SESSION_RETRY : SESSION_FATAL;
}

/*
 * SQLSTATE classes worth retrying: connection exceptions (08), transaction
 * rollbacks (40), insufficient resources (53), operator intervention such
 * as a shutdown (57), and an object in use (55006: the slot is still
 * active for our previous walsender).
 */
bool
is_retryable_sqlstate(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "40", 2) == 0 ||
		strncmp(sqlstate, "53", 2) == 0 || strncmp(sqlstate, "57", 2) == 0 ||
		strcmp(sqlstate, "55006") == 0;
}

/*
 * Connect, as a replication connection (replication=database) or a normal
 * one.  On failure returns NULL after error_set(), with *retryable telling
 * a server that is down from one that refuses us.
 */
PGconn *
connect_server(const ConsumerOptions *opts, bool replication, bool *retryable)
{
	const char *keys[4];
	const char *values[4];
	int			n = 0;
	PGconn	   *conn;

	keys[n] = "dbname";
	values[n++] = opts->dbname;
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

	*retryable = conn != NULL && !permanent_connect_failure(conn);
	error_set(*retryable ? EXIT_RUNTIME : EXIT_SERVER, "could not connect to the server: %s",
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
 * walsender that decodes and in the backfill session that copies: output
 * functions follow these settings.
 */
bool
set_session_formats(PGconn *conn)
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
 * command.  Returns false after error_set(): EXIT_SERVER for a refusal.
 */
bool
create_snapshot_slot(PGconn *conn, const char *name, bool temporary,
					 char **snapshot, uint64_t *lsn)
{
	char	   *ident = quote_ident(conn, name);
	char		sql[512];
	PGresult   *res;

	if (ident == NULL)
	{
		error_set(EXIT_RUNTIME, "could not create replication slot \"%s\": %s",
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
		bool		retry = sqlstate == NULL || is_retryable_sqlstate(sqlstate);

		error_set(retry ? EXIT_RUNTIME : EXIT_SERVER,
				  "could not create replication slot \"%s\": %s", name,
				  PQresultErrorMessage(res));
		PQclear(res);
		return false;
	}
	if (!parse_lsn(PQgetvalue(res, 0, 1), lsn))
	{
		error_set(EXIT_RUNTIME, "could not create replication slot \"%s\": invalid consistent point \"%s\"",
				  name, PQgetvalue(res, 0, 1));
		PQclear(res);
		return false;
	}
	*snapshot = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	return true;
}

/* The copy hook apply.c calls for a relation new in mid-stream. */
static bool
copy_relation_hook(void *arg, const Dsplug__Relation *rel, bool created,
				   uint64_t *copied_lsn)
{
	Stream	   *st = arg;

	log_info("copying table \"%s\".\"%s\": %s", rel->schema, rel->name,
			 created ? "it is new to the target" :
			 "it has columns new to the target");
	st->copy_failed = false;
	if (backfill_relation(st->opts, st->applier->sink, rel, copy_tick, st,
						  copied_lsn))
		return true;
	st->copy_failed = true;
	return false;
}

/*
 * Called now and then during a mid-stream copy: the walsender is waiting,
 * and ends the connection after wal_sender_timeout without a status
 * update.  (A failed send shows again as a lost connection later.)
 */
static void
copy_tick(void *arg)
{
	Stream	   *st = arg;

	if (st->conn != NULL &&
		clock_us() - st->last_feedback >= (int64_t) 1000000)
		send_feedback(st, true, false);
}

static char *
quote_literal(PGconn *conn, const char *s)
{
	return PQescapeLiteral(conn, s, strlen(s));
}

static char *
quote_ident(PGconn *conn, const char *s)
{
	return PQescapeIdentifier(conn, s, strlen(s));
}
