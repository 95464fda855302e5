/*
 * t/unit/test_deliver_import.c: the mbox and maildir readers of
 * core/store/import.c (no database).
 *
 * Includes core/store/import.c to reach its static readers.  The mbox reader is
 * fed each input whole and also one byte at a time and in odd chunk sizes:
 * the messages must come out the same whatever the chunking.
 */
#include "../../core/store/import.c"

#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include "tap.h"

/* ---- mbox ---- */

struct collect {
	char *out;		/* messages, each as "[FROM]body|" */
	size_t len;
	size_t n;
};

static void col_add(struct collect *c, const char *s, size_t n)
{
	c->out = gn_realloc(c->out, c->len + n + 1);
	memcpy(c->out + c->len, s, n);
	c->len += n;
	c->out[c->len] = '\0';
}

static void col_begin(const char *from, void *data)
{
	struct collect *c = data;
	col_add(c, "[", 1);
	col_add(c, from, strlen(from));
	col_add(c, "]", 1);
	c->n++;
}

static void col_body(const void *chunk, size_t len, void *data)
{
	col_add(data, chunk, len);
}

static void col_end(void *data)
{
	col_add(data, "|", 1);
}

static const struct mbox_reader_ops col_ops = { col_begin, col_body, col_end };

/* Reads in with chunks of size step (0: whole). */
static char *mbox_split(const char *in, size_t step, size_t *n_r)
{
	struct collect c = { NULL, 0, 0 };
	struct mbox_reader r;
	col_add(&c, "", 0);
	mbox_reader_init(&r, &col_ops, &c);
	size_t len = strlen(in);
	if (step == 0)
		step = len ? len : 1;
	for (size_t i = 0; i < len; i += step)
		mbox_reader_feed(&r, in + i, len - i < step ? len - i : step);
	mbox_reader_finish(&r);
	if (n_r != NULL)
		*n_r = c.n;
	return c.out;
}

static void mbox_case(const char *in, const char *want, const char *name)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7 };
	bool same = true;
	char *whole = mbox_split(in, 0, NULL);
	is_str(whole, want, "%s", name);
	for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *o = mbox_split(in, steps[i], NULL);
		if (strcmp(o, want) != 0) {
			diag("chunks of %zu: %s", steps[i], o);
			same = false;
		}
		gn_free(o);
	}
	ok(same, "%s: the same in chunks of 1, 2, 3, 7 bytes", name);
	gn_free(whole);
}

static void test_mbox(void)
{
	mbox_case("From a@b Thu Jan  1 00:00:00 2024\nSubject: x\n\nbody\n\n",
		  "[a@b Thu Jan  1 00:00:00 2024]Subject: x\n\nbody\n|",
		  "one message, the separating empty line dropped");
	mbox_case("From a Mon Jan  1 00:00:00 2024\nA: 1\n\none\n\n"
		  "From b Mon Jan  1 00:00:00 2024\nB: 2\n\ntwo\n\n",
		  "[a Mon Jan  1 00:00:00 2024]A: 1\n\none\n|[b Mon Jan  1 00:00:00 2024]B: 2\n\ntwo\n|",
		  "two messages split at the From_ line");
	mbox_case("From a x\nA: 1\n\n>From me\n>>From you\n>>>From them\n> From no\n>Fromage\n\n",
		  "[a x]A: 1\n\nFrom me\n>From you\n>>From them\n> From no\n>Fromage\n|",
		  "mboxrd: >From lines lose one >, others are kept");
	mbox_case("From a x\nA: 1\n\nline\nFrom inside the text\n\n",
		  "[a x]A: 1\n\nline\nFrom inside the text\n|",
		  "an unquoted From line not after an empty line stays in the message");
	mbox_case("From a x\nContent-Length: 3\nA: 1\n\n0123456789\n\nFrom b y\n\nz\n",
		  "[a x]Content-Length: 3\nA: 1\n\n0123456789\n|[b y]\nz\n|",
		  "Content-Length is ignored");
	mbox_case("From a x\r\nA: 1\r\n\r\nbody\r\n\r\nFrom b y\r\nB: 2\r\n\r\nz\r\n\r\n",
		  "[a x]A: 1\r\n\r\nbody\r\n|[b y]B: 2\r\n\r\nz\r\n|",
		  "CRLF mbox files");
	mbox_case("From a x\nA: 1\n\nend\n\n\n\nFrom b y\nB: 2\n\nz",
		  "[a x]A: 1\n\nend\n\n\n|[b y]B: 2\n\nz|",
		  "empty lines before the separator are kept but the last; no final line feed");
	mbox_case("garbage\nFrom a x\nA: 1\n\n",
		  "",
		  "text before the first From_ line is no message");
	mbox_case("", "", "an empty file has no messages");
	mbox_case("From a x\nFrom b y\n", "[a x]From b y\n|",
		  "a From line right after a From_ line belongs to the message");
	size_t n;
	char *o = mbox_split("From a x\nX: 1\n\nb\n\nFrom b y\nY: 2\n\nc\n\nFrom c z\n\n", 0, &n);
	is_int((long long)n, 3, "three messages counted");
	gn_free(o);

	/* A long line and a long run of '>' pass through. */
	size_t big = 100000;
	char *in = gn_malloc(big + 64);
	size_t p = (size_t)snprintf(in, 64, "From a x\nA: 1\n\n");
	memset(in + p, '>', big);
	memcpy(in + p + big, "From\n\n", 7);
	o = mbox_split(in, 0, NULL);
	ok(strlen(o) == strlen("[a x]A: 1\n\n") + big + 5 + 1, "a 100000-byte run of > passes through");
	gn_free(o);
	o = mbox_split(in, 4096, NULL);
	ok(strlen(o) == strlen("[a x]A: 1\n\n") + big + 5 + 1, "also in chunks");
	gn_free(o);
	gn_free(in);

	time_t t = 0;
	is_int(mbox_from_date("MAILER-DAEMON Thu Jan  1 00:00:00 2015", &t), 1, "From_ line date parsed");
	is_int((long long)t, 1420070400, "as UTC");
	is_int(mbox_from_date("sender", &t), 0, "no date: none");
	is_int(mbox_from_date("a@b not a date", &t), 0, "garbage: none");
}

/* ---- maildir ---- */

static char tmpdir[] = "/tmp/gn-test-maildir-XXXXXX";

static void write_file(const char *path, const char *content, time_t mtime)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		{ diag("cannot write %s", path); exit(1); }
	fputs(content, f);
	fclose(f);
	struct timeval tv[2] = { { mtime, 0 }, { mtime, 0 } };
	utimes(path, tv);
}

static void test_maildir(void)
{
	if (mkdtemp(tmpdir) == NULL)
		{ diag("mkdtemp failed"); exit(1); }
	char *p;
	struct maildir_list list;
	char *err = NULL;

	ok(maildir_list(tmpdir, &list, &err) < 0, "a directory without cur/ or new/ is no maildir");
	like(err, "not a maildir", "the error says so");
	gn_free(err);

	static const char *const subs[] = { "cur", "new", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		p = gn_strdup_printf("%s/%s", tmpdir, subs[i]);
		mkdir(p, 0700);
		gn_free(p);
	}
	p = gn_strdup_printf("%s/cur/1000.a.host:2,FRS", tmpdir);
	write_file(p, "A: 1\n\na\n", 1000);
	gn_free(p);
	p = gn_strdup_printf("%s/cur/1001.b.host,S=10:2,Tac", tmpdir);
	write_file(p, "B: 1\n\nb\n", 1001);
	gn_free(p);
	p = gn_strdup_printf("%s/new/1002.c.host", tmpdir);
	write_file(p, "C: 1\n\nc\n", 1002);
	gn_free(p);
	p = gn_strdup_printf("%s/cur/999.d.host;2,DP", tmpdir);
	write_file(p, "D: 1\n\nd\n", 999);
	gn_free(p);
	p = gn_strdup_printf("%s/tmp/1003.e.host", tmpdir);
	write_file(p, "E: 1\n\ne\n", 1003);
	gn_free(p);
	p = gn_strdup_printf("%s/dovecot-keywords", tmpdir);
	write_file(p, "0 $Forwarded\n2 project-x\n99 ignored\nbad line\n", 1);
	gn_free(p);

	ok(maildir_list(tmpdir, &list, &err) == 0, "maildir listed");
	is_int((long long)list.count, 4, "cur/ and new/ are read, tmp/ is not");
	if (list.count == 4) {
		is_str(list.entries[0].name, "999.d.host;2,DP", "sorted by mtime: oldest first");
		is_int(list.entries[0].flags, IMPORT_DRAFT, "D is \\Draft, P has no flag, ';' works as separator");
		is_str(list.entries[1].name, "1000.a.host:2,FRS", "then the next");
		is_int(list.entries[1].flags, IMPORT_FLAGGED | IMPORT_ANSWERED | IMPORT_SEEN,
		       "F R S are \\Flagged \\Answered \\Seen");
		is_int(list.entries[2].flags, IMPORT_DELETED, "T is \\Deleted");
		is_int(list.entries[2].keywords, 0x5, "a and c are keywords 0 and 2");
		ok(list.entries[3].is_new && list.entries[3].flags == 0, "new/ message without flags");
		is_int((long long)list.entries[3].mtime, 1002, "mtime kept for the internal date");
	}
	is_str(list.keywords[0], "$Forwarded", "dovecot-keywords: a");
	ok(list.keywords[1] == NULL, "dovecot-keywords: b unnamed");
	is_str(list.keywords[2], "project-x", "dovecot-keywords: c");
	maildir_list_free(&list);

	unsigned kw;
	is_int(maildir_parse_info("x:2,", &kw), 0, "empty info");
	is_int(maildir_parse_info("x:1,S", &kw), 0, "info version 1 is not flags");
	is_int(maildir_parse_info("x", &kw), 0, "no info");

	char *cmd = gn_strdup_printf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		diag("cleanup failed");
	gn_free(cmd);
}

int main(void)
{
	test_mbox();
	test_maildir();
	return done_testing();
}
