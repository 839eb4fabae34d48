/*-------------------------------------------------------------------------
 *
 * confirm.c
 *		The one rule for the position confirmed to PostgreSQL (the flush
 *		and apply positions of every standby status update): the invariant
 *		of the whole program lives here.
 *
 * stream.c tells a Confirm what the stream brought (XLogData starts,
 * keepalive positions, what was sent), and asks it what may be confirmed;
 * what the target holds comes from the applier (apply_progress), which
 * asks the sink.  Nothing else decides a confirmed LSN.
 *
 * The rule.  It is the sink's flushed LSN, what the target durably holds,
 * and never more, with one exception that is still safe: when nothing is
 * in flight (no transaction being received, no open group, nothing the
 * sink has not made durable yet) and the server's latest keepalive
 * reported a walEnd at or beyond everything received, that walEnd.  A
 * keepalive's walEnd is where the walsender has read WAL up to; every
 * transaction that committed before it has been sent ahead of the
 * keepalive on this connection, so it was received, and with nothing in
 * flight it is in the target (or was filtered out by the publications).
 * A transaction still running on the server commits after walEnd, so the
 * slot sends it even though walEnd is confirmed: confirmed_flush only
 * decides which commits are sent again.  This lets the slot advance over
 * WAL without published changes (an idle database, other tables), instead
 * of retaining it for nothing.
 *
 * Two caps: with two-phase decoding, never past the PREPARE of a prepared
 * transaction whose COMMIT PREPARED the target does not durably hold
 * (apply.c, "Prepared transactions"); and never past what this session
 * has received, since a two-phase session starts before the target's
 * position.  And one floor: the result never goes backwards, the server's
 * own confirmed position and what was sent before are its floor.
 *
 * consumer/core/confirm.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "core/core.h"

/* XLogData starting at data_start arrived. */
void
confirm_received(Confirm *c, uint64_t data_start)
{
	if (data_start > c->received_lsn)
		c->received_lsn = data_start;
}

/* A keepalive said the walsender has read WAL up to wal_end. */
void
confirm_keepalive(Confirm *c, uint64_t wal_end)
{
	if (wal_end > c->keepalive_lsn)
		c->keepalive_lsn = wal_end;
}

/*
 * lsn is confirmed already: the server's confirmed position at the start,
 * a new slot's consistent point, or what a status update just sent.
 */
void
confirm_floor(Confirm *c, uint64_t lsn)
{
	if (lsn > c->floor)
		c->floor = lsn;
}

/*
 * How far the target holds the stream: the rule without the prepare holds
 * and without the floor.  --endpos compares with this (a prepared
 * transaction is held, not missing).
 *
 * It is never beyond what this session has received: a two-phase session
 * starts at the slot's confirmed position, before the target's, and the
 * PREPAREs between the two must be received again (and held) before the
 * target's position may be confirmed.
 */
uint64_t
confirm_reached(const Confirm *c, const ApplyProgress *p)
{
	uint64_t	lsn = p->flushed_lsn;
	uint64_t	reached = p->session_lsn;
	bool		caught_up = c->keepalive_lsn >= c->received_lsn && !p->receiving;

	/*
	 * "Nothing in flight" includes an asynchronous sink's commits that its
	 * server has not acknowledged yet: everything given to the sink must be
	 * durable (flushed == applied).  Streamed transactions still in
	 * progress are not in flight: they commit after the keepalive, and the
	 * server sends them again, whole, if the consumer stops before.
	 */
	if (!p->pending && lsn >= p->applied_lsn &&
		c->keepalive_lsn > lsn && caught_up)
		lsn = c->keepalive_lsn;
	if (caught_up && c->keepalive_lsn > reached)
		reached = c->keepalive_lsn;
	if (lsn > reached)
		lsn = reached;
	return lsn;
}

/* The position that may be confirmed now (see the file header). */
uint64_t
confirm_lsn(const Confirm *c, const ApplyProgress *p)
{
	uint64_t	lsn = confirm_reached(c, p);

	/*
	 * Two-phase: never past the PREPARE of a prepared transaction the
	 * target does not hold durably, so that the server sends it again
	 * after a restart.  The cost is that WAL from there on is decoded
	 * again after a restart, and transactions the target already holds
	 * are sent again and skipped.
	 */
	if (p->hold_lsn != INVALID_LSN && lsn > p->hold_lsn)
		lsn = p->hold_lsn;
	if (lsn < c->floor)
		lsn = c->floor;
	return lsn;
}
