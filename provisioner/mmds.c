/*
 * Metadata documents and the MMDS V2 server used with qemu.  The server
 * follows Firecracker's MMDS protocol so one guest agent works with both
 * VMMs: PUT /latest/api/token with X-metadata-token-ttl-seconds issues a
 * session token; every GET must carry a valid X-metadata-token.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "fileio.h"
#include "log.h"
#include "mmds.h"
#include "registry.h"
#include "xmalloc.h"

#define MMDS_SCRIPT_MAX		(64 * 1024)
#define MMDS_SCRIPTS_MAX	64
#define MMDS_ENV_MAX		(64 * 1024)

/* Document builder. */

static json_t *
member_keys(const struct registry *reg, const struct reg_project *p)
{
	json_t *keys = json_array();
	struct reg_user *u;
	size_t i, j;

	for (i = 0; i < p->nmembers; i++) {
		if ((u = registry_user(reg, p->members[i])) == NULL ||
		    u->disabled)
			continue;
		for (j = 0; j < u->nkeys; j++) {
			const struct reg_key *k = &u->keys[j];
			char *line;

			if (k->comment != NULL && *k->comment != '\0')
				line = xasprintf("%s %s %s", k->type, k->blob,
				    k->comment);
			else
				line = xasprintf("%s %s", k->type, k->blob);
			json_array_append_new(keys, json_string(line));
			free(line);
		}
	}
	return keys;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char * const *)a, *(char * const *)b);
}

/* extra_dir/bootstrap.d/NAME: scripts run in name order by the agent. */
static int
load_bootstrap(const char *dir, json_t *out, char *err, size_t errlen)
{
	char *path = xasprintf("%s/bootstrap.d", dir), *names[MMDS_SCRIPTS_MAX];
	size_t n = 0, i;
	struct dirent *de;
	DIR *d = NULL;
	int ret = -1;

	if ((d = opendir(path)) == NULL) {
		ret = errno == ENOENT ? 0 : seterr(err, errlen,
		    "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == MMDS_SCRIPTS_MAX) {
			seterr(err, errlen, "%s: more than %d scripts", path,
			    MMDS_SCRIPTS_MAX);
			goto out;
		}
		names[n++] = xstrdup(de->d_name);
	}
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", path, names[i]), *data = NULL;
		int r;

		r = read_file(file, MMDS_SCRIPT_MAX, &data, NULL, err, errlen);
		free(file);
		if (r == -1)
			goto out;
		json_array_append_new(out, json_pack("{s:s,s:s}", "name",
		    names[i], "script", data));
		free(data);
	}
	ret = 0;
 out:
	for (i = 0; i < n; i++)
		free(names[i]);
	if (d != NULL)
		closedir(d);
	free(path);
	return ret;
}

/* extra_dir/env: KEY=VALUE lines, '#' comments. */
static int
load_env(const char *dir, json_t *out, char *err, size_t errlen)
{
	char *path = xasprintf("%s/env", dir), *data = NULL, *line, *sp = NULL;
	int ret = -1, lineno = 0;

	if (read_file(path, MMDS_ENV_MAX, &data, NULL, err, errlen) == -1) {
		if (errno == ENOENT)
			ret = 0;
		goto out;
	}
	for (line = strtok_r(data, "\n", &sp); line != NULL;
	    line = strtok_r(NULL, "\n", &sp)) {
		char *eq = strchr(line, '=');
		size_t i;

		lineno++;
		if (*line == '#' || *line == '\0')
			continue;
		if (eq == NULL || eq == line) {
			seterr(err, errlen, "%s: line %d: expected KEY=VALUE",
			    path, lineno);
			goto out;
		}
		*eq = '\0';
		for (i = 0; line[i] != '\0'; i++)
			if (!(line[i] == '_' || (line[i] >= 'A' &&
			    line[i] <= 'Z') || (line[i] >= 'a' &&
			    line[i] <= 'z') || (i > 0 && line[i] >= '0' &&
			    line[i] <= '9'))) {
				seterr(err, errlen, "%s: line %d: bad variable "
				    "name", path, lineno);
				goto out;
			}
		json_object_set_new(out, line, json_string(eq + 1));
	}
	ret = 0;
 out:
	free(data);
	free(path);
	return ret;
}

/* Append one resolver address; 0 when added, 1 when skipped, -1 bad. */
static int
ns_add(json_t *out, const char *word, const char *host_ip, int local_ok)
{
	struct in_addr a;

	if (strcmp(word, "host") == 0 && host_ip != NULL)
		word = host_ip;
	if (inet_pton(AF_INET, word, &a) != 1)
		return -1;
	/* A loopback resolver (systemd-resolved's 127.0.0.53) is the
	 * host's own, out of a guest's reach. */
	if (!local_ok && ((ntohl(a.s_addr) >> 24) == 127 || a.s_addr == 0))
		return 1;
	if (json_array_size(out) >= MMDS_NAMESERVERS_MAX)
		return 1;
	json_array_append_new(out, json_string(word));
	return 0;
}

/* "nameserver ADDR" lines of a resolv.conf; unreadable files add none. */
static void
ns_from_file(json_t *out, const char *path)
{
	char *data = NULL, *line, *sp = NULL, *w, *wp = NULL;

	if (read_file(path, 64 * 1024, &data, NULL, NULL, 0) == -1)
		return;
	for (line = strtok_r(data, "\n", &sp); line != NULL;
	    line = strtok_r(NULL, "\n", &sp)) {
		if ((w = strtok_r(line, " \t", &wp)) == NULL ||
		    strcmp(w, "nameserver") != 0 ||
		    (w = strtok_r(NULL, " \t", &wp)) == NULL)
			continue;
		/* IPv6 resolvers do not parse as IPv4 and are skipped. */
		ns_add(out, w, NULL, 0);
	}
	free(data);
}

json_t *
mmds_nameservers(const char *setting, const char *const *files,
    int allow_dns, const char *host_ip, char *err, size_t errlen)
{
	static const char *const host_files[] = { "/etc/resolv.conf",
	    "/run/systemd/resolve/resolv.conf", NULL };
	json_t *out = json_array();
	char *copy = NULL, *w, *sp = NULL;
	size_t i;

	if (setting != NULL && *setting != '\0') {
		copy = xstrdup(setting);
		for (w = strtok_r(copy, " \t,", &sp); w != NULL;
		    w = strtok_r(NULL, " \t,", &sp)) {
			if (json_array_size(out) == MMDS_NAMESERVERS_MAX) {
				seterr(err, errlen, "[network] nameservers: "
				    "more than %d", MMDS_NAMESERVERS_MAX);
				goto fail;
			}
			if (ns_add(out, w, host_ip, 1) == -1) {
				seterr(err, errlen, "[network] nameservers: "
				    "\"%s\" is not an IPv4 address or "
				    "\"host\"", w);
				goto fail;
			}
		}
		free(copy);
		return out;
	}
	for (i = 0, files = files != NULL ? files : host_files;
	    files[i] != NULL && json_array_size(out) == 0; i++)
		ns_from_file(out, files[i]);
	if (json_array_size(out) == 0 && allow_dns && host_ip != NULL)
		ns_add(out, host_ip, NULL, 1);
	if (json_array_size(out) == 0) {
		copy = xstrdup(MMDS_NAMESERVERS_FALLBACK);
		for (w = strtok_r(copy, " ", &sp); w != NULL;
		    w = strtok_r(NULL, " ", &sp))
			ns_add(out, w, NULL, 1);
	}
	free(copy);
	return out;
 fail:
	free(copy);
	json_decref(out);
	return NULL;
}

int
mmds_build(const struct registry *reg, const struct mmds_input *in,
    json_t **doc, char *err, size_t errlen)
{
	const struct reg_project *p;
	json_t *prison = NULL, *boot = json_array(), *env = json_object();
	json_t *ns = NULL;
	char *gw = NULL, *work = NULL;
	const char *dev;
	int ret = -1;

	*doc = NULL;
	if ((p = registry_project(reg, in->project)) == NULL) {
		seterr(err, errlen, "unknown project \"%s\"", in->project);
		goto out;
	}
	if (in->extra_dir != NULL &&
	    (load_bootstrap(in->extra_dir, boot, err, errlen) == -1 ||
	    load_env(in->extra_dir, env, err, errlen) == -1))
		goto out;
	if ((ns = mmds_nameservers(in->nameservers, in->resolv_files,
	    in->allow_dns, in->host_ip, err, errlen)) == NULL)
		goto out;
	dev = p->dev_user != NULL && *p->dev_user != '\0' ? p->dev_user : "dev";
	work = xasprintf("/home/%s/work", dev);
	if (in->gateway_pub != NULL)
		gw = xasprintf("from=\"%s\" %s", in->host_ip, in->gateway_pub);
	prison = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:o,s:s?,"
	    "s:{s:s,s:s},s:O,s:O,s:O}",
	    "project", p->name, "hostname", p->name, "dev_user", dev,
	    "work_dir", work, "repo", p->repo, "ref", p->ref,
	    "authorized_keys", member_keys(reg, p), "gateway_key", gw,
	    "ssh_host_key", "private", in->host_key_priv, "public",
	    in->host_key_pub, "bootstrap", boot, "env", env,
	    "nameservers", ns);
	if (prison == NULL) {
		seterr(err, errlen, "cannot build the metadata of %s",
		    in->project);
		goto out;
	}
	/* Absent optional members are null, as the agent expects. */
	if (json_object_get(prison, "repo") == NULL)
		json_object_set_new(prison, "repo", json_null());
	if (json_object_get(prison, "ref") == NULL)
		json_object_set_new(prison, "ref", json_null());
	if (json_object_get(prison, "gateway_key") == NULL)
		json_object_set_new(prison, "gateway_key", json_null());
	*doc = json_pack("{s:o}", "prison", prison);
	prison = NULL;
	ret = 0;
 out:
	json_decref(prison);
	json_decref(boot);
	json_decref(env);
	json_decref(ns);
	free(gw);
	free(work);
	return ret;
}

/* Tokens. */

int
mmds_parse_ttl(const char *hdr)
{
	char *end = NULL;
	long v;

	if (hdr == NULL || *hdr < '0' || *hdr > '9')
		return -1;
	errno = 0;
	v = strtol(hdr, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > MMDS_TOKEN_TTL_MAX)
		return -1;
	return (int)v;
}

static void
tokens_prune(struct mmds_tokens *t, time_t now)
{
	size_t i, j;

	for (i = j = 0; i < t->n; i++) {
		if (t->tok[i].expires > now) {
			if (i != j)
				t->tok[j] = t->tok[i];
			j++;
		} else
			explicit_bzero(&t->tok[i], sizeof(t->tok[i]));
	}
	for (i = j; i < t->n; i++)
		explicit_bzero(&t->tok[i], sizeof(t->tok[i]));
	t->n = j;
}

int
mmds_token_issue(struct mmds_tokens *t, int ttl, time_t now, char *out,
    size_t outlen)
{
	unsigned char raw[32];
	struct mmds_token *k;

	if (ttl < 1 || ttl > MMDS_TOKEN_TTL_MAX || sodium_init() < 0)
		return -1;
	tokens_prune(t, now);
	if (t->n == MMDS_TOKENS_MAX) {
		/* Full: the oldest token makes room. */
		memmove(&t->tok[0], &t->tok[1],
		    (t->n - 1) * sizeof(t->tok[0]));
		t->n--;
	}
	k = &t->tok[t->n];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(k->value, sizeof(k->value), raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	explicit_bzero(raw, sizeof(raw));
	k->expires = now + ttl;
	if (strlen(k->value) + 1 > outlen) {
		explicit_bzero(k, sizeof(*k));
		return -1;
	}
	t->n++;
	strcpy(out, k->value);
	return 0;
}

int
mmds_token_check(struct mmds_tokens *t, const char *token, time_t now)
{
	size_t i, len;

	tokens_prune(t, now);
	if (token == NULL || (len = strlen(token)) == 0 ||
	    len >= sizeof(t->tok[0].value))
		return 0;
	for (i = 0; i < t->n; i++)
		if (strlen(t->tok[i].value) == len &&
		    sodium_memcmp(t->tok[i].value, token, len) == 0)
			return 1;
	return 0;
}

/* Paths. */

json_t *
mmds_lookup(json_t *doc, const char *path)
{
	char *copy, *seg, *sp = NULL;
	json_t *cur = doc;

	if (path == NULL || *path != '/')
		return NULL;
	copy = xstrdup(path);
	for (seg = strtok_r(copy, "/", &sp); seg != NULL && cur != NULL;
	    seg = strtok_r(NULL, "/", &sp)) {
		if (json_is_object(cur))
			cur = json_object_get(cur, seg);
		else if (json_is_array(cur)) {
			char *end = NULL;
			unsigned long i;

			errno = 0;
			i = strtoul(seg, &end, 10);
			cur = (*seg >= '0' && *seg <= '9' && *end == '\0' &&
			    errno == 0) ? json_array_get(cur, i) : NULL;
		} else
			cur = NULL;
	}
	free(copy);
	return cur;
}

/* Server. */

struct mmds_server {
	struct MHD_Daemon	*mhd;
	pthread_mutex_t		 lock;
	json_t			*doc;
	struct mmds_tokens	 tokens;
	char			 ifname[32];
	struct in_addr		 peer;
};

/* Only the guest: not the host's own processes, which reach the
 * listener through the loopback path. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	const struct mmds_server *srv = cls;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

	if (sa == NULL || sa->sa_family != AF_INET ||
	    len < (socklen_t)sizeof(*sin))
		return MHD_NO;
	return sin->sin_addr.s_addr == srv->peer.s_addr ? MHD_YES : MHD_NO;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
    const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static int
wants_json(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Accept");

	return a != NULL && strstr(a, "application/json") != NULL;
}

/* The IMDS text form: object keys one per line, strings as they are. */
static char *
imds_text(json_t *v)
{
	const char *key;
	json_t *val;
	size_t len = 0;
	char *s;

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (!json_is_object(v))
		return NULL;
	json_object_foreach(v, key, val)
		len += strlen(key) + 2;
	s = xcalloc(1, len + 1);
	json_object_foreach(v, key, val) {
		strcat(s, key);
		if (json_is_object(val))
			strcat(s, "/");
		strcat(s, "\n");
	}
	if (len > 0)
		s[strlen(s) - 1] = '\0';
	return s;
}

static enum MHD_Result
serve_get(struct mmds_server *srv, struct MHD_Connection *c,
    const char *url)
{
	const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-metadata-token");
	enum MHD_Result ret;
	char *body = NULL;
	json_t *v;
	int valid;

	if (tok == NULL)
		return reply(c, MHD_HTTP_UNAUTHORIZED, "text/plain",
		    "No session token: PUT /latest/api/token first and "
		    "send the token in X-metadata-token.");
	pthread_mutex_lock(&srv->lock);
	valid = mmds_token_check(&srv->tokens, tok, time(NULL));
	if (!valid) {
		pthread_mutex_unlock(&srv->lock);
		return reply(c, MHD_HTTP_UNAUTHORIZED, "text/plain",
		    "Session token not valid.");
	}
	if ((v = mmds_lookup(srv->doc, url)) != NULL)
		body = wants_json(c) ? json_dumps(v, JSON_ENCODE_ANY |
		    JSON_COMPACT) : imds_text(v);
	pthread_mutex_unlock(&srv->lock);
	if (v == NULL)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
		    "The metadata resource does not exist.");
	if (body == NULL)
		return reply(c, MHD_HTTP_NOT_IMPLEMENTED, "text/plain",
		    "This value has no plain-text form; ask for "
		    "application/json.");
	ret = reply(c, MHD_HTTP_OK, wants_json(c) ? "application/json" :
	    "text/plain", body);
	free(body);
	return ret;
}

static enum MHD_Result
serve_token(struct mmds_server *srv, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-metadata-token-ttl-seconds");
	char token[64];
	enum MHD_Result ret;
	int ttl, r;

	if (h == NULL)
		return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain",
		    "Token time to live not provided: set "
		    "X-metadata-token-ttl-seconds.");
	if ((ttl = mmds_parse_ttl(h)) == -1)
		return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain",
		    "Token time to live must be from 1 to 21600 seconds.");
	pthread_mutex_lock(&srv->lock);
	r = mmds_token_issue(&srv->tokens, ttl, time(NULL), token,
	    sizeof(token));
	pthread_mutex_unlock(&srv->lock);
	if (r == -1)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
		    "Cannot issue a token.");
	ret = reply(c, MHD_HTTP_OK, "text/plain", token);
	explicit_bzero(token, sizeof(token));
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
	static int started;
	struct mmds_server *srv = cls;

	/* First call: headers only.  Bodies are read and ignored. */
	if (*state == NULL) {
		*state = &started;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	/* Like Firecracker: a proxied request is not the guest's own. */
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-Forwarded-For") != NULL)
		return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain",
		    "Forwarded requests are refused.");
	if (strcmp(method, "PUT") == 0) {
		if (strcmp(url, "/latest/api/token") != 0)
			return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain",
			    "PUT is only for /latest/api/token.");
		return serve_token(srv, c);
	}
	if (strcmp(method, "GET") == 0)
		return serve_get(srv, c, url);
	return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
	    "Only GET and PUT are supported.");
}

static int
listen_socket(const char *ifname, const char *addr, int port, char *err,
    size_t errlen)
{
	struct sockaddr_in sin;
	int fd, on = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return seterr(err, errlen, "metadata address \"%s\" is not "
		    "an IPv4 address", addr);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return seterr(err, errlen, "socket: %s", strerror(errno));
	/*
	 * Bound to the TAP: only that guest's packets reach this listener,
	 * which is what ties a request to its project.  FREEBIND because
	 * the address may be answered through a local route rather than
	 * an address on the device.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname,
	    strlen(ifname)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on)) == -1) {
		seterr(err, errlen, "metadata socket on %s: %s", ifname,
		    strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		seterr(err, errlen, "metadata listener %s:%d on %s: %s", addr,
		    port, ifname, strerror(errno));
		goto fail;
	}
	if (listen(fd, 16) == -1) {
		seterr(err, errlen, "listen: %s", strerror(errno));
		goto fail;
	}
	return fd;
 fail:
	close(fd);
	return -1;
}

int
mmds_start(const char *ifname, const char *addr, int port, const char *peer,
    json_t *doc, struct mmds_server **out, char *err, size_t errlen)
{
	struct mmds_server *srv = xcalloc(1, sizeof(*srv));
	int fd;

	*out = NULL;
	if (inet_pton(AF_INET, peer, &srv->peer) != 1) {
		free(srv);
		return seterr(err, errlen, "guest address \"%s\" is not an "
		    "IPv4 address", peer);
	}
	if ((fd = listen_socket(ifname, addr, port, err, errlen)) == -1) {
		free(srv);
		return -1;
	}
	pthread_mutex_init(&srv->lock, NULL);
	snprintf(srv->ifname, sizeof(srv->ifname), "%s", ifname);
	srv->doc = json_incref(doc);
	srv->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_POLL, 0, on_accept, srv, on_request, srv,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_END);
	if (srv->mhd == NULL) {
		seterr(err, errlen, "cannot start the metadata server on %s",
		    ifname);
		close(fd);
		json_decref(srv->doc);
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return -1;
	}
	*out = srv;
	return 0;
}

void
mmds_set_doc(struct mmds_server *srv, json_t *doc)
{
	json_t *old;

	pthread_mutex_lock(&srv->lock);
	old = srv->doc;
	srv->doc = json_incref(doc);
	pthread_mutex_unlock(&srv->lock);
	json_decref(old);
}

void
mmds_stop(struct mmds_server *srv)
{
	if (srv == NULL)
		return;
	/* Stopping the daemon also closes the listening socket. */
	MHD_stop_daemon(srv->mhd);
	json_decref(srv->doc);
	explicit_bzero(&srv->tokens, sizeof(srv->tokens));
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
