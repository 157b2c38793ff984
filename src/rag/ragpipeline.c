/*-------------------------------------------------------------------------
 *
 * ragpipeline.c
 *	  rag(): embed -> retrieve -> build_prompt -> llm_complete, as one call.
 *
 * Every stage runs as the caller: the question is embedded with the
 * source's registered provider (through the caller's embedding cache), the
 * rows come from the same query retrieve() runs, so the model is given only
 * rows the caller may see, and the completion goes to a provider the
 * caller has USAGE on.  One audit row records the call.  The result is
 *
 *	{"answer": text, "citations": [{"n", "id", "title", "url", "truncated",
 *	  "cited"}], "retrieved_ids": [...], "usage": {"prompt_tokens",
 *	  "completion_tokens", "total_tokens", "budget"}, "model", "provider",
 *	  "omitted": n, "embedding_cached": bool}
 *
 * where citations are the chunks actually given to the model (in prompt
 * order, their numbers as in the prompt) and "cited" says whether the
 * answer mentions "[n]".
 *
 * IDENTIFICATION
 *	  src/rag/ragpipeline.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "rag.h"

PG_FUNCTION_INFO_V1(rag_answer);

static Datum
result_jsonb(const char *answer, RagPrompt *p, List *hits, int completion_tokens,
			 const char *model, const char *provider, bool cached)
{
	StringInfoData buf;
	ListCell   *lc;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"answer\": ");
	RagAppendJsonStringOrNull(&buf, answer);

	appendStringInfoString(&buf, ", \"citations\": [");
	i = 0;
	foreach(lc, p->included)
	{
		RagHit	   *h = (RagHit *) lfirst(lc);
		char		marker[32];

		snprintf(marker, sizeof(marker), "[%d]", i + 1);
		appendStringInfo(&buf, "%s{\"n\": %d, \"id\": ", i ? ", " : "", i + 1);
		RagAppendJsonStringOrNull(&buf, h->id);
		appendStringInfoString(&buf, ", \"title\": ");
		RagAppendJsonStringOrNull(&buf, h->title);
		appendStringInfoString(&buf, ", \"url\": ");
		RagAppendJsonStringOrNull(&buf, h->url);
		appendStringInfo(&buf, ", \"truncated\": %s, \"cited\": %s}",
						 list_member_ptr(p->truncated, h) ? "true" : "false",
						 (answer && strstr(answer, marker)) ? "true" : "false");
		i++;
	}
	appendStringInfoString(&buf, "], \"retrieved_ids\": [");
	i = 0;
	foreach(lc, hits)
	{
		if (i++)
			appendStringInfoString(&buf, ", ");
		RagAppendJsonStringOrNull(&buf, ((RagHit *) lfirst(lc))->id);
	}
	appendStringInfo(&buf,
					 "], \"usage\": {\"prompt_tokens\": %d, \"completion_tokens\": %d,"
					 " \"total_tokens\": %d, \"budget\": %d}",
					 p->prompt_tokens, completion_tokens,
					 p->prompt_tokens + completion_tokens, p->budget);
	appendStringInfoString(&buf, ", \"model\": ");
	RagAppendJsonStringOrNull(&buf, model);
	appendStringInfoString(&buf, ", \"provider\": ");
	RagAppendJsonStringOrNull(&buf, provider);
	appendStringInfo(&buf, ", \"omitted\": %d, \"embedding_cached\": %s}",
					 p->omitted, cached ? "true" : "false");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/*
 * The completion call, with the retrieved rows going to the provider.  With
 * the queued audit write a failure from here on (provider error, timeout,
 * cancel) is recorded too, with its SQLSTATE: the row is prepared before
 * the call and queued from PG_CATCH.  (Transactionally written rows would
 * be rolled back with the failing call.)
 */
static char *
complete_audited(RagExtension *ext, RagPrompt *p, const char *model,
				 double temperature, int answer_reserve, const char *provider,
				 const char *encoding, RagAuditEntry *audit,
				 int *completion_tokens)
{
	char	   *failure_row = RagAuditPrepareFailure(audit);
	char	   *answer = NULL;

	PG_TRY();
	{
		answer = RagComplete(ext, p->user, model, p->system, temperature,
							 answer_reserve, provider);
		*completion_tokens = answer ? RagTokenCount(ext, answer, encoding) : 0;
	}
	PG_CATCH();
	{
		RagAuditQueueFailure(failure_row, audit->start, geterrcode());
		PG_RE_THROW();
	}
	PG_END_TRY();
	return answer;
}

/*
 * rag(question text, source regclass, k integer, hybrid boolean,
 *	   model text, provider text, context_window integer,
 *	   answer_reserve integer, temperature float8, encoding text,
 *	   system_prompt text) -> jsonb
 */
Datum
rag_answer(PG_FUNCTION_ARGS)
{
	char	   *question;
	Oid			relid;
	int			k;
	bool		hybrid;
	char	   *model = NULL;
	char	   *provider = NULL;
	int			context_window;
	int			answer_reserve;
	double		temperature;
	char	   *encoding;
	char	   *system_prompt = NULL;
	MemoryContext oldcxt;
	RagExtension ext;
	RagSource  *src;
	RagAuditEntry audit;
	RagPrompt  *p;
	List	   *hits;
	Datum		qvec;
	bool		cached = false;
	char	   *answer;
	int			completion_tokens;
	Datum		result;
	int			i;

	for (i = 0; i < 11; i++)
		if (i != 4 && i != 5 && i != 10 && PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("only model, provider and system_prompt of rag may be null")));
	memset(&audit, 0, sizeof(audit));
	INSTR_TIME_SET_CURRENT(audit.start);
	question = text_to_cstring(PG_GETARG_TEXT_PP(0));
	relid = PG_GETARG_OID(1);
	k = PG_GETARG_INT32(2);
	hybrid = PG_GETARG_BOOL(3);
	if (!PG_ARGISNULL(4))
		model = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (!PG_ARGISNULL(5))
		provider = text_to_cstring(PG_GETARG_TEXT_PP(5));
	context_window = PG_GETARG_INT32(6);
	answer_reserve = PG_GETARG_INT32(7);
	temperature = PG_GETARG_FLOAT8(8);
	encoding = text_to_cstring(PG_GETARG_TEXT_PP(9));
	if (!PG_ARGISNULL(10))
		system_prompt = text_to_cstring(PG_GETARG_TEXT_PP(10));
	if (k < 1 || k > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d", 1000)));
	RagCheckBudget(context_window, answer_reserve, 1);
	RagAuditCheckWritable("rag()");

	oldcxt = CurrentMemoryContext;
	RagGetExtension(&ext);
	SPI_connect();

	src = RagLookupSource(&ext, relid);

	/*
	 * The completion provider: the argument, else the source's registered
	 * provider, else genai.default_provider; named here for the audit row
	 * and the result.
	 */
	if (provider == NULL && src->provider != NULL)
		provider = src->provider;
	if (provider == NULL)
	{
		const char *dflt = GetConfigOption("genai.default_provider", true, false);

		if (dflt && dflt[0])
			provider = pstrdup(dflt);
	}

	qvec = RagEmbed(&ext, src, question, &cached);
	if (hybrid)
		hits = RagRetrieveHybrid(&ext, src, question, qvec, k, 1.0, 1.0, 60,
								 Max(4 * k, 20));
	else
		hits = RagRetrieveVector(&ext, src, qvec, k);

	p = RagBuildPrompt(&ext, question, hits, context_window, answer_reserve,
					   encoding, system_prompt, 32);

	audit.call = "rag";
	audit.source = relid;
	audit.hits = hits;
	audit.provider = provider;
	audit.model = model;
	audit.prompt_tokens = p->prompt_tokens;
	audit.completion_tokens = -1;
	audit.question = question;

	answer = complete_audited(&ext, p, model, temperature, answer_reserve,
							  provider, encoding, &audit, &completion_tokens);

	audit.completion_tokens = completion_tokens;
	audit.status = "ok";
	RagAuditWrite(&ext, &audit);

	/* the result must outlive the SPI procedure context */
	MemoryContextSwitchTo(oldcxt);
	result = result_jsonb(answer, p, hits, completion_tokens, model, provider, cached);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
