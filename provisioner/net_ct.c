/*
 * A guest's connections as conntrack sees them, through ctnetlink
 * (libnetfilter_conntrack).
 *
 * Forget them when its network goes down, so a later project given the
 * same TAP or ports starts from clean conntrack state and no NAT binding
 * outlives the project: dump, pick every entry with the guest's address
 * on either side of either direction, destroy those.
 *
 * Count the SSH connections it serves, so the idle stop sees sessions
 * no front door told the provisioner about: logins through the direct
 * DNAT port, and a gateway's sessions that outlived a provisioner
 * restart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <stdlib.h>
#include <string.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "log.h"
#include "net.h"
#include "net_int.h"
#include "xmalloc.h"

struct ct_pick {
	uint32_t		  addr;		/* network order */
	struct nf_conntrack	**cts;
	size_t			  n;
};

static int
ct_pick_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
    void *arg)
{
	struct ct_pick *p = arg;

	if (nfct_get_attr_u8(ct, ATTR_L3PROTO) != AF_INET)
		return NFCT_CB_CONTINUE;
	if (nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC) != p->addr &&
	    nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != p->addr &&
	    nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) != p->addr &&
	    nfct_get_attr_u32(ct, ATTR_REPL_IPV4_DST) != p->addr)
		return NFCT_CB_CONTINUE;
	p->cts = xreallocarray(p->cts, p->n + 1, sizeof(*p->cts));
	p->cts[p->n++] = nfct_clone(ct);
	return NFCT_CB_CONTINUE;
}

struct ct_count {
	uint32_t	addr;		/* network order */
	uint16_t	port;		/* network order */
	int		n;
};

/*
 * The reply direction's source is the guest's own address and port
 * whether the client came straight to it or through the DNAT port.
 */
static int
ct_count_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
    void *arg)
{
	struct ct_count *c = arg;

	if (nfct_get_attr_u8(ct, ATTR_L3PROTO) == AF_INET &&
	    nfct_get_attr_u8(ct, ATTR_L4PROTO) == IPPROTO_TCP &&
	    nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) == c->addr &&
	    nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC) == c->port &&
	    nfct_get_attr_u8(ct, ATTR_TCP_STATE) ==
	    TCP_CONNTRACK_ESTABLISHED)
		c->n++;
	return NFCT_CB_CONTINUE;
}

int
net_count_sessions(const char *ip, int port, char *err, size_t errlen)
{
	struct nfct_handle *h;
	struct ct_count count;
	struct in_addr a;
	uint32_t family = AF_INET;
	int ret;

	if (inet_pton(AF_INET, ip, &a) != 1 || port <= 0 || port > 65535)
		return seterr(err, errlen, "%s:%d: not an IPv4 address and "
		    "port", ip, port);
	memset(&count, 0, sizeof(count));
	count.addr = a.s_addr;
	count.port = htons((uint16_t)port);
	if ((h = nfct_open(CONNTRACK, 0)) == NULL)
		return seterr(err, errlen, "conntrack: cannot open: %s",
		    strerror(errno));
	nfct_callback_register(h, NFCT_T_ALL, ct_count_cb, &count);
	if (nfct_query(h, NFCT_Q_DUMP, &family) == -1)
		ret = seterr(err, errlen, "conntrack: dump failed: %s",
		    strerror(errno));
	else
		ret = count.n;
	nfct_close(h);
	return ret;
}

int
ct_flush_addr(const char *ip, char *err, size_t errlen)
{
	struct nfct_handle *h = NULL;
	struct ct_pick pick;
	struct in_addr a;
	uint32_t family = AF_INET;
	size_t i;
	int ret = -1;

	memset(&pick, 0, sizeof(pick));
	if (inet_pton(AF_INET, ip, &a) != 1)
		return seterr(err, errlen, "%s: not an IPv4 address", ip);
	pick.addr = a.s_addr;
	if ((h = nfct_open(CONNTRACK, 0)) == NULL)
		return seterr(err, errlen, "conntrack: cannot open: %s",
		    strerror(errno));
	nfct_callback_register(h, NFCT_T_ALL, ct_pick_cb, &pick);
	if (nfct_query(h, NFCT_Q_DUMP, &family) == -1) {
		seterr(err, errlen, "conntrack: dump failed: %s",
		    strerror(errno));
		goto out;
	}
	nfct_callback_unregister(h);
	for (i = 0; i < pick.n; i++) {
		/* Gone already (timed out meanwhile) is fine. */
		if (nfct_query(h, NFCT_Q_DESTROY, pick.cts[i]) == -1 &&
		    errno != ENOENT) {
			seterr(err, errlen, "conntrack: cannot delete an "
			    "entry of %s: %s", ip, strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	for (i = 0; i < pick.n; i++)
		nfct_destroy(pick.cts[i]);
	free(pick.cts);
	nfct_close(h);
	return ret;
}
