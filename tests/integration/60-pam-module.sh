#!/usr/bin/env bash
# pam_prison.so in real PAM stacks, driven by pamtester under pam_wrapper
# (service files from a private directory; pam_syslog lines on stderr):
# account decisions for keys sshd reports in SSH_AUTH_INFO_0 and for the
# gateway's PRISON_DEVELOPER, the session's ensure against a socket that
# speaks the provisioner's protocol, and the gateway's site policy stack
# (pam_access, pam_time, pam_oath as second factor).
. "$(dirname "$0")/../lib.sh"
need_cmd pamtester ssh-keygen python3
WRAP=$(ls /usr/lib/*/libpam_wrapper.so /usr/lib/libpam_wrapper.so \
    2>/dev/null | head -n 1)
[ -n "$WRAP" ] || { echo "needs libpam-wrapper"; exit 77; }
MOD=$BUILD/pam_prison.so
[ -f "$MOD" ] || { echo "needs $MOD (make)"; exit 77; }
setup_tmp
mkdir -p "$T/pam.d"
: >"$T/pam.d/other"

# pt SERVICE USER OPS...: pamtester under pam_wrapper; extra pamtester
# options go in the array PT_OPTS.  Output (with the module's syslog
# lines) is left in $T/out.
PT_OPTS=()
pt() {
	local svc=$1 user=$2; shift 2
	LD_PRELOAD=$WRAP PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d \
	    PAM_WRAPPER_DEBUGLEVEL=2 \
	    pamtester "${PT_OPTS[@]}" "$svc" "$user" "$@" >"$T/out" 2>&1 \
	    <"${PT_STDIN:-/dev/null}"
}
out() { grep -E 'SYSLOG|pamtester|password' "$T/out"; }
authinfo() { echo "publickey $(cut -d' ' -f1,2 "$T/$1.pub")"; }

for u in alice bob carol eve; do
	ssh-keygen -q -t ed25519 -N '' -C "$u@test" -f "$T/$u"
done
for u in alice bob carol; do
	$PRISONCTL user add $u >/dev/null &&
	    $PRISONCTL user key add $u "$(cat "$T/$u.pub")" >/dev/null ||
	    { echo "prisonctl user add failed"; exit 1; }
done
$PRISONCTL project add proja >/dev/null 2>&1
$PRISONCTL project grant proja alice >/dev/null 2>&1
$PRISONCTL project grant proja carol >/dev/null 2>&1
$PRISONCTL project add projb >/dev/null 2>&1
$PRISONCTL project grant projb bob >/dev/null 2>&1
$PRISONCTL user disable carol >/dev/null 2>&1
check "registry set up through prisonctl" \
    grep -q '"carol"' "$T/state/registry.json"

# ---- account, as host sshd calls it ----------------------------------
echo "account required $MOD config=$T/prison.conf" >"$T/pam.d/door"

PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo alice)")
check "member's key is allowed" pt door proja acct_mgmt
expect_match "allow is logged with developer and fingerprint" \
    "allow project=proja developer=alice key=\"ssh-ed25519 SHA256:" "$(out)"

PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo bob)")
check_fails "registered non-member is denied" pt door proja acct_mgmt
expect_match "non-member: permission denied, reason logged" \
    'reason="not a member"(.|\n)*Permission denied' "$(out | tr '\n' ' ')"

PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo carol)")
check_fails "disabled member is denied" pt door proja acct_mgmt
expect_match "disabled: reason logged" \
    'developer=carol .*reason="developer disabled"' \
    "$(out)"

PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo eve)")
check_fails "unregistered key is denied" pt door proja acct_mgmt
expect_match "unknown key: reason logged" \
    'reason="key ssh-ed25519 is not registered' "$(out)"

PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo alice)")
check_fails "unknown project is denied" pt door nosuch acct_mgmt
expect_match "unknown project: user unknown" \
    "User not known to the underlying authentication module" "$(out)"

# Keyboard-interactive after publickey: sshd lists both methods.
PT_OPTS=(-E "SSH_AUTH_INFO_0=keyboard-interactive
$(authinfo alice)")
check "several methods, one member key: allowed" pt door proja acct_mgmt
PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo alice)
$(authinfo bob)")
check_fails "keys of two developers: denied" pt door proja acct_mgmt

PT_OPTS=(-E "PRISON_DEVELOPER=alice")
check_fails "PRISON_DEVELOPER is ignored without trust_env" \
    pt door proja acct_mgmt
PT_OPTS=()
check_fails "no identity at all is denied" pt door proja acct_mgmt
expect_match "missing ExposeAuthInfo is named" "ExposeAuthInfo yes" "$(out)"

# sshd's monitor runs the account phase with SSH_AUTH_INFO_0 still empty.
PT_OPTS=(-E "SSH_AUTH_INFO_0=")
check_fails "empty SSH_AUTH_INFO_0 is denied without defer_to_session" \
    pt door proja acct_mgmt
echo "account required $MOD config=$T/prison.conf defer_to_session" \
    >"$T/pam.d/defer"
check "defer_to_session: account passes with an empty SSH_AUTH_INFO_0" \
    pt defer proja acct_mgmt
expect_match "deferral is logged" "membership checked at session" "$(out)"
check_fails "defer_to_session still refuses an unknown project" \
    pt defer nosuch acct_mgmt
PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo bob)")
check_fails "defer_to_session: a known key is still decided in account" \
    pt defer proja acct_mgmt

# ---- account, as the gateway calls it --------------------------------
echo "account required $MOD config=$T/prison.conf trust_env" \
    >"$T/pam.d/gw"
PT_OPTS=(-E PRISON_DEVELOPER=alice -E PRISON_KEY_FP=SHA256:abc)
check "gateway: member named in PRISON_DEVELOPER is allowed" \
    pt gw proja acct_mgmt
expect_match "gateway: fingerprint from PRISON_KEY_FP logged" \
    'developer=alice key="SHA256:abc"' "$(out)"
PT_OPTS=(-E PRISON_DEVELOPER=bob)
check_fails "gateway: non-member denied" pt gw proja acct_mgmt
PT_OPTS=(-E PRISON_DEVELOPER=carol)
check_fails "gateway: disabled developer denied" pt gw proja acct_mgmt
PT_OPTS=(-E PRISON_DEVELOPER=mallory)
check_fails "gateway: unknown developer denied" pt gw proja acct_mgmt

echo "account required $MOD config=$T/prison.conf bogus" >"$T/pam.d/bad"
PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo alice)")
check_fails "unknown module option fails closed" pt bad proja acct_mgmt

# ---- session: ensure through the provisioner's socket ----------------
# A stand-in that speaks the control protocol and records what it gets;
# only the module's side of the conversation is under test here.
cat >"$T/fakeprov.py" <<'EOF'
import json, os, socket, sys, threading
path, log, modefile = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(8)
def serve(c):
    f = c.makefile("rwb")
    req = json.loads(f.readline())
    with open(log, "a") as l:
        l.write(json.dumps(req, sort_keys=True) + "\n")
    mode = open(modefile).read().strip()
    f.write(b'{"progress":"booting"}\n')
    if mode == "ok":
        f.write(json.dumps({"ok": True, "address": "127.0.0.1",
            "port": 22, "host_key": "ssh-ed25519 AAAA", "dev_user": "dev"}
            ).encode() + b"\n")
    else:
        f.write(b'{"ok":false,"stage":"vmm","error":"qemu exited"}\n')
    f.flush()
    if req.get("hold") and mode == "ok":
        f.read()                      # until the session lets go
        with open(log, "a") as l:
            l.write("released\n")
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
echo ok >"$T/mode"
python3 "$T/fakeprov.py" "$T/run/provisioner.sock" "$T/requests" \
    "$T/mode" &
on_exit "kill $!"
for i in $(seq 50); do
	[ -S "$T/run/provisioner.sock" ] && break
	sleep 0.1
done

echo "session required $MOD config=$T/prison.conf" >"$T/pam.d/sess"
PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo bob)")
check_fails "session refuses a non-member (deferred check)" \
    pt sess proja open_session
expect_match "session denial logged" \
    'developer=bob .*phase=session reason="not a member"' \
    "$(out)"
check_fails "and asked nothing of the provisioner" test -s "$T/requests"
PT_OPTS=(-E "SSH_AUTH_INFO_0=$(authinfo alice)")
check "session opens when ensure succeeds" \
    pt sess proja open_session close_session
expect_eq "session sent ensure with hold" \
    '{"hold": true, "op": "ensure", "project": "proja"}' \
    "$(head -n 1 "$T/requests")"
for i in $(seq 50); do grep -q released "$T/requests" && break; sleep 0.1; done
check "closing the session releases the hold" grep -q released "$T/requests"

echo fail >"$T/mode"
: >"$T/requests"
check_fails "session fails when ensure fails" pt sess proja open_session
expect_match "failure logged with the stage" \
    "ensure failed stage=vmm: qemu exited" "$(out)"
check "the failed session did ask" grep -q '"ensure"' "$T/requests"

kill %1 2>/dev/null; wait 2>/dev/null
rm -f "$T/run/provisioner.sock"
check_fails "session fails when the provisioner is down" \
    pt sess proja open_session
expect_match "unreachable provisioner: stage connect" \
    "stage=connect: cannot reach the provisioner" "$(out)"

# ---- the gateway's site policy stack ---------------------------------
# pam_access looks PAM_USER up in the passwd database, so it works for
# projects that also exist as host accounts (the host OpenSSH door makes
# them); pam_succeed_if's rhost test needs no account.
cat >"$T/access.conf" <<EOF
+ : ALL : 10.0.0.0/8 127.0.0.1
- : ALL : ALL
EOF
cat >"$T/pam.d/prison" <<EOF
account required pam_access.so accessfile=$T/access.conf
account required $MOD config=$T/prison.conf trust_env
EOF
acct=pa$$
if [ "$(id -u)" = 0 ] && useradd --system --no-create-home \
    --shell /usr/sbin/nologin "$acct" 2>/dev/null; then
	on_exit "userdel '$acct'"
	$PRISONCTL project add "$acct" >/dev/null 2>&1
	$PRISONCTL project grant "$acct" alice >/dev/null 2>&1
	PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=10.1.2.3)
	check "pam_access: allowed network passes" \
	    pt prison "$acct" acct_mgmt
	PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=192.0.2.7)
	check_fails "pam_access: other network is denied" \
	    pt prison "$acct" acct_mgmt
else
	skip "pam_access" "needs root to add a host account"
fi
cat >"$T/pam.d/prison" <<EOF
account required pam_succeed_if.so quiet rhost =~ 10.*
account required $MOD config=$T/prison.conf trust_env
EOF
PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=10.1.2.3)
check "pam_succeed_if rhost: allowed network passes" \
    pt prison proja acct_mgmt
PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=192.0.2.7)
check_fails "pam_succeed_if rhost: other network is denied" \
    pt prison proja acct_mgmt

echo "prison ; * ; * ; !Al0000-2400" >"$T/time-never.conf"
echo "prison ; * ; * ; Al0000-2400" >"$T/time-always.conf"
echo "account required pam_time.so conffile=$T/time-never.conf" \
    >"$T/pam.d/prison"
PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=10.1.2.3)
check_fails "pam_time: outside the allowed hours is denied" \
    pt prison proja acct_mgmt
echo "account required pam_time.so conffile=$T/time-always.conf" \
    >"$T/pam.d/prison"
check "pam_time: inside the allowed hours passes" pt prison proja acct_mgmt

if [ -f /lib/x86_64-linux-gnu/security/pam_oath.so ] ||
    ls /lib/*/security/pam_oath.so >/dev/null 2>&1 &&
    command -v oathtool >/dev/null; then
	secret=3132333435363738393031323334353637383930
	mkdir -m 0700 "$T/oath"
	printf 'HOTP/T30/6 alice - %s\n' $secret >"$T/oath/users"
	cat >"$T/pam.d/prison" <<EOF
auth required $MOD config=$T/prison.conf trust_env user=developer
auth required pam_oath.so usersfile=$T/oath/users window=2 digits=6
auth required $MOD config=$T/prison.conf user=project
account required $MOD config=$T/prison.conf trust_env
EOF
	PT_OPTS=(-E PRISON_DEVELOPER=alice)
	echo 000000 >"$T/code"
	PT_STDIN=$T/code
	check_fails "second factor: a wrong code is refused" \
	    pt prison proja authenticate acct_mgmt
	expect_match "second factor: the code was asked for" \
	    "One-time password" "$(out)"
	oathtool --totp -d 6 $secret >"$T/code"
	check "second factor: the right code passes, then account" \
	    pt prison proja authenticate acct_mgmt
	check_fails "second factor: the same code cannot be replayed" \
	    pt prison proja authenticate
	PT_OPTS=(-E PRISON_DEVELOPER=bob)
	oathtool --totp -d 6 $secret >"$T/code"
	check_fails "second factor: a developer without a secret fails" \
	    pt prison proja authenticate

	# The shipped /etc/pam.d/prison, with this test's paths.
	echo "prison ; * ; * ; Al0000-2400" >"$T/time.conf"
	sed -e "s|pam_prison.so|$MOD config=$T/prison.conf|" \
	    -e "s|/var/lib/prison/oath/users|$T/oath/users|" \
	    -e "s|/etc/prison/time.conf|$T/time.conf|" \
	    "$TOP/contrib/pam.d/prison" >"$T/pam.d/prison"
	# Each developer below has a secret of their own: a code pam_oath
	# has seen once is refused for good (replay protection).
	$PRISONCTL user add dave >/dev/null
	$PRISONCTL project grant proja dave >/dev/null 2>&1
	secret2=6162636465666768696a6b6c6d6e6f7071727374
	printf 'HOTP/T30/6 dave - %s\n' $secret2 >>"$T/oath/users"
	oathtool --totp -d 6 $secret2 >"$T/code"
	PT_OPTS=(-E PRISON_DEVELOPER=dave -I rhost=10.1.2.3)
	check "shipped gateway stack: code, network, hours, member" \
	    pt prison proja authenticate acct_mgmt
	PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=192.0.2.7)
	check_fails "shipped gateway stack: other network refused" \
	    pt prison proja acct_mgmt
	echo "prison ; * ; proja ; !Al0000-2400" >"$T/time.conf"
	PT_OPTS=(-E PRISON_DEVELOPER=alice -I rhost=10.1.2.3)
	check_fails "shipped gateway stack: outside hours refused" \
	    pt prison proja acct_mgmt

	# pam_faillock only counts users the passwd database knows, so it
	# works inside the developer bracket for developers with host
	# accounts (LDAP, sssd, or local).
	fdev=pf$$
	if useradd --system --no-create-home --shell /usr/sbin/nologin \
	    "$fdev" 2>/dev/null; then
		on_exit "userdel '$fdev'"
		$PRISONCTL user add "$fdev" >/dev/null
		$PRISONCTL project grant proja "$fdev" >/dev/null 2>&1
		secret3=4142434445464748494a4b4c4d4e4f5051525354
		printf 'HOTP/T30/6 %s - %s\n' "$fdev" $secret3 \
		    >>"$T/oath/users"
		mkdir -m 0700 "$T/fl"
		F="dir=$T/fl deny=2 unlock_time=600"
		cat >"$T/pam.d/prison" <<EOF
auth required $MOD config=$T/prison.conf trust_env user=developer
auth requisite pam_faillock.so preauth $F
auth [success=1 default=ignore] pam_oath.so usersfile=$T/oath/users \
    window=2 digits=6
auth [default=die] pam_faillock.so authfail $F
auth required pam_faillock.so authsucc $F
auth required $MOD config=$T/prison.conf user=project
EOF
		PT_OPTS=(-E PRISON_DEVELOPER=$fdev)
		echo 000000 >"$T/code"
		pt prison proja authenticate
		pt prison proja authenticate
		oathtool --totp -d 6 $secret3 >"$T/code"
		check_fails "pam_faillock: locked after two wrong codes" \
		    pt prison proja authenticate
		expect_match "pam_faillock: says the account is locked" \
		    "locked due to 2 failed logins" "$(cat "$T/out")"
	else
		skip "pam_faillock" "needs root to add a host account"
	fi
	unset PT_STDIN
else
	skip "second factor with pam_oath" "needs libpam-oath and oathtool"
fi
