#!/usr/bin/env python3
"""
t/integration/295-webapi-localserve.t: `gannet localserve` turns it all on
(issue 12 item 4): an application developed against it, with no other
server, as mox's localserve allows (mox.md 3).  Localserve runs with the
smtp, submission, suppression, webhooks and webapi modules of the build,
and this test plays the application, with Python's urllib against the
webapi (mox.md 1.1 to 1.3) and a webhook receiver on 127.0.0.1:

- localserve prints the webapi's URL (HTTP 1080 + the port shift) with
  the login, and writes retired_keep = "72h" for the queue and webhooks;
- the webapi is there: its index page answers GET, a wrong password gets
  401 with WWW-Authenticate;
- webhooks (set with `gannet config account webhook set`) to plain
  http://127.0.0.1 are taken: an outgoing one for all events and an
  incoming one;
- Send to someone@localhost: one Submission; the message lands in the
  account gannet (the incoming webhook brings its Meta.MsgID, MessageGet
  returns it with the Subject and Text sent) and the outgoing webhook gets
  "delivered" for the Submission's QueueMsgID;
- the failure simulation by localpart applies to Send (the queue's
  delivery to localserve's SMTP port, not Send itself, fails):
  xpermerror@localhost gets "failed" with SMTP code 550, x553@localhost
  "failed" with 553, rcpttotemperror@localhost "delayed" with 451;
- the retired records are kept 72 h: `gannet queue retired list` and
  `print` show the delivered and the failed recipient with a keep-until
  72 h after it retired (checked to within a minute of now + 72 h), and
  `gannet queue webhook retired list` the delivered hooks likewise.
"""
import atexit
import base64
import calendar
import http.server
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as g  # noqa: E402

t = g.Tap()
base = g.tmpdir("gannet-lsw-")
d = os.path.join(base, "ls")
moddir = g.module_dir()
g.install_modules(t, moddir, "smtp", "submission", "suppression", "webhooks", "webapi")
shift = random.randrange(20000, 40000)
WEB = 1080 + shift
API = "http://127.0.0.1:%d/webapi/v0/" % WEB
KEEP = 72 * 3600
env = dict(os.environ, GANNET_LOCALSERVE_DIR="", GANNET_MODULE_DIR=moddir,
           GANNET_LOCALSERVE_PORT_SHIFT=str(shift))

# ---- the application's webhook receiver, on loopback ----
got = []
got_lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with got_lock:
            got.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")


hook_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
HOOK = "http://127.0.0.1:%d" % hook_srv.server_address[1]
threading.Thread(target=hook_srv.serve_forever, daemon=True).start()
atexit.register(hook_srv.shutdown)


def payloads(path):
    with got_lock:
        out = []
        for p, b in got:
            if p == path:
                try:
                    out.append(json.loads(b))
                except ValueError:
                    out.append({"unparsable": b.decode(errors="replace")})
        return out


def wait_for(what, fn, seconds=60):
    """fn() until it is true or the time is up; its last value."""
    deadline = time.time() + seconds
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(0.2)
        v = fn()
    if not v:
        t.diag("waited %ds for %s" % (seconds, what))
    return v


# ---- localserve ----
p, started, out = g.start_localserve(d, env)
banner = "".join(out)
# The log goes on while the test runs: read it, so that a full pipe never
# stops gannet.
rest = []
reader = threading.Thread(target=lambda: rest.extend(iter(p.stdout.readline, "")), daemon=True)
reader.start()


@atexit.register
def stop():
    """localserve (and its PostgreSQL) ends with the test, also when the
    test fails half-way; before tmpdir()'s removal (atexit runs last
    registered first)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    reader.join(timeout=10)


t.ok(started, "localserve starts with smtp, submission, suppression, webhooks and webapi")
if not started:
    t.diag(banner[-3000:])
    stop()
    t.done()
    sys.exit(1)
t.like(banner, "http        127.0.0.1:%d (plain)" % WEB, "it prints the plain HTTP port (1080 + shift)")
t.like(banner, "webapi      %s (Basic auth: gannet@localhost and the password)" % API,
       "and the webapi's URL with the login")
t.like(banner, "retired     queue records and webhooks kept 72h", "and that retired records are kept 72h")
with open(os.path.join(d, "gannet.conf")) as f:
    conf = f.read()
t.like(conf, 'retired_keep = "72h"; };\n', "its config keeps the queue's retired records 72h")
t.like(conf, 'webhooks = { retired_keep = "72h"; };', "and the retired webhooks")
with open(os.path.join(d, "password")) as f:
    PASSWORD = f.read().strip()


def gannet(*args, stdin=None):
    r = g.run_gannet(["-c", os.path.join(d, "gannet.conf")] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def http(method, path, body=None, headers=None, password=PASSWORD):
    h = dict(headers or {})
    if password is not None:
        h["Authorization"] = "Basic " + base64.b64encode(("gannet@localhost:%s" % password).encode()).decode()
    req = urllib.request.Request(API + path, data=body, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def call(method, request, password=PASSWORD):
    """A method as mox's client calls it: the JSON in the form field "request"."""
    st, _, body = http("POST", method, urllib.parse.urlencode({"request": json.dumps(request)}).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"}, password)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, body


# ---- the webapi is loaded ----
st, _, body = http("GET", "", password=None)
t.ok(st == 200 and b'href="Send"' in body and b'href="MessageGet"' in body,
     "GET %s: the index page with the methods (%s)" % (API, st))
st, h, body = http("POST", "SuppressionList", urllib.parse.urlencode({"request": "{}"}).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded"}, PASSWORD + "x")
t.ok(st == 401 and h.get("www-authenticate", "").startswith("Basic"),
     "a wrong password: 401 with WWW-Authenticate (%s %s)" % (st, h.get("www-authenticate")))
st, o = call("SuppressionList", {})
t.ok(st == 200 and isinstance(o, dict) and o.get("Suppressions") == [],
     "the right one: 200, an empty suppression list (%s %s)" % (st, o))

# ---- webhooks to the application on http://127.0.0.1 ----
t.is_(gannet("config", "account", "webhook", "set", "gannet", "outgoing", HOOK + "/out", "all").returncode, 0,
      "outgoing webhook to %s/out, all events" % HOOK)
t.is_(gannet("config", "account", "webhook", "set", "gannet", "incoming", HOOK + "/in").returncode, 0,
      "incoming webhook to %s/in" % HOOK)
t.like(gannet("config", "account", "webhook", "show", "gannet").stdout,
       "keep-retired: 259200s (the default, webhooks.retired_keep)", "the account keeps retired hooks 72h")
t.like(gannet("queue", "retired", "keep", "gannet").stdout,
       "for 259200s (the default, queue.retired_keep)", "and retired queue records 72h")


def send(to, subject):
    st, o = call("Send", {"To": [{"Address": to}], "Subject": subject, "Text": "for %s\n" % to})
    subs = o.get("Submissions", []) if isinstance(o, dict) else []
    t.ok(st == 200 and len(subs) == 1 and subs[0].get("Address") == to and subs[0].get("QueueMsgID", 0) > 0,
         "Send to %s: 200 and its Submission (%s %s)" % (to, st, o))
    return subs[0]["QueueMsgID"] if subs else -1


def event_for(qid, event):
    for o in payloads("/out"):
        if o.get("QueueMsgID") == qid and o.get("Event") == event:
            return o
    return None


# ---- a plain recipient: delivered into the account ----
t0 = time.time()
q_ok = send("someone@localhost", "hello app")
inc = wait_for("the incoming webhook", lambda: [o for o in payloads("/in") if o.get("Subject") == "hello app"])
t.is_(len(inc), 1, "the incoming webhook brings the message")
msgid = inc[0].get("Meta", {}).get("MsgID", 0) if inc else 0
# localserve's SMTP routes an address that is nobody's to the account
# itself; the webhook still reports the RCPT TO, as mox's does.
t.is_(inc[0].get("Meta", {}).get("RcptTo") if inc else None, "someone@localhost",
      "its Meta.RcptTo is the RCPT TO, though the address is nobody's")
t.ok(inc and [a.get("Address") for a in inc[0].get("To", [])] == ["someone@localhost"]
     and inc[0].get("Meta", {}).get("MailboxName") == "Inbox" and msgid > 0,
     "its To, Meta.MailboxName Inbox and a Meta.MsgID (%s)" % (inc[0].get("Meta") if inc else None))
st, o = call("MessageGet", {"MsgID": msgid})
m = o.get("Message", {}) if isinstance(o, dict) else {}
t.ok(st == 200 and m.get("Subject") == "hello app" and m.get("Text") == "for someone@localhost\n"
     and [a.get("Address") for a in m.get("From", [])] == ["gannet@localhost"],
     "MessageGet: the message is in the account gannet, as sent (%s %s)" % (st, str(o)[:300]))
t.is_(o.get("Meta", {}).get("MailboxName") if isinstance(o, dict) else None, "Inbox", "in its Inbox")
ev = wait_for("delivered", lambda: event_for(q_ok, "delivered"))
t.ok(ev is not None and ev.get("Subject") == "hello app" and ev.get("SMTPCode") == 0 and ev.get("Extra") == {},
     "the outgoing webhook gets \"delivered\" for its QueueMsgID %s (%s)" % (q_ok, ev))

# ---- the failure simulation by localpart, through Send ----
q_perm = send("xpermerror@localhost", "perm")
q_553 = send("x553@localhost", "code 553")
q_temp = send("rcpttotemperror@localhost", "temp")
ev = wait_for("failed 550", lambda: event_for(q_perm, "failed"))
t.ok(ev is not None and ev.get("SMTPCode") == 550 and ev.get("SMTPEnhancedCode", "").startswith("5.")
     and ev.get("Subject") == "perm",
     "xpermerror@localhost: \"failed\" with the simulated 550 (%s)" % ev)
ev = wait_for("failed 553", lambda: event_for(q_553, "failed"))
t.ok(ev is not None and ev.get("SMTPCode") == 553, "x553@localhost: \"failed\" with 553 (%s)" % ev)
ev = wait_for("delayed 451", lambda: event_for(q_temp, "delayed"))
t.ok(ev is not None and ev.get("SMTPCode") == 451 and "temporary error requested" in ev.get("Error", ""),
     "rcpttotemperror@localhost: \"delayed\" with 451 at RCPT (%s)" % ev)
t.like(gannet("queue", "list", "--to", "rcpttotemperror@localhost").stdout, "state=queued",
       "and stays queued for its next attempt")
t.is_([o for o in payloads("/in") if o.get("Subject") in ("perm", "code 553", "temp")], [],
      "none of the failed ones reached the account")

# ---- kept 72 h ----


def epoch(ts):
    """2026-12-06T09:00:00Z or 2026-12-06T09:00:00.123456Z -> seconds."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$", ts or "")
    if not m:
        return None
    return calendar.timegm(tuple(int(x) for x in m.groups()[:6])) + float(m.group(7) or 0)


def near_keep(ts, since):
    """keep-until within a minute of 72 h after the retirement, which
    happened between since and now."""
    v = epoch(ts)
    return v is not None and since + KEEP - 60 <= v <= time.time() + KEEP + 60


listed = gannet("queue", "retired", "list", "--account", "gannet").stdout
rows = {re.search(r"to=<([^>]*)>", ln).group(1): ln for ln in listed.splitlines() if "to=<" in ln}
for rcpt, result in (("someone@localhost", "delivered"), ("xpermerror@localhost", "failed"),
                     ("x553@localhost", "failed")):
    ln = rows.get(rcpt, "")
    k = re.search(r"keep-until=(\S+)", ln)
    t.ok(("result=%s" % result) in ln and k and near_keep(k.group(1), t0),
         "queue retired list: %s %s, kept until 72h after now (%s)" % (rcpt, result, ln))
t.ok("rcpttotemperror@localhost" not in rows, "the delayed one is not retired")
pr = gannet("queue", "retired", "print", str(q_perm)).stdout
k = re.search(r"^keep-until: (\S+)$", pr, re.M)
t.ok("to: xpermerror@localhost\n" in pr and "last-code: 550\n" in pr and k and near_keep(k.group(1), t0),
     "queue retired print %s: the 550 and the keep-until (%s)" % (q_perm, pr[:400]))

# Each hook retires when its 200 is recorded: wait for the ones the
# receiver saw.
seen = len(payloads("/out")) + len(payloads("/in"))
wait_for("the hooks to retire", lambda: len(gannet("queue", "webhook", "retired", "list", "gannet")
                                           .stdout.splitlines()) >= seen, seconds=30)
hl = gannet("queue", "webhook", "retired", "list", "gannet").stdout.splitlines()
delivered_hooks = [ln for ln in hl if "success=yes" in ln]
t.ok(len(delivered_hooks) >= seen and any("event=incoming" in ln for ln in delivered_hooks)
     and any("event=delivered queue_msg=%d " % q_ok in ln for ln in delivered_hooks)
     and any("event=failed queue_msg=%d " % q_perm in ln for ln in delivered_hooks),
     "queue webhook retired list: the incoming, delivered and failed hooks, delivered (%d of %d)"
     % (len(delivered_hooks), seen))
bad = [ln for ln in delivered_hooks
       if not (re.search(r"keep_until=(\S+)", ln) and near_keep(re.search(r"keep_until=(\S+)", ln).group(1), t0))]
t.is_(bad, [], "each kept until 72h after it retired")

stop()
log = banner + "".join(rest)
t.like(log, "event=localserve_failure", "the simulated failures are logged")
t.is_(p.returncode, 0, "localserve stops")
t.done()
