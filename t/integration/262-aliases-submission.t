#!/usr/bin/env python3
"""
t/integration/262-aliases-submission.t: AllowMsgFrom in submission (issue
11, item 1; mox.md 5: members of an alias with AllowMsgFrom may use the
alias as MAIL FROM and as the message's From), with smtplib on 587:

- a member sends as the alias (MAIL FROM and From): queued with the alias
  as the sender; as alias+tag@ too (found as delivery finds it);
- the From alone may be the alias, MAIL FROM the member's own address;
- refused with 550 5.7.1: an account that is no member (MAIL FROM, and the
  From at the end of data), a member of an alias without AllowMsgFrom, and
  a member once AllowMsgFrom is cleared;
- the account's own addresses still work.
"""
import os
import smtplib
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "submission", "aliases")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p587 = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners=('{ address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }'
               % p587),
    modules='directory = "%s"; load = [ "submission", "aliases" ];' % moddir,
    extra=('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
           'queue = { transport = "none"; };') % (cert, key)),
    directory=d)
PW = "a password for the test"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "account", "add", "carol", "carol@example.com"),
         ("config", "alias", "add", "team@example.com", "alice@example.com", "bob@example.com",
          "--allow-msg-from"),
         ("config", "alias", "add", "quiet@example.com", "alice@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup),
     "accounts alice, bob, carol; team (AllowMsgFrom: alice, bob), quiet (alice, no AllowMsgFrom)")
t.ok(all(gannet("setpassword", a, stdin=PW + "\n").returncode == 0 for a in ("alice", "bob", "carol")),
     "passwords")
try:
    g.start(wait_ports=(p587,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with submission and aliases")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with submission and aliases")


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def submit(account, mail_from, from_header, subject):
    """(MAIL code, DATA code or None, DATA text)."""
    with smtplib.SMTP("127.0.0.1", p587, timeout=30) as s:
        s.ehlo("client.example.org")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        s.login(account + "@example.com", PW)
        code = s.mail(mail_from)[0]
        if code != 250:
            return code, None, ""
        s.rcpt("someone@remote.example")
        msg = ("From: %s\r\nTo: someone@remote.example\r\nSubject: %s\r\n\r\nHello.\r\n"
               % (from_header, subject)).encode()
        try:
            dcode, text = s.data(msg)
        except smtplib.SMTPDataError as e:
            dcode, text = e.smtp_code, e.smtp_error
        return code, dcode, text.decode()


def queued(subject):
    return sql("SELECT coalesce(string_agg(m.sender, ','), '') FROM gn_queue_messages m "
               "JOIN gn_blobs b ON b.id = m.blob_id JOIN gn_blob_chunks c ON c.blob_id = b.id "
               "WHERE position(convert_to('Subject: %s' || chr(13), 'UTF8') in c.data) > 0"
               % subject)


t.is_(submit("alice", "team@example.com", "Team <team@example.com>", "a1")[:2], (250, 250),
      "a member sends as the alias (MAIL FROM and From)")
t.is_(queued("a1"), "team@example.com", "queued with the alias as sender")
t.is_(submit("bob", "Team+Tag@example.com", "team+tag@example.com", "a2")[:2], (250, 250),
      "another member, as alias+tag@ in any case")
t.is_(submit("alice", "alice@example.com", "team@example.com", "a3")[:2], (250, 250),
      "the From alone is the alias")
t.is_(submit("alice", "alice@example.com", "alice@example.com", "a4")[:2], (250, 250),
      "the account's own address still works")

r = submit("carol", "team@example.com", "team@example.com", "r1")
t.is_(r[0], 550, "no member: MAIL FROM the alias 550")
r = submit("carol", "carol@example.com", "team@example.com", "r2")
t.is_(r[1], 550, "no member: From the alias 550 at the end of data")
t.like(r[2], "5.7.1", "with 5.7.1")
t.is_(submit("alice", "quiet@example.com", "quiet@example.com", "r3")[0], 550,
      "a member of an alias without AllowMsgFrom: MAIL FROM 550")
r = submit("alice", "alice@example.com", "quiet@example.com", "r4")
t.is_(r[1], 550, "and From 550")
t.is_(gannet("config", "alias", "update", "team@example.com", "--no-allow-msg-from").returncode, 0,
      "AllowMsgFrom cleared")
t.is_(submit("alice", "team@example.com", "team@example.com", "r5")[0], 550,
      "then a member's MAIL FROM the alias is refused")
t.is_(",".join(queued(s) for s in ("r1", "r2", "r3", "r4", "r5")), ",,,,", "nothing refused was queued")

g.stop()
t.done()
