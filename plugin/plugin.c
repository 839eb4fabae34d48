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
static void dsplug_stream_start(LogicalDecodingContext *ctx,
								ReorderBufferTXN *txn);
static void dsplug_stream_stop(LogicalDecodingContext *ctx,
							   ReorderBufferTXN *txn);
static void dsplug_stream_abort(LogicalDecodingContext *ctx,
								ReorderBufferTXN *txn, XLogRecPtr abort_lsn);
static void dsplug_stream_commit(LogicalDecodingContext *ctx,
								 ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
static void dsplug_stream_prepare(LogicalDecodingContext *ctx,
								  ReorderBufferTXN *txn,
								  XLogRecPtr prepare_lsn);
static void dsplug_begin_prepare(LogicalDecodingContext *ctx,
								 ReorderBufferTXN *txn);
static void dsplug_prepare(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						   XLogRecPtr prepare_lsn);
static void dsplug_commit_prepared(LogicalDecodingContext *ctx,
								   ReorderBufferTXN *txn,
								   XLogRecPtr commit_lsn);
static void dsplug_rollback_prepared(LogicalDecodingContext *ctx,
									 ReorderBufferTXN *txn,
									 XLogRecPtr prepare_end_lsn,
									 TimestampTz prepare_time);

static DsplugTxn *txn_state(LogicalDecodingContext *ctx,
							ReorderBufferTXN *txn);
static void txn_done(ReorderBufferTXN *txn);
static TransactionId record_xid(LogicalDecodingContext *ctx,
								ReorderBufferTXN *txn);
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

	/* two-phase: prepared transactions decoded at PREPARE TRANSACTION */
	cb->begin_prepare_cb = dsplug_begin_prepare;
	cb->prepare_cb = dsplug_prepare;
	cb->commit_prepared_cb = dsplug_commit_prepared;
	cb->rollback_prepared_cb = dsplug_rollback_prepared;

	/* streaming of in-progress transactions */
	cb->stream_start_cb = dsplug_stream_start;
	cb->stream_stop_cb = dsplug_stream_stop;
	cb->stream_abort_cb = dsplug_stream_abort;
	cb->stream_commit_cb = dsplug_stream_commit;
	cb->stream_change_cb = dsplug_change;
	cb->stream_message_cb = dsplug_message;
	cb->stream_truncate_cb = dsplug_truncate;
	cb->stream_prepare_cb = dsplug_stream_prepare;
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

	/* slot creation decodes nothing for us to send */
	if (is_init)
	{
		ctx->streaming = false;
		ctx->twophase = false;
		return;
	}

	options_parse(ctx->output_plugin_options, &data->opts);
	encode_row_init();

	/*
	 * As for pgoutput: streaming only when asked for.  Prepared transactions
	 * are decoded when asked for, and also whenever the slot was created
	 * with two_phase (logical decoding decides that after this callback).
	 */
	if (!data->opts.streaming)
		ctx->streaming = false;
	ctx->twophase_opt_given = data->opts.two_phase;

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
	txn_state(ctx, txn);
}

static void
dsplug_commit_txn(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				  XLogRecPtr commit_lsn)
{
	bool		begun = txn_state(ctx, txn)->begun;

	update_progress(ctx, !begun);
	txn_done(txn);
	if (begun)
		batch_commit(ctx, txn);
}

/*
 * BEGIN PREPARE: unlike a plain transaction, a prepared one is sent even
 * when nothing in it is published, since its COMMIT PREPARED or ROLLBACK
 * PREPARED is sent later, when the reader can no longer learn otherwise
 * that there was nothing to it (pgoutput does the same).
 */
static void
dsplug_begin_prepare(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	txn_state(ctx, txn)->begun = true;
	batch_begin(ctx, txn, txn->gid);
}

static void
dsplug_prepare(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr prepare_lsn)
{
	update_progress(ctx, false);
	txn_done(txn);
	batch_prepare(ctx, txn, prepare_lsn);
}

static void
dsplug_commit_prepared(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					   XLogRecPtr commit_lsn)
{
	update_progress(ctx, false);
	batch_commit_prepared(ctx, txn, commit_lsn);
}

static void
dsplug_rollback_prepared(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						 XLogRecPtr prepare_end_lsn, TimestampTz prepare_time)
{
	update_progress(ctx, false);
	batch_rollback_prepared(ctx, txn, prepare_end_lsn, prepare_time);
}

/*
 * A chunk of an in-progress transaction starts.  Like a transaction, a
 * chunk is only opened in the batch at its first published record.
 */
static void
dsplug_stream_start(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugData *data = ctx->output_plugin_private;

	Assert(data->stream_txn == NULL);
	txn_state(ctx, txn);
	data->stream_txn = txn;
	data->chunk_open = false;
}

static void
dsplug_stream_stop(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugData *data = ctx->output_plugin_private;

	if (data->chunk_open)
		batch_stream_stop(ctx);
	data->stream_txn = NULL;
	data->chunk_open = false;
}

/*
 * A streamed transaction, or one of its subtransactions, aborted.  Only
 * worth saying if some chunk of it was sent.
 */
static void
dsplug_stream_abort(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					XLogRecPtr abort_lsn)
{
	ReorderBufferTXN *top = dsplug_toptxn(txn);
	DsplugTxn  *state = txn_state(ctx, top);

	if (state->streamed)
		batch_stream_abort(ctx, top->xid, txn->xid);
	if (top == txn)
	{
		filter_stream_done(top->xid);
		txn_done(top);
	}
}

static void
dsplug_stream_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 XLogRecPtr commit_lsn)
{
	bool		streamed = txn_state(ctx, txn)->streamed;

	update_progress(ctx, !streamed);
	filter_stream_done(txn->xid);
	txn_done(txn);
	if (streamed)
		batch_stream_commit(ctx, txn, commit_lsn);
}

/*
 * A streamed transaction was prepared: its PREPARE is sent even if no chunk
 * was, for the same reason as BEGIN PREPARE.
 */
static void
dsplug_stream_prepare(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  XLogRecPtr prepare_lsn)
{
	update_progress(ctx, false);
	filter_stream_done(txn->xid);
	txn_done(txn);
	batch_prepare(ctx, txn, prepare_lsn);
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
		batch_add_change(ctx, entry, kind, old_slot, new_slot,
						 record_xid(ctx, change->txn));
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
		record.xid = record_xid(ctx, change->txn);
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
		record.xid = record_xid(ctx, txn);
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

/*
 * Our state of a top-level transaction, created on first use: at BEGIN, or
 * at the first chunk of a transaction that is streamed instead.
 */
static DsplugTxn *
txn_state(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	if (txn->output_plugin_private == NULL)
		txn->output_plugin_private =
			MemoryContextAllocZero(ctx->context, sizeof(DsplugTxn));
	return txn->output_plugin_private;
}

static void
txn_done(ReorderBufferTXN *txn)
{
	if (txn->output_plugin_private != NULL)
	{
		pfree(txn->output_plugin_private);
		txn->output_plugin_private = NULL;
	}
}

/*
 * The xid a data record carries: its (sub)transaction while streaming, so
 * that an aborted subtransaction's records can be dropped; none otherwise.
 */
static TransactionId
record_xid(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugData *data = ctx->output_plugin_private;

	return data->stream_txn != NULL ? txn->xid : InvalidTransactionId;
}

/*
 * Open the transaction's batches, or the streamed transaction's chunk, if
 * this is its first published record.
 */
static void
ensure_begun(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugTxn  *state;

	if (data->stream_txn != NULL)
	{
		if (data->chunk_open)
			return;
		state = txn_state(ctx, data->stream_txn);
		batch_stream_start(ctx, data->stream_txn->xid, !state->streamed);
		state->streamed = true;
		data->chunk_open = true;
		return;
	}

	state = txn_state(ctx, txn);
	if (state->begun)
		return;
	batch_begin(ctx, txn, NULL);
	state->begun = true;
}

/*
 * Send the relation's description if the reader may not have it: once per
 * session and invalidation, and once per streamed transaction, since a
 * reader may drop a streamed transaction with everything it carried.
 */
static void
ensure_described(LogicalDecodingContext *ctx, DsplugRelation *entry)
{
	DsplugData *data = ctx->output_plugin_private;
	Dsplug__Record record = DSPLUG__RECORD__INIT;

	record.kind_case = DSPLUG__RECORD__KIND_RELATION;
	record.relation = &entry->description;

	if (data->stream_txn != NULL)
	{
		TransactionId xid = data->stream_txn->xid;
		MemoryContext oldcxt;

		if (list_member_int(entry->stream_described, (int) xid))
			return;
		batch_add(ctx, &record);
		oldcxt = MemoryContextSwitchTo(entry->mcxt);
		entry->stream_described = lappend_int(entry->stream_described, (int) xid);
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	if (entry->described)
		return;
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
