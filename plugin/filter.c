/*-------------------------------------------------------------------------
 *
 * filter.c
 *		Which relations and actions a session publishes, as pgoutput
 *		decides it, and the per-relation cache that remembers the answer.
 *
 * A relation is published when one of the session's publications is FOR
 * ALL TABLES, lists the relation, lists its schema (TABLES IN SCHEMA), or
 * (for a partition) publishes one of its ancestors.  Publish actions are
 * OR-ed over the publications that publish it; publish_via_partition_root
 * makes it published as an ancestor; row filters and column lists come from
 * the publications that publish it at that level, combined as pgoutput
 * combines them.  Publications are looked up by name under the historic
 * snapshot, so ALTER PUBLICATION takes effect at the point of the stream
 * where it committed.
 *
 * Cache lifetime: the hash and everything in it live in a context under
 * ctx->context, so the end of a session (or an ERROR that skips the
 * shutdown callback) frees them.  Invalidation callbacks cannot be
 * unregistered; they reach the cache through a static pointer that a reset
 * callback on that context clears, and they only mark entries stale, since
 * they may fire in the middle of our own catalog lookups.
 *
 * plugin/filter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/attmap.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_publication_rel.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "compat.h"
#include "dsplug.h"

/*
 * The session's cache, reachable from invalidation callbacks.  NULL when no
 * session is running in this process.
 */
typedef struct FilterCache
{
	HTAB	   *relations;		/* DsplugRelation by relid */
	List	   *publications;	/* of Publication *, in cache_cxt */
	bool		publications_valid;
	List	   *publication_names;
	MemoryContext cxt;
} FilterCache;

static FilterCache *cache = NULL;
static bool callbacks_registered = false;

static void filter_cache_reset(void *arg);
static void invalidate_relation_cb(Datum arg, Oid relid);
static void invalidate_publications_cb(Datum arg, int cacheid,
									   uint32 hashvalue);
static void load_publications(void);
static void build_entry(DsplugData *data, DsplugRelation *entry,
						Relation relation);
static Bitmapset *column_list(List *pubs, Relation pubrel);
static void row_filters_init(DsplugRelation *entry, List *pubs,
							 Relation pubrel);
static EState *filter_estate(Relation rel);
static bool filter_matches(DsplugRelation *entry, ExprState *state,
						   TupleTableSlot *slot);

/*
 * Set up the cache for a session whose memory lives in session_cxt.
 */
void
filter_init(DsplugData *data, MemoryContext session_cxt)
{
	HASHCTL		ctl;
	MemoryContextCallback *cb;

	data->cache_cxt = AllocSetContextCreate(session_cxt, "dsplug cache",
											ALLOCSET_DEFAULT_SIZES);

	cache = MemoryContextAllocZero(data->cache_cxt, sizeof(FilterCache));
	cache->cxt = data->cache_cxt;
	cache->publication_names = data->opts.publication_names;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DsplugRelation);
	ctl.hcxt = data->cache_cxt;
	cache->relations = hash_create("dsplug relations", 128, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* forget the cache when its memory goes, however the session ends */
	cb = MemoryContextAlloc(data->cache_cxt, sizeof(MemoryContextCallback));
	cb->func = filter_cache_reset;
	cb->arg = cache;
	MemoryContextRegisterResetCallback(data->cache_cxt, cb);

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_relation_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(PUBLICATIONOID,
									  invalidate_publications_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(PUBLICATIONRELMAP,
									  invalidate_publications_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(PUBLICATIONNAMESPACEMAP,
									  invalidate_publications_cb, (Datum) 0);
		callbacks_registered = true;
	}
}

static void
filter_cache_reset(void *arg)
{
	if (cache == arg)
		cache = NULL;
}

/*
 * The cache entry for a relation, valid and with its publish actions set.
 * Entries that publish anything also carry the column encoding and the
 * description to send.  ERRORs if a requested publication does not exist
 * (at this point of the stream), as pgoutput does.
 */
DsplugRelation *
filter_relation(DsplugData *data, Relation relation)
{
	Oid			relid = RelationGetRelid(relation);
	DsplugRelation *entry;
	bool		found;

	Assert(cache != NULL);

	entry = hash_search(cache->relations, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset((char *) entry + sizeof(Oid), 0,
			   sizeof(DsplugRelation) - sizeof(Oid));
		entry->valid = false;
	}

	if (!entry->valid)
		build_entry(data, entry, relation);

	return entry;
}

/*
 * (Re)build an entry.  The relation's description must be sent again: it may
 * have changed, or the publications may now publish it differently.
 *
 * Which publications publish the relation, and as what, follows pgoutput's
 * get_rel_sync_entry: a partition is published as the top-most ancestor
 * that a publication with publish_via_partition_root publishes, and only the
 * publications publishing it at that level contribute row filters and
 * column lists.
 */
static void
build_entry(DsplugData *data, DsplugRelation *entry, Relation relation)
{
	Oid			relid = RelationGetRelid(relation);
	Oid			nspid = RelationGetNamespace(relation);
	bool		am_partition = relation->rd_rel->relispartition;
	char		relkind = relation->rd_rel->relkind;
	List	   *pubids;
	List	   *schema_pubids;
	List	   *ancestors = NIL;
	List	   *rel_pubs = NIL;
	int			publish_level = 0;
	Oid			publish_as_relid = relid;
	ListCell   *lc;

	if (!cache->publications_valid)
		load_publications();

	entry->described = false;
	entry->pubinsert = entry->pubupdate = false;
	entry->pubdelete = entry->pubtruncate = false;
	if (entry->mcxt != NULL)
		MemoryContextReset(entry->mcxt);
	entry->publish_as_relid = relid;
	entry->attrmap = NULL;
	entry->columns = NULL;
	entry->ncolumns = 0;
	entry->old_slot = entry->new_slot = NULL;
	entry->old_pub_slot = entry->new_pub_slot = NULL;
	entry->estate = NULL;
	memset(entry->exprstate, 0, sizeof(entry->exprstate));
	entry->stream_described = NIL;

	pubids = GetRelationPublications(relid);
	schema_pubids = GetSchemaPublications(nspid);
	if (am_partition)
		ancestors = get_partition_ancestors(relid);

	foreach(lc, cache->publications)
	{
		Publication *pub = lfirst(lc);
		bool		publish = false;
		Oid			pub_relid = relid;
		int			level = 0;

		if (pub->alltables)
		{
			publish = true;
			if (pub->pubviaroot && am_partition)
			{
				pub_relid = llast_oid(ancestors);
				level = list_length(ancestors);
			}
		}
		else
		{
			if (ancestors != NIL)
			{
				int			anc_level;
				Oid			ancestor = GetTopMostAncestorInPublication(pub->oid,
																	   ancestors,
																	   &anc_level);

				if (OidIsValid(ancestor))
				{
					publish = true;
					if (pub->pubviaroot)
					{
						pub_relid = ancestor;
						level = anc_level;
					}
				}
			}
			if (list_member_oid(pubids, pub->oid) ||
				list_member_oid(schema_pubids, pub->oid))
				publish = true;
		}

		/*
		 * A partitioned table's rows live in its partitions, whose changes
		 * are published for it, unless the publication publishes them as
		 * the partitioned table itself.
		 */
		if (!publish ||
			(relkind == RELKIND_PARTITIONED_TABLE && !pub->pubviaroot))
			continue;

		entry->pubinsert |= pub->pubactions.pubinsert;
		entry->pubupdate |= pub->pubactions.pubupdate;
		entry->pubdelete |= pub->pubactions.pubdelete;
		entry->pubtruncate |= pub->pubactions.pubtruncate;

		/* publish as the top-most ancestor any publication asks for */
		if (level < publish_level)
			continue;
		if (level > publish_level)
		{
			publish_as_relid = pub_relid;
			publish_level = level;
			list_free(rel_pubs);
			rel_pubs = NIL;
		}
		rel_pubs = lappend(rel_pubs, pub);
	}

	list_free(pubids);
	list_free(schema_pubids);
	list_free(ancestors);

	if (entry->pubinsert || entry->pubupdate || entry->pubdelete ||
		entry->pubtruncate)
	{
		Relation	pubrel = relation;
		MemoryContext oldcxt;
		Bitmapset  *columns;

		if (entry->mcxt == NULL)
			entry->mcxt = AllocSetContextCreate(cache->cxt, "dsplug relation",
												ALLOCSET_SMALL_SIZES);
		if (publish_as_relid != relid)
			pubrel = RelationIdGetRelation(publish_as_relid);
		entry->publish_as_relid = publish_as_relid;

		oldcxt = MemoryContextSwitchTo(entry->mcxt);
		columns = column_list(rel_pubs, pubrel);
		encode_describe(entry, pubrel, columns);

		/*
		 * The slots' descriptor copies keep the constraints, for their
		 * attmissingval: a row stored before ADD COLUMN ... DEFAULT and
		 * logged whole (an old row under REPLICA IDENTITY FULL) holds the
		 * default, not NULL.
		 */
		entry->old_slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(RelationGetDescr(relation)),
												   &TTSOpsHeapTuple);
		entry->new_slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(RelationGetDescr(relation)),
												   &TTSOpsHeapTuple);
		if (pubrel != relation)
		{
			entry->attrmap = build_attrmap_by_name_if_req(RelationGetDescr(relation),
														  RelationGetDescr(pubrel));
			if (entry->attrmap != NULL)
			{
				entry->old_pub_slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(RelationGetDescr(pubrel)),
															   &TTSOpsVirtual);
				entry->new_pub_slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(RelationGetDescr(pubrel)),
															   &TTSOpsVirtual);
			}
		}
		if (entry->pubinsert || entry->pubupdate || entry->pubdelete)
			row_filters_init(entry, rel_pubs, pubrel);
		MemoryContextSwitchTo(oldcxt);

		if (pubrel != relation)
			RelationClose(pubrel);
	}
	list_free(rel_pubs);

	entry->valid = true;
}

/*
 * The column list the publications give the published relation, as a set
 * of attnums, or NULL for all columns.  FOR ALL TABLES and TABLES IN SCHEMA
 * publications mean all columns; publications that disagree are an error,
 * as in pgoutput.  Allocated in the current context.
 */
static Bitmapset *
column_list(List *pubs, Relation pubrel)
{
	Bitmapset  *result = NULL;
	bool		first = true;
	ListCell   *lc;

	foreach(lc, pubs)
	{
		Publication *pub = lfirst(lc);
		Bitmapset  *cols = NULL;

		if (!pub->alltables)
		{
			HeapTuple	tup = SearchSysCache2(PUBLICATIONRELMAP,
											  ObjectIdGetDatum(RelationGetRelid(pubrel)),
											  ObjectIdGetDatum(pub->oid));

			/* no pg_publication_rel row: published by schema, no list */
			if (HeapTupleIsValid(tup))
			{
				bool		isnull;
				Datum		attrs = SysCacheGetAttr(PUBLICATIONRELMAP, tup,
													Anum_pg_publication_rel_prattrs,
													&isnull);

				if (!isnull)
				{
					cols = pub_collist_to_bitmapset(NULL, attrs,
													CurrentMemoryContext);
					if (bms_num_members(cols) == RelationGetNumberOfAttributes(pubrel))
					{
						bms_free(cols);
						cols = NULL;
					}
				}
				ReleaseSysCache(tup);
			}
		}

		if (first)
		{
			result = cols;
			first = false;
		}
		else if (!bms_equal(result, cols))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot use different column lists for table \"%s.%s\" in different publications",
							get_namespace_name(RelationGetNamespace(pubrel)),
							RelationGetRelationName(pubrel))));
	}
	return result;
}

/*
 * Prepare the row filters of the published relation, one expression per
 * action OR-ed over the publications that publish that action, in the
 * current context (the entry's).  A publication without a filter for the
 * relation (FOR ALL TABLES, TABLES IN SCHEMA, or a table without WHERE)
 * means no filter for its actions, whatever the others say.
 */
static void
row_filters_init(DsplugRelation *entry, List *pubs, Relation pubrel)
{
	List	   *quals[3] = {NIL, NIL, NIL};
	bool		unfiltered[3] = {false, false, false};
	Oid			nspid = RelationGetNamespace(pubrel);
	ListCell   *lc;

	foreach(lc, pubs)
	{
		Publication *pub = lfirst(lc);
		bool		actions[3] = {pub->pubactions.pubinsert,
								  pub->pubactions.pubupdate,
								  pub->pubactions.pubdelete};
		char	   *qual = NULL;

		if (!pub->alltables &&
			!SearchSysCacheExists2(PUBLICATIONNAMESPACEMAP,
								   ObjectIdGetDatum(nspid),
								   ObjectIdGetDatum(pub->oid)))
		{
			HeapTuple	tup = SearchSysCache2(PUBLICATIONRELMAP,
											  ObjectIdGetDatum(RelationGetRelid(pubrel)),
											  ObjectIdGetDatum(pub->oid));

			if (HeapTupleIsValid(tup))
			{
				bool		isnull;
				Datum		d = SysCacheGetAttr(PUBLICATIONRELMAP, tup,
												Anum_pg_publication_rel_prqual,
												&isnull);

				if (!isnull)
					qual = TextDatumGetCString(d);
				ReleaseSysCache(tup);
			}
		}

		for (int a = 0; a < 3; a++)
		{
			if (!actions[a])
				continue;
			if (qual == NULL)
				unfiltered[a] = true;
			else
				quals[a] = lappend(quals[a], qual);
		}
	}

	for (int a = 0; a < 3; a++)
	{
		List	   *exprs = NIL;

		if (unfiltered[a] || quals[a] == NIL)
			continue;
		if (entry->estate == NULL)
			entry->estate = filter_estate(pubrel);
		foreach(lc, quals[a])
			exprs = lappend(exprs, stringToNode((char *) lfirst(lc)));
		entry->exprstate[a] = ExecPrepareExpr(make_orclause(exprs), entry->estate);
	}
}

/* An executor state in which to evaluate the relation's row filters. */
static EState *
filter_estate(Relation rel)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = AccessShareLock;
	ExecInitRangeTable(estate, list_make1(rte));
	estate->es_output_cid = GetCurrentCommandId(false);
	return estate;
}

/* A row filter's verdict on the slot's row; NULL counts as false. */
static bool
filter_matches(DsplugRelation *entry, ExprState *state, TupleTableSlot *slot)
{
	ExprContext *econtext = GetPerTupleExprContext(entry->estate);
	bool		isnull;
	Datum		ret;

	econtext->ecxt_scantuple = slot;
	ret = ExecEvalExprSwitchContext(state, econtext, &isnull);
	return !isnull && DatumGetBool(ret);
}

/*
 * Apply the row filter of *action to a change whose rows (in the published
 * relation's layout) are in old_slot and *new_slot.  Returns false if the
 * change is not to be sent.  As in pgoutput, an UPDATE whose old row passes
 * and new row fails becomes a DELETE, the reverse an INSERT (*action says
 * which); for that INSERT, *new_slot may be replaced by a row whose
 * unchanged TOASTed key values come from the old row.  Memory goes to the
 * current context (the change's).
 */
bool
filter_row(DsplugRelation *entry, TupleTableSlot *old_slot,
		   TupleTableSlot **new_slot, ReorderBufferChangeType *action)
{
	ExprState  *state;
	TupleTableSlot *newrow = *new_slot;
	TupleTableSlot *patched = NULL;
	TupleDesc	desc;
	bool		old_ok;
	bool		new_ok;

	switch (*action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			state = entry->exprstate[0];
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			state = entry->exprstate[1];
			break;
		default:
			state = entry->exprstate[2];
			break;
	}
	if (state == NULL)
		return true;

	ResetPerTupleExprContext(entry->estate);

	/* inserts and deletes, and updates without an old row: one row to test */
	if (old_slot == NULL || newrow == NULL)
		return filter_matches(entry, state, newrow ? newrow : old_slot);

	/*
	 * An unchanged TOASTed value is only in the old row: the filter must see
	 * it in the new one too.
	 */
	slot_getallattrs(old_slot);
	slot_getallattrs(newrow);
	desc = newrow->tts_tupleDescriptor;
	for (int i = 0; i < desc->natts; i++)
	{
		if (newrow->tts_isnull[i] || old_slot->tts_isnull[i] ||
			TupleDescAttr(desc, i)->attlen != -1 ||
			!VARATT_IS_EXTERNAL_ONDISK(newrow->tts_values[i]) ||
			VARATT_IS_EXTERNAL_ONDISK(old_slot->tts_values[i]))
			continue;
		if (patched == NULL)
		{
			patched = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
			memcpy(patched->tts_values, newrow->tts_values,
				   desc->natts * sizeof(Datum));
			memcpy(patched->tts_isnull, newrow->tts_isnull,
				   desc->natts * sizeof(bool));
		}
		patched->tts_values[i] = old_slot->tts_values[i];
	}
	if (patched != NULL)
		ExecStoreVirtualTuple(patched);

	old_ok = filter_matches(entry, state, old_slot);
	new_ok = filter_matches(entry, state, patched ? patched : newrow);

	if (!old_ok && !new_ok)
		return false;
	if (!old_ok)
	{
		*action = REORDER_BUFFER_CHANGE_INSERT;
		if (patched != NULL)
			*new_slot = patched;
	}
	else if (!new_ok)
		*action = REORDER_BUFFER_CHANGE_DELETE;
	return true;
}

/*
 * (Re)load the session's publications by name, under the historic snapshot
 * decoding runs with.
 */
static void
load_publications(void)
{
	MemoryContext oldcxt;
	ListCell   *lc;

	if (cache->publications != NIL)
	{
		list_free_deep(cache->publications);
		cache->publications = NIL;
	}

	oldcxt = MemoryContextSwitchTo(cache->cxt);
	foreach(lc, cache->publication_names)
	{
		char	   *name = lfirst(lc);

		cache->publications = lappend(cache->publications,
									  GetPublicationByName(name, false));
	}
	MemoryContextSwitchTo(oldcxt);

	cache->publications_valid = true;
}

/*
 * A streamed transaction ended: forget which relations its chunks
 * described.
 */
void
filter_stream_done(TransactionId xid)
{
	HASH_SEQ_STATUS status;
	DsplugRelation *entry;

	if (cache == NULL)
		return;
	hash_seq_init(&status, cache->relations);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->stream_described = list_delete_int(entry->stream_described,
												  (int) xid);
}

/* A relation changed (DDL, statistics, anything): describe it again. */
static void
invalidate_relation_cb(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	DsplugRelation *entry;

	if (cache == NULL)
		return;

	if (OidIsValid(relid))
	{
		entry = hash_search(cache->relations, &relid, HASH_FIND, NULL);
		if (entry != NULL)
			entry->valid = false;
		return;
	}

	hash_seq_init(&status, cache->relations);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

/*
 * A publication, its tables or its schemas changed.  Which relations are
 * affected is not known from a hash value: rebuild everything.
 */
static void
invalidate_publications_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	DsplugRelation *entry;

	if (cache == NULL)
		return;

	if (cacheid == PUBLICATIONOID)
		cache->publications_valid = false;

	hash_seq_init(&status, cache->relations);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}
