/*-------------------------------------------------------------------------
 *
 * wire.h
 *	  Private to the providers subsystem: request building and response
 *	  checking for remote providers (wire.c).
 *
 * IDENTIFICATION
 *	  src/providers/wire.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_WIRE_H
#define GENAI_WIRE_H

#include "http/http.h"
#include "providers.h"

extern char *WireUrl(Provider prov, const char *model, bool chat);
extern char *WireAuthHeader(Provider prov, const char *key);
extern char *WireEmbedBody(Provider prov, const char *model, int dimensions,
						   int n, char **texts, size_t *len);
extern char *WireChatBody(Provider prov, const char *model, Jsonb *messages,
						  Jsonb *options, size_t *len);
extern Jsonb *WireParse(const char *body, size_t len);
extern JsonbValue *WireField(JsonbContainer *c, const char *key);
extern JsonbContainer *WireContainer(JsonbValue *v, bool array);
extern int64 WireInt(JsonbValue *v);
extern char *WireString(JsonbValue *v);
extern float *WireVector(Provider prov, JsonbValue *v, int *dim);
extern char *WireErrorMessage(const char *body, size_t len, const char *secret);
extern void WireInvalid(Provider prov, const char *what) pg_attribute_noreturn();
extern void WireHttpError(Provider prov, const HttpResponse *resp,
						  const char *secret) pg_attribute_noreturn();

#endif							/* GENAI_WIRE_H */
