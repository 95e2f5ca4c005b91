#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"

static char dir[] = "/tmp/prison-reg-test.XXXXXX";
static char path[256];

/* A real key (ssh-keygen -lf gives the fingerprint): loads are checked. */
#define ED_BLOB	"AAAAC3NzaC1lZDI1NTE5AAAAIBUtkpLdqtirOVgOgbQOvOQ2b6XovPCN3f7H" \
		"8xygbXir"
#define ED_FP	"SHA256:nIbBPeCwdY7XNsncqddrC/XWSC8eHGCDOW6X2WbKfXs"
#define ED_KEY	"{\"type\":\"ssh-ed25519\",\"blob\":\"" ED_BLOB "\"," \
		"\"fingerprint\":\"" ED_FP "\"}"
/* One user "a" holding the key object KEY. */
#define ONE_KEY(key) "{\"version\":1,\"users\":[{\"name\":\"a\"," \
		"\"keys\":[" key "]}]}"

static const char good[] =
    "{\"version\":1,\"users\":[{\"name\":\"alice\",\"disabled\":false,"
    "\"keys\":[{\"type\":\"ssh-ed25519\",\"blob\":\"" ED_BLOB "\","
    "\"comment\":\"a b\",\"fingerprint\":\"" ED_FP "\"}]},{\"name\":\"bob\","
    "\"disabled\":true,\"keys\":[]}],\"projects\":[{\"name\":\"proja\","
    "\"members\":[\"alice\",\"bob\"],\"ssh_port\":2200,\"vcpus\":2,"
    "\"mem_mib\":512,\"image\":null,\"repo\":\"https://x/y.git\","
    "\"ref\":null,\"dev_user\":\"dev\",\"egress\":\"deny\","
    "\"upstream\":null}]}";

static void
put(const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static char *
slurp(void)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);

	assert_non_null(fp);
	(void)fread(buf, 1, (1 << 16) - 1, fp);
	fclose(fp);
	return buf;
}

static int
setup(void **state)
{
	snprintf(path, sizeof(path), "%s/registry.json", dir);
	unlink(path);
	return 0;
}

static void
test_missing_is_empty(void **state)
{
	struct registry *reg = NULL;
	char err[256];

	assert_int_equal(registry_load(path, &reg, err, sizeof(err)), 0);
	assert_int_equal(reg->nusers, 0);
	assert_int_equal(reg->nprojects, 0);
	registry_free(reg);
}

static void
test_load_good(void **state)
{
	struct registry *reg = NULL;
	const struct reg_key *k = NULL;
	struct reg_project *p;
	char err[256];

	put(good);
	assert_int_equal(registry_load(path, &reg, err, sizeof(err)), 0);
	assert_int_equal(reg->nusers, 2);
	p = registry_project(reg, "proja");
	assert_non_null(p);
	assert_int_equal(p->ssh_port, 2200);
	assert_int_equal(p->egress_allow, 0);
	assert_string_equal(p->repo, "https://x/y.git");
	assert_null(p->image);
	assert_ptr_equal(registry_user_by_key(reg, "ssh-ed25519", ED_BLOB,
	    &k), registry_user(reg, "alice"));
	assert_string_equal(k->comment, "a b");
	assert_null(registry_user_by_key(reg, "ssh-rsa", ED_BLOB, NULL));
	assert_true(registry_may_access(reg, "proja", "alice"));
	assert_false(registry_may_access(reg, "proja", "bob"));
	assert_false(registry_may_access(reg, "projb", "alice"));
	assert_false(registry_may_access(reg, "proja", "carol"));
	registry_free(reg);
}

static void
expect_bad(const char *text, const char *why)
{
	struct registry *reg = NULL;
	char err[512], *before, *after;

	put(text);
	before = slurp();
	assert_int_equal(registry_load(path, &reg, err, sizeof(err)), -1);
	assert_null(reg);
	assert_non_null(strstr(err, path));
	if (strstr(err, why) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, why);
	after = slurp();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void
test_corrupt(void **state)
{
	expect_bad("{\"version\":1,", "not valid JSON");
	expect_bad("", "not valid JSON");
	expect_bad("[]", "top level");
	expect_bad("{\"version\":2}", "unsupported version 2");
	expect_bad("{\"users\":[]}", "version");
	expect_bad("{\"version\":1,\"users\":{}}", "users");
	expect_bad("{\"version\":1,\"x\":1}", "unknown top-level");
	expect_bad("{\"version\":1,\"users\":[{\"name\":\"Alice\"}]}",
	    "users[0].name");
	expect_bad("{\"version\":1,\"users\":[{\"name\":\"a\"},"
	    "{\"name\":\"a\"}]}", "twice");
	expect_bad("{\"version\":1,\"projects\":[{\"name\":\"root\"}]}",
	    "reserved");
	expect_bad("{\"version\":1,\"projects\":[{\"name\":\"p\","
	    "\"members\":[\"ghost\"]}]}", "not a user");
	expect_bad("{\"version\":1,\"projects\":[{\"name\":\"p\","
	    "\"egress\":\"maybe\"}]}", "egress");
	expect_bad("{\"version\":1,\"projects\":[{\"name\":\"p\","
	    "\"ssh_port\":70000}]}", "out of range");
	expect_bad("{\"version\":1,\"projects\":[{\"name\":\"p\","
	    "\"ssh_port\":22},{\"name\":\"q\",\"ssh_port\":22}]}", "share");
	expect_bad("{\"version\":1,\"users\":[{\"name\":\"a\",\"keys\":["
	    ED_KEY "]},{\"name\":\"b\",\"keys\":[" ED_KEY "]}]}",
	    "more than once");
	expect_bad("{\"version\":1,\"users\":[{\"name\":\"a\",\"sudo\":1}]}",
	    "unknown member");
	expect_bad("{\"version\":1,\"version\":1}", "not valid JSON");
}

/* A key object of type TYPE, blob BLOB, fingerprint FP. */
#define KEY(type, blob, fp) "{\"type\":\"" type "\",\"blob\":\"" blob \
		"\",\"fingerprint\":\"" fp "\"}"

/*
 * Keys are checked on load as prisonctl checked them when added; a bad
 * one refuses the registry, naming the file, the user and the key.
 */
static void
test_bad_keys(void **state)
{
	struct registry *reg = NULL;
	char err[512];

	put(ONE_KEY(ED_KEY));
	assert_int_equal(registry_load(path, &reg, err, sizeof(err)), 0);
	registry_free(reg);

	expect_bad(ONE_KEY(KEY("ssh-ed25519", "AAAAx", ED_FP)),
	    "users[0].keys[0] (user a): the key data is not valid base64");
	expect_bad(ONE_KEY(KEY("ssh-rsa", ED_BLOB, ED_FP)),
	    "(user a): the line says \"ssh-rsa\" but the key data holds a "
	    "ssh-ed25519 key");
	expect_bad(ONE_KEY(KEY("ssh-foo", ED_BLOB, ED_FP)),
	    "holds a ssh-ed25519 key");
	/* "ssh-foo" inside the blob, and so named by the entry too. */
	expect_bad(ONE_KEY(KEY("ssh-foo", "AAAAB3NzaC1mb28AAAAA", "x")),
	    "(user a): unknown key type \"ssh-foo\"");
	expect_bad(ONE_KEY(KEY("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5",
	    ED_FP)), "(user a): the ssh-ed25519 key data is damaged or "
	    "truncated");
	expect_bad(ONE_KEY(KEY("ssh-ed25519", ED_BLOB, "SHA256:x")),
	    "(user a): recorded fingerprint \"SHA256:x\" is not the key's ("
	    ED_FP ")");
}

static int
add_user(struct registry *reg, void *arg, char *err, size_t errlen)
{
	reg->users = realloc(reg->users, (reg->nusers + 1) *
	    sizeof(*reg->users));
	memset(&reg->users[reg->nusers], 0, sizeof(*reg->users));
	reg->users[reg->nusers++].name = strdup(arg);
	return 0;
}

static int
refuse(struct registry *reg, void *arg, char *err, size_t errlen)
{
	add_user(reg, arg, err, errlen);
	snprintf(err, errlen, "no");
	return -1;
}

static void
test_update_refuses_bad_key(void **state)
{
	char err[512], *after;

	put(ONE_KEY(KEY("ssh-ed25519", ED_BLOB, "SHA256:x")));
	assert_int_equal(registry_update(path, add_user, "carol", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "recorded fingerprint"));
	assert_non_null(strstr(err, "will not overwrite"));
	after = slurp();
	assert_string_equal(after, ONE_KEY(KEY("ssh-ed25519", ED_BLOB,
	    "SHA256:x")));
	free(after);
}

static void
test_update_roundtrip(void **state)
{
	struct registry *reg = NULL;
	struct stat st;
	char err[256], *before, *after;

	put(good);
	assert_int_equal(registry_update(path, add_user, "carol", err,
	    sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(registry_load(path, &reg, err, sizeof(err)), 0);
	assert_int_equal(reg->nusers, 3);
	assert_non_null(registry_user(reg, "carol"));
	assert_int_equal(registry_project(reg, "proja")->vcpus, 2);
	assert_true(registry_user(reg, "bob")->disabled);
	registry_free(reg);

	before = slurp();
	assert_int_equal(registry_update(path, refuse, "dave", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "no");
	after = slurp();
	assert_string_equal(before, after);
	free(after);

	/* An update that would break the registry is not written. */
	assert_int_equal(registry_update(path, add_user, "carol", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "twice"));
	after = slurp();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void
test_update_refuses_corrupt(void **state)
{
	char err[256], *after;

	put("{\"version\":7}");
	assert_int_equal(registry_update(path, add_user, "carol", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "unsupported version"));
	after = slurp();
	assert_string_equal(after, "{\"version\":7}");
	free(after);
}

static void
test_update_creates(void **state)
{
	struct registry *reg = NULL;
	char err[256];

	assert_int_equal(registry_update(path, add_user, "erin", err,
	    sizeof(err)), 0);
	assert_int_equal(registry_load(path, &reg, err, sizeof(err)), 0);
	assert_int_equal(reg->nusers, 1);
	assert_false(reg->users[0].disabled);
	registry_free(reg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_missing_is_empty, setup),
		cmocka_unit_test_setup(test_load_good, setup),
		cmocka_unit_test_setup(test_corrupt, setup),
		cmocka_unit_test_setup(test_bad_keys, setup),
		cmocka_unit_test_setup(test_update_refuses_bad_key, setup),
		cmocka_unit_test_setup(test_update_roundtrip, setup),
		cmocka_unit_test_setup(test_update_refuses_corrupt, setup),
		cmocka_unit_test_setup(test_update_creates, setup),
	};
	int r;

	if (mkdtemp(dir) == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		r = 1;
	return r;
}
