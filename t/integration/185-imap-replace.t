#!/usr/bin/env python3
"""
t/integration/185-imap-replace.t: REPLACE and UID REPLACE (RFC 8508) with
Python's imaplib against a running `gannet serve` (the quota module's
issue 11 asks OVERQUOTA of REPLACE; 267-quota-imap.t checks that):

- REPLACE advertised; REPLACE n into the selected mailbox: an untagged
  OK [APPENDUID], EXPUNGE n, EXISTS, then the tagged OK; the new message
  has the flags given and the old one is gone;
- UID REPLACE into another mailbox: APPENDUID of that mailbox, EXPUNGE of
  the old one here;
- refusals leave the old message: a UID that does not exist (NO
  [NONEXISTENT]), a sequence number past the end (BAD), a destination
  that does not exist (NO [TRYCREATE]), two messages (BAD), no message
  (BAD), EXAMINE (NO [READ-ONLY]); and the session goes on after each.
"""
import imaplib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)
t.ok(srv.setup(3), "an account with three messages in its Inbox")
srv.start()

m = srv.session()
t.ok("REPLACE" in m.capabilities, "REPLACE is advertised")
m.select("INBOX")


def raw(payload):
    """A whole command under a new tag: (type, tagged text, untagged)."""
    tag = m._new_tag()
    m.untagged_responses.clear()
    m.send(tag + b" " + payload + b"\r\n")
    try:
        typ, data = m._get_tagged_response(tag)
    except imaplib.IMAP4.error as e:
        return ("BAD", str(e), {})
    return typ, data[-1].decode() if data and data[-1] else "", dict(m.untagged_responses)


def uids(box="INBOX"):
    m.select(box)
    typ, data = m.fetch("1:*", "(UID FLAGS)")
    return [x.decode() for x in data if x is not None] if typ == "OK" and data != [None] else []


msg = b"From: a@example.org\r\nSubject: replacement\r\n\r\nnew text\r\n"
uidv = srv.sql("SELECT uidvalidity FROM gn_mailboxes WHERE name = 'Inbox'")
typ, text, u = raw(b"REPLACE 2 INBOX (\\Seen) {%d+}\r\n%s" % (len(msg), msg))
t.is_((typ, text), ("OK", "REPLACE completed"), "REPLACE 2 INBOX: OK")
t.is_(u.get("OK"), [("[APPENDUID %s 4] Replacement Message ready" % uidv).encode()],
      "an untagged OK [APPENDUID uidvalidity 4]")
t.is_((u.get("EXPUNGE"), u.get("EXISTS")), ([b"2"], [b"3"]), "EXPUNGE 2 and EXISTS 3")
t.is_(uids(), ["1 (UID 1 FLAGS ())", "2 (UID 3 FLAGS ())", "3 (UID 4 FLAGS (\\Seen))"],
      "the old message is gone, the new one has \\Seen")
typ, data = m.fetch("3", "(BODY.PEEK[])")
t.is_(data[0][1], msg, "the new message's bytes")

typ, text, u = raw(b"UID REPLACE 3 Archive {%d+}\r\n%s" % (len(msg), msg))
auidv = srv.sql("SELECT uidvalidity FROM gn_mailboxes WHERE name = 'Archive'")
t.is_((typ, u.get("OK"), u.get("EXPUNGE")),
      ("OK", [("[APPENDUID %s 1] Replacement Message ready" % auidv).encode()], [b"2"]),
      "UID REPLACE 3 Archive: APPENDUID of Archive, EXPUNGE 2 here")
t.is_(uids("Archive"), ["1 (UID 1 FLAGS ())"], "Archive has the new message")
before = uids()
t.is_(before, ["1 (UID 1 FLAGS ())", "2 (UID 4 FLAGS (\\Seen))"], "INBOX keeps the rest")

for payload, want, name in (
        (b"UID REPLACE 99 INBOX {%d+}\r\n%s" % (len(msg), msg), ("NO", "[NONEXISTENT]"), "a UID that does not exist"),
        (b"REPLACE 9 INBOX {%d+}\r\n%s" % (len(msg), msg), ("BAD", ""), "a sequence number past the end"),
        (b"REPLACE 1 Nope {%d+}\r\n%s" % (len(msg), msg), ("NO", "[TRYCREATE]"), "a destination that does not exist"),
        (b"REPLACE 1 INBOX {%d+}\r\n%s {%d+}\r\n%s" % (len(msg), msg, len(msg), msg), ("BAD", ""), "two messages"),
        (b"REPLACE 1 INBOX", ("BAD", ""), "no message"),
        (b"REPLACE x INBOX {%d+}\r\n%s" % (len(msg), msg), ("BAD", ""), "not a number")):
    typ, text, u = raw(payload)
    t.ok(typ == want[0] and want[1] in text, "%s: %s %s (%s)" % (name, want[0], want[1], text))
    t.is_(uids(), before, "%s: nothing changed" % name)
m.select("INBOX", readonly=True)
typ, text, u = raw(b"REPLACE 1 INBOX {%d+}\r\n%s" % (len(msg), msg))
t.ok(typ == "NO" and "[READ-ONLY]" in text, "EXAMINE: NO [READ-ONLY]")
t.is_(m.noop()[0], "OK", "the session goes on")
m.logout()
srv.g.stop()
t.done()
