/*-------------------------------------------------------------------------
 *
 * floor.c
 *		bench_floor, the benchmark's floor: an output plugin that decodes every change
 *		and emits almost nothing.
 *
 * Logical decoding costs the same whatever the plugin: reading WAL,
 * reassembling transactions in the reorder buffer, spilling big ones to
 * disk, looking up each relation under the historic snapshot.  A plugin
 * adds its own encoding and its output on top.  This plugin does the first
 * part the way a real plugin must (every column of every old and new tuple
 * deformed with heap_deform_tuple, every value's length read) and writes
 * one byte per transaction, so a benchmark can tell how much of a plugin's
 * time is its own: "ratio to the floor".
 *
 * It takes no options and filters nothing: every change of every table is
 * deformed, so a plugin that skips unpublished tables before deforming them
 * can come in under the floor on a workload of mostly filtered changes.
 *
 * bench/floor/floor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

/*
 * Per-session state.  The checksum of what was deformed is kept so that
 * the compiler cannot drop the work; it is never sent.
 */
typedef struct FloorState
{
	MemoryContext change_context;	/* reset after every change */
	uint64		checksum;
} FloorState;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void floor_startup(LogicalDecodingContext *ctx,
						  OutputPluginOptions *opt, bool is_init);
static void floor_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void floor_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						 Relation relation, ReorderBufferChange *change);
static void floor_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						 XLogRecPtr commit_lsn);
static uint64 floor_deform(TupleDesc desc, HeapTuple tuple);

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = floor_startup;
	cb->begin_cb = floor_begin;
	cb->change_cb = floor_change;
	cb->commit_cb = floor_commit;
}

static void
floor_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
			  bool is_init)
{
	FloorState *state;

	if (ctx->output_plugin_options != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bench_floor takes no options")));

	state = MemoryContextAllocZero(ctx->context, sizeof(FloorState));
	state->change_context = AllocSetContextCreate(ctx->context,
												  "floor change",
												  ALLOCSET_DEFAULT_SIZES);
	ctx->output_plugin_private = state;
	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;
}

static void
floor_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	/* nothing to send: the one byte goes out at commit */
}

/*
 * Deform every column of a tuple, as a plugin about to encode it must, and
 * read each value's length.  Values still on disk (unchanged TOAST) are not
 * fetched: no plugin may detoast them.
 */
static uint64
floor_deform(TupleDesc desc, HeapTuple tuple)
{
	Datum	   *values = palloc(desc->natts * sizeof(Datum));
	bool	   *isnull = palloc(desc->natts * sizeof(bool));
	uint64		sum = 0;

	heap_deform_tuple(tuple, desc, values, isnull);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i])
			continue;
		if (att->attlen == -1)
			sum += VARSIZE_ANY(DatumGetPointer(values[i]));
		else if (att->attbyval)
			sum += (uint64) values[i];
		else
			sum += att->attlen;
	}
	return sum;
}

static void
floor_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			 Relation relation, ReorderBufferChange *change)
{
	FloorState *state = ctx->output_plugin_private;
	TupleDesc	desc = RelationGetDescr(relation);
	MemoryContext old = MemoryContextSwitchTo(state->change_context);

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
		case REORDER_BUFFER_CHANGE_UPDATE:
		case REORDER_BUFFER_CHANGE_DELETE:
			if (change->data.tp.oldtuple != NULL)
				state->checksum += floor_deform(desc, &change->data.tp.oldtuple->tuple);
			if (change->data.tp.newtuple != NULL)
				state->checksum += floor_deform(desc, &change->data.tp.newtuple->tuple);
			break;
		default:
			elog(ERROR, "unexpected change action %d", (int) change->action);
	}

	MemoryContextSwitchTo(old);
	MemoryContextReset(state->change_context);
}

static void
floor_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			 XLogRecPtr commit_lsn)
{
	OutputPluginPrepareWrite(ctx, true);
	appendStringInfoChar(ctx->out, 'c');
	OutputPluginWrite(ctx, true);
}
