#!/usr/bin/env bash
# Guest image: prisonctl image build/path, the manifest, what the rootfs
# holds, and one real boot on qemu's microvm (TCG) against a stand-in
# metadata server: network from the kernel command line, MMDS V2 token
# protocol, dev user, keys, pinned host key, env file, bootstrap scripts,
# and a revoked key leaving the guest within 60 seconds.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd qemu-system-x86_64 debugfs python3 ssh ssh-keygen mmdebstrap
setup_tmp

imgroot=$("$TOP/tests/guest-image.sh") || {
	not_ok "tests/guest-image.sh builds the default image"
	exit 1
}
ok "tests/guest-image.sh builds or reuses the default image"
img=$imgroot/debian
"$TOP/tests/guest-image.sh" >"$T/gi1" 2>/dev/null & p1=$!
"$TOP/tests/guest-image.sh" >"$T/gi2" 2>/dev/null & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
expect_eq "two concurrent guest-image.sh runs succeed with one image" \
    "0 0 $imgroot $imgroot" "$r1 $r2 $(cat "$T/gi1") $(cat "$T/gi2")"
conf_set paths image_dir "$imgroot"
ctl() { "$PRISONCTL" "$@"; }

# --- manifest ---------------------------------------------------------
manifest_check() {
	python3 - "$img" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
bad = []
for k in ("name", "release", "builder", "packages", "kernel_version",
          "build_time", "files", "recipe"):
    if k not in m:
        bad.append("missing " + k)
if m.get("release") != "bookworm" or m.get("name") != "debian":
    bad.append("release/name %r/%r" % (m.get("release"), m.get("name")))
for p in ("openssh-server", "linux-image-amd64", "libcurl4", "libjansson4"):
    if p not in m.get("packages", []):
        bad.append("package %s not listed" % p)
for f in ("rootfs.ext4", "vmlinuz", "initrd.img"):
    if f not in m.get("files", {}):
        bad.append("file %s not listed" % f)
for f, e in m.get("files", {}).items():
    p = os.path.join(d, f)
    h = hashlib.sha256()
    with open(p, "rb") as fp:
        for b in iter(lambda: fp.read(1 << 20), b""):
            h.update(b)
    if h.hexdigest() != e["sha256"] or os.path.getsize(p) != e["size"]:
        bad.append("%s: sha256/size differ from the manifest" % f)
print("\n".join("# " + b for b in bad))
sys.exit(1 if bad else 0)
PY
}
check "manifest has release, packages, kernel, files; sha256 and sizes match" \
    manifest_check
kver=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["kernel_version"])' "$img/manifest.json")
expect_match "kernel version recorded" '^[0-9]+\.[0-9]+' "$kver"
if [ -f "$img/vmlinux" ]; then
	expect_match "vmlinux for Firecracker is an ELF kernel" '^.ELF' \
	    "$(head -c 4 "$img/vmlinux")"
else
	skip "vmlinux for Firecracker" "not extracted on this host"
fi

# --- prisonctl image ----------------------------------------------------
out=$(ctl image build 2>&1); rc=$?
expect_eq "cached image: build exits 0" 0 "$rc"
expect_match "cached image: says it is already built" "already built" "$out"
out=$(ctl image path 2>&1)
expect_match "image path names kernel, initrd, rootfs" \
    "kernel $img/vmlinuz.*initrd $img/initrd.img.*rootfs $img/rootfs.ext4" \
    "$(echo $out)"
expect_match "image list shows the image, release and kernel" \
    "^debian +bookworm +mmdebstrap +$kver " "$(ctl image list | grep '^debian')"
out=$(ctl image path nosuch 2>&1); rc=$?
expect_eq "image path of a missing image fails" 1 "$rc"
expect_match "missing image: error names the fix" \
    'image "nosuch" is not built .*prisonctl image build nosuch' "$out"
out=$(ctl image build 'Bad/Name' 2>&1)
expect_match "bad image name refused" 'invalid image name "Bad/Name"' "$out"
out=$(ctl image build --frobnicate 2>&1); rc=$?
expect_eq "unknown option: usage status" 2 "$rc"
out=$(ctl image build --release 2>&1)
expect_match "--release without a value refused" "--release needs a value" \
    "$out"
out=$(ctl image build --builder yum 2>&1)
expect_match "unknown builder refused" 'unknown builder "yum"' "$out"
out=$(ctl image build --packages 'vim,-oops' 2>&1)
expect_match "option-like package name refused" \
    'invalid package name "-oops"' "$out"

# --force really rebuilds, and a failed rebuild leaves the old image
# whole: work on hard links of the image in a private image_dir.
mkdir -p "$T/images/debian"
for f in "$img"/*; do
	ln "$f" "$T/images/debian/" 2>/dev/null ||
	    cp --sparse=always "$f" "$T/images/debian/"
done
sum_before=$(sha256sum "$T/images/debian/manifest.json")
mkdir -p "$T/images/.debian.build.abandoned/root/etc"
cat >"$T/force.conf" <<EOC
[paths]
state_dir = $T/state
run_dir = $T/run
config_dir = $T/etc
libexec_dir = $BUILD
image_dir = $T/images
EOC
out=$("$PRISONCTL" -c "$T/force.conf" image build --force \
    --mirror file:///nonexistent/mirror 2>&1); rc=$?
expect_eq "--force rebuilds (this one fails on a bad mirror)" 1 "$rc"
expect_match "failed build says which step failed" "mmdebstrap failed" "$out"
expect_eq "failed rebuild leaves the old image untouched" "$sum_before" \
    "$(sha256sum "$T/images/debian/manifest.json")"
expect_eq "abandoned and failed builds leave no temporary directory" "" \
    "$(ls -A "$T/images" | grep '^\.debian\.build\.' || true)"

# --- inside the rootfs (read-only debugfs) ----------------------------
rootfs=$img/rootfs.ext4
dcat() { debugfs -R "cat $1" "$rootfs" 2>/dev/null; }
sshd=$(dcat /etc/ssh/sshd_config.d/00-prison.conf)
expect_match "sshd: no passwords" '(^|\n)PasswordAuthentication no' "$sshd"
expect_match "sshd: no keyboard-interactive" 'KbdInteractiveAuthentication no' \
    "$sshd"
expect_match "sshd: no root logins" 'PermitRootLogin no' "$sshd"
expect_match "sshd_config includes the fragment first" \
    '^Include /etc/ssh/sshd_config.d/\*.conf' \
    "$(dcat /etc/ssh/sshd_config | grep -v '^#' | grep -v '^$' | head -1)"
expect_match "root is locked" '^root:!' "$(dcat /etc/shadow | grep '^root:')"
expect_eq "no ssh host keys baked in" "" \
    "$(debugfs -R 'ls /etc/ssh' "$rootfs" 2>/dev/null |
    grep -o 'ssh_host_[a-z0-9_.]*' || true)"
expect_match "agent installed, mode 0755" 'Mode: +0755' \
    "$(debugfs -R 'stat /usr/local/sbin/prison-guest' "$rootfs" 2>/dev/null)"
wants=$(debugfs -R 'ls /etc/systemd/system/multi-user.target.wants' \
    "$rootfs" 2>/dev/null)
expect_match "prison-guest.service enabled" 'prison-guest.service' "$wants"
expect_match "ssh enabled" 'ssh.service' "$wants"
expect_match "refresh timer enabled" 'prison-guest-refresh.timer' \
    "$(debugfs -R 'ls /etc/systemd/system/timers.target.wants' \
    "$rootfs" 2>/dev/null)"
expect_match "fstab mounts /dev/vda as /" '^/dev/vda[[:space:]]+/[[:space:]]' \
    "$(dcat /etc/fstab)"

# --- one real boot ------------------------------------------------------
host_ip=172.31.255.253 guest_ip=172.31.255.254 mmds=169.254.169.254
ns_add vm
in_ns vm ip tuntap add tap0 mode tap
in_ns vm ip addr add $host_ip/30 dev tap0
in_ns vm ip addr add $mmds/32 dev tap0
in_ns vm ip link set tap0 up

ssh-keygen -q -t ed25519 -N '' -C member1 -f "$T/key1"
ssh-keygen -q -t ed25519 -N '' -C member2 -f "$T/key2"
ssh-keygen -q -t ed25519 -N '' -C guesthost -f "$T/hostkey"
ssh-keygen -q -t ed25519 -N '' -C other -f "$T/otherkey"
# doc.py KEYS...: the metadata document with those member keys.
cat >"$T/doc.py" <<'PY'
import json, sys
T = sys.argv[1]
rd = lambda p: open(p).read()
doc = {"prison": {
    "project": "t", "hostname": "tguest", "dev_user": "dev",
    "work_dir": "/home/dev/work",
    "repo": "http://172.31.255.253:8080/repo.git", "ref": "v1",
    "authorized_keys": [rd(T + "/" + k + ".pub").strip() for k in sys.argv[2:]],
    "gateway_key": 'from="172.31.255.253" ' + rd(T + "/otherkey.pub").strip(),
    "ssh_host_key": {"private": rd(T + "/hostkey"),
                     "public": rd(T + "/hostkey.pub").strip()},
    "bootstrap": [
        {"name": "10-first",
         "script": "#!/bin/sh\necho first >>/var/tmp/order\n"},
        {"name": "20-broken",
         "script": "#!/bin/sh\necho broken >>/var/tmp/order\nexit 3\n"},
        {"name": "30-third",
         "script": "echo third >>/var/tmp/order\n"
                   "printf '%s' \"$GREETING\" >/var/tmp/greeting\n"}],
    "env": {"GREETING": "it's a \"test\" $HOME"}}}
tmp = T + "/doc.json.tmp"
json.dump(doc, open(tmp, "w"))
import os; os.rename(tmp, T + "/doc.json")
PY
python3 "$T/doc.py" "$T" key1 key2

# A stand-in for the provisioner's metadata server: MMDS V2 tokens.  The
# first token it hands out is already expired, so the agent must cope
# with a 401 by asking for a new one.  (The test's own tokenless GET
# comes first in its log.)
cat >"$T/mmds.py" <<'PY'
import http.server, json, secrets, sys, time
DOC, LOG = sys.argv[1], open(sys.argv[2], "a", buffering=1)
tokens = {}
issued = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, fmt, *a):
        LOG.write((fmt % a) + "\n")
    def reply(self, code, body, ctype="text/plain"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        ttl = self.headers.get("X-metadata-token-ttl-seconds", "")
        if self.path != "/latest/api/token" or not ttl.isdigit() \
                or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "bad token request")
        t = secrets.token_hex(16)
        issued[0] += 1
        tokens[t] = time.time() + (int(ttl) if issued[0] > 1 else -1)
        self.reply(200, t)
    def do_GET(self):
        t = self.headers.get("X-metadata-token")
        if not t or tokens.get(t, 0) < time.time():
            return self.reply(401, "unauthorized")
        node = json.load(open(DOC))
        for part in [p for p in self.path.split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                return self.reply(404, "not found")
            node = node[part]
        self.reply(200, json.dumps(node), "application/json")
http.server.ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
PY
in_ns vm python3 "$T/mmds.py" "$T/doc.json" "$T/mmds.log" &

# The project's repository, served over git's dumb HTTP protocol from the
# host side; the guest must clone it and check out tag v1.
gitq() { git -c user.name=t -c user.email=t@t -c init.defaultBranch=main \
    -C "$T/src" "$@" >/dev/null; }
mkdir -p "$T/src" "$T/www"
gitq init -q .
echo v1 >"$T/src/hello"; gitq add hello; gitq commit -q -m v1; gitq tag v1
echo v2 >"$T/src/hello"; gitq commit -q -am v2
git clone -q --bare "$T/src" "$T/www/repo.git"
git -C "$T/www/repo.git" update-server-info
in_ns vm python3 -m http.server -d "$T/www" -b $host_ip 8080 \
    >/dev/null 2>&1 &
sleep 1
expect_eq "metadata double refuses a GET without token" 401 \
    "$(in_ns vm curl -s -o /dev/null -w '%{http_code}' http://$mmds/prison)"

cp --sparse=always "$rootfs" "$T/disk.ext4"
# tsc_early_khz: under TCG on a busy host the kernel's TSC calibration
# against the PIT can fail, and without a TSC rate microvm's kernel waits
# for ticks forever; a fixed rate keeps the boot going.
append="console=ttyS0 root=/dev/vda rw tsc_early_khz=2000000"
append="$append prison.ip=$guest_ip/30 prison.gw=$host_ip"
append="$append prison.mmds=$mmds prison.project=t"
boot_start=$(date +%s)
in_ns vm qemu-system-x86_64 -M microvm,rtc=on -accel tcg -m 1024 -smp 1 \
    -nodefaults -no-user-config -display none \
    -serial "file:$T/console.log" \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$append" \
    -drive id=d0,file="$T/disk.ext4",format=raw,if=none \
    -device virtio-blk-device,drive=d0 \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    -device virtio-net-device,netdev=n0,mac=52:54:00:12:34:56 \
    -pidfile "$T/qemu.pid" -daemonize
on_exit "kill \$(cat '$T/qemu.pid')"

printf '%s %s\n' "$guest_ip" "$(cut -d' ' -f1,2 "$T/hostkey.pub")" \
    >"$T/known_hosts"
printf '%s %s\n' "$guest_ip" "$(cut -d' ' -f1,2 "$T/otherkey.pub")" \
    >"$T/wrong_known_hosts"
gssh() {	# KEY USER COMMAND...
	local key=$1 user=$2; shift 2
	in_ns vm ssh -i "$T/$key" -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o UserKnownHostsFile="$T/known_hosts" \
	    -o StrictHostKeyChecking=yes -o ConnectTimeout=10 \
	    "$user@$guest_ip" "$@"
}
up=0
for _ in $(seq 1 120); do
	if gssh key1 dev true 2>/dev/null; then up=1; break; fi
	sleep 3
done
boot_secs=$(( $(date +%s) - boot_start ))
echo "# guest reachable over ssh after ${boot_secs}s"
if [ $up != 1 ]; then
	not_ok "guest boots and accepts the member's key"
	echo "# console:"; tail -n 40 "$T/console.log" | sed 's/^/#   /'
	exit 1
fi
ok "guest boots; ssh -i key dev@guest works with the delivered host key pinned"
check_fails "a known_hosts with another key is refused (host key is pinned)" \
    in_ns vm ssh -i "$T/key1" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$T/wrong_known_hosts" \
    -o StrictHostKeyChecking=yes -o ConnectTimeout=10 dev@$guest_ip true
expect_match "guest configured its address from the command line" \
    "inet $guest_ip/30" "$(gssh key1 dev ip -4 addr show eth0)"
expect_match "default route via the host side" "default via $host_ip" \
    "$(gssh key1 dev ip route)"
expect_eq "hostname from metadata" tguest "$(gssh key1 dev hostname)"
check_fails "root login refused" in_ns vm ssh -i "$T/key1" \
    -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes \
    root@$guest_ip true
methods=$(in_ns vm ssh -v -o BatchMode=yes -o PreferredAuthentications=none \
    -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes \
    dev@$guest_ip true 2>&1 | grep 'Authentications that can continue' |
    head -1 | tr -d '\r')
expect_match "only publickey is offered (no password login)" \
    'can continue: publickey$' "$methods"
eff=$(gssh key1 dev sudo -n /usr/sbin/sshd -T 2>/dev/null)
expect_match "effective sshd: passwordauthentication no" \
    'passwordauthentication no' "$eff"
expect_match "effective sshd: permitrootlogin no" 'permitrootlogin no' "$eff"
expect_match "dev has passwordless sudo; its password is locked" '^dev:!' \
    "$(gssh key1 dev sudo -n getent shadow dev)"
env_file=$(gssh key1 dev cat /etc/prison/project.env)
expect_match "project.env: PRISON_PROJECT" "PRISON_PROJECT='t'" "$env_file"
expect_match "project.env: PRISON_DEV_USER" "PRISON_DEV_USER='dev'" "$env_file"
expect_match "project.env: PRISON_WORK_DIR" \
    "PRISON_WORK_DIR='/home/dev/work'" "$env_file"
expect_eq "project.env is valid sh and keeps quotes" \
    "it's a \"test\" \$HOME" \
    "$(gssh key1 dev 'set -a; . /etc/prison/project.env;
    printf %s "$GREETING"')"
expect_eq "login shells get the project env" "t" \
    "$(gssh key1 dev bash -lc "'echo \$PRISON_PROJECT'")"
keys=$(gssh key1 dev cat .ssh/authorized_keys)
expect_match "authorized_keys has the gateway key with from=" \
    "^from=\"$host_ip\" ssh-ed25519 .* other$" "$(echo "$keys" | grep from=)"
expect_eq "authorized_keys owner and mode" "dev:600" \
    "$(gssh key1 dev stat -c %U:%a .ssh/authorized_keys)"
for _ in $(seq 1 60); do
	gssh key1 dev sudo -n test -e /var/lib/prison-guest/bootstrapped &&
	    break
	sleep 2
done
order=$(gssh key1 dev cat /var/tmp/order)
expect_eq "bootstrap scripts ran in order, past the failing one" \
    "first broken third" "$(echo $order)"
expect_eq "bootstrap scripts get the project env" "it's a \"test\" \$HOME" \
    "$(gssh key1 dev cat /var/tmp/greeting)"
blog=$(gssh key1 dev sudo -n cat /var/log/prison-bootstrap.log)
expect_match "bootstrap log records the failing script" \
    "bootstrap 20-broken: exit 3" "$blog"
expect_eq "repository cloned into work_dir at the requested ref" v1 \
    "$(gssh key1 dev cat work/hello)"
check "the clone belongs to the dev user" gssh key1 dev test -O work/.git
gssh key1 dev sudo -n /usr/local/sbin/prison-guest bootstrap
expect_eq "bootstrap scripts run only once" "first broken third" \
    "$(echo $(gssh key1 dev cat /var/tmp/order))"

# Revoke key2: gone from the guest within 60 seconds.
check "second member's key works before revocation" gssh key2 dev true
python3 "$T/doc.py" "$T" key1
revoked_at=$(date +%s) gone=0
while [ $(( $(date +%s) - revoked_at )) -lt 75 ]; do
	if ! gssh key2 dev true 2>/dev/null; then gone=1; break; fi
	sleep 2
done
secs=$(( $(date +%s) - revoked_at ))
echo "# revoked key refused after ${secs}s"
if [ $gone = 1 ] && [ $secs -le 60 ]; then
	ok "revoked key refused within 60s (${secs}s)"
else
	not_ok "revoked key refused within 60s (gone=$gone after ${secs}s)"
fi
check "remaining member's key still works" gssh key1 dev true
check "agent fetched metadata with a token" \
    grep -q '"GET /prison HTTP/1.1" 200' "$T/mmds.log"
expect_eq "after a 401 the agent took a new token and retried" \
    "GET 401,PUT 200,GET 401,PUT 200,GET 200" \
    "$(sed -n 's/^"\([A-Z]*\) [^"]*" \([0-9]*\) .*/\1 \2/p' "$T/mmds.log" |
    head -5 | paste -sd,)"
