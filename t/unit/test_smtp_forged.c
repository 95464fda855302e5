/*
 * t/unit/test_smtp_forged.c: the smtp module's renaming of incoming
 * Authentication-Results fields that carry our authserv-id (RFC 8601 5;
 * modules/smtp/forged.c): only those fields, whatever the chunks' borders
 * (every split of a message in two and in three), the body untouched, a
 * message without a body, a header past the limit passed as it came.
 */
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forged.h"

static int collect(void *ctx, const char *buf, size_t len)
{
	(void)gn_buf_append(ctx, buf, len);
	return 0;
}

/* msg fed in chunks cut at the offsets (n of them), then flushed. */
static char *run(const char *msg, size_t len, const size_t *cuts, size_t n, unsigned *renamed_r)
{
	struct forged_filter f;
	struct gn_buf *out = gn_buf_new(0);
	size_t at = 0;
	memset(&f, 0, sizeof(f));
	for (size_t i = 0; i <= n; i++) {
		size_t end = i < n ? cuts[i] : len;
		(void)smtp_forged_write(&f, collect, out, "mx.example", msg + at, end - at);
		at = end;
	}
	(void)smtp_forged_flush(&f, collect, out, "mx.example");
	if (renamed_r != NULL)
		*renamed_r = f.renamed;
	smtp_forged_reset(&f);
	char *s = gn_strdup(gn_buf_len(out) > 0 ? gn_buf_data(out) : "");
	if (strlen(s) != gn_buf_len(out)) {
		gn_free(s);
		s = gn_strdup("(NUL in output)");
	}
	gn_buf_free(&out);
	return s;
}

static const char msg[] =
	"Received: from x\r\n"
	"Authentication-Results: MX.EXAMPLE; spf=pass\r\n"
	"Authentication-Results: other.example; spf=pass\r\n"
	"authentication-results : (c (nested)) mx.example;\r\n dkim=pass\r\n"
	"Authentication-Results: \"mx.example\"; none\r\n"
	"Authentication-Results: mx.example.evil; none\r\n"
	"Subject: hi\r\n"
	"\r\n"
	"Authentication-Results: mx.example; in the body\r\n";
static const char want[] =
	"Received: from x\r\n"
	"X-Forged-Authentication-Results: MX.EXAMPLE; spf=pass\r\n"
	"Authentication-Results: other.example; spf=pass\r\n"
	"X-Forged-authentication-results : (c (nested)) mx.example;\r\n dkim=pass\r\n"
	"X-Forged-Authentication-Results: \"mx.example\"; none\r\n"
	"Authentication-Results: mx.example.evil; none\r\n"
	"Subject: hi\r\n"
	"\r\n"
	"Authentication-Results: mx.example; in the body\r\n";

static void test_splits(void)
{
	size_t len = strlen(msg);
	unsigned renamed = 0;
	char *got = run(msg, len, NULL, 0, &renamed);
	is_str(got, want, "one chunk: ours renamed (any case, a comment, quoted, a space before "
	       "the colon), other.example's and mx.example.evil's kept, the body untouched");
	is_int(renamed, 3, "three renamed");
	gn_free(got);
	size_t bad2 = 0, bad3 = 0;
	for (size_t a = 0; a <= len; a++) {
		size_t cuts[2] = { a, 0 };
		got = run(msg, len, cuts, 1, NULL);
		if (strcmp(got, want) != 0)
			bad2++;
		gn_free(got);
		for (size_t b = a; b <= len; b += 7) {
			cuts[1] = b;
			got = run(msg, len, cuts, 2, NULL);
			if (strcmp(got, want) != 0)
				bad3++;
			gn_free(got);
		}
	}
	is_int((long long)bad2, 0, "every split in two chunks gives the same");
	is_int((long long)bad3, 0, "splits in three chunks give the same");
}

static void test_no_body(void)
{
	const char *m = "Subject: x\r\nAuthentication-Results: mx.example; spf=pass\r\n";
	size_t cut = 15;
	char *got = run(m, strlen(m), &cut, 1, NULL);
	is_str(got, "Subject: x\r\nX-Forged-Authentication-Results: mx.example; spf=pass\r\n",
	       "a message without an empty line: held to the end, renamed");
	gn_free(got);
	const char *empty = "\r\nAuthentication-Results: mx.example; x\r\n";
	got = run(empty, strlen(empty), NULL, 0, NULL);
	is_str(got, "\r\nAuthentication-Results: mx.example; x\r\n",
	       "an empty header: everything after it is body");
	gn_free(got);
}

static void test_limit(void)
{
	/* Fields past FORGED_MAX_HEADER: the whole passes as it came. */
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "Authentication-Results: mx.example; spf=pass\r\n");
	while (gn_buf_len(b) < FORGED_MAX_HEADER + 1000)
		gn_buf_append_str(b, "X-Pad: pppppppppppppppppppppppppppppppppppppppppppppp\r\n");
	gn_buf_append_str(b, "\r\nbody\r\n");
	size_t cuts[3] = { 1000, FORGED_MAX_HEADER - 3, FORGED_MAX_HEADER + 2 };
	unsigned renamed = 9;
	char *got = run(gn_buf_data(b), gn_buf_len(b), cuts, 3, &renamed);
	ok(strcmp(got, gn_buf_data(b)) == 0 && renamed == 0,
	   "a header past %d octets: written as it came, nothing renamed", FORGED_MAX_HEADER);
	gn_free(got);
	gn_buf_free(&b);
}

int main(void)
{
	test_splits();
	test_no_body();
	test_limit();
	return done_testing();
}
