#!/usr/bin/env python3
"""
t/integration/305-dkim-verify.t: `gannet dkim verify` on a corpus of
messages signed by independent signers, its results checked against
python3-dkim's dkim.verify on the same inputs.

t/lib/dkimcorpus.py signs with Debian's python3-dkim (RSA 1024 and 2048,
Ed25519; simple and relaxed in every combination; l=; several
signatures) and breaks some (body or header changed, b= cut inside and
outside base64, a wrong bh=, expired x=, x= before t=, i= outside d=, h=
without From, rsa-sha1, a 512-bit RSA key, keys revoked, cut, missing or
of another type); opendkim-testmsg (opendkim-tools) signs one more, with
rsa-sha1, its only algorithm.  The keys are answered from dns.local_data
(every other name is NXDOMAIN; nothing goes to the network).

Where gannet and python3-dkim disagree, it is on purpose, and checked
here so that a change on either side shows:
  - rsa-sha1: python3-dkim passes it; RFC 8301 3.1 says never (policy);
  - h= without From: python3-dkim passes it; RFC 6376 6.1.1 says PERMFAIL;
  - x= before t=: python3-dkim's check of it is unreachable code (it
    passes); RFC 6376 3.5 says x= MUST be after t= (permerror);
  - beyond dkim.max_signatures (5), gannet does not evaluate (neutral),
    python3-dkim verifies every one.
A 512-bit key fails in both (python3-dkim: minkey 1024; gannet: policy,
RFC 8301 3.2).  Then: a message on stdin and in a file, without
signatures, usage errors, dkim.max_signatures, and DNS failures (a
resolver that never answers) as temperror, with the keys of three
signatures looked up in parallel.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")
d = gt.tmpdir()
corpus = os.path.join(d, "corpus")
USER = 'user = "%s";\n' % gt.RUN_USER if gt.IS_ROOT else ""

r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimcorpus.py"), corpus],
                   capture_output=True, text=True, timeout=300)
if not t.is_(r.returncode, 0, "python3-dkim signs the corpus"):
    t.diag(r.stderr)
    t.done()
recfile = os.path.join(corpus, "records.json")
with open(recfile) as f:
    records = json.load(f)

# ---- opendkim-testmsg signs one (rsa-sha1, relaxed/simple) ----
# -C: its signature field ends in CRLF.  Without it, opendkim-testmsg
# 2.11.0~beta2 writes the tail of b= twice (a stale buffer), and every
# verifier refuses the signature.
key = os.path.join(d, "od.pem")
subprocess.run(["openssl", "genrsa", "-traditional", "-out", key, "2048"], check=True,
               capture_output=True)
pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                     capture_output=True).stdout
import base64  # noqa: E402
records["od._domainkey.example.org."] = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()
with open(recfile, "w") as f:
    json.dump(records, f)
OD_MESSAGE = (b"From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\nSubject: opendkim\n"
              b"Date: Sat, 05 Dec 2026 20:00:00 +0000\nMessage-ID: <od-1@example.org>\n\nSigned by opendkim.\n")
r = subprocess.run(["opendkim-testmsg", "-C", "-d", "example.org", "-s", "od", "-k", key],
                   input=OD_MESSAGE, capture_output=True, timeout=60)
t.is_(r.returncode, 0, "opendkim-testmsg signs a message")
od_signed = r.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
t.like(od_signed.decode(errors="replace"), "a=rsa-sha1;", "with rsa-sha1")
with open(os.path.join(corpus, "opendkim-rsa-sha1.eml"), "wb") as f:
    f.write(od_signed)


def write_conf(name, dns, extra=""):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(USER + "dns = {\n" + dns + "\n};\n" + extra)
    return path


def local_data(recs):
    lines = []
    for name, rec in sorted(recs.items()):
        parts = [rec[i:i + 255] for i in range(0, len(rec), 255)] or [""]
        rr = "%s 300 IN TXT %s" % (name, " ".join('\\"%s\\"' % p for p in parts))
        lines.append('    "%s"' % rr)
    return "  trust_anchor = \"\";\n  local_data = [\n" + ",\n".join(lines) + "\n  ];"


conf = write_conf("gannet.conf", local_data(records))
LINE = re.compile(r"^(\d+) (\S+) d=(\S+) s=(\S+) a=(\S+) bits=(\d+)(.*?) header\.b=(\S+?)(?:: (.*))?$")


def verify(path, config=None, timeout=60):
    """`gannet dkim verify` with the message on stdin: (exit code, [(result,
    d, s, a, bits, extras, reason)], stdout, stderr)."""
    with open(path, "rb") as f:
        r = subprocess.run([gt.GANNET, "-c", config or conf, "dkim", "verify"], stdin=f,
                           capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    sigs = []
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            sigs.append((m.group(2), m.group(3), m.group(4), m.group(5), int(m.group(6)),
                         m.group(7).strip(), m.group(9)))
    return r.returncode, sigs, out, r.stderr.decode(errors="replace")


def python_verdicts(path):
    r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), path, recfile],
                       capture_output=True, text=True, timeout=60)
    return [line.split()[1] for line in r.stdout.splitlines()]


# name: [(result, algorithm, bits, extras, reason)] per signature, from the
# top; then python3-dkim's verdicts when they differ from "pass exactly
# where gannet passes".
P, F = "pass", "fail"
CASES = {
    "rsa2048-relaxed-relaxed": [(P, "rsa-sha256", 2048, "", None)],
    "rsa2048-simple-simple": [(P, "rsa-sha256", 2048, "", None)],
    "rsa2048-simple-relaxed": [(P, "rsa-sha256", 2048, "", None)],
    "rsa1024-relaxed-simple": [(P, "rsa-sha256", 1024, "", None)],
    "ed25519-relaxed-relaxed": [(P, "ed25519-sha256", 256, "", None)],
    "ed25519-simple-simple": [(P, "ed25519-sha256", 256, "", None)],
    "ed25519-relaxed-simple": [(P, "ed25519-sha256", 256, "", None)],
    "multiple": [(P, "rsa-sha256", 2048, "", None), (P, "ed25519-sha256", 256, "", None),
                 (P, "rsa-sha256", 1024, "", None)],
    "length-whole": [(P, "rsa-sha256", 2048, "l=78", None)],
    "length-appended": [(P, "rsa-sha256", 2048, "l=78 body-truncated", None)],
    "relaxed-whitespace": [(P, "ed25519-sha256", 256, "", None)],
    "simple-whitespace": [(F, "ed25519-sha256", 256, "", "body hash did not verify")],
    "body-changed": [(F, "rsa-sha256", 2048, "", "body hash did not verify")],
    "ed25519-body-changed": [(F, "ed25519-sha256", 256, "", "body hash did not verify")],
    "header-changed": [(F, "rsa-sha256", 2048, "", "signature did not verify")],
    "b-truncated-base64": [("permerror", "rsa-sha256", 0, "", "b= is not base64")],
    "b-truncated-signature": [(F, "rsa-sha256", 2048, "", "signature did not verify")],
    "wrong-bh": [(F, "rsa-sha256", 2048, "", "body hash did not verify")],
    "expired": [("policy", "rsa-sha256", 0, "", "signature expired (x= is past)")],
    "not-yet-expired": [(P, "ed25519-sha256", 256, "", None)],
    "x-before-t": [("permerror", "ed25519-sha256", 0, "", "x= is before t=")],
    "i-outside-d": [("permerror", "ed25519-sha256", 0, "i=alice@example.com", "i= is not within d=")],
    "i-subdomain": [(P, "ed25519-sha256", 256, "i=alice@mail.example.org", None)],
    "from-not-signed": [("permerror", "ed25519-sha256", 0, "", "From is not signed (h= lacks it)")],
    "weak-rsa512": [("policy", "rsa-sha256", 512, "", "RSA key of 512 bits, under 1024 (RFC 8301)")],
    "rsa-sha1": [("policy", "rsa-sha1", 0, "", "rsa-sha1 is not accepted (RFC 8301)")],
    "opendkim-rsa-sha1": [("policy", "rsa-sha1", 0, "", "rsa-sha1 is not accepted (RFC 8301)")],
    "key-revoked": [(F, "rsa-sha256", 0, "", "key revoked (empty p=)")],
    "key-p-truncated": [("permerror", "rsa-sha256", 0, "", "key record: p= is not base64")],
    "key-missing": [("permerror", "rsa-sha256", 0, "",
                     "no key for signature at rsa2048._domainkey.nokey.example: NXDOMAIN")],
    "key-type-mismatch": [("permerror", "ed25519-sha256", 0, "",
                           "key type k=rsa does not fit a=ed25519-sha256")],
    "key-testing": [(P, "ed25519-sha256", 256, "key-testing", None)],
    "seven-signatures": [(P, "ed25519-sha256", 256, "", None)] * 5 +
                        [("neutral", "ed25519-sha256", 0, "", "not evaluated: more than 5 signatures")] * 2,
}
# python3-dkim's verdicts where they differ on purpose (see the top).
PYTHON_DIFFERS = {
    "rsa-sha1": ["pass"],
    "opendkim-rsa-sha1": ["pass"],
    "from-not-signed": ["pass"],
    "x-before-t": ["pass"],
    "seven-signatures": ["pass"] * 7,
}
DOMAINS = {"key-revoked": "revoked.example", "key-p-truncated": "cut.example",
           "key-missing": "nokey.example", "key-type-mismatch": "mismatch.example",
           "key-testing": "testing.example"}

files = sorted(f[:-4] for f in os.listdir(corpus) if f.endswith(".eml"))
t.is_(files, sorted(CASES), "the corpus has the cases expected")
agree = 0
for name in sorted(CASES):
    path = os.path.join(corpus, name + ".eml")
    want = CASES[name]
    rc, sigs, out, err = verify(path)
    got = [(s[0], s[3], s[4], s[5], s[6]) for s in sigs]
    if not t.is_(got, want, "%s: %s" % (name, ", ".join(w[0] for w in want))):
        t.diag(out + err)
    dom = DOMAINS.get(name, "example.org")
    t.ok(all(s[1] == dom for s in sigs) and len(sigs) == len(want),
         "%s: each line names d=%s and s=" % (name, dom))
    t.is_(rc, 0 if any(w[0] == P for w in want) else 1,
          "%s: exit %d" % (name, 0 if any(w[0] == P for w in want) else 1))
    py = python_verdicts(path)
    mine = ["pass" if w[0] == P else "fail" for w in want]
    if name in PYTHON_DIFFERS:
        t.is_(py, PYTHON_DIFFERS[name], "%s: python3-dkim differs as documented (%s)" % (name, " ".join(py)))
    else:
        if t.is_(py, mine, "%s: python3-dkim agrees (%s)" % (name, " ".join(py))):
            agree += 1
t.ok(agree >= 25, "python3-dkim agrees on %d cases" % agree)

# ---- how the message comes ----
path = os.path.join(corpus, "multiple.eml")
os.chmod(corpus, 0o755)
os.chmod(path, 0o644)
r = gt.run_gannet(["-c", conf, "dkim", "verify", path])
t.is_((r.returncode, len(r.stdout.splitlines())), (0, 3), "a FILE argument: three lines, exit 0")
t.ok(r.stdout.startswith("1 pass d=example.org s=rsa2048 a=rsa-sha256 bits=2048 header.b="),
     "the first line: result, d=, s=, a=, bits, header.b")
with open(path, "rb") as f:
    lf = f.read().replace(b"\r\n", b"\n")
lfpath = os.path.join(d, "lf.eml")
with open(lfpath, "wb") as f:
    f.write(lf)
os.chmod(lfpath, 0o644)
rc, sigs, out, err = verify(lfpath)
t.is_([s[0] for s in sigs], ["pass", "pass", "pass"], "the same message with LF line ends passes")
nosig = os.path.join(d, "nosig.eml")
with open(nosig, "wb") as f:
    f.write(b"From: a@example.org\r\nSubject: unsigned\r\n\r\nbody\r\n")
rc, sigs, out, err = verify(nosig)
t.is_((rc, out), (1, "none: no DKIM-Signature field\n"), "a message without signatures: none, exit 1")
broken = os.path.join(d, "broken.eml")
with open(broken, "wb") as f:
    f.write(b"DKIM-Signature: v=1\r\nthis is no header field\r\n\r\nbody\r\n")
rc, sigs, out, err = verify(broken)
t.is_(rc, 1, "a header that cannot be read: exit 1")
t.like(out, "permerror: message header has a line that is no header field", "permerror, saying why")
r = gt.run_gannet(["-c", conf, "dkim", "verify", os.path.join(d, "nosuch.eml")])
t.is_(r.returncode, 1, "a missing file: exit 1")
t.like(r.stderr, "nosuch.eml: No such file or directory", "naming it")
r = gt.run_gannet(["-c", conf, "dkim", "verify", "a", "b"])
t.is_(r.returncode, 2, "two files: bad usage")
r = gt.run_gannet(["-c", conf, "dkim", "verify", "--help"])
t.is_(r.returncode, 0, "--help")
t.like(r.stdout, "dkim.max_signatures", "says what it does")

# ---- dkim.max_signatures ----
conf2 = write_conf("max2.conf", local_data(records), "dkim = { max_signatures = 2; };\n")
rc, sigs, out, err = verify(path, conf2)
t.is_([s[0] for s in sigs], ["pass", "pass", "neutral"], "max_signatures 2: the third is not evaluated")
t.like(out, "3 neutral d=example.org s=rsa1024 a=rsa-sha256 bits=0 header.b=", "and says so")
t.like(out, ": not evaluated: more than 2 signatures", "with the reason")
conf0 = write_conf("max0.conf", local_data(records), "dkim = { max_signatures = 0; };\n")
r = gt.run_gannet(["-c", conf0, "dkim", "verify", path])
t.is_(r.returncode, 1, "max_signatures 0 is a config error")
t.like(r.stderr, "max_signatures", "naming the setting")

# ---- DNS failures: a resolver that never answers ----
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
silent = write_conf("silent.conf", '  resolvers = [ "127.0.0.1@%d" ];\n  trust_anchor = "";\n'
                    '  timeout = "2s";' % sock.getsockname()[1])
start = time.monotonic()
rc, sigs, out, err = verify(path, silent)
took = time.monotonic() - start
t.is_([s[0] for s in sigs], ["temperror"] * 3, "no answer: temperror for each signature")
t.like(out, ": key lookup failed: TIMEOUT", "saying why")
t.is_(rc, 1, "exit 1")
t.ok(took < 4.5, "the three keys are asked for in parallel (%.1f s; one timeout is 2 s, three in a row 6 s)" % took)
sock.close()

t.done()
