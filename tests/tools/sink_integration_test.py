#!/usr/bin/python3
"""ringmail-sink against clients we did not write: Postfix's smtp-source, swaks, and raw sockets.

Checks counters (2,000 messages from smtp-source), --record/--save-dir contents against what swaks
sent, every fault mode, EHLO keyword switches, several --listen addresses with 2 workers, and
--exit-after. Each sink binds 127.0.0.1:0, is found through --ready-file, and only the PIDs this
test started are signalled. usage: sink_integration_test.py /path/to/ringmail-sink
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SINK = None
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
SMTP_SOURCE = shutil.which("smtp-source", path="/usr/sbin:/usr/bin") or "/usr/sbin/smtp-source"


class Sink:
    """One ringmail-sink process in its own temporary directory."""

    def __init__(self, *args, listen=("127.0.0.1:0",)):
        self.dir = tempfile.mkdtemp(prefix="sink-it-")
        self.ready = os.path.join(self.dir, "ready")
        self.stats = os.path.join(self.dir, "stats")
        cmd = [SINK, "--ready-file", self.ready, "--stats-file", self.stats, "--quiet"]
        for a in listen:
            cmd += ["--listen", a]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=self.dir)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.ready):  # bounded wait for the atomically written file
            if self.proc.poll() is not None:
                raise RuntimeError("sink exited: " + self.proc.stderr.read())
            if time.monotonic() > deadline:
                raise RuntimeError("sink did not write its ready file")
            time.sleep(0.02)
        with open(self.ready) as f:
            self.addresses = [line.strip() for line in f if line.strip()]
        self.port = int(self.addresses[0].rsplit(":", 1)[1])

    def path(self, name):
        return os.path.join(self.dir, name)

    def counters(self):
        with open(self.stats) as f:
            return dict((k, int(v)) for k, v in (line.strip().split("=") for line in f if "=" in line))

    def wait_counter(self, name, value, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.stats) and self.counters().get(name) == value:
                return
            time.sleep(0.05)
        raise AssertionError(f"{name} never reached {value}: {self.counters()}")

    def stop(self):
        """SIGTERM, then the exit code and the summary line."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        shutil.rmtree(self.dir, ignore_errors=True)


def swaks(port, *args):
    r = subprocess.run([SWAKS, "--server", "127.0.0.1", "--port", str(port), "--timeout", "10", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    return r.returncode, r.stdout


class RawClient:
    """A line-oriented SMTP client on a plain socket, for what swaks cannot do."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError(b"".join(lines) + self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"\n".join(lines).decode()

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.s.close()


def unstuff_swaks_transcript(out):
    """The message bytes swaks sent, rebuilt from its ' -> ' transcript lines between DATA and '.'."""
    lines, in_data = [], False
    for line in out.split("\n"):
        if not line.startswith(" -> "):
            continue
        text = line[4:]
        if in_data:
            if text == ".":
                break
            lines.append(text[1:] if text.startswith(".") else text)
        elif text == "DATA":
            in_data = True
    return "".join(l + "\r\n" for l in lines).encode()


class SinkIntegrationTest(unittest.TestCase):
    def start(self, *args, **kw):
        sink = Sink(*args, **kw)
        self.addCleanup(sink.close)
        return sink

    def test_smtp_source_2000_messages_counted(self):
        sink = self.start("--workers", "2")
        r = subprocess.run([SMTP_SOURCE, "-s", "10", "-m", "2000", "-l", "5000", f"127.0.0.1:{sink.port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout)
        sink.wait_counter("messages_accepted", 2000)
        rc, out, _ = sink.stop()
        self.assertEqual(rc, 0)
        self.assertIn("accepted=2000 ", out)
        c = sink.counters()
        self.assertEqual(c["messages_accepted"], 2000)
        self.assertEqual(c["connections"], 2000)  # smtp-source sends one message per connection
        self.assertEqual(c["open_connections"], 0)
        self.assertGreaterEqual(c["message_bytes"], 2000 * 5000)

    def test_record_and_save_dir_match_what_swaks_sent(self):
        sink = self.start("--record", "rec.jsonl", "--save-dir", "saved")
        body = ("Message-ID: <it-1@sink.test>\nSubject: dots and 8bit\n\n.leading dot\n..two dots\n.\n"
                "caf\u00e9 \u00e0 8 bits\nlast line")
        data_file = sink.path("msg.txt")
        with open(data_file, "w", encoding="utf-8") as f:
            f.write(body)
        rc, out = swaks(sink.port, "--from", "from@a.test", "--to", "r1@b.test,r2@c.test", "--data", "@" + data_file)
        self.assertEqual(rc, 0, out)
        self.assertIn("250 2.0.0 Ok: queued as SINK1", out)
        sent = unstuff_swaks_transcript(out)
        self.assertEqual(sent, body.replace("\n", "\r\n").encode() + b"\r\n")  # what the file says, as CRLF
        rc, _, _ = sink.stop()
        self.assertEqual(rc, 0)
        with open(sink.path("saved/1.eml"), "rb") as f:
            saved = f.read()
        self.assertEqual(saved, sent)
        with open(sink.path("rec.jsonl")) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(len(records), 1)
        rec = records[0]
        self.assertEqual(rec["queue_id"], "SINK1")
        self.assertEqual(rec["listen"], sink.addresses[0])
        self.assertTrue(rec["client"].startswith("127.0.0.1:"))
        self.assertEqual(rec["mail_from"], "from@a.test")
        self.assertEqual(rec["rcpts"], ["r1@b.test", "r2@c.test"])
        self.assertEqual(rec["message_id"], "<it-1@sink.test>")
        self.assertEqual(rec["size"], len(sent))
        self.assertEqual(rec["sha256"], hashlib.sha256(sent).hexdigest())
        self.assertEqual(rec["body_file"], "saved/1.eml")

    def test_rcpt_fault_for_a_matching_recipient(self):
        sink = self.start("--rcpt-reply", "451 4.3.0 Try later", "--rcpt-reply-match", "unlucky")
        rc, out = swaks(sink.port, "--from", "a@x.test", "--to", "lucky@y.test,unlucky@y.test")
        self.assertIn("<** 451 4.3.0 Try later", out)
        self.assertIn("250 2.0.0 Ok: queued as SINK1", out)  # the other recipient still got the message
        sink.wait_counter("rcpt_faults", 1)
        self.assertEqual(sink.counters()["messages_accepted"], 1)
        self.assertEqual(sink.counters()["recipients_accepted"], 1)

    def test_rcpt_fault_rate_is_a_fraction(self):
        sink = self.start("--rcpt-reply", "550 5.1.1 No such user", "--rcpt-fault-rate", "0.5", "--seed", "7")
        c = RawClient(sink.port)
        c.reply()
        c.cmd("EHLO raw")
        c.cmd("MAIL FROM:<a@x>")
        codes = [c.cmd(f"RCPT TO:<r{i}@y>")[:3] for i in range(200)]
        c.close()
        refused = codes.count("550")
        self.assertEqual(refused + codes.count("250"), 200)
        self.assertTrue(60 <= refused <= 140, refused)

    def test_data_fault(self):
        sink = self.start("--data-reply", "550 5.1.1 No such user here")
        rc, out = swaks(sink.port, "--from", "a@x.test", "--to", "b@y.test")
        self.assertNotEqual(rc, 0)
        self.assertIn("<** 550 5.1.1 No such user here", out)
        sink.wait_counter("data_faults", 1)
        self.assertEqual(sink.counters()["messages_accepted"], 0)

    def test_greeting_refusal(self):
        sink = self.start("--greeting-reply", "554 5.3.2 No service")
        rc, out = swaks(sink.port, "--from", "a@x.test", "--to", "b@y.test")
        self.assertNotEqual(rc, 0)
        self.assertIn("554 5.3.2 No service", out)
        c = RawClient(sink.port)
        self.assertEqual(c.reply(), "554 5.3.2 No service")
        self.assertTrue(c.cmd("EHLO x").startswith("503 "))
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(c.s.recv(1), b"")  # closed after QUIT
        c.close()

    def test_drop_mid_data(self):
        sink = self.start("--drop-mid-data-rate", "1")
        c = RawClient(sink.port)
        c.reply()
        c.cmd("EHLO raw")
        c.cmd("MAIL FROM:<a@x>")
        c.cmd("RCPT TO:<b@y>")
        self.assertTrue(c.cmd("DATA").startswith("354"))
        c.s.sendall(b"Subject: cut\r\n\r\nfirst part\r\n")
        self.assertEqual(c.s.recv(100), b"")  # closed, no reply
        c.close()
        sink.wait_counter("dropped_mid_data", 1)
        self.assertEqual(sink.counters()["messages_accepted"], 0)
        rc, out = swaks(sink.port, "--from", "a@x.test", "--to", "b@y.test")
        self.assertNotEqual(rc, 0, out)

    def test_delay_before_replies(self):
        sink = self.start("--delay-ms", "300")
        c = RawClient(sink.port)
        t0 = time.monotonic()
        self.assertTrue(c.reply().startswith("220 "))
        t1 = time.monotonic()
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        t2 = time.monotonic()
        c.close()
        self.assertGreaterEqual(t1 - t0, 0.28)
        self.assertGreaterEqual(t2 - t1, 0.28)

    def test_capability_switches(self):
        sink = self.start("--no-pipelining", "--no-8bitmime", "--no-smtputf8", "--max-message-size", "100")
        c = RawClient(sink.port)
        c.reply()
        ehlo = c.cmd("EHLO raw")
        self.assertNotIn("PIPELINING", ehlo)
        self.assertNotIn("8BITMIME", ehlo)
        self.assertNotIn("SMTPUTF8", ehlo)
        self.assertIn("250-SIZE 100", ehlo)
        self.assertTrue(c.cmd("MAIL FROM:<a@x> SIZE=101").startswith("552 5.3.4"))
        c.close()
        full = self.start()
        rc, out = swaks(full.port, "--from", "a@x.test", "--to", "b@y.test", "--pipeline")
        self.assertEqual(rc, 0, out)
        for kw in ("250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8"):
            self.assertIn(kw, out)

    def test_pipelined_group_answered_in_order(self):
        sink = self.start()
        c = RawClient(sink.port)
        c.reply()
        c.cmd("EHLO raw")
        c.s.sendall(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n")
        self.assertEqual([c.reply()[:3] for _ in range(4)], ["250", "250", "250", "354"])
        c.s.sendall(b"hello\r\n.\r\nRSET\r\nQUIT\r\n")
        self.assertTrue(c.reply().startswith("250 2.0.0 Ok: queued as SINK"))
        self.assertEqual(c.reply(), "250 2.0.0 Ok")
        self.assertEqual(c.reply(), "221 2.0.0 Bye")
        c.close()

    def test_several_listeners_two_workers_and_exit_after(self):
        sink = self.start("--workers", "2", "--exit-after", "4", listen=("127.0.0.1:0", "127.0.0.1:0"))
        self.assertEqual(len(sink.addresses), 2)
        ports = [int(a.rsplit(":", 1)[1]) for a in sink.addresses]
        self.assertNotEqual(ports[0], ports[1])
        for i in range(4):
            rc, out = swaks(ports[i % 2], "--from", "a@x.test", "--to", "b@y.test")
            self.assertEqual(rc, 0, out)
        out, err = sink.proc.communicate(timeout=30)  # exits on its own
        self.assertEqual(sink.proc.returncode, 0, err)
        self.assertIn("accepted=4 ", out)


if __name__ == "__main__":
    SINK = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
