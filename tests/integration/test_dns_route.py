"""ringmail-route --mx against a real Knot server (tests/integration/dns/test.zone): the live MX
answer with TTLs and addresses for DNS-routed connectors, null MX, NXDOMAIN, SERVFAIL, and that
smart-host connectors are not looked up in DNS."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import binary
from knot import Knot, fixture

CONNECTORS = """
[[connector]]
name = "Internet"
address_spaces = ["*"]
port = 2525

[[connector]]
name = "Partner"
address_spaces = ["partner.test"]
smart_hosts = ["[127.0.0.1]:2526"]
"""


class RouteMxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.knot = Knot({"test": fixture("test.zone"), "servfail": fixture("broken.zone")})
        cls.knot.start()
        cls.tmp = tempfile.mkdtemp(prefix="ringmail-route-mx-")
        cls.config = os.path.join(cls.tmp, "connectors.toml")
        with open(cls.config, "w") as f:
            f.write(CONNECTORS)

    @classmethod
    def tearDownClass(cls):
        cls.knot.stop()
        os.unlink(cls.config)
        os.rmdir(cls.tmp)

    def route(self, *addresses, extra=()):
        p = subprocess.run([binary("ringmail-route"), "--config", self.config, "--mx", "--dns-server",
                            self.knot.address(), *extra, *addresses],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        return p.stdout.decode()

    def test_mx_hosts_addresses_and_ttls(self):
        out = self.route("someone@example.test")
        self.assertIn("MX answer:  ok 250 2.0.0", out)
        self.assertRegex(out, r"MX 10 +mx1\.example\.test \(TTL 600\)")
        self.assertRegex(out, r"MX 20 +backup\.example\.test \(TTL 600\)")
        self.assertIn("127.0.0.11 (TTL 120)", out)
        self.assertIn("::1 (TTL 120)", out)
        self.assertIn("127.0.0.13 (TTL 30)", out)
        attempt = re.search(r"attempt: +(.*) \(equal", out).group(1).split()
        self.assertEqual(len(attempt), 4)
        self.assertEqual(attempt[-1], "127.0.0.13:2525")  # the connector's port, backup last

    def test_implicit_null_nxdomain_servfail(self):
        out = self.route("a@implicit.test", "b@nullmx.test", "c@nx.test", "d@x.servfail")
        self.assertIn("implicit.test (TTL 90) implicit MX", out)
        self.assertIn("permanent 556 5.1.10", out)
        self.assertIn("permanent 550 5.1.2", out)
        self.assertIn("temporary 451 4.4.3", out)
        self.assertIn("SERVFAIL", out)

    def test_smart_host_connector_is_not_looked_up(self):
        before = self.knot.counter("query-type[MX]")
        out = self.route("x@partner.test")
        self.assertIn("smart hosts [127.0.0.1]:2526", out)
        self.assertNotIn("MX answer", out)
        self.assertEqual(self.knot.counter("query-type[MX]"), before)

    def test_ipv6_preference(self):
        out = self.route("x@mxcname.test", extra=("--ip-preference", "ipv6"))
        self.assertRegex(out, r"cname-target\.test \(TTL 300\)\n +::1 \(TTL 120\)\n +127\.0\.0\.11")


if __name__ == "__main__":
    unittest.main()
