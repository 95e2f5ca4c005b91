#!/usr/bin/env python3
"""A protocol double of prison-provisioner's control socket for the
gateway tests: answers "ensure" with a progress line and then the address
of a real sshd, and records when held connections open and close.

usage: gw_fake_provisioner.py SOCKET EVENTS_FILE MODE ADDRESS PORT HOSTKEY USER
MODE: ok | badkey | fail | stop | vanish
  stop:   two seconds into a held session, say the VM stopped, and close
  vanish: two seconds into a held session, close without a word (as a
          provisioner that restarts)
"list" is answered with no VMs.
"""
import json
import os
import socket
import sys
import threading
import time

sock_path, events, mode, address, port, host_key, user = sys.argv[1:8]


def note(line):
    with open(events, "a") as f:
        f.write(line + "\n")


def serve(conn):
    f = conn.makefile("rwb", buffering=0)
    req = json.loads(f.readline())
    if req.get("op") == "list":
        f.write(b'{"ok":true,"vms":[]}\n')
        conn.close()
        return
    note("request %s project=%s hold=%s" % (req.get("op"), req.get("project"),
                                             req.get("hold")))
    f.write(b'{"progress":"booting the VM"}\n')
    time.sleep(1)
    if mode == "fail":
        f.write(json.dumps({"ok": False, "error": "disk full",
                            "stage": "disk"}).encode() + b"\n")
        conn.close()
        return
    key = host_key
    if mode == "badkey":
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKfD8s4sSg0W5wOZ4Y9gLTQ" \
              "FUb0hk5hdbJEo2bYJ0fXo"
    f.write(json.dumps({"ok": True, "address": address, "port": int(port),
                        "host_key": key, "dev_user": user}).encode() + b"\n")
    note("held")
    if mode in ("stop", "vanish"):
        time.sleep(2)
        if mode == "stop":
            f.write(b'{"event":"stopped"}\n')
        conn.close()
        note("closed by the provisioner")
        return
    while conn.recv(4096):
        pass
    note("released")
    conn.close()


srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if os.path.exists(sock_path):
    os.unlink(sock_path)
srv.bind(sock_path)
os.chmod(sock_path, 0o666)
srv.listen(16)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
