/*
 * Name grammar for developers and projects (docs/registry.md).  The rules
 * are deliberately narrower than what OpenSSH or shadow accept, so a name
 * is safe everywhere it ends up: in a login prompt before the @, in file
 * names under state_dir, in a guest's hostname and in log lines.
 */
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "names.h"

/*
 * Project names a developer types before the @ must never look like one
 * of the host's own accounts, so that a log line or a PAM decision can
 * never confuse "project root" with the root account.  The list covers
 * the system accounts a Debian 12 host typically has, the daemons it
 * commonly adds, and names that mean something to prison itself.
 */
static const char *const reserved[] = {
	"root", "daemon", "bin", "sys", "sync", "games", "man", "lp",
	"mail", "news", "uucp", "proxy", "www-data", "backup", "list",
	"irc", "gnats", "nobody", "nogroup", "systemd-network",
	"systemd-resolve", "systemd-timesync", "systemd-coredump",
	"messagebus", "sshd", "polkitd", "tss", "tcpdump", "avahi",
	"dnsmasq", "ntp", "ntpsec", "chrony", "postfix", "statd", "rpc",
	"usbmux", "uuidd", "kvm", "libvirt-qemu", "qemu", "dhcpcd",
	"admin", "administrator", "operator", "adm", "wheel", "sudo",
	"staff", "shadow", "utmp", "tty", "disk", "users", "git",
	"prison", "prison-gateway", "prison-vm", "prison-vmm", "localhost",
	NULL
};

static int
name_valid(const char *what, const char *name, char *err, size_t errlen)
{
	size_t i, len;

	if (name == NULL || *name == '\0')
		return seterr(err, errlen, "%s name is empty", what);
	len = strlen(name);
	if (len > NAME_MAX_LEN)
		return seterr(err, errlen, "%s name is longer than %d bytes",
		    what, NAME_MAX_LEN);
	if (name[0] < 'a' || name[0] > 'z')
		return seterr(err, errlen, "%s name must start with a "
		    "lower-case letter a-z", what);
	for (i = 0; i < len; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-')
			continue;
		return seterr(err, errlen, "%s name may contain only a-z, "
		    "0-9, '_' and '-' (byte %zu is not allowed)", what, i + 1);
	}
	if (name[len - 1] == '-')
		return seterr(err, errlen, "%s name must not end in '-'", what);
	return 0;
}

int
name_valid_user(const char *name, char *err, size_t errlen)
{
	return name_valid("user", name, err, errlen);
}

int
name_valid_project(const char *name, char *err, size_t errlen)
{
	size_t i;

	if (name_valid("project", name, err, errlen) == -1)
		return -1;
	for (i = 0; reserved[i] != NULL; i++) {
		if (strcmp(name, reserved[i]) == 0)
			return seterr(err, errlen, "project name \"%s\" is "
			    "reserved", name);
	}
	return 0;
}
