#!/usr/bin/env bash
# prisonctl user/project/keys end to end: real ssh-keygen keys of every
# type, fingerprints compared with `ssh-keygen -lf`, bad input, concurrent
# writers, writers killed mid-write, corrupt registries, provisioner refresh.
. "$(dirname "$0")/../lib.sh"
need_cmd ssh-keygen python3 cmp
P=${PRISONCTL_TEST_BIN:-$PRISONCTL}
[ -x "$P" ] || { echo "needs $P (make)"; exit 77; }
setup_tmp
REG=$T/state/registry.json
K=$T/keys
mkdir -p "$K"

# run CMD...: sets $out, $errout and $rc
run() {
	"$P" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	out=$(cat "$T/out")
	errout=$(cat "$T/err")
}
# fails DESC REGEX CMD...: must exit non-zero with one stderr line matching
fails() {
	local d=$1 re=$2
	shift 2
	run "$@"
	if [ $rc -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
	    grep -qE -- "$re" "$T/err"; then
		ok "$d"
	else
		not_ok "$d"
		echo "#   rc=$rc stderr: $errout"
	fi
}
fp_of() { ssh-keygen -lf "$1" | awk '{print $2}'; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- usage: errors are one line on stderr, --help is the full list
fails "no command: one line, non-zero" 'no command given'
fails "unknown command: one line, non-zero" \
    "unknown command 'frob' \(see prisonctl --help\)" frob x
fails "unknown option: one line, non-zero" "unknown option '-z'" -z user list
run --help
expect_eq "--help: exit status 0" 0 "$rc"
expect_match "--help: full usage on stdout" \
    '^usage: prisonctl .* user add.* project add' "$(echo $out)"
expect_eq "--help: nothing on stderr" "" "$errout"

# ---- users
run user add alice; expect_eq "user add alice" 0 "$rc"
run user add bob; expect_eq "user add bob" 0 "$rc"
fails "duplicate user refused" 'already exists' user add alice
fails "upper-case name refused" 'lower-case' user add Alice
fails "name starting with digit refused" 'start with' user add 1abc
fails "name ending in - refused" "end in" user add abc-
fails "33-byte name refused" 'longer than 32' user add \
    abcdefghijklmnopqrstuvwxyz0123456
fails "empty name refused" 'empty' user add ''
fails "unknown user subcommand" 'usage' user frobnicate x

# ---- keys of every type, fingerprints byte-identical to ssh-keygen
for spec in ed25519 ecdsa:256 ecdsa:384 ecdsa:521 rsa:2048 rsa:3072; do
	t=${spec%%:*} b=${spec#*:}
	f=$K/id_${t}_${b}
	if [ "$t" = "$spec" ]; then
		ssh-keygen -q -t "$t" -N '' -C "alice $spec key" -f "$f"
	else
		ssh-keygen -q -t "$t" -b "$b" -N '' -C "alice $spec key" -f "$f"
	fi
	run user key add alice -f "$f.pub"
	expect_eq "$spec: printed fingerprint = ssh-keygen -lf" \
	    "$(fp_of "$f.pub")" "$out"
done
# FIDO keys need a token to generate; build their public halves.
python3 - "$K" <<'PY'
import base64, os, struct, sys
d = sys.argv[1]
s = lambda b: struct.pack(">I", len(b)) + b
blob = s(b"sk-ssh-ed25519@openssh.com") + s(os.urandom(32)) + s(b"ssh:")
open(d + "/sk_ed.pub", "w").write("sk-ssh-ed25519@openssh.com %s fido ed\n"
    % base64.b64encode(blob).decode())
ec = base64.b64decode(open(d + "/id_ecdsa_256.pub").read().split()[1])
def rd(b, o):
	n = struct.unpack(">I", b[o:o + 4])[0]
	return b[o + 4:o + 4 + n], o + 4 + n
_, o = rd(ec, 0); curve, o = rd(ec, o); q, o = rd(ec, o)
blob = s(b"sk-ecdsa-sha2-nistp256@openssh.com") + s(curve) + s(q) + s(b"ssh:")
open(d + "/sk_ec.pub", "w").write(
    "sk-ecdsa-sha2-nistp256@openssh.com %s fido ec\n"
    % base64.b64encode(blob).decode())
PY
for f in sk_ed sk_ec; do
	run user key add bob -f "$K/$f.pub"
	expect_eq "$f: FIDO key accepted, fingerprint = ssh-keygen -lf" \
	    "$(fp_of "$K/$f.pub")" "$out"
done
run user key list alice
expect_eq "key list shows all six keys" 6 "$(printf '%s\n' "$out" | wc -l)"
check "key list: type, fingerprint, comment" grep -qxF \
    "ssh-ed25519 $(fp_of "$K/id_ed25519_ed25519.pub") alice ed25519 key" \
    "$T/out"
run user key list alice --json
expect_eq "key list --json" "$(fp_of "$K/id_rsa_3072.pub")" \
    "$(printf '%s' "$out" | jq_py 'd[5]["fingerprint"]')"

# RFC 4716 via ssh-keygen -e, from stdin, LF and CRLF.
ssh-keygen -q -t ed25519 -N '' -C carol -f "$K/carol"
ssh-keygen -q -t rsa -b 2048 -N '' -C carol2 -f "$K/carol2"
run user add carol
{ ssh-keygen -e -f "$K/carol.pub"; ssh-keygen -e -f "$K/carol2.pub" |
    sed 's/$/\r/'; } >"$K/carol.rfc"
"$P" user key add carol -f - <"$K/carol.rfc" >"$T/out" 2>"$T/err"
expect_eq "RFC 4716 (LF + CRLF) from stdin" \
    "$(fp_of "$K/carol.pub") $(fp_of "$K/carol2.pub")" \
    "$(tr '\n' ' ' <"$T/out" | sed 's/ $//')"
# A single pasted line with a BOM, CRLF and surrounding blanks.
ssh-keygen -q -t ed25519 -N '' -C 'dave at home' -f "$K/dave"
run user add dave
run user key add dave "$(printf '\xef\xbb\xbf  %s \r\n' "$(cat "$K/dave.pub")")"
expect_eq "pasted line with BOM/CRLF/blanks" "$(fp_of "$K/dave.pub")" "$out"
run user key list dave
expect_match "comment with spaces kept" ' dave at home$' "$out"

# ---- refusals change nothing
cp "$REG" "$T/before"
unchanged() { check "$1: registry unchanged" cmp -s "$REG" "$T/before"; }

ssh-keygen -q -t ed25519 -N '' -f "$K/secret"
run user key add bob -f "$K/secret"
secret_line=$(sed -n 2p "$K/secret")
expect_match "private key file refused" 'PRIVATE key' "$errout"
check_fails "private material not echoed" grep -qF -- "$secret_line" \
    "$T/out" "$T/err"
run user key add bob "$(cat "$K/secret")"
expect_match "private key pasted as KEYLINE refused" 'PRIVATE key' "$errout"
check_fails "private material not echoed (KEYLINE)" grep -qF -- \
    "$secret_line" "$T/out" "$T/err"
unchanged "private keys"

fails "key of another user refused" 'registered to user "alice"' \
    user key add bob -f "$K/id_ed25519_ed25519.pub"
fails "key registered twice to the same user refused" \
    'already registered to alice' \
    user key add alice -f "$K/id_ecdsa_384.pub"
ssh-keygen -q -t rsa -b 1024 -N '' -f "$K/small" 2>/dev/null
fails "RSA 1024 refused" 'RSA key of 1024 bits' user key add bob -f \
    "$K/small.pub"
if ssh-keygen -q -t dsa -N '' -f "$K/dsa" 2>/dev/null; then
	fails "DSA refused" 'DSA' user key add bob -f "$K/dsa.pub"
else
	skip "DSA refused" "this ssh-keygen cannot make DSA keys"
fi
ssh-keygen -q -t ed25519 -N '' -C new -f "$K/new"
{ cat "$K/new.pub"; echo; echo "ssh-ed25519 AAAA!!!! broken"; } >"$K/mixed"
fails "one bad line refuses the file, naming the line" \
    'line 3: the key data is not valid base64' user key add bob -f "$K/mixed"
blob_ed=$(cut -d' ' -f2 "$K/new.pub")
fails "type disagreeing with blob refused" 'holds a ssh-ed25519' \
    user key add bob "ssh-rsa $blob_ed"
fails "truncated blob refused" 'damaged|truncated|base64' \
    user key add bob "ssh-ed25519 ${blob_ed:0:40}"
fails "unknown type refused" 'unknown key type "ssh-foo"' \
    user key add bob "ssh-foo $blob_ed"
fails "authorized_keys options refused" 'options' \
    user key add bob "from=\"10.0.0.1\" $(cat "$K/new.pub")"
fails "key for unknown user refused" 'no user "zed"' \
    user key add zed -f "$K/new.pub"
fails "missing key file" 'No such file' user key add bob -f "$K/nope"
unchanged "refused keys"

# ---- key del, disable
fp_new=$(fp_of "$K/new.pub")
run user key add bob -f "$K/new.pub"
run user key del bob "$fp_new"; expect_eq "key del" 0 "$rc"
fails "key del of an absent key" 'has no key' user key del bob "$fp_new"

# ---- projects
run project add proja --member alice --member bob --ssh-port 2201 \
    --vcpus 2 --mem-mib 1024 --image debian --repo https://git.example/x.git \
    --ref main --dev-user work --egress deny
expect_eq "project add with every option" 0 "$rc"
run project show proja --json
expect_eq "project show --json" \
    "['alice', 'bob'] 2201 2 1024 debian https://git.example/x.git main work deny None" \
    "$(printf '%s' "$out" | jq_py '" ".join(str(d[k]) for k in
      ["members","ssh_port","vcpus","mem_mib","image","repo","ref",
       "dev_user","egress","upstream"])')"
run project add projb --upstream '[::1]:2222' --member carol
expect_eq "project with IPv6 upstream" 0 "$rc"
run project add projc --upstream 'git.example.org:22'
expect_eq "project with host:port upstream" 0 "$rc"
run project add projd --upstream '192.0.2.1:22'
expect_eq "project with IPv4 upstream" 0 "$rc"
cp "$REG" "$T/before"
fails "reserved project name" 'reserved' project add root
fails "reserved project name sshd" 'reserved' project add sshd
fails "duplicate project" 'already exists' project add proja
fails "port in use by another project" 'already used by project "proja"' \
    project add p1 --ssh-port 2201
fails "port 0 on add" 'not a number from 1 to 65535' project add p1 \
    --ssh-port 0
fails "port 65536" 'from 1 to 65535' project add p1 --ssh-port 65536
fails "port not a number" 'not a number' project add p1 --ssh-port 22x
fails "privileged port" '1024 or above' project add p1 \
    --ssh-port 443
fails "vcpus 0" 'vcpus' project add p1 --vcpus 0
fails "vcpus 65" 'vcpus' project add p1 --vcpus 65
fails "mem too small" 'mem-mib' project add p1 --mem-mib 16
fails "mem below what boots" 'mem-mib' project add p1 --mem-mib 255
fails "bad dev-user" 'dev-user' project add p1 --dev-user 'Bad'
fails "dev-user root" 'system account' project add p1 --dev-user root
fails "unknown member" 'no user "ghost"' project add p1 --member ghost
fails "empty repo" 'must not be empty' project add p1 --repo ''
fails "repo with spaces" 'spaces' project add p1 --repo 'a b'
fails "egress maybe" 'allow or deny' project add p1 --egress maybe
fails "upstream without port" 'HOST:PORT' project add p1 --upstream host
fails "upstream bad port" 'upstream port' project add p1 --upstream h:0
fails "upstream bare IPv6" 'not a host name' project add p1 \
    --upstream '::1:22'
fails "upstream bad IPv6" 'not an IPv6 address' project add p1 \
    --upstream '[zz::1]:22'
fails "unknown option" 'unknown option' project add p1 --cpus 2
fails "option without value" 'needs a value' project add p1 --vcpus
fails "unknown option without value" 'unknown option "--bogus"' \
    project add p1 --bogus
fails "option in the name's place" 'project name comes first' \
    project add --vcpus 2
fails "the VMM user's name is reserved" 'reserved' project add prison-vm
fails "set on missing project" 'no project "nope"' project set nope --vcpus 1
fails "set without options" 'nothing to change' project set proja
unchanged "refused project changes"

run project set proja --vcpus 4 --ssh-port none --member alice
run project show proja --json
expect_eq "project set replaces given fields only" "4 0 ['alice'] deny" \
    "$(printf '%s' "$out" | jq_py '" ".join(str(d[k]) for k in
      ["vcpus","ssh_port","members","egress"])')"
run project grant proja bob; expect_eq "grant" 0 "$rc"
fails "grant twice" 'already a member' project grant proja bob
fails "grant unknown user" 'no user' project grant proja ghost
run project revoke proja bob; expect_eq "revoke" 0 "$rc"
fails "revoke non-member" 'not a member' project revoke proja bob
run project grant proja bob
run project list
expect_eq "project list" 4 "$(printf '%s\n' "$out" | wc -l)"
run project list --json
expect_eq "project list --json" "proja projb projc projd" \
    "$(printf '%s' "$out" | jq_py '" ".join(p["name"] for p in d)')"
run user list --json
expect_eq "user list --json" "alice bob carol dave" \
    "$(printf '%s' "$out" | jq_py '" ".join(u["name"] for u in d)')"
run project reset proja
check_fails "project reset is dispatched, not a usage error" \
    grep -q 'usage: project' "$T/err"

# ---- keys authorized
run keys authorized proja
printf '%s\n' "$out" >"$T/ak"
expect_eq "authorized: alice's 6 + bob's 2 keys" 8 "$(wc -l <"$T/ak")"
check "authorized: every line starts with restrict,pty" \
    test "$(grep -c '^restrict,pty ' "$T/ak")" = 8
# ssh-keygen reads authorized_keys lines with options.
expect_eq "authorized lines parse, fingerprints match" \
    "$(for f in "$K"/id_*.pub "$K"/sk_e[dc].pub; do fp_of "$f"; done | sort)" \
    "$(ssh-keygen -lf "$T/ak" | awk '{print $2}' | sort)"
run user disable bob
run keys authorized proja
expect_eq "disabled developer's keys left out" 6 \
    "$(printf '%s\n' "$out" | wc -l)"
run user list
expect_match "user list shows disabled" 'bob .*disabled' "$out"
run user enable bob
run keys authorized proja
expect_eq "enabled again" 8 "$(printf '%s\n' "$out" | wc -l)"
fails "authorized for unknown project" 'no project' keys authorized nope

# ---- deletions
run user del bob
run project show proja --json
expect_eq "user del removes memberships" "['alice']" \
    "$(printf '%s' "$out" | jq_py 'd["members"]')"
run project del projd; expect_eq "project del" 0 "$rc"
fails "project del twice" 'no project' project del projd
fails "user del unknown" 'no user' user del bob

# ---- the provisioner is told (and its absence is silent)
run project set projc --vcpus 2
expect_eq "no provisioner: silent success" "0:" "$rc:$errout"
python3 - "$T/run/provisioner.sock" "$T/seen" <<'PY' &
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
open(sys.argv[2] + ".ready", "w").close()
for _ in range(2):
	c, _ = s.accept()
	line = c.makefile().readline()
	open(sys.argv[2], "a").write(line)
	c.sendall(b'{"ok":true}\n'); c.close()
PY
fakepid=$!
on_exit "kill $fakepid"
for _ in $(seq 50); do [ -e "$T/seen.ready" ] && break; sleep 0.1; done
run project set projc --vcpus 3
run user disable carol
wait $fakepid
expect_eq "refresh sent with the project, then without" \
    "refresh/projc refresh/-" \
    "$(python3 -c 'import json,sys
print(" ".join(d["op"] + "/" + d.get("project", "-") for d in
    map(json.loads, open(sys.argv[1]))))' "$T/seen")"
rm -f "$T/run/provisioner.sock"

# ---- concurrent writers never lose an update
for i in $(seq 1 20); do
	"$P" project add "par$i" --ssh-port $((3000 + i)) >/dev/null 2>&1 &
	"$P" user add "u$i" >/dev/null 2>&1 &
done
wait
run project list --json
expect_eq "20 parallel project adds all present" 20 \
    "$(printf '%s' "$out" | jq_py 'len([p for p in d if p["name"].startswith("par")])')"
run user list --json
expect_eq "20 parallel user adds all present" 20 \
    "$(printf '%s' "$out" | jq_py 'len([u for u in d if u["name"].startswith("u")])')"

# ---- kill -9 at random moments: old or new, never torn
# Pad the registry with 3000 developers so each write takes long enough
# to be interrupted often.  Loads check every key, so these are
# well-formed ed25519 keys with their true fingerprints.
python3 - "$REG" <<'PY'
import base64, hashlib, json, os, struct, sys
def s(b): return struct.pack(">I", len(b)) + b
d = json.load(open(sys.argv[1]))
for i in range(3000):
	blob = s(b"ssh-ed25519") + s(os.urandom(32))
	fp = base64.b64encode(hashlib.sha256(blob).digest()).decode()
	d["users"].append({"name": "pad%d" % i, "disabled": False, "keys": [{
	    "type": "ssh-ed25519", "blob": base64.b64encode(blob).decode(),
	    "comment": "padding", "fingerprint": "SHA256:" + fp.rstrip("=")}]})
json.dump(d, open(sys.argv[1] + ".new", "w"))
os.rename(sys.argv[1] + ".new", sys.argv[1])
PY
vcpus_of_par1() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert len(d["users"]) > 3000
print([p["vcpus"] for p in d["projects"] if p["name"]=="par1"][0])' "$REG" \
	    2>/dev/null || echo torn
}
# A kill counts as mid-write when it left a temporary file that was not
# there before.  At least 60 rounds, more (up to 300) until one landed
# mid-write: rounds that all miss the write prove nothing.  The write
# comes last, after reading and checking the registry, so kills fall
# between half and 1.1 times what one whole run takes here: before the
# write, during it, and after.
tmps() { ls "$T/state" | grep '\.tmp\.' | sort; }
t0=$(date +%s%N)
"$P" project set par1 --vcpus 1 >/dev/null 2>&1
span=$(( ($(date +%s%N) - t0) / 1000 ))
[ "$span" -gt 0 ] || span=100000
bad=0 midwrite=0 landed=0 i=0
while [ $i -lt 60 ] || { [ $midwrite -eq 0 ] && [ $i -lt 300 ]; }; do
	i=$((i + 1))
	before=$(tmps)
	old=$(vcpus_of_par1)
	new=$(( i % 60 + 1 ))
	[ "$new" = "$old" ] && new=$(( new % 60 + 1 ))
	"$P" project set par1 --vcpus $new >/dev/null 2>&1 &
	pid=$!
	us=$(( span / 2 + (RANDOM * 32768 + RANDOM) % (span * 6 / 10 + 1) ))
	sleep "$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	now=$(vcpus_of_par1)
	[ -n "$(comm -13 <(echo "$before") <(tmps))" ] &&
	    midwrite=$((midwrite + 1))
	[ "$now" = "$new" ] && landed=$((landed + 1))
	if [ "$now" != "$old" ] && [ "$now" != "$new" ]; then
		bad=$((bad + 1))
		echo "# round $i: was $old, set $new, found $now"
	fi
done
expect_eq "kill -9 during writes: always old or new ($i rounds, \
$midwrite killed with a temporary file, $landed completed)" 0 "$bad"
check "kill -9 during writes: some kill landed mid-write" \
    test "$midwrite" -gt 0
# Deterministic kills at each step of the write with strace's fault
# injection: the first write to the temporary file, its fsync, the rename,
# and the directory fsync after the rename.
if command -v strace >/dev/null 2>&1; then
	for at in write:1:old fsync:1:old rename:1:old fsync:2:new; do
		IFS=: read -r sc when want <<<"$at"
		old=$(vcpus_of_par1)
		new=$(( old % 60 + 1 ))
		scs=$sc
		[ "$sc" = rename ] && scs=rename,renameat,renameat2
		strace -f -o /dev/null -e trace="$scs" \
		    -e inject="$scs":signal=KILL:when="$when" \
		    "$P" project set par1 --vcpus "$new" >/dev/null 2>&1
		now=$(vcpus_of_par1)
		[ "$want" = old ] && want=$old || want=$new
		expect_eq "killed at $sc #$when: registry holds the $([ \
		    "$want" = "$old" ] && echo old || echo new) value" \
		    "$want" "$now"
		[ "$sc" = rename ] && check "killed before rename: its \
temporary file is left behind" test -n "$(ls "$T/state" | grep '\.tmp\.')"
	done
else
	skip "kills at each write step" "needs strace"
fi
run project list
expect_eq "prisonctl still reads it" 0 "$rc"
run user add after-kill
expect_eq "writes still work after kills (lock released)" 0 "$rc"
expect_eq "orphaned temporary files removed by the next write" "" \
    "$(ls "$T/state" | grep '\.tmp\.' || true)"

# ---- corrupt or future registries are refused and left alone
for bad_doc in '{"version":1,"users":[' '{"version":2,"users":[],"projects":[]}' \
    '{"version":1,"users":{}}' '[1,2]'; do
	printf '%s' "$bad_doc" >"$REG"
	cp "$REG" "$T/before"
	fails "refused: $bad_doc" "$REG" user add zz
	fails "list refused too: $bad_doc" "$REG" project list
	unchanged "$bad_doc"
done
printf '{"version":2,"users":[],"projects":[]}' >"$REG"
fails "unknown version named" 'unsupported version 2' user list
# A hand-edited key: checked on load as when it was added.
blob=$(cut -d' ' -f2 "$K/new.pub")
for key in "ssh-rsa $blob $(fp_of "$K/new.pub")" \
    "ssh-ed25519 ${blob:0:40} $(fp_of "$K/new.pub")" \
    "ssh-ed25519 $blob SHA256:wrong"; do
	set -- $key
	printf '{"version":1,"users":[{"name":"kim","keys":[{"type":"%s",'\
'"blob":"%s","fingerprint":"%s"}]}]}' "$1" "$2" "$3" >"$REG"
	cp "$REG" "$T/before"
	fails "bad key refused, naming file and user: $1 ${2:0:20}... $3" \
	    "$REG: users\[0\]\.keys\[0\] \(user kim\): .*will not overwrite" \
	    user add zz
	unchanged "bad key $1 ${2:0:20}... $3"
done

# ---- a fresh install: state_dir does not exist yet
printf '[paths]\nstate_dir = %s\nrun_dir = %s\n' "$T/fresh/state" "$T/run" \
    >"$T/fresh.conf"
PRISON_CONFIG=$T/fresh.conf "$P" user add first >/dev/null 2>"$T/err"
rc=$?
expect_eq "first change creates state_dir and the registry (mode 644)" \
    "0 644" "$rc $(stat -c %a "$T/fresh/state/registry.json" 2>&1)"
