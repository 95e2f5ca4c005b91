/*
 * TAP devices, their addresses and sysctls.  The kernel creates TAPs only
 * through /dev/net/tun ioctls; everything else (alias, address, link
 * state, listing, the default route) goes through libnl-route.
 *
 * Ownership: every TAP prison creates carries the interface alias
 * "prison:PROJECT", set before the TAP is made persistent, so a crash
 * leaves either no TAP or a labelled one.  An interface with the right
 * name but another alias (or none) was made by someone else and is
 * refused, never reused; the one exception is an unlabelled TAP the
 * caller vouches for (adopt: the name is claimed for this project and
 * recorded up), which an older prison may have left half-made.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include "log.h"
#include "net_int.h"
#include "xmalloc.h"

/*
 * Per-TAP IPv4 settings: strict reverse-path filtering backs the nftables
 * anti-spoof rule, no proxy ARP or redirects, no local-source tricks, and
 * ARP answered only for the TAP's own address.  IPv6 is switched off on
 * the TAP so the host gets no link-local address a guest could reach.
 */
static const struct {
	const char	*key;
	const char	*value;
} tap_sysctls[] = {
	{ "rp_filter", "1" },
	{ "proxy_arp", "0" },
	{ "accept_local", "0" },
	{ "route_localnet", "0" },
	{ "send_redirects", "0" },
	{ "accept_redirects", "0" },
	{ "arp_ignore", "1" },
	{ "arp_announce", "2" },
};

int
net_sysctl(const char *path, const char *value, char *err, size_t errlen)
{
	int fd, saved;
	ssize_t n;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	n = write(fd, value, strlen(value));
	saved = errno;
	close(fd);
	if (n != (ssize_t)strlen(value))
		return seterr(err, errlen, "%s: cannot write %s: %s", path,
		    value, strerror(saved));
	return 0;
}

static int
tap_sysctls_set(const char *tap, char *err, size_t errlen)
{
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(tap_sysctls) / sizeof(tap_sysctls[0]); i++) {
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s",
		    tap, tap_sysctls[i].key);
		if (net_sysctl(path, tap_sysctls[i].value, err, errlen) == -1)
			return -1;
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
	    tap);
	if (access(path, F_OK) == 0 &&
	    net_sysctl(path, "1", err, errlen) == -1)
		return -1;
	return 0;
}

static struct nl_sock *
nl_open(char *err, size_t errlen)
{
	struct nl_sock *sk;
	int r;

	if ((sk = nl_socket_alloc()) == NULL) {
		seterr(err, errlen, "netlink: cannot allocate a socket");
		return NULL;
	}
	if ((r = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		seterr(err, errlen, "netlink: %s", nl_geterror(r));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

/* An unlabelled TAP the caller vouches for (see the top of the file). */
static int
adoptable(struct rtnl_link *link, const char *alias, int adopt)
{
	const char *type = rtnl_link_get_type(link);

	return adopt && (alias == NULL || *alias == '\0') && type != NULL &&
	    strcmp(type, "tun") == 0;
}

/* 1 ours, 0 absent, -1 someone else's (err filled). */
static int
tap_owned(struct nl_sock *sk, const char *tap, const char *project,
    int adopt, struct rtnl_link **linkp, char *err, size_t errlen)
{
	struct rtnl_link *link = NULL;
	char want[64];
	const char *alias;

	if (rtnl_link_get_kernel(sk, 0, tap, &link) < 0)
		return 0;
	snprintf(want, sizeof(want), NET_ALIAS_PREFIX "%s", project);
	alias = rtnl_link_get_ifalias(link);
	if ((alias == NULL || strcmp(alias, want) != 0) &&
	    !adoptable(link, alias, adopt)) {
		seterr(err, errlen, "interface %s exists and was not created "
		    "by prison for project %s (alias \"%s\"); refusing to use "
		    "it", tap, project, alias ? alias : "");
		rtnl_link_put(link);
		return -1;
	}
	if (linkp != NULL)
		*linkp = link;
	else
		rtnl_link_put(link);
	return 1;
}

static int
tap_label(struct nl_sock *sk, struct rtnl_link *link, const char *project,
    char *err, size_t errlen)
{
	struct rtnl_link *chg = NULL;
	char alias[64];
	int r;

	chg = rtnl_link_alloc();
	snprintf(alias, sizeof(alias), NET_ALIAS_PREFIX "%s", project);
	rtnl_link_set_ifalias(chg, alias);
	r = rtnl_link_change(sk, link, chg, 0);
	rtnl_link_put(chg);
	if (r < 0)
		return seterr(err, errlen, "%s: cannot label: %s",
		    rtnl_link_get_name(link), nl_geterror(r));
	return 0;
}

/*
 * Until TUNSETPERSIST the TAP lives only as long as fd: labelling it
 * first means a crash never leaves a persistent TAP without its label.
 */
static int
tap_create(struct nl_sock *sk, const char *tap, const char *project,
    uid_t uid, gid_t gid, struct rtnl_link **linkp, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, r = -1;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1)
		return seterr(err, errlen, "/dev/net/tun: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		seterr(err, errlen, "%s: cannot create TAP: %s", tap,
		    strerror(errno));
		goto out;
	}
	if (ioctl(fd, TUNSETOWNER, (unsigned long)uid) == -1 ||
	    ioctl(fd, TUNSETGROUP, (unsigned long)gid) == -1) {
		seterr(err, errlen, "%s: cannot set the TAP's owner: %s", tap,
		    strerror(errno));
		goto out;
	}
	if (rtnl_link_get_kernel(sk, 0, tap, linkp) < 0) {
		seterr(err, errlen, "%s: created but not found", tap);
		goto out;
	}
	if (tap_label(sk, *linkp, project, err, errlen) == -1)
		goto out;
	if (ioctl(fd, TUNSETPERSIST, 1UL) == -1) {
		seterr(err, errlen, "%s: cannot make TAP persistent: %s", tap,
		    strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (r == -1 && *linkp != NULL) {
		rtnl_link_put(*linkp);
		*linkp = NULL;
	}
	close(fd);
	return r;
}

static int
tap_configure(struct nl_sock *sk, struct rtnl_link *link, const char *project,
    const char *host_ip, int prefix, char *err, size_t errlen)
{
	struct rtnl_link *chg = NULL;
	struct rtnl_addr *addr = NULL;
	struct nl_addr *local = NULL;
	char alias[64], cidr[32];
	int r, ret = -1;

	chg = rtnl_link_alloc();
	snprintf(alias, sizeof(alias), NET_ALIAS_PREFIX "%s", project);
	rtnl_link_set_ifalias(chg, alias);
	rtnl_link_set_flags(chg, IFF_UP);
	if ((r = rtnl_link_change(sk, link, chg, 0)) < 0) {
		seterr(err, errlen, "%s: cannot label and raise: %s",
		    rtnl_link_get_name(link), nl_geterror(r));
		goto out;
	}
	snprintf(cidr, sizeof(cidr), "%s/%d", host_ip, prefix);
	if ((r = nl_addr_parse(cidr, AF_INET, &local)) < 0) {
		seterr(err, errlen, "%s: %s", cidr, nl_geterror(r));
		goto out;
	}
	addr = rtnl_addr_alloc();
	rtnl_addr_set_ifindex(addr, rtnl_link_get_ifindex(link));
	rtnl_addr_set_local(addr, local);
	rtnl_addr_set_prefixlen(addr, prefix);
	if ((r = rtnl_addr_add(sk, addr, NLM_F_REPLACE)) < 0) {
		seterr(err, errlen, "%s: cannot add address %s: %s",
		    rtnl_link_get_name(link), cidr, nl_geterror(r));
		goto out;
	}
	ret = 0;
out:
	if (addr != NULL)
		rtnl_addr_put(addr);
	if (local != NULL)
		nl_addr_put(local);
	if (chg != NULL)
		rtnl_link_put(chg);
	return ret;
}

/*
 * An existing TAP of this project is kept as it is (a running VMM may hold
 * it, and attaching again would fail with EBUSY); only its label, address,
 * link state and sysctls are re-applied.
 */
int
tap_ensure(const char *tap, const char *project, int adopt, uid_t uid,
    gid_t gid, const char *host_ip, int prefix, char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	int own, ret = -1;

	if ((sk = nl_open(err, errlen)) == NULL)
		return -1;
	if ((own = tap_owned(sk, tap, project, adopt, &link, err,
	    errlen)) == -1)
		goto out;
	if (own == 0 && tap_create(sk, tap, project, uid, gid, &link, err,
	    errlen) == -1)
		goto out;
	if (tap_sysctls_set(tap, err, errlen) == -1)
		goto out;
	if (tap_configure(sk, link, project, host_ip, prefix, err,
	    errlen) == -1)
		goto out;
	ret = 0;
out:
	if (link != NULL)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return ret;
}

int
tap_delete(const char *tap, const char *project, int adopt, char *err,
    size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	int own, r, ret = -1;

	if ((sk = nl_open(err, errlen)) == NULL)
		return -1;
	if ((own = tap_owned(sk, tap, project, adopt, &link, err,
	    errlen)) <= 0) {
		ret = own;
		goto out;
	}
	if ((r = rtnl_link_delete(sk, link)) < 0) {
		seterr(err, errlen, "%s: cannot delete: %s", tap,
		    nl_geterror(r));
		goto out;
	}
	ret = 0;
out:
	if (link != NULL)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return ret;
}

/* 0 when tap is absent or this project's, -1 when someone else's. */
int
tap_check(const char *tap, const char *project, int adopt, char *err,
    size_t errlen)
{
	struct nl_sock *sk = NULL;
	int own;

	if ((sk = nl_open(err, errlen)) == NULL)
		return -1;
	own = tap_owned(sk, tap, project, adopt, NULL, err, errlen);
	nl_socket_free(sk);
	return own == -1 ? -1 : 0;
}

int
tap_exists(const char *tap)
{
	return if_nametoindex(tap) != 0;
}

int
tap_foreach_prison(void (*fn)(const char *, const char *, void *), void *arg,
    char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	const char *alias;
	size_t plen = strlen(NET_ALIAS_PREFIX);
	int r, ret = -1;

	if ((sk = nl_open(err, errlen)) == NULL)
		return -1;
	if ((r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache)) < 0) {
		seterr(err, errlen, "netlink: cannot list links: %s",
		    nl_geterror(r));
		goto out;
	}
	for (o = nl_cache_get_first(cache); o != NULL;
	    o = nl_cache_get_next(o)) {
		alias = rtnl_link_get_ifalias((struct rtnl_link *)o);
		if (alias != NULL && strncmp(alias, NET_ALIAS_PREFIX,
		    plen) == 0)
			fn(rtnl_link_get_name((struct rtnl_link *)o),
			    alias + plen, arg);
	}
	ret = 0;
out:
	if (cache != NULL)
		nl_cache_free(cache);
	nl_socket_free(sk);
	return ret;
}

/* The interface of the main table's IPv4 default route. */
int
net_default_iface(char *buf, size_t len, char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	struct rtnl_route *rt;
	struct rtnl_nexthop *nh;
	struct nl_addr *dst;
	char name[IF_NAMESIZE];
	int r, ret = -1;

	if ((sk = nl_open(err, errlen)) == NULL)
		return -1;
	if ((r = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache)) < 0) {
		seterr(err, errlen, "netlink: cannot list routes: %s",
		    nl_geterror(r));
		goto out;
	}
	for (o = nl_cache_get_first(cache); o != NULL;
	    o = nl_cache_get_next(o)) {
		rt = (struct rtnl_route *)o;
		dst = rtnl_route_get_dst(rt);
		if (rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
		    (dst != NULL && nl_addr_get_prefixlen(dst) != 0) ||
		    rtnl_route_get_nnexthops(rt) < 1)
			continue;
		nh = rtnl_route_nexthop_n(rt, 0);
		if (if_indextoname(rtnl_route_nh_get_ifindex(nh),
		    name) == NULL)
			continue;
		snprintf(buf, len, "%s", name);
		ret = 0;
		goto out;
	}
	seterr(err, errlen, "no IPv4 default route to take the LAN interface "
	    "from; set [network] lan_interface");
out:
	if (cache != NULL)
		nl_cache_free(cache);
	nl_socket_free(sk);
	return ret;
}
