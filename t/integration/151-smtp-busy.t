#!/usr/bin/env python3
"""
t/integration/151-smtp-busy.t: a connection the core refuses before it
opens (over limits.connections_per_ip) hears why in SMTP's own terms,
"421 4.7.0" (RFC 5321 3.8), instead of a silent close; the connections
already open go on; once one closes, a new one is served.
"""
import os
import shutil
import time
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "smtptest", ".libs", "smtptest.so")
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "smtptest.so"))
os.chmod(os.path.join(moddir, "smtptest.so"), 0o755)
d = gt.tmpdir()
spool = os.path.join(d, "spool")
os.mkdir(spool)
os.chmod(spool, 0o777)
port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtptest"; tls = "none"; }' % port,
    modules='directory = "%s"; load = [ "smtptest" ];' % moddir,
    extra='workers = 1;\nlimits = { connections_per_ip = 2; };\nsmtptest = { dir = "%s"; };\n' % spool),
    directory=d)
g.start(wait_ports=(port,))


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    return s, f


def line(f):
    try:
        return f.readline().decode("utf-8", "replace")
    except OSError as e:
        return "error: %r" % e


held = []
for i in range(2):
    # wait_port's probes close at once, but the worker may not have seen
    # that yet on a busy machine: a slot they still hold frees within
    # moments, so a 421 here is retried until a deadline.
    deadline = time.monotonic() + 10
    while True:
        s, f = connect()
        greeting = line(f)
        if not greeting.startswith("421") or time.monotonic() > deadline:
            break
        s.close()
        time.sleep(0.1)
    held.append((s, f))
    t.like(greeting, "220 ", "connection %d of 2 is greeted" % (i + 1))

s3, f3 = connect()
r = line(f3)
t.like(r, "421 4.7.0", "a third connection from the address gets 421 4.7.0")
t.is_(f3.readline(), b"", "and is closed")
s3.close()

s, f = held[0]
s.sendall(b"NOOP\r\n")
t.like(line(f), "250", "the connections already open go on")
s.sendall(b"QUIT\r\n")
t.like(line(f), "221", "one of them quits")
s.close()
held.pop(0)

ok = False
for _ in range(50):
    s4, f4 = connect()
    r = line(f4)
    s4.close()
    if r.startswith("220"):
        ok = True
        break
    time.sleep(0.1)
t.ok(ok, "with a slot free again, a new connection is greeted")
for s, f in held:
    s.close()
t.like(g.log(), "event=conn_refused", "the refusal is logged")
t.is_(g.stop(), 0, "gannet stops cleanly")
t.done()
