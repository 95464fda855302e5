/*
 * t/unit/test_compress.c: a connection's DEFLATE layer (core/net/compress.c)
 * against zlib itself as the peer: what the layer deflates inflates whole
 * after each flush, what the peer deflates comes back out, never more at
 * once than the room given (a decompression bomb stays bounded), corrupt
 * or ended streams are errors, and what the layer holds in memory.
 */
#include "net/internal.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The peer's side: raw DEFLATE, as an IMAP client has it. */
static z_stream peer_out, peer_in;

static size_t peer_deflate(const void *data, size_t len, int flush, unsigned char *out, size_t cap)
{
	peer_out.next_in = (Bytef *)data;
	peer_out.avail_in = (uInt)len;
	peer_out.next_out = out;
	peer_out.avail_out = (uInt)cap;
	(void)deflate(&peer_out, flush);
	return cap - peer_out.avail_out;
}

/* Inflates all of data; -1 on an error. */
static long peer_inflate(const void *data, size_t len, unsigned char *out, size_t cap)
{
	peer_in.next_in = (Bytef *)data;
	peer_in.avail_in = (uInt)len;
	peer_in.next_out = out;
	peer_in.avail_out = (uInt)cap;
	int r = inflate(&peer_in, Z_SYNC_FLUSH);
	if (r != Z_OK && r != Z_BUF_ERROR)
		return -1;
	return (long)(cap - peer_in.avail_out);
}

/* Feeds compressed bytes to z (as conn.c does) and inflates into dst with
 * at most room free each round, dst emptied between rounds by the
 * "handler"; returns the bytes inflated in all, -1 on an error.  *peak_r:
 * the most dst ever held. */
static long drain(struct net_zlib *z, const unsigned char *data, size_t len, size_t room,
		  struct gn_buf *seen, size_t *peak_r)
{
	struct gn_buf *dst = gn_buf_new(room);
	size_t off = 0;
	long total = 0;
	const char *error;
	*peak_r = 0;
	for (int rounds = 0; rounds < 1000000; rounds++) {
		size_t add = len - off < net_zlib_input_room(z) ? len - off : net_zlib_input_room(z);
		size_t got = 0;
		if (add > 0 && net_zlib_input_add(z, data + off, add) < 0)
			break;
		off += add;
		if (net_zlib_inflate(z, dst, room - gn_buf_len(dst), &got, &error) < 0) {
			diag("inflate: %s", error);
			gn_buf_free(&dst);
			return -1;
		}
		total += (long)got;
		if (gn_buf_len(dst) > *peak_r)
			*peak_r = gn_buf_len(dst);
		if (seen != NULL)
			(void)gn_buf_append(seen, gn_buf_data(dst), gn_buf_len(dst));
		gn_buf_clear(dst);
		if (off == len && !net_zlib_input_pending(z))
			break;
	}
	gn_buf_free(&dst);
	return total;
}

int main(void)
{
	const char *error;
	struct net_zlib *z;
	struct gn_buf *out, *seen;
	static unsigned char wire[1 << 20], plain[1 << 20];
	size_t peak;

	log_init("test_compress");
	memset(&peer_out, 0, sizeof(peer_out));
	memset(&peer_in, 0, sizeof(peer_in));
	if (deflateInit2(&peer_out, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
	    inflateInit2(&peer_in, -15) != Z_OK)
		return 1;

	z = net_zlib_new(0, Z_DEFAULT_COMPRESSION, &error);
	ok(z != NULL, "a DEFLATE layer");
	diag("memory when it starts: %zu bytes", net_zlib_memory(z));
	ok(net_zlib_memory(z) < 200 * 1024, "it holds less than 200 KiB when it starts (%zu)",
	   net_zlib_memory(z));

	/* ---- output ---- */
	out = gn_buf_new(1024 * 1024);
	ok(!net_zlib_output_dirty(z), "nothing to flush before anything is written");
	(void)net_zlib_deflate(z, "* OK hello\r\n", 12, out);
	(void)net_zlib_deflate(z, "a OK done\r\n", 11, out);
	is_int((long long)net_zlib_output_plain(z), 23, "the uncompressed bytes since the flush are counted");
	ok(net_zlib_output_dirty(z), "then a flush is due");
	ok(net_zlib_flush(z, out) == 0, "flush");
	is_int((long long)net_zlib_output_plain(z), 0, "and the count starts again");
	long n = peer_inflate(gn_buf_data(out), gn_buf_len(out), plain, sizeof(plain));
	ok(n == 23 && memcmp(plain, "* OK hello\r\na OK done\r\n", 23) == 0,
	   "after the flush the peer decodes everything written (%ld bytes)", n);
	gn_buf_clear(out);
	ok(net_zlib_flush(z, out) == 0 && gn_buf_len(out) == 0, "a flush with nothing written adds nothing");

	/* Much output: deflated as written, bounded by the buffer's limit. */
	struct gn_buf *small = gn_buf_new(64);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (unsigned char)(rand() & 0xff);
	ok(net_zlib_deflate(z, plain, sizeof(plain), small) < 0,
	   "1 MiB of noise into a 64-byte buffer: -1 (the output limit)");
	gn_buf_free(&small);
	net_zlib_free(&z);
	ok(z == NULL, "free sets the pointer to NULL");
	net_zlib_free(&z);

	/* ---- input ---- */
	z = net_zlib_new(0, Z_DEFAULT_COMPRESSION, &error);
	const char *cmds = "a NOOP\r\nb CAPABILITY\r\n";
	size_t w = peer_deflate(cmds, strlen(cmds), Z_SYNC_FLUSH, wire, sizeof(wire));
	seen = gn_buf_new(0);
	n = drain(z, wire, w, 4, seen, &peak);
	ok(n == (long)strlen(cmds) && strcmp(gn_buf_data(seen), cmds) == 0,
	   "the peer's commands come out whole, 4 bytes of room at a time");
	is_int((long long)peak, 4, "never more than the room given");
	ok(!net_zlib_input_pending(z), "and nothing is left pending");
	gn_buf_free(&seen);

	/* A bomb: 100 MB of one byte. */
	size_t bomb_len = 0, bomb_plain = 100u * 1000u * 1000u;
	unsigned char *bomb = malloc(1 << 20), *chunk = calloc(1, 1000 * 1000);
	memset(chunk, 'x', 1000 * 1000);
	for (size_t i = 0; i < bomb_plain / (1000 * 1000); i++)
		bomb_len += peer_deflate(chunk, 1000 * 1000, i + 1 == bomb_plain / (1000 * 1000) ?
					 Z_SYNC_FLUSH : Z_NO_FLUSH, bomb + bomb_len, (1 << 20) - bomb_len);
	diag("the bomb: %zu bytes for %zu", bomb_len, bomb_plain);
	n = drain(z, bomb, bomb_len, 64 * 1024, NULL, &peak);
	ok(n == (long)bomb_plain, "a 100 MB bomb inflates in full through 64 KiB of room (%ld)", n);
	ok(peak <= 64 * 1024, "the input buffer never held more than its limit (%zu)", peak);
	ok(net_zlib_memory(z) < 256 * 1024, "the layer holds %zu bytes after it", net_zlib_memory(z));
	free(bomb);
	free(chunk);

	/* Corrupt input. */
	struct gn_buf *dst = gn_buf_new(1024);
	size_t got;
	unsigned char junk[64];
	memset(junk, 0xff, sizeof(junk));
	(void)net_zlib_input_add(z, junk, sizeof(junk));
	int r = net_zlib_inflate(z, dst, 1024, &got, &error);
	ok(r < 0, "input that is not DEFLATE: -1 (%s)", r < 0 ? error : "-");
	net_zlib_free(&z);

	/* The peer ends its stream: nothing may follow. */
	z = net_zlib_new(0, Z_DEFAULT_COMPRESSION, &error);
	(void)deflateReset(&peer_out);
	w = peer_deflate("x", 1, Z_FINISH, wire, sizeof(wire));
	(void)net_zlib_input_add(z, wire, w);
	gn_buf_clear(dst);
	r = net_zlib_inflate(z, dst, 1024, &got, &error);
	ok(r < 0 && strstr(error, "ended") != NULL, "a stream the peer ended: -1 (%s)", r < 0 ? error : "-");
	net_zlib_free(&z);

	/* Compressed input buffered before the layer started (the peer's
	 * first command after COMPRESS) needs room for all of it. */
	z = net_zlib_new(100000, Z_DEFAULT_COMPRESSION, &error);
	ok(net_zlib_input_room(z) == 100000, "the input buffer takes what was buffered before");
	net_zlib_free(&z);

	gn_buf_free(&dst);
	gn_buf_free(&out);
	deflateEnd(&peer_out);
	inflateEnd(&peer_in);
	return done_testing();
}
