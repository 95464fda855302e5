#!/usr/bin/env python3
"""
t/integration/310-mailauth-dmarc.t: DMARC (RFC 7489) in the mailauth module,
through `gannet dns dmarc DOMAIN` and `gannet dmarc check`, with DNS answered
from dns.local_data (never the network) and organisational domains from
Debian's public suffix list.

- `dns dmarc`: the record seen and where (the From domain's own, or the
  organisational domain's as fallback), its tags, the organisational domain
  (ICANN rules, a private-section rule, a wildcard and its exception);
  missing, multiple and malformed records (none/permerror as RFC 7489 6.6.3
  says), p=none from a valid rua (6.6.3), invalid values replaced by their
  defaults (6.3), unknown tags ignored, and temperror when the DNS fails.
- `dmarc check`: messages signed by an independent signer (Debian's
  python3-dkim) with d= of the From domain, a subdomain of it, its parent
  or another domain, and SPF over records in the local data: the alignment
  table (relaxed/strict x SPF/DKIM x same/subdomain/parent/other), p, sp,
  pct sampling with the deterministic --sample hook, and the disposition.
The expectations are written here by hand from the RFC, each beside its
case, and the results are also checked against an independent evaluator,
Debian's python3-authheaders (t/lib/dmarccheck.py: its policy discovery
and alignment, with python3-publicsuffix2 for organisational domains),
given the same records and the SPF and DKIM results gannet found.  Where
it departs from the RFC, gannet follows the RFC and the case says why.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt
from gannettest import DEBIAN_PYTHON, Tap

t = Tap()
IP = "192.0.2.10"
OTHER_IP = "198.51.100.99"
Z = {}


def rr(name, rtype, data):
    Z.setdefault(name, []).append((rtype, data))


def txt(name, text):
    rr(name, "TXT", text)


# Alignment: relaxed.example and strict.example publish p=reject; their
# subdomains have no record of their own (the organisational domain's
# applies, sp absent: p).
txt("_dmarc.relaxed.example", "v=DMARC1; p=reject")
txt("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s")
# p, sp, pct.
txt("_dmarc.pol.example", "v=DMARC1; p=quarantine; sp=reject; pct=50")
txt("_dmarc.nosp.example", "v=DMARC1; p=reject")
txt("_dmarc.sp.example", "v=DMARC1; p=reject; sp=reject")
txt("_dmarc.own.sp.example", "v=DMARC1; p=none")
txt("_dmarc.pct0.example", "v=DMARC1; p=reject; pct=0")
# Selection and syntax.
txt("_dmarc.multi.example", "v=DMARC1; p=reject")
txt("_dmarc.multi.example", "v=DMARC1; p=none")
txt("_dmarc.mixed.example", "hello world")
txt("_dmarc.mixed.example", "v=DMARC1; p=quarantine; rua=mailto:agg@mixed.example; foo=bar")
txt("_dmarc.badp.example", "v=DMARC1; p=bogus")
txt("_dmarc.nop.example", "v=DMARC1; pct=20")
txt("_dmarc.ruaonly.example", "v=DMARC1; rua=mailto:agg@ruaonly.example")
txt("_dmarc.badsp.example", "v=DMARC1; p=reject; sp=maybe")
txt("_dmarc.notag.example", "v=DMARC1; p=reject; moo")
txt("_dmarc.twice.example", "v=DMARC1; p=reject; p=none")
txt("_dmarc.nosemi.example", "v=DMARC1 p=reject")
txt("_dmarc.lower.example", "v=dmarc1; p=reject")
txt("_dmarc.late.example", "p=reject; v=DMARC1")
txt("_dmarc.defaults.example", "v=DMARC1; p=reject; pct=150; adkim=x; aspf=s; ")
txt("_dmarc.spaces.example", "v = DMARC1 ;  p = quarantine ; sp= none ;pct=  30")
# The fallback: a record only at the organisational domain; several at a
# subdomain stop the discovery (no fallback).
txt("_dmarc.fallback.example", "v=DMARC1; p=quarantine; sp=none")
txt("_dmarc.many.fallback.example", "v=DMARC1; p=reject")
txt("_dmarc.many.fallback.example", "v=DMARC1; p=quarantine")
txt("_dmarc.example.co.uk", "v=DMARC1; p=reject")

# SPF: every identity domain used below passes for IP.
SPF_DOMAINS = []
for base in ("relaxed.example", "strict.example"):
    for sub in ("", "bounce.", "news.", "bounce.news."):
        SPF_DOMAINS.append(sub + base)
SPF_DOMAINS += ["other.example", "pol.example", "x.pol.example", "nosp.example",
                "x.nosp.example", "own.sp.example", "pct0.example", "mixed.example"]
for dom in SPF_DOMAINS:
    txt(dom, "v=spf1 ip4:%s -all" % IP)
txt("temp.spf.example", "v=spf1 ip4:%s -all" % IP)

# ---- DKIM: messages signed by python3-dkim ----
SIGNER = r"""
import base64, json, sys
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
req = json.load(sys.stdin)
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                      serialization.NoEncryption())
spki = k.public_key().public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
out = {"key": "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode(), "messages": []}
for m in req:
    msg = m["message"].encode()
    for d in m["sign"]:
        sig = dkim.sign(msg, b"sel", d.encode(), pem,
                        include_headers=[b"from", b"to", b"subject"])
        msg = sig + msg
    if m.get("tamper"):
        msg = msg.replace(b"Hello", b"Jello")
    out["messages"].append(msg.decode())
json.dump(out, sys.stdout)
"""


def message(from_addr, extra=""):
    return ("From: Sender <%s>\r\n%sTo: rcpt@dest.example\r\nSubject: dmarc\r\n\r\nHello.\r\n"
            % (from_addr, extra))


# The cases of `dmarc check`: (label, from domain, SPF MAIL FROM domain or
# None (no --ip), DKIM d= list, options, expected result, checks).
C = []


def case(label, frm, spf, dkim_d, want, checks=None, ip=IP, sample=None, msg=None, tamper=False,
         mail_from=None, helo="mta.example"):
    C.append({"label": label, "from": frm, "spf": spf, "dkim": dkim_d, "want": want,
              "checks": checks or {}, "ip": ip, "sample": sample,
              "message": msg or message("user@" + frm), "tamper": tamper,
              "mail_from": mail_from if mail_from is not None else
              ("bounces@" + spf if spf is not None else None), "helo": helo})


# The alignment table (RFC 7489 3.1): relaxed is the same organisational
# domain, strict the same name.  "parent" is the From domain's parent (the
# organisational domain), "sub" a subdomain of the From domain.
for mode in ("relaxed", "strict"):
    base = mode + ".example"
    for frm in (base, "news." + base):
        idents = {"same": frm, "sub": "bounce." + frm, "other": "other.example"}
        if frm != base:
            idents["parent"] = base
        for kind, ident in sorted(idents.items()):
            aligned = kind == "same" or (mode == "relaxed" and kind != "other")
            want = "pass" if aligned else "fail"
            for check in ("spf", "dkim"):
                label = "%s, From %s, %s d=%s (%s)" % (mode, frm, check, ident, kind) \
                    if check == "dkim" else \
                    "%s, From %s, SPF for %s (%s)" % (mode, frm, ident, kind)
                if check == "spf":
                    case(label, frm, ident, [], want,
                         {"spf-aligned": "yes" if aligned else "no", "dkim-aligned": "no",
                          "disposition": "none" if aligned else "reject",
                          "subdomain": "yes" if frm != base else "no"})
                else:
                    case(label, frm, None, [ident], want,
                         {"dkim-aligned": "yes" if aligned else "no", "spf-aligned": "no",
                          "disposition": "none" if aligned else "reject"})
# An aligned signature that does not verify does not count; another
# aligned one does (RFC 7489 4.2: any one pass).
case("DKIM: an aligned signature that fails", "relaxed.example", None, ["relaxed.example"],
     "fail", {"dkim-aligned": "no"}, tamper=True)
case("DKIM: an unaligned pass and an aligned one", "relaxed.example", None,
     ["other.example", "news.relaxed.example"], "pass", {"dkim-aligned": "yes"})
case("SPF fail from another IP, aligned DKIM pass", "strict.example", "strict.example",
     ["strict.example"], "pass", {"spf-aligned": "no", "dkim-aligned": "yes"}, ip=OTHER_IP)
case("SPF fail from another IP, no DKIM", "relaxed.example", "relaxed.example", [], "fail",
     {"spf-aligned": "no", "disposition": "reject"}, ip=OTHER_IP)
# MAIL FROM <>: SPF checks the HELO identity (RFC 7208 2.4), and that is
# the SPF-authenticated domain DMARC aligns (RFC 7489 4.1).
case("MAIL FROM <>: SPF of the HELO name, aligned", "relaxed.example", "relaxed.example", [],
     "pass", {"spf": "pass relaxed.example", "spf-aligned": "yes"}, mail_from="",
     helo="relaxed.example")
case("MAIL FROM <>: SPF of an unaligned HELO name", "relaxed.example", "other.example", [],
     "fail", {"spf": "pass other.example", "spf-aligned": "no"}, mail_from="",
     helo="other.example")
# p, sp, pct (RFC 7489 6.3, 6.6.4): a failing message.
case("p=quarantine pct=50, sampled in", "pol.example", "other.example", [], "fail",
     {"policy": "quarantine", "disposition": "quarantine"}, sample=10)
case("p=quarantine pct=50, sampled out: none", "pol.example", "other.example", [], "fail",
     {"policy": "quarantine", "disposition": "none sampled-out"}, sample=60)
case("sp=reject for a subdomain, sampled in", "x.pol.example", "other.example", [], "fail",
     {"policy": "reject", "subdomain": "yes", "disposition": "reject",
      "from-record": "pol.example"}, sample=49)
case("sp=reject, sampled out: quarantine", "x.pol.example", "other.example", [], "fail",
     {"policy": "reject", "disposition": "quarantine sampled-out"}, sample=50)
case("no sp: p for a subdomain", "x.nosp.example", "other.example", [], "fail",
     {"policy": "reject", "subdomain": "yes", "disposition": "reject"})
case("a subdomain's own record: its p, not the parent's sp", "own.sp.example",
     "other.example", [], "fail", {"policy": "none", "subdomain": "no", "disposition": "none",
                                   "from-record": "own.sp.example"})
case("pct=0: reject becomes quarantine", "pct0.example", "other.example", [], "fail",
     {"disposition": "quarantine sampled-out"}, sample=0)
case("a pass: disposition none whatever the policy", "pol.example", "pol.example", [], "pass",
     {"disposition": "none"}, sample=0)
# Records and messages without a policy to apply.
case("no record anywhere: none", "nothing.example", "other.example", [], "none",
     {"policy": "-", "disposition": "none"})
case("two records: none (RFC 7489 6.6.3)", "multi.example", "other.example", [], "none",
     {"reason": "2 DMARC records"})
case("p=bogus: permerror", "badp.example", "other.example", [], "permerror",
     {"reason": "p=bogus is not"})
case("several From fields: none", "relaxed.example", "relaxed.example", ["relaxed.example"],
     "none", {"reason": "several From fields"},
     msg=message("user@relaxed.example", "From: other@other.example\r\n"))
case("two addresses in From: none", "relaxed.example", None, [], "none",
     {"reason": "several addresses"},
     msg=("From: a@relaxed.example, b@other.example\r\nTo: r@dest.example\r\nSubject: x\r\n"
          "\r\nHello.\r\n"))
case("no From: none", "relaxed.example", None, [], "none", {"reason": "no From field"},
     msg="To: r@dest.example\r\nSubject: x\r\n\r\nHello.\r\n")

# ---- sign ----
signing = [{"message": c["message"], "sign": c["dkim"], "tamper": c["tamper"]} for c in C]
r = subprocess.run([DEBIAN_PYTHON, "-c", SIGNER], input=json.dumps(signing),
                   capture_output=True, text=True, timeout=300)
if not t.is_(r.returncode, 0, "python3-dkim signs the messages"):
    t.diag(r.stderr)
    t.done()
signed = json.loads(r.stdout)
for c in C:
    for dom in c["dkim"]:
        if ("sel._domainkey." + dom) not in Z:
            txt("sel._domainkey." + dom, signed["key"])

# ---- the config ----
cl = gt.cluster()
db = cl.create_db("dmarc")
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
write_conf(LOCAL, "  local_data = [\n%s\n  ];" % ",\n".join(
    '    "%s"' % quote(s) for s in local_data(Z)))
r = gt.run_gannet(["-c", LOCAL, "migrate"])
if not t.is_(r.returncode, 0, "migrate"):
    t.diag(r.stderr)
    t.done()


def parse(out):
    o = {"trace": [], "tag": [], "dkim": []}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        if k in o:
            o[k].append(v)
        else:
            o[k] = v
    return o


def dns_dmarc(domain, conf=LOCAL):
    r = gt.run_gannet(["-c", conf, "dns", "dmarc", domain])
    return r, parse(r.stdout)


# ---- dns dmarc ----
r, o = dns_dmarc("relaxed.example")
t.is_((r.returncode, o.get("status"), o.get("record"), o.get("from"), o.get("org-domain")),
      (0, "found", '"v=DMARC1; p=reject"', "relaxed.example", "relaxed.example"),
      "dns dmarc: the record, where it is, the organisational domain")
t.is_((o.get("policy"), o.get("subdomain-policy"), o.get("pct"), o.get("adkim"), o.get("aspf")),
      ("reject", "reject", "100", "r", "r"), "and its tags with their defaults")
t.is_(o["tag"], ["v DMARC1", "p reject"], "each tag as written")
r, o = dns_dmarc("a.b.news.relaxed.example")
t.is_((o.get("status"), o.get("from"), o.get("org-domain")),
      ("found", "relaxed.example", "relaxed.example"),
      "a subdomain without a record: the organisational domain's")
t.is_(len([x for x in o["trace"] if x.startswith("query")]), 2,
      "two queries: the From domain's, then the organisational domain's")
r, o = dns_dmarc("mixed.example")
t.is_((o.get("status"), o.get("policy")), ("found", "quarantine"),
      "a TXT record that is not DMARC is passed over")
t.ok("foo [ignored] bar" in o["tag"], "an unknown tag is shown as ignored")
t.is_(o.get("trace", []) and len([x for x in o["trace"] if x.startswith("record")]), 1,
      "only the DMARC record is selected")
for dom, status, why in [
        ("nothing.example", "none", "no DMARC record at _dmarc.nothing.example"),
        ("multi.example", "none", "has 2 DMARC records"),
        ("many.fallback.example", "none", "_dmarc.many.fallback.example has 2"),
        ("badp.example", "permerror", "p=bogus is not none, quarantine or reject"),
        ("nop.example", "permerror", "no p= tag"),
        ("badsp.example", "permerror", "sp=maybe"),
        ("notag.example", "permerror", "\"moo\" is not tag=value"),
        ("twice.example", "permerror", "the tag p is there twice"),
        ("nosemi.example", "none", "no DMARC record"),
        ("lower.example", "none", "no DMARC record"),
        ("late.example", "none", "no DMARC record")]:
    r, o = dns_dmarc(dom)
    t.is_(o.get("status"), status, "dns dmarc %s: %s" % (dom, status))
    t.like(o.get("problem", ""), why, "dns dmarc %s: says why" % dom)
    t.is_(r.returncode, 1 if status == "permerror" else 0, "dns dmarc %s: exit code" % dom)
r, o = dns_dmarc("ruaonly.example")
t.is_((o.get("status"), o.get("policy")), ("found", "none"),
      "no p= but a valid rua=: as p=none (RFC 7489 6.6.3)")
t.like(o.get("default", ""), "p=none", "and it says so")
r, o = dns_dmarc("defaults.example")
t.is_((o.get("status"), o.get("pct"), o.get("adkim"), o.get("aspf")), ("found", "100", "r", "s"),
      "invalid pct= and adkim=: their defaults (RFC 7489 6.3)")
t.is_(o.get("default"), "pct=150", "the first replaced value is shown")
r, o = dns_dmarc("spaces.example")
t.is_((o.get("policy"), o.get("subdomain-policy"), o.get("pct")), ("quarantine", "none", "30"),
      "white space around tags and values")
r, o = dns_dmarc("x.fallback.example")
t.is_((o.get("from"), o.get("policy"), o.get("subdomain-policy")),
      ("fallback.example", "quarantine", "none"), "fallback with its sp")
# Organisational domains from Debian's public suffix list.
ORGS = {}
for dom, org in [("www.example.co.uk", "example.co.uk"), ("example.co.uk", "example.co.uk"),
                 ("co.uk", "co.uk"), ("a.b.c.example.com", "example.com"),
                 ("A.B.Example.COM.", "example.com"),
                 ("x.y.blogspot.com", "y.blogspot.com"),     # the private section
                 ("a.b.c.ck", "b.c.ck"),                   # *.ck
                 ("a.www.ck", "www.ck"),                   # !www.ck
                 ("mail.news.relaxed.example", "relaxed.example"),  # no rule: "*"
                 ("www.b\u00fccher.example", "xn--bcher-kva.example")]:  # IDN: A-labels
    r, o = dns_dmarc(dom)
    t.is_(o.get("org-domain"), org, "organisational domain of %s: %s" % (dom, org))
    ORGS[dom] = org
r, o = dns_dmarc("mail.example.co.uk")
t.is_((o.get("status"), o.get("from")), ("found", "example.co.uk"),
      "a record at an organisational domain under a two-label suffix")

# ---- dmarc check ----
for c, text in zip(C, signed["messages"]):
    path = os.path.join(d, "m%d.eml" % C.index(c))
    with open(path, "w", newline="") as f:
        f.write(text)
    args = ["-c", LOCAL, "dmarc", "check"]
    if c["spf"] is not None:
        args += ["--ip", c["ip"], "--mail-from", c["mail_from"], "--helo", c["helo"]]
    if c["sample"] is not None:
        args += ["--sample", str(c["sample"])]
    args.append(path)
    r = gt.run_gannet(args)
    o = parse(r.stdout)
    if not t.is_(o.get("result"), c["want"], "dmarc check: %s: %s" % (c["label"], c["want"])):
        t.diag(r.stdout + r.stderr)
    t.is_(r.returncode, 0 if c["want"] == "pass" else 1, "dmarc check: %s: exit code" % c["label"])
    for k, v in c["checks"].items():
        if k == "reason":
            t.like(o.get(k, ""), v, "dmarc check: %s: reason" % c["label"])
        else:
            t.is_(o.get(k), v, "dmarc check: %s: %s %s" % (c["label"], k, v))
    if c["dkim"] and not c["tamper"] and c["want"] != "none":
        t.is_(sorted(x.split()[0] for x in o["dkim"]), ["pass"] * len(c["dkim"]),
              "dmarc check: %s: the signatures verify" % c["label"])

    c["out"] = o

# ---- against python3-authheaders ----
# Departures of authheaders from RFC 7489, where gannet follows the RFC:
DEPARTS = {
    "badp.example": ("result", "fail",
                     "authheaders takes any p= value (here \"bogus\") as the policy and "
                     "evaluates; RFC 7489 6.6.3 applies no policy without a valid p= (and "
                     "RFC 8601 names a syntactically incorrect record permerror)"),
    "pol.example": ("policy", "reject",
                    "authheaders applies sp= to the domain whose own record it is; RFC 7489 "
                    "6.3 and 6.6.3: sp= is for its subdomains, p= for the domain itself"),
}
cmp_cases = []
for c in C:
    o = c["out"]
    if o.get("from", "") == "" or c["from"] == "multi.example":
        continue    # no From domain, or two records (authheaders' dnsfunc gives one string)
    spf = None
    if c["spf"] is not None:
        spf = {"result": o.get("spf", "").split(" ")[0],
               "mailfrom": c["mail_from"] or "postmaster@" + c["helo"]}
    dk = [{"d": x.split()[1], "result": x.split()[0]} for x in o["dkim"] if x != "none"]
    cmp_cases.append((c, {"from": c["from"], "spf": spf, "dkim": dk}))
zone = {}
for name, recs in Z.items():
    if name.startswith("_dmarc."):
        zone[name] = [v for k, v in recs if k == "TXT"]
r = subprocess.run([DEBIAN_PYTHON, os.path.join(gt.SRCDIR, "t", "lib", "dmarccheck.py")],
                   input=json.dumps({"zone": zone, "org": list(ORGS),
                                     "cases": [x[1] for x in cmp_cases]}),
                   capture_output=True, text=True, timeout=300)
if not t.is_(r.returncode, 0, "python3-authheaders evaluated the cases"):
    t.diag(r.stderr)
theirs = json.loads(r.stdout) if r.returncode == 0 else {"org": [], "cases": []}
for (dom, org), their in zip(ORGS.items(), theirs["org"]):
    if dom.endswith(".example"):
        t.is_(their, "example", "publicsuffix2 says %s is the organisational domain of %s, gannet "
              "%s: publicsuffix2 makes a TLD the list does not name the organisational "
              "domain; the PSL algorithm's default rule \"*\" makes it the public suffix "
              "(t/lib/dmarccheck.py adds the rule \"example\" for the evaluations)"
              % (their, dom, org))
        continue
    t.is_(their, org, "publicsuffix2 agrees: organisational domain of %s" % dom)
for (c, _), their in zip(cmp_cases, theirs["cases"]):
    mine = c["out"].get("result")
    pol = c["out"].get("policy")
    what, want, why = DEPARTS.get(c["from"], (None, None, None))
    if what == "result":
        t.is_(their["result"], want, "%s: authheaders says %s, gannet %s: %s"
              % (c["label"], want, mine, why))
        continue
    t.is_(their["result"], mine, "%s: authheaders agrees (%s)" % (c["label"], mine))
    if what == "policy":
        t.is_(their["policy"], want, "%s: authheaders' policy is %s, gannet's %s: %s"
              % (c["label"], want, pol, why))
        continue
    t.is_(their["policy"] or "-", pol, "%s: authheaders' policy agrees (%s)" % (c["label"], pol))

# The message on standard input; the first case (relaxed, DKIM d= the From
# domain) passes.
first = next(i for i, c in enumerate(C) if c["dkim"] and c["want"] == "pass" and not c["spf"])
with open(os.path.join(d, "m%d.eml" % first)) as f:
    r = gt.run_gannet(["-c", LOCAL, "dmarc", "check"], stdin=f)
t.is_((r.returncode, parse(r.stdout).get("result")), (0, "pass"),
      "dmarc check: the message on standard input")
r = gt.run_gannet(["-c", LOCAL, "dmarc", "check", "--bogus", "/dev/null"])
t.is_(r.returncode, 2, "dmarc check --bogus: a usage error")
t.like(r.stderr, "unknown option --bogus", "and says so")
r = gt.run_gannet(["-c", LOCAL, "dmarc", "check", os.path.join(d, "no-such.eml")])
t.is_(r.returncode, 1, "dmarc check: a missing file fails")
t.like(r.stderr, "no-such.eml: No such file", "and says why")
r = gt.run_gannet(["-c", LOCAL, "dmarc", "check", "--sample", "100", "/dev/null"])
t.is_(r.returncode, 2, "dmarc check --sample 100: a usage error")
r = gt.run_gannet(["-c", LOCAL, "dmarc", "check", "--ip", "nope", "/dev/null"])
t.is_(r.returncode, 2, "dmarc check --ip nope: a usage error")
t.like(r.stderr, "\"nope\" is not an IP address", "and says so")

# ---- temperror: the DNS does not answer ----
DEAD = os.path.join(d, "dead.conf")
write_conf(DEAD, '  resolvers = [ "127.0.0.1@9" ];\n  trust_anchor = "";\n  timeout = "1s";\n'
           '  local_data = [ "temp.spf.example. 300 IN TXT \\"v=spf1 ip4:%s -all\\"" ];' % IP)
r, o = dns_dmarc("relaxed.example", DEAD)
t.is_((r.returncode, o.get("status")), (1, "temperror"), "dns dmarc: no DNS answer: temperror")
path = os.path.join(d, "temp.eml")
with open(path, "w", newline="") as f:
    f.write(message("user@temp.spf.example"))
r = gt.run_gannet(["-c", DEAD, "dmarc", "check", "--ip", IP, "--mail-from", "b@temp.spf.example",
                   path])
o = parse(r.stdout)
t.is_((o.get("spf"), o.get("result"), o.get("disposition"), r.returncode),
      ("pass temp.spf.example", "temperror", "none", 1),
      "dmarc check: SPF passes but the policy lookup fails: temperror, nothing applied")

# ---- the public suffix list is required ----
NOPSL = os.path.join(d, "nopsl.conf")
write_conf(NOPSL, '  local_data = [ ];',
           'mailauth = { publicsuffix = "%s/missing.dat"; };\n' % d)
r = gt.run_gannet(["-c", NOPSL, "dns", "dmarc", "relaxed.example"])
t.ok(r.returncode != 0, "a missing public suffix list: gannet refuses to run")
t.like(r.stderr, "mailauth.publicsuffix: cannot read the public suffix list", "and says why")
t.done()
