#!/usr/bin/env python3
"""
t/integration/172-imap-bench-load.t: the load generator of contrib/bench/imap
(contrib/bench/imap-load.c) against a running `gannet serve`, so that the
benchmark's figures rest on a generator whose counting is checked:

- persistent: the logged-in loop runs every kind of the mix, each
  succeeding without errors; each kind is sent about
  as often as the others (one loop sends each once), and an expunge is
  done only for an APPEND that gave a UID, counted skipped otherwise;
- mix: every cycle reconnects: as many connects as LOGINs, SELECTs and
  LOGOUTs, none failing;
- idle: N connections log in, select and IDLE; "idling N" comes, and all
  are still held when the generator is told to stop;
- a wrong password is counted as LOGIN errors, with the server's NO text.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

MESSAGES = 30
USER = "alice@example.com"

t = gt.Tap()
srv = imaptest.Server(t)
t.ok(srv.setup(MESSAGES), "an account with %d messages in its Inbox" % MESSAGES)

src = os.path.join(gt.SRCDIR, "contrib", "bench", "imap-load.c")
exe = os.path.join(srv.dir, "imap-load")
flags = subprocess.run(["pkg-config", "--cflags", "--libs", "gnutls"], capture_output=True,
                       text=True)
build = subprocess.run([os.environ.get("CC", "cc"), "-O1", "-Wall", "-Wextra", "-Werror", "-o",
                        exe, src] + flags.stdout.split(), capture_output=True, text=True)
t.ok(flags.returncode == 0 and build.returncode == 0,
     "imap-load.c builds against GnuTLS without warnings")
if build.returncode != 0:
    t.diag(build.stderr)
    t.done()
srv.start()


def load(*args, user=USER, password=PASSWORD, **kw):
    cmd = [exe, "--tls", "--port", str(srv.port), "--user", user, "--password", password,
           "--messages", str(MESSAGES)] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def parse(out):
    ops, errors = {}, []
    for line in out.splitlines():
        m = re.match(r"op (\w+) ok=(\d+) err=(\d+) skipped=(\d+) ", line)
        if m:
            ops[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4))
        if line.startswith("error "):
            errors.append(line)
    return ops, errors


SESSIONS = 3

# The logged-in loop.
r = load("--mode", "persistent", "--sessions", str(SESSIONS), "--duration", "3")
t.is_(r.returncode, 0, "persistent: imap-load exits 0")
ops, errors = parse(r.stdout)
t.diag(r.stdout.strip())
for kind in ("fetch_headers", "fetch_body", "store", "search", "append", "expunge"):
    ok, err, _ = ops.get(kind, (0, -1, 0))
    t.ok(ok > 0 and err == 0, "persistent: %s succeeds, no errors (%d ok, %d errors)"
         % (kind, ok, err))
for kind in ("connect", "login", "select"):
    t.is_(ops.get(kind), (SESSIONS, 0, 0), "persistent: %s once per session" % kind)
sent = {k: sum(ops.get(k, (0, 0, 0))) for k in
        ("fetch_headers", "fetch_body", "store", "search", "append", "expunge")}
t.ok(max(sent.values()) - min(sent.values()) <= SESSIONS and min(sent.values()) > 0,
     "persistent: every kind of the loop is sent about as often (%s)" % sent)
app_ok = ops.get("append", (0, 0, 0))[0]
exp_ok, exp_err, exp_skipped = ops.get("expunge", (0, 0, 0))
t.ok(exp_ok + exp_err <= app_ok and exp_skipped >= sent["append"] - app_ok - SESSIONS,
     "persistent: an expunge only for an APPEND that succeeded, skipped otherwise "
     "(append ok %d; expunge ok %d, errors %d, skipped %d)" % (app_ok, exp_ok, exp_err,
                                                               exp_skipped))
total = re.search(r"^total ok=(\d+) err=(\d+) skipped=(\d+)", r.stdout, re.M)
t.ok(total is not None and int(total.group(2)) == sum(v[1] for v in ops.values()),
     "persistent: the total's errors are the sum of the kinds'")

# The reconnecting mix.
r = load("--mode", "mix", "--sessions", str(SESSIONS), "--duration", "3")
t.is_(r.returncode, 0, "mix: imap-load exits 0")
ops, errors = parse(r.stdout)
t.diag(r.stdout.strip())
connects = ops.get("connect", (0, 0, 0))
t.ok(connects[0] > SESSIONS and connects[1] == 0,
     "mix: sessions reconnect, no connect fails (%s)" % (connects,))
for kind in ("login", "select", "logout"):
    ok, err, _ = ops.get(kind, (0, -1, 0))
    t.ok(err == 0 and connects[0] - SESSIONS <= ok <= connects[0],
         "mix: a %s for each connection (%d of %d)" % (kind, ok, connects[0]))

# Idle connections, held until standard input closes.
# Fewer than limits.connections_per_ip (20) allows from 127.0.0.1.
IDLERS = 15
p = subprocess.Popen([exe, "--tls", "--port", str(srv.port), "--user", USER, "--password",
                      PASSWORD, "--mode", "idle", "--sessions", str(IDLERS), "--burst", "10",
                      "--duration", "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
first = p.stdout.readline().strip()
t.is_(first, "idling %d" % IDLERS, "idle: all connections are idling")
p.stdin.close()
rest = p.stdout.read()
p.wait(timeout=60)
t.like(rest, "idle held=%d lost=0" % IDLERS, "idle: all still held when told to stop")
ops, errors = parse(rest)
t.is_(ops.get("idle"), (IDLERS, 0, 0), "idle: one IDLE per connection, none failed")

# A wrong password: errors, with the server's answer.  Last: the
# failed-login limiter then refuses 127.0.0.1.
r = load("--mode", "persistent", "--sessions", "1", "--duration", "2",
         password="not the password")
ops, errors = parse(r.stdout)
t.ok(ops.get("login", (1, 0, 0))[0] == 0 and ops.get("login", (0, 0, 0))[1] > 0,
     "a wrong password: LOGIN counted as errors (%s)" % (ops.get("login"),))
t.ok(any(e.startswith("error login NO") for e in errors),
     "the error's text is the server's NO (%s)" % errors)
t.done()
