#!/usr/bin/env python3
"""
t/integration/025-cli.t: the command line is quiet, helps, and does only
what a command needs -- with the real binary, a real PostgreSQL and the
test module t/modules/clitest (commands "clitest greet", which declares 1
or 2 arguments, and "clitest plain", which declares nothing; its register
and start phases log at info, with the uid they ran as).

- Quiet: a command prints its result and errors only; -v adds the info
  log lines (module_loaded, module_started...).
- The core's data commands (config domain ...) load no module; import, and
  the modules' commands, run with the modules started.
- Usage errors (too few or too many declared arguments, no such command)
  exit 2 before any module starts, even when the database is unreachable.
- Every command listed by `gannet help` answers --help: exit 0, its usage
  on stdout, nothing started; `gannet help WORDS` says the same.
- help, --help, config check and modules never run module code as root:
  as root they load the modules as the config's user.
"""
import os
import pwd
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import (BUILDDIR, IS_ROOT, RUN_USER, Tap, cluster, run_gannet,  # noqa: E402
                        tmpdir)

t = Tap()
built = os.path.join(BUILDDIR, "t", "modules", "clitest", ".libs", "clitest.so")
if not os.path.exists(built):
    t.ok(False, "the test module is built (%s)" % built)
    t.done()
base = tmpdir()
moddir = os.path.join(base, "modules")
os.mkdir(moddir)
shutil.copy(built, os.path.join(moddir, "clitest.so"))
os.chmod(os.path.join(moddir, "clitest.so"), 0o755)
RUN_UID = pwd.getpwnam(RUN_USER).pw_uid

c = cluster()
db = c.create_db()


def write_conf(name, conninfo):
    path = os.path.join(base, name)
    with open(path, "w") as f:
        f.write('hostname = "mail.test";\n')
        if IS_ROOT:
            f.write('user = "%s";\n' % RUN_USER)
        f.write('database = { conninfo = "%s"; };\n' % conninfo)
        f.write('modules = { directory = "%s"; load = [ "clitest" ]; };\n' % moddir)
    return path


CONF = write_conf("gannet.conf", c.conninfo(db))
# The same, with a database that is not there.
NODB = write_conf("nodb.conf", "host=/nonexistent dbname=none connect_timeout=2")


def g(*args):
    return run_gannet(list(args))


def logged(r, event):
    return ("event=%s " % event) in r.stderr + " " or ("event=%s\n" % event) in r.stderr


# ---- quiet ----
r = g("-c", CONF, "migrate")
t.is_(r.returncode, 0, "migrate runs")
t.like(r.stdout, "migrations applied", "and prints its result")
t.is_(r.stderr, "", "and nothing else: no log lines")
r = g("-c", CONF, "config", "domain", "add", "example.test")
t.is_((r.returncode, r.stderr), (0, ""), "config domain add: exit 0, nothing on stderr")
r = g("-c", CONF, "clitest", "greet", "bob")
t.is_(r.returncode, 0, "a module's command runs")
t.is_(r.stdout, "hello bob started=1 kind=cli\n", "with its module started in process kind cli")
t.is_(r.stderr, "", "and no log lines around its output (module_loaded, started, stopped)")
r = g("-v", "-c", CONF, "clitest", "greet", "bob", "hi")
t.is_(r.stdout, "hi bob started=1 kind=cli\n", "-v: the same result")
for ev in ("module_loaded", "module_started", "clitest_start", "module_stopped"):
    t.ok(logged(r, ev), "-v: the info line event=%s is there" % ev)
BAD = os.path.join(base, "bad.conf")
with open(BAD, "w") as f:
    f.write(open(CONF).read().replace('load = [ "clitest" ]', 'load = [ "clitest", "nothere" ]'))
r = g("config", "check", BAD)
t.is_(r.returncode, 1, "config check of a config naming a missing module fails")
t.like(r.stderr, "module nothere (%s/nothere.so): cannot use the file" % moddir, "naming the module and its file")
t.ok("level=" not in r.stderr, "the error is said once, without log lines")
r = g("-c", CONF, "nosuch", "thing")
t.is_(r.returncode, 2, "an unknown command is a usage error")
t.is_(r.stderr, 'gannet: no command "nosuch" (gannet help lists them)\n', "said in one line")

# ---- what a command needs, and no more ----
r = g("-v", "-c", CONF, "config", "domain", "list")
t.is_((r.returncode, r.stdout), (0, "example.test\n"), "config domain list lists the domain")
t.ok(not logged(r, "module_loaded") and not logged(r, "clitest_register"),
     "a data command of the core loads no module (no module_loaded, no register)")
r = g("-v", "-c", CONF, "config", "account", "add", "ann", "ann@example.test")
t.is_(r.returncode, 0, "config account add")
t.ok(not logged(r, "module_loaded"), "loads no module either")
mbox = os.path.join(base, "in.mbox")
with open(mbox, "w") as f:
    f.write("From a@example.test Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n")
r = g("-v", "-c", CONF, "import", "mbox", "ann", mbox)
t.is_(r.returncode, 0, "import mbox")
t.ok(logged(r, "module_started") and logged(r, "clitest_start"),
     "import delivers through the pipeline: the modules are started for its hooks")

# ---- usage errors before any module starts ----
for conf, what in ((CONF, "database there"), (NODB, "no database")):
    r = g("-v", "-c", conf, "clitest", "greet")
    t.is_(r.returncode, 2, "%s: a declared command without its argument is a usage error" % what)
    t.like(r.stderr, "gannet clitest greet: too few arguments\nusage: gannet clitest greet NAME [GREETING]\n",
           "%s: it says so, with the usage" % what)
    t.ok(not logged(r, "module_started") and not logged(r, "clitest_start"),
         "%s: before any module starts" % what)
    r = g("-v", "-c", conf, "clitest", "greet", "a", "b", "c")
    t.is_(r.returncode, 2, "%s: too many arguments: exit 2" % what)
    t.ok(not logged(r, "clitest_start"), "%s: nothing started" % what)
    r = g("-v", "-c", conf, "clitest", "nope")
    t.is_(r.returncode, 2, "%s: an unknown module command: exit 2" % what)
    t.like(r.stderr, 'gannet: no command "clitest nope"; commands that start with "clitest":\n'
           "  gannet clitest greet NAME [GREETING]   (module clitest)\n",
           "%s: naming the commands it may have meant" % what)
    t.ok(not logged(r, "clitest_start"), "%s: nothing started" % what)
r = g("-c", NODB, "clitest", "greet", "bob")
t.is_(r.returncode, 1, "a command that may run, without its database, fails with 1")
t.like(r.stderr, "gannet: database:", "saying it is the database")
r = g("-c", CONF, "config")
t.is_(r.returncode, 2, "a word that only begins commands is a usage error")
t.like(r.stderr, "  gannet config domain add DOMAIN", "listing the commands it begins")

# ---- help ----
r = g("-v", "-c", CONF, "help")
t.is_(r.returncode, 0, "gannet help")
t.like(r.stdout, "usage: gannet [-c FILE] [-v] COMMAND [ARGS]", "prints the usage")
t.like(r.stdout, "  gannet clitest greet NAME [GREETING]   (module clitest)\n", "lists the modules' commands")
t.like(r.stdout, "  gannet config domain add DOMAIN", "and the core's")
t.ok(not logged(r, "module_started") and not logged(r, "clitest_start"), "without starting anything")
m = re.search(r"event=clitest_register euid=(\d+)", r.stderr)
t.ok(m is not None, "the module registered, so help knows its commands")
t.is_(int(m.group(1)) if m else None, RUN_UID if IS_ROOT else os.geteuid(),
      "as the config's user when run as root: no module code runs as root for help")

commands = []
for line in r.stdout.splitlines():
    if line.startswith("  gannet "):
        words = []
        for w in line.split()[1:]:
            if not re.match(r"^[a-z][a-z0-9_-]*$", w):
                break
            words.append(w)
        commands.append(words)
t.ok(len(commands) >= 20 and ["clitest", "plain"] in commands and ["serve"] in commands,
     "help lists gannet's own, the core's and the module's commands (%d)" % len(commands))
for words in commands:
    name = " ".join(words)
    r = g("-v", "-c", CONF, *(words + ["--help"]))
    good = r.returncode == 0 and r.stdout.startswith("usage: gannet %s" % name)
    if not t.ok(good, "gannet %s --help: exit 0 and its usage on stdout" % name):
        t.diag("rc=%d stdout=%r stderr=%r" % (r.returncode, r.stdout[:300], r.stderr[-300:]))
    t.ok(not logged(r, "module_started") and not logged(r, "started"),
         "gannet %s --help starts nothing" % name)
    m = re.search(r"event=clitest_register euid=(\d+)", r.stderr)
    if m is not None and IS_ROOT:
        t.is_(int(m.group(1)), RUN_UID, "gannet %s --help runs no module code as root" % name)
r = g("-c", CONF, "clitest", "greet", "-h")
t.is_(r.returncode, 0, "-h is --help")
t.is_(r.stdout, "usage: gannet clitest greet NAME [GREETING]\n\n"
      "Greets NAME (with GREETING, default hello) and says whether the\nmodule was started.\n\n"
      "(a command of the module clitest)\n", "the usage, the module's help text and the module")
r2 = g("-c", CONF, "help", "clitest", "greet")
t.is_((r2.returncode, r2.stdout), (0, r.stdout), "gannet help clitest greet says the same")
r = g("-c", CONF, "clitest", "plain", "--", "--help")
t.is_((r.returncode, r.stdout), (0, "plain args=2 started=1\n"), "after --, --help is the command's argument")
r = g("-c", CONF, "clitest", "greet", "--", "a", "b")
t.is_(r.returncode, 0, "-- counts as no argument of a declared command")
r = g("-c", CONF, "help", "config", "domain")
t.is_(r.returncode, 0, "gannet help config domain lists the commands it begins")
t.like(r.stdout, "  gannet config domain list\n", "on stdout")
for args in (["--help"], ["-h"]):
    r = g(*args)
    t.ok(r.returncode == 0 and r.stdout.startswith("usage: gannet"), "gannet %s prints the usage" % args[0])
    t.like(r.stdout, "  gannet serve [--foreground]\n", "gannet %s lists gannet's own commands" % args[0])
r = g()
t.is_(r.returncode, 2, "gannet without a command is a usage error")
t.ok(r.stderr.startswith("usage: gannet") and r.stdout == "", "the usage goes to stderr")
r = g("-c", os.path.join(base, "absent.conf"), "help")
t.is_(r.returncode, 0, "help without a readable config still helps")
t.like(r.stdout, "  gannet config domain add DOMAIN", "with the core's commands")
t.like(r.stderr, "the modules' commands are not listed", "and says what it could not list")
r = g("-c", os.path.join(base, "absent.conf"), "config", "domain", "add", "--help")
t.is_(r.returncode, 0, "a core command's --help needs no config")

# ---- reading and reporting never runs module code as root ----
for args, what in ((["config", "check", CONF], "config check"), (["-c", CONF, "modules"], "modules")):
    r = g("-v", *args)
    t.is_(r.returncode, 0, "%s" % what)
    m = re.search(r"event=clitest_register euid=(\d+)", r.stderr)
    t.is_(int(m.group(1)) if m else None, RUN_UID if IS_ROOT else os.geteuid(),
          "%s registers the modules as the config's user, not root" % what)
    t.ok(not logged(r, "clitest_start"), "%s starts nothing" % what)
t.done()
