# t/mk/dkim.mk: unit tests of DKIM (core/mail/dkim.c, dkim-sign.c, dkim-verify.c, core/dns/dkim.c).
TESTPROGS += t/unit/test_dkim
t_unit_test_dkim_SOURCES = t/unit/test_dkim.c
t_unit_test_dkim_CPPFLAGS = $(UNITCPP)
t_unit_test_dkim_CFLAGS = $(UNITCC)
t_unit_test_dkim_LDADD = $(UNITLIBS)
# The verifier (core/mail/dkim-verify.c) and its key lookups (core/dns/dkim.c).
TESTPROGS += t/unit/test_dkim_verify
t_unit_test_dkim_verify_SOURCES = t/unit/test_dkim_verify.c
t_unit_test_dkim_verify_CPPFLAGS = $(UNITCPP)
t_unit_test_dkim_verify_CFLAGS = $(UNITCC)
t_unit_test_dkim_verify_LDADD = $(UNITLIBS)
