/*
 * core/net/compress.c: a connection's DEFLATE layer (gn_conn_compress_start()).
 *
 * Both directions are raw DEFLATE streams (RFC 1951: no zlib or gzip
 * framing), as IMAP COMPRESS=DEFLATE (RFC 4978) and NNTP COMPRESS (RFC
 * 8054) use them.  conn.c keeps the socket and the two buffers; this file
 * only turns bytes into bytes:
 *
 *   input   compressed bytes from the socket (or TLS) wait in a small
 *           buffer of their own; net_zlib_inflate() expands them into the
 *           connection's input buffer, never more than the room the caller
 *           names.  A peer that sends a few bytes expanding to gigabytes
 *           (a decompression bomb) so only ever fills the input buffer to
 *           its limit, and is refused the way any over-long input is.
 *   output  written bytes are deflated into the output buffer as they
 *           come; net_zlib_flush() ends a batch with Z_SYNC_FLUSH (RFC 4978
 *           4) so that the peer can decode everything sent so far.
 *
 * zlib's memory comes from gn_malloc() (out of memory is fatal there, as
 * everywhere in the core) and is counted, for the log and for tests.
 */
#include "net/internal.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <zlib.h>

/* -15: raw DEFLATE with the full 32 KiB window, which a peer's compressor
 * may use (RFC 1951 3.2.5), so inflating needs it; deflating could use
 * less but then compresses worse.  memLevel 5 instead of zlib's default 8:
 * 16 KiB of hash and literal buffers instead of 128 KiB, for slightly
 * worse compression of mail text. */
#define ZLIB_WINDOW_BITS (-15)
#define ZLIB_MEM_LEVEL 5
#define ZLIB_CHUNK 16384u

struct net_zlib {
	z_stream in, out;
	bool in_ready, out_ready;	/* inflateInit2/deflateInit2 done */
	struct gn_buf *raw;	/* compressed input not yet inflated */
	/* inflate() filled the room it had: it may hold more output. */
	bool in_more;
	/* Output deflated since the last flush, and its uncompressed size. */
	bool out_dirty;
	size_t out_plain;
	size_t mem;		/* bytes zlib holds */
};

/* Each block zlib allocates carries its size in front, so that freeing it
 * can be counted. */
union zblock {
	size_t size;
	max_align_t align;
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	struct net_zlib *z = opaque;
	size_t n = (size_t)items * (size_t)size;
	union zblock *b = gn_malloc(sizeof(*b) + n);
	b->size = n;
	z->mem += n;
	return b + 1;
}

static void z_free(voidpf opaque, voidpf p)
{
	struct net_zlib *z = opaque;
	union zblock *b;
	if (p == NULL)
		return;
	b = (union zblock *)p - 1;
	z->mem -= b->size;
	gn_free(b);
}

struct net_zlib *net_zlib_new(size_t raw_limit, int level, const char **error_r)
{
	struct net_zlib *z = gn_calloc(1, sizeof(*z));

	z->in.zalloc = z->out.zalloc = z_alloc;
	z->in.zfree = z->out.zfree = z_free;
	z->in.opaque = z->out.opaque = z;
	if (inflateInit2(&z->in, ZLIB_WINDOW_BITS) != Z_OK) {
		*error_r = "inflateInit2 failed";
		net_zlib_free(&z);
		return NULL;
	}
	z->in_ready = true;
	if (deflateInit2(&z->out, level, Z_DEFLATED, ZLIB_WINDOW_BITS, ZLIB_MEM_LEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		*error_r = "deflateInit2 failed";
		net_zlib_free(&z);
		return NULL;
	}
	z->out_ready = true;
	z->raw = gn_buf_new(raw_limit > ZLIB_CHUNK ? raw_limit : ZLIB_CHUNK);
	return z;
}

void net_zlib_free(struct net_zlib **zp)
{
	struct net_zlib *z;
	if (zp == NULL || *zp == NULL)
		return;
	z = *zp;
	*zp = NULL;
	if (z->in_ready)
		(void)inflateEnd(&z->in);
	if (z->out_ready)
		(void)deflateEnd(&z->out);
	gn_buf_free(&z->raw);
	gn_free(z);
}

size_t net_zlib_input_room(const struct net_zlib *z)
{
	return gn_buf_limit(z->raw) - gn_buf_len(z->raw);
}

int net_zlib_input_add(struct net_zlib *z, const void *data, size_t len)
{
	return gn_buf_append(z->raw, data, len);
}

bool net_zlib_input_pending(const struct net_zlib *z)
{
	return gn_buf_len(z->raw) > 0 || z->in_more;
}

int net_zlib_inflate(struct net_zlib *z, struct gn_buf *dst, size_t max, size_t *got_r,
		     const char **error_r)
{
	unsigned char tmp[ZLIB_CHUNK];

	*got_r = 0;
	while (max > 0) {
		size_t n = max < sizeof(tmp) ? max : sizeof(tmp);
		size_t avail = gn_buf_len(z->raw);
		size_t given = avail < UINT_MAX ? avail : UINT_MAX;
		size_t used, made;
		int r;

		z->in.next_in = (Bytef *)gn_buf_data(z->raw);
		z->in.avail_in = (uInt)given;
		z->in.next_out = tmp;
		z->in.avail_out = (uInt)n;
		r = inflate(&z->in, Z_SYNC_FLUSH);
		used = given - z->in.avail_in;
		made = n - z->in.avail_out;
		gn_buf_consume(z->raw, used);
		if (made > 0 && gn_buf_append(dst, tmp, made) < 0) {
			*error_r = "inflated input past the buffer's limit";
			return -1;
		}
		*got_r += made;
		max -= made;
		z->in_more = z->in.avail_out == 0;
		if (r == Z_STREAM_END) {
			/* RFC 4978 has no end of compression but the end of
			 * the connection: nothing may follow. */
			*error_r = "the peer ended its compressed stream";
			return -1;
		}
		if (r == Z_BUF_ERROR) {
			/* No progress possible: more input is needed. */
			z->in_more = false;
			break;
		}
		if (r != Z_OK) {
			*error_r = z->in.msg != NULL ? z->in.msg : "inflate failed";
			return -1;
		}
		if (z->in.avail_out > 0)
			break;	/* all it had is out */
	}
	return 0;
}

/* Feeds data (may be none) to deflate() with flush, appending what comes
 * out to out.  -1 when out's limit would be passed. */
static int deflate_into(struct net_zlib *z, const unsigned char *data, size_t len, int flush,
			struct gn_buf *out)
{
	unsigned char tmp[ZLIB_CHUNK];

	for (;;) {
		size_t part = len < UINT_MAX ? len : UINT_MAX;
		int r;

		z->out.next_in = (Bytef *)data;
		z->out.avail_in = (uInt)part;
		z->out.next_out = tmp;
		z->out.avail_out = sizeof(tmp);
		r = deflate(&z->out, part < len ? Z_NO_FLUSH : flush);
		data += part - z->out.avail_in;
		len -= part - z->out.avail_in;
		if (sizeof(tmp) - z->out.avail_out > 0 &&
		    gn_buf_append(out, tmp, sizeof(tmp) - z->out.avail_out) < 0)
			return -1;
		/* Z_BUF_ERROR: nothing to do (no input, nothing held). */
		if (r != Z_OK && r != Z_BUF_ERROR)
			return -1;
		if (len == 0 && z->out.avail_out > 0)
			return 0;
	}
}

int net_zlib_deflate(struct net_zlib *z, const void *data, size_t len, struct gn_buf *out)
{
	if (len == 0)
		return 0;
	z->out_dirty = true;
	z->out_plain += len;
	return deflate_into(z, data, len, Z_NO_FLUSH, out);
}

int net_zlib_flush(struct net_zlib *z, struct gn_buf *out)
{
	if (!z->out_dirty)
		return 0;
	z->out_dirty = false;
	z->out_plain = 0;
	return deflate_into(z, NULL, 0, Z_SYNC_FLUSH, out);
}

bool net_zlib_output_dirty(const struct net_zlib *z)
{
	return z->out_dirty;
}

size_t net_zlib_output_plain(const struct net_zlib *z)
{
	return z->out_plain;
}

size_t net_zlib_memory(const struct net_zlib *z)
{
	return z->mem + sizeof(*z) + gn_buf_limit(z->raw);
}
