/*-------------------------------------------------------------------------
 *
 * vectorunsupported.c
 *	  The ivfflat access method name, registered only to refuse clearly.
 *
 * A pgvector dump may hold "CREATE INDEX ... USING ivfflat".  Without an
 * access method of that name PostgreSQL would say only that it does not
 * exist; with this stub (and operator classes named as pgvector's, so the
 * statement gets past opclass lookup) the build fails with
 * FEATURE_NOT_SUPPORTED and a hint to use hnsw.  No ivfflat index can ever
 * exist, so the other callbacks cannot be reached; they fail the same way.
 *
 * IDENTIFICATION
 *	  src/vector/vectorunsupported.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "access/reloptions.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "utils/float.h"

#include "vector.h"

PG_FUNCTION_INFO_V1(ivfflathandler);

static void
ivfflat_refuse(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("ivfflat indexes are not supported by genai"),
			 errdetail("genai implements pgvector's vector type and its hnsw index, not ivfflat."),
			 errhint("Create the index with USING hnsw and the same operator class.")));
}

static IndexBuildResult *
ivfflatbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	ivfflat_refuse();
	return NULL;
}

static void
ivfflatbuildempty(Relation index)
{
	ivfflat_refuse();
}

static bool
ivfflatinsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
			  Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
			  IndexInfo *indexInfo)
{
	ivfflat_refuse();
	return false;
}

static IndexBulkDeleteResult *
ivfflatbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				  IndexBulkDeleteCallback callback, void *callback_state)
{
	ivfflat_refuse();
	return NULL;
}

static IndexBulkDeleteResult *
ivfflatvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	ivfflat_refuse();
	return NULL;
}

/* the planner never sees an ivfflat index: none can be built */
static void
ivfflatcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
					Cost *indexStartupCost, Cost *indexTotalCost,
					Selectivity *indexSelectivity, double *indexCorrelation,
					double *indexPages)
{
	*indexStartupCost = get_float8_infinity();
	*indexTotalCost = get_float8_infinity();
	*indexSelectivity = 1;
	*indexCorrelation = 0;
	*indexPages = 0;
}

/* accept pgvector's options ("lists"), so the build is what refuses */
static bytea *
ivfflatoptions(Datum reloptions, bool validate)
{
	return NULL;
}

static bool
ivfflatvalidate(Oid opclassoid)
{
	return true;
}

static IndexScanDesc
ivfflatbeginscan(Relation index, int nkeys, int norderbys)
{
	ivfflat_refuse();
	return NULL;
}

static void
ivfflatrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
			  int norderbys)
{
	ivfflat_refuse();
}

static void
ivfflatendscan(IndexScanDesc scan)
{
}

Datum
ivfflathandler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = 1;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = false;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions = 0;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = ivfflatbuild;
	amroutine->ambuildempty = ivfflatbuildempty;
	amroutine->aminsert = ivfflatinsert;
	amroutine->ambulkdelete = ivfflatbulkdelete;
	amroutine->amvacuumcleanup = ivfflatvacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = ivfflatcostestimate;
	amroutine->amoptions = ivfflatoptions;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = NULL;
	amroutine->amvalidate = ivfflatvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = ivfflatbeginscan;
	amroutine->amrescan = ivfflatrescan;
	amroutine->amgettuple = NULL;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = ivfflatendscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
