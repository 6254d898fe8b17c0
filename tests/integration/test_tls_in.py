"""Inbound STARTTLS and AUTH against independent clients: swaks --tls (with AUTH PLAIN and LOGIN),
`openssl s_client -starttls smtp` driving a whole transaction, and raw sockets for what those
clients will not do (commands pipelined behind STARTTLS, a broken handshake, a silent client).
The test certificate and the credentials file are made here with `openssl req` / `openssl passwd -6`."""
import base64
import json
import os
import socket
import ssl
import subprocess
import time
import unittest
import urllib.request

from harness import DaemonTestCase, SmtpConversation, binary, swaks, wait_for

PASSWORD = "Corr3ct-Horse-Battery"  # alice's password; must never reach the log


def spool_ids(spool):
    out = subprocess.run([binary("ringmail-spool"), "--spool", spool, "list", "--json"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    return sorted(m["id"] for m in json.loads(out))


def spool_message(spool, queue_id):
    return subprocess.run([binary("ringmail-spool"), "--spool", spool, "show", "--body", queue_id],
                          stdout=subprocess.PIPE, check=True).stdout.decode()


class TlsInTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=ringmail.test"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(), check=True,
                                stdout=subprocess.PIPE).stdout.decode().strip()
        self.auth_file = os.path.join(self.tmp, "users")
        with open(self.auth_file, "w") as f:
            f.write(f"# submission users\nalice:{hashed}\n")
        os.chmod(self.auth_file, 0o600)

    def tls_daemon(self, *extra):
        return self.start_daemon("--hold", "--tls-cert", self.cert, "--tls-key", self.key, *extra)

    def test_swaks_starttls_transaction_records_tls_in_received(self):
        d = self.tls_daemon()
        rc, out = swaks(d.port, "--tls", "--to", "rcpt@example.com", "--from", "s@example.org",
                        "--header", "Subject: over tls")
        self.assertEqual(rc, 0, out)
        self.assertIn("<-  250 STARTTLS", out)
        self.assertIn("<-  220 2.0.0 Ready to start TLS", out)
        self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued as [0-9A-F]{16}")  # "<~": read over TLS
        self.assertNotRegex(out, r"<~  250-STARTTLS|<~  250 STARTTLS")  # not offered again over TLS
        self.assertEqual(d.stop(), 0)
        ids = spool_ids(d.spool)
        self.assertEqual(len(ids), 1)
        msg = spool_message(d.spool, ids[0])
        self.assertRegex(msg, r"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)")
        self.assertIn("with ESMTPS id", msg)

    def test_openssl_s_client_full_transaction(self):
        d = self.tls_daemon()
        script = ("EHLO s-client.test\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.com>\nDATA\n"
                  "Subject: from s_client\n\nhello over TLS\n.\nQUIT\n")
        p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{d.port}",
                            "-crlf", "-quiet", "-tls1_3"],
                           input=script.encode(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertIn("250-ringmail.test", out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as [0-9A-F]{16}")
        self.assertIn("221 2.0.0 Bye", out)
        self.assertEqual(d.stop(), 0)
        ids = spool_ids(d.spool)
        self.assertEqual(len(ids), 1)
        msg = spool_message(d.spool, ids[0])
        self.assertIn("(using TLSv1.3 with cipher TLS_", msg)
        self.assertIn("hello over TLS", msg)

    def test_commands_pipelined_behind_starttls_are_discarded(self):
        d = self.tls_daemon()
        c = SmtpConversation(d.port)
        self.assertTrue(c.read_reply().startswith("220 "))
        self.assertIn("250 STARTTLS", c.cmd("EHLO c.test"))
        # One packet: if RSET were answered after the handshake its "250 2.0.0 Ok" would come first.
        c.send("STARTTLS\r\nRSET\r\n")
        self.assertEqual(c.read_reply(), "220 2.0.0 Ready to start TLS")
        self.assertEqual(c.buf, b"")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx.wrap_socket(c.sock, server_hostname="ringmail.test")
        tls.sendall(b"EHLO c.test\r\nQUIT\r\n")
        got = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        text = got.decode()
        self.assertTrue(text.startswith("250-ringmail.test\r\n"), text)
        self.assertTrue(text.endswith("221 2.0.0 Bye\r\n"), text)
        self.assertNotIn("250 STARTTLS", text)
        self.assertEqual(text.count("\r\n250 2.0.0 Ok\r\n"), 0, text)
        tls.close()
        self.assertEqual(d.stop(), 0)
        self.assertIn("octets sent after STARTTLS before the handshake were discarded", d.read_log())

    def test_require_tls_refuses_mail_in_clear(self):
        d = self.tls_daemon("--require-tls")
        rc, out = swaks(d.port, "--to", "rcpt@example.com", "--from", "s@example.org")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("<** 530 5.7.0 Must issue a STARTTLS command first", out)
        rc, out = swaks(d.port, "--tls", "--to", "rcpt@example.com", "--from", "s@example.org")
        self.assertEqual(rc, 0, out)
        self.assertIn("queued as", out)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(len(spool_ids(d.spool)), 1)

    def test_auth_grants_relay_outside_relay_networks(self):
        # 127.0.0.2 is outside --relay-networks: only AUTH lets it relay.
        d = self.tls_daemon("--relay-networks", "127.0.0.1/32", "--auth-file", self.auth_file, "--log-level", "debug",
                            "--admin", "127.0.0.1:0")
        with open(os.path.join(self.tmp, "ready")) as f:
            admin = [l for l in f.read().splitlines() if l.startswith("admin ")][0].split()[1]
        base = ["--local-interface", "127.0.0.2", "--to", "rcpt@example.com", "--from", "s@example.org", "--tls"]
        rc, out = swaks(d.port, *base)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("554 5.7.1 <rcpt@example.com>: Relay access denied", out)
        self.assertIn("250 AUTH PLAIN LOGIN", out)
        for mech in ("PLAIN", "LOGIN"):
            rc, out = swaks(d.port, *base, "--auth", mech, "--auth-user", "alice", "--auth-password", PASSWORD)
            self.assertEqual(rc, 0, out)
            self.assertIn("<~  235 2.7.0 Authentication successful", out)
            self.assertIn("queued as", out)
        for mech in ("PLAIN", "LOGIN"):
            rc, out = swaks(d.port, *base, "--auth", mech, "--auth-user", "alice", "--auth-password", "wrong-Guess-42")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("<~* 535 5.7.8 Authentication credentials invalid", out)
        # AUTH is not offered, and refused, in clear text.
        rc, out = swaks(d.port, "--local-interface", "127.0.0.2", "--to", "rcpt@example.com", "--from",
                        "s@example.org", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORD)
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("AUTH PLAIN LOGIN", out)
        # /metrics: five STARTTLS sessions, two logins accepted, two refused.
        with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn('ringmail_tls_handshakes_total{direction="inbound"} 5\n', metrics)
        self.assertIn('ringmail_auth_attempts_total{result="ok"} 2\n', metrics)
        self.assertIn('ringmail_auth_attempts_total{result="failed"} 2\n', metrics)
        self.assertIn('ringmail_tls_failures_total{direction="inbound"} 0\n', metrics)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(len(spool_ids(d.spool)), 2)
        log = d.read_log()
        self.assertIn("authenticated as alice", log)
        self.assertIn("authentication failed for user alice", log)
        for secret in (PASSWORD, "wrong-Guess-42"):
            self.assertNotIn(secret, log)
            self.assertNotIn(base64.b64encode(secret.encode()).decode(), log)
            self.assertNotIn(base64.b64encode(b"\0alice\0" + secret.encode()).decode(), log)

    def test_broken_handshake_is_logged_and_closed(self):
        d = self.tls_daemon()
        c = SmtpConversation(d.port)
        c.read_reply()
        c.cmd("EHLO c.test")
        self.assertEqual(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS")
        c.send(b"this is not a ClientHello\r\n")
        c.sock.settimeout(10)
        while c.sock.recv(4096):  # at most an alert, then EOF
            pass
        c.close()
        wait_for(lambda: "TLS handshake failed" in d.read_log(), timeout=10, what="handshake failure logged")
        # The daemon carries on serving.
        rc, out = swaks(d.port, "--tls", "--to", "rcpt@example.com", "--from", "s@example.org")
        self.assertEqual(rc, 0, out)
        self.assertEqual(d.stop(), 0)

    def test_silent_client_hits_the_handshake_timeout(self):
        d = self.tls_daemon("--command-timeout", "2")
        c = SmtpConversation(d.port)
        c.read_reply()
        self.assertEqual(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS")
        c.sock.settimeout(20)
        started = time.monotonic()
        self.assertEqual(c.sock.recv(4096), b"")  # closed without a clear-text 421
        self.assertLess(time.monotonic() - started, 15)
        c.close()
        wait_for(lambda: "TLS handshake timeout" in d.read_log(), timeout=10, what="timeout logged")
        self.assertEqual(d.stop(), 0)

    def test_bad_files_stop_the_daemon_with_exit_2(self):
        garbage = os.path.join(self.tmp, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        open_users = os.path.join(self.tmp, "open-users")
        with open(self.auth_file) as src, open(open_users, "w") as dst:
            dst.write(src.read())
        os.chmod(open_users, 0o644)
        plain_users = os.path.join(self.tmp, "plain-users")
        with open(plain_users, "w") as f:
            f.write(f"alice:{PASSWORD}\n")
        os.chmod(plain_users, 0o600)
        cases = [
            (["--tls-cert", garbage, "--tls-key", self.key], "TLS certificate " + garbage),
            (["--tls-cert", self.cert, "--tls-key", garbage], "TLS key " + garbage),
            (["--tls-cert", self.cert], "--tls-cert and --tls-key go together"),
            (["--require-tls"], "--require-tls needs a certificate"),
            (["--auth-file", self.auth_file], "--auth-file needs a certificate"),
            (["--tls-cert", self.cert, "--tls-key", self.key, "--auth-file", open_users],
             "is accessible by group or others"),
            (["--tls-cert", self.cert, "--tls-key", self.key, "--auth-file", plain_users],
             plain_users + ":1: user alice: the password must be a SHA-512-crypt hash"),
        ]
        for args, message in cases:
            p = subprocess.run([binary("ringmail"), "--listen", "127.0.0.1:0", "--spool",
                                os.path.join(self.tmp, "spool"), "--hold"] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 2, out)
            self.assertIn(message, out)
            self.assertNotIn(PASSWORD, out)


if __name__ == "__main__":
    unittest.main()
