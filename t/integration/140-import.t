#!/usr/bin/env python3
"""
t/integration/140-import.t: `gannet import mbox|maildir` and `gannet export
maildir` through the CLI, against a real PostgreSQL.

An account is made with `gannet config domain add` / `config account add`.
An mboxrd file (with quoted >From lines and a misleading Content-Length)
and a maildir (cur/ and new/, flags in the file names, keywords through
dovecot-keywords) made here are imported; the store is checked with SQL
(counts, flags, keywords, internal dates, CRLF bodies) and with an export
to maildir: the same messages byte for byte, the same flags and keywords.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
cl = gt.cluster()
db = cl.create_db("import")
d = gt.tmpdir()
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def g(*args, want=0, name=None):
    r = gt.run_gannet(["-c", conf] + list(args))
    if name is not None:
        t.is_(r.returncode, want, name)
    if r.returncode != want:
        t.diag("gannet %s: rc %d\nstdout: %s\nstderr: %s" % (" ".join(args), r.returncode,
                                                             r.stdout, r.stderr))
    return r


def sql(q):
    return cl.psql(q, db)


g("migrate", name="migrate")
g("config", "domain", "add", "example.com", name="domain added")
g("config", "account", "add", "alice", "alice@example.com", name="account added")
acct = sql("SELECT id FROM gn_accounts WHERE name = 'alice'")

# ---- mbox ----
msgs = [
    b"From: a@example.org\nSubject: one\nContent-Length: 2\n\nfirst body\n"
    b"From the start of a line, quoted in the mbox\n>From already quoted once\n",
    b"From: b@example.org\nSubject: two\n\nsecond\n\n\nwith empty lines at the end\n\n",
    b"From: c@example.org\nSubject: three\n\nno final newline",
]


def mboxrd_quote(m):
    out = []
    for line in m.split(b"\n"):
        s = line.lstrip(b">")
        out.append(b">" + line if s.startswith(b"From ") else line)
    return b"\n".join(out)


mbox = os.path.join(d, "in.mbox")
with open(mbox, "wb") as f:
    for i, m in enumerate(msgs):
        f.write(b"From sender@example.org Mon Jan  %d 10:00:00 2024\n" % (i + 1))
        body = mboxrd_quote(m)
        f.write(body if body.endswith(b"\n") else body + b"\n")
        f.write(b"\n")
# The last message had no final newline: the mbox writer added one, which
# the reader cannot tell from content.
msgs[2] += b"\n"

r = g("import", "mbox", "alice", mbox, name="import mbox exits 0")
t.like(r.stdout, "imported 3 messages", "it says how many it imported")
inbox = sql("SELECT id FROM gn_mailboxes WHERE account_id = %s AND name = 'Inbox'" % acct)
t.is_(sql("SELECT count(*) FROM gn_messages WHERE mailbox_id = %s" % inbox), "3",
      "three messages in Inbox")
t.is_(sql("SELECT string_agg(extract(epoch FROM internal_date)::bigint::text, ',' ORDER BY uid)"
          " FROM gn_messages WHERE mailbox_id = %s" % inbox),
      "1704103200,1704189600,1704276000", "internal dates from the From_ lines")
sizes = sql("SELECT string_agg(size::text, ',' ORDER BY uid) FROM gn_messages WHERE mailbox_id = %s"
            % inbox)
t.is_(sizes, ",".join(str(len(m.replace(b"\n", b"\r\n"))) for m in msgs),
      "stored with CRLF line endings, >From unquoted, sizes exact")

# ---- maildir ----
md = os.path.join(d, "maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, sub))
files = {
    "cur/1700000001.M1P1.host,S=40:2,FRS": (b"Subject: m1\n\nflagged answered seen\n", 1700000001),
    "cur/1700000002.M2P1.host:2,STac": (b"Subject: m2\n\nseen deleted, keywords a c\n", 1700000002),
    "cur/1700000003.M3P1.host:2,D": (b"Subject: m3\n\ndraft\n", 1700000003),
    "new/1700000004.M4P1.host": (b"Subject: m4\n\nnew, no flags\n", 1700000004),
    "tmp/1700000005.M5P1.host": (b"Subject: m5\n\nin tmp: not imported\n", 1700000005),
}
for name, (content, mtime) in files.items():
    p = os.path.join(md, name)
    with open(p, "wb") as f:
        f.write(content)
    os.utime(p, (mtime, mtime))
with open(os.path.join(md, "dovecot-keywords"), "w") as f:
    f.write("0 $Forwarded\n1 unused\n2 Project-X\n")

r = g("import", "maildir", "alice", md, "Imported/Old", name="import maildir into a new mailbox exits 0")
t.like(r.stdout, "imported 4 messages", "four messages (tmp/ skipped)")
imp = sql("SELECT id FROM gn_mailboxes WHERE account_id = %s AND name = 'Imported/Old'" % acct)
t.ok(imp != "", "the mailbox Imported/Old was created")
rows = sql("SELECT string_agg(flags::text || ':' || array_to_string(keywords, '+'), ',' ORDER BY uid)"
           " FROM gn_messages WHERE mailbox_id = %s" % (imp or 0))
# Seen 1, Answered 2, Flagged 4, Deleted 8, Draft 16.
t.is_(rows, "7:,9:$Forwarded+Project-X,16:,0:",
      "flags from the file names, keywords from dovecot-keywords, in mtime order")
t.is_(sql("SELECT string_agg(extract(epoch FROM internal_date)::bigint::text, ',' ORDER BY uid)"
          " FROM gn_messages WHERE mailbox_id = %s" % (imp or 0)),
      "1700000001,1700000002,1700000003,1700000004", "internal dates from the mtimes")
t.is_(sql("SELECT messages || ' ' || unseen || ' ' || deleted FROM gn_mailboxes WHERE id = %s"
          % (imp or 0)), "4 2 1", "mailbox counters: 4 messages, 2 unseen, 1 deleted")

# ---- export ----
out = os.path.join(d, "export")
r = g("export", "maildir", "alice", out, name="export maildir exits 0")
t.like(r.stdout, "exported 7 messages", "all seven messages exported")


def read_maildir(path):
    """{content: (flags letters, keyword names, mtime)} of cur/ and new/."""
    kw = {}
    kp = os.path.join(path, "dovecot-keywords")
    if os.path.exists(kp):
        for line in open(kp):
            n, name = line.rstrip("\n").split(" ", 1)
            kw[chr(ord("a") + int(n))] = name
    res = {}
    for sub in ("cur", "new"):
        for name in sorted(os.listdir(os.path.join(path, sub))):
            p = os.path.join(path, sub, name)
            info = name.split(":2,", 1)[1] if ":2," in name else ""
            flags = "".join(sorted(c for c in info if c.isupper() and c != "P"))
            kws = sorted(kw.get(c, "?") for c in info if c.islower())
            res[open(p, "rb").read()] = (flags, kws, int(os.stat(p).st_mtime))
    return res


orig = {}
for name, (content, mtime) in files.items():
    if name.startswith("tmp/"):
        continue
    orig[content] = read_maildir(md)[content]
exp_md = read_maildir(os.path.join(out, ".Imported.Old"))
t.is_(sorted(exp_md.keys()), sorted(orig.keys()), "maildir round trip: the same messages byte for byte")
t.is_(exp_md, orig, "the same flags, keywords and dates")
exp_inbox = read_maildir(out)
t.is_(sorted(exp_inbox.keys()), sorted(msgs), "the mbox messages come back byte for byte in Inbox")
t.ok(all(v[0] == "" for v in exp_inbox.values()), "without flags")
t.ok(os.path.isdir(os.path.join(out, ".Sent", "cur")), "empty mailboxes are exported as folders too")

# A second import of the export gives the same flags (a full round trip).
g("config", "account", "add", "bob", "bob@example.com")
r = g("import", "maildir", "bob", os.path.join(out, ".Imported.Old"), name="re-import the exported maildir")
bob = sql("SELECT id FROM gn_accounts WHERE name = 'bob'")
t.is_(sql("SELECT string_agg(flags::text || ':' || array_to_string(keywords, '+'), ',' ORDER BY uid)"
          " FROM gn_messages WHERE account_id = %s" % bob), rows, "the same flags and keywords again")

# CRLF files are not doubled: their size stays.
crlf = os.path.join(d, "crlf")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(crlf, sub))
content = b"Subject: crlf\r\n\r\nline one\r\nbare LF\nend\r\n"
with open(os.path.join(crlf, "cur", "1.x.host:2,S"), "wb") as f:
    f.write(content)
g("import", "maildir", "bob", crlf, "CRLF", name="import a maildir with CRLF files")
t.is_(sql("SELECT m.size FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id"
          " WHERE b.account_id = %s AND b.name = 'CRLF'" % bob), str(len(content) + 1),
      "CRLF kept as is, a bare LF made CRLF")

# ---- errors ----
r = g("import", "mbox", "nobody", mbox, want=1, name="unknown account: exit 1")
t.like(r.stderr, "unknown account: nobody", "the error names the account")
r = g("import", "mbox", "alice", os.path.join(d, "missing.mbox"), want=1, name="missing file: exit 1")
t.like(r.stderr, "missing.mbox", "the error names the file")
r = g("import", "maildir", "alice", d, want=1, name="a directory that is no maildir: exit 1")
t.like(r.stderr, "not a maildir", "saying so")
r = g("import", "mbox", "alice", want=2, name="missing arguments: exit 2")
r = g("export", "maildir", "nobody", out, want=1, name="export of an unknown account: exit 1")
t.is_(sql("SELECT count(*) FROM gn_messages WHERE account_id = %s" % acct), "7",
      "failed commands stored nothing")

t.done()
