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
}
