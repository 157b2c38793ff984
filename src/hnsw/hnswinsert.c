/*-------------------------------------------------------------------------
 *
 * hnswinsert.c
 *	  Insert one row into the on-disk hnsw graph.
 *
 * An insert searches the graph like a scan (with ef_construction), picks
 * its neighbours with the selection heuristic, writes its node in one WAL
 * record (node page, upper page, metapage if the entry point or a page
 * hint changes) and then adds a link back from each neighbour, one WAL
 * record per page of neighbour lists.  The search copies every node it
 * scores into a per-backend vector cache (hnswutils.c), so a neighbour's
 * full list is re-pruned from cached vectors, under its page lock; the
 * few vectors not cached are read first, with that lock released.  No
 * two buffer locks are ever held except node page -> upper page ->
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

static int
nid_cmp(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Make sure the vectors and flags of nids[0..n-1] are in the insert's
 * cache: those not there yet are read block by block (sorted, so nodes of
 * one page share one buffer access).  nids[] is reordered.
 */
static void
FetchNodes(Relation index, const HnswInfo *info, HnswVecCache *cache, uint32 *nids, int n)
{
	Buffer		buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page		page = NULL;
	int			nmiss = 0;

	for (int i = 0; i < n; i++)
	{
		uint8		flags;

		if (HnswVecCacheLookup(cache, nids[i], &flags) == NULL)
			nids[nmiss++] = nids[i];
	}
	if (nmiss > 1)
		qsort(nids, nmiss, sizeof(uint32), nid_cmp);
	for (int k = 0; k < nmiss; k++)
	{
		BlockNumber blkno = HnswNidBlock(info, nids[k]);
		HnswSlotHeader *slot;
		float	   *dst;

		if (blkno != cur)
		{
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			cur = blkno;
		}
		if (HnswPageType(page) != HNSW_PAGE_NODE)
		{
			HnswVecCachePut(cache, nids[k], 0, true);
			continue;
		}
		slot = HnswPageGetSlot(info, page, HnswNidSlot(info, nids[k]));
		dst = HnswVecCachePut(cache, nids[k], slot->flags, true);
		if (slot->flags & HNSW_SLOT_USED)
			HnswLoadVector(info, HnswSlotVector(info, slot), dst);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
}

/* The cached vector of a live node, or NULL (deleted, free, not read) */
static inline const float *
LiveVector(HnswVecCache *cache, uint32 nid)
{
	uint8		flags;
	const float *v = HnswVecCacheLookup(cache, nid, &flags);

	if (v == NULL || !(flags & HNSW_SLOT_USED) || (flags & HNSW_SLOT_DELETED))
		return NULL;
	return v;
}

typedef struct PairArg
{
	const HnswInfo *info;
	const float **rows;
} PairArg;

static double
PairDist(void *arg, int i, int j)
{
	PairArg    *a = arg;

	return HnswDistance(a->info, a->rows[i], a->rows[j]);
}

/* The neighbours chosen at one level, with their vectors (in the cache) */
typedef struct LevelChoice
{
	int			n;
	HnswCandidate cands[HNSW_MAX_M * 2];
	const float *vectors[HNSW_MAX_M * 2];
} LevelChoice;

/*
 * Choose the neighbours of a new node at one level from the search results:
 * drop deleted or recycled candidates, apply the heuristic.  The search
 * left the candidates' vectors in the cache.
 */
static void
ChooseNeighbors(Relation index, const HnswInfo *info, HnswVecCache *cache,
				HnswHeap *results, int level, LevelChoice *choice)
{
	int			n = results->count;
	HnswCandidate *cands = palloc(sizeof(HnswCandidate) * Max(n, 1));
	const float **rows = palloc(sizeof(float *) * Max(n, 1));
	uint32	   *nids = palloc(sizeof(uint32) * Max(n, 1));
	int			live = 0;
	uint32		keep[HNSW_MAX_M * 2];
	PairArg		arg;
	int			nkeep;

	memcpy(cands, results->items, sizeof(HnswCandidate) * n);
	qsort(cands, n, sizeof(HnswCandidate), HnswCandidateCmp);
	for (int i = 0; i < n; i++)
		nids[i] = cands[i].nid;
	FetchNodes(index, info, cache, nids, n);

	/* compact to the live candidates */
	for (int i = 0; i < n; i++)
	{
		const float *v = LiveVector(cache, cands[i].nid);

		if (v != NULL)
		{
			cands[live] = cands[i];
			rows[live] = v;
			live++;
		}
	}
	arg.info = info;
	arg.rows = rows;
	nkeep = HnswSelectNeighbors(info, cands, live, HnswLayerCapacity(info, level),
								NULL, keep, PairDist, &arg);
	choice->n = nkeep;
	for (int k = 0; k < nkeep; k++)
	{
		choice->cands[k] = cands[keep[k]];
		choice->vectors[k] = rows[keep[k]];
	}
	pfree(cands);
	pfree(rows);
	pfree(nids);
}

/*
 * Pointer to the links of node nid at level in a locked page, or NULL if
 * the page no longer holds them (node deleted meanwhile; it cannot have
 * been freed: see the cache's comment).
 */
static uint32 *
LinksInPage(const HnswInfo *info, Page page, uint32 nid, int level,
			ItemPointer uppertid)
{
	if (level == 0)
	{
		HnswSlotHeader *slot;

		if (HnswPageType(page) != HNSW_PAGE_NODE)
			return NULL;
		slot = HnswPageGetSlot(info, page, HnswNidSlot(info, nid));
		if (!(slot->flags & HNSW_SLOT_USED) || (slot->flags & HNSW_SLOT_DELETED))
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
 * The list that x's full list old[0..cap-1] becomes when the new node
 * (newnid, at distance dist from x) is offered: the heuristic over the old
 * neighbours that are still live plus the new node.  Every vector must be
 * in the cache.  Returns whether the new list holds newnid.
 */
static bool
PruneList(const HnswInfo *info, HnswVecCache *cache, const float *xvec, const uint32 *old,
		  int cap, uint32 newnid, const float *newvec, double dist, bool force,
		  uint32 *newlist)
{
	struct
	{
		HnswCandidate c;		/* first: sorted as a candidate */
		const float *row;
	}			items[HNSW_MAX_M * 2 + 1];
	HnswCandidate cands[HNSW_MAX_M * 2 + 1];
	const float *rows[HNSW_MAX_M * 2 + 1];
	uint32		keep[HNSW_MAX_M * 2 + 1];
	int			live = 0;
	int			nkeep;
	PairArg		arg;
	bool		kept_new = false;

	for (int i = 0; i < cap; i++)
	{
		/* dead and recycled neighbours are dropped here too */
		const float *v = LiveVector(cache, old[i]);

		if (v == NULL)
			continue;
		items[live].c.nid = old[i];
		items[live].c.distance = HnswDistance(info, xvec, v);
		items[live].row = v;
		live++;
	}
	items[live].c.nid = newnid;
	items[live].c.distance = dist;
	items[live].row = newvec;
	live++;

	/*
	 * By distance to x, then nid; the vectors move along.  An insertion sort:
	 * at most 2m + 1 entries, and it runs for every full neighbour list.
	 */
	for (int i = 0; i < live; i++)
	{
		HnswCandidate c = items[i].c;
		const float *row = items[i].row;
		int			j = i;

		for (; j > 0 && (cands[j - 1].distance > c.distance ||
						 (cands[j - 1].distance == c.distance && cands[j - 1].nid > c.nid)); j--)
		{
			cands[j] = cands[j - 1];
			rows[j] = rows[j - 1];
		}
		cands[j] = c;
		rows[j] = row;
	}
	arg.info = info;
	arg.rows = rows;
	nkeep = HnswSelectNeighbors(info, cands, live, cap, NULL, keep, PairDist, &arg);
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
	return kept_new;
}

/* A node that is to link back to the new node */
typedef struct BackLink
{
	uint32		x;
	const float *xvec;			/* its vector (in the cache) */
	double		dist;			/* its distance to the new node */
	ItemPointerData uppertid;	/* level > 0: its upper tuple */
	BlockNumber blkno;			/* the page holding its list */
	bool		done;
	bool		kept;			/* its list holds the new node */
} BackLink;

/*
 * Make nodes bl[0..n-1], whose lists at level all lie on page blkno, link
 * back to newnid: one page lock and one WAL record for all of them (an
 * insert's level-0 neighbours share pages, about 20 pages for 32 at m = 16).
 * A list with room gets newnid appended; a full one is re-pruned (the
 * heuristic over its live neighbours and the new node).  With force (n = 1),
 * newnid takes the last slot of a full list even when the heuristic would
 * drop it, so the new node has at least one link in.  bl[i].kept tells
 * whether x's list now holds newnid.
 *
 * Lists are re-pruned under the page lock, from vectors in the cache: if
 * some neighbour's vector is missing, the lock is released, the missing
 * ones are read (no two buffer locks at once) and the page is read again.
 */
static void
AddBackLinks(Relation index, const HnswInfo *info, HnswVecCache *cache, BlockNumber blkno,
			 int level, BackLink *bl, int n, uint32 newnid, const float *newvec, bool force)
{
	int			cap = HnswLayerCapacity(info, level);
	uint32	   *newlists = palloc(sizeof(uint32) * cap * n);
	bool	   *write = palloc(sizeof(bool) * n);
	uint32	   *miss = palloc(sizeof(uint32) * cap * n);

	for (int i = 0; i < n; i++)
		bl[i].done = bl[i].kept = false;

	for (int attempt = 0; attempt < 3; attempt++)
	{
		Buffer		buf;
		Page		page;
		int			nmiss = 0;
		int			nwrite = 0;

		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		for (int i = 0; i < n; i++)
		{
			uint32	   *links;
			uint32	   *newlist = newlists + i * cap;
			int			len = 0;
			int			nmiss_x = 0;

			write[i] = false;
			if (bl[i].done)
				continue;
			links = LinksInPage(info, page, bl[i].x, level, &bl[i].uppertid);
			if (links == NULL)
			{
				bl[i].done = true;
				continue;
			}
			while (len < cap && links[len] != HNSW_INVALID_NID && links[len] != newnid)
				len++;
			if (len < cap && links[len] == newnid)
			{
				bl[i].done = bl[i].kept = true;
				continue;
			}
			if (len < cap)
			{
				/* room left: append */
				memcpy(newlist, links, sizeof(uint32) * cap);
				newlist[len] = newnid;
				write[i] = bl[i].kept = true;
				nwrite++;
				continue;
			}

			/* full: are all the neighbours' vectors at hand? */
			for (int k = 0; k < cap; k++)
			{
				uint8		flags;

				if (HnswVecCacheLookup(cache, links[k], &flags) == NULL)
					miss[nmiss + nmiss_x++] = links[k];
			}
			if (nmiss_x > 0)
			{
				nmiss += nmiss_x;
				continue;
			}
			bl[i].kept = PruneList(info, cache, bl[i].xvec, links, cap, newnid, newvec,
								   bl[i].dist, force, newlist);
			if (!bl[i].kept && memcmp(newlist, links, sizeof(uint32) * cap) == 0)
				bl[i].done = true;	/* nothing changes */
			else
			{
				write[i] = true;
				nwrite++;
			}
		}

		if (nmiss > 0 && attempt < 2)
		{
			/* read what is missing, then decide everything again */
			UnlockReleaseBuffer(buf);
			FetchNodes(index, info, cache, miss, nmiss);
			for (int i = 0; i < n; i++)
				if (!bl[i].done)
					bl[i].kept = false;
			continue;
		}

		if (nwrite > 0)
		{
			GenericXLogState *state = GenericXLogStart(index);

			page = GenericXLogRegisterBuffer(state, buf, 0);
			for (int i = 0; i < n; i++)
			{
				if (write[i])
					memcpy(LinksInPage(info, page, bl[i].x, level, &bl[i].uppertid),
						   newlists + i * cap, sizeof(uint32) * cap);
			}
			GenericXLogFinish(state);
		}
		UnlockReleaseBuffer(buf);
		break;
	}
	pfree(newlists);
	pfree(write);
	pfree(miss);
}

static int
backlink_block_cmp(const void *a, const void *b)
{
	const BackLink *x = a;
	const BackLink *y = b;

	if (x->blkno != y->blkno)
		return x->blkno < y->blkno ? -1 : 1;
	return x->dist < y->dist ? -1 : x->dist > y->dist ? 1 : 0;
}

/*
 * Link the new node from its chosen neighbours at level, page by page.
 * Returns whether some neighbour kept it.
 */
static bool
LinkNeighbors(Relation index, const HnswInfo *info, HnswVecCache *cache, LevelChoice *choice,
			  int level, uint32 newnid, const float *newvec)
{
	BackLink	bl[HNSW_MAX_M * 2];
	int			n = 0;
	bool		linked = false;

	for (int k = 0; k < choice->n; k++)
	{
		BackLink   *b = &bl[n];

		b->x = choice->cands[k].nid;
		b->xvec = choice->vectors[k];
		b->dist = choice->cands[k].distance;
		if (level == 0)
		{
			ItemPointerSetInvalid(&b->uppertid);
			b->blkno = HnswNidBlock(info, b->x);
		}
		else
		{
			uint32		dummy[HNSW_MAX_M * 2];
			HnswSlotHeader hdr;

			/* where x's upper tuple lives */
			HnswReadLinks(index, info, b->x, 0, dummy, &hdr);
			if (!(hdr.flags & HNSW_SLOT_USED) || (hdr.flags & HNSW_SLOT_DELETED) ||
				hdr.level < level || !ItemPointerIsValid(&hdr.uppertid))
				continue;
			b->uppertid = hdr.uppertid;
			b->blkno = ItemPointerGetBlockNumber(&hdr.uppertid);
		}
		n++;
	}
	qsort(bl, n, sizeof(BackLink), backlink_block_cmp);
	for (int i = 0; i < n;)
	{
		BlockNumber blkno = bl[i].blkno;
		int			j = i;

		while (j < n && bl[j].blkno == blkno)
			j++;
		CHECK_FOR_INTERRUPTS();
		AddBackLinks(index, info, cache, blkno, level, bl + i, j - i, newnid, newvec, false);
		for (int k = i; k < j; k++)
			linked |= bl[k].kept;
		i = j;
	}
	return linked;
}

/*
 * Extend the index by one page, returned exclusively locked.  The caller
 * registers it with GENERIC_XLOG_FULL_IMAGE and initializes it.  The page
 * is locked before the extension lock is released: FindFreeSlot relies on
 * that to tell a page being added from one a crash left all-zero.
 */
Buffer
HnswExtendIndex(Relation index)
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
			/*
			 * All zeroes: either left so by a crash after extending, or
			 * just added by a backend in HnswExtendIndex that has not
			 * locked it yet (the new block is visible as soon as it
			 * exists).  Taking the
			 * latter would have its initialisation wipe out our node.  That
			 * backend locks the page before it releases the extension lock,
			 * so wait for the extension lock (holding no buffer lock, or
			 * the two could deadlock) and look again.
			 */
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
			LockRelationForExtension(index, ExclusiveLock);
			UnlockRelationForExtension(index, ExclusiveLock);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			page = BufferGetPage(buf);
			if (PageIsNew(page))
			{
				/* left all-zero by a crash: take it */
				*isnew = true;
				*slotno = 0;
				return buf;
			}
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
	return HnswExtendIndex(index);
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
			ubuf = HnswExtendIndex(index);
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

				dbuf = HnswExtendIndex(index);
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
	HnswVecCache *cache;
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
	cache = HnswVecCacheAcquire(info);
	if (meta.entry_nid != HNSW_INVALID_NID)
	{
		HnswSearch	search;

		HnswSearchInit(&search, index, info, vec);
		search.skip_deleted = false;
		search.cache = cache;
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
			ChooseNeighbors(index, info, cache, &search.results, l, &choices[l]);
		}
	}

	newentry = level > meta.entry_level;
	nid = WriteNode(index, info, vec, keys, heaptid, level, choices, newentry);

	for (int l = top; l >= 0; l--)
	{
		bool		linked = LinkNeighbors(index, info, cache, &choices[l], l, nid, vec);

		/*
		 * Every neighbour pruned the new node away: make the nearest keep it,
		 * or no search could reach it.
		 */
		if (l == 0 && !linked && choices[0].n > 0)
		{
			BackLink	b;

			b.x = choices[0].cands[0].nid;
			b.xvec = choices[0].vectors[0];
			b.dist = choices[0].cands[0].distance;
			ItemPointerSetInvalid(&b.uppertid);
			AddBackLinks(index, info, cache, HnswNidBlock(info, b.x), 0, &b, 1, nid, vec,
						 true);
		}
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
