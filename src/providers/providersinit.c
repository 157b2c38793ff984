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

#include "genai.h"

/* The subsystem has no settings yet; this is where they are defined. */
void
ProvidersInit(void)
{
}
