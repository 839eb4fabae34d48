/*-------------------------------------------------------------------------
 *
 * bigquery_write.c
 *		The Storage Write API: rows into BigQuery tables through AppendRows
 *		on each table's _default stream, with the gRPC C core.
 *
 * One bidirectional AppendRows call per table (a BqStream), all on one
 * channel and one completion queue.  A thread of its own, the completion
 * thread, waits on the queue (gRPC's core makes its I/O progress in that
 * wait), handles every completed batch, sends the next request as soon as
 * the previous send is done, and runs the retry timers; so the pipeline
 * keeps moving while the consumer's thread waits for the source.  The
 * consumer's thread only queues requests (bq_writer_append) and reads what
 * was acknowledged.  One mutex (BqWriter.lock) guards all of the writer's
 * state; the condition variable wakes whoever waits for acknowledgements
 * or room.  Per call, one send and one receive
 * are outstanding at a time; requests are pipelined (sent without waiting
 * for their answers), and answers come back in request order, so the
 * oldest request in flight is the one an answer is for.
 *
 * Every request carries an id from one counter for all tables, and stays
 * queued (with its rows) until BigQuery acknowledges it; the sink confirms
 * a commit only once every request up to the commit's last id is
 * acknowledged (bq_writer_lowest_unacked).  Requests are never reordered
 * for correctness' sake: every row carries its sequence number (merge) or
 * is a log line with it (change log), so resending in another order, or
 * twice, yields the same table.
 *
 * Failures, by class:
 *	- the call ends UNAVAILABLE, INTERNAL, ABORTED, CANCELLED, UNKNOWN,
 *	  DEADLINE_EXCEEDED, OK (server closed an idle call) or the connection
 *	  drops: a new call after a backoff, resending what was not acknowledged
 *	  (the first request of every call carries the stream and the writer
 *	  schema);
 *	- RESOURCE_EXHAUSTED (quota), in band or as the call's end: back off
 *	  longer, then resend;
 *	- in-band INTERNAL, ABORTED, UNAVAILABLE: resend that request;
 *	- UNAUTHENTICATED: a new call with a fresh token, a few times;
 *	- anything else, and row errors (bad data), stop the consumer with the
 *	  table, the row's key and BigQuery's reason (EXIT_TARGET).
 *
 * consumer/sinks/bigquery/bigquery_write.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <curl/curl.h>

#include "sinks/bigquery/bigquery.h"
#include "bigquery_write.pb-c.h"
#include "common/common.h"

#define APPEND_ROWS_METHOD	"/google.cloud.bigquery.storage.v1.BigQueryWrite/AppendRows"

/* requests (bytes) a table may have sent or queued before append waits */
#define MAX_QUEUED_BYTES	((size_t) 48 * 1024 * 1024)
/* in-band retries of one request before giving up */
#define MAX_ATTEMPTS		20
/* consecutive UNAUTHENTICATED call ends before giving up */
#define MAX_AUTH_FAILURES	3

typedef enum BqOpKind
{
	OP_SEND,
	OP_RECV,
	OP_STATUS
} BqOpKind;

/* The tag of a batch: which stream, which operation. */
typedef struct BqOp
{
	BqStream   *stream;
	BqOpKind	kind;
} BqOp;

/* One AppendRows request: rows, kept until acknowledged. */
typedef struct BqRequest
{
	uint64_t	id;
	BqRowBuf	rows;
	int			attempts;
	struct BqRequest *next;
} BqRequest;

typedef struct BqQueue
{
	BqRequest  *head;
	BqRequest  *tail;
} BqQueue;

struct BqStream
{
	BqWriter   *w;
	char	   *name;			/* projects/P/datasets/D/tables/T/streams/_default */
	char	   *label;			/* D.T, for messages */
	char	   *routing;		/* write_stream=<name, URL-encoded> */
	BqTableSchema *schema;		/* the sink's; its version says when to
								 * resend the writer schema */

	/* the current call, if any */
	grpc_call  *call;
	bool		metadata_sent;
	bool		sending;
	bool		receiving;
	bool		ended;			/* status received */
	grpc_metadata md[2];
	size_t		nmd;
	grpc_byte_buffer *send_buf;
	grpc_byte_buffer *recv_buf;
	grpc_metadata_array initial_md;
	grpc_metadata_array trailing_md;
	grpc_status_code status;
	grpc_slice	details;
	uint32_t	sent_version;	/* writer schema version on this call; 0:
								 * none yet */
	Dsplug__Bigquery__ProtoSchema *schema_msg;	/* unpacked writer schema */
	uint32_t	schema_msg_version;
	BqOp		op_send;
	BqOp		op_recv;
	BqOp		op_status;

	BqQueue		inflight;		/* sent on this call, in send order */
	BqQueue		unsent;
	size_t		queued_bytes;
	int64_t		retry_at;		/* clock_us(); 0: now */
	int			failures;		/* consecutive, for the backoff */
	int			auth_failures;
	BqStream   *next;
};

struct BqWriter
{
	grpc_channel *channel;
	grpc_completion_queue *cq;
	pthread_t	cq_thread;
	pthread_mutex_t lock;		/* everything below, and every stream */
	pthread_cond_t cond;		/* requests acknowledged, or failure */
	char		error[2048];	/* the failure, set by fail_stream */
	BqAuth	   *auth;
	BqStream   *streams;
	uint64_t	next_id;
	bool		failed;			/* an error is set; stop */
	bool		closing;		/* calls are being cancelled */
};

static bool start_call(BqStream *s);
static void pump(BqStream *s);
static bool send_next(BqStream *s);
static bool start_recv(BqStream *s, bool first);
static void handle_event(BqWriter *w, grpc_event ev);
static void *cq_thread_main(void *arg);
static void run_timers(BqWriter *w);
static bool writer_failed(BqWriter *w);
static void wait_cond(BqWriter *w, int64_t wait_us);
static void handle_response(BqStream *s, const uint8_t *data, size_t len);
static void finish_call(BqStream *s);
static void fail_stream(BqStream *s, const char *fmt,...) CONSUMER_PRINTF(2, 3);
static void schedule_retry(BqStream *s, bool quota, const char *why);
static void queue_push(BqQueue *q, BqRequest *r);
static void queue_push_front(BqQueue *q, BqRequest *r);
static BqRequest *queue_pop(BqQueue *q);
static void request_free(BqRequest *r);
static const char *status_name(int code);

/*
 * A writer on endpoint (HOST:PORT; NULL: bigquerystorage.googleapis.com:443),
 * TLS unless plaintext; auth NULL sends no credentials.  Never fails:
 * connections are made per call.
 */
BqWriter *
bq_writer_create(const char *endpoint, bool plaintext, BqAuth *auth)
{
	BqWriter   *w = xmalloc(sizeof(BqWriter));
	grpc_channel_credentials *creds;
	grpc_arg	args[2];
	grpc_channel_args chargs;

	memset(w, 0, sizeof(BqWriter));
	grpc_init();
	creds = plaintext ? grpc_insecure_credentials_create() :
		grpc_ssl_credentials_create(NULL, NULL, NULL, NULL);
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = -1;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = -1;
	chargs.num_args = 2;
	chargs.args = args;
	w->channel = grpc_channel_create(endpoint ? endpoint :
									 "bigquerystorage.googleapis.com:443",
									 creds, &chargs);
	grpc_channel_credentials_release(creds);
	w->cq = grpc_completion_queue_create_for_next(NULL);
	w->auth = auth;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->cq_thread, NULL, cq_thread_main, w) != 0)
	{
		fprintf(stderr, "dsplug-consumer: could not start the gRPC completion thread\n");
		exit(EXIT_RUNTIME);
	}
	return w;
}

/*
 * The completion thread: wait for completed batches (this is where gRPC
 * reads and writes the connection), handle them, send what can be sent,
 * retry what is due; until the queue is shut down.
 */
static void *
cq_thread_main(void *arg)
{
	BqWriter   *w = arg;

	for (;;)
	{
		grpc_event	ev;

		ev = grpc_completion_queue_next(w->cq,
										gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
													 gpr_time_from_millis(50, GPR_TIMESPAN)),
										NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		pthread_mutex_lock(&w->lock);
		if (ev.type == GRPC_OP_COMPLETE)
			handle_event(w, ev);
		run_timers(w);
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

/* Calls whose backoff is over are opened again; everything is pumped. */
static void
run_timers(BqWriter *w)
{
	int64_t		now = clock_us();

	for (BqStream *s = w->streams; s; s = s->next)
	{
		if (s->retry_at != 0 && s->retry_at <= now)
			s->retry_at = 0;
		pump(s);
	}
}

/* With the lock held: true after setting the error when the writer failed. */
static bool
writer_failed(BqWriter *w)
{
	if (!w->failed)
		return false;
	error_set(RESULT_TARGET, "%s", w->error);
	return true;
}

/* With the lock held: wait for the completion thread, up to wait_us. */
static void
wait_cond(BqWriter *w, int64_t wait_us)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_us / 1000000;
	until.tv_nsec += (wait_us % 1000000) * 1000;
	if (until.tv_nsec >= 1000000000)
	{
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&w->cond, &w->lock, &until);
}

/* Cancel every call, wait for their operations, and free everything. */
void
bq_writer_free(BqWriter *w)
{
	bool		busy;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->closing = true;
	for (BqStream *s = w->streams; s; s = s->next)
	{
		if (s->call)
			grpc_call_cancel(s->call, NULL);
	}
	do
	{
		busy = false;
		for (BqStream *s = w->streams; s; s = s->next)
		{
			if (s->call && (s->sending || s->receiving || !s->ended))
				busy = true;
			else if (s->call)
				finish_call(s);
		}
		if (busy)
			wait_cond(w, 100000);
	} while (busy);
	pthread_mutex_unlock(&w->lock);

	while (w->streams)
	{
		BqStream   *s = w->streams;
		BqRequest  *r;

		w->streams = s->next;
		while ((r = queue_pop(&s->inflight)) != NULL)
			request_free(r);
		while ((r = queue_pop(&s->unsent)) != NULL)
			request_free(r);
		if (s->schema_msg)
			dsplug__bigquery__proto_schema__free_unpacked(s->schema_msg, NULL);
		free(s->name);
		free(s->label);
		free(s->routing);
		free(s);
	}
	grpc_completion_queue_shutdown(w->cq);
	pthread_join(w->cq_thread, NULL);
	grpc_completion_queue_destroy(w->cq);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	grpc_channel_destroy(w->channel);
	grpc_shutdown();
	free(w);
}

/*
 * The stream of a table (created on first use).  schema stays the caller's
 * and must outlive the writer's use of it.
 */
BqStream *
bq_writer_stream(BqWriter *w, const char *project, const char *dataset,
				 BqTableSchema *schema)
{
	BqStream   *s;
	size_t		len;
	char	   *enc;

	for (s = w->streams; s; s = s->next)
	{
		if (s->schema == schema)
			return s;
	}
	s = xmalloc(sizeof(BqStream));
	memset(s, 0, sizeof(BqStream));
	s->w = w;
	s->schema = schema;
	len = strlen(project) + strlen(dataset) + strlen(schema->table_id) + 64;
	s->name = xmalloc(len);
	snprintf(s->name, len, "projects/%s/datasets/%s/tables/%s/streams/_default",
			 project, dataset, schema->table_id);
	s->label = xmalloc(len);
	snprintf(s->label, len, "%s.%s", dataset, schema->table_id);
	/* the routing header: the stream's name, URL-encoded */
	enc = curl_easy_escape(NULL, s->name, 0);
	if (enc == NULL)
	{
		fprintf(stderr, "dsplug-consumer: could not encode a stream name: out of memory\n");
		exit(EXIT_RUNTIME);
	}
	s->routing = xmalloc(strlen(enc) + 16);
	sprintf(s->routing, "write_stream=%s", enc);
	curl_free(enc);
	s->op_send.stream = s->op_recv.stream = s->op_status.stream = s;
	s->op_send.kind = OP_SEND;
	s->op_recv.kind = OP_RECV;
	s->op_status.kind = OP_STATUS;
	s->next = w->streams;
	w->streams = s;
	return s;
}

/*
 * Queue the rows as one request and send what can be sent; rows is taken
 * (left empty).  Waits while the table has too much unacknowledged.  false
 * after error_set when the writer failed.
 */
bool
bq_writer_append(BqWriter *w, BqStream *s, BqRowBuf *rows)
{
	BqRequest  *r;
	bool		ok;

	if (rows->nrows == 0)
		return true;
	r = xmalloc(sizeof(BqRequest));
	memset(r, 0, sizeof(BqRequest));
	r->id = ++w->next_id;
	r->rows = *rows;
	memset(rows, 0, sizeof(BqRowBuf));
	pthread_mutex_lock(&w->lock);
	s->queued_bytes += r->rows.len;
	queue_push(&s->unsent, r);
	pump(s);
	while (s->queued_bytes > MAX_QUEUED_BYTES && !w->failed)
		wait_cond(w, 100000);
	ok = !writer_failed(w);
	pthread_mutex_unlock(&w->lock);
	return ok;
}

/* The id of the last request queued (0: none yet). */
uint64_t
bq_writer_last_request(BqWriter *w)
{
	uint64_t	id;

	pthread_mutex_lock(&w->lock);
	id = w->next_id;
	pthread_mutex_unlock(&w->lock);
	return id;
}

/* Requests not yet acknowledged (sent or waiting to be), and their bytes. */
void
bq_writer_pending(BqWriter *w, uint64_t *requests, uint64_t *bytes)
{
	uint64_t	n = 0;
	uint64_t	len = 0;

	pthread_mutex_lock(&w->lock);
	for (BqStream *s = w->streams; s; s = s->next)
	{
		for (BqRequest *r = s->inflight.head; r; r = r->next, n++)
			len += r->rows.len;
		for (BqRequest *r = s->unsent.head; r; r = r->next, n++)
			len += r->rows.len;
	}
	pthread_mutex_unlock(&w->lock);
	*requests = n;
	*bytes = len;
}

/* The lowest id not yet acknowledged; past the last request when none. */
uint64_t
bq_writer_lowest_unacked(BqWriter *w)
{
	uint64_t	lowest;

	pthread_mutex_lock(&w->lock);
	lowest = w->next_id + 1;

	for (BqStream *s = w->streams; s; s = s->next)
	{
		for (BqRequest *r = s->inflight.head; r; r = r->next)
			if (r->id < lowest)
				lowest = r->id;
		for (BqRequest *r = s->unsent.head; r; r = r->next)
			if (r->id < lowest)
				lowest = r->id;
	}
	pthread_mutex_unlock(&w->lock);
	return lowest;
}

/*
 * Wait up to timeout_ms (0: not at all) for the completion thread to
 * handle something.  false after error_set when the writer failed.
 */
bool
bq_writer_poll(BqWriter *w, int timeout_ms)
{
	bool		ok;

	pthread_mutex_lock(&w->lock);
	if (timeout_ms > 0 && !w->failed)
		wait_cond(w, (int64_t) timeout_ms * 1000);
	ok = !writer_failed(w);
	pthread_mutex_unlock(&w->lock);
	return ok;
}

/*
 * Wait until every request up to id is acknowledged.  With interruptible,
 * SIGINT/SIGTERM stop the wait (false, no error set: *stopped).  false
 * after error_set when the writer failed.
 */
bool
bq_writer_wait(BqWriter *w, uint64_t id, bool *stopped)
{
	if (stopped)
		*stopped = false;
	while (bq_writer_lowest_unacked(w) <= id)
	{
		if (!bq_writer_poll(w, 200))
			return false;
		if (stopped && stop_requested)
		{
			*stopped = true;
			return false;
		}
	}
	return true;
}

static void
queue_push(BqQueue *q, BqRequest *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
}

static void
queue_push_front(BqQueue *q, BqRequest *r)
{
	r->next = q->head;
	q->head = r;
	if (q->tail == NULL)
		q->tail = r;
}

static BqRequest *
queue_pop(BqQueue *q)
{
	BqRequest  *r = q->head;

	if (r)
	{
		q->head = r->next;
		if (q->head == NULL)
			q->tail = NULL;
		r->next = NULL;
	}
	return r;
}

static void
request_free(BqRequest *r)
{
	free(r->rows.data);
	free(r->rows.ends);
	free(r);
}

/* encodeURIComponent: '/' and every other reserved byte as %XX */

/* Send what is queued, opening a call when there is none. */
static void
pump(BqStream *s)
{
	if (s->w->failed || s->w->closing || s->retry_at != 0)
		return;
	if (s->call == NULL)
	{
		if (s->unsent.head == NULL)
			return;
		if (!start_call(s))
			return;
	}
	if (!s->ended && !s->sending && s->unsent.head != NULL)
		send_next(s);
}

/*
 * Open an AppendRows call: metadata with a fresh token and the routing
 * header, the status batch and the first receive.
 */
static bool
start_call(BqStream *s)
{
	BqWriter   *w = s->w;
	char	   *token = NULL;
	grpc_op		op;
	grpc_slice	method = grpc_slice_from_static_string(APPEND_ROWS_METHOD);

	if (w->auth != NULL)
	{
		token = bq_auth_token(w->auth);
		if (token == NULL)
		{
			/* the token source may be back later: retry like the server */
			schedule_retry(s, false, error_message());
			error_clear();
			return false;
		}
	}
	s->nmd = 0;
	if (token != NULL)
	{
		size_t		len = strlen(token) + 8;
		char	   *value = xmalloc(len);

		snprintf(value, len, "Bearer %s", token);
		s->md[s->nmd].key = grpc_slice_from_static_string("authorization");
		s->md[s->nmd].value = grpc_slice_from_copied_string(value);
		s->nmd++;
		memset(value, 0, len);
		free(value);
		memset(token, 0, strlen(token));
		free(token);
	}
	s->md[s->nmd].key = grpc_slice_from_static_string("x-goog-request-params");
	s->md[s->nmd].value = grpc_slice_from_copied_string(s->routing);
	s->nmd++;

	s->call = grpc_channel_create_call(w->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
									   w->cq, method, NULL,
									   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	s->metadata_sent = false;
	s->ended = false;
	s->sent_version = 0;
	grpc_metadata_array_init(&s->initial_md);
	grpc_metadata_array_init(&s->trailing_md);
	s->details = grpc_empty_slice();

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	op.data.recv_status_on_client.status = &s->status;
	op.data.recv_status_on_client.status_details = &s->details;
	if (grpc_call_start_batch(s->call, &op, 1, &s->op_status, NULL) != GRPC_CALL_OK)
	{
		fail_stream(s, "could not start an AppendRows call for table \"%s\"", s->label);
		return false;
	}
	return start_recv(s, true);
}

/* One receive outstanding: with the initial metadata the first time. */
static bool
start_recv(BqStream *s, bool first)
{
	grpc_op		ops[2];
	size_t		n = 0;

	memset(ops, 0, sizeof(ops));
	if (first)
	{
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
		n++;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = &s->recv_buf;
	n++;
	s->recv_buf = NULL;
	if (grpc_call_start_batch(s->call, ops, n, &s->op_recv, NULL) != GRPC_CALL_OK)
	{
		fail_stream(s, "could not receive on the AppendRows call for table \"%s\"", s->label);
		return false;
	}
	s->receiving = true;
	return true;
}

/*
 * Send the oldest unsent request.  The first request of a call names the
 * stream; the writer schema goes with it and whenever it changed.
 */
static bool
send_next(BqStream *s)
{
	BqRequest  *r = queue_pop(&s->unsent);
	Dsplug__Bigquery__AppendRowsRequest req = DSPLUG__BIGQUERY__APPEND_ROWS_REQUEST__INIT;
	Dsplug__Bigquery__AppendRowsRequest__ProtoData pd = DSPLUG__BIGQUERY__APPEND_ROWS_REQUEST__PROTO_DATA__INIT;
	Dsplug__Bigquery__ProtoRows prows = DSPLUG__BIGQUERY__PROTO_ROWS__INIT;
	ProtobufCBinaryData *bins;
	grpc_slice	slice;
	grpc_op		ops[2];
	size_t		n = 0;
	size_t		start = 0;

	bins = xmalloc(sizeof(ProtobufCBinaryData) * r->rows.nrows);
	for (size_t i = 0; i < r->rows.nrows; i++)
	{
		bins[i].data = r->rows.data + start;
		bins[i].len = r->rows.ends[i] - start;
		start = r->rows.ends[i];
	}
	prows.n_serialized_rows = r->rows.nrows;
	prows.serialized_rows = bins;
	pd.rows = &prows;
	if (s->sent_version != s->schema->version)
	{
		if (s->schema_msg_version != s->schema->version)
		{
			if (s->schema_msg)
				dsplug__bigquery__proto_schema__free_unpacked(s->schema_msg, NULL);
			s->schema_msg = dsplug__bigquery__proto_schema__unpack(NULL,
																   s->schema->writer_schema_len,
																   s->schema->writer_schema);
			s->schema_msg_version = s->schema->version;
		}
		pd.writer_schema = s->schema_msg;
	}
	if (s->sent_version == 0)
		req.write_stream = s->name;
	req.rows_case = DSPLUG__BIGQUERY__APPEND_ROWS_REQUEST__ROWS_PROTO_ROWS;
	req.proto_rows = &pd;

	slice = grpc_slice_malloc(dsplug__bigquery__append_rows_request__get_packed_size(&req));
	dsplug__bigquery__append_rows_request__pack(&req, GRPC_SLICE_START_PTR(slice));
	free(bins);
	s->send_buf = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);

	memset(ops, 0, sizeof(ops));
	if (!s->metadata_sent)
	{
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].data.send_initial_metadata.count = s->nmd;
		ops[n].data.send_initial_metadata.metadata = s->md;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = s->send_buf;
	n++;
	if (grpc_call_start_batch(s->call, ops, n, &s->op_send, NULL) != GRPC_CALL_OK)
	{
		queue_push_front(&s->unsent, r);
		fail_stream(s, "could not send on the AppendRows call for table \"%s\"", s->label);
		return false;
	}
	s->metadata_sent = true;
	s->sending = true;
	s->sent_version = s->schema->version;
	queue_push(&s->inflight, r);
	return true;
}

static void
handle_event(BqWriter *w, grpc_event ev)
{
	BqOp	   *op;
	BqStream   *s;

	(void) w;
	if (ev.type != GRPC_OP_COMPLETE)
		return;
	op = (BqOp *) ev.tag;
	s = op->stream;
	switch (op->kind)
	{
		case OP_SEND:
			s->sending = false;
			grpc_byte_buffer_destroy(s->send_buf);
			s->send_buf = NULL;
			break;
		case OP_RECV:
			s->receiving = false;
			if (ev.success && s->recv_buf != NULL)
			{
				grpc_byte_buffer_reader reader;
				grpc_slice	all;

				grpc_byte_buffer_reader_init(&reader, s->recv_buf);
				all = grpc_byte_buffer_reader_readall(&reader);
				grpc_byte_buffer_reader_destroy(&reader);
				grpc_byte_buffer_destroy(s->recv_buf);
				s->recv_buf = NULL;
				handle_response(s, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
				grpc_slice_unref(all);
				if (!s->ended && s->call != NULL)
					start_recv(s, false);
			}
			break;
		case OP_STATUS:
			s->ended = true;
			break;
	}
	if (s->call != NULL && s->ended && !s->sending && !s->receiving)
		finish_call(s);
}

/* The answer to the oldest request in flight. */
static void
handle_response(BqStream *s, const uint8_t *data, size_t len)
{
	Dsplug__Bigquery__AppendRowsResponse *resp;
	BqRequest  *r = s->inflight.head;

	resp = dsplug__bigquery__append_rows_response__unpack(NULL, len, data);
	if (resp == NULL || r == NULL)
	{
		fail_stream(s, "could not read an AppendRows answer for table \"%s\": %s",
					s->label, resp == NULL ? "undecodable" : "no request was pending");
		if (resp)
			dsplug__bigquery__append_rows_response__free_unpacked(resp, NULL);
		return;
	}
	queue_pop(&s->inflight);

	if (resp->response_case != DSPLUG__BIGQUERY__APPEND_ROWS_RESPONSE__RESPONSE_ERROR)
	{
		s->queued_bytes -= r->rows.len;
		s->failures = 0;
		s->auth_failures = 0;
		request_free(r);
	}
	else
	{
		int			code = resp->error->code;
		const char *msg = resp->error->message ? resp->error->message : "";

		if (resp->n_row_errors > 0)
		{
			const Dsplug__Bigquery__RowError *re = resp->row_errors[0];
			int64_t		i = re->index;
			WireText	key;

			wire_text_init(&key, NULL);
			if (i >= 0 && (size_t) i < r->rows.nrows)
			{
				size_t		start = i == 0 ? 0 : r->rows.ends[i - 1];

				bq_describe_row_key(&key, s->schema, r->rows.data + start,
									r->rows.ends[i] - start);
			}
			else
				wire_text_append(&key, "(unknown)", 9);
			fail_stream(s, "could not write to table \"%s\": BigQuery refused the row with key %s: %s%s",
						s->label, key.data, re->message ? re->message : msg,
						resp->n_row_errors > 1 ? " (and more rows of the same request)" : "");
			wire_text_free(&key);
			queue_push_front(&s->inflight, r);
		}
		else if ((code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_ABORTED ||
				  code == GRPC_STATUS_UNAVAILABLE ||
				  code == GRPC_STATUS_RESOURCE_EXHAUSTED) &&
				 ++r->attempts < MAX_ATTEMPTS)
		{
			queue_push_front(&s->unsent, r);
			if (code == GRPC_STATUS_RESOURCE_EXHAUSTED)
				schedule_retry(s, true, msg);
			else
				log_warning("BigQuery answered %s for table \"%s\": %s; sending again",
							status_name(code), s->label, msg);
		}
		else
		{
			fail_stream(s, "could not write to table \"%s\": BigQuery answered %s: %s",
						s->label, status_name(code), msg);
			queue_push_front(&s->inflight, r);
		}
	}
	dsplug__bigquery__append_rows_response__free_unpacked(resp, NULL);
}

/*
 * The call is over (status received, no operation outstanding): free it,
 * requeue what was not acknowledged, and decide by the status whether to
 * call again or stop.
 */
static void
finish_call(BqStream *s)
{
	BqRequest  *r;
	BqQueue		requeue = {NULL, NULL};
	char	   *details = grpc_slice_to_c_string(s->details);
	int			code = s->status;

	grpc_call_unref(s->call);
	s->call = NULL;
	for (size_t i = 0; i < s->nmd; i++)
		grpc_slice_unref(s->md[i].value);
	s->nmd = 0;
	grpc_metadata_array_destroy(&s->initial_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	grpc_slice_unref(s->details);
	s->sent_version = 0;

	/* unacknowledged requests go first, in their order */
	while ((r = queue_pop(&s->inflight)) != NULL)
		queue_push(&requeue, r);
	while ((r = queue_pop(&s->unsent)) != NULL)
		queue_push(&requeue, r);
	s->inflight.head = s->inflight.tail = NULL;
	s->unsent = requeue;

	if (s->w->failed || s->w->closing)
	{
		/* the error is already set, or closing: this was our cancel */
	}
	else if (code == GRPC_STATUS_OK && s->unsent.head == NULL)
	{
		/* the server closed an idle call; the next append opens one */
	}
	else if (code == GRPC_STATUS_OK || code == GRPC_STATUS_UNAVAILABLE ||
			 code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_ABORTED ||
			 code == GRPC_STATUS_CANCELLED || code == GRPC_STATUS_UNKNOWN ||
			 code == GRPC_STATUS_DEADLINE_EXCEEDED ||
			 code == GRPC_STATUS_RESOURCE_EXHAUSTED)
	{
		char		why[512];

		snprintf(why, sizeof(why), "AppendRows call ended %s: %s",
				 status_name(code), details);
		schedule_retry(s, code == GRPC_STATUS_RESOURCE_EXHAUSTED, why);
	}
	else if (code == GRPC_STATUS_UNAUTHENTICATED &&
			 ++s->auth_failures < MAX_AUTH_FAILURES)
	{
		char		why[512];

		snprintf(why, sizeof(why), "AppendRows call ended UNAUTHENTICATED: %s; a new token", details);
		schedule_retry(s, false, why);
	}
	else
		fail_stream(s, "could not write to table \"%s\": BigQuery ended the AppendRows call with %s: %s",
					s->label, status_name(code), details);
	gpr_free(details);
}

/* Back off before the next call: 100 ms doubling to 10 s (quota: 1 s to 60 s). */
static void
schedule_retry(BqStream *s, bool quota, const char *why)
{
	int64_t		base = quota ? 1000000 : 100000;
	int64_t		max = quota ? 60000000 : 10000000;
	int64_t		delay = base;

	for (int i = 0; i < s->failures && delay < max; i++)
		delay *= 2;
	if (delay > max)
		delay = max;
	s->failures++;
	s->retry_at = clock_us() + delay;
	log_warning("table \"%s\": %s; retrying in %.1f s", s->label, why,
				delay / 1e6);
}

/* Stop everything: set the error, cancel the call (freed when it ends). */
static void
fail_stream(BqStream *s, const char *fmt,...)
{
	va_list		ap;

	if (s->w->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(s->w->error, sizeof(s->w->error), fmt, ap);
	va_end(ap);
	s->w->failed = true;
	if (s->call)
		grpc_call_cancel(s->call, NULL);
}

static const char *
status_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
		"DATA_LOSS", "UNAUTHENTICATED"
	};

	if (code >= 0 && code < (int) (sizeof(names) / sizeof(names[0])))
		return names[code];
	return "an unknown status";
}
