#!/usr/bin/env python3
"""
t/integration/165-imap-idle.t: IDLE (RFC 2177) against a running `gannet
serve`, woken by PostgreSQL's NOTIFY (issue 8, items 3 and 5, part):

- a session idling in INBOX hears EXISTS when another process (`gannet
  import`, sharing only the database) delivers, and FETCH FLAGS when
  another session changes flags (the module keeps no timer for this:
  only the store's NOTIFY wakes a session);
- DONE ends the IDLE with OK, anything else with BAD; the session goes on;
- IDLE without a selected mailbox is allowed and hears nothing;
- when the node shuts down, an idling session and one not logged in
  hear BYE before the connection closes.
"""
import imaplib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import imaptest  # noqa: E402
from imaptest import PASSWORD, cmd, untagged  # noqa: E402,F401

t = gt.Tap()
srv = imaptest.Server(t)
g, tport, ctx, gannet, mbox_of, sql, session = (srv.g, srv.port, srv.ctx, srv.gannet, srv.mbox_of,
                                                 srv.sql, srv.session)
t.ok(srv.setup(1), "an account with one message in its Inbox")
srv.start()


import socket  # noqa: E402


class Raw:
    def __init__(self):
        s = socket.create_connection(("127.0.0.1", tport), timeout=15)
        self.s = ctx.wrap_socket(s)
        self.buf = b""
        self.line()

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return b""
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def until_tagged(self, tag):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln == b"" or ln.startswith(tag.encode() + b" "):
                return lines


r = Raw()
r.send(b"a LOGIN alice@example.com \"%s\"\r\n" % PASSWORD.encode())
t.like(r.until_tagged("a")[-1].decode(), "a OK", "logged in")
r.send(b"b SELECT INBOX\r\n")
t.ok(b"* 1 EXISTS" in r.until_tagged("b"), "INBOX with one message")
r.send(b"c IDLE\r\n")
t.is_(r.line(), b"+ idling", "IDLE: a continuation")
gannet("import", "mbox", "alice", mbox_of(1, first=10))
t.is_(r.line(), b"* 2 EXISTS", "a delivery by another process wakes it: EXISTS")
w = session()
w.select("INBOX")
w.store("1", "+FLAGS", "(\\Flagged)")
t.is_(r.line(), b"* 1 FETCH (UID 1 FLAGS (\\Flagged))", "a flag set by another session: FETCH FLAGS")
r.send(b"DONE\r\n")
t.is_(r.line(), b"c OK IDLE terminated", "DONE ends it")
r.send(b"d NOOP\r\n")
t.is_(r.until_tagged("d"), [b"d OK NOOP completed"], "nothing is reported twice")
r.send(b"e IDLE\r\n")
r.line()
r.send(b"FOO\r\n")
t.like(r.line().decode(), "e BAD", "anything but DONE: BAD")
r.send(b"f UNSELECT\r\ng IDLE\r\n")
r.until_tagged("f")
t.is_(r.line(), b"+ idling", "IDLE without a selected mailbox")
gannet("import", "mbox", "alice", mbox_of(1, first=20))
r.send(b"DONE\r\n")
t.is_(r.line(), b"g OK IDLE terminated", "hears nothing, ends with DONE")
w.logout()

# A node shutting down says BYE to its sessions (issue 8, item 3): one
# idling in a mailbox, one not logged in yet.
r.send(b"h SELECT INBOX\r\ni IDLE\r\n")
r.until_tagged("h")
t.is_(r.line(), b"+ idling", "idling again in INBOX")
n = Raw()
t.is_(g.stop(), 0, "the node stops (SIGTERM)")
t.like(r.line().decode(), "* BYE Server shutting down", "the idling session hears BYE")
t.is_(r.line(), b"", "and the connection closes")
t.like(n.line().decode(), "* BYE Server shutting down", "a session not logged in hears BYE too")
t.done()
