# modules/webapi/local.mk: mox's HTTP API v0 at /webapi/v0/ (README beside).
module_LTLIBRARIES += modules/webapi/webapi.la
modules_webapi_webapi_la_SOURCES = modules/webapi/webapi.c modules/webapi/webapi.h \
	modules/webapi/schema.c modules/webapi/cli.c
modules_webapi_webapi_la_CFLAGS = $(GN_MODCC) $(JSONC_CFLAGS)
modules_webapi_webapi_la_LDFLAGS = $(GN_MODLINK)
modules_webapi_webapi_la_LIBADD = core/libgannet.la $(JSONC_LIBS)
EXTRA_DIST += modules/webapi/README
