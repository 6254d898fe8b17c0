"""Outbound STARTTLS and smart-host AUTH against independent receivers: aiosmtpd (python3-aiosmtpd)
with STARTTLS and AUTH, a server that breaks the TLS handshake, and a throwaway Postfix smtpd with
STARTTLS (scripts/postfix-instance.sh ... tls CERT KEY). Covers each connector policy (none,
opportunistic, required, verify), a self-signed certificate, a name mismatch, AUTH with right and
wrong credentials, and checks that the password never appears in ringmail's log. Test certificates
are made here with `openssl req`.

`python3 test_tls_out.py --serve ...` runs one of the receivers (used by the tests as a subprocess).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

from harness import DaemonTestCase, free_port, wait_for
from sinks import PostfixInstance, _Process
from test_delivery import MESSAGE, submit_raw

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))
PASSWORD = "Tr0ub4dor-s3cret-pw"
USER = "relayuser"
TLS_NAME = "mx.tls.test"


# ---------------------------------------------------------------- certificates (openssl req)

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(directory, name=TLS_NAME):
    """ca.pem; server.pem/server.key signed by it for `name`; self.pem/self.key self-signed."""
    os.makedirs(directory, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ringmail test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=directory)
    openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={name}", cwd=directory)
    with open(os.path.join(directory, "ext.cnf"), "w") as f:
        f.write(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=directory)
    openssl("req", "-x509", *ec, "-keyout", "self.key", "-out", "self.pem", "-days", "2", "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}", cwd=directory)
    return {k: os.path.join(directory, v) for k, v in
            {"ca": "ca.pem", "cert": "server.pem", "key": "server.key", "self_cert": "self.pem",
             "self_key": "self.key"}.items()}


# ---------------------------------------------------------------- receivers (run with --serve)

def serve_aiosmtpd(args):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult

    count = [0]
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                count[0] += 1
                n = count[0]
            meta = {"rcpt_tos": envelope.rcpt_tos, "tls": session.ssl is not None,
                    "cipher": list(session.ssl.get("cipher") or []) if session.ssl else None,
                    "authenticated": bool(session.authenticated),
                    "login": session.login_data.decode() if isinstance(session.login_data, bytes) else None}
            with open(os.path.join(args.dir, f"{n}.eml"), "wb") as f:
                f.write(envelope.original_content)
            with open(os.path.join(args.dir, f"{n}.json.tmp"), "w") as f:
                json.dump(meta, f)
            os.rename(os.path.join(args.dir, f"{n}.json.tmp"), os.path.join(args.dir, f"{n}.json"))
            return f"250 2.0.0 Ok: queued as TLS{n}"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == args.user.encode() and auth_data.password == args.password.encode()
        with open(os.path.join(args.dir, "auth.log"), "a") as f:
            f.write(f"{mechanism} {'ok' if ok else 'refused'}\n")
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    kw = {"hostname": "aiosmtpd.tls.test", "decode_data": False}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kw["tls_context"] = ctx
    if args.user:
        kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)

    class TlsController(Controller):
        def factory(self):
            return SMTP(self.handler, **kw)

    controller = TlsController(Handler(), hostname="127.0.0.1", port=args.port)
    controller.start()
    return controller.stop


def serve_broken(args):
    """Offers STARTTLS, says 220, then answers the ClientHello with clear-text garbage and closes.
    Without STARTTLS it is a minimal SMTP server that accepts mail (to see the clear-text fallback)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(16)
    stop = threading.Event()

    def session(conn):
        f = conn.makefile("rwb", buffering=0)
        events = []

        def say(line):
            f.write(line.encode() + b"\r\n")

        say("220 broken.tls.test ESMTP")
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                cmd = line.decode(errors="replace").strip().upper()
                if cmd.startswith("EHLO"):
                    say("250-broken.tls.test")
                    say("250-8BITMIME")
                    say("250 STARTTLS")
                elif cmd == "STARTTLS":
                    events.append("starttls")
                    say("220 2.0.0 go ahead")
                    conn.recv(4096)  # the ClientHello
                    conn.sendall(b"this is not a TLS record at all\r\n")
                    break
                elif cmd.startswith("DATA"):
                    say("354 go")
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        chunk = f.readline()
                        if not chunk:
                            break
                        data += chunk
                    events.append("message")
                    say("250 2.0.0 accepted in clear text")
                elif cmd.startswith("QUIT"):
                    say("221 bye")
                    break
                else:
                    say("250 ok")
        except OSError:
            pass
        with open(os.path.join(args.dir, "broken.log"), "a") as log:
            log.write(json.dumps(events) + "\n")
        conn.close()

    def accept_loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=session, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()

    def stopper():
        stop.set()
        t.join()
        srv.close()
    return stopper


def serve_main(argv):
    if os.environ.get("TLS_OUT_DEBUG"):
        import logging
        logging.basicConfig(level=logging.DEBUG)
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", choices=["aiosmtpd", "broken"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    stopper = serve_aiosmtpd(args) if args.serve == "aiosmtpd" else serve_broken(args)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with open(args.ready_file, "w") as f:
        f.write(f"127.0.0.1:{args.port}\n")
    while not done.wait(0.5):
        pass
    stopper()


class Receiver(_Process):
    """One receiver of this file (aiosmtpd with TLS/AUTH options, or the broken server)."""

    def __init__(self, workdir, kind, name, **opts):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.kind = kind
        self.opts = opts
        self.port = None

    def start(self, timeout=20):
        ready = os.path.join(self.dir, "ready")
        self.port = free_port()
        cmd = ["/usr/bin/python3", os.path.abspath(__file__), "--serve", self.kind, "--port", str(self.port),
               "--dir", self.dir, "--ready-file", ready]
        for k, v in self.opts.items():
            cmd += [f"--{k}", v]
        self._spawn(cmd, os.path.join(self.dir, "out.log"))
        wait_for(lambda: os.path.exists(ready) or not self.running(), timeout, what=f"{self.kind} ready")
        if not self.running():
            with open(os.path.join(self.dir, "out.log")) as f:
                raise RuntimeError(f"{self.kind} exited: {f.read()[-2000:]}")
        return self

    def messages(self):
        out = []
        n = 1
        while os.path.exists(os.path.join(self.dir, f"{n}.json")):
            with open(os.path.join(self.dir, f"{n}.json")) as f:
                out.append(json.load(f))
            n += 1
        return out

    def lines(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return [l.strip() for l in f]
        except FileNotFoundError:
            return []


# ---------------------------------------------------------------- the tests

class TlsOutTestCase(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cert_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ringmail-tls-out-certs-{os.getpid()}")
        cls.certs = make_certs(cls.cert_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.cert_dir, ignore_errors=True)

    def receiver(self, kind="aiosmtpd", name="rx", **opts):
        r = Receiver(self.tmp, kind, name, **opts)
        r.start()
        self.addCleanup(r.stop)
        return r

    def relay(self, port, tls, extra="", daemon_args=()):
        path = os.path.join(self.tmp, "connectors.toml")
        with open(path, "w") as f:
            f.write(f'[[connector]]\nname = "Smart"\naddress_spaces = ["*"]\n'
                    f'smart_hosts = ["[127.0.0.1]:{port}"]\ntls = "{tls}"\n{extra}\n')
        return self.start_daemon("--config", path, "--retry-min", "1", "--retry-max", "2", "--workers", "1",
                                 "--log-level", "debug", *daemon_args)

    def auth_file(self, password=PASSWORD, mode=0o600):
        path = os.path.join(self.tmp, "relay.auth")
        with open(path, "w") as f:
            f.write(f"# smart host credentials\n{USER}:{password}\n")
        os.chmod(path, mode)
        return path

    def password_file(self, password=PASSWORD):
        path = os.path.join(self.tmp, "relay.pw")
        with open(path, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        return path

    def assert_no_secret(self, d):
        log = d.read_log()
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn("wrong-" + PASSWORD, log)
        import base64
        for secret in (PASSWORD, "wrong-" + PASSWORD):
            self.assertNotIn(base64.b64encode(f"\0{USER}\0{secret}".encode()).decode(), log)
            self.assertNotIn(base64.b64encode(secret.encode()).decode(), log)

    def deliver(self, d, rx, count=1):
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: len(rx.messages()) >= count, timeout=30, what="delivery")
        return rx.messages()[-1]


class PolicyTest(TlsOutTestCase):
    def test_opportunistic_uses_starttls_with_a_self_signed_certificate(self):
        rx = self.receiver(cert=self.certs["self_cert"], key=self.certs["self_key"])
        d = self.relay(rx.port, "opportunistic", daemon_args=("--admin", "127.0.0.1:0"))
        meta = self.deliver(d, rx)
        self.assertTrue(meta["tls"], "delivered without TLS although STARTTLS was offered")
        self.assertRegex(d.read_log(), r"TLS TLSv1\.3 \S+ \(\d+ bits\)")
        with open(os.path.join(self.tmp, "ready")) as f:
            admin = [l for l in f.read().splitlines() if l.startswith("admin ")][0].split()[1]
        with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn('ringmail_tls_handshakes_total{direction="outbound"} 1\n', metrics)
        self.assertIn('ringmail_tls_resumed_total{direction="outbound"} 0\n', metrics)
        self.assertEqual(d.stop(), 0)

    def test_opportunistic_without_starttls_delivers_in_clear_text(self):
        rx = self.receiver()
        d = self.relay(rx.port, "opportunistic")
        self.assertFalse(self.deliver(d, rx)["tls"])
        self.assertEqual(d.stop(), 0)

    def test_none_never_uses_starttls(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        d = self.relay(rx.port, "none")
        self.assertFalse(self.deliver(d, rx)["tls"])
        self.assertEqual(d.stop(), 0)

    def test_required_without_starttls_defers_and_sends_nothing_in_clear(self):
        rx = self.receiver()
        d = self.relay(rx.port, "required")
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        log = d.read_log()
        self.assertIn("TLS is required but the server does not offer STARTTLS", log)
        time.sleep(1.5)  # a retry (1 s) must not fall back to clear text either
        self.assertEqual(rx.messages(), [])
        self.assertEqual(d.stop(), 0)

    def test_verify_with_trusted_chain_and_matching_name_delivers(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        d = self.relay(rx.port, "verify", f'tls_domain = "{TLS_NAME}"\ntls_ca_file = "{self.certs["ca"]}"')
        self.assertTrue(self.deliver(d, rx)["tls"])
        self.assertIn("certificate verified", d.read_log())
        self.assertEqual(d.stop(), 0)

    def test_verify_refuses_a_self_signed_certificate(self):
        rx = self.receiver(cert=self.certs["self_cert"], key=self.certs["self_key"])
        d = self.relay(rx.port, "verify", f'tls_domain = "{TLS_NAME}"\ntls_ca_file = "{self.certs["ca"]}"')
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        log = d.read_log()
        self.assertRegex(log, r"STARTTLS failed: certificate chain invalid: self-signed certificate")
        self.assertEqual(rx.messages(), [])
        self.assertEqual(d.stop(), 0)

    def test_verify_refuses_a_name_mismatch(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        d = self.relay(rx.port, "verify", f'tls_domain = "other.tls.test"\ntls_ca_file = "{self.certs["ca"]}"')
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        self.assertRegex(d.read_log(), r"STARTTLS failed: certificate name mismatch: .*not valid for other\.tls\.test")
        self.assertEqual(rx.messages(), [])
        self.assertEqual(d.stop(), 0)

    def test_verify_with_the_system_store_refuses_a_private_ca(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"])
        d = self.relay(rx.port, "verify", f'tls_domain = "{TLS_NAME}"')
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        self.assertRegex(d.read_log(), r"certificate chain invalid: unable to get local issuer certificate")
        self.assertEqual(d.stop(), 0)

    def test_broken_handshake_opportunistic_falls_back_to_clear_text_for_that_host(self):
        rx = self.receiver("broken", name="broken")
        d = self.relay(rx.port, "opportunistic")
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "message" in "".join(rx.lines("broken.log")), timeout=30, what="clear-text retry")
        sessions = [json.loads(l) for l in rx.lines("broken.log")]
        self.assertEqual(sessions[0], ["starttls"])      # first attempt: the handshake broke
        self.assertIn(["message"], sessions[1:])         # then clear text, no STARTTLS
        self.assertRegex(d.read_log(), r"STARTTLS failed: TLS handshake failed")
        self.assertEqual(d.stop(), 0)

    def test_broken_handshake_required_defers(self):
        rx = self.receiver("broken", name="broken")
        d = self.relay(rx.port, "required")
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: len(rx.lines("broken.log")) >= 2, timeout=30, what="two attempts")
        for session in (json.loads(l) for l in rx.lines("broken.log")):
            self.assertEqual(session, ["starttls"])      # never a message in clear text
        self.assertIn("deferred via Smart", d.read_log())
        self.assertEqual(d.stop(), 0)


class AuthTest(TlsOutTestCase):
    def test_auth_with_correct_credentials_after_starttls(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"], user=USER, password=PASSWORD)
        d = self.relay(rx.port, "verify", f'tls_domain = "{TLS_NAME}"\ntls_ca_file = "{self.certs["ca"]}"\n'
                                           f'auth_file = "{self.auth_file()}"')
        meta = self.deliver(d, rx)
        self.assertTrue(meta["tls"])
        self.assertTrue(meta["authenticated"])
        self.assertEqual(meta["login"], USER)
        self.assertEqual(rx.lines("auth.log"), ["PLAIN ok"])
        self.assertEqual(d.stop(), 0)
        self.assert_no_secret(d)

    def test_auth_login_mechanism(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"], user=USER, password=PASSWORD)
        pw = self.password_file()
        d = self.relay(rx.port, "required",
                       f'auth = {{ mechanism = "LOGIN", username = "{USER}", password_file = "{pw}" }}')
        self.assertTrue(self.deliver(d, rx)["authenticated"])
        self.assertEqual(rx.lines("auth.log"), ["LOGIN ok"])
        self.assertEqual(d.stop(), 0)
        self.assert_no_secret(d)

    def test_auth_with_wrong_credentials_defers_without_logging_them(self):
        rx = self.receiver(cert=self.certs["cert"], key=self.certs["key"], user=USER, password=PASSWORD)
        d = self.relay(rx.port, "required", f'auth_file = "{self.auth_file("wrong-" + PASSWORD)}"')
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        self.assertRegex(d.read_log(), r"AUTH PLAIN refused: host said 535 5\.7\.8")
        self.assertEqual(rx.messages(), [])
        self.assertIn("PLAIN refused", rx.lines("auth.log"))
        self.assertEqual(d.stop(), 0)
        self.assert_no_secret(d)

    def test_group_readable_credentials_refuse_to_start(self):
        path = os.path.join(self.tmp, "connectors.toml")
        auth = self.auth_file(mode=0o640)
        with open(path, "w") as f:
            f.write(f'[[connector]]\nname = "Smart"\naddress_spaces = ["*"]\nsmart_hosts = ["[127.0.0.1]:2525"]\n'
                    f'tls = "required"\nauth_file = "{auth}"\n')
        log = self.refused_start("--config", path)
        self.assertIn(f"{path}:6: connector 'Smart': auth_file {auth} is accessible by group or others", log)
        self.assertNotIn(PASSWORD, log)


class PostfixTest(TlsOutTestCase):
    """Postfix smtpd with STARTTLS (a throwaway instance from scripts/postfix-instance.sh)."""

    def setUp(self):
        super().setUp()
        if not PostfixInstance.available():
            self.skipTest("needs Debian's postfix and root to run a throwaway instance")
        self.postfix = PostfixInstance(self.tmp, tls=(self.certs["cert"], self.certs["key"])).start()
        self.addCleanup(self.postfix.stop)
        self.pf_port = self.postfix.port

    def held(self):
        return self.postfix.held()

    def maillog(self):
        return self.postfix.maillog()

    def test_verify_delivers_to_postfix_over_tls(self):
        d = self.relay(self.pf_port, "verify", f'tls_domain = "{TLS_NAME}"\ntls_ca_file = "{self.certs["ca"]}"')
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: self.held() >= 1, timeout=30, what="the message in postfix's hold queue")
        wait_for(lambda: "TLS connection established from" in self.maillog(), timeout=10,
                 what="postfix logging the TLS session")
        self.assertRegex(self.maillog(), r"TLS connection established from .*TLSv1\.[23]")
        self.assertRegex(d.read_log(), r"TLS TLSv1\.[23] .*certificate verified")
        self.assertEqual(d.stop(), 0)

    def test_name_mismatch_against_postfix_is_refused(self):
        d = self.relay(self.pf_port, "verify", f'tls_domain = "wrong.tls.test"\ntls_ca_file = "{self.certs["ca"]}"')
        submit_raw(d.port, "s@example.org", ["a@example.com"], MESSAGE)
        wait_for(lambda: "deferred via Smart" in d.read_log(), timeout=30, what="the deferral")
        self.assertIn("certificate name mismatch", d.read_log())
        self.assertEqual(self.held(), 0)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve_main(sys.argv[1:])
    else:
        unittest.main()
