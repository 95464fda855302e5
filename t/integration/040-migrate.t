#!/usr/bin/env python3
"""
t/integration/040-migrate.t: `gannet migrate` on a fresh database applies
the core's migrations and says so; a second run applies nothing; a database
whose recorded schema is newer than this gannet knows makes `gannet migrate`
and `gannet serve` refuse with a clear message and exit 1.  Several nodes
migrating one database at once apply each migration once.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()

cl = gt.cluster()
db = cl.create_db("migrate")
d = gt.tmpdir()
conf = os.path.join(d, "gannet.conf")
with open(conf, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db)))


def migrate():
    r = gt.run_gannet(["-c", conf, "migrate"])
    if r.returncode != 0:
        t.diag("stdout: " + r.stdout)
        t.diag("stderr: " + r.stderr)
    return r


r = migrate()
t.is_(r.returncode, 0, "migrate on a fresh database exits 0")
t.like(r.stdout, "applied core 1 001_core\n", "it prints each migration it applies")
t.is_(cl.psql("SELECT count(*) FROM gn_schema_migrations WHERE module = 'core'"
              " AND version = 1 AND name = '001_core'", db), "1",
      "the migration is recorded in gn_schema_migrations")
install_id = cl.psql("SELECT value FROM gn_meta WHERE key = 'installation_id'", db)
t.is_(len(install_id), 36, "001_core created gn_meta with an installation id")
applied = cl.psql("SELECT count(*) FROM gn_schema_migrations", db)

r = migrate()
t.is_(r.returncode, 0, "migrate again exits 0")
t.ok("applied core" not in r.stdout, "and applies nothing")
t.is_(cl.psql("SELECT count(*) FROM gn_schema_migrations", db), applied,
      "nothing new is recorded")
t.is_(cl.psql("SELECT value FROM gn_meta WHERE key = 'installation_id'", db), install_id,
      "the installation id stays the same")

# A newer gannet migrated this database before.
cl.psql("INSERT INTO gn_schema_migrations (module, version, name)"
        " VALUES ('core', 999, '999_future')", db)
r = gt.run_gannet(["-c", conf, "migrate"])
t.is_(r.returncode, 1, "migrate refuses a database newer than it knows (exit 1)")
t.like(r.stderr, "database schema of core is at version 999, this gannet knows up to ",
       "saying which schema is newer")
t.like(r.stderr, "upgrade gannet", "and what to do")

# Two nodes migrating one fresh database at the same moment: each migration
# is applied once (the advisory lock), and both succeed.
db2 = cl.create_db("migrate2")
conf2 = os.path.join(d, "gannet2.conf")
with open(conf2, "w") as f:
    f.write(gt.base_conf().replace("{dir}", d).replace("{db}", cl.conninfo(db2)))
procs = [subprocess.Popen([gt.GANNET, "-c", conf2, "migrate"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) for _ in range(4)]
outs = [p.communicate(timeout=60) for p in procs]
t.is_([p.returncode for p in procs], [0, 0, 0, 0], "four concurrent migrate runs all succeed")
t.is_(sum(o[0].count("applied core 1 001_core") for o in outs), 1,
      "and apply the migration exactly once between them")
t.is_(cl.psql("SELECT count(*) FROM gn_meta", db2), "1", "one installation id")

try:
    r = gt.run_gannet(["-c", conf, "serve", "--foreground"], timeout=60)
    rc, out = r.returncode, r.stdout + r.stderr
except subprocess.TimeoutExpired as e:
    rc, out = None, "%s" % (e.stderr or "")
t.is_(rc, 1, "serve refuses it too (exit 1)")
t.like(out, "database schema of core is at version 999, this gannet knows up to ",
       "saying why")
t.is_(cl.psql("SELECT count(*) FROM gn_schema_migrations WHERE module = 'core'", db),
      str(int(applied) + 1), "and changes nothing")

t.done()
