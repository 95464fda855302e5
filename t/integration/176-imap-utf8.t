#!/usr/bin/env python3
"""
t/integration/176-imap-utf8.t: UTF8=ACCEPT (RFC 6855) with raw clients
over TLS against a running `gannet serve`:

- UTF8=ACCEPT is offered; ENABLE UTF8=ACCEPT answers ENABLED once;
- after it, mailbox names come and go in UTF-8 as quoted strings: CREATE,
  LIST, STATUS, SELECT; an IMAP4rev1 session that did not enable it sees
  the same mailbox in modified UTF-7 and cannot name it in UTF-8;
- APPEND's UTF8 form (RFC 6855 4), "UTF8 (~{n}...)", synchronising or not,
  in a MULTIAPPEND too, stores the message as sent (8-bit header fields);
  without ENABLE it is BAD, with a plain literal or without its ")" too;
- SEARCH with CHARSET after ENABLE UTF8=ACCEPT: BAD (RFC 6855 3).
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)
g, tport, ctx = srv.g, srv.port, srv.ctx
t.ok(srv.setup(1), "an account with a message in its Inbox")
srv.start()


class Raw:
    """A logged-in session over a raw TLS socket."""

    def __init__(self):
        s = socket.create_connection(("127.0.0.1", tport), timeout=30)
        self.s = ctx.wrap_socket(s)
        self.buf = b""
        self.greeting = self.line()
        self.send(b"l LOGIN alice@example.com \"%s\"\r\n" % PASSWORD.encode())
        self.until_tagged("l")

    def send(self, data):
        self.s.sendall(data)

    def _more(self):
        try:
            chunk = self.s.recv(65536)
        except OSError:
            chunk = b""
        self.buf += chunk
        return chunk != b""

    def line(self):
        while b"\r\n" not in self.buf:
            if not self._more():
                return b""
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def read(self, n):
        while len(self.buf) < n and self._more():
            pass
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until_tagged(self, tag):
        """The responses up to the tagged one, a literal ({n}) read whole
        and kept after its line."""
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

    def cmd(self, tag, text):
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until_tagged(tag)


CAFE = "Café".encode()
NIHON = "Café/日本語".encode()

u = Raw()
t.ok(b" UTF8=ACCEPT" in u.greeting, "the greeting lists UTF8=ACCEPT")
r = u.cmd("a", b"ENABLE UTF8=ACCEPT")
t.is_(r, [b"* ENABLED UTF8=ACCEPT", b"a OK ENABLE completed"], "ENABLE UTF8=ACCEPT: ENABLED")
r = u.cmd("b", b"ENABLE UTF8=ACCEPT")
t.is_(r, [b"* ENABLED", b"b OK ENABLE completed"], "a second time: ENABLED lists nothing more")

# ---- names in UTF-8 ----

r = u.cmd("c", b'CREATE "' + NIHON + b'"')
t.like(r[-1], b"c OK", "CREATE a UTF-8 name (and its parent)")
r = u.cmd("d", b'LIST "" "Caf*"')
t.is_(sorted(r[:-1]), [b'* LIST (\\HasChildren) "/" "' + CAFE + b'"',
                       b'* LIST (\\HasNoChildren) "/" "' + NIHON + b'"'],
      "LIST answers the names in UTF-8, quoted")
r = u.cmd("e", b'STATUS "' + NIHON + b'" (MESSAGES)')
t.is_(r[0], b'* STATUS "' + NIHON + b'" (MESSAGES 0)', "STATUS names it in UTF-8")
t.is_(srv.sql("SELECT count(*) FROM gn_mailboxes WHERE name = 'Café/日本語'"), "1",
      "the store keeps the name in UTF-8")
r = u.cmd("f", b'SELECT "' + NIHON + b'"')
t.like(r[-1], b"f OK [READ-WRITE]", "SELECT by the UTF-8 name")
r = u.cmd("e2", b'LIST "" "' + CAFE + b'/%"')
t.is_(r[0], b'* LIST (\\HasNoChildren) "/" "' + NIHON + b'"', "a LIST pattern in UTF-8")
r = u.cmd("e3", 'CREATE "Ölbaum"'.encode())
r2 = u.cmd("e4", 'RENAME "Ölbaum" "Ølbåt"'.encode())
r3 = u.cmd("e5", 'LIST "" "Ø*"'.encode())
t.ok(r[-1].startswith(b"e3 OK") and r2[-1].startswith(b"e4 OK") and
     r3[0] == '* LIST (\\HasNoChildren) "/" "Ølbåt"'.encode(), "RENAME between UTF-8 names (%s)" % r3[0])
r = u.cmd("e6", 'DELETE "Ølbåt"'.encode())
t.like(r[-1], b"e6 OK", "DELETE by a UTF-8 name")
r = u.cmd("g", b'CREATE "Caf&AOk-x"')
r2 = u.cmd("h", b'LIST "" "Caf&AOk-x"')
t.ok(r[-1].startswith(b"g OK") and r2[0] == b'* LIST (\\HasNoChildren) "/" "Caf&AOk-x"',
     "after ENABLE a name is taken as it is, not decoded from modified UTF-7")

# ---- an IMAP4rev1 session without it ----

v = Raw()
r = v.cmd("a", b'LIST "" "Caf*"')
t.ok(b'* LIST (\\HasChildren) "/" "Caf&AOk-"' in r and
     b'* LIST (\\HasNoChildren) "/" "Caf&AOk-/&ZeVnLIqe-"' in r,
     "without ENABLE the same mailboxes are in modified UTF-7 (%s)" % r[:-1])
r = v.cmd("b", b'SELECT "Caf&AOk-/&ZeVnLIqe-"')
t.like(r[-1], b"b OK", "and SELECT takes the modified UTF-7 name")
r = v.cmd("c", b'SELECT "' + NIHON + b'"')
t.ok(r[-1].startswith(b"c NO") or r[-1].startswith(b"c BAD"),
     "a UTF-8 name is not a modified UTF-7 one: refused (%s)" % r[-1])
w = Raw()
r = w.cmd("a", b"ENABLE IMAP4rev2")
t.is_(r[0], b"* ENABLED IMAP4rev2", "another session enables IMAP4rev2 only")
r = w.cmd("b", b'LIST "" "Caf&AOk-"')
t.is_(r[0], b'* LIST (\\HasChildren) "/" "Caf&AOk-"', "and still sees modified UTF-7")

# ---- APPEND UTF8 (~{n}) ----

msg = ("From: Jörg <jörg@example.org>\r\nSubject: Grüße aus Köln\r\n\r\nHallo, schöne Grüße!\r\n").encode()
u.send(b'i APPEND "' + CAFE + b'" UTF8 (~{%d+}\r\n' % len(msg) + msg + b")\r\n")
r = u.until_tagged("i")
t.like(r[-1], b"i OK [APPENDUID ", "APPEND UTF8 (~{n+}...): OK")
u.send(b'j APPEND "' + CAFE + b'" (\\Seen) UTF8 (~{%d}\r\n' % len(msg))
t.is_(u.line(), b"+ Ready for the message", "the synchronising form gets \"+\"")
u.send(msg + b")\r\n")
r = u.until_tagged("j")
t.like(r[-1], b"j OK [APPENDUID ", "and is stored")
u.send(b'k APPEND "' + CAFE + b'" UTF8 (~{%d+}\r\n' % len(msg) + msg + b") (\\Flagged) UTF8 (~{%d+}\r\n"
       % len(msg) + msg + b")\r\n")
r = u.until_tagged("k")
t.ok(re.match(rb"k OK \[APPENDUID \d+ 3:4\]", r[-1]) is not None,
     "MULTIAPPEND of two UTF8 messages: both stored (%s)" % r[-1])
r = u.cmd("l", b'SELECT "' + CAFE + b'"')
t.ok(b"* 4 EXISTS" in r, "the mailbox has four messages")
r = u.cmd("m", b"FETCH 1:4 (FLAGS BODY.PEEK[])")
bodies = [x for x in r if x == msg]
t.is_(len(bodies), 4, "each comes back as sent, 8-bit header fields included")
t.ok(b"* 2 FETCH (FLAGS (\\Seen) BODY[] {%d}" % len(msg) in r and
     b"* 4 FETCH (FLAGS (\\Flagged) BODY[] {%d}" % len(msg) in r, "with their flags")

u.send(b'n APPEND "' + CAFE + b'" UTF8 ({%d+}\r\n' % len(msg) + msg + b")\r\n")
t.like(u.until_tagged("n")[-1], b"n BAD", "UTF8 with a plain literal (not literal8): BAD")
u.send(b'o APPEND "' + CAFE + b'" UTF8 (~{%d+}\r\n' % len(msg) + msg + b"\r\n")
t.like(u.until_tagged("o")[-1], b"o BAD", "UTF8 without its \")\": BAD")
u.send(b'p APPEND "' + CAFE + b'" UTF8 (~{%d}\r\n' % len(msg))
r = [u.line()]
v.send(b'f APPEND "Caf&AOk-" UTF8 (~{%d}\r\n' % len(msg))
r2 = v.until_tagged("f")
t.is_(r2, [b"f BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT"], "without ENABLE: BAD, before \"+\"")
t.is_(r, [b"+ Ready for the message"], "(with it, the same command gets \"+\")")
u.send(msg + b")\r\n")
t.like(u.until_tagged("p")[-1], b"p OK", "and goes on")
r = u.cmd("q", b"STATUS \"" + CAFE + b"\" (MESSAGES)")
t.is_(r[0], b'* STATUS "' + CAFE + b'" (MESSAGES 5)', "the refused ones stored nothing")

# ---- SEARCH ----

r = u.cmd("r", b"SEARCH CHARSET UTF-8 ALL")
t.like(r[-1], b"r BAD", "SEARCH CHARSET after ENABLE UTF8=ACCEPT: BAD (RFC 6855 3)")
r = u.cmd("s", b"SEARCH ALL")
t.is_(r[0], b"* SEARCH 1 2 3 4 5", "SEARCH without it")
v.cmd("x", b'SELECT "Caf&AOk-"')
r = v.cmd("g", b"SEARCH CHARSET UTF-8 ALL")
t.like(r[-1], b"g OK", "SEARCH CHARSET in a session without UTF8=ACCEPT: OK")

g.stop()
t.done()
