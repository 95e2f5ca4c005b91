/*
 * Per-project disks: a clone of the image's rootfs that only ever appears
 * under its final name complete, so a crash mid-copy never leaves a
 * half-written disk that a later start would boot.
 */
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/fs.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "disk.h"
#include "fileio.h"
#include "log.h"
#include "xmalloc.h"

#define COPY_CHUNK	(1024 * 1024)

extern char **environ;

static int
io_error(char *err, size_t errlen, const char *what, const char *path,
    int e)
{
	if (e == ENOSPC || e == EDQUOT || e == EFBIG)
		return seterr(err, errlen, "disk full: cannot write %s (%s); "
		    "free space in its directory or lower disk_size_mib",
		    path, strerror(e));
	return seterr(err, errlen, "%s %s: %s", what, path, strerror(e));
}

/* Copy [off, end) of src into dst at the same offsets. */
static int
copy_range(int in, int out, off_t off, off_t end, char *buf,
    const char *dst, char *err, size_t errlen)
{
	while (off < end) {
		size_t want = end - off > COPY_CHUNK ? COPY_CHUNK :
		    (size_t)(end - off);
		ssize_t n = pread(in, buf, want, off), w, done = 0;

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return seterr(err, errlen, "read: %s",
			    strerror(errno));
		if (n == 0)
			return seterr(err, errlen, "source shrank while "
			    "copying");
		while (done < n) {
			w = pwrite(out, buf + done, (size_t)(n - done),
			    off + done);
			if (w == -1 && errno == EINTR)
				continue;
			if (w == -1)
				return io_error(err, errlen, "write", dst,
				    errno);
			done += w;
		}
		off += n;
	}
	return 0;
}

/* Copy only the data regions of in, so holes stay holes in out. */
static int
sparse_copy(int in, int out, off_t size, const char *dst, char *err,
    size_t errlen)
{
	char *buf = xmalloc(COPY_CHUNK);
	off_t data, hole = 0;
	int ret = -1;

	for (;;) {
		if ((data = lseek(in, hole, SEEK_DATA)) == -1) {
			if (errno == ENXIO)
				break;
			/* No SEEK_DATA here: copy everything. */
			if (errno == EINVAL && hole == 0) {
				ret = copy_range(in, out, 0, size, buf, dst,
				    err, errlen);
				goto out;
			}
			seterr(err, errlen, "seek: %s", strerror(errno));
			goto out;
		}
		if ((hole = lseek(in, data, SEEK_HOLE)) == -1) {
			seterr(err, errlen, "seek: %s", strerror(errno));
			goto out;
		}
		if (copy_range(in, out, data, hole, buf, dst, err,
		    errlen) == -1)
			goto out;
	}
	ret = 0;
 out:
	free(buf);
	return ret;
}

static int
run_quiet(char *const argv[], const char *path, int okmax, char *err,
    size_t errlen)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return seterr(err, errlen, "cannot run %s: %s (install "
		    "e2fsprogs)", argv[0], strerror(r));
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return seterr(err, errlen, "waitpid: %s",
			    strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) > okmax)
		return seterr(err, errlen, "%s %s failed (status %d)",
		    argv[0], path, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* Offline: check (required by resize2fs) and grow to the file's size. */
static int
grow_fs(const char *path, char *err, size_t errlen)
{
	char *fsck[] = { "e2fsck", "-f", "-p", (char *)path, NULL };
	char *rs[] = { "resize2fs", (char *)path, NULL };

	/* e2fsck: 1 = errors corrected, still fine to use. */
	if (run_quiet(fsck, path, 1, err, errlen) == -1)
		return -1;
	return run_quiet(rs, path, 0, err, errlen);
}

static int
fsync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd, r = -1;

	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		r = fsync(fd);
		close(fd);
	}
	free(copy);
	return r;
}

int
disk_clone(const char *src, const char *dst, off_t size, int grow,
    const char **how, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", dst);
	int in = -1, out = -1, ret = -1;
	const char *method = "reflink";
	struct stat st;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", src, strerror(errno));
		goto out;
	}
	if (fstat(in, &st) == -1 || !S_ISREG(st.st_mode)) {
		seterr(err, errlen, "%s: not a regular file", src);
		goto out;
	}
	if ((out = mkostemp(tmp, O_CLOEXEC)) == -1) {
		io_error(err, errlen, "cannot create", tmp, errno);
		goto out;
	}
	if (fchmod(out, 0600) == -1) {
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	/* A reflink shares blocks until the guest writes: instant. */
	if (ioctl(out, FICLONE, in) == -1) {
		method = "copy";
		if (sparse_copy(in, out, st.st_size, tmp, err, errlen) == -1)
			goto fail;
	}
	if (size < st.st_size)
		size = st.st_size;
	if (ftruncate(out, size) == -1) {
		io_error(err, errlen, "cannot grow", tmp, errno);
		goto fail;
	}
	if (fsync(out) == -1) {
		io_error(err, errlen, "cannot sync", tmp, errno);
		goto fail;
	}
	if (grow && grow_fs(tmp, err, errlen) == -1)
		goto fail;
	if (grow && fsync(out) == -1) {
		io_error(err, errlen, "cannot sync", tmp, errno);
		goto fail;
	}
	if (rename(tmp, dst) == -1) {
		seterr(err, errlen, "%s: %s", dst, strerror(errno));
		goto fail;
	}
	fsync_dir(dst);
	if (how != NULL)
		*how = method;
	ret = 0;
	goto out;
 fail:
	unlink(tmp);
 out:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	free(tmp);
	return ret;
}

char *
disk_path(const struct prison_config *cfg, const char *project)
{
	return xasprintf("%s/%s.ext4", cfg->disk_dir, project);
}

int
disk_ensure(const struct prison_config *cfg, const char *project,
    const char *rootfs, int *created, char *err, size_t errlen)
{
	char *path = disk_path(cfg, project);
	struct stat st;
	int ret = -1;

	*created = 0;
	if (stat(path, &st) == 0) {
		ret = 0;
		goto out;
	}
	if (errno != ENOENT) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (mkdir_p(cfg->disk_dir, 0700, err, errlen) == -1)
		goto out;
	if (disk_clone(rootfs, path, (off_t)cfg->disk_size_mib << 20, 1,
	    NULL, err, errlen) == -1)
		goto out;
	*created = 1;
	ret = 0;
 out:
	free(path);
	return ret;
}

int
disk_remove(const struct prison_config *cfg, const char *project,
    char *err, size_t errlen)
{
	char *path = disk_path(cfg, project);
	int ret = 0;

	if (unlink(path) == -1 && errno != ENOENT)
		ret = seterr(err, errlen, "%s: %s", path, strerror(errno));
	free(path);
	return ret;
}
