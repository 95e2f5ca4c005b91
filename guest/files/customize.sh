#!/bin/sh
# prison image recipe: turns a freshly installed root tree (Debian from
# mmdebstrap, or EL from dnf --installroot) into a prison guest.  Run on
# the host as root:  customize.sh ROOT AGENT FILESDIR
#   ROOT      the guest's root directory
#   AGENT     the prison-guest binary to install
#   FILESDIR  the directory holding this script, units and sshd fragment
set -eu
root=$1 agent=$2 files=$3
if [ ! -d "$root/etc" ]; then
	echo "customize: $root is not a root tree" >&2
	exit 1
fi

# The agent and its units.
install -D -m 0755 "$agent" "$root/usr/local/sbin/prison-guest"
for u in prison-guest.service prison-guest-bootstrap.service \
    prison-guest-refresh.service prison-guest-refresh.timer; do
	install -D -m 0644 "$files/$u" "$root/etc/systemd/system/$u"
done
sys=$root/etc/systemd/system
mkdir -p "$sys/multi-user.target.wants" "$sys/timers.target.wants"
for u in prison-guest.service prison-guest-bootstrap.service; do
	ln -sf ../$u "$sys/multi-user.target.wants/$u"
done
ln -sf ../prison-guest-refresh.timer \
    "$sys/timers.target.wants/prison-guest-refresh.timer"
# The ACPI power button (qemu's system_powerdown) shuts the guest down
# cleanly, so a stopped VM's disk is consistent.  acpid runs from boot,
# not on demand, and turns the button into a poweroff.
for d in "$root/usr/lib/systemd/system" "$root/lib/systemd/system"; do
	if [ -e "$d/acpid.service" ]; then
		ln -sf "${d#"$root"}/acpid.service" \
		    "$sys/multi-user.target.wants/acpid.service"
		break
	fi
done
mkdir -p "$root/etc/acpi/events"
printf 'event=button[ /]power\naction=/bin/systemctl poweroff\n' \
    >"$root/etc/acpi/events/prison-power-button"
mkdir -p "$root/etc/prison" "$root/var/lib/prison-guest"
# Login shells get the project's settings (written by the agent).
mkdir -p "$root/etc/profile.d"
cat >"$root/etc/profile.d/prison.sh" <<'EOP'
if [ -r /etc/prison/project.env ]; then
	set -a
	. /etc/prison/project.env
	set +a
fi
EOP
chmod 0700 "$root/var/lib/prison-guest"

# sshd: key-only, no root, and no host keys baked in: each project's key
# arrives in its metadata.
install -D -m 0644 "$files/sshd-prison.conf" \
    "$root/etc/ssh/sshd_config.d/00-prison.conf"
if ! grep -q '^Include /etc/ssh/sshd_config.d/\*.conf' \
    "$root/etc/ssh/sshd_config"; then
	# Older sshd_config without the Include: prepend our settings.
	{ cat "$files/sshd-prison.conf"; cat "$root/etc/ssh/sshd_config"; } \
	    >"$root/etc/ssh/sshd_config.new"
	mv "$root/etc/ssh/sshd_config.new" "$root/etc/ssh/sshd_config"
fi
rm -f "$root"/etc/ssh/ssh_host_*
# EL regenerates host keys at boot through sshd-keygen; the agent does
# that job, so keep those units from adding RSA and ECDSA keys.
for u in sshd-keygen@.service sshd-keygen.target; do
	[ -e "$root/usr/lib/systemd/system/$u" ] &&
	    ln -sf /dev/null "$root/etc/systemd/system/$u"
done

# Root has no password and can never get one over the network.
chroot "$root" passwd -l root >/dev/null

# A virtio-mmio disk is /dev/vda; the network device keeps the name eth0.
printf '/dev/vda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n' \
    >"$root/etc/fstab"
mkdir -p "$root/etc/systemd/network"
ln -sf /dev/null "$root/etc/systemd/network/99-default.link"
echo prison >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost\n' \
    >"$root/etc/hosts"
: >"$root/etc/machine-id"

# Keep the image small: package lists and caches are rebuilt on demand.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/dnf/* "$root"/var/log/*.log
exit 0
