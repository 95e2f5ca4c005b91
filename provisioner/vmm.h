/*
 * One interface, one driver per VMM (vmm_qemu.c, vmm_firecracker.c).
 * The lifecycle code (vm.c) prepares everything a VM needs (network,
 * disk, metadata) and hands the driver a vm_spec; the driver starts,
 * adopts, queries and stops the VMM process and nothing else.
 */
#ifndef PRISON_VMM_H
#define PRISON_VMM_H

#include <stddef.h>
#include <sys/types.h>

struct prison_config;

struct vm_spec {
	const char	*project;
	const char	*vm_dir;	/* per-project dir: sockets, logs, pid */
	const char	*tap;		/* TAP device name */
	const char	*mac;		/* guest MAC, stable per project */
	const char	*host_ip;	/* host side of the /30 */
	const char	*guest_ip;
	int		 prefix;	/* 30 */
	int		 vcpus;
	int		 mem_mib;
	const char	*kernel;
	const char	*initrd;	/* NULL when the VMM does not take one */
	const char	*disk;		/* the project's own disk image */
	const char	*cmdline;	/* extra kernel arguments (ip=..., prison.*) */
	const char	*mmds_json;	/* metadata document (firecracker MMDS) */
	uid_t		 uid;		/* the VMM runs as this uid/gid */
	gid_t		 gid;
};

struct vm_handle {
	pid_t	 pid;
	char	*api_socket;	/* QMP or the firecracker API socket */
};

struct vmm_ops {
	const char	*name;
	/* Start the VMM; returns once the VMM accepted the configuration. */
	int	(*start)(const struct prison_config *, const struct vm_spec *,
		    struct vm_handle *, char *err, size_t errlen);
	/*
	 * Re-attach to a VM left running by an earlier provisioner: the pid
	 * in the handle or the driver's pidfile, else the VMM found by its
	 * command line (one started just before a crash).
	 */
	int	(*adopt)(const struct prison_config *, const struct vm_spec *,
		    struct vm_handle *, char *err, size_t errlen);
	/*
	 * 1 running, 0 gone, -1 unknown (the process lives but its API did
	 * not answer): callers must not take -1 for an exit.
	 */
	int	(*alive)(const struct vm_handle *);
	/* Ask the guest to shut down; kill after timeout seconds. */
	int	(*stop)(const struct prison_config *, struct vm_handle *,
		    int timeout, char *err, size_t errlen);
	/*
	 * Kill every VMM of spec->project (spec->vm_dir) found by its
	 * command line, for the ones no handle names any more: left by a
	 * provisioner killed while starting them, or in a state adopt
	 * refuses.  Returns how many it killed.
	 */
	int	(*kill_orphans)(const struct prison_config *,
		    const struct vm_spec *);
	/* Replace the metadata document of a running VM (may be NULL). */
	int	(*mmds_update)(const struct vm_handle *, const char *json,
		    char *err, size_t errlen);
};

extern const struct vmm_ops vmm_qemu_ops;
extern const struct vmm_ops vmm_firecracker_ops;

const struct vmm_ops	*vmm_lookup(const char *name);

/*
 * A VMM whose record was lost: the first live process other than skip
 * (and us) for which match(pid, arg) holds and whose stdout is the
 * console.log of vm_dir, so that another prison's VM of the same name
 * is never taken; 0 when none.
 */
pid_t	vmm_find(const char *vm_dir, int (*match)(pid_t, const void *),
	    const void *arg, pid_t skip);

#endif
