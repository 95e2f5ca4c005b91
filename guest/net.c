/*
 * eth0's address and default route, with the classic ioctls: they need
 * nothing in the image beyond libc and are enough for one address and
 * one route.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"

static void
set_sin(struct sockaddr *sa, in_addr_t addr)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr;
}

static int
link_up(int s, const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == -1)
		return seterr(err, errlen, "%s: cannot read flags: %s",
		    ifname, strerror(errno));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) == -1)
		return seterr(err, errlen, "%s: cannot bring up: %s",
		    ifname, strerror(errno));
	return 0;
}

int
net_pick_interface(const char *want, char *out, size_t outlen)
{
	struct ifaddrs *ifa = NULL, *i;
	int found = 0;

	if (if_nametoindex(want) != 0) {
		snprintf(out, outlen, "%s", want);
		return 0;
	}
	if (getifaddrs(&ifa) == -1)
		return -1;
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_name == NULL || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		snprintf(out, outlen, "%s", i->ifa_name);
		found = 1;
	}
	freeifaddrs(ifa);
	return found ? 0 : -1;
}

int
net_configure(const char *ifname, const char *cidr, const char *gw,
    char *err, size_t errlen)
{
	struct ifreq ifr;
	struct rtentry rt;
	struct in_addr a, g;
	char addr[32], *slash;
	int s = -1, ret = -1, pfx;
	in_addr_t mask;

	snprintf(addr, sizeof(addr), "%s", cidr);
	if ((slash = strchr(addr, '/')) == NULL)
		return seterr(err, errlen, "bad address %s", cidr);
	*slash++ = '\0';
	pfx = atoi(slash);
	if (inet_pton(AF_INET, addr, &a) != 1 ||
	    inet_pton(AF_INET, gw, &g) != 1 || pfx < 1 || pfx > 32)
		return seterr(err, errlen, "bad address %s or gateway %s",
		    cidr, gw);
	mask = htonl(pfx == 32 ? 0xffffffffU : ~(0xffffffffU >> pfx));
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return seterr(err, errlen, "socket: %s", strerror(errno));
	if (link_up(s, "lo", err, errlen) == -1)
		goto out;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	set_sin(&ifr.ifr_addr, a.s_addr);
	if (ioctl(s, SIOCSIFADDR, &ifr) == -1) {
		seterr(err, errlen, "%s: cannot set address %s: %s", ifname,
		    addr, strerror(errno));
		goto out;
	}
	set_sin(&ifr.ifr_netmask, mask);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) == -1) {
		seterr(err, errlen, "%s: cannot set prefix /%d: %s", ifname,
		    pfx, strerror(errno));
		goto out;
	}
	if (link_up(s, ifname, err, errlen) == -1)
		goto out;

	/* Everything, metadata included, goes through the host's side. */
	memset(&rt, 0, sizeof(rt));
	set_sin(&rt.rt_dst, INADDR_ANY);
	set_sin(&rt.rt_genmask, INADDR_ANY);
	set_sin(&rt.rt_gateway, g.s_addr);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(s, SIOCADDRT, &rt) == -1 && errno != EEXIST) {
		seterr(err, errlen, "default route via %s: %s", gw,
		    strerror(errno));
		goto out;
	}
	ret = 0;
 out:
	close(s);
	return ret;
}
