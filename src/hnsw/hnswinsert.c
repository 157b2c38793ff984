/*-------------------------------------------------------------------------
 *
 * hnswinsert.c
 *	  Insert one row into the on-disk hnsw graph.
 *
 * An insert searches the graph like a scan (with ef_construction), picks
 * its neighbours with the selection heuristic, writes its node in one WAL
 * record (node page, upper page, metapage if the entry point or a page
 * hint changes) and then adds a link back from each neighbour, one WAL
 * record per neighbour.  A neighbour's full list is re-pruned from the
 * stored vectors; the list is read, pruned without any lock held, and
 * written only if it did not change meanwhile (else the step is retried).
 * No two buffer locks are ever held except node page -> upper page ->
 * metapage, in that order, when a node is written.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswinsert.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw.h"

/* Vectors of a set of nodes, read block by block */
typedef struct NodeSet
{
	int			n;
	uint32	   *nids;
	uint8	   *flags;
	float	   *vectors;		/* n x dims */
} NodeSet;

typedef struct SortIdx
{
	uint32		nid;
	int			idx;
} SortIdx;

static int
sortidx_cmp(const void *a, const void *b)
{
	const SortIdx *x = a;
	const SortIdx *y = b;

	return x->nid < y->nid ? -1 : x->nid > y->nid ? 1 : 0;
}

static void
FetchNodes(Relation index, const HnswInfo *info, NodeSet *set)
{
	SortIdx    *order = palloc(sizeof(SortIdx) * Max(set->n, 1));
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page		page = NULL;

	for (int i = 0; i < set->n; i++)
	{
		order[i].nid = set->nids[i];
		order[i].idx = i;
	}
	qsort(order, set->n, sizeof(SortIdx), sortidx_cmp);
	for (int k = 0; k < set->n; k++)
	{
		int			i = order[k].idx;
		BlockNumber blkno = HnswNidBlock(info, order[k].nid);
		HnswSlotHeader *slot;

		if (blkno != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			cur = blkno;
		}
		set->flags[i] = 0;
		if (HnswPageType(page) != HNSW_PAGE_NODE)
			continue;
		slot = HnswPageGetSlot(info, page, HnswNidSlot(info, order[k].nid));
		set->flags[i] = slot->flags;
		if (slot->flags & HNSW_SLOT_USED)
			HnswLoadVector(info, HnswSlotVector(info, slot),
						   set->vectors + (int64) i * info->dims);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	pfree(order);
}

static void
NodeSetInit(NodeSet *set, const HnswInfo *info, int n)
{
	set->n = n;
	set->nids = palloc(sizeof(uint32) * Max(n, 1));
	set->flags = palloc(sizeof(uint8) * Max(n, 1));
	set->vectors = palloc(sizeof(float) * info->dims * Max(n, 1));
}

/*
 * Scratch memory is given back as soon as it is no longer needed: an insert
 * re-prunes up to 2m lists, and letting each one's vectors pile up in the
 * insert's context made the context grow past glibc's trim threshold, so
 * that every insert paid for fresh, zero-filled pages (page faults were a
 * fifth of an insert's CPU time).
 */
static void
NodeSetFree(NodeSet *set)
{
	pfree(set->nids);
	pfree(set->flags);
	pfree(set->vectors);
}

typedef struct PairArg
{
	const HnswInfo *info;
	const float *vectors;
} PairArg;

static double
PairDist(void *arg, int i, int j)
{
	PairArg    *a = arg;

	return HnswDistance(a->info, a->vectors + (int64) i * a->info->dims,
						a->vectors + (int64) j * a->info->dims);
}

/* The neighbours chosen at one level, with their vectors */
typedef struct LevelChoice
{
	int			n;
	HnswCandidate cands[HNSW_MAX_M * 2];
	float	   *vectors;		/* n x dims */
} LevelChoice;

/*
 * Choose the neighbours of a new node at one level from the search results:
 * load the candidates, drop deleted or recycled ones, apply the heuristic.
 */
static void
ChooseNeighbors(Relation index, const HnswInfo *info, HnswHeap *results, int level,
				LevelChoice *choice)
{
	int			n = results->count;
	HnswCandidate *cands = palloc(sizeof(HnswCandidate) * Max(n, 1));
	NodeSet		set;
	int			live = 0;
	uint32		keep[HNSW_MAX_M * 2];
	PairArg		arg;
	int			nkeep;
	float	   *vectors;

	memcpy(cands, results->items, sizeof(HnswCandidate) * n);
	qsort(cands, n, sizeof(HnswCandidate), HnswCandidateCmp);
	NodeSetInit(&set, info, n);
	for (int i = 0; i < n; i++)
		set.nids[i] = cands[i].nid;
	FetchNodes(index, info, &set);

	/* compact to the live candidates, keeping vectors aligned */
	vectors = palloc(sizeof(float) * info->dims * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if ((set.flags[i] & HNSW_SLOT_USED) && !(set.flags[i] & HNSW_SLOT_DELETED))
		{
			cands[live] = cands[i];
			memcpy(vectors + (int64) live * info->dims, set.vectors + (int64) i * info->dims,
				   sizeof(float) * info->dims);
			live++;
		}
	}
	arg.info = info;
	arg.vectors = vectors;
	nkeep = HnswSelectNeighbors(info, cands, live, HnswLayerCapacity(info, level),
								NULL, keep, PairDist, &arg);
	choice->n = nkeep;
	choice->vectors = palloc(sizeof(float) * info->dims * Max(nkeep, 1));
	for (int k = 0; k < nkeep; k++)
	{
		choice->cands[k] = cands[keep[k]];
		memcpy(choice->vectors + (int64) k * info->dims, vectors + (int64) keep[k] * info->dims,
			   sizeof(float) * info->dims);
	}
	NodeSetFree(&set);
	pfree(vectors);
	pfree(cands);
}

/*
 * Pointer to the links of node nid at level in a locked page, or NULL if
 * the page no longer holds them (node freed or reused).
 */
static uint32 *
LinksInPage(const HnswInfo *info, Page page, uint32 nid, int level,
			ItemPointer uppertid, ItemPointer heaptid)
{
	if (level == 0)
	{
		HnswSlotHeader *slot;

		if (HnswPageType(page) != HNSW_PAGE_NODE)
			return NULL;
		slot = HnswPageGetSlot(info, page, HnswNidSlot(info, nid));
		if (!(slot->flags & HNSW_SLOT_USED) || (slot->flags & HNSW_SLOT_DELETED) ||
			!ItemPointerEquals(&slot->heaptid, heaptid))
			return NULL;
		return HnswSlotLinks(info, slot);
	}
	else
	{
		OffsetNumber off = ItemPointerGetOffsetNumber(uppertid);
		HnswUpperTuple up;

		if (HnswPageType(page) != HNSW_PAGE_UPPER ||
			off > PageGetMaxOffsetNumber(page) ||
			!ItemIdIsNormal(PageGetItemId(page, off)))
			return NULL;
		up = (HnswUpperTuple) PageGetItem(page, PageGetItemId(page, off));
		if (up->nid != nid || up->level < level)
			return NULL;
		return up->links + (level - 1) * info->m;
	}
}

/*
 * Make node x (at distance dist from the new node) link back to newnid at
 * level.  xvec is x's vector.  Returns whether x's list now holds newnid.
 * With force, newnid takes the last slot of a full list even when the
 * heuristic would drop it, so the new node has at least one link in.
 */
static const HnswCandidate *sort_unsorted;

static int
order_cmp(const void *a, const void *b)
{
	const HnswCandidate *x = &sort_unsorted[((const SortIdx *) a)->idx];
	const HnswCandidate *y = &sort_unsorted[((const SortIdx *) b)->idx];

	if (x->distance != y->distance)
		return x->distance < y->distance ? -1 : 1;
	return x->nid < y->nid ? -1 : x->nid > y->nid ? 1 : 0;
}

bool
HnswAddBackLink(Relation index, const HnswInfo *info, uint32 x, const float *xvec,
				int level, uint32 newnid, const float *newvec, double dist, bool force)
{
	int			cap = HnswLayerCapacity(info, level);
	HnswSlotHeader hdr;
	BlockNumber blkno;

	/* where x's list lives */
	{
		uint32		dummy[HNSW_MAX_M * 2];

		HnswReadLinks(index, info, x, 0, dummy, &hdr);
		if (!(hdr.flags & HNSW_SLOT_USED) || (hdr.flags & HNSW_SLOT_DELETED) ||
			(level > 0 && (hdr.level < level || !ItemPointerIsValid(&hdr.uppertid))))
			return false;
		blkno = level == 0 ? HnswNidBlock(info, x) : ItemPointerGetBlockNumber(&hdr.uppertid);
	}

	for (int attempt = 0; attempt < 3; attempt++)
	{
		Buffer		buf;
		uint32	   *links;
		uint32		old[HNSW_MAX_M * 2];
		uint32		newlist[HNSW_MAX_M * 2];
		int			n = 0;
		GenericXLogState *state;
		Page		page;
		NodeSet		set;
		HnswCandidate cands[HNSW_MAX_M * 2 + 1];
		HnswCandidate unsorted[HNSW_MAX_M * 2 + 1];
		const float *rows[HNSW_MAX_M * 2 + 1];
		SortIdx		order[HNSW_MAX_M * 2 + 1];
		uint32		keep[HNSW_MAX_M * 2 + 1];
		float	   *vectors;
		int			live = 0;
		int			nkeep;
		PairArg		arg;
		bool		kept_new = false;

		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		links = LinksInPage(info, BufferGetPage(buf), x, level, &hdr.uppertid, &hdr.heaptid);
		if (links == NULL)
		{
			UnlockReleaseBuffer(buf);
			return false;
		}
		while (n < cap && links[n] != HNSW_INVALID_NID)
		{
			if (links[n] == newnid)
			{
				UnlockReleaseBuffer(buf);
				return true;
			}
			n++;
		}
		if (n < cap)
		{
			/* room left: append */
			state = GenericXLogStart(index);
			page = GenericXLogRegisterBuffer(state, buf, 0);
			links = LinksInPage(info, page, x, level, &hdr.uppertid, &hdr.heaptid);
			links[n] = newnid;
			GenericXLogFinish(state);
			UnlockReleaseBuffer(buf);
			return true;
		}

		/* full: prune without holding the lock */
		memcpy(old, links, sizeof(uint32) * cap);
		UnlockReleaseBuffer(buf);

		NodeSetInit(&set, info, cap);
		memcpy(set.nids, old, sizeof(uint32) * cap);
		FetchNodes(index, info, &set);
		for (int i = 0; i < cap; i++)
		{
			/* dead and recycled neighbours are dropped here too */
			if (!(set.flags[i] & HNSW_SLOT_USED) || (set.flags[i] & HNSW_SLOT_DELETED))
				continue;
			unsorted[live].nid = old[i];
			unsorted[live].distance = HnswDistance(info, xvec, set.vectors + (int64) i * info->dims);
			rows[live] = set.vectors + (int64) i * info->dims;
			live++;
		}
		unsorted[live].nid = newnid;
		unsorted[live].distance = dist;
		rows[live] = newvec;
		live++;

		/* sort candidates by distance to x, their vectors along */
		for (int i = 0; i < live; i++)
		{
			order[i].nid = i;
			order[i].idx = i;
		}
		sort_unsorted = unsorted;
		qsort(order, live, sizeof(SortIdx), order_cmp);
		vectors = palloc(sizeof(float) * info->dims * live);
		for (int i = 0; i < live; i++)
		{
			cands[i] = unsorted[order[i].idx];
			memcpy(vectors + (int64) i * info->dims, rows[order[i].idx], sizeof(float) * info->dims);
		}
		arg.info = info;
		arg.vectors = vectors;
		nkeep = HnswSelectNeighbors(info, cands, live, cap, NULL, keep, PairDist, &arg);
		NodeSetFree(&set);
		pfree(vectors);
		for (int k = 0; k < cap; k++)
		{
			newlist[k] = k < nkeep ? cands[keep[k]].nid : HNSW_INVALID_NID;
			if (k < nkeep && newlist[k] == newnid)
				kept_new = true;
		}
		if (!kept_new && force)
		{
			newlist[Min(nkeep, cap - 1)] = newnid;
			kept_new = true;
		}
		if (!kept_new && nkeep == cap && memcmp(newlist, old, sizeof(uint32) * cap) == 0)
			return false;

		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		links = LinksInPage(info, BufferGetPage(buf), x, level, &hdr.uppertid, &hdr.heaptid);
		if (links == NULL)
		{
			UnlockReleaseBuffer(buf);
			return false;
		}
		if (memcmp(links, old, sizeof(uint32) * cap) != 0)
		{
			/* changed under us: start over */
			UnlockReleaseBuffer(buf);
			continue;
		}
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		links = LinksInPage(info, page, x, level, &hdr.uppertid, &hdr.heaptid);
		memcpy(links, newlist, sizeof(uint32) * cap);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		return kept_new;
	}
	return false;
}

/*
 * Extend the index by one page, returned exclusively locked.  The caller
 * registers it with GENERIC_XLOG_FULL_IMAGE and initializes it.
 */
static Buffer
ExtendIndex(Relation index)
{
	Buffer		buf;

	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBuffer(index, P_NEW);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

/*
 * Find a free slot, starting at the metapage's insert_page hint.  Returns
 * the node page exclusively locked, *isnew if it was just added.
 */
static Buffer
FindFreeSlot(Relation index, const HnswInfo *info, BlockNumber hint, int *slotno, bool *isnew)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber blkno = BlockNumberIsValid(hint) ? hint : nblocks;

	*isnew = false;
	for (; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			/* left all-zero by a crash after extending: take it */
			*isnew = true;
			*slotno = 0;
			return buf;
		}
		if (HnswPageType(page) == HNSW_PAGE_NODE &&
			HnswPageGetOpaque(page)->nused < info->slots_per_page)
		{
			for (int s = 0; s < info->slots_per_page; s++)
			{
				if (HnswPageGetSlot(info, page, s)->flags == 0)
				{
					*slotno = s;
					return buf;
				}
			}
		}
		UnlockReleaseBuffer(buf);
	}
	*isnew = true;
	*slotno = 0;
	return ExtendIndex(index);
}

/*
 * Write the new node and, in the same WAL record, its upper tuple and the
 * metapage changes.  Returns its nid.
 */
static uint32
WriteNode(Relation index, const HnswInfo *info, const float *vec, const char *keys,
		  ItemPointer heaptid, int level, LevelChoice *choices, bool newentry)
{
	HnswMetaPageData meta;
	Buffer		nbuf,
				ubuf = InvalidBuffer,
				mbuf = InvalidBuffer,
				dbuf = InvalidBuffer;
	int			di = -1;		/* key directory page of the node's block */
	BlockNumber dirblk = 0;
	uint64		dbits[HNSW_KEYDIR_ENTRY_WORDS];
	bool		nnew,
				unew = false;
	int			slotno;
	uint32		nid;
	GenericXLogState *state;
	Page		npage,
				upage = NULL,
				mpage = NULL;
	HnswSlotHeader *slot;
	uint32	   *links;
	BlockNumber newinsert;
	BlockNumber newupper = InvalidBlockNumber;
	Size		usz = HNSW_UPPER_SIZE(level, info->m);

	HnswReadMeta(index, &meta);
	nbuf = FindFreeSlot(index, info, meta.insert_page, &slotno, &nnew);
	newinsert = BufferGetBlockNumber(nbuf);
	nid = HnswMakeNid(info, newinsert, slotno);

	if (level > 0)
	{
		if (BlockNumberIsValid(meta.upper_page))
		{
			ubuf = ReadBuffer(index, meta.upper_page);
			LockBuffer(ubuf, BUFFER_LOCK_EXCLUSIVE);
			if (HnswPageType(BufferGetPage(ubuf)) != HNSW_PAGE_UPPER ||
				PageGetFreeSpace(BufferGetPage(ubuf)) < MAXALIGN(usz))
			{
				UnlockReleaseBuffer(ubuf);
				ubuf = InvalidBuffer;
			}
		}
		if (!BufferIsValid(ubuf))
		{
			ubuf = ExtendIndex(index);
			unew = true;
			newupper = BufferGetBlockNumber(ubuf);
		}
	}

	state = GenericXLogStart(index);
	npage = GenericXLogRegisterBuffer(state, nbuf, nnew ? GENERIC_XLOG_FULL_IMAGE : 0);
	if (nnew)
		HnswInitPage(npage, HNSW_PAGE_NODE, info);
	slot = HnswPageGetSlot(info, npage, slotno);
	memset(slot, 0, info->slot_size);
	slot->heaptid = *heaptid;
	slot->level = level;
	slot->flags = HNSW_SLOT_USED;
	ItemPointerSetInvalid(&slot->uppertid);
	links = HnswSlotLinks(info, slot);
	memset(links, 0xFF, sizeof(uint32) * info->m0);
	for (int k = 0; k < choices[0].n; k++)
		links[k] = choices[0].cands[k].nid;
	HnswStoreVector(info, HnswSlotVector(info, slot), vec);
	if (keys)
		memcpy(HnswSlotKeys(info, slot), keys, info->key_bytes);
	HnswPageGetOpaque(npage)->nused++;

	if (level > 0)
	{
		HnswUpperTuple up = palloc(usz);
		OffsetNumber off;

		upage = GenericXLogRegisterBuffer(state, ubuf, unew ? GENERIC_XLOG_FULL_IMAGE : 0);
		if (unew)
			HnswInitPage(upage, HNSW_PAGE_UPPER, info);
		memset(up, 0xFF, usz);
		up->nid = nid;
		up->level = level;
		up->unused = 0;
		for (int l = 1; l <= level; l++)
			for (int k = 0; k < choices[l].n; k++)
				up->links[(l - 1) * info->m + k] = choices[l].cands[k].nid;
		off = PageAddItem(upage, (Item) up, usz, InvalidOffsetNumber, false, false);
		if (off == InvalidOffsetNumber)
			elog(ERROR, "failed to add hnsw upper tuple");
		ItemPointerSet(&slot->uppertid, BufferGetBlockNumber(ubuf), off);
	}

	/*
	 * Key directory: the node's keys go into its block's summary in this
	 * same record (hnsw.h).  If this block's range has no directory page
	 * yet, it is created here, under the metapage lock.
	 */
	if (keys && meta.keydir &&
		newinsert / HNSW_KEYDIR_PER_PAGE < HNSW_KEYDIR_MAX)
	{
		Buffer		b = ReadBuffer(index, HNSW_METAPAGE_BLKNO);

		di = newinsert / HNSW_KEYDIR_PER_PAGE;
		HnswKeyDirSlotBits(info, keys, dbits);
		LockBuffer(b, BUFFER_LOCK_SHARE);
		dirblk = HnswPageGetMeta(BufferGetPage(b))->keydir_blocks[di];
		UnlockReleaseBuffer(b);
	}

	if (newentry || newinsert != meta.insert_page || BlockNumberIsValid(newupper) ||
		(di >= 0 && dirblk == 0))
	{
		HnswMetaPage m;

		mbuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
		LockBuffer(mbuf, BUFFER_LOCK_EXCLUSIVE);
		mpage = GenericXLogRegisterBuffer(state, mbuf, 0);
		m = HnswPageGetMeta(mpage);
		if (newentry)
		{
			m->entry_nid = nid;
			m->entry_level = level;
		}
		if (newinsert != meta.insert_page)
			m->insert_page = newinsert;
		if (BlockNumberIsValid(newupper))
			m->upper_page = newupper;
		if (di >= 0)
		{
			dirblk = m->keydir_blocks[di];
			if (dirblk == 0)
			{
				Page		dpage;

				dbuf = ExtendIndex(index);
				dpage = GenericXLogRegisterBuffer(state, dbuf, GENERIC_XLOG_FULL_IMAGE);
				HnswKeyDirInitPage(dpage, info);
				dirblk = m->keydir_blocks[di] = BufferGetBlockNumber(dbuf);
				memcpy(HnswKeyDirEntry(dpage, newinsert % HNSW_KEYDIR_PER_PAGE), dbits,
					   sizeof(dbits));
			}
		}
	}
	if (di >= 0 && !BufferIsValid(dbuf))
	{
		uint64	   *e;

		dbuf = ReadBuffer(index, dirblk);
		LockBuffer(dbuf, BUFFER_LOCK_EXCLUSIVE);
		if (HnswPageType(BufferGetPage(dbuf)) != HNSW_PAGE_KEYDIR)
			elog(ERROR, "hnsw key directory page %u of index \"%s\" is not one",
				 dirblk, RelationGetRelationName(index));
		e = HnswKeyDirEntry(BufferGetPage(dbuf), newinsert % HNSW_KEYDIR_PER_PAGE);
		if (HnswKeyDirNeedsWrite(e, dbits))
		{
			e = HnswKeyDirEntry(GenericXLogRegisterBuffer(state, dbuf, 0),
								newinsert % HNSW_KEYDIR_PER_PAGE);
			for (int w = 0; w < HNSW_KEYDIR_ENTRY_WORDS; w++)
				e[w] |= dbits[w];
		}
	}
	GenericXLogFinish(state);

	UnlockReleaseBuffer(nbuf);
	if (BufferIsValid(ubuf))
		UnlockReleaseBuffer(ubuf);
	if (BufferIsValid(mbuf))
		UnlockReleaseBuffer(mbuf);
	if (BufferIsValid(dbuf))
		UnlockReleaseBuffer(dbuf);
	return nid;
}

void
HnswInsertOnDisk(Relation index, const HnswInfo *info, const float *vec,
				 const char *keys, ItemPointer heaptid, bool building)
{
	HnswMetaPageData meta;
	int			level = HnswRandomLevel(info->m, NULL);
	LOCKMODE	lockmode = ShareLock;
	LevelChoice *choices;
	uint32		nid;
	bool		newentry;
	int			top;

	HnswReadMeta(index, &meta);
	if (level > meta.entry_level)
		lockmode = ExclusiveLock;
	LockPage(index, HNSW_UPDATE_LOCK, lockmode);
	HnswReadMeta(index, &meta);
	if (level > meta.entry_level && lockmode == ShareLock)
	{
		UnlockPage(index, HNSW_UPDATE_LOCK, lockmode);
		lockmode = ExclusiveLock;
		LockPage(index, HNSW_UPDATE_LOCK, lockmode);
		HnswReadMeta(index, &meta);
	}

	choices = palloc0(sizeof(LevelChoice) * (level + 1));
	top = Min(level, meta.entry_level);
	if (meta.entry_nid != HNSW_INVALID_NID)
	{
		HnswSearch	search;

		HnswSearchInit(&search, index, info, vec);
		search.skip_deleted = false;
		HnswSearchEnter(&search, meta.entry_nid);
		for (int l = meta.entry_level; l > level; l--)
			HnswSearchGreedy(&search, l);
		for (int l = top; l >= 0; l--)
		{
			if (l < top)
			{
				/* the previous level's results seed this one */
				HnswVisitedReset(&search.visited);
				search.candidates.count = 0;
				for (int i = 0; i < search.results.count; i++)
				{
					HnswVisitedTestAndSet(&search.visited, search.results.items[i].nid);
					HnswHeapPush(&search.candidates, search.results.items[i].distance,
								 search.results.items[i].nid);
				}
			}
			HnswSearchLayer(&search, l, info->ef_construction);
			ChooseNeighbors(index, info, &search.results, l, &choices[l]);
		}
	}

	newentry = level > meta.entry_level;
	nid = WriteNode(index, info, vec, keys, heaptid, level, choices, newentry);

	for (int l = top; l >= 0; l--)
	{
		bool		linked = false;

		for (int k = 0; k < choices[l].n; k++)
		{
			CHECK_FOR_INTERRUPTS();
			if (HnswAddBackLink(index, info, choices[l].cands[k].nid,
							choices[l].vectors + (int64) k * info->dims,
							l, nid, vec, choices[l].cands[k].distance, false))
				linked = true;
		}

		/*
		 * Every neighbour pruned the new node away: make the nearest keep it,
		 * or no search could reach it.
		 */
		if (l == 0 && !linked && choices[0].n > 0)
			HnswAddBackLink(index, info, choices[0].cands[0].nid, choices[0].vectors, 0, nid, vec,
						choices[0].cands[0].distance, true);
	}

	UnlockPage(index, HNSW_UPDATE_LOCK, lockmode);
}

bool
hnswinsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
		   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
		   IndexInfo *indexInfo)
{
	const HnswInfo *info;
	MemoryContext ctx;
	MemoryContext old;
	float	   *vec;

	/* NULLs are not indexed */
	if (isnull[0])
		return false;

	info = HnswGetInfo(index);
	ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw insert context",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);
	vec = palloc(sizeof(float) * info->dims);
	if (HnswPrepareVector(info, values[0], vec))
	{
		char	   *keys = NULL;

		if (info->key_bytes > 0)
		{
			keys = palloc(info->key_bytes);
			HnswFormKeys(index, info, values, isnull, keys);
		}
		HnswInsertOnDisk(index, info, vec, keys, heap_tid, false);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	return false;
}
