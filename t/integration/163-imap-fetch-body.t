#!/usr/bin/env python3
"""
t/integration/163-imap-fetch-body.t: FETCH of message contents with
Python's imaplib against a running `gannet serve` (issue 8, item 1, part):

- BODY.PEEK[] is the message the store holds, byte for byte, and as long
  as RFC822.SIZE says; BODY[HEADER] ends with the blank line and BODY[TEXT]
  is the rest; HEADER.FIELDS and HEADER.FIELDS.NOT pick and drop fields
  (folded lines kept whole); a partial <offset.count> answers with
  <offset>; RFC822, RFC822.HEADER and RFC822.TEXT;
- BODY[] (no PEEK) sets \\Seen and says so with FLAGS; RFC822.HEADER and
  anything in EXAMINE does not;
- a 3 MB message streams through whole (the connection's output buffer
  holds 1 MiB), and the session answers the next command after it;
- BODY[1] of a single-part message is its body (sections of parts in
  166-imap-fetch-struct.t).
"""
import imaplib
import os
import re
import shutil
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "modules", "imap", ".libs", "imap.so")
if not os.path.exists(MODULE):
    t.ok(False, "the imap module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "imap.so"))
os.chmod(os.path.join(moddir, "imap.so"), 0o755)

d = gt.tmpdir()
cert, key = gt.make_cert(d, "imap", "mail.test")
tport = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "imaps"; address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "implicit"; }'
              % tport,
    modules='directory = "%s"; load = [ "imap" ];' % moddir,
    extra="""workers = 1;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
""" % (cert, key)), directory=d)

PASSWORD = "correct horse battery"
HEADER = ("From: Alice <a@example.org>\r\nTo: bob@example.com\r\nSubject: a folded\r\n"
          " subject line\r\nX-Other: 1\r\n\r\n")
BODY = "first line\r\nsecond line\r\n"
BIG = "X-Big: yes\r\n\r\n" + "".join("line %07d of a big message, to be streamed\r\n" % i
                                     for i in range(70000))


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


mbox = os.path.join(d, "m.mbox")
with open(mbox, "w", newline="") as f:
    f.write("From a@example.org Mon Jan  1 10:00:00 2024\n" + HEADER.replace("\r\n", "\n") +
            BODY.replace("\r\n", "\n") + "\n")
    f.write("From a@example.org Mon Jan  1 10:00:00 2024\n" + BIG.replace("\r\n", "\n") + "\n")
setup = [gannet(*a).returncode == 0 for a in
         [("migrate",), ("config", "domain", "add", "example.com"),
          ("config", "account", "add", "alice", "alice@example.com"),
          ("import", "mbox", "alice", mbox)]]
setup.append(gannet("setpassword", "alice", stdin=PASSWORD + "\n").returncode == 0)
t.ok(all(setup), "an account with a small and a 3 MB message")

try:
    g.start(wait_ports=(tport,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", tport, ssl_context=ctx)
m.login("alice@example.com", PASSWORD)
m.select("INBOX")


def fetch1(seq, items):
    """The literal and the text around it of a one-item FETCH."""
    typ, data = m.fetch(seq, items)
    if typ != "OK" or not data or not isinstance(data[0], tuple):
        return typ, None, data
    return typ, data[0][1], data[0][0].decode()


typ, size_line = m.fetch("1", "RFC822.SIZE")
size = int(re.search(rb"RFC822.SIZE (\d+)", size_line[0]).group(1))
typ, whole, head = fetch1("1", "BODY.PEEK[]")
t.ok(typ == "OK" and whole is not None and len(whole) == size, "BODY.PEEK[] is RFC822.SIZE long (%d)" % size)
t.ok(whole is not None and whole.endswith((HEADER + BODY).encode()),
     "and is the message (after the prefix the store keeps)")
typ, hdr, _ = fetch1("1", "BODY.PEEK[HEADER]")
typ, text, _ = fetch1("1", "BODY.PEEK[TEXT]")
t.ok(hdr is not None and hdr.endswith(b"\r\n\r\n") and text == BODY.encode() and hdr + text == whole,
     "BODY[HEADER] ends with the blank line, BODY[TEXT] is the rest")
typ, fields, head = fetch1("1", "BODY.PEEK[HEADER.FIELDS (Subject x-other)]")
t.is_(fields, b"Subject: a folded\r\n subject line\r\nX-Other: 1\r\n\r\n",
      "HEADER.FIELDS: the fields asked for, folded lines whole, and the blank line")
t.like(head, "BODY[HEADER.FIELDS (Subject x-other)] {", "named as asked")
typ, notf, _ = fetch1("1", "BODY.PEEK[HEADER.FIELDS.NOT (Subject X-Other)]")
t.ok(notf is not None and b"Subject" not in notf and b"From: Alice" in notf and notf.endswith(b"\r\n\r\n"),
     "HEADER.FIELDS.NOT drops them")
typ, part, head = fetch1("1", "BODY.PEEK[TEXT]<6.4>")
t.ok(part == b"line" and "BODY[TEXT]<6> {4}" in head, "a partial: 4 bytes at 6, answered <6>")
typ, part, head = fetch1("1", "BODY.PEEK[]<%d.100>" % (size + 10))
t.is_(part, b"", "a partial past the end is empty")
typ, r822h, head = fetch1("1", "RFC822.HEADER")
t.ok(r822h == hdr and "RFC822.HEADER {" in head, "RFC822.HEADER")

typ, data = m.fetch("1", "FLAGS")
t.like(data[0].decode(), "FLAGS ()", "PEEK and RFC822.HEADER left \\Seen unset")
typ, data = m.fetch("1", "BODY[TEXT]")
flags_text = data[0][0].decode() if data and isinstance(data[0], tuple) else str(data)
t.ok("FLAGS (\\Seen)" in flags_text, "BODY[TEXT] sets \\Seen and says so (%s)" % flags_text)

m.select("INBOX", readonly=True)
typ, data = m.fetch("2", "(UID RFC822.SIZE BODY[])")
big = data[0][1] if data and isinstance(data[0], tuple) else None
head = data[0][0].decode() if big is not None else ""
bsize = int(re.search(r"RFC822.SIZE (\d+)", head).group(1)) if big is not None else -1
t.ok(big is not None and len(big) == bsize and bsize > 3000000 and big.endswith(BIG.encode()),
     "a 3 MB message streams through whole, after UID and RFC822.SIZE (%d bytes)" % bsize)
typ, data = m.fetch("2", "FLAGS")
t.like(data[0].decode(), "FLAGS ()", "in EXAMINE, BODY[] does not set \\Seen")
typ, data = m.noop()
t.is_(typ, "OK", "the session goes on after the stream")

m.select("INBOX", readonly=True)
typ, part1, head = fetch1("1", "BODY.PEEK[1]")
t.ok(typ == "OK" and part1 == BODY.encode() and "BODY[1] {%d}" % len(BODY) in head,
     "BODY[1] of a single-part message is its body")
typ, part1, head = fetch1("1", "BODY.PEEK[1]<6.4>")
t.ok(part1 == b"line" and "BODY[1]<6> {4}" in head, "and takes a partial")

m.logout()
g.stop()
t.done()
