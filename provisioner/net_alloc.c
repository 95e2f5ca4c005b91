/*
 * Subnet allocation and the network state.
 *
 * A project's /30 is chosen once: slot = hash(name) mod slots, probing
 * forward on collision, and recorded so it never moves, whatever else is
 * added or removed later.  The state lives in state_dir/net/, one small
 * file per fact, so that bringing one project up or down reads and writes
 * only its own files however many projects exist:
 *
 *   pool               the pool the slots index into
 *   projects/NAME      "INDEX TAP up|down PORT allow|deny": the record
 *   slots/INDEX        NAME: claim on a /30
 *   taps/TAP           NAME: claim on an interface name
 *   ports/PORT         NAME: claim on a host port
 *
 * The project file is the truth.  Claims are taken before it is written
 * and dropped after it is removed, so a crash can only leave a claim
 * without a project, which net_claims_tidy() removes.  Callers hold
 * state_dir/net.lock.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "net_int.h"
#include "xmalloc.h"

#define REC_MAX		256

static const char *const subdirs[] = { "projects", "slots", "taps", "ports" };

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
net_rec_clear(struct net_rec *r)
{
	free(r->name);
	memset(r, 0, sizeof(*r));
}

void
net_state_free(struct net_state *st)
{
	size_t i;

	for (i = 0; i < st->nrecs; i++)
		free(st->recs[i].name);
	free(st->recs);
	free(st->pool);
	free(st->dir);
	memset(st, 0, sizeof(*st));
}

/* Small text files: the whole content, trailing newline removed. */
static int
small_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static char *
fact_path(const struct net_state *st, const char *kind, const char *key)
{
	return xasprintf("%s/%s/%s", st->dir, kind, key);
}

int
net_state_open(const char *state_dir, const char *pool, struct net_state *st,
    char *err, size_t errlen)
{
	char *path = NULL, buf[64];
	size_t i;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	if (net_pool_parse(pool, &st->base, &st->pool_prefix, err,
	    errlen) == -1)
		return -1;
	st->nslots = 1u << (30 - st->pool_prefix);
	st->pool = xstrdup(pool);
	st->dir = xasprintf("%s/net", state_dir);
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		free(path);
		path = xasprintf("%s/%s", st->dir, subdirs[i]);
		if (mkdir_p(path, 0700, err, errlen) == -1)
			goto out;
	}
	free(path);
	path = xasprintf("%s/pool", st->dir);
	if (small_read(path, buf, sizeof(buf)) == -1) {
		if (errno != ENOENT) {
			seterr(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		snprintf(buf, sizeof(buf), "%s\n", pool);
		if (atomic_write(path, buf, strlen(buf), 0600, err,
		    errlen) == -1)
			goto out;
	} else if (strcmp(buf, pool) != 0) {
		seterr(err, errlen, "%s: addresses were allocated from pool "
		    "%s but the configured pool is %s; restore the setting, "
		    "or release every project (prisonctl net release) and "
		    "remove %s", st->dir, buf, pool, st->dir);
		goto out;
	}
	ret = 0;
out:
	free(path);
	if (ret == -1)
		net_state_free(st);
	return ret;
}

static int
rec_parse(const struct net_state *st, const char *name, const char *line,
    struct net_rec *r)
{
	char tap[32], up[8], egress[8];
	unsigned long idx;
	int port;

	if (sscanf(line, "%lu %31s %7s %d %7s", &idx, tap, up, &port,
	    egress) != 5 || idx >= st->nslots || strlen(tap) > 15 ||
	    port < 0 || port > 65535)
		return -1;
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(name);
	r->index = (uint32_t)idx;
	snprintf(r->tap, sizeof(r->tap), "%s", tap);
	r->up = strcmp(up, "up") == 0;
	r->ssh_port = port;
	r->egress_allow = strcmp(egress, "deny") != 0;
	return 0;
}

int
net_rec_get(const struct net_state *st, const char *name, struct net_rec *r,
    char *err, size_t errlen)
{
	char *path, line[REC_MAX];
	int ret = -1;

	path = fact_path(st, "projects", name);
	if (small_read(path, line, sizeof(line)) == -1) {
		if (errno == ENOENT)
			ret = 1;
		else
			seterr(err, errlen, "%s: %s", path, strerror(errno));
	} else if (rec_parse(st, name, line, r) == -1)
		seterr(err, errlen, "%s: malformed record \"%s\"", path, line);
	else
		ret = 0;
	free(path);
	return ret;
}

int
net_rec_put(const struct net_state *st, const struct net_rec *r, char *err,
    size_t errlen)
{
	char *path, line[REC_MAX];
	int ret;

	snprintf(line, sizeof(line), "%u %s %s %d %s\n", r->index, r->tap,
	    r->up ? "up" : "down", r->ssh_port,
	    r->egress_allow ? "allow" : "deny");
	path = fact_path(st, "projects", r->name);
	ret = atomic_write(path, line, strlen(line), 0600, err, errlen);
	free(path);
	return ret;
}

/* Every record, for rebuilds and reconciling. */
int
net_state_load(struct net_state *st, char *err, size_t errlen)
{
	char *path = NULL, e[256];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	path = xasprintf("%s/projects", st->dir);
	if ((d = opendir(path)) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strchr(de->d_name, '.') != NULL)
			continue;	/* ., .., atomic_write temporaries */
		st->recs = xreallocarray(st->recs, st->nrecs + 1,
		    sizeof(*st->recs));
		if (net_rec_get(st, de->d_name, &st->recs[st->nrecs], e,
		    sizeof(e)) == 0)
			st->nrecs++;
		else if (ret == 0) {
			seterr(err, errlen, "%s", e);
			ret = -1;
		}
	}
	closedir(d);
	free(path);
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

/* 0 claimed (or already this project's), 1 someone else's, -1 error. */
static int
claim(const struct net_state *st, const char *kind, const char *key,
    const char *name, char *err, size_t errlen)
{
	char *path, holder[REC_MAX];
	int fd, ret = -1;

	path = fact_path(st, kind, key);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) != -1) {
		if (write(fd, name, strlen(name)) != (ssize_t)strlen(name) ||
		    fsync(fd) == -1) {
			seterr(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			goto out;
		}
		close(fd);
		ret = 0;
	} else if (errno == EEXIST && small_read(path, holder,
	    sizeof(holder)) == 0)
		ret = strcmp(holder, name) == 0 ? 0 : 1;
	else
		seterr(err, errlen, "%s: %s", path, strerror(errno));
out:
	free(path);
	return ret;
}

/* Remove a claim if name holds it. */
static void
unclaim(const struct net_state *st, const char *kind, const char *key,
    const char *name)
{
	char *path, holder[REC_MAX];

	path = fact_path(st, kind, key);
	if (small_read(path, holder, sizeof(holder)) == 0 &&
	    strcmp(holder, name) == 0)
		unlink(path);
	free(path);
}

/*
 * "tap-NAME" when it fits IFNAMSIZ, else "tp-" and eight hex digits of a
 * hash; a name already claimed by another project is re-hashed with a
 * counter, so two projects never share a TAP.
 */
static int
tap_claim(const struct net_state *st, const char *name, char *tap,
    size_t len, char *err, size_t errlen)
{
	char salted[128];
	unsigned n;
	int r;

	if (strlen("tap-") + strlen(name) < 16) {
		snprintf(tap, len, "tap-%s", name);
		if ((r = claim(st, "taps", tap, name, err, errlen)) != 1)
			return r;
	}
	snprintf(tap, len, "tp-%08x", net_hash(name));
	for (n = 1; n < 1000; n++) {
		if ((r = claim(st, "taps", tap, name, err, errlen)) != 1)
			return r;
		snprintf(salted, sizeof(salted), "%s#%u", name, n);
		snprintf(tap, len, "tp-%08x", net_hash(salted));
	}
	return seterr(err, errlen, "no free TAP name for %s", name);
}

int
net_rec_alloc(const struct net_state *st, const char *name,
    struct net_rec *r, int *fresh, char *err, size_t errlen)
{
	char key[16];
	uint32_t start, i, slot;
	int c;

	*fresh = 0;
	if ((c = net_rec_get(st, name, r, err, errlen)) != 1)
		return c;
	start = net_hash(name) % st->nslots;
	for (i = 0; i < st->nslots; i++) {
		slot = (start + i) % st->nslots;
		snprintf(key, sizeof(key), "%u", slot);
		if ((c = claim(st, "slots", key, name, err, errlen)) == -1)
			return -1;
		if (c == 0)
			break;
	}
	if (i == st->nslots)
		return seterr(err, errlen, "address pool %s is exhausted: its "
		    "%u subnets (/30) are all allocated; enlarge [network] "
		    "pool or delete projects", st->pool, st->nslots);
	memset(r, 0, sizeof(*r));
	r->index = slot;
	r->egress_allow = 1;
	if (tap_claim(st, name, r->tap, sizeof(r->tap), err, errlen) == -1) {
		unclaim(st, "slots", key, name);
		return -1;
	}
	r->name = xstrdup(name);
	*fresh = 1;
	return 0;
}

/*
 * Claim port for name.  A claim left by a project that no longer has the
 * port up is stale and taken over; a live one is an error naming it.
 */
int
net_port_claim(const struct net_state *st, const char *name, int port,
    char *err, size_t errlen)
{
	struct net_rec other;
	char key[16], *path, holder[REC_MAX];
	int c, live;

	if (port <= 0)
		return 0;
	snprintf(key, sizeof(key), "%d", port);
	if ((c = claim(st, "ports", key, name, err, errlen)) != 1)
		return c;
	path = fact_path(st, "ports", key);
	if (small_read(path, holder, sizeof(holder)) == -1) {
		free(path);
		return seterr(err, errlen, "port %d: claim vanished", port);
	}
	live = net_rec_get(st, holder, &other, err, errlen) == 0 &&
	    other.up && other.ssh_port == port;
	if (live) {
		seterr(err, errlen, "project %s: port %d is already "
		    "forwarded to project %s", name, port, holder);
		net_rec_clear(&other);
		free(path);
		return -1;
	}
	net_rec_clear(&other);
	c = atomic_write(path, name, strlen(name), 0600, err, errlen);
	free(path);
	return c;
}

void
net_port_unclaim(const struct net_state *st, const char *name, int port)
{
	char key[16];

	if (port <= 0)
		return;
	snprintf(key, sizeof(key), "%d", port);
	unclaim(st, "ports", key, name);
}

int
net_rec_forget(const struct net_state *st, const struct net_rec *r,
    char *err, size_t errlen)
{
	char key[16], *path;

	path = fact_path(st, "projects", r->name);
	if (unlink(path) == -1 && errno != ENOENT) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	net_port_unclaim(st, r->name, r->ssh_port);
	unclaim(st, "taps", r->tap, r->name);
	snprintf(key, sizeof(key), "%u", r->index);
	unclaim(st, "slots", key, r->name);
	return 0;
}

/* Does the loaded record for holder justify this claim? */
static int
claim_valid(const struct net_state *st, const char *kind, const char *key,
    const char *holder)
{
	const struct net_rec *r;
	char buf[16];

	if ((r = net_state_find(st, holder)) == NULL)
		return 0;
	if (strcmp(kind, "slots") == 0) {
		snprintf(buf, sizeof(buf), "%u", r->index);
		return strcmp(buf, key) == 0;
	}
	if (strcmp(kind, "taps") == 0)
		return strcmp(r->tap, key) == 0;
	snprintf(buf, sizeof(buf), "%d", r->ssh_port);
	return r->up && strcmp(buf, key) == 0;
}

/*
 * After a crash: drop claims no record accounts for (and temporaries of
 * interrupted writes) and re-take the claims records need.  st must hold
 * every record (net_state_load).
 */
int
net_claims_tidy(const struct net_state *st, char *err, size_t errlen)
{
	char *path, *f, holder[REC_MAX], key[16];
	struct dirent *de;
	size_t i, k;
	DIR *d;

	for (k = 0; k < sizeof(subdirs) / sizeof(subdirs[0]); k++) {
		path = xasprintf("%s/%s", st->dir, subdirs[k]);
		if ((d = opendir(path)) == NULL) {
			seterr(err, errlen, "%s: %s", path, strerror(errno));
			free(path);
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			f = xasprintf("%s/%s", path, de->d_name);
			/* projects/: only temporaries of a crashed write. */
			if (k == 0) {
				if (strchr(de->d_name, '.') != NULL)
					unlink(f);
			} else if (strchr(de->d_name, '.') != NULL ||
			    small_read(f, holder, sizeof(holder)) == -1 ||
			    !claim_valid(st, subdirs[k], de->d_name, holder))
				unlink(f);
			free(f);
		}
		closedir(d);
		free(path);
	}
	for (i = 0; i < st->nrecs; i++) {
		snprintf(key, sizeof(key), "%u", st->recs[i].index);
		if (claim(st, "slots", key, st->recs[i].name, err,
		    errlen) != 0 || claim(st, "taps", st->recs[i].tap,
		    st->recs[i].name, err, errlen) != 0)
			return seterr(err, errlen, "project %s: its slot or "
			    "TAP name is claimed by another project",
			    st->recs[i].name);
		if (st->recs[i].up && net_port_claim(st, st->recs[i].name,
		    st->recs[i].ssh_port, err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
net_tap_claimed(const struct net_state *st, const char *tap,
    const char *name)
{
	char *path, holder[REC_MAX];
	int r;

	path = fact_path(st, "taps", tap);
	r = small_read(path, holder, sizeof(holder)) == 0 &&
	    strcmp(holder, name) == 0;
	free(path);
	return r;
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
