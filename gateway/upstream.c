/*
 * The gateway's leg to the project's SSH server: a guest (whose host key
 * the provisioner generated and tells us) or an upstream host:port from
 * the registry (whose key is pinned in known_hosts on first use).  We
 * never log in to a server whose key we cannot vouch for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "config.h"
#include "fileio.h"
#include "gateway.h"
#include "log.h"
#include "xmalloc.h"

/* What an upstream may present; the pin decides which one is right. */
#define UP_HOSTKEYS	"ssh-ed25519,ecdsa-sha2-nistp256," \
			"ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," \
			"rsa-sha2-512,rsa-sha2-256"
#define KNOWN_HOSTS_MAX	(4 * 1024 * 1024)

/*
 * known_hosts holds one line per pin: "ID TYPE BASE64", ID being
 * "project/host:port", so two projects pointing at one server pin
 * independently and a project re-pointed elsewhere pins afresh.
 * Returns 0 when key matches (or was just pinned), -1 with err filled.
 */
static int
pin_check(const char *file, const char *id, const char *line, char *err,
    size_t errlen)
{
	char *data = NULL, *lockf = NULL, *text = NULL, *p, *nl;
	size_t len = 0, idlen = strlen(id);
	int lock = -1, fd = -1, ret = -1;

	lockf = xasprintf("%s.lock", file);
	if ((lock = lock_path(lockf, 1, err, errlen)) == -1)
		goto out;
	if (read_file(file, KNOWN_HOSTS_MAX, &data, &len, err, errlen) ==
	    -1) {
		if (errno != ENOENT)
			goto out;
		data = xstrdup("");
		len = 0;
	}
	for (p = data; p != NULL && *p != '\0'; p = nl) {
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		if (strncmp(p, id, idlen) != 0 || p[idlen] != ' ')
			continue;
		if (strcmp(p + idlen + 1, line) == 0) {
			ret = 0;
			goto out;
		}
		seterr(err, errlen, "the host key of %s has changed since it "
		    "was pinned in %s; refusing to connect (an admin who "
		    "knows why can delete that line)", id, file);
		goto out;
	}
	/*
	 * First use: pin it.  One short append under the lock, so the
	 * unprivileged gateway needs write access to this file only, not
	 * to its directory.
	 */
	text = xasprintf("%s%s %s\n", (len > 0 && data[len - 1] != '\n' &&
	    data[len - 1] != '\0') ? "\n" : "", id, line);
	if ((fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0644)) == -1 || write(fd, text, strlen(text)) !=
	    (ssize_t)strlen(text) || fsync(fd) == -1) {
		seterr(err, errlen, "%s: cannot pin the host key: %s", file,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		goto out;
	}
	close(fd);
	log_notice("upstream: pinned host key for %s: %s", id, line);
	ret = 0;
 out:
	if (lock != -1)
		close(lock);
	free(lockf);
	free(data);
	free(text);
	return ret;
}

/* "TYPE BASE64" of the key the server presented. */
static char *
server_key_line(ssh_session up, char *err, size_t errlen)
{
	ssh_key key = NULL;
	char *line = NULL;

	if (ssh_get_server_publickey(up, &key) != SSH_OK) {
		seterr(err, errlen, "no host key from the server");
		return NULL;
	}
	line = gw_key_line(key, NULL, err, errlen);
	ssh_key_free(key);
	return line;
}

/* Compare "TYPE BASE64[ COMMENT]" with "TYPE BASE64". */
static int
same_key(const char *pinned, const char *line)
{
	size_t n = strlen(line);

	return strncmp(pinned, line, n) == 0 &&
	    (pinned[n] == '\0' || pinned[n] == ' ' || pinned[n] == '\n');
}

int
gw_upstream_open(struct gw_conn *c, const char *host, int port,
    const char *user, const char *pinned, const char *pin_id, char *err,
    size_t errlen)
{
	ssh_session up = NULL;
	char *line = NULL;
	long timeout = 30;
	int one = 1, zero = 0, ret = -1, rc;

	if ((up = ssh_new()) == NULL)
		return seterr(err, errlen, "out of memory");
	/* Our own settings only: no ~/.ssh/config, no system config. */
	if (ssh_options_set(up, SSH_OPTIONS_PROCESS_CONFIG, &zero) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_HOST, host) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_PORT, &port) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_USER, user) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_TIMEOUT, &timeout) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_NODELAY, &one) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") <
	    0 ||
	    ssh_options_set(up, SSH_OPTIONS_CIPHERS_C_S, GW_CIPHERS) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_CIPHERS_S_C, GW_CIPHERS) < 0 ||
	    ssh_options_set(up, SSH_OPTIONS_HOSTKEYS, UP_HOSTKEYS) < 0) {
		seterr(err, errlen, "cannot set SSH options: %s",
		    ssh_get_error(up));
		goto out;
	}
	if (ssh_connect(up) != SSH_OK) {
		seterr(err, errlen, "cannot connect to %s port %d: %s", host,
		    port, ssh_get_error(up));
		goto out;
	}
	gw_tcp_tune(ssh_get_fd(up), c->cfg->keepalive_interval, 1);
	if ((line = server_key_line(up, err, errlen)) == NULL)
		goto out;
	if (pinned != NULL) {
		if (!same_key(pinned, line)) {
			seterr(err, errlen, "the server at %s port %d did not "
			    "present the project's host key; refusing", host,
			    port);
			goto out;
		}
	} else if (pin_check(c->cfg->known_hosts, pin_id, line, err,
	    errlen) == -1)
		goto out;
	rc = ssh_userauth_publickey(up, NULL, c->client_key);
	if (rc != SSH_AUTH_SUCCESS) {
		seterr(err, errlen, "%s@%s port %d does not accept the "
		    "gateway's key (prisonctl gateway-key prints it)", user,
		    host, port);
		goto out;
	}
	c->up = up;
	up = NULL;
	ret = 0;
 out:
	if (up != NULL) {
		ssh_disconnect(up);
		ssh_free(up);
	}
	free(line);
	return ret;
}
