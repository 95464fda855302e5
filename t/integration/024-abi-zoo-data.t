#!/usr/bin/env python3
"""
t/integration/024-abi-zoo-data.t: a module built against the frozen ABI 1.0
headers (t/abi/zoo_data.c) uses the data API against a real PostgreSQL:
its migration is applied by `gannet migrate`; `gannet zoo data ACCOUNT`
reads domains, the account, its addresses, mailboxes and messages through
the store's accessors and lists of handles, a message's MIME structure
from its JSON text and its From field through the address header parser,
and writes and reads its own table through struct gn_db_result.  Once
1.0 is released, a core that breaks any of these for modules built
against it fails here.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
so = os.path.join(gt.BUILDDIR, "t", "abi", ".libs", "zoo_data.so")
if not t.ok(os.path.exists(so), "the zoo module zoo_data is built (%s)" % so):
    t.done()
d = gt.tmpdir()
moddir = os.path.join(d, "modules")
os.mkdir(moddir)
shutil.copy(so, moddir)
os.chmod(os.path.join(moddir, "zoo_data.so"), 0o755)
ENV = dict(os.environ, GANNET_MODULE_DIR=moddir)

cl = gt.cluster()
db = cl.create_db("zoodata")
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf(modules='load = [ "zoo_data" ];')
            .replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def g(*args, want=0, name=None):
    r = gt.run_gannet(["-c", conf] + list(args), env=ENV)
    if name is not None:
        t.is_(r.returncode, want, name)
    if r.returncode != want:
        t.diag("gannet %s: rc %d\nstdout: %s\nstderr: %s" % (" ".join(args), r.returncode,
                                                             r.stdout, r.stderr))
    return r


g("migrate", name="gannet migrate with zoo_data loaded")
t.is_(cl.psql("SELECT version FROM gn_schema_migrations WHERE module = 'zoo_data'", db), "1",
      "the module's own migration is applied and recorded")
g("config", "domain", "add", "Bücher.example", name="a domain")
g("config", "account", "add", "kim", "kim@bücher.example", "Kim", name="an account")
MBOX = (b"From alice@example.com Mon Jan  1 10:00:00 2024\n"
        b"From: =?UTF-8?Q?Al=C3=AFce?= <alice@example.com>\n"
        b"To: kim@xn--bcher-kva.example\n"
        b"Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\n"
        b"Content-Type: multipart/mixed; boundary=b\n"
        b"\n"
        b"--b\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"hello\n"
        b"--b\n"
        b"Content-Type: application/octet-stream\n"
        b"\n"
        b"AAAA\n"
        b"--b--\n")
mbox = os.path.join(d, "in.mbox")
with open(mbox, "wb") as f:
    f.write(MBOX)
os.chmod(d, 0o755)
os.chmod(mbox, 0o644)
g("import", "mbox", "kim", mbox, name="a message imported into Inbox")

r = g("zoo", "data", "kim", name="gannet zoo data runs the zoo module's command")
out = r.stdout.splitlines()
t.ok("domain xn--bcher-kva.example bücher.example" in out,
     "domains through the list of handles and their accessors")
t.ok("account kim full_name=Kim" in out, "the account through its accessors")
t.ok("address kim@xn--bcher-kva.example" in out, "its address")
t.ok("mailbox Inbox messages=1 unseen=1 uidnext=2" in out, "its mailboxes with their status")
msg = [line for line in out if line.startswith("message ")]
t.is_(len(msg), 1, "the message list")
t.like(msg[0] if msg else "", "message 1 size=", "with the message's UID and size")
t.like(msg[0] if msg else "", "subject=grüße", "and its decoded subject")
t.ok("mime multipart/mixed parts=2" in out, "the MIME structure read back from its JSON text")
t.ok("from Alïce <alice@example.com>" in out,
     "the From field through the address header parser's items")
t.ok("inserted 1" in out, "a row written to the module's own table")
t.ok("notes 1 last=kim" in out, "and read back in text form, a column found by name")
t.ok("bytes 2 00ff" in out, "and in binary form")
r = g("zoo", "data", "kim")
t.ok("notes 2 last=kim" in r.stdout.splitlines(), "a second run sees both rows")
r = g("zoo", "data", "nobody", want=1, name="an unknown account fails")
t.like(r.stderr, "zoo data: no such account", "saying so")
t.done()
