/*-------------------------------------------------------------------------
 *
 * inspect.c
 *		SQL functions that read what a dsplug slot emits back into rows:
 *		the readable view used by the regression tests and by users
 *		looking at a slot.
 *
 *		dsplug.peek_changes(slot, upto_lsn, upto_nchanges, VARIADIC options)
 *		dsplug.get_changes(slot, upto_lsn, upto_nchanges, VARIADIC options)
 *		dsplug.decode(frames bytea[])
 *
 * The first two run pg_logical_slot_{peek,get}_binary_changes and decode
 * its frames in order, with the same reader dsplug-consumer uses
 * (proto/wire_decode.c): one decoding session is one SQL call, so its
 * frames form one zstd stream and must be read together.  Each record
 * becomes a row (lsn, xid, frame, kind, position, relation, data), with the
 * values as JSON in the rendering proto/wire_text.c gives them.
 *
 * Memory: the decoder and everything it allocates come from palloc in a
 * context of this call, so an ERROR anywhere (a bad frame, a bad option
 * passed through to the plugin) frees it with the rest of the query.
 *
 * plugin/inspect.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/tuplestore.h"

#include "wire_decode.h"
#include "wire_text.h"

PG_FUNCTION_INFO_V1(dsplug_peek_changes);
PG_FUNCTION_INFO_V1(dsplug_get_changes);
PG_FUNCTION_INFO_V1(dsplug_decode);

/* Output columns of peek_changes/get_changes; decode() has the last five. */
#define INSPECT_SLOT_COLS	7
#define INSPECT_FRAME_COLS	5

/* Where decoded rows go, and the decoder's memory. */
typedef struct InspectState
{
	ReturnSetInfo *rsinfo;
	bool		with_origin;	/* lsn and xid columns present */
	MemoryContext cxt;			/* the decoder, for the whole call */
	MemoryContext frame_cxt;	/* reset for every frame */
	WireAllocator allocator;
	WireDecoder *decoder;
	WireText	text;
} InspectState;

static Datum slot_changes(FunctionCallInfo fcinfo, bool consume);
static void inspect_start(InspectState *state, FunctionCallInfo fcinfo,
						  bool with_origin);
static void inspect_frame(InspectState *state, int frameno, const char *slot,
						  bytea *frame, XLogRecPtr lsn, TransactionId xid,
						  bool xid_isnull);
static void emit_row(InspectState *state, XLogRecPtr lsn, TransactionId xid,
					 bool xid_isnull, int frameno, const char *kind,
					 int64 position, const char *relation);
static void render_ends(InspectState *state, const Dsplug__Batch *b,
						XLogRecPtr lsn, TransactionId xid, bool xid_isnull,
						int frameno);
static void append_time(WireText *t, const char *key, int64 value);
static void append_opt_string(WireText *t, const char *key, const char *value);
static void render_relation(WireText *t, const Dsplug__Relation *rel);
static void render_tuple(WireText *t, const char *key,
						 const Dsplug__Relation *rel,
						 const Dsplug__Tuple *tuple, bool key_only);
static void render_unchanged(WireText *t, const Dsplug__Relation *rel,
							 const Dsplug__Tuple *tuple);
static char *relation_name(const Dsplug__Relation *rel);
static void append_lsn(WireText *t, uint64 lsn);
static void append_cstr(WireText *t, const char *s);
static void *inspect_alloc(void *opaque, size_t size);
static void inspect_free(void *opaque, void *ptr);

Datum
dsplug_peek_changes(PG_FUNCTION_ARGS)
{
	return slot_changes(fcinfo, false);
}

Datum
dsplug_get_changes(PG_FUNCTION_ARGS)
{
	return slot_changes(fcinfo, true);
}

/*
 * Decode frames given as an array, in order, as one session.
 */
Datum
dsplug_decode(PG_FUNCTION_ARGS)
{
	ArrayType  *frames = PG_GETARG_ARRAYTYPE_P(0);
	InspectState state;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	inspect_start(&state, fcinfo, false);
	deconstruct_array(frames, BYTEAOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("frame %d is NULL", i + 1)));
		inspect_frame(&state, i + 1, NULL, DatumGetByteaPP(elems[i]),
					  InvalidXLogRecPtr, InvalidTransactionId, true);
	}
	return (Datum) 0;
}

/*
 * Run pg_logical_slot_{peek,get}_binary_changes with our arguments through
 * SPI and decode its rows as they are fetched.
 */
static Datum
slot_changes(FunctionCallInfo fcinfo, bool consume)
{
	InspectState state;
	Oid			argtypes[4] = {NAMEOID, PG_LSNOID, INT4OID, TEXTARRAYOID};
	Datum		args[4];
	char		argnulls[4];
	Portal		portal;
	int			frameno = 0;
	char	   *query;
	const char *slot;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("slot name must not be null")));
	slot = NameStr(*PG_GETARG_NAME(0));

	inspect_start(&state, fcinfo, true);

	for (int i = 0; i < 4; i++)
	{
		argnulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	if (PG_ARGISNULL(3))
	{
		argnulls[3] = ' ';
		args[3] = PointerGetDatum(construct_empty_array(TEXTOID));
	}

	query = psprintf("SELECT lsn, xid, data FROM pg_catalog.pg_logical_slot_%s_binary_changes($1, $2, $3, VARIADIC $4)",
					 consume ? "get" : "peek");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, query, 4, argtypes, args,
									   argnulls, false, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 256);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			XLogRecPtr	lsn;
			TransactionId xid;
			bool		xid_isnull;
			Datum		d;

			lsn = DatumGetLSN(SPI_getbinval(tup, desc, 1, &isnull));
			d = SPI_getbinval(tup, desc, 2, &xid_isnull);
			xid = xid_isnull ? InvalidTransactionId : DatumGetTransactionId(d);
			d = SPI_getbinval(tup, desc, 3, &isnull);
			inspect_frame(&state, ++frameno, slot, DatumGetByteaPP(d),
						  lsn, xid, xid_isnull);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}

static void
inspect_start(InspectState *state, FunctionCallInfo fcinfo, bool with_origin)
{
	InitMaterializedSRF(fcinfo, 0);
	state->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	state->with_origin = with_origin;
	state->cxt = AllocSetContextCreate(CurrentMemoryContext, "dsplug inspect",
									   ALLOCSET_DEFAULT_SIZES);
	state->frame_cxt = AllocSetContextCreate(state->cxt, "dsplug inspect frame",
											 ALLOCSET_DEFAULT_SIZES);
	state->allocator.alloc = inspect_alloc;
	state->allocator.free = inspect_free;
	state->allocator.opaque = state->cxt;
	state->decoder = wire_decoder_create(&state->allocator);
	wire_text_init(&state->text, &state->allocator);
}

/*
 * Decode one frame and emit a row per record, plus begin and commit rows.
 * slot names the frames' slot in errors (NULL for frames passed in).
 */
static void
inspect_frame(InspectState *state, int frameno, const char *slot,
			  bytea *frame, XLogRecPtr lsn, TransactionId xid,
			  bool xid_isnull)
{
	char		errbuf[512];
	const WireBatch *wb;
	const Dsplug__Batch *b;
	WireText   *t = &state->text;
	MemoryContext oldcxt;

	MemoryContextReset(state->frame_cxt);
	oldcxt = MemoryContextSwitchTo(state->frame_cxt);

	wb = wire_decoder_read(state->decoder, (const uint8_t *) VARDATA_ANY(frame),
						   VARSIZE_ANY_EXHDR(frame), errbuf, sizeof(errbuf));
	if (wb == NULL && slot == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decode dsplug frames: %s", errbuf),
				 errhint("Pass all frames of one decoding session, in order, starting with its first.")));
	if (wb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decode what slot \"%s\" emitted: %s",
						slot, errbuf)));
	b = wb->batch;

	if (b->begin != NULL)
	{
		wire_text_reset(t);
		append_cstr(t, "{\"xid\": ");
		append_cstr(t, psprintf("%u", b->begin->xid));
		append_cstr(t, ", \"commit_lsn\": ");
		append_lsn(t, b->begin->commit_lsn);
		append_time(t, "commit_time", b->begin->commit_time);
		append_opt_string(t, "origin", b->begin->origin);
		append_opt_string(t, "gid", b->begin->gid);
		append_cstr(t, "}");
		emit_row(state, lsn, xid, xid_isnull, frameno,
				 wb->prepared ? "begin_prepare" : "begin", -1, NULL);
	}
	if (b->stream_start != NULL)
	{
		wire_text_reset(t);
		append_cstr(t, psprintf("{\"xid\": %u, \"first\": %s}",
								b->stream_start->xid,
								b->stream_start->first ? "true" : "false"));
		emit_row(state, lsn, xid, xid_isnull, frameno, "stream_start", -1, NULL);
	}

	for (size_t i = 0; i < wb->nitems; i++)
	{
		const WireItem *item = &wb->items[i];
		const Dsplug__Record *rec = item->record;
		const Dsplug__Relation *rel = item->relation;
		const char *kind = NULL;
		char	   *relname = NULL;
		int64		position = item->position;

		wire_text_reset(t);
		switch (rec->kind_case)
		{
			case DSPLUG__RECORD__KIND_RELATION:
				kind = "relation";
				position = -1;
				relname = relation_name(rec->relation);
				render_relation(t, rec->relation);
				break;
			case DSPLUG__RECORD__KIND_INSERT:
				kind = "insert";
				relname = relation_name(rel);
				append_cstr(t, "{");
				render_tuple(t, "new", rel, rec->insert->new_, false);
				render_unchanged(t, rel, rec->insert->new_);
				append_cstr(t, "}");
				break;
			case DSPLUG__RECORD__KIND_UPDATE:
				kind = "update";
				relname = relation_name(rel);
				append_cstr(t, "{");
				if (rec->update->old != NULL)
				{
					render_tuple(t, "old", rel, rec->update->old,
								 rel->replica_identity != DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_FULL);
					append_cstr(t, ", ");
				}
				render_tuple(t, "new", rel, rec->update->new_, false);
				render_unchanged(t, rel, rec->update->new_);
				append_cstr(t, "}");
				break;
			case DSPLUG__RECORD__KIND_DELETE:
				kind = "delete";
				relname = relation_name(rel);
				append_cstr(t, "{");
				render_tuple(t, "old", rel, rec->delete_->old,
							 rel->replica_identity != DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_FULL);
				append_cstr(t, "}");
				break;
			case DSPLUG__RECORD__KIND_TRUNCATE:
				kind = "truncate";
				append_cstr(t, "{\"relations\": [");
				for (size_t r = 0; r < rec->truncate->n_relations; r++)
				{
					char	   *name = relation_name(wire_decoder_relation(state->decoder,
																		   rec->truncate->relations[r]));

					if (r > 0)
						append_cstr(t, ", ");
					wire_text_append_json_string(t, name, strlen(name));
				}
				append_cstr(t, "], \"cascade\": ");
				append_cstr(t, rec->truncate->cascade ? "true" : "false");
				append_cstr(t, ", \"restart_identity\": ");
				append_cstr(t, rec->truncate->restart_identity ? "true" : "false");
				append_cstr(t, "}");
				break;
			case DSPLUG__RECORD__KIND_MESSAGE:
				{
					const Dsplug__Message *m = rec->message;
					const char *content = (const char *) m->content.data;
					int			len = (int) m->content.len;

					kind = "message";
					append_cstr(t, "{\"transactional\": ");
					append_cstr(t, m->transactional ? "true" : "false");
					append_cstr(t, ", \"prefix\": ");
					wire_text_append_json_string(t, m->prefix, strlen(m->prefix));
					if (len == 0 ||
						(memchr(content, '\0', len) == NULL &&
						 pg_verify_mbstr(PG_UTF8, content, len, true)))
					{
						append_cstr(t, ", \"content\": ");
						wire_text_append_json_string(t, content, len);
					}
					else
					{
						append_cstr(t, ", \"content_bytes\": \"\\\\x");
						for (int c = 0; c < len; c++)
							append_cstr(t, psprintf("%02x", (unsigned char) content[c]));
						append_cstr(t, "\"");
					}
					append_cstr(t, "}");
					break;
				}
			default:
				elog(ERROR, "dsplug: unexpected record kind %d",
					 (int) rec->kind_case);
		}
		if (wb->in_stream_chunk)
		{
			position = -1;
			if (rec->xid != 0 && t->len > 1 && t->data[t->len - 1] == '}')
			{
				t->len--;
				t->data[t->len] = '\0';
				append_cstr(t, psprintf(", \"xid\": %u}", rec->xid));
			}
		}
		emit_row(state, lsn, xid, xid_isnull, frameno, kind, position, relname);
	}

	if (b->commit != NULL)
	{
		wire_text_reset(t);
		append_cstr(t, "{\"end_lsn\": ");
		append_lsn(t, b->commit->end_lsn);
		append_cstr(t, "}");
		emit_row(state, lsn, xid, xid_isnull, frameno, "commit", -1, NULL);
	}
	if (b->stream_stop)
	{
		wire_text_reset(t);
		append_cstr(t, "{}");
		emit_row(state, lsn, xid, xid_isnull, frameno, "stream_stop", -1, NULL);
	}
	render_ends(state, b, lsn, xid, xid_isnull, frameno);
	MemoryContextSwitchTo(oldcxt);
}

/* One output row; its data column is the JSON in state->text. */
static void
emit_row(InspectState *state, XLogRecPtr lsn, TransactionId xid,
		 bool xid_isnull, int frameno, const char *kind, int64 position,
		 const char *relation)
{
	Datum		values[INSPECT_SLOT_COLS];
	bool		nulls[INSPECT_SLOT_COLS];
	int			c = 0;

	memset(nulls, 0, sizeof(nulls));
	if (state->with_origin)
	{
		values[c++] = LSNGetDatum(lsn);
		nulls[c] = xid_isnull;
		values[c++] = TransactionIdGetDatum(xid);
	}
	values[c++] = Int32GetDatum(frameno);
	values[c++] = CStringGetTextDatum(kind);
	nulls[c] = (position < 0);
	values[c++] = Int32GetDatum((int32) Max(position, 0));
	nulls[c] = (relation == NULL);
	values[c++] = relation ? CStringGetTextDatum(relation) : (Datum) 0;
	values[c++] = CStringGetTextDatum(state->text.data);
	Assert(c == (state->with_origin ? INSPECT_SLOT_COLS : INSPECT_FRAME_COLS));

	tuplestore_putvalues(state->rsinfo->setResult, state->rsinfo->setDesc,
						 values, nulls);
}

/* Rows for the ends of streamed and prepared transactions. */
static void
render_ends(InspectState *state, const Dsplug__Batch *b, XLogRecPtr lsn,
			TransactionId xid, bool xid_isnull, int frameno)
{
	WireText   *t = &state->text;
	const char *kind = NULL;

	wire_text_reset(t);
	if (b->prepare != NULL)
	{
		kind = "prepare";
		append_cstr(t, psprintf("{\"xid\": %u", b->prepare->xid));
		append_opt_string(t, "gid", b->prepare->gid);
		append_cstr(t, ", \"prepare_lsn\": ");
		append_lsn(t, b->prepare->prepare_lsn);
		append_cstr(t, ", \"end_lsn\": ");
		append_lsn(t, b->prepare->end_lsn);
		append_time(t, "prepare_time", b->prepare->prepare_time);
	}
	else if (b->stream_commit != NULL)
	{
		kind = "stream_commit";
		append_cstr(t, psprintf("{\"xid\": %u, \"commit_lsn\": ", b->stream_commit->xid));
		append_lsn(t, b->stream_commit->commit_lsn);
		append_cstr(t, ", \"end_lsn\": ");
		append_lsn(t, b->stream_commit->end_lsn);
		append_time(t, "commit_time", b->stream_commit->commit_time);
	}
	else if (b->stream_abort != NULL)
	{
		kind = "stream_abort";
		append_cstr(t, psprintf("{\"xid\": %u, \"subxid\": %u",
								b->stream_abort->xid, b->stream_abort->subxid));
	}
	else if (b->commit_prepared != NULL)
	{
		kind = "commit_prepared";
		append_cstr(t, psprintf("{\"xid\": %u", b->commit_prepared->xid));
		append_opt_string(t, "gid", b->commit_prepared->gid);
		append_cstr(t, ", \"commit_lsn\": ");
		append_lsn(t, b->commit_prepared->commit_lsn);
		append_cstr(t, ", \"end_lsn\": ");
		append_lsn(t, b->commit_prepared->end_lsn);
		append_time(t, "commit_time", b->commit_prepared->commit_time);
	}
	else if (b->rollback_prepared != NULL)
	{
		kind = "rollback_prepared";
		append_cstr(t, psprintf("{\"xid\": %u", b->rollback_prepared->xid));
		append_opt_string(t, "gid", b->rollback_prepared->gid);
		append_cstr(t, ", \"prepare_end_lsn\": ");
		append_lsn(t, b->rollback_prepared->prepare_end_lsn);
		append_cstr(t, ", \"end_lsn\": ");
		append_lsn(t, b->rollback_prepared->end_lsn);
		append_time(t, "rollback_time", b->rollback_prepared->rollback_time);
	}
	if (kind == NULL)
		return;
	append_cstr(t, "}");
	emit_row(state, lsn, xid, xid_isnull, frameno, kind, -1, NULL);
}

/* , "key": "ISO timestamp" */
static void
append_time(WireText *t, const char *key, int64 value)
{
	char		ts[WIRE_DATETIME_BUFLEN];

	wire_format_timestamp(ts, value, true);
	append_cstr(t, psprintf(", \"%s\": ", key));
	wire_text_append_json_string(t, ts, strlen(ts));
}

/* , "key": "value" when value is set and not empty */
static void
append_opt_string(WireText *t, const char *key, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	append_cstr(t, psprintf(", \"%s\": ", key));
	wire_text_append_json_string(t, value, strlen(value));
}

static void
render_relation(WireText *t, const Dsplug__Relation *rel)
{
	static const char *const identities[] = {"default", "nothing", "full", "index"};
	static const char *const kinds[] = {
		"text", "int", "float4", "float8", "bool", "bytea", "numeric",
		"date", "time", "timestamp", "timestamptz", "uuid", "json",
		"interval", "array"
	};

	append_cstr(t, "{\"oid\": ");
	append_cstr(t, psprintf("%u", rel->oid));
	append_cstr(t, ", \"replica_identity\": \"");
	append_cstr(t, identities[rel->replica_identity]);
	append_cstr(t, "\", \"columns\": [");
	for (size_t i = 0; i < rel->n_columns; i++)
	{
		const Dsplug__Column *c = rel->columns[i];

		if (i > 0)
			append_cstr(t, ", ");
		append_cstr(t, "{\"name\": ");
		wire_text_append_json_string(t, c->name, strlen(c->name));
		append_cstr(t, ", \"type\": ");
		wire_text_append_json_string(t, c->type_name, strlen(c->type_name));
		if (c->typmod != -1)
			append_cstr(t, psprintf(", \"typmod\": %d", c->typmod));
		append_cstr(t, ", \"kind\": \"");
		append_cstr(t, kinds[c->kind]);
		if (c->kind == DSPLUG__KIND__KIND_ARRAY)
		{
			append_cstr(t, "\", \"element_kind\": \"");
			append_cstr(t, kinds[c->element_kind]);
		}
		append_cstr(t, "\"");
		if (c->key)
			append_cstr(t, ", \"key\": true");
		if (c->primary_key)
			append_cstr(t, ", \"primary_key\": true");
		if (c->not_null)
			append_cstr(t, ", \"not_null\": true");
		append_cstr(t, "}");
	}
	append_cstr(t, "]}");
}

/*
 * "key": {column: value, ...}.  An old key tuple shows only key columns
 * (the others are not sent); unchanged TOAST values are left out here and
 * listed by render_unchanged.
 */
static void
render_tuple(WireText *t, const char *key, const Dsplug__Relation *rel,
			 const Dsplug__Tuple *tuple, bool key_only)
{
	bool		first = true;

	wire_text_append_json_string(t, key, strlen(key));
	append_cstr(t, ": {");
	for (size_t i = 0; i < tuple->n_values; i++)
	{
		const Dsplug__Column *c = rel->columns[i];
		const Dsplug__Value *v = tuple->values[i];

		if (key_only && !c->key)
			continue;
		if (v->kind_case == DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
			continue;
		if (!first)
			append_cstr(t, ", ");
		first = false;
		wire_text_append_json_string(t, c->name, strlen(c->name));
		append_cstr(t, ": ");
		if (!wire_text_append_value_json(t, v, c))
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
	append_cstr(t, "}");
}

/* , "unchanged_toast": [columns] when the tuple has any. */
static void
render_unchanged(WireText *t, const Dsplug__Relation *rel,
				 const Dsplug__Tuple *tuple)
{
	bool		first = true;

	for (size_t i = 0; i < tuple->n_values; i++)
	{
		if (tuple->values[i]->kind_case != DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
			continue;
		append_cstr(t, first ? ", \"unchanged_toast\": [" : ", ");
		first = false;
		wire_text_append_json_string(t, rel->columns[i]->name,
									 strlen(rel->columns[i]->name));
	}
	if (!first)
		append_cstr(t, "]");
}

static char *
relation_name(const Dsplug__Relation *rel)
{
	if (rel == NULL)
		return pstrdup("?");
	return psprintf("%s.%s", rel->schema, rel->name);
}

static void
append_lsn(WireText *t, uint64 lsn)
{
	append_cstr(t, psprintf("\"%X/%X\"", LSN_FORMAT_ARGS(lsn)));
}

static void
append_cstr(WireText *t, const char *s)
{
	if (!wire_text_append(t, s, strlen(s)))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
}

static void *
inspect_alloc(void *opaque, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) opaque, size,
									  MCXT_ALLOC_HUGE);
}

static void
inspect_free(void *opaque, void *ptr)
{
	if (ptr != NULL)
		pfree(ptr);
}
