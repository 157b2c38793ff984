/*-------------------------------------------------------------------------
 *
 * ragcall.c
 *	  Calls into the endpoints and tokenizer subsystems, through SQL, and
 *	  the role-scoped embedding cache.
 *
 * rag depends on the other subsystems only through their SQL functions
 * (embed, llm_complete, token_count, truncate_tokens), called as the caller
 * so that their own privilege checks (GRANT USAGE on a provider) apply.
 * Values always travel as SPI parameters.
 *
 * The embedding cache is keyed by the calling role, provider, model,
 * dimensions and the SHA-256 of the text.  Whether a text is cached, and how
 * fast it comes back, therefore tells a role only about its own earlier
 * calls.  The cache table is readable and writable only by the extension's
 * owner; this code switches to that owner for the lookup and the insert.
 *
 * IDENTIFICATION
 *	  src/rag/ragcall.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "rag.h"

/* Take column 1 of row 0 of SPI_tuptable, copied into the current context. */
static Datum
spi_first_datum(bool *isnull)
{
	Datum		d;
	Form_pg_attribute att;

	if (SPI_processed == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	if (*isnull)
		return (Datum) 0;
	att = TupleDescAttr(SPI_tuptable->tupdesc, 0);
	return datumCopy(d, att->attbyval, att->attlen);
}

/* cache key columns (NULL provider/model mean the defaults: stored as '') */
static void
cache_key(RagSource *src, const char *str, Datum *values)
{
	values[0] = ObjectIdGetDatum(GetUserId());
	values[1] = CStringGetTextDatum(src->provider ? src->provider : "");
	values[2] = CStringGetTextDatum(src->model ? src->model : "");
	values[3] = Int32GetDatum(src->dimensions);
	values[4] = CStringGetTextDatum(str);
}

/*
 * embed(text) with the source's provider, model and dimensions, through the
 * caller's cache.  Returns a vector datum in the current context.
 */
Datum
RagEmbed(RagExtension *ext, RagSource *src, const char *str, bool *cache_hit)
{
	StringInfoData sql;
	Oid			keytypes[5] = {OIDOID, TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		key[5];
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4];
	char		nulls[4] = {' ', 'n', 'n', 'n'};
	Datum		vec;
	bool		isnull;
	bool		use_cache = rag_embedding_cache_enabled;
	int			ret;

	*cache_hit = false;
	initStringInfo(&sql);
	cache_key(src, str, key);

	if (use_cache)
	{
		appendStringInfo(&sql,
						 "SELECT embedding FROM %s.rag_embedding_cache"
						 " WHERE roleid OPERATOR(pg_catalog.=) $1"
						 " AND provider OPERATOR(pg_catalog.=) $2"
						 " AND model OPERATOR(pg_catalog.=) $3"
						 " AND dimensions OPERATOR(pg_catalog.=) $4"
						 " AND text_hash OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.textsend($5))",
						 ext->schema_q);
		ret = RagExecuteAsOwner(ext, sql.data, 5, keytypes, key, NULL, true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_with_args failed: %d", ret);
		vec = spi_first_datum(&isnull);
		SPI_freetuptable(SPI_tuptable);
		if (!isnull)
		{
			*cache_hit = true;
			return vec;
		}
	}

	/* a miss: embed as the caller */
	values[0] = CStringGetTextDatum(str);
	if (src->model)
	{
		values[1] = CStringGetTextDatum(src->model);
		nulls[1] = ' ';
	}
	if (src->provider)
	{
		values[2] = CStringGetTextDatum(src->provider);
		nulls[2] = ' ';
	}
	if (src->dimensions > 0)
	{
		values[3] = Int32GetDatum(src->dimensions);
		nulls[3] = ' ';
	}
	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s.embed($1, $2, $3, $4)", ext->schema_q);
	ret = SPI_execute_with_args(sql.data, 4, argtypes, values, nulls, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	vec = spi_first_datum(&isnull);
	SPI_freetuptable(SPI_tuptable);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("embedding provider returned no embedding for the question")));

	/* remember it, unless the transaction cannot write */
	if (use_cache && !XactReadOnly && !RecoveryInProgress())
	{
		Oid			instypes[6] = {OIDOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, InvalidOid};
		Datum		ins[6];

		memcpy(ins, key, sizeof(key));
		ins[5] = vec;
		instypes[5] = ext->vector_type;
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "INSERT INTO %s.rag_embedding_cache"
						 " (roleid, provider, model, dimensions, text_hash, embedding)"
						 " VALUES ($1, $2, $3, $4, pg_catalog.sha256(pg_catalog.textsend($5)), $6)"
						 " ON CONFLICT DO NOTHING",
						 ext->schema_q);
		ret = RagExecuteAsOwner(ext, sql.data, 6, instypes, ins, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	}
	pfree(sql.data);
	return vec;
}

/* one SQL call "SELECT <schema>.<fn>(args)" as the caller; column 1 of row 0 */
static Datum
call_sql(RagExtension *ext, const char *fn, int nargs, Oid *argtypes,
		 Datum *values, const char *nulls, bool *isnull)
{
	StringInfoData sql;
	Datum		d;
	int			i;
	int			ret;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s.%s(", ext->schema_q, fn);
	for (i = 0; i < nargs; i++)
		appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
	appendStringInfoChar(&sql, ')');
	ret = SPI_execute_with_args(sql.data, nargs, argtypes, values, nulls, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	d = spi_first_datum(isnull);
	SPI_freetuptable(SPI_tuptable);
	pfree(sql.data);
	return d;
}

/* llm_complete(prompt, model, system_prompt, temperature, max_tokens, provider) */
char *
RagComplete(RagExtension *ext, const char *prompt, const char *model,
			const char *system_prompt, double temperature, int max_tokens,
			const char *provider)
{
	Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, INT4OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', 'n', 'n', ' ', ' ', 'n'};
	Datum		d;
	bool		isnull;

	values[0] = CStringGetTextDatum(prompt);
	if (model)
	{
		values[1] = CStringGetTextDatum(model);
		nulls[1] = ' ';
	}
	if (system_prompt)
	{
		values[2] = CStringGetTextDatum(system_prompt);
		nulls[2] = ' ';
	}
	values[3] = Float8GetDatum(temperature);
	values[4] = Int32GetDatum(max_tokens);
	if (provider)
	{
		values[5] = CStringGetTextDatum(provider);
		nulls[5] = ' ';
	}
	d = call_sql(ext, "llm_complete", 6, argtypes, values, nulls, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

/* token_count(text, encoding) */
int
RagTokenCount(RagExtension *ext, const char *str, const char *encoding)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	Datum		d;
	bool		isnull;

	values[0] = CStringGetTextDatum(str);
	values[1] = CStringGetTextDatum(encoding);
	d = call_sql(ext, "token_count", 2, argtypes, values, NULL, &isnull);
	if (isnull)
		elog(ERROR, "token_count returned NULL");
	return DatumGetInt32(d);
}

/* truncate_tokens(text, max_tokens, encoding) */
char *
RagTruncateTokens(RagExtension *ext, const char *str, int max_tokens,
				  const char *encoding)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		values[3];
	Datum		d;
	bool		isnull;

	values[0] = CStringGetTextDatum(str);
	values[1] = Int32GetDatum(max_tokens);
	values[2] = CStringGetTextDatum(encoding);
	d = call_sql(ext, "truncate_tokens", 3, argtypes, values, NULL, &isnull);
	return isnull ? pstrdup("") : TextDatumGetCString(d);
}
