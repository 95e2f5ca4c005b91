/*
 * netbench: the network layer's figures for bench/net.sh, measured inside
 * one process so that program start and dynamic linking (which dwarf the
 * work on a busy machine) stay out of the numbers.  Uses the configuration
 * in PRISON_CONFIG and projects p0001..pNNNN from its registry.
 *
 *   netbench N     prints "name wall_ms cpu_ms" lines
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "net.h"
#include "registry.h"

static double
ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define TIMED(label, expr) do {						\
	double w0 = ms(CLOCK_MONOTONIC), c0 = ms(CLOCK_PROCESS_CPUTIME_ID);\
	if ((expr) == -1) {						\
		fprintf(stderr, "netbench: %s: %s\n", label, err);	\
		exit(1);						\
	}								\
	printf("%s %.3f %.3f\n", label, ms(CLOCK_MONOTONIC) - w0,	\
	    ms(CLOCK_PROCESS_CPUTIME_ID) - c0);				\
} while (0)

int
main(int argc, char **argv)
{
	struct prison_config cfg;
	struct registry *reg = NULL;
	struct net_project *known;
	struct net_info ni;
	char err[512], label[64];
	size_t i, n;
	int k;

	if (argc != 2 || (n = strtoul(argv[1], NULL, 10)) == 0)
		return fprintf(stderr, "usage: netbench N\n"), 2;
	if (config_load(NULL, &cfg, err, sizeof(err)) == -1 ||
	    registry_load(cfg.registry, &reg, err, sizeof(err)) == -1)
		return fprintf(stderr, "netbench: %s\n", err), 1;
	if (reg->nprojects < n)
		return fprintf(stderr, "netbench: registry too small\n"), 1;
	known = calloc(n, sizeof(*known));
	for (i = 0; i < n; i++) {
		known[i].name = reg->projects[i].name;
		known[i].ssh_port = reg->projects[i].ssh_port;
		known[i].egress_allow = reg->projects[i].egress_allow;
	}

	TIMED("init", net_init(&cfg, err, sizeof(err)));
	for (i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "up%zu", i + 1);
		TIMED(label, net_up(&cfg, &known[i], &ni, err, sizeof(err)));
	}
	for (k = 0; k < 5; k++)
		TIMED("rebuild", net_rebuild(&cfg, err, sizeof(err)));
	TIMED("reconcile", net_reconcile(&cfg, known, n, err, sizeof(err)));
	for (i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "down%zu", i + 1);
		TIMED(label, net_down(&cfg, known[i].name, err, sizeof(err)));
	}
	free(known);
	registry_free(reg);
	config_free(&cfg);
	return 0;
}
