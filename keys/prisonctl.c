/*
 * prisonctl: the admin's and operator's command.  Global options come
 * before the command group; each group lives beside the code it drives.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "log.h"

static const struct {
	const char	*name;
	int		(*fn)(const struct prison_config *, int, char **);
	const char	*help;
} groups[] = {
	{ "user", ctl_user, "user add|del|disable|enable NAME, user list, "
	    "user key add|del|list" },
	{ "project", ctl_project,
	    "project add|set|grant|revoke|del|list|show|reset" },
	{ "keys", ctl_keys, "keys authorized PROJECT" },
	{ "net", ctl_net, "net up|down|show PROJECT" },
	{ "vm", ctl_vm, "vm list|stop NAME|stop --all|cleanup --all" },
	{ "image", ctl_image, "image build [NAME] [--release R] ..." },
	{ "doctor", ctl_doctor, "doctor: check this host" },
	{ "gateway-key", ctl_gateway_key, "gateway-key: print the gateway's "
	    "client public key" },
};

int
ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("prisonctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int
ctl_take_json(int *argc, char **argv)
{
	int i, j, found = 0;

	for (i = j = 0; i < *argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			found = 1;
		else
			argv[j++] = argv[i];
	}
	argv[j] = NULL;
	*argc = j;
	return found;
}

static void
usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: prisonctl [-c FILE] COMMAND ...\n");
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(fp, "  %s\n", groups[i].help);
}

int
main(int argc, char **argv)
{
	struct prison_config cfg;
	const char *cfgfile = NULL;
	char err[512];
	size_t i;
	int ch, r;

	log_init("prisonctl", 1);
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	/* A usage error is one line saying what was wrong, as any other
	 * failure; the full usage is for --help. */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			cfgfile = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt == 'c')
				ctl_fail("option -c needs a file (see "
				    "prisonctl --help)");
			else
				ctl_fail("unknown option '-%c' (see "
				    "prisonctl --help)", optopt);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		ctl_fail("no command given (see prisonctl --help)");
		return 2;
	}
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (strcmp(argv[0], groups[i].name) == 0)
			break;
	if (i == sizeof(groups) / sizeof(groups[0])) {
		ctl_fail("unknown command '%s' (see prisonctl --help)",
		    argv[0]);
		return 2;
	}
	if (config_load(cfgfile, &cfg, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	r = groups[i].fn(&cfg, argc - 1, argv + 1);
	config_free(&cfg);
	return r;
}
