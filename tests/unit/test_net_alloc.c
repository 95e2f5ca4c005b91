/*
 * The network layer's allocator and state files, without the kernel:
 * pool parsing, stable hashing, probing, exhaustion, TAP names, claims.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net_int.h"

static char dir[] = "/tmp/prison-net-test.XXXXXX";

static void
open_state(const char *pool, struct net_state *st)
{
	char err[256];

	assert_int_equal(net_state_open(dir, pool, st, err, sizeof(err)), 0);
}

/* Allocate and save, as net_up does. */
static int
alloc_save(const struct net_state *st, const char *name, struct net_rec *r,
    char *err, size_t errlen)
{
	int fresh;

	if (net_rec_alloc(st, name, r, &fresh, err, errlen) == -1)
		return -1;
	return net_rec_put(st, r, err, errlen);
}

static void
test_pool_parse(void **state)
{
	uint32_t base;
	int prefix;
	char err[256];

	assert_int_equal(net_pool_parse("172.31.0.0/16", &base, &prefix, err,
	    sizeof(err)), 0);
	assert_int_equal(base, 0xac1f0000u);
	assert_int_equal(prefix, 16);
	assert_int_equal(net_pool_parse("172.31.0.1/16", &base, &prefix, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "host bits"));
	assert_int_equal(net_pool_parse("172.31.0.0/31", &base, &prefix, err,
	    sizeof(err)), -1);
	assert_int_equal(net_pool_parse("172.31.0.0", &base, &prefix, err,
	    sizeof(err)), -1);
	assert_int_equal(net_pool_parse("nonsense/16", &base, &prefix, err,
	    sizeof(err)), -1);
}

/* The index must not change between releases: pin the hash. */
static void
test_hash_is_fnv1a(void **state)
{
	assert_int_equal(net_hash(""), 2166136261u);
	assert_int_equal(net_hash("a"), 0xe40c292cu);
	assert_int_equal(net_hash("foobar"), 0xbf9cf968u);
}

static void
test_alloc_probe_exhaust(void **state)
{
	struct net_state st;
	struct net_rec r[5], again;
	char err[256], host[16], guest[16], n[5][32];
	uint32_t seen = 0;
	int i;

	open_state("10.200.0.0/28", &st);
	assert_int_equal(st.nslots, 4);
	for (i = 0; i < 4; i++) {
		snprintf(n[i], sizeof(n[i]), "project%d", i);
		assert_int_equal(alloc_save(&st, n[i], &r[i], err,
		    sizeof(err)), 0);
		assert_true(r[i].index < 4);
		assert_false(seen & (1u << r[i].index));
		seen |= 1u << r[i].index;
		assert_false(r[i].up);
	}
	/* Four names in four slots: at least the later ones probed. */
	assert_int_equal(seen, 0xf);
	assert_int_equal(alloc_save(&st, "project4", &r[4], err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "exhausted"));
	assert_non_null(strstr(err, "10.200.0.0/28"));

	/* Same name, same record. */
	assert_int_equal(alloc_save(&st, n[2], &again, err, sizeof(err)),
	    0);
	assert_int_equal(again.index, r[2].index);
	assert_string_equal(again.tap, r[2].tap);
	net_rec_addrs(&st, &again, host, guest, sizeof(host));
	snprintf(err, sizeof(err), "10.200.0.%u", again.index * 4 + 1);
	assert_string_equal(host, err);
	snprintf(err, sizeof(err), "10.200.0.%u", again.index * 4 + 2);
	assert_string_equal(guest, err);
	net_rec_clear(&again);

	/* Forgetting frees the slot for the next project. */
	assert_int_equal(net_rec_forget(&st, &r[1], err, sizeof(err)), 0);
	assert_int_equal(alloc_save(&st, "project4", &r[4], err,
	    sizeof(err)), 0);
	assert_int_equal(r[4].index, r[1].index);
	for (i = 0; i < 5; i++)
		net_rec_clear(&r[i]);
	net_state_free(&st);
}

static void
test_tap_names(void **state)
{
	struct net_state st;
	struct net_rec a, b;
	char err[256], want[16];

	open_state("172.31.0.0/16", &st);
	assert_int_equal(alloc_save(&st, "elevenchars", &a, err,
	    sizeof(err)), 0);
	assert_string_equal(a.tap, "tap-elevenchars");
	assert_int_equal(alloc_save(&st, "twelve-chars", &b, err,
	    sizeof(err)), 0);
	snprintf(want, sizeof(want), "tp-%08x", net_hash("twelve-chars"));
	assert_string_equal(b.tap, want);
	assert_true(strlen(b.tap) <= 15);
	net_rec_clear(&a);
	net_rec_clear(&b);
	net_state_free(&st);
}

static void
test_ports_and_tidy(void **state)
{
	struct net_state st;
	struct net_rec a, b;
	char err[256], path[256];
	FILE *f;

	open_state("172.31.0.0/16", &st);
	assert_int_equal(alloc_save(&st, "alpha", &a, err, sizeof(err)),
	    0);
	assert_int_equal(alloc_save(&st, "beta", &b, err, sizeof(err)), 0);
	assert_int_equal(net_port_claim(&st, "alpha", 2240, err,
	    sizeof(err)), 0);
	a.up = 1;
	a.ssh_port = 2240;
	assert_int_equal(net_rec_put(&st, &a, err, sizeof(err)), 0);
	assert_int_equal(net_port_claim(&st, "beta", 2240, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "already forwarded to project alpha"));

	/* alpha goes down: its claim is stale and beta may take it. */
	a.up = 0;
	assert_int_equal(net_rec_put(&st, &a, err, sizeof(err)), 0);
	assert_int_equal(net_port_claim(&st, "beta", 2240, err, sizeof(err)),
	    0);

	/* A claim nobody's record justifies is removed by tidy. */
	snprintf(path, sizeof(path), "%s/net/slots/9999", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("ghost", f);
	fclose(f);
	net_state_free(&st);
	open_state("172.31.0.0/16", &st);
	assert_int_equal(net_state_load(&st, err, sizeof(err)), 0);
	assert_int_equal(st.nrecs, 2);
	assert_int_equal(net_claims_tidy(&st, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);
	/* beta's port claim is stale (beta is not up): removed too. */
	snprintf(path, sizeof(path), "%s/net/ports/2240", dir);
	assert_int_equal(access(path, F_OK), -1);
	net_rec_clear(&a);
	net_rec_clear(&b);
	net_state_free(&st);
}

static void
test_pool_change_refused(void **state)
{
	struct net_state st;
	char err[256];

	open_state("172.31.0.0/16", &st);
	net_state_free(&st);
	assert_int_equal(net_state_open(dir, "10.0.0.0/16", &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "configured pool is 10.0.0.0/16"));
}

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/prison-net-test.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_parse),
		cmocka_unit_test(test_hash_is_fnv1a),
		cmocka_unit_test_setup_teardown(test_alloc_probe_exhaust,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tap_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ports_and_tidy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_change_refused,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
