#!/usr/bin/env python3
"""
t/integration/232-smtp-late-dsn.t: the smtp module sends the DSN it owes
(RFC 5321 3.6.3, 6.1) for a recipient it accepted at RCPT and could not
deliver to after the end of data, while another recipient got the message:
one failure DSN (RFC 3464 multipart/report, from <>, with the original
header) is queued to the sender, under the failed recipient's account.  A message from <> gets none.
The failure after data comes from t/modules/deliverfail (a deliver.mailbox
hook failing localparts that start with "full", as a quota would).
"""
import email
import email.policy
import os
import shutil
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
for so in (os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so"),
           os.path.join(gt.BUILDDIR, "t", "modules", "deliverfail", ".libs", "deliverfail.so")):
    shutil.copy(so, moddir)
    os.chmod(os.path.join(moddir, os.path.basename(so)), 0o755)
port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }' % port,
    modules='directory = "%s"; load = [ "smtp", "deliverfail" ];' % moddir,
    extra='workers = 1;\nsmtp = { postmaster = "hostmaster"; };\nqueue = { transport = "none"; };'))


def gannet(*args):
    return gt.run_gannet(["-c", g.conf_path] + list(args))


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "address", "add", "full-bob@example.com", "bob"),
         ("config", "account", "add", "hostmaster", "hostmaster@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "migrate, domain and accounts")
g.start(wait_ports=(port,))


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


msg = (b"From: Sender <s@example.org>\r\nTo: alice@example.com, full-bob@example.com\r\n"
       b"Subject: hello both\r\nMessage-ID: <late@example.org>\r\n\r\nHello.\r\n")


def send(frm):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example.org")
        s.mail(frm)
        codes = [s.rcpt("alice@example.com")[0], s.rcpt("full-bob@example.com")[0]]
        codes.append(s.data(msg)[0])
    return codes


t.is_(send("s@example.org"), [250, 250, 250], "both accepted at RCPT, the message accepted")
t.is_(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
          "WHERE a.name = 'alice' AND m.subject = 'hello both'"), "1", "alice got it")
t.is_(sql("SELECT count(*) FROM gn_queue_recipients r JOIN gn_queue_messages m ON m.id = r.message_id "
          "AND m.account_id = r.account_id WHERE r.rcpt = 's@example.org'"), "1",
      "one DSN queued to the sender")
t.is_(sql("SELECT m.sender || '|' || a.name FROM gn_queue_messages m JOIN gn_accounts a ON a.id = m.account_id"),
      "|bob", "from <>, under the failed recipient's account")
qid = sql("SELECT id FROM gn_queue_recipients WHERE rcpt = 's@example.org'")
r = gannet("queue", "dump", qid)
dsn = email.message_from_string(r.stdout, policy=email.policy.compat32)
t.is_(dsn.get_content_type(), "multipart/report", "a multipart/report")
parts = dsn.get_payload() if dsn.is_multipart() else []
t.is_(len(parts), 3, "of three parts")
status = parts[1].as_string() if len(parts) > 1 else ""
t.like(status, "Final-Recipient: rfc822; full-bob@example.com", "about full-bob")
t.like(status, "Diagnostic-Code: smtp; 552 5.2.2 mailbox full (deliverfail)", "with the reason")
t.like(status, "Action: failed", "failed")
t.like(status, "Status: 5.", "permanently")
t.like(parts[2].as_string() if len(parts) > 2 else "", "Message-ID: <late@example.org>",
       "with the original header")
t.is_(dsn["To"], "<s@example.org>", "to the sender")

# A message from <>: no DSN about it.
t.is_(send(""), [250, 250, 250], "from <>: accepted likewise")
t.is_(sql("SELECT count(*) FROM gn_queue_recipients"), "1", "and no DSN queued for it")
t.like(g.log(), "event=rcpt_failed_after_data", "the failure is logged")
t.is_(g.stop(), 0, "gannet stops")
t.done()
