#!/usr/bin/env python3
"""
t/integration/224-submission-service.t: the service "submission.v1"
(gannet/submit.h) as the webapi's Send uses it.  The test module
t/modules/submittest composes a message with gn_compose() and queues it
through the service (`gannet submittest send ...`, in the CLI process, on
the same database a server would use):

- queued: one result per recipient (the queue message's id), the queue
  lists every recipient with the From address as sender and the extra
  data; the queued message is the composed one (multipart/alternative,
  the subject decodes), signed first with both DKIM keys of the From
  domain, which python3-dkim verifies;
- a hold (FutureRelease) an hour ahead is the release time; more than 60
  days ahead: refused (GN_SUBMIT_USER);
- From: an address of another account is refused (GN_SUBMIT_BAD_FROM),
  an alias with AllowMsgFrom is allowed, one without is refused;
- a FromID login gets a random FromID per recipient (22 characters of
  base64url, all different), shown in the queue; another login of the
  same account gets none;
- the account's limits per day: messages (GN_SUBMIT_MESSAGE_LIMIT) and
  first-time recipients (GN_SUBMIT_RECIPIENT_LIMIT), nothing queued then.
"""
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

# enum gn_submit_status
USER, BAD_FROM, MESSAGE_LIMIT, RECIPIENT_LIMIT = 1, 2, 4, 5

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")
moddir = gt.module_dir()
gt.install_modules(t, moddir, "submission", "aliases")
so = os.path.join(gt.BUILDDIR, "t", "modules", "submittest", ".libs", "submittest.so")
if not t.ok(os.path.exists(so), "the test module is built (%s)" % so):
    t.done()
shutil.copy(so, os.path.join(moddir, "submittest.so"))
os.chmod(os.path.join(moddir, "submittest.so"), 0o755)

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
g = gt.Gannet(gt.base_conf(
    listeners=('{ address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }'
               % gt.free_port()),
    modules='directory = "%s"; load = [ "submission", "aliases", "submittest" ];' % moddir,
    extra=('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
           'queue = { transport = "none"; };') % (cert, key)),
    directory=d)


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


def send(account, login, frm, rcpts, hold=0, extra="-"):
    """(exit code, {rcpt: (queue id, fromid)} or the refusal's (status, text), message id)"""
    r = gt.run_gannet(["-c", g.conf_path, "submittest", "send", account, login, frm, str(hold), extra]
                      + list(rcpts))
    if r.returncode == 1:
        m = re.match(r"refused status=(\d+) text=(.*)", r.stdout)
        return 1, (int(m.group(1)), m.group(2)) if m else (None, r.stdout + r.stderr), None
    if r.returncode != 0:
        t.diag("submittest send: %d %s%s" % (r.returncode, r.stdout, r.stderr))
        return r.returncode, None, None
    res, mid = {}, None
    for line in r.stdout.splitlines():
        m = re.match(r"rcpt=(\S+) queue_id=(\d+) fromid=(\S+)$", line)
        if m:
            res[m.group(1)] = (m.group(2), None if m.group(3) == "-" else m.group(3))
        elif line.startswith("message_id="):
            mid = line[len("message_id="):]
    return 0, res, mid


def qlist(*args):
    return gannet("queue", "list", *args).stdout.splitlines()


def dump(qid):
    return subprocess.run([gt.GANNET, "-c", g.conf_path, "queue", "dump", qid],
                          capture_output=True, timeout=60).stdout


def counts():
    return sql("SELECT (SELECT count(*) FROM gn_queue_messages) || ' ' || "
               "(SELECT count(*) FROM gn_queue_recipients)")


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "address", "add", "alicef@example.com", "alice"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "alias", "add", "team@example.com", "alice@example.com", "--allow-msg-from"),
         ("config", "alias", "add", "quiet@example.com", "alice@example.com"),
         ("config", "account", "fromid", "alice", "add", "alicef@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup),
     "accounts alice (FromID login alicef) and bob; aliases team (AllowMsgFrom) and quiet")
recs = {}
for sel, alg in (("ed1", "ed25519"), ("rsa1", "rsa")):
    r = gannet("config", "dkim", "add", "example.com", sel, alg)
    recs.update({name: "".join(parts) for name, parts in gt.txt_records(r.stdout).items()})
t.is_(len(recs), 2, "DKIM keys ed25519 and rsa for example.com")
recfile = os.path.join(d, "records.json")
with open(recfile, "w") as f:
    json.dump(recs, f)

# ---- queued ----
rc, res, mid = send("alice", "alice@example.com", "alice@example.com",
                    ["x@example.net", "y@example.org"], extra="User-Id=42")
t.is_(rc, 0, "queued through submission.v1")
res = res or {}
t.is_(sorted(res), ["x@example.net", "y@example.org"], "one result per recipient")
qids = set(v[0] for v in res.values())
t.ok(len(qids) == 1 and all(v[1] is None for v in res.values()),
     "the same queue message for both, no FromIDs (%s)" % res)
qid = qids.pop() if len(qids) == 1 else "?"
rows = [ln for ln in qlist("--account", "alice") if " message=%s " % qid in ln]
t.is_(len(rows), 2, "gannet queue list: the two recipients of message %s" % qid)
t.ok(all("from=<alice@example.com>" in ln and "fromid=" not in ln for ln in rows),
     "sent from alice@example.com (%s)" % rows[:1])
t.ok(all('extra={"User-Id": "42"}' in ln for ln in rows), "with the extra data (%s)" % rows[:1])
body = dump(rows[0].split()[0]) if rows else b""
hdr = body.split(b"\r\n\r\n", 1)[0]
t.ok(hdr.startswith(b"DKIM-Signature:"), "the DKIM signatures come first")
m = email.message_from_bytes(body, policy=email.policy.default)
t.is_(len(m.get_all("DKIM-Signature") or []), 2, "two signatures, one a key")
t.is_(str(m["Subject"]), "Grüße from submission.v1", "the composed message: its subject")
t.is_(m.get_content_type(), "multipart/alternative", "the composed message: text and HTML")
t.is_(str(m["Message-ID"]), mid, "the composed message: its Message-ID")
mfile = os.path.join(d, "queued.eml")
with open(mfile, "wb") as f:
    f.write(body)
r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), mfile, recfile],
                   capture_output=True, text=True, timeout=60)
if r.returncode != 0:
    t.diag(r.stderr[-2000:])
t.is_(r.stdout, "0 pass\n1 pass\n", "python3-dkim verifies both signatures")
with open(mfile, "wb") as f:
    f.write(body.replace(b"Hello through", b"Hello changed"))
r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), mfile, recfile],
                   capture_output=True, text=True, timeout=60)
t.is_(r.stdout, "0 fail\n1 fail\n", "and neither when the body changed")

# ---- hold ----
rc, res, _ = send("alice", "alice@example.com", "alice@example.com", ["h@example.net"], hold=3600)
t.is_(rc, 0, "queued with a hold of an hour")
rows = qlist("--to", "h@example.net")
rel = re.search(r" release=(\S+)", rows[0]) if rows else None
want = time.time() + 3600
got = time.mktime(time.strptime(rel.group(1), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone if rel else 0
t.ok(rel is not None and abs(got - want) < 300, "held until about an hour from now (%s)" % rows[:1])
before = counts()
rc, res, _ = send("alice", "alice@example.com", "alice@example.com", ["h2@example.net"],
                  hold=61 * 24 * 3600)
t.ok(rc == 1 and res[0] == USER and "60 days" in res[1],
     "a hold more than 60 days ahead: refused, user error (%s)" % (res,))
t.is_(counts(), before, "nothing queued")

# ---- From ----
rc, res, _ = send("alice", "alice@example.com", "bob@example.com", ["f@example.net"])
t.ok(rc == 1 and res[0] == BAD_FROM, "From another account's address: badFrom (%s)" % (res,))
rc, res, _ = send("alice", "alice@example.com", "team@example.com", ["f@example.net"])
t.is_(rc, 0, "From an alias with AllowMsgFrom that alice is in: queued")
rc, res, _ = send("alice", "alice@example.com", "quiet@example.com", ["f@example.net"])
t.ok(rc == 1 and res[0] == BAD_FROM, "From an alias without AllowMsgFrom: badFrom (%s)" % (res,))
t.ok(len(qlist("--to", "f@example.net")) == 1, "only the allowed one is in the queue")

# ---- FromIDs ----
rc, res, _ = send("alice", "alicef@example.com", "alicef@example.com",
                  ["i1@example.net", "i2@example.net", "i3@example.net"])
t.is_(rc, 0, "a FromID login: queued")
ids = [v[1] for v in (res or {}).values()]
t.ok(len(ids) == 3 and all(i is not None and re.match(r"^[A-Za-z0-9_-]{22}$", i) for i in ids)
     and len(set(ids)) == 3, "a random FromID of 22 base64url characters per recipient (%s)" % ids)
for rcpt, (q, fid) in sorted((res or {}).items()):
    rows = qlist("--to", rcpt)
    t.ok(len(rows) == 1 and ("fromid=%s" % fid) in rows[0],
         "the queue keeps %s's FromID (%s)" % (rcpt, rows[:1]))
rc, res, _ = send("alice", "alice@example.com", "alicef@example.com", ["i4@example.net"])
t.ok(rc == 0 and all(v[1] is None for v in res.values()),
     "the same mailbox under a login that is not listed: no FromID")

# ---- limits ----
aid = sql("SELECT id FROM gn_accounts WHERE name = 'alice'")
sent = int(sql("SELECT coalesce(sum(messages), 0) FROM gn_submission_counts WHERE account_id = %s" % aid))
t.is_(sent, 5, "the service counted each of the 5 messages it queued")
sql("INSERT INTO gn_submission_limits (account_id, messages_per_day) VALUES (%s, %d)" % (aid, sent))
before = counts()
rc, res, _ = send("alice", "alice@example.com", "alice@example.com", ["l@example.net"])
t.ok(rc == 1 and res[0] == MESSAGE_LIMIT, "messages per day reached: messageLimitReached (%s)" % (res,))
t.is_(counts(), before, "nothing queued")
sql("UPDATE gn_submission_limits SET messages_per_day = NULL, first_time_recipients_per_day = 0 "
    "WHERE account_id = %s" % aid)
rc, res, _ = send("alice", "alice@example.com", "alice@example.com", ["new@example.net"])
t.ok(rc == 1 and res[0] == RECIPIENT_LIMIT,
     "first-time recipients per day reached: recipientLimitReached (%s)" % (res,))
rc, res, _ = send("alice", "alice@example.com", "alice@example.com", ["x@example.net"])
t.is_(rc, 0, "a recipient sent to before is not first-time: queued")
t.is_(sql("SELECT count(*) FROM gn_submission_recipients WHERE account_id = %s "
          "AND address = 'new@example.net'" % aid), "0", "the refused recipient is not recorded")
t.done()
