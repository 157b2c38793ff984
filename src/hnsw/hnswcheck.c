/*-------------------------------------------------------------------------
 *
 * hnswcheck.c
 *	  hnsw_check(regclass): walk an hnsw index and report broken
 *	  invariants, one text row per problem; no rows when healthy.
 *
 * Checked: the metapage; every node's level, upper tuple and links
 * (target in range, a used slot, not itself, no duplicates, at upper
 * levels a node reaching that level); the entry point (a live node of the
 * top level); per-page slot counts; reachability of every live node from
 * the entry point; heap TIDs that point past the heap or to unused line
 * pointers; and visible heap rows missing from the index.  A node that
 * cannot be reached is reported only if its heap row is visible: a
 * crashed insert may leave an unlinked node whose row never committed,
 * which VACUUM removes.
 *
 * Meant for a quiescent index: concurrent inserts can make a check report
 * a transient state.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "utils/acl.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw.h"

PG_FUNCTION_INFO_V1(hnsw_check);

typedef struct CheckNode
{
	uint32		nid;
	ItemPointerData tid;
	uint8		level;
	uint8		flags;
} CheckNode;

typedef struct CheckState
{
	Relation	index;
	const HnswInfo *info;
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
	int			nproblems;
	ItemPointerData *visible;	/* visible heap rows that should be indexed */
	int64		nvisible;
	int64		maxvisible;
} CheckState;

static void
Report(CheckState *cs, const char *fmt,...) pg_attribute_printf(2, 3);

static void
Report(CheckState *cs, const char *fmt,...)
{
	va_list		ap;
	char		buf[512];
	Datum		value;
	bool		isnull = false;

	/* cap the output: a badly broken index would flood it */
	if (++cs->nproblems > 1000)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	value = CStringGetTextDatum(buf);
	tuplestore_putvalues(cs->tupstore, cs->tupdesc, &value, &isnull);
}

static int
tid_cmp(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

static void
VisibleCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				bool tupleIsAlive, void *state)
{
	CheckState *cs = state;
	float	   *vec;

	if (isnull[0])
		return;
	vec = palloc(sizeof(float) * cs->info->dims);
	if (HnswPrepareVector(cs->info, values[0], vec))
	{
		if (cs->nvisible == cs->maxvisible)
		{
			cs->maxvisible *= 2;
			cs->visible = repalloc_huge(cs->visible, sizeof(ItemPointerData) * cs->maxvisible);
		}
		cs->visible[cs->nvisible++] = *tid;
	}
	pfree(vec);
}

static bool
IsVisible(CheckState *cs, ItemPointer tid)
{
	return bsearch(tid, cs->visible, cs->nvisible, sizeof(ItemPointerData), tid_cmp) != NULL;
}

/* index of nid in nodes[] (sorted by nid), or -1 */
static int64
FindNode(CheckNode *nodes, int64 n, uint32 nid)
{
	int64		lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int64		mid = (lo + hi) / 2;

		if (nodes[mid].nid == nid)
			return mid;
		if (nodes[mid].nid < nid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static void
CheckLinks(CheckState *cs, CheckNode *nodes, int64 n, int64 i, int level,
		   const uint32 *links, int cap, BlockNumber nblocks, bool *reach_edges)
{
	const HnswInfo *info = cs->info;

	for (int k = 0; k < cap; k++)
	{
		uint32		t = links[k];
		int64		j;

		if (t == HNSW_INVALID_NID)
		{
			/* lists are packed: nothing may follow the end marker */
			for (int r = k + 1; r < cap; r++)
				if (links[r] != HNSW_INVALID_NID)
				{
					Report(cs, "node %u: level %d link list has a gap at position %d",
						   nodes[i].nid, level, k);
					break;
				}
			break;
		}
		if (t == nodes[i].nid)
			Report(cs, "node %u: level %d links to itself", nodes[i].nid, level);
		if (HnswNidBlock(info, t) >= nblocks)
		{
			Report(cs, "node %u: level %d link %u points past the end of the index",
				   nodes[i].nid, level, t);
			continue;
		}
		j = FindNode(nodes, n, t);
		if (j < 0)
		{
			Report(cs, "node %u: level %d link %u points to a free slot or a non-node page",
				   nodes[i].nid, level, t);
			continue;
		}
		if (nodes[j].level < level)
			Report(cs, "node %u: level %d link %u points to a node of level %d",
				   nodes[i].nid, level, t, nodes[j].level);
		for (int r = 0; r < k; r++)
			if (links[r] == t)
				Report(cs, "node %u: level %d links twice to %u", nodes[i].nid, level, t);
	}
}

/*
 * The key directory (hnsw.h): every directory page the metapage names is
 * one, and the summary of every covered node page has the bits of each of
 * its nodes.
 */
static void
CheckKeyDir(CheckState *cs, BlockNumber nblocks)
{
	Relation	index = cs->index;
	const HnswInfo *info = cs->info;
	BlockNumber dirblocks[HNSW_KEYDIR_MAX];
	uint64	   *entries;
	Buffer		buf;

	if (!info->keydir)
		return;
	buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(dirblocks, HnswPageGetMeta(BufferGetPage(buf))->keydir_blocks, sizeof(dirblocks));
	UnlockReleaseBuffer(buf);

	entries = palloc(sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS * HNSW_KEYDIR_PER_PAGE);
	for (int di = 0; di < HNSW_KEYDIR_MAX; di++)
	{
		BlockNumber first = (BlockNumber) di * HNSW_KEYDIR_PER_PAGE;
		Page		page;

		if (dirblocks[di] == 0)
			continue;
		if (dirblocks[di] >= nblocks)
		{
			Report(cs, "metapage: key directory page %d is block %u, past the end of the index",
				   di, dirblocks[di]);
			continue;
		}
		buf = ReadBuffer(index, dirblocks[di]);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (HnswPageType(page) != HNSW_PAGE_KEYDIR)
		{
			Report(cs, "metapage: key directory page %d is block %u, a page of type %d",
				   di, dirblocks[di], HnswPageType(page));
			UnlockReleaseBuffer(buf);
			continue;
		}
		memcpy(entries, HnswKeyDirEntry(page, 0),
			   sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS * HNSW_KEYDIR_PER_PAGE);
		UnlockReleaseBuffer(buf);

		for (int j = 0; j < HNSW_KEYDIR_PER_PAGE && first + j < nblocks; j++)
		{
			if (first + j == HNSW_METAPAGE_BLKNO)
				continue;
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
					if (HnswKeyDirNeedsWrite(entries + j * HNSW_KEYDIR_ENTRY_WORDS, bits))
						Report(cs, "block %u: key directory summary lacks the keys of node %u",
							   first + j, HnswMakeNid(info, first + j, s));
				}
			}
			UnlockReleaseBuffer(buf);
		}
	}
	pfree(entries);
}

Datum
hnsw_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CheckState	cs;
	Relation	index;
	Relation	heap;
	Oid			heapoid;
	HnswMetaPageData meta;
	BlockNumber nblocks;
	BlockNumber heapblocks;
	CheckNode  *nodes;
	int64		n = 0;
	int64		maxn = 1024;
	uint32	  **links;			/* per node: m0 + level * m links */
	bool	   *reached;
	int64	   *queue;
	int64		qhead = 0,
				qtail = 0;
	IndexInfo  *indexInfo;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	memset(&cs, 0, sizeof(cs));
	cs.tupstore = rsinfo->setResult;
	cs.tupdesc = rsinfo->setDesc;

	heapoid = IndexGetRelation(indexoid, true);
	if (!OidIsValid(heapoid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", get_rel_name(indexoid) ? get_rel_name(indexoid) : "?")));
	heap = table_open(heapoid, AccessShareLock);
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_rel->relam != get_index_am_oid("hnsw", false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an hnsw index", RelationGetRelationName(index))));
	if (!pg_class_ownercheck(heapoid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(heap));

	cs.index = index;
	cs.info = HnswGetInfo(index);

	/* visible heap rows first: their index entries exist before we read */
	cs.maxvisible = 1024;
	cs.visible = palloc(sizeof(ItemPointerData) * cs.maxvisible);
	indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = true;
	table_index_build_scan(heap, index, indexInfo, false, false, VisibleCallback, &cs, NULL);
	qsort(cs.visible, cs.nvisible, sizeof(ItemPointerData), tid_cmp);

	HnswReadMeta(index, &meta);
	nblocks = RelationGetNumberOfBlocks(index);
	heapblocks = RelationGetNumberOfBlocks(heap);

	/* collect the nodes */
	nodes = palloc(sizeof(CheckNode) * maxn);
	links = palloc(sizeof(uint32 *) * maxn);
	for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;
		int			used = 0;

		CHECK_FOR_INTERRUPTS();
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			/* added by a backend that crashed before using it: free space */
			UnlockReleaseBuffer(buf);
			continue;
		}
		if (HnswPageGetOpaque(page)->page_id != HNSW_PAGE_ID)
			Report(&cs, "block %u: bad page id", blkno);
		if (HnswPageType(page) == HNSW_PAGE_NODE)
		{
			for (int s = 0; s < cs.info->slots_per_page; s++)
			{
				HnswSlotHeader *slot = HnswPageGetSlot(cs.info, page, s);

				if (slot->flags == 0)
					continue;
				used++;
				if (n == maxn)
				{
					maxn *= 2;
					nodes = repalloc_huge(nodes, sizeof(CheckNode) * maxn);
					links = repalloc_huge(links, sizeof(uint32 *) * maxn);
				}
				nodes[n].nid = HnswMakeNid(cs.info, blkno, s);
				nodes[n].tid = slot->heaptid;
				nodes[n].level = slot->level;
				nodes[n].flags = slot->flags;
				links[n] = palloc(sizeof(uint32) * (cs.info->m0 + slot->level * cs.info->m));
				memcpy(links[n], HnswSlotLinks(cs.info, slot), sizeof(uint32) * cs.info->m0);
				memset(links[n] + cs.info->m0, 0xFF, sizeof(uint32) * slot->level * cs.info->m);
				if (slot->level > HNSW_MAX_LEVEL)
					Report(&cs, "node %u: level %d exceeds the maximum %d",
						   nodes[n].nid, slot->level, HNSW_MAX_LEVEL);
				if (slot->level > 0 && !ItemPointerIsValid(&slot->uppertid))
					Report(&cs, "node %u: level %d but no upper tuple", nodes[n].nid, slot->level);
				if (cs.info->storage != HNSW_STORAGE_FP32)
				{
					HnswCodeHeader h;

					/* the error norms the scan's lower bounds rely on */
					memcpy(&h, HnswSlotVector(cs.info, slot), sizeof(h));
					if (!(h.err2 >= 0 && h.err1 >= 0 && h.norm >= 0) ||
						isinf(h.err2) || isinf(h.err1) || isinf(h.norm) ||
						h.err2 > h.err1 + h.err1 * 1e-6f)
						Report(&cs, "node %u: bad stored error norms (%g, %g, %g)",
							   nodes[n].nid, h.err2, h.err1, h.norm);
				}
				n++;
			}
			if (used != HnswPageGetOpaque(page)->nused)
				Report(&cs, "block %u: %d slots used but the page says %d",
					   blkno, used, HnswPageGetOpaque(page)->nused);
		}
		else if (HnswPageType(page) != HNSW_PAGE_UPPER &&
				 HnswPageType(page) != HNSW_PAGE_KEYDIR)
			Report(&cs, "block %u: unrecognized page type %d", blkno,
				   HnswPageType(page));
		UnlockReleaseBuffer(buf);
	}

	CheckKeyDir(&cs, nblocks);

	/* upper links */
	for (int64 i = 0; i < n; i++)
	{
		for (int l = 1; l <= nodes[i].level && l <= HNSW_MAX_LEVEL; l++)
		{
			uint32		tmp[HNSW_MAX_M * 2];
			int			k = HnswReadLinks(index, cs.info, nodes[i].nid, l, tmp, NULL);

			memcpy(links[i] + cs.info->m0 + (l - 1) * cs.info->m, tmp, sizeof(uint32) * k);
		}
		if (nodes[i].level > 0)
		{
			HnswSlotHeader hdr;
			uint32		tmp[HNSW_MAX_M * 2];
			Buffer		buf;
			Page		page;
			OffsetNumber off;

			HnswReadLinks(index, cs.info, nodes[i].nid, 0, tmp, &hdr);
			if (!ItemPointerIsValid(&hdr.uppertid) ||
				ItemPointerGetBlockNumber(&hdr.uppertid) >= nblocks)
				continue;
			off = ItemPointerGetOffsetNumber(&hdr.uppertid);
			buf = ReadBuffer(index, ItemPointerGetBlockNumber(&hdr.uppertid));
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (HnswPageType(page) != HNSW_PAGE_UPPER ||
				off > PageGetMaxOffsetNumber(page) || !ItemIdIsNormal(PageGetItemId(page, off)))
				Report(&cs, "node %u: upper tuple (%u,%u) does not exist", nodes[i].nid,
					   ItemPointerGetBlockNumber(&hdr.uppertid), off);
			else
			{
				HnswUpperTuple up = (HnswUpperTuple) PageGetItem(page, PageGetItemId(page, off));

				if (up->nid != nodes[i].nid || up->level != nodes[i].level)
					Report(&cs, "node %u: upper tuple belongs to node %u of level %d",
						   nodes[i].nid, up->nid, up->level);
			}
			UnlockReleaseBuffer(buf);
		}
	}

	/* links */
	for (int64 i = 0; i < n; i++)
	{
		CheckLinks(&cs, nodes, n, i, 0, links[i], cs.info->m0, nblocks, NULL);
		for (int l = 1; l <= nodes[i].level && l <= HNSW_MAX_LEVEL; l++)
			CheckLinks(&cs, nodes, n, i, l, links[i] + cs.info->m0 + (l - 1) * cs.info->m,
					   cs.info->m, nblocks, NULL);
	}

	/* entry point */
	{
		int			maxlevel = -1;

		for (int64 i = 0; i < n; i++)
			if (!(nodes[i].flags & HNSW_SLOT_DELETED) && nodes[i].level > maxlevel)
				maxlevel = nodes[i].level;
		if (meta.entry_nid == HNSW_INVALID_NID)
		{
			if (maxlevel >= 0)
				Report(&cs, "metapage: no entry point, but the index has live nodes");
		}
		else
		{
			int64		e = FindNode(nodes, n, meta.entry_nid);

			if (e < 0)
				Report(&cs, "metapage: entry point %u is not a node", meta.entry_nid);
			else if (nodes[e].level != meta.entry_level)
				Report(&cs, "metapage: entry point %u has level %d, metapage says %d",
					   meta.entry_nid, nodes[e].level, meta.entry_level);
			else if (meta.entry_level < maxlevel)
				Report(&cs, "metapage: entry level %d is below the top level %d",
					   meta.entry_level, maxlevel);
		}
	}

	/*
	 * reachability: every search ends with a layer-0 search, so every live
	 * node must be reachable from the entry point through level-0 links
	 */
	reached = palloc0(sizeof(bool) * Max(n, 1));
	queue = palloc(sizeof(int64) * Max(n, 1));
	if (meta.entry_nid != HNSW_INVALID_NID)
	{
		int64		e = FindNode(nodes, n, meta.entry_nid);

		if (e >= 0)
		{
			reached[e] = true;
			queue[qtail++] = e;
		}
	}
	while (qhead < qtail)
	{
		int64		i = queue[qhead++];
		int			total = cs.info->m0;

		for (int k = 0; k < total; k++)
		{
			int64		j;

			if (links[i][k] == HNSW_INVALID_NID)
				continue;
			j = FindNode(nodes, n, links[i][k]);
			if (j >= 0 && !reached[j])
			{
				reached[j] = true;
				queue[qtail++] = j;
			}
		}
	}
	for (int64 i = 0; i < n; i++)
	{
		if (!reached[i] && !(nodes[i].flags & HNSW_SLOT_DELETED) && IsVisible(&cs, &nodes[i].tid))
			Report(&cs, "node %u: unreachable from the entry point (heap row (%u,%u))",
				   nodes[i].nid, ItemPointerGetBlockNumber(&nodes[i].tid),
				   ItemPointerGetOffsetNumber(&nodes[i].tid));
	}

	/* heap TIDs */
	for (int64 i = 0; i < n; i++)
	{
		BlockNumber hb = ItemPointerGetBlockNumber(&nodes[i].tid);
		OffsetNumber ho = ItemPointerGetOffsetNumber(&nodes[i].tid);

		if (!ItemPointerIsValid(&nodes[i].tid) || hb >= heapblocks)
			Report(&cs, "node %u: heap TID (%u,%u) points past the end of the table",
				   nodes[i].nid, hb, ho);
		else
		{
			Buffer		buf = ReadBuffer(heap, hb);
			Page		page;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (ho > PageGetMaxOffsetNumber(page) || !ItemIdIsUsed(PageGetItemId(page, ho)))
				Report(&cs, "node %u: heap TID (%u,%u) points to no row", nodes[i].nid, hb, ho);
			UnlockReleaseBuffer(buf);
		}
	}

	/* visible rows missing from the index */
	{
		ItemPointerData *itids = palloc(sizeof(ItemPointerData) * Max(n, 1));

		for (int64 i = 0; i < n; i++)
			itids[i] = nodes[i].tid;
		qsort(itids, n, sizeof(ItemPointerData), tid_cmp);
		for (int64 i = 0; i < cs.nvisible; i++)
		{
			if (!bsearch(&cs.visible[i], itids, n, sizeof(ItemPointerData), tid_cmp))
				Report(&cs, "heap row (%u,%u) is missing from the index",
					   ItemPointerGetBlockNumber(&cs.visible[i]),
					   ItemPointerGetOffsetNumber(&cs.visible[i]));
		}
	}

	if (cs.nproblems > 1000)
	{
		cs.nproblems = 0;
		Report(&cs, "more problems not shown");
	}

	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return (Datum) 0;
}
