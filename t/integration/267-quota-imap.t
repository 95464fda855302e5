#!/usr/bin/env python3
"""
t/integration/267-quota-imap.t: the quota module in IMAP (RFC 9208), with
Python's imaplib against a running `gannet serve` (issue 11, items 2 and
3; mox.md 7):

- CAPABILITY after login lists QUOTA, QUOTA=RES-STORAGE and
  QUOTA=RES-MESSAGE (not before login);
- GETQUOTAROOT m: QUOTAROOT m "" for any mailbox (existing or not), and
  QUOTA "" (STORAGE used limit) in KiB rounded up once a limit applies,
  none while unlimited; GETQUOTA "" the same; another root: NO
  [NONEXISTENT]; SETQUOTA: NO [NOPERM] (BAD when malformed);
- STATUS (DELETED-STORAGE) is the exact size of the mailbox's \\Deleted
  messages (KiB, rounded up), 0 without any, per mailbox;
- APPEND over the limit: NO [OVERQUOTA] and nothing stored; MULTIAPPEND of
  two messages that each fit but not together: NO [OVERQUOTA], neither
  stored; COPY and UID COPY over the limit: NO [OVERQUOTA], nothing
  copied; MOVE of the same messages with the account full: OK;
- REPLACE (RFC 8508) counts what it adds beyond the message it replaces:
  one byte larger with the account full is NO [OVERQUOTA] and keeps the
  old message, the same size is OK.
"""
import imaplib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import quotatest  # noqa: E402
from quotatest import message  # noqa: E402

t = gt.Tap()
srv = quotatest.Server(t, quota="warn_percent = 0;")
t.ok(srv.setup(), "migrate, domain, accounts alice and bob")
srv.start()

imaplib.Commands.setdefault("GETQUOTA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("GETQUOTAROOT", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETQUOTA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("MOVE", ("SELECTED",))


def quota(who, size):
    return srv.gannet("config", "account", "quota", who, size)[0] == 0


def kib(n):
    return (n + 1023) // 1024


def run(m, name, *args):
    """(type, tagged text, untagged responses by kind) of a command."""
    m.untagged_responses.clear()
    try:
        typ, data = m._simple_command(name, *args)
    except imaplib.IMAP4.error as e:
        return ("BAD", str(e), {})
    return typ, data[-1].decode() if data and data[-1] else "", dict(m.untagged_responses)


def raw(m, payload):
    """Sends a whole command (with LITERAL+ literals) under a new tag:
    (type, tagged text)."""
    tag = m._new_tag()
    m.send(tag + b" " + payload + b"\r\n")
    try:
        typ, data = m._get_tagged_response(tag)
    except imaplib.IMAP4.error as e:
        return ("BAD", str(e))
    return typ, data[-1].decode() if data and data[-1] else ""


# ---- capabilities ----
pre = imaplib.IMAP4_SSL("127.0.0.1", srv.imap_port, ssl_context=srv.ctx)
t.ok("QUOTA" not in pre.capabilities, "before login: no QUOTA")
pre.logout()
m = srv.session("alice")
typ, data = m.capability()
caps = data[0].decode().split()
t.ok(all(c in caps for c in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE")),
     "after login: QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE")

# ---- unlimited ----
typ, text, u = run(m, "GETQUOTAROOT", "INBOX")
t.is_((typ, u.get("QUOTAROOT"), u.get("QUOTA")), ("OK", [b'"INBOX" ""'], None),
      "unlimited: GETQUOTAROOT INBOX names the root \"\", no QUOTA line")
typ, text, u = run(m, "GETQUOTA", '""')
t.is_((typ, u.get("QUOTA")), ("OK", None), "unlimited: GETQUOTA \"\" OK without a QUOTA line")

# ---- limited ----
t.ok(quota("alice", "64K"), "alice: 64K")
for i in range(3):
    srv.send(["alice@example.com"], size=5000 + i)
used = srv.used("alice")
typ, text, u = run(m, "GETQUOTAROOT", "INBOX")
t.is_((typ, u.get("QUOTAROOT"), u.get("QUOTA")),
      ("OK", [b'"INBOX" ""'], [('"" (STORAGE %d 64)' % kib(used)).encode()]),
      "GETQUOTAROOT INBOX: QUOTA \"\" (STORAGE %d 64), the exact usage in KiB rounded up" % kib(used))
typ, text, u = run(m, "GETQUOTA", '""')
t.is_((typ, u.get("QUOTA")), ("OK", [('"" (STORAGE %d 64)' % kib(used)).encode()]), "GETQUOTA \"\": the same")
typ, text, u = run(m, "GETQUOTAROOT", '"No/Such box"')
t.is_((typ, u.get("QUOTAROOT")), ("OK", [b'"No/Such box" ""']), "GETQUOTAROOT of a mailbox that does not exist")
typ, text, u = run(m, "GETQUOTA", '"User quota"')
t.ok(typ == "NO" and "[NONEXISTENT]" in text, "GETQUOTA of another root: NO [NONEXISTENT] (%s)" % text)
typ, text, u = run(m, "SETQUOTA", '""', "(STORAGE 1000000)")
t.ok(typ == "NO" and "[NOPERM]" in text, "SETQUOTA: NO [NOPERM] (%s)" % text)
t.is_(srv.gannet("config", "account", "quota", "alice")[1].splitlines()[0], "limit 65536 (64K, account)",
      "and the limit is unchanged")
typ, text, u = run(m, "SETQUOTA", '""')
t.is_(typ, "BAD", "SETQUOTA without a list: BAD")
typ, text, u = run(m, "GETQUOTA")
t.is_(typ, "BAD", "GETQUOTA without a root: BAD")

# ---- STATUS (DELETED-STORAGE) ----


def deleted_bytes(mailbox):
    return int(srv.sql("SELECT coalesce(sum(m.size), 0) FROM gn_messages m JOIN gn_mailboxes b ON "
                       "b.id = m.mailbox_id JOIN gn_accounts a ON a.id = m.account_id WHERE "
                       "a.name = 'alice' AND b.name = '%s' AND m.flags & 8 <> 0 AND m.uid IS NOT NULL"
                       % mailbox))


def status_ds(mailbox):
    typ, data = m.status(mailbox, "(DELETED-STORAGE DELETED)")
    got = re.search(rb"DELETED-STORAGE (\d+)", data[0] or b"")
    return typ, int(got.group(1)) if got else None


t.is_(status_ds("INBOX"), ("OK", 0), "STATUS (DELETED-STORAGE) without \\Deleted messages: 0")
m.select("INBOX")
m.store("1,3", "+FLAGS", "(\\Deleted)")
m.unselect() if hasattr(m, "unselect") else m.close()
db = deleted_bytes("Inbox")
t.ok(db > 10000, "two messages flagged \\Deleted (%d bytes)" % db)
t.is_(status_ds("INBOX"), ("OK", kib(db)), "STATUS (DELETED-STORAGE): their exact size, %d KiB" % kib(db))
t.is_(status_ds("Archive"), ("OK", 0), "another mailbox: 0")

# ---- APPEND, MULTIAPPEND ----
used = srv.used("alice")
free = 65536 - used
count = srv.count("alice")
typ, data = m.append("INBOX", None, None, message(free + 1))
t.ok(typ == "NO" and b"[OVERQUOTA]" in data[0], "APPEND of one byte too many: NO [OVERQUOTA] (%s)" % data)
t.is_(srv.count("alice"), count, "nothing stored")
half = message(free // 2 + 100, tag="a")
other = message(free // 2 + 100, tag="b")
typ, text = raw(m, b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s" % (len(half), half, len(other), other))
t.ok(typ == "NO" and "[OVERQUOTA]" in text,
     "MULTIAPPEND of two messages that each fit, not together: NO [OVERQUOTA] (%s)" % text)
t.is_(srv.count("alice"), count, "neither stored")
typ, text = raw(m, b"APPEND INBOX {%d+}\r\n%s" % (len(half), half))
t.ok(typ == "OK" and "APPENDUID" in text, "one of them alone: OK (%s)" % text)
t.is_(srv.count("alice"), count + 1, "stored")

# ---- COPY, UID COPY, MOVE ----
free = 65536 - srv.used("alice")
typ, data = m.append("INBOX", None, None, message(free, tag="last"))
t.is_(typ, "OK", "APPEND of exactly the free bytes: OK")
t.is_(srv.used("alice"), 65536, "usage is the limit")
count = srv.count("alice")
m.select("INBOX")
typ, data = m.copy("1", "Archive")
t.ok(typ == "NO" and b"[OVERQUOTA]" in data[0], "COPY with the account full: NO [OVERQUOTA] (%s)" % data)
typ, data = m.uid("COPY", "1:*", "Archive")
t.ok(typ == "NO" and b"[OVERQUOTA]" in data[0], "UID COPY: NO [OVERQUOTA]")
t.is_(srv.count("alice"), count, "nothing copied")
typ, data = m._simple_command("MOVE", "1:2", "Archive")
t.is_(typ, "OK", "MOVE of the same messages: OK (MOVE is not checked)")
t.is_(srv.count("alice"), count, "MOVE adds nothing")

# ---- REPLACE (RFC 8508): what it adds beyond the message it replaces ----
m.select("INBOX")
typ, data = m.fetch("1", "(UID RFC822.SIZE)")
old_uid, old_size = (int(x) for x in re.search(rb"UID (\d+) RFC822.SIZE (\d+)", data[0]).groups())
used = srv.used("alice")
t.is_(used, 65536, "the account is full")
bigger = message(old_size + 1, tag="bigger")
typ, text = raw(m, b"REPLACE 1 INBOX {%d+}\r\n%s" % (len(bigger), bigger))
t.ok(typ == "NO" and "[OVERQUOTA]" in text, "REPLACE by a message one byte larger: NO [OVERQUOTA] (%s)" % text)
t.is_(srv.used("alice"), used, "nothing changed")
typ, data = m.uid("FETCH", str(old_uid), "(UID)")
t.ok(typ == "OK" and data[0] is not None, "the old message is still there")
same = message(old_size, tag="same")
typ, text = raw(m, b"UID REPLACE %d INBOX {%d+}\r\n%s" % (old_uid, len(same), same))
t.ok(typ == "OK", "UID REPLACE by a message of the same size: OK with the account full (%s)" % text)
t.is_(srv.used("alice"), used, "usage unchanged")

t.ok(quota("alice", "unlimited"), "alice: unlimited")
typ, data = m.copy("1", "Archive")
t.is_(typ, "OK", "then COPY: OK")
t.is_(srv.count("alice"), count + 1, "copied")
m.logout()
srv.g.stop()
t.done()
