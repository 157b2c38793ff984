/*-------------------------------------------------------------------------
 *
 * providers.h
 *	  Public interface of the providers subsystem: model endpoints
 *	  configured as foreign servers of the genai wrapper, the calls that
 *	  embed text and complete prompts through them, and the usage ledger.
 *
 * A provider is a foreign server of the "genai" foreign-data wrapper
 * (see src/providers/README for why).  Callers need USAGE on it.
 *
 * IDENTIFICATION
 *	  src/providers/providers.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_PROVIDERS_H
#define GENAI_PROVIDERS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#include "vector/vector.h"

typedef enum ProviderKind
{
	PROVIDER_LOCAL,				/* built-in, in-process stand-in */
	PROVIDER_OPENAI,			/* OpenAI wire format (vLLM, TEI, LiteLLM...) */
	PROVIDER_AZURE,				/* OpenAI wire format, Azure URL and header */
	PROVIDER_OLLAMA				/* Ollama's native /api routes */
} ProviderKind;

/* A provider's configuration, read from its foreign server's options. */
typedef struct ProviderData
{
	Oid			serverid;
	char	   *name;
	ProviderKind kind;
	char	   *base_url;		/* NULL for local */
	char	   *embedding_model;	/* default model for embed(), or NULL */
	char	   *chat_model;		/* default model for llm_complete(), or NULL */
	char	   *api_version;	/* Azure only */
	char	   *api_key_env;	/* credential sources (superuser-set) */
	char	   *api_key_file;
	char	   *ca_bundle;
	char	   *proxy;
	int			max_batch_inputs;	/* inputs per embedding request */
	int			max_batch_tokens;	/* tokens per embedding request */
	char	   *tokenizer;		/* encoding counting batch tokens, NULL: bytes */
	int			max_concurrency;	/* requests in flight, all backends; 0: no limit */
	int			requests_per_minute;	/* 0: no limit */
} ProviderData;

typedef ProviderData *Provider;

/* Token usage and outcome of one provider call, for the ledger. */
typedef struct ProviderUsage
{
	const char *operation;		/* "embed" or "complete" */
	const char *model;
	const char *rolname;		/* set by LedgerRun */
	int			requests;		/* HTTP requests sent (0 for local) */
	int			inputs;			/* texts embedded or messages sent */
	int64		input_tokens;	/* -1: unknown */
	int64		output_tokens;	/* -1: unknown */
	int			retries;
	double		latency_ms;
} ProviderUsage;

#define GENAI_DEFAULT_LOCAL_DIMENSIONS 384
#define GENAI_LOCAL_EMBEDDING_MODEL "local-hash-v1"
#define GENAI_LOCAL_CHAT_MODEL "local-extractive-v1"

/* provider.c */
extern char *genai_default_provider;
extern Provider ProviderLookup(const char *name);
extern char *ProviderGetKey(Provider prov);
extern const char *ProviderKindName(ProviderKind kind);

/*
 * embed.c: embed n texts (server encoding; NULL entries give NULL) with
 * model (NULL: provider default) and dimensions (0: model default).
 * Fills out[]; all or nothing.
 */
extern void ProviderEmbed(Provider prov, const char *model, int dimensions,
						  int n, char **texts, Vector **out);

/*
 * complete.c: a chat completion.  messages is a jsonb array of
 * {"role","content"} objects; options a jsonb object (temperature,
 * max_tokens, ...) or NULL.  Returns the provider's response as jsonb and
 * sets *content to the answer text (palloc'd, server encoding).
 */
extern Jsonb *ProviderComplete(Provider prov, const char *model,
							   Jsonb *messages, Jsonb *options,
							   char **content);

/* local.c: the built-in provider */
extern void LocalEmbed(const char *text, int len, float *out, int dim);
extern char *LocalComplete(const char *context, const char *question,
						   int max_tokens);
extern int64 GenaiCountTokens(const char *text, int len);

/*
 * ledger.c: the usage ledger, written as the extension's owner.
 *
 * GenaiInsertAsOwner inserts one row into the table "relname" of genai's
 * schema with the privileges of the extension's owner, so callers can
 * neither skip nor forge rows in tables they may only read.  The columns
 * are named in colnames (nvalues of them), values are given as text
 * (NULL pointer: SQL NULL) and cast by the table's column types.  It
 * errors in a read-only transaction.  The rag subsystem uses it for audit
 * rows.
 */
extern void GenaiExtensionOwnerAndSchema(Oid *owner, Oid *nsp);
extern void GenaiInsertAsOwner(const char *relname, int nvalues,
							   const char *const *colnames,
							   const char *const *values);
extern void LedgerCheckWritable(Provider prov);
extern void LedgerInsertRow(Oid roleid, const char *rolname, const char *provider,
							const char *kind, const char *operation, const char *model,
							int requests, int inputs, const char *input_tokens,
							const char *output_tokens, double latency_ms, int retries,
							const char *outcome, TimestampTz ts);
extern void LedgerRun(Provider prov, ProviderUsage *u, int64 estimate,
					  void (*fn) (void *arg), void *arg);

/* usage.c: shared-memory accounting, active with shared_preload_libraries */
extern int	genai_token_budget;
extern void UsageInit(void);
extern bool UsageActive(void);
extern int64 UsageReserve(Provider prov, int64 estimate);
extern bool UsageFinish(Provider prov, const ProviderUsage *u, int64 reserved,
						const char *outcome);
typedef int (*UsageQueueFlush) (Oid dboid);
typedef bool (*UsageQueuePending) (Oid dboid);
extern void UsageAddQueue(UsageQueueFlush flush, UsageQueuePending pending);
extern void UsageWakeWorker(void);

/*
 * HttpPost under the provider's max_concurrency and requests_per_minute
 * (usage.c; enforced with preload only).  Sets req->before_attempt.
 */
struct HttpRequest;
struct HttpResponse;
extern void ProviderHttpPost(Provider prov, struct HttpRequest *req,
							 struct HttpResponse *resp);

#endif							/* GENAI_PROVIDERS_H */
