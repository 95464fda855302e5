#!/usr/bin/env python3
"""
t/integration/125-sasl.t: the core's SASL server (gannet/sasl.h) over real
sockets, through the test module t/modules/sasltest (an IMAP-like framing
of AUTHENTICATE), with independent clients:

- GNU SASL's `gsasl --imap` (its own TLS, STARTTLS, channel bindings):
  SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with tls-exporter on TLS 1.3 and
  tls-unique on TLS 1.2, SCRAM, PLAIN, LOGIN, CRAM-MD5 after the opt-in;
  wrong passwords fail;
- a SCRAM client written here with Python's hashlib/hmac, which checks the
  server's nonce, salt, iterations and signature itself, with -PLUS over
  Python's ssl (tls-unique, TLS 1.2);
- EXTERNAL with a client certificate made by openssl and registered with
  `gannet config tlspubkey add`;
- which mechanisms a connection is offered (no PLAIN/LOGIN without TLS, no
  -PLUS without TLS, EXTERNAL only with a client certificate, CRAM-MD5 only
  once an account can use it), failures in IMAP and SMTP terms, and the
  attempt records.
"""
import base64
import hashlib
import hmac
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "sasltest", ".libs", "sasltest.so")
if not os.path.exists(MODULE):
    t.ok(False, "the test module is built (%s)" % MODULE)
    t.done()
GSASL = shutil.which("gsasl")
t.ok(GSASL is not None, "gsasl is installed (Debian package gsasl, in quickstart's list)")

moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "sasltest.so"))
os.chmod(os.path.join(moddir, "sasltest.so"), 0o755)
d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
client_cert, client_key = gt.make_cert(d, "client", "laptop")
other_cert, other_key = gt.make_cert(d, "other", "stranger")

p_st, p_imp, p_clear = gt.free_port(), gt.free_port(), gt.free_port()
listeners = ", ".join([
    '{ name = "st"; address = "127.0.0.1"; port = %d; protocol = "sasl-test"; tls = "starttls"; }' % p_st,
    '{ name = "imp"; address = "127.0.0.1"; port = %d; protocol = "sasl-test"; tls = "implicit"; }' % p_imp,
    '{ name = "clear"; address = "127.0.0.1"; port = %d; protocol = "sasl-test-cleartext"; }' % p_clear,
])
# Many failures come from 127.0.0.1 here on purpose: the limiter's own
# tests are in t/unit/test_auth.c.
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
         'auth = { failures_per_minute = 10000; failures_per_minute_net = 10000; '
         'failures_per_minute_wide = 10000; failures_per_day = 10000; '
         'failures_per_day_net = 10000; failures_per_day_wide = 10000; };') % (cert, key)
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "sasltest" ];' % moddir))


def cli(args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + args, input=stdin)
    if r.returncode != 0:
        t.diag("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


PW = "correct horse battery"
t.is_(cli(["migrate"]).returncode, 0, "migrate")
cli(["config", "domain", "add", "example.org"])
cli(["config", "account", "add", "mjl", "mjl@example.org"])
cli(["config", "account", "add", "kim", "kim@example.org"])
t.is_(cli(["setpassword", "mjl"], PW + "\n").returncode, 0, "mjl's password set")
cli(["setpassword", "kim"], "kim's password\n")
try:
    g.start(wait_ports=(p_st, p_imp, p_clear))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()


def sql(q):
    return gt.cluster().psql(q, g.dbname)


class Conn:
    def __init__(self, port, implicit=False, cert=None, key=None, tls12=False):
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock = self.raw
        self.buf = b""
        if implicit:
            self.tls(cert, key, tls12)
        self.greeting = self.line()

    def tls(self, cert=None, key=None, tls12=False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(cert, key)
        self.sock = ctx.wrap_socket(self.raw, server_hostname="mail.test")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().rstrip("\r")

    def send(self, s):
        self.sock.sendall(s.encode() + b"\r\n")

    def cmd(self, s):
        self.send(s)
        return self.line()

    def mechs(self):
        caps = self.cmd("c CAPABILITY")
        self.line()
        return [w[5:] for w in caps.split() if w.startswith("AUTH=")]

    def close(self):
        try:
            self.send("z LOGOUT")
        except OSError:
            pass
        self.sock.close()


def b64(b):
    return base64.b64encode(b).decode()


# ---- which mechanisms, where ----
c = Conn(p_clear)
t.is_(c.mechs(), ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN"],
      "cleartext allowed, no TLS: SCRAM, PLAIN, LOGIN; no -PLUS, no EXTERNAL, no CRAM-MD5")
c.close()
c = Conn(p_st)
t.is_(c.mechs(), ["SCRAM-SHA-256", "SCRAM-SHA-1"], "before STARTTLS: SCRAM only")
r = c.cmd("a AUTHENTICATE PLAIN " + b64(b"\0mjl@example.org\0" + PW.encode()))
t.like(r, "a NO [PRIVACYREQUIRED] failure=encryption smtp=538/5.7.11",
       "PLAIN before STARTTLS: NO [PRIVACYREQUIRED] / SMTP 538 5.7.11")
t.like(c.cmd("a AUTHENTICATE SCRAM-SHA-256-PLUS"), "failure=mechanism smtp=504/5.5.4",
       "-PLUS without TLS: mechanism not offered (504 5.5.4)")
t.like(c.cmd("a AUTHENTICATE EXTERNAL ="), "failure=encryption", "EXTERNAL without TLS: needs TLS")
t.is_(c.cmd("s STARTTLS"), "s OK begin TLS", "STARTTLS")
c.tls()
t.is_(c.mechs(), ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
                  "PLAIN", "LOGIN"], "after STARTTLS: -PLUS, PLAIN and LOGIN too")
c.close()
c = Conn(p_imp, implicit=True, cert=client_cert, key=client_key)
t.is_(c.mechs()[0], "EXTERNAL", "with a client certificate: EXTERNAL, listed first")
c.close()


# ---- gsasl ----
def gsasl(mech, user="mjl@example.org", password=PW, port=None, tls12=False, authzid=None,
          no_cb=False):
    args = [GSASL, "--imap", "--connect=127.0.0.1:%d" % (port or p_st), "-m", mech,
            "-a", user, "-p", password, "--x509-ca-file=", "--quiet"]
    if no_cb:
        args.append("--no-cb")
    if tls12:
        args.append("--priority=NORMAL:-VERS-TLS1.3")
    if authzid:
        args += ["-z", authzid]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, ""
    return r.returncode, r.stdout + r.stderr


if GSASL:
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        # RFC 5802 6: a client that could bind but does not ("y") while
        # the server offered -PLUS is being downgraded: refused.
        rc, out = gsasl(mech)
        t.ok(rc != 0, "gsasl %s over TLS, able to bind but not binding (\"y\"): refused "
             "as a downgrade" % mech)
    for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1",
                 "PLAIN", "LOGIN"):
        rc, out = gsasl(mech, no_cb=not mech.endswith("-PLUS"))
        t.is_(rc, 0, "gsasl %s over STARTTLS (TLS 1.3): authenticated" % mech)
        if rc != 0:
            t.diag(out[-1500:])
        rc, out = gsasl(mech, password="not the password")
        t.ok(rc != 0, "gsasl %s with a wrong password: refused" % mech)
    for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
        rc, out = gsasl(mech, tls12=True)
        t.is_(rc, 0, "gsasl %s over TLS 1.2 (tls-unique): authenticated" % mech)
        if rc != 0:
            t.diag(out[-1500:])
    rc, out = gsasl("SCRAM-SHA-256", user="nobody@example.org")
    t.ok(rc != 0, "gsasl SCRAM-SHA-256 for an unknown user: refused")
    rc, out = gsasl("PLAIN", authzid="kim@example.org")
    t.ok(rc != 0 and "AUTHORIZATIONFAILED" in out,
         "gsasl PLAIN asking for another account's identity: AUTHORIZATIONFAILED")
    # CRAM-MD5: not offered until an account has its state.
    rc, out = gsasl("CRAM-MD5")
    t.ok(rc != 0, "gsasl CRAM-MD5 before any opt-in: refused")
    r = cli(["config", "account", "cram-md5", "mjl", "on"])
    t.like(r.stdout, "next password set", "cram-md5 on says the state comes with the next password")
    cli(["setpassword", "mjl"], PW + "\n")
    c = Conn(p_clear)
    t.ok("CRAM-MD5" in c.mechs(), "CRAM-MD5 offered once an account has its state")
    c.close()
    rc, out = gsasl("CRAM-MD5")
    t.is_(rc, 0, "gsasl CRAM-MD5 after the opt-in: authenticated")
    if rc != 0:
        t.diag(out[-1500:])
    rc, out = gsasl("CRAM-MD5", user="kim@example.org", password="kim's password")
    t.ok(rc != 0, "gsasl CRAM-MD5 for an account that did not opt in: refused")
    cli(["config", "account", "cram-md5", "mjl", "off"])
    rc, out = gsasl("CRAM-MD5")
    t.ok(rc != 0, "gsasl CRAM-MD5 after the opt-out: refused")


# ---- SCRAM with a client of our own ----
def scram(conn, mech, user, password, cb_type=None, cb_data=b""):
    """Runs SCRAM-* over conn; returns (tagged reply, checks dict)."""
    digest = "sha256" if "256" in mech else "sha1"
    gs2 = ("p=%s,," % cb_type) if cb_type else "n,,"
    cnonce = b64(os.urandom(18))
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
    conn.send("s AUTHENTICATE %s %s" % (mech, b64((gs2 + bare).encode())))
    line = conn.line()
    if not line.startswith("+ "):
        return line, {}
    first = base64.b64decode(line[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in first.split(","))
    checks = {"nonce extends ours": attrs["r"].startswith(cnonce) and len(attrs["r"]) > len(cnonce),
              "iterations": int(attrs["i"])}
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored = hashlib.new(digest, client_key).digest()
    without = "c=%s,r=%s" % (b64(gs2.encode() + cb_data), attrs["r"])
    auth_message = ",".join([bare, first, without]).encode()
    sig = hmac.new(stored, auth_message, digest).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    conn.send(b64((without + ",p=" + b64(proof)).encode()))
    line = conn.line()
    if not line.startswith("+ "):
        return line, checks
    final = base64.b64decode(line[2:]).decode()
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    checks["server signature"] = final == "v=" + b64(hmac.new(server_key, auth_message, digest).digest())
    conn.send("")
    return conn.line(), checks


c = Conn(p_clear)
r, checks = scram(c, "SCRAM-SHA-256", "mjl@example.org", PW)
t.like(r, "s OK [AUTHENTICATED] mjl mjl@example.org SCRAM-SHA-256",
       "own SCRAM-SHA-256 client over plain TCP: authenticated")
t.ok(checks.get("nonce extends ours"), "the server nonce extends the client's (RFC 5802 5.1)")
t.is_(checks.get("iterations"), 4096, "4096 iterations for SCRAM-SHA-256")
t.ok(checks.get("server signature"), "the server's signature proves it knows the keys")
r, checks = scram(c, "SCRAM-SHA-1", "mjl@example.org", PW)
t.like(r, "s OK [AUTHENTICATED]", "own SCRAM-SHA-1 client: authenticated")
t.is_(checks.get("iterations"), 8192, "8192 iterations for SCRAM-SHA-1")
r, _ = scram(c, "SCRAM-SHA-256", "mjl@example.org", "wrong password")
t.like(r, "s NO [AUTHENTICATIONFAILED] failure=credentials smtp=535/5.7.8",
       "wrong password: NO [AUTHENTICATIONFAILED] / SMTP 535 5.7.8")
t.like(c.cmd("w WHOAMI"), "* WHOAMI mjl mjl@example.org", "the earlier success stays the session's")
c.line()
aborted = sql("SELECT coalesce(sum(count), 0) FROM gn_auth_attempts WHERE result = 'aborted'")
c.send("x AUTHENTICATE SCRAM-SHA-256")
t.is_(c.line(), "+ ", "SCRAM without an initial response: an empty challenge")
t.like(c.cmd("*"), "x BAD failure=cancelled smtp=501/", "\"*\" cancels: BAD / SMTP 501")
t.like(c.cmd("x AUTHENTICATE PLAIN !!!!"), "x BAD failure=malformed smtp=501/5.5.2",
       "bad base64: BAD / SMTP 501 5.5.2")
c.close()

# -PLUS over TLS 1.2 with Python's tls-unique.
c = Conn(p_imp, implicit=True, tls12=True)
cb = c.sock.get_channel_binding("tls-unique")
t.ok(cb is not None and c.sock.version() == "TLSv1.2", "TLS 1.2 with a tls-unique binding")
r, checks = scram(c, "SCRAM-SHA-256-PLUS", "mjl@example.org", PW, "tls-unique", cb)
t.like(r, "s OK [AUTHENTICATED] mjl mjl@example.org SCRAM-SHA-256-PLUS",
       "own SCRAM-SHA-256-PLUS client with tls-unique: authenticated")
t.ok(checks.get("server signature"), "and the server signature checks")
r, _ = scram(c, "SCRAM-SHA-256-PLUS", "mjl@example.org", PW, "tls-unique", b"\0" * len(cb))
t.like(r, "failure=credentials", "-PLUS with another channel's binding: refused")
r, _ = scram(c, "SCRAM-SHA-256-PLUS", "mjl@example.org", PW, "tls-exporter", cb)
t.like(r, "failure=credentials", "-PLUS with tls-exporter on TLS 1.2: refused (not this channel's type)")
c.close()

# ---- EXTERNAL ----
with open(client_cert) as f:
    r = cli(["config", "tlspubkey", "add", "mjl@example.org"], f.read())
t.is_(r.returncode, 0, "the client certificate's key registered for mjl@example.org")
c = Conn(p_imp, implicit=True, cert=client_cert, key=client_key)
t.like(c.cmd("e AUTHENTICATE EXTERNAL ="), "e OK [AUTHENTICATED] mjl mjl@example.org EXTERNAL",
       "EXTERNAL with the registered key, empty authzid: logged in as the key's address")
t.like(c.cmd("e AUTHENTICATE EXTERNAL " + b64(b"kim@example.org")), "e NO [AUTHORIZATIONFAILED]",
       "EXTERNAL asking for another account: AUTHORIZATIONFAILED")
c.send("e AUTHENTICATE EXTERNAL")
t.is_(c.line(), "+ ", "EXTERNAL without an initial response: an empty challenge")
t.like(c.cmd(""), "e OK [AUTHENTICATED] mjl", "an empty response: logged in")
t.like(c.cmd("e AUTHENTICATE PLAIN " + b64(b"\0kim@example.org\0kim's password")),
       "e NO [AUTHENTICATIONFAILED]",
       "another mechanism with a registered certificate: kim's right password refused (mjl's key)")
t.like(c.cmd("e AUTHENTICATE PLAIN " + b64(b"\0mjl@example.org\0" + PW.encode())),
       "e OK [AUTHENTICATED] mjl mjl@example.org PLAIN",
       "and the key's own account by password: logged in")
c.close()
c = Conn(p_imp, implicit=True, cert=other_cert, key=other_key)
t.like(c.cmd("e AUTHENTICATE EXTERNAL ="), "e NO [AUTHENTICATIONFAILED]",
       "EXTERNAL with an unregistered key: AUTHENTICATIONFAILED")
c.close()
c = Conn(p_imp, implicit=True)
t.ok("EXTERNAL" not in c.mechs(), "no client certificate: no EXTERNAL")
t.like(c.cmd("e AUTHENTICATE EXTERNAL ="), "e NO [AUTHENTICATIONFAILED]",
       "EXTERNAL without a certificate: AUTHENTICATIONFAILED")
c.close()

# ---- records ----
rows = sql("SELECT string_agg(DISTINCT mechanism, ' ' ORDER BY mechanism) FROM gn_auth_attempts "
           "WHERE protocol = 'sasltest' AND result = 'ok'")
want = ["external", "plain", "scram-sha-1", "scram-sha-256", "scram-sha-256-plus"]
if GSASL:
    want += ["cram-md5", "login", "scram-sha-1-plus"]
t.is_(rows.split(), sorted(want), "successful attempts recorded with protocol and mechanism")
t.is_(sql("SELECT count(*) > 0 FROM gn_auth_attempts WHERE protocol = 'sasltest' "
          "AND result = 'badchanbind' AND host(remote_ip) = '127.0.0.1'"), "t",
      "a bad channel binding is recorded as badchanbind, with the client IP")
t.is_(int(sql("SELECT coalesce(sum(count), 0) FROM gn_auth_attempts WHERE result = 'aborted'")),
      int(aborted) + 1, "the cancelled exchange is recorded as aborted")
t.is_(g.stop(), 0, "gannet stops cleanly")
t.done()
