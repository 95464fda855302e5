#!/usr/bin/python3
"""
t/lib/dmarccheck.py: an independent DMARC evaluator for
t/integration/310-mailauth-dmarc.t: Debian's python3-authheaders
(authheaders.dmarc_per_from(), its policy discovery and alignment) and
python3-publicsuffix2 (which authheaders uses for organisational domains,
over the same /usr/share/publicsuffix list).  Run it with Debian's python
(gannettest.DEBIAN_PYTHON).

    dmarccheck.py < {"zone": {NAME: [TXT, ...]}, "org": [DOMAIN, ...],
                     "cases": [{"from": D, "spf": {"result": R,
                                "mailfrom": ADDR} or null,
                                "dkim": [{"d": D, "result": R}, ...]}]}

Prints {"org": [ORG, ...], "cases": [{"result": R, "policy": P}, ...]}.
Organisational domains ("org") are publicsuffix2's over Debian's list as
it is; the evaluation's, over the list with "example" added (below).
The DNS is the zone given (a test dnsfunc: authheaders then takes one
string a name, so the zone's names should hold one DMARC record).
authheaders looks at one DKIM result; each passing signature is given in
turn and the message passes when one of them does (RFC 7489 4.2).
"""
import json
import os
import sys
import tempfile
from types import SimpleNamespace

import authheaders.dmarc_lookup
from authheaders import dmarc_per_from
from authheaders.dmarc_lookup import get_org_domain

req = json.load(sys.stdin)
zone = req["zone"]
# Organisational domains as publicsuffix2 finds them in Debian's list.
orgs = [get_org_domain(d) for d in req.get("org", [])]
# publicsuffix2 departs from the PSL algorithm for a TLD the list does not
# name: it makes the TLD itself the organisational domain, where the
# algorithm's default rule "*" makes the TLD the public suffix.  The tests'
# domains are under "example." (RFC 2606), so the evaluation gets the list
# with the rule "example" added: under the algorithm the same as "*" for
# those names, and for every other name the list unchanged.
with open(authheaders.dmarc_lookup.get_suffix_list_file_name()) as f:
    psl = f.read()
tmp = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
tmp.write(psl + "\n// the tests' TLD (RFC 2606)\nexample\n")
tmp.close()
authheaders.dmarc_lookup.get_suffix_list_file_name = lambda: tmp.name


def dnsfunc(name, qtype="TXT"):
    name = name.rstrip(".")
    recs = [r for r in zone.get(name, []) if r.startswith("v=DMARC1")] or zone.get(name, [])
    return recs[0] if recs else None


out = {"org": orgs, "cases": []}
for c in req["cases"]:
    spf = None
    if c["spf"] is not None:
        spf = SimpleNamespace(result=c["spf"]["result"], smtp_mailfrom=c["spf"]["mailfrom"])
    dkims = [SimpleNamespace(result=k["result"], header_d=k["d"]) for k in c["dkim"]] or [None]
    best = None
    for dk in dkims:
        result, _comment, _from, policy = dmarc_per_from(c["from"], spf, dk, dnsfunc)
        if best is None or result == "pass":
            best = {"result": result, "policy": policy}
    out["cases"].append(best)
os.unlink(tmp.name)
json.dump(out, sys.stdout)
