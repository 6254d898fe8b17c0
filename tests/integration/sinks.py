"""SMTP receivers for ringmail's delivery tests, each on a free loopback port and stopped by its PID:
ringmail-sink (fault injection, --record/--save-dir, --stats-file), Postfix's smtp-sink (dumps to
files) and aiosmtpd (aiosmtpd_controller.py). Also the connector file that points ringmail at one
of them. Run with Debian's /usr/bin/python3; see harness.py for the daemon side.
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys

from harness import binary, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def write_connectors(path, port, name="Sink", extra=""):
    """A connector file sending every domain to [127.0.0.1]:port in clear text."""
    with open(path, "w") as f:
        f.write(f'[[connector]]\nname = "{name}"\naddress_spaces = ["*"]\n'
                f'smart_hosts = ["[127.0.0.1]:{port}"]\ntls = "none"\n{extra}\n')
    return path


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class _Process:
    """A child process with its own output file, stopped by SIGTERM to its PID."""

    proc = None

    def _spawn(self, cmd, out_path):
        self.out = open(out_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.out.close()
        return rc


class RingmailSink(_Process):
    """ringmail-sink with a stats file, and optionally --record and --save-dir. `port` may be given
    to restart a sink on the port an earlier one used (the daemon's connector names it)."""

    def __init__(self, workdir, name="sink", record=True, save=True, args=(), port=0, host="127.0.0.1"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.ready = os.path.join(self.dir, "ready")
        self.stats_file = os.path.join(self.dir, "stats")
        self.record_file = os.path.join(self.dir, "record.jsonl") if record else None
        self.save_dir = os.path.join(self.dir, "saved") if save else None
        self.args = list(args)
        self.port = port
        self.host = host

    def start(self, timeout=20):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        cmd = [binary("ringmail-sink"), "--listen", f"{self.host}:{self.port}", "--ready-file", self.ready,
               "--stats-file", self.stats_file, "--hostname", "sink.test", "--quiet"] + self.args
        if self.record_file:
            cmd += ["--record", self.record_file]
        if self.save_dir:
            os.makedirs(self.save_dir, exist_ok=True)
            cmd += ["--save-dir", self.save_dir]
        self._spawn(cmd, os.path.join(self.dir, "sink.out"))
        wait_for(lambda: os.path.exists(self.ready) or not self.running(), timeout, what="ringmail-sink ready")
        if not self.running():
            raise RuntimeError(f"ringmail-sink exited: {self.output()[-2000:]}")
        with open(self.ready) as f:
            self.port = int(f.readline().strip().rsplit(":", 1)[1])
        return self

    def output(self):
        with open(os.path.join(self.dir, "sink.out"), "rb") as f:
            return f.read().decode(errors="replace")

    def stats(self):
        try:
            with open(self.stats_file) as f:
                return {k: int(v) for k, v in (l.strip().split("=", 1) for l in f if "=" in l)}
        except FileNotFoundError:
            return {}

    def records(self):
        """The --record lines (one dict per accepted message), across restarts of this sink."""
        if not self.record_file or not os.path.exists(self.record_file):
            return []
        with open(self.record_file) as f:
            # A line without its newline is still being written: it is counted on the next read.
            return [json.loads(l) for l in f if l.endswith("\n")]

    def body(self, record):
        with open(record["body_file"] if os.path.isabs(record["body_file"])
                  else os.path.join(self.save_dir, os.path.basename(record["body_file"])), "rb") as f:
            return f.read()


class AiosmtpdSink(_Process):
    """aiosmtpd (python3-aiosmtpd) through aiosmtpd_controller.py; rcpt_replies maps a recipient
    substring to the reply its RCPT gets."""

    def __init__(self, workdir, name="aiosmtpd", rcpt_replies=None, data_delay=0.0):
        self.dir = os.path.join(workdir, name)
        self.save_dir = os.path.join(self.dir, "messages")
        os.makedirs(self.save_dir, exist_ok=True)
        self.ready = os.path.join(self.dir, "ready")
        self.rcpt_replies = dict(rcpt_replies or {})
        self.data_delay = data_delay  # seconds between saving a message and its 250
        self.port = None

    def start(self, timeout=20):
        self.port = free_port()
        cmd = ["/usr/bin/python3", os.path.join(HERE, "aiosmtpd_controller.py"), "--port", str(self.port),
               "--dir", self.save_dir, "--ready-file", self.ready]
        for substring, reply in self.rcpt_replies.items():
            cmd += ["--rcpt-reply", f"{substring}={reply}"]
        if self.data_delay:
            cmd += ["--data-delay", str(self.data_delay)]
        self._spawn(cmd, os.path.join(self.dir, "aiosmtpd.out"))
        wait_for(lambda: os.path.exists(self.ready) or not self.running(), timeout, what="aiosmtpd ready")
        if not self.running():
            with open(os.path.join(self.dir, "aiosmtpd.out"), "rb") as f:
                raise RuntimeError(f"aiosmtpd exited: {f.read().decode(errors='replace')[-2000:]}")
        return self

    def count(self):
        return len(glob.glob(os.path.join(self.save_dir, "*.json")))

    def messages(self):
        """[(envelope dict, exact DATA bytes)] in arrival order."""
        out = []
        for meta in sorted(glob.glob(os.path.join(self.save_dir, "*.json")),
                           key=lambda p: int(os.path.basename(p).split(".")[0])):
            with open(meta) as f:
                env = json.load(f)
            with open(meta[:-5] + ".eml", "rb") as f:
                out.append((env, f.read()))
        return out


class SmtpSink(_Process):
    """Postfix's smtp-sink, dumping each transaction to DUMPDIR/<minute>.<random> (-d) and printing
    running counters (-c). It runs as `nobody`, so its directory is world-writable."""

    def __init__(self, workdir, name="smtp-sink", args=()):
        self.dir = os.path.join(workdir, name)
        self.dump_dir = os.path.join(self.dir, "dump")
        os.makedirs(self.dump_dir, exist_ok=True)
        # smtp-sink drops to `nobody`: it must reach and write the dump directory.
        os.chmod(workdir, 0o755)
        os.chmod(self.dir, 0o755)
        os.chmod(self.dump_dir, 0o777)
        self.args = list(args)
        self.port = None

    def start(self, timeout=20):
        for _ in range(5):  # the free port may be taken between probe and bind; try another
            self.port = free_port()
            cmd = ["/usr/sbin/smtp-sink", "-u", "nobody", "-c", "-d", os.path.join(self.dump_dir, "%M.")] + \
                self.args + [f"127.0.0.1:{self.port}", "100"]
            self._spawn(cmd, os.path.join(self.dir, "smtp-sink.out"))
            wait_for(lambda: port_open(self.port) or not self.running(), timeout, what="smtp-sink listening")
            if self.running():
                return self
            self.stop()
        raise RuntimeError("smtp-sink did not start")

    def count(self):
        """Messages completed so far, from the -c counters (updated at each ".")."""
        with open(os.path.join(self.dir, "smtp-sink.out"), "rb") as f:
            found = re.findall(rb"mesg=(\d+)", f.read())
        return int(found[-1]) if found else 0

    def messages(self):
        """[(envelope dict, message bytes as smtp-sink dumped them)]: smtp-sink writes LF line ends
        and its own X-* envelope lines and Received: header first; both are taken off here."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.dump_dir, "*"))):
            with open(path, "rb") as f:
                data = f.read()
            env = {"mail_args": None, "rcpt_args": []}
            lines = data.split(b"\n")
            i = 0
            while i < len(lines) and lines[i].startswith(b"X-"):
                key, _, value = lines[i].partition(b": ")
                if key == b"X-Mail-Args":
                    env["mail_args"] = value.decode(errors="replace")
                elif key == b"X-Rcpt-Args":
                    env["rcpt_args"].append(value.decode(errors="replace"))
                i += 1
            if i < len(lines) and lines[i].startswith(b"Received: ") and b"smtp-sink" in b"\n".join(lines[i:i + 3]):
                i += 1
                while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                    i += 1
            out.append((env, b"\n".join(lines[i:])))
        return out


def strip_first_header(message, eol=b"\r\n"):
    """(first header field with its continuation lines, the rest): the Received: ringmail added."""
    pos = 0
    while True:
        end = message.index(eol, pos) + len(eol)
        pos = end
        if message[pos:pos + 1] not in (b" ", b"\t"):
            return message[:pos], message[pos:]


if __name__ == "__main__":
    sys.exit("sinks.py is a helper module for the integration tests")


class PostfixInstance:
    """A throwaway Postfix from scripts/postfix-instance.sh: smtpd on a free loopback port, every
    message kept in its hold queue; optionally STARTTLS with a PEM certificate and key. Needs Debian's
    postfix and root (its daemons drop to the `postfix` user, so `workdir` is made world-readable)."""

    SCRIPT = os.path.join(HERE, "..", "..", "scripts", "postfix-instance.sh")

    @staticmethod
    def available():
        import shutil
        return shutil.which("postfix") is not None and os.geteuid() == 0

    def __init__(self, workdir, tls=None):
        self.workdir = workdir
        self.dir = os.path.join(workdir, "postfix")
        self.tls = tls  # (cert, key) or None
        self.port = None

    def start(self, timeout=30):
        os.chmod(self.workdir, 0o755)
        self.port = free_port()
        cmd = [self.SCRIPT, "create", self.dir, str(self.port), "hold"] + (["tls", *self.tls] if self.tls else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        subprocess.run([self.SCRIPT, "start", self.dir], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), timeout=timeout, what="postfix smtpd listening")
        self.master_pid = self._master_pid()
        return self

    def _master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        subprocess.run([self.SCRIPT, "stop", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        # If the instance could not be stopped through its own configuration, end its master (the one
        # this object started, by PID); its children follow it.
        pid = getattr(self, "master_pid", None)
        if pid:
            try:
                os.kill(pid, 0)
                wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=5, what="postfix master to exit")
            except (OSError, TimeoutError):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass

    def held(self):
        out = subprocess.run([self.SCRIPT, "count", self.dir], stdout=subprocess.PIPE).stdout.decode()
        return int(out.strip() or 0)

    def held_files(self):
        return glob.glob(os.path.join(self.dir, "queue", "hold", "*"))

    def envelope(self, path):
        """Postfix's own view of a queued message's envelope records (postcat -e)."""
        return subprocess.run(["postcat", "-c", os.path.join(self.dir, "etc"), "-e", path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT).stdout.decode(errors="replace")

    def maillog(self):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""
