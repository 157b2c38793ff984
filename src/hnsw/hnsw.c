/*-------------------------------------------------------------------------
 *
 * hnsw.c
 *	  The hnsw access method's handler, reloptions and opclass validator
 *	  (the cost estimate is in hnswcost.c).
 *
 * IDENTIFICATION
 *	  src/hnsw/hnsw.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"
#include "utils/syscache.h"

#include "hnsw.h"

PG_FUNCTION_INFO_V1(hnswhandler);

/*
 * Parse and validate reloptions.  ef_construction must be at least 2 * m,
 * as the build keeps ef_construction candidates to choose 2 * m level-0
 * neighbours from.
 */
bytea *
hnswoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(HnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(HnswOptions, efConstruction)},
		{"storage", RELOPT_TYPE_ENUM, offsetof(HnswOptions, storage)},
	};
	extern relopt_kind hnsw_relopt_kind;
	HnswOptions *opts;

	opts = (HnswOptions *) build_reloptions(reloptions, validate, hnsw_relopt_kind,
											sizeof(HnswOptions), tab, lengthof(tab));
	if (validate && opts != NULL && opts->efConstruction < 2 * opts->m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be greater than or equal to 2 * m"),
				 errdetail("ef_construction is %d and m is %d.", opts->efConstruction, opts->m)));
	return (bytea *) opts;
}

int
HnswGetM(Relation index)
{
	HnswOptions *opts = (HnswOptions *) index->rd_options;

	return opts ? opts->m : HNSW_DEFAULT_M;
}

int
HnswGetEfConstruction(Relation index)
{
	HnswOptions *opts = (HnswOptions *) index->rd_options;

	return opts ? opts->efConstruction : HNSW_DEFAULT_EF_CONSTRUCTION;
}

/* The storage reloption; auto is resolved by the build (HnswChooseStorage) */
HnswStorage
HnswGetStorage(Relation index)
{
	HnswOptions *opts = (HnswOptions *) index->rd_options;

	return opts ? (HnswStorage) opts->storage : HNSW_STORAGE_AUTO;
}

/*
 * Validate an opclass: operator 1 is an ordering operator returning
 * float8, support function 1 takes two values of the opclass type and
 * returns float8, support function 2 (optional, cosine) takes one.
 */
static bool
hnswvalidate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamilyoid;
	Oid			opcintype;
	char	   *opclassname;
	CatCList   *proclist,
			   *oprlist;
	bool		has_distance = false;
	bool		has_operator = false;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamilyoid = classform->opcfamily;
	opcintype = classform->opcintype;
	opclassname = NameStr(classform->opcname);

	/* filter-key opclasses (second and later columns): hnswfilter.c */
	if (HnswIsKeyType(opcintype))
	{
		result = HnswKeyOpclassValidate(opclassoid, opfamilyoid, opcintype, opclassname);
		ReleaseSysCache(classtup);
		return result;
	}

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < proclist->n_members; i++)
	{
		Form_pg_amproc procform = (Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple);
		bool		ok;

		if (procform->amproclefttype != opcintype || procform->amprocrighttype != opcintype)
			continue;
		switch (procform->amprocnum)
		{
			case HNSW_DISTANCE_PROC:
				ok = check_amproc_signature(procform->amproc, FLOAT8OID, true,
											2, 2, opcintype, opcintype);
				has_distance = true;
				break;
			case HNSW_NORM_PROC:
				ok = check_amproc_signature(procform->amproc, FLOAT8OID, true,
											1, 1, opcintype);
				break;
			default:
				ereport(INFO,
						(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
						 errmsg("hnsw operator class \"%s\" contains function %s with invalid support number %d",
								opclassname, format_procedure(procform->amproc),
								procform->amprocnum)));
				result = false;
				continue;
		}
		if (!ok)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("hnsw operator class \"%s\" contains function %s with wrong signature for support number %d",
							opclassname, format_procedure(procform->amproc),
							procform->amprocnum)));
			result = false;
		}
	}
	ReleaseCatCacheList(proclist);

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (oprform->amopstrategy != 1 || oprform->amoppurpose != AMOP_ORDER ||
			!check_amop_signature(oprform->amopopr, FLOAT8OID,
								  oprform->amoplefttype, oprform->amoprighttype))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("hnsw operator class \"%s\" contains invalid ordering operator %s",
							opclassname, format_operator(oprform->amopopr))));
			result = false;
			continue;
		}
		if (oprform->amoplefttype == opcintype && oprform->amoprighttype == opcintype)
			has_operator = true;
	}
	ReleaseCatCacheList(oprlist);

	if (!has_distance || !has_operator)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("hnsw operator class \"%s\" is missing its distance operator or support function",
						opclassname)));
		result = false;
	}
	ReleaseSysCache(classtup);
	return result;
}

static char *
hnswbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case 2:
			return "loading tuples";
		case 3:
			return "writing pages";
		default:
			return NULL;
	}
}

Datum
hnswhandler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = 3;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = true;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = hnswbuild;
	amroutine->ambuildempty = hnswbuildempty;
	amroutine->aminsert = hnswinsert;
	amroutine->ambulkdelete = hnswbulkdelete;
	amroutine->amvacuumcleanup = hnswvacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = hnswcostestimate;
	amroutine->amoptions = hnswoptions;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = hnswbuildphasename;
	amroutine->amvalidate = hnswvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = hnswbeginscan;
	amroutine->amrescan = hnswrescan;
	amroutine->amgettuple = hnswgettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = hnswendscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
