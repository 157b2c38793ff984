/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The usage ledger: one row per embed() or llm_complete() call,
 *	  written as the extension's owner.
 *
 * The row is inserted through SPI after switching to the owner of the
 * extension (SetUserIdAndSecContext with SECURITY_RESTRICTED_OPERATION,
 * the way autovacuum and REFRESH MATERIALIZED VIEW run as a table owner).
 * Callers have only SELECT on the table, filtered to their own rows by
 * row-level security, so they can neither forge nor delete rows; the row
 * is written by the same C function that made the call, so it cannot be
 * skipped either.  Values travel as one json parameter and are typed by
 * json_populate_record, so no caller text is ever spliced into SQL.
 *
 * The row belongs to the caller's transaction: a ROLLBACK or an ERROR
 * loses it (README, "What ROLLBACK loses").  In a read-only transaction
 * or on a hot standby nothing can be written, so calls to remote
 * providers are refused there; the local provider costs nothing and runs
 * unrecorded.
 *
 * IDENTIFICATION
 *	  src/providers/ledger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "providers.h"

#define LEDGER_TABLE "usage_ledger"

/*
 * Owner and schema of the genai extension, looked up on every call: the
 * extension can be dropped and re-created within one session.
 */
void
GenaiExtensionOwnerAndSchema(Oid *owner, Oid *nsp)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("genai"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"genai\" is not installed in this database")));
	*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	*nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

void
GenaiInsertAsOwner(const char *relname, int nvalues,
				   const char *const *colnames, const char *const *values)
{
	Oid			owner;
	Oid			nsp;
	Oid			save_userid;
	int			save_sec;
	StringInfoData sql;
	StringInfoData json;
	const char *qrel;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	GenaiExtensionOwnerAndSchema(&owner, &nsp);
	qrel = quote_qualified_identifier(get_namespace_name(nsp), relname);

	initStringInfo(&sql);
	initStringInfo(&json);
	appendStringInfo(&sql, "INSERT INTO %s (", qrel);
	appendStringInfoChar(&json, '{');
	for (int i = 0; i < nvalues; i++)
	{
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(colnames[i]));
		if (i)
			appendStringInfoChar(&json, ',');
		escape_json(&json, colnames[i]);
		appendStringInfoChar(&json, ':');
		if (values[i])
			escape_json(&json, values[i]);
		else
			appendStringInfoString(&json, "null");
	}
	appendStringInfoChar(&json, '}');
	appendStringInfoString(&sql, ") SELECT ");
	for (int i = 0; i < nvalues; i++)
		appendStringInfo(&sql, "%sr.%s", i ? ", " : "", quote_identifier(colnames[i]));
	appendStringInfo(&sql, " FROM pg_catalog.json_populate_record(NULL::%s, $1::pg_catalog.json) r",
					 qrel);
	args[0] = CStringGetTextDatum(json.data);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not insert into %s: SPI result %d", qrel, rc);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
}

/*
 * Called before a provider is asked anything: a call that could not be
 * recorded is not made.  With preload the row is queued in shared memory
 * and written by a background worker, so a read-only transaction on the
 * primary is fine; on a hot standby nothing can be written.
 */
void
LedgerCheckWritable(Provider prov)
{
	if (prov->kind == PROVIDER_LOCAL)
		return;
	if (UsageActive() && !RecoveryInProgress())
		return;
	if (RecoveryInProgress() || XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot call provider \"%s\" in a read-only transaction", prov->name),
				 errdetail("Every call to a remote provider is recorded in the usage ledger."),
				 errhint("Call it in a read-write transaction on the primary server.")));
}

static char *
Int64OrNull(int64 v)
{
	return v < 0 ? NULL : psprintf(INT64_FORMAT, v);
}

/* Inserts one ledger row as the extension's owner, in the current transaction. */
void
LedgerInsertRow(Oid roleid, const char *rolname, const char *provider,
				const char *kind, const char *operation, const char *model,
				int requests, int inputs, const char *input_tokens,
				const char *output_tokens, double latency_ms, int retries,
				const char *outcome, TimestampTz ts)
{
	static const char *const cols[] = {
		"ts", "roleid", "rolname", "provider", "kind", "operation", "model",
		"requests", "inputs", "input_tokens", "output_tokens",
		"latency_ms", "retries", "outcome"
	};
	const char *values[lengthof(cols)];

	values[0] = timestamptz_to_str(ts);
	values[1] = psprintf("%u", roleid);
	values[2] = rolname;
	values[3] = provider;
	values[4] = kind;
	values[5] = operation;
	values[6] = model;
	values[7] = psprintf("%d", requests);
	values[8] = psprintf("%d", inputs);
	values[9] = input_tokens;
	values[10] = output_tokens;
	values[11] = psprintf("%.3f", latency_ms);
	values[12] = psprintf("%d", retries);
	values[13] = outcome;
	GenaiInsertAsOwner(LEDGER_TABLE, lengthof(cols), cols, values);
}

/*
 * Runs fn(arg), one provider call, with its accounting: budget
 * reservation before, and after it the ledger row -- queued in shared
 * memory with preload (even when the call fails), else inserted in the
 * caller's transaction (successful calls only; README says what ROLLBACK
 * loses).  u->latency_ms is set here.
 */
void
LedgerRun(Provider prov, ProviderUsage *u, int64 estimate,
		  void (*fn) (void *arg), void *arg)
{
	int64		reserved;
	TimestampTz start;
	Oid			roleid = GetUserId();

	LedgerCheckWritable(prov);
	u->rolname = GetUserNameFromId(roleid, false);
	reserved = UsageReserve(prov, estimate);
	start = GetCurrentTimestamp();
	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		if (UsageActive())
		{
			u->latency_ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
			(void) UsageFinish(prov, u, reserved, unpack_sql_state(geterrcode()));
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	u->latency_ms = (double) (GetCurrentTimestamp() - start) / 1000.0;

	if (UsageFinish(prov, u, reserved, "ok"))
		return;
	/* no preload (or a full queue): the row joins the caller's transaction */
	if (RecoveryInProgress() || XactReadOnly)
		return;					/* only the local provider gets here */
	LedgerInsertRow(roleid, u->rolname, prov->name, ProviderKindName(prov->kind),
					u->operation, u->model, u->requests, u->inputs,
					Int64OrNull(u->input_tokens), Int64OrNull(u->output_tokens),
					u->latency_ms, u->retries, "ok", GetCurrentTimestamp());
}
