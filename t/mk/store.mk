# t/mk/store.mk: the store (core/store*.c): domains, accounts, addresses,
# mailboxes, messages and blobs, against a real PostgreSQL (t/lib/pgtest.c).

TESTPROGS += t/unit/test_store
t_unit_test_store_SOURCES = t/unit/test_store.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_store_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_store_CFLAGS = $(UNITCC)
t_unit_test_store_LDADD = $(UNITLIBS)

# Deliveries stored as pending and settled: several processes at once.
TESTPROGS += t/unit/test_settle
t_unit_test_settle_SOURCES = t/unit/test_settle.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_settle_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_settle_CFLAGS = $(UNITCC)
t_unit_test_settle_LDADD = $(UNITLIBS)

# Searching a mailbox (gn_store_query_*) and the save date (RFC 8514).
TESTPROGS += t/unit/test_store_search
t_unit_test_store_search_SOURCES = t/unit/test_store_search.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_store_search_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_store_search_CFLAGS = $(UNITCC)
t_unit_test_store_search_LDADD = $(UNITLIBS)

# A body and its last other reference going at once (migration 010),
# step by step on two connections (a helper process).
TESTPROGS += t/unit/test_blob_race
t_unit_test_blob_race_SOURCES = t/unit/test_blob_race.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_blob_race_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_blob_race_CFLAGS = $(UNITCC)
t_unit_test_blob_race_LDADD = $(UNITLIBS)
