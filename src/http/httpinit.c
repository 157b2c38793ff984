/*-------------------------------------------------------------------------
 *
 * httpinit.c
 *	  Registers the http subsystem's settings at load time.
 *
 * IDENTIFICATION
 *	  src/http/httpinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "genai.h"

/* The subsystem has no settings yet; this is where they are defined. */
void
HttpInit(void)
{
}
