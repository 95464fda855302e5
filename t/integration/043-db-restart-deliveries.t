#!/usr/bin/env python3
"""
t/integration/043-db-restart-deliveries.t: PostgreSQL restarted and
killed, again and again, under a `gannet serve` that is receiving mail
(issue 7, item 4d).

Eight SMTP clients deliver in a loop, small messages and bodies large
enough to be written in chunks, each with a token of its own in the
Subject, while the test restarts the cluster (pg_ctl restart -m fast) and
kills it (-m immediate: a crash, then recovery), at random moments, so
that the breaks land at every point of a delivery: the RCPT lookups, the
chunk writes, the store transaction, its COMMIT, the settle after it.

What must hold:
- service resumes by itself: after the last restart every client gets a
  250 again within a bounded time, with gannet never restarted (no worker
  stays wedged answering 451);
- every message answered 250 is stored exactly once, whole (the blob's
  hash is the SHA-256 of the bytes sent, and its chunks hold those bytes);
- every message answered 4xx is not stored at all (its retry would be a
  second copy); one whose reply never came is stored at most once.
"""
import hashlib
import os
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

CLIENTS = 8
RESTARTS = 10
RESUME_S = 30

MODULE = os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so")
if not os.path.exists(MODULE):
    t.ok(False, "the smtp module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "smtp.so"))
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)

# A cluster of our own: the test restarts and kills it.  Its COMMITs are
# made slow (fsync on, and commit_delay before each WAL flush): a restart
# then often lands while a delivery's COMMIT is under way, the moment whose
# handling once left workers answering 451 for good.
cl = gt.PgCluster.create()
gt._cluster = cl
PG_OPTS = ("-k %s -p %d -c listen_addresses='' -c max_connections=300 -c fsync=on "
           "-c commit_delay=30000 -c commit_siblings=0" % (cl.host, cl.port))

port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; }' % port,
    modules='directory = "%s"; load = [ "smtp" ];' % moddir,
    extra='workers = 2;\nlimits = { connections_per_ip = 50; };\n'
          'smtp = { max_message_size = "4M"; };\n'))


def gannet(*args):
    r = gt.run_gannet(["-c", g.conf_path] + list(args))
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.returncode


t.ok(all(gannet(*a) == 0 for a in [("migrate",), ("config", "domain", "add", "example.com"),
                                    ("config", "account", "add", "alice", "alice@example.com"),
                                    ("config", "account", "add", "bob", "bob@example.com")]),
     "migrate, a domain and two accounts")
def pg(*args):
    return subprocess.run(gt._as_run_user([gt._pg_bin("pg_ctl"), "-D", cl.datadir, "-w"] +
                                          list(args)),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pg_start():
    pg("-o", PG_OPTS, "-l", os.path.join(cl.host, "pg.log"), "start")


pg("-m", "fast", "-o", PG_OPTS, "-l", os.path.join(cl.host, "pg.log"), "restart")


try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()


# ---- the clients ----

lock = threading.Lock()
# token -> ({recipient: reply code, or None without a reply}, sha256 of the
# body sent).  A recipient refused at RCPT has its RCPT reply; the others
# the reply to DATA.
outcomes = {}
stop = threading.Event()
restarted_at = [0.0]   # time of the last restart
ok_after = set()       # clients that got a 250 after the last restart


def message(token, large):
    lines = ["From: sender@client.test", "To: alice@example.com, bob@example.com",
             "Subject: %s" % token, "Message-ID: <%s@client.test>" % token, ""]
    n = 9000 if large else 20   # about 650 KB: three chunks of 256 KiB
    lines += ["%06d %s" % (i, token[:58]) for i in range(n)]
    body = "\r\n".join(lines) + "\r\n"
    return body, hashlib.sha256(body.encode()).hexdigest()


def client(i):
    rnd = random.Random(i)
    n = 0
    while not stop.is_set():
        n += 1
        token = "c%d-%d-%08x" % (i, n, rnd.getrandbits(32))
        body, digest = message(token, rnd.random() < 0.3)
        codes = {"alice": None, "bob": None}
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.ehlo("client.test")
                refused = s.sendmail("sender@client.test", ["alice@example.com", "bob@example.com"],
                                     body)
            for name in codes:
                codes[name] = refused.get("%s@example.com" % name, (250,))[0]
        except smtplib.SMTPRecipientsRefused as e:
            for name in codes:
                codes[name] = e.recipients["%s@example.com" % name][0]
        except smtplib.SMTPResponseException as e:
            for name in codes:
                codes[name] = e.smtp_code
        except (OSError, smtplib.SMTPException):
            pass   # no reply: the outcome is unknown to the client
        code = max(c or 0 for c in codes.values())
        with lock:
            outcomes[token] = (codes, digest)
            if code == 250 and time.time() > restarted_at[0]:
                ok_after.add(i)
        if code != 250:
            time.sleep(0.05)


threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
for th in threads:
    th.start()
time.sleep(1.0)

# ---- the restarts ----

rnd = random.Random(4)
kills = 0
for n in range(RESTARTS):
    time.sleep(rnd.uniform(0.2, 1.5))
    if n % 3 == 2:
        pg("-m", "immediate", "stop")   # a crash: recovery at start
        kills += 1
        pg_start()
    else:
        pg("-m", "fast", "-o", PG_OPTS, "-l", os.path.join(cl.host, "pg.log"), "restart")
    with lock:
        restarted_at[0] = time.time()
        ok_after.clear()

deadline = time.time() + RESUME_S
while time.time() < deadline:
    with lock:
        if len(ok_after) == CLIENTS:
            break
    time.sleep(0.2)
with lock:
    resumed = sorted(ok_after)
t.is_(len(resumed), CLIENTS, "after %d restarts (%d of them kills) every client gets 250 again "
      "within %d s, without restarting gannet" % (RESTARTS, kills, RESUME_S))
stop.set()
for th in threads:
    th.join(90)
t.ok(g.proc.poll() is None, "gannet is still running")

# ---- what was stored ----

with lock:
    sent = dict(outcomes)
# (token, recipient) pairs by reply
pairs = [(k, r, c) for k, (codes, _) in sent.items() for r, c in codes.items()]
acked = {(k, r) for k, r, c in pairs if c == 250}
temp = {(k, r) for k, r, c in pairs if c is not None and 400 <= c < 500}
perm = {(k, r) for k, r, c in pairs if c is not None and c >= 500}
unknown = {(k, r) for k, r, c in pairs if c is None}
t.diag("%d messages to 2 recipients: %d copies answered 250, %d 4xx, %d 5xx, %d without a reply"
       % (len(sent), len(acked), len(temp), len(perm), len(unknown)))
t.ok(len(acked) > 20 and len(temp) > 0, "many were accepted, and some failed temporarily "
     "(the restarts hit deliveries)")
t.is_(sorted(perm), [], "none was refused for good")

rows = cl.psql("SELECT m.subject, a.name, encode(b.hash, 'hex') FROM gn_messages m "
               "JOIN gn_accounts a ON a.id = m.account_id JOIN gn_blobs b ON b.id = m.blob_id",
               db=g.dbname)
stored = {}
hashes = {}
for line in rows.splitlines():
    subject, account, digest = line.split("|")
    stored[(subject, account)] = stored.get((subject, account), 0) + 1
    hashes[subject] = digest

bad = sorted(p for p in acked if stored.get(p, 0) != 1)
if not t.is_(bad[:5], [], "every copy answered 250 is stored exactly once"):
    t.diag("stored: %r" % {p: stored.get(p) for p in bad[:5]})
bad = sorted(p for p in temp if stored.get(p, 0))
t.is_(bad[:5], [], "no copy answered 4xx is stored (its retry would be a second copy)")
bad = sorted(p for p in unknown if stored.get(p, 0) > 1)
t.is_(bad[:5], [], "a copy without a reply is stored at most once")
acked = {k for k, _ in acked}
bad = [k for k in acked if hashes.get(k) != sent[k][1]]
t.is_(sorted(bad)[:5], [], "every accepted message's body is stored under the SHA-256 of the bytes sent")
t.is_(cl.psql("SELECT count(*) FROM gn_blobs b WHERE b.hash IS NOT NULL AND (b.hash <> "
              "sha256(coalesce((SELECT string_agg(data, ''::bytea ORDER BY seq) FROM gn_blob_chunks c "
              "WHERE c.blob_id = b.id), ''::bytea)) OR b.size <> (SELECT coalesce(sum(length(data)), 0) "
              "FROM gn_blob_chunks c WHERE c.blob_id = b.id))", db=g.dbname), "0",
      "and every stored body holds exactly those bytes (none truncated)")
t.is_(cl.psql("SELECT count(*) FROM gn_blobs b WHERE b.hash IS NOT NULL AND b.refcount <> "
              "(SELECT count(*) FROM gn_messages m WHERE m.blob_id = b.id)", db=g.dbname), "0",
      "every blob's reference count is exact")
log = g.log()
if not t.ok("event=child_exited" not in log, "no gannet process died"):
    t.diag("\n".join(l for l in log.splitlines() if "child_exited" in l or "level=error" in l)[:3000])
if "event=db_transaction_abandoned" in log:
    t.diag("note: an error path left a transaction open (ended by the loop):")
    t.diag("\n".join(l for l in log.splitlines() if "db_transaction_abandoned" in l)[:2000])
t.is_(g.stop(), 0, "gannet stops cleanly")
t.done()
