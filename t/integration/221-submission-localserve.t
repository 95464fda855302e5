#!/usr/bin/env python3
"""
t/integration/221-submission-localserve.t: `gannet localserve` with the
smtp and submission modules installed listens for submission on loopback,
1587 with STARTTLS and 1465 with implicit TLS (plus its port shift), prints
both, and the account gannet logs in there with its password and submits
to the queue: 250 2.0.0 once committed (marked QUEUE).
"""
import os
import random
import shutil
import signal
import smtplib
import ssl
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
for name in ("smtp", "submission"):
    shutil.copy(os.path.join(g.BUILDDIR, "modules", name, ".libs", name + ".so"), moddir)
    os.chmod(os.path.join(moddir, name + ".so"), 0o755)
shift = random.randrange(20000, 40000)
p587, p465 = 1587 + shift, 1465 + shift
env = dict(os.environ, GANNET_LOCALSERVE_DIR="", GANNET_MODULE_DIR=moddir,
           GANNET_LOCALSERVE_PORT_SHIFT=str(shift))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
MSG = b"From: gannet@localhost\r\nTo: someone@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


def submit(implicit):
    try:
        if implicit:
            s = smtplib.SMTP_SSL("127.0.0.1", p465, timeout=20, context=ctx)
            s.ehlo("client.example.org")
        else:
            s = smtplib.SMTP("127.0.0.1", p587, timeout=20)
            s.ehlo("client.example.org")
            s.starttls(context=ctx)
            s.ehlo("client.example.org")
        with open(os.path.join(d, "password")) as f:
            pw = f.read().strip()
        s.user, s.password = "gannet@localhost", pw
        auth = s.auth("PLAIN", s.auth_plain)[0]
        s.mail("gannet@localhost")
        s.rcpt("someone@example.org")
        code, text = s.data(MSG)
        s.quit()
        return auth, "%d %s" % (code, text.decode())
    except Exception as e:  # noqa: BLE001 - reported as the test's diagnostic
        return None, repr(e)


p, started, out = g.start_localserve(d, env)
t.ok(started, "localserve starts")
banner = "".join(out)
t.like(banner, "submission  127.0.0.1:%d (starttls)" % p587, "it prints submission on 1587 (STARTTLS)")
t.like(banner, "submission  127.0.0.1:%d (implicit)" % p465, "and on 1465 (implicit TLS)")
r587 = submit(False) if started else (None, "not started")
r465 = submit(True) if started else (None, "not started")
t.ok(r587[0] == 235 and r587[1].startswith("250 2.0.0 Message queued as "),
     "QUEUE: 1587, STARTTLS, AUTH PLAIN as gannet@localhost: 235, then queued (%s)" % (r587,))
t.ok(r465[0] == 235 and r465[1].startswith("250 2.0.0 Message queued as "),
     "QUEUE: 1465, implicit TLS: 235, then queued (%s)" % (r465,))
p.send_signal(signal.SIGTERM)
try:
    rest, _ = p.communicate(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    rest, _ = p.communicate()
with open(os.path.join(d, "gannet.conf")) as f:
    conf = f.read()
t.like(conf, '"submission"', "its config loads the submission module")
if r587[0] != 235:
    t.diag("".join(out + [rest])[-3000:])
t.is_(p.returncode, 0, "localserve stops")
t.done()
