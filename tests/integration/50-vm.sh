#!/usr/bin/env bash
# prison-provisioner with a real guest (qemu microvm; TCG on hosts
# without a usable KVM).  Namespaces: "host" runs the provisioner, "inet"
# is the host's default route and egress target.  One guest is booted and
# shared by most checks, because a TCG boot takes tens of seconds.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd ip nft socat nc ssh ssh-keygen python3 curl qemu-system-x86_64
[ -x "$TOP/tests/guest-image.sh" ] || {
	echo "needs tests/guest-image.sh (the guest image)"; exit 77; }
images=$("$TOP/tests/guest-image.sh") || {
	echo "tests/guest-image.sh could not build the guest image"; exit 1; }
setup_tmp
P=vm$$				# unique: qemu processes are counted by name
TABLE=pt$$
conf_set paths image_dir "$images"
conf_set network nft_table "$TABLE"
conf_set provisioner vmm_user nobody
conf_set provisioner accel auto
conf_set provisioner boot_timeout 300
conf_set provisioner disk_size_mib 2048
conf_set provisioner default_mem_mib 512
SOCK=$T/run/provisioner.sock

ns_add host || exit 1
ns_add inet
ip link add eth-inet netns "$NS_PREFIX-host" type veth peer eth0 \
    netns "$NS_PREFIX-inet"
in_ns host ip addr add 10.91.0.1/24 dev eth-inet
in_ns inet ip addr add 10.91.0.2/24 dev eth0
in_ns host ip link set eth-inet up
in_ns inet ip link set eth0 up
in_ns host ip route add default via 10.91.0.2
on_exit "in_ns host nft delete table inet $TABLE"

# The "internet": an HTTP server that answers with the client's address.
cat >"$T/echo.py" <<'EOF'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("10.91.0.2", 8080), H).serve_forever()
EOF
in_ns inet python3 "$T/echo.py" &

pc() { in_ns host "$PRISONCTL" "$@"; }
for u in alice bob; do
	ssh-keygen -q -t ed25519 -N '' -C "$u@test" -f "$T/$u"
	pc user add "$u" >/dev/null
	pc user key add "$u" "$(cat "$T/$u.pub")" >/dev/null
done
pc project add "$P" >/dev/null
pc project grant "$P" alice >/dev/null
pc project grant "$P" bob >/dev/null

start_provisioner() {
	# ip netns exec execs the daemon: $! is the provisioner itself.
	ip netns exec "$NS_PREFIX-host" "$BUILD/prison-provisioner" -f \
	    >>"$T/provisioner.log" 2>&1 &
	PROV=$!
	# A killed provisioner leaves its socket file: wait for an answer.
	for _ in $(seq 100); do
		pc vm list >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
on_exit 'kill $PROV; pc vm cleanup --all'
# Print the final reply of one request.
ask() { printf '%s\n' "$1" | socat -t 600 - "UNIX-CONNECT:$SOCK" | tail -n 1; }
# jget KEY: a member of the JSON object on stdin ("None" when absent).
jget() {
	python3 -c 'import json, sys
print(json.loads(sys.stdin.read() or "{}").get(sys.argv[1]))' "$1"
}
# vmget KEY: a member of the first VM in vm list --json ("none": no VM).
vmget() {
	pc vm list --json | python3 -c 'import json, sys
v = json.load(sys.stdin)
print(v[0][sys.argv[1]] if v else "none")' "$1"
}
qemus() { pgrep -f -- "-name prison:$P( |\$)" | wc -l; }
notify_listen "$T/notify" "$T/notified"
NOTIFY_SOCKET=$T/notify check "the provisioner starts" start_provisioner
check "the provisioner tells systemd it is ready" \
    wait_until 50 grep -qx READY=1 "$T/notified"
check_fails "a second provisioner is refused" in_ns host \
    "$BUILD/prison-provisioner" -f

# Ten simultaneous ensures boot one VM, and all of them get the answer.
pids=()
for i in $(seq 10); do
	ask "{\"op\":\"ensure\",\"project\":\"$P\"}" >"$T/ensure.$i" &
	pids+=($!)
done
sleep 5
expect_eq "one qemu for ten concurrent ensures (while booting)" 1 "$(qemus)"
wait "${pids[@]}"
oks=$(cat "$T"/ensure.* | grep -c '"ok":true')
expect_eq "all ten ensures report ready" 10 "$oks"
[ "$oks" = 10 ] || { cat "$T"/ensure.1; tail -n 30 "$T/provisioner.log";
	tail -n 30 "$T/state/vms/$P/console.log"; exit 1; }
expect_eq "still one qemu" 1 "$(qemus)"
reply=$(cat "$T/ensure.1")
G=$(echo "$reply" | jget address)
HK=$(echo "$reply" | jget host_key)
expect_match "reply has the guest address" '^172\.31\.' "$G"
expect_eq "reply has the project's host key" \
    "$(ssh-keygen -y -f "$T/state/vms/$P/ssh_host_ed25519_key" |
    cut -d' ' -f1-2)" \
    "$HK"
expect_eq "reply has dev_user" dev "$(echo "$reply" | jget dev_user)"
expect_match "vm list shows it running" "^$P +running +$G" "$(pc vm list)"

echo "$P $HK" >"$T/known_hosts"
gssh() {	# key user command...
	local k=$1 u=$2; shift 2
	in_ns host ssh -i "$T/$k" -o BatchMode=yes -o ConnectTimeout=20 \
	    -o UserKnownHostsFile="$T/known_hosts" -o HostKeyAlias="$P" \
	    -o StrictHostKeyChecking=yes "$u@$G" "$@"
}
check "alice logs in with the pinned host key" gssh alice dev true
gssh alice dev 'echo kept-across-restarts >~/persist'
expect_match "guest has its /30" "inet $G/30" \
    "$(gssh alice dev ip -4 addr show eth0)"
expect_eq "guest reaches the internet through NAT" 10.91.0.1 \
    "$(gssh alice dev curl -s -m 10 http://10.91.0.2:8080/)"

# Metadata: token required, served for this guest only.
md=http://169.254.169.254
expect_eq "metadata without a token: 401" 401 "$(gssh alice dev \
    curl -s -o /dev/null -w '%{http_code}' $md/prison)"
expect_eq "metadata with a bad token: 401" 401 "$(gssh alice dev \
    curl -s -o /dev/null -w '%{http_code}' -H 'X-metadata-token:\ x' \
    $md/prison)"
expect_eq "token without a TTL: 400" 400 "$(gssh alice dev \
    curl -s -o /dev/null -w '%{http_code}' -X PUT $md/latest/api/token)"
project=$(gssh alice dev 'tok=$(curl -s -X PUT '$md'/latest/api/token \
    -H "X-metadata-token-ttl-seconds: 60"); curl -s '$md'/prison/project \
    -H "X-metadata-token: $tok" -H "Accept: application/json"')
expect_eq "metadata with a token answers" "\"$P\"" "$project"

keys=$(gssh alice dev 'grep -v "^#" ~/.ssh/authorized_keys' | sort)
HA=$(vmget host_address)
check_fails "the metadata listener answers the guest only, not the host" \
    in_ns host curl -s -m 5 -o /dev/null "http://$HA/"
gw=$(cut -d' ' -f1-2 "$T/etc/gateway_client_ed25519_key.pub")
want=$( (cut -d' ' -f1-3 "$T/alice.pub"; cut -d' ' -f1-3 "$T/bob.pub"
	echo "from=\"$HA\" $gw prison-gateway") | sort)
expect_eq "authorized_keys: exactly the members' keys and the gateway's" \
    "$want" "$keys"
out=$(in_ns host ssh -v -o BatchMode=yes -o PubkeyAuthentication=no \
    -o UserKnownHostsFile="$T/known_hosts" -o HostKeyAlias="$P" \
    "dev@$G" true 2>&1)
expect_match "password logins not offered" \
    'Authentications that can continue: publickey$' \
    "$(echo "$out" | tr -d '\r' |
    grep 'Authentications that can continue' | head -n 1)"
check_fails "root login refused" gssh alice root true
check_fails "project reset refused while running" pc project reset "$P"

# Revocation reaches the running guest within 60 seconds.
check "bob logs in while a member" gssh bob dev true
pc project revoke "$P" bob >/dev/null
gone=no
for _ in $(seq 30); do
	if ! gssh bob dev true 2>/dev/null; then gone=yes; break; fi
	sleep 2
done
expect_eq "a revoked key leaves the guest within 60s" yes "$gone"
check "alice still logs in" gssh alice dev true
# Key refreshes must not hang on the boot setup having fully succeeded.
unit() { gssh alice dev sudo -n systemctl show -p "$1" --value \
    prison-guest-refresh.service; }
expect_match "the refresh unit runs after the boot unit" \
    '(^| )prison-guest\.service( |$)' "$(unit After)"
expect_match "the refresh unit wants the boot unit" \
    '(^| )prison-guest\.service( |$)' "$(unit Wants)"
check_fails "the refresh unit does not require the boot unit" \
    grep -qw prison-guest.service <<<"$(unit Requires)"
# Guests get resolvers by default ([network] nameservers unset).
expect_match "resolv.conf names a nameserver from metadata" \
    '^nameserver [0-9.]+$' \
    "$(gssh alice dev grep '^nameserver' /etc/resolv.conf | head -n 1)"
expect_eq "the metadata's nameservers are the guest's" \
    "$(python3 - "$T/prison.conf" <<'PY'
import re, sys
ns = []
for f in ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"):
    try:
        for l in open(f):
            w = l.split()
            if len(w) > 1 and w[0] == "nameserver" and \
                    re.match(r"^\d+\.\d+\.\d+\.\d+$", w[1]) and \
                    not w[1].startswith("127."):
                ns.append(w[1])
    except OSError:
        pass
    if ns:
        break
print(" ".join(ns[:3] or ["1.1.1.1", "9.9.9.9"]))
PY
)" "$(gssh alice dev awk "'/^nameserver/ {print \$2}'" /etc/resolv.conf |
    tr '\n' ' ' | sed 's/ $//')"

# A provisioner killed hard adopts the running VM when it starts again.
pid=$(vmget pid)
kill -9 "$PROV"; wait "$PROV" 2>/dev/null
check "the provisioner restarts" start_provisioner
expect_eq "the VM is adopted (same pid)" "$pid" \
    "$(vmget pid)"
check "the adopted VM is still reachable" gssh alice dev true
expect_match "ensure answers at once for the adopted VM" '"ok":true' \
    "$(ask "{\"op\":\"ensure\",\"project\":\"$P\"}")"

# Stop leaves no process, TAP or nftables element behind.
check "vm stop" pc vm stop "$P"
expect_eq "no qemu left" 0 "$(qemus)"
check_fails "no TAP left" in_ns host ip link show "tap-$P"
check_fails "no nftables element for the guest left" \
    sh -c "ip netns exec $NS_PREFIX-host nft list table inet $TABLE |
    grep -qF '$G'"
expect_eq "vm list is empty" "[]" "$(pc vm list --json | tr -d ' \n')"

# A provisioner killed while the VM boots: the next one adopts the VM as
# starting, and ensure answers only once the guest's sshd does.
qpid() { pgrep -f -- "-name prison:$P( |\$)"; }
one_qemu() { [ "$(qemus)" = 1 ]; }
# dead PID: exited, or a zombie its new parent has not reaped yet.
dead() { gone "$1" || [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]; }
ask "{\"op\":\"ensure\",\"project\":\"$P\"}" >/dev/null &
EP=$!
check "a VM starts for the mid-boot crash" wait_until 300 one_qemu
booting=$(qpid)
kill -9 "$PROV"; wait "$PROV" 2>/dev/null; wait "$EP" 2>/dev/null
check "the provisioner restarts during the boot" start_provisioner
expect_eq "a VM adopted mid-boot is starting, not running" starting \
    "$(vmget state)"
expect_match "ensure waits for the adopted VM's sshd" '"ok":true' \
    "$(ask "{\"op\":\"ensure\",\"project\":\"$P\"}")"
expect_eq "the VM booting at the crash is the one adopted" "$booting" \
    "$(vmget pid)"
expect_eq "exactly one qemu after the mid-boot crash" 1 "$(qemus)"
check "its sshd answers once ensure said ready" gssh alice dev true
check "vm stop after the mid-boot adoption" pc vm stop "$P"

# Killed before the VM's record was written: the orphan qemu is found by
# its command line and stopped, and the next ensure boots a VM.
ask "{\"op\":\"ensure\",\"project\":\"$P\"}" >/dev/null &
EP=$!
check "a VM starts for the unrecorded crash" wait_until 300 one_qemu
orphan=$(qpid)
kill -9 "$PROV"; wait "$PROV" 2>/dev/null; wait "$EP" 2>/dev/null
rm -f "$T/state/vms/$P/state.json" "$T/state/vms/$P/qemu.pid"
check "the provisioner restarts after the unrecorded crash" \
    start_provisioner
check "the unrecorded qemu is stopped" wait_until 100 dead "$orphan"
expect_match "ensure works after an unrecorded VM" '"ok":true' \
    "$(ask "{\"op\":\"ensure\",\"project\":\"$P\"}")"
expect_eq "exactly one qemu after the unrecorded crash" 1 "$(qemus)"
check "vm stop after the unrecorded crash" pc vm stop "$P"

# The disk survives: a file written before the stop is still there.
expect_match "ensure boots it again" '"ok":true' \
    "$(ask "{\"op\":\"ensure\",\"project\":\"$P\"}")"
expect_eq "files written in the guest survive stop and start" \
    kept-across-restarts "$(gssh alice dev cat persist)"

# Sessions: a held ensure counts while its connection is open.
req="{\"op\":\"ensure\",\"project\":\"$P\",\"hold\":true}"
coproc HOLD { exec socat -t 600 - "UNIX-CONNECT:$SOCK" <<<"$req"; }
sleep 1
expect_eq "a held ensure counts a session" 1 "$(vmget sessions)"
kill "${HOLD_PID:-0}" 2>/dev/null; wait "${HOLD_PID:-0}" 2>/dev/null
sleep 1
expect_eq "closing it ends the session" 0 "$(vmget sessions)"

# An unprivileged peer is refused (it may reach the socket, not use it).
chmod o+x "$T" "$T/run"
expect_match "non-root, non-gateway peers are refused" "not allowed" \
    "$(printf '{"op":"list"}\n' | setpriv --reuid nobody --regid nogroup \
    --clear-groups socat -t 5 - "UNIX-CONNECT:$SOCK")"

# The VM this provisioner booted is its child: a stop leaves no zombie.
zombies() { ps --ppid "$PROV" -o stat= | grep -c '^Z'; }
# A held session hears of the stop: the provisioner says so and closes.
socat -t 600 - "UNIX-CONNECT:$SOCK" <<<"$req" >"$T/held.out" &
HELD=$!
held() { [ "$(vmget sessions)" = 1 ]; }
wait_until 50 held
check "vm stop of a VM booted by this provisioner" pc vm stop "$P"
expect_eq "no zombie qemu left" 0 "$(zombies)"
check "the held connection is closed by the stop" wait_until 50 gone "$HELD"
kill "$HELD" 2>/dev/null; wait "$HELD" 2>/dev/null
expect_match "the held connection is told the VM stopped" \
    '"event": *"stopped"' "$(cat "$T/held.out")"

# Idle stop: without sessions for idle_timeout seconds the VM stops.
kill "$PROV"; wait "$PROV" 2>/dev/null
conf_set provisioner idle_timeout 3
check "the provisioner restarts with idle_timeout = 3" start_provisioner
expect_match "ensure boots it for the idle test" '"ok":true' \
    "$(ask "{\"op\":\"ensure\",\"project\":\"$P\"}")"
# An SSH connection the provisioner was not told of (the direct port, or
# a front door's session across a provisioner restart) keeps it running.
sleep 30 | in_ns host nc "$G" 22 >/dev/null &
CONN=$!
sleep 8
expect_eq "a VM with an unheld SSH connection is not idle" running \
    "$(vmget state)"
kill "$CONN"; wait "$CONN" 2>/dev/null
in_ns host pkill -f "^nc $G 22\$"
idle=no
for _ in $(seq 60); do
	[ "$(qemus)" = 0 ] && { idle=yes; break; }
	sleep 1
done
expect_eq "an idle VM is stopped" yes "$idle"
expect_match "the log says why" "project=$P stopping \(idle\)" \
    "$(cat "$T/provisioner.log")"
expect_eq "no zombie after the idle stop" 0 "$(zombies)"

# After a provisioner crash, vm cleanup --all works from its records.
expect_match "ensure boots it once more" '"ok":true' \
    "$(ask "{\"op\":\"ensure\",\"project\":\"$P\"}")"
kill -9 "$PROV"; wait "$PROV" 2>/dev/null
check "vm cleanup --all without a provisioner" pc vm cleanup --all
expect_eq "cleanup left no qemu" 0 "$(qemus)"
check_fails "cleanup left no TAP" in_ns host ip link show "tap-$P"
check_fails "cleanup left no record" test -e "$T/state/vms/$P/state.json"
check "the provisioner starts after the cleanup" start_provisioner
check "vm stop --all" pc vm stop --all
expect_eq "nothing left running" 0 "$(qemus)"
# The stopped guest's file, read from its disk (journal replayed first).
persist() {
	e2fsck -fy "$T/state/disks/$P.ext4" >/dev/null 2>&1
	debugfs -R "cat /home/dev/persist" "$T/state/disks/$P.ext4" \
	    2>/dev/null
}
expect_eq "the guest's file is on the project disk" kept-across-restarts \
    "$(persist)"
check "project reset once stopped" pc project reset "$P"
check "reset made a new disk" test -s "$T/state/disks/$P.ext4"
expect_eq "the new disk does not have the guest's file" "" "$(persist)"
