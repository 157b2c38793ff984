/*-------------------------------------------------------------------------
 *
 * hnsw.h
 *	  Public interface of the hnsw index access method: page layout,
 *	  node slots, settings and the routines shared by build, insert,
 *	  scan, vacuum and the verifier.
 *
 * An index is one relation of 8 kB pages.  Block 0 is the metapage.  The
 * other pages are either node pages, an array of fixed-size slots (one
 * graph node each: heap TID, level, flags, the 2m level-0 links and the
 * vector), or upper pages, ordinary line-pointer pages holding one tuple
 * per node of level >= 1 with its m links per upper level.  A node's id
 * (nid) is its address: nid = block * slots_per_page + slot, so links are
 * 4-byte integers and no line-pointer lookup stands between a link and
 * the data it names.  See src/hnsw/README.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnsw.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_HNSW_H
#define GENAI_HNSW_H

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/itup.h"
#include "common/pg_prng.h"
#include "lib/pairingheap.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "utils/relcache.h"

#include "vector/vector.h"

/* Options and their limits (pgvector's) */
#define HNSW_DEFAULT_M				16
#define HNSW_MIN_M					2
#define HNSW_MAX_M					100
#define HNSW_DEFAULT_EF_CONSTRUCTION 64
#define HNSW_MIN_EF_CONSTRUCTION	4
#define HNSW_MAX_EF_CONSTRUCTION	1000
#define HNSW_DEFAULT_EF_SEARCH		40
#define HNSW_MIN_EF_SEARCH			1
#define HNSW_MAX_EF_SEARCH			1000

/* The level of a node is capped so an upper tuple always fits a page. */
#define HNSW_MAX_LEVEL				15

/* Support function numbers (pgvector's) */
#define HNSW_DISTANCE_PROC			1
#define HNSW_NORM_PROC				2

#define HNSW_MAGIC					0x484E5357	/* "HNSW" */
#define HNSW_VERSION				1
#define HNSW_METAPAGE_BLKNO			0

/* Heavyweight lock taken on this "page" by writers (see README) */
#define HNSW_UPDATE_LOCK			0

#define HNSW_INVALID_NID			((uint32) 0xFFFFFFFF)

/* Page types, stored in the special space */
#define HNSW_PAGE_META				1
#define HNSW_PAGE_NODE				2
#define HNSW_PAGE_UPPER				3
#define HNSW_PAGE_KEYDIR			4	/* key directory (hnswfilter.c) */
#define HNSW_PAGE_ID				0xFF91

/* Metrics, from the opclass's distance support function */
typedef enum HnswMetric
{
	HNSW_METRIC_L2 = 1,
	HNSW_METRIC_IP = 2,
	HNSW_METRIC_COSINE = 3,
	HNSW_METRIC_L1 = 4
} HnswMetric;

/*
 * How vectors are stored in the node slots (hnswstorage.c).  The reloption
 * value 0 (auto) is resolved at build time; the metapage records the kind.
 */
typedef enum HnswStorage
{
	HNSW_STORAGE_AUTO = 0,		/* reloption only */
	HNSW_STORAGE_FP32 = 1,		/* float4, exact */
	HNSW_STORAGE_FP16 = 2,		/* IEEE half + error norms */
	HNSW_STORAGE_SQ8 = 3		/* per-vector affine 8-bit codes + error norms */
} HnswStorage;

/*
 * Compressed kinds start the stored vector with this header: the error of
 * the stored approximation x~ of x, ||x - x~|| (L2) and |x - x~|_1 (L1),
 * and ||x||, each rounded up to a float; sq8 adds its affine map (x~[i] =
 * lo + code[i] * scale).  The codes follow.  With them a scan turns the
 * distance to x~ into a lower bound of the distance to x (see README).
 */
typedef struct HnswCodeHeader
{
	float		err2;
	float		err1;
	float		norm;
} HnswCodeHeader;

typedef struct HnswSq8Header
{
	HnswCodeHeader h;
	float		lo;
	float		scale;
} HnswSq8Header;

typedef struct HnswPageOpaqueData
{
	uint16		type;			/* HNSW_PAGE_* */
	uint16		nused;			/* node pages: slots in use */
	uint16		unused;
	uint16		page_id;		/* HNSW_PAGE_ID, for tools */
} HnswPageOpaqueData;

typedef HnswPageOpaqueData *HnswPageOpaque;

#define HnswPageGetOpaque(page) ((HnswPageOpaque) PageGetSpecialPointer(page))

/*
 * The type of a page; 0 for an all-zero page (a page added by a backend
 * that crashed before WAL-logging its first use), which is free to take.
 */
static inline uint16
HnswPageType(Page page)
{
	return PageIsNew(page) ? 0 : HnswPageGetOpaque(page)->type;
}

typedef struct HnswMetaPageData
{
	uint32		magic;
	uint32		version;
	uint16		dims;
	uint8		metric;			/* HnswMetric */
	uint8		storage;		/* HnswStorage */
	uint16		m;
	uint16		ef_construction;
	uint16		slot_size;		/* bytes per node slot */
	uint16		slots_per_page;
	uint32		entry_nid;		/* entry point, HNSW_INVALID_NID if empty */
	int32		entry_level;	/* its level, -1 if empty */
	BlockNumber insert_page;	/* first node page that may have a free slot */
	BlockNumber upper_page;		/* upper page new upper tuples go to */
	uint16		nkeys;			/* filter-key columns after the vector (0 in
								 * indexes built before keys existed: the
								 * page was zeroes there) */
	uint16		keydir;			/* 1: the key directory is maintained (0 in
								 * indexes built before it existed) */
	BlockNumber keydir_blocks[FLEXIBLE_ARRAY_MEMBER];	/* see below */
} HnswMetaPageData;

/*
 * Key directory (hnswfilter.c), in indexes with filter keys: for every node
 * page, a 256-bit summary of the keys of the nodes it holds (one bit per
 * key column and value, hashed).  Directory page i holds the summaries of
 * blocks i * HNSW_KEYDIR_PER_PAGE ... + HNSW_KEYDIR_PER_PAGE - 1; the
 * metapage's keydir_blocks[i] is its block number, 0 while it does not
 * exist.  Invariant: a summary has the bits of every node in its block
 * (bits are set in the WAL record that writes the node and never
 * cleared; freed slots leave stale bits, which only cost a page read).
 * A block whose directory page does not exist must be read.
 */
#define HNSW_KEYDIR_MAX		1024	/* directory pages (about 3M rows at 12
									 * nodes per page); blocks beyond are
									 * always read */
#define HNSW_KEYDIR_ENTRY_WORDS 4	/* 256 bits */
#define HNSW_KEYDIR_PER_PAGE \
	((int) (HNSW_SLOTS_SPACE / (sizeof(uint64) * HNSW_KEYDIR_ENTRY_WORDS)))
#define HNSW_META_SIZE \
	(offsetof(HnswMetaPageData, keydir_blocks) + sizeof(BlockNumber) * HNSW_KEYDIR_MAX)

typedef HnswMetaPageData *HnswMetaPage;

#define HnswPageGetMeta(page) ((HnswMetaPage) PageGetContents(page))

/*
 * A node slot.  The header is followed by the 2m level-0 links (uint32
 * nids, HNSW_INVALID_NID after the last one) and then the vector.  Free
 * slots have flags == 0.
 */
typedef struct HnswSlotHeader
{
	ItemPointerData heaptid;	/* heap row this node indexes */
	uint8		level;			/* top level of the node */
	uint8		flags;			/* HNSW_SLOT_* */
	ItemPointerData uppertid;	/* upper tuple if level > 0 */
	uint16		unused;
} HnswSlotHeader;

#define HNSW_SLOT_USED		0x01
#define HNSW_SLOT_DELETED	0x02	/* heap row dead; awaiting repair and free */

/*
 * Not stored: set by HnswScoreNodes in its out_flags for a node that fails
 * the search's filter-key predicate (hnswfilter.c).  Such a node routes the
 * search but is never a result.
 */
#define HNSW_SCORE_NOMATCH	0x80

/*
 * Filter keys (hnswfilter.c).  An index on (embedding, k1, ..., kn) stores
 * in every slot, between the header and the links, a key area of
 * 8 * (n + 1) bytes: a uint64 null bitmap, then one 8-byte key per column,
 * the value itself for integer, date and bool columns (so ranges work), a
 * 64-bit hash for uuid and text (equality only, rechecked).  Read it with
 * memcpy: slots are only 4-byte aligned.
 */
#define HNSW_MAX_KEYS		4

#define HNSW_SLOTS_START	MAXALIGN(SizeOfPageHeaderData)
#define HNSW_SLOTS_SPACE	(BLCKSZ - HNSW_SLOTS_START - MAXALIGN(sizeof(HnswPageOpaqueData)))

/* An upper tuple: for levels 1..level, m links each */
typedef struct HnswUpperTupleData
{
	uint32		nid;			/* owner */
	uint16		level;
	uint16		unused;
	uint32		links[FLEXIBLE_ARRAY_MEMBER];
} HnswUpperTupleData;

typedef HnswUpperTupleData *HnswUpperTuple;

#define HNSW_UPPER_SIZE(level, m) \
	(offsetof(HnswUpperTupleData, links) + sizeof(uint32) * (level) * (m))

/*
 * What every routine needs to know about an index, fixed at build time and
 * cached in rd_amcache.
 */
typedef struct HnswInfo
{
	int			dims;
	HnswMetric	metric;
	HnswStorage storage;
	int			m;
	int			m0;				/* level-0 capacity, 2m */
	int			ef_construction;
	int			slot_size;
	int			slots_per_page;
	int			nkeys;			/* filter-key columns */
	int			keys_offset;	/* of the key area in a slot */
	int			key_bytes;		/* size of the key area, 0 without keys */
	int			links_offset;	/* of the level-0 links in a slot */
	int			vector_offset;	/* of the vector in a slot */
	int			vector_bytes;
	bool		keydir;			/* the metapage says a key directory is kept */
} HnswInfo;

#define HnswSlotLinks(info, slot) ((uint32 *) ((char *) (slot) + (info)->links_offset))
#define HnswSlotVector(info, slot) ((char *) (slot) + (info)->vector_offset)
#define HnswSlotKeys(info, slot) ((char *) (slot) + (info)->keys_offset)
#define HnswNidBlock(info, nid) ((BlockNumber) ((nid) / (uint32) (info)->slots_per_page))
#define HnswNidSlot(info, nid) ((int) ((nid) % (uint32) (info)->slots_per_page))
#define HnswMakeNid(info, blk, slot) ((uint32) (blk) * (uint32) (info)->slots_per_page + (uint32) (slot))

static inline HnswSlotHeader *
HnswPageGetSlot(const HnswInfo *info, Page page, int slot)
{
	return (HnswSlotHeader *) ((char *) page + HNSW_SLOTS_START + slot * info->slot_size);
}

/* Reloptions */
typedef struct HnswOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			m;
	int			efConstruction;
	int			storage;		/* HnswStorage, AUTO by default */
} HnswOptions;

/* Settings */
typedef enum HnswIterativeScan
{
	HNSW_ITERATIVE_SCAN_OFF,
	HNSW_ITERATIVE_SCAN_RELAXED,
	HNSW_ITERATIVE_SCAN_STRICT
} HnswIterativeScan;

extern int	hnsw_ef_search;
extern int	hnsw_iterative_scan;
extern int	hnsw_max_scan_tuples;

/* Candidate of a layer search: distance and node */
typedef struct HnswCandidate
{
	double		distance;
	uint32		nid;
} HnswCandidate;

/* qsort order of candidates: by distance, ties by node id (deterministic) */
extern int	HnswCandidateCmp(const void *a, const void *b);

/* Array-based binary heap of candidates, min- or max-ordered */
typedef struct HnswHeap
{
	HnswCandidate *items;
	int			count;
	int			capacity;
	bool		max;			/* max-heap if true */
} HnswHeap;

/* Set of visited nids: a bitmap that grows on demand */
typedef struct HnswVisited
{
	uint64	   *words;
	uint32		nwords;
} HnswVisited;

/* State of a search over the on-disk graph */
/*
 * Vectors of the nodes an insert has read (hnswutils.c): its search keeps
 * every scored node's vector here, so choosing its neighbours and
 * re-pruning their lists read almost no page again.  One per backend,
 * emptied at the start of each insert.
 */
typedef struct HnswVecCache HnswVecCache;

typedef struct HnswSearch
{
	Relation	index;
	const HnswInfo *info;
	const float *query;			/* query vector as float (dims) */
	HnswVisited visited;
	HnswHeap	candidates;		/* min-heap, to expand */
	HnswHeap	results;		/* max-heap, nearest found, bounded by ef */
	uint32	   *links;			/* scratch: neighbour list being expanded */
	uint32	   *pending;		/* scratch: unvisited neighbours */
	HnswHeap   *discarded;		/* if set, gets live nodes dropped from results */
	bool		bound;			/* compressed storage: score nodes by a lower
								 * bound of the exact distance (scans), not
								 * by the distance to the stored vector */
	double		qnorm;			/* ||query||, for the bounds */
	float	   *decoded;		/* scratch: a decoded stored vector */
	bool		skip_deleted;	/* deleted nodes may be traversed, not kept */
	int64		ndistances;		/* distances computed, for statistics */
	/* filter keys: nodes failing match() route but are not results */
	bool		(*match) (void *arg, const char *keys);
	void	   *match_arg;
	int64		nmatched;		/* scored nodes that passed match() */
	int64		max_distances;	/* HnswSearchLayer gives up after this (0: never) */
	bool		budget_hit;		/* ... and sets this */
	HnswVecCache *cache;		/* if set, scored nodes' vectors go here */
} HnswSearch;

/* A scan's predicate on the filter keys, from its ScanKeys */
typedef struct HnswKeyCond
{
	int			key;			/* 0-based key column */
	int			strategy;		/* BTLessStrategyNumber ... */
	int64		value;
} HnswKeyCond;

typedef struct HnswKeyFilter
{
	int			nconds;
	HnswKeyCond conds[INDEX_MAX_KEYS * 2];
	bool		never;			/* a NULL comparison value: no row matches */
	bool		recheck;		/* hashed keys: the executor rechecks */
} HnswKeyFilter;

/* hnsw.c */
extern bytea *hnswoptions(Datum reloptions, bool validate);
extern int	HnswGetM(Relation index);
extern int	HnswGetEfConstruction(Relation index);
extern HnswStorage HnswGetStorage(Relation index);

/* hnswfilter.c */
extern bool HnswIsKeyType(Oid type);
extern int	HnswCheckColumns(Relation index);
extern void HnswInfoInitKeys(HnswInfo *info, int nkeys);
extern void HnswFormKeys(Relation index, const HnswInfo *info, Datum *values, bool *isnull,
						 char *out);
extern void HnswKeyFilterInit(Relation index, ScanKey keys, int nkeys, HnswKeyFilter *filter);
extern bool HnswKeyFilterMatch(void *arg, const char *keys);
extern void HnswKeyDirSlotBits(const HnswInfo *info, const char *keys, uint64 *bits);
extern bool HnswKeyDirFilterBits(const HnswKeyFilter *filter, uint64 *bits);
extern void HnswKeyDirBuild(Relation index);
extern bool HnswKeyDirNeedsWrite(const uint64 *entry, const uint64 *bits);
extern uint64 *HnswKeyDirEntry(Page page, int i);
extern void HnswKeyDirInitPage(Page page, const HnswInfo *info);
extern uint8 *HnswKeyDirCandidates(Relation index, const HnswInfo *info,
								   const HnswKeyFilter *filter, BlockNumber nblocks,
								   int64 *ncandidates);
extern bool HnswKeyOpclassValidate(Oid opclassoid, Oid opfamilyoid, Oid opcintype,
								   const char *opclassname);

/* hnswcost.c */
extern void hnswcostestimate(struct PlannerInfo *root, struct IndexPath *path, double loop_count,
							 Cost *indexStartupCost, Cost *indexTotalCost,
							 Selectivity *indexSelectivity, double *indexCorrelation,
							 double *indexPages);

/* hnswutils.c */
extern const HnswInfo *HnswGetInfo(Relation index);
extern void HnswInfoInit(HnswInfo *info, int dims, HnswMetric metric,
						 HnswStorage storage, int m, int ef_construction);
extern HnswStorage HnswChooseStorage(HnswStorage requested, int dims, int m, int nkeys);
extern HnswMetric HnswMetricFromOpclass(Relation index);
extern void HnswReadMeta(Relation index, HnswMetaPageData *meta);
extern void HnswInitPage(Page page, uint16 type, const HnswInfo *info);
extern void HnswInitMetaPage(Page page, const HnswInfo *info);
extern bool HnswPrepareVector(const HnswInfo *info, Datum value, float *out);
extern double HnswDistance(const HnswInfo *info, const float *a, const float *b);
extern double HnswOrderValue(const HnswInfo *info, double distance);
extern double HnswSlotDistance(const HnswSearch *search, const HnswSlotHeader *slot);
extern int	HnswRandomLevel(int m, pg_prng_state *state);
extern int	HnswLayerCapacity(const HnswInfo *info, int level);

extern void HnswHeapInit(HnswHeap *heap, int capacity, bool max);
extern void HnswHeapPush(HnswHeap *heap, double distance, uint32 nid);
extern HnswCandidate HnswHeapPop(HnswHeap *heap);
#define HnswHeapTop(heap) (&(heap)->items[0])

extern void HnswVisitedInit(HnswVisited *visited, uint32 capacity);
extern bool HnswVisitedTestAndSet(HnswVisited *visited, uint32 nid);
extern void HnswVisitedReset(HnswVisited *visited);

extern HnswVecCache *HnswVecCacheAcquire(const HnswInfo *info);
extern const float *HnswVecCacheLookup(HnswVecCache *cache, uint32 nid, uint8 *flags);
extern float *HnswVecCachePut(HnswVecCache *cache, uint32 nid, uint8 flags, bool force);
extern void HnswSearchInit(HnswSearch *search, Relation index, const HnswInfo *info,
						   const float *query);
extern void HnswSearchEnter(HnswSearch *search, uint32 nid);
extern void HnswScoreNodes(HnswSearch *search, uint32 *nids, int n, double *out_dist,
						   uint8 *out_flags);
extern void HnswSearchLayer(HnswSearch *search, int level, int ef);
extern void HnswSearchGreedy(HnswSearch *search, int level);
extern int	HnswReadLinks(Relation index, const HnswInfo *info, uint32 nid, int level,
						  uint32 *links, HnswSlotHeader *hdr);
extern int	HnswSelectNeighbors(const HnswInfo *info, HnswCandidate *cands, int ncands,
								int capacity, const float *vectors, uint32 *out,
								double (*pairdist) (void *arg, int i, int j), void *arg);

/* hnswstorage.c */
extern const char *HnswStorageName(HnswStorage storage);
extern int	HnswStorageBytes(HnswStorage storage, int dims);
extern void HnswStoreVector(const HnswInfo *info, char *dest, const float *src);
extern void HnswLoadVector(const HnswInfo *info, const char *src, float *dest);
extern double HnswLowerBound(const HnswInfo *info, const float *q, double qnorm,
							 const char *stored, float *scratch);

/* hnswinsert.c */
extern bool hnswinsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
					   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
					   struct IndexInfo *indexInfo);
extern void HnswInsertOnDisk(Relation index, const HnswInfo *info, const float *vec,
							 const char *keys, ItemPointer heaptid, bool building);
extern Buffer HnswExtendIndex(Relation index);

/* hnswbuild.c */
extern IndexBuildResult *hnswbuild(Relation heap, Relation index, struct IndexInfo *indexInfo);
extern void hnswbuildempty(Relation index);

/* hnswscan.c */
extern IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys);
extern void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
extern bool hnswgettuple(IndexScanDesc scan, ScanDirection dir);
extern void hnswendscan(IndexScanDesc scan);

/* hnswvacuum.c */
extern IndexBulkDeleteResult *hnswbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback, void *callback_state);
extern IndexBulkDeleteResult *hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);

#endif							/* GENAI_HNSW_H */
