/*
 * gannet/mem.h: allocation, growable buffers with a hard limit, and pools.
 *
 * Out of memory is fatal inside these functions: callers never check for
 * NULL.  A gn_buf never grows past the limit it was created with; appends
 * that would pass it fail and leave the buffer as it was, so protocol code
 * turns them into a protocol error instead of an unbounded allocation.
 *
 * A gn_pool is an arena for per-connection and per-command memory: everything
 * allocated from it is freed at once by gn_pool_free() or gn_pool_clear().
 */
#ifndef GANNET_MEM_H
#define GANNET_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

void *gn_malloc(size_t size);
void *gn_calloc(size_t n, size_t size);
void *gn_realloc(void *p, size_t size);
char *gn_strdup(const char *s);
char *gn_strndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; never NULL. */
char *gn_strdup_printf(const char *fmt, ...) GN_PRINTF(1, 2);
void gn_free(void *p);

/* Growable byte buffer, always NUL-terminated after its data. */
struct gn_buf;

/* limit: the largest length the buffer may reach (0: SIZE_MAX / 2). */
struct gn_buf *gn_buf_new(size_t limit);
void gn_buf_free(struct gn_buf **buf);	/* accepts NULL and *buf == NULL */
/* Return 0, or -1 when the result would pass the limit (buffer unchanged). */
int gn_buf_append(struct gn_buf *buf, const void *data, size_t len);
int gn_buf_append_str(struct gn_buf *buf, const char *s);
int gn_buf_printf(struct gn_buf *buf, const char *fmt, ...) GN_PRINTF(2, 3);
int gn_buf_vprintf(struct gn_buf *buf, const char *fmt, va_list ap) GN_PRINTF(2, 0);
const char *gn_buf_data(const struct gn_buf *buf);
size_t gn_buf_len(const struct gn_buf *buf);
size_t gn_buf_limit(const struct gn_buf *buf);
/* Drops the first n bytes (all when n >= length). */
void gn_buf_consume(struct gn_buf *buf, size_t n);
void gn_buf_truncate(struct gn_buf *buf, size_t len);
void gn_buf_clear(struct gn_buf *buf);
/* Hands over the data as a NUL-terminated string owned by the caller and
 * frees the buffer. */
char *gn_buf_steal(struct gn_buf **buf);

/* Arena. */
struct gn_pool;

struct gn_pool *gn_pool_new(void);
void gn_pool_free(struct gn_pool **pool);	/* accepts NULL */
void gn_pool_clear(struct gn_pool *pool);	/* frees all, keeps the pool */
void *gn_pool_alloc(struct gn_pool *pool, size_t size);	/* zeroed */
char *gn_pool_strdup(struct gn_pool *pool, const char *s);
char *gn_pool_strndup(struct gn_pool *pool, const char *s, size_t n);
char *gn_pool_printf(struct gn_pool *pool, const char *fmt, ...) GN_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif
