# t/mk/auth.mk: credentials, logins, the failed-auth limiter, attempt
# records and TLS public keys (core/auth/auth.c, core/auth/tlspubkey.c).  test_auth
# uses a fresh database from t/lib/pgtest.c (which says which cluster).
TESTPROGS += t/unit/test_auth
t_unit_test_auth_SOURCES = t/unit/test_auth.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_auth_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_auth_CFLAGS = $(UNITCC)
t_unit_test_auth_LDADD = $(UNITLIBS)
