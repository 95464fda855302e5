#!/usr/bin/env python3
"""
t/integration/220-submission.t: the submission module (issue 9, item 1) in
a running `gannet serve` with the smtp and imap modules beside it, on 587
(STARTTLS) and 465 (implicit TLS), with Python's smtplib, gsasl --smtp,
swaks and curl:

- TLS first: before STARTTLS, EHLO offers no AUTH, and AUTH and MAIL get
  530 5.7.0; after it AUTH lists the core's SASL mechanisms;
- AUTH PLAIN and LOGIN (smtplib), SCRAM-SHA-256/-1 with and without -PLUS
  and CRAM-MD5 after the opt-in (gsasl); initial response, 334 challenges,
  "*" cancels (501 5.7.0, RFC 4954 6), wrong passwords 535 5.7.8, a second
  AUTH 503 5.5.1, an over-long line 500 5.5.2, the session's failure limit
  421 4.7.0; attempts recorded with protocol "submission";
- a registered client certificate logs in at the handshake (465, and after
  STARTTLS on 587): MAIL without AUTH; EXTERNAL offered first and working;
  AUTH as another account 535 5.7.8; curl --ssl-reqd with the certificate;
- MAIL FROM: without login 530 5.7.0; another account's 550 5.7.1; "<>"
  550 5.7.1; the account's other address and a catchall variant accepted;
- end of data: no From / two From / two mailboxes 550 5.6.0, another
  account's From 550 5.7.1, a duplicate extra key (either spelling) 554
  5.6.0; Date and Message-ID (with the host name) added when missing,
  extra data headers removed (the prepared message's shape is logged);
- FUTURERELEASE advertised with 60 days; HOLDFOR/HOLDUNTIL beyond 554 5.5.4,
  bad syntax and both at once 501 5.5.4;
- limits per day: messages and first-time recipients (451 4.7.1);
- the hand-over (modules/submission/enqueue.c): every message that passes
  all checks is queued, 250 2.0.0 after the commit (checks marked QUEUE;
  t/integration/222-submission-queue.t looks at what the queue holds).
"""
import base64
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "imap", "submission")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p587, p465, p25, p143 = gt.free_port(), gt.free_port(), gt.free_port(), gt.free_port()
listeners = ", ".join([
    '{ name = "sub"; address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }' % p587,
    '{ name = "subs"; address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "implicit"; }' % p465,
    '{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "starttls"; }' % p25,
    '{ name = "imap"; address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "starttls"; }' % p143,
])
# Many failures come from 127.0.0.1 on purpose: the core's limiter has its
# own tests.
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
         'auth = { failures_per_minute = 10000; failures_per_minute_net = 10000; '
         'failures_per_minute_wide = 10000; failures_per_day = 10000; '
         'failures_per_day_net = 10000; failures_per_day_wide = 10000; };\n'
         'submission = { auth_max_failures = 3; };\n') % (cert, key)
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "smtp", "imap", "submission" ];'
                           % moddir), directory=d)

PW = "alice's password 1"
PWB = "bob's password 1"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "address", "add", "alice2@example.com", "alice"),
         ("config", "account", "add", "bob", "bob@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "migrate, domain, accounts alice and bob")
t.is_(gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")
t.is_(gannet("setpassword", "bob", stdin=PWB + "\n").returncode, 0, "bob's password")
ccert, ckey = gt.make_cert(d, "client-a", "client a")
with open(ccert) as f:
    t.is_(gannet("config", "tlspubkey", "add", "alice@example.com", "key a", stdin=f.read()).returncode,
          0, "a client certificate registered for alice@example.com")
ucert, ukey = gt.make_cert(d, "client-u", "client u")

try:
    g.start(wait_ports=(p587, p465, p25, p143))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, imap and submission")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with smtp, imap and submission")


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


t.is_(sql("SELECT max(version) FROM gn_schema_migrations WHERE module = 'submission'"), "2",
      "the module's migrations are applied")

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def cert_ctx(c, k):
    x = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    x.check_hostname = False
    x.verify_mode = ssl.CERT_NONE
    x.load_cert_chain(c, k)
    return x


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, pw):
    return b64("\0%s\0%s" % (user, pw))


def sub587(tls=True, context=None):
    s = smtplib.SMTP("127.0.0.1", p587, timeout=30)
    s.ehlo("client.example.org")
    if tls:
        s.starttls(context=context or ctx)
        s.ehlo("client.example.org")
    return s


def sub465(context=None):
    s = smtplib.SMTP_SSL("127.0.0.1", p465, timeout=30, context=context or ctx)
    s.ehlo("client.example.org")
    return s


def reply(r):
    return "%d %s" % (r[0], r[1].decode(errors="replace"))


def close(s):
    try:
        s.quit()
    except (smtplib.SMTPException, OSError):
        pass


MSG = ("From: Alice <alice@example.com>\r\nTo: x@example.net\r\nSubject: hi\r\n"
       "\r\nHello.\r\n")


def transaction(s, frm, rcpts, msg, mail_opts=()):
    """MAIL, RCPTs, DATA; returns the reply to the first command that fails
    or to the end of data, as "code text"."""
    r = s.mail(frm, list(mail_opts))
    if r[0] != 250:
        return reply(r)
    for rc in rcpts:
        r = s.rcpt(rc)
        if r[0] != 250:
            return reply(r)
    r = s.data(msg.encode() if isinstance(msg, str) else msg)
    return reply(r)


QUEUE = "250 2.0.0 Message queued as "

# ---- alongside smtp and imap ----
with smtplib.SMTP("127.0.0.1", p25, timeout=20) as s:
    code, text = s.ehlo("client.example.org")
    t.ok(code == 250 and b"AUTH" not in text, "the smtp module answers on its port, without AUTH")
log_before = len(g.log())
with smtplib.SMTP("127.0.0.1", p25, timeout=20) as s:
    s.ehlo("client.example.org")
    s.starttls(context=cert_ctx(ccert, ckey))
    s.ehlo("client.example.org")
time.sleep(0.2)
tls = [ln for ln in g.log()[log_before:].splitlines() if "event=tls_established" in ln]
t.ok(len(tls) == 1 and "client_cert=no" in tls[0],
     "port 25 never asks for a client certificate (the client had one to give)")
with socket.create_connection(("127.0.0.1", p143), timeout=20) as c:
    t.like(c.recv(4096).decode(), "* OK", "the imap module greets on its port")

# ---- 587 before STARTTLS ----
s = sub587(tls=False)
t.ok(s.has_extn("starttls") and not s.has_extn("auth"), "587 cleartext: STARTTLS offered, AUTH not")
t.ok(s.has_extn("futurerelease"), "FUTURERELEASE offered")
t.like(s.esmtp_features.get("futurerelease", ""), "5184000 ", "with 60 days in seconds")
t.is_(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", PW))),
      "530 5.7.0 Must issue a STARTTLS command first", "AUTH before STARTTLS: 530 5.7.0")
t.is_(reply(s.docmd("MAIL", "FROM:<alice@example.com>")), "530 5.7.0 Must issue a STARTTLS command first",
      "MAIL before STARTTLS: 530 5.7.0")
close(s)

# ---- after STARTTLS ----
s = sub587()
mechs = s.esmtp_features.get("auth", "").split()
t.ok(mechs[:4] == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"],
     "after STARTTLS: AUTH offers SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS) first (%s)" % mechs)
t.ok("PLAIN" in mechs and "LOGIN" in mechs and "EXTERNAL" not in mechs and "CRAM-MD5" not in mechs,
     "PLAIN and LOGIN; no EXTERNAL without a certificate; no CRAM-MD5 before an opt-in")
t.is_(reply(s.docmd("MAIL", "FROM:<alice@example.com>")), "530 5.7.0 Authentication required",
      "MAIL without login: 530 5.7.0")
t.like(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", "wrong"))),
       "535 5.7.8 ", "AUTH PLAIN, wrong password: 535 5.7.8")
r = s.docmd("AUTH", "PLAIN")
t.is_(reply(r), "334 ", "AUTH PLAIN without initial response: 334 and an empty challenge")
t.like(reply(s.docmd("*")), "501 5.7.0", "\"*\" cancels: 501 5.7.0 (RFC 4954 6)")
r = s.docmd("AUTH", "PLAIN")
t.like(reply(s.docmd(plain("alice@example.com", PW))), "235 2.7.0",
       "AUTH PLAIN, the response after 334: 235 2.7.0")
t.is_(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", PW))),
      "503 5.5.1 Already authenticated", "a second AUTH: 503 5.5.1")
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG), QUEUE,
      "QUEUE: a message that passes every check: 250, queued")
close(s)

s = sub587()
s.user, s.password = "alice@example.com", PW
t.like(reply(s.auth("LOGIN", s.auth_login, initial_response_ok=False)), "235 2.7.0",
       "smtplib AUTH LOGIN: 235 2.7.0")
close(s)
s = sub587()
t.like(reply(s.docmd("AUTH", "LOGIN " + b64("alice@example.com"))), "334 UGFzc3dvcmQ6",
       "AUTH LOGIN with the user as initial response: 334 Password:")
t.like(reply(s.docmd(b64(PW))), "235 2.7.0", "then the password: 235 2.7.0")
close(s)

s = sub587()
t.like(reply(s.docmd("AUTH", "PLAIN " + "A" * 13000)), "500 5.5.2",
       "an AUTH line longer than 12288 octets: 500 5.5.2")
close(s)

s = sub587()
t.like(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", "w1"))), "535 5.7.8", "failure 1")
t.like(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", "w2"))), "535 5.7.8", "failure 2")
t.like(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", "w3"))), "421 4.7.0",
       "the 3rd failure in a session (auth_max_failures 3): 421 4.7.0")
try:
    r = s.docmd("NOOP")
    closed = r[0] == -1 or r[0] == 421
except (smtplib.SMTPServerDisconnected, OSError):
    closed = True
t.ok(closed, "and the connection is closed")
n = sql("SELECT sum(count) FROM gn_auth_attempts WHERE protocol = 'submission' AND mechanism = 'plain'")
t.ok(int(n) >= 6, "AUTH attempts are recorded with protocol submission (%s)" % n)

# ---- gsasl --smtp: SCRAM (-PLUS), CRAM-MD5 ----
GSASL = shutil.which("gsasl")
t.ok(GSASL is not None, "gsasl is installed")


def gsasl(mech, user="alice@example.com", password=PW, no_cb=False):
    args = [GSASL, "--smtp", "--connect=127.0.0.1:%d" % p587, "-m", mech, "-a", user,
            "-p", password, "--x509-ca-file=", "--quiet"]
    if no_cb:
        args.append("--no-cb")
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, ""
    return r.returncode, r.stdout + r.stderr


for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1"):
    rc, out = gsasl(mech, no_cb=not mech.endswith("-PLUS"))
    t.is_(rc, 0, "gsasl --smtp %s over STARTTLS: authenticated" % mech)
    if rc != 0:
        t.diag(out[-1000:])
    rc, out = gsasl(mech, password="not the password", no_cb=not mech.endswith("-PLUS"))
    t.ok(rc != 0 and "535" in out, "gsasl --smtp %s with a wrong password: 535" % mech)
rc, out = gsasl("CRAM-MD5")
t.ok(rc != 0, "CRAM-MD5 before any account opted in: refused")
gannet("config", "account", "cram-md5", "alice", "on")
gannet("setpassword", "alice", stdin=PW + "\n")
s = sub587()
t.ok("CRAM-MD5" in s.esmtp_features.get("auth", ""), "CRAM-MD5 offered once alice opted in")
close(s)
rc, out = gsasl("CRAM-MD5")
t.is_(rc, 0, "gsasl --smtp CRAM-MD5 for alice (opted in): authenticated")
if rc != 0:
    t.diag(out[-1000:])
rc, out = gsasl("CRAM-MD5", user="bob@example.com", password=PWB)
t.ok(rc != 0 and "535" in out, "CRAM-MD5 for bob (not opted in): 535")
gannet("config", "account", "cram-md5", "alice", "off")
n = sql("SELECT count(DISTINCT mechanism) FROM gn_auth_attempts WHERE protocol = 'submission' "
        "AND mechanism LIKE 'scram-sha-%' AND result = 'ok'")
t.is_(n, "4", "the SCRAM logins are recorded as submission attempts")

# ---- MAIL FROM ----
s = sub587()
s.login("alice@example.com", PW)
t.is_(reply(s.docmd("MAIL", "FROM:<bob@example.com>")), "550 5.7.1 Must match authenticated user",
      "MAIL FROM another account's address: 550 5.7.1")
t.like(reply(s.docmd("MAIL", "FROM:<nobody@example.com>")), "550 5.7.1",
       "MAIL FROM an unknown address: 550 5.7.1")
t.like(reply(s.docmd("MAIL", "FROM:<>")), "550 5.7.1", "MAIL FROM:<>: 550 5.7.1")
t.like(reply(s.docmd("MAIL", "FROM:<alice2@example.com>")), "250 2.1.0",
       "MAIL FROM the account's other address: 250")
s.rset()
t.like(reply(s.docmd("MAIL", "FROM:<ALICE+news@example.com>")), "250 2.1.0",
       "MAIL FROM a catchall variant in another case: 250 (compared as delivery finds it)")
s.rset()
t.like(reply(s.docmd("MAIL", "FROM:<alice@example.com> AUTH=<>")), "250",
       "MAIL FROM with AUTH=<> (RFC 4954 5): taken")
s.rset()
t.like(reply(s.docmd("RCPT", "TO:<x@example.net>")), "503", "RCPT before MAIL: 503")

# ---- end of data ----
cases = [
    ("To: x@example.net\r\nSubject: no from\r\n\r\nHi.\r\n", "550 5.6.0", "no From header"),
    ("From: alice@example.com\r\nFrom: alice2@example.com\r\n\r\nHi.\r\n", "550 5.6.0", "two From headers"),
    ("From: alice@example.com, alice2@example.com\r\n\r\nHi.\r\n", "550 5.6.0", "two addresses in From"),
    ("From: Bob <bob@example.com>\r\n\r\nHi.\r\n", "550 5.7.1", "From of another account"),
    ("From: alice@example.com\r\nX-Gannet-Extra-Foo: 1\r\nX-Mox-Extra-foo: 2\r\n\r\nHi.\r\n",
     "554 5.6.0", "the extra key Foo twice (X-Gannet-Extra-Foo, X-Mox-Extra-foo)"),
    ("From: alice@example.com\r\nX-Gannet-Extra-A: 1\r\nx-gannet-extra-a: 2\r\n\r\nHi.\r\n",
     "554 5.6.0", "the extra key A twice, in two cases"),
    (" folded: x\r\nFrom: alice@example.com\r\n\r\nHi.\r\n", "554 5.6.0",
     "a header section that starts with a continuation line"),
]
for msg, want, what in cases:
    got = transaction(s, "alice@example.com", ["x@example.net"], msg)
    t.like(got, want, "end of data, %s: %s (%s)" % (what, want, got))
    s.rset()

log_before = len(g.log())
msg = ("From: Alice <alice2@example.com>\r\nTo: x@example.net, y@example.org\r\nSubject: extra\r\n"
       "X-Gannet-Extra-User-Id: 42\r\nX-Mox-Extra-order-no:\r\n  A-17 \r\n\r\nHi.\r\n")
t.like(transaction(s, "alice@example.com", ["x@example.net", "y@example.org"], msg), QUEUE,
      "QUEUE: From another address of the account, extra data: 250, queued")
close(s)
time.sleep(0.2)
log = g.log()[log_before:]
prep = [ln for ln in log.splitlines() if "event=message_prepared" in ln]
t.ok(len(prep) == 1, "the prepared message is logged")
prep = prep[0] if prep else ""
t.like(prep, "fields=Received,Date,Message-ID,From,To,Subject ",
       "Received first, Date and Message-ID added, the X-*-Extra-* fields removed")
t.like(prep, "extra_keys=User-Id,Order-No", "extra data keys in MIME-canonical form")
t.like(prep, "@mail.test>", "the added Message-ID has the host name")
qline = [ln for ln in log.splitlines() if "event=queued" in ln]
t.ok(len(qline) == 1 and "recipients=2" in qline[0] and "extra=2" in qline[0],
     "the hand-over to the queue is logged with 2 recipients and 2 extra items")

s = sub465()
s.login("alice@example.com", PW)
log_before = len(g.log())
msg = ("Date: Mon, 02 Jan 2026 15:04:05 +0000\r\nMessage-ID: <own@example.com>\r\n"
       "From: alice@example.com\r\n\r\nHi.\r\n")
t.like(transaction(s, "alice@example.com", ["x@example.net"], msg), QUEUE,
      "QUEUE: on 465 (implicit TLS) with Date and Message-ID: 250, queued")
time.sleep(0.2)
prep = [ln for ln in g.log()[log_before:].splitlines() if "event=message_prepared" in ln]
t.ok(prep and "fields=Received,Date,Message-ID,From " in prep[0] and "<own@example.com>" in prep[0],
     "nothing added when Date and Message-ID are there")

# A Message-ID with a control character is replaced, not kept beside ours.
log_before = len(g.log())
msg = ("Date: Mon, 02 Jan 2026 15:04:05 +0000\r\nMessage-ID: <a\x01b@example.com>\r\n"
       "From: alice@example.com\r\n\r\nHi.\r\n")
t.like(transaction(s, "alice@example.com", ["x@example.net"], msg), QUEUE,
      "a Message-ID with a control character: 250, queued")
time.sleep(0.2)
prep = [ln for ln in g.log()[log_before:].splitlines() if "event=message_prepared" in ln]
t.ok(prep and "fields=Received,Message-ID,Date,From " in prep[0] and "@mail.test>" in prep[0],
     "with one Message-ID, ours (%s)" % (prep[0][:160] if prep else None))

# The signer's limits (gannet/dkim.h) hold for what submission accepts.
msg = "From: alice@example.com\r\n" + "X-N: 1\r\n" * 1000 + "\r\nHi.\r\n"
t.like(transaction(s, "alice@example.com", ["x@example.net"], msg), "554 5.6.0 Too many header fields",
       "1,001 header fields: 554 5.6.0")
s.rset()
msg = "From: alice@example.com\r\nX-Long: " + "a" * 990 + ("\r\n " + "a" * 990) * 1100 + "\r\n\r\nHi.\r\n"
t.like(transaction(s, "alice@example.com", ["x@example.net"], msg), "554 5.6.0 Header section too large",
       "a header section over 1 MiB: 554 5.6.0")
s.rset()
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG), QUEUE, "the session goes on: 250")

# ---- FUTURERELEASE ----
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG, ["HOLDFOR=5184001"]), "554 5.5.4",
       "HOLDFOR past 60 days: 554 5.5.4")
s.rset()
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG, ["HOLDUNTIL=2099-01-01T00:00:00Z"]),
       "554 5.5.4", "HOLDUNTIL past 60 days: 554 5.5.4")
s.rset()
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG, ["HOLDFOR=1h"]), "501 5.5.4",
       "HOLDFOR not a number: 501 5.5.4")
s.rset()
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG, ["HOLDUNTIL=tomorrow"]), "501 5.5.4",
       "HOLDUNTIL not a date-time: 501 5.5.4")
s.rset()
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG,
                   ["HOLDFOR=60", "HOLDUNTIL=2026-01-01T00:00:00Z"]), "501 5.5.4",
       "HOLDFOR and HOLDUNTIL together: 501 5.5.4")
s.rset()
log_before = len(g.log())
when = time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(time.time() + 86400 + 7200))
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG, ["HOLDUNTIL=" + when]), QUEUE,
      "QUEUE: HOLDUNTIL a day ahead (with an offset): queued")
time.sleep(0.2)
q = [ln for ln in g.log()[log_before:].splitlines() if "event=queued" in ln]
want = int(time.time()) + 86400
got = int(q[0].split("hold_until=")[1].split()[0]) if q else 0
t.ok(abs(got - want) < 120, "the hold reaches the hand-over (hold_until %d)" % got)
s.rset()
log_before = len(g.log())
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG, ["HOLDFOR=5184000"]), QUEUE,
      "QUEUE: HOLDFOR exactly 60 days: queued")
close(s)

# ---- limits per day ----
aid = sql("SELECT id FROM gn_accounts WHERE name = 'alice'")
# The messages queued above count: start the day afresh.
sql("DELETE FROM gn_submission_counts; DELETE FROM gn_submission_recipients")
sql("INSERT INTO gn_submission_limits (account_id, messages_per_day, first_time_recipients_per_day) "
    "VALUES (%s, 3, 2)" % aid)
sql("INSERT INTO gn_submission_recipients (account_id, address, first_sent) "
    "VALUES (%s, 'known@example.net', now() - interval '30 days')" % aid)
s = sub587()
s.login("alice@example.com", PW)
t.like(transaction(s, "alice@example.com", ["new1@example.net", "new2@example.net"], MSG), QUEUE,
      "QUEUE: two first-time recipients within a limit of 2")
s.rset()
sql("INSERT INTO gn_submission_recipients (account_id, address) VALUES (%s, 'recent@example.net')" % aid)
t.is_(sql("SELECT string_agg(address, ',' ORDER BY address) FROM gn_submission_recipients "
          "WHERE account_id = %s AND first_sent > now() - interval '1 day'" % aid),
      "new1@example.net,new2@example.net,recent@example.net",
      "the queued message's first-time recipients are recorded")
t.is_(transaction(s, "alice@example.com", ["new3@example.net", "new4@example.net"], MSG),
      "451 4.7.1 First-time recipient limit reached, try again later",
      "two more after three today: 451 4.7.1")
s.rset()
t.like(transaction(s, "alice@example.com", ["KNOWN@example.net", "new1@example.net"], MSG), QUEUE,
      "QUEUE: a known recipient (any case) and one sent to today: no first-time one, within the limit")
s.rset()
sql("INSERT INTO gn_submission_counts (account_id, hour, shard, messages) "
    "SELECT %s, date_trunc('hour', now()), s, 1 FROM generate_series(0, 2) AS s "
    "ON CONFLICT (account_id, hour, shard) DO UPDATE SET messages = gn_submission_counts.messages + 1"
    % aid)
t.is_(transaction(s, "alice@example.com", ["known@example.net"], MSG),
      "451 4.7.1 Message limit reached, try again later", "3 messages today of 3: 451 4.7.1")
s.rset()
sql("UPDATE gn_submission_counts SET hour = hour - interval '25 hours' WHERE account_id = %s" % aid)
t.like(transaction(s, "alice@example.com", ["known@example.net"], MSG), QUEUE,
      "QUEUE: those messages more than a day ago: within the limit again")
close(s)
sql("DELETE FROM gn_submission_counts; DELETE FROM gn_submission_limits")
# Real submissions count: a limit of 2 messages, two sent, the third refused.
sql("INSERT INTO gn_submission_limits (account_id, messages_per_day) VALUES (%s, 2)" % aid)
s = sub587()
s.login("alice@example.com", PW)
t.like(transaction(s, "alice@example.com", ["known@example.net"], MSG), QUEUE, "limit 2: the first message queued")
t.like(transaction(s, "alice@example.com", ["known@example.net"], MSG), QUEUE, "limit 2: the second queued")
t.is_(sql("SELECT sum(messages) FROM gn_submission_counts WHERE account_id = %s" % aid), "2",
      "both recorded with the queue's commit")
t.is_(transaction(s, "alice@example.com", ["known@example.net"], MSG),
      "451 4.7.1 Message limit reached, try again later", "the third: 451 4.7.1")
close(s)
sql("DELETE FROM gn_submission_counts; DELETE FROM gn_submission_limits")

# ---- client certificates ----
s = sub465(cert_ctx(ccert, ckey))
mechs = s.esmtp_features.get("auth", "").split()
t.is_(mechs[0] if mechs else "", "EXTERNAL", "465 with a registered certificate: EXTERNAL listed first")
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG), QUEUE,
      "QUEUE: MAIL without AUTH, the certificate logged in: queued")
s.rset()
t.like(reply(s.docmd("MAIL", "FROM:<bob@example.com>")), "550 5.7.1", "but not from bob's address")
t.like(reply(s.docmd("AUTH", "PLAIN " + plain("bob@example.com", PWB))), "535 5.7.8",
       "AUTH as another account, right password: 535 5.7.8")
t.like(reply(s.docmd("AUTH", "EXTERNAL =")), "235 2.7.0", "AUTH EXTERNAL: 235")
close(s)
s = sub465(cert_ctx(ccert, ckey))
t.like(reply(s.docmd("AUTH", "EXTERNAL " + b64("alice2@example.com"))), "235 2.7.0",
       "AUTH EXTERNAL as another address of the key's account: 235")
close(s)
s = sub465(cert_ctx(ccert, ckey))
t.like(reply(s.docmd("AUTH", "EXTERNAL " + b64("bob@example.com"))), "535 5.7.8",
       "AUTH EXTERNAL as bob: 535 5.7.8")
close(s)
s = sub465(cert_ctx(ccert, ckey))
t.like(reply(s.docmd("AUTH", "PLAIN " + plain("alice@example.com", PW))), "235 2.7.0",
       "AUTH PLAIN as the key's account: 235")
close(s)
s = sub587(context=cert_ctx(ccert, ckey))
t.like(transaction(s, "alice@example.com", ["x@example.net"], MSG), QUEUE,
      "QUEUE: 587 after STARTTLS with the certificate: MAIL without AUTH, up to the queue")
close(s)
s = sub465(cert_ctx(ucert, ukey))
t.ok("EXTERNAL" in s.esmtp_features.get("auth", ""), "an unregistered certificate: EXTERNAL listed")
t.like(reply(s.docmd("MAIL", "FROM:<alice@example.com>")), "530 5.7.0", "but no login: MAIL 530 5.7.0")
t.like(reply(s.docmd("AUTH", "EXTERNAL =")), "535 5.7.8", "and EXTERNAL fails: 535 5.7.8")
close(s)
n = sql("SELECT sum(count) FROM gn_auth_attempts WHERE protocol = 'submission' "
        "AND mechanism = 'tlsclientauth' AND result = 'ok'")
t.ok(int(n) >= 5, "certificate logins are recorded (tlsclientauth, %s)" % n)

# ---- curl, with the client certificate ----
mfile = os.path.join(d, "curl.eml")
with open(mfile, "w") as f:
    f.write(MSG)
for url in ("smtp://127.0.0.1:%d" % p587, "smtps://127.0.0.1:%d" % p465):
    r = subprocess.run(["curl", "-v", "-sS", "--ssl-reqd", "-k", "--cert", ccert, "--key", ckey,
                        "--mail-from", "alice@example.com", "--mail-rcpt", "x@example.net",
                        "-T", mfile, url], capture_output=True, text=True, timeout=60)
    t.ok(r.returncode == 0 and "< 250 2.1.0" in r.stderr and "< 250 2.0.0 Message queued as" in r.stderr,
         "QUEUE: curl --ssl-reqd %s with the certificate, no AUTH: MAIL 250, then queued" % url)
    if "< 250 2.0.0" not in r.stderr:
        t.diag(r.stderr[-1500:])

# ---- swaks ----
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p587), "--tls",
                    "--auth", "PLAIN", "--auth-user", "alice@example.com", "--auth-password", PW,
                    "--from", "alice@example.com", "--to", "x@example.net",
                    "--header", "From: alice@example.com"], capture_output=True, text=True, timeout=60)
t.like(r.stdout, "<~  235 2.7.0", "swaks --tls --auth PLAIN on 587: 235")
t.like(r.stdout, "<~  250 2.0.0 Message queued as", "QUEUE: swaks: queued")
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p587),
                    "--from", "alice@example.com", "--to", "x@example.net"],
                   capture_output=True, text=True, timeout=60)
t.like(r.stdout, "<** 530 5.7.0 Must issue a STARTTLS command first", "swaks without TLS: 530 5.7.0 at MAIL")
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p465), "--tlsc",
                    "--auth", "LOGIN", "--auth-user", "alice@example.com", "--auth-password", PW,
                    "--from", "alice@example.com", "--to", "x@example.net",
                    "--header", "From: bob@example.com"], capture_output=True, text=True, timeout=60)
t.like(r.stdout, "<~* 550 5.7.1 From address must match authenticated user",
       "swaks --tlsc --auth LOGIN on 465, From bob: 550 5.7.1")

t.ok(g.stop() == 0, "gannet stops cleanly")
t.done()
