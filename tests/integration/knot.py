"""A real Knot DNS server (Debian `knot`, knotd 3.2) for integration tests.

    with Knot({"test": zone_text}) as knot:       # or knot = Knot(...); knot.start(); ...; knot.stop()
        ringmail ... --dns-server 127.0.0.1:{knot.port}
        knot.counter("query-type[MX]")             # queries Knot answered, from mod-stats

Config and zones live in a temporary directory; knotd listens on a free loopback port (UDP and
TCP) and is stopped by its PID. A zone text Knot cannot load makes it answer SERVFAIL for that
zone. tests/routing/dns/knot_server.cpp is the same helper for the C++ tests.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from harness import wait_for

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns")


def fixture(name):
    """Text of a zone fixture in tests/integration/dns/."""
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def _free_udp_tcp_port():
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port for knotd")


class Knot:
    def __init__(self, zones, workdir=None):
        """zones: {"test": "<zone file text>", ...} (names without the trailing dot)."""
        self.zones = dict(zones)
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="ringmail-knot-")
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "knotd.log")

    def start(self, timeout=30):
        if shutil.which("knotd") is None:
            raise RuntimeError("knotd not found (apt-get install knot)")
        self.port = _free_udp_tcp_port()
        for sub in ("run", "db"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        conf = [
            "server:", f"    listen: 127.0.0.1@{self.port}", f'    rundir: "{self.dir}/run"',
            "log:", "  - target: stderr", "    any: info",
            "database:", f'    storage: "{self.dir}/db"',
            "control:", f'    listen: "{self.dir}/run/knot.sock"',
            "mod-stats:", "  - id: counts", "    query-type: on", "    request-protocol: on",
            "template:", "  - id: default", f'    storage: "{self.dir}"', "    zonefile-sync: -1",
            "    journal-content: none", "    global-module: mod-stats/counts",
            "zone:",
        ]
        for name, text in self.zones.items():
            with open(os.path.join(self.dir, f"{name}.zone"), "w") as f:
                f.write(text)
            conf += [f"  - domain: {name}", f"    file: {name}.zone"]
        conf_path = os.path.join(self.dir, "knot.conf")
        with open(conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["knotd", "-c", conf_path], stdout=self.log, stderr=subprocess.STDOUT)

        def settled():
            if self.proc.poll() is not None:
                raise RuntimeError(f"knotd exited:\n{self.read_log()}")
            log = self.read_log()
            if "server started" not in log:
                return False
            return all(f"[{z}.] loaded" in log or f"[{z}.] zone event 'load' failed" in log for z in self.zones)

        wait_for(settled, timeout=timeout, what="knotd to load its zones")
        return self.port

    def address(self):
        return f"127.0.0.1:{self.port}"

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def counter(self, name):
        """A mod-stats counter such as "query-type[MX]"; 0 if Knot has not counted any yet."""
        out = subprocess.run(["knotc", "-s", f"{self.dir}/run/knot.sock", "stats", "mod-stats"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False).stdout.decode()
        prefix = f"mod-stats.{name} = "
        for line in out.splitlines():
            if line.startswith(prefix):
                return int(line[len(prefix):])
        return 0

    def stop(self, timeout=20):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
