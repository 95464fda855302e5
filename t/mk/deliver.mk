# t/mk/deliver.mk: the delivery pipeline (core/store/deliver.c) and import/export
# (core/store/import.c).  test_deliver needs PostgreSQL: a fresh database
# from t/lib/pgtest.c.
TESTPROGS += t/unit/test_deliver_import
t_unit_test_deliver_import_SOURCES = t/unit/test_deliver_import.c
t_unit_test_deliver_import_CPPFLAGS = $(UNITCPP)
t_unit_test_deliver_import_CFLAGS = $(UNITCC)
t_unit_test_deliver_import_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_deliver
t_unit_test_deliver_SOURCES = t/unit/test_deliver.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_deliver_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_deliver_CFLAGS = $(UNITCC)
t_unit_test_deliver_LDADD = $(UNITLIBS)
