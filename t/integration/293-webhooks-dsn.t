#!/usr/bin/env python3
"""
t/integration/293-webhooks-dsn.t: incoming DSNs matched by FromID to
retired recipients make outgoing webhook events (issue 12 item 2, mox.md
1.8), with the smtp, suppression and webhooks modules of a real `gannet
serve` (as 276) and a webhook receiver in this test (http.server over TLS
on loopback).

Retired recipients are made with `gannet queue add` and `gannet queue
fail`, then given a FromID with SQL; DSNs are sent on port 25 to
alice+FROMID@example.com:

- Action failed with Diagnostic-Code smtp; 550 5.1.1: event failed, DSN
  true, SMTPCode 550, SMTPEnhancedCode 5.1.1, Suppressing true (the
  address was added to the suppression list);
- Action delayed, delivered, relayed, expanded: the same-named event;
- two recipient blocks, an unknown Action, and a message that is no DSN:
  unrecognized (DSN false for the last);
- each event carries the retired recipient's QueueMsgID, FromID,
  MessageID and Subject;
- none of those reaches alice's incoming webhook (mox.md 1.7), which gets
  a message to alice+tag@ whose tag is no FromID.
"""
import atexit
import http.server
import json
import os
import smtplib
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "suppression", "webhooks")
d = gt.tmpdir()
hcert, hkey = gt.make_cert(d, "hooks", "hooks.example", sans=["hooks.example"])
p25, HOOK_PORT = gt.free_port(), gt.free_port()
got = []
got_lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with got_lock:
            got.append(dict(json.loads(body), path=self.path))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Receiver)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(hcert, hkey)
httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
atexit.register(httpd.shutdown)

g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }' % p25,
    modules='directory = "%s"; load = [ "smtp", "suppression", "webhooks" ];' % moddir,
    extra=('workers = 1;\nqueue = { transport = "none"; };\ntls = { client_ca_file = "%s"; };\n'
           'dns = { local_data = [ "hooks.example. IN A 127.0.0.1" ]; };') % hcert), directory=d)


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname).strip()


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("queue", "retired", "keep", "alice", "1d")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "example.com (separator +), alice keeping retired records")
retired = {}


def retire(name):
    rcpt = "%s@remote.example" % name
    gannet("queue", "add", "--from", "alice@example.com", "--to", rcpt,
           stdin="From: alice@example.com\nTo: %s\nSubject: to %s\nMessage-ID: <%s@example.com>\n\nHi.\n" % (
               rcpt, name, name))
    rid = sql("SELECT max(id) FROM gn_queue_recipients WHERE rcpt = '%s'" % rcpt)
    gannet("queue", "fail", rid)
    sql("UPDATE gn_queue_retired SET from_id = 'fid%s' WHERE id = %s" % (name, rid))
    retired[name] = int(rid)


NAMES = ("gone", "late", "arrived", "relay", "expand", "two", "odd", "reply")
for n in NAMES:
    retire(n)
t.is_(sql("SELECT count(*) FROM gn_queue_retired WHERE from_id IS NOT NULL"), str(len(NAMES)),
      "retired recipients with FromIDs")
# Set now: the `queue fail` above made no hook.
t.is_(gannet("config", "account", "webhook", "set", "alice", "outgoing",
             "https://hooks.example:%d/out" % HOOK_PORT).returncode, 0, "alice's outgoing webhook, all events")
t.is_(gannet("config", "account", "webhook", "set", "alice", "incoming",
             "https://hooks.example:%d/in" % HOOK_PORT).returncode, 0, "and an incoming webhook")
try:
    g.start(wait_ports=(p25,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()
    sys.exit(1)


def send(fid, body, dsn=True):
    head = "From: MAILER-DAEMON@example.net\r\nTo: alice+fid%s@example.com\r\nSubject: Returned mail\r\n" % fid
    if dsn:
        msg = (head + "MIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
               "--b\r\nContent-Type: text/plain\r\n\r\nReport.\r\n"
               "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; example.net\r\n")
        for b in body:
            msg += "\r\n" + "".join(line + "\r\n" for line in b)
        msg += "--b--\r\n"
    else:
        msg = head + "\r\n" + body
    with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
        s.sendmail("", ["alice+fid%s@example.com" % fid], msg.encode())


def block(name, action, *lines):
    return ["Final-Recipient: rfc822; %s@remote.example" % name, "Action: " + action] + list(lines)


send("gone", [block("gone", "failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 no such user")])
send("late", [block("late", "delayed", "Status: 4.4.1")])
send("arrived", [block("arrived", "delivered", "Status: 2.0.0")])
send("relay", [block("relay", "relayed", "Status: 2.0.0")])
send("expand", [block("expand", "expanded", "Status: 2.0.0")])
send("two", [block("two", "failed", "Status: 5.0.0"), block("other", "failed", "Status: 5.0.0")])
send("odd", [block("odd", "shrugged", "Status: 2.0.0")])
send("reply", "Thanks for your message.\r\n", dsn=False)
with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
    s.sendmail("bob@remote.example", ["alice+nofid@example.com"],
               b"From: bob@remote.example\r\nSubject: plain mail\r\n\r\nHi.\r\n")

end = time.time() + 30
while time.time() < end:
    with got_lock:
        if len(got) >= len(NAMES) + 1:
            break
    gannet("queue", "webhook", "run")
    time.sleep(0.5)
time.sleep(0.5)
by_id = {p["QueueMsgID"]: p for p in got if p["path"] == "/out"}
t.is_(len(by_id), len(NAMES), "one outgoing event a DSN or message")
t.is_([p.get("Subject") for p in got if p["path"] == "/in"], ["plain mail"],
      "the incoming webhook only for the message to a tag that is no FromID")


def ev(name):
    return by_id.get(retired[name], {})


p = ev("gone")
t.is_((p.get("Event"), p.get("DSN"), p.get("SMTPCode"), p.get("SMTPEnhancedCode"), p.get("Suppressing")),
      ("failed", True, 550, "5.1.1", True), "Action failed, 550 5.1.1: failed, from a DSN, suppressing")
t.is_((p.get("FromID"), p.get("MessageID"), p.get("Subject")), ("fidgone", "<gone@example.com>", "to gone"),
      "with the retired recipient's FromID, MessageID and Subject")
t.ok("remote.example" in gannet("queue", "suppress", "list", "alice").stdout, "and the address is suppressed")
for name, event in (("late", "delayed"), ("arrived", "delivered"), ("relay", "relayed"), ("expand", "expanded")):
    t.is_((ev(name).get("Event"), ev(name).get("DSN")), (event, True), "Action %s: %s" % (event, event))
t.is_((ev("two").get("Event"), ev("two").get("DSN")), ("unrecognized", True), "two recipient blocks: unrecognized")
t.is_((ev("odd").get("Event"), ev("odd").get("DSN")), ("unrecognized", True), "an unknown Action: unrecognized")
t.is_((ev("reply").get("Event"), ev("reply").get("DSN")), ("unrecognized", False),
      "a message that is no DSN: unrecognized, DSN false")
g.stop()
t.done()
