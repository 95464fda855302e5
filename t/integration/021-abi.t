#!/usr/bin/env python3
"""
t/integration/021-abi.t: the ABI gate.

1. libgannet.so exports only gn_* symbols, each in a GANNET_1.N version
   node (core/libgannet.map; 023-abi-headers.t checks the node of each).
2. Every module built in the tree (the zoo of t/abi/, modules/*, test
   modules, plugins built in place) exports only gannet_module_v1.
3. The layout of every public struct and the value of every public
   constant is as in each frozen copy of the headers (t/abi/include-M.N):
   a program generated from the headers (t/lib/gannetabi.py) prints them,
   built once against the frozen copy and once against the current
   headers.  Only the structs that core/abi/suppressions.abignore lets
   grow may be larger.
4. abidiff finds no change between the committed baseline
   core/abi/libgannet.abi and the built library, other than added
   functions and members appended where the suppressions allow.  The
   baseline holds no path of the machine that made it.
5. The gate can fail: copies of libgannet built from changed sources (a
   member inserted at the start of struct gn_addr, a parameter added to
   gn_buf_limit(), an export dropped from the version script) each fail it with
   the change named, and an unchanged copy built the same way passes (so
   the failures come from the changes, not from the way they are built).
See core/abi/README.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, SRCDIR, Tap
import gannetabi

t = Tap()
LIB = os.path.join(BUILDDIR, "core", ".libs", "libgannet.so")
BASELINE = os.path.join(SRCDIR, "core", "abi", "libgannet.abi")
SUPPR = os.path.join(SRCDIR, "core", "abi", "suppressions.abignore")
INCLUDE = os.path.join(SRCDIR, "core", "include")
HEADERS = os.path.join(INCLUDE, "gannet")
# What the toolchain may put into any shared object's dynamic symbol table.
TOOLCHAIN = {"_init", "_fini", "_edata", "_end", "__bss_start"}


def dynsyms(path):
    """Defined dynamic symbols: list of (name, type, version or None)."""
    r = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("nm %s: %s" % (path, r.stderr))
    out = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name = parts[-1]
        typ = parts[-2]
        version = None
        m = re.match(r"^([^@]+)@@?(.+)$", name)
        if m:
            name, version = m.group(1), m.group(2)
        out.append((name, typ, version))
    return out


# ---- 1. libgannet exports gn_* only ----
t.ok(os.path.exists(LIB), "libgannet.so is built (%s)" % LIB)
syms = dynsyms(LIB) if os.path.exists(LIB) else []
funcs = [s for s in syms if s[1] != "A"]
nodes = [s[0] for s in syms if s[1] == "A"]
t.ok(len(funcs) > 50, "libgannet exports its functions (%d)" % len(funcs))
bad = [s[0] for s in funcs if not s[0].startswith("gn_")]
t.is_(bad, [], "libgannet exports nothing but gn_* symbols")
unversioned = [s[0] for s in funcs if s[2] is None or not re.match(r"^GANNET_1\.\d+$", s[2])]
t.is_(unversioned, [], "every exported symbol is in a GANNET_1.N version node")
t.ok("GANNET_1.0" in nodes, "the version node GANNET_1.0 exists")
t.is_([n for n in nodes if not re.match(r"^GANNET_1\.\d+$", n)], [], "no other version nodes")
for name in ("modules_load", "hooks_check", "conf_load", "core_loop", "db_query", "mime_to_json"):
    t.ok(not any(s[0] == name for s in syms), "the internal %s is not exported" % name)

# ---- 2. modules export only their descriptor ----
sos = set()
for pattern in ("t/abi/.libs/*.so", "modules/*/.libs/*.so", "t/modules/*/.libs/*.so",
                "plugins/*/*.so", "plugins/*/.libs/*.so"):
    for base in {BUILDDIR, SRCDIR}:
        sos.update(glob.glob(os.path.join(base, pattern)))
sos = sorted(sos)
t.ok(len(sos) >= 14, "the module zoo and the tree's modules are found (%d shared objects)" % len(sos))
for so in sos:
    name = os.path.basename(so)[:-3]
    try:
        names = {s[0] for s in dynsyms(so)} - TOOLCHAIN
    except RuntimeError as e:
        t.ok(False, str(e))
        continue
    rel = os.path.relpath(so, BUILDDIR) if so.startswith(BUILDDIR) else so
    if name == "bad_nodesc":
        t.is_(sorted(names), [], "%s exports nothing (it is the module without a descriptor)" % rel)
    else:
        t.is_(sorted(names), ["gannet_module_v1"], "%s exports only gannet_module_v1" % rel)

# ---- 3. the layout of the structs and the constants ----
# abidiff below sees only types reachable from libgannet's functions; the
# descriptor, the requirement list and every constant reach a module's
# binary without passing through one.
tmp = tempfile.mkdtemp(prefix="gannet-abi-")


def layout(incdir, tag):
    """The generated program's lines for the headers of incdir, or None."""
    src = os.path.join(tmp, "layout-%s.c" % tag)
    exe = os.path.join(tmp, "layout-%s" % tag)
    try:
        with open(src, "w") as f:
            f.write(gannetabi.layout_c(incdir))
    except (gannetabi.HeaderError, OSError) as e:
        t.diag("%s: %s" % (incdir, e))
        return None
    cc = os.environ.get("CC", "cc").split()
    r = subprocess.run(cc + ["-std=gnu11", "-D_GNU_SOURCE", "-I", incdir, "-o", exe, src],
                       capture_output=True, text=True)
    if r.returncode != 0:
        t.diag("building %s:\n%s" % (src, r.stderr))
        return None
    return subprocess.run([exe], capture_output=True, text=True, check=True).stdout.splitlines()


with open(SUPPR) as f:
    growable = set(re.findall(r"^\s*name\s*=\s*(\S+)", f.read(), re.M))
t.ok("gn_module" in growable and "gn_store_message_new" in growable,
     "the structs that may grow at the end are read from the suppressions")

new_layout = layout(INCLUDE, "current")
t.ok(new_layout is not None, "the layout program builds against the current headers")
frozen = sorted(glob.glob(os.path.join(SRCDIR, "t", "abi", "include-*")))
t.ok(len(frozen) > 0, "frozen copies of the headers exist (t/abi/include-M.N)")
for d in frozen:
    ver = os.path.basename(d)[len("include-"):]
    old_layout = layout(d, ver)
    t.ok(old_layout is not None, "the layout program builds against the frozen %s headers" % ver)
    if old_layout is None or new_layout is None:
        continue
    new = {}
    for line in new_layout:
        kind, name, *rest = line.split(" ", 2)
        new[(kind, name)] = rest[0] if rest else ""
    changed = []
    for line in old_layout:
        kind, name, *rest = line.split(" ", 2)
        old = rest[0] if rest else ""
        got = new.get((kind, name))
        if got is None:
            changed.append("%s: gone" % line)
        elif kind == "sizeof" and name in growable:
            if int(got) < int(old):
                changed.append("%s: now %s (it may only grow)" % (line, got))
        elif kind == "const" and name == "GN_ABI_MINOR":
            if int(got) < int(old):
                changed.append("%s: now %s" % (line, got))
        elif got != old:
            changed.append("%s: now %s" % (line, got))
    t.is_(changed, [], "every struct member, struct size and constant of ABI %s is unchanged "
          "(%d checked)" % (ver, len(old_layout)))
    t.ok(len(old_layout) > 200, "the layout covers the structs and constants of every header")

# ---- 4. abidiff against the baseline ----
abidiff = shutil.which("abidiff")
t.ok(abidiff is not None, "abidiff is installed (Debian package abigail-tools)")
t.ok(os.path.exists(BASELINE), "the baseline %s is committed" % BASELINE)
if abidiff is None or not os.path.exists(BASELINE) or not os.path.exists(LIB):
    shutil.rmtree(tmp, ignore_errors=True)
    t.done()

with open(BASELINE) as f:
    baseline_text = f.read()
paths = sorted(set(re.findall(r"(?:path|filepath|comp-dir-path)='(/[^']*)'", baseline_text)))
t.is_(paths, [], "the baseline names no absolute path")
t.ok(SRCDIR not in baseline_text and BUILDDIR not in baseline_text,
     "nor the source or build directory")
# Without its types' locations abidiff cannot tell public types from
# private ones and lets every layout change pass: the baseline keeps the
# header names.
t.ok(re.search(r"<class-decl name='gn_addr'[^>]*filepath='addr.h'", baseline_text) is not None,
     "the baseline locates struct gn_addr in addr.h")


def diff(new):
    """abidiff as the gate runs it: baseline against a built library."""
    return subprocess.run([abidiff, "--no-added-syms", "--no-show-locs", "--suppressions", SUPPR,
                           "--headers-dir2", HEADERS, BASELINE, new],
                          capture_output=True, text=True)


r = diff(LIB)
t.is_(r.returncode, 0, "abidiff finds no incompatible change against core/abi/libgannet.abi")
if r.returncode != 0:
    t.diag("abidiff exit %d (bits: 1 error, 2 usage, 4 change, 8 incompatible):" % r.returncode)
    t.diag(r.stdout + r.stderr)
    t.diag("A change on purpose? See core/abi/README.")

# ---- 5. the gate fails on changed copies of the library ----
MAKE = os.environ.get("MAKE", "make")


def edit(text, old, new, what):
    if text.count(old) != 1:
        t.ok(False, "%s: %r found %d times (update this test)" % (what, old, text.count(old)))
        return text
    return text.replace(old, new)


def mutant(name, sources, change):
    """Builds libgannet from a copy of the public headers, the version
    script and sources (all as in the tree), with change(dir) applied to
    the copy.  Returns the library's path, or None."""
    d = os.path.join(tmp, name)
    shutil.copytree(HEADERS, os.path.join(d, "core", "include", "gannet"))
    shutil.copy(os.path.join(SRCDIR, "core", "libgannet.map"), os.path.join(d, "core"))
    for s in sources:
        os.makedirs(os.path.join(d, os.path.dirname(s)), exist_ok=True)
        shutil.copy(os.path.join(SRCDIR, s), os.path.join(d, s))
    change(d)
    r = subprocess.run([MAKE, "-s", "-C", BUILDDIR, "abi-mutant", "ABI_MUTANT=" + d,
                        "ABI_MUTANT_SOURCES=" + " ".join(sources)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        t.diag("building the %s copy:\n%s%s" % (name, r.stdout, r.stderr))
        return None
    return os.path.join(d, "libgannet.so")


def rewrite(d, path, old, new, what):
    p = os.path.join(d, path)
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(edit(text, old, new, what))


def unchanged(d):
    pass


def insert_member(d):
    rewrite(d, "core/include/gannet/addr.h", "struct gn_addr {\n",
            "struct gn_addr {\n\tint abi_selftest_inserted;\n", "struct gn_addr")


def add_parameter(d):
    rewrite(d, "core/include/gannet/mem.h",
            "size_t gn_buf_limit(const struct gn_buf *buf);",
            "size_t gn_buf_limit(const struct gn_buf *buf, int abi_selftest_added);",
            "gn_buf_limit in mem.h")
    rewrite(d, "core/base/mem.c", "size_t gn_buf_limit(const struct gn_buf *b)\n",
            "size_t gn_buf_limit(const struct gn_buf *b, int abi_selftest_added)\n",
            "gn_buf_limit in mem.c")


def drop_export(d):
    rewrite(d, "core/libgannet.map", "\t\tgn_hook_run;\n", "", "gn_hook_run in libgannet.map")


# The copies recompile only the files a change touches (addr.c defines
# the functions that take struct gn_addr) and take the rest from this build.
cases = [
    ("unchanged", ["core/mail/addr.c", "core/base/mem.c"], unchanged, None,
     "an unchanged copy built the same way passes the gate"),
    ("inserted", ["core/mail/addr.c"], insert_member, "abi_selftest_inserted",
     "a member inserted at the start of struct gn_addr fails the gate"),
    ("parameter", ["core/base/mem.c"], add_parameter, "gn_buf_limit",
     "a parameter added to gn_buf_limit fails the gate"),
    ("dropped", [], drop_export, "gn_hook_run",
     "an export dropped from the version script fails the gate"),
]
for name, sources, change, needle, what in cases:
    lib = mutant(name, sources, change)
    if not t.ok(lib is not None and os.path.exists(lib), "the %s copy of libgannet is built" % name):
        continue
    r = diff(lib)
    if needle is None:
        t.is_(r.returncode, 0, what)
        if r.returncode != 0:
            t.diag(r.stdout + r.stderr)
    else:
        t.ok(r.returncode != 0, what)
        t.like(r.stdout, needle, "abidiff names the change (%s)" % needle)
        if name == "dropped":
            t.ok(r.returncode & 8 != 0, "a dropped export is reported as incompatible")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
