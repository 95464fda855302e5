#!/usr/bin/env python3
"""
t/integration/030-tls.t: listeners and TLS through a running `gannet serve`,
talking to the "test-echo" protocol of t/modules/testproto with Python's
ssl module.

- implicit TLS: SNI picks the right one of two certificates (the served
  certificate's CN and bytes), no SNI or an unknown name gets the first;
- a client certificate, offered, reaches the protocol as its public key
  (PUBKEY: SHA-256 of the SubjectPublicKeyInfo); none offered: "none";
- STARTTLS: the go-ahead in the clear, then TLS; commands pipelined after
  STARTTLS are dropped (RFC 3207 section 5, CVE-2011-0411);
- a plain listener works and offers no STARTTLS; IPv6 on ::1;
- a failed handshake and every connection are logged;
- config errors: a listener's protocol nobody provides, a TLS listener
  without certificates, a port already in use (each naming file:line).
"""
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

MODULE = os.path.join(gt.BUILDDIR, "t", "modules", "testproto", ".libs", "testproto.so")
if not os.path.exists(MODULE):
    t.ok(False, "the test module is built (%s)" % MODULE)
    t.done()

moddir = gt.module_dir()
shutil.copy(MODULE, os.path.join(moddir, "testproto.so"))
os.chmod(os.path.join(moddir, "testproto.so"), 0o755)

d = gt.tmpdir()
cert_a, key_a = gt.make_cert(d, "a", "a.test")
cert_b, key_b = gt.make_cert(d, "b", "b.test")
cert_c, key_c = gt.make_cert(d, "client", "client.test")


def has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


IPV6 = has_ipv6()
p_starttls, p_implicit, p_plain = gt.free_port(), gt.free_port(), gt.free_port()
p_v6 = free_port6() if IPV6 else 0

listeners = [
    '{ name = "st"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; tls = "starttls"; }' % p_starttls,
    '{ name = "imp"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; tls = "implicit"; }' % p_implicit,
    '{ name = "plain"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; }' % p_plain,
]
if IPV6:
    listeners.append('{ name = "six"; address = "::1"; port = %d; protocol = "test-echo"; tls = "implicit"; }'
                     % p_v6)
TLS_CONF = 'tls = { certificates = ( { cert = "%s"; key = "%s"; }, { cert = "%s"; key = "%s"; } ); };' % (
    cert_a, key_a, cert_b, key_b)
MODULES = 'directory = "%s"; load = [ "testproto" ];' % moddir

g = gt.Gannet(gt.base_conf(listeners=", ".join(listeners), modules=MODULES,
                           extra="workers = 2;\n" + TLS_CONF))
try:
    g.start(wait_ports=(p_starttls, p_implicit, p_plain))
except RuntimeError as e:
    t.ok(False, "gannet serve starts with TLS listeners")
    t.diag(str(e))
    t.done()


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def cn_of(der):
    """The subject CN of a DER certificate (with openssl)."""
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                        "-nameopt", "multiline"], input=der, capture_output=True)
    m = re.search(rb"commonName\s*=\s*(\S+)", r.stdout)
    return m.group(1).decode() if m else None


def spki_sha256(cert_path):
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def client_ctx(client_cert=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        ctx.load_cert_chain(cert_c, key_c)
    return ctx


class Lines:
    """Line reader over a socket (plain or TLS) that never reads past a line
    end, so a plain socket can still be wrapped after STARTTLS."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)

    def line(self):
        out = b""
        while not out.endswith(b"\n"):
            try:
                b = self.sock.recv(1)
            except (ConnectionError, ssl.SSLError, socket.timeout):
                b = b""
            if not b:
                break
            out += b
        return out.decode(errors="replace").rstrip("\r\n")

    def send(self, s):
        self.sock.sendall(s.encode())

    def cmd(self, s):
        self.send(s + "\r\n")
        return self.line()

    def eof(self):
        try:
            return self.sock.recv(100) == b""
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def implicit(sni, client_cert=False, host="127.0.0.1", port=None):
    raw = socket.create_connection((host, port or p_implicit), timeout=10)
    s = client_ctx(client_cert).wrap_socket(raw, server_hostname=sni)
    return Lines(s)


# -- implicit TLS and SNI --
c = implicit("a.test")
der = c.sock.getpeercert(binary_form=True)
t.is_(cn_of(der), "a.test", "implicit TLS, SNI a.test: served certificate CN a.test")
t.ok(der == der_of(cert_a), "and it is exactly a.pem")
greeting = c.line()
t.ok(re.match(r"^\* hello TLS1\.[23]$", greeting), "greeting after the handshake names the TLS version")
t.diag(greeting)
t.is_(c.cmd("SNI"), "* sni a.test", "the protocol sees the SNI name")
t.like(c.cmd("TLS"), "* tls TLS1.", "the protocol sees version and cipher")
t.is_(c.cmd("PUBKEY"), "* pubkey none", "no client certificate offered: no public key")
t.is_(c.cmd("hello there"), "= hello there", "lines are echoed over TLS")
t.is_(c.cmd("QUIT"), "* bye", "QUIT")
c.close()

c = implicit("b.test")
der = c.sock.getpeercert(binary_form=True)
t.is_(cn_of(der), "b.test", "SNI b.test: served certificate CN b.test")
t.ok(der == der_of(cert_b), "and it is exactly b.pem")
c.close()

c = implicit(None)
der = c.sock.getpeercert(binary_form=True)
t.is_(cn_of(der), "a.test", "no SNI: the first configured certificate (CN a.test)")
c.line()
t.is_(c.cmd("SNI"), "* sni none", "no SNI: the protocol sees none")
c.close()

c = implicit("other.test")
t.is_(cn_of(c.sock.getpeercert(binary_form=True)), "a.test",
      "SNI naming no certificate: the first certificate")
c.close()

# -- client certificate --
c = implicit("a.test", client_cert=True)
c.line()
want = spki_sha256(cert_c)
t.is_(c.cmd("PUBKEY"), "* pubkey " + want,
      "client certificate offered: the protocol sees its public key (SHA-256 of the SPKI)")
t.like(c.cmd("CB tls-exporter"), "* cb tls-exporter 32", "tls-exporter channel binding available")
c.close()

# -- STARTTLS --
raw = socket.create_connection(("127.0.0.1", p_starttls), timeout=10)
c = Lines(raw)
t.is_(c.line(), "* hello plain", "STARTTLS listener: plain greeting")
t.is_(c.cmd("PUBKEY"), "* pubkey none", "no key before TLS")
# RFC 3207 5: a command pipelined after STARTTLS must not be executed after
# the handshake as if it had come over TLS.
c.send("STARTTLS\r\nSMUGGLED\r\n")
t.is_(c.line(), "* go ahead", "STARTTLS: go-ahead in the clear")
try:
    s = client_ctx(client_cert=True).wrap_socket(raw, server_hostname="b.test")
    c = Lines(s)
    t.ok(True, "STARTTLS handshake")
    t.is_(cn_of(s.getpeercert(binary_form=True)), "b.test", "STARTTLS with SNI b.test: CN b.test")
    t.is_(c.cmd("AFTER"), "= AFTER",
          "the command pipelined after STARTTLS was dropped, not run under TLS")
    t.is_(c.cmd("SNI"), "* sni b.test", "SNI seen after STARTTLS")
    t.is_(c.cmd("PUBKEY"), "* pubkey " + want, "client key seen after STARTTLS")
    t.is_(c.cmd("STARTTLS"), "* no tls here", "no second STARTTLS")
    c.close()
except (ssl.SSLError, OSError) as e:
    t.ok(False, "STARTTLS handshake")
    t.diag(str(e))

# -- plain listener --
c = Lines(socket.create_connection(("127.0.0.1", p_plain), timeout=10))
t.is_(c.line(), "* hello plain", "plain listener: greeting")
t.is_(c.cmd("ping"), "= ping", "plain listener: echo")
t.is_(c.cmd("STARTTLS"), "* no tls here", "plain listener offers no STARTTLS")
t.is_(c.cmd("QUIT"), "* bye", "plain listener: QUIT")
t.ok(c.eof(), "and the server closes")
c.close()

# -- IPv6 --
if IPV6:
    c = implicit("b.test", host="::1", port=p_v6)
    t.is_(cn_of(c.sock.getpeercert(binary_form=True)), "b.test", "IPv6 listener on ::1 with TLS and SNI")
    t.like(c.line(), "* hello TLS1.", "IPv6: greeting")
    c.close()
else:
    t.ok(True, "# SKIP no IPv6 loopback")

# -- a failed handshake is logged --
raw = socket.create_connection(("127.0.0.1", p_implicit), timeout=10)
raw.sendall(b"THIS IS NOT TLS\r\n\r\n")
try:
    raw.recv(100)
except OSError:
    pass
raw.close()


def wait_log(pattern, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, g.log())
        if m:
            return m
        time.sleep(0.1)
    return None


t.ok(wait_log(r"event=tls_failed [^\n]*listener=imp [^\n]*reason="), "a failed handshake is logged (event=tls_failed)")
t.ok(wait_log(r"event=conn_open [^\n]*listener=st "), "connections are logged when they open")
t.ok(wait_log(r"event=conn_close [^\n]*listener=plain [^\n]*bytes_in=\d+ [^\n]*reason=quit"),
     "and when they close, with bytes and reason")

t.is_(g.stop(), 0, "gannet stops cleanly")

# -- config errors --
d2 = gt.tmpdir()


def serve_fails(conf_text):
    path = os.path.join(d2, "gannet.conf")
    with open(path, "w") as f:
        f.write(conf_text.replace("{dir}", d2).replace("{db}", g.conninfo))
    r = gt.run_gannet(["-c", path, "serve", "--foreground"], timeout=30)
    return r.returncode, r.stderr + r.stdout, path


port = gt.free_port()
rc, err, path = serve_fails(gt.base_conf(
    listeners='{ name = "nope"; address = "127.0.0.1"; port = %d; protocol = "no-such-proto"; }' % port,
    modules=MODULES))
t.is_(rc, 1, "a listener whose protocol no module provides: exit 1")
t.ok(re.search(r"no-such-proto.*nope.*%s:\d+" % re.escape(os.path.basename(path)), err) or
     re.search(r"nope.*no-such-proto.*%s:\d+" % re.escape(os.path.basename(path)), err),
     "the error names protocol, listener and file:line")
t.diag(err.strip())

rc, err, path = serve_fails(gt.base_conf(
    listeners='{ name = "tlsless"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; tls = "implicit"; }' % port,
    modules=MODULES))
t.is_(rc, 1, "a TLS listener without any certificate: exit 1")
t.like(err, "tlsless", "the error names the listener")
t.diag(err.strip())

busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
busy.bind(("127.0.0.1", 0))
busy.listen(1)
bport = busy.getsockname()[1]
rc, err, path = serve_fails(gt.base_conf(
    listeners='{ name = "taken"; address = "127.0.0.1"; port = %d; protocol = "test-echo"; }' % bport,
    modules=MODULES))
t.ok(rc not in (0, None), "a port already in use: serve fails")
t.ok(re.search(r"cannot listen on 127\.0\.0\.1:%d \(listener taken at [^)]*:\d+\): Address already in use"
               % bport, err), "the error names address, listener, file:line and the reason")
t.diag(err.strip())
busy.close()

t.done()
