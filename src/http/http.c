/*-------------------------------------------------------------------------
 *
 * http.c
 *	  A libcurl client that waits on the backend's latch.
 *
 * One request at a time per backend.  The transfer is driven by libcurl's
 * multi "socket" interface: libcurl tells us (socket callback) which
 * sockets it wants to wait on and (timer callback) when it wants to be
 * called back; we wait for those with a WaitEventSet that also holds the
 * process latch and the postmaster-death event, and call
 * CHECK_FOR_INTERRUPTS after every wake-up.  Query cancel,
 * statement_timeout and pg_terminate_backend set the latch, so they take
 * effect within one wake-up even when the peer sends nothing.
 *
 * Nothing in a libcurl callback can raise an ERROR: the response buffer
 * is malloc'd and capped (the write callback returns 0 to abort, and the
 * cause is raised after libcurl has returned).  Everything that outlives
 * a request -- the easy handle added to the multi handle, the header
 * list, the response buffer and a live WaitEventSet (PG15 does not free
 * one when an ERROR unwinds) -- is released in a PG_CATCH and after every
 * request.  The multi handle and its connection pool live for the backend,
 * so a second request to the same host reuses the connection.  Sockets
 * are opened through a callback that reserves them with AcquireExternalFD.
 *
 * Only http and https, never a redirect (the key would follow it to
 * another host), TLS peer and host verification always on, no proxy
 * unless the provider names one (the environment's proxy variables are
 * ignored).
 *
 * IDENTIFICATION
 *	  src/http/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <unistd.h>

#include <limits.h>

#include <curl/curl.h>

#include "access/xact.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "http.h"

#define HTTP_MAX_SOCKETS 8
#define HTTP_MAX_BACKOFF_MS 30000
#define HTTP_MAX_RETRY_AFTER_MS 60000

typedef struct HttpSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} HttpSocket;

typedef struct HttpBuffer
{
	char	   *data;			/* malloc'd */
	size_t		len;
	size_t		cap;
	size_t		limit;
	bool		overflow;		/* response exceeded limit */
	bool		oom;			/* malloc failed */
} HttpBuffer;

static CURLM *http_multi = NULL;
static CURL *http_easy = NULL;
static bool http_easy_added = false;
static struct curl_slist *http_headers = NULL;
static HttpBuffer http_buf;
static HttpSocket http_socks[HTTP_MAX_SOCKETS];
static int	http_nsocks = 0;
static bool http_sock_overflow = false;
static bool http_timer_set = false;
static TimestampTz http_timer_at = 0;
static WaitEventSet *http_live_set = NULL;

/* ---- libcurl callbacks: no ereport, no palloc ---- */

static size_t
HttpWriteCallback(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpBuffer *b = (HttpBuffer *) userdata;
	size_t		n = size * nmemb;

	if (n > b->limit || b->len > b->limit - n)
	{
		b->overflow = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap)
	{
		size_t		newcap = Max(b->cap * 2, 16384);
		char	   *p;

		while (newcap < b->len + n + 1)
			newcap *= 2;
		if (newcap > b->limit + 1)
			newcap = b->limit + 1;
		p = realloc(b->data, newcap);
		if (p == NULL)
		{
			b->oom = true;
			return 0;
		}
		b->data = p;
		b->cap = newcap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

static int
HttpSocketCallback(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < http_nsocks; i++)
		if (http_socks[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < http_nsocks)
			http_socks[i] = http_socks[--http_nsocks];
		return 0;
	}
	if (i == http_nsocks)
	{
		if (http_nsocks == HTTP_MAX_SOCKETS)
		{
			http_sock_overflow = true;
			return -1;
		}
		http_socks[http_nsocks++].fd = s;
	}
	http_socks[i].what = what;
	return 0;
}

static int
HttpTimerCallback(CURLM *multi, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		http_timer_set = false;
	else
	{
		http_timer_set = true;
		http_timer_at = GetCurrentTimestamp() + (TimestampTz) timeout_ms * 1000;
	}
	return 0;
}

/* Sockets count against the backend's file descriptor budget. */
static curl_socket_t
HttpOpenSocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	curl_socket_t s;

	if (!AcquireExternalFD())
	{
		errno = EMFILE;
		return CURL_SOCKET_BAD;
	}
	s = socket(addr->family, addr->socktype, addr->protocol);
	if (s == CURL_SOCKET_BAD)
		ReleaseExternalFD();
	return s;
}

static int
HttpCloseSocket(void *clientp, curl_socket_t s)
{
	int			rc = close(s);

	ReleaseExternalFD();
	return rc;
}

/* ---- helpers ---- */

char *
HttpScrub(const char *s, const char *secret)
{
	StringInfoData out;
	size_t		slen;
	const char *p;

	if (s == NULL)
		return NULL;
	if (secret == NULL || (slen = strlen(secret)) == 0)
		return pstrdup(s);
	initStringInfo(&out);
	while ((p = strstr(s, secret)) != NULL)
	{
		appendBinaryStringInfo(&out, s, p - s);
		appendStringInfoString(&out, "***");
		s = p + slen;
	}
	appendStringInfoString(&out, s);
	return out.data;
}

static void
HttpEnsureHandles(void)
{
	if (http_multi != NULL)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	http_easy = curl_easy_init();
	http_multi = curl_multi_init();
	if (http_easy == NULL || http_multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create libcurl handles.")));
	curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, HttpSocketCallback);
	curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, HttpTimerCallback);
	curl_multi_setopt(http_multi, CURLMOPT_MAXCONNECTS, 8L);
}

/*
 * Releases what a request holds, after it ended or from an ERROR.  The
 * header list carries the key: it is wiped before it is freed.
 */
static void
HttpRelease(void)
{
	if (http_live_set != NULL)
	{
		FreeWaitEventSet(http_live_set);
		http_live_set = NULL;
	}
	if (http_easy_added)
	{
		curl_multi_remove_handle(http_multi, http_easy);
		http_easy_added = false;
	}
	if (http_easy != NULL)
		curl_easy_reset(http_easy);
	if (http_headers != NULL)
	{
		struct curl_slist *h;

		for (h = http_headers; h; h = h->next)
			explicit_bzero(h->data, strlen(h->data));
		curl_slist_free_all(http_headers);
		http_headers = NULL;
	}
	free(http_buf.data);
	memset(&http_buf, 0, sizeof(http_buf));
	http_nsocks = 0;
	http_timer_set = false;
}

static void
HttpSetOptions(const HttpRequest *req, char *errbuf)
{
	CURL	   *e = http_easy;

	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) genai_http_connect_timeout);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) genai_http_timeout);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_bundle)
		curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_bundle);
	/* "" disables the proxy environment variables */
	curl_easy_setopt(e, CURLOPT_PROXY, req->proxy ? req->proxy : "");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "genai/1.0");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, http_headers);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) http_buf.limit);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, HttpWriteCallback);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &http_buf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, HttpOpenSocket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, HttpCloseSocket);
}

/*
 * Waits once for the latch, a socket libcurl is interested in, or its
 * timer, then lets libcurl work.  Returns the number of transfers still
 * running.
 */
static int
HttpWaitOnce(void)
{
	WaitEvent	occurred[HTTP_MAX_SOCKETS + 2];
	HttpSocket	ready[HTTP_MAX_SOCKETS];
	int			nready = 0;
	int			nevents;
	int			running = 1;
	long		timeout = 1000;

	if (http_timer_set)
	{
		long		left = (long) ((http_timer_at - GetCurrentTimestamp()) / 1000);

		timeout = Min(timeout, Max(left, 0));
	}

	http_live_set = CreateWaitEventSet(TopMemoryContext, http_nsocks + 2);
	AddWaitEventToSet(http_live_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(http_live_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < http_nsocks; i++)
	{
		uint32		ev = 0;

		if (http_socks[i].what & CURL_POLL_IN)
			ev |= WL_SOCKET_READABLE;
		if (http_socks[i].what & CURL_POLL_OUT)
			ev |= WL_SOCKET_WRITEABLE;
		if (ev != 0)
			AddWaitEventToSet(http_live_set, ev, http_socks[i].fd, NULL, NULL);
	}
	nevents = WaitEventSetWait(http_live_set, timeout, occurred, lengthof(occurred),
							   PG_WAIT_EXTENSION);
	FreeWaitEventSet(http_live_set);
	http_live_set = NULL;

	for (int i = 0; i < nevents; i++)
	{
		if (occurred[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		else if (occurred[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			ready[nready].fd = occurred[i].fd;
			ready[nready].what = 0;
			if (occurred[i].events & WL_SOCKET_READABLE)
				ready[nready].what |= CURL_CSELECT_IN;
			if (occurred[i].events & WL_SOCKET_WRITEABLE)
				ready[nready].what |= CURL_CSELECT_OUT;
			nready++;
		}
	}

	CHECK_FOR_INTERRUPTS();

	for (int i = 0; i < nready; i++)
		curl_multi_socket_action(http_multi, ready[i].fd, ready[i].what, &running);
	if (http_timer_set && GetCurrentTimestamp() >= http_timer_at)
	{
		http_timer_set = false;
		curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	return running;
}

/* One attempt.  Returns libcurl's result; sets *status and *retry_after_ms. */
static CURLcode
HttpAttempt(const HttpRequest *req, char *errbuf, long *status, long *retry_after_ms)
{
	CURLMsg    *msg;
	int			pending;
	int			running = 1;
	CURLcode	result = CURLE_OK;
	curl_off_t	retry_after = 0;

	http_buf.len = 0;
	http_buf.overflow = false;
	http_buf.oom = false;
	errbuf[0] = '\0';
	http_sock_overflow = false;
	curl_easy_reset(http_easy);
	HttpSetOptions(req, errbuf);

	if (curl_multi_add_handle(http_multi, http_easy) != CURLM_OK)
		elog(ERROR, "could not add a libcurl handle");
	http_easy_added = true;
	curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	while (running > 0)
		running = HttpWaitOnce();

	while ((msg = curl_multi_info_read(http_multi, &pending)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == http_easy)
			result = msg->data.result;

	*status = 0;
	curl_easy_getinfo(http_easy, CURLINFO_RESPONSE_CODE, status);
	curl_easy_getinfo(http_easy, CURLINFO_RETRY_AFTER, &retry_after);
	*retry_after_ms = (retry_after > 0) ? (long) Min(retry_after * 1000, (curl_off_t) INT_MAX) : 0;

	curl_multi_remove_handle(http_multi, http_easy);
	http_easy_added = false;
	return result;
}

static bool
HttpRetryableCode(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

static bool
HttpRetryableStatus(long status)
{
	return status == 429 || status == 500 || status == 502 ||
		status == 503 || status == 504;
}

/*
 * Sleeps ms milliseconds on the latch, answering interrupts (so cancel and
 * statement_timeout end the wait).  Also the provider limiter's wait.
 */
void
HttpSleep(double ms)
{
	TimestampTz end = GetCurrentTimestamp() + (TimestampTz) (ms * 1000.0);

	for (;;)
	{
		long		left = (long) ((end - GetCurrentTimestamp()) / 1000);

		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Raises the ERROR for a failed transfer. */
static void
HttpReportFailure(const HttpRequest *req, CURLcode rc, const char *errbuf, int attempts)
{
	char	   *detail = HttpScrub(errbuf[0] ? errbuf : curl_easy_strerror(rc), req->secret);

	if (http_buf.overflow || rc == CURLE_FILESIZE_EXCEEDED)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("response of provider \"%s\" is too large", req->provider),
				 errdetail("The limit is %d kB.", genai_http_max_response_size),
				 errhint("Raise genai.http_max_response_size.")));
	if (http_buf.oom)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not buffer the response of provider \"%s\".", req->provider)));
	switch (rc)
	{
		case CURLE_OPERATION_TIMEDOUT:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("request to provider \"%s\" timed out", req->provider),
					 errdetail("%s (attempts: %d)", detail, attempts),
					 errhint("Increase genai.http_timeout or genai.http_connect_timeout, or check the provider.")));
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to provider \"%s\"", req->provider),
					 errdetail("%s (attempts: %d)", detail, attempts)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not receive a response from provider \"%s\"", req->provider),
					 errdetail("%s (attempts: %d)", detail, attempts)));
			break;
	}
}

/*
 * The moment the statement will be cancelled by statement_timeout, or 0.
 * Retries that would end after it are not started.
 */
static TimestampTz
HttpStatementDeadline(void)
{
	if (StatementTimeout <= 0)
		return 0;
	return GetCurrentStatementStartTimestamp() + (TimestampTz) StatementTimeout * 1000;
}

void
HttpPost(const HttpRequest *req, HttpResponse *resp)
{
	char		errbuf[CURL_ERROR_SIZE];
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz deadline = HttpStatementDeadline();
	int			attempts = 0;
	CURLcode	rc = CURLE_OK;
	long		status = 0;

	HttpEnsureHandles();
	PG_TRY();
	{
		http_headers = curl_slist_append(NULL, "Content-Type: application/json");
		if (http_headers)
			http_headers = curl_slist_append(http_headers, "Accept: application/json");
		/* no "Expect: 100-continue" round trip for large bodies */
		if (http_headers)
			http_headers = curl_slist_append(http_headers, "Expect:");
		if (http_headers && req->auth_header)
			http_headers = curl_slist_append(http_headers, req->auth_header);
		if (http_headers == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		http_buf.limit = (size_t) genai_http_max_response_size * 1024;

		for (;;)
		{
			long		retry_after_ms;
			long		delay;

			attempts++;
			if (req->before_attempt)
				req->before_attempt(req->before_attempt_arg);
			rc = HttpAttempt(req, errbuf, &status, &retry_after_ms);
			if (rc == CURLE_OK && !HttpRetryableStatus(status))
				break;
			if (rc != CURLE_OK && !HttpRetryableCode(rc))
				break;
			if (http_buf.overflow || http_buf.oom || attempts > genai_http_max_retries)
				break;

			/* exponential backoff with jitter, or what the provider asked for */
			delay = genai_http_retry_delay;
			for (int i = 1; i < attempts && delay < HTTP_MAX_BACKOFF_MS; i++)
				delay *= 2;
			delay = Min(delay, HTTP_MAX_BACKOFF_MS);
			delay = (long) (delay * (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state)));
			if (retry_after_ms > 0)
			{
				if (retry_after_ms > HTTP_MAX_RETRY_AFTER_MS)
					break;
				delay = retry_after_ms;
			}
			if (deadline != 0 &&
				GetCurrentTimestamp() + (TimestampTz) delay * 1000 >= deadline)
				break;
			ereport(DEBUG1,
					(errmsg_internal("genai: retrying request to provider \"%s\" in %ld ms (attempt %d, status %ld, curl %d)",
									 req->provider, delay, attempts, status, (int) rc)));
			HttpSleep(delay);
		}

		if (rc != CURLE_OK)
			HttpReportFailure(req, rc, errbuf, attempts);

		resp->status = status;
		resp->body_len = http_buf.len;
		resp->body = palloc(http_buf.len + 1);
		if (http_buf.len > 0)
			memcpy(resp->body, http_buf.data, http_buf.len);
		resp->body[http_buf.len] = '\0';
		resp->attempts = attempts;
		resp->elapsed_ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
	}
	PG_FINALLY();
	{
		HttpRelease();
	}
	PG_END_TRY();
}
