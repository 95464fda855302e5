# t/: tests.  Each part of the tree keeps its test build rules in a
# fragment under t/mk/; unit test programs go into TESTPROGS.
UNITCPP = $(AM_CPPFLAGS) -I$(top_srcdir)/core -I$(top_srcdir)/t/lib
UNITCC = $(AM_CFLAGS) $(DEP_CFLAGS)
UNITLIBS = core/libgannet_core.la t/lib/libtap.la $(DEP_LIBS)

check_LTLIBRARIES += t/lib/libtap.la
t_lib_libtap_la_SOURCES = t/lib/tap.c t/lib/tap.h

include t/mk/unit.mk
include t/mk/mem.mk
include t/mk/modules.mk
include t/mk/net.mk
include t/mk/db.mk
include t/mk/master.mk
include t/mk/addr.mk
include t/mk/dns.mk
include t/mk/mime.mk
include t/mk/compose.mk
include t/mk/dkim.mk
include t/mk/spf.mk
include t/mk/dmarc.mk
include t/mk/store.mk
include t/mk/auth.mk
include t/mk/sasl.mk
include t/mk/deliver.mk
include t/mk/smtp.mk
include t/mk/imap.mk
include t/mk/queue.mk
include t/mk/mtasts.mk

check_PROGRAMS += $(TESTPROGS)
