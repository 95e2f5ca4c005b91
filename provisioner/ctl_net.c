/*
 * prisonctl net: a project's network by hand (the provisioner does the
 * same through net.h when a VM starts and stops).
 *
 *   net up PROJECT          TAP, addresses and nftables elements
 *   net down PROJECT        remove them (the addresses stay allocated)
 *   net show PROJECT [--json]
 *   net release PROJECT     down, and forget the allocation
 *   net reconcile           make the kernel match state and registry
 *   net rebuild             rebuild the nftables table from state
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "net.h"
#include "registry.h"
#include "xmalloc.h"

static void
show_print(const char *project, const struct net_info *ni, int json)
{
	json_t *o;
	char *s;

	if (!json) {
		printf("project   %s\n", project);
		printf("tap       %s%s\n", ni->tap,
		    ni->tap_present ? "" : " (absent)");
		printf("host_ip   %s\n", ni->host_ip);
		printf("guest_ip  %s\n", ni->guest_ip);
		printf("prefix    %d\n", ni->prefix);
		printf("mac       %s\n", ni->mac);
		if (ni->ssh_port > 0)
			printf("ssh_port  %d\n", ni->ssh_port);
		else
			printf("ssh_port  none\n");
		printf("egress    %s\n", ni->egress_allow ? "allow" : "deny");
		printf("state     %s\n", ni->up ? "up" : "down");
		return;
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:b, s:b}",
	    "project", project, "tap", ni->tap, "host_ip", ni->host_ip,
	    "guest_ip", ni->guest_ip, "prefix", ni->prefix, "mac", ni->mac,
	    "ssh_port", ni->ssh_port, "egress",
	    ni->egress_allow ? "allow" : "deny", "up", ni->up,
	    "tap_present", ni->tap_present);
	s = json_dumps(o, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(o);
}

static int
load_registry(const struct prison_config *cfg, struct registry **reg)
{
	char err[512];

	if (registry_load(cfg->registry, reg, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	return 0;
}

static int
do_up(const struct prison_config *cfg, const char *name, int json)
{
	struct registry *reg = NULL;
	struct reg_project *p;
	struct net_project np;
	struct net_info ni;
	char err[512];
	int ret = 1;

	if (load_registry(cfg, &reg) != 0)
		return 1;
	if ((p = registry_project(reg, name)) == NULL) {
		ctl_fail("no project \"%s\" in %s", name, cfg->registry);
		goto out;
	}
	if (net_project_of(p, &np) == -1) {
		ctl_fail("project %s uses an upstream (%s), not a VM: it has "
		    "no network here", name, p->upstream);
		goto out;
	}
	if (net_up(cfg, &np, &ni, err, sizeof(err)) == -1) {
		ctl_fail("net up %s: %s", name, err);
		goto out;
	}
	show_print(name, &ni, json);
	ret = 0;
out:
	registry_free(reg);
	return ret;
}

static int
do_reconcile(const struct prison_config *cfg)
{
	struct registry *reg = NULL;
	struct net_project *known = NULL;
	char err[512];
	size_t n = 0;
	int ret = 1;

	if (load_registry(cfg, &reg) != 0)
		return 1;
	known = net_projects_of(reg, &n);
	if (net_reconcile(cfg, known, n, err,
	    sizeof(err)) == -1) {
		ctl_fail("net reconcile: %s", err);
		goto out;
	}
	ret = 0;
out:
	free(known);
	registry_free(reg);
	return ret;
}

static int
usage(void)
{
	return ctl_fail("usage: net up|down|show|release PROJECT [--json], "
	    "net reconcile, net rebuild");
}

int
ctl_net(const struct prison_config *cfg, int argc, char **argv)
{
	struct net_info ni;
	char err[512];
	int json, r;

	json = ctl_take_json(&argc, argv);
	if (argc == 1 && strcmp(argv[0], "reconcile") == 0)
		return do_reconcile(cfg);
	if (argc == 1 && strcmp(argv[0], "rebuild") == 0) {
		if (net_rebuild(cfg, err, sizeof(err)) == -1)
			return ctl_fail("net rebuild: %s", err);
		return 0;
	}
	if (argc != 2)
		return usage();
	if (strcmp(argv[0], "up") == 0)
		return do_up(cfg, argv[1], json);
	if (strcmp(argv[0], "down") == 0) {
		if (net_down(cfg, argv[1], err, sizeof(err)) == -1)
			return ctl_fail("net down %s: %s", argv[1], err);
		return 0;
	}
	if (strcmp(argv[0], "release") == 0) {
		if (net_release(cfg, argv[1], err, sizeof(err)) == -1)
			return ctl_fail("net release %s: %s", argv[1], err);
		return 0;
	}
	if (strcmp(argv[0], "show") == 0) {
		if ((r = net_show(cfg, argv[1], &ni, err, sizeof(err))) == -1)
			return ctl_fail("net show %s: %s", argv[1], err);
		if (r == 1)
			return ctl_fail("project %s has no network allocated",
			    argv[1]);
		show_print(argv[1], &ni, json);
		return 0;
	}
	return usage();
}
