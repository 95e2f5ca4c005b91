/*
 * The provisioner passes the guest's network and metadata settings as
 * prison.* words on the kernel command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "agent.h"
#include "log.h"
#include "xmalloc.h"

static int
valid_ipv4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

static int
valid_cidr(const char *s)
{
	char buf[32], *slash, *end;
	long pfx;

	if (strlen(s) >= sizeof(buf))
		return 0;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) == NULL)
		return 0;
	*slash++ = '\0';
	errno = 0;
	pfx = strtol(slash, &end, 10);
	if (*slash == '\0' || *end != '\0' || pfx < 1 || pfx > 32)
		return 0;
	return valid_ipv4(buf);
}

int
cmdline_parse(const char *text, struct guest_cmdline *c, char *err,
    size_t errlen)
{
	char *copy = xstrdup(text), *w, *save = NULL, **dst;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	for (w = strtok_r(copy, " \t\n", &save); w != NULL;
	    w = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(w, "prison.ip=", 10) == 0)
			dst = &c->ip;
		else if (strncmp(w, "prison.gw=", 10) == 0)
			dst = &c->gw;
		else if (strncmp(w, "prison.mmds=", 12) == 0)
			dst = &c->mmds;
		else if (strncmp(w, "prison.project=", 15) == 0)
			dst = &c->project;
		else
			continue;
		free(*dst);
		*dst = xstrdup(strchr(w, '=') + 1);
	}
	if (c->ip == NULL || !valid_cidr(c->ip)) {
		seterr(err, errlen, "kernel command line: prison.ip=%s is "
		    "missing or not ADDRESS/PREFIX", c->ip ? c->ip : "");
		goto out;
	}
	if (c->gw == NULL || !valid_ipv4(c->gw)) {
		seterr(err, errlen, "kernel command line: prison.gw=%s is "
		    "missing or not an IPv4 address", c->gw ? c->gw : "");
		goto out;
	}
	if (c->mmds == NULL)
		c->mmds = xstrdup("169.254.169.254");
	if (!valid_ipv4(c->mmds)) {
		seterr(err, errlen, "kernel command line: prison.mmds=%s is "
		    "not an IPv4 address", c->mmds);
		goto out;
	}
	ret = 0;
 out:
	free(copy);
	if (ret == -1)
		cmdline_free(c);
	return ret;
}

/* /proc files report size 0, so read_file() cannot be used here. */
int
cmdline_read(struct guest_cmdline *c, char *err, size_t errlen)
{
	char text[8192];
	size_t n;
	FILE *fp;

	if ((fp = fopen("/proc/cmdline", "re")) == NULL)
		return seterr(err, errlen, "/proc/cmdline: %s",
		    strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	return cmdline_parse(text, c, err, errlen);
}

void
cmdline_free(struct guest_cmdline *c)
{
	free(c->ip);
	free(c->gw);
	free(c->mmds);
	free(c->project);
	memset(c, 0, sizeof(*c));
}
