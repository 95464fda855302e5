/*
 * core/base/mem.c: allocation that never returns NULL, bounded growable buffers,
 * and arenas (see gannet/mem.h).
 *
 * AddressSanitizer sees malloc() and free(), but not what a pool or a
 * buffer does inside one allocation: an overflow from one pool object into
 * the next, or a read of a buffer's capacity past its data, touches memory
 * that malloc() handed out and goes unreported.  In a build with ASan
 * (configure --enable-sanitizers, t/fuzz/build.sh) this file therefore
 * poisons what nobody may touch (ASAN_POISON_MEMORY_REGION): the free room
 * of every pool block, a redzone after every pool object, and a buffer's
 * capacity past its data and NUL.  Without ASan the macros are empty and
 * the redzone is 0, so the layout is the same as it always was.
 */
#include "base/internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* gcc says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif

#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* Poisoned bytes after every pool object, on top of the padding to the
 * next aligned address, so that even an object whose size is a multiple
 * of the alignment has a neighbour ASan can tell apart.  A multiple of
 * the alignment, so objects stay aligned as without it. */
#define POOL_REDZONE sizeof(max_align_t)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define POOL_REDZONE 0
#endif

static void oom(size_t size)
{
	/* Fatal by design: nothing sensible can continue without memory. */
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "fatal: out of memory allocating %zu bytes\n", size);
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	abort();
}

void *gn_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *gn_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *gn_realloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (q == NULL)
		oom(size);
	return q;
}

char *gn_strdup(const char *s)
{
	return gn_strndup(s, strlen(s));
}

char *gn_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = gn_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *gn_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom(strlen(fmt));
	va_end(ap);
	return s;
}

void gn_free(void *p)
{
	free(p);
}

/* ---- gn_buf ---- */

struct gn_buf {
	char *data;
	size_t len, cap, limit;	/* len < cap: there is always room for the NUL */
};

/* Under ASan, the capacity past the data and its NUL is out of bounds. */
static void buf_poison(const struct gn_buf *b)
{
	POISON(b->data + b->len + 1, b->cap - b->len - 1);
}

struct gn_buf *gn_buf_new(size_t limit)
{
	struct gn_buf *b = gn_calloc(1, sizeof(*b));
	b->limit = limit ? limit : SIZE_MAX / 2;
	b->cap = 64;
	b->data = gn_malloc(b->cap);
	b->data[0] = '\0';
	buf_poison(b);
	return b;
}

void gn_buf_free(struct gn_buf **buf)
{
	if (buf == NULL || *buf == NULL)
		return;
	UNPOISON((*buf)->data, (*buf)->cap);
	free((*buf)->data);
	free(*buf);
	*buf = NULL;
}

/* Makes room for len more bytes plus the NUL (and opens it to ASan: the
 * caller writes there, then calls buf_poison()); -1 past the limit. */
static int buf_reserve(struct gn_buf *b, size_t len)
{
	if (len > b->limit - b->len)
		return -1;
	size_t need = b->len + len + 1;
	if (need > b->cap) {
		size_t cap = b->cap;
		while (cap < need)
			cap = cap < SIZE_MAX / 2 ? cap * 2 : need;
		UNPOISON(b->data, b->cap);
		b->data = gn_realloc(b->data, cap);
		b->cap = cap;
	}
	UNPOISON(b->data + b->len, len + 1);
	return 0;
}

int gn_buf_append(struct gn_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	buf_poison(b);
	return 0;
}

int gn_buf_append_str(struct gn_buf *b, const char *s)
{
	return gn_buf_append(b, s, strlen(s));
}

int gn_buf_vprintf(struct gn_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	buf_poison(b);
	return 0;
}

int gn_buf_printf(struct gn_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

const char *gn_buf_data(const struct gn_buf *b)
{
	return b->data;
}

size_t gn_buf_len(const struct gn_buf *b)
{
	return b->len;
}

size_t gn_buf_limit(const struct gn_buf *b)
{
	return b->limit;
}

void gn_buf_consume(struct gn_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	b->data[b->len] = '\0';
	buf_poison(b);
}

void gn_buf_truncate(struct gn_buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
		buf_poison(b);
	}
}

void gn_buf_clear(struct gn_buf *b)
{
	gn_buf_truncate(b, 0);
}

char *gn_buf_steal(struct gn_buf **buf)
{
	char *s = (*buf)->data;
	UNPOISON(s, (*buf)->cap);	/* the caller's now, all of it */
	free(*buf);
	*buf = NULL;
	return s;
}

/* ---- gn_pool: a chain of blocks; large requests get a block of their
 * own.  Objects are carved one after the other, each rounded up to the
 * alignment (plus POOL_REDZONE under ASan); under ASan a block's data
 * starts poisoned and each object is opened to exactly its size. ---- */

#define POOL_BLOCK 4096

struct pool_block {
	struct pool_block *next;
	size_t used, size;
	max_align_t data[];
};

struct gn_pool {
	struct pool_block *blocks;
};

struct gn_pool *gn_pool_new(void)
{
	return gn_calloc(1, sizeof(struct gn_pool));
}

void gn_pool_clear(struct gn_pool *pool)
{
	struct pool_block *b = pool->blocks, *next;
	for (; b != NULL; b = next) {
		next = b->next;
		UNPOISON(b->data, b->size);	/* malloc's again */
		free(b);
	}
	pool->blocks = NULL;
}

void gn_pool_free(struct gn_pool **pool)
{
	if (pool == NULL || *pool == NULL)
		return;
	gn_pool_clear(*pool);
	free(*pool);
	*pool = NULL;
}

void *gn_pool_alloc(struct gn_pool *pool, size_t size)
{
	const size_t align = sizeof(max_align_t);
	if (size > SIZE_MAX - 2 * align - POOL_REDZONE - sizeof(struct pool_block))
		oom(size);
	/* The room the object takes in its block: aligned, then the redzone. */
	size_t room = (size + align - 1) / align * align + POOL_REDZONE;
	struct pool_block *b = pool->blocks;
	if (b == NULL || b->size - b->used < room) {
		size_t bsize = room > POOL_BLOCK / 2 ? room : POOL_BLOCK;
		b = gn_malloc(sizeof(*b) + bsize);
		b->size = bsize;
		b->used = 0;
		POISON(b->data, bsize);
		if (room > POOL_BLOCK / 2 && pool->blocks != NULL) {
			/* Keep the current small block in front. */
			b->next = pool->blocks->next;
			pool->blocks->next = b;
		} else {
			b->next = pool->blocks;
			pool->blocks = b;
		}
	}
	void *p = (char *)b->data + b->used;
	b->used += room;
	UNPOISON(p, size);
	memset(p, 0, size);
	return p;
}

char *gn_pool_strndup(struct gn_pool *pool, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = gn_pool_alloc(pool, len + 1);
	memcpy(p, s, len);
	return p;
}

char *gn_pool_strdup(struct gn_pool *pool, const char *s)
{
	return gn_pool_strndup(pool, s, strlen(s));
}

/* Said again with nonnull: gcc 12 with -fsanitize=undefined otherwise
 * warns of a "null format string" on the path UBSan adds for a NULL fmt,
 * which --enable-werror makes an error. */
char *gn_pool_printf(struct gn_pool *pool, const char *fmt, ...) __attribute__((nonnull(2)));

char *gn_pool_printf(struct gn_pool *pool, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		n = 0;
	char *p = gn_pool_alloc(pool, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
