#!/usr/bin/env python3
"""
t/integration/168-imap-search.t: SEARCH and UID SEARCH (RFC 9051 6.4.4,
RFC 3501), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032), the
SAVEDATE keys (RFC 8514) and MODSEQ (RFC 7162) with Python's imaplib against
a running `gannet serve` (issue 8, item 1):

- a mailbox of varied messages (encoded subjects, base64, quoted-printable
  in ISO-8859-1, multipart with an attachment, one without a Date header,
  a large one), imported from an mbox, with flags and keywords set by STORE
  and one message expunged so that message numbers and UIDs differ;
- every search key, alone and nested in OR, NOT and parentheses, its
  expected UIDs computed here from the messages this test wrote and the
  flags it set (a model of each key), never copied from the server;
- the IMAP4rev1 "* SEARCH" form, ESEARCH with RETURN (MIN MAX COUNT ALL),
  ESEARCH as the IMAP4rev2 default, (MODSEQ n) for the MODSEQ key;
- SEARCH RETURN (SAVE) and "$" in FETCH, STORE, COPY, SEARCH and UID forms,
  reset by SELECT;
- CHARSET UTF-8 and US-ASCII, NO [BADCHARSET (UTF-8 US-ASCII)] for others;
- a search that would read more than imap.search_scan_limit: NO [LIMIT]
  and a log line; narrowed by other keys it passes;
- no EXPUNGE during SEARCH (RFC 9051 7.5.1); malformed searches: BAD.
"""
import base64
import datetime
import email.utils
import imaplib
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import cmd, untagged  # noqa: E402

t = gt.Tap()
# The large message alone is within the limit; with the others it is not.
SCAN_LIMIT = 64 * 1024
srv = imaptest.Server(t, extra='imap = { search_scan_limit = "64k"; };')
t.ok(srv.setup(0), "an account")

UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC).replace(microsecond=0)


def utc(*a):
    return datetime.datetime(*a, tzinfo=UTC)


# ---- the messages ----
# Each: header fields (decoded values for the model, raw for the file),
# the internal date (the mbox From_ line), and body parts as (type,
# charset, transfer encoding, text): the model searches the text of
# text/* parts only.
MSGS = [
    dict(subject="gone", raw_subject="gone", frm="x@example.org", to="y@example.org",
         date="Thu, 04 Jan 2024 10:00:00 +0000", idate=utc(2024, 1, 4, 10),
         parts=[("text/plain", "us-ascii", "7bit", "expunged before the tests\n")]),
    dict(subject="Lunch on Friday", raw_subject="Lunch on Friday",
         frm="Alice Example <alice@example.org>", to="bob@example.net", cc="carol@example.com",
         date="Fri, 05 Jan 2024 12:00:00 +0000", idate=utc(2024, 1, 5, 13),
         parts=[("text/plain", "us-ascii", "7bit", "Shall we meet at noon? The secret word is Pelican.\n")]),
    dict(subject="Gr\u00fc\u00dfe aus Berlin", raw_subject="=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_Berlin?=",
         frm="Bob <bob@example.net>", to="alice@example.org", bcc="dave@example.com",
         # 23:30 -0500 is the next day in UTC: SENTON compares UTC days.
         date="Sat, 06 Jan 2024 23:30:00 -0500", idate=utc(2024, 1, 6, 23, 59, 59),
         parts=[("text/plain", "utf-8", "base64",
                 "Viele Gr\u00fc\u00dfe, the quarterly REPORT is attached.\n")]),
    dict(subject="Quarterly report", raw_subject="Quarterly report", frm="carol@example.com",
         to="Team <team@example.org>", date=None, idate=utc(2024, 1, 7, 0, 0, 0),
         parts=[("text/plain", "iso-8859-1", "quoted-printable",
                 "Caf\u00e9 cr\u00e8me and a summary of the numbers\n")]),
    dict(subject="Photos", raw_subject="Photos", frm="Dave <dave@example.com>", to="bob@example.net",
         # Encoded (RFC 2047) and folded over two lines.
         cc="J\u00f6rg <joerg@example.org>, Kim <kim@example.org>",
         raw_cc="=?iso-8859-1?q?J=F6rg?= <joerg@example.org>,\n  Kim <kim@example.org>",
         date="Mon, 08 Jan 2024 09:00:00 +0100", idate=utc(2024, 1, 8, 10),
         parts=[("text/plain", "us-ascii", "7bit", "Here are the photos from the trip.\n"),
                ("application/octet-stream", None, "base64", "zebra stripes, not text")]),
    dict(subject="Re: Lunch on Friday", raw_subject="Re: Lunch on Friday", frm="Eve <eve@example.org>",
         to="alice@example.org", date="Tue, 09 Jan 2024 10:00:00 +0000",
         idate=NOW - datetime.timedelta(minutes=10), extra={"X-Priority": "1 (Highest)"},
         parts=[("text/plain", "us-ascii", "7bit", "Noon works. Pelican indeed.\n")]),
    dict(subject="Big log", raw_subject="Big log", frm="Frank <frank@example.com>", to="ops@example.org",
         date="Wed, 10 Jan 2024 08:00:00 +0000", idate=utc(2024, 1, 10, 8),
         parts=[("text/plain", "us-ascii", "7bit",
                 "".join("log line %05d\n" % i for i in range(4000)) + "the needle is here\n")]),
]


def encode_part(ctype, charset, cte, text):
    data = text.encode(charset or "utf-8")
    if cte == "base64":
        body = base64.encodebytes(data).decode()
    elif cte == "quoted-printable":
        body = "".join(c if 32 <= ord(c) < 127 and c != "=" else
                       "".join("=%02X" % b for b in c.encode(charset)) for c in text.rstrip("\n")) + "\n"
    else:
        body = text
    head = "Content-Type: %s%s\nContent-Transfer-Encoding: %s\n" % (
        ctype, "; charset=%s" % charset if charset else "", cte)
    return head, body


def message_text(i, m):
    lines = ["From: %s" % m["frm"], "To: %s" % m["to"]]
    if "cc" in m:
        lines.append("Cc: %s" % m.get("raw_cc", m["cc"]))
    if "bcc" in m:
        lines.append("Bcc: %s" % m["bcc"])
    lines.append("Subject: %s" % m["raw_subject"])
    if m["date"]:
        lines.append("Date: %s" % m["date"])
    lines.append("Message-ID: <id%d@example.org>" % i)
    for k, v in m.get("extra", {}).items():
        lines.append("%s: %s" % (k, v))
    lines.append("MIME-Version: 1.0")
    if len(m["parts"]) == 1:
        head, body = encode_part(*m["parts"][0])
        return "\n".join(lines) + "\n" + head + "\n" + body
    lines.append('Content-Type: multipart/mixed; boundary="b1"')
    out = "\n".join(lines) + "\n\n"
    for p in m["parts"]:
        head, body = encode_part(*p)
        out += "--b1\n" + head + "\n" + body
    return out + "--b1--\n"


mbox = os.path.join(srv.dir, "search.mbox")
with open(mbox, "w") as f:
    for i, m in enumerate(MSGS):
        m["raw"] = message_text(i, m)
        # The store keeps CRLF line ends (import makes them so).
        m["size"] = len(m["raw"].replace("\n", "\r\n").encode())
        f.write("From a@example.org %s\n%s\n" % (m["idate"].strftime("%a %b %e %H:%M:%S %Y"), m["raw"]))
        m["uid"] = i + 1
        m["flags"] = set()
        m["sent"] = email.utils.parsedate_to_datetime(m["date"]).astimezone(UTC) if m["date"] else None
t.ok(srv.gannet("import", "mbox", "alice", mbox).returncode == 0, "%d varied messages imported" % len(MSGS))
t.ok(MSGS[6]["size"] < SCAN_LIMIT < sum(x["size"] for x in MSGS[1:]),
     "the large message is within the scan limit, all of them are past it")
srv.start()

imaplib.Commands.setdefault("MOVE", ("SELECTED",))
m = srv.session()
m.select("INBOX")
# Message 0 goes: message numbers are then UIDs - 1.
m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
m.expunge()
live = MSGS[1:]


def store(idx, flags):
    typ, _ = m.uid("STORE", ",".join(str(MSGS[i]["uid"]) for i in idx), "+FLAGS", "(%s)" % flags)
    for i in idx:
        MSGS[i]["flags"].update(f.lower() for f in flags.split())
    return typ


ok = all(store(idx, f) == "OK" for idx, f in [
    ([1, 3, 5], "\\Seen"), ([2, 5], "\\Flagged"), ([1], "\\Answered"), ([4], "\\Draft"),
    ([6], "\\Deleted"), ([2, 3], "$Work"), ([4], "Project-X")])
t.ok(ok, "flags and keywords set with STORE")
# The last change: MODSEQ finds the messages it touched.
store([3, 6], "$Last")
last_modseq = int(srv.sql("SELECT max(modseq) FROM gn_messages"))


# ---- the model ----
def fold(s):
    """ASCII letters without case, as RFC 9051 asks; others as they are."""
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in s)


def has(hay, needle):
    return fold(needle) in fold(hay)


def day(d):
    return d.astimezone(UTC).date()


def header_fields(msg):
    f = {"from": msg["frm"], "to": msg["to"], "subject": msg["subject"],
         "message-id": "<id%d@example.org>" % MSGS.index(msg), "mime-version": "1.0"}
    for k in ("cc", "bcc"):
        if k in msg:
            f[k] = msg[k]
    if msg["date"]:
        f["date"] = msg["date"]
    for k, v in msg.get("extra", {}).items():
        f[k.lower()] = v
    return f


def body_text(msg):
    return "".join(p[3] for p in msg["parts"] if p[0].startswith("text/"))


def text_of(msg):
    return " ".join("%s: %s" % kv for kv in header_fields(msg).items()) + " " + body_text(msg)


D = lambda s: datetime.datetime.strptime(s, "%d-%b-%Y").date()  # noqa: E731
F = lambda f: (lambda x: f in x["flags"])  # noqa: E731
TODAY = NOW.date()
TODAY_S = NOW.strftime("%d-%b-%Y")

# (search keys, model of them)
CASES = [
    ("ALL", lambda x: True),
    ("SEEN", F("\\seen")), ("UNSEEN", lambda x: "\\seen" not in x["flags"]),
    ("ANSWERED", F("\\answered")), ("UNANSWERED", lambda x: "\\answered" not in x["flags"]),
    ("FLAGGED", F("\\flagged")), ("UNFLAGGED", lambda x: "\\flagged" not in x["flags"]),
    ("DELETED", F("\\deleted")), ("UNDELETED", lambda x: "\\deleted" not in x["flags"]),
    ("DRAFT", F("\\draft")), ("UNDRAFT", lambda x: "\\draft" not in x["flags"]),
    ("KEYWORD $work", F("$work")), ("UNKEYWORD $Work", lambda x: "$work" not in x["flags"]),
    ("KEYWORD Project-X", F("project-x")), ("KEYWORD nothing-has-it", lambda x: False),
    ("NEW", lambda x: False), ("RECENT", lambda x: False), ("OLD", lambda x: True),
    ("LARGER %d" % MSGS[3]["size"], lambda x: x["size"] > MSGS[3]["size"]),
    ("SMALLER %d" % MSGS[3]["size"], lambda x: x["size"] < MSGS[3]["size"]),
    ("BEFORE 7-Jan-2024", lambda x: day(x["idate"]) < D("7-Jan-2024")),
    ("ON 6-Jan-2024", lambda x: day(x["idate"]) == D("6-Jan-2024")),
    ('SINCE "07-jan-2024"', lambda x: day(x["idate"]) >= D("7-Jan-2024")),
    ("SENTBEFORE 7-Jan-2024", lambda x: x["sent"] is not None and day(x["sent"]) < D("7-Jan-2024")),
    ("SENTON 7-Jan-2024", lambda x: x["sent"] is not None and day(x["sent"]) == D("7-Jan-2024")),
    ("SENTSINCE 8-Jan-2024", lambda x: x["sent"] is not None and day(x["sent"]) >= D("8-Jan-2024")),
    ("SAVEDON %s" % TODAY_S, lambda x: True),
    ("SAVEDBEFORE %s" % TODAY_S, lambda x: False),
    ("SAVEDSINCE %s" % TODAY_S, lambda x: True),
    ("SAVEDATESUPPORTED", lambda x: True),
    ("YOUNGER 3600", lambda x: x["idate"] >= NOW - datetime.timedelta(hours=1)),
    ("OLDER 3600", lambda x: x["idate"] < NOW - datetime.timedelta(hours=1)),
    ("SUBJECT lunch", lambda x: has(x["subject"], "lunch")),
    ("FROM EXAMPLE.COM", lambda x: has(x["frm"], "EXAMPLE.COM")),
    ('HEADER Message-ID "<id3@"', lambda x: MSGS.index(x) == 3),
    ("UID 3:5,7", lambda x: x["uid"] in (3, 4, 5, 7)),
    ("UID 6:*", lambda x: x["uid"] >= 6),
    ("2:3", lambda x: live.index(x) + 1 in (2, 3)),
    ("4:*", lambda x: live.index(x) + 1 >= 4),
    ("OR SEEN FLAGGED", lambda x: "\\seen" in x["flags"] or "\\flagged" in x["flags"]),
    ("NOT SEEN", lambda x: "\\seen" not in x["flags"]),
    ("(SEEN KEYWORD $Work)", lambda x: "\\seen" in x["flags"] and "$work" in x["flags"]),
    ("NOT (OR SEEN (FLAGGED NOT DRAFT))",
     lambda x: not ("\\seen" in x["flags"] or ("\\flagged" in x["flags"] and "\\draft" not in x["flags"]))),
    ("OR (SINCE 8-Jan-2024 UNSEEN) OR KEYWORD $Last SUBJECT photos",
     lambda x: (day(x["idate"]) >= D("8-Jan-2024") and "\\seen" not in x["flags"]) or "$last" in x["flags"]
     or has(x["subject"], "photos")),
]
# Keys that read the messages; narrowed to the small ones, which are
# within the scan limit together (the large one alone is not).
SMALL = "SMALLER 10000"
SCAN_CASES = [
    ("BODY pelican", lambda x: has(body_text(x), "pelican")),
    ("BODY REPORT", lambda x: has(body_text(x), "REPORT")),
    ("BODY \"Gr\u00fc\u00dfe,\"", None),  # non-ASCII: below, with CHARSET
    ("BODY zebra", lambda x: has(body_text(x), "zebra")),
    ("TEXT pelican", lambda x: has(text_of(x), "pelican")),
    ("TEXT x-priority", lambda x: has(text_of(x), "x-priority")),
    ("TO bob@", lambda x: has(x["to"], "bob@")),
    ("CC carol", lambda x: has(x.get("cc", ""), "carol")),
    ('CC "KIM <kim@"', lambda x: has(x.get("cc", ""), "KIM <kim@")),
    ("BCC dave", lambda x: has(x.get("bcc", ""), "dave")),
    ('HEADER X-Priority "highest"', lambda x: has(x.get("extra", {}).get("X-Priority", ""), "highest")),
    ('HEADER X-Priority ""', lambda x: "X-Priority" in x.get("extra", {})),
    ("NOT BODY pelican", lambda x: not has(body_text(x), "pelican")),
    ("OR BODY photos NOT TEXT noon",
     lambda x: has(body_text(x), "photos") or not has(text_of(x), "noon")),
    ("NOT (SEEN BODY pelican)", lambda x: not ("\\seen" in x["flags"] and has(body_text(x), "pelican"))),
]


def uids_where(pred, pool=None):
    return [x["uid"] for x in (pool or live) if pred(x)]


def msns_where(pred):
    return [live.index(x) + 1 for x in live if pred(x)]


def search(keys, uid=False):
    """The numbers of a SEARCH / UID SEARCH, or the tagged answer."""
    m.untagged_responses.pop("SEARCH", None)
    typ, data = cmd(m, "UID" if uid else "SEARCH", *(["SEARCH"] if uid else []), keys)
    if typ != "OK":
        return (typ, data)
    got = untagged(m, "SEARCH")
    return [int(n) for n in got[0].split()] if got and got[0] else []


for keys, pred in CASES:
    t.is_(search(keys, uid=True), uids_where(pred), "UID SEARCH %s" % keys)
for keys, pred in CASES[:12]:
    t.is_(search(keys), msns_where(pred), "SEARCH %s: message numbers" % keys)
for keys, pred in SCAN_CASES:
    if pred is None:
        continue
    t.is_(search("%s %s" % (SMALL, keys), uid=True),
          uids_where(lambda x: x["size"] < 10000 and pred(x)), "UID SEARCH %s %s" % (SMALL, keys))

# The large message alone: within the limit; with the rest: NO [LIMIT].
t.is_(search("UID %d BODY needle" % MSGS[6]["uid"], uid=True), [MSGS[6]["uid"]],
      "BODY finds text at the end of a large message")
typ, data = cmd(m, "SEARCH", "BODY needle")
t.ok(typ == "NO" and b"[LIMIT]" in data[0], "BODY over every message: past the scan limit, NO [LIMIT] (%s)"
     % data)
t.like(srv.g.log(), "event=search_scan_limit", "and a log line says so")
typ, data = cmd(m, "SEARCH", "OR BODY needle SEEN")
t.ok(typ == "NO" and b"[LIMIT]" in data[0], "also when the scan key is one side of an OR")

# ---- CHARSET ----
m.literal = "gr\u00fc\u00dfe".encode()
typ, data = cmd(m, "SEARCH", "CHARSET UTF-8 SUBJECT")
got = untagged(m, "SEARCH")
t.is_((typ, [int(n) for n in got[0].split()] if got and got[0] else []),
      ("OK", msns_where(lambda x: "gr\u00fc\u00dfe" in x["subject"].lower())),
      "CHARSET UTF-8 with a literal: the decoded subject matches")
m.literal = "Caf\u00e9 cr\u00e8me".encode()
typ, data = cmd(m, "UID", "SEARCH", "CHARSET utf-8 %s BODY" % SMALL)
got = untagged(m, "SEARCH")
t.is_([int(n) for n in got[0].split()] if got and got[0] else [],
      uids_where(lambda x: x["size"] < 10000 and "Caf\u00e9 cr\u00e8me" in body_text(x)),
      "BODY in UTF-8 finds quoted-printable ISO-8859-1 text")
m.literal = "Viele Gr\u00fc\u00dfe".encode()
typ, data = cmd(m, "UID", "SEARCH", "CHARSET UTF-8 %s TEXT" % SMALL)
got = untagged(m, "SEARCH")
t.is_([int(n) for n in got[0].split()] if got and got[0] else [],
      uids_where(lambda x: x["size"] < 10000 and "Viele Gr\u00fc\u00dfe" in body_text(x)),
      "TEXT finds base64 UTF-8 text")
m.literal = "j\u00f6rg <".encode()
typ, data = cmd(m, "UID", "SEARCH", "CHARSET UTF-8 %s CC" % SMALL)
got = untagged(m, "SEARCH")
t.is_([int(n) for n in got[0].split()] if got and got[0] else [],
      uids_where(lambda x: x["size"] < 10000 and "j\u00f6rg <" in x.get("cc", "").lower()),
      "CC: an encoded word in a header the store keeps no column for, decoded")
t.is_(search("CHARSET US-ASCII SEEN"), msns_where(F("\\seen")), "CHARSET US-ASCII")
typ, data = cmd(m, "SEARCH", "CHARSET ISO-8859-1 ALL")
t.ok(typ == "NO" and data[0].startswith(b"[BADCHARSET (UTF-8 US-ASCII)]"),
     "another charset: NO [BADCHARSET (UTF-8 US-ASCII)] (%s)" % data)

# ---- MODSEQ (RFC 7162 3.1.5) ----
m.untagged_responses.pop("SEARCH", None)
typ, data = cmd(m, "UID", "SEARCH", "MODSEQ %d" % last_modseq)
want = " ".join(str(MSGS[i]["uid"]) for i in (3, 6))
t.is_(untagged(m, "SEARCH"), [("%s (MODSEQ %d)" % (want, last_modseq)).encode()],
      "MODSEQ: the messages of the last change, with (MODSEQ highest)")
typ, data = cmd(m, "SEARCH", 'MODSEQ "/flags/\\\\Seen" all %d' % last_modseq)
t.is_(untagged(m, "SEARCH"), [("%s (MODSEQ %d)" % (" ".join(str(MSGS[i]["uid"] - 1) for i in (3, 6)),
                                                   last_modseq)).encode()],
      "MODSEQ with an entry name and type")
typ, data = cmd(m, "SEARCH", "MODSEQ %d" % (last_modseq + 1))
t.is_(untagged(m, "SEARCH"), [b""], "MODSEQ past the highest: nothing, and no (MODSEQ)")

# ---- ESEARCH (RFC 4731) ----
# esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
ESEARCH_RE = re.compile(r'^\(TAG "[^"\\]+"\)( UID)?( (MIN|MAX|COUNT) \d+| ALL [0-9:,]+| MODSEQ \d+)*$')


def esearch(keys, uid=False):
    m.untagged_responses.pop("ESEARCH", None)
    typ, data = cmd(m, *(["UID", "SEARCH"] if uid else ["SEARCH"]), keys)
    got = untagged(m, "ESEARCH")
    if typ != "OK" or len(got) != 1:
        return (typ, data, got)
    line = got[0].decode()
    t.ok(ESEARCH_RE.match(line), "ESEARCH as RFC 4731 writes it: %s" % line)
    return re.sub(r'^\(TAG "[^"]+"\) ?', "", line)


def seqset(nums):
    out, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(out)


unseen = msns_where(lambda x: "\\seen" not in x["flags"])
t.is_(esearch("RETURN (MIN MAX COUNT ALL) UNSEEN"),
      "MIN %d MAX %d COUNT %d ALL %s" % (unseen[0], unseen[-1], len(unseen), seqset(unseen)),
      "RETURN (MIN MAX COUNT ALL): message numbers")
unseen_u = uids_where(lambda x: "\\seen" not in x["flags"])
t.is_(esearch("RETURN (COUNT) UNSEEN", uid=True), "UID COUNT %d" % len(unseen_u), "UID SEARCH RETURN (COUNT)")
t.is_(esearch("RETURN () UNSEEN", uid=True), "UID ALL %s" % seqset(unseen_u), "RETURN () is ALL")
t.is_(esearch("RETURN (MIN MAX COUNT ALL) KEYWORD nothing-has-it"), "COUNT 0",
      "no match: only COUNT 0 (no MIN, MAX, ALL)")
t.is_(esearch("RETURN (ALL) MODSEQ %d" % last_modseq, uid=True),
      "UID ALL %s MODSEQ %d" % (seqset([MSGS[3]["uid"], MSGS[6]["uid"]]), last_modseq),
      "ESEARCH with MODSEQ")
# RFC 4731 3.2: with MIN alone, the modseq of the MIN message.
min_uid = MSGS[1]["uid"]
min_modseq = int(srv.sql("SELECT modseq FROM gn_messages WHERE uid = %d AND mailbox_id = "
                         "(SELECT id FROM gn_mailboxes WHERE name = 'Inbox')" % min_uid))
t.ok(min_modseq < last_modseq, "the first message changed before the last change (the premise)")
t.is_(esearch("RETURN (MIN) MODSEQ 1", uid=True), "UID MIN %d MODSEQ %d" % (min_uid, min_modseq),
      "RETURN (MIN) with MODSEQ: the modseq of the MIN message")
t.is_(esearch("RETURN (MIN COUNT) MODSEQ 1", uid=True), "UID MIN %d COUNT %d MODSEQ %d"
      % (min_uid, len(live), last_modseq), "with COUNT too: the highest of all")
typ, data = cmd(m, "SEARCH", "RETURN (FIRST) ALL")
t.is_(typ, "ERR", "an unknown RETURN option: BAD")

# ---- SEARCHRES (RFC 5182) ----
m.untagged_responses.pop("ESEARCH", None)
typ, data = cmd(m, "SEARCH", "RETURN (SAVE) FLAGGED")
t.ok(typ == "OK" and not untagged(m, "ESEARCH"), "RETURN (SAVE) alone: OK and no ESEARCH")
flagged = [x for x in live if "\\flagged" in x["flags"]]
typ, data = m.fetch("$", "(UID)")
t.is_(sorted(int(re.search(rb"UID (\d+)", d).group(1)) for d in data if d),
      [x["uid"] for x in flagged], "FETCH $: the saved messages")
typ, data = m.uid("FETCH", "$", "(FLAGS)")
t.is_(len([d for d in data if d]), len(flagged), "UID FETCH $")
t.is_(search("$", uid=True), [x["uid"] for x in flagged], "SEARCH $")
t.is_(search("UID $ SEEN", uid=True), [x["uid"] for x in flagged if "\\seen" in x["flags"]], "UID $ with SEEN")
typ, data = m.store("$", "+FLAGS", "(Saved)")
for x in flagged:
    x["flags"].add("saved")
t.is_(search("KEYWORD Saved", uid=True), [x["uid"] for x in flagged], "STORE $ changed the saved ones")
typ, data = m.copy("$", "Archive")
t.is_(typ, "OK", "COPY $")
typ, data = cmd(m, "UID", "SEARCH", "RETURN (SAVE MIN) UNSEEN")
t.is_(search("$", uid=True), [unseen_u[0]], "RETURN (SAVE MIN): only the smallest is kept")
typ, data = m.uid("COPY", "$", "Archive")
t.is_(typ, "OK", "UID COPY $")
t.is_(srv.sql("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
              "AND b.account_id = m.account_id WHERE b.name = 'Archive'"), str(len(flagged) + 1),
      "the copies arrived")
typ, data = cmd(m, "SEARCH", "RETURN (SAVE) FOO")
t.is_(search("$"), [], "a SAVE that fails leaves $ empty")

# The copies were saved there today; SAVEDATE searches the Archive too.
m.select("Archive")
t.is_(search("SAVEDON %s" % TODAY_S), [1, 2, 3], "the copies' save date is today")
archive = flagged + [next(x for x in live if x["uid"] == unseen_u[0])]
t.is_(search("BEFORE %s" % TODAY_S), [i + 1 for i, x in enumerate(archive) if day(x["idate"]) < TODAY],
      "while their internal dates are kept")
cmd(m, "SEARCH", "RETURN (SAVE) SAVEDON %s" % TODAY_S)
m.untagged_responses.clear()
typ, data = cmd(m, "MOVE", "$", "Junk")
t.ok(typ == "OK" and len(m.untagged_responses.get("EXPUNGE", [])) == len(archive), "MOVE $ moves them all")
m.select("Junk")
cmd(m, "SEARCH", "RETURN (SAVE) ALL")
typ, data = m.fetch("$", "(UID)")
t.is_(len([d for d in data if d]), len(archive), "$ holds the moved messages in Junk")
m.select("INBOX")
typ, data = m.fetch("$", "(UID)")
t.ok(typ == "OK" and data == [None], "SELECT empties $ (%s %s)" % (typ, data))

# ---- IMAP4rev2: ESEARCH by default ----
m2 = srv.session()
imaplib.Commands.setdefault("ENABLE", ("AUTH",))
cmd(m2, "ENABLE", "IMAP4rev2")
m2.select("INBOX")
m2.untagged_responses.pop("SEARCH", None)
typ, data = cmd(m2, "SEARCH", "UNSEEN")
got = untagged(m2, "ESEARCH")
t.ok(typ == "OK" and len(got) == 1 and got[0].decode().endswith(" ALL %s" % seqset(unseen))
     and not untagged(m2, "SEARCH"), "IMAP4rev2: ESEARCH ... ALL, no SEARCH response (%s)" % got)

# ---- no EXPUNGE during SEARCH (RFC 9051 7.5.1) ----
m2.uid("STORE", str(MSGS[1]["uid"]), "+FLAGS", "(\\Deleted)")
cmd(m2, "UID", "EXPUNGE", str(MSGS[1]["uid"]))
m.untagged_responses.clear()
typ, data = cmd(m, "SEARCH", "ALL")
t.ok(typ == "OK" and "EXPUNGE" not in m.untagged_responses,
     "another session expunged: SEARCH reports no EXPUNGE")
got = [int(n) for n in m.untagged_responses.get("SEARCH", [b""])[0].split()]
t.is_(got, [live.index(x) + 1 for x in live if x is not MSGS[1]],
      "and answers with the numbers the client still holds, without the expunged message")
m.noop()
t.is_(untagged(m, "EXPUNGE"), [b"1"], "NOOP then reports it")
m2.logout()

# ---- malformed ----
for keys, why in [("FOO", "an unknown key"), ("", "no key"), ("BEFORE 31-Feb-2024", "a date that is not one"),
                  ("LARGER x", "a size that is not a number"), ("OR SEEN", "OR with one key"),
                  ("()", "an empty list"), ("KEYWORD \\Seen", "a keyword that is no atom"),
                  ("YOUNGER 0", "YOUNGER 0 (nz-number)"),
                  ("NOT " * 60 + "ALL", "keys nested too deeply")]:
    typ, data = cmd(m, "SEARCH", keys) if keys else cmd(m, "SEARCH")
    t.is_(typ, "ERR", "%s: BAD" % why)
typ, data = cmd(m, "SEARCH", "NOT " * 60 + "ALL")
t.like(data[0], "[LIMIT]", "nesting past the limit: BAD [LIMIT]")
typ, data = cmd(m, "NOOP")
t.is_(typ, "OK", "the session goes on")
m.logout()
t.done()
