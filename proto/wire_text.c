/*-------------------------------------------------------------------------
 *
 * wire_text.c
 *		Text and JSON renderings of dsplug wire values (see wire_text.h for
 *		the rendering of every kind).
 *
 * The goal is that a value reads the same wherever dsplug prints it (the
 * SQL inspection functions, the SQLite and BigQuery sinks) and, where
 * PostgreSQL has an output function for the type, the same as PostgreSQL
 * prints it: numeric_out, time_out, interval_out (IntervalStyle postgres)
 * and byteaout are reproduced here without backend code, since this file
 * is also linked into dsplug-consumer; floats are PostgreSQL's own
 * shortest-decimal (Ryu) code from libpgcommon, which float4out and
 * float8out call when extra_float_digits is above 0.  Dates and
 * timestamps deliberately differ from PostgreSQL's DateStyle output: they
 * are ISO 8601 (a "T", a "Z", astronomical year numbering), which every
 * sink can parse.
 *
 * Every function here is total: whatever a value holds, it renders without
 * overflow or out-of-bounds access.  The results are only meaningful for
 * values the WireDecoder validated, though (a numeric digit above 9999
 * prints as garbage, not as a crash).
 *
 * proto/wire_text.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/shortest_dec.h"
#include "wire_text.h"

#define USECS_PER_SEC		INT64_C(1000000)
#define USECS_PER_MINUTE	INT64_C(60000000)
#define USECS_PER_HOUR		INT64_C(3600000000)
#define USECS_PER_DAY		INT64_C(86400000000)
#define MONTHS_PER_YEAR		12

/* Days from 1970-01-01 (the civil calendar algorithm's origin) to 2000-01-01 */
#define UNIX_TO_POSTGRES_DAYS	10957

/* Room for any float rendering (DOUBLE_SHORTEST_DECIMAL_LEN and more) */
#define FLOAT_BUFLEN		32

static bool text_reserve(WireText *text, size_t extra);
static void text_truncate(WireText *text, size_t len);
static bool append_json_string(WireText *text, const char *s, size_t len);
static bool append_value(WireText *text, const Dsplug__Value *value,
						 const Dsplug__Column *column);
static bool append_value_json(WireText *text, const Dsplug__Value *value,
							  const Dsplug__Column *column);
static bool append_cstr(WireText *text, const char *s);
static bool append_numeric(WireText *text, const Dsplug__Numeric *num);
static bool append_interval(WireText *text, const Dsplug__Interval *iv);
static bool append_hex(WireText *text, const uint8_t *data, size_t len);
static bool append_uuid(WireText *text, const ProtobufCBinaryData *uuid);
static size_t format_year_date(char *buf, int64_t days);
static size_t format_seconds(char *buf, int64_t sec, int64_t usec,
							 bool all_digits);

static char empty_text[1] = "";

/* Write v (0 <= v) as exactly width digits, zero-padded; returns the end. */
static inline char *
put_digits(char *p, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		p[i] = (char) ('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/*
 * Start an empty text.  No memory is taken until something is appended;
 * until then data points to a shared empty string.
 */
void
wire_text_init(WireText *text, const WireAllocator *allocator)
{
	text->data = empty_text;
	text->len = 0;
	text->cap = 0;
	text->allocator = allocator;
}

void
wire_text_reset(WireText *text)
{
	text->len = 0;
	if (text->cap > 0)
		text->data[0] = '\0';
}

/* Give the memory back; the text is then empty and can be used again. */
void
wire_text_free(WireText *text)
{
	if (text->cap > 0)
	{
		if (text->allocator != NULL)
			text->allocator->free(text->allocator->opaque, text->data);
		else
			free(text->data);
	}
	wire_text_init(text, text->allocator);
}

bool
wire_text_append(WireText *text, const char *s, size_t len)
{
	if (!text_reserve(text, len))
		return false;
	if (len > 0)				/* s may be NULL then, as in empty bytes */
		memcpy(text->data + text->len, s, len);
	text->len += len;
	text->data[text->len] = '\0';
	return true;
}

/*
 * The three appends below that may stop half-way (on an allocation failure)
 * cut the text back to where it was, as promised in wire_text.h.
 */
bool
wire_text_append_json_string(WireText *text, const char *s, size_t len)
{
	size_t		start = text->len;

	if (append_json_string(text, s, len))
		return true;
	text_truncate(text, start);
	return false;
}

bool
wire_text_append_value(WireText *text, const Dsplug__Value *value,
					   const Dsplug__Column *column)
{
	size_t		start = text->len;

	if (append_value(text, value, column))
		return true;
	text_truncate(text, start);
	return false;
}

bool
wire_text_append_value_json(WireText *text, const Dsplug__Value *value,
							const Dsplug__Column *column)
{
	size_t		start = text->len;

	if (append_value_json(text, value, column))
		return true;
	text_truncate(text, start);
	return false;
}

/*
 * Quotes, backslashes and control characters are escaped as JSON requires;
 * every other byte is copied, so UTF-8 stays as it is (and bytes that are
 * not UTF-8, from a SQL_ASCII database, pass through unchanged).
 */
static bool
append_json_string(WireText *text, const char *s, size_t len)
{
	size_t		start = 0;

	if (!wire_text_append(text, "\"", 1))
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		char		esc[8];
		const char *rep;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c)
		{
			case '"':
				rep = "\\\"";
				break;
			case '\\':
				rep = "\\\\";
				break;
			case '\b':
				rep = "\\b";
				break;
			case '\f':
				rep = "\\f";
				break;
			case '\n':
				rep = "\\n";
				break;
			case '\r':
				rep = "\\r";
				break;
			case '\t':
				rep = "\\t";
				break;
			default:
				snprintf(esc, sizeof(esc), "\\u%04x", (unsigned int) c);
				rep = esc;
				break;
		}
		if (!wire_text_append(text, s + start, i - start) ||
			!append_cstr(text, rep))
			return false;
		start = i + 1;
	}
	if (len > start && !wire_text_append(text, s + start, len - start))
		return false;
	return wire_text_append(text, "\"", 1);
}

/*
 * The value's own field decides the rendering, so that a KIND_ARRAY column
 * sent as text prints as that text.  column is not needed for that and may
 * be NULL.  An unset value or an unchanged-TOAST marker appends nothing:
 * the caller was to handle both before asking for text.
 */
static bool
append_value(WireText *text, const Dsplug__Value *value,
			 const Dsplug__Column *column)
{
	char		buf[WIRE_DATETIME_BUFLEN];
	size_t		n;

	(void) column;
	switch (value->kind_case)
	{
		case DSPLUG__VALUE__KIND_INT:
			n = (size_t) snprintf(buf, sizeof(buf), "%lld",
								  (long long) value->int_);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_FLOAT4:
			n = (size_t) float_to_shortest_decimal_buf(value->float4, buf);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_FLOAT8:
			n = (size_t) double_to_shortest_decimal_buf(value->float8, buf);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_BOOL:
			return append_cstr(text, value->bool_ ? "true" : "false");
		case DSPLUG__VALUE__KIND_TEXT:
			return append_cstr(text, value->text);
		case DSPLUG__VALUE__KIND_JSON:
			return append_cstr(text, value->json);
		case DSPLUG__VALUE__KIND_BYTEA:
			return append_cstr(text, "\\x") &&
				append_hex(text, value->bytea.data, value->bytea.len);
		case DSPLUG__VALUE__KIND_NUMERIC:
			return append_numeric(text, value->numeric);
		case DSPLUG__VALUE__KIND_DATE:
			n = wire_format_date(buf, value->date);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_TIME:
			n = wire_format_time(buf, value->time);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_TIMESTAMP:
			n = wire_format_timestamp(buf, value->timestamp, false);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_TIMESTAMPTZ:
			n = wire_format_timestamp(buf, value->timestamptz, true);
			return wire_text_append(text, buf, n);
		case DSPLUG__VALUE__KIND_UUID:
			return append_uuid(text, &value->uuid);
		case DSPLUG__VALUE__KIND_INTERVAL:
			return append_interval(text, value->interval);
		case DSPLUG__VALUE__KIND_ARRAY:
			return append_value_json(text, value, column);
		case DSPLUG__VALUE__KIND_UNCHANGED_TOAST:
		case DSPLUG__VALUE__KIND__NOT_SET:
		default:
			return true;
	}
}

/*
 * Finite numbers are JSON numbers: the canonical texts of INT, FLOAT4,
 * FLOAT8 and NUMERIC are valid JSON number syntax (no leading '+', no
 * leading zeros, a digit on both sides of any point).  NaN and the
 * infinities are not, so they become strings.  An unchanged-TOAST marker
 * renders as null like an unset value; the caller was to handle it first.
 */
static bool
append_value_json(WireText *text, const Dsplug__Value *value,
				  const Dsplug__Column *column)
{
	if (value == NULL)
		return append_cstr(text, "null");

	switch (value->kind_case)
	{
		case DSPLUG__VALUE__KIND__NOT_SET:
		case DSPLUG__VALUE__KIND_UNCHANGED_TOAST:
			return append_cstr(text, "null");
		case DSPLUG__VALUE__KIND_INT:
		case DSPLUG__VALUE__KIND_BOOL:
			return append_value(text, value, column);
		case DSPLUG__VALUE__KIND_FLOAT4:
			if (isfinite(value->float4))
				return append_value(text, value, column);
			break;
		case DSPLUG__VALUE__KIND_FLOAT8:
			if (isfinite(value->float8))
				return append_value(text, value, column);
			break;
		case DSPLUG__VALUE__KIND_NUMERIC:
			if (value->numeric->special == DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE)
				return append_value(text, value, column);
			break;
		case DSPLUG__VALUE__KIND_JSON:
			/* PostgreSQL never stores empty JSON; keep the output valid */
			return append_cstr(text, value->json[0] != '\0' ? value->json : "null");
		case DSPLUG__VALUE__KIND_TEXT:
			return append_json_string(text, value->text,
									  strlen(value->text));
		case DSPLUG__VALUE__KIND_BYTEA:
			/* the canonical text's backslash, escaped */
			return append_cstr(text, "\"\\\\x") &&
				append_hex(text, value->bytea.data, value->bytea.len) &&
				append_cstr(text, "\"");
		case DSPLUG__VALUE__KIND_ARRAY:
			if (!append_cstr(text, "["))
				return false;
			for (size_t i = 0; i < value->array->n_elements; i++)
			{
				if ((i > 0 && !append_cstr(text, ", ")) ||
					!append_value_json(text, value->array->elements[i],
									   column))
					return false;
			}
			return append_cstr(text, "]");
		default:
			break;
	}

	/*
	 * Everything else is a string of its canonical text (dates, times,
	 * uuids, intervals, NaN and infinities), which has no character JSON
	 * needs to escape: render it in place between quotes.
	 */
	return append_cstr(text, "\"") &&
		append_value(text, value, column) &&
		append_cstr(text, "\"");
}

/*
 * days since 2000-01-01 as YYYY-MM-DD, astronomical year numbering (year 0
 * is 1 BC, -0043 is 44 BC), proleptic Gregorian as PostgreSQL's j2date.
 */
size_t
wire_format_date(char *buf, int32_t days)
{
	if (days == INT32_MIN)
		return (size_t) snprintf(buf, WIRE_DATETIME_BUFLEN, "-infinity");
	if (days == INT32_MAX)
		return (size_t) snprintf(buf, WIRE_DATETIME_BUFLEN, "infinity");
	return format_year_date(buf, days);
}

/*
 * Microseconds since midnight as PostgreSQL's time_out prints them:
 * HH:MM:SS, then a fraction with trailing zeros removed; 24:00:00 is a
 * valid time.  Values outside a day (never sent by the plugin) still print
 * sensibly, with more hours or a minus sign.
 */
size_t
wire_format_time(char *buf, int64_t microseconds)
{
	uint64_t	abs_us;
	size_t		n = 0;

	if (microseconds < 0)
	{
		buf[n++] = '-';
		abs_us = (uint64_t) 0 - (uint64_t) microseconds;
	}
	else
		abs_us = (uint64_t) microseconds;

	n += (size_t) snprintf(buf + n, WIRE_DATETIME_BUFLEN - n, "%02llu:%02llu:",
						   (unsigned long long) (abs_us / USECS_PER_HOUR),
						   (unsigned long long) (abs_us / USECS_PER_MINUTE % 60));
	n += format_seconds(buf + n, (int64_t) (abs_us / USECS_PER_SEC % 60),
						(int64_t) (abs_us % USECS_PER_SEC), false);
	return n;
}

/*
 * Microseconds since 2000-01-01 00:00:00 as YYYY-MM-DDTHH:MM:SS.ffffff
 * (with a Z when utc_suffix), or infinity/-infinity.  Every other int64 is
 * a valid input: PostgreSQL's range (4713 BC to 294276 AD) and beyond.
 */
size_t
wire_format_timestamp(char *buf, int64_t microseconds, bool utc_suffix)
{
	int64_t		days;
	int64_t		time;
	size_t		n;

	if (microseconds == INT64_MIN)
		return (size_t) snprintf(buf, WIRE_DATETIME_BUFLEN, "-infinity");
	if (microseconds == INT64_MAX)
		return (size_t) snprintf(buf, WIRE_DATETIME_BUFLEN, "infinity");

	/* floor division: 1999-12-31 23:59:59 is -1 s, day -1 at 86399 s */
	days = microseconds / USECS_PER_DAY;
	time = microseconds % USECS_PER_DAY;
	if (time < 0)
	{
		days--;
		time += USECS_PER_DAY;
	}

	n = format_year_date(buf, days);
	{
		char	   *p = buf + n;

		*p++ = 'T';
		p = put_digits(p, (uint64_t) (time / USECS_PER_HOUR), 2);
		*p++ = ':';
		p = put_digits(p, (uint64_t) (time / USECS_PER_MINUTE % 60), 2);
		*p++ = ':';
		p = put_digits(p, (uint64_t) (time / USECS_PER_SEC % 60), 2);
		*p++ = '.';
		p = put_digits(p, (uint64_t) (time % USECS_PER_SEC), 6);
		*p = '\0';
		n = (size_t) (p - buf);
	}
	if (utc_suffix)
	{
		buf[n++] = 'Z';
		buf[n] = '\0';
	}
	return n;
}

/*
 * Make room for extra more bytes and the terminating NUL.  Memory is only
 * ever replaced by a larger block, so after a failure the text still holds
 * what it had.
 */
static bool
text_reserve(WireText *text, size_t extra)
{
	size_t		need;
	size_t		newcap;
	char	   *newdata;

	if (extra > SIZE_MAX - text->len - 1)
		return false;
	need = text->len + extra + 1;
	if (need <= text->cap)
		return true;

	newcap = text->cap > 0 ? text->cap : 64;
	while (newcap < need)
		newcap = (newcap > SIZE_MAX / 2) ? need : newcap * 2;

	if (text->allocator != NULL)
		newdata = text->allocator->alloc(text->allocator->opaque, newcap);
	else
		newdata = malloc(newcap);
	if (newdata == NULL)
		return false;

	memcpy(newdata, text->data, text->len + 1);
	if (text->cap > 0)
	{
		if (text->allocator != NULL)
			text->allocator->free(text->allocator->opaque, text->data);
		else
			free(text->data);
	}
	text->data = newdata;
	text->cap = newcap;
	return true;
}

static void
text_truncate(WireText *text, size_t len)
{
	text->len = len;
	if (text->cap > 0)
		text->data[len] = '\0';
}

static bool
append_cstr(WireText *text, const char *s)
{
	return wire_text_append(text, s, strlen(s));
}

/*
 * PostgreSQL's numeric_out (get_str_from_var) on the sent digits: every
 * base-10000 digit up to the weight, the first without leading zeros, then
 * exactly dscale decimals, truncated or zero-filled.  Unlike a negative
 * numeric in the backend (which make_result normalizes), a negative value
 * whose printed digits are all zero gets no sign, so "-0" never appears.
 */
static bool
append_numeric(WireText *text, const Dsplug__Numeric *num)
{
	int64_t		weight = num->weight;
	int64_t		d;
	size_t		room;
	size_t		start;
	char	   *first;
	char	   *cp;
	bool		nonzero = false;

	switch (num->special)
	{
		case DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE:
			break;
		case DSPLUG__NUMERIC_SPECIAL__NUMERIC_NAN:
			return append_cstr(text, "NaN");
		case DSPLUG__NUMERIC_SPECIAL__NUMERIC_POSITIVE_INFINITY:
			return append_cstr(text, "Infinity");
		case DSPLUG__NUMERIC_SPECIAL__NUMERIC_NEGATIVE_INFINITY:
			return append_cstr(text, "-Infinity");
		default:
			return append_cstr(text, "NaN");
	}

	/* sign, integer digits, point, decimals and a group's overrun */
	room = 1 + (weight >= 0 ? (size_t) (weight + 1) * 4 : 1) + 1 +
		(size_t) num->dscale + 4;
	if (!text_reserve(text, room))
		return false;
	start = text->len;
	first = text->data + start + 1;
	cp = first;

	if (weight < 0)
	{
		d = weight + 1;
		*cp++ = '0';
	}
	else
	{
		for (d = 0; d <= weight; d++)
		{
			uint32_t	dig = (d < (int64_t) num->n_digits) ? num->digits[d] : 0;
			bool		putit = (d > 0);
			uint32_t	d1;

			d1 = dig / 1000;
			dig -= d1 * 1000;
			putit |= (d1 > 0);
			if (putit)
				*cp++ = (char) (d1 + '0');
			d1 = dig / 100;
			dig -= d1 * 100;
			putit |= (d1 > 0);
			if (putit)
				*cp++ = (char) (d1 + '0');
			d1 = dig / 10;
			dig -= d1 * 10;
			putit |= (d1 > 0);
			if (putit)
				*cp++ = (char) (d1 + '0');
			*cp++ = (char) (dig + '0');
		}
	}

	if (num->dscale > 0)
	{
		char	   *endcp;

		*cp++ = '.';
		endcp = cp + num->dscale;
		for (uint32_t i = 0; i < num->dscale; d++, i += 4)
		{
			uint32_t	dig = (d >= 0 && d < (int64_t) num->n_digits) ?
				num->digits[d] : 0;

			*cp++ = (char) (dig / 1000 + '0');
			*cp++ = (char) (dig / 100 % 10 + '0');
			*cp++ = (char) (dig / 10 % 10 + '0');
			*cp++ = (char) (dig % 10 + '0');
		}
		cp = endcp;
	}

	for (const char *p = first; p < cp; p++)
	{
		if (*p >= '1' && *p <= '9')
		{
			nonzero = true;
			break;
		}
	}
	if (num->negative && nonzero)
	{
		first[-1] = '-';
		text->len = (size_t) (cp - text->data);
	}
	else
	{
		memmove(first - 1, first, (size_t) (cp - first));
		text->len = (size_t) (cp - text->data) - 1;
	}
	text->data[text->len] = '\0';
	return true;
}

/*
 * PostgreSQL's interval_out with IntervalStyle postgres (interval2itm and
 * EncodeInterval in datetime.c): nonzero years, mons and days, each with
 * its sign, a "+" on a positive field right after a negative one; then the
 * time, signed as a whole, when nonzero or when nothing else was printed.
 */
static bool
append_interval(WireText *text, const Dsplug__Interval *iv)
{
	int64_t		fields[3];
	static const char *const units[3] = {"year", "mon", "day"};
	int64_t		time = iv->microseconds;
	int64_t		hour = time / USECS_PER_HOUR;
	int64_t		min = time / USECS_PER_MINUTE % 60;
	int64_t		sec = time / USECS_PER_SEC % 60;
	int64_t		usec = time % USECS_PER_SEC;
	bool		is_zero = true;
	bool		is_before = false;
	char		buf[WIRE_DATETIME_BUFLEN];
	size_t		n;

	fields[0] = iv->months / MONTHS_PER_YEAR;
	fields[1] = iv->months % MONTHS_PER_YEAR;
	fields[2] = iv->days;

	for (int i = 0; i < 3; i++)
	{
		if (fields[i] == 0)
			continue;
		n = (size_t) snprintf(buf, sizeof(buf), "%s%s%lld %s%s",
							  is_zero ? "" : " ",
							  (is_before && fields[i] > 0) ? "+" : "",
							  (long long) fields[i], units[i],
							  fields[i] != 1 ? "s" : "");
		if (!wire_text_append(text, buf, n))
			return false;
		is_before = (fields[i] < 0);
		is_zero = false;
	}

	if (is_zero || time != 0)
	{
		n = (size_t) snprintf(buf, sizeof(buf), "%s%s%02lld:%02lld:",
							  is_zero ? "" : " ",
							  time < 0 ? "-" : (is_before ? "+" : ""),
							  (long long) (hour < 0 ? -hour : hour),
							  (long long) (min < 0 ? -min : min));
		n += format_seconds(buf + n, sec < 0 ? -sec : sec,
							usec < 0 ? -usec : usec, false);
		if (!wire_text_append(text, buf, n))
			return false;
	}
	return true;
}

static bool
append_hex(WireText *text, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char	   *cp;

	if (len > (SIZE_MAX - 1) / 2 || !text_reserve(text, len * 2))
		return false;
	cp = text->data + text->len;
	for (size_t i = 0; i < len; i++)
	{
		*cp++ = hex[data[i] >> 4];
		*cp++ = hex[data[i] & 0x0F];
	}
	text->len += len * 2;
	text->data[text->len] = '\0';
	return true;
}

/* 8-4-4-4-12; any other length (never validated) prints as plain hex */
static bool
append_uuid(WireText *text, const ProtobufCBinaryData *uuid)
{
	static const size_t groups[5] = {4, 2, 2, 2, 6};
	size_t		off = 0;

	if (uuid->len != DSPLUG_UUID_SIZE)
		return append_hex(text, uuid->data, uuid->len);
	for (int i = 0; i < 5; i++)
	{
		if ((i > 0 && !append_cstr(text, "-")) ||
			!append_hex(text, uuid->data + off, groups[i]))
			return false;
		off += groups[i];
	}
	return true;
}

/*
 * days since 2000-01-01 as [-]YYYY-MM-DD, years zero-padded to four digits
 * and longer when needed.  The civil-from-days algorithm (H. Hinnant) is
 * exact for any int64 day count, so it agrees with PostgreSQL's j2date over
 * the whole range PostgreSQL accepts and needs no range check.
 */
static size_t
format_year_date(char *buf, int64_t days)
{
	int64_t		z = days + UNIX_TO_POSTGRES_DAYS + 719468;
	int64_t		era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t		doe = z - era * 146097;
	int64_t		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t		mp = (5 * doy + 2) / 153;
	int64_t		day = doy - (153 * mp + 2) / 5 + 1;
	int64_t		month = mp < 10 ? mp + 3 : mp - 9;
	int64_t		year = yoe + era * 400 + (month <= 2);

	if (year >= 0 && year <= 9999)
	{
		char	   *p = put_digits(buf, (uint64_t) year, 4);

		*p++ = '-';
		p = put_digits(p, (uint64_t) month, 2);
		*p++ = '-';
		p = put_digits(p, (uint64_t) day, 2);
		*p = '\0';
		return 10;
	}
	if (year < 0)
		return (size_t) snprintf(buf, WIRE_DATETIME_BUFLEN, "-%04lld-%02d-%02d",
								 (long long) -year, (int) month, (int) day);
	return (size_t) snprintf(buf, WIRE_DATETIME_BUFLEN, "%04lld-%02d-%02d",
							 (long long) year, (int) month, (int) day);
}

/*
 * SS, then the fraction: all six digits when all_digits, otherwise without
 * trailing zeros and none at all for whole seconds (AppendSeconds in
 * PostgreSQL's datetime.c).  sec and usec are not negative.
 */
static size_t
format_seconds(char *buf, int64_t sec, int64_t usec, bool all_digits)
{
	int			n;

	if (all_digits)
		return (size_t) snprintf(buf, 16, "%02d.%06d", (int) sec, (int) usec);
	if (usec == 0)
		return (size_t) snprintf(buf, 16, "%02d", (int) sec);

	n = snprintf(buf, 16, "%02d.%06d", (int) sec, (int) usec);
	while (buf[n - 1] == '0')
		n--;
	buf[n] = '\0';
	return (size_t) n;
}
