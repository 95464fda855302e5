#!/usr/bin/env python3
"""
t/integration/179-imap-localserve.t: the everyday IMAP cycle with Python's
imaplib, curl and mbsync against `gannet localserve` with the imap and
smtp modules installed (issue 8, item 5, "done when"):

- localserve lists its IMAP listeners (1143 STARTTLS, 1993 implicit TLS,
  shifted) and serves them with its localhost certificate, which the
  client verifies;
- on each listener: login as gannet@localhost with the password localserve
  made, LIST, SELECT, FETCH of a message delivered over SMTP (byte for
  byte after the stored trace fields), STORE of a flag, MOVE to Archive,
  delete (\\Deleted and EXPUNGE), APPEND;
- IDLE on one listener is woken by a delivery through localserve's SMTP
  listener and by an APPEND from a session on the other;
- curl over imap:// (STARTTLS) and imaps://, the certificate verified:
  LIST, FETCH, UID STORE, UID MOVE, \\Deleted and EXPUNGE, APPEND (upload);
- mbsync over STARTTLS: INBOX into a Maildir, a flag set there reaches
  the server, a run with no changes writes nothing.
"""
import imaplib
import os
import random
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as g  # noqa: E402
import maildirsync  # noqa: E402

t = g.Tap()
base = g.tmpdir("gannet-ls-")
d = os.path.join(base, "ls")
moddir = os.path.join(base, "modules")
os.mkdir(moddir, 0o755)
for mod in ("smtp", "imap"):
    path = os.path.join(g.BUILDDIR, "modules", mod, ".libs", mod + ".so")
    if not os.path.exists(path):
        t.ok(False, "the %s module is built (%s)" % (mod, path))
        t.done()
    shutil.copy(path, moddir)
    os.chmod(os.path.join(moddir, mod + ".so"), 0o755)
shift = random.randrange(20000, 40000)
smtp_port, imap_port, imaps_port = 1025 + shift, 1143 + shift, 1993 + shift
env = dict(os.environ, GANNET_LOCALSERVE_DIR="", GANNET_MODULE_DIR=moddir,
           GANNET_LOCALSERVE_PORT_SHIFT=str(shift))
imaplib.Commands.setdefault("MOVE", ("SELECTED",))

p, started, out = g.start_localserve(d, env)


def stop():
    p.send_signal(signal.SIGTERM)
    try:
        rest, _ = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rest, _ = p.communicate()
    return rest


if not t.ok(started, "localserve starts with the imap and smtp modules"):
    t.diag("".join(out + [stop()])[-3000:])
    t.done()
said = "".join(out)
t.like(said, "imap        127.0.0.1:%d (starttls)" % imap_port, "it lists the STARTTLS IMAP listener")
t.like(said, "imap        127.0.0.1:%d (implicit)" % imaps_port, "and the implicit-TLS one")
with open(os.path.join(d, "password")) as f:
    password = f.read().strip()
# The client checks localserve's certificate for the name localhost.
ctx = ssl.create_default_context(cafile=os.path.join(d, "localhost.pem"))
sent = 0


def deliver(subject):
    """A message to gannet@localhost through localserve's SMTP listener;
    returns its text, or None when it was refused."""
    global sent
    msg = ("From: someone@example.org\r\nTo: gannet@localhost\r\nSubject: %s\r\n"
           "Message-ID: <%d.%s@example.org>\r\n\r\nhello, %s\r\n" % (subject, sent, shift, subject))
    try:
        with smtplib.SMTP("localhost", smtp_port, timeout=20) as s:
            s.starttls(context=ctx)
            if s.sendmail("someone@example.org", ["gannet@localhost"], msg) != {}:
                return None
    except (OSError, smtplib.SMTPException) as e:
        t.diag("SMTP: %r" % e)
        return None
    sent += 1
    return msg.encode()


def login(kind):
    if kind == "starttls":
        m = imaplib.IMAP4("localhost", imap_port, timeout=20)
        m.starttls(ssl_context=ctx)
    else:
        m = imaplib.IMAP4_SSL("localhost", imaps_port, ssl_context=ctx, timeout=20)
    m.login("gannet@localhost", password)
    return m


def count(box):
    typ, data = M.status(box, "(MESSAGES)")
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1)) if typ == "OK" else None


def cycle(kind):
    """The everyday cycle on one listener."""
    m = login(kind)
    t.ok(m.state == "AUTH", "%s: logged in as gannet@localhost" % kind)
    typ, data = m.list()
    names = {re.search(rb'"/" "?([^"]*)"?$', x).group(1).decode() for x in data}
    t.ok(typ == "OK" and {"INBOX", "Archive", "Trash", "Sent"} <= names, "%s: LIST (%s)" % (kind, names))
    msg = deliver("cycle over " + kind)
    t.ok(msg is not None, "%s: a message delivered over SMTP" % kind)
    in_archive = count("Archive")
    typ, data = m.select("INBOX")
    n = int(data[0])
    t.ok(typ == "OK" and n >= 1, "%s: SELECT INBOX: %d messages" % (kind, n))
    typ, data = m.fetch(str(n), "(FLAGS BODY.PEEK[])")
    body = data[0][1] if typ == "OK" and isinstance(data[0], tuple) else b""
    t.ok(body.endswith(msg), "%s: FETCH BODY.PEEK[] of the newest: the message as sent, after "
         "the trace fields" % kind)
    t.like(data[0][0].decode() if body else "", "FLAGS ()", "%s: unseen, unflagged" % kind)
    typ, data = m.store(str(n), "+FLAGS", "(\\Flagged)")
    t.ok(typ == "OK" and b"\\Flagged" in data[0], "%s: STORE +FLAGS \\Flagged" % kind)
    typ, data = m.fetch(str(n), "(FLAGS)")
    t.like(data[0].decode(), "\\Flagged", "%s: FETCH FLAGS shows it" % kind)
    typ, data = m._simple_command("MOVE", str(n), "Archive")
    t.is_(typ, "OK", "%s: MOVE to Archive" % kind)
    t.is_(count("Archive"), in_archive + 1, "%s: Archive has one more message" % kind)
    typ, data = m.select("INBOX")
    t.is_(int(data[0]), n - 1, "%s: INBOX one fewer" % kind)
    m.select("Archive")
    typ, data = m.uid("SEARCH", "HEADER", "Subject", "\"cycle over %s\"" % kind)
    uids = data[0].split()
    t.is_(len(uids), 1, "%s: the moved message is in Archive, found by SEARCH" % kind)
    m.uid("STORE", uids[0].decode(), "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    t.ok(typ == "OK" and data[0] is not None, "%s: \\Deleted and EXPUNGE delete it" % kind)
    t.is_(count("Archive"), in_archive, "%s: Archive is as before" % kind)
    new = b"From: gannet@localhost\r\nSubject: draft over %s\r\n\r\nwritten here\r\n" % kind.encode()
    typ, data = m.append("Drafts", "(\\Draft \\Seen)", None, new)
    t.ok(typ == "OK" and b"APPENDUID" in data[0], "%s: APPEND to Drafts" % kind)
    m.select("Drafts", readonly=True)
    uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
    typ, data = m.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
    t.ok(data[0][1] == new and b"\\Draft" in data[0][0], "%s: it comes back as appended" % kind)
    t.is_(m.logout()[0], "BYE", "%s: LOGOUT" % kind)


M = login("implicit")       # for STATUS, beside the cycles
cycle("starttls")
cycle("implicit")

# ---- IDLE ----
idler = login("starttls")
typ, data = idler.select("INBOX")
n = int(data[0])
# imaplib of Python 3.11 has no idle(): the command through its own
# connection, with send() and readline().
idler.send(b"I1 IDLE\r\n")
t.is_(idler.readline(), b"+ idling\r\n", "IDLE over STARTTLS")
t.ok(deliver("wake up") is not None, "a delivery through SMTP")
t.is_(idler.readline(), b"* %d EXISTS\r\n" % (n + 1), "wakes it: EXISTS")
M.append("INBOX", None, None, b"From: gannet@localhost\r\nSubject: from the other\r\n\r\nhi\r\n")
t.is_(idler.readline(), b"* %d EXISTS\r\n" % (n + 2),
      "an APPEND from a session on the implicit-TLS listener wakes it")
idler.send(b"DONE\r\n")
t.is_(idler.readline(), b"I1 OK IDLE terminated\r\n", "DONE")
typ, data = idler.noop()
t.is_(typ, "OK", "the session goes on")
idler.logout()


# ---- curl: list, fetch, flag, move, delete, append ----
def curl(url, *args):
    p = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", os.path.join(d, "localhost.pem"),
                        "-u", "gannet@localhost:" + password] + list(args) + [url],
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        t.diag("curl %s: %s" % (url, p.stderr.decode(errors="replace")))
    return p.returncode, p.stdout


def uid_of(box, subject):
    M.select(box, readonly=True)
    typ, data = M.uid("SEARCH", "HEADER", "Subject", '"%s"' % subject)
    return data[0].split() if typ == "OK" else []


for scheme, port in (("imap", imap_port), ("imaps", imaps_port)):
    url = "%s://localhost:%d/" % (scheme, port)
    code, listing = curl(url)
    t.ok(code == 0 and b'"INBOX"' in listing and b'"Archive"' in listing,
         "curl %s:// (certificate verified): LIST" % scheme)
    subject = "curl over " + scheme
    msg = deliver(subject)
    uid = uid_of("INBOX", subject)
    t.is_(len(uid), 1, "%s: a message delivered for curl" % scheme)
    uid = uid[0].decode() if uid else "0"
    code, body = curl(url + "INBOX;UID=" + uid)
    t.ok(code == 0 and body.endswith(msg), "curl %s://: FETCH of it" % scheme)
    code, out = curl(url + "INBOX", "-X", "UID STORE %s +FLAGS (\\Flagged)" % uid)
    t.ok(code == 0 and b"\\Flagged" in out, "curl %s://: UID STORE +FLAGS \\Flagged" % scheme)
    code, out = curl(url + "INBOX", "-X", "UID MOVE %s Archive" % uid)
    moved = uid_of("Archive", subject)
    t.ok(code == 0 and uid_of("INBOX", subject) == [] and len(moved) == 1,
         "curl %s://: UID MOVE to Archive" % scheme)
    mid = moved[0].decode() if moved else "0"
    code, out = curl(url + "Archive", "-X", "UID STORE %s +FLAGS (\\Deleted)" % mid)
    code2, out = curl(url + "Archive", "-X", "EXPUNGE")
    t.ok(code == 0 and code2 == 0 and b"EXPUNGE" in out and uid_of("Archive", subject) == [],
         "curl %s://: \\Deleted and EXPUNGE delete it" % scheme)
    upload = os.path.join(base, "upload.eml")
    with open(upload, "wb") as f:
        f.write(b"From: gannet@localhost\r\nSubject: uploaded over %s\r\n\r\nby curl\r\n"
                % scheme.encode())
    code, out = curl(url + "Drafts", "-T", upload)
    t.ok(code == 0 and len(uid_of("Drafts", "uploaded over " + scheme)) == 1,
         "curl %s://: APPEND (upload) to Drafts" % scheme)

# ---- mbsync over STARTTLS: down, a flag up, nothing more ----
maildir = os.path.join(base, "mail")
os.mkdir(maildir)
rc = os.path.join(base, "mbsyncrc")
with open(rc, "w") as f:
    f.write("""IMAPAccount local
Host localhost
Port %d
User gannet@localhost
Pass "%s"
SSLType STARTTLS
CertificateFile %s
SystemCertificates no

IMAPStore remote
Account local

MaildirStore near
Path %s/
Inbox %s/INBOX

Channel ls
Far :remote:
Near :near:
Patterns INBOX
Create Near
Expunge Both
SyncState *
""" % (imap_port, password, os.path.join(d, "localhost.pem"), maildir, maildir))


class Localserve:
    """What maildirsync.Sync wants of a server."""

    def session(self):
        return login("implicit")

    def sql(self, q):
        return psql(q)


def psql(sql):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "host=%s/run dbname=gannet user=gannet" % d,
                        "-c", sql], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "psql failed: " + r.stderr


def mbsync():
    r = subprocess.run(["mbsync", "-c", rc, "-Dn", "ls"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        t.diag((r.stdout + r.stderr)[-3000:])
    sent = re.findall(r">>> \d+ (.*)$", r.stdout + r.stderr, re.M)
    return r.returncode, [c for c in sent if re.match(r"(UID )?(APPEND|STORE|EXPUNGE)", c)]


sync = maildirsync.Sync(t, Localserve(), maildir, "mbsync")
code, _ = mbsync()
t.ok(code == 0 and len(sync.files("INBOX")) == count("INBOX") and sync.same("INBOX"),
     "mbsync over STARTTLS brings INBOX into a Maildir (%d messages)" % count("INBOX"))
uid, (path, flags) = min(sync.files("INBOX").items())
os.rename(path, os.path.join(maildir, "INBOX", "cur",
                             os.path.basename(path).rsplit(":2,", 1)[0] + ":2,FS"))
code, writes = mbsync()
t.ok(code == 0 and "\\Flagged" in sync.server("INBOX")[uid][1], "mbsync: a flag set in the Maildir "
     "reaches the server (%s)" % writes)
state = sync.server_state("Inbox")
code, writes = mbsync()
t.ok(code == 0 and writes == [] and sync.server_state("Inbox") == state and sync.same("INBOX"),
     "mbsync: a run with no changes writes nothing")
M.logout()

rest = stop()
t.is_(p.returncode, 0, "localserve stops")
if p.returncode != 0:
    t.diag(rest[-3000:])
t.done()
