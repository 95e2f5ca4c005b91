/* Per-project disks: sparse copies, growth, and no half-copied disk. */
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "disk.h"

#define MIB	(1024 * 1024)

static char dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_disk.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
fill_at(int fd, off_t off, size_t len, int c)
{
	char *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, c, len);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	free(buf);
}

static int
same_at(const char *path, off_t off, size_t len, int c)
{
	unsigned char *buf = malloc(len);
	int fd = open(path, O_RDONLY), ok = 1;
	size_t i;

	assert_true(fd != -1);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	for (i = 0; i < len; i++)
		if (buf[i] != (unsigned char)c)
			ok = 0;
	close(fd);
	free(buf);
	return ok;
}

/* Files in dir whose name starts with prefix. */
static int
count_prefix(const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static void
test_sparse_copy(void **state)
{
	char src[128], dst[128], err[256];
	const char *how = NULL;
	struct stat st;
	int fd;

	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst.ext4", dir);
	fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	fill_at(fd, 0, MIB, 'a');
	fill_at(fd, 64 * MIB, MIB, 'b');
	assert_int_equal(ftruncate(fd, 100 * MIB), 0);
	close(fd);

	assert_int_equal(disk_clone(src, dst, 200 * (off_t)MIB, 0, &how, err,
	    sizeof(err)), 0);
	assert_non_null(how);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, 200 * (off_t)MIB);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(same_at(dst, 0, MIB, 'a'));
	assert_true(same_at(dst, 64 * MIB, MIB, 'b'));
	assert_true(same_at(dst, 32 * MIB, MIB, 0));
	assert_true(same_at(dst, 150 * MIB, MIB, 0));
	/* Holes stay holes: far less than 100 MiB is allocated. */
	assert_true(st.st_blocks * 512 < 16 * MIB);
	assert_int_equal(count_prefix("dst.ext4.tmp"), 0);

	/* Never shrunk below the source. */
	assert_int_equal(unlink(dst), 0);
	assert_int_equal(disk_clone(src, dst, MIB, 0, NULL, err,
	    sizeof(err)), 0);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, 100 * (off_t)MIB);
}

static void
test_partial_never_appears(void **state)
{
	char src[128], dst[128], err[256];
	struct rlimit old, lim;
	int fd, r;

	snprintf(src, sizeof(src), "%s/big", dir);
	snprintf(dst, sizeof(dst), "%s/part.ext4", dir);
	fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	fill_at(fd, 0, 4 * MIB, 'x');
	close(fd);

	/* A file size limit makes the copy fail half-way, like a full
	 * disk would. */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 2 * MIB;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r = disk_clone(src, dst, 0, 0, NULL, err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(r, -1);
	assert_non_null(strstr(err, "disk full"));
	assert_int_equal(access(dst, F_OK), -1);
	assert_int_equal(count_prefix("part.ext4"), 0);

	/* A missing source names itself. */
	snprintf(src, sizeof(src), "%s/missing", dir);
	assert_int_equal(disk_clone(src, dst, 0, 0, NULL, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "missing"));
	assert_int_equal(access(dst, F_OK), -1);
}

static void
test_ensure_ignores_leftovers(void **state)
{
	struct prison_config cfg;
	char rootfs[128], tmp[160], cmd[256], err[256], *path;
	unsigned char magic[2];
	struct stat st;
	int created, fd;

	if (system("command -v mkfs.ext4 resize2fs e2fsck >/dev/null") != 0)
		skip();
	memset(&cfg, 0, sizeof(cfg));
	cfg.disk_dir = dir;
	cfg.disk_size_mib = 64;
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs.ext4", dir);
	snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F '%s' 16M >/dev/null",
	    rootfs);
	assert_int_equal(system(cmd), 0);
	/* What a crash mid-copy leaves: garbage under a temporary name. */
	snprintf(tmp, sizeof(tmp), "%s/proj.ext4.tmp.AbCdEf", dir);
	fd = open(tmp, O_WRONLY | O_CREAT, 0600);
	fill_at(fd, 0, 4096, 'g');
	close(fd);

	assert_int_equal(disk_ensure(&cfg, "proj", rootfs, &created, err,
	    sizeof(err)), 0);
	assert_int_equal(created, 1);
	path = disk_path(&cfg, "proj");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 64 * (off_t)MIB);
	/* The ext4 magic, not the leftover's garbage. */
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, magic, 2, 1024 + 56), 2);
	close(fd);
	assert_int_equal(magic[0], 0x53);
	assert_int_equal(magic[1], 0xef);
	/* The filesystem was grown to the disk's size. */
	snprintf(cmd, sizeof(cmd), "dumpe2fs -h '%s' 2>/dev/null | grep -q "
	    "'^Block count: *65536$\\|^Block count: *16384$'", path);
	assert_int_equal(system(cmd), 0);

	/* Second time: the existing disk is kept. */
	fd = open(path, O_WRONLY);
	fill_at(fd, 60 * MIB, 16, 'k');
	close(fd);
	assert_int_equal(disk_ensure(&cfg, "proj", rootfs, &created, err,
	    sizeof(err)), 0);
	assert_int_equal(created, 0);
	assert_true(same_at(path, 60 * MIB, 16, 'k'));

	assert_int_equal(disk_remove(&cfg, "proj", err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sparse_copy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_partial_never_appears,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ensure_ignores_leftovers,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
