#!/usr/bin/env python3
"""
t/integration/184-imap-autologout.t: the autologout timer after login
(RFC 9051 5.4: at least 30 minutes; imap.timeout_auth).

Thirty minutes are too long to wait, so gannet runs under faketime (Debian's
faketime, libfaketime preloaded) with its clocks going 100 times as fast:
30 minutes of gannet's time are 18 seconds here.  Real time measured here,
times 100, is gannet's time.

- a logged-in session that says nothing hears `* BYE` and the connection
  closes; not before 30 of gannet's minutes;
- a session that sends NOOP every 15 of gannet's minutes stays for 45 of
  them (each command starts the timer again), and is logged out 30 minutes
  after its last command;
- imap.timeout_auth below 30 minutes is a config error with file and line.
"""
import os
import re
import socket
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD  # noqa: E402

SPEED = 100
t = gt.Tap()

# imap.timeout_notauth is raised so that logging in is not itself raced
# against a 60-second timer (0.6 s here).
srv = imaptest.Server(t, extra='imap = { timeout_notauth = "10h"; };\n')
t.ok(srv.setup(1), "an account with a message in its Inbox")

# gannet serve through faketime: a wrapper, since Gannet runs one binary.
wrapper = os.path.join(srv.dir, "gannet-faketime")
argv = ["faketime", "-m", "-f", "+0 x%d" % SPEED, gt.GANNET]
with open(wrapper, "w") as f:
    # Under ASan (build-san) libfaketime comes before the sanitizer's
    # runtime in the preload list, which ASan refuses unless told.
    f.write("#!/bin/sh\nASAN_OPTIONS=verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}\n"
            "export ASAN_OPTIONS\nexec %s \"$@\"\n" % " ".join("'%s'" % a for a in argv))
os.chmod(wrapper, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
srv.g.binary = wrapper
srv.start()


class Session:
    def __init__(self):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=180)
        self.s = srv.ctx.wrap_socket(s)
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()
        self.s.sendall(b'a LOGIN alice@example.com "%s"\r\n' % PASSWORD.encode())
        self.login = self.f.readline()
        self.last = time.monotonic()

    def command(self, line):
        self.s.sendall(line + b"\r\n")
        reply = self.f.readline()
        self.last = time.monotonic()
        return reply

    def until_bye(self):
        """The next line and gannet's minutes since the last command."""
        line = self.f.readline()
        return line, (time.monotonic() - self.last) * SPEED / 60.0

    def closed(self):
        return self.f.readline() == b""


# Both sessions run at once: the quiet one in a thread.
quiet = {}


def quiet_session():
    q = Session()
    quiet["login"] = q.login
    quiet["bye"], quiet["minutes"] = q.until_bye()
    quiet["closed"] = q.closed()


th = threading.Thread(target=quiet_session)
th.start()

busy = Session()
t.ok(busy.login.startswith(b"a OK"), "logged in (%s)" % busy.login[:40])
noops = []
start = time.monotonic()
while (time.monotonic() - start) * SPEED / 60.0 < 45:
    time.sleep(15 * 60.0 / SPEED)
    noops.append(busy.command(b"n NOOP"))
t.ok(len(noops) >= 3 and all(r.startswith(b"n OK") for r in noops),
     "NOOP every 15 minutes: the session stays for 45 minutes (%d NOOPs: %s)"
     % (len(noops), sorted(set(r[:12] for r in noops))))
line, minutes = busy.until_bye()
t.ok(line.startswith(b"* BYE"), "then, quiet, it hears BYE (%s)" % line.strip())
t.ok(minutes >= 29.5, "30 minutes after its last command, not before (%.1f)" % minutes)
t.ok(busy.closed(), "and the server closes the connection")

th.join(timeout=240)
t.ok(quiet.get("login", b"").startswith(b"a OK"), "a second session logged in")
t.ok(quiet.get("bye", b"").startswith(b"* BYE"),
     "saying nothing, it hears BYE (%s)" % quiet.get("bye", b"").strip())
t.ok(quiet.get("minutes", 0) >= 29.5,
     "after 30 minutes, not before (%.1f)" % quiet.get("minutes", 0))
t.ok(quiet.get("closed"), "and the server closes the connection")
logged = re.findall(r"area=imap pid=\d+ event=autologout conn=\S+ logged_in=yes", srv.g.log())
t.is_(len(logged), 2, "each autologout is logged (%s)" % logged)

# ---- a timer below the RFC's 30 minutes is refused ----
conf = os.path.join(srv.dir, "short.conf")
with open(srv.g.conf_path) as f:
    text = f.read()
with open(conf, "w") as f:
    f.write(text.replace('timeout_notauth = "10h";', 'timeout_notauth = "10h"; timeout_auth = "29m";'))
r = gt.run_gannet(["config", "check", conf])
t.ok(r.returncode != 0, "imap.timeout_auth = 29m: gannet config check fails")
t.ok(re.search(r"timeout_auth must be at least 30m .*short\.conf:\d+", r.stdout + r.stderr),
     "with the reason, the file and the line (%s)" % (r.stdout + r.stderr).strip())
t.done()
