#!/usr/bin/env python3
"""
t/integration/167-imap-append.t: APPEND (RFC 9051 6.3.12), MULTIAPPEND (RFC
3502), UIDPLUS's APPENDUID (RFC 4315), APPENDLIMIT (RFC 7889) and LITERAL-
(RFC 7888) against a running `gannet serve`, with imaplib and raw
exchanges where imaplib cannot say it (issue 8, item 1, part):

- the capabilities name UIDPLUS, MULTIAPPEND, APPENDLIMIT=<imap.max_message>
  and LITERAL+; STATUS (APPENDLIMIT) answers the same limit;
- APPEND with flags, keywords and a date-time: OK [APPENDUID uidvalidity
  uid], the message fetched back byte-exact with its flags and internal
  date; with a non-synchronising literal, and with literal8 (a NUL byte);
  a NUL in a plain literal is BAD;
- MULTIAPPEND: OK [APPENDUID v 1:3]; all or none: a bad flag list or a too
  large message in the middle stores nothing;
- a synchronising literal over the limit: NO [TOOBIG] instead of "+"; a
  non-synchronising one too large to skip: BYE; a mailbox that does not
  exist: NO [TRYCREATE]; a bad date-time or flag: BAD;
- a connection that drops in the middle of the message leaves no message
  and no blob;
- APPEND to the selected mailbox: EXISTS before the OK; another session
  idling there hears EXISTS;
- a 20 MB message streams: the serve worker's memory grows far less than
  the message, and the message comes back byte-exact (SHA-256);
- with imap.literal_plus = false: LITERAL- instead of LITERAL+, a
  non-synchronising literal over 4096 octets is BAD [TOOBIG] (in APPEND
  and elsewhere), one within it is taken; a non-synchronising message over
  imap.max_message is read, dropped and answered NO [TOOBIG]; the count
  limit of a MULTIAPPEND is NO [LIMIT], its total size limit NO [TOOBIG].
"""
import hashlib
import imaplib
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD, cmd, untagged  # noqa: E402,F401

t = gt.Tap()
# The memory check below measures the server, not AddressSanitizer: in a
# --enable-sanitizers build freed memory waits in a quarantine of 256 MB
# and counts as resident.  Without one the option does nothing.  The
# second server keeps the whole quarantine.
asan_options = os.environ.get("ASAN_OPTIONS")
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [asan_options, "quarantine_size_mb=0",
                                                    "thread_local_quarantine_size_kb=0"]))
srv = imaptest.Server(t)
if asan_options is None:
    del os.environ["ASAN_OPTIONS"]
else:
    os.environ["ASAN_OPTIONS"] = asan_options
g, tport, ctx, sql, session = srv.g, srv.port, srv.ctx, srv.sql, srv.session
t.ok(srv.setup(1), "an account with one message in its Inbox")
srv.start()

LIMIT = 50 * 1024 * 1024


class Raw:
    """A logged-in session over a raw TLS socket."""

    def __init__(self, port=None, login=True):
        s = socket.create_connection(("127.0.0.1", port or tport), timeout=30)
        self.s = ctx.wrap_socket(s)
        self.buf = b""
        self.greeting = self.line()
        if login:
            self.send(b"l LOGIN alice@example.com \"%s\"\r\n" % PASSWORD.encode())
            self.until_tagged("l")

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            try:
                chunk = self.s.recv(65536)
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return b""
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def until_tagged(self, tag):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln == b"" or ln.startswith(tag.encode() + b" "):
                return lines

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def msg(subject, body="Hello.\r\n", size=0):
    text = ("From: a@example.org\r\nTo: alice@example.com\r\nSubject: %s\r\n\r\n%s" % (subject, body)).encode()
    if size > len(text):
        text += b"x" * (size - len(text) - 2) + b"\r\n"
    return text


def count(mailbox):
    return sql("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
               "WHERE b.name = '%s'" % mailbox)


def uidvalidity(mailbox):
    return sql("SELECT uidvalidity FROM gn_mailboxes WHERE name = '%s'" % mailbox)


# ---- capabilities, STATUS ----

m = session()
caps = m.capabilities
t.ok("UIDPLUS" in caps and "MULTIAPPEND" in caps and "LITERAL+" in caps and "LITERAL-" not in caps,
     "capabilities: UIDPLUS, MULTIAPPEND, LITERAL+ (%s)" % " ".join(caps))
t.ok("APPENDLIMIT=%d" % LIMIT in caps, "APPENDLIMIT=%d: imap.max_message's default, 50 MiB" % LIMIT)
typ, data = m.status("Archive", "(APPENDLIMIT MESSAGES)")
t.is_((typ, data), ("OK", [b'"Archive" (APPENDLIMIT %d MESSAGES 0)' % LIMIT]),
      "STATUS (APPENDLIMIT): the limit, per mailbox")

# ---- APPEND with imaplib (synchronising literal) ----

v_inbox = uidvalidity("Inbox")
one = msg("one")
typ, data = m.append("INBOX", "(\\Seen $Label)", '"05-Dec-2026 10:11:12 +0100"', one)
t.is_((typ, data), ("OK", [("[APPENDUID %s 2] APPEND completed" % v_inbox).encode()]),
      "APPEND: OK [APPENDUID uidvalidity uid]")
m.select("INBOX", readonly=True)
typ, data = m.uid("FETCH", "2", "(FLAGS INTERNALDATE BODY.PEEK[])")
t.ok(typ == "OK" and data[0][1] == one, "the message comes back byte-exact")
head = data[0][0].decode()
t.like(head, "FLAGS (\\Seen $Label)", "with its flags and keywords")
t.like(head, 'INTERNALDATE "05-Dec-2026 09:11:12 +0000"', "and its internal date (zone applied)")
m.close()

typ, data = m.append("Nope", None, None, msg("x"))
t.ok(typ == "NO" and b"[TRYCREATE]" in data[0], "a mailbox that does not exist: NO [TRYCREATE] (%s)" % data)
r = Raw()
for tag, args, why in (("d1", b'"31-Feb-2026 10:00:00 +0000"', "no such day"),
                       ("d2", b'"5-Dec-2026 10:00:00 +0000"', "a day of one digit without its space"),
                       ("d3", b'"05-Dec-2026 24:00:00 +0000"', "hour 24"),
                       ("d4", b'"05-Dec-2026 10:00:00 0100"', "a zone without its sign"),
                       ("d5", b"(\\Bogus)", "an unknown system flag"),
                       ("d6", b"(\\Seen", "an unclosed flag list"),
                       ("d7", b"\\Seen", "a flag outside a list")):
    r.send(b"%s APPEND INBOX %s {5}\r\n" % (tag.encode(), args))
    lines = r.until_tagged(tag)
    t.ok(len(lines) == 1 and lines[0].startswith(tag.encode() + b" BAD "),
         "%s: BAD instead of a continuation (%s)" % (why, lines))
r.send(b"d8 APPEND INBOX \" 5-Dec-2026 10:00:00 -0130\" {5}\r\n")
lines = [r.line()]
t.ok(lines[0].startswith(b"+ "), "a day of one digit after its space is fine (%s)" % lines)
r.send(b"hello\r\n")
lines = r.until_tagged("d8")
t.ok(lines[-1].startswith(b"d8 OK [APPENDUID %s 3]" % v_inbox.encode()), "and stored (%s)" % lines)
t.is_(sql("SELECT to_char(internal_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM gn_messages "
          "WHERE uid = 3 AND mailbox_id = (SELECT id FROM gn_mailboxes WHERE name = 'Inbox')"),
      "2026-12-05 11:30", "a negative zone is added")

# ---- non-synchronising literals, literal8 ----

two = msg("two")
r.send(b"n1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(two), two))
lines = r.until_tagged("n1")
t.is_(lines, [b"n1 OK [APPENDUID %s 4] APPEND completed" % v_inbox.encode()],
      "a non-synchronising literal: no continuation, OK [APPENDUID]")
nul = msg("nul", "a\0b\r\n")
r.send(b"n2 APPEND INBOX ~{%d}\r\n" % len(nul))
lines = [r.line()]
t.ok(lines[0].startswith(b"+ "), "literal8: a continuation")
r.send(nul + b"\r\n")
lines = r.until_tagged("n2")
t.ok(lines[-1].startswith(b"n2 OK [APPENDUID %s 5]" % v_inbox.encode()), "a message with a NUL as literal8: OK")
t.is_(sql("SELECT size FROM gn_messages WHERE uid = 5 AND mailbox_id = "
          "(SELECT id FROM gn_mailboxes WHERE name = 'Inbox')"), str(len(nul)), "stored whole")
r.send(b"n3 APPEND INBOX {%d+}\r\n%s\r\nn4 NOOP\r\n" % (len(nul), nul))
lines = r.until_tagged("n3")
t.ok(lines[-1].startswith(b"n3 BAD ") and b"NUL" in lines[-1], "a NUL in a plain literal: BAD (%s)" % lines)
t.is_(r.until_tagged("n4")[-1][:5], b"n4 OK", "the session goes on")
t.is_(count("Inbox"), "5", "nothing stored by the refused APPENDs")

# ---- MULTIAPPEND ----

v_arch = uidvalidity("Archive")
a1, a2, a3 = msg("a1"), msg("a2"), msg("a3")
r.send(b"m1 APPEND Archive (\\Flagged) {%d}\r\n" % len(a1))
t.ok(r.line().startswith(b"+ "), "MULTIAPPEND: a continuation for the first message")
r.send(a1 + b" (\\Draft kw) \"01-Jan-2025 00:00:00 +0000\" {%d+}\r\n%s {%d}\r\n" % (len(a2), a2, len(a3)))
t.ok(r.line().startswith(b"+ "), "and for the third (synchronising)")
r.send(a3 + b"\r\n")
lines = r.until_tagged("m1")
t.is_(lines, [b"m1 OK [APPENDUID %s 1:3] APPEND completed" % v_arch.encode()],
      "OK [APPENDUID uidvalidity 1:3]: a uid-set for all of them")
t.is_(sql("SELECT string_agg(uid || ':' || flags, ',' ORDER BY uid) FROM gn_messages WHERE mailbox_id = "
          "(SELECT id FROM gn_mailboxes WHERE name = 'Archive')"), "1:4,2:16,3:0",
      "each with its own flags")
blobs = sql("SELECT count(*) FROM gn_blobs WHERE refcount > 0")
r.send(b"m2 APPEND Archive {%d+}\r\n%s (\\Bogus) {%d+}\r\n%s\r\nm3 NOOP\r\n" % (len(a1), msg("b1"), len(a2),
                                                                                   msg("b2")))
lines = r.until_tagged("m2")
t.ok(lines[-1].startswith(b"m2 BAD "), "a bad flag list for the second message: BAD (%s)" % lines)
t.is_(r.until_tagged("m3")[-1][:5], b"m3 OK", "the rest of the command was skipped")
r.send(b"m4 APPEND Archive {%d}\r\n" % len(a1))
r.line()
r.send(msg("c1") + b" {%d}\r\n" % (LIMIT + 1))
lines = r.until_tagged("m4")
t.ok(lines[-1].startswith(b"m4 NO [TOOBIG]"), "a second message over the limit: NO [TOOBIG] (%s)" % lines)
t.is_(count("Archive"), "3", "all or none: nothing of either APPEND stored")
t.is_(sql("SELECT count(*) FROM gn_blobs WHERE refcount > 0"), blobs, "no blob referenced")

# ---- limits ----

r.send(b"z1 APPEND INBOX {%d}\r\n" % (LIMIT + 1))
lines = r.until_tagged("z1")
t.ok(len(lines) == 1 and lines[0].startswith(b"z1 NO [TOOBIG]"),
     "a synchronising literal over APPENDLIMIT: NO [TOOBIG] instead of the continuation (%s)" % lines)
r.send(b"z2 NOOP\r\n")
t.is_(r.until_tagged("z2")[-1][:5], b"z2 OK", "the session goes on")
r.send(b"z4 APPEND INBOX (\\Seen)\r\nz5 APPEND INBOX {0}\r\nz6 APPEND INBOX \"text\"\r\n")
t.like(r.until_tagged("z4")[-1].decode(), "z4 BAD ", "APPEND without a message: BAD")
t.like(r.until_tagged("z5")[-1].decode(), "z5 NO ", "an empty message: NO")
t.like(r.until_tagged("z6")[-1].decode(), "z6 BAD ", "a message as a quoted string: BAD")
r.send(b"z3 APPEND INBOX {%d+}\r\n" % (LIMIT + 1))
lines = r.until_tagged("z3")
lines.append(r.line())
t.ok(lines[0].startswith(b"z3 NO [TOOBIG]"), "a non-synchronising one over the limit: NO [TOOBIG] (%s)" % lines)
t.ok(any(ln.startswith(b"* BYE") for ln in lines),
     "then BYE: too large to skip (%s)" % lines)
r.close()
log = g.log()
t.like(log, "event=append_refused", "refusals are logged")

# ---- a connection that drops in the middle of the message ----

pending_before = sql("SELECT count(*) FROM gn_blobs")
r = Raw()
big = 3 * 1024 * 1024
r.send(b"x1 APPEND INBOX {%d}\r\n" % big)
t.ok(r.line().startswith(b"+ "), "a continuation for 3 MB")
r.send(b"y" * (big // 2))
deadline = time.time() + 15
while time.time() < deadline and sql("SELECT count(*) FROM gn_blobs WHERE hash IS NULL") != "1":
    time.sleep(0.1)
t.is_(sql("SELECT count(*) FROM gn_blob_chunks c JOIN gn_blobs b ON b.id = c.blob_id WHERE b.hash IS NULL")
      != "0", True, "the message is being written, chunk by chunk, as it arrives")
r.close()
deadline = time.time() + 15
while time.time() < deadline and sql("SELECT count(*) FROM gn_blobs") != pending_before:
    time.sleep(0.2)
t.is_(sql("SELECT count(*) FROM gn_blobs"), pending_before, "a dropped APPEND leaves no blob behind")
t.is_(sql("SELECT count(*) FROM gn_blob_chunks c JOIN gn_blobs b ON b.id = c.blob_id WHERE b.hash IS NULL"), "0",
      "and no chunk of one being written")
t.is_(count("Inbox"), "5", "and no message")

# ---- the selected mailbox, IDLE ----

idler = Raw()
idler.send(b"s SELECT INBOX\r\n")
idler.until_tagged("s")
idler.send(b"i IDLE\r\n")
t.ok(idler.line().startswith(b"+ "), "another session idles in INBOX")
m.select("INBOX")
untagged(m, "EXISTS")
typ, data = m.append("INBOX", None, None, msg("six"))
t.ok(typ == "OK", "APPEND to the selected mailbox")
t.is_(untagged(m, "EXISTS"), [b"6"], "the appending session hears EXISTS before the OK")
t.is_(idler.line(), b"* 6 EXISTS", "the idling session hears EXISTS")
idler.send(b"DONE\r\n")
t.is_(idler.until_tagged("i")[-1][:4], b"i OK", "DONE")
idler.close()

# ---- 20 MB, streamed ----

workers = re.findall(r"event=child_started kind=worker slot=\d+ child_pid=(\d+)", g.log())
t.ok(len(workers) == 1, "one serve worker (%s)" % workers)
pid = workers[-1] if workers else "0"


def status_kb(field):
    with open("/proc/%s/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    return -1


big = msg("big", "", 20 * 1000 * 1000)
rss_before = status_kb("VmRSS")
typ, data = m.append("INBOX", None, None, big)
rss_after, peak = status_kb("VmRSS"), status_kb("VmHWM")
t.ok(typ == "OK" and data[0].startswith(b"[APPENDUID %s 7]" % v_inbox.encode()), "a 20 MB message: OK (%s)" %
     data[0][:60])
t.diag("worker VmRSS before %d kB, after %d kB, peak %d kB" % (rss_before, rss_after, peak))
t.ok(rss_before > 0 and peak - rss_before < 6 * 1024,
     "the worker's memory grew by less than 6 MB for 20 MB (peak %d kB, before %d kB)" % (peak, rss_before))
typ, data = m.uid("FETCH", "7", "(BODY.PEEK[])")
got = data[0][1] if typ == "OK" and isinstance(data[0], tuple) else b""
t.is_(hashlib.sha256(got).hexdigest(), hashlib.sha256(big).hexdigest(), "fetched back byte-exact (SHA-256)")
m.logout()
g.stop()

# ---- LITERAL-, small limits ----

srv2 = imaptest.Server(t, extra='imap = { literal_plus = false; max_message = "3k"; max_append_messages = 2; '
                                  'max_append_total = "5k"; };')
t.ok(srv2.setup(0), "a second server: imap.literal_plus = false, max_message 3k, 2 messages and 5k an APPEND")
srv2.start()
r = Raw(srv2.port)
r.send(b"c CAPABILITY\r\n")
caps = r.until_tagged("c")[0]
t.ok(b" LITERAL-" in caps and b"LITERAL+" not in caps and b"APPENDLIMIT=3072" in caps,
     "LITERAL- and APPENDLIMIT=3072 advertised (%s)" % caps)
r.send(b"l1 APPEND INBOX {5000+}\r\n%s\r\nl2 NOOP\r\n" % (b"q" * 5000))
lines = r.until_tagged("l1")
t.ok(lines[-1].startswith(b"l1 BAD [TOOBIG]"), "a non-synchronising message over 4096: BAD [TOOBIG] (%s)" % lines)
t.is_(r.until_tagged("l2")[-1][:5], b"l2 OK", "its octets were skipped, not read as commands")
r.send(b"l3 SELECT {4097+}\r\n%s\r\nl4 NOOP\r\n" % (b"q" * 4097))
lines = r.until_tagged("l3")
t.ok(lines[-1].startswith(b"l3 BAD [TOOBIG]"), "LITERAL- outside APPEND too (%s)" % lines)
t.is_(r.until_tagged("l4")[-1][:5], b"l4 OK", "and the session goes on")
r.send(b"l5 SELECT {5+}\r\nINBOX\r\n")
t.like(r.until_tagged("l5")[-1].decode(), "l5 OK", "a non-synchronising literal within 4096 is taken")
small = msg("small")
r.send(b"l6 APPEND INBOX {%d+}\r\n%s\r\n" % (len(small), small))
t.like(r.until_tagged("l6")[-1].decode(), "l6 OK [APPENDUID", "a small non-synchronising message is stored")
r.send(b"l7 APPEND INBOX {4000+}\r\n%s\r\nl8 NOOP\r\n" % (b"q" * 4000))
lines = r.until_tagged("l7")
t.ok(lines[-1].startswith(b"l7 NO [TOOBIG]"),
     "a non-synchronising message over max_message is read, dropped and answered NO [TOOBIG] (%s)" % lines)
t.is_(r.until_tagged("l8")[-1][:5], b"l8 OK", "the session goes on")
r.send(b"l9 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n" % (
    len(small), small, len(small), small, len(small), small))
lines = r.until_tagged("l9")
t.ok(lines[-1].startswith(b"l9 NO [LIMIT]"), "a third message in one APPEND: NO [LIMIT] (%s)" % lines)
mid = msg("mid", "", 2900)
r.send(b"la APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(mid), mid, len(mid), mid))
lines = r.until_tagged("la")
t.ok(lines[-1].startswith(b"la NO [TOOBIG]"),
     "two messages within max_message but over max_append_total together: NO [TOOBIG] (%s)" % lines)
r.send(b"lb APPEND INBOX {%d+}\r\n%s\r\n" % (len(mid), mid))
t.like(r.until_tagged("lb")[-1].decode(), "lb OK [APPENDUID", "one of them alone is stored")
t.is_(srv2.sql("SELECT count(*) FROM gn_messages"), "2", "only the two single messages were stored")
r.close()
srv2.g.stop()
t.done()
