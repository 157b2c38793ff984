/*-------------------------------------------------------------------------
 *
 * tokenizerchunk.c
 *	  chunk(): split a text into pieces of at most max_tokens tokens.
 *
 * Guarantees (tested in sql/tokenizer_chunk.sql and test/t/041):
 *	- each chunk's own token_count is at most max_tokens;
 *	- chunk k+1 starts with the last overlap_tokens tokens of chunk k (as
 *	  chunk k tokenizes on its own; moved back to a character boundary if a
 *	  token boundary falls inside a character);
 *	- cuts prefer, within the second half of the window a chunk may fill,
 *	  a paragraph end (after a blank line), then a sentence end (after . ! ?
 *	  or their CJK forms, before the following space), then a word boundary
 *	  (before white space), and else fall back to the last token boundary of
 *	  the whole text's tokenization that is also a character boundary;
 *	- the chunks without their overlap concatenate to the input exactly
 *	  (the offsets say where each chunk's new part starts).
 *
 * The whole text is tokenized once; its token boundaries give each chunk's
 * candidate end cheaply.  Tokenization depends a little on context (the
 * split patterns look ahead), so every chunk is then encoded on its own to
 * check it fits, stepping back when it does not.
 *
 * IDENTIFICATION
 *	  src/tokenizer/tokenizerchunk.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "tokenizer.h"
#include "tokenizerint.h"

typedef struct ChunkState
{
	const TokenizerEncoding *enc;
	const uint8 *s;				/* UTF-8 text */
	size_t		n;
	size_t	   *ends;			/* whole-text token ends: ends[k], k = 0..ntok */
	size_t		ntok;
} ChunkState;

#define IS_CONT(b)		(((b) & 0xC0) == 0x80)
#define IS_SPACE(b)		((b) == ' ' || (b) == '\t' || (b) == '\n' || (b) == '\r')

static bool
char_boundary(const ChunkState *cs, size_t p)
{
	return p == 0 || p >= cs->n || !IS_CONT(cs->s[p]);
}

/* after a blank line: "\n\n" or "\n\r\n", not followed by more newlines */
static bool
paragraph_end(const ChunkState *cs, size_t p)
{
	const uint8 *s = cs->s;

	if (p < 2 || p >= cs->n || s[p] == '\n' || s[p] == '\r' || s[p - 1] != '\n')
		return false;
	return s[p - 2] == '\n' || (p >= 3 && s[p - 2] == '\r' && s[p - 3] == '\n');
}

/* after . ! ? (before white space) or after U+3002, U+FF01, U+FF1F */
static bool
sentence_end(const ChunkState *cs, size_t p)
{
	const uint8 *s = cs->s;

	if (p < 1 || p >= cs->n)
		return false;
	if ((s[p - 1] == '.' || s[p - 1] == '!' || s[p - 1] == '?') && IS_SPACE(s[p]))
		return true;
	if (p >= 3 && ((s[p - 3] == 0xE3 && s[p - 2] == 0x80 && s[p - 1] == 0x82) ||
				   (s[p - 3] == 0xEF && s[p - 2] == 0xBC &&
					(s[p - 1] == 0x81 || s[p - 1] == 0x9F))))
		return true;
	return false;
}

/* before white space that follows something else */
static bool
word_end(const ChunkState *cs, size_t p)
{
	return p >= 1 && p < cs->n && IS_SPACE(cs->s[p]) && !IS_SPACE(cs->s[p - 1]);
}

/*
 * The preferred cut in (lo, hi]: structural boundaries only at or after mid,
 * then the last whole-text token boundary that is a character boundary,
 * then the last character boundary.  Returns lo if there is none.
 */
static size_t
best_cut(const ChunkState *cs, size_t lo, size_t hi, size_t mid, size_t tokhint)
{
	bool		(*levels[3]) (const ChunkState *, size_t) = {paragraph_end, sentence_end, word_end};
	int			l;
	size_t		p;
	size_t		k;

	if (hi >= cs->n && hi > lo)
		return cs->n;
	if (mid <= lo)
		mid = lo + 1;
	for (l = 0; l < 3; l++)
		for (p = hi; p >= mid; p--)
			if (levels[l] (cs, p))
				return p;
	/* token boundaries: tokhint indexes a boundary at or after hi */
	for (k = Min(tokhint, cs->ntok); k > 0 && cs->ends[k] > lo; k--)
		if (cs->ends[k] <= hi && char_boundary(cs, cs->ends[k]))
			return cs->ends[k];
	for (p = hi; p > lo; p--)
		if (char_boundary(cs, p))
			return p;
	return lo;
}

/* index of the first whole-text token boundary >= p */
static size_t
boundary_at_or_after(const ChunkState *cs, size_t p)
{
	size_t		lo = 0;
	size_t		hi = cs->ntok;

	while (lo < hi)
	{
		size_t		m = (lo + hi) / 2;

		if (cs->ends[m] < p)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static int64
count_range(const ChunkState *cs, size_t a, size_t b)
{
	return TokenizerCountUtf8(cs->enc, (const char *) cs->s + a, b - a);
}

/*
 * End of the chunk whose content starts at o and whose new part starts at
 * s (o <= s < n): the best cut e > s with count(o, e) <= max_tokens.
 * Returns s if not even one more character fits.
 */
static size_t
chunk_end(const ChunkState *cs, size_t o, size_t s, int max_tokens)
{
	int64		ov = (o < s) ? count_range(cs, o, s) : 0;
	size_t		js = boundary_at_or_after(cs, s);
	int64		room = max_tokens - ov;
	size_t		target;

	if (room < 1)
		room = 1;
	target = Min(cs->ntok, js + (size_t) room);
	for (;;)
	{
		size_t		hi = cs->ends[target];
		size_t		mid = cs->ends[js + (target - js) / 2];
		size_t		e;
		int64		own;

		CHECK_FOR_INTERRUPTS();
		if (hi <= s)
			break;
		e = best_cut(cs, s, hi, mid, target);
		if (e <= s)
			break;
		own = count_range(cs, o, e);
		if (own <= max_tokens)
			return e;
		/* too long by (own - max) tokens: aim that much lower */
		target -= Min(target - js, (size_t) (own - max_tokens));
		if (target == js && cs->ends[js] <= s)
			break;
		if (target == js)
		{
			/* only part of one whole-text token is left: go by characters */
			size_t		best = s;
			size_t		p;

			for (p = s + 1; p <= cs->ends[js] && p <= cs->n; p++)
			{
				if (!char_boundary(cs, p))
					continue;
				if (count_range(cs, o, p) > max_tokens)
					break;
				best = p;
			}
			return best;
		}
	}
	return s;
}

/* start of the last `overlap` tokens of s[o..e) on its own, at a char boundary */
static size_t
overlap_start(const ChunkState *cs, size_t o, size_t e, int overlap)
{
	size_t		ntok;
	uint32	   *toks;
	size_t		p = e;
	size_t		k;

	if (overlap <= 0)
		return e;
	toks = TokenizerEncodeUtf8(cs->enc, (const char *) cs->s + o, e - o, &ntok);
	if ((size_t) overlap >= ntok)
		p = o;
	else
		for (k = ntok; k > ntok - (size_t) overlap; k--)
			p -= TokenizerTokenLength(cs->enc, toks[k - 1]);
	while (!char_boundary(cs, p))
		p--;
	pfree(toks);
	return p;
}

static size_t
count_chars(const uint8 *s, size_t a, size_t b)
{
	size_t		c = 0;

	for (; a < b; a++)
		if (!IS_CONT(s[a]))
			c++;
	return c;
}

PG_FUNCTION_INFO_V1(chunk);
Datum
chunk(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *t = PG_GETARG_TEXT_PP(0);
	int32		max_tokens = PG_GETARG_INT32(1);
	int32		overlap = PG_GETARG_INT32(2);
	ChunkState	cs;
	size_t		len;
	uint32	   *toks;
	size_t		k;
	size_t		o = 0;
	size_t		s = 0;
	size_t		ochar = 0;
	size_t		echar = 0;
	int64		oserver = 0;
	int64		eserver = 0;
	int32		seq = 0;
	bool		utf8db = (GetDatabaseEncoding() == PG_UTF8);

	cs.enc = TokenizerGetEncoding(text_to_cstring(PG_GETARG_TEXT_PP(3)));
	if (max_tokens < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_tokens must be at least 1")));
	if (overlap < 0 || overlap >= max_tokens)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("overlap_tokens must be at least 0 and less than max_tokens")));

	InitMaterializedSRF(fcinfo, 0);

	cs.s = (const uint8 *) TokenizerTextToUtf8(t, &len);
	cs.n = len;
	toks = TokenizerEncodeUtf8(cs.enc, (const char *) cs.s, len, &cs.ntok);
	cs.ends = MemoryContextAllocHuge(CurrentMemoryContext, (cs.ntok + 1) * sizeof(size_t));
	cs.ends[0] = 0;
	for (k = 0; k < cs.ntok; k++)
		cs.ends[k + 1] = cs.ends[k] + TokenizerTokenLength(cs.enc, toks[k]);
	pfree(toks);

	while (s < cs.n)
	{
		size_t		e = chunk_end(&cs, o, s, max_tokens);
		Datum		values[7];
		bool		nulls[7] = {false};
		text	   *content;
		size_t		o_next;

		if (e <= s && o < s)
		{
			/* the overlap leaves no room: drop it for this chunk */
			o = s;
			ochar = echar;
			oserver = eserver;
			e = chunk_end(&cs, o, s, max_tokens);
		}
		if (e <= s)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg_plural("cannot split text into chunks of at most %d token",
								 "cannot split text into chunks of at most %d tokens",
								 max_tokens, max_tokens),
					 errdetail("The character at byte %zu needs more tokens than that on its own.", s)));

		content = TokenizerUtf8ToText((const char *) cs.s + o, e - o);
		echar += count_chars(cs.s, s, e);
		if (utf8db)
			eserver = (int64) e;
		else
			eserver = oserver + VARSIZE_ANY_EXHDR(content);

		values[0] = Int32GetDatum(++seq);
		values[1] = PointerGetDatum(content);
		values[2] = Int32GetDatum((int32) count_range(&cs, o, e));
		values[3] = Int32GetDatum((int32) oserver);
		values[4] = Int32GetDatum((int32) eserver);
		values[5] = Int32GetDatum((int32) ochar);
		values[6] = Int32GetDatum((int32) echar);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(content);			/* the tuplestore has its own copy */

		/* next chunk: the overlap, then new text from e */
		o_next = (e < cs.n) ? overlap_start(&cs, o, e, overlap) : e;
		ochar = echar - count_chars(cs.s, o_next, e);
		if (utf8db)
			oserver = (int64) o_next;
		else if (o_next == e)
			oserver = eserver;
		else
		{
			text	   *ov = TokenizerUtf8ToText((const char *) cs.s + o_next, e - o_next);

			oserver = eserver - VARSIZE_ANY_EXHDR(ov);
		}
		o = o_next;
		s = e;
	}
	return (Datum) 0;
}
