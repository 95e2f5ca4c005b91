/*
 * Key blob checks without libssh (keyblob.h).  The base64 is decoded
 * strictly with libsodium, which also gives the SHA-256 of the
 * fingerprint; the blob layout (RFC 4253 strings: the type, then the
 * type's fields) is read by hand.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "keyblob.h"
#include "log.h"
#include "xmalloc.h"

/*
 * What libssh 0.10 can verify at login.  The FIDO (sk-) types are kept:
 * libssh checks their signatures, including the user-presence flag.
 */
static const char *const accepted[] = {
	"ssh-ed25519",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"ssh-rsa",
	"sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com",
	NULL
};

enum keyblob_class
keyblob_classify(const char *t)
{
	static const char cert[] = "-cert-v01@openssh.com";
	size_t i, n = strlen(t);

	for (i = 0; accepted[i] != NULL; i++)
		if (strcmp(t, accepted[i]) == 0)
			return KB_OK;
	if (strcmp(t, "ssh-dss") == 0)
		return KB_DSA;
	if (n > sizeof(cert) - 1 && strcmp(t + n - (sizeof(cert) - 1),
	    cert) == 0)
		return KB_CERT;
	return KB_UNKNOWN;
}

int
keyblob_class_error(enum keyblob_class c, const char *t, char *err,
    size_t errlen)
{
	char safe[48];
	size_t i;

	switch (c) {
	case KB_DSA:
		return seterr(err, errlen, "DSA (ssh-dss) keys are refused: "
		    "they are insecure and OpenSSH no longer accepts them");
	case KB_CERT:
		return seterr(err, errlen, "certificates are not accepted; "
		    "register the plain public key");
	default:
		break;
	}
	/* Echo the type only when it cannot be anything but a name. */
	for (i = 0; t[i] != '\0' && i < 40; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz0123456789@.-_", t[i]) ==
		    NULL)
			break;
	if (t[i] != '\0' || i == 0)
		return seterr(err, errlen, "not a public key (unknown key "
		    "type)");
	log_safe(safe, sizeof(safe), t);
	return seterr(err, errlen, "unknown key type \"%s\"", safe);
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Bits of the RSA modulus: blob = string type, mpint e, mpint n. */
static int
rsa_bits(const unsigned char *b, size_t len)
{
	size_t off = 0, i, n = 0;
	uint32_t l = 0;
	int bits, part;

	for (part = 0; part < 3; part++) {
		if (len - off < 4)
			return -1;
		l = get_u32(b + off);
		off += 4;
		if (l > len - off)
			return -1;
		if (part < 2)
			off += l;
	}
	for (i = 0; i < l && b[off + i] == 0; i++)
		;
	n = l - i;
	if (n == 0)
		return 0;
	bits = (int)n * 8;
	for (part = 0x80; part > 0 && (b[off + i] & part) == 0; part >>= 1)
		bits--;
	return bits;
}

/*
 * The fields after the type string, by type: their exact lengths (0:
 * any) and, for ECDSA, the curve the first must name.
 */
static const struct layout {
	const char	*type;
	const char	*curve;
	size_t		 nfields;
	size_t		 len[3];
} layouts[] = {
	{ "ssh-ed25519", NULL, 1, { 32 } },
	{ "ecdsa-sha2-nistp256", "nistp256", 2, { 8, 65 } },
	{ "ecdsa-sha2-nistp384", "nistp384", 2, { 8, 97 } },
	{ "ecdsa-sha2-nistp521", "nistp521", 2, { 8, 133 } },
	{ "ssh-rsa", NULL, 2, { 0, 0 } },
	{ "sk-ssh-ed25519@openssh.com", NULL, 2, { 32, 0 } },
	{ "sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", 3, { 8, 65, 0 } },
};

/*
 * Whether the blob holds exactly its type's fields, nothing missing and
 * nothing after: libssh reads the key material itself when a key is
 * added, this catches a blob truncated or padded since.
 */
static int
layout_ok(const char *type, const unsigned char *b, size_t len)
{
	const struct layout *l = NULL;
	size_t i, off, n;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (strcmp(type, layouts[i].type) == 0)
			l = &layouts[i];
	if (l == NULL)
		return 0;
	off = 4 + strlen(type);
	for (i = 0; i < l->nfields; i++) {
		if (len - off < 4)
			return 0;
		n = get_u32(b + off);
		off += 4;
		if (n > len - off || n == 0 ||
		    (l->len[i] != 0 && n != l->len[i]))
			return 0;
		if (i == 0 && l->curve != NULL &&
		    memcmp(b + off, l->curve, n) != 0)
			return 0;
		off += n;
	}
	return off == len;
}

static char *
fingerprint_of(const unsigned char *bin, size_t binlen)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	size_t b64len;
	char *out = NULL;

	crypto_hash_sha256(hash, bin, binlen);
	b64len = sodium_base64_ENCODED_LEN(sizeof(hash),
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	out = xmalloc(7 + b64len);
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, b64len, hash, sizeof(hash),
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	return out;
}

int
keyblob_check(const char *ctype, const char *b64, char **innerp,
    char **fpp, char *err, size_t errlen)
{
	unsigned char *bin = NULL;
	size_t b64len = strlen(b64), binlen = 0;
	const char *end = NULL;
	char *inner = NULL;
	enum keyblob_class c;
	uint32_t n;
	int r = -1, bits;

	if (innerp != NULL)
		*innerp = NULL;
	if (fpp != NULL)
		*fpp = NULL;
	if (b64len == 0 || b64len > KEYBLOB_MAX_B64) {
		seterr(err, errlen, "the key data is missing or too long");
		goto out;
	}
	bin = xmalloc(b64len);
	if (sodium_base642bin(bin, b64len, b64, b64len, NULL, &binlen, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != b64 + b64len) {
		seterr(err, errlen, "the key data is not valid base64");
		goto out;
	}
	if (binlen < 4 || (n = get_u32(bin)) > binlen - 4 || n == 0 ||
	    n > 64 || memchr(bin + 4, '\0', n) != NULL) {
		seterr(err, errlen, "the key data is truncated or is not an "
		    "SSH public key");
		goto out;
	}
	inner = xstrndup((char *)bin + 4, n);
	if (ctype != NULL && strcmp(ctype, inner) != 0) {
		if (keyblob_classify(inner) == KB_OK)
			seterr(err, errlen, "the line says \"%s\" but the key "
			    "data holds a %s key", ctype, inner);
		else
			seterr(err, errlen, "the line says \"%s\" but the key "
			    "data holds another type", ctype);
		goto out;
	}
	if ((c = keyblob_classify(inner)) != KB_OK) {
		keyblob_class_error(c, inner, err, errlen);
		goto out;
	}
	if (!layout_ok(inner, bin, binlen)) {
		seterr(err, errlen, "the %s key data is damaged or truncated",
		    inner);
		goto out;
	}
	if (strcmp(inner, "ssh-rsa") == 0 &&
	    (bits = rsa_bits(bin, binlen)) < KEYBLOB_MIN_RSA_BITS) {
		seterr(err, errlen, "RSA key of %d bits refused: at least %d "
		    "bits are required", bits, KEYBLOB_MIN_RSA_BITS);
		goto out;
	}
	if (fpp != NULL)
		*fpp = fingerprint_of(bin, binlen);
	if (innerp != NULL) {
		*innerp = inner;
		inner = NULL;
	}
	r = 0;
 out:
	if (bin != NULL)
		freezero(bin, b64len);
	free(inner);
	return r;
}
