#!/usr/bin/env python3
"""
t/integration/225-submission-group-commit.t: the submission module's group
commit (modules/submission/enqueue.c; issue 9 item 10): the messages of a
worker's sessions that end within submission.group_commit_ms share one
transaction, and each 250 comes only after that commit.  One worker and
a window of 700 ms, so that six sessions that end their DATA together
fall in one batch:

- six messages in one batch: six 250s with six queue ids, all six in the
  queue, counted six times in the day's limits, and the debug log shows
  one batch of six committed, and the worker's NOTIFY for the runners
  sent once after those that went without one;
- one of six refused inside the transaction (a CHECK constraint on the
  recipient): that session gets 451 4.3.0, the other five still get
  their 250 and are queued (the batch is rolled back and each message
  stored again alone), nothing of the refused one is left, and the
  failure is logged (event=queue_batch_failed);
- a client that closes its connection right after the end of its data,
  while its message waits for the batch: the others of the batch are
  queued, that one at most once, and the worker goes on.

Every message is held (HOLDFOR), so that the queue attempts nothing.
"""
import base64
import os
import re
import smtplib
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

moddir = gt.module_dir()
gt.install_modules(t, moddir, "submission")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p587 = gt.free_port()
listeners = ('{ name = "sub"; address = "127.0.0.1"; port = %d; protocol = "submission"; '
             'tls = "starttls"; }' % p587)
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
         'submission = { group_commit_ms = 700; };\n' % (cert, key))
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "submission" ];' % moddir),
              directory=d)
PW = "alice's password 1"
N = 6


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "migrate, domain, account alice")
t.is_(gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")
try:
    g.start(wait_ports=(p587,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with submission")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with submission (one worker, group_commit_ms = 700)")

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def sub():
    s = smtplib.SMTP("127.0.0.1", p587, timeout=30)
    s.ehlo("client.example.net")
    s.starttls(context=ctx)
    s.ehlo("client.example.net")
    s.login("alice@example.com", PW)
    return s


def message(subject):
    return ("From: alice@example.com\r\nTo: someone@example.net\r\nSubject: %s\r\n\r\n"
            "Hello.\r\n" % subject).encode()


def batch(subjects_rcpts, closer=None):
    """Sends one message a session, the sessions ready first and then all
    ending their DATA at once; returns the replies in order.  closer: a
    function run at the same moment (a client that goes away)."""
    sessions = [sub() for _ in subjects_rcpts]
    for s, (_, rcpt) in zip(sessions, subjects_rcpts):
        s.mail("alice@example.com", ["HOLDFOR=3600"])
        s.rcpt(rcpt)
    replies = [None] * len(sessions)
    go = threading.Barrier(len(sessions) + (1 if closer else 0))

    def one(i):
        go.wait()
        try:
            r = sessions[i].data(message(subjects_rcpts[i][0]))
            replies[i] = "%d %s" % (r[0], r[1].decode(errors="replace"))
        except (smtplib.SMTPException, OSError) as e:
            replies[i] = "error %s" % e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sessions))]
    for th in threads:
        th.start()
    if closer:
        go.wait()
        closer()
    for th in threads:
        th.join(60)
    for s in sessions:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass
    return replies


def queued(prefix):
    return sql("SELECT count(*) FROM gn_queue_messages WHERE subject LIKE '%s%%'" % prefix)


def counted():
    return int(sql("SELECT coalesce(sum(messages), 0) FROM gn_submission_counts"))


QUEUED = "250 2.0.0 Message queued as "

# ---- six in one batch ----
c0, log0 = counted(), len(g.log())
replies = batch([("ok-%d" % i, "r%d@example.net" % i) for i in range(N)])
t.ok(all(r.startswith(QUEUED) for r in replies), "six sessions at once: six 250s (%s)" % replies)
ids = {r.split()[-1] for r in replies if r.startswith(QUEUED)}
t.is_(len(ids), N, "six different queue ids")
t.is_(queued("ok-"), str(N), "all six are in the queue")
t.is_(counted() - c0, N, "and counted six times in the day's limits")
time.sleep(0.2)
t.like(g.log()[log0:], "event=queue_batch messages=6 result=committed",
       "the six shared one transaction (debug log: a batch of six committed)")
# core/queue/queue.c, "waking the runners": a worker NOTIFYs at most once
# in 10 ms; the messages queued right after the one that carried it go
# without, and a timer sends one after them, outside the transaction.
deadline = time.time() + 10
sent = []
while time.time() < deadline and not sent:
    sent = [int(x) for x in re.findall(r"event=queue_notify_sent deferred=(\d+)", g.log()[log0:])]
    time.sleep(0.05)
t.ok(len(sent) >= 1 and 1 <= sum(sent) <= N - 1,
     "the batch's messages after the first went without a NOTIFY of their own, and one "
     "was sent after them (debug log: deferred=%s)" % sent)

# ---- one of six refused inside the transaction ----
sql("ALTER TABLE gn_queue_recipients ADD CONSTRAINT test_refuse CHECK (rcpt <> 'refuse@example.net')")
c0, log0 = counted(), len(g.log())
rcpts = [("mixed-%d" % i, "m%d@example.net" % i) for i in range(N)]
rcpts[2] = ("mixed-refused", "refuse@example.net")
replies = batch(rcpts)
t.is_(replies[2], "451 4.3.0 Temporary failure, please try again later",
      "the message the queue refuses inside the batch's transaction: 451 4.3.0")
others = replies[:2] + replies[3:]
t.ok(all(r.startswith(QUEUED) for r in others), "the five others still get their 250 (%s)" % others)
t.is_(queued("mixed-"), str(N - 1), "the five are in the queue, the refused one is not")
t.is_(counted() - c0, N - 1, "the day's limits count the five only")
time.sleep(0.2)
log = g.log()[log0:]
t.like(log, "event=queue_batch_failed messages=6 ", "the batch's failure is logged (event=queue_batch_failed)")
t.like(log, "event=queue_batch messages=6 result=again_alone",
       "and its messages were stored again one by one")
t.ok(re.search(r"event=queue_failed .*test_refuse", log) is not None,
     "the refused one's own failure is logged too")
sql("ALTER TABLE gn_queue_recipients DROP CONSTRAINT test_refuse")

# ---- a client that goes away while its message waits ----
raw = socket.create_connection(("127.0.0.1", p587), timeout=30)
rf = raw.makefile("rb")


def expect(code):
    while True:
        line = rf.readline().decode()
        if not line or line[3:4] != "-":
            return line.startswith(str(code))


ok = expect(220)
raw.sendall(b"EHLO leaver.example.net\r\n")
ok = ok and expect(250)
raw.sendall(b"STARTTLS\r\n")
ok = ok and expect(220)
tls = ctx.wrap_socket(raw, server_hostname="mail.test")
rf = tls.makefile("rb")
tls.sendall(b"EHLO leaver.example.net\r\n")
ok = ok and expect(250)
tls.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.com\0" + PW.encode()) + b"\r\n")
ok = ok and expect(235)
tls.sendall(b"MAIL FROM:<alice@example.com> HOLDFOR=3600\r\n")
ok = ok and expect(250)
tls.sendall(b"RCPT TO:<gone@example.net>\r\n")
ok = ok and expect(250)
tls.sendall(b"DATA\r\n")
ok = ok and expect(354)
t.ok(ok, "a raw client logged in and at DATA")


def leave():
    # Its whole message and the end of data, then the connection closes
    # at once, before the batch's commit (700 ms later).
    tls.sendall(message("gone") + b".\r\n")
    time.sleep(0.1)
    tls.close()


c0 = counted()
replies = batch([("stay-%d" % i, "s%d@example.net" % i) for i in range(3)], closer=leave)
t.ok(all(r.startswith(QUEUED) for r in replies), "the others of its batch get their 250 (%s)" % replies)
t.is_(queued("stay-"), "3", "and are queued")
# The engine reads nothing more from a client whose end of data waits
# for its answer, so it sees the close only after the commit: the
# message is queued (its 250 lost, as when a client goes away during any
# commit), once.
gone = queued("gone")
t.ok(gone in ("0", "1"), "the message of the client that went away is queued at most once (%s)" % gone)
t.is_(counted() - c0, 3 + int(gone), "the limits count what was queued")

# The worker goes on: one more message, alone.
s = sub()
s.mail("alice@example.com", ["HOLDFOR=3600"])
s.rcpt("after@example.net")
r = s.data(message("after"))
t.like("%d %s" % (r[0], r[1].decode()), QUEUED, "a message alone afterwards: 250")
s.quit()
t.is_(queued("after"), "1", "and queued")

g.stop()
t.done()
