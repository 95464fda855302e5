#!/usr/bin/env python3
"""
t/integration/268-quota-warning.t: the quota module's warning message
(issue 11, items 2 and 3), with smtplib and imaplib:

- with the default warn_percent (90) nothing is sent below 90 % of the
  limit;
- the delivery that takes the account to 90 % or more brings one message
  "Your mailbox is N% full" into its Inbox (From the postmaster of the
  host name, Auto-Submitted: auto-generated, the usage and the limit in
  the text);
- more deliveries above the threshold send no second one, and neither do
  two deliveries that end at the same moment;
- once usage was seen below the threshold (after an expunge, at the next
  delivery), crossing it again sends a second warning;
- an account without a limit never gets one.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import quotatest  # noqa: E402

t = gt.Tap()
srv = quotatest.Server(t, quota="")
t.ok(srv.setup(), "migrate, domain, accounts alice and bob")
srv.start()


def warnings(who="alice", want=None):
    """The warnings in the account; with want, waits up to 10 s for that
    many (the warning is delivered after the reply to the delivery that
    crossed)."""
    deadline = time.time() + 10
    while True:
        n = count_warnings(who)
        if want is None or n >= want or time.time() > deadline:
            return n
        time.sleep(0.1)


def count_warnings(who):
    return int(srv.sql("SELECT count(*) FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
                       "WHERE a.name = '%s' AND m.subject LIKE 'Your mailbox is %%%% full'" % who))


LIMIT = 40960
t.ok(srv.gannet("config", "account", "quota", "alice", "40K")[0] == 0, "alice: 40K")
# Up to about 80 %.
for i in range(8):
    r = srv.send(["alice@example.com"], size=4000)
t.is_(r, {}, "eight messages of 4000 bytes")
pct = srv.used("alice") * 100 // LIMIT
t.ok(80 <= pct < 90, "usage %d %%" % pct)
t.is_(warnings(), 0, "below 90 %: no warning")
t.is_(srv.send(["alice@example.com"], size=4000), {}, "one more message")
t.ok(srv.used("alice") * 100 >= 90 * LIMIT, "usage past 90 %")
t.is_(warnings(want=1), 1, "one warning in the account")

m = srv.session("alice")
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", '"Your mailbox is"')
nums = data[0].split()
t.is_(len(nums), 1, "IMAP finds it in the Inbox")
typ, data = m.fetch(nums[0], "(BODY.PEEK[])")
text = data[0][1].decode()
t.ok(re.search(r"^From: Mail system <postmaster@mail\.test>\r$", text, re.M) is not None,
     "From: the postmaster of the host name")
t.ok("\r\nAuto-Submitted: auto-generated\r\n" in text, "Auto-Submitted: auto-generated")
t.ok(re.search(r"^Subject: Your mailbox is 9\d% full\r$", text, re.M) is not None, "Subject: 9x% full")
t.ok("of its limit of 40960 bytes" in text, "the text gives the limit")

t.is_(srv.send(["alice@example.com"], size=500), {}, "another delivery above the threshold")
time.sleep(0.5)
t.is_(warnings(), 1, "no second warning")

# Two deliveries that end together, both above the threshold.
results = []


def one():
    results.append(srv.send(["alice@example.com"], size=300))


threads = [threading.Thread(target=one) for _ in range(2)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.is_(results, [{}, {}], "two parallel deliveries")
time.sleep(0.5)
t.is_(warnings(), 1, "still one warning")

# Below the threshold again, then across it.
m.store("1:6", "+FLAGS", "(\\Deleted)")
m.expunge()
t.ok(srv.used("alice") * 100 < 90 * LIMIT, "after an expunge, usage below 90 %")
t.is_(srv.send(["alice@example.com"], size=500), {}, "a delivery that stays below")
t.is_(warnings(), 1, "no warning for it")
sent = []
while srv.used("alice") * 100 < 90 * LIMIT and len(sent) < 12:
    sent.append(srv.send(["alice@example.com"], size=2000))
t.ok(srv.used("alice") * 100 >= 90 * LIMIT and all(r == {} for r in sent),
     "across 90 %% again (%d messages)" % len(sent))
t.is_(warnings(want=2), 2, "a second warning")
m.logout()

for i in range(3):
    srv.send(["bob@example.com"], size=20000)
t.is_(warnings("bob"), 0, "bob, unlimited: never warned")
srv.g.stop()
t.done()
