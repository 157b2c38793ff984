/*-------------------------------------------------------------------------
 *
 * genai.c
 *	  Module entry point: the magic block and _PG_init.
 *
 * Nothing else lives here.  Each subsystem registers its own settings and
 * hooks from its Init function, declared in its public header.
 *
 * IDENTIFICATION
 *	  src/genai.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "genai.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	VectorInit();
	HnswInit();
	TokenizerInit();
	HttpInit();
	ProvidersInit();
	RagInit();

	MarkGUCPrefixReserved("genai");
}
