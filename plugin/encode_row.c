/*-------------------------------------------------------------------------
 *
 * encode_row.c
 *		Rows to dsplug.Record bytes: the plugin's hot path.
 *
 * Every published change passes through here, so it writes protobuf
 * directly instead of building protobuf-c message structs and packing them.
 * protobuf-c's packer is reflective and computes each nested message's size
 * again at every level (record, change, tuple, value), which measured at a
 * third of the plugin's time; this writer looks at each value once to size
 * it and once to write it.  The bytes are exactly what protobuf-c would
 * write for the same messages: field numbers are read from the generated
 * descriptors, so proto/dsplug.proto remains the only definition, and every
 * regression test decodes this output with protobuf-c.
 *
 * Compute, check, then write: a record's size is computed in full before
 * its first byte is written, and every write goes through a RowWriter that
 * knows the end of the room reserved for it and raises an ERROR before a
 * byte would land past it.  A sizing mistake therefore fails the change
 * cleanly instead of corrupting the walsender's memory.
 *
 * Values are taken from the Datums without copies where possible (text,
 * bytea and uuid bytes are written straight from the detoasted datum).
 * Sub-messages (numeric, interval, array) and jsonb text are first written
 * to a scratch buffer.  All memory is in the caller's context, which
 * plugin.c resets after every change.
 *
 * plugin/encode_row.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <protobuf-c/protobuf-c.h>

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "dsplug.h"

/*
 * Field numbers of the messages written here, looked up by name in the
 * generated descriptors once per process.
 */
typedef struct RowFields
{
	uint32		record_insert;
	uint32		record_update;
	uint32		record_delete;
	uint32		record_xid;
	uint32		change_relation;
	uint32		change_old;
	uint32		change_new;
	uint32		tuple_values;
	uint32		value_unchanged_toast;
	uint32		value_by_kind[DSPLUG__KIND__KIND_ARRAY + 1];
	uint32		numeric_digits;
	uint32		numeric_weight;
	uint32		numeric_dscale;
	uint32		numeric_negative;
	uint32		numeric_special;
	uint32		interval_microseconds;
	uint32		interval_days;
	uint32		interval_months;
	uint32		array_elements;
} RowFields;

static RowFields fields;
static bool fields_loaded = false;

/*
 * One value, sized and ready to write.  A length-delimited payload is
 * either in the datum (data) or in the scratch buffer (scratch_off), since
 * the scratch buffer may move while later values are encoded.
 */
typedef struct EncValue
{
	uint32		field;			/* Value field; 0 for NULL (empty Value) */
	uint8		wiretype;
	uint64		scalar;			/* varint or fixed payload */
	const char *data;			/* length-delimited payload, or NULL */
	size_t		scratch_off;	/* ... else its offset in the scratch buffer */
	size_t		len;			/* length-delimited payload length */
	size_t		size;			/* encoded size of the Value message */
} EncValue;

/*
 * Where the next byte goes, and the end of the room that was sized for
 * what is being written: nothing is ever written at or past end.
 */
typedef struct RowWriter
{
	char	   *p;
	const char *end;
} RowWriter;

/* Scratch space for one change. */
typedef struct RowScratch
{
	StringInfoData buf;
	bool		ready;
} RowScratch;

static uint32 field_of(const ProtobufCMessageDescriptor *desc, const char *name);
static int	tuple_values(DsplugRelation *entry, TupleTableSlot *slot,
						 RowScratch *scratch, EncValue **values);
static void value_of(const DsplugColumn *col, Datum datum, RowScratch *scratch,
					 EncValue *ev);
static void scalar_of(Dsplug__Kind kind, Oid typid, Datum datum,
					  RowScratch *scratch, EncValue *ev);
static void numeric_of(Datum datum, RowScratch *scratch, EncValue *ev);
static void interval_of(Datum datum, RowScratch *scratch, EncValue *ev);
static bool array_of(const DsplugColumn *col, Datum datum, RowScratch *scratch,
					 EncValue *ev);
static void set_bytes(EncValue *ev, uint32 field, const char *data, size_t len);
static void set_scratch(EncValue *ev, uint32 field, RowScratch *scratch,
						size_t start);
static void set_varint(EncValue *ev, uint32 field, uint64 v);
static void finish_value(EncValue *ev);
static size_t value_size(const EncValue *ev);
static size_t tuple_size(const EncValue *values, int n);
static void write_tuple(RowWriter *w, const EncValue *values, int n,
						size_t size, const RowScratch *scratch);
static void write_value(RowWriter *w, const EncValue *ev,
						const RowScratch *scratch);
static void writer_overrun(const RowWriter *w, size_t need) pg_attribute_noreturn();
static StringInfo scratch_buf(RowScratch *scratch);

/* protobuf wire primitives */
static inline size_t
varint_size(uint64 v)
{
	size_t		n = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		n++;
	}
	return n;
}

static inline char *
put_varint(char *p, uint64 v)
{
	while (v >= 0x80)
	{
		*p++ = (char) ((v & 0x7F) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	return p;
}

/* Room for need more bytes, or an ERROR before anything is written. */
static inline void
w_room(const RowWriter *w, size_t need)
{
	if (unlikely(need > (size_t) (w->end - w->p)))
		writer_overrun(w, need);
}

static inline void
w_varint(RowWriter *w, uint64 v)
{
	w_room(w, varint_size(v));
	w->p = put_varint(w->p, v);
}

/* A fixed32 or fixed64 payload, little-endian. */
static inline void
w_fixed(RowWriter *w, uint64 v, int nbytes)
{
	w_room(w, nbytes);
	for (int b = 0; b < nbytes; b++)
		*w->p++ = (char) (v >> (8 * b));
}

static inline void
w_bytes(RowWriter *w, const char *data, size_t len)
{
	w_room(w, len);
	memcpy(w->p, data, len);
	w->p += len;
}

static inline uint64
tag(uint32 field, uint8 wiretype)
{
	return ((uint64) field << 3) | wiretype;
}

static inline uint64
zigzag64(int64 v)
{
	return ((uint64) v << 1) ^ (uint64) (v >> 63);
}

static inline uint64
zigzag32(int32 v)
{
	return (uint32) (((uint32) v << 1) ^ (uint32) (v >> 31));
}

static void
sb_varint(StringInfo buf, uint64 v)
{
	enlargeStringInfo(buf, 10);
	buf->len = put_varint(buf->data + buf->len, v) - buf->data;
}

/*
 * Load field numbers from the generated descriptors.  Done once: the
 * descriptors are static data of this library.
 */
void
encode_row_init(void)
{
	const ProtobufCMessageDescriptor *v = &dsplug__value__descriptor;
	static const char *const value_fields[] = {
		[DSPLUG__KIND__KIND_TEXT] = "text",
		[DSPLUG__KIND__KIND_INT] = "int",
		[DSPLUG__KIND__KIND_FLOAT4] = "float4",
		[DSPLUG__KIND__KIND_FLOAT8] = "float8",
		[DSPLUG__KIND__KIND_BOOL] = "bool",
		[DSPLUG__KIND__KIND_BYTEA] = "bytea",
		[DSPLUG__KIND__KIND_NUMERIC] = "numeric",
		[DSPLUG__KIND__KIND_DATE] = "date",
		[DSPLUG__KIND__KIND_TIME] = "time",
		[DSPLUG__KIND__KIND_TIMESTAMP] = "timestamp",
		[DSPLUG__KIND__KIND_TIMESTAMPTZ] = "timestamptz",
		[DSPLUG__KIND__KIND_UUID] = "uuid",
		[DSPLUG__KIND__KIND_JSON] = "json",
		[DSPLUG__KIND__KIND_INTERVAL] = "interval",
		[DSPLUG__KIND__KIND_ARRAY] = "array",
	};

	if (fields_loaded)
		return;

	fields.record_insert = field_of(&dsplug__record__descriptor, "insert");
	fields.record_update = field_of(&dsplug__record__descriptor, "update");
	fields.record_delete = field_of(&dsplug__record__descriptor, "delete");
	fields.record_xid = field_of(&dsplug__record__descriptor, "xid");
	fields.change_relation = field_of(&dsplug__change__descriptor, "relation");
	fields.change_old = field_of(&dsplug__change__descriptor, "old");
	fields.change_new = field_of(&dsplug__change__descriptor, "new");
	fields.tuple_values = field_of(&dsplug__tuple__descriptor, "values");
	fields.value_unchanged_toast = field_of(v, "unchanged_toast");
	for (int k = 0; k <= DSPLUG__KIND__KIND_ARRAY; k++)
		fields.value_by_kind[k] = field_of(v, value_fields[k]);
	fields.numeric_digits = field_of(&dsplug__numeric__descriptor, "digits");
	fields.numeric_weight = field_of(&dsplug__numeric__descriptor, "weight");
	fields.numeric_dscale = field_of(&dsplug__numeric__descriptor, "dscale");
	fields.numeric_negative = field_of(&dsplug__numeric__descriptor, "negative");
	fields.numeric_special = field_of(&dsplug__numeric__descriptor, "special");
	fields.interval_microseconds = field_of(&dsplug__interval__descriptor, "microseconds");
	fields.interval_days = field_of(&dsplug__interval__descriptor, "days");
	fields.interval_months = field_of(&dsplug__interval__descriptor, "months");
	fields.array_elements = field_of(&dsplug__array__descriptor, "elements");
	fields_loaded = true;
}

static uint32
field_of(const ProtobufCMessageDescriptor *desc, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(desc, name);

	if (f == NULL)
		elog(ERROR, "%s has no field \"%s\"", desc->name, name);
	return f->id;
}

/*
 * Append an insert, update or delete of entry's published relation to buf
 * as one element of the dsplug.Batch field records_field.  The slots hold
 * rows of the published relation (already converted from a partition's
 * layout); either may be NULL where the change has none.  A valid xid
 * (the subtransaction, in a chunk of a streamed transaction) is written in
 * the record.
 */
void
encode_change(DsplugRelation *entry, Dsplug__Record__KindCase kind,
			  TupleTableSlot *oldtuple, TupleTableSlot *newtuple,
			  TransactionId xid, uint32 records_field, StringInfo buf)
{
	RowScratch	scratch = {{0}};
	EncValue   *oldvals = NULL;
	EncValue   *newvals = NULL;
	size_t		old_size = 0;
	size_t		new_size = 0;
	size_t		change_size;
	size_t		record_size;
	size_t		total;
	uint32		kind_field;
	RowWriter	w;

	switch (kind)
	{
		case DSPLUG__RECORD__KIND_INSERT:
			kind_field = fields.record_insert;
			break;
		case DSPLUG__RECORD__KIND_UPDATE:
			kind_field = fields.record_update;
			break;
		case DSPLUG__RECORD__KIND_DELETE:
			kind_field = fields.record_delete;
			break;
		default:
			elog(ERROR, "dsplug: record kind %d is not a row change", (int) kind);
	}

	/* size everything first: each message's length precedes it ... */
	change_size = varint_size(tag(fields.change_relation, PROTOBUF_C_WIRE_TYPE_VARINT)) +
		varint_size(entry->description.oid);
	if (oldtuple != NULL)
	{
		tuple_values(entry, oldtuple, &scratch, &oldvals);
		old_size = tuple_size(oldvals, entry->ncolumns);
		change_size += varint_size(tag(fields.change_old, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) +
			varint_size(old_size) + old_size;
	}
	if (newtuple != NULL)
	{
		tuple_values(entry, newtuple, &scratch, &newvals);
		new_size = tuple_size(newvals, entry->ncolumns);
		change_size += varint_size(tag(fields.change_new, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) +
			varint_size(new_size) + new_size;
	}
	record_size = varint_size(tag(kind_field, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) +
		varint_size(change_size) + change_size;
	if (TransactionIdIsValid(xid))
		record_size += varint_size(tag(fields.record_xid, PROTOBUF_C_WIRE_TYPE_VARINT)) +
			varint_size(xid);
	total = varint_size(tag(records_field, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) +
		varint_size(record_size) + record_size;

	if (total >= (size_t) (MaxAllocSize - buf->len - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dsplug record of %zu bytes is too large to send", total),
				 errdetail("A single row must encode to less than 1 GB.")));
	enlargeStringInfo(buf, (int) total);

	/* then write, within exactly the room computed */
	w.p = buf->data + buf->len;
	w.end = w.p + total;
	w_varint(&w, tag(records_field, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
	w_varint(&w, record_size);
	w_varint(&w, tag(kind_field, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
	w_varint(&w, change_size);
	w_varint(&w, tag(fields.change_relation, PROTOBUF_C_WIRE_TYPE_VARINT));
	w_varint(&w, entry->description.oid);
	if (oldtuple != NULL)
	{
		w_varint(&w, tag(fields.change_old, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
		w_varint(&w, old_size);
		write_tuple(&w, oldvals, entry->ncolumns, old_size, &scratch);
	}
	if (newtuple != NULL)
	{
		w_varint(&w, tag(fields.change_new, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
		w_varint(&w, new_size);
		write_tuple(&w, newvals, entry->ncolumns, new_size, &scratch);
	}
	if (TransactionIdIsValid(xid))
	{
		w_varint(&w, tag(fields.record_xid, PROTOBUF_C_WIRE_TYPE_VARINT));
		w_varint(&w, xid);
	}
	if (w.p != w.end)
		elog(ERROR, "dsplug: encoded %zu bytes for a record sized %zu",
			 total - (size_t) (w.end - w.p), total);
	buf->len += total;
	buf->data[buf->len] = '\0';
}

/*
 * Size every sent column of a row.  Returns the number of values (the
 * entry's sent columns, possibly none: a table without columns, or whose
 * columns are all dropped); *values is allocated in the current context,
 * one element per value and nothing more, or NULL when there are none.
 */
static int
tuple_values(DsplugRelation *entry, TupleTableSlot *slot, RowScratch *scratch,
			 EncValue **values)
{
	EncValue   *vals = NULL;

	if (entry->ncolumns == 0)
	{
		*values = NULL;
		return 0;
	}
	vals = palloc(sizeof(EncValue) * entry->ncolumns);

	/* the slot also supplies attmissingval for rows older than a column */
	slot_getallattrs(slot);

	for (int i = 0; i < entry->ncolumns; i++)
	{
		const DsplugColumn *col = &entry->columns[i];

		if (slot->tts_isnull[col->attidx])
		{
			vals[i].field = 0;
			vals[i].size = 0;
		}
		else
			value_of(col, slot->tts_values[col->attidx], scratch, &vals[i]);
	}
	*values = vals;
	return entry->ncolumns;
}

/* One non-NULL column value. */
static void
value_of(const DsplugColumn *col, Datum datum, RowScratch *scratch,
		 EncValue *ev)
{
	/*
	 * An on-disk TOAST pointer in a decoded tuple means the value was not
	 * changed and not logged: say so, never fetch or confuse it with NULL.
	 */
	if (col->varlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(datum)))
	{
		set_varint(ev, fields.value_unchanged_toast, 1);
		return;
	}

	if (col->use_output ||
		(col->kind == DSPLUG__KIND__KIND_ARRAY &&
		 !array_of(col, datum, scratch, ev)))
	{
		char	   *s = OutputFunctionCall((FmgrInfo *) &col->output, datum);

		s = text_utf8(s, strlen(s));
		set_bytes(ev, fields.value_by_kind[DSPLUG__KIND__KIND_TEXT], s, strlen(s));
		return;
	}

	if (col->kind != DSPLUG__KIND__KIND_ARRAY)
		scalar_of(col->kind, col->typid, datum, scratch, ev);
}

/*
 * A value of a type with a typed encoding: a column's, or an array
 * element's (which is never an on-disk TOAST pointer).
 */
static void
scalar_of(Dsplug__Kind kind, Oid typid, Datum datum, RowScratch *scratch,
		  EncValue *ev)
{
	uint32		field = fields.value_by_kind[kind];

	switch (kind)
	{
		case DSPLUG__KIND__KIND_INT:
			if (typid == INT2OID)
				set_varint(ev, field, zigzag64(DatumGetInt16(datum)));
			else if (typid == INT4OID)
				set_varint(ev, field, zigzag64(DatumGetInt32(datum)));
			else
				set_varint(ev, field, zigzag64(DatumGetInt64(datum)));
			break;
		case DSPLUG__KIND__KIND_FLOAT4:
			{
				float4		f = DatumGetFloat4(datum);
				uint32		bits;

				memcpy(&bits, &f, sizeof(bits));
				ev->field = field;
				ev->wiretype = PROTOBUF_C_WIRE_TYPE_32BIT;
				ev->scalar = bits;
				finish_value(ev);
				break;
			}
		case DSPLUG__KIND__KIND_FLOAT8:
			{
				float8		f = DatumGetFloat8(datum);
				uint64		bits;

				memcpy(&bits, &f, sizeof(bits));
				ev->field = field;
				ev->wiretype = PROTOBUF_C_WIRE_TYPE_64BIT;
				ev->scalar = bits;
				finish_value(ev);
				break;
			}
		case DSPLUG__KIND__KIND_BOOL:
			set_varint(ev, field, DatumGetBool(datum) ? 1 : 0);
			break;
		case DSPLUG__KIND__KIND_TEXT:
			if (typid == NAMEOID)
			{
				char	   *s = NameStr(*DatumGetName(datum));

				s = text_utf8(s, strlen(s));
				set_bytes(ev, field, s, strlen(s));
			}
			else
			{
				text	   *t = DatumGetTextPP(datum);
				const char *s = VARDATA_ANY(t);
				int			len = VARSIZE_ANY_EXHDR(t);
				int			enc = GetDatabaseEncoding();

				if (enc != PG_UTF8 && enc != PG_SQL_ASCII)
				{
					s = text_utf8(s, len);
					len = strlen(s);
				}
				set_bytes(ev, field, s, len);
			}
			break;
		case DSPLUG__KIND__KIND_BYTEA:
			{
				bytea	   *b = DatumGetByteaPP(datum);

				set_bytes(ev, field, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
				break;
			}
		case DSPLUG__KIND__KIND_NUMERIC:
			numeric_of(datum, scratch, ev);
			break;
		case DSPLUG__KIND__KIND_DATE:
			set_varint(ev, field, zigzag32(DatumGetDateADT(datum)));
			break;
		case DSPLUG__KIND__KIND_TIME:
			set_varint(ev, field, (uint64) DatumGetTimeADT(datum));
			break;
		case DSPLUG__KIND__KIND_TIMESTAMP:
			set_varint(ev, field, zigzag64(DatumGetTimestamp(datum)));
			break;
		case DSPLUG__KIND__KIND_TIMESTAMPTZ:
			set_varint(ev, field, zigzag64(DatumGetTimestampTz(datum)));
			break;
		case DSPLUG__KIND__KIND_UUID:
			set_bytes(ev, field, (const char *) DatumGetUUIDP(datum)->data,
					  UUID_LEN);
			break;
		case DSPLUG__KIND__KIND_JSON:
			if (typid == JSONBOID)
			{
				Jsonb	   *jb = DatumGetJsonbP(datum);
				StringInfo	sb = scratch_buf(scratch);
				size_t		start = sb->len;

				JsonbToCString(sb, &jb->root, VARSIZE(jb));
				if (GetDatabaseEncoding() != PG_UTF8 &&
					GetDatabaseEncoding() != PG_SQL_ASCII)
				{
					char	   *s = text_utf8(sb->data + start, sb->len - start);

					sb->len = start;
					appendBinaryStringInfo(sb, s, strlen(s));
				}
				set_scratch(ev, field, scratch, start);
			}
			else
			{
				text	   *t = DatumGetTextPP(datum);
				const char *s = VARDATA_ANY(t);
				int			len = VARSIZE_ANY_EXHDR(t);

				if (GetDatabaseEncoding() != PG_UTF8 &&
					GetDatabaseEncoding() != PG_SQL_ASCII)
				{
					s = text_utf8(s, len);
					len = strlen(s);
				}
				set_bytes(ev, field, s, len);
			}
			break;
		case DSPLUG__KIND__KIND_INTERVAL:
			interval_of(datum, scratch, ev);
			break;
		default:
			elog(ERROR, "dsplug: no scalar encoding for kind %d", (int) kind);
	}
}

/*
 * numeric's on-disk format, as numeric.c lays it out (stable: pg_upgrade
 * keeps stored numerics readable): a 16-bit header word, then base-10000
 * digits.  The short form packs sign, display scale and weight into the
 * header; the long form has the weight in a second word; the special form
 * marks NaN and the infinities.
 */
#define NUM_SIGN_MASK			0xC000
#define NUM_NEG					0x4000
#define NUM_SHORT				0x8000
#define NUM_SPECIAL				0xC000
#define NUM_EXT_SIGN_MASK		0xF000
#define NUM_NAN					0xC000
#define NUM_PINF				0xD000
#define NUM_NINF				0xF000
#define NUM_DSCALE_MASK			0x3FFF
#define NUM_SHORT_SIGN_MASK		0x2000
#define NUM_SHORT_DSCALE_MASK	0x1F80
#define NUM_SHORT_DSCALE_SHIFT	7
#define NUM_SHORT_WEIGHT_SIGN	0x0040
#define NUM_SHORT_WEIGHT_MASK	0x003F

/* A numeric as a dsplug.Numeric message, written to the scratch buffer. */
static void
numeric_of(Datum datum, RowScratch *scratch, EncValue *ev)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(datum));
	const char *p = VARDATA_ANY(v);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	uint16		header;
	int			special = 0;
	bool		negative = false;
	int			weight = 0;
	int			dscale = 0;
	const int16 *digits;
	int			ndigits;
	StringInfo	sb = scratch_buf(scratch);
	size_t		start = sb->len;

	memcpy(&header, p, sizeof(uint16));
	if ((header & NUM_SIGN_MASK) == NUM_SPECIAL)
	{
		switch (header & NUM_EXT_SIGN_MASK)
		{
			case NUM_NAN:
				special = DSPLUG__NUMERIC_SPECIAL__NUMERIC_NAN;
				break;
			case NUM_PINF:
				special = DSPLUG__NUMERIC_SPECIAL__NUMERIC_POSITIVE_INFINITY;
				break;
			case NUM_NINF:
				special = DSPLUG__NUMERIC_SPECIAL__NUMERIC_NEGATIVE_INFINITY;
				break;
			default:
				elog(ERROR, "dsplug: invalid numeric header 0x%04x", header);
		}
		ndigits = 0;
		digits = NULL;
	}
	else if ((header & NUM_SIGN_MASK) == NUM_SHORT)
	{
		negative = (header & NUM_SHORT_SIGN_MASK) != 0;
		dscale = (header & NUM_SHORT_DSCALE_MASK) >> NUM_SHORT_DSCALE_SHIFT;
		weight = header & NUM_SHORT_WEIGHT_MASK;
		if (header & NUM_SHORT_WEIGHT_SIGN)
			weight |= ~NUM_SHORT_WEIGHT_MASK;
		digits = (const int16 *) (p + sizeof(uint16));
		ndigits = (len - sizeof(uint16)) / sizeof(int16);
	}
	else
	{
		int16		w;

		negative = (header & NUM_SIGN_MASK) == NUM_NEG;
		dscale = header & NUM_DSCALE_MASK;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		weight = w;
		digits = (const int16 *) (p + 2 * sizeof(uint16));
		ndigits = (len - 2 * sizeof(uint16)) / sizeof(int16);
	}

	if (special != 0)
	{
		sb_varint(sb, tag(fields.numeric_special, PROTOBUF_C_WIRE_TYPE_VARINT));
		sb_varint(sb, special);
	}
	else
	{
		if (ndigits > 0)
		{
			size_t		packed = 0;

			for (int i = 0; i < ndigits; i++)
				packed += varint_size((uint16) digits[i]);
			sb_varint(sb, tag(fields.numeric_digits, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
			sb_varint(sb, packed);
			for (int i = 0; i < ndigits; i++)
				sb_varint(sb, (uint16) digits[i]);
			if (weight != 0)
			{
				sb_varint(sb, tag(fields.numeric_weight, PROTOBUF_C_WIRE_TYPE_VARINT));
				sb_varint(sb, zigzag32(weight));
			}
		}
		if (dscale != 0)
		{
			sb_varint(sb, tag(fields.numeric_dscale, PROTOBUF_C_WIRE_TYPE_VARINT));
			sb_varint(sb, dscale);
		}
		if (negative && ndigits > 0)
		{
			sb_varint(sb, tag(fields.numeric_negative, PROTOBUF_C_WIRE_TYPE_VARINT));
			sb_varint(sb, 1);
		}
	}
	set_scratch(ev, fields.value_by_kind[DSPLUG__KIND__KIND_NUMERIC], scratch, start);
}

/* An interval as a dsplug.Interval message, written to the scratch buffer. */
static void
interval_of(Datum datum, RowScratch *scratch, EncValue *ev)
{
	Interval   *iv = DatumGetIntervalP(datum);
	StringInfo	sb = scratch_buf(scratch);
	size_t		start = sb->len;

	if (iv->time != 0)
	{
		sb_varint(sb, tag(fields.interval_microseconds, PROTOBUF_C_WIRE_TYPE_VARINT));
		sb_varint(sb, zigzag64(iv->time));
	}
	if (iv->day != 0)
	{
		sb_varint(sb, tag(fields.interval_days, PROTOBUF_C_WIRE_TYPE_VARINT));
		sb_varint(sb, zigzag32(iv->day));
	}
	if (iv->month != 0)
	{
		sb_varint(sb, tag(fields.interval_months, PROTOBUF_C_WIRE_TYPE_VARINT));
		sb_varint(sb, zigzag32(iv->month));
	}
	set_scratch(ev, fields.value_by_kind[DSPLUG__KIND__KIND_INTERVAL], scratch, start);
}

/*
 * A one-dimensional array with lower bound 1 (or an empty one) as a
 * dsplug.Array message in the scratch buffer.  Returns false for other
 * shapes, which the caller sends as text.
 */
static bool
array_of(const DsplugColumn *col, Datum datum, RowScratch *scratch,
		 EncValue *ev)
{
	ArrayType  *arr = DatumGetArrayTypeP(datum);
	Datum	   *elems;
	bool	   *nulls;
	int			n = 0;
	EncValue   *evs;
	StringInfo	sb;
	size_t		start;
	size_t		content = 0;
	RowWriter	w;

	if (ARR_NDIM(arr) > 1 || (ARR_NDIM(arr) == 1 && ARR_LBOUND(arr)[0] != 1))
		return false;

	if (ARR_NDIM(arr) == 1)
		deconstruct_array(arr, col->elem_typid, col->elem_len,
						  col->elem_byval, col->elem_align,
						  &elems, &nulls, &n);

	/* elements' own sub-messages go to the scratch buffer first */
	evs = (n > 0) ? palloc(sizeof(EncValue) * n) : NULL;
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
		{
			evs[i].field = 0;
			evs[i].size = 0;
		}
		else
			scalar_of(col->elem_kind, col->elem_typid, elems[i], scratch, &evs[i]);
		content += varint_size(tag(fields.array_elements, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) +
			varint_size(evs[i].size) + evs[i].size;
	}

	/* the elements, within exactly the room computed */
	sb = scratch_buf(scratch);
	if (content >= (size_t) (MaxAllocSize - sb->len - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dsplug array value of %zu bytes is too large to send",
						content)));
	enlargeStringInfo(sb, (int) content);
	start = sb->len;
	w.p = sb->data + start;
	w.end = w.p + content;
	for (int i = 0; i < n; i++)
	{
		w_varint(&w, tag(fields.array_elements, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
		w_varint(&w, evs[i].size);
		write_value(&w, &evs[i], scratch);
	}
	if (w.p != w.end)
		elog(ERROR, "dsplug: encoded %zu bytes for an array sized %zu",
			 content - (size_t) (w.end - w.p), content);
	sb->len += content;
	sb->data[sb->len] = '\0';
	set_scratch(ev, fields.value_by_kind[DSPLUG__KIND__KIND_ARRAY], scratch, start);
	return true;
}

static void
set_bytes(EncValue *ev, uint32 field, const char *data, size_t len)
{
	ev->field = field;
	ev->wiretype = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	ev->data = data;
	ev->len = len;
	finish_value(ev);
}

/* The payload is what was appended to the scratch buffer since start. */
static void
set_scratch(EncValue *ev, uint32 field, RowScratch *scratch, size_t start)
{
	ev->field = field;
	ev->wiretype = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	ev->data = NULL;
	ev->scratch_off = start;
	ev->len = scratch->buf.len - start;
	finish_value(ev);
}

static void
set_varint(EncValue *ev, uint32 field, uint64 v)
{
	ev->field = field;
	ev->wiretype = PROTOBUF_C_WIRE_TYPE_VARINT;
	ev->scalar = v;
	finish_value(ev);
}

/* Compute the encoded size of a Value message holding ev. */
static void
finish_value(EncValue *ev)
{
	ev->size = value_size(ev);
}

/* The encoded size of a Value message holding ev: empty for NULL. */
static size_t
value_size(const EncValue *ev)
{
	size_t		size;

	if (ev->field == 0)
		return 0;
	size = varint_size(tag(ev->field, ev->wiretype));
	switch (ev->wiretype)
	{
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			size += varint_size(ev->scalar);
			break;
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			size += 4;
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
			size += 8;
			break;
		default:
			size += varint_size(ev->len) + ev->len;
			break;
	}
	return size;
}

/* Encoded size of a Tuple's content: one values element per value. */
static size_t
tuple_size(const EncValue *values, int n)
{
	size_t		size = 0;
	size_t		tagsize = varint_size(tag(fields.tuple_values,
										  PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));

	for (int i = 0; i < n; i++)
		size += tagsize + varint_size(values[i].size) + values[i].size;
	return size;
}

/*
 * Write a Tuple's content: n values (none for a relation without columns),
 * each as a values element, size bytes in all as tuple_size computed.
 */
static void
write_tuple(RowWriter *w, const EncValue *values, int n, size_t size,
			const RowScratch *scratch)
{
	const char *start = w->p;

	w_room(w, size);
	for (int i = 0; i < n; i++)
	{
		w_varint(w, tag(fields.tuple_values, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
		w_varint(w, values[i].size);
		write_value(w, &values[i], scratch);
	}
	if ((size_t) (w->p - start) != size)
		elog(ERROR, "dsplug: encoded %zu bytes for a tuple sized %zu",
			 (size_t) (w->p - start), size);
}

/*
 * Write the content of one Value message: nothing for NULL.  The value's
 * size is computed again from what is about to be written and must be the
 * size its message was announced with.
 */
static void
write_value(RowWriter *w, const EncValue *ev, const RowScratch *scratch)
{
	size_t		size = value_size(ev);

	if (size != ev->size)
		elog(ERROR, "dsplug: value of %zu bytes was sized %zu", size, ev->size);
	w_room(w, size);
	if (ev->field == 0)
		return;

	w_varint(w, tag(ev->field, ev->wiretype));
	switch (ev->wiretype)
	{
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			w_varint(w, ev->scalar);
			break;
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			w_fixed(w, ev->scalar, 4);
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
			w_fixed(w, ev->scalar, 8);
			break;
		default:
			w_varint(w, ev->len);
			w_bytes(w, ev->data ? ev->data : scratch->buf.data + ev->scratch_off,
					ev->len);
			break;
	}
}

/*
 * A write that does not fit the room its record was sized for: a bug in
 * this file, reported before the byte is written.
 */
static void
writer_overrun(const RowWriter *w, size_t need)
{
	elog(ERROR, "dsplug: encoder wrote past its computed size (%zu bytes needed, %zu left)",
		 need, (size_t) (w->end - w->p));
}

/* The change's scratch buffer, created on first use. */
static StringInfo
scratch_buf(RowScratch *scratch)
{
	if (!scratch->ready)
	{
		initStringInfo(&scratch->buf);
		scratch->ready = true;
	}
	return &scratch->buf;
}
