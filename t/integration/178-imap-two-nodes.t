#!/usr/bin/env python3
"""
t/integration/178-imap-two-nodes.t: two gannet nodes (two `gannet serve`,
each with its own config and ports) on the same database; what one node
changes reaches the IDLE sessions of the other through PostgreSQL's
NOTIFY (issue 8, item 5, part; DESIGN.md "The store"):

- a session on node A idling in INBOX hears EXISTS for a message
  delivered through the smtp module of node B, FETCH FLAGS for a STORE
  made on B, EXPUNGE for an EXPUNGE made on B;
- a session on B idling hears EXISTS for an APPEND made on A;
- node B killed with SIGKILL in the middle of an APPEND: A's sessions go
  on (an idling one is still woken), the half-sent message is not stored,
  and B, started again, serves: logins, the mailbox as A left it, its
  changes reaching A's IDLE again.
"""
import os
import shutil
import signal
import smtplib
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)                # node A: imap on implicit TLS
t.ok(srv.setup(1), "an account with one message in its Inbox")
srv.start()

# Node B: its own directory, config and ports; the same database; imap and
# smtp (the inbound MX).
smtp_module = os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so")
if not os.path.exists(smtp_module):
    t.ok(False, "the smtp module is built (%s)" % smtp_module)
    t.done()
shutil.copy(smtp_module, os.path.join(srv.moddir, "smtp.so"))
os.chmod(os.path.join(srv.moddir, "smtp.so"), 0o755)
bdir = gt.tmpdir()
bcert, bkey = gt.make_cert(bdir, "b", "mail.test")
b_imap, b_smtp = gt.free_port(), gt.free_port()
node_b = gt.Gannet(gt.base_conf(
    listeners=('{ name = "imaps"; address = "127.0.0.1"; port = %d; protocol = "imap"; '
               'tls = "implicit"; }, '
               '{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; '
               'tls = "starttls"; }' % (b_imap, b_smtp)),
    modules='directory = "%s"; load = [ "imap", "smtp" ];' % srv.moddir,
    extra='workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
          % (bcert, bkey)), directory=bdir, db=srv.g.dbname)
t.is_(gt.run_gannet(["-c", node_b.conf_path, "migrate"]).returncode, 0,
      "node B's config migrates the shared database (the smtp module's part)")


def start_b():
    try:
        node_b.start(wait_ports=(b_imap, b_smtp))
        return True
    except RuntimeError as e:
        t.diag(str(e))
        return False


t.ok(start_b(), "node B serves on the same database")
t.ok(node_b.proc.pid != srv.g.proc.pid and node_b.conf_path != srv.g.conf_path,
     "two processes, two configs")


class Raw:
    """A raw IMAP session over implicit TLS; a read that waits more than
    15 s gives b"" (a wake-up that never came fails its test, not the
    file)."""

    def __init__(self, port, login=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.s = srv.ctx.wrap_socket(s)
        self.buf = b""
        self.greeting = self.line()
        if login:
            self.cmd("l LOGIN alice@example.com \"%s\"" % PASSWORD)

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        try:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return b""
                self.buf += chunk
        except (socket.timeout, OSError):
            return b""
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def cmd(self, text):
        """Sends a command; its lines, the tagged one last."""
        tag = text.split(" ", 1)[0].encode()
        self.send(text.encode() + b"\r\n")
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln == b"" or ln.startswith(tag + b" "):
                return lines


def exists(lines):
    for ln in lines:
        if ln.startswith(b"* ") and ln.endswith(b" EXISTS"):
            return int(ln.split()[1])
    return None


def inbox_count():
    return int(srv.sql("SELECT messages FROM gn_mailboxes WHERE name = 'Inbox'"))


def deliver_via_b(subject):
    """Mail to alice through node B's smtp listener; the refused
    recipients ({} when accepted) or the error."""
    try:
        with smtplib.SMTP("127.0.0.1", b_smtp, timeout=20) as s:
            s.ehlo("client.example.org")
            return s.sendmail("sender@example.org", ["alice@example.com"],
                              b"From: sender@example.org\r\nSubject: %s\r\n\r\nhello\r\n"
                              % subject.encode())
    except Exception as e:  # noqa: BLE001 - reported as the test's diagnostic
        return repr(e)


# ---- node A idles; node B changes ----
a = Raw(srv.port)
n = exists(a.cmd("s SELECT INBOX"))
t.is_(n, inbox_count(), "node A: INBOX selected with the store's count (%s)" % n)
a.send(b"i IDLE\r\n")
t.is_(a.line(), b"+ idling", "node A idles")
t.is_(deliver_via_b("through node B"), {}, "node B's smtp module accepts a message for alice")
n += 1
t.is_(a.line(), b"* %d EXISTS" % n, "node A's IDLE hears it: EXISTS")
t.like(node_b.log(), "event=message_accepted", "node B's log has it accepted")
t.ok("event=message_accepted" not in srv.g.log(), "node A's has no delivery")

b = Raw(b_imap)
t.is_(exists(b.cmd("s SELECT INBOX")), n, "node B: the same INBOX")
t.like(b.cmd("f STORE 1 +FLAGS (\\Flagged)")[-1].decode(), "f OK", "node B: STORE \\Flagged on 1")
t.is_(a.line(), b"* 1 FETCH (UID 1 FLAGS (\\Flagged))", "node A's IDLE hears FETCH FLAGS")
t.like(b.cmd("d STORE %d +FLAGS.SILENT (\\Deleted)" % n)[-1].decode(), "d OK",
       "node B: \\Deleted on message %d" % n)
uid_n = b.cmd("u FETCH %d (UID)" % n)[0].split(b"UID ")[1].rstrip(b")")
t.is_(a.line(), b"* %d FETCH (UID %s FLAGS (\\Deleted))" % (n, uid_n), "node A hears the flag")
r = b.cmd("e EXPUNGE")
t.is_(r, [b"* %d EXPUNGE" % n, b"e OK EXPUNGE completed"], "node B: EXPUNGE")
t.is_(a.line(), b"* %d EXPUNGE" % n, "node A's IDLE hears EXPUNGE")
n -= 1
a.send(b"DONE\r\n")
t.is_(a.line(), b"i OK IDLE terminated", "node A: DONE")

# ---- node B idles; node A appends ----
b.send(b"i IDLE\r\n")
t.is_(b.line(), b"+ idling", "node B idles")
msg = b"From: a@example.org\r\nSubject: appended on A\r\n\r\nhi\r\n"
a.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
t.like(a.line().decode(), "+", "node A: APPEND's continuation")
a.send(msg + b"\r\n")
r = [a.line(), a.line()]
n += 1
t.ok(r[0] == b"* %d EXISTS" % n and r[1].startswith(b"a OK [APPENDUID"), "node A: APPEND OK (%s)" % r)
t.is_(b.line(), b"* %d EXISTS" % n, "node B's IDLE hears it: EXISTS")
b.send(b"DONE\r\n")
t.is_(b.line(), b"i OK IDLE terminated", "node B: DONE")

# ---- node B killed mid-session ----
a.send(b"i IDLE\r\n")
t.is_(a.line(), b"+ idling", "node A idles again")
half = Raw(b_imap)
big = b"From: a@example.org\r\nSubject: never stored\r\n\r\n" + b"x" * 100000 + b"\r\n"
half.send(b"h APPEND INBOX {%d}\r\n" % len(big))
t.like(half.line().decode(), "+", "node B: an APPEND begins")
half.send(big[:len(big) // 2])
pid_b = node_b.proc.pid
node_b.kill()                   # SIGKILL to its process group: master and workers
t.ok(node_b.proc.returncode == -signal.SIGKILL, "node B killed with SIGKILL")
t.is_(half.line(), b"", "the APPEND's connection to B is gone")
t.is_(b.line(), b"", "so is B's idling session")
try:
    os.kill(pid_b, 0)
    t.ok(False, "node B's master is gone")
except ProcessLookupError:
    t.ok(True, "node B's master is gone")

w = srv.session()
w.append("INBOX", None, None, b"From: a@example.org\r\nSubject: after the crash\r\n\r\nstill here\r\n")
n += 1
t.is_(a.line(), b"* %d EXISTS" % n, "node A's idling session goes on: woken by another A session")
a.send(b"DONE\r\n")
t.is_(a.line(), b"i OK IDLE terminated", "and ends its IDLE")
t.is_(a.cmd("n NOOP")[-1], b"n OK NOOP completed", "node A's session answers")
t.is_(inbox_count(), n, "the half-sent APPEND stored nothing")
t.is_(srv.sql("SELECT count(*) FROM gn_messages WHERE subject = 'never stored'"), "0",
      "not a trace of it")

t.ok(start_b(), "node B starts again")
b = Raw(b_imap)
t.like(b.cmd("s SELECT INBOX")[-1].decode(), "s OK", "node B: a new session logs in and selects")
t.is_(exists(b.cmd("s2 SELECT INBOX")), n, "and sees the mailbox as A left it")
a.send(b"i IDLE\r\n")
t.is_(a.line(), b"+ idling", "node A idles")
t.like(b.cmd("f STORE %d +FLAGS (\\Seen)" % n)[-1].decode(), "f OK", "node B: STORE \\Seen")
uid_n = b.cmd("u FETCH %d (UID)" % n)[0].split(b"UID ")[1].rstrip(b")")
t.is_(a.line(), b"* %d FETCH (UID %s FLAGS (\\Seen))" % (n, uid_n),
      "node A's IDLE hears node B again")
t.is_(deliver_via_b("after the restart"), {}, "node B's smtp module accepts mail again")
n += 1
t.is_(a.line(), b"* %d EXISTS" % n, "node A hears that delivery")
a.send(b"DONE\r\n")
t.is_(a.line(), b"i OK IDLE terminated", "DONE")
w.logout()
node_b.stop()
srv.g.stop()
t.done()
