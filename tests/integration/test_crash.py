"""Crash safety of the listener's 250: inject under load, kill -9 the daemon mid-stream, restart it,
and compare what the spool holds with what the client was told."""
import collections
import os
import subprocess
import sys
import unittest

from harness import DaemonTestCase, binary, wait_for
from test_listener import spool_list


class CrashTest(DaemonTestCase):
    def test_kill9_under_load_loses_no_acknowledged_message(self):
        d = self.start_daemon("--hold")
        log = os.path.join(self.tmp, "inject.log")
        inj = subprocess.Popen([binary("ringmail-inject"), "--target", f"127.0.0.1:{d.port}", "--count", "200000",
                                "--size", "5000", "--connections", "20", "--per-connection", "50", "--log", log,
                                "--duration", "60", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def acked():
                try:
                    with open(log) as f:
                        return sum(1 for _ in f)
                except FileNotFoundError:
                    return 0
            wait_for(lambda: acked() >= 3000, timeout=60, what="3000 replies")
            d.kill9()  # mid-stream: 20 connections are in the middle of transactions
            inj.wait(timeout=120)
        finally:
            if inj.poll() is None:
                inj.kill()
                inj.wait()

        told = collections.defaultdict(list)  # code -> [(message-id, queue-id)]
        with open(log) as f:
            for line in f:
                code, mid, qid = line.split()
                told[code].append((mid, qid))
        acked_ids = {mid: qid for mid, qid in told["250"]}
        in_flight = {mid for mid, _ in told["000"]}
        self.assertGreaterEqual(len(acked_ids), 3000)

        d2 = self.start_daemon("--hold", spool=d.spool)
        self.assertEqual(d2.stop(), 0)
        listing = spool_list(d.spool, message_ids=True)
        stored = collections.Counter(m["message_id"] for m in listing)
        by_mid = {m["message_id"]: m["id"] for m in listing}

        missing = [mid for mid in acked_ids if mid not in stored]
        self.assertEqual(missing, [], "messages that got 250 but are not in the spool")
        for mid, qid in acked_ids.items():
            self.assertEqual(by_mid[mid], qid, "queue id in the 250 reply differs from the spool's")
        # Anything else in the spool must have been in flight when the daemon died (the SMTP
        # duplicate window: committed, but the 250 never reached the client). Nothing else.
        extra = [mid for mid in stored if mid not in acked_ids and mid not in in_flight]
        self.assertEqual(extra, [], "messages in the spool the client never completed")
        self.assertLessEqual(len(stored) - len(acked_ids), 20)  # at most one per connection
        dups = [mid for mid, n in stored.items() if n > 1]
        self.assertEqual(dups, [])
        print(f"\ncrash test: {len(acked_ids)} messages got 250 before kill -9; all {len(acked_ids)} found after "
              f"restart; {len(stored) - len(acked_ids)} more were committed while their 250 was in flight; "
              f"{len(in_flight)} client transactions were cut off", file=sys.stderr)
        check = subprocess.run([binary("ringmail-spool"), "--spool", d.spool, "check"], stdout=subprocess.PIPE)
        self.assertEqual(check.returncode, 0, check.stdout.decode())


if __name__ == "__main__":
    unittest.main()
