# modules/submission/local.mk: the submission module, mail from logged-in
# users on 587/465 (README beside).
module_LTLIBRARIES += modules/submission/submission.la
modules_submission_submission_la_SOURCES = modules/submission/submission.c \
	modules/submission/submission.h modules/submission/message.c \
	modules/submission/limits.c modules/submission/enqueue.c \
	modules/submission/service.c
nodist_modules_submission_submission_la_SOURCES = modules/submission/schema.c
modules_submission_submission_la_CFLAGS = $(GN_MODCC)
modules_submission_submission_la_LDFLAGS = $(GN_MODLINK)
modules_submission_submission_la_LIBADD = core/libgannet.la
EXTRA_DIST += modules/submission/README modules/submission/schema

# modules/submission/schema.c: the SQL files of schema/ as C strings.
SUBMISSION_SCHEMA = $(sort $(wildcard $(top_srcdir)/modules/submission/schema/*.sql))
modules/submission/schema.c: $(SUBMISSION_SCHEMA) $(top_srcdir)/build-aux/sql2c
	$(AM_V_GEN)$(MKDIR_P) modules/submission && sh $(top_srcdir)/build-aux/sql2c submission_migrations $(SUBMISSION_SCHEMA) > $@.tmp && mv $@.tmp $@
BUILT_SOURCES += modules/submission/schema.c
CLEANFILES += modules/submission/schema.c
