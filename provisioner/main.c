/*
 * prison-provisioner: owns the network, the disks, the VMMs and the
 * metadata, and answers the control socket (common/proto.h).  One thread
 * per connection; vm.c serialises what must be serialised.
 *
 * Who may ask what is decided from the peer's credentials on every
 * connection: root anything, the gateway's user (or its group, for the
 * host door's set-gid relay) ensure and status, everyone else nothing.
 */
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "names.h"
#include "net.h"
#include "proto.h"
#include "registry.h"
#include "vm.h"
#include "xmalloc.h"

#define REQUEST_TIMEOUT_MS	10000
#define MAX_CONNS		1024	/* held sessions included */

static struct prison_config cfg;
static uid_t gateway_uid = (uid_t)-1;
static gid_t gateway_gid = (gid_t)-1;
static volatile sig_atomic_t quit;
static int conns;		/* connection threads alive */

struct conn {
	int	fd;
	uid_t	uid;
	gid_t	gid;
	pid_t	pid;
};

static void
on_signal(int sig)
{
	quit = 1;
}

static void
send_progress(const char *msg, void *arg)
{
	struct conn *c = arg;
	json_t *j = json_pack("{s:s}", "progress", msg);

	proto_send(c->fd, j, NULL, 0);
	json_decref(j);
}

static void
reply_err(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply_err(struct conn *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	proto_send(c->fd, j, NULL, 0);
	json_decref(j);
}

/*
 * A held session lasts until the peer closes the connection.  A peer
 * that only shuts down its sending side (echo ... | socat) still holds:
 * the session ends on the hang-up of a full close.  Anything the peer
 * sends is ignored.  When the VM stops first, the peer is told
 * {"event":"stopped"} and the connection closes, so a front door can
 * end its session at once.
 */
static void
hold(struct conn *c, int watch)
{
	struct pollfd pfd[2] = { { c->fd, POLLIN, 0 }, { watch, POLLIN, 0 } };
	char buf[256];
	ssize_t n;

	for (;;) {
		if (poll(pfd, watch != -1 ? 2 : 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
			break;
		if (watch != -1 && pfd[1].revents != 0) {
			json_t *ev = json_pack("{s:s}", "event", "stopped");

			proto_send(c->fd, ev, NULL, 0);
			json_decref(ev);
			break;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		n = read(c->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		if (n == 0)
			pfd[0].events = 0;	/* half-closed: wait for HUP */
	}
	if (watch != -1)
		close(watch);
}

static void
do_ensure(struct conn *c, const char *project, int want_hold)
{
	json_t *r;
	long ticket = -1;

	r = vm_ensure(project, want_hold, &ticket, send_progress, c);
	log_info("ensure project=%s uid=%ld result=%s%s%s", project,
	    (long)c->uid, json_is_true(json_object_get(r, "ok")) ? "ok" :
	    "failed", json_object_get(r, "error") ? " error=" : "",
	    json_string_value(json_object_get(r, "error")) ?
	    json_string_value(json_object_get(r, "error")) : "");
	proto_send(c->fd, r, NULL, 0);
	json_decref(r);
	if (ticket != -1) {
		hold(c, vm_session_watch(project, ticket));
		vm_session_end(project, ticket);
	}
}

/*
 * The gateway: its user, or a process running with its group as the
 * effective gid (the set-gid prison-relay of the host door, docs/pam.md).
 */
static int
is_gateway(const struct conn *c)
{
	return (gateway_uid != (uid_t)-1 && c->uid == gateway_uid) ||
	    (gateway_gid != (gid_t)-1 && c->gid == gateway_gid);
}

static int
allowed(const struct conn *c, const char *op)
{
	if (c->uid == 0)
		return 1;
	if (is_gateway(c) && (strcmp(op, "ensure") == 0 ||
	    strcmp(op, "status") == 0))
		return 1;
	return 0;
}

/*
 * The registry changed.  Network settings first, for every project that
 * is up and not only the one named (the whole registry is what should be
 * in force, and unchanged projects cost nothing), then the running VMs'
 * metadata, which vm_refresh builds with the network now in force.
 */
static int
refresh(const char *project, char *err, size_t errlen)
{
	struct registry *reg = NULL;
	struct net_project *np = NULL;
	char e[512];
	size_t n = 0;
	int ret = 0;

	if (registry_load(cfg.registry, &reg, err, errlen) == -1)
		return -1;
	np = net_projects_of(reg, &n);
	if (net_refresh(&cfg, np, n, err, errlen) == -1) {
		log_warn("refresh: network: %s", err);
		ret = -1;
	}
	if (vm_refresh(project, e, sizeof(e)) == -1 && ret == 0)
		ret = seterr(err, errlen, "%s", e);
	free(np);
	registry_free(reg);
	return ret;
}

static void
dispatch(struct conn *c, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *project = json_string_value(json_object_get(req,
	    "project"));
	char safe[64], err[512];
	json_t *r = NULL;

	if (op == NULL) {
		log_warn("malformed request from uid=%ld pid=%ld: no op",
		    (long)c->uid, (long)c->pid);
		return;
	}
	log_safe(safe, sizeof(safe), op);
	if (!allowed(c, op)) {
		log_warn("refused op=%s from uid=%ld gid=%ld pid=%ld", safe,
		    (long)c->uid, (long)c->gid, (long)c->pid);
		reply_err(c, "not allowed for uid %ld", (long)c->uid);
		return;
	}
	if (project != NULL && name_valid_project(project, err,
	    sizeof(err)) == -1) {
		log_warn("malformed request op=%s from uid=%ld: %s", safe,
		    (long)c->uid, err);
		reply_err(c, "%s", err);
		return;
	}
	if (strcmp(op, "ensure") == 0 && project != NULL) {
		do_ensure(c, project, json_is_true(json_object_get(req,
		    "hold")));
		return;
	}
	if (strcmp(op, "list") == 0)
		r = vm_list();
	else if (strcmp(op, "status") == 0 && project != NULL)
		r = vm_status(project);
	else if (strcmp(op, "stop") == 0 && project != NULL) {
		if (vm_stop(project, err, sizeof(err)) == -1)
			r = json_pack("{s:b,s:s}", "ok", 0, "error", err);
		else
			r = json_pack("{s:b}", "ok", 1);
	} else if (strcmp(op, "stop-all") == 0)
		r = json_pack("{s:b,s:i}", "ok", 1, "stopped", vm_stop_all());
	else if (strcmp(op, "refresh") == 0) {
		if (refresh(project, err, sizeof(err)) == -1)
			r = json_pack("{s:b,s:s}", "ok", 0, "error", err);
		else
			r = json_pack("{s:b}", "ok", 1);
	} else {
		log_warn("malformed request op=%s from uid=%ld: unknown op "
		    "or missing project", safe, (long)c->uid);
		return;
	}
	proto_send(c->fd, r, NULL, 0);
	json_decref(r);
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	json_t *req = NULL;
	char err[256];
	int r;

	/* Strangers get a short while to say what they wanted: their
	 * refusal is logged with it. */
	r = proto_recv(c->fd, &req, c->uid == 0 || is_gateway(c) ?
	    REQUEST_TIMEOUT_MS : 2000, err, sizeof(err));
	if (r == -1)
		log_warn("malformed message from uid=%ld pid=%ld: %s",
		    (long)c->uid, (long)c->pid, err);
	else if (r == 0)
		dispatch(c, req);
	json_decref(req);
	close(c->fd);
	free(c);
	__atomic_sub_fetch(&conns, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * One provisioner at a time: two would fight over TAPs, VMs and the
 * metadata listeners.  The lock dies with the process, so a restart after
 * kill -9 is never blocked.
 */
static int
lock_instance(char *err, size_t errlen)
{
	char *path = xasprintf("%s/provisioner.lock", cfg.run_dir);
	int fd = -1;

	if (mkdir_p(cfg.run_dir, 0755, err, errlen) == -1)
		goto out;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		seterr(err, errlen, "another prison-provisioner is running "
		    "(%s is locked)", path);
		close(fd);
		fd = -1;
	}
 out:
	free(path);
	return fd;
}

static int
listen_control(char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char *dir = xstrdup(cfg.provisioner_socket);
	int fd = -1;

	if (mkdir_p(dirname(dir), 0755, err, errlen) == -1)
		goto fail;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(cfg.provisioner_socket) >= sizeof(sun.sun_path)) {
		seterr(err, errlen, "%s: path too long",
		    cfg.provisioner_socket);
		goto fail;
	}
	strcpy(sun.sun_path, cfg.provisioner_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		seterr(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	unlink(cfg.provisioner_socket);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 64) == -1) {
		seterr(err, errlen, "%s: %s", cfg.provisioner_socket,
		    strerror(errno));
		goto fail;
	}
	/* Anyone may connect; the peer check decides what they may ask,
	 * and refusals are logged rather than silent. */
	if (chmod(cfg.provisioner_socket, 0666) == -1) {
		seterr(err, errlen, "%s: %s", cfg.provisioner_socket,
		    strerror(errno));
		goto fail;
	}
	free(dir);
	return fd;
 fail:
	if (fd != -1)
		close(fd);
	free(dir);
	return -1;
}

/* Reconcile the network with the registry's projects. */
static int
net_start(char *err, size_t errlen)
{
	struct registry *reg = NULL;
	struct net_project *np = NULL;
	size_t n = 0;
	int r;

	if (registry_load(cfg.registry, &reg, err, errlen) == -1)
		return -1;
	np = net_projects_of(reg, &n);
	r = net_reconcile(&cfg, np, n, err, errlen);
	free(np);
	registry_free(reg);
	return r;
}

static void
serve(int lfd)
{
	struct pollfd pfd = { lfd, POLLIN, 0 };
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!quit) {
		struct conn *c;
		int fd;

		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		if (proto_peer(fd, &c->uid, &c->gid, &c->pid) == -1) {
			log_warn("connection without peer credentials "
			    "refused");
			close(fd);
			free(c);
			continue;
		}
		if (conns >= MAX_CONNS) {
			log_warn("refused connection from uid=%ld pid=%ld: "
			    "%d connections open", (long)c->uid,
			    (long)c->pid, MAX_CONNS);
			close(fd);
			free(c);
			continue;
		}
		__atomic_add_fetch(&conns, 1, __ATOMIC_SEQ_CST);
		if (pthread_create(&t, &attr, conn_main, c) != 0) {
			log_err("cannot start a connection thread");
			__atomic_sub_fetch(&conns, 1, __ATOMIC_SEQ_CST);
			close(fd);
			free(c);
		}
	}
	pthread_attr_destroy(&attr);
}

static void
usage(void)
{
	fprintf(stderr, "usage: prison-provisioner [-f] [-c FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *file = NULL;
	struct sigaction sa;
	struct passwd *pw;
	char err[1024];
	int ch, fg = 0, lfd;

	while ((ch = getopt(argc, argv, "c:fh")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'f':
			fg = 1;
			break;
		default:
			usage();
		}
	}
	log_init("prison-provisioner", fg);
	if (config_load(file, &cfg, err, sizeof(err)) == -1)
		fatal("%s", err);
	if (geteuid() != 0)
		fatal("must run as root");
	/* The gateway's own group only: never a group others share. */
	if ((pw = getpwnam(cfg.gateway_user)) != NULL) {
		gateway_uid = pw->pw_uid;
		if (pw->pw_gid != 0 && pw->pw_gid != 65534)
			gateway_gid = pw->pw_gid;
	} else
		log_warn("gateway user \"%s\" does not exist; only root may "
		    "use the control socket", cfg.gateway_user);
	umask(022);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (lock_instance(err, sizeof(err)) == -1)
		fatal("%s", err);
	if (net_start(err, sizeof(err)) == -1)
		fatal("network: %s", err);
	if (vm_init(&cfg, err, sizeof(err)) == -1)
		fatal("%s", err);
	if ((lfd = listen_control(err, sizeof(err))) == -1)
		fatal("%s", err);
	log_notice("listening on %s", cfg.provisioner_socket);
	sd_notify(0, "READY=1");
	serve(lfd);

	/* VMs keep running: the next start adopts them. */
	sd_notify(0, "STOPPING=1");
	log_notice("exiting; running VMs are left to the next start");
	close(lfd);
	unlink(cfg.provisioner_socket);
	vm_shutdown();
	config_free(&cfg);
	return 0;
}
