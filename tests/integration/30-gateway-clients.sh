#!/usr/bin/env bash
# Real clients through prison-gateway: OpenSSH scp (legacy and sftp
# modes) and sftp, PuTTY plink and pscp, dropbear dbclient; ssh-audit
# finds nothing to fail on the gateway's algorithms.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/helpers/gw_env.sh"
need_root
need_cmd sshd ssh scp sftp ssh-keygen nc python3
[ -x "$GATEWAY" ] || { echo "needs $GATEWAY (make)"; exit 77; }

setup_tmp
gw_env_setup >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; exit 1; }
gw_start || { cat "$T/gw.log"; exit 1; }
SCPOPTS=(-F /dev/null -o UserKnownHostsFile="$T/client_known_hosts"
    -o StrictHostKeyChecking=accept-new -o BatchMode=yes
    -o IdentitiesOnly=yes -o LogLevel=ERROR -P "$GPORT" -i "$T/alice")
REMOTE=$(mktemp -d /tmp/prison-gw-remote.XXXXXX)
chown "$DEVUSER" "$REMOTE"
on_exit "rm -rf '$REMOTE'"
head -c 5M /dev/urandom >"$T/file"
sum=$(sha256sum <"$T/file" | cut -d' ' -f1)
rsum() { sha256sum <"$1" | cut -d' ' -f1; }

# --- OpenSSH --------------------------------------------------------
timeout 60 scp -O "${SCPOPTS[@]}" "$T/file" "proja@127.0.0.1:$REMOTE/o1"
expect_eq "scp -O upload" "$sum" "$(rsum "$REMOTE/o1")"
timeout 60 scp -O "${SCPOPTS[@]}" "proja@127.0.0.1:$REMOTE/o1" "$T/o1.back"
expect_eq "scp -O download" "$sum" "$(rsum "$T/o1.back")"
timeout 60 scp "${SCPOPTS[@]}" "$T/file" "proja@127.0.0.1:$REMOTE/s1"
expect_eq "scp (sftp mode) upload" "$sum" "$(rsum "$REMOTE/s1")"
timeout 60 scp "${SCPOPTS[@]}" "proja@127.0.0.1:$REMOTE/s1" "$T/s1.back"
expect_eq "scp (sftp mode) download" "$sum" "$(rsum "$T/s1.back")"
printf 'put %s %s/sf\nget %s/sf %s/sf.back\nls %s\n' "$T/file" "$REMOTE" \
    "$REMOTE" "$T" "$REMOTE" >"$T/batch"
out=$(timeout 60 sftp "${SCPOPTS[@]}" -b "$T/batch" proja@127.0.0.1 2>&1)
expect_eq "sftp put/get" "$sum $sum" \
    "$(rsum "$REMOTE/sf") $(rsum "$T/sf.back" 2>/dev/null)"
expect_match "sftp ls" "$REMOTE/sf" "$out"

# --- git and rsync over ssh ----------------------------------------
GSSH="ssh ${SCPOPTS[*]/-P/-p}"
if command -v git >/dev/null; then
	git init -q --bare "$REMOTE/repo.git" && chown -R "$DEVUSER" "$REMOTE"
	mkdir "$T/work" && (cd "$T/work" && git init -q &&
	    echo hello >f && git add f &&
	    git -c user.name=t -c user.email=t@t commit -qm one) &&
	(cd "$T/work" && GIT_SSH_COMMAND="$GSSH" timeout 60 git push -q \
	    "proja@127.0.0.1:$REMOTE/repo.git" HEAD:refs/heads/main 2>&1)
	GIT_SSH_COMMAND="$GSSH" timeout 60 git clone -q -b main \
	    "proja@127.0.0.1:$REMOTE/repo.git" "$T/clone" 2>&1
	expect_eq "git push and clone over the gateway" hello \
	    "$(cat "$T/clone/f" 2>/dev/null)"
else
	skip "git" "not installed"
fi
if command -v rsync >/dev/null; then
	timeout 60 rsync -a -e "$GSSH" "$T/file" \
	    "proja@127.0.0.1:$REMOTE/r1" 2>&1
	expect_eq "rsync -e ssh" "$sum" "$(rsum "$REMOTE/r1" 2>/dev/null)"
else
	skip "rsync" "not installed"
fi

# --- PuTTY ----------------------------------------------------------
if command -v plink >/dev/null && command -v puttygen >/dev/null; then
	puttygen "$T/alice" -O private -o "$T/alice.ppk" 2>/dev/null
	hk=$(ssh-keygen -lf "$T/etc/ssh_host_ed25519_key.pub" -E sha256 |
	    awk '{print $2}')
	PL=(-batch -P "$GPORT" -i "$T/alice.ppk" -hostkey "$hk" -l proja)
	out=$(timeout 60 plink "${PL[@]}" 127.0.0.1 'echo via-plink; exit 5' \
	    </dev/null); rc=$?
	expect_eq "plink: output" via-plink "$out"
	expect_eq "plink: exit status" 5 "$rc"
	# PuTTY closes once both sides sent EOF, often before the server's
	# exit status: the status must still arrive, every time.
	bad=0
	for i in $(seq 15); do
		timeout 60 plink "${PL[@]}" 127.0.0.1 'exit 3' </dev/null
		[ $? -eq 3 ] || bad=$((bad + 1))
	done
	expect_eq "plink: exit status arrives in 15 of 15 runs" 0 "$bad"
	out=$(echo piped | timeout 60 plink "${PL[@]}" 127.0.0.1 cat)
	expect_eq "plink: stdin" piped "$out"
	timeout 60 pscp -batch -P "$GPORT" -i "$T/alice.ppk" -hostkey "$hk" \
	    "$T/file" "proja@127.0.0.1:$REMOTE/p1" >/dev/null
	expect_eq "pscp upload" "$sum" "$(rsum "$REMOTE/p1")"
	timeout 60 pscp -batch -P "$GPORT" -i "$T/alice.ppk" -hostkey "$hk" \
	    "proja@127.0.0.1:$REMOTE/p1" "$T/p1.back" >/dev/null
	expect_eq "pscp download" "$sum" "$(rsum "$T/p1.back")"
	puttygen "$T/bob" -O private -o "$T/bob.ppk" 2>/dev/null
	timeout 60 plink -batch -P "$GPORT" -i "$T/bob.ppk" -hostkey "$hk" \
	    -l proja 127.0.0.1 true </dev/null >/dev/null 2>&1
	check "plink: non-member refused" [ $? -ne 0 ]
else
	skip "PuTTY" "plink/puttygen not installed"
fi

# --- dropbear -------------------------------------------------------
if command -v dbclient >/dev/null && command -v dropbearconvert >/dev/null
then
	dropbearconvert openssh dropbear "$T/alice" "$T/alice.db" \
	    >/dev/null 2>&1
	export HOME=$T		# dbclient -y records the host key here
	out=$(timeout 60 dbclient -y -i "$T/alice.db" -p "$GPORT" \
	    proja@127.0.0.1 'echo via-dropbear; exit 4' </dev/null 2>"$T/db.err")
	rc=$?
	expect_eq "dbclient: output" via-dropbear "$out"
	expect_eq "dbclient: exit status" 4 "$rc"
	out=$(echo piped | timeout 60 dbclient -y -i "$T/alice.db" \
	    -p "$GPORT" proja@127.0.0.1 cat 2>>"$T/db.err")
	expect_eq "dbclient: stdin" piped "$out"
else
	skip "dropbear" "dbclient not installed"
fi

# --- ssh-audit ------------------------------------------------------
if command -v ssh-audit >/dev/null; then
	timeout 120 ssh-audit -n -p "$GPORT" 127.0.0.1 >"$T/audit" 2>&1
	rc=$?
	fails=$(grep -E '^\(.*\) .*-- \[fail\]' "$T/audit" | head -5)
	expect_eq "ssh-audit: no failures" "" "$fails"
	check "ssh-audit: exit status shows no failure ($rc)" [ $rc -ne 3 ]
	expect_match "ssh-audit: strict kex extension or modern kex" \
	    'curve25519-sha256' "$(cat "$T/audit")"
	check_fails "ssh-audit: no ssh-rsa (SHA-1) host key algorithm" \
	    grep -qE '^\(key\) ssh-rsa ' "$T/audit"
else
	skip "ssh-audit" "not installed"
fi

gw_no_crash
