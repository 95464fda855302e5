#!/usr/bin/env python3
"""
t/integration/263-aliases-unloaded.t: the aliases module not in the config
(issue 11, item 3): on a database where aliases were made with the module,
a `gannet serve` without it resolves none of them and nothing else changes:

- RCPT to an alias and to alias+tag@: 550 5.1.1, as any unknown address;
- an explicit address delivers as before, one copy, its own Delivered-To;
- submission: MAIL FROM and From an alias with AllowMsgFrom are refused
  550 5.7.1; the account's own address is accepted;
- `gannet modules` does not list it; `gannet config alias` is no command;
- loaded again, the same alias resolves (the data was kept).
"""
import os
import smtplib
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "smtp", "submission", "aliases")

d = gt.tmpdir()
cert, key = gt.make_cert(d, "server", "mail.test")
p25, p587 = gt.free_port(), gt.free_port()
db = gt.cluster().create_db()
listeners = ('{ address = "127.0.0.1"; port = %d; protocol = "smtp"; tls = "none"; }, '
             '{ address = "127.0.0.1"; port = %d; protocol = "submission"; tls = "starttls"; }'
             % (p25, p587))
extra = ('workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
         'queue = { transport = "none"; };') % (cert, key)


def server(mods, sub):
    return gt.Gannet(gt.base_conf(listeners=listeners, extra=extra,
                                  modules='directory = "%s"; load = [ %s ];'
                                  % (moddir, ", ".join('"%s"' % m for m in mods))),
                     directory=os.path.join(d, sub), db=db)


os.mkdir(os.path.join(d, "with"))
os.mkdir(os.path.join(d, "without"))
g_with = server(["smtp", "submission", "aliases"], "with")
g_without = server(["smtp", "submission"], "without")
PW = "a password for the test"


def gannet(g, *args, stdin=None):
    return gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin)


setup = [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "account", "add", "bob", "bob@example.com"),
         ("config", "alias", "add", "team@example.com", "alice@example.com", "bob@example.com",
          "--post-public", "--allow-msg-from")]
t.ok(all(gannet(g_with, *a).returncode == 0 for a in setup),
     "with the module: accounts alice, bob and the alias team (PostPublic, AllowMsgFrom)")
t.is_(gannet(g_with, "setpassword", "alice", stdin=PW + "\n").returncode, 0, "alice's password")

r = gannet(g_without, "modules")
t.ok(r.returncode == 0 and "aliases" not in r.stdout, "without: `gannet modules` does not list it")
r = gannet(g_without, "config", "alias", "list")
t.ok(r.returncode != 0 and 'no command "config alias list"' in r.stderr,
     "without: `gannet config alias list` is no command")


def sql(q):
    return gt.cluster().psql(q, db=db)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def rcpt_codes(rcpts, subject):
    with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
        s.ehlo("client.example.org")
        s.mail("stranger@remote.example")
        codes = [s.rcpt(r) for r in rcpts]
        data = None
        if any(c[0] == 250 for c in codes):
            data = s.data(("From: stranger@remote.example\r\nSubject: %s\r\n\r\nHi.\r\n"
                           % subject).encode())[0]
        return [(c[0], c[1].decode()[:5]) for c in codes], data


def mail_from(addr, from_header):
    with smtplib.SMTP("127.0.0.1", p587, timeout=30) as s:
        s.ehlo("client.example.org")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        s.login("alice@example.com", PW)
        code = s.mail(addr)[0]
        if code != 250:
            return code, None
        s.rcpt("someone@remote.example")
        try:
            return code, s.data(("From: %s\r\nSubject: x\r\n\r\nHi.\r\n" % from_header).encode())[0]
        except smtplib.SMTPDataError as e:
            return code, e.smtp_code


def copies(subject):
    return sql("SELECT coalesce(string_agg(a.name, ',' ORDER BY a.name), '') FROM gn_messages m "
               "JOIN gn_accounts a ON a.id = m.account_id JOIN gn_blobs b ON b.id = m.blob_id "
               "JOIN gn_blob_chunks c ON c.blob_id = b.id "
               "WHERE position(convert_to('Subject: %s' || chr(13), 'UTF8') in c.data) > 0" % subject)


try:
    g_without.start(wait_ports=(p25, p587))
except RuntimeError as e:
    t.ok(False, "gannet serve starts without the aliases module")
    t.diag(str(e))
    t.done()
t.ok(True, "gannet serve starts without the aliases module")
codes, data = rcpt_codes(["team@example.com", "team+x@example.com", "alice@example.com"], "u1")
t.is_(codes, [(550, "5.1.1"), (550, "5.1.1"), (250, "2.1.5")],
      "without: RCPT to the alias and alias+tag@ 550 5.1.1, to alice 250")
t.is_(data, 250, "without: the message to alice is accepted")
t.is_(copies("u1"), "alice", "without: alice has one copy, bob none")
t.is_(sql("SELECT convert_from(prefix, 'UTF8') ~ '^Return-Path: <stranger@remote.example>\r\n"
          "Delivered-To: alice@example.com\r\nReceived: ' FROM gn_messages"),
      "t", "without: its prefix is the usual one (Return-Path, one Delivered-To, Received)")
t.is_(mail_from("team@example.com", "team@example.com"), (550, None),
      "without: MAIL FROM the alias 550 (AllowMsgFrom needs the module)")
t.is_(mail_from("alice@example.com", "team@example.com"), (250, 550),
      "without: From the alias 550")
t.is_(mail_from("alice@example.com", "alice@example.com"), (250, 250),
      "without: alice's own address is accepted")
g_without.stop()

try:
    g_with.start(wait_ports=(p25, p587))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with the aliases module")
    t.diag(str(e))
    t.done()
codes, data = rcpt_codes(["team+x@example.com"], "u2")
t.is_((codes, data), ([(250, "2.1.5")], 250), "loaded again: alias+tag@ is accepted")
t.is_(copies("u2"), "alice,bob", "and reaches both members")
t.is_(mail_from("team@example.com", "team@example.com"), (250, 250),
      "loaded again: alice sends as the alias")
g_with.stop()
t.done()
