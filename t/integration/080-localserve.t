#!/usr/bin/env python3
"""gannet localserve: creates its private PostgreSQL cluster, certificate,
config and the account gannet@localhost on the first run, serves SMTP with
the installed smtp module, stops itself and its cluster on SIGTERM and
SIGINT, and reuses everything on the second run."""
import os
import random
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as g  # noqa: E402

t = g.Tap()
base = g.tmpdir("gannet-ls-")
d = os.path.join(base, "ls")
# The modules localserve finds: the smtp module of this build.
moddir = os.path.join(base, "modules")
os.mkdir(moddir, 0o755)
shutil.copy(os.path.join(g.BUILDDIR, "modules", "smtp", ".libs", "smtp.so"), moddir)
os.chmod(os.path.join(moddir, "smtp.so"), 0o755)
shift = random.randrange(20000, 40000)
smtp_port = 1025 + shift
env = dict(os.environ, GANNET_LOCALSERVE_DIR="", GANNET_MODULE_DIR=moddir,
           GANNET_LOCALSERVE_PORT_SHIFT=str(shift))


def psql(sql):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "host=%s/run dbname=gannet user=gannet" % d,
                        "-c", sql], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "psql failed: " + r.stderr


def send_mail(subject):
    """Sends to gannet+tag@localhost over STARTTLS; returns the error or None."""
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as s:
            ctx = ssl.create_default_context(cafile=os.path.join(d, "localhost.pem"))
            ctx.check_hostname = False
            s.starttls(context=ctx)
            s.sendmail("someone@example.org", ["gannet+tag@localhost"],
                       "From: someone@example.org\r\nSubject: %s\r\n\r\nhello\r\n" % subject)
        return None
    except Exception as e:  # noqa: BLE001 - reported as the test's diagnostic
        return repr(e)


def cluster_running():
    r = subprocess.run(["pgrep", "-a", "-f", "postgres -D %s/pgdata" % d], capture_output=True, text=True)
    return r.returncode == 0 and "listen_addresses=" in r.stdout


def run_once(sig, while_running=None):
    p = subprocess.Popen([g.GANNET, "localserve", "--dir", d], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    out = []
    deadline = time.time() + 90
    started = False
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out.append(line)
        if "event=started role=single" in line:
            started = True
            break
    running = cluster_running()
    extra = while_running() if started and while_running else None
    p.send_signal(sig)
    try:
        rest, _ = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rest, _ = p.communicate()
    out.append(rest)
    return p.returncode, started, running, "".join(out), extra


def first_visit():
    return (send_mail("first"),
            psql("SELECT a.name || ' ' || l.localpart || '@' || d.name || ' ' || "
                 "(SELECT count(*) FROM gn_credentials c WHERE c.account_id = a.id) "
                 "FROM gn_accounts a JOIN gn_addresses l ON l.account_id = a.id "
                 "JOIN gn_domains d ON d.id = l.domain_id"),
            psql("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.account_id = m.account_id "
                 "AND b.id = m.mailbox_id WHERE b.name = 'Inbox'"))


rc, started, running, out, visit = run_once(signal.SIGTERM, first_visit)
t.ok(started, "first run starts gannet in one process")
t.ok(running, "its private PostgreSQL cluster runs while gannet does, on no TCP address")
t.like(out, "new setup in %s" % d, "first run says it set up a new data directory")
t.like(out, "creating a PostgreSQL cluster", "first run creates the cluster")
t.like(out, "event=migration_applied module=core version=1", "migrations are applied")
t.is_(rc, 0, "SIGTERM stops localserve with exit code 0")
t.ok(not cluster_running(), "the cluster is stopped with it")
t.like(out, "gannet localserve: stopped", "it says it stopped")
t.like(out, "account     gannet (address gannet@localhost", "it names the account")
t.like(out, "created now", "and says it created it")
t.like(out, "smtp        127.0.0.1:%d" % smtp_port, "it lists the SMTP listener of the installed module")
if visit is None:
    visit = ("not started", "", "")
t.is_(visit[0], None, "mail to gannet+tag@localhost over STARTTLS is accepted")
t.is_(visit[1], "gannet gannet@localhost 1", "the account gannet@localhost exists with a password")
t.is_(visit[2], "1", "the message is in the account's Inbox")
for f in ("pgdata/PG_VERSION", "localhost.pem", "localhost.key", "password", "gannet.conf"):
    t.ok(os.path.exists(os.path.join(d, f)), "%s exists" % f)
t.is_(oct(os.stat(os.path.join(d, "localhost.key")).st_mode & 0o777), "0o600", "the key is private")
t.is_(oct(os.stat(os.path.join(d, "password")).st_mode & 0o777), "0o600", "the password file is private")
cert = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "localhost.pem"), "-noout",
                       "-subject", "-ext", "subjectAltName"], capture_output=True, text=True).stdout
t.like(cert, "CN = localhost", "the certificate is for localhost")
t.like(cert, "DNS:localhost", "with localhost as subject alternative name")
conf = open(os.path.join(d, "gannet.conf")).read()
t.like(conf, 'hostname = "localhost"', "the config names localhost")
t.like(conf, "host=%s/run " % d, "gannet reaches PostgreSQL over the cluster's private unix socket")
check = g.run_gannet(["-c", os.path.join(d, "gannet.conf"), "config", "check"])
t.is_(check.returncode, 0, "the written config passes config check: " + check.stderr.strip())
password = open(os.path.join(d, "password")).read().strip()
t.ok(len(password) >= 16, "a password of 16 characters or more was made")

def second_visit():
    return (send_mail("second"),
            psql("SELECT count(*) FROM gn_messages"),
            psql("SELECT count(*) FROM gn_accounts"))


rc, started, running, out, visit = run_once(signal.SIGINT, second_visit)
t.ok(started, "second run starts")
t.like(out, "existing setup in %s" % d, "second run reuses the data directory")
t.ok("creating a PostgreSQL cluster" not in out, "second run creates no cluster")
t.ok("event=migration_applied" not in out, "second run has no migration left to apply")
t.is_(open(os.path.join(d, "password")).read().strip(), password, "the password is kept")
t.ok("created now" not in out, "the account is not created again")
if visit is None:
    visit = ("not started", "", "")
t.is_(visit[0], None, "mail is accepted on the second run")
t.is_(visit[1], "2", "the first run's message is still there, with the new one")
t.is_(visit[2], "1", "still one account")
t.is_(rc, 0, "SIGINT (Ctrl-C) stops it with exit code 0")
t.ok(not cluster_running(), "the cluster is stopped again")

bad = subprocess.run([g.GANNET, "localserve", "--bogus"], capture_output=True, text=True)
t.is_(bad.returncode, 2, "an unknown option is bad usage (exit 2)")
t.like(bad.stderr, "usage: gannet localserve", "and prints usage")
t.done()
