/*-------------------------------------------------------------------------
 *
 * frames.c
 *		wire_test's frame writer: sessions of frames built exactly the way
 *		plugin/batch.c and plugin/compress.c build them, so that the decoder
 *		is tested against the plugin's encoding and not against a Batch
 *		packed in one piece.
 *
 * Everything here aborts on allocation failure: it is test scaffolding,
 * and the allocation failures under test are the decoder's.
 *
 * regress/unit/frames.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_test.h"

/* dsplug.Batch field numbers (dsplug.proto) */
#define BATCH_BEGIN				1
#define BATCH_RECORDS			2
#define BATCH_COMMIT			3
#define BATCH_FIRST_POSITION	4

#define MAX_TEST_COLUMNS		64

static void put_msg(Buf *b, uint32_t field, const ProtobufCMessage *msg);

void
buf_put(Buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;

		while (cap < b->len + len)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
			abort();
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
}

void
buf_put_varint(Buf *b, uint64_t value)
{
	uint8_t		byte;

	while (value >= 0x80)
	{
		byte = (uint8_t) ((value & 0x7F) | 0x80);
		buf_put(b, &byte, 1);
		value >>= 7;
	}
	byte = (uint8_t) value;
	buf_put(b, &byte, 1);
}

/* A length-delimited field holding data. */
void
buf_put_field(Buf *b, uint32_t field, const void *data, size_t len)
{
	buf_put_varint(b, ((uint64_t) field << 3) | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
	buf_put_varint(b, len);
	buf_put(b, data, len);
}

void
buf_free(Buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(Buf));
}

static void
put_msg(Buf *b, uint32_t field, const ProtobufCMessage *msg)
{
	size_t		size = protobuf_c_message_get_packed_size(msg);
	uint8_t    *tmp = malloc(size + 1);

	if (tmp == NULL)
		abort();
	protobuf_c_message_pack(msg, tmp);
	buf_put_field(b, field, tmp, size);
	free(tmp);
}

void
session_init(Session *s, bool zstd)
{
	memset(s, 0, sizeof(Session));
	s->zstd = zstd;
	s->version = DSPLUG_WIRE_VERSION;
	if (zstd)
	{
		s->cctx = ZSTD_createCCtx();
		if (s->cctx == NULL)
			abort();
		ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, 3);
	}
}

void
session_free(Session *s)
{
	for (size_t i = 0; i < s->nframes; i++)
		buf_free(&s->frames[i]);
	free(s->frames);
	buf_free(&s->batch);
	if (s->cctx != NULL)
		ZSTD_freeCCtx(s->cctx);
	memset(s, 0, sizeof(Session));
}

static Buf *
new_frame(Session *s)
{
	if (s->nframes == s->frames_cap)
	{
		s->frames_cap = s->frames_cap ? s->frames_cap * 2 : 8;
		s->frames = realloc(s->frames, s->frames_cap * sizeof(Buf));
		if (s->frames == NULL)
			abort();
	}
	memset(&s->frames[s->nframes], 0, sizeof(Buf));
	return &s->frames[s->nframes++];
}

/* Write the pending batch as a frame, as batch_flush and compress_frame do. */
void
session_flush(Session *s)
{
	Buf		   *f = new_frame(s);
	uint8_t		header[DSPLUG_FRAME_HEADER_SIZE_V2] = {0};

	if (!s->started)
		s->session_first = s->nframes - 1;
	header[0] = s->version;
	header[1] = (s->zstd ? DSPLUG_FRAME_ZSTD : 0) |
		(s->started ? 0 : DSPLUG_FRAME_SESSION_START);
	buf_put(f, header, DSPLUG_FRAME_HEADER_SIZE_OF(s->version));

	if (s->zstd)
	{
		ZSTD_inBuffer in = {s->batch.data, s->batch.len, 0};

		for (;;)
		{
			size_t		room = ZSTD_compressBound(in.size - in.pos) + 64;
			ZSTD_outBuffer out;
			size_t		remaining;

			if (f->cap - f->len < room)
			{
				f->data = realloc(f->data, f->len + room);
				if (f->data == NULL)
					abort();
				f->cap = f->len + room;
			}
			out.dst = f->data + f->len;
			out.size = f->cap - f->len;
			out.pos = 0;
			remaining = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_flush);
			if (ZSTD_isError(remaining))
				abort();
			f->len += out.pos;
			if (remaining == 0 && in.pos == in.size)
				break;
		}
	}
	else
		buf_put(f, s->batch.data, s->batch.len);

	if (s->version >= DSPLUG_WIRE_CHECKSUM_VERSION)
		wire_frame_seal(f->data, f->len, s->nframes - 1 - s->session_first);
	s->started = true;
	s->batch.len = 0;
}

/*
 * A frame with any header and payload, for the error tests.  But for
 * version 1, the header has the checksum (versions this reader does not
 * know keep the version 2 layout), correct for the frame's place in the
 * session, so that the frame reaches the checks behind it.
 */
void
session_raw_frame(Session *s, uint8_t version, uint8_t flags,
				  const void *payload, size_t len)
{
	Buf		   *f = new_frame(s);
	static const uint8_t no_checksum[4] = {0};

	if (flags & DSPLUG_FRAME_SESSION_START)
		s->session_first = s->nframes - 1;
	buf_put(f, &version, 1);
	buf_put(f, &flags, 1);
	if (version != 1)
		buf_put(f, no_checksum, sizeof(no_checksum));
	buf_put(f, payload, len);
	if (version != 1)
		wire_frame_seal(f->data, f->len, s->nframes - 1 - s->session_first);
}

/*
 * Seal frames again after a test changed them on purpose: each frame but
 * those of version 1 gets the checksum of its contents as they are now and
 * of its place in its session, so that the change reaches the checks
 * behind the checksum.
 */
void
frames_reseal(Buf *frames, size_t n)
{
	uint64_t	seqno = 0;

	for (size_t i = 0; i < n; i++)
	{
		Buf		   *f = &frames[i];

		if (f->len < DSPLUG_FRAME_HEADER_SIZE_V2)
			continue;
		if (f->data[1] & DSPLUG_FRAME_SESSION_START)
			seqno = 0;
		if (f->data[0] != 1)
			wire_frame_seal(f->data, f->len, seqno);
		seqno++;
	}
}

void
session_reseal(Session *s)
{
	frames_reseal(s->frames, s->nframes);
}

void
put_begin(Session *s, uint32_t xid, uint64_t lsn, int64_t time)
{
	Dsplug__Begin begin = DSPLUG__BEGIN__INIT;

	begin.xid = xid;
	begin.commit_lsn = lsn;
	begin.commit_time = time;
	put_msg(&s->batch, BATCH_BEGIN, &begin.base);
}

void
put_commit(Session *s, uint64_t end_lsn)
{
	Dsplug__Commit commit = DSPLUG__COMMIT__INIT;

	commit.end_lsn = end_lsn;
	put_msg(&s->batch, BATCH_COMMIT, &commit.base);
}

void
put_first_position(Session *s, uint32_t position)
{
	buf_put_varint(&s->batch, ((uint64_t) BATCH_FIRST_POSITION << 3) |
				   PROTOBUF_C_WIRE_TYPE_VARINT);
	buf_put_varint(&s->batch, position);
}

void
put_record(Session *s, const Dsplug__Record *rec)
{
	put_msg(&s->batch, BATCH_RECORDS, &rec->base);
}

void
put_relation(Session *s, uint32_t oid, const char *name, size_t ncols,
			 const int *kinds, const int *element_kinds, int identity)
{
	Dsplug__Record rec = DSPLUG__RECORD__INIT;
	Dsplug__Relation rel = DSPLUG__RELATION__INIT;
	Dsplug__Column cols[MAX_TEST_COLUMNS];
	Dsplug__Column *colp[MAX_TEST_COLUMNS];
	char		names[MAX_TEST_COLUMNS][16];

	if (ncols > MAX_TEST_COLUMNS)
		abort();
	for (size_t i = 0; i < ncols; i++)
	{
		dsplug__column__init(&cols[i]);
		snprintf(names[i], sizeof(names[i]), "c%zu", i + 1);
		cols[i].name = names[i];
		cols[i].type_name = "test";
		cols[i].typmod = -1;
		cols[i].key = (i == 0);
		cols[i].kind = (Dsplug__Kind) kinds[i];
		cols[i].element_kind = element_kinds ?
			(Dsplug__Kind) element_kinds[i] : DSPLUG__KIND__KIND_TEXT;
		colp[i] = &cols[i];
	}
	rel.oid = oid;
	rel.schema = "public";
	rel.name = (char *) name;
	rel.replica_identity = (Dsplug__ReplicaIdentity) identity;
	rel.n_columns = ncols;
	rel.columns = colp;
	rec.kind_case = DSPLUG__RECORD__KIND_RELATION;
	rec.relation = &rel;
	put_record(s, &rec);
}

/*
 * An insert, update or delete; oldv or newv NULL leaves that tuple out
 * (an empty array makes an empty tuple).
 */
void
put_change(Session *s, Dsplug__Record__KindCase kind, uint32_t oid,
		   Dsplug__Value *oldv, size_t nold, Dsplug__Value *newv, size_t nnew)
{
	Dsplug__Record rec = DSPLUG__RECORD__INIT;
	Dsplug__Change change = DSPLUG__CHANGE__INIT;
	Dsplug__Tuple oldt = DSPLUG__TUPLE__INIT;
	Dsplug__Tuple newt = DSPLUG__TUPLE__INIT;
	Dsplug__Value *oldp[MAX_TEST_COLUMNS];
	Dsplug__Value *newp[MAX_TEST_COLUMNS];

	if (nold > MAX_TEST_COLUMNS || nnew > MAX_TEST_COLUMNS)
		abort();
	for (size_t i = 0; i < nold; i++)
		oldp[i] = &oldv[i];
	for (size_t i = 0; i < nnew; i++)
		newp[i] = &newv[i];
	oldt.n_values = nold;
	oldt.values = oldp;
	newt.n_values = nnew;
	newt.values = newp;

	change.relation = oid;
	change.old = oldv ? &oldt : NULL;
	change.new_ = newv ? &newt : NULL;
	rec.kind_case = kind;
	switch (kind)
	{
		case DSPLUG__RECORD__KIND_INSERT:
			rec.insert = &change;
			break;
		case DSPLUG__RECORD__KIND_UPDATE:
			rec.update = &change;
			break;
		default:
			rec.delete_ = &change;
			break;
	}
	put_record(s, &rec);
}

void
put_truncate(Session *s, const uint32_t *oids, size_t n)
{
	Dsplug__Record rec = DSPLUG__RECORD__INIT;
	Dsplug__Truncate tr = DSPLUG__TRUNCATE__INIT;

	tr.n_relations = n;
	tr.relations = (uint32_t *) oids;
	tr.cascade = true;
	rec.kind_case = DSPLUG__RECORD__KIND_TRUNCATE;
	rec.truncate = &tr;
	put_record(s, &rec);
}

void
put_message(Session *s, bool transactional, const char *prefix,
			const char *content)
{
	Dsplug__Record rec = DSPLUG__RECORD__INIT;
	Dsplug__Message msg = DSPLUG__MESSAGE__INIT;

	msg.transactional = transactional;
	msg.prefix = (char *) prefix;
	msg.content.data = (uint8_t *) content;
	msg.content.len = strlen(content);
	msg.lsn = 0x2000;
	rec.kind_case = DSPLUG__RECORD__KIND_MESSAGE;
	rec.message = &msg;
	put_record(s, &rec);
}

void
put_test_relation(Session *s)
{
	static const int kinds[TEST_NCOLS] = {
		DSPLUG__KIND__KIND_INT, DSPLUG__KIND__KIND_TEXT,
		DSPLUG__KIND__KIND_NUMERIC, DSPLUG__KIND__KIND_ARRAY,
		DSPLUG__KIND__KIND_UUID
	};
	static const int elems[TEST_NCOLS] = {
		0, 0, 0, DSPLUG__KIND__KIND_INT, 0
	};

	put_relation(s, TEST_OID, "t", TEST_NCOLS, kinds, elems, 0);
}

/* A row of the test relation: id and name set, the rest NULL. */
void
test_row(Dsplug__Value *v, int64_t id, const char *name)
{
	v[0] = v_int(id);
	v[1] = v_text(name);
	v[2] = v_null();
	v[3] = v_null();
	v[4] = v_null();
}

#define VALUE_CTOR(fn, type, kcase, member) \
Dsplug__Value \
fn(type x) \
{ \
	Dsplug__Value v = DSPLUG__VALUE__INIT; \
	v.kind_case = kcase; \
	v.member = x; \
	return v; \
}

VALUE_CTOR(v_int, int64_t, DSPLUG__VALUE__KIND_INT, int_)
VALUE_CTOR(v_float8, double, DSPLUG__VALUE__KIND_FLOAT8, float8)
VALUE_CTOR(v_float4, float, DSPLUG__VALUE__KIND_FLOAT4, float4)
VALUE_CTOR(v_bool, bool, DSPLUG__VALUE__KIND_BOOL, bool_)
VALUE_CTOR(v_numeric, Dsplug__Numeric *, DSPLUG__VALUE__KIND_NUMERIC, numeric)
VALUE_CTOR(v_date, int32_t, DSPLUG__VALUE__KIND_DATE, date)
VALUE_CTOR(v_time, int64_t, DSPLUG__VALUE__KIND_TIME, time)
VALUE_CTOR(v_timestamp, int64_t, DSPLUG__VALUE__KIND_TIMESTAMP, timestamp)
VALUE_CTOR(v_timestamptz, int64_t, DSPLUG__VALUE__KIND_TIMESTAMPTZ, timestamptz)
VALUE_CTOR(v_interval, Dsplug__Interval *, DSPLUG__VALUE__KIND_INTERVAL, interval)
VALUE_CTOR(v_array, Dsplug__Array *, DSPLUG__VALUE__KIND_ARRAY, array)

Dsplug__Value
v_null(void)
{
	Dsplug__Value v = DSPLUG__VALUE__INIT;

	return v;
}

Dsplug__Value
v_toast(void)
{
	Dsplug__Value v = DSPLUG__VALUE__INIT;

	v.kind_case = DSPLUG__VALUE__KIND_UNCHANGED_TOAST;
	v.unchanged_toast = true;
	return v;
}

Dsplug__Value
v_text(const char *s)
{
	Dsplug__Value v = DSPLUG__VALUE__INIT;

	v.kind_case = DSPLUG__VALUE__KIND_TEXT;
	v.text = (char *) s;
	return v;
}

Dsplug__Value
v_json(const char *s)
{
	Dsplug__Value v = DSPLUG__VALUE__INIT;

	v.kind_case = DSPLUG__VALUE__KIND_JSON;
	v.json = (char *) s;
	return v;
}

Dsplug__Value
v_bytea(const void *data, size_t len)
{
	Dsplug__Value v = DSPLUG__VALUE__INIT;

	v.kind_case = DSPLUG__VALUE__KIND_BYTEA;
	v.bytea.data = (uint8_t *) data;
	v.bytea.len = len;
	return v;
}

Dsplug__Value
v_uuid(const void *data, size_t len)
{
	Dsplug__Value v = DSPLUG__VALUE__INIT;

	v.kind_case = DSPLUG__VALUE__KIND_UUID;
	v.uuid.data = (uint8_t *) data;
	v.uuid.len = len;
	return v;
}
