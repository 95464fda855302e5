#!/usr/bin/env python3
"""
t/integration/022-layers.t: the core reads as its layers (DESIGN.md "Layout").

core/ has one folder a layer, lowest first: base, runtime, net, db, mail,
dns, auth, store, smtp.  Each has one internal header, internal.h; a file of a
layer includes only the internal headers of its own layer and of the
layers below, and (checked on the built objects, so an undeclared call
cannot hide) calls only functions defined in those layers.  Only the
wiring (main.c, serve.c, localserve.c) sits in core/ itself and may use
every layer.
"""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, SRCDIR, Tap

t = Tap()
LAYERS = ["base", "runtime", "net", "db", "mail", "dns", "auth", "store", "smtp"]
RANK = {name: i for i, name in enumerate(LAYERS)}
CORE = os.path.join(SRCDIR, "core")
TOP_FILES = {"main.c", "main.h", "serve.c", "localserve.c", "gannet-main.c"}

# ---- the folders ----
for layer in LAYERS:
    t.ok(os.path.isfile(os.path.join(CORE, layer, "internal.h")),
         "core/%s/internal.h exists" % layer)
top = sorted(f for f in os.listdir(CORE) if f.endswith((".c", ".h")))
t.is_([f for f in top if f not in TOP_FILES], [],
      "core/ itself holds only the wiring (%s)" % ", ".join(sorted(TOP_FILES)))
dirs = sorted(d for d in os.listdir(CORE)
              if os.path.isdir(os.path.join(CORE, d)) and d not in ("include", "abi"))
t.is_(dirs, sorted(LAYERS), "core/ has one folder per layer and no other")

# ---- includes ----
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
for layer in LAYERS:
    for path in sorted(glob.glob(os.path.join(CORE, layer, "*.[ch]"))):
        rel = os.path.relpath(path, SRCDIR)
        with open(path) as f:
            text = f.read()
        bad = []
        for inc in inc_re.findall(text):
            if inc == "config.h":
                continue
            m = re.match(r"^([a-z]+)/internal\.h$", inc)
            if m is None or m.group(1) not in RANK:
                bad.append("%s (not a layer's internal header)" % inc)
            elif RANK[m.group(1)] > RANK[layer]:
                bad.append("%s (a layer above %s)" % (inc, layer))
        t.is_(bad, [], "%s includes only its own and lower layers' headers" % rel)

# ---- calls, on the built objects ----
objs = {}
for layer in LAYERS:
    for o in glob.glob(os.path.join(BUILDDIR, "core", layer, ".libs", "*.o")):
        objs[o] = layer
t.ok(len(objs) >= 20, "the core's objects are built (%d)" % len(objs))


def nm(args, path):
    r = subprocess.run(["nm"] + args + [path], capture_output=True, text=True, check=True)
    return r.stdout.splitlines()


defined = {}
for o, layer in objs.items():
    for line in nm(["--defined-only"], o):
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRC":
            defined[parts[2]] = (layer, os.path.basename(o))
for o, layer in sorted(objs.items()):
    up = []
    for line in nm(["-u"], o):
        sym = line.split()[-1]
        d = defined.get(sym)
        if d is not None and RANK[d[0]] > RANK[layer]:
            up.append("%s (%s/%s)" % (sym, d[0], d[1].replace("libgannet_core_la-", "")))
    name = "%s/%s" % (layer, os.path.basename(o).replace("libgannet_core_la-", "").replace(".o", ".c"))
    t.is_(sorted(up), [], "core/%s calls nothing of a layer above it" % name)
t.done()
