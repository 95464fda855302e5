#!/usr/bin/env python3
"""
LIST as IMAP4rev2 and LIST-EXTENDED have it (RFC 9051 6.3.9, RFC 5258):
selection options SUBSCRIBED, RECURSIVEMATCH, SPECIAL-USE, REMOTE; return
options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (LIST-STATUS, RFC
5819); several patterns; CREATE with a special use (CREATE-SPECIAL-USE,
RFC 6154).  Expected answers are worked out here from the mailboxes and
subscriptions the test makes, not copied from the server.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t)
t.ok(srv.setup(2), "account alice with two messages in Inbox")
srv.start()
m = srv.session()
caps = m.capability()[1][0].decode().split()
for c in ("LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "CHILDREN"):
    t.ok(c in caps, "capability " + c)

typ, data = imaptest.cmd(m, "CREATE", "Work/Projects/Old")
t.is_(typ, "OK", "CREATE Work/Projects/Old (parents made)")
t.is_(imaptest.cmd(m, "CREATE", "Notes")[0], "OK", "CREATE Notes")
typ, data = imaptest.cmd(m, "CREATE", "Brouillons", "(USE (\\Drafts))")
t.is_(typ, "OK", "CREATE Brouillons (USE (\\Drafts))")
typ, data = imaptest.cmd(m, "CREATE", "Weird", "(USE (\\Nonsense))")
t.is_(typ, "NO", "CREATE with an unknown special use: NO")
t.like(data[0].decode(), "[USEATTR]", "with USEATTR")
t.is_(imaptest.cmd(m, "LIST", '""', "Weird")[0], "OK", "LIST Weird")
t.is_(imaptest.untagged(m, "LIST"), [None] if False else [], "and the refused mailbox was not made")
typ, data = imaptest.cmd(m, "CREATE", "Weird", "(FOO (\\Drafts))")
t.is_(typ, "ERR", "CREATE with a parameter other than USE: BAD")
for name in ("Work/Projects", "Gone/Child"):
    t.is_(imaptest.cmd(m, "SUBSCRIBE", name)[0], "OK", "SUBSCRIBE " + name)

LIST_RE = re.compile(r'^\(([^)]*)\) "/" ("[^"]*"|\S+)( .*)?$')


def listing(*args):
    """Runs LIST args; returns {name: (set of attributes, extended data)}
    and the STATUS lines."""
    typ, data = imaptest.cmd(m, "LIST", *args)
    out = {}
    for line in imaptest.untagged(m, "LIST"):
        mt = LIST_RE.match(line.decode())
        if not mt:
            t.diag("unparsable LIST: %r" % line)
            continue
        out[mt.group(2).strip('"')] = (set(mt.group(1).split()), (mt.group(3) or "").strip())
    return typ, out, [x.decode() for x in imaptest.untagged(m, "STATUS")]


def sql_set(q):
    return {("INBOX" if x == "Inbox" else x) for x in srv.sql(q).split("\n") if x}


# What the store holds (the account's default mailboxes and subscriptions
# included), read from the database, not from IMAP.
names = sql_set("SELECT name FROM gn_mailboxes")
subscribed = sql_set("SELECT name FROM gn_subscriptions")
special = sql_set("SELECT name FROM gn_mailboxes WHERE special_use <> 0")
parents = {n for n in names if any(o.startswith(n + "/") for o in names)}
t.ok({"Work/Projects", "Gone/Child"} <= subscribed and "Brouillons" in special,
     "the store has the subscriptions and the special use made above")

typ, got, _ = listing('""', "*")
t.is_(sorted(got), sorted(names), "LIST \"\" *: every mailbox")
t.ok(all(("\\HasChildren" in got[n][0]) == (n in parents) and
         ("\\HasNoChildren" in got[n][0]) == (n not in parents) for n in names),
     "\\HasChildren and \\HasNoChildren as the hierarchy says")
t.ok("\\Drafts" in got["Brouillons"][0], "the special use shows on Brouillons")

typ, got, _ = listing("(SUBSCRIBED)", '""', "*")
t.is_(sorted(got), sorted(subscribed), "SUBSCRIBED selection: the subscribed names, existing or not")
t.ok(all("\\Subscribed" in got[n][0] for n in got), "each with \\Subscribed")
t.ok("\\NonExistent" in got["Gone/Child"][0] and "\\NonExistent" not in got["Work/Projects"][0],
     "\\NonExistent on the one that does not exist")

typ, got, _ = listing("(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
want = {n for n in names | subscribed if "/" not in n and
        (n in subscribed or any(x.startswith(n + "/") for x in subscribed))}
t.is_(sorted(got), sorted(want),
      "SUBSCRIBED RECURSIVEMATCH with %: top-level names subscribed or with a subscribed child")
t.is_(got.get("Work", (None, ""))[1], '("CHILDINFO" ("SUBSCRIBED"))', "with CHILDINFO (\"SUBSCRIBED\")")

typ, got, _ = listing("(RECURSIVEMATCH)", '""', "*")
t.is_(typ, "ERR", "RECURSIVEMATCH alone: BAD")
typ, got, _ = listing("(NOSUCHOPTION)", '""', "*")
t.is_(typ, "ERR", "an unknown selection option: BAD")

typ, got, _ = listing("(SPECIAL-USE)", '""', "*")
t.is_(sorted(got), sorted(special), "SPECIAL-USE selection: only the mailboxes with a special use")

typ, got, _ = listing('""', "(INBOX Notes)", "RETURN", "(SUBSCRIBED CHILDREN)")
t.is_(sorted(got), ["INBOX", "Notes"], "two patterns: both mailboxes")
typ, got, _ = listing('""', "Work/*", "RETURN", "(SUBSCRIBED)")
t.is_({n for n in got if "\\Subscribed" in got[n][0]}, {n for n in subscribed if n.startswith("Work/")},
      "RETURN (SUBSCRIBED): \\Subscribed on exactly the subscribed one")

typ, got, st = listing('""', "%", "RETURN", "(STATUS (MESSAGES UIDNEXT SIZE))")
t.is_(typ, "OK", "LIST-STATUS: OK")
want_status = sorted(n for n in names if "/" not in n)
t.is_(len(st), len(want_status), "one STATUS per listed mailbox")
inbox = [x.replace('"INBOX"', "INBOX", 1) for x in st if x.startswith("INBOX ") or x.startswith('"INBOX"')]
sizes = [int(x) for x in srv.sql("SELECT m.size FROM gn_messages m JOIN gn_mailboxes b "
                                  "ON b.id = m.mailbox_id WHERE b.name = 'Inbox'").split()]
t.is_(inbox, ["INBOX (MESSAGES 2 UIDNEXT 3 SIZE %d)" % sum(sizes)],
      "INBOX's STATUS in the LIST answer, as STATUS says it")
typ, got, st = listing('""', "%", "RETURN", "(STATUS (NOSUCH))")
t.is_(typ, "ERR", "LIST-STATUS with an unknown item: BAD")
typ, got, _ = listing('""', "*", "FOO", "(CHILDREN)")
t.is_(typ, "ERR", "something other than RETURN after the pattern: BAD")
typ, got, _ = listing('""', '""')
t.is_(list(got), [""], "the separator query still answers the root")
m.logout()
t.done()
