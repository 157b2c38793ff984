/*-------------------------------------------------------------------------
 *
 * http.h
 *	  Public interface of the http subsystem: one POST of a JSON body to a
 *	  provider, waited on with the backend's latch, with retries.
 *
 * IDENTIFICATION
 *	  src/http/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef GENAI_HTTP_H
#define GENAI_HTTP_H

typedef struct HttpRequest
{
	const char *provider;		/* provider name, for messages */
	const char *url;			/* http:// or https:// only */
	const char *auth_header;	/* e.g. "Authorization: Bearer ...", or NULL */
	const char *body;			/* UTF-8 JSON */
	size_t		body_len;
	const char *ca_bundle;		/* NULL: the system's CA store */
	const char *proxy;			/* NULL: no proxy at all */
	const char *secret;			/* scrubbed from any text we print, or NULL */
	/* called before every attempt (retries too), e.g. to wait for a rate limit */
	void		(*before_attempt) (void *arg);
	void	   *before_attempt_arg;
} HttpRequest;

typedef struct HttpResponse
{
	long		status;			/* HTTP status of the last attempt */
	char	   *body;			/* palloc'd, NUL-terminated, UTF-8 as received */
	size_t		body_len;
	int			attempts;		/* requests sent, retries included */
	double		elapsed_ms;		/* whole call, retries and waits included */
} HttpResponse;

/* settings (httpinit.c) */
extern int	genai_http_connect_timeout;
extern int	genai_http_timeout;
extern int	genai_http_max_retries;
extern int	genai_http_retry_delay;
extern int	genai_http_max_response_size;

/*
 * Sends the request, retrying connection failures, 429 and 5xx.  Returns
 * the last response whatever its status (the caller reads the provider's
 * own error message from it); raises an ERROR only for transport failures
 * (SQLSTATE class 08), an oversized response (54000) or an interrupt.
 */
extern void HttpPost(const HttpRequest *req, HttpResponse *resp);

/* sleeps ms milliseconds on the latch, answering interrupts */
extern void HttpSleep(double ms);

/* copy of s with every occurrence of secret replaced by "***" */
extern char *HttpScrub(const char *s, const char *secret);

#endif							/* GENAI_HTTP_H */
