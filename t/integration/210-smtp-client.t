#!/usr/bin/env python3
"""
t/integration/210-smtp-client.t: gannet's SMTP client (core/smtp/client.c)
through `gannet smtp send`, against t/lib/smtpsink.py (a loopback server
that answers what the test asks and records what it got), then against
gannet's own smtp module:

- delivery with opportunistic STARTTLS, the certificate verified for its
  name, PIPELINING (MAIL, RCPTs and DATA in one write), SIZE, the message
  dot-stuffed and with CRLF line ends on the wire, exactly as given after
  unstuffing;
- --tls-verify with a name the certificate does not have fails; --tls
  require to a server without STARTTLS fails, opportunistic goes on in the
  clear; a TLS handshake that fails is retried without TLS;
- no PIPELINING: one command at a time; EHLO refused: HELO;
- per recipient: 250, 451 and 550 at RCPT, 451 at MAIL, 554 at DATA, 550
  after the message, each with its phase, code, enhanced code and whether
  it is permanent;
- RFC 5321 5.1: a refused connection and a 421 greeting move on to the
  next address; a 554 greeting on the only address fails;
- a reply line too long, a reply of too many lines and a line that is no
  reply fail the address;
- a slow server times out (small timeouts), a server that drops the
  connection in the middle of the message fails the recipients;
- SMTPUTF8 needed and not offered fails permanently before MAIL (5.6.7);
  8-bit content without 8BITMIME likewise (5.6.3), with it BODY=8BITMIME;
  a message larger than the server's SIZE is not sent (5.3.4);
- two messages on one connection (RSET between); a message of some MB
  streamed whole;
- gannet's smtp module with STARTTLS required and verified: delivered into
  a local account, an unknown recipient 550 5.1.1 at RCPT.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
cert, key = gt.make_cert(d, "sink", "sink.test")


class Sink:
    def __init__(self, name, tls=True):
        self.record = os.path.join(d, name + ".jsonl")
        self.script = os.path.join(d, name + ".json")
        args = [sys.executable, SINK, "--record", self.record, "--script", self.script]
        if tls:
            args += ["--cert", cert, "--key", key]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        self.port = int(line[1]) if len(line) == 2 and line[0] == "ready" else 0

    def set(self, script):
        with open(self.script, "w") as f:
            json.dump(script, f)
        open(self.record, "w").close()

    def events(self, event=None):
        with open(self.record) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if event is None or e["event"] == event]

    def commands(self):
        return [e["line"] for e in self.events("command")]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


sink = Sink("a")
sink2 = Sink("b", tls=False)
t.ok(sink.port > 0 and sink2.port > 0, "two sinks listen")

MSG = (b"From: <s@example.org>\nTo: <r@example.net>\nSubject: test\n\n"
       b"first line\n.starts with a dot\n.\nlast line without an end")
WIRE = (b"From: <s@example.org>\r\nTo: <r@example.net>\r\nSubject: test\r\n\r\n"
        b"first line\r\n.starts with a dot\r\n.\r\nlast line without an end\r\n")


def send(*args, msg=MSG, servers=None):
    """Runs gannet smtp send; returns (exit code, stdout lines)."""
    argv = [gt.GANNET, "smtp", "send", "--ca", cert, "--timeout", "3000", "--trace"]
    for s in servers or ["127.0.0.1:%d" % sink.port]:
        argv += ["--server", s]
    argv += list(args)
    r = subprocess.run(argv, input=msg, capture_output=True, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    if os.environ.get("GANNET_TEST_VERBOSE"):
        t.diag(out + r.stderr.decode("utf-8", "replace"))
    return r.returncode, out.splitlines(), r.stderr.decode("utf-8", "replace")


def line(lines, prefix):
    for l in lines:
        if l.startswith(prefix):
            return l
    return ""


def rcpt(lines, addr, message=1):
    return line(lines, "rcpt message=%d to=%s " % (message, addr))


ENV = ["--from", "s@example.org", "--to", "r@example.net"]

# ---- delivery, STARTTLS verified, pipelining ----
sink.set({})
rc, out, err = send(*ENV, "--to", "r2@example.net", "--tls-name", "sink.test")
t.is_(rc, 0, "delivered: exit 0")
t.like(line(out, "session "), "tls=TLS1.", "the session is TLS")
t.like(line(out, "session "), "verified=yes", "and the certificate verified for sink.test")
t.like(line(out, "session "), "PIPELINING", "extensions listed")
t.like(rcpt(out, "r@example.net"), "phase=data code=250 enhanced=2.0.0 local=no permanent=no",
       "first recipient: 250 2.0.0 after DATA")
t.like(rcpt(out, "r2@example.net"), "phase=data code=250", "second recipient too")
msgs = sink.events("message")
t.is_(len(msgs), 1, "the sink got one message")
t.is_(msgs[0]["data"].encode("latin-1") if msgs else b"", WIRE,
      "byte for byte after unstuffing: CRLF line ends, the lone dot kept, a last line end added")
t.ok(msgs and msgs[0]["tls"], "over TLS")
t.is_(msgs[0]["rcpts"] if msgs else None, ["r@example.net", "r2@example.net"], "both recipients")
t.like(msgs[0]["params"] if msgs else "", "SIZE=", "SIZE given")
batches = {}
for e in sink.events("command"):
    batches.setdefault(e["line"].split(" ")[0].split(":")[0], set()).add(e["batch"])
t.ok(len(batches.get("MAIL", ())) == 1 and batches.get("MAIL") == batches.get("RCPT") ==
     batches.get("DATA"), "PIPELINING: MAIL, both RCPTs and DATA came in one write")
t.ok(any(l.startswith("C: QUIT") for l in out), "QUIT at the end")

# ---- verification required, wrong name ----
sink.set({})
rc, out, err = send(*ENV, "--tls-name", "other.test", "--tls-verify")
t.is_(rc, 1, "--tls-verify with a name the certificate lacks: exit 1")
t.like(line(out, "failed "), "phase=starttls", "failed at STARTTLS")
t.like(line(out, "failed "), "not verified for other.test", "saying the certificate did not verify")
t.is_(len(sink.events("message")), 0, "nothing sent")

# ---- no STARTTLS ----
sink.set({"no": ["STARTTLS"]})
rc, out, err = send(*ENV, "--tls", "require")
t.is_(rc, 1, "TLS required, not offered: exit 1")
t.like(line(out, "failed "), "TLS is required and the server does not offer STARTTLS",
       "and why")
rc, out, err = send(*ENV)
t.is_(rc, 0, "opportunistic: delivered in the clear")
t.like(line(out, "session "), "tls=none", "without TLS")

# ---- TLS handshake fails: retried without TLS ----
sink2.set({"offer_starttls": True})
rc, out, err = send(*ENV, servers=["127.0.0.1:%d" % sink2.port])
t.is_(rc, 0, "a failed TLS handshake: delivered on a new connection without TLS")
t.is_([e["conn"] for e in sink2.events("message")], [2], "on the second connection")
t.ok("STARTTLS" not in [c for e in sink2.events("command") if e["conn"] == 2
                        for c in [e["line"]]], "which did not try STARTTLS")

# ---- no PIPELINING ----
sink.set({"no": ["PIPELINING"]})
rc, out, err = send(*ENV, "--to", "r2@example.net", "--tls", "none")
t.is_(rc, 0, "without PIPELINING: delivered")
evs = [e for e in sink.events("command") if e["line"].split(" ")[0].split(":")[0]
       in ("MAIL", "RCPT", "DATA")]
t.is_(len(set(e["batch"] for e in evs)), 4, "MAIL, each RCPT and DATA in writes of their own")

# ---- EHLO refused: HELO ----
sink.set({"ehlo": "500 5.5.1 what is EHLO"})
rc, out, err = send(*ENV)
t.is_(rc, 0, "EHLO refused: delivered after HELO")
t.ok(any(c.startswith("HELO ") for c in sink.commands()), "HELO was sent")

# ---- per recipient ----
sink.set({"rcpt": {"bad@example.net": "550 5.1.1 no such user",
                   "later@example.net": "451 4.2.0 try later"}})
rc, out, err = send("--from", "s@example.org", "--to", "bad@example.net", "--to",
                    "later@example.net", "--to", "good@example.net", "--tls", "none")
t.is_(rc, 1, "some recipients refused: exit 1")
t.like(rcpt(out, "bad@example.net"), "phase=rcpt code=550 enhanced=5.1.1 local=no permanent=yes",
       "550 at RCPT: permanent")
t.like(rcpt(out, "bad@example.net"), 'text="no such user"', "with the server's text")
t.like(rcpt(out, "later@example.net"), "phase=rcpt code=451 enhanced=4.2.0 local=no permanent=no",
       "451 at RCPT: temporary")
t.like(rcpt(out, "good@example.net"), "phase=data code=250", "the good one delivered")
t.is_([m["rcpts"] for m in sink.events("message")], [["good@example.net"]],
      "the message went to the good recipient only")

sink.set({"mail": "451 4.3.0 not now"})
rc, out, err = send(*ENV, "--to", "r2@example.net", "--tls", "none")
t.like(rcpt(out, "r@example.net"), "phase=mail code=451 enhanced=4.3.0", "451 at MAIL: every recipient")
t.like(rcpt(out, "r2@example.net"), "phase=mail code=451", "the second too")
t.is_(len(sink.events("message")), 0, "nothing sent")

sink.set({"data": "554 5.7.0 go away"})
rc, out, err = send(*ENV, "--tls", "none")
t.like(rcpt(out, "r@example.net"), "phase=data code=554 enhanced=5.7.0 local=no permanent=yes",
       "554 at DATA")

sink.set({"data_end": "550 5.7.1 spam"})
rc, out, err = send(*ENV, "--tls", "none")
t.like(rcpt(out, "r@example.net"), "phase=data code=550 enhanced=5.7.1", "550 after the message")
t.like(line(out, "sent message=1 "), "code=550", "and for the message")

# ---- addresses (RFC 5321 5.1) ----
dead = gt.free_port()
sink.set({})
sink2.set({"greeting": "421 4.3.2 busy"})
rc, out, err = send(*ENV, "--tls", "none",
                    servers=["127.0.0.1:%d" % dead, "127.0.0.1:%d" % sink2.port,
                             "127.0.0.1:%d" % sink.port])
t.is_(rc, 0, "a refused connection and a 421 greeting: delivered by the third address")
t.like(line(out, "session "), "port=%d" % sink.port, "on the third")
t.ok("QUIT" in [e["line"] for e in sink2.events("command")], "the 421 server got QUIT")

sink.set({"greeting": "554 5.7.1 no service"})
rc, out, err = send(*ENV)
t.is_(rc, 1, "a 554 greeting on the only address: exit 1")
t.like(line(out, "failed "), "phase=greeting code=554 enhanced=5.7.1", "failed at the greeting")

rc, out, err = send(*ENV, servers=["127.0.0.1:%d" % dead])
t.like(line(out, "failed "), "phase=connect code=0", "no server: failed at connect")
t.like(line(out, "failed "), "Connection refused", "saying why")

# ---- limits on replies ----
sink.set({"ehlo": "250 " + "x" * 3000})
rc, out, err = send(*ENV)
t.like(line(out, "failed "), "phase=ehlo", "a reply line of 3000 octets: the address fails at EHLO")
t.like(line(out, "failed "), "reply line too long", "saying why")
sink.set({"greeting": "220-sink.test\r\n" * 150 + "220 sink.test"})
rc, out, err = send(*ENV)
t.like(line(out, "failed "), "reply has too many lines", "a greeting of 151 lines: refused")
sink.set({"greeting": "hello there"})
rc, out, err = send(*ENV)
t.like(line(out, "failed "), "does not start with a reply code", "a greeting that is no reply")

# ---- timeouts and drops ----
sink.set({"slow": {"mail": 3}})
rc, out, err = send(*ENV, "--tls", "none", "--timeout", "500")
t.like(rcpt(out, "r@example.net"), "phase=mail code=0", "a slow MAIL reply: failed at MAIL")
t.like(rcpt(out, "r@example.net"), "timeout", "as a timeout")
t.like(rcpt(out, "r@example.net"), "local=yes permanent=no", "local and temporary")

sink.set({"slow": {"greeting": 3}})
rc, out, err = send(*ENV, "--tls", "none", "--timeout", "500")
t.like(line(out, "failed "), "phase=greeting", "a slow greeting: failed at the greeting")

sink.set({"drop_in_data": True})
big = MSG + b"\n" + b"x" * 200 + b"\n"
rc, out, err = send(*ENV, "--tls", "none", msg=big)
t.like(rcpt(out, "r@example.net"), "phase=data code=0", "dropped mid-DATA: failed in DATA")
t.like(rcpt(out, "r@example.net"), "connection lost", "connection lost")
t.is_(rc, 1, "exit 1")

# ---- SMTPUTF8, 8BITMIME, SIZE ----
sink.set({"no": ["SMTPUTF8"]})
rc, out, err = send("--from", "s@example.org", "--to", "jösé@example.net", "--tls", "none")
t.like(rcpt(out, "jösé@example.net"), "phase=mail code=554 enhanced=5.6.7 local=yes permanent=yes",
       "a UTF-8 recipient to a server without SMTPUTF8: permanent failure")
t.like(rcpt(out, "jösé@example.net"), "SMTPUTF8", "saying why")
t.ok(not any(c.startswith("MAIL") for c in sink.commands()), "before MAIL")
rc, out, err = send(*ENV, "--tls", "none",
                    msg="Subject: caf\u00e9\n\nbody\n".encode("utf-8"))
t.like(rcpt(out, "r@example.net"), "enhanced=5.6.7", "a UTF-8 header likewise")

sink.set({})
rc, out, err = send("--from", "s@example.org", "--to", "jösé@example.net", "--tls", "none")
t.is_(rc, 0, "with SMTPUTF8 offered: delivered")
t.like(line([c for c in sink.commands()], "MAIL"), " SMTPUTF8", "MAIL carries SMTPUTF8")

body8 = "Subject: x\n\nsch\u00f6n\n".encode("utf-8")
sink.set({"no": ["8BITMIME"]})
rc, out, err = send(*ENV, "--tls", "none", msg=body8)
t.like(rcpt(out, "r@example.net"), "code=554 enhanced=5.6.3 local=yes permanent=yes",
       "8-bit content to a server without 8BITMIME: permanent failure")
sink.set({})
rc, out, err = send(*ENV, "--tls", "none", msg=body8)
t.is_(rc, 0, "with 8BITMIME: delivered")
t.like(sink.events("message")[0]["params"] if sink.events("message") else "", "BODY=8BITMIME",
       "with BODY=8BITMIME")

sink.set({"size": 20})
rc, out, err = send(*ENV, "--tls", "none")
t.like(rcpt(out, "r@example.net"), "code=552 enhanced=5.3.4 local=yes permanent=yes",
       "larger than the server's SIZE: not sent")

# ---- two messages on one connection ----
m1 = os.path.join(d, "m1.eml")
m2 = os.path.join(d, "m2.eml")
with open(m1, "wb") as f:
    f.write(b"Subject: one\n\nfirst\n")
with open(m2, "wb") as f:
    f.write(b"Subject: two\n\nsecond\n")
sink.set({})
rc, out, err = send(*ENV, "--message", m1, "--message", m2)
t.is_(rc, 0, "two messages: exit 0")
msgs = sink.events("message")
t.is_([m["data"] for m in msgs], ["Subject: one\r\n\r\nfirst\r\n", "Subject: two\r\n\r\nsecond\r\n"],
      "both arrived, in order")
t.is_(len(set(m["conn"] for m in msgs)), 1, "on one connection")
t.ok("RSET" in sink.commands(), "RSET between them")
t.like(rcpt(out, "r@example.net", 2), "phase=data code=250", "the second's recipient result")

# ---- a large message, streamed ----
big = b"Subject: big\r\n\r\n" + b"".join(
    (b"." if i % 7 == 0 else b"") + b"line %d " % i + b"y" * (i % 150) + b"\n" for i in range(40000))
sink.set({})
rc, out, err = send(*ENV, msg=big)
msgs = sink.events("message")
want = big.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
t.is_(rc, 0, "a message of %d bytes: delivered" % len(big))
t.ok(msgs and msgs[0]["data"].encode("latin-1") == want,
     "it arrived whole, every dot line unstuffed back")

sink.stop()
sink2.stop()

# ---- gannet's own smtp module ----
MODULE = os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so")
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "smtp.so"))
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)
gd = gt.tmpdir()
gcert, gkey = gt.make_cert(gd, "mx", "mail.test")
port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; '
              'tls = "starttls"; }' % port,
    modules='directory = "%s"; load = [ "smtp" ];' % moddir,
    extra="""workers = 1;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
""" % (gcert, gkey)), directory=gd)


def gannet(*args):
    r = gt.run_gannet(["-c", g.conf_path] + list(args))
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.returncode


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
t.ok(all(gannet(*a) == 0 for a in setup), "gannet: migrate, domain and account")
g.start(wait_ports=(port,))


def count(account):
    return int(gt.cluster().psql(
        "SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
        "WHERE a.name = '%s'" % account, db=g.dbname))


r = subprocess.run([gt.GANNET, "smtp", "send", "--server", "127.0.0.1:%d" % port, "--ca", gcert,
                    "--tls", "require", "--tls-name", "mail.test", "--tls-verify",
                    "--from", "s@example.org", "--to", "alice@example.com",
                    "--to", "nobody@example.com", "--message", m1, "--message", m2],
                   capture_output=True, timeout=60)
out = r.stdout.decode().splitlines()
t.like(line(out, "session "), "verified=yes", "gannet's smtp: STARTTLS required and verified")
t.like(line(out, "session "), "PIPELINING", "it offers PIPELINING")
t.like(rcpt(out, "alice@example.com"), "phase=data code=250", "alice: delivered")
t.like(rcpt(out, "nobody@example.com"), "phase=rcpt code=550 enhanced=5.1.1 local=no permanent=yes",
       "an unknown recipient: 550 5.1.1 at RCPT")
t.like(rcpt(out, "alice@example.com", 2), "phase=data code=250", "the second message on the "
       "same connection too")
t.is_(count("alice"), 2, "both messages are in alice's account")
if count("alice") != 2:
    t.diag(r.stdout.decode() + r.stderr.decode())
g.stop()
t.done()
