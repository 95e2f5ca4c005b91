/*
 * prisonctl doctor: check this host the way an operator would before the
 * first login, and say what to fix.  Every check prints one line:
 *   ok    what was found
 *   warn  what works but is worth knowing
 *   FAIL  what stops prison from working, and the fix
 * The exit status is 1 when anything failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <nftables/libnftables.h>

#include "accel.h"
#include "config.h"
#include "ctl.h"
#include "log.h"
#include "proto.h"
#include "registry.h"
#include "xmalloc.h"

struct doctor {
	int	failed;
	int	warned;
};

static void __attribute__((format(printf, 3, 4)))
say(struct doctor *d, const char *verdict, const char *fmt, ...)
{
	va_list ap;

	if (strcmp(verdict, "FAIL") == 0)
		d->failed++;
	else if (strcmp(verdict, "warn") == 0)
		d->warned++;
	printf("%-5s ", verdict);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* The absolute path of an executable, searching PATH for bare names. */
static char *
find_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *found = NULL;

	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	copy = xstrdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", dir, name);

		if (access(p, X_OK) == 0) {
			found = p;
			break;
		}
		free(p);
	}
	free(copy);
	return found;
}

static void
check_root(struct doctor *d)
{
	if (geteuid() == 0)
		say(d, "ok", "running as root");
	else
		say(d, "warn", "not running as root: some checks need root "
		    "(run: sudo prisonctl doctor)");
}

static void
check_accel(struct doctor *d, const struct prison_config *cfg)
{
	char why[256];
	int a = accel_choose(cfg->accel, NULL, why, sizeof(why));

	if (a == -1)
		say(d, "FAIL", "accelerator: %s (fix: load kvm_intel or "
		    "kvm_amd, or set accel = auto)", why);
	else if (a == ACCEL_TCG && strcmp(cfg->accel, "tcg") != 0)
		say(d, "warn", "accelerator: TCG (software emulation, slow "
		    "boots): %s", why);
	else
		say(d, "ok", "accelerator: %s: %s", accel_name(a), why);
}

static void
check_tun(struct doctor *d)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd == -1) {
		say(d, "FAIL", "/dev/net/tun: %s (fix: modprobe tun)",
		    strerror(errno));
		return;
	}
	close(fd);
	say(d, "ok", "/dev/net/tun is usable");
}

static void
check_forwarding(struct doctor *d)
{
	char buf[8] = "";
	FILE *fp = fopen("/proc/sys/net/ipv4/ip_forward", "r");

	if (fp != NULL) {
		if (fgets(buf, sizeof(buf), fp) == NULL)
			buf[0] = '\0';
		fclose(fp);
	}
	if (buf[0] == '1')
		say(d, "ok", "net.ipv4.ip_forward = 1");
	else
		say(d, "warn", "net.ipv4.ip_forward = 0: the provisioner "
		    "turns it on when it starts");
}

static void
check_nftables(struct doctor *d, const struct prison_config *cfg)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	char *cmd = NULL;

	if (nft == NULL) {
		say(d, "FAIL", "nftables: cannot create a libnftables context");
		return;
	}
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	if (nft_run_cmd_from_buffer(nft, "list tables") != 0) {
		say(d, "FAIL", "nftables: %s (fix: run as root; modprobe "
		    "nf_tables)", nft_ctx_get_error_buffer(nft));
		goto out;
	}
	cmd = xasprintf("list table inet %s", cfg->nft_table);
	if (nft_run_cmd_from_buffer(nft, cmd) == 0)
		say(d, "ok", "nftables works; table inet %s is present",
		    cfg->nft_table);
	else
		say(d, "ok", "nftables works; table inet %s is created when "
		    "the provisioner starts", cfg->nft_table);
 out:
	free(cmd);
	nft_ctx_free(nft);
}

static void
check_vmm(struct doctor *d, const struct prison_config *cfg)
{
	char *p;

	if (strcmp(cfg->vmm, "qemu") == 0) {
		if ((p = find_program(cfg->qemu_binary)) == NULL) {
			say(d, "FAIL", "qemu: %s not found (fix: apt-get "
			    "install qemu-system-x86)", cfg->qemu_binary);
			return;
		}
		say(d, "ok", "qemu: %s", p);
		free(p);
		return;
	}
	if (strcmp(cfg->vmm, "firecracker") != 0) {
		say(d, "FAIL", "vmm = %s: expected qemu or firecracker",
		    cfg->vmm);
		return;
	}
	if (access(cfg->firecracker_binary, X_OK) != 0)
		say(d, "FAIL", "firecracker: %s is not executable (fix: "
		    "install it, see docs/firecracker.md)",
		    cfg->firecracker_binary);
	else
		say(d, "ok", "firecracker: %s", cfg->firecracker_binary);
	if (access(cfg->jailer_binary, X_OK) != 0)
		say(d, "FAIL", "jailer: %s is not executable (fix: install "
		    "it beside firecracker)", cfg->jailer_binary);
	else
		say(d, "ok", "jailer: %s", cfg->jailer_binary);
}

static void
check_image(struct doctor *d, const struct prison_config *cfg)
{
	char *manifest = xasprintf("%s/%s/manifest.json", cfg->image_dir,
	    cfg->default_image);

	if (access(manifest, R_OK) == 0)
		say(d, "ok", "image %s: %s", cfg->default_image, manifest);
	else
		say(d, "FAIL", "image %s: %s missing (fix: prisonctl image "
		    "build %s)", cfg->default_image, manifest,
		    cfg->default_image);
	free(manifest);
}

static void
check_space(struct doctor *d, const struct prison_config *cfg)
{
	unsigned long long mib;
	struct statvfs sv;

	if (statvfs(cfg->state_dir, &sv) == -1) {
		say(d, "warn", "state directory %s: %s (created on first use)",
		    cfg->state_dir, strerror(errno));
		return;
	}
	mib = (unsigned long long)sv.f_bavail * sv.f_frsize >> 20;
	if (mib < (unsigned long long)cfg->disk_size_mib)
		say(d, "FAIL", "%s has %llu MiB free, less than one project "
		    "disk (disk_size_mib = %d)", cfg->state_dir, mib,
		    cfg->disk_size_mib);
	else
		say(d, "ok", "%s has %llu MiB free", cfg->state_dir, mib);
}

static void
check_user(struct doctor *d, const char *what, const char *name)
{
	if (getpwnam(name) != NULL)
		say(d, "ok", "%s user %s exists", what, name);
	else
		say(d, "FAIL", "%s user %s does not exist (fix: useradd "
		    "--system --user-group --shell /usr/sbin/nologin %s)",
		    what, name, name);
}

/* 1 when nothing listens on TCP port (any address), 0 when taken. */
static int
port_free(int port)
{
	struct sockaddr_in sin;
	int fd, r, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return r == 0 || errno != EADDRINUSE;
}

/* The socket inode of a TCP listener on port, from /proc/net/tcp[6]. */
static unsigned long
listen_inode(int port)
{
	static const char *const tables[] = { "/proc/net/tcp",
	    "/proc/net/tcp6" };
	char line[512], local[64];
	unsigned long inode;
	unsigned int lport, state;
	size_t i;
	FILE *f;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if ((f = fopen(tables[i], "re")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			/* sl local rem st tx:rx tr:when retr uid timeout inode */
			if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*s "
			    "%*s %lu", local, &state, &inode) != 3)
				continue;
			if (state != 0x0A || strchr(local, ':') == NULL ||
			    sscanf(strrchr(local, ':') + 1, "%x",
			    &lport) != 1 || (int)lport != port)
				continue;
			fclose(f);
			return inode;
		}
		fclose(f);
	}
	return 0;
}

/*
 * Which process listens on TCP port: its pid and command name, found by
 * the socket's inode among every process's descriptors.  0 when unknown.
 */
static pid_t
port_owner(int port, char *comm, size_t commlen)
{
	unsigned long inode = listen_inode(port);
	char want[64], path[600], link[64];
	struct dirent *pe, *fe;
	DIR *procs, *fds;
	pid_t found = 0;
	ssize_t n;
	FILE *f;

	if (inode == 0 || (procs = opendir("/proc")) == NULL)
		return 0;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (found == 0 && (pe = readdir(procs)) != NULL) {
		if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		if ((fds = opendir(path)) == NULL)
			continue;
		while ((fe = readdir(fds)) != NULL) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s",
			    pe->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) == 0) {
				found = (pid_t)atol(pe->d_name);
				break;
			}
		}
		closedir(fds);
	}
	closedir(procs);
	snprintf(comm, commlen, "?");
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)found);
	if (found != 0 && (f = fopen(path, "re")) != NULL) {
		if (fgets(comm, (int)commlen, f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	return found;
}

static void
check_ports(struct doctor *d, const struct prison_config *cfg,
    const struct registry *reg, int provisioner_up)
{
	const char *colon = strrchr(cfg->listen, ':');
	int port = colon ? atoi(colon + 1) : 0;
	char comm[64];
	pid_t pid;
	size_t i;

	if (port <= 0)
		say(d, "FAIL", "gateway listen = %s: no port", cfg->listen);
	else if (port_free(port))
		say(d, "ok", "gateway port %d is free", port);
	else if ((pid = port_owner(port, comm, sizeof(comm))) != 0 &&
	    strcmp(comm, "prison-gateway") == 0)
		say(d, "ok", "gateway port %d: prison-gateway listens "
		    "(pid %ld)", port, (long)pid);
	else if (pid != 0)
		say(d, "FAIL", "gateway port %d is taken by %s (pid %ld): "
		    "stop it or change [gateway] listen", port, comm,
		    (long)pid);
	else
		say(d, "warn", "gateway port %d is in use (fine if "
		    "prison-gateway is what listens there; otherwise change "
		    "[gateway] listen)", port);
	for (i = 0; reg != NULL && i < reg->nprojects; i++) {
		int p = reg->projects[i].ssh_port;

		if (p == 0)
			continue;
		/* The DNAT happens before any listener sees the packet, so
		 * a local listener on that port would be unreachable. */
		if (port_free(p) || provisioner_up)
			say(d, "ok", "project %s: direct port %d",
			    reg->projects[i].name, p);
		else
			say(d, "warn", "project %s: direct port %d has a local "
			    "listener that prison's DNAT will shadow",
			    reg->projects[i].name, p);
	}
}

/*
 * Ask the provisioner, not the file system: a killed provisioner leaves
 * its socket file behind.
 */
static int
check_provisioner(struct doctor *d, const struct prison_config *cfg)
{
	json_t *req = json_pack("{s:s}", "op", "list"), *reply = NULL;
	char err[256];
	int r;

	r = proto_call(cfg->provisioner_socket, req, &reply, NULL, NULL,
	    5000, err, sizeof(err));
	json_decref(req);
	if (r == 0 && json_is_true(json_object_get(reply, "ok"))) {
		say(d, "ok", "provisioner answers on %s (%zu VMs)",
		    cfg->provisioner_socket,
		    json_array_size(json_object_get(reply, "vms")));
		json_decref(reply);
		return 1;
	}
	if (r == 0) {
		say(d, "warn", "provisioner on %s answers but refuses "
		    "doctor: %s", cfg->provisioner_socket, json_string_value(
		    json_object_get(reply, "error")) ?: "no reason given");
		json_decref(reply);
		return 1;
	}
	/* /run/systemd/system exists exactly when systemd is PID 1. */
	if (access("/run/systemd/system", F_OK) == 0)
		say(d, "warn", "provisioner is not running (%s: %s); start "
		    "it: systemctl start prison-provisioner",
		    cfg->provisioner_socket, err);
	else
		say(d, "warn", "provisioner is not running (%s: %s); start "
		    "it in the background: prison-provisioner -f "
		    ">>/var/log/prison-provisioner.log 2>&1 &",
		    cfg->provisioner_socket, err);
	return 0;
}

int
ctl_doctor(const struct prison_config *cfg, int argc, char **argv)
{
	struct doctor d = { 0, 0 };
	struct registry *reg = NULL;
	char err[512];
	int prov;

	if (argc != 0)
		return ctl_fail("usage: prisonctl doctor");
	printf("prison doctor (configuration: %s)\n",
	    cfg->file ? cfg->file : "built-in defaults");
	check_root(&d);
	check_accel(&d, cfg);
	check_tun(&d);
	check_forwarding(&d);
	check_nftables(&d, cfg);
	check_vmm(&d, cfg);
	check_image(&d, cfg);
	check_space(&d, cfg);
	check_user(&d, "gateway", cfg->gateway_user);
	check_user(&d, "VM", cfg->vmm_user);
	if (registry_load(cfg->registry, &reg, err, sizeof(err)) == -1)
		say(&d, "FAIL", "registry: %s", err);
	else
		say(&d, "ok", "registry %s: %zu developers, %zu projects",
		    cfg->registry, reg->nusers, reg->nprojects);
	prov = check_provisioner(&d, cfg);
	check_ports(&d, cfg, reg, prov);
	registry_free(reg);
	printf("%d failed, %d warnings\n", d.failed, d.warned);
	return d.failed ? 1 : 0;
}
