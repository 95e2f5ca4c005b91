/*
 * The metadata service, Firecracker's MMDS V2 protocol: a session token
 * from PUT /latest/api/token, then GET /prison with that token.  The
 * provisioner's own server for qemu speaks the same protocol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent.h"
#include "log.h"
#include "xmalloc.h"

#define MMDS_MAX	(4 * 1024 * 1024)
#define TOKEN_TTL	"21600"

struct buf {
	char	*data;
	size_t	 len;
	int	 overflow;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (b->len + len > MMDS_MAX) {
		b->overflow = 1;
		return 0;
	}
	b->data = xreallocarray(b->data, 1, b->len + len + 1);
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static void
buf_clear(struct buf *b)
{
	if (b->data != NULL)
		freezero(b->data, b->len + 1);
	memset(b, 0, sizeof(*b));
}

/* One request; returns the HTTP status, or -1 on transport errors. */
static int
request(CURL *c, const char *url, int put, struct curl_slist *hdrs,
    struct buf *out, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode r;

	buf_clear(out);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	if (put) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	if ((r = curl_easy_perform(c)) != CURLE_OK) {
		seterr(err, errlen, "%s: %s", url,
		    cerr[0] ? cerr : curl_easy_strerror(r));
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		seterr(err, errlen, "%s: HTTP status %ld", url, status);
	return (int)status;
}

static char *
get_token(CURL *c, const char *addr, char *err, size_t errlen)
{
	struct curl_slist *h = NULL;
	struct buf b = { NULL, 0, 0 };
	char *url = xasprintf("http://%s/latest/api/token", addr), *tok = NULL;
	size_t n;

	h = curl_slist_append(h, "X-metadata-token-ttl-seconds: " TOKEN_TTL);
	if (request(c, url, 1, h, &b, err, errlen) == 200 && b.len > 0) {
		n = strcspn(b.data, "\r\n");
		if (n > 0 && n < 4096)
			tok = xstrndup(b.data, n);
		else
			seterr(err, errlen, "%s: unusable token", url);
	}
	buf_clear(&b);
	curl_slist_free_all(h);
	free(url);
	return tok;
}

/* Accept the document itself or {"prison": document}. */
static json_t *
parse_doc(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *inner, *ret = NULL;

	if ((root = json_loads(text, 0, &je)) == NULL) {
		seterr(err, errlen, "metadata is not JSON: %s (line %d)",
		    je.text, je.line);
		return NULL;
	}
	inner = json_object_get(root, "prison");
	if (json_is_object(inner) && json_object_get(root, "project") == NULL)
		ret = json_incref(inner);
	else if (json_is_object(root))
		ret = json_incref(root);
	else
		seterr(err, errlen, "metadata is not a JSON object");
	json_decref(root);
	return ret;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

json_t *
mmds_fetch(const char *addr, int timeout, char *err, size_t errlen)
{
	CURL *c = NULL;
	struct curl_slist *h = NULL;
	struct buf b = { NULL, 0, 0 };
	char *url = xasprintf("http://%s/prison", addr), *tok = NULL, *th;
	long deadline = now_ms() + timeout * 1000L, delay = 200;
	json_t *doc = NULL;
	int status;

	if ((c = curl_easy_init()) == NULL) {
		seterr(err, errlen, "cannot initialise libcurl");
		goto out;
	}
	for (;;) {
		if (tok == NULL)
			tok = get_token(c, addr, err, errlen);
		if (tok != NULL) {
			th = xasprintf("X-metadata-token: %s", tok);
			h = curl_slist_append(NULL, th);
			h = curl_slist_append(h, "Accept: application/json");
			freezero(th, strlen(th));
			status = request(c, url, 0, h, &b, err, errlen);
			curl_slist_free_all(h);
			h = NULL;
			if (status == 200 && b.len > 0) {
				doc = parse_doc(b.data, err, errlen);
				goto out;
			}
			/* An expired or unknown token: ask for a new one. */
			if (status == 401 || status == -1) {
				freezero(tok, strlen(tok));
				tok = NULL;
			} else if (status >= 400 && status < 500)
				goto out;
		}
		if (now_ms() + delay > deadline)
			goto out;
		usleep((useconds_t)delay * 1000);
		if ((delay *= 2) > 2000)
			delay = 2000;
	}
 out:
	if (tok != NULL)
		freezero(tok, strlen(tok));
	buf_clear(&b);
	if (c != NULL)
		curl_easy_cleanup(c);
	free(url);
	return doc;
}
