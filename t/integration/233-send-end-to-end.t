#!/usr/bin/env python3
"""
t/integration/233-send-end-to-end.t: sending mail (issue 9) from the
client to the remote server, in one running `gannet serve`: submitted on
587 and 465, queued, signed, and delivered by the queue's runner through
its MX lookup (dns.local_data) to a loopback SMTP server
(t/lib/smtpsink.py) standing for the recipients' server.

Seven messages, one for each way in:
- smtplib on 587 with STARTTLS and a password (AUTH PLAIN), with
  X-Gannet-Extra headers;
- smtplib on 465 with a client certificate and no AUTH;
- smtplib on 587 with the certificate and AUTH EXTERNAL;
- swaks on 587 with a password;
- curl on 465 (smtps://) with a password;
- `gannet sendmail` with a password;
- smtplib as a FromID login address.
At the remote server each arrives once, over STARTTLS, for its recipient,
with the envelope sender of the account's address (and for the FromID
login `alicef+<fromid>@example.com`, the FromID the queue recorded), with
Date and Message-ID, without the X-Gannet-Extra headers, and with two
DKIM signatures (Ed25519 and RSA) that Python's dkim verifies; the
retired records show each delivered, with the MX host, its address and
the 250, and keep the extra data.
"""
import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")

moddir = gt.module_dir()
so = os.path.join(gt.BUILDDIR, "modules", "submission", ".libs", "submission.so")
if not os.path.exists(so):
    t.ok(False, "the submission module is built (%s)" % so)
    t.done()
shutil.copy(so, os.path.join(moddir, "submission.so"))
os.chmod(os.path.join(moddir, "submission.so"), 0o755)

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
sink_cert, sink_key = gt.make_cert(d, "sink", "mx.example.net")
p587, p465, psink = gt.free_port(), gt.free_port(), gt.free_port()

# The recipients' server.
record = os.path.join(d, "sink.jsonl")
script = os.path.join(d, "sink.json")
with open(script, "w") as f:
    json.dump({}, f)
sink = subprocess.Popen([sys.executable, os.path.join(LIB, "smtpsink.py"), "--host", "127.0.0.1",
                         "--port", str(psink), "--record", record, "--script", script,
                         "--cert", sink_cert, "--key", sink_key], stdout=subprocess.PIPE, text=True)
t.is_(sink.stdout.readline().split()[:1], ["ready"], "the remote server (smtpsink) listens")

listeners = ", ".join([
    '{ name = "sub"; address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }' % p587,
    '{ name = "subs"; address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "implicit"; }' % p465,
])
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
         'queue = { smtp_port = %d; };\n'
         'dns = { local_data = [ "example.net. IN MX 10 mx.example.net.", '
         '"mx.example.net. IN A 127.0.0.1" ]; };\n' % (cert, key, psink))
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "submission" ];' % moddir),
              directory=d)
PW = "alice's password 2"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "address", "add", "alicef@example.com", "alice"),
         ("config", "account", "fromid", "alice", "add", "alicef@example.com"),
         ("queue", "retired", "keep", "alice", "30d")]
t.ok(all(gannet(*a).returncode == 0 for a in setup),
     "migrate, example.com, alice with alicef@example.com as a FromID login")
t.is_(gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")
recs = {}
for sel, alg in (("ed1", "ed25519"), ("rsa1", "rsa")):
    r = gannet("config", "dkim", "add", "example.com", sel, alg)
    recs.update({name: "".join(parts) for name, parts in gt.txt_records(r.stdout).items()})
t.is_(sorted(recs), ["ed1._domainkey.example.com.", "rsa1._domainkey.example.com."],
      "DKIM keys ed25519 and rsa for example.com, their TXT records printed")
recfile = os.path.join(d, "records.json")
with open(recfile, "w") as f:
    json.dump(recs, f)
ccert, ckey = gt.make_cert(d, "client", "client a")
with open(ccert) as f:
    t.is_(gannet("config", "tlspubkey", "add", "alice@example.com", "key a", stdin=f.read()).returncode,
          0, "a client certificate registered for alice@example.com")

try:
    g.start(wait_ports=(p587, p465))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with submission")
    t.diag(str(e))
    t.done()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False
cctx.verify_mode = ssl.CERT_NONE
cctx.load_cert_chain(ccert, ckey)


def message(to, subject, frm="alice@example.com", extra=""):
    return ("From: Alice <%s>\r\nTo: %s\r\nSubject: %s\r\n%s\r\nHello %s,\r\n\r\nthis  goes out.\r\n"
            % (frm, to, subject, extra, to))


def smtplib_send(s, frm, to, msg):
    try:
        s.sendmail(frm, [to], msg.encode())
        return "250"
    except smtplib.SMTPException as e:
        return str(e)
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


QUEUED = "250 2.0.0 Message queued as"

# 1. 587, STARTTLS, a password, extra data.
s = smtplib.SMTP("127.0.0.1", p587, timeout=30)
s.starttls(context=ctx)
s.login("alice@example.com", PW)
t.is_(smtplib_send(s, "alice@example.com", "bob@example.net",
                   message("bob@example.net", "one", extra="X-Gannet-Extra-Order-Id: 17\r\n")),
      "250", "smtplib, 587, STARTTLS, password, X-Gannet-Extra-Order-Id: queued")

# 2. 465 with the client certificate, no AUTH.
s = smtplib.SMTP_SSL("127.0.0.1", p465, timeout=30, context=cctx)
t.is_(smtplib_send(s, "alice@example.com", "carol@example.net", message("carol@example.net", "two")),
      "250", "smtplib, 465, client certificate, no AUTH: queued")

# 3. 587 with the certificate and AUTH EXTERNAL.
s = smtplib.SMTP("127.0.0.1", p587, timeout=30)
s.starttls(context=cctx)
s.ehlo()
code, _ = s.docmd("AUTH", "EXTERNAL =")
t.is_(code, 235, "smtplib, 587, client certificate, AUTH EXTERNAL: 235")
t.is_(smtplib_send(s, "alice@example.com", "dave@example.net", message("dave@example.net", "three")),
      "250", "and queued")

# 4. swaks.
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p587), "--tls",
                    "--auth", "PLAIN", "--auth-user", "alice@example.com", "--auth-password", PW,
                    "--from", "alice@example.com", "--to", "erin@example.net",
                    "--header", "From: alice@example.com", "--header", "Subject: four"],
                   capture_output=True, text=True, timeout=60)
t.like(r.stdout, "<~  " + QUEUED, "swaks, 587, --tls --auth PLAIN: queued")

# 5. curl, smtps:// with a password.
mfile = os.path.join(d, "curl.eml")
with open(mfile, "w") as f:
    f.write(message("frank@example.net", "five"))
r = subprocess.run(["curl", "-sS", "-v", "-k", "--user", "alice@example.com:" + PW,
                    "--mail-from", "alice@example.com", "--mail-rcpt", "frank@example.net",
                    "-T", mfile, "smtps://127.0.0.1:%d" % p465], capture_output=True, text=True, timeout=60)
t.ok(r.returncode == 0 and "< " + QUEUED in r.stderr, "curl smtps:// with a password: queued")
if r.returncode != 0:
    t.diag(r.stderr[-1500:])

# 6. gannet sendmail.
sconf = os.path.join(d, "sendmail.conf")
with open(sconf, "w") as f:
    f.write("host = 127.0.0.1\nport = %d\ntls = starttls\ntls_ca = %s\ntls_name = mail.test\n"
            "from = alice@example.com\nusername = alice@example.com\npassword = %s\n" % (p587, cert, PW))
os.chmod(sconf, 0o600)
r = subprocess.run([gt.GANNET, "sendmail", "-C", sconf, "gina@example.net"],
                   input=message("gina@example.net", "six").replace("\r\n", "\n").encode(),
                   capture_output=True, timeout=60)
t.is_(r.returncode, 0, "gannet sendmail gina@example.net: exit 0 (%s)" % r.stderr.decode()[-200:].strip())

# 7. A FromID login.
s = smtplib.SMTP("127.0.0.1", p587, timeout=30)
s.starttls(context=ctx)
s.login("alicef@example.com", PW)
t.is_(smtplib_send(s, "alicef@example.com", "hank@example.net",
                   message("hank@example.net", "seven", frm="alicef@example.com")),
      "250", "smtplib as alicef@example.com, a FromID login: queued")


# ---- at the remote server ----
def received():
    if not os.path.exists(record):
        return []
    with open(record) as f:
        return [e for e in (json.loads(ln) for ln in f if ln.strip()) if e["event"] == "message"]


RCPTS = ["bob", "carol", "dave", "erin", "frank", "gina", "hank"]
deadline = time.time() + 120
while time.time() < deadline and len(received()) < len(RCPTS):
    time.sleep(0.2)
got = received()
by_rcpt = {}
for e in got:
    for r in e["rcpts"]:
        by_rcpt.setdefault(r, []).append(e)
t.is_(sorted(by_rcpt), sorted(r + "@example.net" for r in RCPTS),
      "the remote server has a message for each of the seven recipients")
t.ok(all(len(v) == 1 for v in by_rcpt.values()) and len(got) == len(RCPTS), "each once (%d messages)" % len(got))
t.ok(all(e["tls"] for e in got), "each over STARTTLS")
plain = [r for r in RCPTS if r != "hank"]
t.ok(all(by_rcpt.get(r + "@example.net", [{}])[0].get("from") == "alice@example.com" for r in plain),
     "MAIL FROM:<alice@example.com> for the six sent as alice@example.com (%s)"
     % sorted(set(by_rcpt.get(r + "@example.net", [{}])[0].get("from") for r in plain)))
hank = by_rcpt.get("hank@example.net", [{}])[0]
fromid = re.match(r"^alicef\+([A-Za-z0-9_-]{22})@example\.com$", hank.get("from", ""))
t.ok(fromid is not None, "the FromID login's MAIL FROM is alicef+<fromid>@example.com (%s)" % hank.get("from"))
if fromid:
    r = gannet("queue", "fromid", fromid.group(1))
    t.ok(r.returncode == 0 and "hank@example.net" in r.stdout,
         "gannet queue fromid finds the recipient it was made for (%s)" % r.stdout.strip()[:120])

for rcpt in RCPTS:
    e = by_rcpt.get(rcpt + "@example.net", [None])[0]
    data = e["data"].encode("latin-1") if e else b""
    hdr = data.split(b"\r\n\r\n", 1)[0]
    path = os.path.join(d, "got-%s.eml" % rcpt)
    with open(path, "wb") as f:
        f.write(data)
    v = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), path, recfile],
                       capture_output=True, text=True, timeout=60)
    t.is_(v.stdout.split("\n")[:2], ["0 pass", "1 pass"],
          "%s@example.net: both DKIM signatures verify at the remote server" % rcpt)
    t.ok(re.search(rb"(?mi)^Date: ", hdr) and re.search(rb"(?mi)^Message-ID: <", hdr)
         and b"X-Gannet-Extra" not in hdr,
         "%s: with Date and Message-ID, without X-Gannet-Extra headers" % rcpt)

# ---- history ----
deadline = time.time() + 60
rows = []
while time.time() < deadline:
    rows = gannet("queue", "retired", "list", "--account", "alice").stdout.splitlines()
    if len(rows) >= len(RCPTS):
        break
    time.sleep(0.2)
t.is_(len(rows), len(RCPTS), "gannet queue retired list: seven recipients retired")
bob = [ln for ln in rows if "bob@example.net" in ln]
out = gannet("queue", "retired", "print", bob[0].split()[0]).stdout if bob else ""
t.ok(re.search(r"delivered", out) and "mx.example.net" in out and "127.0.0.1" in out and "250" in out,
     "retired print: delivered, by mx.example.net at 127.0.0.1, 250")
t.like(out, "Order-Id", "and the message's extra data is kept")
if not (bob and "Order-Id" in out):
    t.diag(out)

sink.kill()
t.ok(g.stop() == 0, "gannet stops cleanly")
t.done()
