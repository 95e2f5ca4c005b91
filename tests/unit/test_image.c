/* Image lookup and the image builder's helpers (provisioner/image.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "image.h"

static char dir[] = "/tmp/prison-image-test.XXXXXX";

static void
put(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

static void
cfg_init(struct prison_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->image_dir = dir;
}

static void
test_names(void **state)
{
	char long_name[IMAGE_NAME_MAX + 2];

	assert_true(image_name_valid("debian"));
	assert_true(image_name_valid("alma10.x_1-b"));
	assert_false(image_name_valid(""));
	assert_false(image_name_valid(NULL));
	assert_false(image_name_valid("-x"));
	assert_false(image_name_valid(".hidden"));
	assert_false(image_name_valid("Debian"));
	assert_false(image_name_valid("a/b"));
	assert_false(image_name_valid("a b"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(image_name_valid(long_name));
	long_name[IMAGE_NAME_MAX] = '\0';
	assert_true(image_name_valid(long_name));
}

static void
test_paths_missing_and_incomplete(void **state)
{
	struct prison_config cfg;
	char err[512], *k = (char *)1, *i = (char *)1, *r = (char *)1;
	char p[512];

	cfg_init(&cfg);
	assert_int_equal(image_paths(&cfg, "nosuch", &k, &i, &r, err,
	    sizeof(err)), -1);
	assert_null(k);
	assert_non_null(strstr(err, "image \"nosuch\" is not built"));
	assert_non_null(strstr(err, "prisonctl image build nosuch"));
	assert_int_equal(image_paths(&cfg, "../etc", &k, &i, &r, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid image name"));

	snprintf(p, sizeof(p), "%s/half", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/half/manifest.json", dir);
	put(p, "{}", 2);
	snprintf(p, sizeof(p), "%s/half/vmlinuz", dir);
	put(p, "k", 1);
	assert_int_equal(image_paths(&cfg, "half", &k, &i, &r, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "incomplete"));
	assert_non_null(strstr(err, "rootfs.ext4 is missing"));
}

static void
test_paths_complete(void **state)
{
	struct prison_config cfg;
	char err[512], *k = NULL, *i = NULL, *r = NULL, *x = NULL, p[512];
	const char *files[] = { "manifest.json", "vmlinuz", "rootfs.ext4" };
	size_t n;

	cfg_init(&cfg);
	snprintf(p, sizeof(p), "%s/full", dir);
	mkdir(p, 0755);
	for (n = 0; n < 3; n++) {
		snprintf(p, sizeof(p), "%s/full/%s", dir, files[n]);
		put(p, "x", 1);
	}
	assert_int_equal(image_paths(&cfg, "full", &k, &i, &r, err,
	    sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/full/vmlinuz", dir);
	assert_string_equal(k, p);
	assert_null(i);		/* no initrd in this image */
	snprintf(p, sizeof(p), "%s/full/rootfs.ext4", dir);
	assert_string_equal(r, p);
	free(k);
	free(r);

	assert_int_equal(image_vmlinux(&cfg, "full", &x, err, sizeof(err)),
	    -1);
	assert_null(x);
	assert_non_null(strstr(err, "uncompressed ELF kernel"));
	snprintf(p, sizeof(p), "%s/full/vmlinux", dir);
	put(p, "\177ELF", 4);
	assert_int_equal(image_vmlinux(&cfg, "full", &x, err, sizeof(err)),
	    0);
	assert_string_equal(x, p);
	free(x);
}

static void
test_sha256(void **state)
{
	char p[512], hex[65], err[256];

	snprintf(p, sizeof(p), "%s/abc", dir);
	put(p, "abc", 3);
	assert_int_equal(image_sha256_file(p, hex, err, sizeof(err)), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	snprintf(p, sizeof(p), "%s/none", dir);
	assert_int_equal(image_sha256_file(p, hex, err, sizeof(err)), -1);
}

/* A bzImage-shaped file whose payload is a gzip of a fake ELF kernel. */
static void
test_extract_vmlinux(void **state)
{
	char elf[512], gz[512], bz[512], out[512], err[512], cmd[1200];
	unsigned char hdr[1024], *body, *z;
	size_t zlen, elflen = 2 * 1024 * 1024;
	FILE *fp;
	uint32_t plen;

	snprintf(elf, sizeof(elf), "%s/kernel.elf", dir);
	body = calloc(1, elflen);
	memcpy(body, "\177ELF", 4);
	put(elf, body, elflen);
	snprintf(gz, sizeof(gz), "%s/kernel.gz", dir);
	snprintf(cmd, sizeof(cmd), "gzip -c '%s' >'%s'", elf, gz);
	assert_int_equal(system(cmd), 0);
	fp = fopen(gz, "r");
	z = malloc(elflen);
	zlen = fread(z, 1, elflen, fp);
	fclose(fp);

	/* setup_sects = 1: protected-mode code starts at 1024. */
	memset(hdr, 0, sizeof(hdr));
	hdr[0x1f1] = 1;
	memcpy(hdr + 0x202, "HdrS", 4);
	hdr[0x206] = 0x0f;
	hdr[0x207] = 0x02;
	hdr[0x248] = 16;		/* payload_offset */
	plen = (uint32_t)zlen;
	memcpy(hdr + 0x24c, &plen, 4);	/* little-endian host */
	snprintf(bz, sizeof(bz), "%s/vmlinuz", dir);
	fp = fopen(bz, "w");
	fwrite(hdr, 1, sizeof(hdr), fp);
	fwrite("0123456789abcdef", 1, 16, fp);
	fwrite(z, 1, zlen, fp);
	fwrite("TAIL", 1, 4, fp);
	fclose(fp);

	snprintf(out, sizeof(out), "%s/vmlinux", dir);
	assert_int_equal(image_extract_vmlinux(bz, out, err, sizeof(err)), 0);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", elf, out);
	assert_int_equal(system(cmd), 0);

	/* Not a bzImage at all. */
	assert_int_equal(image_extract_vmlinux(elf, out, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "not a bzImage"));
	free(body);
	free(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_paths_missing_and_incomplete),
		cmocka_unit_test(test_paths_complete),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_extract_vmlinux),
	};
	char cmd[256];
	int r;

	if (mkdtemp(dir) == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
