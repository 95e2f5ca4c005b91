/* The guest agent's kernel command line parser (guest/cmdline.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "../../guest/agent.h"

static void
test_full(void **state)
{
	struct guest_cmdline c;
	char err[256];

	assert_int_equal(cmdline_parse("console=ttyS0 root=/dev/vda rw "
	    "prison.ip=172.31.0.2/30 prison.gw=172.31.0.1 "
	    "prison.mmds=169.254.169.254 prison.project=proja\n", &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.ip, "172.31.0.2/30");
	assert_string_equal(c.gw, "172.31.0.1");
	assert_string_equal(c.mmds, "169.254.169.254");
	assert_string_equal(c.project, "proja");
	cmdline_free(&c);
}

static void
test_defaults_and_last_wins(void **state)
{
	struct guest_cmdline c;
	char err[256];

	assert_int_equal(cmdline_parse("prison.ip=10.0.0.2/24 "
	    "prison.gw=10.0.0.9 prison.gw=10.0.0.1", &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.mmds, "169.254.169.254");
	assert_string_equal(c.gw, "10.0.0.1");
	assert_null(c.project);
	cmdline_free(&c);
}

static void
test_errors(void **state)
{
	static const char *bad[] = {
		"prison.gw=10.0.0.1",				/* no ip */
		"prison.ip=10.0.0.2 prison.gw=10.0.0.1",	/* no prefix */
		"prison.ip=10.0.0.2/33 prison.gw=10.0.0.1",
		"prison.ip=10.0.0.2/0 prison.gw=10.0.0.1",
		"prison.ip=10.0.0.300/30 prison.gw=10.0.0.1",
		"prison.ip=10.0.0.2/30",			/* no gw */
		"prison.ip=10.0.0.2/30 prison.gw=gw",
		"prison.ip=10.0.0.2/30 prison.gw=10.0.0.1 prison.mmds=x",
		"xprison.ip=10.0.0.2/30 prison.gw=10.0.0.1",
	};
	struct guest_cmdline c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(cmdline_parse(bad[i], &c, err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, "prison."));
		assert_null(c.ip);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults_and_last_wins),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
