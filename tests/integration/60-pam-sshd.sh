#!/usr/bin/env bash
# Host OpenSSH as a second front door, end to end with real daemons: a
# door sshd on loopback (UsePAM with pam_prison, AuthorizedKeysCommand
# prisonctl keys authorized, ExposeAuthInfo) whose project accounts have
# prison-relay as shell and forced command; behind it an upstream sshd
# standing in for the project's guest.  The relay runs set-gid to a
# test group that alone can read the client key, as installed.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd sshd ssh sftp ssh-keygen useradd groupadd python3
MOD=$BUILD/pam_prison.so
RELAY=$BUILD/prison-relay
for f in "$MOD" "$RELAY" "$PRISONCTL"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "needs $f (make)"; exit 77; }
done
setup_tmp
chmod 0711 "$T"

free_port() {
	python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
	local i
	for i in $(seq 100); do
		python3 -c "import socket
socket.create_connection(('127.0.0.1', $1), 1)" \
		    2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Host accounts: the project's (shell = relay), a VM project's, the
# upstream's dev user, and the group standing in for "prison".
grp=pg$$ pgrp=pj$$ proj=pp$$ vproj=pv$$ dev=pd$$ uproj=pu$$
groupadd --system "$grp" || exit 1
on_exit "groupdel '$grp'"
groupadd --system "$pgrp" || exit 1
on_exit "groupdel '$pgrp'"
mkdir -m 0755 "$T/bin"
install -m 2755 -g "$grp" "$RELAY" "$T/bin/prison-relay"
for u in "$proj" "$vproj" "$uproj"; do
	useradd --system --no-create-home --home-dir "$T" -G "$pgrp" \
	    --shell "$T/bin/prison-relay" "$u" || exit 1
	on_exit "userdel '$u'"
	usermod -p '*' "$u"
done
useradd --system --no-create-home --home-dir "$T/devhome" \
    --shell /bin/sh "$dev" || exit 1
on_exit "userdel '$dev'"
mkdir -m 0700 "$T/devhome"
chown "$dev" "$T/devhome"
usermod -p '*' "$dev"

# The gateway's client key: readable by the group only.
chgrp "$grp" "$T/etc"
chmod 0750 "$T/etc"
ssh-keygen -q -t ed25519 -N '' -C prison-gateway \
    -f "$T/etc/gateway_client_ed25519_key"
chgrp "$grp" "$T/etc/gateway_client_ed25519_key"
chmod 0640 "$T/etc/gateway_client_ed25519_key"

# Upstream sshd: the guest's stand-in, trusting only the client key.
UPORT=$(free_port)
mkdir -p "$T/up"
ssh-keygen -q -t ed25519 -N '' -f "$T/up/host"
cp "$T/etc/gateway_client_ed25519_key.pub" "$T/up/authorized_keys"
cat >"$T/up/sshd_config" <<EOF
Port $UPORT
ListenAddress 127.0.0.1
HostKey $T/up/host
PidFile $T/up/sshd.pid
UsePAM no
StrictModes no
AuthorizedKeysFile $T/up/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
/usr/sbin/sshd -D -f "$T/up/sshd_config" -E "$T/up/log" &
on_exit "kill $!"
# Pinned as prison-gateway pins upstreams: "PROJECT/UPSTREAM TYPE KEY".
printf '%s/127.0.0.1:%s %s\n' "$proj" "$UPORT" \
    "$(cut -d' ' -f1,2 "$T/up/host.pub")" >"$T/state/known_hosts"
chgrp "$grp" "$T/state/known_hosts"
chmod 0640 "$T/state/known_hosts"

# Developers and projects.
for u in alice bob carol; do
	ssh-keygen -q -t ed25519 -N '' -C "$u@test" -f "$T/$u"
	$PRISONCTL user add $u >/dev/null
	$PRISONCTL user key add $u "$(cat "$T/$u.pub")" >/dev/null
done
$PRISONCTL project add "$proj" --upstream "127.0.0.1:$UPORT" \
    --dev-user "$dev" >/dev/null 2>&1
$PRISONCTL project grant "$proj" alice >/dev/null 2>&1
$PRISONCTL project grant "$proj" carol >/dev/null 2>&1
# An upstream nobody has pinned yet (sshd on the same port, other name).
$PRISONCTL project add "$uproj" --upstream "localhost:$UPORT" \
    --dev-user "$dev" >/dev/null 2>&1
$PRISONCTL project grant "$uproj" alice >/dev/null 2>&1
$PRISONCTL project add "$vproj" --dev-user "$dev" >/dev/null 2>&1
$PRISONCTL project grant "$vproj" alice >/dev/null 2>&1
$PRISONCTL user disable carol >/dev/null 2>&1
check "registry set up through prisonctl" \
    grep -q "127.0.0.1:$UPORT" "$T/state/registry.json"

# A stand-in for the provisioner: answers ensure with the upstream as
# the "guest" and the pinned key from $T/hostkey; records requests.
cat >"$T/fakeprov.py" <<'EOF'
import json, socket, sys, threading
path, log, port, dev, keyfile = sys.argv[1:6]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(8)
def serve(c):
    f = c.makefile("rwb")
    req = json.loads(f.readline())
    with open(log, "a") as l:
        l.write(json.dumps(req, sort_keys=True) + "\n")
    f.write(json.dumps({"ok": True, "address": "127.0.0.1",
        "port": int(port), "dev_user": dev,
        "host_key": open(keyfile).read().strip()}).encode() + b"\n")
    f.flush()
    if req.get("hold"):
        f.read()
        with open(log, "a") as l:
            l.write("released " + req["project"] + "\n")
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
cut -d' ' -f1,2 "$T/up/host.pub" >"$T/hostkey"
python3 "$T/fakeprov.py" "$T/run/provisioner.sock" "$T/requests" \
    "$UPORT" "$dev" "$T/hostkey" &
on_exit "kill $!"
for i in $(seq 50); do
	[ -S "$T/run/provisioner.sock" ] && break
	sleep 0.1
done
# As the provisioner's socket should be: the group may connect.
chgrp "$grp" "$T/run/provisioner.sock"
chmod 0660 "$T/run/provisioner.sock"

# The door: a copy of sshd whose name is its PAM service name.
sshd_safe_copy "$PRISONCTL" || exit 1
svc=prison-door-$$
mkdir -m 0755 "$T/sbin" "$T/door"
cp /usr/sbin/sshd "$T/sbin/$svc"
ssh-keygen -q -t ed25519 -N '' -f "$T/door/host"
# The door runs on the shipped examples, with this test's paths.
CONTRIB=$TOP/contrib/openssh
{
	# Standing in for Debian's common-* stacks around the include.
	echo "auth required pam_deny.so"
	echo "account required pam_permit.so"
	echo "session required pam_permit.so"
	sed -e "s|pam_prison.so|$MOD config=$T/prison.conf|" \
	    -e "s|prison-projects|$pgrp|" "$CONTRIB/pam.d/sshd-prison"
} >"/etc/pam.d/$svc"
on_exit "rm -f '/etc/pam.d/$svc'"
DPORT=$(free_port)
mkdir -m 0755 "$T/door/keys"
cat >"$T/door/sshd_config" <<EOF
Port $DPORT
ListenAddress 127.0.0.1
HostKey $T/door/host
PidFile $T/door/sshd.pid
UsePAM yes
StrictModes no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
sed -e "s|/usr/local/bin/prisonctl|$SAFE_COPY -c $T/prison.conf|" \
    -e "s|/usr/local/libexec/prison/prison-relay|$T/bin/prison-relay|" \
    -e "s|AuthorizedKeysFile none|AuthorizedKeysFile $T/door/keys/%u|" \
    -e "s|AuthorizedKeysCommandUser prison|AuthorizedKeysCommandUser root|" \
    -e "s|prison-projects|$pgrp|" "$CONTRIB/sshd_config.d/prison.conf" \
    >>"$T/door/sshd_config"
# A non-default prison.conf reaches the relay through the environment.
printf '\tSetEnv PRISON_CONFIG=%s\n' "$T/prison.conf" >>"$T/door/sshd_config"
"$T/sbin/$svc" -D -f "$T/door/sshd_config" -E "$T/door/log" &
on_exit "kill $!"
check "upstream sshd listens" wait_port "$UPORT"
check "door sshd listens" wait_port "$DPORT"

# door KEY USER COMMAND: ssh through the door; options in DOOR_OPTS.
DOOR_OPTS=()
door() {
	timeout 60 ssh -F /dev/null -i "$T/$1" -o IdentitiesOnly=yes \
	    -o IdentityAgent=none -o BatchMode=yes \
	    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	    -o LogLevel=ERROR -p "$DPORT" "${DOOR_OPTS[@]}" "$2@127.0.0.1" "$3"
}

# ---- an upstream project -------------------------------------------
got=$(door alice "$proj" 'echo "hello  there"; id -un' </dev/null 2>&1)
expect_eq "member runs a command on the upstream as its dev user" \
    "hello  there
$dev" "$got"
door alice "$proj" 'exit 7' </dev/null
expect_eq "the exit status comes back through the relay" 7 $?
got=$(door alice "$proj" tty </dev/null 2>&1)
expect_eq "no pty unless asked" "not a tty" "$got"
DOOR_OPTS=(-tt)
got=$(door alice "$proj" tty </dev/null 2>/dev/null | tr -d '\r')
DOOR_OPTS=()
expect_match "ssh -t gives a pty on the far side" '^/dev/pts/[0-9]+$' "$got"
echo "ls /" >"$T/batch"
got=$(timeout 60 sftp -F /dev/null -i "$T/alice" -o IdentitiesOnly=yes \
    -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -P "$DPORT" \
    -b "$T/batch" "$proj@127.0.0.1" 2>&1)
expect_match "sftp is relayed as the sftp subsystem" "/etc" "$got"

got=$(door alice "$uproj" 'echo reached' </dev/null 2>&1)
expect_match "an upstream without a pin is refused, saying why" \
    "no pinned host key for localhost:$UPORT" "$got"

got=$(door bob "$proj" true </dev/null 2>&1)
expect_match "non-member's key is not offered by prisonctl: refused" \
    "Permission denied" "$got"
got=$(door carol "$proj" true </dev/null 2>&1)
expect_match "disabled member refused" "Permission denied" "$got"

# A key sshd itself accepts (an extra authorized_keys file) meets
# pam_prison in the session phase: sshd logs the failed
# pam_open_session and its session child exits 254 before running
# anything.
cat "$T/bob.pub" >"$T/door/keys/$proj"
got=$(door bob "$proj" 'echo inside' </dev/null 2>"$T/bob.err")
rc=$?
# stdout alone, line by line: sshd's or ssh's words on stderr must
# neither hide nor fake the command's output.
check_fails "a non-member whose key sshd accepted gets no command" \
    grep -qx inside <<<"$got"
expect_eq "sshd ends that session with status 254" 254 $rc
sleep 0.5
expect_eq "pam_prison's session phase refused bob and only bob" 1 \
    "$(grep -c 'PAM: pam_open_session(): ' "$T/door/log")"
rm -f "$T/door/keys/$proj"

# While a session runs: the key's memory file stays the relay's own
# (ssh opens it through /proc/<relay>/fd, nothing inherits it), and the
# relay, dumpable again for that, cannot dump core.
door alice "$proj" 'echo up; exec sleep 30' </dev/null >"$T/live.out" \
    2>/dev/null &
live=$!
wait_until 100 grep -q up "$T/live.out"
rpid=$(pgrep -u "$proj" -x prison-relay | head -n 1)
spid=$(pgrep -P "${rpid:-0}" -x ssh | head -n 1)
check "a live session: relay and its ssh found" \
    test -n "$rpid" -a -n "$spid"
expect_eq "the relay holds the key's memory file" 1 \
    "$(ls -l "/proc/$rpid/fd" 2>/dev/null | grep -c memfd:prison-client-key)"
# ssh closes stray descriptors itself; the relay must not count on it.
cloexec=
for fd in /proc/"$rpid"/fd/*; do
	case $(readlink "$fd" 2>/dev/null) in
	*memfd:prison-*) ;;
	*) continue ;;
	esac
	flags=$(awk '$1 == "flags:" { print $2 }' \
	    "/proc/$rpid/fdinfo/${fd##*/}")
	cloexec="$cloexec $(( (8#$flags & 8#2000000) != 0 ))"
done
expect_eq "both memory files are close-on-exec" " 1 1" "$cloexec"
expect_eq "ssh holds none of them" 0 \
    "$(ls -l "/proc/$spid/fd" 2>/dev/null | grep -c memfd:prison)"
expect_match "the relay's core size limit is 0" \
    '^Max core file size +0 +0 ' "$(cat "/proc/$rpid/limits" 2>/dev/null)"
kill "$live" 2>/dev/null
[ -n "$spid" ] && kill "$spid" 2>/dev/null
wait "$live" 2>/dev/null

# ---- a VM project: ensure, pinned host key -------------------------
: >"$T/requests"
got=$(door alice "$vproj" 'echo vm ok' </dev/null 2>&1)
expect_eq "VM project: relayed to the address ensure returned" "vm ok" \
    "$got"
sleep 0.5
expect_eq "session module and relay each held the VM, then let go" \
    "2 2" "$(grep -c '"hold": true, "op": "ensure", "project": "'"$vproj"'"' \
    "$T/requests") $(grep -c "released $vproj" "$T/requests")"

ssh-keygen -q -t ed25519 -N '' -f "$T/other"
cut -d' ' -f1,2 "$T/other.pub" >"$T/hostkey"
got=$(door alice "$vproj" 'echo vm ok' </dev/null 2>&1)
door alice "$vproj" true </dev/null >/dev/null 2>&1
rc=$?
expect_match "a guest without the pinned host key is refused" \
    "Host key verification failed" "$got"
expect_eq "and the developer gets ssh's failure status" 255 $rc

# Run by hand, the set-gid relay believes only a root-owned config and
# sshd's record of the developer.
relay_as() {	# ACCOUNT ENV...: the relay as that account
	local u=$1; shift
	su -s /bin/sh "$u" -c "env $* $T/bin/prison-relay" </dev/null 2>&1
}
cp "$T/prison.conf" "$T/mine.conf"
chown "$proj" "$T/mine.conf"
expect_match "relay refuses a configuration its caller could write" \
    "refusing configuration: .*mine.conf: must be owned by root" \
    "$(relay_as "$proj" PRISON_CONFIG=$T/mine.conf)"
expect_match "relay refuses without sshd's record of the developer" \
    "SSH_USER_AUTH is not set" \
    "$(relay_as "$proj" PRISON_CONFIG=$T/prison.conf)"
printf 'publickey %s\n' "$(cut -d' ' -f1,2 "$T/bob.pub")" >"$T/bobauth"
chmod 0644 "$T/bobauth"
expect_match "relay refuses a developer who is not a member" \
    "developer bob may not use project $proj" \
    "$(relay_as "$proj" PRISON_CONFIG=$T/prison.conf \
    SSH_USER_AUTH=$T/bobauth)"

# sshd's record is named by the caller: the relay reads it without its
# group, so a group-only file is as closed to it as to the caller.
expect_match "relay reads SSH_USER_AUTH without its group" \
    "access refused: .*Permission denied" \
    "$(relay_as "$proj" PRISON_CONFIG=$T/prison.conf \
    SSH_USER_AUTH=$T/etc/gateway_client_ed25519_key)"

# Accounts outside the project group are untouched by the examples:
# their own authorized_keys, their own shell, no pam_prison.
mkdir -p "$T/devhome/.ssh"
cp "$T/alice.pub" "$T/devhome/.ssh/authorized_keys"
chown -R "$dev" "$T/devhome/.ssh"
got=$(door alice "$dev" 'echo "plain $(id -un)"' </dev/null 2>&1)
expect_eq "an ordinary account logs in as before" "plain $dev" "$got"

# The relay is for project accounts only.
got=$(relay_as "$dev" PRISON_CONFIG=$T/prison.conf)
expect_match "relay refuses an account whose shell is not the relay" \
    "login shell must be" "$got"
