/*-------------------------------------------------------------------------
 *
 * bigquery_schema.c
 *		The BigQuery target's one type mapping: source column kind ->
 *		BigQuery column type -> protobuf field type -> value encoding; the
 *		shape of each table, its writer schema (a DescriptorProto), and the
 *		encoding of rows.
 *
 * Mapping (README.md has the same table for users):
 *
 *		INT						INT64		int64
 *		FLOAT4, FLOAT8			FLOAT64		double (NaN, +-Infinity kept)
 *		BOOL					BOOL		bool
 *		BYTEA					BYTES		bytes
 *		NUMERIC(p,s), p-s <= 29, 0 <= s <= 9
 *								NUMERIC		string
 *		other NUMERIC			BIGNUMERIC	string
 *		DATE					DATE		int32, days since 1970-01-01
 *		TIME					TIME		string HH:MM:SS.ffffff
 *		TIMESTAMP				DATETIME	string YYYY-MM-DDTHH:MM:SS.ffffff
 *		TIMESTAMPTZ				TIMESTAMP	int64, microseconds since 1970
 *		JSON (json, jsonb)		JSON		string
 *		INTERVAL				INTERVAL	string Y-M D H:M:S[.F]
 *		UUID, TEXT, others		STRING		string (the type's text)
 *		ARRAY of any above		REPEATED of the element's type
 *
 * Values BigQuery cannot hold (policy, each reported once per column):
 * numeric NaN and +-Infinity become NULL; date and timestamp +-infinity
 * become the largest or smallest value of the BigQuery type; time 24:00:00
 * becomes 23:59:59.999999; NULL array elements are left out (BigQuery
 * arrays have none) and a NULL array is an empty one.  Any other value out
 * of BigQuery's range (years before 1 or after 9999, numerics beyond
 * BIGNUMERIC) is sent as it is, and BigQuery's refusal stops the consumer
 * with the table, the row's key and the reason.
 *
 * Rows are encoded here directly as protobuf (proto2: an unset field is
 * NULL), field by field, without building messages first.
 *
 * consumer/sinks/bigquery/bigquery_schema.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sinks/bigquery/bigquery.h"
#include "bigquery_write.pb-c.h"
#include "common/common.h"

/* protobuf wire types */
#define WT_VARINT	0
#define WT_FIXED64	1
#define WT_LEN		2

/* field numbers of the CDC pseudo-columns; columns start at BQ_FIELD_BASE */
#define FIELD_CHANGE_TYPE		1
#define FIELD_SEQUENCE_NUMBER	2
#define BQ_FIELD_BASE			16

/* days between 1970-01-01 and 2000-01-01 */
#define UNIX_EPOCH_DAYS_OFFSET	10957
/* 0001-01-01 and 9999-12-31 in days since 1970-01-01 */
#define BQ_MIN_DATE				(-719162)
#define BQ_MAX_DATE				2932896
/* the same instants in microseconds since 1970-01-01 */
#define BQ_MIN_TIMESTAMP		INT64_C(-62135596800000000)
#define BQ_MAX_TIMESTAMP		INT64_C(253402300799999999)
#define USECS_PER_DAY			INT64_C(86400000000)

static const struct
{
	BqType		type;
	const char *name;			/* as created */
	const char *legacy;			/* as REST answers */
	int			proto;			/* FieldDescriptorProto.Type */
}			bq_types[] = {
	{BQ_STRING, "STRING", "STRING", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
	{BQ_INT64, "INT64", "INTEGER", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64},
	{BQ_FLOAT64, "FLOAT64", "FLOAT", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE},
	{BQ_BOOL, "BOOL", "BOOLEAN", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL},
	{BQ_BYTES, "BYTES", "BYTES", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES},
	{BQ_NUMERIC, "NUMERIC", "NUMERIC", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
	{BQ_BIGNUMERIC, "BIGNUMERIC", "BIGNUMERIC", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
	{BQ_DATE, "DATE", "DATE", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32},
	{BQ_TIME, "TIME", "TIME", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
	{BQ_DATETIME, "DATETIME", "DATETIME", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
	{BQ_TIMESTAMP, "TIMESTAMP", "TIMESTAMP", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64},
	{BQ_JSON, "JSON", "JSON", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
	{BQ_INTERVAL, "INTERVAL", "INTERVAL", DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING},
};

static const struct
{
	const char *name;
	BqType		type;
	int			meta;
}			log_columns[] = {
	{BQ_LOG_CHANGE_TYPE, BQ_STRING, BQ_META_CHANGE_TYPE},
	{BQ_LOG_SEQUENCE_NUMBER, BQ_STRING, BQ_META_SEQUENCE},
	{BQ_LOG_COMMIT_TIMESTAMP, BQ_TIMESTAMP, BQ_META_COMMIT_TIME},
	{BQ_LOG_IS_DELETED, BQ_BOOL, BQ_META_IS_DELETED},
};

static BqColumn *add_column(BqTableSchema *schema, const char *name,
							BqType type, bool repeated);
static void buf_reserve(BqRowBuf *b, size_t more);
static void put_varint(BqRowBuf *b, uint64_t v);
static void put_tag(BqRowBuf *b, int field, int wt);
static void put_len(BqRowBuf *b, int field, const void *data, size_t len);
static bool put_value(BqRowBuf *b, BqTableSchema *schema, BqColumn *col,
					  const Dsplug__Value *v, const Dsplug__Column *scol);
static bool put_column(BqRowBuf *b, BqTableSchema *schema, BqColumn *col,
					   const Dsplug__Value *v, const Dsplug__Value *old,
					   const Dsplug__Relation *rel);
static void warn_once(BqTableSchema *schema, BqColumn *col, const char *what);
static size_t format_interval(char *buf, const Dsplug__Interval *iv);
static bool values_equal(const Dsplug__Value *a, const Dsplug__Value *b);

const char *
bq_type_name(BqType type)
{
	return bq_types[type].name;
}

/* Both the standard and the legacy names REST may answer with. */
bool
bq_type_from_name(const char *name, BqType *type)
{
	for (size_t i = 0; i < sizeof(bq_types) / sizeof(bq_types[0]); i++)
	{
		if (strcasecmp(name, bq_types[i].name) == 0 ||
			strcasecmp(name, bq_types[i].legacy) == 0)
		{
			*type = bq_types[i].type;
			return true;
		}
	}
	return false;
}

/* The BigQuery type of a source column (of its elements for an array). */
BqType
bq_type_for_column(const Dsplug__Column *col)
{
	Dsplug__Kind kind = col->kind == DSPLUG__KIND__KIND_ARRAY ?
		col->element_kind : col->kind;

	switch (kind)
	{
		case DSPLUG__KIND__KIND_INT:
			return BQ_INT64;
		case DSPLUG__KIND__KIND_FLOAT4:
		case DSPLUG__KIND__KIND_FLOAT8:
			return BQ_FLOAT64;
		case DSPLUG__KIND__KIND_BOOL:
			return BQ_BOOL;
		case DSPLUG__KIND__KIND_BYTEA:
			return BQ_BYTES;
		case DSPLUG__KIND__KIND_NUMERIC:
			{
				/* numeric's typmod: ((precision << 16) | scale) + VARHDRSZ */
				int32_t		t = col->typmod - 4;
				int			precision,
							scale;

				if (col->typmod < 4)
					return BQ_BIGNUMERIC;
				precision = (t >> 16) & 0xffff;
				scale = ((t & 0x7ff) ^ 1024) - 1024;	/* 11-bit signed */
				return scale >= 0 && scale <= 9 && precision - scale <= 29 ?
					BQ_NUMERIC : BQ_BIGNUMERIC;
			}
		case DSPLUG__KIND__KIND_DATE:
			return BQ_DATE;
		case DSPLUG__KIND__KIND_TIME:
			return BQ_TIME;
		case DSPLUG__KIND__KIND_TIMESTAMP:
			return BQ_DATETIME;
		case DSPLUG__KIND__KIND_TIMESTAMPTZ:
			return BQ_TIMESTAMP;
		case DSPLUG__KIND__KIND_JSON:
			return BQ_JSON;
		case DSPLUG__KIND__KIND_INTERVAL:
			return BQ_INTERVAL;
		default:
			return BQ_STRING;
	}
}

/*
 * The BigQuery table id of a relation: its name for schema public, else
 * schema__name; characters a table id cannot hold become '_'.  Malloc'd.
 */
char *
bq_table_id(const Dsplug__Relation *rel)
{
	size_t		len = strlen(rel->schema) + strlen(rel->name) + 3;
	char	   *id = xmalloc(len);

	if (strcmp(rel->schema, "public") == 0)
		snprintf(id, len, "%s", rel->name);
	else
		snprintf(id, len, "%s__%s", rel->schema, rel->name);
	for (char *p = id; *p; p++)
	{
		if (!isalnum((unsigned char) *p) && *p != '_')
			*p = '_';
	}
	return id;
}

/*
 * Can the relation be merged by primary key?  BigQuery needs 1 to 16 key
 * columns of types a key may have, and deletes must carry the whole key:
 * the replica identity is the primary key or FULL.  *why says why not.
 */
bool
bq_relation_key_usable(const Dsplug__Relation *rel, const char **why)
{
	int			npk = 0;

	for (size_t i = 0; i < rel->n_columns; i++)
	{
		const Dsplug__Column *c = rel->columns[i];

		if (!c->primary_key)
			continue;
		npk++;
		if (c->kind == DSPLUG__KIND__KIND_ARRAY ||
			c->kind == DSPLUG__KIND__KIND_JSON)
		{
			*why = "a primary key column is an array or JSON, which BigQuery keys cannot hold";
			return false;
		}
		if (rel->replica_identity == DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_INDEX &&
			!c->key)
		{
			*why = "its replica identity index is not the primary key, so deletes do not carry the key";
			return false;
		}
	}
	if (npk == 0)
	{
		*why = "it has no primary key";
		return false;
	}
	if (npk > 16)
	{
		*why = "its primary key has more than 16 columns";
		return false;
	}
	if (rel->replica_identity == DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_NOTHING)
	{
		*why = "its replica identity is NOTHING, so deletes do not carry the key";
		return false;
	}
	return true;
}

static BqColumn *
add_column(BqTableSchema *schema, const char *name, BqType type, bool repeated)
{
	BqColumn   *col;

	schema->columns = xrealloc(schema->columns,
							   sizeof(BqColumn) * (schema->ncolumns + 1));
	col = &schema->columns[schema->ncolumns];
	memset(col, 0, sizeof(BqColumn));
	col->name = xstrdup(name);
	col->type = type;
	col->repeated = repeated;
	col->field = BQ_FIELD_BASE + schema->ncolumns;
	col->source = -1;
	schema->ncolumns++;
	return col;
}

/*
 * A new table's shape for a relation: its columns, then (change log) the
 * metadata columns.  The caller owns the result (bq_schema_free).
 */
BqTableSchema *
bq_schema_from_relation(const Dsplug__Relation *rel, BqTableShape shape)
{
	BqTableSchema *schema = xmalloc(sizeof(BqTableSchema));
	int			added;

	memset(schema, 0, sizeof(BqTableSchema));
	schema->table_id = bq_table_id(rel);
	schema->shape = shape;
	if (shape == BQ_SHAPE_LOG)
	{
		for (size_t i = 0; i < sizeof(log_columns) / sizeof(log_columns[0]); i++)
			add_column(schema, log_columns[i].name, log_columns[i].type,
					   false)->meta = log_columns[i].meta;
	}
	(void) bq_schema_match(schema, rel, &added);
	return schema;
}

/*
 * Take the columns of an existing table (a REST table resource) as the
 * schema's, in BigQuery's order.  false after error_set when the table
 * holds a column type this target does not write.
 */
bool
bq_schema_from_table(BqTableSchema *schema, const json_t *table)
{
	json_t	   *fields = json_object_get(json_object_get(table, "schema"), "fields");
	size_t		i;
	json_t	   *f;

	for (int c = 0; c < schema->ncolumns; c++)
		free(schema->columns[c].name);
	free(schema->columns);
	schema->columns = NULL;
	schema->ncolumns = 0;
	json_array_foreach(fields, i, f)
	{
		const char *name = json_string_value(json_object_get(f, "name"));
		const char *type = json_string_value(json_object_get(f, "type"));
		const char *mode = json_string_value(json_object_get(f, "mode"));
		BqType		t;
		BqColumn   *col;

		if (name == NULL || type == NULL || !bq_type_from_name(type, &t))
		{
			error_set(RESULT_TARGET, "could not use table \"%s\": column \"%s\" has type %s, which dsplug-consumer does not write",
					  schema->table_id, name ? name : "?", type ? type : "?");
			return false;
		}
		col = add_column(schema, name, t, mode != NULL && strcmp(mode, "REPEATED") == 0);
		for (size_t m = 0; m < sizeof(log_columns) / sizeof(log_columns[0]); m++)
		{
			if (schema->shape == BQ_SHAPE_LOG &&
				strcasecmp(name, log_columns[m].name) == 0)
				col->meta = log_columns[m].meta;
		}
	}
	return true;
}

/*
 * Map the relation's columns onto the schema's, by name (case-insensitive,
 * as BigQuery compares them), adding the ones it lacks at the end; sets
 * *added to how many.  Columns the source no longer has stay, unfilled.
 * The key follows the relation's primary key.  false after error_set when a
 * column's type no longer matches.
 */
bool
bq_schema_match(BqTableSchema *schema, const Dsplug__Relation *rel, int *added)
{
	*added = 0;
	for (int c = 0; c < schema->ncolumns; c++)
		schema->columns[c].source = -1;
	free(schema->key);
	schema->key = xmalloc(sizeof(int) * (rel->n_columns + 1));
	schema->nkey = 0;

	for (size_t i = 0; i < rel->n_columns; i++)
	{
		const Dsplug__Column *sc = rel->columns[i];
		BqType		type = bq_type_for_column(sc);
		bool		repeated = sc->kind == DSPLUG__KIND__KIND_ARRAY;
		BqColumn   *col = NULL;
		int			c;

		for (c = 0; c < schema->ncolumns; c++)
		{
			if (schema->columns[c].meta == BQ_META_NONE &&
				strcasecmp(schema->columns[c].name, sc->name) == 0)
			{
				col = &schema->columns[c];
				break;
			}
		}
		if (col == NULL)
		{
			col = add_column(schema, sc->name, type, repeated);
			c = schema->ncolumns - 1;
			(*added)++;
		}
		else if (col->repeated != repeated ||
				 (col->type != type &&
				  !(col->type == BQ_BIGNUMERIC && type == BQ_NUMERIC)))
		{
			error_set(RESULT_TARGET, "could not use table \"%s\": column \"%s\" is %s%s in BigQuery but %s (%s) in the source",
					  schema->table_id, col->name, col->repeated ? "REPEATED " : "",
					  bq_type_name(col->type), sc->type_name,
					  bq_type_name(type));
			return false;
		}
		col->source = (int) i;
		col->kind = repeated ? sc->element_kind : sc->kind;
		if (sc->primary_key)
			schema->key[schema->nkey++] = c;
	}
	return true;
}

/* The REST schema.fields of a table. */
json_t *
bq_schema_fields_json(const BqTableSchema *schema)
{
	json_t	   *fields = json_array();

	for (int c = 0; c < schema->ncolumns; c++)
	{
		const BqColumn *col = &schema->columns[c];
		const char *mode = col->repeated ? "REPEATED" : "NULLABLE";

		json_array_append_new(fields,
							  json_pack("{s:s, s:s, s:s}", "name", col->name,
										"type", bq_type_name(col->type),
										"mode", mode));
	}
	return fields;
}

/*
 * Build the writer schema: a DescriptorProto "Row" with the CDC
 * pseudo-columns (merge) and one field per column, named c<number> and
 * pointing at its column through the column_name option, so that any column
 * name works.  Bumps schema->version.
 */
void
bq_schema_build_writer(BqTableSchema *schema)
{
	Dsplug__Bigquery__ProtoSchema ps = DSPLUG__BIGQUERY__PROTO_SCHEMA__INIT;
	Dsplug__Bigquery__DescriptorProto desc = DSPLUG__BIGQUERY__DESCRIPTOR_PROTO__INIT;
	Dsplug__Bigquery__FieldDescriptorProto *fields;
	Dsplug__Bigquery__FieldDescriptorProto **fieldp;
	Dsplug__Bigquery__FieldOptions *options;
	char	  **names;
	size_t		n = 0;
	size_t		max = schema->ncolumns + 2;

	fields = xmalloc(sizeof(*fields) * max);
	fieldp = xmalloc(sizeof(*fieldp) * max);
	options = xmalloc(sizeof(*options) * max);
	names = xmalloc(sizeof(char *) * max);

	for (int i = 0; i < (int) max; i++)
	{
		Dsplug__Bigquery__FieldDescriptorProto *f = &fields[n];
		const BqColumn *col = NULL;
		char		name[32];

		if (i < 2)
		{
			if (schema->shape != BQ_SHAPE_MERGE)
				continue;
			snprintf(name, sizeof(name), "%s",
					 i == 0 ? "_CHANGE_TYPE" : "_CHANGE_SEQUENCE_NUMBER");
		}
		else
		{
			col = &schema->columns[i - 2];
			snprintf(name, sizeof(name), "c%d", col->field);
		}
		dsplug__bigquery__field_descriptor_proto__init(f);
		names[n] = xstrdup(name);
		f->name = names[n];
		f->has_number = f->has_label = f->has_type = true;
		f->number = col ? col->field : i + 1;
		f->label = col && col->repeated ?
			DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED :
			DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_OPTIONAL;
		f->type = col ? bq_types[col->type].proto :
			DSPLUG__BIGQUERY__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING;
		if (col)
		{
			dsplug__bigquery__field_options__init(&options[n]);
			options[n].column_name = col->name;
			f->options = &options[n];
		}
		fieldp[n] = f;
		n++;
	}
	desc.name = "Row";
	desc.n_field = n;
	desc.field = fieldp;
	ps.proto_descriptor = &desc;

	free(schema->writer_schema);
	schema->writer_schema_len = dsplug__bigquery__proto_schema__get_packed_size(&ps);
	schema->writer_schema = xmalloc(schema->writer_schema_len);
	dsplug__bigquery__proto_schema__pack(&ps, schema->writer_schema);
	schema->version++;

	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(options);
	free(fieldp);
	free(fields);
}

void
bq_schema_free(BqTableSchema *schema)
{
	if (schema == NULL)
		return;
	for (int c = 0; c < schema->ncolumns; c++)
		free(schema->columns[c].name);
	free(schema->columns);
	free(schema->key);
	free(schema->writer_schema);
	free(schema->table_id);
	free(schema->source_name);
	free(schema);
}

/*
 * _CHANGE_SEQUENCE_NUMBER of a change: three fixed-width hex sections,
 * LSN / 1 / position for a streamed change (its commit LSN and position in
 * its transaction), LSN / 0 / position for a copied row (the copy
 * snapshot's consistent point and the copy order).  A transaction missing
 * from a copy commits at or after the copy's LSN, so its changes sort after
 * every copied row; transactions already in the copy commit before it and
 * sort before.  The same change always gets the same number, so replays
 * after a crash are harmless.  buf holds at least 52 bytes.
 */
void
bq_sequence_number(char *buf, uint64_t lsn, bool streamed, uint64_t position)
{
	static const char hex[] = "0123456789ABCDEF";
	uint64_t	sections[3] = {lsn, streamed ? 1 : 0, position};
	char	   *p = buf;

	/* by hand: snprintf was a tenth of the consumer's time per change */
	for (int s = 0; s < 3; s++)
	{
		for (int shift = 60; shift >= 0; shift -= 4)
			*p++ = hex[(sections[s] >> shift) & 0xF];
		*p++ = s < 2 ? '/' : '\0';
	}
}

static void
buf_reserve(BqRowBuf *b, size_t more)
{
	if (b->len + more > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;

		while (cap < b->len + more)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
}

static void
put_varint(BqRowBuf *b, uint64_t v)
{
	buf_reserve(b, 10);
	while (v >= 0x80)
	{
		b->data[b->len++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	b->data[b->len++] = (uint8_t) v;
}

static void
put_tag(BqRowBuf *b, int field, int wt)
{
	put_varint(b, ((uint64_t) field << 3) | wt);
}

static void
put_len(BqRowBuf *b, int field, const void *data, size_t len)
{
	put_tag(b, field, WT_LEN);
	put_varint(b, len);
	if (len == 0)
		return;					/* an empty bytea's data may be NULL */
	buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void
warn_once(BqTableSchema *schema, BqColumn *col, const char *what)
{
	if (col->warned)
		return;
	col->warned = true;
	log_warning("table \"%s\" column \"%s\": %s (reported once per column)",
				schema->table_id, col->name, what);
}

/* "Y-M D H:M:S[.F]", each section signed as BigQuery's canonical form. */
static size_t
format_interval(char *buf, const Dsplug__Interval *iv)
{
	int64_t		m = iv->months;
	uint64_t	am = m < 0 ? (uint64_t) -m : (uint64_t) m;
	int64_t		us = iv->microseconds;
	uint64_t	aus = us < 0 ? (uint64_t) 0 - (uint64_t) us : (uint64_t) us;
	uint64_t	secs = aus / 1000000;
	unsigned	frac = (unsigned) (aus % 1000000);
	int			n;

	n = snprintf(buf, 96, "%s%" PRIu64 "-%" PRIu64 " %d %s%" PRIu64 ":%u:%u",
				 m < 0 ? "-" : "", am / 12, am % 12, (int) iv->days,
				 us < 0 ? "-" : "", secs / 3600, (unsigned) (secs / 60 % 60),
				 (unsigned) (secs % 60));
	if (frac)
	{
		int			digits = 6;

		while (frac % 10 == 0)
		{
			frac /= 10;
			digits--;
		}
		n += snprintf(buf + n, 96 - n, ".%0*u", digits, frac);
	}
	return (size_t) n;
}

/*
 * Append one value of a column (an element, for arrays).  false after
 * error_set for a value this column cannot take at all.
 */
static bool
put_value(BqRowBuf *b, BqTableSchema *schema, BqColumn *col,
		  const Dsplug__Value *v, const Dsplug__Column *scol)
{
	char		tmp[WIRE_DATETIME_BUFLEN + 64];
	size_t		n;

	switch (v->kind_case)
	{
		case DSPLUG__VALUE__KIND_INT:
			if (col->type == BQ_INT64)
			{
				put_tag(b, col->field, WT_VARINT);
				put_varint(b, (uint64_t) v->int_);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_FLOAT4:
		case DSPLUG__VALUE__KIND_FLOAT8:
			if (col->type == BQ_FLOAT64)
			{
				double		d = v->kind_case == DSPLUG__VALUE__KIND_FLOAT4 ?
					(double) v->float4 : v->float8;

				put_tag(b, col->field, WT_FIXED64);
				buf_reserve(b, 8);
				memcpy(b->data + b->len, &d, 8);	/* little-endian hosts */
				b->len += 8;
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_BOOL:
			if (col->type == BQ_BOOL)
			{
				put_tag(b, col->field, WT_VARINT);
				put_varint(b, v->bool_ ? 1 : 0);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_BYTEA:
			if (col->type == BQ_BYTES)
			{
				put_len(b, col->field, v->bytea.data, v->bytea.len);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_NUMERIC:
			if (v->numeric->special != DSPLUG__NUMERIC_SPECIAL__NUMERIC_FINITE &&
				col->type != BQ_STRING)
			{
				warn_once(schema, col, "numeric NaN or Infinity written as NULL");
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_DATE:
			if (col->type == BQ_DATE)
			{
				int64_t		days = (int64_t) v->date + UNIX_EPOCH_DAYS_OFFSET;

				if (v->date == INT32_MAX || v->date == INT32_MIN)
				{
					warn_once(schema, col, "date infinity written as 9999-12-31, -infinity as 0001-01-01");
					days = v->date == INT32_MAX ? BQ_MAX_DATE : BQ_MIN_DATE;
				}
				put_tag(b, col->field, WT_VARINT);
				put_varint(b, (uint64_t) days);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_TIME:
			if (col->type == BQ_TIME)
			{
				int64_t		us = v->time;

				if (us >= USECS_PER_DAY)
				{
					warn_once(schema, col, "time 24:00:00 written as 23:59:59.999999");
					us = USECS_PER_DAY - 1;
				}
				n = wire_format_time(tmp, us);
				put_len(b, col->field, tmp, n);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_TIMESTAMP:
			if (col->type == BQ_DATETIME)
			{
				if (v->timestamp == INT64_MAX || v->timestamp == INT64_MIN)
				{
					warn_once(schema, col, "timestamp infinity written as 9999-12-31T23:59:59.999999, -infinity as 0001-01-01T00:00:00");
					n = (size_t) snprintf(tmp, sizeof(tmp), "%s",
										  v->timestamp == INT64_MAX ?
										  "9999-12-31T23:59:59.999999" :
										  "0001-01-01T00:00:00");
				}
				else
					n = wire_format_timestamp(tmp, v->timestamp, false);
				put_len(b, col->field, tmp, n);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_TIMESTAMPTZ:
			if (col->type == BQ_TIMESTAMP)
			{
				int64_t		us;

				if (v->timestamptz == INT64_MAX || v->timestamptz == INT64_MIN)
				{
					warn_once(schema, col, "timestamptz infinity written as 9999-12-31T23:59:59.999999Z, -infinity as 0001-01-01T00:00:00Z");
					us = v->timestamptz == INT64_MAX ? BQ_MAX_TIMESTAMP : BQ_MIN_TIMESTAMP;
				}
				else if (v->timestamptz > INT64_MAX - POSTGRES_EPOCH_OFFSET_US)
					us = INT64_MAX; /* out of range either way: refused */
				else
					us = v->timestamptz + POSTGRES_EPOCH_OFFSET_US;
				put_tag(b, col->field, WT_VARINT);
				put_varint(b, (uint64_t) us);
				return true;
			}
			break;
		case DSPLUG__VALUE__KIND_TEXT:
			put_len(b, col->field, v->text, strlen(v->text));
			return true;
		case DSPLUG__VALUE__KIND_JSON:
			put_len(b, col->field, v->json, strlen(v->json));
			return true;
		case DSPLUG__VALUE__KIND_INTERVAL:
			if (col->type == BQ_INTERVAL)
			{
				n = format_interval(tmp, v->interval);
				put_len(b, col->field, tmp, n);
				return true;
			}
			break;
		default:
			break;
	}

	/* everything else as its canonical text, into a string column */
	if (col->type == BQ_STRING || col->type == BQ_NUMERIC ||
		col->type == BQ_BIGNUMERIC)
	{
		WireText	text;
		bool		ok;

		wire_text_init(&text, NULL);
		ok = wire_text_append_value(&text, v, scol);
		if (ok)
			put_len(b, col->field, text.data, text.len);
		wire_text_free(&text);
		if (ok)
			return true;
	}
	error_set(RESULT_TARGET, "could not encode a value of column \"%s\" of table \"%s\" as BigQuery %s",
			  col->name, schema->table_id, bq_type_name(col->type));
	return false;
}

/*
 * Append a column's value: v from the new tuple (or the old one for a
 * delete), old the same column in the old tuple, if any, which supplies an
 * unchanged TOASTed value.
 */
static bool
put_column(BqRowBuf *b, BqTableSchema *schema, BqColumn *col,
		   const Dsplug__Value *v, const Dsplug__Value *old,
		   const Dsplug__Relation *rel)
{
	const Dsplug__Column *scol = rel->columns[col->source];

	if (v != NULL && v->kind_case == DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
	{
		/*
		 * An UPSERT replaces the whole row, so a value the change does not
		 * carry cannot be left out (it would become NULL).  Under REPLICA
		 * IDENTITY FULL the old tuple carries it, detoasted; otherwise the
		 * core has read it from the source (toast_fetch.c), so a marker
		 * gets here only without a source (--replay).
		 */
		if (old == NULL || old->kind_case == DSPLUG__VALUE__KIND__NOT_SET ||
			old->kind_case == DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
		{
			error_set(RESULT_TARGET, "could not write a row of table \"%s\": column \"%s\" is an unchanged TOASTed value that the change does not carry; run ALTER TABLE %s.%s REPLICA IDENTITY FULL on the source so that updates carry it",
					  schema->table_id, col->name, rel->schema, rel->name);
			return false;
		}
		v = old;
	}
	if (v == NULL || v->kind_case == DSPLUG__VALUE__KIND__NOT_SET)
		return true;
	if (col->repeated && v->kind_case != DSPLUG__VALUE__KIND_ARRAY)
	{
		/* sent as text: more than one dimension, or another lower bound */
		warn_once(schema, col, "a multi-dimensional array, or one with a lower bound other than 1, written as an empty array");
		return true;
	}
	if (v->kind_case == DSPLUG__VALUE__KIND_ARRAY)
	{
		bool		null_seen = false;

		for (size_t e = 0; e < v->array->n_elements; e++)
		{
			const Dsplug__Value *ev = v->array->elements[e];

			if (ev == NULL || ev->kind_case == DSPLUG__VALUE__KIND__NOT_SET)
			{
				null_seen = true;
				continue;
			}
			if (!put_value(b, schema, col, ev, scol))
				return false;
		}
		if (null_seen)
			warn_once(schema, col, "NULL array elements left out (BigQuery arrays cannot hold NULL)");
		return true;
	}
	return put_value(b, schema, col, v, scol);
}

static bool
values_equal(const Dsplug__Value *a, const Dsplug__Value *b)
{
	size_t		la,
				lb;
	uint8_t		sa[256],
				sb[256];

	if (a == NULL || b == NULL)
		return a == b;
	if (a->kind_case != b->kind_case)
		return false;
	switch (a->kind_case)
	{
		case DSPLUG__VALUE__KIND_INT:
			return a->int_ == b->int_;
		case DSPLUG__VALUE__KIND_TEXT:
			return strcmp(a->text, b->text) == 0;
		case DSPLUG__VALUE__KIND_UUID:
			return a->uuid.len == b->uuid.len &&
				memcmp(a->uuid.data, b->uuid.data, a->uuid.len) == 0;
		default:
			break;
	}
	la = protobuf_c_message_get_packed_size(&a->base);
	lb = protobuf_c_message_get_packed_size(&b->base);
	if (la != lb)
		return false;
	if (la > sizeof(sa))
	{
		uint8_t    *ba = xmalloc(la);
		uint8_t    *bb = xmalloc(lb);
		bool		same;

		protobuf_c_message_pack(&a->base, ba);
		protobuf_c_message_pack(&b->base, bb);
		same = memcmp(ba, bb, la) == 0;
		free(ba);
		free(bb);
		return same;
	}
	protobuf_c_message_pack(&a->base, sa);
	protobuf_c_message_pack(&b->base, sb);
	return memcmp(sa, sb, la) == 0;
}

static const Dsplug__Value *
tuple_value(const Dsplug__Tuple *t, int i)
{
	if (t == NULL || i < 0 || (size_t) i >= t->n_values)
		return NULL;
	return t->values[i];
}

/*
 * Encode the row(s) for one change into out, each ending at an entry of
 * out->ends.  Merge shape: kind UPSERT (tuple = new) or DELETE (tuple =
 * the old key).  Change-log shape: one line of the given kind.  An update
 * whose old tuple has another primary key is preceded by the delete of the
 * old key (a DELETE row, or a DELETE line), with the same sequence number.
 * false after error_set (nothing appended then).
 */
bool
bq_encode_row(BqRowBuf *out, BqTableSchema *schema, BqRowKind kind,
			  const char *sequence, int64_t commit_time,
			  const Dsplug__Tuple *tuple, const Dsplug__Tuple *old,
			  const Dsplug__Relation *rel)
{
	size_t		start_len = out->len;
	size_t		start_rows = out->nrows;
	bool		merge = schema->shape == BQ_SHAPE_MERGE;

	if (((merge && kind == BQ_ROW_UPSERT) || kind == BQ_ROW_UPDATE) &&
		old != NULL && schema->nkey > 0)
	{
		bool		same = true;

		for (int k = 0; k < schema->nkey && same; k++)
		{
			int			src = schema->columns[schema->key[k]].source;

			same = values_equal(tuple_value(old, src), tuple_value(tuple, src));
		}
		if (!same &&
			!bq_encode_row(out, schema, merge ? BQ_ROW_DELETE : BQ_ROW_LOG_DELETE,
						   sequence, commit_time, old, NULL, rel))
			return false;
	}

	if (merge)
	{
		const char *type = kind == BQ_ROW_DELETE ? "DELETE" : "UPSERT";

		put_len(out, FIELD_CHANGE_TYPE, type, strlen(type));
		put_len(out, FIELD_SEQUENCE_NUMBER, sequence, strlen(sequence));
	}
	for (int c = 0; c < schema->ncolumns; c++)
	{
		BqColumn   *col = &schema->columns[c];

		switch (col->meta)
		{
			case BQ_META_CHANGE_TYPE:
				{
					static const char *const names[] = {
						"UPSERT", "DELETE", "INSERT", "UPDATE", "DELETE", "TRUNCATE"
					};

					put_len(out, col->field, names[kind], strlen(names[kind]));
					continue;
				}
			case BQ_META_SEQUENCE:
				put_len(out, col->field, sequence, strlen(sequence));
				continue;
			case BQ_META_COMMIT_TIME:
				if (commit_time != 0)
				{
					put_tag(out, col->field, WT_VARINT);
					put_varint(out, (uint64_t) (commit_time + POSTGRES_EPOCH_OFFSET_US));
				}
				continue;
			case BQ_META_IS_DELETED:
				put_tag(out, col->field, WT_VARINT);
				put_varint(out, kind == BQ_ROW_LOG_DELETE || kind == BQ_ROW_TRUNCATE);
				continue;
			default:
				break;
		}
		if (col->source < 0 || kind == BQ_ROW_TRUNCATE)
			continue;
		if (merge && kind == BQ_ROW_DELETE)
		{
			bool		is_key = false;

			for (int k = 0; k < schema->nkey; k++)
				is_key |= schema->key[k] == c;
			if (!is_key)
				continue;
		}
		if (!put_column(out, schema, col, tuple_value(tuple, col->source),
						tuple_value(old, col->source), rel))
		{
			out->len = start_len;
			out->nrows = start_rows;
			return false;
		}
	}

	if (out->nrows == out->ends_cap)
	{
		out->ends_cap = out->ends_cap ? out->ends_cap * 2 : 1024;
		out->ends = xrealloc(out->ends, sizeof(uint32_t) * out->ends_cap);
	}
	out->ends[out->nrows++] = (uint32_t) out->len;
	return true;
}

/*
 * Describe the key of a serialized row, for an error message:
 * "(a, b)=(1, x)", read back from the row's fields.  Change-log tables have
 * no key: the sequence number says which change it was.
 */
void
bq_describe_row_key(WireText *out, const BqTableSchema *schema,
					const uint8_t *row, size_t len)
{
	bool		log = schema->shape == BQ_SHAPE_LOG;
	int			nwanted = log ? 1 : schema->nkey;
	char	  **values = xmalloc(sizeof(char *) * (nwanted + 1));
	size_t		pos = 0;
	int			seqcol = 0;

	memset(values, 0, sizeof(char *) * (nwanted + 1));
	for (int c = 0; c < schema->ncolumns; c++)
	{
		if (schema->columns[c].meta == BQ_META_SEQUENCE)
			seqcol = c;
	}
	while (pos < len)
	{
		uint64_t	tag = 0,
					v = 0;
		int			shift = 0;
		const uint8_t *data = NULL;
		size_t		dlen = 0;
		int			slot = -1;
		const BqColumn *col = NULL;

		do
			tag |= (uint64_t) (row[pos] & 0x7f) << shift, shift += 7;
		while (row[pos++] & 0x80 && pos < len);
		if ((tag & 7) == WT_VARINT || (tag & 7) == WT_LEN)
		{
			shift = 0;
			do
				v |= (uint64_t) (row[pos] & 0x7f) << shift, shift += 7;
			while (pos < len && row[pos++] & 0x80);
			if ((tag & 7) == WT_LEN)
			{
				data = row + pos;
				dlen = v;
				pos += v;
			}
		}
		else if ((tag & 7) == WT_FIXED64)
		{
			memcpy(&v, row + pos, 8);
			pos += 8;
		}
		else
			break;
		for (int k = 0; k < nwanted; k++)
		{
			const BqColumn *kc = log ? NULL : &schema->columns[schema->key[k]];

			if ((log && (int) (tag >> 3) == schema->columns[seqcol].field) ||
				(kc && (int) (tag >> 3) == kc->field))
			{
				slot = k;
				col = log ? &schema->columns[seqcol] : kc;
			}
		}
		if (slot < 0 || values[slot] != NULL)
			continue;
		if (data != NULL)
		{
			values[slot] = xmalloc(dlen + 1);
			memcpy(values[slot], data, dlen);
			values[slot][dlen] = '\0';
		}
		else
		{
			char		tmp[64];

			if (col->type == BQ_FLOAT64)
			{
				double		d;

				memcpy(&d, &v, 8);
				snprintf(tmp, sizeof(tmp), "%.17g", d);
			}
			else if (col->type == BQ_DATE)
			{
				wire_format_date(tmp, (int32_t) v - UNIX_EPOCH_DAYS_OFFSET);
			}
			else if (col->type == BQ_TIMESTAMP)
				wire_format_timestamp(tmp, (int64_t) v - POSTGRES_EPOCH_OFFSET_US, true);
			else if (col->type == BQ_BOOL)
				snprintf(tmp, sizeof(tmp), "%s", v ? "true" : "false");
			else
				snprintf(tmp, sizeof(tmp), "%" PRId64, (int64_t) v);
			values[slot] = xstrdup(tmp);
		}
	}

	wire_text_append(out, "(", 1);
	for (int k = 0; k < nwanted; k++)
	{
		const char *name = log ? "sequence number" : schema->columns[schema->key[k]].name;

		if (k > 0)
			wire_text_append(out, ", ", 2);
		wire_text_append(out, name, strlen(name));
	}
	wire_text_append(out, ")=(", 3);
	for (int k = 0; k < nwanted; k++)
	{
		const char *val = values[k] ? values[k] : "NULL";

		if (k > 0)
			wire_text_append(out, ", ", 2);
		wire_text_append(out, val, strlen(val));
		free(values[k]);
	}
	wire_text_append(out, ")", 1);
	free(values);
}
