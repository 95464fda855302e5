"""
t/lib/dkimverify.py: checks every DKIM-Signature of a message with
Python's dkim (Debian's python3-dkim), an independent verifier, without
the network: its dnsfunc answers from the TXT records given.

    /usr/bin/python3 t/lib/dkimverify.py MESSAGE RECORDS.json

RECORDS.json maps "selector._domainkey.domain." to the record's text.
Prints one line per signature, in order: "N pass" or "N fail", and exits
0 when there was at least one signature.
"""
import json
import logging
import sys

import dkim

with open(sys.argv[1], "rb") as f:
    msg = f.read()
with open(sys.argv[2]) as f:
    records = json.load(f)


def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode("ascii")
    rec = records.get(name)
    return rec.encode("ascii") if rec is not None else None


logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
d = dkim.DKIM(msg, logger=logging.getLogger("dkim"))
n = sum(1 for h in d.headers if h[0].lower() == b"dkim-signature")
for i in range(n):
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print("dkim: %s" % e, file=sys.stderr)
        ok = False
    print("%d %s" % (i, "pass" if ok else "fail"))
sys.exit(0 if n > 0 else 1)
