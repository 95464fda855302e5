#!/usr/bin/env python3
"""
t/lib/policyserver.py: a loopback HTTPS server for tests of gannet's HTTPS
client and MTA-STS policy fetches.  Plain Python (http.server, ssl); no
Debian module needed.

    python3 t/lib/policyserver.py --port PORT --cert PEM --key KEY
                                  --script FILE --record FILE

It prints "ready PORT" on stdout once it listens, and runs until killed.
The script (JSON, read at each request) maps the request's Host (without
the port) to what to answer; "*" is for any other host.  Keys, each
optional:

  {"status": 200, "content_type": "text/plain", "body": "version: STSv1\\n...",
   "chunked": false,        send the body in chunks of 7 bytes
   "no_length": false,      neither Content-Length nor chunked: the body
                            ends with the connection
   "repeat": 1,             the body this many times
   "delay": 0,              seconds before answering
   "location": "https://..."}   a Location header (redirects)

The record file gets one JSON object a line a request:
  {"method": "GET", "path": "/.well-known/mta-sts.txt", "host": "...",
   "headers": {...}, "body": "..."}
"""
import argparse
import http.server
import json
import socketserver
import ssl
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--script", required=True)
ap.add_argument("--record", required=True)
ARGS = ap.parse_args()


def record(obj):
    with open(ARGS.record, "a") as f:
        f.write(json.dumps(obj) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        length = int(self.headers.get("Content-Length") or 0)
        body_in = self.rfile.read(length).decode("latin-1") if length else ""
        record({"method": self.command, "path": self.path, "host": host,
                "headers": dict(self.headers.items()), "body": body_in})
        try:
            with open(ARGS.script) as f:
                script = json.load(f)
        except (OSError, ValueError):
            script = {}
        s = script.get(host, script.get("*", {"status": 404, "body": "not found\n"}))
        time.sleep(s.get("delay", 0))
        body = (s.get("body", "") * s.get("repeat", 1)).encode()
        self.send_response(s.get("status", 200))
        self.send_header("Content-Type", s.get("content_type", "text/plain"))
        if "location" in s:
            self.send_header("Location", s["location"])
        self.send_header("Connection", "close")
        if s.get("chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif s.get("no_length"):
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    do_GET = answer
    do_POST = answer


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that stops reading (a body over its limit) is no error here

    def get_request(self):
        sock, addr = self.socket.accept()
        return sock, addr

    def finish_request(self, request, client_address):
        # The handshake in the request's thread, so a client that stalls
        # does not block the others.
        try:
            request = CTX.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        self.RequestHandlerClass(request, client_address, self)


CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
CTX.load_cert_chain(ARGS.cert, ARGS.key)
srv = Server((ARGS.host, ARGS.port), Handler)
print("ready %d" % srv.server_address[1], flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
