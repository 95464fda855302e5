# t/mk/auth.mk: credentials, logins, the failed-auth limiter, attempt
# records and TLS public keys (core/auth.c, core/tlspubkey.c).  test_auth
# uses a throwaway cluster (t/lib/pgtmp) unless GANNET_TEST_CONNINFO or
# GANNET_TEST_PGHOST/GANNET_TEST_PGPORT name one.
TESTPROGS += t/unit/test_auth
t_unit_test_auth_SOURCES = t/unit/test_auth.c
t_unit_test_auth_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_auth_CFLAGS = $(UNITCC)
t_unit_test_auth_LDADD = $(UNITLIBS)
