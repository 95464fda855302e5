# t/mk/dmarc.mk: the mailauth module's DMARC parts without DNS (public
# suffix list, records, alignment, evaluation), built from their sources.
TESTPROGS += t/unit/test_dmarc
t_unit_test_dmarc_SOURCES = t/unit/test_dmarc.c modules/mailauth/dmarc.c \
	modules/mailauth/dmarc-record.c modules/mailauth/spf-record.c
t_unit_test_dmarc_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_dmarc_CFLAGS = $(UNITCC)
t_unit_test_dmarc_LDADD = $(UNITLIBS)

# The policy lookup on the loop with the core's resolver (dmarc.c).
TESTPROGS += t/unit/test_dmarc_eval
t_unit_test_dmarc_eval_SOURCES = t/unit/test_dmarc_eval.c modules/mailauth/dmarc.c \
	modules/mailauth/dmarc-record.c modules/mailauth/spf-record.c
t_unit_test_dmarc_eval_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_dmarc_eval_CFLAGS = $(UNITCC)
t_unit_test_dmarc_eval_LDADD = $(UNITLIBS)
