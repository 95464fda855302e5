#!/usr/bin/env python3
"""
t/integration/050-serve.t: `gannet serve` as processes: a master that forks
the configured workers and a runner (as the configured user when started as
root), restarts a killed worker, replaces its children on SIGHUP, and on
SIGTERM stops accepting, lets a session in progress finish, exits 0 and
removes its pid file.  Also: a session that does not end is closed when the
grace period is over; `serve --foreground` runs one process; `serve`
refuses a database whose schema is newer than it knows.

The sessions use the protocol of the test module t/modules/mastertest.
"""
import os
import re
import shutil
import signal
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

# The module directory: a copy that only its owner can write (the loader
# refuses anything else).
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "mastertest.so"))
os.chmod(os.path.join(moddir, "mastertest.so"), 0o755)


def conf(port, workers=2, grace="10s", extra=""):
    return gt.base_conf(
        listeners='{ name = "mt"; address = "127.0.0.1"; port = %d; protocol = "mastertest"; }' % port,
        modules='directory = "%s"; load = [ "mastertest" ];' % moddir,
        extra='workers = %d;\ngrace_period = "%s";\npid_file = "{dir}/gannet.pid";\n%s'
              % (workers, grace, extra))


def wait_for(pred, timeout=20.0):
    """Polls pred until it returns something true; returns that or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


def children(pid):
    """Pids of the live processes whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return sorted(out)


def alive(pid):
    """Whether pid is a live process (not gone, not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def events(log, event):
    """The log lines of an event as dicts of their fields."""
    out = []
    for line in log.splitlines():
        if " event=%s " % event in line + " ":
            out.append(dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)))
    return out


def started_children(g):
    """{child_pid: kind} from the master's log lines."""
    return {int(e["child_pid"]): e["kind"] for e in events(g.log(), "child_started")}


class Session:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline().decode(errors="replace").rstrip("\r\n")

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def ask(self, text):
        self.send(text)
        return self.line()

    def close(self):
        self.f.close()
        self.s.close()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


# ---- master, workers, runner ----
port = gt.free_port()
g = gt.Gannet(conf(port, workers=2))
pidfile = os.path.join(g.dir, "gannet.pid")
g.start(wait_ports=[port])
master = g.proc.pid

t.ok(wait_for(lambda: len([e for e in events(g.log(), "started")
                           if e.get("role") in ("worker", "runner")]) >= 3),
     "the workers and the runner log event=started")
kids = wait_for(lambda: children(master) if len(children(master)) == 3 else None)
t.ok(kids is not None, "the master has 2 workers + 1 runner as children")
if kids is None:
    t.diag("children: %r\n%s" % (children(master), g.log()))
    kids = children(master)
logged = started_children(g)
t.is_(sorted(logged), kids, "each child is logged with event=child_started and its pid")
t.is_(sorted(logged.values()), ["runner", "worker", "worker"], "... two of kind worker, one runner")
t.ok(re.search(r"level=info area=core pid=%d event=started role=master" % master, g.log()),
     "the master logs event=started role=master with its pid")
try:
    with open(pidfile) as f:
        t.is_(f.read().strip(), str(master), "the pid file holds the master's pid")
except OSError as e:
    t.ok(False, "the pid file exists (%s)" % e)

if gt.IS_ROOT:
    import pwd
    nobody = pwd.getpwnam(gt.RUN_USER).pw_uid
    t.ok(all(uids(p) == [nobody] * 4 for p in kids),
         "started as root, the children run with %s's uid" % gt.RUN_USER)
    t.is_(uids(master), [nobody] * 4, "... and so does the master")
    t.ok("event=privileges_dropped" in g.log(), "dropping privileges is logged")

s = Session(port)
t.ok(s.greeting.startswith("+READY pid="), "a worker answers on the listener")
t.is_(s.ask("hello"), "hello", "the session echoes")
t.is_(s.ask("QUIT"), "+BYE", "QUIT")
s.close()

# ---- a killed worker is started again ----
victim = [p for p, k in logged.items() if k == "worker"][0]
os.kill(victim, signal.SIGKILL)
exited = wait_for(lambda: [e for e in events(g.log(), "child_exited")
                           if e.get("child_pid") == str(victim)])
t.ok(exited, "the killed worker's end is logged")
if exited:
    t.is_(exited[0].get("signal"), "KILL", "... with the signal that killed it")
    t.is_(exited[0].get("kind"), "worker", "... and its kind")
new = wait_for(lambda: [p for p, k in started_children(g).items()
                        if k == "worker" and p not in logged])
t.ok(new, "a new worker is started in its place")
t.ok(wait_for(lambda: len(children(master)) == 3 and victim not in children(master)
              and new and new[0] in children(master)),
     "the master has three children again, the new worker among them")
s = Session(port)
t.is_(s.ask("after restart"), "after restart", "the listener still serves")
s.ask("QUIT")
s.close()

# ---- SIGHUP: graceful restart of the children ----
before = set(children(master))
os.kill(master, signal.SIGHUP)
after = wait_for(lambda: (lambda c: c if len(c) == 3 and not (set(c) & before) else None)(children(master)))
t.ok(after, "SIGHUP replaces every child with a new one")
t.ok("event=reload" in g.log() and "not re-read" in g.log(), "the reload is logged, saying the config is not re-read")
t.ok(g.proc.poll() is None, "the master keeps running")

# ---- SIGTERM: a session in progress finishes ----
s = Session(port)
t.is_(s.ask("before stop"), "before stop", "a session is open when SIGTERM arrives")
worker = int(s.greeting.split("pid=")[1])
# core/base/log.c reads the pid once a process; a forked worker reads its own.
t.ok(re.search(r"level=\w+ area=\S+ pid=%d event=" % worker, g.log()),
     "the worker's log lines carry its own pid (%d), not the master's" % worker)
g.proc.send_signal(signal.SIGTERM)
t.ok(wait_for(lambda: refused(port)), "after SIGTERM, new connections are refused")
t.ok(g.proc.poll() is None and os.path.exists("/proc/%d" % worker),
     "the master and the session's worker wait for the session")
t.is_(s.ask("last command"), "last command", "the command in progress is answered")
t.is_(s.line(), "+BYE stopping", "then the session ends cleanly")
t.is_(s.line(), "", "and the server closes the connection")
s.close()
try:
    rc = g.proc.wait(timeout=10)
except Exception:
    rc = None
t.is_(rc, 0, "the master exits 0 once the session is over")
t.ok(not os.path.exists(pidfile), "the pid file is removed")
t.ok("event=stopped role=master" in g.log(), "the master logs event=stopped")
t.ok(len([e for e in events(g.log(), "stopped") if e.get("role") == "runner"]) >= 2,
     "the runners log event=stopped (after SIGHUP and at the end)")
t.ok(not [e for e in events(g.log(), "child_exited") if e.get("signal") == "KILL"
          and e.get("child_pid") != str(victim)], "no child had to be killed")
t.is_(children(master), [], "no child is left")
g.kill()

# ---- the grace period ends a session that does not end by itself ----
port2 = gt.free_port()
g2 = gt.Gannet(conf(port2, workers=1, grace="1s"), db=g.dbname)
g2.start(wait_ports=[port2])
s = Session(port2)
t.is_(s.ask("hi"), "hi", "a client holds a session open")
t0 = time.time()
g2.proc.send_signal(signal.SIGTERM)
try:
    rc = g2.proc.wait(timeout=20)
except Exception:
    rc = None
t.is_(rc, 0, "the master exits 0 after the grace period")
t.ok(time.time() - t0 >= 0.9, "... not before it (%.1fs)" % (time.time() - t0))
try:
    s.s.settimeout(5)
    t.is_(s.line(), "", "the idle session was closed by the server")
except OSError as e:
    t.ok(False, "the idle session was closed by the server (%s)" % e)
s.close()
t.ok("event=grace_period_over" in g2.log(), "the worker logs that the grace period was over")
g2.kill()

# ---- serve --foreground: one process ----
port3 = gt.free_port()
g3 = gt.Gannet(conf(port3), db=g.dbname, foreground=True)
g3.start(wait_ports=[port3])
s = Session(port3)
t.is_(s.greeting, "+READY pid=%d" % g3.proc.pid, "--foreground serves from the process itself")
t.is_(children(g3.proc.pid), [], "... without children")
s.ask("QUIT")
s.close()
t.is_(g3.stop(), 0, "SIGTERM stops it with exit code 0")
t.ok(not os.path.exists(os.path.join(g3.dir, "gannet.pid")), "... and removes its pid file")
g3.kill()

# ---- children do not outlive the master ----
port5 = gt.free_port()
g5 = gt.Gannet(conf(port5, workers=1, grace="1s"), db=g.dbname)
g5.start(wait_ports=[port5])
kids5 = wait_for(lambda: children(g5.proc.pid) if len(children(g5.proc.pid)) == 2 else None)
t.ok(kids5, "a master with one worker and the runner")
g5.proc.kill()
g5.proc.wait()
t.ok(wait_for(lambda: not any(alive(p) for p in kids5 or [])),
     "when the master is killed, its children exit too")
g5.kill()

# ---- a schema newer than this gannet ----
gt.cluster().psql("INSERT INTO gn_schema_migrations (module, version, name) "
                  "VALUES ('core', 9999, 'from_the_future')", db=g.dbname)
g4 = gt.Gannet(conf(gt.free_port()), db=g.dbname)
g4.start()
try:
    rc = g4.proc.wait(timeout=30)
except Exception:
    rc = None
t.is_(rc, 1, "serve refuses a database whose schema is newer than it knows")
t.like(g4.log(), "9999", "... and says which version it found")
t.ok(not os.path.exists(os.path.join(g4.dir, "gannet.pid")), "... leaving no pid file")
g4.kill()

t.done()
