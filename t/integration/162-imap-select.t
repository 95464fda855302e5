#!/usr/bin/env python3
"""
t/integration/162-imap-select.t: the selected state with Python's imaplib
against a running `gannet serve` (issue 8, item 1, part):

- SELECT: EXISTS, UIDVALIDITY, UIDNEXT, FLAGS, PERMANENTFLAGS, READ-WRITE;
  for IMAP4rev1 clients also RECENT 0 and UNSEEN; after ENABLE IMAP4rev2
  the LIST response instead; EXAMINE is READ-ONLY (STORE and EXPUNGE get
  NO [READ-ONLY]); a missing mailbox NO [NONEXISTENT]; SELECT while
  selected says OK [CLOSED];
- FETCH and UID FETCH of UID, FLAGS, INTERNALDATE, RFC822.SIZE (the sizes
  the store holds) and FAST; message numbers past the end BAD, UIDs that
  do not exist nothing; items not served yet BAD;
- STORE FLAGS, +FLAGS, -FLAGS with system flags and keywords, .SILENT,
  UID STORE; an unknown system flag BAD;
- a second session sees, at NOOP, flags changed by the first, a message
  delivered meanwhile (EXISTS) and messages expunged (EXPUNGE);
- EXPUNGE, CLOSE (expunges \\Deleted), UNSELECT (does not).
"""
import imaplib
import os
import re
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


imaplib.Commands.setdefault("UNSELECT", ("SELECTED",))

m = session()
typ, data = m.select("INBOX")
t.is_((typ, data), ("OK", [b"3"]), "SELECT INBOX: 3 messages")
ok_codes = [c.decode() for c in untagged(m, "OK")]
t.ok(any(c.startswith("[UIDVALIDITY ") for c in ok_codes) and "[UIDNEXT 4] Predicted next UID" in ok_codes,
     "UIDVALIDITY and UIDNEXT")
t.ok(any(c.startswith("[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]") for c in ok_codes),
     "PERMANENTFLAGS with \\*")
t.ok("[UNSEEN 1] First unseen" in ok_codes, "IMAP4rev1: UNSEEN, the first unseen message")
t.is_(untagged(m, "RECENT"), [b"0"], "IMAP4rev1: RECENT 0")
t.is_(untagged(m, "FLAGS"), [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft)"], "FLAGS")
t.is_(untagged(m, "READ-WRITE"), [b""], "READ-WRITE")

sizes = [int(x) for x in sql("SELECT size FROM gn_messages ORDER BY uid").split()]
typ, data = m.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
lines = [x.decode() for x in data]
pat = re.compile(r'^(\d) \(UID (\d) FLAGS \(\) INTERNALDATE "(\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \+0000)" '
                 r'RFC822.SIZE (\d+)\)$')
got = [pat.match(x) for x in lines]
t.ok(typ == "OK" and len(got) == 3 and all(got), "FETCH 1:* of UID FLAGS INTERNALDATE RFC822.SIZE (%s)" % lines)
if all(got) and len(got) == 3:
    t.is_([(int(x.group(1)), int(x.group(2)), int(x.group(4))) for x in got],
          [(1, 1, sizes[0]), (2, 2, sizes[1]), (3, 3, sizes[2])], "numbers, UIDs and the sizes the store holds")
typ, data = m.fetch("2", "FAST")
t.like(data[0].decode() if data and data[0] else "", "2 (FLAGS () INTERNALDATE", "FETCH FAST")
typ, data = cmd(m, "FETCH", "4", "FLAGS")
t.ok(typ == "ERR" and "out of range" in str(data), "a message number past the end: BAD")
typ, data = m.uid("FETCH", "99", "FLAGS")
t.is_((typ, data), ("OK", [None]), "UID FETCH of a UID that does not exist: nothing")
typ, data = m.uid("FETCH", "2:*", "FLAGS")
t.is_(sorted(x.decode() for x in data), ["2 (UID 2 FLAGS ())", "3 (UID 3 FLAGS ())"], "UID FETCH 2:* adds UID")
typ, data = cmd(m, "FETCH", "1", "PREVIEW")
t.ok(typ == "ERR" and "not supported" in str(data), "an item not served yet: BAD, not a wrong answer")

# ---- a second session watches ----
w = session()
w.select("INBOX")
w.untagged_responses.clear()

typ, data = m.store("1", "+FLAGS", "(\\Seen \\Flagged $Important)")
t.is_((typ, [x.decode() for x in data]), ("OK", ["1 (FLAGS (\\Seen \\Flagged $Important))"]),
      "STORE +FLAGS answers the new flags")
typ, data = m.store("1", "-FLAGS", "\\Flagged")
t.is_([x.decode() for x in data], ["1 (FLAGS (\\Seen $Important))"], "STORE -FLAGS with a single flag")
typ, data = m.uid("STORE", "2", "FLAGS.SILENT", "(\\Deleted)")
t.is_((typ, data), ("OK", [None]), "UID STORE FLAGS.SILENT: no FETCH")
typ, data = cmd(m, "STORE", "1", "+FLAGS", "(\\Frob)")
t.ok(typ == "ERR" and "Unknown system flag" in str(data), "an unknown system flag: BAD")

w.noop()
fetched = sorted(x.decode() for x in untagged(w, "FETCH"))
t.is_(fetched, ["1 (UID 1 FLAGS (\\Seen $Important))", "2 (UID 2 FLAGS (\\Deleted))"],
      "the other session hears of the flags at NOOP")
gannet("import", "mbox", "alice", mbox_of(1, first=10))
w.noop()
t.is_(untagged(w, "EXISTS"), [b"4"], "and of a message delivered meanwhile (EXISTS)")

typ, data = m.expunge()
t.is_((typ, data), ("OK", [b"2"]), "EXPUNGE: message 2 goes")
w.noop()
t.is_(untagged(w, "EXPUNGE"), [b"2"], "the other session hears EXPUNGE 2")
typ, data = w.fetch("1:*", "(UID)")
t.is_(sorted(x.decode() for x in data), ["1 (UID 1)", "2 (UID 3)", "3 (UID 4)"],
      "and its numbers follow")

# ---- EXAMINE, SELECT while selected, CLOSE, UNSELECT ----
typ, data = w.select("INBOX", readonly=True)
t.is_(typ, "OK", "EXAMINE")
t.ok(b"[CLOSED] Previous mailbox closed" in untagged(w, "OK"), "EXAMINE while selected: OK [CLOSED] first")
t.is_(untagged(w, "READ-ONLY"), [b""], "READ-ONLY")
typ, data = cmd(w, "STORE", "1", "+FLAGS", "\\Deleted")
t.ok(typ == "NO" and "[READ-ONLY]" in str(data), "STORE in EXAMINE: NO [READ-ONLY]")
typ, data = cmd(w, "EXPUNGE")
t.ok(typ == "NO" and "[READ-ONLY]" in str(data), "EXPUNGE in EXAMINE: NO [READ-ONLY]")
imaplib.Commands["ENABLE"] = ("AUTH", "SELECTED")  # to send it where it is not valid
typ, data = cmd(w, "ENABLE", "CONDSTORE")
t.ok(typ == "ERR" and "not valid with a mailbox selected" in str(data),
     "ENABLE with a mailbox selected: BAD, saying why (RFC 5161 3.1) (%s)" % data)

m.store("1", "+FLAGS", "\\Deleted")
typ, _ = cmd(m, "UNSELECT")
t.is_(typ, "OK", "UNSELECT")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
          "WHERE b.name = 'Inbox' AND m.uid IS NOT NULL"), "3", "UNSELECT expunges nothing")
typ, data = cmd(m, "FETCH", "1", "FLAGS")
t.ok(typ == "ERR" and "without a selected mailbox" in str(data), "FETCH after UNSELECT: BAD")
m.select("INBOX")
typ, _ = m.close()
t.is_(typ, "OK", "CLOSE")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
          "WHERE b.name = 'Inbox' AND m.uid IS NOT NULL"), "2", "CLOSE expunged the message with \\Deleted")
typ, data = m.select("Nope")
t.ok(typ == "NO" and b"NONEXISTENT" in data[0], "SELECT of a missing mailbox: NO [NONEXISTENT]")

# ---- IMAP4rev2 ----
m._simple_command("ENABLE", "IMAP4rev2")
m.untagged_responses.clear()
typ, data = m.select("INBOX")
t.is_(untagged(m, "LIST"), [b'() "/" "INBOX"'], "IMAP4rev2: SELECT gives the LIST response")
t.is_(untagged(m, "RECENT"), [], "and no RECENT")
typ, data = m.select("INBOX")
t.ok(b"[CLOSED] Previous mailbox closed" in untagged(m, "OK"), "SELECT while selected: OK [CLOSED]")

m.logout()
w.logout()
g.stop()
t.done()
