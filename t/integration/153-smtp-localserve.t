#!/usr/bin/env python3
"""
t/integration/153-smtp-localserve.t: `gannet localserve` with the smtp
module routes postmaster's mail to its one account (RFC 5321 4.5.1 says a
server MUST accept the bare <Postmaster> and postmaster@ its domains): the
config it writes names the account gannet as smtp.postmaster, and mail to
<Postmaster> and to postmaster@localhost lands in gannet's Inbox.
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
shutil.copy(os.path.join(g.BUILDDIR, "modules", "smtp", ".libs", "smtp.so"), moddir)
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)
shift = random.randrange(20000, 40000)
smtp_port = 1025 + shift
env = dict(os.environ, GANNET_LOCALSERVE_DIR="", GANNET_MODULE_DIR=moddir,
           GANNET_LOCALSERVE_PORT_SHIFT=str(shift))


def psql(sql):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "host=%s/run dbname=gannet user=gannet" % d,
                        "-c", sql], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "psql failed: " + r.stderr


def visit():
    replies = []
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as s:
            s.ehlo("client.example.org")
            for rcpt in ("Postmaster", "postmaster@localhost"):
                s.mail("someone@example.org")
                code, _ = s.rcpt(rcpt)
                replies.append(code)
                if code == 250:
                    replies.append(s.data(b"Subject: to %s\r\n\r\nhello\r\n" % rcpt.encode())[0])
    except Exception as e:  # noqa: BLE001 - reported as the test's diagnostic
        replies.append(repr(e))
    return replies, psql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a "
                         "ON a.id = m.account_id WHERE a.name = 'gannet'")


p, started, out = g.start_localserve(d, env)
t.ok(started, "localserve starts")
result = visit() if started else (["not started"], "")
p.send_signal(signal.SIGTERM)
try:
    rest, _ = p.communicate(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    rest, _ = p.communicate()
with open(os.path.join(d, "gannet.conf")) as f:
    conf = f.read()
t.like(conf, 'smtp = { postmaster = "gannet"; localserve = true; };', "its config names the account as postmaster")
t.is_(result[0], [250, 250, 250, 250], "<Postmaster> and postmaster@localhost: accepted, "
      "and their messages")
t.is_(result[1], "2", "both in the account gannet")
if not started or result[1] != "2":
    t.diag("".join(out + [rest])[-3000:])
t.is_(p.returncode, 0, "localserve stops")
t.done()
