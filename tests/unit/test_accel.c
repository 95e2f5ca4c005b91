#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "accel.h"

static char root[] = "/tmp/prison-accel.XXXXXX";

static void
touch(const char *rel)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
}

static void
mod(const char *name, int present)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/sys/module/%s", root, name);
	if (present)
		mkdir(path, 0755);
	else
		rmdir(path);
}

static int
setup(void **state)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/sys", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sys/module", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/dev", root);
	mkdir(path, 0755);
	return 0;
}

static void
test_pvm_backend_means_tcg(void **state)
{
	char why[256];

	touch("dev/kvm");
	mod("kvm", 1);
	mod("kvm_pvm", 1);
	assert_int_equal(accel_choose("auto", root, why, sizeof(why)),
	    ACCEL_TCG);
	assert_non_null(strstr(why, "kvm_pvm"));
	/* Demanded explicitly, KVM is honoured: a PVM guest kernel works. */
	assert_int_equal(accel_choose("kvm", root, why, sizeof(why)),
	    ACCEL_KVM);
	mod("kvm_pvm", 0);
}

static void
test_hardware_backend_means_kvm(void **state)
{
	char why[256];

	touch("dev/kvm");
	mod("kvm_intel", 1);
	mod("kvm_pvm", 1);
	assert_int_equal(accel_choose("auto", root, why, sizeof(why)),
	    ACCEL_KVM);
	mod("kvm_intel", 0);
	mod("kvm_pvm", 0);
	mod("kvm_amd", 1);
	assert_int_equal(accel_choose("auto", root, why, sizeof(why)),
	    ACCEL_KVM);
	mod("kvm_amd", 0);
}

static void
test_no_device_means_tcg_or_error(void **state)
{
	char path[512], why[256];

	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	unlink(path);
	mod("kvm_intel", 1);
	assert_int_equal(accel_choose("auto", root, why, sizeof(why)),
	    ACCEL_TCG);
	assert_int_equal(accel_choose("kvm", root, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "/dev/kvm"));
	mod("kvm_intel", 0);
}

static void
test_settings(void **state)
{
	char why[256];

	assert_int_equal(accel_choose("tcg", root, why, sizeof(why)),
	    ACCEL_TCG);
	assert_int_equal(accel_choose("hvf", root, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "hvf"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pvm_backend_means_tcg),
		cmocka_unit_test(test_hardware_backend_means_kvm),
		cmocka_unit_test(test_no_device_means_tcg_or_error),
		cmocka_unit_test(test_settings),
	};
	char cmd[600];
	int r;

	if (mkdtemp(root) == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, setup, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
