/*-------------------------------------------------------------------------
 *
 * bigquery.h
 *		Declarations shared by the files of the BigQuery target, which
 *		follow the data:
 *
 *		sink_bigquery.c		the SinkOps: URI, tables, changes -> rows,
 *							commits -> the LSN BigQuery acknowledged
 *		bigquery_schema.c	the one type mapping (PostgreSQL kind ->
 *							BigQuery type, protobuf field, value encoding),
 *							table shapes, writer schemas, row encoding
 *		bigquery_write.c	Storage Write API AppendRows over gRPC
 *		bigquery_rest.c		datasets and tables over REST v2
 *		bigquery_auth.c		access tokens
 *
 * consumer/sinks/bigquery/bigquery.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_BIGQUERY_H
#define DSPLUG_BIGQUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sinks/bigquery/bigquery_auth.h"
#include "dsplug.pb-c.h"
#include "wire_text.h"

/* Keep AppendRows requests below the 10 MB limit, with room for a schema. */
#define BQ_REQUEST_ROWS_BYTES	(8 * 1024 * 1024)

/* Endpoints and credentials: the sink's options (sink_bigquery.c). */
typedef struct BigQueryOptions
{
	const char *endpoint;		/* gRPC HOST:PORT, NULL: Google's */
	const char *rest_endpoint;	/* REST base URL, NULL: Google's */
	bool		plaintext;		/* gRPC without TLS (loopback only) */
	BqAuthOptions auth;
} BigQueryOptions;


/* BigQuery column types the target writes */
typedef enum BqType
{
	BQ_STRING,
	BQ_INT64,
	BQ_FLOAT64,
	BQ_BOOL,
	BQ_BYTES,
	BQ_NUMERIC,
	BQ_BIGNUMERIC,
	BQ_DATE,
	BQ_TIME,
	BQ_DATETIME,
	BQ_TIMESTAMP,
	BQ_JSON,
	BQ_INTERVAL
} BqType;

/*
 * What a table holds: a CDC copy of the source (merge: UPSERT/DELETE by
 * primary key) or a change log (append mode, and tables without a usable
 * primary key in merge mode).
 */
typedef enum BqTableShape
{
	BQ_SHAPE_MERGE,
	BQ_SHAPE_LOG
} BqTableShape;

/* A column of the BigQuery table and how a source column fills it. */
typedef struct BqColumn
{
	char	   *name;			/* as in BigQuery */
	BqType		type;
	bool		repeated;
	int			field;			/* protobuf field number in the rows */
	int			source;			/* index in the relation description, -1:
								 * not in the source (dropped there) */
	Dsplug__Kind kind;			/* the source column's kind (element kind
								 * for arrays) */
	int			meta;			/* BQ_META_*: a change-log metadata column */
	bool		warned;			/* a lossy value was reported once */
} BqColumn;

#define BQ_META_NONE			0
#define BQ_META_CHANGE_TYPE		1
#define BQ_META_SEQUENCE		2
#define BQ_META_COMMIT_TIME		3
#define BQ_META_IS_DELETED		4

/*
 * A table's shape as the consumer writes it: its columns in BigQuery's
 * order (columns are only ever added, so field numbers never change and a
 * row encoded under an older writer schema reads the same under a newer
 * one), its key, and the writer schema (a serialized ProtoSchema) for the
 * current columns.
 */
typedef struct BqTableSchema
{
	char	   *table_id;		/* BigQuery table id */
	char	   *source_name;	/* "schema"."name", for messages */
	BqTableShape shape;
	BqColumn   *columns;
	int			ncolumns;
	int		   *key;			/* indexes into columns: the primary key */
	int			nkey;
	uint8_t    *writer_schema;	/* serialized ProtoSchema */
	size_t		writer_schema_len;
	uint32_t	version;		/* bumped whenever writer_schema changes */
	bool		toast_warned;
} BqTableSchema;

/* Metadata columns of the change-log shape, in this order. */
#define BQ_LOG_CHANGE_TYPE		"_dsplug_change_type"
#define BQ_LOG_SEQUENCE_NUMBER	"_dsplug_sequence_number"
#define BQ_LOG_COMMIT_TIMESTAMP	"_dsplug_commit_timestamp"
#define BQ_LOG_IS_DELETED		"_dsplug_is_deleted"

/* bigquery_schema.c */
extern const char *bq_type_name(BqType type);
extern bool bq_type_from_name(const char *name, BqType *type);
extern BqType bq_type_for_column(const Dsplug__Column *col);
extern char *bq_table_id(const Dsplug__Relation *rel);
extern BqTableSchema *bq_schema_from_relation(const Dsplug__Relation *rel,
											  BqTableShape shape);
extern bool bq_schema_from_table(BqTableSchema *schema, const json_t *table);
extern bool bq_schema_match(BqTableSchema *schema, const Dsplug__Relation *rel,
							int *added);
extern json_t *bq_schema_fields_json(const BqTableSchema *schema);
extern void bq_schema_build_writer(BqTableSchema *schema);
extern void bq_schema_free(BqTableSchema *schema);
extern bool bq_relation_key_usable(const Dsplug__Relation *rel,
								   const char **why);

typedef enum BqRowKind
{
	BQ_ROW_UPSERT,
	BQ_ROW_DELETE,
	BQ_ROW_INSERT,				/* change-log lines */
	BQ_ROW_UPDATE,
	BQ_ROW_LOG_DELETE,
	BQ_ROW_TRUNCATE
} BqRowKind;

/* Serialized rows waiting to become an AppendRows request. */
typedef struct BqRowBuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	uint32_t   *ends;			/* end offset of each row in data */
	size_t		nrows;
	size_t		ends_cap;
} BqRowBuf;

extern void bq_sequence_number(char *buf, uint64_t lsn, bool streamed,
							   uint64_t position);
extern bool bq_encode_row(BqRowBuf *out, BqTableSchema *schema,
						  BqRowKind kind, const char *sequence,
						  int64_t commit_time,
						  const Dsplug__Tuple *tuple,
						  const Dsplug__Tuple *old,
						  const Dsplug__Relation *rel);
extern void bq_describe_row_key(WireText *out, const BqTableSchema *schema,
								const uint8_t *row, size_t len);

/* bigquery_rest.c */
typedef struct BqRest BqRest;
extern BqRest *bq_rest_create(const char *base_url, const char *project,
							  BqAuth *auth);
extern void bq_rest_free(BqRest *rest);
extern bool bq_rest_ensure_dataset(BqRest *rest, const char *dataset,
								   const char *location);
extern bool bq_rest_get_table(BqRest *rest, const char *dataset,
							  const char *table, json_t **result);
extern bool bq_rest_create_table(BqRest *rest, const char *dataset,
								 const char *table, json_t *body,
								 json_t **result);
extern bool bq_rest_patch_table(BqRest *rest, const char *dataset,
								const char *table, json_t *body,
								json_t **result);

/* bigquery_write.c */
typedef struct BqWriter BqWriter;
typedef struct BqStream BqStream;
extern BqWriter *bq_writer_create(const char *endpoint, bool plaintext,
								  BqAuth *auth);
extern void bq_writer_free(BqWriter *w);
extern BqStream *bq_writer_stream(BqWriter *w, const char *project,
								  const char *dataset, BqTableSchema *schema);
extern bool bq_writer_append(BqWriter *w, BqStream *s, BqRowBuf *rows);
extern uint64_t bq_writer_last_request(BqWriter *w);
extern uint64_t bq_writer_lowest_unacked(BqWriter *w);
extern void bq_writer_pending(BqWriter *w, uint64_t *requests, uint64_t *bytes);
extern bool bq_writer_poll(BqWriter *w, int timeout_ms);
extern bool bq_writer_wait(BqWriter *w, uint64_t request, bool *stopped);

#endif							/* DSPLUG_BIGQUERY_H */
