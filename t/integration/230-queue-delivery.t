#!/usr/bin/env python3
"""
t/integration/230-queue-delivery.t: the queue's SMTP transport
(core/queue/transport-smtp.c) end to end: messages queued with `gannet
queue add`, delivered by the runner of a real `gannet serve` (and by `gannet
queue run`) to t/lib/smtpsink.py servers on loopback addresses, found
through dns.local_data MX records, on the port queue.smtp_port says.

- delivered (250) over opportunistic STARTTLS, the recipients of one
  domain in one transaction, the attempt history (`gannet
  queue retired print`) naming the MX host, its IP and the code;
- 451 at RCPT: retried, not before 7.5 minutes (GANNET_TEST_CLOCK_OFFSET),
  then delivered;
- 550 at RCPT: failed for good, a failure DSN in the sender's Inbox;
- a null MX (RFC 7505): failed for good, 5.1.10; NXDOMAIN: failed for good;
  no MX but an address: the implicit MX;
- a dead first MX host: the next one delivers;
- a message needing SMTPUTF8 to a server without it: failed for good with
  the reason;
- DNS unavailable (a resolver that never answers): retried, never dropped;
- two runners on one database deliver each of 20 messages exactly once;
- a runner killed with SIGKILL while the server is slow to answer the end
  of data: the message is retried after the lease and delivered (at worst
  twice, never lost).
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
cert, key = gt.make_cert(d, "sink", "mx.ok.example")
PORT = gt.free_port()


class Sink:
    """A smtpsink on one loopback address, all on the same port."""

    def __init__(self, name, host, tls=True):
        self.record = os.path.join(d, name + ".jsonl")
        self.script = os.path.join(d, name + ".json")
        self.set({})
        args = [sys.executable, SINK, "--host", host, "--port", str(PORT), "--record", self.record,
                "--script", self.script]
        if tls:
            args += ["--cert", cert, "--key", key]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        self.ok = len(line) == 2 and line[0] == "ready"

    def set(self, script):
        with open(self.script, "w") as f:
            json.dump(script, f)

    def events(self, event=None):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if event is None or e["event"] == event]

    def messages(self, rcpt=None):
        return [e for e in self.events("message") if rcpt is None or rcpt in e["rcpts"]]


ok_sink = Sink("ok", "127.0.0.1")
u8_sink = Sink("u8", "127.0.0.3", tls=False)
slow_sink = Sink("slow", "127.0.0.4", tls=False)
t.ok(ok_sink.ok and u8_sink.ok and slow_sink.ok, "three sinks listen on port %d" % PORT)
u8_sink.set({"no": ["SMTPUTF8"]})

DNS = """
dns = { local_data = [
  "ok.example. IN MX 10 mx.ok.example.",
  "mx.ok.example. IN A 127.0.0.1",
  "fall.example. IN MX 10 dead.fall.example.",
  "fall.example. IN MX 20 mx.ok.example.",
  "dead.fall.example. IN A 127.0.0.2",
  "nullmx.example. IN MX 0 .",
  "implicit.example. IN A 127.0.0.1",
  "u8.example. IN MX 10 mx.u8.example.",
  "mx.u8.example. IN A 127.0.0.3",
  "slow.example. IN MX 10 mx.slow.example.",
  "mx.slow.example. IN A 127.0.0.4"
]; };
"""
cl = gt.cluster()
db = cl.create_db("queuedelivery")
conf_text = gt.base_conf(extra="queue = { smtp_port = %d; };\n%s" % (PORT, DNS))
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(conf_text.replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def g(*args, stdin=None, offset=None, config=conf):
    env = dict(os.environ)
    env.pop("GANNET_TEST_CLOCK_OFFSET", None)
    if offset is not None:
        env["GANNET_TEST_CLOCK_OFFSET"] = str(offset)
    r = gt.run_gannet(["-c", config] + list(args), input=stdin, env=env)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sql(q):
    return cl.psql(q, db)


def msg(subject, to):
    return ("From: Alice <alice@example.com>\nTo: %s\nSubject: %s\nMessage-ID: <%s@example.com>\n\n"
            "Hello.\n" % (to, subject, subject.replace(" ", "-")))


def queue(to, subject, *more):
    args = ["queue", "add", "--from", "alice@example.com", "--to", to]
    for m in more:
        args += ["--to", m]
    return g(*args, stdin=msg(subject, to))


def retired(rcpt):
    """(result, id) of the retired recipient, or None."""
    r = sql("SELECT result || ' ' || id FROM gn_queue_retired WHERE rcpt = '%s' ORDER BY id DESC LIMIT 1"
            % rcpt)
    return tuple(r.split()) if r else None


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


def last(rcpt):
    return sql("SELECT state || ' ' || attempts || ' ' || coalesce(last_code::text, '-') || ' ' || "
               "coalesce(last_text, '-') FROM gn_queue_recipients WHERE rcpt = '%s'" % rcpt)


t.is_(g("migrate").returncode, 0, "migrate")
t.is_(g("config", "domain", "add", "example.com").returncode, 0, "domain")
t.is_(g("config", "account", "add", "alice", "alice@example.com").returncode, 0, "account alice")
t.is_(g("queue", "retired", "keep", "alice", "1d").returncode, 0, "alice keeps retired records")

# ---- delivered by the runner of gannet serve ----
srv = gt.Gannet(conf_text, db=db)
srv.start()
t.is_(queue("bob@ok.example", "first", "carol@ok.example").returncode, 0,
      "queued for bob@ok.example and carol@ok.example")
t.ok(wait(lambda: retired("bob@ok.example") is not None, "bob's delivery"), "the runner delivers it")
t.is_(retired("bob@ok.example")[0], "delivered", "retired as delivered")
ms = ok_sink.messages("bob@ok.example")
t.is_(len(ms), 1, "the MX host got it once")
t.is_(ms[0]["rcpts"] if ms else None, ["bob@ok.example", "carol@ok.example"],
      "both recipients of the domain in one transaction")
t.ok(wait(lambda: retired("carol@ok.example") is not None, "carol's record"), "carol's is retired too")
t.ok(ms and ms[0]["from"] == "alice@example.com" and ms[0]["tls"], "from alice, over STARTTLS")
t.ok(ms and "Subject: first\r\n" in ms[0]["data"], "the message as queued")
r = g("queue", "retired", "print", retired("bob@ok.example")[1])
t_re(r.stdout, r"attempt 1: .* host=mx\.ok\.example ip=127\.0\.0\.1 code=250",
       "the attempt history names the MX host, its IP and the code")
t.is_(srv.stop(), 0, "gannet stops")

# ---- the outcomes, one `gannet queue run` at a time ----
ok_sink.set({"rcpt": {"temp@ok.example": "451 4.2.0 mailbox busy",
                      "perm@ok.example": "550 5.1.1 no such user", "*": "250 2.1.5 ok"}})
queue("temp@ok.example", "temp")
queue("perm@ok.example", "perm")
queue("x@nullmx.example", "nullmx")
queue("x@nx.example", "nx")
queue("x@implicit.example", "implicit")
queue("x@fall.example", "fall")
queue("j\u00f6rg@u8.example", "utf8")
r = g("queue", "run")
t.is_(r.stdout, "7 deliveries attempted\n", "queue run attempts the seven")

t.is_(last("temp@ok.example"), "queued 1 451 mailbox busy", "451: queued for a retry")
t.is_(retired("perm@ok.example")[0], "failed", "550: failed for good")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "JOIN gn_mailboxes b ON b.account_id = m.account_id AND b.id = m.mailbox_id "
          "WHERE a.name = 'alice' AND b.name = 'Inbox' AND m.subject = 'mail delivery failed'"),
      "4", "failure DSNs in alice's Inbox: 550, null MX, NXDOMAIN, SMTPUTF8 (not for 451)")
r = g("queue", "retired", "print", retired("perm@ok.example")[1])
t_re(r.stdout, r"host=mx\.ok\.example ip=127\.0\.0\.1 code=550 enhanced=5\.1\.1 text=\"no such user\"",
       "its history: host, IP, 550 5.1.1")
r = g("queue", "retired", "print", retired("x@nullmx.example")[1])
t.is_(retired("x@nullmx.example")[0], "failed", "null MX: failed for good")
t_re(r.stdout, r"code=556 enhanced=5\.1\.10 text=\"nullmx\.example accepts no mail \(null MX",
       "with 5.1.10 (RFC 7505)")
r = g("queue", "retired", "print", retired("x@nx.example")[1])
t.is_(retired("x@nx.example")[0], "failed", "NXDOMAIN: failed for good")
t_re(r.stdout, r"code=550 enhanced=5\.1\.2 text=\"no such domain: nx\.example \(NXDOMAIN\)\"",
       "saying no such domain")
t.is_(retired("x@implicit.example")[0], "delivered", "no MX, an address: the implicit MX delivers")
t.is_(len(ok_sink.messages("x@implicit.example")), 1, "to the domain's own address")
t.is_(retired("x@fall.example")[0], "delivered", "a dead first MX host: the next one delivers")
t.is_(len(ok_sink.messages("x@fall.example")), 1, "the second MX host got it")
r = g("queue", "retired", "print", retired("x@fall.example")[1])
t_re(r.stdout, r"host=mx\.ok\.example ip=127\.0\.0\.1 code=250", "recorded with the host that took it")
rid = retired("j\u00f6rg@u8.example")
t.is_(rid[0] if rid else None, "failed", "SMTPUTF8 needed, not offered: failed for good")
r = g("queue", "retired", "print", rid[1] if rid else "0")
t_re(r.stdout, r"code=554 enhanced=5\.6\.7 text=\"the message needs SMTPUTF8.*server does not offer it\"",
       "with the reason")
t.is_(u8_sink.messages(), [], "nothing was sent to that server")

# 451: the retry comes 7.5 minutes later, and is delivered then.
ok_sink.set({})
t.is_(g("queue", "run", offset=400).stdout, "0 deliveries attempted\n", "no retry before 7.5 minutes")
t.is_(g("queue", "run", offset=460).stdout, "1 delivery attempted\n", "the retry after 7.5 minutes")
t.is_(retired("temp@ok.example")[0], "delivered", "delivered at the second attempt")
r = g("queue", "retired", "print", retired("temp@ok.example")[1])
t_re(r.stdout, r"attempt 1: .*code=451 enhanced=4\.2\.0", "its history: 451 first")
t_re(r.stdout, r"attempt 2: .*code=250", "then 250")

# ---- DNS unavailable: temporary, never dropped ----
dead_dns = os.path.join(d, "deaddns.conf")
with open(dead_dns, "w") as f:
    f.write(gt.base_conf(extra="queue = { smtp_port = %d; };\ndns = { resolvers = [ \"127.0.0.1@%d\" ]; "
                         "timeout = \"1s\"; };" % (PORT, gt.free_port()))
            .replace("{dir}", d).replace("{db}", cl.conninfo(db)))
queue("y@ok.example", "dnsdown")
t.is_(g("queue", "run", config=dead_dns).stdout, "1 delivery attempted\n", "attempted without DNS")
t_re(last("y@ok.example"), r"^queued 1 (0|-) MX lookup of ok\.example failed", "kept for a retry: the MX lookup failed")
t.is_(g("queue", "run", offset=460).stdout, "1 delivery attempted\n", "retried once the DNS answers")
t.is_(retired("y@ok.example")[0], "delivered", "and delivered")

# ---- two runners on one database ----
ok_sink.set({})
srv_a = gt.Gannet(conf_text, db=db)
srv_b = gt.Gannet(conf_text, db=db)
srv_a.start()
srv_b.start()
for i in range(20):
    queue("many%d@ok.example" % i, "many %d" % i)
t.ok(wait(lambda: sql("SELECT count(*) FROM gn_queue_retired WHERE rcpt LIKE 'many%'") == "20",
          "the 20 deliveries", 120), "two runners deliver the 20 messages")
got = [r for m in ok_sink.messages() for r in m["rcpts"] if r.startswith("many")]
t.is_(len(got), 20, "the server got 20 messages")
t.is_(len(set(got)), 20, "each once: no message delivered twice")
t.is_((srv_a.stop(), srv_b.stop()), (0, 0), "both stop")

# ---- SIGKILL mid-delivery ----
slow_sink.set({"slow": {"data_end": 30}})
srv = gt.Gannet(conf_text, db=db)
srv.start()
queue("k@slow.example", "killed")
t.ok(wait(lambda: len(slow_sink.messages("k@slow.example")) == 1, "the message at the slow server"),
     "the runner sends the message; the server is slow to answer its end")
srv.kill()
t_re(last("k@slow.example"), "^delivering 1 ", "the runner died: the recipient is still leased")
slow_sink.set({})
t.is_(g("queue", "run", offset=1800).stdout, "0 deliveries attempted\n", "not claimed again during the lease")
t.is_(g("queue", "run", offset=3700).stdout, "1 delivery attempted\n", "claimed again after the lease")
t.is_(retired("k@slow.example")[0], "delivered", "and delivered: nothing lost")
n = len(slow_sink.messages("k@slow.example"))
t.ok(1 <= n <= 2, "the server has it %d times (at worst twice)" % n)

for s in (ok_sink, u8_sink, slow_sink):
    s.proc.kill()
    s.proc.wait()
t.done()
