#!/usr/bin/env python3
"""
t/integration/234-queue-reuse.t: the queue's SMTP transport reuses its
connections to a server across deliveries (core/queue/transport-smtp.c):
after a transaction the connection is parked, the next delivery to that
server's IP takes it (RSET, MAIL), within queue.smtp_reuse_* limits.

- `gannet queue run` delivers 10 messages (one delivery at a time) over
  fewer connections than messages, each message once, over STARTTLS;
- with queue.smtp_reuse_max = 0: one connection a message;
- queue.smtp_reuse_transactions = 3: at most 3 messages a connection;
- a server that ends the parked connection when it is reused (421 at the
  RSET): the delivery goes on over a new connection, one attempt recorded,
  no failure;
- the runner of gannet serve: a parked connection the server closed
  (the server restarted) is dropped silently, the next message delivered
  at its first attempt; the idle time over, the connection ends with QUIT;
  the log says what was reused (debug), no sanitizer report.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
cert, key = gt.make_cert(d, "sink", "mx.reuse.example")
PORT = gt.free_port()


class Sink:
    """A smtpsink on 127.0.0.1 with TLS; restartable on its port."""

    def __init__(self, name):
        self.record = os.path.join(d, name + ".jsonl")
        self.script = os.path.join(d, name + ".json")
        self.set({})
        self.start()

    def start(self):
        self.proc = subprocess.Popen([sys.executable, SINK, "--host", "127.0.0.1", "--port", str(PORT),
                                      "--record", self.record, "--script", self.script, "--cert", cert,
                                      "--key", key], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        self.ok = len(line) == 2 and line[0] == "ready"

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def set(self, script):
        with open(self.script, "w") as f:
            json.dump(script, f)

    def events(self, event=None):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if event is None or e["event"] == event]

    def reset(self):
        if os.path.exists(self.record):
            os.unlink(self.record)

    def connects(self):
        return len(self.events("connect"))

    def messages(self, prefix):
        return [r for m in self.events("message") for r in m["rcpts"] if r.startswith(prefix)]


sink = Sink("sink")
t.ok(sink.ok, "the sink listens on port %d" % PORT)

DNS = """
dns = { local_data = [
  "reuse.example. IN MX 10 mx.reuse.example.",
  "mx.reuse.example. IN A 127.0.0.1"
]; };
"""
cl = gt.cluster()
db = cl.create_db("queuereuse")


def conf_with(queue_extra):
    text = gt.base_conf(extra="queue = { smtp_port = %d; %s };\n%s" % (PORT, queue_extra, DNS))
    return text


def write_conf(name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text.replace("{dir}", d).replace("{db}", cl.conninfo(db)))
    return path


conf_text = conf_with("")
conf = write_conf("gannet.conf", conf_text)
conf_off = write_conf("off.conf", conf_with("smtp_reuse_max = 0;"))
conf_three = write_conf("three.conf", conf_with("smtp_reuse_transactions = 3;"))


def g(*args, stdin=None, config=conf):
    r = gt.run_gannet(["-c", config] + list(args), input=stdin)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sql(q):
    return cl.psql(q, db)


def queue(to):
    m = "From: alice@example.com\nTo: %s\nSubject: to %s\nMessage-ID: <%s@example.com>\n\nHello.\n" % (
        to, to, to.replace("@", "."))
    return g("queue", "add", "--from", "alice@example.com", "--to", to, stdin=m).returncode


def attempts(prefix):
    """Each recipient's attempts as 'code' strings, from the attempt history."""
    rows = sql("SELECT a.code FROM gn_queue_retired_attempts a JOIN gn_queue_retired r "
               "ON r.account_id = a.account_id AND r.id = a.recipient_id "
               "WHERE r.rcpt LIKE '%s%%' ORDER BY r.id, a.seq" % prefix)
    return rows.split() if rows else []


def wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    t.diag("timed out waiting for " + what)
    return False


def delivered(prefix):
    return sql("SELECT count(*) FROM gn_queue_retired WHERE rcpt LIKE '%s%%' AND result = 'delivered'"
               % prefix)


t.is_(g("migrate").returncode, 0, "migrate")
t.is_(g("config", "domain", "add", "example.com").returncode, 0, "domain")
t.is_(g("config", "account", "add", "alice", "alice@example.com").returncode, 0, "account alice")
t.is_(g("queue", "retired", "keep", "alice", "1d").returncode, 0, "alice keeps retired records")

# ---- one process, ten deliveries one after another ----
for i in range(10):
    queue("on%d@reuse.example" % i)
t.is_(g("queue", "run").stdout, "10 deliveries attempted\n", "queue run attempts the ten")
t.is_(delivered("on"), "10", "all ten delivered")
got = sink.messages("on")
t.is_(sorted(got), sorted("on%d@reuse.example" % i for i in range(10)), "the server got each once")
t.ok(sink.connects() < 10, "over fewer connections than messages (%d)" % sink.connects())
t.ok(all(m["tls"] for m in sink.events("message")), "every message over STARTTLS, reused ones too")
t.ok(any(e["line"] == "RSET" for e in sink.events("command")), "RSET before the next MAIL")
t.is_(attempts("on"), ["250"] * 10, "one attempt each, 250")

# ---- reuse off ----
sink.reset()
for i in range(10):
    queue("off%d@reuse.example" % i)
t.is_(g("queue", "run", config=conf_off).stdout, "10 deliveries attempted\n", "reuse off: ten attempted")
t.is_(delivered("off"), "10", "all ten delivered")
t.is_(sink.connects(), 10, "one connection each with queue.smtp_reuse_max = 0")

# ---- at most 3 transactions a connection ----
sink.reset()
for i in range(10):
    queue("three%d@reuse.example" % i)
t.is_(g("queue", "run", config=conf_three).stdout, "10 deliveries attempted\n", "ten attempted")
t.is_(delivered("three"), "10", "all ten delivered")
per_conn = {}
for m in sink.events("message"):
    per_conn[m["conn"]] = per_conn.get(m["conn"], 0) + 1
t.is_(sorted(per_conn.values()), [1, 3, 3, 3],
      "queue.smtp_reuse_transactions = 3: 3, 3, 3 and 1 messages a connection")

# ---- a server that ends connections when they are reused ----
sink.reset()
sink.set({"messages_per_connection": 1})
for i in range(3):
    queue("stale%d@reuse.example" % i)
t.is_(g("queue", "run").stdout, "3 deliveries attempted\n", "three attempted")
t.is_(delivered("stale"), "3", "all three delivered")
t.is_(len(sink.events("closed_by_server")), 2, "the server refused the reused connection twice (421)")
t.is_(sink.connects(), 3, "each time a new connection took the message (3 in all)")
t.is_(attempts("stale"), ["250"] * 3, "one attempt each, 250: the refused reuse is no failed attempt")
t.is_(sorted(sink.messages("stale")), ["stale%d@reuse.example" % i for i in range(3)], "each once")
sink.set({})

# ---- the runner: a server restarted under a parked connection, the idle time ----
sink.reset()
srv = gt.Gannet(conf_text, db=db)
srv.start()
queue("run0@reuse.example")
t.ok(wait(lambda: delivered("run0") == "1", "run0's delivery"), "the runner delivers one message")
queue("run1@reuse.example")
t.ok(wait(lambda: delivered("run1") == "1", "run1's delivery"), "and the next")
t.is_(sink.connects(), 1, "over the same connection")
t.ok(wait(lambda: "event=queue_smtp_reuse " in srv.log(), "the log line"), "the log says it was reused")
sink.stop()
sink.start()
t.ok(sink.ok, "the server restarts (the parked connection is gone)")
queue("run2@reuse.example")
t.ok(wait(lambda: delivered("run2") == "1", "run2's delivery"), "the next message is delivered")
t.is_(attempts("run"), ["250"] * 3, "at the first attempt each: nothing failed")
t.is_(sink.connects(), 2, "over a new connection")
t.is_(srv.stop(), 0, "gannet stops with a connection parked")
t.ok("Sanitizer" not in srv.log(), "no sanitizer report")

# The idle time over, the parked connection ends with QUIT.
idle_text = conf_with("smtp_reuse_idle = \"1s\";")
sink.reset()
srv = gt.Gannet(idle_text, db=db)
srv.start()
queue("idle@reuse.example")
t.ok(wait(lambda: delivered("idle") == "1", "idle's delivery"), "delivered")
# The connection that carried it (the previous server's QUIT and close,
# at its stop, may reach the sink's log after the reset above).
conns = [e["conn"] for e in sink.events("command") if "idle@reuse.example" in e["line"]]
conn = conns[0] if conns else None
t.ok(wait(lambda: any(e["line"] == "QUIT" and e["conn"] == conn for e in sink.events("command")),
          "the QUIT"), "the idle connection ends with QUIT")
t.ok(wait(lambda: any(e["conn"] == conn for e in sink.events("close")), "the close"), "and closes")
t.is_(srv.stop(), 0, "gannet stops")
t.ok("Sanitizer" not in srv.log(), "no sanitizer report")

sink.stop()
t.done()
