/*
 * t/unit/test_imap_parser.c: the imap module's command reader and parser
 * (modules/imap/parser.c), fed whole and a byte at a time.
 */
#include "tap.h"

#include <stdio.h>
#include <string.h>

#include "../../modules/imap/imap.h"

/* Everything the reader did with input, as text: "C<command>" for each
 * command, "L<n>" for each synchronising literal (answered with "+"),
 * "E<tag> <code> <error>" for each error ("E<status> <tag> ..." when the
 * status is not BAD), "F<error>" for the end.  An APPEND message is
 * "M<size><s|n>[8]:<text before it>|", then "D<its octets>|" once it
 * ended, however it was cut; one of 900 octets or more is refused
 * ("R|": synchronising, the client sends nothing; "S|": non-synchronising,
 * skipped with NO [TOOBIG]), and one holding "!" fails while it is read
 * (skipped from there with NO [UNAVAILABLE]). */
static char *run(const struct imap_limits *lim, const char *in, size_t len, size_t step)
{
	struct imap_reader *r = imap_reader_new(lim);
	struct gn_buf *out = gn_buf_new(0);
	struct gn_buf *msg = gn_buf_new(0);
	size_t pos = 0, avail = 0;
	while (pos < len) {
		avail = avail + step > len - pos ? len - pos : avail + step;
		size_t used = 0;
		enum imap_read rd = imap_reader_feed(r, in + pos, avail, &used);
		pos += used;
		avail -= used;
		if (rd == IMAP_READ_COMMAND) {
			size_t n;
			const char *c = imap_reader_command(r, &n);
			(void)gn_buf_append_str(out, "C");
			(void)gn_buf_append(out, c, n);
			imap_reader_next(r);
		} else if (rd == IMAP_READ_LITERAL) {
			(void)gn_buf_printf(out, "L%zu|", imap_reader_literal_size(r));
			imap_reader_literal_go(r);
		} else if (rd == IMAP_READ_MESSAGE) {
			const char *args;
			size_t args_len, size;
			bool sync, l8;
			imap_reader_message(r, &args, &args_len, &size, &sync, &l8);
			(void)gn_buf_printf(out, "M%zu%s%s:", size, sync ? "s" : "n", l8 ? "8" : "");
			(void)gn_buf_append(out, args, args_len);
			(void)gn_buf_append_str(out, "|");
			if (size >= 900 && sync) {
				(void)gn_buf_append_str(out, "R|");
				imap_reader_reject(r);
			} else if (size >= 900) {
				(void)gn_buf_append_str(out, "S|");
				if (!imap_reader_skip(r, "t", "NO", "TOOBIG", "message too large"))
					(void)gn_buf_append_str(out, "unskippable|");
			} else {
				imap_reader_message_go(r);
			}
		} else if (rd == IMAP_READ_DATA) {
			const char *d;
			size_t n;
			bool last = imap_reader_data(r, &d, &n);
			(void)gn_buf_append(msg, d, n);
			if (memchr(d, '!', n) != NULL) {
				(void)gn_buf_printf(out, "X|");
				(void)imap_reader_skip(r, "t", "NO", "UNAVAILABLE", "failed");
				gn_buf_clear(msg);
			} else if (last) {
				(void)gn_buf_append_str(out, "D");
				(void)gn_buf_append(out, gn_buf_data(msg), gn_buf_len(msg));
				(void)gn_buf_append_str(out, "|");
				gn_buf_clear(msg);
			}
		} else if (rd == IMAP_READ_ERROR) {
			(void)gn_buf_append_str(out, "E");
			if (strcmp(imap_reader_error_status(r), "BAD") != 0)
				(void)gn_buf_printf(out, "%s ", imap_reader_error_status(r));
			(void)gn_buf_printf(out, "%s %s %s|", imap_reader_error_tag(r),
					    imap_reader_error_code(r) ? imap_reader_error_code(r) : "-",
					    imap_reader_error(r));
			imap_reader_next(r);
		} else if (rd == IMAP_READ_FATAL) {
			(void)gn_buf_printf(out, "F%s|", imap_reader_error(r));
			break;
		} else if (used == 0 && avail == len - pos) {
			break;	/* all input given, more needed */
		}
	}
	imap_reader_free(&r);
	gn_buf_free(&msg);
	return gn_buf_steal(&out);
}

static void check_run(const struct imap_limits *lim, const char *in, const char *want, const char *name)
{
	size_t len = strlen(in);
	/* A byte at a time up to 8 at a time, then all at once: one result
	 * reported, the first that differs or the last. */
	size_t steps[] = { 1, 2, 3, 4, 5, 6, 7, 8, len };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *got = run(lim, in, len, steps[i]);
		bool same = strcmp(got, want) == 0;
		bool last = i + 1 == sizeof(steps) / sizeof(steps[0]);
		if (!same || last)
			is_str(got, want, "%s (fed %zu at a time)", name, steps[i]);
		gn_free(got);
		if (!same)
			break;
	}
}

static void test_reader(void)
{
	struct imap_limits lim;
	imap_limits_init(&lim);
	lim.max_literal = 100;
	lim.max_line = 60;
	lim.max_command = 200;
	lim.max_skip = 1000;

	check_run(&lim, "a NOOP\r\nb NOOP\n", "Ca NOOP\r\nCb NOOP\n", "two commands, CRLF and LF");
	check_run(&lim, "a LOGIN {3}\r\nabc {2}\r\nde\r\n",
		  "L3|L2|Ca LOGIN {3}\r\nabc {2}\r\nde\r\n", "synchronising literals");
	check_run(&lim, "a LOGIN {3+}\r\nabc ~{2+}\r\nde\r\n",
		  "Ca LOGIN {3+}\r\nabc ~{2+}\r\nde\r\n", "non-synchronising literals need no continuation");
	check_run(&lim, "a X {5}\r\n{1}\r\n\r\n",
		  "L5|Ca X {5}\r\n{1}\r\n\r\n", "a literal's octets are never read as a marker");
	check_run(&lim, "a X \"{3}\r\nb NOOP\r\n", "Ca X \"{3}\r\nCb NOOP\r\n",
		  "a marker inside an open quoted string is text");
	check_run(&lim, "a X \"q\\\"\" {2}\r\nzz\r\n", "L2|Ca X \"q\\\"\" {2}\r\nzz\r\n",
		  "an escaped quote does not end the string");
	check_run(&lim, "t1 X {101}\r\nb NOOP\r\n", "Et1 TOOBIG literal too large|Cb NOOP\r\n",
		  "a synchronising literal over the limit: an error with the tag, then the next command");
	{
		char in[400];
		memset(in, 'y', sizeof(in));
		int n = snprintf(in, sizeof(in), "t3 X {150+}\r\n");
		memset(in + n, 'y', 150);
		strcpy(in + n + 150, " more\r\nc NOOP\r\n");
		check_run(&lim, in, "Et3 TOOBIG literal too large|Cc NOOP\r\n",
			  "a non-synchronising literal over the limit is skipped, with the rest of its line");
	}
	check_run(&lim, "t4 X {1001+}\r\n", "Fnon-synchronising literal too large|",
		  "one too large to skip ends the connection");
	check_run(&lim, "t5 X {99999999999999999999999}\r\nb NOOP\r\n",
		  "Et5 TOOBIG literal too large|Cb NOOP\r\n", "a size past 64 bits");
	check_run(&lim, "t5a X {-1}\r\nb NOOP\r\n", "Ct5a X {-1}\r\nCb NOOP\r\n",
		  "a negative size is no literal marker: the line is a command, for the parser to refuse");
	check_run(&lim, "t5b X {18446744073709551616+}\r\nb NOOP\r\n",
		  "Fnon-synchronising literal too large|",
		  "a non-synchronising size of 2^64: too large to skip, the connection ends");
	{
		char in[200];
		memset(in, 'x', sizeof(in));
		memcpy(in, "t6 NOOP ", 8);
		strcpy(in + 100, "\r\nd NOOP\r\n");
		check_run(&lim, in, "Et6 TOOBIG line too long|Cd NOOP\r\n", "a line over max_line");
	}
	check_run(&lim, "t7 X {90}\r\n", "L90|", "a literal within max_literal");
	check_run(&lim, "a {50}\r\n", "L50|", "the reader frames without knowing the command");
	{
		/* Three literals of 90: the command passes max_command. */
		char in[400] = "t8 X {90+}\r\n";
		size_t n = strlen(in);
		memset(in + n, 'z', 90);
		strcpy(in + n + 90, " {90+}\r\n");
		n = strlen(in);
		memset(in + n, 'z', 90);
		strcpy(in + n + 90, " {90+}\r\n");
		n = strlen(in);
		memset(in + n, 'z', 90);
		strcpy(in + n + 90, "\r\ne NOOP\r\n");
		check_run(&lim, in, "Et8 TOOBIG command too long|Ce NOOP\r\n", "a command over max_command");
	}
}

/* APPEND's messages are handed out, not kept (RFC 9051 6.3.12, RFC 3502
 * MULTIAPPEND, RFC 3516 literal8); LITERAL- (RFC 7888 4). */
static void test_reader_append(void)
{
	struct imap_limits lim;
	imap_limits_init(&lim);
	lim.max_literal = 100;
	lim.max_line = 60;
	lim.max_command = 200;
	lim.max_skip = 1000;

	check_run(&lim, "a APPEND INBOX {5}\r\nhello\r\nb NOOP\r\n",
		  "M5s:a APPEND INBOX |Dhello|C\r\nCb NOOP\r\n",
		  "APPEND's message is handed out; the command goes on after it");
	check_run(&lim, "a append INBOX (\\Seen) \"05-Dec-2026 10:00:00 +0000\" {3+}\r\nabc\r\n",
		  "M3n:a append INBOX (\\Seen) \"05-Dec-2026 10:00:00 +0000\" |Dabc|C\r\n",
		  "non-synchronising, with flags and a date; the name in any case");
	check_run(&lim, "a APPEND {5}\r\nINBOX {3}\r\nabc\r\n",
		  "L5|M3s:a APPEND {5}\r\nINBOX |Dabc|C\r\n",
		  "a mailbox name as a literal is kept; the message after it is handed out");
	check_run(&lim, "a APPEND INBOX {2+}\r\nab (\\Draft) ~{3}\r\nx\ty {1+}\r\nz\r\n",
		  "M2n:a APPEND INBOX |Dab|M3s8: (\\Draft) |Dx\ty|M1n: |Dz|C\r\n",
		  "MULTIAPPEND: each message with what precedes it, literal8 too");
	{
		/* A message far over max_literal and max_command. */
		char in[700] = "a APPEND INBOX {600}\r\n";
		size_t n = strlen(in);
		memset(in + n, 'm', 600);
		strcpy(in + n + 600, "\r\n");
		char want[800] = "M600s:a APPEND INBOX |D";
		memset(want + strlen(want), 'm', 600);
		strcpy(want + strlen("M600s:a APPEND INBOX |D") + 600, "|C\r\n");
		check_run(&lim, in, want, "a message is not bound by max_literal or max_command");
	}
	check_run(&lim, "a APPENDX INBOX {2}\r\nab\r\n", "L2|Ca APPENDX INBOX {2}\r\nab\r\n",
		  "another command's literal is kept");
	/* RFC 8508: REPLACE's and UID REPLACE's message, after the number
	 * and the mailbox. */
	check_run(&lim, "a REPLACE 3 INBOX {3}\r\nabc\r\n", "M3s:a REPLACE 3 INBOX |Dabc|C\r\n",
		  "REPLACE's message is handed out");
	check_run(&lim, "a uid replace 7 Sent (\\Seen) {2+}\r\nab\r\n",
		  "M2n:a uid replace 7 Sent (\\Seen) |Dab|C\r\n", "UID REPLACE's too, in any case");
	check_run(&lim, "a REPLACE 3 {5}\r\nINBOX {3}\r\nabc\r\n",
		  "L5|M3s:a REPLACE 3 {5}\r\nINBOX |Dabc|C\r\n",
		  "REPLACE with the mailbox as a literal: kept; the message after it handed out");
	check_run(&lim, "a UID FETCH 1 {2}\r\nab\r\n", "L2|Ca UID FETCH 1 {2}\r\nab\r\n",
		  "another UID command's literal is kept");
	check_run(&lim, "a APPEND INBOX {950}\r\nb NOOP\r\n", "M950s:a APPEND INBOX |R|Cb NOOP\r\n",
		  "a synchronising message refused: the client sends nothing of it");
	{
		char in[1200] = "a APPEND INBOX {950+}\r\n";
		size_t n = strlen(in);
		memset(in + n, 'q', 950);
		strcpy(in + n + 950, " {4+}\r\nwxyz\r\nb NOOP\r\n");
		check_run(&lim, in, "M950n:a APPEND INBOX |S|ENO t TOOBIG message too large|Cb NOOP\r\n",
			  "a non-synchronising message refused is skipped with the messages after it, "
			  "then answered NO");
	}
	check_run(&lim, "a APPEND INBOX {1001+}\r\n", "M1001n:a APPEND INBOX |S|unskippable|",
		  "one too large to skip is not taken");
	check_run(&lim, "a APPEND INBOX {5}\r\nab!de {2}\r\nb NOOP\r\n",
		  "M5s:a APPEND INBOX |X|ENO t UNAVAILABLE failed|Cb NOOP\r\n",
		  "a message failing while read: its rest and its line are skipped, no literal after it awaited");
	check_run(&lim, "a APPEND INBOX {5+}\r\nab!de\r\nb NOOP\r\n",
		  "M5n:a APPEND INBOX |X|ENO t UNAVAILABLE failed|Cb NOOP\r\n",
		  "a non-synchronising message failing while read");
	{
		char in[120] = "a APPEND INBOX {1}\r\nz ";
		size_t n = strlen(in);
		memset(in + n, 'f', 70);
		strcpy(in + n + 70, "\r\nb NOOP\r\n");
		check_run(&lim, in, "M1s:a APPEND INBOX |Dz|Ea TOOBIG line too long|Cb NOOP\r\n",
			  "a line too long after a message: the APPEND's tag");
	}

	lim.max_nonsync = 4;
	check_run(&lim, "a LOGIN {4+}\r\nabcd {1}\r\nx\r\n", "L1|Ca LOGIN {4+}\r\nabcd {1}\r\nx\r\n",
		  "LITERAL-: a non-synchronising literal within the limit");
	check_run(&lim, "t9 LOGIN {5+}\r\nabcde x\r\nb NOOP\r\n",
		  "Et9 TOOBIG non-synchronising literal over the LITERAL- limit|Cb NOOP\r\n",
		  "LITERAL-: one over the limit is BAD [TOOBIG], and skipped");
	check_run(&lim, "a APPEND INBOX {5+}\r\nabcde\r\nb NOOP\r\n",
		  "Ea TOOBIG non-synchronising literal over the LITERAL- limit|Cb NOOP\r\n",
		  "LITERAL-: APPEND's message too");
	check_run(&lim, "a APPEND INBOX {5}\r\nabcde\r\n", "M5s:a APPEND INBOX |Dabcde|C\r\n",
		  "LITERAL-: a synchronising message of any size");
	check_run(&lim, "t0 X {1001+}\r\n", "Fnon-synchronising literal too large|",
		  "LITERAL-: one too large to skip ends the connection");
}

static struct imap_command parse_n(struct gn_pool *pool, const char *s, size_t len, const char **err_r,
				   int *r_r)
{
	struct imap_limits lim;
	imap_limits_init(&lim);
	lim.max_depth = 3;
	lim.max_args = 20;
	struct imap_command cmd;
	const char *code = NULL;
	*err_r = NULL;
	*r_r = imap_parse(pool, &lim, s, len, &cmd, &code, err_r);
	if (*r_r < 0 && code != NULL)
		*err_r = gn_pool_printf(pool, "[%s] %s", code, *err_r);
	return cmd;
}

static struct imap_command parse(struct gn_pool *pool, const char *s, const char **err_r, int *r_r)
{
	return parse_n(pool, s, strlen(s), err_r, r_r);
}

#define PARSE_BYTES(pool, lit, err, r) parse_n(pool, lit, sizeof(lit) - 1, err, r)

static void test_parser(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	int r;
	struct imap_command c;

	c = parse(pool, "A1 login alice \"p a\\\\ss\\\"\"\r\n", &err, &r);
	ok(r == 0 && strcmp(c.tag, "A1") == 0 && strcmp(c.name, "LOGIN") == 0 && c.count == 2,
	   "tag, name in upper case, two arguments");
	ok(r == 0 && c.args[0].type == IMAP_ARG_ATOM && strcmp(c.args[0].str, "alice") == 0 &&
	   c.args[1].type == IMAP_ARG_STRING && strcmp(c.args[1].str, "p a\\ss\"") == 0,
	   "an atom and a quoted string with escapes");

	c = parse(pool, "x FETCH 1:*,$ (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100> NIL)\r\n", &err, &r);
	ok(r == 0 && c.count == 2 && c.args[0].type == IMAP_ARG_ATOM && strcmp(c.args[0].str, "1:*,$") == 0,
	   "a sequence set with * and $ is an atom");
	ok(r == 0 && c.args[1].type == IMAP_ARG_LIST && c.args[1].count == 3 &&
	   strcmp(c.args[1].list[1].str, "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>") == 0 &&
	   c.args[1].list[2].type == IMAP_ARG_NIL, "a section with spaces and parentheses stays one atom; NIL");

	/* RFC 9051 9: header-fld-name = astring, a literal too. */
	c = parse(pool, "x FETCH 1 (BODY.PEEK[HEADER.FIELDS (From {7}\r\nSubject {4+}\r\nX~Id)]<0.10> FLAGS)\r\n",
		  &err, &r);
	ok(r == 0 && c.count == 2 && c.args[1].type == IMAP_ARG_LIST && c.args[1].count == 2 &&
	   strcmp(c.args[1].list[0].str, "BODY.PEEK[HEADER.FIELDS (From \"Subject\" \"X~Id\")]<0.10>") == 0 &&
	   strcmp(c.args[1].list[1].str, "FLAGS") == 0,
	   "literals in a section's field names: one atom, the names quoted (%s)",
	   r == 0 && c.count == 2 && c.args[1].count > 0 ? c.args[1].list[0].str : err);
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS.NOT (X~Y)]\r\n", &err, &r);
	ok(r == 0 && strcmp(c.args[1].str, "BODY[HEADER.FIELDS.NOT (X~Y)]") == 0,
	   "a ~ in a field name is no literal8");
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS ({3}\r\na b)]\r\n", &err, &r);
	ok(r < 0, "a field name literal with a space: BAD (%s)", err ? err : "");
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS ({3}\r\na\"b)]\r\n", &err, &r);
	ok(r < 0, "a field name literal with a quote: BAD (%s)", err ? err : "");
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS ({0}\r\n)]\r\n", &err, &r);
	ok(r < 0, "an empty field name literal: BAD (%s)", err ? err : "");
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS (~{3}\r\nabc)]\r\n", &err, &r);
	ok(r < 0, "literal8 in a section: BAD (%s)", err ? err : "");
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS ({9}\r\nabc)]\r\n", &err, &r);
	ok(r < 0, "a literal in a section shorter than announced: BAD (%s)", err ? err : "");
	c = parse(pool, "x FETCH 1 BODY[HEADER.FIELDS ({3}abc)]\r\n", &err, &r);
	ok(r < 0, "a literal's marker not at a line end in a section: BAD (%s)", err ? err : "");
	c = parse(pool, "x LOGIN {-1}\r\n", &err, &r);
	ok(r < 0, "a negative literal size is BAD (%s)", err ? err : "");
	c = parse(pool, "x LOGIN {1a}\r\n", &err, &r);
	ok(r < 0, "a literal size that is no number is BAD (%s)", err ? err : "");
	c = parse(pool, "x LOGIN {}\r\n", &err, &r);
	ok(r < 0, "an empty literal size is BAD (%s)", err ? err : "");
	c = PARSE_BYTES(pool, "x APPEND INBOX (\\Seen) {5}\r\na\0b\r\n\r\n", &err, &r);
	ok(r < 0, "NUL in a literal is refused (%s)", err ? err : "");
	c = PARSE_BYTES(pool, "x APPEND INBOX (\\Seen) ~{5}\r\na\0b\r\n\r\n", &err, &r);
	ok(r == 0 && c.count == 3 && c.args[2].type == IMAP_ARG_LITERAL && c.args[2].literal8 &&
	   c.args[2].len == 5 && memcmp(c.args[2].str, "a\0b\r\n", 5) == 0 &&
	   strcmp(c.args[1].list[0].str, "\\Seen") == 0, "literal8 keeps NUL; a flag is an atom");
	c = parse(pool, "x LOGIN {3}\r\n\"() {4}\r\n)\"\r\n\r\n", &err, &r);
	ok(r == 0 && c.count == 2 && strcmp(c.args[0].str, "\"()") == 0 && strcmp(c.args[1].str, ")\"\r\n") == 0,
	   "literals hold anything, read by their count");

	c = parse(pool, "x ID (\"caf\xc3\xa9\" \"\xe2\x82\xac\")\r\n", &err, &r);
	ok(r == 0, "UTF-8 in quoted strings");
	const char *bad[][2] = {
		{ "x ID (\"\xc0\xaf\")\r\n", "not UTF-8" },
		{ "x ID (\"\xed\xa0\x80\")\r\n", "not UTF-8" },
		{ "x ID (\"a\\b\")\r\n", "bad escape" },
		{ "x ID (\"abc)\r\n", "unterminated quoted" },
		{ "x ID (a b\r\n", "unterminated list" },
		{ "x ID a  b\r\n", "argument expected" },
		{ "x ID a \r\n", "argument expected" },
		{ "x ID a)\r\n", "space expected" },
		{ "x ID ((((a))))\r\n", "[LIMIT]" },
		{ "x ID 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\r\n", "[LIMIT]" },
		{ "x ID {30}\r\nab\r\n", "literal shorter" },
		{ "x ID {3} a\r\nabc\r\n", "must end the line" },
		{ " NOOP\r\n", "tag expected" },
		{ "a+b NOOP\r\n", "tag expected" },
		{ "x\r\n", "tag expected" },
		{ "x NOOP\rx\r\n", "bare CR" },
		{ "x NO-OP\r\n", "command name" },
		{ "x ID BODY[HEADER\r\n", "section" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = parse(pool, bad[i][0], &err, &r);
		ok(r < 0 && err != NULL && strstr(err, bad[i][1]) != NULL, "refused: %s (%s)", bad[i][1],
		   err != NULL ? err : "accepted");
	}
	c = parse(pool, "tag1 ID a)\r\n", &err, &r);
	ok(r < 0 && c.tag != NULL && strcmp(c.tag, "tag1") == 0, "a refused command keeps its tag");

	const char *s;
	size_t n;
	c = parse(pool, "x X a \"b\" {1}\r\nc NIL \\F *\r\n", &err, &r);
	ok(r == 0 && imap_arg_astring(&c.args[0], &s, &n) && imap_arg_astring(&c.args[1], &s, &n) &&
	   imap_arg_astring(&c.args[2], &s, &n) && imap_arg_astring(&c.args[3], &s, &n) &&
	   !imap_arg_astring(&c.args[4], &s, &n) && !imap_arg_astring(&c.args[5], &s, &n),
	   "astrings: atom, string, literal, NIL; not a flag or a wildcard");

	/* What comes between APPEND's messages. */
	struct imap_limits lim;
	imap_limits_init(&lim);
	struct imap_arg *args;
	unsigned count;
	const char *code;
	const char *between = " (\\Seen kw) \"05-Dec-2026 10:00:00 +0000\"";
	r = imap_parse_args(pool, &lim, between, strlen(between), &args, &count, &code, &err);
	ok(r == 0 && count == 2 && args[0].type == IMAP_ARG_LIST && args[0].count == 2 &&
	   args[1].type == IMAP_ARG_STRING && strcmp(args[1].str, "05-Dec-2026 10:00:00 +0000") == 0,
	   "arguments after a message: a flag list and a date-time");
	r = imap_parse_args(pool, &lim, "", 0, &args, &count, &code, &err);
	ok(r == 0 && count == 0, "none at all");
	static const char *const bad_between[][2] = {
		{ "(\\Seen)", "no space before" }, { " (\\Seen", "an open list" },
		{ "  x", "two spaces" }, { " x\r\n", "a line end" },
	};
	for (size_t i = 0; i < sizeof(bad_between) / sizeof(bad_between[0]); i++) {
		r = imap_parse_args(pool, &lim, bad_between[i][0], strlen(bad_between[i][0]), &args, &count,
				    &code, &err);
		ok(r < 0, "refused between messages: %s", bad_between[i][1]);
	}
	gn_pool_free(&pool);
}

static void test_seqset(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct imap_seqset set;
	ok(imap_seqset_parse(pool, "7:5,1,10:*,3", 12, &set) == 0 && set.count == 4 &&
	   set.ranges[0].lo == 1 && set.ranges[0].hi == 1 && set.ranges[1].lo == 3 && set.ranges[1].hi == 3 &&
	   set.ranges[2].lo == 5 && set.ranges[2].hi == 7 && set.ranges[3].lo == 10 && set.ranges[3].hi == 12,
	   "ranges sorted, backwards ranges turned, * the largest");
	ok(imap_seqset_has(&set, 1) && !imap_seqset_has(&set, 2) && imap_seqset_has(&set, 3) &&
	   !imap_seqset_has(&set, 4) && imap_seqset_has(&set, 6) && !imap_seqset_has(&set, 8) &&
	   imap_seqset_has(&set, 12) && !imap_seqset_has(&set, 13), "membership");
	ok(imap_seqset_parse(pool, "4,1:2,3,2:3", 9, &set) == 0 && set.count == 1 && set.ranges[0].lo == 1 &&
	   set.ranges[0].hi == 4, "overlapping and adjacent ranges merge");
	ok(imap_seqset_parse(pool, "*:4", 2, &set) == 0 && set.count == 1 && set.ranges[0].lo == 2 &&
	   set.ranges[0].hi == 4, "*:4 with * below 4");
	static const char *const bad[] = { "", "0", "1:", ":2", "1,,2", "1:2:3", "a", "4294967296", "1 2",
					   "-1", "$" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(imap_seqset_parse(pool, bad[i], 5, &set) < 0, "refused: \"%s\"", bad[i]);
	gn_pool_free(&pool);
}

int main(void)
{
	test_reader();
	test_reader_append();
	test_parser();
	test_seqset();
	return done_testing();
}
