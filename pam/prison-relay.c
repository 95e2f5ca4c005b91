/*
 * prison-relay: the login shell and forced command of a project's host
 * account, so host OpenSSH can serve as a second front door.  sshd has
 * already authenticated the developer (AuthorizedKeysCommand) and
 * pam_prison has checked membership; the relay makes sure the project's
 * VM runs, then connects to the guest as its dev user with the gateway's
 * client key, pinning the guest's host key, and passes the session
 * through: the command (SSH_ORIGINAL_COMMAND), a pty when the developer
 * asked for one, and the exit status.
 *
 * It is installed set-gid to the gateway user's group so that it can
 * read the client key, the registry and the pinned upstream keys and
 * reach the provisioner's socket.  It takes those while privileged, puts
 * the key and the pin into memory files, gives the group up for good and
 * only then starts ssh, which reads both through /proc/PID/fd of the
 * relay.  Nothing of the key touches the disk.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <jansson.h>

#include "authinfo.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "xmalloc.h"

#ifndef SSH_PATH
#define SSH_PATH	"/usr/bin/ssh"
#endif
#define KEY_MAX		(64 * 1024)
#define PIN_MAX		(1024 * 1024)
#define RELAY_EXIT	255	/* as ssh: no connection was made */

struct target {
	char	*host;
	char	*port;
	char	*user;
	char	*pins;		/* known_hosts text */
	char	*alias;		/* HostKeyAlias, or NULL */
	int	 hold;		/* provisioner connection, or -1 */
};

static pid_t child = -1;

/* The developer sees this; syslog gets the same line. */
static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "prison: %s\r\n", buf);
	log_warn("%s", buf);
}

/*
 * A set-id relay must not read a configuration an ordinary user could
 * have written: the file and every directory above it must be owned by
 * root and not writable by others (a root-owned sticky directory such as
 * /tmp is fine: nobody else can replace what root put there).  The
 * resolved path goes to real (PATH_MAX bytes), and the caller must open
 * that, not path: a symbolic link on the way could be swapped between
 * the check and the open, the checked directories cannot.
 */
static int
safe_path(const char *path, char *real, char *err, size_t errlen)
{
	char buf[PATH_MAX], *slash;
	struct stat st;

	if (realpath(path, real) == NULL)
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	memcpy(buf, real, sizeof(buf));
	for (;;) {
		if (stat(buf, &st) == -1)
			return seterr(err, errlen, "%s: %s", buf,
			    strerror(errno));
		if (st.st_uid != 0 || ((st.st_mode & 022) != 0 &&
		    !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX))))
			return seterr(err, errlen, "%s: must be owned by root "
			    "and writable only by root", buf);
		if (strcmp(buf, "/") == 0)
			return 0;
		if ((slash = strrchr(buf, '/')) == buf)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

/*
 * A memory file holding data, mode 0600, for ssh to open by path.  ssh
 * opens /proc/<relay>/fd/N, the relay's own descriptor, so its copy
 * need not be inherited: close-on-exec keeps the key out of ssh's
 * descriptor table and out of anything ssh runs.
 */
static int
memfile(const char *name, const char *data, size_t len, char *err,
    size_t errlen)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = memfd_create(name, MFD_CLOEXEC)) == -1)
		return seterr(err, errlen, "memfd_create: %s",
		    strerror(errno));
	if (fchmod(fd, 0600) == -1) {
		seterr(err, errlen, "fchmod: %s", strerror(errno));
		goto fail;
	}
	while (off < len) {
		if ((n = write(fd, data + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			seterr(err, errlen, "write: %s", strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	return fd;
 fail:
	close(fd);
	return -1;
}

/* "host:port", "[v6]:port" or "host" (port 22). */
static int
parse_upstream(const char *s, struct target *t, char *err, size_t errlen)
{
	const char *colon;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return seterr(err, errlen, "bad upstream \"%s\"", s);
		t->host = xstrndup(s + 1, (size_t)(end - s - 1));
		t->port = xstrdup(end[1] == ':' ? end + 2 : "22");
	} else if ((colon = strrchr(s, ':')) != NULL) {
		t->host = xstrndup(s, (size_t)(colon - s));
		t->port = xstrdup(colon + 1);
	} else {
		t->host = xstrdup(s);
		t->port = xstrdup("22");
	}
	if (*t->host == '\0' || *t->host == '-' || *t->port == '\0' ||
	    strspn(t->port, "0123456789") != strlen(t->port))
		return seterr(err, errlen, "bad upstream \"%s\"", s);
	return 0;
}

static void
progress(const char *msg, void *arg)
{
	char safe[128];

	fprintf(stderr, "prison: %s\r\n", log_safe(safe, sizeof(safe), msg));
}

/*
 * The upstream's key as the gateway pinned it in known_hosts: a line
 * "PROJECT/UPSTREAM TYPE BASE64".  The relay never pins: an upstream no
 * one has vouched for yet is refused.
 */
static int
upstream_pin(const struct prison_config *cfg, const struct reg_project *p,
    struct target *t, char *err, size_t errlen)
{
	char *data = NULL, *id = NULL, *line, *nl;
	size_t len, idlen;
	int ret = -1;

	id = xasprintf("%s/%s ", p->name, p->upstream);
	idlen = strlen(id);
	if (read_file(cfg->known_hosts, PIN_MAX, &data, &len, err,
	    errlen) == -1 && errno != ENOENT)
		goto out;
	for (line = data; line != NULL && *line != '\0'; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if (strncmp(line, id, idlen) != 0)
			continue;
		t->alias = xasprintf("prison-upstream-%s", p->name);
		t->pins = xasprintf("%s %s\n", t->alias, line + idlen);
		ret = 0;
		goto out;
	}
	seterr(err, errlen, "no pinned host key for %s in %s: log in once "
	    "through prison-gateway, which pins it", p->upstream,
	    cfg->known_hosts);
 out:
	free(data);
	free(id);
	return ret;
}

/*
 * Ask the provisioner for the project's VM and keep the connection
 * ("hold") for as long as the relay lives, so the session is counted.
 */
static int
ensure_vm(const struct prison_config *cfg, const char *project,
    struct target *t, char *err, size_t errlen)
{
	json_t *msg = NULL;
	const char *addr, *key, *user, *s;
	int fd = -1, r, ret = -1;

	if (proto_ensure_hold(cfg->provisioner_socket, project, progress,
	    NULL, (cfg->boot_timeout + 60) * 1000, &msg, &fd, err,
	    errlen) == -1)
		goto out;
	if (fd == -1) {
		s = json_string_value(json_object_get(msg, "error"));
		addr = json_string_value(json_object_get(msg, "stage"));
		if (addr == NULL)
			seterr(err, errlen, "the provisioner refused: %s",
			    s != NULL ? s : "no reason given");
		else
			seterr(err, errlen, "the VM could not be started "
			    "(stage %s): %s", addr, s != NULL ? s : "?");
		goto out;
	}
	addr = json_string_value(json_object_get(msg, "address"));
	key = json_string_value(json_object_get(msg, "host_key"));
	user = json_string_value(json_object_get(msg, "dev_user"));
	r = (int)json_integer_value(json_object_get(msg, "port"));
	if (addr == NULL || key == NULL || strchr(key, '\n') != NULL ||
	    *addr == '-' || r <= 0 || r > 65535) {
		seterr(err, errlen, "malformed ensure reply");
		goto out;
	}
	t->host = xstrdup(addr);
	t->port = xasprintf("%d", r);
	if (user != NULL && t->user == NULL)
		t->user = xstrdup(user);
	t->alias = xasprintf("prison-guest-%s", project);
	t->pins = xasprintf("%s %s\n", t->alias, key);
	t->hold = fd;
	fd = -1;
	ret = 0;
 out:
	json_decref(msg);
	if (fd != -1)
		close(fd);
	return ret;
}

/*
 * Read a file the caller named (through the environment) with the
 * caller's own group, so that whether it opens, and how it fails, tells
 * nothing about files only the relay's group may read.  The set-gid
 * group stays saved and comes back afterwards.
 */
static int
read_as_caller(const char *path, size_t max, char **data, size_t *len,
    char *err, size_t errlen)
{
	gid_t egid = getegid();
	int r, saved;

	if (setegid(getgid()) == -1)
		return seterr(err, errlen, "setegid: %s", strerror(errno));
	r = read_file(path, max, data, len, err, errlen);
	saved = errno;
	if (setegid(egid) == -1) {
		if (r == 0) {
			free(*data);
			*data = NULL;
		}
		return seterr(err, errlen, "setegid back: %s",
		    strerror(errno));
	}
	errno = saved;
	return r;
}

/*
 * The developer from sshd's own record (ExposeAuthInfo), checked again
 * here: pam_prison's session phase is the rule, this keeps a host whose
 * PAM stack lacks it from relaying anyone sshd let in.
 */
static int
check_developer(const struct registry *reg, const char *project, char *err,
    size_t errlen)
{
	const char *path = getenv("SSH_USER_AUTH");
	const struct reg_user *u;
	const struct reg_key *k;
	char *data = NULL, why[256];
	size_t len;
	int ret = -1;

	if (path == NULL)
		return seterr(err, errlen, "SSH_USER_AUTH is not set: sshd "
		    "needs ExposeAuthInfo yes");
	if (read_as_caller(path, 64 * 1024, &data, &len, err, errlen) == -1)
		return -1;
	if ((u = authinfo_developer(reg, data, &k, why, sizeof(why))) == NULL) {
		seterr(err, errlen, "%s", why);
		goto out;
	}
	if (!registry_may_access(reg, project, u->name)) {
		seterr(err, errlen, "developer %s may not use project %s",
		    u->name, project);
		goto out;
	}
	log_info("project=%s developer=%s key=%s", project, u->name,
	    k->fingerprint);
	ret = 0;
 out:
	free(data);
	return ret;
}

/* What the developer asked for: NULL for a login shell. */
static const char *
wanted_command(int argc, char **argv, int *subsystem)
{
	const char *cmd = NULL, *base;

	*subsystem = 0;
	/* As a login shell: "relay -c CMD"; CMD is the forced command
	 * itself when sshd runs us through ForceCommand. */
	if (argc == 3 && strcmp(argv[1], "-c") == 0) {
		base = strrchr(argv[2], '/');
		base = base != NULL ? base + 1 : argv[2];
		if (strncmp(base, "prison-relay", 12) != 0 ||
		    strchr(base, ' ') != NULL)
			cmd = argv[2];
	}
	if (cmd == NULL)
		cmd = getenv("SSH_ORIGINAL_COMMAND");
	if (cmd == NULL || *cmd == '\0')
		return NULL;
	/* sshd hands a subsystem over as its configured command. */
	base = strrchr(cmd, '/');
	base = base != NULL ? base + 1 : cmd;
	if (strcmp(cmd, "internal-sftp") == 0 ||
	    strcmp(base, "sftp-server") == 0) {
		*subsystem = 1;
		return "sftp";
	}
	return cmd;
}

static void
forward_signal(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/*
 * Wait for ssh while listening on the held provisioner connection: if
 * the VM stops, say so and end ssh instead of leaving the developer on
 * a dead connection until keepalives give up.  A provisioner that only
 * went away leaves the VM running; then plain waiting goes on.
 */
static void
watch_vm(int hold)
{
	struct pollfd pfd[2];
	int n;

	if (hold == -1 || (pfd[0].fd = pidfd_open(child, 0)) == -1)
		return;
	pfd[0].events = POLLIN;
	pfd[1].fd = hold;
	pfd[1].events = POLLIN;
	for (;;) {
		pfd[0].revents = pfd[1].revents = 0;
		if ((n = poll(pfd, 2, -1)) == -1 && errno == EINTR)
			continue;
		if (n == -1 || pfd[0].revents != 0)
			break;
		if (pfd[1].revents == 0)
			continue;
		if ((n = proto_hold_event(hold)) == -1)
			pfd[1].fd = -1;		/* provisioner gone */
		if (n == 1) {
			fprintf(stderr, "\r\nprison: the project's VM is "
			    "stopping; session closed.\r\n");
			kill(child, SIGTERM);
			break;
		}
	}
	close(pfd[0].fd);
}

static int
run_ssh(const struct prison_config *cfg, struct target *t, int keyfd,
    int pinfd, const char *cmd, int subsystem)
{
	char *av[48], *env[4], *o[4];
	const char *term = getenv("TERM");
	int ac = 0, ne = 0, i, status;
	pid_t me = getpid();

	o[0] = xasprintf("IdentityFile=/proc/%ld/fd/%d", (long)me, keyfd);
	o[1] = xasprintf("UserKnownHostsFile=/proc/%ld/fd/%d", (long)me,
	    pinfd);
	o[2] = xasprintf("ServerAliveInterval=%d", cfg->keepalive_interval);
	o[3] = xasprintf("HostKeyAlias=%s", t->alias != NULL ? t->alias :
	    "none");
	av[ac++] = "ssh";
	av[ac++] = "-F";
	av[ac++] = "/dev/null";
	for (i = 0; i < 4; i++) {
		if (i == 3 && t->alias == NULL)
			break;
		av[ac++] = "-o";
		av[ac++] = o[i];
	}
	av[ac++] = "-oIdentitiesOnly=yes";
	av[ac++] = "-oIdentityAgent=none";
	av[ac++] = "-oBatchMode=yes";
	av[ac++] = "-oStrictHostKeyChecking=yes";
	av[ac++] = "-oGlobalKnownHostsFile=/dev/null";
	av[ac++] = "-oUpdateHostKeys=no";
	av[ac++] = "-oCheckHostIP=no";
	av[ac++] = "-oForwardAgent=no";
	av[ac++] = "-oClearAllForwardings=yes";
	av[ac++] = "-oLogLevel=ERROR";
	av[ac++] = "-p";
	av[ac++] = t->port;
	av[ac++] = "-l";
	av[ac++] = t->user;
	/* A pty exactly when sshd gave us one. */
	av[ac++] = isatty(STDIN_FILENO) && !subsystem ? "-tt" : "-T";
	if (subsystem)
		av[ac++] = "-s";
	av[ac++] = t->host;
	if (cmd != NULL) {
		av[ac++] = "--";
		av[ac++] = (char *)cmd;
	}
	av[ac] = NULL;

	env[ne++] = "PATH=/usr/bin:/bin";
	if (term != NULL && strlen(term) < 64)
		env[ne++] = xasprintf("TERM=%s", term);
	if (getenv("HOME") != NULL)
		env[ne++] = xasprintf("HOME=%s", getenv("HOME"));
	env[ne] = NULL;

	signal(SIGHUP, forward_signal);
	signal(SIGTERM, forward_signal);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if ((child = fork()) == -1) {
		say("fork: %s", strerror(errno));
		return RELAY_EXIT;
	}
	if (child == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		execve(SSH_PATH, av, env);
		fprintf(stderr, "prison: %s: %s\r\n", SSH_PATH,
		    strerror(errno));
		_exit(RELAY_EXIT);
	}
	watch_vm(t->hold);
	while (waitpid(child, &status, 0) == -1)
		if (errno != EINTR)
			return RELAY_EXIT;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Read what needs the group, then give the group up for good. */
static int
drop_group(char *err, size_t errlen)
{
	gid_t g = getgid();

	if (setresgid(g, g, g) == -1)
		return seterr(err, errlen, "setresgid: %s", strerror(errno));
	if (getegid() != g)
		return seterr(err, errlen, "group still held");
	/* ssh (same uid) must be able to open our /proc/PID/fd. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == -1)
		return seterr(err, errlen, "prctl: %s", strerror(errno));
	return 0;
}

int
main(int argc, char **argv)
{
	struct prison_config cfg;
	struct registry *reg = NULL;
	const struct reg_project *p;
	struct target t = { NULL, NULL, NULL, NULL, NULL, -1 };
	struct rlimit nocore = { 0, 0 };
	struct passwd *pw;
	const char *cfgpath, *cmd;
	char err[512], self[PATH_MAX], shell[PATH_MAX], real[PATH_MAX];
	char *key = NULL;
	size_t keylen = 0;
	int setid, cfg_loaded = 0, keyfd = -1, pinfd = -1, subsystem;
	int ret = RELAY_EXIT;
	ssize_t n;

	log_init("prison-relay", 0);
	setid = getegid() != getgid() || geteuid() != getuid();
	/*
	 * drop_group() makes the relay dumpable again so that ssh may
	 * open its memory files; a core dump must still never put the
	 * key on disk.
	 */
	if (setrlimit(RLIMIT_CORE, &nocore) == -1) {
		say("setrlimit: %s", strerror(errno));
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));

	if ((pw = getpwuid(getuid())) == NULL) {
		say("who am I? uid %ld has no account", (long)getuid());
		goto out;
	}
	/* Only a project account, whose shell is this program, may relay:
	 * a person's own account named like a project gets nothing. */
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1) {
		say("readlink /proc/self/exe: %s", strerror(errno));
		goto out;
	}
	self[n] = '\0';
	if (realpath(pw->pw_shell, shell) == NULL ||
	    strcmp(shell, self) != 0) {
		say("account %s: its login shell must be %s", pw->pw_name,
		    self);
		goto out;
	}

	/* The configuration decides which key goes where: set-id, only
	 * one that root wrote is believed. */
	cfgpath = getenv("PRISON_CONFIG");
	if (setid && cfgpath != NULL && *cfgpath != '\0') {
		if (safe_path(cfgpath, real, err, sizeof(err)) == -1) {
			say("refusing configuration: %s", err);
			goto out;
		}
		cfgpath = real;
	}
	if (config_load(cfgpath, &cfg, err, sizeof(err)) == -1) {
		say("configuration: %s", err);
		goto out;
	}
	cfg_loaded = 1;
	if (registry_load(cfg.registry, &reg, err, sizeof(err)) == -1) {
		say("registry: %s", err);
		goto out;
	}
	if ((p = registry_project(reg, pw->pw_name)) == NULL) {
		say("%s is not a project", pw->pw_name);
		goto out;
	}
	if (check_developer(reg, p->name, err, sizeof(err)) == -1) {
		say("access refused: %s", err);
		goto out;
	}

	t.user = xstrdup(p->dev_user != NULL ? p->dev_user : "dev");
	if (p->upstream != NULL) {
		if (parse_upstream(p->upstream, &t, err, sizeof(err)) == -1 ||
		    upstream_pin(&cfg, p, &t, err, sizeof(err)) == -1) {
			say("upstream of %s: %s", p->name, err);
			goto out;
		}
	} else if (ensure_vm(&cfg, p->name, &t, err, sizeof(err)) == -1) {
		say("%s", err);
		goto out;
	}

	if (read_file(cfg.client_key, KEY_MAX, &key, &keylen, err,
	    sizeof(err)) == -1) {
		say("client key: %s", err);
		goto out;
	}
	keyfd = memfile("prison-client-key", key, keylen, err, sizeof(err));
	/* The memory file is the only copy left. */
	freezero(key, keylen);
	key = NULL;
	pinfd = memfile("prison-known-hosts", t.pins, strlen(t.pins), err,
	    sizeof(err));
	if (keyfd == -1 || pinfd == -1) {
		say("%s", err);
		goto out;
	}
	if (drop_group(err, sizeof(err)) == -1) {
		say("%s", err);
		goto out;
	}

	cmd = wanted_command(argc, argv, &subsystem);
	log_notice("relay project=%s to=%s:%s user=%s pty=%s %s", p->name,
	    t.host, t.port, t.user, isatty(STDIN_FILENO) ? "yes" : "no",
	    cmd == NULL ? "shell" : subsystem ? "subsystem" : "command");
	ret = run_ssh(&cfg, &t, keyfd, pinfd, cmd, subsystem);
 out:
	if (key != NULL)
		freezero(key, keylen);
	if (keyfd != -1)
		close(keyfd);
	if (pinfd != -1)
		close(pinfd);
	if (t.hold != -1)
		close(t.hold);
	free(t.host);
	free(t.port);
	free(t.user);
	free(t.pins);
	free(t.alias);
	registry_free(reg);
	if (cfg_loaded)
		config_free(&cfg);
	return ret;
}
