/*
 * Forget a guest's connections when its network goes down, so a later
 * project given the same TAP or ports starts from clean conntrack state
 * and no NAT binding outlives the project.  Through ctnetlink
 * (libnetfilter_conntrack): dump, pick every entry with the guest's
 * address on either side of either direction, destroy those.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "log.h"
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
