#!/usr/bin/env python3
"""
t/integration/001-tree.t: what is committed is source, not the leftovers of
the machine that built it.

1. No committed file is one .gitignore lists (configure~ and confdefs.h
   once were).  Needs a git checkout; from a release tarball there is no
   history to check, and the test says so.
2. No committed file names this machine's source or build directory or
   the home directory of the user running the tests: such paths come from
   generated files (core/abi/libgannet.abi once named the build's headers)
   or copied command lines, and mean nothing elsewhere.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, SRCDIR, Tap  # noqa: E402

t = Tap()

try:
    git = subprocess.run(["git", "-C", SRCDIR, "ls-files", "-z"], capture_output=True)
except OSError:  # no git: a tarball on a machine without it
    git = None
if git is not None and git.returncode == 0:
    files = [f for f in git.stdout.decode().split("\0") if f]
    r = subprocess.run(["git", "-C", SRCDIR, "ls-files", "--cached", "--ignored",
                        "--exclude-standard"], capture_output=True, text=True)
    t.is_(r.returncode, 0, "git lists the committed files that .gitignore lists")
    ignored = r.stdout.split()
    t.is_(ignored, [], "no committed file is one .gitignore lists")
else:
    t.diag("not a git checkout: checking every file under %s instead of the committed ones" % SRCDIR)
    files = []
    build = os.path.realpath(BUILDDIR)
    for root, dirs, names in os.walk(SRCDIR):
        dirs[:] = [d for d in dirs if d != ".git" and os.path.realpath(os.path.join(root, d)) != build]
        files += [os.path.relpath(os.path.join(root, n), SRCDIR) for n in names]
t.ok(len(files) > 100, "the tree has its files (%d)" % len(files))

needles = {os.path.realpath(SRCDIR), os.path.realpath(BUILDDIR), os.path.abspath(SRCDIR),
           os.path.abspath(BUILDDIR)}
home = os.path.expanduser("~")
if home not in ("/", "~"):
    needles.add(home.rstrip("/") + "/")
# A needle counts as a path only where it starts one and ends a name: a
# source tree at /s is not named by "%s/dovecot/s-x".
needles = sorted(n.encode() for n in needles if len(n) > 1)
patterns = [(n, re.compile(rb"(?<![\w.~/-])" + re.escape(n.rstrip(b"/")) + rb"(?![\w.-])"))
            for n in needles]
found = []
for f in files:
    try:
        with open(os.path.join(SRCDIR, f), "rb") as fh:
            data = fh.read()
    except OSError:
        continue
    for n, pat in patterns:
        m = pat.search(data)
        if m:
            line = data[:m.start()].count(b"\n") + 1
            found.append("%s:%d names %s" % (f, line, n.decode()))
            break
for x in found:
    t.diag(x)
t.is_(len(found), 0, "no committed file names this machine's source, build or home directory")
t.done()
