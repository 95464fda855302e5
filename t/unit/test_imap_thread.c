/*
 * t/unit/test_imap_thread.c: the threading of THREAD (RFC 5256 3,
 * modules/imap/thread.c) on messages made up here: msg-ids as
 * References carries them (quoted, with comments, broken), the answer's
 * grammar (thread-members, thread-nested), dummies for missing parents
 * (kept under the root with two children, dropped with one), a cycle, a
 * dummy that takes the subject table's place (step 5.B), and a thread
 * far deeper than any stack would hold by recursion.
 */
#include "tap.h"

#include <stdio.h>
#include <string.h>

#include "../../modules/imap/sort.h"

static void test_msgids(void)
{
	struct gn_pool *pool = gn_pool_new();
	size_t n;
	const char **ids = thread_msgids(pool, "<a@b> (comment <x@y>) <\"q\\\"1\"@c.d>\r\n <lit@[1.2.3.4]> <bad> <@x> <l@>"
					       " <a b@c> <ok.dots.@x.>", &n);
	is_int((long long)n, 4, "four msg-ids: comments and broken ones skipped");
	if (n == 4) {
		is_str(ids[0], "a@b", "a plain id");
		is_str(ids[1], "q\"1@c.d", "a quoted id-left: quotes and quoted pairs undone");
		is_str(ids[2], "lit@[1.2.3.4]", "a literal id-right");
		is_str(ids[3], "ok.dots.@x.", "dots anywhere");
	}
	ids = thread_msgids(pool, NULL, &n);
	is_int((long long)n, 0, "no field: no ids");
	ids = thread_msgids(pool, "no ids here", &n);
	is_int((long long)n, 0, "text without ids");
	gn_pool_free(&pool);
}

/* Messages 1..n with the given subject, date, ids. */
struct spec {
	const char *subject;
	time_t sent;
	const char *mid, *refs, *irt;
};

static const char *run(struct gn_pool *pool, bool refs, const struct spec *sp, size_t n)
{
	struct thread_msg *m = gn_pool_alloc(pool, (n + 1) * sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		m[i].num = (uint32_t)(i + 1);
		m[i].msn = i + 1;
		m[i].sent = sp[i].sent;
		m[i].base = imap_base_subject(pool, sp[i].subject, &m[i].refwd);
		m[i].message_id = sp[i].mid;
		m[i].references = sp[i].refs;
		m[i].in_reply_to = sp[i].irt;
	}
	struct gn_buf *b = gn_buf_new(0);
	if (refs)
		thread_references(pool, m, n, b);
	else
		thread_orderedsubject(pool, m, n, b);
	const char *r = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return r;
}

static void test_orderedsubject(void)
{
	struct gn_pool *pool = gn_pool_new();
	static const struct spec s[] = {
		{ "b", 50, NULL, NULL, NULL }, { "Re: a", 20, NULL, NULL, NULL }, { "a", 30, NULL, NULL, NULL },
		{ "A", 10, NULL, NULL, NULL }, { "c", 40, NULL, NULL, NULL }, { "c", 40, NULL, NULL, NULL },
	};
	/* a: 4 (10), 2 (20), 3 (30); c: 5, 6 (same date: by number); b: 1. */
	is_str(run(pool, false, s, 6), " (4 (2)(3))(5 6)(1)", "ORDEREDSUBJECT: children flat, threads by date");
	is_str(run(pool, false, s, 1), " (1)", "one message");
	is_str(run(pool, false, s, 0), "", "no message: nothing after THREAD");
	gn_pool_free(&pool);
}

static void test_references(void)
{
	struct gn_pool *pool = gn_pool_new();
	/* RFC 5256's shape: (3 6 (4 23)(44 7 96)) in small. */
	static const struct spec chain[] = {
		{ "x", 1, "<1@x>", NULL, NULL },
		{ "x", 2, "<2@x>", "<1@x>", NULL },
		{ "x", 3, "<3@x>", "<1@x> <2@x>", NULL },
		{ "x", 4, "<4@x>", "<1@x> <2@x> <3@x>", NULL },
		{ "x", 5, "<5@x>", "<1@x> <2@x>", NULL },
		{ "x", 6, "<6@x>", NULL, "<5@x> <1@x>" },
		{ "x", 7, "<7@x>", NULL, "<6@x>" },
	};
	is_str(run(pool, true, chain, 7), " (1 2 (3 4)(5 6 7))", "a chain, then nested threads");
	/* Two messages with a missing parent: a dummy under the root; one
	 * message with a missing parent: no dummy. */
	static const struct spec orphans[] = {
		{ "p", 2, "<a@x>", "<gone@x>", NULL },
		{ "q", 1, "<b@x>", "<gone@x>", NULL },
		{ "r", 3, "<c@x>", "<gone2@x> <gone3@x>", NULL },
	};
	is_str(run(pool, true, orphans, 3), " ((2)(1))(3)", "dummies: kept with two children, dropped with one");
	/* A cycle: the first link stands; a message that refers to itself
	 * has no parent. */
	static const struct spec cycle[] = {
		{ "p", 1, "<a@x>", "<b@x>", NULL },
		{ "q", 2, "<b@x>", "<a@x>", NULL },
		{ "r", 3, "<c@x>", "<c@x>", NULL },
	};
	is_str(run(pool, true, cycle, 3), " (2 1)(3)", "a cycle in References");
	/* A duplicate Message-ID: the later message is another one. */
	static const struct spec dup[] = {
		{ "p", 1, "<a@x>", NULL, NULL },
		{ "q", 2, "<a@x>", NULL, NULL },
		{ "r", 3, "<c@x>", "<a@x>", NULL },
	};
	is_str(run(pool, true, dup, 3), " (1 3)(2)", "a duplicate Message-ID");
	/* Step 5: a reply joins the thread of its subject; two messages of
	 * one subject that are no replies go under a new dummy; a dummy
	 * thread takes the subject table's place (5.B) and the others join
	 * it. */
	static const struct spec subj[] = {
		{ "Re: s", 1, "<a@x>", NULL, NULL },
		{ "s", 2, "<b@x>", NULL, NULL },
		{ "t", 3, "<c@x>", NULL, NULL },
		{ "T", 4, "<d@x>", NULL, NULL },
		{ "u", 5, "<e@x>", NULL, NULL },
		{ "u", 6, "<f@x>", "<gone@x>", NULL },
		{ "re: u", 7, "<g@x>", "<gone@x>", NULL },
		{ "", 8, "<h@x>", NULL, NULL },
		{ "", 9, "<i@x>", NULL, NULL },
	};
	is_str(run(pool, true, subj, 9), " (2 1)((3)(4))((5)(6)(7))(8)(9)",
	       "threads merged by base subject; empty subjects never");
	gn_pool_free(&pool);
}

/* Each message the reply to the one before: one thread as deep as the
 * messages are many, threaded and written without recursion. */
static void test_deep(void)
{
	enum { N = 20000 };
	struct gn_pool *pool = gn_pool_new();
	struct spec *sp = gn_pool_alloc(pool, N * sizeof(*sp));
	for (size_t i = 0; i < N; i++) {
		sp[i].subject = "deep";
		sp[i].sent = (time_t)i;
		sp[i].mid = gn_pool_printf(pool, "<%zu@x>", i);
		sp[i].irt = i > 0 ? gn_pool_printf(pool, "<%zu@x>", i - 1) : NULL;
	}
	const char *r = run(pool, true, sp, N);
	struct gn_buf *want = gn_buf_new(0);
	(void)gn_buf_append_str(want, " (");
	for (size_t i = 1; i <= N; i++)
		(void)gn_buf_printf(want, "%s%zu", i > 1 ? " " : "", i);
	(void)gn_buf_append_str(want, ")");
	ok(strcmp(r, gn_buf_data(want)) == 0, "a thread %d messages deep", N);
	gn_buf_free(&want);
	gn_pool_free(&pool);
}

int main(void)
{
	test_msgids();
	test_orderedsubject();
	test_references();
	test_deep();
	return done_testing();
}
