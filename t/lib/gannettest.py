"""
t/lib/gannettest.py: what integration tests share.

- TAP output for prove (Tap).
- A throwaway PostgreSQL cluster: the one named by GANNET_TEST_PGHOST and
  GANNET_TEST_PGPORT (contrib/quickstart check creates one for the whole run),
  else one made for this test file and removed at exit.  As root, the cluster
  runs as the user "nobody" (PostgreSQL refuses root).
- A fresh database per test (create_db) so tests never see each other's data.
- Gannet: writes a config, starts `gannet serve`, waits for its ports, stops.
- Self-signed certificates (make_cert) with openssl.

Environment set by `make check`: GANNET_BUILDDIR, GANNET_SRCDIR.
"""
import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

BUILDDIR = os.environ.get("GANNET_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SRCDIR = os.environ.get("GANNET_SRCDIR") or BUILDDIR
GANNET = os.path.join(BUILDDIR, "core", "gannet")
IS_ROOT = os.geteuid() == 0
# Debian's Python, which sees the python3-* packages t/tools lists as
# python3:MODULE (the python3 first on PATH may be another, as with pyenv):
# a test runs a script that imports one of them with this.
DEBIAN_PYTHON = "/usr/bin/python3"
# The user that unprivileged processes (PostgreSQL, dropped gannet) run as.
RUN_USER = "nobody" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name


class Tap:
    """Minimal TAP producer: ok/is_/like, then done()."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name):
        self.n += 1
        if not cond:
            self.failed += 1
        print(("ok" if cond else "not ok") + " %d - %s" % (self.n, name), flush=True)
        return bool(cond)

    def is_(self, got, want, name):
        r = self.ok(got == want, name)
        if not r:
            self.diag("got %r, want %r" % (got, want))
        return r

    def like(self, got, needle, name):
        r = self.ok(got is not None and needle in got, name)
        if not r:
            self.diag("%r does not contain %r" % (got, needle))
        return r

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print("# " + line, flush=True)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(0 if self.failed == 0 and self.n > 0 else 1)


def tmpdir(prefix="gannet-test-"):
    """A temporary directory removed at exit, usable by RUN_USER."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    if IS_ROOT:
        shutil.chown(d, RUN_USER)
    if os.environ.get("GANNET_TEST_KEEP"):
        print("# kept: %s" % d, flush=True)  # to read a server's log afterwards
    else:
        atexit.register(shutil.rmtree, d, True)
    return d


def module_dir():
    """A directory for module files as the loader accepts it: owned by the
    user running the tests (root in CI, not RUN_USER as tmpdir()'s are) and
    writable by it only.  Copy modules in with mode 0755.  Removed at exit."""
    d = tempfile.mkdtemp(prefix="gannet-mod-")
    os.chmod(d, 0o755)
    atexit.register(shutil.rmtree, d, True)
    return d


def install_modules(t, moddir, *names):
    """Copies the built modules names (BUILDDIR/modules/NAME/.libs/NAME.so)
    into moddir (module_dir()) as the loader accepts them; a module not
    built is a failed test and the end of the run."""
    for name in names:
        so = os.path.join(BUILDDIR, "modules", name, ".libs", name + ".so")
        if not os.path.exists(so):
            t.ok(False, "the %s module is built (%s)" % (name, so))
            t.done()
        shutil.copy(so, os.path.join(moddir, name + ".so"))
        os.chmod(os.path.join(moddir, name + ".so"), 0o755)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_run_user(cmd):
    if IS_ROOT:
        return ["runuser", "-u", RUN_USER, "--"] + cmd
    return cmd


def _pg_bin(name):
    for d in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
              "/usr/lib/postgresql/17/bin"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return shutil.which(name) or name


class PgCluster:
    """A PostgreSQL cluster on a unix socket in its own directory."""

    def __init__(self, host, port, owned=False, datadir=None):
        self.host = host
        self.port = port
        self.owned = owned
        self.datadir = datadir

    @classmethod
    def create(cls, base=None):
        base = base or tmpdir("gannet-pg-")
        datadir = os.path.join(base, "data")
        port = free_port()
        subprocess.run(_as_run_user([_pg_bin("initdb"), "-D", datadir, "-U", "gannet",
                                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        opts = "-k %s -p %d -c listen_addresses='' -c fsync=off -c max_connections=300" % (base, port)
        subprocess.run(_as_run_user([_pg_bin("pg_ctl"), "-D", datadir, "-o", opts, "-w",
                                     "-l", os.path.join(base, "pg.log"), "start"]),
                       check=True, stdout=subprocess.DEVNULL)
        c = cls(base, port, owned=True, datadir=datadir)
        atexit.register(c.stop)
        return c

    def stop(self):
        if self.owned and self.datadir and os.path.exists(self.datadir):
            subprocess.run(_as_run_user([_pg_bin("pg_ctl"), "-D", self.datadir, "-m", "fast",
                                         "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.owned = False

    def restart(self):
        """Restarts the server (for reconnect tests); only clusters we own."""
        subprocess.run(_as_run_user([_pg_bin("pg_ctl"), "-D", self.datadir, "-m", "fast",
                                     "-w", "restart"]), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def conninfo(self, db="postgres"):
        return "host=%s port=%d user=gannet dbname=%s" % (self.host, self.port, db)

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            self.conninfo(db), "-c", sql],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql failed: %s" % r.stderr)
        return r.stdout.strip()

    def create_db(self, prefix="t"):
        name = "%s_%s" % (prefix, uuid.uuid4().hex[:12])
        self.psql("CREATE DATABASE %s" % name)
        return name


_cluster = None


def cluster():
    """The shared cluster for this test run (or one of our own)."""
    global _cluster
    if _cluster is None:
        host = os.environ.get("GANNET_TEST_PGHOST")
        port = os.environ.get("GANNET_TEST_PGPORT")
        if host and port:
            _cluster = PgCluster(host, int(port))
        else:
            _cluster = PgCluster.create()
    return _cluster


def make_cert(directory, name, cn, sans=None, keytype="ec"):
    """Writes NAME.pem and NAME.key (self-signed); returns their paths."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    sans = sans or [cn]
    ext = "subjectAltName=" + ",".join("DNS:" + s for s in sans)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if keytype == "ec" \
        else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=" + cn,
                    "-addext", ext, "-keyout", key, "-out", cert] + newkey,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o644)
    return cert, key


def run_gannet(args, timeout=60, **kw):
    """Runs the gannet binary; returns CompletedProcess with text output."""
    return subprocess.run([GANNET] + args, capture_output=True, text=True, timeout=timeout, **kw)


def start_localserve(directory, env, timeout=90):
    """Starts `gannet localserve --dir directory` (in its own session, output
    piped) and reads its output until gannet says it serves: returns the
    process, whether it started, and the lines read.  The caller stops it
    and keeps reading its output while it runs."""
    p = subprocess.Popen([GANNET, "localserve", "--dir", directory], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out.append(line)
        if "event=started role=single" in line:
            return p, True, out
    return p, False, out


def wait_port(port, host="127.0.0.1", timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Gannet:
    """A running `gannet serve` with a config written for the test.

    conf: the text of the config file, with {dir} standing for the test's
    directory and {db} for the conninfo of a fresh database.
    """

    def __init__(self, conf_text, directory=None, db=None, foreground=False, env=None,
                 binary=None):
        self.dir = directory or tmpdir()
        self.dbname = db or cluster().create_db()
        self.conninfo = cluster().conninfo(self.dbname)
        self.conf_path = os.path.join(self.dir, "gannet.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf_text.replace("{dir}", self.dir).replace("{db}", self.conninfo))
        self.log_path = os.path.join(self.dir, "gannet.log")
        self.foreground = foreground
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        # The gannet binary to run: the build's, or another (an installed one).
        self.binary = binary or GANNET

    def start(self, wait_ports=()):
        args = [self.binary, "serve", "-c", self.conf_path]
        if self.foreground:
            args.append("--foreground")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        atexit.register(self.kill)
        for p in wait_ports:
            if not wait_port(p):
                raise RuntimeError("gannet did not listen on %d:\n%s" % (p, self.log()))
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig to the master and waits; returns the exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()


def base_conf(listeners="", modules="", extra=""):
    """A config with the database, loopback listeners and options given."""
    user = 'user = "%s";' % RUN_USER if IS_ROOT else ""
    return """
hostname = "mail.test";
%s
database = { conninfo = "{db}"; };
log = { level = "debug"; };
%s
%s
%s
""" % (user, ("listeners = (%s);" % listeners) if listeners else "",
       ("modules = { %s };" % modules) if modules else "", extra)


def txt_records(text):
    """{name: [strings]} from zone-file TXT lines (`NAME TXT "a" "b"`), as
    `gannet config dkim add|export` prints them; other lines are skipped."""
    recs = {}
    for line in text.splitlines():
        m = re.match(r'^(\S+) TXT((?: "[^"]*")+)$', line)
        if m:
            recs[m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    return recs
