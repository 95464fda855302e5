/*
 * t/unit/test_queue.c: the outbound queue (core/queue/) against a real
 * PostgreSQL, the real store and delivery pipeline, and a fake transport.
 *
 * The fake transport answers by the recipient's localpart: "ok..." 250,
 * "temp..." 451 4.2.0, "perm..." 550 5.1.1, "conn..." no answer (code 0),
 * "hang..." no report and no done (the runner "dies").  The queue's clock
 * is moved with queue_clock_set_offset(), so retries come due without
 * waiting.
 */
#include "main.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pgtest.h"
#include "tap.h"

static struct gn_pool *pool;
static int64_t alice, bob;
static double offset;

static void advance(double s)
{
	offset += s;
	queue_clock_set_offset(offset);
}

static struct gn_addr *A(const char *s)
{
	struct gn_addr *a = NULL;
	const char *err;
	if (gn_addr_parse(pool, s, strlen(s), &a, &err) < 0)
		diag("bad test address %s: %s", s, err);
	return a;
}

static int64_t account(const char *name, const char *address)
{
	struct gn_store_account *acct = NULL;
	const char *err;
	if (gn_store_account_add(pool, name, address, NULL, &acct, &err) < 0) {
		diag("account %s: %s", name, err);
		return 0;
	}
	return acct->id;
}

/* The first value of sql (our connection), "" none, NULL on error. */
static const char *q1(const char *sql)
{
	const char *err;
	PGresult *res = store_q(sql, 0, NULL, &err);
	if (res == NULL) {
		diag("%s: %s", sql, err);
		return NULL;
	}
	const char *v = PQntuples(res) > 0 ? gn_pool_strdup(pool, PQgetvalue(res, 0, 0)) : "";
	PQclear(res);
	return v;
}

static long long qn(const char *fmt, ...) GN_PRINTF(1, 2);
static long long qn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	const char *v = q1(gn_buf_data(b));
	gn_buf_free(&b);
	return v == NULL || *v == '\0' ? -1 : atoll(v);
}

static const char body[] =
	"From: Alice <alice@example.com>\r\n"
	"To: someone@remote.example\r\n"
	"Subject: quarterly figures\r\n"
	"Message-ID: <q1@example.com>\r\n"
	"\r\n"
	"The figures.\r\n";

/* Queues body from sender (NULL: <>) for account acct to the
 * recipients: the number held, or -1; *id_r the message. */
static int enqueue_max(int64_t acct, const char *sender, const char *const *rcpts, size_t n,
		       unsigned max_attempts, int64_t *id_r)
{
	const char *err = NULL;
	struct gn_addr **r = gn_pool_alloc(pool, n * sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r[i] = A(rcpts[i]);
	unsigned char hash[GN_STORE_HASH_SIZE];
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	int held = -1;
	if (gn_db_begin(&err) == 0) {
		struct gn_queue_message m = {
			.size = sizeof(m), .account_id = acct, .sender = sender ? A(sender) : NULL,
			.recipients = (const struct gn_addr *const *)r, .n_recipients = n, .blob_hash = hash,
			.max_attempts = max_attempts, .extra_json = "{\"order\":\"42\"}",
		};
		if (gn_store_account_lock(acct, &err) > 0 && gn_store_blob_write(w, body, strlen(body), &err) == 0 &&
		    gn_store_blob_finish(w, hash, NULL, &err) == 0 && (held = gn_queue_add(&m, id_r, &err)) >= 0 &&
		    gn_db_commit(&err) < 0)
			held = -1;
		if (gn_db_in_transaction())
			gn_db_rollback();
	}
	gn_store_blob_writer_free(&w);
	if (held < 0)
		diag("enqueue: %s", err ? err : "?");
	return held;
}

static int enqueue(int64_t acct, const char *sender, const char *const *rcpts, size_t n, int64_t *id_r)
{
	return enqueue_max(acct, sender, rcpts, n, 0, id_r);
}

static int64_t rcpt_id(const char *rcpt)
{
	return qn("SELECT id FROM gn_queue_recipients WHERE rcpt = '%s'", rcpt);
}

/* DSNs in an account's Inbox with that subject. */
static long long dsns(int64_t acct, const char *subject)
{
	return qn("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.account_id = m.account_id "
		  "AND b.id = m.mailbox_id WHERE m.account_id = %" PRId64 " AND b.name = 'Inbox' AND "
		  "m.subject = '%s'", acct, subject);
}

/* ---- the fake transport ---- */

static unsigned deliveries;
static struct gn_queue_delivery *hung;
/* "rcpt mail-from fromid\n" for each recipient given to the transport
 * ("<>" and "-" for none). */
static struct gn_buf *envelopes;
/* What the last delivery's message asked of the TLS (RFC 8689). */
static enum gn_queue_require_tls last_require_tls;

static void fake_deliver(struct gn_queue_delivery *qd, void *data)
{
	(void)data;
	deliveries++;
	last_require_tls = gn_queue_delivery_require_tls(qd);
	for (size_t i = 0; i < gn_queue_delivery_recipient_count(qd); i++) {
		const char *lp = gn_queue_delivery_recipient(qd, i)->localpart;
		const struct gn_addr *mf = gn_queue_delivery_recipient_sender(qd, i);
		const char *fid = gn_queue_delivery_from_id(qd, i);
		if (envelopes != NULL)
			gn_buf_printf(envelopes, "%s %s %s%s\n",
				      gn_addr_to_string(pool, gn_queue_delivery_recipient(qd, i)),
				      mf != NULL ? gn_addr_to_string(pool, mf) : "<>", fid != NULL ? fid : "-",
				      mf == gn_queue_delivery_sender(qd) ? "" : " (differs)");
		if (strncmp(lp, "hang", 4) == 0) {
			hung = qd;
			return;
		}
		if (strncmp(lp, "ok", 2) == 0)
			gn_queue_delivery_report(qd, i, 250, "2.0.0", "queued as 1", "mx.remote.example", "192.0.2.1");
		else if (strncmp(lp, "temp", 4) == 0)
			gn_queue_delivery_report(qd, i, 451, "4.2.0", "try\r\nlater", "mx.remote.example", "192.0.2.1");
		else if (strncmp(lp, "perm", 4) == 0)
			gn_queue_delivery_report(qd, i, 550, "5.1.1", "no such user", "mx.remote.example", "192.0.2.1");
		else
			gn_queue_delivery_report(qd, i, 0, NULL, "connection refused", "mx.remote.example", "192.0.2.1");
	}
	gn_queue_delivery_done(qd);
}

static int run(void)
{
	const char *err;
	int n = gn_queue_run(100, &err);
	if (n < 0)
		diag("gn_queue_run: %s", err);
	return n;
}

/* ---- tests ---- */

/* Queues body to rcpt with require_tls rt, the struct cut to size: 0 or
 * -1 with *err_r. */
static int enqueue_tls(const char *rcpt, enum gn_queue_require_tls rt, size_t size, const char **err_r)
{
	const struct gn_addr *r[1] = { A(rcpt) };
	unsigned char hash[GN_STORE_HASH_SIZE];
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	int held = -1;
	*err_r = NULL;
	if (gn_db_begin(err_r) == 0) {
		struct gn_queue_message m = {
			.size = size, .account_id = alice, .sender = A("alice@example.com"),
			.recipients = r, .n_recipients = 1, .blob_hash = hash, .require_tls = rt,
		};
		if (gn_store_account_lock(alice, err_r) > 0 &&
		    gn_store_blob_write(w, body, strlen(body), err_r) == 0 &&
		    gn_store_blob_finish(w, hash, NULL, err_r) == 0 &&
		    (held = gn_queue_add(&m, NULL, err_r)) >= 0 && gn_db_commit(err_r) < 0)
			held = -1;
		if (gn_db_in_transaction())
			gn_db_rollback();
	}
	gn_store_blob_writer_free(&w);
	return held < 0 ? -1 : 0;
}

/* RFC 8689: the message's TLS requirement is stored (016_requiretls.sql)
 * and handed to the transport; an older caller's shorter struct reads as
 * the default; a value out of the enum is refused. */
static void test_require_tls(void)
{
	static const struct {
		const char *rcpt;
		enum gn_queue_require_tls rt;
		const char *column, *name;
	} cases[] = {
		{ "ok-rt1@remote.example", GN_QUEUE_TLS_REQUIRED, "true", "requiretls" },
		{ "ok-rt2@remote.example", GN_QUEUE_TLS_RELAXED, "false", "relaxed" },
		{ "ok-rt3@remote.example", GN_QUEUE_TLS_DEFAULT, "null", "default" },
	};
	const char *err;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is_int(enqueue_tls(cases[i].rcpt, cases[i].rt, sizeof(struct gn_queue_message), &err), 0,
		       "queued %s", cases[i].name);
		is_str(q1(gn_pool_printf(pool, "SELECT coalesce(m.require_tls::text, 'null') FROM "
					 "gn_queue_messages m JOIN gn_queue_recipients r ON r.account_id = "
					 "m.account_id AND r.message_id = m.id WHERE r.rcpt = '%s'",
					 cases[i].rcpt)), cases[i].column, "%s stored", cases[i].name);
		last_require_tls = (enum gn_queue_require_tls)99;
		is_int(run(), 1, "%s delivered", cases[i].name);
		is_int((int)last_require_tls, (int)cases[i].rt, "the transport sees %s", cases[i].name);
		is_str(gn_queue_require_tls_name(cases[i].rt), cases[i].name, "its name");
	}
	is_int(enqueue_tls("ok-rt4@remote.example", GN_QUEUE_TLS_REQUIRED,
			   offsetof(struct gn_queue_message, require_tls), &err), 0,
	       "a struct that ends before require_tls is taken");
	last_require_tls = (enum gn_queue_require_tls)99;
	is_int(run(), 1, "and delivered");
	is_int((int)last_require_tls, (int)GN_QUEUE_TLS_DEFAULT, "as the default");
	int r = enqueue_tls("ok-rt5@remote.example", (enum gn_queue_require_tls)7,
			    sizeof(struct gn_queue_message), &err);
	ok(r < 0 && err != NULL && strstr(err, "require_tls") != NULL,
	   "a require_tls out of the enum is refused (%s)", err != NULL ? err : "-");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'ok-rt5@remote.example'"), 0,
	       "nothing queued for it");
}

static void test_no_transport(void)
{
	static const char *const r[] = { "nobody@none.example" };
	int64_t mid;
	ok(enqueue(alice, "alice@example.com", r, 1, &mid) == 0, "a message is queued, not held");
	is_int(run(), 1, "without a transport the runner attempts it");
	int64_t id = rcpt_id("nobody@none.example");
	is_str(q1("SELECT state || ' ' || attempts || ' ' || last_code || ' ' || last_text FROM gn_queue_recipients "
		  "WHERE rcpt = 'nobody@none.example'"), "queued 1 0 no transport configured",
	       "and it fails temporarily: no transport configured (kept, never dropped)");
	is_int(qn("SELECT count(*) FROM gn_queue_attempts WHERE recipient_id = %" PRId64, id), 1,
	       "the attempt is recorded");
	const char *err;
	is_int(gn_queue_drop(id, &err), 1, "dropped");
	is_int(qn("SELECT count(*) FROM gn_queue_messages WHERE id = %" PRId64, mid), 0,
	       "the message went with its last recipient");
}

static void test_retry_schedule(void)
{
	static const char *const r[] = { "temp@remote.example" };
	int64_t mid;
	enqueue(alice, "alice@example.com", r, 1, &mid);
	int64_t id = rcpt_id("temp@remote.example");
	long long want[] = { 450, 900, 1800, 3600, 7200, 14400, 28800 };
	bool sched_ok = true;
	for (int a = 1; a <= 7; a++) {
		if (run() != 1) {
			diag("attempt %d did not run", a);
			sched_ok = false;
			break;
		}
		long long gap = qn("SELECT round(extract(epoch FROM next_attempt - last_attempt)) FROM "
				   "gn_queue_recipients WHERE id = %" PRId64, id);
		if (gap != want[a - 1]) {
			diag("after attempt %d the next is %llds later, want %lld", a, gap, want[a - 1]);
			sched_ok = false;
		}
		if (run() != 0) {
			diag("attempt %d: ran again before it was due", a);
			sched_ok = false;
		}
		advance((double)want[a - 1] - 1);
		if (run() != 0) {
			diag("attempt %d: ran again a second early", a);
			sched_ok = false;
		}
		advance(1);
		if (a == 4)
			is_int(dsns(alice, "mail delivery delayed"), 0, "no delayed DSN before the 5th failure");
		if (a == 5)
			is_int(dsns(alice, "mail delivery delayed"), 1, "a delayed DSN after the 5th failure");
	}
	ok(sched_ok, "retries after 7.5 min, doubling each time (15, 30 min, 1, 2, 4, 8 h), never early");
	is_int(dsns(alice, "mail delivery failed"), 0, "no failure DSN while attempts remain");
	is_int(run(), 1, "the 8th attempt");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE id = %" PRId64, id), 0,
	       "after the 8th (the default maximum) the recipient failed for good and left the queue");
	is_int(dsns(alice, "mail delivery failed"), 1, "a failure DSN");
	is_int(dsns(alice, "mail delivery delayed"), 1, "and only one delayed DSN");
	is_str(q1("SELECT result || ' ' || attempts || ' ' || last_code || ' ' || last_text FROM gn_queue_retired "
		  "WHERE id = " "(SELECT max(id) FROM gn_queue_retired)"),
	       "failed 8 451 try  later", "retired as failed with its 8 attempts and the last answer (CRLF cleaned)");
	is_int(qn("SELECT count(*) FROM gn_queue_retired_attempts WHERE recipient_id = %" PRId64, id), 8,
	       "its attempts kept");
}

static void test_max_attempts(void)
{
	static const char *const r[] = { "conn@two.example" };
	int64_t mid;
	enqueue_max(alice, "alice@example.com", r, 1, 2, &mid);
	is_int(run(), 1, "first attempt");
	ok(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'conn@two.example'") == 1,
	   "a connection failure is retried");
	advance(450);
	is_int(run(), 1, "second attempt");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'conn@two.example'"), 0,
	       "with max attempts 2 the second failure is final");
}

static void test_results(void)
{
	static const char *const r[] = { "ok@mixed.example", "perm@mixed.example", "temp@mixed.example",
					 "ok@other.example" };
	long long failed0 = dsns(alice, "mail delivery failed");
	unsigned d0 = deliveries;
	int64_t mid;
	enqueue(alice, "alice@example.com", r, 4, &mid);
	is_int(run(), 2, "two groups: one a domain");
	is_int(deliveries - d0, 2, "the transport got each domain once (its recipients together)");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE message_id = %" PRId64, mid), 1,
	       "2xx delivered and 5xx failed left; 4xx stays");
	is_str(q1("SELECT string_agg(rcpt || '=' || result, ',' ORDER BY rcpt) FROM gn_queue_retired WHERE "
		  "rcpt LIKE '%mixed.example' OR rcpt = 'ok@other.example'"),
	       "ok@mixed.example=delivered,ok@other.example=delivered,perm@mixed.example=failed",
	       "retired with their results");
	is_int(dsns(alice, "mail delivery failed") - failed0, 1, "a failure DSN for the 5xx");
	is_str(q1("SELECT host || ' ' || ip || ' ' || code || ' ' || enhanced || ' ' || text FROM "
		  "gn_queue_retired_attempts a JOIN gn_queue_retired r ON r.account_id = a.account_id AND "
		  "r.id = a.recipient_id WHERE r.rcpt = 'perm@mixed.example'"),
	       "mx.remote.example 192.0.2.1 550 5.1.1 no such user", "the attempt's host, IP, codes and text");
	is_str(q1("SELECT extra->>'order' FROM gn_queue_retired WHERE rcpt = 'ok@other.example'"), "42",
	       "the extra data kept");
	is_int(qn("SELECT refcount FROM gn_blobs b JOIN gn_queue_messages m ON m.blob_id = b.id "
		  "WHERE m.id = %" PRId64, mid), 1, "the queued message holds one blob reference");
	const char *err;
	is_int(gn_queue_drop(rcpt_id("temp@mixed.example"), &err), 1, "the last one dropped");
	is_int(dsns(alice, "mail delivery failed") - failed0, 1, "without DSN");
	is_int(qn("SELECT count(*) FROM gn_queue_messages WHERE id = %" PRId64, mid), 0, "the message is gone");
}

static void test_null_sender(void)
{
	static const char *const r[] = { "perm@null.example" };
	long long before = dsns(alice, "mail delivery failed");
	int64_t mid;
	enqueue(alice, NULL, r, 1, &mid);
	is_int(run(), 1, "a message from <> is attempted");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE message_id = %" PRId64, mid), 0, "and fails");
	is_int(dsns(alice, "mail delivery failed"), before, "without a DSN (from <>)");
}

static void test_hold_rules(void)
{
	const char *err;
	int64_t rule;
	is_int(gn_queue_holdrule_add(0, NULL, "held.example", &rule, &err), 0, "a rule for a recipient domain");
	static const char *const r1[] = { "ok@held.example", "ok@free.example" };
	int64_t mid;
	is_int(enqueue(alice, "alice@example.com", r1, 2, &mid), 1, "a new message: the matching recipient held");
	is_int(run(), 1, "only the other is attempted");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'ok@held.example' AND held AND attempts = 0"),
	       1, "the held one is never attempted");
	advance(86400);
	is_int(run(), 0, "not even a day later");

	static const char *const r2[] = { "ok@later.example" };
	static const char *const r3[] = { "ok@later.example" };
	enqueue(alice, "alice@example.com", r2, 1, &mid);
	enqueue(bob, "bob@example.com", r3, 1, &mid);
	hung = NULL;
	int64_t rule2;
	is_int(gn_queue_holdrule_add(alice, "example.com", "later.example", &rule2, &err), 1,
	       "adding a rule (account, sender and recipient domain) holds the queued recipient it matches");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients r JOIN gn_queue_messages m ON m.id = r.message_id "
		  "WHERE r.rcpt = 'ok@later.example' AND r.held AND m.account_id = %" PRId64, alice), 1,
	       "alice's");
	is_int(run(), 1, "bob's (another account) goes");
	is_int(gn_queue_holdrule_rm(rule2, &err), 1, "the rule removed");
	is_int(gn_queue_holdrule_rm(rule2, &err), 0, "once");
	is_int(run(), 0, "removing a rule releases nothing");
	int64_t id = rcpt_id("ok@later.example");
	is_int(gn_queue_hold(id, false, &err), 1, "released by hand");
	is_int(run(), 1, "then delivered");

	/* A new message matching the rule with every field: AND. */
	int64_t rule3;
	gn_queue_holdrule_add(bob, NULL, NULL, &rule3, &err);
	static const char *const r4[] = { "ok@x.example" };
	is_int(enqueue(alice, "alice@example.com", r4, 1, &mid), 0, "a rule for bob holds nothing of alice's");
	is_int(enqueue(bob, "bob@example.com", r4, 1, &mid), 1, "but bob's");
	gn_queue_holdrule_rm(rule3, &err);
	gn_queue_holdrule_rm(rule, &err);
	run();
	/* Clean up what stays held. */
	gn_queue_drop(rcpt_id("ok@held.example"), &err);
	gn_queue_drop(qn("SELECT id FROM gn_queue_recipients WHERE rcpt = 'ok@x.example'"), &err);
}

static void test_schedule_fail(void)
{
	static const char *const r[] = { "temp@sched.example" };
	int64_t mid;
	const char *err;
	enqueue(alice, "alice@example.com", r, 1, &mid);
	int64_t id = rcpt_id("temp@sched.example");
	is_int(gn_queue_schedule(id, (time_t)(gn_queue_now() + 3600), &err), 1, "scheduled an hour later");
	is_int(run(), 0, "not attempted now");
	is_int(gn_queue_schedule(id, (time_t)gn_queue_now(), &err), 1, "scheduled now");
	is_int(run(), 1, "attempted");
	long long before = dsns(alice, "mail delivery failed");
	is_int(gn_queue_fail(id, &err), 1, "failed by the administrator");
	is_int(dsns(alice, "mail delivery failed") - before, 1, "with a DSN");
	is_str(q1("SELECT result FROM gn_queue_retired WHERE rcpt = 'temp@sched.example'"), "failed", "retired");
	is_int(gn_queue_fail(id, &err), 0, "a second time: no such queued recipient");
}

static void test_lease(void)
{
	static const char *const r[] = { "hang@lease.example" };
	int64_t mid;
	hung = NULL;
	enqueue(alice, "alice@example.com", r, 1, &mid);
	is_int(run(), 1, "attempted; the transport never answers (the runner died)");
	struct gn_queue_delivery *first = hung;
	ok(first != NULL, "the transport holds the delivery");
	is_int(run(), 0, "a delivering recipient is not claimed again during its lease");
	advance(3601);
	hung = NULL;
	is_int(run(), 1, "after the lease it is claimed again (nothing lost)");
	is_int(qn("SELECT attempts FROM gn_queue_recipients WHERE rcpt = 'hang@lease.example'"), 2,
	       "as a second attempt");
	/* The first runner's late answer: ignored, the row is the second's. */
	gn_queue_delivery_report(first, 0, 250, "2.0.0", "late", NULL, NULL);
	gn_queue_delivery_done(first);
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'hang@lease.example' AND "
		  "state = 'delivering'"), 1, "a stale result changes nothing");
	gn_queue_delivery_report(hung, 0, 250, "2.0.0", "ok", NULL, NULL);
	gn_queue_delivery_done(hung);
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'hang@lease.example'"), 0,
	       "the current one's result counts");
}

static void test_retired_expiry(void)
{
	const char *err;
	ok(gn_queue_retired_cleanup(&err) > 0, "the clean-up removes what the moved clock expired");
	static const char *const rk[] = { "ok@keep.example" };
	int64_t mid;
	enqueue(alice, "alice@example.com", rk, 1, &mid);
	run();
	long long kept = qn("SELECT count(*) FROM gn_queue_retired");
	ok(kept > 0, "retired recipients kept (alice keeps an hour)");
	static const char *const r[] = { "ok@bobs.example" };
	enqueue(bob, "bob@example.com", r, 1, &mid);
	run();
	is_int(qn("SELECT count(*) FROM gn_queue_retired WHERE rcpt = 'ok@bobs.example'"), 0,
	       "an account with period 0 keeps no history");
	is_int(qn("SELECT count(*) FROM gn_queue_messages WHERE id = %" PRId64, mid), 0, "yet the message left");
	is_int(gn_queue_retired_cleanup(&err), 0, "clean-up: nothing expired yet");
	advance(3601);
	ok(gn_queue_retired_cleanup(&err) == (int)kept, "an hour later the clean-up removes them");
	is_int(qn("SELECT count(*) FROM gn_queue_retired_attempts"), 0, "with their attempts");
}

static void test_dsn_format(void)
{
	const char *err;
	unsigned char hash[GN_STORE_HASH_SIZE];
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	gn_store_blob_write(w, body, strlen(body), &err);
	gn_store_blob_finish(w, hash, NULL, &err);
	gn_store_blob_writer_free(&w);
	struct queue_dsn_rcpt r = { .rcpt = "perm@remote.example", .code = 550, .enhanced = "5.1.1",
				    .text = "no such user", .host = "mx.remote.example", .last_attempt = 1e9 };
	struct queue_dsn dsn = { .kind = QUEUE_DSN_FAILED, .account_id = alice, .sender = "alice@example.com",
				 .blob_hash = hash, .message_id = "<q1@example.com>", .queued_at = 1e9,
				 .rcpts = &r, .n_rcpts = 1 };
	size_t len;
	const char *text = queue_dsn_build(pool, &dsn, &len, &err);
	ok(text != NULL, "a DSN is built");
	struct gn_mime_message *m = gn_mime_parse(text, len, NULL);
	const struct gn_mime_part *root = gn_mime_message_root(m);
	is_str(gn_mime_part_type(root), "multipart", "multipart");
	is_str(gn_mime_part_subtype(root), "report", "/report");
	is_str(gn_mime_part_param(root, "report-type"), "delivery-status", "report-type=delivery-status");
	is_int((long long)gn_mime_part_child_count(root), 3, "three parts");
	const struct gn_mime_part *st = gn_mime_part_child(root, 1), *hd = gn_mime_part_child(root, 2);
	is_str(st ? gn_mime_part_subtype(st) : NULL, "delivery-status", "message/delivery-status");
	is_str(hd ? gn_mime_part_subtype(hd) : NULL, "rfc822-headers", "text/rfc822-headers");
	is_int((long long)gn_mime_message_problem_count(m), 0, "the parser finds no problem");
	like(text, "Final-Recipient: rfc822; perm@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
	     "Remote-MTA: dns; mx.remote.example\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
	     "the recipient's fields");
	like(text, "Subject: quarterly figures\r\nMessage-ID: <q1@example.com>\r\n\r\n--", "the original header");
	like(text, "References: <q1@example.com>\r\n", "References the original");
	gn_mime_message_free(&m);
	r.enhanced = "4.2.0";
	r.retry_until = 2e9;
	dsn.kind = QUEUE_DSN_DELAYED;
	text = queue_dsn_build(pool, &dsn, &len, &err);
	like(text, "Action: delayed\r\nStatus: 4.2.0\r\n", "a delayed DSN: status class 4");
	like(text, "Will-Retry-Until: ", "with Will-Retry-Until");
	/* RFC 6533: a non-ASCII address needs the global types. */
	r.rcpt = "j\xc3\xb6rg@remote.example";
	text = queue_dsn_build(pool, &dsn, &len, &err);
	like(text, "Content-Type: message/global-delivery-status\r\n", "a UTF-8 recipient: global-delivery-status");
	like(text, "Final-Recipient: utf-8; j\xc3\xb6rg@remote.example\r\n", "its address type utf-8");
	like(text, "Content-Type: message/global-headers\r\n", "and global-headers");
	m = gn_mime_parse(text, len, NULL);
	is_int((long long)gn_mime_part_child_count(gn_mime_message_root(m)), 3, "still three parts");
	gn_mime_message_free(&m);
	dsn.sender = "";
	ok(queue_dsn_build(pool, &dsn, &len, &err) == NULL, "none for <>");
	/* For the Python check in t/integration/200-queue-cli.t. */
}

/* ---- claims from two processes ---- */

#define RACE_N 40

static void claimer(int fd)
{
	const char *err;
	if (db_init(pgtest_conninfo(), &err) < 0)
		_exit(3);
	for (;;) {
		struct gn_queue_delivery *qd = NULL;
		int r = queue_claim(&qd, &err);
		if (r < 0)
			_exit(4);
		if (r == 0)
			break;
		for (size_t i = 0; i < gn_queue_delivery_recipient_count(qd); i++) {
			char line[128];
			int n = snprintf(line, sizeof(line), "%s\n", gn_addr_to_string(pool, gn_queue_delivery_recipient(qd, i)));
			if (write(fd, line, (size_t)n) != n)
				_exit(5);
		}
		/* Left delivering: the lease keeps it from the other. */
	}
	_exit(0);
}

static void test_skip_locked(void)
{
	const char *err;
	for (int i = 0; i < RACE_N; i++) {
		const char *rc = gn_pool_printf(pool, "ok@race%d.example", i);
		const char *rr[1] = { rc };
		int64_t mid;
		enqueue(alice, "alice@example.com", rr, 1, &mid);
	}
	/* A row another session holds is skipped, not waited for. */
	PGconn *other = PQconnectdb(pgtest_conninfo());
	PGresult *res = PQexec(other, "BEGIN");
	PQclear(res);
	res = PQexec(other, "SELECT id FROM gn_queue_recipients WHERE rcpt = 'ok@race0.example' FOR UPDATE");
	is_int(PQntuples(res), 1, "another session locks one due recipient");
	PQclear(res);
	struct gn_queue_delivery *qd = NULL;
	/* Were the lock waited for, the claim would fail after 10 s. */
	store_q_count("SET statement_timeout = '10s'", 0, NULL, &err);
	is_int(queue_claim(&qd, &err), 1, "a claim meanwhile does not wait");
	store_q_count("SET statement_timeout = 0", 0, NULL, &err);
	int first = -1;
	if (qd != NULL)
		(void)sscanf(gn_addr_to_string(pool, gn_queue_delivery_recipient(qd, 0)), "ok@race%d.example", &first);
	ok(first > 0, "and takes another (SKIP LOCKED)");
	/* No report: a temporary failure, retried later (not due below). */
	if (qd != NULL)
		gn_queue_delivery_done(qd);
	res = PQexec(other, "ROLLBACK");
	PQclear(res);
	PQfinish(other);

	/* Two processes claim everything at once. */
	db_close();
	int fds[2][2];
	pid_t pids[2];
	for (int k = 0; k < 2; k++) {
		if (pipe(fds[k]) < 0)
			return;
		pids[k] = fork();
		if (pids[k] == 0) {
			close(fds[k][0]);
			claimer(fds[k][1]);
		}
		close(fds[k][1]);
	}
	struct gn_buf *got[2] = { gn_buf_new(0), gn_buf_new(0) };
	for (int k = 0; k < 2; k++) {
		char buf[4096];
		ssize_t n;
		while ((n = read(fds[k][0], buf, sizeof(buf))) > 0)
			gn_buf_append(got[k], buf, (size_t)n);
		close(fds[k][0]);
	}
	bool exited = true;
	for (int k = 0; k < 2; k++) {
		int st;
		if (waitpid(pids[k], &st, 0) != pids[k] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			diag("claimer %d: status %d", k, st);
			exited = false;
		}
	}
	ok(exited, "both claimers finished");
	if (db_init(pgtest_conninfo(), &err) < 0)
		diag("reconnect: %s", err);
	/* Every recipient exactly once over both. */
	int seen[RACE_N] = { 0 };
	int total = 0, dup = 0, each[2] = { 0, 0 };
	for (int k = 0; k < 2; k++) {
		const char *s = gn_buf_data(got[k]);
		while (s != NULL && *s != '\0') {
			int i;
			if (sscanf(s, "ok@race%d.example", &i) == 1 && i >= 0 && i < RACE_N) {
				if (seen[i]++ > 0)
					dup++;
				total++;
				each[k]++;
			}
			s = strchr(s, '\n');
			if (s != NULL)
				s++;
		}
		gn_buf_free(&got[k]);
	}
	int missing = 0;
	for (int i = 0; i < RACE_N; i++)
		if (seen[i] == 0 && i != first)
			missing++;
	diag("claims: %d and %d", each[0], each[1]);
	is_int(dup, 0, "no recipient was claimed twice by the two processes");
	is_int(missing, 0, "every due recipient was claimed by one of them");
	is_int(total, RACE_N - 1, "claims add up");
	/* Leave the queue clean: they are delivering; their lease ends. */
	advance(3601);
	while (run() > 0)
		;
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt LIKE 'ok@race%%'"), 0,
	       "after the lease every one is delivered");
}

/* Queues body with FromIDs (NULL entries: none): held count or -1 with
 * *err_r. */
static int enqueue_fromids(const char *sender, const char *const *rcpts, const char *const *ids,
			   size_t n, const char **err_r)
{
	struct gn_addr **r = gn_pool_alloc(pool, n * sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r[i] = A(rcpts[i]);
	unsigned char hash[GN_STORE_HASH_SIZE];
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	int held = -1;
	*err_r = NULL;
	if (gn_db_begin(err_r) == 0) {
		struct gn_queue_message m = {
			.size = sizeof(m), .account_id = alice, .sender = sender ? A(sender) : NULL,
			.recipients = (const struct gn_addr *const *)r, .n_recipients = n, .blob_hash = hash,
			.from_ids = ids,
		};
		if (gn_store_account_lock(alice, err_r) > 0 && gn_store_blob_write(w, body, strlen(body), err_r) == 0 &&
		    gn_store_blob_finish(w, hash, NULL, err_r) == 0 && (held = gn_queue_add(&m, NULL, err_r)) >= 0 &&
		    gn_db_commit(err_r) < 0)
			held = -1;
		if (gn_db_in_transaction())
			gn_db_rollback();
	}
	gn_store_blob_writer_free(&w);
	return held;
}

static void test_fromid(void)
{
	const char *err, *rcpt = NULL, *state = NULL;
	int64_t id = 0, mid = 0;
	const char *rc[3] = { "ok-f1@remote.example", "ok-f2@remote.example", "ok-f3@remote.example" };
	const char *ids[3] = { "fidA1", "fid_A-2", NULL };

	is_int(enqueue_fromids("alice+tag@example.com", rc, ids, 3, &err), 0,
	       "queued with FromIDs for two of three recipients");
	is_str(q1("SELECT string_agg(rcpt || '=' || coalesce(from_id, '-'), ' ' ORDER BY rcpt) "
		  "FROM gn_queue_recipients WHERE rcpt LIKE 'ok-f%'"),
	       "ok-f1@remote.example=fidA1 ok-f2@remote.example=fid_A-2 ok-f3@remote.example=-",
	       "each recipient's FromID is stored");
	is_int(gn_queue_fromid_find(pool, "fidA1", &id, &mid, &rcpt, &state, &err), 1,
	       "gn_queue_fromid_find: a queued recipient's FromID");
	ok(id == rcpt_id("ok-f1@remote.example") && mid > 0 && rcpt != NULL &&
	   strcmp(rcpt, "ok-f1@remote.example") == 0 && state != NULL && strcmp(state, "queued") == 0,
	   "its id, message, address and state queued");
	envelopes = gn_buf_new(0);
	unsigned d0 = deliveries;
	is_int(run(), 3, "three deliveries: one envelope sender each");
	is_int((long long)(deliveries - d0), 3, "the transport got each recipient alone");
	is_str(gn_buf_data(envelopes),
	       "ok-f1@remote.example alice+fidA1@example.com fidA1\n"
	       "ok-f2@remote.example alice+fid_A-2@example.com fid_A-2\n"
	       "ok-f3@remote.example alice+tag@example.com -\n",
	       "MAIL FROM local+fromid@domain (the tag cut, the domain's separator), "
	       "the sender as queued without one");
	gn_buf_free(&envelopes);
	rcpt = state = NULL;
	is_int(gn_queue_fromid_find(pool, "fid_A-2", &id, &mid, &rcpt, &state, &err), 1,
	       "after delivery the FromID finds the retired recipient");
	ok(id > 0 && state != NULL && strcmp(state, "delivered") == 0 && rcpt != NULL &&
	   strcmp(rcpt, "ok-f2@remote.example") == 0, "delivered, ok-f2@remote.example");
	is_int(gn_queue_fromid_find(pool, "nosuch", NULL, NULL, NULL, NULL, &err), 0, "an unknown FromID: 0");
	is_int(gn_queue_fromid_find(pool, "a.b", NULL, NULL, NULL, NULL, &err), 0, "an invalid one: 0");

	const char *r1[1] = { "ok-f4@remote.example" }, *r2[2] = { "ok-f4@remote.example", "ok-f5@remote.example" };
	const char *used[1] = { "fidA1" }, *twice[2] = { "x1", "x1" }, *bad[1] = { "a b" };
	is_int(enqueue_fromids("alice@example.com", r1, used, 1, &err), -1, "a retired FromID again: refused");
	is_str(err, "a FromID was used before", "saying so");
	is_int(enqueue_fromids("alice@example.com", r2, twice, 2, &err), -1, "one FromID twice in a message: refused");
	is_str(err, "a FromID given twice", "saying so");
	is_int(enqueue_fromids("alice@example.com", r1, bad, 1, &err), -1, "a FromID with a space: refused");
	is_int(enqueue_fromids(NULL, r1, ids, 1, &err), -1, "FromIDs from <>: refused");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt LIKE 'ok-f%%'"), 0,
	       "nothing of them queued");
}

/* Queues data (len bytes) as gn_queue_message.body, in a transaction of
 * the caller's, to rcpt: the held count or -1 with *err_r; *id_r. */
static int enqueue_body(const char *rcpt, const void *data, size_t len, bool with_hash,
			int64_t *id_r, const char **err_r)
{
	const struct gn_addr *r[1] = { A(rcpt) };
	static const unsigned char zero[GN_STORE_HASH_SIZE];
	int held = -1;
	*err_r = NULL;
	if (gn_db_begin(err_r) == 0) {
		struct gn_queue_message m = {
			.size = sizeof(m), .account_id = alice, .sender = A("alice@example.com"),
			.recipients = r, .n_recipients = 1, .blob_hash = with_hash ? zero : NULL,
			.body = data, .body_len = len,
		};
		if ((held = gn_queue_add(&m, id_r, err_r)) >= 0 && gn_db_commit(err_r) < 0)
			held = -1;
		if (gn_db_in_transaction())
			gn_db_rollback();
	}
	return held;
}

/* gn_queue_message.body: a small body stored in the queue's statement,
 * its blob's row written once with its reference; the same bytes again
 * take that blob; a body larger than a chunk goes through a blob writer;
 * the Message-ID and Subject are read from the bytes. */
static void test_body(void)
{
	const char *err;
	int64_t id1 = 0, id2 = 0, id3 = 0;
	static const char small[] = "From: alice@example.com\r\nMessage-ID: <body1@example.com>\r\n"
		"Subject: bytes\r\n\r\nsmall body\r\n";
	const struct gn_addr *r1[1] = { A("ok-body1@remote.example") };
	struct gn_queue_message m = {
		.size = sizeof(m), .account_id = alice, .sender = A("alice@example.com"),
		.recipients = r1, .n_recipients = 1, .body = small, .body_len = strlen(small),
	};
	/* The backend's counts not yet reported, read twice in the
	 * transaction (none is reported in the middle of one). */
	static const char counts[] = "SELECT n_tup_ins || ' ' || n_tup_upd FROM pg_stat_xact_user_tables "
		"WHERE relname = 'gn_blobs'";
	long long ins0 = -1, upd0 = -1, ins1 = -1, upd1 = -1;
	const char *c0 = gn_db_begin(&err) == 0 ? q1(counts) : NULL;
	ok(c0 != NULL && gn_queue_add(&m, &id1, &err) == 0, "a body as bytes is queued");
	const char *c1 = q1(counts);
	if (c0 == NULL || c1 == NULL || sscanf(c0, "%lld %lld", &ins0, &upd0) != 2 ||
	    sscanf(c1, "%lld %lld", &ins1, &upd1) != 2)
		diag("counts: %s, %s", c0 != NULL ? c0 : "-", c1 != NULL ? c1 : "-");
	ok(ins1 - ins0 == 1 && upd1 - upd0 == 0 && ins0 >= 0,
	   "its blob's row inserted with its reference, not updated after (%lld, %lld)",
	   ins1 - ins0, upd1 - upd0);
	ok(gn_db_commit(&err) == 0, "committed");
	const char *blob = gn_pool_printf(pool, "(SELECT blob_id FROM gn_queue_messages WHERE id = %" PRId64 ")",
					  id1);
	is_int(qn("SELECT refcount FROM gn_blobs WHERE id = %s", blob), 1, "its blob, one reference");
	is_str(q1(gn_pool_printf(pool, "SELECT encode(sha256(string_agg(data, ''::bytea ORDER BY seq)), 'hex') "
				 "= encode(b.hash, 'hex') AND sum(length(data)) = b.size AND b.size = %zu "
				 "FROM gn_blob_chunks c JOIN gn_blobs b ON b.id = c.blob_id WHERE b.id = %s "
				 "GROUP BY b.hash, b.size", strlen(small), blob)), "t",
	       "the chunk holds the bytes: the blob's hash and size are theirs");
	is_str(q1(gn_pool_printf(pool, "SELECT message_id || ' ' || subject FROM gn_queue_messages "
				 "WHERE id = %" PRId64, id1)), "<body1@example.com> bytes",
	       "Message-ID and Subject from the bytes");
	is_int(enqueue_body("ok-body2@remote.example", small, strlen(small), false, &id2, &err), 0,
	       "the same bytes again");
	is_int(qn("SELECT count(DISTINCT blob_id) FROM gn_queue_messages WHERE id IN (%" PRId64 ", %" PRId64 ")",
		  id1, id2), 1, "take the same blob");
	is_int(qn("SELECT refcount FROM gn_blobs WHERE id = %s", blob), 2, "with two references");
	size_t big_len = GN_STORE_CHUNK_SIZE + 1000;
	char *big = gn_pool_alloc(pool, big_len);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	for (size_t i = 16; i < big_len; i++)
		big[i] = (char)('a' + i % 26);
	is_int(enqueue_body("ok-body3@remote.example", big, big_len, false, &id3, &err), 0,
	       "a body larger than a chunk");
	is_str(q1(gn_pool_printf(pool, "SELECT count(*) || ' ' || sum(length(c.data)) || ' ' || b.refcount "
				 "FROM gn_queue_messages m JOIN gn_blobs b ON b.id = m.blob_id JOIN "
				 "gn_blob_chunks c ON c.blob_id = b.id WHERE m.id = %" PRId64 " GROUP BY b.refcount",
				 id3)), gn_pool_printf(pool, "2 %zu 1", big_len),
	       "in two chunks, one reference");
	int64_t none = 0;
	ok(enqueue_body("ok-body4@remote.example", small, strlen(small), true, &none, &err) < 0 &&
	   err != NULL && strstr(err, "both") != NULL, "blob_hash and body together are refused (%s)",
	   err != NULL ? err : "-");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt = 'ok-body4@remote.example'"), 0,
	       "nothing queued for it");
	is_int(run(), 3, "the three delivered");
	is_int(qn("SELECT count(*) FROM gn_queue_recipients WHERE rcpt LIKE 'ok-body%%'"), 0,
	       "and gone from the queue");
}

int main(void)
{
	const char *err = NULL;
	log_init("test_queue");
	if (!pgtest_setup("queue")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	loop_init();
	ok(deliver_register() == 0, "the delivery pipeline's hook points");
	if (db_init(pgtest_conninfo(), &err) < 0 || db_migrate(NULL, &err) < 0) {
		ok(false, "database ready: %s", err);
		return done_testing();
	}
	db_watch();
	pool = gn_pool_new();
	if (gn_store_domain_add(pool, "example.com", "+", NULL, &err) < 0)
		diag("domain: %s", err);
	alice = account("alice", "alice@example.com");
	bob = account("bob", "bob@example.com");
	ok(alice > 0 && bob > 0, "accounts");
	if (store_q_count("UPDATE gn_accounts SET queue_retired_keep_s = 3600 WHERE name = 'alice'", 0, NULL,
			  &err) != 1)
		diag("keep: %s", err);

	test_no_transport();
	struct gn_queue_transport t = { sizeof(t), "fake", fake_deliver, NULL };
	ok(gn_queue_transport_set(&t, &err) == 0, "the fake transport is set");
	ok(gn_queue_transport_set(&t, &err) < 0, "only one");
	test_retry_schedule();
	test_max_attempts();
	test_results();
	test_null_sender();
	test_hold_rules();
	test_schedule_fail();
	test_lease();
	test_dsn_format();
	test_retired_expiry();
	test_skip_locked();
	test_fromid();
	test_require_tls();
	test_body();

	gn_pool_free(&pool);
	db_close();
	return done_testing();
}
