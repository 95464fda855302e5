/*
 * t/unit/test_imap_section.c: what FETCH uses for the parts of a message
 * (modules/imap/fetch-section.c): the transfer decoders of BINARY, fed in
 * one piece and byte by byte (the same bytes must come out, whatever the
 * chunks), on known vectors and on garbage; section numbers; the part a
 * section names (RFC 9051 6.4.5).
 */
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/imap.h"

/* Decodes in chunks of step bytes (0: all at once); from pool. */
static char *decode(struct gn_pool *pool, enum imap_cte cte, const char *in, size_t len, size_t step,
		    size_t *out_len)
{
	struct imap_decoder d;
	imap_decoder_init(&d, cte);
	struct gn_buf *out = gn_buf_new(0);
	if (step == 0)
		step = len > 0 ? len : 1;
	for (size_t i = 0; i < len; i += step)
		imap_decode(&d, in + i, len - i < step ? len - i : step, out);
	imap_decode_finish(&d, out);
	*out_len = gn_buf_len(out);
	char *r = gn_pool_alloc(pool, *out_len + 1);
	memcpy(r, gn_buf_data(out), *out_len);
	gn_buf_free(&out);
	return r;
}

static void check(struct gn_pool *pool, enum imap_cte cte, const char *in, const char *want, size_t want_len,
		  const char *name)
{
	size_t n1, n2;
	char *whole = decode(pool, cte, in, strlen(in), 0, &n1);
	char *bytes = decode(pool, cte, in, strlen(in), 1, &n2);
	ok(n1 == want_len && memcmp(whole, want, want_len) == 0, "%s", name);
	ok(n2 == n1 && memcmp(whole, bytes, n1) == 0, "%s: the same byte by byte", name);
}

static void test_vectors(void)
{
	struct gn_pool *pool = gn_pool_new();
	check(pool, IMAP_CTE_BASE64, "aGVsbG8gd29ybGQ=", "hello world", 11, "base64");
	check(pool, IMAP_CTE_BASE64, "aGVs\r\nbG8g\r\nd29y bGQ=\r\n", "hello world", 11,
	      "base64: line breaks and spaces ignored");
	check(pool, IMAP_CTE_BASE64, "AAEC/w==", "\x00\x01\x02\xff", 4, "base64: NUL and 0xff");
	check(pool, IMAP_CTE_BASE64, "a*G!V@s#b$G%8", "hello", 5, "base64: characters outside the alphabet ignored");
	check(pool, IMAP_CTE_BASE64, "", "", 0, "base64: nothing");
	check(pool, IMAP_CTE_QP, "Caf=C3=A9 =3D x", "Caf\xc3\xa9 = x", 9, "quoted-printable: =XX");
	check(pool, IMAP_CTE_QP, "soft=\r\nbreak=\nhere", "softbreakhere", 13, "soft line breaks (CRLF, LF)");
	check(pool, IMAP_CTE_QP, "trailing  \r\nspace\t\nend  ", "trailing\r\nspace\nend", 19,
	      "white space at the end of a line goes (RFC 2045 6.7 (3))");
	check(pool, IMAP_CTE_QP, "a = b  c", "a = b  c", 8, "white space inside a line stays, a bare = too");
	check(pool, IMAP_CTE_QP, "soft=  \r\nnext", "softnext", 8, "a soft break with white space after the =");
	check(pool, IMAP_CTE_QP, "=4=ZZ=", "=4=ZZ=", 6, "broken escapes are kept");
	check(pool, IMAP_CTE_QP, "x=e9y", "x\xe9y", 3, "lower-case hex accepted");
	check(pool, IMAP_CTE_QP, "cr\ralone\r", "cr\ralone\r", 9, "a bare CR is kept");
	check(pool, IMAP_CTE_IDENTITY, "as =3D is\r\n", "as =3D is\r\n", 11, "identity: as it is");
	gn_pool_free(&pool);
}

/* Garbage: whatever the chunks, the same output, and never a crash. */
static void test_garbage(void)
{
	struct gn_pool *pool = gn_pool_new();
	unsigned seed = 1;
	bool same = true;
	char in[512];
	for (int round = 0; round < 2000 && same; round++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(in));
		for (size_t i = 0; i < len; i++) {
			/* Mostly the characters the decoders care about. */
			static const char interesting[] = "=\r\n \tAZaz09+/-x\x00\xff";
			in[i] = rand_r(&seed) % 3 ? interesting[rand_r(&seed) % (sizeof(interesting) - 1)]
						  : (char)rand_r(&seed);
		}
		for (int c = IMAP_CTE_IDENTITY; c <= IMAP_CTE_QP; c++) {
			size_t n1, n2;
			size_t step = 1 + (size_t)(rand_r(&seed) % 7);
			char *a = decode(pool, (enum imap_cte)c, in, len, 0, &n1);
			char *b = decode(pool, (enum imap_cte)c, in, len, step, &n2);
			if (n1 != n2 || memcmp(a, b, n1) != 0 || n1 > len) {
				diag("round %d, encoding %d, step %zu differs", round, c, step);
				same = false;
			}
		}
		gn_pool_clear(pool);
	}
	ok(same, "2000 garbage inputs decode the same in any chunks, never longer than the input");
	gn_pool_free(&pool);
}

static void test_paths(void)
{
	struct gn_pool *pool = gn_pool_new();
	uint32_t *nums;
	size_t depth;
	const char *rest;
	ok(imap_section_parse_path(pool, "1.2.3", &nums, &depth, &rest) == 0 && depth == 3 && nums[0] == 1 &&
	   nums[2] == 3 && *rest == '\0', "1.2.3");
	ok(imap_section_parse_path(pool, "2.HEADER.FIELDS (A)", &nums, &depth, &rest) == 0 && depth == 1 &&
	   strcmp(rest, "HEADER.FIELDS (A)") == 0, "2.HEADER.FIELDS (A)");
	ok(imap_section_parse_path(pool, "TEXT", &nums, &depth, &rest) == 0 && depth == 0 &&
	   strcmp(rest, "TEXT") == 0, "TEXT: no numbers");
	ok(imap_section_parse_path(pool, "0", &nums, &depth, &rest) < 0, "0 is no part number");
	ok(imap_section_parse_path(pool, "1.01", &nums, &depth, &rest) < 0, "nor 01");
	ok(imap_section_parse_path(pool, "1.", &nums, &depth, &rest) < 0, "1. is incomplete");
	ok(imap_section_parse_path(pool, "4294967296", &nums, &depth, &rest) < 0, "past 32 bits");
	ok(imap_section_parse_path(pool, "4294967295", &nums, &depth, &rest) == 0 && nums[0] == 4294967295u,
	   "4294967295");
	struct gn_buf *deep = gn_buf_new(0);
	for (int i = 0; i <= IMAP_SECTION_MAX_DEPTH; i++)
		(void)gn_buf_append_str(deep, i > 0 ? ".1" : "1");
	ok(imap_section_parse_path(pool, gn_buf_data(deep), &nums, &depth, &rest) < 0, "too many numbers");
	gn_buf_free(&deep);
	gn_pool_free(&pool);
}

static void test_parts(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
		"--o\r\nContent-Type: text/plain\r\n\r\none\r\n"
		"--o\r\nContent-Type: message/rfc822\r\n\r\n"
		"Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
		"--i\r\n\r\ninner one\r\n--i\r\n\r\ninner two\r\n--i--\r\n"
		"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: single\r\n\r\nsingle body\r\n"
		"--o--\r\n";
	struct gn_mime_message *m = gn_mime_parse(msg, sizeof(msg) - 1, NULL);
	static const struct {
		uint32_t nums[4];
		size_t depth;
		const char *body;	/* NULL: no such part */
		const char *name;
	} cases[] = {
		{ { 1 }, 1, "one", "1" },
		{ { 2, 1 }, 2, "inner one", "2.1" },
		{ { 2, 2 }, 2, "inner two", "2.2" },
		{ { 2, 3 }, 2, NULL, "2.3" },
		{ { 3, 1 }, 2, "single body", "3.1" },	/* the single-part message's body */
		{ { 3, 2 }, 2, NULL, "3.2" },
		{ { 1, 1 }, 2, NULL, "1.1" },		/* below a leaf */
		{ { 4 }, 1, NULL, "4" },
		{ { 2, 1, 1 }, 3, NULL, "2.1.1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct gn_mime_part *p = imap_section_part(m, cases[i].nums, cases[i].depth);
		const char *name = cases[i].name;
		if (cases[i].body == NULL) {
			ok(p == NULL, "part %s does not exist", name);
			continue;
		}
		size_t off = p != NULL ? gn_mime_part_body_offset(p) : 0, len = p != NULL ? gn_mime_part_body_size(p) : 0;
		ok(p != NULL && len == strlen(cases[i].body) && memcmp(msg + off, cases[i].body, len) == 0,
		   "part %s is \"%s\"", name, cases[i].body);
	}
	ok(imap_section_part(m, NULL, 0) == gn_mime_message_root(m), "no numbers: the message");
	ok(imap_section_rfc822_message(imap_section_part(m, (const uint32_t[]){ 2 }, 1)) != NULL,
	   "part 2 holds a message");
	ok(imap_section_rfc822_message(imap_section_part(m, (const uint32_t[]){ 1 }, 1)) == NULL,
	   "part 1 does not");
	gn_mime_message_free(&m);

	struct gn_mime_message *single = gn_mime_parse("Subject: x\r\n\r\nbody\r\n", 19, NULL);
	const struct gn_mime_part *p = imap_section_part(single, (const uint32_t[]){ 1 }, 1);
	ok(p == gn_mime_message_root(single), "part 1 of a single-part message is its body");
	ok(imap_section_part(single, (const uint32_t[]){ 2 }, 1) == NULL, "it has no part 2");
	gn_mime_message_free(&single);
}

int main(void)
{
	test_vectors();
	test_garbage();
	test_paths();
	test_parts();
	return done_testing();
}
