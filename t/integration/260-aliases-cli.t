#!/usr/bin/env python3
"""
t/integration/260-aliases-cli.t: `gannet config alias ...` of the aliases
module (issue 11, item 1; mox.md 5), and its refusals:

- add (with flags), list, print, update (flags set and cleared), addaddr,
  rmaddr, rm; the module's migration applied;
- refused, each with a message that says why and nothing changed: no
  member (usage), an unknown domain, a member that is no account address,
  a member in catchall form, a member that is an alias, a member twice, an
  alias that is an account's address, an alias that exists, a localpart
  with the domain's catchall separator, removing an alias's last member
  (rmaddr), an account address that is an alias's last member (`config
  address rm`) and the account that has it (`config account rm`), an
  address added under an alias's name, a domain that has aliases;
- removing an address that is one member of several leaves the alias;
- without the module in the config the commands do not exist.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

moddir = gt.module_dir()
so = os.path.join(gt.BUILDDIR, "modules", "aliases", ".libs", "aliases.so")
if not os.path.exists(so):
    t.ok(False, "the aliases module is built (%s)" % so)
    t.done()
shutil.copy(so, os.path.join(moddir, "aliases.so"))
os.chmod(os.path.join(moddir, "aliases.so"), 0o755)

d = gt.tmpdir()
db = gt.cluster().create_db()
conf = os.path.join(d, "gannet.conf")
conf_off = os.path.join(d, "gannet-off.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf(modules='directory = "%s"; load = [ "aliases" ];' % moddir)
            .replace("{db}", gt.cluster().conninfo(db)))
with open(conf_off, "w") as f:
    f.write(gt.base_conf().replace("{db}", gt.cluster().conninfo(db)))


def gannet(*args, c=conf):
    return gt.run_gannet(["-c", c] + list(args))


def ok(name, *args):
    r = gannet(*args)
    t.is_(r.returncode, 0, name)
    if r.returncode != 0:
        t.diag(r.stdout + r.stderr)
    return r


def refused(name, want, *args, code=1):
    r = gannet(*args)
    t.is_(r.returncode, code, name + ": exit %d" % code)
    t.like(r.stderr, want, name + ": says why")
    return r


def sql(q):
    return gt.cluster().psql(q, db=db)


for a in [("migrate",), ("config", "domain", "add", "example.com", "--catchall-separators", "+"),
          ("config", "domain", "add", "other.example"),
          ("config", "account", "add", "alice", "alice@example.com"),
          ("config", "address", "add", "alice2@example.com", "alice"),
          ("config", "account", "add", "bob", "bob@example.com"),
          ("config", "address", "add", "bob@other.example", "bob"),
          ("config", "account", "add", "carol", "carol@example.com"),
          ("config", "account", "add", "dave", "dave@other.example")]:
    ok("setup: " + " ".join(a), *a)
t.is_(sql("SELECT max(version) FROM gn_schema_migrations WHERE module = 'aliases'"), "1",
      "the module's migration is applied")

ok("add an alias with two members and AllowMsgFrom",
   "config", "alias", "add", "team@example.com", "alice@example.com", "bob@other.example",
   "--allow-msg-from")
ok("add a public alias", "config", "alias", "add", "--post-public", "Public@Example.com",
   "carol@example.com")
r = ok("list", "config", "alias", "list")
t.is_(r.stdout,
      "Public@example.com members=1 post-public=yes list-members=no allow-msg-from=no\n"
      "team@example.com members=2 post-public=no list-members=no allow-msg-from=yes\n",
      "list shows both, sorted, with member counts and flags")
r = ok("print", "config", "alias", "print", "TEAM@example.com")
t.is_(r.stdout, "address: team@example.com\npost-public: no\nlist-members: no\n"
      "allow-msg-from: yes\nmembers:\n  alice@example.com (account alice)\n"
      "  bob@other.example (account bob)\n", "print shows flags and members with their accounts")
refused("print of a tagged form", "unknown alias", "config", "alias", "print", "team+x@example.com")

ok("update sets and clears flags", "config", "alias", "update", "team@example.com",
   "--list-members", "--no-allow-msg-from", "--post-public")
t.is_(sql("SELECT post_public::text || list_members::text || allow_msg_from::text FROM gn_aliases "
          "WHERE localpart_key = 'team'"), "truetruefalse", "the flags as updated")
ok("update clears one flag, the others stay", "config", "alias", "update", "team@example.com",
   "--no-post-public")
t.is_(sql("SELECT post_public::text || list_members::text || allow_msg_from::text FROM gn_aliases "
          "WHERE localpart_key = 'team'"), "falsetruefalse", "only post_public changed")
refused("update without a flag", "usage", "config", "alias", "update", "team@example.com", code=2)
refused("update with an unknown option", "unknown option --frobnicate", "config", "alias",
        "update", "team@example.com", "--frobnicate", code=2)

ok("addaddr", "config", "alias", "addaddr", "team@example.com", "carol@example.com")
t.is_(sql("SELECT count(*) FROM gn_alias_members"), "4", "four member rows")
ok("rmaddr", "config", "alias", "rmaddr", "team@example.com", "carol@example.com")
t.is_(sql("SELECT count(*) FROM gn_alias_members"), "3", "three member rows")

# ---- refusals ----
before = sql("SELECT count(*) FROM gn_aliases") + "/" + sql("SELECT count(*) FROM gn_alias_members")
refused("add without a member", "usage", "config", "alias", "add", "x@example.com", code=2)
refused("add with only flags", "usage", "config", "alias", "add", "x@example.com",
        "--post-public", code=2)
refused("an unknown domain", "unknown domain: nowhere.example", "config", "alias", "add",
        "x@nowhere.example", "alice@example.com")
refused("a member that is no address", "nobody@example.com is no address of an account",
        "config", "alias", "add", "x@example.com", "nobody@example.com")
refused("a member in catchall form", "alice+tag@example.com is no address of an account",
        "config", "alias", "add", "x@example.com", "alice+tag@example.com")
refused("a member that is an alias", "team@example.com is an alias", "config", "alias", "add",
        "x@example.com", "team@example.com")
refused("a member twice", "Alice@example.com is a member of x@example.com already", "config",
        "alias", "add", "x@example.com", "alice@example.com", "Alice@example.com")
refused("an alias that is an account's address", "alice2@example.com is an address of an account",
        "config", "alias", "add", "alice2@example.com", "bob@example.com")
refused("an alias that exists", "alias exists: Team@example.com", "config", "alias", "add",
        "Team@example.com", "bob@example.com")
refused("a localpart with the catchall separator", "catchall separator", "config", "alias",
        "add", "x+y@example.com", "bob@example.com")
refused("addaddr of a member already there", "bob@other.example is a member of team@example.com "
        "already", "config", "alias", "addaddr", "team@example.com", "bob@other.example")
refused("rmaddr of a non-member", "carol@example.com is not a member of team@example.com",
        "config", "alias", "rmaddr", "team@example.com", "carol@example.com")
refused("rmaddr of every member", "is the last member of team@example.com", "config", "alias",
        "rmaddr", "team@example.com", "alice@example.com", "bob@other.example")
refused("rmaddr of the last member", "carol@example.com is the last member of Public@example.com",
        "config", "alias", "rmaddr", "Public@example.com", "carol@example.com")
refused("rm of an unknown alias", "unknown alias: nope@example.com", "config", "alias", "rm",
        "nope@example.com")
t.is_(sql("SELECT count(*) FROM gn_aliases") + "/" + sql("SELECT count(*) FROM gn_alias_members"),
      before, "no refusal changed anything")

# ---- where the core removes and adds addresses ----
ok("carol gets a second address", "config", "address", "add", "carol2@example.com", "carol")
refused("address rm of an alias's last member (carol has another address)",
        "carol@example.com is the last member of alias Public@example.com", "config", "address", "rm",
        "carol@example.com")
refused("account rm of the account with an alias's last member",
        "is the last member of alias Public@example.com", "config", "account", "rm", "carol")
t.is_(sql("SELECT count(*) FROM gn_accounts WHERE name = 'carol'"), "1", "carol is still there")
refused("an address under an alias's name", "an alias has this address", "config", "address",
        "add", "TEAM@example.com", "carol")
ok("a domain with only an alias", "config", "domain", "add", "lists.example")
ok("its alias", "config", "alias", "add", "all@lists.example", "alice@example.com")
refused("domain rm of a domain with aliases", "the domain has aliases", "config", "domain", "rm",
        "lists.example")
ok("address rm of one member of two", "config", "address", "rm", "bob@other.example")
t.is_(sql("SELECT string_agg(m.localpart_key, ',') FROM gn_alias_members m JOIN gn_aliases a "
          "ON a.id = m.alias_id WHERE a.localpart_key = 'team'"), "alice",
      "the alias keeps its other member")

ok("rm", "config", "alias", "rm", "team@example.com")
t.is_(sql("SELECT count(*) FROM gn_aliases WHERE localpart_key = 'team'"), "0", "team is gone")
t.is_(sql("SELECT count(*) FROM gn_alias_members m JOIN gn_aliases a ON a.id = m.alias_id "
          "JOIN gn_domains d ON d.id = a.domain_id WHERE d.name = 'example.com'"), "1",
      "and its members with it")
t.is_(sql("SELECT count(*) FROM gn_alias_members"), "2", "the other aliases keep theirs")
ok("the name is free for an address now", "config", "address", "add", "team@example.com", "carol")

# ---- without the module ----
r = gannet("config", "alias", "list", c=conf_off)
t.ok(r.returncode != 0, "without the module: `config alias list` fails")
t.like(r.stderr, 'no command "config alias list"', "without the module: the command is unknown")
ok("without the module other commands run", "config", "account", "list")

t.done()
