# t/mk/dmarc.mk: the mailauth module's DMARC parts without DNS (public
# suffix list, records, alignment, evaluation), built from their sources.
TESTPROGS += t/unit/test_dmarc
t_unit_test_dmarc_SOURCES = t/unit/test_dmarc.c modules/mailauth/dmarc.c \
	modules/mailauth/dmarc-record.c modules/mailauth/spf-record.c
t_unit_test_dmarc_CPPFLAGS = $(UNITCPP) -I$(top_srcdir)/modules/mailauth
t_unit_test_dmarc_CFLAGS = $(UNITCC)
t_unit_test_dmarc_LDADD = $(UNITLIBS)
