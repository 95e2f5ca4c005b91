#!/usr/bin/env bash
# pam_prison's session phase against the real prison-provisioner: the
# session opens only once the project's VM has booted and its sshd
# answers, and a project whose VM cannot start fails the session with
# the provisioner's stage.
# Boots one guest (TCG here), so it takes a minute or two.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd pamtester qemu-system-x86_64 ip
WRAP=$(ls /usr/lib/*/libpam_wrapper.so /usr/lib/libpam_wrapper.so \
    2>/dev/null | head -n 1)
[ -n "$WRAP" ] || { echo "needs libpam-wrapper"; exit 77; }
MOD=$BUILD/pam_prison.so
for f in "$MOD" "$BUILD/prison-provisioner"; do
	[ -e "$f" ] || { echo "needs $f (make)"; exit 77; }
done
img=$("$TOP/tests/guest-image.sh") || { echo "no guest image"; exit 77; }
setup_tmp
mkdir -p "$T/pam.d"
: >"$T/pam.d/other"
conf_set paths image_dir "$img"
conf_set network lan_interface lan0
chmod 0711 "$T"
vmm=pq$$
useradd --system --no-create-home --shell /usr/sbin/nologin "$vmm" ||
    exit 1
on_exit "userdel '$vmm'"
conf_set provisioner vmm_user "$vmm"

# The provisioner's host: a namespace with a LAN-side interface.
ns_add host || exit 1
in_ns host ip link add lan0 type veth peer name lan1
in_ns host ip link set lan1 up
in_ns host ip addr add 192.0.2.1/24 dev lan0
in_ns host ip link set lan0 up
in_ns host ip route add default via 192.0.2.254 dev lan0

ssh-keygen -q -t ed25519 -N '' -C alice@test -f "$T/alice"
$PRISONCTL user add alice >/dev/null
$PRISONCTL user key add alice "$(cat "$T/alice.pub")" >/dev/null
$PRISONCTL project add proja >/dev/null 2>&1
$PRISONCTL project grant proja alice >/dev/null 2>&1
$PRISONCTL project add projx --image noimage >/dev/null 2>&1
$PRISONCTL project grant projx alice >/dev/null 2>&1
$PRISONCTL gateway-key >/dev/null 2>&1

in_ns host "$BUILD/prison-provisioner" -f >"$T/prov.log" 2>&1 &
prov=$!
on_exit "$PRISONCTL vm stop --all; kill $prov; sleep 1; kill -9 $prov"
for i in $(seq 100); do
	[ -S "$T/run/provisioner.sock" ] && break
	sleep 0.1
done
check "provisioner is up" test -S "$T/run/provisioner.sock"

echo "session required $MOD config=$T/prison.conf debug" >"$T/pam.d/sess"
pt() {	# USER OPS...: pamtester under pam_wrapper, output in $T/out
	LD_PRELOAD=$WRAP PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d \
	    PAM_WRAPPER_DEBUGLEVEL=2 pamtester \
	    -E "SSH_AUTH_INFO_0=publickey $(cut -d' ' -f1,2 "$T/alice.pub")" \
	    sess "$@" >"$T/out" 2>&1 </dev/null
}

start=$(date +%s)
check "session opened once the VM was ready, then closed" \
    pt proja open_session close_session
echo "# ensure took $(( $(date +%s) - start ))s"
expect_match "the module saw the provisioner's answer" \
    "session project=proja: VM ready" "$(cat "$T/out")"
got=$($PRISONCTL vm list 2>&1)
expect_match "the VM runs" "proja" "$got"

check_fails "a VM that cannot start fails the session" pt projx open_session
expect_match "the provisioner's stage is logged" \
    "session project=projx: ensure failed stage=[a-z]+: " "$(cat "$T/out")"
