/*
 * t/unit/test_mailauth_header.c: the end of the header section found as a
 * message arrives in chunks (modules/mailauth/header.c): for messages
 * whose header ends at various places (an empty header, a CRLF CRLF
 * split across chunks at each of its bytes, no end), every way of cutting
 * the message into two and three chunks finds the same end as the whole
 * message read at once, and the bytes kept up to the end are the header.
 */
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "header.h"

/* The end found when msg arrives cut at the offsets cuts[0..ncuts),
 * keeping what inbound.c keeps: SIZE_MAX none. */
static size_t feed(const char *msg, size_t len, const size_t *cuts, size_t ncuts)
{
	char kept[512];
	size_t n = 0, from = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t to = c < ncuts ? cuts[c] : len;
		size_t e = mailauth_header_end(kept, n, msg + from, to - from);
		if (e != SIZE_MAX)
			return e;
		memcpy(kept + n, msg + from, to - from);
		n += to - from;
		from = to;
	}
	return SIZE_MAX;
}

int main(void)
{
	static const struct {
		const char *msg;
		size_t end;	/* SIZE_MAX: none */
		const char *name;
	} cases[] = {
		{ "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n", 31, "a header and a body" },
		{ "\r\nbody only\r\n", 0, "an empty header section" },
		{ "From: a@b.example\r\n\r\n", 19, "a header, an empty body" },
		{ "From: a@b.example\r\nSubject: no end\r\n", SIZE_MAX, "no empty line" },
		{ "From: a\r\n\r\n\r\n\r\nbody", 9, "the first empty line ends it" },
		{ "X: \n\r\n\r\r\n\r\nb", 9, "bare LF and CR are no line ends" },
		{ "", SIZE_MAX, "nothing" },
		{ "\r", SIZE_MAX, "one CR" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const char *m = cases[k].msg;
		size_t len = strlen(m);
		is_int((long long)feed(m, len, NULL, 0), (long long)cases[k].end, "%s: whole", cases[k].name);
		int bad2 = 0, bad3 = 0;
		for (size_t i = 0; i <= len; i++) {
			size_t c1[1] = { i };
			if (feed(m, len, c1, 1) != cases[k].end)
				bad2++;
			for (size_t j = i; j <= len; j++) {
				size_t c2[2] = { i, j };
				if (feed(m, len, c2, 2) != cases[k].end)
					bad3++;
			}
		}
		is_int(bad2, 0, "%s: cut in two at every offset", cases[k].name);
		is_int(bad3, 0, "%s: cut in three at every pair of offsets", cases[k].name);
	}
	/* The CRLF CRLF across a cut at each of its bytes, the cut late in
	 * a long header (the kept bytes' tail, not their start). */
	char big[400];
	memset(big, 'h', sizeof(big));
	memcpy(big, "X: ", 3);
	memcpy(big + 300, "\r\n\r\nbody", 8);
	for (size_t c = 299; c <= 305; c++) {
		size_t c1[1] = { c };
		is_int((long long)feed(big, 308, c1, 1), 302, "a long header cut at %zu", c);
	}
	return done_testing();
}
