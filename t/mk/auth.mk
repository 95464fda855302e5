# t/mk/auth.mk: credentials, logins, the failed-auth limiter, attempt
# records and TLS public keys (core/auth/auth.c, core/auth/tlspubkey.c).  test_auth
# uses a fresh database from t/lib/pgtest.c (which says which cluster).
TESTPROGS += t/unit/test_auth
t_unit_test_auth_SOURCES = t/unit/test_auth.c t/lib/pgtest.c t/lib/pgtest.h
t_unit_test_auth_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_auth_CFLAGS = $(UNITCC)
t_unit_test_auth_LDADD = $(UNITLIBS)

# The client side of SASL (core/auth/sasl-client.c): SCRAM against the RFC
# 5802 and 7677 examples, -PLUS, PLAIN, EXTERNAL, the choice of mechanism.
TESTPROGS += t/unit/test_sasl_client
t_unit_test_sasl_client_SOURCES = t/unit/test_sasl_client.c
t_unit_test_sasl_client_CPPFLAGS = $(UNITCPP)
t_unit_test_sasl_client_CFLAGS = $(UNITCC)
t_unit_test_sasl_client_LDADD = $(UNITLIBS)
