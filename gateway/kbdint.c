/*
 * The second factor: after the public key, PAM's auth stack runs with
 * its questions relayed as SSH keyboard-interactive prompts.  PAM asks
 * synchronously (its conversation function must return the answers) while
 * SSH answers arrive as later packets, so pam_authenticate() runs in a
 * helper process and talks to the session child over a SOCK_SEQPACKET
 * pair, one message per turn:
 *
 *   helper -> child   "P" then per prompt: echo ('0'/'1'), text, NUL
 *   child -> helper   the answers, each NUL-terminated
 *   helper -> child   "R1" (authenticated) or "R0" (refused)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>
#include <security/pam_appl.h>

#include "config.h"
#include "gateway.h"
#include "log.h"
#include "xmalloc.h"

#define KI_MAX		8192
#define KI_PROMPTS	16
#define KI_WAIT_MS	(120 * 1000)

static int
conv(int n, const struct pam_message **msg, struct pam_response **resp,
    void *ud)
{
	int fd = *(int *)ud, i, np = 0;
	char buf[KI_MAX], *p;
	size_t off = 1, len;
	struct pam_response *r = NULL;
	ssize_t got;

	if (n <= 0 || n > KI_PROMPTS)
		return PAM_CONV_ERR;
	buf[0] = 'P';
	for (i = 0; i < n; i++) {
		int style = msg[i]->msg_style;

		/* Informational lines are not questions: not shown. */
		if (style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON)
			continue;
		len = strlen(msg[i]->msg);
		if (off + len + 2 > sizeof(buf))
			return PAM_CONV_ERR;
		buf[off++] = style == PAM_PROMPT_ECHO_ON ? '1' : '0';
		memcpy(buf + off, msg[i]->msg, len + 1);
		off += len + 1;
		np++;
	}
	r = calloc(n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	if (np > 0) {
		if (send(fd, buf, off, MSG_NOSIGNAL) != (ssize_t)off ||
		    (got = recv(fd, buf, sizeof(buf) - 1, 0)) <= 0) {
			free(r);
			return PAM_CONV_ERR;
		}
		buf[got] = '\0';
		p = buf;
		for (i = 0; i < n; i++) {
			if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
			    msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
				continue;
			if (p >= buf + got)
				break;
			r[i].resp = strdup(p);
			p += strlen(p) + 1;
		}
		explicit_bzero(buf, sizeof(buf));
	}
	*resp = r;
	return PAM_SUCCESS;
}

static void
helper(struct gw_conn *c, int fd)
{
	struct pam_conv pc = { conv, &fd };
	pam_handle_t *ph = NULL;
	char *ev = NULL;
	int rc;

	rc = pam_start(c->cfg->pam_service, c->project, &pc, &ph);
	if (rc == PAM_SUCCESS) {
		pam_set_item(ph, PAM_RHOST, c->addr);
		pam_set_item(ph, PAM_RUSER, c->developer);
		ev = xasprintf("PRISON_DEVELOPER=%s", c->developer);
		pam_putenv(ph, ev);
		free(ev);
		ev = xasprintf("PRISON_KEY_FP=%s", c->fp);
		pam_putenv(ph, ev);
		free(ev);
		rc = pam_authenticate(ph, PAM_DISALLOW_NULL_AUTHTOK);
		pam_end(ph, rc);
	}
	send(fd, rc == PAM_SUCCESS ? "R1" : "R0", 2, MSG_NOSIGNAL);
	_exit(0);
}

static int
ki_start(struct gw_conn *c)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		helper(c, sv[1]);
	}
	close(sv[1]);
	c->ki_fd = sv[0];
	c->ki_pid = pid;
	return 0;
}

void
gw_kbdint_stop(struct gw_conn *c)
{
	if (c->ki_fd != -1)
		close(c->ki_fd);
	c->ki_fd = -1;
	if (c->ki_pid > 0) {
		kill(c->ki_pid, SIGTERM);
		waitpid(c->ki_pid, NULL, 0);
	}
	c->ki_pid = 0;
}

/*
 * The helper's next turn: prompts go to the client, a result ends the
 * conversation.  Returns 1 authenticated, 0 refused, 2 prompts sent,
 * -1 on a broken helper.
 */
static int
ki_turn(struct gw_conn *c, ssh_message msg)
{
	struct pollfd pfd = { c->ki_fd, POLLIN, 0 };
	const char *prompts[KI_PROMPTS];
	char buf[KI_MAX + 1], echo[KI_PROMPTS], *p;
	ssize_t got;
	int n = 0, r;

	if ((r = poll(&pfd, 1, KI_WAIT_MS)) <= 0 ||
	    (got = recv(c->ki_fd, buf, KI_MAX, 0)) <= 0)
		return -1;
	buf[got] = '\0';
	if (buf[0] == 'R')
		return buf[1] == '1' ? 1 : 0;
	if (buf[0] != 'P')
		return -1;
	for (p = buf + 1; p < buf + got && n < KI_PROMPTS; n++) {
		echo[n] = *p++ == '1';
		prompts[n] = p;
		p += strlen(p) + 1;
	}
	ssh_message_auth_interactive_request(msg, "prison", "", n, prompts,
	    echo);
	return 2;
}

/* Forward the client's answers to the helper. */
static int
ki_answer(struct gw_conn *c, ssh_session s)
{
	char buf[KI_MAX];
	size_t off = 0, len;
	int i, n = ssh_userauth_kbdint_getnanswers(s), ret = -1;

	for (i = 0; i < n; i++) {
		const char *a = ssh_userauth_kbdint_getanswer(s, i);

		len = a ? strlen(a) : 0;
		if (off + len + 1 > sizeof(buf))
			goto out;
		memcpy(buf + off, a ? a : "", len);
		off += len;
		buf[off++] = '\0';
	}
	if (send(c->ki_fd, buf, off ? off : 1, MSG_NOSIGNAL) > 0)
		ret = 0;
 out:
	explicit_bzero(buf, sizeof(buf));
	return ret;
}

/*
 * keyboard-interactive request or response.  Returns what auth.c's
 * caller should do: 1 authenticated, 0 refused (reply sent), 2 waiting
 * for the client.
 */
int
gw_kbdint(struct gw_conn *c, ssh_message msg)
{
	int r;

	if (!ssh_message_auth_kbdint_is_response(msg)) {
		gw_kbdint_stop(c);
		if (ki_start(c) == -1)
			return 0;
	} else if (c->ki_fd == -1 || ki_answer(c, c->srv) == -1) {
		gw_kbdint_stop(c);
		return 0;
	}
	r = ki_turn(c, msg);
	if (r != 2)
		gw_kbdint_stop(c);
	return r == -1 ? 0 : r;
}
