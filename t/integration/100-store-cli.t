#!/usr/bin/env python3
"""
t/integration/100-store-cli.t: `gannet config domain|account|address ...`
end to end against a real PostgreSQL: domains added, listed and removed
(refused while in use), accounts added with their first address and the
standard mailboxes, listed, disabled with a message and enabled, removed;
addresses added and removed.  Exit codes are 0 done, 1 failed operation,
2 bad usage, and every error names the bad argument.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

cl = gt.cluster()
db = cl.create_db("storecli")
d = gt.tmpdir()
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def g(*args):
    return gt.run_gannet(["-c", conf] + list(args))


def sql(q):
    return cl.psql(q, db)


r = g("migrate")
t.is_(r.returncode, 0, "migrate")

# domains
r = g("config", "domain", "add", "example.com", "--catchall-separators", "+")
t.is_(r.returncode, 0, "domain add with catchall separators")
r = g("config", "domain", "add", "Bücher.example")
t.is_(r.returncode, 0, "a Unicode domain is added")
t.is_(sql("SELECT name || ' ' || name_utf8 FROM gn_domains WHERE name LIKE 'xn--%'"),
      "xn--bcher-kva.example bücher.example", "stored as A-labels with the U-labels")
r = g("config", "domain", "add", "xn--bcher-kva.example")
t.is_(r.returncode, 1, "the same domain again fails with exit 1")
t.like(r.stderr, "gannet: domain exists: bücher.example", "saying it exists")
r = g("config", "domain", "add", "bad..example")
t.is_(r.returncode, 1, "an invalid domain fails")
t.like(r.stderr, '"bad..example"', "the error names it")
r = g("config", "domain", "add")
t.is_(r.returncode, 2, "domain add without a domain is bad usage")
t.like(r.stderr, "usage: gannet config domain add DOMAIN", "with the usage line")
r = g("config", "domain", "add", "x.example", "--catchall-separators")
t.is_(r.returncode, 2, "an option without its value is bad usage")
r = g("config", "domain", "add", "x.example", "--frobnicate")
t.is_(r.returncode, 2, "an unknown option is bad usage")
t.like(r.stderr, "--frobnicate", "named")
r = g("config", "domain", "list")
t.is_(r.returncode, 0, "domain list")
t.is_(r.stdout, "example.com catchall-separators=+\nxn--bcher-kva.example (bücher.example)\n",
      "lists both, sorted, with U-labels and separators")

# accounts
r = g("config", "account", "add", "alice", "alice@example.com", "Alice", "Liddell")
t.is_(r.returncode, 0, "account add with a full name")
t.is_(sql("SELECT string_agg(m.name, ',' ORDER BY m.name) FROM gn_mailboxes m JOIN gn_accounts a "
          "ON a.id = m.account_id WHERE a.name = 'alice'"),
      "Archive,Drafts,Inbox,Junk,Sent,Trash", "with Inbox and the special-use mailboxes")
r = g("config", "account", "add", "alice", "other@example.com")
t.is_(r.returncode, 1, "a duplicate account fails")
t.like(r.stderr, "account exists: alice", "saying so")
r = g("config", "account", "add", "carol", "carol@nowhere.example")
t.is_(r.returncode, 1, "an address in an unknown domain fails")
t.like(r.stderr, "unknown domain: nowhere.example", "naming the domain")
t.is_(sql("SELECT count(*) FROM gn_accounts WHERE name = 'carol'"), "0", "and leaves no account")
r = g("config", "account", "add", "carol", "not-an-address")
t.is_(r.returncode, 1, "an invalid address fails")
t.like(r.stderr, 'invalid address "not-an-address"', "naming it")
r = g("config", "account", "add", "carol", "Alice@example.com")
t.is_(r.returncode, 1, "an address in use fails")
t.like(r.stderr, "address exists: Alice@example.com", "naming it")
r = g("config", "account", "add", "carol")
t.is_(r.returncode, 2, "account add without an address is bad usage")
r = g("config", "account", "add", "bob", "bob@bücher.example")
t.is_(r.returncode, 0, "second account, in the Unicode domain")

# addresses
r = g("config", "address", "add", "Élise@xn--bcher-kva.example", "alice")
t.is_(r.returncode, 0, "address add")
r = g("config", "address", "add", "e\u0301lise@BÜCHER.example", "bob")
t.is_(r.returncode, 1, "the same address in NFD and Unicode fails")
t.like(r.stderr, "address exists: élise@bücher.example", "as existing")
r = g("config", "address", "add", "x@example.com", "nobody")
t.is_(r.returncode, 1, "address for an unknown account fails")
t.like(r.stderr, "unknown account: nobody", "naming the account")
r = g("config", "address", "add", "x@nowhere.example", "alice")
t.is_(r.returncode, 1, "address in an unknown domain fails")
t.like(r.stderr, "unknown domain: nowhere.example", "naming the domain")
r = g("config", "address", "add", "x@example.com")
t.is_(r.returncode, 2, "address add without an account is bad usage")

r = g("config", "account", "list")
t.is_(r.returncode, 0, "account list")
t.is_(r.stdout,
      'alice\talice@example.com, Élise@bücher.example\t"Alice Liddell"\n'
      "bob\tbob@bücher.example\n",
      "lists accounts with their addresses and full names")

r = g("config", "account", "disable", "bob", "moved", "away")
t.is_(r.returncode, 0, "disable with a message")
t.like(g("config", "account", "list").stdout, "bob\tbob@bücher.example\tdisabled: moved away",
       "the list shows it")
t.is_(sql("SELECT login_disabled FROM gn_accounts WHERE name = 'bob'"), "moved away", "stored")
r = g("config", "account", "enable", "bob")
t.is_(r.returncode, 0, "enable")
t.is_(sql("SELECT login_disabled IS NULL FROM gn_accounts WHERE name = 'bob'"), "t", "enabled")
r = g("config", "account", "disable", "nobody")
t.is_(r.returncode, 1, "disabling an unknown account fails")
t.like(r.stderr, "unknown account: nobody", "naming it")
r = g("config", "account", "enable")
t.is_(r.returncode, 2, "enable without an account is bad usage")

r = g("config", "address", "rm", "bob@bücher.example")
t.is_(r.returncode, 1, "removing an account's last address fails")
t.like(r.stderr, "last", "saying why")
r = g("config", "address", "rm", "ÉLISE@bücher.example")
t.is_(r.returncode, 0, "address rm (any case)")
r = g("config", "address", "rm", "élise@bücher.example")
t.is_(r.returncode, 1, "removing it again fails")
t.like(r.stderr, "unknown address: élise@bücher.example", "naming it")
r = g("config", "address", "rm", "@@")
t.is_(r.returncode, 1, "removing an invalid address fails")
t.like(r.stderr, 'invalid address "@@"', "naming it")

r = g("config", "domain", "rm", "bücher.example")
t.is_(r.returncode, 1, "a domain in use cannot be removed")
t.like(r.stderr, "used by 1 address", "saying why")

r = g("config", "account", "rm", "bob")
t.is_(r.returncode, 0, "account rm")
t.is_(sql("SELECT count(*) FROM gn_accounts WHERE name = 'bob'"), "0", "the account is gone")
t.is_(sql("SELECT count(*) FROM gn_addresses a JOIN gn_domains d ON d.id = a.domain_id "
          "WHERE d.name = 'xn--bcher-kva.example'"), "0", "with its address")
r = g("config", "account", "rm", "bob")
t.is_(r.returncode, 1, "removing it again fails")
t.like(r.stderr, "unknown account: bob", "naming it")
r = g("config", "account", "rm")
t.is_(r.returncode, 2, "account rm without an account is bad usage")

r = g("config", "domain", "rm", "xn--bcher-kva.example")
t.is_(r.returncode, 0, "the unused domain is removed")
r = g("config", "domain", "rm", "bücher.example")
t.is_(r.returncode, 1, "removing it again fails")
t.like(r.stderr, "unknown domain: bücher.example", "naming it")
t.is_(g("config", "domain", "list").stdout, "example.com catchall-separators=+\n", "one domain left")
r = g("config", "domain", "list", "extra")
t.is_(r.returncode, 2, "domain list with an argument is bad usage")

t.done()
