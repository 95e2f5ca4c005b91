/*
 * A small client for Firecracker's HTTP API on its unix socket, built on
 * libcurl.  Every call names the request ("PUT /drives/rootfs") in the
 * error buffer, and when Firecracker refused it, also the fault_message
 * it sent, so an operator reads Firecracker's own reason.
 */
#ifndef PRISON_FC_API_H
#define PRISON_FC_API_H

#include <stddef.h>

/* Seconds one request may take before it counts as failed. */
#define FC_API_TIMEOUT	10

/*
 * Send method (GET, PUT, PATCH) to path with an optional JSON body.
 * Fills *status with the HTTP status and, when resp is not NULL, *resp
 * with the allocated response body (may be empty).  Returns 0 when an
 * HTTP answer arrived, whatever its status, -1 otherwise.
 */
int	fc_api_request(const char *sock, const char *method, const char *path,
	    const char *body, long *status, char **resp, char *err,
	    size_t errlen);

/*
 * The same, but Firecracker must answer 204 No Content; anything else is
 * an error naming the request, the status and the fault_message.
 */
int	fc_api_call(const char *sock, const char *method, const char *path,
	    const char *body, char *err, size_t errlen);

/*
 * GET / and copy the instance's "state" ("Not started", "Running",
 * "Paused") into state.  Returns 0 or -1.
 */
int	fc_api_state(const char *sock, char *state, size_t statelen,
	    char *err, size_t errlen);

/*
 * Copy Firecracker's text into an error message: printable ASCII and
 * spaces kept, anything else '?', so a message stays one line.
 */
void	fc_api_clean(char *dst, size_t dstlen, const char *src);

#endif
