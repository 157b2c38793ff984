/*-------------------------------------------------------------------------
 *
 * hnswscan.c
 *	  Ordered scans of an hnsw index: ORDER BY col <op> const [LIMIT k].
 *
 * A scan first runs the classic search (greedy descent through the upper
 * layers, then a layer-0 search keeping the hnsw.ef_search nearest) and
 * returns those rows in distance order.  If the executor wants more rows
 * (a filter rejected some), and hnsw.iterative_scan is not "off", the scan
 * goes on as a best-first search from everything it has seen, with the
 * first search's kind of stopping rule: it returns the nearest found row
 * once the 2 * hnsw.ef_search nearest unreturned rows are all nearer than
 * every unexpanded candidate, and that candidate is farther than the row
 * by a margin that grows with the depth of the scan (a window of rows and
 * a margin, so a near row that is reached only through a farther one is
 * usually found before the farther row is returned).  The first half of
 * the first batch (one row more with compressed storage, see below) is
 * returned directly, the rest joins the stream.  After
 * hnsw.max_scan_tuples distances, it finishes exactly: it reads every node
 * it has not returned yet, sorts them, and returns them.  So a scan never
 * stops while unreturned index entries exist.
 *
 * Order: with fp32 storage every row is returned with its exact distance,
 * computed by the same kernel as the SQL operator; with fp16 or sq8 with a
 * lower bound of it, and the executor rechecks and reorders
 * (hnswstorage.c).  With "strict_order" (the default) a
 * row found after a farther one was already returned is held back and
 * returned only at the very end, after every other entry: a LIMIT k query
 * gets rows in non-decreasing distance order whenever at least k rows pass
 * its filter among the others, and never loses a row.  "relaxed_order"
 * returns such rows at once.
 *
 * Filter keys (hnswfilter.c): quals on key columns arrive as ScanKeys and
 * are checked on each node as it is scored; nodes that fail route the
 * search but are never returned.  A rare key makes the first search expand
 * many nodes before it has ef_search matches; after a budget it gives up
 * and the scan sweeps the index instead, checking keys and computing
 * distances only for matching nodes, which is exact and cheaper than the
 * graph for a small tenant.  With an equality on a key, the key directory
 * (hnswfilter.c) names the pages that may hold a match; the sweep reads
 * only those, and starts at once when they are few.
 *
 * Rows with NULL vectors (and zero vectors under cosine) are not in the
 * index.  A NULL or (cosine) zero query vector has no distance to anything;
 * the scan then returns every entry in index order.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswscan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw.h"

typedef enum HnswScanPhase
{
	SCAN_FIRST,					/* returning the ef_search batch */
	SCAN_STREAM,				/* best-first continuation */
	SCAN_EXACT,					/* sorted sweep of what is left */
	SCAN_LATE,					/* held-back rows (strict order) */
	SCAN_DONE
} HnswScanPhase;

typedef struct HnswScanOpaqueData
{
	const HnswInfo *info;
	MemoryContext ctx;
	bool		started;
	HnswScanPhase phase;
	bool		unordered;		/* NULL or zero query: no distances */
	float	   *query;
	HnswSearch	search;
	HnswHeap	ready;			/* min-heap: found, not yet returned */
	HnswHeap	window;			/* stream: max-heap of the ef nearest of those */
	HnswHeap	late;			/* min-heap: held back (strict order) */
	HnswVisited returned;		/* nids already returned */
	double		last;			/* distance of the last row returned */
	bool		any_returned;
	int64		budget_start;	/* ndistances when streaming began */
	double		first_dist;		/* distance of the first row returned */
	int			first_left;		/* rows of the first batch still to return
								 * before the stream takes over */
	HnswKeyFilter filter;		/* quals on filter-key columns */
	uint8	   *cand;			/* key directory: blocks that may match, or
								 * NULL (read every block) */
	BlockNumber ncandblocks;	/* blocks cand covers; later ones are read */
} HnswScanOpaqueData;

typedef HnswScanOpaqueData *HnswScanOpaque;

/*
 * The stream's window: 2 * ef_search rows.  On gmm-100k-128 (ef_search 40)
 * a window of ef_search gave filtered recall@10 0.967 / 0.926 for a 10% /
 * 1% tenant, twice that 0.973 / 0.941, at no measurable cost in speed.
 */
static inline int
StreamWindow(void)
{
	return 2 * hnsw_ef_search;
}

/*
 * The stream's margin: it returns its nearest unreturned row x only once
 * every unexpanded candidate is farther than
 * d(x) + STREAM_MARGIN * (d(x) - d(first row returned)).
 *
 * A row whose every in-link comes from nodes well beyond it is found only
 * when the search reaches those nodes; if a farther row was returned
 * before that, strict order must hold the row back to the end, and under
 * a selective filter it is lost to the LIMIT.  The margin makes the
 * search run ahead of what it returns by a distance that grows with how
 * deep the scan has gone: nothing for the first rows (an unfiltered
 * LIMIT k), more the more rows a filter rejects.  It is a difference of
 * distances, so it means the same under every metric (inner-product
 * distances are negative).  On gmm-100k-128 with ef_search 40
 * (src/hnsw/README), recall@10 of a 1% / 10% tenant went from 0.941 /
 * 0.973 to 0.973 / 0.983 at 0.1 (0.955 / 0.979 at 0.05, 0.996 / 0.989
 * at 0.2), for about 1.4x the CPU on the 1% tenant.
 */
#define STREAM_MARGIN 0.1

/* The window's nearest distance (a max-heap of at most 2 * ef_search) */
static double
WindowMin(const HnswHeap *w)
{
	double		m = w->items[0].distance;

	for (int i = 1; i < w->count; i++)
	{
		if (w->items[i].distance < m)
			m = w->items[i].distance;
	}
	return m;
}

IndexScanDesc
hnswbeginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	HnswScanOpaque so = palloc0(sizeof(HnswScanOpaqueData));

	so->info = HnswGetInfo(index);
	so->ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw scan context",
									ALLOCSET_DEFAULT_SIZES);
	scan->opaque = so;
	scan->xs_orderbyvals = palloc0(sizeof(Datum) * Max(norderbys, 1));
	scan->xs_orderbynulls = palloc(sizeof(bool) * Max(norderbys, 1));
	memset(scan->xs_orderbynulls, true, sizeof(bool) * Max(norderbys, 1));
	return scan;
}

void
hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
	MemoryContextReset(so->ctx);
	so->started = false;
}

/*
 * Read node nid for returning it: its heap TID and its current distance.
 * False if the slot no longer holds a live node.
 */
static bool
ReadNodeForReturn(IndexScanDesc scan, uint32 nid, ItemPointer tid, double *dist)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	const HnswInfo *info = so->info;
	Buffer		buf;
	Page		page;
	HnswSlotHeader *slot;
	bool		ok = false;

	buf = ReadBuffer(scan->indexRelation, HnswNidBlock(info, nid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (HnswPageType(page) == HNSW_PAGE_NODE)
	{
		slot = HnswPageGetSlot(info, page, HnswNidSlot(info, nid));
		if ((slot->flags & HNSW_SLOT_USED) && !(slot->flags & HNSW_SLOT_DELETED) &&
			(so->filter.nconds == 0 ||
			 HnswKeyFilterMatch(&so->filter, HnswSlotKeys(info, slot))))
		{
			*tid = slot->heaptid;
			*dist = so->unordered ? 0 : HnswSlotDistance(&so->search, slot);
			ok = true;
		}
	}
	UnlockReleaseBuffer(buf);
	return ok;
}

/* Push every live node not yet returned into ready (the exact finish) */
static void
SweepAll(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	const HnswInfo *info = so->info;
	Relation	index = scan->indexRelation;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	so->ready.count = 0;
	so->window.count = 0;
	for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;

		CHECK_FOR_INTERRUPTS();
		if (so->cand && blkno < so->ncandblocks && !so->cand[blkno])
			continue;
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (HnswPageType(page) == HNSW_PAGE_NODE)
		{
			for (int s = 0; s < info->slots_per_page; s++)
			{
				HnswSlotHeader *slot = HnswPageGetSlot(info, page, s);
				uint32		nid = HnswMakeNid(info, blkno, s);

				if (!(slot->flags & HNSW_SLOT_USED) || (slot->flags & HNSW_SLOT_DELETED))
					continue;
				if (so->filter.nconds > 0 &&
					!HnswKeyFilterMatch(&so->filter, HnswSlotKeys(info, slot)))
					continue;
				if (HnswVisitedTestAndSet(&so->returned, nid))
					continue;
				/* not returned yet: unmark, it is marked when returned */
				so->returned.words[nid / 64] &= ~(UINT64CONST(1) << (nid % 64));
				HnswHeapPush(&so->ready,
							 so->unordered ? (double) nid : HnswSlotDistance(&so->search, slot),
							 nid);
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

static void
StartScan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	const HnswInfo *info = so->info;
	HnswMetaPageData meta;
	ScanKey		key = &scan->orderByData[0];

	so->started = true;
	so->any_returned = false;
	so->cand = NULL;
	so->ncandblocks = 0;
	so->last = -get_float8_infinity();
	so->query = palloc0(sizeof(float) * info->dims);
	so->unordered = false;
	HnswHeapInit(&so->ready, 64, false);
	HnswHeapInit(&so->late, 16, false);
	HnswHeapInit(&so->window, StreamWindow(), true);

	if (scan->numberOfOrderBys == 0 || (key->sk_flags & SK_ISNULL))
		so->unordered = true;
	else
	{
		Vector	   *v = DatumGetVector(key->sk_argument);

		if (v->dim != info->dims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different vector dimensions %d and %d", info->dims, v->dim)));
		memcpy(so->query, v->x, sizeof(float) * info->dims);
		if (info->metric == HNSW_METRIC_COSINE &&
			!(VectorInnerProduct(so->query, so->query, info->dims) > 0))
			so->unordered = true;
	}

	HnswSearchInit(&so->search, scan->indexRelation, info, so->query);
	/* compressed storage: order by lower bounds, the executor rechecks */
	so->search.bound = true;
	HnswVisitedInit(&so->returned, so->search.visited.nwords * 64);

	HnswKeyFilterInit(scan->indexRelation, scan->keyData, scan->numberOfKeys, &so->filter);
	if (so->filter.never)
	{
		so->phase = SCAN_DONE;
		return;
	}
	if (so->filter.nconds > 0)
	{
		/*
		 * Give up on the graph once it has cost about as many distances as
		 * a sweep of the index (an eighth of its slots), or max_scan_tuples.
		 */
		int64		nslots = (int64) so->search.visited.nwords * 64;

		so->search.match = HnswKeyFilterMatch;
		so->search.match_arg = &so->filter;
		so->search.max_distances = Max(Min((int64) hnsw_max_scan_tuples, nslots / 8),
									   (int64) hnsw_ef_search * info->m0);

		/*
		 * With an equality on a key, the key directory tells which pages
		 * may hold a match.  If they are fewer than the distances the
		 * graph would spend before giving up on a rare key (an eighth of
		 * its budget, each about a page read), sweep them right away.
		 */
		{
			int64		ncand;

			so->ncandblocks = RelationGetNumberOfBlocks(scan->indexRelation);
			so->cand = HnswKeyDirCandidates(scan->indexRelation, info, &so->filter,
											so->ncandblocks, &ncand);
			if (so->cand && ncand <= so->search.max_distances / 8)
			{
				SweepAll(scan);
				so->phase = SCAN_EXACT;
				return;
			}
		}
	}

	if (so->unordered)
	{
		SweepAll(scan);
		so->phase = SCAN_EXACT;
		return;
	}

	HnswReadMeta(scan->indexRelation, &meta);
	so->phase = SCAN_FIRST;
	if (meta.entry_nid == HNSW_INVALID_NID)
	{
		so->phase = SCAN_DONE;
		return;
	}
	if (hnsw_iterative_scan != HNSW_ITERATIVE_SCAN_OFF)
	{
		so->search.discarded = palloc(sizeof(HnswHeap));
		HnswHeapInit(so->search.discarded, 64, false);
	}
	HnswSearchEnter(&so->search, meta.entry_nid);
	for (int l = meta.entry_level; l > 0; l--)
		HnswSearchGreedy(&so->search, l);
	/* the greedy result may be a deleted node: it routes, is not returned */
	so->search.results.count = 0;
	if (so->search.candidates.count == 0)
	{
		/* the entry point was just recycled: fall back to the sweep */
		SweepAll(scan);
		so->phase = SCAN_EXACT;
		return;
	}
	{
		HnswCandidate c = *HnswHeapTop(&so->search.candidates);
		double		d;
		ItemPointerData tid;

		if (ReadNodeForReturn(scan, c.nid, &tid, &d))
			HnswHeapPush(&so->search.results, c.distance, c.nid);
	}
	HnswSearchLayer(&so->search, 0, hnsw_ef_search);
	so->search.max_distances = 0;
	if (so->search.budget_hit)
	{
		/* a rare key: an exact sweep of the matching nodes is cheaper */
		SweepAll(scan);
		so->phase = SCAN_EXACT;
		return;
	}

	/* the batch, nearest first */
	for (int i = 0; i < so->search.results.count; i++)
		HnswHeapPush(&so->ready, so->search.results.items[i].distance,
					 so->search.results.items[i].nid);
	/*
	 * The nearer half of the batch is returned as is (an unfiltered LIMIT k
	 * with k <= ef_search / 2 needs nothing else); the rest joins the
	 * stream, whose margin keeps later finds in order.
	 */
	so->first_left = (so->ready.count + 1) / 2;

	/*
	 * With compressed storage the executor reorders by the exact distance
	 * and releases a row only once the next row's bound reaches it, so it
	 * always takes one row more than it returns.  Hand out one more row of
	 * the batch, so that a LIMIT k gets the same rows straight from the
	 * batch as with fp32 instead of waiting on the stream for row k + 1.
	 */
	if (!so->unordered && so->info->storage != HNSW_STORAGE_FP32)
		so->first_left++;
	so->search.results.count = 0;
}

/*
 * Rows found by the stream.  The window (a max-heap) holds the ef_search
 * nearest unreturned rows, ready the others; the nearest row overall is
 * thus in the window.
 */
static void
StreamFound(HnswScanOpaque so, double distance, uint32 nid)
{
	HnswHeap   *w = &so->window;

	if (w->count < StreamWindow())
		HnswHeapPush(w, distance, nid);
	else if (distance < HnswHeapTop(w)->distance)
	{
		HnswCandidate out = HnswHeapPop(w);

		HnswHeapPush(&so->ready, out.distance, out.nid);
		HnswHeapPush(w, distance, nid);
	}
	else
		HnswHeapPush(&so->ready, distance, nid);
}

/* Take the nearest row out of the window and refill it from ready */
static HnswCandidate
StreamTakeNearest(HnswScanOpaque so)
{
	HnswHeap   *w = &so->window;
	HnswCandidate best;
	int			bi = 0;

	Assert(w->count > 0);
	for (int i = 1; i < w->count; i++)
	{
		if (w->items[i].distance < w->items[bi].distance ||
			(w->items[i].distance == w->items[bi].distance && w->items[i].nid < w->items[bi].nid))
			bi = i;
	}
	best = w->items[bi];
	/* remove it by moving the last item into its place and re-heaping */
	{
		int			n = w->count - 1;
		HnswCandidate *items = w->items;

		items[bi] = items[n];
		w->count = 0;
		for (int i = 0; i < n; i++)
			HnswHeapPush(w, items[i].distance, items[i].nid);
	}
	if (so->ready.count > 0)
	{
		HnswCandidate c = HnswHeapPop(&so->ready);

		HnswHeapPush(w, c.distance, c.nid);
	}
	return best;
}

/*
 * Switch to the best-first continuation: everything found but not
 * returned is both a result and a candidate to expand.
 */
static void
StartStream(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswHeap   *d = so->search.discarded;

	so->phase = SCAN_STREAM;
	so->budget_start = so->search.ndistances;
	while (so->ready.count > 0)
	{
		HnswCandidate c = HnswHeapPop(&so->ready);

		StreamFound(so, c.distance, c.nid);
	}
	for (int i = 0; i < d->count; i++)
	{
		StreamFound(so, d->items[i].distance, d->items[i].nid);
		HnswHeapPush(&so->search.candidates, d->items[i].distance, d->items[i].nid);
	}
	d->count = 0;
}

/* Expand the nearest candidate of the stream; false if none is left */
static bool
StreamStep(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswSearch *s = &so->search;

	if (s->candidates.count == 0)
		return false;

	{
		HnswCandidate c = HnswHeapPop(&s->candidates);
		int			n;
		int			npending = 0;
		double		dists[HNSW_MAX_M * 2];
		uint8		flags[HNSW_MAX_M * 2];

		n = HnswReadLinks(s->index, so->info, c.nid, 0, s->links, NULL);
		for (int i = 0; i < n; i++)
		{
			if (!HnswVisitedTestAndSet(&s->visited, s->links[i]))
				s->pending[npending++] = s->links[i];
		}
		HnswScoreNodes(s, s->pending, npending, dists, flags);
		for (int i = 0; i < npending; i++)
		{
			if (!(flags[i] & HNSW_SLOT_USED))
				continue;
			HnswHeapPush(&s->candidates, dists[i], s->pending[i]);
			if (!(flags[i] & (HNSW_SLOT_DELETED | HNSW_SCORE_NOMATCH)))
				StreamFound(so, dists[i], s->pending[i]);
		}
	}
	return true;
}

/* Has the search run far enough ahead of the window's nearest row? */
static bool
StreamMarginMet(HnswScanOpaque so)
{
	double		x = WindowMin(&so->window);
	double		margin = so->any_returned ? STREAM_MARGIN * (x - so->first_dist) : 0;

	return x + Max(margin, 0) <= HnswHeapTop(&so->search.candidates)->distance;
}

bool
hnswgettuple(IndexScanDesc scan, ScanDirection dir)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	MemoryContext old = MemoryContextSwitchTo(so->ctx);

	if (!IsMVCCSnapshot(scan->xs_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("hnsw index scans support only MVCC snapshots")));

	if (!so->started)
	{
		StartScan(scan);
		pgstat_count_index_scan(scan->indexRelation);
	}

	for (;;)
	{
		HnswHeap   *src = NULL;
		HnswCandidate c;
		ItemPointerData tid;
		double		d;

		CHECK_FOR_INTERRUPTS();
		switch (so->phase)
		{
			case SCAN_FIRST:
				if (so->ready.count > 0 && (so->first_left > 0 || hnsw_iterative_scan == HNSW_ITERATIVE_SCAN_OFF))
				{
					so->first_left--;
					src = &so->ready;
				}
				else if (hnsw_iterative_scan == HNSW_ITERATIVE_SCAN_OFF)
					so->phase = SCAN_DONE;
				else
					StartStream(scan);
				break;
			case SCAN_STREAM:
				if (so->search.ndistances - so->budget_start > hnsw_max_scan_tuples)
				{
					SweepAll(scan);
					so->phase = SCAN_EXACT;
				}
				else if (so->window.count > 0 &&
						 (so->search.candidates.count == 0 ||
						  (so->window.count >= StreamWindow() &&
						   HnswHeapTop(&so->window)->distance <=
						   HnswHeapTop(&so->search.candidates)->distance &&
						   StreamMarginMet(so))))
					src = &so->window;
				else if (!StreamStep(scan))
				{
					/* graph exhausted; the sweep finds what it could not reach */
					SweepAll(scan);
					so->phase = SCAN_EXACT;
				}
				break;
			case SCAN_EXACT:
				if (so->ready.count > 0)
					src = &so->ready;
				else
					so->phase = SCAN_LATE;
				break;
			case SCAN_LATE:
				if (so->late.count > 0)
					src = &so->late;
				else
					so->phase = SCAN_DONE;
				break;
			case SCAN_DONE:
				MemoryContextSwitchTo(old);
				return false;
		}
		if (src == NULL)
			continue;

		c = src == &so->window ? StreamTakeNearest(so) : HnswHeapPop(src);
		if (HnswVisitedTestAndSet(&so->returned, c.nid))
			continue;
		if (!ReadNodeForReturn(scan, c.nid, &tid, &d))
			continue;
		if (!so->unordered && d != c.distance)
		{
			/* the slot was recycled since it was scored: a different node */
			so->returned.words[c.nid / 64] &= ~(UINT64CONST(1) << (c.nid % 64));
			if (src == &so->window)
				StreamFound(so, d, c.nid);
			else
				HnswHeapPush(src, d, c.nid);
			continue;
		}
		if (!so->unordered && so->any_returned && d < so->last && so->phase != SCAN_LATE &&
			hnsw_iterative_scan == HNSW_ITERATIVE_SCAN_STRICT)
		{
			/* out of order: hold back until everything else is returned */
			so->returned.words[c.nid / 64] &= ~(UINT64CONST(1) << (c.nid % 64));
			HnswHeapPush(&so->late, d, c.nid);
			continue;
		}
		if (so->phase != SCAN_LATE && d > so->last)
			so->last = d;
		if (!so->any_returned)
			so->first_dist = d;
		so->any_returned = true;

		scan->xs_heaptid = tid;
		scan->xs_recheck = so->filter.recheck;
		scan->xs_recheckorderby = !so->unordered && so->info->storage != HNSW_STORAGE_FP32;
		if (scan->numberOfOrderBys > 0)
		{
			if (so->unordered)
				scan->xs_orderbynulls[0] = true;
			else
			{
				scan->xs_orderbyvals[0] = Float8GetDatum(HnswOrderValue(so->info, d));
				scan->xs_orderbynulls[0] = false;
			}
		}
		MemoryContextSwitchTo(old);
		return true;
	}
}

void
hnswendscan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	MemoryContextDelete(so->ctx);
	pfree(so);
	scan->opaque = NULL;
}
