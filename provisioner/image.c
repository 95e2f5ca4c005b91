/*
 * Looking up built images, and the small tools the image builder needs:
 * running a program with an argv, hashing a file, and pulling the
 * uncompressed kernel out of a bzImage for Firecracker.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "fileio.h"
#include "image.h"
#include "log.h"
#include "xmalloc.h"

extern char **environ;

int
image_name_valid(const char *name)
{
	size_t i, len;

	if (name == NULL || (len = strlen(name)) == 0 ||
	    len > IMAGE_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (i > 0 && (c == '.' || c == '_' || c == '-'))
			continue;
		return 0;
	}
	return 1;
}

char *
image_dir_of(const struct prison_config *cfg, const char *name)
{
	return xasprintf("%s/%s", cfg->image_dir, name);
}

/* Allocated path of dir/file when it exists as a regular file, else NULL. */
static char *
image_file(const char *dir, const char *file)
{
	char *p = xasprintf("%s/%s", dir, file);
	struct stat st;

	if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		return p;
	free(p);
	return NULL;
}

static int
image_check(const struct prison_config *cfg, const char *name,
    char **dirp, char *err, size_t errlen)
{
	char *dir = NULL, *m = NULL;

	*dirp = NULL;
	if (!image_name_valid(name))
		return seterr(err, errlen, "invalid image name \"%s\" "
		    "(want [a-z0-9][a-z0-9._-]*, at most %d characters)",
		    name == NULL ? "" : name, IMAGE_NAME_MAX);
	dir = image_dir_of(cfg, name);
	if ((m = image_file(dir, "manifest.json")) == NULL) {
		seterr(err, errlen, "image \"%s\" is not built (%s has no "
		    "manifest.json); run: prisonctl image build %s",
		    name, dir, name);
		free(dir);
		return -1;
	}
	free(m);
	*dirp = dir;
	return 0;
}

int
image_paths(const struct prison_config *cfg, const char *name,
    char **kernel, char **initrd, char **rootfs, char *err, size_t errlen)
{
	static const char *files[] = { "vmlinuz", "rootfs.ext4" };
	char *dir = NULL, *p[2] = { NULL, NULL };
	size_t i;
	int ret = -1;

	if (kernel != NULL)
		*kernel = NULL;
	if (initrd != NULL)
		*initrd = NULL;
	if (rootfs != NULL)
		*rootfs = NULL;
	if (image_check(cfg, name, &dir, err, errlen) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		if ((p[i] = image_file(dir, files[i])) == NULL) {
			seterr(err, errlen, "image \"%s\" is incomplete: "
			    "%s/%s is missing; rebuild it with: prisonctl "
			    "image build %s --force", name, dir, files[i],
			    name);
			goto out;
		}
	}
	if (initrd != NULL)
		*initrd = image_file(dir, "initrd.img");
	if (kernel != NULL) {
		*kernel = p[0];
		p[0] = NULL;
	}
	if (rootfs != NULL) {
		*rootfs = p[1];
		p[1] = NULL;
	}
	ret = 0;
 out:
	free(p[0]);
	free(p[1]);
	free(dir);
	return ret;
}

int
image_vmlinux(const struct prison_config *cfg, const char *name,
    char **vmlinux, char *err, size_t errlen)
{
	char *dir = NULL;

	*vmlinux = NULL;
	if (image_check(cfg, name, &dir, err, errlen) == -1)
		return -1;
	*vmlinux = image_file(dir, "vmlinux");
	if (*vmlinux == NULL)
		seterr(err, errlen, "image \"%s\" has no vmlinux: Firecracker "
		    "needs an uncompressed ELF kernel (vmlinux) with "
		    "virtio-mmio (and VIRTIO_MMIO_CMDLINE_DEVICES), ext4, "
		    "virtio-blk and virtio-net built in; put one at %s/vmlinux "
		    "or use vmm = qemu", name, dir);
	free(dir);
	return *vmlinux == NULL ? -1 : 0;
}

int
image_sha256_file(const char *path, char hex[65], char *err, size_t errlen)
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], md[crypto_hash_sha256_BYTES];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			seterr(err, errlen, "%s: read: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
	}
	close(fd);
	crypto_hash_sha256_final(&st, md);
	sodium_bin2hex(hex, 65, md, sizeof(md));
	return 0;
}

/*
 * Spawn argv with stdin from infile (or /dev/null) and stdout to outfile
 * (or the log, or stderr), stderr to the log or stderr.
 */
static int
run_io(char *const argv[], const char *infile, const char *outfile,
    const char *logpath, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r, status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0,
	    infile != NULL ? infile : "/dev/null", O_RDONLY, 0);
	if (logpath != NULL)
		posix_spawn_file_actions_addopen(&fa, 2, logpath,
		    O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (outfile != NULL)
		posix_spawn_file_actions_addopen(&fa, 1, outfile,
		    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	else
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return seterr(err, errlen, "cannot run %s: %s", argv[0],
		    strerror(r));
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			return seterr(err, errlen, "waitpid %s: %s", argv[0],
			    strerror(errno));
	}
	if (WIFSIGNALED(status))
		return seterr(err, errlen, "%s killed by signal %d", argv[0],
		    WTERMSIG(status));
	return WEXITSTATUS(status);
}

int
image_run(char *const argv[], const char *logpath, char *err,
    size_t errlen)
{
	return run_io(argv, NULL, NULL, logpath, err, errlen);
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* The decompressor for the payload's magic, or NULL. */
static const char *
payload_tool(const unsigned char *p, size_t len, const char **arg)
{
	*arg = "-dc";
	if (len >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0) {
		*arg = "-dcq";
		return "xz";
	}
	if (len >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0) {
		*arg = "-dcq";
		return "zstd";
	}
	if (len >= 3 && memcmp(p, "\x1f\x8b\x08", 3) == 0)
		return "gzip";
	if (len >= 4 && memcmp(p, "\x02\x21\x4c\x18", 4) == 0)
		return "lz4";
	if (len >= 3 && memcmp(p, "BZh", 3) == 0)
		return "bzip2";
	return NULL;
}

static int
is_elf(const char *path)
{
	unsigned char hdr[4];
	struct stat st;
	int fd, ok = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	if (fstat(fd, &st) == 0 && st.st_size > 1024 * 1024 &&
	    read(fd, hdr, 4) == 4 && memcmp(hdr, "\177ELF", 4) == 0)
		ok = 1;
	close(fd);
	return ok;
}

/*
 * A bzImage's setup header (boot protocol 2.08+) says where the
 * compressed kernel sits: payload_offset and payload_length, counted
 * from the start of the protected-mode code after the setup sectors.
 */
int
image_extract_vmlinux(const char *bzimage, const char *out, char *err,
    size_t errlen)
{
	char *data = NULL, *tmp = NULL, lerr[256];
	const unsigned char *p;
	const char *tool, *arg;
	char *argv[4];
	size_t len = 0, off, plen;
	int ret = -1;

	if (read_file(bzimage, 256 * 1024 * 1024, &data, &len, err,
	    errlen) == -1)
		return -1;
	p = (const unsigned char *)data;
	if (len < 0x250 || memcmp(p + 0x202, "HdrS", 4) != 0 ||
	    (p[0x206] | p[0x207] << 8) < 0x208) {
		seterr(err, errlen, "%s: not a bzImage with boot protocol "
		    "2.08 or later", bzimage);
		goto out;
	}
	off = ((size_t)(p[0x1f1] == 0 ? 4 : p[0x1f1]) + 1) * 512 +
	    le32(p + 0x248);
	plen = le32(p + 0x24c);
	if (off >= len || plen > len - off) {
		seterr(err, errlen, "%s: payload lies outside the file",
		    bzimage);
		goto out;
	}
	if ((tool = payload_tool(p + off, plen, &arg)) == NULL) {
		seterr(err, errlen, "%s: unknown kernel compression", bzimage);
		goto out;
	}
	tmp = xasprintf("%s.payload", out);
	if (atomic_write(tmp, p + off, plen, 0600, err, errlen) == -1)
		goto out;
	argv[0] = (char *)tool;
	argv[1] = (char *)arg;
	argv[2] = NULL;
	/*
	 * The payload ends with the uncompressed size, which some tools
	 * call trailing garbage and fail on after writing everything: the
	 * ELF check below decides.
	 */
	if (run_io(argv, tmp, out, "/dev/null", lerr, sizeof(lerr)) == -1 &&
	    strncmp(lerr, "cannot run", 10) == 0) {
		seterr(err, errlen, "%s: payload is %s-compressed and %s "
		    "(%s) is needed to unpack it", bzimage, tool, tool, lerr);
		goto out;
	}
	if (!is_elf(out)) {
		unlink(out);
		seterr(err, errlen, "%s: %s did not yield an ELF kernel",
		    bzimage, tool);
		goto out;
	}
	ret = 0;
 out:
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(data);
	return ret;
}
