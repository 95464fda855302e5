#!/usr/bin/env python3
"""
t/integration/177-imap-mbsync.t: real clients that synchronise, against a
running `gannet serve` (issue 8, item 5, part):

- mbsync (isync) syncs INBOX and Archive with a local Maildir both ways
  over implicit TLS, trusting only the server's self-signed certificate:
  the first run brings the server's messages (byte for byte, flags as
  Maildir flags) into the Maildir; then messages put in the Maildir are
  appended to the server, flags changed on either side reach the other,
  a message deleted on either side (Maildir T flag, or \\Deleted and
  EXPUNGE on the server) is expunged on the other; a run with no changes
  sends no APPEND, STORE or EXPUNGE, and leaves the server's UIDNEXT,
  HIGHESTMODSEQ and messages and the Maildir's files as they were;
- curl over imap:// with STARTTLS required (--ssl-reqd) lists the
  mailboxes and fetches a message.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
import maildirsync  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

t = gt.Tap()
srv = imaptest.Server(t, starttls=True)
# mbsync checks the certificate's name against Host: a certificate for
# localhost, written over the one the server was configured with.
cert, _ = gt.make_cert(srv.dir, "imap", "localhost", sans=["localhost"])
t.ok(srv.setup(3), "an account with three messages in its Inbox")
srv.start()

m = srv.session()
archive_msg = b"From: archivist@example.org\r\nSubject: kept\r\n\r\nan old message\r\n"
t.is_(m.append("Archive", "(\\Seen)", None, archive_msg)[0], "OK",
      "a seen message in Archive (a mailbox every account has)")
m.select("INBOX")
m.store("2", "+FLAGS", "(\\Flagged)")
m.logout()

maildir = os.path.join(srv.dir, "mail")
os.mkdir(maildir)
rc = os.path.join(srv.dir, "mbsyncrc")
with open(rc, "w") as f:
    # isync 1.4 (Debian 12) spells TLSType as SSLType.
    f.write("""IMAPAccount gannet
Host localhost
Port %d
User alice@example.com
Pass "%s"
SSLType IMAPS
CertificateFile %s
SystemCertificates no

IMAPStore remote
Account gannet

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Archive
Create Both
Expunge Both
SyncState *
""" % (srv.port, PASSWORD, cert, maildir, maildir))


def mbsync():
    """Runs mbsync with its protocol trace; returns (exit code, output,
    the IMAP commands it sent, without their tags)."""
    p = subprocess.run(["mbsync", "-c", rc, "-Dn", "sync"], capture_output=True, text=True,
                       timeout=120)
    out = p.stdout + p.stderr
    # The trace shows what it sends as "F: >>> TAG COMMAND ...", with
    # "(N in progress) " before it when pipelined.
    sent = [m.group(1) for m in re.finditer(r">>> \d+ (.*)$", out, re.M)]
    # and what it receives as "F: TAG OK ..." (or NO, BAD).
    refused = re.findall(r"^F: \d+ (?:NO|BAD) .*$", out, re.M)
    t.is_(refused, [], "mbsync: the server refused none of its commands")
    if p.returncode != 0:
        t.diag(out[-4000:])
    return p.returncode, out, sent


sync = maildirsync.Sync(t, srv, maildir, "mbsync")
maildir_files, all_files, server_box, server_state, lf, same = (
    sync.files, sync.all_files, sync.server, sync.server_state, sync.normal, sync.same)


# ---- first run: the server's messages come down ----
code, out, sent = mbsync()
t.is_(code, 0, "mbsync's first run succeeds")
t.like(out, "Connection is now encrypted", "over TLS, trusting the server's certificate")
inbox = maildir_files("INBOX")
t.is_(sorted(inbox), [1, 2, 3], "INBOX's three messages are in the Maildir")
t.ok(same("INBOX"), "the same messages (LF line ends and mbsync's X-TUID aside), with their flags")
t.is_(inbox[2][1], {"\\Flagged"}, "\\Flagged became the Maildir flag F")
t.ok(same("Archive"), "Archive is in the Maildir too, its message seen (S)")

# ---- changes on both sides ----
# The Maildir: a new message in INBOX/new and a large one (3 MB of UTF-8
# text: APPEND and FETCH stream it), UID 1 seen, UID 3 trashed.
new_msg = b"From: me@example.com\nSubject: written offline\n\nhello from the Maildir\n"
with open(os.path.join(maildir, "INBOX", "new", "1700000000.1_1.offline"), "wb") as f:
    f.write(new_msg)
line = "Grüße aus dem Maildir, Zeile %06d: " + "x" * 60 + "\n"
big_local = (b"From: me@example.com\nSubject: large\nContent-Type: text/plain; charset=utf-8\n"
             b"Content-Transfer-Encoding: 8bit\n\n"
             + "".join(line % i for i in range(30000)).encode())
with open(os.path.join(maildir, "INBOX", "new", "1700000000.2_1.offline"), "wb") as f:
    f.write(big_local)
for uid, letters in ((1, "S"), (3, "T")):
    path = maildir_files("INBOX")[uid][0]
    base = path.rsplit(":2,", 1)[0] if ":2," in path else path
    os.rename(path, os.path.join(maildir, "INBOX", "cur", os.path.basename(base) + ":2," + letters))
# The server: UID 2 unflagged and answered, a message appended to Archive
# and Archive's first message deleted and expunged.
m = srv.session()
m.select("INBOX")
m.uid("STORE", "2", "FLAGS", "(\\Answered)")
server_msg = b"From: friend@example.org\r\nSubject: sent while away\r\n\r\nnews\r\n"
m.append("Archive", None, None, server_msg)
big_server = (b"From: friend@example.org\r\nSubject: photos\r\nContent-Type: text/plain\r\n\r\n"
              + b"".join(b"line %06d of a large message on the server\r\n" % i for i in range(70000)))
m.append("Archive", None, None, big_server)
m.select("Archive")
m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
m.expunge()
m.logout()

code, out, sent = mbsync()
t.is_(code, 0, "mbsync's second run succeeds")
t.ok(any(c.startswith("APPEND") for c in sent) and any(c.startswith("UID STORE") for c in sent),
     "its trace shows the APPEND and STORE it sent")
srv_inbox = server_box("INBOX")
uploaded = [uid for uid, (body, _) in srv_inbox.items() if lf(body) == new_msg]
t.is_(len(uploaded), 1, "the message put in the Maildir is on the server, once")
t.ok(uploaded and uploaded[0] > 3, "with a new UID (%s)" % uploaded)
t.is_(len([uid for uid, (body, _) in srv_inbox.items() if lf(body) == big_local]), 1,
      "the large one too (%d octets), byte for byte" % len(big_local))
t.ok(1 in srv_inbox and "\\Seen" in srv_inbox[1][1], "the Maildir's S reached the server as \\Seen")
t.ok(3 not in srv_inbox, "the message trashed in the Maildir was expunged on the server")
deleted = [i for i, c in enumerate(sent) if re.match(r"UID STORE 3 \+FLAGS(\.SILENT)? \(\\Deleted\)", c)]
t.ok(deleted and any(re.match(r"(UID )?EXPUNGE|CLOSE", c) for c in sent[deleted[0]:]),
     "mbsync set \\Deleted on it and expunged it (CLOSE or EXPUNGE)")
local = maildir_files("INBOX")
t.is_(local.get(2, (None, None))[1], {"\\Answered"}, "the server's flag change reached the Maildir (R, no F)")
t.ok(3 not in local, "and the trashed file is gone from the Maildir")
t.ok(same("INBOX"), "INBOX: server and Maildir agree")
archive = maildir_files("Archive")
t.ok(1 not in archive, "the message expunged on the server is gone from the Maildir")
t.ok(any(lf(open(p, "rb").read()) == lf(server_msg) for p, _ in archive.values()),
     "the message appended on the server is in the Maildir")
t.ok(any(lf(open(p, "rb").read()) == lf(big_server) for p, _ in archive.values()),
     "and the large one (%d octets)" % len(big_server))
t.ok(same("Archive"), "Archive: server and Maildir agree")

# ---- a run with no changes changes nothing ----
before = (server_state("Inbox"), server_state("Archive"), all_files(),
          server_box("INBOX"), server_box("Archive"))
code, out, sent = mbsync()
t.ok(code == 0 and any(c.startswith("SELECT") for c in sent),
     "a third run, with nothing changed, succeeds (it selected the mailboxes)")
writes = [c for c in sent if re.match(r"(UID )?(APPEND|STORE|EXPUNGE|COPY|MOVE|CREATE|DELETE)", c)]
t.is_(writes, [], "and sends no APPEND, STORE, EXPUNGE, CREATE")
t.is_(server_state("Inbox"), before[0], "INBOX's UIDNEXT, HIGHESTMODSEQ and count are unchanged")
t.is_(server_state("Archive"), before[1], "Archive's too")
t.is_(all_files(), before[2], "the Maildir's files are the same")
t.ok(server_box("INBOX") == before[3] and server_box("Archive") == before[4],
     "the server's messages and flags are the same")
code, out, sent = mbsync()
t.is_((code, [c for c in sent if re.match(r"(UID )?(APPEND|STORE|EXPUNGE)", c)], all_files()),
      (0, [], before[2]), "a fourth run: the same")

# ---- curl over imap:// with STARTTLS ----
url = "imap://127.0.0.1:%d/" % srv.port_starttls
p = subprocess.run(["curl", "-sS", "-k", "--ssl-reqd", "-u", "alice@example.com:" + PASSWORD, url],
                   capture_output=True, timeout=30)
t.is_(p.returncode, 0, "curl imap:// --ssl-reqd: STARTTLS, login, LIST")
lines = [ln.rstrip("\r") for ln in p.stdout.decode(errors="replace").splitlines()]
listed = [re.match(r'\* LIST \([^)]*\) "/" "?([^"]*)"?$', ln) for ln in lines]
t.ok({"INBOX", "Archive"} <= {x.group(1) for x in listed if x}, "it lists INBOX and Archive")
if p.returncode != 0:
    t.diag(p.stderr.decode())
p = subprocess.run(["curl", "-sS", "-k", "--ssl-reqd", "-u", "alice@example.com:" + PASSWORD,
                    url + "INBOX;UID=%d" % uploaded[0]], capture_output=True, timeout=30)
t.is_(p.returncode, 0, "curl fetches INBOX;UID=%d" % uploaded[0])
t.ok(p.stdout == srv_inbox[uploaded[0]][0] and lf(p.stdout) == new_msg,
     "the message mbsync uploaded, byte for byte as the server keeps it")
p = subprocess.run(["curl", "-sS", "-u", "alice@example.com:" + PASSWORD, url],
                   capture_output=True, timeout=30)
t.ok(p.returncode != 0, "curl without TLS is refused a plain-text login (exit %d)" % p.returncode)

t.done()
