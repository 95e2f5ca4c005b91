#!/usr/bin/env bash
# pam_prison's session phase against the real prison-provisioner: the
# session opens only once the project's VM has booted and its sshd
# answers, and a project whose VM cannot start fails the session with
# the provisioner's stage.
# Boots one guest (TCG here), so it takes a minute or two.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd pamtester qemu-system-x86_64 ip sshd ssh useradd groupadd
WRAP=$(ls /usr/lib/*/libpam_wrapper.so /usr/lib/libpam_wrapper.so \
    2>/dev/null | head -n 1)
[ -n "$WRAP" ] || { echo "needs libpam-wrapper"; exit 77; }
MOD=$BUILD/pam_prison.so
for f in "$MOD" "$BUILD/prison-provisioner"; do
	[ -e "$f" ] || { echo "needs $f (make)"; exit 77; }
done
img=$("$TOP/tests/guest-image.sh") || { echo "no guest image"; exit 77; }
setup_tmp
mkdir -p "$T/pam.d"
: >"$T/pam.d/other"
conf_set paths image_dir "$img"
conf_set network lan_interface lan0
chmod 0711 "$T"
vmm=pq$$
useradd --system --no-create-home --shell /usr/sbin/nologin "$vmm" ||
    exit 1
on_exit "userdel '$vmm'"
conf_set provisioner vmm_user "$vmm"
# The gateway's user and group ("prison" when installed): the relay is
# set-gid to that group, the provisioner knows the gateway by them.
grp=pg$$ pgrp=pj$$ gw=pw$$
groupadd --system "$grp" && on_exit "groupdel '$grp'" &&
    groupadd --system "$pgrp" && on_exit "groupdel '$pgrp'" || exit 1
useradd --system --no-create-home --shell /usr/sbin/nologin -g "$grp" \
    "$gw" || exit 1
on_exit "userdel '$gw'"
conf_set gateway user "$gw"

# The provisioner's host: a namespace with a LAN-side interface.
ns_add host && ns_lan host || exit 1

# The project doubles as a host account below: a name of this test's.
proj=pm$$
ssh-keygen -q -t ed25519 -N '' -C alice@test -f "$T/alice"
$PRISONCTL user add alice >/dev/null
$PRISONCTL user key add alice "$(cat "$T/alice.pub")" >/dev/null
$PRISONCTL project add "$proj" >/dev/null 2>&1
$PRISONCTL project grant "$proj" alice >/dev/null 2>&1
$PRISONCTL project add projx --image noimage >/dev/null 2>&1
$PRISONCTL project grant projx alice >/dev/null 2>&1
$PRISONCTL gateway-key >/dev/null 2>&1

in_ns host "$BUILD/prison-provisioner" -f >"$T/prov.log" 2>&1 &
prov=$!
on_exit "$PRISONCTL vm stop --all; kill $prov; sleep 1; kill -9 $prov"
for i in $(seq 100); do
	[ -S "$T/run/provisioner.sock" ] && break
	sleep 0.1
done
check "provisioner is up" test -S "$T/run/provisioner.sock"

echo "session required $MOD config=$T/prison.conf debug" >"$T/pam.d/sess"
pt() {	# USER OPS...: pamtester under pam_wrapper, output in $T/out
	LD_PRELOAD=$WRAP PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$T/pam.d \
	    PAM_WRAPPER_DEBUGLEVEL=2 pamtester \
	    -E "SSH_AUTH_INFO_0=publickey $(cut -d' ' -f1,2 "$T/alice.pub")" \
	    sess "$@" >"$T/out" 2>&1 </dev/null
}

start=$(date +%s)
check "session opened once the VM was ready, then closed" \
    pt "$proj" open_session close_session
echo "# ensure took $(( $(date +%s) - start ))s"
expect_match "the module saw the provisioner's answer" \
    "session project=$proj: VM ready" "$(cat "$T/out")"
got=$($PRISONCTL vm list 2>&1)
expect_match "the VM runs" "$proj" "$got"

check_fails "a VM that cannot start fails the session" pt projx open_session
expect_match "the provisioner's stage is logged" \
    "session project=projx: ensure failed stage=[a-z]+: " "$(cat "$T/out")"

# ---- the whole host door into the real guest -------------------------
# ssh -> door sshd (pam_prison session: ensure + hold) -> prison-relay
# (its own ensure, as the project account with the group prison) ->
# the guest's sshd with the pinned key.  Runs in the host namespace,
# where the guest's TAP is.
mkdir -m 0755 "$T/bin" "$T/door"
install -m 2755 -g "$grp" "$BUILD/prison-relay" "$T/bin/prison-relay"
useradd --system --no-create-home --home-dir "$T" -G "$pgrp" \
    --shell "$T/bin/prison-relay" "$proj" || exit 1
on_exit "userdel '$proj'"
usermod -p '*' "$proj"
chgrp "$grp" "$T/etc" "$T/etc/gateway_client_ed25519_key"
chmod 0750 "$T/etc"
chmod 0640 "$T/etc/gateway_client_ed25519_key"

sshd_safe_copy "$PRISONCTL" || exit 1
svc=prison-door-$$
mkdir -m 0755 "$T/sbin"
cp /usr/sbin/sshd "$T/sbin/$svc"
ssh-keygen -q -t ed25519 -N '' -f "$T/door/host"
{
	echo "auth required pam_deny.so"
	echo "account required pam_permit.so"
	echo "session required pam_permit.so"
	sed -e "s|pam_prison.so|$MOD config=$T/prison.conf|" \
	    -e "s|prison-projects|$pgrp|" \
	    "$TOP/contrib/openssh/pam.d/sshd-prison"
} >"/etc/pam.d/$svc"
on_exit "rm -f '/etc/pam.d/$svc'"
{
	printf 'Port 2200\nListenAddress 127.0.0.1\nHostKey %s\n' \
	    "$T/door/host"
	printf 'PidFile %s\nUsePAM yes\nStrictModes no\n' "$T/door/pid"
	sed -e "s|/usr/local/bin/prisonctl|$SAFE_COPY -c $T/prison.conf|" \
	    -e "s|/usr/local/libexec/prison/prison-relay|$T/bin/prison-relay|" \
	    -e "s|CommandUser prison|CommandUser root|" \
	    -e "s|prison-projects|$pgrp|" \
	    "$TOP/contrib/openssh/sshd_config.d/prison.conf"
	printf '\tSetEnv PRISON_CONFIG=%s\n' "$T/prison.conf"
} >"$T/door/sshd_config"
in_ns host "$T/sbin/$svc" -D -f "$T/door/sshd_config" -E "$T/door/log" &
on_exit "kill $!"
sleep 1

door() {	# [SSH OPTIONS] COMMAND, as alice
	in_ns host timeout 300 ssh -F /dev/null -i "$T/alice" \
	    -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	    -o LogLevel=ERROR -p 2200 "${@:1:$#-1}" "$proj@127.0.0.1" \
	    "${@: -1}" </dev/null
}
got=$(door 'echo "in $(hostname) as $(id -un)"' 2>&1)
# The relay asks as the project account with the gateway's group, which
# the provisioner accepts for ensure (provisioner/main.c, is_gateway()).
expect_eq "host door: a command runs in the guest as its dev user" \
    "in $proj as dev" "$got"
door 'exit 3' >/dev/null 2>&1
expect_eq "host door: the guest's exit status comes back" 3 $?
got=$(door -tt tty 2>/dev/null | tr -d '\r')
expect_match "host door: ssh -t gives a pty in the guest" \
    '^/dev/pts/[0-9]+$' "$got"
# A session open across a stop ends at once and says why.
door 'echo started; exec sleep 600' >"$T/live.out" 2>"$T/live.err" &
live=$!
wait_until 300 grep -q started "$T/live.out"
check "host door: vm stop with a session open" \
    $PRISONCTL vm stop "$proj"
check "host door: that session has ended" wait_until 100 gone "$live"
kill "$live" 2>/dev/null; wait "$live" 2>/dev/null
expect_match "host door: it was told the VM is stopping" \
    "VM is stopping" "$(cat "$T/live.err")"
