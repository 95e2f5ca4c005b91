/*
 * Per-project disks.  Each project boots from its own copy of its image's
 * rootfs.ext4, kept as disk_dir/PROJECT.ext4 across VM and provisioner
 * restarts.  A disk only ever appears under its final name complete: it
 * is cloned (reflink when the filesystem can, else a sparse copy) into a
 * temporary name, grown, fsynced and renamed.
 */
#ifndef PRISON_DISK_H
#define PRISON_DISK_H

#include <stddef.h>
#include <sys/types.h>

struct prison_config;

/*
 * Copy src to dst through a temporary file in dst's directory, extend it
 * to size bytes (0 = keep the source's size; never shrunk), with
 * grow_fs also grow its ext4 filesystem (e2fsck + resize2fs), fsync it
 * and rename it into place.  On failure nothing is left at dst or at the
 * temporary name.  *how is set to "reflink" or "copy" when non-NULL.
 */
int	disk_clone(const char *src, const char *dst, off_t size, int grow_fs,
	    const char **how, char *err, size_t errlen);

/* disk_dir/PROJECT.ext4; the caller frees. */
char	*disk_path(const struct prison_config *, const char *project);

/*
 * Make sure the project's disk exists, creating it from rootfs (the
 * image's rootfs.ext4) on first use and growing its filesystem to
 * cfg->disk_size_mib.  *created tells whether it was made now.
 */
int	disk_ensure(const struct prison_config *, const char *project,
	    const char *rootfs, int *created, char *err, size_t errlen);

/* Remove the project's disk (prisonctl project reset). */
int	disk_remove(const struct prison_config *, const char *project,
	    char *err, size_t errlen);

#endif
