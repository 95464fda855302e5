"""
t/lib/quotatest.py: what the quota module's tests (t/integration/265-269)
share: a `gannet serve` with the smtp and imap modules, and the quota
module unless told otherwise, an MX listener (STARTTLS offered) and an
implicit-TLS IMAP listener on loopback, accounts alice@example.com and
bob@example.com with a password, and helpers.

    srv = quotatest.Server(t, quota='default_limit = "1M";')   # quota=None: not loaded;
                                                 # db=: another Server's database (srv.g.dbname)
    t.ok(srv.setup(), "...")
    srv.start()
    srv.send(["alice@example.com"], size=1000)   # smtplib; {} or the refusals
    m = srv.session("alice")                     # imaplib, logged in
"""
import imaplib
import os
import shutil
import smtplib
import ssl

import gannettest as gt

PASSWORD = "correct horse battery"


def message(size, subject="filler", tag=""):
    """A message of exactly size bytes (CRLF lines)."""
    head = ("From: Sender <s@example.org>\r\nTo: someone@example.com\r\nSubject: %s %s\r\n\r\n"
            % (subject, tag)).encode()
    assert size >= len(head) + 2
    n = size - len(head)
    lines = []
    while n > 0:
        k = min(n, 78)
        if k < 2:
            # No line of one byte: widen the last one.
            lines[-1] = b"y" * (len(lines[-1]) - 1 + k)
            n = 0
            break
        lines.append(b"x" * (k - 2) + b"\r\n")
        n -= k
    return head + b"".join(lines)


class Server:
    def __init__(self, t, quota="", imap_extra="", modules=("smtp", "imap", "quota"), db=None):
        self.t = t
        if quota is None:
            modules = tuple(x for x in modules if x != "quota")
        self.moddir = moddir = gt.module_dir()
        for name in modules:
            so = os.path.join(gt.BUILDDIR, "modules", name, ".libs", name + ".so")
            if not os.path.exists(so):
                t.ok(False, "the %s module is built (%s)" % (name, so))
                t.done()
            shutil.copy(so, os.path.join(moddir, name + ".so"))
            os.chmod(os.path.join(moddir, name + ".so"), 0o755)
        self.dir = gt.tmpdir()
        cert, key = gt.make_cert(self.dir, "mail", "mail.test")
        self.smtp_port = gt.free_port()
        self.imap_port = gt.free_port()
        listeners = ('{ name = "mx"; address = "127.0.0.1"; port = %d; protocol = "smtp"; '
                     'tls = "starttls"; }, '
                     '{ name = "imaps"; address = "127.0.0.1"; port = %d; protocol = "imap"; '
                     'tls = "implicit"; }' % (self.smtp_port, self.imap_port))
        extra = ('workers = 2;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n'
                 'smtp = { postmaster = "alice"; };\n%s' % (cert, key, imap_extra))
        if quota is not None:
            extra += "quota = { %s };\n" % quota
        self.g = gt.Gannet(gt.base_conf(
            listeners=listeners,
            modules='directory = "%s"; load = [ %s ];' % (moddir, ", ".join('"%s"' % x for x in modules)),
            extra=extra), directory=self.dir, db=db)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def gannet(self, *args, stdin=None):
        """(returncode, stdout, stderr) of the gannet CLI with the test's config."""
        r = gt.run_gannet(["-c", self.g.conf_path] + list(args), input=stdin)
        return r.returncode, r.stdout, r.stderr

    def setup(self):
        steps = [("migrate",), ("config", "domain", "add", "example.com"),
                 ("config", "account", "add", "alice", "alice@example.com"),
                 ("config", "account", "add", "bob", "bob@example.com")]
        ok = True
        for a in steps:
            rc, out, err = self.gannet(*a)
            if rc != 0:
                self.t.diag("gannet %s: %s%s" % (" ".join(a), out, err))
                ok = False
        for who in ("alice", "bob"):
            ok = self.gannet("setpassword", who, stdin=PASSWORD + "\n")[0] == 0 and ok
        return ok

    def start(self):
        try:
            self.g.start(wait_ports=(self.smtp_port, self.imap_port))
        except RuntimeError as e:
            self.t.ok(False, "gannet serve starts")
            self.t.diag(str(e))
            self.t.done()

    def sql(self, q):
        return gt.cluster().psql(q, db=self.g.dbname)

    def used(self, account):
        """The store's usage of an account: settled + pending bytes."""
        return int(self.sql("SELECT a.total_size + coalesce((SELECT sum(m.size) FROM gn_messages m "
                            "WHERE m.account_id = a.id AND m.uid IS NULL), 0) "
                            "FROM gn_accounts a WHERE a.name = '%s'" % account))

    def count(self, account):
        """Messages stored in the account (an expunge deletes the row; its
        UID alone stays in gn_expunged for QRESYNC)."""
        return int(self.sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
                            "WHERE a.name = '%s'" % account))

    def send(self, rcpts, size=None, msg=None, tool="smtplib"):
        """Sends one message with smtplib: {} when all were accepted, else
        {rcpt: (code, text)} of the refused, or an exception object for a
        refused DATA (smtplib.SMTPDataError / SMTPRecipientsRefused)."""
        if msg is None:
            msg = message(size)
        try:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
                s.ehlo("client.example.org")
                return s.sendmail("s@example.org", rcpts, msg)
        except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused) as e:
            return e

    def session(self, who="alice"):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imap_port, ssl_context=self.ctx)
        m.login("%s@example.com" % who, PASSWORD)
        return m
