"""Crash safety of the listener's 250: inject under load, kill -9 the daemon mid-stream, restart it,
and compare what the spool holds with what the client was told."""
import collections
import os
import subprocess
import sys
import unittest

from harness import DaemonTestCase, binary, inject_then_kill9
from test_listener import spool_list


class CrashTest(DaemonTestCase):
    def test_kill9_under_load_loses_no_acknowledged_message(self):
        d = self.kill9_run()
        self.assertIn("commits are buffered writes + fdatasync", d.read_log())

    def test_kill9_with_direct_commits(self):
        d = self.kill9_run("--spool-io", "direct")
        self.assertIn("commits are O_DIRECT writes with RWF_DSYNC", d.read_log())

    def kill9_run(self, *args):
        d = self.start_daemon("--hold", *args)
        log = os.path.join(self.tmp, "inject.log")
        inject_then_kill9(d, log, count=200000, kill_after=3000)

        told = collections.defaultdict(list)  # code -> [(message-id, queue-id)]
        with open(log) as f:
            for line in f:
                code, mid, qid = line.split()
                told[code].append((mid, qid))
        acked_ids = {mid: qid for mid, qid in told["250"]}
        in_flight = {mid for mid, _ in told["000"]}
        self.assertGreaterEqual(len(acked_ids), 3000)

        d2 = self.start_daemon("--hold", *args, spool=d.spool)
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
        return d


if __name__ == "__main__":
    unittest.main()
