/*-------------------------------------------------------------------------
 *
 * filter.c
 *		Which relations and actions a session publishes, as pgoutput
 *		decides it, and the per-relation cache that remembers the answer.
 *
 * A relation is published when one of the session's publications is FOR
 * ALL TABLES, lists the relation, lists its schema (TABLES IN SCHEMA), or
 * (for a partition) publishes one of its ancestors.  Publish actions are
 * OR-ed over the publications that publish it.  Publications are looked up
 * by name under the historic snapshot, so ALTER PUBLICATION takes effect at
 * the point of the stream where it committed.
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

#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_publication.h"
#include "executor/tuptable.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

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
	ListCell   *lc;

	if (!cache->publications_valid)
		load_publications();

	entry->described = false;
	entry->pubinsert = entry->pubupdate = false;
	entry->pubdelete = entry->pubtruncate = false;
	if (entry->mcxt != NULL)
		MemoryContextReset(entry->mcxt);
	entry->columns = NULL;
	entry->ncolumns = 0;
	entry->slot = NULL;

	pubids = GetRelationPublications(relid);
	schema_pubids = GetSchemaPublications(nspid);
	if (am_partition)
		ancestors = get_partition_ancestors(relid);

	foreach(lc, cache->publications)
	{
		Publication *pub = lfirst(lc);
		bool		publish = false;

		if (pub->alltables)
			publish = true;
		else if (list_member_oid(pubids, pub->oid) ||
				 list_member_oid(schema_pubids, pub->oid))
			publish = true;
		else if (ancestors != NIL)
		{
			int			level;

			publish = OidIsValid(GetTopMostAncestorInPublication(pub->oid,
																 ancestors,
																 &level));
		}

		/*
		 * A partitioned table's rows live in its partitions, whose changes
		 * are published for it; only publish_via_partition_root (not yet
		 * honoured, see the README) would send them as the parent.
		 */
		if (!publish || relkind == RELKIND_PARTITIONED_TABLE)
			continue;

		entry->pubinsert |= pub->pubactions.pubinsert;
		entry->pubupdate |= pub->pubactions.pubupdate;
		entry->pubdelete |= pub->pubactions.pubdelete;
		entry->pubtruncate |= pub->pubactions.pubtruncate;
	}

	list_free(pubids);
	list_free(schema_pubids);
	list_free(ancestors);

	if (entry->pubinsert || entry->pubupdate || entry->pubdelete ||
		entry->pubtruncate)
	{
		if (entry->mcxt == NULL)
			entry->mcxt = AllocSetContextCreate(cache->cxt, "dsplug relation",
												ALLOCSET_SMALL_SIZES);
		encode_describe(entry, relation);
	}

	entry->valid = true;
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
