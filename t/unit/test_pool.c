/*
 * t/unit/test_pool.c: pools and bounded buffers (core/base/mem.c), as every
 * caller sees them, in every build.
 *
 * The sanitizer build poisons the inside of pools and buffers
 * (t/unit/test_pool_asan.c checks that); this test pins down that nothing
 * else changed: objects are zeroed, aligned, never overlap, keep their
 * contents while others are carved next to them, large ones work, a
 * cleared pool is usable again, and buffers keep their limits and their
 * NUL.
 */
#include "base/internal.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Sizes that hit every case: tiny, the alignment and one either side,
 * half a block (a block of its own past it), and larger than a block. */
static size_t size_at(size_t i)
{
	static const size_t sizes[] = { 1, 7, 15, 16, 17, 24, 31, 32, 33, 100,
					2047, 2048, 2049, 3000, 4096, 5000 };
	return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void test_pool_objects(void)
{
	struct gn_pool *pool = gn_pool_new();
	enum { N = 400 };
	unsigned char *obj[N];
	size_t size[N];
	bool zeroed = true, aligned = true;

	for (size_t i = 0; i < N; i++) {
		size[i] = size_at(i * 7 + i / 16);
		obj[i] = gn_pool_alloc(pool, size[i]);
		for (size_t k = 0; k < size[i]; k++)
			zeroed &= obj[i][k] == 0;
		aligned &= (uintptr_t)obj[i] % _Alignof(max_align_t) == 0;
		/* Fill all of it: a neighbour that overlapped would change. */
		memset(obj[i], (int)(i % 251) + 1, size[i]);
	}
	ok(zeroed, "pool objects of %d sizes from 1 to 5000 bytes come zeroed", 16);
	ok(aligned, "every pool object is aligned for any type (%zu bytes)",
	   _Alignof(max_align_t));

	bool intact = true;
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < size[i]; k++)
			intact &= obj[i][k] == (unsigned char)((int)(i % 251) + 1);
	ok(intact, "%d objects filled to their last byte: none overwrote another", N);

	bool disjoint = true;
	for (size_t i = 0; i < N; i++)
		for (size_t j = i + 1; j < N; j++)
			disjoint &= obj[i] + size[i] <= obj[j] || obj[j] + size[j] <= obj[i];
	ok(disjoint, "no two objects share a byte");

	/* Small objects after a large one still come from the same small
	 * block: the large one got a block of its own. */
	struct gn_pool *p2 = gn_pool_new();
	char *s1 = gn_pool_alloc(p2, 16);
	(void)gn_pool_alloc(p2, 10000);
	char *s2 = gn_pool_alloc(p2, 16);
	ok(s2 > s1 && s2 - s1 < 4096, "a large object does not end the small objects' block");
	gn_pool_free(&p2);
	ok(p2 == NULL, "gn_pool_free sets the pointer to NULL");
	gn_pool_free(&p2);
	gn_pool_free(NULL);
	ok(true, "gn_pool_free accepts NULL and a NULL pool");

	gn_pool_clear(pool);
	unsigned char *again = gn_pool_alloc(pool, 64);
	bool zero = true;
	for (size_t k = 0; k < 64; k++)
		zero &= again[k] == 0;
	ok(zero, "after gn_pool_clear the pool hands out zeroed memory again");
	gn_pool_free(&pool);
}

static void test_pool_strings(void)
{
	struct gn_pool *pool = gn_pool_new();
	is_str(gn_pool_strdup(pool, "gannet"), "gannet", "gn_pool_strdup");
	is_str(gn_pool_strndup(pool, "gannet", 3), "gan", "gn_pool_strndup stops at n");
	is_str(gn_pool_strndup(pool, "ab", 10), "ab", "gn_pool_strndup stops at the NUL");
	is_str(gn_pool_printf(pool, "%s-%d", "x", 42), "x-42", "gn_pool_printf");
	char big[5000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *p = gn_pool_printf(pool, "<%s>", big);
	ok(strlen(p) == sizeof(big) + 1 && p[0] == '<' && p[sizeof(big)] == '>',
	   "gn_pool_printf of 5001 bytes (a block of its own)");
	is_str(gn_pool_printf(pool, "%s", ""), "", "gn_pool_printf of nothing");
	gn_pool_free(&pool);
}

static void test_buf(void)
{
	struct gn_buf *b = gn_buf_new(10);
	is_int(gn_buf_append_str(b, "hello"), 0, "append within the limit");
	is_int(gn_buf_append_str(b, "world!"), -1, "an append past the limit fails");
	is_str(gn_buf_data(b), "hello", "and leaves the buffer as it was");
	is_int(gn_buf_printf(b, "%d", 12345), 0, "printf up to the limit exactly");
	is_int((long long)gn_buf_len(b), 10, "length 10");
	is_int(gn_buf_printf(b, "x"), -1, "one more byte is refused");
	gn_buf_consume(b, 3);
	is_str(gn_buf_data(b), "lo12345", "consume drops the front");
	gn_buf_truncate(b, 2);
	is_str(gn_buf_data(b), "lo", "truncate cuts the end");
	gn_buf_truncate(b, 50);
	is_str(gn_buf_data(b), "lo", "truncate past the length changes nothing");
	gn_buf_consume(b, 100);
	ok(gn_buf_len(b) == 0 && gn_buf_data(b)[0] == '\0', "consume of more than all empties it");
	gn_buf_free(&b);
	ok(b == NULL, "gn_buf_free sets the pointer to NULL");

	/* Growth across many reallocations keeps every byte. */
	b = gn_buf_new(0);
	bool right = true;
	for (int i = 0; i < 5000; i++)
		right &= gn_buf_printf(b, "%c", 'a' + i % 26) == 0;
	for (size_t i = 0; i < gn_buf_len(b); i++)
		right &= gn_buf_data(b)[i] == 'a' + (int)(i % 26);
	ok(right && gn_buf_len(b) == 5000 && gn_buf_data(b)[5000] == '\0',
	   "a buffer grown to 5000 bytes one byte at a time keeps them, NUL-terminated");
	gn_buf_clear(b);
	ok(gn_buf_len(b) == 0 && gn_buf_data(b)[0] == '\0', "gn_buf_clear");
	gn_buf_append(b, "steal me", 8);
	char *s = gn_buf_steal(&b);
	is_str(s, "steal me", "gn_buf_steal hands over the data");
	ok(b == NULL, "and frees the buffer");
	/* The stolen string is the caller's, capacity and all. */
	s = gn_realloc(s, 100);
	memset(s + 8, 'z', 91);
	s[99] = '\0';
	is_int((long long)strlen(s), 99, "the stolen string can be grown and written");
	gn_free(s);
}

int main(void)
{
	test_pool_objects();
	test_pool_strings();
	test_buf();
	return done_testing();
}
