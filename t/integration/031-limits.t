#!/usr/bin/env python3
"""
t/integration/031-limits.t: the limits a peer runs into, through a running
`gannet serve` and the "test-echo" protocol of t/modules/testproto:

- a line longer than the protocol's max_input (1024) gets the protocol's
  error and the connection closes (the reply is not lost to a reset);
  a long line under the limit is fine;
- limits.connections_per_ip (counted for all workers together; that
  sharing between processes is checked by t/unit/test_iplimit): the
  connection past it is closed at once (and logged), and a slot freed by a
  client that left can be used again;
- IPv6 clients count per limits.ipv6_prefix (default /64): connections
  from other addresses of a /64 count against it, another /64 is another
  client; with ipv6_prefix = 128 each address counts alone;
- limits.connections (per worker): the connection past it is closed at once;
- limits.idle_timeout: an idle client gets the protocol's last words and is
  disconnected.

Clients from several IPv6 networks need addresses of them on this host:
the test runs in a network namespace of its own (unshare --net, util-linux),
with documentation addresses (RFC 3849) on its loopback interface (ip,
iproute2).
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

# The IPv6 addresses of the namespace: three of one /64, one of another.
NET1 = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
NET2 = "2001:db8:1:3::1"

if os.environ.get("GANNET_TEST_NETNS") != "1":
    # Run again in a network namespace of its own (as root a plain one;
    # otherwise in a user namespace keeping our uid).
    ns = ["unshare", "--net"] if gt.IS_ROOT else ["unshare", "--user", "--map-current-user", "--net"]
    probe = subprocess.run(ns + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("not ok 1 - the test runs in a network namespace of its own: %s"
              % (probe.stderr.strip() or probe.returncode))
        print("1..1")
        sys.exit(1)
    env = dict(os.environ, GANNET_TEST_NETNS="1")
    sys.exit(subprocess.call(ns + [sys.executable, os.path.abspath(__file__)], env=env))

# In the namespace: loopback up, with the addresses.
for cmd in [["ip", "link", "set", "lo", "up"]] + [
        ["ip", "-6", "addr", "add", a + "/64", "dev", "lo", "nodad"] for a in NET1 + [NET2]]:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("not ok 1 - %s: %s" % (" ".join(cmd), r.stderr.strip() or r.returncode))
        print("1..1")
        sys.exit(1)

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "testproto", ".libs", "testproto.so")
if not os.path.exists(MODULE):
    t.ok(False, "the test module is built (%s)" % MODULE)
    t.done()

moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "testproto.so"))
os.chmod(os.path.join(moddir, "testproto.so"), 0o755)
MODULES = 'directory = "%s"; load = [ "testproto" ];' % moddir


class Client:
    def __init__(self, port, host="127.0.0.1", source=None):
        self.sock = socket.create_connection((host, port), timeout=10,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            try:
                b = self.sock.recv(4096)
            except (ConnectionError, socket.timeout):
                b = b""
            if not b:
                out, self.buf = self.buf, b""
                return out.decode(errors="replace")
            self.buf += b
        out, self.buf = self.buf.split(b"\n", 1)
        return out.decode(errors="replace").rstrip("\r")

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def eof(self):
        """True when the server closed (after whatever it still sends)."""
        try:
            while True:
                b = self.sock.recv(4096)
                if not b:
                    return True
        except ConnectionError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def wait_log(g, pattern, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, g.log()):
            return True
        time.sleep(0.1)
    return False


# ---- instance 1: two workers, 3 connections per IP ----
port = gt.free_port()
g = gt.Gannet(gt.base_conf(
    listeners='{ name = "echo"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; }' % port,
    modules=MODULES,
    extra='workers = 2;\nlimits = { connections_per_ip = 3; idle_timeout = "1m"; };'))
try:
    g.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts")
    t.diag(str(e))
    t.done()


def settled(g):
    """Waits until every connection opened so far (wait_port's probes) has
    closed, so that they no longer count against the limits.  The probe
    made at least one: until a worker has logged it, nothing is settled
    (a slow start, under ASan, logged it after this had returned)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        log = g.log()
        opened = log.count("event=conn_open ")
        if opened > 0 and opened == log.count("event=conn_close "):
            return
        time.sleep(0.05)


settled(g)

# -- line length --
c = Client(port)
t.is_(c.line(), "* hello plain", "greeting")
long_ok = "y" * 1000
c.send(long_ok + "\r\n")
t.is_(c.line(), "= " + long_ok,
      "a 1000-byte line (under max_input 1024) is echoed")
c.send(b"x" * 3000)
t.is_(c.line(), "* error line too long", "a line past max_input: the protocol's error (input_full)")
t.ok(c.eof(), "and the connection is closed")
c.close()
t.ok(wait_log(g, r"event=conn_close [^\n]*reason=\"line too long\""), "closing reason logged")

# -- connections per IP, across workers --
held = []
for i in range(3):
    cl = Client(port)
    held.append(cl)
    t.is_(cl.line(), "* hello plain", "connection %d of 3 from 127.0.0.1 is served" % (i + 1))
over = Client(port)
t.is_(over.line(), "", "the 4th connection from the same IP gets no greeting")
t.ok(over.eof(), "and is closed at once")
over.close()
t.ok(wait_log(g, r"event=conn_refused [^\n]*remote=127\.0\.0\.1 [^\n]*reason=connections_per_ip"),
     "the refusal is logged with the reason")
opens = [m for m in re.findall(r"pid=(\d+) event=conn_open [^\n]*listener=echo", g.log())]
t.diag("connections were accepted by worker pids %s" % sorted(set(opens)))

# A client leaves: its slot is free again (the release is asynchronous, so
# retry for a while).
held.pop().close()
served = False
deadline = time.time() + 10
while time.time() < deadline and not served:
    cl = Client(port)
    if cl.line() == "* hello plain":
        served = True
        held.append(cl)
    else:
        cl.close()
        time.sleep(0.1)
t.ok(served, "after one client left, a new connection from the IP is served")
for cl in held:
    cl.close()
t.is_(g.stop(), 0, "gannet stops")

# ---- instance 2: one worker, 2 connections, 1 s idle timeout ----
port = gt.free_port()
g2 = gt.Gannet(gt.base_conf(
    listeners='{ name = "echo"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; }' % port,
    modules=MODULES,
    extra='workers = 1;\nlimits = { connections = 2; connections_per_ip = 100; idle_timeout = "1s"; };'))
try:
    g2.start(wait_ports=(port,))
except RuntimeError as e:
    t.ok(False, "gannet serve starts (second config)")
    t.diag(str(e))
    t.done()

# The idle timeout closes connections after a second, so the connection
# limit is checked quickly, with clients that keep talking.
settled(g2)
a, b = Client(port), Client(port)
t.is_(a.line(), "* hello plain", "first of 2 connections per worker")
t.is_(b.line(), "* hello plain", "second of 2 connections per worker")
a.send("keep\r\n")
over = Client(port)
t.is_(over.line(), "", "the 3rd connection to a worker at limits.connections gets nothing")
t.ok(over.eof(), "and is closed at once")
over.close()
t.ok(wait_log(g2, r"event=conn_refused [^\n]*reason=max_connections"), "the refusal is logged")
a.close()
b.close()

# -- idle timeout --
time.sleep(0.5)
c = None
for _ in range(50):	# until the closed ones above are gone
    c = Client(port)
    if c.line() == "* hello plain":
        break
    c.close()
    time.sleep(0.1)
start = time.time()
t.is_(c.line(), "* idle timeout", "an idle client gets the protocol's timeout line")
elapsed = time.time() - start
t.ok(c.eof(), "and is disconnected")
t.ok(elapsed >= 0.8, "not before the idle timeout (after %.2f s)" % elapsed)
c.close()

# Activity resets the timer.
c = Client(port)
c.line()
alive = True
for i in range(4):
    time.sleep(0.4)
    c.send("tick %d\r\n" % i)
    alive &= c.line() == "= tick %d" % i
t.ok(alive, "a client that keeps talking past the idle timeout stays connected")
c.close()
t.ok(wait_log(g2, r"event=conn_close [^\n]*reason=\"idle timeout\""), "idle timeout logged as the reason")
t.is_(g2.stop(), 0, "gannet stops")

# ---- instance 3: IPv6 clients, 2 connections per client, default /64 ----
SERVER6 = NET1[0]


def ipv6_instance(extra):
    port = gt.free_port()
    g = gt.Gannet(gt.base_conf(
        listeners='{ name = "echo6"; address = "%s"; port = %d; protocol = "test-echo"; }'
                  % (SERVER6, port),
        modules=MODULES, extra='workers = 2;\nlimits = { %s idle_timeout = "1m"; };' % extra))
    g.start()
    if not gt.wait_port(port, host=SERVER6):
        t.ok(False, "gannet serve listens on [%s]:%d" % (SERVER6, port))
        t.diag(g.log())
        t.done()
    settled(g)
    return g, port


g3, port = ipv6_instance("connections_per_ip = 2;")
held = []
for src in NET1[:2]:
    cl = Client(port, SERVER6, src)
    held.append(cl)
    t.is_(cl.line(), "* hello plain", "a connection from %s is served" % src)
over = Client(port, SERVER6, NET1[2])
t.is_(over.line(), "", "a third from %s, another address of the same /64, gets nothing"
      % NET1[2])
t.ok(over.eof(), "and is closed at once")
over.close()
t.ok(wait_log(g3, r"event=conn_refused [^\n]*remote=2001:db8:1:2:ffff::3 [^\n]*"
              r"reason=connections_per_ip limit=2 prefix=/64"),
     "the refusal is logged with the limit and the prefix")
other = Client(port, SERVER6, NET2)
t.is_(other.line(), "* hello plain", "a client of another /64 (%s) is served" % NET2)
held.append(other)
for cl in held:
    cl.close()
t.is_(g3.stop(), 0, "gannet stops")

# ---- instance 4: ipv6_prefix = 128, 1 connection per client ----
g4, port = ipv6_instance("connections_per_ip = 1; ipv6_prefix = 128;")
held = []
for src in NET1:
    cl = Client(port, SERVER6, src)
    held.append(cl)
    t.is_(cl.line(), "* hello plain",
          "ipv6_prefix = 128: %s is a client of its own" % src)
again = Client(port, SERVER6, NET1[0])
t.is_(again.line(), "", "and its second connection is over its limit of 1")
again.close()
for cl in held:
    cl.close()
t.is_(g4.stop(), 0, "gannet stops")
t.done()
