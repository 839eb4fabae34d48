/*-------------------------------------------------------------------------
 *
 * metrics.c
 *		Prometheus metrics over HTTP (--metrics-address HOST:PORT), served
 *		by libmicrohttpd.
 *
 * Two owners, one handover.  The main thread keeps its figures in a
 * Metrics structure of its own, without locks, as it applies and confirms;
 * metrics_publish() copies them, at most every PUBLISH_INTERVAL_US, into
 * the one snapshot that the server's thread reads, under a mutex held only
 * for the copy.  The server's thread renders a request from its own copy
 * of that snapshot, so a slow scraper never holds up replication, and the
 * main thread never waits on the network.  What a scrape sees is therefore
 * at most a fraction of a second old.
 *
 * Every metric carries the labels slot and target (the target URI without
 * its query string); names follow Prometheus's conventions: a _total
 * suffix on counters, base units (bytes, seconds).  README.md lists them.
 *
 * consumer/core/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "core/core.h"

#define PUBLISH_INTERVAL_US		INT64_C(100000)

/* The server: its daemon, the published snapshot and the labels. */
typedef struct MetricsServer
{
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	Metrics		published;		/* under lock */
	char	   *labels;			/* slot="...",target="..." */
	int64_t		last_publish;	/* main thread only */
} MetricsServer;

static MetricsServer *server;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn,
							  const char *url, const char *method,
							  const char *version, const char *upload_data,
							  size_t *upload_data_size, void **con_cls);
static char *render(const Metrics *m, const char *labels, size_t *len);
static char *label_value(const char *s);
static bool parse_address(const char *address, struct sockaddr_storage *ss,
						  char *errbuf, size_t errlen);

/*
 * Start serving on address ("HOST:PORT", "[IPV6]:PORT" or ":PORT" for every
 * address).  Returns false with the reason in errbuf.
 */
bool
metrics_start(const char *address, const char *slot, const char *target,
			  char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	char	   *slot_v;
	char	   *target_v;
	char	   *q;
	size_t		len;

	if (!parse_address(address, &ss, errbuf, errlen))
		return false;

	server = calloc(1, sizeof(MetricsServer));
	if (server == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	pthread_mutex_init(&server->lock, NULL);

	/* the target URI without its query string: options are not identity */
	target_v = xstrdup(target != NULL ? target : "");
	if ((q = strchr(target_v, '?')) != NULL)
		*q = '\0';
	slot_v = label_value(slot != NULL ? slot : "");
	q = label_value(target_v);
	free(target_v);
	target_v = q;
	len = strlen(slot_v) + strlen(target_v) + 32;
	server->labels = xmalloc(len);
	snprintf(server->labels, len, "slot=\"%s\",target=\"%s\"", slot_v, target_v);
	free(slot_v);
	free(target_v);

	server->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
									  MHD_USE_ERROR_LOG |
									  (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
									  0, NULL, NULL, answer, server,
									  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
									  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 16,
									  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
									  MHD_OPTION_END);
	if (server->daemon == NULL)
	{
		snprintf(errbuf, errlen, "cannot listen on \"%s\": %s", address,
				 errno != 0 ? strerror(errno) : "unknown error");
		metrics_stop();
		return false;
	}
	return true;
}

/* Stop serving (no-op when not started). */
void
metrics_stop(void)
{
	if (server == NULL)
		return;
	if (server->daemon != NULL)
		MHD_stop_daemon(server->daemon);
	pthread_mutex_destroy(&server->lock);
	free(server->labels);
	free(server);
	server = NULL;
}

/*
 * Hand the main thread's figures to the server: copied when the last copy
 * is older than PUBLISH_INTERVAL_US, or now with force.
 */
void
metrics_publish(const Metrics *m, bool force)
{
	int64_t		now;

	if (server == NULL)
		return;
	now = clock_us();
	if (!force && now - server->last_publish < PUBLISH_INTERVAL_US)
		return;
	pthread_mutex_lock(&server->lock);
	server->published = *m;
	server->published.published_at = postgres_now_us();
	pthread_mutex_unlock(&server->lock);
	server->last_publish = now;
}

/* The server's thread: GET /metrics, nothing else. */
static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *upload_data,
	   size_t *upload_data_size, void **con_cls)
{
	MetricsServer *srv = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int status = MHD_HTTP_OK;
	Metrics		m;
	char	   *body;
	size_t		len;

	(void) version;
	(void) upload_data;
	(void) upload_data_size;
	(void) con_cls;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
	{
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		body = xstrdup("only GET and HEAD\n");
		len = strlen(body);
	}
	else if (strcmp(url, "/metrics") != 0)
	{
		status = MHD_HTTP_NOT_FOUND;
		body = xstrdup("dsplug-consumer serves /metrics\n");
		len = strlen(body);
	}
	else
	{
		pthread_mutex_lock(&srv->lock);
		m = srv->published;
		pthread_mutex_unlock(&srv->lock);
		body = render(&m, srv->labels, &len);
	}

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
	{
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
							status == MHD_HTTP_OK ?
							"text/plain; version=0.0.4; charset=utf-8" :
							"text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, "Allow", "GET, HEAD");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A growing text buffer for the exposition. */
typedef struct Out
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Out;

static void out_printf(Out *o, const char *fmt,...) CONSUMER_PRINTF(2, 3);

static void
out_printf(Out *o, const char *fmt,...)
{
	va_list		ap;
	int			n;

	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < o->cap - o->len)
		{
			o->len += n;
			return;
		}
		o->cap = o->cap * 2 + (n > 0 ? (size_t) n : 0);
		o->data = xrealloc(o->data, o->cap);
	}
}

/* HELP and TYPE of one metric */
static void
header(Out *o, const char *name, const char *type, const char *help)
{
	out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(Out *o, const char *name, const char *labels, const char *extra,
	   double value)
{
	out_printf(o, "%s{%s%s%s} %.17g\n", name, labels,
			   extra != NULL ? "," : "", extra != NULL ? extra : "", value);
}

static void
one(Out *o, const char *name, const char *type, const char *help,
	const char *labels, double value)
{
	header(o, name, type, help);
	sample(o, name, labels, NULL, value);
}

/* a counter with one sample per value of one more label */
static void
by_label(Out *o, const char *name, const char *help, const char *labels,
		 const char *label, const char *const *names, const uint64_t *values,
		 int n)
{
	header(o, name, "counter", help);
	for (int i = 0; i < n; i++)
	{
		char		extra[64];

		snprintf(extra, sizeof(extra), "%s=\"%s\"", label, names[i]);
		sample(o, name, labels, extra, (double) values[i]);
	}
}

/*
 * The exposition (text format 0.0.4) of one snapshot.  Returns a malloc'ed
 * buffer the caller owns (libmicrohttpd frees it with the response).
 */
static char *
render(const Metrics *m, const char *labels, size_t *len)
{
	static const char *const kinds[METRICS_KINDS] = {"insert", "update", "delete", "truncate"};
	static const char *const classes[METRICS_CLASSES] = {"connection", "server", "target"};
	Out			o = {xmalloc(4096), 0, 4096};
	double		lag_bytes = m->server_lsn > m->confirmed_lsn ?
		(double) (m->server_lsn - m->confirmed_lsn) : 0;
	double		lag_seconds = 0;

	if (lag_bytes > 0 && m->last_commit_time != 0 && m->published_at > m->last_commit_time)
		lag_seconds = (double) (m->published_at - m->last_commit_time) / 1e6;

	one(&o, "dsplug_consumer_up", "gauge",
		"1 while the consumer runs (a snapshot has been published).", labels,
		m->published_at != 0 ? 1 : 0);
	one(&o, "dsplug_consumer_start_time_seconds", "gauge",
		"When the consumer started, seconds since the Unix epoch.", labels,
		(double) m->start_time / 1e6);
	one(&o, "dsplug_consumer_received_lsn", "gauge",
		"WAL position of the last frame received from the server (bytes).",
		labels, (double) m->received_lsn);
	one(&o, "dsplug_consumer_applied_lsn", "gauge",
		"End WAL position of the last source transaction applied to the target (bytes).",
		labels, (double) m->applied_lsn);
	one(&o, "dsplug_consumer_confirmed_lsn", "gauge",
		"WAL position last confirmed to the server: what the target durably holds (bytes).",
		labels, (double) m->confirmed_lsn);
	one(&o, "dsplug_consumer_server_lsn", "gauge",
		"The server's latest WAL position, as its last message said (bytes).",
		labels, (double) m->server_lsn);
	one(&o, "dsplug_consumer_lag_bytes", "gauge",
		"WAL between the server's latest position and the confirmed position.",
		labels, lag_bytes);
	one(&o, "dsplug_consumer_lag_seconds", "gauge",
		"Seconds since the commit of the last applied transaction while behind; 0 when caught up.",
		labels, lag_seconds);

	by_label(&o, "dsplug_consumer_changes_applied_total",
			 "Row changes applied to the target, by kind.", labels,
			 "kind", kinds, m->changes, METRICS_KINDS);
	one(&o, "dsplug_consumer_transactions_applied_total", "counter",
		"Source transactions applied to the target.", labels,
		(double) m->transactions);
	one(&o, "dsplug_consumer_frames_received_total", "counter",
		"Frames received from the server.", labels, (double) m->frames);
	one(&o, "dsplug_consumer_received_bytes_total", "counter",
		"Frame bytes received from the server, as sent (compressed).",
		labels, (double) m->bytes_received);
	one(&o, "dsplug_consumer_decoded_bytes_total", "counter",
		"Frame payload bytes after decompression.", labels,
		(double) m->bytes_decoded);

	by_label(&o, "dsplug_consumer_retries_total",
			 "Sessions restarted after a failure that is retried, by the class of the failure.",
			 labels, "class", classes, m->retries, METRICS_CLASSES);

	if (m->sink.has_requests)
	{
		one(&o, "dsplug_consumer_target_requests_in_flight", "gauge",
			"Requests sent to the target and not yet acknowledged.", labels,
			(double) m->sink.requests_in_flight);
		one(&o, "dsplug_consumer_target_unacknowledged_bytes", "gauge",
			"Bytes sent to the target and not yet acknowledged.", labels,
			(double) m->sink.unacknowledged_bytes);
	}

	*len = o.len;
	return o.data;
}

/* s escaped as a label value: backslash, double quote and newline. */
static char *
label_value(const char *s)
{
	char	   *v = xmalloc(strlen(s) * 2 + 1);
	char	   *p = v;

	for (; *s; s++)
	{
		if (*s == '\\' || *s == '"')
			*p++ = '\\';
		if (*s == '\n')
		{
			*p++ = '\\';
			*p++ = 'n';
			continue;
		}
		*p++ = *s;
	}
	*p = '\0';
	return v;
}

/* "HOST:PORT", "[IPV6]:PORT" or ":PORT" to a socket address. */
static bool
parse_address(const char *address, struct sockaddr_storage *ss,
			  char *errbuf, size_t errlen)
{
	char	   *copy = xstrdup(address);
	char	   *host = copy;
	char	   *port;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	int			rc;
	char	   *end;
	long		portnum;

	if (host[0] == '[')
	{
		char	   *close = strchr(host, ']');

		if (close == NULL || close[1] != ':')
			goto bad;
		*close = '\0';
		host++;
		port = close + 2;
	}
	else
	{
		port = strrchr(host, ':');
		if (port == NULL)
			goto bad;
		*port++ = '\0';
	}
	errno = 0;
	portnum = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno != 0 || portnum < 1 || portnum > 65535)
		goto bad;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
	if (rc != 0)
	{
		snprintf(errbuf, errlen, "cannot resolve \"%s\": %s", address,
				 gai_strerror(rc));
		free(copy);
		return false;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	free(copy);
	return true;

bad:
	snprintf(errbuf, errlen, "\"%s\" is not HOST:PORT, [IPV6]:PORT or :PORT",
			 address);
	free(copy);
	return false;
}
