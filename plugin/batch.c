/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Records into bounded batches, and batches into frames.
 *
 * A batch is built as the encoding of a dsplug.Batch message, field by
 * field: protobuf lets a message's fields appear in any order and repeated
 * fields be written one element at a time, so each record is packed into
 * the buffer as soon as it is decoded and nothing else is kept.  The buffer
 * is written out as a frame at commit, or before a record would be added
 * to a buffer already at batch_size; a transaction of any size therefore
 * needs at most batch_size plus one record of memory, and never meets the
 * 1 GB limit of a StringInfo.
 *
 * Invariant: the buffer is empty whenever no transaction is open, so every
 * frame is a whole transaction, a piece of one, or a lone message.
 *
 * plugin/batch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <protobuf-c/protobuf-c.h>

#include "replication/origin.h"
#include "executor/tuptable.h"
#include "utils/memutils.h"

#include "dsplug.h"
#include "wire.h"

/* dsplug.Batch field numbers, from the generated descriptor */
static uint32 field_begin;
static uint32 field_records;
static uint32 field_commit;
static uint32 field_first_position;

static uint32 batch_field(const char *name);
static void put_varint(StringInfo buf, uint64 value);
static void put_message(StringInfo buf, uint32 field,
						const ProtobufCMessage *msg);
static void batch_flush(LogicalDecodingContext *ctx, bool last_write);
static StringInfo batch_room(LogicalDecodingContext *ctx);
static void batch_counted(DsplugBatch *batch, bool data_record);

/*
 * Set up the session's batch buffer and compressor in session_cxt.
 */
void
batch_init(DsplugData *data, MemoryContext session_cxt)
{
	DsplugBatch *batch = &data->batch;
	MemoryContext oldcxt = MemoryContextSwitchTo(session_cxt);

	field_begin = batch_field("begin");
	field_records = batch_field("records");
	field_commit = batch_field("commit");
	field_first_position = batch_field("first_position");

	memset(batch, 0, sizeof(DsplugBatch));
	initStringInfo(&batch->buf);
	if (data->opts.compress)
		batch->compressor = compress_create(session_cxt,
											data->opts.compression_level);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Open a transaction's batches with its Begin.  Called at its first
 * published change, so that transactions with nothing to send send nothing.
 */
void
batch_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;
	Dsplug__Begin begin = DSPLUG__BEGIN__INIT;
	char	   *origin = NULL;

	Assert(!batch->in_txn && batch->buf.len == 0);

	begin.xid = txn->xid;
	begin.commit_lsn = txn->final_lsn;
	begin.commit_time = txn->xact_time.commit_time;
	if (txn->origin_id != InvalidRepOriginId &&
		replorigin_by_oid(txn->origin_id, true, &origin))
		begin.origin = origin;

	put_message(&batch->buf, field_begin, &begin.base);
	batch->in_txn = true;
	batch->next_position = 0;
}

/*
 * Add a record to the open transaction.  A full buffer is written out first
 * as a middle piece of the transaction.
 */
void
batch_add(LogicalDecodingContext *ctx, Dsplug__Record *record)
{
	DsplugData *data = ctx->output_plugin_private;

	put_message(batch_room(ctx), field_records, &record->base);
	batch_counted(&data->batch,
				  record->kind_case != DSPLUG__RECORD__KIND_RELATION);
}

/*
 * Add an insert, update or delete of entry's relation, encoded straight
 * into the buffer (encode_row.c).
 */
void
batch_add_change(LogicalDecodingContext *ctx, DsplugRelation *entry,
				 Dsplug__Record__KindCase kind,
				 TupleTableSlot *oldtuple, TupleTableSlot *newtuple)
{
	DsplugData *data = ctx->output_plugin_private;

	encode_change(entry, kind, oldtuple, newtuple, field_records,
				  batch_room(ctx));
	batch_counted(&data->batch, true);
}

/*
 * The buffer to append the next record of the open transaction to, after
 * writing out what it holds if it has reached batch_size.
 */
static StringInfo
batch_room(LogicalDecodingContext *ctx)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;

	Assert(batch->in_txn);

	if (batch->buf.len >= data->opts.batch_size && batch->nrecords > 0)
	{
		batch_flush(ctx, false);
		if (batch->next_position > 0)
		{
			put_varint(&batch->buf, ((uint64) field_first_position << 3) |
					   PROTOBUF_C_WIRE_TYPE_VARINT);
			put_varint(&batch->buf, batch->next_position);
		}
	}
	return &batch->buf;
}

/* Account for a record just appended: data records take a position. */
static void
batch_counted(DsplugBatch *batch, bool data_record)
{
	batch->nrecords++;
	if (data_record)
		batch->next_position++;
}

/*
 * Close the open transaction with its Commit and write the last frame.
 */
void
batch_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;
	Dsplug__Commit commit = DSPLUG__COMMIT__INIT;

	Assert(batch->in_txn);

	commit.end_lsn = txn->end_lsn;
	put_message(&batch->buf, field_commit, &commit.base);
	batch_flush(ctx, true);
	batch->in_txn = false;
}

/*
 * Write a record outside any transaction (a non-transactional logical
 * message) as a frame of its own.
 */
void
batch_write_alone(LogicalDecodingContext *ctx, Dsplug__Record *record)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;

	Assert(!batch->in_txn && batch->buf.len == 0);

	put_message(&batch->buf, field_records, &record->base);
	batch->nrecords++;
	batch_flush(ctx, true);
}

/*
 * Write the buffer as one frame and empty it.  last_write is false for a
 * middle piece of a transaction: the walsender then reports no LSN for it.
 */
static void
batch_flush(LogicalDecodingContext *ctx, bool last_write)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;
	uint8		flags = 0;

	if (batch->compressor != NULL)
		flags |= DSPLUG_FRAME_ZSTD;
	if (!batch->session_started)
		flags |= DSPLUG_FRAME_SESSION_START;

	OutputPluginPrepareWrite(ctx, last_write);
	appendStringInfoCharMacro(ctx->out, (char) data->opts.proto_version);
	appendStringInfoCharMacro(ctx->out, (char) flags);
	if (batch->compressor != NULL)
		compress_frame(batch->compressor, batch->buf.data, batch->buf.len,
					   ctx->out);
	else
		appendBinaryStringInfo(ctx->out, batch->buf.data, batch->buf.len);
	OutputPluginWrite(ctx, last_write);

	batch->session_started = true;
	resetStringInfo(&batch->buf);
	batch->nrecords = 0;
}

/* A dsplug.Batch field's number, so the .proto stays the only source. */
static uint32
batch_field(const char *name)
{
	const ProtobufCFieldDescriptor *field =
		protobuf_c_message_descriptor_get_field_by_name(&dsplug__batch__descriptor,
														name);

	if (field == NULL)
		elog(ERROR, "dsplug.Batch has no field \"%s\"", name);
	return field->id;
}

static void
put_varint(StringInfo buf, uint64 value)
{
	enlargeStringInfo(buf, 10);
	while (value >= 0x80)
	{
		buf->data[buf->len++] = (char) ((value & 0x7F) | 0x80);
		value >>= 7;
	}
	buf->data[buf->len++] = (char) value;
	buf->data[buf->len] = '\0';
}

/* Append msg as a length-delimited field. */
static void
put_message(StringInfo buf, uint32 field, const ProtobufCMessage *msg)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);

	put_varint(buf, ((uint64) field << 3) | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
	put_varint(buf, size);
	if (size >= (size_t) (MaxAllocSize - buf->len - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dsplug record of %zu bytes is too large to send", size),
				 errdetail("A single row must encode to less than 1 GB.")));
	enlargeStringInfo(buf, (int) size);
	protobuf_c_message_pack(msg, (uint8_t *) buf->data + buf->len);
	buf->len += size;
	buf->data[buf->len] = '\0';
}
