#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char tmpconf[] = "/tmp/prison-conf-test.XXXXXX";

static const char *
write_conf(const char *text)
{
	FILE *fp = fopen(tmpconf, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return tmpconf;
}

static void
test_defaults_derive_from_state_dir(void **state)
{
	struct prison_config cfg;
	char err[256];

	assert_int_equal(config_load(write_conf("[paths]\nstate_dir = /x\n"
	    "run_dir = /r\n"), &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.registry, "/x/registry.json");
	assert_string_equal(cfg.disk_dir, "/x/disks");
	assert_string_equal(cfg.provisioner_socket, "/r/provisioner.sock");
	assert_string_equal(cfg.pool, "172.31.0.0/16");
	assert_string_equal(cfg.accel, "auto");
	assert_int_equal(cfg.max_auth_tries, 6);
	config_free(&cfg);
}

static void
test_explicit_path_overrides_derived(void **state)
{
	struct prison_config cfg;
	char err[256];

	assert_int_equal(config_load(write_conf("[paths]\nstate_dir = /x\n"
	    "registry = /elsewhere/reg.json\n[gateway]\nsecond_factor = yes\n"),
	    &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.registry, "/elsewhere/reg.json");
	assert_int_equal(cfg.second_factor, 1);
	config_free(&cfg);
}

static void
test_unknown_key_names_file_and_line(void **state)
{
	struct prison_config cfg;
	char err[256];

	assert_int_equal(config_load(write_conf("[paths]\nstate_dir = /x\n"
	    "stat_dir = /typo\n"), &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, tmpconf));
	assert_non_null(strstr(err, ":3:"));
	assert_non_null(strstr(err, "stat_dir"));
}

static void
test_bad_values_refused(void **state)
{
	struct prison_config cfg;
	char err[256];

	assert_int_equal(config_load(write_conf("[gateway]\n"
	    "max_auth_tries = 0\n"), &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "max_auth_tries"));
	assert_int_equal(config_load(write_conf("[gateway]\n"
	    "agent_forwarding = maybe\n"), &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "yes or no"));
	assert_int_equal(config_load(write_conf("not ini at all\n"), &cfg,
	    err, sizeof(err)), -1);
}

static void
test_missing_explicit_file_is_an_error(void **state)
{
	struct prison_config cfg;
	char err[256];

	assert_int_equal(config_load("/nonexistent/prison.conf", &cfg, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/prison.conf"));
}

static void
test_environment_variable_is_honoured(void **state)
{
	struct prison_config cfg;
	char err[256];

	setenv("PRISON_CONFIG", write_conf("[paths]\nstate_dir = /env\n"), 1);
	assert_int_equal(config_load(NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.state_dir, "/env");
	config_free(&cfg);
	unsetenv("PRISON_CONFIG");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_derive_from_state_dir),
		cmocka_unit_test(test_explicit_path_overrides_derived),
		cmocka_unit_test(test_unknown_key_names_file_and_line),
		cmocka_unit_test(test_bad_values_refused),
		cmocka_unit_test(test_missing_explicit_file_is_an_error),
		cmocka_unit_test(test_environment_variable_is_honoured),
	};
	int fd = mkstemp(tmpconf), r;

	if (fd == -1)
		return 1;
	close(fd);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(tmpconf);
	return r;
}
