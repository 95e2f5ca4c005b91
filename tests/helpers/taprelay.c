/*
 * taprelay: stand in for a VMM in network tests.  Attaches to a project's
 * persistent TAP in the current namespace (as a VMM would), creates a
 * second TAP inside another network namespace (the "guest"), and copies
 * Ethernet frames both ways until killed.  The test configures the guest
 * address on the second TAP, so real traffic crosses prison's TAP.
 *
 *   taprelay HOST_TAP NETNS [GUEST_IF]
 *
 * NETNS is a name under /run/netns; GUEST_IF defaults to eth0.  Prints
 * "ready" once both ends are open.
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
tap_open(const char *name)
{
	struct ifreq ifr;
	int fd;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1) {
		perror("/dev/net/tun");
		exit(1);
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		fprintf(stderr, "taprelay: %s: %s\n", name, strerror(errno));
		exit(1);
	}
	return fd;
}

static void
copy(int from, int to)
{
	char buf[65536];
	ssize_t n;

	if ((n = read(from, buf, sizeof(buf))) <= 0) {
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			return;
		fprintf(stderr, "taprelay: read: %s\n",
		    n == 0 ? "end of file" : strerror(errno));
		exit(1);
	}
	/* A frame the other side cannot take is dropped, as on a wire. */
	(void)write(to, buf, (size_t)n);
}

int
main(int argc, char **argv)
{
	struct pollfd pfd[2];
	char path[256];
	int host, guest, nsfd;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: taprelay HOST_TAP NETNS [GUEST_IF]\n");
		return 2;
	}
	host = tap_open(argv[1]);
	snprintf(path, sizeof(path), "/run/netns/%s", argv[2]);
	if ((nsfd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    setns(nsfd, CLONE_NEWNET) == -1) {
		fprintf(stderr, "taprelay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(nsfd);
	guest = tap_open(argc == 4 ? argv[3] : "eth0");
	printf("ready\n");
	fflush(stdout);

	pfd[0].fd = host;
	pfd[1].fd = guest;
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))
			copy(host, guest);
		if (pfd[1].revents & (POLLIN | POLLERR | POLLHUP))
			copy(guest, host);
	}
}
