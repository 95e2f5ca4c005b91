/*
 * What a guest sends the metadata server and prison code parses itself:
 * the token TTL header, the token, and the request path.  libmicrohttpd
 * parses the HTTP around them.  The first byte picks the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The provisioner's sources are not in the fuzz build's list. */
#include "../../provisioner/mmds.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *doc;
	static struct mmds_tokens toks;
	char *s, tok[64];
	json_t *v;

	if (size < 1)
		return 0;
	if (doc == NULL)
		doc = json_loads("{\"prison\":{\"project\":\"p\",\"authorized_"
		    "keys\":[\"a\",\"b\"],\"env\":{\"K\":\"V\"},\"n\":1}}", 0,
		    NULL);
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		mmds_parse_ttl(s);
		break;
	case 1:
		if ((v = mmds_lookup(doc, s)) != NULL)
			free(imds_text(v));
		break;
	case 2:
		if (toks.n == 0)
			mmds_token_issue(&toks, 60, 0, tok, sizeof(tok));
		mmds_token_check(&toks, s, 1);
		break;
	}
	free(s);
	return 0;
}
