/*
 * prisonctl gateway-key: print the public half of the key the gateway
 * logs in to guests and upstream SSH servers with, making the key first
 * if the gateway has not yet run.  Admins paste it into an upstream's
 * authorized_keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libssh/libssh.h>

#include "config.h"
#include "ctl.h"
#include "gateway.h"

int
ctl_gateway_key(const struct prison_config *cfg, int argc, char **argv)
{
	ssh_key key = NULL;
	char err[512], *line = NULL;

	if (argc > 0)
		return ctl_fail("gateway-key takes no arguments");
	if (gw_key_ensure(cfg->client_key, SSH_KEYTYPE_ED25519, 0, &key, err,
	    sizeof(err)) == -1)
		return ctl_fail("%s", err);
	line = gw_key_line(key, "prison-gateway", err, sizeof(err));
	ssh_key_free(key);
	if (line == NULL)
		return ctl_fail("%s", err);
	printf("%s\n", line);
	free(line);
	return 0;
}
