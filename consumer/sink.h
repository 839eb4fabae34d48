/*-------------------------------------------------------------------------
 *
 * sink.h
 *		The seam between the consumer's core and a target (SQLite now,
 *		BigQuery next): a small table of function pointers, as PostgreSQL's
 *		basebackup sinks are.
 *
 * The core (apply.c, backfill.c) calls a sink in this order:
 *
 *		open		once; the sink reports the applied LSN it durably holds
 *		relation	a relation description: create or alter the table
 *		begin		open a target transaction (a group of source
 *					transactions, or a backfill)
 *		change		each insert/update/delete, with its relation and its
 *					sequence number (commit_lsn, position)
 *		truncate	each truncate
 *		commit		close the group, recording end_lsn as applied in the
 *					same target transaction as the data
 *		abort		throw away everything since begin
 *		sync		(optional) wait until every commit is durable, before
 *					a clean stop confirms it
 *		close		once, at the end (an open transaction is aborted)
 *
 * and, at any time, flushed_lsn: what the target durably holds now.  The
 * consumer confirms to PostgreSQL only what flushed_lsn reports (stream.c),
 * so a synchronous sink returns its last committed end_lsn, and an
 * asynchronous one (BigQuery) what its server has acknowledged; until
 * flushed_lsn reaches the last end_lsn committed, the consumer counts the
 * rest as in flight.  The core calls flushed_lsn often (each status update
 * and idle moment, at least every second): an asynchronous sink can collect
 * its acknowledgements there, or in a thread of its own.
 *
 * Every sink call that can fail returns false after error_set() with
 * EXIT_TARGET or another class; the core then stops.  Pointers passed in
 * (descriptions, tuples) are valid only during the call: a sink copies what
 * it keeps.
 *
 * consumer/sink.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_SINK_H
#define DSPLUG_SINK_H

#include <stdbool.h>
#include <stdint.h>

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
 * whenever the change is sent again (proto/WIRE.md).  Backfilled rows carry
 * commit_lsn 0 and their copy order as position, so they sort before every
 * streamed change.
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
	uint64_t	copy_lsn;		/* backfilled rows: the consistent point of
								 * the copy's snapshot (BigQuery sequence
								 * numbers); INVALID_LSN otherwise */
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
	 * The relation's rows were copied (backfill.c) under a snapshot that
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

typedef struct SinkOps
{
	/*
	 * Open the target named by location (the URI without its scheme).  slot
	 * names the stream the target follows (NULL for --replay): a target
	 * written from another slot is refused.  Sets *applied_lsn to the end
	 * LSN of the last source transaction the target durably holds, or
	 * INVALID_LSN for a new target.
	 */
	bool		(*open) (Sink *sink, const char *location, const char *slot,
						 uint64_t *applied_lsn);
	bool		(*relation) (Sink *sink, const Dsplug__Relation *rel,
							 SinkRelationInfo *info);
	bool		(*begin) (Sink *sink);
	bool		(*change) (Sink *sink, const SinkChange *change);
	bool		(*truncate) (Sink *sink, const Dsplug__Relation *const *rels,
							 size_t nrels, bool cascade, bool restart_identity,
							 uint64_t commit_lsn, uint64_t position);
	/* record that rel's rows were copied as of lsn (see SinkRelationInfo) */
	bool		(*set_copied) (Sink *sink, const Dsplug__Relation *rel,
							   uint64_t lsn);
	bool		(*commit) (Sink *sink, uint64_t end_lsn);
	void		(*abort) (Sink *sink);
	bool		(*sync) (Sink *sink);	/* NULL: commits are durable */
	uint64_t	(*flushed_lsn) (Sink *sink);
	void		(*close) (Sink *sink);
} SinkOps;

struct Sink
{
	const SinkOps *ops;
	const char *uri;			/* as given on the command line */
	void	   *private_data;
};

/*
 * Create the sink a target URI names ("sqlite:PATH"); opens it.  Returns
 * NULL after error_set(EXIT_TARGET, ...) on a bad URI or a target that
 * cannot be opened.
 */
extern Sink *sink_open(const char *uri, const char *slot,
					   uint64_t *applied_lsn);
extern void sink_close(Sink *sink);

/* sink_sqlite.c */
extern const SinkOps sink_sqlite_ops;

/* sink_bigquery.c */
extern const SinkOps sink_bigquery_ops;

#endif							/* DSPLUG_SINK_H */
