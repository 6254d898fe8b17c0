"""ringmail-queue against the real admin server (fake_admin_server: the HTTP server of engine/admin
over an in-memory backend) on a loopback port: tables, --json passthrough, actions, exit codes
and the message when the daemon is not reachable. Run with Debian's /usr/bin/python3.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("RINGMAIL_BUILD", os.path.join(os.path.dirname(__file__), "../../build/release"))
CLI = os.path.join(BUILD, "tools", "queue", "ringmail-queue")
FAKE = os.path.join(BUILD, "tests", "engine", "admin", "fake_admin_server")


class FakeAdmin:
    def __init__(self, workdir, extra=()):
        self.ready = os.path.join(workdir, "admin.ready")
        if os.path.exists(self.ready):
            os.unlink(self.ready)  # left by an earlier server in this directory
        self.proc = subprocess.Popen([FAKE, self.ready, "127.0.0.1:0", *extra], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake_admin_server did not start")
            time.sleep(0.01)
        with open(self.ready) as f:
            self.address = f.read().strip()

    def stop(self):
        """Closes stdin; returns the backend calls the server made, in order."""
        out, _ = self.proc.communicate(timeout=20)
        return out.splitlines()


@unittest.skipUnless(os.path.exists(CLI) and os.path.exists(FAKE), "ringmail-queue or fake_admin_server not built")
class AdminCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ringmail-admin-")
        self.admin = FakeAdmin(self.dir)

    def tearDown(self):
        if self.admin.proc.poll() is None:
            self.admin.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args, admin=None):
        return subprocess.run([CLI, "--admin", admin or self.admin.address, *args], capture_output=True, text=True,
                              timeout=60)

    def test_list_table_and_json(self):
        r = self.cli("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["QUEUE", "NEXT", "HOP", "CONNECTOR", "STATE", "MSGS", "RCPTS", "OLDEST",
                                            "NEXT", "RETRY", "LAST", "ERROR"])
        self.assertTrue(lines[1].startswith("smtp:example.com "))
        self.assertIn("Retry", lines[1])
        # Columns line up: STATE starts at the same offset on every row.
        col = lines[0].index("STATE")
        for row in lines[1:4]:
            self.assertRegex(row[col:], r"^(Retry|Active|Unreachable|Ready|Suspended)\b")
        self.assertEqual(lines[-1], "3 queues, 3 messages, 3 recipients")

        r = self.cli("--json", "list")
        self.assertEqual(r.returncode, 0)
        doc = json.loads(r.stdout)
        by_id = {q["id"]: q for q in doc["queues"]}
        self.assertEqual(by_id["smtp:example.com"]["state"], "Retry")
        self.assertEqual(by_id["smtp:example.com"]["messages"], 2)
        self.assertEqual(by_id["smtp:example.com"]["last_error"], "451 4.7.1 greylisted, try again later")
        self.assertGreater(by_id["smtp:example.com"]["next_retry_in_seconds"], 0)
        self.assertEqual(by_id["unreachable"]["connector"], "")
        self.assertEqual(doc["totals"], {"queues": 3, "messages": 3, "recipients": 3})

    def test_messages_and_show(self):
        r = self.cli("messages", "smtp:example.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("00000000000000A1  alice@example.net", r.stdout)
        self.assertIn("00000000000000A2  <>", r.stdout)
        r = self.cli("--json", "messages", "smtp:example.com", "--limit", "1")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["total"], 2)
        self.assertEqual(len(doc["messages"]), 1)

        r = self.cli("show", "00000000000000A1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Sender:    alice@example.net", r.stdout)
        self.assertRegex(r.stdout, r"bob@example.com\s+smtp:example.com\s+Deferred\s+3")
        doc = json.loads(self.cli("--json", "show", "00000000000000A1").stdout)
        self.assertEqual([x["state"] for x in doc["recipients"]], ["Deferred", "Delivered"])

    def test_actions_change_state(self):
        r = self.cli("suspend", "smtp:example.com")
        self.assertEqual((r.returncode, r.stdout), (0, "queue smtp:example.com suspended\n"))
        doc = json.loads(self.cli("--json", "list").stdout)
        self.assertEqual({q["id"]: q["state"] for q in doc["queues"]}["smtp:example.com"], "Suspended")
        r = self.cli("retry", "smtp:example.com")  # refused while suspended (409)
        self.assertEqual(r.returncode, 1)
        self.assertIn("suspended", r.stderr)
        self.assertEqual(self.cli("resume", "smtp:example.com").returncode, 0)
        self.assertEqual(self.cli("retry", "smtp:example.com").returncode, 0)
        self.assertEqual(self.cli("suspend", "--message", "00000000000000A2").returncode, 0)
        self.assertEqual(self.cli("resume", "--message", "00000000000000A2").returncode, 0)
        self.assertEqual(self.cli("retry", "--message", "00000000000000A2").returncode, 0)
        r = self.cli("remove", "00000000000000A1", "--no-dsn")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no DSN", r.stdout)
        self.assertEqual(self.cli("remove", "00000000000000B1").returncode, 0)
        r = self.cli("--json", "remove", "00000000000000A1")  # gone: 404, JSON still on stdout
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout), {"ok": False, "message": "no message 00000000000000A1"})
        self.assertEqual(self.cli("reload").returncode, 0)
        calls = self.admin.stop()
        self.assertEqual([c for c in calls if not c.startswith(("list_", "find_"))], [
            "suspend_queue smtp:example.com", "retry_queue smtp:example.com", "resume_queue smtp:example.com",
            "retry_queue smtp:example.com", "suspend_message 00000000000000A2", "resume_message 00000000000000A2",
            "retry_message 00000000000000A2", "remove_message 00000000000000A1 no-dsn",
            "remove_message 00000000000000B1 dsn", "remove_message 00000000000000A1 dsn", "reload"])

    def test_failures_and_usage_errors(self):
        r = self.cli("messages", "no-such-queue")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "ringmail-queue: no queue no-such-queue\n")
        self.assertEqual(self.cli("show").returncode, 2)                       # missing ID
        self.assertEqual(self.cli("retry", "q", "--message", "m").returncode, 2)  # both forms
        self.assertEqual(self.cli("frobnicate").returncode, 2)

    def test_failed_reload_is_reported(self):
        self.admin.stop()
        self.admin = FakeAdmin(self.dir, extra=("--fail-reload",))
        r = self.cli("reload")
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown key "smarthost"', r.stderr)

    def test_daemon_not_reachable(self):
        address = self.admin.address
        self.admin.stop()  # the port is closed now
        r = self.cli("list", admin=address)
        self.assertEqual(r.returncode, 3)
        self.assertIn(f"cannot reach the ringmail admin interface at {address}: Connection refused", r.stderr)


if __name__ == "__main__":
    unittest.main()
