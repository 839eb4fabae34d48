/*-------------------------------------------------------------------------
 *
 * stream.c
 *		The run: sessions on the replication connection (source/), each
 *		checking the slot, creating it or backfilling when asked, starting
 *		replication with the plugin's options, then handing frames to
 *		apply.c and sending standby status updates; reconnection with
 *		backoff when the connection is lost.  Modelled on pg_recvlogical.
 *
 * What is confirmed.  The flush (and apply) position of every standby
 * status update comes from confirm.c and nowhere else: this file tells it
 * what the stream brought and asks.
 *
 * Failures.  Losing the connection, a server shutdown or restart, a slot
 * still held by a walsender that has not noticed our previous connection
 * died: retried with exponential backoff, forever.  A refusal (no such
 * slot, a slot of another plugin, permission or authentication denied, an
 * unknown publication, a wire version the server's plugin does not speak)
 * ends the run with EXIT_SERVER: retrying would not change the answer.
 * Which is which is the failure's class, RESULT_RETRY or another
 * (common.h), whatever step of the session failed: the connection, a copy,
 * a read of unchanged TOAST values.
 *
 * consumer/core/stream.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "source/source.h"

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
	ToastFetcher *toast;
	Status		status;
	Confirm		confirm;
	Metrics		metrics;		/* this thread's figures (metrics.c) */

	uint64_t	server_lsn;		/* the server's latest walEnd */
	int64_t		last_feedback;	/* clock_us() of the last update sent */
	bool		two_phase;		/* prepared transactions are decoded: the
								 * option was given or the slot has
								 * two_phase */
	bool		backfilled;		/* the target was filled this run */
	bool		streamed;		/* the session got as far as streaming */
} Stream;

static SessionResult run_session(Stream *st);
static SessionResult prepare_slot(Stream *st);
static SessionResult start_replication(Stream *st);
static SessionResult stream_loop(Stream *st);
static SessionResult finish(Stream *st);
static SessionResult handle_message(Stream *st, const ReplMessage *msg);
static SessionResult connection_lost(Stream *st, const char *what);
static SessionResult session_failed(void);
static SessionResult copy_failed(void);
static bool confirmable_lsn(Stream *st, uint64_t *lsn);
static bool set_position(Stream *st);
static SessionResult send_feedback(Stream *st, bool force);
static void sleep_interruptible(int ms);
static bool copy_relation(void *arg, const Dsplug__Relation *rel,
						  bool created, uint64_t *copied_lsn);
static bool complete_row(void *arg, const Dsplug__Relation *rel,
						 const Dsplug__Tuple *old, const Dsplug__Tuple *new_,
						 uint64_t commit_lsn, const Dsplug__Tuple **completed,
						 bool *vanished);
static void copy_tick(void *arg);
static void publish_metrics(Stream *st, uint64_t confirmed, bool force);

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
	st.metrics.start_time = postgres_now_us() + POSTGRES_EPOCH_OFFSET_US;
	status_init(&st.status, opts->status_interval);
	if (opts->record_file != NULL &&
		(st.recorder = recorder_open(opts->record_file)) == NULL)
		return error_exit_code();
	st.toast = toast_fetcher_create(opts->dbname);
	a->source.copy_relation = opts->backfill || opts->create_slot ?
		copy_relation : NULL;
	a->source.complete_row = complete_row;
	a->source.arg = &st;

	for (;;)
	{
		SessionResult r;

		st.streamed = false;
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

		switch (error_exit_code())
		{
			case EXIT_SERVER:
				st.metrics.retries[1]++;
				break;
			case EXIT_TARGET:
				st.metrics.retries[2]++;
				break;
			default:
				st.metrics.retries[0]++;
				break;
		}
		publish_metrics(&st, st.metrics.confirmed_lsn, true);
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

	{
		uint64_t	confirmed;

		if (confirmable_lsn(&st, &confirmed))
		{
			status_tick(&st.status, a, confirmed, st.server_lsn, true);
			publish_metrics(&st, confirmed, true);
		}
		else if (code == EXIT_OK)
			code = error_exit_code();
	}
	memset(&a->source, 0, sizeof(ApplySource));
	toast_fetcher_free(st.toast);
	if (st.recorder != NULL && !recorder_close(st.recorder) && code == EXIT_OK)
		code = error_exit_code();
	return code;
}

static SessionResult
run_session(Stream *st)
{
	SessionResult r;

	st->conn = source_connect(st->opts->dbname, true);
	if (st->conn == NULL)
		return session_failed();
	if (!source_set_formats(st->conn))
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
	Applier    *a = st->applier;
	ReplSlot	slot;

	if (!repl_check_slot(st->conn, opts->slot, &slot))
		return session_failed();

	if (!slot.exists)
	{
		char	   *snapshot = NULL;
		uint64_t	lsn;

		if (!opts->create_slot)
		{
			error_set(RESULT_SERVER, "could not start replication: replication slot \"%s\" does not exist (create it, or use --create-slot)",
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
		if (!source_create_slot(st->conn, opts->slot, false, &snapshot, &lsn))
			return session_failed();
		log_info("created replication slot \"%s\" at %X/%X", opts->slot,
				 LSN_FORMAT_ARGS(lsn));
		if (!backfill_run(opts, a->sink, snapshot, lsn))
		{
			free(snapshot);
			return copy_failed();
		}
		free(snapshot);
		if (!set_position(st))
			return SESSION_FATAL;
		st->backfilled = true;
		st->two_phase = opts->two_phase;
		/* a new slot's confirmed position is its consistent point */
		confirm_floor(&st->confirm, lsn);
		return SESSION_CONTINUE;
	}

	/*
	 * Once a slot has two_phase (created so, or marked by the first session
	 * that asked for it), PostgreSQL decodes prepared transactions in every
	 * session, with the option or without: they are handled either way.
	 */
	st->two_phase = opts->two_phase || slot.two_phase;
	/* the server's position: never confirm less than it has */
	confirm_floor(&st->confirm, slot.confirmed_lsn);

	if ((opts->backfill || opts->create_slot) && !st->backfilled)
	{
		uint64_t	flushed;
		uint64_t	lsn;

		if (!sink_flushed_lsn(a->sink, &flushed))
			return SESSION_FATAL;
		if (flushed != INVALID_LSN)
			return SESSION_CONTINUE;
		if (!backfill_temporary_slot(opts, a->sink, &lsn))
			return copy_failed();
		if (!set_position(st))
			return SESSION_FATAL;
		st->backfilled = true;
	}
	return SESSION_CONTINUE;
}

/* A copy was committed to the target: the applier starts from there. */
static bool
set_position(Stream *st)
{
	uint64_t	flushed;

	if (!sink_flushed_lsn(st->applier->sink, &flushed))
		return false;
	apply_set_position(st->applier, flushed);
	return true;
}

/* A step failed: retry the session or give up, as error_set() said. */
static SessionResult
session_failed(void)
{
	return error_result() == RESULT_RETRY ? SESSION_RETRY : SESSION_FATAL;
}

/* A copy before streaming failed: a stop request interrupted it, or so. */
static SessionResult
copy_failed(void)
{
	return stop_requested ? SESSION_DONE : session_failed();
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
	uint64_t	start;
	uint64_t	floor = st->confirm.floor;
	ReplOption	options[] = {
		{"compression", opts->compression},
		{"compression_level", opts->compression_level},
		{"batch_size", opts->batch_size},
		{"streaming", opts->streaming ? "on" : NULL},
		{"two_phase", opts->two_phase ? "on" : NULL}
	};

	if (!sink_flushed_lsn(a->sink, &start))
		return SESSION_FATAL;
	if (st->two_phase && floor < start)
		start = floor;
	if (!repl_start(st->conn, opts->slot, start, DSPLUG_WIRE_VERSION,
					opts->publications, options,
					(int) (sizeof(options) / sizeof(options[0]))))
		return session_failed();

	log_info("streaming slot \"%s\" from %X/%X into %s", opts->slot,
			 LSN_FORMAT_ARGS(start), a->sink->uri);

	/* the server sends from the later of start and its confirmed position */
	apply_new_session(a, start > floor ? start : floor);
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
		ReplMessage msg;
		char	   *buf;
		ReplRead	r;
		SessionResult sr;
		uint64_t	confirmed;

		if (stop_requested)
			return finish(st);

		if (clock_us() - st->last_feedback >= feedback_us &&
			(sr = send_feedback(st, true)) != SESSION_CONTINUE)
			return sr;
		if (!apply_tick(a) || !confirmable_lsn(st, &confirmed))
			return SESSION_FATAL;
		status_tick(&st->status, a, confirmed, st->server_lsn, false);
		publish_metrics(st, confirmed, false);

		r = repl_read(st->conn, &msg, &buf);
		if (r == REPL_NONE)
		{
			int64_t		timeout;
			ApplyProgress p;

			/*
			 * The server has sent nothing more for now: commit what is
			 * complete and confirm it, so the target and the slot follow
			 * closely when the stream is slow, and group many
			 * transactions per commit when it is fast.
			 */
			if (!apply_idle(a) || !apply_progress(a, &p))
				return SESSION_FATAL;
			if (opts->endpos != INVALID_LSN && !p.pending &&
				confirm_reached(&st->confirm, &p) >= opts->endpos)
				return finish(st);
			if (confirm_lsn(&st->confirm, &p) > st->confirm.floor &&
				(sr = send_feedback(st, false)) != SESSION_CONTINUE)
				return sr;

			timeout = feedback_us - (clock_us() - st->last_feedback);
			if (apply_group_open(a))
				timeout = (int64_t) opts->group_ms * 1000 / 2;
			if (timeout > 1000000)
				timeout = 1000000;
			if (timeout < 0)
				timeout = 0;
			if (!repl_wait(st->conn, timeout))
				return connection_lost(st, "wait for data");
			continue;
		}
		if (r == REPL_ENDED)
			return SESSION_RETRY;
		if (r == REPL_FAILED)
		{
			repl_release(buf);
			return session_failed();
		}

		sr = handle_message(st, &msg);
		repl_release(buf);
		if (sr != SESSION_CONTINUE)
			return sr;
		if (a->endpos_reached)
			return finish(st);
	}
}

/*
 * One message: XLogData carries a frame, a keepalive the server's position
 * and whether it wants an answer now.
 */
static SessionResult
handle_message(Stream *st, const ReplMessage *msg)
{
	if (msg->wal_end > st->server_lsn)
		st->server_lsn = msg->wal_end;
	if (msg->type == 'k')
	{
		confirm_keepalive(&st->confirm, msg->wal_end);
		return msg->reply_requested ? send_feedback(st, true) : SESSION_CONTINUE;
	}

	confirm_received(&st->confirm, msg->data_start);
	st->metrics.frames++;
	st->metrics.bytes_received += msg->len;
	if (st->recorder != NULL &&
		!recorder_write(st->recorder, msg->data_start, msg->wal_end,
						msg->data, msg->len))
		return SESSION_FATAL;
	/*
	 * A copy, or a read of unchanged TOAST values, that lost its connection
	 * is retried: the transaction being applied is rolled back and sent
	 * again.
	 */
	if (!apply_frame(st->applier, msg->data, msg->len, msg->data_start))
		return session_failed();
	return SESSION_CONTINUE;
}

/*
 * Stop cleanly: commit what is complete (a transaction cut short is rolled
 * back and comes again next time), confirm it, end the stream.
 */
static SessionResult
finish(Stream *st)
{
	uint64_t	confirmed;

	if (!apply_end_session(st->applier))
		return SESSION_FATAL;
	/* an asynchronous sink: wait until what it was given is durable */
	if (!sink_sync(st->applier->sink))
		return SESSION_FATAL;
	switch (send_feedback(st, true))
	{
		case SESSION_CONTINUE:
			break;
		case SESSION_FATAL:
			return SESSION_FATAL;
		default:
			error_clear();
			return SESSION_DONE;	/* nothing lost: the next run resends */
	}
	repl_end(st->conn);
	if (!confirmable_lsn(st, &confirmed))
		return SESSION_FATAL;
	log_info("stopped at %X/%X", LSN_FORMAT_ARGS(confirmed));
	return SESSION_DONE;
}

/* What confirm.c says may be confirmed now; false after error_set(). */
static bool
confirmable_lsn(Stream *st, uint64_t *lsn)
{
	ApplyProgress p;

	if (!apply_progress(st->applier, &p))
		return false;
	*lsn = confirm_lsn(&st->confirm, &p);
	return true;
}

/*
 * Send a standby status update: write = what was received, flush = apply =
 * the confirmable position.  Without force, only when there is something
 * new to confirm.  SESSION_RETRY when the connection is lost,
 * SESSION_FATAL when the sink cannot say what it holds.
 */
static SessionResult
send_feedback(Stream *st, bool force)
{
	uint64_t	flush;
	uint64_t	write;

	if (!confirmable_lsn(st, &flush))
		return SESSION_FATAL;
	write = st->confirm.received_lsn > flush ? st->confirm.received_lsn : flush;
	if (!force && flush <= st->confirm.floor)
		return SESSION_CONTINUE;
	if (!repl_send_status(st->conn, write, flush, false))
		return connection_lost(st, "send a status update");
	confirm_floor(&st->confirm, flush);
	st->last_feedback = clock_us();
	return SESSION_CONTINUE;
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
	source_conn_failed(st->conn, what);
	return SESSION_RETRY;
}

/* ApplySource: a relation new in mid-stream, copied by backfill.c. */
static bool
copy_relation(void *arg, const Dsplug__Relation *rel, bool created,
			  uint64_t *copied_lsn)
{
	Stream	   *st = arg;

	log_info("copying table \"%s\".\"%s\": %s", rel->schema, rel->name,
			 created ? "it is new to the target" :
			 "it has columns new to the target");
	return backfill_relation(st->opts, st->applier->sink, rel, copy_tick, st,
							 copied_lsn);
}

/* ApplySource: unchanged TOAST values, read by source/toast_fetch.c. */
static bool
complete_row(void *arg, const Dsplug__Relation *rel, const Dsplug__Tuple *old,
			 const Dsplug__Tuple *new_, uint64_t commit_lsn,
			 const Dsplug__Tuple **completed, bool *vanished)
{
	Stream	   *st = arg;

	return toast_fetch_complete(st->toast, rel, old, new_, commit_lsn,
								completed, vanished);
}

/*
 * Called now and then during a mid-stream copy: the walsender is waiting,
 * and ends the connection after wal_sender_timeout without a status
 * update.  A failure is left for later: a lost connection shows again
 * when the stream reads, a sink's failure at its next flushed_lsn.
 */
static void
copy_tick(void *arg)
{
	Stream	   *st = arg;

	if (st->conn != NULL &&
		clock_us() - st->last_feedback >= (int64_t) 1000000 &&
		send_feedback(st, true) != SESSION_CONTINUE)
		error_clear();
}

/*
 * Hand the figures to the metrics server (metrics.c; nothing happens
 * without --metrics-address): at most every 100 ms, or now with force.
 */
static void
publish_metrics(Stream *st, uint64_t confirmed, bool force)
{
	Metrics    *m = &st->metrics;
	const Applier *a = st->applier;

	if (st->opts->metrics_address == NULL)
		return;
	m->received_lsn = st->confirm.received_lsn;
	m->applied_lsn = a->applied_lsn;
	m->confirmed_lsn = confirmed;
	m->server_lsn = st->server_lsn;
	m->last_commit_time = a->last_commit_time;
	memcpy(m->changes, a->kind_changes, sizeof(m->changes));
	m->transactions = a->txns;
	m->bytes_decoded = a->decoded_bytes;
	sink_stats(a->sink, &m->sink);
	metrics_publish(m, force);
}
