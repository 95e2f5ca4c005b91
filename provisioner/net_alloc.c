/*
 * Subnet allocation and the network state file.
 *
 * A project's /30 is chosen once: slot = hash(name) mod slots, probing
 * forward on collision, and recorded in state_dir/net.json so it never
 * moves, whatever else is added or removed later.  The file also records
 * which projects are up and with which settings, which is what the table
 * is rebuilt from after a crash.  Callers hold state_dir/net.lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "net_int.h"
#include "xmalloc.h"

#define STATE_MAX	(64 * 1024 * 1024)

/* FNV-1a: stable across hosts and releases, which the addresses must be. */
uint32_t
net_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

int
net_pool_parse(const char *pool, uint32_t *base, int *prefix, char *err,
    size_t errlen)
{
	char buf[32], *slash, *end;
	struct in_addr a;
	long p;

	if (strlen(pool) >= sizeof(buf))
		goto bad;
	snprintf(buf, sizeof(buf), "%s", pool);
	if ((slash = strchr(buf, '/')) == NULL)
		goto bad;
	*slash++ = '\0';
	errno = 0;
	p = strtol(slash, &end, 10);
	if (*slash == '\0' || *end != '\0' || errno != 0 || p < 8 || p > 30)
		goto bad;
	if (inet_pton(AF_INET, buf, &a) != 1)
		goto bad;
	*base = ntohl(a.s_addr);
	*prefix = (int)p;
	if ((*base & ((1u << (32 - p)) - 1)) != 0)
		return seterr(err, errlen, "pool %s: host bits set "
		    "(the network address must be aligned)", pool);
	return 0;
bad:
	return seterr(err, errlen, "pool \"%s\": expected an IPv4 network "
	    "such as 172.31.0.0/16 (prefix 8 to 30)", pool);
}

void
net_state_free(struct net_state *st)
{
	size_t i;

	for (i = 0; i < st->nrecs; i++)
		free(st->recs[i].name);
	free(st->recs);
	free(st->pool);
	memset(st, 0, sizeof(*st));
}

static char *
state_path(const char *state_dir)
{
	return xasprintf("%s/%s", state_dir, NET_STATE_FILE);
}

static int
parse_rec(json_t *o, const struct net_state *st, struct net_rec *r,
    char *err, size_t errlen)
{
	json_t *name, *idx, *tap, *up, *port, *egress;

	name = json_object_get(o, "name");
	idx = json_object_get(o, "index");
	tap = json_object_get(o, "tap");
	up = json_object_get(o, "up");
	port = json_object_get(o, "ssh_port");
	egress = json_object_get(o, "egress");
	if (!json_is_string(name) || !json_is_integer(idx) ||
	    !json_is_string(tap) || strlen(json_string_value(tap)) > 15 ||
	    !json_is_boolean(up) || !json_is_integer(port) ||
	    !json_is_string(egress))
		return seterr(err, errlen, "malformed project entry");
	if (json_integer_value(idx) < 0 ||
	    (uint64_t)json_integer_value(idx) >= st->nslots)
		return seterr(err, errlen, "project %s: index outside the "
		    "pool", json_string_value(name));
	r->name = xstrdup(json_string_value(name));
	r->index = (uint32_t)json_integer_value(idx);
	snprintf(r->tap, sizeof(r->tap), "%s", json_string_value(tap));
	r->up = json_is_true(up);
	r->ssh_port = (int)json_integer_value(port);
	r->egress_allow = strcmp(json_string_value(egress), "deny") != 0;
	return 0;
}

int
net_state_load(const char *state_dir, const char *pool, struct net_state *st,
    char *err, size_t errlen)
{
	char *path = NULL, *data = NULL, e[256];
	json_t *root = NULL, *projects, *p;
	json_error_t jerr;
	size_t len, i;
	int r = -1;

	memset(st, 0, sizeof(*st));
	if (net_pool_parse(pool, &st->base, &st->pool_prefix, err,
	    errlen) == -1)
		return -1;
	st->nslots = 1u << (30 - st->pool_prefix);
	st->pool = xstrdup(pool);
	path = state_path(state_dir);
	if (read_file(path, STATE_MAX, &data, &len, e, sizeof(e)) == -1) {
		if (errno == ENOENT) {
			r = 0;
			goto out;
		}
		seterr(err, errlen, "%s", e);
		goto out;
	}
	if ((root = json_loadb(data, len, 0, &jerr)) == NULL) {
		seterr(err, errlen, "%s:%d: corrupt network state: %s", path,
		    jerr.line, jerr.text);
		goto out;
	}
	p = json_object_get(root, "pool");
	if (!json_is_string(p) || strcmp(json_string_value(p), pool) != 0) {
		seterr(err, errlen, "%s: addresses were allocated from pool "
		    "%s but the configured pool is %s; release every project "
		    "(prisonctl net release) or restore the setting", path,
		    json_is_string(p) ? json_string_value(p) : "?", pool);
		goto out;
	}
	projects = json_object_get(root, "projects");
	if (!json_is_array(projects)) {
		seterr(err, errlen, "%s: no projects array", path);
		goto out;
	}
	st->recs = xcalloc(json_array_size(projects) + 1, sizeof(*st->recs));
	json_array_foreach(projects, i, p) {
		if (parse_rec(p, st, &st->recs[st->nrecs], e,
		    sizeof(e)) == -1) {
			seterr(err, errlen, "%s: %s", path, e);
			goto out;
		}
		st->nrecs++;
	}
	r = 0;
out:
	if (r == -1)
		net_state_free(st);
	json_decref(root);
	free(data);
	free(path);
	return r;
}

int
net_state_save(const char *state_dir, const struct net_state *st, char *err,
    size_t errlen)
{
	json_t *root = NULL, *projects;
	char *path = NULL, *data = NULL;
	const struct net_rec *r;
	size_t i;
	int ret = -1;

	projects = json_array();
	root = json_pack("{s:i, s:s, s:o}", "version", 1, "pool", st->pool,
	    "projects", projects);
	for (i = 0; i < st->nrecs; i++) {
		r = &st->recs[i];
		json_array_append_new(projects, json_pack(
		    "{s:s, s:i, s:s, s:b, s:i, s:s}", "name", r->name,
		    "index", (json_int_t)r->index, "tap", r->tap, "up", r->up,
		    "ssh_port", r->ssh_port, "egress",
		    r->egress_allow ? "allow" : "deny"));
	}
	if ((data = json_dumps(root, JSON_INDENT(1))) == NULL) {
		seterr(err, errlen, "cannot encode the network state");
		goto out;
	}
	path = state_path(state_dir);
	ret = atomic_write(path, data, strlen(data), 0600, err, errlen);
out:
	free(path);
	free(data);
	json_decref(root);
	return ret;
}

struct net_rec *
net_state_find(const struct net_state *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->nrecs; i++)
		if (strcmp(st->recs[i].name, name) == 0)
			return &st->recs[i];
	return NULL;
}

static int
tap_taken(const struct net_state *st, const char *tap)
{
	size_t i;

	for (i = 0; i < st->nrecs; i++)
		if (strcmp(st->recs[i].tap, tap) == 0)
			return 1;
	return 0;
}

/*
 * "tap-NAME" when it fits IFNAMSIZ, else "tp-" and eight hex digits of a
 * hash; a hashed name already held by another project is re-hashed with
 * a counter, so two projects never share a TAP.
 */
static void
tap_name(const struct net_state *st, const char *name, char *tap, size_t len)
{
	char salted[128];
	unsigned n;

	if (strlen("tap-") + strlen(name) < 16) {
		snprintf(tap, len, "tap-%s", name);
		if (!tap_taken(st, tap))
			return;
	}
	snprintf(tap, len, "tp-%08x", net_hash(name));
	for (n = 1; tap_taken(st, tap); n++) {
		snprintf(salted, sizeof(salted), "%s#%u", name, n);
		snprintf(tap, len, "tp-%08x", net_hash(salted));
	}
}

/*
 * Bitmap of used slots built per call: the records are the only truth and
 * a pool of /8 has 4M slots, so a byte per slot is affordable only up to
 * that and the scan stops at the first free slot anyway.
 */
struct net_rec *
net_state_alloc(struct net_state *st, const char *name, char *err,
    size_t errlen)
{
	struct net_rec *r;
	uint8_t *used = NULL;
	uint32_t start, i, slot = 0;
	int found = 0;
	size_t k;

	if ((r = net_state_find(st, name)) != NULL)
		return r;
	used = xcalloc(st->nslots, 1);
	for (k = 0; k < st->nrecs; k++)
		used[st->recs[k].index] = 1;
	start = net_hash(name) % st->nslots;
	for (i = 0; i < st->nslots; i++) {
		slot = (start + i) % st->nslots;
		if (!used[slot]) {
			found = 1;
			break;
		}
	}
	free(used);
	if (!found) {
		seterr(err, errlen, "address pool %s is exhausted: its %u "
		    "subnets (/30) are all allocated; enlarge [network] pool "
		    "or delete projects", st->pool, st->nslots);
		return NULL;
	}
	st->recs = xreallocarray(st->recs, st->nrecs + 1, sizeof(*st->recs));
	r = &st->recs[st->nrecs];
	memset(r, 0, sizeof(*r));
	r->index = slot;
	tap_name(st, name, r->tap, sizeof(r->tap));
	r->name = xstrdup(name);
	r->egress_allow = 1;
	st->nrecs++;
	return r;
}

void
net_state_remove(struct net_state *st, const char *name)
{
	struct net_rec *r;
	size_t i;

	if ((r = net_state_find(st, name)) == NULL)
		return;
	i = (size_t)(r - st->recs);
	free(r->name);
	memmove(&st->recs[i], &st->recs[i + 1],
	    (st->nrecs - i - 1) * sizeof(*r));
	st->nrecs--;
}

void
net_rec_addrs(const struct net_state *st, const struct net_rec *r,
    char *host, char *guest, size_t len)
{
	struct in_addr a;
	uint32_t net = st->base + r->index * 4;

	a.s_addr = htonl(net + 1);
	inet_ntop(AF_INET, &a, host, len);
	a.s_addr = htonl(net + 2);
	inet_ntop(AF_INET, &a, guest, len);
}

/* Locally administered, stable per project; each TAP is its own link. */
void
net_rec_mac(const struct net_rec *r, char *mac, size_t len)
{
	uint32_t h = net_hash(r->name);

	snprintf(mac, len, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff,
	    (h >> 8) & 0xff, h & 0xff);
}
