/*-------------------------------------------------------------------------
 *
 * fuzz_tokenizer.c
 *	  libFuzzer driver for the BPE core (src/tokenizer/bpe*.c).
 *
 * The first input byte picks the encoding (cl100k, o200k, p50k, r50k), the
 * rest is the text: any bytes, valid UTF-8 or not.  Besides "no crash, no
 * sanitizer report" it checks properties:
 *   - every piece of the pre-tokenizer is non-empty and inside the text,
 *     and for valid UTF-8 ends on a character boundary;
 *   - counting (no output) gives the same number as encoding;
 *   - there are at most as many tokens as bytes, every id is in range;
 *   - the tokens' bytes concatenate back to the text exactly;
 *   - encoding piece by piece gives the same ids as the whole.
 * Vocabularies are the compiled images the build makes from data/
 * (VOCAB_DIR is set by the Makefile).
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_tokenizer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>

#include "bpe.h"
#include "fuzz_common.h"

static const char *const names[4] = {
	"cl100k_base", "o200k_base", "p50k_base", "r50k_base"
};
static const BpePattern patterns[4] = {
	BPE_PATTERN_CL100K, BPE_PATTERN_O200K, BPE_PATTERN_R50K, BPE_PATTERN_R50K
};
static BpeVocab vocabs[4];

static void *
fuzz_alloc(void *ctx, size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

static void
fuzz_free(void *ctx, void *ptr)
{
	free(ptr);
}

static void
load(int i)
{
	char		path[1024];
	FILE	   *f;
	long		len;
	void	   *image;
	const char *err;

	snprintf(path, sizeof(path), "%s/genai_%s.bpe", VOCAB_DIR, names[i]);
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 ||
		fseek(f, 0, SEEK_SET) != 0)
	{
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	image = malloc((size_t) len);
	if (image == NULL || fread(image, 1, (size_t) len, f) != (size_t) len)
		exit(1);
	fclose(f);
	err = BpeVocabOpen(image, (size_t) len, &vocabs[i]);
	if (err)
	{
		fprintf(stderr, "%s: %s\n", path, err);
		exit(1);
	}
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (int i = 0; i < 4; i++)
		load(i);
	return 0;
}

/* is s[0..n) valid UTF-8 (per the decoder the core uses)? */
static int
valid_utf8(const uint8_t *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		uint32_t	cp;
		int			l = BpeUtf8Decode(s, n, i, &cp);

		if (cp == 0xFFFFFFFF)
			return 0;
		i += (size_t) l;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			which;
	const BpeVocab *v;
	BpePattern	pat;
	const uint8_t *text;
	size_t		len;
	uint32_t   *ids;
	uint32_t   *ids2;
	size_t		n;
	size_t		n2 = 0;
	size_t		pos = 0;
	size_t		i;
	int			utf8;
	BpeWork		work = {fuzz_alloc, fuzz_free, NULL, NULL, NULL};

	if (size < 1)
		return 0;
	which = data[0] & 3;
	v = &vocabs[which];
	pat = patterns[which];
	text = data + 1;
	len = size - 1;
	utf8 = valid_utf8(text, len);

	ids = fuzz_alloc(NULL, (len + 1) * sizeof(uint32_t));
	ids2 = fuzz_alloc(NULL, (len + 1) * sizeof(uint32_t));

	n = BpeEncode(v, pat, text, len, ids, &work);
	FUZZ_CHECK(n <= len);
	FUZZ_CHECK(BpeEncode(v, pat, text, len, NULL, &work) == n);

	/* ids in range, bytes concatenate back to the text */
	for (i = 0; i < n; i++)
	{
		uint32_t	off;
		uint32_t	l;

		FUZZ_CHECK(ids[i] < v->n_ranks);
		off = v->offsets[ids[i]];
		l = v->offsets[ids[i] + 1] - off;
		FUZZ_CHECK(l > 0 && pos + l <= len);
		FUZZ_CHECK(memcmp(v->bytes + off, text + pos, l) == 0);
		pos += l;
	}
	FUZZ_CHECK(pos == len);

	/* pieces advance, stay inside, end on character boundaries */
	for (pos = 0; pos < len;)
	{
		size_t		e = BpeNextPiece(pat, text, len, pos);

		FUZZ_CHECK(e > pos && e <= len);
		if (utf8)
			FUZZ_CHECK(e == len || (text[e] & 0xC0) != 0x80);
		n2 += BpeEncodePiece(v, text + pos, e - pos, ids2 + n2, &work);
		pos = e;
	}
	FUZZ_CHECK(n2 == n && memcmp(ids, ids2, n * sizeof(uint32_t)) == 0);

	free(ids);
	free(ids2);
	return 0;
}
