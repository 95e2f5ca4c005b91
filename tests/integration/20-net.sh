#!/usr/bin/env bash
# The network layer with real traffic.  Namespaces: "host" (prison runs
# here), "lan" (a developer machine), "inet" (egress target, the host's
# default route), one "gN" namespace per stand-in guest whose eth0 is
# joined to the project's TAP by build/helpers/taprelay.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd ip nft socat curl conntrack python3
PRISONCTL=${NET_PRISONCTL:-$PRISONCTL}
RELAY=$BUILD/helpers/taprelay
[ -x "$RELAY" ] || { echo "needs $RELAY (make check)"; exit 77; }
setup_tmp
conf_set provisioner vmm_user nobody

H=host
ns_add host || exit 1
ns_add lan
ns_add inet
ns_add g1
ns_add g2

# host eth-lan 10.90.1.1 <-> lan 10.90.1.2; host eth-inet 10.90.2.1 <-> inet
veth() {	# ns-a if-a addr-a ns-b if-b addr-b
	ip link add "$2" netns "$NS_PREFIX-$1" type veth peer "$5" \
	    netns "$NS_PREFIX-$4"
	in_ns "$1" ip addr add "$3/24" dev "$2"
	in_ns "$4" ip addr add "$6/24" dev "$5"
	in_ns "$1" ip link set "$2" up
	in_ns "$4" ip link set "$5" up
}
veth host eth-lan 10.90.1.1 lan eth0 10.90.1.2
veth host eth-inet 10.90.2.1 inet eth0 10.90.2.2
in_ns host ip route add default via 10.90.2.2

# Projects: name:ssh_port:egress[:upstream host:port]
registry() {
	python3 - "$T/state/registry.json" "$@" <<'EOF'
import json, sys
projects = []
for spec in sys.argv[2:]:
    name, port, egress, *up = spec.split(":", 3)
    projects.append({"name": name, "members": [], "ssh_port": int(port),
        "vcpus": 0, "mem_mib": 0, "image": None, "repo": None,
        "ref": None, "dev_user": "dev", "egress": egress,
        "upstream": up[0] if up else None})
json.dump({"version": 1, "users": [], "projects": projects},
    open(sys.argv[1], "w"))
EOF
}
registry proja:2240:allow projb:2241:allow projc:0:allow projd:0:allow \
    projf:0:allow

pc() { in_ns host "$PRISONCTL" "$@"; }
field() {	# project key: from net show --json
	pc net show "$1" --json | python3 -c \
	    'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
table() { in_ns host nft list table inet prison 2>/dev/null; }
# The elements of one set or map, one per line.
elems() {
	in_ns host nft -j list set inet prison "$1" 2>/dev/null |
	    python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    s = o.get("set") or o.get("map")
    if s:
        for e in s.get("elem", []):
            print(json.dumps(e))'
}

# A table prison must never touch.
in_ns host nft add table inet bystander
in_ns host nft add chain inet bystander c '{ type filter hook input priority 10; }'
in_ns host nft add rule inet bystander c counter accept
before_bystander=$(in_ns host nft -s list table inet bystander)

# --- up -------------------------------------------------------------------
check "net up proja" pc net up proja
TAPA=$(field proja tap)
HA=$(field proja host_ip)
GA=$(field proja guest_ip)
expect_eq "short name gives tap-NAME" tap-proja "$TAPA"
expect_eq "prefix is 30" 30 "$(field proja prefix)"
expect_eq "DNAT port shown" 2240 "$(field proja ssh_port)"
expect_match "guest is host + 1 in 172.31/16" '^172\.31\.' "$GA"
link=$(in_ns host ip -d link show "$TAPA")
expect_match "TAP is persistent and owned by the VMM user" \
    'persist on user nobody' "$link"
expect_match "TAP carries prison's alias" "alias prison:proja" "$link"
expect_match "host address on the TAP" "$HA/30" \
    "$(in_ns host ip -4 addr show "$TAPA")"
expect_eq "ip_forward on in the host namespace" 1 \
    "$(in_ns host cat /proc/sys/net/ipv4/ip_forward)"
expect_eq "rp_filter strict on the TAP" 1 \
    "$(in_ns host cat /proc/sys/net/ipv4/conf/$TAPA/rp_filter)"
expect_eq "proxy_arp off on the TAP" 0 \
    "$(in_ns host cat /proc/sys/net/ipv4/conf/$TAPA/proxy_arp)"
text=$(pc net show proja)
expect_match "show prints the addresses" "guest_ip +$GA" "$text"

check "net up projb" pc net up projb
TAPB=$(field projb tap)
HB=$(field projb host_ip)
GB=$(field projb guest_ip)
check "projects get different TAPs and subnets" \
    test "$TAPA" != "$TAPB" -a "$GA" != "$GB"

# --- stand-in guests ------------------------------------------------------
guest() {	# ns tap guest_ip host_ip
	in_ns host "$RELAY" "$2" "$NS_PREFIX-$1" eth0 >"$T/relay-$1" 2>&1 &
	on_exit "kill $!"
	for _ in $(seq 50); do
		grep -q ready "$T/relay-$1" && break
		sleep 0.1
	done
	in_ns "$1" ip addr add "$3/30" dev eth0
	in_ns "$1" ip link set eth0 up
	in_ns "$1" ip route add default via "$4"
}
guest g1 "$TAPA" "$GA" "$HA"
guest g2 "$TAPB" "$GB" "$HB"

listen() {	# ns addr port reply
	in_ns "$1" socat TCP-LISTEN:"$3",bind="$2",reuseaddr,fork \
	    SYSTEM:"echo $4" >/dev/null 2>&1 &
	on_exit "kill $!"
}
# Prints what the listener says, or nothing when it cannot connect.
talk() {	# ns addr port [bind]
	in_ns "$1" timeout 4 socat -T3 - \
	    TCP:"$2:$3",connect-timeout=2${4:+,bind=$4} </dev/null 2>/dev/null
}
listen g1 "$GA" 22 guest-a
listen g2 "$GB" 22 guest-b
in_ns inet socat TCP-LISTEN:8080,reuseaddr,fork \
    SYSTEM:'echo from-$SOCAT_PEERADDR' >/dev/null 2>&1 &
on_exit "kill $!"
listen host 0.0.0.0 7000 host-service
# Stand-in for the qemu driver's metadata server: host_ip:80 of the TAP.
printf 'HTTP/1.0 200 OK\r\n\r\nmetadata-a' >"$T/meta.http"
in_ns host socat TCP-LISTEN:80,bind="$HA",reuseaddr,fork \
    SYSTEM:"cat $T/meta.http" >/dev/null 2>&1 &
on_exit "kill $!"
sleep 0.5

# --- ingress --------------------------------------------------------------
expect_eq "lan -> host:2240 reaches guest-a:22" guest-a \
    "$(talk lan 10.90.1.1 2240)"
expect_eq "lan -> host:2241 reaches guest-b:22" guest-b \
    "$(talk lan 10.90.1.1 2241)"
expect_eq "host itself -> its LAN address:2240 reaches guest-a" guest-a \
    "$(talk host 10.90.1.1 2240)"
expect_eq "host -> guest:22 directly (the gateway's path)" guest-a \
    "$(talk host "$GA" 22)"

# --- egress ---------------------------------------------------------------
expect_eq "guest reaches the internet, seen as the host" from-10.90.2.1 \
    "$(talk g1 10.90.2.2 8080)"
expect_eq "guest reaches the metadata endpoint" metadata-a \
    "$(in_ns g1 curl -s -m 3 http://169.254.169.254/)"

# --- isolation ------------------------------------------------------------
expect_eq "control: the host service answers the LAN" host-service \
    "$(talk lan 10.90.1.1 7000)"
expect_eq "guest cannot reach a host service on its host_ip" "" \
    "$(talk g1 "$HA" 7000)"
expect_eq "guest cannot reach a host service on the LAN address" "" \
    "$(talk g1 10.90.1.1 7000)"
expect_eq "guest cannot reach the metadata server directly" "" \
    "$(talk g1 "$HA" 80)"
expect_eq "guest cannot reach another guest" "" "$(talk g1 "$GB" 22)"
expect_eq "guest cannot reach another guest through its host port" "" \
    "$(talk g1 10.90.1.1 2241)"
expect_eq "guest cannot reach another guest's TAP address" "" \
    "$(talk g1 "$HB" 7000)"
in_ns host socat -u UDP-RECV:9999 OPEN:"$T/udp",creat,append &
on_exit "kill $!"
sleep 0.3
echo from-guest | in_ns g1 socat -u - UDP-SENDTO:"$HA":9999
echo from-guest | in_ns g1 socat -u - UDP-SENDTO:10.90.1.1:9999
echo from-lan | in_ns lan socat -u - UDP-SENDTO:10.90.1.1:9999
sleep 0.5
expect_eq "guest UDP to host services dropped (LAN control passes)" \
    from-lan "$(cat "$T/udp" 2>/dev/null)"
if command -v ping >/dev/null; then
	check_fails "guest cannot ping the host" \
	    in_ns g1 ping -c 1 -W 1 "$HA"
else
	skip "guest cannot ping the host" "no ping (iputils-ping)"
fi
in_ns g1 ip addr add 10.77.0.9/32 dev eth0
expect_eq "spoofed source from the guest is dropped" "" \
    "$(talk g1 10.90.2.2 8080 10.77.0.9)"
in_ns g1 ip addr add "$GB/32" dev eth0
expect_eq "another guest's address as source is dropped" "" \
    "$(talk g1 10.90.2.2 8080 "$GB")"
# No reply cannot tell a drop from a reply with no route back, so count
# what arrives in inet: a spoofed datagram that got through would be
# forwarded (and the one from a guest address masqueraded) like any other.
in_ns inet socat -u UDP-RECV:9998 OPEN:"$T/spoof",creat,append &
on_exit "kill $!"
sleep 0.3
spoof_send() {	# payload source
	echo "$1" | in_ns g1 socat -u - UDP-SENDTO:10.90.2.2:9998,bind="$2"
}
spoof_send genuine "$GA"
spoof_send spoof-other 10.77.0.9
spoof_send spoof-guest "$GB"
sleep 0.5
expect_eq "spoofed sources never reach inet (the guest's own does)" \
    genuine "$(cat "$T/spoof" 2>/dev/null)"
# rp_filter on the TAP drops these too; switch it off (the larger of
# all and the TAP's counts) so that the nftables rule alone is tested.
rpf_all=$(in_ns host cat /proc/sys/net/ipv4/conf/all/rp_filter)
in_ns host sh -c "echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter; \
    echo 0 >/proc/sys/net/ipv4/conf/$TAPA/rp_filter"
spoof_send spoof-other-norpf 10.77.0.9
spoof_send spoof-guest-norpf "$GB"
sleep 0.5
in_ns host sh -c "echo $rpf_all >/proc/sys/net/ipv4/conf/all/rp_filter; \
    echo 1 >/proc/sys/net/ipv4/conf/$TAPA/rp_filter"
expect_eq "spoofed sources dropped by nftables without rp_filter" \
    genuine "$(cat "$T/spoof" 2>/dev/null)"

# --- DNS to the host address, only with allow_dns ------------------------
listen host "$HA" 53 host-dns
sleep 0.3
expect_eq "allow_dns = no: guest cannot reach host_ip:53" "" \
    "$(talk g1 "$HA" 53)"
conf_set network allow_dns yes
check "net rebuild with allow_dns" pc net rebuild
expect_eq "allow_dns = yes: guest reaches its host_ip:53" host-dns \
    "$(talk g1 "$HA" 53)"
expect_eq "allow_dns = yes: not another TAP's address" "" \
    "$(talk g1 "$HB" 53)"
expect_eq "allow_dns = yes: other ports still closed" "" \
    "$(talk g1 "$HA" 7000)"

# --- egress deny ----------------------------------------------------------
registry proja:2240:allow projb:2241:deny projc:0:allow projd:0:allow \
    projf:0:allow
check "net up projb again applies egress deny" pc net up projb
expect_eq "egress deny: guest-b cannot reach the internet" "" \
    "$(talk g2 10.90.2.2 8080)"
expect_eq "egress deny: host port still reaches guest-b" guest-b \
    "$(talk lan 10.90.1.1 2241)"
expect_eq "egress allow still works for guest-a" from-10.90.2.1 \
    "$(talk g1 10.90.2.2 8080)"
expect_eq "egress set holds only tap of proja" "\"$TAPA\"" "$(elems egress)"

# --- refusals -------------------------------------------------------------
in_ns host ip tuntap add dev tap-projf mode tap
out=$(pc net up projf 2>&1)
check_fails "an interface prison did not create is refused" \
    pc net up projf
expect_match "the refusal names the interface" "tap-projf.*not created" \
    "$out"
check "the foreign interface is left alone" \
    in_ns host ip link show tap-projf
check_fails "a project not in the registry is refused" pc net up nosuch
# A crash between making a TAP persistent and labelling it (as an older
# prison did them) leaves an unlabelled TAP under the name the project
# claims while its record says up: that one is taken over.
check "net up projc" pc net up projc
TAPC=$(field projc tap)
half_made() {
	in_ns host ip link del "$TAPC"
	in_ns host ip tuntap add dev "$TAPC" mode tap user nobody
}
half_made
check "net up adopts an unlabelled TAP claimed by the project" \
    pc net up projc
expect_match "the adopted TAP gets prison's alias" "alias prison:projc" \
    "$(in_ns host ip -d link show "$TAPC")"
half_made
check "net reconcile adopts an unlabelled TAP claimed by the project" \
    pc net reconcile
expect_match "reconcile labels the adopted TAP" "alias prison:projc" \
    "$(in_ns host ip -d link show "$TAPC")"
check "net down projc" pc net down projc
in_ns host ip tuntap add dev "$TAPC" mode tap
check_fails "recorded down: an unlabelled TAP of its name is refused" \
    pc net up projc
in_ns host ip link del "$TAPC"
cp "$T/prison.conf" "$T/gw.conf"
printf '\n[gateway]\nlisten = 0.0.0.0:2241\n' >>"$T/gw.conf"
out=$(PRISON_CONFIG=$T/gw.conf pc net up projb 2>&1)
expect_match "the gateway's own port is refused as ssh_port" \
    "2241 is the gateway's own port" "$out"
# A port a host process listens on (host-service on 7000, and one on
# IPv6 only): the DNAT would take it over.
in_ns host socat TCP6-LISTEN:7001,ipv6only=1,reuseaddr,fork \
    SYSTEM:'echo v6' >/dev/null 2>&1 &
on_exit "kill $!"
wait_until 30 in_ns host sh -c 'grep -qi ":1B59 .* 0A " /proc/net/tcp6'
registry proja:2240:allow projb:2241:deny projc:7000:allow projd:0:allow \
    projf:0:allow projg:7001:allow
out=$(pc net up projc 2>&1)
check_fails "a port a host process listens on is refused as ssh_port" \
    pc net up projc
expect_match "the refusal names the port and why" \
    "ssh_port 7000: a host process listens on TCP port 7000" "$out"
check_fails "an IPv6 listener's port is refused as ssh_port" \
    pc net up projg
expect_eq "the host service keeps its port" host-service \
    "$(talk lan 10.90.1.1 7000)"
registry proja:2240:allow projb:2241:deny projc:0:allow projd:0:allow \
    projf:0:allow
out=$(pc project set projc --ssh-port 7000 2>&1)
check_fails "project set refuses a port a host process listens on" \
    pc project set projc --ssh-port 7000
expect_match "project set says why" \
    "ssh-port 7000: a host process listens on that TCP port" "$out"
check_fails "project add refuses it too" \
    pc project add projz --ssh-port 7001
cp "$T/prison.conf" "$T/bad.conf"
printf '\n[provisioner]\nvmm_user = no-such-user-x\n' >>"$T/bad.conf"
out=$(PRISON_CONFIG=$T/bad.conf pc net up projc 2>&1)
expect_match "missing VMM user is a clear error" \
    'VMM user "no-such-user-x" does not exist' "$out"

# --- up/down/up -----------------------------------------------------------
expect_match "conntrack has entries of guest-a before down" . \
    "$(in_ns host conntrack -L 2>/dev/null | grep -F "$GA")"
check "net down proja" pc net down proja
check_fails "TAP gone after down" in_ns host ip link show "$TAPA"
t=$(table)
expect_eq "no element of proja left in the table" "" \
    "$(printf '%s' "$t" | grep -E "$TAPA\"|$GA |$HA |2240")"
expect_eq "no conntrack entry of guest-a after down" "" \
    "$(in_ns host conntrack -L 2>/dev/null | grep -F "$GA")"
expect_eq "show says down" False "$(field proja up)"
check "net up proja again" pc net up proja
expect_eq "up/down/up keeps the guest address" "$GA" \
    "$(field proja guest_ip)"
expect_eq "up/down/up keeps the TAP name" "$TAPA" "$(field proja tap)"
check "net up twice is idempotent" pc net up proja
expect_eq "no duplicate: one proja element in taps" 1 \
    "$(elems taps | grep -c "\"$TAPA\"")"

# --- upstream projects ----------------------------------------------------
# Relayed elsewhere, no VM, so no network: prisonctl and the daemon share
# that rule (net_projects_of).
registry proja:2240:allow projb:2241:deny projc:0:allow projd:0:allow \
    projf:0:allow projh:0:allow
check "net up projh" pc net up projh
TAPH=$(field projh tap)
registry proja:2240:allow projb:2241:deny projc:0:allow projd:0:allow \
    projf:0:allow projh:0:allow:git.example.org:22
out=$(pc net up projh 2>&1)
check_fails "net up of an upstream project is refused" pc net up projh
expect_match "the refusal says why" "projh uses an upstream.*no network" \
    "$out"
check "net reconcile with an upstream project" pc net reconcile
check_fails "reconcile releases an upstream project's allocation" \
    pc net show projh
check_fails "reconcile removes an upstream project's TAP" \
    in_ns host ip link show "$TAPH"

# --- crash and reconcile --------------------------------------------------
# The relay left with the deleted TAP; attach guest-a again.
guest g1 "$TAPA" "$GA" "$HA"
expect_eq "traffic flows again after up/down/up" guest-a \
    "$(talk lan 10.90.1.1 2240)"
check "net up projc" pc net up projc
check "net up projd" pc net up projd
TAPD=$(field projd tap)
# Lose kernel state of projc, leave a stray TAP and stray elements,
# drop projd from the registry, and kill -9 one prisonctl mid-way.
in_ns host ip link del "$TAPC"
in_ns host nft delete element inet prison taps "{ \"$TAPC\" }"
in_ns host ip tuntap add dev tap-ghost mode tap
in_ns host ip link set tap-ghost alias prison:ghost
in_ns host nft add element inet prison taps '{ "tap-ghost" }'
in_ns host nft add element inet prison ports '{ 2999 : 172.31.9.9 . 22 }'
# Leftovers in the state directory: claims nobody holds, a temporary.
echo ghost >"$T/state/net/slots/3"
echo ghost >"$T/state/net/ports/2999"
echo junk >"$T/state/net/projects/proja.tmp.XXXXXX"
registry proja:2240:allow projb:2241:deny projc:0:allow projf:0:allow \
    proje:0:allow
in_ns host "$PRISONCTL" net up proje >/dev/null 2>&1 &
kpid=$!
sleep 0.0$((RANDOM % 9))
kill -9 $kpid 2>/dev/null
wait $kpid 2>/dev/null
check "net reconcile" pc net reconcile
check "recorded project regains its TAP" in_ns host ip link show "$TAPC"
expect_eq "recorded project regains its element" 1 \
    "$(elems taps | grep -c "\"$TAPC\"")"
check_fails "stray prison TAP removed" in_ns host ip link show tap-ghost
expect_eq "stray elements removed" "" "$(table | grep -E 'ghost|2999')"
expect_eq "orphan claims and temporaries removed from the state" "" \
    "$(ls "$T/state/net/slots/3" "$T/state/net/ports/2999" \
    "$T/state/net/projects/proja.tmp.XXXXXX" 2>/dev/null)"
check_fails "project gone from the registry: TAP removed" \
    in_ns host ip link show "$TAPD"
check_fails "project gone from the registry: allocation released" \
    pc net show projd
if [ "$(field proje up 2>/dev/null)" = True ]; then
	check "killed mid-way: recorded up, so completed" \
	    in_ns host ip link show "$(field proje tap)"
else
	check_fails "killed mid-way: not recorded, so nothing left" \
	    in_ns host ip link show tap-proje
fi
ntaps=$(elems taps | wc -l)
nup=0
for p in proja projb projc proje; do
	[ "$(field $p up 2>/dev/null)" = True ] && nup=$((nup + 1))
done
expect_eq "taps set holds exactly the up projects" "$nup" "$ntaps"
expect_eq "traffic to guest-a still flows after reconcile" guest-a \
    "$(talk lan 10.90.1.1 2240)"
check "a second reconcile is idempotent" pc net reconcile
expect_eq "rule count does not depend on projects" \
    "$(table | grep -cE 'accept|drop|dnat|masquerade|jump')" \
    "$(pc net down projc; table | grep -cE 'accept|drop|dnat|masquerade|jump')"

# --- the daemon: registry changes, kill -9 and restart -------------------
SOCK=$T/run/provisioner.sock
start_provisioner() {
	# ip netns exec execs the daemon: $! is the provisioner itself.
	ip netns exec "$NS_PREFIX-host" "$BUILD/prison-provisioner" -f \
	    >>"$T/provisioner.log" 2>&1 &
	PROV=$!
	# A killed provisioner leaves its socket file: wait for an answer.
	wait_until 100 pc vm list >/dev/null 2>&1
}
on_exit 'kill $PROV'
check "the provisioner starts" start_provisioner
expect_eq "control: guest-a reaches the internet" from-10.90.2.1 \
    "$(talk g1 10.90.2.2 8080)"
out=$(pc project set proja --egress deny 2>&1)
expect_eq "project set --egress deny: the provisioner applies it" "" "$out"
expect_eq "egress deny takes effect on the up project at once" "" \
    "$(talk g1 10.90.2.2 8080)"
expect_eq "the record says deny" deny "$(field proja egress)"
out=$(pc project set proja --ssh-port 2250 2>&1)
expect_eq "project set --ssh-port: the provisioner applies it" "" "$out"
expect_eq "the new port reaches guest-a at once" guest-a \
    "$(talk lan 10.90.1.1 2250)"
expect_eq "the old port no longer does" "" "$(talk lan 10.90.1.1 2240)"

# kill -9 the daemon with projects up, then leave the leftovers of a
# project the registry does not know: a labelled TAP, elements, a record
# and its claims.
check "net up projc" pc net up projc
ups=""
for p in proja projb projc proje; do
	[ "$(field $p up 2>/dev/null)" = True ] && ups="$ups $p"
done
ifindex() { in_ns host cat "/sys/class/net/$1/ifindex" 2>/dev/null; }
declare -A idx_before
for p in $ups; do idx_before[$p]=$(ifindex "$(field $p tap)"); done
rules_before=$(table | grep -cE 'accept|drop|dnat|masquerade|jump')
kill -9 "$PROV"
wait "$PROV" 2>/dev/null
in_ns host ip tuntap add dev tap-ghost2 mode tap
in_ns host ip link set tap-ghost2 alias prison:ghost2
in_ns host nft add element inet prison taps '{ "tap-ghost2" }'
in_ns host nft add element inet prison ports '{ 2998 : 172.31.250.2 . 22 }'
echo "16000 tap-ghost2 up 2998 allow" >"$T/state/net/projects/ghost2"
echo ghost2 >"$T/state/net/slots/16000"
echo ghost2 >"$T/state/net/taps/tap-ghost2"
echo ghost2 >"$T/state/net/ports/2998"
check "the provisioner restarts after kill -9" start_provisioner
for p in $ups; do
	tap=$(field $p tap)
	expect_eq "restart: $p keeps its TAP (same interface)" \
	    "${idx_before[$p]}" "$(ifindex "$tap")"
	expect_eq "restart: $p has one element in taps" 1 \
	    "$(elems taps | grep -c "\"$tap\"")"
	expect_eq "restart: $p has one element in guest_src" 1 \
	    "$(elems guest_src | grep -c "\"$tap\"")"
done
expect_eq "restart: the taps set holds exactly the up projects" \
    "$(echo $ups | wc -w)" "$(elems taps | wc -l)"
check_fails "restart: the unknown project's TAP is removed" \
    in_ns host ip link show tap-ghost2
expect_eq "restart: its elements are removed" "" \
    "$(table | grep -E 'ghost2|2998')"
expect_eq "restart: its record and claims are removed" "" \
    "$(ls "$T/state/net/projects/ghost2" "$T/state/net/slots/16000" \
    "$T/state/net/taps/tap-ghost2" "$T/state/net/ports/2998" 2>/dev/null)"
expect_eq "restart: one prison table, same rules" "1 $rules_before" \
    "$(in_ns host nft list tables | grep -c 'inet prison$') \
$(table | grep -cE 'accept|drop|dnat|masquerade|jump')"
expect_eq "restart: guest-a still reached through its port" guest-a \
    "$(talk lan 10.90.1.1 2250)"
expect_eq "restart: guest-a still denied egress" "" \
    "$(talk g1 10.90.2.2 8080)"
kill "$PROV"
check "the provisioner exits on TERM" wait_until 100 gone "$PROV"
pc net down projc

# --- a tiny pool: long names, hash collisions, exhaustion ---------------
# Its own host namespace, state and registry; 10.200.0.0/28 holds 4 /30s.
ns_add h2
mkdir -p "$T/s2"
cp "$T/prison.conf" "$T/p2.conf"
printf '\n[paths]\nstate_dir = %s\n[network]\npool = 10.200.0.0/28\n' \
    "$T/s2" >>"$T/p2.conf"
printf 'lan_interface = eth-none\n' >>"$T/p2.conf"
pc2() { PRISON_CONFIG=$T/p2.conf in_ns h2 "$PRISONCTL" "$@"; }
# FNV-1a, as the allocator: find two long names in the same slot.
read -r N1 N2 N3 N4 N5 <<<"$(python3 - <<'EOF2'
def fnv(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h
names = ["longproject%02d" % i for i in range(40)]
a = names[0]
b = next(n for n in names[1:] if fnv(n) % 4 == fnv(a) % 4)
rest = [n for n in names if n not in (a, b)][:3]
print(a, b, *rest)
EOF2
)"
SLOT=$(python3 -c '
import sys
h = 2166136261
for c in sys.argv[1].encode(): h = ((h ^ c) * 16777619) & 0xffffffff
print("%d %08x" % (h % 4, h))' "$N2")
python3 - "$T/s2/registry.json" "$N1" "$N2" "$N3" "$N4" "$N5" <<'EOF2'
import json, sys
json.dump({"version": 1, "users": [], "projects": [
    {"name": n, "members": [], "ssh_port": 0, "vcpus": 0, "mem_mib": 0,
     "image": None, "repo": None, "ref": None, "dev_user": "dev",
     "egress": "allow", "upstream": None} for n in sys.argv[2:]]},
    open(sys.argv[1], "w"))
EOF2
f2() {
	pc2 net show "$1" --json | python3 -c \
	    'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
check "long name $N1 up" pc2 net up "$N1"
check "colliding name $N2 up" pc2 net up "$N2"
expect_eq "long name gets tp-HASH" "tp-${SLOT#* }" "$(f2 "$N2" tap)"
check "colliding names get different subnets" \
    test "$(f2 "$N1" guest_ip)" != "$(f2 "$N2" guest_ip)"
idx2=$(( ($(f2 "$N2" host_ip | cut -d. -f4) - 1) / 4 ))
check "the colliding name was probed past its hash slot" \
    test "$idx2" != "${SLOT%% *}"
check "third project up" pc2 net up "$N3"
check "fourth project up" pc2 net up "$N4"
out=$(pc2 net up "$N5" 2>&1)
check_fails "fifth project does not fit" pc2 net up "$N5"
expect_match "exhaustion is a clear error" \
    "pool 10.200.0.0/28 is exhausted" "$out"
expect_eq "four distinct guest addresses" 4 \
    "$(for n in "$N1" "$N2" "$N3" "$N4"; do f2 "$n" guest_ip; done |
    sort -u | wc -l)"
g2=$(f2 "$N2" guest_ip)
pc2 net down "$N2"
check "probed project up again" pc2 net up "$N2"
expect_eq "probed project keeps its address" "$g2" "$(f2 "$N2" guest_ip)"
check "release frees a subnet" pc2 net release "$N1"
check "then the fifth project fits" pc2 net up "$N5"

# --- everything down ------------------------------------------------------
for p in proja projb projc proje; do pc net down $p; done
expect_eq "no prison TAP left" "" \
    "$(in_ns host ip -d link show | grep 'alias prison:')"
expect_eq "no element left in any set or map" "" \
    "$(table | grep elements)"
expect_eq "the bystander table is untouched" "$before_bystander" \
    "$(in_ns host nft -s list table inet bystander)"
