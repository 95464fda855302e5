#!/usr/bin/env python3
"""
t/integration/023-abi-headers.t: the public headers, the version script and
the library tell the same story, and the ABI version moves with it.

1. The installed headers (core/local.mk) are the headers of
   core/include/gannet/; the frozen copy of the version being made has
   every one of them, and after a release none of the released copy's has
   gone (a new header declares new ABI only, which item 4 holds).
2. core/libgannet.map lists every function by name (no wildcard), in nodes
   GANNET_<major>.N for N <= GN_ABI_MINOR, each later node inheriting the one
   before; gannet/module.h's changelog has a line for each minor.
3. What the headers declare, what the map lists and what libgannet exports
   are the same functions, each exported in the node that lists it.
4. After a release (core/abi/released), a function the released baseline
   does not have sits in a node newer than the released minor, and the
   functions it has keep their node.
5. Every function carries the prefix of its header (gn_store_* in
   store.h), save the few named below with the reason.
6. Every public struct is either allowed to grow at the end or frozen on
   purpose, in core/abi/suppressions.abignore.
See core/abi/README.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, SRCDIR, Tap
import gannetabi

t = Tap()
LIB = os.path.join(BUILDDIR, "core", ".libs", "libgannet.so")
INCLUDE = os.path.join(SRCDIR, "core", "include")
MODULE_H = os.path.join(INCLUDE, "gannet", "module.h")
MAP = os.path.join(SRCDIR, "core", "libgannet.map")
BASELINE = os.path.join(SRCDIR, "core", "abi", "libgannet.abi")
RELEASED = os.path.join(SRCDIR, "core", "abi", "released")
SUPPR = os.path.join(SRCDIR, "core", "abi", "suppressions.abignore")

# Prefixes a header's functions may carry besides gn_<header name>_: the
# objects it defines when they are named otherwise.
PREFIXES = {
    "conn.h": ["gn_protocol_"],		# struct gn_protocol
    "deliver.h": ["gn_delivery_"],	# struct gn_delivery
    "loop.h": ["gn_timer_", "gn_io_"],	# the loop's two handles
    "mem.h": ["gn_buf_", "gn_pool_"],	# its two objects
}
# Functions whose name is right for another reason.
EXCEPTIONS = {
    ("mem.h", "gn_malloc"): "named after the libc function it stands in for",
    ("mem.h", "gn_calloc"): "named after the libc function it stands in for",
    ("mem.h", "gn_realloc"): "named after the libc function it stands in for",
    ("mem.h", "gn_free"): "named after the libc function it stands in for",
    ("mem.h", "gn_strdup"): "named after the libc function it stands in for",
    ("mem.h", "gn_strndup"): "named after the libc function it stands in for",
    ("mem.h", "gn_strdup_printf"): "gn_strdup with a format, as asprintf is",
    ("log.h", "gn_logv"): "the va_list form of gn_log, as vprintf is of printf",
    ("loop.h", "gn_now"): "the loop's clock, read everywhere",
    ("addr.h", "gn_precis_opaque"): "the name of the PRECIS profile (RFC 8265), beside the "
                                    "Unicode address code it shares",
    ("gannet.h", "gn_main"): "the library as a whole: the gannet binary's entry point",
    ("gannet.h", "gn_version"): "the library as a whole: its version",
}


def exported():
    r = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] != "A":
            m = re.match(r"^([^@]+)@@?(.+)$", parts[-1])
            name, ver = (m.group(1), m.group(2)) if m else (parts[-1], None)
            out[name] = ver
    return out


# ---- 1. the installed headers and their frozen copy ----
with open(os.path.join(SRCDIR, "core", "local.mk")) as f:
    installed = sorted(re.findall(r"core/include/gannet/([\w.]+\.h)", f.read()))
present = gannetabi.header_files(INCLUDE)
t.is_(installed, present, "core/local.mk installs every header of core/include/gannet/ "
      "(pkginclude_HEADERS)")
major, minor = gannetabi.abi_version(MODULE_H)
t.is_(major, 1, "GN_ABI_MAJOR is 1")
rel = gannetabi.released(RELEASED)
t.ok(rel is None or (rel[0] == major and rel[1] <= minor),
     "core/abi/released (%s) is not newer than the ABI version %d.%d"
     % ("none" if rel is None else "%d.%d" % rel, major, minor))
snapshots = {}
for d in os.listdir(os.path.join(SRCDIR, "t", "abi")):
    m = re.match(r"^include-(\d+)\.(\d+)$", d)
    if m:
        snapshots[(int(m.group(1)), int(m.group(2)))] = os.path.join(SRCDIR, "t", "abi", d)
# The copy that must be complete: of the version being made until it is
# released (then `make abi-release` makes it), else of the last release.
latest = (major, minor) if rel is None else rel
t.ok(latest in snapshots, "t/abi/include-%d.%d exists" % latest)
if latest in snapshots and rel is None:
    t.is_(gannetabi.header_files(snapshots[latest]), present,
          "t/abi/include-%d.%d has every installed header" % latest)
elif latest in snapshots:
    # After a release a header may be new: what it declares is new ABI,
    # held by item 4 to a node newer than the release; the released copy
    # keeps the headers as they were (below: none of them has gone).
    new_headers = sorted(set(present) - set(gannetabi.header_files(snapshots[latest])))
    t.diag("headers new since %d.%d: %s" % (latest + (", ".join(new_headers) or "none",)))
for v, d in sorted(snapshots.items()):
    gone = sorted(set(gannetabi.header_files(d)) - set(present))
    t.is_(gone, [], "every header of t/abi/include-%d.%d is still installed" % v)

# ---- 2. the version script ----
nodes = gannetabi.parse_map(MAP)
t.ok(len(nodes) > 0, "core/libgannet.map has version nodes")
listed = {}
dups, wild, badnode, chain = [], [], [], []
for i, (node, parent, sections) in enumerate(nodes):
    m = re.match(r"^GANNET_(\d+)\.(\d+)$", node)
    if not m or int(m.group(1)) != major or int(m.group(2)) != i:
        badnode.append(node)
    want_parent = None if i == 0 else nodes[i - 1][0]
    if parent != want_parent:
        chain.append("%s inherits %s, not %s" % (node, parent, want_parent))
    for name in sections.get("global", []):
        if re.search(r"[*?\[]", name):
            wild.append("%s: %s" % (node, name))
        elif name in listed:
            dups.append(name)
        else:
            listed[name] = node
    if i == 0 and sections.get("local") != ["*"]:
        chain.append("%s does not end with local: *" % node)
t.is_(wild, [], "no wildcard among the exported names")
t.is_(dups, [], "each function is listed once")
t.is_(badnode, [], "the nodes are GANNET_%d.0, GANNET_%d.1, ... in order" % (major, major))
t.is_(chain, [], "each node inherits the one before; the first hides everything else")
node_minor = {n: int(n.rsplit(".", 1)[1]) for n, _, _ in nodes if re.match(r"^GANNET_\d+\.\d+$", n)}
t.is_([n for n, v in node_minor.items() if v > minor], [],
      "no node is newer than GN_ABI_MINOR (%d)" % minor)
log = gannetabi.changelog(MODULE_H)
t.is_(sorted(v for v in log if v[0] == major), [(major, n) for n in range(minor + 1)],
      "gannet/module.h's changelog has one line for each minor up to GN_ABI_MINOR")

# ---- 3. headers, map and library agree ----
headers = gannetabi.parse_headers(INCLUDE)
declared = {}
for f, h in headers.items():
    for fn in h.functions:
        declared.setdefault(fn, f)
t.ok(len(declared) > 100, "the headers declare the API (%d functions)" % len(declared))
t.is_([(f, v) for f, h in headers.items() for v in h.variables], [],
      "the headers declare no variables")
exp = exported()
t.is_(sorted(set(declared) - set(exp)), [], "every function a header declares is exported")
t.is_(sorted(set(exp) - set(declared)), [], "libgannet exports no function a header does not declare")
t.is_(sorted(set(exp) - set(listed)), [], "every exported function is listed in the map")
t.is_(sorted(set(listed) - set(exp)), [], "every function the map lists exists")
t.is_(sorted(n for n in exp if n in listed and exp[n] != listed[n]), [],
      "each function is exported in the node that lists it")

# ---- 4. after a release: additions in newer nodes ----
with open(BASELINE) as f:
    base = dict(re.findall(r"<elf-symbol name='(gn_\w+)' version='([\w.]+)'", f.read()))
t.ok(len(base) > 100, "the baseline lists the released functions (%d)" % len(base))
if rel is not None:
    t.is_(sorted(n for n in base if n in exp and exp[n] != base[n]), [],
          "the released functions keep their node")
    t.is_(sorted(n for n in exp if n not in base and node_minor.get(listed.get(n), -1) <= rel[1]),
          [], "every function added since %d.%d sits in a node newer than GANNET_%d.%d" % (rel * 2))
else:
    t.diag("nothing released yet (core/abi/released says none): functions may still be "
           "added to GANNET_%d.%d" % (major, minor))

# ---- 5. names carry their header's prefix ----
wrong = []
for fn, f in sorted(declared.items()):
    stem = f[:-2]
    prefixes = ["gn_%s_" % stem] + PREFIXES.get(f, [])
    if fn == "gn_" + stem or any(fn.startswith(p) for p in prefixes) or (f, fn) in EXCEPTIONS:
        continue
    wrong.append("%s in %s" % (fn, f))
t.is_(wrong, [], "every function carries its header's prefix (gn_store_* in store.h ...)")
stale = sorted("%s in %s" % (fn, f) for f, fn in EXCEPTIONS if declared.get(fn) != f)
t.is_(stale, [], "every exception to the prefix rule still names a function of its header")

# ---- 6. every public struct is classified ----
with open(SUPPR) as f:
    suppr = f.read()
growable = set(re.findall(r"^\s*name\s*=\s*(\S+)", suppr, re.M))
frozen = set(w for line in re.findall(r"^#\s*frozen:(.*)$", suppr, re.M) for w in line.split())
structs = sorted(s for h in headers.values() for s in h.structs)
t.is_([s for s in structs if s not in growable and s not in frozen], [],
      "every public struct may grow at the end or is frozen on purpose "
      "(core/abi/suppressions.abignore)")
t.is_(sorted(growable & frozen), [], "none is both")
t.is_(sorted((growable | frozen) - set(structs)), [], "and each one named is a public struct")
t.done()
