#!/usr/bin/env python3
"""
t/integration/321-mailauth-dmarc-inbound.t: DMARC (RFC 7489) on mail that
arrives over SMTP (the mailauth module's "smtp.data_end" hook, issue 10
item 1): after SPF and DKIM, the policy of the RFC5322.From domain is
looked up, its result written in the same Authentication-Results field
(dmarc=RESULT (p=... dis=...) header.from=DOMAIN, RFC 7489 11.2) and its
disposition enforced:

- an aligned DKIM pass (SPF fails), an aligned SPF pass (no signature):
  dmarc=pass, in the Inbox;
- a fail with p=none: dmarc=fail (p=none dis=none), in the Inbox;
- a fail with p=quarantine: in the Junk mailbox, not the Inbox;
- a fail with p=reject: 550 5.7.26 "DMARC policy of DOMAIN: rejected",
  nothing stored anywhere;
- pct=0: p=reject is not applied (quarantine instead, RFC 7489 6.6.4),
  p=quarantine is not applied (Inbox);
- no From field: dmarc=none with a reason, delivered; two From fields:
  550 5.7.1, nothing stored (RFC 7489 6.6.1 allows it; mox refuses them);
- a header section past the 256 KiB the hook keeps: dmarc=permerror;
- a _dmarc lookup that never gets an answer (t/lib/dnsserver.py's
  slow.example) past mailauth.inbound_timeout: dmarc=temperror, 250.

Messages are signed by Debian's python3-dkim, sent with smtplib from
127.0.0.1, read back with imaplib; the fields are parsed with Debian's
python3-authres.  Each decision is logged (event=dmarc).
"""
import email.parser
import imaplib
import json
import os
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")
HOST = "mail.test"		# gt.base_conf's hostname: our authserv-id
PW = "a password for the test"
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "imap", "mailauth")

d = gt.tmpdir()

# ---- DKIM signatures by python3-dkim ----
SIGNER = r"""
import base64, json, sys
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
req = json.load(sys.stdin)
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                      serialization.NoEncryption())
spki = k.public_key().public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
out = {"key": "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode(), "messages": []}
for m in req:
    msg = m["message"].encode()
    for dom in m["sign"]:
        msg = dkim.sign(msg, b"sel", dom.encode(), pem,
                        include_headers=[b"from", b"to", b"subject"]) + msg
    out["messages"].append(msg.decode())
json.dump(out, sys.stdout)
"""


def message(from_lines, subject):
    return ("%sTo: alice@example.com\r\nSubject: %s\r\nMessage-ID: <%s@dmarc.test>\r\n"
            "\r\nHello.\r\n" % (from_lines, subject, subject.replace(" ", "-")))


MSGS = {
    "dkim-pass": (message("From: Sender <user@pass.example>\r\n", "aligned dkim"),
                  ["mail.pass.example"]),
    "unsigned-pass": (message("From: user@pass.example\r\n", "aligned spf"), []),
    "none": (message("From: user@none.example\r\n", "p none"), []),
    "quar": (message("From: user@quar.example\r\n", "p quarantine"), []),
    "rej": (message("From: user@rej.example\r\n", "p reject"), []),
    "rej-signed-other": (message("From: user@rej.example\r\n", "p reject other d"),
                         ["other.example"]),
    "pct0-reject": (message("From: user@pct0r.example\r\n", "pct0 reject"), []),
    "pct0-quar": (message("From: user@pct0q.example\r\n", "pct0 quarantine"), []),
    "nofrom": (message("", "no from"), []),
    "twofrom": (message("From: user@rej.example\r\nFrom: other@pass.example\r\n",
                        "two from"), []),
    "slow": (message("From: user@slow.example\r\n", "slow dmarc"), []),
    "twoaddr": (message("From: user@rej.example, other@pass.example\r\n"
                        "Sender: user@rej.example\r\n", "two addresses"), []),
}
names = sorted(MSGS)
r = subprocess.run([gt.DEBIAN_PYTHON, "-c", SIGNER],
                   input=json.dumps([{"message": MSGS[n][0], "sign": MSGS[n][1]} for n in names]),
                   capture_output=True, text=True, timeout=300)
if not t.is_(r.returncode, 0, "python3-dkim signs the messages"):
    t.diag(r.stderr)
    t.done()
signed = json.loads(r.stdout)
MSG = {n: signed["messages"][i].encode() for i, n in enumerate(names)}

# ---- the DNS data ----
zone = {
    "sel._domainkey.mail.pass.example.": signed["key"],
    "sel._domainkey.other.example.": signed["key"],
    "pass.example.": "v=spf1 ip4:127.0.0.1 -all",
    "fail.example.": "v=spf1 ip4:192.0.2.1 -all",
    "_dmarc.pass.example.": "v=DMARC1; p=reject",
    "_dmarc.none.example.": "v=DMARC1; p=none",
    "_dmarc.quar.example.": "v=DMARC1; p=quarantine",
    "_dmarc.rej.example.": "v=DMARC1; p=reject",
    "_dmarc.pct0r.example.": "v=DMARC1; p=reject; pct=0",
    "_dmarc.pct0q.example.": "v=DMARC1; p=quarantine; pct=0",
}


def local_data(recs):
    lines = []
    for name, rec in sorted(recs.items()):
        parts = [rec[i:i + 255] for i in range(0, len(rec), 255)] or [""]
        lines.append('    "%s 300 IN TXT %s"' % (name, " ".join('\\"%s\\"' % p for p in parts)))
    return "local_data = [\n" + ",\n".join(lines) + "\n  ];"


cert, key = gt.make_cert(d, "server", HOST)
p25, p993 = gt.free_port(), gt.free_port()
db = gt.cluster().create_db()
listeners = ('{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }, '
             '{ address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "implicit"; }'
             % (p25, p993))


def server(sub, dns, mailauth=""):
    os.mkdir(os.path.join(d, sub))
    extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
             'queue = { transport = "none"; };\ndns = {\n  trust_anchor = "";\n  %s\n};\n%s'
             % (cert, key, dns, mailauth))
    return gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                                  modules='directory = "%s"; load = [ "smtp", "imap", "mailauth" ];'
                                  % moddir),
                     directory=os.path.join(d, sub), db=db)


g = server("local", local_data(zone))


def gannet(srv, *args, stdin=None):
    return gt.run_gannet(["-c", srv.conf_path] + list(args), input=stdin)


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
t.ok(all(gannet(g, *a).returncode == 0 for a in setup), "the account alice@example.com")
t.is_(gannet(g, "setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def send(msg, mail_from):
    """The DATA reply: (code, text)."""
    with smtplib.SMTP("127.0.0.1", p25, local_hostname="client.example.net", timeout=60) as s:
        s.ehlo("client.example.net")
        code, text = s.mail(mail_from)
        if code != 250:
            return code, text.decode()
        code, text = s.rcpt("alice@example.com")
        if code != 250:
            return code, text.decode()
        try:
            code, text = s.data(msg)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text.decode()


def mailbox(name):
    """Subjects and headers of the messages in alice's mailbox name."""
    m = imaplib.IMAP4_SSL("127.0.0.1", p993, ssl_context=ctx)
    try:
        m.login("alice@example.com", PW)
        typ, data = m.select(name, readonly=True)
        if typ != "OK":
            return None
        n = int(data[0])
        out = []
        if n > 0:
            typ, data = m.fetch("1:%d" % n, "(BODY.PEEK[HEADER])")
            for item in data:
                if isinstance(item, tuple):
                    out.append(item[1])
        return out
    finally:
        m.logout()


def subject_of(header):
    return email.parser.BytesParser().parsebytes(header, headersonly=True).get("Subject")


def find(name, subject):
    """The header of the message with subject in mailbox name, or None."""
    for h in mailbox(name) or []:
        if subject_of(h) == subject:
            return h
    return None


def parse_authres(value):
    """Debian's python3-authres on one field's value."""
    prog = ("import authres, json, sys\n"
            "h = authres.AuthenticationResultsHeader.parse('Authentication-Results: ' + sys.stdin.read())\n"
            "print(json.dumps({'id': h.authserv_id, 'results': [\n"
            "  {'method': r.method, 'result': r.result, 'reason': r.reason,\n"
            "   'props': {p.type + '.' + p.name: p.value for p in r.properties}} for r in h.results]}))\n")
    r = subprocess.run([gt.DEBIAN_PYTHON, "-c", prog], input=value, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        t.diag("python3-authres: " + r.stderr)
        return None
    return json.loads(r.stdout)


def dmarc_of(header):
    """(our dmarc result dict, the raw field) from a stored header."""
    msg = email.parser.BytesParser().parsebytes(header or b"", headersonly=True)
    for v in msg.get_all("Authentication-Results") or []:
        p = parse_authres(str(v))
        if p is not None and p["id"].lower() == HOST:
            dm = [r for r in p["results"] if r["method"] == "dmarc"]
            return (dm[0] if len(dm) == 1 else None), str(v)
    return None, ""


def expect(label, key, mail_from, box, result, header_from, comment=None, reason=None):
    subject = subject_of(MSG[key])
    code, text = send(MSG[key], mail_from)
    t.is_(code, 250, "%s: 250 (%s)" % (label, text))
    h = find(box, subject)
    t.ok(h is not None, "%s: the message is in %s" % (label, box))
    other = "Junk" if box == "INBOX" else "INBOX"
    t.ok(find(other, subject) is None, "%s: and not in %s" % (label, other))
    dm, raw = dmarc_of(h)
    t.is_((dm or {}).get("result"), result, "%s: dmarc=%s" % (label, result))
    t.is_((dm or {}).get("props", {}).get("header.from"), header_from,
          "%s: %s" % (label, "header.from=" + header_from if header_from else "no header.from"))
    if comment is not None:
        t.like(raw, "dmarc=%s (%s)" % (result, comment), "%s: (%s)" % (label, comment))
    if reason is not None:
        t.like((dm or {}).get("reason") or "", reason, "%s: reason says %r" % (label, reason))
    return h


try:
    g.start(wait_ports=(p25, p993))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, imap and mailauth")
    t.diag(str(e))
    t.done()

# ---- pass ----
h = expect("aligned DKIM (d=mail.pass.example), SPF fail", "dkim-pass", "b@fail.example",
           "INBOX", "pass", "pass.example", comment="p=reject dis=none")
dm, raw = dmarc_of(h)
t.like(raw, "spf=fail", "the same field has spf=fail")
t.like(raw, "dkim=pass", "and dkim=pass")
t.ok(raw.find("spf=") < raw.find("dkim=") < raw.find("dmarc="), "spf, dkim, then dmarc")
t.like(g.log(), "event=dmarc", "the decision is logged")
expect("aligned SPF (MAIL FROM pass.example), no signature", "unsigned-pass", "u@pass.example",
       "INBOX", "pass", "pass.example", comment="p=reject dis=none")
log = g.log()
t.ok("result=pass header_from=pass.example" in log and "spf_aligned=yes" in log and
     "dkim_aligned=yes" in log, "the log says which identifier aligned")

# ---- fail, p=none ----
expect("no aligned pass, p=none", "none", "u@fail.example", "INBOX", "fail", "none.example",
       comment="p=none dis=none")

# ---- fail, p=quarantine: Junk ----
expect("no aligned pass, p=quarantine", "quar", "u@fail.example", "Junk", "fail",
       "quar.example", comment="p=quarantine dis=quarantine")
t.like(g.log(), "action=junk", "the quarantine is logged (action=junk)")

# ---- fail, p=reject: 550 5.7.26, nothing stored ----
before = (len(mailbox("INBOX")), len(mailbox("Junk")))
for which, mf, label in (("rej", "u@fail.example", "unsigned, SPF fail"),
                       ("rej-signed-other", "u@pass.example",
                        "DKIM pass and SPF pass, neither aligned")):
    code, text = send(MSG[which], mf)
    t.is_(code, 550, "p=reject, %s: 550" % label)
    t.is_(text, "5.7.26 DMARC policy of rej.example: rejected",
          "p=reject, %s: 5.7.26 DMARC policy of rej.example: rejected" % label)
t.is_((len(mailbox("INBOX")), len(mailbox("Junk"))), before, "p=reject: nothing stored")
t.like(g.log(), "action=reject", "the rejection is logged (action=reject)")

# ---- pct=0 ----
expect("p=reject pct=0: sampled out, quarantined not rejected", "pct0-reject", "u@fail.example",
       "Junk", "fail", "pct0r.example", comment="p=reject dis=quarantine")
expect("p=quarantine pct=0: sampled out, delivered", "pct0-quar", "u@fail.example", "INBOX",
       "fail", "pct0q.example", comment="p=quarantine dis=none")
t.like(g.log(), "sampled_out=yes", "sampling is logged")

# ---- no usable From ----
expect("no From field", "nofrom", "u@fail.example", "INBOX", "none", None,
       reason="no From field")
before = (len(mailbox("INBOX")), len(mailbox("Junk")))
code, text = send(MSG["twofrom"], "u@fail.example")
t.is_((code, text), (550, "5.7.1 The message has 2 From fields, RFC 5322 allows one"),
      "two From fields (one of a p=reject domain): 550 5.7.1")
t.is_((len(mailbox("INBOX")), len(mailbox("Junk"))), before, "two From fields: nothing stored")
t.like(g.log(), "why=from_fields from_fields=2", "the refusal is logged")
# A From of several addresses in one field is RFC 5322's (with Sender):
# not refused, dmarc=none with the reason.
expect("one From field with two addresses", "twoaddr", "u@fail.example", "INBOX", "none",
       None, reason="several addresses")
# A header section past the 256 KiB the hook keeps: the From field (of a
# p=reject domain) below it is not looked for, and not taken as absent
# either: permerror, delivered (nothing applied).
pad = "".join("X-Pad-%d: %s\r\n" % (i, "p" * 900) for i in range(300))
long_msg = (pad + "From: user@rej.example\r\nTo: alice@example.com\r\nSubject: long header\r\n"
            "\r\nHello.\r\n").encode()
code, text = send(long_msg, "u@fail.example")
t.is_(code, 250, "a header past 256 KiB: 250 (%s)" % text)
dm, raw = dmarc_of(find("INBOX", "long header"))
t.is_((dm or {}).get("result"), "permerror", "a header past 256 KiB: dmarc=permerror")
t.like((dm or {}).get("reason") or "", "too long", "with the reason")
g.stop()

# ---- a _dmarc lookup that never gets an answer ----
portfile = os.path.join(d, "dns.port")
dns_srv = subprocess.Popen([gt.DEBIAN_PYTHON, os.path.join(LIB, "dnsserver.py"), portfile,
                            os.path.join(d, "dns.queries"), os.path.join(d, "ta")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
for _ in range(600):
    if os.path.exists(portfile) or dns_srv.poll() is not None:
        break
    time.sleep(0.05)
if not t.ok(os.path.exists(portfile), "the test DNS server is up"):
    dns_srv.kill()
    t.done()
port = int(open(portfile).read())
g2 = server("slow", 'resolvers = [ "127.0.0.1@%d" ];\n  timeout = "20s";\n  %s'
            % (port, local_data(zone)), 'mailauth = { inbound_timeout = "2s"; };\n')
try:
    g2.start(wait_ports=(p25, p993))
    started = time.time()
    h = expect("the _dmarc lookup is not answered", "slow", "u@pass.example", "INBOX",
               "temperror", "slow.example")
    took = time.time() - started
    t.ok(took < 15, "after mailauth.inbound_timeout, not the DNS timeout (%.1f s)" % took)
    dm, raw = dmarc_of(h)
    t.like(raw, "spf=pass", "SPF (local data) still passes")
    with open(os.path.join(d, "dns.queries")) as f:
        t.like(f.read(), "_dmarc.slow.example. TXT", "the _dmarc query reached the DNS server")
    t.like(g2.log(), "event=inbound_timeout", "the timeout is logged")
finally:
    g2.stop()
    dns_srv.kill()
t.done()
