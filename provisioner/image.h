/*
 * Guest images: image_dir/NAME/ holds rootfs.ext4, vmlinuz, initrd.img,
 * manifest.json and, when it could be extracted, vmlinux (the
 * uncompressed kernel Firecracker boots).  A directory without
 * manifest.json is never used: builds happen in a temporary directory
 * that is renamed into place only when complete.
 */
#ifndef PRISON_IMAGE_H
#define PRISON_IMAGE_H

#include <stddef.h>

struct prison_config;

#define IMAGE_NAME_MAX	32

/* NULL members take the defaults named in the comments. */
struct image_build_opts {
	const char	*name;		/* cfg->default_image */
	const char	*release;	/* bookworm (Debian), 10 (EL) */
	const char	*packages;	/* extra, comma/space list */
	const char	*builder;	/* auto, mmdebstrap, dnf */
	const char	*mirror;	/* the distribution's */
	const char	*agent;		/* libexec_dir/prison-guest */
	const char	*files_dir;	/* libexec_dir/guest-files */
	int		 force;		/* rebuild even when present */
};

/* 1 when name is a valid image name ([a-z0-9][a-z0-9._-]*, <= 32). */
int	image_name_valid(const char *name);

/*
 * Paths of a built image; each out pointer may be NULL, else receives an
 * allocated string the caller frees.  initrd is NULL when the image has
 * none.  Fails with an error that names the image, the directory and the
 * command that builds it when the image or a file of it is missing.
 */
int	image_paths(const struct prison_config *cfg, const char *name,
	    char **kernel, char **initrd, char **rootfs, char *err,
	    size_t errlen);
/*
 * The uncompressed ELF kernel for Firecracker.  Fails with a message
 * saying what kernel Firecracker needs when the image has none.
 */
int	image_vmlinux(const struct prison_config *cfg, const char *name,
	    char **vmlinux, char *err, size_t errlen);
/* image_dir/NAME, allocated. */
char	*image_dir_of(const struct prison_config *cfg, const char *name);

/*
 * Build an image.  Returns 0 when built, 1 when it was already there
 * (and opts->force was not set), -1 with err filled.  Progress goes to
 * stderr.  Needs root.
 */
int	image_build(const struct prison_config *cfg,
	    const struct image_build_opts *opts, char *err, size_t errlen);

/*
 * Uncompress the kernel embedded in a bzImage into an ELF vmlinux.
 * Returns 0, or -1 with err saying why (no known payload, decompressor
 * missing, result not ELF).
 */
int	image_extract_vmlinux(const char *bzimage, const char *out,
	    char *err, size_t errlen);

/* Lower-case hex SHA-256 of a file into hex[65]. */
int	image_sha256_file(const char *path, char hex[65], char *err,
	    size_t errlen);

/* Run argv (argv[0] searched in PATH), wait; exit status or -1. */
int	image_run(char *const argv[], const char *logpath, char *err,
	    size_t errlen);

#endif
