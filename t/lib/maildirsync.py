"""
t/lib/maildirsync.py: what the tests of IMAP<->Maildir sync clients
(mbsync in 177, offlineimap in 180) share: reading the client's Maildir
and the server's mailboxes, and comparing them.

    sync = maildirsync.Sync(t, srv, root, tracking_field=b"X-TUID")
    sync.files("INBOX")     # {uid: (path, flags)} from the Maildir
    sync.server("INBOX")    # {uid: (message, flags)} over IMAP
    t.ok(sync.same("INBOX"), "...")

Both clients name a Maildir file with the server's UID (",U=n") and the
standard flag letters after ":2,", keep LF line ends, and may add a header
field of their own to messages they copy (tracking_field).
"""
import os
import re

FLAG_OF_LETTER = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                  "T": "\\Deleted"}


class Sync:
    def __init__(self, t, srv, root, tracking_field=None):
        self.t = t
        self.srv = srv
        self.root = root
        self.tracking_field = tracking_field

    def files(self, box):
        """{uid: (path, set of IMAP flags)} of the Maildir folder box;
        messages the client has not paired with a server UID yet are left
        out."""
        out = {}
        for sub in ("new", "cur"):
            d = os.path.join(self.root, box, sub)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                mu = re.search(r",U=(\d+)", name)
                if not mu:
                    continue
                letters = name.rsplit(":2,", 1)[1] if ":2," in name else ""
                out[int(mu.group(1))] = (os.path.join(d, name),
                                         {FLAG_OF_LETTER[c] for c in letters if c in FLAG_OF_LETTER})
        return out

    def all_files(self, skip=()):
        """Every file under the Maildir root (relative names), but those
        under the directories named in skip (a client's own state)."""
        return sorted(os.path.relpath(os.path.join(dp, f), self.root)
                      for dp, _, fs in os.walk(self.root) for f in fs
                      if not any(part in skip for part in os.path.relpath(dp, self.root).split(os.sep)))

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
