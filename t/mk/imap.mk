# t/mk/imap.mk: the imap module's tests (the parser, built from its source).
TESTPROGS += t/unit/test_imap_parser
t_unit_test_imap_parser_SOURCES = t/unit/test_imap_parser.c modules/imap/parser.c \
	modules/imap/seqset.c
t_unit_test_imap_parser_CPPFLAGS = $(UNITCPP)
t_unit_test_imap_parser_CFLAGS = $(UNITCC)
t_unit_test_imap_parser_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_imap_names
t_unit_test_imap_names_SOURCES = t/unit/test_imap_names.c modules/imap/mailbox-name.c
t_unit_test_imap_names_CPPFLAGS = $(UNITCPP)
t_unit_test_imap_names_CFLAGS = $(UNITCC)
t_unit_test_imap_names_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_imap_section
t_unit_test_imap_section_SOURCES = t/unit/test_imap_section.c modules/imap/fetch-section.c \
	modules/imap/decode.c
t_unit_test_imap_section_CPPFLAGS = $(UNITCPP)
t_unit_test_imap_section_CFLAGS = $(UNITCC)
t_unit_test_imap_section_LDADD = $(UNITLIBS)

# A module that extends the IMAP server through imap.v1
# (t/integration/170-imap-service.t).
check_LTLIBRARIES += t/modules/imapext/imapext.la
t_modules_imapext_imapext_la_SOURCES = t/modules/imapext/imapext.c
t_modules_imapext_imapext_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/imap/include
t_modules_imapext_imapext_la_CFLAGS = $(GN_MODCC)
t_modules_imapext_imapext_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_imapext_imapext_la_LIBADD = core/libgannet.la

TESTPROGS += t/unit/test_imap_subject
t_unit_test_imap_subject_SOURCES = t/unit/test_imap_subject.c modules/imap/base-subject.c
t_unit_test_imap_subject_CPPFLAGS = $(UNITCPP)
t_unit_test_imap_subject_CFLAGS = $(UNITCC)
t_unit_test_imap_subject_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_imap_thread
t_unit_test_imap_thread_SOURCES = t/unit/test_imap_thread.c modules/imap/thread.c \
	modules/imap/base-subject.c
t_unit_test_imap_thread_CPPFLAGS = $(UNITCPP)
t_unit_test_imap_thread_CFLAGS = $(UNITCC)
t_unit_test_imap_thread_LDADD = $(UNITLIBS)
