"""docs/examples/ringmail.service: systemd's own checker accepts it without a warning, and its
command line starts ringmail (paths moved to a temporary directory, loopback ports) — a message is
accepted and tracked, ExecReload's SIGHUP reloads the connector file, SIGTERM ends with 0."""
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import unittest

from harness import DaemonTestCase, binary, free_port, swaks, wait_for
from sinks import write_connectors

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "examples", "ringmail.service")


def unit_value(key):
    with open(UNIT) as f:
        (line,) = [l for l in f.read().splitlines() if l.startswith(key + "=")]
    return line.split("=", 1)[1]


class SystemdUnitTest(DaemonTestCase):
    def test_systemd_analyze_verify_is_silent(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        # verify checks that ExecStart's program exists: point it at this build's daemon.
        with open(UNIT) as f:
            text = f.read().replace("/usr/local/sbin/ringmail", binary("ringmail"))
        path = os.path.join(self.tmp, "ringmail.service")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(out.strip(), "", "systemd-analyze warned about the unit")

    def test_its_command_line_starts_ringmail(self):
        argv = shlex.split(unit_value("ExecStart"))
        self.assertEqual(argv[0], "/usr/local/sbin/ringmail")
        # Every flag the unit passes must exist; paths and ports move to this test's directory.
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), free_port())
        moved = {
            "--config": conf,
            "--admin": "127.0.0.1:0",
            "--tracking-log-dir": os.path.join(self.tmp, "log", "tracking"),
            "--protocol-log-dir": os.path.join(self.tmp, "log", "protocol"),
        }
        given_by_harness = {"--listen", "--spool", "--hostname"}  # the harness passes its own
        args, i = [], 1
        while i < len(argv):
            flag, value = argv[i], argv[i + 1]
            self.assertTrue(flag.startswith("--"), argv)
            if flag not in given_by_harness:
                self.assertIn(flag, moved, f"the test does not know where to move {flag}")
                args += [flag, moved[flag]]
            i += 2
        d = self.start_daemon(*args, "--retry-min", "300", "--retry-max", "600")
        rc, out = swaks(d.port, "--from", "s@example.org", "--to", "a@example.com")
        self.assertEqual(rc, 0, out)
        d.proc.send_signal(signal.SIGHUP)  # ExecReload
        wait_for(lambda: "connector file" in d.read_log() and "reloaded" in d.read_log(), timeout=20,
                 what="the reload")
        self.assertEqual(d.stop(), 0)
        events = []
        for name in glob.glob(os.path.join(moved["--tracking-log-dir"], "tracking-*.log")):
            with open(name) as f:
                events += [json.loads(line)["event"] for line in f]
        self.assertIn("receive", events)


if __name__ == "__main__":
    unittest.main()
