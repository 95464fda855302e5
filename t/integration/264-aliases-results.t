#!/usr/bin/env python3
"""
t/integration/264-aliases-results.t: what a sender hears for an alias whose
members fail after the end of data (issue 11, item 1; mox.md 5: success if
any member got it; all members over quota 452 4.2.2).  The failures come
from t/modules/deliverfail (localparts "overquota...": 452 4.2.2 as the
quota module answers; "full...": 552 5.2.2), with smtplib:

- one member over quota, another not: 250, the other member has it;
- every member over quota: 452 4.2.2 (the sender retries later);
- over quota and a permanent failure: 452 4.2.2 (temporary first);
- every member failing for good: 552 5.2.2;
- every member over quota with an explicit recipient beside: 250, one DSN
  to the sender for the alias.
"""
import os
import shutil
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
for so in (os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so"),
           os.path.join(gt.BUILDDIR, "modules", "aliases", ".libs", "aliases.so"),
           os.path.join(gt.BUILDDIR, "t", "modules", "deliverfail", ".libs", "deliverfail.so")):
    if not os.path.exists(so):
        t.ok(False, "%s is built" % so)
        t.done()
    shutil.copy(so, moddir)
    os.chmod(os.path.join(moddir, os.path.basename(so)), 0o755)
port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }' % port,
    modules='directory = "%s"; load = [ "smtp", "aliases", "deliverfail" ];' % moddir,
    extra='workers = 1;\nsmtp = { postmaster = "alice"; };\nqueue = { transport = "none"; };'))


def gannet(*args):
    r = gt.run_gannet(["-c", g.conf_path] + list(args))
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "q1", "overquota1@example.com"),
         ("config", "account", "add", "q2", "overquota2@example.com"),
         ("config", "account", "add", "f1", "full1@example.com"),
         ("config", "account", "add", "f2", "full2@example.com"),
         ("config", "alias", "add", "some@example.com", "alice@example.com",
          "overquota1@example.com", "--post-public"),
         ("config", "alias", "add", "allq@example.com", "overquota1@example.com",
          "overquota2@example.com", "--post-public"),
         ("config", "alias", "add", "mixed@example.com", "full1@example.com",
          "overquota2@example.com", "--post-public"),
         ("config", "alias", "add", "allf@example.com", "full1@example.com", "full2@example.com",
          "--post-public")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "accounts and four public aliases")
try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, aliases and deliverfail")
    t.diag(str(e))
    t.done()


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


def send(rcpts, subject):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.example.org")
        s.mail("sender@remote.example")
        codes = [s.rcpt(r)[0] for r in rcpts]
        msg = ("From: sender@remote.example\r\nSubject: %s\r\n\r\nHi.\r\n" % subject).encode()
        try:
            code, text = s.data(msg)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return codes, code, text.decode()[:5]


def copies(subject):
    return sql("SELECT coalesce(string_agg(a.name, ',' ORDER BY a.name), '') FROM gn_messages m "
               "JOIN gn_accounts a ON a.id = m.account_id JOIN gn_blobs b ON b.id = m.blob_id "
               "JOIN gn_blob_chunks c ON c.blob_id = b.id "
               "WHERE position(convert_to('Subject: %s' || chr(13), 'UTF8') in c.data) > 0" % subject)


t.is_(send(["some@example.com"], "r1"), ([250], 250, "2.0.0"),
      "one member over quota, one not: 250")
t.is_(copies("r1"), "alice", "the member with room has it")
t.is_(send(["allq@example.com"], "r2"), ([250], 452, "4.2.2"), "every member over quota: 452 4.2.2")
t.is_(send(["mixed@example.com"], "r3"), ([250], 452, "4.2.2"),
      "over quota and a permanent failure: 452 4.2.2")
t.is_(send(["allf@example.com"], "r4"), ([250], 552, "5.2.2"), "every member failing for good: 552 5.2.2")
t.is_(copies("r2") + copies("r3") + copies("r4"), "", "none of these was stored")
before = int(sql("SELECT count(*) FROM gn_queue_messages"))
t.is_(send(["allq@example.com", "alice@example.com"], "r5"), ([250, 250], 250, "2.0.0"),
      "every member over quota beside an explicit recipient: 250")
t.is_(copies("r5"), "alice", "the explicit recipient has it")
t.is_(int(sql("SELECT count(*) FROM gn_queue_messages")) - before, 1, "one DSN queued")
t.is_(sql("SELECT r.rcpt FROM gn_queue_recipients r JOIN gn_queue_messages m ON m.id = r.message_id "
          "ORDER BY m.id DESC LIMIT 1"), "sender@remote.example", "to the sender")
g.stop()
t.done()
