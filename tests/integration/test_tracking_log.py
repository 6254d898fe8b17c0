"""The message-tracking log (--tracking-log-dir): every line is a JSON object, and a message's life
can be followed by its queue id — received from swaks, delivered to aiosmtpd, a refused recipient
bounced with its DSN (itself a message, received and delivered), deferrals with their retry
time, expiry and its DSN, removal by the administrator; files past --log-max-age are removed.
Without the flag nothing is written."""
import glob
import json
import os
import re
import subprocess
import unittest

from harness import DaemonTestCase, SmtpConversation, binary, free_port, swaks, wait_for
from sinks import AiosmtpdSink, write_connectors


def events(directory):
    out = []
    for name in sorted(glob.glob(os.path.join(directory, "tracking-*-w*.log"))):
        with open(name, encoding="utf-8") as f:
            for line in f:
                out.append(json.loads(line))  # every line must parse
    # Workers write their own files; a message received on one and handled on another in the same
    # millisecond ties on time, and its receive came first.
    return sorted(out, key=lambda e: (e["time"], e["event"] != "receive"))


class TrackingLogTest(DaemonTestCase):
    def relay(self, port, *args, retry=("--retry-min", "1", "--retry-max", "2")):
        self.log_dir = os.path.join(self.tmp, "tracking")
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), port)
        return self.start_daemon("--config", conf, "--tracking-log-dir", self.log_dir, *retry, "--workers", "2", *args)

    def test_received_delivered_bounced_with_its_dsn(self):
        sink = AiosmtpdSink(self.tmp, rcpt_replies={"refused": "550 5.1.1 <refused@example.com>: no such user"})
        sink.start()
        self.addCleanup(sink.stop)
        d = self.relay(sink.port)
        rc, out = swaks(d.port, "--from", "sender@example.org", "--to", "ok@example.com,refused@example.com",
                        "--header", "Subject: tracking")
        self.assertEqual(rc, 0, out)
        qid = re.search(r"queued as ([0-9A-F]{16})", out).group(1)
        wait_for(lambda: sink.count() >= 2, timeout=30, what="the message and the DSN at aiosmtpd")
        self.assertEqual(d.stop(), 0)  # the logs are flushed at the latest when the workers stop

        evs = events(self.log_dir)
        mine = [e for e in evs if e["id"] == qid]
        self.assertEqual([e["event"] for e in mine][:1], ["receive"], mine)
        rx = mine[0]
        self.assertEqual(rx["from"], "sender@example.org")
        self.assertEqual(rx["to"], ["ok@example.com", "refused@example.com"])
        self.assertGreater(rx["size"], 100)
        self.assertRegex(rx["client"], r"^127\.0\.0\.1:\d+ \S+")
        # The Message-ID swaks wrote, as the receiver got it.
        (_, delivered), = [m for m in sink.messages() if m[0]["mail_from"] == "sender@example.org"]
        header = re.search(rb"^Message-Id:\s*(<[^>]+>)", delivered, re.M | re.I).group(1).decode()
        self.assertEqual(rx["message_id"], header)
        self.assertRegex(rx["time"], r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        by_event = {e["event"]: e for e in mine}
        self.assertEqual(set(by_event), {"receive", "deliver", "bounce", "dsn"}, mine)
        self.assertEqual(by_event["deliver"]["to"], "ok@example.com")
        self.assertEqual(by_event["deliver"]["connector"], "Sink")
        self.assertEqual(by_event["deliver"]["remote"], f"127.0.0.1:{sink.port}")
        self.assertIn("250", by_event["deliver"]["reply"])
        self.assertEqual(by_event["deliver"]["attempt"], 1)
        self.assertEqual(by_event["bounce"]["to"], "refused@example.com")
        self.assertEqual(by_event["bounce"]["status"], "5.1.1")
        self.assertIn("no such user", by_event["bounce"]["reply"])
        self.assertEqual((by_event["dsn"]["kind"], by_event["dsn"]["to"], by_event["dsn"]["recipients"]),
                         ("failure", "sender@example.org", 1))
        # The DSN is a message of its own: received from the null sender, delivered to the sender.
        dsn_rx = [e for e in evs if e["event"] == "receive" and e["client"] == f"DSN for {qid}"]
        self.assertEqual(len(dsn_rx), 1, evs)
        self.assertEqual((dsn_rx[0]["from"], dsn_rx[0]["to"]), ("", ["sender@example.org"]))
        self.assertEqual(dsn_rx[0]["message_id"], "")  # not taken from DSNs
        dsn_out = [e for e in evs if e["id"] == dsn_rx[0]["id"] and e["event"] == "deliver"]
        self.assertEqual([e["to"] for e in dsn_out], ["sender@example.org"])

    def test_deferral_then_expiry(self):
        dead = free_port()  # nothing listens: connection refused
        d = self.relay(dead, "--message-expiration", "3", "--glitch-retries", "0")
        rc, out = swaks(d.port, "--from", "sender@example.org", "--to", "late@example.com")
        self.assertEqual(rc, 0, out)
        qid = re.search(r"queued as ([0-9A-F]{16})", out).group(1)
        wait_for(lambda: "expired" in d.read_log(), timeout=30, what="expiry")
        self.assertEqual(d.stop(), 0)
        mine = [e for e in events(self.log_dir) if e["id"] == qid]
        kinds = [e["event"] for e in mine]
        self.assertEqual(kinds[0], "receive")
        self.assertEqual(kinds[-2:], ["expire", "dsn"], kinds)
        defers = [e for e in mine if e["event"] == "defer"]
        self.assertGreaterEqual(len(defers), 1, kinds)
        self.assertEqual(defers[0]["to"], ["late@example.com"])
        self.assertEqual(defers[0]["attempt"], 1)
        self.assertGreaterEqual(defers[0]["retry_in"], 1)
        self.assertEqual(defers[0]["connector"], "Sink")
        self.assertIn("refused", defers[0]["reason"].lower())
        self.assertEqual(mine[-2]["to"], ["late@example.com"])
        self.assertIn("refused", mine[-2]["reason"].lower())
        self.assertEqual((mine[-1]["kind"], mine[-1]["to"]), ("failure", "sender@example.org"))

    def test_removal_by_the_administrator(self):
        d = self.relay(free_port(), "--glitch-retries", "0", "--admin", "127.0.0.1:0",
                       retry=("--retry-min", "300", "--retry-max", "600"))
        with open(os.path.join(self.tmp, "ready")) as f:
            (admin,) = [l.split()[1] for l in f.read().splitlines() if l.startswith("admin ")]
        rc, out = swaks(d.port, "--from", "sender@example.org", "--to", "gone@example.com")
        self.assertEqual(rc, 0, out)
        qid = re.search(r"queued as ([0-9A-F]{16})", out).group(1)
        wait_for(lambda: "deferred via" in d.read_log(), timeout=30, what="the deferral")
        p = subprocess.run([binary("ringmail-queue"), "--admin", admin, "remove", qid], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(d.stop(), 0)
        mine = [e for e in events(self.log_dir) if e["id"] == qid]
        self.assertEqual([e["event"] for e in mine], ["receive", "defer", "remove", "dsn"], mine)
        self.assertEqual(mine[2]["to"], ["gone@example.com"])
        self.assertTrue(mine[2]["queue"])
        self.assertIs(mine[2]["dsn"], True)

    def test_files_older_than_log_max_age_are_removed(self):
        log_dir = os.path.join(self.tmp, "tracking")
        os.makedirs(log_dir)
        for name in ("tracking-20200101-w0.log", "tracking-20200101-w7.log", "notes.txt"):
            with open(os.path.join(log_dir, name), "w") as f:
                f.write("{}\n")
        d = self.start_daemon("--hold", "--workers", "1", "--tracking-log-dir", log_dir, "--log-max-age", "30")
        rc, out = swaks(d.port, "--from", "s@example.org", "--to", "a@example.com")
        self.assertEqual(rc, 0, out)
        self.assertEqual(d.stop(), 0)
        left = sorted(os.listdir(log_dir))
        self.assertNotIn("tracking-20200101-w0.log", left)  # this worker's, older than 30 days
        self.assertIn("tracking-20200101-w7.log", left)  # not a worker of this daemon: not ours to remove
        self.assertIn("notes.txt", left)
        self.assertEqual(len([n for n in left if re.fullmatch(r"tracking-20\d{6}-w0\.log", n)]), 1, left)
        self.assertRegex(d.read_log(), r"removed 1 file\(s\) older than 30 days")

    def test_refused_commands_are_logged_as_rejects(self):
        log_dir = os.path.join(self.tmp, "tracking")
        d = self.start_daemon("--hold", "--relay-networks", "127.0.0.1/32", "--max-message-size", "10000",
                              "--tracking-log-dir", log_dir)
        # An outside client (127.0.0.2 is not a relay network here): relaying refused.
        rc, out = swaks(d.port, "--from", "s@example.org", "--to", "r@example.com", "--local-interface", "127.0.0.2")
        self.assertNotEqual(rc, 0, out)
        # A relay client announcing a message over the size limit.
        c = SmtpConversation(d.port)
        self.assertTrue(c.read_reply().startswith("220"))
        c.cmd("EHLO client.test")
        self.assertTrue(c.cmd("MAIL FROM:<big@example.org> SIZE=20000").startswith("552"))
        c.cmd("QUIT")
        c.close()
        self.assertEqual(d.stop(), 0)
        rejects = [e for e in events(log_dir) if e["event"] == "reject"]
        self.assertEqual([(e["command"], e["reply"][:9]) for e in rejects],
                         [("RCPT", "554 5.7.1"), ("MAIL", "552 5.3.4")], rejects)
        relay = rejects[0]
        self.assertRegex(relay["client"], r"^127\.0\.0\.2:\d+ ")
        self.assertEqual(relay["argument"], "TO:<r@example.com>")
        self.assertRegex(relay["id"], r"^[0-9A-F]{16}$")  # the transaction's queue id (MAIL was accepted)
        self.assertIn("Relay access denied", relay["reply"])
        self.assertEqual((rejects[1]["id"], rejects[1]["argument"]), ("", "FROM:<big@example.org> SIZE=20000"))

    def test_nothing_without_the_flag(self):
        d = self.start_daemon("--hold")
        rc, out = swaks(d.port, "--from", "s@example.org", "--to", "a@example.com")
        self.assertEqual(rc, 0, out)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(glob.glob(os.path.join(self.tmp, "**", "tracking-*"), recursive=True), [])


if __name__ == "__main__":
    unittest.main()
