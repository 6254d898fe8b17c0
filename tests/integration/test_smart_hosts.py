"""Smart hosts: a connector lists several; connect failures and greeting refusals move on to the
next host before recipients are deferred, and host names are resolved by c-ares on the worker's
ring (here from /etc/hosts: `localhost`)."""
import os
import unittest

from harness import free_port, wait_for
from sinks import RingmailSink, strip_first_header
from test_delivery import MESSAGE, RelayTestCase, submit_raw


def connectors(path, hosts):
    quoted = ", ".join(f'"{h}"' for h in hosts)
    with open(path, "w") as f:
        f.write(f'[[connector]]\nname = "Relays"\naddress_spaces = ["*"]\nsmart_hosts = [{quoted}]\ntls = "none"\n')
    return path


class SmartHostTest(RelayTestCase):
    def start_sink(self, *args, name="sink"):
        s = RingmailSink(self.tmp, name=name, args=args)
        s.start()
        self.addCleanup(s.stop)
        return s

    def relay_to(self, hosts):
        conf = connectors(os.path.join(self.tmp, "connectors.toml"), hosts)
        return self.start_daemon("--config", conf, "--retry-min", "30", "--workers", "1")

    def test_connect_failure_moves_to_the_next_smart_host(self):
        dead = free_port()  # nothing listens there: connection refused
        sink = self.start_sink()
        d = self.relay_to([f"[127.0.0.1]:{dead}", f"[127.0.0.1]:{sink.port}"])
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: len(sink.records()) == 1, timeout=20, what="delivery through the second host")
        self.assertEqual(strip_first_header(sink.body(sink.records()[0]))[1], MESSAGE)
        log = d.read_log()
        self.assertRegex(log, rf"127\.0\.0\.1:{dead}.*(refused|Connection refused).*trying the next host")
        self.assertNotIn("deferred", log)  # the second host took it before any deferral
        self.assert_spool_empty_after_stop(d)

    def test_greeting_refusal_moves_to_the_next_smart_host(self):
        grumpy = self.start_sink("--greeting-reply", "554 5.3.2 No service here", name="grumpy")
        sink = self.start_sink(name="good")
        d = self.relay_to([f"[127.0.0.1]:{grumpy.port}", f"[127.0.0.1]:{sink.port}"])
        submit_raw(d.port, "s@example.org", ["a@example.com", "b@example.com"], MESSAGE)
        wait_for(lambda: len(sink.records()) == 1, timeout=20, what="delivery through the second host")
        self.assertEqual(sorted(sink.records()[0]["rcpts"]), ["a@example.com", "b@example.com"])
        self.assertEqual(grumpy.records(), [])
        self.assertRegex(d.read_log(), r"554 5\.3\.2.*trying the next host")
        self.assert_spool_empty_after_stop(d)

    def test_all_smart_hosts_down_defers_then_nothing_is_lost(self):
        d = self.relay_to([f"[127.0.0.1]:{free_port()}", f"[127.0.0.1]:{free_port()}"])
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "all 2 hosts failed" in d.read_log(), timeout=20, what="the next hop in Retry")
        self.assertRegex(d.read_log(), r"1 recipient\(s\) deferred via Relays")
        self.assertEqual(d.stop(), 0)  # still queued: nothing was lost, it waits for its retry

    def test_smart_host_name_resolved_on_the_ring(self):
        sink = self.start_sink()
        d = self.relay_to([f"localhost:{sink.port}"])
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: len(sink.records()) == 1, timeout=20, what="delivery to a named smart host")
        self.assertEqual(strip_first_header(sink.body(sink.records()[0]))[1], MESSAGE)
        self.assert_spool_empty_after_stop(d)

    def test_unresolvable_smart_host_holds_the_mail(self):
        d = self.relay_to(["no-such-host.invalid:25"])
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "does not resolve" in d.read_log(), timeout=30, what="the lookup failure")
        self.assertEqual(d.stop(), 0)
        from test_listener import spool_list
        self.assertEqual(len(spool_list(d.spool)), 1)  # held, not lost, not bounced


if __name__ == "__main__":
    unittest.main()
