/*
 * Firecracker API client: one libcurl easy handle per request, over the
 * unix socket the jailed Firecracker listens on.  The host part of the
 * URL is ignored by Firecracker; "localhost" keeps libcurl happy.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "fc_api.h"
#include "log.h"
#include "xmalloc.h"

/* Firecracker's answers are small; refuse anything absurd. */
#define FC_API_MAX_RESPONSE	(1024 * 1024)

struct respbuf {
	char	*data;
	size_t	 len;
	int	 overflow;
};

static size_t
fc_api_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct respbuf *rb = arg;
	size_t n = size * nmemb;

	if (rb->len + n > FC_API_MAX_RESPONSE) {
		rb->overflow = 1;
		return 0;
	}
	rb->data = xreallocarray(rb->data, 1, rb->len + n + 1);
	memcpy(rb->data + rb->len, ptr, n);
	rb->len += n;
	rb->data[rb->len] = '\0';
	return n;
}

int
fc_api_request(const char *sock, const char *method, const char *path,
    const char *body, long *status, char **resp, char *err, size_t errlen)
{
	CURL *c = NULL;
	struct curl_slist *hdrs = NULL;
	struct respbuf rb = { NULL, 0, 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	char *url = NULL;
	CURLcode cc;
	int r = -1;

	*status = 0;
	if (resp != NULL)
		*resp = NULL;
	if ((c = curl_easy_init()) == NULL) {
		seterr(err, errlen, "%s %s: cannot initialise libcurl",
		    method, path);
		goto out;
	}
	url = xasprintf("http://localhost%s", path);
	/*
	 * Without an empty Expect header libcurl holds back bodies over
	 * 1 KiB waiting for "100 Continue"; metadata documents are larger.
	 */
	hdrs = curl_slist_append(hdrs, "Expect:");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body != NULL)
		hdrs = curl_slist_append(hdrs,
		    "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)FC_API_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fc_api_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &rb);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}

	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		seterr(err, errlen, "%s %s: no answer from Firecracker API "
		    "at %s: %s", method, path, sock,
		    rb.overflow ? "response too large" :
		    cerr[0] != '\0' ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (resp != NULL) {
		*resp = rb.data != NULL ? rb.data : xstrdup("");
		rb.data = NULL;
	}
	r = 0;
 out:
	free(rb.data);
	free(url);
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	return r;
}

/*
 * Copy text from Firecracker into an error message: printable ASCII and
 * spaces kept, anything else '?', so one line stays one line.
 */
void
fc_api_clean(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
	}
	if (dstlen > 0)
		dst[i] = '\0';
}

/* Firecracker explains refusals in {"fault_message": "..."}. */
static void
fc_api_fault(const char *resp, char *buf, size_t buflen)
{
	json_t *j = NULL, *m;
	char raw[256];

	snprintf(buf, buflen, "no fault_message in the answer");
	if (resp == NULL || *resp == '\0')
		goto out;
	if ((j = json_loads(resp, 0, NULL)) == NULL ||
	    !json_is_string(m = json_object_get(j, "fault_message"))) {
		fc_api_clean(raw, sizeof(raw), resp);
		snprintf(buf, buflen, "unexpected answer: %s", raw);
		goto out;
	}
	fc_api_clean(buf, buflen, json_string_value(m));
 out:
	json_decref(j);
}

int
fc_api_call(const char *sock, const char *method, const char *path,
    const char *body, char *err, size_t errlen)
{
	char *resp = NULL, fault[512];
	long status;
	int r = -1;

	if (fc_api_request(sock, method, path, body, &status, &resp,
	    err, errlen) != 0)
		goto out;
	if (status != 204) {
		fc_api_fault(resp, fault, sizeof(fault));
		seterr(err, errlen, "%s %s: Firecracker answered %ld: %s",
		    method, path, status, fault);
		goto out;
	}
	r = 0;
 out:
	free(resp);
	return r;
}

int
fc_api_state(const char *sock, char *state, size_t statelen, char *err,
    size_t errlen)
{
	json_t *j = NULL, *s;
	char *resp = NULL, fault[512];
	long status;
	int r = -1;

	if (fc_api_request(sock, "GET", "/", NULL, &status, &resp,
	    err, errlen) != 0)
		goto out;
	if (status != 200) {
		fc_api_fault(resp, fault, sizeof(fault));
		seterr(err, errlen, "GET /: Firecracker answered %ld: %s",
		    status, fault);
		goto out;
	}
	if ((j = json_loads(resp, 0, NULL)) == NULL ||
	    !json_is_string(s = json_object_get(j, "state"))) {
		seterr(err, errlen, "GET /: answer has no instance state");
		goto out;
	}
	snprintf(state, statelen, "%s", json_string_value(s));
	r = 0;
 out:
	json_decref(j);
	free(resp);
	return r;
}
