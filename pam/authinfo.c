/*
 * What sshd says about a completed authentication (ExposeAuthInfo yes):
 * SSH_AUTH_INFO_0 in the PAM environment, or the file SSH_USER_AUTH
 * names in the session's environment, one line per method.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authinfo.h"
#include "registry.h"

#define AUTH_INFO_MAX	8192

/*
 * Find the developer from SSH_AUTH_INFO_0: one line per completed
 * authentication method, "publickey TYPE BLOB" for keys.  Every public
 * key listed must belong to the same developer, otherwise the request is
 * ambiguous and refused.  Returns the user or NULL with why filled.
 */
const struct reg_user *
authinfo_developer(const struct registry *reg, const char *info,
    const struct reg_key **keyp, char *why, size_t whylen)
{
	const struct reg_user *found = NULL, *u;
	const struct reg_key *k = NULL;
	char *copy = NULL, *line, *save = NULL, *method, *type, *blob, *sp;
	int nkeys = 0;

	*keyp = NULL;
	if (strlen(info) > AUTH_INFO_MAX) {
		snprintf(why, whylen, "SSH_AUTH_INFO_0 too long");
		return NULL;
	}
	copy = strdup(info);
	if (copy == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		method = strtok_r(line, " ", &sp);
		type = strtok_r(NULL, " ", &sp);
		blob = strtok_r(NULL, " ", &sp);
		if (method == NULL || strcmp(method, "publickey") != 0)
			continue;
		if (type == NULL || blob == NULL) {
			snprintf(why, whylen, "malformed publickey line in "
			    "SSH_AUTH_INFO_0");
			found = NULL;
			goto out;
		}
		nkeys++;
		if ((u = registry_user_by_key(reg, type, blob, &k)) == NULL) {
			snprintf(why, whylen, "key %.32s is not registered "
			    "to any developer", type);
			found = NULL;
			goto out;
		}
		if (found != NULL && found != u) {
			snprintf(why, whylen, "keys of two developers");
			found = NULL;
			goto out;
		}
		found = u;
		*keyp = k;
	}
	if (nkeys == 0)
		snprintf(why, whylen, "no public key in SSH_AUTH_INFO_0");
 out:
	if (found == NULL)
		*keyp = NULL;
	free(copy);
	return found;
}
