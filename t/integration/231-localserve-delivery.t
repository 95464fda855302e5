#!/usr/bin/env python3
"""
t/integration/231-localserve-delivery.t: in `gannet localserve` the queue
delivers to localserve's own SMTP listener (queue.relay) instead of MX
hosts, and that listener (the smtp module with smtp.localserve) fails the
deliveries the addresses ask for, as mox's localserve (mox.md 3):

- a recipient anywhere lands in the account gannet;
- localparts ending in temperror (451), permerror (550) or a code (452,
  553) fail that way at DATA: temporary ones stay queued, permanent ones
  fail with a DSN in gannet's Inbox;
- a recipient starting with "rcptto" fails at RCPT, a sender starting
  with "mailfrom" at MAIL FROM;
- localserve prints the SMTP and submission ports, and keeps retired
  queue records 72 h (the outcomes below are read from them);
- (a gannet serve with smtp.localserve_timeout = 1s) a localpart ending
  in timeout gets 451 4.3.0 only after the delay.
"""
import os
import random
import shutil
import signal
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as g  # noqa: E402

t = g.Tap()
base = g.tmpdir("gannet-ls-")
d = os.path.join(base, "ls")
moddir = os.path.join(base, "modules")
os.mkdir(moddir, 0o755)
for m in ("smtp", "submission"):
    so = os.path.join(g.BUILDDIR, "modules", m, ".libs", m + ".so")
    if os.path.exists(so):
        shutil.copy(so, moddir)
        os.chmod(os.path.join(moddir, m + ".so"), 0o755)
shift = random.randrange(20000, 40000)
env = dict(os.environ, GANNET_LOCALSERVE_DIR="", GANNET_MODULE_DIR=moddir,
           GANNET_LOCALSERVE_PORT_SHIFT=str(shift))


def psql(sql):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "host=%s/run dbname=gannet user=gannet" % d,
                        "-c", sql], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "psql failed: " + r.stderr


def gannet(*args, stdin=None):
    return g.run_gannet(["-c", os.path.join(d, "gannet.conf")] + list(args), input=stdin)


def queue(frm, to):
    return gannet("queue", "add", "--from", frm, "--to", to,
                  stdin="From: <%s>\nTo: <%s>\nSubject: to %s\n\nhello\n" % (frm, to, to))


def state(rcpt):
    """'queued CODE' or 'RESULT CODE' (retired), or ''."""
    q = psql("SELECT 'queued ' || coalesce(last_code, 0) FROM gn_queue_recipients WHERE rcpt = '%s'" % rcpt)
    if q:
        return q
    return psql("SELECT result || ' ' || coalesce(last_code, 0) FROM gn_queue_retired WHERE rcpt = '%s'" % rcpt)


p, started, out = g.start_localserve(d, env)
t.ok(started, "localserve starts")
banner = "".join(out)
t.like(banner, "smtp        127.0.0.1:%d (starttls)" % (1025 + shift), "it prints the SMTP port")
t.like(banner, "submission  127.0.0.1:%d (starttls)" % (1587 + shift), "and the submission port")
t.like(banner, "submission  127.0.0.1:%d (implicit)" % (1465 + shift), "and the submissions port")
with open(os.path.join(d, "gannet.conf")) as f:
    conf = f.read()
t.like(conf, 'queue = { relay = "127.0.0.1"; smtp_port = %d; retired_keep = "72h"; };' % (1025 + shift),
       "its config sends the queue to its own SMTP port and keeps retired records 72h")

t.is_(gannet("config", "address", "add", "mailfrom-temperror@localhost", "gannet").returncode, 0,
      "an address of gannet's that asks for a failure at MAIL FROM")
t.is_(gannet("queue", "retired", "keep", "gannet").stdout,
      "account gannet keeps retired queue records for 259200s (the default, queue.retired_keep)\n",
      "gannet keeps retired queue records 72h (to look at the outcomes), localserve's default")
cases = [
    ("gannet@localhost", "someone@example.org", "delivered 250"),
    ("gannet@localhost", "x-temperror@example.org", "queued 451"),
    ("gannet@localhost", "x-permerror@example.org", "failed 550"),
    ("gannet@localhost", "x-452@example.org", "queued 452"),
    ("gannet@localhost", "x-553@example.org", "failed 553"),
    ("gannet@localhost", "rcptto-permerror@example.org", "failed 550"),
    ("mailfrom-temperror@localhost", "y@example.org", "queued 451"),
]
for frm, to, _ in cases:
    r = queue(frm, to)
    if r.returncode != 0:
        t.diag(r.stderr)
for frm, to, want in cases:
    ok = False
    deadline = time.time() + 60
    while time.time() < deadline and not ok:
        ok = state(to) == want
        if not ok:
            time.sleep(0.2)
    t.is_(state(to), want, "%s from %s: %s" % (to, frm, want))

t.is_(psql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
           "WHERE a.name = 'gannet' AND m.subject = 'to someone@example.org'"), "1",
      "someone@example.org's message is in gannet's account")
t.is_(psql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
           "WHERE a.name = 'gannet' AND m.subject LIKE 'to x-%'"), "0", "no failed one is stored")
t.is_(psql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
           "JOIN gn_mailboxes b ON b.account_id = m.account_id AND b.id = m.mailbox_id "
           "WHERE a.name = 'gannet' AND b.name = 'Inbox' AND m.subject = 'mail delivery failed'"), "3",
      "a failure DSN for each permanent failure in gannet's Inbox")
t.is_(psql("SELECT last_text FROM gn_queue_recipients WHERE rcpt = 'x-temperror@example.org'"),
      "localserve: temporary error requested by the address", "the server's text is kept")

p.send_signal(signal.SIGTERM)
try:
    rest, _ = p.communicate(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    rest, _ = p.communicate()
log = banner + rest
t.like(log, "event=localserve_failure id=", "the failures are logged")
t.ok("at=rcpt code=550" in log, "rcptto-permerror failed at RCPT")
t.ok("at=mail code=451" in log, "mailfrom-temperror failed at MAIL FROM")
t.ok("at=data code=553" in log, "x-553 failed at DATA")
t.is_(p.returncode, 0, "localserve stops")

# ---- timeout: the answer after smtp.localserve_timeout ----
port = g.free_port()
srv = g.Gannet(g.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }' % port,
    modules='directory = "%s"; load = [ "smtp" ];' % moddir,
    extra='workers = 1;\nsmtp = { postmaster = "gannet"; localserve = true; localserve_timeout = "1s"; };'))
for args in (("migrate",), ("config", "domain", "add", "localhost"),
             ("config", "account", "add", "gannet", "gannet@localhost")):
    g.run_gannet(["-c", srv.conf_path] + list(args))
srv.start(wait_ports=[port])
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    s.ehlo("client.example.org")
    s.mail("a@example.org")
    t.is_(s.rcpt("b-timeout@example.org")[0], 250, "a recipient ending in timeout is accepted at RCPT")
    t0 = time.monotonic()
    code, text = s.data(b"Subject: slow\r\n\r\nhello\r\n")
    waited = time.monotonic() - t0
    t.is_((code, text), (451, b"4.3.0 localserve: timeout requested by the address"),
          "the end of data gets 451 4.3.0")
    t.ok(waited >= 0.9, "after the delay (waited %.1fs)" % waited)
    s.mail("rcptto@example.org")
    t.is_(s.rcpt("rcptto-timeout@example.org")[0], 451, "at RCPT for an rcptto address")
srv.stop()
if not started:
    t.diag("".join(out + [rest])[-3000:])
t.done()
