#!/usr/bin/env python3
"""
t/integration/175-imap-compress.t: COMPRESS=DEFLATE (RFC 4978) with a raw
client over TLS that deflates and inflates with Python's zlib (raw DEFLATE,
wbits -15), against a running `gannet serve`:

- COMPRESS=DEFLATE is offered once logged in, not before, and COMPRESS
  before login is BAD; an unknown algorithm or no argument is BAD;
- after "OK", both directions are compressed: commands, a 3 MB APPEND
  (LITERAL+) and its FETCH BODY[] come through whole, every response can be
  decoded when it arrives (the server flushes each batch), and fewer bytes
  cross the wire than the text they carry;
- a second COMPRESS: NO [COMPRESSIONACTIVE];
- a decompression bomb (100 MB of one byte, 100 KB compressed, in one
  line) is refused like any over-long line, with the worker's memory
  unchanged, and the session goes on;
- compressed input that is not DEFLATE closes the connection, logged.
"""
import os
import re
import socket
import ssl
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)
g, tport, ctx = srv.g, srv.port, srv.ctx
t.ok(srv.setup(2), "an account with two messages in its Inbox")
srv.start()


class Client:
    """An IMAP session over a raw TLS socket; compress() turns DEFLATE on
    for both directions from then on."""

    def __init__(self, login=True):
        s = socket.create_connection(("127.0.0.1", tport), timeout=30)
        self.s = ctx.wrap_socket(s)
        self.buf = b""
        self.comp = self.decomp = None
        self.wire_in = 0
        self.greeting = self.line()
        if login:
            self.send(b"l LOGIN alice@example.com \"%s\"\r\n" % PASSWORD.encode())
            self.until_tagged("l")

    def compress(self):
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)

    def send(self, data, flush=True):
        if self.comp is not None:
            data = self.comp.compress(data) + (self.comp.flush(zlib.Z_SYNC_FLUSH) if flush else b"")
        self.s.sendall(data)

    def _more(self):
        try:
            chunk = self.s.recv(65536)
        except (OSError, ssl.SSLError):
            chunk = b""
        if not chunk:
            return False
        self.wire_in += len(chunk)
        if self.decomp is not None:
            chunk = self.decomp.decompress(chunk)
        self.buf += chunk
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self._more():
                return b""
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def read(self, n):
        while len(self.buf) < n:
            if not self._more():
                break
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until_tagged(self, tag):
        """The responses up to the tagged one; a literal ({n}) is read
        whole and kept as bytes after its line."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            m = re.search(rb"\{(\d+)\}$", ln)
            if m:
                lines.append(self.read(int(m.group(1))))
                continue
            if ln == b"" or ln.startswith(tag.encode() + b" "):
                return lines

    def eof(self):
        """Whether the server closed (after what it still had to say)."""
        while self._more():
            pass
        return True

    def close(self):
        self.s.close()


# The master listens before it forks its worker: wait for the worker's line.
workers = []
for _ in range(300):
    workers = re.findall(r"event=child_started kind=worker slot=\d+ child_pid=(\d+)", g.log())
    if workers:
        break
    time.sleep(0.1)
t.ok(len(workers) == 1, "one serve worker (%s)" % workers)
pid = workers[-1] if workers else "0"


def status_kb(field):
    with open("/proc/%s/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    return -1


# ---- offered once logged in ----

c = Client(login=False)
t.ok(b"COMPRESS=" not in c.greeting, "the greeting offers no COMPRESS before login")
c.send(b"a COMPRESS DEFLATE\r\n")
t.like(c.until_tagged("a")[-1], b"a BAD", "COMPRESS before login: BAD")
c.send(b"l LOGIN alice@example.com \"%s\"\r\n" % PASSWORD.encode())
c.until_tagged("l")
c.send(b"b CAPABILITY\r\n")
caps = c.until_tagged("b")
t.ok(caps[0].startswith(b"* CAPABILITY ") and b" COMPRESS=DEFLATE" in caps[0],
     "CAPABILITY once logged in: COMPRESS=DEFLATE (%s)" % caps[0][-60:])
c.send(b"c COMPRESS GZIP\r\n")
t.like(c.until_tagged("c")[-1], b"c BAD", "an unknown algorithm: BAD")
c.send(b"d COMPRESS\r\n")
t.like(c.until_tagged("d")[-1], b"d BAD", "no algorithm: BAD")
c.send(b"e COMPRESS \"DEFLATE\"\r\n")
t.like(c.until_tagged("e")[-1], b"e BAD", "the algorithm as a quoted string: BAD (an atom)")

# ---- compressed both ways ----

c.send(b"f COMPRESS deflate\r\n")
t.is_(c.until_tagged("f"), [b"f OK DEFLATE active"], "COMPRESS deflate: OK, uncompressed")
c.compress()
c.send(b"g NOOP\r\n")
t.is_(c.until_tagged("g"), [b"g OK NOOP completed"], "a command and its answer, compressed both ways")
c.send(b"h SELECT INBOX\r\n")
sel = c.until_tagged("h")
t.ok(b"* 2 EXISTS" in sel and sel[-1].startswith(b"h OK"), "SELECT through the compressed stream")
c.send(b"i COMPRESS DEFLATE\r\n")
t.is_(c.until_tagged("i"), [b"i NO [COMPRESSIONACTIVE] DEFLATE is active already"],
      "a second COMPRESS: NO [COMPRESSIONACTIVE]")

# A large message of mail-like text, appended with a non-synchronising
# literal sent in pieces with flushes between, and fetched back.
lines = []
for i in range(60000):
    lines.append(b"Line %06d of a long message, with some text that repeats a lot.\r\n" % i)
body = b"From: a@example.org\r\nSubject: big\r\n\r\n" + b"".join(lines)
c.send(b"j APPEND INBOX {%d+}\r\n" % len(body), flush=False)
for off in range(0, len(body), 500000):
    c.send(body[off:off + 500000])
c.send(b"\r\n")
r = c.until_tagged("j")
t.ok(r[-1].startswith(b"j OK [APPENDUID"), "a %d byte APPEND through the compressed stream: %s" %
     (len(body), r[-1][:40]))
c.send(b"k NOOP\r\n")
c.until_tagged("k")
before = c.wire_in
c.send(b"l FETCH 3 (BODY.PEEK[])\r\n")
r = c.until_tagged("l")
got = r[1] if len(r) > 2 else b""
t.ok(r[0] == b"* 3 FETCH (BODY[] {%d}" % len(body) and got == body and r[-1] == b"l OK FETCH completed",
     "FETCH BODY[] gives the message back whole (%d bytes)" % len(got))
wire = c.wire_in - before
t.ok(0 < wire < len(body) // 4, "it crossed the wire compressed: %d bytes for %d" % (wire, len(body)))
c.send(b"m FETCH 1:2 (UID RFC822.SIZE)\r\n")
r = c.until_tagged("m")
t.is_(len(r), 3, "FETCH after it: two responses and OK (%s)" % r[-1])
c.send(b"n LOGOUT\r\n")
r = c.until_tagged("n")
t.ok(r[0].startswith(b"* BYE") and r[-1] == b"n OK LOGOUT completed", "LOGOUT, compressed")
t.ok(c.eof() and c.decomp.unused_data == b"", "then the server closes after a whole stream")
c.close()

# ---- a decompression bomb ----

rss_before = status_kb("VmRSS")
hwm_before = status_kb("VmHWM")
c = Client()
c.send(b"a COMPRESS DEFLATE\r\n")
c.until_tagged("a")
c.compress()
bomb = c.comp.compress(b"b NOOP ")
bomb_size = 100 * 1000 * 1000
chunk = b"x" * (1000 * 1000)
for i in range(bomb_size // len(chunk)):
    bomb += c.comp.compress(chunk)
bomb += c.comp.compress(b"\r\nc NOOP\r\n") + c.comp.flush(zlib.Z_SYNC_FLUSH)
t.ok(len(bomb) < bomb_size // 500, "the bomb: %d bytes that inflate to %d" % (len(bomb), bomb_size))
c.s.sendall(bomb)
r = c.until_tagged("b")
t.diag("bomb answered: %s" % r)
t.ok(r[-1].startswith(b"b BAD [TOOBIG]"), "the bomb's line: BAD [TOOBIG], like any line too long")
t.is_(c.until_tagged("c"), [b"c OK NOOP completed"], "the session goes on after it")
hwm_after = status_kb("VmHWM")
t.diag("worker VmRSS before %d kB, VmHWM before %d kB, after %d kB" % (rss_before, hwm_before, hwm_after))
t.ok(hwm_before > 0 and hwm_after - hwm_before < 2 * 1024,
     "inflating 100 MB grew the worker's peak by less than 2 MB (%d kB)" % (hwm_after - hwm_before))
c.close()

# ---- input that is not DEFLATE ----

c = Client()
c.send(b"a COMPRESS DEFLATE\r\n")
c.until_tagged("a")
c.s.sendall(b"\xff" * 64 + b"a NOOP\r\n")
t.ok(c.eof() and c.buf == b"", "input that does not inflate: the connection closes")
c.close()
t.like(g.log(), "event=inflate_failed", "and the log says why")
t.like(g.log(), 'event=compress_refused conn=', "refused COMPRESS commands are logged")
mem = re.findall(r"event=compress_start id=\S+ algorithm=deflate memory=(\d+)", g.log())
t.ok(mem and int(mem[-1]) < 256 * 1024, "one compressed connection holds %s bytes of zlib state" %
     (mem[-1] if mem else "?"))

g.stop()
t.done()
