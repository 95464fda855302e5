# modules/smtp/local.mk: the smtp module, the inbound MX (README beside).
module_LTLIBRARIES += modules/smtp/smtp.la
modules_smtp_smtp_la_SOURCES = modules/smtp/smtp.c modules/smtp/localserve.c modules/smtp/localserve.h \
	modules/smtp/forged.c modules/smtp/forged.h
modules_smtp_smtp_la_CFLAGS = $(GN_MODCC)
modules_smtp_smtp_la_LDFLAGS = $(GN_MODLINK)
modules_smtp_smtp_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/smtp/README
