/*
 * t/lib/pgtest.h: a fresh PostgreSQL database for a C unit test.
 *
 * The cluster: GANNET_TEST_CONNINFO (key=value conninfo) if set, else
 * GANNET_TEST_PGHOST/GANNET_TEST_PGPORT (the cluster of `contrib/quickstart
 * check`), else one made for this test with t/lib/pgtmp and removed at exit.
 * Each run works in a database of its own, dropped at exit.  Add
 * t/lib/pgtest.c to the test's SOURCES and define GN_TEST_SRCDIR (see
 * t/mk/store.mk).
 */
#ifndef GANNET_T_PGTEST_H
#define GANNET_T_PGTEST_H

#include <stdbool.h>

/* Creates the database (name prefix: prefix); false with a diag() on
 * failure. */
bool pgtest_setup(const char *prefix);
/* The conninfo of the fresh database (valid after pgtest_setup()). */
const char *pgtest_conninfo(void);
/* The name of the fresh database (valid after pgtest_setup()). */
const char *pgtest_dbname(void);
/* Whether the cluster is our own (t/lib/pgtmp), which we may stop. */
bool pgtest_own_cluster(void);

#endif
