/*
 * The relay: every channel the client opens is paired with one on the
 * project's SSH server, and every channel the server opens towards us
 * (forwarded-tcpip for ssh -R, the agent for ssh -A) with one towards the
 * client.  Bytes move only as far as the receiving side's window allows;
 * the rest waits, in libssh's channel buffer or in ours (take()), and the
 * sending side's window is re-opened only as that drains, so a peer that
 * stops or slows down reading stops or slows its counterpart instead of
 * making us buffer: at most about two windows (4 MB) per channel and
 * direction.
 *
 * Each session has its own ssh_event.  A request that must wait for the
 * other side's answer (exec, pty-req, direct-tcpip) may therefore block
 * inside a callback: it only turns the other session's event loop, never
 * re-enters the session whose callback is running.  A callback of one
 * session only ever writes to the other session.
 *
 * XXX Opening a channel towards the client (ssh -R connections, agent
 * requests) blocks on the client's session inside an upstream callback;
 * a client request that needs the upstream and arrives in exactly that
 * window is handled one level deeper.  Should those opens become
 * asynchronous?
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "config.h"
#include "gateway.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define DOWN	0		/* the client's side */
#define UP	1		/* the project's side */
#define DRAIN_ROUNDS	16
#define REFILL		(512 * 1024)	/* take more below this (take()) */

struct carry {
	char		*buf;
	uint32_t	 off, len, cap;
};

enum pair_kind { PAIR_SESSION, PAIR_DIRECT, PAIR_FORWARDED, PAIR_AGENT };

struct pair {
	struct relay	*r;
	enum pair_kind	 kind;
	ssh_channel	 ch[2];
	struct ssh_channel_callbacks_struct cb[2];
	/* Bytes waiting in ch[side]'s libssh buffer, per stream. */
	uint32_t	 pend[2][2];
	/* Bytes taken from ch[side]'s buffer, not yet written on. */
	struct carry	 carry[2][2];
	int		 got_eof[2], sent_eof[2];
	int		 got_close[2], sent_close[2];
	int		 have_status, status, status_sent;
	int		 busy;		/* a client request awaits its reply */
	char		*sig, *sigmsg, *siglang;
	int		 sigcore, have_sig;
	struct pair	*next;
};

struct relay {
	struct gw_conn	*c;
	ssh_session	 s[2];
	ssh_event	 ev[2];
	struct pair	*pairs;
	int		 broken;
	int		 vm_stopped;	/* the provisioner said so */
	int		 nsessions;	/* session channels */
	struct ssh_callbacks_struct scb[2];
	struct ssh_server_callbacks_struct srvcb;
};

static void	settle(struct pair *);

static int
other(int side)
{
	return side == DOWN ? UP : DOWN;
}

static int
side_of(struct pair *p, ssh_channel ch)
{
	return ch == p->ch[UP] ? UP : DOWN;
}

/*
 * Nothing may go to a side whose channel is still being opened, nor to
 * the client while one of its requests waits for libssh to send our
 * reply: a fast command's output, exit status and CLOSE would overtake
 * that reply, and clients drop the connection over a reply for a closed
 * channel.  The main loop lifts "busy" once the reply is queued.
 */
static int
blocked(struct pair *p, int to)
{
	return p->ch[to] == NULL || (to == DOWN && p->busy);
}

/*
 * Move what libssh holds for ch[from] to the end of our own buffer.
 * libssh re-opens a channel's window on every read, however much the
 * channel still holds, so reading a window's worth at a time would let a
 * fast sender outrun a slow receiver without bound.  Taking everything
 * at once, and again only once less than REFILL of it is left, keeps
 * each direction within about two windows, and the sender busy while
 * the rest goes on.  pend is exactly what the buffer holds, so these
 * reads never wait and never process packets.
 */
static void
take(struct pair *p, int from, int s)
{
	struct carry *c = &p->carry[from][s];
	uint32_t want = p->pend[from][s];
	int n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len);
		c->off = 0;
	}
	if (c->cap < c->len + want) {
		c->cap = c->len + want;
		c->buf = xreallocarray(c->buf, 1, c->cap);
	}
	while (want > 0) {
		n = ssh_channel_read_nonblocking(p->ch[from], c->buf + c->len,
		    want, s);
		if (n <= 0)
			break;
		c->len += (uint32_t)n;
		want -= (uint32_t)n;	/* never more than asked */
	}
	p->pend[from][s] = 0;
}

/* Write what we took from ch[from], as far as ch[to]'s window allows. */
static void
give(struct pair *p, int from, int s)
{
	struct carry *c = &p->carry[from][s];
	ssh_channel dst = p->ch[other(from)];
	uint32_t win, want;
	int w;

	while (c->len > 0) {
		if ((win = ssh_channel_window_size(dst)) == 0)
			break;
		want = c->len < win ? c->len : win;
		w = s ? ssh_channel_write_stderr(dst, c->buf + c->off, want) :
		    ssh_channel_write(dst, c->buf + c->off, want);
		if (w < 0)
			c->len = 0;	/* that side is gone: drop the rest */
		if (w <= 0)
			break;
		/* Less than asked: a key re-exchange is under way. */
		c->off += (uint32_t)w;
		c->len -= (uint32_t)w;
	}
	if (c->len == 0)
		c->off = 0;
}

/*
 * Move what ch[from] holds to ch[to], as far as to's window allows, then
 * pass on EOF once everything before it went through.  Data for a side
 * that has closed or sent EOF is read and dropped.
 */
static void
pump(struct pair *p, int from)
{
	int to = other(from), s;
	int discard = p->got_close[to] || p->sent_close[to] ||
	    p->sent_eof[to];

	if (blocked(p, to))
		return;
	/*
	 * Take again as soon as little of what was taken is left: nothing
	 * else would wake us for the bytes still in libssh's buffer, whose
	 * sender waits for the window that only a read re-opens.
	 */
	for (s = 0; s < 2; s++) {
		do {
			if (p->carry[from][s].len <= REFILL &&
			    p->pend[from][s] > 0)
				take(p, from, s);
			if (discard)
				p->carry[from][s].len =
				    p->carry[from][s].off = 0;
			else
				give(p, from, s);
		} while (p->carry[from][s].len <= REFILL &&
		    p->pend[from][s] > 0);
	}
	settle(p);
}

static int
drained(struct pair *p, int from)
{
	return p->pend[from][0] == 0 && p->pend[from][1] == 0 &&
	    p->carry[from][0].len == 0 && p->carry[from][1].len == 0;
}

/*
 * Pass the exit status, EOF and CLOSE on once the data before them has
 * gone through.  The client's side is closed only after the project's
 * side has closed too: a client may close first (PuTTY does once both
 * sides sent EOF) and still expects the exit status the server sends in
 * reply, as a direct sshd would deliver it.
 */
static void
settle(struct pair *p)
{
	int from, to;

	for (from = 0; from < 2; from++) {
		to = other(from);
		if (!drained(p, from) || blocked(p, to))
			continue;
		if (from == UP && (p->have_status || p->have_sig) &&
		    !p->status_sent && !p->sent_close[DOWN]) {
			if (p->have_status)
				ssh_channel_request_send_exit_status(
				    p->ch[DOWN], p->status);
			else
				ssh_channel_request_send_exit_signal(
				    p->ch[DOWN], p->sig, p->sigcore,
				    p->sigmsg ? p->sigmsg : "",
				    p->siglang ? p->siglang : "");
			p->status_sent = 1;
		}
		if (p->got_eof[from] && !p->sent_eof[to] &&
		    !p->sent_close[to] && !p->got_close[to]) {
			ssh_channel_send_eof(p->ch[to]);
			p->sent_eof[to] = 1;
		}
		if (!p->got_close[from])
			continue;
		if (!p->sent_close[to] && (to == UP || p->got_close[UP])) {
			ssh_channel_close(p->ch[to]);
			p->sent_close[to] = 1;
		}
		if (!p->sent_close[from] && (from == UP || p->got_close[UP])) {
			ssh_channel_close(p->ch[from]);
			p->sent_close[from] = 1;
		}
	}
}

static int
cb_data(ssh_session session, ssh_channel ch, void *data, uint32_t len,
    int is_stderr, void *ud)
{
	struct pair *p = ud;
	int side = side_of(p, ch), to = other(side), s = is_stderr ? 1 : 0;
	ssh_channel dst = p->ch[to];
	uint32_t n = 0, win;
	int w = 0;

	/*
	 * len is all the channel holds.  The common case writes straight
	 * from libssh's buffer (one copy less); what the other side's
	 * window does not take stays there for pump() to read later.
	 */
	if (p->carry[side][s].len == 0 && !blocked(p, to) &&
	    !p->got_close[to] &&
	    !p->sent_close[to] && !p->sent_eof[to]) {
		win = ssh_channel_window_size(dst);
		n = len < win ? len : win;
		if (n > 0) {
			w = s ? ssh_channel_write_stderr(dst, data, n) :
			    ssh_channel_write(dst, data, n);
			if (w < 0)
				w = 0;
		}
	}
	/*
	 * The w bytes leave the buffer only when we return, so the rest is
	 * read by the main loop's pump(), never from here.
	 */
	p->pend[side][s] = len - (uint32_t)w;
	if (p->pend[side][s] == 0)
		settle(p);
	return w;
}

static void
cb_eof(ssh_session session, ssh_channel ch, void *ud)
{
	struct pair *p = ud;
	int side = side_of(p, ch);

	p->got_eof[side] = 1;
	pump(p, side);
}

static void
cb_close(ssh_session session, ssh_channel ch, void *ud)
{
	struct pair *p = ud;
	int side = side_of(p, ch);

	p->got_close[side] = 1;
	p->got_eof[side] = 1;
	pump(p, side);
}

static void
cb_exit_status(ssh_session session, ssh_channel ch, int status, void *ud)
{
	struct pair *p = ud;

	p->have_status = 1;
	p->status = status;
	settle(p);
}

static void
cb_exit_signal(ssh_session session, ssh_channel ch, const char *sig,
    int core, const char *errmsg, const char *lang, void *ud)
{
	struct pair *p = ud;

	free(p->sig);
	free(p->sigmsg);
	free(p->siglang);
	p->sig = xstrdup(sig ? sig : "KILL");
	p->sigmsg = errmsg ? xstrdup(errmsg) : NULL;
	p->siglang = lang ? xstrdup(lang) : NULL;
	p->sigcore = core;
	p->have_sig = 1;
	settle(p);
}

/*
 * The upstream session stays non-blocking for the relay; a request that
 * needs the server's answer switches it to blocking for that one call.
 */
#define UPCALL(r, expr) ({					\
	int _rc;						\
	ssh_set_blocking((r)->s[UP], 1);			\
	_rc = (expr);						\
	ssh_set_blocking((r)->s[UP], 0);			\
	_rc; })

static int
cb_pty(ssh_session session, ssh_channel ch, const char *term, int w, int h,
    int pw, int ph, void *ud)
{
	struct pair *p = ud;

	/*
	 * libssh 0.10 neither hands us the client's terminal modes nor
	 * lets us send any (docs/gateway.md): the guest's sshd applies its
	 * defaults.
	 */
	p->busy = 1;
	return UPCALL(p->r, ssh_channel_request_pty_size(p->ch[UP], term, w,
	    h)) == SSH_OK ? 0 : -1;
}

static int
cb_winch(ssh_session session, ssh_channel ch, int w, int h, int pw, int ph,
    void *ud)
{
	struct pair *p = ud;

	return ssh_channel_change_pty_size(p->ch[UP], w, h) == SSH_ERROR ?
	    -1 : 0;
}

static void
log_request(struct pair *p, const char *what, const char *arg)
{
	char safe[128];

	log_info("session: project=%s developer=%s addr=%s request=%s%s%s",
	    p->r->c->project, p->r->c->developer, p->r->c->addr, what,
	    arg ? " arg=" : "", arg ? log_safe(safe, sizeof(safe), arg) : "");
}

static int
cb_shell(ssh_session session, ssh_channel ch, void *ud)
{
	struct pair *p = ud;

	log_request(p, "shell", NULL);
	p->busy = 1;
	return UPCALL(p->r, ssh_channel_request_shell(p->ch[UP])) == SSH_OK ?
	    0 : -1;
}

static int
cb_exec(ssh_session session, ssh_channel ch, const char *cmd, void *ud)
{
	struct pair *p = ud;

	log_request(p, "exec", cmd);
	p->busy = 1;
	return UPCALL(p->r, ssh_channel_request_exec(p->ch[UP], cmd)) ==
	    SSH_OK ? 0 : -1;
}

static int
cb_subsystem(ssh_session session, ssh_channel ch, const char *name,
    void *ud)
{
	struct pair *p = ud;

	log_request(p, "subsystem", name);
	p->busy = 1;
	return UPCALL(p->r, ssh_channel_request_subsystem(p->ch[UP], name)) ==
	    SSH_OK ? 0 : -1;
}

static int
cb_env(ssh_session session, ssh_channel ch, const char *name,
    const char *value, void *ud)
{
	struct pair *p = ud;

	p->busy = 1;
	return UPCALL(p->r, ssh_channel_request_env(p->ch[UP], name,
	    value)) == SSH_OK ? 0 : -1;
}

static void
cb_signal(ssh_session session, ssh_channel ch, const char *sig, void *ud)
{
	struct pair *p = ud;

	ssh_channel_request_send_signal(p->ch[UP], sig);
}

static void
cb_agent_req(ssh_session session, ssh_channel ch, void *ud)
{
	struct pair *p = ud;

	/* Installed only when the project allows agent forwarding. */
	ssh_channel_request_auth_agent(p->ch[UP]);
}

static struct pair *
pair_new(struct relay *r, enum pair_kind kind)
{
	struct pair *p = xcalloc(1, sizeof(*p));
	int side;

	p->r = r;
	p->kind = kind;
	for (side = 0; side < 2; side++) {
		struct ssh_channel_callbacks_struct *cb = &p->cb[side];

		cb->userdata = p;
		cb->channel_data_function = cb_data;
		cb->channel_eof_function = cb_eof;
		cb->channel_close_function = cb_close;
		ssh_callbacks_init(cb);
	}
	if (kind == PAIR_SESSION) {
		p->cb[DOWN].channel_pty_request_function = cb_pty;
		p->cb[DOWN].channel_pty_window_change_function = cb_winch;
		p->cb[DOWN].channel_shell_request_function = cb_shell;
		p->cb[DOWN].channel_exec_request_function = cb_exec;
		p->cb[DOWN].channel_subsystem_request_function = cb_subsystem;
		p->cb[DOWN].channel_env_request_function = cb_env;
		p->cb[DOWN].channel_signal_function = cb_signal;
		if (r->c->agent_ok)
			p->cb[DOWN].channel_auth_agent_req_function =
			    cb_agent_req;
		p->cb[UP].channel_exit_status_function = cb_exit_status;
		p->cb[UP].channel_exit_signal_function = cb_exit_signal;
	}
	return p;
}

/* Hook the side made last (the other one got its callbacks at birth). */
static void
pair_link(struct relay *r, struct pair *p, int side)
{
	ssh_set_channel_callbacks(p->ch[side], &p->cb[side]);
	p->next = r->pairs;
	r->pairs = p;
}

/* No callback of libssh's may reach p from here on. */
static void
pair_unhook(struct pair *p)
{
	int side;

	for (side = 0; side < 2; side++)
		if (p->ch[side] != NULL)
			ssh_remove_channel_callbacks(p->ch[side],
			    &p->cb[side]);
}

/*
 * A channel the peer has not closed outlives ssh_channel_free() inside
 * libssh, and freeing one may flush, that is handle packets: unhook
 * first.  Channels already freed with their session are NULL here.
 */
static void
pair_free(struct pair *p)
{
	int side, s;

	pair_unhook(p);
	for (side = 0; side < 2; side++) {
		if (p->ch[side] != NULL)
			ssh_channel_free(p->ch[side]);
		for (s = 0; s < 2; s++)
			free(p->carry[side][s].buf);
	}
	free(p->sig);
	free(p->sigmsg);
	free(p->siglang);
	free(p);
}

/* The client opened a session channel: open one upstream first. */
static ssh_channel
cb_open_session(ssh_session session, void *ud)
{
	struct relay *r = ud;
	struct pair *p = pair_new(r, PAIR_SESSION);

	p->ch[UP] = ssh_channel_new(r->s[UP]);
	if (p->ch[UP] == NULL)
		goto fail;
	ssh_set_channel_callbacks(p->ch[UP], &p->cb[UP]);
	if (UPCALL(r, ssh_channel_open_session(p->ch[UP])) != SSH_OK) {
		log_warn("session: project=%s cannot open a session "
		    "upstream: %s", r->c->project,
		    ssh_get_error(r->s[UP]));
		goto fail;
	}
	if ((p->ch[DOWN] = ssh_channel_new(session)) == NULL)
		goto fail;
	pair_link(r, p, DOWN);
	r->nsessions++;
	return p->ch[DOWN];
 fail:
	pair_free(p);
	return NULL;
}

/* direct-tcpip (ssh -L, VS Code): the project's server makes the hop. */
static int
open_direct(struct relay *r, ssh_message msg)
{
	struct pair *p = pair_new(r, PAIR_DIRECT);
	const char *host = ssh_message_channel_request_open_destination(msg);
	const char *orig = ssh_message_channel_request_open_originator(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	int oport = ssh_message_channel_request_open_originator_port(msg);
	char safe[128];

	log_info("session: project=%s developer=%s addr=%s "
	    "request=direct-tcpip arg=%s:%d", r->c->project, r->c->developer,
	    r->c->addr, log_safe(safe, sizeof(safe), host), port);
	if ((p->ch[UP] = ssh_channel_new(r->s[UP])) == NULL)
		goto fail;
	ssh_set_channel_callbacks(p->ch[UP], &p->cb[UP]);
	if (UPCALL(r, ssh_channel_open_forward(p->ch[UP], host, port,
	    orig ? orig : "127.0.0.1", oport)) != SSH_OK)
		goto fail;
	p->ch[DOWN] = ssh_message_channel_request_open_reply_accept(msg);
	if (p->ch[DOWN] == NULL)
		goto fail;
	pair_link(r, p, DOWN);
	return 0;
 fail:
	pair_free(p);
	return 1;		/* libssh answers "open failed" */
}

static int
cb_srv_message(ssh_session session, ssh_message msg, void *ud)
{
	struct relay *r = ud;

	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN &&
	    ssh_message_subtype(msg) == SSH_CHANNEL_DIRECT_TCPIP)
		return open_direct(r, msg);
	/* X11 and anything else: refused with the default answer. */
	return 1;
}

/* ssh -R: ask the project's server to listen, answer with its port. */
static void
cb_srv_global(ssh_session session, ssh_message msg, void *ud)
{
	struct relay *r = ud;
	int type = ssh_message_subtype(msg), bound = 0, rc;
	const char *addr = NULL;
	int port = 0;

	if (type == SSH_GLOBAL_REQUEST_KEEPALIVE) {
		ssh_message_global_request_reply_success(msg, 0);
		return;
	}
	if (type != SSH_GLOBAL_REQUEST_TCPIP_FORWARD &&
	    type != SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD) {
		ssh_message_reply_default(msg);
		return;
	}
	addr = ssh_message_global_request_address(msg);
	port = ssh_message_global_request_port(msg);
	if (type == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
		rc = UPCALL(r, ssh_channel_listen_forward(r->s[UP], addr, port,
		    &bound));
	else
		rc = UPCALL(r, ssh_channel_cancel_forward(r->s[UP], addr,
		    port));
	log_info("session: project=%s developer=%s addr=%s request=%s "
	    "port=%d result=%s", r->c->project, r->c->developer, r->c->addr,
	    type == SSH_GLOBAL_REQUEST_TCPIP_FORWARD ? "tcpip-forward" :
	    "cancel-tcpip-forward", port, rc == SSH_OK ? "ok" : "refused");
	if (rc == SSH_OK)
		ssh_message_global_request_reply_success(msg,
		    (uint16_t)(port == 0 ? bound : port));
	else
		ssh_message_reply_default(msg);
}

/* The project's server reports a connection to an ssh -R listener. */
static int
open_forwarded(struct relay *r, ssh_message msg)
{
	struct pair *p = pair_new(r, PAIR_FORWARDED);
	const char *host = ssh_message_channel_request_open_destination(msg);
	const char *orig = ssh_message_channel_request_open_originator(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	int oport = ssh_message_channel_request_open_originator_port(msg);
	int rc;

	if ((p->ch[DOWN] = ssh_channel_new(r->s[DOWN])) == NULL)
		goto fail;
	ssh_set_channel_callbacks(p->ch[DOWN], &p->cb[DOWN]);
	ssh_set_blocking(r->s[DOWN], 1);
	rc = ssh_channel_open_reverse_forward(p->ch[DOWN], host, port,
	    orig ? orig : "127.0.0.1", oport);
	ssh_set_blocking(r->s[DOWN], 0);
	if (rc != SSH_OK)
		goto fail;
	p->ch[UP] = ssh_message_channel_request_open_reply_accept(msg);
	if (p->ch[UP] == NULL)
		goto fail;
	pair_link(r, p, UP);
	return 0;
 fail:
	pair_free(p);
	return 1;
}

static int
cb_up_message(ssh_session session, ssh_message msg, void *ud)
{
	struct relay *r = ud;

	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN &&
	    ssh_message_subtype(msg) == SSH_CHANNEL_FORWARDED_TCPIP)
		return open_forwarded(r, msg);
	return 1;
}

/* ssh -A: the project's server wants the client's agent. */
static ssh_channel
cb_up_agent(ssh_session session, void *ud)
{
	struct relay *r = ud;
	struct pair *p = NULL;
	int rc;

	if (!r->c->agent_ok)
		return NULL;
	p = pair_new(r, PAIR_AGENT);
	if ((p->ch[DOWN] = ssh_channel_new(r->s[DOWN])) == NULL)
		goto fail;
	ssh_set_channel_callbacks(p->ch[DOWN], &p->cb[DOWN]);
	ssh_set_blocking(r->s[DOWN], 1);
	rc = ssh_channel_open_auth_agent(p->ch[DOWN]);
	ssh_set_blocking(r->s[DOWN], 0);
	if (rc != SSH_OK)
		goto fail;
	if ((p->ch[UP] = ssh_channel_new(r->s[UP])) == NULL)
		goto fail;
	pair_link(r, p, UP);
	return p->ch[UP];
 fail:
	pair_free(p);
	return NULL;
}

static void
reap(struct relay *r)
{
	struct pair **pp = &r->pairs, *p;

	while ((p = *pp) != NULL) {
		if (p->sent_close[DOWN] && p->sent_close[UP] &&
		    p->got_close[DOWN] && p->got_close[UP]) {
			*pp = p->next;
			pair_free(p);
		} else
			pp = &p->next;
	}
}

static long
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Called the moment authentication succeeds, inside libssh's callback:
 * a client that sends its channel requests right behind its last auth
 * packet finds them handled, not refused by the auth-phase callbacks.
 */
struct relay *
gw_relay_new(struct gw_conn *c)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->c = c;
	r->s[DOWN] = c->srv;
	r->s[UP] = c->up;
	ssh_set_blocking(r->s[UP], 0);

	r->srvcb.userdata = r;
	r->srvcb.channel_open_request_session_function = cb_open_session;
	ssh_callbacks_init(&r->srvcb);
	ssh_set_server_callbacks(r->s[DOWN], &r->srvcb);
	ssh_set_message_callback(r->s[DOWN], cb_srv_message, r);
	ssh_set_message_callback(r->s[UP], cb_up_message, r);

	r->scb[DOWN].userdata = r;
	r->scb[DOWN].global_request_function = cb_srv_global;
	ssh_callbacks_init(&r->scb[DOWN]);
	ssh_set_callbacks(r->s[DOWN], &r->scb[DOWN]);
	r->scb[UP].userdata = r;
	r->scb[UP].channel_open_request_auth_agent_function = cb_up_agent;
	ssh_callbacks_init(&r->scb[UP]);
	ssh_set_callbacks(r->s[UP], &r->scb[UP]);
	return r;
}

/*
 * The provisioner speaks on the held connection only to say the VM is
 * stopping.  Tell each shell and end the relay as if the project's leg
 * had dropped: the client gets its channels closed at once instead of
 * waiting out keepalives on a guest that is gone.  A provisioner that merely went away (restart)
 * leaves the VM running: stop listening and go on.
 */
static void
provisioner_spoke(struct relay *r)
{
	static const char note[] =
	    "\r\nprison: the project's VM is stopping; session closed.\r\n";
	struct gw_conn *c = r->c;
	struct pair *p;

	switch (proto_hold_event(c->prov_fd)) {
	case -1:
		close(c->prov_fd);
		c->prov_fd = -1;
		break;
	case 1:
		r->vm_stopped = 1;
		for (p = r->pairs; p != NULL; p = p->next)
			if (p->kind == PAIR_SESSION && p->ch[DOWN] != NULL &&
			    !p->sent_eof[DOWN] && !p->sent_close[DOWN])
				ssh_channel_write_stderr(p->ch[DOWN], note,
				    sizeof(note) - 1);
		break;
	}
}

/*
 * libssh reads a socket a few kilobytes per event; a busy leg would cost
 * a trip through poll() and every pair for each of them.  Take what is
 * already there in one go, a bounded number of rounds so that the other
 * leg and the other channels get their turn.
 */
static int
drain(struct relay *r, int side)
{
	int i, rc = SSH_OK;

	for (i = 0; i < DRAIN_ROUNDS; i++)
		if ((rc = ssh_event_dopoll(r->ev[side], 0)) != SSH_OK ||
		    !ssh_is_connected(r->s[side]))
			break;
	return rc == SSH_AGAIN ? SSH_OK : rc;
}

int
gw_relay_run(struct relay *r)
{
	struct gw_conn *c = r->c;
	struct pair *p;
	long next_ka;
	int side, ka = c->cfg->keepalive_interval, ret = -1;

	for (side = 0; side < 2; side++) {
		ssh_set_blocking(r->s[side], 0);
		r->ev[side] = ssh_event_new();
		if (r->ev[side] == NULL ||
		    ssh_event_add_session(r->ev[side], r->s[side]) != SSH_OK) {
			log_err("relay: cannot set up the event loop");
			goto out;
		}
	}

	next_ka = ka > 0 ? now_s() + ka : 0;
	for (;;) {
		struct pollfd pfd[3];
		int timeout = ka > 0 ? 1000 * ka : -1;

		for (side = 0; side < 2; side++) {
			pfd[side].fd = ssh_get_fd(r->s[side]);
			pfd[side].events = POLLIN;
			if (ssh_get_status(r->s[side]) & SSH_WRITE_PENDING)
				pfd[side].events |= POLLOUT;
			pfd[side].revents = 0;
		}
		pfd[2].fd = c->prov_fd;		/* -1: ignored */
		pfd[2].events = POLLIN;
		pfd[2].revents = 0;
		if (poll(pfd, 3, timeout) == -1 && errno != EINTR) {
			log_err("relay: poll: %s", strerror(errno));
			goto out;
		}
		for (side = 0; side < 2; side++)
			if (pfd[side].revents != 0 &&
			    drain(r, side) == SSH_ERROR &&
			    !ssh_is_connected(r->s[side]))
				break;
		if (pfd[2].revents != 0)
			provisioner_spoke(r);
		for (p = r->pairs; p != NULL; p = p->next) {
			p->busy = 0;
			pump(p, DOWN);
			pump(p, UP);
		}
		reap(r);
		if (!ssh_is_connected(r->s[DOWN]) ||
		    !ssh_is_connected(r->s[UP]) || r->vm_stopped)
			break;
		if (ka > 0 && now_s() >= next_ka) {
			/* Traffic on both legs keeps NAT state and shows a
			 * dead peer (TCP keepalive does the rest). */
			ssh_send_ignore(r->s[DOWN], "");
			ssh_send_ignore(r->s[UP], "");
			next_ka = now_s() + ka;
		}
	}
	ret = 0;
	/* Whatever the client is still owed (exit status, close). */
	if (ssh_is_connected(r->s[DOWN])) {
		for (p = r->pairs; p != NULL; p = p->next)
			if (!p->sent_close[DOWN]) {
				ssh_channel_close(p->ch[DOWN]);
				p->sent_close[DOWN] = 1;
			}
		gw_flush(r->s[DOWN], r->ev[DOWN], 2000);
	}
 out:
	log_info("session: project=%s developer=%s addr=%s end=%s",
	    c->project, c->developer, c->addr,
	    !ssh_is_connected(r->s[DOWN]) ? "client" :
	    r->vm_stopped ? "vm-stopped" :
	    !ssh_is_connected(r->s[UP]) ? "upstream" : "error");
	/*
	 * Nothing more is owed on either leg.  Unhook every pair, then
	 * disconnect both sessions, which frees their channels without
	 * waiting on a peer; the pairs go last, their channels gone.
	 */
	for (p = r->pairs; p != NULL; p = p->next)
		pair_unhook(p);
	for (side = 0; side < 2; side++) {
		if (r->ev[side] != NULL) {
			ssh_event_remove_session(r->ev[side], r->s[side]);
			ssh_event_free(r->ev[side]);
		}
		ssh_disconnect(r->s[side]);
	}
	while ((p = r->pairs) != NULL) {
		r->pairs = p->next;
		p->ch[DOWN] = p->ch[UP] = NULL;
		pair_free(p);
	}
	free(r);
	return ret;
}
