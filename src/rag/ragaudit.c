/*-------------------------------------------------------------------------
 *
 * ragaudit.c
 *	  The audit trail of retrieve() and rag(), written as the extension's
 *	  owner, and the helper that runs a statement as that owner.
 *
 * Callers have SELECT on rag_audit (RLS shows them their own rows) and no
 * other privilege, so they cannot forge, change or delete rows.  The row is
 * written by this code after switching the current user to the extension's
 * owner for the one INSERT, the way RI triggers run their queries as the
 * table owner (ri_triggers.c).  The switch adds SECURITY_RESTRICTED_OPERATION
 * and SECURITY_LOCAL_USERID_CHANGE, and the statements name every object
 * schema-qualified, so nothing the caller set up (search_path, SET ROLE) can
 * redirect them.
 *
 * Without shared_preload_libraries the row belongs to the caller's
 * transaction: a ROLLBACK removes it together with everything else the
 * transaction did (see README, "What is not done").  When the row cannot be
 * written (read-only transaction, hot standby) the call fails: auditing
 * fails closed.
 *
 * IDENTIFICATION
 *	  src/rag/ragaudit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "rag.h"

PG_FUNCTION_INFO_V1(rag_audit_purge);

/* purge expired audit rows once every this many writes in a backend */
#define RAG_AUDIT_PURGE_EVERY	1000

static int	writes_since_purge = 0;

/*
 * Run one statement through SPI as the extension's owner.  Returns the SPI
 * result code; results are in SPI_tuptable as usual.
 */
int
RagExecuteAsOwner(RagExtension *ext, const char *sql, int nargs,
				  Oid *argtypes, Datum *values, const char *nulls,
				  bool read_only, long count)
{
	Oid			save_userid;
	int			save_sec_context;
	volatile int ret = 0;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(ext->owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql, nargs, argtypes, values, nulls,
									read_only, count);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return ret;
}

static int
purge_expired(RagExtension *ext)
{
	StringInfoData sql;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	int			ret;

	if (rag_audit_retention_days <= 0)
		return 0;
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "DELETE FROM %s.rag_audit WHERE at OPERATOR(pg_catalog.<)"
					 " (pg_catalog.now() OPERATOR(pg_catalog.-)"
					 " pg_catalog.make_interval(days => $1))",
					 ext->schema_q);
	values[0] = Int32GetDatum(rag_audit_retention_days);
	ret = RagExecuteAsOwner(ext, sql.data, 1, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	return (int) SPI_processed;
}

/*
 * Write one audit row for the current user.  Called after the work is done
 * and before any result leaves the function, so an error here means the
 * caller gets nothing.
 */
void
RagAuditWrite(RagExtension *ext, RagAuditEntry *e)
{
	StringInfoData sql;
	Oid			argtypes[13] = {OIDOID, NAMEOID, TEXTOID, OIDOID, TEXTOID,
		TEXTARRAYOID, TEXTOID, TEXTOID, INT4OID, INT4OID, FLOAT8OID, TEXTOID, TEXTOID};
	Datum		values[13];
	char		nulls[13];
	Oid			userid = GetUserId();
	List	   *ids = NIL;
	ListCell   *lc;
	instr_time	now;
	int			ret;

	if (!rag_audit_enabled)
		return;

	foreach(lc, e->hits)
		ids = lappend(ids, ((RagHit *) lfirst(lc))->id ? ((RagHit *) lfirst(lc))->id : "");

	memset(nulls, ' ', sizeof(nulls));
	values[0] = ObjectIdGetDatum(userid);
	values[1] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(userid, false)));
	values[2] = CStringGetTextDatum(e->call);
	if (OidIsValid(e->source))
	{
		char	   *relname = get_rel_name(e->source);

		values[3] = ObjectIdGetDatum(e->source);
		if (relname)
			values[4] = CStringGetTextDatum(relname);
		else
			nulls[4] = 'n';
	}
	else
		nulls[3] = nulls[4] = 'n';
	values[5] = RagTextArray(ids);
#define TEXT_OR_NULL(i, s) \
	do { if (s) values[i] = CStringGetTextDatum(s); else nulls[i] = 'n'; } while (0)
#define INT_OR_NULL(i, v) \
	do { if ((v) >= 0) values[i] = Int32GetDatum(v); else nulls[i] = 'n'; } while (0)
	TEXT_OR_NULL(6, e->provider);
	TEXT_OR_NULL(7, e->model);
	INT_OR_NULL(8, e->prompt_tokens);
	INT_OR_NULL(9, e->completion_tokens);
	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, e->start);
	values[10] = Float8GetDatum(INSTR_TIME_GET_MILLISEC(now));
	values[11] = CStringGetTextDatum(e->status);
	/* question text only when a superuser turned it on */
	if (rag_audit_questions && e->question)
		values[12] = CStringGetTextDatum(e->question);
	else
		nulls[12] = 'n';

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.rag_audit (roleid, role_name, call, source,"
					 " source_name, retrieved_ids, provider, model, prompt_tokens,"
					 " completion_tokens, latency_ms, status, question)"
					 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
					 ext->schema_q);
	ret = RagExecuteAsOwner(ext, sql.data, 13, argtypes, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	pfree(sql.data);

	if (++writes_since_purge >= RAG_AUDIT_PURGE_EVERY)
	{
		writes_since_purge = 0;
		purge_expired(ext);
	}
}

/*
 * rag_audit_purge() -> bigint: delete audit rows older than
 * genai.rag_audit_retention_days now.  EXECUTE is revoked from PUBLIC.
 */
Datum
rag_audit_purge(PG_FUNCTION_ARGS)
{
	RagExtension ext;
	int			n;

	RagGetExtension(&ext);
	SPI_connect();
	n = purge_expired(&ext);
	SPI_finish();
	PG_RETURN_INT64(n);
}
