/*
 * Is a host process listening on a TCP port?  A project's ssh_port is
 * DNATed on every host address, so it would take such a service over.
 *
 * Asked through sock_diag for listening sockets only, which walks just
 * the listening hash: /proc/net/tcp walks every established bucket too,
 * milliseconds on a big host, and net up must stay cheap.  The answer is
 * for the caller's network namespace, the one prison runs in.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

#define TCP_LISTEN	10	/* include/net/tcp_states.h */

/* 1 a listener of family on port, 0 none, -1 error. */
static int
listening_af(int fd, int family, int port, char *err, size_t errlen)
{
	struct {
		struct nlmsghdr		nlh;
		struct inet_diag_req_v2	req;
	} msg;
	struct sockaddr_nl sa;
	struct inet_diag_msg *d;
	struct nlmsgerr *e;
	struct nlmsghdr *h;
	char buf[16384];
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	msg.req.sdiag_family = family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = 1u << TCP_LISTEN;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1)
		return seterr(err, errlen, "sock_diag: %s", strerror(errno));
	for (;;) {
		if ((n = recv(fd, buf, sizeof(buf), 0)) == -1) {
			if (errno == EINTR)
				continue;
			return seterr(err, errlen, "sock_diag: %s",
			    strerror(errno));
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		    h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				e = NLMSG_DATA(h);
				/* No IPv6 in this kernel: nothing listens. */
				if (family == AF_INET6 && e->error == -ENOENT)
					return 0;
				return seterr(err, errlen, "sock_diag: %s",
				    strerror(-e->error));
			}
			d = NLMSG_DATA(h);
			if (ntohs(d->id.idiag_sport) == port)
				return 1;
		}
		if (n == 0)
			return 0;
	}
}

int
net_port_listening(int port, char *err, size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };
	size_t i;
	int fd, r = 0;

	for (i = 0; i < 2 && r == 0; i++) {
		/* A socket per dump: one found early is left unread. */
		if ((fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
		    NETLINK_SOCK_DIAG)) == -1)
			return seterr(err, errlen, "sock_diag: %s",
			    strerror(errno));
		r = listening_af(fd, families[i], port, err, errlen);
		close(fd);
	}
	return r;
}
