/*-------------------------------------------------------------------------
 *
 * bpe_compile.c
 *	  Host tool: compile a tiktoken rank file into a mappable vocabulary.
 *
 * Usage: bpe_compile INPUT.tiktoken OUTPUT.bpe
 *
 * Reads the rank file (one "base64(token) rank" line per token), checks
 * it (ranks unique, tokens unique, every single byte present), and writes
 * the image described in bpe.h: header, offsets, hash table, token bytes.
 * The header records the SHA-256 of the input file, which the server
 * compares with the published tiktoken hash, and a checksum of the payload,
 * which the server checks at load.  Runs at build time (see the Makefile); it is not
 * part of the server module.
 *
 * IDENTIFICATION
 *	  src/tokenizer/tools/bpe_compile.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

static void
fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "bpe_compile: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

/* ---- SHA-256 (FIPS 180-4), small and plain ---- */

typedef struct Sha256
{
	uint32_t	h[8];
	uint64_t	len;
	uint8_t		buf[64];
	size_t		fill;
} Sha256;

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha_block(Sha256 *s, const uint8_t *b)
{
	uint32_t	w[64];
	uint32_t	a, bb, c, d, e, f, g, h;
	int			i;

	for (i = 0; i < 16; i++)
		w[i] = ((uint32_t) b[4 * i] << 24) | ((uint32_t) b[4 * i + 1] << 16) |
			((uint32_t) b[4 * i + 2] << 8) | b[4 * i + 3];
	for (i = 16; i < 64; i++)
	{
		uint32_t	s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t	s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0];
	bb = s->h[1];
	c = s->h[2];
	d = s->h[3];
	e = s->h[4];
	f = s->h[5];
	g = s->h[6];
	h = s->h[7];
	for (i = 0; i < 64; i++)
	{
		uint32_t	t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
		((e & f) ^ (~e & g)) + sha_k[i] + w[i];
		uint32_t	t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
		((a & bb) ^ (a & c) ^ (bb & c));

		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = bb;
		bb = a;
		a = t1 + t2;
	}
	s->h[0] += a;
	s->h[1] += bb;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
	s->h[5] += f;
	s->h[6] += g;
	s->h[7] += h;
}

static void
sha_init(Sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->fill = 0;
}

static void
sha_update(Sha256 *s, const uint8_t *p, size_t n)
{
	s->len += n;
	while (n > 0)
	{
		size_t		take = 64 - s->fill;

		if (take > n)
			take = n;
		memcpy(s->buf + s->fill, p, take);
		s->fill += take;
		p += take;
		n -= take;
		if (s->fill == 64)
		{
			sha_block(s, s->buf);
			s->fill = 0;
		}
	}
}

static void
sha_final(Sha256 *s, uint8_t out[32])
{
	uint64_t	bits = s->len * 8;
	uint8_t		pad = 0x80;
	uint8_t		zero = 0;
	uint8_t		lenbuf[8];
	int			i;

	sha_update(s, &pad, 1);
	while (s->fill != 56)
		sha_update(s, &zero, 1);
	for (i = 0; i < 8; i++)
		lenbuf[i] = (uint8_t) (bits >> (56 - 8 * i));
	sha_update(s, lenbuf, 8);
	for (i = 0; i < 32; i++)
		out[i] = (uint8_t) (s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- rank file ---- */

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* decode standard base64 with padding; returns length or -1 */
static int
b64decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t		i;
	size_t		o = 0;

	if (n == 0 || n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4)
	{
		int			v[4];
		int			k;
		int			pads = 0;

		for (k = 0; k < 4; k++)
		{
			if (s[i + k] == '=' && i + 4 == n && k >= 2)
			{
				v[k] = 0;
				pads++;
			}
			else if (pads > 0 || (v[k] = b64val((unsigned char) s[i + k])) < 0)
				return -1;
		}
		if (o + 3 - pads > cap)
			return -1;
		out[o++] = (uint8_t) ((v[0] << 2) | (v[1] >> 4));
		if (pads < 2)
			out[o++] = (uint8_t) (((v[1] & 15) << 4) | (v[2] >> 2));
		if (pads < 1)
			out[o++] = (uint8_t) (((v[2] & 3) << 6) | v[3]);
	}
	return (int) o;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		size;

	if (!f)
		fail("could not open \"%s\"", path);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		fail("could not size \"%s\"", path);
	buf = malloc((size_t) size + 1);
	if (!buf || fread(buf, 1, (size_t) size, f) != (size_t) size)
		fail("could not read \"%s\"", path);
	fclose(f);
	buf[size] = 0;
	*len = (size_t) size;
	return buf;
}

static uint64_t
align8(uint64_t x)
{
	return (x + 7) & ~(uint64_t) 7;
}

int
main(int argc, char **argv)
{
	size_t		srclen;
	uint8_t    *src;
	uint32_t   *tok_off;		/* per rank, into tokbytes; UINT32_MAX if absent */
	uint32_t   *tok_len;
	uint8_t    *tokbytes;
	size_t		tokfill = 0;
	uint32_t	n_ranks = 0;
	uint32_t	n_tokens = 0;
	uint32_t	max_len = 0;
	uint32_t	cap = 1 << 20;
	size_t		pos = 0;
	int			line = 0;
	BpeFileHeader hdr;
	uint32_t	bits;
	uint64_t	nslots;
	BpeSlot    *table;
	uint32_t   *offsets;
	uint8_t    *image;
	uint32_t	r;
	Sha256		sha;
	FILE	   *out;

	if (argc != 3)
		fail("%s", "usage: bpe_compile INPUT.tiktoken OUTPUT.bpe");
	src = read_file(argv[1], &srclen);

	tok_off = malloc(cap * sizeof(uint32_t));
	tok_len = calloc(cap, sizeof(uint32_t));
	tokbytes = malloc(srclen);
	if (!tok_off || !tok_len || !tokbytes)
		fail("%s", "out of memory");
	memset(tok_off, 0xFF, cap * sizeof(uint32_t));

	while (pos < srclen)
	{
		size_t		eol = pos;
		size_t		sp;
		char	   *endp;
		unsigned long rank;
		int			blen;

		line++;
		while (eol < srclen && src[eol] != '\n')
			eol++;
		if (eol == srclen)
			fail("%s: last line has no newline", argv[1]);
		sp = pos;
		while (sp < eol && src[sp] != ' ')
			sp++;
		if (sp == eol)
			fail("%s: line without a space", argv[1]);
		errno = 0;
		rank = strtoul((const char *) src + sp + 1, &endp, 10);
		if (errno || endp != (char *) src + eol || sp + 1 == eol || rank >= cap - 1 || rank >= BPE_MAX_RANKS)
			fail("%s: bad rank", argv[1]);
		if (tok_off[rank] != UINT32_MAX)
			fail("%s: duplicate rank", argv[1]);
		blen = b64decode((const char *) src + pos, sp - pos, tokbytes + tokfill,
						 BPE_MAX_TOKEN_LEN);	/* < 256: fits the slot's length */
		if (blen <= 0)
			fail("%s: bad base64 token", argv[1]);
		tok_off[rank] = (uint32_t) tokfill;
		tok_len[rank] = (uint32_t) blen;
		tokfill += (size_t) blen;
		if ((uint32_t) blen > max_len)
			max_len = (uint32_t) blen;
		if (rank + 1 > n_ranks)
			n_ranks = (uint32_t) rank + 1;
		n_tokens++;
		pos = eol + 1;
	}
	if (n_tokens == 0)
		fail("%s: empty rank file", argv[1]);

	/* hash table at most half full */
	for (bits = 8; ((uint64_t) 1 << bits) < (uint64_t) n_tokens * 2; bits++)
		;
	nslots = (uint64_t) 1 << bits;

	memset(&hdr, 0, sizeof(hdr));
	memcpy(hdr.magic, BPE_FILE_MAGIC, 8);
	hdr.version = BPE_FILE_VERSION;
	hdr.endian = BPE_FILE_ENDIAN;
	hdr.n_ranks = n_ranks;
	hdr.n_tokens = n_tokens;
	hdr.table_bits = bits;
	hdr.max_token_len = max_len;
	hdr.offsets_off = align8(sizeof(hdr));
	hdr.table_off = align8(hdr.offsets_off + ((uint64_t) n_ranks + 1) * 4);
	hdr.bytes_off = hdr.table_off + nslots * sizeof(BpeSlot);
	hdr.bytes_len = tokfill;
	/* the checksum runs over whole 32-byte blocks */
	hdr.total_len = sizeof(hdr) + ((hdr.bytes_off + tokfill - sizeof(hdr) + 31) & ~(uint64_t) 31);

	image = calloc(1, hdr.total_len);
	if (!image)
		fail("%s", "out of memory");
	offsets = (uint32_t *) (image + hdr.offsets_off);
	table = (BpeSlot *) (image + hdr.table_off);
	for (r = 0; r < nslots; r++)
		table[r].rank_len = BPE_SLOT_EMPTY;

	/* token bytes in rank order; absent ranks are empty */
	{
		uint8_t    *bytes = image + hdr.bytes_off;
		uint32_t	fill = 0;

		for (r = 0; r < n_ranks; r++)
		{
			offsets[r] = fill;
			if (tok_off[r] != UINT32_MAX)
			{
				memcpy(bytes + fill, tokbytes + tok_off[r], tok_len[r]);
				fill += tok_len[r];
			}
		}
		offsets[n_ranks] = fill;
		hdr.bytes_len = fill;
	}

	for (r = 0; r < n_ranks; r++)
	{
		const uint8_t *tok = image + hdr.bytes_off + offsets[r];
		uint32_t	len = offsets[r + 1] - offsets[r];
		uint64_t	h;
		uint64_t	key[2];
		uint32_t	i;

		if (tok_off[r] == UINT32_MAX)
			continue;
		BpeKey(tok, len, key);
		h = BpeHash(tok, len, key);
		i = (uint32_t) h & (uint32_t) (nslots - 1);
		while (table[i].rank_len != BPE_SLOT_EMPTY)
		{
			uint32_t	other = BPE_SLOT_RANK(table[i].rank_len);

			if (offsets[other + 1] - offsets[other] == len &&
				memcmp(image + hdr.bytes_off + offsets[other], tok, len) == 0)
				fail("%s: duplicate token", argv[1]);
			i = (i + 1) & (uint32_t) (nslots - 1);
		}
		memcpy(table[i].bytes, key, BPE_SLOT_BYTES);
		table[i].rank_len = r | (len << 24);
	}

	sha_init(&sha);
	sha_update(&sha, src, srclen);
	sha_final(&sha, hdr.source_sha256);
	hdr.payload_checksum = BpeChecksum(image + sizeof(hdr), hdr.total_len - sizeof(hdr));
	memcpy(image, &hdr, sizeof(hdr));

	/* check the result with the server's own validation */
	{
		BpeVocab	v;
		const char *err = BpeVocabOpen(image, hdr.total_len, &v);

		if (err)
			fail("compiled image is invalid: %s", err);
	}

	out = fopen(argv[2], "wb");
	if (!out || fwrite(image, 1, hdr.total_len, out) != hdr.total_len || fclose(out) != 0)
		fail("could not write \"%s\"", argv[2]);
	return 0;
}
