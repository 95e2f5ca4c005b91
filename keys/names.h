/*
 * The grammar of user and project names (docs/registry.md): 1-32 bytes of
 * [a-z0-9_-], starting with a letter, not ending in '-'.  A project name
 * is what developers type before the @, so it must also be a valid SSH and
 * POSIX user name, and must not be one of the reserved names.
 */
#ifndef PRISON_NAMES_H
#define PRISON_NAMES_H

#include <stddef.h>

#define NAME_MAX_LEN	32

int	name_valid_user(const char *name, char *err, size_t errlen);
int	name_valid_project(const char *name, char *err, size_t errlen);

#endif
