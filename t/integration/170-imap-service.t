#!/usr/bin/env python3
"""
The imap.v1 service (modules/imap/include/gannet/imap.h; issue 8, item 4):
a module (t/modules/imapext) loaded after imap registers commands, a
capability and STATUS items through it; the server dispatches them in the
states given, lists the capability, answers the items, says NO
[SERVERBUG] for a handler that does not answer and NO for an item that
fails.  The module also checks at load that the service refuses what it
must (serve would not start otherwise).  ID, which the imap module itself
registers through the service, works in every state.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402

t = gt.Tap()
ext = os.path.join(gt.BUILDDIR, "t", "modules", "imapext", ".libs", "imapext.so")
if not t.ok(os.path.exists(ext), "the test module is built (%s)" % ext):
    t.done()
srv = imaptest.Server(t)
shutil.copy(ext, os.path.join(srv.moddir, "imapext.so"))
# Load imapext after imap: it looks the service up at register.
conf = open(srv.g.conf_path).read().replace('load = [ "imap" ]', 'load = [ "imap", "imapext" ]')
with open(srv.g.conf_path, "w") as f:
    f.write(conf)
t.ok(srv.setup(1), "account alice")
srv.start()
t.ok(True, "serve starts with imapext: its refusal checks passed at register and start")

for name in ("XWHO", "XSILENT", "ID"):
    imaptest.imaplib.Commands[name] = ("NONAUTH", "AUTH", "SELECTED")
m = imaptest.imaplib.IMAP4_SSL("127.0.0.1", srv.port, ssl_context=srv.ctx)
typ, data = m.capability()
caps = data[0].decode().split()
t.ok("X-GANNET-TEST" not in caps, "the extension's capability is not listed before login")
t.ok("ID" in caps, "ID (registered through imap.v1 by the module itself) is listed before login")
typ, data = imaptest.cmd(m, "XWHO")
t.is_(typ, "ERR", "XWHO before login: BAD (not valid in this state)")
typ, data = m.xatom("ID", '("name" "test client")')
t.is_(typ, "OK", "ID before login")
t.is_(imaptest.untagged(m, "ID"), [b'("name" "Gannet")'], "ID answers the server's name")

m.login("alice@example.com", imaptest.PASSWORD)
typ, data = m.capability()
t.ok("X-GANNET-TEST" in data[0].decode().split(), "logged in: X-GANNET-TEST listed")
typ, data = m.xatom("XWHO", 'atom "a string" NIL (1 2 3)')
t.is_(typ, "OK", "XWHO logged in: OK")
t.is_(imaptest.untagged(m, "XWHO"),
      [b'alice alice@example.com 4 none atom "a string" NIL (3)'],
      "the handler sees the account, the login and each argument")
m.literal = "café".encode()
typ, data = m.xatom("XWHO")
t.is_(imaptest.untagged(m, "XWHO"), [(b"alice alice@example.com 1 none {5}", "café".encode()), b""],
      "append_string sends 8-bit text as a literal, not quoted (IMAP4rev1's QUOTED-CHAR is 7-bit)")
typ, data = m.xatom("XSILENT")
t.is_(typ, "NO", "a handler that answers nothing: NO")
t.like(data[0].decode(), "[SERVERBUG]", "with SERVERBUG")

m.select("INBOX")
typ, data = m.xatom("XWHO")
imaptest.untagged(m, "XWHO")
typ, data = m.xatom("XWHO")
t.like(imaptest.untagged(m, "XWHO")[0].decode(), " selected", "it sees the selected mailbox")
mbid = srv.sql("SELECT id FROM gn_mailboxes WHERE name = 'Inbox'").strip()
typ, data = m.status("INBOX", "(MESSAGES X-MAILBOX-ID)")
t.is_(typ, "OK", "STATUS with the extension's item: OK")
t.like(data[0].decode(), "(MESSAGES 1 X-MAILBOX-ID %s)" % mbid,
       "answered by the extension (the mailbox's store id) next to the server's own")
typ, data = m.status("INBOX", "(x-mailbox-id)")
t.like(data[0].decode(), "X-MAILBOX-ID %s" % mbid, "item names are case-insensitive")
typ, data = m.status("INBOX", "(X-BROKEN)")
t.is_(typ, "NO", "an item whose handler fails: NO")
typ, data = imaptest.cmd(m, "STATUS", "INBOX", "(X-NOSUCH)")
t.is_(typ, "ERR", "an item nobody registered: BAD")
typ, data = m.xatom("XWHO")
t.is_(typ, "OK", "the session goes on")
m.logout()
t.done()
