/*
 * Key parsing: every accepted and refused form.  The expected
 * fingerprints were printed by `ssh-keygen -lf` for these keys; the
 * integration test 10-prisonctl compares live against ssh-keygen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyparse.h"

static const char ED25519_TYPE[] =
    "ssh-ed25519";
static const char ED25519_BLOB[] =
    "AAAAC3NzaC1lZDI1NTE5AAAAIBUtkpLdqtirOVgOgbQOvOQ2b6XovPCN3f7H"
    "8xygbXir";
static const char ED25519_FP[] =
    "SHA256:nIbBPeCwdY7XNsncqddrC/XWSC8eHGCDOW6X2WbKfXs";
static const char ECDSA256_TYPE[] =
    "ecdsa-sha2-nistp256";
static const char ECDSA256_BLOB[] =
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOVkazw0"
    "rBpQfGvNZJE7aDbCONlzrfFUbPYrnn5Mhfu1l8XnmjELE3h7wNhrZtKt4Ur8"
    "eF9Kco1Jdp3iQiAXOAc=";
static const char ECDSA256_FP[] =
    "SHA256:jpsg91FkDCLcbAztTu01Iy3GyBSF3V4jj+U8kvozHYo";
static const char ECDSA384_TYPE[] =
    "ecdsa-sha2-nistp384";
static const char ECDSA384_BLOB[] =
    "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBJ53LbMq"
    "sitIbFjWjwjUwLFKP9qfzomV5EhxT9AV1rBDdf1TI3ykpKz153P3Gqr7jhO/"
    "ge5WULCI8V59OEQlKK3dvCSm87rXfiyinnW2vnqQt9v2GO7uY7wUZcQJTaog"
    "TQ==";
static const char ECDSA384_FP[] =
    "SHA256:OcHiLNHlIImFKXgqU88u6hgEQSMFLCcUI8i7Fw4u4fU";
static const char ECDSA521_TYPE[] =
    "ecdsa-sha2-nistp521";
static const char ECDSA521_BLOB[] =
    "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACKMftD"
    "6/BSM5SUF7qlpTe9M22X/rbWUbnTSZc/hSoTkQcGB7+FTSqg+IIf3WLIaLQd"
    "xDoA4rfbBMkax+pGX16n0AE1kDUj3qtsaoGYkfAPmZB9Yieq0CJIlHap6PE4"
    "8Hei9TATcB7FI8fRbA1+Iy5R/GXi9f4Wbx0DENC4Mx0nESf9fg==";
static const char ECDSA521_FP[] =
    "SHA256:zT/qoZEIWJl4Wg6twZ6ptGmROPxrJRY4EwYZxs/k38U";
static const char RSA2048_TYPE[] =
    "ssh-rsa";
static const char RSA2048_BLOB[] =
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQDg694tghq2Gl42IErsTinzPMB4rQdK"
    "o0bDx53xHVIfVsIwi3Vy7e1fWHzXQPj4InQI0+3ILp8fYyyNBocI4aOvr5zC"
    "YskbgB+cwyz1iQamdYCJf6+/e9jnUNciYJrfYsUcm/yOBwZkss4xWHvcr3pJ"
    "pfzbNoPLpZYBlwNtby1zFrfscYSz5OvmWl3UqklHzp6NCIwo6D01Ju68TN8q"
    "NaH8zjfXqZU787/Y/M7AR0SOnc4eGo6GiObN2OhhM8CiFprkG8dqNfPkKcRM"
    "0E1Q9Au5EjAHNF5aZ7gwEYETgfxEZybGZvJMnO4PH2haLxRUnHXOWDnRf/vL"
    "oulhVyTrpLAH";
static const char RSA2048_FP[] =
    "SHA256:0JMHRBM2Uqg+ilwHfCrI6Z44j8MUqlX012ifEloQC6s";
static const char RSA1024_TYPE[] =
    "ssh-rsa";
static const char RSA1024_BLOB[] =
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQCcP7T5fI3xPJ54cUsnYf+mo2EsGR71"
    "G8JGS+Uago6zskzj6AzUn2oe9BE9JOGaCifc+Kc5a8lYYzCCWdRQaOqk9FnF"
    "GsThLqp51IXdAErOCFjTXQf5c16AeFiGTUojoy6sXCXIqzDs+Fb5sKooagDZ"
    "ui0Is+lzxoXoMu8AUbR1tw==";
static const char DSA_TYPE[] =
    "ssh-dss";
static const char DSA_BLOB[] =
    "AAAAB3NzaC1kc3MAAACBAPVJ/16NP7jdt3CF4U2V+asTpBRs5yQe8gIN1Xgt"
    "2rX56QFEzOTNnHcsW7A0W3LAQTea8jNOdYmoQJtb+sb/Q3vL8O5kA+o/zHCG"
    "ID2j0RfRuc0kfRz8oO5VVddGsfBuOVkZn5aKlxkb6yoYIBV4JDp0EOw81hx/"
    "7QqItLL81MonAAAAFQDR00QVT/wEmKYmsMfW4Ed426lMvQAAAIEA2MIbEt20"
    "Vb2Q9OOx5dPWReEzasn9ggIgHT0hDdZzjykWFwD6XuEMEPTmV83WG8noUOaE"
    "hG+y+axDXKbEy+rsuCS70wFykDzN6ZFhoxuMGkya74I+a6yIBbLh+2eALenm"
    "TncNip+3y/TOH3Ouq7FQzAiD76ltYD0zmK3e9e/kYkgAAACAdYju5HYHvOuA"
    "SuspKMf4wp8ebfxw44B4qmdhAvv3miFXAVx6jTbQpWvSeVKW2Ou1fAhcz7jQ"
    "euSihIz6Qs1kEAC3TgDpZapuJkX4Ip05Ud3MT6MlinF4xJQ2tdpRVlga75xu"
    "ZpeMf58540+Q1kySTl9ADyJBi3xY9CsE2rDtj8w=";
static const char SKED25519_TYPE[] =
    "sk-ssh-ed25519@openssh.com";
static const char SKED25519_BLOB[] =
    "AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIP5yrMVsAmlCduxI"
    "rGfIhkc5HeTihMkeSg4nFOJUelcyAAAABHNzaDo=";
static const char SKED25519_FP[] =
    "SHA256:r8dIa1vUZKYee+G3g2RgE+Gbod4cyXsE6WeptpkDHbk";
static const char SKECDSA_TYPE[] =
    "sk-ecdsa-sha2-nistp256@openssh.com";
static const char SKECDSA_BLOB[] =
    "AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlz"
    "dHAyNTYAAABBBOVkazw0rBpQfGvNZJE7aDbCONlzrfFUbPYrnn5Mhfu1l8Xn"
    "mjELE3h7wNhrZtKt4Ur8eF9Kco1Jdp3iQiAXOAcAAAAEc3NoOg==";
static const char SKECDSA_FP[] =
    "SHA256:aBW+W1xUw9i/e431olTDhZ8iUBp9gh8xtE6bFyBmb10";
static const char CERT_LINE[] =
    "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ"
    "tdjAxQG9wZW5zc2guY29tAAAAIGf3H+OOR7le0mFehvbKyyrOwtbCjIwwtRw"
    "ekynBVQfEAAAAIBUtkpLdqtirOVgOgbQOvOQ2b6XovPCN3f7H8xygbXirAAA"
    "AAAAAAAAAAAABAAAAAmlkAAAABQAAAAF1AAAAAAAAAAD//////////wAAAAA"
    "AAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWF"
    "nZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmc"
    "AAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAA"
    "AAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIMO79u24BY2e7HNDA1asaFq/D40"
    "Ht/I1kQEXN5ANyLoTAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEB/im+n0DqBcyY"
    "mp46sEpOIVtkSZ6KPpLiNRaFyS719ycM2wNDNnuJDoUHv2MCoqgsqzCiYH4d"
    "2ViXnwkErvesO";

/* nistp256 type word around a nistp384 curve, then around its point */
static const char ECDSA_CURVE_MISMATCH[] =
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAzODQAAABhBJ53LbMq"
    "sitIbFjWjwjUwLFKP9qfzomV5EhxT9AV1rBDdf1TI3ykpKz153P3Gqr7jhO/"
    "ge5WULCI8V59OEQlKK3dvCSm87rXfiyinnW2vnqQt9v2GO7uY7wUZcQJTaog"
    "TQ==";
static const char ECDSA_POINT_MISMATCH[] =
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABhBJ53LbMq"
    "sitIbFjWjwjUwLFKP9qfzomV5EhxT9AV1rBDdf1TI3ykpKz153P3Gqr7jhO/"
    "ge5WULCI8V59OEQlKK3dvCSm87rXfiyinnW2vnqQt9v2GO7uY7wUZcQJTaog"
    "TQ==";
static const char ED25519_TRUNCATED[] =
    "AAAAC3NzaC1lZDI1NTE5AAAAIBUtkpLdqtirOVgOgbQOvOQ2b6XovPCN3f7H"
    "8w==";
static const char ED25519_TRAILING[] =
    "AAAAC3NzaC1lZDI1NTE5AAAAIBUtkpLdqtirOVgOgbQOvOQ2b6XovPCN3f7H"
    "8xygbXirAAAAAA==";

static char *
mk(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return s;
}

static struct reg_key *
ok_n(const char *text, size_t want)
{
	struct reg_key *keys = NULL;
	size_t n = 0;
	char err[512] = "";

	if (keyparse_text(text, strlen(text), &keys, &n, err,
	    sizeof(err)) != 0)
		fail_msg("refused: %s\n%s", err, text);
	assert_int_equal(n, want);
	return keys;
}

static void
refused(const char *text, size_t len, const char *why)
{
	struct reg_key *keys = NULL;
	size_t n = 7;
	char err[512] = "";

	if (keyparse_text(text, len, &keys, &n, err, sizeof(err)) == 0)
		fail_msg("accepted: %s", text);
	assert_null(keys);
	assert_int_equal(n, 0);
	if (strstr(err, why) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, why);
}

static void
refused_s(const char *text, const char *why)
{
	refused(text, strlen(text), why);
}

static void
one(const char *type, const char *blob, const char *fp)
{
	struct reg_key *k;
	char *line = mk("%s %s some comment  here", type, blob);

	k = ok_n(line, 1);
	assert_string_equal(k->type, type);
	assert_string_equal(k->blob, blob);
	assert_string_equal(k->fingerprint, fp);
	assert_string_equal(k->comment, "some comment  here");
	keyparse_free(k, 1);
	free(line);
}

static void
test_every_type(void **state)
{
	one(ED25519_TYPE, ED25519_BLOB, ED25519_FP);
	one(ECDSA256_TYPE, ECDSA256_BLOB, ECDSA256_FP);
	one(ECDSA384_TYPE, ECDSA384_BLOB, ECDSA384_FP);
	one(ECDSA521_TYPE, ECDSA521_BLOB, ECDSA521_FP);
	one(RSA2048_TYPE, RSA2048_BLOB, RSA2048_FP);
	one(SKED25519_TYPE, SKED25519_BLOB, SKED25519_FP);
	one(SKECDSA_TYPE, SKECDSA_BLOB, SKECDSA_FP);
}

static void
test_fingerprint_helper(void **state)
{
	char err[256], *fp;

	fp = keyparse_fingerprint(ED25519_TYPE, ED25519_BLOB, err,
	    sizeof(err));
	assert_non_null(fp);
	assert_string_equal(fp, ED25519_FP);
	free(fp);
	assert_null(keyparse_fingerprint(RSA2048_TYPE, ED25519_BLOB, err,
	    sizeof(err)));
}

static void
test_whitespace_bom_crlf(void **state)
{
	struct reg_key *k;
	char *t;

	t = mk("\xef\xbb\xbf  \t%s %s\r\n", ED25519_TYPE, ED25519_BLOB);
	k = ok_n(t, 1);
	assert_string_equal(k->comment, "");
	assert_string_equal(k->fingerprint, ED25519_FP);
	keyparse_free(k, 1);
	free(t);

	t = mk("%s\t%s\ta\tb \r\n\r\n", ED25519_TYPE, ED25519_BLOB);
	k = ok_n(t, 1);
	assert_string_equal(k->comment, "a\tb");
	keyparse_free(k, 1);
	free(t);
}

static void
test_several_keys(void **state)
{
	struct reg_key *k;
	char *t;

	t = mk("# alice's keys\n\n%s %s laptop\n   # old one\n%s %s "
	    "desk top\n\n", ED25519_TYPE, ED25519_BLOB, RSA2048_TYPE,
	    RSA2048_BLOB);
	k = ok_n(t, 2);
	assert_string_equal(k[0].comment, "laptop");
	assert_string_equal(k[1].comment, "desk top");
	assert_string_equal(k[1].fingerprint, RSA2048_FP);
	keyparse_free(k, 2);
	free(t);

	/* One bad line refuses the whole input, naming the line. */
	t = mk("%s %s\n\n%s AAAA!!!!\n", ED25519_TYPE, ED25519_BLOB,
	    RSA2048_TYPE);
	refused_s(t, "line 3: ");
	free(t);

	t = mk("%s %s a\n%s %s b\n", ED25519_TYPE, ED25519_BLOB,
	    ED25519_TYPE, ED25519_BLOB);
	refused_s(t, "line 2: the same key as line 1");
	free(t);
}

static void
test_rfc4716(void **state)
{
	struct reg_key *k;
	char *t;

	t = mk("---- BEGIN SSH2 PUBLIC KEY ----\n"
	    "Comment: \"256-bit ED25519, converted by x@y from OpenSSH\"\n"
	    "%.30s\n%s\n---- END SSH2 PUBLIC KEY ----\n", ED25519_BLOB,
	    ED25519_BLOB + 30);
	k = ok_n(t, 1);
	assert_string_equal(k->type, "ssh-ed25519");
	assert_string_equal(k->blob, ED25519_BLOB);
	assert_string_equal(k->fingerprint, ED25519_FP);
	assert_string_equal(k->comment,
	    "256-bit ED25519, converted by x@y from OpenSSH");
	keyparse_free(k, 1);
	free(t);

	/* CRLF, a continued header, another header, then a plain line. */
	t = mk("---- BEGIN SSH2 PUBLIC KEY ----\r\n"
	    "Subject: alice\r\n"
	    "Comment: \"a long \\\r\n"
	    "comment\"\r\n"
	    "x-private: \\\r\n"
	    "  more\r\n"
	    "%s\r\n---- END SSH2 PUBLIC KEY ----\r\n"
	    "%s %s second\r\n", RSA2048_BLOB, ED25519_TYPE, ED25519_BLOB);
	k = ok_n(t, 2);
	assert_string_equal(k[0].comment, "a long comment");
	assert_string_equal(k[0].fingerprint, RSA2048_FP);
	assert_string_equal(k[1].comment, "second");
	keyparse_free(k, 2);
	free(t);

	t = mk("---- BEGIN SSH2 PUBLIC KEY ----\n%s\n", ED25519_BLOB);
	refused_s(t, "line 1: \"BEGIN SSH2 PUBLIC KEY\" without its END");
	free(t);

	t = mk("\n---- BEGIN SSH2 PUBLIC KEY ----\n%s\n---- END SSH2 "
	    "PUBLIC KEY ----\n", DSA_BLOB);
	refused_s(t, "line 2: DSA");
	free(t);

	t = mk("---- BEGIN SSH2 PUBLIC KEY ----\n%s\nComment: late\n"
	    "---- END SSH2 PUBLIC KEY ----\n", ED25519_BLOB);
	refused_s(t, "line 3: unexpected header");
	free(t);
}

static void
test_refusals(void **state)
{
	char *t;

	t = mk("%s AAAA!!!!", ED25519_TYPE);
	refused_s(t, "line 1: the key data is not valid base64");
	free(t);
	t = mk("%s %s=", ED25519_TYPE, ED25519_BLOB);
	refused_s(t, "not valid base64");
	free(t);
	t = mk("%s %s", RSA2048_TYPE, ED25519_BLOB);
	refused_s(t, "says \"ssh-rsa\" but the key data holds a ssh-ed25519");
	free(t);
	t = mk("%s %s", ED25519_TYPE, ED25519_TRUNCATED);
	refused_s(t, "damaged");
	free(t);
	t = mk("%s %s", ED25519_TYPE, ED25519_TRAILING);
	refused_s(t, "damaged");
	free(t);
	t = mk("%s %s", ED25519_TYPE, "AAAA");
	refused_s(t, "truncated");
	free(t);
	t = mk("%s %s", ECDSA256_TYPE, ECDSA_CURVE_MISMATCH);
	refused_s(t, "damaged");
	free(t);
	t = mk("%s %s", ECDSA256_TYPE, ECDSA_POINT_MISMATCH);
	refused_s(t, "damaged");
	free(t);
	t = mk("%s %s", RSA1024_TYPE, RSA1024_BLOB);
	refused_s(t, "RSA key of 1024 bits refused");
	free(t);
	t = mk("%s %s x", DSA_TYPE, DSA_BLOB);
	refused_s(t, "DSA (ssh-dss) keys are refused");
	free(t);
	refused_s("ssh-foo AAAAB3NzaC1yc2E=", "unknown key type \"ssh-foo\"");
	refused_s("Hello, World", "not a public key");
	refused_s(CERT_LINE, "certificates are not accepted");
	refused_s(ED25519_TYPE, "no key data");
	refused_s("", "no public key found");
	refused_s("# nothing\n\n  \n", "no public key found");
	refused_s("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
	    "PEM keys are not accepted");
}

static void
test_options_refused(void **state)
{
	char *t;

	t = mk("from=\"10.0.0.1,10.0.0.2\",no-pty %s %s c", ED25519_TYPE,
	    ED25519_BLOB);
	refused_s(t, "authorized_keys options");
	free(t);
	t = mk("command=\"echo hi there\" %s %s", RSA2048_TYPE, RSA2048_BLOB);
	refused_s(t, "authorized_keys options");
	free(t);
	t = mk("restrict %s %s", SKED25519_TYPE, SKED25519_BLOB);
	refused_s(t, "authorized_keys options");
	free(t);
}

static void
test_comment_checks(void **state)
{
	char *t;

	t = mk("%s %s bad\x01" "ctl", ED25519_TYPE, ED25519_BLOB);
	refused_s(t, "control characters");
	free(t);
	t = mk("%s %s bad\xff" "utf8", ED25519_TYPE, ED25519_BLOB);
	refused_s(t, "UTF-8");
	free(t);
	t = mk("%s %s caf\xc3\xa9", ED25519_TYPE, ED25519_BLOB);
	keyparse_free(ok_n(t, 1), 1);
	free(t);
	refused("ssh-ed25519 AAAA\0x", 18, "NUL");
}

static const char *const private_keys[] = {
	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
	"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAA\n"
	"-----END OPENSSH PRIVATE KEY-----\n",
	"-----BEGIN RSA PRIVATE KEY-----\r\nMIIEowIBAAKCAQEAZq9WxZq9Wx\r\n"
	"-----END RSA PRIVATE KEY-----\r\n",
	"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIZq9WxZq9Wx\n",
	"-----BEGIN PRIVATE KEY-----\nMIIEvZq9WxZq9Wx\n",
	"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n"
	"Private-Lines: 1\nAAAAIZq9WxZq9Wx\n",
	"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nP2/56wAAAZq9WxZq9Wx\n",
	NULL
};

static void
test_private_keys(void **state)
{
	struct reg_key *keys = NULL;
	size_t i, n;
	char err[512], *t;

	for (i = 0; private_keys[i] != NULL; i++) {
		memset(err, 0, sizeof(err));
		assert_int_equal(keyparse_text(private_keys[i],
		    strlen(private_keys[i]), &keys, &n, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "PRIVATE key"));
		/* The secret material is never quoted back. */
		assert_null(strstr(err, "Zq9Wx"));
		assert_null(strstr(err, "b3BlbnNz"));
	}
	/* A private key anywhere refuses the whole input. */
	t = mk("%s %s\n%s", ED25519_TYPE, ED25519_BLOB, private_keys[0]);
	refused_s(t, "line 2: this is a PRIVATE key");
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type),
		cmocka_unit_test(test_fingerprint_helper),
		cmocka_unit_test(test_whitespace_bom_crlf),
		cmocka_unit_test(test_several_keys),
		cmocka_unit_test(test_rfc4716),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_options_refused),
		cmocka_unit_test(test_comment_checks),
		cmocka_unit_test(test_private_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
