# t/mk/smtp.mk: the SMTP engine (core/smtp/server.c) and the smtp module
# (modules/smtp/).  Integration tests: t/integration/150-smtp-*.t.

# "smtptest": a policy on the engine without a database, for the engine's
# tests (t/integration/150-smtp-engine.t).
check_LTLIBRARIES += t/modules/smtptest/smtptest.la
t_modules_smtptest_smtptest_la_SOURCES = t/modules/smtptest/smtptest.c
t_modules_smtptest_smtptest_la_CFLAGS = $(GN_MODCC)
t_modules_smtptest_smtptest_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_smtptest_smtptest_la_LIBADD = core/libgannet.la

# The SMTP client's reply parser, EHLO keywords and DATA encoder
# (core/smtp/client-reply.c).
TESTPROGS += t/unit/test_smtp_client
t_unit_test_smtp_client_SOURCES = t/unit/test_smtp_client.c
t_unit_test_smtp_client_CPPFLAGS = $(UNITCPP)
t_unit_test_smtp_client_CFLAGS = $(UNITCC)
t_unit_test_smtp_client_LDADD = $(UNITLIBS)

# The SMTP client through its API against a scripted server in a child:
# pipelined transactions on one connection, a failing reader, freeing
# from a callback (core/smtp/client.c).
TESTPROGS += t/unit/test_smtp_client_session
t_unit_test_smtp_client_session_SOURCES = t/unit/test_smtp_client_session.c
t_unit_test_smtp_client_session_CPPFLAGS = $(UNITCPP)
t_unit_test_smtp_client_session_CFLAGS = $(UNITCC)
t_unit_test_smtp_client_session_LDADD = $(UNITLIBS)

# What the end-of-data hooks may do to a transaction: added header lines
# and slots (core/smtp/tap.c).
TESTPROGS += t/unit/test_smtp_tap
t_unit_test_smtp_tap_SOURCES = t/unit/test_smtp_tap.c
t_unit_test_smtp_tap_CPPFLAGS = $(UNITCPP)
t_unit_test_smtp_tap_CFLAGS = $(UNITCC)
t_unit_test_smtp_tap_LDADD = $(UNITLIBS)

# The smtp module's renaming of forged Authentication-Results
# (modules/smtp/forged.c, built from its source).
TESTPROGS += t/unit/test_smtp_forged
t_unit_test_smtp_forged_SOURCES = t/unit/test_smtp_forged.c modules/smtp/forged.c
t_unit_test_smtp_forged_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/smtp
t_unit_test_smtp_forged_CFLAGS = $(UNITCC)
t_unit_test_smtp_forged_LDADD = $(UNITLIBS)
