#!/usr/bin/env python3
"""
t/integration/300-mailauth-spf.t: SPF (RFC 7208) in the mailauth module,
through `gannet dns spf DOMAIN IP SENDER HELO`, with DNS answered from
dns.local_data (never the network), over a table of records that
exercises every mechanism (all, include, a, mx, ptr, ip4, ip6, exists with
CIDR lengths), both modifiers (redirect=, exp= with macros), every macro
letter, transformers, delimiters and URL escaping, and every limit: 10
DNS-querying terms, 2 void lookups, 10 MX names, 10 PTR names, include and
redirect loops, CNAME chains and loops, a huge TXT record and malformed
records.

Each case has the result the RFC gives (written here by hand) and is
checked against Debian's python3-spf (pyspf, t/lib/spfcheck.py) over the
same data: the results must agree, and so must the explanation of a fail
and the matching term.  Where pyspf departs from the RFC, gannet follows
the RFC and the case says why (its "pyspf" or "pyspf_exp" entry, with
what pyspf gives, checked too): redirect= counted before the mechanisms
run, a CNAME loop taken for an empty answer, a CNAME chain past 10 a
permerror, IPv6 %{i} in upper case; and one place where gannet has a
limit of its own (a record past 4096 bytes).

A second part runs with dns.resolvers at t/lib/dnsserver.py, local data in
front: a server failure and a timeout give temperror, also from inside an
include, and a CNAME the resolver follows itself.
"""
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt
from gannettest import DEBIAN_PYTHON, SRCDIR, Tap

t = Tap()
IP4 = "192.0.2.10"
IP6 = "2001:db8::10"
OTHER4 = "198.51.100.99"

# ---- the DNS data: name -> [(type, data)] ----
Z = {}


def rr(name, rtype, data):
    Z.setdefault(name, []).append((rtype, data))


def txt(name, text):
    rr(name, "TXT", text)


# Results from the qualifier.
txt("pass.example", "v=spf1 +all")
txt("fail.all.example", "v=spf1 -all")
txt("softfail.example", "v=spf1 ~all")
txt("neutral.example", "v=spf1 ?all")
txt("empty.example", "v=spf1")
txt("upper.example", "V=SPF1 IP4:192.0.2.10 -ALL")
txt("spaces.example", "v=spf1   ip4:192.0.2.10   -all   ")
txt("unknownmod.example", "v=spf1 foo=bar x.y-z_w=%{d} ip4:192.0.2.10 -all")
# Record selection (RFC 7208 4.5).
txt("two.example", "v=spf1 -all")
txt("two.example", "v=spf1 +all")
txt("others.example", "hello world")
txt("others.example", "v=spf10 +all")
txt("others.example", "spf1 +all")
txt("others.example", "v=spf1 ip4:192.0.2.0/24 -all")
txt("textonly.example", "some verification=abc")
# ip4 and ip6.
txt("ip4.example", "v=spf1 ip4:192.0.2.0/24 -all")
txt("ip4host.example", "v=spf1 ip4:192.0.2.10 -all")
txt("ip4zero.example", "v=spf1 ip4:0.0.0.0/0 -all")
txt("ip6.example", "v=spf1 ip6:2001:db8::/32 -all")
txt("ip6host.example", "v=spf1 ip6:2001:db8::10 ~all")
txt("mixed.example", "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.10/32 -all")
# a, with CIDR lengths.
txt("a.example", "v=spf1 a -all")
rr("a.example", "A", IP4)
rr("a.example", "AAAA", IP6)
txt("acidr.example", "v=spf1 a:host.acidr.example/24//64 -all")
rr("host.acidr.example", "A", "192.0.2.200")
rr("host.acidr.example", "AAAA", "2001:db8::1:0")
txt("anocidr.example", "v=spf1 a:host.acidr.example -all")
txt("amacro.example", "v=spf1 a:%{d}.hosts.example -all")
rr("amacro.example.hosts.example", "A", IP4)
# mx.
txt("mx.example", "v=spf1 mx -all")
rr("mx.example", "MX", [10, "mx1.mx.example"])
rr("mx.example", "MX", [20, "mx2.mx.example"])
rr("mx1.mx.example", "A", "198.51.100.1")
rr("mx2.mx.example", "A", IP4)
rr("mx2.mx.example", "AAAA", IP6)
txt("mxcidr.example", "v=spf1 mx:mx.example/30 -all")
rr("mx1.mxc.example", "A", "192.0.2.9")
txt("mxcidr2.example", "v=spf1 mx:mxc.example/30 -all")
rr("mxc.example", "MX", [10, "mx1.mxc.example"])
txt("mx11.example", "v=spf1 mx -all")
txt("mx10.example", "v=spf1 mx -all")
for i in range(1, 12):
    rr("mx11.example", "MX", [i, "h%d.mx11.example" % i])
    rr("h%d.mx11.example" % i, "A", "198.51.100.%d" % i)
for i in range(1, 11):
    rr("mx10.example", "MX", [i, "h%d.mx10.example" % i])
    rr("h%d.mx10.example" % i, "A", IP4 if i == 10 else "198.51.100.%d" % i)
# ptr: 192.0.2.10 and 2001:db8::10 name host.ptr.example, which names them
# back; a second name that does not validate.
REV4 = "10.2.0.192.in-addr.arpa"
REV6 = ".".join(reversed("20010db8000000000000000000000010")) + ".ip6.arpa"
rr(REV4, "PTR", "host.ptr.example")
rr(REV4, "PTR", "liar.ptr.example")
rr(REV6, "PTR", "host.ptr.example")
rr("host.ptr.example", "A", IP4)
rr("host.ptr.example", "AAAA", IP6)
rr("liar.ptr.example", "A", "198.51.100.7")
txt("ptr.example", "v=spf1 ptr:ptr.example -all")
txt("ptrother.example", "v=spf1 ptr -all")
txt("ptrliar.example", "v=spf1 ptr:liar.ptr.example -all")
# ptr with 11 names: only the first 10 are validated (RFC 7208 4.6.4), so
# 12 queries in all (TXT, PTR, 10 A).  The order of an RRset is the
# resolver's, so which 10 is not fixed: here no name is in the target
# domain, all validate.  198.51.100.50 names n1..n11.other.example.
REV11 = "50.100.51.198.in-addr.arpa"
for i in range(1, 12):
    rr(REV11, "PTR", "n%02d.other.example" % i)
    rr("n%02d.other.example" % i, "A", "198.51.100.50")
txt("ptr11.example", "v=spf1 ptr:ptr11.example -all")
# 10 names, each with an address, one of them validated and in the domain.
REV10 = "51.100.51.198.in-addr.arpa"
for i in range(1, 11):
    name = "n%02d.%s.example" % (i, "ptr10" if i == 10 else "other10")
    rr(REV10, "PTR", name)
    rr(name, "A", "198.51.100.51" if i == 10 else "198.51.100.%d" % (60 + i))
txt("ptr10.example", "v=spf1 ptr:ptr10.example -all")
# exists.
txt("exists.example", "v=spf1 exists:%{i}.allow.exists.example -all")
rr("192.0.2.10.allow.exists.example", "A", "127.0.0.2")
# include.
txt("include.example", "v=spf1 include:ip4.example -all")
txt("incnone.example", "v=spf1 include:nothing.example -all")
txt("incfail.example", "v=spf1 include:fail.all.example ?all")
txt("incsoft.example", "v=spf1 -include:softfail.example ~all")
txt("incneg.example", "v=spf1 -include:ip4.example +all")
txt("incperm.example", "v=spf1 include:broken.example +all")
txt("broken.example", "v=spf1 ip4:192.0.2.300 -all")
# redirect.
txt("redirect.example", "v=spf1 redirect=ip4.example")
txt("redirall.example", "v=spf1 ?all redirect=fail.all.example")
txt("redirnone.example", "v=spf1 redirect=nothing.example")
txt("redirafter.example", "v=spf1 ip4:203.0.113.1 redirect=%{d}.r.example")
txt("redirafter.example.r.example", "v=spf1 ip4:192.0.2.10 -all")
# exp= with macros.
txt("exp.example", "v=spf1 mx -all exp=explain.%{d}")
rr("exp.example", "MX", [10, "mx1.mx.example"])
txt("explain.exp.example",
    "%{i} is not one of %{d}'s designated mail servers; sender %{s} local %{l} "
    "domain %{o} helo %{h} via %{v} %{c} escaped %{L} %{S} percent %% space%_x %-")
txt("expbad.example", "v=spf1 -all exp=explain.expbad.example")
txt("explain.expbad.example", "bad macro %{x} here")
txt("exptwo.example", "v=spf1 -all exp=explain.exptwo.example")
txt("explain.exptwo.example", "one")
txt("explain.exptwo.example", "two")
txt("expnone.example", "v=spf1 -all exp=nothing.example")
txt("exppass.example", "v=spf1 +all exp=explain.exp.example")
txt("expredir.example", "v=spf1 exp=e1.expredir.example redirect=expredir2.example")
txt("expredir2.example", "v=spf1 -all exp=e2.expredir.example")
txt("e1.expredir.example", "from the first")
txt("e2.expredir.example", "from the redirect target")
txt("expinc.example", "v=spf1 include:expinc2.example -all")
txt("exp6.example", "v=spf1 -all exp=explain.exp6.example")
txt("explain.exp6.example", "%{i} (%{c}) is not allowed")
txt("expinc2.example", "v=spf1 -all exp=e2.expredir.example")
# Macros (RFC 7208 7).
txt("mac1.example", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all")
rr("10.2.0.192.strong._spf.mac1.example", "A", "127.0.0.2")
txt("mac2.example", "v=spf1 exists:%{d2}.%{h}.%{o}.m2.example -all")
rr("mac2.example.helo.client.example.mac2.example.m2.example", "A", "127.0.0.2")
txt("mac3.example", "v=spf1 exists:%{v}.%{ir}.%{l}.m3.example -all")
rr("in-addr.10.2.0.192.user.m3.example", "A", "127.0.0.2")
rr("ip6." + ".".join(reversed("20010db8000000000000000000000010")) + ".user.m3.example", "A",
   "127.0.0.2")
txt("mac4.example", "v=spf1 exists:%{d3r}.%{i2}.m4.example -all")
rr("example.mac4.2.10.m4.example", "A", "127.0.0.2")
txt("mac5.example", "v=spf1 exists:%{l2r-}.m5.example -all")
rr("b.a.m5.example", "A", "127.0.0.2")
txt("pmac.example", "v=spf1 exists:%{p}.p.pmac.example -all")
rr("host.ptr.example.p.pmac.example", "A", "127.0.0.2")
txt("macbad.example", "v=spf1 exists:%{c}.macbad.example -all")
txt("macbad2.example", "v=spf1 a:%{x}.macbad.example -all")
txt("macbad3.example", "v=spf1 ip4:192.0.2.10 a:foo%.example -all")
# HELO checks.
txt("helo.example", "v=spf1 a -all")
rr("helo.example", "A", IP4)
# Limits: 10 DNS-querying terms.
for i in range(1, 12):
    rr("n%d.lim.example" % i, "A", "198.51.100.%d" % i)
txt("lim10.example", "v=spf1 " + " ".join("a:n%d.lim.example" % i for i in range(1, 11)) + " -all")
txt("lim11.example", "v=spf1 " + " ".join("a:n%d.lim.example" % i for i in range(1, 12)) + " -all")
txt("lim10ip.example", "v=spf1 " + " ".join("a:n%d.lim.example" % i for i in range(1, 11)) +
    " ip4:192.0.2.10 -all")
txt("limmatch.example", "v=spf1 " + " ".join("a:n%d.lim.example" % i for i in range(1, 10)) +
    " a:a.example redirect=fail.all.example")
# Included terms count too: include (1) + 9 a = 10; one more a: 11.
txt("inclim.example", "v=spf1 include:inclim2.example a:n10.lim.example -all")
txt("inclim2.example", "v=spf1 " + " ".join("a:n%d.lim.example" % i for i in range(1, 9)) + " ?all")
txt("inclim3.example", "v=spf1 include:inclim2.example a:n9.lim.example a:n10.lim.example -all")
# Nested includes: 10 deep is the most.
for i in range(1, 12):
    txt("deep%d.example" % i, "v=spf1 include:deep%d.example -all" % (i + 1))
txt("deep12.example", "v=spf1 +all")
for i in range(1, 11):
    txt("ok%d.example" % i, "v=spf1 include:ok%d.example -all" % (i + 1))
txt("ok11.example", "v=spf1 +all")
# Loops.
txt("loop1.example", "v=spf1 include:loop2.example -all")
txt("loop2.example", "v=spf1 include:loop1.example -all")
txt("self.example", "v=spf1 include:self.example -all")
txt("rloop.example", "v=spf1 redirect=rloop.example")
txt("rloop1.example", "v=spf1 redirect=rloop2.example")
txt("rloop2.example", "v=spf1 redirect=rloop1.example")
# Void lookups: two are allowed, the third is a permerror.
txt("void2.example", "v=spf1 a:nx1.example a:nx2.example -all")
txt("void3.example", "v=spf1 a:nx1.example a:nx2.example a:nx3.example -all")
txt("voidmix.example", "v=spf1 mx:nx1.example exists:nx2.example a:a.example//128 a -all")
txt("voiddata.example", "v=spf1 a:textonly.example a:others.example a:mx.example -all")
# CNAMEs: local data answers a CNAME alone; the target is asked next.
rr("cname.example", "CNAME", "cname2.example")
rr("cname2.example", "CNAME", "ip4host.example")
txt("acname.example", "v=spf1 a:alias.acname.example -all")
rr("alias.acname.example", "CNAME", "a.example")
rr("cloop1.example", "CNAME", "cloop2.example")
rr("cloop2.example", "CNAME", "cloop1.example")
txt("acloop.example", "v=spf1 a:cloop1.example -all")
for i in range(1, 13):
    rr("chain%d.example" % i, "CNAME", "chain%d.example" % (i + 1))
txt("chain13.example", "v=spf1 +all")
for i in range(1, 10):
    rr("short%d.example" % i, "CNAME", "short%d.example" % (i + 1))
txt("short10.example", "v=spf1 +all")
# Huge and malformed records.
BIG = "v=spf1 " + " ".join("ip4:198.51.%d.%d" % (i // 250, i % 250) for i in range(220)) + \
    " ip4:192.0.2.10 -all"
txt("big.example", BIG)
HUGE = "v=spf1 " + " ".join("ip4:198.51.%d.%d" % (i // 250, i % 250) for i in range(400)) + \
    " ip4:192.0.2.10 -all"
txt("huge.example", HUGE)
txt("hugeother.example", "x" * 3000)
txt("hugeother.example", "v=spf1 ip4:192.0.2.10 -all")
MALFORMED = {
    "bad-mech.example": "v=spf1 moo -all",
    "bad-ip4.example": "v=spf1 ip4:192.0.2.300 -all",
    "bad-ip4zero.example": "v=spf1 ip4:192.0.02.1 -all",
    "bad-cidr.example": "v=spf1 ip4:192.0.2.10/33 -all",
    "bad-cidr6.example": "v=spf1 ip6:2001:db8::/129 -all",
    "bad-ip6.example": "v=spf1 ip6:2001:db8::zz -all",
    "bad-qual.example": "v=spf1 =a -all",
    "bad-all.example": "v=spf1 -all:foo.example",
    "bad-two-redirect.example": "v=spf1 redirect=a.example redirect=ip4.example",
    "bad-include.example": "v=spf1 include -all",
    "bad-domain.example": "v=spf1 a:example -all",
    "bad-port.example": "v=spf1 a:example.com:25 -all",
    "bad-late.example": "v=spf1 ip4:192.0.2.10 -all moo",
    "bad-macro.example": "v=spf1 exists:%{z}.x.example -all",
    "bad-exists.example": "v=spf1 exists -all",
}
for name, text in MALFORMED.items():
    txt(name, text)

# ---- the cases ----
# (domain, ip, sender (None: postmaster@domain, "" <>), helo, RFC result,
#  checks): checks may hold "mechanism", "explanation" (a substring), "lookups",
#  "void", "identity", "problem" (a substring), "pyspf" (pyspf's result where it
#  departs from the RFC, with "why").
HELO = "helo.client.example"
# %{i} of IP6 (RFC 7208 7.3): its 32 nibbles, dot-separated.
N6 = ".".join(ipaddress.ip_address(IP6).exploded.replace(":", ""))
CASES = [
    ("pass.example", IP4, None, HELO, "pass", {"mechanism": "+all", "lookups": 0}),
    ("fail.all.example", IP4, None, HELO, "fail", {"mechanism": "-all"}),
    ("softfail.example", IP4, None, HELO, "softfail", {}),
    ("neutral.example", IP4, None, HELO, "neutral", {}),
    ("empty.example", IP4, None, HELO, "neutral", {"mechanism": None}),
    ("upper.example", IP4, None, HELO, "pass", {"mechanism": "IP4:192.0.2.10"}),
    ("spaces.example", IP4, None, HELO, "pass", {}),
    ("unknownmod.example", IP4, None, HELO, "pass", {}),
    ("two.example", IP4, None, HELO, "permerror", {"problem": "2 SPF records"}),
    ("others.example", IP4, None, HELO, "pass", {}),
    ("textonly.example", IP4, None, HELO, "none", {}),
    ("nothing.example", IP4, None, HELO, "none", {}),
    ("localhost", IP4, None, HELO, "none", {"problem": "several labels"}),
    ("ip4.example", IP4, None, HELO, "pass", {"mechanism": "ip4:192.0.2.0/24"}),
    ("ip4.example", OTHER4, None, HELO, "fail", {}),
    ("ip4.example", IP6, None, HELO, "fail", {}),
    ("ip4host.example", IP4, None, HELO, "pass", {}),
    ("ip4host.example", "192.0.2.11", None, HELO, "fail", {}),
    ("ip4zero.example", OTHER4, None, HELO, "pass", {}),
    ("ip4host.example", "::ffff:192.0.2.10", None, HELO, "pass", {}),
    ("ip6.example", IP6, None, HELO, "pass", {}),
    ("ip6.example", "2001:db9::1", None, HELO, "fail", {}),
    ("ip6.example", IP4, None, HELO, "fail", {}),
    ("ip6host.example", "2001:db8::11", None, HELO, "softfail", {}),
    ("mixed.example", IP4, None, HELO, "pass", {"mechanism": "ip4:192.0.2.10/32"}),
    ("a.example", IP4, None, HELO, "pass", {"mechanism": "a", "lookups": 1}),
    ("a.example", IP6, None, HELO, "pass", {}),
    ("a.example", OTHER4, None, HELO, "fail", {}),
    ("acidr.example", IP4, None, HELO, "pass", {}),
    ("acidr.example", IP6, None, HELO, "pass", {}),
    ("acidr.example", "2001:db8:0:1::10", None, HELO, "fail", {}),
    ("anocidr.example", IP4, None, HELO, "fail", {}),
    ("amacro.example", IP4, None, HELO, "pass", {}),
    ("mx.example", IP4, None, HELO, "pass", {"mechanism": "mx"}),
    ("mx.example", IP6, None, HELO, "pass", {}),
    ("mx.example", "198.51.100.2", None, HELO, "fail", {}),
    ("mxcidr2.example", IP4, None, HELO, "pass", {}),
    ("mxcidr2.example", "192.0.2.12", None, HELO, "fail", {}),
    ("mx11.example", IP4, None, HELO, "permerror", {"problem": "more than 10"}),
    ("mx10.example", IP4, None, HELO, "pass", {}),
    ("ptr.example", IP4, None, HELO, "pass", {"mechanism": "ptr:ptr.example"}),
    ("ptr.example", IP6, None, HELO, "pass", {}),
    ("ptr.example", OTHER4, None, HELO, "fail", {}),
    ("ptrother.example", IP4, None, HELO, "fail", {}),
    ("ptrliar.example", IP4, None, HELO, "fail", {}),
    ("ptr11.example", "198.51.100.50", None, HELO, "fail", {"queries": 12}),
    ("ptr10.example", "198.51.100.51", None, HELO, "pass", {}),
    ("exists.example", IP4, None, HELO, "pass", {}),
    ("exists.example", OTHER4, None, HELO, "fail", {"void": 1}),
    ("include.example", IP4, None, HELO, "pass", {"mechanism": "include:ip4.example"}),
    ("include.example", OTHER4, None, HELO, "fail", {"mechanism": "-all"}),
    ("incnone.example", IP4, None, HELO, "permerror", {"problem": "no SPF record"}),
    ("incfail.example", IP4, None, HELO, "neutral", {}),
    ("incsoft.example", IP4, None, HELO, "softfail", {"mechanism": "~all"}),
    ("incneg.example", IP4, None, HELO, "fail", {"mechanism": "-include:ip4.example"}),
    ("incperm.example", IP4, None, HELO, "permerror", {"problem": "bad IPv4"}),
    ("redirect.example", IP4, None, HELO, "pass", {}),
    ("redirect.example", OTHER4, None, HELO, "fail", {}),
    ("redirall.example", IP4, None, HELO, "neutral", {}),
    ("redirnone.example", IP4, None, HELO, "permerror", {}),
    ("redirafter.example", IP4, None, HELO, "pass", {}),
    ("exp.example", IP4, "user+tag@exp.example", HELO, "fail",
     {"explanation": "192.0.2.10 is not one of exp.example's designated mail servers; "
      "sender user+tag@exp.example local user+tag domain exp.example helo " + HELO +
      " via in-addr 192.0.2.10 escaped user%2Btag user%2Btag%40exp.example percent % space x %20"}),
    ("expbad.example", IP4, None, HELO, "fail", {"explanation": None}),
    ("exptwo.example", IP4, None, HELO, "fail", {"explanation": None}),
    ("expnone.example", IP4, None, HELO, "fail", {"explanation": None}),
    ("exppass.example", IP4, None, HELO, "pass", {"explanation": None}),
    ("expredir.example", IP4, None, HELO, "fail", {"explanation": "from the redirect target"}),
    ("expinc.example", IP4, None, HELO, "fail", {"explanation": None}),
    ("exp6.example", IP6, None, HELO, "fail",
     {"explanation": "%s (2001:db8::10) is not allowed" % N6,
      "pyspf_exp": ("%s (2001:db8::10) is not allowed" % N6.upper(),
                    "pyspf writes the nibbles of an IPv6 %{i} in upper case; RFC 7208 7.4's "
                    "example has them in lower case")}),
    ("mac1.example", IP4, "strong-bad@mac1.example", HELO, "pass", {}),
    ("mac1.example", IP4, "weak-bad@mac1.example", HELO, "fail", {}),
    ("mac2.example", IP4, None, HELO, "pass", {}),
    ("mac3.example", IP4, "user@mac3.example", HELO, "pass", {}),
    ("mac3.example", IP6, "user@mac3.example", HELO, "pass", {}),
    ("mac4.example", IP4, None, HELO, "pass", {}),
    ("mac5.example", IP4, "a-b-c@mac5.example", HELO, "pass", {}),
    ("pmac.example", IP4, None, HELO, "pass", {}),
    ("pmac.example", OTHER4, None, HELO, "fail", {}),
    ("macbad.example", IP4, None, HELO, "permerror", {"problem": "only for explanations"}),
    ("macbad2.example", IP4, None, HELO, "permerror", {}),
    ("macbad3.example", IP4, None, HELO, "permerror", {}),
    ("helo.example", IP4, "", "helo.example", "pass", {"identity": "helo"}),
    ("helo.example", OTHER4, "", "helo.example", "fail", {"identity": "helo"}),
    ("lim10.example", IP4, None, HELO, "fail", {"lookups": 10}),
    ("lim11.example", IP4, None, HELO, "permerror", {"problem": "more than 10"}),
    ("lim10ip.example", IP4, None, HELO, "pass", {"lookups": 10}),
    ("limmatch.example", IP4, None, HELO, "pass",
     {"lookups": 10, "pyspf": ("permerror", "pyspf counts redirect= before the mechanisms run, "
                               "so a match at the 10th term becomes an 11th lookup; RFC 7208 "
                               "4.6.4 counts terms as they are evaluated and redirect= is "
                               "evaluated only when nothing matched (6.1)")}),
    ("inclim.example", IP4, None, HELO, "fail", {"lookups": 10}),
    ("inclim3.example", IP4, None, HELO, "permerror", {}),
    ("ok1.example", IP4, None, HELO, "pass", {"lookups": 10}),
    ("deep1.example", IP4, None, HELO, "permerror", {}),
    ("loop1.example", IP4, None, HELO, "permerror", {}),
    ("self.example", IP4, None, HELO, "permerror", {}),
    ("rloop.example", IP4, None, HELO, "permerror", {}),
    ("rloop1.example", IP4, None, HELO, "permerror", {}),
    ("void2.example", IP4, None, HELO, "fail", {"void": 2}),
    ("void3.example", IP4, None, HELO, "permerror", {"problem": "void lookups"}),
    ("voidmix.example", IP4, None, HELO, "pass", {"void": 2}),
    ("voiddata.example", OTHER4, None, HELO, "permerror", {}),
    ("cname.example", IP4, None, HELO, "pass", {}),
    ("acname.example", IP4, None, HELO, "pass", {}),
    ("short1.example", IP4, None, HELO, "pass", {}),
    ("acloop.example", IP4, None, HELO, "temperror",
     {"pyspf": ("fail", "pyspf takes a CNAME loop for an empty answer; a resolver fails it "
                "(SERVFAIL), a DNS error, so RFC 7208 5 (and 2.6.6) give temperror")}),
    ("chain1.example", IP4, None, HELO, "temperror",
     {"pyspf": ("permerror", "pyspf makes a CNAME chain past 10 a permerror; RFC 7208 sets no "
                "CNAME limit, and a resolver that gives up on a long chain answers SERVFAIL, "
                "a DNS error: temperror (RFC 7208 4.4)")}),
    ("big.example", IP4, None, HELO, "pass", {}),
    ("huge.example", IP4, None, HELO, "permerror",
     {"problem": "longer than 4096",
      "pyspf": ("pass", "gannet's own limit (spf.h SPF_MAX_RECORD): a record past 4096 bytes, "
                "far beyond what RFC 7208 3.4 advises (a 512-byte answer), is refused")}),
    ("hugeother.example", IP4, None, HELO, "pass", {}),
]
for name in MALFORMED:
    CASES.append((name, IP4, None, HELO, "permerror", {}))

# ---- the config ----
cl = gt.cluster()
db = cl.create_db("spf")
d = gt.tmpdir()
moddir = gt.module_dir()
so = os.path.join(gt.BUILDDIR, "modules", "mailauth", ".libs", "mailauth.so")
if not t.ok(os.path.exists(so), "the mailauth module is built"):
    t.done()
shutil.copy(so, os.path.join(moddir, "mailauth.so"))
os.chmod(os.path.join(moddir, "mailauth.so"), 0o755)


def quote(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def local_data(zone):
    out = []
    for name, recs in zone.items():
        for rtype, value in recs:
            if rtype == "TXT":
                chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
                data = " ".join('"%s"' % quote(c) for c in chunks)
            elif rtype == "MX":
                data = "%d %s." % (value[0], value[1])
            elif rtype in ("PTR", "CNAME"):
                data = value + "."
            else:
                data = value
            out.append("%s. 300 IN %s %s" % (name, rtype, data))
    return out


def write_conf(path, dns, mailauth=""):
    text = gt.base_conf(modules='directory = "%s"; load = [ "mailauth" ];' % moddir,
                        extra="dns = {\n%s\n};\n%s" % (dns, mailauth))
    with open(path, "w") as f:
        f.write(text.replace("{dir}", d).replace("{db}", cl.conninfo(db)))


LOCAL = os.path.join(d, "local.conf")
# And a record with a control character (unbound's \DDD escape; not in Z,
# so pyspf does not see it).
CTRL = 'ctrl.example. 300 IN TXT "v=spf1 a:x\\001y.example -all"'
write_conf(LOCAL, "  local_data = [\n%s\n  ];" % ",\n".join(
    '    "%s"' % quote(s) for s in local_data(Z) + [CTRL]))


def gannet_spf(conf, domain, ip, sender, helo):
    args = ["-c", conf, "dns", "spf", domain]
    if ip is not None:
        args += [ip, sender if sender is not None else "postmaster@" + domain, helo]
    r = gt.run_gannet(args)
    out = {"trace": [], "record": [], "term": []}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" ")
        if k in ("trace", "record", "term"):
            out[k].append(v)
        else:
            out[k] = v
    return r, out


r = gt.run_gannet(["-c", LOCAL, "migrate"])
if not t.is_(r.returncode, 0, "migrate"):
    t.diag(r.stderr)
    t.done()


def pyspf(zone, cases, tempfail=()):
    payload = {"zone": {k: [list(x) for x in v] for k, v in zone.items()},
               "tempfail": list(tempfail),
               "cases": [{"ip": ip, "helo": helo,
                          "sender": sender if sender is not None else "postmaster@" + dom}
                         for dom, ip, sender, helo, _res, _c in cases]}
    r = subprocess.run([DEBIAN_PYTHON, os.path.join(SRCDIR, "t", "lib", "spfcheck.py")],
                       input=json.dumps(payload), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        t.diag(r.stderr)
        return None
    return json.loads(r.stdout)


# ---- the CLI's view of a record ----
NOLOAD = os.path.join(d, "noload.conf")
with open(NOLOAD, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db)))
r = gt.run_gannet(["-c", NOLOAD, "dns", "spf", "a.example"])
t.is_(r.returncode, 2, "without mailauth in modules.load, there is no `dns spf`")
t.like(r.stderr, 'no command "dns spf a.example"', "and gannet says so")
r, o = gannet_spf(LOCAL, "acidr.example", None, None, None)
t.is_((r.returncode, o.get("domain"), o.get("status"), o["record"]),
      (0, "acidr.example", "OK", ['"v=spf1 a:host.acidr.example/24//64 -all"']),
      "dns spf DOMAIN: the record the resolver sees")
t.is_(o["term"], ["1 a pass a:host.acidr.example/24//64", "2 all fail -all"],
      "and its parsed terms")
r, o = gannet_spf(LOCAL, "two.example", None, None, None)
t.is_(sorted(o["record"]), ['"v=spf1 +all"', '"v=spf1 -all"'], "two records: both shown")
r, o = gannet_spf(LOCAL, "bad-ip4.example", None, None, None)
t.like(o.get("error", ""), "bad IPv4 address: ip4:192.0.2.300", "a record that does not parse: why")
r, o = gannet_spf(LOCAL, "nothing.example", None, None, None)
t.is_((r.returncode, o.get("status"), o["record"]), (0, "NXDOMAIN", []), "no such domain")
r = gt.run_gannet(["-c", LOCAL, "dns", "spf", "a.example", "not-an-ip"])
t.is_(r.returncode, 2, "a bad IP is a usage error")
t.like(r.stderr, "\"not-an-ip\" is not an IP address", "and says so")
r, o = gannet_spf(LOCAL, "a.example", IP4, None, HELO)
t.ok(any(x.startswith("query A a.example: OK, 1 record") for x in o["trace"]),
     "the evaluation's queries are shown")
t.is_((o.get("result"), o.get("mechanism"), o.get("in"), o.get("lookups"), o.get("void")),
      ("pass", "a", "a.example", "1", "0"), "result, matching term, its record, lookups used")

r, o = gannet_spf(LOCAL, "ctrl.example", IP4, None, HELO)
t.is_(o.get("result"), "permerror", "a control character in a record: permerror")
t.like(o.get("problem", ""), "outside visible ASCII: a:x\\001y.example",
       "the problem shows it escaped")
t.ok("\x01" not in r.stdout, "nothing unprintable reaches the terminal")

# ---- every case, against the RFC and pyspf ----
py = pyspf(Z, CASES)
t.ok(py is not None and len(py) == len(CASES), "pyspf evaluated every case")
py = py or [{}] * len(CASES)


def check_case(conf, case, theirs):
    dom, ip, sender, helo, want, checks = case
    label = "%s from %s%s" % (dom, ip, "" if sender is None else " as <%s>" % sender)
    r, o = gannet_spf(conf, dom, ip, sender, helo)
    got = o.get("result")
    if not t.is_(got, want, "%s: %s" % (label, want)):
        t.diag(r.stdout + r.stderr)
    differs = checks.get("pyspf")
    if differs:
        t.is_(theirs.get("result"), differs[0],
              "%s: pyspf says %s, gannet %s: %s" % (label, differs[0], want, differs[1]))
    else:
        if not t.is_(theirs.get("result"), got, "%s: pyspf agrees" % label):
            t.diag("pyspf: %r" % theirs)
    for key in ("mechanism", "lookups", "void", "identity", "queries"):
        if key in checks:
            v = checks[key]
            t.is_(o.get(key), None if v is None else str(v), "%s: %s %s" % (label, key, v))
    if "problem" in checks:
        t.like(o.get("problem", ""), checks["problem"], "%s: says why" % label)
    if "explanation" in checks:
        t.is_(o.get("explanation"), checks["explanation"], "%s: explanation" % label)
    if "pyspf_exp" in checks:
        t.is_(theirs.get("explanation"), checks["pyspf_exp"][0],
              "%s: pyspf's explanation differs: %s" % (label, checks["pyspf_exp"][1]))
    elif want == "fail" and not differs:
        # pyspf gives its default text when there is no explanation.
        mine = o.get("explanation") or "SPF fail - not authorized"
        t.is_(theirs.get("explanation"), mine, "%s: pyspf's explanation agrees" % label)
    if got in ("pass", "fail", "softfail", "neutral") and not differs and \
            theirs.get("mechanism") is not None:
        t.is_(o.get("mechanism"), theirs.get("mechanism"), "%s: pyspf's matching term agrees" % label)


for case, theirs in zip(CASES, py):
    check_case(LOCAL, case, theirs)

# ---- resolvers: server failures and timeouts ----
portfile = os.path.join(d, "dns.port")
querylog = os.path.join(d, "dns.queries")
ta = os.path.join(d, "trust-anchors")
server = subprocess.Popen([DEBIAN_PYTHON, os.path.join(SRCDIR, "t", "lib", "dnsserver.py"),
                           portfile, querylog, ta],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
for _ in range(600):
    if os.path.exists(portfile) or server.poll() is not None:
        break
    time.sleep(0.05)
if not t.ok(os.path.exists(portfile), "the test DNS server is up"):
    server.kill()
    t.done()
port = int(open(portfile).read())
Z2 = {}
Z2["inctemp.example"] = [("TXT", "v=spf1 include:fail.example -all")]
Z2["atemp.example"] = [("TXT", "v=spf1 ip4:203.0.113.1 a:fail.example -all")]
Z2["slowinc.example"] = [("TXT", "v=spf1 include:slow.example +all")]
Z2["alias.client.example"] = [("TXT", "v=spf1 a:alias.example -all")]
REMOTE = os.path.join(d, "remote.conf")
write_conf(REMOTE, ('  resolvers = [ "127.0.0.1@%d" ];\n  trust_anchor = "";\n  timeout = "1s";\n'
                   '  local_data = [\n%s\n  ];') % (port, ",\n".join('    "%s"' % quote(s)
                                                   for s in local_data(Z2))))
CASES2 = [
    ("fail.example", IP4, None, HELO, "temperror", {"problem": "SERVFAIL"}),
    ("slow.example", IP4, None, HELO, "temperror", {"problem": "TIMEOUT"}),
    ("inctemp.example", IP4, None, HELO, "temperror", {}),
    ("atemp.example", IP4, None, HELO, "temperror", {}),
    ("slowinc.example", IP4, None, HELO, "temperror", {}),
    ("alias.client.example", "192.0.2.11", None, HELO, "pass", {}),
]
Z2p = dict(Z2)
Z2p["alias.example"] = [("CNAME", "mx1.mx.example")]
Z2p["mx1.mx.example"] = [("A", "192.0.2.11")]
py2 = pyspf(Z2p, CASES2, tempfail=["fail.example", "slow.example"]) or [{}] * len(CASES2)
for case, theirs in zip(CASES2, py2):
    check_case(REMOTE, case, theirs)

# The whole evaluation's deadline (mailauth.spf_timeout): an include of a
# name the resolver would wait 5 s for is cut off after 1 s, a temperror
# (the record itself is local data, so showing it takes no time).
DEADLINE = os.path.join(d, "deadline.conf")
write_conf(DEADLINE, ('  resolvers = [ "127.0.0.1@%d" ];\n  trust_anchor = "";\n  timeout = "5s";\n'
                     '  local_data = [\n%s\n  ];') % (port, ",\n".join('    "%s"' % quote(s)
                                                     for s in local_data(Z2))),
           'mailauth = { spf_timeout = "1s"; };\n')
started = time.time()
r, o = gannet_spf(DEADLINE, "slowinc.example", IP4, None, HELO)
took = time.time() - started
t.is_((o.get("result"), o.get("problem")), ("temperror", "no result within 1000 ms"),
      "mailauth.spf_timeout: past it, temperror")
t.ok(took < 4.5, "and the command did not wait for the resolver's 5 s (%.1f s)" % took)
BADSET = os.path.join(d, "badset.conf")
write_conf(BADSET, '  local_data = [ "a.example. IN A 192.0.2.1" ];', 'mailauth = { spf_timeout = "0s"; };\n')
r = gt.run_gannet(["-c", BADSET, "dns", "spf", "a.example"])
t.ok(r.returncode != 0, "a bad mailauth.spf_timeout: the command refuses to run")
t.like(r.stderr, "mailauth.spf_timeout must be from 1s to 10m at badset.conf:", "with file and line")
server.kill()
server.wait()
t.done()
