/*-------------------------------------------------------------------------
 *
 * raginit.c
 *	  Registers the rag subsystem's settings at load time.
 *
 * Settings that would weaken the audit trail (turning it off, shortening
 * retention) or record more than callers expect (question text) are
 * superuser-only (PGC_SUSET).
 *
 * IDENTIFICATION
 *	  src/rag/raginit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "genai.h"
#include "rag.h"

bool		rag_audit_enabled = true;
bool		rag_audit_questions = false;
int			rag_audit_retention_days = 90;
bool		rag_embedding_cache_enabled = true;
int			rag_audit_write = RAG_AUDIT_WRITE_QUEUED;

static const struct config_enum_entry audit_write_options[] = {
	{"queued", RAG_AUDIT_WRITE_QUEUED, false},
	{"transactional", RAG_AUDIT_WRITE_TRANSACTIONAL, false},
	{NULL, 0, false}
};

void
RagInit(void)
{
	DefineCustomBoolVariable("genai.rag_audit",
							 "Writes an audit row for every retrieve() and rag() call.",
							 NULL,
							 &rag_audit_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("genai.rag_audit_questions",
							 "Stores the question text in the audit trail.",
							 "Off by default: questions can hold personal data.",
							 &rag_audit_questions,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("genai.rag_audit_retention_days",
							"Days audit rows are kept; 0 keeps them forever.",
							"Expired rows are deleted by rag_audit_purge() and, every 1000 audit writes, by the writer itself.",
							&rag_audit_retention_days,
							90,
							0,
							365000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("genai.rag_audit_write",
							 "Sets how audit rows are written.",
							 "\"queued\" (with shared_preload_libraries = 'genai') hands them to a background worker: "
							 "they survive ROLLBACK and cost the caller no write, but the last fraction of a second "
							 "of rows is lost if the server crashes.  \"transactional\" writes them in the caller's "
							 "transaction (always the case without preload).",
							 &rag_audit_write,
							 RAG_AUDIT_WRITE_QUEUED,
							 audit_write_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("genai.rag_embedding_cache",
							 "Caches question embeddings per role.",
							 "The cache is keyed by the calling role, provider, model, dimensions and the text's SHA-256.",
							 &rag_embedding_cache_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		RagAuditQueueInit();
}
