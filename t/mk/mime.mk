# t/mk/mime.mk: the MIME parser's tests.
TESTPROGS += t/unit/test_mime
t_unit_test_mime_SOURCES = t/unit/test_mime.c
t_unit_test_mime_CPPFLAGS = $(UNITCPP) -DMIME_CORPUS='"$(abs_top_srcdir)/t/mime"'
t_unit_test_mime_CFLAGS = $(UNITCC)
t_unit_test_mime_LDADD = $(UNITLIBS)

# Not a TAP test: prints a message's part tree as JSON, for
# t/integration/070-mime-python.t.
check_PROGRAMS += t/unit/mime_dump
t_unit_mime_dump_SOURCES = t/unit/mime_dump.c
t_unit_mime_dump_CPPFLAGS = $(UNITCPP)
t_unit_mime_dump_CFLAGS = $(UNITCC)
t_unit_mime_dump_LDADD = $(UNITLIBS)
