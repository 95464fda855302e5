/*
 * t/unit/test_smtp_client.c: the SMTP client's pure parts
 * (core/smtp/client-reply.c): the reply parser (single and multi-line
 * replies, enhanced codes, every split of the input, bad input, the line
 * length and line count limits), EHLO keywords, and the DATA encoder
 * (dot-stuffing and CRLF normalisation, whole and in every split).
 * gannet smtp send and t/integration/210-smtp-client.t drive the rest.
 */
#include "smtp/internal.h"
#include "tap.h"

#include <string.h>

/* Parses in as one feed; returns smtp_reply_parse()'s answer. */
static int parse1(struct smtp_reply_parser *p, const char *in, size_t *used_r,
		  const char **error_r)
{
	return smtp_reply_parse(p, in, strlen(in), used_r, error_r);
}

/* Feeds in in pieces of n bytes; returns the result at the end. */
static int parse_split(const char *in, size_t n, int *code_r, char *text, size_t tsize,
		       char *enh, size_t esize)
{
	struct smtp_reply_parser p;
	size_t len = strlen(in), off = 0, used;
	const char *error;
	int r = 0;

	smtp_reply_parser_init(&p, 0, 0);
	while (off < len) {
		size_t k = len - off < n ? len - off : n;
		r = smtp_reply_parse(&p, in + off, k, &used, &error);
		if (r != 0)
			break;
		off += used;
	}
	*code_r = p.code;
	snprintf(text, tsize, "%s", gn_buf_data(p.text));
	snprintf(enh, esize, "%s", p.enhanced);
	smtp_reply_parser_deinit(&p);
	return r;
}

static const char *encode(const char *in, size_t split)
{
	static char out[4096];
	struct smtp_dot d;
	struct gn_buf *b = gn_buf_new(sizeof(out));
	size_t len = strlen(in);

	memset(&d, 0, sizeof(d));
	for (size_t off = 0; off < len; off += split) {
		size_t k = len - off < split ? len - off : split;
		smtp_dot_encode(&d, in + off, k, b);
	}
	smtp_dot_finish(&d, b);
	snprintf(out, sizeof(out), "%.*s", (int)gn_buf_len(b), gn_buf_data(b));
	gn_buf_free(&b);
	return out;
}

int main(void)
{
	struct smtp_reply_parser p;
	const char *error;
	size_t used;
	int r, code;
	char text[1024], enh[16];

	/* One line. */
	smtp_reply_parser_init(&p, 0, 0);
	r = parse1(&p, "250 2.1.0 Sender ok\r\n", &used, &error);
	is_int(r, 1, "a one-line reply is whole");
	is_int(p.code, 250, "its code");
	is_str(p.enhanced, "2.1.0", "its enhanced code");
	is_str(gn_buf_data(p.text), "Sender ok", "the text without the codes");
	is_int((long long)used, 21, "all of it used");

	/* Several replies in one read (pipelining): one at a time. */
	{
		const char *in = "250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n";
		size_t off = 0;
		r = smtp_reply_parse(&p, in, strlen(in), &used, &error);
		ok(r == 1 && p.code == 250 && p.enhanced[0] == '\0', "first of three replies, no enhanced code");
		off += used;
		r = smtp_reply_parse(&p, in + off, strlen(in) - off, &used, &error);
		ok(r == 1 && p.code == 550 && strcmp(p.enhanced, "5.1.1") == 0, "second: 550 5.1.1");
		off += used;
		r = smtp_reply_parse(&p, in + off, strlen(in) - off, &used, &error);
		ok(r == 1 && p.code == 354 && strcmp(gn_buf_data(p.text), "go") == 0, "third: 354");
		is_int((long long)(off + used), (long long)strlen(in), "all used");
	}
	smtp_reply_parser_deinit(&p);

	/* Multi-line, every split of it. */
	{
		const char *in = "250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
				 "250-8BITMIME\r\n250 SMTPUTF8\r\n";
		bool all = true;
		for (size_t n = 1; n <= strlen(in); n++) {
			r = parse_split(in, n, &code, text, sizeof(text), enh, sizeof(enh));
			if (r != 1 || code != 250 ||
			    strcmp(text, "mx.test hello\nPIPELINING\nSIZE 1000\n8BITMIME\nSMTPUTF8") != 0) {
				all = false;
				diag("split %zu: r=%d code=%d text=%s", n, r, code, text);
			}
		}
		ok(all, "a multi-line reply fed in pieces of every size parses the same");
		ok(smtp_ehlo_keyword(text, "pipelining", NULL), "EHLO keyword, any case");
		{
			const char *params;
			ok(smtp_ehlo_keyword(text, "SIZE", &params) && smtp_ehlo_size(params) == 1000,
			   "SIZE and its value");
		}
		ok(!smtp_ehlo_keyword(text, "STARTTLS", NULL), "a keyword not offered");
		ok(!smtp_ehlo_keyword(text, "MX.TEST", NULL), "the greeting line is no keyword");
		ok(!smtp_ehlo_keyword(text, "SIZ", NULL), "a prefix is no keyword");
		ok(!smtp_ehlo_keyword(text, "8BIT", NULL), "nor another prefix");
		ok(!smtp_ehlo_keyword(NULL, "SIZE", NULL), "no keywords after HELO");
		is_int((long long)smtp_ehlo_size("99999999999999999999999"), 0,
		       "a SIZE too large for a number is no limit");
	}
	r = parse_split("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n", 7, &code,
			text, sizeof(text), enh, sizeof(enh));
	ok(r == 1 && strcmp(enh, "5.7.1") == 0 && strcmp(text, "first\nsecond\nthird") == 0,
	   "the enhanced code is taken off every line");
	r = parse_split("250\r\n", 1, &code, text, sizeof(text), enh, sizeof(enh));
	ok(r == 1 && code == 250 && text[0] == '\0', "a code alone is a reply");
	r = parse_split("250 ok\n", 2, &code, text, sizeof(text), enh, sizeof(enh));
	ok(r == 1 && strcmp(text, "ok") == 0, "a bare LF ends a line too");
	r = parse_split("451 5.1.1 mixed\r\n", 100, &code, text, sizeof(text), enh, sizeof(enh));
	ok(r == 1 && enh[0] == '\0' && strcmp(text, "5.1.1 mixed") == 0,
	   "an enhanced code of another class is text");
	r = parse_split("250 2.0.0\r\n", 100, &code, text, sizeof(text), enh, sizeof(enh));
	ok(r == 1 && strcmp(enh, "2.0.0") == 0 && text[0] == '\0', "an enhanced code with no text");
	r = parse_split("250 2.0.1234 x\r\n", 100, &code, text, sizeof(text), enh, sizeof(enh));
	ok(r == 1 && enh[0] == '\0', "a detail of four digits is no enhanced code");
	r = parse_split("250-partial\r\n250-more", 3, &code, text, sizeof(text), enh, sizeof(enh));
	is_int(r, 0, "an unfinished reply waits for more");

	/* Bad input. */
	{
		static const struct { const char *in, *why; } bad[] = {
			{ "hello\r\n", "does not start with a reply code" },
			{ "25\r\n", "does not start with a reply code" },
			{ "650 x\r\n", "does not start with a reply code" },
			{ "150 x\r\n", "does not start with a reply code" },
			{ "250x\r\n", "not followed by a space or a hyphen" },
			{ "250-a\r\n251 b\r\n", "different codes" },
			{ "250 a\rb\r\n", "bare CR" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			smtp_reply_parser_init(&p, 0, 0);
			error = NULL;
			r = parse1(&p, bad[i].in, &used, &error);
			ok(r < 0 && error != NULL && strstr(error, bad[i].why) != NULL,
			   "refused: %s (%s)", bad[i].why, error ? error : "no error");
			smtp_reply_parser_deinit(&p);
		}
		smtp_reply_parser_init(&p, 0, 0);
		r = smtp_reply_parse(&p, "250 a\0b\r\n", 9, &used, &error);
		ok(r < 0, "a NUL in a reply is refused");
		smtp_reply_parser_deinit(&p);
	}

	/* Limits. */
	{
		char line[700];
		memset(line, 'x', sizeof(line));
		memcpy(line, "250 ", 4);
		smtp_reply_parser_init(&p, 600, 0);
		r = smtp_reply_parse(&p, line, sizeof(line), &used, &error);
		ok(r < 0 && strstr(error, "too long") != NULL,
		   "a line longer than the limit is refused before its end");
		smtp_reply_parser_deinit(&p);
		/* The same limit, reached across reads. */
		smtp_reply_parser_init(&p, 600, 0);
		r = 0;
		for (int i = 0; i < 7 && r == 0; i++)
			r = smtp_reply_parse(&p, line, 100, &used, &error);
		ok(r < 0, "and across reads");
		smtp_reply_parser_deinit(&p);
		/* 599 with CRLF fits a 600 limit. */
		smtp_reply_parser_init(&p, 600, 0);
		line[597] = '\r';
		line[598] = '\n';
		r = smtp_reply_parse(&p, line, 599, &used, &error);
		is_int(r, 1, "a line at the limit is taken");
		smtp_reply_parser_deinit(&p);

		smtp_reply_parser_init(&p, 0, 3);
		r = parse1(&p, "250-a\r\n250-b\r\n250-c\r\n250 d\r\n", &used, &error);
		ok(r < 0 && strstr(error, "too many lines") != NULL, "more lines than the limit");
		smtp_reply_parser_deinit(&p);
		smtp_reply_parser_init(&p, 0, 3);
		r = parse1(&p, "250-a\r\n250-b\r\n250 c\r\n", &used, &error);
		is_int(r, 1, "as many lines as the limit");
		smtp_reply_parser_deinit(&p);
	}

	/* DATA. */
	is_str(encode("a\r\nb\r\n", 100), "a\r\nb\r\n.\r\n", "CRLF text as it is, then the dot");
	is_str(encode("a\nb\n", 100), "a\r\nb\r\n.\r\n", "bare LF becomes CRLF");
	is_str(encode("a\rb\r", 100), "a\r\nb\r\n.\r\n", "bare CR becomes CRLF");
	is_str(encode("a\r\r\nb", 100), "a\r\n\r\nb\r\n.\r\n", "CR CR LF: two line ends");
	is_str(encode("no end", 100), "no end\r\n.\r\n", "a missing last line end is added");
	is_str(encode(".\r\n..x\r\nx.\r\n.", 100), "..\r\n...x\r\nx.\r\n..\r\n.\r\n",
	       "every period at a line start doubled, others not");
	is_str(encode("", 100), ".\r\n", "an empty message is the dot alone");
	{
		const char *in = "Subject: x\r\n\r\n.line\n.\r\nmid.dle\r.\rend\r";
		char whole[4096];
		bool all = true;
		snprintf(whole, sizeof(whole), "%s", encode(in, 1000));
		for (size_t n = 1; n < strlen(in); n++)
			if (strcmp(encode(in, n), whole) != 0) {
				all = false;
				diag("split %zu: %s", n, encode(in, n));
			}
		ok(all, "every split of the input encodes the same");
		is_str(whole, "Subject: x\r\n\r\n..line\r\n..\r\nmid.dle\r\n..\r\nend\r\n.\r\n",
		       "and right");
	}
	is_str(gn_smtp_phase_name(GN_SMTP_PHASE_RCPT), "rcpt", "phase names");
	return done_testing();
}
