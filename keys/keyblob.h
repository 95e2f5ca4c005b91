/*
 * The checks of a public key that need no libssh: strict base64, the
 * type named inside the blob, which types prison accepts, the RSA size,
 * and the SHA256 fingerprint (`ssh-keygen -lf`'s hash of the blob).
 * keyparse builds on them when a key is registered; the registry loader
 * uses them alone, so that pam_prison.so, loaded into sshd, does not
 * bring libssh with it.
 */
#ifndef PRISON_KEYBLOB_H
#define PRISON_KEYBLOB_H

#include <stddef.h>

#define KEYBLOB_MIN_RSA_BITS	2048
#define KEYBLOB_MAX_B64		(16 * 1024)

enum keyblob_class { KB_UNKNOWN, KB_OK, KB_DSA, KB_CERT };

/* What kind of type name t is: accepted, refused DSA, certificate, ?. */
enum keyblob_class keyblob_classify(const char *t);
/* Fill err with why a type of class c is refused; returns -1. */
int	keyblob_class_error(enum keyblob_class c, const char *t, char *err,
	    size_t errlen);

/*
 * Check the base64 blob b64, whose type must be ctype (NULL: any
 * accepted type).  On success returns 0 and, when asked, the type inside
 * the blob (*inner) and "SHA256:<base64 without padding>" (*fp), both
 * allocated.  Otherwise -1 with err filled and nothing returned.
 */
int	keyblob_check(const char *ctype, const char *b64, char **inner,
	    char **fp, char *err, size_t errlen);

#endif
