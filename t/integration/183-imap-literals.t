#!/usr/bin/env python3
"""
t/integration/183-imap-literals.t: literals in every position where the
formal syntax of RFC 9051 (section 9) has an astring or a string, sent
as synchronising literals (waiting for "+") and as non-synchronising
ones (LITERAL+), against a running `gannet serve` (issue 8, item 5's
parser edge cases):

- mailbox names (CREATE, SELECT, EXAMINE, RENAME, DELETE, SUBSCRIBE,
  UNSUBSCRIBE, STATUS, APPEND, COPY, MOVE, LIST's reference and pattern,
  LSUB);
- search strings and charsets (SEARCH SUBJECT, HEADER's field name and
  value, CHARSET; SORT's charset), the header field names of
  BODY[HEADER.FIELDS (...)] (header-fld-name is an astring);
- ID's parameters (RFC 2971: nstring);
- where the grammar has an atom (ENABLE's capability, AUTHENTICATE's
  mechanism, a FETCH item, a flag) a literal is BAD.

Each answer is checked against what the same command says with a quoted
string or an atom.  Before this test, a literal in HEADER.FIELDS was BAD.
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)
t.ok(srv.setup(3), "account alice with three messages")
srv.start()


class Lit:
    """A literal argument: synchronising unless plus."""

    def __init__(self, data, plus=False):
        self.data = data.encode() if isinstance(data, str) else data
        self.plus = plus


class Raw:
    def __init__(self):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
        self.s = srv.ctx.wrap_socket(s)
        self.buf = b""
        self.line()
        self.n = 0

    def fill(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def line(self):
        """A response line, with the literals it holds (b"" when the
        server closed)."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    r, self.buf = out + self.buf, b""
                    return r
                self.buf += chunk
            ln, self.buf = self.buf.split(b"\r\n", 1)
            out += ln
            m = re.search(rb"\{(\d+)\}$", ln)
            if m is None or out.startswith(b"+"):
                return out
            n = int(m.group(1))
            if not self.fill(n):
                return out
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def cmd(self, *parts):
        """Sends a command made of text and Lit parts; returns its lines,
        the tagged one last (or a refusal instead of a continuation)."""
        self.n += 1
        tag = b"t%d" % self.n
        out = tag + b" "
        lines = []
        for p in parts:
            if not isinstance(p, Lit):
                out += p.encode()
                continue
            out += b"{%d%s}\r\n" % (len(p.data), b"+" if p.plus else b"")
            if not p.plus:
                self.s.sendall(out)
                out = b""
                ln = self.line()
                if not ln.startswith(b"+"):
                    lines.append(ln)
                    while not ln.startswith(tag + b" ") and ln != b"":
                        ln = self.line()
                        lines.append(ln)
                    return lines
            out += p.data
        self.s.sendall(out + b"\r\n")
        while True:
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag + b" ") or ln == b"":
                return lines


def status(lines):
    """The tagged status word (OK, NO, BAD) of a command's lines."""
    m = re.match(rb"^t\d+ (OK|NO|BAD)\b", lines[-1])
    return m.group(1).decode() if m else lines[-1].decode()


def untagged(lines):
    """The untagged lines, with the tag numbers taken out."""
    return [ln for ln in lines[:-1] if ln.startswith(b"* ")]


r = Raw()
t.is_(status(r.cmd("LOGIN ", Lit("alice@example.com"), " ", Lit(imaptest.PASSWORD, plus=True))), "OK",
      "LOGIN with a synchronising and a non-synchronising literal")

for plus in (False, True):
    kind = "non-synchronising" if plus else "synchronising"
    a, b = ("Lp", "Lp2") if plus else ("Ls", "Ls2")
    t.is_(status(r.cmd("CREATE ", Lit(a, plus))), "OK", "CREATE with a %s literal" % kind)
    lines = r.cmd('LIST "" ', Lit(a, plus))
    t.ok(status(lines) == "OK" and any(ln.endswith(b' "/" "%s"' % a.encode()) for ln in lines),
         "LIST with the pattern as a %s literal finds it (%s)" % (kind, lines))
    lines = r.cmd("LIST ", Lit("", plus), " ", Lit("*", plus))
    t.ok(status(lines) == "OK" and len(untagged(lines)) >= 2,
         "LIST with reference and pattern as %s literals, one empty" % kind)
    t.is_(status(r.cmd("RENAME ", Lit(a, plus), " ", Lit(b, plus))), "OK",
          "RENAME with both names as %s literals" % kind)
    t.is_(status(r.cmd("SUBSCRIBE ", Lit(b, plus))), "OK", "SUBSCRIBE with a %s literal" % kind)
    lines = r.cmd('LSUB ', Lit("", plus), ' ', Lit(b, plus))
    t.ok(status(lines) == "OK" and len(untagged(lines)) == 1, "LSUB with %s literals" % kind)
    t.is_(status(r.cmd("UNSUBSCRIBE ", Lit(b, plus))), "OK", "UNSUBSCRIBE with a %s literal" % kind)
    t.is_(untagged(r.cmd("STATUS ", Lit("INBOX", plus), " (MESSAGES)")),
          untagged(r.cmd('STATUS "INBOX" (MESSAGES)')),
          "STATUS with the name as a %s literal answers as with a quoted string" % kind)
    lines = r.cmd("APPEND ", Lit(b, plus), " (\\Seen) ", Lit("Subject: appended\r\n\r\nhi\r\n", plus))
    t.ok(status(lines) == "OK" and b"APPENDUID" in lines[-1],
         "APPEND with the mailbox name and the message as %s literals" % kind)
    lines = r.cmd("EXAMINE ", Lit(b, plus))
    t.ok(status(lines) == "OK" and b"* 1 EXISTS" in lines, "EXAMINE with a %s literal" % kind)
    lines = r.cmd("SELECT ", Lit("INBOX", plus))
    t.ok(status(lines) == "OK" and any(re.match(rb"^\* [23] EXISTS$", ln) for ln in lines),
         "SELECT with a %s literal" % kind)
    t.is_(status(r.cmd("COPY 1 ", Lit(b, plus))), "OK", "COPY with a %s literal" % kind)
    t.is_(untagged(r.cmd("SEARCH SUBJECT ", Lit("message 2", plus))),
          untagged(r.cmd('SEARCH SUBJECT "message 2"')),
          "SEARCH SUBJECT with a %s literal answers as with a quoted string" % kind)
    lines = r.cmd("SEARCH CHARSET ", Lit("UTF-8", plus), " HEADER ", Lit("Subject", plus), " ",
                  Lit("message 1", plus))
    want = untagged(r.cmd('SEARCH CHARSET UTF-8 HEADER Subject "message 1"'))
    t.ok(untagged(lines) == want and re.match(rb"^\* SEARCH \d+$", want[0]) is not None,
         "SEARCH CHARSET and HEADER's field name and value as %s literals (%s)" % (kind, lines))
    lines = r.cmd("SORT (SUBJECT) ", Lit("UTF-8", plus), " ALL")
    t.is_(untagged(lines), untagged(r.cmd("SORT (SUBJECT) UTF-8 ALL")),
          "SORT's charset as a %s literal" % kind)
    lines = r.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (", Lit("Subject", plus), ")])")
    want = r.cmd("FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    # The section comes back as the server read it: the name quoted.
    t.ok(status(lines) == "OK" and b"Subject: message" in lines[0] and
         [ln.replace(b'("Subject")', b"(Subject)") for ln in lines[:-1]] == want[:-1],
         "BODY.PEEK[HEADER.FIELDS (...)] with a field name as a %s literal (%s)" % (kind, lines))
    lines = r.cmd("ID (", Lit("name", plus), " ", Lit("183-imap-literals", plus), ")")
    t.ok(status(lines) == "OK" and any(ln.startswith(b"* ID ") for ln in lines),
         "ID with parameters as %s literals" % kind)
    lines = r.cmd("MOVE 1 ", Lit(b, plus))
    t.ok(status(lines) == "OK" and b"* 1 EXPUNGE" in lines, "MOVE with a %s literal" % kind)
    t.is_(status(r.cmd("UNSELECT")), "OK", "UNSELECT")
    t.is_(status(r.cmd("DELETE ", Lit(b, plus))), "OK", "DELETE with a %s literal" % kind)

# Where the grammar has an atom, a literal is no substitute.
t.is_(status(r.cmd("ENABLE ", Lit("CONDSTORE", True))), "BAD", "ENABLE's capability as a literal: BAD")
r.cmd("SELECT INBOX")
t.is_(status(r.cmd("FETCH 1 (", Lit("FLAGS", True), ")")), "BAD", "a FETCH item as a literal: BAD")
t.is_(status(r.cmd("STORE 1 +FLAGS (", Lit("\\Seen", True), ")")), "BAD", "a flag as a literal: BAD")
t.is_(status(r.cmd("FETCH ", Lit("1", True), " FLAGS")), "BAD", "a sequence set as a literal: BAD")
r.s.close()

r = Raw()
t.is_(status(r.cmd("AUTHENTICATE ", Lit("PLAIN", True))), "BAD",
      "AUTHENTICATE's mechanism as a literal: BAD")
r.s.close()
t.is_(srv.g.stop(), 0, "gannet stops cleanly")
t.done()
