/*
 * prisonctl vm list|stop|cleanup and prisonctl project reset: the
 * operator's view of running VMs.  Everything goes through the running
 * provisioner; cleanup also works when it is down, acting on the records
 * it left in vm_dir.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "disk.h"
#include "fileio.h"
#include "image.h"
#include "log.h"
#include "names.h"
#include "net.h"
#include "proto.h"
#include "registry.h"
#include "vm.h"
#include "vmm.h"
#include "xmalloc.h"

#define CTL_TIMEOUT_MS	(10 * 60 * 1000)

static int
call(const struct prison_config *cfg, json_t *req, json_t **reply,
    char *err, size_t errlen)
{
	int r;

	r = proto_call(cfg->provisioner_socket, req, reply, NULL, NULL,
	    CTL_TIMEOUT_MS, err, errlen);
	json_decref(req);
	return r;
}

static int
reply_failed(json_t *reply)
{
	if (json_is_true(json_object_get(reply, "ok")))
		return 0;
	ctl_fail("%s", json_string_value(json_object_get(reply, "error")) ?
	    json_string_value(json_object_get(reply, "error")) : "failed");
	return 1;
}

/* A string member for printing: "-" when absent or not a string. */
static const char *
jstr_or_dash(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s != NULL ? s : "-";
}

static void
print_uptime(json_int_t s)
{
	if (s >= 86400)
		printf("%5lldd%02lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		printf("%5lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		printf("%5lldm%02llds", s / 60, s % 60);
}

static int
vm_list_cmd(const struct prison_config *cfg, int json)
{
	json_t *reply = NULL, *vms, *v;
	char err[512];
	size_t i;

	if (call(cfg, json_pack("{s:s}", "op", "list"), &reply, err,
	    sizeof(err)) == -1)
		return ctl_fail("%s", err);
	if (reply_failed(reply)) {
		json_decref(reply);
		return 1;
	}
	vms = json_object_get(reply, "vms");
	if (json) {
		json_dumpf(vms, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(reply);
		return 0;
	}
	printf("%-20s %-9s %-15s %-15s %-5s %-8s %9s %s\n", "PROJECT",
	    "STATE", "ADDRESS", "TAP", "PORT", "PID", "UPTIME", "SESSIONS");
	json_array_foreach(vms, i, v) {
		printf("%-20s %-9s %-15s %-15s %-5lld %-8lld ",
		    jstr_or_dash(v, "project"), jstr_or_dash(v, "state"),
		    jstr_or_dash(v, "address"), jstr_or_dash(v, "tap"),
		    json_integer_value(json_object_get(v, "port")),
		    json_integer_value(json_object_get(v, "pid")));
		print_uptime(json_integer_value(json_object_get(v,
		    "uptime")));
		printf(" %lld\n", json_integer_value(json_object_get(v,
		    "sessions")));
	}
	json_decref(reply);
	return 0;
}

static int
vm_stop_cmd(const struct prison_config *cfg, const char *name)
{
	json_t *reply = NULL, *req;
	char err[512];
	int r;

	if (strcmp(name, "--all") == 0)
		req = json_pack("{s:s}", "op", "stop-all");
	else if (name_valid_project(name, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	else
		req = json_pack("{s:s,s:s}", "op", "stop", "project", name);
	if (call(cfg, req, &reply, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	if ((r = reply_failed(reply)) == 0) {
		if (json_object_get(reply, "stopped") != NULL)
			printf("stopped %lld VMs\n", json_integer_value(
			    json_object_get(reply, "stopped")));
		else
			printf("stopped %s\n", name);
	}
	json_decref(reply);
	return r;
}

/*
 * Without a provisioner: stop the VM a record in vm_dir names (after
 * checking the process really is that VM's VMM), kill any VMM of the
 * project no record names (a provisioner killed while starting it), and
 * release its TAP.
 */
static int
cleanup_one(const struct prison_config *cfg, const char *project)
{
	char *dir = vm_project_dir(cfg, project), err[512];
	char *path = xasprintf("%s/state.json", dir);
	static const char *names[] = { "qemu", "firecracker" };
	const struct vmm_ops *ops;
	size_t i;
	int n;
	struct vm_handle h;
	struct vm_spec spec;
	json_error_t jerr;
	json_t *st;
	int ret = 0;

	memset(&h, 0, sizeof(h));
	if ((st = json_load_file(path, 0, &jerr)) != NULL &&
	    (ops = vmm_lookup(json_string_value(json_object_get(st,
	    "vmm")))) != NULL) {
		memset(&spec, 0, sizeof(spec));
		spec.project = project;
		spec.vm_dir = dir;
		h.pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
		if (json_is_string(json_object_get(st, "api_socket")))
			h.api_socket = xstrdup(json_string_value(
			    json_object_get(st, "api_socket")));
		if (ops->adopt(cfg, &spec, &h, err, sizeof(err)) == 0) {
			printf("stopping %s (pid %ld)\n", project,
			    (long)h.pid);
			if (ops->stop(cfg, &h, 15, err, sizeof(err)) == -1)
				ret = ctl_fail("%s: %s", project, err);
		}
		free(h.api_socket);
	}
	json_decref(st);
	memset(&spec, 0, sizeof(spec));
	spec.project = project;
	spec.vm_dir = dir;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((ops = vmm_lookup(names[i])) != NULL &&
		    (n = ops->kill_orphans(cfg, &spec)) > 0)
			printf("killed %d unrecorded %s VMM(s) of %s\n", n,
			    names[i], project);
	if (ret == 0) {
		unlink(path);
		if (net_down(cfg, project, err, sizeof(err)) == -1)
			ret = ctl_fail("%s: %s", project, err);
	}
	free(path);
	free(dir);
	return ret;
}

static int
vm_cleanup_cmd(const struct prison_config *cfg)
{
	struct registry *reg = NULL;
	json_t *reply = NULL;
	struct dirent *de;
	char err[512];
	size_t i;
	DIR *d;
	int ret = 0;

	/* A running provisioner stops its VMs itself... */
	if (call(cfg, json_pack("{s:s}", "op", "stop-all"), &reply, err,
	    sizeof(err)) == 0) {
		if (reply_failed(reply)) {
			json_decref(reply);
			return 1;
		}
		printf("the provisioner stopped %lld VMs\n",
		    json_integer_value(json_object_get(reply, "stopped")));
		json_decref(reply);
	} else
		printf("the provisioner is not running (%s); cleaning up "
		    "from its records\n", err);

	/* ...and what a crash left behind goes here. */
	if ((d = opendir(cfg->vm_dir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' &&
			    name_valid_project(de->d_name, NULL, 0) == 0)
				ret |= cleanup_one(cfg, de->d_name);
		closedir(d);
	}
	if (registry_load(cfg->registry, &reg, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	for (i = 0; i < reg->nprojects; i++)
		if (net_down(cfg, reg->projects[i].name, err,
		    sizeof(err)) == -1)
			ret = ctl_fail("%s: %s", reg->projects[i].name, err);
	registry_free(reg);
	return ret;
}

int
ctl_vm(const struct prison_config *cfg, int argc, char **argv)
{
	int json = ctl_take_json(&argc, argv);

	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return vm_list_cmd(cfg, json);
	if (argc == 2 && strcmp(argv[0], "stop") == 0)
		return vm_stop_cmd(cfg, argv[1]);
	if (argc == 2 && strcmp(argv[0], "cleanup") == 0 &&
	    strcmp(argv[1], "--all") == 0)
		return vm_cleanup_cmd(cfg);
	fprintf(stderr, "usage: prisonctl vm list [--json]\n"
	    "       prisonctl vm stop NAME|--all\n"
	    "       prisonctl vm cleanup --all\n");
	return 2;
}

/* 1 when the project's VM runs, 0 when not, -1 when unknown. */
static int
vm_running(const struct prison_config *cfg, const char *project)
{
	json_t *reply = NULL;
	char err[512], *path;
	const char *state;
	int r;

	if (call(cfg, json_pack("{s:s,s:s}", "op", "status", "project",
	    project), &reply, err, sizeof(err)) == 0) {
		state = json_string_value(json_object_get(json_object_get(
		    reply, "vm"), "state"));
		r = state == NULL ? -1 : strcmp(state, "stopped") != 0;
		json_decref(reply);
		return r;
	}
	/* No provisioner: a record means a VM may still run. */
	path = xasprintf("%s/%s/state.json", cfg->vm_dir, project);
	r = access(path, F_OK) == 0;
	free(path);
	return r;
}

int
ctl_project_reset(const struct prison_config *cfg, int argc, char **argv)
{
	struct registry *reg = NULL;
	const struct reg_project *p;
	char err[512], *image = NULL, *rootfs = NULL;
	int r, created;

	if (argc != 1) {
		fprintf(stderr, "usage: prisonctl project reset NAME\n");
		return 2;
	}
	if (name_valid_project(argv[0], err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	if (registry_load(cfg->registry, &reg, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	if ((p = registry_project(reg, argv[0])) != NULL)
		image = xstrdup(p->image != NULL ? p->image :
		    cfg->default_image);
	registry_free(reg);
	if (image == NULL)
		return ctl_fail("unknown project \"%s\"", argv[0]);
	if ((r = vm_running(cfg, argv[0])) != 0) {
		free(image);
		return ctl_fail("%s: the VM %s; stop it first with "
		    "prisonctl vm stop %s", argv[0], r == 1 ? "is running" :
		    "state is unknown", argv[0]);
	}
	if (disk_remove(cfg, argv[0], err, sizeof(err)) == -1) {
		free(image);
		return ctl_fail("%s", err);
	}
	/* Made afresh now, so a missing image or a full disk shows here
	 * rather than at the next login. */
	r = image_paths(cfg, image, NULL, NULL, &rootfs, err, sizeof(err));
	if (r == 0)
		r = disk_ensure(cfg, argv[0], rootfs, &created, err,
		    sizeof(err));
	if (r == -1)
		ctl_fail("%s: disk removed, but a new one cannot be made yet "
		    "(the next start tries again): %s", argv[0], err);
	else
		printf("%s: disk re-created from image %s\n", argv[0], image);
	free(rootfs);
	free(image);
	return r == 0 ? 0 : 1;
}

/* Move path to DIR/deleted/LEAF.STAMP[SUFFIX]; absent is not an error. */
static int
set_aside(const char *path, const char *dir, const char *leaf,
    const char *stamp, const char *suffix, char **to, char *err,
    size_t errlen)
{
	char *aside = xasprintf("%s/deleted", dir);
	int ret = -1;

	*to = NULL;
	if (access(path, F_OK) == -1) {
		ret = 0;
		goto out;
	}
	if (mkdir_p(aside, 0700, err, errlen) == -1)
		goto out;
	*to = xasprintf("%s/%s.%s%s", aside, leaf, stamp, suffix);
	if (rename(path, *to) == -1) {
		seterr(err, errlen, "%s: cannot move aside: %s", path,
		    strerror(errno));
		free(*to);
		*to = NULL;
		goto out;
	}
	ret = 0;
 out:
	free(aside);
	return ret;
}

int
ctl_project_retire(const struct prison_config *cfg, const char *project)
{
	char err[512], stamp[32], *disk = NULL, *vmdir = NULL, *to = NULL;
	time_t now = time(NULL);
	int ret = 1, running;

	/* The provisioner stops a deleted project's VM when told of the
	 * deletion; one still running means it was not told.  Its files
	 * are set aside all the same (the VM keeps the open disk). */
	running = vm_running(cfg, project) == 1;
	if (running)
		fprintf(stderr, "prisonctl: warning: %s's VM still runs; "
		    "stop it with prisonctl vm cleanup --all\n", project);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
	disk = disk_path(cfg, project);
	if (set_aside(disk, cfg->disk_dir, project, stamp, ".ext4", &to, err,
	    sizeof(err)) == -1)
		goto out;
	if (to != NULL)
		printf("%s: disk kept as %s (delete it to free the space)\n",
		    project, to);
	free(to);
	vmdir = xasprintf("%s/%s", cfg->vm_dir, project);
	if (set_aside(vmdir, cfg->vm_dir, project, stamp, "", &to, err,
	    sizeof(err)) == -1)
		goto out;
	if (!running && net_release(cfg, project, err, sizeof(err)) == -1)
		goto out;
	ret = 0;
 out:
	if (ret != 0)
		ctl_fail("%s: deleted from the registry, but %s", project, err);
	free(to);
	free(vmdir);
	free(disk);
	return ret;
}
