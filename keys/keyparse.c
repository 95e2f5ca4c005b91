/*
 * Parsing pasted public keys.  keyblob.c decodes the base64 (strictly)
 * so the type inside the blob can be compared with the type the line
 * claims; libssh then reads the key, and the key it read is encoded
 * again and must come out byte-identical, which refuses truncated blobs,
 * trailing bytes and non-canonical encodings in one check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libssh/libssh.h>

#include "keyblob.h"
#include "keyparse.h"
#include "log.h"
#include "xmalloc.h"

#define MAX_LINE		(16 * 1024)
#define MAX_COMMENT		1024

/*
 * Check the base64 blob b64 (claimed type ctype, or NULL when the input
 * names none) and fill k's type, blob and fingerprint.  keyblob_check()
 * reads the blob's layout; libssh then reads the key, which encoded
 * again must come out byte-identical.
 */
static int
check_blob(const char *ctype, const char *b64, struct reg_key *k,
    char *err, size_t errlen)
{
	char *inner = NULL, *fp = NULL, *again = NULL;
	enum ssh_keytypes_e t;
	ssh_key key = NULL;
	int r = -1;

	if (keyblob_check(ctype, b64, &inner, &fp, err, errlen) == -1)
		goto out;
	t = ssh_key_type_from_name(inner);
	if (t == SSH_KEYTYPE_UNKNOWN ||
	    ssh_pki_import_pubkey_base64(b64, t, &key) != SSH_OK) {
		seterr(err, errlen, "the %s key data is damaged or truncated",
		    inner);
		goto out;
	}
	if (ssh_pki_export_pubkey_base64(key, &again) != SSH_OK ||
	    strcmp(again, b64) != 0) {
		seterr(err, errlen, "the %s key data is damaged (extra or "
		    "malformed bytes)", inner);
		goto out;
	}
	k->type = inner;
	k->fingerprint = fp;
	k->blob = xstrdup(b64);
	inner = fp = NULL;
	r = 0;
 out:
	free(inner);
	free(fp);
	ssh_string_free_char(again);
	ssh_key_free(key);
	return r;
}

char *
keyparse_fingerprint(const char *type, const char *blob, char *err,
    size_t errlen)
{
	struct reg_key k;
	char *fp;

	memset(&k, 0, sizeof(k));
	if (check_blob(type, blob, &k, err, errlen) == -1)
		return NULL;
	fp = k.fingerprint;
	free(k.type);
	free(k.blob);
	return fp;
}

static int
set_comment(struct reg_key *k, const char *s, size_t len, char *err,
    size_t errlen)
{
	json_t *probe = NULL;
	size_t i;

	if (len > MAX_COMMENT)
		return seterr(err, errlen, "comment longer than %d bytes",
		    MAX_COMMENT);
	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f)
			return seterr(err, errlen, "comment contains control "
			    "characters");
	/* The registry is JSON, which needs UTF-8. */
	if ((probe = json_stringn(s, len)) == NULL)
		return seterr(err, errlen, "comment is not valid UTF-8");
	json_decref(probe);
	free(k->comment);
	k->comment = xstrndup(s, len);
	return 0;
}

/* Next token of s at *pos, honouring "..." as authorized_keys does. */
static int
next_token(const char *s, size_t *pos, size_t *start, size_t *end)
{
	size_t i = *pos;
	int quoted = 0;

	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (s[i] == '\0')
		return 0;
	*start = i;
	for (; s[i] != '\0'; i++) {
		if (!quoted && (s[i] == ' ' || s[i] == '\t'))
			break;
		if (s[i] == '\\' && quoted && s[i + 1] != '\0')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
	}
	*end = *pos = i;
	return 1;
}

/* The line starts with something else; is a key type further on? */
static int
has_options(const char *line)
{
	size_t pos = 0, a, b;
	char *tok;
	int found = 0;

	if (!next_token(line, &pos, &a, &b))
		return 0;
	while (!found && next_token(line, &pos, &a, &b)) {
		tok = xstrndup(line + a, b - a);
		found = keyblob_classify(tok) != KB_UNKNOWN;
		free(tok);
	}
	return found;
}

static int
parse_oneline(const char *line, struct reg_key *k, char *err, size_t errlen)
{
	size_t pos = 0, a, b, c, d;
	char *type = NULL, *b64 = NULL;
	enum keyblob_class cl;
	int r = -1;

	if (!next_token(line, &pos, &a, &b))
		return seterr(err, errlen, "empty line");
	type = xstrndup(line + a, b - a);
	if ((cl = keyblob_classify(type)) == KB_UNKNOWN && has_options(line)) {
		seterr(err, errlen, "authorized_keys options before the key "
		    "are not accepted (prison adds its own); paste the key "
		    "without them");
		goto out;
	}
	if (cl != KB_OK) {
		keyblob_class_error(cl, type, err, errlen);
		goto out;
	}
	if (!next_token(line, &pos, &c, &d)) {
		seterr(err, errlen, "no key data after \"%s\"", type);
		goto out;
	}
	b64 = xstrndup(line + c, d - c);
	if (check_blob(type, b64, k, err, errlen) == -1)
		goto out;
	while (line[pos] == ' ' || line[pos] == '\t')
		pos++;
	if (set_comment(k, line + pos, strlen(line + pos), err, errlen) == -1)
		goto out;
	r = 0;
 out:
	free(type);
	if (b64 != NULL)
		freezero(b64, strlen(b64));
	return r;
}

static int
is_private(const char *line)
{
	if (strncmp(line, "-----BEGIN ", 11) == 0 &&
	    strstr(line, "PRIVATE KEY") != NULL)
		return 1;
	if (strncmp(line, "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY", 37) == 0)
		return 1;
	return strncmp(line, "PuTTY-User-Key-File-", 20) == 0;
}

/* Input split into trimmed, NUL-terminated lines (in place). */
struct lines {
	char	*buf;
	size_t	 buflen;
	char	**v;
	size_t	 n;
};

static int
split_lines(const char *text, size_t len, struct lines *ls, char *err,
    size_t errlen)
{
	char *p, *e, *nl;
	size_t i;

	if (len > KEYPARSE_MAX_INPUT)
		return seterr(err, errlen, "input larger than %d bytes",
		    KEYPARSE_MAX_INPUT);
	ls->buf = xmalloc(len + 1);
	ls->buflen = len + 1;
	memcpy(ls->buf, text, len);
	ls->buf[len] = '\0';
	ls->v = xcalloc(len + 2, sizeof(*ls->v));
	p = ls->buf;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	for (; p != NULL; p = nl) {
		if ((nl = memchr(p, '\n', ls->buf + len - p)) != NULL)
			*nl++ = '\0';
		if (strlen(p) != (size_t)((nl ? nl - 1 : ls->buf + len) - p))
			return seterr(err, errlen, "line %zu: contains a NUL "
			    "byte", ls->n + 1);
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' ||
		    e[-1] == '\r'))
			*--e = '\0';
		if (e - p > MAX_LINE)
			return seterr(err, errlen, "line %zu: longer than %d "
			    "bytes", ls->n + 1, MAX_LINE);
		ls->v[ls->n++] = p;
		if (nl == NULL || nl == ls->buf + len)
			break;
	}
	for (i = 0; i < ls->n; i++)
		if (is_private(ls->v[i]))
			return seterr(err, errlen, "line %zu: this is a "
			    "PRIVATE key; keep it secret and paste the "
			    "public key (the .pub file) instead", i + 1);
	return 0;
}

/* Strip one pair of surrounding double quotes from an RFC 4716 value. */
static void
unquote(char **s, size_t *len)
{
	if (*len >= 2 && (*s)[0] == '"' && (*s)[*len - 1] == '"') {
		(*s)++;
		*len -= 2;
	}
}

/*
 * An RFC 4716 block starting at line *ip (the BEGIN line); on return *ip
 * is the END line.
 */
static int
parse_rfc4716(struct lines *ls, size_t *ip, struct reg_key *k, char *err,
    size_t errlen)
{
	char *b64 = NULL, *hdr = NULL, *val;
	size_t i, b64len = 0, hdrlen = 0, begin = *ip, vlen;
	int in_body = 0, cont = 0, r = -1;
	char why[256];

	b64 = xcalloc(1, KEYPARSE_MAX_INPUT + 1);
	hdr = xcalloc(1, MAX_LINE * 2 + 1);
	for (i = begin + 1; i < ls->n; i++) {
		char *l = ls->v[i];
		size_t n = strlen(l);

		if (strcmp(l, "---- END SSH2 PUBLIC KEY ----") == 0)
			break;
		if (cont || (!in_body && strchr(l, ':') != NULL)) {
			if (!cont)
				hdrlen = 0;
			cont = n > 0 && l[n - 1] == '\\';
			if (cont)
				n--;
			if (hdrlen + n > MAX_LINE * 2) {
				seterr(err, errlen, "line %zu: header too "
				    "long", i + 1);
				goto out;
			}
			memcpy(hdr + hdrlen, l, n);
			hdr[hdrlen += n] = '\0';
			if (cont)
				continue;
			if (strncasecmp(hdr, "Comment:", 8) != 0)
				continue;
			val = hdr + 8;
			while (*val == ' ')
				val++;
			vlen = strlen(val);
			unquote(&val, &vlen);
			if (set_comment(k, val, vlen, why, sizeof(why)) == -1) {
				seterr(err, errlen, "line %zu: %s", i + 1, why);
				goto out;
			}
			continue;
		}
		if (strchr(l, ':') != NULL || *l == '\0') {
			seterr(err, errlen, "line %zu: unexpected %s inside "
			    "the key data", i + 1,
			    *l ? "header" : "blank line");
			goto out;
		}
		in_body = 1;
		memcpy(b64 + b64len, l, n);
		b64len += n;
	}
	if (i == ls->n) {
		seterr(err, errlen, "line %zu: \"BEGIN SSH2 PUBLIC KEY\" "
		    "without its END line", begin + 1);
		goto out;
	}
	*ip = i;
	if (check_blob(NULL, b64, k, why, sizeof(why)) == -1) {
		seterr(err, errlen, "line %zu: %s", begin + 1, why);
		goto out;
	}
	if (k->comment == NULL)
		k->comment = xstrdup("");
	r = 0;
 out:
	freezero(b64, KEYPARSE_MAX_INPUT + 1);
	freezero(hdr, MAX_LINE * 2 + 1);
	return r;
}

void
keyparse_free(struct reg_key *keys, size_t nkeys)
{
	size_t i;

	for (i = 0; keys != NULL && i < nkeys; i++) {
		free(keys[i].type);
		free(keys[i].blob);
		free(keys[i].comment);
		free(keys[i].fingerprint);
	}
	free(keys);
}

int
keyparse_text(const char *text, size_t len, struct reg_key **keysp,
    size_t *nkeysp, char *err, size_t errlen)
{
	struct lines ls;
	struct reg_key *keys = NULL;
	size_t *lineno = NULL, i, j, nkeys = 0;
	char why[256];
	int r = -1;

	*keysp = NULL;
	*nkeysp = 0;
	memset(&ls, 0, sizeof(ls));
	if (split_lines(text, len, &ls, err, errlen) == -1)
		goto out;
	keys = xcalloc(ls.n + 1, sizeof(*keys));
	lineno = xcalloc(ls.n + 1, sizeof(*lineno));
	for (i = 0; i < ls.n; i++) {
		const char *l = ls.v[i];
		struct reg_key *k = &keys[nkeys];

		if (*l == '\0' || *l == '#')
			continue;
		lineno[nkeys] = i + 1;
		if (strcmp(l, "---- BEGIN SSH2 PUBLIC KEY ----") == 0) {
			if (parse_rfc4716(&ls, &i, k, err, errlen) == -1)
				goto fail;
		} else if (strncmp(l, "-----BEGIN", 10) == 0) {
			seterr(err, errlen, "line %zu: PEM keys are not "
			    "accepted; convert with ssh-keygen -i -m PKCS8 "
			    "-f FILE", i + 1);
			goto fail;
		} else if (parse_oneline(l, k, why, sizeof(why)) == -1) {
			seterr(err, errlen, "line %zu: %s", i + 1, why);
			goto fail;
		}
		nkeys++;
		for (j = 0; j + 1 < nkeys; j++)
			if (strcmp(keys[j].blob, k->blob) == 0) {
				seterr(err, errlen, "line %zu: the same key as "
				    "line %zu", lineno[nkeys - 1], lineno[j]);
				goto out;
			}
	}
	if (nkeys == 0) {
		seterr(err, errlen, "no public key found");
		goto out;
	}
	*keysp = keys;
	*nkeysp = nkeys;
	keys = NULL;
	r = 0;
	goto out;
 fail:
	/* The failed entry may be half filled. */
	nkeys++;
 out:
	keyparse_free(keys, nkeys);
	free(lineno);
	if (ls.buf != NULL)
		freezero(ls.buf, ls.buflen);
	free(ls.v);
	return r;
}
