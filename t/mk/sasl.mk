# t/mk/sasl.mk: the SASL server over real sockets (t/integration/125-sasl.t):
# a test module that carries gannet/sasl.h in an IMAP-like framing.
check_LTLIBRARIES += t/modules/sasltest/sasltest.la
t_modules_sasltest_sasltest_la_SOURCES = t/modules/sasltest/sasltest.c
t_modules_sasltest_sasltest_la_CFLAGS = $(GN_MODCC)
t_modules_sasltest_sasltest_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_sasltest_sasltest_la_LIBADD = core/libgannet.la
