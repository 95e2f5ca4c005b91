/*
 * libFuzzer target for keyparse_text(): whatever an admin might paste.
 * Accepted keys must come back with a fingerprint that keyparse computes
 * again from the stored type and blob.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reg_key *keys = NULL;
	size_t n = 0, i;
	char err[512], *fp;

	if (keyparse_text((const char *)data, size, &keys, &n, err,
	    sizeof(err)) == -1) {
		if (keys != NULL || n != 0 || err[0] == '\0')
			abort();
		return 0;
	}
	for (i = 0; i < n; i++) {
		fp = keyparse_fingerprint(keys[i].type, keys[i].blob, err,
		    sizeof(err));
		if (fp == NULL || strcmp(fp, keys[i].fingerprint) != 0)
			abort();
		free(fp);
	}
	keyparse_free(keys, n);
	return 0;
}
