#!/usr/bin/env python3
"""
t/integration/010-config.t: `gannet config check` tells an admin what is
wrong with a config file, with file and line, and accepts a good one.

Covers: a good file (exit 0, "config ok"), an unknown setting (a typo in a
core group, an unknown top-level group, a typo in a loaded module's section
read by the module zoo_base of t/abi/), a syntax error with its line, a
bad TLS mode on a listener, several errors reported in one run, `-c FILE`,
a missing file, and (as root) a config without `user`.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
work = gt.tmpdir("gannet-config-")
USER = 'user = "%s";' % gt.RUN_USER if gt.IS_ROOT else ""


def write(text, name="gannet.conf"):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def line_of(text, needle):
    """The 1-based line of the first line containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in config" % needle)


def check(text, *extra):
    path = write(text)
    return gt.run_gannet(["config", "check", path] + list(extra))


GOOD = """# a complete config without modules
hostname = "mail.example.test";
%s
pid_file = "%s/gannet.pid";
workers = 2;
grace_period = "10s";
database = { conninfo = "host=/nonexistent dbname=gannet"; };
log = { destination = "stderr"; level = "info"; levels = { core = "debug"; }; };
tls = { priority = "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1"; };
limits = { connections_per_ip = 10; connections = 100; idle_timeout = "5m"; };
modules = { load = [ ]; };
""" % (USER, work)

# 1. A good file.
r = check(GOOD)
t.is_(r.returncode, 0, "a good config passes the check")
t.like(r.stdout, "config ok", "and says so")
if r.returncode != 0:
    t.diag(r.stderr)

# 2. A typo in a core setting: reported with file and line.
text = GOOD.replace('idle_timeout = "5m";', 'idle_timeout = "5m";\n  idle_timout = "6m";')
r = check(text)
t.is_(r.returncode, 1, "an unknown setting fails the check")
t.like(r.stderr, "gannet: config: unknown setting limits.idle_timout at gannet.conf:%d"
       % line_of(text, "idle_timout"), "the unknown setting is named with file and line")
t.ok("limits.idle_timeout " not in r.stderr, "the correctly spelt setting is not reported")

# 3. A group nothing claims (no module of that name is loaded).
text = GOOD + "\nimapp = {\n  port = 143;\n};\n"
r = check(text)
t.is_(r.returncode, 1, "an unknown section fails the check")
t.like(r.stderr, "unknown setting imapp at gannet.conf:%d" % line_of(text, "imapp"),
       "the unknown section is named with its line")

# 4. A syntax error names its line.
text = GOOD.replace("workers = 2;", "workers = ;")
r = check(text)
t.is_(r.returncode, 1, "a syntax error fails the check")
t.like(r.stderr, "gannet: config: syntax error", "it is called a syntax error")
t.like(r.stderr, "at gannet.conf:%d" % line_of(text, "workers"), "with the right line")

# 5. A listener with a TLS mode that does not exist.
text = GOOD + ('listeners = (\n'
               '  { address = "127.0.0.1"; port = %d; protocol = "smtp";\n'
               '    tls = "sometimes"; }\n);\n' % gt.free_port())
r = check(text)
t.is_(r.returncode, 1, "a bad TLS mode fails the check")
t.like(r.stderr, 'listeners[0].tls: "sometimes" is not a TLS mode', "the TLS mode is named")
t.like(r.stderr, "at gannet.conf:%d" % line_of(text, "sometimes"), "with its line")

# 6. Every error of a file in one run, each on its own line.
text = GOOD.replace("workers = 2;", "workers = 5000;").replace(
    'level = "info";', 'level = "loud";')
r = check(text)
t.is_(r.returncode, 1, "bad values fail the check")
lines = [l for l in r.stderr.splitlines() if l.startswith("gannet: config: ")]
t.ok(any("workers: 5000 is not between 0 and 1024 at gannet.conf:%d"
         % line_of(text, "workers") in l for l in lines), "an out-of-range value is reported")
t.ok(any("log.level: must be" in l and "at gannet.conf:%d" % line_of(text, "loud") in l
         for l in lines), "an unknown log level is reported in the same run")

# 7. -c FILE picks the file when `config check` has no argument.
path = write(GOOD.replace("grace_period", "grace_perod"), "other.conf")
r = gt.run_gannet(["-c", path, "config", "check"])
t.is_(r.returncode, 1, "-c FILE is checked")
t.like(r.stderr, "unknown setting grace_perod at other.conf:%d" % line_of(GOOD, "grace_period"),
       "the message names that file")

# 8. A file that does not exist.
r = gt.run_gannet(["config", "check", os.path.join(work, "missing.conf")])
t.is_(r.returncode, 1, "a missing file fails the check")
t.like(r.stderr, "missing.conf", "and names the file")

# 9. A module reads its own section; what it does not read is unknown.
ZOO = os.path.join(gt.BUILDDIR, "t", "abi", ".libs", "zoo_base.so")
if t.ok(os.path.exists(ZOO), "the test module zoo_base is built"):
    moddir = os.path.join(work, "modules")
    os.mkdir(moddir)
    shutil.copy(ZOO, os.path.join(moddir, "zoo_base.so"))
    os.chmod(os.path.join(moddir, "zoo_base.so"), 0o755)
    env = dict(os.environ, GANNET_MODULE_DIR=moddir)
    good = GOOD.replace("load = [ ];", 'load = [ "zoo_base" ];') + \
        'zoo_base = {\n  greeting = "ahoy";\n};\n'
    r = gt.run_gannet(["config", "check", write(good)], env=env)
    t.is_(r.returncode, 0, "a module's section with the settings it reads passes")
    if r.returncode != 0:
        t.diag(r.stderr)
    text = good.replace('greeting = "ahoy";', 'greeting = "ahoy";\n  greting = "ahoy";')
    r = gt.run_gannet(["config", "check", write(text)], env=env)
    t.is_(r.returncode, 1, "a typo in a module's section fails the check")
    t.like(r.stderr, "unknown setting zoo_base.greting at gannet.conf:%d"
           % line_of(text, "greting"), "the module's unknown setting is named with its line")
    text = GOOD + 'zoo_base = {\n  greeting = "ahoy";\n};\n'
    r = gt.run_gannet(["config", "check", write(text)], env=env)
    t.is_(r.returncode, 1, "a section of a module that is not loaded fails the check")
    t.like(r.stderr, "unknown setting zoo_base at gannet.conf:%d" % line_of(text, "zoo_base"),
           "the section is named with its line")

# 10. As root, a config without `user` is refused (privileges must drop).
if gt.IS_ROOT:
    r = check(GOOD.replace(USER, ""))
    t.is_(r.returncode, 1, "as root, a config without user fails the check")
    t.like(r.stderr, "user must be set when gannet starts as root", "and says why")

t.done()
