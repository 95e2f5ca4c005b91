#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "xmalloc.h"

static int
fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd, r;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
atomic_write(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	const char *p = data;
	int fd, ret = -1, saved;

	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: cannot create temporary file: %s",
		    path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, mode) == -1)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	if (fsync_dir_of(path) == -1)
		goto fail;
	ret = 0;
	goto out;
 fail:
	saved = errno;
	seterr(err, errlen, "%s: write failed: %s", path, strerror(saved));
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
 out:
	free(tmp);
	return ret;
}

int
lock_path(const char *path, int exclusive, char *err, size_t errlen)
{
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return seterr(err, errlen, "%s: cannot open lock file: %s",
		    path, strerror(errno));
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) == -1) {
		if (errno == EINTR)
			continue;
		seterr(err, errlen, "%s: cannot lock: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
read_file(const char *path, size_t max, char **data, size_t *len,
    char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	int fd, saved;

	*data = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		saved = errno;
		seterr(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		seterr(err, errlen, "%s: not a regular file", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if ((size_t)st.st_size > max) {
		seterr(err, errlen, "%s: file too large (%lld bytes, limit %zu)",
		    path, (long long)st.st_size, max);
		close(fd);
		errno = EFBIG;
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	for (;;) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			seterr(err, errlen, "%s: read: %s", path,
			    strerror(saved));
			free(buf);
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off == (size_t)st.st_size)
			break;
	}
	close(fd);
	buf[off] = '\0';
	*data = buf;
	if (len != NULL)
		*len = off;
	return 0;
}

int
mkdir_p(const char *path, mode_t mode, char *err, size_t errlen)
{
	char *copy = xstrdup(path), *p;
	int ret = -1;

	for (p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(copy, mode) == -1 && errno != EEXIST) {
			seterr(err, errlen, "%s: cannot create directory: %s",
			    copy, strerror(errno));
			goto out;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	ret = 0;
 out:
	free(copy);
	return ret;
}
