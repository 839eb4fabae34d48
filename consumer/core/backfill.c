/*-------------------------------------------------------------------------
 *
 * backfill.c
 *		The initial copy: the rows already in the published tables, read
 *		under a snapshot that is consistent with the slot's stream
 *		(source/copy.c), and written through the sink exactly as streamed
 *		rows are.
 *
 * Consistency.  A logical slot created with SNAPSHOT 'export' returns a
 * consistent point C and a snapshot that shows exactly the transactions
 * that committed before C; the slot decodes exactly those that commit at
 * or after C.  The copy runs in a REPEATABLE READ transaction on that
 * snapshot and is committed to the target together with C as its applied
 * LSN, in one target transaction.  Streaming then starts at C, and the
 * skip rule of apply.c drops whatever the server sends from before C.
 * Writes that continue during the copy commit after C: they are not in the
 * copy, and the slot sends them.  Nothing is lost, nothing applied twice.
 *
 * Three ways to get such a snapshot:
 *
 *	--create-slot, slot missing: the new slot's own snapshot (stream.c
 *	keeps the connection that created it open until the copy is done).
 *
 *	--backfill or --create-slot with a slot that already exists (created
 *	beforehand in SQL, as in the seed's setup) and a target without a
 *	position: a TEMPORARY dsplug slot's snapshot, at its consistent point C.
 *	The real slot was created earlier, so it decodes every transaction
 *	committing at or after C (its confirmed position is at or before C as
 *	long as no other consumer is moving it, which is checked); those before
 *	C are in the copy and skipped.  This is what PostgreSQL's own table
 *	synchronization does.
 *
 *	mid-stream, for a relation the target has never seen (a table added to
 *	a publication later): the same, for that relation only, in the open
 *	group; apply.c skips the relation's changes from before C.
 *
 * consumer/core/backfill.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "source/source.h"

/* Where copied rows go: the sink, numbered across tables. */
typedef struct CopyTarget
{
	Sink	   *sink;
	uint64_t	position;		/* rows copied so far, all tables */
} CopyTarget;

static bool copy_row(void *arg, const Dsplug__Relation *rel,
					 const Dsplug__Tuple *row);
static bool copy_relation(PGconn *conn, const SourceTables *tables, int i,
						  const Dsplug__Relation *rel, uint64_t copy_lsn,
						  CopyTarget *ct, void (*tick) (void *),
						  void *tick_arg, uint64_t *rows);

/*
 * One copied row: an insert with commit_lsn 0 and its copy order as
 * position, so it sorts before every streamed change.
 */
static bool
copy_row(void *arg, const Dsplug__Relation *rel, const Dsplug__Tuple *row)
{
	CopyTarget *ct = arg;
	SinkChange	change;

	change.kind = SINK_INSERT;
	change.relation = rel;
	change.old = NULL;
	change.new_ = row;
	change.commit_lsn = 0;
	change.position = ct->position++;
	change.commit_time = 0;
	change.backfill = true;
	return sink_change(ct->sink, &change);
}

/*
 * Relation i of tables, copied under a snapshot at copy_lsn into the
 * sink's open transaction: its rows replace the target's.
 */
static bool
copy_relation(PGconn *conn, const SourceTables *tables, int i,
			  const Dsplug__Relation *rel, uint64_t copy_lsn, CopyTarget *ct,
			  void (*tick) (void *), void *tick_arg, uint64_t *rows)
{
	return sink_begin_copy(ct->sink, rel, copy_lsn) &&
		source_copy_table(conn, tables, i, rel, copy_row, ct, tick, tick_arg,
						  rows) &&
		sink_end_copy(ct->sink, rel);
}

/*
 * Copy every published table into the sink under snapshot (exported at
 * lsn), in one target transaction that records lsn as applied.  The
 * copied tables' contents are replaced.
 */
bool
backfill_run(const ConsumerOptions *opts, Sink *sink, const char *snapshot,
			 uint64_t lsn)
{
	PGconn	   *conn = source_connect(opts->dbname, false);
	SourceTables tables = {NULL};
	CopyTarget	ct = {sink, 0};
	int64_t		started = clock_us();
	int			ntables;
	bool		ok = false;

	if (conn == NULL)
		return false;
	if (!source_set_formats(conn))
	{
		source_conn_failed(conn, "configure the backfill connection");
		goto done;
	}
	if (!source_begin_snapshot(conn, snapshot) ||
		!source_published_tables(conn, opts->publications, 0, &tables))
		goto done;
	if (!sink_begin(sink))
		goto done;

	ntables = source_tables_count(&tables);
	for (int i = 0; i < ntables; i++)
	{
		SourceRelation described;
		SinkRelationInfo info;
		const Dsplug__Relation *rel = &described.rel;
		uint64_t	rows;
		bool		copied;

		if (!source_describe(conn, &tables, i, &described))
			goto abort;
		copied = sink_relation(sink, rel, &info) &&
			copy_relation(conn, &tables, i, rel, lsn, &ct, NULL, NULL, &rows);
		source_describe_free(&described);
		if (!copied)
			goto abort;
		if (stop_requested)
		{
			error_set(RESULT_RUNTIME, "could not copy the published tables: interrupted");
			goto abort;
		}
	}

	if (!sink_commit(sink, lsn))
		goto abort;
	log_info("copied %d tables, %llu rows in %.1f s, consistent at %X/%X",
			 ntables, (unsigned long long) ct.position,
			 (clock_us() - started) / 1e6, LSN_FORMAT_ARGS(lsn));
	ok = true;
	goto done;

abort:
	sink_abort(sink);
done:
	source_tables_free(&tables);
	PQfinish(conn);
	return ok;
}

/*
 * A target without a position, on a slot that already exists: copy under
 * a temporary slot's snapshot (see the file header).  *lsn is its
 * consistent point, now the target's applied LSN.
 */
bool
backfill_temporary_slot(const ConsumerOptions *opts, Sink *sink, uint64_t *lsn)
{
	PGconn	   *repl = source_connect(opts->dbname, true);
	char	   *snapshot = NULL;
	char		name[64];
	bool		ok = false;

	if (repl == NULL)
		return false;

	/*
	 * The slot must not move past the snapshot: only a consumer streaming
	 * from it could move it, and then its changes from before the snapshot
	 * would be lost to this target.  Checked before the temporary slot
	 * exists (its snapshot lasts only until this connection's next
	 * command): the slot's position is then at or before the current WAL
	 * position, which is at or before the snapshot's consistent point.
	 */
	if (!repl_check_slot_idle(repl, opts->slot))
		goto done;

	snprintf(name, sizeof(name), "dsplug_backfill_%d", (int) getpid());
	if (!source_create_slot(repl, name, true, &snapshot, lsn))
		goto done;

	ok = backfill_run(opts, sink, snapshot, *lsn);

done:
	free(snapshot);
	PQfinish(repl);				/* drops the temporary slot */
	return ok;
}

/*
 * Copy one relation that joined the publications mid-stream, into the
 * sink's open transaction, described as the stream describes it.
 * *copied_lsn is the consistent point of the copy's snapshot.
 */
bool
backfill_relation(const ConsumerOptions *opts, Sink *sink,
				  const Dsplug__Relation *rel, void (*tick) (void *),
				  void *tick_arg, uint64_t *copied_lsn)
{
	PGconn	   *repl = source_connect(opts->dbname, true);
	PGconn	   *conn = NULL;
	SourceTables tables = {NULL};
	CopyTarget	ct = {sink, 0};
	char	   *snapshot = NULL;
	char		name[64];
	uint64_t	rows = 0;
	bool		ok = false;

	if (repl == NULL)
		return false;
	snprintf(name, sizeof(name), "dsplug_backfill_%d", (int) getpid());
	if (!source_create_slot(repl, name, true, &snapshot, copied_lsn))
		goto done;
	conn = source_connect(opts->dbname, false);
	if (conn == NULL)
		goto done;
	if (!source_set_formats(conn))
	{
		source_conn_failed(conn, "configure the backfill connection");
		goto done;
	}
	if (!source_begin_snapshot(conn, snapshot) ||
		!source_published_tables(conn, opts->publications, rel->oid, &tables))
		goto done;

	/*
	 * The columns copied are the ones the stream describes; rows, those the
	 * publications' row filters pass.  A relation no longer published at
	 * the snapshot has nothing to copy: the target's rows are removed all
	 * the same, as a copy of no rows.
	 */
	if (source_tables_count(&tables) == 0)
		ok = sink_begin_copy(sink, rel, *copied_lsn) &&
			sink_end_copy(sink, rel);
	else
		ok = copy_relation(conn, &tables, 0, rel, *copied_lsn, &ct, tick,
						   tick_arg, &rows);
	if (ok)
		log_info("copied table \"%s\".\"%s\": %llu rows, consistent at %X/%X",
				 rel->schema, rel->name, (unsigned long long) rows,
				 LSN_FORMAT_ARGS(*copied_lsn));

done:
	source_tables_free(&tables);
	free(snapshot);
	PQfinish(conn);
	PQfinish(repl);
	return ok;
}
