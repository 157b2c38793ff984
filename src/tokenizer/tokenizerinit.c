/*-------------------------------------------------------------------------
 *
 * tokenizerinit.c
 *	  Registers the tokenizer subsystem's settings at load time.
 *
 * IDENTIFICATION
 *	  src/tokenizer/tokenizerinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "genai.h"

/* The subsystem has no settings yet; this is where they are defined. */
void
TokenizerInit(void)
{
}
