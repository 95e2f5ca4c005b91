#!/usr/bin/env bash
# Channels beyond exec through prison-gateway: ssh -L (direct-tcpip),
# ssh -R (tcpip-forward + forwarded-tcpip), window changes reaching the
# remote pty, agent forwarding refused by default and relayed when
# enabled, X11 refused.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh ssh-keygen ssh-agent ssh-add nc python3 curl tmux
[ -x "$GATEWAY" ] || { echo "needs $GATEWAY (make)"; exit 77; }

setup_tmp
GW_SSHD_EXTRA="X11Forwarding yes" gw_env_setup >"$T/setup.log" 2>&1 ||
    { cat "$T/setup.log"; exit 1; }
# alice may log in to the upstream directly too, for the X11 control.
cat "$T/alice.pub" >>"$T/authorized_keys"
gw_start || { cat "$T/gw.log"; exit 1; }
REMOTE=$(mktemp -d /tmp/prison-gw-remote.XXXXXX)
chmod 777 "$REMOTE"
on_exit "rm -rf '$REMOTE'"

# A small web server on loopback to forward to.
mkdir "$T/www"
echo "forwarded-ok" >"$T/www/probe"
HP=$(free_port)
(cd "$T/www" && exec python3 -m http.server -b 127.0.0.1 "$HP") \
    >/dev/null 2>&1 &
on_exit "kill $!"
for i in $(seq 50); do nc -z 127.0.0.1 "$HP" && break; sleep 0.1; done

# --- ssh -L ---------------------------------------------------------
LP=$(free_port)
gssh alice -o ExitOnForwardFailure=yes -L "$LP:127.0.0.1:$HP" 'sleep 8' &
lpid=$!
for i in $(seq 50); do nc -z 127.0.0.1 "$LP" 2>/dev/null && break; sleep 0.1; done
out=$(curl -s --max-time 10 "http://127.0.0.1:$LP/probe")
expect_eq "ssh -L: direct-tcpip through the gateway" forwarded-ok "$out"
out=$(for i in 1 2 3 4 5; do curl -s --max-time 10 \
    "http://127.0.0.1:$LP/probe"; done | sort -u)
expect_eq "ssh -L: several connections in a row" forwarded-ok "$out"
kill $lpid 2>/dev/null; wait $lpid 2>/dev/null

# --- ssh -R ---------------------------------------------------------
RP=$(free_port)
out=$(gssh alice -o ExitOnForwardFailure=yes -R "$RP:127.0.0.1:$HP" \
    "curl -s --max-time 10 http://127.0.0.1:$RP/probe")
expect_eq "ssh -R: forwarded-tcpip back to the client" forwarded-ok "$out"
# ssh reports the port the server chose at LogLevel INFO; the listener
# is the upstream sshd's, on this host's loopback.
timeout 60 ssh -F /dev/null -o UserKnownHostsFile="$T/client_known_hosts" \
    -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=INFO \
    -o ExitOnForwardFailure=yes -p "$GPORT" -i "$T/alice" \
    -R "0:127.0.0.1:$HP" proja@127.0.0.1 'sleep 6' 2>"$T/r0.err" &
rpid=$!
wait_until 100 grep -q 'Allocated port' "$T/r0.err"
ap=$(sed -n 's/.*Allocated port \([0-9]*\) .*/\1/p' "$T/r0.err")
check "ssh -R 0: the allocated port is reported (${ap:-none})" \
    [ -n "$ap" ]
out=$(curl -s --max-time 10 "http://127.0.0.1:${ap:-1}/probe")
expect_eq "ssh -R 0: the allocated port forwards" forwarded-ok "$out"
wait "$rpid"

# --- window change --------------------------------------------------
tmux -L "gw$$" new-session -d -s gw -x 100 -y 30 \
    "ssh ${SSHOPTS[*]} -i $T/alice -tt proja@127.0.0.1"
on_exit "tmux -L gw$$ kill-server"
sleep 3
tmux -L "gw$$" send-keys -t gw "stty size > $REMOTE/size1" Enter
sleep 1
tmux -L "gw$$" resize-window -t gw -x 120 -y 40 2>/dev/null ||
    tmux -L "gw$$" resize-pane -t gw -x 120 -y 40
sleep 1
tmux -L "gw$$" send-keys -t gw "stty size > $REMOTE/size2" Enter
sleep 1
tmux -L "gw$$" send-keys -t gw "exit" Enter
expect_eq "pty: initial size from pty-req" "30 100" \
    "$(cat "$REMOTE/size1" 2>/dev/null)"
expect_eq "pty: stty size follows a window change" "40 120" \
    "$(cat "$REMOTE/size2" 2>/dev/null)"

# --- agent and X11 --------------------------------------------------
eval "$(ssh-agent -s)" >/dev/null
on_exit "kill $SSH_AGENT_PID"
ssh-add "$T/alice" 2>/dev/null
out=$(gssh alice -A 'echo ${SSH_AUTH_SOCK:-none}'); rc=$?
expect_eq "agent forwarding refused by default" none "$out"
expect_eq "session still works after the refusal" 0 "$rc"
# The upstream sshd forwards X11 (GW_SSHD_EXTRA above), as a direct login
# shows, so a refusal through the gateway is the gateway's own.
out=$(DISPLAY=:99 timeout 60 ssh -F /dev/null -o BatchMode=yes \
    -o UserKnownHostsFile="$T/up_known_hosts" \
    -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes \
    -o LogLevel=ERROR -i "$T/alice" -p "$UPORT" -X \
    -o ForwardX11Trusted=yes "$DEVUSER@127.0.0.1" 'echo ${DISPLAY:-none}' \
    2>/dev/null)
expect_match "X11: the upstream itself forwards it (direct: $out)" \
    '^localhost:[0-9]+' "$out"
out=$(DISPLAY=:99 gssh alice -X -o ForwardX11Trusted=yes \
    'echo ${DISPLAY:-none}' 2>/dev/null); rc=$?
expect_eq "X11 forwarding refused by the gateway" none "$out"
expect_eq "X11: the session goes on after the refusal" 0 "$rc"

# The project's own policy wins over the gateway's, from the next login.
"$PRISONCTL" project set proja --agent-forwarding allow >/dev/null
out=$(gssh alice -A 'ssh-add -l' 2>&1)
expect_match "agent forwarding: a project that allows it gets it" \
    'alice@test' "$out"
check_fails "agent forwarding: a bad policy value is refused" \
    "$PRISONCTL" project set proja --agent-forwarding maybe
expect_match "agent forwarding: project show names the policy" \
    '^agent: +allow' "$("$PRISONCTL" project show proja)"

gw_stop
conf_set gateway agent_forwarding yes
gw_start || { cat "$T/gw.log"; exit 1; }
"$PRISONCTL" project set proja --agent-forwarding deny >/dev/null
out=$(gssh alice -A 'echo ${SSH_AUTH_SOCK:-none}')
expect_eq "agent forwarding: a project that denies it is refused" none "$out"
"$PRISONCTL" project set proja --agent-forwarding default >/dev/null
out=$(gssh alice -A 'ssh-add -l' 2>&1)
expect_match "agent forwarding relayed when enabled" 'alice@test' "$out"

gw_no_crash
