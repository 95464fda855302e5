#!/usr/bin/env python3
"""
t/integration/150-smtp-engine.t: the SMTP engine (core/smtp/server.c)
through a running `gannet serve` and the test policy of t/modules/smtptest
(which writes each accepted message and its envelope to files), with real
clients: Python's smtplib (with and without STARTTLS), swaks, and raw
sockets for what clients do not do on their own:

- the greeting, EHLO and its extensions, HELO;
- pipelining: a group of commands answered in order, also when the policy
  answers one of them later;
- bad commands and bad sequences, each with its code;
- a command line past 512 octets (500 5.5.2), and the session goes on;
- dot-stuffing: lines starting with a dot arrive unstuffed, byte-exact,
  also when the end of data is split between reads;
- a message over max_message_size (552 5.3.4), nothing kept;
- BDAT with and without LAST, BDAT 0 LAST, BDAT out of sequence (its octets
  are read, never taken for commands);
- a client that disconnects mid-DATA: nothing kept;
- SMTP smuggling attempts: bare LF and bare CR endings in DATA (and BDAT)
  refuse the message with 554 5.6.0, and what follows the fake end is
  never run as a command;
- too many recipients (452 4.5.3), too many errors (delayed, then 421);
- SMTPUTF8: non-ASCII addresses need the parameter (553 5.6.7), NFD
  localparts arrive as NFC;
- STARTTLS, with pipelined commands after it dropped (RFC 3207 5);
- the idle timeout before MAIL (421 4.4.2);
- extensions added by the test policy (gannet/smtp.h): EHLO keywords, one
  only over TLS and one with parameters of its own per session; MAIL and RCPT
  parameters (values, xtext, checks, repeats, 555 for the rest); an AUTH
  command with a SASL-style exchange over continuation lines (334, "*"
  cancels with 501, line and line count limits, 12288-octet lines, the
  idle timeout and the server's shutdown in the middle), and a command that
  starts the session over;
- a recipient refused at RCPT leaves the transaction (max_recipients counts
  only accepted ones);
- MAIL FROM with a long localpart (SRS, VERP) is accepted, RCPT keeps the
  64-octet limit;
- an HTTP request on the SMTP port ends the session at once;
- Received fields past max_received_headers: 554 5.4.6 (a mail loop);
- the HELO name in the engine's Received field, escaped;
- bugs found by t/fuzz/fuzz_smtp that only a policy reaches: a HELO refused
  by the policy (at once or later), then another HELO or the end of the
  session; policy replies (enhanced code, text) in memory that reset() or
  the end of the transaction frees; a policy answer that comes after the
  idle timeout closed the session (nothing after the 421).  After each, the
  worker must still be alive (no child_exited in the log).
"""
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unicodedata

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
d = gt.tmpdir()
spool = os.path.join(d, "spool")
os.mkdir(spool)
os.chmod(spool, 0o777)
cert, key = gt.make_cert(d, "mx", "mail.test")

port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtptest"; '
              'tls = "starttls"; }' % port,
    modules='directory = "%s"; load = [ "smtptest" ];' % moddir,
    extra="""workers = 1;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
limits = { connections_per_ip = 50; };
smtptest = { dir = "%s"; max_message_size = "100k"; max_recipients = 3;
             max_errors = 6; error_delay_after = 4; error_delay = "300ms";
             timeout_initial = "3s"; max_received_headers = 5; };
""" % (cert, key, spool)), directory=d)
try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()


class Client:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
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
        """A whole (multi-line) reply, lines joined by newlines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def send(self, data):
        try:
            self.sock.sendall(data if isinstance(data, bytes) else data.encode())
        except OSError:
            pass  # the server is gone: the reply, "", says so

    def cmd(self, line):
        self.send(line + (b"\r\n" if isinstance(line, bytes) else "\r\n"))
        return self.reply()

    def eof(self):
        try:
            while True:
                b = self.sock.recv(4096)
                if not b:
                    return True
        except ConnectionError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def start(ehlo=True):
    c = Client()
    greet = c.reply()
    if ehlo:
        c.cmd("EHLO client.test")
    return c, greet


def stored():
    return sorted(f for f in os.listdir(spool) if f.endswith(".eml"))


def read_msg(name):
    with open(os.path.join(spool, name), "rb") as f:
        return f.read()


def read_env(name):
    with open(os.path.join(spool, name[:-4] + ".env"), encoding="utf-8") as f:
        return f.read()


def new_since(before):
    return [f for f in stored() if f not in before]


def clean():
    for f in os.listdir(spool):
        os.unlink(os.path.join(spool, f))


# ---- greeting, EHLO, HELO ----
c, greet = start(ehlo=False)
t.ok(greet.startswith("220 mail.test "), "greeting: 220 with the host name (%s)" % greet)
r = c.cmd("EHLO client.test")
lines = [x[4:] for x in r.split("\n")]
t.is_(r.split("\n")[0], "250-mail.test", "EHLO: first line names the server")
for ext in ("PIPELINING", "SIZE 102400", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
            "STARTTLS", "CHUNKING"):
    t.ok(ext in lines, "EHLO offers %s" % ext)
t.is_(c.cmd("HELO client.test"), "250 mail.test", "HELO: 250 and the host name")
t.like(c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME"), "555 5.5.4",
       "after HELO, MAIL parameters are refused (555 5.5.4)")
t.is_(c.cmd("QUIT"), "221 2.0.0 mail.test Bye", "QUIT: 221")
t.ok(c.eof(), "and the server closes")
c.close()

# ---- smtplib, plain and with STARTTLS ----
clean()
msg = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo("client.test")
    res = s.sendmail("a@example.org", ["b@example.com", "c@example.com"], msg)
t.is_(res, {}, "smtplib: every recipient accepted")
f = stored()
t.is_(len(f), 1, "one message stored")
if f:
    t.is_(read_msg(f[0]), msg, "the message arrived byte for byte")
    env = read_env(f[0])
    t.like(env, "rcpt b@example.com\nrcpt c@example.com", "both recipients, in order")
    t.like(env, "protocol ESMTP\n", "protocol ESMTP without TLS")

clean()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo("client.test")
    s.starttls(context=ctx)
    code, ext = s.ehlo("client.test")
    t.ok(b"STARTTLS" not in ext, "after STARTTLS, STARTTLS is no longer offered")
    s.sendmail("a@example.org", ["b@example.com"], msg)
f = stored()
t.ok(len(f) == 1 and "protocol ESMTPS\n" in read_env(f[0]), "smtplib with STARTTLS: stored, "
     "protocol ESMTPS")

# swaks
clean()
sw = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                     "s@example.org", "--to", "x@example.com", "--helo", "swaks.test",
                     "--tls", "--tls-verify-host", "--tls-verify-ca", "--body", "via swaks"],
                    capture_output=True, text=True, timeout=30)
if sw.returncode != 0:
    # older swaks: no --tls-verify options
    sw = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                         "s@example.org", "--to", "x@example.com", "--helo", "swaks.test",
                         "--tls", "--body", "via swaks"],
                        capture_output=True, text=True, timeout=30)
t.is_(sw.returncode, 0, "swaks with TLS delivers")
if sw.returncode != 0:
    t.diag(sw.stdout[-2000:])
f = stored()
t.ok(len(f) == 1 and b"via swaks" in read_msg(f[0]) and "helo swaks.test" in read_env(f[0]),
     "swaks's message stored, with its HELO name")

# ---- pipelining ----
clean()
c, _ = start()
c.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<ok1@example.com>\r\n"
       "RCPT TO:<unknown@example.com>\r\nRCPT TO:<slow@example.com>\r\n"
       "RCPT TO:<temp@example.com>\r\nRCPT TO:<ok2@example.com>\r\nDATA\r\n")
got = [c.reply() for _ in range(7)]
t.ok(got[0].startswith("250 2.1.0"), "pipelined MAIL: 250 2.1.0")
t.ok(got[1].startswith("250 2.1.5"), "pipelined RCPT 1: 250 2.1.5")
t.ok(got[2].startswith("550 5.1.1"), "pipelined unknown RCPT: 550 5.1.1")
t.is_(got[3], "250 2.1.5 Recipient OK after a while",
      "the policy's later answer comes in its place")
t.ok(got[4].startswith("451 4.3.0"), "pipelined temp RCPT: 451 4.3.0")
t.ok(got[5].startswith("250 2.1.5"), "pipelined RCPT after them: 250")
t.ok(got[6].startswith("354 "), "pipelined DATA: 354")
body = (b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n"[:-3] +
        b"x\r\n.\r\n")
# What the client sends: stuffed.  What must arrive: unstuffed.
c.send(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n..\r\nend\r\n.\r\n")
r = c.reply()
t.ok(r.startswith("250 2.0.0"), "end of data: 250 2.0.0 (%s)" % r)
f = stored()
t.ok(len(f) == 1, "stored")
if f:
    t.is_(read_msg(f[0]), b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n",
          "dot-stuffing undone (RFC 5321 4.5.2), nothing else changed")
    t.like(read_env(f[0]), "rcpt ok1@example.com\nrcpt slow@example.com\nrcpt ok2@example.com\n",
           "only the accepted recipients, in order")
# Empty message; then a message that fills exactly the reading buffer's edge.
t.ok(c.cmd("MAIL FROM:<>").startswith("250"), "MAIL FROM:<> (null sender)")
c.cmd("RCPT TO:<e@example.com>")
c.cmd("DATA")
t.ok(c.cmd(".").startswith("250"), "an empty message (just the dot) is accepted")
c.close()

# The end of data split between reads, right after ".<CR>" (found by
# t/fuzz/fuzz_smtp: the CR was given to the policy as message text).
clean()
c, _ = start()
c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
for part in (b"Subject: split\r\n\r\nx\r\n.", b"\r", b"\n"):
    c.send(part)
    time.sleep(0.2)  # separate reads on the server, not a timing assertion
r = c.reply()
t.ok(r.startswith("250 2.0.0"), "end of data in three reads: 250 (%s)" % r)
f = stored()
t.ok(len(f) == 1 and read_msg(f[0]) == b"Subject: split\r\n\r\nx\r\n",
     "the message arrived byte for byte, without the end's CR")
c.close()

# ---- bad commands (a few a connection: max_errors is 6 here) ----
c, _ = start(ehlo=False)
t.like(c.cmd("FOO bar"), "500 5.5.1", "unknown command: 500 5.5.1")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "503 5.5.1", "MAIL before EHLO: 503 5.5.1")
c.cmd("EHLO client.test")
t.like(c.cmd("RCPT TO:<a@example.org>"), "503 5.5.1", "RCPT before MAIL: 503 5.5.1")
t.like(c.cmd("DATA"), "503 5.5.1", "DATA before MAIL: 503 5.5.1")
c.close()
c, _ = start()
t.like(c.cmd("MAIL FROM:a@example.org"), "501 5.1.7", "MAIL without brackets: 501 5.1.7")
t.like(c.cmd("MAIL TO:<a@example.org>"), "501 5.5.4", "MAIL TO: 501 5.5.4")
# The parser's message came from the transaction's memory, freed before the
# reply was written (found by t/fuzz/fuzz_smtp; --enable-sanitizers builds
# abort on it, others may send garbage).
t.is_(c.cmd("MAIL FROM:<a@xn--zz.example>"), "501 5.1.7 Bad sender address syntax: invalid "
      "internationalised domain name (string contains invalid punycode data)",
      "a bad A-label in MAIL: 501 5.1.7 with the parser's reason")
t.like(c.cmd("MAIL FROM:<a@example.org> FOO=bar"), "555 5.5.4",
       "unknown MAIL parameter: 555 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> SIZE=200000"), "552 5.3.4",
       "SIZE over the limit: 552 5.3.4 (RFC 1870)")
c.close()
c, _ = start()
t.like(c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME"), "501 5.5.4",
       "BODY=BINARYMIME (not offered): 501 5.5.4")
t.like(c.cmd("MAIL FROM:<badsender@example.org>"), "550 5.7.1", "policy refuses the sender")
t.ok(c.cmd("MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME").startswith("250"),
     "MAIL with SIZE and BODY=8BITMIME")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "503 5.5.1", "nested MAIL: 503 5.5.1")
t.like(c.cmd("DATA"), "554 5.5.1", "DATA with no recipient: 554 5.5.1 (RFC 5321 3.3)")
c.close()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
t.like(c.cmd("RCPT TO:<b@example.com> XFOO=NEVER"), "555 5.5.4",
       "a RCPT parameter nobody added: 555 5.5.4")
t.like(c.cmd("RCPT TO:<b@@example.com>"), "501 5.1.3", "bad recipient syntax: 501 5.1.3")
t.like(c.cmd("VRFY root"), "252 ", "VRFY: 252, revealing nothing")
t.like(c.cmd("EXPN staff"), "252 ", "EXPN: 252")
t.like(c.cmd("HELP"), "214", "HELP: 214")
t.like(c.cmd("NOOP"), "250 2.0.0", "NOOP: 250")
t.like(c.cmd("RSET"), "250 2.0.0", "RSET: 250")
c.close()
c, _ = start()
t.like(c.cmd("RCPT TO:<b@example.com>"), "503 5.5.1", "after RSET the transaction is gone")
t.like(c.cmd("QUIT now"), "501 5.5.4", "QUIT with a parameter: 501")
c.close()

# ---- line length ----
c, _ = start()
t.like(c.cmd("NOOP " + "x" * 600), "500 5.5.2", "a 606-octet command line: 500 5.5.2")
t.like(c.cmd("NOOP " + "y" * 505), "250", "a 512-octet command line (with CRLF) is fine")
t.like(c.cmd("NOOP " + "y" * 506), "500 5.5.2", "513 octets is one too many")
t.like(c.cmd("NOOP"), "250", "and the session goes on")
c.send("NOOP " + "z" * 70000 + "\r\nNOOP\r\n")
t.like(c.reply(), "500 5.5.2", "a 70000-octet line (past the input buffer): 500 5.5.2")
t.like(c.reply(), "250", "the command after it is read as a command")
c.close()

# ---- message size ----
clean()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 110 + b".\r\n")
t.like(c.reply(), "552 5.3.4", "a 110 kB message over the 100k limit: 552 5.3.4")
t.is_(os.listdir(spool), [], "nothing stored, no temporary file left")
t.like(c.cmd("RCPT TO:<b@example.com>"), "503", "the transaction is over")
t.like(c.cmd("NOOP"), "250", "the session goes on")
# A long text line (> 1000) is accepted (documented choice).
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
t.like(c.cmd("Subject: long\r\n\r\n" + "l" * 5000 + "\r\n."), "250",
       "a 5000-octet text line is accepted")
c.close()

# ---- BDAT ----
clean()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
part1 = b"Subject: chunks\r\n\r\n"
part2 = b"line one\r\n.\r\nline .two\r\n"
c.send(b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
r1, r2 = c.reply(), c.reply()
t.like(r1, "250 2.0.0 %d octets" % len(part1), "BDAT chunk: 250 with its size")
t.like(r2, "250 2.0.0", "BDAT LAST: 250 after the store")
f = stored()
t.ok(len(f) == 1 and read_msg(f[0]) == part1 + part2,
     "BDAT message stored byte for byte (a lone dot is no end, nothing unstuffed)")
clean()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.send(b"BDAT 20\r\nSubject")
time.sleep(0.2)
c.send(b": x\r\n\r\nbody\r\n")
c.send(b"BDAT 0 LAST\r\n")
t.like(c.reply(), "250 2.0.0 20 octets", "a chunk split over two sends")
r = c.reply()
t.like(r, "250 2.0.0", "BDAT 0 LAST ends the message")
t.ok(len(stored()) == 1 and read_msg(stored()[0]) == b"Subject: x\r\n\r\nbody\r\n",
     "the chunks make the message")
# BDAT out of sequence: its octets are read and dropped.
junk = b"MAIL FROM:<x@y.z>\r\nNOO"
c.send(b"BDAT %d\r\n" % len(junk) + junk + b"NOOP\r\n")
t.like(c.reply(), "503 5.5.1", "BDAT without MAIL: 503 5.5.1")
t.like(c.reply(), "250 2.0.0 OK", "its octets were never taken for commands (next: NOOP)")
# DATA in a BDAT transaction
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.send(b"BDAT 3\r\nabc")
c.reply()
t.like(c.cmd("DATA"), "503 5.5.1", "DATA after BDAT: 503 5.5.1")
t.like(c.cmd("RSET"), "250", "RSET ends the BDAT transaction")
# A chunk larger than the whole limit: 552, then the connection closes.
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.send(b"BDAT 999999999 LAST\r\n")
t.like(c.reply(), "552 5.3.4", "a chunk over the size limit: 552 5.3.4")
t.like(c.reply(), "421", "then 421: the server will not read it")
t.ok(c.eof(), "and closes")
c.close()
c, _ = start()
t.like(c.cmd("BDAT ten"), "501 5.5.4", "BDAT with a bad size: 501")
t.like(c.reply(), "421", "and 421 (the chunk's end cannot be found)")
c.close()

# ---- disconnect mid-DATA ----
clean()
aborted = g.log().count("event=smtp_aborted")
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
time.sleep(0.2)
c.close()
deadline = time.time() + 10
while time.time() < deadline and g.log().count("event=smtp_aborted") == aborted:
    time.sleep(0.05)
t.ok(g.log().count("event=smtp_aborted") > aborted, "the aborted transaction is logged")
t.is_(os.listdir(spool), [], "disconnect mid-DATA: nothing stored, no temporary file")
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.send(b"BDAT 100\r\nonly part of it")
time.sleep(0.2)
aborted = g.log().count("event=smtp_aborted")
c.close()
deadline = time.time() + 10
while time.time() < deadline and g.log().count("event=smtp_aborted") == aborted:
    time.sleep(0.05)
t.is_(os.listdir(spool), [], "disconnect mid-BDAT: nothing stored")

# ---- SMTP smuggling ----
clean()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<v@example.com>\r\n"
       b"DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
r = c.reply()
t.like(r, "554 5.6.0", "<LF>.<LF> is no end; the bare LF refuses the message: 554 5.6.0")
t.like(c.cmd("NOOP"), "250 2.0.0 OK", "the next reply answers the next command: nothing "
       "after the fake end was run")
t.is_(stored(), [], "nothing stored")
for name, data in (("<CR>.<CR>", b"a\r\n\r\nb\r.\rMAIL FROM:<e@x.org>\r\n"),
                   ("<LF>.<CR><LF>", b"a\r\n\r\nb\n.\r\nMAIL FROM:<e@x.org>\r\n"),
                   ("<CR><LF>.<LF>", b"a\r\n\r\nb\r\n.\nMAIL FROM:<e@x.org>\r\n"),
                   ("<CR>.<CR><LF>", b"a\r\n\r\nb\r.\r\nMAIL FROM:<e@x.org>\r\n"),
                   # Found by t/fuzz/fuzz_smtp: a bare LF right after a
                   # line end, or after a dot there, started a new line.
                   ("<CR><LF><LF>.<CR><LF>", b"a\r\n\r\nb\r\n\n.\r\nMAIL FROM:<e@x.org>\r\n"),
                   ("<CR><LF>.<LF>.<CR><LF>",
                    b"a\r\n\r\nb\r\n.\n.\r\nMAIL FROM:<e@x.org>\r\n")):
    if name == "<CR><LF><LF>.<CR><LF>":
        # A new connection: each refusal counts against max_errors.
        c.close()
        c, _ = start()
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.cmd("DATA")
    c.send(data + b".\r\n")
    t.like(c.reply(), "554 5.6.0", "smuggling with %s: the message is refused" % name)
    t.like(c.cmd("NOOP"), "250 2.0.0 OK", "and nothing after %s ran as a command" % name)
t.is_(stored(), [], "nothing stored from any of them")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.send(b"BDAT 9 LAST\r\nab\ncd\r\nef")
t.like(c.reply(), "554 5.6.0", "a bare LF in BDAT: 554 5.6.0")
c.close()

# The DATA parser reads the text of a line eight octets at a time
# (core/smtp/data.c): line ends, the end of data, bare LFs and bare CRs
# at every offset within a word of a long line, each message in one write.
clean()
body = b"".join(b"y" * k + b"\r\n" for k in range(1, 41)) + b"z" * 23 + b"\r\n"
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(b"Subject: lines\r\n\r\n" + body + b".\r\n")
t.like(c.reply(), "250 2.0.0", "lines of 1 to 40 octets and the end of data, in one write: 250")
got = stored()
t.ok(len(got) == 1 and read_msg(got[0]).endswith(b"Subject: lines\r\n\r\n" + body),
     "stored as sent")
c.close()
missed = []
for bad in (b"\n", b"\r"):
    for k in range(8, 26):
        c, _ = start()
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.com>")
        c.cmd("DATA")
        c.send(b"Subject: bare\r\n\r\n" + b"w" * k + bad + b"w" * 20 + b"\r\n.\r\n")
        if "554 5.6.0" not in c.reply():
            missed.append((bad, k))
        c.close()
t.is_(missed, [], "a bare LF or CR after 8 to 25 octets of a line: 554 5.6.0 each time")
t.is_(len(stored()), 1, "and none of those stored")

# ---- too many recipients ----
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
for i in range(3):
    c.cmd("RCPT TO:<r%d@example.com>" % i)
t.like(c.cmd("RCPT TO:<r3@example.com>"), "452 4.5.3",
       "the 4th recipient with max_recipients 3: 452 4.5.3")
t.like(c.cmd("RCPT TO:<r4@example.com>"), "452 4.5.3", "and the 5th")
t.like(c.cmd("DATA"), "354", "the transaction goes on with the accepted ones")
t.like(c.cmd("x\r\n."), "250", "delivered")
c.close()

# ---- too many errors ----
c, _ = start()
times = []
for i in range(5):
    t0 = time.time()
    r = c.cmd("BOGUS")
    times.append(time.time() - t0)
    t.like(r, "500 5.5.1", "error %d answered" % (i + 1))
t.ok(times[4] >= 0.25, "past error_delay_after, the reply is delayed (%.2f s)" % times[4])
r = c.cmd("BOGUS")
t.like(r, "500 5.5.1", "the 6th error is answered")
t.like(c.reply(), "421 4.7.0", "then 421 4.7.0 at max_errors")
t.ok(c.eof(), "and the connection is closed")
c.close()

# A bad BDAT that is also the error reaching max_errors: one 421, not two
# (found by t/fuzz/fuzz_smtp).
c, _ = start()
for i in range(5):
    c.cmd("BOGUS")
t.like(c.cmd("BDAT ten"), "501 5.5.4", "the 6th error is a bad BDAT: 501")
t.like(c.reply(), "421 4.7.0", "then 421 4.7.0 at max_errors")
t.is_(c.line(), "", "and nothing more: the connection is closed")
c.close()

# ---- SMTPUTF8 ----
clean()
c, _ = start()
t.like(c.cmd("MAIL FROM:<jös@example.org>"), "553 5.6.7",
       "a non-ASCII sender without SMTPUTF8: 553 5.6.7")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "250", "ASCII sender")
t.like(c.cmd("RCPT TO:<jös@example.com>"), "553 5.6.7",
       "a non-ASCII recipient in a transaction without SMTPUTF8: 553 5.6.7")
c.cmd("RSET")
nfd = unicodedata.normalize("NFD", "jösé")
t.like(c.cmd("MAIL FROM:<a@example.org> SMTPUTF8"), "250", "MAIL with SMTPUTF8")
t.like(c.cmd("RCPT TO:<%s@bücher.example>" % nfd), "250", "NFD localpart, U-label domain")
c.cmd("DATA")
c.cmd("Subject: utf8\r\n\r\nx\r\n.")
f = stored()
t.ok(len(f) == 1 and "rcpt jösé@xn--bcher-kva.example\n" in read_env(f[0]),
     "the recipient arrives NFC with an A-label domain")
t.ok(len(f) == 1 and "smtputf8 1\n" in read_env(f[0]) and "protocol UTF8SMTP\n" in read_env(f[0]),
     "SMTPUTF8 recorded; protocol UTF8SMTP")
c.close()

# ---- STARTTLS and pipelining past it ----
c, _ = start()
c.send("STARTTLS\r\nNOOP\r\n")
t.like(c.reply(), "220 2.0.0", "STARTTLS: 220")
tls = ctx.wrap_socket(c.sock, server_hostname="mail.test")
c.sock = tls
c.buf = b""
t.like(c.cmd("MAIL FROM:<a@example.org>"), "503 5.5.1",
       "after the handshake the session starts over (EHLO first), and the NOOP "
       "sent in the clear before it was dropped")
r = c.cmd("EHLO client.test")
t.ok("STARTTLS" not in r and "250 HELP" in r, "EHLO over TLS without STARTTLS")
t.like(c.cmd("STARTTLS"), "503 5.5.1", "STARTTLS twice: 503")
c.close()

# ---- a policy that disconnects ----
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
t.is_(c.cmd("RCPT TO:<bye@example.com>"), "421 4.7.0 Go away",
      "DISCONNECT from the policy: its 421, once")
t.ok(c.eof(), "and the connection is closed")
c.close()

# ---- HELO refused by the policy ----
# Found by t/fuzz/fuzz_smtp: the refused name was freed and left dangling,
# and the next HELO or the end of the session freed it again (the worker
# died: at once with --enable-sanitizers, mostly also without).


def worker_alive(what):
    """The worker never died: the master logs every child's exit, before a
    worker started after it serves a session."""
    try:
        c2, _ = start(ehlo=False)
        t.like(c2.cmd("EHLO client.test"), "250-mail.test", "a new session is served "
               "after %s" % what)
        c2.cmd("QUIT")
        c2.eof()
        c2.close()
    except OSError as e:
        t.ok(False, "a new session is served after %s (%s)" % (what, e))
    dead = [x for x in g.log().splitlines()
            if "event=child_exited" in x or "event=child_restart" in x]
    t.is_(dead, [], "the worker did not die (%s)" % what)
    if dead:
        t.diag(g.log()[-3000:])


c, _ = start(ehlo=False)
t.is_(c.cmd("EHLO refused.test"), "550 5.7.1 Greeting from refused.test refused",
      "EHLO refused by the policy: its reply")
r = c.cmd("EHLO client.test")
t.ok(r.startswith("250-mail.test\n") and r.endswith("\n250 HELP"),
     "the next EHLO is accepted (%s)" % r.replace("\n", " | ")[:80])
t.is_(c.cmd("HELO check.test"), "250 mail.test",
      "a second greeting: while the policy decides, gn_smtp_session_helo() gives the "
      "new name (found by t/fuzz/fuzz_smtp)")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0", "and the session goes on: MAIL")
c.close()
c, _ = start(ehlo=False)
t.is_(c.cmd("EHLO slowrefused.test"), "550 5.7.1 Greeting from slowrefused.test refused "
      "after a while", "EHLO refused by a later answer of the policy")
t.is_(c.cmd("HELO client.test"), "250 mail.test", "then HELO is accepted")
t.is_(c.cmd("EHLO refused.test"), "550 5.7.1 Greeting from refused.test refused",
      "a refused EHLO after an accepted HELO")
t.is_(c.cmd("QUIT"), "221 2.0.0 mail.test Bye", "QUIT after the refused EHLO: 221")
t.ok(c.eof(), "and the server closes")
c.close()
clean()
c, _ = start()
t.like(c.cmd("EHLO refused.test"), "550 5.7.1", "a refused EHLO after an accepted one")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
t.like(c.cmd("Subject: helo\r\n\r\nx\r\n."), "250 2.0.0",
       "the session goes on with the accepted greeting: a message is accepted")
f = stored()
t.ok(len(f) == 1 and "helo client.test\n" in read_env(f[0]) and
     "protocol ESMTP\n" in read_env(f[0]),
     "the message records the accepted greeting, not the refused one")
c.close()                 # the session ends after a refused EHLO
c, _ = start(ehlo=False)  # served after that close
t.like(c.cmd("EHLO refused.test"), "550 5.7.1", "one more refused EHLO")
c.close()                 # and the client just goes
worker_alive("refused HELO, then another HELO or the end of the session")

# ---- policy replies in memory that ends with the transaction ----
# Found by t/fuzz/fuzz_smtp: the engine wrote the policy's enhanced code and
# text after the transaction had ended, when reset() (or the end of the
# transaction's pool) had freed them.  The test policy overwrites them before
# it frees them: garbage on the wire, or a dead worker with sanitizers.
clean()
c, _ = start()
t.is_(c.cmd("MAIL FROM:<hookrefuse@example.org>"),
      "550 5.7.9 Sender hookrefuse@example.org refused by the hook",
      "MAIL refused through a hook reply that reset() frees: the policy's reply, intact")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0", "then MAIL is accepted")
t.like(c.cmd("RCPT TO:<nodata@example.com>"), "250 2.1.5", "RCPT nodata accepted")
t.is_(c.cmd("DATA"), "554 5.7.9 Recipient nodata@example.com takes no message",
      "DATA refused through a hook reply that reset() frees: the policy's reply, intact")
t.like(c.cmd("RCPT TO:<b@example.com>"), "503 5.5.1", "the transaction is over")
c.close()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<nodata@example.com>")
c.send(b"BDAT 5 LAST\r\nhello")
t.is_(c.reply(), "554 5.7.9 Recipient nodata@example.com takes no message",
      "BDAT refused the same way: its octets read, then the policy's reply")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
t.is_(c.cmd("Subject: hook-tempfail\r\n\r\nx\r\n."), "451 4.3.9 Try again later, says the hook",
      "end of data refused through a hook reply in the transaction's pool: intact")
t.like(c.cmd("NOOP"), "250 2.0.0", "the session goes on")
t.is_(stored(), [], "nothing stored")
c.close()
worker_alive("policy replies freed with the transaction")

# ---- a policy answer after the connection closed ----
# Found by t/fuzz/fuzz_smtp: when the idle timeout closed a session while
# the policy was deciding, the policy's answer still wrote a reply, after
# the 421.  For the answer to come while the connection is closing, the 421
# must wait unsent: the client reads nothing while the policy fills the
# socket's and the connection's buffers with long replies to pipelined MAILs
# ("fill"), then the policy holds its answer to "EHLO late.test" until the
# connection is closed (timeout_initial, 3 s, after the output stopped
# moving).
late = g.log().count("event=smtptest_late_answer")
c = Client.__new__(Client)
c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# A small window and small segments keep the kernel's buffers small (with
# the defaults they take megabytes, and keep growing for a while).
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
try:
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
except OSError:
    pass
c.sock.settimeout(10)
c.sock.connect(("127.0.0.1", port))
c.buf = b""
t.like(c.reply(), "220 ", "a client that will stop reading: greeting")
c.send("EHLO client.test\r\n" + "MAIL FROM:<fill@example.org>\r\nRSET\r\n" * 200 +
       "EHLO late.test\r\n")
deadline = time.time() + 60
while time.time() < deadline and g.log().count("event=smtptest_late_answer") == late:
    time.sleep(0.05)
lines = [x for x in g.log().splitlines() if "event=smtptest_late_answer" in x]
t.is_(len(lines), late + 1, "the policy answered after the connection was closed")
pending = 0
if len(lines) > late:
    pending = int(lines[-1].split("output_pending=")[1].split()[0])
t.ok(pending > 0, "the 421 was still unsent when the answer came (%d octets waiting)" % pending)
chunks = []
try:
    while True:
        b = c.sock.recv(1 << 20)
        if not b:
            break
        chunks.append(b)
except (ConnectionError, socket.timeout) as e:
    t.diag("reading: %s" % e)
c.close()
got = b"".join(chunks).split(b"\r\n")
if got and got[-1] == b"":
    got.pop()
idx = [i for i, x in enumerate(got) if x.startswith(b"421 ")]
t.ok(len(idx) == 1 and got[idx[0]].startswith(b"421 4.4.2 mail.test Timeout"),
     "the client is told 421 4.4.2, once (%s)" % [got[i][:40] for i in idx])
t.is_([x.decode(errors="replace")[:60] for x in got[idx[-1] + 1:]] if idx else None, [],
      "and nothing after it: the late answer wrote nothing")
t.ok(all(x[:3] == b"250" for x in (got[:idx[0]] if idx else [b"?"])),
     "every reply before it is a 250 (%d lines)" % len(got))
worker_alive("a policy answer after the close")

# ---- extensions: EHLO keywords (t/modules/smtptest adds them) ----
import base64  # noqa: E402


def b64(b):
    return base64.b64encode(b).decode()


def ehlo_lines(r):
    return [x[4:] for x in r.split("\n")]


c, _ = start(ehlo=False)
r = ehlo_lines(c.cmd("EHLO client.test"))
t.ok("AUTH PLAIN X-STEPS" in r, "EHLO offers the added AUTH with the parameters its offer() "
     "gave (%s)" % [x for x in r if x.startswith("AUTH")])
t.ok("DSN" in r, "EHLO offers the added DSN")
t.ok("XTLSONLY" not in r, "a keyword added for TLS only is not offered in the clear")
t.ok("AUTH PLAIN X-STEPS" in r and
     r.index("CHUNKING") < r.index("AUTH PLAIN X-STEPS") < r.index("HELP") and r[-1] == "HELP",
     "added keywords come after the engine's, HELP last")
t.like(c.cmd("MAIL FROM:<a@example.org> XTLS"), "555 5.5.4",
       "a parameter of a keyword not offered in this session: 555 5.5.4")
t.like(c.cmd("HELO client.test"), "250 mail.test", "HELO")
t.like(c.cmd("AUTH PLAIN"), "502 5.5.1",
       "after HELO no keyword was offered: the added command answers 502 5.5.1")
c.close()
c, _ = start(ehlo=False)
c.send("STARTTLS\r\n")
c.reply()
c.sock = ctx.wrap_socket(c.sock, server_hostname="mail.test")
c.buf = b""
r = ehlo_lines(c.cmd("EHLO client.test"))
t.ok("AUTH PLAIN X-STEPS X-TLS" in r, "over TLS, offer() gives other AUTH parameters (%s)"
     % [x for x in r if x.startswith("AUTH")])
t.ok("XTLSONLY" in r, "and the TLS-only keyword is offered")
t.like(c.cmd("MAIL FROM:<a@example.org> XTLS"), "250 2.1.0",
       "its parameter is accepted now")
clean()  # before DATA: the message's temporary file is made at DATA
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
t.like(c.cmd("Subject: xtls\r\n\r\nx\r\n."), "250", "delivered")
f = stored()
t.ok(len(f) == 1 and "mail-xtls (none)\n" in read_env(f[0]),
     "the policy read the parameter (given without a value)")
c.close()

# ---- extensions: MAIL and RCPT parameters ----
clean()
c, _ = start()
t.like(c.cmd("MAIL FROM:<a@example.org> XVALUE=abc AUTH=john+40example.org SIZE=100"),
       "250 2.1.0", "MAIL with added parameters (one xtext) and the engine's SIZE")
t.like(c.cmd("RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.com"),
       "250 2.1.5", "RCPT with added parameters")
t.like(c.cmd("RCPT TO:<c@example.com>"), "250 2.1.5", "and one without")
c.cmd("DATA")
t.like(c.cmd("Subject: params\r\n\r\nx\r\n."), "250", "delivered")
f = stored()
env = read_env(f[0]) if len(f) == 1 else ""
t.like(env, "mail-auth john@example.org\n", "AUTH= reached the policy, xtext decoded")
t.like(env, "mail-xvalue abc\n", "XVALUE= reached the policy")
t.like(env, "rcpt b@example.com notify=SUCCESS,FAILURE orcpt=rfc822;b+x@example.com\n"
       "rcpt c@example.com\n", "each recipient's parameters reached the policy")
c.close()
c, _ = start()
t.is_(c.cmd("MAIL FROM:<a@example.org> XVALUE=bad"), "550 5.7.9 XVALUE=bad is refused by "
      "its check", "a parameter's check refuses: its reply")
t.is_(c.cmd("MAIL FROM:<a@example.org> XVALUE=badenh"), "550 5.5.4 XVALUE=badenh is refused "
      "with a bad enhanced code", "a check's enhanced code of the wrong class is replaced "
      "(found by t/fuzz/fuzz_smtp)")
t.like(c.cmd("MAIL FROM:<a@example.org> XVALUE"), "501 5.5.4", "a value needed: 501 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> XVALUE=a XVALUE=b"), "501 5.5.4",
       "a repeated parameter: 501 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> XVALUE=" + "v" * 21), "501 5.5.4",
       "a value over the parameter's max_length: 501 5.5.4")
c.close()
c, _ = start()
t.like(c.cmd("MAIL FROM:<a@example.org> AUTH=a+zz"), "501 5.5.4", "bad xtext: 501 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> AUTH=a+0Db"), "501 5.5.4",
       "xtext that decodes to a control character: 501 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> XVALUE=a=b"), "501 5.5.4",
       "\"=\" in a value (no esmtp-value): 501 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> -X=1"), "501 5.5.4",
       "a keyword that is no esmtp-keyword: 501 5.5.4")
t.like(c.cmd("MAIL FROM:<a@example.org> XVALUE=ok"), "250", "then a good MAIL")
c.close()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
t.like(c.cmd("RCPT TO:<b@example.com> NOTIFY=SOMETIMES"), "501 5.5.4 Bad NOTIFY",
       "a RCPT parameter's check refuses (no code: 501 5.5.4)")
t.like(c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER NOTIFY=NEVER"), "501 5.5.4",
       "a repeated RCPT parameter: 501")
t.like(c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER"), "250", "then a good RCPT")
c.close()

# ---- extensions: a command with continuation lines (AUTH) ----
PLAIN_OK = b64(b"\0test\0secret")
clean()
c, _ = start()
t.like(c.cmd("AUTH PLAIN " + PLAIN_OK), "235 2.7.0", "AUTH PLAIN with an initial response: "
       "235 2.7.0, the command's own 2xx")
t.like(c.cmd("AUTH PLAIN " + PLAIN_OK), "503 5.5.1", "AUTH again: the command says 503")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.cmd("Subject: auth\r\n\r\nx\r\n.")
f = stored()
t.ok(len(f) == 1 and "auth 1\n" in read_env(f[0]) and "protocol ESMTPA\n" in read_env(f[0]),
     "the session is authenticated: protocol ESMTPA (RFC 3848)")
c.close()
c, _ = start()
t.is_(c.cmd("AUTH PLAIN"), "334 ", "AUTH PLAIN without a response: \"334 \" (an empty "
      "challenge, RFC 4954 4)")
t.like(c.cmd(PLAIN_OK), "235 2.7.0", "the continuation line goes to the command: 235")
c.close()
c, _ = start()
t.is_(c.cmd("AUTH PLAIN"), "334 ", "AUTH PLAIN: 334")
t.is_(c.cmd("*"), "501 5.0.0 Authentication cancelled", "\"*\" cancels: 501 (RFC 4954 4)")
t.like(c.cmd("NOOP"), "250", "and the next line is a command again")
t.like(c.cmd("AUTH PLAIN " + b64(b"\0test\0wrong")), "535 5.7.8", "a bad password: 535 5.7.8")
t.like(c.cmd("AUTH FOO"), "504 5.5.4", "an unknown mechanism: the command's 504")
c.close()
c, _ = start()
r = c.cmd("AUTH X-STEPS 3")
steps = [r]
for i in range(3):
    r = c.cmd(b64(b"ok"))
    steps.append(r)
t.is_(steps, ["334 " + b64(b"step 1"), "334 " + b64(b"step 2"), "334 " + b64(b"step 3"),
              "235 2.7.0 Authentication successful"],
      "a command of several steps: three challenges, then 235")
c.close()
cancels = g.log().count("event=smtptest_cancel")
c, _ = start()
c.cmd("AUTH X-STEPS 5")
for i in range(3):
    c.cmd(b64(b"ok"))
t.is_(c.cmd(b64(b"ok")), "501 5.5.4 Too many lines in the exchange",
      "past the command's max_lines (4): the engine ends it, 501 5.5.4")
t.like(c.cmd("NOOP"), "250", "and the session goes on")
t.is_(g.log().count("event=smtptest_cancel"), cancels + 1, "the command's cancel() was called")
c.close()
c, _ = start()
t.like(c.cmd("AUTH PLAIN " + "A" * 12000), "535 5.7.8",
       "a 12011-octet AUTH line is read (the command's limit is 12288; NOOP's is 512)")
t.like(c.cmd("NOOP " + "x" * 600), "500 5.5.2", "while a 606-octet NOOP is still too long")
t.is_(c.cmd("AUTH PLAIN"), "334 ", "AUTH PLAIN")
t.like(c.cmd("A" * 13000), "500 5.5.2", "a continuation line past 12288 octets: 500 5.5.2")
t.like(c.cmd("NOOP"), "250", "read to its end: the next line is a command")
t.is_(g.log().count("event=smtptest_cancel"), cancels + 2, "and the command was cancelled")
c.close()
c, _ = start()
c.send("AUTH PLAIN\r\n" + PLAIN_OK + "\r\nNOOP\r\n")
t.is_([c.reply(), c.reply()[:9], c.reply()[:3]], ["334 ", "235 2.7.0", "250"],
      "AUTH, its response and NOOP pipelined: the response is read from the buffer")
t.like(c.cmd("XRESTART"), "220 2.0.0", "XRESTART (GN_SMTP_CMD_RESTART): 220")
t.like(c.cmd("MAIL FROM:<a@example.org>"), "503 5.5.1", "the session starts over: EHLO first")
c.cmd("EHLO client.test")
t.is_(c.cmd("AUTH PLAIN"), "334 ", "and the authentication is forgotten (AUTH again: 334)")
t.like(c.cmd("*"), "501", "cancelled")
c.cmd("MAIL FROM:<a@example.org>")
t.like(c.cmd("AUTH PLAIN"), "503 5.5.1", "AUTH in a transaction (not among its states): 503")
c.close()
c, _ = start()
c.cmd("AUTH PLAIN")
t.like(c.cmd("QUI\0T"), "500 5.5.2", "a continuation line with a NUL: 500 5.5.2")
t.like(c.cmd("NOOP"), "250", "and the exchange is over")
c.close()
cancels = g.log().count("event=smtptest_cancel")
c, _ = start()
t.is_(c.cmd("AUTH PLAIN"), "334 ", "AUTH PLAIN, then the client says nothing")
t.like(c.reply(), "421 4.4.2", "the idle timeout of the state AUTH was given in: 421 4.4.2")
deadline = time.time() + 10
while time.time() < deadline and g.log().count("event=smtptest_cancel") == cancels:
    time.sleep(0.05)
t.is_(g.log().count("event=smtptest_cancel"), cancels + 1, "and the command is cancelled")
c.close()

# ---- a refused recipient leaves the transaction ----
clean()
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
got = [c.cmd("RCPT TO:<%s@example.com>" % x)[:3]
       for x in ("unknown1", "unknown2", "temp1", "r1", "r2", "r3", "r4")]
t.is_(got, ["550", "550", "451", "250", "250", "250", "452"],
      "refused recipients do not count: max_recipients (3) accepted ones, then 452")
c.cmd("DATA")
c.cmd("Subject: refused\r\n\r\nx\r\n.")
f = stored()
t.ok(len(f) == 1 and read_env(f[0]).split("\n")[-4:] ==
     ["rcpt r1@example.com", "rcpt r2@example.com", "rcpt r3@example.com", ""],
     "only the accepted recipients reach the message")
c.close()

# ---- long localparts in MAIL FROM (SRS, VERP) ----
clean()
srs = "SRS0=HHH=TT=example.org=" + "s" * 80
c, _ = start()
t.like(c.cmd("MAIL FROM:<%s@forwarder.example>" % srs), "250 2.1.0",
       "MAIL FROM with a %d-octet localpart (SRS): 250 (RFC 5321 4.5.3.1)" % len(srs))
t.like(c.cmd("RCPT TO:<%s@example.com>" % ("r" * 65)), "501 5.1.3",
       "RCPT TO keeps the 64-octet limit: 501 5.1.3")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.cmd("Subject: srs\r\n\r\nx\r\n.")
f = stored()
t.ok(len(f) == 1 and ("from %s@forwarder.example\n" % srs) in read_env(f[0]),
     "the long return path reached the policy whole")
t.like(c.cmd("MAIL FROM:<%s@x.example>" % ("l" * 401)), "501 5.1.7 Bad sender address "
       "syntax: localpart too long", "past 400 octets: 501 5.1.7")
c.close()

# ---- HTTP on the SMTP port ----
clean()
http = g.log().count("event=smtp_http_request")
c, _ = start(ehlo=False)
t.like(c.cmd("GET / HTTP/1.1"), "221 2.7.0 mail.test This is an SMTP server",
       "GET: one reply, 221 2.7.0")
t.ok(c.eof(), "and the connection is closed")
c.close()
c, _ = start(ehlo=False)
body = ("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        "Subject: via http\r\n\r\nx\r\n.\r\nQUIT\r\n")
c.send("POST / HTTP/1.1\r\nHost: mail.test:25\r\nContent-Type: text/plain\r\n"
       "Content-Length: %d\r\n\r\n%s" % (len(body), body))
t.like(c.reply(), "221 2.7.0", "a browser's POST carrying a transaction: 221 at once")
t.is_(c.reply(), "", "and nothing more (the lines after it are never read)")
c.close()
time.sleep(0.3)
t.is_(stored(), [], "nothing stored")
for verb in ("CONNECT mail.test:25 HTTP/1.1", "put /x HTTP/1.0", "HEAD / HTTP/1.1"):
    c, _ = start()
    t.like(c.cmd(verb), "221 2.7.0", "%s, also after EHLO: 221 and close" % verb.split()[0])
    t.ok(c.eof(), "closed")
    c.close()
deadline = time.time() + 10
while time.time() < deadline and g.log().count("event=smtp_http_request") < http + 5:
    time.sleep(0.05)
t.is_(g.log().count("event=smtp_http_request"), http + 5, "each is logged")

# ---- Received fields: a mail loop (RFC 5321 6.3) ----
clean()
loops = g.log().count("event=smtp_mail_loop")


def with_received(n, more=b""):
    return (b"".join(b"Received: from hop%d.example by x; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
                     for i in range(n)) + more + b"Subject: loop\r\n\r\nbody\r\n")


c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(with_received(5) + b".\r\n")
t.like(c.reply(), "250", "5 Received fields with max_received_headers 5: accepted")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(with_received(5, b"rEcEiVeD:\r\n\tfrom folded.example\r\n") + b".\r\n")
t.like(c.reply(), "554 5.4.6", "a 6th (in any case, folded): 554 5.4.6")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
c.cmd("DATA")
c.send(b"Subject: quoted\r\n\r\n" + with_received(9) + b".\r\n")
t.like(c.reply(), "250", "Received lines in the body do not count")
c.cmd("MAIL FROM:<a@example.org>")
c.cmd("RCPT TO:<b@example.com>")
m = with_received(6)
c.send(b"BDAT %d\r\n" % 100 + m[:100] + b"BDAT %d LAST\r\n" % (len(m) - 100) + m[100:])
t.like(c.reply(), "250 2.0.0 100 octets", "BDAT: the first chunk")
t.like(c.reply(), "554 5.4.6", "6 Received over two BDAT chunks: 554 5.4.6")
c.close()
t.is_(len(stored()), 2, "the two good messages stored, no other")
t.ok(g.log().count("event=smtp_mail_loop") >= loops + 2, "the loops are logged")

# ---- the HELO name in the engine's Received field ----
clean()
for helo, want in ((b"h\xe9llo.test", "from h\\xE9llo.test ("),
                   ("bücher.example".encode(), "from xn--bcher-kva.example ("),
                   (b"a(b);c", "from a\\x28b\\x29\\x3Bc (")):
    c, _ = start(ehlo=False)
    c.cmd(b"EHLO " + helo)
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.com>")
    c.cmd("DATA")
    c.cmd("Subject: helo\r\n\r\nx\r\n.")
    c.close()
    f = stored()
    rec = b""
    if len(f) == 1:
        with open(os.path.join(spool, f[0][:-4] + ".received"), "rb") as fh:
            rec = fh.read()
    t.ok(rec.startswith(("Received: " + want).encode()) and all(0x20 <= x < 0x7f or x in b"\r\n\t"
                                                                  for x in rec),
         "HELO %r: Received says %r, 7-bit printable (%r)" % (helo, want, rec[:60]))
    clean()

# ---- idle timeout ----
c, _ = start()
t0 = time.time()
r = c.reply()
el = time.time() - t0
t.like(r, "421 4.4.2", "an idle client gets 421 4.4.2")
t.ok(el >= 2.5, "after timeout_initial (%.1f s)" % el)
t.ok(c.eof(), "and is disconnected")
c.close()

# ---- the server stops: an idle session is told ----
c, _ = start()
c.cmd("MAIL FROM:<a@example.org>")
c2, _ = start()
t.is_(c2.cmd("AUTH PLAIN"), "334 ", "a session in the middle of AUTH")
g.proc.send_signal(15)
t.like(c.reply(), "421 4.3.2", "SIGTERM: an idle session gets 421 4.3.2")
t.ok(c.eof(), "and is closed")
t.like(c2.reply(), "421 4.3.2", "so does a session waiting for its AUTH response")
c.close()
c2.close()
t.is_(g.stop(), 0, "gannet stops")
t.done()
