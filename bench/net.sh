#!/usr/bin/env bash
# Network layer at scale, inside a private network namespace:
#   - net up of the 1st vs the 1,000th project (goal: ratio <= 1.2)
#   - net down of all 1,000
#   - a full rebuild of the nftables table holding 1,000 projects
#     (goal: < 100 ms), and a full reconcile (TAPs checked + rebuild)
# Times are per call of the net.h function (wall clock and process CPU);
# each call takes the lock, reads and writes the state file (fsync) and
# talks to the kernel, as the provisioner does.
#
#   bench/net.sh [N]        N projects, default 1000
#
# The state directory is made under $TMPDIR (default /tmp); point TMPDIR
# at the filesystem that will hold state_dir to measure that one.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
PRISONCTL=${PRISONCTL:-$TOP/build/prisonctl}
NETBENCH=$TOP/build/helpers/netbench
N=${1:-1000}
[ "$(id -u)" = 0 ] || { echo "bench/net.sh: needs root"; exit 1; }
[ -x "$PRISONCTL" ] || { echo "bench/net.sh: build first (make)"; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/prison-bench.XXXXXX")
NS=pbench$$
cleanup() { ip netns del "$NS" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add eth-lan type veth peer eth-peer
ip -n "$NS" link set eth-peer up
ip -n "$NS" addr add 10.99.0.1/24 dev eth-lan
ip -n "$NS" link set eth-lan up
ip -n "$NS" route add default via 10.99.0.254

mkdir -p "$T/state"
cat >"$T/prison.conf" <<EOC
[paths]
state_dir = $T/state
run_dir = $T/state
config_dir = $T/state
[provisioner]
vmm_user = nobody
EOC
export PRISON_CONFIG=$T/prison.conf
python3 - "$T/state/registry.json" "$N" <<'EOF2'
import json, sys
n = int(sys.argv[2])
json.dump({"version": 1, "users": [], "projects": [
    {"name": "p%04d" % i, "members": [], "ssh_port": 20000 + i,
     "vcpus": 0, "mem_mib": 0, "image": None, "repo": None, "ref": None,
     "dev_user": "dev", "egress": "allow" if i % 2 else "deny",
     "upstream": None} for i in range(1, n + 1)]},
    open(sys.argv[1], "w"))
EOF2

# The figures: build/helpers/netbench calls net.h in one process (see its
# comment for why); one prisonctl run is timed too, for the whole command.
[ -x "$NETBENCH" ] || { echo "bench/net.sh: needs $NETBENCH (make check)"; exit 1; }
ip netns exec "$NS" "$NETBENCH" "$N" >"$T/out" || exit 1
left=$(ip -n "$NS" -o link show | grep -c 'tap-p')
ip netns exec "$NS" "$PRISONCTL" net up p0001 >/dev/null || exit 1
a=$(date +%s%N)
ip netns exec "$NS" "$PRISONCTL" net rebuild || exit 1
b=$(date +%s%N)

awk -v n="$N" -v pc_rebuild="$(( (b - a) / 1000 ))" -v left="$left" '
# Median of a[1..k]; spikes from other processes on a shared machine
# move a mean of few samples far more than they move a median.
function med(a, k,    i, j, t, b) {
	for (i = 1; i <= k; i++) b[i] = a[i]
	for (i = 2; i <= k; i++)
		for (j = i; j > 1 && b[j - 1] > b[j]; j--) {
			t = b[j]; b[j] = b[j - 1]; b[j - 1] = t
		}
	return b[int((k + 1) / 2)]
}
function show(what, w, c) { printf "%-34s %9.2f ms wall %8.2f ms cpu\n", what, w, c }
$1 == "up1" { uw1 = $2; uc1 = $3 }
$1 == "up" n { uwn = $2; ucn = $3 }
$1 ~ /^up/ { i = substr($1, 3) + 0
	if (i <= 10) { fw += $2; fc += $3 }
	if (i > n - 10) { lw += $2; lc += $3 }
	if (i <= 25) { fw25[i] = $2; fc25[i] = $3 }
	if (i > n - 25) { lw25[i - n + 25] = $2; lc25[i - n + 25] = $3 } }
$1 ~ /^down/ { dw += $2; dc += $3 }
$1 == "rebuild" { r++; rw[r] = $2; rc[r] = $3 }
$1 == "reconcile" { recw = $2; recc = $3 }
END {
	show("net up, 1st project", uw1, uc1)
	show("net up, " n "th project", uwn, ucn)
	show("net up, mean of the first 10", fw / 10, fc / 10)
	show("net up, mean of the last 10", lw / 10, lc / 10)
	show("net up, median of the first 25", med(fw25, 25), med(fc25, 25))
	show("net up, median of the last 25", med(lw25, 25), med(lc25, 25))
	show("net down of all " n, dw, dc)
	show("net down, mean per project", dw / n, dc / n)
	show("net reconcile with " n " up", recw, recc)
	best = 1
	for (i = 1; i <= r; i++) {
		show("table rebuild with " n " (run " i ")", rw[i], rc[i])
		if (rw[i] < rw[best]) best = i
	}
	printf "%-34s %9.2f ms wall (whole command)\n",
	    "prisonctl net rebuild with 1 up", pc_rebuild / 1000
	printf "TAPs left after down of all: %d\n", left
	printf "ratio last/first, single run:  wall %.3f  cpu %.3f\n",
	    uwn / uw1, ucn / uc1
	printf "ratio last/first, 10 each:     wall %.3f  cpu %.3f\n",
	    lw / fw, lc / fc
	printf "ratio last/first, medians of 25: wall %.3f  cpu %.3f" \
	    "  (goal <= 1.2)\n", med(lw25, 25) / med(fw25, 25),
	    med(lc25, 25) / med(fc25, 25)
	printf "rebuild, best of %d:            %.2f ms wall  (goal < 100)\n",
	    r, rw[best]
}' "$T/out"
