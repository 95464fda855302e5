#!/usr/bin/env python3
"""
t/integration/280-http.t: HTTP served by the core (core/net/http.c,
gannet/http.h) on listeners with protocol "http", through the mounts of
t/modules/testhttp, with Python's http.client and curl:

- GET with a query, POST with a raw body, a form-urlencoded body and a
  multipart body (a file upload) reach the handler as parsed fields;
  headers, HTTP Basic credentials (good and malformed), the client IP;
- JSON answers, the handler's own status, its {"Code","Message"} error;
- the core's answers: 404 for a path nobody mounted, 405 with Allow for a
  method the mount does not take, 413 for a declared and for a chunked
  body over http.max_body, 431 for header fields over http.max_header,
  400 for a malformed request line and a malformed multipart body;
- keep-alive: several requests on one connection;
- TLS: a listener with tls = "implicit" and curl --cacert, SNI;
- a slow client (half a request, then silence) is closed after
  http.request_timeout, and a client that never finishes its body too;
- an asynchronous handler answers from a timer, and other requests are
  served meanwhile by the same single worker;
- 100 requests from 20 parallel clients all answered;
- a worker killed with SIGKILL: the master starts another and the service
  answers again;
- config errors for bad http settings.
"""
import base64
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "testhttp", ".libs", "testhttp.so")
if not os.path.exists(MODULE):
    t.ok(False, "the test module is built (%s)" % MODULE)
    t.done()
moddir = gt.module_dir()
import shutil  # noqa: E402
shutil.copy(MODULE, os.path.join(moddir, "testhttp.so"))
os.chmod(os.path.join(moddir, "testhttp.so"), 0o755)

d = gt.tmpdir()
cert, key = gt.make_cert(d, "web", "web.test")
p_plain, p_tls = gt.free_port(), gt.free_port()
listeners = ", ".join([
    '{ name = "web"; address = "127.0.0.1"; port = %d; protocol = "http"; }' % p_plain,
    '{ name = "webs"; address = "127.0.0.1"; port = %d; protocol = "http"; tls = "implicit"; }' % p_tls,
])
EXTRA = """workers = %d;
tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };
http = { max_body = "64k"; max_header = "4k"; request_timeout = "2s"; };
limits = { connections_per_ip = 200; };
"""
MODULES = 'directory = "%s"; load = [ "testhttp" ];' % moddir
g = gt.Gannet(gt.base_conf(listeners=listeners, modules=MODULES, extra=EXTRA % (1, cert, key)))
g.start(wait_ports=(p_plain, p_tls))


def request(method, path, body=None, headers=None, port=p_plain, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    finally:
        c.close()


def jbody(data):
    try:
        return json.loads(data)
    except ValueError:
        return {"unparsed": data.decode("latin-1")}


# ---- GET, query, headers ----
st, hd, data = request("GET", "/t/hello?a=x%20y&b=2", headers={"X-Test": "yes"})
j = jbody(data)
t.is_(st, 200, "GET /t/hello: 200")
t.like(hd.get("content-type", ""), "application/json", "... JSON")
t.is_(j.get("method"), "GET", "... the handler sees the method")
t.is_(j.get("path"), "/t/hello", "... the path")
t.is_(j.get("query"), "a=x%20y&b=2", "... the raw query")
t.is_(j.get("a"), "x y", "... a decoded query argument")
t.is_(j.get("x_test"), "yes", "... a header field")
t.is_(j.get("ip"), "127.0.0.1", "... the client IP")
t.is_(j.get("tls"), False, "... not TLS")
t.is_(j.get("auth"), 0, "... no credentials")
t.is_(hd.get("x-echo"), "1", "a header the handler added")

# ---- POST bodies ----
st, hd, data = request("POST", "/t/raw", body=b'{"x": 1}',
                       headers={"Content-Type": "application/json"})
j = jbody(data)
t.is_((st, j.get("body"), j.get("body_len"), j.get("fields")), (200, '{"x": 1}', 8, []),
      "POST with a JSON body: the body reaches the handler, no form fields")

form = "first=caf%C3%A9+au+lait&empty=&second=a%26b&first=again"
st, hd, data = request("POST", "/t/form", body=form,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
j = jbody(data)
t.is_(st, 200, "POST form-urlencoded: 200")
t.is_([(f["name"], f["value"]) for f in j.get("fields", [])],
      [("first", "café au lait"), ("empty", ""), ("second", "a&b"), ("first", "again")],
      "... the fields decoded, in order, repeats kept")
t.is_(j.get("form_first"), "café au lait", "... gn_http_request_form() finds the first")

upload = os.path.join(d, "upload.bin")
blob = bytes(range(256)) * 40   # 10240 bytes, every byte value
with open(upload, "wb") as f:
    f.write(blob)
r = subprocess.run(["curl", "-sS", "--max-time", "10", "-F", "first=one",
                    "-F", 'request={"a": "b"}', "-F", "file=@%s;type=application/octet-stream" % upload,
                    "http://127.0.0.1:%d/t/multi" % p_plain], capture_output=True)
j = jbody(r.stdout)
fields = j.get("fields", [])
t.is_([f["name"] for f in fields], ["first", "request", "file"],
      "multipart (curl -F): three fields in order")
if len(fields) == 3:
    t.is_(fields[0].get("value"), "one", "... a plain field's value")
    t.is_(fields[1].get("value"), '{"a": "b"}', "... a JSON field's value")
    t.is_((fields[2].get("filename"), fields[2].get("ctype"), fields[2].get("len")),
          ("upload.bin", "application/octet-stream", len(blob)),
          "... the file's name, type and length")
    t.is_(fields[2].get("value"), None, "... (too long for the echo: length only)")
small = os.path.join(d, "small.txt")
with open(small, "wb") as f:
    f.write(b"line 1\r\nline 2\x00\x01")
r = subprocess.run(["curl", "-sS", "--max-time", "10", "-F", "file=@%s" % small,
                    "http://127.0.0.1:%d/t/multi" % p_plain], capture_output=True)
j = jbody(r.stdout)
fs = j.get("fields", [{}])
t.is_((fs[0].get("len"), fs[0].get("value")), (16, "line 1\r\nline 2\x00\x01"),
      "a small file's bytes arrive whole (CR LF, NUL)")

# ---- Basic auth ----
cred = base64.b64encode("mjl@mox.example:pass:word é".encode()).decode()
st, hd, data = request("GET", "/t/auth", headers={"Authorization": "Basic " + cred})
j = jbody(data)
t.is_((j.get("auth"), j.get("user"), j.get("password")), (1, "mjl@mox.example", "pass:word é"),
      "Basic credentials parsed (the password may hold a colon)")
st, hd, data = request("GET", "/t/auth", headers={"Authorization": "Basic !!notbase64"})
t.is_(jbody(data).get("auth"), -1, "malformed Basic credentials: -1")
st, hd, data = request("GET", "/t/auth", headers={"Authorization": "Basic " +
                                                  base64.b64encode(b"nocolon").decode()})
t.is_(jbody(data).get("auth"), -1, "Basic credentials without a colon: -1")
st, hd, data = request("GET", "/t/auth", headers={"Authorization": "Bearer abc"})
t.is_(jbody(data).get("auth"), 0, "another scheme: no Basic credentials")

# ---- the handler's status and error ----
st, hd, data = request("GET", "/t/x?status=201")
t.is_(st, 201, "the handler's status")
st, hd, data = request("GET", "/t/x?error=badField")
t.is_((st, jbody(data)), (400, {"Code": "badField", "Message": "asked for an error"}),
      "gn_http_respond_error(): 400 with {Code, Message}")

# ---- the core's answers ----
st, hd, data = request("GET", "/nothing/here")
t.is_((st, jbody(data).get("Code")), (404, "notFound"), "an unmounted path: 404 notFound")
st, hd, data = request("GET", "/t")
t.is_(st, 404, "a prefix's match is by prefix: /t is not /t/")
st, hd, data = request("DELETE", "/t/x")
t.is_((st, jbody(data).get("Code"), hd.get("allow")), (405, "methodNotAllowed", "GET POST"),
      "a method the mount does not take: 405 with Allow")
st, hd, data = request("DELETE", "/t/any/x")
t.is_((st, data), (200, b"any DELETE\n"), "a mount for any method takes DELETE (longest prefix)")
st, hd, data = request("POST", "/t/big", body=b"x" * (64 * 1024 + 1))
t.is_((st, jbody(data).get("Code")), (413, "requestTooLarge"),
      "a declared body over http.max_body: 413")
st, hd, data = request("POST", "/t/big", body=b"x" * (64 * 1024))
t.is_((st, jbody(data).get("body_len")), (200, 64 * 1024), "a body of exactly max_body: 200")


def raw(payload, wait=5):
    """payload sent at once (what the server does not take before it
    closes is not sent); all it answers until it closes."""
    s = socket.create_connection(("127.0.0.1", p_plain), timeout=wait)
    out = b""
    try:
        s.sendall(payload)
    except OSError:
        pass
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out


# The 413 is answered before the body is read; a declared body sent whole
# with its header reaches the server while MHD answers and closes its
# end, and those bytes must not lose the answer (the core used to close
# at once when passing them on failed).
big = b"POST /t/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (300 * 1024) + b"z" * (300 * 1024)
got = [raw(big, wait=10) for _ in range(30)]
bad = [o[:40] for o in got if not (o.startswith(b"HTTP/1.1 413") and b"requestTooLarge" in o)]
t.is_(bad, [], "a declared body over max_body sent at once, 30 times: 413 each time")


def chunked(total, chunk=8192):
    s = socket.create_connection(("127.0.0.1", p_plain), timeout=10)
    s.sendall(b"POST /t/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent = 0
    try:
        while sent < total:
            n = min(chunk, total - sent)
            s.sendall(b"%x\r\n" % n + b"y" * n + b"\r\n")
            sent += n
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: *(\d+)", head, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
    except OSError:
        pass
    s.close()
    return out


out = chunked(40000)
t.ok(out.startswith(b"HTTP/1.1 200") and b'"body_len":40000' in out,
     "a chunked body under the limit: 200, whole")
out = chunked(200000)
t.ok(out.startswith(b"HTTP/1.1 413") and b"requestTooLarge" in out,
     "a chunked body over http.max_body: 413 (%r)" % out[:40])

out = chunked(64 * 1024 + 2 * 1024 * 1024)
t.is_(out, b"", "a chunked body more than 1 MiB over the limit: closed without an answer")
t.like(g.log(), "event=body_too_large conn=", "... logged")
st, hd, data = request("GET", "/t/h", headers={"X-Big": "z" * 5000})
t.is_(st, 431, "header fields over http.max_header: 431")


out = raw(b"GET /t/x HTTP/1.1\r\n\r\n")
t.ok(out.startswith(b"HTTP/1.1 400"), "HTTP/1.1 without Host: 400 (%r)" % out[:30])
out = raw(b"GET /t/x HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
t.ok(out.startswith(b"HTTP/1.1 400"), "a header line without a colon: 400 (%r)" % out[:30])
out = raw(b"GET /t/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
t.ok(out.startswith(b"HTTP/1.1 400"), "a bad Content-Length: 400 (%r)" % out[:30])
out = raw(b"GARBAGE\r\n\r\n")
t.is_(out, b"", "a request line that is not one: closed without an answer")
out = raw(b"POST /t/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
          b"Content-Type: multipart/form-data\r\nContent-Length: 5\r\n\r\nhello")
t.ok(out.startswith(b"HTTP/1.1 400") and b"badRequest" in out,
     "multipart without a boundary: 400 badRequest (%r)" % out[:30])

st, hd, data = request("HEAD", "/t/x")
t.is_((st, data, hd.get("content-type")), (200, b"", "application/json; charset=utf-8"),
      "HEAD where GET is mounted: the header without the body")

# ---- big answers: back-pressure between the client, the core and MHD ----
BIG = 8 * 1024 * 1024
want = bytes(i % 251 for i in range(251)) * (BIG // 251 + 1)
want = want[:BIG]
st, hd, data = request("GET", "/t/big?size=%d" % BIG)
t.ok(st == 200 and data == want, "an 8 MiB answer arrives whole (plain)")
r = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert", cert,
                    "--resolve", "web.test:%d:127.0.0.1" % p_tls,
                    "https://web.test:%d/t/big?size=%d" % (p_tls, BIG)], capture_output=True)
t.ok(r.returncode == 0 and r.stdout == want, "... and over TLS")
s = socket.create_connection(("127.0.0.1", p_plain), timeout=10)
s.sendall(b"GET /t/big?size=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % BIG)
got = b""
t0 = time.time()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
    if time.time() - t0 < 1.5:
        time.sleep(0.05)   # a slow reader first: the worker must wait for it
s.close()
t.ok(got.endswith(want[-1000:]) and len(got.partition(b"\r\n\r\n")[2]) == BIG,
     "... and to a client that reads slowly at first")
st, hd, data = request("GET", "/t/after-big")
t.is_(st, 200, "the worker serves on after the big answers")

# ---- keep-alive ----
c = http.client.HTTPConnection("127.0.0.1", p_plain, timeout=10)
pids = []
for i in range(5):
    c.request("GET", "/t/keep?a=%d" % i)
    r = c.getresponse()
    pids.append(jbody(r.read()).get("a"))
c.close()
t.is_(pids, ["0", "1", "2", "3", "4"], "five requests on one kept-alive connection")

# ---- TLS ----
r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert,
                    "--resolve", "web.test:%d:127.0.0.1" % p_tls,
                    "https://web.test:%d/t/tls?a=1" % p_tls], capture_output=True)
j = jbody(r.stdout)
t.is_((r.returncode, j.get("tls"), j.get("a")), (0, True, "1"),
      "TLS listener: curl --cacert verifies the certificate and the handler sees TLS")
r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert,
                    "-F", "first=over tls", "--resolve", "web.test:%d:127.0.0.1" % p_tls,
                    "https://web.test:%d/t/tls" % p_tls], capture_output=True)
t.is_(jbody(r.stdout).get("form_first"), "over tls", "... a multipart POST over TLS")
r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert,
                    "http://127.0.0.1:%d/t/x" % p_tls], capture_output=True)
t.ok(r.returncode != 0, "plain HTTP to the TLS listener fails")

# ---- slow clients ----
s = socket.create_connection(("127.0.0.1", p_plain), timeout=10)
s.sendall(b"GET /t/slow HTTP/1.1\r\nHost: x\r\n")   # no end of header
t0 = time.time()
try:
    got = s.recv(100)
except OSError:
    got = b"error"
el = time.time() - t0
s.close()
t.ok(el >= 1.5 and el < 6, "a client silent in its header is closed after request_timeout "
     "(2 s; took %.1f s)" % el)
s = socket.create_connection(("127.0.0.1", p_plain), timeout=10)
s.sendall(b"POST /t/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
t0 = time.time()
try:
    got = s.recv(100)
except OSError:
    got = b"error"
el = time.time() - t0
s.close()
t.ok(el >= 1.5 and el < 6, "a client that stops in its body is closed too (%.1f s)" % el)

# ---- asynchronous answers ----
res = {}


def slow_async():
    t0 = time.time()
    st, hd, data = request("GET", "/t/async/x?ms=1500")
    res["async"] = (st, jbody(data), time.time() - t0)


th = threading.Thread(target=slow_async)
th.start()
time.sleep(0.2)
t0 = time.time()
st, hd, data = request("GET", "/t/during")
fast = time.time() - t0
th.join()
t.ok(st == 200 and fast < 1.0,
     "while an asynchronous request waits, the one worker serves another (%.2f s)" % fast)
st, j, el = res.get("async", (0, {}, 0))
t.is_((st, j), (200, {"async": True, "ms": 1500}), "the asynchronous handler answers from its timer")
t.ok(1.4 <= el < 5, "... after the timer (%.2f s)" % el)
# A client that leaves before the answer: the worker goes on.
s = socket.create_connection(("127.0.0.1", p_plain), timeout=10)
s.sendall(b"GET /t/async/x?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
s.close()
time.sleep(0.6)
st, hd, data = request("GET", "/t/after")
t.is_(st, 200, "a client gone before its asynchronous answer harms nothing")

# ---- many parallel requests ----
results = []
lock = threading.Lock()


def client(n):
    for i in range(5):
        try:
            if i % 2 == 0:
                st, hd, data = request("GET", "/t/par?a=%d-%d" % (n, i))
                ok = st == 200 and jbody(data).get("a") == "%d-%d" % (n, i)
            else:
                st, hd, data = request("GET", "/t/async/p?ms=50")
                ok = st == 200 and jbody(data).get("async") is True
        except Exception as e:  # noqa: BLE001
            ok = False
            t.diag("client %d: %s" % (n, e))
        with lock:
            results.append(ok)


ths = [threading.Thread(target=client, args=(n,)) for n in range(20)]
for th in ths:
    th.start()
for th in ths:
    th.join()
t.is_((len(results), results.count(True)), (100, 100),
      "100 requests from 20 parallel clients (half asynchronous): all answered right")

# ---- a killed worker ----
st, hd, data = request("GET", "/t/pid")
pid = jbody(data).get("pid")
t.ok(isinstance(pid, int) and pid != g.proc.pid, "the answer comes from a worker (%s)" % pid)
if isinstance(pid, int):
    os.kill(pid, signal.SIGKILL)
newpid = None
deadline = time.time() + 20
while time.time() < deadline:
    try:
        st, hd, data = request("GET", "/t/pid", timeout=2)
        if st == 200 and jbody(data).get("pid") not in (None, pid):
            newpid = jbody(data).get("pid")
            break
    except OSError:
        pass
    time.sleep(0.2)
t.ok(newpid is not None, "after SIGKILL of the worker, another answers (%s)" % newpid)
r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert,
                    "--resolve", "web.test:%d:127.0.0.1" % p_tls,
                    "https://web.test:%d/t/again" % p_tls], capture_output=True)
t.is_(jbody(r.stdout).get("tls"), True, "... over TLS too")

log = g.log()
t.like(log, 'event=late_mount result=-1 error="HTTP paths can only be mounted in the register phase"',
       "a mount after the register phase is refused")
st, hd, data = request("GET", "/late/x")
t.is_(st, 404, "... and serves nothing")
t.ok(re.search(r"event=request conn=\S+ method=GET path=/t/hello status=200", log),
     "requests are logged with method, path and status")
# Graceful stop: a request under way (an asynchronous one) is answered,
# then the server exits 0.
idle = http.client.HTTPConnection("127.0.0.1", p_plain, timeout=10)
idle.request("GET", "/t/idle")
idle.getresponse().read()      # kept alive, idle
res = {}
th = threading.Thread(target=slow_async)
th.start()
time.sleep(0.4)
t0 = time.time()
rc = g.stop()
stop_s = time.time() - t0
th.join()
st, j, el = res.get("async", (0, {}, 0))
t.is_((st, j.get("async")), (200, True), "SIGTERM: the request under way is still answered")
t.is_(rc, 0, "... and the server stops cleanly")
t.ok(stop_s < 10, "... without waiting for the idle kept-alive connection (grace 30 s; "
     "took %.1f s)" % stop_s)
idle.close()

# ---- connection limits ----
def held(port, n):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /t/hold HTTP/1.1\r\nHost: x\r\n")   # unfinished: held open
        socks.append(s)
    time.sleep(0.3)
    return socks


def first_bytes(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    out = b""
    try:
        s.sendall(b"GET /t/x HTTP/1.1\r\nHost: x\r\n\r\n")
        while True:
            b = s.recv(4096)
            if not b:
                break
            out += b
            if b"\r\n\r\n" in out and (b"503" in out[:13] and out.endswith(b"}\n") or
                                       b"200" in out[:13] and out.endswith(b"}\n")):
                break
    except OSError:
        pass
    s.close()
    return out


p3 = gt.free_port()
g3 = gt.Gannet(gt.base_conf(
    listeners='{ name = "web"; address = "127.0.0.1"; port = %d; protocol = "http"; }' % p3,
    modules=MODULES, extra="workers = 1;\nlimits = { connections_per_ip = 2; };\n"), db=g.dbname)
g3.start(wait_ports=(p3,))
time.sleep(0.3)       # wait_port's probe is gone
socks = held(p3, 1)
out = first_bytes(p3)
t.ok(out.startswith(b"HTTP/1.1 200"), "under limits.connections_per_ip: served")
time.sleep(0.3)       # that connection's end is counted
socks += held(p3, 1)
out = first_bytes(p3)
head, _, body = out.partition(b"\r\n\r\n")
t.ok(out.startswith(b"HTTP/1.1 503") and jbody(body).get("Code") == "server",
     "over limits.connections_per_ip: 503 with a JSON body (%r)" % out[:40])
for s in socks:
    s.close()
g3.kill()

p4 = gt.free_port()
g4 = gt.Gannet(gt.base_conf(
    listeners='{ name = "web"; address = "127.0.0.1"; port = %d; protocol = "http"; }' % p4,
    modules=MODULES, extra="workers = 1;\nhttp = { connections = 2; };\n"), db=g.dbname)
g4.start(wait_ports=(p4,))
time.sleep(0.3)
BODY = 5 * 1024 * 1024   # past the socketpair's buffer: MHD must be waited for
st, hd, data = request("POST", "/t/upload", body=b"u" * BODY, port=p4, timeout=30)
t.is_((st, jbody(data).get("body_len")), (200, BODY),
      "a 5 MiB body (http.max_body default 10M) reaches the handler whole")
time.sleep(0.3)
socks = held(p4, 2)
out = first_bytes(p4)
t.is_(out, b"", "over http.connections (per worker): closed at once")
t.like(g4.log(), 'event=refused conn=', "... and logged")
for s in socks:
    s.close()
time.sleep(0.3)
t.ok(first_bytes(p4).startswith(b"HTTP/1.1 200"), "... and served again when they are gone")
g4.kill()

# ---- config errors ----
bad = gt.base_conf(listeners='{ address = "127.0.0.1"; port = %d; protocol = "http"; }' % p_plain,
                   extra='http = { max_body = 0; max_header = "10"; request_timeout = "10ms"; '
                         'connections = 0; };')
cf = os.path.join(d, "bad.conf")
with open(cf, "w") as f:
    f.write(bad.replace("{db}", g.conninfo).replace("{dir}", d))
r = gt.run_gannet(["serve", "-c", cf])
err = r.stdout + r.stderr
t.ok(r.returncode != 0, "bad http settings: serve refuses to start")
bad2 = gt.base_conf(listeners='{ name = "st"; address = "127.0.0.1"; port = %d; protocol = "http"; '
                              'tls = "starttls"; }' % p_plain,
                    extra='tls = { certificates = ( { cert = "%s"; key = "%s"; } ); };' % (cert, key))
with open(cf, "w") as f:
    f.write(bad2.replace("{db}", g.conninfo).replace("{dir}", d))
r2 = gt.run_gannet(["serve", "-c", cf])
t.ok(r2.returncode != 0 and "listener st: protocol http has no STARTTLS" in r2.stdout + r2.stderr,
     "an http listener with tls = \"starttls\" is a config error")
for name in ("max_body", "max_header", "request_timeout", "connections"):
    t.like(err, "http.%s:" % name, "... naming http.%s" % name)

t.done()
