/*-------------------------------------------------------------------------
 *
 * bpe.h
 *	  Byte-pair encoding core: vocabulary image, pre-tokenizer, merge loop.
 *
 * Everything declared here is plain C over byte buffers: no PostgreSQL
 * headers, no palloc, no ereport.  Memory beyond small stack buffers comes
 * from a caller-supplied allocator, so the same objects link into the
 * server module, the vocabulary compiler (host tool) and the libFuzzer
 * driver.  See src/tokenizer/README for the design.
 *
 * IDENTIFICATION
 *	  src/tokenizer/bpe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef BPE_H
#define BPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Character classes (values of the generated Unicode tables) */
#define BPE_CAT_OTHER	0
#define BPE_CAT_LU		1
#define BPE_CAT_LL		2
#define BPE_CAT_LT		3
#define BPE_CAT_LM		4
#define BPE_CAT_LO		5
#define BPE_CAT_M		6		/* Mn, Mc, Me */
#define BPE_CAT_N		7		/* Nd, Nl, No */
#define BPE_CAT_WS		8		/* White_Space */

extern const uint16_t bpe_unicode_stage1[0x1100];
extern const uint8_t bpe_unicode_stage2[][256];

static inline int
BpeCategory(uint32_t cp)
{
	if (cp >= 0x110000)
		return BPE_CAT_OTHER;
	return bpe_unicode_stage2[bpe_unicode_stage1[cp >> 8]][cp & 0xFF];
}

/* The three pre-tokenization patterns of the four encodings */
typedef enum BpePattern
{
	BPE_PATTERN_R50K,			/* r50k_base, p50k_base (gpt2) */
	BPE_PATTERN_CL100K,			/* cl100k_base */
	BPE_PATTERN_O200K			/* o200k_base */
} BpePattern;

/*
 * Compiled vocabulary file (data/genai_<encoding>.bpe, written by
 * tools/bpe_compile.c, mapped read-only by the server).  All integers are
 * in the byte order of the machine that built it; "endian" detects a
 * foreign file.  Layout after the header, each array 8-byte aligned:
 *
 *	offsets[n_ranks + 1]	uint32: token r is bytes[offsets[r] .. offsets[r+1])
 *							(empty for a rank missing from the rank file)
 *	table[1 << table_bits]	BpeSlot: open addressing, linear probing on
 *							BpeHash(token bytes)
 *	bytes[bytes_len]		the token bytes, concatenated in rank order
 *
 * payload_checksum covers everything after the header; source_sha256 is the
 * SHA-256 of the .tiktoken rank file the image was built from.
 */
#define BPE_FILE_MAGIC		"GENAIBPE"
#define BPE_FILE_VERSION	3
#define BPE_FILE_ENDIAN		0x01020304u
#define BPE_NO_RANK			0xFFFFFFFFu
#define BPE_MAX_TOKEN_LEN	255		/* the slot keeps the length in 8 bits */

typedef struct BpeFileHeader
{
	char		magic[8];
	uint32_t	version;
	uint32_t	endian;
	uint32_t	n_ranks;		/* ranks are 0 .. n_ranks - 1 */
	uint32_t	n_tokens;		/* ranks actually present */
	uint32_t	table_bits;
	uint32_t	max_token_len;
	uint64_t	offsets_off;	/* byte offsets from the file start */
	uint64_t	table_off;
	uint64_t	bytes_off;
	uint64_t	bytes_len;
	uint64_t	total_len;		/* file size */
	uint8_t		source_sha256[32];
	uint64_t	payload_checksum;	/* BpeChecksum of everything after the header */
	uint8_t		reserved[24];
} BpeFileHeader;

/*
 * A hash table slot holds the first BPE_SLOT_BYTES bytes of its token
 * (zero-padded) and its rank and length, so looking up a token of up to
 * that many bytes touches one cache line; longer tokens are compared with
 * the bytes section too.
 */
#define BPE_SLOT_BYTES	12
#define BPE_SLOT_EMPTY	0xFFFFFFFFu

typedef struct BpeSlot
{
	uint8_t		bytes[BPE_SLOT_BYTES];
	uint32_t	rank_len;		/* rank | length << 24; BPE_SLOT_EMPTY if free */
} BpeSlot;

#define BPE_SLOT_RANK(x)	((x) & 0xFFFFFFu)
#define BPE_SLOT_LEN(x)		((x) >> 24)
#define BPE_MAX_RANKS		0xFFFFFFu

/* A validated view over a vocabulary image (no copies) */
typedef struct BpeVocab
{
	const uint32_t *offsets;
	const BpeSlot *table;
	const uint8_t *bytes;
	uint32_t	mask;
	uint32_t	n_ranks;
	uint32_t	max_token_len;
	uint32_t	byte_rank[256];
} BpeVocab;

/*
 * Caller-supplied memory for pieces too long for the stack buffers.  alloc
 * must return memory or not return at all (the server's palloc raises an
 * ERROR; the fuzz driver aborts).  interrupt, if set, is called every few
 * thousand merges and pieces so the server can honour query cancel.
 */
typedef struct BpeWork
{
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*free) (void *ctx, void *ptr);
	void	   *ctx;
	void		(*interrupt) (void);
	uint32_t   *ticks;			/* internal: countdown to next interrupt */
} BpeWork;

/*
 * Checksum of the image payload (n a multiple of 32): four independent
 * multiply-rotate lanes, so it runs at memory speed; it detects damaged or
 * truncated files, not forgery (the share directory is trusted).
 */
static inline uint64_t
BpeChecksum(const uint8_t *p, size_t n)
{
	uint64_t	lane[4] = {0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL,
	0xA4093822299F31D0ULL, 0x082EFA98EC4E6C89ULL};
	uint64_t	h;
	size_t		i;
	int			k;

	for (i = 0; i + 32 <= n; i += 32)
	{
		for (k = 0; k < 4; k++)
		{
			uint64_t	w;

			memcpy(&w, p + i + 8 * k, 8);
			lane[k] += w * 0xC2B2AE3D27D4EB4FULL;
			lane[k] = (lane[k] << 31) | (lane[k] >> 33);
			lane[k] *= 0x9E3779B97F4A7C15ULL;
		}
	}
	h = (uint64_t) n;
	for (k = 0; k < 4; k++)
	{
		h ^= lane[k];
		h = ((h << 27) | (h >> 37)) * 0x9E3779B97F4A7C15ULL + 0x85EBCA77C2B2AE63ULL;
	}
	return h;
}

static inline uint64_t
BpeMix(uint64_t a, uint64_t b, uint64_t n)
{
	uint64_t	h = (a ^ (n * 0xC2B2AE3D27D4EB4FULL)) * 0xFF51AFD7ED558CCDULL;

	h ^= h >> 32;
	h = (h ^ b) * 0xC4CEB9FE1A85EC53ULL;
	h ^= h >> 29;
	return h;
}

/* the first min(n, BPE_SLOT_BYTES) bytes, zero-padded, as two words */
static inline void
BpeKey(const uint8_t *p, size_t n, uint64_t key[2])
{
	uint8_t		buf[16] = {0};

	memcpy(buf, p, n < BPE_SLOT_BYTES ? n : BPE_SLOT_BYTES);
	memcpy(key, buf, 16);
}

/*
 * Hash of a byte string, shared by the compiler and the lookups (it is part
 * of the file format).  key is BpeKey(p, n).  Reads exactly n bytes.
 */
static inline uint64_t
BpeHash(const uint8_t *p, size_t n, const uint64_t key[2])
{
	uint64_t	h = BpeMix(key[0], key[1], n);
	size_t		i;

	for (i = BPE_SLOT_BYTES; i < n; i += 8)
	{
		uint64_t	w = 0;

		memcpy(&w, p + i, n - i < 8 ? n - i : 8);
		h = BpeMix(h, w, i);
	}
	return h;
}

/* Rank of the token with exactly these bytes, or BPE_NO_RANK */
static inline uint32_t
BpeLookup(const BpeVocab *v, const uint8_t *p, size_t n)
{
	uint64_t	key[2];
	uint32_t	i;

	if (n > v->max_token_len || n == 0)
		return BPE_NO_RANK;
	BpeKey(p, n, key);
	i = (uint32_t) BpeHash(p, n, key) & v->mask;
	for (;;)
	{
		const BpeSlot *s = &v->table[i];
		uint32_t	rl = s->rank_len;
		uint64_t	k0;
		uint32_t	k1;

		if (rl == BPE_SLOT_EMPTY)
			return BPE_NO_RANK;
		memcpy(&k0, s->bytes, 8);
		memcpy(&k1, s->bytes + 8, 4);
		if (BPE_SLOT_LEN(rl) == n && k0 == key[0] && k1 == (uint32_t) key[1] &&
			(n <= BPE_SLOT_BYTES ||
			 memcmp(v->bytes + v->offsets[BPE_SLOT_RANK(rl)] + BPE_SLOT_BYTES,
					p + BPE_SLOT_BYTES, n - BPE_SLOT_BYTES) == 0))
			return BPE_SLOT_RANK(rl);
		i = (i + 1) & v->mask;
	}
}

/* bpe.c */
extern const char *BpeVocabOpen(const void *image, size_t len, BpeVocab *v);
extern size_t BpeEncode(const BpeVocab *v, BpePattern pat,
						const uint8_t *text, size_t len,
						uint32_t *out, BpeWork *work);
extern size_t BpeEncodePiece(const BpeVocab *v, const uint8_t *p, size_t n,
							 uint32_t *out, BpeWork *work);

/* bpesplit.c */
extern size_t BpeNextPiece(BpePattern pat, const uint8_t *s, size_t n, size_t i);
extern int	BpeUtf8Decode(const uint8_t *s, size_t n, size_t i, uint32_t *cp);

#endif							/* BPE_H */
