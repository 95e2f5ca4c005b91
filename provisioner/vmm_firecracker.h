/*
 * Internals of the Firecracker driver, exposed for its unit tests.
 */
#ifndef PRISON_VMM_FIRECRACKER_H
#define PRISON_VMM_FIRECRACKER_H

#include <stddef.h>

#include <jansson.h>

/* Jailer ids: [A-Za-z0-9-], at most 64 bytes. */
#define FC_ID_MAX	64

/*
 * The jail id of a project: "prison-NAME" when the name has only jailer
 * characters, else "prisonx-HASH-NAME" with '_' turned into '-'; the two
 * forms never collide.  Returns 0, or -1 for an empty or overlong name.
 */
int	fc_jail_id(const char *project, char *id, size_t idlen,
	    char *err, size_t errlen);

/*
 * The cgroup v2 limits for a VM: cpu.max ("QUOTA PERIOD") and memory.max
 * (bytes), guest size plus room for the VMM's own threads and memory.
 */
void	fc_cgroup_limits(int vcpus, int mem_mib, char *cpu, size_t cpulen,
	    char *mem, size_t memlen);

/*
 * The kernel command line: the arguments Firecracker guests need
 * (serial console, reboot through the keyboard controller, virtio-mmio
 * root disk) unless extra already sets them, then extra.  Allocated.
 */
char	*fc_boot_args(const char *extra);

/*
 * A JSON merge patch (RFC 7396) that turns old into new: keys missing
 * from new become null.  PATCH /mmds applies merge patches, so this is
 * how a document is replaced as a whole.  Returns a new reference.
 */
json_t	*fc_merge_patch(json_t *old, json_t *new);

#endif
