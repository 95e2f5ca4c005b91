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
	{ .name = "proja", .members = members, .nmembers = 2,
	    .repo = "git@h:r.git", .dev_user = "ops", .egress_allow = 1,
	    .agent = REG_AGENT_DEFAULT },
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
	char resolv[256];
	struct mmds_input in = { "proja", "172.31.0.1",
	    "ssh-ed25519 AAAAgw prison-gateway", "-----BEGIN OPENSSH "
	    "PRIVATE KEY-----\nx\n", "ssh-ed25519 AAAAhost", NULL, NULL, 0,
	    NULL };
	json_t *doc = NULL, *p, *keys, *boot, *ns;
	const char *files[] = { NULL, NULL };

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
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", dir);
	write_file(resolv, "nameserver 10.0.0.53\n");
	files[0] = resolv;
	in.resolv_files = files;

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
	/* Guests get resolvers without [network] nameservers set. */
	ns = json_object_get(p, "nameservers");
	assert_int_equal(json_array_size(ns), 1);
	assert_string_equal(json_string_value(json_array_get(ns, 0)),
	    "10.0.0.53");
	json_decref(doc);

	/* A bad nameservers setting fails the document, naming it. */
	in.nameservers = "10.0.0.1 resolver.example";
	assert_int_equal(mmds_build(&reg, &in, &doc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "resolver.example"));
	assert_null(doc);
	in.nameservers = NULL;

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

/* The nameservers as one space-separated string, for comparing. */
static char *
ns_str(const char *setting, const char *const *files, int allow_dns)
{
	static char buf[256];
	char err[256];
	json_t *ns, *v;
	size_t i;

	buf[0] = '\0';
	err[0] = '\0';
	if ((ns = mmds_nameservers(setting, files, allow_dns, "172.31.0.1",
	    err, sizeof(err))) == NULL) {
		snprintf(buf, sizeof(buf), "error: %s", err);
		return buf;
	}
	json_array_foreach(ns, i, v)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s",
		    i > 0 ? " " : "", json_string_value(v));
	json_decref(ns);
	return buf;
}

static void
test_nameservers(void **state)
{
	char dir[] = "/tmp/test_ns.XXXXXX", a[256], b[256], c[256];
	const char *files[] = { a, b, NULL }, *none[] = { c, NULL };
	const char *missing[] = { "/nonexistent/resolv.conf", NULL };

	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/stub", dir);
	snprintf(b, sizeof(b), "%s/upstream", dir);
	snprintf(c, sizeof(c), "%s/local-only", dir);
	/* systemd-resolved's stub: loopback only, so the next file counts. */
	write_file(a, "# stub\nnameserver 127.0.0.53\noptions edns0\n");
	write_file(b, "nameserver 192.168.1.1\nnameserver ::1\n"
	    "nameserver\t10.1.1.1  # second\nsearch lan\n"
	    "nameserver fe80::1\nnameserver 10.2.2.2\n"
	    "nameserver 10.3.3.3\n");
	write_file(c, "nameserver 127.0.0.1\nnameserver ::1\n");

	/* Auto: the first file with a usable one; IPv6 and loopback
	 * skipped; at most three. */
	assert_string_equal(ns_str(NULL, files, 0),
	    "192.168.1.1 10.1.1.1 10.2.2.2");
	assert_string_equal(ns_str("", files, 1),
	    "192.168.1.1 10.1.1.1 10.2.2.2");
	/* Nothing usable: the host address with allow_dns, else public. */
	assert_string_equal(ns_str(NULL, none, 1), "172.31.0.1");
	assert_string_equal(ns_str(NULL, none, 0), MMDS_NAMESERVERS_FALLBACK);
	assert_string_equal(ns_str(NULL, missing, 0),
	    MMDS_NAMESERVERS_FALLBACK);
	/* Set: taken as written, "host" is the guest's host address. */
	assert_string_equal(ns_str("9.9.9.9, host", files, 0),
	    "9.9.9.9 172.31.0.1");
	assert_string_equal(ns_str("127.0.0.1", files, 0), "127.0.0.1");
	assert_non_null(strstr(ns_str("1.1.1.1 ::1", files, 0),
	    "\"::1\" is not an IPv4 address"));
	assert_non_null(strstr(ns_str("1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4",
	    files, 0), "more than 3"));
	assert_non_null(strstr(ns_str("1.1.1", files, 0), "error"));

	snprintf(a, sizeof(a), "rm -rf '%s'", dir);
	assert_int_equal(system(a), 0);
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
		cmocka_unit_test(test_nameservers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
