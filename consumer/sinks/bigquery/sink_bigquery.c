/*-------------------------------------------------------------------------
 *
 * sink_bigquery.c
 *		The BigQuery target:
 *		bigquery://PROJECT/DATASET?location=L[&mode=merge|append][&max_staleness=15m]
 *
 * Each published relation is one table in the dataset (bq_table_id), kept
 * one of two ways (bigquery_schema.c):
 *
 *	merge (default, tables with a usable primary key): a CDC table with
 *		PRIMARY KEY ... NOT ENFORCED; inserts and updates are UPSERTs,
 *		deletes DELETEs, each with _CHANGE_SEQUENCE_NUMBER from the change's
 *		(commit LSN, position), so BigQuery keeps the latest change of each
 *		key whatever order and however often rows arrive;
 *	change log (mode=append, and tables without a usable key): every
 *		change is a line with its change type, sequence number, commit
 *		timestamp and is_deleted.
 *
 * Rows go out through the Storage Write API (bigquery_write.c) as the
 * changes come, in requests of up to BQ_REQUEST_ROWS_BYTES, pipelined.  A
 * commit only marks where the group ends: (end LSN, id of the last request
 * queued).  flushed_lsn is the end of the last group whose every request
 * BigQuery acknowledged, and that is all the consumer confirms to the
 * server.
 *
 * Where the applied position lives: the description of the table
 * _dsplug_state in the dataset, {"slot": ..., "applied_lsn": ...}, written
 * (REST PATCH) at a commit at most every STATE_INTERVAL_US as the
 * acknowledged position advances, and at a clean stop (never from
 * flushed_lsn, which only reads what the writer thread collected).  It names the slot the dataset follows
 * (another slot is refused) and tells a restart where to start; it may lag
 * what the slot has confirmed, which is harmless: the server starts from
 * the later of the two, and whatever is sent again carries the same
 * sequence numbers (a change log may then hold a change twice, with the
 * same sequence number).
 *
 * Not applied: TRUNCATE of a merge table (the Storage Write API deletes by
 * key only; a warning names the table); change logs get a TRUNCATE line.
 *
 * consumer/sinks/bigquery/sink_bigquery.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/bigquery/bigquery.h"
#include "common/common.h"
#include "sinks/sink.h"

#define STATE_TABLE			"_dsplug_state"
#define STATE_INTERVAL_US	INT64_C(5000000)
#define SYNC_TIMEOUT_US		INT64_C(60000000)

/* A relation's table, as this run knows it. */
typedef struct BqTable
{
	uint32_t	oid;
	BqTableSchema *schema;
	BqStream   *stream;
	BqRowBuf	rows;			/* encoded, not yet a request */
	bool		truncate_warned;
	struct BqTable *next;
} BqTable;

/* The end of a committed group and the last request it needs. */
typedef struct CommitMark
{
	uint64_t	end_lsn;
	uint64_t	last_request;
} CommitMark;

typedef struct BqSink
{
	char	   *project;
	char	   *dataset;
	char	   *location;
	bool		append_mode;
	char	   *max_staleness;	/* REST INTERVAL, or NULL */
	char	   *slot;			/* NULL for --replay */

	BqAuth	   *auth;
	BqRest	   *rest;
	BqWriter   *writer;
	BqTable    *tables;

	BigQueryOptions options;	/* endpoints and credentials (-o) */

	bool		in_group;
	bool		group_backfill;
	uint64_t	copy_lsn;		/* the copy under way (begin_copy) */
	CommitMark *marks;
	size_t		nmarks;
	size_t		marks_cap;
	uint64_t	flushed;		/* acknowledged by BigQuery */
	uint64_t	state_lsn;		/* recorded in _dsplug_state */
	int64_t		state_written;	/* clock_us() */
} BqSink;

static bool bq_open(Sink *sink, const char *uri, const SinkOption *options,
					int noptions, const char *slot, uint64_t *applied_lsn);
static bool bq_relation(Sink *sink, const Dsplug__Relation *rel,
						SinkRelationInfo *info);
static bool bq_begin(Sink *sink);
static bool bq_change(Sink *sink, const SinkChange *change);
static bool bq_truncate(Sink *sink, const Dsplug__Relation *const *rels,
						size_t nrels, bool cascade, bool restart_identity,
						uint64_t commit_lsn, uint64_t position);
static bool bq_begin_copy(Sink *sink, const Dsplug__Relation *rel,
						  uint64_t copy_lsn);
static bool bq_end_copy(Sink *sink, const Dsplug__Relation *rel,
						uint64_t copy_lsn);
static bool bq_commit(Sink *sink, uint64_t end_lsn);
static void bq_abort(Sink *sink);
static bool bq_sync(Sink *sink);
static bool bq_flushed_lsn(Sink *sink, uint64_t *lsn);
static void bq_stats(Sink *sink, SinkStats *stats);
static bool bq_check_options(const SinkOption *options, int noptions,
							 char *err, size_t errsize);
static void bq_read_options(BigQueryOptions *o, const SinkOption *options,
							int noptions);
static void bq_close(Sink *sink);

static bool parse_uri(BqSink *bq, const char *uri, const char *location);
static bool read_state(BqSink *bq, uint64_t *applied_lsn);
static bool write_state(BqSink *bq);
static bool flush_table(BqSink *bq, BqTable *t);
static void collect_acks(BqSink *bq);
static BqTable *find_table(BqSink *bq, uint32_t oid);

static const SinkOps bq_ops = {
	.open = bq_open,
	.relation = bq_relation,
	.begin = bq_begin,
	.change = bq_change,
	.truncate = bq_truncate,
	.begin_copy = bq_begin_copy,
	.end_copy = bq_end_copy,
	.commit = bq_commit,
	.abort = bq_abort,
	.sync = bq_sync,
	.flushed_lsn = bq_flushed_lsn,
	.close = bq_close,
	.stats = bq_stats,
};

/* -o NAME[=VALUE], and the --bigquery-* spelling of each */
static const SinkOptionDef bq_options[] = {
	{"token_file", "bigquery-token-file", true},
	{"no_auth", "bigquery-no-auth", false},
	{"endpoint", "bigquery-endpoint", true},
	{"rest_endpoint", "bigquery-rest-endpoint", true},
	{"plaintext", "bigquery-plaintext", false},
	{NULL, NULL, false}
};

const SinkType sink_bigquery_type = {
	.scheme = "bigquery",
	.uri_help = "bigquery://PROJECT/DATASET?location=LOCATION[&mode=merge|append][&max_staleness=15m]",
	.help =
	"BigQuery credentials (default: the service account key or authorized_user\n"
	"file named by GOOGLE_APPLICATION_CREDENTIALS, else the metadata server of\n"
	"a Google Cloud machine, GCE_METADATA_HOST honoured):\n"
	"      --bigquery-token-file=FILE  use the OAuth access token in FILE, re-read\n"
	"                           when the file changes; keeping it fresh is up to you\n"
	"                           (-o token_file=FILE)\n"
	"      --bigquery-no-auth   send no credentials (a test server on loopback only;\n"
	"                           -o no_auth)\n"
	"\n"
	"BigQuery endpoints (default: Google's, over TLS):\n"
	"      --bigquery-endpoint=HOST:PORT   Storage Write API (gRPC) endpoint\n"
	"                           (default bigquerystorage.googleapis.com:443;\n"
	"                           -o endpoint=HOST:PORT)\n"
	"      --bigquery-rest-endpoint=URL    REST endpoint (default\n"
	"                           https://bigquery.googleapis.com; -o rest_endpoint=URL)\n"
	"      --bigquery-plaintext gRPC without TLS; only with a loopback\n"
	"                           --bigquery-endpoint (a test server; -o plaintext)\n",
	.options = bq_options,
	.check_options = bq_check_options,
	.ops = &bq_ops,
};

/* The options into o (checked by bq_check_options). */
static void
bq_read_options(BigQueryOptions *o, const SinkOption *options, int noptions)
{
	memset(o, 0, sizeof(BigQueryOptions));
	for (int i = 0; i < noptions; i++)
	{
		const char *name = options[i].name;

		if (strcmp(name, "token_file") == 0)
			o->auth.token_file = options[i].value;
		else if (strcmp(name, "no_auth") == 0)
			o->auth.none = true;
		else if (strcmp(name, "endpoint") == 0)
			o->endpoint = options[i].value;
		else if (strcmp(name, "rest_endpoint") == 0)
			o->rest_endpoint = options[i].value;
		else if (strcmp(name, "plaintext") == 0)
			o->plaintext = true;
	}
}

/* SinkType.check_options: values, and options that exclude each other. */
static bool
bq_check_options(const SinkOption *options, int noptions, char *err,
				 size_t errsize)
{
	BigQueryOptions o;

	bq_read_options(&o, options, noptions);
	if (o.endpoint != NULL && strchr(o.endpoint, ':') == NULL)
	{
		snprintf(err, errsize, "invalid value \"%s\" for --bigquery-endpoint: expected HOST:PORT",
				 o.endpoint);
		return false;
	}
	if (o.rest_endpoint != NULL &&
		strncmp(o.rest_endpoint, "http://", 7) != 0 &&
		strncmp(o.rest_endpoint, "https://", 8) != 0)
	{
		snprintf(err, errsize, "invalid value \"%s\" for --bigquery-rest-endpoint: expected an http:// or https:// URL",
				 o.rest_endpoint);
		return false;
	}
	if (o.auth.token_file != NULL && o.auth.none)
	{
		snprintf(err, errsize, "--bigquery-token-file cannot be combined with --bigquery-no-auth");
		return false;
	}
	if (o.plaintext &&
		(o.endpoint == NULL ||
		 !(strncmp(o.endpoint, "127.", 4) == 0 ||
		   strncmp(o.endpoint, "localhost:", 10) == 0 ||
		   strncmp(o.endpoint, "[::1]:", 6) == 0)))
	{
		snprintf(err, errsize, "--bigquery-plaintext needs a loopback --bigquery-endpoint (127.x.x.x, localhost or [::1])");
		return false;
	}
	return true;
}

/*
 * PROJECT/DATASET?location=L[&mode=merge|append][&max_staleness=N(s|m|h)]
 */
static bool
parse_uri(BqSink *bq, const char *uri, const char *location)
{
	const char *slash = strchr(location, '/');
	const char *q = strchr(location, '?');
	char	   *query;
	char	   *save = NULL;

	if (slash == NULL || slash == location || (q != NULL && q < slash))
	{
		error_set(RESULT_TARGET, "could not open target \"%s\": expected bigquery://PROJECT/DATASET?location=LOCATION",
				  uri);
		return false;
	}
	bq->project = xmalloc(slash - location + 1);
	memcpy(bq->project, location, slash - location);
	bq->project[slash - location] = '\0';
	if (q == NULL)
		q = slash + strlen(slash);
	bq->dataset = xmalloc(q - slash);
	memcpy(bq->dataset, slash + 1, q - slash - 1);
	bq->dataset[q - slash - 1] = '\0';
	for (const char *p = bq->project; *p; p++)
	{
		if (!isalnum((unsigned char) *p) && !strchr("-.:_", *p))
		{
			error_set(RESULT_TARGET, "could not open target \"%s\": invalid project id \"%s\"",
					  uri, bq->project);
			return false;
		}
	}
	if (bq->dataset[0] == '\0' || strlen(bq->dataset) > 1024)
	{
		error_set(RESULT_TARGET, "could not open target \"%s\": no dataset after the project", uri);
		return false;
	}
	for (const char *p = bq->dataset; *p; p++)
	{
		if (!isalnum((unsigned char) *p) && *p != '_')
		{
			error_set(RESULT_TARGET, "could not open target \"%s\": invalid dataset id \"%s\" (letters, digits and underscores)",
					  uri, bq->dataset);
			return false;
		}
	}

	query = xstrdup(*q == '?' ? q + 1 : "");
	for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save))
	{
		char	   *eq = strchr(kv, '=');
		const char *val;

		if (eq == NULL)
		{
			error_set(RESULT_TARGET, "could not open target \"%s\": parameter \"%s\" has no value",
					  uri, kv);
			free(query);
			return false;
		}
		*eq = '\0';
		val = eq + 1;
		if (strcmp(kv, "location") == 0 && val[0] != '\0')
		{
			free(bq->location);
			bq->location = xstrdup(val);
		}
		else if (strcmp(kv, "mode") == 0 &&
				 (strcmp(val, "merge") == 0 || strcmp(val, "append") == 0))
			bq->append_mode = strcmp(val, "append") == 0;
		else if (strcmp(kv, "max_staleness") == 0)
		{
			char	   *end;
			long		n = strtol(val, &end, 10);
			long		secs = -1;
			char		buf[64];

			if (end != val && n >= 0)
			{
				if (strcmp(end, "s") == 0)
					secs = n;
				else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
					secs = n * 60;
				else if (strcmp(end, "h") == 0)
					secs = n * 3600;
			}
			if (secs < 0 || secs > 24 * 3600)
			{
				error_set(RESULT_TARGET, "could not open target \"%s\": invalid max_staleness \"%s\" (e.g. 30s, 15m, 1h; at most 24h)",
						  uri, val);
				free(query);
				return false;
			}
			snprintf(buf, sizeof(buf), "0-0 0 %ld:%ld:%ld", secs / 3600,
					 secs / 60 % 60, secs % 60);
			free(bq->max_staleness);
			bq->max_staleness = secs > 0 ? xstrdup(buf) : NULL;
		}
		else
		{
			error_set(RESULT_TARGET, "could not open target \"%s\": invalid parameter \"%s=%s\" (location=LOCATION, mode=merge|append, max_staleness=DURATION)",
					  uri, kv, val);
			free(query);
			return false;
		}
	}
	free(query);
	if (bq->location == NULL)
	{
		error_set(RESULT_TARGET, "could not open target \"%s\": location=LOCATION is required (the dataset's region, e.g. US, EU, europe-west1)",
				  uri);
		return false;
	}
	return true;
}

static bool
bq_open(Sink *sink, const char *uri, const SinkOption *options, int noptions,
		const char *slot, uint64_t *applied_lsn)
{
	BqSink	   *bq = xmalloc(sizeof(BqSink));

	memset(bq, 0, sizeof(BqSink));
	sink->private_data = bq;
	bq_read_options(&bq->options, options, noptions);
	if (!parse_uri(bq, uri, uri + strlen("bigquery://")))
		goto fail;
	bq->slot = slot ? xstrdup(slot) : NULL;
	bq->auth = bq_auth_create(&bq->options.auth);
	if (bq->auth == NULL)
		goto fail;
	bq->rest = bq_rest_create(bq->options.rest_endpoint, bq->project, bq->auth);
	if (!bq_rest_ensure_dataset(bq->rest, bq->dataset, bq->location) ||
		!read_state(bq, applied_lsn))
		goto fail;
	bq->writer = bq_writer_create(bq->options.endpoint, bq->options.plaintext,
								  bq->options.auth.none ? NULL : bq->auth);
	log_info("writing to BigQuery dataset %s.%s in %s (%s mode), credentials: %s",
			 bq->project, bq->dataset, bq->location,
			 bq->append_mode ? "append" : "merge", bq_auth_describe(bq->auth));
	return true;

fail:
	bq_close(sink);
	return false;
}

/*
 * The applied position and the slot from _dsplug_state's description;
 * a new dataset gets the table, naming its slot at once.
 */
static bool
read_state(BqSink *bq, uint64_t *applied_lsn)
{
	json_t	   *table;
	json_t	   *state;
	json_error_t jerr;
	const char *desc;
	const char *have_slot;
	const char *lsn;

	*applied_lsn = INVALID_LSN;
	if (!bq_rest_get_table(bq->rest, bq->dataset, STATE_TABLE, &table))
		return false;
	if (table == NULL)
	{
		json_t	   *body = json_pack("{s:{s:[{s:s, s:s}]}}", "schema", "fields",
									 "name", "slot", "type", "STRING");

		json_decref(table);
		json_object_set_new(body, "description",
							json_string("dsplug-consumer's position; do not edit"));
		if (!bq_rest_create_table(bq->rest, bq->dataset, STATE_TABLE, body, &table))
		{
			json_decref(body);
			return false;
		}
		json_decref(body);
		json_decref(table);
		return write_state(bq);
	}
	desc = json_string_value(json_object_get(table, "description"));
	state = desc ? json_loads(desc, 0, &jerr) : NULL;
	have_slot = json_string_value(json_object_get(state, "slot"));
	lsn = json_string_value(json_object_get(state, "applied_lsn"));
	if (bq->slot != NULL && have_slot != NULL && strcmp(have_slot, bq->slot) != 0)
	{
		error_set(RESULT_TARGET, "could not open target: dataset \"%s\" follows replication slot \"%s\", not \"%s\"",
				  bq->dataset, have_slot, bq->slot);
		json_decref(state);
		json_decref(table);
		return false;
	}
	if (lsn != NULL && !parse_lsn(lsn, applied_lsn))
		*applied_lsn = INVALID_LSN;
	bq->flushed = bq->state_lsn = *applied_lsn;
	json_decref(state);
	json_decref(table);
	if (have_slot == NULL && bq->slot != NULL)
		return write_state(bq);
	return true;
}

/* Record the acknowledged position (and the slot) in _dsplug_state. */
static bool
write_state(BqSink *bq)
{
	json_t	   *state = json_object();
	json_t	   *body;
	json_t	   *result = NULL;
	char		lsn[32];
	char	   *text;
	bool		ok;

	json_object_set_new(state, "slot", bq->slot ? json_string(bq->slot) : json_null());
	if (bq->flushed != INVALID_LSN)
	{
		snprintf(lsn, sizeof(lsn), "%X/%X", LSN_FORMAT_ARGS(bq->flushed));
		json_object_set_new(state, "applied_lsn", json_string(lsn));
	}
	else
		json_object_set_new(state, "applied_lsn", json_null());
	text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
	body = json_pack("{s:s}", "description", text);
	free(text);
	ok = bq_rest_patch_table(bq->rest, bq->dataset, STATE_TABLE, body, &result);
	if (ok)
	{
		bq->state_lsn = bq->flushed;
		bq->state_written = clock_us();
	}
	json_decref(result);
	json_decref(body);
	json_decref(state);
	return ok;
}

static BqTable *
find_table(BqSink *bq, uint32_t oid)
{
	for (BqTable *t = bq->tables; t; t = t->next)
	{
		if (t->oid == oid)
			return t;
	}
	return NULL;
}

/*
 * Create the relation's table, or check and widen the existing one.  The
 * copy bookkeeping (SinkRelationInfo.copied_lsn) is not kept: a restart
 * that sends changes again that a copy already holds is harmless, their
 * sequence numbers being below the copy's.
 */
static bool
bq_relation(Sink *sink, const Dsplug__Relation *rel, SinkRelationInfo *info)
{
	BqSink	   *bq = sink->private_data;
	BqTable    *t = find_table(bq, rel->oid);
	int			added = 0;
	json_t	   *result = NULL;

	memset(info, 0, sizeof(SinkRelationInfo));
	info->copied_lsn = INVALID_LSN;
	info->orders_by_sequence = true;

	if (t == NULL)
	{
		const char *why = NULL;
		BqTableShape shape = BQ_SHAPE_MERGE;
		char	   *id = bq_table_id(rel);
		char		source[512];

		if (bq->append_mode)
			shape = BQ_SHAPE_LOG;
		else if (!bq_relation_key_usable(rel, &why))
		{
			shape = BQ_SHAPE_LOG;
			log_info("table \"%s\".\"%s\" is written append-only as a change log to %s.%s: %s",
					 rel->schema, rel->name, bq->dataset, id, why);
		}
		if (!bq_rest_get_table(bq->rest, bq->dataset, id, &result))
		{
			free(id);
			return false;
		}
		t = xmalloc(sizeof(BqTable));
		memset(t, 0, sizeof(BqTable));
		t->oid = rel->oid;
		if (result != NULL)
		{
			/* BigQuery's shape wins: a key means the table is merged */
			json_t	   *pk = json_object_get(json_object_get(result, "tableConstraints"),
											 "primaryKey");

			t->schema = xmalloc(sizeof(BqTableSchema));
			memset(t->schema, 0, sizeof(BqTableSchema));
			t->schema->table_id = id;
			t->schema->shape = pk != NULL ? BQ_SHAPE_MERGE : BQ_SHAPE_LOG;
			if (t->schema->shape != shape)
				log_warning("table \"%s\" exists as a %s table; kept so",
							id, pk ? "merge" : "change-log");
			json_decref(result);
			result = NULL;
		}
		snprintf(source, sizeof(source), "\"%s\".\"%s\"", rel->schema, rel->name);
		t->next = bq->tables;
		bq->tables = t;
		if (t->schema == NULL)
		{
			json_t	   *body;

			t->schema = bq_schema_from_relation(rel, shape);
			free(id);
			body = json_pack("{s:{s:o}, s:s}", "schema", "fields",
							 bq_schema_fields_json(t->schema), "description",
							 shape == BQ_SHAPE_MERGE ?
							 "dsplug: CDC copy of a PostgreSQL table" :
							 "dsplug: change log of a PostgreSQL table");
			if (shape == BQ_SHAPE_MERGE)
			{
				json_t	   *keys = json_array();
				json_t	   *cluster = json_array();

				for (int k = 0; k < t->schema->nkey; k++)
				{
					const BqColumn *c = &t->schema->columns[t->schema->key[k]];

					json_array_append_new(keys, json_string(c->name));
					if (json_array_size(cluster) < 4 && c->type != BQ_FLOAT64 &&
						c->type != BQ_BYTES && c->type != BQ_INTERVAL &&
						c->type != BQ_TIME)
						json_array_append_new(cluster, json_string(c->name));
				}
				json_object_set_new(body, "tableConstraints",
									json_pack("{s:{s:o}}", "primaryKey", "columns", keys));
				if (json_array_size(cluster) > 0)
					json_object_set_new(body, "clustering",
										json_pack("{s:o}", "fields", cluster));
				else
					json_decref(cluster);
				if (bq->max_staleness)
					json_object_set_new(body, "maxStaleness",
										json_string(bq->max_staleness));
			}
			if (!bq_rest_create_table(bq->rest, bq->dataset, t->schema->table_id,
									  body, &result))
			{
				json_decref(body);
				return false;
			}
			json_decref(body);
			info->created = true;
		}
		t->schema->source_name = xstrdup(source);
		if (!info->created)
		{
			/* read the existing columns */
			if (!bq_rest_get_table(bq->rest, bq->dataset, t->schema->table_id, &result) ||
				result == NULL || !bq_schema_from_table(t->schema, result))
			{
				if (result == NULL && error_message()[0] == '\0')
					error_set(RESULT_TARGET, "could not read table \"%s.%s\": it vanished",
							  bq->dataset, t->schema->table_id);
				json_decref(result);
				return false;
			}
		}
		json_decref(result);
		result = NULL;
	}

	if (!bq_schema_match(t->schema, rel, &added))
		return false;
	if (added > 0 && !info->created)
	{
		json_t	   *body = json_pack("{s:{s:o}}", "schema", "fields",
									 bq_schema_fields_json(t->schema));
		bool		ok = bq_rest_patch_table(bq->rest, bq->dataset,
											 t->schema->table_id, body, &result);

		json_decref(body);
		json_decref(result);
		if (!ok)
			return false;
		log_info("added %d column(s) to table %s.%s", added, bq->dataset,
				 t->schema->table_id);
		info->columns_added = true;
	}
	if (t->schema->writer_schema == NULL || added > 0)
		bq_schema_build_writer(t->schema);
	if (t->stream == NULL)
		t->stream = bq_writer_stream(bq->writer, bq->project, bq->dataset, t->schema);
	info->whole_rows = t->schema->shape == BQ_SHAPE_MERGE;
	return true;
}

static bool
bq_begin(Sink *sink)
{
	BqSink	   *bq = sink->private_data;

	bq->in_group = true;
	bq->group_backfill = false;
	return true;
}

static bool
flush_table(BqSink *bq, BqTable *t)
{
	if (t->rows.nrows == 0)
		return true;
	return bq_writer_append(bq->writer, t->stream, &t->rows);
}

static bool
bq_change(Sink *sink, const SinkChange *change)
{
	BqSink	   *bq = sink->private_data;
	BqTable    *t = find_table(bq, change->relation->oid);
	char		seq[64];
	bool		merge;
	BqRowKind	kind;
	const Dsplug__Tuple *tuple;

	if (t == NULL)
	{
		error_set(RESULT_RUNTIME, "could not write a change: relation %u was not described",
				  change->relation->oid);
		return false;
	}
	merge = t->schema->shape == BQ_SHAPE_MERGE;
	if (change->backfill)
		bq_sequence_number(seq, bq->copy_lsn, false, change->position);
	else
		bq_sequence_number(seq, change->commit_lsn, true, change->position);

	switch (change->kind)
	{
		case SINK_INSERT:
			kind = merge ? BQ_ROW_UPSERT : BQ_ROW_INSERT;
			tuple = change->new_;
			break;
		case SINK_UPDATE:
			kind = merge ? BQ_ROW_UPSERT : BQ_ROW_UPDATE;
			tuple = change->new_;
			break;
		default:
			kind = merge ? BQ_ROW_DELETE : BQ_ROW_LOG_DELETE;
			tuple = change->old;
			if (tuple == NULL)
			{
				error_set(RESULT_TARGET, "could not write a delete to table \"%s\": the change carries no old key",
						  t->schema->table_id);
				return false;
			}
			break;
	}
	if (!bq_encode_row(&t->rows, t->schema, kind, seq,
					   change->backfill ? 0 : change->commit_time, tuple,
					   change->kind == SINK_UPDATE ? change->old : NULL,
					   change->relation))
		return false;
	if (t->rows.len >= BQ_REQUEST_ROWS_BYTES)
		return flush_table(bq, t);
	return true;
}

static bool
bq_truncate(Sink *sink, const Dsplug__Relation *const *rels, size_t nrels,
			bool cascade, bool restart_identity, uint64_t commit_lsn,
			uint64_t position)
{
	BqSink	   *bq = sink->private_data;

	(void) cascade;
	(void) restart_identity;
	for (size_t i = 0; i < nrels; i++)
	{
		BqTable    *t = find_table(bq, rels[i]->oid);
		char		seq[64];

		if (t == NULL)
			continue;
		if (t->schema->shape == BQ_SHAPE_LOG)
		{
			bq_sequence_number(seq, commit_lsn, true, position);
			if (!bq_encode_row(&t->rows, t->schema, BQ_ROW_TRUNCATE, seq, 0,
							   NULL, NULL, rels[i]))
				return false;
		}
		else if (!t->truncate_warned)
		{
			t->truncate_warned = true;
			log_warning("TRUNCATE of \"%s\".\"%s\" not applied to BigQuery table %s.%s: the Storage Write API deletes by key only; rows stay until their keys are deleted (reported once per table)",
						rels[i]->schema, rels[i]->name, bq->dataset,
						t->schema->table_id);
		}
	}
	return true;
}

/*
 * A copy of rel begins: nothing is removed (the Storage Write API deletes
 * by key only), the copied rows are upserted anew with sequence numbers
 * from copy_lsn, below every change that commits after the snapshot.
 */
static bool
bq_begin_copy(Sink *sink, const Dsplug__Relation *rel, uint64_t copy_lsn)
{
	BqSink	   *bq = sink->private_data;

	(void) rel;
	bq->copy_lsn = copy_lsn;
	bq->group_backfill = true;
	return true;
}

/*
 * Nothing to record: the target orders by sequence number
 * (SinkRelationInfo.orders_by_sequence), so changes a copy holds already
 * may come again.
 */
static bool
bq_end_copy(Sink *sink, const Dsplug__Relation *rel, uint64_t copy_lsn)
{
	(void) sink;
	(void) rel;
	(void) copy_lsn;
	return true;
}

/*
 * Close the group: send what is buffered and mark its end.  The group is
 * confirmed when BigQuery has acknowledged everything up to the mark
 * (flushed_lsn).  A group with copied rows is waited for, so that a
 * restart does not copy again.
 */
static bool
bq_commit(Sink *sink, uint64_t end_lsn)
{
	BqSink	   *bq = sink->private_data;
	bool		stopped;

	for (BqTable *t = bq->tables; t; t = t->next)
	{
		if (!flush_table(bq, t))
			return false;
	}
	if (bq->nmarks == bq->marks_cap)
	{
		bq->marks_cap = bq->marks_cap ? bq->marks_cap * 2 : 64;
		bq->marks = xrealloc(bq->marks, sizeof(CommitMark) * bq->marks_cap);
	}
	bq->marks[bq->nmarks].end_lsn = end_lsn;
	bq->marks[bq->nmarks].last_request = bq_writer_last_request(bq->writer);
	bq->nmarks++;
	bq->in_group = false;
	if (bq->group_backfill)
	{
		if (!bq_writer_wait(bq->writer, bq_writer_last_request(bq->writer), &stopped))
		{
			if (stopped)
				error_set(RESULT_RUNTIME, "could not finish the copy: interrupted");
			return false;
		}
		collect_acks(bq);
		if (!write_state(bq))
			return false;
	}
	if (!bq_writer_poll(bq->writer, 0))
		return false;

	/*
	 * Record the acknowledged position now and then.  A failure is not the
	 * group's: the position is recorded at a later commit.
	 */
	collect_acks(bq);
	if (bq->flushed > bq->state_lsn &&
		clock_us() - bq->state_written >= STATE_INTERVAL_US &&
		!write_state(bq))
	{
		log_warning("%s; the position will be recorded later", error_message());
		error_clear();
		bq->state_written = clock_us();
	}
	return true;
}

/* Rows not yet sent are dropped; sent ones carry their sequence numbers. */
static void
bq_abort(Sink *sink)
{
	BqSink	   *bq = sink->private_data;

	for (BqTable *t = bq->tables; t; t = t->next)
	{
		t->rows.len = 0;
		t->rows.nrows = 0;
	}
	bq->in_group = false;
}

/* Advance flushed past every group whose requests are all acknowledged. */
static void
collect_acks(BqSink *bq)
{
	uint64_t	lowest = bq_writer_lowest_unacked(bq->writer);
	size_t		done = 0;

	while (done < bq->nmarks && bq->marks[done].last_request < lowest)
	{
		if (bq->marks[done].end_lsn > bq->flushed)
			bq->flushed = bq->marks[done].end_lsn;
		done++;
	}
	if (done > 0)
	{
		memmove(bq->marks, bq->marks + done, sizeof(CommitMark) * (bq->nmarks - done));
		bq->nmarks -= done;
	}
}

/*
 * What BigQuery acknowledged, as the writer's thread collected it.  A
 * failure it found (a row refused, a call ended for good) is returned
 * here: the consumer then stops, having confirmed nothing BigQuery does
 * not hold.
 */
static bool
bq_flushed_lsn(Sink *sink, uint64_t *lsn)
{
	BqSink	   *bq = sink->private_data;

	if (bq->writer != NULL && !bq_writer_poll(bq->writer, 0))
		return false;
	collect_acks(bq);
	*lsn = bq->flushed;
	return true;
}

/* AppendRows requests sent or queued and not yet acknowledged. */
static void
bq_stats(Sink *sink, SinkStats *stats)
{
	BqSink	   *bq = sink->private_data;

	stats->has_requests = true;
	if (bq->writer != NULL)
		bq_writer_pending(bq->writer, &stats->requests_in_flight,
						  &stats->unacknowledged_bytes);
}

/*
 * Wait until BigQuery acknowledged every commit, and record it.  A stop
 * does not wait forever for a BigQuery that does not answer: after
 * SYNC_TIMEOUT_US it fails, having confirmed only what was acknowledged
 * (the rest is sent again at the next start).
 */
static bool
bq_sync(Sink *sink)
{
	BqSink	   *bq = sink->private_data;
	uint64_t	last = bq_writer_last_request(bq->writer);
	int64_t		deadline = clock_us() + SYNC_TIMEOUT_US;

	while (bq_writer_lowest_unacked(bq->writer) <= last)
	{
		if (!bq_writer_poll(bq->writer, 200))
			return false;
		if (clock_us() > deadline)
		{
			collect_acks(bq);
			error_set(RESULT_TARGET, "could not stop cleanly: BigQuery has not acknowledged every change after %d s; confirmed up to %X/%X, the rest is sent again at the next start",
					  (int) (SYNC_TIMEOUT_US / 1000000), LSN_FORMAT_ARGS(bq->flushed));
			return false;
		}
	}
	collect_acks(bq);
	if (bq->flushed > bq->state_lsn)
		return write_state(bq);
	return true;
}

static void
bq_close(Sink *sink)
{
	BqSink	   *bq = sink->private_data;

	if (bq == NULL)
		return;
	bq_writer_free(bq->writer);
	while (bq->tables)
	{
		BqTable    *t = bq->tables;

		bq->tables = t->next;
		bq_schema_free(t->schema);
		free(t->rows.data);
		free(t->rows.ends);
		free(t);
	}
	bq_rest_free(bq->rest);
	bq_auth_free(bq->auth);
	free(bq->marks);
	free(bq->project);
	free(bq->dataset);
	free(bq->location);
	free(bq->max_staleness);
	free(bq->slot);
	free(bq);
	sink->private_data = NULL;
}
