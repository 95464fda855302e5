#!/usr/bin/env python3
"""
t/integration/174-imap-sort.t: SORT, UID SORT, THREAD and UID THREAD
(RFC 5256) with Python's imaplib against a running `gannet serve`.

Messages are appended with headers chosen for every sort key: From, To
and Cc with localparts that differ in case and in characters between the
letters ("_"), several From addresses, missing fields; Dates in other
time zones, a missing Date (the internal date counts), equal dates (the
sequence number decides); subjects with nested Re: [tag] Fwd:, "(fwd)"
trailers, "[fwd: ...]" wrappers, encoded words, empty and missing; and
threads with missing parents, a cycle in References, a duplicate
Message-ID, In-Reply-To alone, a quoted msg-id.  The expected answers
come from the model below, written from RFC 5256 (sections 2.1, 2.2, 3):
every criterion, REVERSE, several criteria; (MODSEQ n) after SORT's
numbers with the MODSEQ key (RFC 7162 3.1.5); both algorithms; the UID
forms (after an expunge, so numbers and UIDs differ); search criteria
that narrow (with a key SEARCH answers by reading messages);
the DISPLAYFROM and DISPLAYTO keys (RFC 5957) with quoted and encoded
display names; and the refusals: BAD for malformed commands, NO [BADCHARSET], and
NO [LIMIT] past imap.sort_limit.
"""
import email.header
import email.utils
import functools
import imaplib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import cmd  # noqa: E402

SORT_LIMIT = 25
t = gt.Tap()
srv = imaptest.Server(t, extra="imap = { sort_limit = %d; };" % SORT_LIMIT)
t.ok(srv.setup(0), "an account")
srv.start()


def epoch(y, mo, d, h=0, mi=0):
    return email.utils.mktime_tz((y, mo, d, h, mi, 0, 0, 0, 0, 0))


# ---- the messages: header fields as sent (None: absent), internal date ----
MSGS = [
    dict(subject="Project plan", frm="Alice <alice@example.org>", to="bob@example.org",
         date="Mon, 01 Jan 2024 10:00:00 +0000", mid="<a1@x.example>", idate=epoch(2024, 2, 1)),
    dict(subject="Re: Project plan", frm="bob@example.org", to="alice@example.org", cc="zed@example.org",
         date="Mon, 01 Jan 2024 11:00:00 +0000", mid="<a2@x.example>", refs="<a1@x.example>",
         idate=epoch(2024, 2, 3)),
    # 09:00 -0800 is 17:00 UTC: after 2's 11:00.
    dict(subject="RE: [plans] Re: Project plan", frm="Zed <Zed@example.org>", to="Carol@example.org",
         cc="alice@example.org", date="Mon, 01 Jan 2024 09:00:00 -0800", mid="<a3@x.example>",
         refs="<a1@x.example>\r\n <a2@x.example>", idate=epoch(2024, 2, 2)),
    # Two replies to a message that is not there: a dummy parent.
    dict(subject="Orphan one", frm="_under@example.org", to="dave@example.org",
         date="Tue, 02 Jan 2024 10:00:00 +0000", mid="<b2@x.example>", refs="<b1@missing.example>",
         idate=epoch(2024, 2, 2)),
    dict(subject="Re: Orphan one", frm="carol@example.org", cc="Bob@example.org",
         date="Tue, 02 Jan 2024 09:00:00 +0000", mid="<b3@x.example>", refs="<b1@missing.example>",
         idate=epoch(2024, 2, 5)),
    # Each refers to the other: the first link made stands.
    dict(subject="Cycle A", frm="alice@example.org", date="Wed, 03 Jan 2024 10:00:00 +0000",
         mid="<c1@x.example>", refs="<c2@x.example>", idate=epoch(2024, 2, 6)),
    dict(subject="Cycle B", frm="alice@example.org", date="Wed, 03 Jan 2024 11:00:00 +0000",
         mid="<c2@x.example>", refs="<c1@x.example>", idate=epoch(2024, 2, 6)),
    # The same Message-ID twice, and the same Date: sequence order.
    dict(subject="Dup first", frm="erin@example.org", date="Thu, 04 Jan 2024 10:00:00 +0000",
         mid="<d1@x.example>", idate=epoch(2024, 2, 7)),
    dict(subject="Dup second", frm="Erin@example.org", date="Thu, 04 Jan 2024 10:00:00 +0000",
         mid="<d1@x.example>", irt="<a1@x.example>", idate=epoch(2024, 2, 7)),
    # In-Reply-To alone: its first id is the parent.
    dict(subject="Re: Project plan", frm="frank@example.org", to="alice@example.org",
         date="Thu, 04 Jan 2024 12:00:00 +0000", mid="<e1@x.example>", irt="<a3@x.example> <zz@x.example>",
         idate=epoch(2024, 2, 8)),
    dict(subject="Lunch", frm="gina@example.org", date="Fri, 05 Jan 2024 10:00:00 +0000",
         mid="<f1@x.example>", idate=epoch(2024, 2, 9)),
    dict(subject="Re: lunch", frm="hank@example.org", date="Fri, 05 Jan 2024 12:00:00 +0000",
         mid="<f2@x.example>", idate=epoch(2024, 2, 9)),
    dict(subject="[fwd: Lunch]", frm="ivan@example.org", date="Fri, 05 Jan 2024 13:00:00 +0000",
         mid="<f3@x.example>", idate=epoch(2024, 2, 10)),
    dict(subject="lunch", frm="judy@example.org", date="Sat, 06 Jan 2024 10:00:00 +0000",
         mid="<f4@x.example>", idate=epoch(2024, 2, 11)),
    # A quoted id-left is the same id as the unquoted one (RFC 5256 3).
    dict(subject="Quoted id", frm="kim@example.org", date="Sun, 07 Jan 2024 10:00:00 +0000",
         mid='<"q1"@x.example>', idate=epoch(2024, 2, 12)),
    dict(subject="Re: Quoted id", frm="lee@example.org", date="Sun, 07 Jan 2024 11:00:00 +0000",
         mid="<q2@x.example>", refs="<q1@x.example>", idate=epoch(2024, 2, 12)),
    # Empty subject; several From addresses (the first counts).
    dict(subject="", frm="yves@example.org, adam@example.org", to="x@example.org, a@example.org",
         date="Mon, 08 Jan 2024 10:00:00 +0000", mid="<g1@x.example>", idate=epoch(2024, 2, 13)),
    # No Subject, no Date (the internal date is the sent date), no
    # Message-ID.
    dict(frm="mia@example.org", idate=epoch(2023, 12, 31, 23)),
    # Encoded words: decoded first, then the base subject.
    dict(subject="=?UTF-8?Q?Re=3A_caf=C3=A9?=", frm="nina@example.org", date="Tue, 09 Jan 2024 10:00:00 +0000",
         mid="<h1@x.example>", idate=epoch(2024, 2, 14)),
    dict(subject="=?ISO-8859-1?Q?caf=E9?= (fwd)", frm="otto@example.org", date="Tue, 09 Jan 2024 09:00:00 +0000",
         mid="<h2@x.example>", idate=epoch(2024, 2, 15)),
    # A blob is no reply: with thread 1's subject, a new dummy parent.
    dict(subject="[list] Project plan", frm="pia@example.org", to="_list@example.org",
         date="Wed, 10 Jan 2024 10:00:00 +0000", mid="<i1@x.example>", idate=epoch(2024, 2, 16)),
    # Display names (RFC 5957): quoted with a comma, encoded.
    dict(subject="Names", frm='"Doe, John" <jd@example.org>', to="=?UTF-8?Q?=C3=89mile?= <emile@example.org>",
         date="Thu, 11 Jan 2024 10:00:00 +0000", mid="<j1@x.example>", idate=epoch(2024, 2, 17)),
    dict(subject="More names", frm="=?ISO-8859-1?Q?B=E4r?= <baer@example.org>", to='"" <zoe@Example.ORG>',
         date="Fri, 12 Jan 2024 10:00:00 +0000", mid="<j2@x.example>", idate=epoch(2024, 2, 18)),
]


def raw_message(i, m):
    h = []
    for name, key in (("From", "frm"), ("To", "to"), ("Cc", "cc"), ("Subject", "subject"), ("Date", "date"),
                      ("Message-ID", "mid"), ("References", "refs"), ("In-Reply-To", "irt")):
        if m.get(key) is not None:
            h.append("%s: %s" % (name, m[key]))
    h.append("Content-Type: text/plain; charset=utf-8")
    # Sizes differ, but two pairs are equal (sequence order decides).
    body = "body %d\r\n" % i + "x" * ((i * 37) % 200 if i not in (4, 12) else 50) + "\r\n"
    return ("\r\n".join(h) + "\r\n\r\n" + body).encode()


# ---- the model (RFC 5256) ----

def casemap(s):
    """i;ascii-casemap (RFC 4790 9.2): ASCII letters to upper case, then octets."""
    return s.encode().upper()


BLOB = r"\[[^\[\]]*\][ \t]*"
LEADER = re.compile(r"(?:%s)*(?:re|fwd?)[ \t]*(?:%s)?:" % (BLOB, BLOB), re.I)


def base_subject(s):
    """RFC 2.1 steps 1 to 7 on a decoded subject; and whether it is a reply or forward."""
    s = re.sub(r" +", " ", re.sub(r"[\t\r\n]", " ", s))
    refwd = False
    while True:
        while True:                                     # (2)
            if s[-1:] in (" ", "\t") and s:
                s = s[:-1]
            elif s.lower().endswith("(fwd)"):
                s, refwd = s[:-5], True
            else:
                break
        while True:                                     # (3), (4), (5)
            if s[:1] in (" ", "\t") and s:
                s = s[1:]
                continue
            m = LEADER.match(s)
            if m:
                s, refwd = s[m.end():], True
                continue
            m = re.match(BLOB, s)
            if m and s[m.end():]:
                s = s[m.end():]
                continue
            break
        if len(s) >= 6 and s.lower().startswith("[fwd:") and s.endswith("]"):   # (6)
            s, refwd = s[5:-1], True
            continue
        return s, refwd


def decoded(raw):
    return str(email.header.make_header(email.header.decode_header(raw))) if raw is not None else ""


def display(raw):
    """RFC 5957 3: the first address's display name decoded, else its addr-spec."""
    if raw is None:
        return ""
    addrs = email.utils.getaddresses([raw])
    if not addrs:
        return ""
    name = decoded(addrs[0][0])
    return name if name else addrs[0][1]


def mailbox(raw):
    """addr-mailbox of the first address: its localpart."""
    if raw is None:
        return ""
    addrs = email.utils.getaddresses([raw])
    return addrs[0][1].rsplit("@", 1)[0] if addrs else ""


MSGID = re.compile(r'<("(?:[^"\\]|\\.)+"|[A-Za-z0-9!#$%&\'*+/=?^_`{|}~.-]+)@'
                   r'([A-Za-z0-9!#$%&\'*+/=?^_`{|}~.-]+|\[[^\[\]\\ ]*\])>')


def msgids(field):
    out = []
    for m in MSGID.finditer(field or ""):
        left = m.group(1)
        if left.startswith('"'):
            left = re.sub(r"\\(.)", r"\1", left[1:-1])
        out.append(left + "@" + m.group(2))
    return out


class Msg:
    def __init__(self, msn, uid, m, raw):
        self.msn, self.uid, self.num = msn, uid, msn
        self.base, self.refwd = base_subject(decoded(m.get("subject")))
        self.arrival = m["idate"]
        d = m.get("date")
        self.sent = email.utils.mktime_tz(email.utils.parsedate_tz(d)) if d else m["idate"]
        self.size = len(raw)
        self.frm, self.to, self.cc = mailbox(m.get("frm")), mailbox(m.get("to")), mailbox(m.get("cc"))
        self.dfrom, self.dto = display(m.get("frm")), display(m.get("to"))
        self.mid, self.refs, self.irt = m.get("mid"), m.get("refs"), m.get("irt")


def model_sort(msgs, criteria):
    """criteria: "REVERSE DATE SUBJECT" and the like."""
    words = criteria.split()
    crit = []
    while words:
        rev = words[0] == "REVERSE"
        if rev:
            words.pop(0)
        crit.append((rev, words.pop(0)))

    def value(m, key):
        return {"ARRIVAL": m.arrival, "DATE": m.sent, "SIZE": m.size, "SUBJECT": casemap(m.base),
                "FROM": casemap(m.frm), "TO": casemap(m.to), "CC": casemap(m.cc),
                "DISPLAYFROM": casemap(m.dfrom), "DISPLAYTO": casemap(m.dto)}[key]

    def cmp(a, b):
        for rev, key in crit:
            x, y = value(a, key), value(b, key)
            if x != y:
                r = -1 if x < y else 1
                return -r if rev else r
        return a.msn - b.msn
    return " ".join(str(m.num) for m in sorted(msgs, key=functools.cmp_to_key(cmp)))


def fmt_thread(node):
    """A thread-list's inside (RFC 5256 5: thread-members, thread-nested)."""
    head = [str(node.msg.num)] if node.msg else []
    if len(node.children) == 1:
        return " ".join(head + [fmt_thread(node.children[0])])
    if len(node.children) > 1:
        return " ".join(head + ["".join("(%s)" % fmt_thread(c) for c in node.children)])
    return " ".join(head)


class Node:
    def __init__(self, msg=None):
        self.msg, self.parent, self.children = msg, None, []


def model_orderedsubject(msgs):
    groups = {}
    for m in sorted(msgs, key=lambda m: (casemap(m.base), m.sent, m.msn)):
        groups.setdefault(casemap(m.base), []).append(m)
    roots = []
    for g in sorted(groups.values(), key=lambda g: (g[0].sent, g[0].msn)):
        n = Node(g[0])
        n.children = [Node(m) for m in g[1:]]
        roots.append(n)
    return "".join("(%s)" % fmt_thread(n) for n in roots)


def model_references(msgs):
    table, dummies, nodes = {}, [], []
    for m in msgs:
        n = Node(m)
        nodes.append(n)
        ids = msgids(m.mid)
        if ids and ids[0] not in table:
            table[ids[0]] = n

    def get(i):
        if i not in table:
            table[i] = Node()
            dummies.append(table[i])
        return table[i]

    def loops(p, c):
        while p is not None:
            if p is c:
                return True
            p = p.parent
        return False

    def link(p, c):
        c.parent = p
        p.children.append(c)

    for n in nodes:                                     # (1)
        refs = msgids(n.msg.refs) or msgids(n.msg.irt)[:1]
        for a, b in zip(refs, refs[1:]):
            p, c = get(a), get(b)
            if c.parent is None and not loops(p, c):
                link(p, c)
        if n.parent is not None:
            n.parent.children.remove(n)
            n.parent = None
        if refs and not loops(get(refs[-1]), n):
            link(get(refs[-1]), n)
    root = [n for n in nodes + dummies if n.parent is None]  # (2)

    def prune(children, at_root):                       # (3)
        out = []
        for c in children:
            c.children = prune(c.children, False)
            if c.msg is None and not c.children:
                continue
            if c.msg is None and (not at_root or len(c.children) == 1):
                out.extend(c.children)
                continue
            out.append(c)
        return out
    root = prune(root, True)

    def key(n):
        m = n.msg or n.children[0].msg
        return (m.sent, m.msn)
    for n in root:                                      # (4)
        if n.msg is None:
            n.children.sort(key=key)
    root.sort(key=key)

    def subject(n):
        return casemap((n.msg or n.children[0].msg).base)
    subjects = {}
    for n in root:                                      # (5.B)
        s = subject(n)
        if not s:
            continue
        cur = subjects.get(s)
        if cur is None or (cur.msg is not None and (n.msg is None or (cur.msg.refwd and not n.msg.refwd))):
            subjects[s] = n
    for n in list(root):                                # (5.C)
        s = subject(n)
        if not s or subjects[s] is n:
            continue
        cur = subjects[s]
        root.remove(n)
        if cur.msg is None and n.msg is None:
            cur.children.extend(n.children)
        elif cur.msg is None or (n.msg.refwd and not cur.msg.refwd):
            cur.children.append(n)
        else:
            d = Node()
            d.children = [cur, n]
            root[root.index(cur)] = d
            subjects[s] = d

    def sort_all(children):                             # (6)
        for c in children:
            sort_all(c.children)
        children.sort(key=key)
    sort_all(root)
    return "".join("(%s)" % fmt_thread(n) for n in root)


# ---- the server ----

m = srv.session()
for i, msg in enumerate(MSGS, 1):
    typ, _ = m.append("INBOX", None, imaplib.Time2Internaldate(msg["idate"]), raw_message(i, msg))
    if typ != "OK":
        t.ok(False, "APPEND message %d" % i)
model = [Msg(i, i, msg, raw_message(i, msg)) for i, msg in enumerate(MSGS, 1)]
t.is_(m.select("INBOX")[1], [str(len(MSGS)).encode()], "%d messages appended" % len(MSGS))

typ, caps = m.capability()
for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"):
    t.ok(cap in caps[0].decode().split(), "CAPABILITY has %s" % cap)

# The model's own inputs, checked once against what the server stored:
# sizes as FETCH says, so a model slip does not pass for a server bug.
typ, data = m.fetch("1:*", "(RFC822.SIZE)")
sizes = [int(re.search(rb"RFC822\.SIZE (\d+)", d).group(1)) for d in data]
t.is_(sizes, [x.size for x in model], "the model's sizes are the stored ones")
t.is_([x.base for x in model][16:20], ["", "", "caf\u00e9", "caf\u00e9"],
      "the model: empty, missing and encoded subjects")
t.is_([(x.dfrom, x.dto) for x in model][21:23], [("Doe, John", "\u00c9mile"), ("B\u00e4r", "zoe@Example.ORG")],
      "the model: display names")


def sort_of(typ_data):
    typ, data = typ_data
    return typ, (data[0] or b"").decode()


for crit in ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "REVERSE DATE", "REVERSE SIZE",
             "SUBJECT DATE", "REVERSE SUBJECT REVERSE DATE", "FROM REVERSE ARRIVAL", "CC TO SIZE",
             "REVERSE FROM SUBJECT", "TO REVERSE CC", "DISPLAYFROM", "DISPLAYTO", "REVERSE DISPLAYFROM SIZE",
             "DISPLAYTO DISPLAYFROM"):
    t.is_(sort_of(m.sort("(%s)" % crit, "UTF-8", "ALL")), ("OK", model_sort(model, crit)), "SORT (%s)" % crit)

t.is_(sort_of(m.sort("(DATE)", "US-ASCII", "ALL")), ("OK", model_sort(model, "DATE")), "charset US-ASCII")
t.is_(sort_of(m.sort("(date)", "utf-8", "ALL")), ("OK", model_sort(model, "DATE")), "keys in lower case")

# Search criteria narrow first: a column key, a key that reads messages.
for keys in (("SUBJECT", "lunch"), ("TO", "alice"), ("NOT", "FROM", "alice", "SINCE", "3-Jan-2024")):
    typ, data = m.search(None, *keys)
    subset = [model[int(x) - 1] for x in data[0].split()]
    t.ok(len(subset) > 1, "SEARCH %s finds %d messages" % (" ".join(keys), len(subset)))
    t.is_(sort_of(m.sort("(REVERSE SUBJECT)", "UTF-8", *keys)), ("OK", model_sort(subset, "REVERSE SUBJECT")),
          "SORT with search criteria %s" % " ".join(keys))
    t.is_(sort_of(m.thread("REFERENCES", "UTF-8", *keys)), ("OK", model_references(subset)),
          "THREAD REFERENCES with search criteria %s" % " ".join(keys))
t.is_(sort_of(m.sort("(DATE)", "UTF-8", "SUBJECT", "nothing-matches")), ("OK", ""),
      "nothing found: an empty * SORT")

# RFC 7162 3.1.5: with the MODSEQ key, SORT ends with the highest modseq
# of the messages found (sort-data's search-sort-mod-seq).
m.store("5,3", "+FLAGS", "(\\Flagged)")
last = int(srv.sql("SELECT max(modseq) FROM gn_messages"))
t.is_(sort_of(m.sort("(DATE)", "UTF-8", "MODSEQ", str(last))),
      ("OK", "%s (MODSEQ %d)" % (model_sort([model[2], model[4]], "DATE"), last)),
      "SORT with MODSEQ: (MODSEQ highest) after the numbers")
t.is_(sort_of(m.sort("(DATE)", "UTF-8", "MODSEQ", str(last + 1))), ("OK", ""),
      "MODSEQ past the highest: nothing, and no (MODSEQ)")
t.is_(sort_of(m.thread("REFERENCES", "UTF-8", "MODSEQ", str(last))),
      ("OK", model_references([model[2], model[4]])), "THREAD with MODSEQ: no modseq in its answer")

t.is_(sort_of(m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")), ("OK", model_orderedsubject(model)),
      "THREAD ORDEREDSUBJECT")
refs = model_references(model)
t.is_(sort_of(m.thread("REFERENCES", "UTF-8", "ALL")), ("OK", refs), "THREAD REFERENCES")
# What the model says, spelled out, so that a wrong model shows too:
# the orphans under a dummy (5 is older), the cycle's first link (6 under
# 7: 7's link to 6 would loop), the duplicate id under 1 by its
# In-Reply-To, 10 under 3, the quoted id, the lunch and cafe dummies, 21
# beside thread 1 under a dummy.
for part in ("((5)(4))", "(7 6)", "(15 16)", "((11 (12)(13))(14))", "((20)(19))", "(1 (2 3 10)(9))(21))"):
    t.like(refs, part, "THREAD REFERENCES has %s" % part)

# ---- UID forms: numbers and UIDs differ after an expunge ----
m.store("1", "+FLAGS", "(\\Deleted)")
m.expunge()
model = model[1:]
for x in model:
    x.msn -= 1
for x in model:
    x.num = x.msn
t.is_(sort_of(m.sort("(SUBJECT)", "UTF-8", "ALL")), ("OK", model_sort(model, "SUBJECT")),
      "SORT after an expunge: sequence numbers")
t.is_(sort_of(m.thread("REFERENCES", "UTF-8", "ALL")), ("OK", model_references(model)),
      "THREAD after an expunge: sequence numbers")
for x in model:
    x.num = x.uid
t.is_(sort_of(m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")), ("OK", model_sort(model, "SUBJECT")),
      "UID SORT: UIDs")
t.is_(sort_of(m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "UID", "5:12")),
      ("OK", model_sort([x for x in model if 5 <= x.uid <= 12], "REVERSE ARRIVAL")),
      "UID SORT with UID criteria")
t.is_(sort_of(m.uid("THREAD", "REFERENCES", "UTF-8", "ALL")), ("OK", model_references(model)),
      "UID THREAD REFERENCES")
t.is_(sort_of(m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")), ("OK", model_orderedsubject(model)),
      "UID THREAD ORDEREDSUBJECT")

# ---- refusals ----
for args, want, name in (
        (("SORT", "(FOO)", "UTF-8", "ALL"), "BAD", "an unknown sort key"),
        (("SORT", "()", "UTF-8", "ALL"), "BAD", "no sort key"),
        (("SORT", "(REVERSE)", "UTF-8", "ALL"), "BAD", "REVERSE without a key"),
        (("SORT", "(REVERSE REVERSE DATE)", "UTF-8", "ALL"), "BAD", "REVERSE twice"),
        (("SORT", "DATE", "UTF-8", "ALL"), "BAD", "criteria not in a list"),
        (("SORT", "(DATE)", "UTF-8"), "BAD", "no search criteria"),
        (("SORT", "(DATE)"), "BAD", "no charset"),
        (("SORT", "(DATE)", "UTF-8", "FROB"), "BAD", "a bad search key"),
        (("SORT", "(" + " ".join(["DATE"] * 40) + ")", "UTF-8", "ALL"), "BAD", "too many criteria"),
        (("THREAD", "FOO", "UTF-8", "ALL"), "BAD", "an unknown threading algorithm"),
        (("THREAD",), "BAD", "THREAD without arguments"),
        (("THREAD", "REFERENCES", "UTF-8"), "BAD", "THREAD without search criteria")):
    typ, data = cmd(m, *args)
    t.ok(typ == "ERR" and "BAD" in data[0], "%s: BAD (%s)" % (name, data[0]))
typ, data = cmd(m, "SORT", "(" + " ".join(["DATE"] * 40) + ")", "UTF-8", "ALL")
t.like(data[0], "[LIMIT]", "too many criteria: BAD [LIMIT]")
typ, data = m.sort("(DATE)", "KOI8-R", "ALL")
t.ok(typ == "NO" and b"[BADCHARSET (UTF-8 US-ASCII)]" in data[0], "an unknown charset: NO [BADCHARSET]")
typ, data = m.thread("REFERENCES", "KOI8-R", "ALL")
t.ok(typ == "NO" and b"[BADCHARSET" in data[0], "THREAD, an unknown charset: NO [BADCHARSET]")

# ---- imap.sort_limit ----
for i in range(SORT_LIMIT + 1 - len(model)):
    m.append("INBOX", None, None, b"Subject: more\r\n\r\nmore\r\n")
m.select("INBOX")
typ, data = m.sort("(DATE)", "UTF-8", "ALL")
t.ok(typ == "NO" and b"[LIMIT]" in data[0], "SORT of %d messages, past imap.sort_limit: NO [LIMIT] (%s)"
     % (SORT_LIMIT + 1, data))
typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
t.ok(typ == "NO" and b"[LIMIT]" in data[0], "THREAD past imap.sort_limit: NO [LIMIT]")
t.like(srv.g.log(), "event=sort_limit", "and a log line says so")
typ, data = m.sort("(DATE)", "UTF-8", "2:%d" % SORT_LIMIT)
t.is_(typ, "OK", "narrowed to the limit, SORT answers")

m.logout()
srv.g.stop()
t.done()
