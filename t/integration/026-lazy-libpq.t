#!/usr/bin/env python3
"""
t/integration/026-lazy-libpq.t: libpq is loaded only by the commands that
use the database, and a libpq that cannot be loaded is an error, never a
crash.  Run on the real binary (build/core/.libs/gannet with
LD_LIBRARY_PATH, not the libtool wrapper), with the dynamic loader's own
account of what it loads (LD_DEBUG=files, written to a file per process).

- version, help, --help, a data command's --help, config check and
  modules (with the smtp module loaded) succeed without loading libpq.so.5;
- a data command (config domain list) loads it, through dlopen()
  ("dynamically loaded by" libgannet), never as a dependency ("needed
  by"): libgannet does not link libpq;
- with a libpq.so.5 that cannot be loaded first on LD_LIBRARY_PATH (a file
  that is no ELF object), or one that lacks the functions (an ELF object
  that is no libpq), a data command and `gannet serve` exit 1 and say
  which library, why, and the Debian package, instead of crashing;
- a data command sends two statements: the schema check (one query for
  every module's version, core/db/migrate.c) and its own.
"""
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import pgproxy  # noqa: E402

t = gt.Tap()

LIBDIR = os.path.join(gt.BUILDDIR, "core", ".libs")
BINARY = os.path.join(LIBDIR, "gannet")
SMTP = os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so")
for path in (BINARY, SMTP):
    if not os.path.exists(path):
        t.ok(False, "built: %s" % path)
        t.done()

base = gt.tmpdir()
moddir = gt.module_dir()
shutil.copy(SMTP, os.path.join(moddir, "smtp.so"))
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)
cl = gt.cluster()
db = cl.create_db()


def write_conf(name, conninfo):
    path = os.path.join(base, name)
    with open(path, "w") as f:
        f.write('hostname = "mail.test";\n')
        if gt.IS_ROOT:
            f.write('user = "%s";\n' % gt.RUN_USER)
        f.write('database = { conninfo = "%s"; };\n' % conninfo)
        f.write('modules = { directory = "%s"; load = [ "smtp" ]; };\n' % moddir)
        f.write('listeners = ({ address = "127.0.0.1"; port = %d; protocol = "smtp"; });\n'
                % gt.free_port())
    return path


CONF = write_conf("gannet.conf", cl.conninfo(db))
runs = [0]


def gannet(args, libpath=LIBDIR, timeout=60):
    """Runs the binary; returns (CompletedProcess, the loader's lines)."""
    runs[0] += 1
    prefix = os.path.join(base, "ld-%d" % runs[0])
    env = dict(os.environ, LD_LIBRARY_PATH=libpath, LD_DEBUG="files",
               LD_DEBUG_OUTPUT=prefix)
    r = subprocess.run([BINARY, "-c", CONF] + args, capture_output=True, text=True,
                       env=env, timeout=timeout)
    lines = []
    for f in glob.glob(prefix + ".*"):   # one file per process: PREFIX.PID
        with open(f, errors="replace") as fh:
            lines += fh.read().splitlines()
    return r, lines


def libpq_lines(lines):
    return [ln.split(":", 1)[-1].strip() for ln in lines
            if "file=libpq.so" in ln]


# ---- commands without the database do not load libpq ----
r, lines = gannet(["version"])
t.is_(r.returncode, 0, "version runs")
t.ok(any("file=libgannet.so" in ln for ln in lines),
     "the loader's account is recorded (LD_DEBUG=files names libgannet)")
for args in (["version"], ["help"], ["--help"], ["config", "domain", "list", "--help"],
             ["config", "check"], ["modules"]):
    r, lines = gannet(args)
    name = " ".join(args)
    t.is_(r.returncode, 0, "%s succeeds" % name)
    if not t.is_(libpq_lines(lines), [], "%s does not load libpq" % name):
        t.diag(r.stderr)

# ---- a data command loads it, through dlopen() ----
r = gt.run_gannet(["-c", CONF, "migrate"])
t.is_(r.returncode, 0, "migrate runs")
gt.run_gannet(["-c", CONF, "config", "domain", "add", "lazy.test"])
r, lines = gannet(["config", "domain", "list"])
t.is_((r.returncode, r.stdout), (0, "lazy.test\n"), "config domain list answers from the database")
pq = libpq_lines(lines)
# A sanitizer build intercepts dlopen(): the loader then names libasan as
# the caller, though the call came from libgannet. Only a binary that has
# libasan among its dependencies may show that name.
callers = ["libgannet.so"]
if any(ln.split(":", 1)[-1].strip().startswith("file=libasan.so") and "needed by" in ln
       for ln in lines):
    callers.append("libasan.so")
t.ok(any(ln.startswith("file=libpq.so.5 ") and "dynamically loaded by" in ln
        and any(c in ln for c in callers) for ln in pq),
     "it loads libpq.so.5 with libgannet's dlopen()")
t.ok(not any("needed by" in ln for ln in pq), "libpq is no dependency of libgannet or gannet")
if t.failed:
    t.diag("\n".join(pq))

# ---- a libpq that cannot be loaded ----
broken = gt.tmpdir("gannet-nopq-")
with open(os.path.join(broken, "libpq.so.5"), "w") as f:
    f.write("not a shared object\n")
nosym = gt.tmpdir("gannet-nosym-")
# An ELF shared object that loads but is no libpq: a module of the build.
shutil.copy(SMTP, os.path.join(nosym, "libpq.so.5"))

for label, d, want in (
        ("a libpq.so.5 that cannot be loaded", broken,
         "gannet: database: cannot load PostgreSQL's client library (Debian package libpq5): "
         + os.path.join(broken, "libpq.so.5") + ":"),
        ("a libpq.so.5 without libpq's functions", nosym,
         "gannet: database: PostgreSQL's client library libpq.so.5 lacks PQclear, which gannet"
         " needs (libpq 13 or newer, Debian package libpq5)")):
    path = d + ":" + LIBDIR
    r, _ = gannet(["config", "domain", "list"], libpath=path)
    t.is_(r.returncode, 1, "with %s, a data command exits 1 (no crash)" % label)
    t.like(r.stderr, want, "saying what is missing and which package has it")
    t.is_(r.stdout, "", "and prints no result")
    r, _ = gannet(["version"], libpath=path)
    t.is_((r.returncode, r.stderr), (0, ""), "version still runs (it never loads libpq)")
    r, _ = gannet(["serve", "--foreground"], libpath=path, timeout=120)
    t.is_(r.returncode, 1, "gannet serve exits 1 (no crash)")
    t.like(r.stdout + r.stderr, want.replace("gannet: database: ", ""), "and says why")

# ---- what a data command sends ----
pdir = gt.tmpdir("gannet-proxy-")
proxy = pgproxy.PgProxy(cl.host, cl.port, pdir, 5432)
PCONF = write_conf("proxied.conf", "host=%s port=5432 user=gannet dbname=%s" % (pdir, db))
r = subprocess.run([BINARY, "-c", PCONF, "config", "domain", "list"], capture_output=True,
                   text=True, env=dict(os.environ, LD_LIBRARY_PATH=LIBDIR), timeout=60)
t.is_((r.returncode, r.stdout), (0, "lazy.test\n"), "config domain list through a proxy")
with proxy.lock:
    sent = list(proxy.statements)
t.is_(len([s for s in sent if "gn_schema_migrations" in s]), 1,
      "the schema check is one query")
if not t.is_(len(sent), 2, "the command sends two statements: the check and its query"):
    t.diag("\n".join(sent))
t.done()
