/*
 * The gateway's own keys: its SSH host keys and the client key it logs in
 * to guests and upstreams with.  Each is made once, on first use, and
 * kept 0600; a later start reads the same file, so clients never see the
 * host key change.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "fileio.h"
#include "gateway.h"
#include "log.h"
#include "xmalloc.h"

static int
key_create(const char *path, enum ssh_keytypes_e type, int bits,
    char *err, size_t errlen)
{
	char *tmp = NULL, *dir = NULL, *pub = NULL;
	ssh_key key = NULL;
	mode_t old;
	int ret = -1;

	dir = xstrdup(path);
	if (mkdir_p(dirname(dir), 0755, err, errlen) == -1)
		goto out;
	if (ssh_pki_generate(type, bits, &key) != SSH_OK) {
		seterr(err, errlen, "%s: cannot generate a key", path);
		goto out;
	}
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	/* The umask keeps the private key unreadable from its first byte. */
	old = umask(077);
	if (ssh_pki_export_privkey_file(key, NULL, NULL, NULL, tmp) !=
	    SSH_OK) {
		umask(old);
		seterr(err, errlen, "%s: cannot write the key", tmp);
		goto out;
	}
	umask(old);
	if (chmod(tmp, 0600) == -1 || rename(tmp, path) == -1) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	/* The public half beside it, for admins; failure is harmless. */
	pub = xasprintf("%s.pub", path);
	ssh_pki_export_pubkey_file(key, pub);
	ret = 0;
 out:
	ssh_key_free(key);
	free(tmp);
	free(dir);
	free(pub);
	return ret;
}

int
gw_key_ensure(const char *path, enum ssh_keytypes_e type, int bits,
    ssh_key *key, char *err, size_t errlen)
{
	struct stat st;

	*key = NULL;
	if (stat(path, &st) == -1) {
		if (errno != ENOENT)
			return seterr(err, errlen, "%s: %s", path,
			    strerror(errno));
		if (key_create(path, type, bits, err, errlen) == -1)
			return -1;
	} else if ((st.st_mode & 077) != 0) {
		return seterr(err, errlen, "%s: private key is readable by "
		    "others (mode %03o); chmod 600 it", path,
		    (unsigned)(st.st_mode & 0777));
	}
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, key) !=
	    SSH_OK)
		return seterr(err, errlen, "%s: not a readable private key",
		    path);
	if (ssh_key_type(*key) != type) {
		ssh_key_free(*key);
		*key = NULL;
		return seterr(err, errlen, "%s: expected a %s key", path,
		    ssh_key_type_to_char(type));
	}
	return 0;
}

char *
gw_key_line(ssh_key key, const char *comment, char *err, size_t errlen)
{
	char *b64 = NULL, *line = NULL;

	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
		seterr(err, errlen, "cannot encode the public key");
		return NULL;
	}
	line = xasprintf("%s %s%s%s", ssh_key_type_to_char(ssh_key_type(key)),
	    b64, comment ? " " : "", comment ? comment : "");
	ssh_string_free_char(b64);
	return line;
}
