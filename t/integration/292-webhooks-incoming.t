#!/usr/bin/env python3
"""
t/integration/292-webhooks-incoming.t: the webhooks module's incoming
webhook (issue 12 item 2, mox.md 1.7): `gannet serve` with the smtp,
aliases and webhooks modules takes messages over SMTP (smtplib); a
receiver in this test (http.server over TLS on loopback) gets mox's
Incoming payload for each one stored in an account with an incoming
webhook:

- the request: headers, the Authorization configured, the Standard
  Webhooks signature verified here with hmac and the account's secret;
- the payload: From/To/CC/ReplyTo with names decoded, Subject, MessageID,
  InReplyTo, References, Date, Text (quoted-printable ISO-8859-1 decoded
  to UTF-8, CRLF made LF), HTML, the Structure with an RFC 2231 filename
  decoded (as Python's email package reads it), Meta (MsgID, MailFrom,
  RcptTo, MailboxName, Automated false, DKIMVerifiedDomains an array);
- a message with List-Id, and one from <>: Automated true;
- an alias with two members, each account with an incoming webhook: one
  payload for each, RcptTo the member;
- an account without an incoming webhook: nothing.
"""
import atexit
import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import re
import smtplib
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "aliases", "webhooks")
d = gt.tmpdir()
hcert, hkey = gt.make_cert(d, "hooks", "hooks.example", sans=["hooks.example"])
p25, HOOK_PORT = gt.free_port(), gt.free_port()
got = []
got_lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with got_lock:
            got.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Receiver)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(hcert, hkey)
httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
atexit.register(httpd.shutdown)

g = gt.Gannet(gt.base_conf(
    listeners='{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }' % p25,
    modules='directory = "%s"; load = [ "smtp", "aliases", "webhooks" ];' % moddir,
    extra=('workers = 1;\ntls = { client_ca_file = "%s"; };\nsmtp = { postmaster = "alice"; };\n'
           'queue = { transport = "none"; };\nwebhooks = { timeout = "5s"; };\n'
           'dns = { local_data = [ "hooks.example. IN A 127.0.0.1" ]; };') % hcert),
    directory=d)


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


URL = "https://hooks.example:%d" % HOOK_PORT
setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "account", "add", "carol", "carol@example.com"),
         ("config", "alias", "add", "team@example.com", "alice@example.com", "bob@example.com", "--post-public"),
         ("config", "account", "webhook", "set", "bob", "incoming", URL + "/bob")]
t.ok(all(gannet(*a).returncode == 0 for a in setup)
     and gannet("config", "account", "webhook", "set", "alice", "incoming", URL + "/alice", "-",
                stdin="Basic YWxpY2U=\n").returncode == 0, "accounts alice, bob, carol, alias team (alice, bob), "
     "incoming webhooks for alice and bob")
m = re.search(r"secret: whsec_(\S+)", gannet("config", "account", "webhook", "show", "alice").stdout)
SECRET = base64.b64decode(m.group(1)) if m else b""
try:
    g.start(wait_ports=(p25,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()
    sys.exit(1)
t.ok(True, "gannet serve starts with smtp, aliases and webhooks")


def send(mail_from, rcpts, msg):
    with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
        s.sendmail(mail_from, rcpts, msg)


def wait_for(n, seconds=20):
    """The requests once n came (the runner sends them; `queue webhook run` too)."""
    end = time.time() + seconds
    while time.time() < end:
        with got_lock:
            if len(got) >= n:
                break
        gannet("queue", "webhook", "run")
        time.sleep(0.5)
    time.sleep(0.5)
    with got_lock:
        r = list(got)
        got.clear()
    return r


MSG = (b"From: =?utf-8?q?Zo=C3=AB_Sender?= <zoe@sender.example>\r\n"
       b"To: Alice <alice@example.com>\r\n"
       b"Cc: carol@example.com\r\n"
       b"Reply-To: replies@sender.example\r\n"
       b"Subject: =?utf-8?q?caf=C3=A9_report?=\r\n"
       b"Message-ID: <m1@sender.example>\r\n"
       b"In-Reply-To: <m0@sender.example>\r\n"
       b"References: <m-1@sender.example> <m0@sender.example>\r\n"
       b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
       b"--b1\r\n"
       b"Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"
       b"--b2\r\n"
       b"Content-Type: text/plain; charset=iso-8859-1\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"Caf=E9 line one\r\nline two=\r\n continued\r\n"
       b"--b2\r\n"
       b"Content-Type: text/html; charset=utf-8\r\n\r\n"
       b"<p>caf\xc3\xa9</p>\r\n"
       b"--b2--\r\n"
       b"--b1\r\n"
       b"Content-Type: application/pdf\r\n"
       b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n"
       b"JVBERi0xLjQK\r\n"
       b"--b1--\r\n")
send("zoe@sender.example", ["alice@example.com", "carol@example.com"], MSG)
reqs = wait_for(1)
t.is_([r["path"] for r in reqs], ["/alice"], "alice's message: one request, to alice's URL (carol has no webhook)")
req = reqs[0] if reqs else {"headers": {}, "body": b"{}"}
h = req["headers"]
t.ok(h.get("content-type") == "application/json; charset=utf-8" and h.get("authorization") == "Basic YWxpY2U=" and
     h.get("x-mox-webhook-attempt") == "1" and h.get("webhook-id") == h.get("x-mox-webhook-id"),
     "the headers, with the Authorization configured")
signed = ("%s.%s." % (h.get("webhook-id", ""), h.get("webhook-timestamp", ""))).encode() + req["body"]
t.is_(h.get("webhook-signature"), "v1," + base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest())
      .decode(), "the signature verifies with alice's secret")
p = json.loads(req["body"])
t.is_(list(p.keys()), ["Version", "From", "To", "CC", "BCC", "ReplyTo", "Subject", "MessageID", "InReplyTo",
                       "References", "Date", "Text", "HTML", "Structure", "Meta"], "mox's Incoming fields in order")
t.is_((p.get("From"), p.get("To"), p.get("CC"), p.get("BCC"), p.get("ReplyTo")),
      ([{"Name": "Zoë Sender", "Address": "zoe@sender.example"}], [{"Name": "Alice", "Address": "alice@example.com"}],
       [{"Name": "", "Address": "carol@example.com"}], [], [{"Name": "", "Address": "replies@sender.example"}]),
      "From, To, CC, BCC, ReplyTo (names decoded)")
t.is_((p.get("Subject"), p.get("MessageID"), p.get("InReplyTo"), p.get("References")),
      ("café report", "<m1@sender.example>", "<m0@sender.example>", ["<m-1@sender.example>", "<m0@sender.example>"]),
      "Subject, MessageID, InReplyTo, References")
t.ok(p.get("Date", "").startswith("2026-12-06T05:00:00"), "Date")
# RFC 2046 5.1.1: the CRLF before a boundary belongs to the boundary.
t.is_(p.get("Text"), "Café line one\nline two continued", "Text: the first text/plain, decoded, UTF-8, LF")
t.is_(p.get("HTML"), "<p>café</p>", "HTML: the first text/html")
py = email.message_from_bytes(MSG, policy=email.policy.default)
att = [part for part in py.walk() if part.get_content_disposition() == "attachment"][0]
st = p.get("Structure", {})
parts = st.get("Parts", [])
t.ok(st.get("ContentType") == "multipart/mixed" and len(parts) == 2 and
     [x["ContentType"] for x in parts[0].get("Parts", [])] == ["text/plain", "text/html"] and
     parts[0]["Parts"][0]["ContentTypeParams"] == {"charset": "iso-8859-1"}, "Structure: the tree and params")
t.is_((parts[1].get("ContentType"), parts[1].get("ContentDisposition"), parts[1].get("Filename"),
       parts[1].get("DecodedSize")) if len(parts) > 1 else None,
      ("application/pdf", "attachment", att.get_filename(), 9), "the attachment: its filename as Python decodes it, "
      "its decoded size")
meta = p.get("Meta", {})
t.ok(isinstance(meta.get("MsgID"), int) and meta["MsgID"] > 0, "Meta.MsgID")
t.is_((meta.get("MailFrom"), meta.get("RcptTo"), meta.get("MailboxName"), meta.get("Automated"),
       meta.get("DKIMVerifiedDomains"), meta.get("MailFromValidated")),
      ("zoe@sender.example", "alice@example.com", "Inbox", False, [], False),
      "Meta: MailFrom, RcptTo, MailboxName, Automated, DKIMVerifiedDomains (none), MailFromValidated")
t.is_(meta.get("RemoteIP"), "127.0.0.1", "Meta.RemoteIP: the SMTP client's address")

# ---- Automated ----
send("list@sender.example", ["alice@example.com"],
     b"From: list@sender.example\r\nTo: alice@example.com\r\nList-Id: <news.sender.example>\r\n"
     b"Subject: news\r\n\r\nNews.\r\n")
reqs = wait_for(1)
t.is_([json.loads(r["body"])["Meta"]["Automated"] for r in reqs], [True], "List-Id: Automated")
send("", ["alice@example.com"], b"From: mailer-daemon@sender.example\r\nTo: alice@example.com\r\n"
     b"Subject: bounce\r\n\r\nBounce.\r\n")
reqs = wait_for(1)
t.is_([(json.loads(r["body"])["Meta"]["Automated"], json.loads(r["body"])["Meta"]["MailFrom"]) for r in reqs],
      [(True, "")], "MAIL FROM <>: Automated, MailFrom empty")

# ---- an alias: one payload a member ----
send("zoe@sender.example", ["team@example.com"],
     b"From: zoe@sender.example\r\nTo: team@example.com\r\nSubject: to the team\r\n\r\nHi team.\r\n")
reqs = wait_for(2)
got_members = sorted((r["path"], json.loads(r["body"])["Meta"]["RcptTo"], json.loads(r["body"])["Subject"])
                     for r in reqs)
t.is_(got_members, [("/alice", "alice@example.com", "to the team"), ("/bob", "bob@example.com", "to the team")],
      "an alias: one payload for each member's account, RcptTo the member")

# ---- nobody with a webhook ----
send("zoe@sender.example", ["carol@example.com"], b"From: zoe@sender.example\r\nSubject: carol only\r\n\r\nHi.\r\n")
t.is_(wait_for(1, seconds=4), [], "carol has no incoming webhook: nothing sent")
r = gannet("queue", "webhook", "retired", "list")
t.is_(r.stdout.count("event=incoming"), 0, "retired hooks are not kept without a keep period")
t.is_(gannet("queue", "webhook", "list").stdout, "", "nothing waits")

g.stop()
t.done()
