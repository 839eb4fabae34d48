/*-------------------------------------------------------------------------
 *
 * log.c
 *		Messages on stderr, the pending error and its exit code, clocks,
 *		and allocation that exits instead of returning NULL.
 *
 * Errors travel as one pending message with its class, a Result
 * (common.h): the function that detects a failure calls error_set() with
 * a message of the form "could not <verb> <object>: <reason>" and returns
 * false, its callers return false in turn; the run (core/stream.c)
 * retries a RESULT_RETRY and clears it, and main() prints anything else
 * and exits with its class's code.  Only the first error is kept: it is
 * the cause, what follows are consequences.
 *
 * consumer/common/log.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

#define ERROR_MESSAGE_SIZE	2048

bool		log_quiet = false;
bool		log_verbose_on = false;

static char pending_error[ERROR_MESSAGE_SIZE];
static Result pending_result = RESULT_OK;

static void vlog(const char *prefix, const char *fmt, va_list ap);

/* Informational messages: start, reconnection, stop.  Not with --quiet. */
void
log_info(const char *fmt,...)
{
	va_list		ap;

	if (log_quiet)
		return;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

/* Something went wrong but the consumer carries on (a retry, a skip). */
void
log_warning(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

/* Details of routine work (--verbose only). */
void
log_verbose(const char *fmt,...)
{
	va_list		ap;

	if (!log_verbose_on)
		return;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

static void
vlog(const char *prefix, const char *fmt, va_list ap)
{
	char		msg[ERROR_MESSAGE_SIZE];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "dsplug-consumer: %s%s\n", prefix, msg);
}

/*
 * Record the error that ends the run, unless one is already pending.
 * Trailing newlines (libpq's and SQLite's messages end with one) and
 * embedded ones are flattened so the message stays one line.
 */
void
error_set(Result result, const char *fmt,...)
{
	va_list		ap;
	size_t		len;

	if (pending_result != RESULT_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(pending_error, sizeof(pending_error), fmt, ap);
	va_end(ap);

	len = strlen(pending_error);
	while (len > 0 && (pending_error[len - 1] == '\n' ||
					   pending_error[len - 1] == ' '))
		pending_error[--len] = '\0';
	for (size_t i = 0; i < len; i++)
	{
		if (pending_error[i] == '\n' || pending_error[i] == '\t')
			pending_error[i] = ' ';
	}
	pending_result = result;
}

const char *
error_message(void)
{
	return pending_error;
}

/* The class of the pending error (RESULT_OK: none). */
Result
error_result(void)
{
	return pending_result;
}

/* The exit code of the pending error (EXIT_OK: none). */
int
error_exit_code(void)
{
	return result_exit_code(pending_result);
}

/*
 * The exit code for a class of failure.  A retryable failure that ends
 * the run anyway (it was the last thing that happened) is a runtime error.
 */
int
result_exit_code(Result result)
{
	switch (result)
	{
		case RESULT_OK:
			return EXIT_OK;
		case RESULT_SERVER:
			return EXIT_SERVER;
		case RESULT_TARGET:
			return EXIT_TARGET;
		case RESULT_USAGE:
			return EXIT_USAGE;
		case RESULT_RETRY:
		case RESULT_RUNTIME:
			break;
	}
	return EXIT_RUNTIME;
}

/* Forget a pending error that turned out to be retryable. */
void
error_clear(void)
{
	pending_error[0] = '\0';
	pending_result = RESULT_OK;
}

int64_t
clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The wall clock as PostgreSQL's replication messages carry it. */
int64_t
postgres_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
		POSTGRES_EPOCH_OFFSET_US;
}

/* "X/X" in hex, as PostgreSQL prints an LSN. */
bool
parse_lsn(const char *s, uint64_t *lsn)
{
	unsigned int hi;
	unsigned int lo;
	int			n = 0;

	if (sscanf(s, "%X/%X%n", &hi, &lo, &n) != 2 || s[n] != '\0')
		return false;
	*lsn = ((uint64_t) hi << 32) | lo;
	return true;
}

/*
 * Allocation failures end the run (EXIT_RUNTIME) like pg_malloc does in
 * PostgreSQL's client programs: there is nothing sensible to retry.
 */
void *
xmalloc(size_t size)
{
	void	   *p = malloc(size > 0 ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "dsplug-consumer: could not allocate %zu bytes: out of memory\n",
				size);
		exit(EXIT_RUNTIME);
	}
	return p;
}

void *
xrealloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size > 0 ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "dsplug-consumer: could not allocate %zu bytes: out of memory\n",
				size);
		exit(EXIT_RUNTIME);
	}
	return p;
}

char *
xstrdup(const char *s)
{
	size_t		len = strlen(s) + 1;

	return memcpy(xmalloc(len), s, len);
}
