/*-------------------------------------------------------------------------
 *
 * ragtext.c
 *	  The restriction estimator of the extension's leakproof @@.
 *
 * Declaring the operator LEAKPROOF lets the planner use it below a
 * row-level security policy (README, "Full text under RLS").  It would also
 * let the planner's estimate for it read the column's statistics where the
 * caller may not see every row: PostgreSQL's own tsmatchsel reads the
 * most-common-elements statistics of a tsvector column without checking
 * whether the caller may see all rows, so "EXPLAIN SELECT ... WHERE tsv @@
 * 'word'" estimates from how often a word occurs in rows the caller cannot
 * read.  This estimator asks examine_variable() whether the statistics are
 * fit for this caller (acl_ok: SELECT on the table and no security quals
 * on the relation) and otherwise returns the default selectivity, as
 * PostgreSQL's estimators for non-leakproof operators do.
 *
 * IDENTIFICATION
 *	  src/rag/ragtext.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "nodes/pathnodes.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/selfuncs.h"

PG_FUNCTION_INFO_V1(rag_tsmatchsel);

/* tsmatchsel's own default (ts_selfuncs.c) */
#define RAG_DEFAULT_TS_MATCH_SEL	0.005

/* rag_tsmatchsel(internal, oid, internal, integer) -> float8 */
Datum
rag_tsmatchsel(PG_FUNCTION_ARGS)
{
	PlannerInfo *root = (PlannerInfo *) PG_GETARG_POINTER(0);
	List	   *args = (List *) PG_GETARG_POINTER(2);
	int			varRelid = PG_GETARG_INT32(3);
	VariableStatData vardata;
	Node	   *other;
	bool		varonleft;
	bool		acl_ok;

	if (!get_restriction_variable(root, args, varRelid, &vardata, &other, &varonleft))
		PG_RETURN_FLOAT8(RAG_DEFAULT_TS_MATCH_SEL);
	acl_ok = vardata.acl_ok;
	ReleaseVariableStats(vardata);
	if (!acl_ok)
		PG_RETURN_FLOAT8(RAG_DEFAULT_TS_MATCH_SEL);
	return tsmatchsel(fcinfo);
}
