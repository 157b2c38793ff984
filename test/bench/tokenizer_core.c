/*-------------------------------------------------------------------------
 *
 * tokenizer_core.c
 *	  Stand-alone driver of the BPE core for benchmarks and differential
 *	  tests (no PostgreSQL).
 *
 *	tokenizer_core compare VOCAB.bpe ENCODING RECORDS
 *		RECORDS holds (u32 length, text bytes, u32 count, u32 ids[count])
 *		records, little-endian, as test/bench/tokenizer_diff.js writes them
 *		with tiktoken's ids; prints every disagreement (at most 10 in full)
 *		and exits 1 if there was one.
 *	tokenizer_core speed VOCAB.bpe ENCODING TEXTFILE [PASSES]
 *		MB/s of count and encode over the whole file and over pieces of at
 *		most 1 KiB (cut at character boundaries), best of PASSES; then the
 *		time of 1 MiB of one repeated character against 1 MiB of the file.
 *
 * IDENTIFICATION
 *	  test/bench/tokenizer_core.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpe.h"

static void *
xalloc(void *ctx, size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (!p)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static void
xfree(void *ctx, void *p)
{
	free(p);
}

static uint8_t *
slurp(const char *path, size_t *n)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *b;
	long		len;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	b = xalloc(NULL, (size_t) len + 1);
	if (fread(b, 1, (size_t) len, f) != (size_t) len)
		exit(2);
	fclose(f);
	*n = (size_t) len;
	return b;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static BpePattern
pattern_of(const char *enc)
{
	if (strcmp(enc, "cl100k_base") == 0)
		return BPE_PATTERN_CL100K;
	if (strcmp(enc, "o200k_base") == 0)
		return BPE_PATTERN_O200K;
	if (strcmp(enc, "p50k_base") == 0 || strcmp(enc, "r50k_base") == 0)
		return BPE_PATTERN_R50K;
	fprintf(stderr, "unrecognized encoding %s\n", enc);
	exit(2);
}

static int
compare(const BpeVocab *v, BpePattern pat, const char *path)
{
	size_t		len;
	uint8_t    *d = slurp(path, &len);
	size_t		pos = 0;
	long		records = 0;
	long		bad = 0;
	long		tokens = 0;
	BpeWork		work = {xalloc, xfree, NULL, NULL, NULL};

	while (pos + 4 <= len)
	{
		uint32_t	tl;
		uint32_t	ni;
		const uint8_t *t;
		uint32_t   *ref;
		uint32_t   *out;
		size_t		n;

		memcpy(&tl, d + pos, 4);
		t = d + pos + 4;
		memcpy(&ni, d + pos + 4 + tl, 4);
		ref = xalloc(NULL, (ni + 1) * 4);
		memcpy(ref, d + pos + 8 + tl, (size_t) ni * 4);
		pos += 8 + tl + (size_t) ni * 4;
		records++;
		tokens += ni;

		out = xalloc(NULL, ((size_t) tl + 1) * 4);
		n = BpeEncode(v, pat, t, tl, out, &work);
		if (n != ni || memcmp(out, ref, n * 4) != 0)
		{
			if (bad < 10)
			{
				size_t		k = 0;
				size_t		q;

				while (k < n && k < ni && out[k] == ref[k])
					k++;
				printf("record %ld: differs at token %zu (ours %zu tokens, tiktoken %u)\n  text (hex):",
					   records, k, n, ni);
				for (q = 0; q < tl && q < 200; q++)
					printf(" %02x", t[q]);
				printf("\n");
			}
			bad++;
		}
		free(out);
		free(ref);
	}
	printf("%ld records, %ld tokens, %ld disagreements\n", records, tokens, bad);
	return bad ? 1 : 0;
}

static double
best_time(const BpeVocab *v, BpePattern pat, const uint8_t *t, size_t len,
		  uint32_t *out, int pieces, int passes, size_t *ntok)
{
	double		best = 1e30;
	int			p;
	BpeWork		work = {xalloc, xfree, NULL, NULL, NULL};

	for (p = 0; p < passes; p++)
	{
		double		t0 = now();
		size_t		n = 0;

		if (!pieces)
			n = BpeEncode(v, pat, t, len, out, &work);
		else
		{
			size_t		i = 0;

			while (i < len)
			{
				size_t		e = i + 1024 < len ? i + 1024 : len;

				while (e < len && (t[e] & 0xC0) == 0x80)
					e--;
				n += BpeEncode(v, pat, t + i, e - i, out, &work);
				i = e;
			}
		}
		t0 = now() - t0;
		if (t0 < best)
			best = t0;
		*ntok = n;
	}
	return best;
}

static int
speed(const BpeVocab *v, BpePattern pat, const char *path, int passes)
{
	size_t		len;
	uint8_t    *t = slurp(path, &len);
	uint32_t   *out = xalloc(NULL, (len + 1) * 4);
	size_t		n;
	double		s;
	uint8_t    *run;
	size_t		mib = 1 << 20;
	double		srun;
	double		sprose;

	s = best_time(v, pat, t, len, NULL, 0, passes, &n);
	printf("count  whole   %8zu tokens  %6.1f MB/s\n", n, len / 1e6 / s);
	s = best_time(v, pat, t, len, NULL, 1, passes, &n);
	printf("count  1KiB    %8zu tokens  %6.1f MB/s\n", n, len / 1e6 / s);
	s = best_time(v, pat, t, len, out, 0, passes, &n);
	printf("encode whole   %8zu tokens  %6.1f MB/s\n", n, len / 1e6 / s);
	s = best_time(v, pat, t, len, out, 1, passes, &n);
	printf("encode 1KiB    %8zu tokens  %6.1f MB/s\n", n, len / 1e6 / s);

	if (len >= mib)
	{
		const char *chars[] = {"a", " ", "1", "\n", "!", "\xe4\xb8\x80", "\xf0\x9f\x98\x80"};
		int			c;

		sprose = best_time(v, pat, t, mib, NULL, 0, passes, &n);
		run = xalloc(NULL, mib);
		for (c = 0; c < 7; c++)
		{
			size_t		cl = strlen(chars[c]);
			size_t		i;

			for (i = 0; i + cl <= mib; i += cl)
				memcpy(run + i, chars[c], cl);
			srun = best_time(v, pat, run, i, NULL, 0, passes, &n);
			printf("1 MiB of U+%04X: %.3f s = %.1f x 1 MiB of the file (%.3f s)\n",
				   c == 5 ? 0x4E00 : c == 6 ? 0x1F600 : (unsigned) chars[c][0],
				   srun, srun / sprose, sprose);
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	size_t		len;
	uint8_t    *image;
	BpeVocab	v;
	const char *err;

	if (argc < 5)
	{
		fprintf(stderr, "usage: tokenizer_core compare|speed VOCAB.bpe ENCODING FILE [PASSES]\n");
		return 2;
	}
	image = slurp(argv[2], &len);
	if ((err = BpeVocabOpen(image, len, &v)) != NULL)
	{
		fprintf(stderr, "%s: %s\n", argv[2], err);
		return 2;
	}
	if (strcmp(argv[1], "compare") == 0)
		return compare(&v, pattern_of(argv[3]), argv[4]);
	return speed(&v, pattern_of(argv[3]), argv[4], argc > 5 ? atoi(argv[5]) : 3);
}
