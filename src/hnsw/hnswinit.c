/*-------------------------------------------------------------------------
 *
 * hnswinit.c
 *	  Registers the hnsw subsystem's settings at load time.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "genai.h"

/* The subsystem has no settings yet; this is where they are defined. */
void
HnswInit(void)
{
}
