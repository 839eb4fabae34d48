/*-------------------------------------------------------------------------
 *
 * encode.c
 *		Relation descriptions, and how each column's values are encoded.
 *
 * A relation's description is built once per cache entry (filter.c), and
 * with it a DsplugColumn per sent column saying how to encode its values,
 * so that encoding a row (encode_row.c) costs no catalog lookup.  Types
 * with a typed encoding (proto/WIRE.md) are taken from their Datums
 * directly; every other type goes through its output function.
 *
 * Memory: everything here lives in the entry's context, reset when the
 * entry is rebuilt after an invalidation.
 *
 * plugin/encode.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "dsplug.h"
#include "wire_types.h"

static char *type_name(Oid typid);

/*
 * Fill entry's column encodings and description from the published
 * relation, in entry->mcxt.  Dropped and generated columns are not sent,
 * nor columns outside the column list when columns is not NULL.
 */
void
encode_describe(DsplugRelation *entry, Relation relation, Bitmapset *columns)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(entry->mcxt);

	/*
	 * Read columns from the relation's own descriptor: a copy made with
	 * CreateTupleDescCopy has attgenerated and attnotnull cleared.
	 */
	TupleDesc	desc = RelationGetDescr(relation);
	Dsplug__Relation *rel = &entry->description;
	char		identity = relation->rd_rel->relreplident;
	Bitmapset  *idkey;
	Bitmapset  *pkey;
	Dsplug__Column **cols;
	int			n = 0;

	idkey = RelationGetIndexAttrBitmap(relation, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	pkey = RelationGetIndexAttrBitmap(relation, INDEX_ATTR_BITMAP_PRIMARY_KEY);

	entry->natts = desc->natts;
	entry->columns = palloc0(sizeof(DsplugColumn) * Max(desc->natts, 1));
	cols = palloc0(sizeof(Dsplug__Column *) * Max(desc->natts, 1));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		DsplugColumn *col = &entry->columns[n];
		Dsplug__Column *wc;
		int			bit = att->attnum - FirstLowInvalidHeapAttributeNumber;
		Oid			outfunc;
		bool		isvarlena;

		if (att->attisdropped || att->attgenerated)
			continue;
		if (columns != NULL && !bms_is_member(att->attnum, columns))
			continue;

		col->attidx = i;
		col->typid = att->atttypid;
		col->varlena = (att->attlen == -1);
		/* the kinds: proto/wire_types.h, shared with the consumer */
		col->kind = wire_type_kind(att->atttypid);
		col->elem_kind = DSPLUG__KIND__KIND_TEXT;
		if (col->kind == DSPLUG__KIND__KIND_TEXT &&
			!wire_type_is_character(att->atttypid))
		{
			Oid			elemtype = get_element_type(att->atttypid);

			col->kind = wire_column_kind(att->atttypid, elemtype,
										 &col->elem_kind);
			if (col->kind == DSPLUG__KIND__KIND_ARRAY)
			{
				col->elem_typid = elemtype;
				get_typlenbyvalalign(elemtype, &col->elem_len,
									 &col->elem_byval, &col->elem_align);
			}
			else
				col->use_output = true;
		}

		/* arrays need their output function for shapes sent as text */
		if (col->use_output || col->kind == DSPLUG__KIND__KIND_ARRAY)
		{
			getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
			fmgr_info_cxt(outfunc, &col->output, entry->mcxt);
		}

		wc = palloc(sizeof(Dsplug__Column));
		dsplug__column__init(wc);
		wc->name = text_utf8(NameStr(att->attname),
							 strlen(NameStr(att->attname)));
		wc->type_oid = att->atttypid;
		wc->type_name = type_name(att->atttypid);
		wc->typmod = att->atttypmod;
		wc->key = (identity == REPLICA_IDENTITY_FULL) ||
			bms_is_member(bit, idkey);
		wc->primary_key = bms_is_member(bit, pkey);
		wc->not_null = att->attnotnull;
		wc->kind = col->kind;
		wc->element_kind = col->elem_kind;
		wc->element_type_oid = col->elem_typid;
		cols[n++] = wc;
	}
	entry->ncolumns = n;

	dsplug__relation__init(rel);
	rel->oid = RelationGetRelid(relation);
	rel->schema = get_namespace_name(RelationGetNamespace(relation));
	rel->schema = text_utf8(rel->schema, strlen(rel->schema));
	rel->name = text_utf8(RelationGetRelationName(relation),
						  strlen(RelationGetRelationName(relation)));
	switch (identity)
	{
		case REPLICA_IDENTITY_NOTHING:
			rel->replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_NOTHING;
			break;
		case REPLICA_IDENTITY_FULL:
			rel->replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_FULL;
			break;
		case REPLICA_IDENTITY_INDEX:
			rel->replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_INDEX;
			break;
		default:
			rel->replica_identity = DSPLUG__REPLICA_IDENTITY__REPLICA_IDENTITY_DEFAULT;
			break;
	}
	rel->n_columns = n;
	rel->columns = cols;

	bms_free(idkey);
	bms_free(pkey);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * A NUL-terminated UTF-8 copy of len bytes of server-encoded text, in the
 * current context.  UTF8 and SQL_ASCII databases need no conversion (the
 * latter cannot have one: its bytes mean nothing in particular).
 */
char *
text_utf8(const char *s, int len)
{
	int			enc = GetDatabaseEncoding();
	char	   *result;

	if (enc != PG_UTF8 && enc != PG_SQL_ASCII)
	{
		result = pg_server_to_any(s, len, PG_UTF8);
		if (result != s)
			return result;
	}
	result = palloc(len + 1);
	memcpy(result, s, len);
	result[len] = '\0';
	return result;
}

/*
 * PostgreSQL's name for a type: the SQL spelling for built-in types
 * ("integer", "timestamp with time zone"), schema-qualified otherwise, so
 * the name does not depend on the session's search_path.
 */
static char *
type_name(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Oid			nspid;
	char	   *name;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	nspid = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
	ReleaseSysCache(tup);

	if (nspid == PG_CATALOG_NAMESPACE)
		name = format_type_be(typid);
	else
		name = format_type_extended(typid, -1, FORMAT_TYPE_FORCE_QUALIFY);
	return text_utf8(name, strlen(name));
}
