#!/usr/bin/env python3
"""
t/integration/020-modules.t: the module loader through the gannet binary,
with the zoo of t/abi/: `gannet modules` prints the resolved order, every
loader refusal is a config error naming the file, what the module wants,
what the core has and the config line to change, and a failed start
unwinds the started modules in reverse (needs PostgreSQL: module commands
start the modules in a "cli" process).
"""
import os
import re
import shutil
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import (BUILDDIR, IS_ROOT, RUN_USER, Tap, cluster, run_gannet,
                        tmpdir)

t = Tap()
ZOO = os.path.join(BUILDDIR, "t", "abi", ".libs")
if not os.path.exists(os.path.join(ZOO, "zoo_base.so")):
    t.ok(False, "the zoo is built (%s)" % ZOO)
    t.done()

# Copies of the zoo with a known mode (the build's umask may allow group
# writes, which the loader rightly refuses).
base = tmpdir()
moddir = os.path.join(base, "modules")
os.mkdir(moddir)
for f in os.listdir(ZOO):
    if f.endswith(".so"):
        shutil.copy(os.path.join(ZOO, f), os.path.join(moddir, f))
        os.chmod(os.path.join(moddir, f), 0o755)
ENV = dict(os.environ, GANNET_MODULE_DIR=moddir)
ABI = None


def conf(names, extra="", conninfo="host=/nonexistent dbname=none", directory=None):
    """Writes a config listing one module a line; returns (path, lines)
    where lines maps a module name to its line number."""
    text = ['hostname = "mail.test";']
    if IS_ROOT:
        text.append('user = "%s";' % RUN_USER)
    text.append('database = { conninfo = "%s"; };' % conninfo)
    text.append("modules = {")
    if directory:
        text.append('  directory = "%s";' % directory)
    text.append("  load = [")
    lines = {}
    for i, n in enumerate(names):
        text.append('    "%s"%s' % (n, "," if i + 1 < len(names) else ""))
        lines[n] = len(text)
    text.append("  ];")
    text.append("};")
    text.append(extra)
    path = os.path.join(base, "gannet-%d.conf" % conf.n)
    conf.n += 1
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    return path, lines


conf.n = 0


def errors_of(r):
    return [l for l in r.stderr.splitlines() if "level=" not in l]


# ---- the good zoo, built against the ABI 1.0 headers ----
path, lines = conf(["zoo_app", "zoo_extra", "zoo_base"], 'zoo_base = { greeting = "ahoy"; };')
r = run_gannet(["-v", "-c", path, "modules"], env=ENV)
t.is_(r.returncode, 0, "gannet modules loads the ABI 1.0 zoo")
if r.returncode != 0:
    t.diag(r.stderr)
t.is_(r.stdout.splitlines(), [
    "zoo_base 1.0.0 abi=1.0 requires=-",
    "zoo_extra 0.3 abi=1.0 requires=-",
    "zoo_app 2.1 abi=1.0 requires=zoo_base,zoo_extra?,zoo_absent?",
], "the order puts requirements first, ties by name, with versions, ABI and requirements (optional ones marked ?)")
t.like(r.stderr, "event=module_loaded module=zoo_base version=1.0.0 abi=1.0 slot=1 file=%s/zoo_base.so" % moddir,
       "with -v, each load is logged with version, ABI, slot and file")
t.like(r.stderr, "event=zoo_register provider=zoo_base extra=1 absent=0",
       "zoo_app finds zoo_base's service in its register phase and sees which optional modules are loaded")

r2 = run_gannet(["-c", path, "modules"], env=ENV)
t.is_(r2.stdout, r.stdout, "the order is the same on every run")

path_b, _ = conf(["zoo_base", "zoo_app"])
r = run_gannet(["-c", path_b, "modules"], env=ENV)
t.is_(r.stdout.splitlines(), [
    "zoo_base 1.0.0 abi=1.0 requires=-",
    "zoo_app 2.1 abi=1.0 requires=zoo_base,zoo_extra?,zoo_absent?",
], "an optional requirement that is not loaded is no error")

r = run_gannet(["config", "check", path], env=ENV)
t.is_(r.returncode, 0, "gannet config check accepts the zoo")
t.like(r.stdout, "config ok", "and says so")

# ---- one refusal per broken module ----
CORE_ABI = None
vr = run_gannet(["version"])
m = re.search(r"plugin ABI (\d+)\.(\d+)", vr.stdout)
t.ok(m is not None, "gannet version prints the plugin ABI")
major, minor = (int(m.group(1)), int(m.group(2))) if m else (1, 0)
core_abi = "%d.%d" % (major, minor)

cases = [
    ("bad_nodesc", "no gannet_module_v1 descriptor", "a module without the descriptor symbol"),
    ("bad_magic", "gannet_module_v1 has magic 0x12345678, core wants 0x474e4d44", "a descriptor with the wrong magic"),
    ("bad_size", "descriptor size 12 (object 12 bytes) is smaller than ABI 1.0's", "a descriptor that is too small"),
    ("bad_major", "built for ABI %d.0, core has %s" % (major + 1, core_abi), "a module for another ABI major"),
    ("bad_minor", "built for ABI %d.%d, core has %s" % (major, minor + 1, core_abi), "a module for a newer ABI minor"),
    ("bad_name", "its descriptor names the module \"other_name\"", "a descriptor whose name is not the file's"),
    ("not_there", "cannot use the file: No such file or directory", "a missing file"),
]
for name, why, what in cases:
    path, lines = conf(["zoo_base", name])
    for cmd in (["-c", path, "modules"], ["config", "check", path]):
        r = run_gannet(cmd, env=ENV)
        errs = errors_of(r)
        want = 'module %s (%s/%s.so): %s' % (name, moddir, name, why)
        t.is_(r.returncode, 1, "%s: %s exits 1" % (what, " ".join(cmd[-2:] if cmd[0] == "config" else cmd[-1:])))
        t.ok(any(want in e for e in errs), "%s is refused, naming the file and both sides: %s" % (what, want))
        if not any(want in e for e in errs):
            t.diag(r.stderr)
        fix = 'remove "%s" from modules.load at %s:' % (name, path)
        t.ok(any(fix in e for e in errs), "%s: the message says which config line to change" % what)

# The config line is the module's own line.
# (Not the last element: libconfig reports the line after the last one.)
path, lines = conf(["zoo_base", "bad_magic", "zoo_extra"])
r = run_gannet(["-c", path, "modules"], env=ENV)
t.like(r.stderr, 'remove "bad_magic" from modules.load at %s:%d' % (path, lines["bad_magic"]),
       "the line named is the line of the module's name in modules.load")

# Missing required module.
path, lines = conf(["bad_missing", "zoo_base"])
r = run_gannet(["-c", path, "modules"], env=ENV)
t.is_(r.returncode, 1, "a missing required module is a config error")
t.like(r.stderr, "module bad_missing (%s/bad_missing.so): requires module zoo_not_there, which is not in modules.load; "
       'add "zoo_not_there" to modules.load' % moddir, "naming both modules")
t.like(r.stderr, 'remove "bad_missing" from modules.load at %s:' % path, "and the config line")

# Cycle.
path, lines = conf(["bad_cycle_b", "bad_cycle_a", "zoo_base"])
r = run_gannet(["config", "check", path], env=ENV)
t.is_(r.returncode, 1, "a requirement cycle is a config error")
t.like(r.stderr, "modules bad_cycle_a -> bad_cycle_b -> bad_cycle_a: requirement cycle",
       "naming the modules of the cycle")
t.like(r.stderr, 'remove one of "bad_cycle_a" (line %d), "bad_cycle_b" (line %d) from modules.load in %s'
       % (lines["bad_cycle_a"], lines["bad_cycle_b"], path), "and their config lines")

# Register failure.
path, lines = conf(["zoo_base", "bad_register"])
r = run_gannet(["config", "check", path], env=ENV)
t.is_(r.returncode, 1, "a failing register is a config error")
t.like(r.stderr, "module bad_register (%s/bad_register.so): register failed: refusing to register on purpose" % moddir,
       "naming the module and its reason")

# File checks: writable by others or group, not a regular file.
for mode, who in ((0o757, "others"), (0o775, "its group")):
    d = os.path.join(base, "w%o" % mode)
    os.mkdir(d)
    shutil.copy(os.path.join(moddir, "zoo_base.so"), os.path.join(d, "zoo_base.so"))
    os.chmod(os.path.join(d, "zoo_base.so"), mode)
    path, lines = conf(["zoo_base"], directory=d)
    r = run_gannet(["-c", path, "modules"], env=ENV)
    t.is_(r.returncode, 1, "a module file writable by %s is refused" % who)
    t.like(r.stderr, "module zoo_base (%s/zoo_base.so): the file is writable by %s (mode %04o)" % (d, who, mode),
           "naming the file and the mode")
# The directory too: whoever can write it can replace the file.
d = os.path.join(base, "opendir")
os.mkdir(d)
shutil.copy(os.path.join(moddir, "zoo_base.so"), os.path.join(d, "zoo_base.so"))
os.chmod(os.path.join(d, "zoo_base.so"), 0o755)
os.chmod(d, 0o1777)
path, lines = conf(["zoo_base"], directory=d)
r = run_gannet(["-c", path, "modules"], env=ENV)
t.is_(r.returncode, 1, "a module in a directory others can write is refused")
t.like(r.stderr, "module zoo_base (%s/zoo_base.so): its directory %s is writable by others (mode 1777); "
       "core wants it writable by its owner only (chmod go-w %s)" % (d, d, d),
       "naming the directory, its mode and the fix")
# A symbolic link is not followed: where it points may change later.
d = os.path.join(base, "linked")
os.mkdir(d)
os.symlink(os.path.join(moddir, "zoo_base.so"), os.path.join(d, "zoo_base.so"))
path, lines = conf(["zoo_base"], directory=d)
r = run_gannet(["-c", path, "modules"], env=ENV)
t.is_(r.returncode, 1, "a module file that is a symbolic link is refused")
t.like(r.stderr, "module zoo_base (%s/zoo_base.so): the file is a symbolic link" % d, "saying so")
if IS_ROOT:
    # Another user's file: that user could change what root loads.
    d = os.path.join(base, "theirs")
    os.mkdir(d)
    shutil.copy(os.path.join(moddir, "zoo_base.so"), os.path.join(d, "zoo_base.so"))
    os.chmod(os.path.join(d, "zoo_base.so"), 0o755)
    shutil.chown(os.path.join(d, "zoo_base.so"), RUN_USER)
    path, lines = conf(["zoo_base"], directory=d)
    r = run_gannet(["-c", path, "migrate"], env=ENV)
    t.is_(r.returncode, 1, "as root, a module file owned by another user is refused")
    t.like(r.stderr, "module zoo_base (%s/zoo_base.so): the file is owned by %s" % (d, RUN_USER),
           "naming the owner")
    t.like(r.stderr, "core runs as root and wants it owned by root (chown root %s/zoo_base.so)" % d,
           "and the fix")
d = os.path.join(base, "dirs")
os.makedirs(os.path.join(d, "zoo_base.so"))
path, lines = conf(["zoo_base"], directory=d)
r = run_gannet(["-c", path, "modules"], env=ENV)
t.is_(r.returncode, 1, "a module path that is not a regular file is refused")
t.like(r.stderr, "module zoo_base (%s/zoo_base.so): not a regular file" % d, "naming the file")

# ---- start, hooks across modules, unwinding (needs PostgreSQL) ----
try:
    c = cluster()
    db = c.create_db()
    conninfo = c.conninfo(db)
except Exception as e:  # no PostgreSQL: this part cannot run
    t.ok(False, "a PostgreSQL cluster for the start tests: %s" % e)
    t.done()

path, lines = conf(["zoo_app", "zoo_extra", "zoo_base"], 'zoo_base = { greeting = "ahoy"; };', conninfo=conninfo)
r = run_gannet(["-c", path, "migrate"], env=ENV)
t.is_(r.returncode, 0, "migrate with the zoo loaded")
if r.returncode != 0:
    t.diag(r.stderr)
r = run_gannet(["-v", "-c", path, "zoo", "hello", "x", "y"], env=ENV)
t.is_(r.returncode, 0, "a module's CLI command runs")
if r.returncode != 0:
    t.diag(r.stderr)
t.like(r.stdout, "hello: greeting=ahoy slot=1 data=ok kind=cli started=1 args=2",
       "it sees its setting, slot, data, process kind, start and arguments")
t.like(r.stdout, "chain=reject code=550 enhanced=5.7.1 text=zoo_app says no to zoo.check module=zoo_app",
       "the hook chain across three modules ends with zoo_app's reply")
starts = re.findall(r"event=module_(started|stopped) module=(\w+)", r.stderr)
t.is_(starts, [("started", "zoo_base"), ("started", "zoo_extra"), ("started", "zoo_app"),
               ("stopped", "zoo_app"), ("stopped", "zoo_extra"), ("stopped", "zoo_base")],
      "modules start in order and stop in reverse")
t.like(r.stderr, "late_register=refused", "registering a hook from start is refused")

path, lines = conf(["zoo_app", "zoo_extra", "zoo_base", "bad_start"], conninfo=conninfo)
r = run_gannet(["-v", "-c", path, "zoo", "hello"], env=ENV)
t.is_(r.returncode, 1, "a failing start fails the command")
t.like(r.stderr, "module bad_start: start failed in cli: refusing to start on purpose",
       "the error names the module and its reason")
zoo = re.findall(r"event=(zoo_start|zoo_stop|zoo_start_failing) module=(\w+)", r.stderr)
t.is_(zoo, [("zoo_start", "zoo_base"), ("zoo_start", "zoo_extra"), ("zoo_start", "zoo_app"),
            ("zoo_start_failing", "bad_start"),
            ("zoo_stop", "zoo_app"), ("zoo_stop", "zoo_extra"), ("zoo_stop", "zoo_base")],
      "the modules started before the failing one stop in reverse, the failed one is not stopped")
t.ok("hello:" not in r.stdout, "the command does not run")
t.done()
