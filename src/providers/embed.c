/*-------------------------------------------------------------------------
 *
 * embed.c
 *	  embed(text) and embed(text[]): text to vectors through a provider.
 *
 * The array form packs its inputs into as few requests as the provider's
 * limits allow: consecutive inputs go into one request until the next one
 * would exceed max_batch_inputs texts or max_batch_tokens tokens, counted
 * with the provider's tokenizer (or bounded by bytes); see README.  A 429 or 5xx is retried with
 * the same batch by the http layer, so batching survives rate limits.
 * Results keep the input order (OpenAI's "index" field is honoured), and
 * the call fails or succeeds as a whole.
 *
 * IDENTIFICATION
 *	  src/providers/embed.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http/http.h"
#include "providers.h"
#include "tokenizer/tokenizer.h"
#include "wire.h"

PG_FUNCTION_INFO_V1(embed_text);
PG_FUNCTION_INFO_V1(embed_array);

static int
CheckDimensions(Provider prov, int dimensions)
{
	if (dimensions < 0 || dimensions > VECTOR_MAX_DIM || dimensions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions must be between 1 and %d", VECTOR_MAX_DIM)));
	return dimensions;
}

static void
LocalEmbedAll(Provider prov, const char *model, int dimensions, int n,
			  char **texts, Vector **out, ProviderUsage *usage)
{
	if (dimensions == 0)
		dimensions = GENAI_DEFAULT_LOCAL_DIMENSIONS;
	usage->input_tokens = 0;
	for (int i = 0; i < n; i++)
	{
		char	   *u;
		int			len;

		CHECK_FOR_INTERRUPTS();
		if (texts[i] == NULL)
		{
			out[i] = NULL;
			continue;
		}
		len = strlen(texts[i]);
		u = pg_server_to_any(texts[i], len, PG_UTF8);
		if (u != texts[i])
			len = strlen(u);
		out[i] = InitVector(dimensions);
		LocalEmbed(u, len, out[i]->x, dimensions);
		if (u != texts[i])
			pfree(u);
		usage->input_tokens += GenaiCountTokens(texts[i], strlen(texts[i]));
	}
}

/*
 * Tokens of a text for packing batches: counted with the provider's
 * tokenizer, or bounded by its UTF-8 length.
 */
static int64
BatchTokens(const TokenizerEncoding *enc, const char *text)
{
	char	   *u;
	size_t		len = strlen(text);
	int64		n;

	u = pg_server_to_any(text, len, PG_UTF8);
	if (u != text)
		len = strlen(u);
	n = enc ? TokenizerCountUtf8(enc, u, len) : (int64) len;
	if (u != text)
		pfree(u);
	return Max(n, 1);
}

/* Sends one batch of n non-NULL texts; stores vectors (in outcxt) in out[]. */
static void
RemoteEmbedBatch(Provider prov, const char *model, int dimensions,
				 const char *url, const char *auth, const char *key,
				 int n, char **texts, Vector **out, MemoryContext outcxt,
				 ProviderUsage *usage)
{
	HttpRequest req;
	HttpResponse resp;
	Jsonb	   *j;
	JsonbContainer *list;
	int			dim = 0;
	bool	   *seen;
	int64		tokens = -1;

	memset(&req, 0, sizeof(req));
	req.provider = prov->name;
	req.url = url;
	req.auth_header = auth;
	req.body = WireEmbedBody(prov, model, dimensions, n, texts, &req.body_len);
	req.ca_bundle = prov->ca_bundle;
	req.proxy = prov->proxy;
	req.secret = key;
	ProviderHttpPost(prov, &req, &resp);
	usage->requests++;
	usage->retries += resp.attempts - 1;

	if (resp.status < 200 || resp.status > 299)
		WireHttpError(prov, &resp, key);
	j = WireParse(resp.body, resp.body_len);
	if (j == NULL || !JB_ROOT_IS_OBJECT(j))
		WireInvalid(prov, "The response is not a JSON object.");

	if (prov->kind == PROVIDER_OLLAMA)
	{
		list = WireContainer(WireField(&j->root, "embeddings"), true);
		if (list == NULL)
			WireInvalid(prov, "The response has no \"embeddings\" array.");
		tokens = WireInt(WireField(&j->root, "prompt_eval_count"));
	}
	else
	{
		JsonbContainer *u = WireContainer(WireField(&j->root, "usage"), false);

		list = WireContainer(WireField(&j->root, "data"), true);
		if (list == NULL)
			WireInvalid(prov, "The response has no \"data\" array.");
		tokens = WireInt(WireField(u, "prompt_tokens"));
		if (tokens < 0)
			tokens = WireInt(WireField(u, "total_tokens"));
	}
	if (JsonContainerSize(list) != n)
		WireInvalid(prov, psprintf("%d embeddings were asked for and %d returned.",
								   n, (int) JsonContainerSize(list)));

	seen = palloc0(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(list, i);
		JsonbValue *vec = item;
		int			index = i;
		float	   *x;
		MemoryContext old;

		if (prov->kind != PROVIDER_OLLAMA)
		{
			JsonbContainer *obj = WireContainer(item, false);
			JsonbValue *iv;

			if (obj == NULL)
				WireInvalid(prov, "An element of \"data\" is not an object.");
			vec = WireField(obj, "embedding");
			iv = WireField(obj, "index");
			if (iv != NULL)
			{
				int64		k = WireInt(iv);

				if (k < 0 || k >= n)
					WireInvalid(prov, "An element of \"data\" has an invalid \"index\".");
				index = (int) k;
			}
		}
		if (seen[index])
			WireInvalid(prov, "Two embeddings have the same \"index\".");
		seen[index] = true;
		x = WireVector(prov, vec, &dim);
		if (dimensions > 0 && dim != dimensions)
			WireInvalid(prov, psprintf("%d dimensions were asked for and %d returned.",
									   dimensions, dim));
		old = MemoryContextSwitchTo(outcxt);
		out[index] = InitVector(dim);
		memcpy(out[index]->x, x, sizeof(float) * dim);
		MemoryContextSwitchTo(old);
	}
	if (tokens < 0)
	{
		tokens = 0;
		for (int i = 0; i < n; i++)
			tokens += GenaiCountTokens(texts[i], strlen(texts[i]));
	}
	if (usage->input_tokens < 0)
		usage->input_tokens = 0;
	usage->input_tokens += tokens;
}

static void
RemoteEmbedAll(Provider prov, const char *model, int dimensions, int n,
			   char **texts, Vector **out, ProviderUsage *usage)
{
	MemoryContext outcxt = CurrentMemoryContext;
	MemoryContext batchcxt;
	MemoryContext old;
	char	   *key;
	char	   *auth;
	char	   *url;
	char	  **batch;
	int		   *where;
	int			i = 0;
	const TokenizerEncoding *enc = NULL;

	usage->model = model;
	key = ProviderGetKey(prov);
	auth = WireAuthHeader(prov, key);
	url = WireUrl(prov, model, false);
	if (prov->tokenizer)
		enc = TokenizerGetEncoding(prov->tokenizer);
	batch = palloc(sizeof(char *) * n);
	where = palloc(sizeof(int) * n);
	batchcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "genai embedding batch",
									 ALLOCSET_DEFAULT_SIZES);
	while (i < n)
	{
		int			count = 0;
		int64		tokens = 0;
		Vector	  **got;

		CHECK_FOR_INTERRUPTS();
		/* pack consecutive non-NULL inputs up to the provider's limits */
		for (; i < n && count < prov->max_batch_inputs; i++)
		{
			int64		t;

			if (texts[i] == NULL)
			{
				out[i] = NULL;
				continue;
			}
			t = BatchTokens(enc, texts[i]);
			if (count > 0 && tokens + t > prov->max_batch_tokens)
				break;
			tokens += t;
			where[count] = i;
			batch[count++] = texts[i];
		}
		if (count == 0)
			continue;
		old = MemoryContextSwitchTo(batchcxt);
		got = palloc0(sizeof(Vector *) * count);
		RemoteEmbedBatch(prov, model, dimensions, url, auth, key,
						 count, batch, got, outcxt, usage);
		MemoryContextSwitchTo(old);
		for (int k = 0; k < count; k++)
			out[where[k]] = got[k];
		MemoryContextReset(batchcxt);
	}
	MemoryContextDelete(batchcxt);
	if (key)
		explicit_bzero(key, strlen(key));
	if (auth)
		explicit_bzero(auth, strlen(auth));
}

/* the model to use: the given one, checked for local, else the default */
static const char *
ResolveModel(Provider prov, const char *model)
{
	if (prov->kind == PROVIDER_LOCAL)
	{
		if (model != NULL && strcmp(model, GENAI_LOCAL_EMBEDDING_MODEL) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("provider \"%s\" has no embedding model \"%s\"", prov->name, model),
					 errhint("The local provider's embedding model is \"%s\".",
							 GENAI_LOCAL_EMBEDDING_MODEL)));
		return GENAI_LOCAL_EMBEDDING_MODEL;
	}
	if (model == NULL)
		model = prov->embedding_model;
	if (model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no embedding model given and provider \"%s\" has no default",
						prov->name),
				 errhint("Pass a model, or set the provider's \"embedding_model\" option.")));
	return model;
}

typedef struct EmbedCall
{
	Provider	prov;
	const char *model;
	int			dimensions;
	int			n;
	char	  **texts;
	Vector	  **out;
	ProviderUsage *usage;
} EmbedCall;

static void
EmbedCallRun(void *arg)
{
	EmbedCall  *c = (EmbedCall *) arg;

	if (c->prov->kind == PROVIDER_LOCAL)
		LocalEmbedAll(c->prov, c->model, c->dimensions, c->n, c->texts, c->out, c->usage);
	else
		RemoteEmbedAll(c->prov, c->model, c->dimensions, c->n, c->texts, c->out, c->usage);
}

void
ProviderEmbed(Provider prov, const char *model, int dimensions,
			  int n, char **texts, Vector **out)
{
	ProviderUsage usage;
	EmbedCall	call;
	int64		estimate = 0;

	memset(&usage, 0, sizeof(usage));
	usage.operation = "embed";
	usage.input_tokens = -1;
	usage.output_tokens = -1;
	usage.model = model = ResolveModel(prov, model);
	for (int i = 0; i < n; i++)
		if (texts[i] != NULL)
		{
			usage.inputs++;
			if (UsageActive() && genai_token_budget > 0)
				estimate += GenaiCountTokens(texts[i], strlen(texts[i]));
		}

	call.prov = prov;
	call.model = model;
	call.dimensions = dimensions;
	call.n = n;
	call.texts = texts;
	call.out = out;
	call.usage = &usage;
	LedgerRun(prov, &usage, estimate, EmbedCallRun, &call);
}

Datum
embed_text(PG_FUNCTION_ARGS)
{
	Provider	prov;
	char	   *input;
	char	   *model = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			dimensions = 0;
	Vector	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	prov = ProviderLookup(PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (!PG_ARGISNULL(3))
		dimensions = CheckDimensions(prov, PG_GETARG_INT32(3));
	input = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ProviderEmbed(prov, model, dimensions, 1, &input, &out);
	PG_RETURN_VECTOR_P(out);
}

Datum
embed_array(PG_FUNCTION_ARGS)
{
	ArrayType  *in;
	Provider	prov;
	char	   *model = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			dimensions = 0;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	  **texts;
	Vector	  **out;
	Datum	   *outd;
	Oid			vectype;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1];
	int			lbs[1] = {1};

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	in = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(in) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("embed takes a one-dimensional array of texts")));
	prov = ProviderLookup(PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (!PG_ARGISNULL(3))
		dimensions = CheckDimensions(prov, PG_GETARG_INT32(3));

	deconstruct_array(in, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	texts = palloc(sizeof(char *) * Max(n, 1));
	out = palloc0(sizeof(Vector *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		texts[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	if (n > 0)
		ProviderEmbed(prov, model, dimensions, n, texts, out);

	vectype = get_element_type(get_fn_expr_rettype(fcinfo->flinfo));
	if (!OidIsValid(vectype))
		elog(ERROR, "could not determine the vector type");
	get_typlenbyvalalign(vectype, &typlen, &typbyval, &typalign);
	outd = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		outd[i] = PointerGetDatum(out[i]);
	dims[0] = n;
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(vectype));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(outd, nulls, 1, dims, lbs, vectype,
											 typlen, typbyval, typalign));
}
