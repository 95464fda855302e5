#!/usr/bin/env python3
"""
t/integration/222-submission-queue.t: what the submission module hands to
the outbound queue (issue 9, items 1, 2 and 5), in a running `gannet
serve` with the smtp and submission modules:

- a failure inside the queue's transaction answers 451 4.3.0 and leaves
  nothing (message, recipients, limit records);
- a submitted message is in `gannet queue list` with its recipients, its
  extra data and its hold time; `gannet queue dump` shows Date and
  Message-ID added and DKIM-Signature fields (Ed25519 and RSA keys of the
  From domain) that Python's dkim (Debian's python3-dkim) verifies;
- FromID login addresses: `gannet config account fromid ACCOUNT
  add|rm|list`, refused for an address of another account or on a domain
  without catchall separator;
- a login listed there gets a random FromID per recipient (22 characters
  of base64url, all different); a FromID given in MAIL FROM
  (local+id@domain) is used for its one recipient; used before, invalid,
  or with a second recipient: 554 5.1.7; the same mailbox logged in under
  an address not listed sends without FromIDs;
- a DSN sent to the FromID address lands in the account and is matched
  to the queued recipient (gn_queue_fromid_incoming: `gannet queue fromid
  ID` shows incoming= and dsn=), a plain reply counts as incoming, another
  account's address with the same tag is not matched; the match stays
  when the recipient is retired.
"""
import email
import json
import os
import re
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")

moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "submission")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p587, p25 = gt.free_port(), gt.free_port()
listeners = ", ".join([
    '{ name = "sub"; address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }' % p587,
    '{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "starttls"; }' % p25,
])
extra = 'workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n' % (cert, key)
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "smtp", "submission" ];' % moddir),
              directory=d)
PW = "alice's password 1"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+-"),
         ("config", "domain", "add", "example.org"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "address", "add", "alicef@example.com", "alice"),
         ("config", "address", "add", "alice@example.org", "alice"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("queue", "retired", "keep", "alice", "30d")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "migrate, domains, accounts alice and bob")
t.is_(gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")
recs = {}
for sel, alg in (("ed1", "ed25519"), ("rsa1", "rsa")):
    r = gannet("config", "dkim", "add", "example.com", sel, alg)
    recs.update({name: "".join(parts) for name, parts in gt.txt_records(r.stdout).items()})
t.is_(sorted(recs), ["ed1._domainkey.example.com.", "rsa1._domainkey.example.com."],
      "DKIM keys ed25519 and rsa for example.com")
recfile = os.path.join(d, "records.json")
with open(recfile, "w") as f:
    json.dump(recs, f)

# ---- FromID login addresses ----
fid = ("config", "account", "fromid")
t.is_(gannet(*fid, "alice", "add", "alicef@example.com").returncode, 0, "fromid add alicef@example.com")
r = gannet(*fid, "alice", "list")
t.is_(r.stdout, "alicef@example.com\n", "fromid list shows it")
r = gannet(*fid, "alice", "add", "AliceF@Example.com")
t.ok(r.returncode == 1 and "already a FromID login address" in r.stderr, "added twice (any case): refused")
r = gannet(*fid, "alice", "add", "bob@example.com")
t.ok(r.returncode == 1 and "not an address of account alice" in r.stderr,
     "bob's address for alice: refused (%s)" % r.stderr.strip())
r = gannet(*fid, "alice", "add", "alice@example.org")
t.ok(r.returncode == 1 and "no catchall separator" in r.stderr,
     "an address on a domain without catchall separator: refused (%s)" % r.stderr.strip())
r = gannet(*fid, "nobody", "list")
t.ok(r.returncode == 1 and "unknown account: nobody" in r.stderr, "list of an unknown account: refused")
r = gannet(*fid, "alice", "frob", "x@example.com")
t.is_(r.returncode, 2, "an unknown operation is bad usage")
t.is_(gannet(*fid, "alice", "add", "alice@example.com").returncode, 0, "alice@example.com added")
t.is_(gannet(*fid, "alice", "rm", "alice@example.com").returncode, 0, "and removed")
r = gannet(*fid, "alice", "rm", "alice@example.com")
t.ok(r.returncode == 1 and "not a FromID login address" in r.stderr, "removed twice: refused")
t.is_(gannet(*fid, "alice", "list").stdout, "alicef@example.com\n", "the list is back to one")

try:
    g.start(wait_ports=(p587, p25))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp and submission")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with smtp and submission")

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def sub(login):
    s = smtplib.SMTP("127.0.0.1", p587, timeout=30)
    s.ehlo("client.example.net")
    s.starttls(context=ctx)
    s.ehlo("client.example.net")
    s.login(login, PW)
    return s


def reply(r):
    return "%d %s" % (r[0], r[1].decode(errors="replace"))


def transaction(s, frm, rcpts, msg, mail_opts=()):
    r = s.mail(frm, list(mail_opts))
    if r[0] != 250:
        s.rset()
        return reply(r)
    for rc in rcpts:
        r = s.rcpt(rc)
        if r[0] != 250:
            s.rset()
            return reply(r)
    return reply(s.data(msg.encode()))


def qlist(*args):
    return gannet("queue", "list", *args).stdout.splitlines()


def dump(qid):
    return subprocess.run([gt.GANNET, "-c", g.conf_path, "queue", "dump", qid],
                          capture_output=True, timeout=60).stdout


QUEUED = "250 2.0.0 Message queued as "
MSG = ("From: Alice <alice@example.com>\r\nTo: x@example.net\r\nSubject: queued\r\n"
       "X-Gannet-Extra-User-Id: 42\r\nX-Mox-Extra-Order: A-17\r\n"
       "\r\nHello,\r\n\r\nthis   goes out signed.\r\n")

# ---- a message in the queue ----
s = sub("alice@example.com")
r = transaction(s, "alice@example.com", ["x@example.net", "y@example.org"], MSG, ["HOLDFOR=3600"])
t.like(r, QUEUED, "submitted with HOLDFOR=3600 to two recipients: %s" % r)
mid = r.split()[-1] if r.startswith(QUEUED) else "?"
rows = [ln for ln in qlist("--account", "alice") if " message=%s " % mid in ln]
t.is_(len(rows), 2, "gannet queue list: two recipients of message %s" % mid)
t.ok(any("to=<x@example.net>" in ln for ln in rows) and any("to=<y@example.org>" in ln for ln in rows),
     "x@example.net and y@example.org")
t.ok(all("from=<alice@example.com>" in ln and "fromid=" not in ln for ln in rows),
     "from alice@example.com, no FromID (alice@example.com is not a FromID login)")
rel = re.search(r" release=(\S+)", rows[0]) if rows else None
want = time.time() + 3600
got = time.mktime(time.strptime(rel.group(1), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone if rel else 0
t.ok(rel is not None and abs(got - want) < 300, "held until about an hour from now (%s)" % (rows[:1],))
t.ok(all('extra={"Order": "A-17", "User-Id": "42"}' in ln for ln in rows),
     "with its extra data (%s)" % (rows[:1],))
body = dump(rows[0].split()[0]) if rows else b""
hdr = body.split(b"\r\n\r\n", 1)[0]
m = email.message_from_bytes(body)
t.ok(hdr.startswith(b"DKIM-Signature:"), "gannet queue dump: the DKIM signatures come first")
t.is_(len(m.get_all("DKIM-Signature") or []), 2, "two signatures, one a key")
t.ok(m["Date"] is not None and re.match(r"^<[0-9a-f]{32}@mail\.test>$", m["Message-ID"] or "") is not None,
     "Date and Message-ID added (%s)" % m["Message-ID"])
t.ok(b"X-Gannet-Extra" not in hdr and b"X-Mox-Extra" not in hdr, "the extra data headers are removed")
mfile = os.path.join(d, "queued.eml")
with open(mfile, "wb") as f:
    f.write(body)
r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), mfile, recfile],
                   capture_output=True, text=True, timeout=60)
if r.returncode != 0:
    t.diag(r.stderr[-2000:])
t.is_(r.stdout, "0 pass\n1 pass\n", "python3-dkim verifies both signatures")
with open(mfile, "wb") as f:
    f.write(body.replace(b"goes out signed", b"goes out changed"))
r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), mfile, recfile],
                   capture_output=True, text=True, timeout=60)
t.is_(r.stdout, "0 fail\n1 fail\n", "and fails them once the body is changed")

# Without a DKIM key for the From domain: queued unsigned.
r = transaction(s, "alice@example.com", ["z@example.net"],
                "From: alice@example.org\r\nSubject: unsigned\r\n\r\nHi.\r\n")
t.like(r, QUEUED, "From a domain without DKIM key: queued")
rows = [ln for ln in qlist("--to", "z@example.net")]
t.ok(len(rows) == 1 and b"DKIM-Signature" not in dump(rows[0].split()[0]), "unsigned")

# A worker keeps the keys it signed with; a change to them (NOTIFY from
# the command) makes it forget them: the next message, on the same
# session and worker, is signed with what is enabled now.
def selectors_of(to):
    rows = qlist("--to", to)
    if len(rows) != 1:
        return "rows=%d" % len(rows)
    m = email.message_from_bytes(dump(rows[0].split()[0]))
    return ",".join(sorted(re.search(r"\bs=([^;\s]+)", v).group(1)
                           for v in (m.get_all("DKIM-Signature") or [])))


t.is_(gannet("config", "dkim", "disable", "example.com", "rsa1").returncode, 0, "dkim disable rsa1")
time.sleep(0.5)
t.like(transaction(s, "alice@example.com", ["k1@example.net"], MSG), QUEUED, "submitted after the change")
t.is_(selectors_of("k1@example.net"), "ed1", "signed with ed1 only: the worker forgot the disabled key")
t.is_(gannet("config", "dkim", "enable", "example.com", "rsa1").returncode, 0, "dkim enable rsa1")
time.sleep(0.5)
t.like(transaction(s, "alice@example.com", ["k2@example.net"], MSG), QUEUED, "submitted again")
t.is_(selectors_of("k2@example.net"), "ed1,rsa1", "signed with both again")

# A failure in the queue's transaction: 451 4.3.0, nothing half-written.
sql("ALTER TABLE gn_queue_recipients ADD CONSTRAINT test_refuse CHECK (rcpt <> 'refuse@example.net')")
counts = ("SELECT (SELECT count(*) FROM gn_queue_messages) || ' ' || (SELECT count(*) FROM "
          "gn_queue_recipients) || ' ' || (SELECT coalesce(sum(messages), 0) FROM gn_submission_counts) || ' ' || "
          "(SELECT count(*) FROM gn_submission_recipients)")
before = sql(counts)
log_before = len(g.log())
t.is_(transaction(s, "alice@example.com", ["ok9@example.net", "refuse@example.net"], MSG),
      "451 4.3.0 Temporary failure, please try again later",
      "the queue refuses a recipient inside the transaction: 451 4.3.0")
t.is_(sql(counts), before, "no message, recipient or limit record is left (%s)" % before)
time.sleep(0.2)
t.like(g.log()[log_before:], "event=queue_failed ", "and it is logged (event=queue_failed)")
sql("ALTER TABLE gn_queue_recipients DROP CONSTRAINT test_refuse")

# Not a FromID login: a tag in MAIL FROM stays an ordinary catchall variant.
r = transaction(s, "alice+tag@example.com", ["w@example.net"], MSG)
t.like(r, QUEUED, "alice@example.com login, MAIL FROM alice+tag: queued")
rows = qlist("--to", "w@example.net")
t.ok(len(rows) == 1 and "from=<alice+tag@example.com>" in rows[0] and "fromid=" not in rows[0],
     "as it was given, without FromID (%s)" % rows)
s.quit()

# ---- FromIDs ----
s = sub("alicef@example.com")
r = transaction(s, "alicef@example.com", ["a1@example.net", "a2@example.net", "a3@example.org"], MSG)
t.like(r, QUEUED, "alicef@example.com (a FromID login) to three recipients: queued")
mid = r.split()[-1] if r.startswith(QUEUED) else "?"
rows = [ln for ln in qlist() if " message=%s " % mid in ln]
ids = [re.search(r" fromid=(\S+)", ln).group(1) for ln in rows if " fromid=" in ln]
t.is_(len(ids), 3, "each recipient has a FromID (%s)" % ids)
t.ok(len(set(ids)) == 3 and all(re.match(r"^[A-Za-z0-9_-]{22}$", i) for i in ids),
     "22 characters of base64url, all different")
t.ok(all("from=<alicef@example.com>" in ln for ln in rows), "the sender is kept without tag")

r = transaction(s, "alicef+myid123@example.com", ["b1@example.net"], MSG)
t.like(r, QUEUED, "MAIL FROM alicef+myid123@example.com, one recipient: queued")
rows = qlist("--to", "b1@example.net")
t.ok(len(rows) == 1 and " fromid=myid123" in rows[0] and "from=<alicef@example.com>" in rows[0],
     "with the FromID given (%s)" % rows)
b1 = rows[0].split()[0] if rows else "?"
t.is_(transaction(s, "alicef+myid123@example.com", ["b2@example.net"], MSG),
      "554 5.1.7 Bad FromID in MAIL FROM address: used before", "the same FromID again: 554 5.1.7")
t.is_(transaction(s, "alicef-myid123@example.com", ["b2@example.net"], MSG),
      "554 5.1.7 Bad FromID in MAIL FROM address: used before", "after the other separator too")
t.like(transaction(s, "alicef+a.b@example.com", ["b2@example.net"], MSG),
       "554 5.1.7 Bad FromID in MAIL FROM address: not 1 to 64", "a FromID with a dot: 554 5.1.7")
t.is_(transaction(s, "alicef+other7@example.com", ["b2@example.net", "b3@example.net"], MSG),
      "554 5.1.7 Cannot send to multiple recipients with a FromID given in MAIL FROM",
      "a given FromID and a second recipient: 554 5.1.7 at the second RCPT")
t.is_(qlist("--to", "b2@example.net"), [], "nothing queued by the refused transactions")
s.quit()

# ---- a bounce to the FromID address ----
DSN = ("From: MAILER-DAEMON@example.net\r\nTo: alicef+myid123@example.com\r\n"
       "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
       "--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
       "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; example.net\r\n\r\n"
       "Final-Recipient: rfc822; b1@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
       "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n--b--\r\n")
inbox = ("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.account_id = m.account_id "
         "AND b.id = m.mailbox_id JOIN gn_accounts a ON a.id = m.account_id "
         "WHERE a.name = 'alice' AND b.name = 'Inbox'")
before = int(sql(inbox))
with smtplib.SMTP("127.0.0.1", p25, timeout=30) as m25:
    m25.ehlo("mx.example.net")
    r = m25.sendmail("", ["alicef+myid123@example.com"], DSN.encode())
t.is_(r, {}, "a DSN from <> to alicef+myid123@example.com is accepted on port 25")
t.is_(int(sql(inbox)), before + 1, "and delivered into alice's Inbox")
r = gannet("queue", "fromid", "myid123")
t.is_(r.stdout.split(" ")[0] if r.returncode == 0 else r.stderr, b1,
      "gannet queue fromid myid123: the queued recipient b1@example.net (%s)" % r.stdout.strip())
t.like(r.stdout, "to=<b1@example.net> queued incoming=1 dsn=1",
       "queued; the DSN is matched to it (one incoming message, a DSN)")
with smtplib.SMTP("127.0.0.1", p25, timeout=30) as m25:
    m25.ehlo("mx.example.net")
    m25.sendmail("someone@example.net", ["alicef-myid123@example.com"],
                 b"From: someone@example.net\r\nSubject: re: queued\r\n\r\nA reply.\r\n")
r = gannet("queue", "fromid", "myid123")
t.like(r.stdout, "queued incoming=2 dsn=1", "a plain reply (the other separator) counts as incoming, not DSN")
with smtplib.SMTP("127.0.0.1", p25, timeout=30) as m25:
    m25.ehlo("mx.example.net")
    m25.sendmail("", ["bob+myid123@example.com"], DSN.encode())
r = gannet("queue", "fromid", "myid123")
t.like(r.stdout, "incoming=2 dsn=1", "a DSN to another account with that tag is not matched")
# The runner may be attempting b1 right now (its first tick comes about
# a second after the start): `queue drop` refuses a recipient being
# delivered, so wait for the attempt to be over, as an admin would.
for _ in range(200):
    if sql("SELECT count(*) FROM gn_queue_recipients WHERE state = 'delivering'") == "0":
        break
    time.sleep(0.05)
t.is_(gannet("queue", "drop", b1).returncode, 0, "the recipient is dropped from the queue")
r = gannet("queue", "fromid", "myid123")
t.like(r.stdout, "%s message=" % b1, "the FromID still matches it")
t.like(r.stdout, "to=<b1@example.net> retired result=dropped incoming=2 dsn=1",
       "retired, dropped, with what came back")
r = gannet("queue", "fromid", "nosuchid")
t.ok(r.returncode == 1 and "no queued or retired recipient with FromID nosuchid" in r.stderr,
     "an unknown FromID: not found")
s = sub("alicef@example.com")
t.is_(transaction(s, "alicef+myid123@example.com", ["b9@example.net"], MSG),
      "554 5.1.7 Bad FromID in MAIL FROM address: used before", "a retired FromID is not used again")
s.quit()

g.stop()
log = g.log()
t.ok("event=queued " in log and "fromids=yes" in log, "hand-overs are logged (event=queued, fromids=yes)")
t.ok("event=fromid_refused" in log, "refused FromIDs are logged")
t.ok("event=queue_fromid_incoming" in log and "kind=dsn fromid=myid123" in log,
     "the matched DSN is logged")
t.done()
