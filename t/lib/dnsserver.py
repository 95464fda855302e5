#!/usr/bin/python3
"""
t/lib/dnsserver.py: a loopback DNS server for the tests (python3-dnslib;
run it with Debian's python, gannettest.DEBIAN_PYTHON).

    dnsserver.py PORTFILE QUERYLOG TAFILE

Listens on 127.0.0.1, a free UDP port, writes the port to PORTFILE when
ready and appends "NAME TYPE" of every query to QUERYLOG.  TAFILE gets
trust anchors (unbound's format): the DNSKEY of secure.example., made at
start, and a DS for signed.example. that nothing matches.  It serves a
fixed zone under example. (not test.: libunbound answers test. itself, RFC 6761):

  mx.example        MX 20 mx2.mx.example., MX 10 mx1.mx.example.     (TTL 300)
  mx1.mx.example    A 192.0.2.11, AAAA 2001:db8::11            (TTL 60)
  txt.example       TXT "v=spf1 " "-all" (two strings), TXT "second"
  alias.example     CNAME mx1.mx.example.
  4.3.2.1.in-addr.arpa  PTR host.example.
  signed.example    A 192.0.2.53, unsigned: with a trust anchor for
                 signed.example it must be bogus (no DNSKEY, no RRSIG)
  fail.example      SERVFAIL;  slow.example and names under it  never answered
  anything else  NXDOMAIN; a known name without the type: NODATA
"""
import os
import socket
import sys

import dns.dnssec
import dns.name
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord

ZONE = {
    "mx.example.": [RR("mx.example.", QTYPE.MX, rdata=MX("mx2.mx.example.", 20), ttl=300),
                 RR("mx.example.", QTYPE.MX, rdata=MX("mx1.mx.example.", 10), ttl=300)],
    "mx1.mx.example.": [RR("mx1.mx.example.", QTYPE.A, rdata=A("192.0.2.11"), ttl=60),
                     RR("mx1.mx.example.", QTYPE.AAAA, rdata=AAAA("2001:db8::11"), ttl=60)],
    "txt.example.": [RR("txt.example.", QTYPE.TXT, rdata=TXT([b"v=spf1 ", b"-all"]), ttl=120),
                  RR("txt.example.", QTYPE.TXT, rdata=TXT([b"second"]), ttl=120)],
    "alias.example.": [RR("alias.example.", QTYPE.CNAME, rdata=CNAME("mx1.mx.example."), ttl=300)],
    "4.3.2.1.in-addr.arpa.": [RR("4.3.2.1.in-addr.arpa.", QTYPE.PTR,
                                   rdata=PTR("host.example."), ttl=3600)],
    "signed.example.": [RR("signed.example.", QTYPE.A, rdata=A("192.0.2.53"), ttl=300)],
    "plain.example.": [RR("plain.example.", QTYPE.A, rdata=A("192.0.2.54"), ttl=300)],
}


def sign_zone(tafile):
    """secure.example.: a key, its signed DNSKEY rrset, a well signed and a
    badly signed A; the DNSKEY goes to tafile as the zone's trust anchor."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    origin = dns.name.from_text("secure.example.")
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.RSASHA256,
                                    flags=257)
    keyset = dns.rrset.from_rdata(origin, 300, dnskey)

    def signed(rrset, signed_as=None):
        sig = dns.dnssec.sign(signed_as or rrset, key, origin, dnskey, lifetime=86400)
        sigset = dns.rrset.from_rdata(rrset.name, rrset.ttl, sig)
        return RR.fromZone(rrset.to_text()) + RR.fromZone(sigset.to_text())

    www = dns.rrset.from_text("www.secure.example.", 300, "IN", "A", "192.0.2.80")
    bad = dns.rrset.from_text("badsig.secure.example.", 300, "IN", "A", "192.0.2.81")
    other = dns.rrset.from_text("badsig.secure.example.", 300, "IN", "A", "192.0.2.99")
    ZONE["secure.example."] = signed(keyset)
    ZONE["www.secure.example."] = signed(www)
    ZONE["badsig.secure.example."] = signed(bad, signed_as=other)
    with open(tafile, "w") as f:
        f.write(keyset.to_text() + "\n")
        f.write("signed.example. 300 IN DS 12345 8 2 " + "0123456789abcdef" * 4 + "\n")


def answer(req):
    q = req.q
    name = str(q.qname).lower()
    reply = req.reply()  # same id and question, QR, RD copied
    reply.header.ra = 1
    if name == "fail.example.":
        reply.header.rcode = RCODE.SERVFAIL
        return reply
    rrs = ZONE.get(name)
    if rrs is None:
        reply.header.rcode = RCODE.NXDOMAIN
        return reply
    reply.header.aa = 1
    for rr in rrs:
        if rr.rtype == q.qtype or (rr.rtype == QTYPE.RRSIG and rr.rdata.covered == q.qtype):
            reply.add_answer(rr)
        elif rr.rtype == QTYPE.CNAME:
            reply.add_answer(rr)
            for target in ZONE.get(str(rr.rdata.label).lower(), []):
                if target.rtype == q.qtype:
                    reply.add_answer(target)
    return reply


def main():
    portfile, querylog, tafile = sys.argv[1], sys.argv[2], sys.argv[3]
    sign_zone(tafile)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    log = open(querylog, "a")
    while True:
        data, peer = s.recvfrom(65535)
        try:
            req = DNSRecord.parse(data)
        except Exception:
            continue
        name = str(req.q.qname).lower()
        log.write("%s %s\n" % (name, QTYPE.get(req.q.qtype)))
        log.flush()
        if name == "slow.example." or name.endswith(".slow.example."):
            continue
        s.sendto(answer(req).pack(), peer)


if __name__ == "__main__":
    main()
