#!/usr/bin/env python3
"""
t/integration/261-aliases-smtp.t: mail to aliases over SMTP (issue 11,
items 1 and 3; mox.md 5), sent with smtplib and swaks, read back with
imaplib:

- an alias without PostPublic: a stranger's message (judged by its From,
  not by MAIL FROM) gets 550 5.7.2 after DATA and nothing is stored; a
  member's reaches the other members and not the member who sent it (a
  member's envelope sender may be anything); a message From the alias
  itself is refused until AllowMsgFrom is set;
- PostPublic: a stranger's message reaches every member, each copy with
  its own Delivered-To (the member's) above the alias's;
- alias+tag@ reaches the alias (swaks too);
- dedup: a member that is also an explicit recipient gets one copy, the
  explicit recipient's (no Delivered-To of the alias);
- an alias whose only member sent the message: 250, nothing stored;
- a stranger to a members-only alias and an explicit recipient at once:
  250 (the explicit recipient got it) and one DSN queued to the sender for
  the alias, 5.7.2;
- with the setting rcpt_sender_check on: a MAIL FROM that is no member gets
  550 5.7.2 at RCPT (nothing sent); a member's envelope, "<>", and the
  alias itself with AllowMsgFrom pass RCPT, and the From is still judged
  after DATA; a PostPublic alias takes any envelope; a setting of the
  wrong type is a config error with file and line.
"""
import imaplib
import os
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "imap", "aliases")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p25, p993 = gt.free_port(), gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners=('{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }, '
               '{ address = "127.0.0.1"; port = %d; protocol = "imap"; tls = "implicit"; }'
               % (p25, p993)),
    modules='directory = "%s"; load = [ "smtp", "imap", "aliases" ];' % moddir,
    extra=('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
           'smtp = { postmaster = "alice"; };\nqueue = { transport = "none"; };') % (cert, key)),
    directory=d)
PW = "a password for the test"


def gannet(*args, stdin=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "account", "add", "carol", "carol@example.com"),
         ("config", "alias", "add", "team@example.com", "alice@example.com", "bob@example.com"),
         ("config", "alias", "add", "pub@example.com", "alice@example.com", "carol@example.com",
          "--post-public"),
         ("config", "alias", "add", "solo@example.com", "carol@example.com")]
t.ok(all(gannet(*a).returncode == 0 for a in setup), "domain, accounts alice, bob, carol, "
     "aliases team (members only), pub (public), solo")
t.ok(all(gannet("setpassword", a, stdin=PW + "\n").returncode == 0 for a in ("alice", "bob", "carol")),
     "passwords")
try:
    g.start(wait_ports=(p25, p993))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with smtp, imap and aliases")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts with smtp, imap and aliases")


def sql(q):
    return gt.cluster().psql(q, db=g.dbname)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def inbox(account):
    """{subject: [Delivered-To values, top first]} of the account's Inbox."""
    m = imaplib.IMAP4_SSL("127.0.0.1", p993, ssl_context=ctx)
    m.login(account + "@example.com", PW)
    m.select("INBOX", readonly=True)
    out = {}
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT DELIVERED-TO)])")
    for item in data:
        if not isinstance(item, tuple):
            continue
        subj, dts = None, []
        for line in item[1].decode().split("\r\n"):
            if line.lower().startswith("subject:"):
                subj = line.split(":", 1)[1].strip()
            elif line.lower().startswith("delivered-to:"):
                dts.append(line.split(":", 1)[1].strip())
        out.setdefault(subj, []).append(dts)
    m.logout()
    return out


def message(frm, subject, to="team@example.com"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nHello.\r\n"
            % (frm, to, subject, subject)).encode()


def send(mail_from, rcpts, msg):
    """The RCPT codes and the DATA reply (code, text)."""
    with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
        s.ehlo("client.example.org")
        s.mail(mail_from)
        codes = [s.rcpt(r)[0] for r in rcpts]
        try:
            code, text = s.data(msg)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return codes, (code, text.decode() if isinstance(text, bytes) else text)


# ---- members only ----
codes, data = send("stranger@remote.example", ["team@example.com"],
                   message("Stranger <stranger@remote.example>", "s1"))
t.is_(codes, [250], "a stranger: RCPT to the alias accepted (the From is not known yet)")
t.is_(data[0], 550, "a stranger's message to a members-only alias: 550 after DATA")
t.like(data[1], "5.7.2", "with 5.7.2")
codes, data = send("alice@example.com", ["team@example.com"],
                   message("Stranger <stranger@remote.example>", "s2"))
t.is_(data[0], 550, "judged by the From, not MAIL FROM: a member's envelope does not let a stranger in")

codes, data = send("bounces+x@lists.remote.example", ["team@example.com"],
                   message("Alice <alice@example.com>", "m1"))
t.is_((codes, data[0]), ([250], 250), "a member's message (any envelope sender): 250")

codes, data = send("x@remote.example", ["team@example.com"], message("team@example.com", "self1"))
t.is_(data[0], 550, "From the alias itself without AllowMsgFrom: 550")
t.is_(gannet("config", "alias", "update", "team@example.com", "--allow-msg-from").returncode, 0,
      "AllowMsgFrom set")
codes, data = send("x@remote.example", ["team@example.com"], message("team@example.com", "self2"))
t.is_(data[0], 250, "From the alias itself with AllowMsgFrom: 250")

# ---- public, tags, dedup ----
codes, data = send("stranger@remote.example", ["pub@example.com"],
                   message("stranger@remote.example", "p1", "pub@example.com"))
t.is_((codes, data[0]), ([250], 250), "a stranger to a PostPublic alias: 250")
codes, data = send("stranger@remote.example", ["PUB+news@example.com"],
                   message("stranger@remote.example", "p2", "pub+news@example.com"))
t.is_((codes, data[0]), ([250], 250), "alias+tag@ (any case): 250")
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p25), "--helo", "swaks.example.org",
                    "--from", "other@remote.example", "--to", "team+swaks@example.com",
                    "--header", "From: Bob <bob@example.com>", "--header", "Subject: w1"],
                   capture_output=True, text=True, timeout=60)
t.is_(r.returncode, 0, "swaks: a member's message to team+swaks@ is accepted")
if r.returncode != 0:
    t.diag(r.stdout[-2000:])
codes, data = send("stranger@remote.example", ["pub@example.com", "carol@example.com"],
                   message("stranger@remote.example", "d1", "pub@example.com, carol@example.com"))
t.is_((codes, data[0]), ([250, 250], 250), "to the alias and one of its members at once: 250")
codes, data = send("stranger@remote.example", ["carol@example.com", "pub@example.com"],
                   message("stranger@remote.example", "d2", "carol@example.com, pub@example.com"))
t.is_((codes, data[0]), ([250, 250], 250), "the same with the member first: 250")
codes, data = send("carol@example.com", ["solo@example.com"],
                   message("carol@example.com", "o1", "solo@example.com"))
t.is_((codes, data[0]), ([250], 250), "to an alias whose only member sent it: 250")

before = sql("SELECT count(*) FROM gn_queue_messages")
codes, data = send("stranger@remote.example", ["team@example.com", "carol@example.com"],
                   message("stranger@remote.example", "x1", "team@example.com, carol@example.com"))
t.is_((codes, data[0]), ([250, 250], 250),
      "a stranger to a members-only alias and an explicit recipient: 250 (carol got it)")
t.is_(str(int(sql("SELECT count(*) FROM gn_queue_messages")) - int(before)), "1",
      "one DSN queued for the alias")
t.is_(sql("SELECT r.rcpt FROM gn_queue_recipients r JOIN gn_queue_messages m ON m.id = r.message_id "
          "ORDER BY m.id DESC LIMIT 1"), "stranger@remote.example", "to the sender")
t.is_(sql("SELECT count(*) FROM gn_queue_messages m JOIN gn_blob_chunks c ON c.blob_id = m.blob_id "
          "WHERE m.id = (SELECT max(id) FROM gn_queue_messages) AND "
          "position(convert_to('Final-Recipient: rfc822; team@example.com', 'UTF8') in c.data) > 0 "
          "AND position(convert_to('Status: 5.7.2', 'UTF8') in c.data) > 0"), "1",
      "the DSN names the alias with status 5.7.2")

# ---- what each account holds ----
a, b, c = inbox("alice"), inbox("bob"), inbox("carol")
t.ok("s1" not in a and "s1" not in b and "s2" not in a and "s2" not in b,
     "the refused messages were stored nowhere")
t.ok("m1" not in a, "the member who sent it got no copy")
t.is_(b.get("m1"), [["bob@example.com", "team@example.com"]],
      "the other member got one, Delivered-To: bob above Delivered-To: team")
t.ok("self1" not in a and "self1" not in b, "the refused From-the-alias message: nowhere")
t.is_((a.get("self2"), b.get("self2")),
      ([["alice@example.com", "team@example.com"]], [["bob@example.com", "team@example.com"]]),
      "with AllowMsgFrom: each member a copy")
t.is_((a.get("p1"), c.get("p1")),
      ([["alice@example.com", "pub@example.com"]], [["carol@example.com", "pub@example.com"]]),
      "PostPublic: each member one copy with its own Delivered-To")
t.is_((a.get("p2"), c.get("p2")),
      ([["alice@example.com", "PUB+news@example.com"]], [["carol@example.com", "PUB+news@example.com"]]),
      "alias+tag@: each member a copy (Delivered-To keeps the tagged address)")
t.is_((len(a.get("w1", [])), len(b.get("w1", []))), (1, 0),
      "swaks to team+swaks@ From bob: alice got it, bob (the sender) not")
t.is_((a.get("d1"), c.get("d1")), ([["alice@example.com", "pub@example.com"]], [["carol@example.com"]]),
      "dedup: carol, explicit and member, got one copy, the explicit one; alice the alias's")
t.is_((a.get("d2"), c.get("d2")), ([["alice@example.com", "pub@example.com"]], [["carol@example.com"]]),
      "dedup whatever the order of RCPT")
t.ok("o1" not in c, "the only member who sent it got no copy")
t.is_((c.get("x1"), "x1" in a, "x1" in b), ([["carol@example.com"]], False, False),
      "the explicit recipient got it, the members-only alias's members not")

g.stop()

# ---- rcpt_sender_check: the envelope judged at RCPT too ----
with open(g.conf_path) as f:
    conf = f.read()
with open(g.conf_path, "w") as f:
    f.write(conf + '\naliases = { rcpt_sender_check = "yes"; };\n')
r = gannet("config", "check")
t.ok(r.returncode != 0 and "gannet.conf:" in r.stderr + r.stdout and "rcpt_sender_check" in r.stderr + r.stdout,
     "rcpt_sender_check of the wrong type: a config error with file and line")
with open(g.conf_path, "w") as f:
    f.write(conf + "\naliases = { rcpt_sender_check = true; };\n")
g.start(wait_ports=(p25, p993))


def rcpt_refused(mail_from, rcpt, msg):
    """The RCPT reply (code, text), and the DATA reply if RCPT took it."""
    with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
        s.ehlo("client.example.org")
        s.mail(mail_from)
        code, text = s.rcpt(rcpt)
        if code != 250:
            return (code, text.decode()), None
        try:
            dcode, dtext = s.data(msg)
        except smtplib.SMTPDataError as e:
            dcode, dtext = e.smtp_code, e.smtp_error
        return (code, text.decode()), dcode


rc, dc = rcpt_refused("stranger@remote.example", "team@example.com",
                      message("Stranger <stranger@remote.example>", "e1"))
t.is_((rc[0], dc), (550, None), "a stranger's MAIL FROM to a members-only alias: 550 at RCPT")
t.like(rc[1], "5.7.2", "with 5.7.2")
rc, dc = rcpt_refused("stranger@remote.example", "TEAM+x@example.com",
                      message("Alice <alice@example.com>", "e2"))
t.is_(rc[0], 550, "alias+tag@ too, whatever the From (not sent yet)")
rc, dc = rcpt_refused("Bob@example.com", "team@example.com", message("Bob <bob@example.com>", "e3"))
t.is_((rc[0], dc), (250, 250), "a member's MAIL FROM (any case) and From: 250")
rc, dc = rcpt_refused("alice@example.com", "team@example.com",
                      message("Stranger <stranger@remote.example>", "e4"))
t.is_((rc[0], dc), (250, 550), "a member's MAIL FROM with a stranger's From: RCPT 250, 550 after DATA")
rc, dc = rcpt_refused("", "team@example.com", message("Alice <alice@example.com>", "e5"))
t.is_((rc[0], dc), (250, 250), "<> is left to the From check: a member's From, 250")
rc, dc = rcpt_refused("team@example.com", "team@example.com", message("team@example.com", "e6"))
t.is_((rc[0], dc), (250, 250), "the alias itself as MAIL FROM, with AllowMsgFrom: 250")
rc, dc = rcpt_refused("stranger@remote.example", "pub@example.com",
                      message("stranger@remote.example", "e7", "pub@example.com"))
t.is_((rc[0], dc), (250, 250), "a PostPublic alias takes any MAIL FROM")
t.like(g.log(), "event=sender_refused stage=rcpt alias=team@example.com mail_from=stranger@remote.example",
       "the refusal at RCPT is logged")
a, b = inbox("alice"), inbox("bob")
t.ok(not any(s in a or s in b for s in ("e1", "e2", "e4")), "what was refused is stored nowhere")
t.is_((len(a.get("e3", [])), len(b.get("e5", [])), len(a.get("e6", []))), (1, 1, 1),
      "what was taken reached the members")
g.stop()
t.done()
