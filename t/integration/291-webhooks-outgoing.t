#!/usr/bin/env python3
"""
t/integration/291-webhooks-outgoing.t: the webhooks module's outgoing
webhooks (issue 12 item 2, mox.md 1.4 to 1.6), with `gannet queue run`
against a t/lib/smtpsink.py server and a webhook receiver in this test
(http.server over TLS on loopback, its certificate trusted through
tls.client_ca_file, its name in dns.local_data), `gannet queue webhook
run` delivering the hooks that are due, and the queue's clock moved with
GANNET_TEST_CLOCK_OFFSET:

- `gannet config account webhook set|show|clear|keep`: an ftp:// URL and
  an unknown event are refused;
- a delivered, a failed (550 5.1.1), a delayed (451) and a suppressed
  recipient, `queue fail` and `queue drop`: one hook each with mox's
  payload (Event, QueueMsgID, MessageID, Subject, SMTPCode,
  SMTPEnhancedCode, Error, Suppressing, Extra never null); events not
  subscribed to: no hook;
- each request: Content-Type, User-Agent, X-Mox-Webhook-ID and -Attempt,
  Authorization as configured, and webhook-id, webhook-timestamp and a
  webhook-signature that HMAC-SHA256 computed here with the account's
  secret verifies;
- success is a 200 only: a 500 keeps the hook with its next attempt 1m
  later, and so on (2m, 4m, 7.5m, 15m, 30m, 1h, 2h, 4h, 8h, 16h) until
  the 12th attempt retires it as failed; a receiver slower than the
  timeout, and no receiver at all, are failures with the error saying so;
  the result keeps 512 bytes of the response;
- the supersede rule: a second event for the same queue message retires
  the pending hook with superseded_by the new one;
- at most one request in flight a URL, and at most webhooks.concurrency
  in all;
- `queue webhook schedule|cancel|print|list`, `retired list|print`;
- webhooks.retired_keep: an account without its own period (`keep
  ACCOUNT default`) keeps its retired hooks for the setting's, its own 0
  wins; show and keep say which; migration 002 makes the old 0s NULL and
  keeps other periods; a bad value is a config error with file and line;
- the module unloaded: no hook is queued.
"""
import atexit
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "webhooks", "suppression")
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
SMTP_PORT = gt.free_port()
HOOK_PORT = gt.free_port()
DEAD_PORT = gt.free_port()
record = os.path.join(d, "sink.jsonl")
script = os.path.join(d, "sink.json")
with open(script, "w") as f:
    json.dump({"rcpt": {"bad@ok.example": "550 5.1.1 no such user", "later@ok.example": "451 4.3.0 try later",
                        "*": "250 2.1.5 ok"}}, f)
sink = subprocess.Popen([sys.executable, SINK, "--host", "127.0.0.1", "--port", str(SMTP_PORT), "--record",
                         record, "--script", script], stdout=subprocess.PIPE, text=True)
t.is_(sink.stdout.readline().split()[:1], ["ready"], "a sink listens on port %d" % SMTP_PORT)


@atexit.register
def _cleanup():
    """The sink ends with the test, also when it fails half-way."""
    if sink.poll() is None:
        sink.kill()
        sink.wait()

# ---- the receiver ----
cert, key = gt.make_cert(d, "hooks", "hooks.example", sans=["hooks.example"])
got = []
got_lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with got_lock:
            got.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body})
        if self.path.startswith("/slow"):
            time.sleep(4)
        status = 500 if self.path.startswith("/fail") else 201 if self.path.startswith("/created") else 200
        answer = b"x" * 1000 if self.path.startswith("/big") else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(answer)
        except OSError:
            pass


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Receiver)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
# The same receiver on plain HTTP (mox takes http:// URLs).
PLAIN_PORT = gt.free_port()
httpd_plain = http.server.ThreadingHTTPServer(("127.0.0.1", PLAIN_PORT), Receiver)
threading.Thread(target=httpd_plain.serve_forever, daemon=True).start()


def take():
    with got_lock:
        r = list(got)
        got.clear()
    return r


DNS = ('dns = { local_data = [ "ok.example. IN MX 10 mx.ok.example.", "mx.ok.example. IN A 127.0.0.1", '
       '"hooks.example. IN A 127.0.0.1" ]; };')
cl = gt.cluster()
db = cl.create_db("webhooks")


def write_conf(name, modules, section=""):
    path = os.path.join(d, name)
    text = gt.base_conf(modules=modules, extra='queue = { smtp_port = %d; };\ntls = { client_ca_file = "%s"; };\n'
                        '%s\n%s' % (SMTP_PORT, cert, section, DNS))
    with open(path, "w") as f:
        f.write(text.replace("{dir}", d).replace("{db}", cl.conninfo(db)))
    return path


conf = write_conf("gannet.conf", 'directory = "%s"; load = [ "suppression", "webhooks" ];' % moddir,
                  'webhooks = { timeout = "2s"; };')
plain = write_conf("plain.conf", "")
clock = [0.0]


def g(*args, stdin=None, config=None):
    env = dict(os.environ)
    env["GANNET_TEST_CLOCK_OFFSET"] = "%d" % clock[0]
    r = gt.run_gannet(["-c", config or conf] + list(args), input=stdin, env=env)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sql(q):
    return cl.psql(q, db).strip()


def t_re(s, pattern, name):
    r = t.ok(s is not None and re.search(pattern, s) is not None, name)
    if not r:
        t.diag("%r does not match %r" % (s, pattern))
    return r


URL = "https://hooks.example:%d" % HOOK_PORT
setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("queue", "retired", "keep", "alice", "1d")]
setup_ok = True
for a in setup:
    r = g(*a)
    if r.returncode != 0:
        setup_ok = False
        t.diag("gannet %s: %s" % (" ".join(a), r.stderr))
t.ok(setup_ok, "migrate (with the module's tables), account alice")
if not setup_ok:
    sink.kill()
    t.done()
    sys.exit(1)

# ---- settings ----
r = g("config", "account", "webhook", "show", "alice")
t.is_(r.stdout, "outgoing: none\nincoming: none\nkeep-retired: 0s (the default, webhooks.retired_keep)\n",
      "no webhooks at first, retired ones kept for the default period")
r = g("config", "account", "webhook", "set", "alice", "outgoing", "ftp://hooks.example/x")
t.ok(r.returncode == 1 and "https:// or http://" in r.stderr, "an ftp:// URL is refused, saying why")
r = g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "delivered,bounced")
t.ok(r.returncode == 1 and 'unknown event "bounced"' in r.stderr, "an unknown event is refused")
r = g("config", "account", "webhook", "set", "alice", "sideways", URL + "/ok")
t.is_(r.returncode, 2, "neither outgoing nor incoming: bad usage")
r = g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all", "Bearer s3cret")
t.ok(r.returncode == 2 and "stdin" in r.stderr, "an Authorization value on the command line is refused")
r = g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all", "-", stdin="")
t.ok(r.returncode == 1 and "no Authorization value on stdin" in r.stderr, "\"-\" with nothing on stdin fails")
r = g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all", "-", stdin="x" * 1025 + "\n")
t.ok(r.returncode == 1 and "longer than 1024" in r.stderr, "an Authorization longer than 1024 bytes is refused")
t.is_(g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all", "-",
        stdin="Bearer s3cret\n").returncode, 0, "outgoing webhook set, all events, with an Authorization from stdin")
r = g("config", "account", "webhook", "keep", "alice", "1d")
t.is_((r.returncode, r.stdout), (0, "account alice keeps retired webhooks for 86400s (its own setting)\n"),
      "retired webhooks kept a day")
r = g("config", "account", "webhook", "show", "alice")
t_re(r.stdout, r"outgoing: %s/ok events=all authorization=yes\nincoming: none\nsecret: whsec_\S+\n"
     r"keep-retired: 86400s \(its own setting\)\n" % re.escape(URL), "show: the URL, events, that there is an Authorization, "
     "the secret")
m = re.search(r"secret: whsec_(\S+)", r.stdout)
SECRET = base64.b64decode(m.group(1)) if m else b""
t.is_(len(SECRET), 24, "the secret is 24 bytes in base64")


def queue(to, subject, extra=None):
    args = ["queue", "add", "--from", "alice@example.com", "--to", to]
    body = ("From: Alice <alice@example.com>\nTo: %s\nSubject: %s\nMessage-ID: <%s@example.com>\n\n"
            "Hello.\n" % (to, subject, subject.replace(" ", "-")))
    r = g(*args, stdin=body)
    if r.returncode != 0:
        t.diag(r.stderr)
    return sql("SELECT max(id) FROM gn_queue_recipients WHERE rcpt = '%s'" % to)


def hooks():
    out = g("queue", "webhook", "list").stdout
    return [dict(re.findall(r"(\w+)=(\S+)", ln), id=ln.split()[0]) for ln in out.splitlines() if ln]


def results(out):
    m = re.search(r"^results: (.*)$", out, re.M)
    return json.loads(m.group(1)) if m else []


def result_is(hook_id, success, code, error_re, name, retired=False):
    out = g("queue", "webhook", *(["retired", "print"] if retired else ["print"]), hook_id).stdout
    res = results(out)
    ok = len(res) > 0 and res[-1]["Success"] == success and res[-1]["Code"] == code and \
        re.search(error_re, res[-1]["Error"]) is not None
    if not t.ok(ok, name):
        t.diag(out)
    return res


def verify(req, hook_id, attempt, auth="Bearer s3cret"):
    """The headers of one request and its signature; returns the payload."""
    h = req["headers"]
    ok = (h.get("content-type") == "application/json; charset=utf-8" and
          h.get("user-agent", "").startswith("gannet/") and h.get("user-agent", "").endswith(" (webhook)") and
          h.get("x-mox-webhook-id") == str(hook_id) and h.get("x-mox-webhook-attempt") == str(attempt) and
          h.get("authorization") == auth and h.get("webhook-id") == str(hook_id))
    if not ok:
        t.diag(repr(h))
    ts = h.get("webhook-timestamp", "")
    signed = ("%s.%s." % (h.get("webhook-id", ""), ts)).encode() + req["body"]
    want = "v1," + base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
    t.ok(ok, "hook %s attempt %s: the headers" % (hook_id, attempt))
    t.is_(h.get("webhook-signature"), want, "hook %s attempt %s: the signature verifies" % (hook_id, attempt))
    t.ok(ts.isdigit() and abs(int(ts) - time.time()) < 300, "webhook-timestamp is now")
    return json.loads(req["body"])


# ---- delivered ----
rid = queue("ok@ok.example", "first one")
t.ok(rid.isdigit(), "a message queued to ok@ok.example")
g("queue", "run")
hs = hooks()
t.ok(len(hs) == 1 and hs[0]["event"] == "delivered" and hs[0]["queue_msg"] == rid and hs[0]["attempts"] == "0",
     "delivered: one hook waits, for the queue message, no attempt yet")
hid = hs[0]["id"] if hs else "0"
t.is_(g("queue", "webhook", "run").returncode, 0, "queue webhook run")
reqs = take()
if not t.is_(len(reqs), 1, "the receiver got one request"):
    t.diag(g("queue", "webhook", "print", hid).stdout)
p = verify(reqs[0], hid, 1) if reqs else {}
t.is_(reqs[0]["path"] if reqs else None, "/ok", "at the URL's path")
want = {"Version": 0, "Event": "delivered", "DSN": False, "Suppressing": False, "QueueMsgID": int(rid),
        "FromID": "", "MessageID": "<first-one@example.com>", "Subject": "first one", "SMTPCode": 0,
        "SMTPEnhancedCode": "", "Error": "", "Extra": {}}
t.is_({k: p.get(k) for k in want}, want, "the payload: mox's fields and values")
t.is_(list(p.keys()), ["Version", "Event", "DSN", "Suppressing", "QueueMsgID", "FromID", "MessageID", "Subject",
                       "WebhookQueued", "SMTPCode", "SMTPEnhancedCode", "Error", "Extra"], "in mox's order")
t_re(p.get("WebhookQueued", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$", "WebhookQueued is RFC 3339")
t.is_(hooks(), [], "nothing waits after a 200")
r = g("queue", "webhook", "retired", "list")
t_re(r.stdout, r"^%s account=alice event=delivered queue_msg=%s attempts=1 success=yes superseded_by=0 " % (
    hid, rid), "retired as a success")
r = g("queue", "webhook", "retired", "print", hid)
res = results(r.stdout)
t.ok(len(res) == 1 and sorted(res[0].keys()) == sorted(["Start", "Duration", "URL", "Success", "Code", "Error",
                                                         "Response"]) and
     (res[0]["URL"], res[0]["Success"], res[0]["Code"], res[0]["Error"], res[0]["Response"]) ==
     (URL + "/ok", True, 200, "", "ok") and isinstance(res[0]["Duration"], int), "its result: mox's HookResult")
t_re(r.stdout, r"authorization: yes\n", "the retired record says there was an Authorization, not which")
t.ok("s3cret" not in r.stdout, "and does not show it")

# ---- failed, with suppression; Extra ----
rid = queue("bad@ok.example", "second one")
g("queue", "run")
hs = hooks()
t.ok(len(hs) == 1 and hs[0]["event"] == "failed", "a 550: a failed hook")
g("queue", "webhook", "run")
reqs = take()
p = verify(reqs[0], hs[0]["id"] if hs else 0, 1) if reqs else {}
t.is_((p.get("Event"), p.get("QueueMsgID"), p.get("SMTPCode"), p.get("SMTPEnhancedCode"), p.get("Suppressing")),
      ("failed", int(rid), 550, "5.1.1", True), "failed: the code, the enhanced code, and Suppressing (550 adds "
      "the address to the suppression list)")
t_re(p.get("Error", ""), "no such user", "Error: the server's text")

# ---- suppressed ----
rid = queue("bad@ok.example", "third one")
g("queue", "run")
g("queue", "webhook", "run")
reqs = take()
p = json.loads(reqs[0]["body"]) if reqs else {}
t.is_((p.get("Event"), p.get("QueueMsgID"), p.get("SMTPCode")), ("suppressed", int(rid), 0),
      "a recipient on the suppression list: suppressed")

# ---- delayed, and the supersede rule ----
rid = queue("later@ok.example", "fourth one")
g("queue", "run")
hs = hooks()
t.ok(len(hs) == 1 and hs[0]["event"] == "delayed", "a 451: a delayed hook")
first = hs[0]["id"] if hs else "0"
clock[0] += 3 * 3600
g("queue", "run")
hs = hooks()
t.ok(len(hs) == 1 and hs[0]["event"] == "delayed" and hs[0]["id"] != first and hs[0]["queue_msg"] == rid,
     "the second attempt: a new delayed hook, the only one waiting for the message")
second = hs[0]["id"] if hs else "0"
r = g("queue", "webhook", "retired", "print", first)
t_re(r.stdout, r"^%s account=alice event=delayed queue_msg=%s attempts=0 success=no superseded_by=%s " % (
    first, rid, second), "the first is retired, superseded by the second, never sent")
g("queue", "webhook", "run")
reqs = take()
t.ok(len(reqs) == 1 and json.loads(reqs[0]["body"])["Event"] == "delayed" and
     reqs[0]["headers"].get("x-mox-webhook-id") == second, "only the second is sent")

# ---- queue fail, queue drop ----
t.is_(g("queue", "fail", rid).returncode, 0, "queue fail")
g("queue", "webhook", "run")
reqs = take()
p = json.loads(reqs[0]["body"]) if reqs else {}
t.is_((p.get("Event"), p.get("QueueMsgID"), p.get("Error")), ("failed", int(rid), "failed by the administrator"),
      "queue fail: failed")
rid = queue("later@ok.example", "fifth one")
t.is_(g("queue", "drop", rid).returncode, 0, "queue drop")
g("queue", "webhook", "run")
reqs = take()
p = json.loads(reqs[0]["body"]) if reqs else {}
t.is_((p.get("Event"), p.get("QueueMsgID")), ("canceled", int(rid)), "queue drop: canceled")

# ---- events not subscribed ----
g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "failed,delayed", "-", stdin="Bearer s3cret\n")
queue("ok@ok.example", "sixth one")
g("queue", "run")
t.is_(hooks(), [], "subscribed to failed and delayed only: no hook for delivered")

# ---- plain HTTP ----
g("config", "account", "webhook", "set", "alice", "outgoing", "http://hooks.example:%d/ok" % PLAIN_PORT, "all")
rid = queue("ok@ok.example", "plain one")
g("queue", "run")
hs = hooks()
hid = hs[0]["id"] if hs else "0"
t.ok(len(hs) == 1 and hs[0]["url"] == "http://hooks.example:%d/ok" % PLAIN_PORT, "a hook to an http:// URL")
g("queue", "webhook", "run")
reqs = take()
t.ok(len(reqs) == 1 and reqs[0]["path"] == "/ok" and
     reqs[0]["headers"].get("host") == "hooks.example:%d" % PLAIN_PORT and
     json.loads(reqs[0]["body"]).get("QueueMsgID") == int(rid),
     "sent over plain HTTP to the http:// URL (Host with the port), the payload for the message")
t.is_(hooks(), [], "a 200 over plain HTTP: delivered, nothing waits")

# ---- 500s: the schedule, to the 12th attempt ----
g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/fail", "all", "-", stdin="Bearer s3cret\n")
rid = queue("ok@ok.example", "seventh one")
g("queue", "run")
g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all", "-", stdin="Bearer s3cret\n")
hs = hooks()
hid = hs[0]["id"] if hs else "0"
t.ok(len(hs) == 1 and hs[0]["url"] == URL + "/fail", "a hook to /fail (the URL as it was when queued)")
backoffs = [60, 120, 240, 450, 900, 1800, 3600, 7200, 14400, 28800, 57600]
schedule_ok = True
deltas = []
for attempt in range(1, 13):
    g("queue", "webhook", "run")
    reqs = take()
    if len(reqs) != 1 or reqs[0]["headers"].get("x-mox-webhook-attempt") != str(attempt):
        schedule_ok = False
        t.diag("attempt %d: %r" % (attempt, [r["headers"] for r in reqs]))
    if attempt == 1:
        verify(reqs[0], hid, 1)
        result_is(hid, False, 500, "^http status 500$", "a 500: a failure")
    if attempt < 12:
        hs = hooks()
        if len(hs) != 1:
            schedule_ok = False
            break
        now = time.time() + clock[0]
        nxt = time.mktime(time.strptime(hs[0]["next"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        delta = nxt - now
        deltas.append(delta)
        # mox's jitter: ±1 % (and 3 s for the time the commands take and
        # the whole seconds of the listing).
        if abs(delta - backoffs[attempt - 1]) > backoffs[attempt - 1] * 0.01 + 3:
            schedule_ok = False
            t.diag("attempt %d: next %s, expected +%ds ±1%%" % (attempt, hs[0]["next"], backoffs[attempt - 1]))
        # Not due 20 s before:
        clock[0] += int(delta) - 20
        g("queue", "webhook", "run")
        if take():
            schedule_ok = False
            t.diag("attempt %d: sent before it was due" % attempt)
        clock[0] += 23
t.ok(schedule_ok, "12 attempts, 1m 2m 4m 7.5m 15m 30m 1h 2h 4h 8h 16h apart ±1 %, none early")
# Jittered: of the last four (2h to 16h, ±72 s to ±576 s), not all within
# 3 s of the base (by chance: about one in a million).
t.ok(len(deltas) == 11 and any(abs(d - b) > 3 for d, b in zip(deltas[7:], backoffs[7:])),
     "the schedule is jittered: %s" % ["%+.0f" % (d - b) for d, b in zip(deltas, backoffs)])
t.is_(hooks(), [], "after the 12th, nothing waits")
r = g("queue", "webhook", "retired", "print", hid)
t_re(r.stdout, r"^%s account=alice event=delivered queue_msg=%s attempts=12 success=no " % (hid, rid),
     "retired as failed after 12 attempts")
res = results(r.stdout)
t.ok(len(res) == 12 and all(x["Code"] == 500 and not x["Success"] for x in res), "with 12 results of 500")

# ---- 201 is no success; 512 bytes of the answer; slow; nobody there ----
for path, name in (("/created", "a 201"), ("/big", "a 200 with a big answer"), ("/slow", "a slow receiver"),
                   ("dead", "no receiver")):
    url = "https://hooks.example:%d/x" % DEAD_PORT if path == "dead" else URL + path
    g("config", "account", "webhook", "set", "alice", "outgoing", url, "all")
    queue("ok@ok.example", "to %s" % path.strip("/"))
    g("queue", "run")
    hs = hooks()
    g("queue", "webhook", "run")
    take()
    last = hs[0]["id"] if hs else "0"
    if path == "/created":
        result_is(last, False, 201, "^http status 201$", "%s is a failure" % name)
    elif path == "/big":
        res = result_is(last, True, 200, "^$", name, retired=True)
        t.is_(len(res[-1]["Response"]) if res else -1, 512, "%s: 512 bytes of it kept" % name)
    elif path == "/slow":
        result_is(last, False, 0, "timeout", "%s: a failure, timed out" % name)
    else:
        result_is(last, False, 0, "(refused|connect)", "%s: a failure, the connection refused" % name)
    if path != "/big":
        t.is_(g("queue", "webhook", "cancel", last).returncode, 0, "queue webhook cancel")
        result_is(last, False, 0, "^canceled by admin$", "canceled: the result says so", retired=True)

# ---- one in flight a URL; schedule ----
g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/slow", "all")
queue("ok@ok.example", "eighth one")
queue("ok@ok.example", "ninth one")
g("queue", "run")
hs = hooks()
t.is_(len(hs), 2, "two hooks to the same URL")
start = time.time()
g("queue", "webhook", "run")
t.is_(len(take()), 1, "one pass sends one of them: one request in flight a URL")
t.is_(g("queue", "webhook", "schedule", hs[0]["id"], "now").returncode, 0, "queue webhook schedule now")
t.is_(g("queue", "webhook", "schedule", "999999", "now").returncode, 1, "an unknown id: exit 1")
t.is_(g("queue", "webhook", "schedule", hs[0]["id"], "tomorrow").returncode, 2, "a bad time: exit 2")
for h in hs:
    g("queue", "webhook", "cancel", h["id"])

# ---- the global limit ----
one = write_conf("one.conf", 'directory = "%s"; load = [ "suppression", "webhooks" ];' % moddir,
                 'webhooks = { timeout = "2s"; concurrency = 1; };')
for path in ("/ok", "/created"):
    g("config", "account", "webhook", "set", "alice", "outgoing", URL + path, "all")
    queue("ok@ok.example", "limit %s" % path.strip("/"))
    g("queue", "run")
hs = hooks()
t.is_(sorted(h["url"] for h in hs), [URL + "/created", URL + "/ok"], "two hooks to two URLs")
g("queue", "webhook", "run", config=one)
t.is_(len(take()), 1, "concurrency = 1: one pass sends one of them")
g("queue", "webhook", "run")
t.is_(len(take()), 1, "the default (10): the other one")
for h in hooks():
    g("queue", "webhook", "cancel", h["id"])

# ---- webhooks.retired_keep: the period of accounts without their own ----
kept = write_conf("kept.conf", 'directory = "%s"; load = [ "suppression", "webhooks" ];' % moddir,
                  'webhooks = { timeout = "2s"; retired_keep = "2h"; };')
r = g("config", "account", "webhook", "keep", "alice", "default")
t.is_((r.returncode, r.stdout), (0, "account alice keeps retired webhooks for 0s (the default, webhooks.retired_keep)\n"),
      "keep default: the setting's period (none set: 0s)")
t.like(g("config", "account", "webhook", "show", "alice", config=kept).stdout,
       "keep-retired: 7200s (the default, webhooks.retired_keep)\n", "show: retired_keep = \"2h\", the default")
g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all")
queue("ok@ok.example", "kept by default")
g("queue", "run")
hs = hooks()
g("queue", "webhook", "run", config=kept)
take()
t.is_(sql("SELECT extract(epoch FROM keep_until - last_activity)::bigint FROM gn_webhooks_retired "
          "WHERE id = %s" % (hs[0]["id"] if len(hs) == 1 else "0")), "7200",
      "its hook, delivered, is kept 2h: the setting's period")
r = g("config", "account", "webhook", "keep", "alice", "0", config=kept)
t.is_(r.stdout, "account alice keeps retired webhooks for 0s (its own setting)\n", "alice's own 0 wins")
queue("ok@ok.example", "not kept")
g("queue", "run")
hs = hooks()
g("queue", "webhook", "run", config=kept)
take()
t.is_(sql("SELECT count(*) FROM gn_webhooks_retired WHERE id = %s" % (hs[0]["id"] if len(hs) == 1 else "0")),
      "0", "and its next hook is not kept")
t.is_(g("config", "account", "webhook", "keep", "bob", "1h").returncode, 1, "keep for an unknown account fails")
# Migration 002: the 0s of before (the old column default) become NULL,
# the periods set on purpose stay.  Applied again to rows as 001 left them.
g("config", "account", "add", "erin", "erin@example.com")
g("config", "account", "webhook", "keep", "erin", "0")
g("config", "account", "webhook", "keep", "alice", "1d")
sql("DELETE FROM gn_schema_migrations WHERE module = 'webhooks' AND version = 2; "
    "UPDATE gn_webhook_accounts SET keep_retired_s = 0 WHERE keep_retired_s IS NULL; "
    "ALTER TABLE gn_webhook_accounts ALTER COLUMN keep_retired_s SET DEFAULT 0, "
    "ALTER COLUMN keep_retired_s SET NOT NULL")
t.like(g("migrate").stdout, "applied webhooks 2 002_retired_keep_default", "webhooks' 002 applies again")
t.is_(sql("SELECT a.name || ' ' || coalesce(w.keep_retired_s::text, 'default') FROM gn_webhook_accounts w "
          "JOIN gn_accounts a ON a.id = w.account_id ORDER BY a.name"), "alice 86400\nerin default",
      "0 became NULL, 1d stayed")
for value, why in (('"2 hours"', "must be a duration"), ('"90500ms"', "must be whole seconds, at most 10 years"),
                   ('"3651d"', "must be whole seconds, at most 10 years")):
    path = write_conf("bad.conf", 'directory = "%s"; load = [ "webhooks" ];' % moddir,
                      'webhooks = {\n\tretired_keep = %s;\n};' % value)
    with open(path) as f:
        line = f.read().splitlines().index("\tretired_keep = %s;" % value) + 1
    r = gt.run_gannet(["config", "check", path])
    t.ok(r.returncode == 1 and "webhooks.retired_keep: %s" % why in r.stderr and " at bad.conf:%d" % line in r.stderr,
         "config check refuses webhooks.retired_keep = %s with file and line" % value)
    if r.returncode != 1:
        t.diag(r.stderr)

# ---- the module unloaded ----
before = sql("SELECT count(*) FROM gn_webhooks") + "/" + sql("SELECT count(*) FROM gn_webhooks_retired")
g("config", "account", "webhook", "set", "alice", "outgoing", URL + "/ok", "all")
queue("ok@ok.example", "tenth one")
r = g("queue", "run", config=plain)
if r.returncode != 0:
    t.diag(r.stderr)
t.is_(sql("SELECT result FROM gn_queue_retired WHERE subject = 'tenth one'"), "delivered",
      "without the module: delivered")
after = sql("SELECT count(*) FROM gn_webhooks") + "/" + sql("SELECT count(*) FROM gn_webhooks_retired")
t.is_(after, before, "and no hook queued")
t.ok(g("queue", "webhook", "list", config=plain).returncode != 0, "queue webhook is not a command then")
t.is_(take(), [], "nothing was sent")

httpd.shutdown()
sink.kill()
sink.wait()
t.done()
