#!/usr/bin/env python3
"""
t/integration/060-plugin.t: a plugin built from outside, the way a third
party builds one, loads into an installed gannet and serves a protocol.

Gannet is installed into a temporary root (make install DESTDIR=...), the
plugin in plugins/hello is copied out of the source tree and built with its
own Makefile against that install only (gannet.pc, the installed headers and
libgannet), installed with `make install` into the module directory that
gannet.pc names, and loaded by the installed gannet binary.  The test then
talks the plugin's line protocol over a socket: the greeting from its config
section, echo, a line its hook on "hello.line" rejects, per-connection
counts kept in its module slot, the input limit, QUIT.

The staged gannet.pc is relocated by prefixing its absolute paths with the
staging root.  pkg-config's own relocation (--define-prefix,
PKG_CONFIG_SYSROOT_DIR) applies to every package in the chain, and gannet.pc
requires libpq, whose headers live outside the staging root.
"""
import glob
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
os.umask(0o022)

# Sub-makes must not inherit the jobserver of a surrounding `make check`,
# nor compiler search paths that could find headers elsewhere.
ENV = {k: v for k, v in os.environ.items()
       if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CPATH", "C_INCLUDE_PATH",
                    "LIBRARY_PATH", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR",
                    "PKG_CONFIG_SYSROOT_DIR", "CFLAGS", "CPPFLAGS", "LDFLAGS")}

work = gt.tmpdir("gannet-plugin-")
root = os.path.join(work, "root")
pcdir = os.path.join(work, "pkgconfig")
plugdir = os.path.join(work, "hello")


def run(cmd, env=None, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV,
                          timeout=600, **kw)


def bail(msg, detail=""):
    t.ok(False, msg)
    t.diag(detail)
    t.done()


def tail(s, n=40):
    return "\n".join(s.splitlines()[-n:])


# --- install gannet into a temporary root -------------------------------
r = run(["make", "-C", gt.BUILDDIR, "install", "DESTDIR=" + root])
if not t.ok(r.returncode == 0, "make install DESTDIR=<tmp> succeeds"):
    bail("installed gannet", tail(r.stdout + r.stderr))

pcs = glob.glob(os.path.join(root, "**", "pkgconfig", "gannet.pc"), recursive=True)
if not t.is_(len(pcs), 1, "the install has one gannet.pc"):
    bail("found gannet.pc", repr(pcs))

# Relocate it: every absolute path it names moves under the staging root.
os.makedirs(pcdir)
with open(pcs[0]) as f:
    pc = f.read()
pc = re.sub(r"^([A-Za-z_][A-Za-z0-9_.]*)=(/.*)$",
            lambda m: "%s=%s%s" % (m.group(1), root, m.group(2)), pc, flags=re.M)
with open(os.path.join(pcdir, "gannet.pc"), "w") as f:
    f.write(pc)
PCENV = dict(ENV, PKG_CONFIG_PATH=pcdir)


def pkgvar(name):
    return run(["pkg-config", "--variable=" + name, "gannet"], env=PCENV).stdout.strip()


prefix = pkgvar("prefix")
exec_prefix = pkgvar("exec_prefix") or prefix
libdir = pkgvar("libdir")
moduledir = pkgvar("moduledir")
cflags = run(["pkg-config", "--cflags", "gannet"], env=PCENV).stdout
t.ok(prefix.startswith(root + "/") and moduledir.startswith(root + "/"),
     "pkg-config gannet points into the temporary install")
includedir = pkgvar("includedir")
t.ok(("-I" + includedir) in cflags
     and os.path.exists(os.path.join(includedir, "gannet", "gannet.h")),
     "its Cflags name the installed headers")
# A path is from the trees when it starts there (the temporary install may
# itself lie below the build tree, as quickstart's prefix does: build/inst).
tree_paths = [f for f in cflags.split()
              if f.startswith("-I") and (f[2:].startswith(gt.SRCDIR + "/") or
                                         f[2:].startswith(gt.BUILDDIR + "/"))]
t.ok(not tree_paths, "its Cflags do not point into the source or build tree: %s" % tree_paths)

# --- build the plugin as a third party would ------------------------------
src = os.path.join(gt.SRCDIR, "plugins", "hello")
shutil.copytree(src, plugdir, ignore=shutil.ignore_patterns("*.so", "*.o"))
r = run(["make", "-C", plugdir], env=PCENV)
if not t.ok(r.returncode == 0 and os.path.exists(os.path.join(plugdir, "hello.so")),
            "plugins/hello builds with its own Makefile against the install"):
    bail("built hello.so", r.stdout + r.stderr)
t.ok(gt.SRCDIR + "/core" not in r.stdout and gt.BUILDDIR + "/core" not in r.stdout,
     "the plugin build uses nothing from the source or build tree")
t.ok(not glob.glob(os.path.join(src, "*.so")), "the source tree stays clean")

r = run(["nm", "-D", "--defined-only", os.path.join(plugdir, "hello.so")])
syms = sorted(line.split()[-1] for line in r.stdout.splitlines() if line.strip())
t.is_(syms, ["gannet_module_v1"], "hello.so exports only gannet_module_v1")

r = run(["make", "-C", plugdir, "install"], env=PCENV)
installed = os.path.join(moduledir, "hello.so")
if not t.ok(r.returncode == 0 and os.path.exists(installed),
            "make install puts hello.so into pkg-config's moduledir"):
    bail("installed hello.so", r.stdout + r.stderr)
os.chmod(moduledir, 0o755)
os.chmod(installed, 0o644)

# --- the installed gannet loads it ------------------------------------------
gannet_bin = os.path.join(exec_prefix, "bin", "gannet")
if not os.path.exists(gannet_bin):
    found = glob.glob(os.path.join(root, "**", "bin", "gannet"), recursive=True)
    gannet_bin = found[0] if found else gannet_bin
if not t.ok(os.access(gannet_bin, os.X_OK), "the install has the gannet binary"):
    bail("found gannet", gannet_bin)
RUNENV = {"LD_LIBRARY_PATH": libdir}

port = gt.free_port()
conf = gt.base_conf(
    listeners='{ name = "hello"; address = "127.0.0.1"; port = %d; '
              'protocol = "hello-echo"; tls = "none"; }' % port,
    modules='directory = "%s"; load = [ "hello" ];' % moduledir,
    extra='workers = 1;\nhello = { greeting = "hi there"; };\n')
g = gt.Gannet(conf, binary=gannet_bin, env=RUNENV)

r = run([gannet_bin, "-c", g.conf_path, "modules"], env=dict(ENV, **RUNENV))
if not t.ok(r.returncode == 0 and re.search(r"^hello\b", r.stdout, re.M),
            "gannet modules lists hello"):
    t.diag(tail(r.stdout + r.stderr, 20))

try:
    g.start(wait_ports=[port])
except RuntimeError as e:
    bail("gannet serve listens with the hello protocol", e)
t.ok(True, "gannet serve listens with the hello protocol")

try:
    with open("/proc/%d/maps" % g.proc.pid) as f:
        maps = f.read()
except OSError:
    maps = ""
t.ok(os.path.join(root, "") in maps and "libgannet.so" in maps,
     "the running gannet uses the installed libgannet")


class Client:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.f = self.s.makefile("rb")

    def line(self):
        try:
            return self.f.readline().decode("utf-8", "replace").rstrip("\r\n")
        except OSError as e:
            return "<%s>" % e

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def cmd(self, text):
        self.send(text)
        return self.line()

    def eof(self):
        try:
            return self.f.read() == b""
        except ConnectionResetError:
            return True
        except OSError:
            return False

    def close(self):
        self.f.close()
        self.s.close()


c = Client()
t.is_(c.line(), "+OK hi there", "greets with the greeting from its config section")
t.is_(c.cmd("hello world"), "hello world", "echoes a line")
t.is_(c.cmd("this is forbidden"), "-ERR that word is forbidden here",
      "a line the hook rejects gets the hook's reply text")
t.is_(c.cmd("COUNT"), "+OK 2", "COUNT answers the lines so far")
c.s.sendall(b"one\r\ntwo\nthree\r\n")
t.is_([c.line(), c.line(), c.line()], ["one", "two", "three"],
      "pipelined lines are answered in order")

c2 = Client()
t.is_(c2.line(), "+OK hi there", "a second connection is greeted")
t.is_(c2.cmd("COUNT"), "+OK 0", "its count starts at zero (per-connection slot)")
t.is_(c.cmd("COUNT"), "+OK 6", "the first connection's count is its own")
t.is_(c.cmd("QUIT"), "+OK bye", "QUIT says bye")
t.ok(c.eof(), "and the server closes the connection")
c.close()

c2.s.sendall(b"x" * 4096)
t.is_(c2.line(), "-ERR line too long", "an over-long line is refused")
t.ok(c2.eof(), "and the connection closes")
c2.close()

rc = g.stop()
t.is_(rc, 0, "gannet stops cleanly on SIGTERM")
log = g.log()
t.ok(re.search(r"area=hello\b.*event=start", log), "the plugin logs its start")
t.ok(re.search(r"area=hello\b.*event=line_rejected", log),
     "the plugin logs the rejected line under its own area")
t.ok(re.search(r"area=hello\b.*event=stop", log), "the plugin logs its stop")
if t.failed:
    t.diag(tail(log, 60))
t.done()
