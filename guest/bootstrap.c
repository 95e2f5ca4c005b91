/*
 * First-boot work that may take long: cloning the project's repository
 * and running its bootstrap scripts.  Each step's output goes to
 * /var/log/prison-bootstrap.log; a failing step is logged and the next
 * one runs, so one broken script never leaves a guest half set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "fileio.h"
#include "log.h"
#include "xmalloc.h"

#define SCRIPT_DIR	GUEST_STATE_DIR "/bootstrap"

/* Run argv as pw (NULL: root) with output to fd out; exit status. */
static int
run_as(char *const argv[], const struct passwd *pw, int out, json_t *doc,
    char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	pid_t pid;
	int status;

	if ((pid = fork()) == -1)
		return seterr(err, errlen, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		if (out != -1) {
			dup2(out, 1);
			dup2(out, 2);
		}
		signal(SIGPIPE, SIG_DFL);
		if (doc != NULL) {
			json_object_foreach(json_object_get(doc, "env"), k, v)
				if (json_is_string(v))
					setenv(k, json_string_value(v), 1);
			setenv("PRISON_PROJECT", doc_str(doc, "project",
			    ""), 1);
			setenv("PRISON_DEV_USER", doc_str(doc, "dev_user",
			    "dev"), 1);
		}
		setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
		    "/usr/bin:/sbin:/bin", 1);
		if (pw != NULL) {
			if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
			    setgid(pw->pw_gid) == -1 ||
			    setuid(pw->pw_uid) == -1)
				_exit(126);
			setenv("HOME", pw->pw_dir, 1);
			setenv("USER", pw->pw_name, 1);
			setenv("LOGNAME", pw->pw_name, 1);
			if (chdir(pw->pw_dir) == -1)
				_exit(126);
		} else {
			setenv("HOME", "/root", 1);
			if (chdir("/") == -1)
				_exit(126);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			return seterr(err, errlen, "waitpid: %s",
			    strerror(errno));
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int
run_cmd(char *const argv[], int out, char *err, size_t errlen)
{
	return run_as(argv, NULL, out, NULL, err, errlen);
}

static void logline(FILE *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
logline(FILE *fp, const char *fmt, ...)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(fp, "=== %s ", when);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputc('\n', fp);
	fflush(fp);
}

static int
dir_empty_or_missing(const char *path)
{
	return rmdir(path) == 0 || errno == ENOENT;
}

static void
clone_repo(json_t *doc, const struct passwd *pw, FILE *log)
{
	const char *repo = doc_str(doc, "repo", NULL);
	const char *ref = doc_str(doc, "ref", NULL);
	char *wd = NULL, *parent = NULL, *slash, err[256];
	int fd = fileno(log), r;

	wd = xstrdup(doc_str(doc, "work_dir", NULL) != NULL ?
	    doc_str(doc, "work_dir", NULL) : "");
	if (*wd == '\0') {
		free(wd);
		wd = xasprintf("%s/work", pw->pw_dir);
	}
	parent = xstrdup(wd);
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent)
		*slash = '\0';
	if (mkdir_p(parent, 0755, err, sizeof(err)) == -1)
		logline(log, "work_dir: %s", err);
	if (repo == NULL) {
		if (mkdir(wd, 0755) == 0 && chown(wd, pw->pw_uid,
		    pw->pw_gid) == -1)
			logline(log, "work_dir: chown failed");
		goto out;
	}
	if (!dir_empty_or_missing(wd)) {
		logline(log, "clone: %s exists and is not empty; skipped",
		    wd);
		goto out;
	}
	/* The clone belongs to the developer: the parent must be theirs. */
	if (strncmp(parent, pw->pw_dir, strlen(pw->pw_dir)) == 0 &&
	    chown(parent, pw->pw_uid, pw->pw_gid) == -1)
		logline(log, "clone: cannot chown %s (%d)", parent, errno);
	{
		char *argv[] = { "git", "clone", "--", (char *)repo, wd,
		    NULL };

		logline(log, "clone %s: start", repo);
		r = run_as(argv, pw, fd, NULL, err, sizeof(err));
		logline(log, "clone: exit %d", r);
		if (r != 0)
			goto out;
	}
	if (ref != NULL) {
		char *argv[] = { "git", "-C", wd, "checkout", "-q",
		    (char *)ref, "--", NULL };

		r = run_as(argv, pw, fd, NULL, err, sizeof(err));
		logline(log, "checkout %s: exit %d", ref, r);
	}
 out:
	free(wd);
	free(parent);
}

static int
valid_script_name(const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0' || *s == '.' || strlen(s) > 64)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]) == NULL)
			return 0;
	}
	return 1;
}

static void
run_scripts(json_t *doc, FILE *log)
{
	json_t *list = json_object_get(doc, "bootstrap"), *s;
	const char *name, *body;
	char *path = NULL, err[256];
	size_t i;
	int r;

	if (mkdir_p(SCRIPT_DIR, 0700, err, sizeof(err)) == -1) {
		logline(log, "bootstrap: %s", err);
		return;
	}
	json_array_foreach(list, i, s) {
		name = json_string_value(json_object_get(s, "name"));
		body = json_string_value(json_object_get(s, "script"));
		if (!valid_script_name(name) || body == NULL) {
			logline(log, "bootstrap[%zu]: bad name or no script; "
			    "skipped", i);
			continue;
		}
		free(path);
		path = xasprintf("%s/%s", SCRIPT_DIR, name);
		if (atomic_write(path, body, strlen(body), 0700, err,
		    sizeof(err)) == -1) {
			logline(log, "bootstrap: %s", err);
			continue;
		}
		logline(log, "bootstrap %s: start", name);
		{
			char *argv[] = { strncmp(body, "#!", 2) == 0 ?
			    path : "/bin/sh", path, NULL };

			if (strncmp(body, "#!", 2) == 0)
				argv[1] = NULL;
			r = run_as(argv, NULL, fileno(log), doc, err,
			    sizeof(err));
		}
		logline(log, "bootstrap %s: exit %d", name, r);
		if (r != 0)
			log_warn("bootstrap script %s failed (exit %d); "
			    "going on", name, r);
	}
	free(path);
}

int
bootstrap_run(json_t *doc, char *err, size_t errlen)
{
	const char *user = doc_str(doc, "dev_user", "dev");
	struct passwd *pw;
	FILE *log;
	int fd;

	if ((fd = open(GUEST_BOOTSTRAP_LOG, O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0640)) == -1 || (log = fdopen(fd, "a")) == NULL)
		return seterr(err, errlen, "%s: %s", GUEST_BOOTSTRAP_LOG,
		    strerror(errno));
	if ((pw = getpwnam(user)) == NULL)
		logline(log, "no user %s; repository not cloned", user);
	else
		clone_repo(doc, pw, log);
	run_scripts(doc, log);
	logline(log, "bootstrap done");
	fclose(log);
	return 0;
}
