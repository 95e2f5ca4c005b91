#!/usr/bin/python3
# Client behaviours that OpenSSH's ssh never shows, for the gateway tests:
#
#   ssh_raw.py signed PORT USER KEYFILE CMD   sign at once, no probe first
#                                             (prints CMD's output)
#   ssh_raw.py badsig PORT USER KEYFILE       the right key, a signature
#                                             over other data
#   ssh_raw.py password PORT USER PASSWORD    a password, though the server
#                                             offers only publickey
#
# Exit 0: logged in (and for "signed", CMD ran); 1: refused; 2: other error.
# Debian's python3-paramiko; run with /usr/bin/python3 so that another
# python3 earlier on PATH does not hide it.
import sys

import paramiko


class BadSigKey(paramiko.Ed25519Key):
    """Signs something other than what the server asked to be signed."""

    def sign_ssh_data(self, data, algorithm=None):
        return super().sign_ssh_data(data + b"tampered", algorithm)


def main():
    mode, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    t = paramiko.Transport(("127.0.0.1", port))
    try:
        t.start_client(timeout=20)
        if mode == "password":
            t.auth_password(user, sys.argv[4])
        elif mode == "badsig":
            t.auth_publickey(user, BadSigKey(filename=sys.argv[4]))
        else:
            t.auth_publickey(user,
                             paramiko.Ed25519Key(filename=sys.argv[4]))
        if not t.is_authenticated():
            return 1
        if mode == "signed":
            ch = t.open_session(timeout=20)
            ch.exec_command(sys.argv[5])
            out = b""
            while True:
                b = ch.recv(65536)
                if not b:
                    break
                out += b
            sys.stdout.write(out.decode())
            return 0 if ch.recv_exit_status() == 0 else 2
        return 0
    except paramiko.AuthenticationException:
        return 1
    except Exception as e:
        print("ssh_raw: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 2
    finally:
        t.close()


if __name__ == "__main__":
    sys.exit(main())
