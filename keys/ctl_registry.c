/*
 * prisonctl user, project and keys: every change goes through
 * registry_update(), so concurrent runs serialise on the registry lock and
 * a change either lands whole or not at all.  Input is validated before
 * the lock is taken where it can be; checks that need the registry
 * (existence, unique ports, one key = one developer) run under it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "fileio.h"
#include "keyparse.h"
#include "log.h"
#include "names.h"
#include "net.h"
#include "proto.h"
#include "registry.h"
#include "xmalloc.h"

#define REFRESH_TIMEOUT_MS	60000	/* a deleted project's VM is stopped */

/* authorized_keys options in front of every line `keys authorized` prints */
#define AUTHORIZED_OPTIONS	"restrict,pty"

/* One requested change: the command's arguments, checked by the fn. */
struct change {
	const char	*name;		/* user or project */
	const char	*other;		/* user for grant/revoke, fingerprint */
	struct reg_key	*keys;		/* key add */
	size_t		 nkeys;
	int		 flag;		/* disable: 1, enable: 0 */
	struct projopts	*opts;
};

/* project add/set options; has_* says the option was given. */
struct projopts {
	char		**members;
	size_t		  nmembers;
	int		  has_members;
	int		  has_port, port;
	int		  has_vcpus, vcpus;
	int		  has_mem, mem;
	int		  has_image, has_repo, has_ref, has_upstream;
	int		  has_dev_user, has_egress, egress;
	int		  has_agent, agent;
	char		 *image, *repo, *ref, *upstream, *dev_user;
	int		  listen_port;	/* the gateway's own port */
};

/*
 * Told here as well as at net up (which has the last word: a service
 * may start in between), so that a typo is caught when it is made.
 */
static int
port_in_use(int port)
{
	char err[256];
	int r;

	if ((r = net_port_listening(port, err, sizeof(err))) == -1)
		fprintf(stderr, "prisonctl: warning: cannot tell whether a "
		    "host process listens on port %d: %s\n", port, err);
	if (r != 1)
		return 0;
	return ctl_fail("--ssh-port %d: a host process listens on that TCP "
	    "port, and the DNAT would take it over; choose another port",
	    port);
}

static void
print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(j);
}

/*
 * Tell the provisioner that the registry changed, so running VMs get new
 * metadata.  A provisioner that is not running will read the registry
 * when it starts, so that case stays silent; other failures only warn,
 * because the change itself is already committed.
 */
static void
notify(const struct prison_config *cfg, const char *project)
{
	json_t *req = NULL, *reply = NULL;
	struct stat st;
	char err[512];

	if (cfg->provisioner_socket == NULL ||
	    stat(cfg->provisioner_socket, &st) == -1)
		return;
	req = json_pack("{s:s}", "op", "refresh");
	if (project != NULL)
		json_object_set_new(req, "project", json_string(project));
	if (proto_call(cfg->provisioner_socket, req, &reply, NULL, NULL,
	    REFRESH_TIMEOUT_MS, err, sizeof(err)) == -1) {
		if (errno != ECONNREFUSED && errno != ENOENT)
			fprintf(stderr, "prisonctl: warning: the change is "
			    "saved but the provisioner was not told: %s\n",
			    err);
	} else if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *e = json_string_value(json_object_get(reply,
		    "error"));

		fprintf(stderr, "prisonctl: warning: the change is saved but "
		    "the provisioner's refresh failed: %s\n",
		    e != NULL ? e : "no reason given");
	}
	json_decref(req);
	json_decref(reply);
}

static int
update(const struct prison_config *cfg,
    int (*fn)(struct registry *, void *, char *, size_t), struct change *c)
{
	char err[1024];

	if (registry_update(cfg->registry, fn, c, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	return 0;
}

static int
load(const struct prison_config *cfg, struct registry **reg)
{
	char err[1024];

	if (registry_load(cfg->registry, reg, err, sizeof(err)) == -1)
		return ctl_fail("%s", err);
	return 0;
}

static struct reg_user *
need_user(struct registry *reg, const char *name, char *err, size_t errlen)
{
	struct reg_user *u = registry_user(reg, name);

	if (u == NULL)
		seterr(err, errlen, "no user \"%s\"", name);
	return u;
}

static struct reg_project *
need_project(struct registry *reg, const char *name, char *err,
    size_t errlen)
{
	struct reg_project *p = registry_project(reg, name);

	if (p == NULL)
		seterr(err, errlen, "no project \"%s\"", name);
	return p;
}

static void
remove_member(struct reg_project *p, const char *user)
{
	size_t i;

	for (i = 0; i < p->nmembers; i++) {
		if (strcmp(p->members[i], user) != 0)
			continue;
		free(p->members[i]);
		memmove(&p->members[i], &p->members[i + 1],
		    (p->nmembers - i - 1) * sizeof(*p->members));
		p->nmembers--;
		return;
	}
}

static void
add_member(struct reg_project *p, const char *user)
{
	p->members = xreallocarray(p->members, p->nmembers + 1,
	    sizeof(*p->members));
	p->members[p->nmembers++] = xstrdup(user);
}

/* ---- user ---- */

static int
fn_user_add(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_user *u;

	if (registry_user(reg, c->name) != NULL)
		return seterr(err, errlen, "user \"%s\" already exists",
		    c->name);
	reg->users = xreallocarray(reg->users, reg->nusers + 1,
	    sizeof(*reg->users));
	u = &reg->users[reg->nusers++];
	memset(u, 0, sizeof(*u));
	u->name = xstrdup(c->name);
	return 0;
}

static int
fn_user_del(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_user *u;
	size_t i, idx;

	if ((u = need_user(reg, c->name, err, errlen)) == NULL)
		return -1;
	for (i = 0; i < reg->nprojects; i++)
		remove_member(&reg->projects[i], c->name);
	idx = (size_t)(u - reg->users);
	free(u->name);
	keyparse_free(u->keys, u->nkeys);
	memmove(u, u + 1, (reg->nusers - idx - 1) * sizeof(*u));
	reg->nusers--;
	return 0;
}

static int
fn_user_disable(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_user *u;

	if ((u = need_user(reg, c->name, err, errlen)) == NULL)
		return -1;
	u->disabled = c->flag;
	return 0;
}

static int
fn_key_add(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	const struct reg_user *holder;
	struct reg_user *u;
	struct reg_key *k;
	size_t i;

	if ((u = need_user(reg, c->name, err, errlen)) == NULL)
		return -1;
	for (i = 0; i < c->nkeys; i++) {
		holder = registry_user_by_key(reg, NULL, c->keys[i].blob,
		    NULL);
		if (holder == u)
			return seterr(err, errlen, "key %s is already "
			    "registered to %s", c->keys[i].fingerprint,
			    u->name);
		if (holder != NULL)
			return seterr(err, errlen, "key %s is already "
			    "registered to user \"%s\" (one key belongs to "
			    "one developer)", c->keys[i].fingerprint,
			    holder->name);
	}
	u->keys = xreallocarray(u->keys, u->nkeys + c->nkeys,
	    sizeof(*u->keys));
	for (i = 0; i < c->nkeys; i++) {
		k = &u->keys[u->nkeys++];
		k->type = xstrdup(c->keys[i].type);
		k->blob = xstrdup(c->keys[i].blob);
		k->comment = xstrdup(c->keys[i].comment);
		k->fingerprint = xstrdup(c->keys[i].fingerprint);
	}
	return 0;
}

static int
fn_key_del(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_user *u;
	size_t i;

	if ((u = need_user(reg, c->name, err, errlen)) == NULL)
		return -1;
	for (i = 0; i < u->nkeys; i++)
		if (strcmp(u->keys[i].fingerprint, c->other) == 0)
			break;
	if (i == u->nkeys)
		return seterr(err, errlen, "user \"%s\" has no key %s",
		    c->name, c->other);
	free(u->keys[i].type);
	free(u->keys[i].blob);
	free(u->keys[i].comment);
	free(u->keys[i].fingerprint);
	memmove(&u->keys[i], &u->keys[i + 1],
	    (u->nkeys - i - 1) * sizeof(*u->keys));
	u->nkeys--;
	return 0;
}

/* The whole of FILE, or of stdin for "-". */
static int
read_input(const char *path, char **data, size_t *len)
{
	char err[512];
	size_t cap = 0;
	int failed = 0;

	*data = NULL;
	*len = 0;
	if (strcmp(path, "-") != 0) {
		if (read_file(path, KEYPARSE_MAX_INPUT, data, len, err,
		    sizeof(err)) == -1)
			return ctl_fail("%s", err);
		return 0;
	}
	/* read(2), not stdio: no copy of a pasted secret in FILE buffers. */
	cap = KEYPARSE_MAX_INPUT + 1;
	*data = xmalloc(cap + 1);
	while (*len < cap) {
		ssize_t n = read(STDIN_FILENO, *data + *len, cap - *len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			failed = n == -1;
			break;
		}
		*len += (size_t)n;
	}
	if (failed || *len == cap) {
		freezero(*data, cap + 1);
		*data = NULL;
		return ctl_fail("standard input: %s", failed ?
		    strerror(errno) : "more than 1 MiB");
	}
	(*data)[*len] = '\0';
	return 0;
}

static int
user_key_add(const struct prison_config *cfg, int argc, char **argv)
{
	struct change c;
	const char *src = "command line";
	char err[512], *data = NULL;
	size_t len = 0, i;
	int r = 1;

	memset(&c, 0, sizeof(c));
	if (argc != 2 && !(argc == 3 && strcmp(argv[1], "-f") == 0))
		return ctl_fail("usage: user key add NAME KEYLINE | -f FILE");
	c.name = argv[0];
	if (argc == 3) {
		src = strcmp(argv[2], "-") == 0 ? "standard input" : argv[2];
		if (read_input(argv[2], &data, &len) != 0)
			return 1;
	} else {
		len = strlen(argv[1]);
		data = xstrdup(argv[1]);
		/* Do not leave a mistaken private key in our argv either. */
		explicit_bzero(argv[1], len);
	}
	if (keyparse_text(data, len, &c.keys, &c.nkeys, err,
	    sizeof(err)) == -1) {
		ctl_fail("%s: %s; nothing was changed", src, err);
		goto out;
	}
	if (update(cfg, fn_key_add, &c) != 0)
		goto out;
	for (i = 0; i < c.nkeys; i++)
		printf("%s\n", c.keys[i].fingerprint);
	notify(cfg, NULL);
	r = 0;
 out:
	if (data != NULL)
		freezero(data, len + 1);
	keyparse_free(c.keys, c.nkeys);
	return r;
}

static int
user_key_list(const struct prison_config *cfg, int argc, char **argv)
{
	struct registry *reg = NULL;
	const struct reg_user *u;
	json_t *arr;
	size_t i;
	int json = ctl_take_json(&argc, argv);

	if (argc != 1)
		return ctl_fail("usage: user key list NAME [--json]");
	if (load(cfg, &reg) != 0)
		return 1;
	if ((u = registry_user(reg, argv[0])) == NULL) {
		registry_free(reg);
		return ctl_fail("no user \"%s\"", argv[0]);
	}
	if (json) {
		arr = json_array();
		for (i = 0; i < u->nkeys; i++)
			json_array_append_new(arr,
			    registry_key_json(&u->keys[i]));
		print_json(arr);
	} else {
		for (i = 0; i < u->nkeys; i++)
			printf("%s %s %s\n", u->keys[i].type,
			    u->keys[i].fingerprint, u->keys[i].comment);
	}
	registry_free(reg);
	return 0;
}

static int
user_key(const struct prison_config *cfg, int argc, char **argv)
{
	struct change c;

	memset(&c, 0, sizeof(c));
	if (argc >= 1 && strcmp(argv[0], "add") == 0)
		return user_key_add(cfg, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return user_key_list(cfg, argc - 1, argv + 1);
	if (argc == 3 && strcmp(argv[0], "del") == 0) {
		c.name = argv[1];
		c.other = argv[2];
		if (update(cfg, fn_key_del, &c) != 0)
			return 1;
		notify(cfg, NULL);
		return 0;
	}
	return ctl_fail("usage: user key add NAME KEYLINE | -f FILE; "
	    "user key del NAME FINGERPRINT; user key list NAME [--json]");
}

static int
user_list(const struct prison_config *cfg, int argc, char **argv)
{
	struct registry *reg = NULL;
	json_t *arr;
	size_t i;
	int json = ctl_take_json(&argc, argv);

	if (argc != 0)
		return ctl_fail("usage: user list [--json]");
	if (load(cfg, &reg) != 0)
		return 1;
	if (json) {
		arr = json_array();
		for (i = 0; i < reg->nusers; i++)
			json_array_append_new(arr,
			    registry_user_json(&reg->users[i]));
		print_json(arr);
	} else {
		for (i = 0; i < reg->nusers; i++)
			printf("%-32s %3zu key%s%s\n", reg->users[i].name,
			    reg->users[i].nkeys,
			    reg->users[i].nkeys == 1 ? " " : "s",
			    reg->users[i].disabled ? "  disabled" : "");
	}
	registry_free(reg);
	return 0;
}

int
ctl_user(const struct prison_config *cfg, int argc, char **argv)
{
	int (*fn)(struct registry *, void *, char *, size_t) = NULL;
	struct change c;
	char err[256];

	memset(&c, 0, sizeof(c));
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return user_list(cfg, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "key") == 0)
		return user_key(cfg, argc - 1, argv + 1);
	if (argc != 2)
		goto usage;
	c.name = argv[1];
	if (strcmp(argv[0], "add") == 0) {
		if (name_valid_user(c.name, err, sizeof(err)) == -1)
			return ctl_fail("%s", err);
		fn = fn_user_add;
	} else if (strcmp(argv[0], "del") == 0)
		fn = fn_user_del;
	else if (strcmp(argv[0], "disable") == 0) {
		c.flag = 1;
		fn = fn_user_disable;
	} else if (strcmp(argv[0], "enable") == 0) {
		c.flag = 0;
		fn = fn_user_disable;
	} else
		goto usage;
	if (update(cfg, fn, &c) != 0)
		return 1;
	if (fn != fn_user_add)
		notify(cfg, NULL);
	return 0;
 usage:
	return ctl_fail("usage: user add|del|disable|enable NAME; user list "
	    "[--json]; user key add|del|list ...");
}

/* ---- project ---- */

static int
parse_num(const char *what, const char *s, int lo, int hi, int *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
		return ctl_fail("%s: \"%s\" is not a number from %d to %d",
		    what, s, lo, hi);
	*out = (int)v;
	return 0;
}

/* Free text handed to git or shown to users: no spaces, controls, -x. */
static int
check_word(const char *what, const char *s, size_t max)
{
	size_t i;

	if (*s == '\0')
		return ctl_fail("%s must not be empty", what);
	if (strlen(s) > max)
		return ctl_fail("%s is longer than %zu bytes", what, max);
	if (*s == '-')
		return ctl_fail("%s must not start with '-'", what);
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return ctl_fail("%s must not contain spaces or "
			    "control characters", what);
	return 0;
}

/* HOST:PORT or [IPv6]:PORT, HOST a DNS name or an IPv4 address. */
static int
check_upstream(const char *s)
{
	char host[256], six[16];
	const char *colon;
	size_t hlen, i;
	int port;

	if (*s == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL || (hlen = (size_t)(colon - s - 1)) == 0 ||
		    hlen >= sizeof(host))
			return ctl_fail("upstream \"%s\": want [IPV6]:PORT",
			    s);
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, six) != 1)
			return ctl_fail("upstream \"%s\": \"%s\" is not an "
			    "IPv6 address", s, host);
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (hlen = (size_t)(colon - s)) == 0 ||
		    hlen > 253)
			return ctl_fail("upstream \"%s\": want HOST:PORT", s);
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		for (i = 0; i < hlen; i++)
			if (strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-",
			    host[i]) == NULL)
				return ctl_fail("upstream \"%s\": \"%s\" is "
				    "not a host name or IPv4 address (write "
				    "IPv6 as [ADDR]:PORT)", s, host);
		if (host[0] == '-' || host[0] == '.' ||
		    strstr(host, "..") != NULL)
			return ctl_fail("upstream \"%s\": bad host name", s);
	}
	return parse_num("upstream port", colon + 1, 1, 65535, &port);
}

static int
listen_port(const struct prison_config *cfg)
{
	const char *c;

	if (cfg->listen == NULL || (c = strrchr(cfg->listen, ':')) == NULL)
		return 0;
	return atoi(c + 1);
}

static void
projopts_free(struct projopts *o)
{
	free(o->members);
}

/* "none" clears an optional setting with project set. */
static int
opt_clearable(const char *v, int is_set, char **out)
{
	*out = is_set && strcmp(v, "none") == 0 ? NULL : (char *)v;
	return *out == NULL;
}

static const char *const projopt_names[] = { "--member", "--ssh-port",
    "--vcpus", "--mem-mib", "--image", "--repo", "--ref", "--dev-user",
    "--egress", "--agent-forwarding", "--upstream", NULL };

static int
projopt_known(const char *opt)
{
	size_t i;

	for (i = 0; projopt_names[i] != NULL; i++)
		if (strcmp(opt, projopt_names[i]) == 0)
			return 1;
	return 0;
}

static int
parse_projopts(const struct prison_config *cfg, int argc, char **argv,
    int is_set, struct projopts *o)
{
	char err[256];
	const char *opt, *v;
	int i, lo;

	memset(o, 0, sizeof(*o));
	o->listen_port = listen_port(cfg);
	for (i = 0; i < argc; i += 2) {
		opt = argv[i];
		if (strncmp(opt, "--", 2) != 0)
			return ctl_fail("unexpected argument \"%s\"", opt);
		if (!projopt_known(opt))
			return ctl_fail("unknown option \"%s\"", opt);
		if (i + 1 >= argc)
			return ctl_fail("%s needs a value", opt);
		v = argv[i + 1];
		if (strcmp(opt, "--member") == 0) {
			o->members = xreallocarray(o->members,
			    o->nmembers + 1, sizeof(*o->members));
			o->members[o->nmembers++] = (char *)v;
			o->has_members = 1;
		} else if (strcmp(opt, "--ssh-port") == 0) {
			o->has_port = 1;
			lo = is_set ? 0 : 1;
			if (is_set && strcmp(v, "none") == 0)
				o->port = 0;
			else if (parse_num("--ssh-port", v, lo, 65535,
			    &o->port) != 0)
				return 1;
			if (o->port != 0 && o->port == o->listen_port)
				return ctl_fail("--ssh-port %d is the "
				    "gateway's own port", o->port);
			/* The DNAT takes the port on every host address:
			 * below 1024 it would hide the host's own sshd. */
			if (o->port != 0 && o->port < 1024)
				return ctl_fail("--ssh-port %d: direct ports "
				    "must be 1024 or above (ports below belong "
				    "to the host's own services)", o->port);
			if (o->port != 0 && port_in_use(o->port) != 0)
				return 1;
		} else if (strcmp(opt, "--vcpus") == 0) {
			o->has_vcpus = 1;
			if (parse_num("--vcpus", v, 1, REG_MAX_VCPUS,
			    &o->vcpus) != 0)
				return 1;
		} else if (strcmp(opt, "--mem-mib") == 0) {
			o->has_mem = 1;
			if (parse_num("--mem-mib", v, REG_MIN_MEM_MIB,
			    REG_MAX_MEM_MIB, &o->mem) != 0)
				return 1;
		} else if (strcmp(opt, "--image") == 0) {
			o->has_image = 1;
			if (!opt_clearable(v, is_set, &o->image) &&
			    name_valid_user(v, err, sizeof(err)) == -1)
				return ctl_fail("--image: image names follow "
				    "the user name grammar: %s", err);
		} else if (strcmp(opt, "--repo") == 0) {
			o->has_repo = 1;
			if (!opt_clearable(v, is_set, &o->repo) &&
			    check_word("--repo URL", v, 2048) != 0)
				return 1;
		} else if (strcmp(opt, "--ref") == 0) {
			o->has_ref = 1;
			if (!opt_clearable(v, is_set, &o->ref) &&
			    check_word("--ref", v, 255) != 0)
				return 1;
		} else if (strcmp(opt, "--dev-user") == 0) {
			o->has_dev_user = 1;
			o->dev_user = (char *)v;
			if (name_valid_user(v, err, sizeof(err)) == -1)
				return ctl_fail("--dev-user: %s", err);
			if (name_valid_project(v, err, sizeof(err)) == -1)
				return ctl_fail("--dev-user: \"%s\" is a "
				    "system account name", v);
		} else if (strcmp(opt, "--egress") == 0) {
			o->has_egress = 1;
			if (strcmp(v, "allow") == 0)
				o->egress = 1;
			else if (strcmp(v, "deny") == 0)
				o->egress = 0;
			else
				return ctl_fail("--egress: want allow or deny, "
				    "not \"%s\"", v);
		} else if (strcmp(opt, "--agent-forwarding") == 0) {
			o->has_agent = 1;
			if ((o->agent = registry_agent_parse(v)) == -2)
				return ctl_fail("--agent-forwarding: want allow, "
				    "deny or default, not \"%s\"", v);
		} else if (strcmp(opt, "--upstream") == 0) {
			o->has_upstream = 1;
			if (!opt_clearable(v, is_set, &o->upstream) &&
			    check_upstream(v) != 0)
				return 1;
		} else
			return ctl_fail("unknown option \"%s\"", opt);
	}
	return 0;
}

static void
set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v == NULL ? NULL : xstrdup(v);
}

/* Apply o to p; checks that need the whole registry happen here. */
static int
apply_projopts(struct registry *reg, struct reg_project *p,
    const struct projopts *o, char *err, size_t errlen)
{
	size_t i, j;

	for (i = 0; i < o->nmembers; i++) {
		if (registry_user(reg, o->members[i]) == NULL)
			return seterr(err, errlen, "--member: no user \"%s\"",
			    o->members[i]);
		for (j = 0; j < i; j++)
			if (strcmp(o->members[i], o->members[j]) == 0)
				return seterr(err, errlen, "--member \"%s\" "
				    "given twice", o->members[i]);
	}
	if (o->has_port && o->port != 0)
		for (i = 0; i < reg->nprojects; i++)
			if (&reg->projects[i] != p &&
			    reg->projects[i].ssh_port == o->port)
				return seterr(err, errlen, "--ssh-port %d is "
				    "already used by project \"%s\"", o->port,
				    reg->projects[i].name);
	if (o->has_members) {
		while (p->nmembers > 0)
			remove_member(p, p->members[0]);
		for (i = 0; i < o->nmembers; i++)
			add_member(p, o->members[i]);
	}
	if (o->has_port)
		p->ssh_port = o->port;
	if (o->has_vcpus)
		p->vcpus = o->vcpus;
	if (o->has_mem)
		p->mem_mib = o->mem;
	if (o->has_image)
		set_str(&p->image, o->image);
	if (o->has_repo)
		set_str(&p->repo, o->repo);
	if (o->has_ref)
		set_str(&p->ref, o->ref);
	if (o->has_upstream)
		set_str(&p->upstream, o->upstream);
	if (o->has_dev_user)
		set_str(&p->dev_user, o->dev_user);
	if (o->has_egress)
		p->egress_allow = o->egress;
	if (o->has_agent)
		p->agent = o->agent;
	return 0;
}

static int
fn_project_add(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_project *p;

	if (registry_project(reg, c->name) != NULL)
		return seterr(err, errlen, "project \"%s\" already exists",
		    c->name);
	reg->projects = xreallocarray(reg->projects, reg->nprojects + 1,
	    sizeof(*reg->projects));
	p = &reg->projects[reg->nprojects++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(c->name);
	p->dev_user = xstrdup("dev");
	p->egress_allow = 1;
	p->agent = REG_AGENT_DEFAULT;
	return apply_projopts(reg, p, c->opts, err, errlen);
}

static int
fn_project_set(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_project *p;

	if ((p = need_project(reg, c->name, err, errlen)) == NULL)
		return -1;
	return apply_projopts(reg, p, c->opts, err, errlen);
}

static int
fn_project_del(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_project *p;
	size_t idx;

	if ((p = need_project(reg, c->name, err, errlen)) == NULL)
		return -1;
	idx = (size_t)(p - reg->projects);
	while (p->nmembers > 0)
		remove_member(p, p->members[0]);
	p->nmembers = 0;
	free(p->members);
	p->members = NULL;
	free(p->name);
	free(p->image);
	free(p->repo);
	free(p->ref);
	free(p->dev_user);
	free(p->upstream);
	memmove(p, p + 1, (reg->nprojects - idx - 1) * sizeof(*p));
	reg->nprojects--;
	return 0;
}

static int
fn_project_grant(struct registry *reg, void *arg, char *err, size_t errlen)
{
	struct change *c = arg;
	struct reg_project *p;

	if ((p = need_project(reg, c->name, err, errlen)) == NULL ||
	    need_user(reg, c->other, err, errlen) == NULL)
		return -1;
	if (c->flag) {
		if (registry_is_member(p, c->other))
			return seterr(err, errlen, "\"%s\" is already a member "
			    "of \"%s\"", c->other, c->name);
		add_member(p, c->other);
	} else {
		if (!registry_is_member(p, c->other))
			return seterr(err, errlen, "\"%s\" is not a member of "
			    "\"%s\"", c->other, c->name);
		remove_member(p, c->other);
	}
	return 0;
}

static void
print_project(const struct reg_project *p)
{
	size_t i;

	printf("name:     %s\nmembers: ", p->name);
	for (i = 0; i < p->nmembers; i++)
		printf(" %s", p->members[i]);
	printf("\nssh_port: %d%s\n", p->ssh_port,
	    p->ssh_port == 0 ? " (none)" : "");
	printf("vcpus:    %d%s\n", p->vcpus, p->vcpus == 0 ? " (default)" : "");
	printf("mem_mib:  %d%s\n", p->mem_mib,
	    p->mem_mib == 0 ? " (default)" : "");
	printf("image:    %s\n", p->image ? p->image : "(default)");
	printf("repo:     %s\n", p->repo ? p->repo : "(none)");
	printf("ref:      %s\n", p->ref ? p->ref : "(default branch)");
	printf("dev_user: %s\n", p->dev_user);
	printf("egress:   %s\n", p->egress_allow ? "allow" : "deny");
	printf("agent:    %s%s\n", registry_agent_name(p->agent),
	    p->agent == REG_AGENT_DEFAULT ? " (the gateway's "
	    "agent_forwarding)" : "");
	printf("upstream: %s\n", p->upstream ? p->upstream : "(none: VM)");
}

static int
project_read(const struct prison_config *cfg, int argc, char **argv)
{
	struct registry *reg = NULL;
	const struct reg_project *p;
	json_t *arr;
	size_t i;
	int json = ctl_take_json(&argc, argv);

	if (strcmp(argv[0], "list") == 0 && argc != 1)
		return ctl_fail("usage: project list [--json]");
	if (strcmp(argv[0], "show") == 0 && argc != 2)
		return ctl_fail("usage: project show NAME [--json]");
	if (load(cfg, &reg) != 0)
		return 1;
	if (argc == 2) {
		if ((p = registry_project(reg, argv[1])) == NULL) {
			registry_free(reg);
			return ctl_fail("no project \"%s\"", argv[1]);
		}
		if (json)
			print_json(registry_project_json(p));
		else
			print_project(p);
	} else if (json) {
		arr = json_array();
		for (i = 0; i < reg->nprojects; i++)
			json_array_append_new(arr,
			    registry_project_json(&reg->projects[i]));
		print_json(arr);
	} else {
		for (i = 0; i < reg->nprojects; i++) {
			p = &reg->projects[i];
			printf("%-32s %zu member%s, port %d, egress %s%s%s\n",
			    p->name, p->nmembers, p->nmembers == 1 ? "" : "s",
			    p->ssh_port, p->egress_allow ? "allow" : "deny",
			    p->upstream ? ", upstream " : "",
			    p->upstream ? p->upstream : "");
		}
	}
	registry_free(reg);
	return 0;
}

int
ctl_project(const struct prison_config *cfg, int argc, char **argv)
{
	int (*fn)(struct registry *, void *, char *, size_t) = NULL;
	struct projopts o;
	struct change c;
	char err[256];
	int r;

	memset(&c, 0, sizeof(c));
	memset(&o, 0, sizeof(o));
	if (argc < 1)
		goto usage;
	if (strcmp(argv[0], "reset") == 0)
		return ctl_project_reset(cfg, argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0 || strcmp(argv[0], "show") == 0)
		return project_read(cfg, argc, argv);
	if (argc < 2)
		goto usage;
	c.name = argv[1];
	c.opts = &o;
	if (c.name[0] == '-')
		return ctl_fail("project %s: the project name comes first, "
		    "not \"%s\"", argv[0], c.name);
	if (strcmp(argv[0], "add") == 0 || strcmp(argv[0], "set") == 0) {
		fn = argv[0][0] == 'a' ? fn_project_add : fn_project_set;
		if (fn == fn_project_set && argc == 2)
			return ctl_fail("project set %s: no option given, "
			    "nothing to change", c.name);
		if (fn == fn_project_add &&
		    name_valid_project(c.name, err, sizeof(err)) == -1)
			return ctl_fail("%s", err);
		if (parse_projopts(cfg, argc - 2, argv + 2,
		    fn == fn_project_set, &o) != 0) {
			projopts_free(&o);
			return 1;
		}
	} else if (strcmp(argv[0], "del") == 0 && argc == 2)
		fn = fn_project_del;
	else if ((strcmp(argv[0], "grant") == 0 ||
	    strcmp(argv[0], "revoke") == 0) && argc == 3) {
		fn = fn_project_grant;
		c.other = argv[2];
		c.flag = argv[0][0] == 'g';
	} else
		goto usage;
	r = update(cfg, fn, &c);
	projopts_free(&o);
	if (r == 0)
		notify(cfg, c.name);
	if (r == 0 && fn == fn_project_del)
		r = ctl_project_retire(cfg, c.name);
	return r;
 usage:
	return ctl_fail("usage: project add|set NAME [OPTIONS]; project "
	    "grant|revoke NAME USER; project del|show|reset NAME; project "
	    "list [--json]");
}

/* ---- keys ---- */

int
ctl_keys(const struct prison_config *cfg, int argc, char **argv)
{
	struct registry *reg = NULL;
	const struct reg_project *p;
	const struct reg_user *u;
	size_t i, j;

	if (argc != 2 || strcmp(argv[0], "authorized") != 0)
		return ctl_fail("usage: keys authorized PROJECT");
	if (load(cfg, &reg) != 0)
		return 1;
	if ((p = registry_project(reg, argv[1])) == NULL) {
		registry_free(reg);
		return ctl_fail("no project \"%s\"", argv[1]);
	}
	for (i = 0; i < p->nmembers; i++) {
		if ((u = registry_user(reg, p->members[i])) == NULL ||
		    u->disabled)
			continue;
		for (j = 0; j < u->nkeys; j++)
			printf("%s %s %s %s%s%s\n", AUTHORIZED_OPTIONS,
			    u->keys[j].type, u->keys[j].blob, u->name,
			    *u->keys[j].comment ? ": " : "",
			    u->keys[j].comment);
	}
	registry_free(reg);
	return 0;
}
