#!/usr/bin/env python3
"""
t/lib/smtpsink.py: a loopback SMTP server for tests of gannet's SMTP client
(and later its queue) that answers what the test asks and records what it
got.  Plain Python (socketserver, ssl); no Debian module needed.

    python3 t/lib/smtpsink.py --port PORT --record FILE [--script FILE]
                              [--cert PEM --key KEY] [--host 127.0.0.1]

It prints "ready PORT" on stdout once it listens, and runs until killed.

The script (JSON, read at each new connection, so a test may rewrite it
between sends) says how to answer.  Every key is optional:

  {
    "greeting": "220 sink.test ESMTP",       the greeting (any code: "421 ...",
                                             "554 ..." to refuse)
    "connections": [ {...}, {...} ],         per connection (the Nth connection
                                             gets the Nth, the last repeats):
                                             the same keys as the top level,
                                             which they override
    "no": ["STARTTLS", "PIPELINING", "SMTPUTF8", "8BITMIME", "SIZE",
           "ENHANCEDSTATUSCODES"],            EHLO keywords not to offer
    "size": 10000000,                        SIZE's value
    "ehlo": "500 5.5.1 no EHLO here",        the reply to EHLO (then HELO works)
    "starttls": "454 4.7.0 TLS not now",     the reply to STARTTLS (default 220
                                             and the handshake, with --cert)
    "offer_starttls": true,                  offer STARTTLS without --cert: the
                                             220 is followed by no handshake (the
                                             client's TLS fails)
    "mail": "451 4.3.0 try later",           the reply to MAIL
    "rcpt": {"ADDR": "550 5.1.1 unknown",    the reply to RCPT per address
             "*": "250 2.1.5 ok"},           (the "*" entry for the others)
    "data": "554 5.5.1 no",                  the reply to DATA (default 354)
    "data_end": "250 2.0.0 queued",          the reply after the message
    "slow": {"greeting": 5, "mail": 5, ...}  seconds to wait before answering
                                             (greeting, ehlo, mail, rcpt,
                                             data, data_end)
    "drop_in_data": true,                    close the connection in the
                                             middle of the message (after its
                                             first line)
    "messages_per_connection": 1,            after this many messages the next
                                             command but QUIT gets "421 4.4.2"
                                             and the connection closes (a server
                                             ending a connection kept open)
    "requiretls": true,                      offer REQUIRETLS (RFC 8689) after TLS
    "auth": {                                AUTH (RFC 4954), offered after TLS:
      "mechanisms": "SCRAM-SHA-256 PLAIN",   what EHLO lists (PLAIN and
                                             SCRAM-SHA-1/-256 are checked)
      "user": "u", "password": "p",          the one login that works
      "clear": true,                         offer it without TLS too
      "reply": "535 5.7.8 no",               the end of every AUTH, unchecked
      "bad_signature": true,                 SCRAM: a wrong server signature
      "no_final": true                       SCRAM: 235 without the signature
    }
  }

The record file gets one JSON object a line, appended as events happen:

  {"conn": N, "event": "connect"}
  {"conn": N, "event": "command", "line": "MAIL FROM:<a@b> SIZE=12",
   "batch": B, "tls": false}                 batch: the number of the read that
                                             brought the line; commands sent in
                                             one write (pipelined) share it
  {"conn": N, "event": "tls"}                 STARTTLS handshake done
  {"conn": N, "event": "message", "from": "a@b", "rcpts": ["c@d"],
   "params": "SIZE=12 BODY=8BITMIME", "data": "<the message, dot-unstuffed,
   as latin-1 text>", "tls": true}
  {"conn": N, "event": "auth", "mechanism": "PLAIN", "authcid": "u",
   "ok": true, "tls": true}                  an AUTH exchange ("client_gave_up"
                                             when the client did not accept the
                                             server's signature)
  {"conn": N, "event": "close"}
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time

ARGS = None
LOCK = threading.Lock()
CONN_COUNT = [0]


def record(obj):
    with LOCK:
        with open(ARGS.record, "a") as f:
            f.write(json.dumps(obj) + "\n")


def load_script(n):
    script = {}
    if ARGS.script and os.path.exists(ARGS.script):
        with open(ARGS.script) as f:
            script = json.load(f)
    conns = script.pop("connections", None)
    if conns:
        script.update(conns[min(n - 1, len(conns) - 1)])
    return script


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        with LOCK:
            CONN_COUNT[0] += 1
            self.n = CONN_COUNT[0]
        self.script = load_script(self.n)
        self.sock = self.request
        self.buf = b""
        self.batch = 0
        self.tls = False

    def slow(self, stage):
        t = self.script.get("slow", {}).get(stage)
        if t:
            time.sleep(t)

    def send(self, text):
        try:
            self.sock.sendall(text.encode("utf-8") + b"\r\n")
        except OSError:
            pass

    def readline(self):
        """A line without CRLF and its batch number, or (None, 0) at EOF."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None, 0
            self.batch += 1
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace"), self.batch

    def ehlo_lines(self):
        no = set(self.script.get("no", []))
        keys = ["PIPELINING", "SIZE %d" % self.script.get("size", 10000000), "8BITMIME",
                "SMTPUTF8", "ENHANCEDSTATUSCODES"]
        if (ARGS.cert or self.script.get("offer_starttls")) and not self.tls:
            keys.append("STARTTLS")
        if self.script.get("requiretls") and self.tls:
            keys.append("REQUIRETLS")
        auth = self.script.get("auth")
        if auth and (self.tls or auth.get("clear")):
            keys.append("AUTH " + auth.get("mechanisms", "PLAIN"))
        return [k for k in keys if k.split()[0] not in no]

    def handle(self):
        record({"conn": self.n, "event": "connect"})
        self.slow("greeting")
        greeting = self.script.get("greeting", "220 sink.test ESMTP smtpsink")
        self.send(greeting)
        if not greeting.startswith("220"):
            # A refusing server still answers QUIT.
            line, _ = self.readline()
            if line is not None:
                record({"conn": self.n, "event": "command", "line": line, "batch": self.batch,
                        "tls": self.tls})
                self.send("221 2.0.0 bye")
            return
        mail_from, params, rcpts = None, "", []
        messages = 0
        while True:
            line, batch = self.readline()
            if line is None:
                break
            record({"conn": self.n, "event": "command", "line": line, "batch": batch,
                    "tls": self.tls})
            verb = line.split(" ", 1)[0].upper()
            limit = self.script.get("messages_per_connection")
            if limit is not None and messages >= limit and verb != "QUIT":
                self.send("421 4.4.2 sink.test closing: %d messages on this connection" % messages)
                record({"conn": self.n, "event": "closed_by_server"})
                break
            if verb == "EHLO":
                self.slow("ehlo")
                if "ehlo" in self.script:
                    self.send(self.script["ehlo"])
                    continue
                lines = ["sink.test hello"] + self.ehlo_lines()
                for i, l in enumerate(lines):
                    self.send("250%s%s" % ("-" if i < len(lines) - 1 else " ", l))
            elif verb == "HELO":
                self.send("250 sink.test")
            elif verb == "STARTTLS":
                reply = self.script.get("starttls", "220 2.0.0 go ahead")
                self.send(reply)
                if reply.startswith("220") and ARGS.cert:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(ARGS.cert, ARGS.key)
                    try:
                        self.sock = ctx.wrap_socket(self.sock, server_side=True)
                    except (OSError, ssl.SSLError) as e:
                        record({"conn": self.n, "event": "tls_failed", "error": str(e)})
                        return
                    self.tls = True
                    self.buf = b""
                    record({"conn": self.n, "event": "tls"})
            elif verb == "MAIL":
                self.slow("mail")
                reply = self.script.get("mail", "250 2.1.0 ok")
                if reply.startswith("2"):
                    rest = line[10:] if line.upper().startswith("MAIL FROM:") else ""
                    addr, _, params = rest.partition(" ")
                    mail_from, rcpts = addr.strip("<>"), []
                self.send(reply)
            elif verb == "RCPT":
                self.slow("rcpt")
                addr = line[8:].split(" ")[0].strip("<>") if line.upper().startswith("RCPT TO:") else ""
                replies = self.script.get("rcpt", {})
                reply = replies.get(addr, replies.get("*", "250 2.1.5 ok"))
                if reply.startswith("2") and mail_from is not None:
                    rcpts.append(addr)
                self.send(reply)
            elif verb == "DATA":
                self.slow("data")
                reply = self.script.get("data", "354 go ahead")
                if mail_from is None or not rcpts:
                    reply = "554 5.5.1 no valid recipients" if reply.startswith("354") else reply
                self.send(reply)
                if not reply.startswith("354"):
                    continue
                data = []
                while True:
                    l, _ = self.readline()
                    if l is None:
                        record({"conn": self.n, "event": "close", "in_data": True})
                        return
                    if l == ".":
                        break
                    if self.script.get("drop_in_data"):
                        record({"conn": self.n, "event": "dropped"})
                        self.sock.close()
                        return
                    data.append(l[1:] if l.startswith(".") else l)
                record({"conn": self.n, "event": "message", "from": mail_from, "rcpts": rcpts,
                        "params": params, "tls": self.tls,
                        "data": "\r\n".join(data) + "\r\n"})
                self.slow("data_end")
                self.send(self.script.get("data_end", "250 2.0.0 queued"))
                mail_from, rcpts = None, []
                messages += 1
            elif verb == "AUTH":
                if not self.auth(line):
                    break
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.send("250 2.0.0 ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye")
                break
            else:
                self.send("500 5.5.2 unknown command")
        record({"conn": self.n, "event": "close"})


    def auth(self, line):
        """One AUTH exchange; False when the connection is to end."""
        a = self.script.get("auth") or {}
        words = line.split(" ")
        mech = words[1].upper() if len(words) > 1 else ""
        ir = words[2] if len(words) > 2 else ""
        rec = {"conn": self.n, "event": "auth", "mechanism": mech, "tls": self.tls}
        if ir in ("", "="):
            self.send("334 ")
            ir, _ = self.readline()
            if ir is None:
                return False
        try:
            raw = base64.b64decode(ir, validate=True)
        except ValueError:
            self.send("501 5.5.2 bad base64")
            return True
        if mech == "PLAIN":
            parts = raw.split(b"\0")
            user = parts[1].decode() if len(parts) == 3 else ""
            ok = len(parts) == 3 and user == a.get("user") and parts[2].decode() == a.get("password")
            rec.update(authcid=user, ok=ok)
            record(rec)
            self.send(a.get("reply") or ("235 2.7.0 ok" if ok else "535 5.7.8 bad credentials"))
            return True
        if mech not in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            self.send("504 5.5.4 unknown mechanism")
            return True
        hname = "sha256" if mech.endswith("256") else "sha1"
        first = raw.decode()
        bare = first.split(",", 2)[2]
        attrs = dict(kv.split("=", 1) for kv in bare.split(","))
        nonce = attrs.get("r", "") + "sinknonce"
        salt, it = b"sinksalt-sinksalt", 4096
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(), it)
        self.send("334 " + base64.b64encode(server_first.encode()).decode())
        l, _ = self.readline()
        if l is None:
            return False
        final = base64.b64decode(l).decode()
        without_proof, _, proof = final.rpartition(",p=")
        am = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        salted = hashlib.pbkdf2_hmac(hname, a.get("password", "").encode(), salt, it)
        ck = hmac.new(salted, b"Client Key", hname).digest()
        sig = hmac.new(hashlib.new(hname, ck).digest(), am, hname).digest()
        want = base64.b64encode(bytes(x ^ y for x, y in zip(ck, sig))).decode()
        ok = proof == want and attrs.get("n") == a.get("user")
        rec.update(authcid=attrs.get("n"), ok=ok)
        if not ok or a.get("reply"):
            record(rec)
            self.send(a.get("reply") or "535 5.7.8 bad credentials")
            return True
        if a.get("no_final"):
            record(rec)
            self.send("235 2.7.0 ok")
            return True
        ssig = hmac.new(hmac.new(salted, b"Server Key", hname).digest(), am, hname).digest()
        if a.get("bad_signature"):
            ssig = bytes([ssig[0] ^ 1]) + ssig[1:]
        self.send("334 " + base64.b64encode(b"v=" + base64.b64encode(ssig)).decode())
        l, _ = self.readline()
        if l is None:
            return False
        if l != "":
            rec["client_gave_up"] = True
            record(rec)
            if l.upper() == "QUIT":
                self.send("221 2.0.0 bye")
                return False
            self.send("501 5.7.0 cancelled")
            return True
        record(rec)
        self.send("235 2.7.0 ok")
        return True


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The queue opens up to 10 connections a runner at once: the default
    # listen backlog of 5 would leave some unaccepted.
    request_queue_size = 64


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--record", required=True)
    p.add_argument("--script")
    p.add_argument("--cert")
    p.add_argument("--key")
    ARGS = p.parse_args()
    srv = Server((ARGS.host, ARGS.port), Handler)
    print("ready %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
