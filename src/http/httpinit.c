/*-------------------------------------------------------------------------
 *
 * httpinit.c
 *	  Registers the http subsystem's settings at load time.
 *
 * IDENTIFICATION
 *	  src/http/httpinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "genai.h"
#include "http.h"

int			genai_http_connect_timeout = 10000;
int			genai_http_timeout = 120000;
int			genai_http_max_retries = 3;
int			genai_http_retry_delay = 500;
int			genai_http_max_response_size = 65536;

void
HttpInit(void)
{
	DefineCustomIntVariable("genai.http_connect_timeout",
							"Time allowed to connect to a provider.",
							NULL,
							&genai_http_connect_timeout,
							10000, 1, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("genai.http_timeout",
							"Time allowed for one request to a provider, connection included.",
							"Retries each get this much time; statement_timeout bounds the whole call.",
							&genai_http_timeout,
							120000, 1, 24 * 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("genai.http_max_retries",
							"Retries of a request after a connection error, 429 or 5xx.",
							NULL,
							&genai_http_max_retries,
							3, 0, 10,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("genai.http_retry_delay",
							"Delay before the first retry; it doubles for each further retry.",
							"A Retry-After header from the provider takes precedence.",
							&genai_http_retry_delay,
							500, 1, 60000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("genai.http_max_response_size",
							"Largest response accepted from a provider.",
							NULL,
							&genai_http_max_response_size,
							65536, 1, 512 * 1024,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
}
