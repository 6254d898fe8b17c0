"""Shared helpers for ringmail's integration tests against real peers.

Starts and stops processes the tests own (the ringmail daemon, swaks, smtp-sink, aiosmtpd, Knot),
binds loopback only, picks free ports, and cleans up. Run with Debian's /usr/bin/python3.
Binaries are found through RINGMAIL_BUILD (the CMake build directory).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("RINGMAIL_BUILD", os.path.join(os.path.dirname(__file__), "../../build/release"))


def binary(name):
    for sub in ("engine", "tools/inject", "tools/spool", "tools/route", "tools/sink", "tools/queue"):
        p = os.path.join(BUILD, sub, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{name} not found under {BUILD}")


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=20.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Daemon:
    """One ringmail daemon on a loopback port with its own spool directory."""

    def __init__(self, workdir, spool=None, args=(), listen="127.0.0.1:0"):
        self.workdir = workdir
        self.spool = spool or os.path.join(workdir, "spool")
        self.args = list(args)
        self.listen = listen
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "ringmail.log")

    def start(self, timeout=20):
        ready = os.path.join(self.workdir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.log = open(self.log_path, "ab")
        cmd = [binary("ringmail"), "--listen", self.listen, "--spool", self.spool, "--hostname", "ringmail.test",
               "--ready-file", ready] + self.args
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(ready) or self.proc.poll() is not None, timeout, what="ringmail ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"ringmail exited with {self.proc.returncode}: {self.read_log()[-2000:]}")
        with open(ready) as f:
            first = f.readline().strip()
        self.port = int(first.rsplit(":", 1)[1])
        return self

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self.log.close()

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def swaks(port, *args, server="127.0.0.1", timeout=30):
    """Runs swaks against the daemon; returns (exit code, combined output)."""
    cmd = ["swaks", "--server", f"{server}:{port}", "--timeout", "20", "--hide-informational"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


class SmtpConversation:
    """A raw SMTP client for inputs swaks cannot produce (bare LF, NUL, overlong lines)."""

    def __init__(self, port, host="127.0.0.1", source=None):
        self.sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0) if source else None)
        self.buf = b""

    def read_reply(self):
        """Reads one complete (possibly multi-line) reply; returns it as text."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed; got " + repr(self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.read_reply()

    def close(self):
        self.sock.close()


class DaemonTestCase(unittest.TestCase):
    """A test case with a temporary directory removed afterwards. The removal is the first cleanup
    registered, so it runs last: peers a test registers a stop for (addCleanup) are stopped while
    their files still exist."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ringmail-it-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            try:
                if d.proc is not None:
                    d.kill9()
            except Exception:
                pass

    def start_daemon(self, *args, **kw):
        d = Daemon(self.tmp, args=args, **kw)
        self.daemons.append(d)
        return d.start()

    def refused_start(self, *args, code=2):
        """Starts the daemon expecting it to refuse (exit `code` before it is ready); returns its log."""
        d = Daemon(self.tmp, args=args)
        with self.assertRaises(RuntimeError):
            d.start()
        self.assertEqual(d.proc.returncode, code)
        log = d.read_log()
        d.log.close()
        return log


def inject_then_kill9(daemon, log, count, kill_after, size=5000, connections=20):
    """Runs ringmail-inject against `daemon` (logging every reply to `log`), kills the daemon with
    SIGKILL once `kill_after` replies were logged, and waits for the injector to give up."""
    inj = subprocess.Popen([binary("ringmail-inject"), "--target", f"127.0.0.1:{daemon.port}", "--count", str(count),
                            "--size", str(size), "--connections", str(connections), "--per-connection", "50",
                            "--log", log, "--duration", "60", "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def replies():
            try:
                with open(log) as f:
                    return sum(1 for _ in f)
            except FileNotFoundError:
                return 0
        wait_for(lambda: replies() >= kill_after, timeout=60, what=f"{kill_after} replies")
        daemon.kill9()  # mid-stream: connections are in the middle of transactions
        inj.wait(timeout=120)
    finally:
        if inj.poll() is None:
            inj.kill()
            inj.wait()
