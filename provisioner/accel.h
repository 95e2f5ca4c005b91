/*
 * Choosing qemu's accelerator.  KVM is used only where it runs stock
 * guest kernels: /dev/kvm must open and answer the KVM API, and the
 * backend must be a hardware one (kvm_intel or kvm_amd).  The PVM backend
 * (kvm_pvm) only runs specially built guest kernels, so a stock kernel
 * would hang under it: auto picks TCG there.
 */
#ifndef PRISON_ACCEL_H
#define PRISON_ACCEL_H

#include <stddef.h>

enum accel { ACCEL_TCG, ACCEL_KVM };

/*
 * Decide for setting ("auto", "kvm" or "tcg").  sysroot prefixes /sys and
 * /dev paths (NULL or "" for the real ones; tests use a fake tree).
 * Returns the accelerator, or -1 when "kvm" was demanded but cannot work
 * or the setting is unknown; why says what was found either way.
 */
int	accel_choose(const char *setting, const char *sysroot, char *why,
	    size_t whylen);
const char *accel_name(enum accel);

#endif
