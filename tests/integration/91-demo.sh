#!/usr/bin/env bash
# The README's one-command setup, run for real: contrib/prison-demo on
# its built-in defaults installs, builds, takes the guest image from the
# cache, writes /etc/prison/prison.conf, makes root an SSH key and
# registers it as developer "admin" of project demo, starts both daemons
# in the background and proves it with `ssh -p 2222 demo@localhost`;
# run again it changes nothing and proves it warm; `prison-demo stop`
# stops the VM and the daemons it started, and no other.
#
# Isolation: the demo runs in a network namespace of its own (lo and a
# veth LAN interface carrying the default route the provisioner takes
# the LAN interface from) and in a private mount namespace where
# directories under $T are bound over /etc/prison, /var/lib/prison,
# /run/prison, /root/.ssh, /var/log, /etc/pam.d and the PAM module dir,
# and the tested guest image over /var/lib/prison/images, so the image
# step is a cache hit and nothing of a real install is read or written.
# PREFIX is a directory under $T.  Left on the host, and removed at the
# end: the system users prison and prison-vm when the demo created them,
# and empty mount points it had to make.
#
# /run/systemd/system is hidden, so this covers the background path.
# The systemd path (units installed and started by systemctl) is not
# run here: systemd is not PID 1 on the test machines; 12-units checks
# the units themselves.  make deps is not run either, because every
# package is already there (the demo asks dpkg first).
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd qemu-system-x86_64 ssh ssh-keygen ip unshare nsenter
img=$("$TOP/tests/guest-image.sh") || { echo "guest image build failed"; exit 1; }
setup_tmp
unset PRISON_CONFIG SUDO_USER
chmod 0711 "$T"
demo=$TOP/contrib/prison-demo

# Arguments first: --help sets nothing up, a stray word is refused.
out=$("$demo" --help); rc=$?
expect_eq "--help: exit 0" 0 "$rc"
expect_match "--help: prints the usage" '^usage: .*prison-demo \[stop\]' "$out"
"$demo" bogus 2>"$T/bogus.err"; rc=$?
check "an unknown argument is refused (rc $rc)" [ "$rc" -ne 0 ]
expect_match "an unknown argument is named" 'unknown argument "bogus"' \
    "$(cat "$T/bogus.err")"
mkdir -p "$T/root" "$T/log" "$T/prefix"
chmod 0700 "$T/root"
on_exit "for f in '$T'/log/prison-*.log; do cp \"\$f\" '$BUILD/test-logs/demo-'\"\${f##*/}\"; done; cp '$T/state/vms/demo/console.log' '$BUILD/test-logs/demo-console.log'"

# The host's own copies of everything the demo writes, to show at the
# end that none of them changed.
pamdir=$(ls -d /lib/x86_64-linux-gnu/security /usr/lib64/security \
    2>/dev/null | head -n 1)
pamdir=${pamdir:-/lib/security}
watched=(/etc/prison/prison.conf /etc/pam.d/prison /root/.ssh/id_ed25519
    /root/.ssh/id_ed25519.pub /root/.ssh/known_hosts
    /var/log/prison-provisioner.log /var/log/prison-gateway.log
    "$pamdir/pam_prison.so" /usr/local/sbin/prison-gateway
    /usr/local/bin/prisonctl)
host_state() {
	local f
	for f in "${watched[@]}"; do
		printf '%s %s\n' "$f" \
		    "$({ sha256sum <"$f"; } 2>/dev/null || echo absent)"
	done
}
before=$(host_state)

# Users the demo creates when missing; only those go again at the end,
# once every process of the namespace is gone (registered first, so it
# runs last).
made_users=
for u in prison-vm prison; do
	id "$u" >/dev/null 2>&1 || made_users="$made_users $u"
done
getent group prison >/dev/null && made_group= || made_group=prison
on_exit "for u in $made_users; do userdel \$u; done; [ -z '$made_group' ] || groupdel prison"

# Mount points; on this host they may not exist.  Only empty ones this
# test made are removed.
made_dirs=
for d in /etc/prison /var/lib/prison /run/prison /root/.ssh; do
	[ -d "$d" ] || { mkdir -m 0700 -p "$d" && made_dirs="$d $made_dirs"; }
done
on_exit "rmdir $made_dirs"

cp -a /etc/pam.d "$T/pam.d" && rm -f "$T/pam.d/prison"
cp -a "$pamdir" "$T/pam-modules"
mkdir -p "$T/state/images"

ns_add demo && ns_lan demo || exit 1

# A process holds the private mount namespace; every step enters it.
cat >"$T/mounts.sh" <<EOF
set -e
mount --bind '$T/etc' /etc/prison
mount --bind '$T/state' /var/lib/prison
mount --bind '$img' /var/lib/prison/images
mount --bind '$T/run' /run/prison
mount --bind '$T/root' /root/.ssh
mount --bind '$T/log' /var/log
mount --bind '$T/pam.d' /etc/pam.d
mount --bind '$T/pam-modules' '$pamdir'
if [ -d /run/systemd/system ]; then mount -t tmpfs tmpfs /run/systemd; fi
echo \$\$ >'$T/holder.pid'
exec sleep 3600
EOF
in_ns demo unshare --mount --propagation private bash "$T/mounts.sh" \
    >"$T/holder.log" 2>&1 &
on_exit "kill $!"
if ! wait_until 100 test -s "$T/holder.pid"; then
	echo "# $(cat "$T/holder.log")"
	not_ok "the private mount namespace is set up"
	exit 1
fi
hp=$(cat "$T/holder.pid")
in_demo() {
	nsenter -t "$hp" -m -n -- env PREFIX="$T/prefix" \
	    PATH="$T/prefix/bin:$T/prefix/sbin:$PATH" "$@"
}
check "the demo's /root/.ssh is private and empty" \
    in_demo test ! -e /root/.ssh/id_ed25519.pub
check "the tested image is where the demo looks for images" \
    in_demo test -f /var/lib/prison/images/debian/manifest.json

# Decoys: prison daemons by name that are not the demo's (another
# config; the default config of the host's own mount namespace).  The
# demo must neither take them for its own nor stop them.
touch "$T/other.conf"
printf 'import time\ntime.sleep(3600)\n' >"$T/decoy.py"
py=/usr/bin/python3; [ -x "$py" ] || py=$(command -v python3)
in_demo env PRISON_CONFIG="$T/other.conf" \
    bash -c "exec -a prison-gateway '$py' '$T/decoy.py' -f" 2>/dev/null &
in_demo bash -c "exec -a '$T/prefix/sbin/prison-provisioner' '$py' \
    '$T/decoy.py' -f -c '$T/other.conf'" 2>/dev/null &
in_ns demo bash -c "exec -a prison-gateway '$py' '$T/decoy.py' -f" \
    2>/dev/null &
decoy_pids() { pgrep -f -- "^[^ ]*prison-[a-z]+ .*$T/decoy.py" | tr '\n' ' '; }
wait_until 100 test "$(decoy_pids | wc -w)" -eq 3
decoys=$(decoy_pids)
on_exit "kill $decoys"

manifest=$img/debian/manifest.json
mtime=$(stat -c %Y "$manifest")
guest_kernel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel_version"])' "$manifest")

run_demo() {	# LABEL [ARG]: sets out and rc
	local t0=$(date +%s)
	out=$(in_demo timeout 900 "$demo" "${@:2}" 2>&1 </dev/null); rc=$?
	echo "# $1 took $(( $(date +%s) - t0 ))s; its output:"
	printf '%s\n' "$out" | sed 's/^/#   /'
}
daemon_pids() {
	in_demo cat /run/prison/demo-provisioner.pid \
	    /run/prison/demo-gateway.pid 2>/dev/null | tr '\n' ' '
}
qemu_pids() {
	local p
	for p in $(ip netns pids "$NS_PREFIX-demo"); do
		case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in
		*qemu-system*prison:demo*) echo "$p" ;;
		esac
	done
}

# ---- first run: cold ------------------------------------------------
run_demo "first run"
expect_eq "the demo exits 0" 0 "$rc"
expect_match "the image step is a cache hit" \
    "image debian is already built in /var/lib/prison/images/debian" "$out"
expect_eq "the cached image was not rebuilt" "$mtime" "$(stat -c %Y "$manifest")"
proof=$(printf '%s\n' "$out" | grep '^hello from ' | head -n 1)
expect_eq "proof: the command ran in demo's guest, with the guest's kernel" \
    "hello from demo, kernel $guest_kernel" "$proof"
check "proof: the guest's kernel is not the host's ($(uname -r))" \
    test "$guest_kernel" != "$(uname -r)"
expect_match "the first login booted the VM" "prison: starting demo" "$out"
check "the config is written in the private /etc/prison" \
    in_demo grep -q '^listen = 0.0.0.0:2222$' /etc/prison/prison.conf
check "the PAM service is installed in the private /etc/pam.d" \
    in_demo cmp -s "$TOP/contrib/pam.d/prison-minimal" /etc/pam.d/prison
check "a key was made in the private /root/.ssh" \
    in_demo test -f /root/.ssh/id_ed25519.pub
fp=$(in_demo ssh-keygen -lf /root/.ssh/id_ed25519.pub | awk '{print $2}')
keys=$(in_demo prisonctl user key list admin 2>&1)
check "that key is registered for developer admin" \
    grep -qF -- "${fp:-no key}" <<<"$keys"
expect_match "admin is a member of project demo" '"admin"' \
    "$(in_demo prisonctl project show demo --json 2>&1)"
for u in prison prison-vm; do
	check "system user $u exists" id "$u"
done
expect_match "it says how to log in" \
    "Log in: +ssh -p 2222 demo@localhost" "$out"
expect_match "it says how to stop" \
    "Stop everything: +$demo stop" "$out"
pids=$(daemon_pids)
expect_match "both daemons run in the background, pidfiles written" \
    '^[0-9]+ [0-9]+ $' "$pids"
vm1=$(qemu_pids)
expect_match "the VM runs" '^[0-9]+$' "$vm1"

# ---- second run: nothing changes, the login is warm -----------------
conf1=$(in_demo sha256sum /etc/prison/prison.conf)
run_demo "second run"
expect_eq "second run: exits 0" 0 "$rc"
expect_eq "second run: proves it again" \
    "hello from demo, kernel $guest_kernel" \
    "$(printf '%s\n' "$out" | grep '^hello from ' | head -n 1)"
check_fails "second run: the login was warm (no boot)" \
    grep -q "prison: starting demo" <<<"$out"
check_fails "second run: no package was missing, apt not run" \
    grep -q "^installing:" <<<"$out"
expect_eq "second run: same daemons" "$pids" "$(daemon_pids)"
expect_eq "second run: same VM" "$vm1" "$(qemu_pids)"
expect_eq "second run: config unchanged" "$conf1" \
    "$(in_demo sha256sum /etc/prison/prison.conf)"
expect_eq "second run: still one key for admin, the same" "$keys" \
    "$(in_demo prisonctl user key list admin 2>&1)"

# ---- stop -----------------------------------------------------------
run_demo "stop" stop
expect_eq "stop: exits 0" 0 "$rc"
expect_match "stop: says so" "prison stopped" "$out"
left=
for p in $(ip netns pids "$NS_PREFIX-demo"); do
	case " $decoys $hp " in *" $p "*) continue ;; esac
	c=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
	case $c in *qemu*|*prison-*) left="$left [$p: $c]" ;; esac
done
expect_eq "stop: no qemu or prison-* process is left in the namespace" \
    "" "$left"
check "stop: the pidfiles are gone" in_demo test ! -e \
    /run/prison/demo-gateway.pid -a ! -e /run/prison/demo-provisioner.pid
expect_eq "stop: prison daemons that are not the demo's are left alone" \
    "$decoys" "$(decoy_pids)"
run_demo "stop again" stop
expect_eq "stop with nothing running: exits 0" 0 "$rc"

# ---- the host's own files -------------------------------------------
expect_eq "nothing of the host's was written" "$before" "$(host_state)"
