"""
t/lib/dkimcorpus.py: a corpus of DKIM-signed messages for
t/integration/305-dkim-verify.t, signed by an independent signer:
Python's dkim (Debian's python3-dkim, with python3-nacl for Ed25519 and
python3-cryptography for the keys).

    /usr/bin/python3 t/lib/dkimcorpus.py OUTDIR

Writes OUTDIR/NAME.eml for each case (lines end in CRLF) and
OUTDIR/records.json, {"selector._domainkey.domain.": "v=DKIM1; ..."}, the
TXT records to answer.  The keys are new each run.

Most messages are signed with dkim.sign().  The cases it refuses to make
(x=, a wrong bh=, i= outside d=, h= without From, a far-future t=) are
signed with the same library's own header hash and signature
(DKIM.gen_header), with the tags given: what is signed is still what a
verifier must check.
"""
import base64
import json
import os
import sys
import time

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import HASH_ALGORITHMS, parse_pem_private_key
import nacl.encoding
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
records = {}

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@example.net>\r\n"
           b"Subject: the corpus\r\n"
           b"Date: Sat, 05 Dec 2026 20:00:00 +0000\r\n"
           b"Message-ID: <corpus-1@example.org>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"\r\n"
           b"Hello Bob,\r\n"
           b"\r\n"
           b"this body has   runs of  white space \t \r\n"
           b"and empty lines at its end.\r\n"
           b"\r\n"
           b"\r\n")
HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def rsa_key(bits):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    spki = k.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


def ed_key():
    k = nacl.signing.SigningKey.generate()
    seed = base64.b64encode(bytes(k))
    pub = base64.b64encode(bytes(k.verify_key)).decode()
    return seed, "v=DKIM1; k=ed25519; p=" + pub


def publish(selector, domain, record):
    records["%s._domainkey.%s." % (selector, domain)] = record


keys = {}
for sel, make in (("rsa1024", lambda: rsa_key(1024)), ("rsa2048", lambda: rsa_key(2048)),
                  ("rsa512", lambda: rsa_key(512)), ("ed", ed_key)):
    keys[sel], rec = make()
    publish(sel, "example.org", rec)
ALG = {"rsa1024": b"rsa-sha256", "rsa2048": b"rsa-sha256", "rsa512": b"rsa-sha256",
       "ed": b"ed25519-sha256"}


def sign(msg, sel, canon=(b"relaxed", b"relaxed"), alg=None, domain=b"example.org", **kw):
    return dkim.sign(msg, sel.encode(), domain, keys[sel], canonicalize=canon,
                     signature_algorithm=alg or ALG[sel], include_headers=HEADERS, **kw) + msg


def sign_tags(msg, sel, tags, bh=None, h=None, canon=b"relaxed/relaxed", domain=b"example.org"):
    """Signs with python3-dkim's own header hash and signature
    (DKIM.gen_header), with the tags given in this order after v, a, c, d,
    s and before h, bh, b."""
    alg = ALG[sel]
    d = dkim.DKIM(msg)
    d.signature_algorithm = alg
    d.hasher = HASH_ALGORITHMS[alg]
    if alg == b"ed25519-sha256":
        pk = nacl.signing.SigningKey(keys[sel], encoder=nacl.encoding.Base64Encoder)
    else:
        pk = parse_pem_private_key(keys[sel])
    policy = CanonicalizationPolicy.from_c_value(canon)
    include = h or HEADERS
    body = policy.canonicalize_body(d.body)
    real_bh = base64.b64encode(HASH_ALGORITHMS[alg](body).digest())
    fields = [(b"v", b"1"), (b"a", alg), (b"c", canon), (b"d", domain), (b"s", sel.encode())]
    fields += tags
    fields += [(b"h", b" : ".join(include)), (b"bh", bh or real_bh), (b"b", b"0" * 60)]
    return b"DKIM-Signature: " + d.gen_header(fields, include, policy, b"DKIM-Signature", pk) + msg


def write(name, data):
    with open(os.path.join(out, name + ".eml"), "wb") as f:
        f.write(data)


now = int(time.time())
# ---- good signatures ----
write("rsa2048-relaxed-relaxed", sign(MESSAGE, "rsa2048"))
write("rsa2048-simple-simple", sign(MESSAGE, "rsa2048", (b"simple", b"simple")))
write("rsa2048-simple-relaxed", sign(MESSAGE, "rsa2048", (b"simple", b"relaxed")))
write("rsa1024-relaxed-simple", sign(MESSAGE, "rsa1024", (b"relaxed", b"simple")))
write("ed25519-relaxed-relaxed", sign(MESSAGE, "ed"))
write("ed25519-simple-simple", sign(MESSAGE, "ed", (b"simple", b"simple")))
write("ed25519-relaxed-simple", sign(MESSAGE, "ed", (b"relaxed", b"simple")))
# Three signatures, each over the ones below it.
multi = sign(sign(sign(MESSAGE, "rsa1024"), "ed"), "rsa2048", (b"simple", b"simple"))
write("multiple", multi)
# l=: the whole body when signed; a part once more is appended (what l=
# lets anyone do).
with_l = sign(MESSAGE, "rsa2048", length=True)
write("length-whole", with_l)
write("length-appended", with_l + b"P.S. appended after signing\r\n")
# White space changed: relaxed passes, simple fails.
write("relaxed-whitespace", sign(MESSAGE, "ed").replace(b"has   runs", b"has runs")
      .replace(b"Subject: the corpus", b"Subject:  the   corpus"))
write("simple-whitespace", sign(MESSAGE, "ed", (b"simple", b"simple")).replace(b"has   runs", b"has runs"))

# ---- broken ones ----
good = sign(MESSAGE, "rsa2048")
write("body-changed", good.replace(b"Hello Bob", b"Hello Eve"))
write("header-changed", good.replace(b"Subject: the corpus", b"Subject: the Corpus"))
write("ed25519-body-changed", sign(MESSAGE, "ed").replace(b"Hello Bob", b"Hello Eve"))


def cut_b(msg, n):
    """msg with the last n characters of the first b= value cut."""
    i = msg.index(b"b=", msg.index(b"bh=") + 3)
    j = msg.index(b"\r\n", i)
    while msg[j + 2:j + 3] in (b" ", b"\t"):
        j = msg.index(b"\r\n", j + 2)
    value = msg[i + 2:j]
    squeezed = value.rstrip()
    return msg[:i + 2] + squeezed[:len(squeezed) - n] + msg[j:]


write("b-truncated-base64", cut_b(good, 3))     # not base64 any more
write("b-truncated-signature", cut_b(good, 8))  # base64, but a short signature
write("wrong-bh", sign_tags(MESSAGE, "rsa2048", [(b"t", str(now).encode())],
                            bh=base64.b64encode(b"\x00" * 32)))
write("expired", sign_tags(MESSAGE, "rsa2048", [(b"t", b"1700000000"), (b"x", b"1700003600")]))
write("not-yet-expired", sign_tags(MESSAGE, "ed", [(b"t", str(now).encode()),
                                                    (b"x", str(now + 86400).encode())]))
write("x-before-t", sign_tags(MESSAGE, "ed", [(b"t", str(now).encode()),
                                               (b"x", str(now - 10).encode())]))
write("i-outside-d", sign_tags(MESSAGE, "ed", [(b"i", b"alice@example.com")]))
write("i-subdomain", sign_tags(MESSAGE, "ed", [(b"i", b"alice@mail.example.org")]))
write("from-not-signed", sign_tags(MESSAGE, "ed", [], h=[b"to", b"subject"]))
write("weak-rsa512", sign(MESSAGE, "rsa512"))
write("rsa-sha1", sign(MESSAGE, "rsa2048", alg=b"rsa-sha1"))
# Keys that are wrong in the DNS (records below).
write("key-revoked", sign(MESSAGE, "rsa2048", domain=b"revoked.example"))
write("key-p-truncated", sign(MESSAGE, "rsa2048", domain=b"cut.example"))
write("key-missing", sign(MESSAGE, "rsa2048", domain=b"nokey.example"))
write("key-type-mismatch", sign(MESSAGE, "ed", domain=b"mismatch.example"))
write("key-testing", sign(MESSAGE, "ed", domain=b"testing.example"))
rec2048 = records["rsa2048._domainkey.example.org."]
publish("rsa2048", "revoked.example", "v=DKIM1; k=rsa; p=")
p = rec2048.split("p=")[1]
publish("rsa2048", "cut.example", "v=DKIM1; k=rsa; p=" + p[:len(p) - 7])
publish("ed", "mismatch.example", rec2048)
publish("ed", "testing.example", records["ed._domainkey.example.org."] + "; t=y")
# Seven signatures by one key: five are evaluated, two are not.
many = MESSAGE
for _ in range(7):
    many = sign(many, "ed")
write("seven-signatures", many)

with open(os.path.join(out, "records.json"), "w") as f:
    json.dump(records, f, indent=1, sort_keys=True)
