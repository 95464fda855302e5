# t/mk/db.mk: the database connection and migrations (core/db/db.c,
# core/db/migrate.c).  test_db uses a throwaway cluster (t/lib/pgtmp) unless
# GANNET_TEST_CONNINFO or GANNET_TEST_PGHOST/GANNET_TEST_PGPORT name one.
TESTPROGS += t/unit/test_db
t_unit_test_db_SOURCES = t/unit/test_db.c
t_unit_test_db_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_db_CFLAGS = $(UNITCC)
t_unit_test_db_LDADD = $(UNITLIBS)

