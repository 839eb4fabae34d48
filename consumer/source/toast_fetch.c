/*-------------------------------------------------------------------------
 *
 * toast_fetch.c
 *		Unchanged TOAST values read again from the source, for targets that
 *		replace whole rows (BigQuery merge tables).
 *
 * An update that leaves a TOASTed value unchanged does not carry it: WAL
 * holds only the new tuple's inline part, and the value arrives as an
 * "unchanged TOAST" marker, unless REPLICA IDENTITY FULL puts the whole
 * old row in WAL.  SQLite keeps the value it has; a BigQuery UPSERT
 * replaces the whole row, so the value must be supplied.  It is read from
 * the source: the row's current values of just those columns, by its
 * primary key, over a normal connection (opened on first need, kept, and
 * opened again after a failure), decoded exactly as a copied row is
 * (source_read_row, copy.c).
 *
 * Why the value read now is right.  The change has sequence number S (its
 * commit LSN and position); the value is the row's state at some time
 * after the change committed.
 *
 *	- The column was not changed since: the value is the one the change
 *	  left in place.  The UPSERT at S holds the row as of S.
 *	- A later transaction changed it: its own change carries the new value
 *	  (a changed value is never "unchanged TOAST") with a sequence number
 *	  above S, so the target ends with that change's row whatever the UPSERT
 *	  at S held: the target converges to the source.
 *	- The row no longer exists (deleted, or its key changed): a later change
 *	  with a sequence number above S deletes it or moves it, so the UPSERT
 *	  at S would be overwritten anyway and is not written.  If this change
 *	  itself moved the row from another key, that key's DELETE still is.
 *
 * What a target holds between S and the later change may mix newer values
 * into an older row; the same is true of any copy taken while the source
 * is written, and it is gone once the later change is applied.
 *
 * consumer/source/toast_fetch.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "source/source.h"

/*
 * The connection and the buffers of the re-selects.  A completed tuple
 * and the values it points to belong to the fetcher until its next call.
 */
struct ToastFetcher
{
	const char *conninfo;
	PGconn	   *conn;			/* NULL until needed, or after a failure */
	RowReader  *reader;
	Dsplug__Tuple tuple;		/* the completed new tuple */
	Dsplug__Tuple key;			/* the key, in the relation's layout */
	Dsplug__Value **values;
	Dsplug__Value **key_values;
	const Dsplug__Column **want_columns;
	int		   *want_source;	/* per wanted column: its index in rel */
	size_t		cap;

	/* statistics, logged at the end */
	uint64_t	rows;			/* rows read again */
	uint64_t	vanished;		/* of those, rows no longer there */
	int64_t		us;				/* time spent reading */
};

static bool is_unset(const Dsplug__Value *v);
static bool ensure_connection(ToastFetcher *tf);

/*
 * A fetcher reading from conninfo (kept by reference), connecting on first
 * need.  The caller frees it with toast_fetcher_free.
 */
ToastFetcher *
toast_fetcher_create(const char *conninfo)
{
	ToastFetcher *tf = xmalloc(sizeof(ToastFetcher));

	memset(tf, 0, sizeof(ToastFetcher));
	tf->conninfo = conninfo;
	return tf;
}

void
toast_fetcher_free(ToastFetcher *tf)
{
	if (tf == NULL)
		return;
	if (tf->rows > 0)
		log_info("read %llu rows' unchanged TOAST values from the source (%.2f ms each); %llu no longer existed",
				 (unsigned long long) tf->rows,
				 tf->us / 1000.0 / (double) tf->rows,
				 (unsigned long long) tf->vanished);
	source_read_row_free(tf->reader);
	PQfinish(tf->conn);
	free(tf->values);
	free(tf->key_values);
	free(tf->want_columns);
	free(tf->want_source);
	free(tf);
}

static bool
is_unset(const Dsplug__Value *v)
{
	return v == NULL || v->kind_case == DSPLUG__VALUE__KIND__NOT_SET;
}

static bool
ensure_connection(ToastFetcher *tf)
{
	if (tf->conn != NULL)
		return true;
	tf->conn = source_connect(tf->conninfo, false);
	if (tf->conn == NULL)
		return false;
	if (!source_set_formats(tf->conn))
	{
		error_set(RESULT_RETRY, "could not configure the connection reading unchanged TOAST values: %s",
				  PQerrorMessage(tf->conn));
		PQfinish(tf->conn);
		tf->conn = NULL;
		return false;
	}
	return true;
}

/*
 * Complete an update of rel committed at commit_lsn, for a target that
 * replaces whole rows.  When its new tuple nt has unchanged TOAST values
 * that its old tuple does not carry
 * (REPLICA IDENTITY FULL carries them; the target then uses the old
 * tuple's), read them from the source, and set *new_ to the new tuple with
 * them filled in (owned by tf until its next call).  *vanished: the row no
 * longer exists at the source; the UPSERT is not to be written (see the
 * file header).  Otherwise *new_ is nt.  false after error_set(),
 * RESULT_RETRY when the connection failed or the server may answer later
 * (tf drops the connection; the session is retried, so the transaction
 * comes again).
 */
bool
toast_fetch_complete(ToastFetcher *tf, const Dsplug__Relation *rel,
					 const Dsplug__Tuple *old, const Dsplug__Tuple *nt,
					 uint64_t commit_lsn, const Dsplug__Tuple **new_,
					 bool *vanished)
{
	const Dsplug__Tuple *row;
	Dsplug__Relation want;
	size_t		n = rel->n_columns;
	size_t		nwant = 0;
	int64_t		started;

	*new_ = nt;
	*vanished = false;
	if (nt == NULL || nt->n_values != n)
		return true;
	if (n > tf->cap)
	{
		tf->cap = n;
		tf->values = xrealloc(tf->values, sizeof(Dsplug__Value *) * n);
		tf->key_values = xrealloc(tf->key_values, sizeof(Dsplug__Value *) * n);
		tf->want_columns = xrealloc(tf->want_columns, sizeof(Dsplug__Column *) * n);
		tf->want_source = xrealloc(tf->want_source, sizeof(int) * n);
	}
	for (size_t c = 0; c < n; c++)
	{
		const Dsplug__Value *v = nt->values[c];
		const Dsplug__Value *ov = old != NULL && c < old->n_values ? old->values[c] : NULL;

		tf->key_values[c] = (Dsplug__Value *) v;
		if (v == NULL || v->kind_case != DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
			continue;
		if (!is_unset(ov) && ov->kind_case != DSPLUG__VALUE__KIND_UNCHANGED_TOAST)
		{
			tf->key_values[c] = (Dsplug__Value *) ov;
			continue;			/* the old tuple carries it */
		}
		tf->want_columns[nwant] = rel->columns[c];
		tf->want_source[nwant] = (int) c;
		nwant++;
	}
	if (nwant == 0)
		return true;

	want = *rel;
	want.columns = (Dsplug__Column **) tf->want_columns;
	want.n_columns = nwant;
	dsplug__tuple__init(&tf->key);
	tf->key.values = tf->key_values;
	tf->key.n_values = n;

	started = clock_us();
	if (!ensure_connection(tf))
		return false;
	if (!source_read_row(tf->conn, rel, &want, &tf->key, &tf->reader, &row))
	{
		PQfinish(tf->conn);
		tf->conn = NULL;
		return false;
	}
	tf->rows++;
	tf->us += clock_us() - started;
	if (row == NULL)
	{
		tf->vanished++;
		*vanished = true;
		log_verbose("row of \"%s\".\"%s\" updated at %X/%X no longer exists at the source: its unchanged TOAST values cannot be read, and a later change replaces the row; the UPSERT is not written",
					rel->schema, rel->name, LSN_FORMAT_ARGS(commit_lsn));
		return true;
	}

	dsplug__tuple__init(&tf->tuple);
	memcpy(tf->values, nt->values, sizeof(Dsplug__Value *) * n);
	for (size_t w = 0; w < nwant; w++)
		tf->values[tf->want_source[w]] = row->values[w];
	tf->tuple.values = tf->values;
	tf->tuple.n_values = n;
	*new_ = &tf->tuple;
	return true;
}
