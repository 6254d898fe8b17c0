"""The admin plane end to end: ringmail with --admin, steered with ringmail-queue while mail flows
to ringmail-sink. A suspended queue is listed as Suspended with a growing count and drains when
resumed; a removed message gives its sender a DSN and leaves the spool; retry-now skips a long
back-off; the Unreachable queue is listed and a reload through the CLI routes it; /metrics counts.
"""
import json
import os
import subprocess
import time
import unittest
import urllib.request

from harness import DaemonTestCase, binary, wait_for
from sinks import RingmailSink, write_connectors
from test_delivery import MESSAGE, submit_raw
from test_listener import spool_list

QUEUE = "Sink:smart-hosts"


class AdminQueueTest(DaemonTestCase):
    def start_sink(self, *args, name="sink", port=0):
        s = RingmailSink(self.tmp, name=name, args=args, port=port)
        s.start()
        self.addCleanup(s.stop)
        return s

    def relay(self, port, *args):
        conf = write_connectors(os.path.join(self.tmp, "connectors.toml"), port)
        d = self.start_daemon("--config", conf, "--admin", "127.0.0.1:0", "--workers", "2", *args)
        with open(os.path.join(self.tmp, "ready")) as f:
            (line,) = [l for l in f.read().splitlines() if l.startswith("admin ")]
        self.admin = line.split()[1]
        return d

    def cli(self, *args, check=True):
        p = subprocess.run([binary("ringmail-queue"), "--admin", self.admin] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode(errors="replace")
        if check:
            self.assertEqual(p.returncode, 0, out)
        return out

    def queues(self):
        return {q["id"]: q for q in json.loads(self.cli("--json", "list"))["queues"]}

    def test_suspend_while_mail_flows_then_resume_drains(self):
        sink = self.start_sink()
        d = self.relay(sink.port)
        submit_raw(d.port, "s@example.org", ["first@example.com"], MESSAGE)
        wait_for(lambda: len(sink.records()) == 1, timeout=30, what="the first message")
        self.assertIn("suspended", self.cli("suspend", QUEUE))
        counts = []
        for i in range(6):
            submit_raw(d.port, "s@example.org", [f"r{i}@example.com"], MESSAGE)
            q = self.queues()[QUEUE]
            self.assertEqual(q["state"], "Suspended")
            counts.append(q["recipients"])
        self.assertEqual(counts, [1, 2, 3, 4, 5, 6], "the count grows while suspended")
        self.assertIn("Suspended", self.cli("list"))  # the human table too
        time.sleep(1)
        self.assertEqual(len(sink.records()), 1, "nothing leaves a suspended queue")
        self.cli("resume", QUEUE)
        wait_for(lambda: len(sink.records()) == 7, timeout=30, what="the queue draining after resume")
        wait_for(lambda: self.queues()[QUEUE]["recipients"] == 0, timeout=10, what="an empty queue")

    def test_suspended_message_stays_while_its_queue_drains_then_resumes(self):
        sink = self.start_sink()
        d = self.relay(sink.port)
        submit_raw(d.port, "s@example.org", ["first@example.com"], MESSAGE)  # the queue exists now
        wait_for(lambda: len(sink.records()) == 1, timeout=30, what="the first message")
        self.cli("suspend", QUEUE)  # the next two wait in the queue
        held = submit_raw(d.port, "s@example.org", ["held@example.com"], MESSAGE)
        submit_raw(d.port, "s@example.org", ["free@example.com"], MESSAGE)
        wait_for(lambda: self.queues()[QUEUE]["recipients"] == 2, timeout=10, what="two queued")
        self.cli("suspend", "--message", held)
        self.cli("resume", QUEUE)
        wait_for(lambda: len(sink.records()) == 2, timeout=30, what="the other message")
        time.sleep(1)
        self.assertEqual([r["rcpts"] for r in sink.records()[1:]], [["free@example.com"]],
                         "a suspended message stays when its queue is resumed")
        self.assertIn(held, self.cli("messages", QUEUE))
        self.cli("resume", "--message", held)
        wait_for(lambda: len(sink.records()) == 3, timeout=30, what="the resumed message")
        self.assertEqual(sink.records()[2]["rcpts"], ["held@example.com"])

    def test_remove_with_dsn(self):
        sink = self.start_sink("--rcpt-reply", "451 4.3.0 Try later", "--rcpt-reply-match", "slow")
        d = self.relay(sink.port, "--glitch-retries", "0", "--retry-min", "300")
        qid = submit_raw(d.port, "sender@example.org", ["slow@example.com"], MESSAGE)
        wait_for(lambda: sink.stats().get("rcpt_faults", 0) >= 1, timeout=30, what="the deferral")
        shown = json.loads(self.cli("--json", "show", qid))
        self.assertEqual(shown["recipients"][0]["state"], "Deferred")
        self.assertEqual(shown["recipients"][0]["attempts"], 1)
        self.assertIn("removed", self.cli("remove", qid))
        wait_for(lambda: any(r["mail_from"] == "" for r in sink.records()), timeout=30, what="the DSN")
        (dsn,) = [r for r in sink.records() if r["mail_from"] == ""]
        self.assertEqual(dsn["rcpts"], ["sender@example.org"])
        self.assertIn(b"removed from the queue by the administrator", sink.body(dsn))
        self.assertNotIn(qid, self.cli("messages", QUEUE))
        # A removed message is no longer found; the spool does not hold it after a stop.
        p = subprocess.run([binary("ringmail-queue"), "--admin", self.admin, "show", qid], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        d.stop()
        self.assertNotIn(qid, spool_list(d.spool))

    def test_retry_now_skips_the_back_off(self):
        sink = self.start_sink("--greeting-reply", "421 4.3.2 Not now")
        d = self.relay(sink.port, "--glitch-retries", "0", "--retry-min", "300", "--retry-max", "600")
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: self.queues().get(QUEUE, {}).get("state") == "Retry", timeout=30, what="the queue in Retry")
        q = self.queues()[QUEUE]
        self.assertIn("421 4.3.2 Not now", q["last_error"])
        port = sink.port
        sink.stop()
        healthy = self.start_sink(name="healthy", port=port)
        time.sleep(1)
        self.assertEqual(healthy.records(), [], "still waiting for the 5-minute back-off")
        self.cli("retry", QUEUE)
        wait_for(lambda: len(healthy.records()) == 1, timeout=15, what="delivery right after retry-now")

    def test_unreachable_listed_and_reload_through_the_cli(self):
        sink = self.start_sink()
        conf = os.path.join(self.tmp, "connectors.toml")
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Com"\naddress_spaces = ["example.com"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{sink.port}"]\ntls = "none"\n')
        d = self.start_daemon("--config", conf, "--admin", "127.0.0.1:0")
        with open(os.path.join(self.tmp, "ready")) as f:
            self.admin = [l for l in f.read().splitlines() if l.startswith("admin ")][0].split()[1]
        qid = submit_raw(d.port, "s@example.org", ["x@example.net"], MESSAGE)
        wait_for(lambda: "unreachable" in self.queues(), timeout=10, what="the Unreachable queue")
        q = self.queues()["unreachable"]
        self.assertEqual((q["state"], q["recipients"]), ("Unreachable", 1))
        self.assertIn(qid, self.cli("messages", "unreachable"))
        with open(conf, "w") as f:
            f.write("this is not toml = = =\n")
        p = subprocess.run([binary("ringmail-queue"), "--admin", self.admin, "reload"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(p.returncode, 0, "a broken file is refused")
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Com"\naddress_spaces = ["example.com", "example.net"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{sink.port}"]\ntls = "none"\n')
        self.assertIn("1 recipient(s) left the Unreachable queue", self.cli("reload"))
        wait_for(lambda: len(sink.records()) == 1, timeout=30, what="the re-routed message")

    def test_metrics_count_what_happened(self):
        sink = self.start_sink("--rcpt-reply", "550 5.1.1 No such user", "--rcpt-reply-match", "bad")
        d = self.relay(sink.port)
        submit_raw(d.port, "s@example.org", ["good@example.com", "bad@example.com"], MESSAGE)
        wait_for(lambda: len(sink.records()) >= 2, timeout=30, what="the message and the DSN")

        def metric(name):
            with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=10) as r:
                text = r.read().decode()
            for line in text.splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
            return None
        wait_for(lambda: metric('ringmail_recipients_total{outcome="delivered"}') == 2, timeout=10,
                 what="two deliveries counted (the message and the DSN)")
        self.assertEqual(metric("ringmail_messages_received_total"), 1)
        self.assertEqual(metric('ringmail_recipients_total{outcome="bounced"}'), 1)
        self.assertEqual(metric("ringmail_dsn_generated_total"), 1)
        self.assertGreaterEqual(metric("ringmail_spool_sync_seconds_count"), 1)


if __name__ == "__main__":
    unittest.main()
