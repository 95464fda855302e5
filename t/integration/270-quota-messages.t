#!/usr/bin/env python3
"""
t/integration/270-quota-messages.t: the quota module's limit on the number
of an account's messages (RFC 9208 MESSAGE, QUOTA=RES-MESSAGE), with the
gannet CLI, smtplib and imaplib against a running `gannet serve` (issue
11; mox has no message limit at all):

- `gannet config account quota ACCOUNT messages [COUNT|default|unlimited]`
  shows and sets the account's own message limit beside the size form,
  which is unchanged and independent; default_message_limit applies
  without one; a bad count is bad usage (exit 2) and changes nothing; a bad
  default_message_limit is a config error naming the setting;
- SMTP: at the limit, 452 4.2.2 at RCPT per recipient (the other
  recipient of the same message gets it); a message flagged \\Deleted
  still counts, once expunged (its UID kept for QRESYNC) it does not;
- IMAP: GETQUOTAROOT / GETQUOTA list MESSAGE used limit (alone, or after
  STORAGE when both apply); APPEND at the limit, and a MULTIAPPEND of two
  with room for one, NO [OVERQUOTA] storing nothing; COPY of two with room
  for one NO [OVERQUOTA], of one OK; REPLACE with the account at its limit
  OK (it adds no message); MOVE not checked;
- the warning: at warn_percent of the message limit (no size limit), one
  warning message that speaks of messages.
"""
import imaplib
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import quotatest  # noqa: E402
from quotatest import message  # noqa: E402

t = gt.Tap()
srv = quotatest.Server(t, quota="warn_percent = 0; default_message_limit = 50;")
t.ok(srv.setup(), "migrate, domain, accounts alice and bob")

imaplib.Commands.setdefault("GETQUOTA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("GETQUOTAROOT", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("MOVE", ("SELECTED",))


def quota(*args):
    return srv.gannet("config", "account", "quota", *args)


# ---- the CLI ----
t.is_(quota("alice", "messages"), (0, "limit 50 (default)\nused 0\n", ""),
      "messages: default_message_limit applies, nothing stored")
t.is_(quota("alice"), (0, "limit unlimited (default)\nused 0\n", ""), "the size form is unchanged")
t.is_(quota("alice", "messages", "3")[:2], (0, "limit 3 (account)\nused 0\n"), "messages 3: the account's own")
t.is_(quota("alice")[1], "limit unlimited (default)\nused 0\n", "the size limit is untouched")
t.is_(quota("alice", "10K")[1], "limit 10240 (10K, account)\nused 0\n", "a size limit set beside it")
t.is_(quota("alice", "messages")[1], "limit 3 (account)\nused 0\n", "the message limit is untouched")
t.is_(quota("alice", "messages", "unlimited")[1], "limit unlimited (account)\nused 0\n", "messages unlimited")
t.is_(quota("alice", "messages", "-2")[1], "limit unlimited (account)\nused 0\n", "a negative count: unlimited")
t.is_(quota("alice", "messages", "0")[1], "limit 0 (account)\nused 0\n", "an account's 0 is a limit of 0")
t.is_(quota("alice", "messages", "default")[1], "limit 50 (default)\nused 0\n", "default: back to the setting")
t.is_(srv.sql("SELECT limit_bytes || ' ' || coalesce(limit_messages::text, 'null') FROM gn_quota_accounts a "
              "JOIN gn_accounts b ON b.id = a.account_id WHERE b.name = 'alice'"), "10240 null",
      "stored: the size limit, no message limit of its own")
rc, out, err = quota("alice", "messages", "3K")
t.ok(rc == 2 and out == "" and "message count" in err, "messages 3K: exit 2, says what a count is (%s)"
     % err.strip().splitlines()[0])
rc, out, err = quota("alice", "10K", "5")
t.is_(rc, 2, "a size and a count: bad usage")
rc, out, err = quota("alice", "messages", "99999999999999999999")
t.is_(rc, 2, "a count past 2^62: exit 2")
t.is_(quota("alice", "messages")[1], "limit 50 (default)\nused 0\n", "and nothing changed")
t.is_(quota("nobody", "messages", "5")[0], 1, "an unknown account: exit 1")
t.ok(quota("alice", "unlimited")[0] == 0, "alice: size unlimited again")

d = gt.tmpdir()
conf = os.path.join(d, "bad.conf")
with open(srv.g.conf_path) as f:
    text = f.read().replace("default_message_limit = 50", 'default_message_limit = "lots"')
with open(conf, "w") as f:
    f.write(text)
r = gt.run_gannet(["-c", conf, "config", "account", "quota", "alice"])
t.ok(r.returncode != 0 and "default_message_limit" in r.stderr,
     "default_message_limit = \"lots\": refused, naming the setting (%s)" % r.stderr.strip()[:200])

# ---- SMTP ----
srv.start()


def code(r):
    if r == {}:
        return 250
    if isinstance(r, Exception) and hasattr(r, "recipients"):
        r = r.recipients
    if isinstance(r, dict):
        return {k: (c, e.decode()) for k, (c, e) in r.items()}
    return (r.smtp_code, r.smtp_error.decode())


t.ok(quota("bob", "messages", "2")[0] == 0, "bob: 2 messages")
t.is_(code(srv.send(["bob@example.com"], size=1000)), 250, "first message: stored")
t.is_(code(srv.send(["bob@example.com"], size=1000)), 250, "second: stored")
t.is_(code(srv.send(["bob@example.com"], size=1000)),
      {"bob@example.com": (452, "4.2.2 account message limit reached")},
      "third: 452 4.2.2 at RCPT")
t.is_(srv.count("bob"), 2, "bob stores 2")
t.is_(quota("bob", "messages")[1], "limit 2 (account)\nused 2\n", "the CLI shows 2 used")
t.is_(code(srv.send(["alice@example.com", "bob@example.com"], size=1000)), {"bob@example.com": (
    452, "4.2.2 account message limit reached")}, "to alice and bob: refused for bob only")
t.is_(srv.count("alice"), 1, "alice got it")

m = srv.session("bob")
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Deleted)")
t.ok(code(srv.send(["bob@example.com"], size=1000)) != 250, "a message flagged \\Deleted still counts")
typ, _ = m.expunge()
t.is_(typ, "OK", "EXPUNGE")
t.is_(srv.sql("SELECT count(*) FROM gn_expunged e JOIN gn_accounts a ON a.id = e.account_id "
              "WHERE a.name = 'bob'"), "1", "its UID is kept (QRESYNC)")
t.is_(quota("bob", "messages")[1], "limit 2 (account)\nused 1\n", "but it no longer counts")
t.is_(code(srv.send(["bob@example.com"], size=1000)), 250, "the room it left takes a new message")
t.is_(srv.count("bob"), 2, "bob stores 2")
m.logout()

# ---- IMAP ----


def run(m, name, *args):
    m.untagged_responses.clear()
    typ, data = m._simple_command(name, *args)
    return typ, dict(m.untagged_responses)


def raw(m, payload):
    tag = m._new_tag()
    m.send(tag + b" " + payload + b"\r\n")
    try:
        typ, data = m._get_tagged_response(tag)
    except imaplib.IMAP4.error as e:
        return ("BAD", str(e))
    return typ, data[-1].decode() if data and data[-1] else ""


t.ok(quota("alice", "messages", "4")[0] == 0, "alice: 4 messages (she stores 1)")
m = srv.session("alice")
typ, u = run(m, "GETQUOTAROOT", "INBOX")
t.is_((typ, u.get("QUOTA")), ("OK", [b'"" (MESSAGE 1 4)']), "GETQUOTAROOT: QUOTA \"\" (MESSAGE 1 4)")
t.ok(quota("alice", "64K")[0] == 0, "and 64K")
kib = (srv.used("alice") + 1023) // 1024
typ, u = run(m, "GETQUOTA", '""')
t.is_((typ, u.get("QUOTA")), ("OK", [('"" (STORAGE %d 64 MESSAGE 1 4)' % kib).encode()]),
      "GETQUOTA \"\": STORAGE and MESSAGE")
t.ok(quota("alice", "unlimited")[0] == 0, "size unlimited again")

a, b = message(500, tag="a"), message(500, tag="b")
typ, text = raw(m, b"APPEND INBOX {%d+}\r\n%s" % (len(a), a))
t.ok(typ == "OK", "APPEND: OK, 2 of 4 (%s)" % text)
typ, text = raw(m, b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s" % (len(a), a, len(b), b, len(a), a))
t.ok(typ == "NO" and "[OVERQUOTA]" in text and "messages" in text,
     "MULTIAPPEND of 3 with room for 2: NO [OVERQUOTA] (%s)" % text)
t.is_(srv.count("alice"), 2, "none stored")
typ, text = raw(m, b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s" % (len(a), a, len(b), b))
t.ok(typ == "OK", "MULTIAPPEND of 2: OK (%s)" % text)
t.is_(srv.count("alice"), 4, "alice at her limit")
typ, data = m.append("INBOX", None, None, message(300))
t.ok(typ == "NO" and b"[OVERQUOTA]" in data[0], "APPEND at the limit: NO [OVERQUOTA] (%s)" % data)
t.is_(srv.count("alice"), 4, "nothing stored")

m.select("INBOX")
typ, data = m.fetch("1", "(UID RFC822.SIZE)")
old_uid, old_size = (int(x) for x in re.search(rb"UID (\d+) RFC822.SIZE (\d+)", data[0]).groups())
big = message(old_size + 2000, tag="replaced")
typ, text = raw(m, b"UID REPLACE %d INBOX {%d+}\r\n%s" % (old_uid, len(big), big))
t.ok(typ == "OK", "REPLACE at the message limit: OK, it adds no message (%s)" % text)
t.is_(srv.count("alice"), 4, "still 4")
typ, data = m.copy("1", "Archive")
t.ok(typ == "NO" and b"[OVERQUOTA]" in data[0], "COPY at the limit: NO [OVERQUOTA] (%s)" % data)
typ, data = m._simple_command("MOVE", "1", "Archive")
t.is_(typ, "OK", "MOVE: OK (not checked)")
t.is_(srv.count("alice"), 4, "MOVE adds nothing")
t.ok(quota("alice", "messages", "5")[0] == 0, "alice: 5")
m.select("INBOX")
typ, data = m.copy("1:2", "Archive")
t.ok(typ == "NO" and b"[OVERQUOTA]" in data[0], "COPY of 2 with room for 1: NO [OVERQUOTA] (%s)" % data)
t.is_(srv.count("alice"), 4, "nothing copied")
typ, data = m.copy("1", "Archive")
t.is_(typ, "OK", "COPY of 1: OK")
t.is_(srv.count("alice"), 5, "copied")
typ, u = run(m, "GETQUOTAROOT", "INBOX")
t.is_(u.get("QUOTA"), [b'"" (MESSAGE 5 5)'], "QUOTA \"\" (MESSAGE 5 5)")
m.logout()
srv.g.stop()

# ---- the warning covers the message limit ----
w = quotatest.Server(t, quota="warn_percent = 50;")
t.ok(w.setup(), "a second server, warn_percent = 50")
w.start()
t.ok(w.gannet("config", "account", "quota", "bob", "messages", "4")[0] == 0, "bob: 4 messages, no size limit")


def warnings(want):
    """The warnings in bob's account, once there are want of them (the
    warning follows the reply to the delivery that crossed), or after
    10 s; want 0: any that comes within 2 s."""
    deadline = time.time() + (10 if want > 0 else 2)
    while True:
        n = int(w.sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
                      "WHERE a.name = 'bob' AND m.subject LIKE 'Your mailbox is %%%% full'"))
        if (want > 0 and n >= want) or (want == 0 and n > 0) or time.time() > deadline:
            return n
        time.sleep(0.1)


t.is_(w.send(["bob@example.com"], size=800), {}, "one message (25 %)")
t.is_(warnings(0), 0, "no warning (none within 2 s)")
t.is_(w.send(["bob@example.com"], size=800), {}, "a second (50 %)")
t.is_(warnings(1), 1, "one warning")
m = w.session("bob")
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", '"Your mailbox is"')
typ, data = m.fetch(data[0].split()[0], "(BODY.PEEK[])")
body = data[0][1].decode()
t.ok("Subject: Your mailbox is 50% full" in body and "2 messages of its limit of 4 messages" in body
     and "bytes" not in body, "it speaks of messages, not bytes")
m.logout()
w.g.stop()
t.done()
