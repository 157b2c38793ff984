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

#include <fcntl.h>

#include "access/parallel.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "common/pg_prng.h"
#include "commands/progress.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "port/atomics.h"
#include "storage/buffile.h"
#include "storage/bufmgr.h"
#include "storage/lwlock.h"
#include "storage/sharedfileset.h"
#include "storage/shm_toc.h"
#include "storage/smgr.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw.h"

#define PROGRESS_HNSW_PHASE_LOAD	2
#define PROGRESS_HNSW_PHASE_WRITE	3

/* shm_toc keys of a parallel build */
#define HNSW_PARALLEL_KEY_SHARED	UINT64CONST(0xA000000000000001)
#define HNSW_PARALLEL_KEY_SCAN		UINT64CONST(0xA000000000000002)
#define HNSW_PARALLEL_KEY_GRAPH		UINT64CONST(0xA000000000000003)
#define HNSW_PARALLEL_KEY_QUERY		UINT64CONST(0xA000000000000004)
#define HNSW_PARALLEL_KEY_BUFUSAGE	UINT64CONST(0xA000000000000005)
#define HNSW_PARALLEL_KEY_WALUSAGE	UINT64CONST(0xA000000000000006)

/*
 * The in-memory graph: node i (0-based) has nid info.slots_per_page + i.
 * Everything is addressed by node index or array offset, never by pointer,
 * so the same arrays work in private memory (serial build) and in a
 * dynamic shared memory segment mapped at different addresses by each
 * participant of a parallel build.
 */
typedef struct HnswGraph
{
	float	   *vectors;		/* capacity x dims */
	ItemPointerData *tids;
	char	   *keys;			/* capacity x info.key_bytes, or NULL */
	uint8	   *levels;
	uint32	   *links0;			/* capacity x m0 */
	float	   *dists0;			/* distance of each level-0 link */
	uint32	   *upperoff;		/* node's first upper level in upper[] */
	uint32	   *upper;			/* upper links: m per level, node by node */
	float	   *upperdists;		/* distance of each upper link */
	LWLock	   *locks;			/* per node; NULL in a serial build */
} HnswGraph;

/*
 * State shared by the participants of a parallel build, at the start of
 * the DSM segment (HNSW_PARALLEL_KEY_SHARED).  The graph arrays follow
 * under HNSW_PARALLEL_KEY_GRAPH at the offsets given here.
 */
typedef struct HnswBuildShared
{
	/* set by the leader before launching workers */
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	HnswInfo	info;
	int64		capacity;		/* nodes */
	int64		upper_capacity; /* upper levels (m links each) */
	int			tranche_id;
	Size		off_vectors;
	Size		off_tids;
	Size		off_keys;
	Size		off_levels;
	Size		off_links0;
	Size		off_dists0;
	Size		off_upperoff;
	Size		off_upper;
	Size		off_upperdists;
	Size		off_locks;
	SharedFileSet fileset;		/* rows that did not fit, one file each */

	/* claimed by atomic increments */
	pg_atomic_uint64 nclaimed;	/* node indexes handed out */
	pg_atomic_uint64 nupper;	/* upper levels handed out */
	pg_atomic_uint64 ndone;		/* heap rows processed, for progress */
	pg_atomic_uint32 full;		/* a row did not fit */

	/* the entry point; an insert raising the top level holds it throughout */
	LWLock		entry_lock;
	int64		entry;			/* node index, -1 if none */
	int			entry_level;

	/* results, under mutex */
	slock_t		mutex;
	double		reltuples;
	double		indtuples;
	bool		brokenhotchain; /* a participant's scan found one */
} HnswBuildShared;

typedef struct HnswBuildState
{
	Relation	heap;
	Relation	index;
	HnswInfo	info;

	HnswGraph	g;
	int64		n;				/* nodes in the graph */
	int64		capacity;		/* nodes that fit in maintenance_work_mem */
	int64		allocated;		/* serial: nodes the arrays have room for */
	int64		nupper;			/* serial: upper levels used */
	int64		upper_allocated;	/* serial: upper levels allocated */
	int64		entry;			/* serial: entry point node, -1 if none */
	int			entry_level;
	HnswBuildShared *shared;	/* parallel build, else NULL */

	/* search scratch */
	uint32	   *visited;		/* epoch tag per node */
	uint32		epoch;
	HnswHeap	candidates;
	HnswHeap	results;
	float	   *scratch;
	char	   *keybuf;
	uint32	   *linkbuf;		/* a copied neighbour list */

	pg_prng_state prng;			/* serial levels: a fixed seed, repeatable */
	bool		spilled;		/* graph written; inserting on disk */
	BufFile    *spill;			/* parallel: rows that did not fit */
	double		indtuples;
	double		reltuples;
	MemoryContext graphctx;
	MemoryContext tmpctx;
} HnswBuildState;

PGDLLEXPORT void HnswParallelBuildMain(dsm_segment *seg, shm_toc *toc);

static int	build_tranche_id = 0;	/* LWLock tranche of this backend's builds */

#define NodeNid(bs, i)		((uint32) ((bs)->info.slots_per_page + (i)))
#define NidNode(bs, nid)	((int64) (nid) - (bs)->info.slots_per_page)
#define NodeVector(bs, i)	((bs)->g.vectors + (int64) (i) * (bs)->info.dims)
#define NodeKeys(bs, i)		((bs)->g.keys + (int64) (i) * (bs)->info.key_bytes)

/*
 * A node's neighbour list at a level, and the distances of its entries.
 * While nodes are being inserted every list is kept sorted by distance
 * (ties by nid), with each entry's distance stored beside it, so adding a
 * back-link needs neither a sort nor a distance to every present
 * neighbour.  (The orphan fix at the end does not keep them.)
 */
static uint32 *
NodeLinks(HnswBuildState *bs, int64 i, int level)
{
	if (level == 0)
		return bs->g.links0 + i * bs->info.m0;
	return bs->g.upper + ((int64) bs->g.upperoff[i] + level - 1) * bs->info.m;
}

static float *
NodeDists(HnswBuildState *bs, int64 i, int level)
{
	if (level == 0)
		return bs->g.dists0 + i * bs->info.m0;
	return bs->g.upperdists + ((int64) bs->g.upperoff[i] + level - 1) * bs->info.m;
}

static int
CountLinks(const uint32 *links, int cap)
{
	int			n = 0;

	while (n < cap && links[n] != HNSW_INVALID_NID)
		n++;
	return n;
}

/*
 * Node locks exist only in a parallel build.  A participant holds at most
 * one node lock at a time, taken after the entry lock if it holds that, so
 * locks cannot deadlock.  Vectors, TIDs and levels are written before a
 * node is linked from anywhere and never change after, so they are read
 * without a lock (the lock that publishes the first link is the barrier).
 */
static inline void
LockNode(HnswBuildState *bs, int64 i, LWLockMode mode)
{
	if (bs->g.locks)
		LWLockAcquire(&bs->g.locks[i], mode);
}

static inline void
UnlockNode(HnswBuildState *bs, int64 i)
{
	if (bs->g.locks)
		LWLockRelease(&bs->g.locks[i]);
}

/* copy node i's neighbour list at level into bs->linkbuf; returns its length */
static int
CopyLinks(HnswBuildState *bs, int64 i, int level)
{
	int			cap = HnswLayerCapacity(&bs->info, level);
	uint32	   *links;
	int			n;

	LockNode(bs, i, LW_SHARED);
	links = NodeLinks(bs, i, level);
	for (n = 0; n < cap && links[n] != HNSW_INVALID_NID; n++)
		bs->linkbuf[n] = links[n];
	UnlockNode(bs, i);
	return n;
}

/* memory per serial in-memory node, excluding upper links (about 1/m of nodes) */
static Size
NodeBytes(const HnswInfo *info)
{
	return sizeof(float) * info->dims + sizeof(ItemPointerData) + 1 + info->key_bytes +
		(sizeof(uint32) + sizeof(float)) * info->m0 + sizeof(uint32) + sizeof(uint32) +
		(sizeof(uint32) + sizeof(float)) * info->m * 2 / info->m + 1;
}

static void
GrowGraph(HnswBuildState *bs, int64 want)
{
	int64		n = Min(want, bs->capacity);
	MemoryContext old = MemoryContextSwitchTo(bs->graphctx);

	if (bs->allocated == 0)
	{
		bs->g.vectors = palloc_extended(sizeof(float) * bs->info.dims * n, MCXT_ALLOC_HUGE);
		bs->g.tids = palloc_extended(sizeof(ItemPointerData) * n, MCXT_ALLOC_HUGE);
		bs->g.levels = palloc_extended(n, MCXT_ALLOC_HUGE);
		bs->g.links0 = palloc_extended(sizeof(uint32) * bs->info.m0 * n, MCXT_ALLOC_HUGE);
		bs->g.dists0 = palloc_extended(sizeof(float) * bs->info.m0 * n, MCXT_ALLOC_HUGE);
		bs->g.upperoff = palloc_extended(sizeof(uint32) * n, MCXT_ALLOC_HUGE);
		bs->visited = palloc_extended(sizeof(uint32) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		if (bs->info.key_bytes > 0)
			bs->g.keys = palloc_extended((Size) bs->info.key_bytes * n, MCXT_ALLOC_HUGE);
	}
	else
	{
		bs->g.vectors = repalloc_huge(bs->g.vectors, sizeof(float) * bs->info.dims * n);
		bs->g.tids = repalloc_huge(bs->g.tids, sizeof(ItemPointerData) * n);
		bs->g.levels = repalloc_huge(bs->g.levels, n);
		bs->g.links0 = repalloc_huge(bs->g.links0, sizeof(uint32) * bs->info.m0 * n);
		bs->g.dists0 = repalloc_huge(bs->g.dists0, sizeof(float) * bs->info.m0 * n);
		bs->g.upperoff = repalloc_huge(bs->g.upperoff, sizeof(uint32) * n);
		bs->visited = repalloc_huge(bs->visited, sizeof(uint32) * n);
		memset(bs->visited + bs->allocated, 0, sizeof(uint32) * (n - bs->allocated));
		if (bs->info.key_bytes > 0)
			bs->g.keys = repalloc_huge(bs->g.keys, (Size) bs->info.key_bytes * n);
	}
	bs->allocated = n;
	MemoryContextSwitchTo(old);
}

/* serial: room for node i's upper levels in the upper-link array */
static void
SerialAllocUpper(HnswBuildState *bs, int64 i, int level)
{
	bs->g.upperoff[i] = (uint32) bs->nupper;
	if (level == 0)
		return;
	if (bs->nupper + level > bs->upper_allocated)
	{
		int64		want = Max(bs->upper_allocated * 2, bs->nupper + level + 64);
		Size		sz = sizeof(uint32) * bs->info.m * want;

		if (bs->g.upper == NULL)
		{
			bs->g.upper = MemoryContextAllocHuge(bs->graphctx, sz);
			bs->g.upperdists = MemoryContextAllocHuge(bs->graphctx, sz);
		}
		else
		{
			bs->g.upper = repalloc_huge(bs->g.upper, sz);
			bs->g.upperdists = repalloc_huge(bs->g.upperdists, sz);
		}
		bs->upper_allocated = want;
	}
	bs->nupper += level;
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
		int			n = CopyLinks(bs, *cur, level);

		changed = false;
		for (int k = 0; k < n; k++)
		{
			int64		j = NidNode(bs, bs->linkbuf[k]);
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
		int			n;

		if (bs->results.count >= ef && c.distance > HnswHeapTop(&bs->results)->distance)
			break;
		n = CopyLinks(bs, NidNode(bs, c.nid), level);
		for (int k = 0; k < n; k++)
		{
			uint32		nid = bs->linkbuf[k];
			int64		j = NidNode(bs, nid);
			double		d;

			if (MemVisit(bs, j))
				continue;
			d = HnswDistance(&bs->info, q, NodeVector(bs, j));
			if (bs->results.count < ef || d < HnswHeapTop(&bs->results)->distance)
			{
				HnswHeapPush(&bs->candidates, d, nid);
				HnswHeapPush(&bs->results, d, nid);
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

/* sort kept indexes ascending: they index a distance-sorted array */
static void
SortKeep(uint32 *keep, int n)
{
	for (int a = 1; a < n; a++)
	{
		uint32		x = keep[a];
		int			b = a;

		while (b > 0 && keep[b - 1] > x)
		{
			keep[b] = keep[b - 1];
			b--;
		}
		keep[b] = x;
	}
}

/*
 * Add node i to the list of node j at level, pruning if full.  The list
 * is sorted by distance with the distances stored beside it, so the new
 * entry is placed by one pass and pruning needs only the pair distances.
 * In a parallel build j's lock is held throughout, so concurrent additions
 * to the same list are serialised and searches see whole lists.
 */
static void
MemAddBackLink(HnswBuildState *bs, int64 j, int64 i, int level, double dij)
{
	int			cap = HnswLayerCapacity(&bs->info, level);
	uint32		nid = NodeNid(bs, i);
	float		d = (float) dij;
	uint32	   *links;
	float	   *dists;
	int			n;
	int			pos;
	HnswCandidate cands[HNSW_MAX_M * 2 + 1];
	uint32		keep[HNSW_MAX_M * 2 + 1];
	MemPairArg	arg;
	int			nkeep;

	LockNode(bs, j, LW_EXCLUSIVE);
	links = NodeLinks(bs, j, level);
	dists = NodeDists(bs, j, level);
	n = CountLinks(links, cap);
	for (pos = 0; pos < n; pos++)
		if (dists[pos] > d || (dists[pos] == d && links[pos] > nid))
			break;
	if (n < cap)
	{
		memmove(links + pos + 1, links + pos, sizeof(uint32) * (n - pos));
		memmove(dists + pos + 1, dists + pos, sizeof(float) * (n - pos));
		links[pos] = nid;
		dists[pos] = d;
		UnlockNode(bs, j);
		return;
	}

	/* full: re-prune the list with the new node, already in order */
	for (int k = 0, c = 0; k <= n; k++)
	{
		if (k == pos)
		{
			cands[k].nid = nid;
			cands[k].distance = d;
		}
		else
		{
			cands[k].nid = links[c];
			cands[k].distance = dists[c];
			c++;
		}
	}
	arg.bs = bs;
	arg.cands = cands;
	nkeep = HnswSelectNeighbors(&bs->info, cands, n + 1, cap, NULL, keep, MemPairDist, &arg);
	SortKeep(keep, nkeep);
	for (int k = 0; k < cap; k++)
	{
		if (k < nkeep)
		{
			links[k] = cands[keep[k]].nid;
			dists[k] = (float) cands[keep[k]].distance;
		}
		else
			links[k] = HNSW_INVALID_NID;
	}
	UnlockNode(bs, j);
}

/*
 * Read the entry point for an insert at level.  In a parallel build an
 * insert that will raise the top level keeps the entry lock exclusively
 * until it is done (returns true), so two such inserts cannot both become
 * the entry point; the others only read it under a share lock.
 */
static bool
MemGetEntry(HnswBuildState *bs, int level, int64 *entry, int *entry_level)
{
	HnswBuildShared *shared = bs->shared;

	if (shared == NULL)
	{
		*entry = bs->entry;
		*entry_level = bs->entry_level;
		return false;
	}
	LWLockAcquire(&shared->entry_lock, LW_SHARED);
	*entry = shared->entry;
	*entry_level = shared->entry_level;
	LWLockRelease(&shared->entry_lock);
	if (level <= *entry_level)
		return false;
	LWLockAcquire(&shared->entry_lock, LW_EXCLUSIVE);
	*entry = shared->entry;
	*entry_level = shared->entry_level;
	if (level > *entry_level)
		return true;
	LWLockRelease(&shared->entry_lock);
	return false;
}

static void
MemSetEntry(HnswBuildState *bs, int64 i, int level)
{
	if (bs->shared)
	{
		bs->shared->entry = i;
		bs->shared->entry_level = level;
	}
	else
	{
		bs->entry = i;
		bs->entry_level = level;
	}
}

/*
 * Insert node i (vector, TID, level and upper-link room already set).  All
 * levels are searched and their neighbours chosen before the node is linked
 * from anywhere, so nobody else sees or changes its lists while it is
 * being connected.
 */
static void
MemInsert(HnswBuildState *bs, int64 i)
{
	const float *q = NodeVector(bs, i);
	int			level = bs->g.levels[i];
	int64		entry;
	int			entry_level;
	bool		holding;
	int64		cur;
	double		curdist;
	int			top;
	uint32	   *chosen;
	double	   *chosendist;
	int		   *nchosen;

	memset(NodeLinks(bs, i, 0), 0xFF, sizeof(uint32) * bs->info.m0);
	if (level > 0)
		memset(NodeLinks(bs, i, 1), 0xFF, sizeof(uint32) * level * bs->info.m);

	holding = MemGetEntry(bs, level, &entry, &entry_level);
	if (entry < 0)
	{
		MemSetEntry(bs, i, level);
		if (holding)
			LWLockRelease(&bs->shared->entry_lock);
		return;
	}

	cur = entry;
	curdist = HnswDistance(&bs->info, q, NodeVector(bs, cur));
	for (int l = entry_level; l > level; l--)
		MemGreedy(bs, q, l, &cur, &curdist);

	top = Min(level, entry_level);
	chosen = palloc(sizeof(uint32) * bs->info.m0 * (top + 1));
	chosendist = palloc(sizeof(double) * bs->info.m0 * (top + 1));
	nchosen = palloc(sizeof(int) * (top + 1));
	bs->results.count = 0;
	HnswHeapPush(&bs->results, curdist, NodeNid(bs, cur));
	for (int l = top; l >= 0; l--)
	{
		int			cap = HnswLayerCapacity(&bs->info, l);
		HnswCandidate *cands;
		int			ncands;
		uint32		keep[HNSW_MAX_M * 2];
		MemPairArg	arg;

		MemSearchLayer(bs, q, l, bs->info.ef_construction);
		ncands = bs->results.count;
		cands = palloc(sizeof(HnswCandidate) * ncands);
		memcpy(cands, bs->results.items, sizeof(HnswCandidate) * ncands);
		qsort(cands, ncands, sizeof(HnswCandidate), HnswCandidateCmp);
		arg.bs = bs;
		arg.cands = cands;
		nchosen[l] = HnswSelectNeighbors(&bs->info, cands, ncands, cap, NULL, keep,
										 MemPairDist, &arg);
		SortKeep(keep, nchosen[l]);
		for (int k = 0; k < nchosen[l]; k++)
		{
			chosen[l * bs->info.m0 + k] = cands[keep[k]].nid;
			chosendist[l * bs->info.m0 + k] = cands[keep[k]].distance;
		}
		pfree(cands);
	}

	/* the node's own lists, then the links to it */
	for (int l = top; l >= 0; l--)
	{
		memcpy(NodeLinks(bs, i, l), chosen + l * bs->info.m0, sizeof(uint32) * nchosen[l]);
		for (int k = 0; k < nchosen[l]; k++)
			NodeDists(bs, i, l)[k] = (float) chosendist[l * bs->info.m0 + k];
	}
	for (int l = top; l >= 0; l--)
		for (int k = 0; k < nchosen[l]; k++)
			MemAddBackLink(bs, NidNode(bs, chosen[l * bs->info.m0 + k]), i, l,
						   chosendist[l * bs->info.m0 + k]);
	pfree(chosen);
	pfree(chosendist);
	pfree(nchosen);

	if (level > entry_level)
		MemSetEntry(bs, i, level);
	if (holding)
		LWLockRelease(&bs->shared->entry_lock);
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
			if (bs->g.levels[i] == 0)
				continue;
			sz = HNSW_UPPER_SIZE(bs->g.levels[i], info->m);
			if (PageGetFreeSpace(upage) < MAXALIGN(sz))
			{
				pages = lappend(pages, upage);
				upage = palloc(BLCKSZ);
				HnswInitPage(upage, HNSW_PAGE_UPPER, info);
				blk++;
			}
			up = palloc0(sz);
			up->nid = NodeNid(bs, pos);
			up->level = bs->g.levels[i];
			for (int k = 0; k < bs->g.levels[i] * info->m; k++)
				up->links[k] = MapNid(NodeLinks(bs, i, 1)[k]);
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
				slot->heaptid = bs->g.tids[i];
				slot->level = bs->g.levels[i];
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

/* ---- the heap scan (serial) ---- */

/* search scratch of one participant */
static void
InitScratch(HnswBuildState *bs)
{
	HnswHeapInit(&bs->candidates, bs->info.ef_construction * 4, false);
	HnswHeapInit(&bs->results, bs->info.ef_construction + 1, true);
	bs->scratch = palloc(sizeof(float) * bs->info.dims);
	bs->keybuf = palloc(Max(bs->info.key_bytes, 1));
	bs->linkbuf = palloc(sizeof(uint32) * bs->info.m0);
	bs->tmpctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build temporary context",
									   ALLOCSET_DEFAULT_SIZES);
}

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
			int			level = HnswRandomLevel(bs->info.m, &bs->prng);

			bs->g.tids[bs->n] = *tid;
			if (bs->info.key_bytes > 0)
				HnswFormKeys(index, &bs->info, values, isnull, NodeKeys(bs, bs->n));
			bs->g.levels[bs->n] = level;
			SerialAllocUpper(bs, bs->n, level);
			MemInsert(bs, bs->n);
			bs->n++;
			bs->indtuples++;
		}
	}
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs->indtuples);
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpctx);
}

static void
SerialBuild(HnswBuildState *bs, IndexInfo *indexInfo)
{
	Size		mem = (Size) maintenance_work_mem * 1024;

	bs->entry = -1;
	bs->epoch = 0;
	pg_prng_seed(&bs->prng, UINT64CONST(0x484E5357));
	bs->capacity = Max((int64) (mem / NodeBytes(&bs->info)), 1);
	bs->graphctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build graph",
										 ALLOCSET_DEFAULT_SIZES);
	InitScratch(bs);

	bs->reltuples = table_index_build_scan(bs->heap, bs->index, indexInfo, true, true,
										   BuildCallback, bs, NULL);
	if (!bs->spilled)
	{
		FixReachability(bs);
		WriteGraph(bs);
	}
	if (bs->graphctx)
		MemoryContextDelete(bs->graphctx);
	MemoryContextDelete(bs->tmpctx);
}

/* ---- parallel build ---- */

/*
 * Memory per node of the shared graph: the serial arrays plus a node lock
 * and the expected upper links (1 / (m - 1) levels per node, reserved
 * twice over).
 */
static Size
SharedNodeBytes(const HnswInfo *info)
{
	return sizeof(float) * info->dims + sizeof(ItemPointerData) + 1 + info->key_bytes +
		(sizeof(uint32) + sizeof(float)) * info->m0 + sizeof(uint32) + sizeof(LWLock) +
		(sizeof(uint32) + sizeof(float)) * info->m * 2 / (info->m - 1) + 1;
}

/* place the graph arrays; returns the size of the area */
static Size
LayoutGraph(HnswBuildShared *shared)
{
	const HnswInfo *info = &shared->info;
	Size		c = (Size) shared->capacity;
	Size		off = 0;

#define PLACE(field, bytes) (shared->field = off, off += MAXALIGN(bytes))
	PLACE(off_vectors, sizeof(float) * info->dims * c);
	PLACE(off_tids, sizeof(ItemPointerData) * c);
	PLACE(off_keys, (Size) info->key_bytes * c);
	PLACE(off_levels, c);
	PLACE(off_links0, sizeof(uint32) * info->m0 * c);
	PLACE(off_dists0, sizeof(float) * info->m0 * c);
	PLACE(off_upperoff, sizeof(uint32) * c);
	PLACE(off_upper, sizeof(uint32) * info->m * (Size) shared->upper_capacity);
	PLACE(off_upperdists, sizeof(float) * info->m * (Size) shared->upper_capacity);
	PLACE(off_locks, sizeof(LWLock) * c);
#undef PLACE
	return off;
}

/* a participant's view of the shared graph, and its own scratch */
static void
AttachGraph(HnswBuildState *bs, HnswBuildShared *shared, char *graph)
{
	bs->shared = shared;
	bs->info = shared->info;
	bs->capacity = shared->capacity;
	bs->allocated = shared->capacity;
	bs->g.vectors = (float *) (graph + shared->off_vectors);
	bs->g.tids = (ItemPointerData *) (graph + shared->off_tids);
	bs->g.keys = bs->info.key_bytes > 0 ? graph + shared->off_keys : NULL;
	bs->g.levels = (uint8 *) (graph + shared->off_levels);
	bs->g.links0 = (uint32 *) (graph + shared->off_links0);
	bs->g.dists0 = (float *) (graph + shared->off_dists0);
	bs->g.upperoff = (uint32 *) (graph + shared->off_upperoff);
	bs->g.upper = (uint32 *) (graph + shared->off_upper);
	bs->g.upperdists = (float *) (graph + shared->off_upperdists);
	bs->g.locks = (LWLock *) (graph + shared->off_locks);
	bs->visited = palloc_extended(sizeof(uint32) * bs->capacity,
								  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	bs->epoch = 0;
	LWLockRegisterTranche(shared->tranche_id, "hnsw build");
	InitScratch(bs);
}

/*
 * The level of a row in a parallel build: drawn from a generator seeded
 * with its heap TID, so it does not depend on which participant inserts
 * the row or when.
 */
static int
TidLevel(HnswBuildState *bs, ItemPointer tid)
{
	pg_prng_state state;
	uint64		key = ((uint64) ItemPointerGetBlockNumber(tid) << 16) |
		ItemPointerGetOffsetNumber(tid);

	pg_prng_seed(&state, key ^ UINT64CONST(0x484E535750415241));
	return HnswRandomLevel(bs->info.m, &state);
}

/*
 * Claim the next node of the shared graph and room for its upper levels.
 * False when the graph is full.  Should the reserve of upper links run out
 * (it holds twice the expected number), the node gets level 0.
 */
static bool
ClaimNode(HnswBuildState *bs, int *level, int64 *node)
{
	HnswBuildShared *shared = bs->shared;
	uint64		i = pg_atomic_fetch_add_u64(&shared->nclaimed, 1);

	if (i >= (uint64) shared->capacity)
	{
		pg_atomic_write_u32(&shared->full, 1);
		return false;
	}
	bs->g.upperoff[i] = 0;
	if (*level > 0)
	{
		uint64		u = pg_atomic_fetch_add_u64(&shared->nupper, *level);

		if (u + *level > (uint64) shared->upper_capacity)
			*level = 0;
		else
			bs->g.upperoff[i] = (uint32) u;
	}
	*node = (int64) i;
	return true;
}

static void
SpillFileName(char *name, int participant)
{
	snprintf(name, MAXPGPATH, "hnswspill.%d", participant);
}

/* a row that did not fit: TID, vector, keys, to this participant's file */
static void
SpillRow(HnswBuildState *bs, ItemPointer tid, MemoryContext filectx)
{
	if (bs->spill == NULL)
	{
		char		name[MAXPGPATH];
		MemoryContext old = MemoryContextSwitchTo(filectx);

		SpillFileName(name, ParallelWorkerNumber + 1);
		bs->spill = BufFileCreateFileSet(&bs->shared->fileset.fs, name);
		MemoryContextSwitchTo(old);
	}
	BufFileWrite(bs->spill, tid, sizeof(ItemPointerData));
	BufFileWrite(bs->spill, bs->scratch, sizeof(float) * bs->info.dims);
	if (bs->info.key_bytes > 0)
		BufFileWrite(bs->spill, bs->keybuf, bs->info.key_bytes);
}

typedef struct ParallelCallbackState
{
	HnswBuildState *bs;
	MemoryContext filectx;
} ParallelCallbackState;

static void
ParallelCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				 bool tupleIsAlive, void *state)
{
	ParallelCallbackState *pcs = (ParallelCallbackState *) state;
	HnswBuildState *bs = pcs->bs;
	MemoryContext old;

	if (isnull[0])
		return;

	old = MemoryContextSwitchTo(bs->tmpctx);
	if (HnswPrepareVector(&bs->info, values[0], bs->scratch))
	{
		int			level = TidLevel(bs, tid);
		int64		i;
		uint64		done;

		if (bs->info.key_bytes > 0)
			HnswFormKeys(index, &bs->info, values, isnull, bs->keybuf);
		if (ClaimNode(bs, &level, &i))
		{
			memcpy(NodeVector(bs, i), bs->scratch, sizeof(float) * bs->info.dims);
			bs->g.tids[i] = *tid;
			if (bs->info.key_bytes > 0)
				memcpy(NodeKeys(bs, i), bs->keybuf, bs->info.key_bytes);
			bs->g.levels[i] = level;
			LWLockInitialize(&bs->g.locks[i], bs->shared->tranche_id);
			MemInsert(bs, i);
		}
		else
			SpillRow(bs, tid, pcs->filectx);
		bs->indtuples++;
		done = pg_atomic_add_fetch_u64(&bs->shared->ndone, 1);
		if (!IsParallelWorker())
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) done);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpctx);
}

/* what every participant (after AttachGraph), the leader included, does */
static void
ParallelScanAndInsert(HnswBuildState *bs, HnswBuildShared *shared,
					  ParallelTableScanDesc pscan, bool progress)
{
	Relation	heap = bs->heap;
	Relation	index = bs->index;
	ParallelCallbackState pcs;
	IndexInfo  *indexInfo;
	TableScanDesc scan;
	double		reltuples;

	pcs.bs = bs;
	pcs.filectx = CurrentMemoryContext;

	indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = shared->isconcurrent;
	scan = table_beginscan_parallel(heap, pscan);
	reltuples = table_index_build_scan(heap, index, indexInfo, true, progress,
									   ParallelCallback, &pcs, scan);
	if (bs->spill)
	{
		BufFileClose(bs->spill);
		bs->spill = NULL;
	}

	elog(DEBUG2, "hnsw build participant %d inserted %.0f rows",
		 ParallelWorkerNumber + 1, bs->indtuples);
	SpinLockAcquire(&shared->mutex);
	shared->reltuples += reltuples;
	shared->indtuples += bs->indtuples;
	if (indexInfo->ii_BrokenHotChain)
		shared->brokenhotchain = true;
	SpinLockRelease(&shared->mutex);
}

/* leader: insert the rows that did not fit into the written graph */
static void
InsertSpilled(HnswBuildState *bs, int nparticipants)
{
	Size		recsize = sizeof(ItemPointerData) + sizeof(float) * bs->info.dims +
		bs->info.key_bytes;
	char	   *rec = palloc(recsize);

	for (int p = 0; p < nparticipants; p++)
	{
		char		name[MAXPGPATH];
		BufFile    *file;

		SpillFileName(name, p);
		file = BufFileOpenFileSet(&bs->shared->fileset.fs, name, O_RDONLY, true);
		if (file == NULL)
			continue;
		for (;;)
		{
			size_t		got;
			ItemPointerData tid;
			MemoryContext old;
			float	   *vec = (float *) (rec + sizeof(ItemPointerData));

			CHECK_FOR_INTERRUPTS();
			got = BufFileRead(file, rec, recsize);
			if (got == 0)
				break;
			if (got != recsize)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read from hnsw build temporary file: read only %zu of %zu bytes",
								got, recsize)));
			memcpy(&tid, rec, sizeof(ItemPointerData));
			memcpy(bs->scratch, vec, sizeof(float) * bs->info.dims);
			old = MemoryContextSwitchTo(bs->tmpctx);
			HnswInsertOnDisk(bs->index, &bs->info, bs->scratch,
							 bs->info.key_bytes > 0 ? (char *) vec + sizeof(float) * bs->info.dims : NULL,
							 &tid, true);
			MemoryContextSwitchTo(old);
			MemoryContextReset(bs->tmpctx);
		}
		BufFileClose(file);
	}
	pfree(rec);
}

/*
 * Nodes the shared graph may need: what maintenance_work_mem holds, but no
 * more than the planner's estimate of the table's rows plus a margin, so
 * a small table does not ask for a segment of maintenance_work_mem (which
 * /dev/shm may not have).  Rows beyond it take the on-disk path.
 */
static int64
SharedCapacity(Relation heap, const HnswInfo *info)
{
	Size		mem = (Size) maintenance_work_mem * 1024;
	int64		capacity = (int64) (mem / SharedNodeBytes(info));
	BlockNumber pages;
	double		tuples;
	double		allvisfrac;

	estimate_rel_size(heap, NULL, &pages, &tuples, &allvisfrac);
	if (tuples >= 0 && tuples * 1.2 + 1024 < (double) capacity)
		capacity = (int64) (tuples * 1.2) + 1024;
	capacity = Min(capacity, (int64) (PG_UINT32_MAX / 2));
	return Max(capacity, 1);
}

/*
 * Build with a ParallelContext: the graph lives in the DSM segment, every
 * participant scans heap blocks and inserts concurrently, then the leader
 * alone links orphans, numbers and writes the pages, and inserts the rows
 * that did not fit.  Returns false, having built nothing, when no segment
 * could be had.
 */
static bool
ParallelBuild(HnswBuildState *bs, IndexInfo *indexInfo, int request)
{
	Relation	heap = bs->heap;
	Relation	index = bs->index;
	bool		isconcurrent = indexInfo->ii_Concurrent;
	ParallelContext *pcxt;
	Snapshot	snapshot;
	HnswBuildShared layout;
	HnswBuildShared *shared;
	ParallelTableScanDesc pscan;
	char	   *graph;
	Size		estshared,
				estscan,
				estgraph,
				estquery;
	int			nlaunched;
	char	   *query = NULL;
	BufferUsage *bufusage;
	WalUsage   *walusage;

	memset(&layout, 0, sizeof(layout));
	layout.info = bs->info;
	layout.capacity = SharedCapacity(heap, &bs->info);
	layout.upper_capacity = layout.capacity * 2 / (bs->info.m - 1) + 1024;
	estgraph = LayoutGraph(&layout);

	EnterParallelMode();
	pcxt = CreateParallelContext("genai", "HnswParallelBuildMain", request);

	/* as nbtree: any tuple for a plain build, an MVCC snapshot for CIC */
	if (!isconcurrent)
		snapshot = SnapshotAny;
	else
		snapshot = RegisterSnapshot(GetTransactionSnapshot());

	estshared = MAXALIGN(sizeof(HnswBuildShared));
	estscan = table_parallelscan_estimate(heap, snapshot);
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	shm_toc_estimate_chunk(&pcxt->estimator, estscan);
	shm_toc_estimate_chunk(&pcxt->estimator, estgraph);
	/* buffer and WAL usage of every worker, for pg_stat_statements */
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 5);
	/* the statement, for the workers' pg_stat_activity */
	estquery = debug_query_string ? strlen(debug_query_string) + 1 : 0;
	if (estquery > 0)
	{
		shm_toc_estimate_chunk(&pcxt->estimator, estquery);
		shm_toc_estimate_keys(&pcxt->estimator, 1);
	}
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}

	shared = (HnswBuildShared *) shm_toc_allocate(pcxt->toc, estshared);
	memcpy(shared, &layout, sizeof(HnswBuildShared));
	shared->heaprelid = RelationGetRelid(heap);
	shared->indexrelid = RelationGetRelid(index);
	shared->isconcurrent = isconcurrent;
	/* one tranche per backend, not one per build (ids are never freed) */
	if (build_tranche_id == 0)
		build_tranche_id = LWLockNewTrancheId();
	shared->tranche_id = build_tranche_id;
	SharedFileSetInit(&shared->fileset, pcxt->seg);
	pg_atomic_init_u64(&shared->nclaimed, 0);
	pg_atomic_init_u64(&shared->nupper, 0);
	pg_atomic_init_u64(&shared->ndone, 0);
	pg_atomic_init_u32(&shared->full, 0);
	LWLockInitialize(&shared->entry_lock, shared->tranche_id);
	shared->entry = -1;
	shared->entry_level = -1;
	SpinLockInit(&shared->mutex);
	shared->reltuples = 0;
	shared->indtuples = 0;
	shared->brokenhotchain = false;
	pscan = (ParallelTableScanDesc) shm_toc_allocate(pcxt->toc, estscan);
	table_parallelscan_initialize(heap, pscan, snapshot);
	graph = shm_toc_allocate(pcxt->toc, estgraph);
	shm_toc_insert(pcxt->toc, HNSW_PARALLEL_KEY_SHARED, shared);
	shm_toc_insert(pcxt->toc, HNSW_PARALLEL_KEY_SCAN, pscan);
	shm_toc_insert(pcxt->toc, HNSW_PARALLEL_KEY_GRAPH, graph);
	bufusage = shm_toc_allocate(pcxt->toc, mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, HNSW_PARALLEL_KEY_BUFUSAGE, bufusage);
	walusage = shm_toc_allocate(pcxt->toc, mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, HNSW_PARALLEL_KEY_WALUSAGE, walusage);
	if (estquery > 0)
	{
		query = shm_toc_allocate(pcxt->toc, estquery);
		memcpy(query, debug_query_string, estquery);
		shm_toc_insert(pcxt->toc, HNSW_PARALLEL_KEY_QUERY, query);
	}

	LaunchParallelWorkers(pcxt);
	nlaunched = pcxt->nworkers_launched;
	ereport(DEBUG1,
			(errmsg_internal("hnsw build of \"%s\": %d parallel workers planned, %d launched",
							 RelationGetRelationName(index), request, nlaunched)));

	/* the leader takes part (unless told not to), then waits for the workers */
	AttachGraph(bs, shared, graph);
	if (parallel_leader_participation || nlaunched == 0)
		ParallelScanAndInsert(bs, shared, pscan, true);
	WaitForParallelWorkersToFinish(pcxt);
	for (int i = 0; i < nlaunched; i++)
		InstrAccumParallelQuery(&bufusage[i], &walusage[i]);

	bs->n = Min((int64) pg_atomic_read_u64(&shared->nclaimed), shared->capacity);
	bs->entry = shared->entry;
	bs->entry_level = shared->entry_level;
	bs->reltuples = shared->reltuples;
	bs->indtuples = shared->indtuples;
	if (shared->brokenhotchain)
		indexInfo->ii_BrokenHotChain = true;	/* pg_index.indcheckxmin */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE,
								 (int64) pg_atomic_read_u64(&shared->ndone));

	if (pg_atomic_read_u32(&shared->full))
		ereport(NOTICE,
				(errmsg("hnsw graph no longer fits into maintenance_work_mem after %lld tuples",
						(long long) bs->n),
				 errdetail("Building will take significantly more time."),
				 errhint("Increase maintenance_work_mem to speed up builds.")));
	FixReachability(bs);
	WriteGraph(bs);
	if (pg_atomic_read_u32(&shared->full))
		InsertSpilled(bs, nlaunched + 1);

	if (IsMVCCSnapshot(snapshot))
		UnregisterSnapshot(snapshot);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return true;
}

/* entry point of a parallel build worker (CreateParallelContext names it) */
void
HnswParallelBuildMain(dsm_segment *seg, shm_toc *toc)
{
	HnswBuildShared *shared = shm_toc_lookup(toc, HNSW_PARALLEL_KEY_SHARED, false);
	ParallelTableScanDesc pscan = shm_toc_lookup(toc, HNSW_PARALLEL_KEY_SCAN, false);
	char	   *graph = shm_toc_lookup(toc, HNSW_PARALLEL_KEY_GRAPH, false);
	LOCKMODE	heaplock;
	LOCKMODE	indexlock;
	Relation	heap;
	Relation	index;
	HnswBuildState bs;
	char	   *query;
	BufferUsage *bufusage;
	WalUsage   *walusage;

	/* the leader's lock modes (index_build, index_concurrently_build) */
	if (!shared->isconcurrent)
	{
		heaplock = ShareLock;
		indexlock = AccessExclusiveLock;
	}
	else
	{
		heaplock = ShareUpdateExclusiveLock;
		indexlock = RowExclusiveLock;
	}
	query = shm_toc_lookup(toc, HNSW_PARALLEL_KEY_QUERY, true);
	if (query)
	{
		debug_query_string = query;
		pgstat_report_activity(STATE_RUNNING, debug_query_string);
	}
	heap = table_open(shared->heaprelid, heaplock);
	index = index_open(shared->indexrelid, indexlock);
	SharedFileSetAttach(&shared->fileset, seg);
	InstrStartParallelQuery();

	memset(&bs, 0, sizeof(bs));
	bs.heap = heap;
	bs.index = index;
	AttachGraph(&bs, shared, graph);
	ParallelScanAndInsert(&bs, shared, pscan, false);

	bufusage = shm_toc_lookup(toc, HNSW_PARALLEL_KEY_BUFUSAGE, false);
	walusage = shm_toc_lookup(toc, HNSW_PARALLEL_KEY_WALUSAGE, false);
	InstrEndParallelQuery(&bufusage[ParallelWorkerNumber], &walusage[ParallelWorkerNumber]);

	index_close(index, indexlock);
	table_close(heap, heaplock);
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
	int			dims = IndexDimensions(index);
	HnswStorage storage = HnswChooseStorage(HnswGetStorage(index), dims,
											HnswGetM(index), nkeys);

	HnswInfoInit(info, dims, HnswMetricFromOpclass(index),
				 storage, HnswGetM(index), HnswGetEfConstruction(index));
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
	int			nworkers;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	memset(&bs, 0, sizeof(bs));
	bs.heap = heap;
	bs.index = index;
	InitBuildInfo(index, &bs.info);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_HNSW_PHASE_LOAD);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL,
								 (int64) Max(heap->rd_rel->reltuples, 0));

	/*
	 * PG15's index_build plans workers only for btree, so ask the planner
	 * here: 0 unless max_parallel_maintenance_workers, the table's size or
	 * parallel_workers, and parallel safety allow.
	 */
	nworkers = plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(index));
	if (nworkers == 0 || !ParallelBuild(&bs, indexInfo, nworkers))
		SerialBuild(&bs, indexInfo);
	/* summarize the node pages' filter keys (hnswfilter.c) */
	HnswKeyDirBuild(index);

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
