# t/mk/mtasts.mk: the HTTPS client (core/net/http-client.c) against a
# Python HTTPS server, and MTA-STS's parsers (core/queue/mtasts.c).
TESTPROGS += t/unit/test_httpclient
t_unit_test_httpclient_SOURCES = t/unit/test_httpclient.c
t_unit_test_httpclient_CPPFLAGS = $(UNITCPP) -DGN_TEST_SRCDIR='"$(abs_top_srcdir)"'
t_unit_test_httpclient_CFLAGS = $(UNITCC)
t_unit_test_httpclient_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_mtasts
t_unit_test_mtasts_SOURCES = t/unit/test_mtasts.c
t_unit_test_mtasts_CPPFLAGS = $(UNITCPP)
t_unit_test_mtasts_CFLAGS = $(UNITCC)
t_unit_test_mtasts_LDADD = $(UNITLIBS)
