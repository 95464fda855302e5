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
             timeout_initial = "3s"; };
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
        self.send(line + "\r\n")
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
t.like(c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER"), "555 5.5.4",
       "RCPT parameters (not offered): 555 5.5.4")
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
t.ok(len(f) == 1 and "helo client.test\nrcpt" in read_env(f[0]) and
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
g.proc.send_signal(15)
t.like(c.reply(), "421 4.3.2", "SIGTERM: an idle session gets 421 4.3.2")
t.ok(c.eof(), "and is closed")
c.close()
t.is_(g.stop(), 0, "gannet stops")
t.done()
