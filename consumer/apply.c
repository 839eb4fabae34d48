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
 * consumer/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
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

static bool begin_group(Applier *a);
static bool commit_group(Applier *a);
static void abort_group(Applier *a);
static bool apply_relation(Applier *a, const Dsplug__Relation *rel);
static bool apply_change(Applier *a, const WireItem *item);
static bool apply_truncate(Applier *a, const WireItem *item);
static bool copied_skips(Applier *a, uint32_t oid);
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
	wire_decoder_destroy(a->decoder);
	free(a->copied);
	free(a->undescribed);
	a->decoder = NULL;
}

/*
 * A new session starts (a connection, a replay file): its first frame
 * carries the session-start flag and relations are described again.
 */
void
apply_new_session(Applier *a)
{
	wire_decoder_reset(a->decoder);
	a->nundescribed = 0;
}

/*
 * The session ends (connection lost, stop requested, end of input): keep
 * what is complete, drop a transaction cut short.  Returns false if the
 * group could not be committed.
 */
bool
apply_end_session(Applier *a)
{
	if (a->in_txn)
	{
		if (!a->skipping)
			abort_group(a);
		a->in_txn = false;
		a->skipping = false;
	}
	return commit_group(a);
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
 * error_set(): a frame that does not decode is EXIT_SERVER when its version
 * byte is not ours (a slot of another plugin, or a plugin speaking another
 * version), EXIT_RUNTIME otherwise.
 */
bool
apply_frame(Applier *a, const uint8_t *frame, size_t len, uint64_t position)
{
	char		errbuf[DECODE_ERROR_SIZE];
	const WireBatch *b;
	const Dsplug__Batch *batch;

	/* a session-start frame in the middle of one: the sender restarted */
	if (len >= DSPLUG_FRAME_HEADER_SIZE &&
		(frame[1] & DSPLUG_FRAME_SESSION_START) && a->in_txn)
	{
		if (!apply_end_session(a))
			return false;
	}

	b = wire_decoder_read(a->decoder, frame, len, errbuf, sizeof(errbuf));
	if (b == NULL)
	{
		error_set(len >= 1 && frame[0] != DSPLUG_WIRE_VERSION ?
				  EXIT_SERVER : EXIT_RUNTIME,
				  "could not decode frame: %s", errbuf);
		return false;
	}
	batch = b->batch;

	/*
	 * Streaming and two-phase are only sent to sessions that ask for them
	 * (this consumer does not), or by a slot created with two_phase, which
	 * stream.c refuses.  Applying a prepared transaction as if committed
	 * would be wrong, so whatever brings one is an error.
	 */
	if (b->in_stream_chunk || b->prepared || batch->stream_commit != NULL ||
		batch->stream_abort != NULL || batch->prepare != NULL ||
		batch->commit_prepared != NULL || batch->rollback_prepared != NULL)
	{
		error_set(EXIT_SERVER, "could not apply frame: it holds a streamed or prepared transaction, which dsplug-consumer does not request or support");
		return false;
	}

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
					if (a->nundescribed == a->undescribed_cap)
					{
						a->undescribed_cap = a->undescribed_cap > 0 ?
							a->undescribed_cap * 2 : 16;
						a->undescribed = xrealloc(a->undescribed,
												  a->undescribed_cap * sizeof(uint32_t));
					}
					a->undescribed[a->nundescribed++] = item->record->relation->oid;
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
		uint64_t	end_lsn = batch->commit->end_lsn;

		if (end_lsn <= a->commit_lsn ||
			(position != INVALID_LSN && end_lsn != position))
		{
			error_set(EXIT_RUNTIME, "could not apply transaction %u: its commit record at %X/%X ends at %X/%X, but its frame is at %X/%X",
					  b->xid, LSN_FORMAT_ARGS(a->commit_lsn), LSN_FORMAT_ARGS(end_lsn),
					  LSN_FORMAT_ARGS(position));
			return false;
		}
		/* skipped as ending before applied_lsn: it must, or it is lost */
		if (a->skipping && end_lsn > a->applied_lsn)
		{
			error_set(EXIT_RUNTIME, "could not skip transaction %u: its commit record starts at %X/%X, before the target's position %X/%X, but ends after it at %X/%X",
					  b->xid, LSN_FORMAT_ARGS(a->commit_lsn),
					  LSN_FORMAT_ARGS(a->applied_lsn), LSN_FORMAT_ARGS(end_lsn));
			return false;
		}

		if (!a->skipping)
		{
			a->group_txns++;
			a->txns++;
			a->last_commit_time = a->commit_time;
		}
		if (end_lsn > a->applied_lsn)
			a->applied_lsn = end_lsn;
		a->in_txn = false;
		a->skipping = false;
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
	}
	return true;
}

static bool
begin_group(Applier *a)
{
	if (a->group_open)
		return true;
	if (!a->sink->ops->begin(a->sink))
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
	if (!a->sink->ops->commit(a->sink, a->applied_lsn))
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
static void
abort_group(Applier *a)
{
	if (!a->group_open)
		return;
	a->sink->ops->abort(a->sink);
	a->group_open = false;
	a->applied_lsn = a->sink->ops->flushed_lsn(a->sink);
	a->ncopied = 0;
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

	if (!begin_group(a) || !a->sink->ops->relation(a->sink, rel, &info))
		return false;

	/*
	 * A relation new to the target in the middle of the stream, or with
	 * columns new to it (whose values in existing rows only the source
	 * knows: ADD COLUMN ... DEFAULT fills them without writing WAL): copy
	 * its rows, unless the transaction is being skipped (the target saw
	 * this description then).
	 */
	if ((info.created || info.columns_added) && a->copy_hook != NULL &&
		!a->skipping)
	{
		if (!a->copy_hook(a->copy_arg, rel, info.created, &info.copied_lsn) ||
			!a->sink->ops->set_copied(a->sink, rel, info.copied_lsn))
			return false;
	}
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
	if (a->nundescribed > 0 &&
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
	change.copy_lsn = INVALID_LSN;

	if (!begin_group(a) || !a->sink->ops->change(a->sink, &change))
		return false;
	a->changes++;
	return true;
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
		if (a->nundescribed > 0 &&
			!describe_if_needed(a, tr->relations[i],
								wire_decoder_relation(a->decoder, tr->relations[i])))
		{
			free(rels);
			return false;
		}
		if (a->ncopied > 0 && copied_skips(a, tr->relations[i]))
			continue;
		/* the decoder checked that every relation was described */
		rels[n++] = wire_decoder_relation(a->decoder, tr->relations[i]);
	}
	ok = begin_group(a) &&
		a->sink->ops->truncate(a->sink, rels, n, tr->cascade,
							   tr->restart_identity, a->commit_lsn,
							   item->position);
	free(rels);
	if (ok)
		a->changes++;
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
