# modules/mailauth/local.mk: the mailauth module, SPF/DKIM/DMARC/iprev on what
# comes in (README beside).
module_LTLIBRARIES += modules/mailauth/mailauth.la
modules_mailauth_mailauth_la_SOURCES = modules/mailauth/mailauth.c \
	modules/mailauth/mailauth.h modules/mailauth/spf.h \
	modules/mailauth/spf-record.c modules/mailauth/spf.c \
	modules/mailauth/cli-spf.c modules/mailauth/authres.h \
	modules/mailauth/authres.c modules/mailauth/inbound.c \
	modules/mailauth/iprev.h modules/mailauth/iprev.c \
	modules/mailauth/dmarc.h modules/mailauth/dmarc-record.c \
	modules/mailauth/dmarc.c modules/mailauth/cli-dmarc.c \
	modules/mailauth/cli-auth.c modules/mailauth/policy.h \
	modules/mailauth/policy.c modules/mailauth/header.h \
	modules/mailauth/header.c
modules_mailauth_mailauth_la_CFLAGS = $(GN_MODCC)
modules_mailauth_mailauth_la_LDFLAGS = $(GN_MODLINK)
modules_mailauth_mailauth_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/mailauth/README
