/*
 * t/unit/test_store_search.c: searching a mailbox (gn_store_query_*,
 * gannet/store.h) and the save date (RFC 8514), against a real PostgreSQL,
 * through the public functions only, as a module uses them.
 *
 * A mailbox of messages whose flags, keywords, sizes, dates and header
 * fields follow from their number; every query's expected UIDs are
 * computed here from those same rules, not taken from the store.
 */
#include "main.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "pgtest.h"
#include "tap.h"

#define N_MSGS 12
#define DAY 86400
/* 2023-11-14 00:00 UTC: internal dates start here at 10:00 and step by 12
 * hours, so message i is on day i / 2. */
#define BASE_DAY 1699920000
/* Date headers: 2024-01-01 00:00 UTC, message i on day i at 23:30 +0000. */
#define SENT_DAY 1704067200

static int64_t account, inbox, archive;

struct spec {
	unsigned flags;
	bool work, junk;
	time_t internal;
	time_t sent;
	char subject[64];
	char from[64];
	size_t size;
	uint32_t uid;
	uint64_t modseq;
};
static struct spec msgs[N_MSGS];

static char *message_text(int i)
{
	struct gn_buf *b = gn_buf_new(0);
	/* Message 5 has no Date header: no sent-date condition matches it. */
	if (i != 5) {
		struct tm tm;
		time_t t = SENT_DAY + (time_t)i * DAY + 23 * 3600 + 30 * 60;
		gmtime_r(&t, &tm);
		char d[64];
		strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		gn_buf_printf(b, "Date: %s\r\n", d);
	}
	gn_buf_printf(b, "From: %s\r\nSubject: %s\r\nMessage-ID: <id%d@example.org>\r\n\r\n",
		      msgs[i].from, msgs[i].subject, i);
	gn_buf_printf(b, "body %d\r\n", i);
	for (int k = 0; k < i * 10; k++)
		gn_buf_append_str(b, "0123456789");
	return gn_buf_steal(&b);
}

static void add_messages(struct gn_pool *pool)
{
	const char *err = NULL;
	for (int i = 0; i < N_MSGS; i++) {
		struct spec *s = &msgs[i];
		s->flags = (unsigned)i & GN_STORE_FLAGS_ALL;
		s->work = i % 3 == 0;
		s->junk = i % 4 == 0;
		s->internal = BASE_DAY + 10 * 3600 + (time_t)i * 43200;
		s->sent = i == 5 ? 0 : SENT_DAY + (time_t)i * DAY + 23 * 3600 + 30 * 60;
		snprintf(s->subject, sizeof(s->subject), "%s %d", i % 2 == 0 ? "Quarterly REPORT" : "lunch", i);
		snprintf(s->from, sizeof(s->from), "Person %d <p%d@example.org>", i, i);
		char *text = message_text(i);
		s->size = strlen(text);
		struct gn_store_blob_writer *w = gn_store_blob_writer_new();
		unsigned char h[GN_STORE_HASH_SIZE];
		if (gn_store_blob_write(w, text, strlen(text), &err) < 0 || gn_store_blob_finish(w, h, NULL, &err) < 0)
			diag("blob: %s", err);
		gn_store_blob_writer_free(&w);
		struct gn_mime_message *mime = gn_mime_parse(text, strlen(text), NULL);
		const char *kw[2];
		size_t nkw = 0;
		if (s->work)
			kw[nkw++] = "Work";
		if (s->junk)
			kw[nkw++] = "$Junk";
		struct gn_store_message_new nm = {
			.size = sizeof(nm), .account_id = account, .mailbox_id = inbox,
			.flags = s->flags, .keywords = kw, .n_keywords = nkw,
			.internal_date = s->internal, .mime = mime,
		};
		memcpy(nm.blob_hash, h, sizeof(h));
		struct gn_store_message *m;
		if (gn_store_message_add(pool, &nm, &m, &err) < 0)
			diag("add %d: %s", i, err);
		else {
			s->uid = gn_store_message_uid(m);
			s->modseq = gn_store_message_modseq(m);
		}
		gn_mime_message_free(&mime);
		gn_free(text);
	}
}

static time_t day_of(time_t t)
{
	return t - t % DAY;
}

static bool date_match(time_t t, enum gn_store_query_cmp cmp, time_t day)
{
	time_t d = day_of(t);
	return cmp == GN_STORE_QUERY_BEFORE ? d < day : cmp == GN_STORE_QUERY_ON ? d == day : d >= day;
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p != '\0'; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return n == 0;
}

/* The UIDs of the messages for which want(i) holds, as "1,2,3". */
static char *expect(bool (*want)(int i, const void *arg), const void *arg)
{
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 0; i < N_MSGS; i++)
		if (want(i, arg))
			gn_buf_printf(b, "%s%" PRIu32, gn_buf_len(b) > 0 ? "," : "", msgs[i].uid);
	return gn_buf_steal(&b);
}

/* Runs q on the Inbox: the UIDs as "1,2,3", or "error: ...". */
static char *run(struct gn_pool *pool, struct gn_store_query *q)
{
	uint32_t *uids;
	uint64_t *modseqs;
	const char *err;
	int n = gn_store_query_run(pool, q, account, inbox, &uids, &modseqs, &err);
	if (n < 0)
		return gn_strdup_printf("error: %s", err);
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 0; i < n; i++)
		gn_buf_printf(b, "%s%" PRIu32, i > 0 ? "," : "", uids[i]);
	return gn_buf_steal(&b);
}

static void check(struct gn_pool *pool, struct gn_store_query *q, bool (*want)(int, const void *),
		  const void *arg, const char *name)
{
	char *got = run(pool, q);
	char *exp = expect(want, arg);
	is_str(got, exp, "%s", name);
	gn_free(got);
	gn_free(exp);
}

static bool w_all(int i, const void *a) { (void)i; (void)a; return true; }
static bool w_none(int i, const void *a) { (void)i; (void)a; return false; }
static bool w_seen(int i, const void *a) { (void)a; return (msgs[i].flags & GN_STORE_SEEN) != 0; }
static bool w_unseen_unflagged(int i, const void *a)
{
	(void)a;
	return (msgs[i].flags & (GN_STORE_SEEN | GN_STORE_FLAGGED)) == 0;
}
static bool w_seen_answered(int i, const void *a)
{
	(void)a;
	unsigned f = GN_STORE_SEEN | GN_STORE_ANSWERED;
	return (msgs[i].flags & f) == f;
}
static bool w_work(int i, const void *a) { (void)a; return msgs[i].work; }
static bool w_not_junk(int i, const void *a) { (void)a; return !msgs[i].junk; }
static bool w_larger(int i, const void *a) { return msgs[i].size > *(const size_t *)a; }
static bool w_smaller(int i, const void *a) { return msgs[i].size < *(const size_t *)a; }

struct date_arg {
	enum gn_store_query_date which;
	enum gn_store_query_cmp cmp;
	time_t day;
};
static bool w_date(int i, const void *a)
{
	const struct date_arg *d = a;
	time_t t = d->which == GN_STORE_QUERY_SENT ? msgs[i].sent : msgs[i].internal;
	return t != 0 && date_match(t, d->cmp, d->day);
}
static bool w_subject(int i, const void *a) { return contains_ci(msgs[i].subject, a); }
static bool w_from(int i, const void *a) { return contains_ci(msgs[i].from, a); }
static bool w_uids(int i, const void *a)
{
	(void)a;
	return (msgs[i].uid >= msgs[2].uid && msgs[i].uid <= msgs[4].uid) || msgs[i].uid == msgs[9].uid;
}
/* NOT (OR \Seen (AND Work LARGER 500)) */
static bool w_nested(int i, const void *a)
{
	(void)a;
	return !((msgs[i].flags & GN_STORE_SEEN) != 0 || (msgs[i].work && msgs[i].size > 500));
}
static bool w_modseq(int i, const void *a) { return msgs[i].modseq >= *(const uint64_t *)a; }
static bool w_older(int i, const void *a) { return msgs[i].internal < *(const time_t *)a; }

static void test_search(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_query *q;

	q = gn_store_query_new(pool);
	check(pool, q, w_all, NULL, "an empty query matches every message");

	q = gn_store_query_new(pool);
	gn_store_query_flags(q, GN_STORE_SEEN, true);
	check(pool, q, w_seen, NULL, "\\Seen set");
	q = gn_store_query_new(pool);
	gn_store_query_flags(q, GN_STORE_SEEN, false);
	gn_store_query_flags(q, GN_STORE_FLAGGED, false);
	check(pool, q, w_unseen_unflagged, NULL, "two conditions at the top level: both must hold");
	q = gn_store_query_new(pool);
	gn_store_query_flags(q, GN_STORE_SEEN | GN_STORE_ANSWERED, true);
	check(pool, q, w_seen_answered, NULL, "two flags at once: both set");

	q = gn_store_query_new(pool);
	gn_store_query_keyword(q, "wORK", true);
	check(pool, q, w_work, NULL, "a keyword, compared case-insensitively");
	q = gn_store_query_new(pool);
	gn_store_query_keyword(q, "$junk", false);
	check(pool, q, w_not_junk, NULL, "a keyword not set");

	size_t sz = msgs[6].size;
	q = gn_store_query_new(pool);
	gn_store_query_size(q, true, sz);
	check(pool, q, w_larger, &sz, "LARGER: strictly larger");
	q = gn_store_query_new(pool);
	gn_store_query_size(q, false, sz);
	check(pool, q, w_smaller, &sz, "SMALLER: strictly smaller");

	static const enum gn_store_query_cmp cmps[] = { GN_STORE_QUERY_BEFORE, GN_STORE_QUERY_ON,
							GN_STORE_QUERY_SINCE };
	static const char *const cmp_names[] = { "BEFORE", "ON", "SINCE" };
	for (size_t c = 0; c < 3; c++) {
		struct date_arg d = { GN_STORE_QUERY_INTERNAL, cmps[c], BASE_DAY + 2 * DAY };
		q = gn_store_query_new(pool);
		gn_store_query_date(q, d.which, d.cmp, d.day);
		check(pool, q, w_date, &d, gn_pool_printf(pool, "internal date %s a day (in UTC)", cmp_names[c]));
		struct date_arg s = { GN_STORE_QUERY_SENT, cmps[c], SENT_DAY + 7 * DAY };
		q = gn_store_query_new(pool);
		gn_store_query_date(q, s.which, s.cmp, s.day);
		check(pool, q, w_date, &s,
		      gn_pool_printf(pool, "sent date %s a day; no Date header never matches", cmp_names[c]));
	}

	q = gn_store_query_new(pool);
	gn_store_query_header(q, GN_STORE_QUERY_SUBJECT, "quarterly report");
	check(pool, q, w_subject, "quarterly report", "subject: a substring, case-insensitive");
	q = gn_store_query_new(pool);
	gn_store_query_header(q, GN_STORE_QUERY_FROM, "P1");
	check(pool, q, w_from, "P1", "from: a substring, case-insensitive");
	q = gn_store_query_new(pool);
	gn_store_query_header(q, GN_STORE_QUERY_SUBJECT, "%");
	check(pool, q, w_none, NULL, "% is no wildcard");
	q = gn_store_query_new(pool);
	gn_store_query_header(q, GN_STORE_QUERY_SUBJECT, "x'); DROP TABLE gn_messages; --");
	check(pool, q, w_none, NULL, "a value is a parameter, never SQL");
	q = gn_store_query_new(pool);
	gn_store_query_header(q, GN_STORE_QUERY_MESSAGE_ID, "<id3@");
	char *got = run(pool, q);
	is_str(got, gn_pool_printf(pool, "%" PRIu32, msgs[3].uid), "message-id");
	gn_free(got);

	uint32_t ranges[4] = { msgs[2].uid, msgs[4].uid, msgs[9].uid, msgs[9].uid };
	q = gn_store_query_new(pool);
	gn_store_query_uids(q, ranges, 2);
	check(pool, q, w_uids, NULL, "UID ranges");
	q = gn_store_query_new(pool);
	gn_store_query_uids(q, NULL, 0);
	check(pool, q, w_none, NULL, "no UID range matches nothing");

	q = gn_store_query_new(pool);
	gn_store_query_not(q);
	gn_store_query_or(q);
	gn_store_query_flags(q, GN_STORE_SEEN, true);
	gn_store_query_and(q);
	gn_store_query_keyword(q, "Work", true);
	gn_store_query_size(q, true, 500);
	gn_store_query_end(q);
	gn_store_query_end(q);
	gn_store_query_end(q);
	check(pool, q, w_nested, NULL, "NOT (OR \\Seen (AND Work LARGER 500))");

	q = gn_store_query_new(pool);
	gn_store_query_or(q);
	gn_store_query_end(q);
	check(pool, q, w_none, NULL, "an empty OR matches nothing");
	q = gn_store_query_new(pool);
	gn_store_query_not(q);
	gn_store_query_end(q);
	check(pool, q, w_none, NULL, "an empty NOT matches nothing");

	uint64_t ms = msgs[8].modseq;
	q = gn_store_query_new(pool);
	gn_store_query_modseq(q, ms);
	check(pool, q, w_modseq, &ms, "MODSEQ: at least");

	time_t t = msgs[4].internal;
	q = gn_store_query_new(pool);
	gn_store_query_time(q, true, t);
	check(pool, q, w_older, &t, "internal date before an exact time");

	q = gn_store_query_new(pool);
	gn_store_query_end(q);
	got = run(pool, q);
	like(got, "error: ", "an end without a group is an error at run");
	gn_free(got);
	q = gn_store_query_new(pool);
	gn_store_query_or(q);
	got = run(pool, q);
	like(got, "error: ", "a group not ended is an error at run");
	gn_free(got);
	q = gn_store_query_new(pool);
	gn_store_query_header(q, GN_STORE_QUERY_SUBJECT, NULL);
	got = run(pool, q);
	like(got, "error: ", "a NULL text is an error at run");
	gn_free(got);
	q = gn_store_query_new(pool);
	for (int i = 0; i <= GN_STORE_QUERY_MAX; i++)
		gn_store_query_flags(q, GN_STORE_SEEN, true);
	got = run(pool, q);
	like(got, "too complex", "more than GN_STORE_QUERY_MAX conditions is refused");
	gn_free(got);

	gn_pool_free(&pool);
}

/* RFC 8514: the save date is when the message came into its mailbox. */
static void test_save_date(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_message *m;
	ok(gn_store_message_get(pool, account, inbox, msgs[0].uid, &m, &err) == 1, "a message read back");
	time_t now = time(NULL);
	time_t saved = gn_store_message_save_date(m);
	if (!ok(saved != 0 && saved <= now + 1 && saved > now - 600,
		"its save date is when it was added, not its internal date"))
		diag("save date %lld, now %lld", (long long)saved, (long long)now);
	ok(gn_store_message_internal_date(m) == msgs[0].internal, "the internal date is kept apart");

	uint32_t one = msgs[1].uid;
	uint32_t *dst;
	ok(gn_store_message_copy(pool, account, inbox, &one, 1, archive, false, NULL, &dst, NULL, &err) == 1,
	   "a copy to another mailbox");
	struct gn_store_message *c = NULL;
	int copy_r = gn_store_message_get(pool, account, archive, dst[0], &c, &err);
	/* time() reads the kernel's coarse clock, which may still show the
	 * last second for a tick after PostgreSQL's now() shows the next: one
	 * second of slack (the check failed about once in a few hundred runs). */
	time_t copied = copy_r == 1 ? gn_store_message_save_date(c) : 0, after = time(NULL) + 1;
	if (!ok(copy_r == 1 && copied >= saved && copied <= after, "the copy has a save date of its own"))
		diag("get %d (%s), copy's save date %lld, original's %lld, now %lld", copy_r,
		     err != NULL ? err : "", (long long)copied, (long long)saved, (long long)after);

	struct gn_store_message **list;
	size_t n;
	ok(gn_store_message_list(pool, account, inbox, 1, 0, &list, &n, &err) == 0 && n == N_MSGS &&
	   gn_store_message_save_date(list[0]) == saved, "the list reads the save date too");

	/* A message stored before migration 008 has none: FETCH says NIL,
	 * searches use its internal date. */
	struct gn_store_query *q = gn_store_query_new(pool);
	gn_store_query_date(q, GN_STORE_QUERY_SAVED, GN_STORE_QUERY_ON, day_of(saved));
	char *got = run(pool, q);
	char *exp = expect(w_all, NULL);
	is_str(got, exp, "SAVEDON today: every message just added");
	gn_free(got);
	gn_free(exp);

	char *dbg = gn_strdup_printf("UPDATE gn_messages SET save_date = NULL WHERE account_id = %" PRId64
				     " AND mailbox_id = %" PRId64 " AND uid = %" PRIu32, account, inbox,
				     msgs[3].uid);
	PGresult *r = db_query(dbg, 0, NULL, &err);
	ok(r != NULL, "a message's save date made unknown");
	PQclear(r);
	gn_free(dbg);
	ok(gn_store_message_get(pool, account, inbox, msgs[3].uid, &m, &err) == 1 &&
	   gn_store_message_save_date(m) == 0, "an unknown save date reads as 0");
	q = gn_store_query_new(pool);
	gn_store_query_date(q, GN_STORE_QUERY_SAVED, GN_STORE_QUERY_BEFORE, day_of(saved));
	got = run(pool, q);
	is_str(got, gn_pool_printf(pool, "%" PRIu32, msgs[3].uid),
	       "SAVEDBEFORE today: only the message without a save date, by its internal date");
	gn_free(got);
	q = gn_store_query_new(pool);
	gn_store_query_date(q, GN_STORE_QUERY_SAVED, GN_STORE_QUERY_ON, day_of(msgs[3].internal));
	got = run(pool, q);
	is_str(got, gn_pool_printf(pool, "%" PRIu32, msgs[3].uid), "SAVEDON its internal date's day");
	gn_free(got);
	gn_pool_free(&pool);
}

int main(void)
{
	const char *err = NULL;

	log_init("test_store_search");
	if (!pgtest_setup("search")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	if (db_init(pgtest_conninfo(), &err) < 0 || db_migrate(NULL, &err) < 0) {
		ok(false, "database ready: %s", err);
		return done_testing();
	}
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *a;
	struct gn_store_mailbox *mb;
	ok(gn_store_domain_add(pool, "example.com", NULL, NULL, &err) == 0 &&
	   gn_store_account_add(pool, "alice", "alice@example.com", NULL, &a, &err) == 0,
	   "an account");
	account = gn_store_account_id(a);
	ok(gn_store_mailbox_find(pool, account, "Inbox", &mb, &err) == 1, "its Inbox");
	inbox = gn_store_mailbox_id(mb);
	ok(gn_store_mailbox_find(pool, account, "Archive", &mb, &err) == 1, "its Archive");
	archive = gn_store_mailbox_id(mb);
	add_messages(pool);
	ok(msgs[N_MSGS - 1].uid == N_MSGS, "%d messages added", N_MSGS);

	test_search();
	test_save_date();

	gn_pool_free(&pool);
	db_close();
	return done_testing();
}
