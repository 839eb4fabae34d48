/*-------------------------------------------------------------------------
 *
 * test_fuzz.c
 *		wire_test: mutated sessions and failing allocations.
 *
 * The decoder reads frames a network or a table handed it, so whatever
 * the bytes, a read must end in a batch or in an error message: never a
 * crash, a hang, an out-of-bounds access (the sanitizers watch) or a leak
 * (the counting allocator watches).  Valid sessions of every value kind
 * are mutated the ways transports and bugs damage data: bit flips, lost
 * and extra bytes, cut frames, and frames lost, repeated or reordered;
 * most mutated sessions are given valid checksums again, so that what is
 * behind the checksum is fuzzed too.
 * Then every allocation of a valid read is made to fail in turn.
 *
 * regress/unit/test_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_test.h"

#define ERRLEN 512

typedef struct Frames
{
	Buf		   *f;
	size_t		n;
	size_t		cap;
} Frames;

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t
rnd_below(size_t n)
{
	return n > 0 ? (size_t) (rnd() % n) : 0;
}

/* A session with a column of every kind, and arrays of several kinds. */
static void
write_kinds_session(Session *s)
{
	static const int kinds[18] = {
		DSPLUG__KIND__KIND_TEXT, DSPLUG__KIND__KIND_INT,
		DSPLUG__KIND__KIND_FLOAT4, DSPLUG__KIND__KIND_FLOAT8,
		DSPLUG__KIND__KIND_BOOL, DSPLUG__KIND__KIND_BYTEA,
		DSPLUG__KIND__KIND_NUMERIC, DSPLUG__KIND__KIND_DATE,
		DSPLUG__KIND__KIND_TIME, DSPLUG__KIND__KIND_TIMESTAMP,
		DSPLUG__KIND__KIND_TIMESTAMPTZ, DSPLUG__KIND__KIND_UUID,
		DSPLUG__KIND__KIND_JSON, DSPLUG__KIND__KIND_INTERVAL,
		DSPLUG__KIND__KIND_ARRAY, DSPLUG__KIND__KIND_ARRAY,
		DSPLUG__KIND__KIND_ARRAY, DSPLUG__KIND__KIND_ARRAY
	};
	static const int elems[18] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		DSPLUG__KIND__KIND_NUMERIC, DSPLUG__KIND__KIND_TEXT,
		DSPLUG__KIND__KIND_TIMESTAMPTZ, DSPLUG__KIND__KIND_INTERVAL
	};
	static const uint8_t uuid[16] = {0xde, 0xad, 0xbe, 0xef};
	uint32_t	digits[3] = {1, 2345, 6700};
	Dsplug__Numeric num = DSPLUG__NUMERIC__INIT;
	Dsplug__Interval iv = DSPLUG__INTERVAL__INIT;
	Dsplug__Value ev[4][2];
	Dsplug__Value *ep[4][2];
	Dsplug__Array arr[4];
	Dsplug__Value row[18];

	num.digits = digits;
	num.n_digits = 3;
	num.weight = 1;
	num.dscale = 4;
	num.negative = true;
	iv.months = -14;
	iv.days = 3;
	iv.microseconds = -1;
	ev[0][0] = v_numeric(&num);
	ev[0][1] = v_null();
	ev[1][0] = v_text("q\"uote");
	ev[1][1] = v_text("");
	ev[2][0] = v_timestamptz(INT64_MIN);
	ev[2][1] = v_timestamptz(-1);
	ev[3][0] = v_interval(&iv);
	ev[3][1] = v_null();
	for (int a = 0; a < 4; a++)
	{
		dsplug__array__init(&arr[a]);
		ep[a][0] = &ev[a][0];
		ep[a][1] = &ev[a][1];
		arr[a].elements = ep[a];
		arr[a].n_elements = 2;
	}

	row[0] = v_text("t\xc3\xa9xt\n");
	row[1] = v_int(-42);
	row[2] = v_float4(1.5f);
	row[3] = v_float8(-1e300);
	row[4] = v_bool(true);
	row[5] = v_bytea("\x00\x01\\", 3);
	row[6] = v_numeric(&num);
	row[7] = v_date(INT32_MIN);
	row[8] = v_time(INT64_C(86400000000));
	row[9] = v_timestamp(INT64_C(9223371331199999999));
	row[10] = v_timestamptz(0);
	row[11] = v_uuid(uuid, 16);
	row[12] = v_json("[1, {\"a\": null}]");
	row[13] = v_interval(&iv);
	for (int a = 0; a < 4; a++)
		row[14 + a] = v_array(&arr[a]);

	for (uint32_t xid = 1; xid <= 4; xid++)
	{
		put_begin(s, xid, xid * 0x100, xid);
		if (xid == 1 || xid == 3)
			put_relation(s, 20000, "kinds", 18, kinds, elems, (int) xid - 1);
		put_change(s, DSPLUG__RECORD__KIND_INSERT, 20000, NULL, 0, row, 18);
		put_change(s, DSPLUG__RECORD__KIND_UPDATE, 20000, row, 18, row, 18);
		if (xid == 2)
		{
			session_flush(s);
			put_first_position(s, 2);
		}
		put_change(s, DSPLUG__RECORD__KIND_DELETE, 20000, row, 18, NULL, 0);
		put_commit(s, xid * 0x100 + 0x10);
		session_flush(s);
		row[1] = v_int(xid);
		row[15] = v_text("{{1,2},{3,4}}");
	}
}

static void
frames_copy(Frames *dst, const Session *s)
{
	dst->n = 0;
	for (size_t i = 0; i < s->nframes; i++)
	{
		if (dst->n == dst->cap)
		{
			dst->cap = dst->cap ? dst->cap * 2 : 16;
			dst->f = realloc(dst->f, dst->cap * sizeof(Buf));
			if (dst->f == NULL)
				abort();
		}
		memset(&dst->f[dst->n], 0, sizeof(Buf));
		buf_put(&dst->f[dst->n], s->frames[i].data, s->frames[i].len);
		dst->n++;
	}
}

static void
frames_free(Frames *fr)
{
	for (size_t i = 0; i < fr->n; i++)
		buf_free(&fr->f[i]);
	free(fr->f);
	memset(fr, 0, sizeof(Frames));
}

/* One random damage to a session's frames. */
static void
mutate(Frames *fr)
{
	size_t		i = rnd_below(fr->n);
	Buf		   *b = &fr->f[i];
	size_t		pos = rnd_below(b->len);
	uint8_t		byte = (uint8_t) rnd();

	switch (rnd_below(10))
	{
		case 0:
			if (b->len > 0)
				b->data[pos] ^= (uint8_t) (1 << rnd_below(8));
			break;
		case 1:
			if (b->len > 0)
				b->data[pos] = byte;
			break;
		case 2:
			b->len = rnd_below(b->len + 1);
			break;
		case 3:
			buf_put(b, &byte, 1);
			memmove(b->data + pos + 1, b->data + pos, b->len - pos - 1);
			b->data[pos] = byte;
			break;
		case 4:
			if (b->len > 0)
			{
				memmove(b->data + pos, b->data + pos + 1, b->len - pos - 1);
				b->len--;
			}
			break;
		case 5:
			if (b->len >= 2)
				b->data[rnd_below(2)] ^= (uint8_t) (1 << rnd_below(8));
			break;
		case 6:
			if (fr->n > 1)
			{
				buf_free(b);
				memmove(b, b + 1, (fr->n - i - 1) * sizeof(Buf));
				fr->n--;
			}
			break;
		case 7:
			if (fr->n < fr->cap)
			{
				Buf			copy = {0};

				buf_put(&copy, b->data, b->len);
				memmove(b + 1, b, (fr->n - i) * sizeof(Buf));
				fr->f[i] = copy;
				fr->n++;
			}
			break;
		case 8:
			{
				size_t		j = rnd_below(fr->n);
				Buf			tmp = fr->f[j];

				fr->f[j] = *b;
				*b = tmp;
				break;
			}
		default:
			for (size_t k = rnd_below(16) + 1; k > 0; k--)
			{
				byte = (uint8_t) rnd();
				buf_put(b, &byte, 1);
			}
			break;
	}
}

/*
 * Read every frame until one fails; a failure must come with a message.
 * Returns whether every frame decoded.
 */
static bool
feed(WireDecoder *dec, const Frames *fr)
{
	char		err[ERRLEN];

	for (size_t i = 0; i < fr->n; i++)
	{
		const WireBatch *wb;

		memset(err, 0, sizeof(err));
		wb = wire_decoder_read(dec, fr->f[i].data, fr->f[i].len, err, sizeof(err));
		if (wb == NULL)
		{
			CHECK(err[0] != '\0', "frame %zu failed without a message", i + 1);
			CHECK(strncmp(err, "frame ", 6) == 0, "message: %s", err);
			return false;
		}
		render_batch(wb);
	}
	return true;
}

static void
fuzz_sessions(Session *corpus, size_t ncorpus, long iterations)
{
	TestAlloc	ta;
	WireDecoder *dec;
	Frames		fr = {0};
	long		passed = 0;
	long		failed = 0;

	test_alloc_init(&ta);
	dec = wire_decoder_create(&ta.allocator);
	for (long it = 0; it < iterations; it++)
	{
		frames_copy(&fr, &corpus[rnd_below(ncorpus)]);
		for (size_t m = rnd_below(3) + 1; m > 0; m--)
			mutate(&fr);

		/*
		 * Mostly past the checksum, which refuses all of the damage above
		 * but repeated session starts (test_checksum.c): what is behind it
		 * must hold on its own, against bugs that sign bad frames.
		 */
		if (rnd_below(4) != 0)
			frames_reseal(fr.f, fr.n);
		wire_decoder_reset(dec);
		if (feed(dec, &fr))
			passed++;
		else
			failed++;
		for (size_t i = 0; i < fr.n; i++)
			buf_free(&fr.f[i]);
		fr.n = 0;

		/* now and then a fresh decoder, to check nothing leaks between */
		if (it % 500 == 499)
		{
			wire_decoder_destroy(dec);
			CHECK(ta.live == 0, "fuzz: decoder leaked %ld blocks", ta.live);
			dec = wire_decoder_create(&ta.allocator);
		}
	}
	wire_decoder_destroy(dec);
	frames_free(&fr);
	CHECK(ta.live == 0, "fuzz: decoder leaked %ld blocks", ta.live);
	CHECK(iterations == 0 || failed > iterations / 4,
		  "fuzz: only %ld of %ld mutated sessions failed", failed, iterations);
	printf("fuzz: %ld mutated sessions, %ld decoded whole, %ld refused\n",
		   iterations, passed, failed);
}

/*
 * Make each allocation of a whole session's read fail in turn: every read
 * must still end cleanly, and nothing may leak.
 */
static void
failing_allocations(const Session *s)
{
	TestAlloc	ta;
	WireDecoder *dec;
	Frames		fr = {0};
	long		needed;
	long		refused = 0;

	frames_copy(&fr, s);
	test_alloc_init(&ta);
	dec = wire_decoder_create(&ta.allocator);
	CHECK(feed(dec, &fr), "clean read of the allocation test session");
	wire_decoder_destroy(dec);
	needed = ta.total;

	for (long k = 0; k < needed; k++)
	{
		test_alloc_init(&ta);
		ta.fail_at = k;
		dec = wire_decoder_create(&ta.allocator);
		if (dec != NULL)
		{
			if (!feed(dec, &fr))
				refused++;
			wire_decoder_destroy(dec);
		}
		else
			refused++;
		CHECK(ta.live == 0, "allocation %ld failing: leaked %ld blocks", k, ta.live);
	}
	CHECK(refused > 0, "no failing allocation made a read fail");
	frames_free(&fr);
}

void
test_fuzz(unsigned long seed, long iterations)
{
	Session		corpus[4];

	rng_state = seed * 2654435761UL + 0x9E3779B97F4A7C15ULL;
	for (int z = 0; z < 2; z++)
	{
		session_init(&corpus[2 * z], z == 1);
		write_reference_session(&corpus[2 * z]);
		session_init(&corpus[2 * z + 1], z == 1);
		write_kinds_session(&corpus[2 * z + 1]);
	}

	/* the unmutated corpus is valid */
	for (int c = 0; c < 4; c++)
	{
		TestAlloc	ta;
		WireDecoder *dec;
		Frames		fr = {0};

		test_alloc_init(&ta);
		dec = wire_decoder_create(&ta.allocator);
		frames_copy(&fr, &corpus[c]);
		CHECK(feed(dec, &fr), "corpus session %d", c);
		frames_free(&fr);
		wire_decoder_destroy(dec);
		CHECK(ta.live == 0, "corpus %d: leaked %ld blocks", c, ta.live);
	}

	fuzz_sessions(corpus, 4, iterations);
	failing_allocations(&corpus[2]);
	failing_allocations(&corpus[3]);

	for (int c = 0; c < 4; c++)
		session_free(&corpus[c]);
}
