/*-------------------------------------------------------------------------
 *
 * hnswutils.c
 *	  Routines shared by every part of the hnsw access method: the cached
 *	  index description, metapage access, distances, candidate heaps, the
 *	  visited set, and the search of one graph layer on disk.
 *
 * Distances are computed by calling the vector kernels directly (no fmgr,
 * no detoasting per distance), in double precision where the SQL operator
 * does, so the index orders rows by exactly the value the user sees.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswutils.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "hnsw.h"

/*
 * Fill in the layout of an index with the given parameters.  Errors out if a
 * node slot cannot fit on a page.
 */
void
HnswInfoInit(HnswInfo *info, int dims, HnswMetric metric, HnswStorage storage,
			 int m, int ef_construction)
{
	int			slot;

	info->dims = dims;
	info->metric = metric;
	info->storage = storage;
	info->m = m;
	info->m0 = 2 * m;
	info->ef_construction = ef_construction;
	info->nkeys = 0;
	info->keydir = false;
	info->keys_offset = sizeof(HnswSlotHeader);
	info->key_bytes = 0;
	info->links_offset = sizeof(HnswSlotHeader);
	info->vector_offset = info->links_offset + sizeof(uint32) * info->m0;
	info->vector_bytes = HnswStorageBytes(storage, dims);
	slot = TYPEALIGN(sizeof(uint32), info->vector_offset + info->vector_bytes);
	if (slot > HNSW_SLOTS_SPACE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector of %d dimensions is too large for an hnsw index with m = %d and storage = %s",
						dims, m, HnswStorageName(storage)),
				 errdetail("A node needs %d bytes, but a page holds at most %d.",
						   slot, (int) HNSW_SLOTS_SPACE),
				 errhint("Use a smaller m, a more compact storage (fp16 or sq8), or fewer dimensions.")));
	info->slot_size = slot;
	info->slots_per_page = HNSW_SLOTS_SPACE / slot;
}

/* Bytes of a node slot with this storage, keys included */
static int
SlotBytes(HnswStorage storage, int dims, int m, int nkeys)
{
	int			keys = nkeys > 0 ? (int) sizeof(uint64) * (nkeys + 1) : 0;

	return TYPEALIGN(sizeof(uint32), sizeof(HnswSlotHeader) + keys +
					 sizeof(uint32) * 2 * m + HnswStorageBytes(storage, dims));
}

/*
 * Resolve the storage reloption for a new index.  auto takes fp16 if its
 * slot fits a page, else sq8: fp16 had fp32's recall and cost less CPU per
 * query at every ef_search measured, at half the size (README, "Storage"),
 * so auto never picks fp32; storage = fp32 stays available.  An explicit
 * kind that does not fit, or dimensions too large for any, is an error
 * naming the limit.
 */
HnswStorage
HnswChooseStorage(HnswStorage requested, int dims, int m, int nkeys)
{
	static const HnswStorage order[] = {HNSW_STORAGE_FP16, HNSW_STORAGE_SQ8};

	if (requested != HNSW_STORAGE_AUTO)
	{
		int			need = SlotBytes(requested, dims, m, nkeys);

		if (need > HNSW_SLOTS_SPACE)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("vector of %d dimensions is too large for an hnsw index with m = %d and storage = %s",
							dims, m, HnswStorageName(requested)),
					 errdetail("A node needs %d bytes, but a page holds at most %d.",
							   need, (int) HNSW_SLOTS_SPACE),
					 errhint("Use storage = auto, a more compact storage (fp16 holds about 4000 dimensions at m = 16, sq8 about 8000), or a smaller m.")));
		return requested;
	}
	for (int i = 0; i < lengthof(order); i++)
	{
		if (SlotBytes(order[i], dims, m, nkeys) <= HNSW_SLOTS_SPACE)
			return order[i];
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("vector of %d dimensions is too large for an hnsw index with m = %d",
					dims, m),
			 errdetail("Even with storage = sq8 (1 byte per dimension) a node needs %d bytes, but a page holds at most %d.",
					   SlotBytes(HNSW_STORAGE_SQ8, dims, m, nkeys), (int) HNSW_SLOTS_SPACE),
			 errhint("Use a smaller m, fewer filter keys, or reduce the dimensions (for example a shorter embedding).")));
	return HNSW_STORAGE_FP32;	/* keep compiler quiet */
}

/*
 * The metric follows from the opclass's distance support function, which
 * must be one of the vector kernels' SQL wrappers (checked by prosrc, the C
 * symbol, so renaming the SQL function does not matter).
 */
HnswMetric
HnswMetricFromOpclass(Relation index)
{
	Oid			procid = index_getprocid(index, 1, HNSW_DISTANCE_PROC);
	HeapTuple	tup;
	Datum		src;
	bool		isnull;
	char	   *name;
	HnswMetric	metric;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(procid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", procid);
	src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
	name = isnull ? "" : TextDatumGetCString(src);
	ReleaseSysCache(tup);

	if (strcmp(name, "vector_l2_squared_distance") == 0)
		metric = HNSW_METRIC_L2;
	else if (strcmp(name, "vector_negative_inner_product") == 0)
		metric = OidIsValid(index_getprocid(index, 1, HNSW_NORM_PROC)) ?
			HNSW_METRIC_COSINE : HNSW_METRIC_IP;
	else if (strcmp(name, "l1_distance") == 0)
		metric = HNSW_METRIC_L1;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported distance function \"%s\" for an hnsw index", name),
				 errdetail("The hnsw access method supports the vector_l2_ops, vector_ip_ops, vector_cosine_ops and vector_l1_ops operator classes.")));
	return metric;
}

void
HnswReadMeta(Relation index, HnswMetaPageData *meta)
{
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (HnswPageType(page) != HNSW_PAGE_META ||
		HnswPageGetMeta(page)->magic != HNSW_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not an hnsw index", RelationGetRelationName(index))));
	if (HnswPageGetMeta(page)->version != HNSW_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("hnsw index \"%s\" has version %u, expected %u",
						RelationGetRelationName(index),
						HnswPageGetMeta(page)->version, HNSW_VERSION),
				 errhint("REINDEX the index.")));
	memcpy(meta, HnswPageGetMeta(page), sizeof(HnswMetaPageData));
	UnlockReleaseBuffer(buf);
}

/*
 * The layout of an index never changes after build, so it is cached for
 * the relcache entry's lifetime.  The entry point is not cached: it is read
 * from the metapage at each search.
 */
const HnswInfo *
HnswGetInfo(Relation index)
{
	if (index->rd_amcache == NULL)
	{
		HnswMetaPageData meta;
		HnswInfo	info;

		HnswReadMeta(index, &meta);
		if (meta.storage < HNSW_STORAGE_FP32 || meta.storage > HNSW_STORAGE_SQ8)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("hnsw index \"%s\" has an unknown storage kind %d",
							RelationGetRelationName(index), meta.storage)));
		HnswInfoInit(&info, meta.dims, meta.metric, meta.storage, meta.m,
					 meta.ef_construction);
		HnswInfoInitKeys(&info, meta.nkeys);
		info.keydir = meta.nkeys > 0 && meta.keydir != 0;
		if (info.slot_size != meta.slot_size || info.slots_per_page != meta.slots_per_page)
			ereport(ERROR,
					(errcode(ERRCODE_INDEX_CORRUPTED),
					 errmsg("hnsw index \"%s\" has an inconsistent metapage",
							RelationGetRelationName(index))));
		index->rd_amcache = MemoryContextAlloc(index->rd_indexcxt, sizeof(HnswInfo));
		memcpy(index->rd_amcache, &info, sizeof(HnswInfo));
	}
	return (const HnswInfo *) index->rd_amcache;
}

void
HnswInitPage(Page page, uint16 type, const HnswInfo *info)
{
	HnswPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(HnswPageOpaqueData));
	opaque = HnswPageGetOpaque(page);
	opaque->type = type;
	opaque->nused = 0;
	opaque->unused = 0;
	opaque->page_id = HNSW_PAGE_ID;

	/*
	 * A node page's slots lie below pd_lower, so that generic WAL and full
	 * page images, which drop the "hole" between pd_lower and pd_upper,
	 * keep them.  Free slots are zeroes, so a slot is free iff flags == 0.
	 */
	if (type == HNSW_PAGE_NODE)
	{
		((PageHeader) page)->pd_lower =
			HNSW_SLOTS_START + info->slots_per_page * info->slot_size;
		Assert(((PageHeader) page)->pd_lower <= ((PageHeader) page)->pd_upper);
	}
}

void
HnswInitMetaPage(Page page, const HnswInfo *info)
{
	HnswMetaPage meta;

	HnswInitPage(page, HNSW_PAGE_META, info);
	meta = HnswPageGetMeta(page);
	memset(meta, 0, HNSW_META_SIZE);
	meta->magic = HNSW_MAGIC;
	meta->version = HNSW_VERSION;
	meta->dims = info->dims;
	meta->metric = info->metric;
	meta->storage = info->storage;
	meta->m = info->m;
	meta->ef_construction = info->ef_construction;
	meta->slot_size = info->slot_size;
	meta->slots_per_page = info->slots_per_page;
	meta->entry_nid = HNSW_INVALID_NID;
	meta->entry_level = -1;
	meta->insert_page = InvalidBlockNumber;
	meta->upper_page = InvalidBlockNumber;
	meta->nkeys = info->nkeys;
	/* a new index with filter keys keeps a key directory (hnswfilter.c) */
	meta->keydir = info->nkeys > 0 ? 1 : 0;
	((PageHeader) page)->pd_lower = ((char *) meta + HNSW_META_SIZE) - (char *) page;
}

/*
 * Check a value for the index and convert it to the float form that is
 * stored and searched.  Returns false if the value cannot be indexed (a
 * zero vector under cosine distance has no direction).
 */
bool
HnswPrepareVector(const HnswInfo *info, Datum value, float *out)
{
	Vector	   *v = DatumGetVector(value);

	if (v->dim != info->dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", info->dims, v->dim)));
	for (int i = 0; i < v->dim; i++)
	{
		if (isnan(v->x[i]) || isinf(v->x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("vector value must be finite")));
	}
	memcpy(out, v->x, sizeof(float) * v->dim);
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);

	if (info->metric == HNSW_METRIC_COSINE)
	{
		float		norm = VectorInnerProduct(out, out, info->dims);

		if (!(norm > 0))
			return false;
	}
	return true;
}

int
HnswCandidateCmp(const void *a, const void *b)
{
	const HnswCandidate *x = a;
	const HnswCandidate *y = b;

	if (x->distance != y->distance)
		return x->distance < y->distance ? -1 : 1;
	return x->nid < y->nid ? -1 : x->nid > y->nid ? 1 : 0;
}

/*
 * The index-internal distance: a monotone function of the SQL operator's
 * value (squared for L2), computed with the same kernel and rounding.
 */
double
HnswDistance(const HnswInfo *info, const float *a, const float *b)
{
	switch (info->metric)
	{
		case HNSW_METRIC_L2:
			return (double) VectorActiveKernels->l2_squared(a, b, info->dims);
		case HNSW_METRIC_IP:
			return (double) -VectorActiveKernels->inner_product(a, b, info->dims);
		case HNSW_METRIC_COSINE:
			return VectorCosineDistance(a, b, info->dims);
		case HNSW_METRIC_L1:
			return (double) VectorActiveKernels->l1(a, b, info->dims);
	}
	return 0;
}

/* The SQL operator's value for an index-internal distance */
double
HnswOrderValue(const HnswInfo *info, double distance)
{
	if (info->metric == HNSW_METRIC_L2)
		return sqrt(distance);
	return distance;
}

/*
 * The score of a stored node for a search.  fp32: the exact distance.
 * Compressed: the distance to the stored approximation (inserts, which only
 * need a good estimate), or for scans (search->bound) a lower bound of the
 * exact distance, so the executor's recheck can restore exact order.
 */
double
HnswSlotDistance(const HnswSearch *search, const HnswSlotHeader *slot)
{
	const HnswInfo *info = search->info;

	/* slots are 4-byte aligned, so the stored floats can be used in place */
	if (info->storage == HNSW_STORAGE_FP32)
		return HnswDistance(info, search->query, (const float *) HnswSlotVector(info, slot));
	if (search->bound)
		return HnswLowerBound(info, search->query, search->qnorm, HnswSlotVector(info, slot),
							  search->decoded);
	{
		float	   *x = search->decoded;

		HnswLoadVector(info, HnswSlotVector(info, slot), x);
		return HnswDistance(info, search->query, x);
	}
}

/* Level of a new node: floor(-ln(U) / ln(m)), capped */
int
HnswRandomLevel(int m, pg_prng_state *state)
{
	static pg_prng_state insert_state;
	static bool seeded = false;
	double		u;
	int			level;

	/*
	 * Inserts draw levels from a per-backend generator with a fixed seed, so
	 * the same statements on a fresh connection build the same graph (tests
	 * and bug reports are repeatable); the levels stay geometrically
	 * distributed.
	 */
	if (state == NULL)
	{
		if (!seeded)
		{
			pg_prng_seed(&insert_state, UINT64CONST(0x9E3779B97F4A7C15));
			seeded = true;
		}
		state = &insert_state;
	}
	u = pg_prng_double(state);
	if (u <= 0)
		u = 1e-12;
	level = (int) floor(-log(u) / log((double) m));
	return Min(level, HNSW_MAX_LEVEL);
}

int
HnswLayerCapacity(const HnswInfo *info, int level)
{
	return level == 0 ? info->m0 : info->m;
}

/*
 * Binary heaps of candidates.  A max-heap keeps the farthest on top.
 */
void
HnswHeapInit(HnswHeap *heap, int capacity, bool max)
{
	heap->capacity = Max(capacity, 16);
	heap->items = palloc(sizeof(HnswCandidate) * heap->capacity);
	heap->count = 0;
	heap->max = max;
}

static inline bool
HeapAbove(const HnswHeap *heap, const HnswCandidate *a, const HnswCandidate *b)
{
	if (a->distance != b->distance)
		return heap->max ? a->distance > b->distance : a->distance < b->distance;
	/* ties broken by nid, so results are deterministic */
	return heap->max ? a->nid > b->nid : a->nid < b->nid;
}

void
HnswHeapPush(HnswHeap *heap, double distance, uint32 nid)
{
	int			i;

	if (heap->count == heap->capacity)
	{
		heap->capacity *= 2;
		heap->items = repalloc_huge(heap->items, sizeof(HnswCandidate) * heap->capacity);
	}
	i = heap->count++;
	heap->items[i].distance = distance;
	heap->items[i].nid = nid;
	while (i > 0)
	{
		int			parent = (i - 1) / 2;
		HnswCandidate tmp;

		if (!HeapAbove(heap, &heap->items[i], &heap->items[parent]))
			break;
		tmp = heap->items[i];
		heap->items[i] = heap->items[parent];
		heap->items[parent] = tmp;
		i = parent;
	}
}

HnswCandidate
HnswHeapPop(HnswHeap *heap)
{
	HnswCandidate top = heap->items[0];
	int			i = 0;

	Assert(heap->count > 0);
	heap->items[0] = heap->items[--heap->count];
	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			best = i;
		HnswCandidate tmp;

		if (l < heap->count && HeapAbove(heap, &heap->items[l], &heap->items[best]))
			best = l;
		if (r < heap->count && HeapAbove(heap, &heap->items[r], &heap->items[best]))
			best = r;
		if (best == i)
			break;
		tmp = heap->items[i];
		heap->items[i] = heap->items[best];
		heap->items[best] = tmp;
		i = best;
	}
	return top;
}

/*
 * Visited set: one bit per nid.  Ids are dense (block * slots + slot), so
 * the bitmap is about nodes/8 bytes; it grows when a node added after the
 * search began is met.
 */
void
HnswVisitedInit(HnswVisited *visited, uint32 capacity)
{
	visited->nwords = capacity / 64 + 1;
	visited->words = palloc_extended(sizeof(uint64) * visited->nwords, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

bool
HnswVisitedTestAndSet(HnswVisited *visited, uint32 nid)
{
	uint32		w = nid / 64;
	uint64		bit = UINT64CONST(1) << (nid % 64);

	if (w >= visited->nwords)
	{
		uint32		n = Max(w + 1, visited->nwords * 2);

		visited->words = repalloc_huge(visited->words, sizeof(uint64) * n);
		memset(visited->words + visited->nwords, 0, sizeof(uint64) * (n - visited->nwords));
		visited->nwords = n;
	}
	if (visited->words[w] & bit)
		return true;
	visited->words[w] |= bit;
	return false;
}

void
HnswVisitedReset(HnswVisited *visited)
{
	memset(visited->words, 0, sizeof(uint64) * visited->nwords);
}

/*
 * Copy the links of node nid at a level into links[] and return how many
 * there are (0 if the node is free or has no such level).  hdr, if given,
 * receives the slot header.
 */
int
HnswReadLinks(Relation index, const HnswInfo *info, uint32 nid, int level,
			  uint32 *links, HnswSlotHeader *hdr)
{
	BlockNumber blkno = HnswNidBlock(info, nid);
	Buffer		buf;
	Page		page;
	HnswSlotHeader *slot;
	HnswSlotHeader copy;
	int			n = 0;
	int			cap = HnswLayerCapacity(info, level);

	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (HnswPageType(page) != HNSW_PAGE_NODE)
	{
		UnlockReleaseBuffer(buf);
		if (hdr)
			memset(hdr, 0, sizeof(HnswSlotHeader));
		return 0;
	}
	slot = HnswPageGetSlot(info, page, HnswNidSlot(info, nid));
	copy = *slot;
	if (level == 0 && (copy.flags & HNSW_SLOT_USED))
	{
		uint32	   *l = HnswSlotLinks(info, slot);

		while (n < cap && l[n] != HNSW_INVALID_NID)
		{
			links[n] = l[n];
			n++;
		}
	}
	UnlockReleaseBuffer(buf);
	if (hdr)
		*hdr = copy;

	if (level > 0 && (copy.flags & HNSW_SLOT_USED) && copy.level >= level &&
		ItemPointerIsValid(&copy.uppertid))
	{
		HnswUpperTuple up;
		OffsetNumber off = ItemPointerGetOffsetNumber(&copy.uppertid);

		buf = ReadBuffer(index, ItemPointerGetBlockNumber(&copy.uppertid));
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (HnswPageType(page) == HNSW_PAGE_UPPER &&
			off <= PageGetMaxOffsetNumber(page) &&
			ItemIdIsNormal(PageGetItemId(page, off)))
		{
			up = (HnswUpperTuple) PageGetItem(page, PageGetItemId(page, off));
			if (up->nid == nid && up->level >= level)
			{
				uint32	   *l = up->links + (level - 1) * info->m;

				while (n < cap && l[n] != HNSW_INVALID_NID)
				{
					links[n] = l[n];
					n++;
				}
			}
		}
		UnlockReleaseBuffer(buf);
	}
	return n;
}

/*
 * The insert vector cache.  An insert's search scores one to two thousand
 * nodes at ef_construction 64; choosing its neighbours and re-pruning up to
 * 2m full lists then needs the vectors of about a thousand more node
 * reads, mostly of nodes the search has just scored.  Keeping the scored
 * vectors (a copy, the buffers are released) turns those reads into hash
 * lookups.
 *
 * What is kept is valid for the rest of the insert: the insert holds
 * HNSW_UPDATE_LOCK, so no VACUUM can pass its barrier and free a node that
 * was live when it was read; a vector never changes while its slot is in
 * use.  A node read as deleted or free may be reused meanwhile, which only
 * makes the insert skip it (as a fresh read just before could have).
 *
 * Vectors live in fixed-size chunks that never move (callers keep pointers
 * into them until the next acquire); nids go into an open-addressing
 * table.  The memory is kept for the backend's next insert: allocating it
 * afresh for each row made glibc hand it back and fault it in again.
 * Beyond a budget the search stops adding (force = false); reads the insert
 * cannot do without (force = true) are always kept.
 */
#define VECCACHE_CHUNK		256		/* vectors per chunk */
#define VECCACHE_BUDGET		(8 * 1024 * 1024)	/* bytes of vectors, soft */

struct HnswVecCache
{
	MemoryContext cxt;
	int			dims;
	int			budget_chunks;	/* chunks within VECCACHE_BUDGET (at least 4) */
	int			count;			/* entries in use */
	int			nchunks;		/* chunks allocated */
	int			maxchunks;		/* size of chunks[] */
	float	  **chunks;
	uint8	   *flags;			/* per entry, maxchunks * VECCACHE_CHUNK */
	uint32		tabsize;		/* power of 2, >= 2 * entries possible */
	uint32	   *tabnid;			/* HNSW_INVALID_NID = empty */
	int32	   *tabent;			/* entry number */
};

static HnswVecCache *vec_cache = NULL;

static inline uint32
VecCacheHash(uint32 tabsize, uint32 nid)
{
	return (nid * UINT32_C(0x9E3779B1)) & (tabsize - 1);
}

/*
 * Give the table room for maxchunks chunks of entries (at most half full).
 * Everything is allocated before anything changes, so an out-of-memory
 * error leaves the cache as it was.
 */
static void
VecCacheGrow(HnswVecCache *c, int maxchunks)
{
	uint32		size = 2 * maxchunks * VECCACHE_CHUNK;
	uint32	   *tabnid = MemoryContextAlloc(c->cxt, sizeof(uint32) * size);
	int32	   *tabent = MemoryContextAlloc(c->cxt, sizeof(int32) * size);

	if (c->chunks == NULL)
	{
		c->chunks = MemoryContextAllocZero(c->cxt, sizeof(float *) * maxchunks);
		c->flags = MemoryContextAlloc(c->cxt, maxchunks * VECCACHE_CHUNK);
	}
	else
	{
		c->chunks = repalloc(c->chunks, sizeof(float *) * maxchunks);
		c->flags = repalloc(c->flags, maxchunks * VECCACHE_CHUNK);
	}
	memset(tabnid, 0xFF, sizeof(uint32) * size);
	for (uint32 i = 0; i < c->tabsize; i++)
	{
		uint32		k;

		if (c->tabnid[i] == HNSW_INVALID_NID)
			continue;
		k = VecCacheHash(size, c->tabnid[i]);
		while (tabnid[k] != HNSW_INVALID_NID)
			k = (k + 1) & (size - 1);
		tabnid[k] = c->tabnid[i];
		tabent[k] = c->tabent[i];
	}
	if (c->tabnid)
	{
		pfree(c->tabnid);
		pfree(c->tabent);
	}
	c->tabnid = tabnid;
	c->tabent = tabent;
	c->tabsize = size;
	c->maxchunks = maxchunks;
}

HnswVecCache *
HnswVecCacheAcquire(const HnswInfo *info)
{
	HnswVecCache *c = vec_cache;

	if (c != NULL && c->dims != info->dims)
	{
		MemoryContextDelete(c->cxt);
		c = vec_cache = NULL;
	}
	if (c == NULL)
	{
		MemoryContext cxt = AllocSetContextCreate(TopMemoryContext,
												  "hnsw insert vector cache",
												  ALLOCSET_DEFAULT_SIZES);

		c = MemoryContextAllocZero(cxt, sizeof(HnswVecCache));
		c->cxt = cxt;
		c->dims = info->dims;
		c->budget_chunks = Max(4, VECCACHE_BUDGET /
							   (VECCACHE_CHUNK * info->dims * (int) sizeof(float)));
		VecCacheGrow(c, 16);
		vec_cache = c;
	}

	/* give back what forced reads took beyond the budget */
	while (c->nchunks > c->budget_chunks)
		pfree(c->chunks[--c->nchunks]);
	c->count = 0;
	memset(c->tabnid, 0xFF, sizeof(uint32) * c->tabsize);
	return c;
}

/* The cached vector of nid (and its flags), or NULL if it was not read */
const float *
HnswVecCacheLookup(HnswVecCache *c, uint32 nid, uint8 *flags)
{
	uint32		h = VecCacheHash(c->tabsize, nid);

	for (;;)
	{
		if (c->tabnid[h] == nid)
		{
			int			e = c->tabent[h];

			*flags = c->flags[e];
			return c->chunks[e / VECCACHE_CHUNK] + (int64) (e % VECCACHE_CHUNK) * c->dims;
		}
		if (c->tabnid[h] == HNSW_INVALID_NID)
			return NULL;
		h = (h + 1) & (c->tabsize - 1);
	}
}

/*
 * Enter nid with its flags; returns where its vector is to be written (an
 * existing entry is overwritten), or NULL when over budget and !force.
 */
float *
HnswVecCachePut(HnswVecCache *c, uint32 nid, uint8 flags, bool force)
{
	uint32		h = VecCacheHash(c->tabsize, nid);
	int			e;

	Assert(nid != HNSW_INVALID_NID);
	for (;;)
	{
		if (c->tabnid[h] == nid)
		{
			e = c->tabent[h];
			c->flags[e] = flags;
			return c->chunks[e / VECCACHE_CHUNK] + (int64) (e % VECCACHE_CHUNK) * c->dims;
		}
		if (c->tabnid[h] == HNSW_INVALID_NID)
			break;
		h = (h + 1) & (c->tabsize - 1);
	}

	e = c->count;
	if (e / VECCACHE_CHUNK >= c->nchunks)
	{
		float	   *chunk;

		if (!force && c->nchunks >= c->budget_chunks)
			return NULL;
		if (c->nchunks == c->maxchunks)
		{
			VecCacheGrow(c, 2 * c->maxchunks);
			h = VecCacheHash(c->tabsize, nid);
			while (c->tabnid[h] != HNSW_INVALID_NID)
				h = (h + 1) & (c->tabsize - 1);
		}
		chunk = MemoryContextAlloc(c->cxt, sizeof(float) * c->dims * VECCACHE_CHUNK);
		c->chunks[c->nchunks] = chunk;
		c->nchunks++;
	}
	c->count++;
	c->tabnid[h] = nid;
	c->tabent[h] = e;
	c->flags[e] = flags;
	return c->chunks[e / VECCACHE_CHUNK] + (int64) (e % VECCACHE_CHUNK) * c->dims;
}

void
HnswSearchInit(HnswSearch *search, Relation index, const HnswInfo *info,
			   const float *query)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	search->index = index;
	search->info = info;
	search->query = query;
	HnswVisitedInit(&search->visited, (uint32) Min((uint64) nblocks * info->slots_per_page,
												   (uint64) PG_UINT32_MAX - 1));
	HnswHeapInit(&search->candidates, 64, false);
	HnswHeapInit(&search->results, 64, true);
	search->links = palloc(sizeof(uint32) * info->m0);
	search->pending = palloc(sizeof(uint32) * info->m0);
	search->discarded = NULL;
	search->bound = false;
	search->qnorm = 0;
	for (int i = 0; i < info->dims; i++)
		search->qnorm += (double) query[i] * query[i];
	search->qnorm = sqrt(search->qnorm);
	search->decoded = info->storage == HNSW_STORAGE_FP32 ? NULL :
		palloc(sizeof(float) * info->dims);
	search->skip_deleted = true;
	search->ndistances = 0;
	search->match = NULL;
	search->match_arg = NULL;
	search->nmatched = 0;
	search->max_distances = 0;
	search->budget_hit = false;
	search->cache = NULL;
}

static int
nid_cmp(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Compute the distances from the query to a set of nodes, reading each
 * block once (the ids are sorted here, so nodes of one page are adjacent).  out_dist[i]
 * is set to -1 and out_flags[i] to 0 for free slots.
 *
 * The pages of a group of blocks are pinned first and the cache lines to be
 * read (page header, special space, each slot's header and its vector, up
 * to 1 kB; the hardware prefetcher follows longer ones) prefetched, then
 * scored one page at a time under its share lock.  The graph is much
 * larger than the CPU caches and every neighbour tends to be on another
 * page, so without this each node costs a chain of cache misses one after
 * the other.
 */
#define SCORE_WINDOW 16

static inline void
PrefetchLine(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
	__builtin_prefetch(p);
#endif
}

void
HnswScoreNodes(HnswSearch *search, uint32 *nids, int n, double *out_dist, uint8 *out_flags)
{
	const HnswInfo *info = search->info;
	int			i = 0;

	/* a tiny shared_buffers must not run out of unpinned buffers */
	int			window = Min(SCORE_WINDOW, Max(1, NBuffers / 64));

	/* usually a few unvisited neighbours: insertion sort beats qsort's calls */
	if (n > 64)
		qsort(nids, n, sizeof(uint32), nid_cmp);
	else
	{
		for (int k = 1; k < n; k++)
		{
			uint32		v = nids[k];
			int			j = k;

			for (; j > 0 && nids[j - 1] > v; j--)
				nids[j] = nids[j - 1];
			nids[j] = v;
		}
	}
	while (i < n)
	{
		Buffer		bufs[SCORE_WINDOW];
		int			first[SCORE_WINDOW + 1];
		int			nb = 0;

		/* pin a window of pages, prefetch what will be read from them */
		while (i < n && nb < window)
		{
			BlockNumber blkno = HnswNidBlock(info, nids[i]);
			Page		page;

			first[nb] = i;
			bufs[nb] = ReadBuffer(search->index, blkno);
			page = BufferGetPage(bufs[nb]);
			PrefetchLine(page);
			PrefetchLine(page + BLCKSZ - 1);
			for (; i < n && HnswNidBlock(info, nids[i]) == blkno; i++)
			{
				const char *slot = (const char *) HnswPageGetSlot(info, page,
																  HnswNidSlot(info, nids[i]));
				int			vbytes = Min(info->vector_bytes, 1024);

				PrefetchLine(slot);
				for (int off = 0; off < vbytes; off += 64)
					PrefetchLine(slot + info->vector_offset + off);
			}
			nb++;
		}
		first[nb] = i;

		for (int b = 0; b < nb; b++)
		{
			Page		page;
			bool		isnode;

			LockBuffer(bufs[b], BUFFER_LOCK_SHARE);
			page = BufferGetPage(bufs[b]);
			isnode = HnswPageType(page) == HNSW_PAGE_NODE;
			for (int k = first[b]; k < first[b + 1]; k++)
			{
				HnswSlotHeader *slot;

				out_flags[k] = 0;
				out_dist[k] = -1;
				if (!isnode)
					continue;
				slot = HnswPageGetSlot(info, page, HnswNidSlot(info, nids[k]));
				out_flags[k] = slot->flags;
				if (slot->flags & HNSW_SLOT_USED)
				{
					float	   *dst = NULL;

					if (search->cache)
						dst = HnswVecCachePut(search->cache, nids[k], slot->flags, false);
					if (dst)
					{
						/*
						 * Decoded once, into the cache, and scored from there
						 * (what HnswSlotDistance does without a bound).
						 */
						Assert(!search->bound);
						HnswLoadVector(info, HnswSlotVector(info, slot), dst);
						out_dist[k] = HnswDistance(info, search->query, dst);
					}
					else
						out_dist[k] = HnswSlotDistance(search, slot);
					search->ndistances++;
					if (search->match)
					{
						if (search->match(search->match_arg, HnswSlotKeys(info, slot)))
							search->nmatched++;
						else
							out_flags[k] |= HNSW_SCORE_NOMATCH;
					}
				}
			}
			UnlockReleaseBuffer(bufs[b]);
		}
	}
}

/* Start a search at a node (the entry point) */
void
HnswSearchEnter(HnswSearch *search, uint32 nid)
{
	double		d;
	uint8		flags;

	if (HnswVisitedTestAndSet(&search->visited, nid))
		return;
	HnswScoreNodes(search, &nid, 1, &d, &flags);
	if (!(flags & HNSW_SLOT_USED))
		return;
	HnswHeapPush(&search->candidates, d, nid);
	if (!(search->skip_deleted && (flags & HNSW_SLOT_DELETED)) &&
		!(flags & HNSW_SCORE_NOMATCH))
		HnswHeapPush(&search->results, d, nid);
}

/*
 * Greedy descent through one upper layer: move to the best neighbour until
 * none is closer.  The current node is the single entry in candidates and
 * results; deleted nodes may be stepped on (they still route).
 */
void
HnswSearchGreedy(HnswSearch *search, int level)
{
	const HnswInfo *info = search->info;
	HnswCandidate cur;
	uint32		start;
	bool		changed = true;
	double		dists[HNSW_MAX_M * 2];
	uint8		flags[HNSW_MAX_M * 2];

	if (search->candidates.count == 0)
		return;
	cur = *HnswHeapTop(&search->candidates);
	start = cur.nid;
	while (changed)
	{
		int			n;

		CHECK_FOR_INTERRUPTS();
		changed = false;
		n = HnswReadLinks(search->index, info, cur.nid, level, search->links, NULL);
		HnswScoreNodes(search, search->links, n, dists, flags);
		for (int i = 0; i < n; i++)
		{
			if ((flags[i] & HNSW_SLOT_USED) && dists[i] < cur.distance)
			{
				cur.distance = dists[i];
				cur.nid = search->links[i];
				changed = true;
			}
		}
	}
	search->candidates.count = 0;
	search->results.count = 0;
	HnswHeapPush(&search->candidates, cur.distance, cur.nid);
	HnswHeapPush(&search->results, cur.distance, cur.nid);

	/*
	 * Only the node the next level starts from counts as visited: the one
	 * this level started from (marked by the level above) must stay
	 * findable, or a node that was the end of an upper level's descent
	 * could never be a result at level 0.
	 */
	if (cur.nid != start)
	{
		if (start / 64 < search->visited.nwords)
			search->visited.words[start / 64] &= ~(UINT64CONST(1) << (start % 64));
		HnswVisitedTestAndSet(&search->visited, cur.nid);
	}
}

/*
 * Search one layer (Malkov & Yashunin, algorithm 2) from the nodes in
 * candidates, keeping the ef nearest non-deleted nodes in results.
 */
void
HnswSearchLayer(HnswSearch *search, int level, int ef)
{
	const HnswInfo *info = search->info;
	double		dists[HNSW_MAX_M * 2];
	uint8		flags[HNSW_MAX_M * 2];

	while (search->candidates.count > 0)
	{
		HnswCandidate c = *HnswHeapTop(&search->candidates);
		int			n;
		int			npending = 0;

		if (search->results.count >= ef &&
			c.distance > HnswHeapTop(&search->results)->distance)
			break;
		/*
		 * A filtered search may give up (the caller sweeps instead): at the
		 * budget, or early, at an eighth of it, if the matches met so far
		 * project to fewer than 4 * ef by the budget (a filtered search
		 * scores several times ef / selectivity nodes before it settles).
		 */
		if (search->max_distances > 0 &&
			(search->ndistances >= search->max_distances ||
			 (search->ndistances >= search->max_distances / 8 &&
			  (double) search->nmatched * search->max_distances <
			  4.0 * ef * search->ndistances)))
		{
			search->budget_hit = true;
			break;
		}
		CHECK_FOR_INTERRUPTS();
		HnswHeapPop(&search->candidates);

		n = HnswReadLinks(search->index, info, c.nid, level, search->links, NULL);
		for (int i = 0; i < n; i++)
		{
			if (!HnswVisitedTestAndSet(&search->visited, search->links[i]))
				search->pending[npending++] = search->links[i];
		}
		if (npending == 0)
			continue;
		HnswScoreNodes(search, search->pending, npending, dists, flags);

		for (int i = 0; i < npending; i++)
		{
			bool		full = search->results.count >= ef;

			if (!(flags[i] & HNSW_SLOT_USED))
				continue;
			if (full && dists[i] >= HnswHeapTop(&search->results)->distance)
			{
				/* non-matching nodes too: the stream routes through them */
				if (search->discarded && !(flags[i] & HNSW_SLOT_DELETED))
					HnswHeapPush(search->discarded, dists[i], search->pending[i]);
				continue;
			}
			HnswHeapPush(&search->candidates, dists[i], search->pending[i]);
			if (search->skip_deleted && (flags[i] & HNSW_SLOT_DELETED))
				continue;
			if (flags[i] & HNSW_SCORE_NOMATCH)
				continue;
			HnswHeapPush(&search->results, dists[i], search->pending[i]);
			if (search->results.count > ef)
			{
				HnswCandidate c = HnswHeapPop(&search->results);

				if (search->discarded)
					HnswHeapPush(search->discarded, c.distance, c.nid);
			}
		}
	}
}

/*
 * Neighbour selection heuristic (Malkov & Yashunin, algorithm 4, with
 * keepPrunedConnections): walk the candidates from nearest to farthest and
 * keep one unless it is nearer to an already kept neighbour than to the
 * base node; then fill the remaining room with the nearest of the skipped
 * ones, so lists stay full (as pgvector does; sparse lists cost recall).
 * cands must be sorted by ascending distance to the base; pairdist(arg, i,
 * j) gives the distance between candidates i and j.  Returns the number
 * kept; out[] receives their indexes into cands.
 */
int
HnswSelectNeighbors(const HnswInfo *info, HnswCandidate *cands, int ncands,
					int capacity, const float *unused, uint32 *out,
					double (*pairdist) (void *arg, int i, int j), void *arg)
{
	int			nout = 0;
	int			nskipped = 0;
	int		   *skipped;

	if (ncands <= capacity)
	{
		for (int i = 0; i < ncands; i++)
			out[i] = i;
		return ncands;
	}
	skipped = palloc(sizeof(int) * ncands);
	for (int i = 0; i < ncands && nout < capacity; i++)
	{
		bool		keep = true;

		for (int k = 0; k < nout; k++)
		{
			if (pairdist(arg, i, out[k]) < cands[i].distance)
			{
				keep = false;
				break;
			}
		}
		if (keep)
			out[nout++] = i;
		else
			skipped[nskipped++] = i;
	}
	for (int k = 0; k < nskipped && nout < capacity; k++)
		out[nout++] = skipped[k];
	pfree(skipped);
	return nout;
}
