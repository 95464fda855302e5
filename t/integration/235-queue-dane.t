#!/usr/bin/env python3
"""
t/integration/235-queue-dane.t: DANE (RFC 7672) in the queue's SMTP
transport (core/queue/transport-smtp.c, core/dns/dane.c), with the DNS
answered by t/lib/dnssecserver.py from a DNSSEC-signed zone (dane.example.,
its key the resolver's trust anchor) and an unsigned one (insecure.example.),
and loopback SMTP servers (t/lib/smtpsink.py) on 127.0.0.1-127.0.0.7:

- the resolver sees the signed zone as secure (`gannet dns lookup TLSA`),
  a record signed over other data as bogus, the unsigned zone as insecure;
  `gannet dns tlsa` says whether DANE applies;
- DANE-EE 3 1 1 (a self-signed certificate: no name, no CA) and DANE-TA
  2 0 1 (a test CA in the server's chain, the leaf naming the MX host):
  delivered over TLS, the attempt recorded with tls_policy dane, the TLS
  version and cipher (also in `gannet queue retired print`);
- a certificate that matches no record: not delivered (a temporary
  failure, 4.7.5), then delivered once the record is fixed; a domain whose
  second MX matches: delivered there;
- a server without STARTTLS where TLSA records exist: nothing sent;
- bogus TLSA records: the host is not even connected to (RFC 7672 2.1.1);
  the next MX is used;
- secure TLSA records none of which is usable (PKIX-EE): TLS required,
  policy dane-unauthenticated;
- an insecure zone with TLSA records: opportunistic TLS as without DANE,
  policy opportunistic; a server without STARTTLS there: plain text,
  policy none;
- a connection parked by an opportunistic delivery to the same IP is not
  reused for a DANE delivery;
- an MX host name that is a CNAME (RFC 7672 2.2.2): TLSA records looked up
  at the expanded name first (found there: the original name's never
  asked), then at the original name; DANE-TA accepts a leaf naming the
  expanded name only; bogus records at the expanded name skip the host;
- the next-hop domain as DANE-TA reference identifier, with a trust anchor
  given as a public key in full (2 1 0) that the chain does not carry:
  the leaf's signature is checked with it; a leaf another CA signed is
  refused, saying so; the same key by digest (2 1 1) cannot be checked
  and is refused, saying why; a connection whose leaf matched by naming
  one next-hop domain is not reused for another domain on the same host.
"""
import atexit
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
PORT = gt.free_port()


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True).stdout


def spki_sha256(cert):
    """The TLSA 3 1 1 data of a certificate: SHA-256 of its SubjectPublicKeyInfo."""
    pub = openssl("x509", "-in", cert, "-pubkey", "-noout")
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                         capture_output=True).stdout
    return subprocess.run(["openssl", "dgst", "-sha256", "-hex"], input=der, check=True,
                          capture_output=True).stdout.decode().split()[-1]


def cert_sha256(cert):
    """The TLSA 2 0 1 data: SHA-256 of the whole certificate (DER)."""
    der = openssl("x509", "-in", cert, "-outform", "DER")
    return subprocess.run(["openssl", "dgst", "-sha256", "-hex"], input=der, check=True,
                          capture_output=True).stdout.decode().split()[-1]


# ---- certificates ----
ee_cert, ee_key = gt.make_cert(d, "ee", "not-the-host.invalid")     # DANE-EE: any name
bad_cert, bad_key = gt.make_cert(d, "bad", "mx-bad.dane.example")
ins_cert, ins_key = gt.make_cert(d, "ins", "mx.insecure.example")
ca_cert, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
openssl("req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=Gannet Test DANE CA", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca_key, "-out", ca_cert)
ta_key, ta_csr, ta_leaf = (os.path.join(d, n) for n in ("ta.key", "ta.csr", "ta-leaf.pem"))
openssl("req", "-new", "-nodes", "-subj", "/CN=mx-ta.dane.example", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-keyout", ta_key, "-out", ta_csr)
ext = os.path.join(d, "ta.ext")
with open(ext, "w") as f:
    f.write("subjectAltName=DNS:mx-ta.dane.example\nbasicConstraints=CA:FALSE\n")
openssl("x509", "-req", "-in", ta_csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days",
        "10", "-extfile", ext, "-out", ta_leaf)
ta_chain = os.path.join(d, "ta-chain.pem")
with open(ta_chain, "w") as f:
    f.write(open(ta_leaf).read() + open(ca_cert).read())
os.chmod(ta_key, 0o644)
os.chmod(ca_key, 0o600)
EE = spki_sha256(ee_cert)
CA = cert_sha256(ca_cert)


def spki_hex(cert):
    """The TLSA 2 1 0 / 3 1 0 data: the SubjectPublicKeyInfo in full (DER)."""
    pub = openssl("x509", "-in", cert, "-pubkey", "-noout")
    return subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                          capture_output=True).stdout.hex()


def signed_leaf(name, sans, issuer_cert, issuer_key):
    """A leaf for sans (DNS names) that issuer signed: (cert, key)."""
    key, csr, cert = (os.path.join(d, name + x) for x in (".key", ".csr", ".pem"))
    openssl("req", "-new", "-nodes", "-subj", "/CN=" + sans[0], "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-keyout", key, "-out", csr)
    extf = os.path.join(d, name + ".ext")
    with open(extf, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % ",".join("DNS:" + n for n in sans))
    openssl("x509", "-req", "-in", csr, "-CA", issuer_cert, "-CAkey", issuer_key, "-CAcreateserial",
            "-days", "10", "-extfile", extf, "-out", cert)
    os.chmod(key, 0o644)
    return cert, key


# CNAME: a leaf naming only the expanded name, not the MX host name (the
# alias) that the MX record gives.
cn_leaf, cn_key = signed_leaf("cn", ["mx-cn.dane.example"], ca_cert, ca_key)
cn_chain = os.path.join(d, "cn-chain.pem")
with open(cn_chain, "w") as f:
    f.write(open(cn_leaf).read() + open(ca_cert).read())
CN_EE = spki_sha256(cn_leaf)
# The next-hop domain: a second CA whose key alone is in the TLSA record;
# the server sends only its leaf, which names only the recipient domain.
ca2_cert, ca2_key = os.path.join(d, "ca2.pem"), os.path.join(d, "ca2.key")
openssl("req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=Gannet Test DANE CA 2", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca2_key, "-out", ca2_cert)
hop_leaf, hop_key = signed_leaf("hop", ["hop.dane.example"], ca2_cert, ca2_key)
hopbad_leaf, hopbad_key = signed_leaf("hopbad", ["hopbad.dane.example"], ca_cert, ca_key)
CA2_KEY = spki_hex(ca2_cert)
t.ok(re.fullmatch(r"[0-9a-f]{64}", EE) and re.fullmatch(r"[0-9a-f]{64}", CA),
     "the TLSA data of the test certificates")


# ---- the servers ----
class Sink:
    def __init__(self, name, ip, cert=None, key=None):
        self.record = os.path.join(d, name + ".jsonl")
        self.script = os.path.join(d, name + ".json")
        with open(self.script, "w") as f:
            json.dump({}, f)
        args = [sys.executable, SINK, "--host", ip, "--port", str(PORT), "--record", self.record,
                "--script", self.script]
        if cert:
            args += ["--cert", cert, "--key", key]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        atexit.register(self.stop)
        line = self.proc.stdout.readline().split()
        self.ok = len(line) == 2 and line[0] == "ready"

    def events(self, event=None):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if event is None or e["event"] == event]

    def messages(self):
        return [(r, m["tls"]) for m in self.events("message") for r in m["rcpts"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


sinks = {
    "ee": Sink("ee", "127.0.0.1", ee_cert, ee_key),
    "ta": Sink("ta", "127.0.0.2", ta_chain, ta_key),
    "bad": Sink("bad", "127.0.0.3", bad_cert, bad_key),
    "notls": Sink("notls", "127.0.0.4"),
    "bogus": Sink("bogus", "127.0.0.5", ee_cert, ee_key),
    "ins": Sink("ins", "127.0.0.6", ins_cert, ins_key),
    "cn": Sink("cn", "127.0.0.7", cn_chain, cn_key),
    "hop": Sink("hop", "127.0.0.8", hop_leaf, hop_key),
    "hopbad": Sink("hopbad", "127.0.0.9", hopbad_leaf, hopbad_key),
}
t.ok(all(s.ok for s in sinks.values()), "nine sinks listen on 127.0.0.1-9, port %d" % PORT)

ZONE = os.path.join(d, "zone")
ZONE_TEXT = """
ee.dane.example. 60 IN MX 10 mx-ee.dane.example.
_25._tcp.mx.dane.example. 60 IN TLSA 3 1 1 {ee}
mx-ee.dane.example. 60 IN A 127.0.0.1
_{p}._tcp.mx-ee.dane.example. 60 IN TLSA 3 1 1 {ee}
ta.dane.example. 60 IN MX 10 mx-ta.dane.example.
mx-ta.dane.example. 60 IN A 127.0.0.2
_{p}._tcp.mx-ta.dane.example. 60 IN TLSA 2 0 1 {ca}
bad.dane.example. 60 IN MX 10 mx-bad.dane.example.
fallback.dane.example. 60 IN MX 10 mx-bad.dane.example.
fallback.dane.example. 60 IN MX 20 mx-ee.dane.example.
mx-bad.dane.example. 60 IN A 127.0.0.3
_{p}._tcp.mx-bad.dane.example. 60 IN TLSA 3 1 1 {bad_tlsa}
notls.dane.example. 60 IN MX 10 mx-notls.dane.example.
mx-notls.dane.example. 60 IN A 127.0.0.4
_{p}._tcp.mx-notls.dane.example. 60 IN TLSA 3 1 1 {ee}
bogus.dane.example. 60 IN MX 10 mx-bogus.dane.example.
bogusnext.dane.example. 60 IN MX 10 mx-bogus.dane.example.
bogusnext.dane.example. 60 IN MX 20 mx-ee.dane.example.
mx-bogus.dane.example. 60 IN A 127.0.0.5
BOGUS _{p}._tcp.mx-bogus.dane.example. 60 IN TLSA 3 1 1 {ee}
unusable.dane.example. 60 IN MX 10 mx-unusable.dane.example.
mx-unusable.dane.example. 60 IN A 127.0.0.1
_{p}._tcp.mx-unusable.dane.example. 60 IN TLSA 1 1 1 {ee}
insecure.example. 60 IN MX 10 mx.insecure.example.
mx.insecure.example. 60 IN A 127.0.0.6
_{p}._tcp.mx.insecure.example. 60 IN TLSA 3 1 1 {wrong}
plain.example. 60 IN MX 10 mx.plain.example.
mx.plain.example. 60 IN A 127.0.0.4
weak.example. 60 IN MX 10 mx.weak.example.
mx.weak.example. 60 IN A 127.0.0.1
cname.dane.example. 60 IN MX 10 alias.dane.example.
alias.dane.example. 60 IN CNAME mx-cn.dane.example.
mx-cn.dane.example. 60 IN A 127.0.0.7
_{p}._tcp.mx-cn.dane.example. 60 IN TLSA 2 0 1 {ca}
cname2.dane.example. 60 IN MX 10 alias2.dane.example.
alias2.dane.example. 60 IN CNAME mx-cn2.dane.example.
mx-cn2.dane.example. 60 IN A 127.0.0.7
_{p}._tcp.alias2.dane.example. 60 IN TLSA 3 1 1 {cn_ee}
cname3.dane.example. 60 IN MX 10 alias3.dane.example.
alias3.dane.example. 60 IN CNAME mx-cn3.dane.example.
mx-cn3.dane.example. 60 IN A 127.0.0.7
BOGUS _{p}._tcp.mx-cn3.dane.example. 60 IN TLSA 3 1 1 {cn_ee}
_{p}._tcp.alias3.dane.example. 60 IN TLSA 3 1 1 {cn_ee}
hop.dane.example. 60 IN MX 10 mx-hop.dane.example.
mx-hop.dane.example. 60 IN A 127.0.0.8
_{p}._tcp.mx-hop.dane.example. 60 IN TLSA 2 1 0 {ca2_key}
hopbad.dane.example. 60 IN MX 10 mx-hopbad.dane.example.
mx-hopbad.dane.example. 60 IN A 127.0.0.9
_{p}._tcp.mx-hopbad.dane.example. 60 IN TLSA 2 1 0 {ca2_key}
hop2.dane.example. 60 IN MX 10 mx-hop.dane.example.
hopdigest.dane.example. 60 IN MX 10 hop.dane.example.
hop.dane.example. 60 IN A 127.0.0.8
_{p}._tcp.hop.dane.example. 60 IN TLSA 2 1 1 {ca2_digest}
"""


def write_zone(bad_tlsa):
    tmp = ZONE + ".tmp"
    with open(tmp, "w") as f:
        f.write(ZONE_TEXT.format(p=PORT, ee=EE, ca=CA, bad_tlsa=bad_tlsa, wrong="ab" * 32, cn_ee=CN_EE,
                                 ca2_key=CA2_KEY, ca2_digest=spki_sha256(ca2_cert)))
    os.rename(tmp, ZONE)


write_zone(EE)   # mx-bad's record is ee's key: its own certificate does not match
portfile, querylog, ta = (os.path.join(d, n) for n in ("dns.port", "dns.log", "ta.key.dns"))
dns = subprocess.Popen([gt.DEBIAN_PYTHON, os.path.join(gt.SRCDIR, "t", "lib", "dnssecserver.py"),
                        portfile, querylog, ta, ZONE])
atexit.register(lambda: dns.poll() is None and (dns.kill(), dns.wait()))
deadline = time.time() + 20
while not os.path.exists(portfile) and time.time() < deadline and dns.poll() is None:
    time.sleep(0.1)
t.ok(os.path.exists(portfile), "the DNSSEC test server runs")
DNS_PORT = int(open(portfile).read())

DNS = 'dns = { resolvers = [ "127.0.0.1@%d" ]; trust_anchor = "%s"; timeout = "5s"; };\n' % (DNS_PORT, ta)
cl = gt.cluster()
db = cl.create_db("queuedane")
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf(extra="queue = { smtp_port = %d; };\n%s" % (PORT, DNS))
            .replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def g(*args, stdin=None):
    r = gt.run_gannet(["-c", conf] + list(args), input=stdin)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        t.ok(False, "gannet %s: no sanitizer report" % " ".join(args))
        t.diag(r.stderr)
    return r


def sql(q):
    return cl.psql(q, db)


def queue(to):
    m = "From: alice@example.com\nTo: %s\nSubject: to %s\n\nHello.\n" % (to, to)
    return g("queue", "add", "--from", "alice@example.com", "--to", to, stdin=m).returncode


def attempts(rcpt):
    """(host, code, enhanced, tls_version, tls_cipher, tls_policy, text) of each attempt, queued
    or retired."""
    out = []
    for table, rtable in (("gn_queue_attempts", "gn_queue_recipients"),
                          ("gn_queue_retired_attempts", "gn_queue_retired")):
        rows = sql("SELECT a.host, a.code, a.enhanced, a.tls_version, a.tls_cipher, a.tls_policy, "
                   "a.text FROM %s a JOIN %s r ON r.account_id = a.account_id AND "
                   "r.id = a.recipient_id WHERE r.rcpt = '%s' ORDER BY a.seq" % (table, rtable, rcpt))
        out += [tuple(line.split("|")) for line in rows.splitlines() if line]
    return out


def result(rcpt):
    return sql("SELECT result FROM gn_queue_retired WHERE rcpt = '%s'" % rcpt) or "queued"


def run():
    return g("queue", "run").stdout


def retry_now(rcpt):
    sql("UPDATE gn_queue_recipients SET next_attempt = now() - interval '1 second' WHERE rcpt = '%s'"
        % rcpt)


# ---- the resolver and `gannet dns` ----
r = g("dns", "lookup", "TLSA", "_25._tcp.mx.dane.example")
t.like(r.stdout, "status OK\nsecurity secure\n", "dns lookup TLSA _25._tcp.mx.dane.example: security secure")
r = g("dns", "tlsa", "mx.dane.example")
t.like(r.stdout, "name _25._tcp.mx.dane.example\n", "dns tlsa: port 25 by default")
r = g("dns", "lookup", "TLSA", "_%d._tcp.mx-ee.dane.example" % PORT)
t.like(r.stdout, "security secure\n", "dns lookup TLSA of the signed zone: security secure")
t.like(r.stdout, "TLSA 3 1 1 %s\n" % EE, "and the record")
r = g("dns", "lookup", "MX", "ee.dane.example")
t.like(r.stdout, "security secure\n", "the MX answer is secure")
r = g("dns", "lookup", "AAAA", "mx-ee.dane.example")
t.like(r.stdout, "status NODATA\nsecurity secure\n", "NODATA proven by NSEC: secure")
r = g("dns", "lookup", "TLSA", "_%d._tcp.mx-bogus.dane.example" % PORT)
t.like(r.stdout, "status SERVFAIL\nsecurity bogus\n", "a record signed over other data: bogus")
r = g("dns", "lookup", "TLSA", "_%d._tcp.mx.insecure.example" % PORT)
t.like(r.stdout, "status OK\nsecurity insecure\n", "the unsigned zone: insecure")
r = g("dns", "tlsa", "mx-ee.dane.example", str(PORT))
t.like(r.stdout, "record 1 usable DANE-EE\ndane yes:", "dns tlsa: usable DANE-EE, DANE applies")
r = g("dns", "tlsa", "mx-unusable.dane.example", str(PORT))
t.like(r.stdout, "record 1 unusable (PKIX-EE", "dns tlsa: PKIX-EE is unusable for SMTP")
t.like(r.stdout, "dane tls-required:", "and TLS is required without authentication")
r = g("dns", "tlsa", "mx-bogus.dane.example", str(PORT))
t.like(r.stdout, "dane host-skipped:", "dns tlsa: bogus records: the host is skipped")
r = g("dns", "tlsa", "mx.insecure.example", str(PORT))
t.like(r.stdout, "dane no: the records are insecure", "dns tlsa: insecure records: no DANE")
r = g("dns", "tlsa", "mx-nothing.dane.example", str(PORT))
t.like(r.stdout, "dane no: no TLSA records (a secure denial)", "dns tlsa: a secure NXDOMAIN: no DANE")
t.is_(r.returncode, 0, "dns tlsa exits 0 when the DNS answered")
t.is_(g("dns", "tlsa", "mx-ee.dane.example", "99999").returncode, 2, "dns tlsa: a bad port")

t.is_(g("migrate").returncode, 0, "migrate")
t.is_(g("config", "domain", "add", "example.com").returncode, 0, "domain")
t.is_(g("config", "account", "add", "alice", "alice@example.com").returncode, 0, "account alice")
t.is_(g("queue", "retired", "keep", "alice", "1d").returncode, 0, "alice keeps retired records")

# ---- an opportunistic connection parked, then DANE-EE to the same IP ----
queue("first@weak.example")
t.is_(run(), "1 delivery attempted\n", "weak.example (insecure) delivered first")
a = attempts("first@weak.example")
t.is_([x[5] for x in a], ["opportunistic"], "its attempt: policy opportunistic")
queue("a@weak.example")
queue("b@ee.dane.example")
queue("c@ee.dane.example")
t.is_(run(), "3 deliveries attempted\n", "then weak.example and ee.dane.example twice in one run")
t.is_(result("b@ee.dane.example"), "delivered", "DANE-EE 3 1 1: delivered")
a = attempts("b@ee.dane.example")
t.is_(len(a), 1, "one attempt")
t.is_((a[0][0], a[0][1], a[0][5]), ("mx-ee.dane.example", "250", "dane"),
      "the attempt: host, 250, tls_policy dane")
t.ok(a[0][3].startswith("TLS1.") and a[0][4] != "", "with the TLS version (%s) and cipher (%s)"
     % (a[0][3], a[0][4]))
t.is_(result("c@ee.dane.example"), "delivered", "the second message too")
conns = {}
for e in sinks["ee"].events("message"):
    conns.setdefault(e["conn"], []).extend(e["rcpts"])
weak_conn = [c for c, rc in conns.items() if "a@weak.example" in rc]
dane_conn = [c for c, rc in conns.items() if "b@ee.dane.example" in rc]
t.ok(weak_conn and dane_conn and weak_conn != dane_conn,
     "the DANE delivery did not take the opportunistic connection parked to the same IP")
t.ok(dane_conn and "c@ee.dane.example" in conns[dane_conn[0]],
     "the second DANE delivery reused the DANE connection")
t.ok(all(tls for _r, tls in sinks["ee"].messages()), "every message to 127.0.0.1 over TLS")
rid = sql("SELECT id FROM gn_queue_retired WHERE rcpt = 'b@ee.dane.example'")
r = g("queue", "retired", "print", rid)
t.like(r.stdout, "tls=%s cipher=%s policy=dane\n" % (a[0][3], a[0][4]),
       "queue retired print shows the attempt's TLS and policy")

# ---- DANE-TA 2 0 1 ----
queue("d@ta.dane.example")
t.is_(run(), "1 delivery attempted\n", "ta.dane.example attempted")
t.is_(result("d@ta.dane.example"), "delivered", "DANE-TA 2 0 1 (the CA in the chain): delivered")
a = attempts("d@ta.dane.example")
t.is_([(x[1], x[5]) for x in a], [("250", "dane")], "one attempt, 250, policy dane")
t.is_(sinks["ta"].messages(), [("d@ta.dane.example", True)], "the server got it over TLS")

# ---- no match: temporary; fixed record; another MX ----
queue("e@bad.dane.example")
queue("f@fallback.dane.example")
t.is_(run(), "2 deliveries attempted\n", "bad and fallback attempted")
t.is_(result("e@bad.dane.example"), "queued", "a certificate that matches no record: not delivered")
a = attempts("e@bad.dane.example")
t.is_([(x[0], x[1], x[2], x[5]) for x in a], [("mx-bad.dane.example", "0", "4.7.5", "dane")],
      "a temporary failure, 4.7.5, policy dane")
t.like(a[0][6] if a else "", "no TLSA record matches", "the reason says so")
t.is_(sinks["bad"].messages(), [], "nothing sent to the mismatching server")
t.ok(len(sinks["bad"].events("tls")) >= 1, "it got as far as the handshake")
t.is_(result("f@fallback.dane.example"), "delivered", "the domain with a second, matching MX: delivered")
a = attempts("f@fallback.dane.example")
t.is_([(x[0], x[5]) for x in a], [("mx-ee.dane.example", "dane")], "by the second MX, under DANE")
write_zone(spki_sha256(bad_cert))
retry_now("e@bad.dane.example")
t.is_(run(), "1 delivery attempted\n", "the record fixed: attempted again")
t.is_(result("e@bad.dane.example"), "delivered", "and delivered")
a = attempts("e@bad.dane.example")
t.is_([(x[1], x[5]) for x in a], [("0", "dane"), ("250", "dane")], "the attempts: 0 then 250, dane")

# ---- no STARTTLS ----
queue("g@notls.dane.example")
t.is_(run(), "1 delivery attempted\n", "notls attempted")
t.is_(result("g@notls.dane.example"), "queued", "a server without STARTTLS under DANE: not delivered")
a = attempts("g@notls.dane.example")
t.is_([(x[2], x[5]) for x in a], [("4.7.5", "dane")], "4.7.5, policy dane")
t.like(a[0][6] if a else "", "TLS is required", "the reason: TLS is required")
t.ok(len(sinks["notls"].events("connect")) >= 1 and sinks["notls"].messages() == [],
     "the server was connected to, nothing sent")
t.ok(not any(e["line"].startswith("MAIL") for e in sinks["notls"].events("command")), "no MAIL")

# ---- bogus TLSA ----
queue("h@bogus.dane.example")
queue("i@bogusnext.dane.example")
t.is_(run(), "2 deliveries attempted\n", "bogus and bogusnext attempted")
t.is_(result("h@bogus.dane.example"), "queued", "bogus TLSA records: not delivered")
a = attempts("h@bogus.dane.example")
t.is_([(x[1], x[2]) for x in a], [("0", "4.7.5")], "a temporary failure")
t.like(a[0][6] if a else "", "bogus", "the reason: bogus")
t.is_(sinks["bogus"].events("connect"), [], "the host with bogus records was never connected to")
t.is_(result("i@bogusnext.dane.example"), "delivered", "a domain with another MX: delivered there")
t.is_([(x[0], x[5]) for x in attempts("i@bogusnext.dane.example")], [("mx-ee.dane.example", "dane")],
      "by mx-ee under DANE")

# ---- secure but unusable records ----
queue("j@unusable.dane.example")
t.is_(run(), "1 delivery attempted\n", "unusable attempted")
t.is_(result("j@unusable.dane.example"), "delivered", "only PKIX-EE records: delivered")
a = attempts("j@unusable.dane.example")
t.is_([(x[1], x[5]) for x in a], [("250", "dane-unauthenticated")], "policy dane-unauthenticated")
t.ok(a and a[0][3].startswith("TLS1."), "over TLS")

# ---- insecure zone ----
queue("k@insecure.example")
t.is_(run(), "1 delivery attempted\n", "insecure.example attempted")
t.is_(result("k@insecure.example"), "delivered",
      "an insecure zone's TLSA record (matching nothing) is ignored: delivered")
a = attempts("k@insecure.example")
t.is_([(x[1], x[5]) for x in a], [("250", "opportunistic")], "policy opportunistic")
t.is_(sinks["ins"].messages(), [("k@insecure.example", True)], "over STARTTLS all the same")

# ---- no DANE, no STARTTLS: plain text ----
queue("l@plain.example")
t.is_(run(), "1 delivery attempted\n", "plain.example attempted")
t.is_(result("l@plain.example"), "delivered", "an insecure domain whose server has no STARTTLS: delivered")
a = attempts("l@plain.example")
t.is_([(x[1], x[3], x[4], x[5]) for x in a], [("250", "", "", "none")],
      "in plain text: no TLS version or cipher, policy none")
t.is_(sinks["notls"].messages(), [("l@plain.example", False)], "the server got it without TLS")

# ---- the MX host name is a CNAME (RFC 7672 2.2.2, 3.2.2) ----
r = g("dns", "lookup", "A", "alias.dane.example")
t.ok("security secure\n" in r.stdout and "canonical mx-cn.dane.example\n" in r.stdout,
       "the alias's address answer is secure and names its expansion")
queue("m@cname.dane.example")
t.is_(run(), "1 delivery attempted\n", "cname.dane.example attempted")
t.is_(result("m@cname.dane.example"), "delivered",
      "TLSA 2 0 1 at the expanded name, the leaf naming only the expanded name: delivered")
a = attempts("m@cname.dane.example")
t.is_([(x[0], x[1], x[5]) for x in a], [("alias.dane.example", "250", "dane")],
      "one attempt: the MX host as the MX gave it, 250, policy dane")
t.is_(sinks["cn"].messages(), [("m@cname.dane.example", True)], "the server got it over TLS")
q = open(querylog).read()
t.like(q, "_%d._tcp.mx-cn.dane.example. TLSA" % PORT, "TLSA asked at the expanded name")
t.ok("_%d._tcp.alias.dane.example. TLSA" % PORT not in q,
     "records found there: the original name's never asked")

queue("n@cname2.dane.example")
r = g("-v", "queue", "run")
t.is_(r.stdout, "1 delivery attempted\n", "cname2.dane.example attempted")
t.is_(result("n@cname2.dane.example"), "delivered",
      "no records at the expanded name, 3 1 1 at the original: delivered")
t.is_([(x[1], x[5]) for x in attempts("n@cname2.dane.example")], [("250", "dane")], "policy dane")
# The expanded name's denial may come from the resolver's cache of the
# zone's NSEC records (aggressive NSEC) without a query: the log says it.
m1 = re.search(r"event=queue_smtp_tlsa_expanded domain=cname2\.dane\.example host=alias2\.dane\.example "
               r"expanded=mx-cn2\.dane\.example status=(NXDOMAIN|NODATA) security=secure", r.stderr)
m2 = re.search(r"event=queue_smtp_tlsa domain=cname2\.dane\.example host=alias2\.dane\.example "
               r"base=alias2\.dane\.example status=OK security=secure records=1 usable=1 policy=dane",
               r.stderr)
t.ok(m1 and m2 and m1.start() < m2.start(),
     "the expanded name looked up first (a secure denial), then the original (one usable record)")
if not (m1 and m2):
    t.diag(r.stderr)
t.like(open(querylog).read(), "_%d._tcp.alias2.dane.example. TLSA" % PORT,
       "the original name's TLSA question reached the server")

queue("o@cname3.dane.example")
t.is_(run(), "1 delivery attempted\n", "cname3.dane.example attempted")
t.is_(result("o@cname3.dane.example"), "queued",
      "bogus TLSA records at the expanded name: not delivered (no fallback to the original name)")
a = attempts("o@cname3.dane.example")
t.is_([(x[1], x[2]) for x in a], [("0", "4.7.5")], "a temporary failure, 4.7.5")
t.like(a[0][6] if a else "", "_%d._tcp.mx-cn3.dane.example failed: bogus" % PORT,
       "the reason names the expanded name and says bogus")
t.is_(len(sinks["cn"].messages()), 2, "the server got nothing more")

# ---- the next-hop domain; a trust anchor's key not in the chain (RFC 7672 3.2.2) ----
queue("p@hop.dane.example")
queue("q@hopbad.dane.example")
t.is_(run(), "2 deliveries attempted\n", "hop and hopbad attempted")
t.is_(result("p@hop.dane.example"), "delivered",
      "TLSA 2 1 0 (the CA's key, not in the chain), the leaf naming only the recipient domain: delivered")
a = attempts("p@hop.dane.example")
t.is_([(x[0], x[1], x[5]) for x in a], [("mx-hop.dane.example", "250", "dane")],
      "one attempt: 250, policy dane")
t.is_(sinks["hop"].messages(), [("p@hop.dane.example", True)], "the server got it over TLS")
t.is_(result("q@hopbad.dane.example"), "queued", "the same record, a leaf another CA signed: not delivered")
a = attempts("q@hopbad.dane.example")
t.is_([(x[1], x[2], x[5]) for x in a], [("0", "4.7.5", "dane")], "4.7.5, policy dane")
t.like(a[0][6] if a else "", "no certificate of the chain is signed by the trust anchor's public key",
       "the reason says why")
t.is_(sinks["hopbad"].messages(), [], "nothing sent to it")
queue("r@hopdigest.dane.example")
t.is_(run(), "1 delivery attempted\n", "hopdigest attempted")
t.is_(result("r@hopdigest.dane.example"), "queued",
      "TLSA 2 1 1 (the CA's key by digest, not in the chain), the leaf naming the MX host: not delivered")
a = attempts("r@hopdigest.dane.example")
t.is_([(x[0], x[2], x[5]) for x in a], [("hop.dane.example", "4.7.5", "dane")], "4.7.5, policy dane")
t.like(a[0][6] if a else "", "not in the server's chain and the TLSA record holds only its digest",
       "the reason says why")
t.is_(sinks["hop"].messages(), [("p@hop.dane.example", True)], "nothing more sent to that server")

# The leaf names hop.dane.example only: a connection it opened for that
# domain is no DANE-TA match for hop2.dane.example on the same MX host.
queue("s@hop.dane.example")
queue("u@hop2.dane.example")
t.is_(run(), "2 deliveries attempted\n", "hop and hop2 (the same MX host) attempted in one run")
t.is_(result("s@hop.dane.example"), "delivered", "hop.dane.example: delivered")
t.is_(result("u@hop2.dane.example"), "queued", "hop2.dane.example: not delivered")
a = attempts("u@hop2.dane.example")
t.is_([(x[0], x[2], x[5]) for x in a], [("mx-hop.dane.example", "4.7.5", "dane")], "4.7.5, policy dane")
t.like(a[0][6] if a else "", "names neither the MX host nor the next-hop domain", "the reason says why")
evs = sinks["hop"].events()
s_conn = [e["conn"] for e in evs if e["event"] == "message" and "s@hop.dane.example" in e["rcpts"]]
t.ok(s_conn and any(e["event"] == "tls" and e["conn"] > s_conn[0] for e in evs),
     "hop's delivery first, then a new connection (and handshake) for hop2: the parked one not taken")
t.ok(all("u@hop2.dane.example" not in e["rcpts"] for e in evs if e["event"] == "message"),
     "nothing sent for hop2")

# ---- REQUIRETLS (RFC 8689): DANE verifies as PKIX would ----
# The ee server's certificate is self-signed: no PKIX, but its TLSA record
# matches; it offers REQUIRETLS now.
with open(sinks["ee"].script, "w") as f:
    json.dump({"requiretls": True}, f)


def queue_requiretls(to):
    m = "From: alice@example.com\nTo: %s\nSubject: rt\n\nHello.\n" % to
    return g("queue", "add", "--require-tls", "yes", "--from", "alice@example.com", "--to", to,
             stdin=m).returncode


t.is_(queue_requiretls("rt@ee.dane.example"), 0, "a message that requires TLS queued for ee.dane.example")
t.is_(queue_requiretls("rt@weak.example"), 0, "and one for weak.example (the same server, no DANE)")
t.is_(run(), "2 deliveries attempted\n", "both attempted")
t.is_(result("rt@ee.dane.example"), "delivered", "over DANE: delivered (DANE-EE verifies for REQUIRETLS)")
a = attempts("rt@ee.dane.example")
t.is_([(x[1], x[5]) for x in a], [("250", "dane+requiretls")], "its attempt: 250, policy dane+requiretls")
mails = [e["line"] for e in sinks["ee"].events("command")
         if e["line"].startswith("MAIL FROM") and "REQUIRETLS" in e["line"].upper()]
t.is_(len(mails), 1, "the server got MAIL FROM ... REQUIRETLS once")
t.is_(result("rt@weak.example"), "failed",
      "without DANE the self-signed certificate does not verify: failed for good")
a = attempts("rt@weak.example")
t.is_([(x[2], x[5]) for x in a], [("5.7.30", "requiretls")], "5.7.30, policy requiretls")

q = open(querylog).read()
t.like(q, "_%d._tcp.mx-ee.dane.example. TLSA" % PORT, "the TLSA questions reached the server")
t.ok("_%d._tcp.mx.weak.example. TLSA" % PORT not in q,
     "no TLSA lookup for a host under an insecure MX answer")

for s in sinks.values():
    s.stop()
dns.kill()
dns.wait()
t.done()
