# t/mk/unit.mk: unit tests of the config file (core/runtime/config.c).
TESTPROGS += t/unit/test_config
t_unit_test_config_SOURCES = t/unit/test_config.c
t_unit_test_config_CPPFLAGS = $(UNITCPP)
t_unit_test_config_CFLAGS = $(UNITCC)
t_unit_test_config_LDADD = $(UNITLIBS)
