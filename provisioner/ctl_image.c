/*
 * prisonctl image: build guest images and show where they are.
 *
 *   image build [NAME] [--release R] [--packages LIST] [--builder B]
 *               [--mirror URL] [--force]
 *   image path [NAME]        print kernel, initrd and rootfs paths
 *   image list [--json]      built images with release, kernel, date
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "image.h"
#include "log.h"
#include "xmalloc.h"

static int
usage(void)
{
	fprintf(stderr, "usage: prisonctl image build [NAME] [--release R] "
	    "[--packages LIST] [--builder auto|mmdebstrap|dnf] "
	    "[--mirror URL] [--force]\n"
	    "       prisonctl image path [NAME]\n"
	    "       prisonctl image list [--json]\n");
	return 2;
}

/* --opt VALUE or --opt=VALUE; returns the value or NULL. */
static const char *
opt_value(const char *opt, int argc, char **argv, int *i)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		return "";
	return argv[++*i];
}

static int
image_build_cmd(const struct prison_config *cfg, int argc, char **argv)
{
	struct image_build_opts o;
	static const char *opts[] = { "--release", "--packages", "--builder",
	    "--mirror", "--agent", "--files", NULL };
	const char **dst[6];
	const char *v;
	char err[1024];
	int i, j, r;

	memset(&o, 0, sizeof(o));
	dst[0] = &o.release;
	dst[1] = &o.packages;
	dst[2] = &o.builder;
	dst[3] = &o.mirror;
	dst[4] = &o.agent;
	dst[5] = &o.files_dir;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0) {
			o.force = 1;
			continue;
		}
		for (j = 0; opts[j] != NULL; j++) {
			if ((v = opt_value(opts[j], argc, argv, &i)) == NULL)
				continue;
			if (*v == '\0')
				return ctl_fail("image build: %s needs a "
				    "value", opts[j]);
			*dst[j] = v;
			break;
		}
		if (opts[j] != NULL)
			continue;
		if (argv[i][0] == '-') {
			ctl_fail("image build: unknown option \"%s\"",
			    argv[i]);
			return usage();
		}
		if (o.name != NULL) {
			ctl_fail("image build: more than one image name");
			return usage();
		}
		o.name = argv[i];
	}
	r = image_build(cfg, &o, err, sizeof(err));
	if (r == -1)
		return ctl_fail("image build: %s", err);
	v = o.name != NULL ? o.name : cfg->default_image;
	if (r == 1)
		printf("image %s is already built in %s/%s (--force "
		    "rebuilds it)\n", v, cfg->image_dir, v);
	else
		printf("image %s built in %s/%s\n", v, cfg->image_dir, v);
	return 0;
}

static int
image_path_cmd(const struct prison_config *cfg, int argc, char **argv)
{
	char *k = NULL, *i = NULL, *r = NULL, *x = NULL, err[1024];
	const char *name = argc > 0 ? argv[0] : cfg->default_image;

	if (argc > 1)
		return usage();
	if (image_paths(cfg, name, &k, &i, &r, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	printf("kernel %s\ninitrd %s\nrootfs %s\n", k, i ? i : "-", r);
	if (image_vmlinux(cfg, name, &x, err, sizeof(err)) == 0)
		printf("vmlinux %s\n", x);
	free(k);
	free(i);
	free(r);
	free(x);
	return 0;
}

static const char *
mstr(json_t *m, const char *key)
{
	const char *s = json_string_value(json_object_get(m, key));

	return s != NULL ? s : "-";
}

static int
image_list_cmd(const struct prison_config *cfg, int argc, char **argv)
{
	json_t *all = json_array(), *m;
	struct dirent *de;
	char *path;
	DIR *d;
	size_t i;
	int json = ctl_take_json(&argc, argv);

	if (argc > 0) {
		json_decref(all);
		return usage();
	}
	if ((d = opendir(cfg->image_dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (!image_name_valid(de->d_name))
				continue;
			path = xasprintf("%s/%s/manifest.json",
			    cfg->image_dir, de->d_name);
			if ((m = json_load_file(path, 0, NULL)) != NULL &&
			    json_is_object(m))
				json_array_append(all, m);
			json_decref(m);
			free(path);
		}
		closedir(d);
	}
	if (json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%-16s %-10s %-11s %-20s %s\n", "NAME", "RELEASE",
		    "BUILDER", "KERNEL", "BUILT");
		json_array_foreach(all, i, m)
			printf("%-16s %-10s %-11s %-20s %s\n",
			    mstr(m, "name"), mstr(m, "release"),
			    mstr(m, "builder"), mstr(m, "kernel_version"),
			    mstr(m, "build_time"));
	}
	json_decref(all);
	return 0;
}

int
ctl_image(const struct prison_config *cfg, int argc, char **argv)
{
	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "build") == 0)
		return image_build_cmd(cfg, argc - 1, argv + 1);
	if (strcmp(argv[0], "path") == 0)
		return image_path_cmd(cfg, argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0)
		return image_list_cmd(cfg, argc - 1, argv + 1);
	ctl_fail("image: unknown command \"%s\"", argv[0]);
	return usage();
}
