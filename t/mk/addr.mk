# t/mk/addr.mk: unit tests of addresses and PRECIS (core/mail/addr.c).
TESTPROGS += t/unit/test_addr
t_unit_test_addr_SOURCES = t/unit/test_addr.c
t_unit_test_addr_CPPFLAGS = $(UNITCPP)
t_unit_test_addr_CFLAGS = $(UNITCC)
t_unit_test_addr_LDADD = $(UNITLIBS)
