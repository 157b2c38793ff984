/*-------------------------------------------------------------------------
 *
 * hnswbuild.c
 *	  Build an hnsw index: the graph is constructed in memory from a heap
 *	  scan, then written out page by page and WAL-logged in one pass.
 *
 * Nodes are numbered in the order the heap scan delivers them; node i gets
 * the nid slots_per_page + i, i.e. block 1 + i / S, slot i % S, so the
 * in-memory links are already the on-disk ones.  Upper tuples go to pages
 * after the last node page.  Pages are written through shared buffers and
 * then logged with log_newpage_range, so a checkpoint in the middle of the
 * build cannot lose a page (it either flushes the buffer or happens before
 * the page's WAL record).
 *
 * When the graph outgrows maintenance_work_mem, what has been built is
 * written out and the remaining rows are inserted one at a time into the
 * on-disk graph (much slower), after a NOTICE.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswbuild.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "common/pg_prng.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw.h"

#define PROGRESS_HNSW_PHASE_LOAD	2
#define PROGRESS_HNSW_PHASE_WRITE	3

typedef struct HnswBuildState
{
	Relation	heap;
	Relation	index;
	HnswInfo	info;

	/* the in-memory graph; node i has nid info.slots_per_page + i */
	int64		n;
	int64		capacity;		/* nodes that fit in maintenance_work_mem */
	int64		allocated;
	float	   *vectors;		/* n x dims */
	ItemPointerData *tids;
	char	   *keys;			/* n x info.key_bytes filter keys, or NULL */
	uint8	   *levels;
	uint32	   *links0;			/* n x m0 */
	uint32	  **upper;			/* per node: level x m links, or NULL */
	int64		entry;			/* node index of the entry point, -1 if none */
	int			entry_level;

	/* search scratch */
	uint32	   *visited;		/* epoch tag per node */
	uint32		epoch;
	HnswHeap	candidates;
	HnswHeap	results;
	float	   *scratch;

	pg_prng_state prng;			/* levels: a fixed seed makes builds repeatable */
	bool		spilled;		/* graph written; inserting on disk */
	double		indtuples;
	double		reltuples;
	MemoryContext graphctx;
	MemoryContext tmpctx;
} HnswBuildState;

#define NodeNid(bs, i)		((uint32) ((bs)->info.slots_per_page + (i)))
#define NidNode(bs, nid)	((int64) (nid) - (bs)->info.slots_per_page)
#define NodeVector(bs, i)	((bs)->vectors + (int64) (i) * (bs)->info.dims)
#define NodeKeys(bs, i)		((bs)->keys + (int64) (i) * (bs)->info.key_bytes)

static uint32 *
NodeLinks(HnswBuildState *bs, int64 i, int level)
{
	if (level == 0)
		return bs->links0 + i * bs->info.m0;
	return bs->upper[i] + (level - 1) * bs->info.m;
}

static int
CountLinks(const uint32 *links, int cap)
{
	int			n = 0;

	while (n < cap && links[n] != HNSW_INVALID_NID)
		n++;
	return n;
}

/* memory per in-memory node, excluding upper links (about 1/m of nodes) */
static Size
NodeBytes(const HnswInfo *info)
{
	return sizeof(float) * info->dims + sizeof(ItemPointerData) + 1 + info->key_bytes +
		sizeof(uint32) * info->m0 + sizeof(uint32 *) + sizeof(uint32) +
		sizeof(uint32) * info->m * 2 / info->m + 1;
}

static void
GrowGraph(HnswBuildState *bs, int64 want)
{
	int64		n = Min(want, bs->capacity);
	MemoryContext old = MemoryContextSwitchTo(bs->graphctx);

	if (bs->allocated == 0)
	{
		bs->vectors = palloc_extended(sizeof(float) * bs->info.dims * n, MCXT_ALLOC_HUGE);
		bs->tids = palloc_extended(sizeof(ItemPointerData) * n, MCXT_ALLOC_HUGE);
		bs->levels = palloc_extended(n, MCXT_ALLOC_HUGE);
		bs->links0 = palloc_extended(sizeof(uint32) * bs->info.m0 * n, MCXT_ALLOC_HUGE);
		bs->upper = palloc_extended(sizeof(uint32 *) * n, MCXT_ALLOC_HUGE);
		bs->visited = palloc_extended(sizeof(uint32) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		if (bs->info.key_bytes > 0)
			bs->keys = palloc_extended((Size) bs->info.key_bytes * n, MCXT_ALLOC_HUGE);
	}
	else
	{
		bs->vectors = repalloc_huge(bs->vectors, sizeof(float) * bs->info.dims * n);
		bs->tids = repalloc_huge(bs->tids, sizeof(ItemPointerData) * n);
		bs->levels = repalloc_huge(bs->levels, n);
		bs->links0 = repalloc_huge(bs->links0, sizeof(uint32) * bs->info.m0 * n);
		bs->upper = repalloc_huge(bs->upper, sizeof(uint32 *) * n);
		bs->visited = repalloc_huge(bs->visited, sizeof(uint32) * n);
		memset(bs->visited + bs->allocated, 0, sizeof(uint32) * (n - bs->allocated));
		if (bs->info.key_bytes > 0)
			bs->keys = repalloc_huge(bs->keys, (Size) bs->info.key_bytes * n);
	}
	bs->allocated = n;
	MemoryContextSwitchTo(old);
}

/* ---- in-memory graph construction ---- */

static inline bool
MemVisit(HnswBuildState *bs, int64 i)
{
	if (bs->visited[i] == bs->epoch)
		return true;
	bs->visited[i] = bs->epoch;
	return false;
}

static void
MemNextEpoch(HnswBuildState *bs)
{
	if (++bs->epoch == 0)
	{
		memset(bs->visited, 0, sizeof(uint32) * bs->allocated);
		bs->epoch = 1;
	}
}

/* greedy descent at an upper level from *cur */
static void
MemGreedy(HnswBuildState *bs, const float *q, int level, int64 *cur, double *curdist)
{
	bool		changed = true;

	while (changed)
	{
		uint32	   *links = NodeLinks(bs, *cur, level);

		changed = false;
		for (int k = 0; k < bs->info.m && links[k] != HNSW_INVALID_NID; k++)
		{
			int64		j = NidNode(bs, links[k]);
			double		d = HnswDistance(&bs->info, q, NodeVector(bs, j));

			if (d < *curdist)
			{
				*curdist = d;
				*cur = j;
				changed = true;
			}
		}
	}
}

/* layer search from the entries in bs->results (copied to candidates) */
static void
MemSearchLayer(HnswBuildState *bs, const float *q, int level, int ef)
{
	int			cap = HnswLayerCapacity(&bs->info, level);

	MemNextEpoch(bs);
	bs->candidates.count = 0;
	for (int i = 0; i < bs->results.count; i++)
	{
		HnswCandidate *c = &bs->results.items[i];

		MemVisit(bs, NidNode(bs, c->nid));
		HnswHeapPush(&bs->candidates, c->distance, c->nid);
	}

	while (bs->candidates.count > 0)
	{
		HnswCandidate c = HnswHeapPop(&bs->candidates);
		uint32	   *links;

		if (bs->results.count >= ef && c.distance > HnswHeapTop(&bs->results)->distance)
			break;
		links = NodeLinks(bs, NidNode(bs, c.nid), level);
		for (int k = 0; k < cap && links[k] != HNSW_INVALID_NID; k++)
		{
			int64		j = NidNode(bs, links[k]);
			double		d;

			if (MemVisit(bs, j))
				continue;
			d = HnswDistance(&bs->info, q, NodeVector(bs, j));
			if (bs->results.count < ef || d < HnswHeapTop(&bs->results)->distance)
			{
				HnswHeapPush(&bs->candidates, d, links[k]);
				HnswHeapPush(&bs->results, d, links[k]);
				if (bs->results.count > ef)
					HnswHeapPop(&bs->results);
			}
		}
	}
}

typedef struct MemPairArg
{
	HnswBuildState *bs;
	HnswCandidate *cands;
} MemPairArg;

static double
MemPairDist(void *arg, int i, int j)
{
	MemPairArg *a = (MemPairArg *) arg;

	return HnswDistance(&a->bs->info,
						NodeVector(a->bs, NidNode(a->bs, a->cands[i].nid)),
						NodeVector(a->bs, NidNode(a->bs, a->cands[j].nid)));
}

/* add node i to the list of node j at level, pruning if full */
static void
MemAddBackLink(HnswBuildState *bs, int64 j, int64 i, int level, double dij)
{
	int			cap = HnswLayerCapacity(&bs->info, level);
	uint32	   *links = NodeLinks(bs, j, level);
	int			n = CountLinks(links, cap);
	HnswCandidate cands[HNSW_MAX_M * 2 + 1];
	uint32		keep[HNSW_MAX_M * 2 + 1];
	MemPairArg	arg;
	int			nkeep;

	if (n < cap)
	{
		links[n] = NodeNid(bs, i);
		return;
	}
	for (int k = 0; k < n; k++)
	{
		cands[k].nid = links[k];
		cands[k].distance = HnswDistance(&bs->info, NodeVector(bs, j),
										 NodeVector(bs, NidNode(bs, links[k])));
	}
	cands[n].nid = NodeNid(bs, i);
	cands[n].distance = dij;
	qsort(cands, n + 1, sizeof(HnswCandidate), HnswCandidateCmp);
	arg.bs = bs;
	arg.cands = cands;
	nkeep = HnswSelectNeighbors(&bs->info, cands, n + 1, cap, NULL, keep, MemPairDist, &arg);
	for (int k = 0; k < cap; k++)
		links[k] = k < nkeep ? cands[keep[k]].nid : HNSW_INVALID_NID;
}

static void
MemInsert(HnswBuildState *bs, int64 i)
{
	const float *q = NodeVector(bs, i);
	int			level = bs->levels[i];
	int64		cur;
	double		curdist;

	memset(NodeLinks(bs, i, 0), 0xFF, sizeof(uint32) * bs->info.m0);
	bs->upper[i] = NULL;
	if (level > 0)
	{
		bs->upper[i] = MemoryContextAlloc(bs->graphctx, sizeof(uint32) * level * bs->info.m);
		memset(bs->upper[i], 0xFF, sizeof(uint32) * level * bs->info.m);
	}
	if (bs->entry < 0)
	{
		bs->entry = i;
		bs->entry_level = level;
		return;
	}

	cur = bs->entry;
	curdist = HnswDistance(&bs->info, q, NodeVector(bs, cur));
	for (int l = bs->entry_level; l > level; l--)
		MemGreedy(bs, q, l, &cur, &curdist);

	bs->results.count = 0;
	HnswHeapPush(&bs->results, curdist, NodeNid(bs, cur));
	for (int l = Min(level, bs->entry_level); l >= 0; l--)
	{
		int			cap = HnswLayerCapacity(&bs->info, l);
		HnswCandidate *cands;
		int			ncands;
		uint32		keep[HNSW_MAX_M * 2];
		int			nkeep;
		MemPairArg	arg;
		uint32	   *links = NodeLinks(bs, i, l);

		MemSearchLayer(bs, q, l, bs->info.ef_construction);
		ncands = bs->results.count;
		cands = palloc(sizeof(HnswCandidate) * ncands);
		memcpy(cands, bs->results.items, sizeof(HnswCandidate) * ncands);
		qsort(cands, ncands, sizeof(HnswCandidate), HnswCandidateCmp);
		arg.bs = bs;
		arg.cands = cands;
		nkeep = HnswSelectNeighbors(&bs->info, cands, ncands, cap, NULL, keep, MemPairDist, &arg);
		for (int k = 0; k < nkeep; k++)
			links[k] = cands[keep[k]].nid;
		for (int k = 0; k < nkeep; k++)
			MemAddBackLink(bs, NidNode(bs, cands[keep[k]].nid), i, l, cands[keep[k]].distance);
		pfree(cands);
	}
	if (level > bs->entry_level)
	{
		bs->entry = i;
		bs->entry_level = level;
	}
}

/*
 * Heuristic pruning can leave a node that no other node links to at level
 * 0, so no search can find it.  Link every such node from its nearest
 * reachable node, into a free slot or over a link whose target has other
 * in-links, so the fix never cuts off another node.
 */
static void
FixReachability(HnswBuildState *bs)
{
	bool	   *reached;
	int64	   *queue;
	uint32	   *indeg;

	if (bs->n == 0)
		return;
	reached = palloc_extended(sizeof(bool) * bs->n, MCXT_ALLOC_HUGE);
	queue = palloc_extended(sizeof(int64) * bs->n, MCXT_ALLOC_HUGE);
	indeg = palloc_extended(sizeof(uint32) * bs->n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int64 i = 0; i < bs->n; i++)
	{
		uint32	   *links = NodeLinks(bs, i, 0);

		for (int k = 0; k < bs->info.m0 && links[k] != HNSW_INVALID_NID; k++)
			indeg[NidNode(bs, links[k])]++;
	}

	/* a pass fixes from one BFS; a last BFS checks nothing was cut off */
	for (int pass = 0; pass < 4; pass++)
	{
		int64		head = 0,
					tail = 0;
		int64		fixed = 0;

		memset(reached, 0, sizeof(bool) * bs->n);
		reached[bs->entry] = true;
		queue[tail++] = bs->entry;
		for (;;)
		{
			int64		u;

			while (head < tail)
			{
				uint32	   *links = NodeLinks(bs, queue[head++], 0);

				for (int k = 0; k < bs->info.m0 && links[k] != HNSW_INVALID_NID; k++)
				{
					int64		j = NidNode(bs, links[k]);

					if (!reached[j])
					{
						reached[j] = true;
						queue[tail++] = j;
					}
				}
			}
			if (tail == bs->n)
				break;

			/*
			 * Link the first unreached node from the nearest reached node
			 * that has room or a link whose target keeps another in-link, so
			 * no reached node is cut off.
			 */
			for (u = 0; u < bs->n && reached[u]; u++)
				;
			{
				int64		best = -1;
				int			bestpos = -1;
				double		bestd = 0;

				CHECK_FOR_INTERRUPTS();
				for (int64 v = 0; v < bs->n; v++)
				{
					uint32	   *vl;
					int			n;
					int			pos = -1;
					double		d;

					if (!reached[v])
						continue;
					vl = NodeLinks(bs, v, 0);
					n = CountLinks(vl, bs->info.m0);
					if (n < bs->info.m0)
						pos = n;
					else
						for (int k = 0; k < n; k++)
							if (indeg[NidNode(bs, vl[k])] >= 2 &&
								(pos < 0 || indeg[NidNode(bs, vl[k])] > indeg[NidNode(bs, vl[pos])]))
								pos = k;
					if (pos < 0)
						continue;
					d = HnswDistance(&bs->info, NodeVector(bs, u), NodeVector(bs, v));
					if (best < 0 || d < bestd)
					{
						best = v;
						bestpos = pos;
						bestd = d;
					}
				}
				if (best < 0)
					break;		/* cannot happen with m >= 2; leave it */
				{
					uint32	   *vl = NodeLinks(bs, best, 0);

					if (vl[bestpos] != HNSW_INVALID_NID)
						indeg[NidNode(bs, vl[bestpos])]--;
					vl[bestpos] = NodeNid(bs, u);
					indeg[u]++;
				}
				reached[u] = true;
				queue[tail++] = u;
				fixed++;
			}
		}
		if (fixed == 0)
			break;
	}
	pfree(indeg);
	pfree(reached);
	pfree(queue);
}

/*
 * The order nodes are written in: breadth-first from the entry point over
 * level-0 links, so that a node's neighbours tend to share its page (a
 * search then reads fewer distinct pages; cf. graph reordering, Coleman
 * et al. 2022).  order[p] is the node written at position p, newpos its
 * inverse.
 */
static void
BfsOrder(HnswBuildState *bs, int64 *order, int64 *newpos)
{
	int64		tail = 0;

	for (int64 i = 0; i < bs->n; i++)
		newpos[i] = -1;
	for (int64 start = -1; start < bs->n; start++)
	{
		int64		head = tail;
		int64		root = start < 0 ? bs->entry : start;

		if (newpos[root] >= 0)
			continue;
		newpos[root] = tail;
		order[tail++] = root;
		while (head < tail)
		{
			uint32	   *links = NodeLinks(bs, order[head++], 0);

			for (int k = 0; k < bs->info.m0 && links[k] != HNSW_INVALID_NID; k++)
			{
				int64		j = NidNode(bs, links[k]);

				if (newpos[j] < 0)
				{
					newpos[j] = tail;
					order[tail++] = j;
				}
			}
		}
	}
}

/* ---- writing the graph ---- */

static Buffer
AppendPage(Relation index)
{
	Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	return buf;
}

/*
 * Write the in-memory graph: metapage, node pages, upper pages, then one
 * WAL record per page if the index is logged.
 */
static void
WriteGraph(HnswBuildState *bs)
{
	const HnswInfo *info = &bs->info;
	Relation	index = bs->index;
	int			S = info->slots_per_page;
	BlockNumber nodepages = (BlockNumber) ((bs->n + S - 1) / S);
	BlockNumber upperblk = 1 + nodepages;
	ItemPointerData *uppertids;
	Buffer		buf;
	Page		page;
	Page		upage;
	BlockNumber nblocks;
	int64	   *order = palloc_extended(sizeof(int64) * Max(bs->n, 1), MCXT_ALLOC_HUGE);
	int64	   *newpos = palloc_extended(sizeof(int64) * Max(bs->n, 1), MCXT_ALLOC_HUGE);

#define MapNid(nid) ((nid) == HNSW_INVALID_NID ? (nid) : NodeNid(bs, newpos[NidNode(bs, (nid))]))

	if (bs->n > 0)
		BfsOrder(bs, order, newpos);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_HNSW_PHASE_WRITE);

	/* metapage */
	buf = AppendPage(index);
	Assert(BufferGetBlockNumber(buf) == HNSW_METAPAGE_BLKNO);
	page = BufferGetPage(buf);
	HnswInitMetaPage(page, info);
	if (bs->entry >= 0)
	{
		HnswPageGetMeta(page)->entry_nid = NodeNid(bs, newpos[bs->entry]);
		HnswPageGetMeta(page)->entry_level = bs->entry_level;
	}
	if (nodepages > 0)
		HnswPageGetMeta(page)->insert_page = nodepages;
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);

	/* lay out the upper tuples first, so node slots can point to them */
	uppertids = palloc_extended(sizeof(ItemPointerData) * Max(bs->n, 1), MCXT_ALLOC_HUGE);
	upage = palloc(BLCKSZ);
	HnswInitPage(upage, HNSW_PAGE_UPPER, info);
	{
		List	   *pages = NIL;
		ListCell   *lc;
		BlockNumber blk = upperblk;

		for (int64 pos = 0; pos < bs->n; pos++)
		{
			int64		i = order[pos];
			Size		sz;
			HnswUpperTuple up;
			OffsetNumber off;

			ItemPointerSetInvalid(&uppertids[i]);
			if (bs->levels[i] == 0)
				continue;
			sz = HNSW_UPPER_SIZE(bs->levels[i], info->m);
			if (PageGetFreeSpace(upage) < MAXALIGN(sz))
			{
				pages = lappend(pages, upage);
				upage = palloc(BLCKSZ);
				HnswInitPage(upage, HNSW_PAGE_UPPER, info);
				blk++;
			}
			up = palloc0(sz);
			up->nid = NodeNid(bs, pos);
			up->level = bs->levels[i];
			for (int k = 0; k < bs->levels[i] * info->m; k++)
				up->links[k] = MapNid(bs->upper[i][k]);
			off = PageAddItem(upage, (Item) up, sz, InvalidOffsetNumber, false, false);
			if (off == InvalidOffsetNumber)
				elog(ERROR, "failed to add hnsw upper tuple");
			ItemPointerSet(&uppertids[i], blk, off);
			pfree(up);
		}
		if (((PageHeader) upage)->pd_lower > SizeOfPageHeaderData)
			pages = lappend(pages, upage);

		/* node pages */
		for (BlockNumber p = 0; p < nodepages; p++)
		{
			int			used = 0;

			CHECK_FOR_INTERRUPTS();
			buf = AppendPage(index);
			Assert(BufferGetBlockNumber(buf) == 1 + p);
			page = BufferGetPage(buf);
			HnswInitPage(page, HNSW_PAGE_NODE, info);
			for (int s = 0; s < S; s++)
			{
				int64		pos = (int64) p * S + s;
				int64		i;
				HnswSlotHeader *slot;
				uint32	   *links;

				if (pos >= bs->n)
					break;
				i = order[pos];
				slot = HnswPageGetSlot(info, page, s);
				slot->heaptid = bs->tids[i];
				slot->level = bs->levels[i];
				slot->flags = HNSW_SLOT_USED;
				slot->uppertid = uppertids[i];
				links = HnswSlotLinks(info, slot);
				for (int k = 0; k < info->m0; k++)
					links[k] = MapNid(NodeLinks(bs, i, 0)[k]);
				HnswStoreVector(info, HnswSlotVector(info, slot), NodeVector(bs, i));
				if (info->key_bytes > 0)
					memcpy(HnswSlotKeys(info, slot), NodeKeys(bs, i), info->key_bytes);
				used++;
			}
			HnswPageGetOpaque(page)->nused = used;
			MarkBufferDirty(buf);
			UnlockReleaseBuffer(buf);
		}

		/* upper pages */
		foreach(lc, pages)
		{
			buf = AppendPage(index);
			page = BufferGetPage(buf);
			memcpy(page, lfirst(lc), BLCKSZ);
			MarkBufferDirty(buf);
			UnlockReleaseBuffer(buf);
			if (lnext(pages, lc) == NULL)
			{
				/* the last upper page takes new upper tuples */
				Buffer		mbuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);

				LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
				HnswPageGetMeta(BufferGetPage(mbuf))->upper_page = BufferGetBlockNumber(buf);
				MarkBufferDirty(mbuf);
				UnlockReleaseBuffer(mbuf);
			}
		}
	}

	nblocks = RelationGetNumberOfBlocks(index);
	if (RelationNeedsWAL(index))
		log_newpage_range(index, MAIN_FORKNUM, 0, nblocks, true);
}

/* ---- the heap scan ---- */

static void
BuildCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			  bool tupleIsAlive, void *state)
{
	HnswBuildState *bs = (HnswBuildState *) state;
	MemoryContext old;

	/* NULLs are not indexed */
	if (isnull[0])
		return;

	old = MemoryContextSwitchTo(bs->tmpctx);
	if (!bs->spilled && bs->n >= bs->capacity)
	{
		ereport(NOTICE,
				(errmsg("hnsw graph no longer fits into maintenance_work_mem after %lld tuples",
						(long long) bs->n),
				 errdetail("Building will take significantly more time."),
				 errhint("Increase maintenance_work_mem to speed up builds.")));
		MemoryContextSwitchTo(old);
		FixReachability(bs);
		WriteGraph(bs);
		bs->spilled = true;
		MemoryContextDelete(bs->graphctx);
		bs->graphctx = NULL;
		old = MemoryContextSwitchTo(bs->tmpctx);
	}

	if (bs->spilled)
	{
		float	   *vec = bs->scratch;

		if (HnswPrepareVector(&bs->info, values[0], vec))
		{
			char	   *keys = NULL;

			if (bs->info.key_bytes > 0)
			{
				keys = palloc(bs->info.key_bytes);
				HnswFormKeys(index, &bs->info, values, isnull, keys);
			}
			HnswInsertOnDisk(index, &bs->info, vec, keys, tid, true);
			bs->indtuples++;
		}
	}
	else
	{
		if (bs->n >= bs->allocated)
			GrowGraph(bs, Max(bs->allocated * 2, 1024));
		if (HnswPrepareVector(&bs->info, values[0], NodeVector(bs, bs->n)))
		{
			bs->tids[bs->n] = *tid;
			if (bs->info.key_bytes > 0)
				HnswFormKeys(index, &bs->info, values, isnull, NodeKeys(bs, bs->n));
			bs->levels[bs->n] = HnswRandomLevel(bs->info.m, &bs->prng);
			MemInsert(bs, bs->n);
			bs->n++;
			bs->indtuples++;
		}
	}
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs->indtuples);
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpctx);
}

static int
IndexDimensions(Relation index)
{
	int			typmod = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;

	if (typmod < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column does not have dimensions"),
				 errhint("Declare the column as vector(n), or index an expression cast to vector(n).")));
	return typmod;
}

static void
InitBuildInfo(Relation index, HnswInfo *info)
{
	int			nkeys = HnswCheckColumns(index);

	HnswInfoInit(info, IndexDimensions(index), HnswMetricFromOpclass(index),
				 HNSW_STORAGE_FP32, HnswGetM(index), HnswGetEfConstruction(index));
	HnswInfoInitKeys(info, nkeys);
	if (info->ef_construction < 2 * info->m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be greater than or equal to 2 * m")));
}

IndexBuildResult *
hnswbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	HnswBuildState bs;
	Size		mem = (Size) maintenance_work_mem * 1024;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	memset(&bs, 0, sizeof(bs));
	bs.heap = heap;
	bs.index = index;
	InitBuildInfo(index, &bs.info);
	bs.entry = -1;
	bs.epoch = 0;
	pg_prng_seed(&bs.prng, UINT64CONST(0x484E5357));
	bs.capacity = Max((int64) (mem / NodeBytes(&bs.info)), 1);
	bs.graphctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build graph",
										ALLOCSET_DEFAULT_SIZES);
	bs.tmpctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build temporary context",
									  ALLOCSET_DEFAULT_SIZES);
	HnswHeapInit(&bs.candidates, bs.info.ef_construction * 4, false);
	HnswHeapInit(&bs.results, bs.info.ef_construction + 1, true);
	bs.scratch = palloc(sizeof(float) * bs.info.dims);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_HNSW_PHASE_LOAD);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL,
								 (int64) Max(heap->rd_rel->reltuples, 0));
	bs.reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
										  BuildCallback, &bs, NULL);

	if (!bs.spilled)
	{
		FixReachability(&bs);
		WriteGraph(&bs);
	}
	if (bs.graphctx)
		MemoryContextDelete(bs.graphctx);
	MemoryContextDelete(bs.tmpctx);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = bs.reltuples;
	result->index_tuples = bs.indtuples;
	return result;
}

/* An empty index for the init fork of an unlogged table: the metapage */
void
hnswbuildempty(Relation index)
{
	HnswInfo	info;
	Page		page;

	InitBuildInfo(index, &info);
	page = (Page) palloc(BLCKSZ);
	HnswInitMetaPage(page, &info);
	PageSetChecksumInplace(page, HNSW_METAPAGE_BLKNO);
	smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, HNSW_METAPAGE_BLKNO, (char *) page, true);
	log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM,
				HNSW_METAPAGE_BLKNO, page, true);
	smgrimmedsync(RelationGetSmgr(index), INIT_FORKNUM);
	pfree(page);
}
