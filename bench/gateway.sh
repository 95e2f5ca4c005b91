#!/usr/bin/env bash
# bench/gateway.sh: what prison-gateway costs compared with a direct SSH
# login and with OpenSSH's ProxyJump through a jump host, all against
# the same sshd on loopback, in one run:
#   throughput   1 GiB through cat, each way (MiB/s)
#   latency      connect + `true`, median of N runs (ms)
#   memory       proportional set size of one relaying session (kB)
# Goals: gateway throughput >= 0.9 x direct and >= ProxyJump; warm
# connect <= 1.5 x direct.  Run as root: bench/gateway.sh [SIZE_MIB] [N]
set -u
. "$(dirname "$0")/../tests/lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh python3 nc
SIZE=${1:-1024}
RUNS=${2:-10}

setup_tmp
gw_env_setup >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
gw_start || { cat "$T/gw.log"; exit 1; }
ssh-keygen -q -t ed25519 -N '' -f "$T/direct" </dev/null
cat "$T/direct.pub" >>"$T/authorized_keys"
JPORT=$(free_port)
sshd_start jump "$JPORT" || exit 1

COMMON=(-F /dev/null -o UserKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=no -o BatchMode=yes -o LogLevel=ERROR
    -o IdentitiesOnly=yes)
via_direct() { ssh "${COMMON[@]}" -i "$T/direct" -p "$UPORT" \
    "$DEVUSER@127.0.0.1" "$@"; }
via_jump() { ssh "${COMMON[@]}" -i "$T/direct" -p "$UPORT" \
    -o "ProxyCommand=ssh ${COMMON[*]} -i $T/direct -p $JPORT -W %h:%p $DEVUSER@127.0.0.1" \
    "$DEVUSER@127.0.0.1" "$@"; }
via_gateway() { ssh "${COMMON[@]}" -i "$T/alice" -p "$GPORT" \
    proja@127.0.0.1 "$@"; }

now_ms() { date +%s%3N; }

# throughput PATH DIRECTION -> MiB/s
throughput() {
	local t0 t1
	t0=$(now_ms)
	if [ "$2" = down ]; then
		"via_$1" "head -c ${SIZE}M /dev/zero" | cat >/dev/null
	else
		head -c "${SIZE}M" /dev/zero | "via_$1" 'cat >/dev/null'
	fi
	t1=$(now_ms)
	echo $(( SIZE * 1000 / (t1 - t0 + 1) ))
}

# latency PATH -> median ms of RUNS connect + true
latency() {
	local i t0 xs=()
	"via_$1" true		# warm: caches, pinned keys, page cache
	for i in $(seq "$RUNS"); do
		t0=$(now_ms)
		"via_$1" true
		xs+=($(( $(now_ms) - t0 )))
	done
	printf '%s\n' "${xs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

ratio() { python3 -c "print('%.2f' % ($1 / max($2, 1)))"; }

echo "# prison-gateway benchmark: ${SIZE} MiB each way, ${RUNS} connects" \
    "per path, $(nproc) CPUs"
declare -A up down lat
for p in direct jump gateway; do
	down[$p]=$(throughput "$p" down)
	up[$p]=$(throughput "$p" up)
	lat[$p]=$(latency "$p")
	printf '%-8s download %6s MiB/s  upload %6s MiB/s  connect+true %5s ms\n' \
	    "$p" "${down[$p]}" "${up[$p]}" "${lat[$p]}"
done

# Memory: PSS of the gateway's session children while 10 sessions idle.
bg=()
for i in $(seq 10); do via_gateway 'sleep 20' & bg+=($!); done
sleep 4
pss=0 n=0
for c in $(pgrep -P "$GWPID"); do
	v=$(awk '/^Pss:/ {print $2}' "/proc/$c/smaps_rollup" 2>/dev/null)
	[ -n "$v" ] || continue
	pss=$((pss + v)); n=$((n + 1))
done
rss=$(for c in $(pgrep -P "$GWPID"); do
	awk '/VmRSS/ {print $2}' "/proc/$c/status"; done | sort -n | tail -1)
wait "${bg[@]}"

echo
echo "gateway/direct   download $(ratio "${down[gateway]}" "${down[direct]}")" \
    " upload $(ratio "${up[gateway]}" "${up[direct]}")" \
    " connect $(ratio "${lat[gateway]}" "${lat[direct]}")"
echo "gateway/jump     download $(ratio "${down[gateway]}" "${down[jump]}")" \
    " upload $(ratio "${up[gateway]}" "${up[jump]}")" \
    " connect $(ratio "${lat[gateway]}" "${lat[jump]}")"
echo "memory per idle session: PSS $(( n > 0 ? pss / n : 0 )) kB" \
    "(RSS ${rss:-?} kB) over $n sessions"
