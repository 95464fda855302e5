# modules/quota/local.mk: the quota module, storage limits per account that
# SMTP deliveries and IMAP honour (README beside).
module_LTLIBRARIES += modules/quota/quota.la
modules_quota_quota_la_SOURCES = modules/quota/quota.c modules/quota/quota.h \
	modules/quota/deliver.c modules/quota/imap.c modules/quota/cli.c
nodist_modules_quota_quota_la_SOURCES = modules/quota/schema.c
modules_quota_quota_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/imap/include
modules_quota_quota_la_CFLAGS = $(GN_MODCC)
modules_quota_quota_la_LDFLAGS = $(GN_MODLINK)
modules_quota_quota_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/quota/README modules/quota/schema

# modules/quota/schema.c: the SQL files of schema/ as C strings.
QUOTA_SCHEMA = $(sort $(wildcard $(top_srcdir)/modules/quota/schema/*.sql))
modules/quota/schema.c: $(QUOTA_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) modules/quota && sh $(top_srcdir)/build-aux/sql2c quota_migrations $(QUOTA_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += modules/quota/schema.c
CLEANFILES += modules/quota/schema.c
