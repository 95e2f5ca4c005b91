/*
 * /etc/resolv.conf from the metadata's "nameservers": the resolvers the
 * provisioner chose for the guest (by default the host's own upstream
 * ones).  Kept apart from setup.c so it is unit tested.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "agent.h"
#include "xmalloc.h"

#define RESOLV_MAX	3	/* the most the C library's resolver reads */

static int
valid_address(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return s != NULL && (inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1);
}

char *
resolv_conf_text(json_t *doc, const char *gw)
{
	json_t *ns = json_object_get(doc, "nameservers"), *v;
	char *s = xstrdup("# written by prison-guest from metadata\n"), *n;
	size_t i;
	int count = 0;

	/* Anything but an address would let metadata inject options. */
	json_array_foreach(ns, i, v) {
		if (count == RESOLV_MAX || !valid_address(json_string_value(v)))
			continue;
		n = xasprintf("%snameserver %s\n", s, json_string_value(v));
		free(s);
		s = n;
		count++;
	}
	/* An older provisioner sends none: the host side, as before. */
	if (count == 0 && valid_address(gw)) {
		n = xasprintf("%snameserver %s\n", s, gw);
		free(s);
		s = n;
	}
	return s;
}
