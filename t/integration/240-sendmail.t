#!/usr/bin/env python3
"""
t/integration/240-sendmail.t: `gannet sendmail` (issue 9, item 8) and the
SMTP client's AUTH and client certificates, against a running gannet with
the submission module (587, STARTTLS) and against t/lib/smtpsink.py:

- a password: STARTTLS, the certificate verified, SCRAM-SHA-256-PLUS
  chosen (the login recorded with that mechanism); without TLS the
  password never goes out (exit 77, no AUTH attempt recorded), even with
  auth_mechanism = PLAIN; a wrong password: 535, "authentication failed",
  exit 77 (EX_NOPERM);
- a PEM client certificate and a raw Ed25519 seed (both from `gannet
  config tlspubkey gen`, registered for alice): logged in without a
  password (AUTH EXTERNAL, offered first with a certificate);
- a config with a password that others can read: refused, exit 78;
  no config: exit 66; bad usage: 64; no recipient: 65;
- a message that passed every check is queued by the submission module
  (250 at the end of data, in `gannet queue list`): exit 0;
- against the sink (STARTTLS, a certificate and no AUTH: the client goes
  on without AUTH): exactly what goes over the wire: the envelope (-f,
  the config's from), -t's recipients from To, Cc and Bcc added to the
  command line's, Bcc removed, From added when missing (with -F's name),
  lines starting with a dot kept, a lone "." ending the input without -i
  and kept with -i and -oi, ignored options (-oem -odi -B8BITMIME) taken,
  and the binary called "sendmail" behaving as `gannet sendmail`;
- against the sink's own SASL (smtpsink.py "auth"): SCRAM-SHA-256 before
  SCRAM-SHA-1 and PLAIN, PLAIN when it is all there is (over TLS), a wrong
  server signature and a 235 without one refused (exit 77, no message),
  a 535, and no usable mechanism.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

moddir = gt.module_dir()
gt.install_modules(t, moddir, "submission")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p587 = gt.free_port()
listeners = ('{ name = "sub"; address = "127.0.0.1"; port = %d; protocol = "submission"; '
             'tls = "starttls"; }' % p587)
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
         'auth = { failures_per_minute = 10000; failures_per_minute_net = 10000; '
         'failures_per_minute_wide = 10000; failures_per_day = 10000; '
         'failures_per_day_net = 10000; failures_per_day_wide = 10000; };\n') % (cert, key)
g = gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                           modules='directory = "%s"; load = [ "submission" ];' % moddir),
              directory=d)
PW = "alice's password 1"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "migrate, domain, accounts alice and bob")
t.is_(gannet("setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")

# A key pair made by gannet: the PEM with key and certificate, and the seed.
os.chdir(d)
r = gannet("config", "tlspubkey", "gen", os.path.join(d, "alicekey"))
seed = re.search(r"seed \(base64url\): (\S+)", r.stderr)
pems = [f for f in os.listdir(d) if f.startswith("alicekey.") and
        f.endswith("ed25519privatekey-certificate.pem")]
crts = [f for f in os.listdir(d) if f.startswith("alicekey.") and f.endswith(".certificate.pem")]
t.ok(r.returncode == 0 and seed is not None and len(pems) == 1 and len(crts) == 1,
     "gannet config tlspubkey gen: a PEM with key and certificate, and the seed")
SEED = seed.group(1) if seed else ""
PEM = os.path.join(d, pems[0]) if pems else ""
with open(os.path.join(d, crts[0]) if crts else os.devnull) as f:
    t.is_(gannet("config", "tlspubkey", "add", "alice@example.com", "key a",
                 stdin=f.read()).returncode, 0, "its certificate registered for alice")
# Another key, not registered.
r = gannet("config", "tlspubkey", "gen", os.path.join(d, "otherkey"))
other = re.search(r"seed \(base64url\): (\S+)", r.stderr)
OTHER_SEED = other.group(1) if other else ""

try:
    g.start(wait_ports=(p587,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with submission")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with submission")


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


def write_conf(name, lines, mode=0o600):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("# test config\n" + "\n".join(lines) + "\n")
    os.chmod(path, mode)
    return path


def sub_conf(name, *lines, port=None, tls=True):
    base = ["host = 127.0.0.1", "port = %d" % (port or p587),
            "tls = %s" % ("starttls" if tls else "none"),
            "tls_ca = %s" % cert, "tls_name = mail.test", "from = alice@example.com"]
    return write_conf(name, base + list(lines))


def sendmail(conf, *args, msg=b"Subject: hi\n\nHello.\n", argv0=None, env=None):
    e = dict(os.environ)
    e.pop("GANNET_SENDMAIL_CONF", None)
    e.update(env or {})
    cmd = [argv0] if argv0 else [gt.GANNET, "sendmail"]
    if conf is not None:
        cmd += ["-C", conf]
    r = subprocess.run(cmd + list(args), input=msg, capture_output=True, timeout=60, env=e)
    err = r.stderr.decode("utf-8", "replace")
    if os.environ.get("GANNET_TEST_VERBOSE"):
        t.diag(err)
    return r.returncode, err


def attempts(mech=None, result=None):
    q = "SELECT coalesce(sum(count), 0) FROM gn_auth_attempts WHERE protocol = 'submission'"
    if mech:
        q += " AND mechanism = '%s'" % mech
    if result:
        q += " AND result = '%s'" % result
    return int(sql(q))


QUEUED_EXIT = 0
QUEUED_TEXT = "S: 250 2.0.0 Message queued as "   # with -v

# ---- a password ----
pw = sub_conf("pw.conf", "username = alice@example.com", "password = %s" % PW)
rc, err = sendmail(pw, "-v", "bob@example.com")
t.is_(rc, QUEUED_EXIT, "password: exit 0")
t.like(err, QUEUED_TEXT, "the end of data: 250, the message is queued")
ql = gt.run_gannet(["-c", g.conf_path, "queue", "list"])
t.ok(ql.returncode == 0 and "bob@example.com" in ql.stdout,
     "gannet queue list has it, for bob@example.com")
t.like(err, "tls TLS1.3", "the session is TLS 1.3 (STARTTLS)")
t.like(err, "C: AUTH SCRAM-SHA-256-PLUS (initial response hidden)",
       "SCRAM-SHA-256-PLUS is chosen, the strongest offered")
t.ok(PW not in err and "cGFzc3dvcmQ" not in err, "the password is not shown with -v")
t.like(err, "S: 235 2.7.0", "and the server says 235")
t.ok(attempts("scram-sha-256-plus", "ok") >= 1, "the login is recorded as SCRAM-SHA-256-PLUS")
t.like(err, "C: MAIL FROM:<alice@example.com>", "MAIL FROM is the config's from")
t.like(err, "C: RCPT TO:<bob@example.com>", "RCPT TO the command line's recipient")

bad = sub_conf("badpw.conf", "username = alice@example.com", "password = not the password")
rc, err = sendmail(bad, "bob@example.com")
t.is_(rc, 77, "a wrong password: exit 77 (EX_NOPERM)")
t.like(err, "authentication failed: 535 5.7.8", "and says authentication failed: 535 5.7.8")

before = attempts()
cl = sub_conf("clear.conf", "username = alice@example.com", "password = %s" % PW, tls=False)
rc, err = sendmail(cl, "-v", "bob@example.com")
t.is_(rc, 77, "without TLS: exit 77")
t.like(err, "offers no AUTH without TLS", "the password is not sent without TLS")
cl = sub_conf("clearplain.conf", "username = alice@example.com", "password = %s" % PW,
              "auth_mechanism = PLAIN", tls=False)
rc, err = sendmail(cl, "-v", "bob@example.com")
t.ok(rc == 77 and "AUTH PLAIN is never used without TLS" in err,
     "not even with auth_mechanism = PLAIN: exit 77")
t.ok("C: AUTH" not in err, "no AUTH line was sent")
t.is_(attempts(), before, "no AUTH attempt reached the server")

# The mechanism can be forced; PLAIN over TLS works.
pl = sub_conf("plain.conf", "username = alice@example.com", "password = %s" % PW,
              "auth_mechanism = PLAIN")
rc, err = sendmail(pl, "-v", "bob@example.com")
t.ok(rc == QUEUED_EXIT and "C: AUTH PLAIN (initial response hidden)" in err and
     "S: 235" in err, "auth_mechanism = PLAIN over TLS: logged in, queued (exit 0)")
sc1 = sub_conf("sha1.conf", "username = alice@example.com", "password = %s" % PW,
               "auth_mechanism = SCRAM-SHA-1")
rc, err = sendmail(sc1, "-v", "bob@example.com")
t.ok(rc == QUEUED_EXIT and "C: AUTH SCRAM-SHA-1 " in err and "S: 235" in err,
     "auth_mechanism = SCRAM-SHA-1: logged in, the server's signature checked")

dead = sub_conf("dead.conf", "username = alice@example.com", "password = %s" % PW,
                port=gt.free_port())
rc, err = sendmail(dead, "bob@example.com")
t.is_(rc, 75, "nothing listening: exit 75 (EX_TEMPFAIL, try again)")
t.like(err, "connect failed", "and says the connection failed")

# ---- client certificates ----
pemc = sub_conf("pem.conf", "client_cert_pem = %s" % PEM)
rc, err = sendmail(pemc, "-v", "bob@example.com")
t.is_(rc, QUEUED_EXIT, "PEM client certificate: exit 0")
t.like(err, "C: AUTH EXTERNAL", "AUTH EXTERNAL, offered with the certificate")
t.like(err, "S: 235 2.7.0", "accepted")
t.like(err, "C: MAIL FROM:<alice@example.com>", "then MAIL FROM")
t.like(err, QUEUED_TEXT, "and the message is queued")

sc = sub_conf("seed.conf", "client_ed25519_seed = %s" % SEED)
rc, err = sendmail(sc, "-v", "bob@example.com")
t.is_(rc, QUEUED_EXIT, "Ed25519 seed: exit 0")
t.like(err, "S: 235 2.7.0", "the certificate made from the seed logs in (EXTERNAL)")
t.like(err, QUEUED_TEXT, "the message is queued")

oc = sub_conf("other.conf", "client_ed25519_seed = %s" % OTHER_SEED)
rc, err = sendmail(oc, "bob@example.com")
t.is_(rc, 77, "an unregistered key: exit 77 (no login)")
t.like(err, "authentication failed", "authentication failed")

# ---- config, usage and input errors ----
wr = sub_conf("world.conf", "username = alice@example.com", "password = %s" % PW)
os.chmod(wr, 0o644)
rc, err = sendmail(wr, "bob@example.com")
t.is_(rc, 78, "a config with a password readable by others: exit 78 (EX_CONFIG)")
t.like(err, "holds a secret and is readable by others", "with a clear error")
os.chmod(PEM, 0o644)
rc, err = sendmail(pemc, "bob@example.com")
t.ok(rc == 78 and "a private key readable by others" in err,
     "a key file readable by others: refused, exit 78")
os.chmod(PEM, 0o600)
two = sub_conf("two.conf", "username = alice@example.com", "password = x",
               "client_ed25519_seed = %s" % SEED)
rc, err = sendmail(two, "bob@example.com")
t.ok(rc == 78 and "exactly one of" in err, "a password and a seed: exit 78")
rc, err = sendmail(os.path.join(d, "nonexistent.conf"), "bob@example.com")
t.is_(rc, 66, "no config file: exit 66")
rc, err = sendmail(None, "bob@example.com", env={"GANNET_SENDMAIL_CONF": pw})
t.is_(rc, QUEUED_EXIT, "$GANNET_SENDMAIL_CONF names the config (exit 0)")
rc, err = sendmail(pw, "-bp")
t.ok(rc == 64 and "not supported" in err, "-bp (another mode): exit 64")
rc, err = sendmail(pw, "-Q")
t.is_(rc, 64, "an unknown option: exit 64")
rc, err = sendmail(pw)
t.ok(rc == 65 and "no recipients" in err, "no recipient: exit 65")
rc, err = sendmail(pw, "root")
t.ok(rc == 65 and "no domain" in err, "a recipient without a domain and no default_domain: 65")
big = sub_conf("big.conf", "username = alice@example.com", "password = %s" % PW,
               "max_message_size = 100")
rc, err = sendmail(big, "bob@example.com", msg=b"Subject: x\n\n" + b"a" * 200)
t.ok(rc == 65 and "larger than max_message_size" in err, "a message over max_message_size: 65")
huge = sub_conf("huge.conf", "username = alice@example.com", "password = %s" % PW,
                "max_message_size = 18446744073709547520")
rc, err = sendmail(huge, "bob@example.com")
t.ok(rc == 78 and "max_message_size: at most 4294967296" in err,
     "max_message_size past 4 GiB (here 2^64 - 4096, which wrapped the buffer's limit to none): exit 78")

# ---- the wire, against the sink ----
SINK = os.path.join(gt.SRCDIR, "t", "lib", "smtpsink.py")
scert, skey = gt.make_cert(d, "sink", "sink.test")
record, script = os.path.join(d, "sink.jsonl"), os.path.join(d, "sink.json")
with open(script, "w") as f:
    json.dump({}, f)
sink = subprocess.Popen([sys.executable, SINK, "--record", record, "--script", script,
                         "--cert", scert, "--key", skey], stdout=subprocess.PIPE, text=True)
ready = sink.stdout.readline().split()
sport = int(ready[1]) if len(ready) == 2 and ready[0] == "ready" else 0
t.ok(sport > 0, "the sink listens")
wire = write_conf("wire.conf", ["host = 127.0.0.1", "port = %d" % sport, "tls_ca = %s" % scert,
                                "tls_name = sink.test", "from = alice@example.com",
                                "client_ed25519_seed = %s" % SEED,
                                "default_domain = example.com"])


def sink_messages():
    with open(record) as f:
        evs = [json.loads(ln) for ln in f if ln.strip()]
    open(record, "w").close()
    return [e for e in evs if e["event"] == "message"]


MSG = (b"To: To One <to1@example.net>, to2@example.net\n"
       b"Cc: cc@example.net\n"
       b"Bcc: hidden@example.net,\n  hidden2@example.net\n"
       b"Subject: wire\n\n"
       b"first\n.dotted line\n.\nafter the lone dot\n")
open(record, "w").close()
rc, err = sendmail(wire, "-t", "-i", "-f", "bounce@example.com", "-F", 'Al "the" Ice',
                   "extra@example.org", msg=MSG)
t.is_(rc, 0, "to the sink (STARTTLS, certificate, no AUTH offered): exit 0")
ms = sink_messages()
t.is_(len(ms), 1, "one message arrived")
m = ms[0] if ms else {"from": "", "rcpts": [], "data": "", "tls": False}
t.is_(m["from"], "bounce@example.com", "-f sets the envelope sender")
t.is_(sorted(m["rcpts"]), sorted(["extra@example.org", "to1@example.net", "to2@example.net",
                                  "cc@example.net", "hidden@example.net", "hidden2@example.net"]),
      "-t: To, Cc and Bcc (folded) recipients, added to the command line's")
t.ok(m["tls"], "over TLS")
t.ok("Bcc" not in m["data"] and "hidden" not in m["data"], "Bcc is removed from the message")
t.is_(m["data"], 'From: "Al \\"the\\" Ice" <alice@example.com>\r\n'
      "To: To One <to1@example.net>, to2@example.net\r\nCc: cc@example.net\r\n"
      "Subject: wire\r\n\r\nfirst\r\n.dotted line\r\n.\r\nafter the lone dot\r\n",
      "the message as sent: From added with -F's name, dots kept with -i, CRLF")

rc, err = sendmail(wire, "-oem", "-odi", "-B8BITMIME", "-oi", "--", "root",
                   msg=b"From: Cron <alice@example.com>\nSubject: cron\n\nout\n.\nmore\n")
ms = sink_messages()
t.ok(rc == 0 and len(ms) == 1, "-oem -odi -B8BITMIME -oi --: ignored options taken, exit 0")
m = ms[0] if ms else {"from": "", "rcpts": [], "data": ""}
t.is_(m["rcpts"], ["root@example.com"], "a recipient without a domain gets default_domain")
t.is_(m["from"], "alice@example.com", "without -f the envelope sender is the config's from")
t.is_(m["data"], "From: Cron <alice@example.com>\r\nSubject: cron\r\n\r\nout\r\n.\r\nmore\r\n",
      "-oi keeps the lone dot; an existing From is kept, none added")

# The binary itself (core/gannet in the build tree is libtool's wrapper
# script, which would hide the name).
real = os.path.join(gt.BUILDDIR, "core", ".libs", "gannet")
LINK_NAME = "sendmail"   # gannet under that name, not Postfix's
link = os.path.join(d, LINK_NAME)
os.symlink(real if os.path.exists(real) else gt.GANNET, link)
libs = os.path.join(gt.BUILDDIR, "core", ".libs")
rc, err = sendmail(None, "bob@example.net", argv0=link,
                   env={"GANNET_SENDMAIL_CONF": wire, "LD_LIBRARY_PATH": libs},
                   msg=b"Subject: no -i\n\nbefore\n.\nafter\n")
ms = sink_messages()
t.ok(rc == 0 and len(ms) == 1, "called as \"sendmail\": gannet sendmail (exit 0)")
m = ms[0] if ms else {"data": "", "rcpts": []}
t.is_(m["rcpts"], ["bob@example.net"], "with the recipient of the command line")
t.is_(m["data"], "From: <alice@example.com>\r\nSubject: no -i\r\n\r\nbefore\r\n",
      "without -i a lone \".\" ends the message; From added without a name")

with open(script, "w") as f:
    json.dump({"rcpt": {"temp@example.net": "451 4.2.0 later", "*": "250 2.1.5 ok"}}, f)
rc, err = sendmail(wire, "temp@example.net")
t.is_(rc, 75, "a 451 at RCPT: exit 75 (EX_TEMPFAIL)")
t.like(err, "recipient temp@example.net: 451 4.2.0 later", "said with the server's reply")
with open(script, "w") as f:
    json.dump({"rcpt": {"gone@example.net": "550 5.1.1 unknown", "*": "250 2.1.5 ok"}}, f)
rc, err = sendmail(wire, "gone@example.net")
t.is_(rc, 69, "a 550 at RCPT: exit 69 (EX_UNAVAILABLE)")
t.like(err, "recipient gone@example.net: 550 5.1.1 unknown", "said with the server's reply")

# ---- AUTH on the wire, against the sink's own SASL ----


def sink_script(obj):
    with open(script, "w") as f:
        json.dump(obj, f)


def sink_auths():
    """The sink's AUTH and message events, once every connection it took
    has ended (the client may exit before the sink has written what it
    heard last)."""
    deadline = time.time() + 30
    while True:
        with open(record) as f:
            evs = [json.loads(ln) for ln in f if ln.strip()]
        opened = sum(1 for e in evs if e["event"] == "connect")
        closed = sum(1 for e in evs if e["event"] == "close")
        if opened == closed or time.time() > deadline:
            break
        time.sleep(0.05)
    return [e for e in evs if e["event"] == "auth"], [e for e in evs if e["event"] == "message"]


wpw = write_conf("wirepw.conf", ["host = 127.0.0.1", "port = %d" % sport, "tls_ca = %s" % scert,
                                 "tls_name = sink.test", "from = alice@example.com",
                                 "username = sinkuser", "password = sink pass"])
AUTH = {"mechanisms": "PLAIN SCRAM-SHA-1 SCRAM-SHA-256", "user": "sinkuser",
        "password": "sink pass"}
open(record, "w").close()
sink_script({"auth": AUTH})
rc, err = sendmail(wpw, "r@example.net")
auths, ms = sink_auths()
t.is_(rc, 0, "the sink's AUTH with SCRAM and PLAIN offered: exit 0")
t.is_([(e["mechanism"], e["ok"], e["tls"]) for e in auths], [("SCRAM-SHA-256", True, True)],
      "SCRAM-SHA-256 chosen over SCRAM-SHA-1 and PLAIN (no -PLUS offered), over TLS, once")
t.is_(len(ms), 1, "then the message")

open(record, "w").close()
sink_script({"auth": dict(AUTH, mechanisms="LOGIN PLAIN")})
rc, err = sendmail(wpw, "r@example.net")
auths, ms = sink_auths()
t.ok(rc == 0 and [(e["mechanism"], e["authcid"], e["ok"]) for e in auths] ==
     [("PLAIN", "sinkuser", True)], "only PLAIN (and LOGIN) offered: PLAIN over TLS, the right "
     "login and password")

open(record, "w").close()
sink_script({"auth": dict(AUTH, bad_signature=True)})
rc, err = sendmail(wpw, "r@example.net")
auths, ms = sink_auths()
t.is_(rc, 77, "a server whose SCRAM signature is wrong: exit 77")
t.like(err, "signature is wrong", "the client says the server's signature is wrong")
t.ok(len(auths) == 1 and auths[0].get("client_gave_up") and not ms,
     "it gives up at the signature and sends no message")

open(record, "w").close()
sink_script({"auth": dict(AUTH, no_final=True)})
rc, err = sendmail(wpw, "r@example.net")
auths, ms = sink_auths()
t.ok(rc == 77 and "without proving it knows the password" in err and not ms,
     "a 235 before the server's signature is not believed: exit 77, no message")

open(record, "w").close()
sink_script({"auth": dict(AUTH, password="another")})
rc, err = sendmail(wpw, "r@example.net")
auths, ms = sink_auths()
t.ok(rc == 77 and "authentication failed: 535 5.7.8" in err and len(auths) == 1 and not ms,
     "the sink refuses the proof: 535, exit 77, one attempt, no message")

open(record, "w").close()
sink_script({"auth": dict(AUTH, mechanisms="CRAM-MD5 LOGIN")})
rc, err = sendmail(wpw, "r@example.net")
auths, ms = sink_auths()
t.ok(rc == 77 and "no AUTH mechanism the client can use" in err and not auths and not ms,
     "no mechanism the client has: exit 77, nothing sent")

sink.kill()
sink.wait()
g.stop()
t.done()
