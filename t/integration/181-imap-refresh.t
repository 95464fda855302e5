#!/usr/bin/env python3
"""
t/integration/181-imap-refresh.t: what a session hears of changes, now
that it asks the store only for what changed since the modseq it last
compared with (imap_refresh(), gn_store_mailbox_changes()):

- another session's flag change, expunge and append between two NOOPs:
  the EXPUNGE first, then EXISTS, then the FETCH FLAGS with the message
  number after the expunge (RFC 9051 7.5.1); the next NOOP says nothing;
- expunges seen during FETCH, STORE and SEARCH are held back (RFC 9051 7.5.1)
  and told at the next NOOP, with others that came meanwhile, from the
  highest number down, and the numbers that follow stay right;
- two flag changes of one message between NOOPs: one FETCH, the latest;
- the session's own STORE, APPEND and UID EXPUNGE are told once, not
  again at the next NOOP; a message appended and expunged elsewhere
  between two NOOPs is never mentioned;
- CONDSTORE: the FETCH of another's change has UID and MODSEQ (the
  store's), HIGHESTMODSEQ follows the mailbox; QRESYNC: VANISHED instead
  of EXPUNGE, also for expunges held back during FETCH;
- a mailbox deleted by another session while selected: every message
  expunged at the next NOOP.
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)
t.ok(srv.setup(6), "an account with six messages in its Inbox")
srv.start()
sql = srv.sql


class Raw:
    """One IMAP session over TLS, line by line."""

    def __init__(self):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        self.s = srv.ctx.wrap_socket(sock, server_hostname="mail.test")
        self.f = self.s.makefile("rb")
        self.n = 0
        self.line()
        self.cmd('LOGIN "alice@example.com" "%s"' % PASSWORD)

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def cmd(self, text):
        """(untagged lines in order, tagged status and text)."""
        self.n += 1
        tag = "c%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, text)).encode())
        out = []
        while True:
            ln = self.line()
            if ln == "":
                return out, "(connection closed)"
            if ln.startswith(tag + " "):
                return out, ln[len(tag) + 1:]
            out.append(ln)

    def append(self, subject):
        msg = "From: b@example.org\r\nSubject: %s\r\n\r\nbody\r\n" % subject
        out, tagged = self.cmd("APPEND INBOX {%d+}\r\n%s" % (len(msg), msg))
        m = re.search(r"APPENDUID \d+ (\d+)", tagged)
        self.last = out
        return int(m.group(1)) if m else 0

    def close(self):
        self.cmd("LOGOUT")
        self.s.close()


def changes(lines):
    """The change responses of a command, in order."""
    return [ln for ln in lines if re.match(r"\* (\d+ (EXPUNGE|EXISTS|FETCH)|VANISHED|OK \[HIGHESTMODSEQ)", ln)]


def expunge_uid(sess, uid):
    sess.cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
    return sess.cmd("UID EXPUNGE %d" % uid)[1].startswith("OK")


a = Raw()
b = Raw()
a.cmd("SELECT INBOX")
b.cmd("SELECT INBOX")

# ---- another session's flag change, expunge and append ----
b.cmd("UID STORE 2 +FLAGS (\\Flagged)")
t.ok(expunge_uid(b, 4), "the other session expunges UID 4")
uid7 = b.append("seven")
t.is_(uid7, 7, "and appends UID 7")
out, tagged = a.cmd("NOOP")
t.is_(changes(out), ["* 4 EXPUNGE", "* 6 EXISTS", "* 2 FETCH (UID 2 FLAGS (\\Flagged))"],
      "NOOP: EXPUNGE, then EXISTS, then the flags (%s)" % tagged)
t.is_(changes(a.cmd("NOOP")[0]), [], "the next NOOP: nothing")
out, _ = a.cmd("FETCH 1:* (UID)")
t.is_([ln for ln in out if "FETCH" in ln],
      ["* %d FETCH (UID %d)" % (i + 1, u) for i, u in enumerate([1, 2, 3, 5, 6, 7])],
      "the message numbers follow the expunge")

# ---- expunges held back during FETCH and SEARCH ----
t.ok(expunge_uid(b, 1), "the other session expunges UID 1")
out, tagged = a.cmd("FETCH 2 (FLAGS)")
t.ok(tagged.startswith("OK") and not any("EXPUNGE" in ln for ln in out),
     "FETCH: no EXPUNGE (%s)" % out)
out, tagged = a.cmd("SEARCH ALL")
t.ok(tagged.startswith("OK") and not any("EXPUNGE" in ln for ln in out),
     "SEARCH: no EXPUNGE (%s)" % out)
t.ok(expunge_uid(b, 3), "the other session expunges UID 3")
b.cmd("UID STORE 5 +FLAGS (\\Answered)")
b.cmd("UID STORE 5 +FLAGS (\\Flagged)")
uid8 = b.append("eight")
out, tagged = a.cmd("STORE 1 +FLAGS.SILENT (\\Draft)")
t.ok(tagged.startswith("OK") and not any("EXPUNGE" in ln for ln in out),
     "STORE: no EXPUNGE (%s)" % out)
out, _ = a.cmd("NOOP")
t.is_(changes(out), ["* 3 EXPUNGE", "* 1 EXPUNGE", "* 5 EXISTS",
                     "* 2 FETCH (UID 5 FLAGS (\\Answered \\Flagged))"],
      "NOOP: both expunges from the highest number down, the append, one FETCH with the latest flags")
out, _ = a.cmd("FETCH 1:* (UID FLAGS)")
t.is_([ln for ln in out if "FETCH" in ln],
      ["* 1 FETCH (UID 2 FLAGS (\\Flagged))", "* 2 FETCH (UID 5 FLAGS (\\Answered \\Flagged))",
       "* 3 FETCH (UID 6 FLAGS ())", "* 4 FETCH (UID 7 FLAGS ())", "* 5 FETCH (UID %d FLAGS ())" % uid8],
      "the view matches the store; the session's own \\Draft on UID 1 went with UID 1")

# ---- the session's own changes: told once ----
out, _ = a.cmd("STORE 1 +FLAGS (\\Seen)")
t.is_(changes(out), ["* 1 FETCH (FLAGS (\\Seen \\Flagged))"], "own STORE: its FETCH")
t.is_(changes(a.cmd("NOOP")[0]), [], "not again at NOOP")
uid = a.append("own")
t.ok(uid > uid8, "own APPEND")
t.is_(changes(a.last), ["* 6 EXISTS"], "its EXISTS in the APPEND's response")
t.is_(changes(a.cmd("NOOP")[0]), [], "not again at NOOP")
t.ok(expunge_uid(a, uid), "own UID EXPUNGE")
t.is_(changes(a.cmd("NOOP")[0]), [], "nothing more at NOOP")
b.cmd("NOOP")
t.is_(changes(b.cmd("NOOP")[0]), [], "the other session caught up")
gone = b.append("gone")
t.ok(expunge_uid(b, gone), "another session appends and expunges a message")
t.is_(changes(a.cmd("NOOP")[0]), [], "never mentioned")

# ---- CONDSTORE ----
c = Raw()
c.cmd("ENABLE CONDSTORE")
out, _ = c.cmd("SELECT INBOX (CONDSTORE)")
b.cmd("UID STORE 6 +FLAGS (\\Seen)")
t.ok(expunge_uid(b, 7), "the other session changes UID 6 and expunges UID 7")
ms6 = sql("SELECT modseq FROM gn_messages WHERE uid = 6 AND mailbox_id = "
          "(SELECT id FROM gn_mailboxes WHERE name = 'Inbox')")
hms = sql("SELECT highestmodseq FROM gn_mailboxes WHERE name = 'Inbox'")
out, _ = c.cmd("NOOP")
t.is_(changes(out), ["* 4 EXPUNGE", "* 3 FETCH (UID 6 FLAGS (\\Seen) MODSEQ (%s))" % ms6,
                     "* OK [HIGHESTMODSEQ %s] Highest" % hms],
      "CONDSTORE: EXPUNGE, FETCH with UID and the store's MODSEQ, HIGHESTMODSEQ")
t.is_(changes(c.cmd("NOOP")[0]), [], "then nothing")
c.close()

# ---- QRESYNC ----
q = Raw()
q.cmd("ENABLE QRESYNC")
q.cmd("SELECT INBOX")
out, _ = q.cmd("UID FETCH 1:* (UID)")
uids = [int(x) for x in re.findall(r"UID (\d+)\)", "\n".join(out))]
t.is_(uids, [2, 5, 6, uid8], "QRESYNC session: four messages")
t.ok(expunge_uid(b, 5), "the other session expunges UID 5")
out, _ = q.cmd("FETCH 1:* (FLAGS)")
t.ok(not any("VANISHED" in ln or "EXPUNGE" in ln for ln in out), "FETCH: held back")
t.ok(expunge_uid(b, 2), "the other session expunges UID 2")
uid9 = b.append("nine")
out, _ = q.cmd("NOOP")
ch = changes(out)
t.is_(ch[:2], ["* VANISHED 2,5", "* 3 EXISTS"], "NOOP: one VANISHED for both, then EXISTS (%s)" % ch)
out, _ = q.cmd("UID FETCH 1:* (UID)")
t.is_([int(x) for x in re.findall(r"UID (\d+)\)", "\n".join(out))], [6, uid8, uid9], "the view matches")
q.close()

# ---- the mailbox deleted under a session ----
b.cmd('CREATE "Doomed"')
for s in ("x", "y"):
    b.cmd('APPEND "Doomed" {%d+}\r\n%s' % (len("Subject: %s\r\n\r\nz\r\n" % s), "Subject: %s\r\n\r\nz\r\n" % s))
d = Raw()
out, _ = d.cmd('SELECT "Doomed"')
t.ok("* 2 EXISTS" in out, "a session selects a mailbox of two messages")
t.ok(b.cmd('DELETE "Doomed"')[1].startswith("OK"), "another session deletes it")
t.is_(changes(d.cmd("NOOP")[0]), ["* 2 EXPUNGE", "* 1 EXPUNGE"], "NOOP: both expunged")
d.close()

a.close()
b.close()
srv.g.stop()
t.done()
