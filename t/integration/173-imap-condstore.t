#!/usr/bin/env python3
"""
t/integration/173-imap-condstore.t: CONDSTORE and QRESYNC (RFC 7162) and
FETCH SAVEDATE (RFC 8514) against a running `gannet serve`, over raw TLS
lines (the exact responses matter) and imaplib.

Every expected modseq, UID set and flag comes from what the test did and
from SQL on gn_messages, gn_expunged and gn_mailboxes, never from the
server's answers:

- CAPABILITY has CONDSTORE and QRESYNC; ENABLE reports them;
- SELECT (CONDSTORE) answers OK [HIGHESTMODSEQ n], a plain SELECT does
  not until CONDSTORE is enabled; STATUS (HIGHESTMODSEQ);
- FETCH MODSEQ, FETCH (CHANGEDSINCE n) (only the changed messages, MODSEQ
  implied), SAVEDATE (date-time, NIL when unknown);
- STORE: UID and MODSEQ with every FETCH once enabled, .SILENT too;
  (UNCHANGEDSINCE n) with OK [MODIFIED set] (message numbers for STORE,
  UIDs for UID STORE), UNCHANGEDSINCE 0 always fails;
- SEARCH MODSEQ: the messages, (MODSEQ highest);
- two sessions: one changes, the other sees FETCH (UID FLAGS MODSEQ) at
  NOOP, and with QRESYNC VANISHED instead of EXPUNGE, never during FETCH
  or STORE (where an expunge held back keeps HIGHESTMODSEQ below it), nor
  during a UID SEARCH with message numbers;
- QRESYNC resync after disconnection: expunge some, flag some, reconnect
  with the old HIGHESTMODSEQ: exactly those come back as VANISHED
  (EARLIER) and FETCH; known UIDs narrow it; another UIDVALIDITY gives
  nothing; UID FETCH (CHANGEDSINCE n VANISHED);
- EXPUNGE, UID EXPUNGE and MOVE with QRESYNC: VANISHED, OK
  [HIGHESTMODSEQ n]; while idling: VANISHED; OK [CLOSED] when SELECT
  leaves a mailbox;
- the errors: QRESYNC without ENABLE QRESYNC, VANISHED with FETCH or
  without CHANGEDSINCE, CHANGEDSINCE 0, malformed QRESYNC parameters: BAD.
"""
import datetime
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

SEEN, ANSWERED, FLAGGED, DELETED = 0x01, 0x02, 0x04, 0x08

t = gt.Tap()
srv = imaptest.Server(t)
t.ok(srv.setup(8), "an account with eight messages in its Inbox")
srv.start()
sql = srv.sql


class Raw:
    """One IMAP session over TLS, line by line (no literals are needed)."""

    def __init__(self, login=True):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        self.s = srv.ctx.wrap_socket(sock, server_hostname="mail.test")
        self.f = self.s.makefile("rb")
        self.n = 0
        # The HIGHESTMODSEQ a client keeps by RFC 7162 6: the last
        # HIGHESTMODSEQ response code, else the highest MODSEQ seen.
        self.hms = 0
        self.greeting = self.line()
        if login:
            self.cmd('LOGIN "alice@example.com" "%s"' % PASSWORD)

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def cmd(self, text):
        """(untagged lines, tagged status and text)."""
        self.n += 1
        tag = "c%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, text)).encode())
        out = []
        while True:
            ln = self.line()
            if ln == "":
                return out, "(connection closed)"
            if ln.startswith(tag + " "):
                tagged = ln[len(tag) + 1:]
                said = re.findall(r"\[HIGHESTMODSEQ (\d+)\]", "\n".join(out + [tagged]))
                seen = [int(v) for ln2 in out if " FETCH " in ln2 for v in re.findall(r"MODSEQ \((\d+)\)", ln2)]
                if said:
                    self.hms = int(said[-1])
                elif seen and max(seen) > self.hms:
                    self.hms = max(seen)
                return out, tagged
            out.append(ln)

    def close(self):
        self.cmd("LOGOUT")
        self.s.close()


def box_id(name):
    return sql("SELECT id FROM gn_mailboxes WHERE name = '%s'" % name)


INBOX = box_id("Inbox")


def modseqs(box=INBOX):
    """{uid: modseq} of a mailbox, from SQL."""
    rows = sql("SELECT uid, modseq FROM gn_messages WHERE mailbox_id = %s AND uid IS NOT NULL "
               "ORDER BY uid" % box)
    return {int(u): int(m) for u, m in (r.split("|") for r in rows.splitlines() if r)}


def flags_of(uid, box=INBOX):
    return int(sql("SELECT flags FROM gn_messages WHERE mailbox_id = %s AND uid = %d" % (box, uid)))


def highest(box=INBOX):
    return int(sql("SELECT highestmodseq FROM gn_mailboxes WHERE id = %s" % box))


def uidvalidity(box=INBOX):
    return int(sql("SELECT uidvalidity FROM gn_mailboxes WHERE id = %s" % box))


def expunged_since(since, box=INBOX):
    rows = sql("SELECT uid FROM gn_expunged WHERE mailbox_id = %s AND modseq > %d ORDER BY uid"
               % (box, since))
    return [int(u) for u in rows.splitlines() if u]


def uid_set(uids):
    """RFC 9051 sequence-set of sorted UIDs, ranges joined: "1:3,7"."""
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(out)


def fetches(lines):
    """{msn: rest} of "* n FETCH (rest)" lines."""
    out = {}
    for ln in lines:
        mo = re.match(r"\* (\d+) FETCH \((.*)\)$", ln)
        if mo:
            out[int(mo.group(1))] = mo.group(2)
    return out


def codes(lines, name):
    """The values of untagged OK [name value] responses."""
    return [mo.group(1) for mo in (re.match(r"\* OK \[%s ?([^\]]*)\]" % name, ln) for ln in lines) if mo]


# ---- CONDSTORE ----

a = Raw()
t.like(a.greeting, " CONDSTORE QRESYNC", "the capabilities list CONDSTORE and QRESYNC")
lines, tagged = a.cmd("SELECT INBOX")
t.is_(codes(lines, "HIGHESTMODSEQ"), [], "a plain SELECT before any CONDSTORE command: no HIGHESTMODSEQ")
lines, tagged = a.cmd("SELECT INBOX (CONDSTORE)")
t.ok(tagged.startswith("OK [READ-WRITE]"), "SELECT INBOX (CONDSTORE): OK")
t.ok("* OK [CLOSED] Previous mailbox closed" in lines, "OK [CLOSED] when SELECT leaves a mailbox")
h0 = highest()
t.is_(codes(lines, "HIGHESTMODSEQ"), [str(h0)], "OK [HIGHESTMODSEQ n] is the mailbox's (%d)" % h0)

ms = modseqs()
lines, tagged = a.cmd("FETCH 1:* (MODSEQ)")
t.is_(fetches(lines), {i: "MODSEQ (%d)" % ms[u] for i, u in enumerate(sorted(ms), 1)},
      "FETCH MODSEQ: each message's modseq, as gn_messages has it")
lines, tagged = a.cmd("UID FETCH 1:2 (FLAGS SAVEDATE)")
f = fetches(lines)
saved = sql("SELECT to_char(save_date AT TIME ZONE 'UTC', 'DD-Mon-YYYY HH24:MI:SS') FROM gn_messages "
            "WHERE mailbox_id = %s AND uid = 1" % INBOX)
t.is_(f.get(1), 'UID 1 FLAGS () SAVEDATE "%s +0000"' % saved, "FETCH SAVEDATE: the save date as date-time")
sql("UPDATE gn_messages SET save_date = NULL WHERE mailbox_id = %s AND uid = 2" % INBOX)
lines, tagged = a.cmd("FETCH 2 (SAVEDATE)")
t.is_(fetches(lines), {2: "SAVEDATE NIL"}, "FETCH SAVEDATE: NIL when the store has none")

lines, tagged = a.cmd("STORE 1 +FLAGS (\\Flagged)")
m1 = modseqs()[1]
t.ok(m1 > h0, "STORE gives the message a new modseq (%d > %d)" % (m1, h0))
t.is_(fetches(lines), {1: "UID 1 FLAGS (\\Flagged) MODSEQ (%d)" % m1},
      "STORE's FETCH carries UID and MODSEQ once CONDSTORE is on")
lines, tagged = a.cmd("STORE 1 +FLAGS.SILENT (\\Seen)")
m1 = modseqs()[1]
t.is_(fetches(lines), {1: "UID 1 MODSEQ (%d)" % m1}, "STORE .SILENT: still UID and MODSEQ, no FLAGS")

# Another session changes message 2; this one's UNCHANGEDSINCE fails for it.
b = Raw()
b.cmd("SELECT INBOX")
hb_select = highest()
before = modseqs()
b.cmd("STORE 2 +FLAGS (\\Draft)")
lines, tagged = a.cmd("STORE 2:3 (UNCHANGEDSINCE %d) +FLAGS (\\Answered)" % before[3])
after = modseqs()
t.is_(tagged.split(" ", 2)[:2], ["OK", "[MODIFIED"], "STORE UNCHANGEDSINCE: OK [MODIFIED ...]")
t.like(tagged, "[MODIFIED 2]", "the message changed by the other session failed (message number 2)")
t.ok(flags_of(2) & ANSWERED == 0 and flags_of(3) & ANSWERED,
     "only the unchanged one got \\Answered (gn_messages)")
f = fetches(lines)
t.is_(f.get(3), "UID 3 FLAGS (\\Answered) MODSEQ (%d)" % after[3], "the stored one: its new flags and modseq")
t.is_(f.get(2), "UID 2 FLAGS (\\Draft) MODSEQ (%d)" % after[2],
      "the failed one: its current flags and modseq (RFC 7162 3.1.3)")
lines, tagged = a.cmd("STORE 4 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($Label)")
t.like(tagged, "OK [MODIFIED 4]", "UNCHANGEDSINCE 0 always fails")
t.is_(sql("SELECT keywords FROM gn_messages WHERE mailbox_id = %s AND uid = 4" % INBOX), "{}",
      "and nothing was stored")
lines, tagged = a.cmd("FETCH 4 (BODY[])")
t.is_(lines[0] if lines else None, "* 4 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (%d) BODY[] {%s}"
      % (modseqs()[4], sql("SELECT size FROM gn_messages WHERE mailbox_id = %s AND uid = 4" % INBOX)),
      "a FETCH that sets \\Seen answers with UID and MODSEQ (RFC 7162 3.2.4)")
lines, tagged = a.cmd("STORE 5:6 (UNCHANGEDSINCE %d) +FLAGS.SILENT ($Label)" % max(modseqs().values()))
ms = modseqs()
t.is_((fetches(lines), tagged.split(" ")[0]),
      ({5: "UID 5 MODSEQ (%d)" % ms[5], 6: "UID 6 MODSEQ (%d)" % ms[6]}, "OK"),
      "UNCHANGEDSINCE that holds, .SILENT: FETCH (UID MODSEQ) for each (RFC 7162 3.1.3)")
lines, tagged = a.cmd("STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)")
t.ok(tagged.startswith("BAD"), "two UNCHANGEDSINCE: BAD")

# Others' changes reach this session with UID and MODSEQ.
b.cmd("STORE 7 +FLAGS (\\Flagged)")
lines, tagged = a.cmd("NOOP")
ms = modseqs()
t.ok("* 7 FETCH (UID 7 FLAGS (\\Flagged) MODSEQ (%d))" % ms[7] in lines,
     "NOOP: another session's change as FETCH (UID FLAGS MODSEQ)")
t.is_(a.hms, highest(), "the client's HIGHESTMODSEQ (RFC 7162 6) is the mailbox's after NOOP")

since = ms[3]
lines, tagged = a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % since)
want = {i: u for i, u in enumerate(sorted(ms), 1) if ms[u] > since}
t.is_(sorted(fetches(lines)), sorted(want), "FETCH (CHANGEDSINCE n): exactly the messages changed since")
t.ok(all("MODSEQ (%d)" % ms[want[i]] in r for i, r in fetches(lines).items()),
     "each with its MODSEQ (CHANGEDSINCE implies it)")
lines, tagged = a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
t.ok(tagged.startswith("BAD"), "CHANGEDSINCE 0: BAD (mod-sequence-value)")
lines, tagged = a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
t.ok(tagged.startswith("BAD"), "VANISHED with FETCH: BAD (a UID FETCH modifier)")
lines, tagged = a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
t.ok(tagged.startswith("BAD"), "VANISHED without ENABLE QRESYNC: BAD")

lines, tagged = a.cmd("SEARCH MODSEQ %d" % since)
want = [i for i, u in enumerate(sorted(ms), 1) if ms[u] >= since]
t.is_(lines, ["* SEARCH %s (MODSEQ %d)" % (" ".join(map(str, want)), max(ms.values()))],
      "SEARCH MODSEQ: the messages with a modseq at least n, and the highest of theirs")
lines, tagged = a.cmd("SEARCH MODSEQ %d" % (max(ms.values()) + 1))
t.is_(lines, ["* SEARCH"], "SEARCH MODSEQ past them all: no (MODSEQ n)")

# Session b enables CONDSTORE by STATUS and by SEARCH MODSEQ.
lines, tagged = b.cmd("STATUS Archive (HIGHESTMODSEQ MESSAGES)")
t.is_(lines, ["* OK [HIGHESTMODSEQ %d] Highest" % hb_select,
              "* STATUS \"Archive\" (HIGHESTMODSEQ %d MESSAGES 0)" % highest(box_id("Archive"))],
      "STATUS (HIGHESTMODSEQ): the mailbox's, after the selected one's as of its SELECT (RFC 7162 3.1)")
c = Raw()
c.cmd("SELECT INBOX")
lines, tagged = c.cmd("SEARCH MODSEQ 1")
t.is_(len(codes(lines, "HIGHESTMODSEQ")), 1,
      "the first CONDSTORE enabling command with a mailbox selected announces HIGHESTMODSEQ")
lines, tagged = c.cmd("STORE 8 +FLAGS (\\Seen)")
t.like(fetches(lines).get(8, ""), "MODSEQ (%d)" % modseqs()[8], "after SEARCH MODSEQ, STORE answers with MODSEQ")
c.close()
b.close()
a.close()

# ---- QRESYNC ----

p = Raw()
lines, tagged = p.cmd("ENABLE CONDSTORE")
t.is_(lines, ["* ENABLED CONDSTORE"], "ENABLE CONDSTORE: ENABLED CONDSTORE")
lines, tagged = p.cmd("ENABLE QRESYNC CONDSTORE")
t.is_(lines, ["* ENABLED QRESYNC"], "ENABLE QRESYNC CONDSTORE: only what it newly enabled")
p.close()
q = Raw()
lines, tagged = q.cmd("SELECT INBOX (QRESYNC (%d 1))" % uidvalidity())
t.ok(tagged.startswith("BAD"), "SELECT (QRESYNC ...) without ENABLE QRESYNC: BAD")
lines, tagged = q.cmd("ENABLE QRESYNC")
t.is_(lines, ["* ENABLED QRESYNC"], "ENABLE QRESYNC: ENABLED QRESYNC")
lines, tagged = q.cmd("SELECT INBOX")
t.is_(codes(lines, "HIGHESTMODSEQ"), [str(highest())], "QRESYNC enables CONDSTORE: SELECT has HIGHESTMODSEQ")
old_highest = highest()
old_uids = sorted(modseqs())
q.close()

# While q is away: flag some, expunge some (one of them flagged first).
b = Raw()
b.cmd("SELECT INBOX")
b.cmd("UID STORE 3,5 +FLAGS ($Seen2)")
b.cmd("UID STORE 2,6,7 +FLAGS (\\Deleted)")
b.cmd("EXPUNGE")
b.close()
gone = expunged_since(old_highest)
t.is_(gone, [2, 6, 7], "gn_expunged has the three expunged UIDs")
ms = modseqs()
changed = sorted(u for u in ms if ms[u] > old_highest)
t.is_(changed, [3, 5], "and gn_messages the two flagged ones as changed")

q = Raw()
q.cmd("ENABLE QRESYNC")
lines, tagged = q.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity(), old_highest))
t.ok(tagged.startswith("OK [READ-WRITE]"), "SELECT (QRESYNC (uidvalidity modseq)): OK")
t.is_([ln for ln in lines if "VANISHED" in ln], ["* VANISHED (EARLIER) %s" % uid_set(gone)],
      "VANISHED (EARLIER): exactly the UIDs expunged since")
uids_now = sorted(ms)
f = fetches(lines)
t.is_(sorted(f), [uids_now.index(u) + 1 for u in changed], "FETCH: exactly the messages changed since")
t.ok(all("UID %d " % u in f[uids_now.index(u) + 1] and "MODSEQ (%d)" % ms[u] in f[uids_now.index(u) + 1]
         and "$Seen2" in f[uids_now.index(u) + 1] for u in changed),
     "with UID, FLAGS and MODSEQ as gn_messages has them")
vpos = [i for i, ln in enumerate(lines) if "VANISHED" in ln]
fpos = [i for i, ln in enumerate(lines) if " FETCH " in ln]
t.ok(vpos and fpos and vpos[-1] < fpos[0] and lines.index("* OK [HIGHESTMODSEQ %d] Highest" % highest()) < vpos[0],
     "in order: HIGHESTMODSEQ, VANISHED (EARLIER), FETCH")
lines, tagged = q.cmd("SELECT INBOX (QRESYNC (%d %d 1:3))" % (uidvalidity(), old_highest))
t.is_([ln for ln in lines if "VANISHED" in ln], ["* VANISHED (EARLIER) 2"], "known UIDs 1:3: only 2 vanished")
t.is_(sorted(fetches(lines)), [uids_now.index(3) + 1], "and only 3 fetched")
t.ok("* OK [CLOSED] Previous mailbox closed" in lines, "OK [CLOSED] before the new mailbox's responses")
lines, tagged = q.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity() % 4000000000 + 1, old_highest))
t.ok(tagged.startswith("OK") and not any("VANISHED" in ln or " FETCH " in ln for ln in lines),
     "another UIDVALIDITY: no VANISHED, no FETCH")
lines, tagged = q.cmd("SELECT INBOX (QRESYNC (%d %d 1:5 (1:3 1,3,4)))" % (uidvalidity(), old_highest))
t.ok(tagged.startswith("OK") and "* VANISHED (EARLIER) 2" in lines,
     "with sequence match data: accepted, the exact expunges still")
for bad, why in (("(QRESYNC (0 1))", "UIDVALIDITY 0"), ("(QRESYNC (%d 0))" % uidvalidity(), "modseq 0"),
                 ("(QRESYNC (%d 1 1:*))" % uidvalidity(), "known UIDs with *"),
                 ("(QRESYNC (%d 1 1:5 (1:3 1,3)))" % uidvalidity(), "match data of different sizes"),
                 ("(QRESYNC)", "no list"), ("(FOO)", "an unknown parameter")):
    lines, tagged = q.cmd("SELECT INBOX %s" % bad)
    t.ok(tagged.startswith("BAD"), "SELECT INBOX %s: BAD (%s)" % (bad, why))
q.cmd("SELECT INBOX")

# UID FETCH (CHANGEDSINCE n VANISHED).
lines, tagged = q.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % old_highest)
t.is_([ln for ln in lines if "VANISHED" in ln], ["* VANISHED (EARLIER) %s" % uid_set(gone)],
      "UID FETCH (CHANGEDSINCE n VANISHED): VANISHED (EARLIER) of the set's expunged UIDs")
t.is_(sorted(fetches(lines)), [uids_now.index(u) + 1 for u in changed], "then the changed messages")
lines, tagged = q.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")
t.ok(tagged.startswith("BAD"), "VANISHED without CHANGEDSINCE: BAD")

# Live: another session's expunge reaches q as VANISHED, not during FETCH
# or STORE, where HIGHESTMODSEQ is held below it.
b = Raw()
b.cmd("SELECT INBOX")
h_before = highest()
b.cmd("UID STORE 8 +FLAGS.SILENT (\\Deleted)")
lines, tagged = q.cmd("NOOP")
h_seen = highest()
t.is_(q.hms, h_seen, "NOOP: the client's HIGHESTMODSEQ follows another session's change")
b.cmd("EXPUNGE")
e_mod = int(sql("SELECT modseq FROM gn_expunged WHERE mailbox_id = %s AND uid = 8" % INBOX))
lines, tagged = q.cmd("UID STORE 1 +FLAGS (\\Answered)")
m = modseqs()[1]
t.ok(m > e_mod and not any("VANISHED" in ln or "EXPUNGE" in ln for ln in lines),
     "STORE: no VANISHED while it runs (its modseq %d is past the expunge's %d)" % (m, e_mod))
t.ok(q.hms == h_seen and h_seen < e_mod,
     "an expunge held back: the client's HIGHESTMODSEQ stays below it (%d < %d)" % (q.hms, e_mod))
lines, tagged = q.cmd("FETCH 1:* (UID)")
t.ok(not any("VANISHED" in ln or "EXPUNGE" in ln for ln in lines), "FETCH: no VANISHED either")
lines, tagged = q.cmd("UID SEARCH 1:*")
t.ok(not any("VANISHED" in ln for ln in lines), "UID SEARCH with message numbers: no VANISHED (RFC 7162 3.2.10.2)")
lines, tagged = q.cmd("UID SEARCH UID 1:*")
t.ok("* VANISHED 8" in lines and not any("EXPUNGE" in ln for ln in lines),
     "UID SEARCH with UIDs only: VANISHED 8 after its result, no EXPUNGE")
t.is_(q.hms, highest(), "and the client's HIGHESTMODSEQ is the mailbox's again")
lines, tagged = q.cmd("NOOP")
t.ok(not any("VANISHED" in ln for ln in lines), "NOOP: VANISHED once only")
lines, tagged = q.cmd("STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
t.like(tagged, "OK [MODIFIED 3]", "STORE: MODIFIED names message numbers (message 3 is UID 4)")
lines, tagged = q.cmd("UID STORE 4 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
t.like(tagged, "OK [MODIFIED 4]", "UID STORE: MODIFIED names UIDs")

lines, tagged = q.cmd("UID STORE 3:4 +FLAGS.SILENT (\\Deleted)")
lines, tagged = q.cmd("EXPUNGE")
t.is_([ln for ln in lines if "VANISHED" in ln or "EXPUNGE" in ln], ["* VANISHED 3:4"],
      "EXPUNGE with QRESYNC: one VANISHED")
t.is_(tagged, "OK [HIGHESTMODSEQ %d] EXPUNGE completed" % highest(), "and OK [HIGHESTMODSEQ n]")
q.cmd("UID STORE 5 +FLAGS.SILENT (\\Deleted)")
lines, tagged = q.cmd("UID EXPUNGE 5")
t.is_((lines, tagged), (["* VANISHED 5"], "OK [HIGHESTMODSEQ %d] UID EXPUNGE completed" % highest()),
      "UID EXPUNGE likewise")
rest = sorted(modseqs())
lines, tagged = q.cmd("MOVE 1 Archive")
t.ok(("* VANISHED %d" % rest[0]) in lines and not any("EXPUNGE" in ln for ln in lines), "MOVE: VANISHED")
t.is_(tagged, "OK [HIGHESTMODSEQ %d] MOVE completed" % highest(), "and OK [HIGHESTMODSEQ n] (RFC 6851 4.4)")

# IDLE: another session's expunge arrives as VANISHED while idling.
ARCHIVE = box_id("Archive")
q.cmd("SELECT Archive")
first = min(modseqs(ARCHIVE).keys())  # its lowest UID
q.n += 1
q.s.sendall(b"c%d IDLE\r\n" % q.n)
t.like(q.line(), "+ ", "IDLE: continuation")
b.cmd("SELECT Archive")
b.cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)" % first)
b.cmd("EXPUNGE")
idle_lines = []
while "VANISHED" not in "".join(idle_lines) and len(idle_lines) < 10:
    idle_lines.append(q.line())
q.s.sendall(b"DONE\r\n")
while not q.line().startswith("c%d " % q.n):
    pass
t.ok("* VANISHED %d" % first in idle_lines and not any("EXPUNGE" in ln for ln in idle_lines),
     "IDLE with QRESYNC: VANISHED %d, no EXPUNGE (%s)" % (first, idle_lines))
b.close()
q.close()

srv.g.stop()
t.done()
