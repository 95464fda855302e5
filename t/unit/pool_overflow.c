/*
 * t/unit/pool_overflow.c: goes out of bounds inside a pool or a buffer on
 * purpose, for t/unit/test_pool_asan.c (built only with
 * --enable-sanitizers).
 *
 *   pool_overflow MODE
 *
 * Every access lands in memory that malloc() handed to the pool or buffer,
 * so AddressSanitizer can only report it because core/base/mem.c poisons
 * it; each mode then dies with ASan's report.  "none" does the same
 * allocations and touches only what is allowed, and exits 0: the check
 * that the test tells the two apart.
 */
#include "base/internal.h"

#include <stdio.h>
#include <string.h>

/* Accesses through volatile, so the compiler keeps them as written. */
static void poke(volatile unsigned char *p, long i)
{
	p[i] = 'x';
}

static unsigned char peek(volatile const char *p, long i)
{
	return (unsigned char)p[i];
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct gn_pool *pool = gn_pool_new();
	/* Neighbours in one block, then an object too large for a block,
	 * which gets one of its own. */
	unsigned char *a = gn_pool_alloc(pool, 24);
	unsigned char *b = gn_pool_alloc(pool, 32);
	unsigned char *c = gn_pool_alloc(pool, 32);
	unsigned char *big = gn_pool_alloc(pool, 5000);
	struct gn_buf *buf = gn_buf_new(0);
	gn_buf_append_str(buf, "0123456789");
	unsigned sum = 0;

	if (strcmp(mode, "none") == 0) {
		for (long i = 0; i < 24; i++)
			poke(a, i);
		for (long i = 0; i < 32; i++) {
			poke(b, i);
			poke(c, i);
		}
		poke(big, 4999);
		for (long i = 0; i <= 10; i++)	/* the NUL too */
			sum += peek(gn_buf_data(buf), i);
	} else if (strcmp(mode, "pool-next") == 0) {
		/* Write on from a into whatever follows, as an off-by-some
		 * copy would: the first byte past a's 24 is where it stops. */
		for (long i = 0; i < b - a + 1; i++)
			poke(a, i);
	} else if (strcmp(mode, "pool-exact") == 0) {
		/* b's size is a multiple of the alignment: its next byte would
		 * be c's first without a redzone. */
		poke(b, 32);
	} else if (strcmp(mode, "pool-before") == 0) {
		poke(c, -1);	/* the last byte before c */
	} else if (strcmp(mode, "pool-large") == 0) {
		poke(big, 5000);
	} else if (strcmp(mode, "pool-free-room") == 0) {
		/* Past the last object, in the block's room not yet handed out. */
		poke(c, 200);
	} else if (strcmp(mode, "buf-capacity") == 0) {
		/* Past the data and its NUL, inside the buffer's capacity. */
		sum += peek(gn_buf_data(buf), 11);
	} else if (strcmp(mode, "buf-consumed") == 0) {
		/* Bytes the buffer held before gn_buf_consume moved them. */
		gn_buf_consume(buf, 6);
		sum += peek(gn_buf_data(buf), 6);
	} else {
		fprintf(stderr, "pool_overflow: unknown mode \"%s\"\n", mode);
		return 2;
	}
	gn_buf_free(&buf);
	gn_pool_free(&pool);
	printf("survived %s (%u)\n", mode, sum);
	return 0;
}
