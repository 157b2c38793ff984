/*-------------------------------------------------------------------------
 *
 * genai.h
 *	  The Init entry points that _PG_init calls, one per subsystem.
 *
 * Each is defined in its subsystem's folder and registers that subsystem's
 * settings.  Keep this list in the order of SUBSYSTEMS in the Makefile.
 *
 * IDENTIFICATION
 *	  src/genai.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_H
#define GENAI_H

extern void VectorInit(void);
extern void HnswInit(void);
extern void TokenizerInit(void);
extern void HttpInit(void);
extern void ProvidersInit(void);
extern void RagInit(void);

#endif							/* GENAI_H */
