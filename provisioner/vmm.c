/* The VMM drivers by the name used in prison.conf's "vmm" setting. */
#include <string.h>

#include "vmm.h"

const struct vmm_ops *
vmm_lookup(const char *name)
{
	if (name == NULL)
		return NULL;
	if (strcmp(name, "qemu") == 0)
		return &vmm_qemu_ops;
	if (strcmp(name, "firecracker") == 0)
		return &vmm_firecracker_ops;
	return NULL;
}
