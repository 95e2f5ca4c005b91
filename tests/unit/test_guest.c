/*
 * The guest agent's parsers: the kernel command line (guest/cmdline.c)
 * and resolv.conf from metadata (guest/resolv.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
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

static void
test_resolv(void **state)
{
	json_t *doc;
	char *s;

	doc = json_pack("{s:[s,s,s,s,s,s]}", "nameservers", "192.168.1.1",
	    "1.1.1.1 options rotate", "bogus", "2001:db8::53", "9.9.9.9",
	    "8.8.8.8");
	s = resolv_conf_text(doc, "172.31.0.1");
	/* Addresses only, at most three, the host side not added. */
	assert_non_null(strstr(s, "nameserver 192.168.1.1\n"
	    "nameserver 2001:db8::53\nnameserver 9.9.9.9\n"));
	assert_null(strstr(s, "rotate"));
	assert_null(strstr(s, "bogus"));
	assert_null(strstr(s, "8.8.8.8"));
	assert_null(strstr(s, "172.31.0.1"));
	free(s);
	json_decref(doc);

	/* None usable (or an older provisioner): the host side. */
	doc = json_pack("{s:[s]}", "nameservers", "x\nnameserver 6.6.6.6");
	s = resolv_conf_text(doc, "172.31.0.1");
	assert_non_null(strstr(s, "\nnameserver 172.31.0.1\n"));
	assert_null(strstr(s, "6.6.6.6"));
	free(s);
	json_decref(doc);
	doc = json_object();
	s = resolv_conf_text(doc, "172.31.0.1");
	assert_non_null(strstr(s, "\nnameserver 172.31.0.1\n"));
	free(s);
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults_and_last_wins),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_resolv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
