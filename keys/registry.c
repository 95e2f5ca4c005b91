/*
 * The registry file: parsing with a strict shape check, serialising, and
 * the locked read-modify-write cycle every change goes through.
 *
 * Writers take an exclusive flock on "<registry>.lock" (a separate file,
 * because the registry itself is replaced by rename and a lock on the old
 * inode would protect nothing), re-read the file under the lock, apply
 * one change and replace the file with atomic_write().  Readers never
 * lock: rename() guarantees they see the old or the new document whole.
 */
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "fileio.h"
#include "keyblob.h"
#include "log.h"
#include "names.h"
#include "registry.h"
#include "xmalloc.h"

#define REGISTRY_MAX_BYTES	(64 * 1024 * 1024)

/*
 * 0644: the registry holds only public keys and project settings, and
 * the gateway, which runs as an unprivileged user, must read it.
 */
#define REGISTRY_MODE		0644

static const char *const user_fields[] = { "name", "disabled", "keys",
    NULL };
static const char *const key_fields[] = { "type", "blob", "comment",
    "fingerprint", NULL };
static const char *const project_fields[] = { "name", "members",
    "ssh_port", "vcpus", "mem_mib", "image", "repo", "ref", "dev_user",
    "egress", "agent_forwarding", "upstream", NULL };

/* Refuse members we do not know: a rewrite would silently drop them. */
static int
check_fields(json_t *obj, const char *const *known, const char *where,
    char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(obj, k, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return seterr(err, errlen, "%s: unknown member \"%s\"",
			    where, k);
	}
	return 0;
}

/* A string member; absent or null gives dflt (which may be NULL). */
static int
get_str(json_t *obj, const char *key, const char *dflt, int nullable,
    char **out, const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (v != NULL && !nullable)
			return seterr(err, errlen, "%s.%s: must be a string",
			    where, key);
		if (dflt == NULL && !nullable)
			return seterr(err, errlen, "%s.%s: missing", where,
			    key);
		*out = dflt == NULL ? NULL : xstrdup(dflt);
		return 0;
	}
	if (!json_is_string(v))
		return seterr(err, errlen, "%s.%s: must be a string%s", where,
		    key, nullable ? " or null" : "");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return seterr(err, errlen, "%s.%s: contains a NUL byte", where,
		    key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int
get_int(json_t *obj, const char *key, int lo, int hi, int *out,
    const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return seterr(err, errlen, "%s.%s: must be an integer", where,
		    key);
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return seterr(err, errlen, "%s.%s: %lld is out of range "
		    "%d-%d", where, key, (long long)n, lo, hi);
	*out = (int)n;
	return 0;
}

static void
key_clear(struct reg_key *k)
{
	free(k->type);
	free(k->blob);
	free(k->comment);
	free(k->fingerprint);
}

static void
user_clear(struct reg_user *u)
{
	size_t i;

	free(u->name);
	for (i = 0; i < u->nkeys; i++)
		key_clear(&u->keys[i]);
	free(u->keys);
}

static void
project_clear(struct reg_project *p)
{
	size_t i;

	free(p->name);
	for (i = 0; i < p->nmembers; i++)
		free(p->members[i]);
	free(p->members);
	free(p->image);
	free(p->repo);
	free(p->ref);
	free(p->dev_user);
	free(p->upstream);
}

void
registry_free(struct registry *reg)
{
	size_t i;

	if (reg == NULL)
		return;
	for (i = 0; i < reg->nusers; i++)
		user_clear(&reg->users[i]);
	free(reg->users);
	for (i = 0; i < reg->nprojects; i++)
		project_clear(&reg->projects[i]);
	free(reg->projects);
	free(reg);
}

/*
 * A key is checked again on every load, as prisonctl checked it when it
 * was added: a hand-edited or damaged entry would otherwise never match
 * at login, or be logged under a fingerprint that is not its own.
 */
static int
check_key(const struct reg_key *k, const char *where, char *err,
    size_t errlen)
{
	char why[256], safe[64], *fp = NULL;
	int r = -1;

	if (keyblob_check(k->type, k->blob, NULL, &fp, why,
	    sizeof(why)) == -1) {
		seterr(err, errlen, "%s: %s", where, why);
		goto out;
	}
	if (strcmp(fp, k->fingerprint) != 0) {
		seterr(err, errlen, "%s: recorded fingerprint \"%s\" is not "
		    "the key's (%s)", where, log_safe(safe, sizeof(safe),
		    k->fingerprint), fp);
		goto out;
	}
	r = 0;
 out:
	free(fp);
	return r;
}

static int
parse_key(json_t *jk, struct reg_key *k, const char *where, char *err,
    size_t errlen)
{
	if (!json_is_object(jk))
		return seterr(err, errlen, "%s: must be an object", where);
	if (check_fields(jk, key_fields, where, err, errlen) == -1 ||
	    get_str(jk, "type", NULL, 0, &k->type, where, err, errlen) == -1 ||
	    get_str(jk, "blob", NULL, 0, &k->blob, where, err, errlen) == -1 ||
	    get_str(jk, "comment", "", 0, &k->comment, where, err,
	    errlen) == -1 ||
	    get_str(jk, "fingerprint", NULL, 0, &k->fingerprint, where, err,
	    errlen) == -1)
		return -1;
	if (*k->type == '\0' || *k->blob == '\0')
		return seterr(err, errlen, "%s: empty key type or blob", where);
	return check_key(k, where, err, errlen);
}

static int
parse_user(json_t *ju, struct reg_user *u, const char *where, char *err,
    size_t errlen)
{
	char kw[160], nerr[128];
	json_t *v, *jk;
	size_t i;

	if (!json_is_object(ju))
		return seterr(err, errlen, "%s: must be an object", where);
	if (check_fields(ju, user_fields, where, err, errlen) == -1 ||
	    get_str(ju, "name", NULL, 0, &u->name, where, err, errlen) == -1)
		return -1;
	if (name_valid_user(u->name, nerr, sizeof(nerr)) == -1)
		return seterr(err, errlen, "%s.name: %s", where, nerr);
	v = json_object_get(ju, "disabled");
	if (v != NULL && !json_is_boolean(v))
		return seterr(err, errlen, "%s.disabled: must be true or false",
		    where);
	u->disabled = v != NULL && json_is_true(v);
	v = json_object_get(ju, "keys");
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return seterr(err, errlen, "%s.keys: must be an array", where);
	u->keys = xcalloc(json_array_size(v) + 1, sizeof(*u->keys));
	json_array_foreach(v, i, jk) {
		snprintf(kw, sizeof(kw), "%s.keys[%zu] (user %s)", where, i,
		    u->name);
		u->nkeys++;
		if (parse_key(jk, &u->keys[i], kw, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static int
parse_members(json_t *v, struct reg_project *p, const char *where,
    char *err, size_t errlen)
{
	json_t *jm;
	size_t i, j;

	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return seterr(err, errlen, "%s.members: must be an array",
		    where);
	p->members = xcalloc(json_array_size(v) + 1, sizeof(*p->members));
	json_array_foreach(v, i, jm) {
		if (!json_is_string(jm))
			return seterr(err, errlen, "%s.members[%zu]: must be "
			    "a string", where, i);
		for (j = 0; j < p->nmembers; j++)
			if (strcmp(p->members[j], json_string_value(jm)) == 0)
				return seterr(err, errlen, "%s.members: \"%s\" "
				    "listed twice", where, p->members[j]);
		p->members[p->nmembers++] = xstrdup(json_string_value(jm));
	}
	return 0;
}

static int
parse_project(json_t *jp, struct reg_project *p, const char *where,
    char *err, size_t errlen)
{
	char nerr[128], *egress = NULL, *agent = NULL;
	int r = -1;

	if (!json_is_object(jp))
		return seterr(err, errlen, "%s: must be an object", where);
	if (check_fields(jp, project_fields, where, err, errlen) == -1 ||
	    get_str(jp, "name", NULL, 0, &p->name, where, err, errlen) == -1)
		return -1;
	if (name_valid_project(p->name, nerr, sizeof(nerr)) == -1)
		return seterr(err, errlen, "%s.name: %s", where, nerr);
	if (parse_members(json_object_get(jp, "members"), p, where, err,
	    errlen) == -1 ||
	    get_int(jp, "ssh_port", 0, 65535, &p->ssh_port, where, err,
	    errlen) == -1 ||
	    get_int(jp, "vcpus", 0, REG_MAX_VCPUS, &p->vcpus, where, err,
	    errlen) == -1 ||
	    get_int(jp, "mem_mib", 0, REG_MAX_MEM_MIB, &p->mem_mib, where,
	    err, errlen) == -1 ||
	    get_str(jp, "image", NULL, 1, &p->image, where, err,
	    errlen) == -1 ||
	    get_str(jp, "repo", NULL, 1, &p->repo, where, err, errlen) == -1 ||
	    get_str(jp, "ref", NULL, 1, &p->ref, where, err, errlen) == -1 ||
	    get_str(jp, "dev_user", "dev", 0, &p->dev_user, where, err,
	    errlen) == -1 ||
	    get_str(jp, "upstream", NULL, 1, &p->upstream, where, err,
	    errlen) == -1 ||
	    get_str(jp, "egress", "allow", 0, &egress, where, err,
	    errlen) == -1 ||
	    get_str(jp, "agent_forwarding", "default", 0, &agent, where, err,
	    errlen) == -1)
		goto out;
	if (strcmp(egress, "allow") == 0)
		p->egress_allow = 1;
	else if (strcmp(egress, "deny") == 0)
		p->egress_allow = 0;
	else {
		seterr(err, errlen, "%s.egress: must be \"allow\" or \"deny\"",
		    where);
		goto out;
	}
	if ((p->agent = registry_agent_parse(agent)) == -2) {
		seterr(err, errlen, "%s.agent_forwarding: must be \"allow\", "
		    "\"deny\" or \"default\"", where);
		goto out;
	}
	if (name_valid_user(p->dev_user, nerr, sizeof(nerr)) == -1) {
		seterr(err, errlen, "%s.dev_user: %s", where, nerr);
		goto out;
	}
	r = 0;
 out:
	free(egress);
	free(agent);
	return r;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Sorted copies of the names (or blobs) so duplicates sit side by side
 * and lookups are binary searches: the gateway loads the registry on
 * every login, and quadratic checks would hurt with thousands of keys.
 */
static const char **
sorted(const char **v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_str);
	return v;
}

static const char *
first_dup(const char **v, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (strcmp(v[i - 1], v[i]) == 0)
			return v[i];
	return NULL;
}

/* Relations between entries: unique names, keys, ports; known members. */
static int
check_consistency(const struct registry *reg, char *err, size_t errlen)
{
	const struct reg_project *p;
	const struct reg_key *k;
	const char **users = NULL, **blobs = NULL, **projs = NULL, *dup;
	size_t i, n, nkeys = 0;
	int *port_owner = NULL, r = -1;

	users = xcalloc(reg->nusers + 1, sizeof(*users));
	for (i = 0; i < reg->nusers; i++) {
		users[i] = reg->users[i].name;
		nkeys += reg->users[i].nkeys;
	}
	if ((dup = first_dup(sorted(users, reg->nusers), reg->nusers)) !=
	    NULL) {
		seterr(err, errlen, "user \"%s\" appears twice", dup);
		goto out;
	}
	blobs = xcalloc(nkeys + 1, sizeof(*blobs));
	for (i = nkeys = 0; i < reg->nusers; i++)
		for (n = 0; n < reg->users[i].nkeys; n++)
			blobs[nkeys++] = reg->users[i].keys[n].blob;
	if ((dup = first_dup(sorted(blobs, nkeys), nkeys)) != NULL) {
		registry_user_by_key(reg, NULL, dup, &k);
		seterr(err, errlen, "key %s is registered more than once",
		    k->fingerprint);
		goto out;
	}
	projs = xcalloc(reg->nprojects + 1, sizeof(*projs));
	port_owner = xcalloc(65536, sizeof(*port_owner));
	for (i = 0; i < reg->nprojects; i++) {
		p = &reg->projects[i];
		projs[i] = p->name;
		if (p->ssh_port != 0 && port_owner[p->ssh_port] != 0) {
			seterr(err, errlen, "projects \"%s\" and \"%s\" share "
			    "ssh_port %d",
			    reg->projects[port_owner[p->ssh_port] - 1].name,
			    p->name, p->ssh_port);
			goto out;
		}
		port_owner[p->ssh_port] = (int)i + 1;
		for (n = 0; n < p->nmembers; n++) {
			if (bsearch(&p->members[n], users, reg->nusers,
			    sizeof(*users), cmp_str) != NULL)
				continue;
			seterr(err, errlen, "project \"%s\": member \"%s\" is "
			    "not a user", p->name, p->members[n]);
			goto out;
		}
	}
	if ((dup = first_dup(sorted(projs, reg->nprojects),
	    reg->nprojects)) != NULL) {
		seterr(err, errlen, "project \"%s\" appears twice", dup);
		goto out;
	}
	r = 0;
 out:
	free(users);
	free(blobs);
	free(projs);
	free(port_owner);
	return r;
}

static int
parse_doc(json_t *root, struct registry *reg, char *err, size_t errlen)
{
	char where[64];
	json_t *v, *ju, *users, *projects;
	size_t i;

	if (!json_is_object(root))
		return seterr(err, errlen, "top level must be an object");
	v = json_object_get(root, "version");
	if (v == NULL || !json_is_integer(v))
		return seterr(err, errlen, "\"version\" is missing or not an "
		    "integer");
	if (json_integer_value(v) != REGISTRY_VERSION)
		return seterr(err, errlen, "unsupported version %lld (this "
		    "prison reads version %d)",
		    (long long)json_integer_value(v), REGISTRY_VERSION);
	users = json_object_get(root, "users");
	projects = json_object_get(root, "projects");
	if (json_object_size(root) !=
	    1 + (size_t)(users != NULL) + (size_t)(projects != NULL))
		return seterr(err, errlen, "unknown top-level member (expected "
		    "version, users, projects)");
	if (users != NULL && !json_is_array(users))
		return seterr(err, errlen, "\"users\" must be an array");
	if (projects != NULL && !json_is_array(projects))
		return seterr(err, errlen, "\"projects\" must be an array");
	reg->users = xcalloc(json_array_size(users) + 1, sizeof(*reg->users));
	json_array_foreach(users, i, ju) {
		snprintf(where, sizeof(where), "users[%zu]", i);
		reg->nusers++;
		if (parse_user(ju, &reg->users[i], where, err, errlen) == -1)
			return -1;
	}
	reg->projects = xcalloc(json_array_size(projects) + 1,
	    sizeof(*reg->projects));
	json_array_foreach(projects, i, ju) {
		snprintf(where, sizeof(where), "projects[%zu]", i);
		reg->nprojects++;
		if (parse_project(ju, &reg->projects[i], where, err,
		    errlen) == -1)
			return -1;
	}
	return check_consistency(reg, err, errlen);
}

int
registry_parse(const char *data, size_t len, const char *name,
    struct registry **regp, char *err, size_t errlen)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));
	json_error_t jerr;
	json_t *root = NULL;
	char why[256];
	int r = -1;

	*regp = NULL;
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		seterr(err, errlen, "%s: not valid JSON (line %d: %s); fix or "
		    "restore it, prison will not overwrite it", name,
		    jerr.line, jerr.text);
		goto out;
	}
	if (parse_doc(root, reg, why, sizeof(why)) == -1) {
		seterr(err, errlen, "%s: %s; fix or restore it, prison will "
		    "not overwrite it", name, why);
		goto out;
	}
	*regp = reg;
	reg = NULL;
	r = 0;
 out:
	json_decref(root);
	registry_free(reg);
	return r;
}

int
registry_load(const char *path, struct registry **regp, char *err,
    size_t errlen)
{
	char *data = NULL;
	size_t len = 0;
	int r;

	*regp = NULL;
	if (read_file(path, REGISTRY_MAX_BYTES, &data, &len, err,
	    errlen) == -1) {
		if (errno != ENOENT)
			return -1;
		*regp = xcalloc(1, sizeof(**regp));
		return 0;
	}
	r = registry_parse(data, len, path, regp, err, errlen);
	free(data);
	return r;
}

static json_t *
str_or_null(const char *s)
{
	return s == NULL ? json_null() : json_string(s);
}

json_t *
registry_key_json(const struct reg_key *k)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "type", k->type, "blob",
	    k->blob, "comment", k->comment ? k->comment : "", "fingerprint",
	    k->fingerprint);
}

json_t *
registry_user_json(const struct reg_user *u)
{
	json_t *keys = json_array();
	size_t i;

	for (i = 0; i < u->nkeys; i++)
		json_array_append_new(keys, registry_key_json(&u->keys[i]));
	return json_pack("{s:s, s:b, s:o}", "name", u->name, "disabled",
	    u->disabled, "keys", keys);
}

json_t *
registry_project_json(const struct reg_project *p)
{
	json_t *members = json_array();
	size_t i;

	for (i = 0; i < p->nmembers; i++)
		json_array_append_new(members, json_string(p->members[i]));
	return json_pack("{s:s, s:o, s:i, s:i, s:i, s:o, s:o, s:o, s:s, s:s, "
	    "s:s, s:o}", "name", p->name, "members", members, "ssh_port",
	    p->ssh_port, "vcpus", p->vcpus, "mem_mib", p->mem_mib, "image",
	    str_or_null(p->image), "repo", str_or_null(p->repo), "ref",
	    str_or_null(p->ref), "dev_user", p->dev_user ? p->dev_user : "dev",
	    "egress", p->egress_allow ? "allow" : "deny", "agent_forwarding",
	    registry_agent_name(p->agent), "upstream",
	    str_or_null(p->upstream));
}

/* "allow", "deny", "default" to REG_AGENT_*; -2 for anything else. */
int
registry_agent_parse(const char *s)
{
	if (strcmp(s, "allow") == 0)
		return REG_AGENT_ALLOW;
	if (strcmp(s, "deny") == 0)
		return REG_AGENT_DENY;
	if (strcmp(s, "default") == 0)
		return REG_AGENT_DEFAULT;
	return -2;
}

const char *
registry_agent_name(int agent)
{
	return agent == REG_AGENT_ALLOW ? "allow" :
	    agent == REG_AGENT_DENY ? "deny" : "default";
}

json_t *
registry_to_json(const struct registry *reg)
{
	json_t *users = json_array(), *projects = json_array();
	size_t i;

	for (i = 0; i < reg->nusers; i++)
		json_array_append_new(users,
		    registry_user_json(&reg->users[i]));
	for (i = 0; i < reg->nprojects; i++)
		json_array_append_new(projects,
		    registry_project_json(&reg->projects[i]));
	return json_pack("{s:i, s:o, s:o}", "version", REGISTRY_VERSION,
	    "users", users, "projects", projects);
}

/*
 * A writer killed between creating its temporary file and renaming it
 * leaves the temporary behind.  Only lock holders create them, so under
 * the lock every one that exists is such an orphan.
 */
static void
remove_orphans(const char *path)
{
	char *pattern = xasprintf("%s.tmp.??????", path);
	glob_t g;
	size_t i;

	memset(&g, 0, sizeof(g));
	if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0)
		for (i = 0; i < g.gl_pathc; i++)
			unlink(g.gl_pathv[i]);
	globfree(&g);
	free(pattern);
}

int
registry_update(const char *path,
    int (*fn)(struct registry *, void *, char *, size_t), void *arg,
    char *err, size_t errlen)
{
	struct registry *reg = NULL;
	json_t *doc = NULL;
	char *lockfile = xasprintf("%s.lock", path), *text = NULL;
	char why[512], *dir = xstrdup(path);
	int lockfd = -1, r = -1;

	/* A fresh install has no state_dir yet. */
	if (mkdir_p(dirname(dir), 0755, err, errlen) == -1)
		goto out;
	if ((lockfd = lock_path(lockfile, 1, err, errlen)) == -1)
		goto out;
	remove_orphans(path);
	if (registry_load(path, &reg, err, errlen) == -1)
		goto out;
	if (fn(reg, arg, err, errlen) == -1)
		goto out;
	/* Never write what we could not read back. */
	if (check_consistency(reg, why, sizeof(why)) == -1) {
		seterr(err, errlen, "refusing to write %s: %s", path, why);
		goto out;
	}
	if ((doc = registry_to_json(reg)) == NULL ||
	    (text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) ==
	    NULL) {
		seterr(err, errlen, "%s: cannot serialise the registry", path);
		goto out;
	}
	/* json_dumps has no final newline; editors and cat like one. */
	{
		size_t len = strlen(text);
		char *nl = xmalloc(len + 2);

		memcpy(nl, text, len);
		nl[len] = '\n';
		nl[len + 1] = '\0';
		free(text);
		text = nl;
	}
	if (atomic_write(path, text, strlen(text), REGISTRY_MODE, err,
	    errlen) == -1)
		goto out;
	r = 0;
 out:
	if (lockfd != -1)
		close(lockfd);
	free(text);
	json_decref(doc);
	registry_free(reg);
	free(lockfile);
	free(dir);
	return r;
}

struct reg_user *
registry_user(const struct registry *reg, const char *name)
{
	size_t i;

	for (i = 0; reg != NULL && name != NULL && i < reg->nusers; i++)
		if (strcmp(reg->users[i].name, name) == 0)
			return &reg->users[i];
	return NULL;
}

struct reg_project *
registry_project(const struct registry *reg, const char *name)
{
	size_t i;

	for (i = 0; reg != NULL && name != NULL && i < reg->nprojects; i++)
		if (strcmp(reg->projects[i].name, name) == 0)
			return &reg->projects[i];
	return NULL;
}

/*
 * A key is identified by its blob alone: the type is inside the blob, so
 * comparing both only guards against a registry whose type field lies.
 */
struct reg_user *
registry_user_by_key(const struct registry *reg, const char *type,
    const char *blob, const struct reg_key **keyp)
{
	size_t i, j;

	if (keyp != NULL)
		*keyp = NULL;
	/* Callers holding a signature algorithm name mean the RSA key. */
	if (type != NULL && (strcmp(type, "rsa-sha2-256") == 0 ||
	    strcmp(type, "rsa-sha2-512") == 0))
		type = "ssh-rsa";
	for (i = 0; reg != NULL && blob != NULL && i < reg->nusers; i++) {
		for (j = 0; j < reg->users[i].nkeys; j++) {
			const struct reg_key *k = &reg->users[i].keys[j];

			if (strcmp(k->blob, blob) != 0 ||
			    (type != NULL && strcmp(k->type, type) != 0))
				continue;
			if (keyp != NULL)
				*keyp = k;
			return &reg->users[i];
		}
	}
	return NULL;
}

int
registry_is_member(const struct reg_project *p, const char *user)
{
	size_t i;

	for (i = 0; p != NULL && user != NULL && i < p->nmembers; i++)
		if (strcmp(p->members[i], user) == 0)
			return 1;
	return 0;
}

int
registry_may_access(const struct registry *reg, const char *project,
    const char *user)
{
	const struct reg_project *p = registry_project(reg, project);
	const struct reg_user *u = registry_user(reg, user);

	return p != NULL && u != NULL && !u->disabled &&
	    registry_is_member(p, user);
}
