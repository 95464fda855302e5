"""
t/lib/pgproxy.py: a PostgreSQL wire-protocol proxy that breaks a
connection at the one moment a test asks for: during the COMMIT of a
delivery.

Gannet connects to the proxy's unix socket (host=DIR port=PORT, as to a
server); each connection is relayed to the real server's socket.  The
proxy reads the frontend messages as they pass and remembers, per
connection, whether the current transaction inserted into gn_messages.
A statement runs at a Query ('Q', which carries its SQL text) or at a Bind
('B') of a statement that a Parse ('P') named before: gannet prepares the
texts it sends again (core/db/stmt.c), so a Parse is not a run, and a
prepared COMMIT runs with a Bind alone.  When armed, the next COMMIT of
such a transaction breaks the connection in one of two ways:

  "lose_reply"   the COMMIT goes to the server, which commits; the proxy
                 waits for the server's ReadyForQuery and then closes both
                 sides without passing the reply on: the client cannot know
                 that its transaction committed.
  "lose_commit"  the connection is closed before the COMMIT reaches the
                 server: the server rolls back; the client cannot know
                 that either.

Either way the client sees its connection break during COMMIT, which is
all a network failure or a server crash would show it.  One arming breaks
one COMMIT (fired counts them); everything else is relayed unchanged.

statements lists the SQL text of every statement run (Query and Bind), in
order, for tests that count what a command sends.
"""
import os
import socket
import struct
import threading

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class _Conn:
    def __init__(self, proxy, client, server):
        self.proxy = proxy
        self.client = client
        self.server = server
        self.wrote_message = False
        self.parsed = {}           # statement name -> SQL text (Parse)
        self.await_ready = False   # lose_reply: close at the server's next 'Z'
        self.closed = False
        self.lock = threading.Lock()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _recv_exact(sock, n, buf):
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
    return buf


class PgProxy:
    def __init__(self, upstream_dir, upstream_port, directory, port):
        """Listens on DIRECTORY/.s.PGSQL.PORT; relays to the server's
        socket UPSTREAM_DIR/.s.PGSQL.UPSTREAM_PORT."""
        self.upstream = os.path.join(upstream_dir, ".s.PGSQL.%d" % upstream_port)
        self.directory = directory
        self.port = port
        self.path = os.path.join(directory, ".s.PGSQL.%d" % port)
        self.mode = None
        self.fired = 0
        self.statements = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)   # gannet may run as another user
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode):
        assert mode in ("lose_reply", "lose_commit")
        with self.lock:
            self.mode = mode

    def disarm(self):
        with self.lock:
            self.mode = None

    def _take(self):
        with self.lock:
            mode, self.mode = self.mode, None
            if mode is not None:
                self.fired += 1
            return mode

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self.upstream)
            except OSError:
                client.close()   # the server is down: as if refused
                continue
            c = _Conn(self, client, server)
            threading.Thread(target=self._c2s, args=(c,), daemon=True).start()
            threading.Thread(target=self._s2c, args=(c,), daemon=True).start()

    @staticmethod
    def _sql(c, kind, body):
        """The SQL text of the statement this message runs, or None."""
        if kind == b"Q":
            return body.split(b"\0", 1)[0]
        if kind == b"P":   # statement name \0 query \0 ...: no run yet
            parts = body.split(b"\0", 2)
            if len(parts) > 1:
                c.parsed[parts[0]] = parts[1]
            return None
        if kind == b"B":   # portal name \0 statement name \0 ...
            parts = body.split(b"\0", 2)
            return c.parsed.get(parts[1], b"") if len(parts) > 1 else b""
        return None

    def _c2s(self, c):
        buf = b""
        try:
            # The startup packet (and an SSL or GSS request before it): no
            # type byte.
            while True:
                buf = _recv_exact(c.client, 8, buf)
                if buf is None:
                    return c.close()
                n, code = struct.unpack("!ii", buf[:8])
                buf = _recv_exact(c.client, n, buf)
                if buf is None:
                    return c.close()
                c.server.sendall(buf[:n])
                buf = buf[n:]
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    break
            while True:
                buf = _recv_exact(c.client, 5, buf)
                if buf is None:
                    return c.close()
                kind = buf[:1]
                n = struct.unpack("!i", buf[1:5])[0] + 1
                buf = _recv_exact(c.client, n, buf)
                if buf is None:
                    return c.close()
                msg, buf = buf[:n], buf[n:]
                sql = self._sql(c, kind, msg[5:])
                if sql is not None:
                    with self.lock:
                        self.statements.append(sql.decode(errors="replace"))
                    word = sql.strip().upper()
                    if word in (b"BEGIN", b"ROLLBACK"):
                        c.wrote_message = False
                    elif word == b"COMMIT":
                        mode = self._take() if c.wrote_message else None
                        c.wrote_message = False
                        if mode == "lose_commit":
                            return c.close()
                        if mode == "lose_reply":
                            c.await_ready = True
                    elif b"INSERT INTO gn_messages" in sql:
                        c.wrote_message = True
                c.server.sendall(msg)
        except OSError:
            c.close()

    def _s2c(self, c):
        buf = b""
        try:
            while True:
                buf = _recv_exact(c.server, 5, buf)
                if buf is None:
                    return c.close()
                kind = buf[:1]
                n = struct.unpack("!i", buf[1:5])[0] + 1
                buf = _recv_exact(c.server, n, buf)
                if buf is None:
                    return c.close()
                msg, buf = buf[:n], buf[n:]
                if c.await_ready:
                    # The COMMIT's reply is dropped; its ReadyForQuery
                    # means the server is done: break the connection.
                    if kind == b"Z":
                        return c.close()
                    continue
                c.client.sendall(msg)
        except OSError:
            c.close()
