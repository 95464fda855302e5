#!/usr/bin/env python3
"""
t/integration/322-mailauth-iprev.t: the iprev check (RFC 8601 3.2,
RFC 5451 3) of the mailauth module on mail that arrives over SMTP: the
client's address, its PTR names, their A records back.  The result ends
our Authentication-Results field as "iprev=RESULT policy.iprev=IP (NAME)"
(RFC 8601 2.7.3), read back over IMAP and parsed with Debian's
python3-authres.

The clients connect from loopback addresses other than 127.0.0.1
(127.0.0.1 is localhost both ways in libunbound's built-in zones), each
with its reverse data in dns.local_data:

- 127.0.0.2: two PTR names, one mapping elsewhere, one back: pass, with
  the name that maps back;
- 127.0.0.3: a PTR name whose A is another address: fail;
- 127.0.0.4: no PTR (NXDOMAIN): fail, "no PTR";
- 127.0.0.5: a PTR name that does not exist: fail;
- 127.0.0.6: 12 PTR names, none maps back: fail, and only 10 of them
  were looked up (the reason says so);
- 127.0.0.7, forwarding to t/lib/dnsserver.py: a PTR name under
  slow.example, whose A is never answered: temperror at
  mailauth.inbound_timeout (not the DNS timeout), the message delivered;
- 127.0.0.8, the same server: a PTR name whose A gets SERVFAIL:
  temperror with the reason.
Every verdict is logged, in the line of the message's decision
(event=dmarc ... iprev=...).
"""
import email.parser
import re
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
HOST = "mail.test"
PW = "a password for the test"
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "imap", "mailauth")

d = gt.tmpdir()

# ---- the DNS data ----
many = ["n%d.iprev.example" % i for i in range(1, 13)]
DATA = [
    "2.0.0.127.in-addr.arpa. 300 IN PTR elsewhere.iprev.example.",
    "2.0.0.127.in-addr.arpa. 300 IN PTR good.iprev.example.",
    "good.iprev.example. 300 IN A 127.0.0.2",
    "elsewhere.iprev.example. 300 IN A 192.0.2.9",
    "3.0.0.127.in-addr.arpa. 300 IN PTR elsewhere.iprev.example.",
    "5.0.0.127.in-addr.arpa. 300 IN PTR missing.iprev.example.",
]
for i, n in enumerate(many, 1):
    DATA.append("6.0.0.127.in-addr.arpa. 300 IN PTR %s." % n)
    DATA.append("%s. 300 IN A 192.0.2.%d" % (n, 100 + i))
SLOW = [
    "7.0.0.127.in-addr.arpa. 300 IN PTR host.slow.example.",
    "8.0.0.127.in-addr.arpa. 300 IN PTR fail.example.",
]


def local_data(lines):
    return "local_data = [\n" + ",\n".join('    "%s"' % x for x in lines) + "\n  ];"


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


def gannet(srv, *args, stdin=None):
    return gt.run_gannet(["-c", srv.conf_path] + list(args), input=stdin)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
MSG = (b"From: someone@example.org\r\nTo: alice@example.com\r\nSubject: iprev\r\n"
       b"Message-ID: <iprev@example.org>\r\n\r\nHello.\r\n")


def send(src, mail_from="someone@example.org"):
    with smtplib.SMTP("127.0.0.1", p25, local_hostname="client.example.net", timeout=60,
                      source_address=(src, 0)) as s:
        s.ehlo("client.example.net")
        if s.mail(mail_from)[0] != 250 or s.rcpt("alice@example.com")[0] != 250:
            return -1
        try:
            return s.data(MSG)[0]
        except smtplib.SMTPDataError as e:
            return e.smtp_code


def last_header():
    m = imaplib.IMAP4_SSL("127.0.0.1", p993, ssl_context=ctx)
    try:
        m.login("alice@example.com", PW)
        typ, data = m.select("INBOX", readonly=True)
        typ, data = m.fetch(str(int(data[0])), "(BODY.PEEK[HEADER])")
        return data[0][1]
    finally:
        m.logout()


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


def iprev_of(header):
    """Our field (the first with our authserv-id): its iprev results, and
    the field's raw text."""
    msg = email.parser.BytesParser().parsebytes(header, headersonly=True)
    for v in msg.get_all("Authentication-Results") or []:
        p = parse_authres(str(v))
        if p is not None and p["id"].lower() == HOST:
            return [r for r in p["results"] if r["method"] == "iprev"], " ".join(str(v).split())
    return [], ""


def check(src, result, what, name=None, reason=None):
    t.is_(send(src), 250, "%s: from %s, 250" % (what, src))
    res, raw = iprev_of(last_header())
    if not t.is_([(r["result"], r["props"].get("policy.iprev")) for r in res], [(result, src)],
                 "%s: one iprev=%s policy.iprev=%s (python3-authres)" % (what, result, src)):
        t.diag(raw)
    if name is not None:
        t.like(raw, "iprev=%s policy.iprev=%s (%s)" % (result, src, name),
               "%s: the name that maps back in a comment" % what)
    else:
        t.ok("policy.iprev=%s (" % src not in raw, "%s: no name in a comment" % what)
    if reason is not None:
        t.like(res[0]["reason"] if res and res[0]["reason"] else "", reason,
               "%s: reason says %r" % (what, reason))
    return raw


# ---- local data only ----
g = server("local", local_data(DATA))
setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
t.ok(all(gannet(g, *a).returncode == 0 for a in setup), "the account alice@example.com")
t.is_(gannet(g, "setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")
try:
    g.start(wait_ports=(p25, p993))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, imap and mailauth")
    t.diag(str(e))
    t.done()

try:
    check("127.0.0.2", "pass", "two PTR names, one maps back", name="good.iprev.example")
    check("127.0.0.3", "fail", "the PTR name maps elsewhere", reason="maps back")
    check("127.0.0.4", "fail", "no PTR", reason="no PTR")
    check("127.0.0.5", "fail", "the PTR name does not exist", reason="maps back")
    check("127.0.0.6", "fail", "12 PTR names, none maps back",
          reason="none of the 10 PTR names of 127.0.0.6")
    check("127.0.0.2", "pass", "again, two PTR names", name="good.iprev.example")
    log = g.log()
    t.like(log, "iprev=pass iprev_name=good.iprev.example", "the pass is logged with its name")
    t.ok(re.search(r"event=dmarc .* dkim_signatures=\d+ iprev=pass iprev_name=good\.iprev\.example",
                   log) is not None, "the check is logged in the decision's line")
    t.is_(log.count("event=inbound_checked"), 0, "one line a message (event=inbound_checked is gone)")
    t.like(log, 'iprev=fail iprev_name=- iprev_reason="no PTR for 127.0.0.4 (NXDOMAIN)"',
           "a fail is logged with its reason")
finally:
    g.stop()

# ---- a DNS that does not answer, one that fails ----
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
            % (port, local_data(SLOW)), 'mailauth = { inbound_timeout = "2s"; };\n')
try:
    g2.start(wait_ports=(p25, p993))
    started = time.time()
    check("127.0.0.7", "temperror", "the PTR name's A is never answered", reason="timeout")
    took = time.time() - started
    t.ok(took < 15, "after mailauth.inbound_timeout, not the DNS timeout (%.1f s)" % took)
    with open(os.path.join(d, "dns.queries")) as f:
        t.like(f.read(), "host.slow.example. A", "the A of the PTR name was asked")
    check("127.0.0.8", "temperror", "the PTR name's A gets SERVFAIL", reason="SERVFAIL")
finally:
    g2.stop()
    dns_srv.kill()
t.done()
