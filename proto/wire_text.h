/*-------------------------------------------------------------------------
 *
 * wire_text.h
 *		Text and JSON renderings of dsplug wire values, shared by the dsplug
 *		SQL functions and dsplug-consumer's sinks so that both print a value
 *		the same way.
 *
 * The canonical text of a value, by column kind:
 *
 *		INT				decimal
 *		FLOAT4, FLOAT8	shortest text that reads back to the same value;
 *						NaN, Infinity, -Infinity
 *		BOOL			true, false
 *		TEXT, JSON		the string itself
 *		BYTEA			\x followed by lower-case hex, as PostgreSQL prints it
 *		NUMERIC			as PostgreSQL prints it (NaN, Infinity, -Infinity)
 *		DATE			YYYY-MM-DD (ISO 8601: year 0 is 1 BC, negative years
 *						before that); infinity, -infinity
 *		TIME			HH:MM:SS[.ffffff] as PostgreSQL prints it
 *		TIMESTAMP		YYYY-MM-DDTHH:MM:SS.ffffff (always six digits, years
 *						as for DATE); infinity, -infinity
 *		TIMESTAMPTZ		the same in UTC, followed by Z (not after infinities)
 *		UUID			8-4-4-4-12 lower-case hex
 *		INTERVAL		as PostgreSQL prints it with IntervalStyle postgres
 *		ARRAY			the JSON rendering below
 *
 * The JSON rendering: null for NULL; numbers for INT, finite FLOAT4/FLOAT8
 * and finite NUMERIC; true/false for BOOL; JSON values as they are; arrays
 * as JSON arrays; every other value as a JSON string of its canonical text.
 *
 * proto/wire_text.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_WIRE_TEXT_H
#define DSPLUG_WIRE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dsplug.pb-c.h"
#include "wire_decode.h"

/*
 * A growable, always NUL-terminated string.  Memory comes from the
 * allocator (NULL means malloc/free).  After an allocation failure every
 * append returns false and the text keeps what it had.
 */
typedef struct WireText
{
	char	   *data;
	size_t		len;
	size_t		cap;
	const WireAllocator *allocator;
} WireText;

extern void wire_text_init(WireText *text, const WireAllocator *allocator);
extern void wire_text_reset(WireText *text);	/* empty it, keep the memory */
extern void wire_text_free(WireText *text);
extern bool wire_text_append(WireText *text, const char *s, size_t len);

/* Append s as a quoted, escaped JSON string. */
extern bool wire_text_append_json_string(WireText *text, const char *s,
										 size_t len);

/*
 * Append a value's canonical text.  value must be set (not NULL, not an
 * unchanged TOAST marker) and validated against column (as WireDecoder
 * does).
 */
extern bool wire_text_append_value(WireText *text, const Dsplug__Value *value,
								   const Dsplug__Column *column);

/* Append a value's JSON rendering; value may be NULL or unset (SQL NULL). */
extern bool wire_text_append_value_json(WireText *text,
										const Dsplug__Value *value,
										const Dsplug__Column *column);

/*
 * Fixed-size pieces used by sinks that need them on their own.  Each writes
 * a NUL-terminated string into buf (at least WIRE_DATETIME_BUFLEN bytes)
 * and returns its length.
 */
#define WIRE_DATETIME_BUFLEN 64
extern size_t wire_format_date(char *buf, int32_t days);
extern size_t wire_format_time(char *buf, int64_t microseconds);
extern size_t wire_format_timestamp(char *buf, int64_t microseconds,
									bool utc_suffix);

#endif							/* DSPLUG_WIRE_TEXT_H */
