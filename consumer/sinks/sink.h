/*-------------------------------------------------------------------------
 *
 * sink.h
 *		The seam between the consumer's core and a target: a small table of
 *		function pointers per sink, as PostgreSQL's basebackup sinks are,
 *		reached only through the wrappers of sink.c, which check the order
 *		of the calls.  Nothing here names a target: each sink (one folder
 *		under sinks/) parses its own URI and options, and the registry in
 *		sink.c is the only place that lists them.
 *
 * The core (apply.c, backfill.c) calls a sink in this order:
 *
 *		open		once; the sink reports the applied LSN it durably holds
 *		begin		open a target transaction (a group of source
 *					transactions, or a backfill)
 *		  relation		a relation description: create or alter the table
 *		  change		each insert/update/delete, with its relation and its
 *						sequence number (commit_lsn, position)
 *		  truncate		each truncate
 *		  begin_copy	the rows of a relation, copied under a snapshot at
 *						copy_lsn, replace what the target holds of it: then
 *						only that relation's copied rows (change, with
 *						backfill set) until
 *		  end_copy		the copy is complete; the target records that the
 *						relation's rows were copied as of copy_lsn
 *		commit		close the transaction, recording end_lsn as applied in
 *					the same target transaction as the data
 *		abort		throw away everything since begin (a copy under way
 *					too)
 *		sync		(optional) wait until every commit is durable, before
 *					a clean stop confirms it; never inside a transaction
 *		close		once, at the end (an open transaction is aborted)
 *
 * and, at any time after open, flushed_lsn: what the target durably holds
 * now.  The consumer confirms to PostgreSQL only what flushed_lsn reports
 * (core/confirm.c), so a synchronous sink returns its last committed
 * end_lsn, and an asynchronous one (writing from a thread of its own)
 * what its server has acknowledged; until flushed_lsn reaches the last
 * end_lsn committed, the consumer counts the rest as in flight.  The core
 * calls flushed_lsn often (each status update and idle moment, at least
 * every second): it must be cheap, and it can fail (an asynchronous sink
 * learns there that its server refused a row).
 *
 * Every sink call that can fail returns false after error_set() with
 * RESULT_TARGET or another class; the core then stops.  Pointers passed in
 * (descriptions, tuples) are valid only during the call: a sink copies what
 * it keeps.
 *
 * consumer/sinks/sink.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_SINK_H
#define DSPLUG_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dsplug.pb-c.h"

typedef enum SinkChangeKind
{
	SINK_INSERT,
	SINK_UPDATE,
	SINK_DELETE
} SinkChangeKind;

/*
 * One row change.  Tuples follow the relation description, one value per
 * column; an unset Value is NULL, unchanged_toast means "keep the stored
 * value".  old is set for deletes (the key, or the whole row under REPLICA
 * IDENTITY FULL) and for updates that changed the key or under FULL.
 *
 * (commit_lsn, position) orders every change exactly and is the same
 * whenever the change is sent again (proto/WIRE.md).  Copied rows
 * (backfill, between begin_copy and end_copy) carry commit_lsn 0 and their
 * copy order as position, so they sort before every streamed change; the
 * copy's LSN is the one begin_copy named.
 */
typedef struct SinkChange
{
	SinkChangeKind kind;
	const Dsplug__Relation *relation;
	const Dsplug__Tuple *old;
	const Dsplug__Tuple *new_;
	uint64_t	commit_lsn;
	uint64_t	position;
	int64_t		commit_time;	/* microseconds since 2000-01-01 UTC */
	bool		backfill;
} SinkChange;

/*
 * What a sink knows about a relation, reported by its relation call.  The
 * core zeroes it before the call: a sink sets only the fields it has
 * something to say about.
 */
typedef struct SinkRelationInfo
{
	/*
	 * The target had no table for the relation before this description (it
	 * has one now).
	 */
	bool		created;

	/*
	 * The description has columns that are new to the relation (ADD
	 * COLUMN): the sink added them with NULL in the rows it holds, which
	 * the source may have filled with a default.
	 */
	bool		columns_added;

	/*
	 * The relation's rows were copied (end_copy) under a snapshot that
	 * holds every transaction ending at or before copied_lsn: changes of
	 * the relation from those transactions are already in the copy.
	 * INVALID_LSN when it was never copied.
	 */
	uint64_t	copied_lsn;

	/*
	 * The sink orders every change by its sequence number (commit_lsn,
	 * position; copied rows by the copy's LSN), whatever order they come
	 * in, as BigQuery CDC does.  Changes that a copy already holds are then
	 * given to it anyway, instead of being skipped: a copy does not remove
	 * rows from such a target, so a delete must still reach a row the copy
	 * no longer has, and the rest is older than the copy and loses.
	 */
	bool		orders_by_sequence;

	/*
	 * An update replaces the whole row in the target (BigQuery merge
	 * tables), so it must carry every column: the core reads unchanged
	 * TOAST values that the change does not carry from the source
	 * (toast_fetch.c).  A sink that keeps the stored value leaves it false.
	 */
	bool		whole_rows;
} SinkRelationInfo;

typedef struct Sink Sink;

/* An option for the target's sink: -o NAME=VALUE, or a long option. */
typedef struct SinkOption
{
	const char *name;
	const char *value;			/* NULL for a flag */
} SinkOption;

/*
 * What an asynchronous sink has in flight, for the metrics (stats op).
 */
typedef struct SinkStats
{
	bool		has_requests;	/* the sink sends requests it must see
								 * acknowledged */
	uint64_t	requests_in_flight;
	uint64_t	unacknowledged_bytes;
} SinkStats;

typedef struct SinkOps
{
	/*
	 * Open the target named by uri with options (each one the sink
	 * declared: SinkType).  slot names the stream the target follows (NULL
	 * for --replay): a target written from another slot is refused.  Sets
	 * *applied_lsn to the end LSN of the last source transaction the
	 * target durably holds, or INVALID_LSN for a new target.
	 */
	bool		(*open) (Sink *sink, const char *uri, const SinkOption *options,
						 int noptions, const char *slot,
						 uint64_t *applied_lsn);
	bool		(*relation) (Sink *sink, const Dsplug__Relation *rel,
							 SinkRelationInfo *info);
	bool		(*begin) (Sink *sink);
	bool		(*change) (Sink *sink, const SinkChange *change);
	bool		(*truncate) (Sink *sink, const Dsplug__Relation *const *rels,
							 size_t nrels, bool cascade, bool restart_identity,
							 uint64_t commit_lsn, uint64_t position);
	bool		(*begin_copy) (Sink *sink, const Dsplug__Relation *rel,
							   uint64_t copy_lsn);
	bool		(*end_copy) (Sink *sink, const Dsplug__Relation *rel,
							 uint64_t copy_lsn);
	bool		(*commit) (Sink *sink, uint64_t end_lsn);
	void		(*abort) (Sink *sink);
	bool		(*sync) (Sink *sink);	/* NULL: commits are durable */
	bool		(*flushed_lsn) (Sink *sink, uint64_t *lsn);
	void		(*close) (Sink *sink);

	/* what is in flight (NULL: nothing is, commits are synchronous) */
	void		(*stats) (Sink *sink, SinkStats *stats);
} SinkOps;

/* An option a sink takes, for the command line and -o. */
typedef struct SinkOptionDef
{
	const char *name;			/* -o NAME[=VALUE] */
	const char *long_name;		/* --LONG_NAME[=VALUE] too, or NULL */
	bool		has_value;
} SinkOptionDef;

/*
 * A kind of target, as the registry (sink.c) lists it: the URIs it opens,
 * its options and their --help text.
 */
typedef struct SinkType
{
	const char *scheme;			/* opens URIs that start with "scheme:" */
	const char *uri_help;		/* the URI's form, for --help */
	const char *help;			/* its options, for --help; or NULL */
	const SinkOptionDef *options;	/* ends with a NULL name */

	/*
	 * Check the sink's options before anything is opened (NULL: nothing to
	 * check): false with the reason in err, a bad command line.
	 */
	bool		(*check_options) (const SinkOption *options, int noptions,
								  char *err, size_t errsize);
	const SinkOps *ops;
} SinkType;

/* Where the call order check stands (sink.c). */
typedef enum SinkState
{
	SINK_IDLE,					/* open, no transaction */
	SINK_IN_TRANSACTION,		/* between begin and commit/abort */
	SINK_IN_COPY				/* between begin_copy and end_copy */
} SinkState;

struct Sink
{
	const SinkOps *ops;			/* sink.c's wrappers only */
	const char *uri;			/* as given on the command line */
	void	   *private_data;
	SinkState	state;
	uint32_t	copy_oid;		/* SINK_IN_COPY: the relation copied */
	uint64_t	copy_lsn;		/* and the LSN of its snapshot */
};

/* sink.c: the registry */
extern const SinkType *const *sink_types(void);
extern const SinkType *sink_type_for(const char *uri);
extern const SinkType *sink_type_of_option(const char *long_name,
										   const SinkOptionDef **def);
extern bool sink_check_options(const char *uri, const SinkOption *options,
							   int noptions, char *err, size_t errsize);
extern void sink_usage_targets(FILE *out);
extern void sink_usage_options(FILE *out);

/* sink.c: the wrappers, in the order above */
extern Sink *sink_open(const char *uri, const SinkOption *options,
					   int noptions, const char *slot, uint64_t *applied_lsn);
extern bool sink_begin(Sink *sink);
extern bool sink_relation(Sink *sink, const Dsplug__Relation *rel,
						  SinkRelationInfo *info);
extern bool sink_change(Sink *sink, const SinkChange *change);
extern bool sink_truncate(Sink *sink, const Dsplug__Relation *const *rels,
						  size_t nrels, bool cascade, bool restart_identity,
						  uint64_t commit_lsn, uint64_t position);
extern bool sink_begin_copy(Sink *sink, const Dsplug__Relation *rel,
							uint64_t copy_lsn);
extern bool sink_end_copy(Sink *sink, const Dsplug__Relation *rel);
extern bool sink_commit(Sink *sink, uint64_t end_lsn);
extern void sink_abort(Sink *sink);
extern bool sink_sync(Sink *sink);
extern bool sink_flushed_lsn(Sink *sink, uint64_t *lsn);
extern void sink_stats(Sink *sink, SinkStats *stats);
extern void sink_close(Sink *sink);

#endif							/* DSPLUG_SINK_H */
