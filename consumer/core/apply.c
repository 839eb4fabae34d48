/*-------------------------------------------------------------------------
 *
 * apply.c
 *		Frames to sink calls: decode each frame with the shared WireDecoder
 *		(proto/wire_decode.c), apply its batch to the sink, and group source
 *		transactions into target transactions.
 *
 * Skipping what the target already holds.  After a restart or a
 * reconnection the server sends transactions again from the slot's
 * confirmed position, which can be behind what the target holds (the
 * consumer may have died after committing and before confirming).  Every
 * transaction whose commit record starts before applied_lsn, the end of
 * the last transaction the target was given, is skipped: WAL records do not
 * overlap, so such a transaction also ends at or before applied_lsn, and it
 * is in the target already.  Transactions arrive in commit order, so within
 * a session nothing is ever skipped.
 *
 * Grouping.  Single-row transactions would cost one target commit each;
 * instead a target transaction (a "group") stays open across source
 * transactions and is committed when it holds --group-txns transactions,
 * --group-bytes of batches, or is --group-ms old, when the stream has
 * nothing more to read for now, and at --endpos.  The commit records the
 * group's last end LSN with the data (sink.h).  A transaction that spans
 * several batches starts a group of its own, so that only it is lost if
 * the stream stops in its middle: the group is then rolled back, and the
 * server sends the whole transaction again.
 *
 * Descriptions in skipped transactions are older than what the target
 * holds, so they are not given to the sink (an old description would undo
 * a later ADD COLUMN); the sink gets the relation's latest description
 * just before its first change that is applied.
 *
 * Relations copied mid-stream (--backfill): a relation that the target
 * sees for the first time in the middle of the stream (a table added to a
 * publication) is copied under a fresh snapshot; its changes from
 * transactions that ended before the snapshot's consistent point are in
 * the copy and are skipped, later ones are applied.
 *
 * Streamed transactions (--streaming).  Chunks of an in-progress
 * transaction are kept aside in a spool file per top-level xid (spool.c);
 * a stream_abort of a subtransaction marks its records to be dropped, one
 * of the whole transaction deletes the spool.  At stream_commit the spool
 * is replayed as one source transaction with the commit's LSN, its data
 * records numbered from 0 in order (proto/WIRE.md), so the positions are
 * those the transaction would have had unstreamed, and the same when the
 * server sends it again.  It is skipped like any transaction if its commit
 * record starts before applied_lsn.  Nothing of a streamed transaction
 * reaches the sink before its commit, and nothing needs to survive a
 * session: the slot is only confirmed up to what the target holds, the
 * transaction has not committed before that, so the server streams it again
 * from its start.
 *
 * Prepared transactions (two-phase).  A prepared transaction's batches (or
 * its chunks, when streamed) are spooled the same way and applied only at
 * COMMIT PREPARED, with that commit's LSN; ROLLBACK PREPARED drops them.
 * After a restart PostgreSQL does not send again a PREPARE whose record
 * starts before the slot's confirmed position (decode.c, DecodePrepare),
 * and at COMMIT PREPARED it then sends only the commit
 * (reorderbuffer.c, ReorderBufferFinishPrepared, for prepares after the
 * slot's two_phase_at).  So instead of keeping prepared data durably, the
 * consumer never confirms past the PREPARE of a prepared transaction that
 * the target does not durably hold: a PrepareHold lasts from the PREPARE
 * until the COMMIT PREPARED is committed in the target (or ROLLBACK
 * PREPARED arrives), and confirm.c caps the confirmed position at the
 * earliest hold, and starts two-phase sessions from the slot's confirmed
 * position rather than from the target's.  The skip rule above is applied
 * to the COMMIT PREPARED, never to the PREPARE: a prepared transaction
 * whose PREPARE starts before applied_lsn may well commit after it.
 *
 * consumer/core/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "wire.h"

#define DECODE_ERROR_SIZE	1024

/*
 * The decoder's memory pool: size classes of 16 bytes up to POOL_MAX, kept
 * on free lists, carved from POOL_SLAB-byte slabs.  Decoding a batch
 * allocates and frees thousands of small protobuf-c messages (one per
 * record, tuple and value), which glibc's malloc handles at a quarter of
 * the consumer's time (fast bins overflow, then consolidate); free lists
 * make both a few instructions.  Memory held is bounded by the largest
 * batch decoded (batches are bounded by the plugin's batch_size), never
 * returned.  Larger blocks go to malloc.
 */
#define POOL_ALIGN		16
#define POOL_MAX		4096
#define POOL_CLASSES	(POOL_MAX / POOL_ALIGN)
#define POOL_SLAB		(256 * 1024)
#define POOL_BIG		0xFFFF

typedef struct PoolFree
{
	struct PoolFree *next;
} PoolFree;

typedef struct Pool
{
	PoolFree   *free[POOL_CLASSES + 1];
	char	   *slab;			/* current slab, carved from the front */
	size_t		slab_left;
} Pool;

static Pool decoder_pool;

static bool apply_prepared_batch(Applier *a, const WireBatch *b,
								 uint64_t position);
static bool apply_control(Applier *a, const WireBatch *b, uint64_t position);
static bool replay_spool(Applier *a, Spool *s, uint64_t commit_lsn,
						 int64_t commit_time);
static bool replay_batch(Applier *a, Spool *s, const Dsplug__Batch *batch,
						 uint32_t *position);
static bool replay_relation(Applier *a, Dsplug__Relation *rel);
static void replay_relations_free(Applier *a);
static const Dsplug__Relation *current_relation(Applier *a, uint32_t oid);
static bool transaction_done(Applier *a, uint32_t xid, uint64_t end_lsn,
							 bool skipped);
static bool check_end(Applier *a, const char *what, uint32_t xid,
					  uint64_t start_lsn, uint64_t end_lsn, uint64_t position,
					  bool skippable);
static Spool *spool_lookup(Applier *a, uint32_t xid, bool create);
static void spool_forget(Applier *a, Spool *s);
static void spools_forget_all(Applier *a);
static void hold_add(Applier *a, uint32_t xid, uint64_t prepare_lsn);
static PrepareHold *hold_find(Applier *a, uint32_t xid);
static void hold_remove(Applier *a, uint32_t xid);
static uint64_t hold_lsn(Applier *a, uint64_t flushed);
static void undescribed_add(Applier *a, uint32_t oid);
static bool begin_group(Applier *a);
static bool commit_group(Applier *a);
static bool abort_group(Applier *a);
static bool apply_relation(Applier *a, const Dsplug__Relation *rel);
static bool apply_change(Applier *a, const WireItem *item);
static bool apply_truncate(Applier *a, const WireItem *item);
static bool copied_skips(Applier *a, uint32_t oid);
static void whole_rows_set(Applier *a, uint32_t oid, bool whole);
static bool whole_rows_has(const Applier *a, uint32_t oid);
static void copied_add(Applier *a, uint32_t oid, uint64_t lsn);
static void copied_prune(Applier *a);
static bool describe_if_needed(Applier *a, uint32_t oid,
							   const Dsplug__Relation *rel);
static void *pool_alloc(void *opaque, size_t size);
static void pool_free(void *opaque, void *ptr);

void
apply_init(Applier *a, Sink *sink, const ConsumerOptions *opts,
		   uint64_t applied_lsn)
{
	WireAllocator pool = {pool_alloc, pool_free, &decoder_pool};

	memset(a, 0, sizeof(Applier));
	a->sink = sink;
	a->opts = opts;
	a->applied_lsn = applied_lsn;
	a->decoder = wire_decoder_create(&pool);
	if (a->decoder == NULL)
	{
		fprintf(stderr, "dsplug-consumer: could not create a frame decoder: out of memory\n");
		exit(EXIT_RUNTIME);
	}
}

void
apply_destroy(Applier *a)
{
	spools_forget_all(a);
	wire_decoder_destroy(a->decoder);
	free(a->copied);
	free(a->undescribed);
	free(a->whole_rows);
	free(a->spools);
	free(a->holds);
	free(a->replay_rels);
	a->decoder = NULL;
}

/*
 * A new session starts (a connection, a replay file) at start_lsn, the
 * position the server sends from: its first frame carries the
 * session-start flag and relations are described again.
 */
void
apply_new_session(Applier *a, uint64_t start_lsn)
{
	wire_decoder_reset(a->decoder);
	a->nundescribed = 0;
	a->session_lsn = start_lsn;

	/*
	 * The session starts at or before the earliest PREPARE still held (the
	 * slot was never confirmed past it), so it sends those again and they
	 * are held again as they come.
	 */
	a->nholds = 0;
}

/*
 * The session ends (connection lost, stop requested, end of input): keep
 * what is complete, drop a transaction cut short.  Returns false if the
 * group could not be committed.
 */
bool
apply_end_session(Applier *a)
{
	bool		ok = true;

	if (a->in_txn)
	{
		if (!a->skipping)
			ok = abort_group(a);
		a->in_txn = false;
		a->skipping = false;
	}
	ok = ok && commit_group(a);

	/*
	 * Streamed and prepared transactions not yet in the target come again
	 * in the next session, from their start (the slot is not confirmed past
	 * them): forget them.  Their holds stay until the next session starts,
	 * so that the last status update of this one respects them.
	 */
	spools_forget_all(a);
	return ok;
}

/*
 * Where the applier stands, for the confirm rule (confirm.c).  Holds whose
 * COMMIT PREPARED the target now durably holds are released here.  false
 * after error_set() when the sink cannot say what it holds.
 */
bool
apply_progress(Applier *a, ApplyProgress *p)
{
	if (!sink_flushed_lsn(a->sink, &p->flushed_lsn))
		return false;
	p->applied_lsn = a->applied_lsn;
	p->session_lsn = a->session_lsn;
	p->hold_lsn = hold_lsn(a, p->flushed_lsn);
	p->receiving = a->in_txn || a->receiving != NULL;
	p->pending = apply_pending(a);
	return true;
}

/*
 * The target holds everything up to applied_lsn (a copy was committed to
 * it outside of the stream).
 */
void
apply_set_position(Applier *a, uint64_t applied_lsn)
{
	a->applied_lsn = applied_lsn;
}

/* A target transaction is open (the stream waits less for more). */
bool
apply_group_open(const Applier *a)
{
	return a->group_open;
}

/*
 * The earliest PREPARE the slot must not be confirmed past, INVALID_LSN if
 * none, releasing holds whose COMMIT PREPARED the target holds (flushed).
 */
static uint64_t
hold_lsn(Applier *a, uint64_t flushed)
{
	uint64_t	lsn = INVALID_LSN;
	size_t		n = 0;

	for (size_t i = 0; i < a->nholds; i++)
	{
		PrepareHold *h = &a->holds[i];

		if (h->resolved_end_lsn != INVALID_LSN && flushed >= h->resolved_end_lsn)
			continue;
		a->holds[n++] = *h;
		if (lsn == INVALID_LSN || h->prepare_lsn < lsn)
			lsn = h->prepare_lsn;
	}
	a->nholds = n;
	return lsn;
}

/* Something is in flight: a transaction being received or an open group. */
bool
apply_pending(const Applier *a)
{
	return a->in_txn || a->group_open;
}

/* The stream has nothing more to read for now: commit what is complete. */
bool
apply_idle(Applier *a)
{
	if (a->in_txn)
		return true;
	return commit_group(a);
}

/* Time passes: commit a group that is old enough. */
bool
apply_tick(Applier *a)
{
	if (a->in_txn || !a->group_open)
		return true;
	if (clock_us() - a->group_started >= (int64_t) a->opts->group_ms * 1000)
		return commit_group(a);
	return true;
}

/*
 * Decode one frame and apply its batch.  position is the frame's WAL
 * position from the transport (XLogData's dataStart; INVALID_LSN when not
 * known): the walsender writes a transaction's last frame at the end of
 * its commit record, so the end LSN the target will record is checked
 * against it, and never comes from the payload alone.  Returns false after
 * error_set(): a frame that does not decode is RESULT_SERVER when it is not
 * one we speak (a slot of another plugin, or a plugin speaking another
 * version), RESULT_RUNTIME otherwise (a damaged frame fails its checksum).
 */
bool
apply_frame(Applier *a, const uint8_t *frame, size_t len, uint64_t position)
{
	char		errbuf[DECODE_ERROR_SIZE];
	const WireBatch *b;
	const Dsplug__Batch *batch;

	/* a session-start frame in the middle of one: the sender restarted */
	if (len >= DSPLUG_FRAME_HEADER_SIZE &&
		(frame[1] & DSPLUG_FRAME_SESSION_START) &&
		(a->in_txn || a->nspools > 0))
	{
		if (!apply_end_session(a))
			return false;
	}

	b = wire_decoder_read(a->decoder, frame, len, errbuf, sizeof(errbuf));
	if (b == NULL)
	{
		error_set(wire_decoder_foreign(a->decoder) ? RESULT_SERVER : RESULT_RUNTIME,
				  "could not decode frame: %s", errbuf);
		return false;
	}
	a->decoded_bytes += b->payload_size;
	batch = b->batch;

	/* a chunk of a streamed transaction: kept aside until its end */
	if (b->in_stream_chunk)
	{
		for (size_t i = 0; i < b->nitems; i++)
		{
			/* the session's description changed; the sink's did not */
			if (b->items[i].record->kind_case == DSPLUG__RECORD__KIND_RELATION)
				undescribed_add(a, b->items[i].record->relation->oid);
		}
		return spool_write_batch(spool_lookup(a, b->stream_xid, true), b,
								 a->decoder);
	}
	if (b->prepared)
		return apply_prepared_batch(a, b, position);

	/* the lone end of a streamed or prepared transaction */
	if (batch->stream_commit != NULL || batch->stream_abort != NULL ||
		batch->prepare != NULL || batch->commit_prepared != NULL ||
		batch->rollback_prepared != NULL)
		return apply_control(a, b, position);

	/* a lone non-transactional logical message: nothing to apply */
	if (!b->in_transaction)
		return true;

	if (batch->begin != NULL)
	{
		a->in_txn = true;
		a->commit_lsn = b->commit_lsn;
		a->commit_time = b->commit_time;
		a->skipping = b->commit_lsn < a->applied_lsn;

		/* a transaction of several batches gets a group of its own */
		if (!a->skipping && !b->ends_transaction && !commit_group(a))
			return false;
	}
	if (!a->skipping)
		a->group_bytes += b->payload_size;

	for (size_t i = 0; i < b->nitems; i++)
	{
		const WireItem *item = &b->items[i];

		switch (item->record->kind_case)
		{
			case DSPLUG__RECORD__KIND_RELATION:
				if (a->skipping)
				{
					/* later changes follow it: describe it then */
					undescribed_add(a, item->record->relation->oid);
				}
				else if (!apply_relation(a, item->record->relation))
					return false;
				break;
			case DSPLUG__RECORD__KIND_INSERT:
			case DSPLUG__RECORD__KIND_UPDATE:
			case DSPLUG__RECORD__KIND_DELETE:
				if (!a->skipping && !apply_change(a, item))
					return false;
				break;
			case DSPLUG__RECORD__KIND_TRUNCATE:
				if (!a->skipping && !apply_truncate(a, item))
					return false;
				break;
			default:
				/* logical messages are not applied to tables */
				break;
		}
	}

	if (b->ends_transaction)
	{
		bool		skipped = a->skipping;

		if (!check_end(a, "transaction", b->xid, a->commit_lsn,
					   batch->commit->end_lsn, position, true))
			return false;
		a->in_txn = false;
		a->skipping = false;
		return transaction_done(a, b->xid, batch->commit->end_lsn, skipped);
	}
	return true;
}

/*
 * A batch of a prepared (two-phase, not streamed) transaction: kept aside
 * until COMMIT PREPARED, and the slot held at its PREPARE from its first
 * batch on.  Its last batch carries the prepare.
 */
static bool
apply_prepared_batch(Applier *a, const WireBatch *b, uint64_t position)
{
	const Dsplug__Batch *batch = b->batch;

	if (batch->begin != NULL)
	{
		/* a prepared transaction sent again in this session replaces it */
		Spool	   *old = spool_lookup(a, b->xid, false);

		if (old != NULL)
			spool_forget(a, old);
		a->receiving = spool_lookup(a, b->xid, true);
		hold_add(a, b->xid, b->commit_lsn);
	}
	if (a->receiving == NULL || a->receiving->xid != b->xid)
	{
		error_set(RESULT_RUNTIME, "could not apply prepared transaction %u: a batch of it arrived without its first batch",
				  b->xid);
		return false;
	}
	if (!spool_write_batch(a->receiving, b, a->decoder))
		return false;
	if (batch->prepare != NULL)
	{
		if (!check_end(a, "PREPARE TRANSACTION of", b->xid, b->commit_lsn,
					   batch->prepare->end_lsn, position, false))
			return false;
		a->receiving->gid = xstrdup(batch->prepare->gid);
		a->receiving->prepare_lsn = b->commit_lsn;
		a->receiving = NULL;
		if (batch->prepare->end_lsn > a->session_lsn)
			a->session_lsn = batch->prepare->end_lsn;
	}
	return true;
}

/*
 * The lone end of a streamed or prepared transaction: stream_commit,
 * stream_abort, the prepare of a streamed transaction, COMMIT PREPARED,
 * ROLLBACK PREPARED.
 */
static bool
apply_control(Applier *a, const WireBatch *b, uint64_t position)
{
	const Dsplug__Batch *batch = b->batch;
	Spool	   *s;

	if (batch->stream_abort != NULL)
	{
		const Dsplug__StreamAbort *ab = batch->stream_abort;

		s = spool_lookup(a, ab->xid, false);
		if (s == NULL)
			return true;		/* nothing of it was kept */
		if (ab->subxid == ab->xid || ab->subxid == 0)
			spool_forget(a, s);
		else
			spool_abort_subxact(s, ab->subxid);
		return true;
	}

	if (batch->stream_commit != NULL)
	{
		const Dsplug__StreamCommit *sc = batch->stream_commit;
		bool		skip = sc->commit_lsn < a->applied_lsn;

		if (!check_end(a, "streamed transaction", sc->xid, sc->commit_lsn,
					   sc->end_lsn, position, true))
			return false;
		s = spool_lookup(a, sc->xid, false);
		if (!skip && s != NULL &&
			!replay_spool(a, s, sc->commit_lsn, sc->commit_time))
			return false;
		if (s != NULL)
			spool_forget(a, s);
		if (a->replay_interrupted)
			return true;		/* rolled back for a stop: it comes again */
		return transaction_done(a, sc->xid, sc->end_lsn, skip);
	}

	if (batch->prepare != NULL)
	{
		const Dsplug__Prepare *pr = batch->prepare;

		/* a streamed transaction prepared: its chunks wait for the commit */
		if (!check_end(a, "PREPARE TRANSACTION of", pr->xid, pr->prepare_lsn,
					   pr->end_lsn, position, false))
			return false;
		s = spool_lookup(a, pr->xid, true);
		free(s->gid);
		s->gid = xstrdup(pr->gid);
		s->prepare_lsn = pr->prepare_lsn;
		hold_add(a, pr->xid, pr->prepare_lsn);
		if (pr->end_lsn > a->session_lsn)
			a->session_lsn = pr->end_lsn;
		return true;
	}

	if (batch->commit_prepared != NULL)
	{
		const Dsplug__CommitPrepared *cp = batch->commit_prepared;
		bool		skip = cp->commit_lsn < a->applied_lsn;
		PrepareHold *h;

		if (!check_end(a, "COMMIT PREPARED of", cp->xid, cp->commit_lsn,
					   cp->end_lsn, position, true))
			return false;
		s = spool_lookup(a, cp->xid, false);
		if (s != NULL && (s->gid == NULL || strcmp(s->gid, cp->gid) != 0))
		{
			error_set(RESULT_RUNTIME, "could not apply COMMIT PREPARED '%s' of transaction %u: the transaction was prepared as '%s'",
					  cp->gid, cp->xid, s->gid != NULL ? s->gid : "(not prepared)");
			return false;
		}
		if (skip)
		{
			/* in the target already (as its end LSN shows) */
			if (s != NULL)
				spool_forget(a, s);
			hold_remove(a, cp->xid);
			return transaction_done(a, cp->xid, cp->end_lsn, true);
		}
		if (s == NULL)
		{
			error_set(RESULT_RUNTIME, "could not apply COMMIT PREPARED '%s' of transaction %u at %X/%X: its prepared transaction was not received in this session",
					  cp->gid, cp->xid, LSN_FORMAT_ARGS(cp->commit_lsn));
			return false;
		}
		if (!replay_spool(a, s, cp->commit_lsn, cp->commit_time))
			return false;
		spool_forget(a, s);
		if (a->replay_interrupted)
			return true;		/* rolled back for a stop; still held */

		/* released once the target holds the commit durably */
		h = hold_find(a, cp->xid);
		if (h != NULL)
			h->resolved_end_lsn = cp->end_lsn;
		return transaction_done(a, cp->xid, cp->end_lsn, false);
	}

	/* ROLLBACK PREPARED: nothing of it ever reached the target */
	s = spool_lookup(a, batch->rollback_prepared->xid, false);
	if (s != NULL)
		spool_forget(a, s);
	hold_remove(a, batch->rollback_prepared->xid);
	if (batch->rollback_prepared->end_lsn > a->session_lsn)
		a->session_lsn = batch->rollback_prepared->end_lsn;
	return true;
}

/*
 * The end of a transaction, a PREPARE or a COMMIT PREPARED is where its
 * frame says: the walsender writes that frame at the end of the record.
 * What the skip rule may skip (skippable: not a PREPARE) must end at or
 * before applied_lsn when it starts before it.  Returns false after
 * error_set() otherwise.
 */
static bool
check_end(Applier *a, const char *what, uint32_t xid, uint64_t start_lsn,
		  uint64_t end_lsn, uint64_t position, bool skippable)
{
	if (end_lsn <= start_lsn ||
		(position != INVALID_LSN && end_lsn != position))
	{
		error_set(RESULT_RUNTIME, "could not apply %s %u: its record at %X/%X ends at %X/%X, but its frame is at %X/%X",
				  what, xid, LSN_FORMAT_ARGS(start_lsn), LSN_FORMAT_ARGS(end_lsn),
				  LSN_FORMAT_ARGS(position));
		return false;
	}
	/* skipped as ending before applied_lsn: it must, or it is lost */
	if (skippable && start_lsn < a->applied_lsn && end_lsn > a->applied_lsn)
	{
		error_set(RESULT_RUNTIME, "could not skip %s %u: its record starts at %X/%X, before the target's position %X/%X, but ends after it at %X/%X",
				  what, xid, LSN_FORMAT_ARGS(start_lsn),
				  LSN_FORMAT_ARGS(a->applied_lsn), LSN_FORMAT_ARGS(end_lsn));
		return false;
	}
	return true;
}

/*
 * A source transaction ended at end_lsn, applied to the open group or
 * skipped: count it, move applied_lsn, and commit the group when it is
 * full, old enough, or at --endpos.
 */
static bool
transaction_done(Applier *a, uint32_t xid, uint64_t end_lsn, bool skipped)
{
	(void) xid;
	if (!skipped)
	{
		a->group_txns++;
		a->txns++;
		a->last_commit_time = a->commit_time;
	}
	if (end_lsn > a->applied_lsn)
		a->applied_lsn = end_lsn;
	if (end_lsn > a->session_lsn)
		a->session_lsn = end_lsn;
	if (a->ncopied > 0)
		copied_prune(a);

	if (a->opts->endpos != INVALID_LSN && a->applied_lsn >= a->opts->endpos)
	{
		a->endpos_reached = true;
		return commit_group(a);
	}
	if (a->group_open &&
		(a->group_txns >= a->opts->group_txns ||
		 a->group_bytes >= a->opts->group_bytes ||
		 clock_us() - a->group_started >= (int64_t) a->opts->group_ms * 1000))
		return commit_group(a);
	return true;
}

/*
 * Apply a spooled transaction as one source transaction committed at
 * commit_lsn, into the open group: descriptions as they were spooled, data
 * records numbered from 0 in order, those of rolled-back subtransactions
 * dropped.  The spool is local, so the transaction cannot be cut short by
 * the stream; it shares the group with its neighbours.
 */
static bool
replay_spool(Applier *a, Spool *s, uint64_t commit_lsn, int64_t commit_time)
{
	uint32_t	position = 0;
	bool		ok = true;

	a->replay_interrupted = false;
	a->commit_lsn = commit_lsn;
	a->commit_time = commit_time;
	a->group_bytes += s->bytes;
	if (!begin_group(a) || !spool_rewind(s))
		return false;

	a->replaying = true;
	for (;;)
	{
		Dsplug__Relation *rel;
		Dsplug__Batch *batch;
		SpoolEntry e = spool_read(s, &rel, &batch);

		if (e == SPOOL_END)
			break;
		if (e == SPOOL_ERROR)
		{
			ok = false;
			break;
		}
		if (e == SPOOL_RELATION_ENTRY)
		{
			if (!replay_relation(a, rel))
			{
				ok = false;
				break;
			}
			continue;
		}
		ok = replay_batch(a, s, batch, &position);
		dsplug__batch__free_unpacked(batch, NULL);
		if (!ok)
			break;

		/*
		 * A stop request: a transaction of millions of rows would take
		 * many seconds to finish.  Roll the group back instead; the
		 * transaction is not confirmed, so it comes again.
		 */
		if (stop_requested)
		{
			log_info("stopping in the middle of transaction %u: rolled back, the server sends it again",
					 s->xid);
			ok = abort_group(a);
			a->replay_interrupted = true;
			break;
		}
	}

	/*
	 * The sink now follows the spool's descriptions, the session's decoder
	 * its own latest ones: have the sink take the latter before the next
	 * change of those relations.
	 */
	for (size_t i = 0; i < a->nreplay_rels; i++)
		undescribed_add(a, a->replay_rels[i].oid);
	replay_relations_free(a);
	a->replaying = false;

	/*
	 * A spool that fails part way (a damaged entry, a sink error) must not
	 * leave its first part in the group for the session's end to commit:
	 * roll the group back, to the target's flushed LSN.
	 */
	if (!ok)
		abort_group(a);
	return ok;
}

/* The records of one spooled batch. */
static bool
replay_batch(Applier *a, Spool *s, const Dsplug__Batch *batch,
			 uint32_t *position)
{
	for (size_t i = 0; i < batch->n_records; i++)
	{
		const Dsplug__Record *rec = batch->records[i];
		WireItem	item;
		const Dsplug__Change *ch = NULL;

		if (rec->kind_case == DSPLUG__RECORD__KIND_RELATION)
		{
			Dsplug__Relation *copy;
			uint8_t    *packed;
			size_t		len;

			/* it outlives its batch: keep a copy of its own */
			len = dsplug__relation__get_packed_size(rec->relation);
			packed = xmalloc(len);
			dsplug__relation__pack(rec->relation, packed);
			copy = dsplug__relation__unpack(NULL, len, packed);
			free(packed);
			if (copy == NULL)
			{
				error_set(RESULT_RUNTIME, "could not copy a description of relation %u: out of memory",
						  rec->relation->oid);
				return false;
			}
			if (!replay_relation(a, copy))
				return false;
			continue;
		}

		/* a data record: it has a position, unless it was rolled back */
		if (spool_aborted(s, rec->xid))
			continue;
		item.record = rec;
		item.relation = NULL;
		item.position = (*position)++;
		switch (rec->kind_case)
		{
			case DSPLUG__RECORD__KIND_INSERT:
				ch = rec->insert;
				break;
			case DSPLUG__RECORD__KIND_UPDATE:
				ch = rec->update;
				break;
			case DSPLUG__RECORD__KIND_DELETE:
				ch = rec->delete_;
				break;
			case DSPLUG__RECORD__KIND_TRUNCATE:
				if (!apply_truncate(a, &item))
					return false;
				continue;
			default:
				/* logical messages are not applied to tables */
				continue;
		}
		item.relation = current_relation(a, ch->relation);
		if (item.relation == NULL ||
			(ch->new_ != NULL && ch->new_->n_values != item.relation->n_columns) ||
			(ch->old != NULL && ch->old->n_values != item.relation->n_columns))
		{
			error_set(RESULT_RUNTIME, "could not apply a spooled change of relation %u in transaction %u: it does not match the relation's description",
					  ch->relation, s->xid);
			return false;
		}
		if (!apply_change(a, &item))
			return false;
	}
	return true;
}

/*
 * A description read back during a replay (owned, unpacked with malloc):
 * the relation's changes follow it from here on, and so does the sink.
 */
static bool
replay_relation(Applier *a, Dsplug__Relation *rel)
{
	size_t		i;

	for (i = 0; i < a->nreplay_rels; i++)
	{
		if (a->replay_rels[i].oid == rel->oid)
			break;
	}
	if (i == a->nreplay_rels)
	{
		if (a->nreplay_rels == a->replay_rels_cap)
		{
			a->replay_rels_cap = a->replay_rels_cap > 0 ?
				a->replay_rels_cap * 2 : 8;
			a->replay_rels = xrealloc(a->replay_rels,
									  a->replay_rels_cap * sizeof(SpooledRelation));
		}
		a->nreplay_rels++;
	}
	else
		dsplug__relation__free_unpacked(a->replay_rels[i].rel, NULL);
	a->replay_rels[i].oid = rel->oid;
	a->replay_rels[i].rel = rel;
	return apply_relation(a, rel);
}

static void
replay_relations_free(Applier *a)
{
	for (size_t i = 0; i < a->nreplay_rels; i++)
		dsplug__relation__free_unpacked(a->replay_rels[i].rel, NULL);
	a->nreplay_rels = 0;
}

/*
 * The description a change of relation oid follows: the spool's while a
 * spool is replayed, the session's otherwise.
 */
static const Dsplug__Relation *
current_relation(Applier *a, uint32_t oid)
{
	if (!a->replaying)
		return wire_decoder_relation(a->decoder, oid);
	for (size_t i = 0; i < a->nreplay_rels; i++)
	{
		if (a->replay_rels[i].oid == oid)
			return a->replay_rels[i].rel;
	}
	return NULL;
}

/* The spool of top-level transaction xid; with create, made if missing. */
static Spool *
spool_lookup(Applier *a, uint32_t xid, bool create)
{
	const char *dir = a->opts->spool_dir;

	for (size_t i = 0; i < a->nspools; i++)
	{
		if (a->spools[i]->xid == xid)
			return a->spools[i];
	}
	if (!create)
		return NULL;
	if (a->nspools == a->spools_cap)
	{
		a->spools_cap = a->spools_cap > 0 ? a->spools_cap * 2 : 8;
		a->spools = xrealloc(a->spools, a->spools_cap * sizeof(Spool *));
	}
	a->spools[a->nspools] = spool_create(dir != NULL ? dir : "/tmp", xid);
	return a->spools[a->nspools++];
}

static void
spool_forget(Applier *a, Spool *s)
{
	for (size_t i = 0; i < a->nspools; i++)
	{
		if (a->spools[i] == s)
		{
			a->spools[i] = a->spools[--a->nspools];
			break;
		}
	}
	if (a->receiving == s)
		a->receiving = NULL;
	spool_destroy(s);
}

static void
spools_forget_all(Applier *a)
{
	for (size_t i = 0; i < a->nspools; i++)
		spool_destroy(a->spools[i]);
	a->nspools = 0;
	a->receiving = NULL;
}

static void
hold_add(Applier *a, uint32_t xid, uint64_t prepare_lsn)
{
	PrepareHold *h = hold_find(a, xid);

	if (h == NULL)
	{
		if (a->nholds == a->holds_cap)
		{
			a->holds_cap = a->holds_cap > 0 ? a->holds_cap * 2 : 8;
			a->holds = xrealloc(a->holds, a->holds_cap * sizeof(PrepareHold));
		}
		h = &a->holds[a->nholds++];
	}
	h->xid = xid;
	h->prepare_lsn = prepare_lsn;
	h->resolved_end_lsn = INVALID_LSN;
}

static PrepareHold *
hold_find(Applier *a, uint32_t xid)
{
	for (size_t i = 0; i < a->nholds; i++)
	{
		if (a->holds[i].xid == xid)
			return &a->holds[i];
	}
	return NULL;
}

static void
hold_remove(Applier *a, uint32_t xid)
{
	for (size_t i = 0; i < a->nholds; i++)
	{
		if (a->holds[i].xid == xid)
		{
			a->holds[i] = a->holds[--a->nholds];
			return;
		}
	}
}

static void
undescribed_add(Applier *a, uint32_t oid)
{
	for (size_t i = 0; i < a->nundescribed; i++)
	{
		if (a->undescribed[i] == oid)
			return;
	}
	if (a->nundescribed == a->undescribed_cap)
	{
		a->undescribed_cap = a->undescribed_cap > 0 ?
			a->undescribed_cap * 2 : 16;
		a->undescribed = xrealloc(a->undescribed,
								  a->undescribed_cap * sizeof(uint32_t));
	}
	a->undescribed[a->nundescribed++] = oid;
}

static bool
begin_group(Applier *a)
{
	if (a->group_open)
		return true;
	if (!sink_begin(a->sink))
		return false;
	a->group_open = true;
	a->group_txns = 0;
	a->group_bytes = 0;
	a->group_started = clock_us();
	return true;
}

/*
 * Commit the open group with applied_lsn, the end of the last complete
 * transaction it holds (never called while a transaction is half applied:
 * callers check in_txn, or the transaction is being skipped).
 */
static bool
commit_group(Applier *a)
{
	if (!a->group_open)
		return true;
	if (!sink_commit(a->sink, a->applied_lsn))
		return false;
	a->group_open = false;
	return true;
}

/*
 * Roll back the open group: the target is back at its flushed LSN, and so
 * is applied_lsn, so that the server's resend is applied, not skipped.
 * Copies made in the group are gone too; their relations will be described
 * and copied again.
 */
static bool
abort_group(Applier *a)
{
	if (!a->group_open)
		return true;
	sink_abort(a->sink);
	a->group_open = false;
	a->ncopied = 0;
	return sink_flushed_lsn(a->sink, &a->applied_lsn);
}

static bool
apply_relation(Applier *a, const Dsplug__Relation *rel)
{
	SinkRelationInfo info;
	size_t		n = 0;

	for (size_t i = 0; i < a->nundescribed; i++)
	{
		if (a->undescribed[i] != rel->oid)
			a->undescribed[n++] = a->undescribed[i];
	}
	a->nundescribed = n;

	if (!begin_group(a) || !sink_relation(a->sink, rel, &info))
		return false;
	whole_rows_set(a, rel->oid, info.whole_rows);

	/*
	 * A relation new to the target in the middle of the stream, or with
	 * columns new to it (whose values in existing rows only the source
	 * knows: ADD COLUMN ... DEFAULT fills them without writing WAL): copy
	 * its rows, unless the transaction is being skipped (the target saw
	 * this description then).  The copy goes into the open group, between
	 * the sink's begin_copy and end_copy (backfill.c).
	 */
	if ((info.created || info.columns_added) &&
		a->source.copy_relation != NULL && !a->skipping &&
		!a->source.copy_relation(a->source.arg, rel, info.created,
								 &info.copied_lsn))
		return false;
	if (info.copied_lsn != INVALID_LSN && info.copied_lsn > a->applied_lsn &&
		!info.orders_by_sequence)
		copied_add(a, rel->oid, info.copied_lsn);
	return true;
}

static bool
apply_change(Applier *a, const WireItem *item)
{
	const Dsplug__Record *rec = item->record;
	const Dsplug__Change *ch;
	SinkChange change;

	switch (rec->kind_case)
	{
		case DSPLUG__RECORD__KIND_INSERT:
			ch = rec->insert;
			change.kind = SINK_INSERT;
			break;
		case DSPLUG__RECORD__KIND_UPDATE:
			ch = rec->update;
			change.kind = SINK_UPDATE;
			break;
		default:
			ch = rec->delete_;
			change.kind = SINK_DELETE;
			break;
	}
	if (a->nundescribed > 0 && !a->replaying &&
		!describe_if_needed(a, ch->relation, item->relation))
		return false;
	if (a->ncopied > 0 && copied_skips(a, ch->relation))
		return true;

	change.relation = item->relation;
	change.old = ch->old;
	change.new_ = ch->new_;
	change.commit_lsn = a->commit_lsn;
	change.position = item->position;
	change.commit_time = a->commit_time;
	change.backfill = false;

	/*
	 * A target that replaces whole rows needs the unchanged TOAST values
	 * the update does not carry: read from the source (source/toast_fetch.c;
	 * why that converges is argued there).  A row gone from the source is
	 * not upserted; if the update moved it from another key, that key is
	 * still deleted.
	 */
	if (change.kind == SINK_UPDATE && a->source.complete_row != NULL &&
		a->nwhole_rows > 0 && whole_rows_has(a, ch->relation))
	{
		bool		vanished;

		if (!a->source.complete_row(a->source.arg, change.relation,
									change.old, change.new_,
									change.commit_lsn, &change.new_,
									&vanished))
			return false;
		if (vanished)
		{
			if (change.old == NULL)
				return true;
			change.kind = SINK_DELETE;
			change.new_ = NULL;
		}
	}

	if (!begin_group(a) || !sink_change(a->sink, &change))
		return false;
	a->changes++;
	a->kind_changes[change.kind]++;
	return true;
}

/* Remember whether rel's target replaces whole rows (SinkRelationInfo). */
static void
whole_rows_set(Applier *a, uint32_t oid, bool whole)
{
	size_t		n = 0;

	for (size_t i = 0; i < a->nwhole_rows; i++)
	{
		if (a->whole_rows[i] != oid)
			a->whole_rows[n++] = a->whole_rows[i];
	}
	a->nwhole_rows = n;
	if (!whole)
		return;
	if (a->nwhole_rows == a->whole_rows_cap)
	{
		a->whole_rows_cap = a->whole_rows_cap ? a->whole_rows_cap * 2 : 16;
		a->whole_rows = xrealloc(a->whole_rows, sizeof(uint32_t) * a->whole_rows_cap);
	}
	a->whole_rows[a->nwhole_rows++] = oid;
}

static bool
whole_rows_has(const Applier *a, uint32_t oid)
{
	for (size_t i = 0; i < a->nwhole_rows; i++)
	{
		if (a->whole_rows[i] == oid)
			return true;
	}
	return false;
}

static bool
apply_truncate(Applier *a, const WireItem *item)
{
	const Dsplug__Truncate *tr = item->record->truncate;
	const Dsplug__Relation **rels;
	size_t		n = 0;
	bool		ok;

	rels = xmalloc(sizeof(Dsplug__Relation *) * (tr->n_relations + 1));
	for (size_t i = 0; i < tr->n_relations; i++)
	{
		if (a->nundescribed > 0 && !a->replaying &&
			!describe_if_needed(a, tr->relations[i],
								current_relation(a, tr->relations[i])))
		{
			free(rels);
			return false;
		}
		if (a->ncopied > 0 && copied_skips(a, tr->relations[i]))
			continue;
		/* the decoder (or spool.c) made sure every relation was described */
		rels[n] = current_relation(a, tr->relations[i]);
		if (rels[n] == NULL)
		{
			error_set(RESULT_RUNTIME, "could not truncate relation %u: it was not described",
					  tr->relations[i]);
			free(rels);
			return false;
		}
		n++;
	}
	ok = begin_group(a) &&
		sink_truncate(a->sink, rels, n, tr->cascade, tr->restart_identity,
					  a->commit_lsn, item->position);
	free(rels);
	if (ok)
	{
		a->changes++;
		a->kind_changes[3]++;
	}
	return ok;
}

/*
 * Give the sink a description held back by a skipped transaction: rel, the
 * one the change follows.
 */
static bool
describe_if_needed(Applier *a, uint32_t oid, const Dsplug__Relation *rel)
{
	for (size_t i = 0; i < a->nundescribed; i++)
	{
		if (a->undescribed[i] == oid)
			return apply_relation(a, rel);
	}
	return true;
}

/*
 * Is a change of this relation, in the current transaction, already in a
 * mid-stream copy?  The copy's snapshot holds every transaction that ended
 * at or before its consistent point, i.e. (records not overlapping) every
 * one whose commit record starts before it.
 */
static bool
copied_skips(Applier *a, uint32_t oid)
{
	for (size_t i = 0; i < a->ncopied; i++)
	{
		if (a->copied[i].oid == oid)
			return a->commit_lsn < a->copied[i].lsn;
	}
	return false;
}

static void
copied_add(Applier *a, uint32_t oid, uint64_t lsn)
{
	for (size_t i = 0; i < a->ncopied; i++)
	{
		if (a->copied[i].oid == oid)
		{
			a->copied[i].lsn = lsn;
			return;
		}
	}
	if (a->ncopied == a->copied_cap)
	{
		a->copied_cap = a->copied_cap > 0 ? a->copied_cap * 2 : 8;
		a->copied = xrealloc(a->copied, a->copied_cap * sizeof(CopiedRelation));
	}
	a->copied[a->ncopied].oid = oid;
	a->copied[a->ncopied].lsn = lsn;
	a->ncopied++;
}

/* Forget copies the stream has caught up with. */
static void
copied_prune(Applier *a)
{
	size_t		n = 0;

	for (size_t i = 0; i < a->ncopied; i++)
	{
		if (a->copied[i].lsn > a->applied_lsn)
			a->copied[n++] = a->copied[i];
	}
	a->ncopied = n;
}

/*
 * Every block has a 16-byte header holding its size class (POOL_BIG for a
 * malloc'ed one), so that free needs no size and blocks stay aligned.
 */
static void *
pool_alloc(void *opaque, size_t size)
{
	Pool	   *pool = opaque;
	size_t		cls = (size + POOL_ALIGN - 1) / POOL_ALIGN;
	char	   *block;

	if (size == 0)
		cls = 1;
	if (cls > POOL_CLASSES)
	{
		if (size > SIZE_MAX - POOL_ALIGN)
			return NULL;
		block = malloc(size + POOL_ALIGN);
		if (block == NULL)
			return NULL;
		*(uint16_t *) block = POOL_BIG;
		return block + POOL_ALIGN;
	}
	if (pool->free[cls] != NULL)
	{
		PoolFree   *f = pool->free[cls];

		pool->free[cls] = f->next;
		return f;
	}
	if (pool->slab_left < (cls + 1) * POOL_ALIGN)
	{
		pool->slab = malloc(POOL_SLAB);
		if (pool->slab == NULL)
		{
			pool->slab_left = 0;
			return NULL;
		}
		pool->slab_left = POOL_SLAB;
	}
	block = pool->slab;
	pool->slab += (cls + 1) * POOL_ALIGN;
	pool->slab_left -= (cls + 1) * POOL_ALIGN;
	*(uint16_t *) block = (uint16_t) cls;
	return block + POOL_ALIGN;
}

static void
pool_free(void *opaque, void *ptr)
{
	Pool	   *pool = opaque;
	char	   *block = (char *) ptr - POOL_ALIGN;
	uint16_t	cls = *(uint16_t *) block;
	PoolFree   *f = ptr;

	if (cls == POOL_BIG)
	{
		free(block);
		return;
	}
	f->next = pool->free[cls];
	pool->free[cls] = f;
}
