# t/mk/modules.mk: the module loader, hooks, services, runner jobs and CLI
# commands (core/runtime/module.c, hook.c, service.c, runner.c), the module
# zoo of t/abi/ and the ABI gate (t/integration/021-abi.t and
# 023-abi-headers.t; core/abi/README): make abi-snapshot, abi-release,
# abi-baseline and the gate's abi-mutant.

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
t_unit_test_module_CPPFLAGS = $(UNITCPP) -DGN_TEST_BUILDDIR='"$(abs_top_builddir)"'
t_unit_test_module_CFLAGS = $(UNITCC)
t_unit_test_module_LDADD = $(UNITLIBS)

# The zoo, part 1: modules built against the frozen ABI 1.0 headers
# (t/abi/include-1.0, never edited) that every later core must load.
ZOO_CPPFLAGS = -I$(top_srcdir)/t/abi/include-1.0 -D_GNU_SOURCE
check_LTLIBRARIES += t/abi/zoo_base.la t/abi/zoo_extra.la t/abi/zoo_app.la t/abi/zoo_data.la
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
t_abi_zoo_data_la_SOURCES = t/abi/zoo_data.c
t_abi_zoo_data_la_CPPFLAGS = $(ZOO_CPPFLAGS)
t_abi_zoo_data_la_CFLAGS = $(GN_MODCC)
t_abi_zoo_data_la_LDFLAGS = $(GN_TESTMODLINK)
t_abi_zoo_data_la_LIBADD = core/libgannet.la

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

# ---- the ABI gate (core/abi/README) ----
# The ABI version is read from gannet/module.h; what was released last, from
# core/abi/released ("none" until 1.0 is declared released).
ABI_MODULE_H = $(top_srcdir)/core/include/gannet/module.h
ABI_VERSION = $(shell sed -n 's/^\#define GN_ABI_MAJOR \([0-9]*\).*/\1/p' $(ABI_MODULE_H)).$(shell \
	sed -n 's/^\#define GN_ABI_MINOR \([0-9]*\).*/\1/p' $(ABI_MODULE_H))
ABI_RELEASED_FILE = $(top_srcdir)/core/abi/released
ABI_BASELINE = $(top_srcdir)/core/abi/libgannet.abi
# abidw describes only what the public headers declare (the others are
# private).  --short-locs keeps each type's header name, which abidiff's
# --headers-dir needs to tell public types from private ones (without
# locations every type counts as private and the gate passes anything),
# while leaving out the paths of the machine that built it.
ABIDW_FLAGS = --no-corpus-path --short-locs --no-comp-dir-path --drop-private-types \
	--headers-dir $(top_srcdir)/core/include/gannet

# Regenerates the baseline from this build (see core/abi/README for when).
abi-baseline: core/libgannet.la
	@test -n "$(ABIDW)" || { echo "abidw not found: apt-get install abigail-tools" >&2; exit 1; }
	$(AM_V_GEN)$(ABIDW) $(ABIDW_FLAGS) --out-file $(ABI_BASELINE).tmp \
	  core/.libs/libgannet.so && mv $(ABI_BASELINE).tmp $(ABI_BASELINE)
	@echo "wrote $(ABI_BASELINE): review and commit it"

# Copies the installed headers to t/abi/include-MAJOR.MINOR (the frozen
# headers the zoo is built against and the layout check reads) and
# regenerates the baseline.  Before a version is released this refreshes
# its frozen copy; a released version's copy is never touched again.
abi-snapshot: core/libgannet.la
	@v='$(ABI_VERSION)'; r=$$(sed -n '/^[0-9n]/{p;q;}' $(ABI_RELEASED_FILE)); \
	case "$$v" in *[!0-9.]*|.*|*.) echo "cannot read the ABI version from $(ABI_MODULE_H)" >&2; exit 1;; esac; \
	if [ "$$v" = "$$r" ]; then \
	  echo "ABI $$v is released: its frozen headers never change; bump GN_ABI_MINOR first (core/abi/README)" >&2; exit 1; fi; \
	d='$(top_srcdir)/t/abi/include-'"$$v"/gannet; \
	rm -rf "$$d" && $(MKDIR_P) "$$d" && \
	for h in $(pkginclude_HEADERS); do cp '$(top_srcdir)'/"$$h" "$$d"/ || exit 1; done; \
	echo "copied the installed headers to $$d"
	@$(MAKE) $(AM_MAKEFLAGS) abi-baseline

# Declares the current ABI version released: snapshot and baseline as
# above, then core/abi/released records it.  From then on only additions
# in a new minor pass t/integration/021-abi.t and 023-abi-headers.t.
abi-release: abi-snapshot
	@v='$(ABI_VERSION)'; \
	{ echo "# The last released ABI version (make abi-release writes it; core/abi/README)."; \
	  echo "$$v"; } > $(ABI_RELEASED_FILE) && \
	echo "ABI $$v released: commit t/abi/include-$$v, core/abi/libgannet.abi and core/abi/released"
.PHONY: abi-baseline abi-snapshot abi-release

# The gate's self-test (021-abi.t) builds changed copies of libgannet: the
# directory ABI_MUTANT holds core/include/gannet/, core/libgannet.map and
# the changed sources ABI_MUTANT_SOURCES (paths in the tree, such as
# core/mail/addr.c), compiled as the core is; every other object comes
# from this build.  Writes $(ABI_MUTANT)/libgannet.so.
abi-mutant: core/libgannet.la
	@test -n "$(ABI_MUTANT)" || { echo "set ABI_MUTANT" >&2; exit 1; }
	$(AM_V_GEN)set -e; objs=; \
	for lo in $(core_libgannet_core_la_OBJECTS); do \
	  skip=; for s in $(ABI_MUTANT_SOURCES); do \
	    case "$$lo" in "$$(dirname $$s)/libgannet_core_la-$$(basename $$s .c).lo") skip=1;; esac; done; \
	  [ -n "$$skip" ] || objs="$$objs $$(dirname $$lo)/.libs/$$(basename $$lo .lo).o"; \
	done; \
	for s in $(ABI_MUTANT_SOURCES); do \
	  o='$(ABI_MUTANT)'/$$(echo "$$s" | tr / _ | sed 's/\.c$$/.o/'); \
	  $(CC) $(DEFS) -I'$(ABI_MUTANT)'/core/include $(DEFAULT_INCLUDES) $(INCLUDES) \
	    $(core_libgannet_core_la_CPPFLAGS) $(CPPFLAGS) $(core_libgannet_core_la_CFLAGS) \
	    $(CFLAGS) -g -fPIC -DPIC -c '$(ABI_MUTANT)'/"$$s" -o "$$o"; \
	  objs="$$objs $$o"; \
	done; \
	$(CC) -shared -fPIC $(CFLAGS) $(LDFLAGS) -Wl,-soname,libgannet.so.1 \
	  -Wl,--version-script='$(ABI_MUTANT)'/core/libgannet.map \
	  -o '$(ABI_MUTANT)'/libgannet.so $$objs $(DEP_LIBS)
.PHONY: abi-mutant

# A module with commands for the command line tests (t/integration/025-cli.t).
check_LTLIBRARIES += t/modules/clitest/clitest.la
t_modules_clitest_clitest_la_SOURCES = t/modules/clitest/clitest.c
t_modules_clitest_clitest_la_CFLAGS = $(GN_MODCC)
t_modules_clitest_clitest_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_clitest_clitest_la_LIBADD = core/libgannet.la

# A deliver.mailbox hook that fails some recipients after the end of data
# (t/integration/232-smtp-late-dsn.t).
check_LTLIBRARIES += t/modules/deliverfail/deliverfail.la
t_modules_deliverfail_deliverfail_la_SOURCES = t/modules/deliverfail/deliverfail.c
t_modules_deliverfail_deliverfail_la_CFLAGS = $(GN_MODCC)
t_modules_deliverfail_deliverfail_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_deliverfail_deliverfail_la_LIBADD = core/libgannet.la

# The service submission.v1 used as the webapi uses it
# (t/integration/224-submission-service.t).
check_LTLIBRARIES += t/modules/submittest/submittest.la
t_modules_submittest_submittest_la_SOURCES = t/modules/submittest/submittest.c
t_modules_submittest_submittest_la_CFLAGS = $(GN_MODCC)
t_modules_submittest_submittest_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_submittest_submittest_la_LIBADD = core/libgannet.la
