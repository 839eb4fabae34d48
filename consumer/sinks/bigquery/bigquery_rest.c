/*-------------------------------------------------------------------------
 *
 * bigquery_rest.c
 *		BigQuery REST v2 for the target's table management: the dataset in
 *		its location, tables with their primary key, clustering and
 *		max_staleness, and new columns.  libcurl and jansson.
 *
 * Each request carries a fresh access token.  Transient answers (HTTP 5xx,
 * 429, rateLimitExceeded, and transport errors) are retried with backoff
 * for up to a minute; anything else is an error naming the request and
 * BigQuery's message (EXIT_TARGET).
 *
 * consumer/sinks/bigquery/bigquery_rest.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sinks/bigquery/bigquery.h"
#include "common/common.h"

#define REST_RETRY_US	INT64_C(60000000)

struct BqRest
{
	CURL	   *curl;
	char	   *base;			/* .../bigquery/v2/projects/PROJECT */
	char	   *project;
	BqAuth	   *auth;
};

typedef struct Response
{
	char	   *data;
	size_t		len;
} Response;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *arg);
static bool request(BqRest *rest, const char *method, const char *path,
					json_t *body, const char *what, long *status,
					json_t **result);

/*
 * A REST client for project at base_url (NULL:
 * https://bigquery.googleapis.com).  Owned by the caller (bq_rest_free).
 */
BqRest *
bq_rest_create(const char *base_url, const char *project, BqAuth *auth)
{
	BqRest	   *rest = xmalloc(sizeof(BqRest));
	const char *url = base_url ? base_url : "https://bigquery.googleapis.com";
	size_t		len = strlen(url) + strlen(project) + 64;
	size_t		ulen = strlen(url);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	while (ulen > 0 && url[ulen - 1] == '/')
		ulen--;
	rest->base = xmalloc(len);
	snprintf(rest->base, len, "%.*s/bigquery/v2/projects/%s", (int) ulen, url,
			 project);
	rest->project = xstrdup(project);
	rest->auth = auth;
	rest->curl = curl_easy_init();
	return rest;
}

void
bq_rest_free(BqRest *rest)
{
	if (rest == NULL)
		return;
	curl_easy_cleanup(rest->curl);
	free(rest->base);
	free(rest->project);
	free(rest);
	curl_global_cleanup();
}

static size_t
collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	Response   *r = arg;
	size_t		n = size * nmemb;

	r->data = xrealloc(r->data, r->len + n + 1);
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

/*
 * One request: method on base + path with an optional JSON body.  Sets
 * *status (HTTP) and *result (the answer's JSON, or NULL; the caller
 * decrefs).  Retries transient failures.  false after error_set only when
 * the request could not be made or kept failing transiently; an HTTP error
 * status is returned to the caller to judge.
 */
static bool
request(BqRest *rest, const char *method, const char *path, json_t *body,
		const char *what, long *status, json_t **result)
{
	char	   *url = xmalloc(strlen(rest->base) + strlen(path) + 1);
	char	   *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int64_t		give_up = clock_us() + REST_RETRY_US;
	int64_t		delay = 200000;
	bool		ok = false;

	sprintf(url, "%s%s", rest->base, path);
	*result = NULL;
	for (;;)
	{
		struct curl_slist *headers = NULL;
		Response	resp = {NULL, 0};
		CURLcode	rc;
		char		errbuf[CURL_ERROR_SIZE] = "";
		bool		transient;

		if (rest->auth)
		{
			char	   *token;

			error_clear();
			token = bq_auth_token(rest->auth);
			if (token == NULL && error_message()[0] != '\0')
				goto done;
			if (token != NULL)
			{
				size_t		len = strlen(token) + 32;
				char	   *h = xmalloc(len);

				snprintf(h, len, "Authorization: Bearer %s", token);
				headers = curl_slist_append(headers, h);
				memset(h, 0, len);
				free(h);
				memset(token, 0, strlen(token));
				free(token);
			}
		}
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_reset(rest->curl);
		curl_easy_setopt(rest->curl, CURLOPT_URL, url);
		curl_easy_setopt(rest->curl, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(rest->curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(rest->curl, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(rest->curl, CURLOPT_WRITEDATA, &resp);
		curl_easy_setopt(rest->curl, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(rest->curl, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(rest->curl, CURLOPT_NOSIGNAL, 1L);
		if (payload)
			curl_easy_setopt(rest->curl, CURLOPT_POSTFIELDS, payload);
		rc = curl_easy_perform(rest->curl);
		curl_slist_free_all(headers);
		*status = 0;
		if (rc == CURLE_OK)
			curl_easy_getinfo(rest->curl, CURLINFO_RESPONSE_CODE, status);
		transient = rc != CURLE_OK || *status == 429 || *status >= 500 ||
			(*status == 403 && resp.data && strstr(resp.data, "rateLimitExceeded"));
		if (!transient)
		{
			json_error_t jerr;

			if (resp.data)
				*result = json_loads(resp.data, 0, &jerr);
			free(resp.data);
			ok = true;
			goto done;
		}
		if (clock_us() + delay > give_up || stop_requested)
		{
			if (rc != CURLE_OK)
				error_set(RESULT_TARGET, "could not %s: %s", what,
						  errbuf[0] ? errbuf : curl_easy_strerror(rc));
			else
				error_set(RESULT_TARGET, "could not %s: HTTP %ld: %s", what, *status,
						  resp.data ? resp.data : "");
			free(resp.data);
			goto done;
		}
		free(resp.data);
		usleep((useconds_t) delay);
		if (delay < 5000000)
			delay *= 2;
	}
done:
	free(url);
	free(payload);
	return ok;
}

/* BigQuery's message from an error answer, or a placeholder. */
static const char *
error_text(const json_t *result)
{
	const char *m = json_string_value(json_object_get(json_object_get(result, "error"),
													  "message"));

	return m ? m : "no message";
}

/*
 * An answer other than the expected one: the error names what was done,
 * the HTTP status and BigQuery's message; the answer is released.  Returns
 * false, for "return refused(...)".
 */
static bool
refused(const char *what, long status, json_t **result)
{
	error_set(RESULT_TARGET, "could not %s: HTTP %ld: %s", what, status,
			  error_text(*result));
	json_decref(*result);
	*result = NULL;
	return false;
}

/*
 * Make sure the dataset exists in location: create it there if missing;
 * refuse (EXIT_TARGET) one in another location, which would defeat a
 * regional design.
 */
bool
bq_rest_ensure_dataset(BqRest *rest, const char *dataset, const char *location)
{
	char		path[1200];
	char		what[1200];
	long		status;
	json_t	   *result;
	const char *have;

	snprintf(path, sizeof(path), "/datasets/%s", dataset);
	snprintf(what, sizeof(what), "read dataset \"%s\"", dataset);
	if (!request(rest, "GET", path, NULL, what, &status, &result))
		return false;
	if (status == 404)
	{
		json_t	   *body = json_pack("{s:{s:s, s:s}, s:s}",
									 "datasetReference", "projectId", rest->project,
									 "datasetId", dataset, "location", location);

		json_decref(result);
		snprintf(what, sizeof(what), "create dataset \"%s\" in %s", dataset, location);
		if (!request(rest, "POST", "/datasets", body, what, &status, &result))
		{
			json_decref(body);
			return false;
		}
		json_decref(body);
		if (status == 200)
		{
			log_info("created dataset \"%s\" in %s", dataset, location);
			json_decref(result);
			return true;
		}
		if (status != 409)
			return refused(what, status, &result);
		/* created meanwhile: check its location */
		json_decref(result);
		snprintf(what, sizeof(what), "read dataset \"%s\"", dataset);
		if (!request(rest, "GET", path, NULL, what, &status, &result))
			return false;
	}
	if (status != 200)
		return refused(what, status, &result);
	have = json_string_value(json_object_get(result, "location"));
	if (have == NULL || strcasecmp(have, location) != 0)
	{
		error_set(RESULT_TARGET, "could not use dataset \"%s\": it is in location %s, not %s; each region's consumer must write to a dataset in its own location",
				  dataset, have ? have : "(unknown)", location);
		json_decref(result);
		return false;
	}
	json_decref(result);
	return true;
}

/* The table resource in *result, or NULL when the table does not exist. */
bool
bq_rest_get_table(BqRest *rest, const char *dataset, const char *table,
				  json_t **result)
{
	char		path[1200];
	char		what[1200];
	long		status;

	snprintf(path, sizeof(path), "/datasets/%s/tables/%s", dataset, table);
	snprintf(what, sizeof(what), "read table \"%s.%s\"", dataset, table);
	if (!request(rest, "GET", path, NULL, what, &status, result))
		return false;
	if (status == 404)
	{
		json_decref(*result);
		*result = NULL;
		return true;
	}
	if (status != 200)
		return refused(what, status, result);
	return true;
}

/*
 * Create a table (body: the table resource without tableReference).  An
 * existing table (created meanwhile) is read instead.  *result: the table.
 */
bool
bq_rest_create_table(BqRest *rest, const char *dataset, const char *table,
					 json_t *body, json_t **result)
{
	char		path[1200];
	char		what[1200];
	long		status;

	json_object_set_new(body, "tableReference",
						json_pack("{s:s, s:s, s:s}", "projectId", rest->project,
								  "datasetId", dataset, "tableId", table));
	snprintf(path, sizeof(path), "/datasets/%s/tables", dataset);
	snprintf(what, sizeof(what), "create table \"%s.%s\"", dataset, table);
	if (!request(rest, "POST", path, body, what, &status, result))
		return false;
	if (status == 409)
	{
		json_decref(*result);
		return bq_rest_get_table(rest, dataset, table, result);
	}
	if (status != 200)
		return refused(what, status, result);
	return true;
}

/* PATCH a table (schema with added columns, description). */
bool
bq_rest_patch_table(BqRest *rest, const char *dataset, const char *table,
					json_t *body, json_t **result)
{
	char		path[1200];
	char		what[1200];
	long		status;

	snprintf(path, sizeof(path), "/datasets/%s/tables/%s", dataset, table);
	snprintf(what, sizeof(what), "update table \"%s.%s\"", dataset, table);
	if (!request(rest, "PATCH", path, body, what, &status, result))
		return false;
	if (status != 200)
		return refused(what, status, result);
	return true;
}
