/*-------------------------------------------------------------------------
 *
 * tokenizerint.h
 *	  Declarations shared by the tokenizer's own files (not for other
 *	  subsystems: they use tokenizer.h).
 *
 * IDENTIFICATION
 *	  src/tokenizer/tokenizerint.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TOKENIZERINT_H
#define TOKENIZERINT_H

#include "tokenizer.h"

extern const char *TokenizerTextToUtf8(const text *t, size_t *len);
extern text *TokenizerUtf8ToText(const char *utf8, size_t len);
extern size_t TokenizerTokenLength(const TokenizerEncoding *enc, uint32 id);

#endif							/* TOKENIZERINT_H */
