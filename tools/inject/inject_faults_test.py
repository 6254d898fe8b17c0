#!/usr/bin/python3
"""inject_faults_test: ringmail-inject against a misbehaving SMTP server.

The server (asyncio, in a thread, bound to 127.0.0.1 port 0) answers 421 and drops the
connection, rejects recipients, closes during DATA, hangs, or answers slowly. Each case checks
the injector's exit code, its JSON summary and its --log file. Standard library only.
usage: inject_faults_test.py /path/to/ringmail-inject
"""
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

LOG_LINE = re.compile(r"^(\d{3}) <ringmail-inject\.\d+\.\d+\.[0-9a-f]{16}@inject\.local> (\S+)$")


class FaultServer:
    """An SMTP server whose misbehaviour is chosen by `mode`."""

    def __init__(self, mode):
        self.mode = mode
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _shutdown(self):
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _session(self, reader, writer):
        self.connections += 1
        conn = self.connections
        accepted = 0   # messages accepted on this connection
        started = 0    # transactions begun (MAIL commands)
        rejecting = False
        try:
            writer.write(b"220 fault.test ESMTP\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").strip().upper()
                if cmd.startswith("EHLO"):
                    writer.write(b"250-fault.test\r\n250 PIPELINING\r\n")
                elif cmd.startswith("MAIL"):
                    started += 1
                    if self.mode == "421" and conn % 3 == 0 and started == 3:
                        writer.write(b"421 4.3.2 shutting down\r\n")
                        await writer.drain()
                        return
                    rejecting = self.mode == "rcpt" and started % 2 == 0
                    writer.write(b"250 2.1.0 ok\r\n")
                elif cmd.startswith("RCPT"):
                    writer.write(b"550 5.1.1 no such user\r\n" if rejecting else b"250 2.1.5 ok\r\n")
                elif cmd == "DATA":
                    if rejecting:
                        writer.write(b"554 5.5.1 no valid recipients\r\n")
                        await writer.drain()
                        continue
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    if self.mode == "cut" and conn % 2 == 0 and started == 2:
                        await reader.readline()
                        return  # close in the middle of the data
                    if self.mode == "hang" and conn == 1 and started == 1:
                        await asyncio.sleep(3600)
                    body = await reader.readuntil(b"\r\n.\r\n")
                    assert b"\r\n..This line starts with a dot" in body, "body was not dot-stuffed"
                    if self.mode == "slow":
                        await asyncio.sleep(0.05)
                    accepted += 1
                    writer.write(b"250 2.0.0 Ok: queued as C%dM%d\r\n" % (conn, accepted))
                elif cmd == "RSET":
                    rejecting = False
                    writer.write(b"250 2.0.0 ok\r\n")
                elif cmd == "QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"502 5.5.2 what\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def run_inject(inject, port, log, *flags):
    start = time.monotonic()
    proc = subprocess.run([inject, "--target", f"127.0.0.1:{port}", "--quiet", "--json", "--log", log, *flags],
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    summary = json.loads(proc.stdout)
    with open(log) as f:
        lines = f.read().splitlines()
    for line in lines:
        assert LOG_LINE.match(line), f"malformed log line {line!r}"
    codes = {}
    for line in lines:
        codes[line[:3]] = codes.get(line[:3], 0) + 1
    return proc.returncode, summary, lines, codes, elapsed


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    inject = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("421", ["--count", "300", "--connections", "4", "--per-connection", "10", "--pipelining"]),
            ("rcpt", ["--count", "300", "--connections", "4", "--per-connection", "10"]),
            ("rcpt", ["--count", "300", "--connections", "4", "--per-connection", "10", "--pipelining", "--rcpts", "2"]),
            ("cut", ["--count", "300", "--connections", "4", "--per-connection", "10"]),
            ("hang", ["--count", "50", "--connections", "2", "--timeout", "1"]),
            ("slow", ["--count", "100000000", "--connections", "4", "--duration", "1"]),
        ]
        for i, (mode, flags) in enumerate(cases):
            server = FaultServer(mode)
            log = os.path.join(tmp, f"{i}-{mode}.log")
            try:
                rc, s, lines, codes, elapsed = run_inject(inject, server.port, log, *flags)
                summary_codes = {k: v for k, v in s["codes"].items()}
                check(summary_codes == codes, f"summary codes {summary_codes} != log codes {codes}")
                check(len(lines) == s["attempted"], "one log line per attempted message")
                if mode == "slow":
                    check(rc == 0 and s["time_capped"], f"duration cap: rc {rc}, summary {s}")
                    check(elapsed < 5, f"duration cap not honoured: {elapsed:.1f} s")
                    check(0 < s["accepted"] == s["attempted"], "all attempted accepted")
                else:
                    check(rc == 1, f"exit code {rc}, want 1")
                    check(s["attempted"] == s["requested"], "every message attempted despite failures")
                if mode == "421":
                    check(codes.get("421", 0) > 0 and codes.get("421") == s["connection_errors"], str(codes))
                    check(codes.get("250", 0) + codes.get("421", 0) == 300, str(codes))
                if mode == "rcpt":
                    # Every second transaction of a connection is refused at RCPT; the first failure
                    # code (550), not DATA's 554, is the message's outcome.
                    check(codes.get("550", 0) >= 125 and codes.get("250", 0) + codes.get("550", 0) == 300, str(codes))
                    check(s["connection_errors"] == 0, "rejections are not connection errors")
                if mode == "cut":
                    check(codes.get("000", 0) > 0 and codes.get("000") == s["connection_errors"], str(codes))
                    check(codes.get("250", 0) + codes.get("000", 0) == 300, str(codes))
                if mode == "hang":
                    check(codes.get("000") == 1 and codes.get("250") == 49, str(codes))
                    check(elapsed < 10, f"timeout not honoured: {elapsed:.1f} s")
                for line in lines:
                    if line.startswith("250 "):
                        check(re.search(r" C\d+M\d+$", line), f"queue id missing in {line!r}")
                print(f"ok   {mode} {' '.join(flags)}: {codes}")
            except AssertionError as e:
                failures += 1
                print(f"FAIL {mode} {' '.join(flags)}: {e}")
            finally:
                server.stop()
    print("inject_faults_test:", "ok" if failures == 0 else f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
