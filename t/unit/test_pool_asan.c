/*
 * t/unit/test_pool_asan.c: AddressSanitizer sees inside pools and buffers
 * (core/base/mem.c).  Built and run only with --enable-sanitizers
 * (t/mk/mem.mk): without ASan there is nothing to report.
 *
 * Two ways: the shadow memory itself (which bytes ASan takes as poisoned
 * after each pool and buffer operation), and t/unit/pool_overflow, which
 * goes out of bounds on purpose, once per way of doing it: each run must
 * die with ASan's report, and its "none" run, touching only what it may,
 * must not.
 */
#include "base/internal.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/asan_interface.h>
#include <sys/wait.h>
#include <unistd.h>

static bool poisoned(const void *p)
{
	return __asan_address_is_poisoned(p) != 0;
}

/* Whether [p, p + n) is open and the byte after it poisoned. */
static bool exactly_open(const void *p, size_t n)
{
	return __asan_region_is_poisoned((void *)(uintptr_t)p, n) == NULL &&
	       poisoned((const char *)p + n);
}

static void test_shadow(void)
{
	struct gn_pool *pool = gn_pool_new();
	bool all = true;
	char *prev = NULL;
	size_t prev_n = 0;
	for (size_t n = 1; n <= 70; n++) {
		char *p = gn_pool_alloc(pool, n);
		all &= exactly_open(p, n);
		if (prev != NULL)
			all &= exactly_open(prev, prev_n);	/* still */
		prev = p;
		prev_n = n;
	}
	ok(all, "pool objects of 1 to 70 bytes: each open to its size, the next byte poisoned");
	char *big = gn_pool_alloc(pool, 10000);
	ok(exactly_open(big, 10000), "a large object: open to its size, poisoned after");
	char *s = gn_pool_strdup(pool, "gannet");
	ok(exactly_open(s, 7), "gn_pool_strdup: the string and its NUL, no more");
	gn_pool_free(&pool);

	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "hello");
	const char *d = gn_buf_data(b);
	ok(exactly_open(d, 6), "a buffer: its data and NUL open, the capacity after them poisoned");
	gn_buf_printf(b, "%s", ", world");
	d = gn_buf_data(b);
	ok(exactly_open(d, 13), "after printf: open to the new NUL");
	gn_buf_consume(b, 7);
	d = gn_buf_data(b);
	ok(exactly_open(d, 6), "after consume: the moved-out bytes are poisoned again");
	gn_buf_truncate(b, 2);
	ok(exactly_open(d, 3), "after truncate: likewise");
	for (int i = 0; i < 200; i++)
		gn_buf_append(b, "x", 1);
	d = gn_buf_data(b);
	ok(exactly_open(d, 203), "after growing: the reallocated capacity is poisoned past the NUL");
	gn_buf_clear(b);
	ok(exactly_open(gn_buf_data(b), 1), "after clear: only the NUL is open");
	gn_buf_append_str(b, "mine");
	char *stolen = gn_buf_steal(&b);
	ok(__asan_region_is_poisoned(stolen, 64) == NULL,
	   "gn_buf_steal hands over the whole capacity unpoisoned");
	gn_free(stolen);
}

/* Runs pool_overflow MODE; its stderr into *err_r (malloc'd), returns the
 * wait status. */
static int run(const char *mode, char **err_r)
{
	const char *builddir = getenv("GANNET_BUILDDIR");
	char *prog = gn_strdup_printf("%s/t/unit/pool_overflow", builddir != NULL ? builddir : ".");
	int fds[2];
	if (pipe(fds) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execl(prog, prog, mode, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	struct gn_buf *err = gn_buf_new(1024 * 1024);
	char chunk[4096];
	ssize_t n;
	while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		(void)gn_buf_append(err, chunk, (size_t)n);
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	gn_free(prog);
	*err_r = gn_buf_steal(&err);
	return status;
}

static void expect_report(const char *mode, const char *what)
{
	char *err;
	int status = run(mode, &err);
	bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	bool report = strstr(err, "ERROR: AddressSanitizer: use-after-poison") != NULL;
	if (!ok(failed && report, "%s: ASan reports it and the program fails (%s)", what, mode))
		diag("status %d, stderr:\n%s", status, err);
	gn_free(err);
}

int main(void)
{
	test_shadow();

	char *err;
	int status = run("none", &err);
	if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(err, "AddressSanitizer") == NULL,
		"in bounds: the same allocations, touched where allowed, run clean"))
		diag("status %d, stderr:\n%s", status, err);
	gn_free(err);

	expect_report("pool-next", "writing on from one pool object into the next");
	expect_report("pool-exact", "one byte past an object whose size is a multiple of the alignment");
	expect_report("pool-before", "one byte before a pool object");
	expect_report("pool-large", "one byte past a large pool object (a block of its own)");
	expect_report("pool-free-room", "a write into the part of a pool block not yet handed out");
	expect_report("buf-capacity", "a read of a buffer past its NUL, inside its capacity");
	expect_report("buf-consumed", "a read of bytes a buffer consumed");
	return done_testing();
}
