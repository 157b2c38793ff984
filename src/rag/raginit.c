/*-------------------------------------------------------------------------
 *
 * raginit.c
 *	  Registers the rag subsystem's settings at load time.
 *
 * IDENTIFICATION
 *	  src/rag/raginit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "genai.h"

/* The subsystem has no settings yet; this is where they are defined. */
void
RagInit(void)
{
}
