/*-------------------------------------------------------------------------
 *
 * wire.c
 *	  Requests to and responses from remote providers: URLs, headers,
 *	  JSON bodies for the OpenAI wire format (and Azure's variant) and
 *	  Ollama's native routes, and the checks on what comes back.
 *
 * Responses are untrusted.  They are converted from UTF-8 to the server
 * encoding (which verifies them), checked with PostgreSQL's JSON parser
 * (common/jsonapi) and read through jsonb, checking the type of every
 * field before using it.  A response that is not what the route promises
 * is a protocol violation (08P01) naming the provider and the field.
 *
 * IDENTIFICATION
 *	  src/providers/wire.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <float.h>
#include <math.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "http/http.h"
#include "providers.h"
#include "wire.h"

/* ---- requests ---- */

static void
AppendTrimmedBase(StringInfo url, const char *base)
{
	int			len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		len--;
	appendBinaryStringInfo(url, base, len);
}

static void
CheckAzureDeployment(Provider prov, const char *model)
{
	for (const char *p = model; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '_' || *p == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid Azure deployment name for provider \"%s\"", prov->name),
					 errdetail("Deployment names may contain only letters, digits, \"-\", \"_\" and \".\".")));
}

/* URL of the embeddings (chat = false) or chat route of a remote provider */
char *
WireUrl(Provider prov, const char *model, bool chat)
{
	StringInfoData url;

	initStringInfo(&url);
	AppendTrimmedBase(&url, prov->base_url);
	switch (prov->kind)
	{
		case PROVIDER_OPENAI:
			appendStringInfoString(&url, chat ? "/chat/completions" : "/embeddings");
			break;
		case PROVIDER_AZURE:
			CheckAzureDeployment(prov, model);
			appendStringInfo(&url, "/openai/deployments/%s/%s?api-version=%s",
							 model, chat ? "chat/completions" : "embeddings",
							 prov->api_version ? prov->api_version : "2024-02-01");
			break;
		case PROVIDER_OLLAMA:
			appendStringInfoString(&url, chat ? "/api/chat" : "/api/embed");
			break;
		case PROVIDER_LOCAL:
			elog(ERROR, "the local provider has no URL");
	}
	return url.data;
}

/* The header that carries the key, or NULL without a key. */
char *
WireAuthHeader(Provider prov, const char *key)
{
	if (key == NULL)
		return NULL;
	for (const char *p = key; *p; p++)
		if ((unsigned char) *p < ' ' || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the API key of provider \"%s\" contains control characters",
							prov->name)));
	if (prov->kind == PROVIDER_AZURE)
		return psprintf("api-key: %s", key);
	return psprintf("Authorization: Bearer %s", key);
}

/* Appends a server-encoded string as a JSON string (the body is converted later). */
static void
AppendJsonString(StringInfo buf, const char *s)
{
	escape_json(buf, s);
}

/* The body as UTF-8 */
static char *
ToUtf8(StringInfo body, size_t *len)
{
	char	   *u = pg_server_to_any(body->data, body->len, PG_UTF8);

	*len = (u == body->data) ? (size_t) body->len : strlen(u);
	return u;
}

char *
WireEmbedBody(Provider prov, const char *model, int dimensions,
			  int n, char **texts, size_t *len)
{
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"model\":");
	AppendJsonString(&body, model);
	appendStringInfoString(&body, ",\"input\":[");
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&body, ',');
		AppendJsonString(&body, texts[i]);
	}
	appendStringInfoChar(&body, ']');
	if (prov->kind != PROVIDER_OLLAMA)
		appendStringInfoString(&body, ",\"encoding_format\":\"float\"");
	if (dimensions > 0)
		appendStringInfo(&body, ",\"dimensions\":%d", dimensions);
	appendStringInfoChar(&body, '}');
	return ToUtf8(&body, len);
}

/* Appends "key":value for every member of an options object except skipped keys. */
static void
AppendOptions(StringInfo body, Jsonb *options, bool ollama_names, bool *first)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (options == NULL || !JB_ROOT_IS_OBJECT(options))
		return;
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && key != NULL)
		{
			char	   *text;

			if (strcmp(key, "model") == 0 || strcmp(key, "messages") == 0 ||
				strcmp(key, "stream") == 0)
				continue;
			if (v.type == jbvBinary)
				text = JsonbToCString(NULL, v.val.binary.data, v.val.binary.len);
			else
				text = JsonbToCString(NULL, &JsonbValueToJsonb(&v)->root, 0);
			if (!*first)
				appendStringInfoChar(body, ',');
			*first = false;
			if (ollama_names && strcmp(key, "max_tokens") == 0)
				AppendJsonString(body, "num_predict");
			else
				AppendJsonString(body, key);
			appendStringInfoChar(body, ':');
			appendStringInfoString(body, text);
		}
	}
}

char *
WireChatBody(Provider prov, const char *model, Jsonb *messages,
			 Jsonb *options, size_t *len)
{
	StringInfoData body;
	bool		first;

	initStringInfo(&body);
	appendStringInfoString(&body, "{\"model\":");
	AppendJsonString(&body, model);
	appendStringInfoString(&body, ",\"messages\":");
	appendStringInfoString(&body, JsonbToCString(NULL, &messages->root, VARSIZE(messages)));
	appendStringInfoString(&body, ",\"stream\":false");
	if (prov->kind == PROVIDER_OLLAMA)
	{
		appendStringInfoString(&body, ",\"options\":{");
		first = true;
		AppendOptions(&body, options, true, &first);
		appendStringInfoChar(&body, '}');
	}
	else
	{
		first = false;
		AppendOptions(&body, options, false, &first);
	}
	appendStringInfoChar(&body, '}');
	return ToUtf8(&body, len);
}

/* ---- responses ---- */

void
WireInvalid(Provider prov, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("provider \"%s\" returned an invalid response", prov->name),
			 errdetail("%s", what)));
}

/*
 * Limits on what a response may hold, checked before PostgreSQL's JSON
 * code sees it: deeper nesting would end in "stack depth limit exceeded"
 * (54001), and longer numbers or larger exponents in "value overflows
 * numeric format" (22003) from jsonb_in, instead of 08P01 naming the
 * provider.  Real responses nest a few levels and print floats.
 */
#define WIRE_MAX_DEPTH		512
#define WIRE_MAX_NUMBER_LEN 512
#define WIRE_MAX_EXPONENT	1000

/* true when s (NUL-free) stays within the limits above */
static bool
WireWithinLimits(const char *s, size_t len)
{
	int			depth = 0;
	size_t		i = 0;

	while (i < len)
	{
		char		c = s[i];

		if (c == '"')
		{
			/* skip the string, escapes included */
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
		}
		else if (c == '[' || c == '{')
		{
			if (++depth > WIRE_MAX_DEPTH)
				return false;
			i++;
		}
		else if (c == ']' || c == '}')
		{
			depth--;
			i++;
		}
		else if (c == '-' || (c >= '0' && c <= '9'))
		{
			size_t		start = i;
			long		exponent = 0;
			bool		in_exponent = false;

			for (; i < len && (isdigit((unsigned char) s[i]) || s[i] == '.' || s[i] == '-' ||
							   s[i] == '+' || s[i] == 'e' || s[i] == 'E'); i++)
			{
				if (s[i] == 'e' || s[i] == 'E')
					in_exponent = true;
				else if (in_exponent && isdigit((unsigned char) s[i]) &&
						 (exponent = exponent * 10 + (s[i] - '0')) > WIRE_MAX_EXPONENT)
					return false;
			}
			if (i - start > WIRE_MAX_NUMBER_LEN)
				return false;
		}
		else
			i++;
	}
	return true;
}

/*
 * Parses a response body (UTF-8) into jsonb, or returns NULL when it is
 * not JSON genai accepts (no error: error bodies are often plain text).
 * The validating pass decodes escapes, so "\u0000" and broken surrogate
 * pairs are refused here rather than by jsonb_in with an ERROR.
 */
Jsonb *
WireParse(const char *body, size_t len)
{
	char	   *s;
	JsonLexContext *lex;

	if (len == 0 || memchr(body, '\0', len) != NULL)
		return NULL;
	if (!pg_verify_mbstr(PG_UTF8, body, (int) len, true))
		return NULL;
	if (!WireWithinLimits(body, len))
		return NULL;
	s = pg_any_to_server(body, (int) len, PG_UTF8);
	lex = makeJsonLexContextCstringLen(s, strlen(s), GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/* member "key" of an object container, or NULL */
JsonbValue *
WireField(JsonbContainer *c, const char *key)
{
	if (c == NULL || !JsonContainerIsObject(c))
		return NULL;
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

JsonbContainer *
WireContainer(JsonbValue *v, bool array)
{
	if (v == NULL || v->type != jbvBinary)
		return NULL;
	if (array ? !JsonContainerIsArray(v->val.binary.data)
		: !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/* a JSON number as int64, or -1 when absent or not a non-negative integer */
int64
WireInt(JsonbValue *v)
{
	double		d;

	if (v == NULL || v->type != jbvNumeric)
		return -1;
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (!(d >= 0 && d <= 1e15) || d != floor(d))
		return -1;
	return (int64) d;
}

/* a string member as a palloc'd C string, or NULL */
char *
WireString(JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Reads one embedding (a JSON array of numbers) into a new float array.
 * *dim is the expected length, or 0 when this is the first one.
 */
float *
WireVector(Provider prov, JsonbValue *v, int *dim)
{
	JsonbContainer *c = WireContainer(v, true);
	int			n;
	float	   *x;

	if (c == NULL)
		WireInvalid(prov, "An embedding is not an array.");
	n = JsonContainerSize(c);
	if (n < 1 || n > VECTOR_MAX_DIM)
		WireInvalid(prov, psprintf("An embedding has %d dimensions; between 1 and %d are allowed.",
								   n, VECTOR_MAX_DIM));
	if (*dim != 0 && n != *dim)
		WireInvalid(prov, psprintf("Embeddings have %d and %d dimensions.", *dim, n));
	*dim = n;
	x = palloc(sizeof(float) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(c, i);
		double		d;

		if (e == NULL || e->type != jbvNumeric)
			WireInvalid(prov, "An embedding holds something other than a number.");
		/* out of float8's range gives +-HUGE_VAL or 0, not an ERROR */
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											   NumericGetDatum(e->val.numeric)));
		if (isnan(d) || fabs(d) > FLT_MAX)
			WireInvalid(prov, "An embedding holds a number out of range.");
		x[i] = (float) d;
	}
	return x;
}

/*
 * The provider's own error message from an error response: OpenAI's
 * {"error":{"message":...}}, Ollama's {"error":"..."}, else the start of
 * the body with anything unprintable replaced.  The key is scrubbed.
 */
char *
WireErrorMessage(const char *body, size_t len, const char *secret)
{
	Jsonb	   *j = WireParse(body, len);
	char	   *msg = NULL;

	if (j != NULL && JB_ROOT_IS_OBJECT(j))
	{
		JsonbValue *e = WireField(&j->root, "error");

		msg = WireString(e);
		if (msg == NULL)
			msg = WireString(WireField(WireContainer(e, false), "message"));
		if (msg == NULL)
			msg = WireString(WireField(&j->root, "message"));
	}
	if (msg == NULL)
	{
		size_t		n = Min(len, 200);

		msg = palloc(n + 1);
		for (size_t i = 0; i < n; i++)
			msg[i] = (body[i] >= ' ' && body[i] < 0x7f) ? body[i] : '?';
		msg[n] = '\0';
	}
	if (strlen(msg) > 500)
		msg[pg_mbcliplen(msg, strlen(msg), 500)] = '\0';
	if (msg[0] == '\0')
		msg = "(empty response)";
	return HttpScrub(msg, secret);
}

/* Raises the ERROR for a non-2xx response, with a SQLSTATE by status. */
void
WireHttpError(Provider prov, const HttpResponse *resp, const char *secret)
{
	int			code;
	char	   *msg = WireErrorMessage(resp->body, resp->body_len, secret);

	switch (resp->status)
	{
		case 400:
		case 422:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case 401:
		case 403:
			code = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
			break;
		case 404:
			code = ERRCODE_UNDEFINED_OBJECT;
			break;
		case 413:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case 429:
			code = ERRCODE_INSUFFICIENT_RESOURCES;
			break;
		default:
			code = (resp->status >= 500) ? ERRCODE_CONNECTION_FAILURE : ERRCODE_PROTOCOL_VIOLATION;
			break;
	}
	ereport(ERROR,
			(errcode(code),
			 errmsg("provider \"%s\" returned HTTP status %ld", prov->name, resp->status),
			 errdetail("Provider message: %s (attempts: %d)", msg, resp->attempts)));
}
