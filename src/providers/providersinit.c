/*-------------------------------------------------------------------------
 *
 * providersinit.c
 *	  Registers the providers subsystem's settings at load time.
 *
 * IDENTIFICATION
 *	  src/providers/providersinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "genai.h"
#include "providers.h"

void
ProvidersInit(void)
{
	DefineCustomStringVariable("genai.default_provider",
							   "Provider used by embed() and llm_complete() when none is given.",
							   "The name of a foreign server of the genai wrapper; the caller needs USAGE on it.",
							   &genai_default_provider,
							   "local",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("genai.token_budget",
							"Tokens a role may spend per UTC day through providers (0: no limit).",
							"Enforced only with shared_preload_libraries = 'genai'.  Set it per role with ALTER ROLE ... SET.",
							&genai_token_budget,
							0, 0, PG_INT32_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		UsageInit();
}
