/*-------------------------------------------------------------------------
 *
 * rag.h
 *	  Internal interface of the rag subsystem: source registrations, the
 *	  extension-owner writer (audit, cache), calls into other subsystems
 *	  through SQL, and prompt assembly.
 *
 * Everything here runs inside an SPI connection opened by the SQL-callable
 * function at the top of the call.  What these functions palloc lives in
 * the SPI procedure context (every SPI call switches back to it), so it
 * dies at SPI_finish: the SQL-callable function hands its results to the
 * caller (tuplestore rows, or a datum built in the caller's context) before
 * calling SPI_finish.  Datums taken from SPI_tuptable are copied before the
 * tuple table is freed.  Retrieval queries run as the caller;
 * only the audit and cache writers switch to the extension's owner.
 *
 * IDENTIFICATION
 *	  src/rag/rag.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_RAG_H
#define GENAI_RAG_H

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "portability/instr_time.h"
#include "storage/itemptr.h"

/* settings (raginit.c) */
extern bool rag_audit_enabled;
extern bool rag_audit_questions;
extern int	rag_audit_retention_days;
extern bool rag_embedding_cache_enabled;
extern int	rag_audit_write;

/* genai.rag_audit_write */
typedef enum RagAuditWriteMode
{
	RAG_AUDIT_WRITE_QUEUED,		/* shared-memory queue, when preloaded */
	RAG_AUDIT_WRITE_TRANSACTIONAL	/* in the caller's transaction */
} RagAuditWriteMode;

/* The extension's schema and owner, looked up per call (it may be re-created). */
typedef struct RagExtension
{
	Oid			schema;
	Oid			owner;
	Oid			vector_type;
	char	   *schema_q;		/* quoted schema name, for generated SQL */
} RagExtension;

extern void RagGetExtension(RagExtension *ext);

/* One registered source (a row of rag_source). */
typedef struct RagSource
{
	Oid			relid;
	char	   *rel_q;			/* quoted, schema-qualified relation name */
	char	   *id_col;
	char	   *content_col;
	char	   *embedding_col;
	List	   *metadata_cols;	/* of char * */
	char	   *tsvector_col;	/* NULL when none registered */
	Oid			ts_config;
	char	   *distance;		/* cosine, l2, ip, l1 */
	char	   *provider;		/* NULL = the default provider */
	char	   *model;			/* NULL = the provider's default model */
	int			dimensions;		/* 0 = the model's default */
} RagSource;

extern RagSource *RagLookupSource(RagExtension *ext, Oid relid);

/* One retrieved row. */
typedef struct RagHit
{
	Oid			tableoid;
	ItemPointerData tid;
	char	   *id;
	char	   *content;
	Datum		metadata;		/* jsonb */
	double		score;
	int			vector_rank;	/* 0 = not ranked by this side */
	int			text_rank;
	char	   *title;			/* metadata "title" or NULL, for citations */
	char	   *url;			/* metadata "url" or NULL */
} RagHit;

/* retrieval (ragretrieve.c) */
extern List *RagRetrieveVector(RagExtension *ext, RagSource *src, Datum qvec, int k);
extern List *RagRetrieveHybrid(RagExtension *ext, RagSource *src, const char *question,
							   Datum qvec, int k, double vector_weight,
							   double text_weight, int rrf_k, int candidates);

/* calls into the endpoints and tokenizer subsystems through SQL (ragcall.c) */
extern Datum RagEmbed(RagExtension *ext, RagSource *src, const char *str,
					  bool *cache_hit);
extern char *RagComplete(RagExtension *ext, const char *prompt, const char *model,
						 const char *system_prompt, double temperature,
						 int max_tokens, const char *provider);
extern int	RagTokenCount(RagExtension *ext, const char *str, const char *encoding);
extern char *RagTruncateTokens(RagExtension *ext, const char *str, int max_tokens,
							   const char *encoding);

/* prompt assembly (ragprompt.c) */
typedef struct RagPrompt
{
	char	   *system;
	char	   *user;
	int			prompt_tokens;	/* system + user + chat framing */
	int			budget;
	List	   *included;		/* of RagHit *, in prompt order */
	List	   *truncated;		/* the cut chunk (at most one), also in included */
	int			omitted;		/* chunks left out */
} RagPrompt;

extern RagPrompt *RagBuildPrompt(RagExtension *ext, const char *question, List *hits,
								 int context_window, int answer_reserve,
								 const char *encoding, const char *system_prompt,
								 int min_tail_tokens);
extern Datum RagPromptToJsonb(RagPrompt *p);
extern void RagAppendCitations(StringInfo buf, RagPrompt *p);
extern void RagCheckBudget(int context_window, int answer_reserve, int min_tail_tokens);

/* audit trail, written as the extension's owner (ragaudit.c) */
typedef struct RagAuditEntry
{
	const char *call;
	Oid			source;
	List	   *hits;			/* of RagHit *: their ids are recorded */
	const char *provider;
	const char *model;
	int			prompt_tokens;	/* -1 = unknown */
	int			completion_tokens;
	instr_time	start;
	const char *status;
	const char *question;
} RagAuditEntry;

/* purge expired audit rows once every this many writes */
#define RAG_AUDIT_PURGE_EVERY	1000

extern void RagAuditCheckWritable(const char *call);
extern void RagAuditWrite(RagExtension *ext, RagAuditEntry *e);
extern int	RagAuditPurgeExpired(RagExtension *ext);
extern char *RagAuditPrepareFailure(RagAuditEntry *e);
extern void RagAuditQueueFailure(const char *prepared, instr_time start,
								 int sqlerrcode);

/* the queued audit write, with preload (ragauditq.c) */
#define RAG_AUDIT_SLOT_BYTES	2040	/* one JSON row, without its NUL */
extern void RagAuditQueueInit(void);
extern bool RagAuditQueued(void);
extern bool RagAuditEnqueue(const char *json, int len);

/* run a statement as the extension's owner (ragaudit.c) */
extern int	RagExecuteAsOwner(RagExtension *ext, const char *sql, int nargs,
							  Oid *argtypes, Datum *values, const char *nulls,
							  bool read_only, long count);

extern int	RagExecutePlanAsOwner(RagExtension *ext, SPIPlanPtr plan, Datum *values,
								  const char *nulls, bool read_only, long count);

/* helpers */
extern char *RagSpiGetText(int row, int col);
extern Datum RagTextArray(List *strings);
extern void RagAppendJsonStringOrNull(StringInfo buf, const char *s);

#endif							/* GENAI_RAG_H */
