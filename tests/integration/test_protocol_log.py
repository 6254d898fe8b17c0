"""The outbound protocol log (connector `protocol_log = true`, daemon `--protocol-log-dir`):
ringmail relays to aiosmtpd (STARTTLS and AUTH as a smart host would ask) and the log shows the
whole dialogue in order, without the message data and without the credentials in any form; a
connector without the setting writes nothing; the setting without a directory is refused at
start-up and on reload."""
import base64
import glob
import os
import re
import signal
import unittest

from harness import wait_for
from test_delivery import MESSAGE, submit_raw
from test_tls_out import PASSWORD, TLS_NAME, USER, TlsOutTestCase


def read_log_files(directory):
    files = sorted(glob.glob(os.path.join(directory, "send-*-w*.log")))
    lines = []
    for name in files:
        with open(name, encoding="ascii") as f:  # escaped: plain ASCII whatever a server sent
            lines += f.read().splitlines()
    return files, lines


class ProtocolLogTest(TlsOutTestCase):
    def relay_logged(self, rx, extra, daemon_args=()):
        self.log_dir = os.path.join(self.tmp, "protocol-log")
        return self.relay(rx.port, "verify",
                          f'tls_domain = "{TLS_NAME}"\ntls_ca_file = "{self.certs["ca"]}"\nprotocol_log = true\n{extra}',
                          daemon_args=("--protocol-log-dir", self.log_dir, *daemon_args))

    def assert_no_credentials(self, text):
        self.assertNotIn(PASSWORD, text)
        for secret in (f"\0{USER}\0{PASSWORD}", PASSWORD, USER):
            self.assertNotIn(base64.b64encode(secret.encode()).decode(), text)

    def test_dialogue_with_starttls_and_auth_plain(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"], user=USER, password=PASSWORD)
        d = self.relay_logged(rx, f'auth_file = "{self.auth_file()}"')
        self.assertTrue(self.deliver(d, rx)["authenticated"])
        self.assertEqual(d.stop(), 0)  # the log is flushed at the latest when the worker stops

        files, lines = read_log_files(self.log_dir)
        self.assertEqual(len(files), 1, files)
        self.assertRegex(os.path.basename(files[0]), r"^send-20\d{6}-w0\.log$")
        self.assertTrue(lines[0].startswith("# ringmail outbound protocol log"), lines[0])
        rows = [line.split("\t") for line in lines[1:]]
        for r in rows:
            self.assertEqual(len(r), 6, r)
            self.assertRegex(r[0], r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(r[1:4], [rows[0][1], "Smart", f"127.0.0.1:{rx.port}"])
        dialogue = [f"{r[4]} {r[5]}" for r in rows]
        text = "\n".join(dialogue)

        # In wire order, with the server's replies (aiosmtpd's wording) between our commands.
        want_in_order = [
            r"^\+ connected from 127\.0\.0\.1:\d+$",
            r"^< 220 ",
            r"^> EHLO ",
            r"^< 250-",
            r"^< 250[- ]STARTTLS",
            r"^> STARTTLS$",
            r"^< 220 ",
            r"^\* TLS TLSv1\.[23] \S+ \(\d+ bits\), certificate verified",
            r"^> EHLO ",
            r"^< 250[- ]AUTH .*PLAIN",
            r"^> AUTH PLAIN \*\*\*\*$",
            r"^< 235 ",
            r"^> MAIL FROM:<s@example\.org>",
            r"^> RCPT TO:<a@example\.com>",
            r"^< 250 ",
            r"^\* message data: \d+ octets, then \"\.\"$",
            r"^< 250 ",
        ]
        at = 0
        for pattern in want_in_order:
            while at < len(dialogue) and not re.search(pattern, dialogue[at]):
                at += 1
            self.assertLess(at, len(dialogue), f"{pattern!r} not found in order in:\n{text}")
            at += 1
        # The session ends when idle (QUIT) or at shutdown; either way a "-" line closes it.
        self.assertTrue(dialogue[-1].startswith("- "), text)
        # Never the message data, never the credentials.
        for body_line in MESSAGE.decode("latin-1").splitlines():
            if len(body_line) > 8:
                self.assertNotIn(body_line, text)
        self.assert_no_credentials(text)
        self.assert_no_secret(d)

    def test_auth_login_answers_are_masked(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"], user=USER, password=PASSWORD)
        pw = self.password_file()
        d = self.relay_logged(rx, f'auth = {{ mechanism = "LOGIN", username = "{USER}", password_file = "{pw}" }}')
        self.assertTrue(self.deliver(d, rx)["authenticated"])
        self.assertEqual(d.stop(), 0)
        _, lines = read_log_files(self.log_dir)
        text = "\n".join(lines)
        self.assertRegex(text, r"\t>\tAUTH LOGIN\n.*\t<\t334 \S+\n.*\t>\t\*\*\*\*\n.*\t<\t334 \S+\n.*\t>\t\*\*\*\*\n.*\t<\t235 ")
        self.assert_no_credentials(text)

    def test_connection_failure_is_logged(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        d = self.relay_logged(rx, "")
        self.deliver(d, rx)
        rx.stop()  # the next session finds nobody listening
        submit_raw(d.port, "s@example.org", ["b@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        self.assertEqual(d.stop(), 0)
        _, lines = read_log_files(self.log_dir)
        closes = [line.split("\t") for line in lines if "\t-\t" in line]
        self.assertTrue(any("Connection refused" in r[5] or "refused" in r[5] for r in closes), lines)
        sessions = {line.split("\t")[1] for line in lines[1:]}
        self.assertGreaterEqual(len(sessions), 2, "each session has its own name")

    def test_connector_without_the_setting_writes_nothing(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        log_dir = os.path.join(self.tmp, "protocol-log")
        d = self.relay(rx.port, "opportunistic", daemon_args=("--protocol-log-dir", log_dir))
        self.deliver(d, rx)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(os.listdir(log_dir), [])

    def test_setting_without_a_directory_is_refused_at_start(self):
        path = os.path.join(self.tmp, "connectors.toml")
        with open(path, "w") as f:
            f.write('[[connector]]\nname = "Smart"\naddress_spaces = ["*"]\nsmart_hosts = ["[127.0.0.1]:2525"]\n'
                    'protocol_log = true\n')
        log = self.refused_start("--config", path)
        self.assertIn("connector 'Smart' sets protocol_log = true but no --protocol-log-dir is given", log)

    def test_setting_without_a_directory_is_refused_on_reload(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        d = self.relay(rx.port, "opportunistic")
        path = os.path.join(self.tmp, "connectors.toml")
        with open(path, "a") as f:
            f.write("protocol_log = true\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "refused, the previous table stays in use" in d.read_log(), timeout=20, what="the refusal")
        self.assertIn("no --protocol-log-dir is given", d.read_log())
        self.deliver(d, rx)  # still relaying with the previous table
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
