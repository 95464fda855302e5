#!/usr/bin/env python3
"""
t/integration/180-imap-offlineimap.t: offlineimap (Debian's offlineimap3)
syncs INBOX and Archive with a local Maildir both ways over implicit TLS,
trusting only the server's self-signed certificate (issue 8, item 5,
part; the same shape as mbsync's 177):

- the first run brings the server's messages (flags as Maildir flags)
  into the Maildir;
- then a message put in the Maildir is appended to the server, flags
  changed on either side reach the other, a message deleted on either side
  (its file removed, or \\Deleted and EXPUNGE on the server) is gone from
  the other;
- a run with no changes sends no APPEND, STORE or EXPUNGE and leaves the
  server's UIDNEXT, HIGHESTMODSEQ and messages and the Maildir's files as
  they were.
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
srv = imaptest.Server(t)
# offlineimap checks the certificate's name against remotehost.
cert, _ = gt.make_cert(srv.dir, "imap", "localhost", sans=["localhost"])
t.ok(srv.setup(3), "an account with three messages in its Inbox")
srv.start()

m = srv.session()
t.is_(m.append("Archive", "(\\Seen)", None,
               b"From: archivist@example.org\r\nSubject: kept\r\n\r\nan old message\r\n")[0],
      "OK", "a seen message in Archive")
m.select("INBOX")
m.store("2", "+FLAGS", "(\\Flagged)")
m.logout()

maildir = os.path.join(srv.dir, "mail")
os.mkdir(maildir)
rc = os.path.join(srv.dir, "offlineimaprc")
with open(rc, "w") as f:
    f.write("""[general]
accounts = gannet
metadata = %s/offlineimap-state

[Account gannet]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = %s

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = %d
remoteuser = alice@example.com
remotepass = %s
ssl = yes
sslcacertfile = %s
folderfilter = lambda name: name in ['INBOX', 'Archive']
maxconnections = 1
""" % (srv.dir, maildir, srv.port, PASSWORD.replace("%", "%%"), cert))


def offlineimap():
    """One sync (-o) with the IMAP trace (-d imap); returns (exit code,
    output, the IMAP commands it sent, without their tags)."""
    p = subprocess.run(["offlineimap", "-c", rc, "-o", "-u", "basic", "-d", "imap"],
                       capture_output=True, text=True, timeout=180)
    out = p.stdout + p.stderr
    # imaplib2's trace: writer > b'TAG COMMAND ...\r\n'
    sent = re.findall(r"writer > b'\w+ (.*?)\\r\\n", out)
    refused = re.findall(r"reader < b'\w+ (?:NO|BAD) .*", out)
    t.is_(refused, [], "offlineimap: the server refused none of its commands")
    if p.returncode != 0 or "ERROR" in out:
        t.diag("\n".join(ln for ln in out.splitlines() if not ln.startswith("[imap]"))[-4000:])
    return p.returncode, out, sent


sync = maildirsync.Sync(t, srv, maildir, "offlineimap")
files, server_box, same = sync.files, sync.server, sync.same

# ---- first run ----
code, out, sent = offlineimap()
t.ok(code == 0 and "ERROR" not in out, "offlineimap's first run succeeds")
t.ok(any(c.startswith("LOGIN") or c.startswith("AUTHENTICATE") for c in sent), "it logged in")
t.is_(sorted(files("INBOX")), [1, 2, 3], "INBOX's three messages are in the Maildir")
t.ok(same("INBOX"), "the same messages (LF line ends), with their flags")
t.is_(files("INBOX")[2][1], {"\\Flagged"}, "\\Flagged became the Maildir flag F")
t.ok(same("Archive"), "Archive is in the Maildir too, its message seen (S)")

# ---- changes on both sides ----
new_msg = b"From: me@example.com\nSubject: written offline\n\nhello from the Maildir\n"
with open(os.path.join(maildir, "INBOX", "new", "1700000000.1_1.offline"), "wb") as f:
    f.write(new_msg)
path = files("INBOX")[1][0]
os.rename(path, os.path.join(maildir, "INBOX", "cur",
                             os.path.basename(path).rsplit(":2,", 1)[0] + ":2,S"))
os.unlink(files("INBOX")[3][0])
m = srv.session()
m.select("INBOX")
m.uid("STORE", "2", "FLAGS", "(\\Answered)")
server_msg = b"From: friend@example.org\r\nSubject: sent while away\r\n\r\nnews\r\n"
m.append("Archive", None, None, server_msg)
m.select("Archive")
m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
m.expunge()
m.logout()

code, out, sent = offlineimap()
t.ok(code == 0 and "ERROR" not in out, "offlineimap's second run succeeds")
t.ok(any(c.startswith("APPEND") for c in sent) and any(re.match(r"(UID )?STORE", c) for c in sent),
     "its trace shows the APPEND and STORE it sent")
srv_inbox = server_box("INBOX")
uploaded = [uid for uid, (body, _) in srv_inbox.items() if sync.normal(body) == new_msg]
t.ok(len(uploaded) == 1 and uploaded[0] > 3,
     "the message put in the Maildir is on the server, once, with a new UID (%s)" % uploaded)
t.ok(1 in srv_inbox and "\\Seen" in srv_inbox[1][1], "the Maildir's S reached the server as \\Seen")
t.ok(3 not in srv_inbox, "the message removed from the Maildir is gone from the server")
t.is_(files("INBOX").get(2, (None, None))[1], {"\\Answered"},
      "the server's flag change reached the Maildir (R, no F)")
t.ok(same("INBOX"), "INBOX: server and Maildir agree")
archive = files("Archive")
t.ok(1 not in archive, "the message expunged on the server is gone from the Maildir")
t.ok(same("Archive") and len(archive) == 1, "Archive: server and Maildir agree, the new message in both")

# ---- runs with no changes change nothing ----
before = (sync.server_state("Inbox"), sync.server_state("Archive"), sync.all_files(),
          server_box("INBOX"), server_box("Archive"))
for run in ("third", "fourth"):
    code, out, sent = offlineimap()
    writes = [c for c in sent if re.match(r"(UID )?(APPEND|STORE|EXPUNGE|COPY|MOVE|CREATE|DELETE)", c)]
    t.ok(code == 0 and "ERROR" not in out and any(c.startswith("SELECT") for c in sent),
         "a %s run, with nothing changed, succeeds (it selected the mailboxes)" % run)
    t.is_(writes, [], "and sends no APPEND, STORE, EXPUNGE, CREATE")
    t.is_((sync.server_state("Inbox"), sync.server_state("Archive")), before[:2],
          "UIDNEXT, HIGHESTMODSEQ and counts are unchanged")
    t.is_(sync.all_files(), before[2], "the Maildir's files are the same")
    t.ok(server_box("INBOX") == before[3] and server_box("Archive") == before[4],
         "the server's messages and flags are the same")
t.done()
