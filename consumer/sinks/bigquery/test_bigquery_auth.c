/*-------------------------------------------------------------------------
 *
 * test_bigquery_auth.c
 *		A test driver for bigquery_auth.c: asks for tokens the way the
 *		BigQuery sink does, optionally uses each one, and prints a
 *		fingerprint of it instead of the token itself.
 *
 *	test_bigquery_auth [--token-file FILE] [--no-auth] [--count N]
 *					   [--interval-ms MS] [--threads N] [--url URL]
 *
 * Credentials come from the options and the environment exactly as in
 * dsplug-consumer.  Output, one line each, on stdout:
 *
 *		auth: <bq_auth_describe()>
 *		token <i>: <first 16 hex digits of SHA-256(token)> [http <status>]
 *
 * With --url, each token is sent to URL as "Authorization: Bearer" in a GET
 * and the HTTP status printed.  With --threads, each of N threads asks for
 * --count tokens at once (the lock under test); lines then interleave.
 * Errors: "test_bigquery_auth: <message>" on stderr and the consumer's
 * exit code.  Built by "make test-programs"; used by
 * regress/t/42-bigquery-auth.sh.
 *
 * consumer/sinks/bigquery/test_bigquery_auth.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "sinks/bigquery/bigquery_auth.h"
#include "common/common.h"

volatile sig_atomic_t stop_requested = 0;

typedef struct Worker
{
	BqAuth	   *auth;
	int			count;
	long		interval_ms;
	const char *url;
	int			failed;			/* exit code, 0 if none */
} Worker;

static void *run_worker(void *arg);
static void fingerprint(const char *token, char *out);
static long use_token(const char *url, const char *token);
static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata);

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static int	printed = 0;

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"token-file", required_argument, NULL, 'f'},
		{"no-auth", no_argument, NULL, 'n'},
		{"count", required_argument, NULL, 'c'},
		{"interval-ms", required_argument, NULL, 'i'},
		{"threads", required_argument, NULL, 't'},
		{"url", required_argument, NULL, 'u'},
		{NULL, 0, NULL, 0}
	};
	BqAuthOptions opts = {0};
	Worker		proto = {0};
	Worker	   *workers;
	pthread_t  *threads;
	int			nthreads = 1;
	int			code = 0;
	int			c;

	proto.count = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		switch (c)
		{
			case 'f':
				opts.token_file = optarg;
				break;
			case 'n':
				opts.none = true;
				break;
			case 'c':
				proto.count = atoi(optarg);
				break;
			case 'i':
				proto.interval_ms = atol(optarg);
				break;
			case 't':
				nthreads = atoi(optarg);
				break;
			case 'u':
				proto.url = optarg;
				break;
			default:
				return EXIT_USAGE;
		}
	}
	if (optind < argc || proto.count < 1 || nthreads < 1)
	{
		fprintf(stderr, "test_bigquery_auth: bad arguments\n");
		return EXIT_USAGE;
	}

	proto.auth = bq_auth_create(&opts);
	if (proto.auth == NULL)
	{
		fprintf(stderr, "test_bigquery_auth: %s\n", error_message());
		return error_exit_code();
	}
	printf("auth: %s\n", bq_auth_describe(proto.auth));
	fflush(stdout);

	workers = xmalloc(sizeof(Worker) * nthreads);
	threads = xmalloc(sizeof(pthread_t) * nthreads);
	for (int i = 0; i < nthreads; i++)
	{
		workers[i] = proto;
		pthread_create(&threads[i], NULL, run_worker, &workers[i]);
	}
	for (int i = 0; i < nthreads; i++)
	{
		pthread_join(threads[i], NULL);
		if (workers[i].failed != 0 && code == 0)
			code = workers[i].failed;
	}
	if (code != 0)
		fprintf(stderr, "test_bigquery_auth: %s\n", error_message());
	bq_auth_free(proto.auth);
	free(workers);
	free(threads);
	return code;
}

static void *
run_worker(void *arg)
{
	Worker	   *w = arg;

	for (int i = 0; i < w->count; i++)
	{
		char	   *token;
		char		fp[17];
		long		status = 0;

		if (i > 0 && w->interval_ms > 0)
		{
			struct timespec ts = {w->interval_ms / 1000,
			(w->interval_ms % 1000) * 1000000};

			nanosleep(&ts, NULL);
		}
		token = bq_auth_token(w->auth);
		if (token == NULL && error_exit_code() != EXIT_OK)
		{
			w->failed = error_exit_code();
			return NULL;
		}
		if (token != NULL)
			fingerprint(token, fp);
		else
			strcpy(fp, "none");
		if (w->url != NULL)
			status = use_token(w->url, token);

		pthread_mutex_lock(&print_lock);
		printed++;
		if (w->url != NULL)
			printf("token %d: %s http %ld\n", printed, fp, status);
		else
			printf("token %d: %s\n", printed, fp);
		fflush(stdout);
		pthread_mutex_unlock(&print_lock);
		free(token);
	}
	return NULL;
}

/* The first 16 hex digits of SHA-256(token): tells tokens apart, reveals none. */
static void
fingerprint(const char *token, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[16] = '\0';
}

/* GET url with the token as bearer (none if NULL); the HTTP status or -1. */
static long
use_token(const char *url, const char *token)
{
	CURL	   *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	char	   *header = NULL;
	long		status = -1;

	if (token != NULL)
	{
		header = xmalloc(strlen(token) + 32);
		sprintf(header, "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, header);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	free(header);
	return status;
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}
