#!/usr/bin/env bash
# prison-gateway with a VM project: it asks the provisioner to "ensure"
# the project with hold=true, shows the cold-start line, keeps the
# connection for the session's lifetime and trusts only the host key the
# provisioner reported.  The provisioner is a protocol double
# (tests/helpers/gw_fake_provisioner.py) pointing at a real sshd, so the
# gateway side runs for real without booting a VM.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh ssh-keygen nc python3
[ -x "$GATEWAY" ] || { echo "needs $GATEWAY (make)"; exit 77; }

setup_tmp
gw_env_setup >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
"$PRISONCTL" project add projv --dev-user "$DEVUSER" --member alice \
    >/dev/null || exit 1
gw_start || { cat "$T/gw.log"; exit 1; }
SOCK=$T/run/provisioner.sock

fake() {	# MODE
	[ -n "${FAKEPID:-}" ] && kill "$FAKEPID" 2>/dev/null &&
	    wait "$FAKEPID" 2>/dev/null
	rm -f "$SOCK"
	: >"$T/events"
	python3 "$TOP/tests/helpers/gw_fake_provisioner.py" "$SOCK" \
	    "$T/events" "$1" 127.0.0.1 "$UPORT" \
	    "$(cat "$T/upstream/host_key.pub")" "$DEVUSER" &
	FAKEPID=$!
	on_exit "kill $FAKEPID"
	for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
}
vssh() {
	timeout 60 ssh -o LogLevel=INFO "${SSHOPTS[@]}" -i "$T/alice" \
	    projv@127.0.0.1 "$@"
}

fake ok
out=$(vssh 'echo in-vm; sleep 2' 2>"$T/err") ; rc=$?
expect_eq "VM project: session through the provisioner's address" \
    "0 in-vm" "$rc $out"
expect_match "VM project: cold start line shown" \
    '^prison: starting projv\.\.\.' "$(cat "$T/err")"
expect_match "ensure asked with hold" \
    'request ensure project=projv hold=True' "$(cat "$T/events")"
expect_eq "hold: connection kept during, released after the session" \
    "held released" "$(grep -E '^(held|released)$' "$T/events" | xargs)"

vssh 'sleep 3' &
vpid=$!
sleep 2
expect_eq "hold: open while the session runs" "held" \
    "$(grep -E '^(held|released)$' "$T/events" | tail -1)"
wait $vpid

fake badkey
out=$(vssh true 2>&1); rc=$?
expect_eq "wrong guest host key: refused" 255 "$rc"
expect_match "wrong guest host key: clear message" \
    "did not present the project's host key" "$out"

fake fail
out=$(vssh true 2>&1); rc=$?
expect_eq "provisioner failure: refused" 255 "$rc"
expect_match "provisioner failure: its reason shown" 'disk full' "$out"

kill "$FAKEPID"; sleep 0.2; rm -f "$SOCK"
out=$(vssh true 2>&1); rc=$?
expect_eq "provisioner down: refused" 255 "$rc"
expect_match "provisioner down: clear message" 'cannot reach the provisioner' \
    "$out"

# The VM stops during a session: the provisioner says so on the held
# connection and the gateway ends the session at once, saying why.
fake stop
out=$(vssh 'echo started; sleep 20; echo finished' 2>"$T/err"); rc=$?
expect_eq "VM stopped: the session ends before its command" "255 started" \
    "$rc $out"
expect_match "VM stopped: the developer is told" \
    "the project's VM is stopping; session closed" "$(cat "$T/err")"
expect_match "VM stopped: logged" "end=vm-stopped" "$(cat "$T/gw.log")"
# A provisioner that goes away (a restart) leaves the session alone.
fake vanish
out=$(vssh 'echo started; sleep 4; echo finished' 2>/dev/null); rc=$?
expect_eq "provisioner gone: the session runs to its end" \
    "0 started finished" "$rc $(echo $out)"

# prisonctl doctor: a provisioner socket file nobody answers on is not
# a running provisioner; one that answers is.
kill -9 "$FAKEPID"; wait "$FAKEPID" 2>/dev/null
conf_set gateway listen "127.0.0.1:$GPORT"
out=$("$PRISONCTL" doctor 2>&1)
expect_match "doctor: a stale socket is no provisioner" \
    "warn +provisioner is not running \($SOCK: .*\); start it" "$out"
fake ok
out=$("$PRISONCTL" doctor 2>&1)
expect_match "doctor: a live provisioner answers" \
    "ok +provisioner answers on $SOCK \(0 VMs\)" "$out"
expect_match "doctor: the gateway's own port is recognised" \
    "ok +gateway port $GPORT: prison-gateway listens \(pid $GWPID\)" "$out"
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$T/other.port" &
OTHER=$!
on_exit "kill $OTHER"
wait_until 50 test -s "$T/other.port"
OPORT=$(cat "$T/other.port")
conf_set gateway listen "127.0.0.1:$OPORT"
out=$("$PRISONCTL" doctor 2>&1)
expect_match "doctor: another program on the port is named" \
    "FAIL +gateway port $OPORT is taken by python3 \(pid $OTHER\)" "$out"

gw_no_crash
