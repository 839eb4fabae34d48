/*-------------------------------------------------------------------------
 *
 * wire_types.h
 *		Which kind (proto/WIRE.md, "Values") carries the values of a
 *		PostgreSQL type: the one table, used by the plugin to describe the
 *		relations it streams (plugin/encode.c) and by the consumer to
 *		describe the relations it copies (consumer/source/copy.c), so that a
 *		copied row and a streamed one are the same.
 *
 * Type OIDs come from PostgreSQL's catalog/pg_type_d.h, which backend and
 * frontend code can both include.  This header is plain C99.
 *
 * proto/wire_types.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_WIRE_TYPES_H
#define DSPLUG_WIRE_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/pg_type_d.h"
#include "dsplug.pb-c.h"

/* The kind that carries values of type typid (KIND_TEXT for the rest). */
static inline Dsplug__Kind
wire_type_kind(uint32_t typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return DSPLUG__KIND__KIND_INT;
		case FLOAT4OID:
			return DSPLUG__KIND__KIND_FLOAT4;
		case FLOAT8OID:
			return DSPLUG__KIND__KIND_FLOAT8;
		case BOOLOID:
			return DSPLUG__KIND__KIND_BOOL;
		case BYTEAOID:
			return DSPLUG__KIND__KIND_BYTEA;
		case NUMERICOID:
			return DSPLUG__KIND__KIND_NUMERIC;
		case DATEOID:
			return DSPLUG__KIND__KIND_DATE;
		case TIMEOID:
			return DSPLUG__KIND__KIND_TIME;
		case TIMESTAMPOID:
			return DSPLUG__KIND__KIND_TIMESTAMP;
		case TIMESTAMPTZOID:
			return DSPLUG__KIND__KIND_TIMESTAMPTZ;
		case UUIDOID:
			return DSPLUG__KIND__KIND_UUID;
		case JSONOID:
		case JSONBOID:
			return DSPLUG__KIND__KIND_JSON;
		case INTERVALOID:
			return DSPLUG__KIND__KIND_INTERVAL;
		default:
			return DSPLUG__KIND__KIND_TEXT;
	}
}

/*
 * The character types: KIND_TEXT, but their bytes travel rather than an
 * output function's text.
 */
static inline bool
wire_type_is_character(uint32_t typid)
{
	return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID ||
		typid == NAMEOID;
}

/*
 * The kind of a column of type typid, whose element type is elemtype when
 * typid is a true array type (0 otherwise): arrays of typed kinds and of
 * character types are KIND_ARRAY, with *elem_kind their elements' kind;
 * every other array is KIND_TEXT, its output function's text.
 * *elem_kind is KIND_TEXT for anything but KIND_ARRAY.
 */
static inline Dsplug__Kind
wire_column_kind(uint32_t typid, uint32_t elemtype, Dsplug__Kind *elem_kind)
{
	Dsplug__Kind kind = wire_type_kind(typid);

	*elem_kind = DSPLUG__KIND__KIND_TEXT;
	if (kind == DSPLUG__KIND__KIND_TEXT && !wire_type_is_character(typid) &&
		elemtype != 0 &&
		(wire_type_kind(elemtype) != DSPLUG__KIND__KIND_TEXT ||
		 wire_type_is_character(elemtype)))
	{
		*elem_kind = wire_type_kind(elemtype);
		return DSPLUG__KIND__KIND_ARRAY;
	}
	return kind;
}

#endif							/* DSPLUG_WIRE_TYPES_H */
