/*-------------------------------------------------------------------------
 *
 * tokenizer.h
 *	  Public C interface of the tokenizer for other genai subsystems.
 *
 * Encodings are named as in SQL: cl100k_base, o200k_base, p50k_base,
 * r50k_base, or a model name alias (gpt-4o, gpt-4, ...).  Unrecognized
 * names raise an ERROR.  The first use of an encoding in a backend maps its
 * vocabulary file; later uses cost nothing extra.
 *
 * Include postgres.h first.  Text arguments are UTF-8 bytes, not
 * necessarily NUL-terminated.  Use
 * TokenizerCountText for a text datum in the server encoding.
 *
 * IDENTIFICATION
 *	  src/tokenizer/tokenizer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TOKENIZER_H
#define TOKENIZER_H


typedef struct TokenizerEncoding TokenizerEncoding;

/* Resolve an encoding or model name and load its vocabulary; ERROR if unknown */
extern const TokenizerEncoding *TokenizerGetEncoding(const char *name);

/* Canonical encoding name ("cl100k_base" for "gpt-4") */
extern const char *TokenizerEncodingName(const TokenizerEncoding *enc);

/* Number of tokens in UTF-8 text (tiktoken encode_ordinary) */
extern int64 TokenizerCountUtf8(const TokenizerEncoding *enc,
								const char *utf8, size_t len);

/* Convenience: TokenizerCountUtf8 after TokenizerGetEncoding (ERROR if > INT_MAX) */
extern int	TokenizerCount(const char *utf8, size_t len, const char *encoding_name);

/* Number of tokens in a text value in the server encoding */
extern int64 TokenizerCountText(const text *t, const char *encoding_name);

/*
 * Token ids of UTF-8 text, palloc'd; *ntokens receives their number.
 */
extern uint32 *TokenizerEncodeUtf8(const TokenizerEncoding *enc,
								   const char *utf8, size_t len,
								   size_t *ntokens);

/*
 * Length in bytes of the longest prefix of UTF-8 text whose own token count
 * is at most max_tokens, cut at a token boundary that is also a character
 * boundary.
 */
extern size_t TokenizerTruncateUtf8(const TokenizerEncoding *enc,
									const char *utf8, size_t len,
									int64 max_tokens);

#endif							/* TOKENIZER_H */
