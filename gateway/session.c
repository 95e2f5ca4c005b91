/*
 * One child per connection: key exchange, authentication within the
 * login grace time, then the relay.  The child shares nothing writable
 * with other connections, so a crash here ends only this session.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "config.h"
#include "gateway.h"
#include "log.h"

void
gw_tcp_tune(int fd, int keepalive, int bound_retries)
{
	int one = 1, cnt = 3;
	unsigned int user_timeout;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (keepalive <= 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keepalive,
	    sizeof(keepalive));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keepalive,
	    sizeof(keepalive));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	if (!bound_retries)
		return;
	/*
	 * Keepalive probes only run on an idle connection.  A peer that
	 * vanished with our data unacknowledged (a stopped VM whose TAP is
	 * gone) would otherwise keep the session for the ~15 minutes of
	 * TCP retransmission; the relay's periodic messages make sure there
	 * is always such data to time out on.  Only for the project's
	 * leg: the limit also ends a connection whose peer keeps its window
	 * shut, which is what a suspended client does, and a direct sshd
	 * keeps that one.
	 */
	user_timeout = (unsigned int)keepalive * (unsigned int)cnt * 1000;
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
	    sizeof(user_timeout));
}

static void
on_grace(int sig)
{
	/*
	 * Nothing here may take a lock (the signal can land inside malloc
	 * or syslog), so the listener logs this from the exit status.
	 */
	_exit(GW_EXIT_GRACE);
}

static void
peer_name(int fd, struct gw_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	snprintf(c->addr, sizeof(c->addr), "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, c->addr, sizeof(c->addr));
		c->port = ntohs(sin->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, c->addr,
		    sizeof(c->addr));
		c->port = ntohs(sin6->sin6_port);
	}
}

/*
 * libssh writes to the socket at once only when the last write went out
 * whole; anything after waits for the event loop.  Turn it until the
 * output is gone (or ms pass) before closing, so a last message such as
 * a refusal banner or an exit status is not lost.
 */
void
gw_flush(ssh_session s, ssh_event ev, int ms)
{
	int waited = 0;

	while (waited < ms && ssh_is_connected(s) &&
	    (ssh_get_status(s) & SSH_WRITE_PENDING)) {
		if (ssh_event_dopoll(ev, 50) == SSH_ERROR)
			break;
		waited += 50;
	}
}

void
gw_session(const struct prison_config *cfg, ssh_bind bind, int fd,
    ssh_key client_key, int evfd)
{
	struct ssh_server_callbacks_struct cb;
	struct gw_conn c;
	ssh_event ev = NULL;
	int rc = 1;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.client_key = client_key;
	c.evfd = evfd;
	c.prov_fd = -1;
	c.ki_fd = -1;
	peer_name(fd, &c);
	gw_tcp_tune(fd, cfg->keepalive_interval, 0);

	signal(SIGALRM, on_grace);
	alarm(cfg->login_grace_time);

	if ((c.srv = ssh_new()) == NULL)
		goto out;
	if (ssh_bind_accept_fd(bind, c.srv, fd) != SSH_OK) {
		log_warn("session: addr=%s accept: %s", c.addr,
		    ssh_get_error(bind));
		goto out;
	}
	gw_auth_install(&c, &cb);
	ssh_set_server_callbacks(c.srv, &cb);
	ssh_set_message_callback(c.srv, gw_auth_message, &c);
	if (ssh_handle_key_exchange(c.srv) != SSH_OK) {
		log_info("session: addr=%s port=%d key exchange failed: %s",
		    c.addr, c.port, ssh_get_error(c.srv));
		goto out;
	}
	ssh_set_auth_methods(c.srv, SSH_AUTH_METHOD_PUBLICKEY);

	if ((ev = ssh_event_new()) == NULL ||
	    ssh_event_add_session(ev, c.srv) != SSH_OK)
		goto out;
	gw_auth_watch(&c, 1);
	while (!c.authenticated && !c.closing) {
		ssh_event_dopoll(ev, 1000);
		gw_auth_badsig(&c);
		if (!ssh_is_connected(c.srv))
			break;
	}
	gw_auth_watch(&c, 0);
	if (c.closing)
		gw_flush(c.srv, ev, 2000);
	ssh_event_remove_session(ev, c.srv);
	ssh_event_free(ev);
	ev = NULL;
	alarm(0);
	gw_kbdint_stop(&c);
	if (!c.authenticated) {
		if (c.closing)
			ssh_disconnect(c.srv);
		goto out;
	}
	rc = gw_relay_run(c.relay) == 0 ? 0 : 1;
 out:
	if (ev != NULL)
		ssh_event_free(ev);
	if (c.up != NULL) {
		ssh_disconnect(c.up);
		ssh_free(c.up);
	}
	if (c.srv != NULL) {
		ssh_disconnect(c.srv);
		ssh_free(c.srv);
	}
	if (c.prov_fd != -1)
		close(c.prov_fd);
	_exit(rc);
}
