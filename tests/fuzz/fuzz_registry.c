/*
 * libFuzzer target for registry_parse(): a registry file in any state.
 * Whatever parses must serialise and parse again to the same document,
 * since registry_update() writes exactly that.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry *reg = NULL, *again = NULL;
	json_t *doc = NULL, *doc2 = NULL;
	char err[512], *text = NULL;
	size_t i;

	if (registry_parse((const char *)data, size, "fuzz", &reg, err,
	    sizeof(err)) == -1) {
		if (reg != NULL)
			abort();
		return 0;
	}
	for (i = 0; i < reg->nprojects; i++)
		(void)registry_may_access(reg, reg->projects[i].name,
		    reg->nusers ? reg->users[0].name : "x");
	if ((doc = registry_to_json(reg)) == NULL ||
	    (text = json_dumps(doc, JSON_COMPACT)) == NULL)
		abort();
	if (registry_parse(text, strlen(text), "again", &again, err,
	    sizeof(err)) == -1)
		abort();
	doc2 = registry_to_json(again);
	if (!json_equal(doc, doc2))
		abort();
	free(text);
	json_decref(doc);
	json_decref(doc2);
	registry_free(reg);
	registry_free(again);
	return 0;
}
