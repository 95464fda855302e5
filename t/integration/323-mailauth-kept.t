#!/usr/bin/env python3
"""
t/integration/323-mailauth-kept.t: what the mailauth module keeps and
decides beyond the header (issue 10 item 1):

- the checks' results kept with each stored copy (gn_store_message_auth,
  ABI 1.1; mox's MailFromValidated, MsgFromValidated, DKIMVerifiedDomains,
  RemoteIP), read back with `gannet mailauth show`: SPF pass + an aligned
  DKIM pass for the From domain itself (strict), a DKIM pass of a
  subdomain with SPF fail (relaxed), nothing validated (dmarc fail), and
  a message that no check saw (IMAP APPEND: checked no); a COPY keeps them;
- per-recipient-domain settings (mailauth.domain_policies): a p=reject
  fail is refused for a domain with the defaults, goes to Junk for one
  with dmarc_reject=junk, to the Inbox for dmarc_reject=accept; one
  transaction for two domains takes the strictest; spf_fail=reject
  refuses an SPF fail with 550 5.7.23;
- allow lists (mailauth.allow_senders, allow= per domain): a VALIDATED
  sender domain (DKIM d= that passed, or a subdomain of an entry) skips
  the policy, still with its Authentication-Results; the same domain only
  in MAIL FROM without an SPF pass, or only in From, does not;
- config errors name the file and the line.

Messages signed by Debian's python3-dkim, sent with smtplib from
127.0.0.1, read back with imaplib; DNS from dns.local_data.
"""
import email.parser
import imaplib
import json
import os
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
HOST = "mail.test"
PW = "a password for the test"
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "imap", "mailauth")
d = gt.tmpdir()

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


def message(frm, subject):
    return ("From: %s\r\nTo: alice@example.com\r\nSubject: %s\r\nMessage-ID: <%s@kept.test>\r\n"
            "\r\nHello.\r\n" % (frm, subject, subject.replace(" ", "-")))


MSGS = {
    "strict": (message("user@pass.example", "strict"), ["pass.example"]),
    "relaxed": (message("user@pass.example", "relaxed"), ["mail.pass.example"]),
    "failed": (message("user@rej.example", "failed"), []),
    "rej": (message("user@rej.example", "rejected"), []),
    "quar": (message("user@quar.example", "quarantined"), []),
    "partner": (message("user@rej.example", "via partner"), ["partner.example"]),
    "list": (message("user@rej.example", "via list"), ["sub.lists.example"]),
    "fromonly": (message("user@partner.example", "from only"), []),
    "spf": (message("user@none.example", "spf fail"), []),
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

zone = {
    "sel._domainkey.pass.example.": signed["key"],
    "sel._domainkey.mail.pass.example.": signed["key"],
    "sel._domainkey.partner.example.": signed["key"],
    "sel._domainkey.sub.lists.example.": signed["key"],
    "pass.example.": "v=spf1 ip4:127.0.0.1 -all",
    "fail.example.": "v=spf1 ip4:192.0.2.1 -all",
    "partner.example.": "v=spf1 ip4:192.0.2.1 -all",
    "_dmarc.pass.example.": "v=DMARC1; p=reject",
    "_dmarc.rej.example.": "v=DMARC1; p=reject",
    "_dmarc.quar.example.": "v=DMARC1; p=quarantine",
    "_dmarc.none.example.": "v=DMARC1; p=none",
    "_dmarc.partner.example.": "v=DMARC1; p=reject",
}


def local_data(recs):
    lines = []
    for name, rec in sorted(recs.items()):
        parts = [rec[i:i + 255] for i in range(0, len(rec), 255)] or [""]
        lines.append('    "%s 300 IN TXT %s"' % (name, " ".join('\\"%s\\"' % p for p in parts)))
    return "local_data = [\n" + ",\n".join(lines) + "\n  ];"


POLICIES = ('mailauth = {\n'
            '  domain_policies = [\n'
            '    "junk.test dmarc_reject=junk",\n'
            '    "accept.test dmarc_reject=accept dmarc_quarantine=accept",\n'
            '    "spfrej.test spf_fail=reject",\n'
            '    "allowed.test allow=lists.example"\n'
            '  ];\n'
            '  allow_senders = [ "partner.example" ];\n'
            '};\n')

cert, key = gt.make_cert(d, "server", HOST)
p25, p993 = gt.free_port(), gt.free_port()
db = gt.cluster().create_db()
listeners = ('{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }, '
             '{ address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "implicit"; }'
             % (p25, p993))


def server(sub, mailauth):
    os.mkdir(os.path.join(d, sub))
    extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
             'queue = { transport = "none"; };\ndns = {\n  trust_anchor = "";\n  %s\n};\n%s'
             % (cert, key, local_data(zone), mailauth))
    return gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                                  modules='directory = "%s"; load = [ "smtp", "imap", "mailauth" ];'
                                  % moddir),
                     directory=os.path.join(d, sub), db=db)


def gannet(srv, *args, stdin=None):
    return gt.run_gannet(["-c", srv.conf_path] + list(args), input=stdin)


# ---- config errors: file and line ----
for bad, what in (('"example.com dmarc_reject=maybe"', "an action is not reject, junk or accept"),
                  ('"exa mple.com"', "a word is not key=value"),
                  ('"bad..name"', "not a domain name"),
                  ('"a.test spf_fail=junk", "a.test"', "a.test given twice"),
                  ('"a.test colour=red"', "unknown key")):
    gb = server("bad%d" % abs(hash(bad)), 'mailauth = {\n  domain_policies = [ %s ];\n};\n' % bad)
    with open(gb.conf_path) as f:
        text = f.read()
    line = text[:text.index("domain_policies")].count("\n") + 1
    r = gannet(gb, "config", "check")
    t.ok(r.returncode != 0 and what in r.stderr and
         "at %s:%d" % (os.path.basename(gb.conf_path), line) in r.stderr,
         "config error %s: %r at its file and line (%d)" % (bad, what, line))
    if what not in r.stderr:
        t.diag(r.stderr)
gb = server("badallow", 'mailauth = {\n  allow_senders = [ "ok.example", "not a domain" ];\n};\n')
r = gannet(gb, "config", "check")
t.ok(r.returncode != 0 and "allow_senders" in r.stderr and "not a domain" in r.stderr,
     "config error in allow_senders")

g = server("main", POLICIES)
r = gannet(g, "config", "check")
t.is_(r.returncode, 0, "the policies are a valid config (%s)" % r.stderr.strip())
setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
for dom in ("junk.test", "accept.test", "spfrej.test", "allowed.test"):
    setup += [("config", "domain", "add", dom), ("config", "address", "add", "alice@" + dom, "alice")]
t.ok(all(gannet(g, *a).returncode == 0 for a in setup),
     "alice@example.com, and her addresses in four more domains")
t.is_(gannet(g, "setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def send(msg, mail_from, rcpts=("alice@example.com",)):
    with smtplib.SMTP("127.0.0.1", p25, local_hostname="client.example.net", timeout=60) as s:
        s.ehlo("client.example.net")
        code, text = s.mail(mail_from)
        if code != 250:
            return code, text.decode()
        for rc in rcpts:
            code, text = s.rcpt(rc)
            if code != 250:
                return code, text.decode()
        try:
            code, text = s.data(msg)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text.decode()


def imap():
    m = imaplib.IMAP4_SSL("127.0.0.1", p993, ssl_context=ctx)
    m.login("alice@example.com", PW)
    return m


def find(box, subject):
    """(uid, header) of the message with subject in box, or (None, None)."""
    m = imap()
    try:
        typ, data = m.select(box, readonly=True)
        if typ != "OK" or int(data[0]) == 0:
            return None, None
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER])")
        for item in data:
            if isinstance(item, tuple):
                h = item[1]
                subj = email.parser.BytesParser().parsebytes(h, headersonly=True).get("Subject")
                if subj == subject:
                    uid = int(item[0].split(b"UID ")[1].split()[0])
                    return uid, h
        return None, None
    finally:
        m.logout()


def count(box):
    m = imap()
    try:
        typ, data = m.select(box, readonly=True)
        return int(data[0]) if typ == "OK" else -1
    finally:
        m.logout()


def show(box, uid):
    r = gannet(g, "mailauth", "show", "alice", box, str(uid))
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" ")
        if k == "dkim_domain":
            out.setdefault(k, []).append(v)
        else:
            out[k] = v
    return r.returncode, out


try:
    g.start(wait_ports=(p25, p993))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()

# ---- 1. the results kept with the message ----
t.is_(send(MSG["strict"], "u@pass.example")[0], 250, "SPF pass + DKIM pass (d=pass.example): 250")
uid, h = find("INBOX", "strict")
rc, kept = show("INBOX", uid)
t.is_(rc, 0, "gannet mailauth show alice INBOX %s: exit 0" % uid)
t.is_(kept, {"checked": "yes", "mail_from_validated": "yes", "mail_from_validation": "pass",
             "msg_from_domain": "pass.example", "msg_from_validated": "yes",
             "msg_from_validation": "strict", "dkim_domain": ["pass.example"],
             "remote_ip": "127.0.0.1"},
      "SPF pass, DMARC pass for the From domain itself (strict), DKIM domain pass.example")
t.like(h.decode(errors="replace"), "dkim=pass", "and its Authentication-Results says dkim=pass")

t.is_(send(MSG["relaxed"], "u@fail.example")[0], 250, "DKIM pass d=mail.pass.example, SPF fail: 250")
uid, h = find("INBOX", "relaxed")
rc, kept = show("INBOX", uid)
t.is_((kept.get("mail_from_validated"), kept.get("mail_from_validation"),
       kept.get("msg_from_validated"), kept.get("msg_from_validation"), kept.get("dkim_domain")),
      ("no", "fail", "yes", "relaxed", ["mail.pass.example"]),
      "SPF fail not validated; the From domain validated through a subdomain's DKIM (relaxed)")

t.is_(send(MSG["failed"], "u@fail.example", ["alice@accept.test"])[0], 250,
      "DMARC fail to a domain that accepts it: 250")
uid, h = find("INBOX", "failed")
rc, kept = show("INBOX", uid)
t.is_((kept.get("checked"), kept.get("mail_from_validated"), kept.get("msg_from_domain"),
       kept.get("msg_from_validated"), kept.get("msg_from_validation"), kept.get("dkim_domain")),
      ("yes", "no", "rej.example", "no", "fail", None), "nothing validated: msg_from_validation fail")

m = imap()
m.append("INBOX", None, None, b"From: x@y.example\r\nSubject: appended\r\n\r\nx\r\n")
m.select("INBOX")
typ, data = m.uid("SEARCH", "SUBJECT", "strict")
strict_uid = data[0].split()[-1].decode()
typ, _ = m.uid("COPY", strict_uid, "Archive")
if typ != "OK":
    m.create("Archive")
    typ, _ = m.uid("COPY", strict_uid, "Archive")
m.logout()
uid, _ = find("INBOX", "appended")
t.is_(show("INBOX", uid), (0, {"checked": "no"}), "a message APPENDed over IMAP: checked no")
uid, _ = find("Archive", "strict")
t.is_(show("Archive", uid)[1].get("msg_from_validation"), "strict", "a COPY keeps the results")
t.is_(show("INBOX", 999999)[0], 1, "no such message: exit 1")

# ---- 2. per-recipient-domain settings ----
before = (count("INBOX"), count("Junk"))
code, text = send(MSG["rej"], "u@fail.example")
t.is_((code, text), (550, "5.7.26 DMARC policy of rej.example: rejected"),
      "p=reject fail, example.com (defaults): 550 5.7.26")
code, text = send(MSG["rej"], "u@fail.example", ["alice@junk.test"])
t.is_(code, 250, "p=reject fail, junk.test (dmarc_reject=junk): 250")
t.ok(find("Junk", "rejected")[0] is not None and find("INBOX", "rejected")[0] is None,
     "junk.test: in Junk, not the Inbox")
code, text = send(MSG["quar"], "u@fail.example", ["alice@accept.test"])
t.is_(code, 250, "p=quarantine fail, accept.test (dmarc_quarantine=accept): 250")
t.ok(find("INBOX", "quarantined")[0] is not None, "accept.test: in the Inbox")
t.like(g.log(), "rcpt_domain=accept.test action=deliver why=dmarc",
       "the accepted failure is logged with its domain")
n_before = (count("INBOX"), count("Junk"))
code, text = send(MSG["rej"], "u@fail.example", ["alice@accept.test", "alice@example.com"])
t.is_(code, 550, "accept.test and example.com in one transaction: the strictest, 550")
t.is_((count("INBOX"), count("Junk")), n_before, "nothing stored")
code, text = send(MSG["spf"], "u@fail.example", ["alice@spfrej.test"])
t.is_((code, text), (550, "5.7.23 SPF of fail.example: fail, rejected"),
      "SPF fail, spfrej.test (spf_fail=reject): 550 5.7.23")
code, text = send(MSG["spf"], "u@fail.example")
t.is_(code, 250, "the same SPF fail to example.com (defaults: only reported): 250")

# ---- 2. allow lists ----
code, text = send(MSG["partner"], "u@fail.example")
t.is_(code, 250, "p=reject fail signed by partner.example (allow_senders): 250")
uid, h = find("INBOX", "via partner")
t.like((h or b"").decode(errors="replace"), "dmarc=fail", "still with dmarc=fail in its "
       "Authentication-Results")
t.like(g.log(), "why=allowed:partner.example", "the skip is logged")
code, text = send(MSG["list"], "u@fail.example", ["alice@allowed.test"])
t.is_(code, 250, "signed by sub.lists.example to allowed.test (allow=lists.example): 250")
code, text = send(MSG["list"], "u@fail.example")
t.is_(code, 550, "the same to example.com, whose settings do not list it: 550")
code, text = send(MSG["rej"], "u@partner.example")
t.is_(code, 550, "partner.example only in MAIL FROM, SPF fail: not allowed, 550")
code, text = send(MSG["fromonly"], "u@fail.example")
t.is_(code, 550, "partner.example only in From (unsigned, p=reject): not allowed, 550")
g.stop()
t.done()
