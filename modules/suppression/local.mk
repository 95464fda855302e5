# modules/suppression/local.mk: the suppression module, per-account lists
# of recipient addresses the queue does not deliver to (README beside).
module_LTLIBRARIES += modules/suppression/suppression.la
modules_suppression_suppression_la_SOURCES = modules/suppression/suppression.c \
	modules/suppression/suppression.h modules/suppression/list.c modules/suppression/cli.c
nodist_modules_suppression_suppression_la_SOURCES = modules/suppression/schema.c
modules_suppression_suppression_la_CFLAGS = $(GN_MODCC)
modules_suppression_suppression_la_LDFLAGS = $(GN_MODLINK)
modules_suppression_suppression_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/suppression/README modules/suppression/schema

# modules/suppression/schema.c: the SQL files of schema/ as C strings.
SUPPRESSION_SCHEMA = $(sort $(wildcard $(top_srcdir)/modules/suppression/schema/*.sql))
modules/suppression/schema.c: $(SUPPRESSION_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) modules/suppression && sh $(top_srcdir)/build-aux/sql2c suppression_migrations $(SUPPRESSION_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += modules/suppression/schema.c
CLEANFILES += modules/suppression/schema.c
