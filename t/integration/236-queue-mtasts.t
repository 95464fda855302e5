#!/usr/bin/env python3
"""
t/integration/236-queue-mtasts.t: MTA-STS (RFC 8461) on the queue's SMTP
deliveries (core/queue/mtasts.c, transport-smtp.c) and the core's HTTPS
client that fetches the policies (core/net/http-client.c), through
`gannet dns mtasts` and `gannet queue run`.

DNS comes from dns.local_data; the policies from a loopback HTTPS server
(t/lib/policyserver.py) on queue.mta_sts_port whose certificate is trusted
through tls.client_ca_file; the MX hosts are one loopback smtpsink with
STARTTLS and a certificate for the MX names that should verify.

- the HTTPS client: a policy fetched (Content-Length and chunked, and one
  that ends with the connection); a certificate not valid for the name,
  a body over 64 KiB, a server slower than queue.mta_sts_timeout, a
  redirect, a wrong Content-Type, an invalid policy: each an error that
  says so, and no policy;
- enforce, an MX in the policy with a valid certificate: delivered over
  TLS; an MX not in the policy: not used, the message stays queued
  (temporary); an MX whose certificate does not verify: not delivered,
  still queued;
- testing: delivered as usual, with a log line for what enforce would
  have refused;
- the policy is cached in the database: with the policy server gone the
  cached policy is still enforced; a new id in the TXT record makes the
  next delivery fetch again (the new policy replaces the cached one); a
  new id with the server down keeps the cached policy; the refresh (the
  runner's job, `gannet queue mtasts refresh`) fetches again the policies
  near their expiry, and not the others;
- with connection reuse, an enforce delivery takes a parked connection
  only when its certificate verified for the same MX host;
- `gannet serve`'s runner delivering five messages to one domain at once
  fetches its policy once.
"""
import atexit
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
LIB = os.path.join(gt.SRCDIR, "t", "lib")

# ---- certificates: the policy hosts', the MX hosts', and one nobody trusts ----
POLICY_NAMES = ["mta-sts.%s.example" % n for n in
                ("enf", "notmx", "badcert", "testing", "chunked", "eof", "big", "slow", "redir",
                 "ctype", "invalid", "cache", "many")]
pcert, pkey = gt.make_cert(d, "policy", POLICY_NAMES[0], sans=POLICY_NAMES)
mcert, mkey = gt.make_cert(d, "mx", "mx.enf.example",
                           sans=["mx.enf.example", "mx.notmx.example", "mx.cache.example", "mx.many.example"])
ucert, ukey = gt.make_cert(d, "untrusted", "mta-sts.untrusted.example")
ca = os.path.join(d, "ca.pem")
with open(ca, "w") as out:
    for p in (pcert, mcert):
        with open(p) as f:
            out.write(f.read())

HTTPS_PORT = gt.free_port()
SMTP_PORT = gt.free_port()


class Policies:
    def __init__(self, cert, key, name):
        self.script = os.path.join(d, name + ".json")
        self.record = os.path.join(d, name + ".jsonl")
        self.cert, self.key = cert, key
        self.set({})
        self.proc = None

    def set(self, script):
        with open(self.script, "w") as f:
            json.dump(script, f)

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(LIB, "policyserver.py"), "--port",
                                      str(HTTPS_PORT), "--cert", self.cert, "--key", self.key, "--script",
                                      self.script, "--record", self.record], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        return len(line) == 2 and line[0] == "ready"

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def requests(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]


def policy(mode, *mx, max_age=86400):
    return "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
        mode, "".join("mx: %s\r\n" % m for m in mx), max_age)


SCRIPT = {
    "mta-sts.enf.example": {"body": policy("enforce", "mx.enf.example")},
    "mta-sts.notmx.example": {"body": policy("enforce", "mx.other.example", "*.elsewhere.example")},
    "mta-sts.badcert.example": {"body": policy("enforce", "*.badcert.example")},
    "mta-sts.testing.example": {"body": policy("testing", "mx.nowhere.example")},
    "mta-sts.chunked.example": {"body": policy("enforce", "*.chunked.example"), "chunked": True},
    "mta-sts.eof.example": {"body": policy("testing", "mx.eof.example"), "no_length": True},
    "mta-sts.big.example": {"body": "# padding line of a policy far too large\n", "repeat": 2000},
    "mta-sts.slow.example": {"body": policy("enforce", "mx.slow.example"), "delay": 5},
    "mta-sts.redir.example": {"status": 301, "location": "https://mta-sts.enf.example/", "body": ""},
    "mta-sts.ctype.example": {"body": policy("enforce", "mx.ctype.example"), "content_type": "text/html"},
    "mta-sts.invalid.example": {"body": policy("enforce", "mx.invalid.example", max_age=31557601)},
    "mta-sts.cache.example": {"body": policy("enforce", "mx.cache.example")},
    "mta-sts.many.example": {"body": policy("enforce", "mx.many.example"), "delay": 1},
}
server = Policies(pcert, pkey, "policies")
server.set(SCRIPT)
t.ok(server.start(), "the policy server listens on port %d" % HTTPS_PORT)

sink_record = os.path.join(d, "sink.jsonl")
sink_script = os.path.join(d, "sink.json")
with open(sink_script, "w") as f:
    json.dump({}, f)
sink = subprocess.Popen([sys.executable, os.path.join(LIB, "smtpsink.py"), "--host", "127.0.0.1", "--port",
                         str(SMTP_PORT), "--record", sink_record, "--script", sink_script, "--cert", mcert,
                         "--key", mkey], stdout=subprocess.PIPE, text=True)
t.ok(sink.stdout.readline().startswith("ready"), "the SMTP sink listens on port %d" % SMTP_PORT)


@atexit.register
def _cleanup():
    """The servers end with the test, also when it fails half-way."""
    server.stop()
    if sink.poll() is None:
        sink.kill()
        sink.wait()


def dns(ids=None):
    ids = ids or {}
    recs = []
    for name in ("enf", "notmx", "badcert", "testing", "chunked", "eof", "big", "slow", "redir", "ctype",
                 "invalid", "cache", "untrusted", "none", "many"):
        dom = name + ".example"
        recs.append("%s. IN MX 10 mx.%s." % (dom, dom))
        recs.append("mx.%s. IN A 127.0.0.1" % dom)
        recs.append("mta-sts.%s. IN A 127.0.0.1" % dom)
        if name != "none":
            recs.append('_mta-sts.%s. IN TXT "v=STSv1; id=%s"' % (dom, ids.get(name, "20261206a")))
    return "dns = { local_data = [\n%s\n]; };\n" % ",\n".join('  "%s"' % r.replace('"', '\\"')
                                                            for r in recs)


cl = gt.cluster()
db = cl.create_db("queuemtasts")


def conf_text(ids=None, timeout="2s", reuse=0):
    return gt.base_conf(extra='tls = { client_ca_file = "%s"; };\n'
                        'queue = { smtp_port = %d; mta_sts_port = %d; mta_sts_timeout = "%s"; '
                        'smtp_reuse_max = %d; };\n%s' % (ca, SMTP_PORT, HTTPS_PORT, timeout, reuse,
                                                        dns(ids)))


def write_conf(name, ids=None, timeout="2s", reuse=0):
    text = conf_text(ids, timeout, reuse)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text.replace("{dir}", d).replace("{db}", cl.conninfo(db)))
    return path


conf = write_conf("gannet.conf")


def g(*args, stdin=None, config=None):
    r = gt.run_gannet(["-c", config or conf] + list(args), input=stdin)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sql(q):
    return cl.psql(q, db)


t.is_(g("migrate").returncode, 0, "migrate")
t.is_(g("config", "domain", "add", "example.com").returncode, 0, "domain")
t.is_(g("config", "account", "add", "alice", "alice@example.com").returncode, 0, "account alice")
t.is_(g("queue", "retired", "keep", "alice", "1d").returncode, 0, "alice keeps retired records")


def lines(out, key):
    return [ln[len(key) + 1:] for ln in out.splitlines() if ln.startswith(key + " ")]


# ---- the HTTPS client, through `gannet dns mtasts` ----
r = g("dns", "mtasts", "enf.example")
if not t.is_(r.returncode, 0, "dns mtasts enf.example: a policy applies"):
    t.diag(r.stdout + r.stderr)
t.is_(lines(r.stdout, "txt-id"), ["20261206a"], "the TXT record's id")
t.is_(lines(r.stdout, "fetch"), ["ok"], "the policy fetched over HTTPS (Content-Length)")
t.is_(lines(r.stdout, "fetched"), ["id=20261206a mode=enforce max_age=86400 mx=mx.enf.example"],
      "the policy as parsed")
t.is_(lines(r.stdout, "applies"), ["mode=enforce source=fetched"], "it applies, fetched")
t.is_(lines(r.stdout, "mx"), ["10 mx.enf.example matches"], "the MX host matches it")
reqs = [q for q in server.requests() if q["host"] == "mta-sts.enf.example"]
t.ok(len(reqs) == 1 and reqs[0]["method"] == "GET" and reqs[0]["path"] == "/.well-known/mta-sts.txt",
     "one GET of /.well-known/mta-sts.txt")
t.is_(reqs[0]["headers"].get("Host") if reqs else None, "mta-sts.enf.example:%d" % HTTPS_PORT,
      "Host names the policy host (and the test's port)")
t.is_(sql("SELECT count(*) FROM gn_mtasts_policies"), "0", "dns mtasts writes no cache")

r = g("dns", "mtasts", "chunked.example")
t.is_(lines(r.stdout, "fetch"), ["ok"], "a chunked response (with extensions and a trailer) is read")
t.is_(lines(r.stdout, "fetched"), ["id=20261206a mode=enforce max_age=86400 mx=*.chunked.example"],
      "and decoded")
r = g("dns", "mtasts", "eof.example")
t.is_(lines(r.stdout, "fetch"), ["ok"], "a body that ends with the connection is read")

for dom, want, what in (
        ("untrusted", "certificate does not verify for mta-sts.untrusted.example", "a certificate for "
         "another name"),
        ("big", "response body larger than 65536 bytes", "a body over 64 KiB"),
        ("slow", ": timeout", "a server slower than queue.mta_sts_timeout"),
        ("redir", "HTTP status 301", "a redirect (not followed, RFC 8461 3.3)"),
        ("ctype", "Content-Type is text/html, not text/plain", "a policy served as text/html"),
        ("invalid", "max_age must be a number of seconds up to 31557600", "max_age over 31557600")):
    start = time.time()
    r = g("dns", "mtasts", dom + ".example")
    errs = lines(r.stdout, "fetch-error")
    t.ok(len(errs) == 1 and want in errs[0], "%s: the fetch fails: %s" % (what, errs))
    t.is_(lines(r.stdout, "applies"), ["mode=none source=none"], "%s: no policy applies" % what)
    t.is_(r.returncode, 1, "%s: exit 1" % what)
    if dom == "slow":
        t.ok(time.time() - start < 4.5, "the timeout (2 s) ended it before the server answered")
r = g("dns", "mtasts", "none.example")
t.is_(lines(r.stdout, "txt-error"), ["no v=STSv1 record"], "no TXT record: said so")
t.is_(lines(r.stdout, "fetch"), [], "and nothing fetched")

# ---- deliveries ----


def queue(to):
    m = "From: alice@example.com\nTo: %s\nSubject: to %s\nMessage-ID: <%s@example.com>\n\nHello.\n" % (
        to, to, to.replace("@", "."))
    return g("queue", "add", "--from", "alice@example.com", "--to", to, stdin=m).returncode


def sink_messages():
    if not os.path.exists(sink_record):
        return []
    with open(sink_record) as f:
        evs = [json.loads(line) for line in f if line.strip()]
    return [e for e in evs if e["event"] == "message"]


def delivered(rcpt):
    return [m for m in sink_messages() if rcpt in m["rcpts"]]


def queued(rcpt):
    return sql("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = '%s'" % rcpt)


def run(config=None):
    """`gannet -v queue run`: -v for the info lines on stderr."""
    return g("-v", "queue", "run", config=config)


for rcpt in ("a@enf.example", "b@notmx.example", "c@badcert.example", "d@testing.example"):
    t.is_(queue(rcpt), 0, "queued to %s" % rcpt)
r = run()
t.is_(r.stdout, "4 deliveries attempted\n", "queue run attempts the four")
log = r.stderr

m = delivered("a@enf.example")
t.ok(len(m) == 1 and m[0]["tls"], "enforce, MX in the policy, valid certificate: delivered over TLS")
t.ok("event=mtasts_policy domain=enf.example mode=enforce id=20261206a source=fetched" in log,
     "the applied policy is logged")


def policies(rcpt):
    """The tls_policy of each attempt for rcpt, queued or retired."""
    out = []
    for table, rtable in (("gn_queue_attempts", "gn_queue_recipients"),
                          ("gn_queue_retired_attempts", "gn_queue_retired")):
        rows = sql("SELECT a.tls_policy FROM %s a JOIN %s r ON r.account_id = a.account_id AND "
                   "r.id = a.recipient_id WHERE r.rcpt = '%s' ORDER BY a.seq" % (table, rtable, rcpt))
        out += [line for line in rows.splitlines() if line]
    return out


t.is_(policies("a@enf.example"), ["mta-sts"], "its attempt records policy mta-sts")
t.is_(policies("c@badcert.example"), ["mta-sts"], "so does the refused one (the certificate did not verify)")
t.is_(policies("d@testing.example"), ["opportunistic"], "testing enforces nothing: opportunistic")

t.is_(delivered("b@notmx.example"), [], "enforce, MX not in the policy: not delivered")
t.is_(queued("b@notmx.example"), "1", "and still queued (a temporary failure)")
t.ok("event=mtasts_mx_refused domain=notmx.example host=mx.notmx.example" in log, "the refused MX is logged")
t.is_(sql("SELECT last_enhanced || ' ' || last_text FROM gn_queue_recipients WHERE rcpt = 'b@notmx.example'"),
      "4.7.5 MTA-STS (enforce): no MX host of notmx.example matches the policy", "the failure says why")

t.is_(delivered("c@badcert.example"), [], "enforce, a certificate not valid for the MX: not delivered")
t.is_(queued("c@badcert.example"), "1", "and still queued")
t.ok("TLS certificate not verified for mx.badcert.example" in log, "the failure names the certificate")

m = delivered("d@testing.example")
t.is_(len(m), 1, "testing: delivered although the MX is not in the policy and its certificate is not valid")
t.ok("event=mtasts_testing_would_refuse domain=testing.example host=mx.testing.example" in log,
     "with a log line for each refusal enforce would have made")

rows = sql("SELECT domain, policy_id, mode, max_age FROM gn_mtasts_policies ORDER BY domain")
t.is_(rows.split("\n"), ["badcert.example|20261206a|enforce|86400", "enf.example|20261206a|enforce|86400",
                         "notmx.example|20261206a|enforce|86400", "testing.example|20261206a|testing|86400"],
      "the four policies cached in the database")
t.is_(sql("SELECT count(*) FROM gn_mtasts_policies WHERE expires_at = fetched_at + interval '86400 s'"), "4",
      "each expires max_age after its fetch")

# ---- the cache ----
server.stop()
n_requests = len(server.requests())
t.is_(queue("e@enf.example"), 0, "queued to e@enf.example")
t.is_(queue("f@cache.example"), 0, "queued to f@cache.example (never fetched)")
sql("UPDATE gn_queue_recipients SET next_attempt = now() - interval '1 s'")
r = run()
log = r.stderr
t.is_(len(delivered("e@enf.example")), 1, "policy server gone: delivered under the cached policy")
t.ok("event=mtasts_policy domain=enf.example mode=enforce id=20261206a source=cache" in log,
     "the cached policy applied")
t.ok("event=mtasts_mx_refused domain=notmx.example host=mx.notmx.example" in log,
     "the cached enforce policy still refuses the MX not in it")
t.is_(queued("b@notmx.example"), "1", "which stays queued")
t.is_(len(delivered("f@cache.example")), 1, "a domain without a cached policy: delivered as without one")
t.ok("event=mtasts_policy domain=cache.example mode=none id=- source=none" in log, "no policy applied there")

# A new id while the server is down: the cached policy is kept.
conf2 = write_conf("newid.conf", ids={"enf": "20261206b", "notmx": "20261206b"})
t.is_(queue("g@enf.example"), 0, "queued to g@enf.example")
r = run(config=conf2)
log = r.stderr
t.is_(len(delivered("g@enf.example")), 1, "a new id with the server down: delivered under the cached policy")
t.ok("source=cache fetch_error=" in log, "the failed fetch logged with the cached policy applied")
t.is_(sql("SELECT policy_id FROM gn_mtasts_policies WHERE domain = 'enf.example'"), "20261206a",
      "the cached policy kept its id")
t.ok(sql("SELECT last_error FROM gn_mtasts_policies WHERE domain = 'enf.example'") != "",
     "its last_error says why the refresh failed")

# A new id with the server back: fetched again; notmx.example now lists its MX.
SCRIPT["mta-sts.notmx.example"] = {"body": policy("enforce", "*.notmx.example", max_age=3600)}
server.set(SCRIPT)
t.ok(server.start(), "the policy server is back")
sql("UPDATE gn_queue_recipients SET next_attempt = now() - interval '1 s'")
r = run(config=conf2)
log = r.stderr
t.ok("event=mtasts_policy domain=notmx.example mode=enforce id=20261206b source=fetched" in log,
     "a new id in the TXT record: the policy fetched again")
t.is_(sql("SELECT policy_id || ' ' || replace(mx, E'\\n', ',') || ' ' || max_age FROM gn_mtasts_policies "
          "WHERE domain = 'notmx.example'"), "20261206b *.notmx.example, 3600", "the new policy cached")
t.is_(len(delivered("b@notmx.example")), 1, "and the message held back is delivered under it")
t.ok(len(server.requests()) > n_requests, "the server was asked again")

# The refresh (the runner's job, run now): 23.5 hours later the policies
# fetched first expire within the day and are fetched again; notmx.example's
# (max_age 3600) has expired and is left alone.
later = dict(os.environ, GANNET_TEST_CLOCK_OFFSET=str(86400 - 1800))
before = sql("SELECT extract(epoch FROM fetched_at)::bigint FROM gn_mtasts_policies WHERE domain = 'enf.example'")
r = gt.run_gannet(["-c", conf2, "queue", "mtasts", "refresh"], env=later)
t.is_(r.stdout, "3 policies refreshed\n", "queue mtasts refresh: the three near their expiry")
t.is_(sql("SELECT policy_id FROM gn_mtasts_policies WHERE domain = 'enf.example'"), "20261206b",
      "enf.example's policy fetched again, for the TXT record's new id")
after = sql("SELECT extract(epoch FROM fetched_at)::bigint FROM gn_mtasts_policies WHERE domain = 'enf.example'")
t.ok(before.isdigit() and after.isdigit() and int(after) - int(before) >= 86400 - 1900,
     "its fetched time (and expiry) moved on (%s -> %s)" % (before, after))
r = gt.run_gannet(["-c", conf2, "queue", "mtasts", "refresh"], env=later)
t.is_(r.stdout, "0 policies refreshed\n", "right after, nothing is due")

# Connection reuse under enforce: a parked connection is taken only by a
# delivery to the MX host its certificate verified for.  Every MX here is
# 127.0.0.1: a connection verified for mx.enf.example must not carry the
# message to badcert.example, whose MX name the certificate does not have.
conf_reuse = write_conf("reuse.conf", ids={"enf": "20261206b", "notmx": "20261206b"}, reuse=20)


def connects():
    with open(sink_record) as f:
        return sum(1 for line in f if '"event": "connect"' in line)


for i in range(3):
    t.is_(queue("reuse%d@enf.example" % i), 0, "queued to reuse%d@enf.example" % i)
# enf.example's first (the queue takes what is due in that order), so that
# a connection is parked when badcert.example's turn comes.
sql("UPDATE gn_queue_recipients SET next_attempt = now() - interval '10 s' WHERE rcpt LIKE 'reuse%'")
sql("UPDATE gn_queue_recipients SET next_attempt = now() - interval '1 s' WHERE rcpt = 'c@badcert.example'")
before_conns = connects()
r = run(config=conf_reuse)
t.ok(all(len(delivered("reuse%d@enf.example" % i)) == 1 for i in range(3)),
     "reuse on, enforce: the three delivered")
t.ok("event=queue_smtp_reuse domain=enf.example" in r.stderr, "over a reused connection")
t.is_(delivered("c@badcert.example"), [], "the connection verified for mx.enf.example did not carry "
      "badcert.example's message (same IP)")
t.is_(queued("c@badcert.example"), "1", "which stays queued")
t.ok(connects() - before_conns < 5, "fewer connections than deliveries (%d)" % (connects() - before_conns))

# The runner delivers five messages to one domain at once: one fetch of its
# policy (the server takes a second to answer), shared by the five.
srv = gt.Gannet(conf_text(ids={"enf": "20261206b", "notmx": "20261206b"}), db=db)
srv.start()
for i in range(5):
    queue("many%d@many.example" % i)
deadline = time.time() + 60
while time.time() < deadline and sum(len(delivered("many%d@many.example" % i)) for i in range(5)) < 5:
    time.sleep(0.2)
t.is_(sum(len(delivered("many%d@many.example" % i)) for i in range(5)), 5,
      "the runner delivers five messages to many.example under its enforce policy")
t.is_(len([q for q in server.requests() if q["host"] == "mta-sts.many.example"]), 1,
      "with one fetch of the policy for the five deliveries")
t.ok(srv.log().count("event=mtasts_policy domain=many.example mode=enforce id=20261206a source=fetched") == 5,
     "each applied the fetched policy")
t.is_(srv.stop(), 0, "gannet stops")
t.ok("Sanitizer" not in srv.log(), "no sanitizer report")

# `gannet dns mtasts` shows the cached copy.
r = g("dns", "mtasts", "notmx.example", config=conf2)
c = lines(r.stdout, "cached")
t.ok(len(c) == 1 and c[0].startswith("id=20261206b mode=enforce max_age=3600 mx=*.notmx.example expires="),
     "dns mtasts prints the cached copy: %s" % c)

t.done()
