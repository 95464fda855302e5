#!/usr/bin/env python3
"""
t/integration/070-mime-python.t: the MIME parser against Python's email
package, over several hundred generated messages.

Messages are generated deterministically (random.Random(SEED)): nested
multipart/mixed, alternative, related and digest, message/rfc822 inside,
attachments whose names are written the ways Outlook, Apple Mail,
Thunderbird and Gmail write them (RFC 2231 with charsets and
continuations, RFC 2047 words inside quotes, raw UTF-8, ISO-8859-1),
several charsets, 7bit/8bit/base64/quoted-printable, CRLF or LF line
endings.  Each message is parsed by t/unit/mime_dump (fed in chunks of a
random size, so the streaming parser meets every kind of chunk boundary)
and by email.parser.BytesParser(policy=email.policy.default); per part
(in pre-order) the tree shape, content type, disposition, filename and
decoded size must agree.

A disagreement fails the test unless KNOWN below names it with the reason
why Gannet's answer is the right one.  No database is needed.
"""
import base64
import email
import email.parser
import email.policy
import json
import os
import quopri
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import BUILDDIR, SRCDIR, Tap  # noqa: E402

SEED = 20240607
COUNT = 400
MIME_DUMP = os.path.join(BUILDDIR, "t", "unit", "mime_dump")

# Disagreements that are Gannet being right.  Each entry: (what, reason);
# checked by name in compare().
KNOWN = {
    # RFC 2231 7 says a reader that understands RFC 2231 uses the
    # filename*= form; Python takes whichever comes first.
    "rfc2231-beats-plain": "both filename= and filename*= are present: RFC 2231 wins",
}

# The hand-made corpus (t/mime) where Gannet and Python differ on purpose:
# file -> (the exact disagreements, why Gannet is right).
KNOWN_CORPUS = {
    "boundary-never-appears.eml": (
        ["part 0 type: gannet 'text/plain', python 'multipart/alternative'"],
        "a multipart whose boundary never appears has no parts; Python keeps the type "
        "with a text payload, which IMAP BODYSTRUCTURE cannot express (a multipart needs "
        "at least one part); Gannet shows it as text/plain and records the problem"),
    "no-boundary-parameter.eml": (
        ["part 0 type: gannet 'text/plain', python 'multipart/mixed'"],
        "same: without a boundary there are no parts (RFC 2046 5.1.1 requires the parameter)"),
    "cr-before-crlf.eml": (
        ["part count: gannet 3, python 4"],
        "RFC 5322 2.3: CR and LF occur only together; Python splits lines at a bare CR "
        "too and so reads \"--d<CR><CR><LF>\" as a boundary, which RFC 2046 5.1.1 "
        "(boundary, transport padding, CRLF) does not allow"),
    "decoded-sizes.eml": (
        ["part 3 decoded_size: gannet 26, python 29"],
        "RFC 2045 6.7 (3): trailing white space on a quoted-printable line must be deleted "
        "when decoding; binascii.a2b_qp keeps it"),
}

NAMES = [
    "report.pdf", "été.pdf", "Résumé – final.docx", "naïve café.txt",
    "данные.xlsx", "报告.pdf", "日本語のファイル名.txt", "a b c.png",
    "Straße 2024.zip", "emoji 😀.png", "long name " + "x" * 80 + ".bin",
    "Übersicht (Entwurf).odt", "ø.tar.gz",
]
LATIN1_NAMES = ["été.pdf", "naïve café.txt", "Straße 2024.zip", "Übersicht.odt", "ø.tar.gz"]

TEXTS = {
    "us-ascii": "Hello world.\nThis is a plain line.\n",
    "utf-8": "Grüße aus Köln, 東京 and 😀.\nSecond line — with a dash.\n",
    "iso-8859-1": "Café crème, déjà vu, naïve.\n",
    "windows-1252": "Smart “quotes” and €uro.\n",
}


def q_word(s, charset):
    b = s.encode(charset)
    out = ""
    for c in b:
        ch = chr(c)
        if ch.isalnum() and c < 128:
            out += ch
        elif ch == " ":
            out += "_"
        else:
            out += "=%02X" % c
    return "=?%s?Q?%s?=" % (charset.upper(), out)


def b_word(s, charset):
    return "=?%s?B?%s?=" % (charset, base64.b64encode(s.encode(charset)).decode())


def pct(b):
    return "".join(chr(c) if (chr(c).isalnum() and c < 128) or chr(c) in "-._~" else "%%%02X" % c
                   for c in b)


def name_params(r, name, param):
    """How a mailer writes a file name parameter; returns (text, style)."""
    ascii_ok = all(ord(c) < 128 for c in name)
    styles = ["quoted", "rfc2231", "rfc2231-cont", "rfc2047-b", "rfc2047-q", "raw-utf8"]
    if name in LATIN1_NAMES:
        styles += ["rfc2047-latin1", "rfc2231-latin1"]
    style = r.choice(styles)
    if ascii_ok and style in ("raw-utf8",):
        style = "quoted"
    if not ascii_ok and style == "quoted":
        style = "raw-utf8"
    if style == "quoted":
        return '%s="%s"' % (param, name), style
    if style == "raw-utf8":  # Apple Mail, Gmail with SMTPUTF8
        return '%s="%s"' % (param, name), style
    if style == "rfc2231":
        return "%s*=utf-8''%s" % (param, pct(name.encode("utf-8"))), style
    if style == "rfc2231-latin1":
        return "%s*=iso-8859-1'fr'%s" % (param, pct(name.encode("iso-8859-1"))), style
    if style == "rfc2231-cont":  # Thunderbird
        enc = pct(name.encode("utf-8"))
        pieces = []
        i = 0
        while i < len(enc):
            n = r.randint(8, 30)
            # never split a %XX escape
            while i + n < len(enc) and "%" in enc[i + n - 2:i + n]:
                n += 1
            pieces.append(enc[i:i + n])
            i += n
        out = []
        for k, p in enumerate(pieces):
            if k == 0:
                out.append("%s*0*=UTF-8''%s" % (param, p))
            else:
                out.append("%s*%d*=%s" % (param, k, p))
        return ";\r\n\t".join(out), style
    if style == "rfc2047-b":  # Outlook, Gmail
        return '%s="%s"' % (param, b_word(name, "UTF-8")), style
    if style == "rfc2047-q":
        return '%s="%s"' % (param, q_word(name, "utf-8")), style
    if style == "rfc2047-latin1":
        return '%s="%s"' % (param, q_word(name, "iso-8859-1")), style
    raise AssertionError(style)


def qp_encode(data):
    return quopri.encodestring(data).replace(b"\r\n", b"\n")


def body_lines(data):
    return data.replace(b"\r\n", b"\n").split(b"\n")


class Gen:
    def __init__(self, r):
        self.r = r
        self.nb = 0

    def boundary(self):
        self.nb += 1
        r = self.r
        return r.choice(["----=_Part_%d_%d.%d" % (self.nb, r.randint(1, 10**6), r.randint(1, 10**9)),
                         "b%d%x" % (self.nb, r.getrandbits(48)),
                         "Apple-Mail=_%08X-%d" % (r.getrandbits(32), self.nb),
                         "000000000000%012x%d" % (r.getrandbits(48), self.nb)])

    def leaf(self):
        """Returns (header lines, body bytes)."""
        r = self.r
        kind = r.choice(["text", "text", "html", "attachment", "attachment", "image"])
        hdr = []
        if kind in ("text", "html"):
            cs = r.choice(list(TEXTS))
            text = TEXTS[cs] * r.randint(1, 5)
            data = text.encode(cs)
            sub = "plain" if kind == "text" else "html"
            if kind == "html":
                data = b"<p>" + data + b"</p>\n"
            ct = "text/%s; charset=%s" % (sub, r.choice([cs, cs.upper()]))
            if r.random() < 0.2:
                ct += '; format=flowed'
            hdr.append("Content-Type: " + ct)
            if r.random() < 0.2:
                hdr.append("Content-Disposition: inline")
        else:
            ctype = r.choice(["application/pdf", "application/octet-stream", "image/png",
                              "application/vnd.openxmlformats-officedocument.wordprocessingml.document"])
            if kind == "image":
                ctype = "image/jpeg"
            name = r.choice(NAMES)
            data = bytes(r.getrandbits(8) for _ in range(r.randint(0, 3000)))
            where = r.choice(["disposition", "disposition", "both", "type"])
            ct = "Content-Type: " + ctype
            if where in ("both", "type"):
                text, _ = name_params(r, name, "name")
                ct += ";\r\n\t" + text
            hdr.append(ct)
            if where in ("both", "disposition"):
                disp = r.choice(["attachment", "attachment", "inline", "Attachment"])
                text, _ = name_params(r, name, "filename")
                hdr.append("Content-Disposition: %s;\r\n\t%s" % (disp, text))
            if r.random() < 0.3:
                hdr.append("Content-ID: <part%d@example.com>" % r.randint(1, 10**6))
        # Transfer encoding.
        eightbit = any(b >= 128 for b in data) or b"\0" in data
        binary = kind not in ("text", "html")
        choices = ["base64", "quoted-printable"]
        if not eightbit:
            choices += ["7bit", None]
        elif not binary:
            choices += ["8bit"]
        cte = r.choice(choices)
        if cte is not None:
            hdr.append("Content-Transfer-Encoding: " + r.choice([cte, cte.upper()]))
        if cte == "base64":
            body = base64.encodebytes(data).replace(b"\n", b"\r\n")
        elif cte == "quoted-printable":
            body = qp_encode(data).replace(b"\n", b"\r\n")
        else:
            body = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return hdr, body

    def part(self, depth):
        r = self.r
        x = r.random()
        if depth < 4 and x < 0.3:
            return self.multipart(depth)
        if depth < 4 and x < 0.38:
            return self.rfc822(depth)
        return self.leaf()

    def multipart(self, depth):
        r = self.r
        sub = r.choice(["mixed", "mixed", "alternative", "related", "digest"])
        b = self.boundary()
        quoted = r.random() < 0.8 or any(c in b for c in "=/")
        hdr = ['Content-Type: multipart/%s;\r\n\tboundary=%s' % (sub, '"%s"' % b if quoted else b)]
        out = []
        if r.random() < 0.3:
            out.append(b"This is a multi-part message in MIME format.\r\n")
        for _ in range(r.randint(1, 4)):
            if sub == "digest" and r.random() < 0.6:
                # the default type in a digest is message/rfc822
                h, body = self.message(depth + 1)
                ph = []
            else:
                ph, body = self.part(depth + 1)
                h = None
            out.append(b"--" + b.encode() + b"\r\n")
            if h is not None:
                out.append(b"\r\n" + h + body + b"\r\n")
            else:
                out.append(("\r\n".join(ph) + "\r\n\r\n").encode("utf-8") + body + b"\r\n")
        out.append(b"--" + b.encode() + b"--\r\n")
        if r.random() < 0.3:
            out.append(b"epilogue\r\n")
        return hdr, b"".join(out)

    def rfc822(self, depth):
        h, body = self.message(depth + 1)
        return ["Content-Type: message/rfc822"], h + body

    def message(self, depth):
        """A whole message: (header bytes incl. blank line, body)."""
        r = self.r
        hdr = [
            "From: %s <sender%d@example.com>" % (r.choice(["Ann", b_word("Zoë", "UTF-8")]), r.randint(1, 99)),
            "To: bob@example.org",
            "Subject: " + r.choice(["hello", q_word("déjà vu", "iso-8859-1"), b_word("日本語", "UTF-8")]),
            "Date: Mon, %d Jan 2024 10:%02d:00 +0100" % (r.randint(1, 28), r.randint(0, 59)),
            "Message-ID: <%d@example.com>" % r.getrandbits(40),
            "MIME-Version: 1.0",
        ]
        ph, body = self.part(depth) if depth < 5 else self.leaf()
        return ("\r\n".join(hdr + ph) + "\r\n\r\n").encode("utf-8"), body


def py_parts(msg):
    """Pre-order list of (parent, type, disposition, filename, decoded size)."""
    out = []

    def walk(part, parent):
        idx = len(out)
        entry = {"parent": parent, "type": part.get_content_type(),
                 "disposition": part.get_content_disposition(), "filename": part.get_filename()}
        out.append(entry)
        if part.is_multipart():
            entry["decoded_size"] = None
            for c in part.get_payload():
                walk(c, idx)
        else:
            entry["decoded_size"] = len(part.get_payload(decode=True) or b"")

    walk(msg, -1)
    return out


def gannet_parts(data, chunk):
    with tempfile.NamedTemporaryFile(suffix=".eml") as f:
        f.write(data)
        f.flush()
        res = subprocess.run([MIME_DUMP, "-c", str(chunk), f.name], capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError("mime_dump exited %d: %s" % (res.returncode, res.stderr.decode(errors="replace")))
    j = json.loads(res.stdout)
    out = []
    for p in j["parts"]:
        multi = p["type"] == "multipart" or (p["type"] == "message" and p["subtype"] in ("rfc822", "global"))
        out.append({"parent": p["parent"], "type": p["type"] + "/" + p["subtype"],
                    "disposition": p.get("disposition"), "filename": p.get("filename"),
                    "decoded_size": None if multi else p["decoded_size"]})
    return out, j


def compare(g, p):
    """Disagreements between Gannet (g) and Python (p) as strings."""
    if len(g) != len(p):
        return ["part count: gannet %d, python %d" % (len(g), len(p))]
    diffs = []
    for i, (a, b) in enumerate(zip(g, p)):
        for k in ("parent", "type", "disposition", "filename", "decoded_size"):
            if a[k] != b[k]:
                diffs.append("part %d %s: gannet %r, python %r" % (i, k, a[k], b[k]))
    return diffs


def main():
    t = Tap()
    if not os.access(MIME_DUMP, os.X_OK):
        t.ok(False, "t/unit/mime_dump is built (make check builds it)")
        t.done()
    r = random.Random(SEED)
    gen = Gen(r)
    disagreements = 0
    parts_total = 0
    names_seen = 0
    for n in range(COUNT):
        h, body = gen.message(0)
        data = h + body
        lf = r.random() < 0.3
        if lf:
            data = data.replace(b"\r\n", b"\n")
        chunk = r.choice([1, 2, 3, 7, 64, 1000, 1 << 20])
        try:
            g, j = gannet_parts(data, chunk)
        except Exception as e:  # noqa: BLE001
            t.ok(False, "message %d: mime_dump parses it (%s)" % (n, e))
            disagreements += 1
            continue
        p = py_parts(email.parser.BytesParser(policy=email.policy.default).parsebytes(data))
        parts_total += len(g)
        names_seen += sum(1 for x in g if x["filename"])
        diffs = compare(g, p)
        if diffs or j["problems"]:
            disagreements += 1
            t.ok(False, "message %d (%s, chunk %d): Gannet and Python agree, no problems" %
                 (n, "LF" if lf else "CRLF", chunk))
            for d in diffs[:10]:
                t.diag(d)
            for pr in j["problems"]:
                t.diag("problem: " + pr)
            if os.environ.get("MIME_KEEP"):
                path = os.path.join(os.environ["MIME_KEEP"], "msg%03d.eml" % n)
                with open(path, "wb") as f:
                    f.write(data)
    t.ok(disagreements == 0, "%d generated messages, %d parts: Gannet and Python agree on "
         "every part" % (COUNT, parts_total))
    t.ok(parts_total > 3 * COUNT, "the messages have many parts (%d)" % parts_total)
    t.ok(names_seen > COUNT // 2, "many parts carry file names (%d)" % names_seen)

    # The hand-made corpus: agreement, or exactly the known disagreement.
    corpus = os.path.join(SRCDIR, "t", "mime")
    for name in sorted(f for f in os.listdir(corpus) if f.endswith(".eml")):
        with open(os.path.join(corpus, name), "rb") as f:
            data = f.read()
        g, _ = gannet_parts(data, 4096)
        p = py_parts(email.parser.BytesParser(policy=email.policy.default).parsebytes(data))
        diffs = compare(g, p)
        want, why = KNOWN_CORPUS.get(name, ([], None))
        if not t.ok(diffs == want, "t/mime/%s: %s" % (name, "agrees with Python" if why is None
                                                      else "known: " + why)):
            for d in diffs:
                t.diag(d)

    # The known disagreements, each shown once so the reason stays true.
    m = (b'Content-Type: application/pdf\r\n'
         b'Content-Disposition: attachment; filename="old.pdf";\r\n'
         b"\tfilename*=UTF-8''%C3%A9t%C3%A9.pdf\r\n\r\nx\r\n")
    g, _ = gannet_parts(m, 5)
    p = py_parts(email.parser.BytesParser(policy=email.policy.default).parsebytes(m))
    t.is_(g[0]["filename"], "été.pdf", "known: " + KNOWN["rfc2231-beats-plain"] +
          " (Python says %r)" % p[0]["filename"])
    t.done()


if __name__ == "__main__":
    main()
