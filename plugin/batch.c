/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Records into bounded batches, and batches into frames.
 *
 * A batch is built as the encoding of a dsplug.Batch message, field by
 * field: protobuf lets a message's fields appear in any order and repeated
 * fields be written one element at a time, so each record is packed into
 * the buffer as soon as it is decoded and nothing else is kept.  The buffer
 * is written out as a frame when its unit ends (a commit, a prepare, the
 * end of a chunk of a streamed transaction), or before a record would be
 * added to a buffer already at batch_size; a transaction of any size
 * therefore needs at most batch_size plus one record of memory, and never
 * meets the 1 GB limit of a StringInfo.
 *
 * Invariant: the buffer is empty whenever no unit (a transaction, or a
 * chunk of a streamed one) is open, so every frame is a whole unit, a piece
 * of one, or a lone control batch (a non-transactional message, the end of
 * a streamed or prepared transaction).
 *
 * plugin/batch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <protobuf-c/protobuf-c.h>

#include "executor/tuptable.h"
#include "replication/origin.h"
#include "utils/memutils.h"

#include "dsplug.h"
#include "wire.h"

/* dsplug.Batch field numbers, from the generated descriptor */
typedef struct BatchFields
{
	uint32		begin;
	uint32		records;
	uint32		commit;
	uint32		first_position;
	uint32		stream_start;
	uint32		stream_stop;
	uint32		stream_commit;
	uint32		stream_abort;
	uint32		prepare;
	uint32		commit_prepared;
	uint32		rollback_prepared;
} BatchFields;

static BatchFields fields;

/*
 * A protobuf-c output buffer over the room reserved for one message in a
 * StringInfo.  protobuf_c_message_pack() writes wherever it is pointed,
 * trusting protobuf_c_message_get_packed_size(); packing through this
 * buffer instead means a disagreement between the two cannot write past
 * the reservation: the bytes that do not fit are dropped and the message
 * fails with an ERROR once protobuf-c has returned (never from inside it,
 * which holds no PostgreSQL resources to clean up but is not ours to
 * longjmp out of).
 */
typedef struct BoundedBuffer
{
	ProtobufCBuffer base;
	char	   *p;
	const char *end;
	bool		overrun;
} BoundedBuffer;

static uint32 batch_field(const char *name);
static void put_varint(StringInfo buf, uint64 value);
static void put_message(StringInfo buf, uint32 field,
						const ProtobufCMessage *msg);
static void bounded_append(ProtobufCBuffer *buffer, size_t len,
						   const uint8_t *data);
static void batch_flush(LogicalDecodingContext *ctx, bool last_write);
static StringInfo batch_room(LogicalDecodingContext *ctx);
static void batch_counted(DsplugBatch *batch, bool data_record);
static void batch_alone(LogicalDecodingContext *ctx, uint32 field,
						const ProtobufCMessage *msg);

/*
 * Set up the session's batch buffer and compressor in session_cxt.
 */
void
batch_init(DsplugData *data, MemoryContext session_cxt)
{
	DsplugBatch *batch = &data->batch;
	MemoryContext oldcxt = MemoryContextSwitchTo(session_cxt);

	fields.begin = batch_field("begin");
	fields.records = batch_field("records");
	fields.commit = batch_field("commit");
	fields.first_position = batch_field("first_position");
	fields.stream_start = batch_field("stream_start");
	fields.stream_stop = batch_field("stream_stop");
	fields.stream_commit = batch_field("stream_commit");
	fields.stream_abort = batch_field("stream_abort");
	fields.prepare = batch_field("prepare");
	fields.commit_prepared = batch_field("commit_prepared");
	fields.rollback_prepared = batch_field("rollback_prepared");

	memset(batch, 0, sizeof(DsplugBatch));
	initStringInfo(&batch->buf);
	if (data->opts.compress)
		batch->compressor = compress_create(session_cxt,
											data->opts.compression_level);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Open a transaction's batches with its Begin: at its first published
 * change, so that transactions with nothing to send send nothing, or at the
 * start of a prepared transaction (gid set), which is always sent.
 */
void
batch_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			const char *gid)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;
	Dsplug__Begin begin = DSPLUG__BEGIN__INIT;
	char	   *origin = NULL;

	Assert(!batch->in_unit && batch->buf.len == 0);

	begin.xid = txn->xid;
	begin.commit_lsn = txn->final_lsn;
	begin.commit_time = txn->xact_time.commit_time;
	if (gid != NULL)
		begin.gid = (char *) gid;
	if (txn->origin_id != InvalidRepOriginId &&
		replorigin_by_oid(txn->origin_id, true, &origin))
		begin.origin = origin;

	put_message(&batch->buf, fields.begin, &begin.base);
	batch->in_unit = true;
	batch->in_chunk = false;
	batch->next_position = 0;
}

/*
 * Open a chunk of a streamed (in-progress) transaction.  Records of a chunk
 * carry their subtransaction's xid and no positions: a reader numbers them
 * when the transaction commits, after dropping aborted subtransactions.
 */
void
batch_stream_start(LogicalDecodingContext *ctx, TransactionId xid, bool first)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;
	Dsplug__StreamStart start = DSPLUG__STREAM_START__INIT;

	Assert(!batch->in_unit && batch->buf.len == 0);

	start.xid = xid;
	start.first = first;
	put_message(&batch->buf, fields.stream_start, &start.base);
	batch->in_unit = true;
	batch->in_chunk = true;
}

/* Close the open chunk and write its last frame. */
void
batch_stream_stop(LogicalDecodingContext *ctx)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;

	Assert(batch->in_unit && batch->in_chunk);

	put_varint(&batch->buf, ((uint64) fields.stream_stop << 3) |
			   PROTOBUF_C_WIRE_TYPE_VARINT);
	put_varint(&batch->buf, 1);
	batch_flush(ctx, true);
	batch->in_unit = false;
	batch->in_chunk = false;
}

/*
 * Add a record to the open unit.  A full buffer is written out first as a
 * middle piece of the unit.
 */
void
batch_add(LogicalDecodingContext *ctx, Dsplug__Record *record)
{
	DsplugData *data = ctx->output_plugin_private;

	put_message(batch_room(ctx), fields.records, &record->base);
	batch_counted(&data->batch,
				  record->kind_case != DSPLUG__RECORD__KIND_RELATION);
}

/*
 * Add an insert, update or delete of entry's relation, encoded straight
 * into the buffer (encode_row.c).  xid is the change's subtransaction in a
 * streamed chunk, InvalidTransactionId elsewhere.
 */
void
batch_add_change(LogicalDecodingContext *ctx, DsplugRelation *entry,
				 Dsplug__Record__KindCase kind,
				 TupleTableSlot *oldtuple, TupleTableSlot *newtuple,
				 TransactionId xid)
{
	DsplugData *data = ctx->output_plugin_private;

	encode_change(entry, kind, oldtuple, newtuple, xid, fields.records,
				  batch_room(ctx));
	batch_counted(&data->batch, true);
}

/*
 * The buffer to append the next record of the open unit to, after writing
 * out what it holds if it has reached batch_size.
 */
static StringInfo
batch_room(LogicalDecodingContext *ctx)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;

	Assert(batch->in_unit);

	if (batch->buf.len >= data->opts.batch_size && batch->nrecords > 0)
	{
		batch_flush(ctx, false);
		if (!batch->in_chunk && batch->next_position > 0)
		{
			put_varint(&batch->buf, ((uint64) fields.first_position << 3) |
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
	if (data_record && !batch->in_chunk)
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

	Assert(batch->in_unit && !batch->in_chunk);

	commit.end_lsn = txn->end_lsn;
	put_message(&batch->buf, fields.commit, &commit.base);
	batch_flush(ctx, true);
	batch->in_unit = false;
}

/*
 * The PREPARE TRANSACTION of a prepared transaction: closes its batches
 * when they are open, or travels alone after the chunks of a streamed one.
 */
void
batch_prepare(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  XLogRecPtr prepare_lsn)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;
	Dsplug__Prepare prepare = DSPLUG__PREPARE__INIT;

	prepare.xid = txn->xid;
	prepare.gid = txn->gid;
	prepare.prepare_lsn = prepare_lsn;
	prepare.end_lsn = txn->end_lsn;
	prepare.prepare_time = txn->xact_time.prepare_time;

	if (!batch->in_unit)
	{
		batch_alone(ctx, fields.prepare, &prepare.base);
		return;
	}
	Assert(!batch->in_chunk);
	put_message(&batch->buf, fields.prepare, &prepare.base);
	batch_flush(ctx, true);
	batch->in_unit = false;
}

void
batch_stream_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					XLogRecPtr commit_lsn)
{
	Dsplug__StreamCommit commit = DSPLUG__STREAM_COMMIT__INIT;

	commit.xid = txn->xid;
	commit.commit_lsn = commit_lsn;
	commit.end_lsn = txn->end_lsn;
	commit.commit_time = txn->xact_time.commit_time;
	batch_alone(ctx, fields.stream_commit, &commit.base);
}

void
batch_stream_abort(LogicalDecodingContext *ctx, TransactionId xid,
				   TransactionId subxid)
{
	Dsplug__StreamAbort abort = DSPLUG__STREAM_ABORT__INIT;

	abort.xid = xid;
	abort.subxid = subxid;
	batch_alone(ctx, fields.stream_abort, &abort.base);
}

void
batch_commit_prepared(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  XLogRecPtr commit_lsn)
{
	Dsplug__CommitPrepared commit = DSPLUG__COMMIT_PREPARED__INIT;

	commit.xid = txn->xid;
	commit.gid = txn->gid;
	commit.commit_lsn = commit_lsn;
	commit.end_lsn = txn->end_lsn;
	commit.commit_time = txn->xact_time.commit_time;
	batch_alone(ctx, fields.commit_prepared, &commit.base);
}

void
batch_rollback_prepared(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						XLogRecPtr prepare_end_lsn, TimestampTz prepare_time)
{
	Dsplug__RollbackPrepared rollback = DSPLUG__ROLLBACK_PREPARED__INIT;

	rollback.xid = txn->xid;
	rollback.gid = txn->gid;
	rollback.prepare_end_lsn = prepare_end_lsn;
	rollback.end_lsn = txn->end_lsn;
	rollback.prepare_time = prepare_time;
	rollback.rollback_time = txn->xact_time.commit_time;
	batch_alone(ctx, fields.rollback_prepared, &rollback.base);
}

/*
 * Write a record outside any unit (a non-transactional logical message) as
 * a frame of its own.
 */
void
batch_write_alone(LogicalDecodingContext *ctx, Dsplug__Record *record)
{
	batch_alone(ctx, fields.records, &record->base);
}

/* A batch holding one field, written as its own frame. */
static void
batch_alone(LogicalDecodingContext *ctx, uint32 field,
			const ProtobufCMessage *msg)
{
	DsplugData *data = ctx->output_plugin_private;
	DsplugBatch *batch = &data->batch;

	Assert(!batch->in_unit && batch->buf.len == 0);

	put_message(&batch->buf, field, msg);
	batch->nrecords++;
	batch_flush(ctx, true);
}

/*
 * Write the buffer as one frame and empty it.  last_write is false for a
 * middle piece of a unit: the walsender then reports no LSN for it.
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

/*
 * Append msg as a length-delimited field: its size is computed, the room
 * reserved, and the message packed within exactly that room.
 */
static void
put_message(StringInfo buf, uint32 field, const ProtobufCMessage *msg)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);
	BoundedBuffer out;
	size_t		packed;

	put_varint(buf, ((uint64) field << 3) | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
	put_varint(buf, size);
	if (size >= (size_t) (MaxAllocSize - buf->len - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dsplug record of %zu bytes is too large to send", size),
				 errdetail("A single row must encode to less than 1 GB.")));
	enlargeStringInfo(buf, (int) size);

	out.base.append = bounded_append;
	out.p = buf->data + buf->len;
	out.end = out.p + size;
	out.overrun = false;
	packed = protobuf_c_message_pack_to_buffer(msg, &out.base);
	if (out.overrun || packed != size)
		elog(ERROR, "dsplug: %s packed to %zu bytes, sized %zu",
			 msg->descriptor->name, packed, size);
	buf->len += size;
	buf->data[buf->len] = '\0';
}

static void
bounded_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	BoundedBuffer *out = (BoundedBuffer *) buffer;

	if (out->overrun || len > (size_t) (out->end - out->p))
	{
		out->overrun = true;
		return;
	}
	memcpy(out->p, data, len);
	out->p += len;
}
