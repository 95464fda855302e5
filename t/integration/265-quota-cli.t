#!/usr/bin/env python3
"""
t/integration/265-quota-cli.t: `gannet config account quota` and the quota
module's settings (issue 11, items 2 and 3):

- without a limit of its own an account shows the module's default_limit,
  with its usage; SIZE with K, M, G (powers of 1024) or bytes sets the
  account's own, "unlimited" and a negative number make it unlimited,
  "default" goes back to default_limit;
- a bad size is bad usage (exit 2) and changes nothing, an unknown account
  fails (exit 1);
- a bad default_limit in the config is an error naming the setting;
- the limit the CLI sets is what a delivery then meets (452 4.2.2), and
  "unlimited" lets the same message in.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402
import quotatest  # noqa: E402

t = gt.Tap()
srv = quotatest.Server(t, quota='default_limit = "2M"; warn_percent = 0;')
t.ok(srv.setup(), "migrate, domain, accounts alice and bob")


def quota(*args):
    return srv.gannet("config", "account", "quota", *args)


t.is_(quota("alice"), (0, "limit 2097152 (2M, default)\nused 0\n", ""), "the default applies, nothing used")
t.is_(quota("alice", "10K")[:2], (0, "limit 10240 (10K, account)\nused 0\n"), "10K: the account's own")
t.is_(quota("alice", "3M")[1], "limit 3145728 (3M, account)\nused 0\n", "3M")
t.is_(quota("alice", "1G")[1], "limit 1073741824 (1G, account)\nused 0\n", "1G")
t.is_(quota("alice", "12345")[1], "limit 12345 (12345, account)\nused 0\n", "bytes")
t.is_(quota("alice", "unlimited")[1], "limit unlimited (account)\nused 0\n", "unlimited")
t.is_(quota("alice", "-5")[1], "limit unlimited (account)\nused 0\n", "a negative number: unlimited")
t.is_(quota("alice", "default")[1], "limit 2097152 (2M, default)\nused 0\n", "default: back to default_limit")
t.is_(srv.sql("SELECT count(*) FROM gn_quota_accounts WHERE limit_bytes IS NOT NULL"), "0",
      "default leaves no limit of the account's own")
rc, out, err = quota("alice", "12X")
t.is_((rc, out), (2, ""), "a bad size: exit 2")
t.like(err, "K, M or G", "the error says what a size is")
rc, out, err = quota("alice", "99999999999G")
t.is_(rc, 2, "a size past 2^62 bytes: exit 2")
t.is_(quota("alice")[1], "limit 2097152 (2M, default)\nused 0\n", "and nothing changed")
rc, out, err = quota("nobody", "1M")
t.is_(rc, 1, "an unknown account: exit 1")
t.like(err, "unknown account", "named as such")
t.is_(quota()[0], 2, "no account: bad usage")

# ---- what the CLI set, deliveries meet ----
srv.start()
t.is_(quota("bob", "4K")[0], 0, "bob: 4K")
r = srv.send(["bob@example.com"], size=5000)
t.is_(getattr(r, "smtp_code", None), 452, "a 5000-byte message to bob: 452")
t.is_(srv.count("bob"), 0, "nothing stored")
t.is_(quota("bob", "unlimited")[0], 0, "bob: unlimited")
t.is_(srv.send(["bob@example.com"], size=5000), {}, "the same message now goes in")
rc, out, _ = quota("bob")
t.ok(rc == 0 and out.startswith("limit unlimited (account)\nused ") and int(out.split()[-1]) > 5000,
     "the usage shown counts the message with its prefix (%r)" % out)
srv.g.stop()

# ---- a bad setting ----
d = gt.tmpdir()
conf = os.path.join(d, "bad.conf")
with open(srv.g.conf_path) as f:
    text = f.read().replace('default_limit = "2M"', 'default_limit = "lots"')
with open(conf, "w") as f:
    f.write(text)
r = gt.run_gannet(["-c", conf, "config", "account", "quota", "alice"])
t.ok(r.returncode != 0 and "default_limit" in r.stderr,
     "default_limit = \"lots\": refused, naming the setting (%s)" % r.stderr.strip()[:200])
t.done()
