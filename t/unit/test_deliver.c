/*
 * t/unit/test_deliver.c: the delivery pipeline (core/store/deliver.c) against a
 * real PostgreSQL and the real store (core/store/store.c).
 *
 * The database: a fresh one from t/lib/pgtest.c (its header says which
 * cluster), dropped at exit.
 *
 * Test hooks are registered on the core's context before the register
 * phase ends, as a module would.  They act on recipients by localpart, so
 * one delivery can mix behaviours.  Pending hooks complete from timers on
 * the real loop; every wait is bounded.
 */
#include "main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "tap.h"

#ifndef GN_TEST_SRCDIR
#define GN_TEST_SRCDIR "."
#endif

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static PGconn *admin(const char *ci)
{
	PGconn *c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		diag("admin connection failed: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* The first value of sql run in a separate session, "" without rows, NULL
 * on error. */
static char *outside(const char *sql)
{
	PGconn *c = admin(pgtest_conninfo());
	char *v = NULL;
	if (c == NULL)
		return NULL;
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		v = gn_strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	else if (PQresultStatus(r) == PGRES_COMMAND_OK)
		v = gn_strdup("");
	else
		diag("outside(%s): %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* Ends our session from outside: the database "goes away" for us. */
static void kill_our_session(void)
{
	char *sql = gn_strdup_printf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				     " WHERE datname = '%s' AND application_name = 'gannet'", pgtest_dbname());
	gn_free(outside(sql));
	gn_free(sql);
}

/* ---- the loop ---- */

static bool guard_fired;

static void guard_cb(void *data)
{
	(void)data;
	guard_fired = true;
}

static bool run_until(const bool *flag, unsigned long ms)
{
	struct gn_timer *guard = gn_timer_new(ms, false, guard_cb, NULL);
	guard_fired = false;
	while (!*flag && !guard_fired)
		ev_run(core_loop, EVRUN_ONCE);
	gn_timer_free(&guard);
	return *flag;
}

/* ---- fixtures ---- */

static struct gn_pool *pool;
static int64_t alice, bob, carol;

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

static int64_t mailbox_id(int64_t acct, const char *name)
{
	struct gn_store_mailbox *mb = NULL;
	const char *err;
	if (gn_store_mailbox_find(pool, acct, name, &mb, &err) <= 0)
		return 0;
	return mb->id;
}

static long long mailbox_count(int64_t acct, const char *name)
{
	struct gn_store_mailbox *mb = NULL;
	const char *err;
	if (gn_store_mailbox_find(pool, acct, name, &mb, &err) <= 0) {
		diag("mailbox %s: not found", name);
		return -1;
	}
	return (long long)mb->messages;
}

/* The stored message (prefix + body) as a string. */
static char *read_message(int64_t acct, int64_t mbox, uint32_t uid)
{
	struct gn_store_body *body = NULL;
	const char *err;
	if (gn_store_message_open(acct, mbox, uid, &body, &err) <= 0) {
		diag("message %u: cannot open", uid);
		return NULL;
	}
	uint64_t size = gn_store_body_size(body);
	char *buf = gn_malloc(size + 1);
	size_t got = 0;
	if (gn_store_body_read(body, 0, buf, size, &got, &err) < 0)
		got = 0;
	buf[got] = '\0';
	gn_store_body_free(&body);
	return buf;
}

static const char small_msg[] =
	"From: Sender <sender@example.org>\r\n"
	"To: alice@example.com\r\n"
	"Subject: hello\r\n"
	"Message-ID: <1@example.org>\r\n"
	"\r\n"
	"Hello Alice.\r\n";

/* ---- test hooks ---- */

static struct {
	int after_calls;
	uint32_t after_uid;
	int64_t after_mailbox;
	bool after_pend;
	struct gn_hook_call *pending_after;
	bool cancelled;
	bool kill_db;
	bool skip_alice;	/* the mailbox hook skips alice as an expanded address */
} hk;

static const char *cur_local(struct gn_hook_call *call)
{
	const struct gn_addr *a = gn_delivery_current(gn_hook_call_context(call));
	return a != NULL ? a->localpart : "";
}

struct later {
	struct gn_hook_call *call;
	enum gn_hook_result result;
	struct gn_timer *timer;
	int64_t account;
};

static void later_fire(void *data)
{
	struct later *l = data;
	struct gn_delivery *d = gn_hook_call_context(l->call);
	if (l->account != 0)
		gn_delivery_set_account(d, l->account);
	gn_hook_complete(l->call, l->result);
}

static struct later later_resolve;

static void on_cancel(struct gn_hook_call *call, void *data)
{
	(void)call;
	(void)data;
	hk.cancelled = true;
}

static enum gn_hook_result resolve_hook(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	const char *lp = cur_local(call);
	const char *err;
	if (strcmp(lp, "team") == 0) {
		const struct gn_addr *to[3] = { A("alice@example.com"), A("bob@example.com"),
						A("nobody@example.com") };
		if (gn_delivery_expand(d, to, 3, &err) < 0)
			return GN_HOOK_TEMPFAIL;
		return GN_HOOK_ACCEPT;
	}
	if (strcmp(lp, "crew") == 0 || strcmp(lp, "alicelist") == 0) {
		const struct gn_addr *to[2] = { A("alice@example.com"), A("bob@example.com") };
		if (gn_delivery_expand(d, to, lp[0] == 'c' ? 2 : 1, &err) < 0)
			return GN_HOOK_TEMPFAIL;
		return GN_HOOK_ACCEPT;
	}
	if (strcmp(lp, "loop") == 0) {
		const struct gn_addr *to[1] = { A("loop@example.com") };
		if (gn_delivery_expand(d, to, 1, &err) < 0) {
			gn_hook_call_reply(call, 550, "5.4.6", "%s", err);
			return GN_HOOK_REJECT;
		}
		return GN_HOOK_ACCEPT;
	}
	if (strcmp(lp, "later") == 0) {
		/* Resolves to carol, 50ms later. */
		later_resolve.call = call;
		later_resolve.result = GN_HOOK_ACCEPT;
		later_resolve.account = carol;
		gn_timer_free(&later_resolve.timer);
		later_resolve.timer = gn_timer_new(50, false, later_fire, &later_resolve);
		return GN_HOOK_PENDING;
	}
	if (strcmp(lp, "blocked") == 0) {
		gn_hook_call_reply(call, 550, "5.7.1", "blocked by policy");
		return GN_HOOK_REJECT;
	}
	return GN_HOOK_CONTINUE;
}

static enum gn_hook_result check_hook(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	const char *lp = cur_local(call);
	if (gn_delivery_current_account(d) == 0)
		return GN_HOOK_TEMPFAIL;	/* must not happen: checks see the account */
	if (strcmp(lp, "full") == 0) {
		gn_hook_call_reply(call, 552, "5.2.2", "mailbox full");
		return GN_HOOK_REJECT;
	}
	if (strcmp(lp, "over") == 0) {
		gn_hook_call_reply(call, 452, "4.2.2", "over quota, try later");
		return GN_HOOK_TEMPFAIL;
	}
	return GN_HOOK_CONTINUE;
}

static enum gn_hook_result mailbox_hook(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	const char *lp = cur_local(call);
	if (hk.kill_db)
		kill_our_session();
	if (gn_delivery_message(d) == NULL)
		return GN_HOOK_TEMPFAIL;	/* must not happen: the message is parsed */
	if (hk.skip_alice && gn_delivery_current_depth(d) > 0 && strcmp(lp, "alice") == 0) {
		if (gn_delivery_skip(d) < 0)
			return GN_HOOK_TEMPFAIL;	/* must not happen: skip works here */
		return GN_HOOK_ACCEPT;
	}
	if (strcmp(lp, "sorted") == 0) {
		gn_delivery_set_mailbox(d, "Archive");
		return GN_HOOK_ACCEPT;
	}
	if (strcmp(lp, "nowhere") == 0) {
		gn_delivery_set_mailbox(d, "Does/Not/Exist");
		return GN_HOOK_ACCEPT;
	}
	if (strcmp(lp, "stuck") == 0) {
		/* Never completes: the point's timeout gives the default. */
		gn_hook_call_on_cancel(call, on_cancel, NULL);
		return GN_HOOK_PENDING;
	}
	return GN_HOOK_CONTINUE;
}

static struct later later_after;

static enum gn_hook_result after_hook(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	hk.after_calls++;
	hk.after_uid = gn_delivery_current_uid(d);
	hk.after_mailbox = gn_delivery_current_mailbox_id(d);
	if (hk.after_pend) {
		later_after.call = call;
		later_after.result = GN_HOOK_CONTINUE;
		later_after.account = 0;
		gn_timer_free(&later_after.timer);
		later_after.timer = gn_timer_new(50, false, later_fire, &later_after);
		hk.pending_after = call;
		return GN_HOOK_PENDING;
	}
	return GN_HOOK_CONTINUE;
}

/* "deliver.store": mode 1 refuses bob (452 4.2.2), mode 2 pends (a
 * hook that must not); every call records what it saw. */
static struct {
	int mode;
	int calls;
	int64_t alice_bytes;
	bool in_tx;
	bool cancelled;
	int64_t order[4];	/* the accounts, in the order of the calls */
	int64_t alice_count;
} st;

static void store_cancel(struct gn_hook_call *call, void *data)
{
	(void)call;
	(void)data;
	st.cancelled = true;
}

static enum gn_hook_result store_hook(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	if (st.mode == 0)
		return GN_HOOK_CONTINUE;
	if (st.calls < 4)
		st.order[st.calls] = gn_delivery_current_account(d);
	st.calls++;
	st.in_tx = gn_db_in_transaction() == 1;
	if (gn_delivery_current_account(d) == alice) {
		st.alice_bytes = (int64_t)gn_delivery_current_store_size(d);
		st.alice_count = (int64_t)gn_delivery_current_store_count(d);
	}
	if (st.mode == 2) {
		gn_hook_call_on_cancel(call, store_cancel, NULL);
		return GN_HOOK_PENDING;
	}
	if (gn_delivery_current_account(d) == bob) {
		gn_hook_call_reply(call, 452, "4.2.2", "account storage full");
		return GN_HOOK_TEMPFAIL;
	}
	return GN_HOOK_CONTINUE;
}

/* ---- helpers to deliver ---- */

static struct gn_delivery *new_delivery(const char *const *rcpts, size_t n)
{
	struct gn_delivery *d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	for (size_t i = 0; i < n; i++)
		gn_delivery_add_recipient(d, A(rcpts[i]), NULL, 0);
	return d;
}

static const struct gn_delivery_result *res(struct gn_delivery *d, size_t i)
{
	static const struct gn_delivery_result none = { 0, 0, NULL, NULL, 0, 0, 0 };
	const struct gn_delivery_result *r = gn_delivery_result(d, i);
	return r != NULL ? r : &none;
}

static char *result_str(struct gn_delivery *d, size_t i)
{
	const struct gn_delivery_result *r = res(d, i);
	return gn_pool_printf(pool, "%d %s", r->code, r->enhanced ? r->enhanced : "-");
}

/* ---- tests ---- */

static void test_one_and_several(void)
{
	long long a0 = mailbox_count(alice, "Inbox"), b0 = mailbox_count(bob, "Inbox");

	static const char *const one[] = { "alice@example.com" };
	struct gn_delivery *d = new_delivery(one, 1);
	ok(gn_delivery_write(d, small_msg, sizeof(small_msg) - 1) == 0, "write the message");
	is_int(gn_delivery_run_sync(d), 1, "one recipient accepted");
	is_str(result_str(d, 0), "250 2.0.0", "result 250 2.0.0");
	const struct gn_delivery_result *r = res(d, 0);
	is_int(r->account_id, alice, "result names alice's account");
	is_int(r->mailbox_id, mailbox_id(alice, "Inbox"), "stored in Inbox");
	ok(r->uid > 0, "with a UID");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "Inbox has one more message");
	char *m = read_message(alice, r->mailbox_id, r->uid);
	is_str(m, small_msg, "the stored message is the message, byte for byte");
	gn_free(m);
	gn_delivery_free(&d);
	ok(d == NULL, "gn_delivery_free clears the pointer");

	/* Several recipients, with different prefixes: one blob. */
	d = gn_delivery_new("test", NULL);
	static const char pa[] = "Delivered-To: alice@example.com\r\n", pb[] = "Delivered-To: bob@example.com\r\n";
	gn_delivery_add_recipient(d, A("alice@example.com"), pa, strlen(pa));
	gn_delivery_add_recipient(d, A("bob@example.com"), pb, strlen(pb));
	gn_delivery_write(d, small_msg, 20);
	gn_delivery_write(d, small_msg + 20, sizeof(small_msg) - 1 - 20);
	is_int(gn_delivery_run_sync(d), 2, "two recipients accepted");
	is_int(mailbox_count(alice, "Inbox"), a0 + 2, "alice got it");
	is_int(mailbox_count(bob, "Inbox"), b0 + 1, "bob got it");
	struct gn_store_message *ma = NULL, *mb = NULL;
	const char *err;
	gn_store_message_get(pool, alice, res(d, 0)->mailbox_id, res(d, 0)->uid, &ma, &err);
	gn_store_message_get(pool, bob, res(d, 1)->mailbox_id, res(d, 1)->uid, &mb, &err);
	ok(ma != NULL && mb != NULL && memcmp(ma->blob_hash, mb->blob_hash, GN_STORE_HASH_SIZE) == 0,
	   "both copies share one blob");
	m = read_message(bob, res(d, 1)->mailbox_id, res(d, 1)->uid);
	ok(m != NULL && strncmp(m, pb, strlen(pb)) == 0, "bob's copy starts with bob's prefix");
	ok(m != NULL && strcmp(m + strlen(pb), small_msg) == 0, "followed by the message");
	gn_free(m);
	m = read_message(alice, res(d, 0)->mailbox_id, res(d, 0)->uid);
	ok(m != NULL && strncmp(m, pa, strlen(pa)) == 0 && strcmp(m + strlen(pa), small_msg) == 0,
	   "alice's copy has alice's prefix, then the message");
	gn_free(m);
	gn_delivery_free(&d);
}

static void test_same_account_once(void)
{
	long long a0 = mailbox_count(alice, "Inbox");
	static const char *const rc[] = { "alice@example.com", "ALICE@example.com",
					  "alice.smith@example.com", "alice+news@example.com" };
	struct gn_delivery *d = new_delivery(rc, 4);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 4, "four addresses of alice accepted (case, second address, catchall)");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "one copy for the same account and mailbox");
	ok(res(d, 0)->uid == res(d, 3)->uid && res(d, 1)->uid == res(d, 2)->uid && res(d, 0)->uid > 0,
	   "all results name the same message");
	gn_delivery_free(&d);
}

static void test_unknown(void)
{
	long long a0 = mailbox_count(alice, "Inbox");
	static const char *const rc[] = { "nobody@example.com", "alice@example.com",
					  "x@unknown-domain.example" };
	struct gn_delivery *d = new_delivery(rc, 3);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "one of three accepted");
	is_str(result_str(d, 0), "550 5.1.1", "unknown user: 550 5.1.1");
	is_int(res(d, 0)->status, GN_DELIVERY_REJECTED, "rejected");
	is_str(result_str(d, 1), "250 2.0.0", "the known one succeeds");
	is_str(result_str(d, 2), "550 5.1.1", "unknown domain: 550 5.1.1");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "alice got her copy");
	gn_delivery_free(&d);

	/* All unknown: nothing stored, still a clean answer. */
	static const char *const rc2[] = { "nobody@example.com" };
	d = new_delivery(rc2, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 0, "no recipient accepted");
	gn_delivery_free(&d);
}

static void test_hooks(void)
{
	long long a0 = mailbox_count(alice, "Inbox"), b0 = mailbox_count(bob, "Inbox");
	long long arch0 = mailbox_count(carol, "Archive"), c0 = mailbox_count(carol, "Inbox");

	/* Resolve: an alias of three, one of them unknown. */
	static const char *const rc[] = { "team@example.com", "alice@example.com" };
	struct gn_delivery *d = new_delivery(rc, 2);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 2, "an alias expanded by a resolve hook is accepted");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "alice once, though reached directly and by the alias");
	is_int(mailbox_count(bob, "Inbox"), b0 + 1, "bob by the alias");
	gn_delivery_free(&d);

	/* An alias loop ends at the depth limit. */
	static const char *const rc2[] = { "loop@example.com", "blocked@example.com" };
	d = new_delivery(rc2, 2);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 0, "an alias loop is not delivered");
	is_str(result_str(d, 0), "550 5.4.6", "the hook's reply when expansion is too deep");
	like(res(d, 0)->text, "too deep", "saying why");
	is_str(result_str(d, 1), "550 5.7.1", "a resolve hook rejects with its reply");
	is_str(res(d, 1)->text, "blocked by policy", "and its text");
	gn_delivery_free(&d);

	/* Checks: quota-like answers. */
	static const char *const rc3[] = { "full@example.com", "over@example.com", "bob@example.com" };
	d = new_delivery(rc3, 3);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "check hooks fail two of three");
	is_str(result_str(d, 0), "552 5.2.2", "a check hook's permanent 552 5.2.2");
	is_str(result_str(d, 1), "452 4.2.2", "a check hook's temporary 452 4.2.2");
	is_int(res(d, 1)->status, GN_DELIVERY_TEMPFAIL, "a temporary failure");
	is_str(result_str(d, 2), "250 2.0.0", "the other recipient is delivered");
	gn_delivery_free(&d);

	/* Mailbox choice. */
	static const char *const rc4[] = { "sorted@example.com", "nowhere@example.com" };
	d = new_delivery(rc4, 2);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 2, "mailbox hooks: both delivered");
	is_int(res(d, 0)->mailbox_id, mailbox_id(carol, "Archive"), "a mailbox hook chooses Archive");
	is_int(res(d, 1)->mailbox_id, mailbox_id(carol, "Inbox"), "a mailbox that does not exist means Inbox");
	is_int(mailbox_count(carol, "Archive"), arch0 + 1, "Archive has the message");
	is_int(mailbox_count(carol, "Inbox"), c0 + 1, "Inbox has the other copy");
	gn_delivery_free(&d);
}

/* The prefix of the newest message in acct's Inbox: what comes before
 * small_msg. */
static char *last_prefix(int64_t acct)
{
	struct gn_store_mailbox *mb = NULL;
	const char *err;
	if (gn_store_mailbox_find(pool, acct, "Inbox", &mb, &err) <= 0)
		return gn_pool_strdup(pool, "(no Inbox)");
	char *m = read_message(acct, mb->id, gn_store_mailbox_uidnext(mb) - 1);
	if (m == NULL)
		return gn_pool_strdup(pool, "(no message)");
	char *body = strstr(m, small_msg);
	if (body != NULL)
		*body = '\0';
	char *r = gn_pool_strdup(pool, m);
	gn_free(m);
	return r;
}

static int add_with_delivered_to(struct gn_delivery *d, const char *rcpt)
{
	const char *p = gn_pool_printf(pool, "Return-Path: <sender@example.org>\r\n"
				       "Delivered-To: %s\r\nReceived: by test\r\n", rcpt);
	return gn_delivery_add_recipient(d, A(rcpt), p, strlen(p));
}

/* ABI 1.1: an expanded address's copy gets its own Delivered-To; a copy
 * shared with an explicit recipient is the explicit recipient's;
 * gn_delivery_skip() leaves a target out, and a recipient whose targets
 * were all skipped is accepted with nothing stored. */
static void test_expansion_copies(void)
{
	long long a0 = mailbox_count(alice, "Inbox"), b0 = mailbox_count(bob, "Inbox");
	struct gn_delivery *d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	add_with_delivered_to(d, "crew@example.com");
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "an alias of two: accepted");
	is_str(last_prefix(bob), "Return-Path: <sender@example.org>\r\nDelivered-To: bob@example.com\r\n"
	       "Delivered-To: crew@example.com\r\nReceived: by test\r\n",
	       "bob's copy: his Delivered-To above the alias's (RFC 9228)");
	is_str(last_prefix(alice), "Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.com\r\n"
	       "Delivered-To: crew@example.com\r\nReceived: by test\r\n", "alice's the same with hers");
	gn_delivery_free(&d);

	/* The alias first, alice explicitly after it: her one copy is the
	 * explicit recipient's. */
	d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	add_with_delivered_to(d, "crew@example.com");
	add_with_delivered_to(d, "alice@example.com");
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 2, "the alias and alice: both accepted");
	is_int(mailbox_count(alice, "Inbox"), a0 + 2, "alice one copy more");
	is_str(last_prefix(alice), "Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.com\r\n"
	       "Received: by test\r\n", "her copy is the explicit recipient's, though the alias came first");
	gn_delivery_free(&d);

	/* A prefix without Delivered-To stays as it is. */
	static const char *const rc[] = { "crew@example.com" };
	d = new_delivery(rc, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "no prefix: accepted");
	is_str(last_prefix(bob), "", "no Delivered-To added where the caller wrote none");
	gn_delivery_free(&d);
	b0 += 3;

	/* Skipped. */
	hk.skip_alice = true;
	d = new_delivery(rc, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "alice skipped, bob stored: accepted");
	is_int(mailbox_count(alice, "Inbox"), a0 + 3, "alice got no copy");
	is_int(mailbox_count(bob, "Inbox"), b0 + 1, "bob did");
	gn_delivery_free(&d);
	static const char *const rc2[] = { "alicelist@example.com" };
	d = new_delivery(rc2, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "every target skipped: accepted");
	is_str(result_str(d, 0), "250 2.0.0", "with 250 2.0.0");
	is_int(res(d, 0)->mailbox_id, 0, "stored nowhere");
	is_int(mailbox_count(alice, "Inbox"), a0 + 3, "alice still has no copy");
	is_int(gn_delivery_skip(d), -1, "gn_delivery_skip() outside deliver.mailbox: -1");
	gn_delivery_free(&d);
	hk.skip_alice = false;
}

/* ABI 1.1: gn_delivery_set_prefix() replaces a recipient's prefix given
 * at RCPT (the end-of-data hooks' lines): the stored copy has the new
 * one, an alias's copies too (with their Delivered-To); not once the run
 * began, not for an index out of range. */
static void test_set_prefix(void)
{
	static const char np[] = "Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.com\r\n"
		"Authentication-Results: test; none\r\nReceived: by test\r\n";
	struct gn_delivery *d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	add_with_delivered_to(d, "alice@example.com");
	is_int(gn_delivery_set_prefix(d, 1, np, sizeof(np) - 1), -1, "set_prefix: index out of range -1");
	is_int(gn_delivery_set_prefix(d, 0, np, sizeof(np) - 1), 0, "set_prefix before the run: 0");
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "accepted");
	is_str(last_prefix(alice), np, "the copy has the new prefix");
	is_int(gn_delivery_set_prefix(d, 0, np, sizeof(np) - 1), -1, "set_prefix after the run: -1");
	gn_delivery_free(&d);

	static const char cp[] = "Return-Path: <sender@example.org>\r\nDelivered-To: crew@example.com\r\n"
		"Authentication-Results: test; none\r\nReceived: by test\r\n";
	d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	add_with_delivered_to(d, "crew@example.com");
	is_int(gn_delivery_set_prefix(d, 0, cp, sizeof(cp) - 1), 0, "an alias's prefix replaced");
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "accepted");
	is_str(last_prefix(bob), "Return-Path: <sender@example.org>\r\nDelivered-To: bob@example.com\r\n"
	       "Delivered-To: crew@example.com\r\nAuthentication-Results: test; none\r\n"
	       "Received: by test\r\n", "a member's copy: the new prefix with its Delivered-To");
	gn_delivery_free(&d);

	d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	add_with_delivered_to(d, "alice@example.com");
	is_int(gn_delivery_set_prefix(d, 0, NULL, 0), 0, "set_prefix to none");
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "accepted");
	is_str(last_prefix(alice), "", "the copy has no prefix");
	gn_delivery_free(&d);
}

/* "deliver.store": inside the transaction, once per account with its
 * bytes; a refusal fails that account only; a hook that pends fails
 * closed. */
static void test_store_hook(void)
{
	static const char prefix[] = "Delivered-To: alice@example.com\r\n";
	long long a0 = mailbox_count(alice, "Inbox"), b0 = mailbox_count(bob, "Inbox");
	struct gn_delivery *d = gn_delivery_new("test", NULL);
	gn_delivery_set_sender(d, A("sender@example.org"));
	gn_delivery_add_recipient(d, A("bob@example.com"), NULL, 0);
	gn_delivery_add_recipient(d, A("alice@example.com"), prefix, sizeof(prefix) - 1);
	gn_delivery_add_recipient(d, A("ALICE@example.com"), NULL, 0);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	memset(&st, 0, sizeof(st));
	st.mode = 1;
	is_int(gn_delivery_run_sync(d), 2, "deliver.store refuses bob: alice's two addresses accepted");
	is_int(st.calls, 2, "the store hook ran once per account");
	ok(alice < bob && st.order[0] == alice && st.order[1] == bob,
	   "in ascending account order, whatever the recipients' (no deadlock between two deliveries)");
	ok(st.in_tx, "inside the store's transaction");
	is_int(st.alice_bytes, (int64_t)(sizeof(small_msg) - 1 + sizeof(prefix) - 1),
	       "gn_delivery_current_store_size(): the body and the account's prefix");
	is_int(st.alice_count, 1, "gn_delivery_current_store_count(): one message (two addresses, one Inbox)");
	is_str(result_str(d, 0), "452 4.2.2", "bob: the hook's 452 4.2.2");
	is_str(res(d, 0)->text, "account storage full", "with its text");
	is_int(res(d, 0)->status, GN_DELIVERY_TEMPFAIL, "a temporary failure");
	is_str(result_str(d, 1), "250 2.0.0", "alice: delivered");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "alice has it");
	is_int(mailbox_count(bob, "Inbox"), b0, "bob has nothing");
	gn_delivery_free(&d);

	static const char *const rc[] = { "bob@example.com" };
	d = new_delivery(rc, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 0, "bob alone: refused");
	is_int(mailbox_count(bob, "Inbox"), b0, "nothing stored");
	gn_delivery_free(&d);

	static const char *const rc2[] = { "alice@example.com" };
	d = new_delivery(rc2, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	st.mode = 2;
	is_int(gn_delivery_run_sync(d), 0, "a store hook that pends: refused (fail closed)");
	is_str(result_str(d, 0), "451 4.3.0", "451 4.3.0");
	ok(st.cancelled, "the pending hook was cancelled");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "nothing stored");
	ok(gn_db_in_transaction() == 0, "no transaction left open");
	gn_delivery_free(&d);
	st.mode = 0;
	ok(gn_delivery_current_store_size(d = new_delivery(rc2, 1)) == 0 && gn_delivery_current_store_count(d) == 0,
	   "0 outside deliver.store");
	gn_delivery_free(&d);
}

static bool done_flag;

static void on_done(struct gn_delivery *d, void *data)
{
	(void)d;
	(void)data;
	done_flag = true;
}

static void on_done_free(struct gn_delivery *d, void *data)
{
	(void)data;
	done_flag = true;
	gn_delivery_free(&d);
}

static void test_async(void)
{
	long long c0 = mailbox_count(carol, "Inbox");

	/* A resolve hook that completes 50ms later. */
	static const char *const rc[] = { "later@example.com" };
	struct gn_delivery *d = new_delivery(rc, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	done_flag = false;
	ok(gn_delivery_run(d, on_done, NULL) == 0, "run started");
	ok(!done_flag, "a pending resolve hook: done is not called yet");
	ok(gn_delivery_run(d, on_done, NULL) < 0, "a second run is refused");
	ok(run_until(&done_flag, 5000), "done is called once the hook completes");
	is_str(result_str(d, 0), "250 2.0.0", "the pending hook's account got the message");
	is_int(res(d, 0)->account_id, carol, "carol's account");
	is_int(mailbox_count(carol, "Inbox"), c0 + 1, "stored");
	gn_delivery_free(&d);

	/* A mailbox hook that never completes: the default after 5s. */
	static const char *const rc2[] = { "stuck@example.com" };
	d = new_delivery(rc2, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	done_flag = false;
	hk.cancelled = false;
	gn_delivery_run(d, on_done, NULL);
	ok(run_until(&done_flag, 15000), "a stuck mailbox hook times out");
	ok(hk.cancelled, "its cancel function ran");
	is_str(result_str(d, 0), "250 2.0.0", "the default (continue): delivered");
	is_int(res(d, 0)->mailbox_id, mailbox_id(carol, "Inbox"), "to Inbox");
	gn_delivery_free(&d);

	/* After-delivery hooks: after the commit, per copy, may pend; the
	 * caller may free the delivery in done meanwhile. */
	static const char *const rc3[] = { "alice@example.com", "bob@example.com", "alice@example.com" };
	/* The deliveries above finish their after chains first (they start
	 * on the loop's next turn, after the settle). */
	for (int i = 0; i < 10; i++)
		ev_run(core_loop, EVRUN_NOWAIT);
	hk.after_calls = 0;
	hk.after_pend = true;
	later_after.call = NULL;
	d = new_delivery(rc3, 3);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	done_flag = false;
	gn_delivery_run(d, on_done_free, NULL);
	ok(run_until(&done_flag, 5000), "done comes after the commit");
	/* The after chains start on the next turn of the loop, after the
	 * settle that follows the commit (the caller's reply goes out first). */
	double deadline = mono() + 5;
	while (hk.after_calls < 1 && mono() < deadline)
		ev_run(core_loop, EVRUN_ONCE);
	is_int(hk.after_calls, 1, "the first after hook pends");
	bool two = false;
	deadline = mono() + 5;
	while (hk.after_calls < 2 && mono() < deadline)
		ev_run(core_loop, EVRUN_ONCE);
	two = hk.after_calls == 2;
	ok(two, "the after chain runs once per stored copy (two accounts), after the delivery was freed");
	/* Let the last pending after hook complete (and free). */
	deadline = mono() + 1;
	while (mono() < deadline)
		ev_run(core_loop, EVRUN_NOWAIT);
	hk.after_pend = false;

	static const char *const rc4[] = { "bob@example.com" };
	hk.after_calls = 0;
	d = new_delivery(rc4, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	gn_delivery_run_sync(d);
	is_int(hk.after_calls, 1, "after hook called once");
	is_int(hk.after_uid, res(d, 0)->uid, "it sees the stored UID");
	is_int(hk.after_mailbox, res(d, 0)->mailbox_id, "and mailbox");
	gn_delivery_free(&d);
}

static void on_checked(struct gn_delivery *d, void *data)
{
	(void)d;
	(void)data;
	done_flag = true;
}

static void test_rcpt_check(void)
{
	long long a0 = mailbox_count(alice, "Inbox");
	struct gn_delivery *d = gn_delivery_new("smtp", NULL);
	gn_delivery_add_recipient(d, A("alice@example.com"), NULL, 0);
	done_flag = false;
	ok(gn_delivery_check(d, on_checked, NULL) == 0 && done_flag, "check without a message");
	is_str(result_str(d, 0), "250 2.1.5", "RCPT-time result 250 2.1.5");
	gn_delivery_add_recipient(d, A("nobody@example.com"), NULL, 0);
	gn_delivery_add_recipient(d, A("full@example.com"), NULL, 0);
	done_flag = false;
	gn_delivery_check(d, on_checked, NULL);
	is_str(result_str(d, 1), "550 5.1.1", "unknown user at RCPT time");
	is_str(result_str(d, 2), "552 5.2.2", "a check hook at RCPT time");
	is_int(mailbox_count(alice, "Inbox"), a0, "nothing stored by a check");
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	is_int(gn_delivery_run_sync(d), 1, "then the delivery stores for the accepted one");
	is_int(mailbox_count(alice, "Inbox"), a0 + 1, "alice got it");
	gn_delivery_free(&d);
}

static void test_limits(void)
{
	struct gn_delivery_limits lim;
	gn_delivery_limits_init(&lim);
	lim.max_size = 100;
	lim.max_recipients = 2;
	long long a0 = mailbox_count(alice, "Inbox");
	struct gn_delivery *d = gn_delivery_new("test", &lim);
	gn_delivery_add_recipient(d, A("alice@example.com"), NULL, 0);
	gn_delivery_add_recipient(d, A("bob@example.com"), NULL, 0);
	gn_delivery_add_recipient(d, A("carol@example.com"), NULL, 0);
	is_str(result_str(d, 2), "452 4.5.3", "past the recipient limit: 452 4.5.3");
	ok(gn_delivery_write(d, small_msg, 60) == 0, "60 bytes fit");
	ok(gn_delivery_write(d, small_msg + 60, 60) < 0, "120 bytes pass the size limit");
	ok(gn_delivery_write(d, small_msg, 1) < 0, "later writes fail too");
	is_int(gn_delivery_run_sync(d), 0, "nothing accepted");
	is_str(result_str(d, 0), "552 5.3.4", "message too big: 552 5.3.4");
	is_int(mailbox_count(alice, "Inbox"), a0, "nothing stored");
	gn_delivery_free(&d);
}

static void test_db_down(void)
{
	long long a0 = mailbox_count(alice, "Inbox"), b0 = mailbox_count(bob, "Inbox");
	static const char *const rc[] = { "alice@example.com", "bob@example.com" };
	struct gn_delivery *d = new_delivery(rc, 2);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	hk.kill_db = true;	/* the mailbox hook ends our session */
	is_int(gn_delivery_run_sync(d), 0, "the database going away: nothing accepted");
	hk.kill_db = false;
	is_str(result_str(d, 0), "451 4.3.0", "451 4.3.0 for the first");
	is_str(result_str(d, 1), "451 4.3.0", "and the second");
	is_int(res(d, 0)->status, GN_DELIVERY_TEMPFAIL, "a temporary failure");
	gn_delivery_free(&d);

	/* Wait for the reconnection, then look. */
	double deadline = mono() + 15;
	const char *err;
	PGresult *r = NULL;
	while (mono() < deadline && (r = db_query("SELECT 1", 0, NULL, &err)) == NULL) {
		struct gn_timer *w = gn_timer_new(100, false, guard_cb, NULL);
		guard_fired = false;
		while (!guard_fired)
			ev_run(core_loop, EVRUN_ONCE);
		gn_timer_free(&w);
	}
	ok(r != NULL, "the database is back");
	PQclear(r);
	is_int(mailbox_count(alice, "Inbox"), a0, "nothing was stored for alice");
	is_int(mailbox_count(bob, "Inbox"), b0, "nor for bob");

	/* The database down during resolution. */
	d = new_delivery(rc, 1);
	gn_delivery_write(d, small_msg, sizeof(small_msg) - 1);
	kill_our_session();
	is_int(gn_delivery_run_sync(d), 0, "database down at lookup: not accepted");
	is_str(result_str(d, 0), "451 4.3.0", "451 4.3.0");
	gn_delivery_free(&d);
	deadline = mono() + 15;
	while (mono() < deadline && (r = db_query("SELECT 1", 0, NULL, &err)) == NULL) {
		struct gn_timer *w = gn_timer_new(100, false, guard_cb, NULL);
		guard_fired = false;
		while (!guard_fired)
			ev_run(core_loop, EVRUN_ONCE);
		gn_timer_free(&w);
	}
	PQclear(r);
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_big(void)
{
	const size_t total = 20u * 1024 * 1024, chunk = 64 * 1024;
	char *buf = gn_malloc(chunk);
	static const char head[] = "From: a@example.org\r\nSubject: big\r\n"
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n";
	long before = maxrss_kb();
	struct gn_delivery *d = gn_delivery_new("test", NULL);
	gn_delivery_add_recipient(d, A("bob@example.com"), NULL, 0);
	size_t written = 0;
	gn_delivery_write(d, head, sizeof(head) - 1);
	written += sizeof(head) - 1;
	/* Lines of 76 base64 characters. */
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (i % 78) == 76 ? '\r' : (i % 78) == 77 ? '\n' : (char)('A' + (i / 78) % 26);
	bool ok_writes = true;
	while (written + chunk <= total) {
		if (gn_delivery_write(d, buf, chunk) < 0)
			ok_writes = false;
		written += chunk;
	}
	ok(ok_writes, "20 MB written in 64 KB chunks");
	is_int(gn_delivery_run_sync(d), 1, "a 20 MB message is delivered");
	long grew = maxrss_kb() - before;
	ok(grew < 12 * 1024, "memory stays bounded (peak grew %ld KB, less than 12 MB)", grew);
	const struct gn_delivery_result *r = res(d, 0);
	struct gn_store_message *m = NULL;
	const char *err;
	gn_store_message_get(pool, bob, r->mailbox_id, r->uid, &m, &err);
	is_int(m ? (long long)m->size : -1, (long long)written, "stored size is the size written");
	/* Read it back in pieces: the last chunk equals what was written. */
	struct gn_store_body *body = NULL;
	if (gn_store_message_open(bob, r->mailbox_id, r->uid, &body, &err) > 0) {
		char *back = gn_malloc(chunk);
		size_t got = 0;
		gn_store_body_read(body, written - chunk, back, chunk, &got, &err);
		ok(got == chunk && memcmp(back, buf, chunk) == 0, "the end reads back unchanged");
		gn_free(back);
		gn_store_body_free(&body);
	} else {
		ok(false, "the end reads back unchanged");
	}
	gn_delivery_free(&d);
	gn_free(buf);
}

static void test_mime_stored(void)
{
	static const char msg[] =
		"From: a@example.org\r\n"
		"Subject: =?UTF-8?Q?caf=C3=A9?=\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		"\r\n"
		"--b1\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"\r\n"
		"hello\r\n"
		"--b1\r\n"
		"Content-Type: application/pdf; name=\"x.pdf\"\r\n"
		"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"JVBERi0xLjQK\r\n"
		"--b1--\r\n";
	struct gn_delivery *d = gn_delivery_new("test", NULL);
	gn_delivery_add_recipient(d, A("alice@example.com"), "X-Prefix: 1\r\n", 13);
	/* Odd chunks: the parser sees the same bytes as the blob. */
	for (size_t i = 0; i < sizeof(msg) - 1; i += 7)
		gn_delivery_write(d, msg + i, sizeof(msg) - 1 - i < 7 ? sizeof(msg) - 1 - i : 7);
	is_int(gn_delivery_run_sync(d), 1, "a multipart message is delivered");
	const struct gn_delivery_result *r = res(d, 0);
	struct gn_store_message *m = NULL;
	const char *err;
	gn_store_message_get(pool, alice, r->mailbox_id, r->uid, &m, &err);
	ok(m != NULL && m->mime_json != NULL, "its MIME structure is stored");
	is_str(m ? m->subject : NULL, "café", "the decoded subject is stored");
	struct gn_mime_message *mm = NULL;
	if (m != NULL && m->mime_json != NULL &&
	    gn_mime_from_json_string(m->mime_json, strlen(m->mime_json), &mm, &err) == 0) {
		const struct gn_mime_part *root = gn_mime_message_root(mm);
		is_str(gn_mime_part_type(root), "multipart", "root is multipart");
		is_int((long long)gn_mime_part_child_count(root), 2, "with two parts");
		if (gn_mime_part_child_count(root) == 2)
			is_str(gn_mime_part_filename(gn_mime_part_child(root, 1)), "résumé.pdf",
			       "the attachment's decoded filename");
		gn_mime_message_free(&mm);
	} else {
		ok(false, "the stored structure reads back");
	}
	gn_delivery_free(&d);
}


/* A multipart message of n parts, each with a Content-Description of
 * desc bytes (what makes its structure large), from pool. */
static struct gn_buf *many_parts(unsigned n, size_t desc)
{
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
			  "Content-Type: multipart/mixed; boundary=\"pp\"\r\n\r\n");
	for (unsigned i = 0; i < n; i++) {
		gn_buf_printf(b, "--pp\r\nContent-Type: text/plain\r\nContent-Description: ");
		for (size_t j = 0; j < desc; j++)
			gn_buf_append(b, &"abcdefghij"[j % 10], 1);
		gn_buf_printf(b, "\r\n\r\npart %u\r\n", i);
	}
	gn_buf_append_str(b, "--pp--\r\n");
	return b;
}

static void test_structure(void)
{
	const char *err = NULL;
	char *v;

	/* Stored once per body, with the blob, not with each copy. */
	static const char *const two[] = { "alice@example.com", "bob@example.com" };
	struct gn_delivery *d = new_delivery(two, 2);
	struct gn_buf *b = many_parts(300, 10);
	gn_delivery_write(d, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	is_int(gn_delivery_run_sync(d), 2, "a message of 300 parts to two accounts");
	v = outside("SELECT count(*) FROM information_schema.columns WHERE table_name = 'gn_messages' "
		    "AND column_name = 'mime'");
	is_str(v, "0", "messages carry no structure of their own");
	gn_free(v);
	v = outside("SELECT count(*) FROM gn_blobs WHERE mime IS NOT NULL AND "
		    "jsonb_array_length(mime->'parts') = 301");
	is_str(v, "1", "the structure is stored once, with the body");
	gn_free(v);
	struct gn_store_message *ma = NULL, *mb = NULL;
	gn_store_message_get(pool, alice, res(d, 0)->mailbox_id, res(d, 0)->uid, &ma, &err);
	gn_store_message_get(pool, bob, res(d, 1)->mailbox_id, res(d, 1)->uid, &mb, &err);
	ok(ma != NULL && mb != NULL && ma->mime_json != NULL && mb->mime_json != NULL &&
	   strcmp(ma->mime_json, mb->mime_json) == 0, "and each copy reads it");
	gn_delivery_free(&d);

	/* Past the bound: refused for good, never 451 (the sender would
	 * retry forever). */
	long long a0 = mailbox_count(alice, "Inbox");
	static const char *const one[] = { "alice@example.com" };
	d = new_delivery(one, 1);
	b = many_parts(150, 60000);
	diag("a message of %zu bytes whose structure passes the bound", gn_buf_len(b));
	for (size_t off = 0; off < gn_buf_len(b); off += 65536)
		gn_delivery_write(d, gn_buf_data(b) + off,
				  gn_buf_len(b) - off < 65536 ? gn_buf_len(b) - off : 65536);
	gn_buf_free(&b);
	is_int(gn_delivery_run_sync(d), 0, "a message whose structure is too large is not delivered");
	is_str(result_str(d, 0), "554 5.6.0", "554 5.6.0: refused for good");
	is_int(res(d, 0)->status, GN_DELIVERY_REJECTED, "a permanent failure");
	like(res(d, 0)->text, "structure too complex", "saying why");
	gn_delivery_free(&d);
	is_int(mailbox_count(alice, "Inbox"), a0, "nothing was stored");
	v = outside("SELECT count(*) FROM gn_blobs WHERE hash IS NULL");
	is_str(v, "0", "and no half-written body is left behind");
	gn_free(v);
}

int main(void)
{
	const char *err = NULL;
	log_init("test_deliver");
	if (!pgtest_setup("deliver")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	loop_init();

	ok(deliver_register() == 0, "deliver_register defines the hook points");
	ok(gn_hook_point_find("deliver.resolve") && gn_hook_point_find("deliver.check") &&
	   gn_hook_point_find("deliver.mailbox") && gn_hook_point_find("deliver.after"),
	   "resolve, check, mailbox and after points exist");
	struct gn_module_ctx *ctx = modules_core_ctx();
	gn_hook_register(ctx, "deliver.resolve", 0, 0, resolve_hook, NULL, &err);
	gn_hook_register(ctx, "deliver.check", 0, 0, check_hook, NULL, &err);
	gn_hook_register(ctx, "deliver.mailbox", 0, 0, mailbox_hook, NULL, &err);
	gn_hook_register(ctx, "deliver.after", 0, 0, after_hook, NULL, &err);
	ok(gn_hook_register(ctx, GN_DELIVER_STORE, 0, 0, store_hook, NULL, &err) == 0,
	   "a hook on deliver.store");

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
	carol = account("carol", "carol@example.com");
	ok(alice > 0 && bob > 0 && carol > 0, "accounts created");
	if (gn_store_address_add("alice.smith@example.com", "alice", &err) < 0)
		diag("address: %s", err);
	/* Hook-driven recipients land on carol. */
	static const char *const carols[] = { "full", "over", "sorted", "nowhere", "stuck", "blocked" };
	for (size_t i = 0; i < sizeof(carols) / sizeof(carols[0]); i++) {
		char *a = gn_strdup_printf("%s@example.com", carols[i]);
		if (gn_store_address_add(a, "carol", &err) < 0)
			diag("address %s: %s", a, err);
		gn_free(a);
	}

	test_one_and_several();
	test_same_account_once();
	test_unknown();
	test_hooks();
	test_expansion_copies();
	test_set_prefix();
	test_store_hook();
	test_async();
	test_rcpt_check();
	test_limits();
	test_mime_stored();
	test_structure();
	test_big();
	test_db_down();

	gn_timer_free(&later_resolve.timer);
	gn_timer_free(&later_after.timer);
	gn_pool_free(&pool);
	db_close();
	return done_testing();
}
