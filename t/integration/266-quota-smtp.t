#!/usr/bin/env python3
"""
t/integration/266-quota-smtp.t: the quota module and inbound SMTP, with
smtplib and swaks against a running `gannet serve` (issue 11, items 2 and
3; mox.md 7):

- a message that fits is stored; one that would pass the limit gets
  452 4.2.2 (the DATA reply of its only recipient) and nothing is stored;
  a limit of exactly used + size still fits (used + new <= limit);
- a message to two accounts, one of them over its limit: stored for the
  other only;
- an account already full gets 452 4.2.2 at RCPT, per recipient, before
  any body is sent; swaks sees the same, at RCPT and after DATA;
- a message flagged \\Deleted still counts; once expunged (its UID kept
  for QRESYNC) it does not, and the room it leaves takes a new message;
- two deliveries racing for the last free bytes, from two connections on
  two workers, ending their DATA at the same moment: in every round one
  is stored and the other gets 452 4.2.2, and usage never passes the
  limit; the same for the last message under a message limit;
- two deliveries to two limited accounts with the recipients in opposite
  orders, ending together: both stored every time (no deadlock).
"""
import os
import smtplib
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import quotatest  # noqa: E402
from quotatest import message  # noqa: E402

t = gt.Tap()
srv = quotatest.Server(t, quota="warn_percent = 0;")
t.ok(srv.setup(), "migrate, domain, accounts alice and bob")
srv.start()


def quota(who, size):
    return srv.gannet("config", "account", "quota", who, size)[0] == 0


def code(r):
    """The SMTP code of a refusal send() returned; 250 for {} (accepted)."""
    if r == {}:
        return 250
    if isinstance(r, smtplib.SMTPDataError):
        return (r.smtp_code, r.smtp_error.decode())
    if isinstance(r, smtplib.SMTPRecipientsRefused):
        r = r.recipients
    if isinstance(r, dict):
        return {k: (c, e.decode()) for k, (c, e) in r.items()}
    return r


# ---- fits, does not fit ----
t.ok(quota("alice", "10K"), "alice: 10K")
t.is_(code(srv.send(["alice@example.com"], size=4000)), 250, "4000 bytes: stored")
used = srv.used("alice")
t.ok(4000 < used < 4500, "usage counts the message and its prefix (%d)" % used)
r = code(srv.send(["alice@example.com"], size=7000))
t.is_(r, (452, "4.2.2 account storage full"), "7000 more bytes: 452 4.2.2 after DATA")
t.is_(srv.used("alice"), used, "nothing stored")
msg = message(3000)
# The exact fit: what this message takes with its prefix (Return-Path,
# Delivered-To, Received), measured on a first copy.
t.ok(quota("alice", "unlimited"), "alice: unlimited for a moment")
t.is_(code(srv.send(["alice@example.com"], msg=msg)), 250, "a 3000-byte message")
with_prefix = srv.used("alice") - used
used = srv.used("alice")
t.ok(quota("alice", str(used + with_prefix - 1)), "alice's limit: one byte short of a second copy")
t.is_(code(srv.send(["alice@example.com"], msg=msg)), (452, "4.2.2 account storage full"),
      "used + new == limit + 1: 452")
t.ok(quota("alice", str(used + with_prefix)), "alice's limit: used + that message exactly")
t.is_(code(srv.send(["alice@example.com"], msg=msg)), 250, "used + new == limit: stored")
t.is_(srv.used("alice"), used + with_prefix, "usage is exactly the limit")

# ---- two recipients, one over its limit ----
t.ok(quota("bob", "100K"), "bob: 100K")
before_b = srv.count("bob")
r = srv.send(["alice@example.com", "bob@example.com"], size=2000)
t.is_(code(r), {"alice@example.com": (452, "4.2.2 account storage full")},
      "alice and bob, alice full: 452 4.2.2 for alice at RCPT, bob accepted")
t.is_(srv.count("bob"), before_b + 1, "bob got it")
t.ok(quota("alice", str(srv.used("alice") + 1000)), "alice: room for 1000 more bytes")
before_a = srv.count("alice")
r = srv.send(["alice@example.com", "bob@example.com"], size=2000)
t.is_(code(r), 250, "alice and bob, 2000 bytes that do not fit alice: the message is accepted")
t.is_((srv.count("alice"), srv.count("bob")), (before_a, before_b + 2),
      "stored for bob only")

# ---- full at RCPT, with smtplib's steps and with swaks ----
t.ok(quota("alice", str(srv.used("alice"))), "alice: limit == usage (full)")
with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as s:
    s.ehlo("client.example.org")
    s.mail("s@example.org")
    r1 = s.rcpt("alice@example.com")
    r2 = s.rcpt("bob@example.com")
    s.rset()
t.is_((r1[0], r1[1].decode()), (452, "4.2.2 account storage full"), "RCPT to a full account: 452 4.2.2")
t.is_(r2[0], 250, "RCPT to bob in the same transaction: 250")


def swaks(to, body):
    sw = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(srv.smtp_port), "--from",
                         "s@example.org", "--to", to, "--helo", "swaks.test", "--body", body],
                        capture_output=True, text=True, timeout=60)
    return sw.returncode, sw.stdout


rc, out = swaks("alice@example.com", "hello")
t.ok(rc != 0 and "<** 452 4.2.2 account storage full" in out and "DATA" not in out.split("<** 452")[1],
     "swaks to the full account: 452 4.2.2 at RCPT")
t.ok(quota("alice", str(srv.used("alice") + 500)), "alice: 500 bytes free")
rc, out = swaks("alice@example.com", "x" * 3000)
t.ok(rc != 0 and "-> ." in out and "<** 452 4.2.2 account storage full" in out.split("-> .")[-1],
     "swaks with 3000 bytes: RCPT accepted, 452 4.2.2 after DATA")
if rc == 0 or "452 4.2.2" not in out:
    t.diag(out[-1500:])

# ---- \Deleted counts, expunged does not ----
m = srv.session("alice")
m._simple_command("ENABLE", "QRESYNC")
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Deleted)")
t.is_(code(srv.send(["alice@example.com"], size=3000)), (452, "4.2.2 account storage full"),
      "a message flagged \\Deleted still counts")
full = srv.used("alice")
m.expunge()
m.logout()
freed = full - srv.used("alice")
t.ok(freed > 4000, "the expunge gave back the message's bytes (%d)" % freed)
t.is_(srv.sql("SELECT count(*) FROM gn_expunged e JOIN gn_accounts a ON a.id = e.account_id "
              "WHERE a.name = 'alice'"), "1", "its UID is kept for QRESYNC")
t.is_(code(srv.send(["alice@example.com"], size=3000)), 250, "and the room it left takes a new message")

# ---- the race for the last free bytes ----
SIZE = 6000


def racer(barrier, results, i):
    """One delivery of SIZE bytes that ends its DATA when the other does."""
    try:
        with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=60) as s:
            s.ehlo("racer%d.example.org" % i)
            s.mail("s@example.org")
            if s.rcpt("alice@example.com")[0] != 250:
                results[i] = "rcpt refused"
                barrier.abort()
                return
            s.putcmd("data")
            if s.getreply()[0] != 354:
                results[i] = "no 354"
                barrier.abort()
                return
            body = message(SIZE, tag=str(i))
            s.send(body[:-20])
            barrier.wait(timeout=30)
            s.send(body[-20:] + b".\r\n")
            c, text = s.getreply()
            results[i] = (c, text.decode())
    except Exception as e:  # noqa: BLE001
        results[i] = repr(e)
        barrier.abort()


ROUNDS = 10
outcomes = []
over = []
for rnd in range(ROUNDS):
    # Room for one message with its prefix (< 6400 bytes), not for two.
    limit = srv.used("alice") + SIZE + 1500
    quota("alice", str(limit))
    before = srv.count("alice")
    barrier = threading.Barrier(2)
    results = [None, None]
    threads = [threading.Thread(target=racer, args=(barrier, results, i)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    outcomes.append(sorted(r[0] if isinstance(r, tuple) else r for r in results))
    if srv.used("alice") > limit or srv.count("alice") != before + 1:
        over.append((rnd, srv.used("alice"), limit, srv.count("alice") - before))
    refusals = [r for r in results if isinstance(r, tuple) and r[0] != 250]
    if refusals and refusals[0] != (452, "4.2.2 account storage full"):
        over.append(("refusal", refusals))
t.is_(outcomes, [[250, 452]] * ROUNDS, "%d races: each time one 250 and one 452" % ROUNDS)
t.is_(over, [], "one message stored each time, usage never past the limit, 452 4.2.2 for the other")

# ---- the race for the last message (the message limit) ----
quota("alice", "unlimited")
outcomes = []
over = []
for rnd in range(ROUNDS // 2):
    # Room for one more message, not two; bytes unlimited.
    before = srv.count("alice")
    srv.gannet("config", "account", "quota", "alice", "messages", str(before + 1))
    barrier = threading.Barrier(2)
    results = [None, None]
    threads = [threading.Thread(target=racer, args=(barrier, results, i)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    outcomes.append(sorted(r[0] if isinstance(r, tuple) else r for r in results))
    if srv.count("alice") != before + 1:
        over.append((rnd, srv.count("alice") - before))
    refusals = [r for r in results if isinstance(r, tuple) and r[0] != 250]
    if refusals and refusals[0] != (452, "4.2.2 account message limit reached"):
        over.append(("refusal", refusals))
t.is_(outcomes, [[250, 452]] * (ROUNDS // 2),
      "%d races for the last message: each time one 250 and one 452" % (ROUNDS // 2))
t.is_(over, [], "one message stored each time, never past the message limit, 452 4.2.2 for the other")
srv.gannet("config", "account", "quota", "alice", "messages", "default")

# ---- two deliveries to two limited accounts, in opposite orders ----


def crosser(barrier, results, i, rcpts):
    try:
        with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=60) as s:
            s.ehlo("crosser%d.example.org" % i)
            s.mail("s@example.org")
            for r in rcpts:
                s.rcpt(r)
            s.putcmd("data")
            s.getreply()
            body = message(1000, tag=str(i))
            s.send(body[:-20])
            barrier.wait(timeout=30)
            s.send(body[-20:] + b".\r\n")
            results[i] = s.getreply()[0]
    except Exception as e:  # noqa: BLE001
        results[i] = repr(e)
        barrier.abort()


quota("alice", "unlimited")
quota("alice", str(srv.used("alice") + 1000000))
quota("bob", str(srv.used("bob") + 1000000))
crossed = []
for rnd in range(6):
    barrier = threading.Barrier(2)
    results = [None, None]
    orders = (["alice@example.com", "bob@example.com"], ["bob@example.com", "alice@example.com"])
    threads = [threading.Thread(target=crosser, args=(barrier, results, i, orders[i])) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    crossed.append(results)
t.is_(crossed, [[250, 250]] * 6, "alice+bob and bob+alice at the same moment, both limited: "
      "every delivery stored (the accounts are locked in one order, no deadlock)")
t.ok("deadlock" not in srv.g.log(), "no deadlock in the log")
log = srv.g.log()
pids = set(line.split(" pid=")[1].split()[0] for line in log.splitlines()
           if "event=over_quota" in line)
t.diag("over_quota logged by worker pids %s" % sorted(pids))
srv.g.stop()
t.done()
