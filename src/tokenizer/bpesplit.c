/*-------------------------------------------------------------------------
 *
 * bpesplit.c
 *	  Hand-written pre-tokenizers equal to tiktoken's split regexes.
 *
 * tiktoken cuts text into pieces with a regex (leftmost-first alternation,
 * backtracking, Unicode 16.0 classes) and runs BPE on each piece.  Each
 * function below returns the end of the piece that the regex would match at
 * a given position; the alternatives are tried in the regex's order and the
 * backtracking is resolved by hand (see the comments at each step).  The
 * patterns are quoted in src/tokenizer/README.
 *
 * Input is UTF-8.  Bytes that do not form a valid sequence are taken one at
 * a time as a character of no class ("other"); the server only passes valid
 * UTF-8, the fuzz driver anything.
 *
 * IDENTIFICATION
 *	  src/tokenizer/bpesplit.c
 *
 *-------------------------------------------------------------------------
 */
#include "bpe.h"

/* class of each ASCII character (BPE_CAT_*) */
static uint8_t ascii_cat[128];
static int	ascii_ready = 0;

typedef struct Ch
{
	uint32_t	cp;
	int			cat;
	int			len;
} Ch;

#define IS_L(c)		((c).cat >= BPE_CAT_LU && (c).cat <= BPE_CAT_LO)
#define IS_N(c)		((c).cat == BPE_CAT_N)
#define IS_WS(c)	((c).cat == BPE_CAT_WS)
#define IS_CRLF(c)	((c).cp == '\r' || (c).cp == '\n')
/* [^\s\p{L}\p{N}] */
#define IS_OTHER(c) ((c).cat == BPE_CAT_OTHER || (c).cat == BPE_CAT_M)
/* [^\r\n\p{L}\p{N}] */
#define IS_PREFIX(c) (IS_OTHER(c) || (IS_WS(c) && !IS_CRLF(c)))
/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
#define IS_UPPERISH(c) ((c).cat == BPE_CAT_LU || (c).cat == BPE_CAT_LT || \
						(c).cat == BPE_CAT_LM || (c).cat == BPE_CAT_LO || \
						(c).cat == BPE_CAT_M)
#define IS_LOWERISH(c) ((c).cat == BPE_CAT_LL || (c).cat == BPE_CAT_LM || \
						(c).cat == BPE_CAT_LO || (c).cat == BPE_CAT_M)

static void
init_ascii(void)
{
	int			c;

	for (c = 0; c < 128; c++)
		ascii_cat[c] = (uint8_t) BpeCategory((uint32_t) c);
	ascii_ready = 1;
}

/*
 * Decode the character at s[i] (i < n).  Returns its length in bytes, 1 for
 * an invalid byte (then *cp is 0xFFFFFFFF, which has no class).
 */
int
BpeUtf8Decode(const uint8_t *s, size_t n, size_t i, uint32_t *cp)
{
	uint32_t	b0 = s[i];
	uint32_t	c;
	int			len;
	int			k;

	if (b0 < 0x80)
	{
		*cp = b0;
		return 1;
	}
	if (b0 >= 0xC2 && b0 <= 0xDF)
	{
		len = 2;
		c = b0 & 0x1F;
	}
	else if (b0 >= 0xE0 && b0 <= 0xEF)
	{
		len = 3;
		c = b0 & 0x0F;
	}
	else if (b0 >= 0xF0 && b0 <= 0xF4)
	{
		len = 4;
		c = b0 & 0x07;
	}
	else
		goto invalid;
	if (n - i < (size_t) len)
		goto invalid;
	for (k = 1; k < len; k++)
	{
		uint32_t	b = s[i + k];

		if ((b & 0xC0) != 0x80)
			goto invalid;
		c = (c << 6) | (b & 0x3F);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
		(len == 4 && (c < 0x10000 || c > 0x10FFFF)))
		goto invalid;
	*cp = c;
	return len;

invalid:
	*cp = 0xFFFFFFFF;
	return 1;
}

static inline Ch
ch_at(const uint8_t *s, size_t n, size_t i)
{
	Ch			c;

	if (s[i] < 0x80)
	{
		c.cp = s[i];
		c.cat = ascii_cat[s[i]];
		c.len = 1;
		return c;
	}
	c.len = BpeUtf8Decode(s, n, i, &c.cp);
	c.cat = BpeCategory(c.cp);
	return c;
}

/* end of the run of letters starting at i */
static size_t
run_letters(const uint8_t *s, size_t n, size_t i)
{
	while (i < n)
	{
		Ch			c = ch_at(s, n, i);

		if (!IS_L(c))
			break;
		i += c.len;
	}
	return i;
}

static size_t
run_numbers(const uint8_t *s, size_t n, size_t i, int max)
{
	while (i < n && max-- > 0)
	{
		Ch			c = ch_at(s, n, i);

		if (!IS_N(c))
			break;
		i += c.len;
	}
	return i;
}

static size_t
run_other(const uint8_t *s, size_t n, size_t i)
{
	while (i < n)
	{
		Ch			c = ch_at(s, n, i);

		if (!IS_OTHER(c))
			break;
		i += c.len;
	}
	return i;
}

/* [\r\n]* (slash = 0) or [\r\n/]* (slash = 1) */
static size_t
run_newlines(const uint8_t *s, size_t n, size_t i, int slash)
{
	while (i < n && (s[i] == '\r' || s[i] == '\n' || (slash && s[i] == '/')))
		i++;
	return i;
}

/*
 * The whitespace alternatives, at a white space character i:
 *
 *	\s*[\r\n]+		(crlf = 1)  the run up to and including its last CR or LF:
 *					\s* backtracks from the end of the run to the last CR/LF
 *	\s+(?!\S)		the whole run if it ends the text, else the run minus
 *					its last character, if that leaves anything
 *	\s+				otherwise the run is one character: take it
 */
static size_t
whitespace(const uint8_t *s, size_t n, size_t i, int crlf)
{
	size_t		j = i;
	size_t		last = i;
	size_t		after_newline = 0;

	while (j < n)
	{
		Ch			c = ch_at(s, n, j);

		if (!IS_WS(c))
			break;
		last = j;
		if (IS_CRLF(c))
			after_newline = j + 1;
		j += c.len;
	}
	if (crlf && after_newline)
		return after_newline;
	if (j == n)
		return n;
	if (last > i)
		return last;
	return j;
}

/* 's 't 're 've 'm 'll 'd, case-sensitive, at an apostrophe at i */
static size_t
contraction(const uint8_t *s, size_t n, size_t i)
{
	if (n - i >= 2)
	{
		uint8_t		a = s[i + 1];

		if (a == 's' || a == 't' || a == 'm' || a == 'd')
			return i + 2;
		if (n - i >= 3)
		{
			uint8_t		b = s[i + 2];

			if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
				(a == 'l' && b == 'l'))
				return i + 3;
		}
	}
	return 0;
}

/*
 * (?i:'s|'t|'re|'ve|'m|'ll|'d) at i; 0 if none.  Unicode simple case
 * folding adds only U+017F LATIN SMALL LETTER LONG S (folds to s).
 */
static size_t
contraction_ci(const uint8_t *s, size_t n, size_t i)
{
	uint8_t		a;

	if (i >= n || s[i] != '\'' || n - i < 2)
		return 0;
	a = s[i + 1] | 0x20;
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return i + 2;
	if (s[i + 1] == 0xC5 && n - i >= 3 && s[i + 2] == 0xBF)
		return i + 3;
	if (n - i >= 3)
	{
		uint8_t		b = s[i + 2] | 0x20;

		if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
			(a == 'l' && b == 'l'))
			return i + 3;
	}
	return 0;
}

/*
 * r50k_base / p50k_base:
 *	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 */
static size_t
piece_r50k(const uint8_t *s, size_t n, size_t i)
{
	Ch			c = ch_at(s, n, i);
	Ch			d = c;
	size_t		k = i;
	size_t		e;

	if (c.cp == '\'' && (e = contraction(s, n, i)) != 0)
		return e;
	/* the optional space: taken when a letter, number or other follows */
	if (c.cp == ' ' && i + 1 < n)
	{
		Ch			next = ch_at(s, n, i + 1);

		if (!IS_WS(next))
		{
			d = next;
			k = i + 1;
		}
	}
	if (IS_L(d))
		return run_letters(s, n, k);
	if (IS_N(d))
		return run_numbers(s, n, k, 0x7FFFFFFF);
	if (IS_OTHER(d))
		return run_other(s, n, k);
	return whitespace(s, n, i, 0);
}

/*
 * cl100k_base:
 *	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
static size_t
piece_cl100k(const uint8_t *s, size_t n, size_t i)
{
	Ch			c = ch_at(s, n, i);
	size_t		e;

	if (c.cp == '\'' && (e = contraction_ci(s, n, i)) != 0)
		return e;
	/* [^\r\n\p{L}\p{N}]?\p{L}+: the prefix cannot itself be a letter */
	if (IS_L(c))
		return run_letters(s, n, i + c.len);
	if (IS_PREFIX(c) && i + c.len < n)
	{
		Ch			next = ch_at(s, n, i + c.len);

		if (IS_L(next))
			return run_letters(s, n, i + c.len);
	}
	if (IS_N(c))
		return run_numbers(s, n, i, 3);
	/*  ?[^\s\p{L}\p{N}]+[\r\n]* */
	if (c.cp == ' ' && i + 1 < n)
	{
		Ch			next = ch_at(s, n, i + 1);

		if (IS_OTHER(next))
			return run_newlines(s, n, run_other(s, n, i + 1), 0);
	}
	if (IS_OTHER(c))
		return run_newlines(s, n, run_other(s, n, i), 0);
	return whitespace(s, n, i, 1);
}

/*
 * o200k_base, first two alternatives, from position p (after the optional
 * prefix, or at it):
 *
 *	U*W+C?	U* takes the longest run of U; if a W follows, W+ takes its run.
 *			Otherwise U* gives back characters until one is in W (Lm, Lo or
 *			M, which are in both classes): W+ ends right after it, since
 *			everything after it in the run is U only.  No such character:
 *			no match.
 *	U+W*C?	the longest U run (at least one), then the longest W run.
 *
 * C? is the optional case-insensitive contraction.  Returns 0 if no match.
 */
static size_t
o200k_upper_lower(const uint8_t *s, size_t n, size_t p)
{
	size_t		q = p;
	size_t		after_w = 0;
	size_t		r;
	size_t		e;

	while (q < n)
	{
		Ch			c = ch_at(s, n, q);

		if (!IS_UPPERISH(c))
			break;
		q += c.len;
		if (IS_LOWERISH(c))
			after_w = q;
	}
	if (q < n && IS_LOWERISH(ch_at(s, n, q)))
	{
		r = q;
		while (r < n)
		{
			Ch			c = ch_at(s, n, r);

			if (!IS_LOWERISH(c))
				break;
			r += c.len;
		}
	}
	else if (after_w)
		r = after_w;
	else
		return 0;
	e = contraction_ci(s, n, r);
	return e ? e : r;
}

static size_t
o200k_lower_after_upper(const uint8_t *s, size_t n, size_t p)
{
	size_t		q = p;
	size_t		e;

	while (q < n)
	{
		Ch			c = ch_at(s, n, q);

		if (!IS_UPPERISH(c))
			break;
		q += c.len;
	}
	if (q == p)
		return 0;
	while (q < n)
	{
		Ch			c = ch_at(s, n, q);

		if (!IS_LOWERISH(c))
			break;
		q += c.len;
	}
	e = contraction_ci(s, n, q);
	return e ? e : q;
}

/*
 * o200k_base (seven alternatives):
 *	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+C?
 *	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*C?
 *	\p{N}{1,3}
 *	 ?[^\s\p{L}\p{N}]+[\r\n/]*
 *	\s*[\r\n]+
 *	\s+(?!\S)
 *	\s+
 * For the first two the optional prefix is tried taken, then not taken
 * (only a mark can start a match in both ways, marks being in U and W).
 */
static size_t
piece_o200k(const uint8_t *s, size_t n, size_t i)
{
	Ch			c = ch_at(s, n, i);
	size_t		e;

	if (!IS_N(c) && !IS_CRLF(c))
	{
		int			prefix = IS_PREFIX(c);

		if (prefix && (e = o200k_upper_lower(s, n, i + c.len)) != 0)
			return e;
		if ((e = o200k_upper_lower(s, n, i)) != 0)
			return e;
		if (prefix && (e = o200k_lower_after_upper(s, n, i + c.len)) != 0)
			return e;
		if ((e = o200k_lower_after_upper(s, n, i)) != 0)
			return e;
	}
	if (IS_N(c))
		return run_numbers(s, n, i, 3);
	if (c.cp == ' ' && i + 1 < n)
	{
		Ch			next = ch_at(s, n, i + 1);

		if (IS_OTHER(next))
			return run_newlines(s, n, run_other(s, n, i + 1), 1);
	}
	if (IS_OTHER(c))
		return run_newlines(s, n, run_other(s, n, i), 1);
	return whitespace(s, n, i, 1);
}

/*
 * End of the piece that starts at s[i], i < n.  Always > i.
 */
size_t
BpeNextPiece(BpePattern pat, const uint8_t *s, size_t n, size_t i)
{
	if (!ascii_ready)
		init_ascii();
	switch (pat)
	{
		case BPE_PATTERN_R50K:
			return piece_r50k(s, n, i);
		case BPE_PATTERN_CL100K:
			return piece_cl100k(s, n, i);
		case BPE_PATTERN_O200K:
			return piece_o200k(s, n, i);
	}
	return n;
}
