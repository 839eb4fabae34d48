/*-------------------------------------------------------------------------
 *
 * plugin.c
 *		The dsplug logical decoding output plugin: callbacks.
 *
 * dsplug is used where pgoutput would be (same slots, same publications)
 * and emits compact, typed protobuf batches compressed with zstd.  This
 * file decides what happens at each decoding event; filter.c decides what
 * is published, encode.c how rows become records, batch.c how records
 * become frames.
 *
 * Sessions: the startup callback runs for every decoding session (each
 * START_REPLICATION, each SQL call); all session state lives in children of
 * ctx->context, so it goes away with the session however the session ends.
 *
 * plugin/plugin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupconvert.h"
#include "catalog/pg_publication.h"
#include "executor/tuptable.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "compat.h"
#include "dsplug.h"

PG_MODULE_MAGIC;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void dsplug_startup(LogicalDecodingContext *ctx,
						   OutputPluginOptions *opt, bool is_init);
static void dsplug_shutdown(LogicalDecodingContext *ctx);
static void dsplug_begin_txn(LogicalDecodingContext *ctx,
							 ReorderBufferTXN *txn);
static void dsplug_commit_txn(LogicalDecodingContext *ctx,
							  ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
static void dsplug_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						  Relation relation, ReorderBufferChange *change);
static void dsplug_truncate(LogicalDecodingContext *ctx,
							ReorderBufferTXN *txn, int nrelations,
							Relation relations[],
							ReorderBufferChange *change);
static void dsplug_message(LogicalDecodingContext *ctx,
						   ReorderBufferTXN *txn, XLogRecPtr message_lsn,
						   bool transactional, const char *prefix,
						   Size sz, const char *message);
static bool dsplug_origin_filter(LogicalDecodingContext *ctx,
								 RepOriginId origin_id);

static void ensure_begun(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void ensure_described(LogicalDecodingContext *ctx,
							 DsplugRelation *entry);
static void update_progress(LogicalDecodingContext *ctx, bool skipped_xact);

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	AssertVariableIsOfType(&_PG_output_plugin_init, LogicalOutputPluginInit);

	cb->startup_cb = dsplug_startup;
	cb->begin_cb = dsplug_begin_txn;
	cb->change_cb = dsplug_change;
	cb->truncate_cb = dsplug_truncate;
	cb->message_cb = dsplug_message;
	cb->commit_cb = dsplug_commit_txn;
	cb->filter_by_origin_cb = dsplug_origin_filter;
	cb->shutdown_cb = dsplug_shutdown;
}

/*
 * Start a session.  Slot creation (is_init) passes no options and decodes
 * nothing, so options are only required, and checked, when streaming.
 */
static void
dsplug_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
			   bool is_init)
{
	DsplugData *data = MemoryContextAllocZero(ctx->context, sizeof(DsplugData));

	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;
	ctx->output_plugin_private = data;

	/* streaming of in-progress transactions and two-phase: not yet */
	ctx->streaming = false;
	ctx->twophase = false;

	if (is_init)
		return;

	options_parse(ctx->output_plugin_options, &data->opts);
	encode_row_init();

	data->change_cxt = AllocSetContextCreate(ctx->context, "dsplug change",
											 ALLOCSET_DEFAULT_SIZES);
	filter_init(data, ctx->context);
	batch_init(data, ctx->context);
}

/*
 * Nothing to free by hand: everything lives under ctx->context.
 */
static void
dsplug_shutdown(LogicalDecodingContext *ctx)
{
}

/*
 * BEGIN: remember the transaction, send nothing yet.  Begin goes out with
 * the first published change, so that transactions whose changes are all
 * filtered out are not sent at all.
 */
static void
dsplug_begin_txn(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	txn->output_plugin_private =
		MemoryContextAllocZero(ctx->context, sizeof(DsplugTxn));
}

static void
dsplug_commit_txn(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				  XLogRecPtr commit_lsn)
{
	DsplugTxn  *txndata = txn->output_plugin_private;
	bool		begun = txndata != NULL && txndata->begun;

	update_progress(ctx, !begun);
	if (txndata != NULL)
	{
		pfree(txndata);
		txn->output_plugin_private = NULL;
	}
	if (begun)
		batch_commit(ctx, txn);
}

static void
dsplug_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  Relation relation, ReorderBufferChange *change)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugRelation *entry;
	HeapTuple	oldtuple = dsplug_change_tuple(change->data.tp.oldtuple);
	HeapTuple	newtuple = dsplug_change_tuple(change->data.tp.newtuple);
	ReorderBufferChangeType action = change->action;
	TupleTableSlot *old_slot = NULL;
	TupleTableSlot *new_slot = NULL;
	Dsplug__Record__KindCase kind;
	MemoryContext oldcxt;

	update_progress(ctx, false);

	if (!is_publishable_relation(relation))
		return;

	entry = filter_relation(data, relation);
	switch (action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			if (!entry->pubinsert)
				return;
			oldtuple = NULL;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (!entry->pubupdate)
				return;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (!entry->pubdelete)
				return;

			/*
			 * Without a replica identity there is no old key, and nothing to
			 * say which row went (pgoutput skips these too; the server
			 * refuses such deletes on tables published for delete).
			 */
			if (oldtuple == NULL)
				return;
			newtuple = NULL;
			break;
		default:
			elog(ERROR, "dsplug: unexpected change action %d", (int) action);
	}

	oldcxt = MemoryContextSwitchTo(data->change_cxt);

	/* the rows, in the layout of the relation they are published as */
	if (oldtuple != NULL)
	{
		old_slot = ExecStoreHeapTuple(oldtuple, entry->old_slot, false);
		if (entry->attrmap != NULL)
			old_slot = execute_attr_map_slot(entry->attrmap, old_slot,
											 entry->old_pub_slot);
	}
	if (newtuple != NULL)
	{
		new_slot = ExecStoreHeapTuple(newtuple, entry->new_slot, false);
		if (entry->attrmap != NULL)
			new_slot = execute_attr_map_slot(entry->attrmap, new_slot,
											 entry->new_pub_slot);
	}

	if (filter_row(entry, old_slot, &new_slot, &action))
	{
		switch (action)
		{
			case REORDER_BUFFER_CHANGE_INSERT:
				kind = DSPLUG__RECORD__KIND_INSERT;
				old_slot = NULL;
				break;
			case REORDER_BUFFER_CHANGE_UPDATE:
				kind = DSPLUG__RECORD__KIND_UPDATE;
				break;
			default:
				kind = DSPLUG__RECORD__KIND_DELETE;
				new_slot = NULL;
				break;
		}
		ensure_begun(ctx, txn);
		ensure_described(ctx, entry);
		batch_add_change(ctx, entry, kind, old_slot, new_slot);
	}

	ExecClearTuple(entry->old_slot);
	ExecClearTuple(entry->new_slot);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(data->change_cxt);
}

static void
dsplug_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				int nrelations, Relation relations[],
				ReorderBufferChange *change)
{
	DsplugData *data = ctx->output_plugin_private;
	Dsplug__Record record = DSPLUG__RECORD__INIT;
	Dsplug__Truncate truncate = DSPLUG__TRUNCATE__INIT;
	MemoryContext oldcxt;

	update_progress(ctx, false);

	oldcxt = MemoryContextSwitchTo(data->change_cxt);
	truncate.relations = palloc(sizeof(uint32_t) * nrelations);
	for (int i = 0; i < nrelations; i++)
	{
		DsplugRelation *entry;

		if (!is_publishable_relation(relations[i]))
			continue;
		entry = filter_relation(data, relations[i]);
		if (!entry->pubtruncate)
			continue;

		/*
		 * A partition published as its root is truncated through the root,
		 * which the same TRUNCATE lists when it is the one truncated.
		 */
		if (relations[i]->rd_rel->relispartition &&
			entry->publish_as_relid != RelationGetRelid(relations[i]))
			continue;

		ensure_begun(ctx, txn);
		ensure_described(ctx, entry);
		truncate.relations[truncate.n_relations++] =
			RelationGetRelid(relations[i]);
	}

	if (truncate.n_relations > 0)
	{
		truncate.cascade = change->data.truncate.cascade;
		truncate.restart_identity = change->data.truncate.restart_seqs;
		record.kind_case = DSPLUG__RECORD__KIND_TRUNCATE;
		record.truncate = &truncate;
		batch_add(ctx, &record);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(data->change_cxt);
}

static void
dsplug_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr message_lsn, bool transactional,
			   const char *prefix, Size sz, const char *message)
{
	DsplugData *data = ctx->output_plugin_private;
	Dsplug__Record record = DSPLUG__RECORD__INIT;
	Dsplug__Message wmsg = DSPLUG__MESSAGE__INIT;

	update_progress(ctx, false);

	if (!data->opts.messages)
		return;

	wmsg.transactional = transactional;
	wmsg.prefix = (char *) prefix;
	wmsg.content.len = sz;
	wmsg.content.data = (uint8_t *) message;
	wmsg.lsn = message_lsn;
	record.kind_case = DSPLUG__RECORD__KIND_MESSAGE;
	record.message = &wmsg;

	if (transactional)
	{
		ensure_begun(ctx, txn);
		batch_add(ctx, &record);
	}
	else
		batch_write_alone(ctx, &record);
}

/* Forward changes of every origin, as pgoutput does. */
static bool
dsplug_origin_filter(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	return false;
}

/* Open the transaction's batches if this is its first published change. */
static void
ensure_begun(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugTxn  *txndata = txn->output_plugin_private;

	if (txndata->begun)
		return;
	batch_begin(ctx, txn);
	txndata->begun = true;
}

/* Send the relation's description if this session has not seen it yet. */
static void
ensure_described(LogicalDecodingContext *ctx, DsplugRelation *entry)
{
	Dsplug__Record record = DSPLUG__RECORD__INIT;

	if (entry->described)
		return;
	record.kind_case = DSPLUG__RECORD__KIND_RELATION;
	record.relation = &entry->description;
	batch_add(ctx, &record);
	entry->described = true;
}

/*
 * Let the walsender report progress (and send keepalives) while many
 * changes go by without output, as pgoutput does on PostgreSQL 15: a big
 * transaction on unpublished tables would otherwise time the receiver out.
 */
static void
update_progress(LogicalDecodingContext *ctx, bool skipped_xact)
{
	DsplugData *data = ctx->output_plugin_private;

	if (ctx->end_xact || ++data->changes_since_progress >= 100)
	{
		dsplug_update_progress(ctx, skipped_xact);
		data->changes_since_progress = 0;
	}
}
