/*
 * The provisioner's control socket: a unix stream socket carrying one JSON
 * object per line (at most PROTO_MAX bytes) in each direction.
 *
 * Requests carry "op".  Replies carry "ok": true or false; a failure has
 * "error" (one line for humans) and, for ensure, "stage" (network, disk,
 * vmm, boot, sshd).  Before its final reply, ensure may send any number of
 * {"progress": "..."} lines that a front door can show a waiting user.
 *
 *   ensure   {project, hold?}   -> {ok, address, port, host_key, dev_user}
 *            With "hold": true the connection stays open after the reply
 *            and counts as one session of the project until it closes,
 *            so a crashed front door can never leak a session.  If the
 *            VM stops first, the provisioner sends {"event": "stopped"}
 *            and closes it.
 *   list     {}                 -> {ok, vms: [...]}
 *   status   {project}          -> {ok, vm: {...}}
 *   stop     {project}          -> {ok}
 *   stop-all {}                 -> {ok, stopped: N}
 *   refresh  {project?}         -> {ok}   registry changed: rebuild metadata
 *
 * The provisioner checks the peer's credentials on every connection: root
 * may ask anything, the gateway's user only ensure.  A malformed message
 * ends that connection.
 */
#ifndef PRISON_PROTO_H
#define PRISON_PROTO_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define PROTO_MAX	(256 * 1024)

int	proto_connect(const char *path, char *err, size_t errlen);
/* Send msg followed by a newline; does not steal the reference. */
int	proto_send(int fd, json_t *msg, char *err, size_t errlen);
/*
 * Read one message.  timeout_ms < 0 waits forever.  Returns 0 with *msg
 * set (an object), 1 on orderly EOF before any byte, -1 on error,
 * timeout or a malformed message (err says which).
 */
int	proto_recv(int fd, json_t **msg, int timeout_ms, char *err,
	    size_t errlen);
/* One request, one final reply; progress lines go to cb when non-NULL. */
int	proto_call(const char *path, json_t *req, json_t **reply,
	    void (*progress)(const char *, void *), void *arg, int timeout_ms,
	    char *err, size_t errlen);
/*
 * ensure with hold: returns 0 once a final reply arrived (*reply, with
 * "ok" true or false), -1 with err filled when none did.  When ok, *holdfd
 * is the open connection, counted as one session of the project until it
 * is closed; otherwise *holdfd is -1.
 */
int	proto_ensure_hold(const char *path, const char *project,
	    void (*progress)(const char *, void *), void *arg, int timeout_ms,
	    json_t **reply, int *holdfd, char *err, size_t errlen);
/*
 * Read what the provisioner says on a held connection that polled
 * readable: 1 when it says the VM stopped, 0 for anything else, -1 when
 * it is gone (closed, or a broken message; the caller closes fd).
 */
int	proto_hold_event(int fd);
int	proto_peer(int fd, uid_t *uid, gid_t *gid, pid_t *pid);

#endif
