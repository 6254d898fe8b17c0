"""An independent SMTP receiver for ringmail's delivery tests: Debian's aiosmtpd Controller on a
loopback port, saving each accepted message as DIR/<n>.eml (the exact DATA bytes after dot
unstuffing, CRLF kept) and DIR/<n>.json (envelope). Scripted replies for RCPTs that contain a
substring. Run with /usr/bin/python3; stops on SIGTERM or SIGINT. Not a test itself.
"""
import argparse
import asyncio
import json
import os
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class SavingHandler:
    """Saves every message; answers RCPTs that match a scripted substring with a scripted reply."""

    def __init__(self, directory, rcpt_rules, data_delay=0.0):
        self.directory = directory
        self.data_delay = data_delay  # seconds between saving a message and answering its DATA
        self.rcpt_rules = rcpt_rules  # [(substring, reply)], first match wins
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for substring, reply in self.rcpt_rules:
            if substring in address:
                return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        meta = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "helo": session.host_name,
            "peer": list(session.peer)[:2],
        }
        # Body first, then the envelope: a reader that sees the .json sees the whole .eml.
        write_atomic(os.path.join(self.directory, f"{n}.eml"), envelope.original_content)
        write_atomic(os.path.join(self.directory, f"{n}.json"), json.dumps(meta).encode())
        if self.data_delay > 0:
            await asyncio.sleep(self.data_delay)
        return f"250 2.0.0 Ok: queued as AIO{n}"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class EightBitController(Controller):
    """aiosmtpd advertises 8BITMIME always; SMTPUTF8 only when asked, as here."""

    def factory(self):
        return SMTP(self.handler, enable_SMTPUTF8=True, decode_data=False, hostname="aiosmtpd.test")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    ap.add_argument("--dir", required=True, help="where messages are saved")
    ap.add_argument("--ready-file", required=True, help="written (with the port) once listening")
    ap.add_argument("--rcpt-reply", action="append", default=[], metavar="SUBSTR=REPLY",
                    help="reply REPLY to RCPTs containing SUBSTR, e.g. 'bad=550 5.1.1 No such user'")
    ap.add_argument("--data-delay", type=float, default=0.0,
                    help="seconds to wait after saving a message before answering its end of data")
    args = ap.parse_args()
    rules = []
    for rule in args.rcpt_reply:
        substring, reply = rule.split("=", 1)
        rules.append((substring, reply))
    os.makedirs(args.dir, exist_ok=True)
    controller = EightBitController(SavingHandler(args.dir, rules, args.data_delay), hostname="127.0.0.1",
                                    port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    write_atomic(args.ready_file, f"127.0.0.1:{args.port}\n".encode())
    while not stop.wait(0.5):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
