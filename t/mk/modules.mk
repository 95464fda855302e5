# t/mk/modules.mk: the module loader, hooks, services, runner jobs and CLI
# commands (core/runtime/module.c, core/runtime/hook.c, core/runtime/service.c, core/runtime/runner.c), the
# module zoo of t/abi/ and the ABI gate (t/integration/021-abi.t).

TESTPROGS += t/unit/test_hook
t_unit_test_hook_SOURCES = t/unit/test_hook.c
t_unit_test_hook_CPPFLAGS = $(UNITCPP)
t_unit_test_hook_CFLAGS = $(UNITCC)
t_unit_test_hook_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_service
t_unit_test_service_SOURCES = t/unit/test_service.c
t_unit_test_service_CPPFLAGS = $(UNITCPP)
t_unit_test_service_CFLAGS = $(UNITCC)
t_unit_test_service_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_module
t_unit_test_module_SOURCES = t/unit/test_module.c
t_unit_test_module_CPPFLAGS = $(UNITCPP)
t_unit_test_module_CFLAGS = $(UNITCC)
t_unit_test_module_LDADD = $(UNITLIBS)

# The zoo, part 1: modules built against the frozen ABI 1.0 headers
# (t/abi/include-1.0, never edited) that every later core must load.
ZOO_CPPFLAGS = -I$(top_srcdir)/t/abi/include-1.0 -D_GNU_SOURCE
check_LTLIBRARIES += t/abi/zoo_base.la t/abi/zoo_extra.la t/abi/zoo_app.la
t_abi_zoo_base_la_SOURCES = t/abi/zoo_base.c
t_abi_zoo_base_la_CPPFLAGS = $(ZOO_CPPFLAGS)
t_abi_zoo_base_la_CFLAGS = $(GN_MODCC)
t_abi_zoo_base_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_zoo_base_la_LIBADD = core/libgannet.la
t_abi_zoo_extra_la_SOURCES = t/abi/zoo_extra.c
t_abi_zoo_extra_la_CPPFLAGS = $(ZOO_CPPFLAGS)
t_abi_zoo_extra_la_CFLAGS = $(GN_MODCC)
t_abi_zoo_extra_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_zoo_extra_la_LIBADD = core/libgannet.la
t_abi_zoo_app_la_SOURCES = t/abi/zoo_app.c
t_abi_zoo_app_la_CPPFLAGS = $(ZOO_CPPFLAGS)
t_abi_zoo_app_la_CFLAGS = $(GN_MODCC)
t_abi_zoo_app_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_zoo_app_la_LIBADD = core/libgannet.la

# The zoo, part 2: one broken module per loader refusal, built against the
# current headers (so "newer minor" and "other major" stay relative to the
# core being tested).
check_LTLIBRARIES += t/abi/bad_nodesc.la t/abi/bad_magic.la t/abi/bad_size.la \
	t/abi/bad_major.la t/abi/bad_minor.la t/abi/bad_name.la \
	t/abi/bad_missing.la t/abi/bad_cycle_a.la t/abi/bad_cycle_b.la \
	t/abi/bad_start.la t/abi/bad_register.la
t_abi_bad_nodesc_la_SOURCES = t/abi/bad_nodesc.c
t_abi_bad_nodesc_la_CFLAGS = $(GN_MODCC)
# No symbol matches GN_MODLINK's export regex: an empty version script
# would not link, so this one exports what hidden visibility leaves (none).
t_abi_bad_nodesc_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
t_abi_bad_nodesc_la_LIBADD = core/libgannet.la
t_abi_bad_magic_la_SOURCES = t/abi/bad_magic.c
t_abi_bad_magic_la_CFLAGS = $(GN_MODCC)
t_abi_bad_magic_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_magic_la_LIBADD = core/libgannet.la
t_abi_bad_size_la_SOURCES = t/abi/bad_size.c
t_abi_bad_size_la_CFLAGS = $(GN_MODCC)
t_abi_bad_size_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_size_la_LIBADD = core/libgannet.la
t_abi_bad_major_la_SOURCES = t/abi/bad_major.c
t_abi_bad_major_la_CFLAGS = $(GN_MODCC)
t_abi_bad_major_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_major_la_LIBADD = core/libgannet.la
t_abi_bad_minor_la_SOURCES = t/abi/bad_minor.c
t_abi_bad_minor_la_CFLAGS = $(GN_MODCC)
t_abi_bad_minor_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_minor_la_LIBADD = core/libgannet.la
t_abi_bad_name_la_SOURCES = t/abi/bad_name.c
t_abi_bad_name_la_CFLAGS = $(GN_MODCC)
t_abi_bad_name_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_name_la_LIBADD = core/libgannet.la
t_abi_bad_missing_la_SOURCES = t/abi/bad_missing.c
t_abi_bad_missing_la_CFLAGS = $(GN_MODCC)
t_abi_bad_missing_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_missing_la_LIBADD = core/libgannet.la
t_abi_bad_cycle_a_la_SOURCES = t/abi/bad_cycle_a.c
t_abi_bad_cycle_a_la_CFLAGS = $(GN_MODCC)
t_abi_bad_cycle_a_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_cycle_a_la_LIBADD = core/libgannet.la
t_abi_bad_cycle_b_la_SOURCES = t/abi/bad_cycle_b.c
t_abi_bad_cycle_b_la_CFLAGS = $(GN_MODCC)
t_abi_bad_cycle_b_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_cycle_b_la_LIBADD = core/libgannet.la
t_abi_bad_start_la_SOURCES = t/abi/bad_start.c
t_abi_bad_start_la_CFLAGS = $(GN_MODCC)
t_abi_bad_start_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_start_la_LIBADD = core/libgannet.la
t_abi_bad_register_la_SOURCES = t/abi/bad_register.c
t_abi_bad_register_la_CFLAGS = $(GN_MODCC)
t_abi_bad_register_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_bad_register_la_LIBADD = core/libgannet.la

# The ABI baseline of libgannet (core/abi/README says when to regenerate).
# abidw only describes what the public headers declare; the suppression
# file lets the structs modules fill grow at the end.
ABI_BASELINE = $(top_srcdir)/core/abi/libgannet.abi
ABIDW_FLAGS = --no-corpus-path --no-show-locs --no-comp-dir-path --drop-private-types \
	--headers-dir $(top_srcdir)/core/include/gannet
abi-baseline: core/libgannet.la
	@test -n "$(ABIDW)" || { echo "abidw not found: apt-get install abigail-tools" >&2; exit 1; }
	$(AM_V_GEN)$(ABIDW) $(ABIDW_FLAGS) --out-file $(ABI_BASELINE).tmp \
	  core/.libs/libgannet.so && mv $(ABI_BASELINE).tmp $(ABI_BASELINE)
	@echo "wrote $(ABI_BASELINE): review and commit it"
.PHONY: abi-baseline

# Layout of the structs and constants modules compile in, against the
# frozen 1.0 headers and the current ones (compared by 021-abi.t).
check_PROGRAMS += t/abi/layout-1.0 t/abi/layout-current
t_abi_layout_1_0_SOURCES = t/abi/layout.c
t_abi_layout_1_0_CPPFLAGS = $(ZOO_CPPFLAGS) $(LIBPQ_CFLAGS)
t_abi_layout_current_SOURCES = t/abi/layout.c
t_abi_layout_current_CPPFLAGS = $(AM_CPPFLAGS)
