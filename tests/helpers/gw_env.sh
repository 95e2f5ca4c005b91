# Shared setup for the gateway tests and bench/gateway.sh; source it after
# tests/lib.sh.  gw_env_setup gives:
#   a real OpenSSH sshd on 127.0.0.1:$UPORT (own config, host key and
#   authorized_keys in $T) logging in Unix user $DEVUSER;
#   developers alice (member of proja) and bob (member of nothing) with
#   ed25519 keys $T/alice and $T/bob; project proja -> that sshd;
#   prison-gateway on 127.0.0.1:$GPORT (gw_start), log in $T/gw.log.
# Everything runs on loopback; nothing outside $T is changed except the
# test user $DEVUSER, created once and kept for later runs.

DEVUSER=prisondev
GATEWAY=${GATEWAY:-$BUILD/prison-gateway}
PRISONCTL=${GW_PRISONCTL:-$PRISONCTL}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

gw_dev_user() {
	if ! id "$DEVUSER" >/dev/null 2>&1; then
		useradd -m -s /bin/bash "$DEVUSER" || return 1
	fi
	# "*" instead of "!": no password, but not a locked account, which
	# sshd would refuse even for public-key logins.
	usermod -p '*' "$DEVUSER"
}

# sshd_start NAME PORT: an sshd with its config in $T/NAME.
sshd_start() {
	local d=$T/$1 port=$2
	mkdir -p "$d" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" </dev/null
	# sshd keeps the first value it reads: the extras come first.
	cat >"$d/sshd_config" <<EOC
${GW_SSHD_EXTRA:-}
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $T/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding no
AcceptEnv LANG LC_* GWTEST_*
Subsystem sftp internal-sftp
LogLevel ERROR
MaxStartups 200:30:300
MaxSessions 100
EOC
	/usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || return 1
	on_exit "kill \$(cat '$d/sshd.pid') 2>/dev/null"
	local i
	for i in $(seq 50); do
		[ -s "$d/sshd.pid" ] && break
		sleep 0.1
	done
}

gw_env_setup() {
	[ -n "${T:-}" ] || setup_tmp
	chmod 755 "$T" "$T/state"
	gw_dev_user || return 1
	UPORT=$(free_port)
	GPORT=$(free_port)
	conf_set gateway user nobody
	conf_set gateway pam_service ''
	ssh-keygen -q -t ed25519 -N '' -C alice@test -f "$T/alice" </dev/null
	ssh-keygen -q -t ed25519 -N '' -C bob@test -f "$T/bob" </dev/null
	ssh-keygen -q -t ed25519 -N '' -C stranger -f "$T/stranger" </dev/null
	"$PRISONCTL" gateway-key >"$T/authorized_keys" || return 1
	chmod 644 "$T/authorized_keys"
	sshd_start upstream "$UPORT" || return 1
	"$PRISONCTL" user add alice &&
	"$PRISONCTL" user key add alice "$(cat "$T/alice.pub")" &&
	"$PRISONCTL" user add bob &&
	"$PRISONCTL" user key add bob "$(cat "$T/bob.pub")" &&
	"$PRISONCTL" project add proja --upstream "127.0.0.1:$UPORT" \
	    --dev-user "$DEVUSER" --member alice >/dev/null || return 1
	SSHOPTS=(-F /dev/null -o UserKnownHostsFile="$T/client_known_hosts"
	    -o StrictHostKeyChecking=accept-new -o BatchMode=yes
	    -o IdentitiesOnly=yes -o LogLevel=ERROR -p "$GPORT")
}

gw_start() {
	"$GATEWAY" -f -l "127.0.0.1:$GPORT" "$@" >>"$T/gw.log" 2>&1 &
	GWPID=$!
	on_exit "kill $GWPID 2>/dev/null"
	local i
	for i in $(seq 100); do
		nc -z 127.0.0.1 "$GPORT" 2>/dev/null && return 0
		kill -0 "$GWPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

gw_stop() {
	kill "$GWPID" 2>/dev/null
	wait "$GWPID" 2>/dev/null
}

# gssh KEY [ssh args...]: ssh through the gateway as project proja.
gssh() {
	local key=$1; shift
	timeout "${GW_TIMEOUT:-60}" ssh "${SSHOPTS[@]}" -i "$T/$key" \
	    proja@127.0.0.1 "$@"
}

# gw_no_crash: no session process of this test's gateways died of a
# signal (the listener logs each one).  Call it last.
gw_no_crash() {
	sleep 1
	check_fails "no gateway session process died of a signal" \
	    grep -q 'killed by signal' "$T/gw.log"
}
