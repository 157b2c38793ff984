/*-------------------------------------------------------------------------
 *
 * tokenizer.c
 *	  Encodings, model-name aliases, vocabulary loading and the SQL
 *	  functions tokenize, token_count, detokenize, detokenize_bytes and
 *	  truncate_tokens.
 *
 * The BPE work itself is in bpe.c and bpesplit.c (no PostgreSQL calls);
 * this file is the thin server-side layer: it resolves names, maps the
 * compiled vocabulary of an encoding the first time a backend uses it,
 * converts between the server encoding and UTF-8, and raises errors.
 *
 * IDENTIFICATION
 *	  src/tokenizer/tokenizer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "bpe.h"
#include "tokenizer.h"
#include "tokenizerint.h"

typedef struct TokenizerSpecial
{
	uint32		id;
	const char *text;
} TokenizerSpecial;

struct TokenizerEncoding
{
	const char *name;
	BpePattern	pattern;
	const char *sha256;			/* of the .tiktoken rank file, as published */
	const TokenizerSpecial *specials;
	int			nspecials;
	/* set once the vocabulary is mapped and checked */
	bool		loaded;
	BpeVocab	vocab;
};

static const TokenizerSpecial r50k_specials[] = {
	{50256, "<|endoftext|>"}
};
static const TokenizerSpecial cl100k_specials[] = {
	{100257, "<|endoftext|>"}, {100258, "<|fim_prefix|>"},
	{100259, "<|fim_middle|>"}, {100260, "<|fim_suffix|>"},
	{100276, "<|endofprompt|>"}
};
static const TokenizerSpecial o200k_specials[] = {
	{199999, "<|endoftext|>"}, {200018, "<|endofprompt|>"}
};

#define ENC_CL100K	0
#define ENC_O200K	1
#define ENC_P50K	2
#define ENC_R50K	3

static TokenizerEncoding encodings[] = {
	{"cl100k_base", BPE_PATTERN_CL100K,
		"223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
	cl100k_specials, lengthof(cl100k_specials)},
	{"o200k_base", BPE_PATTERN_O200K,
		"446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
	o200k_specials, lengthof(o200k_specials)},
	{"p50k_base", BPE_PATTERN_R50K,
		"94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
	r50k_specials, lengthof(r50k_specials)},
	{"r50k_base", BPE_PATTERN_R50K,
		"306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
	r50k_specials, lengthof(r50k_specials)},
};

/*
 * Model names, as in tiktoken's model.py.  The map is fixed for an
 * extension version: the SQL functions are IMMUTABLE, so a name may never
 * change its meaning within one version.
 */
typedef struct TokenizerAlias
{
	const char *name;
	int			encoding;
} TokenizerAlias;

static const TokenizerAlias model_names[] = {
	{"gpt2", ENC_R50K},
	{"gpt-2", ENC_R50K},
	{"o1", ENC_O200K},
	{"o3", ENC_O200K},
	{"o4-mini", ENC_O200K},
	{"gpt-5", ENC_O200K},
	{"gpt-4.1", ENC_O200K},
	{"gpt-4o", ENC_O200K},
	{"gpt-4o-mini", ENC_O200K},
	{"gpt-4", ENC_CL100K},
	{"gpt-3.5-turbo", ENC_CL100K},
	{"gpt-3.5", ENC_CL100K},
	{"gpt-35-turbo", ENC_CL100K},
	{"davinci-002", ENC_CL100K},
	{"babbage-002", ENC_CL100K},
	{"text-embedding-ada-002", ENC_CL100K},
	{"text-embedding-3-small", ENC_CL100K},
	{"text-embedding-3-large", ENC_CL100K},
	{"text-davinci-003", ENC_P50K},
	{"text-davinci-002", ENC_P50K},
	{"text-davinci-001", ENC_R50K},
	{"text-curie-001", ENC_R50K},
	{"text-babbage-001", ENC_R50K},
	{"text-ada-001", ENC_R50K},
	{"davinci", ENC_R50K},
	{"curie", ENC_R50K},
	{"babbage", ENC_R50K},
	{"ada", ENC_R50K},
	{"code-davinci-002", ENC_P50K},
	{"code-davinci-001", ENC_P50K},
	{"code-cushman-002", ENC_P50K},
	{"code-cushman-001", ENC_P50K},
	{"davinci-codex", ENC_P50K},
	{"cushman-codex", ENC_P50K},
	{"text-davinci-edit-001", ENC_P50K},
	{"code-davinci-edit-001", ENC_P50K},
	{"text-similarity-davinci-001", ENC_R50K},
	{"text-similarity-curie-001", ENC_R50K},
	{"text-similarity-babbage-001", ENC_R50K},
	{"text-similarity-ada-001", ENC_R50K},
	{"text-search-davinci-doc-001", ENC_R50K},
	{"text-search-curie-doc-001", ENC_R50K},
	{"text-search-babbage-doc-001", ENC_R50K},
	{"text-search-ada-doc-001", ENC_R50K},
	{"code-search-babbage-code-001", ENC_R50K},
	{"code-search-ada-code-001", ENC_R50K},
};

/* dated and fine-tuned variants ("gpt-4o-2024-08-06", "ft:gpt-4o:...") */
static const TokenizerAlias model_prefixes[] = {
	{"o1-", ENC_O200K},
	{"o3-", ENC_O200K},
	{"o4-mini-", ENC_O200K},
	{"gpt-5-", ENC_O200K},
	{"gpt-4.5-", ENC_O200K},
	{"gpt-4.1-", ENC_O200K},
	{"chatgpt-4o-", ENC_O200K},
	{"gpt-4o-", ENC_O200K},
	{"gpt-4-", ENC_CL100K},
	{"gpt-3.5-turbo-", ENC_CL100K},
	{"gpt-35-turbo-", ENC_CL100K},
	{"ft:gpt-4o", ENC_O200K},
	{"ft:gpt-4", ENC_CL100K},
	{"ft:gpt-3.5-turbo", ENC_CL100K},
	{"ft:davinci-002", ENC_CL100K},
	{"ft:babbage-002", ENC_CL100K},
};

/* ---- vocabulary loading ---- */

static void
hex_of(const uint8 *bin, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < 32; i++)
	{
		hex[2 * i] = digits[bin[i] >> 4];
		hex[2 * i + 1] = digits[bin[i] & 15];
	}
	hex[64] = '\0';
}

/*
 * Map data/genai_<name>.bpe from the extension's share directory, check it
 * and fill in enc->vocab.  The mapping is read-only and shared, so backends
 * share its pages through the page cache; it lives as long as the backend.
 * enc->loaded is set last, so an ERROR leaves the encoding unloaded.
 */
static void
load_vocabulary(TokenizerEncoding *enc)
{
	char		sharepath[MAXPGPATH];
	char		path[MAXPGPATH];
	int			fd;
	struct stat st;
	void	   *map;
	const BpeFileHeader *hdr;
	const char *err;
	char		hex[65];

	/* a fixed basename from our own table, never a user-supplied path */
	get_share_path(my_exec_path, sharepath);
	snprintf(path, sizeof(path), "%s/extension/genai_%s.bpe", sharepath, enc->name);

	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open tokenizer vocabulary file \"%s\": %m", path),
				 errhint("The genai extension's data files may not be installed.")));
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat tokenizer vocabulary file \"%s\": %m", path)));
	}
	if (st.st_size < (off_t) sizeof(BpeFileHeader))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tokenizer vocabulary file \"%s\" is invalid", path),
				 errdetail("The file is too short.")));
	}
	/* the checksum reads every page anyway: map them at once if we can */
#ifdef MAP_POPULATE
	map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
#else
	map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
#endif
	close(fd);
	if (map == MAP_FAILED)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not map tokenizer vocabulary file \"%s\": %m", path)));

	hdr = (const BpeFileHeader *) map;
	err = BpeVocabOpen(map, (size_t) st.st_size, &enc->vocab);
	if (err == NULL)
	{
		hex_of(hdr->source_sha256, hex);
		if (strcmp(hex, enc->sha256) != 0)
			err = "it was not built from the published rank file (SHA-256 mismatch)";
	}
	if (err != NULL)
	{
		munmap(map, (size_t) st.st_size);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tokenizer vocabulary file \"%s\" is invalid", path),
				 errdetail("The file is unusable: %s.", err),
				 errhint("Reinstall the genai extension.")));
	}
	enc->loaded = true;
}

/*
 * Resolve an encoding or model name, loading its vocabulary on first use.
 */
const TokenizerEncoding *
TokenizerGetEncoding(const char *name)
{
	TokenizerEncoding *enc = NULL;
	int			i;

	for (i = 0; i < lengthof(encodings) && enc == NULL; i++)
		if (strcmp(name, encodings[i].name) == 0)
			enc = &encodings[i];
	for (i = 0; i < lengthof(model_names) && enc == NULL; i++)
		if (strcmp(name, model_names[i].name) == 0)
			enc = &encodings[model_names[i].encoding];
	for (i = 0; i < lengthof(model_prefixes) && enc == NULL; i++)
		if (strncmp(name, model_prefixes[i].name, strlen(model_prefixes[i].name)) == 0)
			enc = &encodings[model_prefixes[i].encoding];
	if (enc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized tokenizer encoding \"%s\"", name),
				 errhint("Use cl100k_base, o200k_base, p50k_base, r50k_base or an OpenAI model name such as gpt-4o.")));
	if (!enc->loaded)
		load_vocabulary(enc);
	return enc;
}

const char *
TokenizerEncodingName(const TokenizerEncoding *enc)
{
	return enc->name;
}

/* ---- encoding ---- */

static void *
work_alloc(void *ctx, size_t size)
{
	return MemoryContextAllocHuge(CurrentMemoryContext, size);
}

static void
work_free(void *ctx, void *ptr)
{
	pfree(ptr);
}

static void
work_interrupt(void)
{
	CHECK_FOR_INTERRUPTS();
}

static void
init_work(BpeWork *work)
{
	work->alloc = work_alloc;
	work->free = work_free;
	work->ctx = NULL;
	work->interrupt = work_interrupt;
	work->ticks = NULL;
}

int64
TokenizerCountUtf8(const TokenizerEncoding *enc, const char *utf8, size_t len)
{
	BpeWork		work;

	init_work(&work);
	return (int64) BpeEncode(&enc->vocab, enc->pattern, (const uint8_t *) utf8,
							 len, NULL, &work);
}

int
TokenizerCount(const char *utf8, size_t len, const char *encoding_name)
{
	int64		n = TokenizerCountUtf8(TokenizerGetEncoding(encoding_name), utf8, len);

	if (n > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("token count exceeds the maximum of %d", PG_INT32_MAX)));
	return (int) n;
}

uint32 *
TokenizerEncodeUtf8(const TokenizerEncoding *enc, const char *utf8, size_t len,
					size_t *ntokens)
{
	BpeWork		work;
	uint32	   *out;

	init_work(&work);
	out = MemoryContextAllocHuge(CurrentMemoryContext,
								 Max(len, 1) * sizeof(uint32));
	*ntokens = BpeEncode(&enc->vocab, enc->pattern, (const uint8_t *) utf8, len,
						 out, &work);
	return out;
}

/*
 * Text in the server encoding as UTF-8 bytes.  A UTF8 database needs no
 * work; other encodings are converted; SQL_ASCII text is taken as UTF-8 if
 * it is valid UTF-8.
 */
const char *
TokenizerTextToUtf8(const text *t, size_t *len)
{
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);
	int			dbenc = GetDatabaseEncoding();
	char	   *u;

	if (dbenc == PG_UTF8)
	{
		*len = (size_t) n;
		return s;
	}
	if (dbenc == PG_SQL_ASCII)
	{
		if (!pg_verify_mbstr(PG_UTF8, s, n, true))
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("cannot tokenize text that is not valid UTF-8"),
					 errdetail("The database encoding is SQL_ASCII, so text is read as UTF-8.")));
		*len = (size_t) n;
		return s;
	}
	u = pg_server_to_any(s, n, PG_UTF8);
	*len = strlen(u);
	return u;
}

/*
 * UTF-8 bytes (not necessarily valid) as a text value in the server
 * encoding, or an ERROR saying why not.
 */
text *
TokenizerUtf8ToText(const char *utf8, size_t len)
{
	const char *s;
	size_t		i;

	for (i = 0; i < len; i++)
		if (utf8[i] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
					 errmsg("tokens decode to text containing a NUL character"),
					 errhint("Use detokenize_bytes to get the raw bytes.")));
	if (len > MaxAllocSize - VARHDRSZ ||
		!pg_verify_mbstr(PG_UTF8, utf8, (int) len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("tokens do not decode to valid UTF-8"),
				 errdetail("Some tokens are fragments of a multibyte character, and the sequence does not complete them."),
				 errhint("Use detokenize_bytes to get the raw bytes.")));
	s = pg_any_to_server(utf8, (int) len, PG_UTF8);
	if (s == utf8)
		return cstring_to_text_with_len(utf8, (int) len);
	return cstring_to_text(s);
}

/* the bytes of token id, or NULL if the encoding has no such id */
static const uint8_t *
token_bytes(const TokenizerEncoding *enc, int32 id, size_t *len)
{
	int			i;

	if (id >= 0 && (uint32) id < enc->vocab.n_ranks)
	{
		uint32		off = enc->vocab.offsets[id];

		*len = enc->vocab.offsets[id + 1] - off;
		if (*len > 0)
			return enc->vocab.bytes + off;
	}
	for (i = 0; i < enc->nspecials; i++)
	{
		if ((uint32) id == enc->specials[i].id)
		{
			*len = strlen(enc->specials[i].text);
			return (const uint8_t *) enc->specials[i].text;
		}
	}
	return NULL;
}

/* concatenated bytes of an int4[] of token ids, palloc'd */
static char *
decode_array(const TokenizerEncoding *enc, ArrayType *arr, size_t *outlen)
{
	int32	   *ids;
	int			n;
	int			i;
	size_t		total = 0;
	char	   *buf;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("token array must be one-dimensional")));
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("token array must not contain nulls")));
	Assert(ARR_ELEMTYPE(arr) == INT4OID);
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	ids = (int32 *) ARR_DATA_PTR(arr);

	for (i = 0; i < n; i++)
	{
		size_t		len;

		if (token_bytes(enc, ids[i], &len) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid token id %d for encoding \"%s\"", ids[i], enc->name),
					 errdetail("Token ids of %s range from 0 to %u, plus its special tokens.",
							   enc->name, enc->vocab.n_ranks - 1)));
		total += len;
		if (total > MaxAllocSize - VARHDRSZ)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("decoded tokens exceed the maximum text size")));
	}
	buf = palloc(total + 1);
	total = 0;
	for (i = 0; i < n; i++)
	{
		size_t		len;
		const uint8_t *b = token_bytes(enc, ids[i], &len);

		memcpy(buf + total, b, len);
		total += len;
	}
	buf[total] = '\0';
	*outlen = total;
	return buf;
}

/*
 * Longest prefix (in bytes) whose own token count is at most max_tokens,
 * ending at a token boundary of the whole text that is also a character
 * boundary.  The prefix's own tokenization can differ from the whole
 * text's at its end (the pre-tokenizer looks ahead), so the candidate is
 * checked by encoding it, stepping back by the excess until it fits.
 */
size_t
TokenizerTruncateUtf8(const TokenizerEncoding *enc, const char *utf8,
					  size_t len, int64 max_tokens)
{
	size_t		ntok;
	uint32	   *toks;
	size_t	   *ends;
	size_t		k;
	size_t		i;
	size_t		result = 0;

	if (max_tokens <= 0)
		return 0;
	toks = TokenizerEncodeUtf8(enc, utf8, len, &ntok);
	if ((uint64) max_tokens >= ntok)
	{
		pfree(toks);
		return len;
	}
	/* ends[k] = end of the first k tokens */
	ends = MemoryContextAllocHuge(CurrentMemoryContext, (ntok + 1) * sizeof(size_t));
	ends[0] = 0;
	for (i = 0; i < ntok; i++)
		ends[i + 1] = ends[i] + (enc->vocab.offsets[toks[i] + 1] - enc->vocab.offsets[toks[i]]);

	k = (size_t) max_tokens;
	while (k > 0)
	{
		int64		own;

		/* a character boundary: not in front of a continuation byte */
		if ((((const uint8 *) utf8)[ends[k]] & 0xC0) == 0x80)
		{
			k--;
			continue;
		}
		own = TokenizerCountUtf8(enc, utf8, ends[k]);
		if (own <= max_tokens)
		{
			result = ends[k];
			break;
		}
		k -= Min((size_t) (own - max_tokens), k);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(ends);
	pfree(toks);
	return result;
}

int64
TokenizerCountText(const text *t, const char *encoding_name)
{
	const TokenizerEncoding *enc = TokenizerGetEncoding(encoding_name);
	size_t		len;
	const char *s = TokenizerTextToUtf8(t, &len);

	return TokenizerCountUtf8(enc, s, len);
}

/* ---- SQL functions ---- */

PG_FUNCTION_INFO_V1(tokenize);
Datum
tokenize(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const TokenizerEncoding *enc = TokenizerGetEncoding(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	size_t		len;
	const char *s = TokenizerTextToUtf8(t, &len);
	size_t		ntok;
	uint32	   *toks = TokenizerEncodeUtf8(enc, s, len, &ntok);
	ArrayType  *result;
	Size		nbytes;

	if (ntok > MaxArraySize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("text has too many tokens for an array (%zu)", ntok)));
	nbytes = ARR_OVERHEAD_NONULLS(1) + ntok * sizeof(int32);
	if (nbytes > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("text has too many tokens for an array (%zu)", ntok)));
	result = (ArrayType *) palloc0(nbytes);
	SET_VARSIZE(result, nbytes);
	result->ndim = ntok > 0 ? 1 : 0;
	result->dataoffset = 0;
	result->elemtype = INT4OID;
	if (ntok > 0)
	{
		ARR_DIMS(result)[0] = (int) ntok;
		ARR_LBOUND(result)[0] = 1;
		memcpy(ARR_DATA_PTR(result), toks, ntok * sizeof(int32));
	}
	else
		SET_VARSIZE(result, ARR_OVERHEAD_NONULLS(0));
	PG_RETURN_ARRAYTYPE_P(result);
}

PG_FUNCTION_INFO_V1(token_count);
Datum
token_count(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int64		n = TokenizerCountText(t, text_to_cstring(PG_GETARG_TEXT_PP(1)));

	/* a text value is at most 1 GB, and a token at least one byte */
	PG_RETURN_INT32((int32) n);
}

PG_FUNCTION_INFO_V1(detokenize);
Datum
detokenize(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	const TokenizerEncoding *enc = TokenizerGetEncoding(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	size_t		len;
	char	   *buf = decode_array(enc, arr, &len);

	PG_RETURN_TEXT_P(TokenizerUtf8ToText(buf, len));
}

PG_FUNCTION_INFO_V1(detokenize_bytes);
Datum
detokenize_bytes(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	const TokenizerEncoding *enc = TokenizerGetEncoding(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	size_t		len;
	char	   *buf = decode_array(enc, arr, &len);
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), buf, len);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(truncate_tokens);
Datum
truncate_tokens(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int32		max_tokens = PG_GETARG_INT32(1);
	const TokenizerEncoding *enc = TokenizerGetEncoding(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	size_t		len;
	const char *s;
	size_t		cut;

	if (max_tokens < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_tokens must not be negative")));
	s = TokenizerTextToUtf8(t, &len);
	cut = TokenizerTruncateUtf8(enc, s, len, max_tokens);
	if (cut == len)
		PG_RETURN_TEXT_P(t);
	PG_RETURN_TEXT_P(TokenizerUtf8ToText(s, cut));
}

/* byte length of an ordinary token id produced by the encoder */
size_t
TokenizerTokenLength(const TokenizerEncoding *enc, uint32 id)
{
	Assert(id < enc->vocab.n_ranks);
	return enc->vocab.offsets[id + 1] - enc->vocab.offsets[id];
}
