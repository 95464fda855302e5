#!/usr/bin/env python3
"""
t/integration/051-serve-start-fails.t: a worker whose module cannot start
is retried with a growing delay, and after five failed starts in a row the
master stops the server with exit code 1 and says why, instead of retrying
for ever.  The runner, which starts fine, is stopped with it.

The module t/modules/mastertest fails its start in workers when its config
says fail_start_in = "worker".
"""
import os
import re
import shutil
import sys

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

port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "mastertest"; }' % port,
    modules='directory = "%s"; load = [ "mastertest" ];' % moddir,
    extra='workers = 1;\ngrace_period = "2s";\npid_file = "{dir}/gannet.pid";\n'
          'mastertest = { fail_start_in = "worker"; };'))
g.start()
try:
    rc = g.proc.wait(timeout=90)
except Exception:
    rc = None
log = g.log()
t.is_(rc, 1, "the master exits 1 when a worker cannot start")
fails = re.findall(r"role=worker error=.*start fails here on purpose", log)
t.is_(len(fails), 5, "the worker was started five times, each failure logged with the module's reason")
delays = [int(d) for d in re.findall(r"event=child_restart_scheduled kind=worker slot=0 delay_ms=(\d+)", log)]
t.is_(delays, [1000, 2000, 4000, 8000], "the restarts waited 1s, 2s, 4s, 8s")
t.ok(re.search(r"level=error .*event=giving_up kind=worker .*failed to start 5 times in a row", log),
     "the master says it gives up and why")
t.ok(re.search(r"event=child_exited kind=runner .*exit_code=0", log),
     "the runner, which started, is stopped cleanly")
t.ok("event=stopped role=master exit_code=1" in log, "the master logs event=stopped")
t.ok(not os.path.exists(os.path.join(g.dir, "gannet.pid")), "the pid file is removed")
if t.failed:
    t.diag(log)
g.kill()
t.done()
