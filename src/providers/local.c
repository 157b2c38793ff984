/*-------------------------------------------------------------------------
 *
 * local.c
 *	  The built-in "local" provider: a stand-in for real models.
 *
 * It computes in-process, offline and deterministically:
 *
 *	- embeddings by feature hashing.  The text is cut into words (runs of
 *	  ASCII letters and digits, or of non-ASCII bytes), lower-cased, with a
 *	  light English plural/suffix strip; each word, each pair of adjacent
 *	  content words and each character trigram of a word becomes a feature,
 *	  hashed (FNV-1a, 64 bits) to a dimension and a sign.  Very common
 *	  English words weigh little.  The sum is L2-normalized.  Texts sharing
 *	  words or word pieces come out close in cosine distance; meaning that
 *	  is not in the words (synonyms, paraphrase) is not captured.
 *
 *	- completions by extraction.  The prompt's context passages (lines that
 *	  start with a citation marker such as "[1]") are split into sentences,
 *	  each scored by the cosine similarity of its embedding with the
 *	  question's; the best few are returned with their markers.  It never
 *	  writes anything that is not in the context.
 *
 * The results are the same on every platform and server encoding (text is
 * hashed as UTF-8), so tests and demos can rely on them.  They are not a
 * language model's and are not meant to be; see README.
 *
 * IDENTIFICATION
 *	  src/providers/local.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "providers.h"
#include "tokenizer/tokenizer.h"

/* weights of the feature families */
#define W_WORD		1.0f
#define W_STOPWORD	0.1f
#define W_BIGRAM	0.5f
#define W_TRIGRAM	0.25f

/* dimension used to compare sentences in the extractive completion */
#define LOCAL_SCORE_DIM 1024
/* at most this many sentences in an answer */
#define LOCAL_MAX_SENTENCES 3

#define MAX_WORD 64

static const char *const stopwords[] = {
	"a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be",
	"been", "but", "by", "can", "could", "did", "do", "doe", "for", "from",
	"get", "had", "has", "have", "he", "her", "him", "his", "how", "i", "if",
	"in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on",
	"or", "our", "she", "so", "than", "that", "the", "their", "them",
	"then", "there", "these", "they", "this", "those", "to", "us", "up",
	"was", "we", "were", "what", "when", "where", "which", "who", "why",
	"will", "with", "would", "you", "your", NULL
};

static uint64
Fnv1a(uint64 h, const char *s, int len)
{
	for (int i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64CONST(0x100000001b3);
	}
	return h;
}

static void
AddFeature(float *out, int dim, char family, const char *s, int len, float w)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);

	h = Fnv1a(h, &family, 1);
	h = Fnv1a(h, s, len);
	/* final mix so that nearby hashes spread over dimensions and signs */
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	out[(h & 0xffffffff) % (uint64) dim] += (h >> 63) ? -w : w;
}

static bool
IsStopword(const char *w, int len)
{
	for (int i = 0; stopwords[i]; i++)
		if ((int) strlen(stopwords[i]) == len && memcmp(stopwords[i], w, len) == 0)
			return true;
	return false;
}

/* strips a possessive and common English suffixes, in place */
static int
Stem(char *w, int len)
{
	if (len > 2 && w[len - 2] == '\'' && w[len - 1] == 's')
		len -= 2;
	if (len > 5 && memcmp(w + len - 3, "ing", 3) == 0)
		len -= 3;
	else if (len > 4 && memcmp(w + len - 3, "ies", 3) == 0)
	{
		len -= 2;
		w[len - 1] = 'y';
	}
	else if (len > 4 && memcmp(w + len - 2, "ed", 2) == 0)
		len -= 2;
	else if (len > 3 && w[len - 1] == 's' && w[len - 2] != 's' && w[len - 2] != 'u')
		len -= 1;
	return len;
}

static inline bool
IsWordByte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c >= 0x80;
}

/*
 * Adds the features of a UTF-8 text to out[dim] (not normalized).
 * Returns the number of words seen.
 */
static int
AddTextFeatures(const char *text, int len, float *out, int dim)
{
	char		prev[MAX_WORD];
	int			prevlen = 0;
	int			nwords = 0;
	int			i = 0;

	while (i < len)
	{
		char		word[MAX_WORD + 2];
		int			wlen = 0;
		bool		stop;

		if (!IsWordByte((unsigned char) text[i]))
		{
			i++;
			continue;
		}
		word[wlen++] = '^';
		while (i < len && (IsWordByte((unsigned char) text[i]) ||
						   (text[i] == '\'' && i + 1 < len && text[i + 1] == 's')))
		{
			if (wlen <= MAX_WORD)
				word[wlen++] = pg_ascii_tolower((unsigned char) text[i]);
			i++;
		}
		wlen = 1 + Stem(word + 1, wlen - 1);
		if (wlen < 2)
			continue;
		nwords++;
		stop = IsStopword(word + 1, wlen - 1);
		AddFeature(out, dim, 'w', word + 1, wlen - 1, stop ? W_STOPWORD : W_WORD);
		if (stop)
		{
			prevlen = 0;
			continue;
		}
		/* character trigrams of "^word$" */
		word[wlen++] = '$';
		for (int t = 0; t + 3 <= wlen; t++)
			AddFeature(out, dim, 't', word + t, 3, W_TRIGRAM);
		wlen--;
		/* adjacent content words */
		if (prevlen > 0)
		{
			char		pair[2 * MAX_WORD + 2];

			memcpy(pair, prev, prevlen);
			pair[prevlen] = ' ';
			memcpy(pair + prevlen + 1, word + 1, wlen - 1);
			AddFeature(out, dim, 'b', pair, prevlen + wlen, W_BIGRAM);
		}
		memcpy(prev, word + 1, wlen - 1);
		prevlen = wlen - 1;
	}
	return nwords;
}

static void
Normalize(float *v, int dim)
{
	double		norm = 0;

	for (int i = 0; i < dim; i++)
		norm += (double) v[i] * v[i];
	if (norm > 0)
	{
		norm = sqrt(norm);
		for (int i = 0; i < dim; i++)
			v[i] = (float) (v[i] / norm);
	}
}

/*
 * Embeds a text (UTF-8) into out[dim], L2-normalized.  A text without any
 * word gets the zero vector's stand-in: the normalized feature of the
 * empty word, so that its norm is 1 like every other output.
 */
void
LocalEmbed(const char *text, int len, float *out, int dim)
{
	memset(out, 0, sizeof(float) * dim);
	if (AddTextFeatures(text, len, out, dim) == 0)
		AddFeature(out, dim, 'e', "", 0, 1.0f);
	Normalize(out, dim);
}

/*
 * Tokens of a text in the server encoding, counted with cl100k_base: the
 * ledger's count when a provider does not report usage.
 */
int64
GenaiCountTokens(const char *text, int len)
{
	char	   *u = pg_server_to_any(text, len, PG_UTF8);
	int64		n;

	n = TokenizerCountUtf8(TokenizerGetEncoding("cl100k_base"), u,
						   (u == text) ? (size_t) len : strlen(u));
	if (u != text)
		pfree(u);
	return n;
}

/* ---- extractive completion ---- */

typedef struct Sentence
{
	const char *start;
	int			len;
	int			marker;			/* citation number, 0: none */
	double		score;
} Sentence;

static double
Dot(const float *a, const float *b, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) a[i] * b[i];
	return s;
}

/* If p starts a line with "[n]" (after blanks or "- "), returns n, else 0. */
static int
LineMarker(const char *p, const char **after)
{
	int			n = 0;

	while (*p == ' ' || *p == '\t' || *p == '-' || *p == '*')
		p++;
	if (*p != '[' || !isdigit((unsigned char) p[1]))
		return 0;
	p++;
	while (isdigit((unsigned char) *p) && n < 100000)
		n = n * 10 + (*p++ - '0');
	if (*p != ']')
		return 0;
	*after = p + 1;
	return n;
}

/* Splits [start, end) into sentences and appends them to *sents. */
static void
SplitSentences(const char *start, const char *end, int marker,
			   Sentence **sents, int *nsents, int *cap)
{
	const char *p = start;

	while (p < end)
	{
		const char *s;
		const char *q;
		bool		hasword = false;

		while (p < end && isspace((unsigned char) *p))
			p++;
		s = p;
		while (p < end)
		{
			char		c = *p++;

			if (c == '\n')
				break;
			if ((c == '.' || c == '!' || c == '?') &&
				(p == end || isspace((unsigned char) *p)))
				break;
		}
		q = p;
		while (q > s && isspace((unsigned char) q[-1]))
			q--;
		for (const char *t = s; t < q; t++)
			if (IsWordByte((unsigned char) *t))
			{
				hasword = true;
				break;
			}
		if (!hasword)
			continue;
		if (*nsents == *cap)
		{
			*cap *= 2;
			*sents = repalloc(*sents, sizeof(Sentence) * *cap);
		}
		(*sents)[*nsents].start = s;
		(*sents)[*nsents].len = (int) (q - s);
		(*sents)[*nsents].marker = marker;
		(*sents)[*nsents].score = 0;
		(*nsents)++;
	}
}

static int
CompareScore(const void *a, const void *b)
{
	const Sentence *x = (const Sentence *) a;
	const Sentence *y = (const Sentence *) b;

	if (x->score != y->score)
		return (x->score < y->score) ? 1 : -1;
	/* ties: earlier text first, for determinism */
	return (x->start < y->start) ? -1 : (x->start > y->start);
}

/*
 * Answers question from context (both NUL-terminated, any encoding that
 * is ASCII-compatible).  Context passages start on lines beginning with a
 * marker "[n]"; a passage runs to the next marker line.  Without markers
 * the whole context is one uncited passage.  max_tokens (0: no limit)
 * cuts the answer after that many words.
 */
char *
LocalComplete(const char *context, const char *question, int max_tokens)
{
	Sentence   *sents;
	int			nsents = 0;
	int			cap = 16;
	int			nmarked = 0;
	float	   *qv;
	float	   *sv;
	const char *line;
	const char *pstart = NULL;
	int			pmarker = 0;
	StringInfoData answer;
	double		best;
	int			taken = 0;

	sents = palloc(sizeof(Sentence) * cap);

	/* collect passages that begin with a marker line */
	for (line = context; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
	{
		const char *after;
		int			m = LineMarker(line, &after);

		CHECK_FOR_INTERRUPTS();
		if (m > 0)
		{
			if (pstart)
				SplitSentences(pstart, line, pmarker, &sents, &nsents, &cap);
			pstart = after;
			pmarker = m;
			nmarked++;
		}
		else if (pstart && pg_strncasecmp(line, "question:", 9) == 0)
		{
			SplitSentences(pstart, line, pmarker, &sents, &nsents, &cap);
			pstart = NULL;
		}
	}
	if (pstart)
		SplitSentences(pstart, pstart + strlen(pstart), pmarker, &sents, &nsents, &cap);
	if (nmarked == 0)
		SplitSentences(context, context + strlen(context), 0, &sents, &nsents, &cap);

	/* score every sentence against the question */
	qv = palloc(sizeof(float) * LOCAL_SCORE_DIM);
	sv = palloc(sizeof(float) * LOCAL_SCORE_DIM);
	LocalEmbed(question, strlen(question), qv, LOCAL_SCORE_DIM);
	for (int i = 0; i < nsents; i++)
	{
		CHECK_FOR_INTERRUPTS();
		/* the question itself, when it is part of the context, is no answer */
		if (sents[i].len == (int) strlen(question) &&
			memcmp(sents[i].start, question, sents[i].len) == 0)
			continue;
		memset(sv, 0, sizeof(float) * LOCAL_SCORE_DIM);
		if (AddTextFeatures(sents[i].start, sents[i].len, sv, LOCAL_SCORE_DIM) == 0)
			continue;
		Normalize(sv, LOCAL_SCORE_DIM);
		sents[i].score = Dot(qv, sv, LOCAL_SCORE_DIM);
	}
	qsort(sents, nsents, sizeof(Sentence), CompareScore);

	initStringInfo(&answer);
	best = nsents > 0 ? sents[0].score : 0;
	for (int i = 0; i < nsents && taken < LOCAL_MAX_SENTENCES; i++)
	{
		if (sents[i].score < 0.1 || sents[i].score < 0.5 * best)
			break;
		if (taken > 0)
			appendStringInfoChar(&answer, ' ');
		appendBinaryStringInfo(&answer, sents[i].start, sents[i].len);
		if (sents[i].marker > 0)
			appendStringInfo(&answer, " [%d]", sents[i].marker);
		taken++;
	}
	if (taken == 0)
		appendStringInfoString(&answer, "The context does not contain an answer to the question.");

	/* max_tokens: keep that many words */
	if (max_tokens > 0)
	{
		int			words = 0;
		bool		inword = false;

		for (int i = 0; i < answer.len; i++)
		{
			bool		ws = isspace((unsigned char) answer.data[i]);

			if (!ws && !inword && ++words > max_tokens)
			{
				while (i > 0 && isspace((unsigned char) answer.data[i - 1]))
					i--;
				answer.data[i] = '\0';
				answer.len = i;
				break;
			}
			inword = !ws;
		}
	}
	pfree(qv);
	pfree(sv);
	pfree(sents);
	return answer.data;
}
