/*-------------------------------------------------------------------------
 *
 * provider.c
 *	  Providers as foreign servers: the option validator, the lookup that
 *	  checks the caller's USAGE, and credential resolution.
 *
 * The validator is where the security model is enforced.  Server options
 * (visible to every role in pg_foreign_server) never hold a key; options
 * that make the server read a file or the environment, or that would send
 * such a key elsewhere, may only be set by a superuser; user mappings
 * (which any role with USAGE may create for itself, and whose options that
 * role can read) accept only the credential "api_key".
 *
 * IDENTIFICATION
 *	  src/providers/provider.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <stdlib.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "providers.h"
#include "tokenizer/tokenizer.h"

PG_FUNCTION_INFO_V1(genai_fdw_validator);

char	   *genai_default_provider = NULL;

/* the wrapper's name; servers of other wrappers are not providers */
#define GENAI_FDW_NAME "genai"

/* option names allowed on a server, and whether only a superuser may set them */
typedef struct ServerOption
{
	const char *name;
	bool		superuser_only;
} ServerOption;

static const ServerOption server_options[] = {
	{"kind", false},
	{"base_url", false},
	{"embedding_model", false},
	{"chat_model", false},
	{"api_version", false},
	{"max_batch_inputs", false},
	{"max_batch_tokens", false},
	{"max_concurrency", false},
	{"requests_per_minute", false},
	{"proxy", false},
	{"tokenizer", false},
	{"ca_bundle", true},
	{"api_key_env", true},
	{"api_key_file", true},
	{NULL, false}
};

const char *
ProviderKindName(ProviderKind kind)
{
	switch (kind)
	{
		case PROVIDER_LOCAL:
			return "local";
		case PROVIDER_OPENAI:
			return "openai";
		case PROVIDER_AZURE:
			return "azure";
		case PROVIDER_OLLAMA:
			return "ollama";
	}
	return "?";
}

static bool
ParseKind(const char *value, ProviderKind *kind)
{
	if (strcmp(value, "local") == 0)
		*kind = PROVIDER_LOCAL;
	else if (strcmp(value, "openai") == 0)
		*kind = PROVIDER_OPENAI;
	else if (strcmp(value, "azure") == 0)
		*kind = PROVIDER_AZURE;
	else if (strcmp(value, "ollama") == 0)
		*kind = PROVIDER_OLLAMA;
	else
		return false;
	return true;
}

static int
ParsePositiveOption(const char *name, const char *value)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < 1 || v > 100000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errdetail("The value must be an integer between 1 and 100000000.")));
	return (int) v;
}

/*
 * http:// or https:// followed by a host; nothing else may be called (or,
 * for "proxy", used as a proxy).  No credentials: options are public.
 */
static void
CheckUrl(const char *name, const char *value)
{
	const char *rest;

	if (pg_strncasecmp(value, "https://", 8) == 0)
		rest = value + 8;
	else if (pg_strncasecmp(value, "http://", 7) == 0)
		rest = value + 7;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail("Only http:// and https:// URLs are allowed.")));
	if (*rest == '\0' || *rest == '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail("The URL has no host.")));
	for (; *rest; rest++)
		if ((unsigned char) *rest <= ' ' || *rest == '?' || *rest == '#' ||
			*rest == '@' || *rest == '\\')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"%s\"", name),
					 errdetail("The URL may not contain spaces, control characters, credentials, a query or a fragment.")));
}

static void
ValidateServerOptions(List *options)
{
	ListCell   *lc;
	char	   *kind = NULL;
	char	   *base_url = NULL;
	bool		limits = false;
	ProviderKind k;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const ServerOption *opt;
		char	   *value = defGetString(def);

		for (opt = server_options; opt->name; opt++)
			if (strcmp(opt->name, def->defname) == 0)
				break;
		if (opt->name == NULL)
		{
			if (strcmp(def->defname, "api_key") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a provider's server options cannot hold an API key"),
						 errdetail("Server options are visible to every role."),
						 errhint("Put the key in a user mapping, or name a server-side file or environment variable with \"api_key_file\" or \"api_key_env\".")));
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("unrecognized provider option \"%s\"", def->defname),
					 errhint("Valid options are kind, base_url, embedding_model, chat_model, api_version, max_batch_inputs, max_batch_tokens, max_concurrency, requests_per_minute, tokenizer, proxy, ca_bundle, api_key_env and api_key_file.")));
		}
		if (opt->superuser_only && !superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only superusers may set or keep provider option \"%s\"", def->defname),
					 errdetail("The option makes the server read a local file or its environment.")));

		if (strcmp(def->defname, "kind") == 0)
			kind = value;
		else if (strcmp(def->defname, "base_url") == 0)
		{
			CheckUrl(def->defname, value);
			base_url = value;
		}
		else if (strcmp(def->defname, "max_batch_inputs") == 0 ||
				 strcmp(def->defname, "max_batch_tokens") == 0)
			(void) ParsePositiveOption(def->defname, value);
		else if (strcmp(def->defname, "max_concurrency") == 0 ||
				 strcmp(def->defname, "requests_per_minute") == 0)
		{
			(void) ParsePositiveOption(def->defname, value);
			limits = true;
		}
		else if (strcmp(def->defname, "proxy") == 0)
			CheckUrl(def->defname, value);
		else if (strcmp(def->defname, "tokenizer") == 0)
		{
			if (strcmp(value, "bytes") != 0)
				(void) TokenizerGetEncoding(value);
		}
		else if (strcmp(def->defname, "api_key_file") == 0 ||
				 strcmp(def->defname, "ca_bundle") == 0)
		{
			if (!is_absolute_path(value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be an absolute path", def->defname)));
		}
	}

	if (kind == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a provider needs the option \"kind\""),
				 errhint("Valid kinds are local, openai, azure and ollama.")));
	if (!ParseKind(kind, &k))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized provider kind \"%s\"", kind),
				 errhint("Valid kinds are local, openai, azure and ollama.")));
	if (k == PROVIDER_LOCAL && base_url != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a provider of kind \"local\" takes no base_url")));
	if (k != PROVIDER_LOCAL && base_url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a provider of kind \"%s\" needs the option \"base_url\"", kind)));
	if (limits && !UsageActive())
		ereport(WARNING,
				(errmsg("provider limits are enforced only with shared_preload_libraries = 'genai'"),
				 errdetail("Without it, max_concurrency and requests_per_minute are ignored.")));
}

/*
 * Validator of the genai foreign-data wrapper.  User mappings accept only
 * "api_key": a role with USAGE may create its own mapping, and must not be
 * able to redirect calls (and another role's key) anywhere.
 */
Datum
genai_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;

	switch (catalog)
	{
		case ForeignServerRelationId:
			ValidateServerOptions(options);
			break;
		case UserMappingRelationId:
			foreach(lc, options)
			{
				DefElem    *def = (DefElem *) lfirst(lc);

				if (strcmp(def->defname, "api_key") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
							 errmsg("unrecognized user mapping option \"%s\"", def->defname),
							 errhint("A user mapping of a provider accepts only \"api_key\".")));
				if (strlen(defGetString(def)) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"api_key\" cannot be empty")));
			}
			break;
		case ForeignDataWrapperRelationId:
		case ForeignTableRelationId:
		default:
			if (options != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("the genai wrapper takes options only on servers and user mappings")));
			break;
	}
	PG_RETURN_VOID();
}

/*
 * Finds the provider by server name (NULL: genai.default_provider), checks
 * that it is a genai server and that the current user has USAGE on it, and
 * reads its options.  The result is palloc'd in the current context.
 */
Provider
ProviderLookup(const char *name)
{
	ForeignServer *server;
	ForeignDataWrapper *fdw;
	Provider	prov;
	AclResult	aclresult;
	ListCell   *lc;
	char	   *tokenizer = NULL;

	if (name == NULL)
		name = genai_default_provider;
	if (name == NULL || name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no provider given and genai.default_provider is not set")));

	server = GetForeignServerByName(name, true);
	if (server != NULL)
	{
		fdw = GetForeignDataWrapper(server->fdwid);
		if (strcmp(fdw->fdwname, GENAI_FDW_NAME) != 0)
			server = NULL;
	}
	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("provider \"%s\" does not exist", name),
				 errhint("Providers are foreign servers of the genai foreign-data wrapper.")));

	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for provider \"%s\"", name),
				 errhint("An administrator grants it with GRANT USAGE ON FOREIGN SERVER.")));

	prov = (Provider) palloc0(sizeof(ProviderData));
	prov->serverid = server->serverid;
	prov->name = pstrdup(server->servername);
	prov->kind = PROVIDER_OPENAI;
	prov->max_batch_inputs = 0;
	prov->max_batch_tokens = 0;
	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		char	   *value = defGetString(def);

		if (strcmp(def->defname, "kind") == 0)
		{
			if (!ParseKind(value, &prov->kind))
				elog(ERROR, "unrecognized provider kind \"%s\"", value);
		}
		else if (strcmp(def->defname, "base_url") == 0)
			prov->base_url = value;
		else if (strcmp(def->defname, "embedding_model") == 0)
			prov->embedding_model = value;
		else if (strcmp(def->defname, "chat_model") == 0)
			prov->chat_model = value;
		else if (strcmp(def->defname, "api_version") == 0)
			prov->api_version = value;
		else if (strcmp(def->defname, "api_key_env") == 0)
			prov->api_key_env = value;
		else if (strcmp(def->defname, "api_key_file") == 0)
			prov->api_key_file = value;
		else if (strcmp(def->defname, "ca_bundle") == 0)
			prov->ca_bundle = value;
		else if (strcmp(def->defname, "proxy") == 0)
			prov->proxy = value;
		else if (strcmp(def->defname, "max_batch_inputs") == 0)
			prov->max_batch_inputs = ParsePositiveOption(def->defname, value);
		else if (strcmp(def->defname, "max_batch_tokens") == 0)
			prov->max_batch_tokens = ParsePositiveOption(def->defname, value);
		else if (strcmp(def->defname, "max_concurrency") == 0)
			prov->max_concurrency = ParsePositiveOption(def->defname, value);
		else if (strcmp(def->defname, "requests_per_minute") == 0)
			prov->requests_per_minute = ParsePositiveOption(def->defname, value);
		else if (strcmp(def->defname, "tokenizer") == 0)
			tokenizer = value;
	}

	/*
	 * Batch token counts: OpenAI's embedding models use cl100k_base; other
	 * kinds' models have other tokenizers, so one token per byte (an upper
	 * bound for byte-level BPE) unless the administrator names one.
	 */
	if (tokenizer == NULL)
		tokenizer = (prov->kind == PROVIDER_OPENAI || prov->kind == PROVIDER_AZURE) ?
			"cl100k_base" : "bytes";
	prov->tokenizer = (strcmp(tokenizer, "bytes") == 0) ? NULL : tokenizer;

	/* the limits of the OpenAI embeddings API, unless told otherwise */
	if (prov->max_batch_inputs == 0)
		prov->max_batch_inputs = (prov->kind == PROVIDER_OLLAMA) ? 512 : 2048;
	if (prov->max_batch_tokens == 0)
		prov->max_batch_tokens = 300000;
	return prov;
}

/* the "api_key" option of the user mapping for (userid, serverid), or NULL */
static char *
UserMappingKey(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;
	char	   *key = NULL;
	ListCell   *lc;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid), ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NULL;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	if (!isnull)
	{
		foreach(lc, untransformRelOptions(datum))
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "api_key") == 0)
				key = pstrdup(defGetString(def));
		}
	}
	ReleaseSysCache(tp);
	return key;
}

/* the first line of a file, without surrounding white space */
static char *
ReadKeyFile(Provider prov)
{
	FILE	   *f;
	char		buf[4096];
	char	   *start;
	char	   *end;
	size_t		n;

	f = AllocateFile(prov->api_key_file, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the API key file of provider \"%s\": %m",
						prov->name)));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	FreeFile(f);
	buf[n] = '\0';
	start = buf;
	while (*start && isspace((unsigned char) *start))
		start++;
	end = start;
	while (*end && *end != '\n' && *end != '\r')
		end++;
	while (end > start && isspace((unsigned char) end[-1]))
		end--;
	*end = '\0';
	start = pstrdup(start);
	explicit_bzero(buf, sizeof(buf));
	if (*start == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the API key file of provider \"%s\" is empty", prov->name)));
	return start;
}

/*
 * The key to send, or NULL when the provider needs none.  Order: the
 * caller's own user mapping, the PUBLIC mapping, the server's key file,
 * the server's environment variable.  The caller must not print it.
 */
char *
ProviderGetKey(Provider prov)
{
	char	   *key;

	key = UserMappingKey(GetUserId(), prov->serverid);
	if (key == NULL)
		key = UserMappingKey(InvalidOid, prov->serverid);
	if (key == NULL && prov->api_key_file != NULL)
		key = ReadKeyFile(prov);
	if (key == NULL && prov->api_key_env != NULL)
	{
		const char *v = getenv(prov->api_key_env);

		if (v == NULL || v[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("environment variable \"%s\" named by provider \"%s\" is not set",
							prov->api_key_env, prov->name),
					 errhint("Set it in the environment of the PostgreSQL server.")));
		key = pstrdup(v);
	}
	return key;
}
