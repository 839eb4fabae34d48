/*-------------------------------------------------------------------------
 *
 * core.h
 *		The core of dsplug-consumer: frames -> decoded changes -> apply to
 *		a sink -> confirm.  README.md has the map of every file.
 *
 *		stream.c		the run: sessions on the replication connection,
 *						frames to apply.c, standby status updates,
 *						reconnection with backoff
 *		replay.c		the run from a recording instead (--replay)
 *		backfill.c		the initial copy and mid-stream copies, into the
 *						sink
 *		apply.c			frames -> WireBatch (proto/wire_decode.c) -> sink
 *						calls, grouped into target transactions
 *		spool.c			streamed and prepared transactions kept aside in
 *						files until they commit
 *		confirm.c		the one rule for the LSN confirmed to PostgreSQL
 *		status.c		the periodic one-line status
 *		metrics.c		Prometheus metrics over HTTP (--metrics-address)
 *
 * The core reads the source through source/source.h and writes targets
 * through sinks/sink.h only; apply.c reaches the source only through the
 * ApplySource its driver gives it.
 *
 * consumer/core/core.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_CORE_H
#define DSPLUG_CORE_H

#include <stdio.h>

#include "common/common.h"
#include "sinks/sink.h"
#include "wire_decode.h"

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
	const char *metrics_address;	/* HOST:PORT to serve metrics on, or NULL */
	int			feedback_interval;	/* seconds between standby status
									 * updates */
	const char *spool_dir;		/* where streamed and prepared transactions
								 * wait for their end (spool.c) */
	const char *record_file;
	const char *replay_file;
	bool		quiet;
	bool		verbose;
} ConsumerOptions;

/*
 * What the apply step may ask of the source, given by whoever drives it
 * (stream.c, which owns the connections); a NULL function is not
 * available (--replay).  Each returns false after error_set().
 */
typedef struct ApplySource
{
	/*
	 * Copy a relation that joined the publications mid-stream into the
	 * sink's open transaction (backfill.c): sets *copied_lsn to the
	 * consistent point of the copy's snapshot.
	 */
	bool		(*copy_relation) (void *arg, const Dsplug__Relation *rel,
								  bool created, uint64_t *copied_lsn);

	/*
	 * Fill in the unchanged TOAST values of an update for a target that
	 * replaces whole rows (source/toast_fetch.c): *completed is the new
	 * tuple to write, *vanished says the row no longer exists.
	 */
	bool		(*complete_row) (void *arg, const Dsplug__Relation *rel,
								 const Dsplug__Tuple *old,
								 const Dsplug__Tuple *new_,
								 uint64_t commit_lsn,
								 const Dsplug__Tuple **completed,
								 bool *vanished);
	void	   *arg;
} ApplySource;

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

	/*
	 * What the source can do for the applier: copy_relation NULL never
	 * copies mid-stream; complete_row NULL leaves unchanged TOAST values of
	 * whole_rows relations (SinkRelationInfo) to the sink, which refuses
	 * them.
	 */
	ApplySource source;
	uint32_t   *whole_rows;
	size_t		nwhole_rows;
	size_t		whole_rows_cap;

	/* relations described in skipped transactions, not yet to the sink */
	uint32_t   *undescribed;
	size_t		nundescribed;
	size_t		undescribed_cap;

	/*
	 * End of the last transaction, PREPARE, or end of a prepared
	 * transaction received whole in this session (applied, skipped or
	 * kept aside), or the session's start point: the stream has reached
	 * it.  See confirm.c.
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
	uint64_t	kind_changes[4];	/* of which insert, update, delete,
									 * truncate (MetricsKind) */
	uint64_t	decoded_bytes;	/* frame payloads after decompression */
	uint64_t	txns;			/* source transactions applied */
	int64_t		last_commit_time;	/* of the last applied transaction */
	bool		endpos_reached;
} Applier;

/*
 * Where the applier stands, as the confirm rule needs it (apply_progress):
 * read together, so the rule never sees half of a change.
 */
typedef struct ApplyProgress
{
	uint64_t	flushed_lsn;	/* what the sink durably holds */
	uint64_t	applied_lsn;	/* what the sink was given */
	uint64_t	session_lsn;	/* Applier.session_lsn */
	uint64_t	hold_lsn;		/* earliest PREPARE held, or INVALID_LSN */
	bool		receiving;		/* a transaction (or a prepared one's
								 * batches) is arriving */
	bool		pending;		/* a transaction or an open group */
} ApplyProgress;

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
extern bool apply_progress(Applier *a, ApplyProgress *p);
extern void apply_set_position(Applier *a, uint64_t applied_lsn);
extern bool apply_group_open(const Applier *a);

/* backfill.c */
extern bool backfill_run(const ConsumerOptions *opts, Sink *sink,
						 const char *snapshot, uint64_t lsn);
extern bool backfill_relation(const ConsumerOptions *opts, Sink *sink,
							  const Dsplug__Relation *rel,
							  void (*tick) (void *), void *tick_arg,
							  uint64_t *copied_lsn);
extern bool backfill_temporary_slot(const ConsumerOptions *opts, Sink *sink,
									uint64_t *lsn);

/* stream.c */
extern int	stream_run(const ConsumerOptions *opts, Applier *a);

/*
 * What the stream has brought, for the confirm rule (confirm.c); written
 * by stream.c only through confirm_*().
 */
typedef struct Confirm
{
	uint64_t	received_lsn;	/* start of the latest XLogData */
	uint64_t	keepalive_lsn;	/* walEnd of the latest keepalive */
	uint64_t	floor;			/* confirmed already: never less */
} Confirm;

/* confirm.c */
extern void confirm_received(Confirm *c, uint64_t data_start);
extern void confirm_keepalive(Confirm *c, uint64_t wal_end);
extern void confirm_floor(Confirm *c, uint64_t lsn);
extern uint64_t confirm_reached(const Confirm *c, const ApplyProgress *p);
extern uint64_t confirm_lsn(const Confirm *c, const ApplyProgress *p);

/* replay.c */
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

/* metrics.c */
#define METRICS_KINDS	4		/* insert, update, delete, truncate */
#define METRICS_CLASSES 3		/* connection, server, target */

/*
 * The figures the metrics show, kept by the main thread (stream.c) and
 * handed to the server's thread by metrics_publish().
 */
typedef struct Metrics
{
	int64_t		start_time;		/* microseconds since the Unix epoch */
	int64_t		published_at;	/* set by metrics_publish: since 2000-01-01 */
	uint64_t	received_lsn;
	uint64_t	applied_lsn;
	uint64_t	confirmed_lsn;
	uint64_t	server_lsn;
	int64_t		last_commit_time;	/* of the last applied transaction */
	uint64_t	changes[METRICS_KINDS];
	uint64_t	transactions;
	uint64_t	frames;
	uint64_t	bytes_received;
	uint64_t	bytes_decoded;
	uint64_t	retries[METRICS_CLASSES];
	SinkStats	sink;
} Metrics;

extern bool metrics_start(const char *address, const char *slot,
						  const char *target, char *errbuf, size_t errlen);
extern void metrics_publish(const Metrics *m, bool force);
extern void metrics_stop(void);

#endif							/* DSPLUG_CORE_H */
