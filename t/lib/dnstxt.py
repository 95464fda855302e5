"""
t/lib/dnstxt.py: runs a command against a DNS server that answers TXT
questions from a file, inside the network and mount namespace the
caller made for it (`unshare --net --mount`), so that a program that
reads /etc/resolv.conf (opendkim-testmsg) gets the test's records and
nothing leaves the machine.

    unshare --net --mount python3 t/lib/dnstxt.py RECORDS.json CMD [ARG...]

RECORDS.json maps a name ("sel._domainkey.example.org.") to the text of
its TXT record, cut into strings of at most 255 octets; other names get
NXDOMAIN.  In the namespace: loopback up, /etc/resolv.conf replaced by a
file naming 127.0.0.1, the server on 127.0.0.1:53 (UDP) in a thread.
The command reads this script's stdin; its exit status is this one's.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

records = json.load(open(sys.argv[1]))
records = {k.lower().rstrip(".") + ".": v for k, v in records.items()}
cmd = sys.argv[2:]

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
conf = tempfile.NamedTemporaryFile("w", suffix=".resolv.conf", delete=False)
conf.write("nameserver 127.0.0.1\noptions attempts:1\n")
conf.close()
subprocess.run(["mount", "--bind", conf.name, "/etc/resolv.conf"], check=True)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))


def answer(q):
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    pos, labels = 12, []
    while q[pos] != 0:
        n = q[pos]
        labels.append(q[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    qend = pos + 5
    qtype = struct.unpack("!H", q[pos + 1:pos + 3])[0]
    name = ".".join(labels).lower() + "."
    question = q[12:qend]
    rd = flags & 0x0100
    text = records.get(name)
    if text is None or qtype != 16:
        rcode = 0 if text is not None else 3
        return struct.pack("!HHHHHH", qid, 0x8080 | rd | rcode, 1, 0, 0, 0) + question
    data = text.encode("ascii")
    rdata = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                     for i in range(0, len(data), 255))
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(rdata)) + rdata
    return struct.pack("!HHHHHH", qid, 0x8080 | rd, 1, 1, 0, 0) + question + rr


def serve():
    while True:
        q, peer = sock.recvfrom(4096)
        try:
            sock.sendto(answer(q), peer)
        except (IndexError, struct.error):
            pass


threading.Thread(target=serve, daemon=True).start()
r = subprocess.run(cmd)
sys.exit(r.returncode)
