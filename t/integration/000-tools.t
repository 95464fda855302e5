#!/usr/bin/env python3
"""
t/integration/000-tools.t: the programs the tests run are installed, and
t/tools (whose packages contrib/quickstart names and installs) names all of them.

Runs first (Makefile.am puts it before every other test) so that a machine
without a tool hears which Debian package to install, instead of a later
test failing with an exit code.  Three checks:

1. every program and Perl module in t/tools is here, else its line names
   the Debian package to install (also on stderr, which prove shows);
2. `contrib/quickstart packages` includes every package of t/tools;
3. t/ is scanned for programs that tests run: in Python, the first string
   of a list (["openssl", "req", ...]) and the string arguments of calls
   named like run/Popen/system/exec/which/join/exists/*_bin; in shell
   scripts, the words in command position and "$dir/name" paths; in C, the
   first word of a string given to system/popen/exec*/printf in a file
   that runs programs; and the #! interpreter of every script.  A name that
   resolves to a program on this machine (PATH or PostgreSQL's bindir) must
   come from an essential Debian package or be listed in t/tools with the
   package that installs it; a listed program no test runs is an error too,
   so the list stays the truth.  Names that are no program here (a word in
   a message) are not programs a test can run, and are skipped.
"""
import ast
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, DEBIAN_PYTHON, SRCDIR, Tap  # noqa: E402

t = Tap()
TOOLS = os.path.join(SRCDIR, "t", "tools")
PG_BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)


def complain(msg):
    """A diagnostic prove shows even when not verbose."""
    t.diag(msg)
    print("000-tools.t: " + msg, file=sys.stderr, flush=True)


def read_tools():
    """[(program, package, line)] from t/tools."""
    out = []
    with open(TOOLS) as f:
        for n, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
            if not words:
                continue
            if len(words) < 2:
                raise ValueError("t/tools:%d: want PROGRAM PACKAGE [WHY]" % n)
            out.append((words[0], words[1], n))
    return out


def resolve(name):
    """The path of program name, or None."""
    p = shutil.which(name)
    if p:
        return p
    for d in PG_BINDIRS + ["/usr/sbin", "/sbin"]:
        c = os.path.join(d, name)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def debian_path(name):
    """Where a Debian package would put program name, when it is there;
    else wherever PATH finds it (a program installed by hand, which no
    package check can vouch for)."""
    for d in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] + PG_BINDIRS:
        c = os.path.join(d, name)
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return resolve(name)


def perl_module_ok(module):
    r = subprocess.run(["perl", "-M" + module, "-e", "1"], capture_output=True)
    return r.returncode == 0


def python_module_ok(module):
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        return False
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import " + module], capture_output=True)
    return r.returncode == 0


# ---- 1. what t/tools lists is installed ----
try:
    tools = read_tools()
except (OSError, ValueError) as e:
    t.ok(False, "t/tools is readable: %s" % e)
    t.done()
t.ok(len(tools) > 0, "t/tools lists the programs the tests run")
missing = []
for prog, pkg, _ in tools:
    if prog.startswith("perl:"):
        here = resolve("perl") is not None and perl_module_ok(prog[5:])
        what = "the Perl module %s" % prog[5:]
    elif prog.startswith("python3:"):
        here = python_module_ok(prog[8:])
        what = "the Python module %s (for %s)" % (prog[8:], DEBIAN_PYTHON)
    else:
        here = resolve(prog) is not None
        what = "the program %s" % prog
    if not here:
        missing.append(pkg)
        complain("%s is missing: install the Debian package %s" % (what, pkg))
    t.ok(here, "%s is installed (Debian package %s)" % (what, pkg))
if missing:
    complain("as root: apt-get install --no-install-recommends %s   (or: contrib/quickstart build)"
             % " ".join(sorted(set(missing))))

# ---- 2. quickstart installs them ----
r = subprocess.run(["sh", os.path.join(SRCDIR, "contrib", "quickstart"), "packages"],
                   capture_output=True, text=True)
t.is_(r.returncode, 0, "contrib/quickstart packages lists its packages")
qs = set(r.stdout.split())
for pkg in sorted({p for _, p, _ in tools}):
    if not t.ok(pkg in qs, "contrib/quickstart installs %s" % pkg):
        complain("contrib/quickstart does not install %s, which t/tools names" % pkg)

# ---- 3. every program the tests run is listed ----
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*$")
RUNNERS = re.compile(r"(run|Popen|call|check_output|system|exec\w*|spawn\w*|which|join|exists|access|_bin)$")
SH_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for",
               "case", "esac", "in", "!", "{", "}", "exec", "command", "time", "[", "[["}
found = {}  # name -> set of files


def add(name, where):
    if name and NAME.match(name):
        found.setdefault(name, set()).add(where)


def call_name(f):
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


def scan_python(text, rel):
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.List) and node.elts and isinstance(node.elts[0], ast.Constant) \
                and isinstance(node.elts[0].value, str):
            add(node.elts[0].value, rel)
        if isinstance(node, ast.Call) and RUNNERS.search(call_name(node.func)):
            for a in node.args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.strip():
                    add(a.value.split()[0], rel)


def scan_shell(text, rel):
    functions = set(re.findall(r"^\s*([A-Za-z_]\w*)\s*\(\)", text, re.M))
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", line)
        for m in re.finditer(r"\$\{?\w+\}?/([A-Za-z][\w.+-]*)", line):
            add(m.group(1), rel)
        for seg in re.split(r"\|\||&&|[|;`()]|\$\(", line):
            words = seg.split()
            while words and (words[0] in SH_KEYWORDS or re.match(r"^\w+=", words[0])):
                words = words[1:]
            if words:
                w = words[0].strip("\"'").rsplit("/", 1)[-1]
                if w not in functions:
                    add(w, rel)


def scan_c(text, rel):
    if not re.search(r"\b(system|popen|exec[lv]p?e?)\s*\(", text):
        return
    for lit in re.findall(r'(?:system|popen|exec[lv]p?e?|printf)\s*\((?:[^;"]*?,)?\s*"((?:[^"\\\n]|\\.)*)"', text):
        if lit.strip():
            add(lit.split()[0], rel)


for root, dirs, files in os.walk(os.path.join(SRCDIR, "t")):
    dirs[:] = [d for d in dirs if d not in ("mime", "corpus", "__pycache__")]
    for f in files:
        path = os.path.join(root, f)
        rel = os.path.relpath(path, SRCDIR)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        first = text.split("\n", 1)[0]
        if first.startswith("#!"):
            interp = first[2:].split()
            if interp:
                add((interp[1] if interp[0].endswith("/env") and len(interp) > 1 else interp[0])
                    .rsplit("/", 1)[-1], rel)
        if f.endswith(".py") or (first.startswith("#!") and "python" in first):
            try:
                scan_python(text, rel)
            except SyntaxError as e:
                t.ok(False, "%s parses as Python: %s" % (rel, e))
        elif first.startswith("#!") and re.search(r"\b(ba|da)?sh\b", first):
            scan_shell(text, rel)
        elif f.endswith(".c"):
            scan_c(text, rel)

# Programs the build makes (gannet, test helpers) are not Debian's.
built = set()
for root, dirs, files in os.walk(BUILDDIR):
    built.update(files)


def owner(path):
    """The Debian package that installed path, or None."""
    cands = [os.path.realpath(path), path]
    cands += [re.sub(r"^/usr", "", c) for c in cands] + ["/usr" + c for c in cands if not c.startswith("/usr")]
    for c in cands:
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if r.returncode == 0 and not line.startswith("diversion") and ": " in line:
                return line.split(": ", 1)[0].split(",")[0].split(":")[0].strip()
    return None


def field(pkg, name):
    r = subprocess.run(["dpkg-query", "-W", "-f=${%s}" % name, pkg], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def installs(listed, pkg, depth=4):
    """Whether installing listed brings pkg (itself, or through Depends)."""
    seen, todo = set(), [listed]
    for _ in range(depth):
        nxt = []
        for p in todo:
            if p == pkg:
                return True
            if p in seen:
                continue
            seen.add(p)
            deps = field(p, "Depends") + "," + field(p, "Pre-Depends")
            for alt in re.split(r"[,|]", deps):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name:
                    nxt.append(name)
        todo = nxt
    return pkg in todo


listed = {prog: pkg for prog, pkg, _ in tools}
have_dpkg = shutil.which("dpkg") is not None
t.ok(have_dpkg, "dpkg is there to tell which package a program comes from")
used = set()
for name in sorted(found):
    if resolve(name) is None or name in built:
        continue
    path = debian_path(name)
    pkg = owner(path) if have_dpkg else None
    where = ", ".join(sorted(found[name])[:3])
    if name in listed:
        used.add(name)
        ok = pkg is not None and installs(listed[name], pkg)
        if not t.ok(ok, "%s (run by %s) comes with %s, as t/tools says" % (name, where, listed[name])):
            complain("t/tools says %s comes with %s, but %s is in the package %s"
                     % (name, listed[name], path, pkg))
        continue
    if pkg is not None and field(pkg, "Essential") == "yes":
        continue
    t.ok(False, "%s, run by %s, is listed in t/tools" % (name, where))
    complain("%s runs %s (%s, Debian package %s), which t/tools does not list: add \"%s %s\" there"
             % (where, name, path, pkg or "unknown", name, pkg or "PACKAGE"))

for prog, pkg, n in tools:
    if prog.startswith("perl:") or prog.startswith("python3:"):
        continue
    if not t.ok(prog in used or resolve(prog) is None,
                "t/tools:%d: some test runs %s" % (n, prog)):
        complain("t/tools:%d lists %s, which no test under t/ runs: remove the line" % (n, prog))
t.done()
