/*
 * fc_drive: call the Firecracker driver without the provisioner, for
 * tests/integration/55-firecracker.sh.  The configuration comes from
 * PRISON_CONFIG (jailer_binary, firecracker_binary, jailer_chroot), the
 * VM spec from options.
 *
 *   fc_drive start -p PROJECT -d VMDIR -t TAP -m MAC -k KERNEL [-i INITRD]
 *       -D DISK -u UID -g GID [-c VCPUS] [-M MEM_MIB] [-a CMDLINE]
 *       [-j MMDS_FILE]                 prints "pid=N socket=PATH"
 *   fc_drive alive -p PROJECT          prints 1, 0 or -1
 *   fc_drive mmds -p PROJECT -j FILE   replaces the metadata document
 *   fc_drive stop -p PROJECT [-T SECONDS]
 *   fc_drive orphans -p PROJECT -d VMDIR   kills the VMMs found by their
 *                                      command line; prints how many
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "fileio.h"
#include "vmm.h"

static void
usage(void)
{
	fprintf(stderr, "usage: fc_drive start|alive|mmds|stop|orphans "
	    "-p PROJECT "
	    "[options]\n");
	exit(2);
}

static char *
slurp(const char *path)
{
	char err[256], *data = NULL;
	size_t len;

	if (read_file(path, 4 * 1024 * 1024, &data, &len, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "fc_drive: %s\n", err);
		exit(1);
	}
	return data;
}

int
main(int argc, char **argv)
{
	const struct vmm_ops *ops = &vmm_firecracker_ops;
	struct prison_config cfg;
	struct vm_spec spec;
	struct vm_handle h = { 0, NULL };
	char err[1024] = "", *cmd, *json = NULL;
	int ch, timeout = 5, r = 1;

	if (argc < 2)
		usage();
	cmd = argv[1];
	argc--;
	argv++;
	memset(&spec, 0, sizeof(spec));
	spec.vcpus = 1;
	spec.mem_mib = 256;
	spec.prefix = 30;
	while ((ch = getopt(argc, argv, "p:d:t:m:k:i:D:u:g:c:M:a:j:T:")) !=
	    -1) {
		switch (ch) {
		case 'p': spec.project = optarg; break;
		case 'd': spec.vm_dir = optarg; break;
		case 't': spec.tap = optarg; break;
		case 'm': spec.mac = optarg; break;
		case 'k': spec.kernel = optarg; break;
		case 'i': spec.initrd = optarg; break;
		case 'D': spec.disk = optarg; break;
		case 'u': spec.uid = atoi(optarg); break;
		case 'g': spec.gid = atoi(optarg); break;
		case 'c': spec.vcpus = atoi(optarg); break;
		case 'M': spec.mem_mib = atoi(optarg); break;
		case 'a': spec.cmdline = optarg; break;
		case 'j': json = slurp(optarg); break;
		case 'T': timeout = atoi(optarg); break;
		default: usage();
		}
	}
	if (spec.project == NULL)
		usage();
	spec.mmds_json = json;
	if (config_load(NULL, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fc_drive: %s\n", err);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if (strcmp(cmd, "start") == 0) {
		if (ops->start(&cfg, &spec, &h, err, sizeof(err)) != 0)
			goto out;
		printf("pid=%ld socket=%s\n", (long)h.pid, h.api_socket);
		r = 0;
		goto out;
	}
	if (strcmp(cmd, "orphans") == 0) {
		printf("%d\n", ops->kill_orphans(&cfg, &spec));
		r = 0;
		goto out;
	}
	if (ops->adopt(&cfg, &spec, &h, err, sizeof(err)) != 0) {
		if (strcmp(cmd, "alive") == 0) {
			printf("0\n");
			r = 0;
		}
		goto out;
	}
	if (strcmp(cmd, "alive") == 0) {
		printf("%d\n", ops->alive(&h));
		r = 0;
	} else if (strcmp(cmd, "mmds") == 0) {
		if (json == NULL)
			usage();
		r = ops->mmds_update(&h, json, err, sizeof(err)) != 0;
	} else if (strcmp(cmd, "stop") == 0)
		r = ops->stop(&cfg, &h, timeout, err, sizeof(err)) != 0;
	else
		usage();
 out:
	if (r != 0 && err[0] != '\0')
		fprintf(stderr, "fc_drive: %s\n", err);
	free(h.api_socket);
	free(json);
	config_free(&cfg);
	return r;
}
