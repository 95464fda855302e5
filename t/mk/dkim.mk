# t/mk/dkim.mk: unit tests of DKIM (core/mail/dkim.c, dkim-sign.c).
TESTPROGS += t/unit/test_dkim
t_unit_test_dkim_SOURCES = t/unit/test_dkim.c
t_unit_test_dkim_CPPFLAGS = $(UNITCPP)
t_unit_test_dkim_CFLAGS = $(UNITCC)
t_unit_test_dkim_LDADD = $(UNITLIBS)
