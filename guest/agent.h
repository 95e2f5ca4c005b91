/*
 * prison-guest: the agent inside every prison guest.  It reads what the
 * provisioner put on the kernel command line, configures eth0, fetches
 * the project's metadata (MMDS V2) and turns it into users, keys, files
 * and a host name.  Every step fills an error buffer; main decides what
 * is fatal (nothing after the network is: a guest that boots with part
 * of its setup is easier to repair than one that does not boot).
 */
#ifndef PRISON_GUEST_AGENT_H
#define PRISON_GUEST_AGENT_H

#include <stddef.h>

#include <jansson.h>

#define GUEST_STATE_DIR		"/var/lib/prison-guest"
#define GUEST_RUN_DIR		"/run/prison-guest"
#define GUEST_DOC_CACHE		GUEST_RUN_DIR "/metadata.json"
#define GUEST_BOOTSTRAPPED	GUEST_STATE_DIR "/bootstrapped"
#define GUEST_ENV_FILE		"/etc/prison/project.env"
#define GUEST_BOOTSTRAP_LOG	"/var/log/prison-bootstrap.log"
#define GUEST_SUDOERS		"/etc/sudoers.d/prison"
#define GUEST_HOST_KEY		"/etc/ssh/ssh_host_ed25519_key"

struct guest_cmdline {
	char	*ip;		/* 172.31.0.2/30 */
	char	*gw;
	char	*mmds;		/* metadata address */
	char	*project;
};

/* cmdline.c */
int	cmdline_parse(const char *text, struct guest_cmdline *,
	    char *err, size_t errlen);
int	cmdline_read(struct guest_cmdline *, char *err, size_t errlen);
void	cmdline_free(struct guest_cmdline *);

/* net.c: address, link up, default route; idempotent. */
int	net_configure(const char *ifname, const char *cidr, const char *gw,
	    char *err, size_t errlen);
/* The first non-loopback interface when ifname is missing. */
int	net_pick_interface(const char *want, char *out, size_t outlen);

/*
 * mmds.c: the "prison" object of the metadata document.  Retries with
 * backoff for up to timeout seconds (connection errors, 401 -> new
 * token, 5xx).  Returns a new reference.
 */
json_t	*mmds_fetch(const char *addr, int timeout, char *err,
	    size_t errlen);

/* setup.c */
int	valid_user_name(const char *);
int	setup_env_file(json_t *doc, char *err, size_t errlen);
int	setup_user(const char *user, char *err, size_t errlen);
/* Returns 1 when the file changed, 0 when it was already right. */
int	setup_authorized_keys(json_t *doc, const char *user, char *err,
	    size_t errlen);
int	setup_host_key(json_t *doc, char *err, size_t errlen);
int	setup_hostname(json_t *doc, const char *fallback, char *err,
	    size_t errlen);
int	setup_resolver(json_t *doc, const char *gw, char *err,
	    size_t errlen);
/*
 * resolv.c: resolv.conf for doc's "nameservers" (addresses only, at most
 * three), or gw when it names none.  Returns an allocated string.
 */
char	*resolv_conf_text(json_t *doc, const char *gw);

/* doc string member or def. */
const char *doc_str(json_t *doc, const char *key, const char *def);

/* bootstrap.c: clone the repository, run scripts; logs to the file. */
int	bootstrap_run(json_t *doc, char *err, size_t errlen);

/* Run argv, wait; exit status, or -1 with err.  Output to fd out. */
int	run_cmd(char *const argv[], int out, char *err, size_t errlen);

#endif
