#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "log.h"
#include "xmalloc.h"

enum ctype { C_STR, C_INT, C_BOOL };

struct ckey {
	const char	*section;
	const char	*name;
	enum ctype	 type;
	size_t		 off;
	const char	*def;		/* NULL: derived after parsing */
	int		 min, max;
};

#define S(sec, key, field, def) \
	{ sec, key, C_STR, offsetof(struct prison_config, field), def, 0, 0 }
#define I(sec, key, field, def, lo, hi) \
	{ sec, key, C_INT, offsetof(struct prison_config, field), def, lo, hi }
#define BOOL(sec, key, field, def) \
	{ sec, key, C_BOOL, offsetof(struct prison_config, field), def, 0, 1 }

static const struct ckey ckeys[] = {
	S("paths", "state_dir", state_dir, "/var/lib/prison"),
	S("paths", "run_dir", run_dir, "/run/prison"),
	S("paths", "config_dir", config_dir, "/etc/prison"),
	S("paths", "registry", registry, NULL),
	S("paths", "image_dir", image_dir, NULL),
	S("paths", "disk_dir", disk_dir, NULL),
	S("paths", "vm_dir", vm_dir, NULL),
	S("paths", "provisioner_socket", provisioner_socket, NULL),
	S("paths", "known_hosts", known_hosts, NULL),
	S("paths", "host_key_ed25519", host_key_ed25519, NULL),
	S("paths", "host_key_rsa", host_key_rsa, NULL),
	S("paths", "client_key", client_key, NULL),
	S("paths", "libexec_dir", libexec_dir, "/usr/local/libexec/prison"),

	S("network", "pool", pool, "172.31.0.0/16"),
	S("network", "lan_interface", lan_interface, ""),
	S("network", "nft_table", nft_table, "prison"),
	S("network", "metadata_address", metadata_address, "169.254.169.254"),
	BOOL("network", "allow_dns", allow_dns, "no"),
	S("network", "nameservers", nameservers, ""),

	S("gateway", "listen", listen, "0.0.0.0:22"),
	S("gateway", "user", gateway_user, "prison"),
	I("gateway", "login_grace_time", login_grace_time, "30", 1, 600),
	I("gateway", "max_auth_tries", max_auth_tries, "6", 1, 100),
	I("gateway", "max_unauthenticated", max_unauthenticated, "64", 1,
	    100000),
	I("gateway", "max_failures_per_source", max_failures_per_source, "10",
	    1, 100000),
	I("gateway", "failure_window", failure_window, "300", 1, 86400),
	I("gateway", "keepalive_interval", keepalive_interval, "30", 0, 3600),
	S("gateway", "pam_service", pam_service, "prison"),
	BOOL("gateway", "second_factor", second_factor, "no"),
	BOOL("gateway", "agent_forwarding", agent_forwarding, "no"),

	S("provisioner", "vmm", vmm, "qemu"),
	S("provisioner", "accel", accel, "auto"),
	S("provisioner", "vmm_user", vmm_user, "prison-vm"),
	S("provisioner", "default_image", default_image, "debian"),
	I("provisioner", "default_vcpus", default_vcpus, "1", 1, 64),
	I("provisioner", "default_mem_mib", default_mem_mib, "1024", 256,
	    1048576),
	I("provisioner", "disk_size_mib", disk_size_mib, "4096", 512,
	    16777216),
	I("provisioner", "boot_timeout", boot_timeout, "300", 5, 3600),
	I("provisioner", "idle_timeout", idle_timeout, "0", 0, 604800),
	S("provisioner", "qemu_binary", qemu_binary, "qemu-system-x86_64"),
	S("provisioner", "firecracker_binary", firecracker_binary,
	    "/usr/local/bin/firecracker"),
	S("provisioner", "jailer_binary", jailer_binary,
	    "/usr/local/bin/jailer"),
	S("provisioner", "jailer_chroot", jailer_chroot, "/srv/jailer"),
};

struct parse_ctx {
	struct prison_config	*cfg;
	const char		*file;
	char			*err;
	size_t			 errlen;
	int			 failed;
};

static int
set_value(struct prison_config *cfg, const struct ckey *k, const char *val,
    char *err, size_t errlen)
{
	void *field = (char *)cfg + k->off;
	char *end = NULL;
	long n;

	switch (k->type) {
	case C_STR:
		free(*(char **)field);
		*(char **)field = xstrdup(val);
		return 0;
	case C_BOOL:
		if (!strcmp(val, "yes") || !strcmp(val, "true") ||
		    !strcmp(val, "1") || !strcmp(val, "on"))
			*(int *)field = 1;
		else if (!strcmp(val, "no") || !strcmp(val, "false") ||
		    !strcmp(val, "0") || !strcmp(val, "off"))
			*(int *)field = 0;
		else
			return seterr(err, errlen, "%s: expected yes or no, "
			    "got \"%s\"", k->name, val);
		return 0;
	case C_INT:
		errno = 0;
		n = strtol(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' ||
		    n < k->min || n > k->max)
			return seterr(err, errlen, "%s: expected an integer "
			    "from %d to %d, got \"%s\"", k->name, k->min,
			    k->max, val);
		*(int *)field = (int)n;
		return 0;
	}
	return -1;
}

/*
 * inih reports the line of the first handler failure as ini_parse_file's
 * return value, so the handler keeps only the reason.
 */
static int
on_setting(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse_ctx *ctx = user;
	char why[256];
	size_t i;

	if (ctx->failed)
		return 0;
	for (i = 0; i < sizeof(ckeys) / sizeof(ckeys[0]); i++) {
		if (strcmp(ckeys[i].section, section) != 0 ||
		    strcmp(ckeys[i].name, name) != 0)
			continue;
		if (set_value(ctx->cfg, &ckeys[i], value, why,
		    sizeof(why)) == -1) {
			seterr(ctx->err, ctx->errlen, "%s", why);
			ctx->failed = 1;
			return 0;
		}
		return 1;
	}
	seterr(ctx->err, ctx->errlen, "unknown setting \"%s\" in section "
	    "[%s]", name, section);
	ctx->failed = 1;
	return 0;
}

static void
derive(char **field, const char *dir, const char *leaf)
{
	if (*field == NULL)
		*field = xasprintf("%s/%s", dir, leaf);
}

int
config_load(const char *path, struct prison_config *cfg, char *err,
    size_t errlen)
{
	struct parse_ctx ctx = { cfg, NULL, err, errlen, 0 };
	int explicit = 1, r;
	size_t i;
	FILE *fp;

	memset(cfg, 0, sizeof(*cfg));
	if (path == NULL || *path == '\0')
		path = getenv("PRISON_CONFIG");
	if (path == NULL || *path == '\0') {
		path = PRISON_DEFAULT_CONFIG;
		explicit = 0;
	}
	for (i = 0; i < sizeof(ckeys) / sizeof(ckeys[0]); i++)
		if (ckeys[i].def != NULL &&
		    set_value(cfg, &ckeys[i], ckeys[i].def, err, errlen) == -1)
			fatal("built-in default for %s is invalid",
			    ckeys[i].name);

	ctx.file = path;
	if ((fp = fopen(path, "r")) == NULL) {
		if (errno != ENOENT || explicit) {
			seterr(err, errlen, "%s: cannot read configuration: %s",
			    path, strerror(errno));
			config_free(cfg);
			return -1;
		}
	} else {
		cfg->file = xstrdup(path);
		r = ini_parse_file(fp, on_setting, &ctx);
		fclose(fp);
		if (ctx.failed || r != 0) {
			char why[256];

			snprintf(why, sizeof(why), "%s", ctx.failed ? err :
			    "syntax error");
			seterr(err, errlen, "%s:%d: %s", path, r, why);
			config_free(cfg);
			return -1;
		}
	}

	derive(&cfg->registry, cfg->state_dir, "registry.json");
	derive(&cfg->image_dir, cfg->state_dir, "images");
	derive(&cfg->disk_dir, cfg->state_dir, "disks");
	derive(&cfg->vm_dir, cfg->state_dir, "vms");
	derive(&cfg->known_hosts, cfg->state_dir, "known_hosts");
	derive(&cfg->provisioner_socket, cfg->run_dir, "provisioner.sock");
	derive(&cfg->host_key_ed25519, cfg->config_dir, "ssh_host_ed25519_key");
	derive(&cfg->host_key_rsa, cfg->config_dir, "ssh_host_rsa_key");
	derive(&cfg->client_key, cfg->config_dir,
	    "gateway_client_ed25519_key");
	return 0;
}

void
config_free(struct prison_config *cfg)
{
	size_t i;

	for (i = 0; i < sizeof(ckeys) / sizeof(ckeys[0]); i++)
		if (ckeys[i].type == C_STR) {
			char **p = (char **)((char *)cfg + ckeys[i].off);

			free(*p);
			*p = NULL;
		}
	free(cfg->file);
	cfg->file = NULL;
}

void
config_dump(const struct prison_config *cfg, void *stream)
{
	const char *section = "";
	FILE *fp = stream;
	size_t i;

	for (i = 0; i < sizeof(ckeys) / sizeof(ckeys[0]); i++) {
		const struct ckey *k = &ckeys[i];
		const void *field = (const char *)cfg + k->off;

		if (strcmp(section, k->section) != 0) {
			fprintf(fp, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		if (k->type == C_STR)
			fprintf(fp, "%s = %s\n", k->name,
			    *(char *const *)field ? *(char *const *)field : "");
		else if (k->type == C_BOOL)
			fprintf(fp, "%s = %s\n", k->name,
			    *(const int *)field ? "yes" : "no");
		else
			fprintf(fp, "%s = %d\n", k->name, *(const int *)field);
	}
}
