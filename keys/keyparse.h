/*
 * Reading the public keys admins paste: OpenSSH one-line keys and RFC 4716
 * ("---- BEGIN SSH2 PUBLIC KEY ----") blocks, one or many, with blank
 * lines and # comments (docs/registry.md lists what is accepted).  Every
 * key is checked by libssh and re-encoded; its fingerprint is the SHA256
 * form `ssh-keygen -lf` prints.
 */
#ifndef PRISON_KEYPARSE_H
#define PRISON_KEYPARSE_H

#include <stddef.h>

#include "registry.h"

#define KEYPARSE_MAX_INPUT	(1024 * 1024)

/*
 * Parse text of len bytes.  On success *keys holds *nkeys (>= 1) keys to
 * release with keyparse_free().  On failure nothing is returned and err
 * says "line N: reason"; the input is never quoted back, so a private key
 * pasted by mistake does not end up on a terminal or in a log.
 */
int	keyparse_text(const char *text, size_t len, struct reg_key **keys,
	    size_t *nkeys, char *err, size_t errlen);
void	keyparse_free(struct reg_key *keys, size_t nkeys);

/*
 * "SHA256:<base64 without padding>" of a base64 key blob, as ssh-keygen
 * prints it; NULL (err filled) when the blob is not a valid key.
 */
char	*keyparse_fingerprint(const char *type, const char *blob, char *err,
	    size_t errlen);

#endif
