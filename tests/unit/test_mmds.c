/* Metadata: the document builder, MMDS V2 tokens and path lookup. */
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
#include <jansson.h>

#include "mmds.h"
#include "registry.h"

static void
test_ttl(void **state)
{
	assert_int_equal(mmds_parse_ttl("1"), 1);
	assert_int_equal(mmds_parse_ttl("21600"), 21600);
	assert_int_equal(mmds_parse_ttl("0"), -1);
	assert_int_equal(mmds_parse_ttl("21601"), -1);
	assert_int_equal(mmds_parse_ttl("-5"), -1);
	assert_int_equal(mmds_parse_ttl(" 5"), -1);
	assert_int_equal(mmds_parse_ttl("10x"), -1);
	assert_int_equal(mmds_parse_ttl(""), -1);
	assert_int_equal(mmds_parse_ttl(NULL), -1);
	assert_int_equal(mmds_parse_ttl("99999999999999999999"), -1);
}

static void
test_tokens(void **state)
{
	struct mmds_tokens a, b;
	char t1[64], t2[64];

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(mmds_token_issue(&a, 60, 1000, t1, sizeof(t1)), 0);
	assert_int_equal(mmds_token_issue(&a, 10, 1000, t2, sizeof(t2)), 0);
	assert_true(strlen(t1) >= 40);
	assert_string_not_equal(t1, t2);
	assert_int_equal(mmds_token_check(&a, t1, 1001), 1);
	assert_int_equal(mmds_token_check(&a, t2, 1009), 1);
	/* Expiry is exact: valid until now + ttl, not at it. */
	assert_int_equal(mmds_token_check(&a, t2, 1010), 0);
	assert_int_equal(mmds_token_check(&a, t1, 1059), 1);
	assert_int_equal(mmds_token_check(&a, t1, 1060), 0);
	/* Another listener's store (another project) knows none of them. */
	assert_int_equal(mmds_token_issue(&a, 60, 2000, t1, sizeof(t1)), 0);
	assert_int_equal(mmds_token_check(&b, t1, 2001), 0);
	/* Garbage, empty, a prefix. */
	assert_int_equal(mmds_token_check(&a, "", 2001), 0);
	assert_int_equal(mmds_token_check(&a, NULL, 2001), 0);
	t1[10] = '\0';
	assert_int_equal(mmds_token_check(&a, t1, 2001), 0);
	/* Bad TTLs issue nothing. */
	assert_int_equal(mmds_token_issue(&a, 0, 2000, t2, sizeof(t2)), -1);
	assert_int_equal(mmds_token_issue(&a, 21601, 2000, t2, sizeof(t2)),
	    -1);
}

static void
test_tokens_full(void **state)
{
	struct mmds_tokens a;
	char first[64], t[64];
	int i;

	memset(&a, 0, sizeof(a));
	assert_int_equal(mmds_token_issue(&a, 600, 0, first, sizeof(first)),
	    0);
	for (i = 0; i < MMDS_TOKENS_MAX; i++)
		assert_int_equal(mmds_token_issue(&a, 600, 1, t, sizeof(t)), 0);
	/* The oldest made room; the newest works. */
	assert_int_equal(mmds_token_check(&a, first, 2), 0);
	assert_int_equal(mmds_token_check(&a, t, 2), 1);
	assert_int_equal(a.n, MMDS_TOKENS_MAX);
}

static void
test_lookup(void **state)
{
	json_t *doc = json_loads("{\"prison\":{\"project\":\"p\","
	    "\"authorized_keys\":[\"k0\",\"k1\"],\"env\":{}}}", 0, NULL);

	assert_non_null(doc);
	assert_ptr_equal(mmds_lookup(doc, "/"), doc);
	assert_string_equal(json_string_value(mmds_lookup(doc,
	    "/prison/project")), "p");
	assert_string_equal(json_string_value(mmds_lookup(doc,
	    "/prison/authorized_keys/1")), "k1");
	assert_string_equal(json_string_value(mmds_lookup(doc,
	    "/prison/authorized_keys/1/")), "k1");
	assert_null(mmds_lookup(doc, "/prison/authorized_keys/2"));
	assert_null(mmds_lookup(doc, "/prison/authorized_keys/x"));
	assert_null(mmds_lookup(doc, "/prison/authorized_keys/-1"));
	assert_null(mmds_lookup(doc, "/prison/project/deeper"));
	assert_null(mmds_lookup(doc, "/nope"));
	assert_null(mmds_lookup(doc, "prison"));
	json_decref(doc);
}

static struct reg_key alice_keys[] = {
	{ "ssh-ed25519", "AAAAalice1", "alice@laptop", "SHA256:a1" },
	{ "ssh-rsa", "AAAAalice2", "", "SHA256:a2" },
};
static struct reg_key bob_keys[] = {
	{ "ssh-ed25519", "AAAAbob", "bob@x", "SHA256:b" },
};
static struct reg_user users[] = {
	{ "alice", 0, alice_keys, 2 },
	{ "bob", 1, bob_keys, 1 },
	{ "carol", 0, NULL, 0 },
};
static char *members[] = { "alice", "bob" };
static struct reg_project projects[] = {
	{ "proja", members, 2, 0, 0, 0, NULL, "git@h:r.git", NULL, "ops",
	    1, NULL },
};
static struct registry reg = { users, 3, projects, 1 };

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
test_build(void **state)
{
	char dir[] = "/tmp/test_mmds.XXXXXX", path[256], err[256];
	struct mmds_input in = { "proja", "172.31.0.1",
	    "ssh-ed25519 AAAAgw prison-gateway", "-----BEGIN OPENSSH "
	    "PRIVATE KEY-----\nx\n", "ssh-ed25519 AAAAhost", NULL };
	json_t *doc = NULL, *p, *keys, *boot;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/bootstrap.d", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/bootstrap.d/20-second", dir);
	write_file(path, "#!/bin/sh\necho 2\n");
	snprintf(path, sizeof(path), "%s/bootstrap.d/10-first", dir);
	write_file(path, "#!/bin/sh\necho 1\n");
	snprintf(path, sizeof(path), "%s/env", dir);
	write_file(path, "# comment\nFOO=bar baz\n\nX_1=\n");
	in.extra_dir = dir;

	assert_int_equal(mmds_build(&reg, &in, &doc, err, sizeof(err)), 0);
	p = json_object_get(doc, "prison");
	assert_string_equal(json_string_value(json_object_get(p, "project")),
	    "proja");
	assert_string_equal(json_string_value(json_object_get(p,
	    "hostname")), "proja");
	assert_string_equal(json_string_value(json_object_get(p,
	    "dev_user")), "ops");
	assert_string_equal(json_string_value(json_object_get(p,
	    "work_dir")), "/home/ops/work");
	assert_string_equal(json_string_value(json_object_get(p, "repo")),
	    "git@h:r.git");
	assert_true(json_is_null(json_object_get(p, "ref")));
	/* Members' keys; bob is disabled, so his key is left out. */
	keys = json_object_get(p, "authorized_keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)),
	    "ssh-ed25519 AAAAalice1 alice@laptop");
	assert_string_equal(json_string_value(json_array_get(keys, 1)),
	    "ssh-rsa AAAAalice2");
	assert_string_equal(json_string_value(json_object_get(p,
	    "gateway_key")),
	    "from=\"172.31.0.1\" ssh-ed25519 AAAAgw prison-gateway");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    p, "ssh_host_key"), "public")), "ssh-ed25519 AAAAhost");
	boot = json_object_get(p, "bootstrap");
	assert_int_equal(json_array_size(boot), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    boot, 0), "name")), "10-first");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    p, "env"), "FOO")), "bar baz");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    p, "env"), "X_1")), "");
	json_decref(doc);

	/* A bad environment line is an error naming the file. */
	write_file(path, "1BAD=x\n");
	assert_int_equal(mmds_build(&reg, &in, &doc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/env"));
	assert_null(doc);

	/* Unknown projects have no document. */
	in.project = "nope";
	in.extra_dir = NULL;
	assert_int_equal(mmds_build(&reg, &in, &doc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nope"));

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_tokens_full),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
