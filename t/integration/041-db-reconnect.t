#!/usr/bin/env python3
"""
t/integration/041-db-reconnect.t: PostgreSQL restarts under a running
`gannet serve`.  Every process notices that its connection broke, logs it,
reconnects in the background with backoff and logs that too, without dying
(no child exits, the same processes reconnect) and the listener keeps
serving.

Uses a cluster of its own (never the shared one): the test restarts it.
The sessions use the protocol of the test module t/modules/mastertest.
"""
import os
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "mastertest", ".libs", "mastertest.so")
if not os.path.exists(MODULE):
    t.ok(False, "the test module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "mastertest.so"))
os.chmod(os.path.join(moddir, "mastertest.so"), 0o755)

# Our own cluster, made the shared one for Gannet (it uses gt.cluster()).
cl = gt.PgCluster.create()
gt._cluster = cl

port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "mt"; address = "127.0.0.1"; port = %d; protocol = "mastertest"; }' % port,
    modules='directory = "%s"; load = [ "mastertest" ];' % moddir,
    extra='workers = 1;\ngrace_period = "2s";\n'))
try:
    g.start(wait_ports=[port])
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(e)
    t.done()


def wait_for(pred, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


def started_pids():
    return set(re.findall(r"pid=(\d+) event=started role=(?:worker|runner)", g.log()))


def greeting():
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return s.makefile("rb").readline().decode(errors="replace")


# Every process has connected and started before the restart.
pids = wait_for(lambda: started_pids() if len(started_pids()) >= 2 else None)
t.ok(pids, "the worker and the runner started")
pids = pids or set()
t.like(greeting(), "+READY", "the worker serves before the restart")

cl.restart()


def reconnected():
    log = g.log()
    lost = set(re.findall(r"pid=(\d+) event=db_lost", log))
    back = set(re.findall(r"pid=(\d+) event=db_reconnected", log))
    return (lost, back) if pids and pids <= lost and pids <= back else None


r = wait_for(reconnected)
t.ok(r is not None, "after PostgreSQL restarts, each process logs the lost connection "
     "and its reconnection")
if r is None:
    t.diag(g.log())
log = g.log()
t.ok("event=child_exited" not in log, "no process died")
t.ok(g.proc.poll() is None, "gannet is still running")
t.like(greeting(), "+READY", "the worker still serves")
t.is_(g.stop(), 0, "gannet stops cleanly afterwards")

t.done()
