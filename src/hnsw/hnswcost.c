/*-------------------------------------------------------------------------
 *
 * hnswcost.c
 *	  Cost estimate of hnsw index scans, including filtered ones.
 *
 * An hnsw scan does its first work before the first row: a greedy descent
 * through the upper layers and a layer-0 search that keeps the
 * hnsw.ef_search nearest nodes.  That is the startup cost.  Every row
 * after that batch comes from the iterative scan, which expands about one
 * more node (m new neighbours scored, their pages read) per row it
 * returns.  That is the run cost, charged per index entry, so the total is
 * startup + (N - ef_search) * per-row cost.
 *
 * The planner does the rest: under ORDER BY ... LIMIT k with a filter of
 * selectivity s (a WHERE clause or a row-level security policy that the
 * index cannot evaluate), the path's row estimate is N * s and the LIMIT
 * charges the fraction k / (N * s) of the run cost, i.e. about k / s rows'
 * worth of graph exploration plus their heap fetches.  A 1% tenant thus
 * costs about 100 * k rows of exploration, and the planner prefers a
 * btree on the tenant column plus an exact sort of the tenant's rows once
 * that is cheaper; a large tenant keeps the index.  Before this, all of
 * the index's cost was startup cost, so the index looked as cheap for a
 * 0.1% tenant as for an unfiltered query.
 *
 * Index quals on filter-key columns (tenant_id as a second index column)
 * are checked inside the graph walk (hnswfilter.c): non-matching nodes
 * cost their distance and page but no heap fetch (cost_index's heap
 * fetches follow the index selectivity s), and the first batch must score
 * about 1/s times as many nodes to find ef_search matches.  A scan gives
 * up on the graph after a budget of distances and sweeps the index
 * instead (exact; keys compared for every slot, distances only for
 * matches), so the startup cost is the cheaper of the two; the matches
 * are then all found, and returning them costs little.  With an equality
 * qual and the key directory, the sweep reads only the pages expected to
 * hold a match (plus the summaries' false positives).
 *
 * Distances are charged by dimension: one cpu_operator_cost per 32
 * dimensions (plus one), a rough ratio of a SIMD kernel's time to an
 * operator call's.  The whole model is in the planner's page and operator
 * units, as for every other index; it ranks paths, it does not predict
 * milliseconds.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswcost.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/stratnum.h"
#include "optimizer/optimizer.h"
#include "utils/lsyscache.h"
#include "utils/float.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"

#include "access/heaptoast.h"

#include "hnsw.h"

/* Cost of one distance over dims dimensions */
static double
HnswDistanceCost(int dims)
{
	return cpu_operator_cost * (1.0 + dims / 32.0);
}

/* Is one of the index quals an equality (which the key directory serves)? */
static bool
HasEqualityQual(IndexPath *path)
{
	ListCell   *lc;

	foreach(lc, path->indexclauses)
	{
		IndexClause *iclause = lfirst_node(IndexClause, lc);
		ListCell   *lc2;

		foreach(lc2, iclause->indexquals)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc2);
			Expr	   *clause = rinfo->clause;

			if (IsA(clause, OpExpr) &&
				get_op_opfamily_strategy(((OpExpr *) clause)->opno,
										 path->indexinfo->opfamily[iclause->indexcol]) ==
				BTEqualStrategyNumber)
				return true;
		}
	}
	return false;
}

void
hnswcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	GenericCosts costs;
	IndexOptInfo *index = path->indexinfo;
	double		ntuples = Max(index->tuples, 1);
	double		npages = Max(index->pages, 1);
	Relation	rel;
	int			m;
	int			dims;
	double		levels;
	double		visited;
	double		batch;
	double		dist_cost;
	double		node_cost;
	double		row_cost;
	double		spc_seq_page_cost;
	double		spc_random_page_cost;
	double		page_scale = 1.0;
	bool		keydir;
	int			nkeys;
	int			slots_per_page;

	/*
	 * Without an ORDER BY on the distance the index is useless: it cannot
	 * return rows in any useful order, and its key columns only filter.
	 */
	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	rel = index_open(index->indexoid, NoLock);
	m = HnswGetM(rel);
	{
		const HnswInfo *info = HnswGetInfo(rel);

		keydir = info->keydir;
		nkeys = info->nkeys;
		slots_per_page = info->slots_per_page;
	}
	dims = TupleDescAttr(RelationGetDescr(rel), 0)->atttypmod;
	index_close(rel, NoLock);
	if (dims <= 0)
		dims = 128;				/* unknown here; a common size */
	dist_cost = HnswDistanceCost(dims);

	/* first batch: descent plus a layer-0 search of ef_search nodes */
	levels = log(ntuples) / log((double) m);
	visited = levels * m + (double) hnsw_ef_search * m * 1.2;
	visited = Min(visited, ntuples);
	batch = Min((double) hnsw_ef_search, ntuples);

	MemSet(&costs, 0, sizeof(costs));
	costs.numIndexTuples = visited;
	genericcostestimate(root, path, loop_count, &costs);

	/*
	 * Pages are read in graph order, not sequentially, but a small index
	 * stays in shared buffers: charge random_page_cost only for as many
	 * pages as the search can touch, and no more than reading the whole
	 * index sequentially.
	 */
	get_tablespace_page_costs(index->reltablespace, &spc_random_page_cost,
							  &spc_seq_page_cost);
	{
		double		charged = costs.numIndexPages * spc_random_page_cost;
		double		pages_cost = Min(charged, npages * spc_seq_page_cost);
		double		vecbytes = VARHDRSZ + 4.0 + 4.0 * dims;

		/*
		 * Wide vectors live in TOAST, which the competing plan (a sequential
		 * scan of the heap, a distance per row, a sort) reads in full without
		 * being charged for it: its cost counts only the heap's own pages.
		 * Scale the search's page cost by the same undercount, so the index
		 * is compared fairly with a plan that really reads every vector.
		 */
		if (vecbytes > TOAST_TUPLE_THRESHOLD)
		{
			double		heappages = Max(index->rel->pages, 1);
			double		toastpages = index->rel->tuples * vecbytes / (BLCKSZ * 0.9);

			page_scale = heappages / (heappages + Max(toastpages, 0));
			pages_cost *= page_scale;
		}
		costs.indexTotalCost -= charged - pages_cost;
	}
	costs.indexTotalCost += visited * dist_cost;
	*indexStartupCost = costs.indexTotalCost;

	/*
	 * Each further row: about m newly met neighbours, each a distance, an
	 * index tuple's CPU and its share of a page read in graph order.
	 */
	node_cost = dist_cost + cpu_index_tuple_cost +
		(npages / ntuples) * spc_random_page_cost * page_scale;
	row_cost = m * node_cost;
	*indexTotalCost = costs.indexTotalCost + (ntuples - batch) * row_cost;

	/* filter keys: ef_search matches take 1/s times the nodes, or a sweep */
	if (path->indexclauses != NIL)
	{
		double		s = Max(costs.indexSelectivity, 1.0 / ntuples);
		double		nodes = Min(visited / s, ntuples);
		double		budget = Max(Min((double) hnsw_max_scan_tuples, ntuples / 8),
								 (double) hnsw_ef_search * 2 * m);
		double		graph = nodes * (node_cost + cpu_operator_cost);
		double		spp = Max(slots_per_page, 1);
		double		sweep_pages = npages;
		double		sweep;

		/*
		 * With an equality on a key and a key directory, the sweep reads
		 * the directory and the pages whose summary has the key's bit:
		 * those holding a match, 1 - (1 - s)^slots_per_page of them, and
		 * false positives, at most (slots_per_page * nkeys) / 256 (one bit
		 * per key of each slot).  If those are fewer than the graph's
		 * early give-up (an eighth of its budget), the scan sweeps at once.
		 */
		if (keydir && HasEqualityQual(path))
		{
			double		frac = 1.0 - pow(1.0 - Min(s, 1.0), spp) + spp * nkeys / 256.0;

			sweep_pages = npages * Min(frac, 1.0) + npages / HNSW_KEYDIR_PER_PAGE;
			if (sweep_pages <= budget / 8)
				budget = 0;
		}

		/*
		 * The scan gives up on the graph at an eighth of the budget when
		 * the matches met so far project to fewer than 4 * ef_search by
		 * the budget (HnswSearchLayer), i.e. when s * budget < 4 * ef.
		 */
		if (s * budget < 4.0 * hnsw_ef_search)
			budget /= 8;
		sweep = budget * (node_cost + cpu_operator_cost) +
			sweep_pages * spc_seq_page_cost +
			Min(sweep_pages * spp, ntuples) * cpu_operator_cost +
			ntuples * s * dist_cost;

		*indexStartupCost = (budget > 0 && nodes <= budget) ? graph : Min(graph, sweep);
		*indexTotalCost = *indexStartupCost + ntuples * s * cpu_operator_cost;
	}

	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}
