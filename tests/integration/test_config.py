"""The connector file through the daemon (validation at start, SIGHUP reload keeps the old table on
error) and through ringmail-route (explanations, --check)."""
import os
import signal
import subprocess

from harness import Daemon, DaemonTestCase, binary, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLE = os.path.join(REPO, "docs/examples/connectors.toml")

GOOD = """
[[connector]]
name = "Internet"
address_spaces = ["*"]

[[connector]]
name = "Partner"
address_spaces = ["SMTP:*.partner.example;5"]
smart_hosts = ["[127.0.0.1]:2525"]
"""

BROKEN = """
[[connector]]
name = "Internet"
address_spaces = ["*example.com"]
colour = "blue"
"""


def route(*args):
    p = subprocess.run([binary("ringmail-route")] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode()


class ConfigTest(DaemonTestCase):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_broken_file_refuses_to_start_with_file_and_line(self):
        path = self.write("broken.toml", BROKEN)
        d = Daemon(self.tmp, args=["--config", path])
        with self.assertRaises(RuntimeError) as ctx:
            d.start()
        self.assertEqual(d.proc.returncode, 2)
        log = d.read_log()
        self.assertIn(f"{path}:4:", log)  # the bad pattern's line
        self.assertIn(f"{path}:5:", log)  # the unknown key's line
        d.log.close()

    def test_sighup_reload_keeps_old_table_on_error(self):
        path = self.write("connectors.toml", GOOD)
        d = self.start_daemon("--config", path, "--hold")
        self.assertIn("2 connectors loaded", d.read_log())
        self.write("connectors.toml", BROKEN)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "refused, the previous table stays in use" in d.read_log(), what="refusal logged")
        self.assertIn(f"{path}:4:", d.read_log())
        self.write("connectors.toml", GOOD + '\n[[connector]]\nname = "Third"\naddress_spaces = ["third.example"]\n')
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded (table version 2)" in d.read_log(), what="reload logged")
        self.assertEqual(d.stop(), 0)

    def test_route_tool_explains_the_exchange_example(self):
        rc, out = route("--config", EXAMPLE, "--node", "mx1", "julia@marketing.contoso.com", "julia@sales.contoso.com",
                        "someone@gmail.com")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"julia@marketing\.contoso\.com\n  domain:\s+marketing\.contoso\.com\n  connector:\s+Contoso-Marketing")
        self.assertRegex(out, r"julia@sales\.contoso\.com\n  domain:\s+sales\.contoso\.com\n  connector:\s+Contoso\n")
        self.assertRegex(out, r"someone@gmail\.com\n  domain:\s+gmail\.com\n  connector:\s+Internet")
        self.assertIn("lost by rule 3", out)
        # Bigger than Contoso-Marketing's 10MB limit: handed to the less specific *.contoso.com.
        rc, out = route("--config", EXAMPLE, "--node", "mx1", "--size", str(20 * 1024 * 1024),
                        "julia@marketing.contoso.com")
        self.assertRegex(out, r"connector:\s+Contoso\n")
        self.assertIn("lost by rule 1", out)

    def test_route_check(self):
        rc, out = route("--config", EXAMPLE, "--check")
        self.assertEqual(rc, 0, out)
        path = self.write("broken.toml", BROKEN)
        rc, out = route("--config", path, "--check")
        self.assertNotEqual(rc, 0)
        self.assertIn(f"{path}:4:", out)
        self.assertIn(f"{path}:5:", out)


if __name__ == "__main__":
    import unittest
    unittest.main()
