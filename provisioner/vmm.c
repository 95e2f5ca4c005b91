/*
 * The VMM drivers by the name used in prison.conf's "vmm" setting, and
 * what they share for finding a VMM whose record was lost.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"
#include "xmalloc.h"

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

/* 1 when pid's stdout is path. */
static int
pid_console_is(pid_t pid, const char *path)
{
	char *link = xasprintf("/proc/%ld/fd/1", (long)pid), buf[4096];
	ssize_t n;

	n = readlink(link, buf, sizeof(buf) - 1);
	free(link);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, path) == 0;
}

pid_t
vmm_find(const char *vm_dir, int (*match)(pid_t, const void *),
    const void *arg, pid_t skip)
{
	char *con = xasprintf("%s/console.log", vm_dir), *real = NULL;
	struct dirent *de;
	pid_t pid, found = 0;
	DIR *d = NULL;

	/* /proc shows the console with every symlink resolved. */
	if ((real = realpath(con, NULL)) == NULL ||
	    (d = opendir("/proc")) == NULL)
		goto out;
	while (found == 0 && (de = readdir(d)) != NULL) {
		if ((pid = (pid_t)strtol(de->d_name, NULL, 10)) <= 1 ||
		    pid == skip || pid == getpid())
			continue;
		if (match(pid, arg) && pid_console_is(pid, real))
			found = pid;
	}
 out:
	if (d != NULL)
		closedir(d);
	free(con);
	free(real);
	return found;
}
