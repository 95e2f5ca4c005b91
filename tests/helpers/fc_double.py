#!/usr/bin/python3
"""A strict double of Firecracker's jailer and API, for hosts without KVM.

Installed twice under names the driver is configured with: as "jailer"
it checks its arguments the way the real jailer does, builds the jail
(<chroot_base>/<exec file name>/<id>/root), copies the exec file into it
and execs the copy with a cleaned environment and closed descriptors.
As that copy ("firecracker") it serves the API on the unix socket inside
the jail and checks every request against the OpenAPI description
(tests/data/firecracker-api.yaml) and against Firecracker's ordering
rules: pre-boot resources only before InstanceStart, a kernel before
InstanceStart, MMDS interfaces that exist, files the jailed uid can open.

It does not chroot or drop privileges (a python interpreter would have to
live in the jail); instead it resolves every path inside the jail root
and checks the permissions the jailed uid/gid would have.

Test control: a JSON file "fc_double.json" beside the jailer:
  {"spec": PATH, "log": PATH, "fail": {"PUT /drives/rootfs": "why"},
   "ignore_ctrlaltdel": false}
Every request, accepted or not, is appended to "log" as one JSON line:
  {"method": "PUT", "path": "/x", "body": {...}, "status": 204}
and the jailer appends {"jailer": [argv...]}.
"""

import json
import os
import re
import shutil
import signal
import socket
import socketserver
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import yaml

ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
CGROUP_RE = re.compile(r"^([a-z_]+)\.([a-z_.]+)=(.+)$")
V2_CONTROLLERS = {"cpu", "cpuset", "memory", "io", "pids", "hugetlb",
                  "rdma", "misc"}
CMDLINE_MAX = 2048          # x86_64
DEFAULT_PAYLOAD_MAX = 51200
IFF_TAP = 0x0002

# Resources Firecracker only accepts before, or only after, InstanceStart.
PRE_BOOT = {("PUT", "/boot-source"), ("PUT", "/cpu-config"),
            ("PUT", "/drives/{drive_id}"), ("PUT", "/pmem/{id}"),
            ("PUT", "/logger"), ("PUT", "/machine-config"),
            ("PATCH", "/machine-config"), ("PUT", "/metrics"),
            ("PUT", "/mmds/config"), ("PUT", "/entropy"),
            ("PUT", "/serial"), ("PUT", "/network-interfaces/{iface_id}"),
            ("PUT", "/vsock"), ("PUT", "/balloon"),
            ("PUT", "/hotplug/memory"), ("PUT", "/snapshot/load")}
POST_BOOT = {("PATCH", "/drives/{drive_id}"), ("PATCH", "/pmem/{id}"),
             ("PATCH", "/network-interfaces/{iface_id}"),
             ("PATCH", "/vm"), ("PUT", "/snapshot/create"),
             ("PATCH", "/balloon"), ("PATCH", "/hotplug/memory")}


def die(msg):
    sys.stderr.write("%s\n" % msg)
    sys.exit(1)


def record(log, entry):
    if not log:
        return
    with open(log, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


# ---------------------------------------------------------------- jailer

def jailer(argv):
    here = os.path.dirname(os.path.abspath(argv[0]))
    try:
        with open(os.path.join(here, "fc_double.json")) as f:
            control = json.load(f)
    except OSError:
        control = {}
    record(control.get("log"), {"jailer": argv[1:]})
    if os.geteuid() != 0:
        die("jailer: must run as root")

    single = {"--id", "--exec-file", "--uid", "--gid", "--parent-cgroup",
              "--cgroup-version", "--chroot-base-dir", "--netns"}
    multi = {"--cgroup", "--resource-limit"}
    flags = {"--daemonize", "--new-pid-ns"}
    opts, many, fc_args = {}, {"--cgroup": [], "--resource-limit": []}, []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            fc_args = argv[i + 1:]
            break
        if a in flags:
            opts[a] = True
            i += 1
            continue
        if a not in single and a not in multi:
            die("Arguments parsing error: unexpected argument %r" % a)
        if i + 1 >= len(argv):
            die("Arguments parsing error: %s needs a value" % a)
        if a in single:
            if a in opts:
                die("Arguments parsing error: %s given twice" % a)
            opts[a] = argv[i + 1]
        else:
            many[a].append(argv[i + 1])
        i += 2
    for req in ("--id", "--exec-file", "--uid", "--gid"):
        if req not in opts:
            die("Arguments parsing error: missing required %s" % req)

    jid = opts["--id"]
    if not ID_RE.match(jid):
        die("Invalid instance ID: %s" % jid)
    exe = opts["--exec-file"]
    if not os.path.isfile(exe):
        die("Invalid exec file %s: not a file" % exe)
    exe_name = os.path.basename(exe)
    if "firecracker" not in exe_name:
        die("Invalid filename. The filename of `--exec-file` option "
            "must contain \"firecracker\": %s" % exe_name)
    try:
        uid, gid = int(opts["--uid"]), int(opts["--gid"])
        if not (0 <= uid < 2**32 and 0 <= gid < 2**32):
            raise ValueError
    except ValueError:
        die("Invalid uid or gid: %s %s" % (opts["--uid"], opts["--gid"]))
    version = opts.get("--cgroup-version", "1")
    if version not in ("1", "2"):
        die("Invalid cgroup version: %s" % version)
    parent = opts.get("--parent-cgroup", exe_name)
    if parent.startswith("/") or ".." in parent.split("/"):
        die("Invalid parent cgroup: %s" % parent)
    for cg in many["--cgroup"]:
        m = CGROUP_RE.match(cg)
        if not m:
            die("Invalid format for cgroup: %s" % cg)
        if version == "2" and m.group(1) not in V2_CONTROLLERS:
            die("Cgroup controller %s not available" % m.group(1))
        check_cgroup_value(cg, m.group(1) + "." + m.group(2), m.group(3))
    for rl in many["--resource-limit"]:
        k, _, v = rl.partition("=")
        if k not in ("fsize", "no-file") or not v.isdigit():
            die("Invalid resource limit: %s" % rl)
    base = opts.get("--chroot-base-dir")
    if base is None:
        # The real default is /srv/jailer; a test must never touch it.
        die("fc_double: --chroot-base-dir is required by the double")
    if not base.startswith("/"):
        die("Invalid chroot base dir: %s" % base)

    jail = os.path.join(base, exe_name, jid)
    root = os.path.join(jail, "root")
    os.makedirs(root, exist_ok=True)
    copy = os.path.join(root, exe_name)
    shutil.copy(exe, copy)
    os.chmod(copy, 0o755)
    os.chown(root, uid, gid)
    control.update({"uid": uid, "gid": gid, "id": jid,
                    "cgroups": many["--cgroup"], "parent_cgroup": parent})
    with open(os.path.join(jail, "double.json"), "w") as f:
        json.dump(control, f)

    if opts.get("--daemonize"):
        os.setsid()
        fd = os.open("/dev/null", os.O_RDWR)
        for n in (0, 1, 2):
            os.dup2(fd, n)
    os.closerange(3, 65536)
    args = [copy, "--id=%s" % jid, "--start-time-us=%d" % (time.time() * 1e6),
            "--start-time-cpu-us=%d" % (time.process_time() * 1e6)] + fc_args
    if opts.get("--new-pid-ns"):
        pid = os.fork()
        if pid:
            with open(os.path.join(root, exe_name + ".pid"), "w") as f:
                f.write("%d" % pid)
            os._exit(0)
    os.execve(copy, args, {})


def check_cgroup_value(cg, name, value):
    ok = True
    if name == "cpu.max":
        parts = value.split(" ")
        ok = (len(parts) in (1, 2) and
              (parts[0] == "max" or parts[0].isdigit()) and
              (len(parts) == 1 or parts[1].isdigit()))
        if ok and parts[0].isdigit() and int(parts[0]) < 1000:
            ok = False
    elif name in ("memory.max", "memory.high", "memory.low",
                  "memory.min", "memory.swap.max", "pids.max"):
        ok = value == "max" or value.isdigit()
    if not ok:
        die("Failed to write %s: Invalid argument (os error 22)" % cg)


# ------------------------------------------------------------ schema

class Invalid(Exception):
    pass


class Schema:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.routes = []
        for p, ops in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\{[^}]+\\}", "([^/]+)", re.escape(p)) + "$"
            self.routes.append((re.compile(rx), p, ops))

    def route(self, method, path):
        for rx, tmpl, ops in self.routes:
            m = rx.match(path)
            if m:
                op = ops.get(method.lower())
                return tmpl, op, m.groups()
        return None, None, ()

    def resolve(self, s):
        while "$ref" in s:
            s = self.doc["definitions"][s["$ref"].split("/")[-1]]
        return s

    def validate(self, s, v, where):
        s = self.resolve(s)
        t = s.get("type")
        if t == "object" or (t is None and "properties" in s):
            if not isinstance(v, dict):
                raise Invalid("%s: expected an object" % where)
            props = s.get("properties", {})
            for r in s.get("required", []):
                if r not in v:
                    raise Invalid("missing field `%s` in %s" % (r, where))
            extra = s.get("additionalProperties")
            for k, x in v.items():
                if k in props:
                    self.validate(props[k], x, k)
                elif isinstance(extra, dict):
                    self.validate(extra, x, k)
                elif extra is not True:
                    # Firecracker's structs deny unknown fields.
                    raise Invalid("unknown field `%s`, expected one of %s"
                                  % (k, ", ".join(sorted(props))))
        elif t == "string":
            if not isinstance(v, str):
                raise Invalid("%s: invalid type, expected a string" % where)
            if "enum" in s and v not in s["enum"]:
                raise Invalid("%s: unknown variant `%s`, expected one of %s"
                              % (where, v, ", ".join(s["enum"])))
            fmt = s.get("format")
            if fmt and "(" in fmt and not re.fullmatch(fmt, v):
                raise Invalid("%s: `%s` does not match %s" % (where, v, fmt))
        elif t == "integer":
            if not isinstance(v, int) or isinstance(v, bool):
                raise Invalid("%s: invalid type, expected an integer"
                              % where)
            # Every integer in the API is unsigned in Firecracker.
            lo = s.get("minimum", 0)
            if v < lo or ("maximum" in s and v > s["maximum"]):
                raise Invalid("%s: %d out of range" % (where, v))
        elif t == "boolean":
            if not isinstance(v, bool):
                raise Invalid("%s: invalid type, expected a boolean" % where)
        elif t == "array":
            if not isinstance(v, list):
                raise Invalid("%s: invalid type, expected a sequence"
                              % where)
            for x in v:
                self.validate(s.get("items", {}), x, where)
        elif "enum" in s and v not in s["enum"]:
            raise Invalid("%s: unknown variant `%s`" % (where, v))


# ------------------------------------------------------------ firecracker

class Fault(Exception):
    pass


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


class VM:
    def __init__(self, root, control, payload_max):
        self.root = root
        self.c = control
        self.uid = control["uid"]
        self.gid = control["gid"]
        self.payload_max = payload_max
        self.lock = threading.Lock()
        self.started = False
        self.machine = {"vcpu_count": 1, "mem_size_mib": 128, "smt": False}
        self.boot = None
        self.drives = {}
        self.ifaces = {}
        self.mmds_config = None
        self.mmds = None
        self.logger = None

    def jailed(self, p):
        """A path as the jailed Firecracker would resolve it."""
        if not p.startswith("/"):
            p = "/" + p
        full = os.path.normpath(self.root + p)
        if not (full + "/").startswith(self.root.rstrip("/") + "/"):
            raise Fault("path %s escapes the jail" % p)
        return full

    def can(self, full, mode):
        """Would the jailed uid/gid get access `mode` (r/w) to full?"""
        def allowed(st, bits):
            if st.st_uid == self.uid:
                shift = 6
            elif st.st_gid == self.gid:
                shift = 3
            else:
                shift = 0
            return all(st.st_mode & (b << shift) for b in bits)
        try:
            st = os.stat(full)
        except OSError as e:
            return "%s (os error %d)" % (e.strerror, e.errno)
        # Every directory from the jail root down must be searchable.
        d = os.path.dirname(full)
        while len(d) >= len(self.root):
            if not allowed(os.stat(d), [1]):
                return "Permission denied (os error 13)"
            d = os.path.dirname(d)
        bits = [4] if mode == "r" else [4, 2]
        if not allowed(st, bits):
            return "Permission denied (os error 13)"
        return None

    def file(self, p, mode, what):
        full = self.jailed(p)
        why = self.can(full, mode)
        if why:
            raise Fault("%s: %s" % (what, why))
        return full

    def handle(self, method, tmpl, params, body):
        key = (method, tmpl)
        if key in PRE_BOOT and self.started:
            raise Fault("The requested operation is not supported after "
                        "starting the microVM.")
        if key in POST_BOOT and not self.started:
            raise Fault("The requested operation is not supported before "
                        "starting the microVM.")
        name = "do_%s_%s" % (method, re.sub(r"[^a-z]+", "_",
                                            tmpl.strip("/")).strip("_"))
        fn = getattr(self, name, None)
        if fn is None:
            # A request the spec allows but the double does not model
            # (balloon, vsock, snapshots...) is refused the way Firecracker
            # refuses a device it does not have, never silently accepted:
            # a driver that starts using one must make the double learn it.
            raise Fault("%s %s is not modelled by the test double"
                        % (method, tmpl))
        return fn(params, body)

    def do_GET_(self, params, body):
        return 200, {"app_name": "Firecracker", "id": self.c.get("id"),
                     "state": "Running" if self.started else "Not started",
                     "vmm_version": "1.17.0-dev (prison test double)"}

    def do_GET_version(self, params, body):
        return 200, {"firecracker_version": "1.17.0-dev"}

    def do_GET_machine_config(self, params, body):
        return 200, self.machine

    def do_PUT_logger(self, params, body):
        if "log_path" in body:
            # Firecracker opens an existing file or FIFO; it creates none.
            self.file(body["log_path"], "w", "Failed to open target file")
        self.logger = body
        return 204, None

    def do_PUT_machine_config(self, params, body):
        m = dict(body)
        if m["mem_size_mib"] == 0:
            raise Fault("The memory size (MiB) is either 0, or not a "
                        "multiple of the configured page size.")
        if m.get("smt") and m["vcpu_count"] > 1 and m["vcpu_count"] % 2:
            raise Fault("The number of vCPUs must be greater than 0, less "
                        "than 32 and must be 1 or an even number if SMT "
                        "is enabled.")
        self.machine = m
        return 204, None

    def do_PUT_boot_source(self, params, body):
        self.file(body["kernel_image_path"], "r",
                  "The kernel file cannot be opened")
        if "initrd_path" in body:
            self.file(body["initrd_path"], "r",
                      "The initrd file cannot be opened")
        if len(body.get("boot_args", "").encode()) >= CMDLINE_MAX:
            raise Fault("The kernel command line is invalid: String "
                        "provided for kernel command line is too long")
        self.boot = body
        return 204, None

    def do_PUT_drives_drive_id(self, params, body):
        if body["drive_id"] != params[0]:
            raise Fault("The id from the path does not match the id from "
                        "the body!")
        if "socket" in body and "path_on_host" in body:
            raise Fault("path_on_host and socket are mutually exclusive")
        if "socket" not in body:
            if "path_on_host" not in body or "is_read_only" not in body:
                raise Fault("Unable to create the virtio block device: "
                            "path_on_host and is_read_only are required")
            ro = body["is_read_only"]
            self.file(body["path_on_host"], "r" if ro else "w",
                      "Unable to create the virtio block device: "
                      "Cannot open block device")
        for d in self.drives.values():
            if (d["is_root_device"] and body["is_root_device"] and
                    d["drive_id"] != body["drive_id"]):
                raise Fault("A root block device already exists!")
        self.drives[body["drive_id"]] = body
        return 204, None

    def tap_usable(self, name):
        if len(name.encode()) > 15:
            return "Invalid TAP name %s" % name
        try:
            socket.if_nametoindex(name)
        except OSError:
            return "No such device (os error 19)"
        sysdir = "/sys/class/net/%s" % name
        try:
            flags = int(open(sysdir + "/tun_flags").read(), 16)
            owner = int(open(sysdir + "/owner").read())
            group = int(open(sysdir + "/group").read())
        except (OSError, ValueError):
            return "%s is not a TUN/TAP device" % name
        if not flags & IFF_TAP:
            return "%s is a TUN, not a TAP device" % name
        # The kernel's rule for a jailed process without CAP_NET_ADMIN.
        if owner == -1 and group == -1:
            return "Operation not permitted (os error 1): %s has no owner" \
                % name
        if owner != -1 and owner != self.uid:
            if group == -1 or group != self.gid:
                return "Operation not permitted (os error 1)"
        elif owner == -1 and group != self.gid:
            return "Operation not permitted (os error 1)"
        return None

    def do_PUT_network_interfaces_iface_id(self, params, body):
        if body["iface_id"] != params[0]:
            raise Fault("The id from the path does not match the id from "
                        "the body!")
        mac = body.get("guest_mac")
        if mac is not None and not MAC_RE.match(mac):
            raise Fault("Invalid MAC address: %s" % mac)
        for i in self.ifaces.values():
            if i["iface_id"] == body["iface_id"]:
                continue
            if mac and i.get("guest_mac", "").lower() == mac.lower():
                raise Fault("The MAC address is already in use: %s" % mac)
            if i["host_dev_name"] == body["host_dev_name"]:
                raise Fault("The host device name is already in use")
        why = self.tap_usable(body["host_dev_name"])
        if why:
            raise Fault("Could not create the network device: Open tap "
                        "device failed: %s" % why)
        self.ifaces[body["iface_id"]] = body
        return 204, None

    def do_PUT_mmds_config(self, params, body):
        ifs = body["network_interfaces"]
        if not ifs:
            raise Fault("The list of network interface IDs that allow "
                        "forwarding MMDS requests is empty.")
        if any(i not in self.ifaces for i in ifs):
            raise Fault("The list of network interface IDs provided "
                        "contains at least one ID that does not "
                        "correspond to any existing network interface.")
        self.mmds_config = body
        return 204, None

    def do_PUT_mmds(self, params, body):
        if not isinstance(body, dict):
            raise Fault("MMDS data store must be a JSON object")
        self.mmds = body
        return 204, None

    def do_PATCH_mmds(self, params, body):
        if self.mmds is None:
            raise Fault("The MMDS data store is not initialized.")
        self.mmds = merge_patch(self.mmds, body)
        return 204, None

    def do_GET_mmds(self, params, body):
        if self.mmds is None:
            return 404, {"fault_message": "The MMDS data store content "
                         "can not be found."}
        return 200, self.mmds

    def do_PUT_actions(self, params, body):
        a = body["action_type"]
        if a == "InstanceStart":
            if self.started:
                raise Fault("The requested operation is not supported "
                            "after starting the microVM.")
            if self.boot is None:
                raise Fault("Cannot start microvm without kernel "
                            "configuration.")
            with open(self.jailed(self.boot["kernel_image_path"]),
                      "rb") as f:
                if f.read(4) != b"\x7fELF":
                    raise Fault("Cannot load kernel due to invalid memory "
                                "configuration or invalid kernel image: "
                                "not an ELF image")
            self.started = True
        elif a == "SendCtrlAltDel":
            if not self.started:
                raise Fault("The requested operation is not supported "
                            "before starting the microVM.")
            if not self.c.get("ignore_ctrlaltdel"):
                # The guest reboots, and Firecracker exits on reboot.
                threading.Timer(0.2, lambda: os._exit(0)).start()
        elif a == "FlushMetrics":
            raise Fault("The metrics system is not initialized.")
        return 204, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 204:
            self.wfile.write(data)

    def serve(self):
        srv = self.server
        vm, schema = srv.vm, srv.schema
        method = self.command
        path = self.path.split("?")[0]
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        entry = {"method": method, "path": path}
        body = None
        try:
            if n > vm.payload_max:
                raise Fault("Request payload with size %d is larger than "
                            "the limit of %d allowed by server."
                            % (n, vm.payload_max))
            tmpl, op, params = schema.route(method, path)
            if op is None:
                raise Fault("Invalid request method and/or path: %s %s."
                            % (method, path))
            bparam = [p for p in op.get("parameters", [])
                      if p.get("in") == "body"]
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise Fault("An error occurred when deserializing the "
                                "json body of a request: %s" % e)
                entry["body"] = body
                if not bparam:
                    raise Fault("%s %s takes no body" % (method, path))
                try:
                    schema.validate(bparam[0]["schema"], body, "body")
                except Invalid as e:
                    raise Fault("An error occurred when deserializing the "
                                "json body of a request: %s" % e)
            elif bparam and (bparam[0].get("required") or method != "GET"):
                raise Fault("Empty request body")
            inject = vm.c.get("fail", {}).get("%s %s" % (method, path))
            with vm.lock:
                if inject:
                    raise Fault(inject)
                status, out = vm.handle(method, tmpl, params, body)
        except Fault as e:
            status, out = 400, {"fault_message": str(e)}
        entry["status"] = status
        if status >= 400:
            entry["fault"] = out.get("fault_message")
        record(vm.c.get("log"), entry)
        self.answer(status, out)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = serve


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def firecracker(argv):
    exe = os.path.abspath(argv[0])
    root = os.path.dirname(exe)
    jail = os.path.dirname(root)
    with open(os.path.join(jail, "double.json")) as f:
        control = json.load(f)
    sock = "/run/firecracker.socket"
    payload_max = DEFAULT_PAYLOAD_MAX
    with_value = {"--api-sock", "--id", "--start-time-us",
                  "--start-time-cpu-us", "--parent-cpu-time-us", "--level",
                  "--log-path", "--module", "--metrics-path",
                  "--config-file", "--metadata", "--seccomp-filter",
                  "--http-api-max-payload-size", "--mmds-size-limit"}
    bare = {"--no-api", "--no-seccomp", "--boot-timer", "--show-level",
            "--show-log-origin"}
    i = 1
    while i < len(argv):
        a = argv[i]
        k, eq, v = a.partition("=")
        if k in with_value:
            if not eq:
                if i + 1 >= len(argv):
                    die("Arguments parsing error: %s needs a value" % k)
                v = argv[i + 1]
                i += 1
            if k == "--api-sock":
                sock = v
            elif k == "--http-api-max-payload-size":
                payload_max = int(v)
        elif a not in bare:
            die("Arguments parsing error: Found argument '%s' which "
                "wasn't expected." % a)
        i += 1
    vm = VM(root, control, payload_max)
    path = vm.jailed(sock)
    if os.path.exists(path):
        die("Failed to open the API socket at %s: Address in use" % sock)
    if not os.path.isdir(os.path.dirname(path)) or \
            vm.can(os.path.dirname(path), "w"):
        die("Failed to open the API socket at %s: no writable directory"
            % sock)
    srv = Server(path, Handler)
    srv.vm = vm
    srv.schema = Schema(control["spec"])
    os.chown(path, vm.uid, vm.gid)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv.serve_forever()


def main():
    name = os.path.basename(sys.argv[0])
    if "jailer" in name:
        jailer(sys.argv)
    elif "firecracker" in name:
        firecracker(sys.argv)
    else:
        die("fc_double: install me as .../jailer and .../firecracker")


if __name__ == "__main__":
    main()
