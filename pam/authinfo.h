/*
 * The developer behind an OpenSSH login, from sshd's record of the
 * authentication methods that succeeded ("publickey TYPE BLOB" lines).
 */
#ifndef PRISON_AUTHINFO_H
#define PRISON_AUTHINFO_H

#include <stddef.h>

struct registry;
struct reg_key;

const struct reg_user	*authinfo_developer(const struct registry *reg,
			    const char *info, const struct reg_key **keyp,
			    char *why, size_t whylen);

#endif
