/*-------------------------------------------------------------------------
 *
 * compat.h
 *		The one place where PostgreSQL major versions differ for dsplug.
 *
 * dsplug is built and tested against PostgreSQL 15.  Anything that another
 * major version spells differently is wrapped here, so the rest of the code
 * reads as plain PostgreSQL 15 and never tests PG_VERSION_NUM itself.
 *
 * plugin/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DSPLUG_COMPAT_H
#define DSPLUG_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "dsplug needs PostgreSQL 15 or later"
#endif

/*
 * Up to PostgreSQL 15 an output plugin must report progress itself while it
 * skips changes, or a long filtered transaction times the walsender out;
 * from 16 on logical decoding does it and the plugin call is gone.
 */
#if PG_VERSION_NUM < 160000
#define dsplug_update_progress(ctx, skipped_xact) \
	OutputPluginUpdateProgress((ctx), (skipped_xact))
#else
#define dsplug_update_progress(ctx, skipped_xact) ((void) 0)
#endif

/* VARATT_* macros moved out of postgres.h in 16. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * A decoded change's tuples: ReorderBufferTupleBuf up to 16, HeapTuple
 * from 17 on.
 */
#if PG_VERSION_NUM < 170000
#define dsplug_change_tuple(tb) ((tb) ? &(tb)->tuple : NULL)
#else
#define dsplug_change_tuple(tb) (tb)
#endif

/* The top-level transaction of a (sub)transaction. */
#if PG_VERSION_NUM < 160000
#define dsplug_toptxn(txn) ((txn)->toptxn ? (txn)->toptxn : (txn))
#else
#define dsplug_toptxn(txn) rbtxn_get_toptxn(txn)
#endif

#endif							/* DSPLUG_COMPAT_H */
