#!/usr/bin/env bash
# The Firecracker driver against a strict double of the jailer and the
# Firecracker API (tests/helpers/fc_double.py, checked against
# tests/data/firecracker-api.yaml), driven by tests/helpers/fc_drive.
# Firecracker itself cannot run here; docs/firecracker.md says what this
# covers and what only a real host shows.
. "$(dirname "$0")/../lib.sh"
need_root
need_cmd python3 curl ip
python3 -c 'import yaml' 2>/dev/null || { echo "needs python3-yaml"; exit 77; }
setup_tmp

FC_DRIVE=${FC_DRIVE:-$BUILD/helpers/fc_drive}
DOUBLE=$TOP/tests/helpers/fc_double.py
SPEC=$TOP/tests/data/firecracker-api.yaml
VUID=40123 VGID=40124
LOG=$T/requests.log
JAIL=$T/state/jail
MAC=06:00:ac:1f:00:02
pids=()

mkdir -p "$T/bin" "$T/img" "$T/state/disks" "$T/state/vms"
ln -s "$DOUBLE" "$T/bin/jailer"
ln -s "$DOUBLE" "$T/bin/firecracker"
conf_set provisioner jailer_binary "$T/bin/jailer"
conf_set provisioner firecracker_binary "$T/bin/firecracker"
conf_set provisioner jailer_chroot "$JAIL"

double_conf() {	# extra JSON members for fc_double.json
	printf '{"spec": "%s", "log": "%s"%s}\n' "$SPEC" "$LOG" "${1:+, $1}" \
	    >"$T/bin/fc_double.json"
}
double_conf ""

# A fake image: an ELF header is all the double's InstanceStart checks.
{ printf '\177ELF'; head -c 4092 /dev/zero; } >"$T/img/vmlinux"
printf 'bzImage' >"$T/img/vmlinuz"
printf 'initrd' >"$T/img/initrd.img"
chmod 0644 "$T/img/"*

ns_add host || { echo "cannot create a network namespace"; exit 1; }
# TAPs the jailed uid may open (owner/group as the network layer sets).
in_ns host ip tuntap add dev tap-proja mode tap user $VUID group $VGID
in_ns host ip tuntap add dev tap-projb mode tap user $VUID group $VGID
in_ns host ip tuntap add dev tap-noown mode tap

on_exit 'for p in "${pids[@]}"; do kill -9 "$p"; done'

mkproject() {	# NAME: a disk and a vm_dir
	truncate -s 16M "$T/state/disks/$1.ext4"
	mkdir -p "$T/state/vms/$1"
}

drive() { in_ns host "$FC_DRIVE" "$@"; }

start_vm() {	# PROJECT TAP [extra fc_drive args]: prints fc_drive output
	local p=$1 tap=$2; shift 2
	drive start -p "$p" -d "$T/state/vms/$p" -t "$tap" -m "$MAC" \
	    -k "$T/img/vmlinuz" -i "$T/img/initrd.img" \
	    -D "$T/state/disks/$p.ext4" -u $VUID -g $VGID "$@"
}

# Requests the double accepted, as "METHOD PATH" lines.
accepted() {
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("status") == 204: print(e["method"], e["path"])' "$LOG"
}
# The body of the last accepted METHOD PATH, as compact sorted JSON.
body_of() {
	python3 -c 'import json,sys
b = None
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("status") == 204 and [e["method"], e["path"]] == sys.argv[2:4]:
        b = e.get("body")
print(json.dumps(b, sort_keys=True, separators=(",", ":")))' "$LOG" "$1" "$2"
}
jailer_argv() {
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if "jailer" in e: a = e["jailer"]
print(",".join(a))' "$LOG"
}
# A process is gone when absent or a zombie (its parent, fc_drive, exited).
gone() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}
jcompact() { python3 -c 'import json,sys
print(json.dumps(json.loads(sys.argv[1]), sort_keys=True, separators=(",", ":")))' "$1"; }

if [ ! -x "$FC_DRIVE" ]; then
	not_ok "fc_drive helper is built ($FC_DRIVE)"
	exit 1
fi

# ---- a full start
mkproject proja
echo 'persist-me' | dd of="$T/state/disks/proja.ext4" conv=notrunc 2>/dev/null
cat >"$T/mmds1.json" <<'EOF'
{"prison":{"project":"proja","dev_user":"dev","env":{"A":"1","B":"2"},
 "authorized_keys":["ssh-ed25519 AAAAC3 alice@x"]}}
EOF
out=$(start_vm proja tap-proja -c 2 -M 512 -j "$T/mmds1.json" \
    -a "prison.ip=172.31.0.2/30 prison.project=proja" 2>&1)
check "start through the jailer succeeds ($out)" \
    grep -q '^pid=[0-9]* socket=' <<<"$out"
pid=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$out")
[ -n "$pid" ] && pids+=("$pid")
root=$JAIL/firecracker/prison-proja/root
expect_eq "API socket is inside the jail" \
    "socket=$root/run/firecracker.socket" "$(grep -o 'socket=.*' <<<"$out")"

argv=,$(jailer_argv),
# One line, arguments between commas: each pattern must match in order.
expect_match "jailer gets --id from the project" ',--id,prison-proja,' \
    "$argv"
expect_match "jailer gets the exec file, uid and gid" \
    ",--exec-file,$T/bin/firecracker,--uid,$VUID,--gid,$VGID," "$argv"
expect_match "jailer uses cgroup v2" ',--cgroup-version,2,' "$argv"
expect_match "cpu.max: 2 vCPUs plus a quarter CPU" \
    ',--cgroup,cpu.max=225000 100000,' "$argv"
expect_match "memory.max: 512 MiB plus overhead" \
    ",--cgroup,memory.max=$(( (512 + 64 + 32) * 1048576 ))," "$argv"
expect_match "jailer gets the chroot base" ",--chroot-base-dir,$JAIL," \
    "$argv"
expect_match "firecracker args follow --, nothing else" \
    ',--,--api-sock,/run/firecracker.socket,--http-api-max-payload-size,524288,$' \
    "$argv"
check_fails "jailer is not asked to daemonize or fork" \
    grep -qE ',--(daemonize|new-pid-ns),' <<<"$argv"

expect_eq "configuration requests in order, InstanceStart last" \
"PUT /logger
PUT /machine-config
PUT /boot-source
PUT /drives/rootfs
PUT /network-interfaces/eth0
PUT /mmds/config
PUT /mmds
PUT /actions" "$(accepted)"
expect_eq "machine-config body" '{"mem_size_mib":512,"vcpu_count":2}' \
    "$(body_of PUT /machine-config)"
bs=$(body_of PUT /boot-source)
expect_match "boot-source uses the jailed vmlinux and initrd" \
    '"initrd_path":"/initrd.img","kernel_image_path":"/vmlinux"' "$bs"
expect_match "boot_args: console, root disk, then the prison arguments" \
    '"boot_args":"console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw prison.ip=172.31.0.2/30 prison.project=proja"' \
    "$bs"
expect_eq "drive body" \
    '{"drive_id":"rootfs","is_read_only":false,"is_root_device":true,"path_on_host":"/rootfs.ext4"}' \
    "$(body_of PUT /drives/rootfs)"
expect_eq "network interface body" \
    "{\"guest_mac\":\"$MAC\",\"host_dev_name\":\"tap-proja\",\"iface_id\":\"eth0\"}" \
    "$(body_of PUT /network-interfaces/eth0)"
expect_eq "mmds/config body: V2 on eth0 at 169.254.169.254" \
    '{"ipv4_address":"169.254.169.254","network_interfaces":["eth0"],"version":"V2"}' \
    "$(body_of PUT /mmds/config)"
expect_eq "mmds body is the metadata document" \
    "$(jcompact "$(cat "$T/mmds1.json")")" "$(body_of PUT /mmds)"
expect_eq "actions body" '{"action_type":"InstanceStart"}' \
    "$(body_of PUT /actions)"
expect_eq "logger writes to a file in the jail" \
    '{"level":"Info","log_path":"/firecracker.log","show_level":true}' \
    "$(body_of PUT /logger)"

expect_eq "jailed disk is the project's disk (same inode)" \
    "$(stat -c %i "$T/state/disks/proja.ext4")" \
    "$(stat -c %i "$root/rootfs.ext4" 2>&1)"
expect_eq "disk belongs to the VM's uid:gid" "$VUID:$VGID" \
    "$(stat -c %u:%g "$T/state/disks/proja.ext4")"
check "exec file copied into the jail" test -x "$root/firecracker"
check "firecracker log lives in vm_dir" \
    test "$(stat -c %i "$T/state/vms/proja/firecracker.log")" = \
    "$(stat -c %i "$root/firecracker.log" 2>/dev/null)"
expect_eq "alive: running" 1 "$(drive alive -p proja 2>&1)"

# ---- metadata update: PATCH replaces the document, dropped keys go
cat >"$T/mmds2.json" <<'EOF'
{"prison":{"project":"proja","dev_user":"dev","env":{"A":"9"},
 "authorized_keys":[]}}
EOF
check "mmds update succeeds" drive mmds -p proja -j "$T/mmds2.json"
expect_eq "update is a PATCH /mmds" "PATCH /mmds" "$(accepted | tail -n 1)"
expect_eq "PATCH nulls the dropped key" \
    '{"prison":{"authorized_keys":[],"env":{"A":"9","B":null}}}' \
    "$(body_of PATCH /mmds)"
got=$(curl -s --unix-socket "$root/run/firecracker.socket" \
    http://localhost/mmds)
expect_eq "MMDS now holds exactly the new document" \
    "$(jcompact "$(cat "$T/mmds2.json")")" "$(jcompact "$got")"

python3 -c 'import json
print(json.dumps({"prison": {"project": "proja", "bootstrap":
    [{"name": "10-big", "script": "#" * 100000}]}}))' >"$T/mmds3.json"
check "a 100 KB metadata document fits the raised API limit" \
    drive mmds -p proja -j "$T/mmds3.json"

# ---- the double refuses what Firecracker refuses after InstanceStart
fcurl() {	# SOCKET METHOD PATH [BODY]: prints "STATUS BODY"
	local s=$1 m=$2 p=$3 b=${4-}
	if [ -n "$b" ]; then
		curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$s" \
		    -X "$m" -H 'Content-Type: application/json' -d "$b" \
		    "http://localhost$p"
	else
		curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$s" \
		    -X "$m" "http://localhost$p"
	fi
	printf ' %s\n' "$(cat "$T/resp")"
}
S=$root/run/firecracker.socket
expect_match "machine-config after start: 400" \
    '^400 .*not supported after starting' \
    "$(fcurl "$S" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}')"
expect_match "a second InstanceStart: 400" '^400 ' \
    "$(fcurl "$S" PUT /actions '{"action_type":"InstanceStart"}')"
expect_match "network-interfaces after start: 400" '^400 ' \
    "$(fcurl "$S" PUT /network-interfaces/eth1 \
    '{"iface_id":"eth1","host_dev_name":"tap-projb"}')"

# ---- stop: Ctrl-Alt-Del, the VMM exits, the jail goes, the disk stays
t0=$(date +%s)
check "stop succeeds" drive stop -p proja -T 10
t1=$(date +%s)
expect_eq "stop sent SendCtrlAltDel" '{"action_type":"SendCtrlAltDel"}' \
    "$(body_of PUT /actions)"
check "stop did not wait for the timeout" test $((t1 - t0)) -lt 8
check "Firecracker process is gone" gone "$pid"
check_fails "jail directory removed" test -e "$JAIL/firecracker/prison-proja"
expect_eq "project disk kept with its data" persist-me \
    "$(head -c 10 "$T/state/disks/proja.ext4")"
expect_eq "alive after stop: 0" 0 "$(drive alive -p proja 2>/dev/null)"

# ---- a guest that ignores Ctrl-Alt-Del is killed after the timeout
double_conf '"ignore_ctrlaltdel": true'
mkproject projb
out=$(start_vm projb tap-projb 2>&1)
check "start projb ($out)" grep -q '^pid=' <<<"$out"
pid=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$out")
[ -n "$pid" ] && pids+=("$pid")
t0=$(date +%s)
check "stop succeeds by killing" drive stop -p projb -T 2
t1=$(date +%s)
check "stop waited the 2 s timeout before killing" test $((t1 - t0)) -ge 2
check "ignoring Firecracker was killed" gone "$pid"
check_fails "its jail is removed" test -e "$JAIL/firecracker/prison-projb"
double_conf ""

# ---- a VMM whose pidfile is gone (its provisioner was killed while
# starting it) is found by its --id and console, and can be killed
mkproject projd
out=$(start_vm projd tap-projb 2>&1)
check "start projd ($out)" grep -q '^pid=' <<<"$out"
pid=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$out")
[ -n "$pid" ] && pids+=("$pid")
rm -f "$JAIL/firecracker/prison-projd/prison.pid"
expect_eq "adopt finds the VMM without its pidfile" 1 \
    "$(drive alive -p projd -d "$T/state/vms/projd" 2>&1)"
expect_eq "another project's orphans are not this one's" 0 \
    "$(drive orphans -p proja -d "$T/state/vms/proja" 2>&1)"
expect_eq "kill_orphans kills the unrecorded VMM" 1 \
    "$(drive orphans -p projd -d "$T/state/vms/projd" 2>/dev/null)"
check "the unrecorded Firecracker is gone" gone "$pid"
check_fails "its jail is removed" test -e "$JAIL/firecracker/prison-projd"
expect_eq "nothing left to kill" 0 \
    "$(drive orphans -p projd -d "$T/state/vms/projd" 2>&1)"

# ---- a refused request: the error names it and gives the fault
double_conf '"fail": {"PUT /drives/rootfs": "injected: drive refused"}'
mkproject projc
err=$(start_vm projc tap-projb 2>&1)
check_fails "start fails when a request is refused" \
    grep -q '^pid=' <<<"$err"
expect_match "error names the request and Firecracker's fault" \
    'PUT /drives/rootfs: Firecracker answered 400: injected: drive refused' \
    "$err"
check_fails "no jail left behind" test -e "$JAIL/firecracker/prison-projc"
double_conf ""

# ---- a TAP the jailed uid may not open is refused
err=$(start_vm projc tap-noown 2>&1)
expect_match "TAP without owner: the double refuses it like the kernel" \
    'PUT /network-interfaces/eth0: Firecracker answered 400: .*Operation not permitted' \
    "$err"

# ---- no vmlinux: clear message, nothing launched
mkdir -p "$T/img2"
cp "$T/img/vmlinuz" "$T/img2/vmlinuz"
n0=$(grep -c jailer "$LOG")
err=$(drive start -p projc -d "$T/state/vms/projc" -t tap-projb -m "$MAC" \
    -k "$T/img2/vmlinuz" -D "$T/state/disks/projc.ext4" -u $VUID \
    -g $VGID 2>&1)
expect_match "missing vmlinux is named" \
    'Firecracker needs an uncompressed ELF kernel \(vmlinux\) but .*img2/vmlinux' \
    "$err"
expect_eq "jailer not started without a kernel" "$n0" \
    "$(grep -c jailer "$LOG")"
err=$(drive start -p projc -d "$T/state/vms/projc" -t tap-projb -m "$MAC" \
    -k "$T/img/vmlinux" -D "$T/state/disks/projc.ext4" -u 0 -g 0 2>&1)
expect_match "refuses to jail Firecracker as root" 'as root' "$err"

# ---- the jailer refuses to start: the error quotes its reason
ln -s "$DOUBLE" "$T/bin/vmm"
cp "$T/prison.conf" "$T/prison2.conf"
printf '\n[provisioner]\nfirecracker_binary = %s\n' "$T/bin/vmm" \
    >>"$T/prison2.conf"
err=$(PRISON_CONFIG=$T/prison2.conf start_vm projc tap-projb 2>&1)
expect_match "jailer's refusal is quoted in the error" \
    'jailer exited before the Firecracker API came up: .*must contain "firecracker"' \
    "$err"
check_fails "no jail left after the jailer failed" \
    test -e "$JAIL/vmm/prison-projc"

# ---- the double itself is strict
J2=$T/jail2
jail() { "$T/bin/jailer" "$@" >>"$T/jailer.out" 2>&1; }
check_fails "jailer refuses an id with '_'" jail --id bad_id \
    --exec-file "$T/bin/firecracker" --uid 1 --gid 1 --chroot-base-dir "$J2"
check_fails "jailer refuses an id over 64 bytes" \
    jail --id "$(printf 'a%.0s' $(seq 65))" \
    --exec-file "$T/bin/firecracker" --uid 1 --gid 1 --chroot-base-dir "$J2"
check_fails "jailer requires --uid" jail --id ok-1 \
    --exec-file "$T/bin/firecracker" --gid 1 --chroot-base-dir "$J2"
check_fails "jailer refuses an exec file not named firecracker" \
    jail --id ok-1 --exec-file "$T/bin/vmm" --uid 1 --gid 1 \
    --chroot-base-dir "$J2"
check_fails "jailer refuses a missing exec file" jail --id ok-1 \
    --exec-file "$T/bin/firecracker-none" --uid 1 --gid 1 \
    --chroot-base-dir "$J2"
check_fails "jailer refuses a cgroup without file=value" jail --id ok-1 \
    --exec-file "$T/bin/firecracker" --uid 1 --gid 1 \
    --chroot-base-dir "$J2" --cgroup-version 2 --cgroup cpumax
check_fails "jailer refuses a malformed cpu.max" jail --id ok-1 \
    --exec-file "$T/bin/firecracker" --uid 1 --gid 1 \
    --chroot-base-dir "$J2" --cgroup-version 2 --cgroup 'cpu.max=lots'
check_fails "jailer refuses a relative chroot base" jail --id ok-1 \
    --exec-file "$T/bin/firecracker" --uid 1 --gid 1 \
    --chroot-base-dir jail

R2=$J2/firecracker/strict-1/root
mkdir -p "$R2/run"
chown $VUID:$VGID "$R2/run"
cp "$T/img/vmlinux" "$R2/vmlinux"
"$T/bin/jailer" --id strict-1 --exec-file "$T/bin/firecracker" \
    --uid $VUID --gid $VGID --chroot-base-dir "$J2" -- \
    --api-sock /run/firecracker.socket >>"$T/jailer.out" 2>&1 &
pids+=($!)
S2=$R2/run/firecracker.socket
for _ in $(seq 100); do [ -S "$S2" ] && break; sleep 0.1; done
check "double serves its API inside the jail" test -S "$S2"
expect_match "unknown field: 400" "^400 .*unknown field \`bogus\`" \
    "$(fcurl "$S2" PUT /machine-config \
    '{"vcpu_count":1,"mem_size_mib":128,"bogus":1}')"
expect_match "wrong type: 400" '^400 .*expected an integer' \
    "$(fcurl "$S2" PUT /machine-config '{"vcpu_count":"1","mem_size_mib":128}')"
expect_match "missing required field: 400" '^400 .*missing field `mem_size_mib`' \
    "$(fcurl "$S2" PUT /machine-config '{"vcpu_count":1}')"
expect_match "vcpu_count 33: 400" '^400 ' \
    "$(fcurl "$S2" PUT /machine-config '{"vcpu_count":33,"mem_size_mib":128}')"
expect_match "mem_size_mib 0: 400" '^400 .*memory size' \
    "$(fcurl "$S2" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":0}')"
expect_match "bad enum: 400" '^400 .*unknown variant' \
    "$(fcurl "$S2" PUT /mmds/config '{"network_interfaces":["eth0"],"version":"V3"}')"
expect_match "mmds/config naming no interface: 400" \
    '^400 .*does not correspond to any existing network interface' \
    "$(fcurl "$S2" PUT /mmds/config '{"network_interfaces":["eth0"],"version":"V2"}')"
expect_match "PATCH /mmds before PUT /mmds: 400" '^400 .*not initialized' \
    "$(fcurl "$S2" PATCH /mmds '{"a":1}')"
expect_match "SendCtrlAltDel before start: 400" '^400 .*before starting' \
    "$(fcurl "$S2" PUT /actions '{"action_type":"SendCtrlAltDel"}')"
expect_match "InstanceStart without a kernel: 400" '^400 .*without kernel' \
    "$(fcurl "$S2" PUT /actions '{"action_type":"InstanceStart"}')"
expect_match "unknown path: 400" '^400 .*Invalid request method' \
    "$(fcurl "$S2" PUT /no-such-thing '{}')"
expect_match "unknown method on a known path: 400" \
    '^400 .*Invalid request method' "$(fcurl "$S2" DELETE /machine-config)"
expect_match "a spec path the double does not model: 400 with a fault" \
    '^400 .*"fault_message": ".*not modelled' "$(fcurl "$S2" GET /balloon)"
expect_match "an unmodelled PUT is refused too, not accepted" \
    '^400 .*not modelled' "$(fcurl "$S2" PUT /balloon \
    '{"amount_mib":0,"deflate_on_oom":false}')"
expect_match "drive whose file is missing in the jail: 400" '^400 .*No such file' \
    "$(fcurl "$S2" PUT /drives/rootfs \
    '{"drive_id":"rootfs","is_root_device":true,"is_read_only":false,"path_on_host":"/rootfs.ext4"}')"
expect_match "drive id differing from the path: 400" '^400 .*does not match' \
    "$(fcurl "$S2" PUT /drives/rootfs \
    '{"drive_id":"other","is_root_device":true,"is_read_only":true,"path_on_host":"/vmlinux"}')"
expect_match "writable drive the uid cannot write: 400" \
    '^400 .*Permission denied' \
    "$(fcurl "$S2" PUT /drives/rootfs \
    '{"drive_id":"rootfs","is_root_device":true,"is_read_only":false,"path_on_host":"/vmlinux"}')"
long=$(printf 'x%.0s' $(seq 2100))
expect_match "boot_args over 2 KiB: 400" '^400 .*too long' \
    "$(fcurl "$S2" PUT /boot-source \
    "{\"kernel_image_path\":\"/vmlinux\",\"boot_args\":\"$long\"}")"
expect_match "logger to a file that does not exist: 400" '^400 ' \
    "$(fcurl "$S2" PUT /logger '{"log_path":"/nope.log"}')"
expect_match "bad MAC: 400" '^400 .*MAC' \
    "$(fcurl "$S2" PUT /network-interfaces/eth0 \
    '{"iface_id":"eth0","host_dev_name":"tap-x","guest_mac":"06:00:zz"}')"
big=$(python3 -c 'import json; print(json.dumps({"k": "x" * 60000}))')
expect_match "60 KB body over the default 51200-byte limit: 400" \
    '^400 .*larger than the limit of 51200' "$(fcurl "$S2" PUT /mmds "$big")"
expect_match "valid boot-source: 204" '^204' \
    "$(fcurl "$S2" PUT /boot-source '{"kernel_image_path":"/vmlinux"}')"
expect_match "InstanceStart with a kernel: 204" '^204' \
    "$(fcurl "$S2" PUT /actions '{"action_type":"InstanceStart"}')"
expect_match "GET / reports Running" '^200 .*"state": "Running"' \
    "$(fcurl "$S2" GET /)"
expect_match "boot-source after start: 400" '^400 .*after starting' \
    "$(fcurl "$S2" PUT /boot-source '{"kernel_image_path":"/vmlinux"}')"
