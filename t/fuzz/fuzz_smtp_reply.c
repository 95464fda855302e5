/*
 * t/fuzz/fuzz_smtp_reply.c: libFuzzer target for the SMTP client's reply
 * parser and DATA encoder (core/smtp/client-reply.c).
 *
 * The input is a server's byte stream.  Besides not crashing (under
 * AddressSanitizer and UBSan): the replies found must be the same fed
 * whole and in chunks (the first byte picks the chunk size, and small
 * limits on line length and line count so that the limit paths run),
 * since the client gets whatever the socket gives.  The same bytes as a
 * message through the DATA encoder, whole and in chunks, must give the
 * same output, with CRLF line ends only, no line that is a lone period
 * before the end, and the end ".CRLF".  Build and run: t/fuzz/build.sh,
 * t/fuzz/README.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every reply as "code enhanced text\n", then "error\n" if one stopped it. */
static struct gn_buf *replies(const uint8_t *in, size_t len, size_t step, size_t max_line,
			      unsigned max_lines)
{
	struct smtp_reply_parser p;
	struct gn_buf *out = gn_buf_new(0);
	size_t off = 0;

	smtp_reply_parser_init(&p, max_line, max_lines);
	while (off < len) {
		size_t k = len - off < step ? len - off : step, used;
		const char *error;
		int r = smtp_reply_parse(&p, (const char *)in + off, k, &used, &error);
		if (r < 0) {
			gn_buf_append_str(out, "error\n");
			break;
		}
		if (r > 0)
			gn_buf_printf(out, "%d %s %zu:", p.code, p.enhanced, gn_buf_len(p.text));
		if (r > 0)
			gn_buf_append(out, gn_buf_data(p.text), gn_buf_len(p.text));
		off += used;
	}
	smtp_reply_parser_deinit(&p);
	return out;
}

static struct gn_buf *encode(const uint8_t *in, size_t len, size_t step)
{
	struct smtp_dot d;
	struct gn_buf *out = gn_buf_new(0);
	memset(&d, 0, sizeof(d));
	for (size_t i = 0; i < len; i += step)
		smtp_dot_encode(&d, (const char *)in + i, len - i < step ? len - i : step, out);
	smtp_dot_finish(&d, out);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = 1 + data[0] % 31;
	bool small = (data[0] & 0x80) != 0;
	size_t max_line = small ? 16 + data[0] % 64 : 0;
	unsigned max_lines = small ? 1 + data[0] % 5 : 0;
	data++;
	size--;

	struct gn_buf *whole = replies(data, size, size > 0 ? size : 1, max_line, max_lines);
	struct gn_buf *chunked = replies(data, size, step, max_line, max_lines);
	if (gn_buf_len(whole) != gn_buf_len(chunked) ||
	    memcmp(gn_buf_data(whole), gn_buf_data(chunked), gn_buf_len(whole)) != 0)
		abort();
	gn_buf_free(&whole);
	gn_buf_free(&chunked);

	whole = encode(data, size, size > 0 ? size : 1);
	chunked = encode(data, size, step);
	if (gn_buf_len(whole) != gn_buf_len(chunked) ||
	    memcmp(gn_buf_data(whole), gn_buf_data(chunked), gn_buf_len(whole)) != 0)
		abort();
	{
		const char *s = gn_buf_data(whole);
		size_t n = gn_buf_len(whole), bol = 0;
		if (n < 3 || memcmp(s + n - 3, ".\r\n", 3) != 0)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
				abort();	/* bare CR */
			if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
				abort();	/* bare LF */
			if (s[i] == '\n') {
				/* A lone "." line before the end would end the
				 * message early. */
				if (i + 1 < n && i - bol == 2 && s[bol] == '.')
					abort();
				bol = i + 1;
			}
		}
	}
	gn_buf_free(&whole);
	gn_buf_free(&chunked);
	return 0;
}
