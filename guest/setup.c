/*
 * Turning the metadata document into the guest's configuration.  Files
 * are replaced atomically so sshd never reads half an authorized_keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "fileio.h"
#include "log.h"
#include "xmalloc.h"

const char *
doc_str(json_t *doc, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(doc, key));

	return v != NULL && *v != '\0' ? v : def;
}

int
valid_user_name(const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 32 ||
	    !((*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-'))
			return 0;
	}
	return strcmp(s, "root") != 0;
}

static int
valid_env_key(const char *s)
{
	size_t i;

	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
	    *s == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return 1;
}

/* Append KEY='value' with the value quoted for sh. */
static void
env_line(char **out, const char *key, const char *val)
{
	size_t n = strlen(*out) + strlen(key) + 4, i;
	char *p;

	for (i = 0; val[i] != '\0'; i++)
		n += val[i] == '\'' ? 4 : 1;
	*out = xreallocarray(*out, 1, n + 1);
	p = *out + strlen(*out);
	p += sprintf(p, "%s='", key);
	for (i = 0; val[i] != '\0'; i++) {
		if (val[i] == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = val[i];
	}
	strcpy(p, "'\n");
}

int
setup_env_file(json_t *doc, char *err, size_t errlen)
{
	const char *user = doc_str(doc, "dev_user", "dev"), *k;
	char *s = xstrdup(""), *wd = NULL;
	json_t *env, *v;
	int ret;

	wd = xasprintf("/home/%s/work", user);
	env_line(&s, "PRISON_PROJECT", doc_str(doc, "project", ""));
	env_line(&s, "PRISON_DEV_USER", user);
	env_line(&s, "PRISON_WORK_DIR", doc_str(doc, "work_dir", wd));
	env_line(&s, "PRISON_REPO", doc_str(doc, "repo", ""));
	env_line(&s, "PRISON_REF", doc_str(doc, "ref", ""));
	env = json_object_get(doc, "env");
	json_object_foreach(env, k, v) {
		if (!json_is_string(v) || !valid_env_key(k) ||
		    strncmp(k, "PRISON_", 7) == 0) {
			log_warn("env: skipping invalid or reserved key");
			continue;
		}
		env_line(&s, k, json_string_value(v));
	}
	if (mkdir_p("/etc/prison", 0755, err, errlen) == -1)
		ret = -1;
	else
		ret = atomic_write(GUEST_ENV_FILE, s, strlen(s), 0644, err,
		    errlen);
	free(s);
	free(wd);
	return ret;
}

int
setup_user(const char *user, char *err, size_t errlen)
{
	const char *shell = access("/bin/bash", X_OK) == 0 ? "/bin/bash" :
	    "/bin/sh";
	char *ua[] = { "useradd", "-m", "-U", "-s", (char *)shell,
	    (char *)user, NULL };
	char *lk[] = { "passwd", "-l", (char *)user, NULL };
	char *sudo = NULL;
	int null, r;

	if (!valid_user_name(user))
		return seterr(err, errlen, "invalid dev_user \"%s\"", user);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (getpwnam(user) == NULL &&
	    (r = run_cmd(ua, null, err, errlen)) != 0) {
		if (r > 0)
			seterr(err, errlen, "useradd %s failed (exit %d)",
			    user, r);
		close(null);
		return -1;
	}
	/* Keys only: the password can never be used. */
	run_cmd(lk, null, err, errlen);
	close(null);
	sudo = xasprintf("# prison: the project's developer user\n"
	    "%s ALL=(ALL:ALL) NOPASSWD: ALL\n", user);
	r = mkdir_p("/etc/sudoers.d", 0750, err, errlen);
	if (r == 0)
		r = atomic_write(GUEST_SUDOERS, sudo, strlen(sudo), 0440,
		    err, errlen);
	free(sudo);
	return r;
}

static int
one_line(const char *s)
{
	return s != NULL && *s != '\0' && strpbrk(s, "\r\n") == NULL;
}

static char *
keys_text(json_t *doc)
{
	json_t *list = json_object_get(doc, "authorized_keys"), *v;
	const char *gw = doc_str(doc, "gateway_key", NULL);
	char *s = xstrdup("# managed by prison-guest from metadata; "
	    "edits are replaced\n"), *n;
	size_t i;

	json_array_foreach(list, i, v) {
		if (!one_line(json_string_value(v))) {
			log_warn("authorized_keys[%zu]: not one line; "
			    "skipped", i);
			continue;
		}
		n = xasprintf("%s%s\n", s, json_string_value(v));
		free(s);
		s = n;
	}
	if (gw != NULL && one_line(gw)) {
		n = xasprintf("%s%s\n", s, gw);
		free(s);
		s = n;
	}
	return s;
}

int
setup_authorized_keys(json_t *doc, const char *user, char *err,
    size_t errlen)
{
	struct passwd *pw;
	char *dir = NULL, *path = NULL, *want = NULL, *have = NULL;
	size_t len;
	int ret = -1;

	if ((pw = getpwnam(user)) == NULL)
		return seterr(err, errlen, "no user %s", user);
	dir = xasprintf("%s/.ssh", pw->pw_dir);
	path = xasprintf("%s/authorized_keys", dir);
	want = keys_text(doc);
	if (read_file(path, 4 * 1024 * 1024, &have, &len, NULL, 0) == 0 &&
	    strcmp(have, want) == 0) {
		ret = 0;
		goto out;
	}
	if (mkdir_p(dir, 0700, err, errlen) == -1)
		goto out;
	if (chown(dir, pw->pw_uid, pw->pw_gid) == -1 ||
	    chmod(dir, 0700) == -1) {
		seterr(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (atomic_write(path, want, strlen(want), 0600, err, errlen) == -1)
		goto out;
	if (chown(path, pw->pw_uid, pw->pw_gid) == -1) {
		seterr(err, errlen, "%s: chown: %s", path, strerror(errno));
		goto out;
	}
	ret = 1;
 out:
	free(dir);
	free(path);
	free(want);
	free(have);
	return ret;
}

static int
keygen(char *err, size_t errlen)
{
	char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "",
	    "-f", GUEST_HOST_KEY, NULL };
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC), r;

	unlink(GUEST_HOST_KEY);
	unlink(GUEST_HOST_KEY ".pub");
	r = run_cmd(argv, null, err, errlen);
	close(null);
	return r == 0 ? 0 : -1;
}

/*
 * The project's host key comes from metadata so the host can pin it.
 * Without one (an old provisioner, a test) a fresh key keeps sshd up.
 */
int
setup_host_key(json_t *doc, char *err, size_t errlen)
{
	json_t *hk = json_object_get(doc, "ssh_host_key");
	const char *priv = json_string_value(json_object_get(hk, "private"));
	const char *pub = json_string_value(json_object_get(hk, "public"));
	char *p = NULL, *q = NULL;
	int r = -1;

	if (priv == NULL || pub == NULL ||
	    strstr(priv, "PRIVATE KEY-----") == NULL ||
	    strncmp(pub, "ssh-ed25519 ", 12) != 0 || !one_line(pub)) {
		if (access(GUEST_HOST_KEY, R_OK) == 0)
			return 0;
		log_warn("metadata has no usable ssh_host_key; generating "
		    "a host key");
		return keygen(err, errlen);
	}
	/* OpenSSH wants the PEM block to end with a newline. */
	p = xasprintf("%s%s", priv, priv[strlen(priv) - 1] == '\n' ? "" :
	    "\n");
	q = xasprintf("%s\n", pub);
	if (atomic_write(GUEST_HOST_KEY, p, strlen(p), 0600, err,
	    errlen) == 0 &&
	    atomic_write(GUEST_HOST_KEY ".pub", q, strlen(q), 0644, err,
	    errlen) == 0)
		r = 0;
	freezero(p, strlen(p));
	free(q);
	return r;
}

static int
valid_hostname(const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 63 || *s == '-')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	}
	return 1;
}

int
setup_hostname(json_t *doc, const char *fallback, char *err, size_t errlen)
{
	const char *h = doc_str(doc, "hostname", doc_str(doc, "project",
	    fallback));
	char *line = NULL, *hosts = NULL;
	int r;

	if (!valid_hostname(h))
		return seterr(err, errlen, "invalid hostname \"%s\"",
		    h == NULL ? "" : h);
	line = xasprintf("%s\n", h);
	hosts = xasprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
	    "::1\t\tlocalhost ip6-localhost ip6-loopback\n", h);
	if ((r = atomic_write("/etc/hostname", line, strlen(line), 0644,
	    err, errlen)) == 0)
		r = atomic_write("/etc/hosts", hosts, strlen(hosts), 0644,
		    err, errlen);
	if (r == 0 && sethostname(h, strlen(h)) == -1)
		r = seterr(err, errlen, "sethostname: %s", strerror(errno));
	free(line);
	free(hosts);
	return r;
}

int
setup_resolver(json_t *doc, const char *gw, char *err, size_t errlen)
{
	char *s = resolv_conf_text(doc, gw);
	int r;

	/* Often a symlink (to systemd-resolved's stub): replace it. */
	unlink("/etc/resolv.conf");
	r = atomic_write("/etc/resolv.conf", s, strlen(s), 0644, err, errlen);
	free(s);
	return r;
}
