"""Queue behaviour on bad days, end to end against ringmail-sink: a permanent failure produces one
RFC 3464 DSN (parsed with Python's email package), the null sender never gets one, an expired message
produces exactly one failure DSN, the delay notice goes out once, recipients without a connector
wait in the Unreachable queue until a reload routes them, deferred recipients keep their attempt
count and retry time across a restart, and a destination whose every connection fails is marked
down and probed with one session until it works again. Times are scaled down with the daemon's
flags (--message-expiration, --delay-notice, --retry-min) so every test is bounded.
"""
import email
import email.policy
import json
import os
import signal
import subprocess
import time
import unittest

from harness import DaemonTestCase, SmtpConversation, binary, wait_for
from sinks import RingmailSink, write_connectors
from test_delivery import MESSAGE, dot_stuff, submit_raw


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def dsn_fields(msg):
    """(per-message fields, [per-recipient fields]) of a multipart/report DSN."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    status = [p for p in msg.iter_parts() if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1
    groups = status[0].get_payload()
    return groups[0], groups[1:]


class QueuePolicyTest(DaemonTestCase):
    def start_sink(self, *args, name="sink", port=0):
        s = RingmailSink(self.tmp, name=name, args=args, port=port)
        s.start()
        self.addCleanup(s.stop)
        return s

    def relay(self, port, *args, conf_extra=""):
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), port, extra=conf_extra)
        return self.start_daemon("--config", conf, "--retry-min", "1", "--retry-max", "2", "--workers", "2", *args)

    def transaction(self, port, mail, rcpts):
        """One message over a raw connection: `mail` is the MAIL command (with its parameters),
        `rcpts` pairs each RCPT command with the reply code it must get; ringmail announces DSN."""
        c = SmtpConversation(port)
        try:
            self.assertTrue(c.read_reply().startswith("220"))
            self.assertIn("DSN", c.cmd("EHLO client.test"))
            self.assertTrue(c.cmd(mail).startswith("250"))
            for cmd, code in rcpts:
                reply = c.cmd(cmd)
                self.assertTrue(reply.startswith(code), (cmd, reply))
            self.assertTrue(c.cmd("DATA").startswith("354"))
            c.send(dot_stuff(MESSAGE) + b".\r\n")
            self.assertTrue(c.read_reply().startswith("250"))
            c.cmd("QUIT")
        finally:
            c.close()

    def dsns(self, sink):
        return [r for r in sink.records() if r["mail_from"] == ""]

    def test_permanent_failure_gives_one_dsn_to_the_sender(self):
        sink = self.start_sink("--rcpt-reply", "550 5.1.1 No such user here", "--rcpt-reply-match", "bad")
        d = self.relay(sink.port)
        qid = submit_raw(d.port, "sender@example.org", ["good@example.com", "bad@example.com"], MESSAGE)
        wait_for(lambda: len(self.dsns(sink)) >= 1, timeout=30, what="the DSN at the sink")
        time.sleep(1)
        (rec,) = self.dsns(sink)
        self.assertEqual(rec["rcpts"], ["sender@example.org"])
        msg = parse(sink.body(rec))
        self.assertIn("MAILER-DAEMON", str(msg["From"]).upper())
        self.assertEqual(str(msg["To"]), "sender@example.org")
        per_msg, rcpts = dsn_fields(msg)
        self.assertIn("dns;", per_msg["Reporting-MTA"])
        self.assertEqual(len(rcpts), 1, "only the refused recipient is reported")
        r = rcpts[0]
        self.assertEqual(r["Final-Recipient"], "rfc822; bad@example.com")
        self.assertEqual(r["Action"], "failed")
        self.assertEqual(r["Status"], "5.1.1")
        self.assertIn("550 5.1.1 No such user here", r["Diagnostic-Code"])
        self.assertIn("127.0.0.1", r["Remote-MTA"])
        # The original headers come back (RET not given: headers only).
        returned = [p for p in msg.iter_parts() if p.get_content_type() == "text/rfc822-headers"]
        self.assertEqual(len(returned), 1)
        self.assertIn("delivery-check-1@example.org", returned[0].get_content())
        self.assertIn(qid, d.read_log())
        self.assertRegex(d.read_log(), r"failure DSN for 1 recipient\(s\) queued to <sender@example.org>")

    def test_dsn_parameters_are_honoured(self):
        # RFC 3461 on the listener: NOTIFY=NEVER silences a recipient's report, RET=FULL returns the
        # whole message, ENVID and ORCPT come back in the report.
        sink = self.start_sink("--rcpt-reply", "550 5.1.1 No such user here", "--rcpt-reply-match", "bad")
        d = self.relay(sink.port)
        self.transaction(d.port, "MAIL FROM:<sender@example.org> RET=FULL ENVID=batch+2B42",
                         [("RCPT TO:<bad1@example.com> NOTIFY=FAILURE ORCPT=rfc822;orig+40example.net", "250"),
                          ("RCPT TO:<bad2@example.com> NOTIFY=NEVER", "250"),
                          ("RCPT TO:<bad3@example.com> NOTIFY=BOGUS", "501")])
        wait_for(lambda: len(self.dsns(sink)) >= 1, timeout=30, what="the DSN")
        time.sleep(1)
        (rec,) = self.dsns(sink)
        msg = parse(sink.body(rec))
        per_msg, rcpts = dsn_fields(msg)
        self.assertEqual(per_msg["Original-Envelope-Id"], "batch+42")
        self.assertEqual([r["Final-Recipient"] for r in rcpts], ["rfc822; bad1@example.com"],
                         "NOTIFY=NEVER leaves bad2 out")
        self.assertEqual(rcpts[0]["Original-Recipient"], "rfc822; orig@example.net")
        returned = [p for p in msg.iter_parts() if p.get_content_type() == "message/rfc822"]
        self.assertEqual(len(returned), 1, "RET=FULL returns the whole message")
        self.assertIn(b"last line", sink.body(rec))

    def test_notify_success_to_a_next_hop_without_dsn_gives_a_relayed_report(self):
        # RFC 3461 §4.1: ringmail-sink does not announce DSN, so nobody after ringmail will report the
        # delivery; NOTIFY=SUCCESS gets a "relayed" report from ringmail, other recipients none.
        sink = self.start_sink()
        d = self.relay(sink.port)
        self.transaction(d.port, "MAIL FROM:<sender@example.org>",
                         [("RCPT TO:<wants@example.com> NOTIFY=SUCCESS,FAILURE", "250"),
                          ("RCPT TO:<quiet@example.com>", "250")])
        wait_for(lambda: len(self.dsns(sink)) >= 1, timeout=30, what="the relayed report")
        time.sleep(1)
        (rec,) = self.dsns(sink)
        self.assertEqual(rec["rcpts"], ["sender@example.org"])
        _, rcpts = dsn_fields(parse(sink.body(rec)))
        self.assertEqual([(r["Final-Recipient"], r["Action"], r["Status"]) for r in rcpts],
                         [("rfc822; wants@example.com", "relayed", "2.0.0")])
        self.assertRegex(d.read_log(), r"relayed DSN for 1 recipient\(s\) queued to <sender@example.org>")

    def test_null_sender_never_gets_a_dsn(self):
        sink = self.start_sink("--rcpt-reply", "550 5.1.1 No such user here", "--rcpt-reply-match", "bad")
        d = self.relay(sink.port)
        submit_raw(d.port, "", ["bad@example.com"], MESSAGE)
        wait_for(lambda: "the message has the null sender" in d.read_log(), timeout=30, what="the no-DSN log line")
        time.sleep(1.5)
        self.assertEqual(self.dsns(sink), [])
        self.assertEqual(sink.records(), [])

    def test_expiry_gives_exactly_one_failure_dsn(self):
        sink = self.start_sink("--rcpt-reply", "451 4.3.0 Try later", "--rcpt-reply-match", "slow")
        d = self.relay(sink.port, "--message-expiration", "3", "--delay-notice", "0")
        submit_raw(d.port, "sender@example.org", ["slow@example.com"], MESSAGE)
        wait_for(lambda: len(self.dsns(sink)) >= 1, timeout=30, what="the expiry DSN")
        time.sleep(3)  # retries would have run several times by now: still exactly one DSN
        (rec,) = self.dsns(sink)
        _, rcpts = dsn_fields(parse(sink.body(rec)))
        self.assertEqual([r["Action"] for r in rcpts], ["failed"])
        self.assertEqual(rcpts[0]["Status"], "4.4.7")
        self.assertIn("451 4.3.0 Try later", rcpts[0]["Diagnostic-Code"])
        self.assertRegex(d.read_log(), r"1 recipient\(s\) expired")

    def test_delay_notice_is_sent_once(self):
        sink = self.start_sink("--rcpt-reply", "451 4.3.0 Try later", "--rcpt-reply-match", "slow")
        d = self.relay(sink.port, "--message-expiration", "600", "--delay-notice", "2")
        submit_raw(d.port, "sender@example.org", ["slow@example.com"], MESSAGE)
        wait_for(lambda: len(self.dsns(sink)) >= 1, timeout=30, what="the delay notice")
        faults_then = sink.stats().get("rcpt_faults", 0)
        wait_for(lambda: sink.stats().get("rcpt_faults", 0) >= faults_then + 3, timeout=30, what="three more retries")
        (rec,) = self.dsns(sink)
        _, rcpts = dsn_fields(parse(sink.body(rec)))
        self.assertEqual(rcpts[0]["Action"], "delayed")
        self.assertTrue(rcpts[0]["Status"].startswith("4."))
        self.assertIn("Will-Retry-Until", rcpts[0])
        # Restart: the journal remembers the notice was sent.
        d.stop()
        d2 = self.start_daemon("--config", os.path.join(self.tmp, "connectors.toml"), "--retry-min", "1",
                               "--retry-max", "2", "--message-expiration", "600", "--delay-notice", "2",
                               spool=d.spool)
        faults_then = sink.stats().get("rcpt_faults", 0)
        wait_for(lambda: sink.stats().get("rcpt_faults", 0) >= faults_then + 2, timeout=30, what="retries after restart")
        self.assertEqual(len(self.dsns(sink)), 1)
        d2.stop()

    def test_unreachable_until_a_reload_routes_it(self):
        sink = self.start_sink()
        conf = os.path.join(self.tmp, "connectors.toml")
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Com"\naddress_spaces = ["example.com"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{sink.port}"]\ntls = "none"\n')
        d = self.start_daemon("--config", conf, "--retry-min", "1", "--workers", "2")
        submit_raw(d.port, "sender@example.org", ["a@example.com", "b@example.net"], MESSAGE)
        wait_for(lambda: len(sink.records()) >= 1, timeout=30, what="the routable recipient")
        self.assertRegex(d.read_log(), r"<b@example.net>: no connector .*held in the Unreachable queue")
        time.sleep(1)
        self.assertEqual([r["rcpts"] for r in sink.records()], [["a@example.com"]])
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Com"\naddress_spaces = ["example.com", "example.net"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{sink.port}"]\ntls = "none"\n')
        os.kill(d.proc.pid, signal.SIGHUP)
        wait_for(lambda: len(sink.records()) >= 2, timeout=30, what="the re-routed recipient")
        self.assertEqual(sink.records()[1]["rcpts"], ["b@example.net"])
        self.assertIn("1 recipient(s) left the Unreachable queue", d.read_log())

    def test_restart_keeps_attempts_and_next_retry(self):
        sink = self.start_sink("--rcpt-reply", "451 4.3.0 Try later", "--rcpt-reply-match", "slow")
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), sink.port)
        args = ["--config", conf, "--glitch-retries", "0", "--retry-min", "120", "--retry-max", "240", "--workers", "2"]
        d = self.start_daemon(*args)
        qid = submit_raw(d.port, "sender@example.org", ["slow@example.com"], MESSAGE)
        wait_for(lambda: sink.stats().get("rcpt_faults", 0) >= 1, timeout=30, what="the first attempt")
        time.sleep(0.5)  # the journal syncs lazily (100 ms); a clean stop syncs it anyway
        d.stop()
        shown = json.loads(subprocess.run([binary("ringmail-spool"), "--spool", d.spool, "--json", "show", qid],
                                          check=True, stdout=subprocess.PIPE).stdout)
        (r,) = shown["recipients"]
        self.assertEqual((r["state"], r["attempts"]), ("deferred", 1))
        d2 = self.start_daemon(*args, spool=d.spool)
        time.sleep(3)  # the retry is ~2 minutes away: nothing may be attempted now
        self.assertEqual(sink.stats().get("rcpt_faults", 0), 1)
        d2.stop()
        shown = json.loads(subprocess.run([binary("ringmail-spool"), "--spool", d.spool, "--json", "show", qid],
                                          check=True, stdout=subprocess.PIPE).stdout)
        self.assertEqual(shown["recipients"][0]["attempts"], 1)

    def test_dead_destination_is_probed_with_one_session_then_recovers(self):
        sink = self.start_sink("--greeting-reply", "421 4.3.2 Not now")
        d = self.relay(sink.port, "--glitch-retries", "0")
        conf = os.path.join(self.tmp, "connectors.toml")
        for i in range(10):
            submit_raw(d.port, "sender@example.org", [f"r{i}@example.com"], MESSAGE)
        wait_for(lambda: d.read_log().count("marked down") >= 4, timeout=30, what="four rounds marked down")
        self.assertEqual(sink.stop(), 0)  # its final counters are written at exit
        log = d.read_log()
        attempts = log.count("trying the next host")
        first_mark = log.index("marked down")
        cohort = log[:first_mark].count("trying the next host")
        rounds = log.count("marked down")
        later = attempts - cohort
        # Every round after the first is one probe session; sessions of the first cohort that were
        # already connecting may still report once each (they are at most the queued 10).
        self.assertGreaterEqual(rounds, 4)
        self.assertLessEqual(later, (rounds - 1) + 10, log)
        self.assertEqual(sink.stats()["connections"], attempts, "the sink saw exactly the sessions ringmail counted")
        # The destination comes back: the probe succeeds and everything drains.
        healthy = self.start_sink(name="healthy", port=sink.port)
        wait_for(lambda: len(healthy.records()) >= 10, timeout=60, what="all ten messages after recovery")
        self.assertIn("reachable again", d.read_log())

    def test_a_big_backlog_does_not_starve_a_small_destination(self):
        # Two destinations share a global cap of 2 outbound sessions. The big one has 16 messages at a
        # slow receiver (every reply batch 300 ms late), so reusing its sessions it would hold both
        # slots for about 10 s. The small destination's one message must get a slot long before.
        slow = self.start_sink("--delay-ms", "300", name="slow")
        fast = self.start_sink(name="fast")
        conf = os.path.join(self.tmp, "connectors.toml")
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Big"\naddress_spaces = ["big.example"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{slow.port}"]\ntls = "none"\n'
                    f'[[connector]]\nname = "Small"\naddress_spaces = ["small.example"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{fast.port}"]\ntls = "none"\n')
        d = self.start_daemon("--config", conf, "--max-outbound", "2", "--workers", "1")
        for i in range(16):
            submit_raw(d.port, "s@example.org", [f"r{i}@big.example"], MESSAGE)
        wait_for(lambda: len(slow.records()) >= 1, timeout=30, what="the big backlog flowing")
        submit_raw(d.port, "s@example.org", ["one@small.example"], MESSAGE)
        wait_for(lambda: len(fast.records()) == 1, timeout=30, what="the small destination's message")
        self.assertLess(len(slow.records()), 12, "the small message did not wait for the backlog")
        wait_for(lambda: len(slow.records()) == 16, timeout=60, what="the backlog finishing")


if __name__ == "__main__":
    unittest.main()
