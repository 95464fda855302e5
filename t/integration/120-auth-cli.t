#!/usr/bin/env python3
"""
t/integration/120-auth-cli.t: `gannet setpassword` and `gannet config
tlspubkey list|get|add|rm|gen` end to end against a real PostgreSQL.

- setpassword reads the password from stdin when stdin is no terminal, and
  from a terminal prompt (twice, without echo) when it is; only SCRAM keys
  (and CRAM-MD5 state for accounts that opted in with `gannet config
  account cram-md5`) are stored, never the password: the stored SCRAM keys
  are recomputed here with Python's hashlib from the stored salt and
  iteration count (RFC 5802 3), so the password is checked independently.
- tlspubkey: certificates made by openssl (RSA 1024 refused; RSA 2048, P-256
  and ed25519 accepted), fingerprints compared with SHA-256 of the
  SubjectPublicKeyInfo computed here, `gen` files checked with openssl.
"""
import base64
import hashlib
import hmac
import os
import pty
import select
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

cl = gt.cluster()
db = cl.create_db("auth")
d = gt.tmpdir()
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def gannet(args, stdin=None):
    r = gt.run_gannet(["-c", conf] + args, input=stdin)
    return r


def must(args, stdin=None):
    r = gannet(args, stdin)
    if r.returncode != 0:
        t.diag("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def sql(q):
    return cl.psql(q, db)


r = must(["migrate"])
t.is_(r.returncode, 0, "migrate")
must(["config", "domain", "add", "example.org"])
r = must(["config", "account", "add", "mjl", "mjl@example.org", "Mechiel"])
t.is_(r.returncode, 0, "account made with the store's CLI")

# ---- setpassword from stdin ----

password = "correct horse battery"
r = gannet(["setpassword", "mjl"], stdin=password + "\n")
t.is_(r.returncode, 0, "setpassword from stdin exits 0")
t.is_(sql("SELECT count(*) FROM gn_credentials"), "1", "credentials stored")

row = sql("SELECT row_to_json(c)::text FROM gn_credentials c")
t.ok(password not in row and password.encode().hex() not in row
     and base64.b64encode(password.encode()).decode() not in row,
     "the password is not stored, in plain, hex or base64")


def scram_check(prefix, name, digest, want_iter):
    salt_hex, iters, stored_hex, server_hex = sql(
        "SELECT encode(%s_salt, 'hex') || ' ' || %s_iterations || ' ' || "
        "encode(%s_stored_key, 'hex') || ' ' || encode(%s_server_key, 'hex') "
        "FROM gn_credentials" % ((prefix,) * 4)).split()
    t.is_(int(iters), want_iter, "%s: %d iterations" % (name, want_iter))
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), bytes.fromhex(salt_hex), int(iters))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored = hashlib.new(digest, client_key).hexdigest()
    server = hmac.new(salted, b"Server Key", digest).hexdigest()
    t.is_(stored, stored_hex, "%s: StoredKey = H(HMAC(Hi(password, salt, i), \"Client Key\"))" % name)
    t.is_(server, server_hex, "%s: ServerKey = HMAC(Hi(...), \"Server Key\")" % name)


scram_check("scram_sha256", "SCRAM-SHA-256", "sha256", 4096)
scram_check("scram_sha1", "SCRAM-SHA-1", "sha1", 8192)

# CRAM-MD5 state (the HMAC-MD5 midstates of the password) is kept only for
# accounts that opted in (README, "Logins"): none by default.
t.is_(sql("SELECT count(*) FROM gn_credentials WHERE cram_md5_inner IS NOT NULL "
          "OR cram_md5_outer IS NOT NULL"), "0", "no CRAM-MD5 state without the opt-in")
r = must(["config", "account", "cram-md5", "mjl"])
t.like(r.stdout, "CRAM-MD5 is off for mjl", "cram-md5 without on|off shows the state: off")
r = must(["config", "account", "cram-md5", "mjl", "on"])
t.is_(r.returncode, 0, "cram-md5 mjl on: exit 0")
t.like(r.stdout, "written at the next password set", "on: says the state comes with the next password set")
t.is_(sql("SELECT count(*) FROM gn_credentials WHERE cram_md5_inner IS NOT NULL"), "0",
      "on: nothing stored yet (there is no password to make it from)")
old = sql("SELECT encode(scram_sha256_salt, 'hex') FROM gn_credentials")
r = gannet(["setpassword", "mjl"], stdin=password + "\r\n")
t.is_(r.returncode, 0, "setpassword again (CRLF line end) exits 0")
t.like(r.stderr, "with CRAM-MD5 state", "and says it stored CRAM-MD5 state")
scram_check("scram_sha256", "after CRLF input: SCRAM-SHA-256", "sha256", 4096)
t.ok(sql("SELECT encode(scram_sha256_salt, 'hex') FROM gn_credentials") != old,
     "a new salt for the new setting")
t.is_(sql("SELECT length(cram_md5_inner) || ' ' || length(cram_md5_outer) FROM gn_credentials"),
      "16 16", "opted in: CRAM-MD5 state stored, two 16-byte MD5 states")
r = must(["config", "account", "cram-md5", "mjl"])
t.like(r.stdout, "CRAM-MD5 is on for mjl, its state is stored", "the state shows as stored")
r = must(["config", "account", "cram-md5", "mjl", "off"])
t.like(r.stdout, "removed", "off: says the state was removed")
t.is_(sql("SELECT count(*) FROM gn_credentials WHERE cram_md5_inner IS NOT NULL "
          "OR cram_md5_outer IS NOT NULL"), "0", "off: the state is gone at once")
t.is_(sql("SELECT count(*) FROM gn_credentials"), "1", "and the SCRAM keys stay")
r = gannet(["config", "account", "cram-md5", "nobody", "on"])
t.is_(r.returncode, 1, "cram-md5 of an unknown account: exit 1")
r = gannet(["config", "account", "cram-md5", "mjl", "maybe"])
t.is_(r.returncode, 2, "cram-md5 with neither on nor off: bad usage, exit 2")

r = gannet(["setpassword", "mjl"], stdin="short\n")
t.is_(r.returncode, 1, "a 5-byte password: exit 1")
t.like(r.stderr, "too short", "saying it is too short")
r = gannet(["setpassword", "mjl"], stdin="bad\x07password\n")
t.is_(r.returncode, 1, "a password with a control character: exit 1 (PRECIS)")
t.ok("bad\x07password" not in r.stderr, "the error does not show the password")
r = gannet(["setpassword", "mjl"], stdin="")
t.is_(r.returncode, 1, "no password on stdin: exit 1")
r = gannet(["setpassword", "nobody"], stdin=password + "\n")
t.is_(r.returncode, 1, "unknown account: exit 1")
t.like(r.stderr, "gannet: no such account: nobody", "naming it")
r = gannet(["setpassword"])
t.is_(r.returncode, 2, "no account: bad usage, exit 2")
scram_check("scram_sha256", "failed attempts changed nothing: SCRAM-SHA-256", "sha256", 4096)


# ---- setpassword from a terminal ----

def tty_setpassword(first, second):
    """Runs setpassword on a pty; answers each prompt once it shows."""
    master, slave = pty.openpty()
    p = subprocess.Popen([gt.GANNET, "-c", conf, "setpassword", "mjl"], stdin=slave,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    err = b""
    echoed = b""
    answers = [first, second]
    deadline = time.time() + 30
    prompts = 0
    while time.time() < deadline:
        fds = [p.stderr.fileno(), master]
        ready, _, _ = select.select(fds, [], [], 0.5)
        if p.stderr.fileno() in ready:
            chunk = os.read(p.stderr.fileno(), 4096)
            if not chunk:
                break
            err += chunk
        if master in ready:
            try:
                echoed += os.read(master, 4096)
            except OSError:
                pass
        n = err.count(b"password: ")
        while prompts < n and answers:
            os.write(master, answers.pop(0).encode() + b"\n")
            prompts += 1
    p.wait(timeout=30)
    try:
        while select.select([master], [], [], 0.2)[0]:
            echoed += os.read(master, 4096)
    except OSError:
        pass
    os.close(master)
    return p.returncode, err.decode(errors="replace"), echoed.decode(errors="replace")


tty_pw = "terminal password 1"
rc, err, echoed = tty_setpassword(tty_pw, tty_pw)
t.is_(rc, 0, "setpassword on a terminal: exit 0")
t.like(err, "New password: ", "it prompts")
t.like(err, "Repeat password: ", "and asks again")
t.ok(tty_pw not in echoed, "the password is not echoed")
password = tty_pw
scram_check("scram_sha256", "terminal password: SCRAM-SHA-256", "sha256", 4096)

rc, err, echoed = tty_setpassword("terminal password 2", "terminal password 3")
t.is_(rc, 1, "two different passwords on the terminal: exit 1")
t.like(err, "do not match", "saying they do not match")
scram_check("scram_sha256", "unchanged after the mismatch: SCRAM-SHA-256", "sha256", 4096)

# ---- TLS public keys ----


def openssl_cert(name, newkey, cn=None):
    key = os.path.join(d, name + ".key")
    cert = os.path.join(d, name + ".pem")
    subj = "/CN=" + cn if cn else "/"
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", subj,
                        "-keyout", key, "-out", cert] + newkey,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        t.diag("openssl req: " + r.stderr)
    with open(cert) as f:
        return f.read(), cert, key


def fingerprint(cert_path):
    """base64url(SHA-256(DER SubjectPublicKeyInfo)) without padding."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


rsa1024, _, _ = openssl_cert("rsa1024", ["-newkey", "rsa:1024"], "small")
rsa2048, rsa2048_path, _ = openssl_cert("rsa2048", ["-newkey", "rsa:2048"], "desktop")
p256, p256_path, p256_key = openssl_cert(
    "p256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "phone cert")
ed, ed_path, _ = openssl_cert("ed", ["-newkey", "ed25519"], "laptop")

r = gannet(["config", "tlspubkey", "add", "mjl@example.org"], stdin=rsa1024)
t.is_(r.returncode, 1, "RSA 1024: refused (exit 1)")
t.like(r.stderr, "2048", "saying 2048 bits are needed")

r = must(["config", "tlspubkey", "add", "mjl@example.org"], stdin=rsa2048)
t.is_(r.returncode, 0, "RSA 2048: added")
fp_rsa = r.stdout.strip()
t.is_(fp_rsa, fingerprint(rsa2048_path), "RSA 2048: the printed fingerprint is SHA-256 of the SPKI")

r = must(["config", "tlspubkey", "add", "--no-imap-preauth", "mjl@example.org", "my phone"],
         stdin=p256)
t.is_(r.returncode, 0, "P-256 with a name and --no-imap-preauth: added")
fp_p256 = r.stdout.strip()
t.is_(fp_p256, fingerprint(p256_path), "P-256: fingerprint")

r = must(["config", "tlspubkey", "add", "mjl@example.org"], stdin=ed)
t.is_(r.returncode, 0, "ed25519: added")
fp_ed = r.stdout.strip()
t.is_(fp_ed, fingerprint(ed_path), "ed25519: fingerprint")
t.is_(len(fp_ed), 43, "fingerprints are 43 characters")

r = gannet(["config", "tlspubkey", "add", "mjl@example.org"], stdin=ed)
t.is_(r.returncode, 1, "the same key again: exit 1")
t.like(r.stderr, "already registered", "saying so")
r = gannet(["config", "tlspubkey", "add", "mjl@EXAMPLE.org"], stdin=rsa1024.replace("x", "x"))
t.is_(r.returncode, 1, "an address not in canonical form: exit 1")
_, other_path, _ = openssl_cert("other", ["-newkey", "ed25519"], "other")
with open(other_path) as f:
    other = f.read()
r = gannet(["config", "tlspubkey", "add", "mjl@EXAMPLE.org"], stdin=other)
t.is_(r.returncode, 1, "an upper-case domain is not canonical: exit 1")
t.like(r.stderr, "canonical", "saying it is not canonical")
r = gannet(["config", "tlspubkey", "add", "nobody@example.org"], stdin=other)
t.is_(r.returncode, 1, "an address of no account: exit 1")
t.like(r.stderr, "nobody@example.org", "naming it")
with open(p256_key) as f:
    r = gannet(["config", "tlspubkey", "add", "mjl@example.org"], stdin=other + f.read())
t.is_(r.returncode, 1, "certificate and key together (two PEM blocks): exit 1")
r = gannet(["config", "tlspubkey", "add", "mjl@example.org"], stdin="hello\n")
t.is_(r.returncode, 1, "no PEM: exit 1")
r = gannet(["config", "tlspubkey", "add"], stdin=other)
t.is_(r.returncode, 2, "add without an address: bad usage, exit 2")
r = gannet(["config", "tlspubkey", "add", "--bogus", "mjl@example.org"], stdin=other)
t.is_(r.returncode, 2, "add with an unknown option: exit 2")

r = must(["config", "tlspubkey", "list"])
t.is_(r.returncode, 0, "list")
rows = [line.split("\t") for line in r.stdout.splitlines() if not line.startswith("#")]
t.is_(sorted(x[0] for x in rows), sorted([fp_rsa, fp_p256, fp_ed]), "list shows the three keys")
by_fp = {x[0]: x for x in rows}
t.is_(by_fp.get(fp_rsa, [None] * 6)[1:], ["rsa-2048", "desktop", "mjl", "mjl@example.org", "no"],
      "RSA row: type rsa-2048, name from the CN, account, address, preauth")
t.is_(by_fp.get(fp_p256, [None] * 6)[1:], ["ecdsa-p256", "my phone", "mjl", "mjl@example.org", "yes"],
      "P-256 row: given name and the no-IMAP-preauth flag")
t.is_(by_fp.get(fp_ed, [None] * 6)[1:3], ["ed25519", "laptop"], "ed25519 row")
r = must(["config", "tlspubkey", "list", "mjl"])
t.is_(len([x for x in r.stdout.splitlines() if not x.startswith("#")]), 3, "list mjl: 3 keys")
r = gannet(["config", "tlspubkey", "list", "nobody"])
t.is_(r.returncode, 1, "list of an unknown account: exit 1")

r = must(["config", "tlspubkey", "get", fp_p256])
t.is_(r.returncode, 0, "get")
t.like(r.stdout, "type: ecdsa-p256\n", "get: type")
t.like(r.stdout, "name: my phone\n", "get: name")
t.like(r.stdout, "account: mjl\n", "get: account")
t.like(r.stdout, "address: mjl@example.org\n", "get: address")
t.like(r.stdout, "no imap preauth: yes\n", "get: no-IMAP-preauth")
pem_out = r.stdout[r.stdout.find("-----BEGIN CERTIFICATE-----"):]
t.is_(pem_out.split(), p256.split(), "get: the certificate in PEM, as added")
r = gannet(["config", "tlspubkey", "get", "AAAA"])
t.is_(r.returncode, 1, "get of an unknown fingerprint: exit 1")
r = gannet(["config", "tlspubkey", "get", "-_AA"])
t.is_(r.returncode, 1, "a fingerprint may start with '-' (base64url): not taken for an option")
t.like(r.stderr, "no such key: -_AA", "no such key")
r = gannet(["config", "tlspubkey", "rm", "-_AA"])
t.is_(r.returncode, 1, "rm of a fingerprint starting with '-': exit 1, no such key")
r = gannet(["config", "tlspubkey", "get"])
t.is_(r.returncode, 2, "get without a fingerprint: exit 2")

r = must(["config", "tlspubkey", "rm", fp_rsa])
t.is_(r.returncode, 0, "rm")
r = gannet(["config", "tlspubkey", "rm", fp_rsa])
t.is_(r.returncode, 1, "rm again: exit 1")
t.like(r.stderr, fp_rsa, "naming the fingerprint")
r = must(["config", "tlspubkey", "list"])
t.is_(len([x for x in r.stdout.splitlines() if not x.startswith("#")]), 2, "two keys left")

# ---- gen ----

stem = os.path.join(d, "mykey")
before = time.time()
r = must(["config", "tlspubkey", "gen", stem])
t.is_(r.returncode, 0, "gen")
fp_gen = r.stdout.strip()
files = sorted(f for f in os.listdir(d) if f.startswith("mykey."))
t.is_(len(files), 3, "gen writes three files")
ts = files[0].split(".")[1] if files else ""
t.ok(len(ts) == 12 and ts.isdigit(), "named with a YYYYMMDDhhmm time stamp")
want = ["mykey.%s.certificate.pem" % ts, "mykey.%s.ed25519privatekey-certificate.pem" % ts,
        "mykey.%s.ed25519privatekey.pkcs8.pem" % ts]
t.is_(files, want, "the file names")
t.ok(all(stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode) == 0o600 for f in files),
     "all of mode 0600")
cert_path = os.path.join(d, want[0])
key_path = os.path.join(d, want[2])
t.is_(fp_gen, fingerprint(cert_path), "the printed fingerprint is the certificate's")
with open(key_path) as f:
    t.like(f.read(), "-----BEGIN PRIVATE KEY-----", "the key file is PKCS#8 PEM")
pub_from_key = subprocess.run(["openssl", "pkey", "-in", key_path, "-pubout"],
                              capture_output=True, text=True).stdout
pub_from_cert = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                               capture_output=True, text=True).stdout
t.ok(pub_from_key and pub_from_key == pub_from_cert, "the certificate is for the key")
text = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-text"],
                      capture_output=True, text=True).stdout
t.like(text, "ED25519", "an ed25519 certificate")
serial = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-serial"],
                        capture_output=True, text=True).stdout.strip()
try:
    serial_v = int(serial.split("=", 1)[1], 16)
except (IndexError, ValueError):
    serial_v = 0
t.ok(int(before) - 1 <= serial_v <= int(time.time()) + 1, "serial = the unix time (%s)" % serial)
subj = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-subject"],
                      capture_output=True, text=True).stdout.strip()
t.ok(subj.rstrip() in ("subject=", "subject= "), "no subject (%r)" % subj)
with open(os.path.join(d, want[1])) as f:
    both = f.read()
t.ok("PRIVATE KEY" in both and "CERTIFICATE" in both, "the combined file has key and certificate")
with open(cert_path) as f:
    r = must(["config", "tlspubkey", "add", "mjl@example.org"], stdin=f.read())
t.is_(r.stdout.strip(), fp_gen, "the generated certificate can be added, same fingerprint")
r = must(["config", "tlspubkey", "get", fp_gen])
t.like(r.stdout, "name: serial ", "no CN: named after its serial")
r = gannet(["config", "tlspubkey", "gen", stem])
t.ok(r.returncode == 1 or len([f for f in os.listdir(d) if f.startswith("mykey.")]) == 6,
     "gen never overwrites files (exit 1 within the same minute)")

# Keys go with their account.
must(["config", "account", "add", "other", "other@example.org"])
must(["config", "account", "rm", "mjl"])
r = must(["config", "tlspubkey", "list"])
t.is_([x for x in r.stdout.splitlines() if not x.startswith("#")], [],
      "removing the account removes its keys")
t.is_(sql("SELECT count(*) FROM gn_credentials"), "0", "and its credentials")

t.done()
