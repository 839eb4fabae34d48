/*-------------------------------------------------------------------------
 *
 * bigquery_auth.c
 *		Google OAuth 2.0 access tokens for the BigQuery target: an explicit
 *		token file, a service-account key, or the metadata server.
 *
 * Sources.  bq_auth_create() picks one, in this order (bigquery_auth.h):
 *
 *	--bigquery-token-file	The file holds an access token (surrounding
 *							whitespace ignored).  It is stat()ed on every
 *							bq_auth_token() and re-read when its identity,
 *							size or modification time changed, so an
 *							operator can rotate it (write a new file and
 *							rename it over the old one).  Its expiry is
 *							unknown to us: keeping it fresh is the
 *							operator's job.
 *	GOOGLE_APPLICATION_CREDENTIALS
 *							A JSON key file.  "service_account": we sign a
 *							JWT (RS256, kid = private_key_id; iss =
 *							client_email, scope = BigQuery, aud = token_uri,
 *							one hour) and exchange it at token_uri with the
 *							jwt-bearer grant.  "authorized_user" (what
 *							"gcloud auth application-default login" writes):
 *							its refresh token is exchanged at token_uri
 *							(default Google's).  Any other type is refused
 *							with its name.
 *	the metadata server		On a Google Cloud machine, GET the default
 *							service account's token from
 *							http://$GCE_METADATA_HOST (default
 *							metadata.google.internal) with the header
 *							Metadata-Flavor: Google.
 *
 * The first token is fetched by bq_auth_create(), so that bad credentials
 * stop the consumer at startup rather than at its first write.
 *
 * Refresh.  A token is renewed once less than REFRESH_MARGIN_US (or, for
 * a token issued for a shorter time, half its lifetime) remains, so a
 * caller always gets one that stays valid for a while.  While the current
 * token still has some life left, a failed renewal (any failure) is a
 * warning: that token is returned, and renewal is tried again a little
 * later (RETRY_LATER_US), one attempt per call, so callers are not held up
 * by backoff.  Without a usable token, failures that may pass (no
 * connection, timeout, HTTP 429 or 5xx) are retried with backoff up to
 * FETCH_ATTEMPTS times, and HTTP 4xx is final at once; the message carries
 * Google's "error" and "error_description".  Expiry times are kept on the
 * monotonic clock, so a wall-clock step cannot make a token look fresh.
 *
 * Secrets.  No token, private key, refresh token, client secret or signed
 * assertion is ever put in a message; server responses are only quoted
 * through their error fields.  Buffers that held one are cleansed before
 * they are freed.
 *
 * Threads.  One mutex serialises everything that touches the cached token;
 * a refresh holds it, so concurrent callers wait for the one refresh rather
 * than starting their own.
 *
 * consumer/sinks/bigquery/bigquery_auth.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sinks/bigquery/bigquery_auth.h"
#include "common/common.h"

#define BIGQUERY_SCOPE		"https://www.googleapis.com/auth/bigquery"
#define JWT_BEARER_GRANT	"urn:ietf:params:oauth:grant-type:jwt-bearer"
#define GOOGLE_TOKEN_URI	"https://oauth2.googleapis.com/token"
#define METADATA_HOST		"metadata.google.internal"
#define METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

#define JWT_LIFETIME		3600	/* seconds, Google's maximum */
#define REFRESH_MARGIN_US	(INT64_C(300) * 1000000)	/* renew 5 min ahead */
#define EXPIRY_SLACK_US		(INT64_C(10) * 1000000) /* a token this close
														 * to expiry is not
														 * handed out (a
														 * quarter of the
														 * lifetime if less) */
#define FETCH_ATTEMPTS		4	/* per refresh, for transient failures */
#define RETRY_LATER_US		(INT64_C(10) * 1000000) /* after a failed renewal
														 * while the token
														 * works */
#define BACKOFF_FIRST_MS	500 /* doubled after each failed attempt */
#define CONNECT_TIMEOUT_MS	5000
#define METADATA_CONNECT_TIMEOUT_MS 1000	/* absent off Google Cloud */
#define REQUEST_TIMEOUT_MS	30000
#define MAX_RESPONSE_BYTES	(1024 * 1024)
#define MAX_FILE_BYTES		(1024 * 1024)
#define MAX_QUOTED_ERROR	300 /* characters of Google's error text kept */

typedef enum BqAuthSource
{
	BQ_AUTH_NONE,
	BQ_AUTH_TOKEN_FILE,
	BQ_AUTH_SERVICE_ACCOUNT,
	BQ_AUTH_AUTHORIZED_USER,
	BQ_AUTH_METADATA
} BqAuthSource;

/*
 * One source of tokens and the token it last gave.  Everything below lock
 * is read or written with lock held, except what bq_auth_create() sets
 * before anyone else can see the struct (source, description, the
 * credentials themselves), which never changes afterwards.
 */
struct BqAuth
{
	BqAuthSource source;
	char	   *description;	/* for log lines, never a secret */

	/* BQ_AUTH_TOKEN_FILE */
	char	   *token_file;

	/* BQ_AUTH_SERVICE_ACCOUNT and BQ_AUTH_AUTHORIZED_USER */
	char	   *token_uri;

	/* BQ_AUTH_SERVICE_ACCOUNT */
	char	   *client_email;
	char	   *key_id;			/* private_key_id, NULL if absent */
	EVP_PKEY   *key;

	/* BQ_AUTH_AUTHORIZED_USER: secrets, cleansed on free */
	char	   *client_id;
	char	   *client_secret;
	char	   *refresh_token;

	/* BQ_AUTH_METADATA */
	char	   *metadata_url;

	pthread_mutex_t lock;
	char	   *token;			/* NULL until the first fetch */
	int64_t		refresh_at;		/* clock_us(): renew from then on */
	int64_t		expires_at;		/* clock_us(): 0 if unknown (token file) */
	int64_t		usable_until;	/* clock_us(): last moment to hand it out */

	/* the token file as last read: changes to any of these mean re-read */
	dev_t		file_dev;
	ino_t		file_ino;
	off_t		file_size;
	struct timespec file_mtime;
	bool		file_warned;	/* said once that it cannot be used */
};

/* A response body being received. */
typedef struct ResponseBuffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		too_large;
} ResponseBuffer;

static bool load_token_file(BqAuth *auth, bool at_start);
static bool load_key_file(BqAuth *auth, const char *path);
static bool load_service_account(BqAuth *auth, const char *path, json_t *key);
static bool load_authorized_user(BqAuth *auth, const char *path, json_t *key);
static bool url_allowed_for_secrets(const char *url);
static bool refresh_token(BqAuth *auth, int attempts);
static bool fetch_token(BqAuth *auth, bool *retryable);
static char *make_assertion(BqAuth *auth);
static char *base64url(const unsigned char *data, size_t len);
static char *json_base64url(json_t *value);
static bool http_call(const char *url, const char *post_body,
					  const char *header, long connect_timeout_ms,
					  long *status, ResponseBuffer *body, char *errbuf);
static size_t collect_response(char *ptr, size_t size, size_t nmemb,
							   void *userdata);
static char *read_small_file(const char *path, size_t *len, struct stat *st);
static const char *json_string_field(json_t *obj, const char *name);
static void free_secret(char *s);
static void sleep_ms(long ms);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/*
 * The source of credentials, in the order of bigquery_auth.h, with its first
 * token already fetched.  NULL after error_set(RESULT_TARGET, ...).
 */
BqAuth *
bq_auth_create(const BqAuthOptions *opts)
{
	BqAuth	   *auth = xmalloc(sizeof(BqAuth));
	const char *key_path = getenv("GOOGLE_APPLICATION_CREDENTIALS");

	memset(auth, 0, sizeof(BqAuth));
	pthread_mutex_init(&auth->lock, NULL);
	pthread_once(&curl_once, init_curl);

	if (opts->none)
	{
		auth->source = BQ_AUTH_NONE;
		auth->description = xstrdup("no credentials (--bigquery-no-auth)");
		return auth;
	}

	if (opts->token_file != NULL)
	{
		size_t		len = strlen(opts->token_file) + 64;

		auth->source = BQ_AUTH_TOKEN_FILE;
		auth->token_file = xstrdup(opts->token_file);
		auth->description = xmalloc(len);
		snprintf(auth->description, len, "access token file %s",
				 opts->token_file);
		if (!load_token_file(auth, true))
			goto error;
		return auth;
	}

	if (key_path != NULL && key_path[0] != '\0')
	{
		if (!load_key_file(auth, key_path))
			goto error;
	}
	else
	{
		const char *host = getenv("GCE_METADATA_HOST");
		size_t		len;

		if (host == NULL || host[0] == '\0')
			host = METADATA_HOST;
		auth->source = BQ_AUTH_METADATA;
		len = strlen(host) + strlen(METADATA_TOKEN_PATH) + 16;
		auth->metadata_url = xmalloc(len);
		snprintf(auth->metadata_url, len, "http://%s%s", host,
				 METADATA_TOKEN_PATH);
		len = strlen(host) + 64;
		auth->description = xmalloc(len);
		snprintf(auth->description, len,
				 "default service account of the metadata server %s", host);
	}

	pthread_mutex_lock(&auth->lock);
	if (!refresh_token(auth, FETCH_ATTEMPTS))
	{
		pthread_mutex_unlock(&auth->lock);
		goto error;
	}
	pthread_mutex_unlock(&auth->lock);
	return auth;

error:
	bq_auth_free(auth);
	return NULL;
}

/*
 * A copy of a token valid for a while yet; the caller frees it.  NULL with
 * no error under --bigquery-no-auth, NULL after error_set(RESULT_TARGET, ...)
 * when no token can be had.
 */
char *
bq_auth_token(BqAuth *auth)
{
	char	   *copy = NULL;

	if (auth->source == BQ_AUTH_NONE)
		return NULL;

	pthread_mutex_lock(&auth->lock);
	if (auth->source == BQ_AUTH_TOKEN_FILE)
	{
		if (!load_token_file(auth, false))
			goto done;
	}
	else if (auth->token == NULL || clock_us() >= auth->refresh_at)
	{
		/*
		 * While the current token still works, one attempt per call, and
		 * the next one a little later: callers are not held up by backoff.
		 */
		bool		fallback = auth->token != NULL &&
			clock_us() < auth->usable_until;

		if (!refresh_token(auth, fallback ? 1 : FETCH_ATTEMPTS))
		{
			int64_t		now = clock_us();
			int64_t		wait;

			if (!fallback || now >= auth->usable_until)
				goto done;
			/* the error is pending: report it, keep the token that works */
			log_warning("%s; the current access token is valid for %d more seconds",
						error_message(),
						(int) ((auth->expires_at - now) / 1000000));
			error_clear();
			wait = (auth->usable_until - now) / 2;
			auth->refresh_at = now + (wait < RETRY_LATER_US ? wait : RETRY_LATER_US);
		}
	}
	copy = xstrdup(auth->token);

done:
	pthread_mutex_unlock(&auth->lock);
	return copy;
}

const char *
bq_auth_describe(const BqAuth *auth)
{
	return auth->description;
}

void
bq_auth_free(BqAuth *auth)
{
	if (auth == NULL)
		return;
	free(auth->description);
	free(auth->token_file);
	free(auth->token_uri);
	free(auth->client_email);
	free(auth->key_id);
	EVP_PKEY_free(auth->key);
	free_secret(auth->client_id);
	free_secret(auth->client_secret);
	free_secret(auth->refresh_token);
	free(auth->metadata_url);
	free_secret(auth->token);
	pthread_mutex_destroy(&auth->lock);
	free(auth);
}

/*
 * (Re-)read the token file if it is new or changed.  An empty or unreadable
 * file is an error at start; later, while a token from an earlier read is
 * held, it is a warning (once, until a good read) and the earlier token
 * stays in use: a rotation that truncates and rewrites the file in place can
 * be caught half-way, and the next call looks again.  Caller holds the
 * lock, or is bq_auth_create().
 */
static bool
load_token_file(BqAuth *auth, bool at_start)
{
	struct stat st;
	char	   *text;
	size_t		len;
	size_t		start = 0;

	if (!at_start && stat(auth->token_file, &st) == 0 &&
		st.st_dev == auth->file_dev && st.st_ino == auth->file_ino &&
		st.st_size == auth->file_size &&
		st.st_mtim.tv_sec == auth->file_mtime.tv_sec &&
		st.st_mtim.tv_nsec == auth->file_mtime.tv_nsec)
		return true;

	text = read_small_file(auth->token_file, &len, &st);
	if (text == NULL)
	{
		if (auth->token == NULL)
		{
			error_set(RESULT_TARGET, "could not read access token file \"%s\": %s",
					  auth->token_file, strerror(errno));
			return false;
		}
		if (!auth->file_warned)
			log_warning("could not read access token file \"%s\": %s; keeping the token read before",
						auth->token_file, strerror(errno));
		auth->file_warned = true;
		return true;
	}

	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
					   text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	while (start < len && (text[start] == ' ' || text[start] == '\t' ||
						   text[start] == '\n' || text[start] == '\r'))
		start++;

	if (start == len || strpbrk(text + start, " \t\r\n") != NULL)
	{
		const char *why = start == len ? "the file is empty" :
			"the file holds more than one word";

		free_secret(text);
		if (auth->token == NULL)
		{
			error_set(RESULT_TARGET, "could not read access token file \"%s\": %s",
					  auth->token_file, why);
			return false;
		}
		if (!auth->file_warned)
			log_warning("could not read access token file \"%s\": %s; keeping the token read before",
						auth->token_file, why);
		auth->file_warned = true;
		return true;
	}

	if (auth->token != NULL && strcmp(auth->token, text + start) != 0)
		log_info("access token file %s changed: using the new token",
				 auth->token_file);
	free_secret(auth->token);
	auth->token = xstrdup(text + start);
	free_secret(text);
	auth->expires_at = 0;
	auth->file_dev = st.st_dev;
	auth->file_ino = st.st_ino;
	auth->file_size = st.st_size;
	auth->file_mtime = st.st_mtim;
	auth->file_warned = false;
	return true;
}

/* GOOGLE_APPLICATION_CREDENTIALS: dispatch on the key file's "type". */
static bool
load_key_file(BqAuth *auth, const char *path)
{
	char	   *text;
	size_t		len;
	json_t	   *key;
	json_error_t jerr;
	const char *type;
	bool		ok;

	text = read_small_file(path, &len, NULL);
	if (text == NULL)
	{
		error_set(RESULT_TARGET, "could not read Google credentials file \"%s\" (GOOGLE_APPLICATION_CREDENTIALS): %s",
				  path, strerror(errno));
		return false;
	}
	key = json_loadb(text, len, 0, &jerr);
	free_secret(text);
	if (key == NULL || !json_is_object(key))
	{
		/* jerr.text may quote the file, which holds a private key */
		error_set(RESULT_TARGET, "could not parse Google credentials file \"%s\" (GOOGLE_APPLICATION_CREDENTIALS): %s",
				  path, key == NULL ? "not valid JSON" : "not a JSON object");
		json_decref(key);
		return false;
	}

	type = json_string_field(key, "type");
	if (type == NULL)
	{
		error_set(RESULT_TARGET, "could not use Google credentials file \"%s\": it has no \"type\"",
				  path);
		ok = false;
	}
	else if (strcmp(type, "service_account") == 0)
		ok = load_service_account(auth, path, key);
	else if (strcmp(type, "authorized_user") == 0)
		ok = load_authorized_user(auth, path, key);
	else
	{
		error_set(RESULT_TARGET, "could not use Google credentials file \"%s\": credentials of type \"%.64s\" are not supported (use a service account key, an authorized_user file, the metadata server or --bigquery-token-file)",
				  path, type);
		ok = false;
	}
	json_decref(key);
	return ok;
}

static bool
load_service_account(BqAuth *auth, const char *path, json_t *key)
{
	const char *email = json_string_field(key, "client_email");
	const char *pem = json_string_field(key, "private_key");
	const char *key_id = json_string_field(key, "private_key_id");
	const char *token_uri = json_string_field(key, "token_uri");
	BIO		   *bio;
	size_t		len;

	if (email == NULL || email[0] == '\0' || pem == NULL || pem[0] == '\0')
	{
		error_set(RESULT_TARGET, "could not use service account key \"%s\": \"client_email\" or \"private_key\" is missing",
				  path);
		return false;
	}
	if (token_uri == NULL || token_uri[0] == '\0')
		token_uri = GOOGLE_TOKEN_URI;
	if (!url_allowed_for_secrets(token_uri))
	{
		error_set(RESULT_TARGET, "could not use service account key \"%s\": token_uri \"%s\" is neither https nor http on loopback",
				  path, token_uri);
		return false;
	}

	bio = BIO_new_mem_buf(pem, -1);
	if (bio != NULL)
		auth->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (auth->key == NULL)
	{
		error_set(RESULT_TARGET, "could not use service account key \"%s\": \"private_key\" is not a PEM private key",
				  path);
		return false;
	}
	if (EVP_PKEY_get_base_id(auth->key) != EVP_PKEY_RSA)
	{
		error_set(RESULT_TARGET, "could not use service account key \"%s\": \"private_key\" is not an RSA key (RS256 needs one)",
				  path);
		return false;
	}

	auth->source = BQ_AUTH_SERVICE_ACCOUNT;
	auth->client_email = xstrdup(email);
	auth->key_id = key_id != NULL && key_id[0] != '\0' ? xstrdup(key_id) : NULL;
	auth->token_uri = xstrdup(token_uri);
	len = strlen(email) + strlen(path) + 64;
	auth->description = xmalloc(len);
	snprintf(auth->description, len, "service account %s (key file %s)",
			 email, path);
	return true;
}

static bool
load_authorized_user(BqAuth *auth, const char *path, json_t *key)
{
	const char *client_id = json_string_field(key, "client_id");
	const char *client_secret = json_string_field(key, "client_secret");
	const char *refresh = json_string_field(key, "refresh_token");
	const char *token_uri = json_string_field(key, "token_uri");
	size_t		len;

	if (client_id == NULL || client_secret == NULL || refresh == NULL ||
		refresh[0] == '\0')
	{
		error_set(RESULT_TARGET, "could not use Google credentials file \"%s\": \"client_id\", \"client_secret\" or \"refresh_token\" is missing",
				  path);
		return false;
	}
	if (token_uri == NULL || token_uri[0] == '\0')
		token_uri = GOOGLE_TOKEN_URI;
	if (!url_allowed_for_secrets(token_uri))
	{
		error_set(RESULT_TARGET, "could not use Google credentials file \"%s\": token_uri \"%s\" is neither https nor http on loopback",
				  path, token_uri);
		return false;
	}

	auth->source = BQ_AUTH_AUTHORIZED_USER;
	auth->client_id = xstrdup(client_id);
	auth->client_secret = xstrdup(client_secret);
	auth->refresh_token = xstrdup(refresh);
	auth->token_uri = xstrdup(token_uri);
	len = strlen(path) + 64;
	auth->description = xmalloc(len);
	snprintf(auth->description, len, "user credentials (authorized_user file %s)",
			 path);
	return true;
}

/*
 * Signed assertions and refresh tokens only go over TLS, or to a test
 * endpoint on this machine.
 */
static bool
url_allowed_for_secrets(const char *url)
{
	static const char *const loopback[] = {
		"http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:",
		"http://localhost/", "http://[::1]:", "http://[::1]/"
	};

	if (strncmp(url, "https://", 8) == 0)
		return true;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
	{
		if (strncmp(url, loopback[i], strlen(loopback[i])) == 0)
			return true;
	}
	return false;
}

/*
 * Replace the cached token with a new one, in up to attempts tries:
 * transient failures are retried with backoff.  Caller holds the lock.
 * False after error_set().
 */
static bool
refresh_token(BqAuth *auth, int attempts)
{
	long		backoff = BACKOFF_FIRST_MS;

	for (int attempt = 1;; attempt++)
	{
		bool		retryable = false;

		if (fetch_token(auth, &retryable))
			return true;
		if (!retryable || attempt >= attempts || stop_requested)
			return false;
		log_warning("%s; retrying in %ld ms", error_message(), backoff);
		error_clear();
		sleep_ms(backoff);
		backoff *= 2;
	}
}

/*
 * One request for a new token.  On failure, *retryable says whether trying
 * again may help.  Caller holds the lock.
 */
static bool
fetch_token(BqAuth *auth, bool *retryable)
{
	char	   *body = NULL;
	const char *url;
	const char *header = NULL;
	long		connect_timeout = CONNECT_TIMEOUT_MS;
	long		status = 0;
	ResponseBuffer resp = {0};
	char		errbuf[CURL_ERROR_SIZE];
	json_t	   *json = NULL;
	json_t	   *expires;
	const char *token;
	int64_t		lifetime;
	int64_t		margin;
	int64_t		started = clock_us();
	bool		ok = false;

	*retryable = false;
	switch (auth->source)
	{
		case BQ_AUTH_SERVICE_ACCOUNT:
			{
				char	   *assertion = make_assertion(auth);
				size_t		len;

				if (assertion == NULL)
					return false;
				len = strlen(assertion) + 128;
				body = xmalloc(len);
				snprintf(body, len, "grant_type=%s&assertion=%s",
						 "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
						 assertion);
				free_secret(assertion);
				url = auth->token_uri;
				break;
			}
		case BQ_AUTH_AUTHORIZED_USER:
			{
				char	   *id = curl_easy_escape(NULL, auth->client_id, 0);
				char	   *secret = curl_easy_escape(NULL, auth->client_secret, 0);
				char	   *refresh = curl_easy_escape(NULL, auth->refresh_token, 0);
				size_t		len;

				if (id == NULL || secret == NULL || refresh == NULL)
				{
					fprintf(stderr, "dsplug-consumer: could not allocate memory: out of memory\n");
					exit(EXIT_RUNTIME);
				}
				len = strlen(id) + strlen(secret) + strlen(refresh) + 128;
				body = xmalloc(len);
				snprintf(body, len,
						 "grant_type=refresh_token&client_id=%s&client_secret=%s&refresh_token=%s",
						 id, secret, refresh);
				OPENSSL_cleanse(secret, strlen(secret));
				OPENSSL_cleanse(refresh, strlen(refresh));
				curl_free(id);
				curl_free(secret);
				curl_free(refresh);
				url = auth->token_uri;
				break;
			}
		case BQ_AUTH_METADATA:
			url = auth->metadata_url;
			header = "Metadata-Flavor: Google";
			connect_timeout = METADATA_CONNECT_TIMEOUT_MS;
			break;
		default:
			error_set(RESULT_RUNTIME, "could not obtain access token: source %d fetches none",
					  (int) auth->source);
			return false;
	}

	if (!http_call(url, body, header, connect_timeout, &status, &resp, errbuf))
	{
		if (auth->source == BQ_AUTH_METADATA && auth->token == NULL)
		{
			/* never reached it: most likely not a Google Cloud machine */
			error_set(RESULT_TARGET, "could not obtain access token: no credentials: set GOOGLE_APPLICATION_CREDENTIALS, use --bigquery-token-file, or run on Google Cloud (metadata server %s: %s)",
					  url, errbuf);
		}
		else
		{
			error_set(RESULT_TARGET, "could not obtain access token from %s: %s",
					  url, errbuf);
			*retryable = true;
		}
		goto done;
	}

	if (!resp.too_large)
		json = json_loadb(resp.data != NULL ? resp.data : "", resp.len, 0, NULL);
	if (status != 200)
	{
		const char *err = json_is_object(json) ? json_string_field(json, "error") : NULL;
		const char *desc = json_is_object(json) ? json_string_field(json, "error_description") : NULL;

		/* REST-style errors: {"error": {"message": ..., "status": ...}} */
		if (err == NULL && json_is_object(json) &&
			json_is_object(json_object_get(json, "error")))
		{
			err = json_string_field(json_object_get(json, "error"), "status");
			desc = json_string_field(json_object_get(json, "error"), "message");
		}
		error_set(RESULT_TARGET, "could not obtain access token from %s: HTTP %ld%s%.*s%s%.*s",
				  url, status,
				  err != NULL ? ": " : "", MAX_QUOTED_ERROR, err != NULL ? err : "",
				  desc != NULL ? ": " : "", MAX_QUOTED_ERROR, desc != NULL ? desc : "");
		*retryable = status == 429 || status >= 500;
		goto done;
	}

	token = json_is_object(json) ? json_string_field(json, "access_token") : NULL;
	expires = json_is_object(json) ? json_object_get(json, "expires_in") : NULL;
	if (token == NULL || token[0] == '\0' || strpbrk(token, " \t\r\n") != NULL ||
		!json_is_integer(expires) || json_integer_value(expires) <= 0)
	{
		error_set(RESULT_TARGET, "could not obtain access token from %s: the response has no valid \"access_token\" and \"expires_in\"",
				  url);
		goto done;
	}

	/* count the lifetime from before the request: never too generous */
	lifetime = json_integer_value(expires) > 86400 ? 86400 : json_integer_value(expires);
	lifetime *= 1000000;
	margin = lifetime / 2 < REFRESH_MARGIN_US ? lifetime / 2 : REFRESH_MARGIN_US;
	free_secret(auth->token);
	auth->token = xstrdup(token);
	auth->expires_at = started + lifetime;
	auth->refresh_at = auth->expires_at - margin;
	auth->usable_until = auth->expires_at -
		(lifetime / 4 < EXPIRY_SLACK_US ? lifetime / 4 : EXPIRY_SLACK_US);
	ok = true;

done:
	if (json != NULL)
	{
		/* the response held the token: wipe jansson's copy too */
		token = json_is_object(json) ? json_string_field(json, "access_token") : NULL;
		if (token != NULL)
			OPENSSL_cleanse((char *) token, strlen(token));
		json_decref(json);
	}
	if (resp.data != NULL)
		OPENSSL_cleanse(resp.data, resp.len);
	free(resp.data);
	free_secret(body);
	return ok;
}

/*
 * The signed JWT a service account trades for an access token:
 * base64url(header) "." base64url(claims) "." base64url(RS256 signature).
 * Malloc'd; NULL after error_set().
 */
static char *
make_assertion(BqAuth *auth)
{
	json_t	   *header;
	json_t	   *claims;
	char	   *h64;
	char	   *c64;
	char	   *signing_input = NULL;
	char	   *sig64 = NULL;
	char	   *assertion = NULL;
	unsigned char *sig = NULL;
	size_t		siglen = 0;
	size_t		len;
	EVP_MD_CTX *md = NULL;
	time_t		now = time(NULL);

	header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	if (auth->key_id != NULL)
		json_object_set_new(header, "kid", json_string(auth->key_id));
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I}",
					   "iss", auth->client_email,
					   "scope", BIGQUERY_SCOPE,
					   "aud", auth->token_uri,
					   "iat", (json_int_t) now,
					   "exp", (json_int_t) now + JWT_LIFETIME);
	h64 = json_base64url(header);
	c64 = json_base64url(claims);
	json_decref(header);
	json_decref(claims);
	if (h64 == NULL || c64 == NULL)
	{
		error_set(RESULT_TARGET, "could not build token request for %s: JSON encoding failed",
				  auth->client_email);
		goto done;
	}
	len = strlen(h64) + strlen(c64) + 2;
	signing_input = xmalloc(len);
	snprintf(signing_input, len, "%s.%s", h64, c64);

	md = EVP_MD_CTX_new();
	if (md == NULL ||
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, auth->key) != 1 ||
		EVP_DigestSign(md, NULL, &siglen, (unsigned char *) signing_input,
					   strlen(signing_input)) != 1)
		goto sign_error;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (unsigned char *) signing_input,
					   strlen(signing_input)) != 1)
		goto sign_error;

	sig64 = base64url(sig, siglen);
	len = strlen(signing_input) + strlen(sig64) + 2;
	assertion = xmalloc(len);
	snprintf(assertion, len, "%s.%s", signing_input, sig64);
	goto done;

sign_error:
	{
		unsigned long e = ERR_get_error();

		error_set(RESULT_TARGET, "could not sign token request for %s: %s",
				  auth->client_email,
				  e != 0 ? ERR_reason_error_string(e) : "unknown OpenSSL error");
		ERR_clear_error();
	}

done:
	EVP_MD_CTX_free(md);
	free(h64);
	free(c64);
	free(signing_input);
	free(sig);
	free(sig64);
	return assertion;
}

/* Unpadded base64url (RFC 4648 section 5), as JWTs use.  Malloc'd. */
static char *
base64url(const unsigned char *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char	   *out = xmalloc((len + 2) / 3 * 4 + 1);
	size_t		o = 0;
	size_t		i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32_t	v = (uint32_t) data[i] << 16 | (uint32_t) data[i + 1] << 8 | data[i + 2];

		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < len)
	{
		uint32_t	v = (uint32_t) data[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t) data[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

/* base64url of a JSON value's compact text; NULL if it cannot be encoded. */
static char *
json_base64url(json_t *value)
{
	char	   *text = value != NULL ? json_dumps(value, JSON_COMPACT) : NULL;
	char	   *out;

	if (text == NULL)
		return NULL;
	out = base64url((unsigned char *) text, strlen(text));
	free(text);
	return out;
}

/*
 * GET url (post_body NULL) or POST the form post_body to it, with one extra
 * header line if given.  True when an HTTP response arrived, whatever its
 * status; false with errbuf set when none did.
 */
static bool
http_call(const char *url, const char *post_body, const char *header,
		  long connect_timeout_ms, long *status, ResponseBuffer *body,
		  char *errbuf)
{
	CURL	   *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	CURLcode	rc;

	if (curl == NULL)
	{
		snprintf(errbuf, CURL_ERROR_SIZE, "could not initialise libcurl");
		return false;
	}
	errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);	/* threads */
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) REQUEST_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_response);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (header != NULL)
		headers = curl_slist_append(headers, header);
	if (post_body != NULL)
	{
		headers = curl_slist_append(headers,
									"Content-Type: application/x-www-form-urlencoded");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	else if (errbuf[0] == '\0')
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return rc == CURLE_OK;
}

/* libcurl write callback: append to the ResponseBuffer, up to a limit. */
static size_t
collect_response(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	ResponseBuffer *buf = userdata;
	size_t		n = size * nmemb;

	if (buf->too_large || buf->len + n > MAX_RESPONSE_BYTES)
	{
		buf->too_large = true;
		return n;				/* drain it; the caller reports it */
	}
	if (buf->len + n + 1 > buf->cap)
	{
		size_t		cap = buf->cap > 0 ? buf->cap : 4096;
		char	   *grown;

		while (cap < buf->len + n + 1)
			cap *= 2;
		/* not xrealloc: the old buffer may hold a token, wipe it first */
		grown = xmalloc(cap);
		if (buf->data != NULL)
		{
			memcpy(grown, buf->data, buf->len);
			OPENSSL_cleanse(buf->data, buf->len);
			free(buf->data);
		}
		buf->data = grown;
		buf->cap = cap;
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return n;
}

/*
 * A whole file of at most MAX_FILE_BYTES, NUL-terminated; *st describes
 * the file read (if st is not NULL).  NULL with errno set on failure.
 */
static char *
read_small_file(const char *path, size_t *len, struct stat *st)
{
	FILE	   *f = fopen(path, "r");
	struct stat local;
	char	   *text;
	size_t		n;

	if (st == NULL)
		st = &local;
	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), st) != 0)
	{
		int			save = errno;

		fclose(f);
		errno = save;
		return NULL;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > MAX_FILE_BYTES)
	{
		fclose(f);
		errno = S_ISREG(st->st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	text = xmalloc((size_t) st->st_size + 1);
	n = fread(text, 1, (size_t) st->st_size, f);
	if (ferror(f))
	{
		fclose(f);
		free_secret(text);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	text[n] = '\0';
	*len = n;
	return text;
}

static const char *
json_string_field(json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

/* free() for strings that held a secret. */
static void
free_secret(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static void
sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_requested)
		;
}
