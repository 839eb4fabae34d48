/*-------------------------------------------------------------------------
 *
 * wire_test.h
 *		Shared pieces of wire_test, the unit test of proto/wire_decode.c and
 *		proto/wire_text.c: assertions, a counting allocator, and a frame
 *		writer that builds sessions the way the plugin does.
 *
 * regress/unit/wire_test.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WIRE_TEST_H
#define WIRE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zstd.h>

#include "wire_decode.h"
#include "wire_text.h"

/* ---- assertions (wire_test.c) ---- */

extern long test_checks;
extern long test_failures;

extern void test_fail(const char *file, int line, const char *fmt,...)
#if defined(__GNUC__)
			__attribute__((format(printf, 3, 4)))
#endif
			;

#define CHECK(cond, ...) \
	do { \
		test_checks++; \
		if (!(cond)) \
			test_fail(__FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

#define CHECK_STR(got, want) \
	do { \
		const char *got_ = (got); \
		const char *want_ = (want); \
		CHECK(got_ != NULL && strcmp(got_, want_) == 0, \
			  "got \"%s\", want \"%s\"", got_ ? got_ : "(null)", want_); \
	} while (0)

/*
 * An allocator that counts live blocks, so that a test can check nothing
 * leaked, and can refuse one chosen allocation (fail_at, counted from 0;
 * -1 for none) to exercise out-of-memory paths.
 */
typedef struct TestAlloc
{
	WireAllocator allocator;
	long		live;
	long		total;
	long		fail_at;
	long		failed;
} TestAlloc;

extern void test_alloc_init(TestAlloc *ta);

/* ---- frame writer (frames.c) ---- */

typedef struct Buf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} Buf;

extern void buf_put(Buf *b, const void *data, size_t len);
extern void buf_put_varint(Buf *b, uint64_t value);
extern void buf_put_field(Buf *b, uint32_t field, const void *data,
						  size_t len);
extern void buf_free(Buf *b);

/*
 * One session as the plugin writes it: a Batch encoded field by field into
 * batch, written as a frame by session_flush (header, then the batch
 * continued through the session's one zstd stream with ZSTD_e_flush, or
 * as it is).  Frames accumulate in frames[].
 */
typedef struct Session
{
	bool		zstd;
	uint8_t		version;		/* wire version written: the newest */
	bool		started;
	size_t		session_first;	/* frames[] index of the session start */
	ZSTD_CCtx  *cctx;
	Buf			batch;
	Buf		   *frames;
	size_t		nframes;
	size_t		frames_cap;
} Session;

extern void session_init(Session *s, bool zstd);
extern void session_free(Session *s);
extern void session_flush(Session *s);
extern void session_raw_frame(Session *s, uint8_t version, uint8_t flags,
							  const void *payload, size_t len);
extern void session_reseal(Session *s);
extern void frames_reseal(Buf *frames, size_t n);

extern void put_begin(Session *s, uint32_t xid, uint64_t lsn, int64_t time);
extern void put_commit(Session *s, uint64_t end_lsn);
extern void put_first_position(Session *s, uint32_t position);
extern void put_record(Session *s, const Dsplug__Record *rec);
extern void put_relation(Session *s, uint32_t oid, const char *name,
						 size_t ncols, const int *kinds,
						 const int *element_kinds, int identity);
extern void put_change(Session *s, Dsplug__Record__KindCase kind,
					   uint32_t oid, Dsplug__Value *oldv, size_t nold,
					   Dsplug__Value *newv, size_t nnew);
extern void put_truncate(Session *s, const uint32_t *oids, size_t n);
extern void put_message(Session *s, bool transactional, const char *prefix,
						const char *content);

/* The test relation 16384: id int, name text, price numeric, tags int[], u uuid */
#define TEST_OID		16384
#define TEST_NCOLS		5
extern void put_test_relation(Session *s);
extern void test_row(Dsplug__Value *v, int64_t id, const char *name);

/* Value constructors; pointers they take must outlive the value. */
extern Dsplug__Value v_null(void);
extern Dsplug__Value v_toast(void);
extern Dsplug__Value v_int(int64_t x);
extern Dsplug__Value v_text(const char *s);
extern Dsplug__Value v_json(const char *s);
extern Dsplug__Value v_float8(double x);
extern Dsplug__Value v_float4(float x);
extern Dsplug__Value v_bool(bool x);
extern Dsplug__Value v_bytea(const void *data, size_t len);
extern Dsplug__Value v_uuid(const void *data, size_t len);
extern Dsplug__Value v_numeric(Dsplug__Numeric *n);
extern Dsplug__Value v_date(int32_t days);
extern Dsplug__Value v_time(int64_t us);
extern Dsplug__Value v_timestamp(int64_t us);
extern Dsplug__Value v_timestamptz(int64_t us);
extern Dsplug__Value v_interval(Dsplug__Interval *iv);
extern Dsplug__Value v_array(Dsplug__Array *a);

/* ---- shared by the test groups (test_decode.c) ---- */

extern void write_reference_session(Session *s);
extern void render_batch(const WireBatch *wb);

/* ---- the test groups ---- */

extern void test_text(void);
extern void test_decode(void);
extern void test_errors(void);
extern void test_fuzz(unsigned long seed, long iterations);
extern void test_checksum(void);

#endif							/* WIRE_TEST_H */
