# t/mk/queue.mk: the outbound queue (core/queue/): adding, hold rules,
# claims from two processes, retries, DSNs, retirement, against a real
# PostgreSQL (t/lib/pgtest.c) with a fake transport.

TESTPROGS += t/unit/test_queue
t_unit_test_queue_SOURCES = t/unit/test_queue.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_queue_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_queue_CFLAGS = $(UNITCC)
t_unit_test_queue_LDADD = $(UNITLIBS)

# The delivery-status part of a DSN that came back (core/queue/dsn-read.c).
TESTPROGS += t/unit/test_dsn_read
t_unit_test_dsn_read_SOURCES = t/unit/test_dsn_read.c
t_unit_test_dsn_read_CPPFLAGS = $(UNITCPP)
t_unit_test_dsn_read_CFLAGS = $(UNITCC)
t_unit_test_dsn_read_LDADD = $(UNITLIBS)

# The queue's side of suppression.v1 with a fake provider (core/queue/suppress.c).
TESTPROGS += t/unit/test_queue_suppress
t_unit_test_queue_suppress_SOURCES = t/unit/test_queue_suppress.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_queue_suppress_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_queue_suppress_CFLAGS = $(UNITCC)
t_unit_test_queue_suppress_LDADD = $(UNITLIBS)

# DANE matching (core/queue/dane.c) against certificates made by GnuTLS.
TESTPROGS += t/unit/test_dane
t_unit_test_dane_SOURCES = t/unit/test_dane.c
t_unit_test_dane_CPPFLAGS = $(UNITCPP)
t_unit_test_dane_CFLAGS = $(UNITCC)
t_unit_test_dane_LDADD = $(UNITLIBS)
