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
	core/include/gannet/httpclient.h \
	core/include/gannet/db.h \
	core/include/gannet/migrate.h \
	core/include/gannet/runner.h \
	core/include/gannet/cli.h \
	core/include/gannet/addr.h \
	core/include/gannet/mime.h \
	core/include/gannet/compose.h \
	core/include/gannet/submit.h \
	core/include/gannet/dkim.h \
	core/include/gannet/store.h \
	core/include/gannet/auth.h \
	core/include/gannet/tlspubkey.h \
	core/include/gannet/sasl.h \
	core/include/gannet/deliver.h \
	core/include/gannet/smtp.h \
	core/include/gannet/dns.h \
	core/include/gannet/queue.h \
	core/include/gannet/http.h \
	core/include/gannet/suppression.h \
	core/include/gannet/webhook.h

pkgconfig_DATA = core/gannet.pc

# All of the core as a convenience library: libgannet.so exports its gn_*
# symbols, unit tests link it whole.
noinst_LTLIBRARIES += core/libgannet_core.la
# One folder a layer, lowest first (DESIGN.md "Layout"); each has one
# internal header.  main.c, serve.c and localserve.c wire them together.
core_libgannet_core_la_SOURCES = \
	core/base/internal.h \
	core/base/mem.c \
	core/base/log.c \
	core/base/pid.c \
	core/base/text.c \
	core/runtime/internal.h \
	core/runtime/config.c \
	core/runtime/loop.c \
	core/runtime/module.c \
	core/runtime/registry.c \
	core/runtime/hook.c \
	core/runtime/service.c \
	core/runtime/runner.c \
	core/runtime/cli.c \
	core/runtime/master.c \
	core/net/internal.h \
	core/net/tls.c \
	core/net/listener.c \
	core/net/conn.c \
	core/net/compress.c \
	core/net/http-client.c \
	core/net/iplimit.c \
	core/net/http.c \
	core/db/internal.h \
	core/db/analyze.c \
	core/db/db.c \
	core/db/migrate.c \
	core/db/result.c \
	core/db/stmt.c \
	core/db/pq.c \
	core/mail/internal.h \
	core/mail/addr.c \
	core/mail/mime.c \
	core/mail/mime-charset.c \
	core/mail/mime-encoding.c \
	core/mail/mime-rfc2047.c \
	core/mail/mime-rfc2231.c \
	core/mail/mime-date.c \
	core/mail/mime-json.c \
	core/mail/compose.c \
	core/mail/mime-decode.c \
	core/mail/dkim.c \
	core/mail/dkim-sign.c \
	core/mail/dkim-verify.c \
	core/dns/internal.h \
	core/dns/result.c \
	core/dns/resolver.c \
	core/dns/cli-dns.c \
	core/dns/dane.c \
	core/dns/dkim.c \
	core/dns/cli-dkim.c \
	core/auth/internal.h \
	core/auth/crypto.c \
	core/auth/credentials.c \
	core/auth/auth.c \
	core/auth/sasl.c \
	core/auth/sasl-password.c \
	core/auth/sasl-cram-md5.c \
	core/auth/sasl-scram.c \
	core/auth/sasl-client.c \
	core/auth/sasl-external.c \
	core/auth/tlspubkey.c \
	core/auth/cli-password.c \
	core/auth/cli-cram-md5.c \
	core/auth/cli-tlspubkey.c \
	core/store/internal.h \
	core/store/store.c \
	core/store/domain.c \
	core/store/account.c \
	core/store/address.c \
	core/store/cli.c \
	core/store/cli-domain.c \
	core/store/cli-account.c \
	core/store/cli-address.c \
	core/store/dkim.c \
	core/store/fromid.c \
	core/store/cli-dkim.c \
	core/store/mailbox.c \
	core/store/blob.c \
	core/store/deliver.c \
	core/store/import.c \
	core/store/handles.c \
	core/store/search.c \
	core/smtp/internal.h \
	core/smtp/server.c \
	core/smtp/answer.c \
	core/smtp/command.c \
	core/smtp/extension.c \
	core/smtp/data.c \
	core/smtp/tap.c \
	core/smtp/client-reply.c \
	core/smtp/client.c \
	core/smtp/cli-send.c \
	core/smtp/cli-sendmail.c \
	core/queue/internal.h \
	core/queue/queue.c \
	core/queue/dsn.c \
	core/queue/dsn-read.c \
	core/queue/cli.c \
	core/queue/cli-rules.c \
	core/queue/transport-smtp.c \
	core/queue/requiretls.c \
	core/queue/mtasts.c \
	core/queue/mtasts-policy.c \
	core/queue/cli-mtasts.c \
	core/queue/fromid.c \
	core/queue/suppress.c \
	core/queue/webhook.c \
	core/main.h \
	core/main.c \
	core/serve.c \
	core/localserve.c
nodist_core_libgannet_core_la_SOURCES = core/db/schema.c
core_libgannet_core_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core
core_libgannet_core_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
core_libgannet_core_la_LIBADD = $(DEP_LIBS)

# core/db/schema.c: the SQL files of core/db/schema/ as C strings.
CORE_SCHEMA = $(sort $(wildcard $(top_srcdir)/core/db/schema/*.sql))
core/db/schema.c: $(CORE_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) core/db && sh $(top_srcdir)/build-aux/sql2c core_migrations $(CORE_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += core/db/schema.c
CLEANFILES += core/db/schema.c

lib_LTLIBRARIES += core/libgannet.la
core_libgannet_la_SOURCES =
core_libgannet_la_LIBADD = core/libgannet_core.la $(DEP_LIBS)
core_libgannet_la_LDFLAGS = -version-info 1:0:0 \
	-Wl,--version-script=$(top_srcdir)/core/libgannet.map
EXTRA_core_libgannet_la_DEPENDENCIES = core/libgannet.map
EXTRA_DIST += core/libgannet.map core/db/schema core/abi core/dns/README core/net/README

bin_PROGRAMS += core/gannet
core_gannet_SOURCES = core/gannet-main.c
core_gannet_LDADD = core/libgannet.la
