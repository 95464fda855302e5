/*
 * t/unit/test_compose.c: the composer (core/mail/compose.c), its output
 * parsed back with the core's MIME parser.
 *
 * Fixed cases for each nesting mox writes (text; text+HTML; inline files;
 * attachments), encodings (7bit, quoted-printable, base64), encoded words
 * and RFC 2231 filenames, SMTPUTF8, the refusals with their codes, the
 * sniffer; then a property test: 300 random messages (seeded, so a
 * failure repeats) must parse back with no problems, the tree and every
 * decoded subject, name and filename as given, and no line over 78
 * octets.
 */
#include "mail/internal.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#include <gannet/compose.h>
#include <gannet/mime.h>

static struct gn_pool *pool;

static struct gn_compose base(void)
{
	static const struct gn_compose_address from = { "Mjl", "mjl@example.org" };
	static const struct gn_compose_address to[] = { { NULL, "a@example.com" },
							 { "Bee Dee", "b@example.com" } };
	struct gn_compose c;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.from = &from;
	c.to = to;
	c.n_to = 2;
	c.subject = "hello";
	c.text = "hi there\n";
	c.host = "mail.example.org";
	c.date = 1700000000;
	return c;
}

static int compose(const struct gn_compose *c, struct gn_compose_result *r)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	return gn_compose(pool, c, r);
}

static const char *ctype(const struct gn_mime_part *p)
{
	return gn_pool_printf(pool, "%s/%s", gn_mime_part_type(p), gn_mime_part_subtype(p));
}

/* Every line ends in CRLF and has at most max octets before it. */
static bool lines_ok(const char *s, size_t n, size_t max)
{
	size_t line = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			i++;
			line = 0;
			continue;
		}
		if (s[i] == '\n' || s[i] == '\r' || ++line > max) {
			size_t st = i - line + 1;
			diag("line too long or bare CR/LF: %.*s", (int)(i - st + 1), s + st);
			return false;
		}
	}
	return line == 0;
}

/* The tree as a string: "multipart/mixed(text/plain,image/png)". */
static void shape(struct gn_buf *b, const struct gn_mime_part *p)
{
	gn_buf_append_str(b, ctype(p));
	size_t n = gn_mime_part_child_count(p);
	if (n == 0)
		return;
	gn_buf_append(b, "(", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			gn_buf_append(b, ",", 1);
		shape(b, gn_mime_part_child(p, i));
	}
	gn_buf_append(b, ")", 1);
}

static const char *shape_of(const struct gn_mime_message *m)
{
	struct gn_buf *b = gn_buf_new(0);
	shape(b, gn_mime_message_root(m));
	char *s = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

static bool has(const struct gn_compose_result *r, const char *needle)
{
	return memmem(r->data, r->len, needle, strlen(needle)) != NULL;
}

static void test_text_only(void)
{
	struct gn_compose c = base();
	static const struct gn_compose_address bcc = { NULL, "secret@example.net" };
	c.bcc = &bcc;
	c.n_bcc = 1;
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0, "text only: composed");
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	is_str(shape_of(m), "text/plain", "text only: a single text/plain part");
	is_int((long long)gn_mime_message_problem_count(m), 0, "text only: no problems");
	is_str(gn_mime_part_encoding(gn_mime_message_root(m)), "7bit", "text only: 7bit");
	is_str(gn_mime_part_param(gn_mime_message_root(m), "charset"), "us-ascii", "text only: us-ascii");
	is_str(gn_mime_message_field(m, GN_MIME_FROM), "Mjl <mjl@example.org>", "text only: From");
	is_str(gn_mime_message_field(m, GN_MIME_TO), "a@example.com, Bee Dee <b@example.com>",
	       "text only: To");
	is_str(gn_mime_message_field(m, GN_MIME_SUBJECT), "hello", "text only: Subject");
	is_str(gn_mime_message_field(m, GN_MIME_DATE), "Tue, 14 Nov 2023 22:13:20 +0000",
	       "text only: Date as given");
	ok(gn_mime_message_field(m, GN_MIME_BCC) == NULL && !has(&r, "secret@"),
	   "text only: Bcc is not written");
	is_str(gn_mime_message_field(m, GN_MIME_MESSAGE_ID), r.message_id, "text only: Message-ID reported");
	ok(strlen(r.message_id) == 2 + 32 + 1 + strlen("mail.example.org") &&
	   strstr(r.message_id, "@mail.example.org>") != NULL,
	   "text only: Message-ID <32 hex@host> (%s)", r.message_id);
	ok(!r.smtputf8, "text only: no SMTPUTF8");
	ok(has(&r, "\r\n\r\nhi there\r\n") && r.len >= 10 &&
	   memcmp(r.data + r.len - 10, "hi there\r\n", 10) == 0, "text only: body with CRLF");
	ok(has(&r, "MIME-Version: 1.0\r\n"), "text only: MIME-Version");
	ok(!has(&r, "User-Agent"), "text only: no User-Agent when none asked");
	gn_mime_message_free(&m);
	gn_free(r.data);
}

static void test_nesting(void)
{
	static const unsigned char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
	struct gn_compose_file inl = { "logo.png", NULL, "<logo@x>", png, sizeof(png) - 1 };
	struct gn_compose_file att = { "report.pdf", "application/pdf", NULL, "%PDF-1.4 x", 10 };
	struct gn_compose_file alt = { "cal.ics", "text/calendar; method=REQUEST", NULL, "BEGIN:VCALENDAR\r\n", 17 };
	struct {
		bool html, inl, att, alt, text;
		const char *want;
	} cases[] = {
		{ true, false, false, false, true, "multipart/alternative(text/plain,text/html)" },
		{ true, false, false, false, false, "text/html" },
		{ true, true, false, false, true,
		  "multipart/related(multipart/alternative(text/plain,text/html),image/png)" },
		{ false, false, true, false, true, "multipart/mixed(text/plain,application/pdf)" },
		{ true, true, true, false, true,
		  "multipart/mixed(multipart/related(multipart/alternative(text/plain,text/html),image/png),application/pdf)" },
		{ false, true, false, false, true, "multipart/related(text/plain,image/png)" },
		{ false, false, false, true, true, "multipart/alternative(text/plain,text/calendar)" },
		{ true, false, true, true, true,
		  "multipart/mixed(multipart/alternative(text/plain,text/html,text/calendar),application/pdf)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gn_compose c = base();
		if (!cases[i].text)
			c.text = NULL;
		if (cases[i].html)
			c.html = "<p>hi <img src=\"cid:logo@x\"></p>\n";
		if (cases[i].inl) {
			c.inline_files = &inl;
			c.n_inline_files = 1;
		}
		if (cases[i].att) {
			c.attached_files = &att;
			c.n_attached_files = 1;
		}
		if (cases[i].alt) {
			c.alternative_files = &alt;
			c.n_alternative_files = 1;
		}
		struct gn_compose_result r;
		ok(compose(&c, &r) == 0, "nesting %zu: composed", i);
		struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
		is_str(shape_of(m), cases[i].want, "nesting %zu: the tree", i);
		is_int((long long)gn_mime_message_problem_count(m), 0, "nesting %zu: no problems", i);
		ok(lines_ok(r.data, r.len, 78), "nesting %zu: CRLF lines of at most 78", i);
		gn_mime_message_free(&m);
		gn_free(r.data);
	}

	/* The last case in detail: dispositions, ids, names, decoded sizes. */
	struct gn_compose c = base();
	c.html = "<p>x</p>";
	c.inline_files = &inl;
	c.n_inline_files = 1;
	c.attached_files = &att;
	c.n_attached_files = 1;
	struct gn_compose_result r;
	compose(&c, &r);
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	const struct gn_mime_part *root = gn_mime_message_root(m);
	const struct gn_mime_part *rel = gn_mime_part_child(root, 0);
	const struct gn_mime_part *img = gn_mime_part_child(rel, 1);
	const struct gn_mime_part *pdf = gn_mime_part_child(root, 1);
	is_str(gn_mime_part_content_id(img), "<logo@x>", "inline file: Content-ID");
	is_str(gn_mime_part_disposition(img), "inline", "inline file: disposition inline");
	is_str(gn_mime_part_filename(img), "logo.png", "inline file: filename");
	is_str(gn_mime_part_encoding(img), "base64", "inline file: base64");
	is_int((long long)gn_mime_part_decoded_size(img), (long long)sizeof(png) - 1,
	       "inline file: decoded size");
	is_str(gn_mime_part_disposition(pdf), "attachment", "attached file: disposition attachment");
	is_str(gn_mime_part_filename(pdf), "report.pdf", "attached file: filename");
	is_int((long long)gn_mime_part_decoded_size(pdf), 10, "attached file: decoded size");
	gn_mime_message_free(&m);
	gn_free(r.data);
}

static void test_encodings(void)
{
	struct gn_compose c = base();
	static const struct gn_compose_address from = { "Jörg Müller, \"the\" boss", "jorg@example.org" };
	c.from = &from;
	c.subject = "Grüße aus Köln — a subject that is long enough to need more than one encoded word";
	c.text = "Grüße\nA line that is much longer than seventy-eight octets, so it needs soft line breaks in quoted-printable.\ntrailing space \n";
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0, "encodings: composed");
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	const struct gn_mime_part *root = gn_mime_message_root(m);
	is_str(gn_mime_message_field(m, GN_MIME_SUBJECT), c.subject, "encodings: subject decodes back");
	ok(has(&r, "Subject: =?utf-8?b?"), "encodings: subject as B encoded words");
	is_str(gn_mime_message_field(m, GN_MIME_FROM),
	       "Jörg Müller, \"the\" boss <jorg@example.org>", "encodings: display name decodes back");
	is_str(gn_mime_part_encoding(root), "quoted-printable", "encodings: non-ASCII text is quoted-printable");
	is_str(gn_mime_part_param(root, "charset"), "utf-8", "encodings: charset utf-8");
	ok(has(&r, "Gr=C3=BC=C3=9Fe\r\n"), "encodings: UTF-8 as =XX");
	ok(has(&r, "trailing space=20\r\n"), "encodings: a space at a line's end is encoded");
	ok(lines_ok(r.data, r.len, 78), "encodings: lines of at most 78");
	/* Decoded: the text with CRLF, the last line break included. */
	is_int((long long)gn_mime_part_decoded_size(root), (long long)strlen(c.text) + 3,
	       "encodings: decoded size is the text's with CRLF");
	gn_mime_message_free(&m);
	gn_free(r.data);

	/* A quoted name that is ASCII, an address without a name. */
	static const struct gn_compose_address from2 = { "Doe, John", "john@example.org" };
	c = base();
	c.from = &from2;
	compose(&c, &r);
	ok(has(&r, "From: \"Doe, John\" <john@example.org>\r\n"), "encodings: a name with a comma is quoted");
	gn_free(r.data);

	/* Long ASCII subject: folded, not encoded. */
	c = base();
	c.subject = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen";
	compose(&c, &r);
	m = gn_mime_parse(r.data, r.len, NULL);
	is_str(gn_mime_message_field(m, GN_MIME_SUBJECT), c.subject, "folding: a long subject unfolds back");
	ok(has(&r, "Subject: one two") && !has(&r, "=?utf-8"), "folding: ASCII subject folded, not encoded");
	ok(lines_ok(r.data, r.len, 78), "folding: lines of at most 78");
	gn_mime_message_free(&m);
	gn_free(r.data);

	/* Text containing what could look like our boundary prefix. */
	c = base();
	c.text = "a=_b\n";
	compose(&c, &r);
	ok(has(&r, "a=3D_b\r\n"), "encodings: \"=_\" in text makes it quoted-printable");
	gn_free(r.data);
}

static void test_empty(void)
{
	struct gn_compose_file f = { "empty.bin", "application/octet-stream", NULL, "", 0 };
	struct gn_compose c = base();
	c.text = "";
	c.html = "";
	c.attached_files = &f;
	c.n_attached_files = 1;
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0, "empty bodies: composed");
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	is_str(shape_of(m), "multipart/mixed(multipart/alternative(text/plain,text/html),application/octet-stream)",
	       "empty bodies: the tree");
	is_int((long long)gn_mime_message_problem_count(m), 0, "empty bodies: no problems");
	ok(!has(&r, "7bit\r\n\r\n--") && !has(&r, "base64\r\n\r\n--") &&
	   !has(&r, "Content-Disposition: attachment; filename=\"empty.bin\"\r\n\r\n--"),
	   "empty bodies: an empty line between a part's header and the next boundary");
	gn_mime_message_free(&m);
	gn_free(r.data);
}

static void test_filenames(void)
{
	const char *names[] = {
		"résumé.pdf",
		"a very long file name that certainly goes past sixty octets of ASCII.txt",
		"日本語のとても長いファイル名で二〇二六年十二月の報告書を添付します.docx",
		"quote\"and\\backslash.txt",
		"percent%star*apos'.txt",
	};
	struct gn_compose_file files[5];
	for (size_t i = 0; i < 5; i++)
		files[i] = (struct gn_compose_file){ names[i], "application/octet-stream", NULL, "x", 1 };
	struct gn_compose c = base();
	c.attached_files = files;
	c.n_attached_files = 5;
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0, "filenames: composed");
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	const struct gn_mime_part *root = gn_mime_message_root(m);
	is_int((long long)gn_mime_part_child_count(root), 6, "filenames: text and five files");
	for (size_t i = 0; i < 5 && i + 1 < gn_mime_part_child_count(root); i++)
		is_str(gn_mime_part_filename(gn_mime_part_child(root, i + 1)), names[i],
		       "filenames: %s decodes back", names[i]);
	ok(has(&r, "filename*0*=utf-8''r%C3%A9sum%C3%A9.pdf"), "filenames: RFC 2231 for non-ASCII");
	ok(lines_ok(r.data, r.len, 78), "filenames: lines of at most 78");
	gn_mime_message_free(&m);
	gn_free(r.data);
}

static void test_smtputf8(void)
{
	struct gn_compose c = base();
	static const struct gn_compose_address idn = { NULL, "user@bücher.example" };
	c.to = &idn;
	c.n_to = 1;
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0 && !r.smtputf8, "smtputf8: an IDN domain alone does not need it");
	ok(has(&r, "To: user@xn--bcher-kva.example\r\n"), "smtputf8: the domain as A-labels");
	gn_free(r.data);

	static const struct gn_compose_address u = { NULL, "jörg@bücher.example" };
	c.to = &u;
	ok(compose(&c, &r) == 0 && r.smtputf8, "smtputf8: a non-ASCII localpart needs it");
	ok(has(&r, "To: jörg@bücher.example\r\n"), "smtputf8: the address in UTF-8");
	gn_free(r.data);

	c = base();
	c.bcc = &u;
	c.n_bcc = 1;
	ok(compose(&c, &r) == 0 && r.smtputf8 && !has(&r, "jörg"),
	   "smtputf8: a non-ASCII Bcc needs it too, and is not written");
	gn_free(r.data);
}

static void test_headers(void)
{
	struct gn_compose c = base();
	const char *refs[] = { "<a@x>", "<b@x>" };
	struct gn_compose_header h[] = { { "X-Campaign", "spring ünicode" }, { "X-Mailer", "app 1" } };
	c.references = refs;
	c.n_references = 2;
	c.headers = h;
	c.n_headers = 2;
	c.user_agent = "gannet/1";
	c.message_id = "<given@x>";
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0, "headers: composed");
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	is_str(gn_mime_message_field(m, GN_MIME_REFERENCES), "<a@x> <b@x>", "headers: References");
	is_str(gn_mime_message_field(m, GN_MIME_IN_REPLY_TO), "<b@x>", "headers: In-Reply-To is the last");
	is_str(r.message_id, "<given@x>", "headers: the given Message-ID");
	ok(has(&r, "X-Campaign: =?utf-8?b?") && has(&r, "X-Mailer: app 1\r\n"),
	   "headers: extra fields, non-ASCII encoded");
	ok(!has(&r, "User-Agent"), "headers: no User-Agent when X-Mailer is given");
	gn_mime_message_free(&m);
	gn_free(r.data);

	c.n_headers = 1;
	compose(&c, &r);
	ok(has(&r, "User-Agent: gannet/1\r\n"), "headers: User-Agent otherwise");
	gn_free(r.data);
}

static void refused(struct gn_compose *c, enum gn_compose_error want, const char *what)
{
	struct gn_compose_result r;
	int ret = compose(c, &r);
	ok(ret < 0 && r.error == want && r.data == NULL && r.error_text != NULL,
	   "refused: %s (error %d: %s)", what, (int)r.error, r.error_text != NULL ? r.error_text : "-");
	gn_free(r.data);
}

static void test_refusals(void)
{
	struct gn_compose c = base();
	c.text = NULL;
	refused(&c, GN_COMPOSE_MISSING_BODY, "neither text nor HTML");

	c = base();
	c.from = NULL;
	refused(&c, GN_COMPOSE_MULTIPLE_FROM, "no From");

	static const struct gn_compose_address bad = { NULL, "not an address" };
	c = base();
	c.to = &bad;
	c.n_to = 1;
	refused(&c, GN_COMPOSE_BAD_ADDRESS, "a bad To address");

	c = base();
	c.message_id = "no-brackets@x";
	refused(&c, GN_COMPOSE_MALFORMED_MESSAGE_ID, "Message-ID without <>");

	c = base();
	c.subject = "evil\r\nBcc: x@y";
	refused(&c, GN_COMPOSE_USER, "CRLF in the subject");

	static const struct gn_compose_address evil = { "x\nBcc: y@z", "a@example.com" };
	c = base();
	c.to = &evil;
	c.n_to = 1;
	refused(&c, GN_COMPOSE_USER, "a line break in a display name");

	struct gn_compose_header h[] = { { "From", "other@example.com" } };
	c = base();
	c.headers = h;
	c.n_headers = 1;
	refused(&c, GN_COMPOSE_USER, "an extra From field");
	h[0] = (struct gn_compose_header){ "Content-Type", "text/html" };
	refused(&c, GN_COMPOSE_USER, "an extra Content-Type field");
	h[0] = (struct gn_compose_header){ "Bad Name", "x" };
	refused(&c, GN_COMPOSE_USER, "a field name with a space");
	h[0] = (struct gn_compose_header){ "X-Ok", "a\rb" };
	refused(&c, GN_COMPOSE_USER, "a CR in a field value");

	c = base();
	c.text = "\xff\xfe not UTF-8\n";
	refused(&c, GN_COMPOSE_USER, "text that is not UTF-8");

	struct gn_compose_file f = { "a.txt", "text/plain\r\nX: y", NULL, "x", 1 };
	c = base();
	c.attached_files = &f;
	c.n_attached_files = 1;
	refused(&c, GN_COMPOSE_USER, "a content type with a line break");
	f = (struct gn_compose_file){ "a.txt", "nonsense", NULL, "x", 1 };
	refused(&c, GN_COMPOSE_USER, "a content type without a subtype");
	f = (struct gn_compose_file){ "a.txt", NULL, "no-brackets", "x", 1 };
	refused(&c, GN_COMPOSE_USER, "a content id without <>");
	static char longname[300];
	memset(longname, 'n', sizeof(longname) - 1);
	f = (struct gn_compose_file){ longname, "text/plain", NULL, "x", 1 };
	refused(&c, GN_COMPOSE_USER, "a filename of 299 octets");
	longname[255] = '\0';
	struct gn_compose_result r0;
	ok(compose(&c, &r0) == 0, "a filename of 255 octets is fine");
	gn_free(r0.data);
	static char longtype[400];
	memset(longtype, 'x', sizeof(longtype) - 1);
	memcpy(longtype, "text/plain;a=", 13);
	f = (struct gn_compose_file){ "a.txt", longtype, NULL, "x", 1 };
	refused(&c, GN_COMPOSE_USER, "a content type of 399 octets (its line could pass 998)");

	static char big[200000];
	memset(big, 'a', sizeof(big) - 1);
	c = base();
	c.max_size = 100000;
	c.text = big;
	refused(&c, GN_COMPOSE_TOO_LARGE, "a message over max_size");

	struct gn_compose_file many[GN_COMPOSE_MAX_FILES + 1];
	for (size_t i = 0; i <= GN_COMPOSE_MAX_FILES; i++)
		many[i] = (struct gn_compose_file){ NULL, NULL, NULL, "x", 1 };
	c = base();
	c.attached_files = many;
	c.n_attached_files = GN_COMPOSE_MAX_FILES + 1;
	refused(&c, GN_COMPOSE_USER, "more files than GN_COMPOSE_MAX_FILES");
	c.n_attached_files = GN_COMPOSE_MAX_FILES;
	struct gn_compose_result r;
	ok(compose(&c, &r) == 0, "GN_COMPOSE_MAX_FILES files are fine");
	gn_free(r.data);

	c = base();
	c.size = 8;
	refused(&c, GN_COMPOSE_USER, "a struct too small to be one");
}

static void test_sniff(void)
{
	struct {
		const char *data;
		size_t len;
		const char *want;
	} cases[] = {
		{ "\x89PNG\r\n\x1a\n....", 12, "image/png" },
		{ "\xff\xd8\xff\xe0", 4, "image/jpeg" },
		{ "GIF89a..", 8, "image/gif" },
		{ "%PDF-1.7\n", 9, "application/pdf" },
		{ "PK\x03\x04....", 8, "application/zip" },
		{ "RIFF\0\0\0\0WEBPVP8 ", 16, "image/webp" },
		{ "XXXX\0\0\0\0WEBPVP8 ", 16, "application/octet-stream" },
		{ "  <!DOCTYPE html><html>", 23, "text/html; charset=utf-8" },
		{ "<p>hi</p>", 9, "text/html; charset=utf-8" },
		{ "<?xml version=\"1.0\"?>", 21, "text/xml; charset=utf-8" },
		{ "plain text, naïve\n", 19, "text/plain; charset=utf-8" },
		{ "bin\0ary", 7, "application/octet-stream" },
		{ "", 0, "application/octet-stream" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_str(gn_compose_sniff(cases[i].data, cases[i].len), cases[i].want, "sniff %zu: %s", i,
		       cases[i].want);

	/* A UTF-8 character cut at 512 octets is still text. */
	char t[600];
	memset(t, 'a', sizeof(t));
	memcpy(t + 511, "é", 2);
	is_str(gn_compose_sniff(t, sizeof(t)), "text/plain; charset=utf-8", "sniff: a character cut at 512");

	/* An attachment without a type is sniffed. */
	struct gn_compose_file f = { "x", NULL, NULL, "%PDF-1.4", 8 };
	struct gn_compose c = base();
	c.attached_files = &f;
	c.n_attached_files = 1;
	struct gn_compose_result r;
	compose(&c, &r);
	ok(has(&r, "Content-Type: application/pdf\r\n"), "sniff: used for a file without a type");
	gn_free(r.data);
}

/* ---- the property test ---- */

static const char *const atoms[] = {
	"a", "Z", "0", " ", "  ", "\t", "\"", "\\", "=?", "?=", "=", "_", ",", ";", "<", ">", "@",
	"(", ")", "é", "ß", "日本", "😀", "—", "x", "very-long-word-without-any-spaces-in-it-at-all-going-on-and-on",
	"%", "*", "'", ".",
};

static char *random_text(unsigned *seed, size_t max_atoms, bool newlines)
{
	struct gn_buf *b = gn_buf_new(0);
	size_t n = (size_t)rand_r(seed) % (max_atoms + 1);
	for (size_t i = 0; i < n; i++) {
		if (newlines && rand_r(seed) % 10 == 0)
			gn_buf_append(b, "\n", 1);
		gn_buf_append_str(b, atoms[(size_t)rand_r(seed) % (sizeof(atoms) / sizeof(atoms[0]))]);
	}
	char *s = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

/* What the parser gives for a plain unstructured value: unfolded, runs
 * of white space kept, trimmed at both ends (white space inside an
 * encoded word is kept even there: either form is the subject given). */
static char *trimmed(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return gn_pool_strndup(pool, s, n);
}

static void test_random(void)
{
	unsigned seed = 20261206;
	size_t fails = 0;
	for (int round = 0; round < 300; round++) {
		struct gn_compose c = base();
		c.subject = random_text(&seed, 30, false);
		c.text = rand_r(&seed) % 4 != 0 ? random_text(&seed, 200, true) : NULL;
		c.html = c.text == NULL || rand_r(&seed) % 2 ? random_text(&seed, 200, true) : NULL;
		struct gn_compose_address *to = gn_pool_alloc(pool, sizeof(*to) * 3);
		for (int i = 0; i < 3; i++) {
			to[i].name = random_text(&seed, 8, false);
			to[i].address = gn_pool_printf(pool, "user%d@example.com", i);
		}
		c.to = to;
		c.n_to = (size_t)rand_r(&seed) % 4;
		struct gn_compose_file *files = gn_pool_alloc(pool, sizeof(*files) * 9);
		size_t nf = 0, nalt = (size_t)rand_r(&seed) % 3, ninl = (size_t)rand_r(&seed) % 3,
		       natt = (size_t)rand_r(&seed) % 4;
		for (size_t i = 0; i < nalt + ninl + natt; i++) {
			size_t len = (size_t)rand_r(&seed) % 300;
			unsigned char *d = gn_pool_alloc(pool, len + 1);
			for (size_t k = 0; k < len; k++)
				d[k] = (unsigned char)rand_r(&seed);
			char *fname = random_text(&seed, 12, false);
			if (strlen(fname) > GN_COMPOSE_MAX_FILENAME) {
				/* Cut at a character's start. */
				size_t k = GN_COMPOSE_MAX_FILENAME;
				while (k > 0 && ((unsigned char)fname[k] & 0xc0) == 0x80)
					k--;
				fname[k] = '\0';
			}
			files[nf++] = (struct gn_compose_file){ fname, NULL,
								i < nalt + ninl ? gn_pool_printf(pool, "<f%zu@x>", i) : NULL,
								d, len };
		}
		c.alternative_files = files;
		c.n_alternative_files = nalt;
		c.inline_files = files + nalt;
		c.n_inline_files = ninl;
		c.attached_files = files + nalt + ninl;
		c.n_attached_files = natt;

		struct gn_compose_result r;
		if (compose(&c, &r) < 0) {
			ok(false, "random %d: composed (%s)", round, r.error_text);
			fails++;
			continue;
		}
		struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
		bool good = true;
		if (gn_mime_message_problem_count(m) != 0) {
			diag("random %d: problem %s", round, gn_mime_message_problem(m, 0));
			good = false;
		}
		if (!lines_ok(r.data, r.len, 78)) {
			diag("random %d: a line over 78 octets", round);
			good = false;
		}
		const char *subj = gn_mime_message_field(m, GN_MIME_SUBJECT);
		if (strcmp(trimmed(c.subject), "") != 0 &&
		    (subj == NULL ||
		     (strcmp(subj, trimmed(c.subject)) != 0 && strcmp(subj, c.subject) != 0))) {
			diag("random %d: subject [%s] came back as [%s]", round, c.subject, subj != NULL ? subj : "(none)");
			good = false;
		}
		/* The leaves in order: text, html, alternative, inline, attached. */
		const struct gn_mime_part *leaves[16];
		size_t nl = 0;
		const struct gn_mime_part *stack[16];
		size_t sp = 0;
		stack[sp++] = gn_mime_message_root(m);
		while (sp > 0 && nl < 16) {
			const struct gn_mime_part *p = stack[--sp];
			size_t n = gn_mime_part_child_count(p);
			if (n == 0)
				leaves[nl++] = p;
			for (size_t i = n; i > 0 && sp < 16; i--)
				stack[sp++] = gn_mime_part_child(p, i - 1);
		}
		size_t ntext = (c.text != NULL) + (c.html != NULL);
		if (nl != ntext + nf) {
			diag("random %d: %zu leaves, want %zu", round, nl, ntext + nf);
			good = false;
		}
		for (size_t i = 0; good && i < nf; i++) {
			const struct gn_mime_part *p = leaves[ntext + i];
			const char *fn = gn_mime_part_filename(p);
			const char *want = files[i].name[0] != '\0' ? files[i].name : NULL;
			if ((want == NULL) != (fn == NULL) || (want != NULL && strcmp(fn, want) != 0)) {
				diag("random %d: filename [%s] came back as [%s]", round, want != NULL ? want : "(none)",
				     fn != NULL ? fn : "(none)");
				good = false;
			}
			if (gn_mime_part_decoded_size(p) != files[i].len) {
				diag("random %d: file %zu decoded size %zu, want %zu", round, i,
				     gn_mime_part_decoded_size(p), files[i].len);
				good = false;
			}
		}
		for (size_t i = 0; good && i < c.n_to; i++) {
			const char *toh = gn_mime_message_field(m, GN_MIME_TO);
			if (toh == NULL || strstr(toh, to[i].address) == NULL) {
				diag("random %d: To lost %s", round, to[i].address);
				good = false;
			}
		}
		if (!good) {
			fails++;
			ok(false, "random %d parses back", round);
			fwrite(r.data, 1, r.len, stderr);
		}
		gn_mime_message_free(&m);
		gn_free(r.data);
		gn_pool_clear(pool);
	}
	ok(fails == 0, "300 random messages parse back as composed (%zu failed)", fails);
}

int main(void)
{
	pool = gn_pool_new();
	test_text_only();
	test_nesting();
	test_encodings();
	test_filenames();
	test_empty();
	test_smtputf8();
	test_headers();
	test_refusals();
	test_sniff();
	test_random();
	gn_pool_free(&pool);
	return done_testing();
}
