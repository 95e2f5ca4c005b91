/*
 * The Firecracker driver.  Firecracker always runs through its jailer:
 * the jailer builds <jailer_chroot>/<exec name>/<id>/root, puts the
 * process into its own cgroup (v2) with the VM's CPU and memory limits,
 * chroots there, drops to the VM's uid/gid and execs Firecracker, which
 * then serves its API on <root>/run/firecracker.socket.  Before that we
 * place the kernel, the project's disk and the log file into the root;
 * after it we configure the VM over the API and start it.
 *
 * The jailer runs in the foreground of a child we fork (no --daemonize,
 * no --new-pid-ns), so the pid we hold is Firecracker's own and its
 * serial console lands in vm_dir/console.log.  The pid is also written
 * beside the root (<jail>/prison.pid, out of the guest VMM's reach), so
 * a restarted provisioner can adopt the VM.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "fc_api.h"
#include "fileio.h"
#include "log.h"
#include "vmm.h"
#include "vmm_firecracker.h"
#include "xmalloc.h"

#define FC_SOCK_IN_ROOT		"/run/firecracker.socket"
#define FC_KERNEL_IN_ROOT	"/vmlinux"
#define FC_INITRD_IN_ROOT	"/initrd.img"
#define FC_DISK_IN_ROOT		"/rootfs.ext4"
#define FC_LOG_IN_ROOT		"/firecracker.log"
#define FC_PARENT_CGROUP	"prison"
#define FC_CGROUP_ROOT		"/sys/fs/cgroup"
#define FC_START_TIMEOUT	10	/* seconds until the API answers */
#define FC_KILL_TIMEOUT		5	/* seconds to wait after SIGKILL */
/* x86_64 Firecracker refuses command lines of 2048 bytes and more. */
#define FC_CMDLINE_MAX		2048
#define FC_API_PAYLOAD_MAX	"524288"	/* bytes per API request */

/* Where one VM's jail lives. */
struct fc_jail {
	char	 id[FC_ID_MAX + 1];
	char	*dir;		/* <jailer_chroot>/<exec name>/<id> */
	char	*root;		/* dir/root: "/" as Firecracker sees it */
	char	*sock;		/* root/run/firecracker.socket */
	char	*pidfile;	/* dir/prison.pid */
};

int
fc_jail_id(const char *project, char *id, size_t idlen, char *err,
    size_t errlen)
{
	const char *p;
	uint32_t h = 2166136261u;	/* FNV-1a */
	int plain = 1, n;
	char *q;

	if (project == NULL || *project == '\0' || strlen(project) > 40)
		return seterr(err, errlen, "project name \"%s\" cannot be "
		    "made into a jailer id", project ? project : "");
	for (p = project; *p != '\0'; p++) {
		h = (h ^ (unsigned char)*p) * 16777619u;
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '-')
			plain = 0;
	}
	if (plain)
		n = snprintf(id, idlen, "prison-%s", project);
	else
		n = snprintf(id, idlen, "prisonx-%08x-%s", h, project);
	if (n < 0 || (size_t)n >= idlen || n > FC_ID_MAX)
		return seterr(err, errlen, "jailer id for project \"%s\" "
		    "is too long", project);
	for (q = id; *q != '\0'; q++) {
		if (!(*q >= 'a' && *q <= 'z') && !(*q >= 'A' && *q <= 'Z') &&
		    !(*q >= '0' && *q <= '9'))
			*q = '-';
	}
	return 0;
}

void
fc_cgroup_limits(int vcpus, int mem_mib, char *cpu, size_t cpulen,
    char *mem, size_t memlen)
{
	long long bytes;

	/*
	 * A quarter CPU on top of the vCPUs for Firecracker's API and
	 * device-emulation threads; memory gets 64 MiB plus 1/16 of the
	 * guest for the VMM's own heap, page tables and I/O buffers.
	 */
	snprintf(cpu, cpulen, "%lld 100000", (long long)vcpus * 100000 + 25000);
	bytes = ((long long)mem_mib + 64 + mem_mib / 16) * 1024 * 1024;
	snprintf(mem, memlen, "%lld", bytes);
}

/* Is key= (or the bare word key) one of the words of cmdline? */
static int
cmdline_has(const char *cmdline, const char *key)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		if (strncmp(p, key, klen) == 0 &&
		    (p[klen] == '=' || p[klen] == ' ' || p[klen] == '\0'))
			return 1;
		p = strchr(p, ' ');
	}
	return 0;
}

char *
fc_boot_args(const char *extra)
{
	static const char *base[][2] = {
		{ "console", "console=ttyS0" },
		{ "reboot", "reboot=k" },
		{ "panic", "panic=1" },
		{ "pci", "pci=off" },
		{ "root", "root=/dev/vda" },
		{ "rw", "rw" },
	};
	char *s = xstrdup(""), *t;
	size_t i;

	if (extra == NULL)
		extra = "";
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		if (cmdline_has(extra, base[i][0]) ||
		    (strcmp(base[i][0], "rw") == 0 && cmdline_has(extra, "ro")))
			continue;
		t = xasprintf("%s%s%s", s, *s ? " " : "", base[i][1]);
		free(s);
		s = t;
	}
	if (*extra != '\0') {
		t = xasprintf("%s%s%s", s, *s ? " " : "", extra);
		free(s);
		s = t;
	}
	return s;
}

json_t *
fc_merge_patch(json_t *old, json_t *new)
{
	json_t *patch, *ov, *nv;
	const char *k;

	if (!json_is_object(old) || !json_is_object(new))
		return json_deep_copy(new);
	patch = json_object();
	json_object_foreach(old, k, ov) {
		if (json_object_get(new, k) == NULL)
			json_object_set_new(patch, k, json_null());
	}
	json_object_foreach(new, k, nv) {
		ov = json_object_get(old, k);
		if (ov != NULL && json_equal(ov, nv))
			continue;
		json_object_set_new(patch, k, fc_merge_patch(ov, nv));
	}
	return patch;
}

static void
fc_jail_free(struct fc_jail *j)
{
	free(j->dir);
	free(j->root);
	free(j->sock);
	free(j->pidfile);
	memset(j, 0, sizeof(*j));
}

static int
fc_jail_init(const struct prison_config *cfg, const char *project,
    struct fc_jail *j, char *err, size_t errlen)
{
	char *tmp = NULL;
	const char *exec_name;

	memset(j, 0, sizeof(*j));
	if (fc_jail_id(project, j->id, sizeof(j->id), err, errlen) != 0)
		return -1;
	if (cfg->jailer_chroot == NULL || cfg->jailer_chroot[0] != '/')
		return seterr(err, errlen, "jailer_chroot must be an absolute "
		    "path");
	tmp = xstrdup(cfg->firecracker_binary);
	exec_name = basename(tmp);
	/* The jailer names the jail after the binary's file name. */
	j->dir = xasprintf("%s/%s/%s", cfg->jailer_chroot, exec_name, j->id);
	j->root = xasprintf("%s/root", j->dir);
	j->sock = xasprintf("%s%s", j->root, FC_SOCK_IN_ROOT);
	j->pidfile = xasprintf("%s/prison.pid", j->dir);
	free(tmp);
	return 0;
}

/*
 * Read a /proc file (their size shows as 0, so read_file() cannot) into
 * buf; returns the bytes read or -1.
 */
static ssize_t
fc_read_proc(const char *path, char *buf, size_t size)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (off + 1 < size &&
	    (n = read(fd, buf + off, size - 1 - off)) > 0)
		off += n;
	close(fd);
	buf[off] = '\0';
	return (ssize_t)off;
}

/* A process is gone when it no longer exists or is a zombie. */
static int
fc_pid_gone(pid_t pid)
{
	char path[64], buf[1024], *p;
	int status;

	if (pid <= 0)
		return 1;
	if (waitpid(pid, &status, WNOHANG) == pid)
		return 1;
	if (kill(pid, 0) == -1 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (fc_read_proc(path, buf, sizeof(buf)) <= 0)
		return 1;
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	return (p = strrchr(buf, ')')) != NULL && p[1] == ' ' &&
	    (p[2] == 'Z' || p[2] == 'X');
}

/* Wait up to ms milliseconds for pid to go; 1 when it went. */
static int
fc_wait_gone(pid_t pid, long ms)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	long waited;

	for (waited = 0; waited <= ms; waited += 50) {
		if (fc_pid_gone(pid))
			return 1;
		nanosleep(&ts, NULL);
	}
	return fc_pid_gone(pid);
}

/*
 * Is pid the Firecracker jailed under this id (not a recycled pid)?  The
 * jailer passes "--id=ID" on; before its exec it holds "--id" "ID".
 */
static int
fc_pid_is_jail(pid_t pid, const char *id)
{
	char path[64], buf[8192], want[FC_ID_MAX + 8];
	ssize_t len, i, prev = -1;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	snprintf(want, sizeof(want), "--id=%s", id);
	if ((len = fc_read_proc(path, buf, sizeof(buf))) <= 0)
		return 0;
	for (i = 0; i < len; i += strlen(buf + i) + 1) {
		if (strcmp(buf + i, want) == 0 || (prev != -1 &&
		    strcmp(buf + prev, "--id") == 0 && strcmp(buf + i,
		    id) == 0))
			return 1;
		prev = i;
	}
	return 0;
}

static int
fc_match(pid_t pid, const void *id)
{
	return !fc_pid_gone(pid) && fc_pid_is_jail(pid, id);
}

/* A live jailer or Firecracker of this jail id (vmm_find()). */
static pid_t
fc_find(const struct vm_spec *spec, const char *id, pid_t skip)
{
	return vmm_find(spec->vm_dir, fc_match, id, skip);
}

static int
fc_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/*
 * Remove a jail directory.  Hard links to the project's disk go with it;
 * the disk itself stays in disk_dir.  The jail's cgroup is removed too
 * once empty (the jailer leaves it behind).
 */
static void
fc_jail_clean(const struct fc_jail *j)
{
	char *cg = NULL;

	if (j->dir == NULL)
		return;
	nftw(j->dir, fc_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	cg = xasprintf("%s/%s/%s", FC_CGROUP_ROOT, FC_PARENT_CGROUP, j->id);
	rmdir(cg);
	free(cg);
}

static int
fc_copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
	char buf[65536];
	ssize_t n;
	int in = -1, out = -1, r = -1;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", src, strerror(errno));
		goto out;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0400)) == -1) {
		seterr(err, errlen, "%s: %s", dst, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, n) != n) {
			seterr(err, errlen, "copying %s to %s: %s", src, dst,
			    strerror(errno));
			goto out;
		}
	}
	if (n < 0) {
		seterr(err, errlen, "%s: %s", src, strerror(errno));
		goto out;
	}
	r = 0;
 out:
	if (in != -1)
		close(in);
	if (out != -1 && close(out) != 0 && r == 0)
		r = seterr(err, errlen, "%s: %s", dst, strerror(errno));
	return r;
}

/*
 * Put a read-only input (kernel, initrd) into the jail: a hard link when
 * it is on the same filesystem and world-readable (no copy, and the
 * shared image file keeps its owner), else a private copy for the uid.
 */
static int
fc_place_readonly(const char *src, const char *dst, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	struct stat st;

	if (stat(src, &st) != 0)
		return seterr(err, errlen, "%s: %s", src, strerror(errno));
	if ((st.st_mode & S_IROTH) && link(src, dst) == 0)
		return 0;
	if (fc_copy_file(src, dst, err, errlen) != 0)
		return -1;
	if (chown(dst, uid, gid) != 0)
		return seterr(err, errlen, "chown %s: %s", dst,
		    strerror(errno));
	return 0;
}

/*
 * The disk must stay the project's own file so the guest's writes
 * persist: hard-link it into the jail and hand it to the VM's uid.
 */
static int
fc_place_disk(const char *disk, const char *dst, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	if (link(disk, dst) != 0) {
		if (errno == EXDEV)
			return seterr(err, errlen, "cannot hard-link the "
			    "project disk %s into the jail %s: they are on "
			    "different filesystems; put jailer_chroot on the "
			    "filesystem of disk_dir", disk, dst);
		return seterr(err, errlen, "hard-linking %s to %s: %s", disk,
		    dst, strerror(errno));
	}
	if (chown(dst, uid, gid) != 0 || chmod(dst, 0600) != 0)
		return seterr(err, errlen, "giving %s to uid %ld: %s", disk,
		    (long)uid, strerror(errno));
	return 0;
}

/*
 * Firecracker loads an uncompressed ELF kernel (vmlinux), not the
 * bzImage (vmlinuz) qemu boots.  Images ship it beside vmlinuz.
 */
static int
fc_find_kernel(const char *kernel, char **out, char *err, size_t errlen)
{
	char *tmp = NULL, *path = NULL, magic[4];
	const char *base;
	int fd = -1, r = -1;

	*out = NULL;
	if (kernel == NULL)
		return seterr(err, errlen, "no kernel given for Firecracker");
	tmp = xstrdup(kernel);
	base = basename(tmp);
	if (strcmp(base, "vmlinux") == 0)
		path = xstrdup(kernel);
	else {
		free(tmp);
		tmp = xstrdup(kernel);
		path = xasprintf("%s/vmlinux", dirname(tmp));
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "Firecracker needs an uncompressed ELF "
		    "kernel (vmlinux) but %s: %s; rebuild the image with a "
		    "vmlinux beside its vmlinuz", path, strerror(errno));
		goto out;
	}
	if (read(fd, magic, 4) != 4 || memcmp(magic, "\177ELF", 4) != 0) {
		seterr(err, errlen, "%s is not an ELF kernel; Firecracker "
		    "needs an uncompressed vmlinux, not a bzImage", path);
		goto out;
	}
	*out = path;
	path = NULL;
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	free(path);
	free(tmp);
	return r;
}

/* Create an empty file owned by uid (Firecracker does not create it). */
static int
fc_touch(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0640)) == -1)
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	if (fchown(fd, uid, gid) != 0) {
		close(fd);
		return seterr(err, errlen, "chown %s: %s", path,
		    strerror(errno));
	}
	close(fd);
	return 0;
}

/*
 * The log: vm_dir/firecracker.log hard-linked into the jail, so it
 * outlives the jail; on another filesystem it lives in the jail only.
 */
static int
fc_place_log(const struct vm_spec *spec, const struct fc_jail *j,
    char *err, size_t errlen)
{
	char *host = NULL, *dst = NULL;
	int r = -1;

	host = xasprintf("%s/firecracker.log", spec->vm_dir);
	dst = xasprintf("%s%s", j->root, FC_LOG_IN_ROOT);
	if (fc_touch(host, spec->uid, spec->gid, err, errlen) != 0)
		goto out;
	if (link(host, dst) != 0 &&
	    fc_touch(dst, spec->uid, spec->gid, err, errlen) != 0)
		goto out;
	r = 0;
 out:
	free(host);
	free(dst);
	return r;
}

static int
fc_prepare_root(const struct vm_spec *spec, const struct fc_jail *j,
    const char *kernel, char *err, size_t errlen)
{
	char *p = NULL;
	int r = -1;

	if (mkdir_p(j->root, 0755, err, errlen) != 0)
		goto out;
	/* Firecracker binds its socket here after dropping to the uid. */
	p = xasprintf("%s/run", j->root);
	if (mkdir(p, 0700) != 0 || chown(p, spec->uid, spec->gid) != 0) {
		seterr(err, errlen, "%s: %s", p, strerror(errno));
		goto out;
	}
	free(p);
	p = xasprintf("%s%s", j->root, FC_KERNEL_IN_ROOT);
	if (fc_place_readonly(kernel, p, spec->uid, spec->gid,
	    err, errlen) != 0)
		goto out;
	if (spec->initrd != NULL) {
		free(p);
		p = xasprintf("%s%s", j->root, FC_INITRD_IN_ROOT);
		if (fc_place_readonly(spec->initrd, p, spec->uid, spec->gid,
		    err, errlen) != 0)
			goto out;
	}
	free(p);
	p = xasprintf("%s%s", j->root, FC_DISK_IN_ROOT);
	if (fc_place_disk(spec->disk, p, spec->uid, spec->gid,
	    err, errlen) != 0)
		goto out;
	if (fc_place_log(spec, j, err, errlen) != 0)
		goto out;
	r = 0;
 out:
	free(p);
	return r;
}

/* Fork the jailer; its child becomes Firecracker under the same pid. */
static int
fc_launch(const struct prison_config *cfg, const struct vm_spec *spec,
    const struct fc_jail *j, pid_t *pidp, char *err, size_t errlen)
{
	char uid[32], gid[32], cpu[64], mem[64], *cpuarg = NULL;
	char *memarg = NULL, *console = NULL;
	const char *argv[40], *msg;
	int n = 0, fd = -1, devnull = -1, r = -1;
	pid_t pid;

	snprintf(uid, sizeof(uid), "%ld", (long)spec->uid);
	snprintf(gid, sizeof(gid), "%ld", (long)spec->gid);
	fc_cgroup_limits(spec->vcpus, spec->mem_mib, cpu, sizeof(cpu),
	    mem, sizeof(mem));
	cpuarg = xasprintf("cpu.max=%s", cpu);
	memarg = xasprintf("memory.max=%s", mem);
	argv[n++] = cfg->jailer_binary;
	argv[n++] = "--id";
	argv[n++] = j->id;
	argv[n++] = "--exec-file";
	argv[n++] = cfg->firecracker_binary;
	argv[n++] = "--uid";
	argv[n++] = uid;
	argv[n++] = "--gid";
	argv[n++] = gid;
	argv[n++] = "--chroot-base-dir";
	argv[n++] = cfg->jailer_chroot;
	argv[n++] = "--cgroup-version";
	argv[n++] = "2";
	argv[n++] = "--parent-cgroup";
	argv[n++] = FC_PARENT_CGROUP;
	argv[n++] = "--cgroup";
	argv[n++] = cpuarg;
	argv[n++] = "--cgroup";
	argv[n++] = memarg;
	argv[n++] = "--";
	argv[n++] = "--api-sock";
	argv[n++] = FC_SOCK_IN_ROOT;
	/* Also MMDS's size limit; the 50 KiB default is tight for scripts. */
	argv[n++] = "--http-api-max-payload-size";
	argv[n++] = FC_API_PAYLOAD_MAX;
	argv[n] = NULL;

	console = xasprintf("%s/console.log", spec->vm_dir);
	if ((fd = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0640)) == -1) {
		seterr(err, errlen, "%s: %s", console, strerror(errno));
		goto out;
	}
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "/dev/null: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) == -1) {
		seterr(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* Own session: the provisioner's signals stay its own. */
		setsid();
		dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(cfg->jailer_binary, (char **)argv);
		/*
		 * Only async-signal-safe calls here; the line lands in
		 * console.log, which fc_wait_api() quotes.
		 */
		msg = "prison: cannot execute the jailer binary\n";
		(void)write(2, msg, strlen(msg));
		_exit(127);
	}
	*pidp = pid;
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	if (devnull != -1)
		close(devnull);
	free(console);
	free(cpuarg);
	free(memarg);
	return r;
}

/* The last line the jailer or Firecracker printed, for error messages. */
static void
fc_last_output(const struct vm_spec *spec, char *buf, size_t buflen)
{
	char *path = NULL, *data = NULL, *line, *end;
	size_t len;

	snprintf(buf, buflen, "(no output)");
	path = xasprintf("%s/console.log", spec->vm_dir);
	if (read_file(path, 16 * 1024 * 1024, &data, &len, NULL, 0) != 0)
		goto out;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (len == 0)
		goto out;
	line = (end = strrchr(data, '\n')) != NULL ? end + 1 : data;
	fc_api_clean(buf, buflen, line);
 out:
	free(data);
	free(path);
}

/* Wait until the API answers, or the jailer/Firecracker died. */
static int
fc_wait_api(const struct vm_spec *spec, const struct fc_jail *j,
    pid_t pid, char *err, size_t errlen)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	char last[256], state[32];
	int status, i;

	for (i = 0; i < FC_START_TIMEOUT * 20; i++) {
		/* waitpid() may fail if a SIGCHLD handler reaped it first. */
		if (waitpid(pid, &status, WNOHANG) == pid ||
		    fc_pid_gone(pid)) {
			fc_last_output(spec, last, sizeof(last));
			return seterr(err, errlen, "jailer exited before the "
			    "Firecracker API came up: %s", last);
		}
		if (access(j->sock, F_OK) == 0 &&
		    fc_api_state(j->sock, state, sizeof(state), NULL, 0) == 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	return seterr(err, errlen, "Firecracker API did not answer on %s "
	    "within %d seconds", j->sock, FC_START_TIMEOUT);
}

/* PUT a jansson object (stolen) to path. */
static int
fc_put(const char *sock, const char *path, json_t *body, char *err,
    size_t errlen)
{
	char *s = NULL;
	int r;

	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL)
		return seterr(err, errlen, "PUT %s: cannot encode body", path);
	r = fc_api_call(sock, "PUT", path, s, err, errlen);
	free(s);
	return r;
}

/* The configuration sequence; InstanceStart comes last. */
static int
fc_configure(const struct vm_spec *spec, const struct fc_jail *j,
    char *err, size_t errlen)
{
	json_t *boot = NULL;
	char *args = NULL, *mmds = NULL;
	const char *s = j->sock;
	int r = -1;

	if (fc_put(s, "/logger", json_pack("{s:s, s:s, s:b}",
	    "log_path", FC_LOG_IN_ROOT, "level", "Info",
	    "show_level", 1), err, errlen) != 0)
		goto out;
	if (fc_put(s, "/machine-config", json_pack("{s:i, s:i}",
	    "vcpu_count", spec->vcpus, "mem_size_mib", spec->mem_mib),
	    err, errlen) != 0)
		goto out;
	args = fc_boot_args(spec->cmdline);
	boot = json_pack("{s:s, s:s}", "kernel_image_path",
	    FC_KERNEL_IN_ROOT, "boot_args", args);
	if (spec->initrd != NULL)
		json_object_set_new(boot, "initrd_path",
		    json_string(FC_INITRD_IN_ROOT));
	if (fc_put(s, "/boot-source", boot, err, errlen) != 0)
		goto out;
	if (fc_put(s, "/drives/rootfs", json_pack("{s:s, s:b, s:b, s:s}",
	    "drive_id", "rootfs", "is_root_device", 1, "is_read_only", 0,
	    "path_on_host", FC_DISK_IN_ROOT), err, errlen) != 0)
		goto out;
	if (fc_put(s, "/network-interfaces/eth0", json_pack("{s:s, s:s, s:s}",
	    "iface_id", "eth0", "host_dev_name", spec->tap,
	    "guest_mac", spec->mac), err, errlen) != 0)
		goto out;
	if (fc_put(s, "/mmds/config", json_pack("{s:s, s:[s], s:s}",
	    "version", "V2", "network_interfaces", "eth0",
	    "ipv4_address", "169.254.169.254"), err, errlen) != 0)
		goto out;
	mmds = xstrdup(spec->mmds_json != NULL ? spec->mmds_json : "{}");
	if (fc_api_call(s, "PUT", "/mmds", mmds, err, errlen) != 0)
		goto out;
	if (fc_put(s, "/actions", json_pack("{s:s}", "action_type",
	    "InstanceStart"), err, errlen) != 0)
		goto out;
	r = 0;
 out:
	if (mmds != NULL)
		freezero(mmds, strlen(mmds));
	free(args);
	return r;
}

/* Refuse a spec Firecracker would refuse, with our own clearer words. */
static int
fc_check_spec(const struct vm_spec *spec, char *err, size_t errlen)
{
	json_t *j = NULL;
	json_error_t jerr;
	char *args = NULL;
	int r = -1;

	if (spec->uid == 0 || spec->gid == 0) {
		seterr(err, errlen, "refusing to jail Firecracker as root; "
		    "set vmm_user to an unprivileged user");
		goto out;
	}
	if (spec->vcpus < 1 || spec->vcpus > 32) {
		seterr(err, errlen, "Firecracker takes 1 to 32 vCPUs, not %d",
		    spec->vcpus);
		goto out;
	}
	if (spec->mem_mib < 1) {
		seterr(err, errlen, "memory size %d MiB is invalid",
		    spec->mem_mib);
		goto out;
	}
	if (spec->disk == NULL || spec->tap == NULL || spec->mac == NULL ||
	    spec->vm_dir == NULL) {
		seterr(err, errlen, "incomplete VM spec: disk, tap, mac and "
		    "vm_dir are required");
		goto out;
	}
	args = fc_boot_args(spec->cmdline);
	if (strlen(args) >= FC_CMDLINE_MAX) {
		seterr(err, errlen, "kernel command line is %zu bytes; "
		    "Firecracker takes at most %d", strlen(args),
		    FC_CMDLINE_MAX - 1);
		goto out;
	}
	if (spec->mmds_json != NULL &&
	    (!json_is_object(j = json_loads(spec->mmds_json, 0, &jerr)))) {
		seterr(err, errlen, "metadata document is not a JSON object: "
		    "%s", j == NULL ? jerr.text : "wrong type");
		goto out;
	}
	r = 0;
 out:
	json_decref(j);
	free(args);
	return r;
}

static int
fc_write_pid(const struct fc_jail *j, pid_t pid, char *err, size_t errlen)
{
	char buf[32];
	int n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	return atomic_write(j->pidfile, buf, n, 0600, err, errlen);
}

static pid_t
fc_read_pid(const struct fc_jail *j)
{
	char *buf = NULL;
	size_t len;
	long v;

	if (read_file(j->pidfile, 64, &buf, &len, NULL, 0) != 0)
		return -1;
	v = strtol(buf, NULL, 10);
	free(buf);
	return v > 0 ? (pid_t)v : -1;
}

static void
fc_kill(pid_t pid)
{
	if (pid <= 0 || fc_pid_gone(pid))
		return;
	kill(pid, SIGKILL);
	fc_wait_gone(pid, FC_KILL_TIMEOUT * 1000);
}

static int
fc_start(const struct prison_config *cfg, const struct vm_spec *spec,
    struct vm_handle *h, char *err, size_t errlen)
{
	struct fc_jail j;
	char *kernel = NULL;
	pid_t pid = -1, old;
	int r = -1, keep = 0;

	memset(&j, 0, sizeof(j));
	if (fc_check_spec(spec, err, errlen) != 0 ||
	    fc_jail_init(cfg, spec->project, &j, err, errlen) != 0 ||
	    fc_find_kernel(spec->kernel, &kernel, err, errlen) != 0)
		goto out;

	/* A live VM under this id is a caller error; a dead one is litter. */
	if ((old = fc_read_pid(&j)) > 0 && !fc_pid_gone(old) &&
	    fc_pid_is_jail(old, j.id)) {
		seterr(err, errlen, "Firecracker for %s already runs as pid "
		    "%ld", spec->project, (long)old);
		keep = 1;
		goto out;
	}
	fc_jail_clean(&j);

	if (fc_prepare_root(spec, &j, kernel, err, errlen) != 0 ||
	    fc_launch(cfg, spec, &j, &pid, err, errlen) != 0 ||
	    fc_write_pid(&j, pid, err, errlen) != 0 ||
	    fc_wait_api(spec, &j, pid, err, errlen) != 0 ||
	    fc_configure(spec, &j, err, errlen) != 0)
		goto out;

	h->pid = pid;
	h->api_socket = xstrdup(j.sock);
	r = 0;
 out:
	if (r != 0 && !keep) {
		fc_kill(pid);
		fc_jail_clean(&j);
	}
	free(kernel);
	fc_jail_free(&j);
	return r;
}

static int
fc_adopt(const struct prison_config *cfg, const struct vm_spec *spec,
    struct vm_handle *h, char *err, size_t errlen)
{
	struct fc_jail j;
	char state[32];
	pid_t pid;
	int r = -1;

	if (fc_jail_init(cfg, spec->project, &j, err, errlen) != 0)
		goto out;
	/* No pidfile (or a stale one): look for the process itself. */
	if (((pid = fc_read_pid(&j)) <= 0 || fc_pid_gone(pid) ||
	    !fc_pid_is_jail(pid, j.id)) && (spec->vm_dir == NULL ||
	    (pid = fc_find(spec, j.id, 0)) == 0)) {
		seterr(err, errlen, "no Firecracker running for %s",
		    spec->project);
		goto out;
	}
	if (fc_api_state(j.sock, state, sizeof(state), err, errlen) != 0)
		goto out;
	if (strcmp(state, "Running") != 0) {
		seterr(err, errlen, "Firecracker for %s (pid %ld) is in state "
		    "\"%s\", not Running", spec->project, (long)pid, state);
		goto out;
	}
	h->pid = pid;
	h->api_socket = xstrdup(j.sock);
	r = 0;
 out:
	fc_jail_free(&j);
	return r;
}

/*
 * Only a process that is gone counts as exited.  A busy VMM may miss one
 * API call, so a failed one is retried once before the answer is -1
 * ("unknown"), which callers must not read as an exit.
 */
static int
fc_alive(const struct vm_handle *h)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	char state[32];
	int i;

	if (fc_pid_gone(h->pid))
		return 0;
	if (h->api_socket == NULL)
		return -1;
	for (i = 0; i < 2; i++) {
		if (i > 0)
			nanosleep(&ts, NULL);
		if (fc_api_state(h->api_socket, state, sizeof(state), NULL,
		    0) != 0)
			continue;
		if (strcmp(state, "Running") == 0 ||
		    strcmp(state, "Paused") == 0)
			return 1;
		break;
	}
	return fc_pid_gone(h->pid) ? 0 : -1;
}

/*
 * The jail directory from the API socket path, refusing anything outside
 * jailer_chroot so a bad handle can never make us delete other files.
 */
static int
fc_jail_from_sock(const struct prison_config *cfg, const char *sock,
    struct fc_jail *j)
{
	const char *suffix = "/root" FC_SOCK_IN_ROOT;
	size_t blen = strlen(cfg->jailer_chroot), slen, xlen = strlen(suffix);

	memset(j, 0, sizeof(*j));
	if (sock == NULL || (slen = strlen(sock)) <= blen + xlen ||
	    strncmp(sock, cfg->jailer_chroot, blen) != 0 ||
	    sock[blen] != '/' || strcmp(sock + slen - xlen, suffix) != 0 ||
	    strstr(sock, "/..") != NULL)
		return -1;
	j->dir = xstrndup(sock, slen - xlen);
	snprintf(j->id, sizeof(j->id), "%s", strrchr(j->dir, '/') + 1);
	return 0;
}

static int
fc_stop(const struct prison_config *cfg, struct vm_handle *h, int timeout,
    char *err, size_t errlen)
{
	struct fc_jail j;
	int r = -1;

	if (fc_jail_from_sock(cfg, h->api_socket, &j) != 0) {
		seterr(err, errlen, "API socket %s is not inside "
		    "jailer_chroot %s",
		    h->api_socket ? h->api_socket : "(none)",
		    cfg->jailer_chroot);
		goto out;
	}
	if (!fc_pid_gone(h->pid)) {
		/*
		 * Ctrl-Alt-Del makes the guest reboot, and Firecracker exits
		 * on a guest reboot.  A guest that ignores it is killed.
		 */
		fc_api_call(h->api_socket, "PUT", "/actions",
		    "{\"action_type\":\"SendCtrlAltDel\"}", NULL, 0);
		if (!fc_wait_gone(h->pid, (long)timeout * 1000))
			fc_kill(h->pid);
		if (!fc_pid_gone(h->pid)) {
			seterr(err, errlen, "Firecracker pid %ld survived "
			    "SIGKILL", (long)h->pid);
			goto out;
		}
	}
	fc_jail_clean(&j);
	h->pid = 0;
	r = 0;
 out:
	fc_jail_free(&j);
	return r;
}

static int
fc_mmds_update(const struct vm_handle *h, const char *json, char *err,
    size_t errlen)
{
	json_t *new = NULL, *old = NULL, *patch = NULL;
	json_error_t jerr;
	char *resp = NULL, *body = NULL;
	long status;
	int r = -1;

	if (!json_is_object(new = json_loads(json, 0, &jerr))) {
		seterr(err, errlen, "metadata document is not a JSON object: "
		    "%s", new == NULL ? jerr.text : "wrong type");
		goto out;
	}
	/* PATCH merges; null out what the new document dropped. */
	if (fc_api_request(h->api_socket, "GET", "/mmds", NULL, &status,
	    &resp, err, errlen) != 0)
		goto out;
	if (status == 200)
		old = json_loads(resp, 0, NULL);
	patch = fc_merge_patch(old, new);
	if ((body = json_dumps(patch, JSON_COMPACT)) == NULL) {
		seterr(err, errlen, "PATCH /mmds: cannot encode body");
		goto out;
	}
	if (fc_api_call(h->api_socket, "PATCH", "/mmds", body,
	    err, errlen) != 0)
		goto out;
	r = 0;
 out:
	if (body != NULL)
		freezero(body, strlen(body));
	if (resp != NULL)
		freezero(resp, strlen(resp));
	json_decref(new);
	json_decref(old);
	json_decref(patch);
	return r;
}

static int
fc_kill_orphans(const struct prison_config *cfg,
    const struct vm_spec *spec)
{
	struct fc_jail j;
	pid_t pid = 0;
	int n = 0;

	if (spec->vm_dir == NULL || fc_jail_init(cfg, spec->project, &j,
	    NULL, 0) != 0)
		return 0;
	/* One that survives SIGKILL is skipped, not found forever. */
	while ((pid = fc_find(spec, j.id, pid)) > 0 && n < 16) {
		log_warn("project=%s killing Firecracker pid %ld that no "
		    "record names", spec->project, (long)pid);
		fc_kill(pid);
		n++;
	}
	if (n > 0)
		fc_jail_clean(&j);
	fc_jail_free(&j);
	return n;
}

const struct vmm_ops vmm_firecracker_ops = {
	.name = "firecracker",
	.start = fc_start,
	.adopt = fc_adopt,
	.alive = fc_alive,
	.stop = fc_stop,
	.kill_orphans = fc_kill_orphans,
	.mmds_update = fc_mmds_update,
};
