#!/usr/bin/python3
"""Writes the hand-made seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/seed-*.

The layouts (control bytes first) are the ones each target's header comment describes. Run it after
changing a layout; campaigns (scripts/fuzz.sh) add their own inputs beside these.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def crlf(*lines):
    return b"".join(l + b"\r\n" for l in lines)


# --- data_decoder_fuzz: max line u16, max size u16, chunk seed, stream
def dd(max_line, max_size, seed, stream):
    return struct.pack("<HHB", max_line, max_size, seed) + stream

put("data_decoder_fuzz", "plain", dd(1000, 60000, 7, crlf(b"Subject: x", b"", b"body") + b".\r\n"))
put("data_decoder_fuzz", "stuffed", dd(1000, 60000, 3, crlf(b"..leading dot", b".", b"..") + b".\r\n"))
put("data_decoder_fuzz", "smuggle", dd(1000, 60000, 0, b"a\n.\nMAIL FROM:<x@y>\r\n\r.\r\n.\r\n"))
put("data_decoder_fuzz", "nul-long", dd(10, 60000, 5, b"a\0b\r\n" + b"x" * 20 + b"\r\n.\r\n"))
put("data_decoder_fuzz", "big", dd(1000, 16, 9, crlf(b"x" * 40) + b".\r\nTRAILING"))
put("data_decoder_fuzz", "empty", dd(1000, 100, 1, b".\r\n"))

# --- server_session_fuzz: flags (1 relay, 2 tls, 4 require tls, 8 auth, 16 small limits), fail mask, seed
def ss(flags, fail, seed, stream):
    return bytes([flags, fail, seed]) + stream

txn = crlf(b"EHLO c.test", b"MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME", b"RCPT TO:<r@d.test>",
           b"DATA", b"Subject: hi", b"", b"..dot", b".", b"QUIT")
put("server_session_fuzz", "txn", ss(1, 0, 11, txn))
put("server_session_fuzz", "txn-fail", ss(1, 1, 4, txn))
put("server_session_fuzz", "no-relay", ss(0, 0, 2, txn))
put("server_session_fuzz", "pipelined", ss(1, 2, 0, crlf(
    b"EHLO c", b"MAIL FROM:<> RET=HDRS ENVID=abc", b"RCPT TO:<x@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y.test",
    b"RCPT TO:<postmaster>", b"DATA", b"x", b".", b"RSET", b"NOOP", b"VRFY a", b"HELP", b"QUIT")))
put("server_session_fuzz", "tls-auth", ss(1 | 2 | 8, 0, 6, crlf(
    b"EHLO c", b"STARTTLS", b"EHLO c", b"AUTH PLAIN AHVzZXIAcGFzcw==", b"MAIL FROM:<a@b>", b"RCPT TO:<c@d.test>",
    b"DATA", b"hi", b".", b"QUIT")))
put("server_session_fuzz", "auth-login", ss(2 | 8, 0, 6, crlf(
    b"EHLO c", b"STARTTLS", b"EHLO c", b"AUTH LOGIN", b"dXNlcg==", b"cGFzcw==", b"MAIL FROM:<a@b>",
    b"RCPT TO:<c@d.test>", b"DATA", b"hi", b".")))
put("server_session_fuzz", "require-tls", ss(1 | 2 | 4, 0, 1, crlf(b"EHLO c", b"MAIL FROM:<a@b>", b"STARTTLS", b"EHLO c")))
put("server_session_fuzz", "small", ss(1 | 16, 0, 9, crlf(
    b"EHLO c", b"MAIL FROM:<a@b> SIZE=1000", b"MAIL FROM:<a@b>", b"RCPT TO:<1@d>", b"RCPT TO:<2@d>",
    b"RCPT TO:<3@d>", b"DATA") + b"y" * 400 + b"\r\n.\r\nBAD\r\nBAD\r\nBAD\r\nBAD\r\n"))
put("server_session_fuzz", "smuggle", ss(1, 0, 3, crlf(b"EHLO c", b"MAIL FROM:<a@b>", b"RCPT TO:<c@d>", b"DATA")
                                        + b"x\n.\nMAIL FROM:<e@f>\r\n.\r\n"))

# --- command_parser_fuzz: one line
for i, line in enumerate([b"FROM:<a@b.test> SIZE=100 BODY=8BITMIME", b"TO:<\"q u\"@[192.0.2.1]>",
                          b"TO:<@r1,@r2:user@example.com> NOTIFY=NEVER", b"FROM:<>", b"TO:<postmaster>",
                          b"FROM: <j\xc3\xb6rg@b\xc3\xbccher.example> SMTPUTF8", b"TO:<a@[IPv6:2001:db8::1]>",
                          b"18446744073709551616", b"mail.example.com", b"MAIL FROM:<a@b>"]):
    put("command_parser_fuzz", str(i), line)

# --- reply_parser_fuzz: seed, stream
put("reply_parser_fuzz", "ehlo", b"\x05" + crlf(b"220 mx ESMTP", b"250-mx", b"250-PIPELINING", b"250-SIZE 1000",
                                                b"250 STARTTLS", b"250 2.1.0 Ok", b"550 5.1.1 <x@y>: unknown"))
put("reply_parser_fuzz", "multi", b"\x00" + b"451-4.3.0 a\r\n451 4.3.0 b\n421 bye\n")
put("reply_parser_fuzz", "bad", b"\x02" + b"250-a\r\n251 b\r\n")

# --- client_session_fuzz: settings (1 pipelining, 2-4 STARTTLS policy, 8 AUTH, 16 plaintext AUTH,
#     32 LOGIN, 64 one message per connection), chunk seed, shape (txns, rcpts, rcpt cap), events
def srv(b):
    return bytes([0, len(b)]) + b

ehlo = crlf(b"250-mx.test", b"250-PIPELINING", b"250-8BITMIME", b"250-SIZE 100000", b"250 ENHANCEDSTATUSCODES")
put("client_session_fuzz", "pipelined", bytes([1, 5, 0x04]) + srv(crlf(b"220 mx.test ESMTP")) + srv(ehlo)
    + srv(crlf(b"250 2.1.0 Ok", b"250 2.1.5 Ok", b"550 5.1.1 no such user", b"354 go")) + srv(crlf(b"250 2.0.0 queued"))
    + bytes([3]) + srv(crlf(b"221 bye")))
put("client_session_fuzz", "lockstep", bytes([0, 9, 0x01]) + srv(crlf(b"220 mx")) + srv(crlf(b"250 mx"))
    + srv(crlf(b"250 ok")) + srv(crlf(b"250 ok")) + srv(crlf(b"354 go")) + srv(crlf(b"451 4.3.0 try later"))
    + bytes([1]))
put("client_session_fuzz", "starttls-auth", bytes([1 | 4 | 8, 3, 0x00]) + srv(crlf(b"220 mx"))
    + srv(crlf(b"250-mx", b"250-STARTTLS", b"250 PIPELINING")) + srv(crlf(b"220 2.0.0 go ahead")) + bytes([6])
    + srv(crlf(b"250-mx", b"250-AUTH PLAIN LOGIN", b"250 PIPELINING")) + srv(crlf(b"535 5.7.8 bad credentials")))
put("client_session_fuzz", "login", bytes([8 | 16 | 32, 3, 0x02]) + srv(crlf(b"220 mx"))
    + srv(crlf(b"250-mx", b"250 AUTH LOGIN")) + srv(crlf(b"334 VXNlcm5hbWU6")) + srv(crlf(b"334 UGFzc3dvcmQ6"))
    + srv(crlf(b"235 2.7.0 ok")) + srv(crlf(b"250 ok")) + bytes([4]) + srv(crlf(b"250 ok")) + bytes([7, 2]))
put("client_session_fuzz", "tls-failed", bytes([2, 1, 0x05]) + srv(crlf(b"220 mx")) + srv(crlf(b"250-mx", b"250 STARTTLS"))
    + srv(crlf(b"220 go")) + bytes([7]))
put("client_session_fuzz", "421-midway", bytes([1, 2, 0xc6]) + srv(crlf(b"220 mx")) + srv(ehlo)
    + srv(b"250 2.1.0 Ok\r\n421 4.3.2 closing\r\n") + bytes([5]))

# --- spool_records_fuzz: mode 2 (damaged segment): count, per message: from, nrcpt, rcpts, dsn, body len, body; damage
def piece(b):
    return bytes([len(b)]) + b

msg = piece(b"a@b.test") + bytes([1]) + piece(b"r@d.test") + bytes([0]) + struct.pack("<H", 5) + b"hello"
msg_dsn = (piece(b"") + bytes([2]) + piece(b"x@y.test") + piece(b"z@y.test") + bytes([1]) + piece(b"env-1")
           + piece(b"x@y.test") + struct.pack("<H", 3) + b"abc")
put("spool_records_fuzz", "intact", bytes([2, 2]) + msg + msg_dsn + bytes([0]) + struct.pack("<H", 0xffff) + bytes([4]))
put("spool_records_fuzz", "flip", bytes([2, 3]) + msg + msg_dsn + msg + bytes([1]) + struct.pack("<H", 120) + bytes([1])
    + struct.pack("<H", 0xffff) + bytes([0]))
put("spool_records_fuzz", "cut", bytes([2, 2]) + msg + msg + bytes([0]) + struct.pack("<H", 100) + bytes([2]))
put("spool_records_fuzz", "raw", bytes([0]) + b"RMSEG001" + bytes(60))
put("spool_records_fuzz", "env", bytes([1]) + struct.pack("<QQII", 7, 1800000000000, 4, 1)
    + struct.pack("<I", 3) + b"a@b" + struct.pack("<I", 1) + b"c" + struct.pack("<I", 3) + b"r@d"
    + bytes([1]) + struct.pack("<I", 2) + b"id" + bytes([3]) + struct.pack("<I", 6) + b"rfc822" + struct.pack("<I", 3) + b"r@d")

# --- connector_config_fuzz: domain piece, size KiB, text
with open(os.path.join(HERE, "..", "..", "docs", "examples", "connectors.toml"), "rb") as f:
    example = f.read()
put("connector_config_fuzz", "example", piece(b"marketing.contoso.com") + bytes([3]) + example)
put("connector_config_fuzz", "small", piece(b"x.example.com") + bytes([0]) + b'[[connector]]\nname = "a"\n'
    b'address_spaces = ["*.example.com;2", "example.com"]\n[[connector]]\nname = "b"\naddress_spaces = ["*"]\n'
    b'smart_hosts = ["[127.0.0.1]:25"]\n')
put("connector_config_fuzz", "broken", piece(b"a") + bytes([1]) + b'[[connector]]\nname = 3\naddress_spaces = ["**"]\n[x')

# --- dns_answer_fuzz: qtype selector (0 MX, 1 A, 2 AAAA), qname piece, packet
def name(n):
    out = b""
    for label in n.split(b"."):
        if label:
            out += bytes([len(label)]) + label
    return out + b"\0"

def packet(qname, qtype, answers, rcode=0, authority=b"", nauth=0):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(answers), nauth, 0)
    q = name(qname) + struct.pack(">HH", qtype, 1)
    return hdr + q + b"".join(answers) + authority

def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata

ptr = b"\xc0\x0c"  # compression pointer to the question name
mx = packet(b"example.com", 15, [rr(ptr, 15, 300, struct.pack(">H", 10) + name(b"MX1.Example.com")),
                                 rr(ptr, 15, 300, struct.pack(">H", 20) + b"\x03mx2\xc0\x0c")])
put("dns_answer_fuzz", "mx", bytes([0]) + piece(b"example.com") + mx)
cname = packet(b"alias.test", 15, [rr(ptr, 5, 60, name(b"real.test")), rr(name(b"real.test"), 15, 60,
                                                                       struct.pack(">H", 0) + name(b""))])
put("dns_answer_fuzz", "cname-nullmx", bytes([0]) + piece(b"alias.test") + cname)
soa = rr(ptr, 6, 900, name(b"ns.test") + name(b"host.test") + struct.pack(">IIIII", 1, 2, 3, 4, 300))
put("dns_answer_fuzz", "nxdomain", bytes([0]) + piece(b"nope.test") + packet(b"nope.test", 15, [], 3, soa, 1))
put("dns_answer_fuzz", "a", bytes([1]) + piece(b"h.test") + packet(b"h.test", 1, [rr(ptr, 1, 30, bytes([192, 0, 2, 1]))]))
put("dns_answer_fuzz", "aaaa", bytes([2]) + piece(b"h.test") + packet(b"h.test", 28, [rr(ptr, 28, 30, bytes(15) + b"\1")]))
put("dns_answer_fuzz", "loop", bytes([0]) + piece(b"l.test") + packet(b"l.test", 15, [rr(b"\xc0\x1d", 15, 1, b"\0\1\xc0\x1d")]))
print("seeds written under", os.path.join(HERE, "corpus"))
