/*-------------------------------------------------------------------------
 *
 * ragsource.c
 *	  Looks up the extension and a source's registration (rag_source).
 *
 * A registration names columns; every name read from it is quoted with
 * quote_identifier before it reaches generated SQL, so a registration can
 * at worst name a column that does not exist (the query then fails).
 *
 * IDENTIFICATION
 *	  src/rag/ragsource.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "providers/providers.h"
#include "rag.h"

/*
 * The schema and owner of the genai extension (looked up on every call, see
 * GenaiExtensionOwnerAndSchema), and the vector type's oid.
 */
void
RagGetExtension(RagExtension *ext)
{
	GenaiExtensionOwnerAndSchema(&ext->owner, &ext->schema);

	ext->vector_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									   CStringGetDatum("vector"),
									   ObjectIdGetDatum(ext->schema));
	ext->schema_q = pstrdup(quote_identifier(get_namespace_name(ext->schema)));
}

/* Append s as a JSON string, or JSON null when s is NULL. */
void
RagAppendJsonStringOrNull(StringInfo buf, const char *s)
{
	if (s)
		escape_json(buf, s);
	else
		appendStringInfoString(buf, "null");
}

/* Column "col" of row "row" of SPI_tuptable as a palloc'd string, or NULL. */
char *
RagSpiGetText(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* A text[] datum from a List of C strings. */
Datum
RagTextArray(List *strings)
{
	Datum	   *elems;
	ListCell   *lc;
	int			i = 0;

	elems = palloc(sizeof(Datum) * (list_length(strings) + 1));
	foreach(lc, strings)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, i, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

static SPIPlanPtr source_plan = NULL;
static Oid	source_plan_schema = InvalidOid;

/*
 * The registration of "relid", allocated in the SPI procedure context.
 * Everyone may read rag_source; it is read as the extension's owner only so
 * that the policy on it (which shows every row for SELECT) does not trip
 * over "SET row_security = off".
 */
RagSource *
RagLookupSource(RagExtension *ext, Oid relid)
{
	StringInfoData sql;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	RagSource  *src;
	char	   *meta;
	char	   *relname;
	char	   *nspname;
	int			ret;

	relname = get_rel_name(relid);
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	nspname = get_namespace_name(get_rel_namespace(relid));

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT id_column, content_column, embedding_column,"
					 " metadata_columns, tsvector_column, ts_config::pg_catalog.oid,"
					 " distance, provider, model, dimensions"
					 " FROM %s.rag_source WHERE source OPERATOR(pg_catalog.=) $1",
					 ext->schema_q);
	values[0] = ObjectIdGetDatum(relid);

	/*
	 * The lookup runs on every call, so its plan is kept for the session.
	 * The plan cache re-plans it if rag_source is dropped and re-created
	 * (DROP/CREATE EXTENSION); a new schema needs a new statement.
	 */
	if (source_plan == NULL || source_plan_schema != ext->schema)
	{
		SPIPlanPtr	plan;

		if (source_plan)
			SPI_freeplan(source_plan);
		source_plan = NULL;
		plan = SPI_prepare(sql.data, 1, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %d", SPI_result);
		SPI_keepplan(plan);
		source_plan = plan;
		source_plan_schema = ext->schema;
	}
	/* as the owner, so that the caller's row_security setting does not matter */
	ret = RagExecutePlanAsOwner(ext, source_plan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s\" is not registered as a retrieval source",
						relname),
				 errhint("Register it with rag_register().")));

	src = palloc0(sizeof(RagSource));
	src->relid = relid;
	src->rel_q = pstrdup(quote_qualified_identifier(nspname, relname));
	src->id_col = RagSpiGetText(0, 1);
	src->content_col = RagSpiGetText(0, 2);
	src->embedding_col = RagSpiGetText(0, 3);
	src->tsvector_col = RagSpiGetText(0, 5);
	src->ts_config = DatumGetObjectId(DirectFunctionCall1(oidin,
														  CStringGetDatum(RagSpiGetText(0, 6))));
	src->distance = RagSpiGetText(0, 7);
	src->provider = RagSpiGetText(0, 8);
	src->model = RagSpiGetText(0, 9);
	{
		char	   *dims = RagSpiGetText(0, 10);

		src->dimensions = dims ? pg_strtoint32(dims) : 0;
	}

	/* metadata_columns arrives as a name[] literal; deconstruct it */
	meta = RagSpiGetText(0, 4);
	if (meta != NULL)
	{
		Datum		arr;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		arr = OidFunctionCall3(F_ARRAY_IN, CStringGetDatum(meta),
							   ObjectIdGetDatum(TEXTOID), Int32GetDatum(-1));
		deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i])
				src->metadata_cols = lappend(src->metadata_cols,
											 TextDatumGetCString(elems[i]));
	}
	SPI_freetuptable(SPI_tuptable);
	pfree(sql.data);
	return src;
}
