#!/usr/bin/env python3
"""
t/integration/269-quota-unloaded.t: without the quota module in the
config nothing is limited and nothing else changes (issue 11, item 3).
One database, served first with the quota module and then without it:

- with it: alice's 10K limit refuses a 20000-byte message (452 4.2.2);
- without it: CAPABILITY is the same list without QUOTA,
  QUOTA=RES-STORAGE and QUOTA=RES-MESSAGE; GETQUOTA, GETQUOTAROOT and
  SETQUOTA are unknown commands (BAD), STATUS (DELETED-STORAGE) an
  unknown item (BAD); the EHLO reply is the same; the 20000-byte message
  is stored, and APPEND and COPY past the old limit succeed;
  `gannet config account quota` is not a command.
"""
import imaplib
import os
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import quotatest  # noqa: E402
from quotatest import message  # noqa: E402

t = gt.Tap()
QUOTA_CAPS = ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"]


def ehlo(srv):
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as s:
        code, text = s.ehlo("client.example.org")
    return code, text.decode().splitlines()[1:]


def capabilities(srv):
    m = srv.session("alice")
    typ, data = m.capability()
    m.logout()
    return data[0].decode().split()


# ---- with the module ----
srv = quotatest.Server(t, quota="warn_percent = 0;")
t.ok(srv.setup(), "migrate, domain, accounts alice and bob")
t.ok(srv.gannet("config", "account", "quota", "alice", "10K")[0] == 0, "alice: 10K")
srv.start()
caps_with = capabilities(srv)
ehlo_with = ehlo(srv)
t.ok(all(c in caps_with for c in QUOTA_CAPS), "with the module: QUOTA advertised")
r = srv.send(["alice@example.com"], size=20000)
t.is_(getattr(r, "smtp_code", None), 452, "with the module: 20000 bytes to alice, 452")
srv.g.stop()

# ---- without it, on the same database ----
srv2 = quotatest.Server(t, quota=None, db=srv.g.dbname)
srv2.start()
caps_without = capabilities(srv2)
t.is_(caps_without, [c for c in caps_with if c not in QUOTA_CAPS],
      "without the module: the same capabilities, less QUOTA's three")
t.is_(ehlo(srv2), ehlo_with, "the same EHLO reply")
m = srv2.session("alice")
for cmd, args in (("GETQUOTA", ('""',)), ("GETQUOTAROOT", ("INBOX",)), ("SETQUOTA", ('""', "(STORAGE 1)"))):
    imaplib.Commands.setdefault(cmd, ("AUTH", "SELECTED"))
    try:
        typ, data = m._simple_command(cmd, *args)
        got = (typ, data)
    except imaplib.IMAP4.error as e:
        got = ("BAD", str(e))
    t.is_(got[0], "BAD", "%s: BAD, an unknown command (%s)" % (cmd, got[1]))
try:
    typ, data = m.status("INBOX", "(DELETED-STORAGE)")
    got = (typ, data)
except imaplib.IMAP4.error as e:
    got = ("BAD", str(e))
t.is_(got[0], "BAD", "STATUS (DELETED-STORAGE): BAD, an unknown item")
t.is_(srv2.send(["alice@example.com"], size=20000), {}, "20000 bytes to alice: stored")
t.ok(srv2.used("alice") > 10240, "past the limit the module would enforce")
typ, data = m.append("INBOX", None, None, message(20000))
t.is_(typ, "OK", "APPEND past it: OK")
m.select("INBOX")
typ, data = m.copy("1:*", "Archive")
t.is_(typ, "OK", "COPY past it: OK")
m.logout()
rc, out, err = srv2.gannet("config", "account", "quota", "alice")
t.ok(rc != 0 and out == "", "`gannet config account quota` is not a command (%s)" % err.strip()[:100])
srv2.g.stop()
t.done()
