"""RFC 3461 parameters pass through ringmail: a client gives RET/ENVID on MAIL and NOTIFY/ORCPT on
RCPT (Python's smtplib, an independent client), ringmail keeps them in its spool and hands them on
to a next hop that announces DSN — a throwaway Postfix (scripts/postfix-instance.sh, delivery on
hold), whose queue file, read with Postfix's own postcat, must carry the same values.
"""
import os
import smtplib
import unittest

from harness import DaemonTestCase, wait_for
from sinks import PostfixInstance, write_connectors


class DsnPassOnTest(DaemonTestCase):
    def setUp(self):
        super().setUp()
        if not PostfixInstance.available():
            self.skipTest("needs Debian's postfix and root to run a throwaway instance")
        self.postfix = PostfixInstance(self.tmp).start()
        self.addCleanup(self.postfix.stop)

    def test_parameters_reach_postfix(self):
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), self.postfix.port)
        d = self.start_daemon("--config", conf)
        s = smtplib.SMTP("127.0.0.1", d.port, timeout=30)
        try:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("dsn"), "ringmail announces DSN")
            s.sendmail("a@example.org", ["b@example.com"], b"Subject: dsn pass-on\r\n\r\nbody\r\n",
                       mail_options=["RET=HDRS", "ENVID=batch+2B42"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE,DELAY", "ORCPT=rfc822;orig+40example.net"])
        finally:
            s.quit()
        wait_for(lambda: self.postfix.held_files(), timeout=30, what="the message in Postfix's hold queue")
        (path,) = self.postfix.held_files()
        out = self.postfix.envelope(path)
        self.assertIn("envelope_id=batch+42", out)          # ENVID, xtext-decoded by Postfix
        self.assertIn("ret_flags=2", out)                     # RET=HDRS (Postfix's DSN_RET_HDRS)
        self.assertIn("notify_flags=14", out)                 # SUCCESS (2) | FAILURE (4) | DELAY (8)
        self.assertIn("dsn_orig_rcpt=rfc822;orig@example.net", out)
        self.assertIn("recipient: b@example.com", out)
        # Postfix announced DSN and took NOTIFY=SUCCESS over: ringmail itself reports nothing.
        d.stop()
        self.assertNotIn("relayed DSN", d.read_log())
        self.assertIn("delivery: 1 recipients delivered", d.read_log())


if __name__ == "__main__":
    unittest.main()
