#!/usr/bin/env python3
"""
t/integration/200-queue-cli.t: `gannet queue ...` end to end against a real
PostgreSQL, and the runner of a real `gannet serve`.

A message is injected with `gannet queue add`, listed with filters,
dumped, held and released, scheduled, attempted with `gannet queue run`
(queue.transport = "none": every attempt fails temporarily, nothing is
dropped), its retries come due when the queue's clock is moved forward
(GANNET_TEST_CLOCK_OFFSET), it is failed (a DSN in the sender's Inbox,
which Python's email module reads as RFC 3464 multipart/report) and
dropped (no DSN), and its history is kept as retired.  Hold rules hold
queued and new mail; removing one releases nothing.  queue.max_attempts
makes the last attempt's failure final.  The runner of `gannet serve`
attempts queued mail by itself.
"""
import email
import email.policy
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

cl = gt.cluster()
db = cl.create_db("queuecli")
d = gt.tmpdir()
conf = os.path.join(d, "gannet.conf")
conf_text = gt.base_conf(extra="queue = { max_attempts = 4; transport = \"none\"; };").replace("{dir}", d).replace(
    "{db}", cl.conninfo(db))
with open(conf, "w") as f:
    f.write(conf_text)


def g(*args, stdin=None, offset=None):
    env = dict(os.environ)
    env.pop("GANNET_TEST_CLOCK_OFFSET", None)
    if offset is not None:
        env["GANNET_TEST_CLOCK_OFFSET"] = str(offset)
    return gt.run_gannet(["-c", conf] + list(args), input=stdin, env=env)


def sql(q):
    return cl.psql(q, db)


def rid(rcpt):
    return sql("SELECT id FROM gn_queue_recipients WHERE rcpt = '%s'" % rcpt)


MSG = ("From: Alice <alice@example.com>\n"
       "To: x@remote.example\n"
       "Subject: the plan\n"
       "Message-ID: <plan@example.com>\n"
       "\n"
       "Here it is.\n")

t.is_(g("migrate").returncode, 0, "migrate")
t.is_(g("config", "domain", "add", "example.com").returncode, 0, "domain")
t.is_(g("config", "account", "add", "alice", "alice@example.com").returncode, 0, "account alice")
t.is_(g("config", "account", "add", "bob", "bob@example.com").returncode, 0, "account bob")
r = g("queue", "retired", "keep", "alice", "1d")
t.is_(r.returncode, 0, "alice keeps retired records a day")
t.is_(r.stdout, "account alice keeps retired queue records for 86400s (its own setting)\n", "said so")

# ---- add ----
r = g("queue", "add", "--from", "alice@example.com", "--to", "x@remote.example", "--to",
      "y@remote.example", "--to", "z@other.example", stdin=MSG)
t.is_(r.returncode, 0, "queue add reads a message on stdin")
t.like(r.stdout, "for 3 recipients", "three recipients")
r = g("queue", "add", "--from", "alice@example.com", stdin=MSG)
t.is_(r.returncode, 2, "without --to: bad usage")
r = g("queue", "add", "--from", "alice@example.com", "--to", "not an address", stdin=MSG)
t.is_(r.returncode, 1, "a bad recipient fails")
t.like(r.stderr, 'invalid address "not an address"', "naming it")
r = g("queue", "add", "--from", "nobody@elsewhere.example", "--to", "x@remote.example", stdin=MSG)
t.is_(r.returncode, 1, "a sender that is no account's address fails")
t.like(r.stderr, "nobody@elsewhere.example is not an address of an account", "saying so")
r = g("queue", "add", "--from", "alice@example.com", "--to", "x@remote.example", stdin="")
t.is_(r.returncode, 1, "an empty message fails")
t.like(r.stderr, "no message on stdin", "saying so")

# ---- list, dump ----
r = g("queue", "list")
t.is_(r.returncode, 0, "queue list")
lines = r.stdout.splitlines()
t.is_(len(lines), 3, "one line a recipient")
t.like(lines[0], "account=alice from=<alice@example.com> to=<x@remote.example> state=queued attempts=0",
       "with account, sender, recipient, state, attempts")
t.is_(len(g("queue", "list", "--to", "y@remote.example").stdout.splitlines()), 1, "--to filters")
t.is_(len(g("queue", "list", "--domain", "other.example").stdout.splitlines()), 1, "--domain filters")
t.is_(g("queue", "list", "--account", "bob").stdout, "", "--account filters")
t.is_(len(g("queue", "list", "--from", "alice@example.com").stdout.splitlines()), 3, "--from filters")
r = g("queue", "list", "--frobnicate")
t.is_(r.returncode, 2, "an unknown option is bad usage")
X, Y, Z = rid("x@remote.example"), rid("y@remote.example"), rid("z@other.example")
t.is_(sql("SELECT size FROM gn_queue_messages"), str(len(MSG) + MSG.count("\n")),
      "stored with CRLF line ends")
r = g("queue", "dump", X)
t.is_(r.stdout, MSG, "dump prints the message")
r = g("queue", "dump", "99999")
t.is_(r.returncode, 1, "dump of an unknown id fails")
t.like(r.stderr, "no queued recipient with id 99999", "saying so")

# ---- hold, run, retries ----
r = g("queue", "hold", X)
t.is_((r.returncode, r.stdout), (0, "%s held\n" % X), "hold")
t.like(g("queue", "list", "--held").stdout, "to=<x@remote.example> state=queued held", "list --held shows it")
r = g("queue", "run")
t.is_(r.stdout, "2 deliveries attempted\n", "run attempts the two domains' recipients not held")
t.like(g("queue", "list", "--to", "y@remote.example").stdout,
       'attempts=1 next=', "y attempted once")
t.like(g("queue", "list", "--to", "y@remote.example").stdout,
       'last="0 4.3.0 no transport configured"', "failed temporarily: no transport configured")
t.is_(g("queue", "run").stdout, "0 deliveries attempted\n", "nothing is due again at once")
t.is_(g("queue", "run", offset=400).stdout, "0 deliveries attempted\n", "nor before 7.5 minutes")
t.is_(g("queue", "run", offset=460).stdout, "2 deliveries attempted\n", "after 7.5 minutes both are retried")
t.like(g("queue", "list", "--to", "y@remote.example").stdout, "attempts=2", "y attempted twice")
r = g("queue", "schedule", Y, "now")
t.is_(r.returncode, 0, "schedule now")
t.is_(g("queue", "run").stdout, "1 delivery attempted\n", "then it is attempted")
r = g("queue", "schedule", Y, "later")
t.is_(r.returncode, 2, "schedule needs now or +DURATION")
r = g("queue", "schedule", Y, "+2h")
t.is_(r.returncode, 0, "schedule +2h")
t.is_(sql("SELECT round(extract(epoch FROM next_attempt - now()) / 600) FROM gn_queue_recipients "
          "WHERE rcpt = 'y@remote.example'"), "12", "due in two hours")
t.is_(g("queue", "release", X).stdout, "%s released\n" % X, "release")
t.is_(g("queue", "run").stdout, "1 delivery attempted\n", "the released one is attempted")
t.is_(sql("SELECT count(*) FROM gn_queue_attempts"), "6", "every attempt is recorded")

# ---- fail: a DSN into alice's Inbox ----
r = g("queue", "fail", Z)
t.is_((r.returncode, r.stdout), (0, "%s failed\n" % Z), "fail")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "JOIN gn_mailboxes b ON b.account_id = m.account_id AND b.id = m.mailbox_id "
          "WHERE a.name = 'alice' AND b.name = 'Inbox' AND m.subject = 'mail delivery failed'"),
      "1", "a failure DSN in alice's Inbox")
hexed = sql("SELECT encode(m.prefix || (SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) "
            "FROM gn_blob_chunks c WHERE c.blob_id = m.blob_id), 'hex') FROM gn_messages m "
            "WHERE m.subject = 'mail delivery failed'")
dsn = email.message_from_bytes(bytes.fromhex(hexed), policy=email.policy.compat32)
t.is_(dsn.get_content_type(), "multipart/report", "Python's email module reads a multipart/report")
t.is_(dsn.get_param("report-type"), "delivery-status", "of report-type delivery-status")
parts = dsn.get_payload()
t.is_([p.get_content_type() for p in parts],
      ["text/plain", "message/delivery-status", "text/rfc822-headers"],
      "text, message/delivery-status, text/rfc822-headers")
blocks = parts[1].get_payload()
t.is_(blocks[0].get("Reporting-MTA"), "dns; mail.test", "per-message fields: Reporting-MTA")
t.is_((blocks[1].get("Final-Recipient"), blocks[1].get("Action"), blocks[1].get("Status")),
      ("rfc822; z@other.example", "failed", "5.0.0"), "per-recipient fields")
t.like(parts[2].get_payload(), "Message-ID: <plan@example.com>", "the original header")
t.is_(dsn["Return-Path"], "<>", "from the null path")
t.is_(dsn["References"], "<plan@example.com>", "referring to the original")

# ---- drop: no DSN ----
t.is_(g("queue", "drop", X).stdout, "%s dropped\n" % X, "drop")
t.is_(sql("SELECT count(*) FROM gn_messages WHERE subject LIKE 'mail delivery%'"), "1", "without a DSN")
t.is_(g("queue", "drop", X).returncode, 1, "a second drop fails: gone")

# ---- retired ----
r = g("queue", "retired", "list")
t.is_(r.returncode, 0, "retired list")
t.like(r.stdout, "to=<z@other.example> result=failed attempts=2", "the failed one with its attempts")
t.like(r.stdout, "to=<x@remote.example> result=dropped attempts=1", "the dropped one")
r = g("queue", "retired", "print", Z)
t.like(r.stdout, "result: failed\n", "retired print: the result")
t.like(r.stdout, "last-text: failed by the administrator\n", "why")
t.like(r.stdout, 'code=0 enhanced=4.3.0 text="no transport configured"', "and the attempts")
t.is_(g("queue", "retired", "list", "--account", "bob").stdout, "", "none for bob")

# ---- hold rules ----
r = g("queue", "holdrules", "add", "--recipient-domain", "remote.example")
t.is_(r.returncode, 0, "holdrules add")
t.like(r.stdout, "added, 1 queued recipient held", "holds the queued recipient it matches")
rule = r.stdout.split()[2]
t.like(g("queue", "list", "--held").stdout, "to=<y@remote.example>", "y is held")
t.is_(g("queue", "holdrules", "list").stdout,
      "%s account=* sender-domain=* recipient-domain=remote.example\n" % rule, "holdrules list")
r = g("queue", "add", "--from", "bob@example.com", "--to", "w@remote.example", "--to", "v@fail.example",
      stdin=MSG)
t.like(r.stdout, "for 2 recipients, 1 held", "a new message: the matching recipient is held")
r = g("config", "account", "rm", "bob")
t.is_(r.returncode, 1, "an account with queued mail is not removed")
t.like(r.stderr, "the account has queued mail (gannet queue list)", "saying why")
r = g("queue", "holdrules", "rm", rule)
t.is_(r.returncode, 0, "holdrules rm")
t.is_(len(g("queue", "list", "--held").stdout.splitlines()), 2, "removing the rule releases nothing")
t.is_(g("queue", "holdrules", "rm", rule).returncode, 1, "a removed rule is gone")
r = g("queue", "holdrules", "add", "--account", "nobody")
t.is_(r.returncode, 1, "a rule for an unknown account fails")
r = g("queue", "holdrules", "add")
t.like(r.stdout, "added, 1 queued recipient held", "a rule with no field holds the one left (v)")
t.like(g("queue", "holdrules", "list").stdout, "(everything)", "holds everything")
everything = g("queue", "holdrules", "list").stdout.split()[0]
t.is_(g("queue", "run", offset=100000).stdout, "0 deliveries attempted\n", "then nothing is attempted")
g("queue", "holdrules", "rm", everything)
for rc in ("y@remote.example", "w@remote.example"):
    g("queue", "drop", rid(rc))

# ---- max_attempts (4 in this config) ----
V = rid("v@fail.example")
g("queue", "release", V)
t.is_(g("queue", "run").stdout, "1 delivery attempted\n", "bob's message: attempt 1")
t.is_(g("queue", "run", offset=460).stdout, "1 delivery attempted\n", "attempt 2 after 7.5 minutes")
t.is_(g("queue", "run", offset=1400).stdout, "1 delivery attempted\n", "attempt 3 after 15 more")
t.is_(sql("SELECT count(*) FROM gn_queue_recipients"), "1", "still queued after 3")
t.is_(g("queue", "run", offset=3300).stdout, "1 delivery attempted\n", "attempt 4 after 30 more")
t.is_(sql("SELECT count(*) FROM gn_queue_recipients"), "0",
      "with queue.max_attempts = 4 the fourth failure is final")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "WHERE a.name = 'bob' AND m.subject = 'mail delivery failed'"), "1", "bob gets a failure DSN")
t.is_(sql("SELECT count(*) FROM gn_queue_messages"), "0", "no message is left in the queue")

# ---- future release, the null sender ----
r = g("queue", "add", "--account", "bob", "--from", "<>", "--to", "later@remote.example",
      "--hold-for", "1h", stdin=MSG)
t.is_(r.returncode, 0, "queue add --hold-for 1h from <> for bob")
t.is_(sql("SELECT sender = '' FROM gn_queue_messages"), "t", "stored with the null sender")
t.like(g("queue", "list", "--to", "later@remote.example").stdout, " release=", "list shows the release time")
t.is_(g("queue", "run").stdout, "0 deliveries attempted\n", "not attempted before its release")
t.is_(g("queue", "run", offset=3700).stdout, "1 delivery attempted\n", "attempted after it")
t.is_(g("queue", "fail", rid("later@remote.example")).returncode, 0, "failed")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "WHERE a.name = 'bob' AND m.subject = 'mail delivery failed'"), "1", "without a DSN (from <>)")
r = g("queue", "add", "--from", "<>", "--to", "x@remote.example", stdin=MSG)
t.is_(r.returncode, 1, "from <> without --account fails")

# ---- the runner of gannet serve ----
srv = gt.Gannet(conf_text.replace(cl.conninfo(db), "{db}"), db=db)
srv.start()
r = g("queue", "add", "--from", "alice@example.com", "--to", "r@runner.example", stdin=MSG)
t.is_(r.returncode, 0, "a message queued while gannet serves")
attempted = False
deadline = time.time() + 30
while time.time() < deadline and not attempted:
    attempted = sql("SELECT attempts FROM gn_queue_recipients WHERE rcpt = 'r@runner.example'") == "1"
    if not attempted:
        time.sleep(0.2)
t.ok(attempted, "the runner attempts it by itself")
t.is_(sql("SELECT last_text FROM gn_queue_recipients WHERE rcpt = 'r@runner.example'"),
      "no transport configured", "and keeps it: no transport configured")
# Its last attempt: the runner fails it for good and delivers the DSN.
sql("UPDATE gn_queue_recipients SET attempts = 3, next_attempt = now() WHERE rcpt = 'r@runner.example'")
gone = False
deadline = time.time() + 30
while time.time() < deadline and not gone:
    gone = sql("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'r@runner.example'") == "0"
    if not gone:
        time.sleep(0.2)
t.ok(gone, "the runner's 4th failed attempt is final")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "WHERE a.name = 'alice' AND m.subject = 'mail delivery failed'"), "2",
      "and the runner delivered the failure DSN to alice")
t.is_(sql("SELECT result || ' ' || attempts FROM gn_queue_retired WHERE rcpt = 'r@runner.example'"),
      "failed 4", "retired as failed after 4 attempts")
t.is_(srv.stop(), 0, "gannet stops")

# ---- queue.retired_keep: the period of accounts without their own ----
conf2 = os.path.join(d, "gannet2.conf")
with open(conf2, "w") as f:
    f.write(conf_text.replace('queue = { max_attempts = 4; transport = "none"; };',
                              'queue = { max_attempts = 1; transport = "none"; retired_keep = "2h"; };'))


def g2(*args, stdin=None):
    return gt.run_gannet(["-c", conf2] + list(args), input=stdin)


for a in ("carol", "dave"):
    t.is_(g("config", "account", "add", a, a + "@example.com").returncode, 0, "account " + a)
t.is_(sql("SELECT queue_retired_keep_s IS NULL FROM gn_accounts WHERE name = 'carol'"), "t",
      "a new account has no period of its own")
t.is_(g("queue", "retired", "keep", "carol").stdout,
      "account carol keeps retired queue records for 0s (the default, queue.retired_keep)\n",
      "without the setting: 0s, the default")
t.is_(g2("queue", "retired", "keep", "carol").stdout,
      "account carol keeps retired queue records for 7200s (the default, queue.retired_keep)\n",
      "with retired_keep = \"2h\": 7200s, the default")
t.is_(g2("queue", "retired", "keep", "dave", "0").stdout,
      "account dave keeps retired queue records for 0s (its own setting)\n",
      "dave's own 0 wins over the setting")
r = g2("queue", "retired", "keep", "carol", "+1h")
t.is_(r.returncode, 2, "keep +1h is bad usage")
t.like(r.stderr, "queue retired keep ACCOUNT [DURATION|default]", "naming the usage")
r = g2("queue", "retired", "keep", "nobody", "default")
t.is_((r.returncode, r.stderr), (1, "gannet: no such account: nobody\n"), "an unknown account fails")
r = g2("queue", "add", "--from", "carol@example.com", "--to", "c1@keep.example", "--to", "c2@keep2.example",
       stdin=MSG)
t.is_(r.returncode, 0, "carol queues to two domains")
r = g2("queue", "add", "--from", "dave@example.com", "--to", "d1@keep.example", stdin=MSG)
t.is_(r.returncode, 0, "dave queues one")
# queue run records the two attempts of carol's (one per domain) as one
# batch with dave's: the batch's retention SQL.
t.is_(g2("queue", "run").stdout, "3 deliveries attempted\n", "run: max_attempts = 1, each fails for good")
t.is_(sql("SELECT rcpt || ' ' || extract(epoch FROM keep_until - retired_at)::bigint FROM gn_queue_retired "
          "WHERE rcpt LIKE '%keep%' ORDER BY rcpt"), "c1@keep.example 7200\nc2@keep2.example 7200",
      "carol's retired recipients are kept 2h (the setting); dave's are not kept")
t.like(g2("queue", "retired", "list", "--account", "carol").stdout, "c1@keep.example", "retired list shows them")
r = g2("queue", "add", "--from", "carol@example.com", "--to", "c3@keep.example", stdin=MSG)
t.is_(g2("queue", "fail", rid("c3@keep.example")).returncode, 0, "queue fail ends carol's third")
t.is_(sql("SELECT extract(epoch FROM keep_until - retired_at)::bigint FROM gn_queue_retired "
          "WHERE rcpt = 'c3@keep.example'"), "7200", "kept 2h too (queue fail's retention SQL)")
t.is_(g2("queue", "retired", "keep", "alice", "default").stdout,
      "account alice keeps retired queue records for 7200s (the default, queue.retired_keep)\n",
      "alice's 1d returns to the default")
t.is_(sql("SELECT queue_retired_keep_s IS NULL FROM gn_accounts WHERE name = 'alice'"), "t", "stored as NULL")
t.is_(g("queue", "retired", "keep", "alice", "3d").stdout,
      "account alice keeps retired queue records for 259200s (its own setting)\n", "and set again")

# Migration 018: the 0s of before (the old column default) become NULL,
# the periods set on purpose stay.  Applied again to rows as 017 left them
# (the later migrations' records go too: migrate applies what comes after
# the highest recorded version; 019 builds two indexes again).
sql("DELETE FROM gn_schema_migrations WHERE module = 'core' AND version >= 18; "
    "UPDATE gn_accounts SET queue_retired_keep_s = 0 WHERE queue_retired_keep_s IS NULL; "
    "ALTER TABLE gn_accounts ALTER COLUMN queue_retired_keep_s SET DEFAULT 0, "
    "ALTER COLUMN queue_retired_keep_s SET NOT NULL")
r = g("migrate")
t.like(r.stdout, "applied core 18 018_retired_keep_default", "018 applies again")
t.like(r.stdout, "applied core 19 019_messages_settled_indexes", "and 019")
t.is_(sql("SELECT name || ' ' || coalesce(queue_retired_keep_s::text, 'default') FROM gn_accounts "
          "WHERE name IN ('alice', 'carol', 'dave') ORDER BY name"),
      "alice 259200\ncarol default\ndave default", "0 became NULL, 3d stayed")

# A bad period in the config is an error with file and line.
bad = os.path.join(d, "bad.conf")
for value, why in (('"3 days"', "must be a duration"), ('"1500ms"', "must be whole seconds, at most 100 years")):
    text = conf_text.replace('queue = { max_attempts = 4; transport = "none"; };',
                             'queue = {\n\tretired_keep = %s;\n};' % value)
    with open(bad, "w") as f:
        f.write(text)
    line = text.splitlines().index("\tretired_keep = %s;" % value) + 1
    r = gt.run_gannet(["config", "check", bad])
    t.is_(r.returncode, 1, "config check refuses retired_keep = %s" % value)
    t.like(r.stderr, "queue.retired_keep: %s" % why, "saying why")
    t.like(r.stderr, " at bad.conf:%d" % line, "with file and line")

t.done()
