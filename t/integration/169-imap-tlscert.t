#!/usr/bin/env python3
"""
IMAP login by TLS client certificate (issue 8, item 2; mox.md 4.3, 4.5):
- on implicit TLS a registered key greets with PREAUTH and the session is
  logged in as the key's address (checked with Python's ssl, with
  `openssl s_client` and with curl);
- a key registered with --no-imap-preauth greets with OK; the client logs
  in with AUTHENTICATE EXTERNAL (empty authzid: the key's address; another
  address of the same account; never another account's) or with LOGIN or
  another mechanism, but only for the key's account;
- after STARTTLS a registered key never preauthenticates; EXTERNAL works;
- AUTH=EXTERNAL is offered only when a certificate was presented;
- a disabled account is not preauthenticated and gets NO with its message;
- each preauthentication is recorded as a login attempt (tlsclientauth).
"""
import base64
import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t, starttls=True)
t.ok(srv.setup(2), "account alice with two messages")
t.is_(srv.gannet("config", "address", "add", "alice2@example.com", "alice").returncode, 0,
      "a second address of alice")
t.is_(srv.gannet("config", "account", "add", "bob", "bob@example.com").returncode, 0, "account bob")
t.is_(srv.gannet("setpassword", "bob", stdin="bob's password 1\n").returncode, 0, "bob's password")

# Keys: A preauthenticates, B does not (--no-imap-preauth), C is unknown.
certs = {}
for name in ("a", "b", "c"):
    certs[name] = gt.make_cert(srv.dir, "client-" + name, "client " + name)
for name, extra in (("a", []), ("b", ["--no-imap-preauth"])):
    with open(certs[name][0]) as f:
        r = srv.gannet("config", "tlspubkey", "add", *extra, "alice@example.com", "key " + name,
                       stdin=f.read())
    t.is_(r.returncode, 0, "key %s registered for alice@example.com %s" % (name, " ".join(extra)))
srv.start()


class Conn:
    """A raw IMAP connection: implicit TLS, or plain for STARTTLS."""

    def __init__(self, cert=None, starttls=False):
        port = srv.port_starttls if starttls else srv.port
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock = self.raw
        self.buf = b""
        self.cert = cert
        if not starttls:
            self.tls()
        self.greeting = self.line()

    def tls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if self.cert:
            ctx.load_cert_chain(*certs[self.cert])
        self.sock = ctx.wrap_socket(self.raw, server_hostname="mail.test")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().rstrip("\r")

    def cmd(self, s):
        """Sends a command; returns its lines, the tagged one last."""
        tag = s.split(" ", 1)[0]
        self.sock.sendall(s.encode() + b"\r\n")
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " ") or line == "":
                return lines

    def close(self):
        self.sock.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def caps(c):
    return c.cmd("c CAPABILITY")[0].split()


# ---- PREAUTH ----
c = Conn("a")
t.like(c.greeting, "* PREAUTH [CAPABILITY IMAP4rev2", "key A on implicit TLS: PREAUTH greeting")
t.like(c.greeting, "alice@example.com", "naming the key's address")
t.ok("AUTH=EXTERNAL" not in c.greeting and "LOGINDISABLED" not in c.greeting,
     "its capabilities are those of the authenticated state")
r = c.cmd("s SELECT INBOX")
t.ok("* 2 EXISTS" in r and r[-1].startswith("s OK"), "the session is authenticated: SELECT INBOX works")
t.like(c.cmd("l LOGIN bob@example.com x")[-1], "l BAD", "LOGIN after PREAUTH: not in this state")
c.close()
rows = srv.sql("SELECT count(*) FROM gn_auth_attempts WHERE protocol = 'imap' "
               "AND mechanism = 'tlsclientauth' AND result = 'ok'")
t.is_(rows.strip(), "1", "the preauthentication is recorded as a login attempt")

# ---- a key without PREAUTH: EXTERNAL, or any login of the same account ----
c = Conn("b")
t.like(c.greeting, "* OK [CAPABILITY", "key B (--no-imap-preauth): OK greeting")
t.ok("AUTH=EXTERNAL" in caps(c), "AUTH=EXTERNAL offered with a certificate")
t.like(c.cmd("n SELECT INBOX")[-1], "n BAD", "not logged in yet")
t.like(c.cmd("e AUTHENTICATE EXTERNAL " + b64("bob@example.com"))[-1], "e NO [AUTHORIZATIONFAILED]",
       "EXTERNAL asking to be another account: refused")
t.like(c.cmd("l LOGIN bob@example.com \"bob's password 1\"")[-1], "l NO [AUTHENTICATIONFAILED]",
       "LOGIN as another account with its right password: refused (the key is alice's)")
t.like(c.cmd("e AUTHENTICATE EXTERNAL " + b64("alice2@example.com"))[-1], "e OK",
       "EXTERNAL as another address of the key's account: logged in")
c.close()
c = Conn("b")
t.like(c.cmd("e AUTHENTICATE EXTERNAL =")[-1], "e OK [CAPABILITY", "EXTERNAL, empty authzid: logged in")
r = c.cmd("s SELECT INBOX")
t.ok("* 2 EXISTS" in r, "as alice (her Inbox)")
c.close()
c = Conn("b")
t.like(c.cmd("l LOGIN alice@example.com \"%s\"" % imaptest.PASSWORD)[-1], "l OK",
       "LOGIN as the key's own account: logged in")
c.close()

# ---- unknown key, no key ----
c = Conn("c")
t.like(c.greeting, "* OK", "an unregistered key: OK greeting")
t.like(c.cmd("e AUTHENTICATE EXTERNAL =")[-1], "e NO [AUTHENTICATIONFAILED]",
       "EXTERNAL with an unregistered key: AUTHENTICATIONFAILED")
t.like(c.cmd("l LOGIN bob@example.com \"bob's password 1\"")[-1], "l OK",
       "an unregistered key ties nothing: bob logs in with his password")
c.close()
c = Conn()
t.ok("AUTH=EXTERNAL" not in caps(c), "no certificate: no AUTH=EXTERNAL")
t.like(c.cmd("e AUTHENTICATE EXTERNAL =")[-1], "e NO", "and EXTERNAL fails")
c.close()

# ---- STARTTLS ----
c = Conn("a", starttls=True)
t.like(c.greeting, "* OK", "port 143 kind: OK greeting before TLS")
t.like(c.cmd("t STARTTLS")[-1], "t OK", "STARTTLS")
c.tls()
cap = caps(c)
t.ok("AUTH=EXTERNAL" in cap and "IMAP4rev2" in cap, "after STARTTLS with key A: not preauthenticated, "
     "AUTH=EXTERNAL offered")
t.like(c.cmd("e AUTHENTICATE EXTERNAL =")[-1], "e OK", "EXTERNAL logs in")
c.close()

# ---- real clients ----
p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port, "-quiet",
                    "-cert", certs["a"][0], "-key", certs["a"][1]],
                   input=b"x LOGOUT\r\n", capture_output=True, timeout=30)
out = p.stdout.decode(errors="replace")
t.like(out, "* PREAUTH [CAPABILITY", "openssl s_client with key A: PREAUTH")
t.like(out, "x OK", "and LOGOUT")

p = subprocess.run(["curl", "-sS", "-k", "--cert", certs["a"][0], "--key", certs["a"][1],
                    "imaps://127.0.0.1:%d/" % srv.port], capture_output=True, timeout=30)
t.is_(p.returncode, 0, "curl imaps:// with key A and no user: it takes the PREAUTH")
t.like(p.stdout.decode(), "INBOX", "and lists the mailboxes")
if p.returncode != 0:
    t.diag(p.stderr.decode())
p = subprocess.run(["curl", "-sS", "-k", "--cert", certs["b"][0], "--key", certs["b"][1],
                    "--login-options", "AUTH=EXTERNAL", "-u", "alice@example.com:",
                    "imaps://127.0.0.1:%d/INBOX;UID=1" % srv.port], capture_output=True, timeout=30)
t.is_(p.returncode, 0, "curl imaps:// with key B and AUTH=EXTERNAL: logged in")
t.like(p.stdout.decode(), "body 0", "and fetches message 1")
if p.returncode != 0:
    t.diag(p.stderr.decode())

# ---- a disabled account ----
t.is_(srv.gannet("config", "account", "disable", "alice", "moved to another provider").returncode, 0,
      "alice disabled")
c = Conn("a")
t.like(c.greeting, "* OK", "key A of a disabled account: no PREAUTH")
r = c.cmd("e AUTHENTICATE EXTERNAL =")[-1]
t.like(r, "e NO", "EXTERNAL for a disabled account: NO")
t.like(r, "moved to another provider", "with the account's message")
c.close()

t.done()
