/*
 * t/fuzz/fuzz_imap_decode.c: libFuzzer target for the transfer decoders
 * of FETCH BINARY (modules/imap/decode.c).
 *
 * Besides not crashing (under AddressSanitizer and UBSan), the output must
 * be the same fed whole and in chunks (the first byte picks the encoding
 * and the chunk size), since FETCH sizes the literal with one pass and
 * streams it with another in other chunks; and it is never longer than
 * the input.  Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gn_buf *run(enum imap_cte cte, const uint8_t *in, size_t len, size_t step)
{
	struct imap_decoder d;
	imap_decoder_init(&d, cte);
	struct gn_buf *out = gn_buf_new(0);
	for (size_t i = 0; i < len; i += step)
		imap_decode(&d, in + i, len - i < step ? len - i : step, out);
	imap_decode_finish(&d, out);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum imap_cte cte = (enum imap_cte)(data[0] % 3);	/* identity, base64, QP */
	size_t step = 1 + (data[0] >> 2) % 17;
	data++;
	size--;
	struct gn_buf *whole = run(cte, data, size, size > 0 ? size : 1);
	struct gn_buf *chunked = run(cte, data, size, step);
	if (gn_buf_len(whole) != gn_buf_len(chunked) ||
	    memcmp(gn_buf_data(whole), gn_buf_data(chunked), gn_buf_len(whole)) != 0 ||
	    gn_buf_len(whole) > size)
		abort();
	gn_buf_free(&whole);
	gn_buf_free(&chunked);
	return 0;
}
