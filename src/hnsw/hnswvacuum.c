/*-------------------------------------------------------------------------
 *
 * hnswvacuum.c
 *	  Remove dead heap TIDs from an hnsw index, repair the graph around
 *	  them and free their slots for reuse.
 *
 * Pass 1 sweeps the node pages and flags every node whose heap row is dead
 * (HNSW_SLOT_DELETED; scans and inserts may still route through it but
 * never return or link to it), keeping its links in memory.  Then it waits
 * for inserts that began before the flags were set (the update lock), and
 * moves the entry point if it was deleted.  Pass 2 repairs every live node
 * that links to a deleted one locally: its new list is chosen with the
 * selection heuristic from its live neighbours plus the deleted
 * neighbours' live neighbours (FreshDiskANN-style), instead of a new
 * search.  Pass 3 frees the upper tuples and slots of the deleted nodes.
 * Every page change is one generic WAL record touching one page (plus the
 * metapage where noted).
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswvacuum.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw.h"

typedef struct DeadNode
{
	uint32		nid;
	int			level;
	ItemPointerData uppertid;
	uint32	   *links;			/* m0 level-0 links, then level x m */
} DeadNode;

typedef struct VacState
{
	Relation	index;
	const HnswInfo *info;
	HnswVisited dead;			/* bitmap of deleted nids */
	DeadNode   *nodes;
	int			ndead;
	int			maxdead;
	uint32		best_nid;		/* highest-level live node */
	int			best_level;
	double		live;
	MemoryContext ctx;
} VacState;

static bool
IsDead(VacState *vs, uint32 nid)
{
	uint32		w = nid / 64;

	return w < vs->dead.nwords && (vs->dead.words[w] & (UINT64CONST(1) << (nid % 64)));
}

static DeadNode *
FindDead(VacState *vs, uint32 nid)
{
	int			lo = 0,
				hi = vs->ndead - 1;

	/* nodes are collected in nid order */
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (vs->nodes[mid].nid == nid)
			return &vs->nodes[mid];
		if (vs->nodes[mid].nid < nid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static void
RememberDead(VacState *vs, uint32 nid, HnswSlotHeader *slot)
{
	const HnswInfo *info = vs->info;
	DeadNode   *d;
	int			nlinks = info->m0 + slot->level * info->m;

	if (vs->ndead == vs->maxdead)
	{
		vs->maxdead *= 2;
		vs->nodes = repalloc_huge(vs->nodes, sizeof(DeadNode) * vs->maxdead);
	}
	d = &vs->nodes[vs->ndead++];
	d->nid = nid;
	d->level = slot->level;
	d->uppertid = slot->uppertid;
	d->links = MemoryContextAlloc(vs->ctx, sizeof(uint32) * nlinks);
	memcpy(d->links, HnswSlotLinks(info, slot), sizeof(uint32) * info->m0);
	memset(d->links + info->m0, 0xFF, sizeof(uint32) * slot->level * info->m);
	HnswVisitedTestAndSet(&vs->dead, nid);
}

/* Pass 1: flag dead nodes */
static void
MarkDead(VacState *vs, IndexBulkDeleteCallback callback, void *callback_state,
		 IndexBulkDeleteResult *stats)
{
	const HnswInfo *info = vs->info;
	Relation	index = vs->index;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		int			todo[HNSW_SLOTS_SPACE / 8];
		int			ntodo = 0;

		vacuum_delay_point();
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (HnswPageType(page) != HNSW_PAGE_NODE)
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		for (int s = 0; s < info->slots_per_page; s++)
		{
			HnswSlotHeader *slot = HnswPageGetSlot(info, page, s);

			if (!(slot->flags & HNSW_SLOT_USED))
				continue;
			/* a node left deleted by an interrupted vacuum is finished now */
			if ((slot->flags & HNSW_SLOT_DELETED) || callback(&slot->heaptid, callback_state))
				todo[ntodo++] = s;
			else
			{
				vs->live++;
				if ((int) slot->level > vs->best_level)
				{
					vs->best_level = slot->level;
					vs->best_nid = HnswMakeNid(info, blkno, s);
				}
			}
		}
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		if (ntodo > 0)
		{
			GenericXLogState *state;

			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			state = GenericXLogStart(index);
			page = GenericXLogRegisterBuffer(state, buf, 0);
			for (int i = 0; i < ntodo; i++)
			{
				HnswSlotHeader *slot = HnswPageGetSlot(info, page, todo[i]);

				/* the slot is unchanged: only vacuum frees slots */
				slot->flags |= HNSW_SLOT_DELETED;
				RememberDead(vs, HnswMakeNid(info, blkno, todo[i]), slot);
				stats->tuples_removed++;
			}
			GenericXLogFinish(state);
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		}
		ReleaseBuffer(buf);
	}

	/* the upper links of the dead nodes, for repairs at upper levels */
	for (int i = 0; i < vs->ndead; i++)
	{
		DeadNode   *d = &vs->nodes[i];

		for (int l = 1; l <= d->level; l++)
			HnswReadLinks(index, info, d->nid, l, d->links + info->m0 + (l - 1) * info->m, NULL);
	}
}

typedef struct RepairArg
{
	const HnswInfo *info;
	const float *vectors;
} RepairArg;

static double
RepairPairDist(void *arg, int i, int j)
{
	RepairArg  *a = arg;

	return HnswDistance(a->info, a->vectors + (int64) i * a->info->dims,
						a->vectors + (int64) j * a->info->dims);
}

/*
 * Choose a new list for node x at a level from its live neighbours and the
 * live neighbours of its dead ones.
 */
static int
RepairList(VacState *vs, uint32 x, const float *xvec, int level, const uint32 *old,
		   uint32 *newlist)
{
	const HnswInfo *info = vs->info;
	int			cap = HnswLayerCapacity(info, level);
	uint32	   *pool;
	int			npool = 0;
	HnswSearch	s;
	double	   *dists;
	uint8	   *flags;
	HnswCandidate *cands;
	float	   *vectors;
	int			ncands = 0;
	uint32		keep[HNSW_MAX_M * 2];
	int			nkeep;
	RepairArg	arg;
	HnswVisited seen;

	pool = palloc(sizeof(uint32) * cap * (cap + 1));
	HnswVisitedInit(&seen, 1024);
	HnswVisitedTestAndSet(&seen, x);
	for (int i = 0; i < cap && old[i] != HNSW_INVALID_NID; i++)
	{
		if (!IsDead(vs, old[i]))
		{
			if (!HnswVisitedTestAndSet(&seen, old[i]))
				pool[npool++] = old[i];
		}
		else
		{
			DeadNode   *d = FindDead(vs, old[i]);
			uint32	   *dl;

			if (d == NULL || d->level < level)
				continue;
			dl = level == 0 ? d->links : d->links + info->m0 + (level - 1) * info->m;
			for (int k = 0; k < cap && dl[k] != HNSW_INVALID_NID; k++)
			{
				if (!IsDead(vs, dl[k]) && !HnswVisitedTestAndSet(&seen, dl[k]))
					pool[npool++] = dl[k];
			}
		}
	}

	/* distances and vectors of the pool, read block by block */
	HnswSearchInit(&s, vs->index, info, xvec);
	dists = palloc(sizeof(double) * Max(npool, 1));
	flags = palloc(sizeof(uint8) * Max(npool, 1));
	HnswScoreNodes(&s, pool, npool, dists, flags);
	cands = palloc(sizeof(HnswCandidate) * Max(npool, 1));
	for (int i = 0; i < npool; i++)
	{
		if ((flags[i] & HNSW_SLOT_USED) && !(flags[i] & HNSW_SLOT_DELETED))
		{
			cands[ncands].nid = pool[i];
			cands[ncands].distance = dists[i];
			ncands++;
		}
	}
	qsort(cands, ncands, sizeof(HnswCandidate), HnswCandidateCmp);

	/* at upper levels a candidate must reach that level */
	vectors = palloc(sizeof(float) * info->dims * Max(ncands, 1));
	{
		int			n2 = 0;

		for (int i = 0; i < ncands; i++)
		{
			Buffer		buf = ReadBuffer(vs->index, HnswNidBlock(info, cands[i].nid));
			HnswSlotHeader *slot;
			bool		ok;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			slot = HnswPageGetSlot(info, BufferGetPage(buf), HnswNidSlot(info, cands[i].nid));
			ok = (slot->flags & HNSW_SLOT_USED) && slot->level >= level;
			if (ok)
			{
				HnswLoadVector(info, HnswSlotVector(info, slot), vectors + (int64) n2 * info->dims);
				cands[n2++] = cands[i];
			}
			UnlockReleaseBuffer(buf);
		}
		ncands = n2;
	}
	arg.info = info;
	arg.vectors = vectors;
	nkeep = HnswSelectNeighbors(info, cands, ncands, cap, NULL, keep, RepairPairDist, &arg);
	for (int k = 0; k < cap; k++)
		newlist[k] = k < nkeep ? cands[keep[k]].nid : HNSW_INVALID_NID;
	return nkeep;
}

/*
 * Repair the list of node x at a level, living in page blkno (node page at
 * level 0, upper page above).  Optimistic: the list is re-checked under the
 * exclusive lock; if an insert changed it, start over; after a few tries,
 * just drop the dead links.
 */
static void
RepairNode(VacState *vs, uint32 x, int level, BlockNumber blkno, ItemPointer uppertid,
		   const float *xvec)
{
	const HnswInfo *info = vs->info;
	int			cap = HnswLayerCapacity(info, level);

	for (int attempt = 0;; attempt++)
	{
		uint32		old[HNSW_MAX_M * 2];
		uint32		newlist[HNSW_MAX_M * 2];
		Buffer		buf;
		uint32	   *links;
		GenericXLogState *state;
		Page		page;
		bool		hasdead = false;

		buf = ReadBuffer(vs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		links = NULL;
		page = BufferGetPage(buf);
		if (level == 0)
			links = HnswSlotLinks(info, HnswPageGetSlot(info, page, HnswNidSlot(info, x)));
		else
		{
			OffsetNumber off = ItemPointerGetOffsetNumber(uppertid);

			if (HnswPageType(page) == HNSW_PAGE_UPPER &&
				off <= PageGetMaxOffsetNumber(page) && ItemIdIsNormal(PageGetItemId(page, off)))
			{
				HnswUpperTuple up = (HnswUpperTuple) PageGetItem(page, PageGetItemId(page, off));

				if (up->nid == x && up->level >= level)
					links = up->links + (level - 1) * info->m;
			}
		}
		if (links == NULL)
		{
			UnlockReleaseBuffer(buf);
			return;
		}
		memcpy(old, links, sizeof(uint32) * cap);
		UnlockReleaseBuffer(buf);
		for (int i = 0; i < cap && old[i] != HNSW_INVALID_NID; i++)
			if (IsDead(vs, old[i]))
				hasdead = true;
		if (!hasdead)
			return;

		if (attempt < 3)
			RepairList(vs, x, xvec, level, old, newlist);
		else
		{
			int			n = 0;

			for (int i = 0; i < cap; i++)
				if (old[i] != HNSW_INVALID_NID && !IsDead(vs, old[i]))
					newlist[n++] = old[i];
			for (; n < cap; n++)
				newlist[n] = HNSW_INVALID_NID;
		}

		buf = ReadBuffer(vs->index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(vs->index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		if (level == 0)
			links = HnswSlotLinks(info, HnswPageGetSlot(info, page, HnswNidSlot(info, x)));
		else
		{
			HnswUpperTuple up = (HnswUpperTuple)
				PageGetItem(page, PageGetItemId(page, ItemPointerGetOffsetNumber(uppertid)));

			links = up->links + (level - 1) * info->m;
		}
		if (memcmp(links, old, sizeof(uint32) * cap) != 0)
		{
			GenericXLogAbort(state);
			UnlockReleaseBuffer(buf);
			continue;
		}
		memcpy(links, newlist, sizeof(uint32) * cap);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		return;
	}
}

/* Pass 2: repair live nodes that link to dead ones */
static void
RepairGraph(VacState *vs)
{
	const HnswInfo *info = vs->info;
	Relation	index = vs->index;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	float	   *xvec = palloc(sizeof(float) * info->dims);
	uint32	   *links = palloc(sizeof(uint32) * info->m0);
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum repair",
											  ALLOCSET_DEFAULT_SIZES);

	for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
	{
		for (int s = 0; s < info->slots_per_page; s++)
		{
			Buffer		buf;
			Page		page;
			HnswSlotHeader hdr;
			HnswSlotHeader *slot;
			uint32		x = HnswMakeNid(info, blkno, s);
			bool		hasdead = false;
			MemoryContext old;

			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (HnswPageType(page) != HNSW_PAGE_NODE)
			{
				UnlockReleaseBuffer(buf);
				break;
			}
			slot = HnswPageGetSlot(info, page, s);
			hdr = *slot;
			if ((hdr.flags & HNSW_SLOT_USED) && !(hdr.flags & HNSW_SLOT_DELETED))
			{
				uint32	   *l = HnswSlotLinks(info, slot);

				for (int i = 0; i < info->m0 && l[i] != HNSW_INVALID_NID; i++)
					if (IsDead(vs, l[i]))
						hasdead = true;
				HnswLoadVector(info, HnswSlotVector(info, slot), xvec);
			}
			UnlockReleaseBuffer(buf);
			if (!(hdr.flags & HNSW_SLOT_USED) || (hdr.flags & HNSW_SLOT_DELETED))
				continue;

			vacuum_delay_point();
			old = MemoryContextSwitchTo(tmp);
			if (hasdead)
				RepairNode(vs, x, 0, blkno, NULL, xvec);
			for (int l = 1; l <= hdr.level && ItemPointerIsValid(&hdr.uppertid); l++)
			{
				int			n = HnswReadLinks(index, info, x, l, links, NULL);
				bool		dead = false;

				for (int i = 0; i < n; i++)
					if (IsDead(vs, links[i]))
						dead = true;
				if (dead)
					RepairNode(vs, x, l, ItemPointerGetBlockNumber(&hdr.uppertid),
							   &hdr.uppertid, xvec);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(tmp);
		}
	}
	MemoryContextDelete(tmp);
}

/* Pass 3: free upper tuples, then slots; point the hints at the space */
static void
FreeDead(VacState *vs)
{
	const HnswInfo *info = vs->info;
	Relation	index = vs->index;
	BlockNumber lowest = InvalidBlockNumber;
	BlockNumber roomiest = InvalidBlockNumber;
	Size		roomiest_free = 0;
	int			i = 0;

	/* upper tuples */
	for (int k = 0; k < vs->ndead; k++)
	{
		DeadNode   *d = &vs->nodes[k];
		Buffer		buf;
		GenericXLogState *state;
		Page		page;
		OffsetNumber off;

		if (d->level == 0 || !ItemPointerIsValid(&d->uppertid))
			continue;
		vacuum_delay_point();
		off = ItemPointerGetOffsetNumber(&d->uppertid);
		buf = ReadBuffer(index, ItemPointerGetBlockNumber(&d->uppertid));
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		if (HnswPageType(page) == HNSW_PAGE_UPPER &&
			off <= PageGetMaxOffsetNumber(page) && ItemIdIsNormal(PageGetItemId(page, off)) &&
			((HnswUpperTuple) PageGetItem(page, PageGetItemId(page, off)))->nid == d->nid)
		{
			/*
			 * Not PageRepairFragmentation: it sorts at most
			 * MaxHeapTuplesPerPage items on its stack, and an upper page of
			 * small tuples (m <= 4) holds more.  This removes the tuple and
			 * closes its gap, leaving the other offsets as they are.
			 */
			PageIndexTupleDeleteNoCompact(page, off);
			GenericXLogFinish(state);
			if (PageGetFreeSpace(page) > roomiest_free)
			{
				roomiest_free = PageGetFreeSpace(page);
				roomiest = BufferGetBlockNumber(buf);
			}
		}
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
	}

	/* slots, one record per node page */
	while (i < vs->ndead)
	{
		BlockNumber blkno = HnswNidBlock(info, vs->nodes[i].nid);
		Buffer		buf;
		GenericXLogState *state;
		Page		page;

		vacuum_delay_point();
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		for (; i < vs->ndead && HnswNidBlock(info, vs->nodes[i].nid) == blkno; i++)
		{
			HnswSlotHeader *slot = HnswPageGetSlot(info, page, HnswNidSlot(info, vs->nodes[i].nid));

			if (slot->flags & HNSW_SLOT_DELETED)
			{
				memset(slot, 0, info->slot_size);
				HnswPageGetOpaque(page)->nused--;
			}
		}
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		if (!BlockNumberIsValid(lowest) || blkno < lowest)
			lowest = blkno;
	}

	/* hints */
	if (BlockNumberIsValid(lowest) || BlockNumberIsValid(roomiest))
	{
		Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
		GenericXLogState *state;
		HnswMetaPage meta;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		meta = HnswPageGetMeta(GenericXLogRegisterBuffer(state, buf, 0));
		if (BlockNumberIsValid(lowest) &&
			(!BlockNumberIsValid(meta->insert_page) || lowest < meta->insert_page))
			meta->insert_page = lowest;
		if (BlockNumberIsValid(roomiest))
			meta->upper_page = roomiest;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
}

typedef struct NodeVectors
{
	uint32		u;
	uint32		v;
} NodeVectors;

/* the vectors of two live nodes */
static bool
LoadPair(Relation index, const HnswInfo *info, NodeVectors *nv, float *uvec, float *vvec)
{
	uint32		nids[2] = {nv->u, nv->v};
	float	   *dest[2] = {uvec, vvec};

	for (int i = 0; i < 2; i++)
	{
		Buffer		buf = ReadBuffer(index, HnswNidBlock(info, nids[i]));
		HnswSlotHeader *slot;
		bool		ok;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		slot = HnswPageGetSlot(info, BufferGetPage(buf), HnswNidSlot(info, nids[i]));
		ok = (slot->flags & HNSW_SLOT_USED) && !(slot->flags & HNSW_SLOT_DELETED);
		if (ok)
			HnswLoadVector(info, HnswSlotVector(info, slot), dest[i]);
		UnlockReleaseBuffer(buf);
		if (!ok)
			return false;
	}
	return true;
}

/* Move the entry point off a deleted node; caller holds the update lock */
static void
FixEntryPoint(VacState *vs)
{
	Buffer		buf = ReadBuffer(vs->index, HNSW_METAPAGE_BLKNO);
	GenericXLogState *state;
	HnswMetaPage meta;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	meta = HnswPageGetMeta(BufferGetPage(buf));
	if (meta->entry_nid != HNSW_INVALID_NID && IsDead(vs, meta->entry_nid))
	{
		uint32		nid = vs->best_level >= 0 ? vs->best_nid : HNSW_INVALID_NID;
		int			level = vs->best_level;
		HnswSlotHeader hdr;
		uint32		dummy[HNSW_MAX_M * 2];

		/* a node inserted since pass 1 may be higher; the entry must be highest */
		if (nid != HNSW_INVALID_NID)
		{
			HnswReadLinks(vs->index, vs->info, nid, 0, dummy, &hdr);
			if (!(hdr.flags & HNSW_SLOT_USED) || (hdr.flags & HNSW_SLOT_DELETED))
				nid = HNSW_INVALID_NID, level = -1;
		}
		state = GenericXLogStart(vs->index);
		meta = HnswPageGetMeta(GenericXLogRegisterBuffer(state, buf, 0));
		meta->entry_nid = nid;
		meta->entry_level = nid == HNSW_INVALID_NID ? -1 : level;
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
}

IndexBulkDeleteResult *
hnswbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	VacState	vs;
	MemoryContext old;

	if (stats == NULL)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));

	memset(&vs, 0, sizeof(vs));
	vs.index = index;
	vs.info = HnswGetInfo(index);
	vs.ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum context",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(vs.ctx);
	HnswVisitedInit(&vs.dead, 1024);
	vs.maxdead = 256;
	vs.nodes = palloc(sizeof(DeadNode) * vs.maxdead);
	vs.best_level = -1;
	vs.best_nid = HNSW_INVALID_NID;

	MarkDead(&vs, callback, callback_state, stats);
	if (vs.ndead > 0)
	{
		/* wait for inserts that may not have seen the flags */
		LockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
		FixEntryPoint(&vs);
		UnlockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);

		RepairGraph(&vs);
		FreeDead(&vs);
	}

	stats->num_pages = RelationGetNumberOfBlocks(index);
	stats->num_index_tuples = vs.live;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(vs.ctx);
	return stats;
}

/*
 * Make v link to u at level 0: append if v has room, else replace the link
 * whose target has the most other in-links (at least 2), so no node loses
 * its last in-link.  indeg counts level-0 in-links.  False if v is gone or
 * no link can be replaced safely.
 */
static bool
LinkFrom(Relation index, const HnswInfo *info, uint32 v, uint32 u, uint32 *indeg)
{
	Buffer		buf = ReadBuffer(index, HnswNidBlock(info, v));
	HnswSlotHeader *slot;
	uint32	   *links;
	int			n = 0;
	int			pos = -1;
	GenericXLogState *state;
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	slot = HnswPageGetSlot(info, BufferGetPage(buf), HnswNidSlot(info, v));
	if (!(slot->flags & HNSW_SLOT_USED) || (slot->flags & HNSW_SLOT_DELETED))
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	links = HnswSlotLinks(info, slot);
	while (n < info->m0 && links[n] != HNSW_INVALID_NID)
	{
		if (links[n] == u)
		{
			UnlockReleaseBuffer(buf);
			return true;
		}
		n++;
	}
	if (n < info->m0)
		pos = n;
	else
	{
		for (int k = 0; k < n; k++)
			if (indeg[links[k]] >= 2 && (pos < 0 || indeg[links[k]] > indeg[links[pos]]))
				pos = k;
	}
	if (pos < 0)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	links = HnswSlotLinks(info, HnswPageGetSlot(info, page, HnswNidSlot(info, v)));
	if (pos < n)
		indeg[links[pos]]--;
	links[pos] = u;
	indeg[u]++;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	return true;
}

/*
 * Link orphan u from the nearest reached node, found by a search from the
 * entry point, that can take it.
 */
static bool
LinkFromSearch(Relation index, const HnswInfo *info, HnswMetaPageData *meta, uint32 u,
			   float *uvec, bool *reached, uint64 nslots, uint32 *indeg)
{
	HnswSearch	search;
	float	   *vvec = palloc(sizeof(float) * info->dims);
	NodeVectors nv;

	nv.u = u;
	nv.v = meta->entry_nid;
	if (!LoadPair(index, info, &nv, uvec, vvec))
		return false;
	HnswSearchInit(&search, index, info, uvec);
	HnswSearchEnter(&search, meta->entry_nid);
	for (int l = meta->entry_level; l > 0; l--)
		HnswSearchGreedy(&search, l);
	HnswSearchLayer(&search, 0, info->ef_construction);
	qsort(search.results.items, search.results.count, sizeof(HnswCandidate), HnswCandidateCmp);
	for (int i = 0; i < search.results.count; i++)
	{
		uint32		v = search.results.items[i].nid;

		if (v != u && v < nslots && reached[v] && LinkFrom(index, info, v, u, indeg))
			return true;
	}
	return false;
}

/*
 * Link every live node that no search can reach (later inserts' pruning can
 * drop a node's last in-link) from its nearest reachable neighbour.  Needs
 * the level-0 links of all nodes in memory; skipped if they would exceed
 * maintenance_work_mem.
 */
static bool
ReconnectOrphans(Relation index)
{
	const HnswInfo *info = HnswGetInfo(index);
	HnswMetaPageData meta;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	uint64		nslots = (uint64) nblocks * info->slots_per_page;
	uint32	   *links;
	uint8	   *flags;
	bool	   *reached;
	uint32	   *queue;
	uint64		head = 0,
				tail = 0;
	float	   *uvec = palloc(sizeof(float) * info->dims);
	int64		fixed = 0;
	uint32	   *indeg;

	HnswReadMeta(index, &meta);
	if (meta.entry_nid == HNSW_INVALID_NID ||
		nslots * (info->m0 * sizeof(uint32) + 6) > (uint64) maintenance_work_mem * 1024)
		return false;

	links = palloc_extended(sizeof(uint32) * info->m0 * nslots, MCXT_ALLOC_HUGE);
	flags = palloc_extended(nslots, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	reached = palloc_extended(sizeof(bool) * nslots, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	queue = palloc_extended(sizeof(uint32) * nslots, MCXT_ALLOC_HUGE);
	for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;

		vacuum_delay_point();
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (HnswPageType(page) == HNSW_PAGE_NODE)
		{
			for (int s = 0; s < info->slots_per_page; s++)
			{
				HnswSlotHeader *slot = HnswPageGetSlot(info, page, s);
				uint32		nid = HnswMakeNid(info, blkno, s);

				flags[nid] = slot->flags;
				memcpy(links + (uint64) nid * info->m0, HnswSlotLinks(info, slot),
					   sizeof(uint32) * info->m0);
			}
		}
		UnlockReleaseBuffer(buf);
	}
	if (meta.entry_nid >= nslots)
		return false;
	indeg = palloc_extended(sizeof(uint32) * nslots, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (uint64 x = 0; x < nslots; x++)
	{
		uint32	   *l = links + x * info->m0;

		if (!(flags[x] & HNSW_SLOT_USED) || (flags[x] & HNSW_SLOT_DELETED))
			continue;
		for (int k = 0; k < info->m0 && l[k] != HNSW_INVALID_NID; k++)
			if (l[k] < nslots)
				indeg[l[k]]++;
	}
	reached[meta.entry_nid] = true;
	queue[tail++] = meta.entry_nid;
	for (;;)
	{
		bool		progress = false;
		uint32		first_orphan = HNSW_INVALID_NID;

		while (head < tail)
		{
			uint32	   *l = links + (uint64) queue[head++] * info->m0;

			for (int k = 0; k < info->m0 && l[k] != HNSW_INVALID_NID; k++)
			{
				if (l[k] < nslots && !reached[l[k]] && (flags[l[k]] & HNSW_SLOT_USED))
				{
					reached[l[k]] = true;
					queue[tail++] = l[k];
				}
			}
		}
		for (uint64 u = 0; u < nslots; u++)
		{
			uint32	   *l;

			if (reached[u] || !(flags[u] & HNSW_SLOT_USED) || (flags[u] & HNSW_SLOT_DELETED))
				continue;
			if (first_orphan == HNSW_INVALID_NID)
				first_orphan = (uint32) u;
			l = links + u * info->m0;
			for (int k = 0; k < info->m0 && l[k] != HNSW_INVALID_NID; k++)
			{
				uint32		v = l[k];

				if (v >= nslots || !reached[v] || (flags[v] & HNSW_SLOT_DELETED))
					continue;
				if (LinkFrom(index, info, v, (uint32) u, indeg))
				{
					reached[u] = true;
					queue[tail++] = (uint32) u;
					progress = true;
					break;
				}
			}
			if (progress)
				break;
		}

		/*
		 * No orphan has a reachable neighbour (an isolated cluster): link the
		 * first one from the nearest node a search for it finds.
		 */
		if (!progress && first_orphan != HNSW_INVALID_NID)
		{
			if (LinkFromSearch(index, info, &meta, first_orphan, uvec, reached, nslots, indeg))
			{
				reached[first_orphan] = true;
				queue[tail++] = first_orphan;
				progress = true;
			}
		}
		if (!progress)
			break;
		fixed++;
	}
	elog(DEBUG1, "hnsw: linked %lld unreachable nodes of \"%s\"", (long long) fixed,
		 RelationGetRelationName(index));
	return fixed > 0;
}

IndexBulkDeleteResult *
hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	Relation	index = info->index;

	if (info->analyze_only)
		return stats;

	/* a replaced link can orphan another node: a few rounds */
	for (int round = 0; round < 3; round++)
		if (!ReconnectOrphans(index))
			break;

	if (stats == NULL)
	{
		const HnswInfo *hi = HnswGetInfo(index);
		BlockNumber nblocks = RelationGetNumberOfBlocks(index);

		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
		for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
		{
			Buffer		buf = ReadBuffer(index, blkno);
			Page		page;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (HnswPageType(page) == HNSW_PAGE_NODE)
			{
				for (int s = 0; s < hi->slots_per_page; s++)
				{
					HnswSlotHeader *slot = HnswPageGetSlot(hi, page, s);

					if ((slot->flags & HNSW_SLOT_USED) && !(slot->flags & HNSW_SLOT_DELETED))
						stats->num_index_tuples++;
				}
			}
			UnlockReleaseBuffer(buf);
		}
	}
	stats->num_pages = RelationGetNumberOfBlocks(index);
	return stats;
}
