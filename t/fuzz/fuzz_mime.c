/*
 * t/fuzz/fuzz_mime.c: libFuzzer target for the MIME parser (core/mail/mime*.c).
 *
 * Besides not crashing (under AddressSanitizer and UBSan), every input
 * must give the same result whole and fed in chunks (the first input byte
 * picks the chunk size, the second the limits), and its JSON must read
 * back to the same JSON.  Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include "mail/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gannet/mime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t chunk = (size_t)data[0] % 17 + 1;
	struct gn_mime_limits lim;
	gn_mime_limits_init(&lim);
	if (data[1] & 1) {
		/* Small limits, so that the limit paths are reached. */
		lim.max_depth = 1 + data[1] % 5;
		lim.max_header_size = 16 + (size_t)data[1] * 4;
		lim.max_parts = 1 + data[1] % 7;
		lim.max_headers = 1 + data[1] % 9;
	}
	data += 2;
	size -= 2;

	struct gn_mime_message *whole = gn_mime_parse(data, size, &lim);
	struct gn_mime_parser *p = gn_mime_parser_new(&lim);
	for (size_t i = 0; i < size; i += chunk)
		gn_mime_parser_feed(p, data + i, size - i < chunk ? size - i : chunk);
	struct gn_mime_message *chunked;
	gn_mime_parser_finish(p, &chunked);
	gn_mime_parser_free(&p);

	char *j1 = gn_mime_to_json_string(whole);
	char *j2 = gn_mime_to_json_string(chunked);
	if (strcmp(j1, j2) != 0) {
		fprintf(stderr, "chunk %zu differs:\n%s\n%s\n", chunk, j1, j2);
		abort();
	}
	struct gn_mime_message *back;
	const char *error;
	if (gn_mime_from_json_string(j1, strlen(j1), &back, &error) < 0) {
		fprintf(stderr, "JSON does not read back: %s\n%s\n", error, j1);
		abort();
	}
	char *j3 = gn_mime_to_json_string(back);
	if (strcmp(j1, j3) != 0) {
		fprintf(stderr, "JSON round trip differs:\n%s\n%s\n", j1, j3);
		abort();
	}
	/* The header decoder and the date parser on the raw input. */
	struct gn_pool *pool = gn_pool_new();
	(void)gn_mime_decode_header(pool, (const char *)data, size);
	time_t t;
	(void)gn_mime_parse_date((const char *)data, size, &t);
	gn_pool_free(&pool);

	gn_free(j1);
	gn_free(j2);
	gn_free(j3);
	gn_mime_message_free(&whole);
	gn_mime_message_free(&chunked);
	gn_mime_message_free(&back);
	return 0;
}
