# modules/aliases/local.mk: the aliases module, lists of account addresses
# (README beside).
module_LTLIBRARIES += modules/aliases/aliases.la
modules_aliases_aliases_la_SOURCES = modules/aliases/aliases.c \
	modules/aliases/aliases.h modules/aliases/alias.c modules/aliases/cli.c
nodist_modules_aliases_aliases_la_SOURCES = modules/aliases/schema.c
modules_aliases_aliases_la_CFLAGS = $(GN_MODCC)
modules_aliases_aliases_la_LDFLAGS = $(GN_MODLINK)
modules_aliases_aliases_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/aliases/README modules/aliases/schema

# modules/aliases/schema.c: the SQL files of schema/ as C strings.
ALIASES_SCHEMA = $(sort $(wildcard $(top_srcdir)/modules/aliases/schema/*.sql))
modules/aliases/schema.c: $(ALIASES_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) modules/aliases && sh $(top_srcdir)/build-aux/sql2c aliases_migrations $(ALIASES_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += modules/aliases/schema.c
CLEANFILES += modules/aliases/schema.c
