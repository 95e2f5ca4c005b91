#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel.h"
#include "log.h"

static int
module_loaded(const char *sysroot, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/sys/module/%s", sysroot, name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when /dev/kvm opens and speaks the stable KVM API, else 0. */
static int
kvm_device_usable(const char *sysroot, char *why, size_t whylen)
{
	char path[512];
	int fd, version;

	snprintf(path, sizeof(path), "%s/dev/kvm", sysroot);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1) {
		seterr(why, whylen, "%s: %s", path, strerror(errno));
		return 0;
	}
	/* A fake tree in tests holds a regular file: existence suffices. */
	version = *sysroot ? KVM_API_VERSION : ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (version != KVM_API_VERSION) {
		seterr(why, whylen, "%s answers KVM API version %d, not %d",
		    path, version, KVM_API_VERSION);
		return 0;
	}
	return 1;
}

int
accel_choose(const char *setting, const char *sysroot, char *why,
    size_t whylen)
{
	int hw, pvm;

	if (sysroot == NULL)
		sysroot = "";
	if (strcmp(setting, "tcg") == 0) {
		seterr(why, whylen, "accel = tcg in the configuration");
		return ACCEL_TCG;
	}
	if (strcmp(setting, "kvm") != 0 && strcmp(setting, "auto") != 0) {
		seterr(why, whylen, "accel = %s: expected auto, kvm or tcg",
		    setting);
		return -1;
	}
	if (!kvm_device_usable(sysroot, why, whylen))
		return strcmp(setting, "kvm") == 0 ? -1 : ACCEL_TCG;

	hw = module_loaded(sysroot, "kvm_intel") ||
	    module_loaded(sysroot, "kvm_amd");
	pvm = module_loaded(sysroot, "kvm_pvm");
	if (!hw && pvm) {
		seterr(why, whylen, "KVM here is the PVM backend (kvm_pvm), "
		    "which hangs stock guest kernels");
		return strcmp(setting, "kvm") == 0 ? ACCEL_KVM : ACCEL_TCG;
	}
	seterr(why, whylen, "/dev/kvm is usable (%s)",
	    hw ? "hardware virtualisation" : "built-in KVM");
	return ACCEL_KVM;
}

const char *
accel_name(enum accel a)
{
	return a == ACCEL_KVM ? "kvm" : "tcg";
}
