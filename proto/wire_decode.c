/*-------------------------------------------------------------------------
 *
 * wire_decode.c
 *		Reading dsplug frames: header check, the session's zstd stream,
 *		protobuf unpack, and validation of every batch against the session
 *		so far (see wire_decode.h and proto/WIRE.md).
 *
 * A frame is read in four steps, each of which can refuse it:
 *
 *	1. the header: version, the checksum (from version 2), flags, and
 *	   whether the frame may start or continue a session here.  The
 *	   checksum is verified before anything else of the frame is believed,
 *	   the session-start flag included, so a damaged frame is refused
 *	   before it can reset or feed the session's state;
 *	2. the payload: continued through the session's zstd stream into a
 *	   buffer of the decoder, or taken as it is when not compressed;
 *	3. dsplug.Batch unpack with protobuf-c, after a walk over the encoded
 *	   message that bounds its nesting (protobuf-c recurses once per level
 *	   without any limit, so a few megabytes of nested arrays would
 *	   otherwise overflow the stack of the backend or the consumer);
 *	4. validation, record by record in order, against the state the
 *	   session carries from frame to frame: the open transaction and its
 *	   next position, and the latest description of every relation.
 *
 * Validation is what lets callers apply a batch without checking anything
 * themselves: after a successful read, every change names a described
 * relation, every tuple has one value per column of that description, and
 * every set value is in the field its column's kind says, with contents the
 * text renderings (wire_text.c) can print.
 *
 * Memory: everything comes from the caller's WireAllocator, zstd's and
 * protobuf-c's allocations included, so in the backend an ERROR raised by
 * palloc or by the caller frees the decoder with its memory context.  The
 * unpacked Batch lives until the next read; relation descriptions must live
 * longer, so the decoder keeps its own copies.  A description replaced by
 * a later one in the same batch may still be what earlier WireItems of the
 * batch point to: it is retired, and freed at the next read.
 *
 * proto/wire_decode.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ZSTD_customMem and ZSTD_createDCtx_advanced are behind this macro */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "wire_decode.h"

/*
 * Deepest nesting of messages accepted in a Batch.  A valid batch nests at
 * most eight deep (Batch, Record, Change, Tuple, Value, Array, Value,
 * Numeric); the margin leaves room for fields added later.
 */
#define WIRE_MAX_NESTING		32

/*
 * Size of a zstd block header (RFC 8878, 3.1.1.2).  Once a flushed frame is
 * decoded completely, ZSTD_decompressStream asks for exactly the next block
 * header; any other nonzero hint means it is in the middle of something.
 */
#define WIRE_ZSTD_BLOCK_HEADER_SIZE	3

/* A decompression buffer larger than this is not kept between frames. */
#define WIRE_KEEP_BUFFER_SIZE	((size_t) 1024 * 1024)
#define WIRE_MIN_BUFFER_SIZE	((size_t) 64 * 1024)

/* PostgreSQL's limits on a numeric (WIRE_NUMERIC_DSCALE_MAX, int16 weight) */
#define WIRE_NUMERIC_DSCALE_MAX		0x3FFF
#define WIRE_NUMERIC_WEIGHT_MIN		(-32768)
#define WIRE_NUMERIC_WEIGHT_MAX		32767
#define WIRE_NUMERIC_BASE			10000

#define WIRE_USECS_PER_DAY			INT64_C(86400000000)

#if defined(__GNUC__)
#define WIRE_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#else
#define WIRE_PRINTF(f, a)
#endif

/* One slot of the relation map; rel is NULL in an empty slot. */
typedef struct RelationSlot
{
	uint32_t	oid;
	Dsplug__Relation *rel;
} RelationSlot;

/*
 * A decoder follows one session at a time.  Everything a frame is checked
 * against lives here, because a frame alone cannot be validated: its zstd
 * payload continues the earlier ones, its batch may continue a transaction
 * begun frames ago, and its changes name relations described earlier.
 */
struct WireDecoder
{
	WireAllocator allocator;
	ProtobufCAllocator pb_allocator;	/* protobuf-c's view of allocator */

	/* the session */
	bool		started;		/* a session-start frame has been read */
	bool		failed;			/* a read failed: refuse until reset */
	bool		compressed;		/* the session's payloads are zstd */
	uint8_t		version;		/* the session's wire version */
	uint8_t		required_version;	/* 0: any this reader speaks */
	ZSTD_DCtx  *dctx;			/* kept across sessions, reset at each */
	uint64_t	frameno;		/* frames read since create/reset */
	uint64_t	session_frames; /* frames read since the session start */
	bool		foreign;		/* the failure: not a frame we speak */

	/* the open transaction, from its first batch's Begin */
	bool		in_txn;
	bool		prepared;		/* its Begin has a gid: ends with a prepare */
	uint32_t	xid;
	uint64_t	commit_lsn;
	int64_t		commit_time;
	uint32_t	next_position;	/* data records seen so far in it */

	/* the open chunk of a streamed transaction (its xid in xid) */
	bool		in_chunk;

	/* streamed transactions with chunks in this session, not yet ended */
	uint32_t   *streamed;
	size_t		nstreamed;
	size_t		streamed_cap;

	/* latest description of each relation: open addressing by oid */
	RelationSlot *slots;
	size_t		nslots;			/* a power of two, or 0 */
	size_t		nrelations;

	/* descriptions replaced during the current batch */
	Dsplug__Relation **retired;
	size_t		nretired;
	size_t		retired_cap;

	/* the current batch */
	Dsplug__Batch *batch;
	WireItem   *items;
	size_t		items_cap;
	WireBatch	result;

	/* decompressed payload */
	uint8_t    *buf;
	size_t		buf_cap;

	/* where the current read reports an error */
	char	   *errbuf;
	size_t		errlen;
	bool		oom;			/* an allocation failed during this read */
};

/* Which Value field carries each Kind (Kind is the index). */
static const Dsplug__Value__KindCase kind_field[] = {
	DSPLUG__VALUE__KIND_TEXT,
	DSPLUG__VALUE__KIND_INT,
	DSPLUG__VALUE__KIND_FLOAT4,
	DSPLUG__VALUE__KIND_FLOAT8,
	DSPLUG__VALUE__KIND_BOOL,
	DSPLUG__VALUE__KIND_BYTEA,
	DSPLUG__VALUE__KIND_NUMERIC,
	DSPLUG__VALUE__KIND_DATE,
	DSPLUG__VALUE__KIND_TIME,
	DSPLUG__VALUE__KIND_TIMESTAMP,
	DSPLUG__VALUE__KIND_TIMESTAMPTZ,
	DSPLUG__VALUE__KIND_UUID,
	DSPLUG__VALUE__KIND_JSON,
	DSPLUG__VALUE__KIND_INTERVAL,
	DSPLUG__VALUE__KIND_ARRAY,
};
#define NUM_KINDS	(sizeof(kind_field) / sizeof(kind_field[0]))

static const char *const kind_names[] = {
	"text", "int", "float4", "float8", "bool", "bytea", "numeric", "date",
	"time", "timestamp", "timestamptz", "uuid", "json", "interval", "array"
};

/* Value fields by field number (Dsplug__Value__KindCase) */
static const char *const field_names[] = {
	"null", "unchanged_toast", "int", "float4", "float8", "bool", "text",
	"bytea", "numeric", "date", "time", "timestamp", "timestamptz", "uuid",
	"json", "interval", "array"
};

static const char *const record_names[] = {
	"empty record", "relation", "insert", "update", "delete", "truncate",
	"message"
};

static void *wire_alloc(WireDecoder *dec, size_t size);
static void wire_free(WireDecoder *dec, void *ptr);
static void *default_alloc(void *opaque, size_t size);
static void default_free(void *opaque, void *ptr);
static void *library_alloc(void *opaque, size_t size);
static void library_free(void *opaque, void *ptr);

static bool fail(WireDecoder *dec, const char *fmt,...) WIRE_PRINTF(2, 3);
static bool fail_record(WireDecoder *dec, size_t i, const Dsplug__Record *rec,
						const char *fmt,...) WIRE_PRINTF(4, 5);
static void tidy_message(char *msg, size_t size);
static void release_batch(WireDecoder *dec);
static void forget_session(WireDecoder *dec);
static void shrink_buffer(WireDecoder *dec);

static bool read_header(WireDecoder *dec, const uint8_t *frame, size_t len,
						size_t *header_size);
static bool decompress(WireDecoder *dec, const uint8_t *src, size_t len,
					   size_t *outlen);
static bool read_varint(const uint8_t *data, size_t len, size_t *pos,
						uint64_t *value);
static bool nesting_ok(const ProtobufCMessageDescriptor *desc,
					   const uint8_t *data, size_t len, int depth);

static bool validate_batch(WireDecoder *dec, const Dsplug__Batch *b);
static bool validate_control(WireDecoder *dec, const Dsplug__Batch *b);
static bool streamed_member(const WireDecoder *dec, uint32_t xid);
static bool streamed_add(WireDecoder *dec, uint32_t xid);
static void streamed_remove(WireDecoder *dec, uint32_t xid);
static bool validate_record(WireDecoder *dec, size_t i,
							const Dsplug__Record *rec, WireItem *item);
static bool validate_relation(WireDecoder *dec, size_t i,
							  const Dsplug__Record *rec);
static bool validate_change(WireDecoder *dec, size_t i,
							const Dsplug__Record *rec,
							const Dsplug__Change *change,
							const Dsplug__Relation *rel);
static bool validate_tuple(WireDecoder *dec, size_t i,
						   const Dsplug__Record *rec, const char *which,
						   const Dsplug__Tuple *tuple,
						   const Dsplug__Relation *rel);
static const char *check_value(const Dsplug__Value *value, int kind,
							   int element_kind, bool in_array,
							   char *why, size_t whylen);

static RelationSlot *relation_slot(const WireDecoder *dec, uint32_t oid);
static bool remember_relation(WireDecoder *dec, const Dsplug__Relation *rel);

/*
 * Create a decoder expecting the first frame of a session.  Returns NULL if
 * memory could not be allocated.  The caller owns the result and frees it
 * with wire_decoder_destroy.
 */
WireDecoder *
wire_decoder_create(const WireAllocator *allocator)
{
	WireAllocator a;
	WireDecoder *dec;

	if (allocator != NULL)
		a = *allocator;
	else
	{
		a.alloc = default_alloc;
		a.free = default_free;
		a.opaque = NULL;
	}

	dec = a.alloc(a.opaque, sizeof(WireDecoder));
	if (dec == NULL)
		return NULL;
	memset(dec, 0, sizeof(WireDecoder));
	dec->allocator = a;
	dec->pb_allocator.alloc = library_alloc;
	dec->pb_allocator.free = library_free;
	dec->pb_allocator.allocator_data = dec;
	return dec;
}

void
wire_decoder_destroy(WireDecoder *dec)
{
	if (dec == NULL)
		return;
	forget_session(dec);
	if (dec->dctx != NULL)
		ZSTD_freeDCtx(dec->dctx);
	wire_free(dec, dec->slots);
	wire_free(dec, dec->retired);
	wire_free(dec, dec->items);
	wire_free(dec, dec->streamed);
	wire_free(dec, dec->buf);
	wire_free(dec, dec);
}

/*
 * Forget the current session: the next frame must be a session start.
 */
void
wire_decoder_reset(WireDecoder *dec)
{
	forget_session(dec);
	dec->started = false;
	dec->failed = false;
	dec->frameno = 0;
	shrink_buffer(dec);
}

/*
 * Decode and validate one frame.  The result belongs to the decoder and
 * lives until the next read, reset or destroy.  On failure returns NULL
 * with a one-line reason in errbuf, "frame N: ..." with frames counted from
 * 1 since create or reset (and records from 1 within their batch).
 */
const WireBatch *
wire_decoder_read(WireDecoder *dec, const uint8_t *frame, size_t len,
				  char *errbuf, size_t errlen)
{
	const uint8_t *payload;
	size_t		payload_len;
	size_t		header_size = DSPLUG_FRAME_HEADER_SIZE;

	dec->errbuf = errbuf;
	dec->errlen = errlen;
	dec->oom = false;
	dec->foreign = false;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';

	release_batch(dec);
	dec->frameno++;

	if (dec->failed)
	{
		fail(dec, "an earlier frame failed; the decoder must be reset before reading a new session");
		return NULL;
	}
	if (!read_header(dec, frame, len, &header_size))
		return NULL;

	payload = frame + header_size;
	payload_len = len - header_size;
	if (dec->compressed)
	{
		if (!decompress(dec, payload, payload_len, &payload_len))
			return NULL;
		payload = dec->buf;
	}
	else if (payload_len > DSPLUG_MAX_PAYLOAD_SIZE)
	{
		fail(dec, "payload of %zu bytes exceeds the limit of %zu bytes",
			 payload_len, (size_t) DSPLUG_MAX_PAYLOAD_SIZE);
		return NULL;
	}

	if (!nesting_ok(&dsplug__batch__descriptor, payload, payload_len, 1))
	{
		fail(dec, "batch nests messages more than %d deep", WIRE_MAX_NESTING);
		return NULL;
	}
	dec->batch = dsplug__batch__unpack(&dec->pb_allocator, payload_len,
									   payload);
	shrink_buffer(dec);		/* the batch holds copies of what it needs */
	if (dec->batch == NULL)
	{
		/* protobuf-c says only that it failed; our allocator knows why */
		if (dec->oom)
			fail(dec, "out of memory unpacking dsplug.Batch from %zu bytes",
				 payload_len);
		else
			fail(dec, "could not unpack dsplug.Batch from %zu bytes: invalid protobuf message",
				 payload_len);
		return NULL;
	}

	dec->result.payload_size = payload_len;
	if (!validate_batch(dec, dec->batch))
		return NULL;
	return &dec->result;
}

/*
 * Refuse frames of any wire version but this one (a client that asked the
 * plugin for it); 0 accepts every version the reader speaks.  Survives
 * resets.
 */
void
wire_decoder_require_version(WireDecoder *dec, int version)
{
	dec->required_version = (uint8_t) version;
}

/*
 * Was the last failure a frame this reader does not speak (another wire
 * version, or not a dsplug frame at all) rather than a damaged or invalid
 * one?
 */
bool
wire_decoder_foreign(const WireDecoder *dec)
{
	return dec->failed && dec->foreign;
}

/* The latest description of a relation in this session, or NULL. */
const Dsplug__Relation *
wire_decoder_relation(const WireDecoder *dec, uint32_t oid)
{
	RelationSlot *slot = relation_slot(dec, oid);

	return slot != NULL ? slot->rel : NULL;
}

/* ---------------------------------------------------------------------
 * Memory
 * ---------------------------------------------------------------------
 */

static void *
wire_alloc(WireDecoder *dec, size_t size)
{
	void	   *ptr = dec->allocator.alloc(dec->allocator.opaque,
										   size > 0 ? size : 1);

	if (ptr == NULL)
		dec->oom = true;
	return ptr;
}

static void
wire_free(WireDecoder *dec, void *ptr)
{
	if (ptr != NULL)
		dec->allocator.free(dec->allocator.opaque, ptr);
}

static void *
default_alloc(void *opaque, size_t size)
{
	(void) opaque;
	return malloc(size);
}

static void
default_free(void *opaque, void *ptr)
{
	(void) opaque;
	free(ptr);
}

/*
 * protobuf-c's and zstd's allocation callbacks have the same shape; their
 * opaque pointer is the decoder.
 */
static void *
library_alloc(void *opaque, size_t size)
{
	return wire_alloc((WireDecoder *) opaque, size);
}

static void
library_free(void *opaque, void *ptr)
{
	wire_free((WireDecoder *) opaque, ptr);
}

/* ---------------------------------------------------------------------
 * Errors and session state
 * ---------------------------------------------------------------------
 */

/*
 * Report an error of the current frame and make the decoder refuse further
 * frames until reset: after a failure the session's zstd stream and
 * transaction state can no longer be trusted.  Always returns false.
 */
static bool
fail(WireDecoder *dec, const char *fmt,...)
{
	va_list		ap;
	int			n;

	dec->failed = true;
	release_batch(dec);
	if (dec->errbuf == NULL || dec->errlen == 0)
		return false;

	n = snprintf(dec->errbuf, dec->errlen, "frame %llu: ",
				 (unsigned long long) dec->frameno);
	if (n >= 0 && (size_t) n < dec->errlen)
	{
		va_start(ap, fmt);
		vsnprintf(dec->errbuf + n, dec->errlen - (size_t) n, fmt, ap);
		va_end(ap);
	}
	tidy_message(dec->errbuf, dec->errlen);
	return false;
}

/*
 * Keep a message one line of valid UTF-8 whatever names it quotes: control
 * characters (a quoted identifier may hold a newline) become spaces, and a
 * character cut by the end of the buffer is dropped.
 */
static void
tidy_message(char *msg, size_t size)
{
	size_t		len = strlen(msg);
	size_t		start;

	for (size_t i = 0; i < len; i++)
	{
		if ((unsigned char) msg[i] < 0x20 || msg[i] == 0x7F)
			msg[i] = ' ';
	}
	if (len + 1 < size)
		return;

	/* truncated: find the last character's lead byte */
	start = len;
	while (start > 0 && ((unsigned char) msg[start - 1] & 0xC0) == 0x80)
		start--;
	if (start > 0 && ((unsigned char) msg[start - 1] & 0x80) != 0)
	{
		unsigned char lead = (unsigned char) msg[start - 1];
		size_t		need = (lead & 0xE0) == 0xC0 ? 2 :
			(lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;

		if (len - (start - 1) < need)
			msg[start - 1] = '\0';
	}
}

/* fail() for a record: "record I (what): ..." */
static bool
fail_record(WireDecoder *dec, size_t i, const Dsplug__Record *rec,
			const char *fmt,...)
{
	char		what[96];
	char		msg[400];
	va_list		ap;

	switch (rec->kind_case)
	{
		case DSPLUG__RECORD__KIND_INSERT:
		case DSPLUG__RECORD__KIND_UPDATE:
		case DSPLUG__RECORD__KIND_DELETE:
			snprintf(what, sizeof(what), "%s of relation %u",
					 record_names[rec->kind_case],
					 rec->kind_case == DSPLUG__RECORD__KIND_INSERT ?
					 rec->insert->relation :
					 rec->kind_case == DSPLUG__RECORD__KIND_UPDATE ?
					 rec->update->relation : rec->delete_->relation);
			break;
		case DSPLUG__RECORD__KIND_RELATION:
			snprintf(what, sizeof(what), "relation %u", rec->relation->oid);
			break;
		case DSPLUG__RECORD__KIND_TRUNCATE:
		case DSPLUG__RECORD__KIND_MESSAGE:
			snprintf(what, sizeof(what), "%s", record_names[rec->kind_case]);
			break;
		default:
			snprintf(what, sizeof(what), "%s", record_names[0]);
			break;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail(dec, "record %zu (%s): %s", i + 1, what, msg);
}

/* Free the previous read's batch and the descriptions it retired. */
static void
release_batch(WireDecoder *dec)
{
	if (dec->batch != NULL)
	{
		dsplug__batch__free_unpacked(dec->batch, &dec->pb_allocator);
		dec->batch = NULL;
	}
	for (size_t i = 0; i < dec->nretired; i++)
		dsplug__relation__free_unpacked(dec->retired[i], &dec->pb_allocator);
	dec->nretired = 0;
	memset(&dec->result, 0, sizeof(WireBatch));
}

/* Drop everything a session carries: batch, relations, transaction. */
static void
forget_session(WireDecoder *dec)
{
	release_batch(dec);
	for (size_t i = 0; i < dec->nslots; i++)
	{
		if (dec->slots[i].rel != NULL)
			dsplug__relation__free_unpacked(dec->slots[i].rel,
											&dec->pb_allocator);
		dec->slots[i].rel = NULL;
	}
	dec->nrelations = 0;
	dec->in_txn = false;
	dec->prepared = false;
	dec->in_chunk = false;
	dec->nstreamed = 0;
	dec->next_position = 0;
	dec->session_frames = 0;
}

/*
 * Give back a decompression buffer that one large payload left behind, so
 * that a session keeps at most WIRE_KEEP_BUFFER_SIZE between frames.
 */
static void
shrink_buffer(WireDecoder *dec)
{
	if (dec->buf_cap > WIRE_KEEP_BUFFER_SIZE)
	{
		wire_free(dec, dec->buf);
		dec->buf = NULL;
		dec->buf_cap = 0;
	}
}

/* ---------------------------------------------------------------------
 * Frame header and payload
 * ---------------------------------------------------------------------
 */

/*
 * Check the header and start a session when the frame says so.  A session
 * start in the middle of a session is a reconnection or a new SQL call:
 * whatever the old session had open (even a transaction cut short) is
 * forgotten, as the new session sends everything again from its start.
 *
 * The checksum comes first.  Every version from 2 on keeps bytes 0 to 5
 * (version, flags, checksum), so a frame of a version this reader does not
 * know is told from a damaged one by its checksum: a frame whose version
 * byte was damaged does not verify, a newer frame does.
 */
static bool
read_header(WireDecoder *dec, const uint8_t *frame, size_t len,
			size_t *header_size)
{
	uint8_t		version;
	uint8_t		flags;
	bool		zstd;
	bool		start;
	uint64_t	seqno;

	if (len < DSPLUG_FRAME_HEADER_SIZE)
		return fail(dec, "frame of %zu bytes is shorter than the %d-byte frame header",
					len, DSPLUG_FRAME_HEADER_SIZE);
	version = frame[0];
	flags = frame[1];
	start = (flags & DSPLUG_FRAME_SESSION_START) != 0;
	seqno = start || !dec->started ? 0 : dec->session_frames;

	if (version < DSPLUG_WIRE_MIN_VERSION || version > DSPLUG_WIRE_VERSION)
	{
		bool		letter = (version >= 'A' && version <= 'Z') ||
			(version >= 'a' && version <= 'z');

		if (len >= DSPLUG_FRAME_HEADER_SIZE_V2 &&
			!wire_frame_verify(frame, len, seqno))
		{
			if (letter)
				return fail(dec, "checksum mismatch: the frame is damaged, or not a dsplug frame at all (a first byte '%c' suggests a pgoutput or text message)",
							(char) version);
			return fail(dec, "checksum mismatch: the frame is damaged (its version byte reads %u), or frames of its session were lost, repeated or reordered",
						version);
		}
		dec->foreign = true;
		if (letter)
			return fail(dec, "unsupported wire version %u (this reader speaks versions %d to %d); a first byte '%c' suggests a pgoutput or text message, not a dsplug frame",
						version, DSPLUG_WIRE_MIN_VERSION, DSPLUG_WIRE_VERSION,
						(char) version);
		return fail(dec, "unsupported wire version %u (this reader speaks versions %d to %d)",
					version, DSPLUG_WIRE_MIN_VERSION, DSPLUG_WIRE_VERSION);
	}

	if (!start && !dec->started)
		return fail(dec, "the first frame of a session must carry the session-start flag; frames of a session must be read from its first");

	*header_size = DSPLUG_FRAME_HEADER_SIZE_OF(version);
	if (len < *header_size)
		return fail(dec, "frame of %zu bytes is shorter than the %zu-byte frame header of wire version %u",
					len, *header_size, version);
	if (version >= DSPLUG_WIRE_CHECKSUM_VERSION &&
		!wire_frame_verify(frame, len, seqno))
		return fail(dec, "checksum mismatch: the frame is damaged, or frames of its session were lost, repeated or reordered");
	if (dec->required_version != 0 && version != dec->required_version)
	{
		dec->foreign = true;
		return fail(dec, "frame of wire version %u, but this reader asked for version %u",
					version, dec->required_version);
	}

	if ((flags & ~DSPLUG_FRAME_KNOWN_FLAGS) != 0)
		return fail(dec, "unknown frame flags 0x%02x",
					(unsigned int) (flags & ~DSPLUG_FRAME_KNOWN_FLAGS));
	zstd = (flags & DSPLUG_FRAME_ZSTD) != 0;

	if (start)
	{
		forget_session(dec);
		dec->started = true;
		dec->compressed = zstd;
		dec->version = version;
		if (zstd && dec->dctx != NULL)
		{
			size_t		ret = ZSTD_DCtx_reset(dec->dctx,
											  ZSTD_reset_session_only);

			if (ZSTD_isError(ret))
				return fail(dec, "could not reset zstd decompression: %s",
							ZSTD_getErrorName(ret));
		}
		else if (zstd)
		{
			ZSTD_customMem mem = {library_alloc, library_free, dec};

			dec->dctx = ZSTD_createDCtx_advanced(mem);
			if (dec->dctx == NULL)
				return fail(dec, "out of memory creating a zstd decompression context");
		}
	}
	else if (zstd != dec->compressed)
		return fail(dec, "frame is %s but its session's frames are %s",
					zstd ? "zstd-compressed" : "not compressed",
					dec->compressed ? "zstd-compressed" : "not compressed");
	else if (version != dec->version)
		return fail(dec, "frame of wire version %u in a session of wire version %u",
					version, dec->version);
	dec->session_frames++;
	return true;
}

/*
 * Continue the session's zstd stream with one frame's payload, into
 * dec->buf.  The payload must be consumed whole and leave the decoder at a
 * block boundary (the plugin flushes at every frame end): anything else is
 * a frame cut short, or bytes that do not belong to this stream.
 */
static bool
decompress(WireDecoder *dec, const uint8_t *src, size_t len, size_t *outlen)
{
	ZSTD_inBuffer in;
	ZSTD_outBuffer out;
	size_t		pos = 0;
	size_t		ret = 0;
	const size_t limit = (size_t) DSPLUG_MAX_PAYLOAD_SIZE + 1;

	if (len == 0)
		return fail(dec, "compressed payload is empty");

	in.src = src;
	in.size = len;
	in.pos = 0;
	for (;;)
	{
		if (pos == dec->buf_cap)
		{
			size_t		newcap;
			uint8_t    *newbuf;

			if (dec->buf_cap >= limit)
				return fail(dec, "payload decompresses to more than %zu bytes",
							(size_t) DSPLUG_MAX_PAYLOAD_SIZE);
			newcap = dec->buf_cap < WIRE_MIN_BUFFER_SIZE ?
				WIRE_MIN_BUFFER_SIZE : dec->buf_cap * 2;
			if (newcap > limit)
				newcap = limit;
			newbuf = wire_alloc(dec, newcap);
			if (newbuf == NULL)
				return fail(dec, "out of memory decompressing a payload of more than %zu bytes",
							pos);
			if (pos > 0)
				memcpy(newbuf, dec->buf, pos);
			wire_free(dec, dec->buf);
			dec->buf = newbuf;
			dec->buf_cap = newcap;
		}

		out.dst = dec->buf;
		out.size = dec->buf_cap;
		out.pos = pos;
		ret = ZSTD_decompressStream(dec->dctx, &out, &in);
		if (ZSTD_isError(ret))
			return fail(dec, "could not decompress payload: %s",
						ZSTD_getErrorName(ret));
		pos = out.pos;
		if (in.pos == in.size && out.pos < out.size)
			break;
	}

	if (pos > DSPLUG_MAX_PAYLOAD_SIZE)
		return fail(dec, "payload decompresses to more than %zu bytes",
					(size_t) DSPLUG_MAX_PAYLOAD_SIZE);
	if (ret != 0 && ret != WIRE_ZSTD_BLOCK_HEADER_SIZE)
		return fail(dec, "compressed payload is truncated: zstd stops in the middle of a block");
	if (pos == 0)
		return fail(dec, "compressed payload decompresses to nothing");
	*outlen = pos;
	return true;
}

static bool
read_varint(const uint8_t *data, size_t len, size_t *pos, uint64_t *value)
{
	uint64_t	v = 0;

	for (int shift = 0; shift < 64 && *pos < len; shift += 7)
	{
		uint8_t		b = data[(*pos)++];

		v |= (uint64_t) (b & 0x7F) << shift;
		if ((b & 0x80) == 0)
		{
			*value = v;
			return true;
		}
	}
	return false;
}

/*
 * Is the message no deeper than WIRE_MAX_NESTING?  Follows the descriptors
 * into every length-delimited field that is a message; anything malformed
 * ends the walk with true, leaving it to protobuf-c to reject.  Each byte
 * is read once, so this costs a fraction of the unpack it protects.
 */
static bool
nesting_ok(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
		   size_t len, int depth)
{
	size_t		pos = 0;

	if (depth > WIRE_MAX_NESTING)
		return false;
	while (pos < len)
	{
		uint64_t	key;
		uint64_t	n;
		const ProtobufCFieldDescriptor *field;

		if (!read_varint(data, len, &pos, &key))
			return true;
		switch (key & 7)
		{
			case PROTOBUF_C_WIRE_TYPE_VARINT:
				if (!read_varint(data, len, &pos, &n))
					return true;
				break;
			case PROTOBUF_C_WIRE_TYPE_64BIT:
				if (len - pos < 8)
					return true;
				pos += 8;
				break;
			case PROTOBUF_C_WIRE_TYPE_32BIT:
				if (len - pos < 4)
					return true;
				pos += 4;
				break;
			case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
				if (!read_varint(data, len, &pos, &n) || n > len - pos)
					return true;
				field = (key >> 3) <= UINT32_MAX ?
					protobuf_c_message_descriptor_get_field(desc,
															(unsigned) (key >> 3)) : NULL;
				if (field != NULL && field->type == PROTOBUF_C_TYPE_MESSAGE &&
					!nesting_ok(field->descriptor, data + pos, (size_t) n,
								depth + 1))
					return false;
				pos += (size_t) n;
				break;
			default:
				return true;
		}
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Validation
 * ---------------------------------------------------------------------
 */

/*
 * Check a batch against the transaction state and fill dec->result.
 *
 * A batch with begin opens a transaction, one with commit closes it; one
 * with neither continues the open transaction or, when none is open, must
 * be a lone non-transactional message.  first_position must continue the
 * transaction's numbering exactly, so that positions stay the same however
 * the plugin cut the transaction into batches.
 */
static bool
validate_batch(WireDecoder *dec, const Dsplug__Batch *b)
{
	bool		lone = false;
	WireBatch  *res = &dec->result;
	int			controls = (b->stream_commit != NULL) + (b->stream_abort != NULL) +
		(b->commit_prepared != NULL) + (b->rollback_prepared != NULL);

	if (b->stream_start != NULL)
	{
		if (dec->in_txn || dec->in_chunk)
			return fail(dec, "stream_start of transaction %u while %s %u is open",
						b->stream_start->xid,
						dec->in_txn ? "transaction" : "a chunk of transaction",
						dec->xid);
		if (b->begin != NULL || b->commit != NULL || b->prepare != NULL ||
			controls != 0 || b->first_position != 0)
			return fail(dec, "stream_start batch of transaction %u also carries a begin, an end or first_position",
						b->stream_start->xid);
		if (b->stream_start->xid == 0)
			return fail(dec, "stream_start without an xid");
		if (b->stream_start->first == streamed_member(dec, b->stream_start->xid))
			return fail(dec, b->stream_start->first ?
						"first chunk of transaction %u, which already has chunks" :
						"later chunk of transaction %u, which has no first chunk",
						b->stream_start->xid);
		if (b->stream_start->first && !streamed_add(dec, b->stream_start->xid))
			return fail(dec, "out of memory");
		dec->in_chunk = true;
		dec->xid = b->stream_start->xid;
	}
	else if (b->begin != NULL)
	{
		if (dec->in_txn || dec->in_chunk)
			return fail(dec, "begin of transaction %u while %s %u is still open",
						b->begin->xid,
						dec->in_txn ? "transaction" : "a chunk of transaction",
						dec->xid);
		if (b->first_position != 0)
			return fail(dec, "first batch of transaction %u has first_position %u, not 0",
						b->begin->xid, b->first_position);
		dec->in_txn = true;
		dec->prepared = (b->begin->gid != NULL && b->begin->gid[0] != '\0');
		dec->xid = b->begin->xid;
		dec->commit_lsn = b->begin->commit_lsn;
		dec->commit_time = b->begin->commit_time;
		dec->next_position = 0;
	}
	else if (dec->in_txn)
	{
		if (b->first_position != dec->next_position)
			return fail(dec, "batch of transaction %u has first_position %u, but %u changes came before it",
						dec->xid, b->first_position, dec->next_position);
	}
	else if (dec->in_chunk)
	{
		if (b->first_position != 0)
			return fail(dec, "chunk of streamed transaction %u has first_position %u",
						dec->xid, b->first_position);
	}
	else if (b->commit != NULL)
		return fail(dec, "commit without begin while no transaction is open");
	else if (b->stream_stop)
		return fail(dec, "stream_stop while no chunk of a streamed transaction is open");
	else if (controls + (b->prepare != NULL) > 0)
	{
		if (controls + (b->prepare != NULL) != 1 || b->n_records != 0 ||
			b->first_position != 0)
			return fail(dec, "a streamed or prepared transaction's end must travel alone in its batch");
		if (!validate_control(dec, b))
			return false;
		lone = true;
	}
	else
	{
		if (b->n_records != 1)
			return fail(dec, "batch without begin outside any transaction must be one non-transactional message, not %zu records",
						b->n_records);
		if (b->records[0]->kind_case != DSPLUG__RECORD__KIND_MESSAGE)
			return fail(dec, "batch without begin outside any transaction must be one non-transactional message, not a %s record",
						record_names[b->records[0]->kind_case]);
		if (b->records[0]->message->transactional)
			return fail(dec, "batch without begin outside any transaction must be one non-transactional message, not a transactional one");
		if (b->first_position != 0)
			return fail(dec, "non-transactional message has first_position %u, not 0",
						b->first_position);
		lone = true;
	}

	/* what may close the open unit */
	if (!lone)
	{
		if (controls != 0)
			return fail(dec, "a streamed or prepared transaction's end inside %s %u",
						dec->in_chunk ? "a chunk of transaction" : "transaction",
						dec->xid);
		if (dec->in_chunk && (b->commit != NULL || b->prepare != NULL))
			return fail(dec, "commit or prepare inside a chunk of streamed transaction %u",
						dec->xid);
		if (dec->in_txn && b->stream_stop)
			return fail(dec, "stream_stop inside transaction %u", dec->xid);
		if (dec->in_txn && dec->prepared && b->commit != NULL)
			return fail(dec, "prepared transaction %u ends with a commit, not a prepare",
						dec->xid);
		if (dec->in_txn && !dec->prepared && b->prepare != NULL)
			return fail(dec, "transaction %u without a gid ends with a prepare",
						dec->xid);
		if (b->commit != NULL && b->prepare != NULL)
			return fail(dec, "batch of transaction %u has both a commit and a prepare",
						dec->xid);
	}

	if (b->n_records > dec->items_cap)
	{
		WireItem   *items = NULL;

		if (b->n_records <= SIZE_MAX / sizeof(WireItem))
			items = wire_alloc(dec, b->n_records * sizeof(WireItem));
		if (items == NULL)
			return fail(dec, "out of memory for %zu records", b->n_records);
		wire_free(dec, dec->items);
		dec->items = items;
		dec->items_cap = b->n_records;
	}

	for (size_t i = 0; i < b->n_records; i++)
	{
		if (!validate_record(dec, i, b->records[i], &dec->items[i]))
			return false;
	}

	res->batch = b;
	res->items = dec->items;
	res->nitems = b->n_records;
	res->in_transaction = dec->in_txn;
	res->in_stream_chunk = dec->in_chunk;
	res->stream_xid = dec->in_chunk ? dec->xid : 0;
	res->prepared = dec->in_txn && dec->prepared;
	if (dec->in_txn)
	{
		res->xid = dec->xid;
		res->commit_lsn = dec->commit_lsn;
		res->commit_time = dec->commit_time;
	}
	res->ends_transaction = (b->commit != NULL || b->prepare != NULL);
	if (b->commit != NULL || (b->prepare != NULL && dec->in_txn))
	{
		dec->in_txn = false;
		dec->prepared = false;
		dec->next_position = 0;
	}
	if (b->stream_stop)
		dec->in_chunk = false;
	return true;
}

/*
 * A lone end of a streamed or prepared transaction.  Streamed transactions
 * must have had a chunk in this session; a prepared transaction may have
 * been prepared in an earlier session, so COMMIT PREPARED and ROLLBACK
 * PREPARED are taken as they come.
 */
static bool
validate_control(WireDecoder *dec, const Dsplug__Batch *b)
{
	if (b->stream_commit != NULL)
	{
		if (!streamed_member(dec, b->stream_commit->xid))
			return fail(dec, "stream_commit of transaction %u, which has no chunk in this session",
						b->stream_commit->xid);
		streamed_remove(dec, b->stream_commit->xid);
	}
	else if (b->stream_abort != NULL)
	{
		if (!streamed_member(dec, b->stream_abort->xid))
			return fail(dec, "stream_abort of transaction %u, which has no chunk in this session",
						b->stream_abort->xid);
		if (b->stream_abort->subxid == b->stream_abort->xid)
			streamed_remove(dec, b->stream_abort->xid);
	}
	else if (b->prepare != NULL)
	{
		/* the prepare of a streamed transaction: it may have had no chunk */
		if (b->prepare->gid == NULL || b->prepare->gid[0] == '\0')
			return fail(dec, "prepare of transaction %u without a gid",
						b->prepare->xid);
		streamed_remove(dec, b->prepare->xid);
	}
	else if (b->commit_prepared != NULL)
	{
		if (b->commit_prepared->gid == NULL || b->commit_prepared->gid[0] == '\0')
			return fail(dec, "commit_prepared of transaction %u without a gid",
						b->commit_prepared->xid);
	}
	else if (b->rollback_prepared->gid == NULL ||
			 b->rollback_prepared->gid[0] == '\0')
		return fail(dec, "rollback_prepared of transaction %u without a gid",
					b->rollback_prepared->xid);
	return true;
}

/* The streamed transactions with chunks in this session (a small set). */
static bool
streamed_member(const WireDecoder *dec, uint32_t xid)
{
	for (size_t i = 0; i < dec->nstreamed; i++)
		if (dec->streamed[i] == xid)
			return true;
	return false;
}

static bool
streamed_add(WireDecoder *dec, uint32_t xid)
{
	if (dec->nstreamed == dec->streamed_cap)
	{
		size_t		cap = dec->streamed_cap ? dec->streamed_cap * 2 : 8;
		uint32_t   *n = wire_alloc(dec, cap * sizeof(uint32_t));

		if (n == NULL)
			return false;
		if (dec->nstreamed > 0)
			memcpy(n, dec->streamed, dec->nstreamed * sizeof(uint32_t));
		wire_free(dec, dec->streamed);
		dec->streamed = n;
		dec->streamed_cap = cap;
	}
	dec->streamed[dec->nstreamed++] = xid;
	return true;
}

static void
streamed_remove(WireDecoder *dec, uint32_t xid)
{
	for (size_t i = 0; i < dec->nstreamed; i++)
	{
		if (dec->streamed[i] == xid)
		{
			dec->streamed[i] = dec->streamed[--dec->nstreamed];
			return;
		}
	}
}

/* Check one record and fill its item; data records take a position. */
static bool
validate_record(WireDecoder *dec, size_t i, const Dsplug__Record *rec,
				WireItem *item)
{
	const Dsplug__Change *change = NULL;
	RelationSlot *slot;

	item->record = rec;
	item->relation = NULL;
	item->position = dec->next_position;

	switch (rec->kind_case)
	{
		case DSPLUG__RECORD__KIND_RELATION:
			/* not a data record: it takes no position */
			return validate_relation(dec, i, rec);
		case DSPLUG__RECORD__KIND_INSERT:
			change = rec->insert;
			break;
		case DSPLUG__RECORD__KIND_UPDATE:
			change = rec->update;
			break;
		case DSPLUG__RECORD__KIND_DELETE:
			change = rec->delete_;
			break;
		case DSPLUG__RECORD__KIND_TRUNCATE:
			for (size_t r = 0; r < rec->truncate->n_relations; r++)
			{
				if (relation_slot(dec, rec->truncate->relations[r]) == NULL)
					return fail_record(dec, i, rec,
									   "relation %u was not described in this session",
									   rec->truncate->relations[r]);
			}
			break;
		case DSPLUG__RECORD__KIND_MESSAGE:
			/* outside transactions, validate_batch checked the message */
			if ((dec->in_txn || dec->in_chunk) && !rec->message->transactional)
				return fail_record(dec, i, rec,
								   "non-transactional message inside transaction %u",
								   dec->xid);
			break;
		default:
			return fail_record(dec, i, rec, "record has no known kind (field %d)",
							   (int) rec->kind_case);
	}

	if (change != NULL)
	{
		slot = relation_slot(dec, change->relation);
		if (slot == NULL)
			return fail_record(dec, i, rec,
							   "relation was not described in this session");
		if (!validate_change(dec, i, rec, change, slot->rel))
			return false;
		item->relation = slot->rel;
	}

	/*
	 * In a chunk of a streamed transaction, data records say which
	 * subtransaction they belong to and take no position (a reader numbers
	 * them at commit, once aborted subtransactions are gone); elsewhere they
	 * carry no xid.
	 */
	if (dec->in_chunk)
	{
		if (rec->kind_case != DSPLUG__RECORD__KIND_RELATION && rec->xid == 0)
			return fail_record(dec, i, rec,
							   "record in a chunk of streamed transaction %u has no xid",
							   dec->xid);
		item->position = 0;
		return true;
	}
	if (rec->xid != 0)
		return fail_record(dec, i, rec, "record outside a streamed chunk has an xid");

	/* the lone message of a batch outside transactions is position 0 */
	if (dec->in_txn)
	{
		if (dec->next_position == UINT32_MAX)
			return fail_record(dec, i, rec,
							   "transaction %u has more changes than positions can number",
							   dec->xid);
		dec->next_position++;
	}
	return true;
}

/*
 * Check a description and make it the relation's latest.  Kinds must be
 * ones this reader knows: a column of a kind added in a later version would
 * otherwise be read as something else.
 */
static bool
validate_relation(WireDecoder *dec, size_t i, const Dsplug__Record *rec)
{
	const Dsplug__Relation *rel = rec->relation;

	if ((int) rel->replica_identity < DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_DEFAULT ||
		(int) rel->replica_identity > DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_INDEX)
		return fail_record(dec, i, rec, "unknown replica identity %d",
						   (int) rel->replica_identity);

	for (size_t c = 0; c < rel->n_columns; c++)
	{
		const Dsplug__Column *col = rel->columns[c];

		if ((int) col->kind < 0 || (size_t) col->kind >= NUM_KINDS)
			return fail_record(dec, i, rec, "column %zu \"%s\" has unknown kind %d",
							   c + 1, col->name, (int) col->kind);
		if ((int) col->element_kind < 0 ||
			(size_t) col->element_kind >= NUM_KINDS)
			return fail_record(dec, i, rec,
							   "column %zu \"%s\" has unknown element kind %d",
							   c + 1, col->name, (int) col->element_kind);
		if (col->kind == DSPLUG__KIND__KIND_ARRAY &&
			col->element_kind == DSPLUG__KIND__KIND_ARRAY)
			return fail_record(dec, i, rec,
							   "column %zu \"%s\" is an array of arrays",
							   c + 1, col->name);
	}

	if (!remember_relation(dec, rel))
		return fail_record(dec, i, rec, "out of memory copying the description");
	return true;
}

/* Which tuples each kind of change has, and their values. */
static bool
validate_change(WireDecoder *dec, size_t i, const Dsplug__Record *rec,
				const Dsplug__Change *change, const Dsplug__Relation *rel)
{
	switch (rec->kind_case)
	{
		case DSPLUG__RECORD__KIND_INSERT:
			if (change->new_ == NULL)
				return fail_record(dec, i, rec, "insert has no new tuple");
			if (change->old != NULL)
				return fail_record(dec, i, rec, "insert has an old tuple");
			break;
		case DSPLUG__RECORD__KIND_UPDATE:
			if (change->new_ == NULL)
				return fail_record(dec, i, rec, "update has no new tuple");
			break;
		default:
			if (change->old == NULL)
				return fail_record(dec, i, rec, "delete has no old tuple");
			if (change->new_ != NULL)
				return fail_record(dec, i, rec, "delete has a new tuple");
			break;
	}
	return (change->old == NULL ||
			validate_tuple(dec, i, rec, "old", change->old, rel)) &&
		(change->new_ == NULL ||
		 validate_tuple(dec, i, rec, "new", change->new_, rel));
}

static bool
validate_tuple(WireDecoder *dec, size_t i, const Dsplug__Record *rec,
			   const char *which, const Dsplug__Tuple *tuple,
			   const Dsplug__Relation *rel)
{
	if (tuple->n_values != rel->n_columns)
		return fail_record(dec, i, rec,
						   "%s tuple has %zu values, relation has %zu columns",
						   which, tuple->n_values, rel->n_columns);

	for (size_t c = 0; c < tuple->n_values; c++)
	{
		const Dsplug__Column *col = rel->columns[c];
		char		why[160];
		const char *err;

		err = check_value(tuple->values[c], col->kind, col->element_kind,
						  false, why, sizeof(why));
		if (err != NULL)
		{
			if (col->kind == DSPLUG__KIND__KIND_ARRAY)
				return fail_record(dec, i, rec,
								   "%s tuple, column %zu \"%s\" (array of %s): %s",
								   which, c + 1, col->name,
								   kind_names[col->element_kind], err);
			return fail_record(dec, i, rec, "%s tuple, column %zu \"%s\" (%s): %s",
							   which, c + 1, col->name, kind_names[col->kind],
							   err);
		}
	}
	return true;
}

/*
 * Does a value fit its column (or, in_array, its array's element kind)?
 * Returns NULL if so, otherwise the reason, possibly written into why.
 *
 * A KIND_ARRAY column carries a typed array or, for shapes the Array
 * message cannot hold (several dimensions, another lower bound), the
 * array's text.  unchanged_toast marks a whole column value, so it never
 * appears inside an array.
 */
static const char *
check_value(const Dsplug__Value *value, int kind, int element_kind,
			bool in_array, char *why, size_t whylen)
{
	const char *field;

	field = ((size_t) value->kind_case <
			 sizeof(field_names) / sizeof(field_names[0])) ?
		field_names[value->kind_case] : "unknown";

	switch (value->kind_case)
	{
		case DSPLUG__VALUE__KIND__NOT_SET:
			return NULL;
		case DSPLUG__VALUE__KIND_UNCHANGED_TOAST:
			if (in_array)
				return "array element is an unchanged TOAST marker";
			if (!value->unchanged_toast)
				return "unchanged_toast is set to false";
			return NULL;
		default:
			break;
	}

	if (value->kind_case != kind_field[kind] &&
		!(kind == DSPLUG__KIND__KIND_ARRAY &&
		  value->kind_case == DSPLUG__VALUE__KIND_TEXT))
	{
		snprintf(why, whylen, "value is in field %s, not %s",
				 field, field_names[kind_field[kind]]);
		return why;
	}

	switch (value->kind_case)
	{
		case DSPLUG__VALUE__KIND_UUID:
			if (value->uuid.len != DSPLUG_UUID_SIZE)
			{
				snprintf(why, whylen, "uuid has %zu bytes, not %d",
						 value->uuid.len, DSPLUG_UUID_SIZE);
				return why;
			}
			break;
		case DSPLUG__VALUE__KIND_TIME:
			if (value->time < 0 || value->time > WIRE_USECS_PER_DAY)
			{
				snprintf(why, whylen, "time of %lld microseconds is outside a day",
						 (long long) value->time);
				return why;
			}
			break;
		case DSPLUG__VALUE__KIND_NUMERIC:
			{
				const Dsplug__Numeric *num = value->numeric;

				if ((int) num->special < DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE ||
					(int) num->special > DSPLUG__NUMERIC_SPECIAL__NUMERIC_NEGATIVE_INFINITY)
				{
					snprintf(why, whylen, "numeric has unknown special value %d",
							 (int) num->special);
					return why;
				}
				if (num->special != DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE)
					break;
				if (num->weight < WIRE_NUMERIC_WEIGHT_MIN ||
					num->weight > WIRE_NUMERIC_WEIGHT_MAX ||
					num->dscale > WIRE_NUMERIC_DSCALE_MAX)
				{
					snprintf(why, whylen, "numeric weight %d or dscale %u is out of range",
							 num->weight, num->dscale);
					return why;
				}
				for (size_t d = 0; d < num->n_digits; d++)
				{
					if (num->digits[d] >= WIRE_NUMERIC_BASE)
					{
						snprintf(why, whylen, "numeric digit %zu is %u, not below %d",
								 d + 1, num->digits[d], WIRE_NUMERIC_BASE);
						return why;
					}
				}
				break;
			}
		case DSPLUG__VALUE__KIND_ARRAY:
			for (size_t e = 0; e < value->array->n_elements; e++)
			{
				char		elemwhy[128];
				const char *err;

				err = check_value(value->array->elements[e], element_kind,
								  DSPLUG__KIND__KIND_TEXT, true,
								  elemwhy, sizeof(elemwhy));
				if (err != NULL)
				{
					snprintf(why, whylen, "element %zu: %s", e + 1, err);
					return why;
				}
			}
			break;
		default:
			break;
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Relation map
 * ---------------------------------------------------------------------
 */

static size_t
oid_hash(uint32_t oid)
{
	return (size_t) (oid * UINT32_C(2654435761));
}

/* The slot holding oid's description, or NULL. */
static RelationSlot *
relation_slot(const WireDecoder *dec, uint32_t oid)
{
	size_t		mask = dec->nslots - 1;

	if (dec->nslots == 0)
		return NULL;
	for (size_t h = oid_hash(oid) & mask;; h = (h + 1) & mask)
	{
		if (dec->slots[h].rel == NULL)
			return NULL;
		if (dec->slots[h].oid == oid)
			return &dec->slots[h];
	}
}

/*
 * Keep a copy of rel as its oid's latest description.  The description it
 * replaces is retired, not freed: earlier items of the batch point to it.
 * The copy is made by packing and unpacking, so it shares nothing with the
 * batch.  Returns false when out of memory, with nothing changed.
 */
static bool
remember_relation(WireDecoder *dec, const Dsplug__Relation *rel)
{
	RelationSlot *slot;
	Dsplug__Relation *copy;
	size_t		size;
	uint8_t    *packed;

	/* room first, so that nothing below can fail after the copy is made */
	if ((dec->nrelations + 1) * 2 > dec->nslots)
	{
		size_t		newn = dec->nslots > 0 ? dec->nslots * 2 : 64;
		RelationSlot *newslots = wire_alloc(dec, newn * sizeof(RelationSlot));

		if (newslots == NULL)
			return false;
		memset(newslots, 0, newn * sizeof(RelationSlot));
		for (size_t s = 0; s < dec->nslots; s++)
		{
			size_t		h;

			if (dec->slots[s].rel == NULL)
				continue;
			for (h = oid_hash(dec->slots[s].oid) & (newn - 1);
				 newslots[h].rel != NULL; h = (h + 1) & (newn - 1))
				;
			newslots[h] = dec->slots[s];
		}
		wire_free(dec, dec->slots);
		dec->slots = newslots;
		dec->nslots = newn;
	}
	if (dec->nretired == dec->retired_cap)
	{
		size_t		newcap = dec->retired_cap > 0 ? dec->retired_cap * 2 : 16;
		Dsplug__Relation **newret = wire_alloc(dec, newcap * sizeof(Dsplug__Relation *));

		if (newret == NULL)
			return false;
		if (dec->nretired > 0)
			memcpy(newret, dec->retired, dec->nretired * sizeof(Dsplug__Relation *));
		wire_free(dec, dec->retired);
		dec->retired = newret;
		dec->retired_cap = newcap;
	}

	size = dsplug__relation__get_packed_size(rel);
	packed = wire_alloc(dec, size);
	if (packed == NULL)
		return false;
	dsplug__relation__pack(rel, packed);
	copy = dsplug__relation__unpack(&dec->pb_allocator, size, packed);
	wire_free(dec, packed);
	if (copy == NULL)
		return false;

	slot = relation_slot(dec, rel->oid);
	if (slot != NULL)
	{
		dec->retired[dec->nretired++] = slot->rel;
		slot->rel = copy;
		return true;
	}
	for (size_t h = oid_hash(rel->oid) & (dec->nslots - 1);;
		 h = (h + 1) & (dec->nslots - 1))
	{
		if (dec->slots[h].rel == NULL)
		{
			dec->slots[h].oid = rel->oid;
			dec->slots[h].rel = copy;
			dec->nrelations++;
			return true;
		}
	}
}
