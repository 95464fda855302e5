# modules/imap/local.mk: the imap module, the IMAP server (imap.h has the map).
module_LTLIBRARIES += modules/imap/imap.la
modules_imap_imap_la_SOURCES = modules/imap/imap.c modules/imap/imap.h \
	modules/imap/parser.c modules/imap/parser.h modules/imap/session.c \
	modules/imap/cmd-any.c modules/imap/cmd-auth.c modules/imap/cmd-mailbox.c \
	modules/imap/mailbox-name.c modules/imap/cmd-select.c modules/imap/cmd-fetch.c \
	modules/imap/seqset.c modules/imap/cmd-copy.c modules/imap/cmd-idle.c \
	modules/imap/service.c modules/imap/ext-id.c modules/imap/include/gannet/imap.h \
	modules/imap/cmd-append.c modules/imap/bodystructure.c modules/imap/fetch-section.c \
	modules/imap/decode.c modules/imap/cmd-search.c modules/imap/search-parse.c \
	modules/imap/search-scan.c modules/imap/search.h modules/imap/condstore.c \
	modules/imap/sort.h modules/imap/base-subject.c \
	modules/imap/cmd-sort.c modules/imap/thread.c \
	modules/imap/cmd-compress.c
modules_imap_imap_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/imap/include
modules_imap_imap_la_CFLAGS = $(GN_MODCC)
modules_imap_imap_la_LDFLAGS = $(GN_MODLINK)
modules_imap_imap_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/imap/README

# The imap.v1 service's header, for modules that extend the IMAP server.
imapincludedir = $(pkgincludedir)
imapinclude_HEADERS = modules/imap/include/gannet/imap.h
