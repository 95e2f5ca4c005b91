# Helpers for integration tests; source it.  Every test runs inside its
# own temporary directory with its own prison.conf, and every network
# namespace it makes carries a per-test prefix, so tests never touch the
# machine's own state and can run side by side.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$TOP/build
PRISONCTL=$BUILD/prisonctl
NS_PREFIX="pt$$"
_cleanups=()
_tap_n=0
_tap_failed=0

ok()   { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=1; echo "not ok $_tap_n - $*"; }
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
# check DESCRIPTION COMMAND...: one result from a command's exit status.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# check_fails DESCRIPTION COMMAND...: passes when the command fails.
check_fails() { local d=$1; shift; if "$@"; then not_ok "$d"; else ok "$d"; fi; }
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else
		not_ok "$1"; echo "#   expected: $2"; echo "#   actual:   $3"; fi
}
# expect_match DESCRIPTION REGEX TEXT
expect_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then ok "$1"; else
		not_ok "$1"; echo "#   wanted /$2/ in: $3"; fi
}

# Run on exit, last registered first.
# wait_until TENTHS CMD...: run CMD every 0.1 s until it succeeds, at
# most TENTHS times; fails when it never did.
wait_until() {
	local n=$1 i; shift
	for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
# gone PID: the process has exited.
gone() { ! kill -0 "$1" 2>/dev/null; }
# notify_listen SOCKET FILE: take sd_notify datagrams on SOCKET, which any
# user may send to, and append each to FILE, as systemd would for a
# Type=notify unit.
notify_listen() {
	python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
while True:
    with open(sys.argv[2], "ab") as f:
        f.write(s.recv(4096) + b"\n")' "$1" "$2" &
	on_exit "kill $!"
	wait_until 50 test -S "$1"
}
on_exit() { _cleanups=("$*" "${_cleanups[@]}"); }
_run_cleanups() {
	local c
	for c in "${_cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
}
trap '_rc=$?; _run_cleanups; [ $_tap_failed -eq 0 ] || _rc=1; exit $_rc' EXIT

# Make $T, a private directory with a prison.conf whose paths all point
# into it; PRISON_CONFIG is exported so every prison binary uses it.
setup_tmp() {
	T=$(mktemp -d /tmp/prison-test.XXXXXX)
	on_exit "rm -rf '$T'"
	mkdir -p "$T/state" "$T/run" "$T/etc"
	cat >"$T/prison.conf" <<EOC
[paths]
state_dir = $T/state
run_dir = $T/run
config_dir = $T/etc
libexec_dir = $BUILD
EOC
	export PRISON_CONFIG=$T/prison.conf
}

# Append "key = value" to a section of $T/prison.conf.
conf_set() {	# section key value
	printf '\n[%s]\n%s = %s\n' "$1" "$2" "$3" >>"$T/prison.conf"
}

need_root() {
	if [ "$(id -u)" != 0 ]; then echo "needs root"; exit 77; fi
}
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || { echo "needs $c"; exit 77; }
	done
}

# ns_add NAME: a network namespace "$NS_PREFIX-NAME", removed on exit.
ns_add() {
	ip netns add "$NS_PREFIX-$1" || return 1
	on_exit "ip netns pids '$NS_PREFIX-$1' | xargs -r kill -9; ip netns del '$NS_PREFIX-$1'"
	ip -n "$NS_PREFIX-$1" link set lo up
}
# in_ns NAME COMMAND...
in_ns() { local n=$1; shift; ip netns exec "$NS_PREFIX-$n" "$@"; }
# ns_lan NAME: namespace NAME gets a LAN interface lan0 (192.0.2.1/24,
# its veth peer left dangling inside) carrying the default route, which
# is where the provisioner takes its LAN interface from.
ns_lan() {
	in_ns "$1" ip link add lan0 type veth peer name lan0peer &&
	in_ns "$1" ip link set lan0peer up &&
	in_ns "$1" ip addr add 192.0.2.1/24 dev lan0 &&
	in_ns "$1" ip link set lan0 up &&
	in_ns "$1" ip route add default via 192.0.2.254 dev lan0
}

# sshd runs an AuthorizedKeysCommand only from a path whose every
# directory is root-owned and writable by nobody else; a checkout under
# /tmp is not.  Copies PROGRAM somewhere that is and sets SAFE_COPY to it.
sshd_safe_copy() {
	local d
	d=$(mktemp -d /run/prison-test-bin.XXXXXX) || return 1
	chmod 0755 "$d"
	on_exit "rm -rf '$d'"
	install -m 0755 "$1" "$d/" || return 1
	SAFE_COPY=$d/$(basename "$1")
}
