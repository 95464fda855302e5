#!/usr/bin/env python3
"""
t/integration/042-commit-outcome.t: the connection to PostgreSQL breaks
while a delivery's COMMIT is under way (issue 7, item 4c).

A real `gannet serve` with the smtp module talks to PostgreSQL through a
proxy (t/lib/pgproxy.py) that breaks the worker's connection at that
moment, in the two ways a real failure can leave it:

- the server committed but its reply was lost: the sender hears 250 (the
  message is stored, once), never a 451 that would make it send a second
  copy;
- the COMMIT never reached the server: the sender hears 451 4.3.0, nothing
  is stored, and the retry is stored exactly once.

Either way the worker goes on serving.
"""
import os
import shutil
import smtplib
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import pgproxy  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so")
if not os.path.exists(MODULE):
    t.ok(False, "the smtp module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "smtp.so"))
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)

cl = gt.cluster()
db = cl.create_db()
pdir = gt.tmpdir("gannet-proxy-")
proxy = pgproxy.PgProxy(cl.host, cl.port, pdir, 5432)

port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; }' % port,
    modules='directory = "%s"; load = [ "smtp" ];' % moddir,
    extra="workers = 1;\n"), db=db)
# Gannet's every connection goes through the proxy.
with open(g.conf_path) as f:
    conf = f.read()
with open(g.conf_path, "w") as f:
    f.write(conf.replace(g.conninfo, "host=%s port=5432 user=gannet dbname=%s" % (pdir, db)))


def gannet(*args):
    r = gt.run_gannet(["-c", g.conf_path] + list(args))
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.returncode


t.ok(all(gannet(*a) == 0 for a in [("migrate",), ("config", "domain", "add", "example.com"),
                                    ("config", "account", "add", "alice", "alice@example.com")]),
     "migrate, a domain and an account (through the proxy)")
try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()


def stored(token):
    return int(cl.psql("SELECT count(*) FROM gn_messages WHERE subject = '%s'" % token, db=db))


def send(token, size=2000):
    """Sends one message; returns the reply code to its DATA."""
    body = ("From: s@client.test\r\nTo: alice@example.com\r\nSubject: %s\r\n\r\n" % token +
            ("x" * 70 + "\r\n") * (size // 72))
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo("client.test")
            s.sendmail("s@client.test", ["alice@example.com"], body)
        return 250
    except smtplib.SMTPDataError as e:
        return e.smtp_code
    except smtplib.SMTPRecipientsRefused as e:
        return list(e.recipients.values())[0][0]


def wait_log(needle, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if needle in g.log():
            return True
        time.sleep(0.1)
    return False


tok = "plain-" + uuid.uuid4().hex
t.is_(send(tok), 250, "a message is delivered through the proxy")
t.is_(stored(tok), 1, "and stored once")

# The server commits; the reply never arrives.
for size, what in ((2000, "small"), (700000, "large (its body written in chunks first)")):
    tok = "reply-lost-" + uuid.uuid4().hex
    fired = proxy.fired
    proxy.arm("lose_reply")
    code = send(tok, size)
    t.is_(proxy.fired, fired + 1, "%s message: the connection broke after the server committed" % what)
    t.is_(code, 250, "%s message: the sender hears 250, the outcome having been asked of the server"
          % what)
    t.is_(stored(tok), 1, "%s message: stored exactly once" % what)
t.ok("event=commit_outcome_found" in g.log() and "committed=yes" in g.log(),
     "the worker logged that it found the outcome")

# The COMMIT never reaches the server.
for size, what in ((2000, "small"), (700000, "large")):
    tok = "commit-lost-" + uuid.uuid4().hex
    fired = proxy.fired
    proxy.arm("lose_commit")
    code = send(tok, size)
    t.is_(proxy.fired, fired + 1, "%s message: the connection broke before the COMMIT arrived" % what)
    t.is_(code, 451, "%s message: the sender hears 451" % what)
    t.is_(stored(tok), 0, "%s message: nothing is stored" % what)
    t.is_(send(tok, size), 250, "%s message: the sender's retry is accepted" % what)
    t.is_(stored(tok), 1, "%s message: and stored exactly once" % what)

tok = "after-" + uuid.uuid4().hex
t.is_(send(tok), 250, "the worker goes on serving")
t.is_(int(cl.psql("SELECT count(*) FROM gn_blobs b WHERE b.hash IS NOT NULL AND b.refcount <> "
                  "(SELECT count(*) FROM gn_messages m WHERE m.blob_id = b.id)", db=db)), 0,
      "every blob's reference count is exact")
t.ok("event=db_transaction_abandoned" not in g.log(), "no transaction was left open")
t.is_(g.stop(), 0, "gannet stops cleanly")
t.done()
