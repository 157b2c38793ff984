/*-------------------------------------------------------------------------
 *
 * ragauditq.c
 *	  The queued audit write: with shared_preload_libraries, audit rows go
 *	  to a shared-memory queue and the usage ledger's background worker
 *	  inserts them, as the extension's owner, in its own transactions.
 *
 * Why: an audit row inserted in the caller's transaction turns every
 * retrieve() into a writing transaction whose commit waits for a WAL flush
 * (synchronous_commit), and a ROLLBACK takes the row away although the
 * caller has seen the rows.  A queued row costs the caller a memcpy under
 * one LWLock; the caller's transaction stays read-only, and the row is
 * written whether the caller commits, rolls back or fails later.  What is
 * lost: rows still queued when the server crashes (or is stopped with
 * "immediate"), at most about USAGE_WORKER_NAP_MS (200 ms) of calls, plus
 * whatever the worker's own unflushed commits held (README, "The audit
 * trail").
 *
 * Each slot holds one row as a JSON object (column name -> text value,
 * built with escape_json, so no caller text is ever SQL).  Slots are FREE,
 * FULL or TAKEN, as in the ledger's queue (src/providers/usage.c).  The
 * worker of a database takes up to RAG_AUDIT_FLUSH_BATCH rows of its
 * database, inserts them with one INSERT ... SELECT FROM
 * json_populate_recordset as the extension's owner, commits, and frees the
 * slots.  Only one worker per database runs at a time, so slots of its
 * database that are TAKEN when it starts a flush were taken by a worker
 * that died: they are written again (at least once, like the ledger).  A
 * row that does not fit in a slot, or finds the queue full, is written by
 * the caller in its own transaction, as without preload (and fails closed
 * in a read-only transaction).
 *
 * Expired rows (genai.rag_audit_retention_days, as the worker sees it) are
 * deleted by the worker every RAG_AUDIT_PURGE_EVERY rows it writes.
 *
 * IDENTIFICATION
 *	  src/rag/ragauditq.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "providers/providers.h"
#include "rag.h"

#define RAG_AUDIT_QUEUE_SLOTS	1024
#define RAG_AUDIT_FLUSH_BATCH	256

typedef enum RagAuditSlotState
{
	RAG_SLOT_FREE = 0,
	RAG_SLOT_FULL,
	RAG_SLOT_TAKEN
} RagAuditSlotState;

typedef struct RagAuditQueue
{
	LWLock	   *lock;
	int			next;			/* where the next free-slot search starts */
	/* compact per-slot state, so that searches touch little memory */
	uint8		state[RAG_AUDIT_QUEUE_SLOTS];
	Oid			dboid[RAG_AUDIT_QUEUE_SLOTS];
	uint16		len[RAG_AUDIT_QUEUE_SLOTS];
	char		data[RAG_AUDIT_QUEUE_SLOTS][RAG_AUDIT_SLOT_BYTES];
} RagAuditQueue;

static RagAuditQueue *queue = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int	RagAuditQueueFlush(Oid dboid);
static bool RagAuditQueuePending(Oid dboid);

static void
RagAuditShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RagAuditQueue)));
	RequestNamedLWLockTranche("genai rag audit", 1);
}

static void
RagAuditShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	queue = ShmemInitStruct("genai rag audit queue", sizeof(RagAuditQueue), &found);
	if (!found)
	{
		memset(queue, 0, offsetof(RagAuditQueue, data));
		queue->lock = &(GetNamedLWLockTranche("genai rag audit"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from RagInit while shared_preload_libraries is processed. */
void
RagAuditQueueInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RagAuditShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = RagAuditShmemStartup;
	UsageAddQueue(RagAuditQueueFlush, RagAuditQueuePending);
}

/* true when audit rows are queued: preloaded, and genai.rag_audit_write = queued */
bool
RagAuditQueued(void)
{
	return queue != NULL && rag_audit_write == RAG_AUDIT_WRITE_QUEUED &&
		!RecoveryInProgress();
}

/*
 * Queue one row (a JSON object of len bytes).  Returns false when it does
 * not fit in a slot or the queue is full; the caller then writes it itself.
 */
bool
RagAuditEnqueue(const char *json, int len)
{
	int			slot = -1;

	if (queue == NULL || len > RAG_AUDIT_SLOT_BYTES)
		return false;
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (int i = 0; i < RAG_AUDIT_QUEUE_SLOTS; i++)
	{
		int			s = (queue->next + i) % RAG_AUDIT_QUEUE_SLOTS;

		if (queue->state[s] == RAG_SLOT_FREE)
		{
			slot = s;
			break;
		}
	}
	if (slot >= 0)
	{
		memcpy(queue->data[slot], json, len);
		queue->len[slot] = (uint16) len;
		queue->dboid[slot] = MyDatabaseId;
		queue->state[slot] = RAG_SLOT_FULL;
		queue->next = (slot + 1) % RAG_AUDIT_QUEUE_SLOTS;
	}
	LWLockRelease(queue->lock);
	if (slot < 0)
		return false;
	UsageWakeWorker();
	return true;
}

/* Asked by the worker, with the usage lock held, before it exits. */
static bool
RagAuditQueuePending(Oid dboid)
{
	bool		pending = false;

	if (queue == NULL)
		return false;
	LWLockAcquire(queue->lock, LW_SHARED);
	for (int i = 0; i < RAG_AUDIT_QUEUE_SLOTS && !pending; i++)
		if (queue->state[i] != RAG_SLOT_FREE && queue->dboid[i] == dboid)
			pending = true;
	LWLockRelease(queue->lock);
	return pending;
}

/* Inserts the rows (a JSON array) as the extension's owner; SPI is open. */
static void
insert_rows(RagExtension *ext, const char *rows)
{
	StringInfoData sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			ret;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.rag_audit (at, roleid, role_name, call, source,"
					 " source_name, retrieved_ids, provider, model, prompt_tokens,"
					 " completion_tokens, latency_ms, status, question)"
					 " SELECT r.at, r.roleid, r.role_name, r.call, r.source,"
					 " r.source_name, r.retrieved_ids, r.provider, r.model, r.prompt_tokens,"
					 " r.completion_tokens, r.latency_ms, r.status, r.question"
					 " FROM pg_catalog.json_populate_recordset(NULL::%s.rag_audit,"
					 " $1::pg_catalog.json) r",
					 ext->schema_q, ext->schema_q);
	values[0] = CStringGetTextDatum(rows);
	ret = RagExecuteAsOwner(ext, sql.data, 1, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not insert queued audit rows: SPI result %d", ret);
}

/*
 * In the worker of database dboid, outside a transaction: insert up to
 * RAG_AUDIT_FLUSH_BATCH queued rows of that database in one transaction.
 * Returns how many were written.
 */
static int
RagAuditQueueFlush(Oid dboid)
{
	static int	written_since_purge = 0;
	int			idx[RAG_AUDIT_FLUSH_BATCH];
	int			n = 0;
	MemoryContext cxt;
	MemoryContext old;
	StringInfoData rows;

	if (queue == NULL)
		return 0;
	cxt = AllocSetContextCreate(TopMemoryContext, "genai rag audit flush",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	initStringInfo(&rows);
	appendStringInfoChar(&rows, '[');

	/* TAKEN slots of this database were left by a worker that died */
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (int i = 0; i < RAG_AUDIT_QUEUE_SLOTS && n < RAG_AUDIT_FLUSH_BATCH; i++)
		if (queue->state[i] != RAG_SLOT_FREE && queue->dboid[i] == dboid)
		{
			queue->state[i] = RAG_SLOT_TAKEN;
			if (n > 0)
				appendStringInfoChar(&rows, ',');
			appendBinaryStringInfo(&rows, queue->data[i], queue->len[i]);
			idx[n++] = i;
		}
	LWLockRelease(queue->lock);
	appendStringInfoChar(&rows, ']');

	if (n > 0)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "writing genai audit rows");
		/* without the extension (dropped meanwhile) the rows have nowhere to go */
		if (OidIsValid(get_extension_oid("genai", true)))
		{
			RagExtension ext;

			RagGetExtension(&ext);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			insert_rows(&ext, rows.data);
			written_since_purge += n;
			if (written_since_purge >= RAG_AUDIT_PURGE_EVERY)
			{
				written_since_purge = 0;
				(void) RagAuditPurgeExpired(&ext);
			}
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);

		LWLockAcquire(queue->lock, LW_EXCLUSIVE);
		for (int i = 0; i < n; i++)
			queue->state[idx[i]] = RAG_SLOT_FREE;
		LWLockRelease(queue->lock);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return n;
}
