/*-------------------------------------------------------------------------
 *
 * complete.c
 *	  llm_complete(): chat completions through a provider.
 *
 * Both SQL forms go through ProviderComplete: the text form builds the
 * chat messages (system prompt, user prompt) and options (temperature,
 * max_tokens) and returns the answer's text; the full form takes the
 * messages and options as jsonb and returns the provider's response.
 * For the local provider that response is shaped like OpenAI's, with
 * "provider": "local" and "stand_in": true.
 *
 * IDENTIFICATION
 *	  src/providers/complete.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "http/http.h"
#include "providers.h"
#include "wire.h"

PG_FUNCTION_INFO_V1(llm_complete_text);
PG_FUNCTION_INFO_V1(llm_complete_messages);

static Jsonb *
JsonbFromText(const char *s)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/* the last case-insensitive occurrence of "question:" in s, or NULL */
static const char *
FindQuestionLabel(const char *s)
{
	const char *found = NULL;

	for (const char *p = s; *p; p++)
		if (pg_strncasecmp(p, "question:", 9) == 0)
			found = p;
	return found;
}

static void
CheckMessages(Jsonb *messages)
{
	if (!JB_ROOT_IS_ARRAY(messages) || JB_ROOT_IS_SCALAR(messages) ||
		JB_ROOT_COUNT(messages) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages must be a non-empty JSON array of message objects")));
	for (int i = 0; i < JB_ROOT_COUNT(messages); i++)
	{
		JsonbValue *m = getIthJsonbValueFromContainer(&messages->root, i);

		if (WireContainer(m, false) == NULL ||
			WireString(WireField(WireContainer(m, false), "role")) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("message %d is not an object with a \"role\"", i + 1)));
	}
}

/*
 * The local provider's answer.  The context is every message's content;
 * the question is what follows "Question:" in the last user message, or
 * that message's last line.  Without citation markers in the context the
 * question is left out of it.
 */
static char *
LocalChat(Jsonb *messages, int max_tokens, int64 *in_tokens)
{
	StringInfoData context;
	int			n = JB_ROOT_COUNT(messages);
	int			last_user = -1;
	char	   *question = NULL;
	char	   *answer;

	for (int i = 0; i < n; i++)
	{
		JsonbContainer *m = WireContainer(getIthJsonbValueFromContainer(&messages->root, i), false);
		char	   *role = WireString(WireField(m, "role"));

		if (WireString(WireField(m, "content")) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the local provider needs every message's \"content\" to be a string")));
		if (strcmp(role, "user") == 0)
			last_user = i;
	}
	if (last_user < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages contain no \"user\" message")));

	initStringInfo(&context);
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *m = WireContainer(getIthJsonbValueFromContainer(&messages->root, i), false);
		char	   *content = WireString(WireField(m, "content"));

		if (i == last_user)
		{
			const char *label = FindQuestionLabel(content);
			char	   *end;

			if (label)
			{
				question = pstrdup(label + 9);
				appendBinaryStringInfo(&context, content, label - content);
			}
			else
			{
				/* the last non-empty line is the question */
				end = content + strlen(content);
				while (end > content && isspace((unsigned char) end[-1]))
					end--;
				*end = '\0';
				question = strrchr(content, '\n');
				question = question ? pstrdup(question + 1) : pstrdup(content);
				appendBinaryStringInfo(&context, content, strlen(content) - strlen(question));
			}
		}
		else
			appendStringInfoString(&context, content);
		appendStringInfoChar(&context, '\n');
	}
	*in_tokens = GenaiCountTokens(context.data, context.len) +
		GenaiCountTokens(question, strlen(question));
	answer = LocalComplete(context.data, question, max_tokens);
	return answer;
}

static Jsonb *
LocalResponse(const char *content, int64 in_tokens, int64 out_tokens)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"object\": \"chat.completion\", \"model\": ");
	escape_json(&buf, GENAI_LOCAL_CHAT_MODEL);
	appendStringInfoString(&buf, ", \"provider\": \"local\", \"stand_in\": true, "
						   "\"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": ");
	escape_json(&buf, content);
	appendStringInfo(&buf, "}, \"finish_reason\": \"stop\"}], \"usage\": {\"prompt_tokens\": " INT64_FORMAT
					 ", \"completion_tokens\": " INT64_FORMAT ", \"total_tokens\": " INT64_FORMAT "}}",
					 in_tokens, out_tokens, in_tokens + out_tokens);
	return JsonbFromText(buf.data);
}

static int
OptionMaxTokens(Jsonb *options)
{
	int64		v;

	if (options == NULL || !JB_ROOT_IS_OBJECT(options))
		return 0;
	v = WireInt(WireField(&options->root, "max_tokens"));
	return (v > 0 && v <= INT_MAX) ? (int) v : 0;
}

static Jsonb *
RemoteComplete(Provider prov, const char *model, Jsonb *messages,
			   Jsonb *options, char **content, ProviderUsage *usage)
{
	HttpRequest req;
	HttpResponse resp;
	Jsonb	   *j;
	JsonbValue *msgval;
	char	   *key;
	char	   *auth;

	key = ProviderGetKey(prov);
	auth = WireAuthHeader(prov, key);
	memset(&req, 0, sizeof(req));
	req.provider = prov->name;
	req.url = WireUrl(prov, model, true);
	req.auth_header = auth;
	req.body = WireChatBody(prov, model, messages, options, &req.body_len);
	req.ca_bundle = prov->ca_bundle;
	req.proxy = prov->proxy;
	req.secret = key;
	ProviderHttpPost(prov, &req, &resp);
	usage->requests = 1;
	usage->retries = resp.attempts - 1;
	if (resp.status < 200 || resp.status > 299)
		WireHttpError(prov, &resp, key);
	if (key)
		explicit_bzero(key, strlen(key));
	if (auth)
		explicit_bzero(auth, strlen(auth));

	j = WireParse(resp.body, resp.body_len);
	if (j == NULL || !JB_ROOT_IS_OBJECT(j))
		WireInvalid(prov, "The response is not a JSON object.");
	if (prov->kind == PROVIDER_OLLAMA)
	{
		msgval = WireField(&j->root, "message");
		usage->input_tokens = WireInt(WireField(&j->root, "prompt_eval_count"));
		usage->output_tokens = WireInt(WireField(&j->root, "eval_count"));
	}
	else
	{
		JsonbContainer *choices = WireContainer(WireField(&j->root, "choices"), true);
		JsonbContainer *u = WireContainer(WireField(&j->root, "usage"), false);

		if (choices == NULL || JsonContainerSize(choices) < 1)
			WireInvalid(prov, "The response has no \"choices\".");
		msgval = WireField(WireContainer(getIthJsonbValueFromContainer(choices, 0), false),
						   "message");
		usage->input_tokens = WireInt(WireField(u, "prompt_tokens"));
		usage->output_tokens = WireInt(WireField(u, "completion_tokens"));
	}
	if (WireContainer(msgval, false) == NULL)
		WireInvalid(prov, "The response has no \"message\" object.");
	msgval = WireField(WireContainer(msgval, false), "content");
	if (msgval != NULL && msgval->type != jbvString && msgval->type != jbvNull)
		WireInvalid(prov, "The message's \"content\" is not a string.");
	*content = WireString(msgval);
	if (usage->input_tokens < 0)
	{
		char	   *m = JsonbToCString(NULL, &messages->root, VARSIZE(messages));

		usage->input_tokens = GenaiCountTokens(m, strlen(m));
	}
	if (usage->output_tokens < 0 && *content)
		usage->output_tokens = GenaiCountTokens(*content, strlen(*content));
	return j;
}

typedef struct CompleteCall
{
	Provider	prov;
	const char *model;
	Jsonb	   *messages;
	Jsonb	   *options;
	char	  **content;
	Jsonb	   *result;
	ProviderUsage *usage;
} CompleteCall;

static void
CompleteCallRun(void *arg)
{
	CompleteCall *c = (CompleteCall *) arg;
	ProviderUsage *u = c->usage;

	if (c->prov->kind == PROVIDER_LOCAL)
	{
		*c->content = LocalChat(c->messages, OptionMaxTokens(c->options), &u->input_tokens);
		u->output_tokens = GenaiCountTokens(*c->content, strlen(*c->content));
		c->result = LocalResponse(*c->content, u->input_tokens, u->output_tokens);
	}
	else
		c->result = RemoteComplete(c->prov, c->model, c->messages, c->options,
								   c->content, u);
}

Jsonb *
ProviderComplete(Provider prov, const char *model, Jsonb *messages,
				 Jsonb *options, char **content)
{
	ProviderUsage usage;
	CompleteCall call;
	int64		estimate = 0;

	CheckMessages(messages);
	memset(&usage, 0, sizeof(usage));
	usage.operation = "complete";
	usage.inputs = JB_ROOT_COUNT(messages);
	usage.input_tokens = -1;
	usage.output_tokens = -1;

	if (prov->kind == PROVIDER_LOCAL)
	{
		if (model != NULL && strcmp(model, GENAI_LOCAL_CHAT_MODEL) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("provider \"%s\" has no chat model \"%s\"", prov->name, model),
					 errhint("The local provider's chat model is \"%s\".", GENAI_LOCAL_CHAT_MODEL)));
		model = GENAI_LOCAL_CHAT_MODEL;
	}
	else
	{
		if (model == NULL)
			model = prov->chat_model;
		if (model == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no chat model given and provider \"%s\" has no default", prov->name),
					 errhint("Pass a model, or set the provider's \"chat_model\" option.")));
	}
	usage.model = model;
	if (UsageActive() && genai_token_budget > 0)
	{
		char	   *m = JsonbToCString(NULL, &messages->root, VARSIZE(messages));

		estimate = GenaiCountTokens(m, strlen(m)) + OptionMaxTokens(options);
	}

	call.prov = prov;
	call.model = model;
	call.messages = messages;
	call.options = options;
	call.content = content;
	call.result = NULL;
	call.usage = &usage;
	LedgerRun(prov, &usage, estimate, CompleteCallRun, &call);
	return call.result;
}

Datum
llm_complete_text(PG_FUNCTION_ARGS)
{
	char	   *prompt;
	char	   *model = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Provider	prov;
	StringInfoData buf;
	char	   *content = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	prompt = text_to_cstring(PG_GETARG_TEXT_PP(0));
	prov = ProviderLookup(PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)));

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	if (!PG_ARGISNULL(2))
	{
		appendStringInfoString(&buf, "{\"role\": \"system\", \"content\": ");
		escape_json(&buf, text_to_cstring(PG_GETARG_TEXT_PP(2)));
		appendStringInfoString(&buf, "}, ");
	}
	appendStringInfoString(&buf, "{\"role\": \"user\", \"content\": ");
	escape_json(&buf, prompt);
	appendStringInfoString(&buf, "}]");
	{
		Jsonb	   *messages = JsonbFromText(buf.data);
		StringInfoData opt;

		initStringInfo(&opt);
		appendStringInfoChar(&opt, '{');
		if (!PG_ARGISNULL(3))
		{
			float8		t = PG_GETARG_FLOAT8(3);

			if (isnan(t) || t < 0 || t > 2)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("temperature must be between 0 and 2")));
			appendStringInfo(&opt, "\"temperature\": %g", t);
		}
		if (!PG_ARGISNULL(4))
		{
			int32		m = PG_GETARG_INT32(4);

			if (m < 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("max_tokens must be at least 1")));
			appendStringInfo(&opt, "%s\"max_tokens\": %d", opt.len > 1 ? ", " : "", m);
		}
		appendStringInfoChar(&opt, '}');
		(void) ProviderComplete(prov, model, messages, JsonbFromText(opt.data), &content);
	}
	if (content == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(content));
}

Datum
llm_complete_messages(PG_FUNCTION_ARGS)
{
	Jsonb	   *messages;
	char	   *model = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	Provider	prov;
	char	   *content;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	messages = PG_GETARG_JSONB_P(0);
	if (options != NULL && !JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));
	prov = ProviderLookup(PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)));
	PG_RETURN_JSONB_P(ProviderComplete(prov, model, messages, options, &content));
}
