#!/usr/bin/python3
"""
t/lib/dnssecserver.py: a loopback DNS server with a DNSSEC-signed zone, for
the DANE tests (python3-dnspython; run it with Debian's python,
gannettest.DEBIAN_PYTHON).

    dnssecserver.py PORTFILE QUERYLOG TAFILE ZONEFILE

Listens on 127.0.0.1, a free UDP port, writes the port to PORTFILE when
ready and appends "NAME TYPE" of every query to QUERYLOG.  At start it
makes a key for the zone dane.example. and writes the zone's DNSKEY to
TAFILE (unbound's trust-anchor format: dns.trust_anchor).

ZONEFILE holds the data, one record a line in master-file form with
absolute names ("mx.dane.example. 300 IN A 127.0.0.1"); it is read again
whenever it changes, so a test can fix a record between two runs.
  - Records under dane.example. are signed (RRSIG, with an NSEC chain
    and a signed SOA for NODATA and NXDOMAIN): their answers validate
    ("secure").  A line starting with "BOGUS " is signed over other data,
    so that it never validates ("bogus").
  - Records under any other name are served unsigned: outside the trust
    anchor they are "insecure".
  - A name with a CNAME record answers any other type with the CNAME (and
    the chain after it, as far as the zone has it, and the target's records
    of the type asked for); the resolver follows the rest itself.
Anything else is NXDOMAIN; a known name without the type NODATA.
"""
import os
import socket
import sys

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = dns.name.from_text("dane.example.")
KEY = ec.generate_private_key(ec.SECP256R1())
DNSKEY = dns.dnssec.make_dnskey(KEY.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
TTL = 60


class Zone:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.rrsets = {}  # (name, type) -> [rrset, sigset or None]
        self.names = set()

    def load(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if self.mtime == (st.st_mtime_ns, st.st_size):
            return
        self.mtime = (st.st_mtime_ns, st.st_size)
        groups, bogus = {}, set()
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(";"):
                    continue
                bad = line.startswith("BOGUS ")
                if bad:
                    line = line[6:]
                name, ttl, _cls, rtype, data = line.split(None, 4)
                name = dns.name.from_text(name)
                rtype = dns.rdatatype.from_text(rtype)
                rd = dns.rdata.from_text(dns.rdataclass.IN, rtype, data)
                key = (name, rtype)
                if key not in groups:
                    groups[key] = dns.rrset.RRset(name, dns.rdataclass.IN, rtype)
                    groups[key].update_ttl(int(ttl))
                groups[key].add(rd)
                if bad:
                    bogus.add(key)
        soa = dns.rrset.from_text(ORIGIN, TTL, "IN", "SOA",
                                  "ns.dane.example. admin.dane.example. 1 3600 600 86400 %d" % TTL)
        keyset = dns.rrset.from_rdata(ORIGIN, TTL, DNSKEY)
        groups[(ORIGIN, dns.rdatatype.SOA)] = soa
        groups[(ORIGIN, dns.rdatatype.DNSKEY)] = keyset
        # The NSEC chain over the signed names, in canonical order (RFC 4034 6.1).
        signed_names = sorted({n for (n, _t) in groups if n.is_subdomain(ORIGIN)})
        for i, n in enumerate(signed_names):
            nxt = signed_names[(i + 1) % len(signed_names)]
            types = sorted({dns.rdatatype.to_text(t) for (m, t) in groups if m == n} | {"RRSIG", "NSEC"})
            groups[(n, dns.rdatatype.NSEC)] = dns.rrset.from_text(n, TTL, "IN", "NSEC",
                                                                  nxt.to_text() + " " + " ".join(types))
        self.signed_names = signed_names
        self.rrsets = {}
        for key, rrset in groups.items():
            sig = None
            if rrset.name.is_subdomain(ORIGIN):
                over = rrset
                if key in bogus:
                    over = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
                    over.update_ttl(rrset.ttl)
                    # Other data of the same type: the signature fails.
                    for rd in rrset:
                        over.add(rd)
                    over.add(dns.rdata.from_text(dns.rdataclass.IN, rrset.rdtype,
                                                 self.other_data(rrset.rdtype)))
                rd = dns.dnssec.sign(over, KEY, ORIGIN, DNSKEY, lifetime=86400)
                sig = dns.rrset.from_rdata(rrset.name, rrset.ttl, rd)
            self.rrsets[key] = (rrset, sig)
        self.names = {n for (n, _t) in self.rrsets}

    @staticmethod
    def other_data(rtype):
        if rtype == dns.rdatatype.A:
            return "192.0.2.250"
        if rtype == dns.rdatatype.AAAA:
            return "2001:db8::250"
        if rtype == dns.rdatatype.TLSA:
            return "3 1 1 " + "ee" * 32
        if rtype == dns.rdatatype.MX:
            return "99 other.dane.example."
        return '"other"'

    def add(self, section, key):
        rrset, sig = self.rrsets[key]
        section.append(rrset)
        if sig is not None:
            section.append(sig)

    def covering(self, qname):
        """The NSEC owner that precedes qname in canonical order."""
        prev = self.signed_names[-1]
        for n in self.signed_names:
            if n < qname:
                prev = n
        return prev

    def answer(self, query):
        q = query.question[0]
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.RA
        name, rtype = q.name, q.rdtype
        signed = name.is_subdomain(ORIGIN)
        if name not in self.names:
            resp.set_rcode(dns.rcode.NXDOMAIN)
            if signed:
                resp.flags |= dns.flags.AA
                self.add(resp.authority, (ORIGIN, dns.rdatatype.SOA))
                self.add(resp.authority, (self.covering(name), dns.rdatatype.NSEC))
                if self.covering(name) != ORIGIN:
                    # The apex's NSEC denies the wildcard *.dane.example.
                    self.add(resp.authority, (ORIGIN, dns.rdatatype.NSEC))
            return resp
        resp.flags |= dns.flags.AA
        if (name, rtype) in self.rrsets:
            self.add(resp.answer, (name, rtype))
        elif rtype != dns.rdatatype.CNAME and (name, dns.rdatatype.CNAME) in self.rrsets:
            # The alias, then its target's records as far as the zone has them.
            for _hop in range(8):
                self.add(resp.answer, (name, dns.rdatatype.CNAME))
                name = self.rrsets[(name, dns.rdatatype.CNAME)][0][0].target
                if (name, rtype) in self.rrsets:
                    self.add(resp.answer, (name, rtype))
                    break
                if (name, dns.rdatatype.CNAME) not in self.rrsets:
                    break
        elif signed:
            self.add(resp.authority, (ORIGIN, dns.rdatatype.SOA))
            self.add(resp.authority, (name, dns.rdatatype.NSEC))
        return resp


def main():
    portfile, querylog, tafile, zonefile = sys.argv[1:5]
    with open(tafile, "w") as f:
        f.write(dns.rrset.from_rdata(ORIGIN, TTL, DNSKEY).to_text() + "\n")
    zone = Zone(zonefile)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    log = open(querylog, "a")
    while True:
        data, peer = s.recvfrom(65535)
        try:
            query = dns.message.from_wire(data)
            q = query.question[0]
        except Exception:
            continue
        log.write("%s %s\n" % (q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)))
        log.flush()
        try:
            zone.load()
            wire = zone.answer(query).to_wire(max_size=65535)
        except Exception as e:  # a test's zone file that does not parse
            sys.stderr.write("dnssecserver: %s\n" % e)
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.SERVFAIL)
            wire = resp.to_wire()
        s.sendto(wire, peer)


if __name__ == "__main__":
    main()
