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
 * Key directory: a 256-bit summary of the keys on each node page (hnsw.h,
 * README), kept by the build and by every insert, so that a sweep for a
 * rare key reads only the pages that may hold it.
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
#include "miscadmin.h"
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

/*
 * Key directory: a 256-bit summary of the keys of each node page, so that
 * a scan that sweeps the index for a rare key reads only the pages that
 * may hold it (see hnsw.h for the layout and the invariant).
 */

/* The directory bit of key column col with stored value key */
static inline int
KeyDirBit(int col, int64 key)
{
	uint64		h = (uint64) key + (uint64) (col + 1) * UINT64CONST(0x9E3779B97F4A7C15);

	/* a 64-bit finalizer (splitmix64), top 8 bits */
	h ^= h >> 30;
	h *= UINT64CONST(0xBF58476D1CE4E5B9);
	h ^= h >> 27;
	h *= UINT64CONST(0x94D049BB133111EB);
	h ^= h >> 31;
	return (int) (h >> 56);
}

/* The directory bits of a node's key area (NULL keys set none) */
void
HnswKeyDirSlotBits(const HnswInfo *info, const char *keys, uint64 *bits)
{
	uint64		nulls;

	memset(bits, 0, sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS);
	memcpy(&nulls, keys, sizeof(uint64));
	for (int i = 0; i < info->nkeys; i++)
	{
		int64		key;
		int			b;

		if (nulls & (UINT64CONST(1) << i))
			continue;
		memcpy(&key, keys + sizeof(uint64) * (i + 1), sizeof(int64));
		b = KeyDirBit(i, key);
		bits[b / 64] |= UINT64CONST(1) << (b % 64);
	}
}

/*
 * The bits every page holding a match must have: one per equality
 * condition.  False if the filter has none (ranges cannot use the
 * directory).
 */
bool
HnswKeyDirFilterBits(const HnswKeyFilter *filter, uint64 *bits)
{
	bool		any = false;

	memset(bits, 0, sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS);
	for (int i = 0; i < filter->nconds; i++)
	{
		const HnswKeyCond *c = &filter->conds[i];
		int			b;

		if (c->strategy != BTEqualStrategyNumber)
			continue;
		b = KeyDirBit(c->key, c->value);
		bits[b / 64] |= UINT64CONST(1) << (b % 64);
		any = true;
	}
	return any;
}

/* Entry i of a directory page */
uint64 *
HnswKeyDirEntry(Page page, int i)
{
	return (uint64 *) ((char *) page + HNSW_SLOTS_START) + (int64) i * HNSW_KEYDIR_ENTRY_WORDS;
}

/* Does entry lack any of bits? */
bool
HnswKeyDirNeedsWrite(const uint64 *entry, const uint64 *bits)
{
	for (int w = 0; w < HNSW_KEYDIR_ENTRY_WORDS; w++)
	{
		if ((entry[w] & bits[w]) != bits[w])
			return true;
	}
	return false;
}

/* A new, empty directory page; its entries lie below pd_lower (WAL keeps them) */
void
HnswKeyDirInitPage(Page page, const HnswInfo *info)
{
	HnswInitPage(page, HNSW_PAGE_KEYDIR, info);
	((PageHeader) page)->pd_lower = HNSW_SLOTS_START +
		HNSW_KEYDIR_PER_PAGE * sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS;
}

/*
 * At the end of a build: summarize every node page into the directory,
 * creating the directory pages that do not exist yet and adding the bits
 * of the nodes the in-memory build wrote (pages written by on-disk inserts
 * during the build already have theirs).  The index is not yet visible to
 * others.  Each directory page is one WAL record (a new page with the
 * metapage, or a changed page).
 */
void
HnswKeyDirBuild(Relation index)
{
	const HnswInfo *info = HnswGetInfo(index);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	HnswMetaPageData meta;
	int			ndir;
	uint64	   *entries;

	/* the metapage just written decides (a cached layout may be older) */
	HnswReadMeta(index, &meta);
	if (meta.nkeys == 0 || !meta.keydir)
		return;
	ndir = Min((int) ((nblocks + HNSW_KEYDIR_PER_PAGE - 1) / HNSW_KEYDIR_PER_PAGE),
			   HNSW_KEYDIR_MAX);
	entries = palloc(sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS * HNSW_KEYDIR_PER_PAGE);
	for (int di = 0; di < ndir; di++)
	{
		BlockNumber first = (BlockNumber) di * HNSW_KEYDIR_PER_PAGE;
		bool		anynode = false;
		Buffer		mbuf,
					dbuf;
		BlockNumber dirblk;
		GenericXLogState *state;
		Page		dpage;

		memset(entries, 0, sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS * HNSW_KEYDIR_PER_PAGE);
		for (int j = 0; j < HNSW_KEYDIR_PER_PAGE && first + j < nblocks; j++)
		{
			Buffer		buf;
			Page		page;

			CHECK_FOR_INTERRUPTS();
			buf = ReadBuffer(index, first + j);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (HnswPageType(page) == HNSW_PAGE_NODE)
			{
				for (int s = 0; s < info->slots_per_page; s++)
				{
					HnswSlotHeader *slot = HnswPageGetSlot(info, page, s);
					uint64		bits[HNSW_KEYDIR_ENTRY_WORDS];

					if (!(slot->flags & HNSW_SLOT_USED))
						continue;
					HnswKeyDirSlotBits(info, HnswSlotKeys(info, slot), bits);
					for (int w = 0; w < HNSW_KEYDIR_ENTRY_WORDS; w++)
						entries[j * HNSW_KEYDIR_ENTRY_WORDS + w] |= bits[w];
					anynode = true;
				}
			}
			UnlockReleaseBuffer(buf);
		}
		if (!anynode)
			continue;

		mbuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
		LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
		dirblk = HnswPageGetMeta(BufferGetPage(mbuf))->keydir_blocks[di];
		if (dirblk == 0)
		{
			HnswMetaPage m;

			dbuf = HnswExtendIndex(index);
			state = GenericXLogStart(index);
			dpage = GenericXLogRegisterBuffer(state, dbuf, GENERIC_XLOG_FULL_IMAGE);
			HnswKeyDirInitPage(dpage, info);
			m = HnswPageGetMeta(GenericXLogRegisterBuffer(state, mbuf, 0));
			m->keydir_blocks[di] = BufferGetBlockNumber(dbuf);
		}
		else
		{
			dbuf = ReadBuffer(index, dirblk);
			LockBuffer(dbuf, BUFFER_LOCK_EXCLUSIVE);
			state = GenericXLogStart(index);
			dpage = GenericXLogRegisterBuffer(state, dbuf, 0);
		}
		for (int j = 0; j < HNSW_KEYDIR_PER_PAGE; j++)
		{
			uint64	   *e = HnswKeyDirEntry(dpage, j);

			for (int w = 0; w < HNSW_KEYDIR_ENTRY_WORDS; w++)
				e[w] |= entries[j * HNSW_KEYDIR_ENTRY_WORDS + w];
		}
		GenericXLogFinish(state);
		UnlockReleaseBuffer(dbuf);
		UnlockReleaseBuffer(mbuf);
	}
	pfree(entries);
}

/*
 * For a sweep under filter: which blocks below nblocks may hold a match?
 * Returns a byte per block (1: read it), or NULL if the index keeps no
 * directory or the filter has no equality condition.  *ncandidates gets
 * the number of blocks to read.  A block whose directory page does not
 * exist is a candidate.
 */
uint8 *
HnswKeyDirCandidates(Relation index, const HnswInfo *info, const HnswKeyFilter *filter,
					 BlockNumber nblocks, int64 *ncandidates)
{
	uint64		fbits[HNSW_KEYDIR_ENTRY_WORDS];
	BlockNumber dirblocks[HNSW_KEYDIR_MAX];
	uint8	   *cand;
	Buffer		buf;

	if (!info->keydir || !HnswKeyDirFilterBits(filter, fbits))
		return NULL;

	buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(dirblocks, HnswPageGetMeta(BufferGetPage(buf))->keydir_blocks, sizeof(dirblocks));
	UnlockReleaseBuffer(buf);

	cand = palloc(Max(nblocks, 1));
	memset(cand, 1, Max(nblocks, 1));
	*ncandidates = nblocks;
	for (int di = 0; di < HNSW_KEYDIR_MAX; di++)
	{
		BlockNumber first = (BlockNumber) di * HNSW_KEYDIR_PER_PAGE;
		Page		page;

		if (first >= nblocks)
			break;
		if (dirblocks[di] == 0)
			continue;
		buf = ReadBuffer(index, dirblocks[di]);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (HnswPageType(page) != HNSW_PAGE_KEYDIR)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("hnsw index \"%s\" has no key directory page at block %u",
							RelationGetRelationName(index), dirblocks[di])));
		for (int j = 0; j < HNSW_KEYDIR_PER_PAGE && first + j < nblocks; j++)
		{
			if (HnswKeyDirNeedsWrite(HnswKeyDirEntry(page, j), fbits))
			{
				cand[first + j] = 0;
				(*ncandidates)--;
			}
		}
		UnlockReleaseBuffer(buf);
	}
	return cand;
}
