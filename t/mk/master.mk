# t/mk/master.mk: tests of core/runtime/master.c (processes and privileges).
# test_master includes core/runtime/master.c to test its static parts.
TESTPROGS += t/unit/test_master
t_unit_test_master_SOURCES = t/unit/test_master.c
t_unit_test_master_CPPFLAGS = $(UNITCPP)
t_unit_test_master_CFLAGS = $(UNITCC)
t_unit_test_master_LDADD = $(UNITLIBS)

# A module for the process tests (t/integration/05x-*.t): a line protocol
# that shows how sessions end on a graceful stop, and a start that can fail.
check_LTLIBRARIES += t/modules/mastertest/mastertest.la
t_modules_mastertest_mastertest_la_SOURCES = t/modules/mastertest/mastertest.c
t_modules_mastertest_mastertest_la_CFLAGS = $(GN_MODCC)
t_modules_mastertest_mastertest_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_mastertest_mastertest_la_LIBADD = core/libgannet.la
