# t/mk/dns.mk: unit tests of the resolver (core/dns/).
TESTPROGS += t/unit/test_dns
t_unit_test_dns_SOURCES = t/unit/test_dns.c
t_unit_test_dns_CPPFLAGS = $(UNITCPP)
t_unit_test_dns_CFLAGS = $(UNITCC)
t_unit_test_dns_LDADD = $(UNITLIBS)
