#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "xmalloc.h"

int
proto_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return seterr(err, errlen, "%s: socket path too long", path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return seterr(err, errlen, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		seterr(err, errlen, "cannot reach the provisioner at %s: %s",
		    path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
proto_send(int fd, json_t *msg, char *err, size_t errlen)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	int ret = -1;

	if (s == NULL)
		return seterr(err, errlen, "cannot encode message");
	len = strlen(s);
	if (len + 1 > PROTO_MAX) {
		seterr(err, errlen, "message too large (%zu bytes)", len);
		goto out;
	}
	s[len++] = '\n';	/* json_dumps leaves room: replace NUL */
	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			seterr(err, errlen, "send: %s", strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	ret = 0;
 out:
	free(s);
	return ret;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
proto_recv(int fd, json_t **msg, int timeout_ms, char *err, size_t errlen)
{
	long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char *buf = xmalloc(PROTO_MAX);
	size_t len = 0;
	json_error_t jerr;
	int ret = -1;

	*msg = NULL;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int wait = deadline < 0 ? -1 : (int)(deadline - now_ms());
		ssize_t n;

		if (deadline >= 0 && wait <= 0) {
			seterr(err, errlen, "timed out waiting for a reply");
			goto out;
		}
		if (poll(&pfd, 1, wait) == -1) {
			if (errno == EINTR)
				continue;
			seterr(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (pfd.revents == 0)
			continue;
		/* One byte at a time: messages are small and rare, and no
		 * byte of the next message may be consumed here. */
		n = read(fd, buf + len, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			seterr(err, errlen, "read: %s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			if (len == 0) {
				ret = 1;
				goto out;
			}
			seterr(err, errlen, "connection closed mid-message");
			goto out;
		}
		if (buf[len] == '\n')
			break;
		if (++len >= PROTO_MAX - 1) {
			seterr(err, errlen, "message longer than %d bytes",
			    PROTO_MAX);
			goto out;
		}
	}
	*msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*msg == NULL) {
		seterr(err, errlen, "malformed message: %s", jerr.text);
		goto out;
	}
	if (!json_is_object(*msg)) {
		json_decref(*msg);
		*msg = NULL;
		seterr(err, errlen, "malformed message: not a JSON object");
		goto out;
	}
	ret = 0;
 out:
	free(buf);
	return ret;
}

/*
 * Send req on fd and read until the final reply (one carrying "ok"),
 * passing progress lines to progress.  A peer the provisioner refuses is
 * told why before its request is read, so a failed send still looks for
 * that reply.
 */
static int
exchange(int fd, json_t *req, json_t **reply,
    void (*progress)(const char *, void *), void *arg, int timeout_ms,
    char *err, size_t errlen)
{
	json_t *msg = NULL;
	const char *s;
	int r;

	*reply = NULL;
	if (proto_send(fd, req, err, errlen) == -1) {
		if (proto_recv(fd, &msg, 1000, NULL, 0) == 0 &&
		    json_object_get(msg, "ok") != NULL) {
			*reply = msg;
			return 0;
		}
		json_decref(msg);
		return -1;
	}
	for (;;) {
		r = proto_recv(fd, &msg, timeout_ms, err, errlen);
		if (r == 1)
			seterr(err, errlen, "the provisioner closed the "
			    "connection without replying");
		if (r != 0)
			return -1;
		if (json_object_get(msg, "ok") != NULL)
			break;
		s = json_string_value(json_object_get(msg, "progress"));
		if (progress != NULL && s != NULL)
			progress(s, arg);
		json_decref(msg);
	}
	*reply = msg;
	return 0;
}

int
proto_call(const char *path, json_t *req, json_t **reply,
    void (*progress)(const char *, void *), void *arg, int timeout_ms,
    char *err, size_t errlen)
{
	int fd, r;

	*reply = NULL;
	if ((fd = proto_connect(path, err, errlen)) == -1)
		return -1;
	r = exchange(fd, req, reply, progress, arg, timeout_ms, err, errlen);
	close(fd);
	return r;
}

int
proto_ensure_hold(const char *path, const char *project,
    void (*progress)(const char *, void *), void *arg, int timeout_ms,
    json_t **reply, int *holdfd, char *err, size_t errlen)
{
	json_t *req = NULL;
	int fd, r = -1;

	*reply = NULL;
	*holdfd = -1;
	if ((fd = proto_connect(path, err, errlen)) == -1)
		return -1;
	req = json_pack("{s:s, s:s, s:b}", "op", "ensure", "project",
	    project, "hold", 1);
	if (req == NULL) {
		seterr(err, errlen, "cannot encode the ensure request");
		goto out;
	}
	r = exchange(fd, req, reply, progress, arg, timeout_ms, err, errlen);
	if (r == 0 && json_is_true(json_object_get(*reply, "ok"))) {
		*holdfd = fd;
		fd = -1;
	}
 out:
	json_decref(req);
	if (fd != -1)
		close(fd);
	return r;
}

int
proto_peer(int fd, uid_t *uid, gid_t *gid, pid_t *pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return -1;
	if (uid != NULL)
		*uid = cr.uid;
	if (gid != NULL)
		*gid = cr.gid;
	if (pid != NULL)
		*pid = cr.pid;
	return 0;
}

int
proto_hold_event(int fd)
{
	json_t *msg;
	const char *ev;
	int stopped;

	if (proto_recv(fd, &msg, 1000, NULL, 0) != 0)
		return -1;
	ev = json_string_value(json_object_get(msg, "event"));
	stopped = ev != NULL && strcmp(ev, "stopped") == 0;
	json_decref(msg);
	return stopped;
}
