"""DNS-routed delivery end to end: a real Knot server (knotd, started here on a loopback port)
serves the MX records, ringmail-sink instances listen on different loopback addresses with one
shared port (the connector's `port`), and ringmail delivers by walking the MX list (RFC 5321 §5.1):
three domains arrive at three sinks; a refusing MX falls through to the next; equal preferences
share the mail; null MX and NXDOMAIN bounce with 5.1.10 and 5.1.2 DSNs; a SERVFAIL defers; an MX
list naming ourselves first is a loop (5.4.6) while a better MX than us is used; and many
deliveries to one new domain cost Knot one MX query.
"""
import email
import email.policy
import os
import re
import socket
import subprocess
import unittest
import urllib.request

from harness import DaemonTestCase, binary, wait_for
from knot import Knot
from sinks import RingmailSink
from test_delivery import MESSAGE, submit_raw

ZONE = """$ORIGIN t.
$TTL 300
@        3600 IN SOA ns.t. hostmaster.t. 1 3600 600 86400 60
@             IN NS ns.t.
ns            IN A  127.0.0.1
a             IN MX 10 mx.a.t.
mx.a          IN A  127.0.0.2
b             IN MX 10 mx.b.t.
mx.b          IN A  127.0.0.3
c             IN MX 10 mx.c.t.
mx.c          IN A  127.0.0.4
walk          IN MX 10 refuses.t.
walk          IN MX 20 mx.b.t.
refuses       IN A  127.0.0.9
equal         IN MX 10 mx.a.t.
equal         IN MX 10 mx.c.t.
nullmx        IN MX 0 .
self          IN MX 10 me.t.
me            IN A  127.0.0.1
better        IN MX 5  mx.c.t.
better        IN MX 10 me.t.
fresh         IN MX 10 mx.a.t.
lame          IN MX 10 host.servfail.
"""


def free_port_on(hosts):
    """A TCP port free on every one of `hosts`."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts[1:]:
            with socket.socket() as t:
                try:
                    t.bind((h, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no common free port")


class DnsDeliveryTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.knot = Knot({"t": ZONE, "servfail": "this does not load\n"})
        cls.knot.start()

    @classmethod
    def tearDownClass(cls):
        cls.knot.stop()

    def setUp(self):
        super().setUp()
        self.port = free_port_on(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        self.sinks = {}
        for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            s = RingmailSink(self.tmp, name=f"sink-{ip}", port=self.port, host=ip)
            s.start()
            self.addCleanup(s.stop)
            self.sinks[ip] = s
        conf = os.path.join(self.tmp, "connectors.toml")
        with open(conf, "w") as f:
            f.write(f'[[connector]]\nname = "Internet"\naddress_spaces = ["*"]\nport = {self.port}\ntls = "none"\n'
                    # One message per session for equal.t, so every delivery walks the MX list anew.
                    f'[[connector]]\nname = "OnePerSession"\naddress_spaces = ["equal.t"]\nport = {self.port}\n'
                    f'tls = "none"\nmax_messages_per_connection = 1\n')
        self.d = self.start_daemon("--config", conf, "--dns-server", self.knot.address(), "--retry-min", "1",
                                   "--retry-max", "2", "--workers", "2", "--admin", "127.0.0.1:0")
        with open(os.path.join(self.tmp, "ready")) as f:
            self.admin = [l for l in f.read().splitlines() if l.startswith("admin ")][0].split()[1]

    def rcpts_at(self, ip):
        return sorted(r for rec in self.sinks[ip].records() if rec["mail_from"] for r in rec["rcpts"])

    def dsns_at(self, ip):
        return [r for r in self.sinks[ip].records() if r["mail_from"] == ""]

    def test_three_domains_arrive_at_three_sinks(self):
        submit_raw(self.d.port, "s@a.t", ["x@a.t", "y@b.t", "z@c.t"], MESSAGE)
        wait_for(lambda: all(self.rcpts_at(ip) for ip in self.sinks), timeout=30, what="all three sinks")
        self.assertEqual(self.rcpts_at("127.0.0.2"), ["x@a.t"])
        self.assertEqual(self.rcpts_at("127.0.0.3"), ["y@b.t"])
        self.assertEqual(self.rcpts_at("127.0.0.4"), ["z@c.t"])

    def test_a_refusing_mx_falls_through_to_the_next(self):
        submit_raw(self.d.port, "s@a.t", ["w@walk.t"], MESSAGE)
        wait_for(lambda: self.rcpts_at("127.0.0.3") == ["w@walk.t"], timeout=30, what="delivery via the MX 20")
        self.assertRegex(self.d.read_log(), r"127\.0\.0\.9:\d+: .*trying the next host")

    def test_equal_preferences_share_the_mail(self):
        for i in range(30):
            submit_raw(self.d.port, "s@b.t", [f"e{i}@equal.t"], MESSAGE)
        wait_for(lambda: len(self.rcpts_at("127.0.0.2")) + len(self.rcpts_at("127.0.0.4")) == 30, timeout=60,
                 what="30 deliveries")
        a, c = len(self.rcpts_at("127.0.0.2")), len(self.rcpts_at("127.0.0.4"))
        # Each delivery is a new session (max_messages_per_connection = 1) that shuffles the equal
        # preferences anew; one host getting all 30 by chance has probability 2 * 2^-30.
        print(f"equal preferences: 127.0.0.2 got {a}, 127.0.0.4 got {c}")
        self.assertGreater(a, 0, (a, c))
        self.assertGreater(c, 0, (a, c))

    def dsn_status(self, ip):
        (rec,) = self.dsns_at(ip)
        msg = email.message_from_bytes(self.sinks[ip].body(rec), policy=email.policy.default)
        status = [p for p in msg.iter_parts() if p.get_content_type() == "message/delivery-status"][0]
        return [g["Status"] for g in status.get_payload()[1:]], rec["rcpts"]

    def test_null_mx_and_nxdomain_bounce(self):
        submit_raw(self.d.port, "s@a.t", ["n@nullmx.t"], MESSAGE)
        wait_for(lambda: self.dsns_at("127.0.0.2"), timeout=30, what="the null-MX DSN")
        self.assertEqual(self.dsn_status("127.0.0.2"), (["5.1.10"], ["s@a.t"]))
        submit_raw(self.d.port, "s@b.t", ["n@nosuchdomain.t"], MESSAGE)
        wait_for(lambda: self.dsns_at("127.0.0.3"), timeout=30, what="the NXDOMAIN DSN")
        self.assertEqual(self.dsn_status("127.0.0.3"), (["5.1.2"], ["s@b.t"]))

    def test_servfail_defers(self):
        submit_raw(self.d.port, "s@a.t", ["l@lame.t"], MESSAGE)
        # Two log lines from two places: the hop's warning comes first, the message's deferral after it.
        wait_for(lambda: "DNS lookup failed temporarily" in self.d.read_log(), timeout=30, what="the hop's warning")
        wait_for(lambda: re.search(r"1 recipient\(s\) deferred via Internet", self.d.read_log()), timeout=30,
                 what="the deferral")
        self.assertEqual(self.dsns_at("127.0.0.2"), [], "a temporary DNS failure is not a bounce")

    def test_mx_loop_guard(self):
        submit_raw(self.d.port, "s@a.t", ["m@self.t"], MESSAGE)
        wait_for(lambda: self.dsns_at("127.0.0.2"), timeout=30, what="the loop DSN")
        self.assertEqual(self.dsn_status("127.0.0.2")[0], ["5.4.6"])
        self.assertIn("loops back to myself", self.d.read_log())
        submit_raw(self.d.port, "s@a.t", ["m@better.t"], MESSAGE)
        wait_for(lambda: self.rcpts_at("127.0.0.4") == ["m@better.t"], timeout=30, what="delivery to the better MX")

    def test_many_deliveries_to_a_new_domain_cost_one_mx_query(self):
        before = self.knot.counter("query-type[MX]")
        # 1,000 messages over 20 connections, all to one domain nobody has looked up yet.
        p = subprocess.run([binary("ringmail-inject"), "--target", f"127.0.0.1:{self.d.port}", "--count", "1000",
                            "--connections", "20", "--size", "1000", "--from", "s@b.t", "--to", "user{n}@fresh.t",
                            "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        wait_for(lambda: self.sinks["127.0.0.2"].stats().get("recipients_accepted", 0) >= 1000, timeout=120,
                 what="1,000 deliveries")
        # The next hop for fresh.t lives on one worker: its cache answers every later delivery.
        self.assertEqual(self.knot.counter("query-type[MX]") - before, 1)
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn('ringmail_dns_cache_lookups_total{result="miss"} 1', metrics)


if __name__ == "__main__":
    unittest.main()
