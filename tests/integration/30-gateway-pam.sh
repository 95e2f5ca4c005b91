#!/usr/bin/env bash
# prison-gateway and PAM: the account stack decides after the key, and
# with second_factor the auth stack's questions become keyboard-
# interactive prompts.  PAM runs for real, with libpam-wrapper pointing
# it at a service file in $T and pam_matrix as the password backend.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh ssh-keygen nc python3
[ -x "$GATEWAY" ] || { echo "needs $GATEWAY (make)"; exit 77; }
PW_LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -1)
MATRIX=$(ls /usr/lib/*/pam_wrapper/pam_matrix.so 2>/dev/null | head -1)
[ -n "$PW_LIB" ] && [ -n "$MATRIX" ] || { echo "needs libpam-wrapper"; exit 77; }

setup_tmp
gw_env_setup >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
"$PRISONCTL" project add projb --upstream "127.0.0.1:$UPORT" \
    --dev-user "$DEVUSER" --member alice >/dev/null
mkdir "$T/pam.d"
cat >"$T/pam.d/prison" <<EOF
auth required $MATRIX passdb=$T/passdb
account required $MATRIX passdb=$T/passdb
EOF
# pam_matrix: project proja may use service prison; projb is unknown.
echo "proja:otp-4711:prison" >"$T/passdb"
chmod 644 "$T/passdb" "$T/pam.d/prison"
conf_set gateway pam_service prison
export PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d
pw_start() { LD_PRELOAD=$PW_LIB gw_start; }

pw_start || { cat "$T/gw.log"; exit 1; }
gssh alice true; expect_eq "PAM account: allowed project" 0 $?
timeout 30 ssh "${SSHOPTS[@]}" -i "$T/alice" projb@127.0.0.1 true 2>/dev/null
expect_eq "PAM account: refused project" 255 $?
expect_match "PAM account: reason logged" \
    'project=projb developer=alice .*reason=pam-account' "$(cat "$T/gw.log")"

# --- second factor ---------------------------------------------------
gw_stop
conf_set gateway second_factor yes
pw_start || { cat "$T/gw.log"; exit 1; }
printf '#!/bin/sh\necho "$(cat %s/answer)"\n' "$T" >"$T/askpass"
chmod 755 "$T/askpass"
kssh() {
	timeout 30 env SSH_ASKPASS="$T/askpass" SSH_ASKPASS_REQUIRE=force \
	    DISPLAY= setsid ssh -F /dev/null \
	    -o UserKnownHostsFile="$T/client_known_hosts" \
	    -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes \
	    -o PreferredAuthentications=publickey,keyboard-interactive \
	    -o NumberOfPasswordPrompts=1 -o LogLevel=ERROR -p "$GPORT" \
	    "$@" </dev/null
}
echo otp-4711 >"$T/answer"
out=$(kssh -i "$T/alice" proja@127.0.0.1 'echo second-factor-ok'); rc=$?
expect_eq "second factor: right answer lets the key holder in" \
    "0 second-factor-ok" "$rc $out"
expect_match "second factor: key logged as partial" \
    'verdict=partial method=publickey project=proja developer=alice .*reason=second-factor' \
    "$(cat "$T/gw.log")"
expect_match "second factor: accept via keyboard-interactive" \
    'verdict=accept method=keyboard-interactive project=proja developer=alice' \
    "$(cat "$T/gw.log")"
echo wrong >"$T/answer"
kssh -i "$T/alice" proja@127.0.0.1 true 2>/dev/null
expect_eq "second factor: wrong answer refused" 255 $?
expect_match "second factor: refusal logged" \
    'verdict=reject method=keyboard-interactive .*reason=pam-auth' \
    "$(cat "$T/gw.log")"
echo otp-4711 >"$T/answer"
kssh -i "$T/bob" proja@127.0.0.1 true 2>/dev/null
expect_eq "second factor: no prompt for a key that is not allowed" 255 $?
n=$(grep -c 'developer=bob .*reason=second-factor' "$T/gw.log")
expect_eq "second factor: non-member never reaches PAM auth" 0 "$n"
kssh -o PreferredAuthentications=keyboard-interactive proja@127.0.0.1 \
    true 2>/dev/null
expect_eq "second factor: keyboard-interactive alone is refused" 255 $?

gw_no_crash
