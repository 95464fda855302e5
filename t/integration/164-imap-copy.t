#!/usr/bin/env python3
"""
t/integration/164-imap-copy.t: COPY, MOVE, their UID forms and UID
EXPUNGE with Python's imaplib against a running `gannet serve` (issue 8,
item 1, part):

- COPY keeps flags, answers [COPYUID uidvalidity src dst] with the
  destination's UIDVALIDITY, and the copy shares the body (no new blob);
- MOVE says COPYUID in an untagged OK, then EXPUNGE for the moved messages,
  and the source has them no more; UID MOVE the same by UID;
- a destination that does not exist: NO [TRYCREATE]; MOVE in EXAMINE:
  NO [READ-ONLY]; an empty UID set: OK, nothing to do;
- UID EXPUNGE removes only the given UIDs that have \\Deleted.
"""
import imaplib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD, cmd, untagged  # noqa: E402,F401

t = gt.Tap()
srv = imaptest.Server(t)
g, tport, ctx, gannet, mbox_of, sql, session = (srv.g, srv.port, srv.ctx, srv.gannet, srv.mbox_of,
                                                 srv.sql, srv.session)
t.ok(srv.setup(3), "an account with three messages in its Inbox")
srv.start()


imaplib.Commands.setdefault("MOVE", ("SELECTED",))
m = session()
m.select("INBOX")
blobs = sql("SELECT count(*) FROM gn_blobs")
m.store("1", "+FLAGS", "(\\Flagged)")
typ, data = m.copy("1:2", "Archive")
uidv = sql("SELECT uidvalidity FROM gn_mailboxes WHERE name = 'Archive'")
t.is_((typ, data), ("OK", [("[COPYUID %s 1:2 1:2] COPY completed" % uidv).encode()]),
      "COPY: [COPYUID] with the destination's UIDVALIDITY")
t.is_(sql("SELECT count(*) FROM gn_blobs"), blobs, "the copies share the bodies")
m.select("Archive")
typ, data = m.fetch("1:*", "(UID FLAGS)")
t.is_(sorted(x.decode() for x in data), ["1 (UID 1 FLAGS (\\Flagged))", "2 (UID 2 FLAGS ())"],
      "the copies keep their flags")
m.select("INBOX")
m.untagged_responses.clear()
typ, data = m._simple_command("MOVE", "2:3", "Archive")
oks = m.untagged_responses.get("OK", [])
t.ok(typ == "OK" and ("[COPYUID %s 2:3 3:4] Moved" % uidv).encode() in oks,
     "MOVE: COPYUID in an untagged OK (%s)" % oks)
t.is_(m.untagged_responses.get("EXPUNGE"), [b"3", b"2"], "then EXPUNGE 3 and 2, highest first")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
          "WHERE b.name = 'Inbox' AND m.uid IS NOT NULL"), "1", "the source keeps one message")
typ, data = m.uid("MOVE", "1", "Archive")
t.is_(typ, "OK", "UID MOVE")
typ, data = m.select("INBOX")
t.is_(data, [b"0"], "INBOX is empty")
typ, data = m.uid("COPY", "1:*", "Nope")
t.ok(typ == "NO" and b"TRYCREATE" in data[0], "a destination that does not exist: NO [TRYCREATE]")
typ, data = m._simple_command("UID", "COPY", "1:*", "Archive")
t.ok(typ == "OK" and b"nothing to do" in data[0], "an empty set: OK, nothing to do")

m.select("Archive")
m.store("1:3", "+FLAGS", "(\\Deleted)")
typ, data = m.uid("EXPUNGE", "2:5")
t.is_((typ, m.untagged_responses.get("EXPUNGE")), ("OK", [b"3", b"2"]),
      "UID EXPUNGE 2:5: only the UIDs given that have \\Deleted (2 and 3)")
typ, data = m.fetch("1:*", "(UID)")
t.is_(sorted(x.decode() for x in data), ["1 (UID 1)", "2 (UID 4)", "3 (UID 5)"], "the rest stays")
m.select("Archive", readonly=True)
typ, data = m._simple_command("MOVE", "1", "INBOX")
t.ok(typ == "NO" and b"READ-ONLY" in data[0], "MOVE in EXAMINE: NO [READ-ONLY]")

m.logout()
g.stop()
t.done()
