"""Outbound delivery against independent receivers: aiosmtpd (python3-aiosmtpd) and Postfix's
smtp-sink. What arrives must be what was submitted, byte for byte, apart from the one Received:
header ringmail adds; dot-leading lines and 8-bit bodies included. Several recipients go in one
transaction; a recipient the receiver refuses fails alone. Fault handling is in test_delivery_faults.
"""
import collections
import email
import email.policy
import os
import re
import subprocess
import unittest

from harness import DaemonTestCase, SmtpConversation, binary, swaks, wait_for
from sinks import AiosmtpdSink, SmtpSink, strip_first_header, write_connectors
from test_listener import spool_list

# A message exercising what a relay must not touch: header folding, lines that begin with one or
# two dots (stuffed on the wire, unstuffed at each end), a lone "." in a line of its own inside a
# longer line, trailing spaces, empty lines, 8-bit bytes (UTF-8 and a lone Latin-1 byte), a long
# line and a last line that ends the message.
MESSAGE = (b"From: Sender <s@example.org>\r\n"
           b"To: a@example.com, b@example.net\r\n"
           b"Subject: =?UTF-8?Q?relay_check?=\r\n"
           b"X-Folded: first part\r\n"
           b"\tsecond part\r\n"
           b"Message-ID: <delivery-check-1@example.org>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n"
           b"\r\n"
           b"first line\r\n"
           b".leading dot\r\n"
           b"..two leading dots\r\n"
           b".\tdot and tab\r\n"
           b"a . in the middle\r\n"
           b"trailing spaces   \r\n"
           b"\r\n"
           b"\r\n"
           b"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa8 utf-8\r\n"
           b"latin-1 byte: \xe9\r\n"
           + b"x" * 990 + b"\r\n"
           b"last line\r\n")


def dot_stuff(message):
    """RFC 5321 4.5.2: a line beginning with "." gets one more."""
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def submit_raw(port, mail_from, rcpts, message, body_8bit=True, smtputf8=False):
    """One transaction over a raw socket; returns the queue id from the 250 reply."""
    c = SmtpConversation(port)
    try:
        assert c.read_reply().startswith("220")
        ehlo = c.cmd("EHLO client.test")
        assert "8BITMIME" in ehlo, ehlo
        params = (" BODY=8BITMIME" if body_8bit else "") + (" SMTPUTF8" if smtputf8 else "")
        reply = c.cmd(f"MAIL FROM:<{mail_from}>" + params)
        assert reply.startswith("250"), reply
        for r in rcpts:
            reply = c.cmd(f"RCPT TO:<{r}>")
            assert reply.startswith("250"), reply
        reply = c.cmd("DATA")
        assert reply.startswith("354"), reply
        c.send(dot_stuff(message) + b".\r\n")
        reply = c.read_reply()
        assert reply.startswith("250"), reply
        c.cmd("QUIT")
        return reply.rsplit(" ", 1)[-1]
    finally:
        c.close()


class RelayTestCase(DaemonTestCase):
    """A daemon relaying everything to one receiver, retries after one second."""

    def start_relay(self, port, *args, extra=""):
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), port, extra=extra)
        return self.start_daemon("--config", conf, "--retry-min", "1", "--retry-max", "2", "--workers", "2", *args)

    def assert_spool_empty_after_stop(self, d):
        self.assertEqual(d.stop(), 0)
        self.assertEqual(spool_list(d.spool), [], "messages left in the spool after every recipient was final")

    def assert_received_header(self, header):
        self.assertTrue(header.startswith(b"Received: "), header)
        self.assertIn(b"ringmail.test", header)


class AiosmtpdDeliveryTest(RelayTestCase):
    def setUp(self):
        super().setUp()
        self.sink = AiosmtpdSink(self.tmp, rcpt_replies={"refused": "550 5.1.1 <refused@example.com>: no such user"})
        self.sink.start()
        self.addCleanup(self.sink.stop)

    def test_message_arrives_byte_identical_with_one_received_header(self):
        d = self.start_relay(self.sink.port)
        qid = submit_raw(d.port, "s@example.org", ["a@example.com", "b@example.net"], MESSAGE)
        self.assertRegex(qid, r"^[0-9A-F]{16}$")
        wait_for(lambda: self.sink.count() >= 1, timeout=30, what="delivery to aiosmtpd")
        (env, data), = self.sink.messages()
        # Both recipients in one transaction, the envelope as submitted, BODY=8BITMIME passed on.
        self.assertEqual(env["mail_from"], "s@example.org")
        self.assertEqual(env["rcpt_tos"], ["a@example.com", "b@example.net"])
        self.assertIn("BODY=8BITMIME", [o.upper() for o in env["mail_options"]])
        header, rest = strip_first_header(data)
        self.assert_received_header(header)
        self.assertIn(qid.encode(), header)
        self.assertEqual(rest, MESSAGE)
        self.assert_spool_empty_after_stop(d)
        self.assertEqual(self.sink.count(), 1, "delivered more than once")

    def test_swaks_submission_with_dot_lines_relayed_unchanged(self):
        d = self.start_relay(self.sink.port)
        body = ".dot line\n..two dots\n.\nmiddle . dot\nend"
        rc, out = swaks(d.port, "--from", "s@example.org", "--to", "one@example.com,two@example.com,three@example.com",
                        "--header", "Subject: swaks relay", "--body", body)
        self.assertEqual(rc, 0, out)
        wait_for(lambda: self.sink.count() >= 1, timeout=30, what="delivery to aiosmtpd")
        (env, data), = self.sink.messages()
        self.assertEqual(env["rcpt_tos"], ["one@example.com", "two@example.com", "three@example.com"])
        header, rest = strip_first_header(data)
        self.assert_received_header(header)
        self.assertIn(b"Subject: swaks relay\r\n", rest)
        # swaks stuffs the dots on the wire; aiosmtpd unstuffs; the lines arrive as written.
        self.assertIn(b"\r\n\r\n.dot line\r\n..two dots\r\n.\r\nmiddle . dot\r\nend\r\n", rest)
        self.assert_spool_empty_after_stop(d)

    def test_refused_recipient_fails_alone(self):
        d = self.start_relay(self.sink.port)
        submit_raw(d.port, "s@example.org", ["ok1@example.com", "refused@example.com", "ok2@example.com"], MESSAGE)
        wait_for(lambda: self.sink.count() >= 2, timeout=30, what="the message and the DSN at aiosmtpd")
        wait_for(lambda: "failed" in d.read_log(), timeout=10, what="the failure in the daemon log")
        (env, data), (dsn_env, dsn) = sorted(self.sink.messages(), key=lambda m: m[0]["mail_from"] in ("", "<>"))
        self.assertEqual(env["rcpt_tos"], ["ok1@example.com", "ok2@example.com"])
        self.assertEqual(strip_first_header(data)[1], MESSAGE)
        log = d.read_log()
        self.assertRegex(log, r"<refused@example\.com>: failed via Sink \(127\.0\.0\.1:\d+\): .*550")
        self.assertNotRegex(log, r"<ok[12]@example\.com>: failed")
        # The sender is told, with the null reverse-path, in an RFC 3464 report.
        self.assertEqual((dsn_env["mail_from"], dsn_env["rcpt_tos"]), ("<>", ["s@example.org"]))  # aiosmtpd spells null "<>"
        report = email.message_from_bytes(dsn, policy=email.policy.default)
        self.assertEqual(report.get_content_type(), "multipart/report")
        status = [p for p in report.iter_parts() if p.get_content_type() == "message/delivery-status"][0]
        (rcpt,) = status.get_payload()[1:]
        self.assertEqual((rcpt["Final-Recipient"], rcpt["Action"]), ("rfc822; refused@example.com", "failed"))
        self.assert_spool_empty_after_stop(d)
        self.assertRegex(d.read_log(), r"delivery: 3 recipients delivered, 0 deferred, 1 failed")

    def test_null_sender_and_smtputf8_envelope(self):
        d = self.start_relay(self.sink.port)
        submit_raw(d.port, "", ["bounce-target@example.com"], MESSAGE)
        submit_raw(d.port, "s\u00e9nder@example.org", ["j\u00fcrgen@example.com"], MESSAGE, smtputf8=True)
        wait_for(lambda: self.sink.count() >= 2, timeout=30, what="two messages at aiosmtpd")
        by_rcpt = {env["rcpt_tos"][0]: env for env, _ in self.sink.messages()}
        self.assertEqual(by_rcpt["bounce-target@example.com"]["mail_from"], "<>")  # aiosmtpd keeps the brackets
        utf8 = by_rcpt["j\u00fcrgen@example.com"]
        self.assertEqual(utf8["mail_from"], "s\u00e9nder@example.org")
        self.assertIn("SMTPUTF8", [o.upper() for o in utf8["mail_options"]])
        for _, data in self.sink.messages():
            self.assertEqual(strip_first_header(data)[1], MESSAGE)
        self.assert_spool_empty_after_stop(d)

    def test_large_message_arrives_byte_identical(self):
        # Several MB: the body goes out in many sends (back-pressure path), dots at chunk edges.
        line = b".." + bytes(range(0x20, 0x7f)) + b"\xc3\xa9\r\n"
        big = MESSAGE.replace(b"last line\r\n", line * 25000 + b"last line\r\n")
        self.assertGreater(len(big), 2_500_000)
        d = self.start_relay(self.sink.port)
        submit_raw(d.port, "s@example.org", ["big@example.com"], big)
        wait_for(lambda: self.sink.count() >= 1, timeout=60, what="the large message at aiosmtpd")
        (env, data), = self.sink.messages()
        rest = strip_first_header(data)[1]
        self.assertEqual(len(rest), len(big))
        self.assertTrue(rest == big, "the large message changed in transit")
        self.assert_spool_empty_after_stop(d)

    def test_every_acknowledged_message_arrives_once(self):
        d = self.start_relay(self.sink.port)
        log = os.path.join(self.tmp, "inject.log")
        p = subprocess.run([binary("ringmail-inject"), "--target", f"127.0.0.1:{d.port}", "--count", "300",
                            "--size", "3000", "--connections", "5", "--rcpts", "2", "--8bit", "--log", log,
                            "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        with open(log) as f:
            acked = [line.split()[1] for line in f if line.startswith("250 ")]
        self.assertEqual(len(acked), 300)
        wait_for(lambda: self.sink.count() >= 300, timeout=90, what="300 messages at aiosmtpd")
        seen = collections.Counter()
        for env, data in self.sink.messages():
            self.assertEqual(len(env["rcpt_tos"]), 2)
            m = re.search(rb"\r\nMessage-ID: (<[^>]+>)\r\n", data)
            seen[m.group(1).decode()] += 1
        self.assertEqual(sorted(seen), sorted(acked))
        self.assertEqual([mid for mid, n in seen.items() if n > 1], [])
        self.assert_spool_empty_after_stop(d)


class ShutdownDuringDeliveryTest(RelayTestCase):
    """SIGTERM while aiosmtpd holds the end-of-data reply of a message it has already saved: the
    transaction finishes within --shutdown-grace (no second copy after a restart); past the grace
    it is cut and the message stays queued."""

    def start_slow_sink(self, delay):
        sink = AiosmtpdSink(self.tmp, data_delay=delay)
        sink.start()
        self.addCleanup(sink.stop)
        return sink

    def test_transaction_under_way_finishes_before_exit(self):
        sink = self.start_slow_sink(2.0)
        d = self.start_relay(sink.port)
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: sink.count() >= 1, timeout=30, what="the message at aiosmtpd (its 250 held back)")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(spool_list(d.spool), [], "the delivered message is still queued after a clean stop")
        self.assertEqual(sink.count(), 1)
        # A restart on the same spool has nothing to send again.
        d2 = self.start_daemon("--config", os.path.join(self.tmp, "connectors.toml"), "--workers", "2",
                               spool=d.spool)
        self.assertEqual(d2.stop(), 0)
        self.assertEqual(sink.count(), 1, "delivered twice")

    def test_transaction_is_cut_after_the_grace_period(self):
        sink = self.start_slow_sink(6.0)
        d = self.start_relay(sink.port, "--shutdown-grace", "1")
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: sink.count() >= 1, timeout=30, what="the message at aiosmtpd (its 250 held back)")
        self.assertEqual(d.stop(), 0)
        self.assertIn("cutting 1 outbound sessions still busy after 1 s", d.read_log())
        self.assertEqual(len(spool_list(d.spool)), 1, "a cut transaction must stay queued for the next start")


class TwoNextHopsTest(RelayTestCase):
    """One message whose recipients route to two connectors: one transaction to each receiver."""

    def test_recipients_split_across_two_next_hops(self):
        aio = AiosmtpdSink(self.tmp)
        aio.start()
        self.addCleanup(aio.stop)
        pf = SmtpSink(self.tmp)
        pf.start()
        self.addCleanup(pf.stop)
        conf = os.path.join(self.tmp, "two.toml")
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Com"\naddress_spaces = ["example.com"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{aio.port}"]\ntls = "none"\n\n'
                    f'[[connector]]\nname = "Net"\naddress_spaces = ["*.example.net"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{pf.port}"]\ntls = "none"\n')
        d = self.start_daemon("--config", conf, "--retry-min", "1", "--workers", "2")
        rcpts = ["a@example.com", "x@example.net", "b@example.com", "y@sub.example.net", "nowhere@example.org"]
        submit_raw(d.port, "s@example.org", rcpts, MESSAGE)
        wait_for(lambda: aio.count() >= 1 and pf.count() >= 1, timeout=30, what="both next hops")
        (env, data), = aio.messages()
        self.assertEqual(env["rcpt_tos"], ["a@example.com", "b@example.com"])
        self.assertEqual(strip_first_header(data)[1], MESSAGE)
        (penv, pdata), = pf.messages()
        self.assertEqual(penv["rcpt_args"], ["<x@example.net>", "<y@sub.example.net>"])
        self.assertEqual(strip_first_header(pdata, eol=b"\n")[1], MESSAGE.replace(b"\r\n", b"\n") + b"\n")
        # example.org has no connector: held (Unreachable), so the message stays queued for it alone.
        self.assertEqual(d.stop(), 0)
        (left,) = spool_list(d.spool)
        self.assertEqual(left["recipients"], rcpts)
        self.assertEqual(left["pending"], 1)
        self.assertRegex(d.read_log(), r"<nowhere@example\.org>: no connector")


class SmtpSinkDeliveryTest(RelayTestCase):
    """Postfix's smtp-sink dumps with LF line ends, so the comparison is line by line."""

    def setUp(self):
        super().setUp()
        self.sink = SmtpSink(self.tmp)
        self.sink.start()
        self.addCleanup(self.sink.stop)

    def test_message_arrives_line_identical(self):
        d = self.start_relay(self.sink.port)
        submit_raw(d.port, "s@example.org", ["a@example.com", "b@example.net"], MESSAGE)
        wait_for(lambda: self.sink.count() >= 1, timeout=30, what="delivery to smtp-sink")
        (env, data), = self.sink.messages()
        self.assertEqual(env["mail_args"].split()[0], "<s@example.org>")
        self.assertIn("BODY=8BITMIME", env["mail_args"].upper())
        self.assertEqual(env["rcpt_args"], ["<a@example.com>", "<b@example.net>"])
        header, rest = strip_first_header(data, eol=b"\n")
        self.assert_received_header(header)
        # The dump is the message's lines, LF-terminated, then one empty line.
        self.assertEqual(rest, MESSAGE.replace(b"\r\n", b"\n") + b"\n")
        self.assert_spool_empty_after_stop(d)

    def test_many_messages_many_recipients(self):
        d = self.start_relay(self.sink.port)
        for i in range(10):
            submit_raw(d.port, f"s{i}@example.org", [f"r{i}.{k}@example.com" for k in range(5)],
                       MESSAGE.replace(b"delivery-check-1", f"delivery-check-{i}".encode()))
        wait_for(lambda: self.sink.count() >= 10, timeout=60, what="10 messages at smtp-sink")
        got = sorted((env["mail_args"].split()[0], tuple(env["rcpt_args"])) for env, _ in self.sink.messages())
        want = sorted((f"<s{i}@example.org>", tuple(f"<r{i}.{k}@example.com>" for k in range(5))) for i in range(10))
        self.assertEqual(got, want)
        self.assert_spool_empty_after_stop(d)


if __name__ == "__main__":
    unittest.main()
