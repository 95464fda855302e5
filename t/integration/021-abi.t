#!/usr/bin/env python3
"""
t/integration/021-abi.t: the ABI gate.

1. libgannet.so exports only gn_* symbols, each in a GANNET_1.N version
   node (core/libgannet.map).
2. Every module built in the tree (the zoo of t/abi/, modules/*, test
   modules, plugins built in place) exports only gannet_module_v1.
3. The structs modules fill and the constants they compile in keep
   their ABI 1.0 layout and values (t/abi/layout.c built against the
   frozen and the current headers).
4. abidiff finds no change between the committed baseline
   core/abi/libgannet.abi and the built library, other than added
   functions and the members appended at the end of the structs that
   core/abi/suppressions.abignore allows.  See core/abi/README.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, SRCDIR, Tap

t = Tap()
LIB = os.path.join(BUILDDIR, "core", ".libs", "libgannet.so")
BASELINE = os.path.join(SRCDIR, "core", "abi", "libgannet.abi")
SUPPR = os.path.join(SRCDIR, "core", "abi", "suppressions.abignore")
HEADERS = os.path.join(SRCDIR, "core", "include", "gannet")
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
for name in ("gn_module_name", "gn_hook_run", "gn_service_lookup", "gn_log"):
    t.ok(any(s[0] == name for s in funcs), "%s is exported" % name)
for name in ("modules_load", "hooks_check", "conf_load", "core_loop"):
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

# ---- 3. the structs and constants modules compile in ----
# abidiff below sees only types reachable from libgannet's functions; the
# descriptor and the requirement list reach the core through dlsym().
def layout(prog):
    path = os.path.join(BUILDDIR, "t", "abi", prog)
    if not os.path.exists(path):
        return None
    return subprocess.run([path], capture_output=True, text=True, check=True).stdout.splitlines()


old_layout = layout("layout-1.0")
new_layout = layout("layout-current")
t.ok(old_layout is not None and new_layout is not None,
     "t/abi/layout-1.0 and t/abi/layout-current are built (make check builds them)")
if old_layout and new_layout:
    new_set = set(new_layout)
    new_sizes = {l.split()[1]: int(l.split()[2]) for l in new_layout if l.startswith("sizeof ")}
    # Arrays of these are handed over without a size: they cannot grow.
    fixed = {"gn_module_require", "gn_migration"}
    for line in old_layout:
        kind, name, *rest = line.split()
        if kind == "sizeof":
            old_size = int(rest[0])
            got = new_sizes.get(name)
            if name in fixed:
                t.is_(got, old_size, "%s keeps its 1.0 size (modules pass arrays of it)" % name)
            else:
                t.ok(got is not None and got >= old_size,
                     "%s keeps at least its 1.0 size (%d, now %s): it may only grow at the end" % (name, old_size, got))
        else:
            t.ok(line in new_set, "unchanged since ABI 1.0: %s" % line)

# ---- 4. abidiff against the baseline ----
abidiff = None
for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]:
    if os.path.exists(os.path.join(d, "abidiff")):
        abidiff = os.path.join(d, "abidiff")
        break
t.ok(abidiff is not None, "abidiff is installed (Debian package abigail-tools)")
t.ok(os.path.exists(BASELINE), "the baseline %s is committed" % BASELINE)
if abidiff is None or not os.path.exists(BASELINE) or not os.path.exists(LIB):
    t.done()


def diff(old, new, new_is_binary=True):
    cmd = [abidiff, "--no-added-syms", "--no-show-locs", "--suppressions", SUPPR]
    if new_is_binary:
        cmd += ["--headers-dir2", HEADERS]
    cmd += [old, new]
    return subprocess.run(cmd, capture_output=True, text=True)


r = diff(BASELINE, LIB)
t.is_(r.returncode, 0, "abidiff finds no incompatible change against core/abi/libgannet.abi")
if r.returncode != 0:
    t.diag("abidiff exit %d (bits: 1 error, 2 usage, 4 change, 8 incompatible):" % r.returncode)
    t.diag(r.stdout + r.stderr)
    t.diag("A change on purpose? See core/abi/README (make abi-baseline).")

# The gate itself must be able to fail: drop one function from a copy of
# the baseline and compare the baseline against it.
with open(BASELINE) as f:
    text = f.read()
m = re.search(r"\n\s*<elf-symbol name='(gn_hook_run)'[^\n]*\n", text)
t.ok(m is not None, "the baseline lists gn_hook_run")
if m:
    with tempfile.NamedTemporaryFile("w", suffix=".abi", delete=False) as f:
        f.write(text[:m.start()] + "\n" + text[m.end():])
        mutated = f.name
    r = diff(BASELINE, mutated, new_is_binary=False)
    os.unlink(mutated)
    t.ok(r.returncode & 8 != 0, "the gate reports a removed function as incompatible")
    t.like(r.stdout, "gn_hook_run", "naming it")
t.done()
