/*-------------------------------------------------------------------------
 *
 * test_text.c
 *		wire_test: text and JSON renderings (proto/wire_text.c).
 *
 * The expected strings were printed by PostgreSQL 15 itself (numeric_out,
 * float4out/float8out with extra_float_digits 1, time_out, interval_out
 * with IntervalStyle postgres), and the numeric inputs are its numeric_send
 * output for the same values.  Dates and timestamps are PostgreSQL's
 * values in ISO 8601 form (year 0 is 1 BC).
 *
 * regress/unit/test_text.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_test.h"

/* numeric_send output (hex) and numeric_out of the same value */
static const struct
{
	const char *send;
	const char *out;
}			numeric_cases[] = {
	{"0000000000000000", "0"},
	{"0000000000000002", "0.00"},
	{"000200010000000000010929", "12345"},
	{"000200000000000304d21388", "1234.500"},
	{"0001ffff000000021388", "0.50"},
	{"0001ffff400000021388", "-0.50"},
	{"0003000140000004000109291a85", "-12345.6789"},
	{"0001fffb000000140001", "0.00000000000000000001"},
	{"00010001000000000001", "10000"},
	{"00010002000000000001", "100000000"},
	{"000600020000000a000c0d801ed203db198f0834", "1234567890.0987654321"},
	{"00010000400000000001", "-1"},
	{"00000000c0000000", "NaN"},
	{"00000000d0000020", "Infinity"},
	{"00000000f0000020", "-Infinity"},
	{"0001ffff000000040001", "0.0001"},
	{"0001ffff00000003000a", "0.001"},
	{"0004000100000008270f270f270f270f", "99999999.99999999"},
	{"0000000000000003", "0.000"},
	{"00010000000000010001", "1.0"},
	{"0001ffff000000011388", "0.5"},
	{"0002000000000001007b0fa0", "123.4"},
	{"0002000000000004270f270f", "9999.9999"},
	{"0003000100000004000100000001", "10000.0001"},
	{"0001ffff400000040001", "-0.0001"},
};

static const struct
{
	double		value;
	const char *out;
}			float8_cases[] = {
	{0.0, "0"}, {-0.0, "-0"}, {1.5, "1.5"}, {1e20, "1e+20"},
	{1e15, "1e+15"}, {1e14, "100000000000000"},
	{123456789012345.0, "123456789012345"},
	{1234567890123456.0, "1.234567890123456e+15"},
	{0.1, "0.1"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
	{1.7976931348623157e308, "1.7976931348623157e+308"},
	{5e-324, "5e-324"},
	{2.2250738585072014e-308, "2.2250738585072014e-308"},
	{-3.14159, "-3.14159"}, {100, "100"}, {1e100, "1e+100"},
	{3e-5, "3e-05"}, {9007199254740992.0, "9.007199254740992e+15"},
	{0.1 + 0.2, "0.30000000000000004"}, {1.0 / 3, "0.3333333333333333"},
	{1.5e-4, "0.00015"}, {1e22, "1e+22"}, {1e21, "1e+21"},
	{123.456, "123.456"}, {-1e-300, "-1e-300"}, {4.35, "4.35"},
	{2.5e-5, "2.5e-05"}, {12345678901234567890.0, "1.2345678901234567e+19"},
	{NAN, "NaN"}, {INFINITY, "Infinity"}, {-INFINITY, "-Infinity"},
	/* powers of two: PostgreSQL prints the shortest, not the nearest */
	{0x1p-1017, "7.120236347223045e-307"},
	{0x1p-1007, "7.291122019556398e-304"},
};

static const struct
{
	float		value;
	const char *out;
}			float4_cases[] = {
	{1.5f, "1.5"}, {1e20f, "1e+20"}, {0.1f, "0.1"},
	{3.4028235e38f, "3.4028235e+38"}, {1e-45f, "1e-45"},
	{1.1754944e-38f, "1.1754944e-38"}, {100000.0f, "100000"},
	{1000000.0f, "1e+06"}, {123456.0f, "123456"},
	{1234567.0f, "1.234567e+06"}, {0.0001f, "0.0001"},
	{0.00001f, "1e-05"}, {-0.0f, "-0"}, {16777216.0f, "1.6777216e+07"},
	{3.1415927f, "3.1415927"}, {0.3f, "0.3"}, {999999.0f, "999999"},
	{7.038531e-26f, "7.038531e-26"}, {NAN, "NaN"}, {-INFINITY, "-Infinity"},
};

static const struct
{
	int32_t		days;
	const char *out;
}			date_cases[] = {
	{0, "2000-01-01"}, {-1, "1999-12-31"}, {-730119, "0001-01-01"},
	{-730120, "0000-12-31"}, {-746117, "-0043-03-15"},
	{-2451545, "-4713-11-24"}, {2145031948, "5874897-12-31"},
	{59, "2000-02-29"}, {-36465, "1900-03-01"}, {-146038, "1600-02-29"},
	{-10957, "1970-01-01"}, {9131, "2024-12-31"}, {2921939, "9999-12-31"},
	{2921940, "10000-01-01"}, {-693901, "0100-03-01"},
	{-766951, "-0100-02-28"}, {INT32_MIN, "-infinity"},
	{INT32_MAX, "infinity"},
};

static const struct
{
	int64_t		us;
	const char *out;
}			timestamp_cases[] = {
	{INT64_C(-211813488000000000), "-4713-11-24T00:00:00.000000"},
	{INT64_C(9223371331199999999), "294276-12-31T23:59:59.999999"},
	{-1, "1999-12-31T23:59:59.999999"},
	{INT64_C(-946684800000000), "1970-01-01T00:00:00.000000"},
	{0, "2000-01-01T00:00:00.000000"},
	{INT64_C(-63082281600000000), "0001-01-01T00:00:00.000000"},
	{INT64_C(-63082281600500000), "0000-12-31T23:59:59.500000"},
	{INT64_C(762525296000001), "2024-02-29T12:34:56.000001"},
	{INT64_C(-960867740000000), "1969-07-20T20:17:40.000000"},
	{INT64_MIN, "-infinity"}, {INT64_MAX, "infinity"},
};

static const struct
{
	int64_t		us;
	const char *out;
}			time_cases[] = {
	{0, "00:00:00"}, {INT64_C(36000500000), "10:00:00.5"},
	{INT64_C(86400000000), "24:00:00"},
	{INT64_C(45296789012), "12:34:56.789012"}, {500, "00:00:00.0005"},
	{INT64_C(86399999999), "23:59:59.999999"},
};

static const struct
{
	int32_t		months;
	int32_t		days;
	int64_t		us;
	const char *out;
}			interval_cases[] = {
	{0, 0, 0, "00:00:00"},
	{14, 3, INT64_C(14706789000), "1 year 2 mons 3 days 04:05:06.789"},
	{0, -1, INT64_C(7380000000), "-1 days +02:03:00"},
	{1, 0, 0, "1 mon"},
	{-14, 0, 0, "-1 years -2 mons"},
	{0, 0, -1, "-00:00:00.000001"},
	{12, 0, 0, "1 year"},
	{-1, 1, INT64_C(-3600000000), "-1 mons +1 day -01:00:00"},
	{0, 1, 0, "1 day"},
	{0, 0, INT64_C(8640000000000), "2400:00:00"},
	{1, -1, 0, "1 mon -1 days"},
	{-1, -1, 1, "-1 mons -1 days +00:00:00.000001"},
	{0, -3, INT64_C(-14706789000), "-3 days -04:05:06.789"},
	{-13, 5, INT64_C(-60000000), "-1 years -1 mons +5 days -00:01:00"},
	{24, 1, INT64_C(1000000), "2 years 1 day 00:00:01"},
	{11, 0, INT64_C(-500000), "11 mons -00:00:00.5"},
	{0, 0, INT64_C(60000000), "00:01:00"},
	{-12, 0, 0, "-1 years"},
	{INT32_MAX, INT32_MAX, 0, "178956970 years 7 mons 2147483647 days"},
	{INT32_MIN, INT32_MIN, 0, "-178956970 years -8 mons -2147483648 days"},
	{0, 0, INT64_MAX, "2562047788:00:54.775807"},
	{0, 0, -INT64_MAX, "-2562047788:00:54.775807"},
	{0, 0, INT64_MIN, "-2562047788:00:54.775808"},
};

/* The canonical text of a value, in a static buffer. */
static const char *
render(const Dsplug__Value *v, bool json)
{
	static WireText text;
	static bool initialized = false;

	if (!initialized)
	{
		wire_text_init(&text, NULL);
		initialized = true;
	}
	wire_text_reset(&text);
	if (!(json ? wire_text_append_value_json(&text, v, NULL) :
		  wire_text_append_value(&text, v, NULL)))
		return NULL;
	return text.data;
}

/* Build a Numeric from numeric_send bytes given in hex. */
static void
numeric_from_send(const char *hex, Dsplug__Numeric *num, uint32_t *digits)
{
	unsigned int w[64];
	size_t		n = strlen(hex) / 4;
	int			sign;

	for (size_t i = 0; i < n && i < 64; i++)
		sscanf(hex + 4 * i, "%4x", &w[i]);
	dsplug__numeric__init(num);
	num->n_digits = w[0];
	num->weight = (int16_t) w[1];
	sign = (int) w[2];
	num->dscale = w[3];
	num->negative = (sign == 0x4000);
	num->special = sign == 0xC000 ? DSPLUG__NUMERIC_SPECIAL__NUMERIC_NAN :
		sign == 0xD000 ? DSPLUG__NUMERIC_SPECIAL__NUMERIC_POSITIVE_INFINITY :
		sign == 0xF000 ? DSPLUG__NUMERIC_SPECIAL__NUMERIC_NEGATIVE_INFINITY :
		DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE;
	for (size_t i = 0; i < num->n_digits; i++)
		digits[i] = w[4 + i];
	num->digits = digits;
}

static void
test_numeric(void)
{
	Dsplug__Numeric num;
	uint32_t	digits[64];
	Dsplug__Value v;
	char		big[128];

	for (size_t i = 0; i < sizeof(numeric_cases) / sizeof(numeric_cases[0]); i++)
	{
		numeric_from_send(numeric_cases[i].send, &num, digits);
		v = v_numeric(&num);
		CHECK_STR(render(&v, false), numeric_cases[i].out);
	}

	/* 1e100: one digit of weight 25 */
	numeric_from_send("00010019000000000001", &num, digits);
	v = v_numeric(&num);
	big[0] = '1';
	memset(big + 1, '0', 100);
	big[101] = '\0';
	CHECK_STR(render(&v, false), big);
	CHECK_STR(render(&v, true), big);

	/* a negative zero, with or without decimals, has no sign */
	dsplug__numeric__init(&num);
	num.negative = true;
	v = v_numeric(&num);
	CHECK_STR(render(&v, false), "0");
	num.dscale = 2;
	CHECK_STR(render(&v, false), "0.00");

	/* digits beyond dscale are cut, as numeric_out does */
	digits[0] = 1234;
	digits[1] = 5678;
	num.digits = digits;
	num.n_digits = 2;
	num.weight = 0;
	num.negative = false;
	CHECK_STR(render(&v, false), "1234.56");
	/* ... and a negative value cut down to zeros prints no sign */
	digits[0] = 1;
	num.n_digits = 1;
	num.weight = -1;
	num.negative = true;
	CHECK_STR(render(&v, false), "0.00");
	num.dscale = 4;
	CHECK_STR(render(&v, false), "-0.0001");
	/* weight below -1: leading zero groups after the point */
	digits[0] = 5000;
	num.weight = -2;
	num.dscale = 6;
	num.negative = false;
	CHECK_STR(render(&v, false), "0.000050");

	/* JSON: finite numerics are numbers, the rest strings */
	numeric_from_send("0001ffff400000021388", &num, digits);
	CHECK_STR(render(&v, true), "-0.50");
	numeric_from_send("00000000c0000000", &num, digits);
	CHECK_STR(render(&v, true), "\"NaN\"");
	numeric_from_send("00000000f0000020", &num, digits);
	CHECK_STR(render(&v, true), "\"-Infinity\"");
}

static uint64_t
next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void
test_float(void)
{
	Dsplug__Value v;
	uint64_t	rng = 88172645463325252ULL;
	long		bad = 0;

	for (size_t i = 0; i < sizeof(float8_cases) / sizeof(float8_cases[0]); i++)
	{
		v = v_float8(float8_cases[i].value);
		CHECK_STR(render(&v, false), float8_cases[i].out);
	}
	for (size_t i = 0; i < sizeof(float4_cases) / sizeof(float4_cases[0]); i++)
	{
		v = v_float4(float4_cases[i].value);
		CHECK_STR(render(&v, false), float4_cases[i].out);
	}

	v = v_float8(1e20);
	CHECK_STR(render(&v, true), "1e+20");
	v = v_float8(NAN);
	CHECK_STR(render(&v, true), "\"NaN\"");
	v = v_float4(INFINITY);
	CHECK_STR(render(&v, true), "\"Infinity\"");

	/* any bit pattern reads back as itself */
	for (int i = 0; i < 20000; i++)
	{
		uint64_t	bits = next_random(&rng);
		uint32_t	bits4 = (uint32_t) (bits >> 32);
		double		d;
		float		f;
		const char *s;

		memcpy(&d, &bits, sizeof(d));
		memcpy(&f, &bits4, sizeof(f));
		v = v_float8(d);
		s = render(&v, false);
		if (s == NULL || (!isnan(d) && strtod(s, NULL) != d) ||
			(isnan(d) && strcmp(s, "NaN") != 0))
			bad++;
		v = v_float4(f);
		s = render(&v, false);
		if (s == NULL || (!isnan(f) && strtof(s, NULL) != f) ||
			(isnan(f) && strcmp(s, "NaN") != 0))
			bad++;
	}
	CHECK(bad == 0, "%ld random floats did not read back exactly", bad);
}

/*
 * PostgreSQL's j2date (datetime.c), the reference for dates within the
 * range PostgreSQL accepts (julian day 0 onwards).
 */
static void
j2date(int jd, int *year, int *month, int *day)
{
	unsigned int julian;
	unsigned int quad;
	unsigned int extra;
	int			y;

	julian = (unsigned int) jd;
	julian += 32044;
	quad = julian / 146097;
	extra = (julian - quad * 146097) * 4 + 3;
	julian += 60 + quad * 3 + extra / 146097;
	quad = julian / 1461;
	julian -= quad * 1461;
	y = (int) (julian * 4 / 1461);
	julian = ((y != 0) ? ((julian + 305) % 365) : ((julian + 306) % 366)) + 123;
	y += (int) quad * 4;
	*year = y - 4800;
	quad = julian * 2141 / 65536;
	*day = (int) (julian - 7834 * quad / 256);
	*month = (int) ((quad + 10) % 12 + 1);
}

static void
test_datetime(void)
{
	char		buf[WIRE_DATETIME_BUFLEN];
	uint64_t	rng = 0x9E3779B97F4A7C15ULL;
	long		bad = 0;
	Dsplug__Value v;

	for (size_t i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++)
	{
		size_t		n = wire_format_date(buf, date_cases[i].days);

		CHECK_STR(buf, date_cases[i].out);
		CHECK(n == strlen(buf), "length %zu of \"%s\"", n, buf);
	}

	/* every day PostgreSQL accepts agrees with j2date (a sample of them) */
	for (int i = 0; i < 200000; i++)
	{
		int32_t		days = (int32_t) (next_random(&rng) % UINT64_C(2147483494)) - 2451545;
		int			y,
					m,
					d;
		char		want[WIRE_DATETIME_BUFLEN];

		/* j2date numbers years astronomically too: 0 is 1 BC */
		j2date(days + 2451545, &y, &m, &d);
		snprintf(want, sizeof(want), "%s%04d-%02d-%02d",
				 y < 0 ? "-" : "", y < 0 ? -y : y, m, d);
		wire_format_date(buf, days);
		if (strcmp(buf, want) != 0 && bad++ < 5)
			CHECK(false, "day %d: got %s, j2date says %s", days, buf, want);
	}
	CHECK(bad == 0, "%ld days disagree with j2date", bad);

	/* the whole int32 range formats without overflow */
	wire_format_date(buf, INT32_MIN + 1);
	CHECK(buf[0] == '-' && strlen(buf) < 16, "date INT32_MIN+1: %s", buf);
	wire_format_date(buf, INT32_MAX - 1);
	CHECK(buf[0] == '5' && strlen(buf) < 16, "date INT32_MAX-1: %s", buf);

	for (size_t i = 0; i < sizeof(timestamp_cases) / sizeof(timestamp_cases[0]); i++)
	{
		wire_format_timestamp(buf, timestamp_cases[i].us, false);
		CHECK_STR(buf, timestamp_cases[i].out);
	}
	wire_format_timestamp(buf, INT64_C(762525296000001), true);
	CHECK_STR(buf, "2024-02-29T12:34:56.000001Z");
	wire_format_timestamp(buf, INT64_MAX, true);
	CHECK_STR(buf, "infinity");
	wire_format_timestamp(buf, INT64_MIN + 1, true);
	CHECK_STR(buf, "-290278-12-22T19:59:05.224193Z");
	wire_format_timestamp(buf, INT64_MAX - 1, false);
	CHECK_STR(buf, "294277-01-09T04:00:54.775806");

	for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++)
	{
		wire_format_time(buf, time_cases[i].us);
		CHECK_STR(buf, time_cases[i].out);
	}

	for (size_t i = 0; i < sizeof(interval_cases) / sizeof(interval_cases[0]); i++)
	{
		Dsplug__Interval iv = DSPLUG__INTERVAL__INIT;

		iv.months = interval_cases[i].months;
		iv.days = interval_cases[i].days;
		iv.microseconds = interval_cases[i].us;
		v = v_interval(&iv);
		CHECK_STR(render(&v, false), interval_cases[i].out);
	}

	/* through values, and as JSON strings */
	v = v_date(-746117);
	CHECK_STR(render(&v, false), "-0043-03-15");
	CHECK_STR(render(&v, true), "\"-0043-03-15\"");
	v = v_timestamptz(0);
	CHECK_STR(render(&v, true), "\"2000-01-01T00:00:00.000000Z\"");
	v = v_timestamp(INT64_MIN);
	CHECK_STR(render(&v, true), "\"-infinity\"");
	v = v_time(INT64_C(36000500000));
	CHECK_STR(render(&v, true), "\"10:00:00.5\"");
}

static void
test_scalars_and_json(void)
{
	static const uint8_t bytes[] = {0x00, 0xff, 0x10, 0x5c};
	static const uint8_t uuid[16] = {
		0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
		0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11
	};
	Dsplug__Value v;
	Dsplug__Value elems[4];
	Dsplug__Value *elemp[4];
	Dsplug__Array arr = DSPLUG__ARRAY__INIT;
	WireText	t;

	v = v_int(INT64_MIN);
	CHECK_STR(render(&v, false), "-9223372036854775808");
	CHECK_STR(render(&v, true), "-9223372036854775808");
	v = v_bool(true);
	CHECK_STR(render(&v, false), "true");
	v = v_bool(false);
	CHECK_STR(render(&v, true), "false");
	v = v_bytea(bytes, sizeof(bytes));
	CHECK_STR(render(&v, false), "\\x00ff105c");
	CHECK_STR(render(&v, true), "\"\\\\x00ff105c\"");
	v = v_bytea(NULL, 0);
	CHECK_STR(render(&v, false), "\\x");
	v = v_uuid(uuid, sizeof(uuid));
	CHECK_STR(render(&v, false), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	CHECK_STR(render(&v, true), "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
	v = v_text("h\xc3\xa9llo \"q\" \\ \n\t\x01\x1f/");
	CHECK_STR(render(&v, false), "h\xc3\xa9llo \"q\" \\ \n\t\x01\x1f/");
	CHECK_STR(render(&v, true),
			  "\"h\xc3\xa9llo \\\"q\\\" \\\\ \\n\\t\\u0001\\u001f/\"");
	v = v_json("{\"a\": [1, 2]}");
	CHECK_STR(render(&v, false), "{\"a\": [1, 2]}");
	CHECK_STR(render(&v, true), "{\"a\": [1, 2]}");
	{
		WireText	t2;

		/* empty bytes arrive as a NULL pointer */
		wire_text_init(&t2, NULL);
		CHECK(wire_text_append_json_string(&t2, NULL, 0) &&
			  wire_text_append(&t2, NULL, 0) &&
			  strcmp(t2.data, "\"\"") == 0, "empty JSON string: %s", t2.data);
		wire_text_free(&t2);
	}
	v = v_null();
	CHECK_STR(render(&v, true), "null");
	CHECK_STR(render(&v, false), "");
	v = v_toast();
	CHECK_STR(render(&v, true), "null");
	{
		WireText	t2;

		wire_text_init(&t2, NULL);
		CHECK(wire_text_append_value_json(&t2, NULL, NULL) &&
			  strcmp(t2.data, "null") == 0, "NULL value pointer: %s", t2.data);
		wire_text_free(&t2);
	}

	/* arrays: JSON arrays of the elements' JSON, as text too */
	elems[0] = v_int(1);
	elems[1] = v_null();
	elems[2] = v_int(-3);
	for (int i = 0; i < 4; i++)
		elemp[i] = &elems[i];
	arr.elements = elemp;
	arr.n_elements = 3;
	v = v_array(&arr);
	CHECK_STR(render(&v, false), "[1, null, -3]");
	CHECK_STR(render(&v, true), "[1, null, -3]");
	elems[0] = v_text("a,b");
	elems[1] = v_text("\"");
	arr.n_elements = 2;
	CHECK_STR(render(&v, true), "[\"a,b\", \"\\\"\"]");
	arr.n_elements = 0;
	CHECK_STR(render(&v, true), "[]");
	/* an array column carrying text (another shape) */
	v = v_text("[0:1]={1,2}");
	CHECK_STR(render(&v, true), "\"[0:1]={1,2}\"");

	/* an append that cannot get memory leaves the text as it was */
	{
		TestAlloc	ta;

		test_alloc_init(&ta);
		wire_text_init(&t, &ta.allocator);
		CHECK(wire_text_append(&t, "abc", 3), "append");
		ta.fail_at = ta.total;
		elems[0] = v_text("a long enough string to need more than sixty-four bytes of room, surely");
		arr.n_elements = 1;
		v = v_array(&arr);
		CHECK(!wire_text_append_value_json(&t, &v, NULL), "append under OOM");
		CHECK_STR(t.data, "abc");
		CHECK(t.len == 3, "len %zu", t.len);
		ta.fail_at = -1;
		CHECK(wire_text_append_value_json(&t, &v, NULL), "append after OOM");
		wire_text_reset(&t);
		CHECK(t.len == 0 && t.data[0] == '\0', "reset");
		wire_text_free(&t);
		CHECK(ta.live == 0, "WireText leaked %ld blocks", ta.live);
	}
}

void
test_text(void)
{
	test_numeric();
	test_float();
	test_datetime();
	test_scalars_and_json();
}
