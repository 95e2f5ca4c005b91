#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

static const char *const good[] = {
	"a", "alice", "proj-a", "proj_a", "a1", "x-1_2", "z9",
	"abcdefghijklmnopqrstuvwxyz012345",	/* 32 bytes */
	NULL
};

static const struct {
	const char *name, *why;
} bad[] = {
	{ "", "empty" },
	{ "1abc", "start with" },
	{ "-abc", "start with" },
	{ "_abc", "start with" },
	{ "Alice", "start with" },
	{ "aLice", "byte 2" },
	{ "a.b", "byte 2" },
	{ "a b", "byte 2" },
	{ "a@b", "byte 2" },
	{ "a/b", "byte 2" },
	{ "caf\xc3\xa9", "byte 4" },
	{ "abc-", "end in '-'" },
	{ "abcdefghijklmnopqrstuvwxyz0123456", "longer than 32" },
	{ NULL, NULL }
};

static void
test_grammar(void **state)
{
	char err[256];
	size_t i;

	for (i = 0; good[i] != NULL; i++) {
		assert_int_equal(name_valid_user(good[i], err, sizeof(err)), 0);
		assert_int_equal(name_valid_project(good[i], err,
		    sizeof(err)), 0);
	}
	for (i = 0; bad[i].name != NULL; i++) {
		err[0] = '\0';
		assert_int_equal(name_valid_user(bad[i].name, err,
		    sizeof(err)), -1);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("\"%s\": error \"%s\" lacks \"%s\"",
			    bad[i].name, err, bad[i].why);
		assert_int_equal(name_valid_project(bad[i].name, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "project"));
	}
	assert_int_equal(name_valid_user(NULL, err, sizeof(err)), -1);
}

static void
test_reserved(void **state)
{
	static const char *const reserved[] = { "root", "daemon", "bin",
	    "sys", "sync", "nobody", "admin", "prison", "sshd", "www-data",
	    "systemd-network", "messagebus", "git", "prison-vm", NULL };
	char err[256];
	size_t i;

	for (i = 0; reserved[i] != NULL; i++) {
		assert_int_equal(name_valid_project(reserved[i], err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "reserved"));
		/* Developers may be called anything the grammar allows. */
		assert_int_equal(name_valid_user(reserved[i], err,
		    sizeof(err)), 0);
	}
	assert_int_equal(name_valid_project("rooted", err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_reserved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
