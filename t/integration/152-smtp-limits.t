#!/usr/bin/env python3
"""
t/integration/152-smtp-limits.t: what the SMTP engine (core/smtp/) does
about slow clients and missing policy callbacks, each with a `gannet serve`
of its own and the test policy of t/modules/smtptest:

- the transfer of one message (DATA, or BDAT from the first chunk to the
  last) past timeout_data_total: 421 4.4.2, a log line, nothing stored,
  although the client kept every single wait short;
- a session past timeout_session: 421 4.4.2 and a log line, however busy
  the client keeps it; a message whose end of data the policy is still
  deciding when the limit passes gets its answer first;
- a policy without rcpt() or without data_end() is refused when it
  registers (nothing fails open); one without the other callbacks works,
  and they accept.
"""
import os
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "smtptest", ".libs", "smtptest.so")
if not os.path.exists(MODULE):
    t.ok(False, "the test module is built (%s)" % MODULE)
    t.done()

moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "smtptest.so"))
os.chmod(os.path.join(moddir, "smtptest.so"), 0o755)


def server(settings):
    """A gannet with the test policy and settings; (gannet, port, spool)."""
    d = gt.tmpdir()
    spool = os.path.join(d, "spool")
    os.mkdir(spool)
    os.chmod(spool, 0o777)
    port = gt.free_port()
    g = gt.Gannet(gt.base_conf(
        listeners='{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtptest"; }'
                  % port,
        modules='directory = "%s"; load = [ "smtptest" ];' % moddir,
        extra='workers = 1;\nsmtptest = { dir = "%s"; %s };\n' % (spool, settings)),
        directory=d)
    return g, port, spool


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            try:
                b = self.sock.recv(65536)
            except (ConnectionError, socket.timeout):
                b = b""
            if not b:
                out, self.buf = self.buf, b""
                return out.decode(errors="replace")
            self.buf += b
        out, self.buf = self.buf.split(b"\n", 1)
        return out.decode(errors="replace").rstrip("\r")

    def reply(self):
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def send(self, data):
        try:
            self.sock.sendall(data if isinstance(data, bytes) else data.encode())
            return True
        except OSError:
            return False

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def eof(self):
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except ConnectionError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def session(port):
    c = Client(port)
    c.reply()
    c.cmd("EHLO client.test")
    return c


def trickle(c, data, pause=0.3, limit=60):
    """Sends data a piece at a time, pausing between pieces (each pause far
    below the idle timeouts), until the server closes or all is sent;
    returns whether the server closed first.  What the server says is
    collected in c.buf."""
    deadline = time.time() + limit
    for chunk in data:
        if not c.send(chunk):
            return True
        time.sleep(pause)
        c.sock.settimeout(0.01)
        try:
            while True:
                b = c.sock.recv(65536)
                if not b:
                    c.sock.settimeout(20)
                    return True
                c.buf += b
        except (socket.timeout, BlockingIOError):
            pass
        except ConnectionError:
            c.sock.settimeout(20)
            return True
        c.sock.settimeout(20)
        if time.time() > deadline:
            break
    return False


def logged(g, needle, before, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and g.log().count(needle) <= before:
        time.sleep(0.05)
    return g.log().count(needle) > before


def eml(spool):
    return sorted(f for f in os.listdir(spool) if f.endswith(".eml"))


# ---- the transfer of one message ----
g, port, spool = server('timeout_data_total = "2s";')
try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()

c = session(port)
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
t.like(c.cmd("DATA"), "354", "DATA: 354")
closed = trickle(c, [b"Subject: slow\r\n", b"\r\n"] + [b"line %d\r\n" % i for i in range(200)]
                 + [b".\r\n"])
t.ok(closed, "a client that sends a line every 0.3 s is cut off before its message ends")
r = c.reply()
t.like(r, "421 4.4.2", "with 421 4.4.2 (%s)" % r)
t.like(r, "Data transfer time limit", "saying why")
t.ok(c.eof(), "and the connection is closed")
c.close()
t.ok(logged(g, "event=smtp_time_limit", 0), "the limit is logged")
t.like(g.log(), "limit=data", "as the data limit")
t.ok(logged(g, "event=smtp_aborted", 0), "the transaction is aborted")
t.is_(os.listdir(spool), [], "nothing stored, no temporary file left")

c = session(port)
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
chunks = [b"BDAT 10\r\n0123456789"] * 200 + [b"BDAT 0 LAST\r\n"]
closed = trickle(c, chunks)
got = c.buf.decode(errors="replace")
t.ok(closed and "421 4.4.2" in got, "BDAT chunks every 0.3 s: cut off with 421 4.4.2 (%s)"
     % got.strip().split("\r\n")[-1:])
c.close()
t.is_(eml(spool), [], "nothing stored")

# A quick message is not touched, nor is the next one's clock the first's.
c = session(port)
for i in range(2):
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.cmd("DATA")
    t.like(c.cmd("Subject: quick %d\r\n\r\nx\r\n." % i), "250", "a quick message: 250")
    if i == 0:
        time.sleep(2.5)  # past the limit counted from the first DATA
t.like(c.cmd("NOOP"), "250", "between messages the data limit does not run")
c.close()
t.is_(g.stop(), 0, "gannet stops")

# ---- the whole session ----
g, port, spool = server('timeout_session = "3s";')
g.start(wait_ports=(port,))
c = session(port)
closed = trickle(c, [b"NOOP\r\n"] * 100)
t.ok(closed, "a client that sends NOOP every 0.3 s is cut off")
r = c.buf.decode(errors="replace")
t.like(r, "421 4.4.2 mail.test Session time limit exceeded", "with 421 4.4.2, saying why")
c.close()
t.ok(logged(g, "limit=session", 0), "logged as the session limit")

# The policy takes 4 s to store a message ("slow-end"): the limit passes
# while it decides, and the client hears the answer first.
before = g.log().count("limit=session")
c = session(port)
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
r = c.cmd("Subject: slow-end\r\n\r\nx\r\n.")
t.like(r, "250 2.0.0 Ok: queued as", "a message stored while the limit passed: its 250")
t.like(c.reply(), "421 4.4.2", "then 421 4.4.2")
t.ok(c.eof(), "and the close")
c.close()
t.is_(len(eml(spool)), 1, "the message is stored")
t.ok(logged(g, "limit=session", before), "logged")
t.is_(g.stop(), 0, "gannet stops")

# ---- policies without callbacks ----
for omit, name in (("rcpt", "rcpt"), ("data_end", "data_end")):
    g, port, spool = server('omit = "%s";' % omit)
    g.start()
    try:
        rc = g.proc.wait(timeout=30)
    except Exception:
        rc = None
        g.kill()
    t.ok(rc not in (0, None), "a policy without %s: gannet refuses to start (%s)" % (name, rc))
    t.like(g.log(), "has no %s callback" % name, "and says why")

g, port, spool = server('omit = "connect,helo,mail,data_begin,data_chunk";')
g.start(wait_ports=(port,))
c = Client(port)
t.like(c.reply(), "220 mail.test", "without connect(): the greeting")
t.like(c.cmd("EHLO client.test"), "250", "without helo(): EHLO accepted")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0", "without mail(): MAIL accepted")
t.like(c.cmd("RCPT TO:<unknown@example.com>"), "550 5.1.1", "rcpt() decides")
t.like(c.cmd("RCPT TO:<b@example.com>"), "250", "rcpt() accepts")
t.like(c.cmd("DATA"), "354", "without data_begin(): 354")
t.like(c.cmd("Subject: x\r\n\r\nx\r\n."), "250 2.0.0 Ok: queued", "data_end() decides")
c.close()
t.is_(g.stop(), 0, "gannet stops")
t.done()
