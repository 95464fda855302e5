#!/usr/bin/env python3
"""
t/integration/276-suppression-dsn.t: incoming DSNs add suppressions (issue
12 item 3, mox.md 1.8 and 2.7, source "DSN"), with the smtp and
suppression modules of a real `gannet serve`.

Retired recipients are made with `gannet queue add` and `gannet queue
fail` (the queue's transport is "none"), then given a FromID with SQL (as
submission would have given them one); a DSN sent on port 25 to
alice+FROMID@example.com is matched to the retired recipient (core/queue/
fromid.c), and its one recipient block read:

- Action failed with Diagnostic-Code smtp; 550 5.1.1: added at once,
  reason "delivery failure from DSN with smtp code 550, enhanced code "1.1"";
- Action failed with Status 5.7.1 only: code 500, 7.1: added;
- Action failed, Status 5.0.0, two failed retired recipients to the same
  address before: three consecutive failures, added; with one before: not;
- Action delayed; two recipient blocks; a recipient still queued (mox
  looks at retired ones only): not added;
- the DSN is delivered into the Inbox all the same.
"""
import os
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "suppression")
d = gt.tmpdir()
p25 = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }' % p25,
    modules='directory = "%s"; load = [ "smtp", "suppression" ];' % moddir,
    extra='workers = 1;\nqueue = { transport = "none"; };'), directory=d)


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("queue", "retired", "keep", "alice", "1d")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "example.com (separator +), alice keeping retired records")

MSG = "From: alice@example.com\nTo: someone\nSubject: hello\n\nHello.\n"
n_fid = [0]


def retire(rcpt, fail=True):
    """Queues a message to rcpt, fails it for good (or leaves it queued and
    held), gives it a new FromID: the FromID."""
    gannet("queue", "add", "--from", "alice@example.com", "--to", rcpt, stdin=MSG)
    rid = sql("SELECT max(id) FROM gn_queue_recipients WHERE rcpt = '%s'" % rcpt)
    n_fid[0] += 1
    fid = "fid%d" % n_fid[0]
    if fail:
        gannet("queue", "fail", rid)
        sql("UPDATE gn_queue_retired SET from_id = '%s' WHERE id = %s" % (fid, rid))
    else:
        gannet("queue", "hold", rid)
        sql("UPDATE gn_queue_recipients SET from_id = '%s' WHERE id = %s" % (fid, rid))
    return fid


def dsn(fid, blocks):
    msg = ("From: MAILER-DAEMON@example.net\r\nTo: alice+%s@example.com\r\nSubject: Returned mail\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
           "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; example.net\r\n"
           % fid)
    for b in blocks:
        msg += "\r\n" + "".join(line + "\r\n" for line in b)
    msg += "--b--\r\n"
    with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
        s.ehlo("mx.example.net")
        return s.sendmail("", ["alice+%s@example.com" % fid], msg.encode())


def lookup(addr):
    return gannet("queue", "suppress", "lookup", "alice", addr).stdout


def failed(rcpt, *lines):
    return ["Final-Recipient: rfc822; " + rcpt, "Action: failed"] + list(lines)


fids = {
    "gone": retire("gone@remote.example"),
    "status": retire("status@remote.example"),
    "delayed": retire("delayed@remote.example"),
    "two": retire("two@remote.example"),
    "queued": retire("queued@remote.example", fail=False),
}
retire("three@remote.example")
retire("three@remote.example")
fids["three"] = retire("three@remote.example")
retire("once@remote.example")
fids["once"] = retire("once@remote.example")
t.is_(sql("SELECT count(*) FROM gn_queue_retired WHERE from_id IS NOT NULL"), "9",
      "nine retired recipients with FromIDs")
t.is_(sql("SELECT count(*) FROM gn_suppressions"), "0", "failed by the admin (no code): nothing listed")

try:
    g.start(wait_ports=(p25,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp and suppression")
    t.diag(str(e))
    t.done()
inbox = ("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.account_id = m.account_id "
         "AND b.id = m.mailbox_id WHERE b.name = 'Inbox' AND m.subject = 'Returned mail'")

t.is_(dsn(fids["gone"], [failed("gone@remote.example", "Status: 5.1.1",
                                "Diagnostic-Code: smtp; 550 5.1.1 no such user")]), {},
      "a DSN for gone@remote.example is accepted")
t.is_(sql(inbox), "1", "and delivered into alice's Inbox")
t.like(lookup("gone@remote.example"),
       'manual=no created=', "gone@remote.example is listed")
t.like(lookup("gone@remote.example"),
       'reason="delivery failure from DSN with smtp code 550, enhanced code "1.1""', "mox's reason, source DSN")

dsn(fids["status"], [failed("status@remote.example", "Status: 5.7.1 (blocked)")])
t.like(lookup("status@remote.example"), 'smtp code 500, enhanced code "7.1"',
       "Status 5.7.1 without Diagnostic-Code: code 500, 7.1, listed")

dsn(fids["delayed"], [["Final-Recipient: rfc822; delayed@remote.example", "Action: delayed",
                       "Status: 4.4.1", "Diagnostic-Code: smtp; 550 5.1.1 later"]])
t.is_(lookup("delayed@remote.example"), "not suppressed: delayed@remote.example\n", "Action delayed: not listed")

dsn(fids["two"], [failed("two@remote.example", "Status: 5.1.1",
                         "Diagnostic-Code: smtp; 550 5.1.1 no"),
                  failed("other@remote.example", "Status: 5.1.1")])
t.is_(lookup("two@remote.example"), "not suppressed: two@remote.example\n",
      "two recipient blocks: not read, not listed")

dsn(fids["queued"], [failed("queued@remote.example", "Status: 5.1.1",
                            "Diagnostic-Code: smtp; 550 5.1.1 no such user")])
t.is_(lookup("queued@remote.example"), "not suppressed: queued@remote.example\n",
      "a DSN for a recipient still queued: not listed (mox reads DSNs of retired ones)")

dsn(fids["once"], [failed("once@remote.example", "Status: 5.0.0",
                          "Diagnostic-Code: smtp; 554 5.0.0 refused")])
t.is_(lookup("once@remote.example"), "not suppressed: once@remote.example\n",
      "554 5.0.0 with one failure before: not listed")

dsn(fids["three"], [failed("three@remote.example", "Status: 5.0.0",
                           "Diagnostic-Code: smtp;",
                           " 554 5.0.0 refused (folded)")])
t.like(lookup("three@remote.example"), 'reason="delivery failure from DSN and three consecutive failures"',
       "554 5.0.0 (a folded Diagnostic-Code) after two failures: three consecutive, listed")
t.is_(sql(inbox), "7", "every DSN was delivered into the Inbox")
t.is_(sql("SELECT count(*) FROM gn_suppressions"), "3", "three listed in all")

t.is_(g.stop(), 0, "gannet stops")
t.done()
