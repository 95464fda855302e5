#!/usr/bin/env python3
"""
t/integration/190-dns.t: `gannet dns lookup TYPE NAME`, the core's resolver
(core/dns/) as the server uses it, without any network:

- (a) dns.local_data: MX sorted by preference, A, AAAA, TXT strings joined,
  PTR by IP address, an IDNA name; with local data only every other name
  is NXDOMAIN; NODATA for another type; a bad name is refused before it
  goes out; a bad local-data entry is a config error with file and line;
- (b) dns.resolvers at t/lib/dnsserver.py on loopback: MX, A, AAAA, TXT,
  PTR, a CNAME followed, NXDOMAIN, NODATA, SERVFAIL, a name the server
  never answers (TIMEOUT after dns.timeout), each with its TTL and rcode,
  and the server's query log shows the questions reached it;
- DNSSEC with the server's trust anchors (dns.trust_anchor): an answer
  signed by the anchored key is secure; one with a signature over other
  data is bogus (SERVFAIL, no records, the reason); a zone whose anchor has
  no DNSKEY is bogus; a zone outside every anchor is insecure; the same
  signed answer without a trust anchor ("" = validation off) is insecure.
- bad dns settings are config errors with file and line.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gannettest import (DEBIAN_PYTHON, IS_ROOT, RUN_USER, SRCDIR, Tap, run_gannet,
                        tmpdir)

t = Tap()
d = tmpdir()
USER = 'user = "%s";\n' % RUN_USER if IS_ROOT else ""


def conf(name, dns):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(USER + "dns = {\n" + dns + "\n};\n")
    return path


def lookup(path, rtype, name):
    """Runs gannet dns lookup; returns (exit code, {key: value}, [records], stdout+stderr)."""
    r = run_gannet(["-c", path, "dns", "lookup", rtype, name])
    fields, records = {}, []
    for line in r.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("name", "type", "rcode", "status", "security", "ttl", "canonical", "error"):
            fields[key] = value
        else:
            records.append(line)
    return r.returncode, fields, records, r.stdout + r.stderr


# ---- (a) local data ----
local = conf("local.conf", """
  local_data = [
    "a.example. 300 IN MX 20 mx2.a.example.",
    "a.example. 300 IN MX 10 MX1.a.example.",
    "a.example. 120 IN A 192.0.2.1",
    "a.example. 120 IN AAAA 2001:db8::1",
    "a.example. 60 IN TXT \\"v=spf1 \\" \\"-all\\"",
    "1.2.0.192.in-addr.arpa. 600 IN PTR a.example.",
    "xn--bcher-kva.example. 30 IN A 192.0.2.9"
  ];""")
rc, f, recs, out = lookup(local, "MX", "a.example")
t.is_((rc, f.get("rcode"), f.get("status"), f.get("security"), f.get("ttl")),
      (0, "NOERROR", "OK", "insecure", "300"), "local data: MX answered, NOERROR, insecure, TTL 300")
t.is_(recs, ["MX 10 mx1.a.example", "MX 20 mx2.a.example"],
      "local data: MX sorted by preference, lower case")
rc, f, recs, out = lookup(local, "A", "A.Example.")
t.is_((rc, f.get("name"), recs), (0, "a.example", ["A 192.0.2.1"]), "local data: A")
rc, f, recs, out = lookup(local, "AAAA", "a.example")
t.is_(recs, ["AAAA 2001:db8::1"], "local data: AAAA")
rc, f, recs, out = lookup(local, "TXT", "a.example")
t.is_((recs, f.get("ttl")), (['TXT "v=spf1 -all"'], "60"), "local data: TXT strings joined")
rc, f, recs, out = lookup(local, "PTR", "192.0.2.1")
t.is_((f.get("name"), recs), ("1.2.0.192.in-addr.arpa", ["PTR a.example"]),
      "local data: PTR of an IP address")
rc, f, recs, out = lookup(local, "A", "b\u00fccher.example")
t.is_((f.get("name"), recs), ("xn--bcher-kva.example", ["A 192.0.2.9"]),
      "a U-label name is asked as its A-label")
rc, f, recs, out = lookup(local, "A", "nothing.example")
t.is_((rc, f.get("status"), f.get("rcode"), recs), (0, "NXDOMAIN", "NXDOMAIN", []),
      "with local data only, another name is NXDOMAIN")
rc, f, recs, out = lookup(local, "TLSA", "a.example")
t.is_((rc, f.get("status"), f.get("rcode")), (0, "NODATA", "NOERROR"),
      "a type the name lacks is NODATA")
rc, f, recs, out = lookup(local, "A", "a..example")
t.is_((rc, f.get("status"), f.get("error")), (1, "BADNAME", "empty label"),
      "a bad name is refused before it goes out")
rc, f, recs, out = lookup(local, "A", "x" * 64 + ".example")
t.is_((rc, f.get("status")), (1, "BADNAME"), "a label of 64 is refused")
r = run_gannet(["-c", local, "dns", "lookup", "SOA", "a.example"])
t.is_(r.returncode, 2, "an unsupported type is a usage error")
t.like(r.stderr, "unknown record type", "and says so")

bad = conf("bad.conf", """
  local_data = [ "ok.example. IN A 192.0.2.1",
                 "broken.example. IN NOSUCHTYPE 1" ];
  resolvers = [ "192.0.2.1@70000", "resolver.example" ];
  timeout = 0;""")
r = run_gannet(["-c", bad, "dns", "lookup", "A", "ok.example"])
t.is_(r.returncode, 1, "bad dns settings: the command refuses to run")
# The file: the user line, "dns = {", an empty line, then the settings.
L = 2 if IS_ROOT else 1
t.like(r.stderr, "dns.local_data[1] at bad.conf:%d: \"broken.example. IN NOSUCHTYPE 1\" is not a resource record" % (L + 3),
       "a bad local-data entry: its file and line")
t.like(r.stderr, "\"192.0.2.1@70000\" is not an IP address or IP@port at bad.conf:%d" % (L + 4),
       "a bad resolver: file and line")
t.like(r.stderr, "\"resolver.example\" is not an IP address", "a name is not a resolver")
t.like(r.stderr, "dns.timeout: must be longer than 0 at bad.conf:%d" % (L + 5), "timeout 0 is refused")
r = run_gannet(["-c", bad, "config", "check"])
t.like(r.stderr, "dns.local_data[1] at bad.conf:%d" % (L + 3), "config check says it too")

# ---- (b) a test DNS server on loopback ----
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
    t.diag(server.stderr.read().decode(errors="replace"))
    t.done()
port = int(open(portfile).read())
os.chmod(ta, 0o644)
remote = conf("remote.conf", """
  resolvers = [ "127.0.0.1@%d" ];
  trust_anchor = "%s";
  timeout = "2s";""" % (port, ta))

rc, f, recs, out = lookup(remote, "MX", "mx.example")
t.is_((rc, f.get("rcode"), f.get("status"), f.get("security"), f.get("ttl")),
      (0, "NOERROR", "OK", "insecure", "300"), "server: MX answered, insecure (no anchor covers it)")
t.is_(recs, ["MX 10 mx1.mx.example", "MX 20 mx2.mx.example"], "server: MX sorted by preference")
rc, f, recs, out = lookup(remote, "A", "mx1.mx.example")
t.is_((recs, f.get("ttl")), (["A 192.0.2.11"], "60"), "server: A with its TTL")
rc, f, recs, out = lookup(remote, "AAAA", "mx1.mx.example")
t.is_(recs, ["AAAA 2001:db8::11"], "server: AAAA")
rc, f, recs, out = lookup(remote, "TXT", "txt.example")
t.is_(sorted(recs), ['TXT "second"', 'TXT "v=spf1 -all"'],
      "server: TXT, each record's strings joined")
rc, f, recs, out = lookup(remote, "PTR", "1.2.3.4")
t.is_((f.get("name"), recs), ("4.3.2.1.in-addr.arpa", ["PTR host.example"]), "server: PTR")
rc, f, recs, out = lookup(remote, "A", "alias.example")
t.is_((f.get("canonical"), recs), ("mx1.mx.example", ["A 192.0.2.11"]),
      "server: a CNAME is followed, the canonical name given")
rc, f, recs, out = lookup(remote, "A", "nx.example")
t.is_((rc, f.get("rcode"), f.get("status")), (0, "NXDOMAIN", "NXDOMAIN"), "server: NXDOMAIN")
rc, f, recs, out = lookup(remote, "AAAA", "mx.example")
t.is_((rc, f.get("rcode"), f.get("status"), recs), (0, "NOERROR", "NODATA", []),
      "server: NOERROR without records is NODATA")
rc, f, recs, out = lookup(remote, "A", "fail.example")
t.is_((rc, f.get("rcode"), f.get("status"), f.get("ttl")), (1, "SERVFAIL", "SERVFAIL", "0"),
      "server: SERVFAIL")
rc, f, recs, out = lookup(remote, "A", "slow.example")
t.is_((rc, f.get("rcode"), f.get("status")), (1, "none", "TIMEOUT"),
      "server: no answer within dns.timeout is TIMEOUT")
t.like(f.get("error"), "no answer within 2000 ms", "and says how long it waited")

with open(querylog) as fh:
    asked = fh.read().split("\n")
t.ok("mx.example. MX" in asked and "4.3.2.1.in-addr.arpa. PTR" in asked and
     "slow.example. A" in asked, "the questions reached the test server")

# ---- DNSSEC ----
rc, f, recs, out = lookup(remote, "A", "www.secure.example")
t.is_((rc, f.get("status"), f.get("security"), recs), (0, "OK", "secure", ["A 192.0.2.80"]),
      "an answer signed by the anchored key is secure")
rc, f, recs, out = lookup(remote, "A", "badsig.secure.example")
t.is_((rc, f.get("status"), f.get("security"), recs), (1, "SERVFAIL", "bogus", []),
      "a signature over other data: bogus, SERVFAIL, no records")
t.like(f.get("error"), "signature", "and the reason")
rc, f, recs, out = lookup(remote, "A", "signed.example")
t.is_((f.get("status"), f.get("security"), recs), ("SERVFAIL", "bogus", []),
      "an anchored zone without DNSKEY: bogus")
rc, f, recs, out = lookup(remote, "A", "plain.example")
t.is_((f.get("status"), f.get("security"), recs), ("OK", "insecure", ["A 192.0.2.54"]),
      "a zone outside every anchor: insecure")
novalidate = conf("novalidate.conf", """
  resolvers = [ "127.0.0.1@%d" ];
  trust_anchor = "";
  timeout = "2s";""" % port)
rc, f, recs, out = lookup(novalidate, "A", "www.secure.example")
t.is_((f.get("status"), f.get("security")), ("OK", "insecure"),
      "validation off: the signed answer is not called secure")
rc, f, recs, out = lookup(novalidate, "A", "badsig.secure.example")
t.is_((f.get("status"), f.get("security"), recs), ("OK", "insecure", ["A 192.0.2.81"]),
      "validation off: a bad signature goes unnoticed, insecure")

server.kill()
server.wait()
t.done()
