#!/usr/bin/env bash
# The main job end to end: a developer on the LAN types
# `ssh -p 2222 proja@host` and lands in proja's own microVM.  Real
# clients (OpenSSH, dropbear's dbclient, PuTTY's plink), the real gateway
# and provisioner, a real TAP and nftables, real guests booted from the
# test image and bootstrapped from metadata.
#
# Namespaces: "host" runs prison (LAN side 192.0.2.1), "lan" is the
# developer's machine (192.0.2.10).  Boots two guests (TCG here), so it
# takes a few minutes.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd qemu-system-x86_64 ssh ssh-keygen dbclient dropbearconvert \
    plink puttygen ip
img=$("$TOP/tests/guest-image.sh") || { echo "guest image build failed"; exit 1; }
setup_tmp
# The daemons' logs outlive $T, for whoever reads a failure.
on_exit "cp '$T/prov.log' '$BUILD/test-logs/e2e-provisioner.log'; cp '$T/gw.log' '$BUILD/test-logs/e2e-gateway.log'"
chmod 0711 "$T"
chmod 0755 "$T/state" "$T/etc"

gwuser=pgw$$ vmuser=pvm$$
useradd --system --no-create-home --shell /usr/sbin/nologin "$gwuser" &&
    on_exit "userdel '$gwuser'" || exit 1
useradd --system --no-create-home --shell /usr/sbin/nologin "$vmuser" &&
    on_exit "userdel '$vmuser'" || exit 1

# The gateway's PAM service: the membership rule again, through PAM.
svc=prison-e2e-$$
printf 'auth required pam_permit.so\naccount required %s trust_env config=%s\nsession required pam_permit.so\n' \
    "$BUILD/pam_prison.so" "$T/prison.conf" >"/etc/pam.d/$svc"
on_exit "rm -f '/etc/pam.d/$svc'"

conf_set paths image_dir "$img"
conf_set network lan_interface lan0
conf_set gateway listen 192.0.2.1:2222
conf_set gateway user "$gwuser"
conf_set gateway pam_service "$svc"
conf_set provisioner vmm_user "$vmuser"

ns_add host || exit 1
ns_add lan || exit 1
ip link add "e2e$$h" type veth peer name "e2e$$l"
ip link set "e2e$$h" netns "$NS_PREFIX-host"
ip link set "e2e$$l" netns "$NS_PREFIX-lan"
in_ns host ip link set "e2e$$h" name lan0
in_ns host ip addr add 192.0.2.1/24 dev lan0
in_ns host ip link set lan0 up
in_ns host ip route add default via 192.0.2.254 dev lan0
in_ns lan ip addr add 192.0.2.10/24 dev "e2e$$l"
in_ns lan ip link set "e2e$$l" up

# Developers: alice in both projects, bob only in projb.
for u in alice bob; do
	ssh-keygen -q -t ed25519 -N '' -C "$u@lan" -f "$T/$u"
	$PRISONCTL user add $u >/dev/null
	$PRISONCTL user key add $u -f "$T/$u.pub" >/dev/null
done
$PRISONCTL project add proja --member alice --ssh-port 22240 >/dev/null
$PRISONCTL project add projb --member alice --member bob >/dev/null

in_ns host "$BUILD/prison-provisioner" -f >"$T/prov.log" 2>&1 &
prov=$!
on_exit "kill -9 $prov"
on_exit "$PRISONCTL vm stop --all"
for _ in $(seq 100); do
	[ -S "$T/run/provisioner.sock" ] && break
	sleep 0.1
done
check "provisioner is up" test -S "$T/run/provisioner.sock"
in_ns host "$BUILD/prison-gateway" -f >"$T/gw.log" 2>&1 &
on_exit "kill $!"
for _ in $(seq 100); do
	in_ns lan bash -c '</dev/tcp/192.0.2.1/2222' 2>/dev/null && break
	sleep 0.1
done

SSHOPTS=(-F /dev/null -o UserKnownHostsFile="$T/known_hosts"
    -o StrictHostKeyChecking=accept-new -o BatchMode=yes
    -o IdentitiesOnly=yes -o ConnectTimeout=30)
dev_ssh() {	# WHO PROJECT COMMAND...: through the gateway, from the LAN
	local who=$1 proj=$2; shift 2
	in_ns lan timeout 400 ssh "${SSHOPTS[@]}" -i "$T/$who" -p 2222 \
	    "$proj@192.0.2.1" "$@" </dev/null
}

# ---- cold start, then a warm reconnect -----------------------------
t0=$(date +%s)
out=$(dev_ssh alice proja 'echo "$(hostname) $(id -un)"; exit 7' \
    2>"$T/cold.err"); rc=$?
echo "# cold start took $(( $(date +%s) - t0 ))s"
expect_eq "cold start: lands in proja's guest as the dev user" \
    "proja dev" "$out"
expect_eq "cold start: the remote exit status comes back" 7 "$rc"
expect_match "cold start: the developer is told what is happening" \
    "prison: starting proja" "$(cat "$T/cold.err")"

dev_ssh alice proja 'echo keep-me >~/keep.txt; sync'
t0=$(date +%s%N)
out=$(dev_ssh alice proja 'cat ~/keep.txt; ip -4 -o addr show eth0')
echo "# warm reconnect took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
expect_match "warm reconnect: same guest, file there" "^keep-me" "$out"
expect_match "guest has its /30 address" "inet 172\.31\.[0-9.]+/30" "$out"
n=$(pgrep -u "$vmuser" -fc "qemu-system.*prison:proja" || true)
expect_eq "one VM for proja" 1 "$n"

# ---- other clients: dropbear's dbclient, PuTTY's plink --------------
dropbearconvert openssh dropbear "$T/alice" "$T/alice.db" >/dev/null 2>&1
out=$(in_ns lan timeout 120 dbclient -y -y -i "$T/alice.db" -p 2222 \
    proja@192.0.2.1 'cat ~/keep.txt' </dev/null 2>/dev/null)
expect_eq "dbclient: logs in and reads the file" keep-me "$out"
puttygen "$T/alice" -O private -o "$T/alice.ppk" >/dev/null 2>&1
fp=$(ssh-keygen -lf "$T/etc/ssh_host_ed25519_key.pub" -E sha256 |
    awk '{print $2}')
out=$(in_ns lan timeout 120 plink -batch -hostkey "$fp" -i "$T/alice.ppk" \
    -P 2222 proja@192.0.2.1 'cat ~/keep.txt; exit 3' </dev/null 2>/dev/null)
rc=$?
expect_eq "plink: logs in and reads the file" keep-me "$out"
expect_eq "plink: exit status" 3 "$rc"

# ---- the direct path: host port DNATed to the guest's sshd ----------
# The guest must present the host key prison generated for proja.
hk=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host_key"])' \
    "$T/state/vms/proja/state.json")
echo "[192.0.2.1]:22240 $hk" >"$T/direct_known_hosts"
out=$(in_ns lan timeout 60 ssh -F /dev/null -o BatchMode=yes \
    -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$T/direct_known_hosts" \
    -o IdentitiesOnly=yes -i "$T/alice" -p 22240 dev@192.0.2.1 \
    'cat ~/keep.txt' </dev/null 2>/dev/null)
expect_eq "direct port 22240 reaches proja's guest, pinned host key" \
    keep-me "$out"

# ---- access rules ---------------------------------------------------
dev_ssh bob proja true 2>/dev/null
expect_eq "non-member bob is refused" 255 $?

# ---- stop, and the next login boots it again with the files ---------
# A session open across the stop ends at once and says why.
dev_ssh alice proja 'echo started; exec sleep 600' >"$T/live.out" \
    2>"$T/live.err" &
live=$!
wait_until 300 grep -q started "$T/live.out"
t0=$(date +%s)
check "prisonctl vm stop proja" $PRISONCTL vm stop proja
echo "# vm stop took $(( $(date +%s) - t0 ))s"
# The power button, not a kill: the guest shut down on its own.
expect_match "the guest powered itself off cleanly" "reboot: Power down" \
    "$(tail -n 5 "$T/state/vms/proja/console.log")"
check_fails "no qemu left for proja" pgrep -u "$vmuser" -f "qemu-system.*prison:proja"
check "a session open across the stop has ended" wait_until 100 gone "$live"
kill "$live" 2>/dev/null; wait "$live" 2>/dev/null
expect_match "it was told the VM is stopping" "VM is stopping" \
    "$(cat "$T/live.err")"
out=$(dev_ssh alice proja 'cat ~/keep.txt')
expect_eq "after a stop the next login boots it again, file intact" \
    keep-me "$out"

# ---- a second project at the same time, isolated --------------------
out=$(dev_ssh bob projb 'hostname')
expect_eq "projb boots alongside proja" projb "$out"
expect_eq "both VMs run" 2 "$(pgrep -u "$vmuser" -fc qemu-system | tr -d ' ')"
aip=$(in_ns host "$PRISONCTL" net show proja --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["guest_ip"])')
out=$(dev_ssh bob projb "timeout 5 bash -c '</dev/tcp/$aip/22' && echo reached || echo blocked")
expect_eq "projb's guest cannot reach proja's guest ($aip:22)" blocked "$out"
out=$(dev_ssh bob projb "timeout 5 bash -c '</dev/tcp/192.0.2.1/2222' && echo reached || echo blocked")
expect_eq "projb's guest cannot reach the gateway on the host" blocked "$out"
out=$(dev_ssh alice projb 'test -e ~/keep.txt && echo shared || echo own')
expect_eq "projb has its own disk" own "$out"

# ---- deleting a project: its VM stops, its data is set aside ---------
dev_ssh bob projb 'echo bob-secret >~/secret; sync'
check "project del projb while its VM runs" $PRISONCTL project del projb
check_fails "projb's VM is stopped" \
    pgrep -u "$vmuser" -f "qemu-system.*prison:projb"
check "projb's disk is kept aside, not deleted" \
    ls "$T"/state/disks/deleted/projb.*.ext4
$PRISONCTL project add projb --member alice >/dev/null
out=$(dev_ssh alice projb 'cat ~/secret 2>/dev/null || echo fresh')
expect_eq "a new project of the same name does not inherit the data" \
    fresh "$out"

# ---- stop everything; nothing left behind ---------------------------
check "prisonctl vm stop --all" $PRISONCTL vm stop --all
check_fails "no qemu processes left" pgrep -u "$vmuser" -f qemu-system
check_fails "no guest answers after stop" in_ns lan timeout 5 \
    bash -c '</dev/tcp/192.0.2.1/22240'
