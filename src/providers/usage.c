/*-------------------------------------------------------------------------
 *
 * usage.c
 *	  Usage accounting in shared memory, with shared_preload_libraries:
 *	  ledger rows that survive ROLLBACK and errors, per-role daily token
 *	  budgets, and per-provider statistics.
 *
 * A call reserves its estimated input tokens against the caller's budget
 * (genai.token_budget, tokens per UTC day) under one LWLock, so
 * concurrent calls cannot together overspend; when it ends, successfully
 * or with an ERROR, the reservation becomes the tokens actually used, the
 * provider's counters move, and its ledger row is queued in shared
 * memory.  A background worker per database (started on demand, exiting
 * after 10 s without work so it never blocks DROP DATABASE) inserts the
 * queued rows in its own transactions.  So the row of a call exists even
 * when the caller's transaction rolls back or the call fails.
 *
 * Queue slots are FREE, FULL (waiting) or TAKEN (being inserted by the
 * worker).  A worker that dies mid-insert leaves TAKEN slots; the next
 * worker of that database turns them back to FULL, so rows are written at
 * least once (a crash between the worker's commit and its freeing the
 * slots would write them twice; that window is a few instructions).  When
 * the queue is full, the backend writes its row itself, transactionally,
 * as without preload.
 *
 * Provider limits (max_concurrency, requests_per_minute) live in the
 * same per-provider entries: a count of requests in flight that callers
 * wait on with a condition variable, and a token bucket.  A backend holds
 * at most one slot (one request at a time), remembered in limiter_held
 * and released in PG_FINALLY and, for a FATAL exit, by a before_shmem_exit
 * callback; a crash reinitialises shared memory (README, "Limits").
 *
 * Without preload nothing here is active: usage == NULL.
 *
 * IDENTIFICATION
 *	  src/providers/usage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "http/http.h"
#include "providers.h"

PG_FUNCTION_INFO_V1(genai_provider_stats);

PGDLLEXPORT void genai_usage_worker_main(Datum arg);

#define USAGE_QUEUE_SIZE	2048
#define USAGE_MAX_PROVIDERS 256
#define USAGE_MAX_ROLES		1024
#define USAGE_MAX_WORKERS	32
#define USAGE_FLUSH_BATCH	256
#define USAGE_WORKER_NAP_MS 200
#define USAGE_WORKER_IDLE_EXIT_MS 10000

typedef enum UsageSlotState
{
	SLOT_FREE = 0,
	SLOT_FULL,
	SLOT_TAKEN
} UsageSlotState;

typedef struct UsageRow
{
	UsageSlotState state;
	Oid			dboid;
	Oid			roleid;
	TimestampTz ts;
	NameData	rolname;
	NameData	provider;
	char		kind[8];
	char		operation[12];
	char		model[128];
	char		outcome[8];
	int32		requests;
	int32		inputs;
	int32		retries;
	int64		input_tokens;
	int64		output_tokens;
	double		latency_ms;
} UsageRow;

typedef struct ProviderStat
{
	Oid			dboid;
	Oid			serverid;
	int64		calls;
	int64		errors;
	int64		requests;
	int64		retries;
	int64		input_tokens;
	int64		output_tokens;
	double		latency_ms_total;
	double		latency_ms_max;
	/* limits */
	int32		in_flight;		/* requests holding a max_concurrency slot */
	int32		max_in_flight;	/* highest in_flight seen */
	int64		slot_waits;		/* requests that waited for a slot */
	int64		rate_waits;		/* requests that waited for the rate limit */
	double		wait_ms_total;	/* time spent in both waits */
	int32		rate_limit;		/* requests_per_minute the bucket was filled for */
	double		rate_tokens;	/* the token bucket; negative: promised ahead */
	TimestampTz rate_updated;
} ProviderStat;

typedef struct RoleBudget
{
	Oid			roleid;
	int32		day;
	int64		used;
	int64		reserved;
} RoleBudget;

typedef struct UsageWorkerSlot
{
	Oid			dboid;			/* InvalidOid: slot unused */
	pid_t		pid;			/* 0: not running */
	TimestampTz requested;		/* when a backend last asked for it */
} UsageWorkerSlot;

typedef struct UsageShared
{
	LWLock	   *lock;
	ConditionVariable slot_cv;	/* broadcast when a slot is released */
	int			nproviders;
	int			nroles;
	ProviderStat providers[USAGE_MAX_PROVIDERS];
	RoleBudget	roles[USAGE_MAX_ROLES];
	UsageWorkerSlot workers[USAGE_MAX_WORKERS];
	UsageRow	rows[USAGE_QUEUE_SIZE];
} UsageShared;

static UsageShared *usage = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
/* another queue the worker drains (the rag audit trail), see UsageAddQueue */
static UsageQueueFlush extra_flush = NULL;
static UsageQueuePending extra_pending = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

int			genai_token_budget = 0;

static void
UsageShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(UsageShared)));
	RequestNamedLWLockTranche("genai usage", 1);
}

static void
UsageShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	usage = ShmemInitStruct("genai usage", sizeof(UsageShared), &found);
	if (!found)
	{
		memset(usage, 0, sizeof(UsageShared));
		usage->lock = &(GetNamedLWLockTranche("genai usage"))->lock;
		ConditionVariableInit(&usage->slot_cv);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while shared_preload_libraries is processed. */
void
UsageInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = UsageShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = UsageShmemStartup;
}

bool
UsageActive(void)
{
	return usage != NULL;
}

static int32
Today(void)
{
	return (int32) (GetCurrentTimestamp() / USECS_PER_DAY);
}

/* the budget entry of a role, created if missing; lock held exclusively */
static RoleBudget *
RoleEntry(Oid roleid)
{
	RoleBudget *r = NULL;
	int32		today = Today();

	for (int i = 0; i < usage->nroles; i++)
		if (usage->roles[i].roleid == roleid)
		{
			r = &usage->roles[i];
			break;
		}
	if (r == NULL)
	{
		if (usage->nroles == USAGE_MAX_ROLES)
		{
			/* reuse the entry of a role idle since an earlier day */
			for (int i = 0; i < usage->nroles && r == NULL; i++)
				if (usage->roles[i].day != today && usage->roles[i].reserved == 0)
					r = &usage->roles[i];
			if (r == NULL)
				return NULL;
		}
		else
			r = &usage->roles[usage->nroles++];
		r->roleid = roleid;
		r->day = today;
		r->used = 0;
		r->reserved = 0;
	}
	if (r->day != today)
	{
		r->day = today;
		r->used = 0;
	}
	return r;
}

/*
 * Reserves estimate tokens against the caller's budget; raises an ERROR
 * when they do not fit.  Returns the amount reserved.
 */
int64
UsageReserve(Provider prov, int64 estimate)
{
	RoleBudget *r;
	int64		used = 0;
	bool		over = false;

	if (usage == NULL || genai_token_budget <= 0)
		return 0;
	estimate = Max(estimate, 1);
	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	r = RoleEntry(GetUserId());
	if (r != NULL)
	{
		used = r->used + r->reserved;
		if (used + estimate > genai_token_budget)
			over = true;
		else
			r->reserved += estimate;
	}
	LWLockRelease(usage->lock);
	if (over)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("token budget of role \"%s\" exceeded",
						GetUserNameFromId(GetUserId(), false)),
				 errdetail("The role has used or reserved " INT64_FORMAT " of its %d tokens today, and this call to provider \"%s\" needs about " INT64_FORMAT ".",
						   used, genai_token_budget, prov->name, estimate),
				 errhint("An administrator can raise it with ALTER ROLE ... SET genai.token_budget.")));
	return (r != NULL) ? estimate : 0;
}

/*
 * The statistics and limits entry of a provider in this database, created
 * if missing; NULL when the table is full.  Lock held exclusively.
 * Entries never move or go away, so an index into the array stays valid.
 */
static ProviderStat *
ProviderEntry(Provider prov)
{
	ProviderStat *ps;

	for (int i = 0; i < usage->nproviders; i++)
		if (usage->providers[i].serverid == prov->serverid &&
			usage->providers[i].dboid == MyDatabaseId)
			return &usage->providers[i];
	if (usage->nproviders == USAGE_MAX_PROVIDERS)
		return NULL;
	ps = &usage->providers[usage->nproviders++];
	memset(ps, 0, sizeof(*ps));
	ps->dboid = MyDatabaseId;
	ps->serverid = prov->serverid;
	return ps;
}

static void
CopyName(char *dst, size_t size, const char *src)
{
	strlcpy(dst, src ? src : "", size);
}

/*
 * Lets another subsystem's shared-memory queue be drained by this worker
 * (one writer for the ledger and the rag audit trail).  flush(dboid) runs
 * in the worker outside any transaction and returns the rows it wrote (the
 * worker calls again at once when that is 256 or more); pending(dboid) is
 * asked with the usage lock held before the worker exits, and must take
 * only locks of its own.  Call from _PG_init.
 */
void
UsageAddQueue(UsageQueueFlush flush, UsageQueuePending pending)
{
	extra_flush = flush;
	extra_pending = pending;
}

static void EnsureWorker(void);

/* Starts the database's worker if needed, after a row was queued elsewhere. */
void
UsageWakeWorker(void)
{
	if (usage != NULL && !RecoveryInProgress())
		EnsureWorker();
}

/* Starts the database's worker unless it runs or was just asked for. */
static void
EnsureWorker(void)
{
	UsageWorkerSlot *slot = NULL;
	TimestampTz now = GetCurrentTimestamp();
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < USAGE_MAX_WORKERS; i++)
		if (usage->workers[i].dboid == MyDatabaseId)
		{
			slot = &usage->workers[i];
			break;
		}
	if (slot != NULL &&
		(slot->pid != 0 || !TimestampDifferenceExceeds(slot->requested, now, 10000)))
	{
		LWLockRelease(usage->lock);
		return;
	}
	for (int i = 0; i < USAGE_MAX_WORKERS && slot == NULL; i++)
		if (usage->workers[i].dboid == InvalidOid)
			slot = &usage->workers[i];
	if (slot == NULL)
	{
		LWLockRelease(usage->lock);
		return;
	}
	slot->dboid = MyDatabaseId;
	slot->requested = now;
	LWLockRelease(usage->lock);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "genai", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "genai_usage_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "genai usage writer for database %u", MyDatabaseId);
	strlcpy(worker.bgw_type, "genai usage writer", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	/*
	 * No message when this fails (it may run in PG_CATCH): rows stay queued,
	 * the next call retries after 10 s, and a full queue makes backends
	 * write their rows themselves.
	 */
	(void) RegisterDynamicBackgroundWorker(&worker, &handle);
}

/*
 * Ends a call: releases its reservation, counts the tokens used against
 * the budget and in the provider's statistics, and queues its ledger row.
 * Returns false when the queue is full (the caller then writes the row).
 * Runs from PG_CATCH too: no ERROR in here.
 */
bool
UsageFinish(Provider prov, const ProviderUsage *u, int64 reserved,
			const char *outcome)
{
	int64		spent = Max(u->input_tokens, 0) + Max(u->output_tokens, 0);
	ProviderStat *ps = NULL;
	UsageRow   *row = NULL;
	Oid			roleid = GetUserId();

	if (usage == NULL)
		return false;
	if (spent == 0 && strcmp(outcome, "ok") != 0)
		spent = reserved;		/* a failed call may have cost what it sent */

	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	if (reserved > 0 || genai_token_budget > 0)
	{
		RoleBudget *r = RoleEntry(roleid);

		if (r != NULL)
		{
			r->reserved = Max(r->reserved - reserved, 0);
			r->used += spent;
		}
	}
	ps = ProviderEntry(prov);
	if (ps != NULL)
	{
		ps->calls++;
		if (strcmp(outcome, "ok") != 0)
			ps->errors++;
		ps->requests += u->requests;
		ps->retries += u->retries;
		ps->input_tokens += Max(u->input_tokens, 0);
		ps->output_tokens += Max(u->output_tokens, 0);
		ps->latency_ms_total += u->latency_ms;
		ps->latency_ms_max = Max(ps->latency_ms_max, u->latency_ms);
	}
	for (int i = 0; i < USAGE_QUEUE_SIZE; i++)
		if (usage->rows[i].state == SLOT_FREE)
		{
			row = &usage->rows[i];
			break;
		}
	if (row != NULL)
	{
		row->dboid = MyDatabaseId;
		row->roleid = roleid;
		row->ts = GetCurrentTimestamp();
		CopyName(NameStr(row->rolname), NAMEDATALEN, u->rolname);
		CopyName(NameStr(row->provider), NAMEDATALEN, prov->name);
		CopyName(row->kind, sizeof(row->kind), ProviderKindName(prov->kind));
		CopyName(row->operation, sizeof(row->operation), u->operation);
		CopyName(row->model, sizeof(row->model), u->model);
		CopyName(row->outcome, sizeof(row->outcome), outcome);
		row->requests = u->requests;
		row->inputs = u->inputs;
		row->retries = u->retries;
		row->input_tokens = u->input_tokens;
		row->output_tokens = u->output_tokens;
		row->latency_ms = u->latency_ms;
		row->state = SLOT_FULL;
	}
	LWLockRelease(usage->lock);

	if (row != NULL && !RecoveryInProgress())
		EnsureWorker();
	return row != NULL;
}

/* ---- provider limits: max_concurrency and requests_per_minute ---- */

static int	limiter_held = -1;	/* entry whose slot this backend holds */
static bool limiter_exit_hook = false;
static bool limiter_warned = false;

/* Gives back this backend's slot, if it holds one.  No ERROR in here. */
static void
LimiterReleaseSlot(void)
{
	if (limiter_held < 0 || usage == NULL)
		return;
	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	if (usage->providers[limiter_held].in_flight > 0)
		usage->providers[limiter_held].in_flight--;
	limiter_held = -1;
	LWLockRelease(usage->lock);
	ConditionVariableBroadcast(&usage->slot_cv);
}

/*
 * A backend that exits during a request (FATAL from pg_terminate_backend,
 * or postmaster death) skips PG_FINALLY; this gives its slot back.
 */
static void
LimiterExit(int code, Datum arg)
{
	LimiterReleaseSlot();
}

/*
 * Waits until fewer than max_concurrency requests to the provider are in
 * flight, then takes a slot.  Sleeps on a condition variable (its latch),
 * so cancel, statement_timeout and termination act during the wait.
 */
static void
LimiterAcquireSlot(Provider prov)
{
	bool		waited = false;
	TimestampTz start = 0;

	for (;;)
	{
		ProviderStat *ps;

		LWLockAcquire(usage->lock, LW_EXCLUSIVE);
		ps = ProviderEntry(prov);
		if (ps == NULL)
		{
			LWLockRelease(usage->lock);
			break;				/* no room for the entry: unlimited */
		}
		if (ps->in_flight < prov->max_concurrency)
		{
			ps->in_flight++;
			ps->max_in_flight = Max(ps->max_in_flight, ps->in_flight);
			if (waited)
				ps->wait_ms_total += (double) (GetCurrentTimestamp() - start) / 1000.0;
			limiter_held = ps - usage->providers;
			LWLockRelease(usage->lock);
			break;
		}
		if (!waited)
		{
			ps->slot_waits++;
			waited = true;
			start = GetCurrentTimestamp();
		}
		LWLockRelease(usage->lock);
		/* the first call only prepares the sleep; the timeout is a safety net */
		(void) ConditionVariableTimedSleep(&usage->slot_cv, 1000, PG_WAIT_EXTENSION);
	}
	if (waited)
		ConditionVariableCancelSleep();
}

/*
 * Before every attempt (HttpRequest.before_attempt): takes one token from
 * the provider's bucket, which holds at most one second's worth of
 * requests (at least one) and refills at requests_per_minute / 60 per
 * second.  A request finding it empty takes a token anyway (the bucket
 * goes negative) and sleeps until that token would have been there, so
 * waiters are served in the order they came, without polling.  A wait
 * that is cancelled gives its token back.
 */
static void
LimiterRateWait(void *arg)
{
	Provider	prov = (Provider) arg;
	ProviderStat *ps;
	TimestampTz now = GetCurrentTimestamp();
	double		per_ms = prov->requests_per_minute / 60000.0;
	double		cap = Max(1.0, prov->requests_per_minute / 60.0);
	double		wait_ms = 0;

	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	ps = ProviderEntry(prov);
	if (ps == NULL)
	{
		LWLockRelease(usage->lock);
		return;
	}
	if (ps->rate_limit != prov->requests_per_minute)
	{
		/* first use, or the administrator changed the limit: a full bucket */
		ps->rate_limit = prov->requests_per_minute;
		ps->rate_tokens = cap;
		ps->rate_updated = now;
	}
	if (now > ps->rate_updated)
	{
		ps->rate_tokens = Min(cap, ps->rate_tokens +
							  (double) (now - ps->rate_updated) / 1000.0 * per_ms);
		ps->rate_updated = now;
	}
	ps->rate_tokens -= 1.0;
	if (ps->rate_tokens < 0)
	{
		wait_ms = -ps->rate_tokens / per_ms;
		ps->rate_waits++;
		ps->wait_ms_total += wait_ms;
	}
	LWLockRelease(usage->lock);

	if (wait_ms <= 0)
		return;
	PG_TRY();
	{
		HttpSleep(wait_ms);
	}
	PG_CATCH();
	{
		LWLockAcquire(usage->lock, LW_EXCLUSIVE);
		ps->rate_tokens = Min(cap, ps->rate_tokens + 1.0);
		LWLockRelease(usage->lock);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

void
ProviderHttpPost(Provider prov, HttpRequest *req, HttpResponse *resp)
{
	if (prov->max_concurrency <= 0 && prov->requests_per_minute <= 0)
	{
		HttpPost(req, resp);
		return;
	}
	if (usage == NULL)
	{
		if (!limiter_warned)
			ereport(WARNING,
					(errmsg("limits of provider \"%s\" are not enforced", prov->name),
					 errdetail("max_concurrency and requests_per_minute need shared_preload_libraries = 'genai'."),
					 errhint("This warning is given once per session.")));
		limiter_warned = true;
		HttpPost(req, resp);
		return;
	}
	if (!limiter_exit_hook)
	{
		before_shmem_exit(LimiterExit, (Datum) 0);
		limiter_exit_hook = true;
	}
	if (prov->requests_per_minute > 0)
	{
		req->before_attempt = LimiterRateWait;
		req->before_attempt_arg = prov;
	}
	PG_TRY();
	{
		if (prov->max_concurrency > 0)
			LimiterAcquireSlot(prov);
		HttpPost(req, resp);
	}
	PG_FINALLY();
	{
		LimiterReleaseSlot();
	}
	PG_END_TRY();
}

/* ---- the background worker ---- */

static Oid	worker_dboid = InvalidOid;

static void
UsageWorkerExit(int code, Datum arg)
{
	if (usage == NULL)
		return;
	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < USAGE_MAX_WORKERS; i++)
		if (usage->workers[i].dboid == worker_dboid && usage->workers[i].pid == MyProcPid)
		{
			usage->workers[i].pid = 0;
			usage->workers[i].dboid = InvalidOid;
		}
	LWLockRelease(usage->lock);
}

static char *
I64(int64 v)
{
	return v < 0 ? NULL : psprintf(INT64_FORMAT, v);
}

/* Inserts up to USAGE_FLUSH_BATCH queued rows; returns how many. */
static int
UsageFlush(void)
{
	int			idx[USAGE_FLUSH_BATCH];
	UsageRow   *rows;
	int			n = 0;

	rows = palloc(sizeof(UsageRow) * USAGE_FLUSH_BATCH);
	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < USAGE_QUEUE_SIZE && n < USAGE_FLUSH_BATCH; i++)
		if (usage->rows[i].state == SLOT_FULL && usage->rows[i].dboid == worker_dboid)
		{
			usage->rows[i].state = SLOT_TAKEN;
			rows[n] = usage->rows[i];
			idx[n++] = i;
		}
	LWLockRelease(usage->lock);
	if (n == 0)
	{
		pfree(rows);
		return 0;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "writing genai usage rows");
	if (OidIsValid(get_extension_oid("genai", true)))
	{
		for (int i = 0; i < n; i++)
		{
			UsageRow   *r = &rows[i];

			LedgerInsertRow(r->roleid, NameStr(r->rolname), NameStr(r->provider), r->kind,
							r->operation, r->model[0] ? r->model : NULL,
							r->requests, r->inputs, I64(r->input_tokens), I64(r->output_tokens),
							r->latency_ms, r->retries, r->outcome, r->ts);
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		usage->rows[idx[i]].state = SLOT_FREE;
	LWLockRelease(usage->lock);
	pfree(rows);
	return n;
}

/* true, and the slot released, when the database has nothing queued */
static bool
UsageWorkerMayExit(void)
{
	bool		pending = false;

	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < USAGE_QUEUE_SIZE && !pending; i++)
		if (usage->rows[i].state != SLOT_FREE && usage->rows[i].dboid == worker_dboid)
			pending = true;
	if (!pending && extra_pending != NULL && extra_pending(worker_dboid))
		pending = true;
	if (!pending)
	{
		for (int i = 0; i < USAGE_MAX_WORKERS; i++)
			if (usage->workers[i].dboid == worker_dboid && usage->workers[i].pid == MyProcPid)
			{
				usage->workers[i].pid = 0;
				usage->workers[i].dboid = InvalidOid;
			}
	}
	LWLockRelease(usage->lock);
	return !pending;
}

void
genai_usage_worker_main(Datum arg)
{
	int			idle_ms = 0;
	bool		registered = false;

	worker_dboid = DatumGetObjectId(arg);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(worker_dboid, InvalidOid, 0);
	if (usage == NULL)
		proc_exit(0);

	/* claim the database's slot; rows a dead worker had taken are queued again */
	LWLockAcquire(usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < USAGE_MAX_WORKERS && !registered; i++)
		if (usage->workers[i].dboid == worker_dboid)
		{
			if (usage->workers[i].pid != 0 && usage->workers[i].pid != MyProcPid)
				break;			/* another one runs */
			usage->workers[i].pid = MyProcPid;
			registered = true;
		}
	for (int i = 0; i < USAGE_MAX_WORKERS && !registered; i++)
		if (usage->workers[i].dboid == InvalidOid)
		{
			usage->workers[i].dboid = worker_dboid;
			usage->workers[i].pid = MyProcPid;
			registered = true;
		}
	if (registered)
		for (int i = 0; i < USAGE_QUEUE_SIZE; i++)
			if (usage->rows[i].state == SLOT_TAKEN && usage->rows[i].dboid == worker_dboid)
				usage->rows[i].state = SLOT_FULL;
	LWLockRelease(usage->lock);
	if (!registered)
		proc_exit(0);
	before_shmem_exit(UsageWorkerExit, (Datum) 0);

	for (;;)
	{
		int			n = UsageFlush();
		int			extra = extra_flush ? extra_flush(worker_dboid) : 0;

		if (n > 0 || extra > 0)
			idle_ms = 0;
		else if (ShutdownRequestPending || idle_ms >= USAGE_WORKER_IDLE_EXIT_MS)
		{
			if (UsageWorkerMayExit())
				break;
		}
		if (n == USAGE_FLUSH_BATCH || extra >= USAGE_FLUSH_BATCH)
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 USAGE_WORKER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		idle_ms += USAGE_WORKER_NAP_MS;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(0);
}

/* ---- statistics ---- */

Datum
genai_provider_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProviderStat *copy;
	int			n;

	if (usage == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("genai provider statistics need shared_preload_libraries = 'genai'")));
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(ProviderStat) * USAGE_MAX_PROVIDERS);
	LWLockAcquire(usage->lock, LW_SHARED);
	n = usage->nproviders;
	memcpy(copy, usage->providers, sizeof(ProviderStat) * n);
	LWLockRelease(usage->lock);

	for (int i = 0; i < n; i++)
	{
		Datum		values[14];
		bool		nulls[14] = {false};
		ProviderStat *p = &copy[i];

		if (p->dboid != MyDatabaseId)
			continue;
		values[0] = ObjectIdGetDatum(p->serverid);
		values[1] = Int64GetDatum(p->calls);
		values[2] = Int64GetDatum(p->errors);
		values[3] = Int64GetDatum(p->requests);
		values[4] = Int64GetDatum(p->retries);
		values[5] = Int64GetDatum(p->input_tokens);
		values[6] = Int64GetDatum(p->output_tokens);
		values[7] = Float8GetDatum(p->calls > 0 ? p->latency_ms_total / p->calls : 0);
		values[8] = Float8GetDatum(p->latency_ms_max);
		values[9] = Int32GetDatum(p->in_flight);
		values[10] = Int32GetDatum(p->max_in_flight);
		values[11] = Int64GetDatum(p->slot_waits);
		values[12] = Int64GetDatum(p->rate_waits);
		values[13] = Float8GetDatum(p->wait_ms_total);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
