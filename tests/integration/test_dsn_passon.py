"""RFC 3461 parameters pass through ringmail: a client gives RET/ENVID on MAIL and NOTIFY/ORCPT on
RCPT (Python's smtplib, an independent client), ringmail keeps them in its spool and hands them on
to a next hop that announces DSN — a throwaway Postfix (scripts/postfix-instance.sh, delivery on
hold), whose queue file, read with Postfix's own postcat, must carry the same values.
"""
import glob
import os
import shutil
import smtplib
import socket
import subprocess
import unittest

from harness import DaemonTestCase, free_port, wait_for
from sinks import write_connectors

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "scripts/postfix-instance.sh")


class DsnPassOnTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        if not shutil.which("postfix") or os.geteuid() != 0:
            self.skipTest("needs Debian's postfix and root to run a throwaway instance")
        os.chmod(self.tmp, 0o755)  # postfix's daemons run as `postfix` and must reach their queue
        self.pf_dir = os.path.join(self.tmp, "postfix")
        self.pf_port = free_port()
        subprocess.run([SCRIPT, "create", self.pf_dir, str(self.pf_port), "hold"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        subprocess.run([SCRIPT, "start", self.pf_dir], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.addCleanup(subprocess.run, [SCRIPT, "stop", self.pf_dir], stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT)

        def listening():
            try:
                with socket.create_connection(("127.0.0.1", self.pf_port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(listening, timeout=30, what="postfix smtpd listening")

    def held_files(self):
        return glob.glob(os.path.join(self.pf_dir, "queue", "hold", "*"))

    def test_parameters_reach_postfix(self):
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), self.pf_port)
        d = self.start_daemon("--config", conf)
        s = smtplib.SMTP("127.0.0.1", d.port, timeout=30)
        try:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("dsn"), "ringmail announces DSN")
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: dsn pass-on\r\n\r\nbody\r\n",
                       mail_options=["RET=HDRS", "ENVID=batch+2B42"],
                       rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;orig+40example.net"])
        finally:
            s.quit()
        wait_for(lambda: self.held_files(), timeout=30, what="the message in Postfix's hold queue")
        (path,) = self.held_files()
        out = subprocess.run(["postcat", "-c", os.path.join(self.pf_dir, "etc"), "-e", path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT).stdout.decode(errors="replace")
        self.assertIn("envelope_id=batch+42", out)          # ENVID, xtext-decoded by Postfix
        self.assertIn("ret_flags=2", out)                     # RET=HDRS (Postfix's DSN_RET_HDRS)
        self.assertIn("notify_flags=12", out)                 # FAILURE (4) | DELAY (8)
        self.assertIn("dsn_orig_rcpt=rfc822;orig@example.net", out)
        self.assertIn("recipient: b@example.com", out)


if __name__ == "__main__":
    unittest.main()
