#!/usr/bin/env bash
# prison-gateway against a real OpenSSH sshd upstream on loopback: exit
# codes with and without a pty, signals, stdin/stdout/stderr, 200 MiB
# each way, refusals that all look alike, the log grammar, registry
# changes without restart, persistent host keys, upstream key pinning.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh ssh-keygen nc python3 sha256sum
[ -x "$GATEWAY" ] || { echo "needs $GATEWAY (make)"; exit 77; }

setup_tmp
# Both legs re-key several times during the 200 MiB transfers below.
GW_SSHD_EXTRA="RekeyLimit 32M"
gw_env_setup >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
chmod o+x "$T"		# the gateway, unprivileged by now, notifies
notify_listen "$T/notify" "$T/notified"
NOTIFY_SOCKET=$T/notify gw_start || { cat "$T/gw.log"; exit 1; }
check "the gateway tells systemd it is ready once it listens" \
    wait_until 50 grep -qx READY=1 "$T/notified"

# Direct login to the same sshd, to compare with.
dssh() {
	timeout 60 ssh -F /dev/null -o UserKnownHostsFile=/dev/null \
	    -o StrictHostKeyChecking=no -o BatchMode=yes -o LogLevel=ERROR \
	    -i "$T/direct" -p "$UPORT" "$DEVUSER@127.0.0.1" "$@"
}
ssh-keygen -q -t ed25519 -N '' -f "$T/direct" </dev/null
cat "$T/direct.pub" >>"$T/authorized_keys"

# --- exit codes -----------------------------------------------------
out=$(gssh alice 'echo hello; whoami; exit 7'); rc=$?
expect_eq "exec: exit 7 gives 7" 7 "$rc"
expect_eq "exec: output and dev user" "hello $DEVUSER" "$(echo $out)"
gssh alice false; expect_eq "exec: false gives 1" 1 $?
gssh alice true; expect_eq "exec: true gives 0" 0 $?
gssh alice -tt 'exit 7' >/dev/null 2>&1
expect_eq "pty: exit 7 gives 7" 7 $?
gssh alice -tt false >/dev/null 2>&1
expect_eq "pty: false gives 1" 1 $?
out=$(gssh alice -tt 'tty' 2>/dev/null | tr -d '\r')
expect_match "pty: the remote command has a terminal" '^/dev/pts/' "$out"

# A signal death looks the same as on a direct connection.
dssh 'kill -KILL $$'; drc=$?
gssh alice 'kill -KILL $$'; grc=$?
expect_eq "signal: exit status like a direct login ($drc)" "$drc" "$grc"
check "signal: exit-signal relayed (not a plain exit)" [ "$grc" -ne 0 ] 
out=$(gssh alice -v 'kill -TERM $$' 2>&1)
expect_match "signal: client receives exit-signal" \
    'rtype exit-signal' "$out"

# --- streams --------------------------------------------------------
out=$(gssh alice 'echo out; echo err >&2' 2>"$T/err")
expect_eq "stdout relayed" out "$out"
expect_eq "stderr relayed apart" err "$(cat "$T/err")"
start=$(date +%s%N)
out=$(echo hi | gssh alice cat)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "stdin: echo hi | ssh cat" hi "$out"
check "stdin: EOF passed on promptly (${ms} ms)" [ "$ms" -lt 5000 ]
out=$(printf 'a\nb\n' | gssh alice 'cat; echo after-eof')
expect_eq "half-close: remote keeps writing after our EOF" \
    "a b after-eof" "$(echo $out)"

# 200 MiB each way.
head -c 200M /dev/urandom >"$T/big"
want=$(sha256sum <"$T/big" | cut -d' ' -f1)
got=$(GW_TIMEOUT=300 gssh alice -o RekeyLimit=32M sha256sum <"$T/big" |
    cut -d' ' -f1)
expect_eq "upload: 200 MiB arrive intact (with re-keying)" "$want" "$got"
got=$(GW_TIMEOUT=300 gssh alice -o RekeyLimit=32M "cat $T/big" |
    sha256sum | cut -d' ' -f1)
expect_eq "download: 200 MiB arrive intact (with re-keying)" "$want" "$got"
rm -f "$T/big"

# env is passed (sshd accepts GWTEST_* in this test).
out=$(GWTEST_X=42 gssh alice -o SendEnv=GWTEST_X \
    'echo ${GWTEST_X:-unset}')
expect_eq "env: SendEnv reaches the remote" 42 "$out"

# --- refusals look alike --------------------------------------------
msg_of() { "$@" true 2>&1 >/dev/null | sed "s/[0-9]\{2,\}//g"; }
m_bob=$(msg_of gssh bob)
m_stranger=$(msg_of gssh stranger)
m_unknown=$(msg_of timeout 30 ssh "${SSHOPTS[@]}" -i "$T/alice" nosuch@127.0.0.1)
m_pw=$(timeout 30 ssh -F /dev/null -o UserKnownHostsFile="$T/client_known_hosts" \
    -o StrictHostKeyChecking=accept-new -o BatchMode=yes \
    -o PubkeyAuthentication=no -o PasswordAuthentication=yes \
    -o LogLevel=ERROR -p "$GPORT" proja@127.0.0.1 true 2>&1 |
    sed "s/[0-9]\{2,\}//g")
expect_match "non-member refused" 'Permission denied' "$m_bob"
expect_eq "unknown key: same message as non-member" "$m_bob" "$m_stranger"
m_unknown=${m_unknown/nosuch/proja}
expect_eq "unknown project: same message" "$m_bob" "$m_unknown"
expect_match "password: refused" 'Permission denied \(publickey\)' "$m_pw"
gssh bob true 2>/dev/null
expect_eq "non-member: exit 255" 255 $?

# --- what OpenSSH's client never does -------------------------------
RAW=(/usr/bin/python3 "$TOP/tests/helpers/ssh_raw.py")
if /usr/bin/python3 -c 'import paramiko' 2>/dev/null; then
	out=$("${RAW[@]}" signed "$GPORT" proja "$T/alice" 'echo signed-first')
	expect_eq "a signature without a probe first logs in" signed-first "$out"
	"${RAW[@]}" badsig "$GPORT" proja "$T/alice"
	expect_eq "the member's key with a bad signature is refused" 1 $?
	expect_match "bad signature: logged as such" \
	    'verdict=reject method=publickey .*reason=bad-signature' \
	    "$(cat "$T/gw.log")"
	"${RAW[@]}" password "$GPORT" proja secret
	expect_eq "a password sent anyway is refused" 1 $?
	expect_match "password attempt: logged" \
	    'verdict=reject method=password project=proja .*reason=password-disabled' \
	    "$(cat "$T/gw.log")"
else
	skip "raw client checks" "python3-paramiko is not installed"
fi

# --- log grammar ----------------------------------------------------
sleep 0.5
re='auth: verdict=(accept|partial|reject|timeout|block|drop) method=[a-z-]+ project=[^ ]+ developer=[^ ]+ addr=[0-9a-f.:?]+ port=[0-9]+ key=[^ ]+ fp=[^ ]+ reason=[^ ]+$'
bad=$(grep 'auth: ' "$T/gw.log" | grep -Ev "$re" | head -3)
expect_eq "log: every auth line follows the grammar" "" "$bad"
expect_match "log: accept line names developer, key and fingerprint" \
    'verdict=accept method=publickey project=proja developer=alice addr=127\.0\.0\.1 port=[0-9]+ key=ssh-ed25519 fp=SHA256:' \
    "$(grep verdict=accept "$T/gw.log")"
expect_match "log: non-member" 'verdict=reject .*developer=bob .*reason=not-member' \
    "$(cat "$T/gw.log")"
expect_match "log: unknown key" 'verdict=reject .*developer=- .*reason=(unknown-key|unknown-project)' \
    "$(cat "$T/gw.log")"
expect_match "log: unknown project" 'project=nosuch .*reason=unknown-project' \
    "$(cat "$T/gw.log")"
# Attacker-chosen user names cannot forge lines.
timeout 30 ssh "${SSHOPTS[@]}" -i "$T/stranger" \
    "$(printf 'x\nauth: verdict=accept')@127.0.0.1" true 2>/dev/null
check_fails "log: a newline in the user name cannot start a new line" \
    grep -q '^auth: verdict=accept' "$T/gw.log"

# --- registry changes apply to the next connection -------------------
"$PRISONCTL" project grant proja bob >/dev/null
gssh bob true; expect_eq "registry: granted member gets in" 0 $?
"$PRISONCTL" project revoke proja bob >/dev/null
gssh bob true 2>/dev/null
expect_eq "registry: revoked member is refused" 255 $?
"$PRISONCTL" user disable alice >/dev/null
gssh alice true 2>/dev/null
expect_eq "registry: disabled developer is refused" 255 $?
"$PRISONCTL" user enable alice >/dev/null

# --- host keys ------------------------------------------------------
for k in ssh_host_ed25519_key ssh_host_rsa_key gateway_client_ed25519_key; do
	expect_eq "host key $k is 0600" 600 "$(stat -c %a "$T/etc/$k")"
done
expect_match "RSA host key is 3072 bits" '^3072 ' \
    "$(ssh-keygen -lf "$T/etc/ssh_host_rsa_key")"
before=$(ssh-keyscan -p "$GPORT" 127.0.0.1 2>/dev/null | sort)
gw_stop
gw_start || not_ok "gateway restarts"
after=$(ssh-keyscan -p "$GPORT" 127.0.0.1 2>/dev/null | sort)
check "host keys offered" [ -n "$before" ]
expect_eq "host keys persist across restarts" "$before" "$after"
gssh alice true
expect_eq "client still trusts the restarted gateway" 0 $?
expect_eq "prisonctl gateway-key prints the client key" \
    "$(cut -d' ' -f1,2 "$T/etc/gateway_client_ed25519_key.pub")" \
    "$("$PRISONCTL" gateway-key | cut -d' ' -f1,2)"

# --- upstream host key pinning --------------------------------------
expect_match "upstream key pinned in known_hosts" \
    "^proja/127.0.0.1:$UPORT ssh-ed25519 " "$(cat "$T/state/known_hosts")"
kill "$(cat "$T/upstream/sshd.pid")"; sleep 0.5
rm -f "$T/upstream/host_key" "$T/upstream/host_key.pub"
sshd_start upstream "$UPORT"
# LogLevel INFO (the default for people) shows the server's banner.
out=$(timeout 30 ssh -o LogLevel=INFO "${SSHOPTS[@]}" -i "$T/alice" \
    proja@127.0.0.1 true 2>&1); rc=$?
expect_eq "changed upstream key: refused" 255 "$rc"
expect_match "changed upstream key: clear message" 'host key .*changed' "$out"
expect_match "changed upstream key: logged" 'error=.*changed' \
    "$(cat "$T/gw.log")"

gw_no_crash
