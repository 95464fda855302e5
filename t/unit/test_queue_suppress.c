/*
 * t/unit/test_queue_suppress.c: the queue's side of "suppression.v1"
 * (core/queue/suppress.c, gannet/suppression.h) against a real
 * PostgreSQL, the real store and a fake transport, with a fake provider
 * whose table ends before lookup_many() (so the queue looks recipients up
 * one by one, as with an older provider).
 *
 * The fake provider lists localparts that start with "blocked" and fails
 * for "broken"; it records each failure() call.  The fake transport
 * answers by localpart: "ok" 250, "perm" 550 5.1.1, "temp" 451 4.2.0.
 */
#include "main.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <gannet/suppression.h>

#include "pgtest.h"
#include "tap.h"

static struct gn_pool *pool;
static int64_t alice;

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

static int enqueue(int64_t acct, const char *sender, const char *const *rcpts, size_t n,
		   unsigned max_attempts)
{
	return enqueue_max(acct, sender, rcpts, n, max_attempts, NULL);
}

/* ---- the fake provider ---- */

static struct gn_buf *failures;	/* "rcpt code enhanced source previous failed\n" */

static int fake_lookup(struct gn_pool *p, int64_t account_id, const struct gn_addr *addr,
		       struct gn_suppression *s_r, const char **error_r)
{
	(void)p;
	(void)account_id;
	(void)s_r;
	if (strncmp(addr->localpart, "broken", 6) == 0) {
		*error_r = "fake error";
		return -1;
	}
	return strncmp(addr->localpart, "blocked", 7) == 0;
}

static int fake_failure(const struct gn_suppression_failure *f, const char **error_r)
{
	(void)error_r;
	gn_buf_printf(failures, "%s %d %s %s %u %u\n", gn_addr_to_string(pool, f->rcpt), f->code,
		      f->enhanced != NULL ? f->enhanced : "-", f->source, f->previous, f->previous_failed);
	return 0;
}

static const struct gn_suppression_ops fake_ops = {
	.size = offsetof(struct gn_suppression_ops, lookup_many),
	.lookup = fake_lookup,
	.failure = fake_failure,
};

/* ---- the fake transport ---- */

static struct gn_buf *given;	/* "rcpt\n" for each recipient the transport got */

static void fake_deliver(struct gn_queue_delivery *qd, void *data)
{
	(void)data;
	for (size_t i = 0; i < gn_queue_delivery_recipient_count(qd); i++) {
		const struct gn_addr *a = gn_queue_delivery_recipient(qd, i);
		gn_buf_printf(given, "%s\n", gn_addr_to_string(pool, a));
		if (strncmp(a->localpart, "ok", 2) == 0)
			gn_queue_delivery_report(qd, i, 250, "2.0.0", "ok", "mx.remote.example", "192.0.2.1");
		else if (strncmp(a->localpart, "perm", 4) == 0)
			gn_queue_delivery_report(qd, i, 550, "5.1.1", "no such user", "mx.remote.example",
						 "192.0.2.1");
		else
			gn_queue_delivery_report(qd, i, 451, "4.2.0", "later", "mx.remote.example", "192.0.2.1");
	}
	gn_queue_delivery_done(qd);
}

static void run(void)
{
	const char *err;
	gn_buf_clear(given);
	gn_buf_clear(failures);
	if (gn_queue_run(100, &err) < 0)
		diag("gn_queue_run: %s", err);
}

static const char *state(const char *rcpt)
{
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_printf(b, "SELECT r FROM (SELECT 'queued ' || last_code || ' ' || last_enhanced || ' ' || "
		      "last_text AS r FROM gn_queue_recipients WHERE rcpt = '%s' UNION ALL SELECT result || ' ' "
		      "|| last_code || ' ' || last_enhanced || ' ' || last_text FROM gn_queue_retired WHERE "
		      "rcpt = '%s' ORDER BY 1 DESC LIMIT 1) x", rcpt, rcpt);
	const char *v = q1(gn_buf_data(b));
	gn_buf_free(&b);
	return v;
}

static long long failure_dsns(void)
{
	return qn("SELECT count(*) FROM gn_messages m JOIN gn_mailboxes b ON b.account_id = m.account_id "
		  "AND b.id = m.mailbox_id WHERE m.account_id = %" PRId64 " AND b.name = 'Inbox' AND "
		  "m.subject = 'mail delivery failed'", alice);
}

int main(void)
{
	const char *err = NULL;
	log_init("test_queue_suppress");
	if (!pgtest_setup("queue_suppress")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	loop_init();
	ok(deliver_register() == 0, "the delivery pipeline's hook points");
	ok(gn_service_provide(modules_core_ctx(), GN_SUPPRESSION_SERVICE, &fake_ops, &err) == 0,
	   "the fake provider of suppression.v1, without lookup_many()");
	if (db_init(pgtest_conninfo(), &err) < 0 || db_migrate(NULL, &err) < 0) {
		ok(false, "database ready: %s", err);
		return done_testing();
	}
	db_watch();
	pool = gn_pool_new();
	given = gn_buf_new(0);
	failures = gn_buf_new(0);
	if (gn_store_domain_add(pool, "example.com", "+", NULL, &err) < 0)
		diag("domain: %s", err);
	alice = account("alice", "alice@example.com");
	ok(alice > 0, "account alice");
	if (store_q_count("UPDATE gn_accounts SET queue_retired_keep_s = 3600 WHERE name = 'alice'", 0, NULL,
			  &err) != 1)
		diag("keep: %s", err);
	struct gn_queue_transport t = { sizeof(t), "fake", fake_deliver, NULL };
	ok(gn_queue_transport_set(&t, &err) == 0, "the fake transport is set");

	static const char *const m1[] = { "blocked1@remote.example", "ok1@remote.example" };
	enqueue(alice, "alice@example.com", m1, 2, 0);
	long long dsns = failure_dsns();
	run();
	is_str(gn_buf_data(given), "ok1@remote.example\n", "the transport gets the recipient not listed only");
	is_str(state("blocked1@remote.example"), "failed 550 5.7.1 not delivering to recipient address "
	       "blocked1@remote.example: address is on suppression list", "the listed one failed for good, 550 5.7.1");
	is_str(state("ok1@remote.example"), "delivered 250 2.0.0 ok", "the other one delivered");
	is_int(failure_dsns(), dsns + 1, "a failure DSN to the sender");
	is_str(gn_buf_data(failures), "", "failure() is not called for a suppressed recipient");

	static const char *const m2[] = { "blocked2@remote.example" };
	enqueue(alice, NULL, m2, 1, 0);
	dsns = failure_dsns();
	run();
	is_str(state("blocked2@remote.example"), "failed 550 5.7.1 not delivering to recipient address "
	       "blocked2@remote.example: address is on suppression list", "from <>: failed for good too");
	is_int(failure_dsns(), dsns, "and no DSN");

	static const char *const m3[] = { "broken1@remote.example", "ok2@remote.example" };
	enqueue(alice, "alice@example.com", m3, 2, 0);
	run();
	is_str(gn_buf_data(given), "", "a lookup that fails: the transport gets nothing");
	is_str(state("broken1@remote.example"), "queued 0 4.3.0 suppression list lookup failed: fake error",
	       "the recipient fails temporarily, 4.3.0 with the reason");
	is_str(state("ok2@remote.example"), "queued 0 4.3.0 suppression list lookup failed: fake error",
	       "and so does the other of the attempt (never delivered unchecked)");

	static const char *const m4[] = { "perm1@remote.example" };
	enqueue(alice, "alice@example.com", m4, 1, 0);
	run();
	is_str(gn_buf_data(failures), "perm1@remote.example 550 5.1.1 queue 0 0\n",
	       "550 5.1.1: failure() with the code, source queue, nothing before");
	enqueue(alice, "alice@example.com", m4, 1, 0);
	run();
	is_str(gn_buf_data(failures), "perm1@remote.example 550 5.1.1 queue 1 1\n", "the second: one failed before");
	enqueue(alice, "alice@example.com", m4, 1, 0);
	run();
	is_str(gn_buf_data(failures), "perm1@remote.example 550 5.1.1 queue 2 2\n",
	       "the third: the two before failed");
	static const char *const m5[] = { "ok3@remote.example" };
	static const char *const m6[] = { "perm3@remote.example" };
	enqueue(alice, "alice@example.com", m5, 1, 0);
	run();
	is_str(gn_buf_data(failures), "", "a delivery: no failure() call");

	static const char *const m7[] = { "temp1@remote.example" };
	enqueue(alice, "alice@example.com", m7, 1, 1);
	run();
	is_str(gn_buf_data(failures), "temp1@remote.example 451 4.2.0 queue 0 0\n",
	       "451 at the last attempt: failure() with the 4xx code");
	static const char *const m8[] = { "temp2@remote.example" };
	enqueue(alice, "alice@example.com", m8, 1, 0);
	run();
	is_str(gn_buf_data(failures), "", "451 with attempts left: no failure() call");
	enqueue(alice, "alice@example.com", m6, 1, 0);
	run();
	is_str(gn_buf_data(failures), "perm3@remote.example 550 5.1.1 queue 0 0\n",
	       "another address: its own count");

	gn_buf_free(&given);
	gn_buf_free(&failures);
	gn_pool_free(&pool);
	db_close();
	return done_testing();
}
