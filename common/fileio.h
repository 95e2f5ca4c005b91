/*
 * Files that must survive crashes.  atomic_write() leaves either the old
 * or the new contents at path, never a mix: it writes a temporary file in
 * the same directory, fsyncs it, renames it over path and fsyncs the
 * directory.  Callers serialise writers with lock_path().
 */
#ifndef PRISON_FILEIO_H
#define PRISON_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

int	atomic_write(const char *path, const void *data, size_t len,
	    mode_t mode, char *err, size_t errlen);
/* Take a flock on path (created 0600 if missing); returns the fd to close. */
int	lock_path(const char *path, int exclusive, char *err, size_t errlen);
/*
 * Read a whole file of at most max bytes into a NUL-terminated buffer.
 * Returns 0, or -1 with errno set (ENOENT stays ENOENT) and err filled.
 */
int	read_file(const char *path, size_t max, char **data, size_t *len,
	    char *err, size_t errlen);
int	mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);

#endif
