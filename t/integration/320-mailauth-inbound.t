#!/usr/bin/env python3
"""
t/integration/320-mailauth-inbound.t: SPF and DKIM on mail that arrives
over SMTP (the mailauth module's hook on "smtp.data_end", issue 10 item 1),
recorded in the stored prefix of each copy as one Authentication-Results
field (RFC 8601) and a Received-SPF field (RFC 7208 9.1).  DMARC's result
ends the field (dmarc=none here: no domain publishes a policy; DMARC
itself is 321-mailauth-dmarc-inbound.t).

Messages signed by an independent signer (Debian's python3-dkim, through
t/lib/dkimcorpus.py) are sent with smtplib from 127.0.0.1, whose SPF
records (and the DKIM keys) are in dns.local_data; each copy is read back
with imaplib and its Authentication-Results parsed with Debian's
python3-authres, every result checked:

- three signatures that verify, MAIL FROM a domain whose SPF passes, with
  dkim.max_signatures = 2: spf=pass smtp.mailfrom, two dkim=pass and a
  dkim=neutral, each with header.d, header.s and a header.b that is the
  start of that signature's b=;
- a changed body from a domain whose SPF fails: spf=fail, dkim=fail;
- MAIL FROM <>: the HELO identity (spf=pass smtp.helo=...), dkim=none;
- a message carrying a forged Authentication-Results with our
  authserv-id (RFC 8601 5): stored renamed X-Forged-Authentication-Results
  (the smtp module), ours is the only Authentication-Results with it and
  says what we found, the forgery is logged; a field of another
  authserv-id is kept as it came; DKIM still passes over the original
  bytes (the tap sees them before the rename);
- a DNS that does not answer (t/lib/dnsserver.py's slow.example) past
  mailauth.inbound_timeout: spf=temperror, and the message is delivered;
  dmarc=none: the From domain's policy lookup starts once the header
  section is complete and is answered (no record) while SPF waits;
- with mailauth not loaded: no Authentication-Results, no Received-SPF;
  a forged field is renamed all the same.

iprev ends the field: pass here, 127.0.0.1 being localhost both ways in
libunbound's built-in local zones; 322-mailauth-iprev.t tests iprev.
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
corpus = os.path.join(d, "corpus")
r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimcorpus.py"), corpus],
                   capture_output=True, text=True, timeout=300)
if not t.is_(r.returncode, 0, "python3-dkim signs the corpus"):
    t.diag(r.stderr)
    t.done()
with open(os.path.join(corpus, "records.json")) as f:
    records = json.load(f)


def eml(name):
    with open(os.path.join(corpus, name + ".eml"), "rb") as f:
        return f.read()


# ---- the DNS data ----
zone = dict(records)
zone["example.org."] = "v=spf1 ip4:127.0.0.1 -all"
zone["fail.example.net."] = "v=spf1 ip4:192.0.2.1 -all"
zone["helo.example.net."] = "v=spf1 ip4:127.0.0.0/8 -all"


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


def server(sub, mods, dns, mailauth=""):
    os.mkdir(os.path.join(d, sub))
    extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
             'queue = { transport = "none"; };\ndns = {\n  trust_anchor = "";\n  %s\n};\n%s'
             % (cert, key, dns, mailauth))
    return gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                                  modules='directory = "%s"; load = [ %s ];'
                                  % (moddir, ", ".join('"%s"' % m for m in mods))),
                     directory=os.path.join(d, sub), db=db)


# dkim.max_signatures = 2: the third signature is not evaluated.
g = server("with", ["smtp", "imap", "mailauth"], local_data(zone),
           "dkim = { max_signatures = 2; };\n")


def gannet(srv, *args, stdin=None):
    return gt.run_gannet(["-c", srv.conf_path] + list(args), input=stdin)


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
t.ok(all(gannet(g, *a).returncode == 0 for a in setup), "the account alice@example.com")
t.is_(gannet(g, "setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def send(msg, mail_from, helo="client.example.net"):
    with smtplib.SMTP("127.0.0.1", p25, local_hostname=helo, timeout=60) as s:
        s.ehlo(helo)
        code, _ = s.mail(mail_from)
        if code != 250:
            return code
        if s.rcpt("alice@example.com")[0] != 250:
            return -1
        try:
            return s.data(msg)[0]
        except smtplib.SMTPDataError as e:
            return e.smtp_code


def last_header():
    """The header of alice's newest message, as stored, read over IMAP."""
    m = imaplib.IMAP4_SSL("127.0.0.1", p993, ssl_context=ctx)
    try:
        m.login("alice@example.com", PW)
        typ, data = m.select("INBOX", readonly=True)
        n = int(data[0])
        typ, data = m.fetch(str(n), "(BODY.PEEK[HEADER])")
        return data[0][1]
    finally:
        m.logout()


def fields(header, name):
    msg = email.parser.BytesParser().parsebytes(header, headersonly=True)
    return [str(v) for v in (msg.get_all(name) or [])]


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


def ours(header):
    """The first Authentication-Results field with our authserv-id, parsed."""
    for v in fields(header, "Authentication-Results"):
        p = parse_authres(v)
        if p is not None and p["id"].lower() == HOST:
            return p
    return None


def sig_b_values(msg):
    """b= of each DKIM-Signature of msg, from the top, white space removed."""
    out = []
    for v in fields(msg.split(b"\r\n\r\n")[0] + b"\r\n\r\n", "DKIM-Signature"):
        tags = {}
        for part in "".join(v.split()).split(";"):
            if "=" in part:
                k, _, val = part.partition("=")
                tags[k] = val
        out.append((tags.get("d"), tags.get("s"), tags.get("b")))
    return out


try:
    g.start(wait_ports=(p25, p993))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, imap and mailauth")
    t.diag(str(e))
    t.done()

# ---- three signatures that verify, SPF pass ----
multi = eml("multiple")
t.is_(send(multi, "alice@example.org"), 250, "signed message from example.org: 250")
h = last_header()
ar = ours(h)
t.ok(ar is not None, "one Authentication-Results with our authserv-id %s, read by python3-authres"
     % HOST)
t.is_(len(fields(h, "Authentication-Results")), 1, "exactly one Authentication-Results field")
res = ar["results"] if ar else []
t.is_([(r["method"], r["result"]) for r in res],
      [("spf", "pass"), ("dkim", "pass"), ("dkim", "pass"), ("dkim", "neutral"), ("dmarc", "none"),
       ("iprev", "pass")],
      "spf=pass, one dkim result per signature: pass, pass, and neutral for the third "
      "(dkim.max_signatures = 2), dmarc=none (example.org publishes no policy), iprev=pass "
      "(127.0.0.1 is localhost both ways in libunbound's built-in zones)")
t.is_(res[0]["props"].get("smtp.mailfrom") if res else None, "alice@example.org",
      "spf: smtp.mailfrom is MAIL FROM's address")
sigs = sig_b_values(multi)
for i, (sd, ss, sb) in enumerate(sigs):
    r = res[1 + i] if len(res) > 1 + i else {"props": {}}
    hb = r["props"].get("header.b", "")
    t.ok(r["props"].get("header.d") == sd and r["props"].get("header.s") == ss and
         len(hb) >= 8 and sb.startswith(hb),
         "dkim result %d: header.d=%s header.s=%s, header.b a prefix of its b= (%s)" % (i + 1, sd, ss, hb))
t.ok(len(res) > 3 and res[3]["reason"], "the neutral one says why")
rspf = fields(h, "Received-SPF")
t.is_(len(rspf), 1, "one Received-SPF field")
t.like(rspf[0] if rspf else "", "pass (", "Received-SPF: pass with a comment")
for kv in ("client-ip=127.0.0.1", 'envelope-from="alice@example.org"', "helo=client.example.net",
           "receiver=%s" % HOST, "identity=mailfrom"):
    t.like(rspf[0] if rspf else "", kv, "Received-SPF has " + kv)
# The order of the prefix: Return-Path, Delivered-To, ours, Received, then
# the message's own header.
names = [line.split(b":")[0].decode() for line in h.split(b"\r\n")
         if line and line[:1] not in (b" ", b"\t")]
t.is_(names[:5], ["Return-Path", "Delivered-To", "Authentication-Results", "Received-SPF",
                  "Received"], "prefix order: Return-Path, Delivered-To, Authentication-Results, "
      "Received-SPF, Received")

# ---- a changed body, SPF fail ----
t.is_(send(eml("body-changed"), "bounce@fail.example.net"), 250,
      "a fail of SPF and DKIM does not refuse the message (250)")
res = (ours(last_header()) or {}).get("results", [])
t.is_([(r["method"], r["result"]) for r in res], [("spf", "fail"), ("dkim", "fail"), ("dmarc", "none"),
                                                ("iprev", "pass")],
      "spf=fail, dkim=fail, dmarc=none, iprev=pass")
t.is_(res[0]["props"].get("smtp.mailfrom") if res else None, "bounce@fail.example.net",
      "spf=fail smtp.mailfrom=bounce@fail.example.net")
t.ok(len(res) > 1 and res[1]["reason"], "dkim=fail has a reason")

# ---- MAIL FROM <>: the HELO identity; no signature ----
plain = (b"From: someone@helo.example.net\r\nTo: alice@example.com\r\nSubject: unsigned\r\n"
         b"Message-ID: <unsigned@helo.example.net>\r\n\r\nNo signature.\r\n")
t.is_(send(plain, "<>", helo="helo.example.net"), 250, "MAIL FROM <>: 250")
h = last_header()
res = (ours(h) or {}).get("results", [])
t.is_([(r["method"], r["result"]) for r in res], [("spf", "pass"), ("dkim", "none"), ("dmarc", "none"),
                                                ("iprev", "pass")],
      "MAIL FROM <>: spf=pass (HELO identity), dkim=none, dmarc=none, iprev=pass")
t.is_(res[0]["props"].get("smtp.helo") if res else None, "helo.example.net",
      "spf: smtp.helo is the HELO name")
t.like((fields(h, "Received-SPF") or [""])[0], "identity=helo", "Received-SPF identity=helo")

# ---- a forged Authentication-Results with our authserv-id ----
FORGED = (b"Authentication-Results: (a comment) " + HOST.upper().encode() +
          b"; spf=pass smtp.mailfrom=ceo@example.org;\r\n dkim=pass header.d=example.org\r\n"
          b"Authentication-Results: other.example; spf=pass smtp.mailfrom=x@example.org\r\n")
forged = FORGED + plain
t.is_(send(forged, "mallory@fail.example.net"), 250, "a message with a forged "
      "Authentication-Results is delivered")
h = last_header()
all_ar = fields(h, "Authentication-Results")
t.is_(len(all_ar), 2, "the copy has two Authentication-Results: ours, and other.example's")
first = parse_authres(all_ar[0]) if all_ar else None
t.is_([(r["method"], r["result"]) for r in (first or {}).get("results", [])],
      [("spf", "fail"), ("dkim", "none"), ("dmarc", "none"), ("iprev", "pass")],
      "the first is ours, with what we found (spf=fail, dkim=none, dmarc=none, iprev=pass)")
t.like(all_ar[1] if len(all_ar) > 1 else "", "other.example; spf=pass",
       "another authserv-id's field is kept as it came")
t.is_([parse_authres(v)["id"].lower() for v in all_ar if parse_authres(v)].count(HOST), 1,
      "only one Authentication-Results names us")
renamed = fields(h, "X-Forged-Authentication-Results")
t.is_(len(renamed), 1, "the forged one is stored as X-Forged-Authentication-Results (RFC 8601 5)")
t.like(renamed[0] if renamed else "", "MAIL.TEST; spf=pass smtp.mailfrom=ceo@example.org",
       "with its value as it came")
t.ok(h.find(b"Received:") < h.find(b"X-Forged-Authentication-Results: (a comment) MAIL.TEST"),
     "in the message's own header, below our Received")
log = g.log()
t.like(log, "event=authres_forged", "the forged field is logged by mailauth")
t.like(log, "event=authres_renamed", "and its renaming by the smtp module")
# A signed message with a forged field above its signature (not covered
# by it): DKIM passes over the bytes as they came.
t.is_(send(FORGED + eml("rsa2048-relaxed-relaxed"), "alice@example.org"), 250,
      "a signed message with a forged field: 250")
h = last_header()
res = (ours(h) or {}).get("results", [])
t.is_([(r["method"], r["result"]) for r in res][:2], [("spf", "pass"), ("dkim", "pass")],
      "its signature still verifies (spf=pass, dkim=pass)")
t.is_(len(fields(h, "X-Forged-Authentication-Results")), 1, "and the forged field is renamed")
# The header held across many chunks: 150 KB of fields before the forged
# one, whose empty line comes chunks later.
pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 900) for i in range(160))
t.is_(send(pad + FORGED + plain, "mallory@fail.example.net"), 250,
      "a forged field after 150 KB of header: 250")
h = last_header()
t.is_((len(fields(h, "X-Forged-Authentication-Results")), len(fields(h, "X-Pad-159"))), (1, 1),
      "renamed, the header around it whole")
m = imaplib.IMAP4_SSL("127.0.0.1", p993, ssl_context=ctx)
m.login("alice@example.com", PW)
typ, data = m.select("INBOX", readonly=True)
typ, data = m.fetch(data[0].decode(), "(BODY.PEEK[TEXT])")
m.logout()
t.is_(data[0][1], b"No signature.\r\n", "and the body after it as it came")
# A message that is all header (no empty line): held to the end of data.
t.is_(send(b"Subject: only a header\r\n" + FORGED.rstrip(b"\r\n") + b"\r\n",
           "mallory@fail.example.net"), 250, "a message without a body: 250")
h = last_header()
t.is_(len(fields(h, "X-Forged-Authentication-Results")), 1, "its forged field renamed too")
g.stop()

# ---- a DNS that does not answer: temperror, delivered ----
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
g2 = server("slow", ["smtp", "imap", "mailauth"],
            'resolvers = [ "127.0.0.1@%d" ];\n  timeout = "20s";\n  %s' % (port, local_data(records)),
            'mailauth = { inbound_timeout = "2s"; };\n')
try:
    g2.start(wait_ports=(p25, p993))
    started = time.time()
    t.is_(send(eml("rsa2048-relaxed-relaxed"), "someone@slow.example"), 250,
          "SPF's DNS does not answer: the message is still delivered (250)")
    took = time.time() - started
    t.ok(took < 15, "after mailauth.inbound_timeout, not the DNS timeout (%.1f s)" % took)
    res = (ours(last_header()) or {}).get("results", [])
    t.is_([(r["method"], r["result"]) for r in res], [("spf", "temperror"), ("dkim", "pass"), ("dmarc", "none"),
                                                ("iprev", "pass")],
          "spf=temperror (the DKIM key from local data still passes), dmarc=none (its lookup, "
          "started at the end of the header, got no record), iprev=pass (localhost, built in)")
    t.ok(len(res) > 0 and res[0]["reason"], "spf=temperror has a reason")
    t.like(g2.log(), "event=inbound_timeout", "the timeout is logged")
finally:
    g2.stop()
    dns_srv.kill()

# ---- mailauth not loaded ----
g3 = server("without", ["smtp", "imap"], local_data(zone))
g3.start(wait_ports=(p25, p993))
t.is_(send(eml("multiple"), "alice@example.org"), 250, "without mailauth: 250")
h = last_header()
t.is_((fields(h, "Authentication-Results"), fields(h, "Received-SPF")), ([], []),
      "without mailauth: no Authentication-Results, no Received-SPF")
names = [line.split(b":")[0].decode() for line in h.split(b"\r\n")
         if line and line[:1] not in (b" ", b"\t")]
t.is_(names[:3], ["Return-Path", "Delivered-To", "Received"], "without mailauth: the usual prefix")
t.is_(send(FORGED + plain, "mallory@fail.example.net"), 250, "without mailauth, a forged field: 250")
h = last_header()
t.is_((len(fields(h, "X-Forged-Authentication-Results")), len(fields(h, "Authentication-Results"))),
      (1, 1), "without mailauth: the forged field renamed too, other.example's kept")
g3.stop()
t.done()
