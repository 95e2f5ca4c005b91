/*
 * Is a host process listening on a TCP port?  A project's ssh_port is
 * DNATed on every host address, so it would take such a service over.
 * /proc/net/tcp and tcp6 show the reader's network namespace, which is
 * the one prison runs in.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "net.h"

#define TCP_LISTEN	0x0a	/* st column: include/net/tcp_states.h */

/* 1 a listener on port in path, 0 none, -1 unreadable. */
static int
listening_in(const char *path, int port, char *err, size_t errlen)
{
	char line[512], addr[64];
	unsigned lport, state;
	FILE *f;
	int found = 0;

	if ((f = fopen(path, "re")) == NULL) {
		/* No tcp6 when IPv6 is off: nothing can listen there. */
		if (errno == ENOENT && strstr(path, "tcp6") != NULL)
			return 0;
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		/* "sl: local:port remote:port st ...", header skipped */
		if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x",
		    addr, &lport, &state) == 3 && state == TCP_LISTEN &&
		    lport == (unsigned)port)
			found = 1;
	}
	fclose(f);
	return found;
}

int
net_port_listening(int port, char *err, size_t errlen)
{
	int r;

	if ((r = listening_in("/proc/net/tcp", port, err, errlen)) != 0)
		return r;
	return listening_in("/proc/net/tcp6", port, err, errlen);
}
