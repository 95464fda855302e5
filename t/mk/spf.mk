# t/mk/spf.mk: the mailauth module's SPF records and macros
# (modules/mailauth/spf-record.c, built from its source).
TESTPROGS += t/unit/test_spf
t_unit_test_spf_SOURCES = t/unit/test_spf.c modules/mailauth/spf-record.c
t_unit_test_spf_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_spf_CFLAGS = $(UNITCC)
t_unit_test_spf_LDADD = $(UNITLIBS)

# The evaluator on the loop with the core's resolver (spf.c).
TESTPROGS += t/unit/test_spf_eval
t_unit_test_spf_eval_SOURCES = t/unit/test_spf_eval.c modules/mailauth/spf.c \
	modules/mailauth/spf-record.c
t_unit_test_spf_eval_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_spf_eval_CFLAGS = $(UNITCC)
t_unit_test_spf_eval_LDADD = $(UNITLIBS)

# The Authentication-Results and Received-SPF writers (authres.c).
TESTPROGS += t/unit/test_authres
t_unit_test_authres_SOURCES = t/unit/test_authres.c modules/mailauth/authres.c \
	modules/mailauth/spf-record.c
t_unit_test_authres_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_authres_CFLAGS = $(UNITCC)
t_unit_test_authres_LDADD = $(UNITLIBS)

# iprev on the loop with the core's resolver (iprev.c).
TESTPROGS += t/unit/test_iprev
t_unit_test_iprev_SOURCES = t/unit/test_iprev.c modules/mailauth/iprev.c
t_unit_test_iprev_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_iprev_CFLAGS = $(UNITCC)
t_unit_test_iprev_LDADD = $(UNITLIBS)

# The end of the header section across chunks (header.c).
TESTPROGS += t/unit/test_mailauth_header
t_unit_test_mailauth_header_SOURCES = t/unit/test_mailauth_header.c modules/mailauth/header.c
t_unit_test_mailauth_header_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_mailauth_header_CFLAGS = $(UNITCC)
t_unit_test_mailauth_header_LDADD = $(UNITLIBS)
