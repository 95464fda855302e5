#!/usr/bin/env python3
"""
t/integration/161-imap-mailboxes.t: managing mailboxes over IMAP with
Python's imaplib against a running `gannet serve` (issue 8, item 1, the
authenticated state):

- NAMESPACE; LIST "" "" gives the separator; LIST with "*" and "%",
  \\HasChildren / \\HasNoChildren and special-use attributes; INBOX spelled
  so;
- CREATE (parents made, a trailing "/" allowed; NO [ALREADYEXISTS]),
  RENAME (children follow; NO [NONEXISTENT], NO [ALREADYEXISTS]), DELETE
  (NO [CANNOT] for INBOX, NO [NONEXISTENT], NO [HASCHILDREN] while it
  has children);
- names beyond ASCII in modified UTF-7, stored in UTF-8 (what the store
  and `gannet` show), and a name that is not valid modified UTF-7 refused;
- SUBSCRIBE, UNSUBSCRIBE, LSUB;
- STATUS with MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN, DELETED, SIZE, after
  two messages were imported into INBOX; NO [NONEXISTENT] for a mailbox
  that does not exist, BAD for an unknown item.
"""
import imaplib
import os
import re
import shutil
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "modules", "imap", ".libs", "imap.so")
if not os.path.exists(MODULE):
    t.ok(False, "the imap module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "imap.so"))
os.chmod(os.path.join(moddir, "imap.so"), 0o755)

d = gt.tmpdir()
cert, key = gt.make_cert(d, "imap", "mail.test")
tport = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "imaps"; address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "implicit"; }'
              % tport,
    modules='directory = "%s"; load = [ "imap" ];' % moddir,
    extra="""workers = 1;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
""" % (cert, key)), directory=d)

PASSWORD = "correct horse battery"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


mbox = os.path.join(d, "two.mbox")
with open(mbox, "w") as f:
    for i in range(2):
        f.write("From a@example.org Mon Jan  1 10:00:00 2024\nFrom: a@example.org\n"
                "Subject: %d\n\nbody %d\n\n" % (i, i))
setup = [gannet(*a).returncode == 0 for a in
         [("migrate",), ("config", "domain", "add", "example.com"),
          ("config", "account", "add", "alice", "alice@example.com"),
          ("import", "mbox", "alice", mbox)]]
setup.append(gannet("setpassword", "alice", stdin=PASSWORD + "\n").returncode == 0)
t.ok(all(setup), "migrate, an account with a password, two messages in its Inbox")

try:
    g.start(wait_ports=(tport,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", tport, ssl_context=ctx)
t.is_(m.login("alice@example.com", PASSWORD)[0], "OK", "logged in")


def cmd(name, *args):
    """A command through imaplib: (type, data); NO and BAD as data too."""
    try:
        return m._simple_command(name, *args)
    except imaplib.IMAP4.error as e:
        return ("ERR", [str(e)])


def listed(pattern, ref='""'):
    typ, data = m._simple_command("LIST", ref, pattern)
    out = {}
    for ln in m.untagged_responses.pop("LIST", []):
        if ln is None:
            continue
        if isinstance(ln, tuple):   # a literal name
            ln = ln[0] + ln[1]
        mo = re.match(rb'\(([^)]*)\) "/" (.*)$', ln)
        name = mo.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1]
        out[name] = set(mo.group(1).decode().split())
    return typ, out


typ, data = cmd("NAMESPACE")
t.is_((typ, m.untagged_responses.pop("NAMESPACE", None)), ("OK", [b'(("" "/")) NIL NIL']), "NAMESPACE")
typ, data = m._simple_command("LIST", '""', '""')
t.is_(m.untagged_responses.pop("LIST", None), [b'(\\Noselect) "/" ""'], 'LIST "" "": the separator')

for name in ("Projects/2024/Q1", "Work/", "Entw&APw-rfe"):
    typ, _ = cmd("CREATE", name)
    t.is_(typ, "OK", "CREATE %s" % name)
typ, data = cmd("CREATE", "Work")
t.ok("ALREADYEXISTS" in str(data), "CREATE of an existing one: NO [ALREADYEXISTS]")
typ, data = cmd("CREATE", "INBOX")
t.ok("ALREADYEXISTS" in str(data), "CREATE INBOX: NO [ALREADYEXISTS]")
typ, data = cmd("CREATE", "bad&AGE-")
t.ok(typ != "OK" and "CANNOT" in str(data), "a name that is not modified UTF-7: NO [CANNOT]")

# A new account has INBOX and the special-use mailboxes.
DEFAULTS = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
typ, all_ = listed("*")
t.is_(sorted(all_), sorted(DEFAULTS + ["Projects", "Projects/2024", "Projects/2024/Q1", "Work",
                                       "Entw&APw-rfe"]), "LIST *: every mailbox, parents made, INBOX spelled so")
t.ok("\\HasChildren" in all_.get("Projects", set()) and "\\HasNoChildren" in all_.get("Projects/2024/Q1", set()),
     "children attributes")
t.ok("\\Sent" in all_.get("Sent", set()) and "\\Archive" in all_.get("Archive", set()) and
     not any(a.startswith("\\") and a not in ("\\HasChildren", "\\HasNoChildren") for a in all_.get("Projects", set())),
     "special-use attributes where they were set, none elsewhere")
typ, top = listed("%")
t.is_(sorted(top), sorted(DEFAULTS + ["Projects", "Work", "Entw&APw-rfe"]), "LIST %: the top level")
typ, sub = listed("%", ref='"Projects/"')
t.is_(sorted(sub), ["Projects/2024"], "a reference and %: one level below it")
names = gt.cluster().psql("SELECT name FROM gn_mailboxes ORDER BY name", db=g.dbname).split("\n")
t.ok("Entw\u00fcrfe" in names, "the store keeps the name in UTF-8")

typ, _ = cmd("RENAME", "Projects", "Old")
typ2, old = listed("Old*")
t.ok(typ == "OK" and sorted(old) == ["Old", "Old/2024", "Old/2024/Q1"], "RENAME: the children follow")
typ, data = cmd("RENAME", "Nope", "Other")
t.ok("NONEXISTENT" in str(data), "RENAME of a missing mailbox: NO [NONEXISTENT]")
typ, data = cmd("RENAME", "Old", "Work")
t.ok("ALREADYEXISTS" in str(data), "RENAME onto an existing one: NO [ALREADYEXISTS]")
typ, data = cmd("DELETE", "INBOX")
t.ok("CANNOT" in str(data), "DELETE INBOX: NO [CANNOT]")
typ, data = cmd("DELETE", "Nope")
t.ok("NONEXISTENT" in str(data), "DELETE of a missing mailbox: NO [NONEXISTENT]")
typ, data = cmd("DELETE", "Old/2024")
typ2, old = listed("Old*")
t.ok(typ == "NO" and "[HASCHILDREN]" in str(data) and sorted(old) == ["Old", "Old/2024", "Old/2024/Q1"],
     "DELETE of a mailbox with children: NO [HASCHILDREN] (RFC 9051 6.3.4), nothing deleted")
typ, _ = cmd("DELETE", "Old/2024/Q1")
typ2, old = listed("Old*")
t.ok(typ == "OK" and sorted(old) == ["Old", "Old/2024"], "DELETE")
typ, _ = cmd("DELETE", "Old/2024")
typ2, top = listed("%")
t.ok(typ == "OK" and "Old" in top and "Old/2024" not in listed("Old*")[1],
     "then its parent, once it has none: DELETE; LIST \"\" % still has Old")

# A parent that is gone (deleted by another path than IMAP, or made so by
# a race): LIST with "%" still shows the level of hierarchy (RFC 9051
# 6.3.9), \Noselect for IMAP4rev1, \NonExistent for IMAP4rev2; "*" does not.
t.is_(cmd("CREATE", "Tree/Leaf/Deep")[0], "OK", "CREATE Tree/Leaf/Deep")
gt.cluster().psql("DELETE FROM gn_mailboxes WHERE name IN ('Tree', 'Tree/Leaf')", db=g.dbname)
typ, top = listed("%")
t.is_(top.get("Tree"), {"\\Noselect", "\\HasChildren"},
      "LIST \"\" %%: a missing parent is listed \\Noselect \\HasChildren (%s)" % top.get("Tree"))
typ, sub = listed("Tree/%")
t.is_(sub, {"Tree/Leaf": {"\\Noselect", "\\HasChildren"}}, "LIST \"\" Tree/%: the missing level below it")
typ, sub = listed("Tree/Leaf/%")
t.is_(sorted(sub), ["Tree/Leaf/Deep"], "and the one that exists, below that")
typ, every = listed("Tree*")
t.is_(sorted(every), ["Tree/Leaf/Deep"], "LIST \"\" Tree*: only what exists")
typ, _ = m._simple_command("ENABLE", "IMAP4rev2")
m.untagged_responses.pop("ENABLED", None)
typ, top = listed("%")
t.is_(top.get("Tree"), {"\\NonExistent", "\\HasChildren"},
      "after ENABLE IMAP4rev2: \\NonExistent \\HasChildren (%s)" % top.get("Tree"))
t.is_(cmd("DELETE", "Tree/Leaf/Deep")[0], "OK", "DELETE the last one")
typ, top = listed("%")
t.ok("Tree" not in top, "and the missing levels go with it")

t.is_(cmd("SUBSCRIBE", "Work")[0], "OK", "SUBSCRIBE")
t.is_(cmd("SUBSCRIBE", "Entw&APw-rfe")[0], "OK", "SUBSCRIBE a name beyond ASCII")
typ, data = m._simple_command("LSUB", '""', "*")
lsub = m.untagged_responses.pop("LSUB", [])
t.ok(b'() "/" "Entw&APw-rfe"' in lsub and b'() "/" "Work"' in lsub and b'() "/" "INBOX"' in lsub
     and b'() "/" "Old"' not in lsub, "LSUB lists the subscriptions (%d)" % len(lsub))
t.is_(cmd("UNSUBSCRIBE", "Work")[0], "OK", "UNSUBSCRIBE")
typ, data = m._simple_command("LSUB", '""', "W*")
t.is_(m.untagged_responses.pop("LSUB", None), None, "and it is gone")

typ, data = cmd("STATUS", "INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)")
st = m.untagged_responses.pop("STATUS", [b""])[0].decode()
mo = re.match(r'"?INBOX"? \(MESSAGES (\d+) UIDNEXT (\d+) UIDVALIDITY (\d+) UNSEEN (\d+) DELETED (\d+) '
              r'SIZE (\d+) RECENT 0\)$', st)
t.ok(typ == "OK" and mo is not None, "STATUS INBOX with every item (%s)" % st)
if mo:
    t.is_((int(mo.group(1)), int(mo.group(2)), int(mo.group(4)), int(mo.group(5))), (2, 3, 2, 0),
          "2 messages, UIDNEXT 3, 2 unseen, none deleted")
    t.ok(int(mo.group(3)) > 0 and int(mo.group(6)) > 40, "UIDVALIDITY and SIZE")
typ, data = cmd("STATUS", "Nope", "(MESSAGES)")
t.ok("NONEXISTENT" in str(data), "STATUS of a missing mailbox: NO [NONEXISTENT]")
typ, data = cmd("STATUS", "INBOX", "(FROB)")
t.ok(typ != "OK" and "Unknown STATUS item" in str(data), "an unknown item: BAD")

t.is_(m.logout()[0], "BYE", "LOGOUT")
g.stop()
t.done()
