/*
 * prisonctl image build: a guest root tree from mmdebstrap (Debian
 * family) or dnf --installroot (EL), made into a prison guest by
 * guest-files/customize.sh, packed with mkfs.ext4 -d (no loop mounts),
 * its kernel and initrd taken from the tree's /boot.  Everything is
 * built in image_dir/.NAME.build.XXXXXX and renamed into place only
 * when complete, so a half-built image is never used.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "fileio.h"
#include "image.h"
#include "log.h"
#include "xmalloc.h"

/* What every image installs besides the base system. */
static const char *deb_packages[] = {
	"openssh-server", "sudo", "git", "curl", "ca-certificates",
	"systemd-sysv", "linux-image-amd64", "initramfs-tools", "zstd",
	"libcurl4", "libjansson4", "iproute2", "passwd", "acpid", NULL
};
static const char *el_packages[] = {
	"systemd", "openssh-server", "sudo", "git-core", "curl",
	"ca-certificates", "kernel-core", "dracut", "libcurl", "jansson",
	"iproute", "passwd", "shadow-utils", "util-linux", "e2fsprogs",
	"dnf", "acpid", NULL
};

/*
 * Files dpkg leaves out: documentation, translations, and kernel modules
 * for hardware a microVM never has.  Saves about half the image.
 */
static const char *deb_excludes[] = {
	"/usr/share/man/*", "/usr/share/doc/*", "/usr/share/info/*",
	"/usr/share/locale/*", "/usr/share/lintian/*",
	"/usr/lib/modules/*/kernel/sound/*",
	"/usr/lib/modules/*/kernel/drivers/gpu/*",
	"/usr/lib/modules/*/kernel/drivers/media/*",
	"/usr/lib/modules/*/kernel/drivers/net/wireless/*",
	"/usr/lib/modules/*/kernel/drivers/net/ethernet/*",
	"/usr/lib/modules/*/kernel/drivers/infiniband/*",
	"/usr/lib/modules/*/kernel/drivers/staging/*",
	"/usr/lib/modules/*/kernel/drivers/usb/*",
	"/usr/lib/modules/*/kernel/drivers/bluetooth/*",
	"/usr/lib/modules/*/kernel/drivers/iio/*",
	"/usr/lib/modules/*/kernel/drivers/isdn/*",
	"/usr/lib/modules/*/kernel/drivers/hid/*",
	"/usr/lib/modules/*/kernel/drivers/mtd/*",
	"/usr/lib/modules/*/kernel/net/wireless/*",
	"/usr/lib/modules/*/kernel/net/bluetooth/*",
	"/usr/lib/modules/*/kernel/net/mac80211/*",
	NULL
};

/*
 * The initramfs must find the root disk on a virtio-mmio bus: a small
 * list of modules instead of "most" also makes it build faster.
 */
#define DEB_INITRAMFS_HOOK \
	"mkdir -p \"$1/etc/initramfs-tools/conf.d\" && " \
	"echo MODULES=list >\"$1/etc/initramfs-tools/conf.d/prison\" && " \
	"printf 'virtio_mmio\\nvirtio_blk\\nvirtio_net\\next4\\n' " \
	">>\"$1/etc/initramfs-tools/modules\""

#define EL_DRACUT_CONF \
	"# prison: boot from a virtio-mmio disk on any host.\n" \
	"hostonly=\"no\"\n" \
	"add_drivers+=\" virtio_mmio virtio_blk virtio_net ext4 \"\n"

struct build {
	const struct prison_config	*cfg;
	const char	*name;
	const char	*release;
	const char	*builder;
	const char	*mirror;
	char		*agent;
	char		*files;
	char		*dir;		/* image_dir/NAME */
	char		*tmp;		/* image_dir/.NAME.build.XXXX */
	char		*root;		/* tmp/root */
	char		*log;		/* image_dir/NAME.build.log */
	char		*kver;
	json_t		*packages;
	time_t		 started;
};

static int
is_file(const char *path, int exec)
{
	struct stat st;

	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return 0;
	return !exec || access(path, X_OK) == 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	if (flag == FTW_DP)
		return rmdir(path) == -1 && errno != ENOENT ? -1 : 0;
	return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
}

/* rm -rf that never leaves the file system it starts on. */
static void
rm_tree(const char *path)
{
	nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static uint64_t du_bytes, du_inodes;

static int
du_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	du_bytes += (uint64_t)st->st_blocks * 512;
	du_inodes++;
	return 0;
}

/* Package names go on a command line: refuse anything option-like. */
static int
add_packages(json_t *list, const char *spec, char *err, size_t errlen)
{
	char *copy = xstrdup(spec), *p, *save = NULL;
	int ret = -1;
	size_t i;

	for (p = strtok_r(copy, ", \t\n", &save); p != NULL;
	    p = strtok_r(NULL, ", \t\n", &save)) {
		for (i = 0; p[i] != '\0'; i++) {
			if (strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-._:=@/",
			    p[i]) == NULL)
				break;
		}
		if (p[i] != '\0' || p[0] == '-' || i > 128) {
			seterr(err, errlen, "invalid package name \"%s\"", p);
			goto out;
		}
		json_array_append_new(list, json_string(p));
	}
	ret = 0;
 out:
	free(copy);
	return ret;
}

static char *
join_packages(json_t *list, const char *sep)
{
	size_t i, n = 0;
	json_t *v;
	char *s;

	json_array_foreach(list, i, v)
		n += strlen(json_string_value(v)) + strlen(sep);
	s = xcalloc(1, n + 1);
	json_array_foreach(list, i, v) {
		if (i > 0)
			strcat(s, sep);
		strcat(s, json_string_value(v));
	}
	return s;
}

/* Single-quote for the sh -c that runs mmdebstrap's hooks. */
static char *
shquote(const char *s)
{
	size_t n = 3, i;
	char *q, *o;

	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\'' ? 4 : 1;
	o = q = xmalloc(n);
	*o++ = '\'';
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else
			*o++ = s[i];
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

static char *
customize_command(struct build *b)
{
	char *sh = NULL, *script, *agent, *files, *cmd;

	sh = xasprintf("%s/customize.sh", b->files);
	script = shquote(sh);
	agent = shquote(b->agent);
	files = shquote(b->files);
	cmd = xasprintf("sh %s \"$1\" %s %s", script, agent, files);
	free(sh);
	free(script);
	free(agent);
	free(files);
	return cmd;
}

static int
run_logged(struct build *b, char **argv, char *err, size_t errlen)
{
	char lerr[256];
	FILE *fp;
	int r, i;

	if ((fp = fopen(b->log, "a")) != NULL) {
		fputs("+", fp);
		for (i = 0; argv[i] != NULL; i++)
			fprintf(fp, " %s", argv[i]);
		fputs("\n", fp);
		fclose(fp);
	}
	r = image_run(argv, b->log, lerr, sizeof(lerr));
	if (r == -1)
		return seterr(err, errlen, "%s", lerr);
	if (r != 0)
		return seterr(err, errlen, "%s failed with exit status %d; "
		    "see %s", argv[0], r, b->log);
	return 0;
}

static int
build_debian(struct build *b, char *err, size_t errlen)
{
	char *argv[64], *include = NULL, *hook = NULL, *cust = NULL;
	char *src[2] = { NULL, NULL };
	const char *mirror = b->mirror;
	int n = 0, i, ret;

	hook = join_packages(b->packages, ",");
	include = xasprintf("--include=%s", hook);
	free(hook);
	argv[n++] = "mmdebstrap";
	argv[n++] = "--mode=root";
	argv[n++] = "--variant=minbase";
	argv[n++] = "--format=directory";
	argv[n++] = include;
	for (i = 0; deb_excludes[i] != NULL; i++)
		argv[n++] = xasprintf("--dpkgopt=path-exclude=%s",
		    deb_excludes[i]);
	argv[n++] = xasprintf("--essential-hook=%s", DEB_INITRAMFS_HOOK);
	cust = customize_command(b);
	argv[n++] = xasprintf("--customize-hook=%s", cust);
	argv[n++] = (char *)b->release;
	argv[n++] = b->root;
	/*
	 * Explicit sources: without them mmdebstrap reads sources from
	 * stdin when it is not a terminal.
	 */
	if (mirror == NULL)
		mirror = "http://deb.debian.org/debian";
	argv[n++] = src[0] = xasprintf("deb %s %s main", mirror, b->release);
	if (b->mirror == NULL && strcmp(b->release, "sid") != 0 &&
	    strcmp(b->release, "unstable") != 0)
		argv[n++] = src[1] = xasprintf("deb http://deb.debian.org/"
		    "debian-security %s-security main", b->release);
	argv[n] = NULL;
	fprintf(stderr, "image %s: mmdebstrap %s (log: %s)\n", b->name,
	    b->release, b->log);
	ret = run_logged(b, argv, err, errlen);
	for (i = 4; i < n; i++) {
		if (strncmp(argv[i], "--", 2) == 0)
			free(argv[i]);
	}
	free(src[0]);
	free(src[1]);
	free(cust);
	return ret;
}

static int
build_el(struct build *b, char *err, size_t errlen)
{
	char *argv[64], *dracut = NULL, *rel = NULL;
	char *root = NULL, *conf = NULL, *sh = NULL;
	size_t i;
	json_t *v;
	int n = 0, ret = -1;

	/* dracut in the tree reads this when the kernel package installs. */
	dracut = xasprintf("%s/etc/dracut.conf.d", b->root);
	if (mkdir_p(dracut, 0755, err, errlen) == -1)
		goto out;
	conf = xasprintf("%s/prison.conf", dracut);
	if (atomic_write(conf, EL_DRACUT_CONF, strlen(EL_DRACUT_CONF), 0644,
	    err, errlen) == -1)
		goto out;
	argv[n++] = "dnf";
	argv[n++] = "-y";
	argv[n++] = root = xasprintf("--installroot=%s", b->root);
	argv[n++] = rel = xasprintf("--releasever=%s", b->release);
	argv[n++] = "--setopt=install_weak_deps=False";
	argv[n++] = "--setopt=tsflags=nodocs";
	/*
	 * The tree has no repository files of its own, so dnf uses the
	 * host's configuration and repositories.
	 */
	argv[n++] = "install";
	json_array_foreach(b->packages, i, v) {
		if (n >= 60)
			break;
		argv[n++] = (char *)json_string_value(v);
	}
	argv[n] = NULL;
	fprintf(stderr, "image %s: dnf --installroot, release %s (log: %s)\n",
	    b->name, b->release, b->log);
	if (run_logged(b, argv, err, errlen) == -1)
		goto out;
	sh = xasprintf("%s/customize.sh", b->files);
	argv[0] = "sh";
	argv[1] = sh;
	argv[2] = b->root;
	argv[3] = b->agent;
	argv[4] = b->files;
	argv[5] = NULL;
	if (run_logged(b, argv, err, errlen) == -1)
		goto out;
	ret = 0;
 out:
	free(dracut);
	free(conf);
	free(root);
	free(rel);
	free(sh);
	return ret;
}

static int
copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	char buf[65536];
	int in = -1, out = -1, ret = -1;
	ssize_t r;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", from, strerror(errno));
		goto out;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1) {
		seterr(err, errlen, "%s: %s", to, strerror(errno));
		goto out;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)r) != r) {
			seterr(err, errlen, "%s: write: %s", to,
			    strerror(errno));
			goto out;
		}
	}
	if (r == -1 || fsync(out) == -1) {
		seterr(err, errlen, "%s: %s", from, strerror(errno));
		goto out;
	}
	ret = 0;
 out:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	return ret;
}

/*
 * The newest version V among dir's entries named prefix-V (when
 * need is NULL) or V holding the file need; allocated, or NULL.
 */
static char *
newest(const char *dir, const char *prefix, const char *need)
{
	size_t plen = strlen(prefix);
	char *best = NULL, *p;
	struct dirent *de;
	DIR *d;
	int ok;

	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    strncmp(de->d_name, prefix, plen) != 0 ||
		    strstr(de->d_name, "rescue") != NULL)
			continue;
		if (need != NULL) {
			p = xasprintf("%s/%s/%s", dir, de->d_name, need);
			ok = is_file(p, 0);
			free(p);
			if (!ok)
				continue;
		}
		if (best == NULL || strverscmp(de->d_name + plen, best) > 0) {
			free(best);
			best = xstrdup(de->d_name + plen);
		}
	}
	closedir(d);
	return best;
}

/* Debian: initrd.img-V; EL: initramfs-V.img, made here if missing. */
static char *
find_initrd(struct build *b, const char *boot, const char *v)
{
	char *i = xasprintf("%s/initrd.img-%s", boot, v), *img;
	char *argv[] = { "chroot", b->root, "dracut", "--force",
	    "--no-hostonly", "--kver", (char *)v, NULL, NULL };
	char lerr[256];

	if (is_file(i, 0))
		return i;
	free(i);
	i = xasprintf("%s/initramfs-%s.img", boot, v);
	if (is_file(i, 0) || strcmp(b->builder, "dnf") != 0)
		return i;
	/* dracut may not have run inside dnf's transaction. */
	img = xasprintf("/boot/initramfs-%s.img", v);
	argv[7] = img;
	if (run_logged(b, argv, lerr, sizeof(lerr)) == -1)
		fprintf(stderr, "image %s: %s\n", b->name, lerr);
	free(img);
	return i;
}

/*
 * Take the newest kernel and its initrd out of the tree (Debian:
 * /boot/vmlinuz-V and initrd.img-V; EL: /boot/vmlinuz-V or
 * /usr/lib/modules/V/vmlinuz, and initramfs-V.img).  Those in /boot are
 * removed from the tree: the VMM loads them from the image directory.
 */
static int
take_kernel(struct build *b, char *err, size_t errlen)
{
	static const char *links[] = { "vmlinuz", "vmlinuz.old", "initrd.img",
	    "initrd.img.old", NULL };
	char *boot = xasprintf("%s/boot", b->root), *k = NULL, *i = NULL;
	char *mods = xasprintf("%s/usr/lib/modules", b->root), *dst = NULL;
	int ret = -1, n, in_boot = 1;

	if ((b->kver = newest(boot, "vmlinuz-", NULL)) != NULL)
		k = xasprintf("%s/vmlinuz-%s", boot, b->kver);
	else if ((b->kver = newest(mods, "", "vmlinuz")) != NULL) {
		k = xasprintf("%s/%s/vmlinuz", mods, b->kver);
		in_boot = 0;
	} else {
		seterr(err, errlen, "no kernel in %s or %s", boot, mods);
		goto out;
	}
	dst = xasprintf("%s/vmlinuz", b->tmp);
	if (copy_file(k, dst, err, errlen) == -1)
		goto out;
	free(dst);
	dst = xasprintf("%s/initrd.img", b->tmp);
	i = find_initrd(b, boot, b->kver);
	if (!is_file(i, 0)) {
		seterr(err, errlen, "no initrd for kernel %s in %s", b->kver,
		    boot);
		goto out;
	}
	if (copy_file(i, dst, err, errlen) == -1)
		goto out;
	if (in_boot)
		unlink(k);
	unlink(i);
	/* The tree's /vmlinuz and /initrd.img links would dangle now. */
	for (n = 0; links[n] != NULL; n++) {
		free(dst);
		dst = xasprintf("%s/%s", b->root, links[n]);
		unlink(dst);
	}
	ret = 0;
 out:
	free(boot);
	free(mods);
	free(k);
	free(i);
	free(dst);
	return ret;
}

/* Content plus a quarter and 256 MiB of room, in whole MiB. */
static int
make_rootfs(struct build *b, char *err, size_t errlen)
{
	char *img = xasprintf("%s/rootfs.ext4", b->tmp);
	char size[32], inodes[32], *argv[16];
	uint64_t bytes;
	int fd, n = 0, ret = -1;

	du_bytes = du_inodes = 0;
	if (nftw(b->root, du_entry, 32, FTW_PHYS | FTW_MOUNT) == -1) {
		seterr(err, errlen, "%s: cannot measure: %s", b->root,
		    strerror(errno));
		goto out;
	}
	bytes = du_bytes + du_bytes / 4 + du_inodes * 256 +
	    256ULL * 1024 * 1024;
	bytes = (bytes + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
	if ((fd = open(img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || ftruncate(fd, (off_t)bytes) == -1) {
		seterr(err, errlen, "%s: %s", img, strerror(errno));
		if (fd != -1)
			close(fd);
		goto out;
	}
	close(fd);
	snprintf(size, sizeof(size), "%lluk",
	    (unsigned long long)(bytes / 1024));
	snprintf(inodes, sizeof(inodes), "%llu",
	    (unsigned long long)(du_inodes * 2 + 65536));
	argv[n++] = "mkfs.ext4";
	argv[n++] = "-q";
	argv[n++] = "-F";
	argv[n++] = "-L";
	argv[n++] = "prison-root";
	argv[n++] = "-m";
	argv[n++] = "1";
	argv[n++] = "-N";
	argv[n++] = inodes;
	argv[n++] = "-d";
	argv[n++] = b->root;
	argv[n++] = img;
	argv[n++] = size;
	argv[n] = NULL;
	fprintf(stderr, "image %s: mkfs.ext4 -d (%llu MiB)\n", b->name,
	    (unsigned long long)(bytes >> 20));
	if (run_logged(b, argv, err, errlen) == -1)
		goto out;
	ret = 0;
 out:
	free(img);
	return ret;
}

static int
write_manifest(struct build *b, char *err, size_t errlen)
{
	static const char *files[] = { "rootfs.ext4", "vmlinuz",
	    "initrd.img", "vmlinux", NULL };
	json_t *m = NULL, *fj = NULL, *recipe = NULL;
	char hex[65], *p = NULL, *s = NULL, when[32];
	struct stat st;
	struct tm tm;
	struct dirent *de;
	DIR *d = NULL;
	time_t now = time(NULL);
	int i, ret = -1;

	fj = json_object();
	for (i = 0; files[i] != NULL; i++) {
		free(p);
		p = xasprintf("%s/%s", b->tmp, files[i]);
		if (stat(p, &st) == -1)
			continue;
		if (image_sha256_file(p, hex, err, errlen) == -1)
			goto out;
		json_object_set_new(fj, files[i], json_pack("{s:I,s:s}",
		    "size", (json_int_t)st.st_size, "sha256", hex));
	}
	/* What went in from this host, so a stale image can be noticed. */
	recipe = json_object();
	if (image_sha256_file(b->agent, hex, err, errlen) == -1)
		goto out;
	json_object_set_new(recipe, "prison-guest", json_string(hex));
	if ((d = opendir(b->files)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			free(p);
			p = xasprintf("%s/%s", b->files, de->d_name);
			if (is_file(p, 0) &&
			    image_sha256_file(p, hex, err, errlen) == 0)
				json_object_set_new(recipe, de->d_name,
				    json_string(hex));
		}
		closedir(d);
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	m = json_pack("{s:i,s:s,s:s,s:s,s:O,s:s,s:s,s:I,s:O,s:O}",
	    "version", 1, "name", b->name, "builder", b->builder,
	    "release", b->release, "packages", b->packages,
	    "kernel_version", b->kver, "build_time", when,
	    "build_seconds", (json_int_t)(now - b->started),
	    "files", fj, "recipe", recipe);
	if (m == NULL) {
		seterr(err, errlen, "cannot build the manifest");
		goto out;
	}
	s = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	free(p);
	p = xasprintf("%s/manifest.json", b->tmp);
	if (atomic_write(p, s, strlen(s), 0644, err, errlen) == -1)
		goto out;
	ret = 0;
 out:
	json_decref(m);
	json_decref(fj);
	json_decref(recipe);
	free(p);
	free(s);
	return ret;
}

/*
 * Swap the finished build into place: renameat2(RENAME_EXCHANGE) when an
 * image is already there, so readers see the old or the new image whole.
 */
static int
install_build(struct build *b, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(b->dir, &st) == 0) {
		if (renameat2(AT_FDCWD, b->tmp, AT_FDCWD, b->dir,
		    RENAME_EXCHANGE) == -1)
			return seterr(err, errlen, "cannot replace %s: %s",
			    b->dir, strerror(errno));
		/* b->tmp now holds the old image; the caller removes it. */
		return 0;
	}
	if (rename(b->tmp, b->dir) == -1)
		return seterr(err, errlen, "cannot rename %s to %s: %s",
		    b->tmp, b->dir, strerror(errno));
	return 0;
}

static int
setup_build(struct build *b, const struct prison_config *cfg,
    const struct image_build_opts *o, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->started = time(NULL);
	b->name = o->name != NULL ? o->name : cfg->default_image;
	if (!image_name_valid(b->name))
		return seterr(err, errlen, "invalid image name \"%s\" (want "
		    "[a-z0-9][a-z0-9._-]*, at most %d characters)", b->name,
		    IMAGE_NAME_MAX);
	b->builder = o->builder;
	if (b->builder == NULL || strcmp(b->builder, "auto") == 0)
		b->builder = access("/etc/redhat-release", F_OK) == 0 ?
		    "dnf" : "mmdebstrap";
	if (strcmp(b->builder, "mmdebstrap") != 0 &&
	    strcmp(b->builder, "dnf") != 0)
		return seterr(err, errlen, "unknown builder \"%s\" (want "
		    "auto, mmdebstrap or dnf)", b->builder);
	b->release = o->release;
	if (b->release == NULL)
		b->release = strcmp(b->builder, "dnf") == 0 ? "10" :
		    "bookworm";
	if (b->release[0] == '\0' || b->release[0] == '-' ||
	    strpbrk(b->release, " \t\n'\"/\\") != NULL)
		return seterr(err, errlen, "invalid release \"%s\"",
		    b->release);
	b->mirror = o->mirror;
	if (b->mirror != NULL && (strncmp(b->mirror, "http://", 7) != 0 &&
	    strncmp(b->mirror, "https://", 8) != 0 &&
	    strncmp(b->mirror, "file:/", 6) != 0))
		return seterr(err, errlen, "invalid mirror \"%s\" (want an "
		    "http://, https:// or file:/ URL)", b->mirror);
	b->agent = o->agent != NULL ? xstrdup(o->agent) :
	    xasprintf("%s/prison-guest", cfg->libexec_dir);
	b->files = o->files_dir != NULL ? xstrdup(o->files_dir) :
	    xasprintf("%s/guest-files", cfg->libexec_dir);
	b->dir = image_dir_of(cfg, b->name);
	b->log = xasprintf("%s/%s.build.log", cfg->image_dir, b->name);
	b->packages = json_array();
	return 0;
}

static void
free_build(struct build *b)
{
	free(b->agent);
	free(b->files);
	free(b->dir);
	free(b->tmp);
	free(b->root);
	free(b->log);
	free(b->kver);
	json_decref(b->packages);
}

static int
check_inputs(struct build *b, const struct image_build_opts *o,
    char *err, size_t errlen)
{
	const char **base;
	char *cs;
	int i, ok;

	if (geteuid() != 0)
		return seterr(err, errlen, "building an image needs root "
		    "(the builder installs packages as root in a chroot)");
	if (!is_file(b->agent, 1))
		return seterr(err, errlen, "guest agent %s is missing; build "
		    "it with make (it is installed into the image)", b->agent);
	cs = xasprintf("%s/customize.sh", b->files);
	ok = is_file(cs, 0);
	free(cs);
	if (!ok)
		return seterr(err, errlen, "image recipe %s/customize.sh is "
		    "missing (make builds build/guest-files; make install "
		    "puts it under the libexec directory)", b->files);
	base = strcmp(b->builder, "dnf") == 0 ? el_packages : deb_packages;
	for (i = 0; base[i] != NULL; i++)
		json_array_append_new(b->packages, json_string(base[i]));
	if (o->packages != NULL &&
	    add_packages(b->packages, o->packages, err, errlen) == -1)
		return -1;
	return 0;
}

/*
 * Under the lock no other build of this name runs, so any build
 * directory left for it was abandoned (interrupted, host crash).
 */
static void
remove_stale(const char *image_dir, const char *name)
{
	char *prefix = xasprintf(".%s.build.", name), *p;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(image_dir)) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		p = xasprintf("%s/%s", image_dir, de->d_name);
		fprintf(stderr, "image %s: removing abandoned build %s\n",
		    name, p);
		rm_tree(p);
		free(p);
	}
	closedir(d);
 out:
	free(prefix);
}

int
image_build(const struct prison_config *cfg,
    const struct image_build_opts *o, char *err, size_t errlen)
{
	struct build b;
	char *lockp = NULL, *manifest = NULL, *vmlinuz = NULL, *vml = NULL;
	char lerr[512];
	int lock = -1, ret = -1;

	if (setup_build(&b, cfg, o, err, errlen) == -1)
		goto out;
	if (check_inputs(&b, o, err, errlen) == -1)
		goto out;
	if (mkdir_p(cfg->image_dir, 0755, err, errlen) == -1)
		goto out;
	/* One build of a name at a time; a second waits, then sees it. */
	lockp = xasprintf("%s/.%s.lock", cfg->image_dir, b.name);
	if ((lock = lock_path(lockp, 1, err, errlen)) == -1)
		goto out;
	remove_stale(cfg->image_dir, b.name);
	manifest = xasprintf("%s/manifest.json", b.dir);
	if (!o->force && is_file(manifest, 0)) {
		ret = 1;
		goto out;
	}
	b.tmp = xasprintf("%s/.%s.build.XXXXXX", cfg->image_dir, b.name);
	if (mkdtemp(b.tmp) == NULL) {
		seterr(err, errlen, "%s: %s", b.tmp, strerror(errno));
		free(b.tmp);
		b.tmp = NULL;
		goto out;
	}
	chmod(b.tmp, 0755);
	b.root = xasprintf("%s/root", b.tmp);
	unlink(b.log);
	if (strcmp(b.builder, "dnf") == 0) {
		if (mkdir_p(b.root, 0755, err, errlen) == -1 ||
		    build_el(&b, err, errlen) == -1)
			goto out;
	} else if (build_debian(&b, err, errlen) == -1)
		goto out;
	if (take_kernel(&b, err, errlen) == -1 ||
	    make_rootfs(&b, err, errlen) == -1)
		goto out;
	rm_tree(b.root);
	vmlinuz = xasprintf("%s/vmlinuz", b.tmp);
	vml = xasprintf("%s/vmlinux", b.tmp);
	if (image_extract_vmlinux(vmlinuz, vml, lerr, sizeof(lerr)) == -1)
		fprintf(stderr, "image %s: no vmlinux for Firecracker: %s\n"
		    "  Firecracker needs an uncompressed ELF vmlinux with "
		    "virtio-mmio, ext4, virtio-blk and virtio-net built in;\n"
		    "  qemu boots vmlinuz + initrd.img from this image.\n",
		    b.name, lerr);
	if (write_manifest(&b, err, errlen) == -1 ||
	    install_build(&b, err, errlen) == -1)
		goto out;
	ret = 0;
 out:
	if (b.tmp != NULL)
		rm_tree(b.tmp);
	if (lock != -1)
		close(lock);
	free(lockp);
	free(manifest);
	free(vmlinuz);
	free(vml);
	free_build(&b);
	return ret;
}
