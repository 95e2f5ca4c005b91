/*
 * The network layer's public functions (net.h): each takes the lock,
 * reads the recorded state (one project's, or all for rebuilds), records
 * the change and then makes the kernel match.  The record is written
 * before the kernel is touched, so a crash at any point leaves a record
 * that net_init can make true again.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "names.h"
#include "net.h"
#include "net_int.h"
#include "xmalloc.h"

static int
net_begin(const struct prison_config *cfg, struct net_state *st, int *lockfd,
    int all, char *err, size_t errlen)
{
	char *lock = NULL;

	*lockfd = -1;
	memset(st, 0, sizeof(*st));
	if (mkdir_p(cfg->state_dir, 0755, err, errlen) == -1)
		return -1;
	lock = xasprintf("%s/%s", cfg->state_dir, NET_LOCK_FILE);
	*lockfd = lock_path(lock, 1, err, errlen);
	free(lock);
	if (*lockfd == -1)
		return -1;
	if (net_state_open(cfg->state_dir, cfg->pool, st, err,
	    errlen) == -1 || (all && net_state_load(st, err, errlen) == -1)) {
		net_state_free(st);
		close(*lockfd);
		*lockfd = -1;
		return -1;
	}
	return 0;
}

static void
net_end(struct net_state *st, int lockfd)
{
	net_state_free(st);
	if (lockfd != -1)
		close(lockfd);
}

/*
 * The VMM user must exist: the provisioner does not create accounts
 * behind the admin's back (docs/network.md says how to make it).
 */
static int
vmm_ids(const struct prison_config *cfg, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(cfg->vmm_user)) == NULL)
		return seterr(err, errlen, "VMM user \"%s\" does not exist; "
		    "create it (useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin %s) or set [provisioner] vmm_user",
		    cfg->vmm_user, cfg->vmm_user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
lan_iface(const struct prison_config *cfg, char *buf, size_t len, char *err,
    size_t errlen)
{
	if (cfg->lan_interface != NULL && *cfg->lan_interface != '\0') {
		snprintf(buf, len, "%s", cfg->lan_interface);
		return 0;
	}
	return net_default_iface(buf, len, err, errlen);
}

/* st must hold every record (net_state_load). */
static int
rebuild(const struct prison_config *cfg, const struct net_state *st,
    char *err, size_t errlen)
{
	char lan[64];

	if (lan_iface(cfg, lan, sizeof(lan), err, errlen) == -1)
		return -1;
	return nft_rebuild(cfg, st, lan, err, errlen);
}

static void
info_fill(const struct net_state *st, const struct net_rec *r,
    struct net_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->tap, sizeof(info->tap), "%s", r->tap);
	net_rec_addrs(st, r, info->host_ip, info->guest_ip,
	    sizeof(info->host_ip));
	net_rec_mac(r, info->mac, sizeof(info->mac));
	info->prefix = NET_PREFIX;
	info->ssh_port = r->ssh_port;
	info->egress_allow = r->egress_allow;
	info->up = r->up;
	info->tap_present = tap_exists(r->tap);
}

/*
 * An unlabelled TAP under a name this project claims, while its record
 * says up, is one a crash left half-made (an older prison labelled it
 * only after making it persistent): taken over, not refused.
 */
static int
rec_adopt(const struct net_state *st, const struct net_rec *r)
{
	return r->up && net_tap_claimed(st, r->tap, r->name);
}

static int
rec_tap_ensure(const struct net_state *st, const struct net_rec *r,
    int adopt, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char host[16], guest[16];

	net_rec_addrs(st, r, host, guest, sizeof(host));
	return tap_ensure(r->tap, r->name, adopt, uid, gid, host, NET_PREFIX,
	    err, errlen);
}

struct stray {
	char	(*taps)[16];
	char	**projects;
	size_t	  n;
};

static void
stray_add(const char *tap, const char *project, void *arg)
{
	struct stray *s = arg;

	s->taps = xreallocarray(s->taps, s->n + 1, sizeof(*s->taps));
	s->projects = xreallocarray(s->projects, s->n + 1,
	    sizeof(*s->projects));
	snprintf(s->taps[s->n], sizeof(s->taps[0]), "%s", tap);
	s->projects[s->n++] = xstrdup(project);
}

/* Delete every prison-labelled interface no up record accounts for. */
static int
strays_remove(const struct net_state *st, char *err, size_t errlen)
{
	struct stray s;
	struct net_rec *r;
	size_t i;
	int ret = 0;

	memset(&s, 0, sizeof(s));
	if (tap_foreach_prison(stray_add, &s, err, errlen) == -1)
		return -1;
	for (i = 0; i < s.n; i++) {
		r = net_state_find(st, s.projects[i]);
		if (r != NULL && r->up && strcmp(r->tap, s.taps[i]) == 0)
			continue;
		if (tap_delete(s.taps[i], s.projects[i], 0, err,
		    errlen) == -1)
			ret = -1;
	}
	for (i = 0; i < s.n; i++)
		free(s.projects[i]);
	free(s.projects);
	free(s.taps);
	return ret;
}

/*
 * Make the kernel match the records: forwarding on, every up project's
 * TAP present and configured, strays gone, the table rebuilt.  Carries on
 * past a failing project so one bad TAP does not take the others down;
 * the first error is reported.
 */
static int
sync_all(const struct prison_config *cfg, const struct net_state *st,
    char *err, size_t errlen)
{
	char e[512];
	uid_t uid = 0;
	gid_t gid = 0;
	size_t i;
	int ret = 0, have_ids = 0;

	if (net_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err,
	    errlen) == -1)
		return -1;
	for (i = 0; i < st->nrecs; i++) {
		if (!st->recs[i].up)
			continue;
		if (!have_ids && vmm_ids(cfg, &uid, &gid, err, errlen) == -1)
			return -1;
		have_ids = 1;
		if (rec_tap_ensure(st, &st->recs[i], rec_adopt(st,
		    &st->recs[i]), uid, gid, e, sizeof(e)) == -1 &&
		    ret == 0) {
			seterr(err, errlen, "%s", e);
			ret = -1;
		}
	}
	if (strays_remove(st, e, sizeof(e)) == -1 && ret == 0) {
		seterr(err, errlen, "%s", e);
		ret = -1;
	}
	if (rebuild(cfg, st, e, sizeof(e)) == -1) {
		seterr(err, errlen, "%s", e);
		ret = -1;
	}
	return ret;
}

int
net_init(const struct prison_config *cfg, char *err, size_t errlen)
{
	struct net_state st;
	int lockfd, ret = -1;

	if (net_begin(cfg, &st, &lockfd, 1, err, errlen) == -1)
		return -1;
	if (net_claims_tidy(&st, err, errlen) == 0)
		ret = sync_all(cfg, &st, err, errlen);
	net_end(&st, lockfd);
	return ret;
}

int
net_rebuild(const struct prison_config *cfg, char *err, size_t errlen)
{
	struct net_state st;
	int lockfd, ret;

	if (net_begin(cfg, &st, &lockfd, 1, err, errlen) == -1)
		return -1;
	ret = rebuild(cfg, &st, err, errlen);
	net_end(&st, lockfd);
	return ret;
}

/*
 * Incremental change of one project's elements; a table that disagrees
 * (missing, or flushed by hand) is rebuilt from every record instead.
 */
static int
apply(const struct prison_config *cfg, struct net_state *st,
    const struct net_rec *del, const struct net_rec *add, char *err,
    size_t errlen)
{
	if (nft_project(cfg, st, del, add, err, errlen) == 0)
		return 0;
	if (st->nrecs == 0 && net_state_load(st, err, errlen) == -1)
		return -1;
	return rebuild(cfg, st, err, errlen);
}

/* The port of [gateway] listen ("ADDR:PORT"), which DNAT must not take. */
static int
gateway_port(const struct prison_config *cfg)
{
	const char *colon;

	if (cfg->listen == NULL || (colon = strrchr(cfg->listen, ':')) == NULL)
		return -1;
	return atoi(colon + 1);
}

/* What net_up checks before touching anything. */
static int
up_check(const struct prison_config *cfg, const struct net_project *p,
    uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	int l;

	if (name_valid_project(p->name, err, errlen) == -1)
		return -1;
	if (p->ssh_port < 0 || p->ssh_port > 65535)
		return seterr(err, errlen, "project %s: ssh_port %d is not a "
		    "port", p->name, p->ssh_port);
	if (p->ssh_port > 0 && p->ssh_port == gateway_port(cfg))
		return seterr(err, errlen, "project %s: ssh_port %d is the "
		    "gateway's own port ([gateway] listen)", p->name,
		    p->ssh_port);
	if (p->ssh_port > 0 && (l = net_port_listening(p->ssh_port, err,
	    errlen)) != 0)
		return l == -1 ? -1 : seterr(err, errlen, "project %s: "
		    "ssh_port %d: a host process listens on TCP port %d, and "
		    "the DNAT would take it over; stop it or choose another "
		    "port", p->name, p->ssh_port, p->ssh_port);
	return vmm_ids(cfg, uid, gid, err, errlen);
}

/* net_up with the lock held; st holds no records or all of them. */
static int
up_locked(const struct prison_config *cfg, struct net_state *st,
    const struct net_project *p, struct net_info *info, char *err,
    size_t errlen)
{
	struct net_rec r, old;
	char e[256];
	uid_t uid = 0;
	gid_t gid = 0;
	int fresh = 0, adopt, ret = -1;

	memset(&r, 0, sizeof(r));
	if (up_check(cfg, p, &uid, &gid, err, errlen) == -1)
		return -1;
	if (net_rec_alloc(st, p->name, &r, &fresh, err, errlen) == -1)
		goto out;
	old = r;
	adopt = rec_adopt(st, &old);
	if (tap_check(r.tap, p->name, adopt, err, errlen) == -1 ||
	    net_port_claim(st, p->name, p->ssh_port, err, errlen) == -1) {
		if (fresh)	/* nothing saved yet: give the claims back */
			(void)net_rec_forget(st, &r, e, sizeof(e));
		goto out;
	}
	r.ssh_port = p->ssh_port;
	r.egress_allow = p->egress_allow;
	r.up = 1;
	if (net_rec_put(st, &r, err, errlen) == -1)
		goto undo;
	if (net_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err,
	    errlen) == -1 ||
	    rec_tap_ensure(st, &r, adopt, uid, gid, err, errlen) == -1 ||
	    apply(cfg, st, old.up ? &old : NULL, &r, err, errlen) == -1)
		goto undo;
	if (old.up && old.ssh_port != r.ssh_port)
		net_port_unclaim(st, p->name, old.ssh_port);
	info_fill(st, &r, info);
	ret = 0;
	goto out;
undo:
	/* Record what was there before; reconcile tidies the kernel. */
	if (!(old.up && old.ssh_port == p->ssh_port))
		net_port_unclaim(st, p->name, p->ssh_port);
	(void)net_rec_put(st, &old, e, sizeof(e));
out:
	net_rec_clear(&r);
	return ret;
}

int
net_up(const struct prison_config *cfg, const struct net_project *p,
    struct net_info *info, char *err, size_t errlen)
{
	struct net_state st;
	int lockfd, ret;

	if (net_begin(cfg, &st, &lockfd, 0, err, errlen) == -1)
		return -1;
	ret = up_locked(cfg, &st, p, info, err, errlen);
	net_end(&st, lockfd);
	return ret;
}

/* With the lock held: elements out, TAP gone, conntrack flushed. */
static int
down_locked(const struct prison_config *cfg, struct net_state *st,
    struct net_rec *r, char *err, size_t errlen)
{
	struct net_rec was = *r;
	char host[16], guest[16];
	int adopt = rec_adopt(st, &was);

	r->up = 0;
	if (net_rec_put(st, r, err, errlen) == -1)
		return -1;
	if (was.up && apply(cfg, st, &was, NULL, err, errlen) == -1)
		return -1;
	net_port_unclaim(st, r->name, r->ssh_port);
	if (tap_delete(r->tap, r->name, adopt, err, errlen) == -1)
		return -1;
	net_rec_addrs(st, r, host, guest, sizeof(host));
	return ct_flush_addr(guest, err, errlen);
}

int
net_down(const struct prison_config *cfg, const char *project, char *err,
    size_t errlen)
{
	struct net_state st;
	struct net_rec r;
	int lockfd, ret;

	memset(&r, 0, sizeof(r));
	if (net_begin(cfg, &st, &lockfd, 0, err, errlen) == -1)
		return -1;
	if ((ret = net_rec_get(&st, project, &r, err, errlen)) == 0)
		ret = down_locked(cfg, &st, &r, err, errlen);
	else if (ret == 1)
		ret = 0;
	net_rec_clear(&r);
	net_end(&st, lockfd);
	return ret;
}

int
net_release(const struct prison_config *cfg, const char *project, char *err,
    size_t errlen)
{
	struct net_state st;
	struct net_rec r;
	int lockfd, ret;

	memset(&r, 0, sizeof(r));
	if (net_begin(cfg, &st, &lockfd, 0, err, errlen) == -1)
		return -1;
	if ((ret = net_rec_get(&st, project, &r, err, errlen)) == 0 &&
	    (ret = down_locked(cfg, &st, &r, err, errlen)) == 0)
		ret = net_rec_forget(&st, &r, err, errlen);
	else if (ret == 1)
		ret = 0;
	net_rec_clear(&r);
	net_end(&st, lockfd);
	return ret;
}

int
net_show(const struct prison_config *cfg, const char *project,
    struct net_info *info, char *err, size_t errlen)
{
	struct net_state st;
	struct net_rec r;
	int lockfd, ret;

	memset(&r, 0, sizeof(r));
	if (net_begin(cfg, &st, &lockfd, 0, err, errlen) == -1)
		return -1;
	if ((ret = net_rec_get(&st, project, &r, err, errlen)) == 0)
		info_fill(&st, &r, info);
	net_rec_clear(&r);
	net_end(&st, lockfd);
	return ret;
}

static const struct net_project *
known_find(const struct net_project *known, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(known[i].name, name) == 0)
			return &known[i];
	return NULL;
}

/* Is port held by an up record before index i? */
static int
port_taken_before(const struct net_state *st, size_t i, int port)
{
	size_t j;

	for (j = 0; j < i && port > 0; j++)
		if (st->recs[j].up && st->recs[j].ssh_port == port)
			return 1;
	return 0;
}

int
net_reconcile(const struct prison_config *cfg,
    const struct net_project *known, size_t nknown, char *err, size_t errlen)
{
	struct net_state st;
	const struct net_project *k;
	struct net_rec *r;
	char host[16], guest[16], e[512], **gone = NULL;
	size_t i, ngone = 0;
	int lockfd, ret = -1, port;

	if (net_begin(cfg, &st, &lockfd, 1, err, errlen) == -1)
		return -1;
	for (i = 0; i < st.nrecs; ) {
		r = &st.recs[i];
		if ((k = known_find(known, nknown, r->name)) == NULL) {
			net_rec_addrs(&st, r, host, guest, sizeof(host));
			if (net_rec_forget(&st, r, err, errlen) == -1)
				goto out;
			gone = xreallocarray(gone, ngone + 1, sizeof(*gone));
			gone[ngone++] = xstrdup(guest);
			net_rec_clear(r);
			st.recs[i] = st.recs[--st.nrecs];
			continue;
		}
		/* Two projects given one port: the earlier keeps it. */
		port = port_taken_before(&st, i, k->ssh_port) ? 0 :
		    k->ssh_port;
		if (r->egress_allow != k->egress_allow ||
		    r->ssh_port != port) {
			r->egress_allow = k->egress_allow;
			r->ssh_port = port;
			if (net_rec_put(&st, r, err, errlen) == -1)
				goto out;
		}
		i++;
	}
	if (net_claims_tidy(&st, err, errlen) == -1)
		goto out;
	ret = sync_all(cfg, &st, err, errlen);
	for (i = 0; i < ngone; i++)
		if (ct_flush_addr(gone[i], e, sizeof(e)) == -1 && ret == 0) {
			seterr(err, errlen, "%s", e);
			ret = -1;
		}
out:
	for (i = 0; i < ngone; i++)
		free(gone[i]);
	free(gone);
	net_end(&st, lockfd);
	return ret;
}

/*
 * Each project is changed as net_up would, on a state of its own that
 * holds no records, so that a fallback rebuild reads them all afresh.
 */
int
net_refresh(const struct prison_config *cfg,
    const struct net_project *known, size_t nknown, char *err, size_t errlen)
{
	struct net_state st, one;
	const struct net_project *k;
	const struct net_rec *r;
	struct net_info info;
	char e[512];
	size_t i;
	int lockfd, ret = 0;

	if (net_begin(cfg, &st, &lockfd, 1, err, errlen) == -1)
		return -1;
	for (i = 0; i < st.nrecs; i++) {
		r = &st.recs[i];
		if (!r->up || (k = known_find(known, nknown, r->name)) ==
		    NULL || (k->ssh_port == r->ssh_port &&
		    k->egress_allow == r->egress_allow))
			continue;
		if ((net_state_open(cfg->state_dir, cfg->pool, &one, e,
		    sizeof(e)) == -1 || up_locked(cfg, &one, k, &info, e,
		    sizeof(e)) == -1) && ret == 0)
			ret = seterr(err, errlen, "%s", e);
		net_state_free(&one);
	}
	net_end(&st, lockfd);
	return ret;
}
