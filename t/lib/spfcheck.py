#!/usr/bin/python3
"""
t/lib/spfcheck.py: SPF evaluated by an independent implementation, Debian's
python3-spf (pyspf), over DNS data the test gives (run it with Debian's
python, gannettest.DEBIAN_PYTHON).

    spfcheck.py < JSON  > JSON

In:  {"zone": {NAME: [[TYPE, DATA], ...]}, "tempfail": [NAME, ...],
      "cases": [{"ip": IP, "sender": S, "helo": H}, ...]}
     TYPE: A, AAAA, MX (DATA [pref, host]), TXT (DATA the record's text),
     PTR, CNAME.  Names in "tempfail" fail as a server failure would.
Out: [{"result", "explanation", "mechanism", "lookups", "void"}, ...], one
     a case, from spf.query(...).check().

pyspf's DNS is replaced by a lookup in the zone (spf.DNSLookup), so both
evaluators see identical data and nothing goes to the network.  A CNAME is
answered as a resolver's stub would see it, the CNAME record alone; pyspf
follows it itself.
"""
import json
import sys

import spf


def main():
    data = json.load(sys.stdin)
    zone = {k.lower().rstrip("."): v for k, v in data["zone"].items()}
    tempfail = {n.lower() for n in data.get("tempfail", [])}

    def lookup(name, qtype, strict=True, timeout=None):
        name = str(name).lower().rstrip(".")
        if name in tempfail:
            raise spf.TempError("DNS SERVFAIL for %s" % name)
        recs = zone.get(name, [])
        for rtype, value in recs:
            if rtype == "CNAME" and qtype != "CNAME":
                return [((name, "CNAME"), value)]
        out = []
        for rtype, value in recs:
            if rtype != qtype:
                continue
            if rtype == "TXT":
                text = value.encode()
                out.append(((name, rtype), [text[i:i + 255] for i in range(0, len(text), 255)]))
            elif rtype == "MX":
                out.append(((name, rtype), (value[0], value[1])))
            else:
                out.append(((name, rtype), value))
        return out

    spf.DNSLookup = lookup
    results = []
    for case in data["cases"]:
        q = spf.query(i=case["ip"], s=case["sender"], h=case["helo"], timeout=5)
        res, _code, exp = q.check()
        results.append({"result": res, "explanation": exp, "mechanism": q.mechanism,
                        "lookups": q.lookups, "void": q.void_lookups})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
