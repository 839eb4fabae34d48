/*-------------------------------------------------------------------------
 *
 * dsplug.h
 *		Declarations shared by the files of the dsplug output plugin.
 *
 * Data flows through the plugin in this order, one file per step:
 *
 *		plugin.c	logical decoding callbacks: the order of events
 *		options.c	the options a session was started with
 *		filter.c	which relations and actions the publications publish,
 *					and the per-relation cache
 *		encode.c	rows and relations to protobuf records, typed values
 *		batch.c		records into bounded batches, written as frames
 *		compress.c	the session's zstd stream
 *
 * inspect.c is the other direction: SQL functions that read a slot's frames
 * back into rows, for tests and for users looking at what a slot emits.
 *
 * plugin/dsplug.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_PLUGIN_H
#define DSPLUG_PLUGIN_H

#include "access/attnum.h"
#include "catalog/pg_publication.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "replication/logical.h"
#include "replication/reorderbuffer.h"
#include "utils/relcache.h"

#include "dsplug.pb-c.h"

/* What the client asked for when it started the session (options.c). */
typedef struct DsplugOptions
{
	List	   *publication_names;	/* of char *, in the order given */
	uint32		proto_version;
	bool		compress;		/* zstd, or none */
	int			compression_level;
	int			batch_size;		/* bytes of encoded records per batch */
	bool		messages;		/* send logical messages */
	bool		streaming;		/* stream in-progress transactions */
	bool		two_phase;		/* decode prepared transactions */
} DsplugOptions;

#define DSPLUG_DEFAULT_COMPRESSION_LEVEL	1
#define DSPLUG_MIN_COMPRESSION_LEVEL		1
#define DSPLUG_MAX_COMPRESSION_LEVEL		19
#define DSPLUG_DEFAULT_BATCH_SIZE			(256 * 1024)
#define DSPLUG_MIN_BATCH_SIZE				1024

/*
 * How encode.c turns one column's values into wire values, decided once per
 * relation description so that no value needs a catalog lookup.
 */
typedef struct DsplugColumn
{
	AttrNumber	attidx;			/* index into the tuple descriptor */
	Dsplug__Kind kind;
	Oid			typid;
	bool		varlena;		/* attlen == -1: may be TOASTed */
	bool		use_output;		/* KIND_TEXT through the output function */
	FmgrInfo	output;			/* output function, when use_output or an
								 * array needs its text form */
	/* KIND_ARRAY: the element type */
	Dsplug__Kind elem_kind;
	Oid			elem_typid;
	int16		elem_len;
	bool		elem_byval;
	char		elem_align;
} DsplugColumn;

/*
 * One relation as this session publishes it.  Entries live in a hash keyed
 * by relid, valid until an invalidation marks them stale; the next change of
 * the relation rebuilds the entry and sends a fresh description.
 */
typedef struct DsplugRelation
{
	Oid			relid;			/* hash key */
	bool		valid;			/* false after an invalidation */
	bool		described;		/* description sent in this session */

	/* publish actions, OR-ed over the session's publications */
	bool		pubinsert;
	bool		pubupdate;
	bool		pubdelete;
	bool		pubtruncate;

	/* the rest is built only for relations that publish something */
	MemoryContext mcxt;			/* holds everything below; reset on rebuild */

	/*
	 * The relation changes are published as: the relation itself, or with
	 * publish_via_partition_root the top-most published ancestor, whose
	 * layout attrmap converts rows to (NULL when the layouts match).
	 */
	Oid			publish_as_relid;
	struct AttrMap *attrmap;

	/* what is sent of the published relation, and how */
	int			natts;			/* of the descriptor the columns follow */
	int			ncolumns;		/* sent columns: not dropped, not generated,
								 * in the column list if there is one */
	DsplugColumn *columns;
	Dsplug__Relation description;

	/*
	 * Slots for the changed relation's old and new rows (their descriptor
	 * copies keep attmissingval, so rows stored before ADD COLUMN ...
	 * DEFAULT read with the default), and for the same rows converted to
	 * the published relation's layout when attrmap is set.
	 */
	struct TupleTableSlot *old_slot;
	struct TupleTableSlot *new_slot;
	struct TupleTableSlot *old_pub_slot;
	struct TupleTableSlot *new_pub_slot;

	/*
	 * Streamed transactions (top-level xids) whose chunks carry this
	 * relation's description: a reader may drop a streamed transaction, so
	 * each one describes what it uses (as pgoutput does).
	 */
	List	   *stream_described;

	/* row filters per action (insert, update, delete); NULL: none */
	struct EState *estate;
	struct ExprState *exprstate[3];
} DsplugRelation;

/* The wire stream of one session (batch.c, compress.c). */
typedef struct DsplugCompressor DsplugCompressor;

typedef struct DsplugBatch
{
	StringInfoData buf;			/* encoded Batch fields not yet written */
	int			nrecords;		/* records in buf */
	bool		in_unit;		/* a transaction or a chunk is open */
	bool		in_chunk;		/* ... and it is a chunk of a streamed one */
	uint32		next_position;	/* position of the next data record */
	uint64		frames_written; /* in this session: the next frame's
								 * sequence number, which its checksum
								 * covers */
	DsplugCompressor *compressor;	/* NULL with compression 'none' */
} DsplugBatch;

/* Per-session state, ctx->output_plugin_private. */
typedef struct DsplugData
{
	DsplugOptions opts;
	MemoryContext change_cxt;	/* reset after every change */
	MemoryContext cache_cxt;	/* relation cache, publications */
	DsplugBatch batch;
	int			changes_since_progress;

	/*
	 * Between stream_start and stream_stop: the top-level transaction being
	 * streamed, and whether its chunk has been opened in the batch (a chunk
	 * is opened at its first record, so empty chunks are not sent).
	 */
	ReorderBufferTXN *stream_txn;
	bool		chunk_open;
} DsplugData;

/* Per-transaction state, txn->output_plugin_private (top-level only). */
typedef struct DsplugTxn
{
	bool		begun;			/* Begin is in a batch: not empty */
	bool		streamed;		/* a chunk of it has been sent */
} DsplugTxn;

/* options.c */
extern void options_parse(List *defels, DsplugOptions *opts);

/* filter.c */
extern void filter_init(DsplugData *data, MemoryContext session_cxt);
extern DsplugRelation *filter_relation(DsplugData *data, Relation relation);
extern void filter_stream_done(TransactionId xid);
extern bool filter_row(DsplugRelation *entry, struct TupleTableSlot *old_slot,
					   struct TupleTableSlot **new_slot,
					   ReorderBufferChangeType *action);

/* encode.c */
extern void encode_describe(DsplugRelation *entry, Relation relation,
							Bitmapset *columns);
extern char *text_utf8(const char *s, int len);

/* encode_row.c */
extern void encode_row_init(void);
extern void encode_change(DsplugRelation *entry,
						  Dsplug__Record__KindCase kind,
						  struct TupleTableSlot *oldtuple,
						  struct TupleTableSlot *newtuple,
						  TransactionId xid, uint32 records_field,
						  StringInfo buf);

/* batch.c */
extern void batch_init(DsplugData *data, MemoryContext session_cxt);
extern void batch_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						const char *gid);
extern void batch_stream_start(LogicalDecodingContext *ctx,
							   TransactionId xid, bool first);
extern void batch_stream_stop(LogicalDecodingContext *ctx);
extern void batch_add(LogicalDecodingContext *ctx, Dsplug__Record *record);
extern void batch_add_change(LogicalDecodingContext *ctx,
							 DsplugRelation *entry,
							 Dsplug__Record__KindCase kind,
							 struct TupleTableSlot *oldtuple,
							 struct TupleTableSlot *newtuple,
							 TransactionId xid);
extern void batch_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
extern void batch_prepare(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						  XLogRecPtr prepare_lsn);
extern void batch_stream_commit(LogicalDecodingContext *ctx,
								ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
extern void batch_stream_abort(LogicalDecodingContext *ctx,
							   TransactionId xid, TransactionId subxid);
extern void batch_commit_prepared(LogicalDecodingContext *ctx,
								  ReorderBufferTXN *txn,
								  XLogRecPtr commit_lsn);
extern void batch_rollback_prepared(LogicalDecodingContext *ctx,
									ReorderBufferTXN *txn,
									XLogRecPtr prepare_end_lsn,
									TimestampTz prepare_time);
extern void batch_write_alone(LogicalDecodingContext *ctx,
							  Dsplug__Record *record);

/* compress.c */
extern DsplugCompressor *compress_create(MemoryContext parent, int level);
extern void compress_frame(DsplugCompressor *comp, const char *src,
						   size_t len, StringInfo out);

#endif							/* DSPLUG_PLUGIN_H */
