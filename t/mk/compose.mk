# t/mk/compose.mk: the message composer's tests (core/mail/compose.c).
TESTPROGS += t/unit/test_compose
t_unit_test_compose_SOURCES = t/unit/test_compose.c
t_unit_test_compose_CPPFLAGS = $(UNITCPP)
t_unit_test_compose_CFLAGS = $(UNITCC)
t_unit_test_compose_LDADD = $(UNITLIBS)

# Not a TAP test: composes a message from a JSON description, for
# t/integration/071-compose-python.t.
check_PROGRAMS += t/unit/compose_dump
t_unit_compose_dump_SOURCES = t/unit/compose_dump.c
t_unit_compose_dump_CPPFLAGS = $(UNITCPP)
t_unit_compose_dump_CFLAGS = $(UNITCC)
t_unit_compose_dump_LDADD = $(UNITLIBS)
