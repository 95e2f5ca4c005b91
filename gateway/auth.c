/*
 * Authentication: the SSH user name is the project, the public key names
 * the developer.  Access needs a registered key, a project the developer
 * is a member of (registry_may_access) and, when configured, the PAM
 * account stack.  An unknown key, an unknown project and a non-member all
 * get the same answer, so nobody learns which projects or keys exist; the
 * reason goes to the log only.
 *
 * Every result is one log line with a fixed grammar (docs/gateway.md):
 *   auth: verdict=V method=M project=P developer=D addr=A port=N key=T
 *         fp=F reason=R
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <security/pam_appl.h>

#include "config.h"
#include "gateway.h"
#include "log.h"
#include "names.h"
#include "proto.h"
#include "registry.h"
#include "xmalloc.h"

void
gw_auth_log(struct gw_conn *c, const char *verdict, const char *method,
    const char *user, const char *reason)
{
	char safe_user[NAME_MAX_LEN + 2];

	log_safe(safe_user, sizeof(safe_user), user ? user : "-");
	log_msg(strcmp(verdict, "accept") == 0 ? LOG_LVL_NOTICE :
	    LOG_LVL_WARN, "auth: verdict=%s method=%s project=%s "
	    "developer=%s addr=%s port=%d key=%s fp=%s reason=%s", verdict,
	    method, safe_user, c->developer[0] ? c->developer : "-", c->addr,
	    c->port, c->keytype[0] ? c->keytype : "-", c->fp[0] ? c->fp : "-",
	    reason);
}

static void
tell_listener(struct gw_conn *c, char ev)
{
	if (c->evfd != -1 && write(c->evfd, &ev, 1) != 1)
		log_debug("cannot report to the listener");
}

static void
fail(struct gw_conn *c, const char *method, const char *user,
    const char *reason)
{
	gw_auth_log(c, "reject", method, user, reason);
	tell_listener(c, GW_EV_FAILURE);
}

/*
 * libssh drops a publickey request whose signature does not verify
 * without calling auth_pubkey(); its own log is the only trace.  While
 * authentication runs, the gateway listens to that log (at packet level)
 * so such an attempt is logged and counted like any other failure.
 * Lines the gateway's own verbosity asks for still go to stderr.
 */
static void
on_libssh_log(int prio, const char *fn, const char *msg, void *ud)
{
	struct gw_conn *c = ud;

	if (c == NULL)
		return;
	if (strstr(msg, "invalid signature") != NULL)
		c->badsig++;
	if (prio <= c->ssh_log_level)
		fprintf(stderr, "libssh: %s: %s\n", fn, msg);
}

void
gw_auth_watch(struct gw_conn *c, int on)
{
	if (on) {
		c->ssh_log_level = ssh_get_log_level();
		ssh_set_log_userdata(c);
		ssh_set_log_callback(on_libssh_log);
		ssh_set_log_level(SSH_LOG_PACKET > c->ssh_log_level ?
		    SSH_LOG_PACKET : c->ssh_log_level);
	} else
		ssh_set_log_level(c->ssh_log_level);
}

/* Report what on_libssh_log() saw, outside libssh's logging. */
void
gw_auth_badsig(struct gw_conn *c)
{
	for (; c->badsig > 0; c->badsig--) {
		c->developer[0] = c->fp[0] = c->keytype[0] = '\0';
		fail(c, "publickey", NULL, "bad-signature");
	}
}

/* Non-interactive PAM: the account stack asks no questions. */
static int
pam_noconv(int n, const struct pam_message **msg,
    struct pam_response **resp, void *ud)
{
	return PAM_CONV_ERR;
}

/*
 * The account stack of cfg->pam_service with PAM_USER = project and the
 * developer in PRISON_DEVELOPER, as pam_prison expects; PAM_RHOST lets
 * pam_access match the client's address.
 */
static int
pam_account(struct gw_conn *c, char *why, size_t whylen)
{
	struct pam_conv conv = { pam_noconv, NULL };
	pam_handle_t *ph = NULL;
	char *ev = NULL;
	int rc;

	if (c->cfg->pam_service == NULL || *c->cfg->pam_service == '\0')
		return 0;
	rc = pam_start(c->cfg->pam_service, c->project, &conv, &ph);
	if (rc != PAM_SUCCESS) {
		snprintf(why, whylen, "pam-start");
		return -1;
	}
	pam_set_item(ph, PAM_RHOST, c->addr);
	pam_set_item(ph, PAM_RUSER, c->developer);
	ev = xasprintf("PRISON_DEVELOPER=%s", c->developer);
	pam_putenv(ph, ev);
	free(ev);
	ev = xasprintf("PRISON_KEY_FP=%s", c->fp);
	pam_putenv(ph, ev);
	free(ev);
	rc = pam_acct_mgmt(ph, PAM_SILENT);
	if (rc != PAM_SUCCESS)
		snprintf(why, whylen, "pam-account:%s",
		    pam_strerror(ph, rc));
	pam_end(ph, rc);
	return rc == PAM_SUCCESS ? 0 : -1;
}

static void
show(struct gw_conn *c, const char *text)
{
	ssh_string s = ssh_string_from_char(text);

	if (s != NULL) {
		ssh_send_issue_banner(c->srv, s);
		ssh_string_free(s);
	}
}

static void
on_progress(const char *what, void *arg)
{
	struct gw_conn *c = arg;
	static int shown;
	char *line;

	/* One line is enough to explain the wait. */
	if (shown++)
		return;
	line = xasprintf("prison: starting %s...\r\n", c->project);
	show(c, line);
	free(line);
}

/*
 * Ask the provisioner for the project's VM and keep the connection open:
 * it counts as this session until we exit.
 */
static int
provision(struct gw_conn *c, char **addr, int *port, char **hostkey,
    char **user, char *err, size_t errlen)
{
	json_t *msg = NULL;
	char why[512];
	int fd = -1, ret = -1;

	if (proto_ensure_hold(c->cfg->provisioner_socket, c->project,
	    on_progress, c, (c->cfg->boot_timeout + 60) * 1000, &msg, &fd,
	    why, sizeof(why)) == -1) {
		seterr(err, errlen, "provisioner: %s", why);
		goto out;
	}
	if (fd == -1) {
		const char *e = json_string_value(json_object_get(msg,
		    "error"));

		seterr(err, errlen, "cannot start the project: %s",
		    e ? e : "unknown error");
		goto out;
	}
	if (!json_is_string(json_object_get(msg, "address")) ||
	    !json_is_integer(json_object_get(msg, "port")) ||
	    !json_is_string(json_object_get(msg, "host_key"))) {
		seterr(err, errlen, "provisioner: malformed ensure reply");
		goto out;
	}
	*addr = xstrdup(json_string_value(json_object_get(msg, "address")));
	*port = (int)json_integer_value(json_object_get(msg, "port"));
	*hostkey = xstrdup(json_string_value(json_object_get(msg,
	    "host_key")));
	*user = json_is_string(json_object_get(msg, "dev_user")) ?
	    xstrdup(json_string_value(json_object_get(msg, "dev_user"))) :
	    NULL;
	c->prov_fd = fd;
	fd = -1;
	ret = 0;
 out:
	if (fd != -1)
		close(fd);
	json_decref(msg);
	return ret;
}

/* Reach the project's SSH server; on failure c->refusal says why. */
static int
connect_project(struct gw_conn *c, const struct reg_project *proj)
{
	char err[512], *host = NULL, *addr = NULL, *hostkey = NULL;
	char *user = NULL, *pin = NULL, *colon;
	const char *dev = proj->dev_user ? proj->dev_user : "dev";
	int port = 22, ret = -1;

	if (proj->upstream != NULL) {
		host = xstrdup(proj->upstream);
		if ((colon = strrchr(host, ':')) != NULL) {
			*colon = '\0';
			port = atoi(colon + 1);
		}
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		pin = xasprintf("%s/%s", proj->name, proj->upstream);
		ret = gw_upstream_open(c, host, port, dev, NULL, pin, err,
		    sizeof(err));
	} else if (provision(c, &addr, &port, &hostkey, &user, err,
	    sizeof(err)) == 0) {
		ret = gw_upstream_open(c, addr, port, user ? user : dev,
		    hostkey, NULL, err, sizeof(err));
	}
	if (ret == -1) {
		snprintf(c->refusal, sizeof(c->refusal), "prison: %s: %s\r\n",
		    proj->name, err);
		log_err("upstream: project=%s developer=%s addr=%s "
		    "error=\"%s\"",
		    proj->name, c->developer, c->addr, err);
	}
	free(host);
	free(addr);
	free(hostkey);
	free(user);
	free(pin);
	return ret;
}

/* Everything proven: reach the project, then let the client in. */
static int
finish(struct gw_conn *c, const struct reg_project *proj, const char *method)
{
	/*
	 * The client is proven: neither the login grace time nor the cap
	 * on unauthenticated connections applies to a cold start.
	 */
	alarm(0);
	tell_listener(c, GW_EV_AUTHENTICATED);
	if (connect_project(c, proj) == -1) {
		gw_auth_log(c, "reject", method, c->project, "upstream");
		show(c, c->refusal);
		c->closing = 1;
		return -1;
	}
	gw_auth_log(c, "accept", method, c->project, "ok");
	c->agent_ok = proj->agent == REG_AGENT_DEFAULT ?
	    c->cfg->agent_forwarding : proj->agent == REG_AGENT_ALLOW;
	c->relay = gw_relay_new(c);
	c->authenticated = 1;
	return 0;
}

static int
auth_pubkey(ssh_session session, const char *user, struct ssh_key_struct
    *pubkey, char state, void *ud)
{
	struct gw_conn *c = ud;
	struct registry *reg = NULL;
	struct reg_user *dev = NULL;
	const struct reg_key *rk = NULL;
	struct reg_project *proj = NULL;
	char err[512], why[128], *b64 = NULL;
	const char *type;
	int ret = SSH_AUTH_DENIED;

	/*
	 * After the key's partial success only the second factor may
	 * follow; another key must not replace the developer it is for.
	 */
	if (c->key_ok) {
		gw_auth_log(c, "reject", "publickey", user,
		    "second-factor-pending");
		return SSH_AUTH_DENIED;
	}
	c->developer[0] = c->fp[0] = '\0';
	if (++c->tries > c->cfg->max_auth_tries) {
		fail(c, "publickey", user, "too-many-tries");
		c->closing = 1;
		return SSH_AUTH_DENIED;
	}
	type = ssh_key_type_to_char(ssh_key_type(pubkey));
	snprintf(c->keytype, sizeof(c->keytype), "%s", type ? type : "?");
	if (state == SSH_PUBLICKEY_STATE_WRONG) {
		fail(c, "publickey", user, "bad-signature");
		return SSH_AUTH_DENIED;
	}
	if (type == NULL || ssh_pki_export_pubkey_base64(pubkey, &b64) !=
	    SSH_OK) {
		fail(c, "publickey", user, "unsupported-key");
		return SSH_AUTH_DENIED;
	}
	/* Re-read per attempt: registry changes need no restart. */
	if (registry_load(c->cfg->registry, &reg, err, sizeof(err)) == -1) {
		log_err("auth: cannot read the registry: %s", err);
		fail(c, "publickey", user, "registry-error");
		goto out;
	}
	dev = registry_user_by_key(reg, type, b64, &rk);
	if (dev != NULL) {
		snprintf(c->developer, sizeof(c->developer), "%s", dev->name);
		snprintf(c->fp, sizeof(c->fp), "%s", rk->fingerprint);
	}
	if (name_valid_project(user, NULL, 0) == -1 ||
	    (proj = registry_project(reg, user)) == NULL) {
		fail(c, "publickey", user, "unknown-project");
		goto out;
	}
	if (dev == NULL) {
		fail(c, "publickey", user, "unknown-key");
		goto out;
	}
	if (!registry_may_access(reg, user, dev->name)) {
		fail(c, "publickey", user, dev->disabled ? "disabled" :
		    "not-member");
		goto out;
	}
	if (state == SSH_PUBLICKEY_STATE_NONE) {
		/* A probe: "this key would do", no signature yet. */
		ret = SSH_AUTH_SUCCESS;
		goto out;
	}
	if (state != SSH_PUBLICKEY_STATE_VALID) {
		fail(c, "publickey", user, "bad-signature");
		goto out;
	}
	snprintf(c->project, sizeof(c->project), "%s", user);
	if (pam_account(c, why, sizeof(why)) == -1) {
		fail(c, "publickey", user, why);
		goto out;
	}
	if (c->cfg->second_factor) {
		/* The key is half: PAM's questions must follow. */
		c->key_ok = 1;
		gw_auth_log(c, "partial", "publickey", user, "second-factor");
		ssh_set_auth_methods(session, SSH_AUTH_METHOD_INTERACTIVE);
		ret = SSH_AUTH_PARTIAL;
		goto out;
	}
	ret = finish(c, proj, "publickey") == 0 ? SSH_AUTH_SUCCESS :
	    SSH_AUTH_DENIED;
 out:
	ssh_string_free_char(b64);
	registry_free(reg);
	return ret;
}

static int
auth_password(ssh_session session, const char *user, const char *password,
    void *ud)
{
	struct gw_conn *c = ud;

	c->developer[0] = c->fp[0] = c->keytype[0] = '\0';
	if (++c->tries > c->cfg->max_auth_tries)
		c->closing = 1;
	fail(c, "password", user, "password-disabled");
	return SSH_AUTH_DENIED;
}

/* keyboard-interactive, only as the second factor after a key. */
int
gw_auth_message(ssh_session session, ssh_message msg, void *ud)
{
	struct gw_conn *c = ud;
	struct registry *reg = NULL;
	struct reg_project *proj = NULL;
	char err[512];
	int r;

	if (ssh_message_type(msg) != SSH_REQUEST_AUTH ||
	    ssh_message_subtype(msg) != SSH_AUTH_METHOD_INTERACTIVE)
		return 1;
	if (!c->key_ok || !c->cfg->second_factor) {
		if (!ssh_message_auth_kbdint_is_response(msg))
			fail(c, "keyboard-interactive",
			    ssh_message_auth_user(msg), "key-first");
		return 1;
	}
	if ((r = gw_kbdint(c, msg)) == 2)
		return 0;
	if (r == 1) {
		if (registry_load(c->cfg->registry, &reg, err,
		    sizeof(err)) == -1 ||
		    (proj = registry_project(reg, c->project)) == NULL ||
		    !registry_may_access(reg, c->project, c->developer)) {
			fail(c, "keyboard-interactive", c->project,
			    "registry-changed");
			r = 0;
		} else if (finish(c, proj, "keyboard-interactive") == 0) {
			ssh_message_auth_reply_success(msg, 0);
			registry_free(reg);
			return 0;
		} else
			r = 0;
		registry_free(reg);
	} else {
		fail(c, "keyboard-interactive", c->project, "pam-auth");
	}
	if (++c->tries >= c->cfg->max_auth_tries)
		c->closing = 1;
	ssh_message_reply_default(msg);
	return 0;
}

void
gw_auth_install(struct gw_conn *c, struct ssh_server_callbacks_struct *cb)
{
	memset(cb, 0, sizeof(*cb));
	cb->userdata = c;
	cb->auth_pubkey_function = auth_pubkey;
	cb->auth_password_function = auth_password;
	ssh_callbacks_init(cb);
}
