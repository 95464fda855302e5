#!/usr/bin/env python3
"""
AUTHENTICATE through the imap module (issue 8, item 2) with real SASL
clients, on a STARTTLS listener (143's kind) and an implicit-TLS one
(993's kind):

- GNU SASL's `gsasl --imap`: PLAIN, SCRAM-SHA-1, SCRAM-SHA-256, their
  -PLUS forms with channel binding (tls-exporter on TLS 1.3, tls-unique on
  TLS 1.2), CRAM-MD5 only once the account opted in (not offered before,
  refused for an account that did not), EXTERNAL with a client
  certificate registered by `gannet config tlspubkey add`; wrong
  passwords refused.  gsasl has no implicit TLS of its own: on the
  implicit-TLS port it connects to a relay here that carries its bytes
  over a TLS connection (with the client certificate for EXTERNAL);
  -PLUS there is run by a SCRAM client written here over TLS 1.2
  (tls-unique), checking the server's signature;
- no AUTH=LOGIN (IMAP has its LOGIN command; mox.md 10);
- Python's imaplib: SASL-IR (the initial response on the AUTHENTICATE
  line), a wrong password NO [AUTHENTICATIONFAILED], the client's cancel
  ("*") BAD, a response or an initial response over the SASL limit
  BAD [TOOBIG] with the session going on, a line over the input buffer
  BYE; before STARTTLS LOGINDISABLED and no cleartext mechanism (PLAIN,
  EXTERNAL, -PLUS), LOGIN and AUTHENTICATE PLAIN NO [PRIVACYREQUIRED];
- each attempt recorded in gn_auth_attempts (core/db/schema/004_auth.sql,
  results from 006_auth_sasl.sql) with protocol "imap", its mechanism,
  the login, the client's address and the result;
- a disabled account: NO [CONTACTADMIN] with its message for LOGIN,
  PLAIN and SCRAM with the right password, a wrong one told nothing;
- the failed-login limiter: after the failures a minute allowed, even the
  right password gets NO [UNAVAILABLE], recorded as ratelimited.
"""
import base64
import hashlib
import hmac
import imaplib
import os
import re
import shutil
import select
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402

t = gt.Tap()
GSASL = shutil.which("gsasl")
t.ok(GSASL is not None, "gsasl is installed (Debian package gsasl, in t/tools)")
if GSASL is None:
    t.done()

# Many failures come from 127.0.0.1 on purpose: the limiter has its own
# tests (t/unit/test_auth.c, 160-imap-session.t).
LIMITS = ("auth = { failures_per_minute = 10000; failures_per_minute_net = 10000; "
          "failures_per_minute_wide = 10000; failures_per_day = 10000; "
          "failures_per_day_net = 10000; failures_per_day_wide = 10000; };")
srv = imaptest.Server(t, starttls=True, extra=LIMITS)
PW = imaptest.PASSWORD
t.ok(srv.setup(1), "account alice with a message")
t.is_(srv.gannet("config", "account", "add", "bob", "bob@example.com").returncode, 0, "account bob")
BOBPW = "bob's password 1"
t.is_(srv.gannet("setpassword", "bob", stdin=BOBPW + "\n").returncode, 0, "bob's password")
ccert, ckey = gt.make_cert(srv.dir, "client", "laptop")
ocert, okey = gt.make_cert(srv.dir, "other", "stranger")
# --no-imap-preauth: the key allows EXTERNAL instead of greeting PREAUTH
# on the implicit-TLS port (169-imap-tlscert.t tests PREAUTH).
with open(ccert) as f:
    r = srv.gannet("config", "tlspubkey", "add", "--no-imap-preauth", "alice@example.com", "laptop",
                   stdin=f.read())
t.is_(r.returncode, 0, "the client certificate's key registered for alice (no IMAP preauth)")
srv.start()
ST, IMP = srv.port_starttls, srv.port


def sql(q):
    return srv.sql(q).strip()


def attempts(where):
    return int(sql("SELECT coalesce(sum(count), 0) FROM gn_auth_attempts WHERE protocol = 'imap' AND "
                   + where) or 0)


def tls_context(cert=None, key=None, tls12=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def gsasl_args(mech, user, password, authzid):
    args = [GSASL, "--imap", "-m", mech, "--quiet"]
    if user is not None:
        args += ["-a", user]
    if password is not None:
        args += ["-p", password]
    if authzid is not None:
        args += ["-z", authzid]
    return args


def gsasl_starttls(mech, user="alice@example.com", password=PW, tls12=False, cb=True, cert=None,
                   authzid=None):
    """gsasl on the STARTTLS port (its own STARTTLS); returns (exit code, output)."""
    args = gsasl_args(mech, user, password, authzid) + ["--connect=127.0.0.1:%d" % ST, "--starttls",
                                                        "--x509-ca-file="]
    if not cb:
        args.append("--no-cb")
    if tls12:
        args.append("--priority=NORMAL:-VERS-TLS1.3")
    if cert:
        args += ["--x509-cert-file=" + cert[0], "--x509-key-file=" + cert[1]]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, "timeout"
    return r.returncode, r.stdout + r.stderr


def gsasl_implicit(mech, user="alice@example.com", password=PW, cert=None, authzid=None):
    """gsasl on the implicit-TLS port, which it cannot reach itself (it
    has STARTTLS only): it connects to a relay here that carries its
    bytes as they are over a TLS connection (with a client certificate
    when cert).  Returns (exit code, what the server said)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    heard = []

    def relay():
        # One thread for both directions: an SSL socket read in one thread
        # and written in another at the same time is not safe (TLS 1.3
        # reads can write), which made this relay fail now and then.
        lsock.settimeout(30)
        try:
            client, _ = lsock.accept()
        except OSError:
            return
        raw = socket.create_connection(("127.0.0.1", IMP), timeout=30)
        server = tls_context(*(cert or (None, None))).wrap_socket(raw, server_hostname="mail.test")
        try:
            open_ = True
            while open_:
                ready = [server] if server.pending() else \
                    select.select([client, server], [], [], 30)[0]
                if not ready:
                    break
                for src in ready:
                    d = src.recv(4096)
                    if not d:
                        open_ = False
                        break
                    if src is server:
                        heard.append(d)
                        client.sendall(d)
                    else:
                        server.sendall(d)
        except OSError:
            pass
        client.close()
        server.close()

    th = threading.Thread(target=relay, daemon=True)
    th.start()
    args = gsasl_args(mech, user, password, authzid) + [
        "--connect=127.0.0.1:%d" % lsock.getsockname()[1], "--no-starttls"]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        rc = 124
    th.join(30)
    lsock.close()
    return rc, b"".join(heard).decode(errors="replace")


def ok_or_diag(rc, out, name):
    t.is_(rc, 0, name)
    if rc != 0:
        t.diag(out[-1500:])


def b64(b):
    return base64.b64encode(b).decode()


def caps_of(m):
    return set(m.capabilities)


# ---- what each port offers ----
m = imaplib.IMAP4("127.0.0.1", ST)
c = caps_of(m)
t.ok("STARTTLS" in c and "LOGINDISABLED" in c, "before STARTTLS: STARTTLS and LOGINDISABLED")
t.is_(sorted(x for x in c if x.startswith("AUTH=")), ["AUTH=SCRAM-SHA-1", "AUTH=SCRAM-SHA-256"],
      "before STARTTLS: only SCRAM (no PLAIN, no -PLUS, no EXTERNAL, no CRAM-MD5 before an opt-in)")
try:
    m.login("alice@example.com", PW)
    t.ok(False, "LOGIN before STARTTLS is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[PRIVACYREQUIRED]", "LOGIN before STARTTLS: NO [PRIVACYREQUIRED]")
typ, data = imaptest.cmd(m, "AUTHENTICATE", "PLAIN", b64(b"\0alice@example.com\0" + PW.encode()))
t.ok(typ == "NO" and b"[PRIVACYREQUIRED]" in data[-1],
     "AUTHENTICATE PLAIN before STARTTLS: NO [PRIVACYREQUIRED] (%s %s)" % (typ, data))
typ, data = imaptest.cmd(m, "AUTHENTICATE", "EXTERNAL", "=")
t.ok(typ == "NO" and b"[PRIVACYREQUIRED]" in data[-1], "AUTHENTICATE EXTERNAL before STARTTLS: "
     "NO [PRIVACYREQUIRED] (%s %s)" % (typ, data))
typ, data = imaptest.cmd(m, "AUTHENTICATE", "SCRAM-SHA-256-PLUS")
t.is_(typ, "NO", "AUTHENTICATE SCRAM-SHA-256-PLUS before STARTTLS: NO (not offered without TLS)")
m.starttls(ssl_context=tls_context())
c = caps_of(m)
t.ok("LOGINDISABLED" not in c and "STARTTLS" not in c, "after STARTTLS: no LOGINDISABLED, no STARTTLS")
t.is_(sorted(x for x in c if x.startswith("AUTH=")),
      ["AUTH=PLAIN", "AUTH=SCRAM-SHA-1", "AUTH=SCRAM-SHA-1-PLUS", "AUTH=SCRAM-SHA-256",
       "AUTH=SCRAM-SHA-256-PLUS"],
      "after STARTTLS: PLAIN, SCRAM and -PLUS; no AUTH=LOGIN (the LOGIN command), no EXTERNAL "
      "without a certificate")
m.logout()
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context(ccert, ckey))
t.ok("AUTH=EXTERNAL" in caps_of(m), "implicit TLS with a client certificate: AUTH=EXTERNAL")
m.logout()

# ---- gsasl over STARTTLS ----
for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
    plus = mech.endswith("-PLUS")
    rc, out = gsasl_starttls(mech, cb=plus)
    ok_or_diag(rc, out, "gsasl %s after STARTTLS (TLS 1.3%s): authenticated"
               % (mech, ", tls-exporter" if plus else ""))
    rc, out = gsasl_starttls(mech, password="not the password", cb=plus)
    t.ok(rc != 0, "gsasl %s after STARTTLS with a wrong password: refused" % mech)
for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
    rc, out = gsasl_starttls(mech, tls12=True)
    ok_or_diag(rc, out, "gsasl %s after STARTTLS on TLS 1.2 (tls-unique): authenticated" % mech)
rc, out = gsasl_starttls("LOGIN")
t.ok(rc != 0, "gsasl LOGIN (the SASL mechanism): not offered in IMAP, refused")
rc, out = gsasl_starttls("PLAIN", authzid="bob@example.com")
t.ok(rc != 0 and "AUTHORIZATIONFAILED" in out,
     "gsasl PLAIN asking for another account's identity: NO [AUTHORIZATIONFAILED]")
rc, out = gsasl_starttls("EXTERNAL", user=None, password=None, cert=(ccert, ckey), authzid="")
ok_or_diag(rc, out, "gsasl EXTERNAL after STARTTLS with the registered certificate: authenticated")
rc, out = gsasl_starttls("EXTERNAL", user=None, password=None, cert=(ocert, okey), authzid="")
t.ok(rc != 0, "gsasl EXTERNAL after STARTTLS with an unregistered certificate: refused")
rc, out = gsasl_starttls("EXTERNAL", user=None, password=None, authzid="")
t.ok(rc != 0, "gsasl EXTERNAL after STARTTLS without a certificate: refused")

# ---- gsasl over implicit TLS ----
for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
    rc, out = gsasl_implicit(mech)
    ok_or_diag(rc, out, "gsasl %s on implicit TLS: authenticated" % mech)
    t.ok(re.search(r"^\S+ OK \[CAPABILITY IMAP4rev2 ", out, re.M) is not None,
         "and its tagged OK carries the new capabilities")
    rc, out = gsasl_implicit(mech, password="not the password")
    t.ok(rc != 0 and "NO [AUTHENTICATIONFAILED]" in out,
         "gsasl %s on implicit TLS, a wrong password: NO [AUTHENTICATIONFAILED]" % mech)
rc, out = gsasl_implicit("EXTERNAL", user=None, password=None, cert=(ccert, ckey), authzid="")
ok_or_diag(rc, out, "gsasl EXTERNAL on implicit TLS with the registered certificate: authenticated")
rc, out = gsasl_implicit("EXTERNAL", user=None, password=None, cert=(ccert, ckey),
                         authzid="bob@example.com")
t.ok(rc != 0 and "NO [AUTHORIZATIONFAILED]" in out,
     "gsasl EXTERNAL asking to be bob with alice's key: NO [AUTHORIZATIONFAILED]")
rc, out = gsasl_implicit("PLAIN", user="bob@example.com", password=BOBPW, cert=(ccert, ckey))
t.ok(rc != 0 and "NO [AUTHENTICATIONFAILED]" in out,
     "gsasl PLAIN as bob with his right password over alice's certificate: refused")
rc, out = gsasl_implicit("EXTERNAL", user=None, password=None, cert=(ocert, okey), authzid="")
t.ok(rc != 0, "gsasl EXTERNAL on implicit TLS with an unregistered certificate: refused")


class Scram:
    """A SCRAM client of our own, for -PLUS over Python's TLS (tls-unique
    on TLS 1.2: Python has no tls-exporter) and for imaplib."""

    def __init__(self, mech, user, password, cb_type=None, cb_data=b"", gs2=None):
        self.digest = "sha256" if "256" in mech else "sha1"
        self.user, self.password = user, password
        self.gs2 = gs2 or (("p=%s,," % cb_type) if cb_type else "n,,")
        self.cb_data = cb_data
        self.nonce = b64(os.urandom(18))
        self.step = 0
        self.server_ok = False

    def first(self):
        self.bare = "n=%s,r=%s" % (self.user, self.nonce)
        return (self.gs2 + self.bare).encode()

    def __call__(self, challenge):
        if self.step == 0:
            self.step = 1
            return self.first()
        if self.step == 1:
            self.step = 2
            sf = challenge.decode()
            attrs = dict(kv.split("=", 1) for kv in sf.split(","))
            d = self.digest
            salted = hashlib.pbkdf2_hmac(d, self.password.encode(), base64.b64decode(attrs["s"]),
                                         int(attrs["i"]))
            ckey_ = hmac.new(salted, b"Client Key", d).digest()
            stored = hashlib.new(d, ckey_).digest()
            without = "c=%s,r=%s" % (b64(self.gs2.encode() + self.cb_data), attrs["r"])
            auth = ",".join([self.bare, sf, without]).encode()
            proof = bytes(a ^ b for a, b in zip(ckey_, hmac.new(stored, auth, d).digest()))
            skey = hmac.new(salted, b"Server Key", d).digest()
            self.expect = "v=" + b64(hmac.new(skey, auth, d).digest())
            return (without + ",p=" + b64(proof)).encode()
        self.server_ok = challenge.decode() == self.expect
        return b""


for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
    m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context(tls12=True))
    cb = m.sock.get_channel_binding("tls-unique")
    s = Scram(mech, "alice@example.com", PW, "tls-unique", cb)
    typ, _ = m.authenticate(mech, s)
    t.ok(typ == "OK" and s.server_ok, "%s on implicit TLS 1.2 with tls-unique: authenticated, the "
         "server's signature checks" % mech)
    m.logout()
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context(tls12=True))
cb = m.sock.get_channel_binding("tls-unique")
try:
    m.authenticate("SCRAM-SHA-256-PLUS", Scram("SCRAM-SHA-256-PLUS", "alice@example.com", PW,
                                               "tls-unique", b"\0" * len(cb)))
    t.ok(False, "-PLUS with another channel's binding is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[AUTHENTICATIONFAILED]", "-PLUS with another channel's binding: NO "
           "[AUTHENTICATIONFAILED]")
# RFC 5802 6: a client able to bind that says "y" (it thinks the server
# cannot) while -PLUS was offered is being downgraded.
try:
    m.authenticate("SCRAM-SHA-256", Scram("SCRAM-SHA-256", "alice@example.com", PW, gs2="y,,"))
    t.ok(False, "SCRAM-SHA-256 with \"y\" over TLS is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[AUTHENTICATIONFAILED]", "SCRAM-SHA-256 with \"y\" while -PLUS was offered: "
           "NO [AUTHENTICATIONFAILED] (a downgrade)")
m.logout()

# ---- CRAM-MD5: per account, opt-in ----
rc, out = gsasl_starttls("CRAM-MD5")
t.ok(rc != 0, "gsasl CRAM-MD5 before any account opted in: refused")
r = srv.gannet("config", "account", "cram-md5", "alice", "on")
t.is_(r.returncode, 0, "gannet config account cram-md5 alice on")
t.is_(srv.gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0,
      "alice's password set again (the CRAM-MD5 state comes with it)")
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context())
t.ok("AUTH=CRAM-MD5" in caps_of(m), "AUTH=CRAM-MD5 offered once an account opted in")
typ, _ = m.login_cram_md5("alice@example.com", PW)
t.is_(typ, "OK", "imaplib login_cram_md5 as alice: authenticated")
m.logout()
rc, out = gsasl_starttls("CRAM-MD5")
ok_or_diag(rc, out, "gsasl CRAM-MD5 after STARTTLS, alice opted in: authenticated")
rc, out = gsasl_implicit("CRAM-MD5")
ok_or_diag(rc, out, "gsasl CRAM-MD5 on implicit TLS: authenticated")
rc, out = gsasl_implicit("CRAM-MD5", password="not the password")
t.ok(rc != 0 and "NO [AUTHENTICATIONFAILED]" in out, "gsasl CRAM-MD5, a wrong password: refused")
rc, out = gsasl_implicit("CRAM-MD5", user="bob@example.com", password=BOBPW)
t.ok(rc != 0 and "NO [AUTHENTICATIONFAILED]" in out,
     "gsasl CRAM-MD5 as bob, who did not opt in: refused")
t.is_(srv.gannet("config", "account", "cram-md5", "alice", "off").returncode, 0, "cram-md5 alice off")
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context())
t.ok("AUTH=CRAM-MD5" not in caps_of(m), "no AUTH=CRAM-MD5 once no account has it")
m.logout()
rc, out = gsasl_implicit("CRAM-MD5")
t.ok(rc != 0, "gsasl CRAM-MD5 after the opt-out: refused")

# ---- imaplib: SASL-IR, failures, cancel, limits ----
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context())
typ, data = imaptest.cmd(m, "AUTHENTICATE", "PLAIN", b64(b"\0alice@example.com\0" + PW.encode()))
t.ok(typ == "OK" and data[-1].startswith(b"[CAPABILITY IMAP4rev2"),
     "SASL-IR: AUTHENTICATE PLAIN with the initial response on its line: OK [CAPABILITY ...]")
m.state = "AUTH"
typ, data = m.select("INBOX")
t.is_((typ, data), ("OK", [b"1"]), "and the session is alice's (SELECT INBOX)")
m.logout()

m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context())
s = Scram("SCRAM-SHA-256", "alice@example.com", PW)
first = s.first()
s.step = 1
imaplib.Commands.setdefault("AUTHENTICATE", ("NONAUTH",))
tag = m._command("AUTHENTICATE", "SCRAM-SHA-256", b64(first))
line = m._get_line()
t.ok(line.startswith(b"+ "), "SASL-IR with SCRAM-SHA-256's first message: the server-first message")
m.send(b64(s(base64.b64decode(line[2:]))).encode() + b"\r\n")
line = m._get_line()
t.ok(line.startswith(b"+ "), "then the server's signature as a challenge")
m.send(b64(s(base64.b64decode(line[2:]))).encode() + b"\r\n")
typ, _ = m._command_complete("AUTHENTICATE", tag)
t.ok(typ == "OK" and s.server_ok, "SCRAM-SHA-256 with SASL-IR: authenticated, the server proved itself")
m.state = "AUTH"
m.logout()

before = attempts("mechanism = 'plain' AND result = 'badpassword' AND login = 'alice@example.com' "
                  "AND host(remote_ip) = '127.0.0.1'")
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context())
try:
    m.authenticate("PLAIN", lambda _: b"\0alice@example.com\0wrong password")
    t.ok(False, "AUTHENTICATE PLAIN with a wrong password is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[AUTHENTICATIONFAILED]", "AUTHENTICATE PLAIN, a wrong password: NO "
           "[AUTHENTICATIONFAILED]")
t.is_(attempts("mechanism = 'plain' AND result = 'badpassword' AND login = 'alice@example.com' "
               "AND host(remote_ip) = '127.0.0.1'"), before + 1,
      "recorded in gn_auth_attempts: protocol imap, mechanism plain, result badpassword, the "
      "login and the client's address")
t.is_(sql("SELECT count(*) FROM gn_auth_attempts a JOIN gn_accounts c ON c.id = a.account_id "
          "WHERE a.protocol = 'imap' AND a.mechanism = 'plain' AND a.result = 'badpassword' "
          "AND c.name = 'alice'"), "1", "with alice's account")
before_login = attempts("mechanism = 'login' AND result = 'badpassword'")
try:
    m.login("alice@example.com", "wrong password")
    t.ok(False, "LOGIN with a wrong password is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[AUTHENTICATIONFAILED]", "LOGIN, a wrong password: NO [AUTHENTICATIONFAILED]")
t.is_(attempts("mechanism = 'login' AND result = 'badpassword'"), before_login + 1,
      "recorded as mechanism login, result badpassword")
before_user = attempts("result = 'baduser' AND login = 'nobody@example.com' AND account_id IS NULL")
try:
    m.login("nobody@example.com", PW)
    t.ok(False, "LOGIN as an unknown user is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[AUTHENTICATIONFAILED]", "an unknown user: the same NO [AUTHENTICATIONFAILED]")
t.is_(attempts("result = 'baduser' AND login = 'nobody@example.com' AND account_id IS NULL"),
      before_user + 1, "recorded as baduser, without an account")

# The client cancels: "*" (RFC 9051 6.2.2) is answered BAD.
before = attempts("result = 'aborted'")
try:
    m.authenticate("PLAIN", lambda _: None)
    t.ok(False, "a cancelled AUTHENTICATE is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "AUTHENTICATE command error: BAD", "the client's \"*\": BAD")
t.is_(attempts("result = 'aborted'"), before + 1, "recorded as aborted")

# Limits: a decoded response of at most 8192 bytes (auth.sasl_max_response).
before = attempts("result = 'badprotocol'")
try:
    m.authenticate("PLAIN", lambda _: b"\0alice@example.com\0" + b"x" * 9000)
    t.ok(False, "a response over the limit is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "BAD [b'[TOOBIG]", "a response of 9 KB: BAD [TOOBIG]")
typ, data = imaptest.cmd(m, "AUTHENTICATE", "PLAIN", b64(b"\0alice@example.com\0" + b"x" * 9000))
t.ok(typ == "ERR" and "BAD [b'[TOOBIG]" in data[0], "an initial response of 9 KB: BAD [TOOBIG] (%s)" % data)
t.is_(attempts("result = 'badprotocol'"), before + 2, "both recorded as badprotocol")
typ, data = imaptest.cmd(m, "AUTHENTICATE", "PLAIN", "!!!!")
t.ok(typ == "ERR" and "BAD" in data[0], "an initial response that is not base64: BAD")
typ, _ = m.login("alice@example.com", PW)
t.is_(typ, "OK", "the session went on: LOGIN works after all that")
m.logout()

# A response line longer than the input buffer (64 KiB) ends the session.
raw = socket.create_connection(("127.0.0.1", IMP), timeout=20)
sock = tls_context().wrap_socket(raw, server_hostname="mail.test")
f = sock.makefile("rb")
f.readline()
sock.sendall(b"x AUTHENTICATE PLAIN\r\n")
t.is_(f.readline(), b"+ \r\n", "AUTHENTICATE PLAIN without an initial response: an empty challenge")
try:
    sock.sendall(b"A" * (70 * 1024) + b"\r\n")
except OSError:
    pass
t.like(f.readline().decode(), "* BYE", "a response line over 64 KiB: BYE")
t.is_(f.readline(), b"", "and the server closes the connection")
sock.close()

t.is_(sql("SELECT string_agg(DISTINCT mechanism, ' ' ORDER BY mechanism) FROM gn_auth_attempts "
          "WHERE protocol = 'imap' AND result = 'ok'").split(),
      ["cram-md5", "external", "login", "plain", "scram-sha-1", "scram-sha-1-plus", "scram-sha-256",
       "scram-sha-256-plus"],
      "successful attempts recorded with protocol imap and each mechanism (login: the LOGIN command)")
t.ok(attempts("result = 'badchanbind'") > 0, "a wrong channel binding recorded as badchanbind")
t.ok(attempts("mechanism = 'scram-sha-256' AND result = 'badchanbind'") > 0,
     "the downgrade (\"y\" while -PLUS was offered) recorded as badchanbind")
# ---- a disabled account: NO with its message, only to who knows the password ----
t.is_(srv.gannet("config", "account", "disable", "bob", "moved to another provider").returncode, 0,
      "bob disabled with a message")
m = imaplib.IMAP4_SSL("127.0.0.1", IMP, ssl_context=tls_context())
try:
    m.login("bob@example.com", BOBPW)
    t.ok(False, "LOGIN as a disabled account is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[CONTACTADMIN] moved to another provider",
           "LOGIN as bob, right password: NO [CONTACTADMIN] with the account's message")
try:
    m.login("bob@example.com", "not the password")
    t.ok(False, "LOGIN as a disabled account, wrong password, is refused")
except imaplib.IMAP4.error as e:
    t.ok("[AUTHENTICATIONFAILED]" in str(e) and "moved" not in str(e),
         "with a wrong password: NO [AUTHENTICATIONFAILED], the message not told (%s)" % e)
typ, data = imaptest.cmd(m, "AUTHENTICATE", "PLAIN", b64(b"\0bob@example.com\0" + BOBPW.encode()))
t.ok(typ == "NO" and data[-1].startswith(b"[CONTACTADMIN] ") and b"moved to another provider" in data[-1],
     "AUTHENTICATE PLAIN as bob: NO [CONTACTADMIN] with the message (%s %s)" % (typ, data))
m.logout()
rc, out = gsasl_implicit("SCRAM-SHA-256", user="bob@example.com", password=BOBPW)
t.ok(rc != 0 and re.search(r"NO \[CONTACTADMIN\] .*moved to another provider", out) is not None,
     "gsasl SCRAM-SHA-256 as bob: NO [CONTACTADMIN] with the message")
t.is_(attempts("result = 'logindisabled' AND login = 'bob@example.com'"), 3,
      "the three recorded as logindisabled")

log = srv.g.log()
t.ok(re.search(r"event=login_failed conn=\S+ ip=127\.0\.0\.1 mechanism=PLAIN reason=credentials", log),
     "the log names the mechanism of a failed AUTHENTICATE (PLAIN, wrong password)")
t.ok(re.search(r"event=login_failed conn=\S+ ip=127\.0\.0\.1 mechanism=SCRAM-SHA-256-PLUS "
               r"reason=credentials", log), "and of a failed SCRAM-SHA-256-PLUS")
t.ok(re.search(r"event=login_failed conn=\S+ ip=127\.0\.0\.1 mechanism=LOGIN reason=mechanism", log),
     "and of a mechanism not offered (gsasl's AUTHENTICATE LOGIN)")
t.is_(srv.g.stop(), 0, "gannet stops cleanly")

# ---- the failed-login limiter (gannet/auth.h) through IMAP ----
# A second server whose limits are low: after three failures from this
# address even the right password is refused, as a temporary failure.
srv = imaptest.Server(t, extra="auth = { failures_per_minute = 3; failures_per_minute_net = 3; "
                               "failures_per_minute_wide = 3; };")
t.ok(srv.setup(0), "a second server, three failures a minute allowed")
srv.start()
m = imaplib.IMAP4_SSL("127.0.0.1", srv.port, ssl_context=tls_context())
for i in range(3):
    try:
        m.login("alice@example.com", "wrong password %d" % i)
    except imaplib.IMAP4.error as e:
        t.like(str(e), "[AUTHENTICATIONFAILED]", "wrong password %d: NO [AUTHENTICATIONFAILED]" % (i + 1))
try:
    m.login("alice@example.com", PW)
    t.ok(False, "after three failures LOGIN is refused")
except imaplib.IMAP4.error as e:
    t.like(str(e), "[UNAVAILABLE]", "then LOGIN with the right password: NO [UNAVAILABLE] (rate limited)")
typ, data = imaptest.cmd(m, "AUTHENTICATE", "PLAIN", b64(b"\0alice@example.com\0" + PW.encode()))
t.ok(typ == "NO" and data[-1].startswith(b"[UNAVAILABLE]"),
     "and AUTHENTICATE PLAIN with it: NO [UNAVAILABLE] (%s %s)" % (typ, data))
m.logout()
t.is_(sql("SELECT string_agg(mechanism, ' ' ORDER BY mechanism) FROM gn_auth_attempts "
          "WHERE protocol = 'imap' AND result = 'ratelimited'"), "login plain",
      "both recorded as ratelimited")
t.is_(srv.g.stop(), 0, "the second server stops cleanly")
t.done()
