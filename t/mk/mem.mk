# t/mk/mem.mk: pools and bounded buffers (core/base/mem.c).
TESTPROGS += t/unit/test_pool
t_unit_test_pool_SOURCES = t/unit/test_pool.c
t_unit_test_pool_CPPFLAGS = $(UNITCPP)
t_unit_test_pool_CFLAGS = $(UNITCC)
t_unit_test_pool_LDADD = $(UNITLIBS)

# Only with --enable-sanitizers: ASan reports out-of-bounds accesses inside
# pools and buffers (pool_overflow makes them on purpose).
if GN_SANITIZERS
TESTPROGS += t/unit/test_pool_asan
t_unit_test_pool_asan_SOURCES = t/unit/test_pool_asan.c
t_unit_test_pool_asan_CPPFLAGS = $(UNITCPP)
t_unit_test_pool_asan_CFLAGS = $(UNITCC)
t_unit_test_pool_asan_LDADD = $(UNITLIBS)

check_PROGRAMS += t/unit/pool_overflow
t_unit_pool_overflow_SOURCES = t/unit/pool_overflow.c
t_unit_pool_overflow_CPPFLAGS = $(UNITCPP)
t_unit_pool_overflow_CFLAGS = $(UNITCC)
t_unit_pool_overflow_LDADD = $(UNITLIBS)
endif
