"""DSNs composed by queue/dsn.cpp, parsed by an independent parser: Python's `email` package.

Runs the DsnSamples test of queue_dsn_test with RINGMAIL_DSN_SAMPLES pointing at a temporary
directory, then checks each sample's MIME structure and RFC 3464 fields the way a receiving
mail client would read them. Run with Debian's /usr/bin/python3.
"""
import email
import email.policy
import email.utils
import os
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("RINGMAIL_BUILD", os.path.join(os.path.dirname(__file__), "../../build/release"))
SAMPLE_WRITER = os.path.join(BUILD, "tests", "queue", "queue_dsn_test")


class DsnFormat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(SAMPLE_WRITER):
            raise unittest.SkipTest(f"{SAMPLE_WRITER} not built")
        cls.dir = tempfile.mkdtemp(prefix="ringmail-dsn-")
        env = dict(os.environ, RINGMAIL_DSN_SAMPLES=cls.dir)
        subprocess.run([SAMPLE_WRITER, "--gtest_filter=DsnSamples.*"], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def load(self, name):
        with open(os.path.join(self.dir, name + ".eml"), "rb") as f:
            raw = f.read()
        # The wire form: CRLF only, no line over 998 octets.
        self.assertNotIn(b"\n", raw.replace(b"\r\n", b""))
        self.assertNotIn(b"\r", raw.replace(b"\r\n", b""))
        for line in raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.defects, [])
        return msg

    def report_parts(self, msg):
        """(human part, per-message fields, [per-recipient fields], returned part)."""
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = list(msg.iter_parts())
        self.assertEqual(len(parts), 3)
        human, status, returned = parts
        self.assertEqual(human.get_content_type(), "text/plain")
        self.assertEqual(status.get_content_type(), "message/delivery-status")
        # The email package parses message/delivery-status into one block per field group.
        groups = status.get_payload()
        self.assertGreaterEqual(len(groups), 2)
        return human, groups[0], groups[1:], returned

    def common_headers(self, msg, subject):
        self.assertEqual(msg["Subject"], subject)
        self.assertEqual(email.utils.parseaddr(msg["To"])[1], "alice@example.org")
        self.assertEqual(email.utils.parseaddr(msg["From"])[1], "MAILER-DAEMON@relay.ringmail.test")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertIsNotNone(email.utils.parsedate_to_datetime(str(msg["Date"])))
        self.assertRegex(str(msg["Message-ID"]), r"^<[^<>@\s]+@relay\.ringmail\.test>$")

    def test_failure_with_full_message(self):
        msg = self.load("failure_full")
        self.common_headers(msg, "Undelivered Mail Returned to Sender")
        human, per_message, rcpts, returned = self.report_parts(msg)
        self.assertIn("could not be delivered", human.get_content())
        self.assertEqual(per_message["Reporting-MTA"], "dns; relay.ringmail.test")
        self.assertEqual(per_message["Original-Envelope-Id"], "QQ314159")
        self.assertEqual(email.utils.parsedate_to_datetime(per_message["Arrival-Date"]).timestamp(), 1800000000)
        self.assertEqual(len(rcpts), 1)
        r = rcpts[0]
        self.assertEqual(r["Final-Recipient"], "rfc822; bob@example.net")
        self.assertEqual(r["Original-Recipient"], "rfc822; Bob@Example.NET")
        self.assertEqual(r["Action"], "failed")
        self.assertEqual(r["Status"], "5.1.1")
        self.assertEqual(r["Remote-MTA"], "dns; mx1.example.net")
        self.assertEqual(" ".join(r["Diagnostic-Code"].split()),
                         "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown")
        self.assertEqual(email.utils.parsedate_to_datetime(r["Last-Attempt-Date"]).timestamp(), 1800000100)
        self.assertIsNone(r["Will-Retry-Until"])
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        original = returned.get_payload()[0]
        self.assertEqual(original["Subject"], "quarterly figures")
        self.assertIn("Body line two.", original.get_content())

    def test_failure_headers_only_two_recipients(self):
        msg = self.load("failure_headers_two_rcpts")
        _, _, rcpts, returned = self.report_parts(msg)
        self.assertEqual([r["Final-Recipient"] for r in rcpts],
                         ["rfc822; bob@example.net", "rfc822; carol@example.net"])
        self.assertEqual([r["Status"] for r in rcpts], ["5.1.1", "4.4.7"])
        self.assertIsNone(rcpts[1]["Original-Recipient"])
        # A long diagnostic is folded, and unfolds to the original text.
        self.assertEqual(" ".join(rcpts[1]["Diagnostic-Code"].split()), "smtp; 451 4.3.0 try again later " + "w" * 300)
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
        text = returned.get_payload(decode=True).decode()
        self.assertIn("Subject: quarterly figures", text)
        self.assertNotIn("Body line", text)

    def test_delay_notice(self):
        msg = self.load("delay")
        self.common_headers(msg, "Delayed Mail (still being retried)")
        _, per_message, rcpts, returned = self.report_parts(msg)
        self.assertIsNone(per_message["Original-Envelope-Id"])
        self.assertEqual(rcpts[0]["Action"], "delayed")
        self.assertEqual(rcpts[0]["Status"], "4.4.1")
        until = email.utils.parsedate_to_datetime(rcpts[0]["Will-Retry-Until"])
        self.assertEqual(until.timestamp(), 1800172800)
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")

    def test_success_relayed(self):
        msg = self.load("success_relayed")
        self.common_headers(msg, "Successful Mail Delivery Report")
        _, _, rcpts, returned = self.report_parts(msg)
        self.assertEqual(rcpts[0]["Action"], "relayed")
        self.assertEqual(rcpts[0]["Status"], "2.0.0")
        self.assertEqual(rcpts[0]["Diagnostic-Code"], "smtp; 250 2.0.0 Ok: queued as 4F3A")
        # RET=FULL applies to failures only (RFC 3461 section 4.3): a success report returns headers.
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")

    def test_envelope_recipient_is_the_original_sender(self):
        for name in ("failure_full", "delay", "success_relayed"):
            with open(os.path.join(self.dir, name + ".rcpt")) as f:
                self.assertEqual(f.read(), "alice@example.org")


if __name__ == "__main__":
    unittest.main()
