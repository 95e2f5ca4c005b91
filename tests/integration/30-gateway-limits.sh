#!/usr/bin/env bash
# prison-gateway under pressure: 50 concurrent sessions, a client that
# stops reading (bounded memory, no busy loop), the login grace time,
# max_auth_tries, failures per source and the cap on unauthenticated
# connections.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh ssh-keygen nc python3
[ -x "$GATEWAY" ] || { echo "needs $GATEWAY (make)"; exit 77; }

setup_tmp
gw_env_setup >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
conf_set gateway login_grace_time 3
conf_set gateway max_auth_tries 3
conf_set gateway max_failures_per_source 200
gw_start || { cat "$T/gw.log"; exit 1; }

# --- 50 concurrent sessions -----------------------------------------
pids=()
for i in $(seq 50); do
	gssh alice "sleep 2; echo \$((6 * $i))" >"$T/c.$i" 2>&1 &
	pids+=($!)
done
fails=0
for i in $(seq 50); do
	wait "${pids[$((i - 1))]}" || fails=$((fails + 1))
	[ "$(cat "$T/c.$i")" = "$((6 * i))" ] || fails=$((fails + 1))
done
expect_eq "50 concurrent sessions all succeed" 0 "$fails"

# --- a client that stops reading ------------------------------------
child_of() {	# the session child serving a developer's command
	pgrep -P "$GWPID" | head -1
}
# ssh itself, not a shell around it, must be the process we stop.
ssh "${SSHOPTS[@]}" -i "$T/alice" proja@127.0.0.1 'cat /dev/zero' >/dev/null &
cpid=$!
sleep 2
kill -STOP "$cpid"
sleep 3
gw_child=$(child_of)
check "stopped client: session child found" [ -n "$gw_child" ]
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$gw_child/status")
t1=$(awk '{print $14 + $15}' "/proc/$gw_child/stat")
sleep 5
rss2=$(awk '/VmRSS/ {print $2}' "/proc/$gw_child/status")
t2=$(awk '{print $14 + $15}' "/proc/$gw_child/stat")
hz=$(getconf CLK_TCK)
cpu_pct=$(( (t2 - t1) * 100 / hz / 5 ))
echo "# stopped client: rss ${rss1} -> ${rss2} kB, cpu ${cpu_pct}%"
check "stopped client: gateway memory bounded (${rss2} kB < 32 MiB)" \
    [ "$rss2" -lt 32768 ]
check "stopped client: memory does not grow (${rss1} -> ${rss2} kB)" \
    [ "$rss2" -le $((rss1 + 1024)) ]
check "stopped client: no busy loop (${cpu_pct}% CPU)" [ "$cpu_pct" -le 5 ]
kill -CONT "$cpid"; kill "$cpid"; wait "$cpid" 2>/dev/null
sleep 1

# A client that reads, but slowly: each window it opens lets data in,
# and none of that may pile up in the gateway (libssh re-opens a
# channel's window whenever it is read, however much it still holds).
wait_until 100 [ -z "$(pgrep -P "$GWPID")" ]
ssh "${SSHOPTS[@]}" -i "$T/alice" proja@127.0.0.1 'head -c 40M /dev/zero' |
    python3 -c '
import sys, time
n = 0
while True:
    b = sys.stdin.buffer.read(65536)
    if not b:
        break
    n += len(b)
    time.sleep(0.02)
print(n)
' >"$T/slow.out" &
spid=$!
sleep 2
gw_child=$(child_of)
check "slow client: session child found" [ -n "$gw_child" ]
rss_max=0
for i in $(seq 8); do
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$gw_child/status" 2>/dev/null)
	[ "${rss:-0}" -gt "$rss_max" ] && rss_max=$rss
	sleep 1
done
wait "$spid"
echo "# slow client: largest rss ${rss_max} kB"
check "slow client: gateway memory bounded (${rss_max} kB < 32 MiB)" \
    [ "$rss_max" -lt 32768 ]
expect_eq "slow client: every byte arrived" $((40 * 1024 * 1024)) \
    "$(cat "$T/slow.out")"

# The same with a suspended sftp download (rate-limited so that it is
# still running when stopped).
head -c 20M /dev/urandom >"$T/big"
chmod 644 "$T/big"
sftp -F /dev/null -o UserKnownHostsFile="$T/client_known_hosts" \
    -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR -P "$GPORT" \
    -l 16000 -i "$T/alice" "proja@127.0.0.1:$T/big" "$T/big.copy" \
    >/dev/null 2>&1 &
spid=$!
sleep 2
pkill -STOP -P "$spid" ssh; kill -STOP "$spid"
sleep 3
gw_child=$(child_of)
t1=$(awk '{print $14 + $15}' "/proc/$gw_child/stat")
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$gw_child/status")
sleep 5
t2=$(awk '{print $14 + $15}' "/proc/$gw_child/stat")
rss2=$(awk '/VmRSS/ {print $2}' "/proc/$gw_child/status")
cpu_pct=$(( (t2 - t1) * 100 / hz / 5 ))
echo "# stopped sftp: rss ${rss1} -> ${rss2} kB, cpu ${cpu_pct}%"
check "stopped sftp: no busy loop (${cpu_pct}% CPU)" [ "$cpu_pct" -le 5 ]
check "stopped sftp: memory bounded (${rss2} kB)" [ "$rss2" -lt 32768 ]
pkill -CONT -P "$spid" ssh; kill -CONT "$spid"
wait "$spid"
expect_eq "stopped sftp: the copy completes intact after SIGCONT" \
    "$(sha256sum <"$T/big")" "$(sha256sum <"$T/big.copy" 2>/dev/null)"
rm -f "$T/big" "$T/big.copy"

# --- login grace time -----------------------------------------------
start=$(date +%s)
python3 - "$GPORT" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"SSH-2.0-slowpoke\r\n")
s.settimeout(30)
try:
    while s.recv(4096):
        pass
except Exception:
    pass
EOF
ppid=$!
wait $ppid
took=$(( $(date +%s) - start ))
check "login grace time: idle connection dropped (${took}s)" \
    [ "$took" -ge 2 -a "$took" -le 10 ]
# The listener logs it when it reaps the child, just after the client
# saw the connection close.
for _ in $(seq 30); do
	grep -q 'verdict=timeout .*reason=login-grace-time' "$T/gw.log" && break
	sleep 0.1
done
expect_match "login grace time: logged" 'verdict=timeout .*reason=login-grace-time' \
    "$(cat "$T/gw.log")"

# --- max_auth_tries -------------------------------------------------
for k in k1 k2 k3 k4 k5; do
	ssh-keygen -q -t ed25519 -N '' -f "$T/$k" </dev/null
done
out=$(timeout 30 ssh -F /dev/null -o UserKnownHostsFile="$T/client_known_hosts" \
    -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR \
    -i "$T/k1" -i "$T/k2" -i "$T/k3" -i "$T/k4" -i "$T/k5" \
    -p "$GPORT" proja@127.0.0.1 true 2>&1)
n=$(grep -c 'fp=- reason=unknown-key' "$T/gw.log")
check "max_auth_tries: at most 3 keys tried, then cut off ($n)" \
    [ "$n" -le 4 ]

# --- failures per source --------------------------------------------
gw_stop
conf_set gateway max_failures_per_source 3
gw_start || { cat "$T/gw.log"; exit 1; }
# A developer whose agent offers another key first is not counted: the
# connection got in.
n=0
for i in 1 2 3 4; do
	timeout 60 ssh "${SSHOPTS[@]}" -i "$T/stranger" -i "$T/alice" \
	    proja@127.0.0.1 true 2>/dev/null && n=$((n + 1))
done
expect_eq "failures per source: a refused key before the right one is not" \
    4 "$n"
for i in 1 2 3; do gssh stranger true 2>/dev/null; done
# Counted as each of those connections ends; the next is checked then.
wait_until 100 [ -z "$(pgrep -P "$GWPID")" ]
gssh alice true 2>/dev/null; rc=$?
expect_eq "failures per source: further logins from there refused" 255 "$rc"
expect_match "failures per source: logged as block" \
    'verdict=block .*reason=too-many-failures' "$(cat "$T/gw.log")"

# --- unauthenticated connections ------------------------------------
gw_stop
conf_set gateway max_failures_per_source 1000
conf_set gateway max_unauthenticated 2
conf_set gateway login_grace_time 20
gw_start || { cat "$T/gw.log"; exit 1; }
sleep 1		# let gw_start's own probe connection leave first
exec 7<>/dev/tcp/127.0.0.1/"$GPORT"
exec 8<>/dev/tcp/127.0.0.1/"$GPORT"
sleep 1
gssh alice true 2>/dev/null; rc=$?
expect_eq "max_unauthenticated: a third pre-auth connection is dropped" \
    255 "$rc"
exec 7>&- 8>&-
sleep 1
gssh alice true; rc=$?
expect_eq "max_unauthenticated: room again once they leave" 0 "$rc"

gw_no_crash
