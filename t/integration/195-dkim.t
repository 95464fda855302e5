#!/usr/bin/env python3
"""
t/integration/195-dkim.t: DKIM keys in the database and messages signed
with them, checked by independent verifiers.

`gannet config dkim add` makes an RSA (the default) and an Ed25519 key
for a hosted domain and prints the TXT records to publish; list, export,
disable, enable and rm manage them; errors are clear and keep their exit
codes (1 failed, 2 usage).  `gannet dkim sign DOMAIN` signs a message
read from stdin with every enabled key.  Python's dkim (Debian's
python3-dkim, run with Debian's python) verifies each signature with a
dnsfunc that answers the records `add` printed, and fails them once the
body or a signed header is changed.  opendkim-testmsg (opendkim-tools)
verifies too: it asks DNS through /etc/resolv.conf, so it runs in a
network and mount namespace of its own where t/lib/dnstxt.py answers the
same records on 127.0.0.1 (no query leaves the machine).  The private key
never shows in any output.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")

cl = gt.cluster()
db = cl.create_db("dkim")
d = gt.tmpdir()
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db)))

outputs = []


def g(*args, **kw):
    r = gt.run_gannet(["-c", conf] + list(args), **kw)
    outputs.append(r.stdout + r.stderr)
    return r


def sign(domain, message):
    """`gannet dkim sign` as bytes (text mode would hide the CRs)."""
    r = subprocess.run([gt.GANNET, "-c", conf, "dkim", "sign"] + ([domain] if domain else []),
                       input=message.encode(), capture_output=True, timeout=60)
    outputs.append(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
    r.stderr = r.stderr.decode(errors="replace")
    return r


def sql(q):
    return cl.psql(q, db)


def records_of(text):
    """{name: record} from the zone-file lines printed by add/export."""
    recs = {}
    for name, parts in gt.txt_records(text).items():
        recs[name] = "".join(parts)
        t.ok(all(len(p) <= 255 for p in parts), "%s: strings of at most 255 octets" % name)
    return recs


t.is_(g("migrate").returncode, 0, "migrate")
t.is_(g("config", "domain", "add", "example.org").returncode, 0, "a hosted domain")

# ---- keys ----
r = g("config", "dkim", "add", "example.org", "rsa2026")
t.is_(r.returncode, 0, "dkim add: an RSA key by default")
recs = records_of(r.stdout)
t.ok("rsa2026._domainkey.example.org." in recs, "add prints the record's name")
rsa_rec = recs.get("rsa2026._domainkey.example.org.", "")
t.like(rsa_rec, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
       "a 2048-bit RSA key's SubjectPublicKeyInfo")
t.ok(len(rsa_rec) > 255, "the RSA record needs two strings")
r = g("config", "dkim", "add", "EXAMPLE.org", "Ed2026", "ed25519")
t.is_(r.returncode, 0, "dkim add: an Ed25519 key (any spelling of the domain and selector)")
recs.update(records_of(r.stdout))
ed_rec = recs.get("ed2026._domainkey.example.org.", "")
t.ok(re.match(r"^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$", ed_rec) is not None,
     "the Ed25519 record has the 32-octet key (%s)" % ed_rec)

r = g("config", "dkim", "add", "example.org", "rsa2026")
t.is_(r.returncode, 1, "the same selector again fails")
t.like(r.stderr, "selector rsa2026 exists for example.org", "saying so")
r = g("config", "dkim", "add", "nowhere.example", "s1")
t.is_(r.returncode, 1, "a domain that is not hosted fails")
t.like(r.stderr, "unknown domain: nowhere.example", "naming it")
r = g("config", "dkim", "add", "example.org", "bad_sel!")
t.is_(r.returncode, 1, "a bad selector fails")
t.like(r.stderr, 'invalid selector "bad_sel!"', "naming it")
r = g("config", "dkim", "add", "example.org", "s1", "dsa")
t.is_(r.returncode, 2, "an unknown key type is bad usage")
t.like(r.stderr, 'unknown key type "dsa": rsa or ed25519', "naming the choices")
r = g("config", "dkim", "add", "example.org")
t.is_(r.returncode, 2, "add without a selector is bad usage")
t.like(r.stderr, "usage: gannet config dkim add DOMAIN SELECTOR [rsa|ed25519]", "with the usage line")

t.is_(g("config", "domain", "add", "bücher.example").returncode, 0, "a Unicode domain")
r = g("config", "dkim", "add", "bücher.example", "s1", "ed25519")
t.is_(r.returncode, 0, "gets a key")
t.like(r.stdout, "\ns1._domainkey.xn--bcher-kva.example. TXT \"v=DKIM1; k=ed25519; p=",
       "whose record is named with A-labels")
t.is_(g("config", "domain", "rm", "bücher.example").returncode, 0, "the domain is removed")

r = g("config", "dkim", "list")
t.is_(r.returncode, 0, "dkim list")
t.ok(re.match(r"^example\.org ed2026 ed25519-sha256 enabled \d{4}-\d\d-\d\dT[\d:]{8}Z\n"
              r"example\.org rsa2026 rsa-sha256 enabled \d{4}-\d\d-\d\dT[\d:]{8}Z\n$", r.stdout)
     is not None, "lists both, sorted, with algorithm, state and creation time")
r = g("config", "dkim", "export", "example.org", "rsa2026")
t.is_(r.returncode, 0, "dkim export")
t.is_(records_of(r.stdout), {"rsa2026._domainkey.example.org.": rsa_rec}, "prints the same record as add")
r = g("config", "dkim", "export", "example.org", "nosuch")
t.is_(r.returncode, 1, "export of an unknown selector fails")
t.like(r.stderr, "no DKIM selector nosuch for example.org", "saying so")
t.is_(sql("SELECT string_agg(selector || ' ' || algorithm || ' ' || "
          "(private_key LIKE '-----BEGIN PRIVATE KEY-----%')::text, ',' ORDER BY selector) FROM gn_dkim_keys"),
      "ed2026 ed25519-sha256 true,rsa2026 rsa-sha256 true", "the keys are stored as PKCS#8 PEM")

recfile = os.path.join(d, "records.json")
with open(recfile, "w") as f:
    json.dump(recs, f)

# ---- signing ----
MESSAGE = ("From: Alice <alice@example.org>\n"
           "To: Bob <bob@example.net>\n"
           "Subject: signed\n"
           "Date: Sat, 05 Dec 2026 20:00:00 +0000\n"
           "Message-ID: <dkim-test-1@example.org>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=utf-8\n"
           "\n"
           "Hello Bob,\n"
           "\n"
           "this message is signed   twice.\n"
           "\n\n")


def verify_py(signed):
    path = os.path.join(d, "msg.eml")
    with open(path, "wb") as f:
        f.write(signed)
    r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), path, recfile],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        t.diag(r.stderr)
    return r.stdout


r = sign("example.org", MESSAGE)
t.is_(r.returncode, 0, "dkim sign")
signed = r.stdout
t.ok(signed.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org;"),
     "the Ed25519 signature comes first (selectors in order)")
sigs = re.findall(rb"^DKIM-Signature:.*?\r\n(?=\S)", signed, re.M | re.S)
t.is_(len(sigs), 2, "one signature per enabled key")
t.ok(len(sigs) == 2 and b"s=ed2026;" in sigs[0] and b"s=rsa2026;" in sigs[1],
     "one for each selector")
t.ok(b"\r\nFrom: Alice <alice@example.org>\r\nTo:" in signed, "the message follows, with CRLF lines")
t.ok(all(re.search(rb"\bt=\d+;", s) and not re.search(rb"[; ]l=", s) for s in sigs),
     "each has t= and no l=")
t.is_(verify_py(signed), "0 pass\n1 pass\n", "python3-dkim verifies both signatures")

changed = signed.replace(b"signed   twice", b"signed thrice")
t.is_(verify_py(changed), "0 fail\n1 fail\n", "a changed body fails both")
changed = signed.replace(b"Subject: signed", b"Subject: Signed")
t.is_(verify_py(changed), "0 fail\n1 fail\n", "a changed subject fails both")
changed = signed.replace(b"\r\nFrom: Alice", b"\r\nReply-To: mallory@example.com\r\nFrom: Alice")
t.is_(verify_py(changed), "0 fail\n1 fail\n", "an added Reply-To (oversigned) fails both")
changed = signed.replace(b"signed   twice", b"signed twice")
t.is_(verify_py(changed), "0 pass\n1 pass\n", "changed white space passes (relaxed)")
bad = dict(recs)
with open(recfile, "w") as f:
    json.dump({k: re.sub(r"p=.*", "p=", v) for k, v in bad.items()}, f)
t.is_(verify_py(signed), "0 fail\n1 fail\n", "with the keys revoked in DNS both fail")
with open(recfile, "w") as f:
    json.dump(recs, f)

# A body larger than the 64 KiB pieces sign reads, with LF-only lines,
# runs of white space and a CR LF pair across the first 64 KiB boundary
# (where a pipe's read usually ends).
line = "a line of text \t with  white space\n"
big = MESSAGE + line * 3000 + "x" * (65536 - len(MESSAGE) - len(line) * 3000 % 65536 - 1) + "\r\n" + line * 3000
r = sign("example.org", big)
t.is_(r.returncode, 0, "a %d-octet message is signed" % len(big))
t.is_(verify_py(r.stdout), "0 pass\n1 pass\n", "python3-dkim verifies both signatures of it")
t.ok(b"\r\r\n" not in r.stdout, "the CRLF stays one line end, every LF gets one CR")

# opendkim-testmsg, one algorithm at a time.
OPENDKIM = ["opendkim-testmsg"]
NS = ["unshare", "--net", "--mount"] if gt.IS_ROOT else \
    ["unshare", "--user", "--map-root-user", "--net", "--mount"]
for sel, other, name in (("rsa2026", "ed2026", "RSA"), ("ed2026", "rsa2026", "Ed25519")):
    t.is_(g("config", "dkim", "disable", "example.org", other).returncode, 0,
          "disable %s" % other)
    r = sign("example.org", MESSAGE)
    one = r.stdout
    t.is_(one.count(b"DKIM-Signature:"), 1, "%s: signed once (%s disabled)" % (name, other))
    for msg, want, what in ((one, 0, "verifies"),
                            (one.replace(b"signed   twice", b"signed thrice"), None, "fails a changed body")):
        v = subprocess.run(NS + [sys.executable, os.path.join(LIB, "dnstxt.py"), recfile] + OPENDKIM,
                           input=msg, capture_output=True, timeout=60)
        if want == 0:
            t.is_(v.returncode, 0, "opendkim-testmsg: %s %s" % (name, what))
            if v.returncode != 0:
                t.diag(v.stderr.decode(errors="replace"))
        else:
            t.ok(v.returncode != 0 and b"bad signature" in v.stderr.lower(),
                 "opendkim-testmsg: %s %s (%s)" % (name, what, v.stderr.decode(errors="replace").strip()))
    t.is_(g("config", "dkim", "enable", "example.org", other).returncode, 0, "enable %s" % other)

# ---- errors, removal ----
r = sign("example.org", "To: bob@example.net\n\nno From\n")
t.is_(r.returncode, 1, "a message without From is not signed")
t.like(r.stderr, "gannet: cannot sign: message has no From field", "saying why")
r = sign("example.org", "From: a@example.org\n" + "X: y\n" * 1001 + "\nbody\n")
t.is_(r.returncode, 1, "a message with too many header fields is not signed")
t.like(r.stderr, "too many fields", "saying why")
r = sign("nowhere.example", MESSAGE)
t.is_(r.returncode, 1, "signing for a domain without keys fails")
t.like(r.stderr, "no enabled DKIM key for nowhere.example", "saying so")
r = sign(None, MESSAGE)
t.is_(r.returncode, 2, "sign without a domain is bad usage")

t.is_(g("config", "dkim", "rm", "example.org", "rsa2026").returncode, 0, "dkim rm")
r = g("config", "dkim", "rm", "example.org", "rsa2026")
t.is_(r.returncode, 1, "rm again fails")
t.like(r.stderr, "no DKIM selector rsa2026 for example.org", "saying so")
t.is_(g("config", "dkim", "disable", "example.org", "ed2026").returncode, 0, "disable the last key")
r = sign("example.org", MESSAGE)
t.is_(r.returncode, 1, "with every key disabled nothing is signed")
t.like(r.stderr, "no enabled DKIM key for example.org", "saying so")
t.is_(g("config", "domain", "rm", "example.org").returncode, 0, "the domain is removed")
t.is_(sql("SELECT count(*) FROM gn_dkim_keys"), "0", "and its keys with it")

pem_body = re.compile(r"BEGIN PRIVATE KEY|MII[A-Za-z0-9+/]{60}")
t.ok(not any(pem_body.search(o) and "PRIVATE" in o for o in outputs),
     "no output shows a private key")

t.done()
