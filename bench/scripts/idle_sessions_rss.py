#!/usr/bin/python3
"""Daemon memory per idle inbound session, plain text and TLS (issue 7: <= 48 KB per idle TLS session).

Starts ringmail (--hold, one worker, a throwaway P-256 certificate) on a loopback port, opens N
sessions that say EHLO (and, for TLS, STARTTLS and EHLO again) and then stay idle, waits, and
prints the growth of the daemon's VmRSS divided by N. 20 warm-up sessions are opened first so
one-time costs (OpenSSL's first handshake, the worker's first buffers) are not counted.

    bench/scripts/idle_sessions_rss.py [--sessions 400] [--wait 25] [--build build/release]

--wait is how long the sessions stay idle before RSS is read: ringmail releases an idle session's
TLS buffers after 0.5 s, and jemalloc's background thread gives the freed pages back to the
system after its decay time (10 s by default). Loopback only; the daemon is stopped by its PID.
"""
import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=400)
    ap.add_argument("--wait", type=float, default=25.0)
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    args = ap.parse_args()
    daemon = os.path.join(args.build, "engine/ringmail")
    if not os.access(daemon, os.X_OK):
        sys.exit(f"no {daemon}: build it first (scripts/build.sh release ringmail)")
    work = tempfile.mkdtemp(prefix="ringmail-idle-rss.")
    proc = None
    try:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=relay.bench", "-keyout", key, "-out", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ready = os.path.join(work, "ready")
        proc = subprocess.Popen([daemon, "--listen", "127.0.0.1:0", "--spool", os.path.join(work, "spool"), "--hold",
                                 "--workers", "1", "--ready-file", ready, "--tls-cert", cert, "--tls-key", key,
                                 "--max-connections", str(2 * args.sessions + 100)],
                                stdout=open(os.path.join(work, "log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("ringmail did not start: " + open(os.path.join(work, "log")).read())
            time.sleep(0.05)
        port = int(open(ready).read().split()[0].rsplit(":", 1)[1])

        def rss_kib():
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
            raise RuntimeError("no VmRSS")

        def last_reply(f):
            while True:
                line = f.readline()
                if not line or line[3:4] != b"-":
                    return line

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def open_session(tls):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            f = s.makefile("rb")
            last_reply(f)
            s.sendall(b"EHLO client.bench\r\n")
            last_reply(f)
            if tls:
                s.sendall(b"STARTTLS\r\n")
                if not last_reply(f).startswith(b"220"):
                    raise RuntimeError("STARTTLS refused")
                s = ctx.wrap_socket(s, server_hostname="relay.bench")
                f = s.makefile("rb")
                s.sendall(b"EHLO client.bench\r\n")
                if not last_reply(f).startswith(b"250"):
                    raise RuntimeError("EHLO over TLS refused")
            return s

        print(f"ringmail, one worker, {args.sessions} idle inbound sessions, RSS read {args.wait:g} s after the last one opened")
        for mode in ("plain", "tls"):
            warm = [open_session(mode == "tls") for _ in range(20)]
            time.sleep(args.wait)
            before = rss_kib()
            sessions = [open_session(mode == "tls") for _ in range(args.sessions)]
            time.sleep(args.wait)
            after = rss_kib()
            print(f"{mode:5s}: {(after - before) / args.sessions:6.1f} KiB of daemon RSS per idle session "
                  f"(VmRSS {before} -> {after} KiB)")
            for s in sessions + warm:
                s.close()
            time.sleep(1.0)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
