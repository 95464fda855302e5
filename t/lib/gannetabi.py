"""
t/lib/gannetabi.py: reads the plugin ABI as its sources state it, for the
ABI tests (t/integration/021-abi.t, 023-abi-headers.t).

- parse_headers(DIR): each public header of DIR/gannet/: the functions it
  declares, the structs it defines (members in order), its enums and
  constants (#define NAME value).  A small parser for the shape our headers
  have; anything it does not understand (a nested struct, a bitfield, a
  macro that is neither a constant nor a known non-constant) is an error,
  so nothing can slip past the checks unseen.
- layout_c(DIR): a C program that prints the layout of every struct and
  the value of every constant of those headers (021-abi.t builds it
  against each frozen copy and the current headers and compares).
  `python3 t/lib/gannetabi.py layout DIR` prints it.
- parse_map(PATH): the nodes of core/libgannet.map.
- abi_version(), changelog(), released(): gannet/module.h and
  core/abi/released.
"""
import os
import re
import sys

# Object-like macros that are not constants; each says why it is left out
# of the layout check.  A new macro of another kind must be added here, or
# the parser refuses the header.
NON_CONSTANTS = {
    "GN_EXPORT": "a visibility attribute",
    "GN_MODULE_HEADER": "an initializer made of constants checked on their own",
}

IDENT = r"[A-Za-z_]\w*"


class HeaderError(Exception):
    pass


def strip_comments(text):
    """Comments become a space (newlines kept); string and character
    literals are left alone."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise HeaderError("unterminated comment")
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def preprocess(text):
    """Returns (code without directives, {macro: value}).  Conditionals:
    only `#ifdef __cplusplus` is false (the extern "C" wrapper)."""
    text = strip_comments(text).replace("\\\n", " ")
    code, defines, stack = [], {}, []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            word = re.match(r"\w*", d).group(0)
            if word in ("if", "ifdef", "ifndef"):
                stack.append(not (word == "ifdef" and d.split()[1:2] == ["__cplusplus"]))
            elif word == "else":
                stack[-1] = not stack[-1]
            elif word == "endif":
                stack.pop()
            elif word == "define" and all(stack):
                m = re.match(r"define\s+(" + IDENT + r")(\(?)(.*)$", d)
                if not m:
                    raise HeaderError("unreadable #define: " + s)
                if m.group(2) != "(":	# function-like macros are code
                    defines[m.group(1)] = m.group(3).strip()
            code.append("")
        else:
            code.append(line if all(stack) else "")
    return "\n".join(code), defines


def split_top(text, sep, open_="{(", close="})"):
    """Splits text at sep outside brackets."""
    parts, depth, cur = [], 0, []
    for c in text:
        if c in open_:
            depth += 1
        elif c in close:
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def members(body, where):
    out = []
    for decl in split_top(body, ";", "([", ")]"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        if re.search(r"\b(struct|union|enum)\s*(" + IDENT + r")?\s*\{", decl):
            raise HeaderError("%s: nested struct, union or enum: %s" % (where, decl))
        m = re.search(r"\(\s*\*\s*(" + IDENT + r")\s*\)\s*\(", decl)
        if m:
            out.append(m.group(1))
            continue
        if ":" in decl:
            raise HeaderError("%s: a bitfield has no offset: %s" % (where, decl))
        decl = re.sub(r"\[[^\]]*\]", "", decl)
        for d in split_top(decl, ",", "(", ")"):
            m = re.search(r"(" + IDENT + r")\s*$", d)
            if not m:
                raise HeaderError("%s: unreadable member: %s" % (where, d))
            out.append(m.group(1))
    return out


class Header:
    def __init__(self, name):
        self.name = name
        self.functions = []	# declared functions, in order
        self.structs = {}	# defined structs: name -> [members]
        self.opaque = []	# structs declared without a body
        self.enums = []		# (name or None, [enumerators])
        self.defines = {}	# object-like macros: name -> value
        self.variables = []	# anything else declared (should be none)


def parse_header(path):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        code, defines = preprocess(f.read())
    h = Header(name)
    h.defines = defines
    # extern "C" { ... } is gone with __cplusplus; what is left are
    # declarations ended by ";" at brace depth 0.
    for st in split_top(code, ";"):
        st = " ".join(st.split())
        if not st:
            continue
        m = re.match(r"^(struct|enum)\s+(" + IDENT + r")?\s*\{(.*)\}$", st)
        if m:
            kind, tag, body = m.groups()
            if kind == "struct":
                h.structs[tag] = members(body, "%s: struct %s" % (name, tag))
            else:
                names = []
                for e in body.split(","):
                    e = e.strip()
                    if e:
                        names.append(re.match(IDENT, e).group(0))
                h.enums.append((tag, names))
            continue
        if st.startswith("typedef "):
            continue
        m = re.match(r"^(struct|enum)\s+(" + IDENT + r")$", st)
        if m:
            h.opaque.append(m.group(2))
            continue
        if "(" in st:
            m = re.search(r"(" + IDENT + r")\s*\(", st)
            if m.group(1) == "__attribute__":
                raise HeaderError("%s: unreadable declaration: %s" % (name, st))
            h.functions.append(m.group(1))
            continue
        h.variables.append(st)
    return h


def header_files(incdir):
    d = os.path.join(incdir, "gannet")
    return sorted(f for f in os.listdir(d) if f.endswith(".h"))


def parse_headers(incdir):
    return {f: parse_header(os.path.join(incdir, "gannet", f)) for f in header_files(incdir)}


CONST_TOKEN = re.compile(r"\s+|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|'(?:\\.|[^'\\])'|"
                         r"(" + IDENT + r")|<<|>>|[()+\-*/%|&^~!]")


def constant_kind(name, value, all_defines):
    """'int', 'string', or None (left out: empty, or in NON_CONSTANTS)."""
    if value == "" or name in NON_CONSTANTS:
        return None
    if re.match(r'^"(?:\\.|[^"\\])*"$', value):
        return "string"
    pos = 0
    while pos < len(value):
        m = CONST_TOKEN.match(value, pos)
        if not m:
            break
        if m.group(1) and m.group(1) not in all_defines:
            break
        pos = m.end()
    if pos == len(value):
        return "int"
    raise HeaderError("#define %s %s: neither a constant nor in NON_CONSTANTS of %s"
                      % (name, value, __file__))


def layout_c(incdir):
    """The C program printing the layout and constants of incdir's headers:
         member STRUCT.MEMBER OFFSET SIZE
         sizeof STRUCT SIZE       alignof STRUCT ALIGN
         sizeof enum.NAME SIZE
         const NAME VALUE         string NAME VALUE"""
    headers = parse_headers(incdir)
    all_defines = {}
    for h in headers.values():
        all_defines.update(h.defines)
    out = ["/* Generated by t/lib/gannetabi.py from %s: do not edit. */" % "the public headers",
           "#include <stdalign.h>", "#include <stddef.h>", "#include <stdio.h>"]
    out += ["#include <gannet/%s>" % f for f in headers]
    out += ["", "int main(void)", "{"]
    for f, h in headers.items():
        out.append("\t/* gannet/%s */" % f)
        for s, ms in h.structs.items():
            for m in ms:
                out.append('\tprintf("member %s.%s %%zu %%zu\\n", offsetof(struct %s, %s), '
                           'sizeof(((struct %s *)0)->%s));' % (s, m, s, m, s, m))
            out.append('\tprintf("sizeof %s %%zu\\n", sizeof(struct %s));' % (s, s))
            out.append('\tprintf("alignof %s %%zu\\n", alignof(struct %s));' % (s, s))
        for tag, names in h.enums:
            if tag:
                out.append('\tprintf("sizeof enum.%s %%zu\\n", sizeof(enum %s));' % (tag, tag))
            for e in names:
                out.append('\tprintf("const %s %%lld\\n", (long long)(%s));' % (e, e))
        for name, value in sorted(h.defines.items()):
            kind = constant_kind(name, value, all_defines)
            if kind == "int":
                out.append('\tprintf("const %s %%lld\\n", (long long)(%s));' % (name, name))
            elif kind == "string":
                out.append('\tprintf("string %s %%s\\n", %s);' % (name, name))
    out += ["\treturn 0;", "}", ""]
    return "\n".join(out)


def parse_map(path):
    """[(node, parent or None, {section: [names]})] in file order."""
    with open(path) as f:
        text = strip_comments(f.read())
    nodes = []
    for m in re.finditer(r"([\w.]+)\s*\{(.*?)\}\s*([\w.]*)\s*;", text, re.S):
        sections, cur = {}, None
        for item in re.split(r";|\n", m.group(2)):
            item = item.strip()
            sm = re.match(r"^(global|local)\s*:\s*(.*)$", item)
            if sm:
                cur = sm.group(1)
                sections.setdefault(cur, [])
                item = sm.group(2).strip()
            if item:
                sections.setdefault(cur, []).append(item)
        nodes.append((m.group(1), m.group(3) or None, sections))
    return nodes


def abi_version(module_h):
    with open(module_h) as f:
        text = f.read()
    major = int(re.search(r"^#define GN_ABI_MAJOR (\d+)", text, re.M).group(1))
    minor = int(re.search(r"^#define GN_ABI_MINOR (\d+)", text, re.M).group(1))
    return major, minor


def changelog(module_h):
    """{(major, minor): text} from module.h's "ABI changelog" comment."""
    with open(module_h) as f:
        text = f.read()
    m = re.search(r"ABI changelog[^\n]*\n((?:\s*\*[^\n]*\n)+)", text)
    out = {}
    for line in (m.group(1).splitlines() if m else []):
        lm = re.match(r"^\s*\*\s+(\d+)\.(\d+)\s+(\S.*)$", line)
        if lm:
            out[(int(lm.group(1)), int(lm.group(2)))] = lm.group(3)
    return out


def released(path):
    """(major, minor) of core/abi/released, or None for "none"."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                if line == "none":
                    return None
                m = re.match(r"^(\d+)\.(\d+)$", line)
                if not m:
                    raise HeaderError("%s: not a version: %s" % (path, line))
                return int(m.group(1)), int(m.group(2))
    raise HeaderError("%s: empty" % path)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "layout":
        sys.stdout.write(layout_c(sys.argv[2]))
    else:
        sys.exit("usage: gannetabi.py layout INCLUDEDIR")
