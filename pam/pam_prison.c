/*
 * pam_prison.so: prison's access rule for any PAM-aware front door.
 *
 * account: PAM_USER names a project.  The developer behind the request
 * is found from the public key OpenSSH authenticated (SSH_AUTH_INFO_0 in
 * the PAM environment, present when sshd runs with ExposeAuthInfo yes)
 * or, with the trust_env option that only the gateway's own service may
 * use, from PRISON_DEVELOPER.  Access is granted when the developer is a
 * member of the project and not disabled (registry_may_access()).
 *
 * session: applies the same rule unless this handle's account phase
 * already did (sshd fills SSH_AUTH_INFO_0 only after its account phase,
 * see defer_to_session), then makes sure the project's VM runs by asking
 * the provisioner to "ensure" it, and keeps that connection open with
 * "hold" until the session closes, so the provisioner counts the session
 * and never stops the VM under it.  A failed ensure fails the session.
 *
 * auth: user=developer / user=project bracket second-factor modules so
 * they see the developer as PAM_USER (gateway only).
 *
 * Options: config=FILE, trust_env, defer_to_session, debug,
 * user=developer|project.  docs/pam.md has the stacks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include <jansson.h>

#include "authinfo.h"
#include "config.h"
#include "log.h"
#include "proto.h"
#include "registry.h"

#define HOLD_DATA	"pam_prison_hold"
#define PROJECT_DATA	"pam_prison_project"
#define CHECKED_DATA	"pam_prison_checked"	/* account allowed */

enum as_user { AS_NONE, AS_DEVELOPER, AS_PROJECT };

struct opts {
	const char	*config;	/* NULL: $PRISON_CONFIG or default */
	int		 trust_env;	/* PRISON_DEVELOPER is believed */
	int		 debug;
	enum as_user	 as;		/* auth: the user= switch */
	int		 defer;		/* account: session decides */
};

/* Everything one call needs, freed by ctx_free(). */
struct ctx {
	struct opts		 o;
	struct prison_config	 cfg;
	int			 cfg_loaded;
	struct registry		*reg;
	const char		*project;	/* PAM_USER */
	const char		*service;
	char			 rhost[64];	/* capped for logging */
	char			 proj_log[48];
};

/*
 * For messages that may carry text from elsewhere (the provisioner's
 * error): capped, control bytes replaced, spaces kept for readability.
 */
static char *
safe_text(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ?
		    '?' : src[i];
	if (dstlen > 0)
		dst[i] = '\0';
	return dst;
}

typedef int entry_fn(pam_handle_t *, int, int, const char **);

/* The handle and the way back of the entry point now running. */
static __thread pam_handle_t *cur_pamh;
static __thread jmp_buf *cur_exit;

/* prison's log lines, from code shared with the daemons, to syslog. */
static void
module_log(enum log_level lvl, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE,
	    LOG_INFO, LOG_DEBUG };

	if (cur_pamh != NULL)
		pam_syslog(cur_pamh, prio[lvl], "%s", msg);
	else
		syslog(LOG_AUTHPRIV | prio[lvl], "pam_prison: %s", msg);
}

static void
module_die(void)
{
	if (cur_exit != NULL)
		longjmp(*cur_exit, 1);
}

/*
 * Run an entry point so that fatal() in the shared code (out of memory
 * in xmalloc(), mostly) makes it fail with PAM_BUF_ERR instead of ending
 * sshd or the gateway.  What the entry point had allocated, or a
 * provisioner connection it had opened, is lost with it: a leak in a
 * process that is out of memory anyway, against killing it.
 */
static int
guarded(entry_fn *fn, pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	jmp_buf back;
	int rc;

	cur_pamh = pamh;
	log_set_hooks(module_log, module_die);
	if (setjmp(back) != 0) {
		rc = PAM_BUF_ERR;
		goto out;
	}
	cur_exit = &back;
	rc = fn(pamh, flags, argc, argv);
 out:
	cur_exit = NULL;
	cur_pamh = NULL;
	log_set_hooks(NULL, NULL);
	return rc;
}

static int
parse_opts(pam_handle_t *pamh, int argc, const char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "config=", 7) == 0 && argv[i][7] != '\0')
			o->config = argv[i] + 7;
		else if (strcmp(argv[i], "trust_env") == 0)
			o->trust_env = 1;
		else if (strcmp(argv[i], "debug") == 0)
			o->debug = 1;
		else if (strcmp(argv[i], "defer_to_session") == 0)
			o->defer = 1;
		else if (strcmp(argv[i], "user=developer") == 0)
			o->as = AS_DEVELOPER;
		else if (strcmp(argv[i], "user=project") == 0)
			o->as = AS_PROJECT;
		else {
			pam_syslog(pamh, LOG_ERR, "unknown option \"%s\"; "
			    "known: config=FILE trust_env debug "
			    "defer_to_session user=developer|project", argv[i]);
			return -1;
		}
	}
	return 0;
}

static void
ctx_free(struct ctx *c)
{
	registry_free(c->reg);
	c->reg = NULL;
	if (c->cfg_loaded)
		config_free(&c->cfg);
	c->cfg_loaded = 0;
}

/*
 * Parse options, read PAM_USER, the configuration and the registry.
 * Returns PAM_SUCCESS or the code to hand back (already logged).
 */
static int
ctx_init(pam_handle_t *pamh, int argc, const char **argv, struct ctx *c)
{
	const void *item = NULL;
	char err[512];

	memset(c, 0, sizeof(*c));
	if (parse_opts(pamh, argc, argv, &c->o) == -1)
		return PAM_SERVICE_ERR;
	if (pam_get_item(pamh, PAM_SERVICE, &item) != PAM_SUCCESS ||
	    item == NULL)
		item = "?";
	c->service = item;
	item = NULL;
	if (pam_get_item(pamh, PAM_RHOST, &item) != PAM_SUCCESS ||
	    item == NULL)
		item = "-";
	log_safe(c->rhost, sizeof(c->rhost), item);
	if (pam_get_user(pamh, &c->project, NULL) != PAM_SUCCESS ||
	    c->project == NULL || *c->project == '\0') {
		pam_syslog(pamh, LOG_ERR, "no user (project) name");
		return PAM_USER_UNKNOWN;
	}
	log_safe(c->proj_log, sizeof(c->proj_log), c->project);

	if (config_load(c->o.config, &c->cfg, err, sizeof(err)) == -1) {
		pam_syslog(pamh, LOG_ERR, "configuration: %s", err);
		return PAM_SERVICE_ERR;
	}
	c->cfg_loaded = 1;
	if (registry_load(c->cfg.registry, &c->reg, err, sizeof(err)) == -1) {
		pam_syslog(pamh, LOG_ERR, "registry: %s", err);
		return PAM_SERVICE_ERR;
	}
	return PAM_SUCCESS;
}

static void
free_data(pam_handle_t *pamh, void *data, int error_status)
{
	free(data);
}

/*
 * auth, for the gateway's stack only: second-factor modules such as
 * pam_oath look their secrets up by PAM_USER, which is the project, but
 * the secret belongs to the developer.  "user=developer" switches
 * PAM_USER to the developer the gateway named (trust_env required) and
 * "user=project" switches it back, so the modules between them see the
 * developer.  Should the stack stop between the two, PAM_USER stays a
 * developer's name and the account phase finds no such project: closed.
 */
PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	struct opts o;
	const char *user = NULL, *dev;
	const void *saved = NULL;
	char safe[48], *copy;

	if (parse_opts(pamh, argc, argv, &o) == -1)
		return PAM_SERVICE_ERR;
	if (o.as == AS_PROJECT) {
		if (pam_get_data(pamh, PROJECT_DATA, &saved) != PAM_SUCCESS ||
		    saved == NULL)
			return PAM_IGNORE;
		if (pam_set_item(pamh, PAM_USER, saved) != PAM_SUCCESS)
			return PAM_SERVICE_ERR;
		pam_set_data(pamh, PROJECT_DATA, NULL, NULL);
		return PAM_SUCCESS;
	}
	if (o.as != AS_DEVELOPER)
		return PAM_IGNORE;
	if (!o.trust_env || (dev = pam_getenv(pamh, "PRISON_DEVELOPER")) ==
	    NULL || *dev == '\0') {
		pam_syslog(pamh, LOG_ERR, "user=developer needs trust_env and "
		    "PRISON_DEVELOPER from the gateway");
		return PAM_AUTH_ERR;
	}
	if (pam_get_item(pamh, PAM_USER, (const void **)&user) !=
	    PAM_SUCCESS || user == NULL || (copy = strdup(user)) == NULL)
		return PAM_SERVICE_ERR;
	if (pam_set_data(pamh, PROJECT_DATA, copy, free_data) != PAM_SUCCESS) {
		free(copy);
		return PAM_SERVICE_ERR;
	}
	if (pam_set_item(pamh, PAM_USER, dev) != PAM_SUCCESS)
		return PAM_SERVICE_ERR;
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "PAM_USER is developer %s until "
		    "user=project", log_safe(safe, sizeof(safe), dev));
	return PAM_SUCCESS;
}

PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

/*
 * The access rule, for the account phase and again for the session
 * phase.  Logs one line per decision.  Returns PAM_SUCCESS, a denial, or
 * PAM_IGNORE when the developer cannot be known yet and the caller may
 * defer (sshd's privilege-separated monitor runs the account phase
 * before it has recorded the accepted key: SSH_AUTH_INFO_0 is present
 * but empty then, and complete by the session phase).
 */
static int
decide(pam_handle_t *pamh, struct ctx *c, const char *phase, int may_defer)
{
	const struct reg_user *u = NULL;
	const struct reg_key *k = NULL;
	const char *info, *env_dev, *s;
	char why[256] = "", dev_log[48] = "-", key_log[128] = "-";
	int rc = PAM_PERM_DENIED;

	if (registry_project(c->reg, c->project) == NULL) {
		snprintf(why, sizeof(why), "no such project");
		rc = PAM_USER_UNKNOWN;
		goto out;
	}
	env_dev = pam_getenv(pamh, "PRISON_DEVELOPER");
	info = pam_getenv(pamh, "SSH_AUTH_INFO_0");
	if (c->o.trust_env && env_dev != NULL) {
		if ((s = pam_getenv(pamh, "PRISON_KEY_FP")) != NULL)
			log_safe(key_log, sizeof(key_log), s);
		if ((u = registry_user(c->reg, env_dev)) == NULL) {
			log_safe(dev_log, sizeof(dev_log), env_dev);
			snprintf(why, sizeof(why), "unknown developer");
			goto out;
		}
	} else if (info != NULL && strstr(info, "publickey ") == NULL &&
	    may_defer) {
		rc = PAM_IGNORE;
		goto out;
	} else if (info != NULL) {
		u = authinfo_developer(c->reg, info, &k, why, sizeof(why));
		if (u == NULL)
			goto out;
		snprintf(key_log, sizeof(key_log), "%s %s", k->type,
		    k->fingerprint);
	} else {
		snprintf(why, sizeof(why), "developer unknown: no "
		    "SSH_AUTH_INFO_0 (sshd needs ExposeAuthInfo yes)%s",
		    env_dev != NULL ? ", PRISON_DEVELOPER ignored without "
		    "trust_env" : "");
		goto out;
	}
	log_safe(dev_log, sizeof(dev_log), u->name);
	if (u->disabled) {
		snprintf(why, sizeof(why), "developer disabled");
		goto out;
	}
	if (!registry_may_access(c->reg, c->project, u->name)) {
		snprintf(why, sizeof(why), "not a member");
		goto out;
	}
	rc = PAM_SUCCESS;
 out:
	/* One line per decision with a fixed grammar, for log watchers. */
	if (rc == PAM_SUCCESS)
		pam_syslog(pamh, LOG_NOTICE, "allow project=%s developer=%s "
		    "key=\"%s\" rhost=%s service=%s phase=%s", c->proj_log,
		    dev_log, key_log, c->rhost, c->service, phase);
	else if (rc != PAM_IGNORE)
		pam_syslog(pamh, LOG_WARNING, "deny project=%s developer=%s "
		    "key=\"%s\" rhost=%s service=%s phase=%s reason=\"%s\"",
		    c->proj_log, dev_log, key_log, c->rhost, c->service,
		    phase, why);
	return rc;
}

static int
acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct ctx c;
	int rc;

	if ((rc = ctx_init(pamh, argc, argv, &c)) != PAM_SUCCESS)
		goto out;
	rc = decide(pamh, &c, "account", c.o.defer);
	if (rc == PAM_IGNORE) {
		/* The session phase decides; a stack without pam_prison
		 * there would never check, hence the explicit option. */
		pam_syslog(pamh, LOG_INFO, "project=%s: no key in "
		    "SSH_AUTH_INFO_0 yet, membership checked at session",
		    c.proj_log);
		rc = PAM_SUCCESS;
	} else if (rc == PAM_SUCCESS)
		pam_set_data(pamh, CHECKED_DATA, (void *)1, NULL);
 out:
	ctx_free(&c);
	return rc;
}

/* pam_set_data cleanup: closing the held connection ends the session. */
static void
hold_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
	int *fd = data;

	if (fd == NULL)
		return;
	/*
	 * Also right in a forked child's pam_end(): closing its copy
	 * leaves the descriptor of the process owning the session open.
	 */
	if (*fd != -1)
		close(*fd);
	free(fd);
}

struct progress_arg {
	pam_handle_t	*pamh;
	int		 debug;
};

static void
progress_cb(const char *msg, void *arg)
{
	struct progress_arg *pa = arg;
	char safe[128];

	if (pa->debug)
		pam_syslog(pa->pamh, LOG_DEBUG, "progress: %s",
		    log_safe(safe, sizeof(safe), msg));
}

/*
 * Send ensure with hold and wait for the final reply, keeping the
 * connection.  Returns the fd, or -1 with stage and err filled.
 */
static int
ensure_hold(struct ctx *c, pam_handle_t *pamh, char *stage, size_t stagelen,
    char *err, size_t errlen)
{
	struct progress_arg pa = { pamh, c->o.debug };
	json_t *reply = NULL;
	const char *s;
	int fd = -1;

	/* No final reply at all: the provisioner could not be talked to. */
	snprintf(stage, stagelen, "connect");
	if (proto_ensure_hold(c->cfg.provisioner_socket, c->project,
	    progress_cb, &pa, (c->cfg.boot_timeout + 60) * 1000, &reply, &fd,
	    err, errlen) == -1)
		goto out;
	if (fd == -1) {
		s = json_string_value(json_object_get(reply, "stage"));
		log_safe(stage, stagelen, s != NULL ? s : "unknown");
		s = json_string_value(json_object_get(reply, "error"));
		seterr(err, errlen, "%s", s != NULL ? s : "ensure failed");
	}
 out:
	json_decref(reply);
	return fd;
}

static int
open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct ctx c;
	const struct reg_project *p;
	const void *checked = NULL;
	char err[512], safe[512], stage[32];
	int rc, fd = -1, *held = NULL;

	if ((rc = ctx_init(pamh, argc, argv, &c)) != PAM_SUCCESS)
		goto out;
	rc = PAM_SESSION_ERR;
	/* Unless this handle's account phase already allowed it. */
	if (pam_get_data(pamh, CHECKED_DATA, &checked) != PAM_SUCCESS &&
	    decide(pamh, &c, "session", 0) != PAM_SUCCESS)
		goto out;
	if ((p = registry_project(c.reg, c.project)) == NULL) {
		pam_syslog(pamh, LOG_ERR, "session project=%s: no such "
		    "project", c.proj_log);
		goto out;
	}
	if (p->upstream != NULL) {
		/* No VM: the front door relays to the upstream itself. */
		if (c.o.debug)
			pam_syslog(pamh, LOG_DEBUG, "session project=%s: "
			    "upstream project, nothing to start", c.proj_log);
		rc = PAM_SUCCESS;
		goto out;
	}
	fd = ensure_hold(&c, pamh, stage, sizeof(stage), err, sizeof(err));
	if (fd == -1) {
		pam_syslog(pamh, LOG_ERR, "session project=%s: ensure failed "
		    "stage=%s: %s", c.proj_log, stage,
		    safe_text(safe, sizeof(safe), err));
		goto out;
	}
	if ((held = malloc(sizeof(*held))) == NULL) {
		close(fd);
		goto out;
	}
	*held = fd;
	if (pam_set_data(pamh, HOLD_DATA, held, hold_cleanup) != PAM_SUCCESS) {
		hold_cleanup(pamh, held, 0);
		goto out;
	}
	pam_syslog(pamh, LOG_INFO, "session project=%s: VM ready", c.proj_log);
	rc = PAM_SUCCESS;
 out:
	ctx_free(&c);
	return rc;
}

PAM_EXTERN int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return guarded(acct_mgmt, pamh, flags, argc, argv);
}

PAM_EXTERN int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	return guarded(open_session, pamh, flags, argc, argv);
}

PAM_EXTERN int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	const void *data = NULL;

	/* Replacing the data runs hold_cleanup(), which closes the hold. */
	if (pam_get_data(pamh, HOLD_DATA, &data) == PAM_SUCCESS &&
	    data != NULL)
		pam_set_data(pamh, HOLD_DATA, NULL, NULL);
	return PAM_SUCCESS;
}
