#!/usr/bin/env python3
"""
t/integration/294-webapi-send.t: the webapi's Send (issue 12 item 1,
mox.md 1.2 and 1.3, mox's webapisrv Send) with the submission, aliases
and quota modules, a client written here from the reference:

- text only: one text/plain part, a Received field first (no "with"),
  DKIM signatures that python3-dkim verifies, MessageID and one
  Submission per recipient whose QueueMsgID is the recipient's queue id
  (`gannet queue list` shows it; `gannet queue hold ID` takes it);
- text and HTML (multipart/alternative); files as base64 in JSON and as
  multipart/form-data uploads (alternative, inline, attached: the
  nesting of mox), content types given or sniffed; a non-ASCII subject
  and file name; BCC not in the header; Headers and Extra; RequireTLS
  true/false (tls=requiretls / relaxed); FutureRelease (held, released
  later); SaveSent (the Sent mailbox has it, with the Bcc); SaveSent over
  quota: queued, 400 sentOverQuota;
- errors in mox's codes: missingBody, multipleFrom, badAddress, badFrom
  (and an alias with AllowMsgFrom allowed), noRecipients,
  malformedMessageID, messageLimitReached, recipientLimitReached, user
  (bad base64, FutureRelease too far, a structural header).
"""
import base64
import email
import email.policy
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
LIB = os.path.join(gt.SRCDIR, "t", "lib")
d = gt.tmpdir()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "webapi", "submission", "aliases", "quota")
port = gt.free_port()
PASSWORD = "webapi secret 1"
cert, key = gt.make_cert(d, "server", "mail.test")
listeners = ('{ name = "web"; address = "127.0.0.1"; port = %d; protocol = "http"; },\n'
             '{ address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }'
             % (port, gt.free_port()))
g = gt.Gannet(gt.base_conf(
    listeners=listeners,
    modules='directory = "%s"; load = [ "submission", "aliases", "quota", "webapi" ];' % moddir,
    extra=('workers = 1;\nhttp = { max_body = "4M"; };\n'
           'tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
           'queue = { transport = "none"; };') % (cert, key)),
    directory=d)


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "alias", "add", "team@example.com", "alice@example.com", "--allow-msg-from"),
         ("config", "alias", "add", "quiet@example.com", "alice@example.com")]
ok = all(gannet(*a).returncode == 0 for a in setup)
ok = ok and gannet("setpassword", "alice", stdin=PASSWORD + "\n").returncode == 0
recs = {}
for sel, alg in (("ed1", "ed25519"), ("rsa1", "rsa")):
    r = gannet("config", "dkim", "add", "example.com", sel, alg)
    recs.update({name: "".join(parts) for name, parts in gt.txt_records(r.stdout).items()})
t.ok(ok and len(recs) == 2, "accounts alice and bob, aliases, DKIM keys for example.com")
recfile = os.path.join(d, "records.json")
with open(recfile, "w") as f:
    json.dump(recs, f)
g.start(wait_ports=(port,))


def call(method, request, files=()):
    """POST as mox's client: form field "request"; files: (field, filename, ctype, data)."""
    text = json.dumps(request)
    if files:
        b = uuid.uuid4().hex
        body = b"--%s\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n%s\r\n" % (
            b.encode(), text.encode())
        for field, fn, ct, data in files:
            body += b"--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n" % (
                b.encode(), field.encode(), fn.encode())
            if ct:
                body += b"Content-Type: %s\r\n" % ct.encode()
            body += b"\r\n" + data + b"\r\n"
        body += b"--%s--\r\n" % b.encode()
        ct = "multipart/form-data; boundary=" + b
    else:
        body = urllib.parse.urlencode({"request": text}).encode()
        ct = "application/x-www-form-urlencoded"
    h = {"Content-Type": ct, "Authorization": "Basic " + base64.b64encode(
        ("alice@example.com:%s" % PASSWORD).encode()).decode()}
    req = urllib.request.Request("http://127.0.0.1:%d/webapi/v0/%s" % (port, method), data=body,
                                 headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            st, out = r.status, r.read()
    except urllib.error.HTTPError as e:
        st, out = e.code, e.read()
    try:
        return st, json.loads(out)
    except ValueError:
        return st, out


def send(req, files=()):
    return call("Send", req, files)


def is_error(got, code, name):
    st, o = got
    t.ok(st == 400 and isinstance(o, dict) and o.get("Code") == code,
         "%s: 400 %s%s" % (name, code, "" if st == 400 and isinstance(o, dict) and o.get("Code") == code
                            else " (got %s %s)" % (st, o)))


def qrows(rcpt):
    return gannet("queue", "list", "--to", rcpt).stdout.splitlines()


def queued(rcpt):
    """The queued message of the only queue row to rcpt, parsed."""
    rows = qrows(rcpt)
    if len(rows) != 1:
        t.diag("queue rows for %s: %s" % (rcpt, rows))
        return None, b""
    raw = subprocess.run([gt.GANNET, "-c", g.conf_path, "queue", "dump", rows[0].split()[0]],
                         capture_output=True, timeout=60).stdout
    return email.message_from_bytes(raw, policy=email.policy.default), raw


def counts():
    return sql("SELECT (SELECT count(*) FROM gn_queue_messages) || ' ' || "
               "(SELECT count(*) FROM gn_queue_recipients)")


# ---- text only ----
st, o = send({"To": [{"Name": "Xavier", "Address": "x@example.net"}], "Subject": "plain",
              "Text": "hello\nworld\n"})
subs = o.get("Submissions", []) if isinstance(o, dict) else []
t.ok(st == 200 and re.match(r"^<.+@.+>$", o.get("MessageID", "")) and len(subs) == 1
     and subs[0]["Address"] == "x@example.net" and subs[0]["FromID"] == "",
     "Send text only: 200, MessageID, one Submission (%s %s)" % (st, o))
rows = qrows("x@example.net")
t.ok(len(rows) == 1 and subs and rows[0].split()[0] == str(subs[0].get("QueueMsgID")),
     "QueueMsgID is the recipient's queue id (%s)" % rows[:1])
m, raw = queued("x@example.net")
t.ok(m is not None and m.get_content_type() == "text/plain" and m.get_content().replace("\r\n", "\n") == "hello\nworld\n",
     "a single text/plain part with the text")
t.ok(m is not None and str(m["Message-ID"]) == o.get("MessageID") and str(m["From"]) == "alice@example.com"
     and str(m["To"]) == "Xavier <x@example.net>", "From (the login), To, Message-ID")
hdr = raw.split(b"\r\n\r\n", 1)[0]
t.ok(hdr.startswith(b"DKIM-Signature:"), "DKIM signatures first")
rcv = m.get_all("Received") if m is not None else None
t.ok(rcv and len(rcv) == 1 and " with " not in str(rcv[0]) and "for <x@example.net>" in str(rcv[0]),
     "one Received field, for the single recipient, without \"with\" (%s)" % rcv)
mfile = os.path.join(d, "queued.eml")
with open(mfile, "wb") as f:
    f.write(raw)
r = subprocess.run([gt.DEBIAN_PYTHON, os.path.join(LIB, "dkimverify.py"), mfile, recfile],
                   capture_output=True, text=True, timeout=60)
t.is_(r.stdout, "0 pass\n1 pass\n", "python3-dkim verifies both signatures")
held = gannet("queue", "hold", str(subs[0]["QueueMsgID"]) if subs else "0")
t.ok(held.returncode == 0 and "held" in held.stdout, "gannet queue hold takes the QueueMsgID")

# ---- text + HTML, non-ASCII, BCC, Headers, Extra ----
st, o = send({"To": [{"Name": "Jörg Müller", "Address": "j@example.net"}],
              "CC": [{"Address": "c@example.net"}], "BCC": [{"Address": "b@example.net"}],
              "Subject": "Grüße aus Köln", "Text": "Grüße\n", "HTML": "<p>Grüße</p>\n",
              "Headers": [["X-Custom", "yes"]], "Extra": {"User-Id": "42"},
              "References": ["<a@x>", "<b@x>"]})
subs = o.get("Submissions", []) if isinstance(o, dict) else []
t.ok(st == 200 and [s["Address"] for s in subs] == ["j@example.net", "c@example.net", "b@example.net"],
     "Send to To, CC, BCC: a Submission each, in order (%s)" % (o,))
t.is_(len(set(s["QueueMsgID"] for s in subs)), 3, "three recipients, three queue ids")
m, raw = queued("b@example.net")
t.ok(m is not None and m.get_content_type() == "multipart/alternative"
     and [p.get_content_type() for p in m.iter_parts()] == ["text/plain", "text/html"],
     "text and HTML: multipart/alternative")
t.ok(m is not None and str(m["Subject"]) == "Grüße aus Köln" and str(m["To"]) == "Jörg Müller <j@example.net>"
     and raw.isascii(), "non-ASCII subject and name, encoded (the message is ASCII)")
t.ok(m is not None and m["Bcc"] is None and b"b@example.net" not in raw.split(b"\r\n\r\n", 1)[0]
     .replace(b"for <b@example.net>", b""), "BCC not in the header")
t.ok(m is not None and str(m["X-Custom"]) == "yes" and str(m["In-Reply-To"]) == "<b@x>",
     "Headers and References written")
rows = qrows("j@example.net")
t.ok(rows and 'extra={"User-Id": "42"}' in rows[0], "Extra kept with the queue (%s)" % rows[:1])

# ---- files ----
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
st, o = send({"To": [{"Address": "f1@example.net"}], "Text": "see files\n", "HTML": "<img src=cid:img1>",
              "InlineFiles": [{"Name": "pic.png", "ContentID": "<img1>", "Data": base64.b64encode(PNG).decode()}],
              "AttachedFiles": [{"Name": "Über.txt", "ContentType": "text/plain; charset=utf-8",
                                 "Data": base64.b64encode("Inhalt\n".encode()).decode()}]})
t.is_(st, 200, "Send with files in JSON")
m, raw = queued("f1@example.net")
types = [p.get_content_type() for p in m.walk()] if m is not None else []
t.is_(types, ["multipart/mixed", "multipart/related", "multipart/alternative", "text/plain", "text/html",
              "image/png", "text/plain"], "mox's nesting: mixed > related > alternative")
parts = list(m.walk()) if m is not None else []
t.ok(len(parts) == 7 and parts[5].get_content() == PNG and parts[5]["Content-ID"] == "<img1>"
     and parts[5].get_content_disposition() == "inline", "the inline file: sniffed image/png, its Content-ID")
t.ok(len(parts) == 7 and parts[6].get_filename() == "Über.txt" and parts[6].get_content().replace("\r\n", "\n") == "Inhalt\n"
     and parts[6].get_content_disposition() == "attachment", "the attached file: non-ASCII name, content")
st, o = send({"To": [{"Address": "f2@example.net"}], "Text": "uploads\n"},
             files=[("alternativefile", "alt.html", "text/html", b"<b>alt</b>"),
                    ("attachedfile", "data.bin", "", bytes(range(256))),
                    ("attachedfile", "notes.pdf", "", b"%PDF-1.4\n%...\n")])
t.is_(st, 200, "Send with multipart uploads")
m, raw = queued("f2@example.net")
types = [(p.get_content_type(), p.get_filename()) for p in m.walk()] if m is not None else []
t.is_(types, [("multipart/mixed", None), ("multipart/alternative", None), ("text/plain", None),
              ("text/html", "alt.html"), ("application/octet-stream", "data.bin"),
              ("application/pdf", "notes.pdf")], "uploads: given and sniffed types, in mox's places")
parts = list(m.walk()) if m is not None else []
t.ok(len(parts) == 6 and parts[4].get_content() == bytes(range(256)), "an uploaded file's bytes kept")

# ---- RequireTLS, FutureRelease ----
st, o = send({"To": [{"Address": "tls@example.net"}], "Text": "t\n", "RequireTLS": True})
rows = qrows("tls@example.net")
t.ok(st == 200 and rows and "tls=requiretls" in rows[0], "RequireTLS true: tls=requiretls (%s)" % rows[:1])
st, o = send({"To": [{"Address": "relax@example.net"}], "Text": "t\n", "RequireTLS": False})
rows = qrows("relax@example.net")
t.ok(st == 200 and rows and "tls=relaxed" in rows[0], "RequireTLS false: tls=relaxed (%s)" % rows[:1])
st, o = send({"To": [{"Address": "deflt@example.net"}], "Text": "t\n", "RequireTLS": None})
rows = qrows("deflt@example.net")
t.ok(st == 200 and rows and "tls=" not in rows[0].replace("tls=default", ""),
     "RequireTLS null: the default (%s)" % rows[:1])
later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
st, o = send({"To": [{"Address": "later@example.net"}], "Text": "t\n", "FutureRelease": later})
rows = qrows("later@example.net")
rel = re.search(r" release=(\S+)", rows[0]) if rows else None
t.ok(st == 200 and rel is not None and rel.group(1) == later, "FutureRelease: held until then (%s)" % rows[:1])
before = counts()
far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 61 * 86400))
is_error(send({"To": [{"Address": "far@example.net"}], "Text": "t\n", "FutureRelease": far}), "user",
         "FutureRelease more than 60 days ahead")
t.is_(counts(), before, "nothing queued")

# ---- SaveSent ----
st, o = send({"To": [{"Address": "s@example.net"}], "BCC": [{"Address": "sb@example.net"}],
              "Subject": "keep me", "Text": "sent copy\n", "SaveSent": True})
t.is_(st, 200, "SaveSent: 200")
sid = sql("SELECT m.id FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id JOIN gn_accounts a "
          "ON a.id = m.account_id WHERE a.name = 'alice' AND b.name = 'Sent'")
st2, rawsent = call("MessageRawGet", {"MsgID": int(sid) if sid.isdigit() else 0})
ms = email.message_from_bytes(rawsent if isinstance(rawsent, bytes) else b"", policy=email.policy.default)
t.ok(st2 == 200 and str(ms["Subject"]) == "keep me" and str(ms["Bcc"]) == "sb@example.net",
     "the Sent mailbox has the message, with its Bcc (%s %s)" % (st2, sid))
flags = sql("SELECT flags FROM gn_messages WHERE id = %s" % (sid if sid.isdigit() else 0))
t.ok(flags not in ("", "0"), "stored seen (flags %s)" % flags)
r = gannet("config", "account", "quota", "alice", "1")
t.is_(r.returncode, 0, "alice's quota set to 1 byte")
before = int(sql("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'q@example.net'"))
is_error(send({"To": [{"Address": "q@example.net"}], "Text": "over\n", "SaveSent": True}),
         "sentOverQuota", "SaveSent over quota")
t.is_(len(qrows("q@example.net")), before + 1, "over quota: the message is queued all the same")
gannet("config", "account", "quota", "alice", "default")

# ---- errors ----
is_error(send({"To": [{"Address": "e@example.net"}]}), "missingBody", "no text nor HTML")
is_error(send({"From": [{"Address": "alice@example.com"}, {"Address": "team@example.com"}],
               "To": [{"Address": "e@example.net"}], "Text": "x\n"}), "multipleFrom", "two From")
is_error(send({"To": [{"Address": "not an address"}], "Text": "x\n"}), "badAddress", "a bad To address")
is_error(send({"From": [{"Address": "bob@example.com"}], "To": [{"Address": "e@example.net"}],
               "Text": "x\n"}), "badFrom", "From another account's address")
is_error(send({"From": [{"Address": "quiet@example.com"}], "To": [{"Address": "e@example.net"}],
               "Text": "x\n"}), "badFrom", "From an alias without AllowMsgFrom")
st, o = send({"From": [{"Name": "Team", "Address": "team@example.com"}], "To": [{"Address": "tm@example.net"}],
              "Text": "x\n"})
m, raw = queued("tm@example.net")
t.ok(st == 200 and m is not None and str(m["From"]) == "Team <team@example.com>",
     "From an alias with AllowMsgFrom: sent (%s)" % (o,))
is_error(send({"Text": "x\n"}), "noRecipients", "no recipients")
is_error(send({"To": [{"Address": "e@example.net"}], "Text": "x\n", "MessageID": "no-brackets@x"}),
         "malformedMessageID", "a Message-ID without <>")
is_error(send({"To": [{"Address": "e@example.net"}], "Text": "x\n",
               "AttachedFiles": [{"Name": "a", "Data": "!!!not base64"}]}), "user", "bad base64")
is_error(send({"To": [{"Address": "e@example.net"}], "Text": "x\n",
               "InlineFiles": [{"Name": "a", "Data": "YWJj="}]}), "user", "base64 with bad padding")
is_error(send({"To": [{"Address": "e@example.net"}], "Text": "x\n", "Headers": [["From", "x@y"]]}),
         "user", "a structural header in Headers")
is_error(send({"To": [{"Address": "e@example.net"}], "Text": "x\n", "Subject": "a\x01b"}), "user",
         "a control character in the subject")
is_error(send({"To": [{"Address": "e@example.net"}], "Text": "x\n", "Bogus": 1}), "protocol",
         "an unknown field")
aid = sql("SELECT id FROM gn_accounts WHERE name = 'alice'")
nsent = int(sql("SELECT coalesce(sum(messages), 0) FROM gn_submission_counts WHERE account_id = %s" % aid))
sql("INSERT INTO gn_submission_limits (account_id, messages_per_day) VALUES (%s, %d)" % (aid, nsent))
before = counts()
is_error(send({"To": [{"Address": "x@example.net"}], "Text": "x\n"}), "messageLimitReached",
         "messages per day reached")
sql("UPDATE gn_submission_limits SET messages_per_day = NULL, first_time_recipients_per_day = 0 "
    "WHERE account_id = %s" % aid)
is_error(send({"To": [{"Address": "brandnew@example.net"}], "Text": "x\n"}), "recipientLimitReached",
         "first-time recipients per day reached")
t.is_(counts(), before, "nothing queued by the refused ones")
g.stop()
t.done()
