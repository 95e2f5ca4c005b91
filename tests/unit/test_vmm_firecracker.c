/*
 * Unit tests for the pure parts of the Firecracker driver: jail ids,
 * cgroup limits, the kernel command line and MMDS merge patches.  The
 * driver as a whole runs against the API double in
 * tests/integration/55-firecracker.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "vmm_firecracker.h"

static void
test_jail_id_plain(void **state)
{
	char id[FC_ID_MAX + 1], err[256];

	assert_int_equal(fc_jail_id("proja", id, sizeof(id), err,
	    sizeof(err)), 0);
	assert_string_equal(id, "prison-proja");
}

static void
test_jail_id_underscore(void **state)
{
	char a[FC_ID_MAX + 1], b[FC_ID_MAX + 1], err[256];
	const char *p;

	assert_int_equal(fc_jail_id("a_b", a, sizeof(a), err,
	    sizeof(err)), 0);
	assert_int_equal(fc_jail_id("a-b", b, sizeof(b), err,
	    sizeof(err)), 0);
	/* '_' is not a jailer character, and a_b must not become a-b. */
	assert_null(strchr(a, '_'));
	assert_string_not_equal(a, b);
	for (p = a; *p != '\0'; p++)
		assert_true(*p == '-' || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9'));
	assert_int_equal(strncmp(a, "prisonx-", 8), 0);
}

static void
test_jail_id_longest_name_fits(void **state)
{
	char id[FC_ID_MAX + 1], err[256];
	const char *name = "abcdefghijklmnopqrstuvwxyz_12345";	/* 32 */

	assert_int_equal(fc_jail_id(name, id, sizeof(id), err,
	    sizeof(err)), 0);
	assert_true(strlen(id) <= FC_ID_MAX);
	assert_int_equal(fc_jail_id("", id, sizeof(id), err, sizeof(err)),
	    -1);
}

static void
test_cgroup_limits(void **state)
{
	char cpu[64], mem[64];

	fc_cgroup_limits(1, 256, cpu, sizeof(cpu), mem, sizeof(mem));
	assert_string_equal(cpu, "125000 100000");
	assert_string_equal(mem, "352321536");	/* (256+64+16) MiB */
	fc_cgroup_limits(4, 4096, cpu, sizeof(cpu), mem, sizeof(mem));
	assert_string_equal(cpu, "425000 100000");
	assert_string_equal(mem, "4630511616");	/* (4096+64+256) MiB */
}

static void
test_boot_args_defaults_then_extra(void **state)
{
	char *s = fc_boot_args("prison.project=p");

	assert_string_equal(s, "console=ttyS0 reboot=k panic=1 pci=off "
	    "root=/dev/vda rw prison.project=p");
	free(s);
}

static void
test_boot_args_keep_callers_choice(void **state)
{
	char *s = fc_boot_args("root=/dev/vdb ro console=hvc0");

	assert_string_equal(s, "reboot=k panic=1 pci=off "
	    "root=/dev/vdb ro console=hvc0");
	free(s);
	s = fc_boot_args(NULL);
	assert_string_equal(s, "console=ttyS0 reboot=k panic=1 pci=off "
	    "root=/dev/vda rw");
	free(s);
}

static void
test_merge_patch_nulls_dropped_keys(void **state)
{
	json_t *old, *new, *patch, *want;

	old = json_loads("{\"p\":{\"a\":1,\"b\":2,\"k\":[1]},\"x\":1}", 0,
	    NULL);
	new = json_loads("{\"p\":{\"a\":1,\"k\":[]}}", 0, NULL);
	want = json_loads("{\"p\":{\"b\":null,\"k\":[]},\"x\":null}", 0,
	    NULL);
	patch = fc_merge_patch(old, new);
	assert_true(json_equal(patch, want));
	json_decref(patch);
	/* Without an old document the patch is the document. */
	patch = fc_merge_patch(NULL, new);
	assert_true(json_equal(patch, new));
	json_decref(patch);
	json_decref(old);
	json_decref(new);
	json_decref(want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jail_id_plain),
		cmocka_unit_test(test_jail_id_underscore),
		cmocka_unit_test(test_jail_id_longest_name_fits),
		cmocka_unit_test(test_cgroup_limits),
		cmocka_unit_test(test_boot_args_defaults_then_extra),
		cmocka_unit_test(test_boot_args_keep_callers_choice),
		cmocka_unit_test(test_merge_patch_nulls_dropped_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
