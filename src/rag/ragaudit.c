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
 * With shared_preload_libraries the row is queued in shared memory and
 * written by the usage ledger's background worker (ragauditq.c): it
 * survives the caller's ROLLBACK, and the caller's transaction stays
 * read-only.  Without preload, or with genai.rag_audit_write =
 * transactional, the row belongs to the caller's transaction: a ROLLBACK
 * removes it together with everything else the transaction did (README,
 * "The audit trail").  When the row cannot be written (read-only
 * transaction without the queue, hot standby) the call fails: auditing
 * fails closed.
 *
 * IDENTIFICATION
 *	  src/rag/ragaudit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/lsyscache.h"

#include "providers/providers.h"
#include "rag.h"

PG_FUNCTION_INFO_V1(rag_audit_purge);

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

/* The same with a prepared plan. */
int
RagExecutePlanAsOwner(RagExtension *ext, SPIPlanPtr plan, Datum *values,
					  const char *nulls, bool read_only, long count)
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
		ret = SPI_execute_plan(plan, values, nulls, read_only, count);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return ret;
}

int
RagAuditPurgeExpired(RagExtension *ext)
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
 * Fail early, before any work or provider call, when the audit row could
 * not be written: auditing fails closed.
 */
void
RagAuditCheckWritable(const char *call)
{
	if (!rag_audit_enabled)
		return;
	/*
	 * A queued row needs no write by the caller, so read-only transactions
	 * are fine; if the queue turns out to be full, RagAuditWrite fails then.
	 */
	if (RagAuditQueued())
		return;
	if (RecoveryInProgress() || XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot run %s in a read-only transaction", call),
				 errdetail("Every %s call writes an audit row.", call),
				 errhint("Run it in a read-write transaction on the primary.")));
}

/*
 * The audit row's columns.  latency_ms and status come last: a row
 * prepared for a failure (RagAuditPrepareFailure) is everything before
 * them, completed when the failure is known.
 */
static const char *const audit_cols[] = {
	"roleid", "role_name", "call", "source", "source_name", "retrieved_ids",
	"provider", "model", "prompt_tokens", "completion_tokens", "question", "at",
	"latency_ms", "status"
};

#define AUDIT_NCOLS lengthof(audit_cols)
#define AUDIT_NPREPARED (AUDIT_NCOLS - 2)

/* The first n columns of the row as JSON members: "column": text value or null. */
static void
audit_json_pairs(StringInfo buf, int n, const char *const *values)
{
	for (int i = 0; i < n; i++)
	{
		if (i)
			appendStringInfoChar(buf, ',');
		escape_json(buf, audit_cols[i]);
		appendStringInfoChar(buf, ':');
		RagAppendJsonStringOrNull(buf, values[i]);
	}
}


/* values of the first AUDIT_NPREPARED columns of e's row */
static void
audit_values(RagAuditEntry *e, const char **values)
{
	Oid			userid = GetUserId();
	List	   *ids = NIL;
	ListCell   *lc;

	foreach(lc, e->hits)
	{
		RagHit	   *h = (RagHit *) lfirst(lc);

		ids = lappend(ids, h->id ? h->id : "");
	}
	values[0] = psprintf("%u", userid);
	values[1] = GetUserNameFromId(userid, false);
	values[2] = e->call;
	values[3] = OidIsValid(e->source) ? psprintf("%u", e->source) : NULL;
	values[4] = OidIsValid(e->source) ? get_rel_name(e->source) : NULL;
	values[5] = OidOutputFunctionCall(F_ARRAY_OUT, RagTextArray(ids));
	values[6] = e->provider;
	values[7] = e->model;
	values[8] = e->prompt_tokens >= 0 ? psprintf("%d", e->prompt_tokens) : NULL;
	values[9] = e->completion_tokens >= 0 ? psprintf("%d", e->completion_tokens) : NULL;
	/* question text only when a superuser turned it on */
	values[10] = (rag_audit_questions && e->question) ? e->question : NULL;
	/* what the column's default, now(), gives in the caller's transaction */
	values[11] = timestamptz_to_str(GetCurrentTransactionStartTimestamp());
}

static double
elapsed_ms(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/*
 * Write one audit row for the current user.  Called after the work is done
 * and before any result leaves the function, so an error here means the
 * caller gets nothing.  With preload (and genai.rag_audit_write = queued)
 * the row is queued in shared memory for the usage ledger's worker
 * (ragauditq.c); otherwise it goes through the writer the usage ledger
 * uses (GenaiInsertAsOwner, src/providers/ledger.c): one INSERT as the
 * extension's owner in the caller's transaction, values passed as one
 * json parameter.
 */
void
RagAuditWrite(RagExtension *ext, RagAuditEntry *e)
{
	const char *values[AUDIT_NCOLS];

	if (!rag_audit_enabled)
		return;

	audit_values(e, values);
	values[AUDIT_NCOLS - 2] = psprintf("%.3f", elapsed_ms(e->start));
	values[AUDIT_NCOLS - 1] = e->status;

	if (RagAuditQueued())
	{
		StringInfoData json;

		initStringInfo(&json);
		appendStringInfoChar(&json, '{');
		audit_json_pairs(&json, AUDIT_NCOLS, values);
		appendStringInfoChar(&json, '}');
		if (RagAuditEnqueue(json.data, json.len))
			return;
		/* too long for a slot, or the queue is full: write it ourselves */
		if (XactReadOnly)
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("cannot run %s() in a read-only transaction", e->call),
					 errdetail("Its audit row could not be queued and must be written in this transaction."),
					 errhint("Run it in a read-write transaction.")));
	}

	GenaiInsertAsOwner("rag_audit", AUDIT_NCOLS, audit_cols, values);

	if (++writes_since_purge >= RAG_AUDIT_PURGE_EVERY)
	{
		writes_since_purge = 0;
		RagAuditPurgeExpired(ext);
	}
}

/*
 * For a step that may fail after rows were retrieved and sent on (rag():
 * the completion call), prepare the row of the failure in advance: the
 * queued row as a JSON object without its last two members and closing
 * brace.  NULL when rows are not queued (the transactional row would be
 * rolled back with the failing call anyway), or when even without the
 * question the row would not fit in a queue slot.
 */
char *
RagAuditPrepareFailure(RagAuditEntry *e)
{
	const char *values[AUDIT_NCOLS];
	StringInfoData json;
	int			reserve = 64;	/* latency_ms and status */

	if (!rag_audit_enabled || !RagAuditQueued())
		return NULL;
	audit_values(e, values);
	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	audit_json_pairs(&json, AUDIT_NPREPARED, values);
	if (json.len + reserve > RAG_AUDIT_SLOT_BYTES && values[10] != NULL)
	{
		/* keep the row, lose the (long) question */
		values[10] = NULL;
		resetStringInfo(&json);
		appendStringInfoChar(&json, '{');
		audit_json_pairs(&json, AUDIT_NPREPARED, values);
	}
	if (json.len + reserve > RAG_AUDIT_SLOT_BYTES)
		return NULL;
	appendStringInfoChar(&json, ',');
	return json.data;
}

/*
 * Queue the prepared row of a failed call with its latency and SQLSTATE.
 * Runs in PG_CATCH: no allocation, no ERROR.
 */
void
RagAuditQueueFailure(const char *prepared, instr_time start, int sqlerrcode)
{
	char		buf[RAG_AUDIT_SLOT_BYTES + 1];
	int			n;

	if (prepared == NULL)
		return;
	n = snprintf(buf, sizeof(buf), "%s\"latency_ms\":\"%.3f\",\"status\":\"error %s\"}",
				 prepared, elapsed_ms(start), unpack_sql_state(sqlerrcode));
	if (n > 0 && n <= RAG_AUDIT_SLOT_BYTES)
		(void) RagAuditEnqueue(buf, n);
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
	n = RagAuditPurgeExpired(&ext);
	SPI_finish();
	PG_RETURN_INT64(n);
}
