/*-------------------------------------------------------------------------
 *
 * test_decode.c
 *		wire_test: decoding valid sessions, and every reason to refuse a
 *		frame (proto/wire_decode.c).
 *
 * Each session is written twice, zstd-compressed and plain, since the two
 * take different paths through the decoder and must give the same batches.
 *
 * regress/unit/test_decode.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_test.h"

#define ERRLEN 512

static const WireBatch *read_frame(WireDecoder *dec, const Buf *frame,
								   char *err);
static void expect_error(Session *s, const char *want);

static const WireBatch *
read_frame(WireDecoder *dec, const Buf *frame, char *err)
{
	return wire_decoder_read(dec, frame->data, frame->len, err, ERRLEN);
}

/* Render every value of every change, to be sure validated data prints. */
void
render_batch(const WireBatch *wb)
{
	WireText	t;

	wire_text_init(&t, NULL);
	for (size_t i = 0; i < wb->nitems; i++)
	{
		const Dsplug__Record *rec = wb->items[i].record;
		const Dsplug__Change *c = rec->kind_case == DSPLUG__RECORD__KIND_INSERT ? rec->insert :
		rec->kind_case == DSPLUG__RECORD__KIND_UPDATE ? rec->update :
		rec->kind_case == DSPLUG__RECORD__KIND_DELETE ? rec->delete_ : NULL;
		const Dsplug__Tuple *tuples[2];

		if (c == NULL)
			continue;
		tuples[0] = c->old;
		tuples[1] = c->new_;
		for (int k = 0; k < 2; k++)
		{
			if (tuples[k] == NULL)
				continue;
			for (size_t v = 0; v < tuples[k]->n_values; v++)
			{
				const Dsplug__Value *val = tuples[k]->values[v];
				const Dsplug__Column *col = wb->items[i].relation->columns[v];

				CHECK(wire_text_append_value_json(&t, val, col), "json");
				if (val->kind_case != DSPLUG__VALUE__KIND__NOT_SET &&
					val->kind_case != DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
					CHECK(wire_text_append_value(&t, val, col), "text");
			}
		}
	}
	wire_text_free(&t);
}

/*
 * Write the reference session: a small transaction over two relations, a
 * large one cut into three batches with a description changing in the
 * middle, a relation described twice within one batch, and a lone
 * non-transactional message.
 */
void
write_reference_session(Session *s)
{
	static const int kinds2[3] = {
		DSPLUG__KIND__KIND_INT, DSPLUG__KIND__KIND_TEXT, DSPLUG__KIND__KIND_DATE
	};
	static const int kinds6[6] = {
		DSPLUG__KIND__KIND_INT, DSPLUG__KIND__KIND_TEXT,
		DSPLUG__KIND__KIND_NUMERIC, DSPLUG__KIND__KIND_ARRAY,
		DSPLUG__KIND__KIND_UUID, DSPLUG__KIND__KIND_FLOAT8
	};
	static const int elems6[6] = {0, 0, 0, DSPLUG__KIND__KIND_INT, 0, 0};
	static const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	static const uint32_t truncated[2] = {TEST_OID, 16385};
	uint32_t	digits[2] = {12, 3400};
	Dsplug__Numeric num = DSPLUG__NUMERIC__INIT;
	Dsplug__Value arrv[3];
	Dsplug__Value *arrp[3] = {&arrv[0], &arrv[1], &arrv[2]};
	Dsplug__Array arr = DSPLUG__ARRAY__INIT;
	Dsplug__Value row[6];
	Dsplug__Value old[6];

	num.digits = digits;
	num.n_digits = 2;
	num.dscale = 2;
	arrv[0] = v_int(1);
	arrv[1] = v_null();
	arrv[2] = v_int(3);
	arr.elements = arrp;
	arr.n_elements = 3;

	/* frame 1: begin, rel, insert, update, rel, insert, commit */
	put_begin(s, 700, 0x1000, 123456);
	put_test_relation(s);
	test_row(row, 1, "one");
	row[2] = v_numeric(&num);
	row[3] = v_array(&arr);
	row[4] = v_uuid(uuid, 16);
	put_change(s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, 5);
	test_row(old, 1, "one");
	test_row(row, 2, "two");
	row[1] = v_toast();
	row[3] = v_text("[0:1]={1,2}");
	put_change(s, DSPLUG__RECORD__KIND_UPDATE, TEST_OID, old, 5, row, 5);
	put_relation(s, 16385, "u", 3, kinds2, NULL, 2);
	row[0] = v_int(5);
	row[1] = v_text("x");
	row[2] = v_date(-746117);
	put_change(s, DSPLUG__RECORD__KIND_INSERT, 16385, NULL, 0, row, 3);
	put_commit(s, 0x1100);
	session_flush(s);

	/* frames 2-4: one transaction in three batches */
	put_begin(s, 701, 0x2000, 123457);
	test_row(row, 10, "ten");
	put_change(s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, 5);
	put_change(s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, 5);
	session_flush(s);
	put_first_position(s, 2);
	put_relation(s, TEST_OID, "t", 6, kinds6, elems6, 0);
	test_row(row, 11, "eleven");
	row[5] = v_float8(1.5);
	put_change(s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, 6);
	test_row(old, 11, NULL);
	old[1] = v_null();
	old[5] = v_null();
	put_change(s, DSPLUG__RECORD__KIND_DELETE, TEST_OID, old, 6, NULL, 0);
	session_flush(s);
	put_first_position(s, 4);
	put_truncate(s, truncated, 2);
	put_message(s, true, "p", "in txn");
	put_commit(s, 0x2100);
	session_flush(s);

	/* frame 5: a relation described twice in one batch */
	put_begin(s, 702, 0x3000, 123458);
	put_relation(s, 16386, "v", 2, kinds2, NULL, 0);
	row[0] = v_int(1);
	row[1] = v_text("a");
	put_change(s, DSPLUG__RECORD__KIND_INSERT, 16386, NULL, 0, row, 2);
	put_relation(s, 16386, "v", 3, kinds2, NULL, 0);
	row[2] = v_date(0);
	put_change(s, DSPLUG__RECORD__KIND_INSERT, 16386, NULL, 0, row, 3);
	put_commit(s, 0x3100);
	session_flush(s);

	/* frame 6: a non-transactional message */
	put_message(s, false, "p", "alone");
	session_flush(s);
}

static void
check_items(const WireBatch *wb, size_t n, const int *kinds,
			const uint32_t *positions, int frame)
{
	CHECK(wb->nitems == n, "frame %d: %zu items, want %zu", frame, wb->nitems, n);
	for (size_t i = 0; i < n && i < wb->nitems; i++)
	{
		const WireItem *it = &wb->items[i];

		CHECK((int) it->record->kind_case == kinds[i],
			  "frame %d item %zu: kind %d, want %d", frame, i,
			  (int) it->record->kind_case, kinds[i]);
		CHECK(it->record == wb->batch->records[i], "frame %d item %zu record", frame, i);
		CHECK(it->position == positions[i], "frame %d item %zu: position %u, want %u",
			  frame, i, it->position, positions[i]);
		if (kinds[i] >= DSPLUG__RECORD__KIND_INSERT &&
			kinds[i] <= DSPLUG__RECORD__KIND_DELETE)
			CHECK(it->relation != NULL, "frame %d item %zu: no relation", frame, i);
		else
			CHECK(it->relation == NULL, "frame %d item %zu: relation", frame, i);
	}
}

static void
decode_reference(bool zstd)
{
	enum
	{
		R = DSPLUG__RECORD__KIND_RELATION,
		I = DSPLUG__RECORD__KIND_INSERT,
		U = DSPLUG__RECORD__KIND_UPDATE,
		D = DSPLUG__RECORD__KIND_DELETE,
		T = DSPLUG__RECORD__KIND_TRUNCATE,
		M = DSPLUG__RECORD__KIND_MESSAGE
	};
	TestAlloc	ta;
	Session		s;
	WireDecoder *dec;
	const WireBatch *wb;
	char		err[ERRLEN];

	test_alloc_init(&ta);
	session_init(&s, zstd);
	write_reference_session(&s);
	dec = wire_decoder_create(&ta.allocator);
	CHECK(dec != NULL, "create");
	CHECK(s.frames[0].data[1] == (zstd ? 3 : 2), "first frame flags %d", s.frames[0].data[1]);

	for (int pass = 0; pass < 2; pass++)
	{
		wb = read_frame(dec, &s.frames[0], err);
		CHECK(wb != NULL, "frame 1: %s", err);
		if (wb == NULL)
			break;
		{
			static const int k[] = {R, I, U, R, I};
			static const uint32_t p[] = {0, 0, 1, 2, 2};

			check_items(wb, 5, k, p, 1);
			CHECK(wb->in_transaction && wb->ends_transaction, "frame 1 txn flags");
			CHECK(wb->xid == 700 && wb->commit_lsn == 0x1000 &&
				  wb->commit_time == 123456, "frame 1 txn info");
			CHECK(wb->payload_size > 0, "payload size");
			CHECK(wb->items[1].relation == wire_decoder_relation(dec, TEST_OID),
				  "item relation is the session's");
			CHECK(wb->items[1].relation->n_columns == 5 &&
				  strcmp(wb->items[1].relation->name, "t") == 0, "relation copy");
			CHECK(wb->items[4].relation->n_columns == 3 &&
				  wb->items[4].relation->replica_identity == 2, "relation 16385");
			render_batch(wb);
		}

		wb = read_frame(dec, &s.frames[1], err);
		CHECK(wb != NULL, "frame 2: %s", err);
		if (wb == NULL)
			break;
		{
			static const int k[] = {I, I};
			static const uint32_t p[] = {0, 1};

			check_items(wb, 2, k, p, 2);
			CHECK(wb->in_transaction && !wb->ends_transaction && wb->xid == 701,
				  "frame 2 txn");
		}
		wb = read_frame(dec, &s.frames[2], err);
		CHECK(wb != NULL, "frame 3: %s", err);
		if (wb == NULL)
			break;
		{
			static const int k[] = {R, I, D};
			static const uint32_t p[] = {2, 2, 3};

			check_items(wb, 3, k, p, 3);
			CHECK(wb->in_transaction && !wb->ends_transaction &&
				  wb->xid == 701 && wb->commit_lsn == 0x2000 &&
				  wb->commit_time == 123457, "frame 3 txn");
			CHECK(wb->items[1].relation->n_columns == 6, "redescribed relation");
			CHECK(wire_decoder_relation(dec, TEST_OID)->n_columns == 6, "latest");
			render_batch(wb);
		}
		wb = read_frame(dec, &s.frames[3], err);
		CHECK(wb != NULL, "frame 4: %s", err);
		if (wb == NULL)
			break;
		{
			static const int k[] = {T, M};
			static const uint32_t p[] = {4, 5};

			check_items(wb, 2, k, p, 4);
			CHECK(wb->ends_transaction && wb->xid == 701, "frame 4 txn");
		}
		wb = read_frame(dec, &s.frames[4], err);
		CHECK(wb != NULL, "frame 5: %s", err);
		if (wb == NULL)
			break;
		{
			static const int k[] = {R, I, R, I};
			static const uint32_t p[] = {0, 0, 1, 1};

			check_items(wb, 4, k, p, 5);
			/* the first insert still sees the first description */
			CHECK(wb->items[1].relation->n_columns == 2 &&
				  wb->items[3].relation->n_columns == 3,
				  "versions within a batch: %zu, %zu",
				  wb->items[1].relation->n_columns,
				  wb->items[3].relation->n_columns);
			render_batch(wb);
		}
		wb = read_frame(dec, &s.frames[5], err);
		CHECK(wb != NULL, "frame 6: %s", err);
		if (wb == NULL)
			break;
		{
			static const int k[] = {M};
			static const uint32_t p[] = {0};

			check_items(wb, 1, k, p, 6);
			CHECK(!wb->in_transaction && !wb->ends_transaction &&
				  wb->xid == 0 && wb->commit_lsn == 0, "lone message");
		}

		/* a second pass after reset reads the session the same way */
		wire_decoder_reset(dec);
		CHECK(wire_decoder_relation(dec, TEST_OID) == NULL, "reset forgets relations");
	}

	/*
	 * A session start without reset, in the middle of a session: a new
	 * session (a reconnection) that forgets the old one's relations.
	 */
	{
		Session		s2;

		wb = read_frame(dec, &s.frames[0], err);
		CHECK(wb != NULL, "session 1 again: %s", err);
		CHECK(wire_decoder_relation(dec, 16385) != NULL, "16385 described");
		session_init(&s2, zstd);
		put_begin(&s2, 800, 0x9000, 1);
		put_test_relation(&s2);
		put_commit(&s2, 0x9100);
		session_flush(&s2);
		wb = read_frame(dec, &s2.frames[0], err);
		CHECK(wb != NULL, "second session: %s", err);
		CHECK(wire_decoder_relation(dec, 16385) == NULL, "new session forgets");
		CHECK(wire_decoder_relation(dec, TEST_OID) != NULL, "new session's own");
		session_free(&s2);
	}

	wire_decoder_destroy(dec);
	CHECK(ta.live == 0, "decoder leaked %ld blocks", ta.live);
	session_free(&s);
}

/*
 * Payloads past the decoder's kept buffer and past zstd's 128 kB block
 * size, in one frame and after it.
 */
static void
decode_large(bool zstd)
{
	TestAlloc	ta;
	Session		s;
	WireDecoder *dec;
	const WireBatch *wb;
	char		err[ERRLEN];
	size_t		size = 3 * 1024 * 1024;
	char	   *big = malloc(size + 1);
	uint64_t	x = 12345;
	Dsplug__Value row[TEST_NCOLS];

	for (size_t i = 0; i < size; i++)
	{
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		big[i] = (char) ('a' + (x >> 59));
	}
	big[size] = '\0';

	test_alloc_init(&ta);
	session_init(&s, zstd);
	put_begin(&s, 900, 0x5000, 0);
	put_test_relation(&s);
	test_row(row, 1, big);
	put_change(&s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, TEST_NCOLS);
	put_commit(&s, 0x5100);
	session_flush(&s);
	put_begin(&s, 901, 0x6000, 0);
	test_row(row, 2, "small");
	put_change(&s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, TEST_NCOLS);
	put_commit(&s, 0x6100);
	session_flush(&s);

	dec = wire_decoder_create(&ta.allocator);
	wb = read_frame(dec, &s.frames[0], err);
	CHECK(wb != NULL, "large frame: %s", err);
	if (wb != NULL)
	{
		const Dsplug__Value *v = wb->batch->records[1]->insert->new_->values[1];

		CHECK(wb->payload_size > size, "payload size %zu", wb->payload_size);
		CHECK(strlen(v->text) == size && memcmp(v->text, big, size) == 0,
			  "large value intact");
	}
	wb = read_frame(dec, &s.frames[1], err);
	CHECK(wb != NULL && wb->xid == 901, "frame after large: %s", err);
	wire_decoder_destroy(dec);
	CHECK(ta.live == 0, "decoder leaked %ld blocks", ta.live);
	session_free(&s);
	free(big);
}

void
test_decode(void)
{
	decode_reference(true);
	decode_reference(false);
	decode_large(true);
	decode_large(false);
}

/* ---------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------
 */

/*
 * Read s's frames in order: all but the last must decode, the last must
 * fail with an error containing want.  Then the decoder refuses to go on
 * until reset, and after reset reads a valid session again.
 */
static void
expect_error(Session *s, const char *want)
{
	TestAlloc	ta;
	WireDecoder *dec;
	char		err[ERRLEN];
	Session		ok;

	test_alloc_init(&ta);
	dec = wire_decoder_create(&ta.allocator);
	for (size_t i = 0; i + 1 < s->nframes; i++)
	{
		const WireBatch *wb = read_frame(dec, &s->frames[i], err);

		CHECK(wb != NULL, "[%s] frame %zu should decode: %s", want, i + 1, err);
	}
	CHECK(read_frame(dec, &s->frames[s->nframes - 1], err) == NULL,
		  "[%s] last frame decoded", want);
	CHECK(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
	CHECK(strchr(err, '\n') == NULL && err[strlen(err) - 1] != '.',
		  "error not one line without period: %s", err);

	CHECK(read_frame(dec, &s->frames[0], err) == NULL &&
		  strstr(err, "must be reset") != NULL, "[%s] read after failure: %s",
		  want, err);

	wire_decoder_reset(dec);
	session_init(&ok, s->zstd);
	put_begin(&ok, 1, 1, 1);
	put_test_relation(&ok);
	put_commit(&ok, 2);
	session_flush(&ok);
	CHECK(read_frame(dec, &ok.frames[0], err) != NULL, "after reset: %s", err);
	session_free(&ok);

	wire_decoder_destroy(dec);
	CHECK(ta.live == 0, "[%s] decoder leaked %ld blocks", want, ta.live);
	session_free(s);
}

/* Start s with a transaction describing the test relation, left open. */
static void
open_txn(Session *s, bool zstd)
{
	session_init(s, zstd);
	put_begin(s, 42, 0x100, 0);
	put_test_relation(s);
	session_flush(s);
}

/* One bad change in an open transaction. */
static void
expect_change_error(bool zstd, Dsplug__Record__KindCase kind,
					Dsplug__Value *oldv, size_t nold,
					Dsplug__Value *newv, size_t nnew, const char *want)
{
	Session		s;

	open_txn(&s, zstd);
	put_change(&s, kind, TEST_OID, oldv, nold, newv, nnew);
	session_flush(&s);
	expect_error(&s, want);
}

static void
frame_errors(bool zstd)
{
	Session		s;
	uint8_t		flags = (zstd ? DSPLUG_FRAME_ZSTD : 0) | DSPLUG_FRAME_SESSION_START;
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};

	session_init(&s, zstd);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, NULL, 0);
	s.frames[0].len = 0;
	expect_error(&s, "frame 1: frame of 0 bytes is shorter than the 2-byte frame header");

	session_init(&s, zstd);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, NULL, 0);
	s.frames[0].len = 1;
	expect_error(&s, "shorter than");

	session_init(&s, zstd);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, NULL, 0);
	s.frames[0].len = 4;
	expect_error(&s, "frame 1: frame of 4 bytes is shorter than the 6-byte frame header of wire version 2");

	/* a later version (same header layout, valid checksum) */
	session_init(&s, zstd);
	session_raw_frame(&s, 3, flags, junk, sizeof(junk));
	expect_error(&s, "unsupported wire version 3 (this reader speaks versions 1 to 2)");
	session_init(&s, zstd);
	session_raw_frame(&s, 0, flags, junk, sizeof(junk));
	expect_error(&s, "unsupported wire version 0 (this reader speaks versions 1 to 2)");

	session_init(&s, zstd);
	session_raw_frame(&s, 'B', 0, junk, sizeof(junk));
	expect_error(&s, "pgoutput");

	session_init(&s, zstd);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags | 0x84, junk, sizeof(junk));
	expect_error(&s, "unknown frame flags 0x84");

	/* the first frame of a session must say so */
	session_init(&s, zstd);
	put_message(&s, false, "p", "x");
	session_flush(&s);
	s.frames[0].data[1] &= (uint8_t) ~DSPLUG_FRAME_SESSION_START;
	session_reseal(&s);
	expect_error(&s, "must carry the session-start flag");

	/* a session does not switch compression */
	open_txn(&s, zstd);
	put_commit(&s, 1);
	session_flush(&s);
	s.frames[1].data[1] ^= DSPLUG_FRAME_ZSTD;
	session_reseal(&s);
	expect_error(&s, zstd ? "frame is not compressed but its session's frames are zstd-compressed" :
				 "frame is zstd-compressed but its session's frames are not compressed");

	/* a payload that is not what the frame header says */
	if (zstd)
	{
		open_txn(&s, true);
		session_raw_frame(&s, DSPLUG_WIRE_VERSION, DSPLUG_FRAME_ZSTD, junk, sizeof(junk));
		expect_error(&s, "frame 2: could not decompress payload");
	}
	else
	{
		session_init(&s, false);
		session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, junk, sizeof(junk));
		expect_error(&s, "could not unpack dsplug.Batch from 6 bytes");
	}
}

static void
zstd_errors(void)
{
	Session		s;
	uint8_t		flags = DSPLUG_FRAME_ZSTD | DSPLUG_FRAME_SESSION_START;
	static const uint8_t junk[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
	static const uint8_t header_only[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00};
	static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0};

	session_init(&s, true);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, NULL, 0);
	expect_error(&s, "compressed payload is empty");

	session_init(&s, true);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, junk, sizeof(junk));
	expect_error(&s, "could not decompress payload");

	/* a zstd frame header cut short */
	session_init(&s, true);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, header_only, sizeof(header_only));
	expect_error(&s, "compressed payload is truncated");

	session_init(&s, true);
	session_raw_frame(&s, DSPLUG_WIRE_VERSION, flags, skippable, sizeof(skippable));
	expect_error(&s, "compressed payload decompresses to nothing");

	/* a frame cut short at any point, the last frame or a middle one */
	for (size_t cut = 1; cut <= 4; cut++)
	{
		open_txn(&s, true);
		put_commit(&s, 1);
		session_flush(&s);
		s.frames[1].len -= cut;
		expect_error(&s, "checksum mismatch");

		/* signed as cut: zstd sees it */
		open_txn(&s, true);
		put_commit(&s, 1);
		session_flush(&s);
		s.frames[1].len -= cut;
		session_reseal(&s);
		expect_error(&s, "compressed payload is truncated");
	}
}

/* Batches in the wrong place in their transaction. */
static void
batch_errors(bool zstd)
{
	Session		s;
	Dsplug__Record empty = DSPLUG__RECORD__INIT;

	open_txn(&s, zstd);
	put_begin(&s, 43, 0x200, 0);
	session_flush(&s);
	expect_error(&s, "frame 2: begin of transaction 43 while transaction 42 is still open");

	session_init(&s, zstd);
	put_begin(&s, 42, 0x100, 0);
	put_first_position(&s, 5);
	session_flush(&s);
	expect_error(&s, "first batch of transaction 42 has first_position 5, not 0");

	open_txn(&s, zstd);
	put_first_position(&s, 3);
	put_commit(&s, 1);
	session_flush(&s);
	expect_error(&s, "batch of transaction 42 has first_position 3, but 0 changes came before it");

	session_init(&s, zstd);
	put_commit(&s, 1);
	session_flush(&s);
	expect_error(&s, "commit without begin while no transaction is open");

	session_init(&s, zstd);
	put_message(&s, false, "p", "1");
	put_message(&s, false, "p", "2");
	session_flush(&s);
	expect_error(&s, "must be one non-transactional message, not 2 records");

	session_init(&s, zstd);
	put_message(&s, true, "p", "1");
	session_flush(&s);
	expect_error(&s, "must be one non-transactional message");

	session_init(&s, zstd);
	put_test_relation(&s);
	session_flush(&s);
	expect_error(&s, "must be one non-transactional message");

	session_init(&s, zstd);
	put_first_position(&s, 1);
	put_message(&s, false, "p", "1");
	session_flush(&s);
	expect_error(&s, "non-transactional message has first_position 1, not 0");

	open_txn(&s, zstd);
	put_message(&s, false, "p", "x");
	session_flush(&s);
	expect_error(&s, "record 1 (message): non-transactional message inside transaction 42");

	open_txn(&s, zstd);
	put_record(&s, &empty);
	session_flush(&s);
	expect_error(&s, "record 1 (empty record): record has no known kind");

	/* positions continue across batches, data records only */
	{
		Dsplug__Value row[TEST_NCOLS];

		open_txn(&s, zstd);
		test_row(row, 1, "a");
		put_change(&s, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, TEST_NCOLS);
		session_flush(&s);
		put_first_position(&s, 2);
		session_flush(&s);
		expect_error(&s, "frame 3: batch of transaction 42 has first_position 2, but 1 changes came before it");
	}
}

/* Relations: descriptions, and changes to what was not described. */
static void
relation_errors(bool zstd)
{
	Session		s;
	Dsplug__Value row[TEST_NCOLS];
	static const uint32_t oids[2] = {TEST_OID, 99};
	int			kinds[2] = {DSPLUG__KIND__KIND_INT, 15};
	int			elems[2] = {0, 0};

	session_init(&s, zstd);
	put_begin(&s, 42, 1, 0);
	test_row(row, 1, "a");
	put_change(&s, DSPLUG__RECORD__KIND_UPDATE, TEST_OID, NULL, 0, row, TEST_NCOLS);
	session_flush(&s);
	expect_error(&s, "frame 1: record 1 (update of relation 16384): relation was not described in this session");

	open_txn(&s, zstd);
	put_truncate(&s, oids, 2);
	session_flush(&s);
	expect_error(&s, "record 1 (truncate): relation 99 was not described in this session");

	session_init(&s, zstd);
	put_begin(&s, 42, 1, 0);
	put_relation(&s, 7, "bad", 2, kinds, elems, 0);
	session_flush(&s);
	expect_error(&s, "record 1 (relation 7): column 2 \"c2\" has unknown kind 15");

	kinds[1] = DSPLUG__KIND__KIND_ARRAY;
	elems[1] = 99;
	session_init(&s, zstd);
	put_begin(&s, 42, 1, 0);
	put_relation(&s, 7, "bad", 2, kinds, elems, 0);
	session_flush(&s);
	expect_error(&s, "column 2 \"c2\" has unknown element kind 99");

	elems[1] = DSPLUG__KIND__KIND_ARRAY;
	session_init(&s, zstd);
	put_begin(&s, 42, 1, 0);
	put_relation(&s, 7, "bad", 2, kinds, elems, 0);
	session_flush(&s);
	expect_error(&s, "column 2 \"c2\" is an array of arrays");

	elems[1] = 0;
	session_init(&s, zstd);
	put_begin(&s, 42, 1, 0);
	put_relation(&s, 7, "bad", 2, kinds, elems, 9);
	session_flush(&s);
	expect_error(&s, "record 1 (relation 7): unknown replica identity 9");

	/* a new session forgets the old one's relations */
	{
		Session		s2;

		open_txn(&s, zstd);
		put_commit(&s, 1);
		session_flush(&s);
		session_init(&s2, zstd);
		put_begin(&s2, 50, 1, 0);
		test_row(row, 1, "a");
		put_change(&s2, DSPLUG__RECORD__KIND_INSERT, TEST_OID, NULL, 0, row, TEST_NCOLS);
		session_flush(&s2);
		session_raw_frame(&s, s2.frames[0].data[0], s2.frames[0].data[1],
						  s2.frames[0].data + DSPLUG_FRAME_HEADER_SIZE_V2,
						  s2.frames[0].len - DSPLUG_FRAME_HEADER_SIZE_V2);
		session_free(&s2);
		expect_error(&s, "frame 3: record 1 (insert of relation 16384): relation was not described");
	}
}

/* Tuples and values that do not fit their relation. */
static void
value_errors(bool zstd)
{
	Dsplug__Value row[TEST_NCOLS + 1];
	Dsplug__Value old[TEST_NCOLS];
	Dsplug__Value elems[2];
	Dsplug__Value *elemp[2] = {&elems[0], &elems[1]};
	Dsplug__Array arr = DSPLUG__ARRAY__INIT;
	Dsplug__Numeric num = DSPLUG__NUMERIC__INIT;
	uint32_t	digits[2] = {1, 10000};
	static const uint8_t uuid[16] = {0};
	Session		s;
	const Dsplug__Record__KindCase ins = DSPLUG__RECORD__KIND_INSERT;
	const Dsplug__Record__KindCase upd = DSPLUG__RECORD__KIND_UPDATE;
	const Dsplug__Record__KindCase del = DSPLUG__RECORD__KIND_DELETE;

	arr.elements = elemp;
	arr.n_elements = 2;
	test_row(row, 1, "a");
	row[TEST_NCOLS] = v_null();
	test_row(old, 1, "a");

	expect_change_error(zstd, ins, NULL, 0, NULL, 0, "insert has no new tuple");
	expect_change_error(zstd, ins, old, TEST_NCOLS, row, TEST_NCOLS, "insert has an old tuple");
	expect_change_error(zstd, upd, old, TEST_NCOLS, NULL, 0, "update has no new tuple");
	expect_change_error(zstd, del, NULL, 0, NULL, 0, "delete has no old tuple");
	expect_change_error(zstd, del, old, TEST_NCOLS, row, TEST_NCOLS, "delete has a new tuple");

	/* the example of wire_decode.h, exactly */
	open_txn(&s, zstd);
	put_change(&s, ins, TEST_OID, NULL, 0, row, TEST_NCOLS);
	put_change(&s, ins, TEST_OID, NULL, 0, row, TEST_NCOLS);
	put_change(&s, upd, TEST_OID, NULL, 0, row, TEST_NCOLS - 1);
	session_flush(&s);
	expect_error(&s, "frame 2: record 3 (update of relation 16384): new tuple has 4 values, relation has 5 columns");

	expect_change_error(zstd, upd, old, TEST_NCOLS - 1, row, TEST_NCOLS,
						"old tuple has 4 values, relation has 5 columns");
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS + 1,
						"new tuple has 6 values, relation has 5 columns");

	row[0] = v_text("1");
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"new tuple, column 1 \"c1\" (int): value is in field text, not int");
	row[0] = v_int(1);
	row[1] = v_int(1);
	expect_change_error(zstd, del, row, TEST_NCOLS, NULL, 0,
						"old tuple, column 2 \"c2\" (text): value is in field int, not text");
	row[1] = v_json("{}");
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"value is in field json, not text");
	row[1] = v_text("a");

	/* unchanged TOAST: true, and not inside arrays */
	row[1] = v_toast();
	row[1].unchanged_toast = false;
	expect_change_error(zstd, upd, NULL, 0, row, TEST_NCOLS,
						"column 2 \"c2\" (text): unchanged_toast is set to false");
	row[1] = v_text("a");

	/* arrays: typed elements of the column's element kind, or text */
	row[3] = v_int(5);
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"column 4 \"c4\" (array of int): value is in field int, not array");
	elems[0] = v_int(1);
	elems[1] = v_text("2");
	row[3] = v_array(&arr);
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"column 4 \"c4\" (array of int): element 2: value is in field text, not int");
	elems[1] = v_toast();
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"element 2: array element is an unchanged TOAST marker");
	row[3] = v_null();

	row[4] = v_uuid(uuid, 15);
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"column 5 \"c5\" (uuid): uuid has 15 bytes, not 16");
	row[4] = v_null();

	num.digits = digits;
	num.n_digits = 2;
	row[2] = v_numeric(&num);
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"column 3 \"c3\" (numeric): numeric digit 2 is 10000, not below 10000");
	digits[1] = 9999;
	num.weight = 40000;
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"numeric weight 40000 or dscale 0 is out of range");
	num.weight = 0;
	num.dscale = 16384;
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"numeric weight 0 or dscale 16384 is out of range");
	num.dscale = 0;
	num.special = (Dsplug__NumericSpecial) 7;
	expect_change_error(zstd, ins, NULL, 0, row, TEST_NCOLS,
						"numeric has unknown special value 7");

	/* time, in a relation of its own */
	{
		static const int tk[1] = {DSPLUG__KIND__KIND_TIME};
		Dsplug__Value tv[1];

		session_init(&s, zstd);
		put_begin(&s, 42, 1, 0);
		put_relation(&s, 9, "tm", 1, tk, NULL, 0);
		tv[0] = v_time(-1);
		put_change(&s, ins, 9, NULL, 0, tv, 1);
		session_flush(&s);
		expect_error(&s, "record 2 (insert of relation 9): new tuple, column 1 \"c1\" (time): time of -1 microseconds is outside a day");
	}
}

/*
 * Nesting deep enough to overflow protobuf-c's recursion, as a crafted
 * frame could: Value { array { elements { array ... } } }.
 */
static void
nesting_error(bool zstd)
{
	Buf			v = {0};
	Buf			next = {0};
	Buf			rec = {0};
	Session		s;

	for (int depth = 0; depth < 1000; depth++)
	{
		Buf			arr = {0};

		buf_put_field(&arr, 1, v.data, v.len);	/* Array.elements */
		next.len = 0;
		buf_put_field(&next, 16, arr.data, arr.len);	/* Value.array */
		buf_free(&arr);
		{
			Buf			tmp = v;

			v = next;
			next = tmp;
		}
	}
	{
		Buf			tuple = {0};
		Buf			change = {0};

		buf_put_field(&tuple, 1, v.data, v.len);
		buf_put_varint(&change, 1 << 3);
		buf_put_varint(&change, TEST_OID);
		buf_put_field(&change, 3, tuple.data, tuple.len);
		buf_put_field(&rec, 2, change.data, change.len);
		buf_free(&tuple);
		buf_free(&change);
	}
	open_txn(&s, zstd);
	buf_put_field(&s.batch, 2, rec.data, rec.len);
	session_flush(&s);
	expect_error(&s, "batch nests messages more than 32 deep");
	buf_free(&v);
	buf_free(&next);
	buf_free(&rec);
}

/* Is s valid UTF-8 without control characters? */
static bool
clean_line(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	while (*p)
	{
		int			n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 :
		(*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;

		if (n < 0 || *p < 0x20 || *p == 0x7F)
			return false;
		p++;
		while (n-- > 0)
		{
			if ((*p & 0xC0) != 0x80)
				return false;
			p++;
		}
	}
	return true;
}

/*
 * A name with a newline and multibyte characters, in an error message cut
 * at every length: always one line of valid UTF-8.
 */
static void
message_hygiene(void)
{
	Session		s;
	Dsplug__Record rec = DSPLUG__RECORD__INIT;
	Dsplug__Relation rel = DSPLUG__RELATION__INIT;
	Dsplug__Column col = DSPLUG__COLUMN__INIT;
	Dsplug__Column *colp = &col;
	TestAlloc	ta;
	char		err[ERRLEN];

	col.name = "\xc3\xa9t\xc3\xa9\n\xe2\x82\xac\x01\xf0\x9f\x98\x80";
	col.kind = (Dsplug__Kind) 99;
	rel.oid = 7;
	rel.n_columns = 1;
	rel.columns = &colp;
	rec.kind_case = DSPLUG__RECORD__KIND_RELATION;
	rec.relation = &rel;
	session_init(&s, true);
	put_begin(&s, 1, 1, 1);
	put_record(&s, &rec);
	session_flush(&s);

	test_alloc_init(&ta);
	for (size_t len = 1; len < 90; len++)
	{
		WireDecoder *dec = wire_decoder_create(&ta.allocator);

		memset(err, 'x', sizeof(err));
		CHECK(wire_decoder_read(dec, s.frames[0].data, s.frames[0].len,
								err, len) == NULL, "bad relation read");
		CHECK(strlen(err) < len && clean_line(err),
			  "message cut at %zu is not one line of UTF-8: %s", len, err);
		if (len == 89)
			CHECK_STR(err, "frame 1: record 1 (relation 7): column 1 \"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\" has unknown kind 99");
		wire_decoder_destroy(dec);
	}
	CHECK(ta.live == 0, "leaked %ld blocks", ta.live);
	session_free(&s);
}

void
test_errors(void)
{
	for (int z = 0; z < 2; z++)
	{
		frame_errors(z == 1);
		batch_errors(z == 1);
		relation_errors(z == 1);
		value_errors(z == 1);
		nesting_error(z == 1);
	}
	zstd_errors();
	message_hygiene();
}
