/*
 * The qemu driver: the microvm machine (virtio-mmio devices, no PCI, no
 * firmware), KVM where it runs stock kernels and TCG elsewhere, QMP on a
 * unix socket for status and shutdown.  qemu daemonizes, so VMs outlive
 * a provisioner restart and are adopted by the next one; it opens its
 * TAP, disk and sockets as root and then runs as cfg->vmm_user under its
 * own seccomp sandbox.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/close_range.h>
#include <linux/if_tun.h>
#include <net/if.h>

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "accel.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "proto.h"
#include "vmm.h"
#include "xmalloc.h"

#define QMP_TIMEOUT_MS	5000
#define QEMU_ARGS_MAX	64

extern char **environ;

static char *
qemu_file(const char *vm_dir, const char *leaf)
{
	return xasprintf("%s/%s", vm_dir, leaf);
}

/*
 * "-name prison:PROJECT" marks our qemu of that project; the project is
 * the name of the directory holding the QMP socket (vm_dir/PROJECT).
 */
static char *
qmp_arg(const char *sock)
{
	const char *end = strrchr(sock, '/'), *start;

	if (end == NULL)
		return xstrdup("prison:");
	for (start = end; start > sock && start[-1] != '/'; start--)
		;
	return xasprintf("prison:%.*s", (int)(end - start), start);
}

/* /proc files report size 0, so read until EOF. */
static int
read_file_any(const char *path, char **data, size_t *len)
{
	size_t cap = 4096, off = 0;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	buf = xmalloc(cap + 1);
	while ((n = read(fd, buf + off, cap - off)) > 0) {
		off += (size_t)n;
		if (off == cap) {
			if (cap >= 1024 * 1024)
				break;
			cap *= 2;
			buf = xreallocarray(buf, 1, cap + 1);
		}
	}
	close(fd);
	if (n == -1) {
		free(buf);
		return -1;
	}
	buf[off] = '\0';
	*data = buf;
	*len = off;
	return 0;
}

/* 1 when pid is a live (not zombie) process whose argv contains arg. */
static int
pid_has_arg(pid_t pid, const char *arg)
{
	char *path = NULL, *data = NULL, *p, stat[512];
	size_t len = 0;
	int ret = 0, fd;
	ssize_t n;

	if (pid <= 1)
		return 0;
	path = xasprintf("/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto out;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		goto out;
	stat[n] = '\0';
	if ((p = strrchr(stat, ')')) == NULL || p[1] != ' ' || p[2] == 'Z' ||
	    p[2] == 'X')
		goto out;
	free(path);
	path = xasprintf("/proc/%ld/cmdline", (long)pid);
	if (read_file_any(path, &data, &len) == -1)
		goto out;
	for (p = data; p < data + len; p += strlen(p) + 1)
		if (strcmp(p, arg) == 0) {
			ret = 1;
			break;
		}
 out:
	free(path);
	free(data);
	return ret;
}

/* QMP: one JSON object per line; events are skipped. */
static int
qmp_exec(int fd, const char *cmd, json_t **ret, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "execute", cmd), *msg = NULL;
	int r = -1;

	if (ret != NULL)
		*ret = NULL;
	if (proto_send(fd, req, err, errlen) == -1)
		goto out;
	for (;;) {
		if (proto_recv(fd, &msg, QMP_TIMEOUT_MS, err, errlen) != 0) {
			seterr(err, errlen, "QMP %s: no reply", cmd);
			goto out;
		}
		if (json_object_get(msg, "error") != NULL) {
			seterr(err, errlen, "QMP %s: %s", cmd,
			    json_string_value(json_object_get(json_object_get(
			    msg, "error"), "desc")));
			goto out;
		}
		if (json_object_get(msg, "return") != NULL)
			break;
		json_decref(msg);
		msg = NULL;
	}
	if (ret != NULL)
		*ret = json_incref(json_object_get(msg, "return"));
	r = 0;
 out:
	json_decref(req);
	json_decref(msg);
	return r;
}

static int
qmp_open(const char *sock, char *err, size_t errlen)
{
	json_t *greeting = NULL;
	int fd;

	if ((fd = proto_connect(sock, err, errlen)) == -1)
		return -1;
	if (proto_recv(fd, &greeting, QMP_TIMEOUT_MS, err, errlen) != 0 ||
	    json_object_get(greeting, "QMP") == NULL) {
		seterr(err, errlen, "%s: no QMP greeting", sock);
		goto fail;
	}
	json_decref(greeting);
	if (qmp_exec(fd, "qmp_capabilities", NULL, err, errlen) == -1)
		goto fail;
	return fd;
 fail:
	json_decref(greeting);
	close(fd);
	return -1;
}

/* "running", "paused", ... from query-status, or NULL. */
static char *
qmp_status(const char *sock, char *err, size_t errlen)
{
	json_t *ret = NULL;
	char *status = NULL;
	int fd;

	if ((fd = qmp_open(sock, err, errlen)) == -1)
		return NULL;
	if (qmp_exec(fd, "query-status", &ret, err, errlen) == 0 &&
	    json_is_string(json_object_get(ret, "status")))
		status = xstrdup(json_string_value(json_object_get(ret,
		    "status")));
	json_decref(ret);
	close(fd);
	return status;
}

static void
argv_add(char **argv, int *argc, char *arg)
{
	if (*argc >= QEMU_ARGS_MAX - 1)
		fatal("qemu: too many arguments");
	argv[(*argc)++] = arg;
	argv[*argc] = NULL;
}

static int
read_pidfile(const char *path, pid_t *pid, char *err, size_t errlen)
{
	char *data = NULL, *end = NULL;
	long v;

	if (read_file(path, 64, &data, NULL, err, errlen) == -1)
		return -1;
	v = strtol(data, &end, 10);
	free(data);
	if (v <= 1 || (*end != '\n' && *end != '\0'))
		return seterr(err, errlen, "%s: no pid in it", path);
	*pid = (pid_t)v;
	return 0;
}

/* An fd for the VMM: inherited across exec, unlike everything else. */
static int
keep_fd(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl == -1 ? -1 : fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

static int
open_tap(const char *tap, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1)
		return seterr(err, errlen, "/dev/net/tun: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		seterr(err, errlen, "%s: cannot attach to TAP: %s", tap,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A listening QMP socket the VMM inherits; only root can connect. */
static int
qmp_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return seterr(err, errlen, "%s: socket path too long", path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return seterr(err, errlen, "socket: %s", strerror(errno));
	unlink(path);
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 4) == -1) {
		umask(old);
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	return fd;
}

struct qemu_fds {
	int	tap, disk, diskr, qmp, con, log;
};

/*
 * The child: its own session (so it outlives the provisioner), the
 * VMM user's credentials, only the fds qemu needs.  Only async-signal-
 * safe calls between fork and exec.
 */
static void
child_exec(char **argv, const struct qemu_fds *f, uid_t uid, gid_t gid,
    gid_t *groups, int ngroups)
{
	int nul = open("/dev/null", O_RDWR);

	if (nul == -1 || dup2(nul, 0) == -1 || dup2(f->con, 1) == -1 ||
	    dup2(f->log, 2) == -1)
		_exit(126);
	setsid();
	if (setgroups((size_t)ngroups, groups) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1)
		_exit(125);
	if (setuid(0) != -1 && uid != 0)
		_exit(125);
	/* Nothing another thread opened without O_CLOEXEC leaks in. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (keep_fd(f->tap) == -1 || keep_fd(f->disk) == -1 ||
	    keep_fd(f->diskr) == -1 || keep_fd(f->qmp) == -1)
		_exit(126);
	execvp(argv[0], argv);
	_exit(127);
}

static void
fds_close(struct qemu_fds *f)
{
	if (f->tap != -1)
		close(f->tap);
	if (f->disk != -1)
		close(f->disk);
	if (f->diskr != -1)
		close(f->diskr);
	if (f->qmp != -1)
		close(f->qmp);
	if (f->con != -1)
		close(f->con);
	if (f->log != -1)
		close(f->log);
}

static int
open_fds(const struct vm_spec *spec, const char *qmp, const char *log,
    struct qemu_fds *f, char *err, size_t errlen)
{
	char *con = qemu_file(spec->vm_dir, "console.log");

	f->tap = f->disk = f->diskr = f->qmp = f->con = f->log = -1;
	if ((f->tap = open_tap(spec->tap, err, errlen)) == -1)
		goto fail;
	/* qemu probes the image read-only first: the set needs both. */
	if ((f->disk = open(spec->disk, O_RDWR | O_CLOEXEC)) == -1 ||
	    (f->diskr = open(spec->disk, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", spec->disk, strerror(errno));
		goto fail;
	}
	if ((f->qmp = qmp_listen(qmp, err, errlen)) == -1)
		goto fail;
	/* console.log holds this boot only; qemu.log its own messages. */
	if ((f->con = open(con, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640)) == -1 || (f->log = open(log, O_WRONLY | O_CREAT |
	    O_TRUNC | O_CLOEXEC, 0640)) == -1) {
		seterr(err, errlen, "%s: %s", spec->vm_dir, strerror(errno));
		goto fail;
	}
	free(con);
	return 0;
 fail:
	free(con);
	fds_close(f);
	return -1;
}

/* The last line qemu wrote to its log, to explain a failed start. */
static void
last_line(const char *path, char *buf, size_t len)
{
	char *data = NULL, *p, *nl;

	snprintf(buf, len, "no message");
	if (read_file(path, 64 * 1024, &data, NULL, NULL, 0) == -1)
		return;
	for (p = data + strlen(data); p > data && (p[-1] == '\n' ||
	    p[-1] == ' '); p--)
		p[-1] = '\0';
	nl = strrchr(data, '\n');
	if (*data != '\0')
		snprintf(buf, len, "%s", nl != NULL ? nl + 1 : data);
	free(data);
}

/* Wait until QMP answers "running", or the child died. */
static int
wait_running(pid_t pid, const char *qmp, const char *log, char *err,
    size_t errlen)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	char *status = NULL, line[256];
	int i, st;

	for (i = 0; i < 300; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			last_line(log, line, sizeof(line));
			return seterr(err, errlen, "qemu failed to start: %s",
			    line);
		}
		if ((status = qmp_status(qmp, err, errlen)) != NULL)
			break;
		nanosleep(&ts, NULL);
	}
	if (status == NULL)
		return seterr(err, errlen, "qemu does not answer on %s", qmp);
	if (strcmp(status, "running") != 0) {
		seterr(err, errlen, "qemu is %s, not running", status);
		free(status);
		return -1;
	}
	free(status);
	return 0;
}

/*
 * Under TCG the guest's TSC ticks at the host's TSC rate, but the guest
 * kernel calibrates it against the emulated PIT, which fails on a busy
 * host; microvm has no HPET or PM timer to fall back on, and the kernel
 * then hangs calibrating its delay loop.  Telling it the rate avoids the
 * calibration.  Returns "" when the rate is unknown.
 */
static char *
tcg_tsc_arg(void)
{
	char *data = NULL, *p;
	size_t len;
	double mhz;

	if (read_file_any("/proc/cpuinfo", &data, &len) == -1)
		return xstrdup("");
	if ((p = strstr(data, "cpu MHz")) == NULL || (p = strchr(p, ':')) ==
	    NULL || sscanf(p + 1, "%lf", &mhz) != 1 || mhz < 100) {
		free(data);
		return xstrdup("");
	}
	free(data);
	return xasprintf(" tsc_early_khz=%ld", (long)(mhz * 1000));
}

static int
qemu_start(const struct prison_config *cfg, const struct vm_spec *spec,
    struct vm_handle *h, char *err, size_t errlen)
{
	char *argv[QEMU_ARGS_MAX], *owned[16], why[256], *tsc;
	char *qmp = qemu_file(spec->vm_dir, "qmp.sock");
	char *log = qemu_file(spec->vm_dir, "qemu.log");
	char *pidf = qemu_file(spec->vm_dir, "qemu.pid"), *pidline = NULL;
	int argc = 0, nowned = 0, accel, ret = -1, i, ngroups = 64;
	struct qemu_fds f = { -1, -1, -1, -1, -1, -1 };
	gid_t groups[64];
	struct passwd pwbuf, *pw = NULL;
	char pwstr[1024];
	pid_t pid;

	memset(h, 0, sizeof(*h));
	argv[0] = NULL;
	if ((accel = accel_choose(cfg->accel, NULL, why, sizeof(why))) == -1) {
		seterr(err, errlen, "accel = %s: %s", cfg->accel, why);
		goto out;
	}
	if (getpwnam_r(cfg->vmm_user, &pwbuf, pwstr, sizeof(pwstr),
	    &pw) != 0 || pw == NULL) {
		seterr(err, errlen, "vmm_user \"%s\" does not exist; create "
		    "it with: useradd --system --user-group --home-dir "
		    "/nonexistent --shell /usr/sbin/nologin %s",
		    cfg->vmm_user, cfg->vmm_user);
		goto out;
	}
	/* The VMM user's groups (kvm for /dev/kvm), looked up before fork. */
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) == -1) {
		seterr(err, errlen, "%s: too many groups", cfg->vmm_user);
		goto out;
	}
	if (open_fds(spec, qmp, log, &f, err, errlen) == -1)
		goto out;

#define OWN(s)	(owned[nowned++] = (s))
	argv_add(argv, &argc, cfg->qemu_binary);
	argv_add(argv, &argc, "-name");
	argv_add(argv, &argc, OWN(xasprintf("prison:%s", spec->project)));
	argv_add(argv, &argc, "-M");
	/* No option ROMs or PCI; the ISA serial port and RTC the Debian
	 * kernel expects; the devices are found through ACPI. */
	argv_add(argv, &argc, "microvm,x-option-roms=off,isa-serial=on,"
	    "rtc=on");
	argv_add(argv, &argc, "-accel");
	argv_add(argv, &argc, (char *)accel_name(accel));
	if (accel == ACCEL_KVM) {
		argv_add(argv, &argc, "-cpu");
		argv_add(argv, &argc, "host");
	}
	argv_add(argv, &argc, "-m");
	argv_add(argv, &argc, OWN(xasprintf("%d", spec->mem_mib)));
	argv_add(argv, &argc, "-smp");
	argv_add(argv, &argc, OWN(xasprintf("%d", spec->vcpus)));
	argv_add(argv, &argc, "-nodefaults");
	argv_add(argv, &argc, "-no-user-config");
	/* A guest that reboots ends the VM: a boot loop fails the ensure at
	 * once (stage boot) instead of spinning until boot_timeout, and the
	 * next login boots it afresh. */
	argv_add(argv, &argc, "-no-reboot");
	argv_add(argv, &argc, "-display");
	argv_add(argv, &argc, "none");
	argv_add(argv, &argc, "-kernel");
	argv_add(argv, &argc, (char *)spec->kernel);
	if (spec->initrd != NULL) {
		argv_add(argv, &argc, "-initrd");
		argv_add(argv, &argc, (char *)spec->initrd);
	}
	argv_add(argv, &argc, "-append");
	tsc = accel == ACCEL_TCG ? tcg_tsc_arg() : xstrdup("");
	argv_add(argv, &argc, OWN(xasprintf("console=ttyS0 root=/dev/vda rw "
	    "%s%s", spec->cmdline, tsc)));
	free(tsc);
	/* Every host resource arrives as an fd opened here as root, so
	 * the VMM user can open nothing of another project. */
	argv_add(argv, &argc, "-add-fd");
	argv_add(argv, &argc, OWN(xasprintf("fd=%d,set=1", f.disk)));
	argv_add(argv, &argc, "-add-fd");
	argv_add(argv, &argc, OWN(xasprintf("fd=%d,set=1", f.diskr)));
	argv_add(argv, &argc, "-drive");
	argv_add(argv, &argc, "id=root,if=none,format=raw,"
	    "file=/dev/fdset/1");
	argv_add(argv, &argc, "-device");
	argv_add(argv, &argc, "virtio-blk-device,drive=root");
	argv_add(argv, &argc, "-netdev");
	argv_add(argv, &argc, OWN(xasprintf("tap,id=net0,fd=%d", f.tap)));
	argv_add(argv, &argc, "-device");
	argv_add(argv, &argc, OWN(xasprintf("virtio-net-device,netdev=net0,"
	    "mac=%s", spec->mac)));
	argv_add(argv, &argc, "-chardev");
	argv_add(argv, &argc, "stdio,id=con,signal=off");
	argv_add(argv, &argc, "-serial");
	argv_add(argv, &argc, "chardev:con");
	argv_add(argv, &argc, "-chardev");
	argv_add(argv, &argc, OWN(xasprintf("socket,id=qmp,fd=%d,server=on,"
	    "wait=off", f.qmp)));
	argv_add(argv, &argc, "-mon");
	argv_add(argv, &argc, "chardev=qmp,mode=control");
	argv_add(argv, &argc, "-sandbox");
	argv_add(argv, &argc, "on,obsolete=deny,elevateprivileges=deny,"
	    "spawn=deny,resourcecontrol=deny");
#undef OWN

	if ((pid = fork()) == -1) {
		seterr(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, &f, pw->pw_uid, pw->pw_gid, groups, ngroups);
	fds_close(&f);
	h->pid = pid;
	h->api_socket = xstrdup(qmp);
	/* Recorded before the wait: a provisioner killed during it leaves
	 * a qemu the next one can find by this file. */
	pidline = xasprintf("%ld\n", (long)pid);
	atomic_write(pidf, pidline, strlen(pidline), 0644, NULL, 0);
	if (wait_running(pid, qmp, log, err, errlen) == -1)
		goto fail;
	ret = 0;
	goto out;
 fail:
	kill(h->pid, SIGKILL);
	waitpid(h->pid, NULL, 0);
	unlink(pidf);
	free(h->api_socket);
	h->api_socket = NULL;
	h->pid = 0;
 out:
	fds_close(&f);
	for (i = 0; i < nowned; i++)
		free(owned[i]);
	free(qmp);
	free(log);
	free(pidf);
	free(pidline);
	return ret;
}

static int
qemu_match(pid_t pid, const void *arg)
{
	return pid_has_arg(pid, arg);
}

/* The qemu of spec->project by its "-name prison:PROJECT" (vmm_find()). */
static pid_t
qemu_find(const struct vm_spec *spec, pid_t skip)
{
	char *arg = xasprintf("prison:%s", spec->project);
	pid_t found = vmm_find(spec->vm_dir, qemu_match, arg, skip);

	free(arg);
	return found;
}

static int
qemu_adopt(const struct prison_config *cfg, const struct vm_spec *spec,
    struct vm_handle *h, char *err, size_t errlen)
{
	char *qmp = qemu_file(spec->vm_dir, "qmp.sock");
	char *pidf = qemu_file(spec->vm_dir, "qemu.pid");
	char *arg = qmp_arg(qmp);
	pid_t pid = h->pid;
	int ret = -1;

	if (pid <= 0 && read_pidfile(pidf, &pid, err, errlen) == -1)
		pid = 0;
	/* The pid may have been reused: it must be our qemu for this VM;
	 * without a usable pid, look for it. */
	if ((pid <= 0 || !pid_has_arg(pid, arg)) &&
	    (pid = qemu_find(spec, 0)) == 0) {
		seterr(err, errlen, "no qemu of %s runs", spec->project);
		goto out;
	}
	free(h->api_socket);
	h->pid = pid;
	h->api_socket = qmp;
	qmp = NULL;
	ret = 0;
 out:
	free(qmp);
	free(pidf);
	free(arg);
	return ret;
}

static int
qemu_alive(const struct vm_handle *h)
{
	char *arg;
	int r;

	if (h->pid <= 0 || h->api_socket == NULL)
		return 0;
	/* Started by this provisioner: reap it, or it lingers a zombie. */
	waitpid(h->pid, NULL, WNOHANG);
	arg = qmp_arg(h->api_socket);
	r = pid_has_arg(h->pid, arg);
	free(arg);
	return r;
}

/*
 * Reap a qemu this provisioner started.  Its main thread shows as a
 * zombie while the other threads still wind down, and only then can it be
 * reaped, so wait a little; an adopted qemu is not our child (ECHILD).
 */
static void
reap(pid_t pid)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	pid_t r;
	int i;

	for (i = 0; i < 500; i++) {
		r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r == -1 && errno != EINTR))
			return;
		nanosleep(&ts, NULL);
	}
}

/* Wait up to ms for the process to end; a stopped VM leaves no zombie. */
static int
wait_gone(const struct vm_handle *h, int ms)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	for (; ms > 0; ms -= 50) {
		if (!qemu_alive(h))
			break;
		nanosleep(&ts, NULL);
	}
	if (qemu_alive(h))
		return 0;
	reap(h->pid);
	return 1;
}

static int
qemu_stop(const struct prison_config *cfg, struct vm_handle *h,
    int timeout, char *err, size_t errlen)
{
	char why[256];
	int fd;

	if (!qemu_alive(h)) {
		reap(h->pid);
		return 0;
	}
	/* The ACPI power button: the guest shuts down cleanly. */
	if ((fd = qmp_open(h->api_socket, why, sizeof(why))) != -1) {
		qmp_exec(fd, "system_powerdown", NULL, why, sizeof(why));
		close(fd);
		if (wait_gone(h, timeout * 1000))
			return 0;
	}
	if ((fd = qmp_open(h->api_socket, why, sizeof(why))) != -1) {
		qmp_exec(fd, "quit", NULL, why, sizeof(why));
		close(fd);
		if (wait_gone(h, 3000))
			return 0;
	}
	if (kill(h->pid, SIGKILL) == -1 && errno != ESRCH)
		return seterr(err, errlen, "kill %ld: %s", (long)h->pid,
		    strerror(errno));
	if (!wait_gone(h, 5000))
		return seterr(err, errlen, "qemu %ld does not go away",
		    (long)h->pid);
	return 0;
}

static int
qemu_kill_orphans(const struct prison_config *cfg,
    const struct vm_spec *spec)
{
	struct vm_handle h;
	int n = 0;

	memset(&h, 0, sizeof(h));
	h.api_socket = qemu_file(spec->vm_dir, "qmp.sock");
	/* A qemu that survives SIGKILL is not found twice. */
	while ((h.pid = qemu_find(spec, h.pid)) > 0 && n < 16) {
		log_warn("project=%s killing qemu pid %ld that no record "
		    "names", spec->project, (long)h.pid);
		kill(h.pid, SIGKILL);
		wait_gone(&h, 5000);
		n++;
	}
	free(h.api_socket);
	return n;
}

const struct vmm_ops vmm_qemu_ops = {
	.name = "qemu",
	.start = qemu_start,
	.adopt = qemu_adopt,
	.alive = qemu_alive,
	.stop = qemu_stop,
	.kill_orphans = qemu_kill_orphans,
	.mmds_update = NULL,	/* the provisioner serves MMDS itself */
};
