# modules/webhooks/local.mk: the webhooks module, mox's outgoing and
# incoming webhooks per account (README beside).
module_LTLIBRARIES += modules/webhooks/webhooks.la
modules_webhooks_webhooks_la_SOURCES = modules/webhooks/webhooks.c modules/webhooks/webhooks.h \
	modules/webhooks/hooks.c modules/webhooks/send.c modules/webhooks/cli.c \
	modules/webhooks/incoming.c
nodist_modules_webhooks_webhooks_la_SOURCES = modules/webhooks/schema.c
modules_webhooks_webhooks_la_CFLAGS = $(GN_MODCC) $(JSONC_CFLAGS) $(GNUTLS_CFLAGS)
modules_webhooks_webhooks_la_LDFLAGS = $(GN_MODLINK)
modules_webhooks_webhooks_la_LIBADD = core/libgannet.la $(JSONC_LIBS) $(GNUTLS_LIBS)
EXTRA_DIST += modules/webhooks/README modules/webhooks/schema

# modules/webhooks/schema.c: the SQL files of schema/ as C strings.
WEBHOOKS_SCHEMA = $(sort $(wildcard $(top_srcdir)/modules/webhooks/schema/*.sql))
modules/webhooks/schema.c: $(WEBHOOKS_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) modules/webhooks && sh $(top_srcdir)/build-aux/sql2c webhooks_migrations $(WEBHOOKS_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += modules/webhooks/schema.c
CLEANFILES += modules/webhooks/schema.c
