/*
 * t/unit/test_mime.c: the MIME parser (core/mail/mime*.c).
 *
 * The corpus in t/mime/ (NAME.eml with assertions in NAME.expect, see
 * t/mime/README): each message is parsed whole and one byte at a time (the
 * results must be identical), goes through JSON and back unchanged, keeps
 * its offsets inside the message, and meets its assertions.  Then the
 * limits (depth, header size, parts, fields) on generated messages, a 50 MB
 * message streamed in bounded memory, header decoding and dates.
 */
#include "mail/internal.h"
#include "tap.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <json-c/json.h>

#include <gannet/mime.h>

#ifndef MIME_CORPUS
#define MIME_CORPUS "t/mime"
#endif

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	struct gn_buf *b = gn_buf_new(0);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		gn_buf_append(b, tmp, n);
	fclose(f);
	*len_r = gn_buf_len(b);
	return gn_buf_steal(&b);
}

/* The parts in pre-order. */
static size_t flatten(const struct gn_mime_part *part, const struct gn_mime_part **out, size_t n,
		      size_t max)
{
	if (n < max)
		out[n] = part;
	n++;
	for (size_t i = 0; i < gn_mime_part_child_count(part); i++)
		n = flatten(gn_mime_part_child(part, i), out, n, max);
	return n;
}

static const char *const field_names[] = {
	"from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date",
	"message-id", "in-reply-to", "references", "list-id",
};

static int field_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (strcmp(name, field_names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *part_value(const struct gn_mime_part *p, const char *key, char *num, size_t numsize)
{
	size_t v;
	if (strcmp(key, "type") == 0) {
		snprintf(num, numsize, "%s/%s", gn_mime_part_type(p), gn_mime_part_subtype(p));
		return num;
	}
	if (strcmp(key, "disposition") == 0)
		return gn_mime_part_disposition(p);
	if (strcmp(key, "filename") == 0)
		return gn_mime_part_filename(p);
	if (strcmp(key, "encoding") == 0)
		return gn_mime_part_encoding(p);
	if (strcmp(key, "id") == 0)
		return gn_mime_part_content_id(p);
	if (strcmp(key, "description") == 0)
		return gn_mime_part_description(p);
	if (strncmp(key, "param:", 6) == 0)
		return gn_mime_part_param(p, key + 6);
	if (strcmp(key, "parent") == 0) {
		/* Index of the parent: filled in by the caller. */
		return NULL;
	}
	if (strcmp(key, "decoded_size") == 0)
		v = gn_mime_part_decoded_size(p);
	else if (strcmp(key, "body_size") == 0)
		v = gn_mime_part_body_size(p);
	else if (strcmp(key, "body_lines") == 0)
		v = gn_mime_part_body_lines(p);
	else if (strcmp(key, "header_size") == 0)
		v = gn_mime_part_header_size(p);
	else if (strcmp(key, "body_offset") == 0)
		v = gn_mime_part_body_offset(p);
	else if (strcmp(key, "children") == 0)
		v = gn_mime_part_child_count(p);
	else
		return "(unknown key)";
	snprintf(num, numsize, "%zu", v);
	return num;
}

static bool has_problem(const struct gn_mime_message *msg, const char *text)
{
	for (size_t i = 0; i < gn_mime_message_problem_count(msg); i++)
		if (strstr(gn_mime_message_problem(msg, i), text) != NULL)
			return true;
	return false;
}

static void check_expect(const char *name, const struct gn_mime_message *msg, const char *expect)
{
	const struct gn_mime_part *parts[256];
	size_t n = flatten(gn_mime_message_root(msg), parts, 0, 256);
	char *copy = gn_strdup(expect), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char word[64], key[64];
		int off = 0;
		if (sscanf(line, "%63s %n", word, &off) < 1)
			continue;
		const char *rest = line + off;
		if (strcmp(word, "parts") == 0) {
			is_int((long long)n, atoll(rest), "%s: %s parts", name, rest);
		} else if (strcmp(word, "problems") == 0) {
			if (!is_int((long long)gn_mime_message_problem_count(msg), atoll(rest),
				    "%s: %s problems", name, rest))
				for (size_t i = 0; i < gn_mime_message_problem_count(msg); i++)
					diag("problem: %s", gn_mime_message_problem(msg, i));
		} else if (strcmp(word, "problem") == 0) {
			ok(has_problem(msg, rest), "%s: a problem says \"%s\"", name, rest);
		} else if (strcmp(word, "date") == 0) {
			time_t t = 0;
			int r = gn_mime_message_date(msg, &t);
			if (strcmp(rest, "-") == 0)
				is_int(r, 0, "%s: Date not parsed", name);
			else
				ok(r == 1 && (long long)t == atoll(rest), "%s: Date is %s (got %d, %lld)",
				   name, rest, r, (long long)t);
		} else if (strcmp(word, "env") == 0 || strcmp(word, "raw") == 0) {
			if (sscanf(rest, "%63s %n", key, &off) < 1)
				continue;
			int f = field_by_name(key);
			const char *want = strcmp(rest + off, "-") == 0 ? NULL : rest + off;
			const char *got = word[0] == 'e' ? gn_mime_message_field(msg, f)
							 : gn_mime_message_field_raw(msg, f);
			is_str(got, want, "%s: %s %s", name, word, key);
		} else {
			size_t i = (size_t)atoll(word);
			if (i >= n || i >= 256) {
				ok(false, "%s: part %zu exists", name, i);
				continue;
			}
			const struct gn_mime_part *p = parts[i];
			if (sscanf(rest, "%63s %n", key, &off) < 1)
				continue;
			const char *value = rest + off;
			if (strcmp(key, "env") == 0) {
				char fname[64];
				int off2 = 0;
				if (sscanf(value, "%63s %n", fname, &off2) < 1)
					continue;
				is_str(gn_mime_part_field(p, field_by_name(fname)), value + off2,
				       "%s: part %zu env %s", name, i, fname);
				continue;
			}
			const char *want = strcmp(value, "-") == 0 ? NULL : value;
			char num[300];
			const char *got;
			if (strcmp(key, "parent") == 0) {
				const struct gn_mime_part *par = gn_mime_part_parent(p);
				long idx = -1;
				for (size_t j = 0; j < n && j < 256; j++)
					if (parts[j] == par)
						idx = (long)j;
				snprintf(num, sizeof(num), "%ld", idx);
				got = num;
			} else {
				got = part_value(p, key, num, sizeof(num));
			}
			is_str(got, want, "%s: part %zu %s", name, i, key);
		}
	}
	gn_free(copy);
}

/* Offsets stay inside the message and children inside their parent. */
static bool offsets_sane(const struct gn_mime_part *p, size_t size)
{
	size_t ho = gn_mime_part_header_offset(p), hs = gn_mime_part_header_size(p);
	size_t bo = gn_mime_part_body_offset(p), bs = gn_mime_part_body_size(p);
	if (ho + hs > bo || bo + bs > size)
		return false;
	for (size_t i = 0; i < gn_mime_part_child_count(p); i++) {
		const struct gn_mime_part *c = gn_mime_part_child(p, i);
		if (gn_mime_part_header_offset(c) < bo ||
		    gn_mime_part_body_offset(c) + gn_mime_part_body_size(c) > bo + bs)
			return false;
		if (!offsets_sane(c, size))
			return false;
	}
	return true;
}

static struct gn_mime_message *parse_chunked(const char *data, size_t len, size_t chunk,
					     const struct gn_mime_limits *lim)
{
	struct gn_mime_parser *p = gn_mime_parser_new(lim);
	for (size_t i = 0; i < len; i += chunk)
		gn_mime_parser_feed(p, data + i, len - i < chunk ? len - i : chunk);
	struct gn_mime_message *msg;
	gn_mime_parser_finish(p, &msg);
	gn_mime_parser_free(&p);
	return msg;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_corpus(void)
{
	const char *dir = MIME_CORPUS;
	DIR *d = opendir(dir);
	if (!ok(d != NULL, "corpus directory %s opens", dir))
		return;
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < 256) {
		size_t l = strlen(de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".eml") == 0)
			names[n++] = gn_strndup(de->d_name, l - 4);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	ok(n >= 15, "the corpus has messages (%zu)", n);
	for (size_t i = 0; i < n; i++) {
		char *path = gn_strdup_printf("%s/%s.eml", dir, names[i]);
		char *epath = gn_strdup_printf("%s/%s.expect", dir, names[i]);
		size_t len, elen;
		char *data = read_file(path, &len);
		char *expect = read_file(epath, &elen);
		if (!ok(data != NULL && expect != NULL, "%s: .eml and .expect read", names[i]))
			goto next;
		struct gn_mime_message *whole = gn_mime_parse(data, len, NULL);
		struct gn_mime_message *bytes = parse_chunked(data, len, 1, NULL);
		struct gn_mime_message *odd = parse_chunked(data, len, 7, NULL);
		char *j1 = gn_mime_to_json_string(whole);
		char *j2 = gn_mime_to_json_string(bytes);
		char *j3 = gn_mime_to_json_string(odd);
		is_str(j2, j1, "%s: fed byte by byte, the same result as fed whole", names[i]);
		is_str(j3, j1, "%s: fed in 7-byte chunks, the same result", names[i]);
		is_int((long long)gn_mime_message_size(whole), (long long)len, "%s: size", names[i]);
		ok(offsets_sane(gn_mime_message_root(whole), len), "%s: offsets inside the message",
		   names[i]);
		struct gn_mime_message *back = NULL;
		const char *error = NULL;
		int r = gn_mime_from_json_string(j1, strlen(j1), &back, &error);
		ok(r == 0, "%s: JSON reads back (%s)", names[i], error ? error : "");
		if (back != NULL) {
			char *j4 = gn_mime_to_json_string(back);
			is_str(j4, j1, "%s: JSON round trip changes nothing", names[i]);
			check_expect(names[i], back, expect);
			gn_free(j4);
		}
		gn_free(j1);
		gn_free(j2);
		gn_free(j3);
		gn_mime_message_free(&whole);
		gn_mime_message_free(&bytes);
		gn_mime_message_free(&odd);
		gn_mime_message_free(&back);
	next:
		gn_free(data);
		gn_free(expect);
		gn_free(path);
		gn_free(epath);
		gn_free(names[i]);
	}
}

static size_t tree_depth(const struct gn_mime_part *p)
{
	size_t max = 0;
	for (size_t i = 0; i < gn_mime_part_child_count(p); i++) {
		size_t d = tree_depth(gn_mime_part_child(p, i));
		if (d > max)
			max = d;
	}
	return max + 1;
}

static void test_limits(void)
{
	/* 80 nested multiparts, over the default depth of 50. */
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 0; i < 80; i++)
		gn_buf_printf(b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
	gn_buf_printf(b, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (int i = 79; i >= 0; i--)
		gn_buf_printf(b, "--b%d--\r\n", i);
	struct gn_mime_message *msg = gn_mime_parse(gn_buf_data(b), gn_buf_len(b), NULL);
	const struct gn_mime_part *root = gn_mime_message_root(msg);
	is_int((long long)tree_depth(root), 50, "80 nested multiparts: the tree stops at depth 50");
	ok(has_problem(msg, "nested too deep"), "nesting over the limit is a problem");
	ok(offsets_sane(root, gn_buf_len(b)), "nesting over the limit: offsets sane");
	const struct gn_mime_part *p = root;
	while (gn_mime_part_child_count(p) > 0)
		p = gn_mime_part_child(p, 0);
	is_str(gn_mime_part_type(p), "text", "the part at the limit becomes text/plain");
	/* Its body runs to the boundary of its parent (b48). */
	ok(gn_mime_part_body_size(p) > 0, "the part at the limit keeps the rest as its body");
	struct gn_mime_message *m2 = parse_chunked(gn_buf_data(b), gn_buf_len(b), 1, NULL);
	char *j1 = gn_mime_to_json_string(msg), *j2 = gn_mime_to_json_string(m2);
	is_str(j2, j1, "deep nesting: byte by byte gives the same");
	gn_free(j1);
	gn_free(j2);
	gn_mime_message_free(&m2);
	gn_mime_message_free(&msg);

	struct gn_mime_limits lim;
	gn_mime_limits_init(&lim);
	lim.max_depth = 3;
	msg = gn_mime_parse(gn_buf_data(b), gn_buf_len(b), &lim);
	is_int((long long)tree_depth(gn_mime_message_root(msg)), 3, "max_depth 3 is honoured");
	gn_mime_message_free(&msg);
	gn_buf_free(&b);

	/* A header of 2 MiB, over the default 1 MiB. */
	b = gn_buf_new(0);
	gn_buf_printf(b, "Subject: big\r\nContent-Type: text/plain\r\n");
	char filler[990];
	memset(filler, 'x', sizeof(filler) - 1);
	filler[sizeof(filler) - 1] = '\0';
	/* Long fields, so the field count (10000) is not the limit hit. */
	while (gn_buf_len(b) < 2 * 1024 * 1024)
		gn_buf_printf(b, "X-Filler: %s\r\n", filler);
	gn_buf_printf(b, "\r\nbody\r\n");
	msg = gn_mime_parse(gn_buf_data(b), gn_buf_len(b), NULL);
	root = gn_mime_message_root(msg);
	ok(has_problem(msg, "header larger than"), "a 2 MiB header is a problem");
	ok(gn_mime_part_header_size(root) <= 1024 * 1024, "the header stops at 1 MiB (%zu)",
	   gn_mime_part_header_size(root));
	is_int((long long)(gn_mime_part_body_offset(root) + gn_mime_part_body_size(root)),
	       (long long)gn_buf_len(b), "the rest of the message is the body");
	is_str(gn_mime_message_field(msg, GN_MIME_SUBJECT), "big", "fields before the limit count");
	m2 = parse_chunked(gn_buf_data(b), gn_buf_len(b), 4093, NULL);
	j1 = gn_mime_to_json_string(msg);
	j2 = gn_mime_to_json_string(m2);
	is_str(j2, j1, "header over the limit: chunked gives the same");
	gn_free(j1);
	gn_free(j2);
	gn_mime_message_free(&m2);
	gn_mime_message_free(&msg);

	/* Too many fields. */
	gn_mime_limits_init(&lim);
	lim.max_headers = 3;
	msg = gn_mime_parse(gn_buf_data(b), gn_buf_len(b), &lim);
	ok(has_problem(msg, "more than 3 header fields"), "max_headers is honoured");
	is_str(gn_mime_part_type(gn_mime_message_root(msg)), "text", "fields before it are read");
	gn_mime_message_free(&msg);
	gn_buf_free(&b);

	/* Too many parts. */
	b = gn_buf_new(0);
	gn_buf_printf(b, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	for (int i = 0; i < 20; i++)
		gn_buf_printf(b, "--x\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i);
	gn_buf_printf(b, "--x--\r\n");
	gn_mime_limits_init(&lim);
	lim.max_parts = 5;
	msg = gn_mime_parse(gn_buf_data(b), gn_buf_len(b), &lim);
	is_int((long long)gn_mime_part_child_count(gn_mime_message_root(msg)), 4,
	       "max_parts 5: the root and 4 children");
	ok(has_problem(msg, "more than 5 parts"), "too many parts is a problem");
	ok(!has_problem(msg, "close delimiter"), "the close delimiter is still found");
	gn_mime_message_free(&msg);
	msg = gn_mime_parse(gn_buf_data(b), gn_buf_len(b), NULL);
	is_int((long long)gn_mime_part_child_count(gn_mime_message_root(msg)), 20,
	       "the default allows 20 parts");
	is_int((long long)gn_mime_message_problem_count(msg), 0, "and finds no problem");
	gn_mime_message_free(&msg);
	gn_buf_free(&b);
}

/* The decoded size of base64 bodies, padding anywhere, fed whole and in
 * pieces of every small size: what Python's binascii.a2b_base64() makes of
 * each (its lenient mode, which the corpus test compares against). */
static void test_base64_sizes(void)
{
	static const struct {
		const char *body;
		long long size;
	} cases[] = {
		{ "QUJD\r\nRA==", 4 },
		{ "QU=JD", 3 },
		{ "QUI=RA==", 2 },
		{ "QUJDRA==QUJD", 4 },
		{ "Q=U=J=D", 2 },
		{ "QUJ\r\nD R\tA\r\n=\r\n=", 4 },
		{ "QUJD====", 3 },
		{ "QUJDREVGR0hJ\r\nSktM\xff\x80TU5P", 15 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *m = gn_strdup_printf("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
					   "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b--\r\n",
					   cases[i].body);
		for (size_t chunk = 1; chunk <= 8; chunk++) {
			size_t whole = strlen(m);
			struct gn_mime_message *msg = parse_chunked(m, whole, chunk == 8 ? whole : chunk, NULL);
			const struct gn_mime_part *part = gn_mime_part_child(gn_mime_message_root(msg), 0);
			is_int(part != NULL ? (long long)gn_mime_part_decoded_size(part) : -1, cases[i].size,
			       "base64 %zu, fed %zu bytes at a time: decoded size", i, chunk == 8 ? whole : chunk);
			gn_mime_message_free(&msg);
		}
		gn_free(m);
	}
}

static void test_big_message(void)
{
	/* 50 MB of base64 attachment, fed in 64 KiB chunks: the memory the
	 * process uses must not grow with it. */
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	long before = ru.ru_maxrss;
	const char *head = "Content-Type: multipart/mixed; boundary=big\r\n\r\n--big\r\n"
			   "Content-Type: application/octet-stream\r\n"
			   "Content-Transfer-Encoding: base64\r\n\r\n";
	struct gn_buf *chunk = gn_buf_new(0);
	while (gn_buf_len(chunk) < 65536 - 78)
		gn_buf_append_str(chunk, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n");
	size_t lines_per_chunk = gn_buf_len(chunk) / 74;
	struct gn_mime_parser *p = gn_mime_parser_new(NULL);
	gn_mime_parser_feed(p, head, strlen(head));
	size_t total = 0, n = 0;
	while (total < 50u * 1000 * 1000) {
		gn_mime_parser_feed(p, gn_buf_data(chunk), gn_buf_len(chunk));
		total += gn_buf_len(chunk);
		n++;
	}
	gn_mime_parser_feed(p, "--big--\r\n", 9);
	struct gn_mime_message *msg;
	gn_mime_parser_finish(p, &msg);
	gn_mime_parser_free(&p);
	getrusage(RUSAGE_SELF, &ru);
	const struct gn_mime_part *att = gn_mime_part_child(gn_mime_message_root(msg), 0);
	ok(att != NULL, "50 MB message: the attachment is there");
	if (att != NULL) {
		is_int((long long)gn_mime_part_decoded_size(att), (long long)(n * lines_per_chunk * 54),
		       "50 MB message: decoded size");
		is_int((long long)gn_mime_part_body_lines(att), (long long)(n * lines_per_chunk),
		       "50 MB message: lines");
	}
	ok(ru.ru_maxrss - before < 8 * 1024, "50 MB message parsed in bounded memory (%ld KiB more)",
	   ru.ru_maxrss - before);
	gn_mime_message_free(&msg);
	gn_buf_free(&chunk);
}

static void test_decode_header(void)
{
	struct gn_pool *pool = gn_pool_new();
	static const struct {
		const char *in, *want, *name;
	} cases[] = {
		{ "plain text", "plain text", "plain text stays" },
		{ "=?UTF-8?B?w6l0w6k=?=", "été", "B word" },
		{ "=?iso-8859-1?q?caf=E9_cr=E8me?=", "café crème", "Q word in Latin-1, '_' is space" },
		{ "=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab", "space between words dropped (RFC 2047 6.2)" },
		{ "=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab", "folded words joined" },
		{ "a =?UTF-8?Q?b?= c", "a b c", "text around words kept" },
		{ "=?UTF-8?B?5pel5pys6Kqe44Gu44OV44Kh44Kk?= =?UTF-8?B?44Or5ZCNLnhscw==?=",
		  "日本語のファイル名.xls", "a character split over two words" },
		{ "=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=", "€", "bytes of one character in two words" },
		{ "=?utf-8*en?Q?hi?=", "hi", "RFC 2231 language in a word" },
		{ "caf\xe9", "caf\xef\xbf\xbd", "Latin-1 byte becomes U+FFFD" },
		{ "J\xc3\xbcrgen", "Jürgen", "raw UTF-8 kept" },
		{ "=?x-nonexistent?Q?caf=C3=A9?=", "café", "unknown charset: UTF-8 bytes kept" },
		{ "=?x-nonexistent?Q?caf=E9?=", "caf\xef\xbf\xbd", "unknown charset: others U+FFFD" },
		{ "=?UTF-8?Q?broken", "=?UTF-8?Q?broken", "an unfinished word stays literal" },
		{ "=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=", "an unknown encoding stays literal" },
		{ "=?windows-1252?Q?=93q=94?=", "“q”", "windows-1252" },
		{ "=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語", "ISO-2022-JP" },
		{ "=?ks_c_5601-1987?B?x9GxuQ==?=", "한국", "Outlook's Korean charset name" },
		{ "line\r\n\tfolded", "line\tfolded", "unfolding keeps the white space" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_str(gn_mime_decode_header(pool, cases[i].in, strlen(cases[i].in)), cases[i].want,
		       "decode_header: %s", cases[i].name);
	is_str(gn_mime_decode_header(pool, "a\0b", 3), "a\xef\xbf\xbd" "b", "decode_header: NUL");
	gn_pool_free(&pool);
}

static void test_dates(void)
{
	static const struct {
		const char *in;
		long long want;	/* -1: not a date */
	} cases[] = {
		{ "Mon, 1 Jan 2024 10:00:00 +0000", 1704103200 },
		{ "1 Jan 2024 10:00:00 +0000", 1704103200 },
		{ "Mon, 01 Jan 2024 11:00:00 +0100", 1704103200 },
		{ "Mon , 1 Jan 2024 05:00:00 EST", 1704103200 },
		{ "Mon, 1 Jan 2024 10:00:00 GMT", 1704103200 },
		{ "Mon, 1 Jan 2024 10:00:00 UT", 1704103200 },
		{ "Mon, 1 Jan 2024 10:00:00 A", 1704103200 },
		{ "Mon, 1 Jan 24 10:00 +0000 (UTC)", 1704103200 },
		{ "Fri, 1 Jan 99 23:59 EST (Eastern)", 915253140 },
		{ "Mon, 1 Jan 124 10:00:00 +0000", -1 + 0 * 1 },
		{ "(c) Mon, (x) 1 (y) Jan (z) 2024 10:00:00 -0000", 1704103200 },
		{ "Thu, 29 Feb 2024 00:00:00 +0000", 1709164800 },
		{ "Thu, 29 Feb 2023 00:00:00 +0000", -1 },
		{ "Mon, 1 Foo 2024 10:00:00 +0000", -1 },
		{ "Mon, 1 Jan 2024 25:00:00 +0000", -1 },
		{ "yesterday", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_t t = 0;
		int r = gn_mime_parse_date(cases[i].in, strlen(cases[i].in), &t);
		if (i == 9) {
			/* Three-digit year: RFC 5322 4.3 adds 1900 (2024). */
			ok(r == 1 && (long long)t == 1704103200, "date: three-digit year 124 is 2024");
			continue;
		}
		if (cases[i].want < 0)
			is_int(r, 0, "date: \"%s\" is not a date", cases[i].in);
		else
			ok(r == 1 && (long long)t == cases[i].want, "date: \"%s\" (got %d, %lld)",
			   cases[i].in, r, (long long)t);
	}
}

static void test_json_errors(void)
{
	struct gn_mime_message *msg = NULL;
	const char *error = NULL;
	static const char *const bad[] = {
		"", "not json", "[]", "{\"v\": 2, \"size\": 0, \"problems\": [], \"parts\": []}",
		"{\"v\": 1, \"size\": 0, \"problems\": [], \"parts\": []}",
		"{\"v\": 1, \"size\": 0, \"problems\": [], \"parts\": [{\"parent\": 0}]}",
		"{\"v\": 1, \"size\": 0, \"problems\": [], \"parts\": [{\"parent\": -1, "
		"\"header_offset\": 0, \"header_size\": 0, \"body_offset\": 0, \"body_size\": 0, "
		"\"body_lines\": 0, \"decoded_size\": 0, \"type\": \"text\", \"subtype\": \"plain\"}, "
		"{\"parent\": 5}]}",
		"{\"v\": 1, \"size\": 0, \"problems\": [1], \"parts\": []}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = gn_mime_from_json_string(bad[i], strlen(bad[i]), &msg, &error);
		ok(r < 0 && msg == NULL && error != NULL, "from_json refuses bad input %zu (%s)", i,
		   error ? error : "");
	}
	/* An 8-bit raw header value survives JSON (as base64). */
	const char *m = "Subject: caf\xe9\r\n\r\nx";
	struct gn_mime_message *a = gn_mime_parse(m, strlen(m), NULL);
	char *j = gn_mime_to_json_string(a);
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, j, (int)strlen(j));
	ok(o != NULL, "JSON with an 8-bit header is valid JSON");
	json_object_put(o);
	json_tokener_free(tok);
	int r = gn_mime_from_json_string(j, strlen(j), &msg, &error);
	ok(r == 0 && strcmp(gn_mime_message_field_raw(msg, GN_MIME_SUBJECT), "caf\xe9") == 0,
	   "the raw 8-bit Subject comes back from JSON");
	gn_free(j);
	gn_mime_message_free(&a);
	gn_mime_message_free(&msg);
}

static void test_edges(void)
{
	struct gn_mime_message *msg = gn_mime_parse("", 0, NULL);
	const struct gn_mime_part *root = gn_mime_message_root(msg);
	ok(root != NULL && strcmp(gn_mime_part_type(root), "text") == 0, "an empty message is text/plain");
	gn_mime_message_free(&msg);

	const char *m = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a--";
	msg = gn_mime_parse(m, strlen(m), NULL);
	is_int((long long)gn_mime_part_child_count(gn_mime_message_root(msg)), 1,
	       "a close delimiter without a line break at the end");
	is_int((long long)gn_mime_message_problem_count(msg), 0, "is no problem");
	gn_mime_message_free(&msg);

	/* An outer boundary ends an inner multipart that was not closed. */
	m = "Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\n"
	    "Content-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\n\r\ninner\r\n"
	    "--out\r\nContent-Type: text/html\r\n\r\n<p>\r\n--out--\r\n";
	msg = gn_mime_parse(m, strlen(m), NULL);
	root = gn_mime_message_root(msg);
	is_int((long long)gn_mime_part_child_count(root), 2, "outer boundary closes the inner multipart");
	ok(has_problem(msg, "part 1: multipart/alternative has no close delimiter"),
	   "and the unclosed inner multipart is a problem");
	const struct gn_mime_part *html = gn_mime_part_child(root, 1);
	ok(html != NULL && strcmp(gn_mime_part_subtype(html), "html") == 0, "the part after it is read");
	gn_mime_message_free(&msg);

	/* A lookalike boundary line is body. */
	m = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--ab\r\n--a \r\n\r\ny\r\n--a--\r\n";
	msg = gn_mime_parse(m, strlen(m), NULL);
	root = gn_mime_message_root(msg);
	is_int((long long)gn_mime_part_child_count(root), 2, "\"--ab\" is not the boundary \"a\"; "
	       "\"--a \" is (transport padding)");
	is_int((long long)gn_mime_part_body_size(gn_mime_part_child(root, 0)), 4, "first part is \"--ab\"");
	gn_mime_message_free(&msg);

	/* The limits struct of an older, smaller caller. */
	struct gn_mime_limits lim;
	gn_mime_limits_init(&lim);
	is_int((long long)lim.max_depth, 50, "default depth 50");
	is_int((long long)lim.max_header_size, 1024 * 1024, "default header 1 MiB");
	is_int((long long)lim.max_parts, 10000, "default parts 10000");
	is_int((long long)lim.max_headers, 10000, "default fields 10000");
	gn_mime_parser_free(NULL);
	gn_mime_message_free(NULL);
}

/* mime_b64_decode() against mime_b64_encode(): every length around the
 * decoder's pieces (1,024 characters of the alphabet), with line breaks
 * and other characters it skips, and with the padding left off. */
static void test_base64_decode(void)
{
	unsigned char raw[3000];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 7919 + (i >> 3));
	static const size_t lens[] = { 0, 1, 2, 3, 766, 767, 768, 769, 770, 1535, 1536, 1537, 2999 };
	int bad = 0;
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t n = lens[k];
		char *enc = mime_b64_encode(raw, n);
		size_t elen = strlen(enc);
		/* Broken into lines of 76, with a tab and a "!" here and there. */
		char *wrapped = gn_malloc(elen * 2 + 8);
		size_t w = 0;
		for (size_t i = 0; i < elen; i++) {
			if (i > 0 && i % 76 == 0) {
				wrapped[w++] = '\r';
				wrapped[w++] = '\n';
			}
			if (i % 333 == 5)
				wrapped[w++] = i % 2 ? '\t' : '!';
			wrapped[w++] = enc[i];
		}
		for (int unpadded = 0; unpadded < 2; unpadded++) {
			size_t use = w;
			while (unpadded && use > 0 && wrapped[use - 1] == '=')
				use--;
			struct gn_buf *b = gn_buf_new(0);
			mime_b64_decode(b, wrapped, use);
			if (gn_buf_len(b) != n || memcmp(gn_buf_data(b), raw, n) != 0)
				bad++;
			unsigned char *out = gn_malloc(use / 4 * 3 + 3);
			size_t got = mime_b64_decode_to(out, wrapped, use);
			if (got != n || memcmp(out, raw, n) != 0)
				bad++;
			gn_free(out);
			gn_buf_free(&b);
		}
		gn_free(wrapped);
		gn_free(enc);
	}
	is_int(bad, 0, "base64 of 0 to 2,999 octets, wrapped, with skipped characters, "
	       "padded and not, decodes to the octets");
	struct gn_buf *b = gn_buf_new(0);
	mime_b64_decode(b, "QUJD=RA==", 9);
	is_int((int)gn_buf_len(b), 3, "decoding stops at the first \"=\"");
	gn_buf_free(&b);
}

int main(void)
{
	test_corpus();
	test_limits();
	test_base64_sizes();
	test_base64_decode();
	test_big_message();
	test_decode_header();
	test_dates();
	test_json_errors();
	test_edges();
	return done_testing();
}
