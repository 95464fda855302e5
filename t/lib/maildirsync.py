"""
t/lib/maildirsync.py: what the tests of IMAP<->Maildir sync clients
(mbsync in 177, offlineimap in 180) share: reading the client's Maildir
and the server's mailboxes, and comparing them.

    sync = maildirsync.Sync(t, srv, root, client="mbsync")
    sync.files("INBOX")     # {server uid: (path, flags)} from the Maildir
    sync.server("INBOX")    # {uid: (message, flags)} over IMAP
    t.ok(sync.same("INBOX"), "...")

Both clients put a UID in a Maildir file's name (",U=n") and the standard
flag letters after ":2,", and keep LF line ends.  offlineimap's UID is the
server's; mbsync's is the Maildir's own, paired with the server's in its
state file (.mbsyncstate: lines "server-uid maildir-uid flags"), and
mbsync adds an X-TUID header field to each message it copies.
"""
import os
import re

FLAG_OF_LETTER = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                  "T": "\\Deleted"}


class Sync:
    def __init__(self, t, srv, root, client):
        """srv: what has session() (a logged-in imaplib session) and sql();
        client: "mbsync" or "offlineimap"."""
        self.t = t
        self.srv = srv
        self.root = root
        self.client = client
        self.tracking_field = b"X-TUID" if client == "mbsync" else None

    def _server_uid(self, box):
        """A function from the UID in a file's name to the server's UID
        (None: not paired)."""
        if self.client != "mbsync":
            return lambda uid: uid
        pairs = {}
        try:
            with open(os.path.join(self.root, box, ".mbsyncstate")) as f:
                _, _, entries = f.read().partition("\n\n")
        except OSError:
            entries = ""
        for line in entries.splitlines():
            words = line.split()
            if len(words) >= 2 and int(words[0]) > 0 and int(words[1]) > 0:
                pairs[int(words[1])] = int(words[0])
        return pairs.get

    def files(self, box):
        """{server uid: (path, set of IMAP flags)} of the Maildir folder
        box; messages the client has not paired with a server UID yet are
        left out."""
        server_uid = self._server_uid(box)
        out = {}
        for sub in ("new", "cur"):
            d = os.path.join(self.root, box, sub)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                mu = re.search(r",U=(\d+)", name)
                uid = server_uid(int(mu.group(1))) if mu else None
                if uid is None:
                    continue
                letters = name.rsplit(":2,", 1)[1] if ":2," in name else ""
                out[uid] = (os.path.join(d, name),
                            {FLAG_OF_LETTER[c] for c in letters if c in FLAG_OF_LETTER})
        return out

    def all_files(self):
        """Every file under the Maildir root (relative names)."""
        return sorted(os.path.relpath(os.path.join(dp, f), self.root)
                      for dp, _, fs in os.walk(self.root) for f in fs)

    def server(self, box):
        """{uid: (message, set of flags)} of a server mailbox, over IMAP."""
        c = self.srv.session()
        c.select(box, readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            uid = int(re.search(r"UID (\d+)", head).group(1))
            flags = set(re.search(r"FLAGS \(([^)]*)\)", head).group(1).split())
            flags.discard("\\Recent")
            out[uid] = (item[1], flags)
        c.logout()
        return out

    def server_state(self, box):
        """The mailbox's UIDNEXT, HIGHESTMODSEQ and message count, from the
        store."""
        return self.srv.sql("SELECT uidnext, highestmodseq, messages FROM gn_mailboxes "
                            "WHERE name = '%s'" % box)

    def normal(self, b):
        """A message as the client keeps it in the Maildir: LF line ends,
        without the client's own tracking field."""
        head, sep, body = b.replace(b"\r\n", b"\n").partition(b"\n\n")
        if self.tracking_field:
            head = re.sub(rb"(^|\n)" + re.escape(self.tracking_field) + rb": [^\n]*", b"", head)
        return head + sep + body

    def same(self, box):
        """The server's and the Maildir's messages of box agree: the same
        UIDs, the same contents (normal()), the same flags."""
        srvm, local = self.server(box), self.files(box)
        if sorted(srvm) != sorted(local):
            self.t.diag("%s: server UIDs %s, Maildir UIDs %s" % (box, sorted(srvm), sorted(local)))
            return False
        for uid, (body, flags) in srvm.items():
            with open(local[uid][0], "rb") as f:
                data = f.read()
            if self.normal(data) != self.normal(body) or flags != local[uid][1]:
                self.t.diag("%s UID %d: server %r %s, Maildir %r %s"
                            % (box, uid, body[:60], flags, data[:60], local[uid][1]))
                return False
        return True
