/*
 * prison-gateway internals.  The listener (main.c) accepts, forks one
 * child per connection and keeps the limits; the child (session.c) runs
 * the key exchange and authentication (auth.c), reaches the project's
 * SSH server (upstream.c) and relays every channel (relay.c).
 */
#ifndef PRISON_GATEWAY_H
#define PRISON_GATEWAY_H

#include <stddef.h>
#include <sys/types.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

struct prison_config;
struct relay;

/* Algorithms offered on the client-facing side (docs/gateway.md). */
#define GW_KEX		"curve25519-sha256," \
			"curve25519-sha256@libssh.org," \
			"diffie-hellman-group16-sha512," \
			"diffie-hellman-group18-sha512"
#define GW_CIPHERS	"aes128-gcm@openssh.com,aes256-gcm@openssh.com," \
			"chacha20-poly1305@openssh.com,aes256-ctr," \
			"aes192-ctr,aes128-ctr"
#define GW_MACS		"hmac-sha2-256-etm@openssh.com," \
			"hmac-sha2-512-etm@openssh.com"
#define GW_HOSTKEYS	"ssh-ed25519,rsa-sha2-512,rsa-sha2-256"
#define GW_PUBKEYS	"ssh-ed25519,sk-ssh-ed25519@openssh.com," \
			"ecdsa-sha2-nistp256,ecdsa-sha2-nistp384," \
			"ecdsa-sha2-nistp521," \
			"sk-ecdsa-sha2-nistp256@openssh.com," \
			"rsa-sha2-512,rsa-sha2-256"

/* Our identification string: "SSH-2.0-prison". */
#define GW_VERSION	"prison"

/* A child's exit status when the login grace time ran out. */
#define GW_EXIT_GRACE		3

/* One byte a child writes to the listener's pipe. */
#define GW_EV_AUTHENTICATED	'A'	/* no longer pre-auth */
#define GW_EV_FAILURE		'F'	/* one failed authentication */

/* hostkeys.c: load the key at path, creating it (0600) when missing. */
int	gw_key_ensure(const char *path, enum ssh_keytypes_e type, int bits,
	    ssh_key *key, char *err, size_t errlen);
/* "type base64 comment" of key; allocated. */
char	*gw_key_line(ssh_key key, const char *comment, char *err,
	    size_t errlen);

/* What the authenticated child knows about its connection. */
struct gw_conn {
	const struct prison_config *cfg;
	ssh_session	 srv;		/* client-facing */
	ssh_session	 up;		/* the project's SSH server */
	ssh_key		 client_key;	/* logs in upstream */
	int		 evfd;		/* pipe to the listener */
	char		 addr[64];	/* client address, for logs */
	int		 port;

	/* Set by authentication. */
	int		 authenticated;
	int		 tries;
	int		 closing;	/* refuse and disconnect */
	int		 key_ok;	/* key accepted, second factor due */
	int		 badsig;	/* signatures libssh refused */
	int		 agent_ok;	/* ssh -A allowed for this project */
	int		 ssh_log_level;	/* libssh's, outside authentication */
	int		 ki_fd;		/* kbd-interactive helper */
	pid_t		 ki_pid;
	char		 project[64];
	char		 developer[64];
	char		 fp[128];
	char		 keytype[48];
	int		 prov_fd;	/* held provisioner link or -1 */
	struct relay	*relay;		/* set once authenticated */
	char		 refusal[1024];	/* shown before closing */
};

/* session.c */
void	gw_tcp_tune(int fd, int keepalive, int bound_retries);
void	gw_flush(ssh_session s, ssh_event ev, int ms);
void	gw_session(const struct prison_config *cfg, ssh_bind bind, int fd,
	    ssh_key client_key, int evfd);

/* auth.c */
void	gw_auth_install(struct gw_conn *c,
	    struct ssh_server_callbacks_struct *cb);
int	gw_auth_message(ssh_session s, ssh_message msg, void *ud);
void	gw_auth_watch(struct gw_conn *c, int on);
void	gw_auth_badsig(struct gw_conn *c);
void	gw_auth_log(struct gw_conn *c, const char *verdict,
	    const char *method, const char *user, const char *reason);

/* kbdint.c: 1 authenticated, 0 refused, 2 prompts sent. */
int	gw_kbdint(struct gw_conn *c, ssh_message msg);
void	gw_kbdint_stop(struct gw_conn *c);

/* upstream.c: connect and log in; fills c->up or c->refusal. */
int	gw_upstream_open(struct gw_conn *c, const char *host, int port,
	    const char *user, const char *pinned, const char *pin_id,
	    char *err, size_t errlen);

/*
 * relay.c: gw_relay_new() takes over the sessions' callbacks once the
 * client is in; gw_relay_run() relays until either side goes away and
 * frees the relay.
 */
struct relay	*gw_relay_new(struct gw_conn *c);
int		 gw_relay_run(struct relay *r);

#endif
