# core/: libgannet (everything shared) and the gannet binary.

pkginclude_HEADERS = \
	core/include/gannet/gannet.h \
	core/include/gannet/module.h \
	core/include/gannet/mem.h \
	core/include/gannet/log.h \
	core/include/gannet/config.h \
	core/include/gannet/hook.h \
	core/include/gannet/service.h \
	core/include/gannet/loop.h \
	core/include/gannet/conn.h \
	core/include/gannet/db.h \
	core/include/gannet/runner.h \
	core/include/gannet/addr.h \
	core/include/gannet/mime.h \
	core/include/gannet/store.h \
	core/include/gannet/auth.h \
	core/include/gannet/deliver.h \
	core/include/gannet/smtp.h

pkgconfig_DATA = core/gannet.pc

# All of the core as a convenience library: libgannet.so exports its gn_*
# symbols, unit tests link it whole.
noinst_LTLIBRARIES += core/libgannet_core.la
core_libgannet_core_la_SOURCES = \
	core/core.h \
	core/mem.c \
	core/log.c \
	core/config.c \
	core/loop.c \
	core/module.c \
	core/hook.c \
	core/service.c \
	core/runner.c \
	core/tls.c \
	core/listener.c \
	core/conn.c \
	core/iplimit.c \
	core/db.c \
	core/migrate.c \
	core/master.c \
	core/localserve.c \
	core/main.c \
	core/addr.c \
	core/mime.c \
	core/store.c \
	core/store-int.h \
	core/store-mailbox.c \
	core/store-blob.c \
	core/auth.c \
	core/tlspubkey.c \
	core/deliver.c \
	core/import.c \
	core/smtp-server.c
nodist_core_libgannet_core_la_SOURCES = core/schema.c
core_libgannet_core_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
core_libgannet_core_la_LIBADD = $(DEP_LIBS)

# core/schema.c: the SQL files of core/schema/ as C strings.
CORE_SCHEMA = $(sort $(wildcard $(top_srcdir)/core/schema/*.sql))
core/schema.c: $(CORE_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) core && sh $(top_srcdir)/build-aux/sql2c core_migrations $(CORE_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += core/schema.c
CLEANFILES += core/schema.c

lib_LTLIBRARIES += core/libgannet.la
core_libgannet_la_SOURCES =
core_libgannet_la_LIBADD = core/libgannet_core.la $(DEP_LIBS)
core_libgannet_la_LDFLAGS = -version-info 1:0:0 \
	-Wl,--version-script=$(top_srcdir)/core/libgannet.map
EXTRA_core_libgannet_la_DEPENDENCIES = core/libgannet.map
EXTRA_DIST += core/libgannet.map core/schema core/abi

bin_PROGRAMS += core/gannet
core_gannet_SOURCES = core/gannet-main.c
core_gannet_LDADD = core/libgannet.la
