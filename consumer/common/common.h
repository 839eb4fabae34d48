/*-------------------------------------------------------------------------
 *
 * common.h
 *		What every layer of dsplug-consumer uses: exit codes, WAL positions,
 *		messages and errors, clocks, allocation (common/log.c).
 *
 * The consumer is three layers and this floor under them (README.md has
 * the map): source/ reads PostgreSQL, core/ turns frames into sink calls
 * and decides what is confirmed, sinks/ write targets.  A layer uses the
 * ones below it and common/, never one above.
 *
 * consumer/common/common.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_COMMON_H
#define DSPLUG_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CONSUMER_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#else
#define CONSUMER_PRINTF(f, a)
#endif

/*
 * Exit codes, one per class of failure, so that a supervisor can tell a
 * fix-the-configuration failure from one worth restarting.  Connection loss
 * and server restarts are never an exit: they are retried with backoff.
 */
#define EXIT_OK				0	/* --endpos reached, SIGINT/SIGTERM, end of
								 * --replay input */
#define EXIT_RUNTIME		1	/* anything else that cannot be retried:
								 * undecodable frames, out of memory */
#define EXIT_USAGE			2	/* bad command line */
#define EXIT_TARGET			3	/* the target: bad URI, cannot open, read or
								 * write it, it belongs to another slot */
#define EXIT_SERVER			4	/* the server refuses: slot missing or not
								 * dsplug, unsupported wire version,
								 * permission or authentication denied,
								 * unknown publication */

/*
 * The one answer to "retry or stop?" that every failure carries
 * (error_set): a failure of class RESULT_RETRY is one a later attempt may
 * not meet (a lost connection, a server shutting down or restarting, a
 * slot still held by our previous walsender): the run reconnects with
 * backoff.  Every other class ends the run with its exit code
 * (result_exit_code).
 */
typedef enum Result
{
	RESULT_OK = 0,
	RESULT_RETRY,
	RESULT_SERVER,				/* EXIT_SERVER */
	RESULT_TARGET,				/* EXIT_TARGET */
	RESULT_RUNTIME,				/* EXIT_RUNTIME */
	RESULT_USAGE				/* EXIT_USAGE: a file named on the command
								 * line cannot be used */
} Result;

/* WAL positions: printed "%X/%X" with LSN_FORMAT_ARGS, as PostgreSQL does */
#define LSN_FORMAT_ARGS(lsn)	((unsigned int) ((lsn) >> 32)), ((unsigned int) (lsn))
#define INVALID_LSN				((uint64_t) 0)

/* microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch */
#define POSTGRES_EPOCH_OFFSET_US	INT64_C(946684800000000)

/* Set by the SIGINT/SIGTERM handler (main.c); loops stop at the next step. */
extern volatile sig_atomic_t stop_requested;

/* common/log.c */
extern bool log_quiet;
extern bool log_verbose_on;
extern void log_info(const char *fmt,...) CONSUMER_PRINTF(1, 2);
extern void log_warning(const char *fmt,...) CONSUMER_PRINTF(1, 2);
extern void log_verbose(const char *fmt,...) CONSUMER_PRINTF(1, 2);
extern void error_set(Result result, const char *fmt,...) CONSUMER_PRINTF(2, 3);
extern const char *error_message(void);
extern Result error_result(void);
extern int	error_exit_code(void);
extern int	result_exit_code(Result result);
extern void error_clear(void);
extern int64_t clock_us(void);	/* monotonic */
extern int64_t postgres_now_us(void);	/* wall clock, since 2000-01-01 */
extern bool parse_lsn(const char *s, uint64_t *lsn);
extern void *xmalloc(size_t size);
extern void *xrealloc(void *ptr, size_t size);
extern char *xstrdup(const char *s);

#endif							/* DSPLUG_COMMON_H */
