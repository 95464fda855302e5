#!/usr/bin/env python3
"""
t/integration/160-imap-session.t: the imap module's session and login in a
running `gannet serve`, with Python's imaplib, openssl s_client and raw
sockets (issue 8, items 1, 2 and 5, first part):

- the greeting carries the capabilities; before TLS: STARTTLS,
  LOGINDISABLED and no plain-text AUTH= mechanism; LOGIN answers
  NO [PRIVACYREQUIRED];
- STARTTLS, then LOGIN (a literal password with spaces and a quote),
  the tagged OK carries the new capabilities; a wrong password gets
  NO [AUTHENTICATIONFAILED], an unknown user the same;
- AUTHENTICATE PLAIN with and without SASL-IR, SCRAM-SHA-256 through
  imaplib's continuation callback, "*" cancels with BAD;
- implicit TLS (the 993 kind of listener) logs in too;
- ID, ENABLE IMAP4rev2 (only once logged in), NOOP, LOGOUT with BYE;
- the parser: a literal over imap.max_literal gets BAD [TOOBIG] without a
  continuation and the session goes on; a line over max_line the same; a
  non-synchronising literal too large to skip ends the session with BYE;
  lists nested too deep get BAD [LIMIT]; a quoted string that is not
  UTF-8, a bad escape, a missing tag: BAD; 20 BADs in a row: BYE;
- an idle client before login is logged out after imap.timeout_notauth.
"""
import base64
import hashlib
import hmac
import imaplib
import os
import re
import shutil
import socket
import ssl
import sys
import time

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
port, tport = gt.free_port(), gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "imap"; address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "starttls"; },'
              '{ name = "imaps"; address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "implicit"; }'
              % (port, tport),
    modules='directory = "%s"; load = [ "imap" ];' % moddir,
    extra="""workers = 1;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
imap = { max_literal = "4k"; max_line = "8k"; timeout_notauth = "3s"; };
""" % (cert, key)), directory=d)

PASSWORD = 'correct "horse" battery'


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.returncode


setup_ok = all(gannet(*a) == 0 for a in [("migrate",), ("config", "domain", "add", "example.com"),
                                          ("config", "account", "add", "alice", "alice@example.com")])
setup_ok = setup_ok and gannet("setpassword", "alice", stdin=PASSWORD + "\n") == 0
t.ok(setup_ok, "migrate, a domain, an account with a password")

try:
    g.start(wait_ports=(port, tport))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


class Raw:
    """A raw IMAP connection: send bytes, read lines."""

    def __init__(self, tls=False):
        s = socket.create_connection(("127.0.0.1", tport if tls else port), timeout=10)
        self.s = ctx.wrap_socket(s) if tls else s
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                r, self.buf = self.buf, b""
                return r
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def until_tagged(self, tag):
        """Lines up to and including the tagged response of tag."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln == b"" or ln.startswith(tag.encode() + b" "):
                return lines

    def closed(self):
        try:
            self.s.settimeout(5)
            rest = self.s.recv(65536)
            while rest:
                self.buf += rest
                rest = self.s.recv(65536)
            return True
        except OSError:
            return False

    def close(self):
        self.s.close()


def like_re(got, pattern, name):
    """got matches the regular expression pattern at its start."""
    r = t.ok(got is not None and re.match(pattern, got) is not None, name)
    if not r:
        t.diag("%r does not match %r" % (got, pattern))
    return r


def caps_of(line):
    """The capability words of a greeting or a CAPABILITY response."""
    text = line.decode()
    if "[CAPABILITY " in text:
        text = text.split("[CAPABILITY ", 1)[1].split("]", 1)[0]
    elif text.startswith("* CAPABILITY "):
        text = text[len("* CAPABILITY "):]
    return set(text.split())


# ---- before TLS ----
r = Raw()
caps = caps_of(r.greeting)
t.ok(r.greeting.startswith(b"* OK [CAPABILITY ") and "IMAP4rev2" in caps and "IMAP4rev1" in caps,
     "the greeting is OK with the capabilities, IMAP4rev2 and IMAP4rev1")
t.ok("STARTTLS" in caps and "LOGINDISABLED" in caps, "before TLS: STARTTLS and LOGINDISABLED")
t.ok("AUTH=PLAIN" not in caps and "AUTH=SCRAM-SHA-256" in caps,
     "no plain-text mechanism before TLS, SCRAM is offered")
r.send(b'a1 LOGIN alice@example.com "x"\r\n')
like_re(r.until_tagged("a1")[-1].decode(), r"^a1 NO \[PRIVACYREQUIRED\] ", "LOGIN without TLS: NO [PRIVACYREQUIRED]")
r.send(b"a2 ENABLE IMAP4rev2\r\n")
like_re(r.until_tagged("a2")[-1].decode(), r"^a2 BAD ", "ENABLE before logging in: BAD")
r.send(b"a3 CAPABILITY\r\n")
lines = r.until_tagged("a3")
t.ok(lines[0].startswith(b"* CAPABILITY ") and caps_of(lines[0]) == caps and lines[-1].startswith(b"a3 OK"),
     "CAPABILITY answers the same list")
r.send(b"a4 NOOP\r\n")
like_re(r.until_tagged("a4")[-1].decode(), r"^a4 OK", "NOOP")
r.send(b"a5 FROB\r\n")
like_re(r.until_tagged("a5")[-1].decode(), r"^a5 BAD ", "an unknown command: BAD")
r.send(b"a7 LOGOUT\r\n")
lines = r.until_tagged("a7")
t.ok(lines[0].startswith(b"* BYE") and lines[-1].startswith(b"a7 OK"), "LOGOUT: BYE, then OK")
t.ok(r.closed(), "and the server closes")
r.close()

# ---- STARTTLS and LOGIN with imaplib ----
m = imaplib.IMAP4("127.0.0.1", port)
typ, _ = m.starttls(ssl_context=ctx)
t.is_(typ, "OK", "imaplib: STARTTLS")
t.ok("AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities
     and "STARTTLS" not in m.capabilities, "after TLS: AUTH=PLAIN, no LOGINDISABLED, no STARTTLS")
try:
    m.login("alice@example.com", "wrong password")
    t.ok(False, "a wrong password is refused")
except imaplib.IMAP4.error as e:
    like_re(str(e), r".*\[AUTHENTICATIONFAILED\]", "a wrong password: NO [AUTHENTICATIONFAILED]")
try:
    m.login("nobody@example.com", PASSWORD)
    t.ok(False, "an unknown user is refused")
except imaplib.IMAP4.error as e:
    like_re(str(e), r".*\[AUTHENTICATIONFAILED\]", "an unknown user: the same answer")
# imaplib quotes the password ("correct \"horse\" battery").
typ, data = m.login("alice@example.com", PASSWORD)
t.is_(typ, "OK", "LOGIN with the password (quoted string with escapes)")
like_re(data[0].decode(), r"^\[CAPABILITY IMAP4rev2 ", "the OK carries the capabilities")
typ, data = m._simple_command("ENABLE", "IMAP4rev2")
t.is_((typ, m.untagged_responses.get("ENABLED")), ("OK", [b"IMAP4rev2"]), "ENABLE IMAP4rev2: ENABLED")
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
typ, data = m._simple_command("ID", '("name" "160-imap-session" "version" "1")')
t.is_((typ, m.untagged_responses.get("ID")), ("OK", [b'("name" "Gannet")']), "ID")
typ, _ = m.logout()
t.is_(typ, "BYE", "LOGOUT")

# ---- LOGIN with literals ----
r = Raw(tls=True)
pw = PASSWORD.encode()
r.send(b"b1 LOGIN {17}\r\n")
like_re(r.line().decode(), r"^\+ ", "a synchronising literal gets a continuation")
r.send(b"alice@example.com {%d}\r\n" % len(pw))
like_re(r.line().decode(), r"^\+ ", "the second one too")
r.send(pw + b"\r\n")
like_re(r.until_tagged("b1")[-1].decode(), r"^b1 OK \[CAPABILITY ", "LOGIN with two literals")
r.send(b"b1a LOGIN alice@example.com x\r\n")
like_re(r.until_tagged("b1a")[-1].decode(), r"^b1a BAD ", "LOGIN once logged in: BAD (a command of another state)")
r.close()

r = Raw(tls=True)
r.send(b"b2 LOGIN {17+}\r\nalice@example.com {%d+}\r\n%s\r\n" % (len(pw), pw))
like_re(r.until_tagged("b2")[-1].decode(), r"^b2 OK ", "LOGIN with non-synchronising literals (LITERAL+)")
r.close()

# ---- AUTHENTICATE ----
r = Raw(tls=True)
ir = base64.b64encode(b"\0alice@example.com\0" + pw)
r.send(b"c1 AUTHENTICATE PLAIN " + ir + b"\r\n")
like_re(r.until_tagged("c1")[-1].decode(), r"^c1 OK \[CAPABILITY ", "AUTHENTICATE PLAIN with SASL-IR")
r.close()

r = Raw(tls=True)
r.send(b"c2 AUTHENTICATE PLAIN\r\n")
t.is_(r.line(), b"+ ", "AUTHENTICATE PLAIN without SASL-IR: an empty challenge")
r.send(ir + b"\r\n")
like_re(r.until_tagged("c2")[-1].decode(), r"^c2 OK ", "the response logs in")
r.close()

r = Raw(tls=True)
r.send(b"c3 AUTHENTICATE PLAIN\r\n")
r.line()
r.send(b"*\r\n")
like_re(r.until_tagged("c3")[-1].decode(), r"^c3 BAD ", "\"*\" cancels: BAD")
r.send(b"c4 AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice@example.com\0nope") + b"\r\n")
like_re(r.until_tagged("c4")[-1].decode(), r"^c4 NO \[AUTHENTICATIONFAILED\]", "a wrong password: NO")
r.send(b"c5 AUTHENTICATE X-UNKNOWN\r\n")
like_re(r.until_tagged("c5")[-1].decode(), r"^c5 (NO|BAD) ", "an unknown mechanism is refused")
r.close()


class Scram:
    """A SCRAM-SHA-256 client for imaplib's authenticate() callback."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.step = 0
        self.server_ok = False

    def __call__(self, challenge):
        if self.step == 0:
            self.step = 1
            self.first_bare = "n=%s,r=%s" % (self.user, self.nonce)
            return ("n,," + self.first_bare).encode()
        if self.step == 1:
            self.step = 2
            sf = challenge.decode()
            attrs = dict(kv.split("=", 1) for kv in sf.split(","))
            salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]),
                                         int(attrs["i"]))
            ckey = hmac.new(salted, b"Client Key", "sha256").digest()
            stored = hashlib.sha256(ckey).digest()
            without = "c=biws,r=" + attrs["r"]
            auth = ",".join([self.first_bare, sf, without]).encode()
            sig = hmac.new(stored, auth, "sha256").digest()
            proof = bytes(a ^ b for a, b in zip(ckey, sig))
            skey = hmac.new(salted, b"Server Key", "sha256").digest()
            self.expect = base64.b64encode(hmac.new(skey, auth, "sha256").digest()).decode()
            return (without + ",p=" + base64.b64encode(proof).decode()).encode()
        self.server_ok = challenge.decode() == "v=" + self.expect
        return b""


m = imaplib.IMAP4("127.0.0.1", port)
scram = Scram("alice@example.com", PASSWORD)
typ, _ = m.authenticate("SCRAM-SHA-256", scram)
t.ok(typ == "OK" and scram.server_ok, "AUTHENTICATE SCRAM-SHA-256 before TLS, the server proves itself")
m.logout()

m = imaplib.IMAP4_SSL("127.0.0.1", tport, ssl_context=ctx)
typ, _ = m.login("alice@example.com", PASSWORD)
t.is_(typ, "OK", "implicit TLS: LOGIN")
m.logout()

# ---- the parser's limits ----
r = Raw(tls=True)
r.send(b"d1 LOGIN {5000}\r\n")
like_re(r.line().decode(), r"^d1 BAD \[TOOBIG\] ", "a literal over max_literal: BAD [TOOBIG], no continuation")
r.send(b"d2 NOOP\r\n")
like_re(r.until_tagged("d2")[-1].decode(), r"^d2 OK", "and the session goes on")
r.send(b"d3 NOOP " + b"x" * 9000 + b"\r\n")
like_re(r.until_tagged("d3")[-1].decode(), r"^d3 BAD \[TOOBIG\] ", "a line over max_line: BAD [TOOBIG]")
r.send(b"d4 ID " + b"(" * 20 + b")" * 20 + b"\r\n")
like_re(r.until_tagged("d4")[-1].decode(), r"^d4 BAD \[LIMIT\] ", "lists nested too deep: BAD [LIMIT]")
r.send(b'd5 ID ("name" "\xff\xfe")\r\n')
like_re(r.until_tagged("d5")[-1].decode(errors="replace"), r"^d5 BAD ", "a quoted string that is not UTF-8: BAD")
r.send(b'd6 ID ("na\\me" "x")\r\n')
like_re(r.until_tagged("d6")[-1].decode(), r"^d6 BAD ", "a bad escape in a quoted string: BAD")
r.send(b"d7 NOOP {3+}\r\nabc {6000+}\r\n" + b"y" * 6000 + b"\r\n")
like_re(r.until_tagged("d7")[-1].decode(), r"^d7 BAD \[TOOBIG\] ",
       "a non-synchronising literal over max_literal is skipped: BAD [TOOBIG]")
r.send(b"d8 NOOP\r\n")
like_re(r.until_tagged("d8")[-1].decode(), r"^d8 OK", "and the next command is read where it starts")
r.send(b"d9 NOOP {999999999+}\r\n")
ln = r.line()
like_re(ln.decode(), r"^\* BYE ", "a non-synchronising literal too large to skip: BYE")
t.ok(r.closed(), "and the connection ends")
r.close()

r = Raw(tls=True)
for i in range(19):
    r.send(b"e%d FROB\r\n" % i)
    r.until_tagged("e%d" % i)
r.send(b"e19 FROB\r\n")
lines = r.until_tagged("e19")
rest = r.line()
like_re(rest.decode(), r"^\* BYE ", "the 20th BAD in a row: BYE")
r.close()

r = Raw(tls=True)
r.send(b"\r\n")
like_re(r.line().decode(), r"^\* BAD ", "an empty line: BAD without a tag")
r.send(b"f1+ NOOP\r\n")
like_re(r.line().decode(), r"^\* BAD ", "a tag with '+': BAD without a tag")
r.close()

# ---- autologout before login ----
r = Raw()
start = time.monotonic()
ln = r.line()
like_re(ln.decode(), r"^\* BYE ", "an idle client before login hears BYE")
t.ok(r.closed(), "and is disconnected")
r.close()

log = g.log()
t.ok("event=login " in log and "mechanism=SCRAM-SHA-256" in log, "logins are logged with their mechanism")
t.ok(PASSWORD not in log and "horse" not in log, "the password is never logged")
g.stop()
t.done()
