/*-------------------------------------------------------------------------
 *
 * ragretrieve.c
 *	  retrieve() and retrieve_hybrid(): the k most relevant rows of a
 *	  registered source that the caller may see.
 *
 * Every query runs as the caller and is planned for this call with the
 * actual parameter values (a custom plan: SPI_execute_with_args, or for the
 * vector query a kept statement prepared with CURSOR_OPT_CUSTOM_PLAN), so
 * row-level security, column privileges and the caller's own settings
 * (hnsw.ef_search ...) decide what comes back.  Column and table
 * names come from the registration and are quoted; operators and functions
 * are schema-qualified; the question only ever travels as a parameter.
 *
 * Hybrid retrieval runs the vector query and the full-text query separately,
 * each ranked and limited to "candidates" rows, and fuses them in C by
 * reciprocal rank fusion:
 *
 *		score(row) = wv / (rrf_k + rank_v(row)) + wt / (rrf_k + rank_t(row))
 *
 * with a missing rank contributing nothing.  Rows are matched across the two
 * lists by (tableoid, ctid), which identifies a row version regardless of the
 * id column's type; both queries run read-only, on the calling statement's
 * snapshot, so a row has the same version (and ctid) in both lists.  The
 * full-text side matches with the extension's leakproof @@ operator, so a
 * GIN index (rag_tsvector_ops) stays usable below a row-level security
 * policy, and ranks with ts_rank_cd, which reads only the row and the
 * query: no corpus statistics, so nothing about rows the caller cannot see
 * enters a score (README, "Full text under RLS").
 *
 * IDENTIFICATION
 *	  src/rag/ragretrieve.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "rag.h"

PG_FUNCTION_INFO_V1(rag_retrieve_vector);
PG_FUNCTION_INFO_V1(rag_retrieve_text);
PG_FUNCTION_INFO_V1(rag_retrieve_hybrid);

#define RAG_MAX_K			1000
#define RAG_MAX_CANDIDATES	10000

static const char *
distance_operator(const char *distance)
{
	if (strcmp(distance, "l2") == 0)
		return "<->";
	if (strcmp(distance, "ip") == 0)
		return "<#>";
	if (strcmp(distance, "l1") == 0)
		return "<+>";
	return "<=>";
}

/* higher is better: 1 - cosine distance, the inner product, -L2, -L1 */
static double
distance_to_score(const char *distance, double d)
{
	if (strcmp(distance, "cosine") == 0)
		return 1.0 - d;
	return -d;
}

/*
 * The query shared by both sides: the best $2 rows by "rankexpr" (ordered
 * by "order", filtered by "where" when not NULL), as tableoid, ctid, id,
 * content, rank, metadata, title, url.  The inner query returns plain
 * columns, so that the casts and jsonb_build_object run for the $2 rows
 * returned, not for every row a sort or a filtered index scan looks at;
 * the inner ORDER BY is exactly the index's ordering expression.
 */
static void
build_ranked_query(StringInfo sql, RagSource *src, const char *rankexpr,
				   const char *where, const char *order, bool descending)
{
	ListCell   *lc;
	int			i = 0;
	int			title = -1;
	int			url = -1;

	appendStringInfoString(sql,
						   "SELECT x.tableoid, x.ctid, CAST(x.c_id AS pg_catalog.text),"
						   " CAST(x.c_content AS pg_catalog.text), x.c_rank,"
						   " pg_catalog.jsonb_build_object(");
	foreach(lc, src->metadata_cols)
	{
		char	   *col = (char *) lfirst(lc);

		appendStringInfo(sql, "%s%s, x.c_m%d", i ? ", " : "", quote_literal_cstr(col), i);
		if (strcmp(col, "title") == 0)
			title = i;
		if (strcmp(col, "url") == 0)
			url = i;
		i++;
	}
	appendStringInfoString(sql, "), ");
	if (title >= 0)
		appendStringInfo(sql, "CAST(x.c_m%d AS pg_catalog.text), ", title);
	else
		appendStringInfoString(sql, "NULL, ");
	if (url >= 0)
		appendStringInfo(sql, "CAST(x.c_m%d AS pg_catalog.text)", url);
	else
		appendStringInfoString(sql, "NULL");

	appendStringInfo(sql,
					 " FROM (SELECT t.tableoid, t.ctid, t.%s AS c_id, t.%s AS c_content, %s AS c_rank",
					 quote_identifier(src->id_col), quote_identifier(src->content_col),
					 rankexpr);
	i = 0;
	foreach(lc, src->metadata_cols)
		appendStringInfo(sql, ", t.%s AS c_m%d", quote_identifier((char *) lfirst(lc)), i++);
	appendStringInfo(sql, " FROM %s t", src->rel_q);
	if (where)
		appendStringInfo(sql, " WHERE %s", where);
	appendStringInfo(sql, " ORDER BY %s LIMIT $2) x ORDER BY x.c_rank%s, x.tableoid, x.ctid",
					 order, descending ? " DESC" : "");
}

/* Turn the rows of the last SPI query into RagHits; rank column is 5. */
static List *
collect_hits(bool vector_side, const char *distance)
{
	List	   *hits = NIL;
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RagHit	   *h;
		bool		isnull;
		Datum		d;

		CHECK_FOR_INTERRUPTS();
		d = SPI_getbinval(tup, desc, 5, &isnull);
		if (isnull)
			continue;			/* no embedding: not a vector candidate */
		h = palloc0(sizeof(RagHit));
		h->score = DatumGetFloat8(d);
		if (vector_side)
			h->score = distance_to_score(distance, h->score);
		h->tableoid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 2, &isnull)),
						&h->tid);
		h->id = SPI_getvalue(tup, desc, 3);
		h->content = SPI_getvalue(tup, desc, 4);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		h->metadata = datumCopy(d, false, -1);
		h->title = SPI_getvalue(tup, desc, 7);
		h->url = SPI_getvalue(tup, desc, 8);
		if (vector_side)
			h->vector_rank = list_length(hits) + 1;
		else
			h->text_rank = list_length(hits) + 1;
		hits = lappend(hits, h);
	}
	SPI_freetuptable(SPI_tuptable);
	return hits;
}

/*
 * Kept statements of the vector query, one per source (and statement
 * text).  Only the parse, analysis and rewrite are kept: the statement is
 * prepared with CURSOR_OPT_CUSTOM_PLAN, so every execution is planned anew
 * with the actual question and limit, as SPI_execute_with_args would (a
 * generic plan shared between callers whose policies select different
 * tenants is never used).  The plan cache itself re-analyzes the statement
 * when the relation, its policies or the calling role change (row-level
 * security is applied at rewrite, so a statement rewritten for one role is
 * never run by another), or the search path does; privileges are checked
 * at every execution.  A changed registration changes the text, and a
 * re-created extension the type of $1; either replaces the entry.
 */
#define RAG_MAX_KEPT_PLANS 64

typedef struct RagKeptPlan
{
	Oid			relid;			/* hash key */
	char	   *sql;			/* in TopMemoryContext */
	Oid			vector_type;	/* of $1: the extension may be re-created */
	SPIPlanPtr	plan;			/* kept (SPI_keepplan) */
} RagKeptPlan;

static HTAB *kept_plans = NULL;

static SPIPlanPtr
vector_query_plan(Oid relid, const char *sql, Oid *argtypes)
{
	RagKeptPlan *entry;
	bool		found;
	SPIPlanPtr	plan;

	if (kept_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RagKeptPlan);
		kept_plans = hash_create("genai rag kept plans", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(kept_plans, &relid, HASH_FIND, NULL);
	if (entry != NULL && entry->vector_type == argtypes[0] &&
		strcmp(entry->sql, sql) == 0)
		return entry->plan;

	plan = SPI_prepare_cursor(sql, 2, argtypes, CURSOR_OPT_CUSTOM_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %d", SPI_result);
	if (entry == NULL && hash_get_num_entries(kept_plans) >= RAG_MAX_KEPT_PLANS)
	{
		HASH_SEQ_STATUS status;
		RagKeptPlan *e;

		/* many sources in one session: start over */
		hash_seq_init(&status, kept_plans);
		while ((e = hash_seq_search(&status)) != NULL)
		{
			SPI_freeplan(e->plan);
			pfree(e->sql);
			hash_search(kept_plans, &e->relid, HASH_REMOVE, NULL);
		}
	}
	SPI_keepplan(plan);
	entry = hash_search(kept_plans, &relid, HASH_ENTER, &found);
	if (found)
	{
		SPI_freeplan(entry->plan);
		pfree(entry->sql);
	}
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->vector_type = argtypes[0];
	entry->plan = plan;
	return plan;
}

/* The "limit" nearest rows by the registered distance. */
List *
RagRetrieveVector(RagExtension *ext, RagSource *src, Datum qvec, int limit)
{
	StringInfoData sql;
	StringInfoData dist;
	Oid			argtypes[2];
	Datum		values[2];
	int			ret;

	initStringInfo(&dist);
	appendStringInfo(&dist, "t.%s OPERATOR(%s.%s) $1",
					 quote_identifier(src->embedding_col), ext->schema_q,
					 distance_operator(src->distance));
	initStringInfo(&sql);
	build_ranked_query(&sql, src, dist.data, NULL, dist.data, false);

	argtypes[0] = ext->vector_type;
	argtypes[1] = INT4OID;
	values[0] = qvec;
	values[1] = Int32GetDatum(limit);
	ret = SPI_execute_plan(vector_query_plan(src->relid, sql.data, argtypes),
						   values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %d", ret);
	pfree(sql.data);
	pfree(dist.data);
	return collect_hits(true, src->distance);
}

/* The "limit" best full-text matches of the question, by ts_rank_cd. */
static List *
retrieve_text(RagExtension *ext, RagSource *src, const char *question, int limit)
{
	StringInfoData sql;
	StringInfoData tsv;
	StringInfoData rank;
	StringInfoData where;
	Oid			argtypes[3] = {REGCONFIGOID, TEXTOID, INT4OID};
	Datum		values[3];
	Datum		query;
	bool		isnull;
	int			ret;

	/* parse the question once; a query with no lexemes matches nothing */
	values[0] = ObjectIdGetDatum(src->ts_config);
	values[1] = CStringGetTextDatum(question);
	ret = SPI_execute_with_args("SELECT q, pg_catalog.numnode(q) FROM"
								" pg_catalog.websearch_to_tsquery($1, $2) q",
								2, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	if (DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
									&isnull)) == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return NIL;
	}
	query = datumCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									&isnull), false, -1);
	SPI_freetuptable(SPI_tuptable);

	initStringInfo(&tsv);
	if (src->tsvector_col)
		appendStringInfo(&tsv, "t.%s", quote_identifier(src->tsvector_col));
	else
		appendStringInfo(&tsv,
						 "pg_catalog.to_tsvector($3, CAST(t.%s AS pg_catalog.text))",
						 quote_identifier(src->content_col));
	initStringInfo(&rank);
	appendStringInfo(&rank, "pg_catalog.ts_rank_cd(%s, $1)", tsv.data);
	initStringInfo(&where);
	appendStringInfo(&where, "%s OPERATOR(%s.@@) $1", tsv.data, ext->schema_q);
	initStringInfo(&sql);
	build_ranked_query(&sql, src, rank.data, where.data,
					   "c_rank DESC, t.tableoid, t.ctid", true);

	argtypes[0] = TSQUERYOID;
	argtypes[1] = INT4OID;
	argtypes[2] = REGCONFIGOID;
	values[0] = query;
	values[1] = Int32GetDatum(limit);
	values[2] = ObjectIdGetDatum(src->ts_config);
	ret = SPI_execute_with_args(sql.data, 3, argtypes, values, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	pfree(sql.data);
	return collect_hits(false, NULL);
}

static int
compare_fused(const ListCell *a, const ListCell *b)
{
	RagHit	   *x = (RagHit *) lfirst(a);
	RagHit	   *y = (RagHit *) lfirst(b);
	int			xr;
	int			yr;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	/* ties: the better of the two ranks, then the vector rank */
	xr = Min(x->vector_rank ? x->vector_rank : INT_MAX, x->text_rank ? x->text_rank : INT_MAX);
	yr = Min(y->vector_rank ? y->vector_rank : INT_MAX, y->text_rank ? y->text_rank : INT_MAX);
	if (xr != yr)
		return xr < yr ? -1 : 1;
	if (x->vector_rank != y->vector_rank)
		return (x->vector_rank ? x->vector_rank : INT_MAX) <
			(y->vector_rank ? y->vector_rank : INT_MAX) ? -1 : 1;
	return 0;
}

/*
 * Reciprocal rank fusion of the vector and text candidates; qvec may be 0
 * when vector_weight is 0.
 */
List *
RagRetrieveHybrid(RagExtension *ext, RagSource *src, const char *question,
				  Datum qvec, int k, double vector_weight, double text_weight,
				  int rrf_k, int candidates)
{
	List	   *vhits = NIL;
	List	   *thits = NIL;
	List	   *fused = NIL;
	ListCell   *lc;

	if (vector_weight > 0)
		vhits = RagRetrieveVector(ext, src, qvec, candidates);
	if (text_weight > 0)
		thits = retrieve_text(ext, src, question, candidates);

	foreach(lc, vhits)
	{
		RagHit	   *h = (RagHit *) lfirst(lc);

		h->score = vector_weight / (rrf_k + h->vector_rank);
		fused = lappend(fused, h);
	}
	foreach(lc, thits)
	{
		RagHit	   *t = (RagHit *) lfirst(lc);
		double		contribution = text_weight / (rrf_k + t->text_rank);
		ListCell   *lc2;
		bool		found = false;

		CHECK_FOR_INTERRUPTS();
		foreach(lc2, vhits)
		{
			RagHit	   *v = (RagHit *) lfirst(lc2);

			if (v->tableoid == t->tableoid && ItemPointerEquals(&v->tid, &t->tid))
			{
				v->text_rank = t->text_rank;
				v->score += contribution;
				found = true;
				break;
			}
		}
		if (!found)
		{
			t->score = contribution;
			fused = lappend(fused, t);
		}
	}
	list_sort(fused, compare_fused);
	if (list_length(fused) > k)
		fused = list_truncate(fused, k);
	return fused;
}

/* ---------------------------------------------------------------------
 * SQL-callable functions
 * ---------------------------------------------------------------------
 */

static void
check_k(int k)
{
	if (k < 1 || k > RAG_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d", RAG_MAX_K)));
}

/* Emit hits into the materialized result; hybrid adds both ranks. */
static void
emit_hits(FunctionCallInfo fcinfo, List *hits, bool hybrid)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	foreach(lc, hits)
	{
		RagHit	   *h = (RagHit *) lfirst(lc);
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(h->id ? h->id : "");
		nulls[0] = (h->id == NULL);
		values[1] = CStringGetTextDatum(h->content ? h->content : "");
		nulls[1] = (h->content == NULL);
		values[2] = Float8GetDatum(h->score);
		values[3] = h->metadata;
		if (hybrid)
		{
			values[4] = Int32GetDatum(h->vector_rank);
			nulls[4] = (h->vector_rank == 0);
			values[5] = Int32GetDatum(h->text_rank);
			nulls[5] = (h->text_rank == 0);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* the shared body of retrieve(vector | text, ...) */
static Datum
retrieve_common(FunctionCallInfo fcinfo, bool text_question)
{
	Oid			relid = PG_GETARG_OID(1);
	int			k = PG_GETARG_INT32(2);
	RagExtension ext;
	RagSource  *src;
	RagAuditEntry audit;
	Datum		qvec;
	char	   *question = NULL;
	bool		cache_hit = false;
	List	   *hits;

	memset(&audit, 0, sizeof(audit));
	INSTR_TIME_SET_CURRENT(audit.start);
	check_k(k);
	RagAuditCheckWritable("retrieve()");
	InitMaterializedSRF(fcinfo, 0);

	RagGetExtension(&ext);
	SPI_connect();

	src = RagLookupSource(&ext, relid);
	if (text_question)
	{
		question = text_to_cstring(PG_GETARG_TEXT_PP(0));
		qvec = RagEmbed(&ext, src, question, &cache_hit);
	}
	else
		qvec = PG_GETARG_DATUM(0);

	hits = RagRetrieveVector(&ext, src, qvec, k);

	audit.call = "retrieve";
	audit.source = relid;
	audit.hits = hits;
	audit.provider = text_question ? src->provider : NULL;
	audit.model = text_question ? src->model : NULL;
	audit.prompt_tokens = -1;
	audit.completion_tokens = -1;
	audit.status = cache_hit ? "ok (cached embedding)" : "ok";
	audit.question = question;
	RagAuditWrite(&ext, &audit);

	/* the tuplestore copies the rows; hits die with the SPI context */
	emit_hits(fcinfo, hits, false);
	SPI_finish();
	return (Datum) 0;
}

/* retrieve(question vector, source regclass, k integer) */
Datum
rag_retrieve_vector(PG_FUNCTION_ARGS)
{
	return retrieve_common(fcinfo, false);
}

/* retrieve(question text, source regclass, k integer) */
Datum
rag_retrieve_text(PG_FUNCTION_ARGS)
{
	return retrieve_common(fcinfo, true);
}

/*
 * retrieve_hybrid(question text, source regclass, k, vector_weight,
 *				   text_weight, rrf_k, candidates, question_vector)
 */
Datum
rag_retrieve_hybrid(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int			k;
	double		vw;
	double		tw;
	int			rrf_k;
	int			candidates;
	char	   *question;
	RagExtension ext;
	RagSource  *src;
	RagAuditEntry audit;
	Datum		qvec = (Datum) 0;
	bool		cache_hit = false;
	bool		embedded = false;
	List	   *hits;
	int			i;

	for (i = 0; i < 6; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("only the question vector of hybrid retrieval may be null")));
	question = text_to_cstring(PG_GETARG_TEXT_PP(0));
	relid = PG_GETARG_OID(1);
	k = PG_GETARG_INT32(2);
	vw = PG_GETARG_FLOAT8(3);
	tw = PG_GETARG_FLOAT8(4);
	rrf_k = PG_GETARG_INT32(5);
	candidates = PG_ARGISNULL(6) ? Max(4 * k, 20) : PG_GETARG_INT32(6);

	memset(&audit, 0, sizeof(audit));
	INSTR_TIME_SET_CURRENT(audit.start);
	check_k(k);
	if (vw < 0 || tw < 0 || isnan(vw) || isnan(tw) || (vw == 0 && tw == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hybrid weights must be non-negative and not both zero")));
	if (rrf_k < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rrf_k must not be negative")));
	if (candidates < k || candidates > RAG_MAX_CANDIDATES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("candidates must be between k and %d", RAG_MAX_CANDIDATES)));
	RagAuditCheckWritable("retrieve_hybrid()");
	InitMaterializedSRF(fcinfo, 0);

	RagGetExtension(&ext);
	SPI_connect();

	src = RagLookupSource(&ext, relid);
	if (vw > 0)
	{
		if (!PG_ARGISNULL(7))
			qvec = PG_GETARG_DATUM(7);
		else
		{
			qvec = RagEmbed(&ext, src, question, &cache_hit);
			embedded = true;
		}
	}
	hits = RagRetrieveHybrid(&ext, src, question, qvec, k, vw, tw, rrf_k, candidates);

	audit.call = "retrieve_hybrid";
	audit.source = relid;
	audit.hits = hits;
	audit.provider = embedded ? src->provider : NULL;
	audit.model = embedded ? src->model : NULL;
	audit.prompt_tokens = -1;
	audit.completion_tokens = -1;
	audit.status = cache_hit ? "ok (cached embedding)" : "ok";
	audit.question = question;
	RagAuditWrite(&ext, &audit);

	emit_hits(fcinfo, hits, true);
	SPI_finish();
	return (Datum) 0;
}
