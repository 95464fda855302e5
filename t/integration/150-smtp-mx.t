#!/usr/bin/env python3
"""
t/integration/150-smtp-mx.t: the smtp module (the inbound MX) in a running
`gannet serve` on a PostgreSQL cluster of its own, with real clients
(Python's smtplib with and without STARTTLS, swaks, raw sockets):

- mail to a hosted address lands in the account's Inbox, byte for byte,
  with Return-Path, Delivered-To and Received (with the TLS version and
  cipher over STARTTLS) as the stored prefix, never in the body;
- an unknown local recipient gets 550 5.1.1, a domain that is not hosted
  550 5.7.1 (no relaying), and a message to a good and a bad recipient is
  stored once, for the good one;
- SMTPUTF8: a localpart sent in NFC and in NFD reaches the same account;
  an IDN domain in Unicode and in Punycode reaches the same account;
- a client that disconnects mid-DATA leaves nothing stored;
- postmaster (RFC 5321 4.5.1): the bare <Postmaster> and postmaster@ each
  hosted domain reach the account of smtp.postmaster, unless an address
  was added by hand; not relayed for other domains;
- recipients refused at RCPT leave the transaction: 10 unknown and a good
  one within max_recipients 10, and no failure report after DATA;
- an 8-bit HELO is escaped in Received; 101 Received fields are a loop
  (554 5.4.6); an SRS return path of 104 octets is accepted and kept;
- a PostgreSQL restart during a session: 451 4.3.0 (temporary), nothing
  stored for that attempt, and the retry is stored exactly once.
"""
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "modules", "smtp", ".libs", "smtp.so")
if not os.path.exists(MODULE):
    t.ok(False, "the smtp module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "smtp.so"))
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)

# A cluster of our own: the test restarts it.
cl = gt.PgCluster.create()
gt._cluster = cl

d = gt.tmpdir()
cert, key = gt.make_cert(d, "mx", "mail.test")
port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; '
              'tls = "starttls"; }' % port,
    modules='directory = "%s"; load = [ "smtp" ];' % moddir,
    extra="""workers = 1;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
smtp = { max_message_size = "1M"; max_recipients = 10; postmaster = "hostmaster"; };
""" % (cert, key)), directory=d)


def gannet(*args):
    r = gt.run_gannet(["-c", g.conf_path] + list(args))
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.returncode


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "domain", "add", "bücher.example"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "jose", "jösé@example.com"),
         ("config", "account", "add", "bert", "bert@bücher.example"),
         ("config", "account", "add", "hostmaster", "hostmaster@example.com")]
t.ok(all(gannet(*a) == 0 for a in setup), "migrate, domains and accounts")

try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()


def sql(q):
    return cl.psql(q, db=g.dbname)


def count(account):
    return int(sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
                   "WHERE a.name = '%s'" % account))


def last_message(account):
    """(prefix, body) of the account's newest message."""
    mid = sql("SELECT m.id FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
              "WHERE a.name = '%s' ORDER BY m.id DESC LIMIT 1" % account)
    prefix = sql("SELECT encode(prefix, 'hex') FROM gn_messages WHERE id = %s" % mid)
    body = sql("SELECT encode(string_agg(c.data, ''::bytea ORDER BY c.seq), 'hex') "
               "FROM gn_messages m JOIN gn_blob_chunks c ON c.blob_id = m.blob_id "
               "WHERE m.id = %s" % mid)
    return bytes.fromhex(prefix).decode("utf-8"), bytes.fromhex(body or "")


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
msg = (b"From: Sender <s@example.org>\r\nTo: alice@example.com\r\nSubject: hello\r\n"
       b"Message-ID: <1@example.org>\r\n\r\nHello Alice.\r\n")

# ---- smtplib, plain ----
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    res = s.sendmail("s@example.org", ["alice@example.com"], msg)
t.is_(res, {}, "smtplib: accepted")
t.is_(count("alice"), 1, "one message in alice's account")
prefix, body = last_message("alice")
t.is_(body, msg, "the body is stored byte for byte (no header written into it)")
t.ok(prefix.startswith("Return-Path: <s@example.org>\r\nDelivered-To: alice@example.com\r\n"
                       "Received: from client.example.org ([127.0.0.1]) by mail.test"),
     "prefix: Return-Path, Delivered-To, Received")
t.like(prefix, "with ESMTP id ", "Received: with ESMTP")
t.like(prefix, "for <alice@example.com>; ", "Received: for the recipient, then the date")
t.ok(prefix.endswith("\r\n") and "\n\n" not in prefix, "prefix lines end in CRLF")
mbox = sql("SELECT b.name FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
           "JOIN gn_accounts a ON a.id = m.account_id WHERE a.name = 'alice' LIMIT 1")
t.is_(mbox, "Inbox", "stored in the Inbox")

# ---- smtplib with STARTTLS ----
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    s.starttls(context=ctx)
    s.ehlo("client.example.org")
    s.sendmail("s@example.org", ["alice@example.com"], msg)
t.is_(count("alice"), 2, "STARTTLS: stored")
prefix, _ = last_message("alice")
t.like(prefix, "with ESMTPS", "Received: with ESMTPS")
t.ok("(using TLS1.3 with cipher " in prefix or "(using TLS1.2 with cipher " in prefix,
     "Received names the TLS version and cipher")

# ---- recipients ----
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    s.mail("s@example.org")
    code, text = s.rcpt("nobody@example.com")
    t.is_(code, 550, "unknown local recipient: 550")
    t.like(text.decode(), "5.1.1", "with 5.1.1")
    code, text = s.rcpt("someone@elsewhere.example")
    t.is_(code, 550, "a domain not hosted here: 550")
    t.like(text.decode(), "5.7.1", "with 5.7.1 (no relaying)")
    code, text = s.rcpt("someone@[127.0.0.1]")
    t.is_(code, 550, "an address literal: 550 (no relaying)")
    code, _ = s.rcpt("Alice@Example.COM")
    t.is_(code, 250, "a hosted address in other case: 250")
    code, _ = s.data(msg)
    t.is_(code, 250, "DATA with one good recipient: 250")
t.is_(count("alice"), 3, "stored once, for the good recipient")

try:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail("s@example.org", ["nobody@example.com"], msg)
    t.ok(False, "a message to an unknown recipient only is refused")
except smtplib.SMTPRecipientsRefused as e:
    t.is_(e.recipients["nobody@example.com"][0], 550, "smtplib sees the refusal (550)")

# ---- SMTPUTF8: NFC and NFD localparts, IDN domains ----
nfc = unicodedata.normalize("NFC", "jösé")
nfd = unicodedata.normalize("NFD", "jösé")
t.ok(nfc != nfd, "the two forms differ as strings")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    for lp in (nfc, nfd):
        s.mail("s@example.org", ["SMTPUTF8"])
        code, _ = s.rcpt("%s@example.com" % lp)
        t.is_(code, 250, "SMTPUTF8 recipient in %s: 250" % ("NFC" if lp == nfc else "NFD"))
        code, _ = s.data(b"Subject: utf8\r\n\r\nx\r\n")
        t.is_(code, 250, "and delivered")
t.is_(count("jose"), 2, "both landed in the same account")
prefix, _ = last_message("jose")
t.like(prefix, "Delivered-To: %s@example.com\r\n" % nfc, "Delivered-To in NFC")
t.like(prefix, "with UTF8SMTP", "Received: with UTF8SMTP")

with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    res = s.sendmail("s@example.org", ["bert@xn--bcher-kva.example"], msg)
    t.is_(res, {}, "IDN domain in Punycode (no SMTPUTF8 needed)")
    s.mail("s@example.org", ["SMTPUTF8"])
    code, _ = s.rcpt("bert@bücher.example")
    t.is_(code, 250, "IDN domain in Unicode with SMTPUTF8")
    code, _ = s.data(msg)
    t.is_(code, 250, "delivered")
    s.mail("s@example.org")
    code, text = s.rcpt("bert@xn--BCHER-kva.example")
    t.is_(code, 250, "Punycode in upper case")
    s.rset()
t.is_(count("bert"), 2, "both spellings of the domain reach the same account")

# ---- swaks ----
sw = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from",
                     "s@example.org", "--to", "alice@example.com", "--helo", "swaks.example",
                     "--tls", "--body", "via swaks"],
                    capture_output=True, text=True, timeout=60)
t.is_(sw.returncode, 0, "swaks with STARTTLS delivers")
if sw.returncode != 0:
    t.diag(sw.stdout[-2000:])
t.is_(count("alice"), 4, "swaks's message stored")
prefix, body = last_message("alice")
t.ok(b"via swaks" in body and "from swaks.example" in prefix, "with its body and HELO")


# ---- raw: pipelining, disconnect mid-DATA ----
class Client:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.sock.makefile("rb")

    def reply(self):
        lines = [self.f.readline().decode(errors="replace").rstrip("\r\n")]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.f.readline().decode(errors="replace").rstrip("\r\n"))
        return "\n".join(lines)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def close(self):
        self.f.close()
        self.sock.close()


c = Client()
c.reply()
c.cmd("EHLO client.example.org")
c.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<x@example.com>\r\n"
       "RCPT TO:<y@relay.example>\r\nDATA\r\n")
got = [c.reply() for _ in range(5)]
t.ok(got[0].startswith("250") and got[1].startswith("250") and got[2].startswith("550 5.1.1")
     and got[3].startswith("550 5.7.1") and got[4].startswith("354"),
     "pipelined: 250 250 550 5.1.1 550 5.7.1 354 in order (%s)" % " | ".join(got))
c.send(b"Subject: pipelined\r\n\r\n..dot\r\n.\r\n")
t.like(c.reply(), "250 2.0.0", "stored")
_, body = last_message("alice")
t.is_(body, b"Subject: pipelined\r\n\r\n.dot\r\n", "dot-unstuffed in the store")
n = count("alice")
blobs = sql("SELECT count(*) FROM gn_messages")
c.cmd("MAIL FROM:<s@example.org>")
c.cmd("RCPT TO:<alice@example.com>")
c.cmd("DATA")
c.send(b"Subject: cut\r\n\r\n" + b"half\r\n" * 1000)
time.sleep(0.3)
aborted = g.log().count("event=smtp_aborted")
c.close()
deadline = time.time() + 10
while time.time() < deadline and g.log().count("event=smtp_aborted") == aborted:
    time.sleep(0.05)
t.ok(g.log().count("event=smtp_aborted") > aborted, "the cut transaction is logged as aborted")
t.is_(count("alice"), n, "a client that disconnects mid-DATA: nothing stored")
t.is_(sql("SELECT count(*) FROM gn_messages"), blobs, "no message anywhere")

# ---- postmaster (RFC 5321 4.5.1), routed to smtp.postmaster ----
def last_prefix_raw(account):
    mid = sql("SELECT m.id FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
              "WHERE a.name = '%s' ORDER BY m.id DESC LIMIT 1" % account)
    return bytes.fromhex(sql("SELECT encode(prefix, 'hex') FROM gn_messages WHERE id = %s"
                             % mid))


pm = count("hostmaster")
for rcpt, delivered in (("Postmaster", "postmaster@mail.test"),
                        ("postmaster@example.com", "postmaster@example.com"),
                        ("POSTMASTER@xn--bcher-kva.example", "POSTMASTER@xn--bcher-kva.example")):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example.org")
        s.mail("s@example.org")
        code, text = s.rcpt(rcpt)
        t.is_(code, 250, "RCPT TO:<%s>: 250 (%s)" % (rcpt, text.decode()))
        code, _ = s.data(msg)
        t.is_(code, 250, "and its message is accepted")
    pm += 1
    t.is_(count("hostmaster"), pm, "stored in the postmaster account")
    prefix, _ = last_message("hostmaster")
    t.like(prefix, "Delivered-To: %s\r\n" % delivered, "Delivered-To: %s" % delivered)
t.is_(gannet("config", "address", "add", "postmaster@example.com", "alice"), 0,
      "an address postmaster@example.com added by hand")
n = count("alice")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.sendmail("s@example.org", ["postmaster@example.com"], msg)
t.ok(count("alice") == n + 1 and count("hostmaster") == pm,
     "then that address gets postmaster@example.com's mail")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    s.mail("s@example.org")
    code, text = s.rcpt("postmaster@elsewhere.example")
    t.ok(code == 550 and b"5.7.1" in text, "postmaster of a domain not hosted: 550 5.7.1, "
         "no relaying")

# ---- a refused recipient leaves the transaction ----
failed_after = g.log().count("event=rcpt_failed_after_data")
n = count("alice")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.example.org")
    s.mail("s@example.org")
    codes = [s.rcpt("nobody%d@example.com" % i)[0] for i in range(10)]
    code, text = s.rcpt("alice@example.com")
    t.is_(codes, [550] * 10, "10 unknown recipients: 550 each")
    t.is_(code, 250, "then a valid one with max_recipients 10: 250, not 452 (%s)"
          % text.decode())
    code, _ = s.data(msg)
    t.is_(code, 250, "the message is accepted")
t.is_(count("alice"), n + 1, "stored once, for alice")
time.sleep(0.2)
t.is_(g.log().count("event=rcpt_failed_after_data"), failed_after,
      "the refused recipients are not reported again after DATA (no backscatter)")

# ---- trace fields: an 8-bit HELO, a mail loop, a long return path ----
c = Client()
c.reply()
c.send(b"EHLO h\xe9llo.example\r\n")
c.reply()
c.cmd("MAIL FROM:<s@example.org>")
c.cmd("RCPT TO:<alice@example.com>")
c.cmd("DATA")
t.like(c.cmd("Subject: helo\r\n\r\nx\r\n."), "250", "a message after an 8-bit HELO")
raw = last_prefix_raw("alice")
t.ok(b"Received: from h\\xE9llo.example ([127.0.0.1])" in raw,
     "Received has the HELO name escaped (%r)" % raw[raw.find(b"Received"):][:50])
t.ok(all(0x20 <= x < 0x7f or x in b"\r\n\t" for x in raw), "the stored prefix is 7-bit")
hops = b"".join(b"Received: from hop%d.example by x; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
                for i in range(101))
n = count("alice")
for k, want in ((100, "250"), (101, "554 5.4.6")):
    c.cmd("MAIL FROM:<s@example.org>")
    c.cmd("RCPT TO:<alice@example.com>")
    c.cmd("DATA")
    c.send(hops[:hops.index(b"hop%d." % k) - len(b"Received: from ")] if k < 101 else hops)
    t.like(c.cmd("Subject: hops\r\n\r\nx\r\n."), want,
           "%d Received fields (limit 100, RFC 5321 6.3): %s" % (k, want))
t.is_(count("alice"), n + 1, "the looping message is not stored")
srs = "SRS0=HHH=TT=example.org=" + "s" * 80
c.cmd("MAIL FROM:<%s@forwarder.example>" % srs)
c.cmd("RCPT TO:<alice@example.com>")
c.cmd("DATA")
t.like(c.cmd("Subject: srs\r\n\r\nx\r\n."), "250", "a %d-octet SRS return path: accepted"
       % len(srs))
prefix, _ = last_message("alice")
t.ok(prefix.startswith("Return-Path: <%s@forwarder.example>\r\n" % srs),
     "and kept whole in Return-Path")
c.close()
n = count("alice")

# ---- PostgreSQL restarts during a session ----
c = Client()
c.reply()
c.cmd("EHLO client.example.org")
c.cmd("MAIL FROM:<s@example.org>")
t.like(c.cmd("RCPT TO:<alice@example.com>"), "250", "before the restart: RCPT 250")
c.cmd("DATA")
c.send(b"Subject: restart\r\n\r\nbody\r\n")


def pg_ctl(action):
    opts = ["-o", "-k %s -p %d -c listen_addresses='' -c fsync=off -c max_connections=300"
            % (cl.host, cl.port), "-l", os.path.join(cl.host, "pg.log")] if action == "start" else []
    subprocess.run(gt._as_run_user([gt._pg_bin("pg_ctl"), "-D", cl.datadir, "-m", "fast", "-w",
                                    action] + opts),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# The server is down while the message ends, and starts again after the
# reply: a restart (stop and start) before the final dot raced with the
# worker's reconnection, which could come first and store the message.
pg_ctl("stop")
r = c.cmd(".")
pg_ctl("start")
t.like(r, "451 4.3.0", "the store fails during the restart: 451 4.3.0 (temporary)")
t.is_(count("alice"), n, "nothing stored for the failed attempt")
# The sender retries (the connection to the database comes back in the
# background).
stored = False
deadline = time.time() + 30
tries = 0
rcpt_replies = []
while time.time() < deadline and not stored:
    tries += 1
    c.cmd("RSET")
    if not c.cmd("MAIL FROM:<s@example.org>").startswith("250"):
        break
    r = c.cmd("RCPT TO:<alice@example.com>")
    rcpt_replies.append(r)
    if r.startswith("4"):
        time.sleep(0.3)
        continue
    if not r.startswith("250"):
        break
    c.cmd("DATA")
    r = c.cmd("Subject: restart\r\n\r\nbody\r\n.")
    stored = r.startswith("250")
    if not stored:
        time.sleep(0.3)
t.ok(stored, "the retry succeeds once the database is back (%d tries)" % tries)
t.ok(all(r.startswith("250") or r.startswith("451 4.3.0") for r in rcpt_replies),
     "RCPT while the database comes back: 250 or 451 4.3.0, nothing else (%s)"
     % " | ".join(rcpt_replies))
t.is_(count("alice"), n + 1, "stored exactly once")
c.cmd("QUIT")
c.close()

t.is_(g.stop(), 0, "gannet stops")
t.done()
