"""The SMTP listener against an independent client (swaks) and raw sockets for inputs swaks
cannot produce. Every accepted message must be in the spool; every refused one must not."""
import json
import os
import subprocess
import time
import unittest

from harness import DaemonTestCase, SmtpConversation, binary, swaks


def spool_list(spool, message_ids=False):
    """The spool's queued messages as ringmail-spool lists them (a list of dicts)."""
    cmd = [binary("ringmail-spool"), "--spool", spool, "list", "--json"] + (["--message-ids"] if message_ids else [])
    return json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout.decode())


def queued_ids(spool):
    return sorted(m["id"] for m in spool_list(spool))


def queue_id_of(reply):
    return reply.rsplit(" ", 1)[-1].strip()


class ListenerTest(DaemonTestCase):
    def test_swaks_submission_is_queued_durably(self):
        d = self.start_daemon("--hold")
        rc, out = swaks(d.port, "--to", "rcpt@example.com", "--from", "sender@example.org",
                        "--header", "Subject: hello", "--body", "line one\n.leading dot\nlast")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"<-  220 ringmail\.test ESMTP")
        self.assertRegex(out, r"250-PIPELINING")
        self.assertRegex(out, r"250-SIZE \d+")
        self.assertRegex(out, r"250-8BITMIME")
        self.assertRegex(out, r"250-ENHANCEDSTATUSCODES")
        self.assertRegex(out, r"250-SMTPUTF8")
        self.assertRegex(out, r"250 DSN")
        line = [l for l in out.splitlines() if "queued as" in l][0]
        self.assertRegex(line, r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]{16}$")
        self.assertEqual(d.stop(), 0)
        ids = queued_ids(d.spool)
        self.assertEqual(ids, [queue_id_of(line)])
        shown = subprocess.run([binary("ringmail-spool"), "--spool", d.spool, "show", ids[0]],
                               stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn("sender@example.org", shown)
        self.assertIn("rcpt@example.com", shown)

    def test_pipelined_submission(self):
        d = self.start_daemon("--hold")
        rc, out = swaks(d.port, "--pipeline", "--to", "a@example.com,b@example.net", "--from", "s@example.org")
        self.assertEqual(rc, 0, out)
        self.assertIn("queued as", out)
        self.assertEqual(d.stop(), 0)
        msgs = spool_list(d.spool)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(sorted(msgs[0]["recipients"]), ["a@example.com", "b@example.net"])

    def test_bad_commands_get_clear_replies(self):
        d = self.start_daemon("--hold")
        c = SmtpConversation(d.port)
        self.assertTrue(c.read_reply().startswith("220 ringmail.test"))
        self.assertRegex(c.cmd("FROB"), r"^500 5\.5\.2 ")
        self.assertRegex(c.cmd("MAIL FROM:<a@example.org>"), r"^503 5\.5\.1 ")  # before EHLO
        self.assertTrue(c.cmd("EHLO client.test").startswith("250-"))
        self.assertRegex(c.cmd("RCPT TO:<b@example.com>"), r"^503 5\.5\.1 ")  # before MAIL
        self.assertRegex(c.cmd("DATA"), r"^503 5\.5\.1 ")
        self.assertRegex(c.cmd("MAIL FROM:<not an address>"), r"^501 5\.1\.7 ")
        self.assertRegex(c.cmd("MAIL FROM:<a@example.org> FOO=BAR"), r"^555 5\.5\.4 ")
        self.assertRegex(c.cmd("VRFY someone"), r"^252 2\.")
        self.assertRegex(c.cmd("NOOP"), r"^250 2\.0\.0")
        self.assertRegex(c.cmd("X" * 600), r"^500 5\.5\.2 ")  # over 512 bytes
        self.assertRegex(c.cmd("NO\0OP"), r"^500 5\.5\.2 ")
        self.assertRegex(c.cmd("MAIL FROM:<a@example.org>"), r"^250 2\.1\.0")
        self.assertRegex(c.cmd("MAIL FROM:<a@example.org>"), r"^503 5\.5\.1 ")  # nested MAIL
        self.assertRegex(c.cmd("RCPT TO:<bad@@example.com>"), r"^501 5\.1\.3 ")
        self.assertRegex(c.cmd("RSET"), r"^250 2\.0\.0")
        self.assertRegex(c.cmd("QUIT"), r"^221 2\.0\.0")
        c.close()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(queued_ids(d.spool), [])

    def test_swaks_bad_address_refused(self):
        d = self.start_daemon("--hold")
        rc, out = swaks(d.port, "--to", "no-at-sign", "--from", "s@example.org")
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, r"<\*\* +5\d\d 5\.1\.3 ")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(queued_ids(d.spool), [])

    def test_oversize_refused_by_size_and_by_data(self):
        d = self.start_daemon("--hold", "--max-message-size", "10KB")
        c = SmtpConversation(d.port)
        c.read_reply()
        ehlo = c.cmd("EHLO client.test")
        self.assertIn("250-SIZE 10240", ehlo)
        self.assertRegex(c.cmd("MAIL FROM:<a@example.org> SIZE=20000"), r"^552 5\.3\.4 ")
        c.close()
        rc, out = swaks(d.port, "--to", "r@example.com", "--from", "s@example.org", "--body", "x" * 70 + "\n" * 1,
                        "--add-header", "X-Pad: " + "y" * 900, "--body", ("z" * 76 + "\n") * 200)
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, r"<\*\* +552 5\.3\.4 ")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(queued_ids(d.spool), [])

    def test_relay_refused_for_outside_client(self):
        d = self.start_daemon("--hold", "--relay-networks", "127.0.0.1/32")
        rc, out = swaks(d.port, "--to", "r@example.com", "--from", "s@example.org", "--local-interface", "127.0.0.2")
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, r"<\*\* +554 5\.7\.1 <r@example\.com>: Relay access denied")
        rc, out = swaks(d.port, "--to", "r@example.com", "--from", "s@example.org", "--local-interface", "127.0.0.1")
        self.assertEqual(rc, 0, out)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(len(queued_ids(d.spool)), 1)

    def test_smuggling_variants_rejected_and_not_stored(self):
        d = self.start_daemon("--hold")
        variants = [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r"]
        for v in variants:
            c = SmtpConversation(d.port)
            c.read_reply()
            c.cmd("EHLO client.test")
            self.assertTrue(c.cmd("MAIL FROM:<a@example.org>").startswith("250"))
            self.assertTrue(c.cmd("RCPT TO:<b@example.com>").startswith("250"))
            self.assertTrue(c.cmd("DATA").startswith("354"))
            # A smuggled second message hides behind a non-standard end of data.
            c.send(b"Subject: first\r\n\r\nbody" + v + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\n"
                   b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
            reply = c.read_reply()
            self.assertRegex(reply, r"^550 5\.6\.11 ", repr(v))
            self.assertRegex(c.cmd("NOOP"), r"^250 ")  # the session goes on, in command mode
            c.close()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(queued_ids(d.spool), [])

    def test_dot_unstuffing_and_received_header(self):
        d = self.start_daemon("--hold")
        c = SmtpConversation(d.port)
        c.read_reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.com>")
        c.cmd("DATA")
        c.send(b"Subject: dots\r\n\r\n..one dot\r\n...two dots\r\n.\r\n")
        reply = c.read_reply()
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$")
        c.cmd("QUIT")
        c.close()
        self.assertEqual(d.stop(), 0)
        shown = subprocess.run([binary("ringmail-spool"), "--spool", d.spool, "show", queue_id_of(reply), "--body"],
                               stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn("Received: from client.test ([127.0.0.1])", shown)
        self.assertIn("by ringmail.test (ringmail)", shown)
        self.assertIn("\n.one dot", shown.replace("\r\n", "\n"))
        self.assertIn("\n..two dots", shown.replace("\r\n", "\n"))

    def test_command_timeout_closes_with_421(self):
        d = self.start_daemon("--hold", "--command-timeout", "1")
        c = SmtpConversation(d.port)
        c.read_reply()
        start = time.monotonic()
        self.assertRegex(c.read_reply(), r"^421 4\.4\.2 ")
        self.assertLess(time.monotonic() - start, 10)
        c.close()
        self.assertEqual(d.stop(), 0)

    def test_connection_limit(self):
        d = self.start_daemon("--hold", "--max-connections", "2", "--workers", "1")
        a, b = SmtpConversation(d.port), SmtpConversation(d.port)
        a.read_reply()
        b.read_reply()
        c = SmtpConversation(d.port)
        self.assertRegex(c.read_reply(), r"^421 4\.7\.0 ")
        for x in (a, b, c):
            x.close()
        self.assertEqual(d.stop(), 0)

    def test_sigterm_lets_a_message_in_data_finish(self):
        d = self.start_daemon("--hold")
        c = SmtpConversation(d.port)
        c.read_reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.com>")
        self.assertTrue(c.cmd("DATA").startswith("354"))
        c.send(b"Subject: half\r\n\r\nfirst part\r\n")
        d.proc.send_signal(15)
        time.sleep(0.3)
        c.send(b"second part\r\n.\r\n")
        reply = c.read_reply()
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as ")
        self.assertRegex(c.read_reply(), r"^421 4\.3\.2 ")
        c.close()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(queued_ids(d.spool), [queue_id_of(reply)])

    def test_messages_survive_restart(self):
        d = self.start_daemon("--hold")
        ids = []
        for i in range(5):
            rc, out = swaks(d.port, "--to", f"r{i}@example.com", "--from", "s@example.org")
            self.assertEqual(rc, 0, out)
            ids.append(queue_id_of([l for l in out.splitlines() if "queued as" in l][0]))
        self.assertEqual(d.stop(), 0)
        d2 = self.start_daemon("--hold", spool=d.spool)
        self.assertIn("5 messages queued after recovery", d2.read_log())
        self.assertEqual(d2.stop(), 0)
        self.assertEqual(queued_ids(d.spool), sorted(ids))


if __name__ == "__main__":
    unittest.main()
