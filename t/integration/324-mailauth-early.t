#!/usr/bin/env python3
"""
t/integration/324-mailauth-early.t: the mailauth module starts SPF and
iprev at the message's first chunk, not at the end of data (they need
only the client's address, HELO and MAIL FROM), and a transaction that
ends before its end of data cancels them: no crash, no result applied to
the next transaction.  Likewise the DMARC policy lookup and the DKIM key
lookups, started once the header section is complete.

DNS: dns.local_data for the reverse data, the rest forwarded to
t/lib/dnsserver.py, which never answers names under slow.example.

- from 127.0.0.7 (PTR host.slow.example, whose A is never answered): a
  client sends the header section (From: someone@dmarc.slow.example, a
  DKIM-Signature with d=dkim.slow.example s=sel) and the start of the
  body and stops; the A query and the TXT queries of
  _dmarc.dmarc.slow.example and sel._domainkey.dkim.slow.example reach
  the DNS server while the message is still open (started early); the
  client closes the connection;
- the same again, then a second client from 127.0.0.2 (PTR
  good.iprev.example, which maps back) sends a whole message: iprev=pass
  with its name, in less than mailauth.inbound_timeout (nothing of the
  cancelled transactions waited for or applied), the server still up,
  exactly one check logged, event=dmarc (the closed ones none);
- a third message from 127.0.0.7, whole: temperror at the timeout, as
  before;
- a whole message from 127.0.0.2 signed by d=dkim.slow.example (whose
  key is never answered): dkim=temperror at the timeout, iprev=pass.
"""
import email.parser
import imaplib
import json
import os
import smtplib
import ssl
import subprocess
import sys
import socket
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



SLOW = [
    "7.0.0.127.in-addr.arpa. 300 IN PTR host.slow.example.",
    "2.0.0.127.in-addr.arpa. 300 IN PTR good.iprev.example.",
    "good.iprev.example. 300 IN A 127.0.0.2",
]


# A signature whose key (sel._domainkey.dkim.slow.example) is never
# answered; well formed, so that the verifier needs its key.
SLOW_SIG = (b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=dkim.slow.example;\r\n"
            b" s=sel; h=from:to:subject; bh=" + b"A" * 43 + b"=; b=AAAA\r\n")


def reply(f):
    """One SMTP reply (its last line)."""
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line


def open_and_stop(src):
    """MAIL, RCPT, DATA and the start of a message; the socket, still open."""
    c = socket.create_connection(("127.0.0.1", p25), timeout=30, source_address=(src, 0))
    f = c.makefile("rb")
    ok = reply(f).startswith(b"220")
    for cmd, code in ((b"EHLO client.example.net", b"250"), (b"MAIL FROM:<someone@example.org>", b"250"),
                      (b"RCPT TO:<alice@example.com>", b"250"), (b"DATA", b"354")):
        c.sendall(cmd + b"\r\n")
        ok = reply(f).startswith(code) and ok
    c.sendall(SLOW_SIG + b"From: someone@dmarc.slow.example\r\nTo: alice@example.com\r\n"
              b"Subject: cut\r\n\r\n" + b"a line of the body that is not finished\r\n" * 200)
    return c, f, ok


def queried(name, before, wait=10.0):
    """Whether the DNS server saw name's query past offset before."""
    deadline = time.time() + wait
    path = os.path.join(d, "dns.queries")
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as q:
                if name in q.read()[before:]:
                    return True
        time.sleep(0.1)
    return False


def queries_len():
    path = os.path.join(d, "dns.queries")
    return os.path.getsize(path) if os.path.exists(path) else 0


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
g = server("early", 'resolvers = [ "127.0.0.1@%d" ];\n  timeout = "20s";\n  %s'
           % (port, local_data(SLOW)), 'mailauth = { inbound_timeout = "3s"; };\n')
setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
t.ok(all(gannet(g, *a).returncode == 0 for a in setup), "the account alice@example.com")
t.is_(gannet(g, "setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")
try:
    g.start(wait_ports=(p25, p993))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, imap and mailauth")
    t.diag(str(e))
    dns_srv.kill()
    t.done()

try:
    for n in (1, 2):
        before = queries_len()
        c, f, ok = open_and_stop("127.0.0.7")
        t.ok(ok, "cut %d: MAIL, RCPT, DATA accepted, the start of the message sent" % n)
        t.ok(queried("host.slow.example. A", before),
             "cut %d: iprev's A query sent while the message is still open" % n)
        t.ok(queried("_dmarc.dmarc.slow.example. TXT", before),
             "cut %d: the From domain's DMARC query sent once the header is complete" % n)
        t.ok(queried("sel._domainkey.dkim.slow.example. TXT", before),
             "cut %d: the DKIM key's query sent once the header is complete" % n)
        c.close()
        f.close()
    time.sleep(0.5)
    started = time.time()
    check("127.0.0.2", "pass", "after two cut transactions", name="good.iprev.example")
    took = time.time() - started
    t.ok(took < 3, "not held by the cut transactions' lookups (%.1f s)" % took)
    t.ok(g.proc.poll() is None, "the server is still running")
    log = g.log()
    t.is_(log.count("event=dmarc "), 1, "one check logged: none for the cut transactions")
    t.ok("event=inbound_timeout" not in log, "no timeout fired for the cut transactions")
    check("127.0.0.7", "temperror", "a whole message, the A never answered", reason="timeout")
    t.is_(g.log().count("event=dmarc "), 2, "its check logged")

    # A whole message whose DKIM key never comes: temperror at the timeout.
    started = time.time()
    with smtplib.SMTP("127.0.0.1", p25, local_hostname="client.example.net", timeout=60,
                      source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.example.net")
        s.mail("someone@example.org")
        s.rcpt("alice@example.com")
        code = s.data(SLOW_SIG + MSG)[0]
    took = time.time() - started
    t.is_(code, 250, "a message whose DKIM key is never answered: 250")
    t.diag("took %.1f s (the timeout, or the resolver giving up)" % took)
    msg = email.parser.BytesParser().parsebytes(last_header(), headersonly=True)
    ours = [parse_authres(str(v)) for v in msg.get_all("Authentication-Results") or []]
    ours = [x for x in ours if x is not None and x["id"].lower() == HOST]
    res = ours[0]["results"] if ours else []
    t.is_([(r["method"], r["result"], r["props"].get("header.d")) for r in res
           if r["method"] in ("dkim", "iprev")],
          [("dkim", "temperror", "dkim.slow.example"), ("iprev", "pass", None)],
          "dkim=temperror for d=dkim.slow.example, iprev=pass (python3-authres)")
    t.like(next((r["reason"] or "" for r in res if r["method"] == "dkim"), ""), "key",
           "the dkim reason names the key")
finally:
    g.stop()
    dns_srv.kill()
t.done()
