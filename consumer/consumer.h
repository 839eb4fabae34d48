/*-------------------------------------------------------------------------
 *
 * consumer.h
 *		Declarations shared by the files of dsplug-consumer.
 *
 * Data flows through the consumer in this order, one file per step:
 *
 *		main.c			command line, signals, exit codes, the run
 *		stream.c		the replication connection: START_REPLICATION,
 *						XLogData and keepalives, standby status updates,
 *						reconnection with backoff
 *		replay.c		frames recorded to / replayed from a file instead
 *						of the server (--record, --replay)
 *		apply.c			frames -> WireBatch (proto/wire_decode.c) -> sink
 *						calls, grouped into target transactions
 *		spool.c			streamed and prepared transactions kept aside in
 *						files until they commit
 *		backfill.c		the initial copy of the published tables under a
 *						snapshot consistent with the stream
 *		toast_fetch.c	unchanged TOAST values read from the source for
 *						targets that replace whole rows
 *		sink.h			the seam every target implements
 *		sink_sqlite.c	the embedded SQLite target
 *		status.c		the periodic one-line status
 *		log.c			messages, errors and their exit codes
 *
 * consumer/consumer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_CONSUMER_H
#define DSPLUG_CONSUMER_H

#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "bigquery_auth.h"
#include "sink.h"
#include "wire_decode.h"

#if defined(__GNUC__)
#define CONSUMER_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#else
#define CONSUMER_PRINTF(f, a)
#endif

/*
 * Exit codes, one per class of failure, so that a supervisor can tell a
 * fix-the-configuration failure from one worth restarting.  Connection loss
 * and server restarts are never an exit: they are retried with backoff.
 */
#define EXIT_OK				0	/* --endpos reached, SIGINT/SIGTERM, end of
								 * --replay input */
#define EXIT_RUNTIME		1	/* anything else that cannot be retried:
								 * undecodable frames, out of memory */
#define EXIT_USAGE			2	/* bad command line */
#define EXIT_TARGET			3	/* the target: bad URI, cannot open, read or
								 * write it, it belongs to another slot */
#define EXIT_SERVER			4	/* the server refuses: slot missing or not
								 * dsplug, unsupported wire version,
								 * permission or authentication denied,
								 * unknown publication */

/* WAL positions: printed "%X/%X" with LSN_FORMAT_ARGS, as PostgreSQL does */
#define LSN_FORMAT_ARGS(lsn)	((unsigned int) ((lsn) >> 32)), ((unsigned int) (lsn))
#define INVALID_LSN				((uint64_t) 0)

/* microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch */
#define POSTGRES_EPOCH_OFFSET_US	INT64_C(946684800000000)

/* Everything the command line says. */
typedef struct ConsumerOptions
{
	const char *dbname;			/* libpq conninfo or URI */
	const char *slot;
	const char *publications;	/* comma-separated, as publication_names */
	const char *target;			/* sink URI */
	bool		create_slot;
	bool		backfill;
	uint64_t	endpos;			/* INVALID_LSN: run until stopped */

	/* plugin options passed through (NULL: the plugin's default) */
	const char *compression;
	const char *compression_level;
	const char *batch_size;
	bool		streaming;		/* streaming 'on': in-progress transactions */
	bool		two_phase;		/* two_phase 'on': prepared transactions */

	/* grouping of source transactions into target transactions */
	int			group_txns;
	size_t		group_bytes;
	int			group_ms;

	int			status_interval;	/* seconds; 0: no status lines */
	int			feedback_interval;	/* seconds between standby status
									 * updates */
	const char *spool_dir;		/* where streamed and prepared transactions
								 * wait for their end (spool.c) */
	const char *record_file;
	const char *replay_file;
	bool		quiet;
	bool		verbose;

	/* BigQuery target: --bigquery-token-file, --bigquery-no-auth */
	BqAuthOptions bigquery_auth;
} ConsumerOptions;

/* Set by the SIGINT/SIGTERM handler; the loops stop at the next frame. */
extern volatile sig_atomic_t stop_requested;

/*
 * Copies a relation that joined the publications mid-stream (backfill.c,
 * through stream.c, which owns the connections): sets *copied_lsn to the
 * consistent point of the copy's snapshot.
 */
typedef bool (*CopyRelationHook) (void *arg, const Dsplug__Relation *rel,
								  bool created, uint64_t *copied_lsn);

/*
 * Reads unchanged TOAST values from the source for targets that replace
 * whole rows (toast_fetch.c).
 */
typedef struct ToastFetcher ToastFetcher;

/* A relation copied mid-stream, and the LSN its copy holds. */
typedef struct CopiedRelation
{
	uint32_t	oid;
	uint64_t	lsn;
} CopiedRelation;

/*
 * A top-level transaction kept aside until it ends (spool.c): the chunks of
 * a streamed transaction, the batches of a prepared one.  Records live in
 * an unlinked file; only what replay needs to filter them lives here.
 */
typedef struct Spool
{
	uint32_t	xid;
	const char *dir;
	FILE	   *file;			/* NULL until the first entry */
	uint64_t	bytes;			/* written to the file */
	uint64_t	batches;
	uint64_t	entries_read;	/* since the last rewind */

	/* set once prepared: PREPARE TRANSACTION's gid and record LSN */
	char	   *gid;
	uint64_t	prepare_lsn;

	/* subtransactions rolled back (stream_abort of a subxid) */
	uint32_t   *aborted;
	size_t		naborted;
	size_t		aborted_cap;
	bool		aborted_sorted;

	/* relations with a description in the file */
	uint32_t   *described;
	size_t		ndescribed;
	size_t		described_cap;
} Spool;

typedef enum SpoolEntry
{
	SPOOL_END,
	SPOOL_RELATION_ENTRY,
	SPOOL_BATCH_ENTRY,
	SPOOL_ERROR
} SpoolEntry;

/*
 * A prepared transaction the slot must not be confirmed past (apply.c,
 * "Prepared transactions"): its PREPARE record's LSN, and once its COMMIT
 * PREPARED is applied, that commit's end LSN, which the target must hold
 * durably before the hold is released.
 */
typedef struct PrepareHold
{
	uint32_t	xid;
	uint64_t	prepare_lsn;
	uint64_t	resolved_end_lsn;	/* INVALID_LSN while unresolved */
} PrepareHold;

/* A relation description read back from a spool during its replay. */
typedef struct SpooledRelation
{
	uint32_t	oid;
	Dsplug__Relation *rel;		/* unpacked with malloc, owned */
} SpooledRelation;

/*
 * The apply step (apply.c): decodes frames and applies their batches to
 * the sink, grouping source transactions into target transactions.
 *
 * LSNs: applied_lsn is the end of the last source transaction the sink has
 * been given whole (committed or still in the open group); the sink's
 * flushed_lsn() is what it durably holds.  flushed <= applied, and the two
 * are equal whenever no group is open.
 */
typedef struct Applier
{
	Sink	   *sink;
	WireDecoder *decoder;
	const ConsumerOptions *opts;

	uint64_t	applied_lsn;

	/* the source transaction being received */
	bool		in_txn;
	bool		skipping;		/* already in the target: not applied */
	uint64_t	commit_lsn;
	int64_t		commit_time;

	/* the open target transaction */
	bool		group_open;
	int			group_txns;
	size_t		group_bytes;
	int64_t		group_started;	/* clock_us() */

	/* relations copied mid-stream whose copy is ahead of the stream */
	CopiedRelation *copied;
	size_t		ncopied;
	size_t		copied_cap;
	CopyRelationHook copy_hook; /* NULL: never copy mid-stream */
	void	   *copy_arg;

	/*
	 * Relations whose target replaces whole rows (SinkRelationInfo), and
	 * where their unchanged TOAST values come from: NULL (--replay) leaves
	 * them to the sink, which refuses them.  source_failed: a read from the
	 * source lost its connection; the session is retried.
	 */
	uint32_t   *whole_rows;
	size_t		nwhole_rows;
	size_t		whole_rows_cap;
	ToastFetcher *toast;
	bool		source_failed;

	/* relations described in skipped transactions, not yet to the sink */
	uint32_t   *undescribed;
	size_t		nundescribed;
	size_t		undescribed_cap;

	/*
	 * End of the last transaction, PREPARE, or end of a prepared
	 * transaction received whole in this session (applied, skipped or
	 * kept aside), or the session's start point: the stream has reached
	 * it.  See stream.c, confirmable_lsn.
	 */
	uint64_t	session_lsn;

	/* streamed and prepared transactions kept aside (spool.c) */
	Spool	  **spools;
	size_t		nspools;
	size_t		spools_cap;
	Spool	   *receiving;		/* a prepared transaction's batches arrive */

	/* prepared transactions the slot must not be confirmed past */
	PrepareHold *holds;
	size_t		nholds;
	size_t		holds_cap;

	/* during a spool's replay: its descriptions (NULL otherwise) */
	SpooledRelation *replay_rels;
	size_t		nreplay_rels;
	size_t		replay_rels_cap;
	bool		replaying;
	bool		replay_interrupted; /* a stop request rolled it back */

	/* statistics */
	uint64_t	changes;		/* changes applied since start */
	uint64_t	txns;			/* source transactions applied */
	int64_t		last_commit_time;	/* of the last applied transaction */
	bool		endpos_reached;
} Applier;

/* apply.c */
extern void apply_init(Applier *a, Sink *sink, const ConsumerOptions *opts,
					   uint64_t applied_lsn);
extern void apply_destroy(Applier *a);
extern void apply_new_session(Applier *a, uint64_t start_lsn);
extern bool apply_frame(Applier *a, const uint8_t *frame, size_t len,
						uint64_t position);
extern bool apply_idle(Applier *a);
extern bool apply_tick(Applier *a);
extern bool apply_end_session(Applier *a);
extern bool apply_pending(const Applier *a);
extern uint64_t apply_hold_lsn(Applier *a);

/* backfill.c */
extern bool backfill_run(const ConsumerOptions *opts, Sink *sink,
						 const char *snapshot, uint64_t lsn);
extern bool backfill_relation(const ConsumerOptions *opts, Sink *sink,
							  const Dsplug__Relation *rel,
							  void (*tick) (void *), void *tick_arg,
							  uint64_t *copied_lsn);
extern bool backfill_temporary_slot(const ConsumerOptions *opts, Sink *sink,
									uint64_t *lsn);
typedef struct RowReader RowReader;
extern bool backfill_read_row(PGconn *conn, const Dsplug__Relation *rel,
							  const Dsplug__Relation *want,
							  const Dsplug__Tuple *key, RowReader **reader,
							  const Dsplug__Tuple **row, bool *retryable);
extern void backfill_read_row_free(RowReader *reader);

/* toast_fetch.c */
extern ToastFetcher *toast_fetcher_create(const ConsumerOptions *opts);
extern void toast_fetcher_free(ToastFetcher *tf);
extern bool toast_fetch_complete(ToastFetcher *tf, const SinkChange *change,
								 const Dsplug__Tuple **new_, bool *vanished,
								 bool *retryable);

/* stream.c */
extern int	stream_run(const ConsumerOptions *opts, Applier *a);
extern PGconn *connect_server(const ConsumerOptions *opts, bool replication,
							  bool *retryable);
extern bool create_snapshot_slot(PGconn *conn, const char *name,
								 bool temporary, char **snapshot,
								 uint64_t *lsn);
extern bool set_session_formats(PGconn *conn);
extern bool is_retryable_sqlstate(const char *sqlstate);

/* replay.c */
typedef struct Recorder Recorder;
extern Recorder *recorder_open(const char *path);
extern bool recorder_write(Recorder *rec, uint64_t data_start,
						   uint64_t wal_end, const uint8_t *data, size_t len);
extern bool recorder_close(Recorder *rec);
extern int	replay_run(const char *path, Applier *a);

/* spool.c */
extern Spool *spool_create(const char *dir, uint32_t xid);
extern void spool_destroy(Spool *s);
extern bool spool_write_batch(Spool *s, const WireBatch *b,
							  const WireDecoder *dec);
extern void spool_abort_subxact(Spool *s, uint32_t subxid);
extern bool spool_aborted(Spool *s, uint32_t xid);
extern bool spool_rewind(Spool *s);
extern SpoolEntry spool_read(Spool *s, Dsplug__Relation **rel,
							 Dsplug__Batch **batch);

/* status.c */
typedef struct Status
{
	int64_t		interval_us;	/* 0: never */
	int64_t		next;			/* clock_us() of the next line */
	int64_t		last_time;
	uint64_t	last_changes;
} Status;

extern void status_init(Status *st, int interval_seconds);
extern void status_tick(Status *st, const Applier *a, uint64_t confirmed,
						uint64_t server_lsn, bool force);

/* log.c */
extern bool log_quiet;
extern bool log_verbose_on;
extern void log_info(const char *fmt,...) CONSUMER_PRINTF(1, 2);
extern void log_warning(const char *fmt,...) CONSUMER_PRINTF(1, 2);
extern void log_verbose(const char *fmt,...) CONSUMER_PRINTF(1, 2);
extern void error_set(int exit_code, const char *fmt,...) CONSUMER_PRINTF(2, 3);
extern const char *error_message(void);
extern int	error_exit_code(void);
extern void error_clear(void);
extern int64_t clock_us(void);	/* monotonic */
extern int64_t postgres_now_us(void);	/* wall clock, since 2000-01-01 */
extern bool parse_lsn(const char *s, uint64_t *lsn);
extern void *xmalloc(size_t size);
extern void *xrealloc(void *ptr, size_t size);
extern char *xstrdup(const char *s);

#endif							/* DSPLUG_CONSUMER_H */
