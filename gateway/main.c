/*
 * prison-gateway: the SSH front door.  The listener binds, loads its keys,
 * drops to the gateway user and then only accepts: every connection gets
 * its own child (session.c).  Children report each failed authentication
 * and their leaving the unauthenticated state over a pipe, so the
 * listener can cap pre-auth connections and failures per source address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "fileio.h"
#include "gateway.h"
#include "log.h"
#include "xmalloc.h"

struct child {
	pid_t	 pid;
	int	 evfd;
	int	 authed;	/* no longer counts as pre-auth */
	int	 proven;	/* a developer got in on it */
	int	 fails;		/* failed attempts, counted at its end */
	int	 port;
	char	 addr[64];
};

struct source {
	char	 addr[64];
	time_t	*when;		/* ring of failure times */
	int	 n, next;
};

static struct child	*children;
static size_t		 nchildren;
static struct source	*sources;
static size_t		 nsources;
static volatile sig_atomic_t quit;

static void
usage(void)
{
	fprintf(stderr, "usage: prison-gateway [-c FILE] [-l ADDRESS:PORT] "
	    "[-f] [-d]\n");
	exit(2);
}

static void
on_term(int sig)
{
	quit = 1;
}

static int
listen_on(const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char *host = xstrdup(spec), *port;
	int fd = -1, one = 1, rc;

	if ((port = strrchr(host, ':')) == NULL) {
		free(host);
		return seterr(err, errlen, "listen: expected ADDRESS:PORT, "
		    "got \"%s\"", spec);
	}
	*port++ = '\0';
	if (host[0] == '[' && port - host >= 3 && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(*host ? host : NULL, port, &hints, &res)) != 0) {
		seterr(err, errlen, "listen: %s: %s", spec, gai_strerror(rc));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 128) == 0)
			break;
		seterr(err, errlen, "listen: %s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
 out:
	if (res != NULL)
		freeaddrinfo(res);
	free(host);
	return fd;
}

static ssh_bind
make_bind(const struct prison_config *cfg, int debug)
{
	ssh_key ed = NULL, rsa = NULL;
	ssh_bind b = NULL;
	char err[512];
	int no = 0, verb = debug ? SSH_LOG_PROTOCOL : SSH_LOG_NOLOG;

	if (gw_key_ensure(cfg->host_key_ed25519, SSH_KEYTYPE_ED25519, 0, &ed,
	    err, sizeof(err)) == -1 ||
	    gw_key_ensure(cfg->host_key_rsa, SSH_KEYTYPE_RSA, 3072, &rsa, err,
	    sizeof(err)) == -1)
		fatal("host key: %s", err);
	if ((b = ssh_bind_new()) == NULL)
		fatal("out of memory");
	/* The bind keeps the keys; ours are the only host keys offered. */
	if (ssh_bind_options_set(b, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_LOG_VERBOSITY, &verb) <
	    0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_BANNER, GW_VERSION) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_IMPORT_KEY, ed) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_IMPORT_KEY, rsa) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_KEY_EXCHANGE, GW_KEX) <
	    0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_CIPHERS_C_S, GW_CIPHERS) <
	    0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_CIPHERS_S_C, GW_CIPHERS) <
	    0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HMAC_C_S, GW_MACS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HMAC_S_C, GW_MACS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS,
	    GW_HOSTKEYS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES,
	    GW_PUBKEYS) < 0)
		fatal("cannot configure the SSH server: %s",
		    ssh_get_error(b));
	return b;
}

/*
 * The unprivileged user must be able to pin upstream keys: known_hosts
 * and its lock file are made its own before dropping root.
 */
static void
drop_privileges(const struct prison_config *cfg)
{
	struct passwd *pw;
	char err[512], *lock = NULL;
	int fd;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(cfg->gateway_user)) == NULL)
		fatal("gateway user \"%s\" does not exist; create it with "
		    "\"useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin %s\" or set [gateway] user",
		    cfg->gateway_user, cfg->gateway_user);
	if (pw->pw_uid == 0)
		fatal("gateway user \"%s\" is root; use an unprivileged user",
		    cfg->gateway_user);
	lock = xasprintf("%s.lock", cfg->known_hosts);
	if ((fd = lock_path(lock, 0, err, sizeof(err))) != -1) {
		if (fchown(fd, pw->pw_uid, pw->pw_gid) == -1)
			log_warn("%s: chown: %s", lock, strerror(errno));
		close(fd);
	}
	if ((fd = open(cfg->known_hosts, O_WRONLY | O_CREAT | O_CLOEXEC,
	    0644)) != -1) {
		if (fchown(fd, pw->pw_uid, pw->pw_gid) == -1)
			log_warn("%s: chown: %s", cfg->known_hosts,
			    strerror(errno));
		close(fd);
	}
	free(lock);
	if (setgroups(0, NULL) == -1 || setresgid(pw->pw_gid, pw->pw_gid,
	    pw->pw_gid) == -1 || setresuid(pw->pw_uid, pw->pw_uid,
	    pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s: %s", cfg->gateway_user,
		    strerror(errno));
	if (setuid(0) != -1)
		fatal("privileges were not dropped");
	log_info("running as %s", cfg->gateway_user);
}

static struct source *
source_get(const char *addr)
{
	size_t i;

	for (i = 0; i < nsources; i++)
		if (strcmp(sources[i].addr, addr) == 0)
			return &sources[i];
	return NULL;
}

static int
source_failures(const struct prison_config *cfg, const char *addr)
{
	struct source *s = source_get(addr);
	time_t now = time(NULL);
	int i, n = 0;

	if (s == NULL)
		return 0;
	for (i = 0; i < s->n; i++)
		if (now - s->when[i] < cfg->failure_window)
			n++;
	return n;
}

static void
source_fail(const struct prison_config *cfg, const char *addr)
{
	struct source *s = source_get(addr);
	int cap = cfg->max_failures_per_source;

	if (s == NULL) {
		/* Forget sources whose failures all expired. */
		size_t i;

		for (i = 0; i < nsources; )
			if (source_failures(cfg, sources[i].addr) == 0) {
				free(sources[i].when);
				sources[i] = sources[--nsources];
			} else
				i++;
		sources = xreallocarray(sources, nsources + 1,
		    sizeof(*sources));
		s = &sources[nsources++];
		memset(s, 0, sizeof(*s));
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		s->when = xcalloc(cap, sizeof(time_t));
	}
	s->when[s->next] = time(NULL);
	s->next = (s->next + 1) % cap;
	if (s->n < cap)
		s->n++;
}

static void
addr_of(int fd, char *buf, size_t len, int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char serv[16];

	snprintf(buf, len, "?");
	*port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sl, buf, len, serv,
	    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	*port = atoi(serv);
}

static int
unauthenticated(void)
{
	size_t i;
	int n = 0;

	for (i = 0; i < nchildren; i++)
		if (!children[i].authed)
			n++;
	return n;
}

static void
spawn(const struct prison_config *cfg, ssh_bind b, int lfd, int fd,
    ssh_key client_key)
{
	char addr[64];
	int pfd[2], port;
	pid_t pid;
	size_t i;

	addr_of(fd, addr, sizeof(addr), &port);
	if (source_failures(cfg, addr) >= cfg->max_failures_per_source) {
		log_warn("auth: verdict=block method=none project=- "
		    "developer=- addr=%s port=%d key=- fp=- "
		    "reason=too-many-failures", addr, port);
		close(fd);
		return;
	}
	if (unauthenticated() >= cfg->max_unauthenticated) {
		log_warn("auth: verdict=drop method=none project=- "
		    "developer=- addr=%s port=%d key=- fp=- "
		    "reason=max-unauthenticated", addr, port);
		close(fd);
		return;
	}
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		log_err("pipe: %s", strerror(errno));
		close(fd);
		return;
	}
	if ((pid = fork()) == -1) {
		log_err("fork: %s", strerror(errno));
		close(fd);
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	if (pid == 0) {
		close(lfd);
		close(pfd[0]);
		for (i = 0; i < nchildren; i++)
			close(children[i].evfd);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		gw_session(cfg, b, fd, client_key, pfd[1]);
		_exit(0);
	}
	close(fd);
	close(pfd[1]);
	children = xreallocarray(children, nchildren + 1, sizeof(*children));
	children[nchildren].pid = pid;
	children[nchildren].evfd = pfd[0];
	children[nchildren].authed = 0;
	children[nchildren].proven = 0;
	children[nchildren].fails = 0;
	children[nchildren].port = port;
	snprintf(children[nchildren].addr, sizeof(children[0].addr), "%s",
	    addr);
	nchildren++;
}

/*
 * A connection's failed attempts count against its source only if it
 * never got in: a developer whose agent offers other keys first, or
 * several behind one NAT address, must not lock themselves out.  A
 * source that never gets in is counted once each of its connections
 * ends, which is also when the next one is checked.
 */
static void
child_events(const struct prison_config *cfg, size_t i)
{
	struct child *ch = &children[i];
	char ev[64];
	ssize_t n, k;

	n = read(ch->evfd, ev, sizeof(ev));
	if (n <= 0) {
		/* Child gone; reap() removes it. */
		close(ch->evfd);
		ch->evfd = -1;
		ch->authed = 1;
		for (; !ch->proven && ch->fails > 0; ch->fails--)
			source_fail(cfg, ch->addr);
		return;
	}
	for (k = 0; k < n; k++) {
		if (ev[k] == GW_EV_AUTHENTICATED)
			ch->authed = ch->proven = 1;
		else if (ev[k] == GW_EV_FAILURE)
			ch->fails++;
	}
}

static void
reap(const struct prison_config *cfg)
{
	size_t i;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			if (WIFSIGNALED(st))
				log_err("session process %ld killed by signal "
				    "%d", (long)pid, WTERMSIG(st));
			if (WIFEXITED(st) &&
			    WEXITSTATUS(st) == GW_EXIT_GRACE) {
				log_warn("auth: verdict=timeout method=none "
				    "project=- developer=- addr=%s port=%d "
				    "key=- fp=- reason=login-grace-time",
				    children[i].addr, children[i].port);
				source_fail(cfg, children[i].addr);
			}
			children[i].pid = 0;
		}
	}
	for (i = 0; i < nchildren; ) {
		if (children[i].pid == 0 && children[i].evfd == -1)
			children[i] = children[--nchildren];
		else
			i++;
	}
}

int
main(int argc, char **argv)
{
	struct prison_config cfg;
	const char *cfgfile = NULL, *listen_spec = NULL;
	ssh_key client_key = NULL;
	ssh_bind b = NULL;
	struct pollfd *pfds = NULL;
	char err[512];
	int ch, fg = 0, debug = 0, lfd;
	size_t i;

	while ((ch = getopt(argc, argv, "c:l:fdh")) != -1) {
		switch (ch) {
		case 'c':
			cfgfile = optarg;
			break;
		case 'l':
			listen_spec = optarg;
			break;
		case 'f':
			fg = 1;
			break;
		case 'd':
			debug = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("prison-gateway", fg);
	if (debug)
		log_set_level(LOG_LVL_DEBUG);
	if (config_load(cfgfile, &cfg, err, sizeof(err)) == -1)
		fatal("%s", err);
	if (cfg.second_factor && *cfg.pam_service == '\0')
		fatal("second_factor = yes needs a pam_service");
	if (listen_spec == NULL)
		listen_spec = cfg.listen;
	if (ssh_init() != SSH_OK)
		fatal("cannot initialise libssh");

	b = make_bind(&cfg, debug);
	if (gw_key_ensure(cfg.client_key, SSH_KEYTYPE_ED25519, 0, &client_key,
	    err, sizeof(err)) == -1)
		fatal("client key: %s", err);
	if ((lfd = listen_on(listen_spec, err, sizeof(err))) == -1)
		fatal("%s", err);
	drop_privileges(&cfg);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	log_notice("listening on %s", listen_spec);
	/* Type=notify: ready once the socket listens and privileges are
	 * gone, so units ordered after the gateway find it accepting. */
	sd_notify(0, "READY=1");

	while (!quit) {
		size_t n = 0;

		pfds = xreallocarray(pfds, nchildren + 1, sizeof(*pfds));
		pfds[n].fd = lfd;
		pfds[n++].events = POLLIN;
		for (i = 0; i < nchildren; i++) {
			pfds[n].fd = children[i].evfd;
			pfds[n++].events = POLLIN;
		}
		if (poll(pfds, n, 1000) == -1 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		for (i = 0; i < nchildren; i++)
			if (children[i].evfd != -1 && pfds[i + 1].revents != 0)
				child_events(&cfg, i);
		if (pfds[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd != -1)
				spawn(&cfg, b, lfd, fd, client_key);
		}
		reap(&cfg);
	}
	sd_notify(0, "STOPPING=1");
	log_notice("terminating; %zu session(s) keep running", nchildren);
	close(lfd);
	ssh_bind_free(b);
	ssh_key_free(client_key);
	config_free(&cfg);
	return 0;
}
