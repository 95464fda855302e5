#!/usr/bin/env python3
"""
t/integration/237-requiretls.t: REQUIRETLS (RFC 8689) in and out, in a
running `gannet serve` with the smtp and submission modules and with
`gannet queue run` against loopback test servers (t/lib/smtpsink.py):

- EHLO offers REQUIRETLS on port 25 and on submission only after
  STARTTLS; MAIL FROM ... REQUIRETLS in the clear: 530 5.7.10 on both;
  over TLS it is taken (port 25: delivered, logged requiretls=yes);
- submitted with REQUIRETLS: queued with tls=requiretls (`gannet queue
  list`), "TLS-Required: No" queued as tls=relaxed, both at once as
  requiretls (RFC 8689), neither without tls=; the runner sends the
  REQUIRETLS one to a server with a certificate that verifies (the test CA
  in tls.client_ca_file) and REQUIRETLS offered, with MAIL FROM ... REQUIRETLS;
- `gannet smtp send --requiretls`: the client sends MAIL FROM ...
  REQUIRETLS, and refuses (554 5.7.30) a server that does not offer it;
- with `gannet queue add --require-tls yes`: a server without REQUIRETLS,
  one without STARTTLS, one whose certificate does not verify: no MAIL is
  sent, the recipient fails for good with 554 5.7.30 and alice gets a DSN
  in her Inbox; the same messages without the flag, or relaxed, go to the
  server without REQUIRETLS (so the refusal is REQUIRETLS's); a REQUIRETLS
  delivery never takes a connection parked for reuse; when one MX host
  cannot be reached and the other refuses, the attempt is temporary;
- `gannet queue requiretls ID yes|no|default` changes a queued message's.
"""
import atexit
import json
import os
import re
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "submission")

# The test "CA": the good sinks' self-signed certificates, trusted by the
# queue through tls.client_ca_file; the bad sink's is trusted by nobody.
good_cert, good_key = gt.make_cert(d, "good", "mx.good.example")
noreq_cert, noreq_key = gt.make_cert(d, "noreq", "mx.noreq.example")
bad_cert, bad_key = gt.make_cert(d, "bad", "other.example")
ca = os.path.join(d, "ca.pem")
with open(ca, "w") as f:
    f.write(open(good_cert).read() + open(noreq_cert).read())
PORT = gt.free_port()


class Sink:
    def __init__(self, name, host, cert=None, key=None, script=None):
        self.record = os.path.join(d, name + ".jsonl")
        self.script = os.path.join(d, name + ".json")
        with open(self.script, "w") as f:
            json.dump(script or {}, f)
        args = [sys.executable, SINK, "--host", host, "--port", str(PORT), "--record", self.record,
                "--script", self.script]
        if cert:
            args += ["--cert", cert, "--key", key]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        self.ok = len(line) == 2 and line[0] == "ready"
        atexit.register(self.stop)

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def events(self, event=None):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if event is None or e["event"] == event]

    def mails(self):
        return [e["line"] for e in self.events("command") if e["line"].upper().startswith("MAIL")]

    def messages(self, rcpt):
        return [e for e in self.events("message") if rcpt in e["rcpts"]]


good = Sink("good", "127.0.0.1", good_cert, good_key, {"requiretls": True})
noreq = Sink("noreq", "127.0.0.2", noreq_cert, noreq_key)
plain = Sink("plain", "127.0.0.3", script={"requiretls": True})
bad = Sink("bad", "127.0.0.4", bad_cert, bad_key, {"requiretls": True})
t.ok(all(s.ok for s in (good, noreq, plain, bad)), "four sinks listen on port %d" % PORT)

DNS = """
dns = { local_data = [
  "good.example. IN MX 10 mx.good.example.",
  "mx.good.example. IN A 127.0.0.1",
  "noreq.example. IN MX 10 mx.noreq.example.",
  "mx.noreq.example. IN A 127.0.0.2",
  "plain.example. IN MX 10 mx.plain.example.",
  "mx.plain.example. IN A 127.0.0.3",
  "badcert.example. IN MX 10 mx.badcert.example.",
  "mx.badcert.example. IN A 127.0.0.4",
  "two.example. IN MX 10 dead.two.example.",
  "two.example. IN MX 20 mx.noreq.example.",
  "dead.two.example. IN A 127.0.0.5"
]; };
"""
cert, key = gt.make_cert(d, "server", "mail.test")
p587, p25 = gt.free_port(), gt.free_port()
listeners = ", ".join([
    '{ name = "sub"; address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }' % p587,
    '{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "starttls"; }' % p25,
])
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); client_ca_file = "%s"; };\n'
         'queue = { smtp_port = %d; };\n%s' % (cert, key, ca, PORT, DNS))
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "smtp", "submission" ];' % moddir),
              directory=d)
PW = "alice's password 1"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


def wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    t.diag("timed out waiting for " + what)
    return False


def t_re(got, pattern, name):
    r = t.ok(got is not None and re.search(pattern, got) is not None, name)
    if not r:
        t.diag("%r does not match %r" % (got, pattern))
    return r


def retired(rcpt):
    r = sql("SELECT result || ' ' || coalesce(last_code::text, '-') || ' ' || coalesce(last_enhanced, '-') "
            "|| ' ' || coalesce(require_tls::text, '-') FROM gn_queue_retired WHERE rcpt = '%s' "
            "ORDER BY id DESC LIMIT 1" % rcpt)
    return r or None


def listing(rcpt):
    for line in gannet("queue", "list").stdout.splitlines():
        if "to=<%s>" % rcpt in line:
            return line
    return None


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("queue", "retired", "keep", "alice", "30d"),
         ("queue", "holdrules", "add", "--recipient-domain", "hold.example")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "migrate, alice, a hold rule for hold.example")
t.is_(gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")

try:
    g.start(wait_ports=(p587, p25))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp and submission")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with smtp and submission")

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

# ---- inbound: EHLO and MAIL FROM ... REQUIRETLS ----
for name, port in (("port 25", p25), ("submission", p587)):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        t.ok(not s.has_extn("requiretls"), "%s: no REQUIRETLS in the clear" % name)
        code, text = s.docmd("MAIL FROM:<alice@example.com> REQUIRETLS")
        t.is_("%d %s" % (code, text.decode()[:6]), "530 5.7.10",
              "%s: MAIL FROM REQUIRETLS in the clear: 530 5.7.10 (%s)" % (name, text.decode()))
        s.starttls(context=ctx)
        s.ehlo("client.test")
        t.ok(s.has_extn("requiretls"), "%s: REQUIRETLS offered after STARTTLS" % name)

with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
    s.starttls(context=ctx)
    s.ehlo("client.test")
    code, _ = s.docmd("MAIL FROM:<someone@example.net> REQUIRETLS")
    t.is_(code, 250, "port 25 over TLS: MAIL FROM REQUIRETLS taken")
    code, _ = s.docmd("RCPT TO:<alice@example.com>")
    t.is_(code, 250, "RCPT alice")
    code, _ = s.data(b"From: someone@example.net\r\nTo: alice@example.com\r\nSubject: rt in\r\n\r\nHi.\r\n")
    t.is_(code, 250, "delivered")
t.ok(wait(lambda: "requiretls=yes" in g.log(), "the log line"), "the delivery is logged with requiretls=yes")
t.is_(sql("SELECT count(*) FROM gn_messages WHERE subject = 'rt in'"), "1", "alice has it")


def submit(to, subject, mail_opts=(), headers=""):
    m = ("From: alice@example.com\r\nTo: %s\r\nSubject: %s\r\n%s\r\nHello.\r\n" % (to, subject, headers))
    with smtplib.SMTP("127.0.0.1", p587, timeout=30) as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.login("alice@example.com", PW)
        try:
            s.sendmail("alice@example.com", [to], m.encode(), mail_options=list(mail_opts))
            return True
        except smtplib.SMTPException as e:
            t.diag("submit to %s: %s" % (to, e))
            return False


t.ok(submit("h1@hold.example", "held rt", ["REQUIRETLS"]), "submitted with REQUIRETLS")
t.ok(submit("h2@hold.example", "held relaxed", headers="TLS-Required: No\r\n"), "with TLS-Required: No")
t.ok(submit("h3@hold.example", "held both", ["REQUIRETLS"], headers="TLS-Required: no\r\n"), "with both")
t.ok(submit("h4@hold.example", "held plain", headers="TLS-Required: Yes\r\n"),
     "with neither (TLS-Required: Yes means nothing)")
lines = {r: listing(r + "@hold.example") or "" for r in ("h1", "h2", "h3", "h4")}
t_re(lines["h1"], r" held .* tls=requiretls", "queue list: REQUIRETLS is tls=requiretls")
t_re(lines["h2"], r" tls=relaxed", "queue list: TLS-Required: No is tls=relaxed")
t_re(lines["h3"], r" tls=requiretls", "queue list: both are tls=requiretls (RFC 8689)")
t.ok(lines["h4"] != "" and "tls=" not in lines["h4"], "queue list: neither has no tls= (%s)" % lines["h4"])
t_re(g.log(), r"event=queued .*require_tls=relaxed", "submission logs require_tls")

# The runner delivers a submitted REQUIRETLS message end to end.
t.ok(submit("bob@good.example", "rt out", ["REQUIRETLS"]), "submitted to bob@good.example with REQUIRETLS")
t.ok(wait(lambda: retired("bob@good.example") is not None, "bob's delivery"), "the runner delivers it")
t.is_(retired("bob@good.example"), "delivered 250 2.0.0 true", "retired delivered, require_tls kept")
ms = good.messages("bob@good.example")
t.ok(len(ms) == 1 and ms[0]["tls"] and "REQUIRETLS" in ms[0]["params"].split(),
     "the server got it over TLS with MAIL FROM ... REQUIRETLS (%s)" % (ms[0]["params"] if ms else "-"))
t.is_(g.stop(), 0, "gannet serve stops")

# ---- the SMTP client itself: gannet smtp send --requiretls ----


def smtp_send(ip, name, to):
    return gannet("smtp", "send", "--server", "%s:%d" % (ip, PORT), "--from", "alice@example.com",
                  "--to", to, "--tls", "require", "--tls-verify", "--tls-name", name, "--ca", ca,
                  "--requiretls", stdin="Subject: client\n\nHi.\n")


n0 = len(noreq.mails())
r = smtp_send("127.0.0.2", "mx.noreq.example", "c@noreq.example")
t.ok(r.returncode == 1 and "554" in r.stdout and "5.7.30" in r.stdout,
     "smtp send --requiretls to a server without REQUIRETLS: refused by the client, 554 5.7.30")
t.is_(len(noreq.mails()) - n0, 0, "no MAIL sent")
r = smtp_send("127.0.0.1", "mx.good.example", "c@good.example")
cm = good.messages("c@good.example")
t.ok(r.returncode == 0 and len(cm) == 1 and "REQUIRETLS" in cm[0]["params"].split(),
     "smtp send --requiretls to a server with it: MAIL FROM ... REQUIRETLS, delivered")

# ---- outbound, one `gannet queue run` at a time ----


def queue(to, subject, require=None):
    args = ["queue", "add", "--from", "alice@example.com", "--to", to]
    if require:
        args += ["--require-tls", require]
    m = "From: alice@example.com\nTo: %s\nSubject: %s\n\nHello.\n" % (to, subject)
    return gannet(*args, stdin=m).returncode


before = {s: len(s.mails()) for s in (noreq, plain, bad)}
t.ok(queue("x@noreq.example", "rt noreq", "yes") == 0 and queue("x@plain.example", "rt plain", "yes") == 0
     and queue("x@badcert.example", "rt badcert", "yes") == 0, "queued three with --require-tls yes")
t.like(listing("x@noreq.example"), "tls=requiretls", "queue list shows it")
t.is_(gannet("queue", "run").stdout, "3 deliveries attempted\n", "queue run attempts the three")
for rcpt, why in (("x@noreq.example", "no REQUIRETLS offered"), ("x@plain.example", "no STARTTLS"),
                  ("x@badcert.example", "the certificate does not verify")):
    t.is_(retired(rcpt), "failed 554 5.7.30 true", "%s: failed for good, 554 5.7.30" % why)
t.is_([len(s.mails()) - before[s] for s in (noreq, plain, bad)], [0, 0, 0], "no MAIL sent to any of them")
t.ok(any(e["event"] == "tls" for e in noreq.events()), "the server without REQUIRETLS was reached over TLS")
text = sql("SELECT last_text FROM gn_queue_retired WHERE rcpt = 'x@badcert.example'")
t.like(text, "REQUIRETLS", "the failure says REQUIRETLS (%s)" % text)
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "JOIN gn_mailboxes b ON b.account_id = m.account_id AND b.id = m.mailbox_id "
          "WHERE a.name = 'alice' AND b.name = 'Inbox' AND m.subject = 'mail delivery failed'"),
      "3", "three failure DSNs in alice's Inbox")

# The same server takes what does not require TLS: the refusal was REQUIRETLS's.
t.ok(queue("y@noreq.example", "default noreq") == 0 and queue("z@noreq.example", "relaxed noreq", "no") == 0,
     "queued one without the flag and one relaxed to noreq.example")
t.is_(gannet("queue", "run").stdout, "2 deliveries attempted\n", "queue run attempts both")
t.is_(retired("y@noreq.example"), "delivered 250 2.0.0 -", "the default one is delivered")
t.is_(retired("z@noreq.example"), "delivered 250 2.0.0 false", "the relaxed one is delivered")
t.ok(all("REQUIRETLS" not in m for m in noreq.mails()), "without REQUIRETLS in MAIL FROM")

# Reuse: two plain messages share a connection, the REQUIRETLS one
# never takes a parked one.
c0 = len(good.events("connect"))
t.ok(queue("p1@good.example", "plain 1") == 0 and queue("q@good.example", "rt reuse", "yes") == 0
     and queue("p2@good.example", "plain 2") == 0, "queued two plain and one REQUIRETLS to good.example")
t.is_(gannet("queue", "run").stdout, "3 deliveries attempted\n", "queue run attempts the three")
qid = sql("SELECT id FROM gn_queue_retired WHERE rcpt = 'x@noreq.example'")
t_re(gannet("queue", "retired", "print", qid).stdout, r"(?m)^tls: requiretls$",
     "queue retired print shows tls: requiretls")
t.ok(all((retired(r) or "").startswith("delivered") for r in ("p1@good.example", "q@good.example",
                                                                "p2@good.example")), "all three delivered")
t.is_(len(good.events("connect")) - c0, 2, "two connections: the plain ones shared one, REQUIRETLS had its own")
qm = good.messages("q@good.example")
t.ok(len(qm) == 1 and "REQUIRETLS" in qm[0]["params"].split() and qm[0]["tls"],
     "the REQUIRETLS one went with MAIL FROM ... REQUIRETLS")

# `gannet queue requiretls ID yes|no|default` changes it for the next attempt.
t.is_(queue("w@noreq.example", "changed"), 0, "queued w@noreq.example without the flag")
wid = sql("SELECT id FROM gn_queue_recipients WHERE rcpt = 'w@noreq.example'")
r = gannet("queue", "requiretls", wid, "yes")
t.is_((r.returncode, r.stdout), (0, "%s tls=requiretls\n" % wid), "queue requiretls ID yes")
t.like(listing("w@noreq.example"), "tls=requiretls", "queue list shows it")
t.is_(gannet("queue", "requiretls", wid, "maybe").returncode, 2, "a value not yes, no, default: usage")
t.is_(gannet("queue", "requiretls", "999999", "no").returncode, 1, "an unknown id: refused")
gannet("queue", "run")
t.is_(retired("w@noreq.example"), "failed 554 5.7.30 true", "the attempt then required REQUIRETLS")

# One MX host unreachable, the other refuses: temporary.
t.is_(queue("x@two.example", "rt two", "yes"), 0, "queued to two.example (a dead MX, then noreq)")
gannet("queue", "run")
r = sql("SELECT state || ' ' || attempts || ' ' || coalesce(last_enhanced, '-') FROM gn_queue_recipients "
        "WHERE rcpt = 'x@two.example'")
t.is_(r, "queued 1 4.7.30", "kept for a retry (4.7.30), not failed")
t.done()
