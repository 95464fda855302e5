#!/usr/bin/env python3
"""
t/integration/275-suppression.t: the suppression module (issue 12 item 3,
mox.md 2.7), with `gannet queue add` and `gannet queue run` against a
t/lib/smtpsink.py server on loopback (as 230):

- `gannet queue suppress add|list|lookup|rm`: entries keyed by base
  address (localpart cut at "+" and "-", dots removed, lower-cased), per
  account; errors in plain words (exit 1), bad usage exit 2;
- the queue fails a suppressed recipient for good before the transport
  (550 5.7.1 in the record), the other recipient of the same message is
  delivered, the sender gets a failure DSN (Status 5.7.1, no
  Diagnostic-Code: no server said it);
- automatic additions: at once on 550 and on a 5xx with 5.7.1; after three
  consecutive failures (554 5.0.0, messages retired one after the other),
  not when a delivery came between; not for a 4xx that is retried; a
  tagged address of a listed base address is then suppressed;
- a lookup that fails (the table gone): a temporary failure, nothing
  sent;
- the module unloaded: the CLI is absent, the listed address is delivered
  to, a 550 adds nothing.
"""
import email
import email.policy
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "suppression")
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
PORT = gt.free_port()
record = os.path.join(d, "sink.jsonl")
script = os.path.join(d, "sink.json")


def sink_script(rcpt):
    with open(script, "w") as f:
        json.dump({"rcpt": dict(rcpt, **{"*": "250 2.1.5 ok"})}, f)


sink_script({})
sink = subprocess.Popen([sys.executable, SINK, "--host", "127.0.0.1", "--port", str(PORT), "--record",
                         record, "--script", script], stdout=subprocess.PIPE, text=True)
t.is_(sink.stdout.readline().split()[:1], ["ready"], "a sink listens on port %d" % PORT)


def sunk(rcpt):
    """The messages the sink got with rcpt among their recipients."""
    if not os.path.exists(record):
        return []
    with open(record) as f:
        evs = [json.loads(line) for line in f if line.strip()]
    return [e for e in evs if e["event"] == "message" and rcpt in e["rcpts"]]


DNS = 'dns = { local_data = [ "ok.example. IN MX 10 mx.ok.example.", "mx.ok.example. IN A 127.0.0.1" ]; };'
cl = gt.cluster()
db = cl.create_db("suppression")


def write_conf(name, modules):
    path = os.path.join(d, name)
    text = gt.base_conf(modules=modules, extra="queue = { smtp_port = %d; };\n%s" % (PORT, DNS))
    with open(path, "w") as f:
        f.write(text.replace("{dir}", d).replace("{db}", cl.conninfo(db)))
    return path


conf = write_conf("gannet.conf", 'directory = "%s"; load = [ "suppression" ];' % moddir)
plain = write_conf("plain.conf", "")


def g(*args, stdin=None, config=None):
    env = dict(os.environ)
    env.pop("GANNET_TEST_CLOCK_OFFSET", None)
    r = gt.run_gannet(["-c", config or conf] + list(args), input=stdin, env=env)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sup(*args):
    r = g("queue", "suppress", *args)
    return r.returncode, r.stdout, r.stderr


def sql(q):
    return cl.psql(q, db)


def queue(to, subject, *more, config=None):
    args = ["queue", "add", "--from", "alice@example.com", "--to", to]
    for m in more:
        args += ["--to", m]
    body = ("From: Alice <alice@example.com>\nTo: %s\nSubject: %s\nMessage-ID: <%s@example.com>\n\n"
            "Hello.\n" % (to, subject, subject.replace(" ", "-")))
    r = g(*args, stdin=body, config=config)
    if r.returncode != 0:
        t.diag(r.stderr)
    return r.returncode


def run(config=None):
    return g("queue", "run", config=config).stdout


def retired(rcpt):
    """[(result, code, enhanced, text)] of the retired recipients to rcpt, oldest first."""
    out = sql("SELECT result || '|' || coalesce(last_code::text, '') || '|' || coalesce(last_enhanced, '') "
              "|| '|' || coalesce(last_text, '') FROM gn_queue_retired WHERE rcpt = '%s' ORDER BY id" % rcpt)
    return [tuple(line.split("|", 3)) for line in out.splitlines() if line]


def listed(account="alice"):
    return sup("list", account)[1]


def t_re(got, pattern, name):
    r = t.ok(got is not None and re.search(pattern, got) is not None, name)
    if not r:
        t.diag("%r does not match %r" % (got, pattern))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("queue", "retired", "keep", "alice", "1d")]
t.ok(all(g(*a).returncode == 0 for a in setup), "migrate (with the module's table), accounts alice and bob")

# ---- the CLI ----
rc, out, err = sup("add", "alice", "John.Doe+news@OK.example", "asked to stop")
t.is_((rc, out, err), (0, "", ""), "add alice John.Doe+news@OK.example")
rc, out, err = sup("list", "alice")
t.is_(rc, 0, "list alice")
t_re(out, r'^alice johndoe@ok\.example original=John\.Doe\+news@ok\.example manual=yes '
     r'created=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ reason="asked to stop"\n$',
     "one entry: base address johndoe@ok.example, the original, manual, created, the reason")
for a in ("johndoe@ok.example", "JOHN.DOE@ok.example", "j.o.h.n.d.o.e-list@ok.example", "johndoe+x-y@ok.example"):
    rc, out, err = sup("lookup", "alice", a)
    t.ok(rc == 0 and out.startswith("alice johndoe@ok.example "), "lookup %s: found by its base address" % a)
rc, out, err = sup("lookup", "alice", "john@ok.example")
t.is_((rc, out), (0, "not suppressed: john@ok.example\n"), "lookup john@ok.example: not suppressed")
rc, out, err = sup("lookup", "alice", "johndoe@other.example")
t.is_((rc, out), (0, "not suppressed: johndoe@other.example\n"), "another domain: not suppressed")
rc, out, err = sup("lookup", "bob", "johndoe@ok.example")
t.is_((rc, out), (0, "not suppressed: johndoe@ok.example\n"), "bob's list is his own: not suppressed")
rc, out, err = sup("add", "alice", "johndoe-2@ok.example")
t.is_(rc, 1, "adding the same base address again: exit 1")
t_re(err, r"already on the suppression list of account alice: johndoe@ok\.example", "saying so")
rc, out, err = sup("add", "nobody", "x@ok.example")
t.is_(rc, 1, "an unknown account: exit 1")
t_re(err, r"unknown account: nobody", "saying so")
rc, out, err = sup("add", "alice", "not an address")
t.is_(rc, 1, "an invalid address: exit 1")
t_re(err, r'invalid address "not an address"', "saying so")
rc, out, err = sup("add", "alice", "x@ok.example", "line\nbreak")
t.is_(rc, 1, "a reason with a control character: exit 1")
t_re(err, r"control character", "saying so")
rc, out, err = sup("add", "alice", "x@ok.example", "r" * 1001)
t.is_(rc, 1, "a reason of 1001 bytes: exit 1")
t_re(err, r"reason too long", "saying so")
t.is_(sup("add", "alice")[0], 2, "add without an address: bad usage (exit 2)")
t.is_(sup("rm", "alice", "a@ok.example", "b")[0], 2, "rm with three arguments: bad usage")
t.is_(sup("add", "bob", "Someone@Ok.Example")[0], 0, "bob: add Someone@Ok.Example (no reason)")
rc, out, err = sup("list")
t.is_(rc, 0, "list without an account")
t.is_([line.split()[:2] for line in out.splitlines()],
      [["alice", "johndoe@ok.example"], ["bob", "someone@ok.example"]], "lists every account's entries")
t_re(out, r'bob someone@ok\.example original=Someone@ok\.example manual=yes .* reason=""\n',
     "bob's without a reason")
t.is_(sup("list", "nobody")[:2], (1, ""), "list of an unknown account: exit 1")
rc, out, err = sup("rm", "alice", "John.Doe@ok.example")
t.is_((rc, out, err), (0, "", ""), "rm alice John.Doe@ok.example: by its base address")
t.is_(listed("alice"), "", "alice's list is empty")
rc, out, err = sup("rm", "alice", "johndoe@ok.example")
t.is_(rc, 1, "rm again: exit 1")
t_re(err, r"not on the suppression list of account alice: johndoe@ok\.example", "saying so")

# ---- the queue: a suppressed recipient fails for good before the transport ----
t.is_(sup("add", "alice", "sup@ok.example", "test")[0], 0, "alice: add sup@ok.example")
t.is_(queue("sup+tag@ok.example", "to-sup", "fine@ok.example"), 0,
      "queued to sup+tag@ok.example and fine@ok.example")
t.is_(run(), "1 delivery attempted\n", "queue run: one delivery")
ms = sunk("fine@ok.example")
t.is_([m["rcpts"] for m in ms], [["fine@ok.example"]], "the sink got it for fine@ok.example only")
t.is_(sunk("sup+tag@ok.example"), [], "never for the suppressed recipient")
t.is_(retired("sup+tag@ok.example"),
      [("failed", "550", "5.7.1",
        "not delivering to recipient address sup+tag@ok.example: address is on suppression list")],
      "retired as failed: 550 5.7.1, the reason")
t.is_(retired("fine@ok.example")[0][:2], ("delivered", "250"), "fine@ok.example delivered")
hexed = sql("SELECT encode(m.prefix || (SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) "
            "FROM gn_blob_chunks c WHERE c.blob_id = m.blob_id), 'hex') FROM gn_messages m "
            "JOIN gn_accounts a ON a.id = m.account_id WHERE a.name = 'alice' "
            "AND m.subject = 'mail delivery failed'")
t.is_(len(hexed.splitlines()), 1, "one failure DSN in alice's account")
dsn = email.message_from_bytes(bytes.fromhex(hexed.splitlines()[0] if hexed else ""),
                               policy=email.policy.compat32)
parts = dsn.get_payload() if dsn.is_multipart() else []
t.is_(dsn.get_content_type(), "multipart/report", "a multipart/report")
status = parts[1].as_string() if len(parts) > 1 else ""
t_re(status, r"Final-Recipient: rfc822; sup\+tag@ok\.example", "for sup+tag@ok.example")
t_re(status, r"Action: failed\s+Status: 5\.7\.1", "Action failed, Status 5.7.1")
t.ok("Diagnostic-Code" not in status, "no Diagnostic-Code: no server answered")
text = parts[0].get_payload() if parts else ""
t_re(text, r"address is on suppression list", "the text says why")
t.is_(sql("SELECT count(*) FROM gn_suppressions"), "2", "a suppressed attempt adds nothing")
log = g("queue", "retired", "list").stdout
t_re(log, r"sup\+tag@ok\.example", "`gannet queue retired list` shows it")

# ---- automatic additions ----
sink_script({"gone@ok.example": "550 5.1.1 no such user", "blocked@ok.example": "554 5.7.1 listed",
             "three@ok.example": "554 5.0.0 refused", "again@ok.example": "554 5.0.0 refused",
             "busy@ok.example": "451 4.2.0 busy", "odd@ok.example": "552 5.2.2 full"})
for rcpt in ("gone", "blocked", "busy", "odd"):
    queue(rcpt + "@ok.example", "auto-" + rcpt)
t.is_(run(), "4 deliveries attempted\n", "queue run: gone (550 5.1.1), blocked (554 5.7.1), busy (451), "
      "odd (552 5.2.2)")
rc, out, err = sup("lookup", "alice", "gone@ok.example")
t_re(out, r'^alice gone@ok\.example original=gone@ok\.example manual=no .* reason="delivery failure from '
     r'queue with smtp code 550, enhanced code \\?"1\.1\\?""', "550: added at once, mox's reason")
rc, out, err = sup("lookup", "alice", "blocked@ok.example")
t_re(out, r'manual=no .* reason="delivery failure from queue with smtp code 554, enhanced code \\?"7\.1',
     "554 5.7.1: added at once")
t.is_(sup("lookup", "alice", "busy@ok.example")[1], "not suppressed: busy@ok.example\n",
      "451: retried, not added")
t.is_(sup("lookup", "alice", "odd@ok.example")[1], "not suppressed: odd@ok.example\n",
      "552 5.2.2 (not an immediate code), the first failure: not added")

for n in (1, 2):
    queue("three@ok.example", "three-%d" % n)
    run()
    t.is_(sup("lookup", "alice", "three@ok.example")[1], "not suppressed: three@ok.example\n",
          "554 5.0.0, failure %d: not added" % n)
queue("three@ok.example", "three-3")
run()
t.is_(len(retired("three@ok.example")), 3, "three messages to three@ok.example failed")
t_re(sup("lookup", "alice", "three@ok.example")[1],
     r'manual=no .* reason="delivery failure from queue and three consecutive failures"',
     "the third consecutive failure adds it")

queue("again@ok.example", "again-1")
run()
queue("again@ok.example", "again-2")
run()
sink_script({})
queue("again@ok.example", "again-3")
run()
sink_script({"again@ok.example": "554 5.0.0 refused"})
queue("again@ok.example", "again-4")
run()
t.is_([r[0] for r in retired("again@ok.example")], ["failed", "failed", "delivered", "failed"],
      "again@ok.example: failed, failed, delivered, failed")
t.is_(sup("lookup", "alice", "again@ok.example")[1], "not suppressed: again@ok.example\n",
      "not consecutive: not added")

# The base address found: gone's tagged and dotted forms are suppressed now.
before = len(sunk("g.one+x@ok.example"))
queue("g.one+x@ok.example", "to-gone-tagged")
t.is_(run(), "1 delivery attempted\n", "a message to g.one+x@ok.example")
t.is_(retired("g.one+x@ok.example")[0][:3], ("failed", "550", "5.7.1"), "suppressed: failed for good, 550 5.7.1")
t.is_(len(sunk("g.one+x@ok.example")), before, "never sent")

# ---- a lookup that fails: the attempt fails temporarily (fail closed) ----
sql("ALTER TABLE gn_suppressions RENAME TO gn_suppressions_away")
queue("lookupfail@ok.example", "lookup-fails")
t.is_(run(), "1 delivery attempted\n", "a message while the list cannot be read")
t_re(sql("SELECT state || ' ' || attempts || ' ' || last_code || ' ' || last_enhanced || ' ' || last_text "
         "FROM gn_queue_recipients WHERE rcpt = 'lookupfail@ok.example'"),
     r"^queued 1 0 4\.3\.0 suppression list lookup failed: ", "queued for a retry: 4.3.0, the reason")
t.is_(sunk("lookupfail@ok.example"), [], "not delivered unchecked")
sql("ALTER TABLE gn_suppressions_away RENAME TO gn_suppressions")

# ---- unloaded ----
r = g("queue", "suppress", "list", config=plain)
t.ok(r.returncode != 0, "without the module: `gannet queue suppress list` is no command (exit %d)" % r.returncode)
sink_script({"nolist@ok.example": "550 5.1.1 no such user"})
count = sql("SELECT count(*) FROM gn_suppressions")
queue("sup@ok.example", "unloaded", "nolist@ok.example", config=plain)
t.is_(run(config=plain), "1 delivery attempted\n", "queue run without the module")
t.is_(len(sunk("sup@ok.example")), 1, "the listed sup@ok.example is delivered to")
t.is_(retired("sup@ok.example")[-1][:2], ("delivered", "250"), "retired as delivered")
t.is_(retired("nolist@ok.example")[-1][:2], ("failed", "550"), "nolist@ok.example: 550, failed")
t.is_(sql("SELECT count(*) FROM gn_suppressions"), count, "and nothing was added")

sink.terminate()
sink.wait()
t.done()
