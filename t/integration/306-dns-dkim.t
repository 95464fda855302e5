#!/usr/bin/env python3
"""
t/integration/306-dns-dkim.t: `gannet dns dkim SELECTOR DOMAIN` (issue 10
item 3; mox's `mox dkim lookup selector domain` takes the same order):
the key record SELECTOR._domainkey.DOMAIN as the resolver sees it, its
tags, and how the verifier takes it.  Keys made by openssl, answered from
dns.local_data (nothing goes to the network):

- RSA 2048: key rsa 2048, result ok, exit 0;
- Ed25519 with t=y:s: key ed25519 256, flags testing and strict, ok;
- RSA 512: result policy (RFC 8301 3.2), exit 1;
- empty p=: revoked; a p= that is not a key: permerror;
- two records, the first broken: the second is the key (as the verifier
  takes the first that parses);
- a name without records: permerror, no key (NXDOMAIN);
- a resolver that never answers: temperror;
- a selector that is not one: exit 2.
"""
import base64
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
USER = 'user = "%s";\n' % gt.RUN_USER if gt.IS_ROOT else ""


def pubkey(args, raw32=False):
    key = os.path.join(d, "k.pem")
    subprocess.run(["openssl"] + args + ["-out", key], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der[-32:] if raw32 else der).decode()


rsa2048 = pubkey(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
rsa512 = pubkey(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"])
ed = pubkey(["genpkey", "-algorithm", "ed25519"], raw32=True)

records = {
    "big._domainkey.example.org.": ["v=DKIM1; k=rsa; p=" + rsa2048],
    "ed._domainkey.example.org.": ["v=DKIM1; k=ed25519; t=y:s; p=" + ed],
    "weak._domainkey.example.org.": ["v=DKIM1; k=rsa; p=" + rsa512],
    "gone._domainkey.example.org.": ["v=DKIM1; p="],
    "junk._domainkey.example.org.": ["v=DKIM1; k=rsa; p=bm90IGEga2V5"],
    "two._domainkey.example.org.": ["v=DKIM1; k=rsa; p", "v=DKIM1; k=rsa; p=" + rsa2048],
}


def local_data(recs):
    lines = []
    for name, recl in sorted(recs.items()):
        for rec in recl:
            parts = [rec[i:i + 255] for i in range(0, len(rec), 255)] or [""]
            lines.append('    "%s 300 IN TXT %s"' % (name, " ".join('\\"%s\\"' % p for p in parts)))
    return "  trust_anchor = \"\";\n  local_data = [\n" + ",\n".join(lines) + "\n  ];"


def write_conf(name, dns):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(USER + "dns = {\n" + dns + "\n};\n")
    return path


conf = write_conf("gannet.conf", local_data(records))


def lookup(sel, dom, config=None):
    r = gt.run_gannet(["-c", config or conf, "dns", "dkim", sel, dom])
    lines = r.stdout.splitlines()
    return r.returncode, lines, [l for l in lines if l.startswith("result ")]


rc, lines, res = lookup("big", "example.org")
t.is_(rc, 0, "RSA 2048: exit 0")
t.ok(lines[:1] == ["name big._domainkey.example.org"] and len(lines) > 1 and
     lines[1].startswith("status OK dnssec "), "the name looked up and the answer's status (%s)"
     % lines[1:2])
t.ok(any(l.startswith('record "v=DKIM1; k=rsa; p=') for l in lines), "the record as the DNS has it")
t.ok("tag v DKIM1" in lines and "tag k rsa" in lines, "its tags")
t.ok("key rsa 2048" in lines and res == ["result ok"], "key rsa 2048, result ok")

rc, lines, res = lookup("ed", "example.org")
t.ok(rc == 0 and "key ed25519 256" in lines and res == ["result ok"], "Ed25519: key ed25519 256, ok")
t.ok("flags testing" in lines and "flags strict" in lines, "t=y:s: flags testing and strict")

rc, lines, res = lookup("weak", "example.org")
t.is_((rc, res), (1, ["result policy: RSA key of 512 bits, under 1024 (RFC 8301)"]),
      "RSA 512: policy, exit 1")
rc, lines, res = lookup("gone", "example.org")
t.is_((rc, res), (1, ["result revoked: empty p="]), "empty p=: revoked, exit 1")
rc, lines, res = lookup("junk", "example.org")
t.ok(rc == 1 and len(res) == 1 and res[0].startswith("result permerror:"),
     "a p= that is not a key: permerror (%s)" % res)
rc, lines, res = lookup("two", "example.org")
t.ok(rc == 0 and res == ["result ok"] and any(l.startswith("error ") for l in lines),
     "two records, the first broken: its error printed, the second is the key")
rc, lines, res = lookup("none", "example.org")
t.is_((rc, res), (1, ["result permerror: no key for signature (NXDOMAIN)"]),
      "no record: permerror, no key (NXDOMAIN)")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
silent = write_conf("silent.conf", '  resolvers = [ "127.0.0.1@%d" ];\n  trust_anchor = "";\n'
                    '  timeout = "2s";' % sock.getsockname()[1])
rc, lines, res = lookup("big", "example.org", silent)
t.ok(rc == 1 and len(res) == 1 and res[0].startswith("result temperror: key lookup failed: TIMEOUT"),
     "a resolver that never answers: temperror (%s)" % res)
sock.close()

r = gt.run_gannet(["-c", conf, "dns", "dkim", "bad selector", "example.org"])
t.is_(r.returncode, 2, "a selector that is not one: exit 2")
t.done()
