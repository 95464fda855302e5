"""
t/lib/imaptest.py: what the imap module's integration tests share: a
`gannet serve` with the imap module on an implicit-TLS loopback listener,
an account alice@example.com with a password and messages in its Inbox,
imaplib sessions to it.

    srv = imaptest.Server(t)            # fails the test when the module is not built
    t.ok(srv.setup(3), "...")           # the account, 3 messages in Inbox
    srv.start()                         # fails the test when serve does not listen
    m = srv.session()                   # logged in
"""
import imaplib
import os
import shutil
import ssl

import gannettest as gt

PASSWORD = "correct horse battery"


class Server:
    def __init__(self, t, extra="", starttls=False):
        self.t = t
        module = os.path.join(gt.BUILDDIR, "modules", "imap", ".libs", "imap.so")
        if not os.path.exists(module):
            t.ok(False, "the imap module is built (%s)" % module)
            t.done()
        self.moddir = moddir = gt.module_dir()
        shutil.copy(module, os.path.join(moddir, "imap.so"))
        os.chmod(os.path.join(moddir, "imap.so"), 0o755)
        self.dir = gt.tmpdir()
        cert, key = gt.make_cert(self.dir, "imap", "mail.test")
        self.port = gt.free_port()
        listeners = ('{ name = "imaps"; address = "127.0.0.1"; port = %d; protocol = "imap"; '
                     'tls = "implicit"; }' % self.port)
        # starttls: a second listener, port 143's kind, on self.port_starttls.
        self.port_starttls = gt.free_port() if starttls else None
        if starttls:
            listeners += (', { name = "imap"; address = "127.0.0.1"; port = %d; protocol = "imap"; '
                          'tls = "starttls"; }' % self.port_starttls)
        self.g = gt.Gannet(gt.base_conf(
            listeners=listeners,
            modules='directory = "%s"; load = [ "imap" ];' % moddir,
            extra='workers = 1;\ntls = { certificates = ( { cert = "%s"; key = "%s"; } ); };\n%s'
                  % (cert, key, extra)), directory=self.dir)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def gannet(self, *args, stdin=None):
        r = gt.run_gannet(["-c", self.g.conf_path] + list(args), input=stdin)
        if r.returncode != 0:
            self.t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def mbox_of(self, n, first=0):
        """An mbox of n small messages numbered from first."""
        path = os.path.join(self.dir, "m%d.mbox" % first)
        with open(path, "w") as f:
            for i in range(first, first + n):
                f.write("From a@example.org Mon Jan  1 10:00:00 2024\nFrom: a@example.org\n"
                        "Subject: message %d\n\nbody %d\n\n" % (i, i))
        return path

    def setup(self, messages):
        """Migrates, adds alice with PASSWORD and messages in her Inbox."""
        steps = [("migrate",), ("config", "domain", "add", "example.com"),
                 ("config", "account", "add", "alice", "alice@example.com")]
        if messages:
            steps.append(("import", "mbox", "alice", self.mbox_of(messages)))
        ok = all(self.gannet(*a).returncode == 0 for a in steps)
        return self.gannet("setpassword", "alice", stdin=PASSWORD + "\n").returncode == 0 and ok

    def start(self):
        try:
            self.g.start(wait_ports=(self.port,) + ((self.port_starttls,) if self.port_starttls else ()))
        except RuntimeError as e:
            self.t.ok(False, "gannet serve starts")
            self.t.diag(str(e))
            self.t.done()

    def sql(self, q):
        return gt.cluster().psql(q, db=self.g.dbname)

    def session(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.ctx)
        m.login("alice@example.com", PASSWORD)
        return m


def cmd(m, name, *args):
    """A command through imaplib: (type, data), a BAD as ("ERR", [text])."""
    try:
        return m._simple_command(name, *args)
    except imaplib.IMAP4.error as e:
        return ("ERR", [str(e)])


def untagged(m, kind):
    return m.untagged_responses.pop(kind, [])
