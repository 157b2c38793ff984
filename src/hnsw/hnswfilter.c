/*-------------------------------------------------------------------------
 *
 * hnswfilter.c
 *	  Filter keys: extra index columns whose quals an hnsw scan evaluates
 *	  while it walks the graph.
 *
 * CREATE INDEX ... USING hnsw (embedding vector_cosine_ops, tenant_id)
 * stores tenant_id in every node slot (see hnsw.h for the key area).  A
 * qual on tenant_id that the planner hands to the index, a WHERE clause
 * with a leakproof operator or any row-level security policy qual, arrives
 * as a ScanKey; the scan then keeps only matching nodes as results, while
 * non-matching ones still route the search (they enter the candidate
 * queue, as in hnswlib's filtered search), so the graph stays connected
 * for the search whatever the filter.  No heap row is fetched for a node
 * that does not match.
 *
 * Key types: int2, int4, int8 (one operator family, with cross-type
 * operators, so a bigint column compared with an integer literal is still
 * an index qual), date and bool are stored as their value (int64), so
 * <, <=, =, >=, > are all exact.  uuid and text are stored as a 64-bit
 * hash (text with the column's collation, so nondeterministic collations
 * hash equal strings alike) and support only =; as hashes collide, the
 * executor rechecks those quals on the heap row.
 *
 * A NULL key is flagged in the key area's null bitmap and matches no qual
 * (the operators are strict).  A NULL comparison value matches no row.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswfilter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "hnsw.h"

/* How a key type is stored */
static bool
KeyTypeSupported(Oid type, bool *hashed)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case DATEOID:
		case BOOLOID:
			*hashed = false;
			return true;
		case UUIDOID:
		case TEXTOID:
			*hashed = true;
			return true;
		default:
			return false;
	}
}

/* Is type a filter-key type (else the column must be the vector)? */
bool
HnswIsKeyType(Oid type)
{
	bool		hashed;

	return KeyTypeSupported(type, &hashed);
}

/* The 8-byte key of a non-NULL value of a key type */
static int64
KeyFromDatum(Oid type, Oid collation, Datum value)
{
	switch (type)
	{
		case INT2OID:
			return (int64) DatumGetInt16(value);
		case INT4OID:
			return (int64) DatumGetInt32(value);
		case INT8OID:
			return DatumGetInt64(value);
		case DATEOID:
			return (int64) DatumGetDateADT(value);
		case BOOLOID:
			return DatumGetBool(value) ? 1 : 0;
		case UUIDOID:
			return DatumGetInt64(DirectFunctionCall2(uuid_hash_extended, value,
													 Int64GetDatum(0)));
		case TEXTOID:
			return DatumGetInt64(DirectFunctionCall2Coll(hashtextextended, collation,
														 value, Int64GetDatum(0)));
	}
	elog(ERROR, "unsupported hnsw key type %u", type);
	return 0;
}

/*
 * Check the columns of an index being built: a vector column with a
 * distance opclass first, then up to HNSW_MAX_KEYS filter keys.  Returns
 * the number of keys.
 */
int
HnswCheckColumns(Relation index)
{
	int			natts = index->rd_index->indnatts;
	bool		hashed;

	if (!OidIsValid(index_getprocid(index, 1, HNSW_DISTANCE_PROC)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("first column of an hnsw index must be a vector with a distance operator class"),
				 errhint("Index the embedding first, then the filter keys, e.g. (embedding vector_cosine_ops, tenant_id).")));
	if (natts - 1 > HNSW_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("hnsw indexes support at most %d filter-key columns", HNSW_MAX_KEYS)));
	for (int i = 1; i < natts; i++)
	{
		if (OidIsValid(index_getprocid(index, i + 1, HNSW_DISTANCE_PROC)) ||
			!KeyTypeSupported(index->rd_opcintype[i], &hashed))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("hnsw filter-key column %d has unsupported type %s",
							i + 1, format_type_be(index->rd_opcintype[i])),
					 errhint("Filter keys may be of type smallint, integer, bigint, date, boolean, uuid or text.")));
	}
	return natts - 1;
}

/* Extend a layout with the key area between the slot header and the links */
void
HnswInfoInitKeys(HnswInfo *info, int nkeys)
{
	int			slot;

	if (nkeys == 0)
		return;
	info->nkeys = nkeys;
	info->keys_offset = sizeof(HnswSlotHeader);
	info->key_bytes = sizeof(uint64) * (nkeys + 1);
	info->links_offset = info->keys_offset + info->key_bytes;
	info->vector_offset = info->links_offset + sizeof(uint32) * info->m0;
	slot = TYPEALIGN(sizeof(uint32), info->vector_offset + info->vector_bytes);
	if (slot > HNSW_SLOTS_SPACE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector of %d dimensions with %d filter keys is too large for an hnsw index with m = %d",
						info->dims, nkeys, info->m),
				 errdetail("A node needs %d bytes, but a page holds at most %d.",
						   slot, (int) HNSW_SLOTS_SPACE),
				 errhint("Use a smaller m, fewer dimensions or fewer filter keys.")));
	info->slot_size = slot;
	info->slots_per_page = HNSW_SLOTS_SPACE / slot;
}

/* The key area of a row being indexed */
void
HnswFormKeys(Relation index, const HnswInfo *info, Datum *values, bool *isnull, char *out)
{
	uint64		nulls = 0;

	memset(out, 0, info->key_bytes);
	for (int i = 0; i < info->nkeys; i++)
	{
		int64		key = 0;

		if (isnull[i + 1])
			nulls |= UINT64CONST(1) << i;
		else
			key = KeyFromDatum(index->rd_opcintype[i + 1], index->rd_indcollation[i + 1],
							   values[i + 1]);
		memcpy(out + sizeof(uint64) * (i + 1), &key, sizeof(int64));
	}
	memcpy(out, &nulls, sizeof(uint64));
}

/*
 * Turn a scan's ScanKeys (quals on key columns) into a filter.  The
 * comparison value may be of another type of the operator family (int8 =
 * int4): it is converted by its own type, sk_subtype.
 */
void
HnswKeyFilterInit(Relation index, ScanKey keys, int nkeys, HnswKeyFilter *filter)
{
	filter->nconds = 0;
	filter->never = false;
	filter->recheck = false;
	for (int i = 0; i < nkeys; i++)
	{
		ScanKey		sk = &keys[i];
		int			col = sk->sk_attno - 1;
		Oid			type = OidIsValid(sk->sk_subtype) ? sk->sk_subtype : index->rd_opcintype[col];
		bool		hashed;
		HnswKeyCond *c;

		if (col < 1 || col >= index->rd_index->indnatts)
			elog(ERROR, "unexpected hnsw scan key on column %d", sk->sk_attno);
		if (sk->sk_flags & SK_ISNULL)
		{
			filter->never = true;
			continue;
		}
		if (!KeyTypeSupported(type, &hashed))
			elog(ERROR, "unsupported hnsw key type %u", type);
		if (hashed)
		{
			if (sk->sk_strategy != BTEqualStrategyNumber)
				elog(ERROR, "unsupported strategy %d for a hashed hnsw key", sk->sk_strategy);
			filter->recheck = true;
		}
		c = &filter->conds[filter->nconds++];
		c->key = col - 1;
		c->strategy = sk->sk_strategy;
		c->value = KeyFromDatum(type, index->rd_indcollation[col], sk->sk_argument);
	}
}

/* Does a node's key area satisfy the filter? */
bool
HnswKeyFilterMatch(void *arg, const char *keys)
{
	HnswKeyFilter *filter = (HnswKeyFilter *) arg;
	uint64		nulls;

	memcpy(&nulls, keys, sizeof(uint64));
	for (int i = 0; i < filter->nconds; i++)
	{
		const HnswKeyCond *c = &filter->conds[i];
		int64		key;
		bool		ok = false;

		if (nulls & (UINT64CONST(1) << c->key))
			return false;
		memcpy(&key, keys + sizeof(uint64) * (c->key + 1), sizeof(int64));
		switch (c->strategy)
		{
			case BTLessStrategyNumber:
				ok = key < c->value;
				break;
			case BTLessEqualStrategyNumber:
				ok = key <= c->value;
				break;
			case BTEqualStrategyNumber:
				ok = key == c->value;
				break;
			case BTGreaterEqualStrategyNumber:
				ok = key >= c->value;
				break;
			case BTGreaterStrategyNumber:
				ok = key > c->value;
				break;
		}
		if (!ok)
			return false;
	}
	return true;
}

/*
 * Validate a filter-key operator class (one without ordering operators):
 * search operators of strategies 1-5 returning bool, = at least for the
 * class's own type, only = for hashed types, no support functions.
 */
bool
HnswKeyOpclassValidate(Oid opclassoid, Oid opfamilyoid, Oid opcintype,
					   const char *opclassname)
{
	bool		result = true;
	bool		hashed;
	bool		has_eq = false;
	CatCList   *proclist,
			   *oprlist;

	if (!KeyTypeSupported(opcintype, &hashed))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("hnsw operator class \"%s\" is for unsupported key type %s",
						opclassname, format_type_be(opcintype))));
		return false;
	}
	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	if (proclist->n_members > 0)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("hnsw filter-key operator family of \"%s\" must not contain support functions",
						opclassname)));
		result = false;
	}
	ReleaseCatCacheList(proclist);

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop op = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);
		bool		lhashed,
					rhashed;

		if (op->amoppurpose != AMOP_SEARCH ||
			op->amopstrategy < BTLessStrategyNumber ||
			op->amopstrategy > BTGreaterStrategyNumber ||
			!check_amop_signature(op->amopopr, BOOLOID, op->amoplefttype, op->amoprighttype) ||
			!KeyTypeSupported(op->amoplefttype, &lhashed) ||
			!KeyTypeSupported(op->amoprighttype, &rhashed) ||
			lhashed != rhashed ||
			(lhashed && (op->amopstrategy != BTEqualStrategyNumber ||
						 op->amoplefttype != op->amoprighttype)))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("hnsw operator class \"%s\" contains invalid operator %s",
							opclassname, format_operator(op->amopopr))));
			result = false;
			continue;
		}
		if (op->amopstrategy == BTEqualStrategyNumber &&
			op->amoplefttype == opcintype && op->amoprighttype == opcintype)
			has_eq = true;
	}
	ReleaseCatCacheList(oprlist);
	if (!has_eq)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("hnsw operator class \"%s\" is missing its equality operator",
						opclassname)));
		result = false;
	}
	return result;
}
