/*-------------------------------------------------------------------------
 *
 * bigquery_auth.h
 *		Google OAuth 2.0 access tokens for the BigQuery target.
 *
 * The BigQuery sink asks for a token before each call (REST request or
 * gRPC connection) and gets one that stays valid for at least a few
 * minutes; this module decides where tokens come from and when to renew
 * them.  Sources, in the order they are picked:
 *
 *		1. an explicit token file (--bigquery-token-file), re-read when it
 *		   changes so that an operator can rotate it;
 *		2. a key file named by GOOGLE_APPLICATION_CREDENTIALS: a service
 *		   account key, exchanged for a token with a signed JWT (RS256) at
 *		   its token_uri, or an authorized_user file (gcloud's application
 *		   default credentials), whose refresh token is exchanged;
 *		3. the metadata server of a Google Cloud machine
 *		   (GCE_METADATA_HOST, default metadata.google.internal).
 *
 * --bigquery-no-auth sends no credentials at all: only for a fake server on
 * loopback.  No function here ever prints a token, key or assertion.
 *
 * consumer/sinks/bigquery/bigquery_auth.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_BIGQUERY_AUTH_H
#define DSPLUG_BIGQUERY_AUTH_H

#include <stdbool.h>

typedef struct BqAuth BqAuth;

typedef struct BqAuthOptions
{
	const char *token_file;		/* --bigquery-token-file: explicit access
								 * token read from this file, or NULL */
	bool		none;			/* --bigquery-no-auth: send no credentials
								 * (fake server on loopback only) */
} BqAuthOptions;

/*
 * Picks the source of credentials: the explicit token file; else the
 * GOOGLE_APPLICATION_CREDENTIALS service-account key (JWT RS256 exchanged at
 * its token_uri); else the metadata server (GCE_METADATA_HOST honoured).
 * The first token is fetched here, so bad credentials show at startup.
 * Returns NULL after error_set(RESULT_TARGET, ...).  The caller owns the result
 * and frees it with bq_auth_free().
 */
extern BqAuth *bq_auth_create(const BqAuthOptions *opts);

/*
 * A valid access token, refreshed ahead of its expiry; malloc'd, the caller
 * frees it.  Thread-safe (a pthread mutex serialises refreshes).  Returns
 * NULL after error_set() when no token can be had, and NULL with no error
 * when opts->none was set.
 */
extern char *bq_auth_token(BqAuth *auth);

/*
 * Where tokens come from, for log lines, e.g. "service account
 * x@p.iam.gserviceaccount.com (key file /path)".  Never a secret.  Owned by
 * auth, valid until bq_auth_free().
 */
extern const char *bq_auth_describe(const BqAuth *auth);

extern void bq_auth_free(BqAuth *auth);

#endif							/* DSPLUG_BIGQUERY_AUTH_H */
