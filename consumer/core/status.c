/*-------------------------------------------------------------------------
 *
 * status.c
 *		The periodic one-line status on stderr:
 *
 *	dsplug-consumer: applied 0/3A1B2C8, lag 1234 bytes 0.4 s, 98765 changes/s, 350000 changes
 *
 * applied is the position confirmed to the server (what the target holds,
 * see stream.c); lag is how far the server's WAL is ahead of it, in bytes,
 * and in seconds since the commit of the last applied transaction when
 * there is a backlog (0 when caught up); changes/s is over the last
 * interval.
 *
 * consumer/core/status.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include "core/core.h"

void
status_init(Status *st, int interval_seconds)
{
	st->interval_us = (int64_t) interval_seconds * 1000000;
	st->last_time = clock_us();
	st->next = st->last_time + st->interval_us;
	st->last_changes = 0;
}

/* Print the line when it is due (or now, with force). */
void
status_tick(Status *st, const Applier *a, uint64_t confirmed,
			uint64_t server_lsn, bool force)
{
	int64_t		now = clock_us();
	double		rate;
	double		lag_s = 0;
	uint64_t	lag_bytes;

	if (st->interval_us <= 0 || log_quiet || (!force && now < st->next))
		return;
	rate = now > st->last_time ?
		(double) (a->changes - st->last_changes) * 1e6 / (double) (now - st->last_time) : 0;
	lag_bytes = server_lsn > confirmed ? server_lsn - confirmed : 0;
	if (lag_bytes > 0 && a->last_commit_time != 0)
		lag_s = (double) (postgres_now_us() - a->last_commit_time) / 1e6;
	if (lag_s < 0)
		lag_s = 0;

	fprintf(stderr, "dsplug-consumer: applied %X/%X, lag %llu bytes %.1f s, %.0f changes/s, %llu changes\n",
			LSN_FORMAT_ARGS(confirmed), (unsigned long long) lag_bytes, lag_s,
			rate, (unsigned long long) a->changes);
	st->last_time = now;
	st->last_changes = a->changes;
	st->next = now + st->interval_us;
}
