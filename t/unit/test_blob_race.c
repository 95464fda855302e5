/*
 * t/unit/test_blob_race.c: a message's body and its last other reference
 * going at the same moment (core/store/blob.c, migration 010), step by
 * step on two database connections against a real PostgreSQL.
 *
 * The second connection belongs to a helper process (struct other) that
 * runs one store call at a time on command and answers when it is done;
 * where that call has to wait for a lock of ours, the test sees it
 * waiting (pg_stat_activity) before it goes on, so every run takes the
 * same steps in the same order.  Each case is one a client met under load
 * (contrib/bench/imap: "no such blob"):
 *
 *   - APPEND-style: a body finished in a transaction of its own (later
 *     messages of a MULTIAPPEND, any caller of gn_store_blob_finish()),
 *     the only other message with that body expunged, then the message
 *     added.
 *   - clean-up: an old unused body finished again, the clean-up job, then
 *     the message added.
 *   - deliveries: two deliveries of a body that exists, interleaved (each
 *     finishes, then adds its message; they deadlocked).
 *   - a delivery finishing a body while an expunge that deletes it waits
 *     to commit; a finish that found the blob and then waits for its row
 *     while an expunge deletes it; APPEND finishing in the adding transaction after the
 *     account lock (d4f2fe7) while an expunge waits for that lock.
 *   - the hold ends: an expunge leaves a body finished lately to the
 *     clean-up, which takes it once the hold is over.
 */
#include "store/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pgtest.h"
#include "tap.h"

static int64_t account;
static int64_t inbox;
static bool has_finished_at;	/* migration 010 applied */

static long long query_int(const char *sql, int n, const char *const *params)
{
	const char *err;
	PGresult *r = db_query(sql, n, params, &err);
	if (r == NULL) {
		diag("%s: %s", sql, err);
		return -1;
	}
	long long v = PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
	PQclear(r);
	return v;
}

static const char *hash_param(struct gn_pool *pool, const unsigned char h[GN_STORE_HASH_SIZE])
{
	return gn_pool_printf(pool, "\\x%s", gn_store_hash_hex(pool, h));
}

/* Every blob's reference count equals a recount of the messages using it. */
static bool refcounts_exact(void)
{
	long long bad = query_int("SELECT count(*) FROM gn_blobs b WHERE b.hash IS NOT NULL AND b.refcount <> "
				  "(SELECT count(*) FROM gn_messages m WHERE m.blob_id = b.id)", 0, NULL);
	if (bad != 0)
		diag("%lld blobs with a wrong reference count", bad);
	return bad == 0;
}

/* Makes the blob look finished hours ago (created then, last finished
 * then).  Also on a schema before 010, where this test was run to see it
 * fail. */
static void blob_age(struct gn_pool *pool, const unsigned char h[GN_STORE_HASH_SIZE], int hours)
{
	const char *p[2] = { hash_param(pool, h), gn_pool_printf(pool, "%d", hours) };
	if (query_int("WITH u AS (UPDATE gn_blobs SET created_at = now() - make_interval(hours => $2::int) "
		      "WHERE hash = $1 RETURNING 1) SELECT count(*) FROM u", 2, p) != 1)
		diag("cannot age blob %s", p[0]);
	if (has_finished_at &&
	    query_int("WITH u AS (UPDATE gn_blobs SET finished_at = now() - make_interval(hours => $2::int) "
		      "WHERE hash = $1 RETURNING 1) SELECT count(*) FROM u", 2, p) != 1)
		diag("cannot age blob %s", p[0]);
}

static long long blob_count(struct gn_pool *pool, const unsigned char h[GN_STORE_HASH_SIZE])
{
	const char *p[1] = { hash_param(pool, h) };
	return query_int("SELECT count(*) FROM gn_blobs WHERE hash = $1", 1, p);
}

static long long blob_refs(struct gn_pool *pool, const unsigned char h[GN_STORE_HASH_SIZE])
{
	const char *p[1] = { hash_param(pool, h) };
	return query_int("SELECT refcount FROM gn_blobs WHERE hash = $1", 1, p);
}

/* A body in a writer, not finished. */
static struct gn_store_blob_writer *writer_of(const char *body)
{
	const char *err;
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	if (gn_store_blob_write(w, body, strlen(body), &err) < 0)
		diag("blob write: %s", err);
	return w;
}

/* A message with body in the Inbox, its blob finished in the add's own
 * transaction: its UID, 0 on failure. */
static uint32_t message_with(struct gn_pool *pool, const char *body, unsigned char h[GN_STORE_HASH_SIZE])
{
	const char *err = NULL;
	struct gn_store_blob_writer *w = writer_of(body);
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	struct gn_store_message *msg = NULL;
	int r = gn_store_blob_finish(w, h, NULL, &err);
	gn_store_blob_writer_free(&w);
	memcpy(m.blob_hash, h, GN_STORE_HASH_SIZE);
	if (r < 0 || gn_store_message_add(pool, &m, &msg, &err) < 0) {
		diag("message: %s", err);
		return 0;
	}
	return msg->uid;
}

/* The body of the Inbox message uid is body. */
static bool reads_as(uint32_t uid, const char *body)
{
	const char *err = NULL;
	struct gn_store_body *b = NULL;
	if (gn_store_message_open(account, inbox, uid, &b, &err) != 1) {
		diag("open uid %" PRIu32 ": %s", uid, err != NULL ? err : "not found");
		return false;
	}
	size_t len = strlen(body), got = 0;
	char *buf = gn_malloc(len + 1);
	bool same = gn_store_body_size(b) == len && gn_store_body_read(b, 0, buf, len, &got, &err) == 0 &&
		    got == len && memcmp(buf, body, len) == 0;
	if (!same)
		diag("uid %" PRIu32 " does not read back: %s", uid, err != NULL ? err : "other bytes");
	gn_free(buf);
	gn_store_body_free(&b);
	return same;
}

/* Whether backend pid waits for a lock, asked until it does: 1, or 0
 * when it never does in a minute (a stuck test, not a result).  pg_locks
 * is live inside a transaction (pg_stat_activity is a snapshot). */
static int backend_waits(long long pid)
{
	char b[32];
	snprintf(b, sizeof(b), "%lld", pid);
	const char *p[1] = { b };
	for (int i = 0; i < 6000; i++) {
		if (query_int("SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", 1, p) > 0)
			return 1;
		poll(NULL, 0, 10);
	}
	return 0;
}

/* ---- the other connection: a helper process ---- */

enum op {
	OP_BEGIN = 'b',
	OP_COMMIT = 'c',
	OP_ROLLBACK = 'r',
	OP_EXPUNGE = 'x',	/* arg: the Inbox UID */
	OP_CLEANUP = 'k',	/* arg: min age in seconds */
	OP_FINISH = 'f',	/* body: finished in the open transaction (a delivery's) */
	OP_DELIVER = 'd',	/* the body finished last, as a delivery stores it */
	OP_COMMIT_WHEN_WAITED = 'w',	/* arg: a backend; commits once it waits for a lock */
	OP_WHEN_WAITED = 'W',	/* arg: a backend; answers 1 once it waits for a lock */
	OP_SHARE = 's',		/* body: a blob's hash; locks its row FOR SHARE */
	OP_PID = 'p',		/* answers its backend's pid */
	OP_QUIT = 'q',
};

struct cmd {
	char op;
	int64_t arg;
	char body[256];
};

struct reply {
	long long r;
	char err[256];
};

static struct {
	pid_t pid;
	int to, from;		/* pipes: commands, replies */
	long long backend;	/* its backend's pid */
} other;

static void other_do(const struct cmd *c, struct reply *rep, unsigned char hash[GN_STORE_HASH_SIZE])
{
	const char *err = NULL;
	struct gn_pool *pool = gn_pool_new();
	rep->r = -1;
	switch (c->op) {
	case OP_BEGIN:
		rep->r = gn_db_begin(&err);
		break;
	case OP_COMMIT:
		rep->r = gn_db_commit(&err);
		break;
	case OP_ROLLBACK:
		gn_db_rollback();
		rep->r = 0;
		break;
	case OP_EXPUNGE: {
		uint32_t uid = (uint32_t)c->arg;
		rep->r = gn_store_message_expunge(pool, account, inbox, &uid, 1, NULL, NULL, &err);
		break;
	}
	case OP_CLEANUP:
		rep->r = gn_store_blob_cleanup((long)c->arg, &err);
		break;
	case OP_FINISH: {
		struct gn_store_blob_writer *w = writer_of(c->body);
		rep->r = store_blob_finish(w, NULL, hash, NULL, &err);
		gn_store_blob_writer_free(&w);
		break;
	}
	case OP_DELIVER: {
		struct gn_store_message_new m = { .size = sizeof(m), .account_id = account,
						  .mailbox_id = inbox };
		memcpy(m.blob_hash, hash, GN_STORE_HASH_SIZE);
		int64_t id;
		rep->r = gn_store_message_deliver(&m, &id, NULL, &err);
		break;
	}
	case OP_COMMIT_WHEN_WAITED:
		if (backend_waits(c->arg) != 1) {
			err = "the other backend never waited for a lock";
			gn_db_rollback();
			break;
		}
		rep->r = gn_db_commit(&err);
		break;
	case OP_WHEN_WAITED:
		rep->r = backend_waits(c->arg);
		break;
	case OP_SHARE: {
		const char *p[1] = { c->body };
		rep->r = query_int("SELECT count(*) FROM (SELECT 1 FROM gn_blobs WHERE hash = $1 FOR SHARE) s",
				   1, p);
		break;
	}
	case OP_PID:
		rep->r = query_int("SELECT pg_backend_pid()", 0, NULL);
		break;
	default:
		err = "unknown command";
	}
	snprintf(rep->err, sizeof(rep->err), "%s", rep->r < 0 && err != NULL ? err : "");
	gn_pool_free(&pool);
}

static int other_main(int in, int out)
{
	const char *err = NULL;
	if (db_init(pgtest_conninfo(), &err) < 0)
		return 1;
	unsigned char hash[GN_STORE_HASH_SIZE] = { 0 };
	struct cmd c;
	while (read(in, &c, sizeof(c)) == (ssize_t)sizeof(c) && c.op != OP_QUIT) {
		struct reply rep;
		memset(&rep, 0, sizeof(rep));
		other_do(&c, &rep, hash);
		if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
			break;
	}
	db_close();
	return 0;
}

static void other_send(char op, int64_t arg, const char *body)
{
	struct cmd c;
	memset(&c, 0, sizeof(c));
	c.op = op;
	c.arg = arg;
	if (body != NULL)
		snprintf(c.body, sizeof(c.body), "%s", body);
	if (write(other.to, &c, sizeof(c)) != (ssize_t)sizeof(c))
		diag("cannot talk to the helper: %s", strerror(errno));
}

/* The answer to the command sent last (waits for it). */
static long long other_reply(void)
{
	struct reply rep;
	if (read(other.from, &rep, sizeof(rep)) != (ssize_t)sizeof(rep)) {
		diag("no answer from the helper");
		return -2;
	}
	if (rep.r < 0)
		diag("helper: %s", rep.err);
	return rep.r;
}

static long long other_step(char op, int64_t arg, const char *body)
{
	other_send(op, arg, body);
	return other_reply();
}

/* After other_send(): 1 when the command is done (its answer waits to be
 * read), 0 when the helper waits for a lock, -1 when neither happens in
 * a minute (a stuck test, not a result). */
static int other_done_or_waiting(void)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "%lld", other.backend);
	const char *p[1] = { pid };
	for (int i = 0; i < 6000; i++) {
		struct pollfd pfd = { .fd = other.from, .events = POLLIN };
		if (poll(&pfd, 1, 10) > 0)
			return 1;
		if (query_int("SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", 1, p) > 0)
			return 0;
	}
	diag("the helper neither finished nor waited for a lock");
	return -1;
}

static bool other_start(void)
{
	int to[2], from[2];
	if (pipe(to) < 0 || pipe(from) < 0)
		return false;
	/* No child may share our connection. */
	db_close();
	other.pid = fork();
	if (other.pid == 0) {
		close(to[1]);
		close(from[0]);
		_exit(other_main(to[0], from[1]));
	}
	close(to[0]);
	close(from[1]);
	other.to = to[1];
	other.from = from[0];
	const char *err = NULL;
	if (other.pid < 0 || db_init(pgtest_conninfo(), &err) < 0)
		return false;
	other.backend = other_step(OP_PID, 0, NULL);
	return other.backend > 0;
}

static bool other_stop(void)
{
	other_send(OP_QUIT, 0, NULL);
	close(other.to);
	close(other.from);
	int st;
	return waitpid(other.pid, &st, 0) == other.pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- the cases ---- */

/* Finished in a transaction of its own, then added in another one: the
 * expunge of the body's only other message in between must not take the
 * blob. */
static void test_append_separate(struct gn_pool *pool)
{
	static const char body[] = "Subject: separate\r\n\r\nfinished first, added later\r\n";
	unsigned char h[GN_STORE_HASH_SIZE];
	uint32_t old = message_with(pool, body, h);
	blob_age(pool, h, 2);

	const char *err = NULL;
	struct gn_store_blob_writer *w = writer_of(body);
	unsigned char h2[GN_STORE_HASH_SIZE];
	ok(gn_store_blob_finish(w, h2, NULL, &err) == 0 && memcmp(h, h2, sizeof(h)) == 0,
	   "append: the body finishes (it exists)");
	gn_store_blob_writer_free(&w);
	is_int(other_step(OP_EXPUNGE, old, NULL), 1, "append: the other connection expunges its only other message");
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	memcpy(m.blob_hash, h, sizeof(h));
	struct gn_store_message *msg = NULL;
	int r = gn_store_message_add(pool, &m, &msg, &err);
	if (!ok(r == 0, "append: the message is added after all"))
		diag("%s", err);
	ok(r == 0 && reads_as(msg->uid, body), "append: and reads back");
	ok(refcounts_exact(), "append: reference counts exact");
}

/* An old body nothing uses, finished again: the clean-up job between the
 * finish and the add must not take it. */
static void test_cleanup(struct gn_pool *pool)
{
	static const char body[] = "Subject: cleanup\r\n\r\nunused for hours\r\n";
	unsigned char h[GN_STORE_HASH_SIZE];
	const char *err = NULL;
	struct gn_store_blob_writer *w = writer_of(body);
	ok(gn_store_blob_finish(w, h, NULL, &err) == 0, "clean-up: an unused body");
	gn_store_blob_writer_free(&w);
	blob_age(pool, h, 7);

	w = writer_of(body);
	ok(gn_store_blob_finish(w, h, NULL, &err) == 0, "clean-up: finished again, hours later");
	gn_store_blob_writer_free(&w);
	is_int(other_step(OP_CLEANUP, 6 * 3600, NULL), 0,
	       "clean-up: the job on the other connection leaves it (finished just now)");
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	memcpy(m.blob_hash, h, sizeof(h));
	struct gn_store_message *msg = NULL;
	int r = gn_store_message_add(pool, &m, &msg, &err);
	if (!ok(r == 0, "clean-up: the message is added after all"))
		diag("%s", err);
	ok(r == 0 && reads_as(msg->uid, body), "clean-up: and reads back");
	ok(refcounts_exact(), "clean-up: reference counts exact");
}

/* Two deliveries of a body that exists, each finishing then adding in
 * one transaction: the second finishes while the first holds the body,
 * then both add their messages.  Neither may fail. */
static void test_two_deliveries(struct gn_pool *pool)
{
	static const char body[] = "Subject: twice\r\n\r\ndelivered twice at once\r\n";
	unsigned char h[GN_STORE_HASH_SIZE];
	if (message_with(pool, body, h) == 0)
		return;
	const char *err = NULL;
	ok(gn_db_begin(&err) == 0, "deliveries: the first begins");
	struct gn_store_blob_writer *w = writer_of(body);
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	ok(store_blob_finish(w, NULL, m.blob_hash, NULL, &err) == 0, "deliveries: the first finishes the body");
	gn_store_blob_writer_free(&w);
	is_int(other_step(OP_BEGIN, 0, NULL), 0, "deliveries: the second begins");
	other_send(OP_FINISH, 0, body);
	int finish = other_done_or_waiting(), add = -1;
	long long second_finish = -2, second_add = -2;
	if (finish == 1) {
		/* It did not wait: it adds its message while the first has
		 * not yet added its own. */
		second_finish = other_reply();
		other_send(OP_DELIVER, 0, NULL);
		add = other_done_or_waiting();
	}
	int64_t id;
	int r1 = gn_store_message_deliver(&m, &id, NULL, &err);
	if (!ok(r1 >= 0, "deliveries: the first adds its message"))
		diag("%s", err);
	if (r1 >= 0) {
		r1 = gn_db_commit(&err);
		ok(r1 == 0, "deliveries: the first commits");
	} else {
		gn_db_rollback();
	}
	if (finish == 0) {
		second_finish = other_reply();
		second_add = other_step(OP_DELIVER, 0, NULL);
	} else if (add >= 0) {
		second_add = other_reply();
	}
	is_int(second_finish, 0, "deliveries: the second finishes the body");
	ok(second_add >= 0, "deliveries: the second adds its message");
	if (second_add >= 0)
		is_int(other_step(OP_COMMIT, 0, NULL), 0, "deliveries: the second commits");
	else
		other_step(OP_ROLLBACK, 0, NULL);
	is_int(blob_refs(pool, h), 3, "deliveries: the body has its three messages");
	ok(gn_store_settle(account, false, &err) >= 0 &&
	   query_int("SELECT count(*) FROM gn_messages WHERE uid IS NULL", 0, NULL) == 0,
	   "deliveries: settled");
	ok(refcounts_exact(), "deliveries: reference counts exact");
}

/* A delivery finishes a body while an expunge that dropped its last
 * reference and deleted it waits to commit: the delivery waits, then
 * stores the body anew. */
static void test_delivery_after_delete(struct gn_pool *pool)
{
	static const char body[] = "Subject: anew\r\n\r\ndeleted while delivered\r\n";
	unsigned char h[GN_STORE_HASH_SIZE];
	uint32_t old = message_with(pool, body, h);
	blob_age(pool, h, 2);
	is_int(other_step(OP_BEGIN, 0, NULL), 0, "anew: the other connection begins");
	is_int(other_step(OP_EXPUNGE, old, NULL), 1, "anew: and expunges the body's only message");
	const char *err = NULL;
	ok(gn_db_begin(&err) == 0, "anew: a delivery begins");
	/* The helper commits once we wait for it: our finish cannot end
	 * before its transaction does. */
	other_send(OP_COMMIT_WHEN_WAITED, query_int("SELECT pg_backend_pid()", 0, NULL), NULL);
	struct gn_store_blob_writer *w = writer_of(body);
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	int r = store_blob_finish(w, NULL, m.blob_hash, NULL, &err);
	gn_store_blob_writer_free(&w);
	int64_t id;
	if (r == 0)
		r = gn_store_message_deliver(&m, &id, NULL, &err);
	if (r >= 0)
		r = gn_db_commit(&err);
	else
		gn_db_rollback();
	if (!ok(r >= 0, "anew: the delivery stores the message"))
		diag("%s", err);
	is_int(other_reply(), 0, "anew: the expunge committed after the delivery waited for it");
	is_int(blob_count(pool, h), 1, "anew: the body is stored");
	ok(gn_store_settle(account, false, &err) >= 0 &&
	   query_int("SELECT count(*) FROM gn_messages WHERE uid IS NULL", 0, NULL) == 0,
	   "anew: settled");
	ok(refcounts_exact(), "anew: reference counts exact");
}

/* A finish finds the body's blob, then waits for its row while another
 * transaction drops the blob's last reference and deletes it: the finish
 * stores the body anew.  (The other transaction's FOR SHARE only makes
 * the finish wait between its two statements, as the scheduler may.) */
static void test_finish_vanished(struct gn_pool *pool)
{
	static const char body[] = "Subject: vanished\r\n\r\ngone while looked up\r\n";
	unsigned char h[GN_STORE_HASH_SIZE];
	uint32_t old = message_with(pool, body, h);
	blob_age(pool, h, 2);
	is_int(other_step(OP_BEGIN, 0, NULL), 0, "vanished: the other connection begins");
	is_int(other_step(OP_SHARE, 0, hash_param(pool, h)), 1, "vanished: and holds the blob's row");
	/* Queued now, run by the helper while our finish waits. */
	other_send(OP_WHEN_WAITED, query_int("SELECT pg_backend_pid()", 0, NULL), NULL);
	other_send(OP_EXPUNGE, old, NULL);
	other_send(OP_COMMIT, 0, NULL);
	const char *err = NULL;
	struct gn_store_blob_writer *w = writer_of(body);
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	int r = gn_store_blob_finish(w, m.blob_hash, NULL, &err);
	gn_store_blob_writer_free(&w);
	if (!ok(r == 0, "vanished: the body finishes"))
		diag("%s", err);
	is_int(other_reply(), 1, "vanished: it waited for the other transaction");
	is_int(other_reply(), 1, "vanished: which expunged the body's only message");
	is_int(other_reply(), 0, "vanished: and committed");
	struct gn_store_message *msg = NULL;
	r = gn_store_message_add(pool, &m, &msg, &err);
	if (!ok(r == 0, "vanished: the message is added"))
		diag("%s", err);
	ok(r == 0 && reads_as(msg->uid, body), "vanished: and reads back");
	ok(refcounts_exact(), "vanished: reference counts exact");
}

/* APPEND as d4f2fe7 does it for a small first message: the account
 * locked, the body finished in the transaction that adds it.  An expunge
 * of the body's only other message waits for the account and finds the
 * new reference. */
static void test_append_same_tx(struct gn_pool *pool)
{
	static const char body[] = "Subject: same\r\n\r\nfinished where it is added\r\n";
	unsigned char h[GN_STORE_HASH_SIZE];
	uint32_t old = message_with(pool, body, h);
	blob_age(pool, h, 2);
	const char *err = NULL;
	ok(gn_db_begin(&err) == 0 && gn_store_account_lock(account, &err) == 1,
	   "append in one transaction: the account locked");
	struct gn_store_blob_writer *w = writer_of(body);
	struct gn_store_message_new m = { .size = sizeof(m), .account_id = account, .mailbox_id = inbox };
	ok(gn_store_blob_finish(w, m.blob_hash, NULL, &err) == 0, "append in one transaction: finished");
	gn_store_blob_writer_free(&w);
	other_send(OP_EXPUNGE, old, NULL);
	is_int(other_done_or_waiting(), 0, "append in one transaction: an expunge waits for the account");
	struct gn_store_message *msg = NULL;
	int r = gn_store_message_add(pool, &m, &msg, &err);
	if (!ok(r == 0 && gn_db_commit(&err) == 0, "append in one transaction: added and committed"))
		diag("%s", err);
	is_int(other_reply(), 1, "append in one transaction: the expunge goes on");
	is_int(blob_refs(pool, h), 1, "append in one transaction: the body has its new message");
	ok(r == 0 && reads_as(msg->uid, body), "append in one transaction: which reads back");
	ok(refcounts_exact(), "append in one transaction: reference counts exact");
}

/* The hold ends: a body finished lately stays (unused) after its last
 * message's expunge, the clean-up leaves it while it is held, and takes
 * it once its last finish is old enough; an old one goes at once. */
static void test_hold_ends(struct gn_pool *pool)
{
	static const char body[] = "Subject: hold\r\n\r\nheld, then gone\r\n";
	static const char body2[] = "Subject: old\r\n\r\nold, gone at once\r\n";
	unsigned char h[GN_STORE_HASH_SIZE], h2[GN_STORE_HASH_SIZE];
	uint32_t uid = message_with(pool, body, h), uid2 = message_with(pool, body2, h2);
	blob_age(pool, h2, 2);
	is_int(other_step(OP_EXPUNGE, uid, NULL), 1, "hold: the message of a body finished just now expunged");
	is_int(blob_count(pool, h), 1, "hold: its body stays for now");
	is_int(other_step(OP_EXPUNGE, uid2, NULL), 1, "hold: the message of a body finished hours ago expunged");
	is_int(blob_count(pool, h2), 0, "hold: its body is gone");
	const char *err = NULL;
	is_int(gn_store_blob_cleanup(6 * 3600, &err), 0, "hold: the clean-up leaves a body finished just now");
	blob_age(pool, h, 7);
	is_int(gn_store_blob_cleanup(6 * 3600, &err), 1, "hold: and takes it once it is old");
	is_int(blob_count(pool, h), 0, "hold: gone");
}

int main(void)
{
	const char *err = NULL;

	log_init("test_blob_race");
	if (!pgtest_setup("blobrace")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	if (db_init(pgtest_conninfo(), &err) < 0 || db_migrate(NULL, &err) < 0) {
		ok(false, "database ready: %s", err);
		return done_testing();
	}
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *a = NULL;
	struct gn_store_mailbox *mb = NULL;
	if (gn_store_domain_add(pool, "example.com", NULL, NULL, &err) < 0 ||
	    gn_store_account_add(pool, "alice", "alice@example.com", NULL, &a, &err) < 0 ||
	    gn_store_mailbox_find(pool, a->id, "Inbox", &mb, &err) != 1) {
		ok(false, "an account: %s", err);
		return done_testing();
	}
	account = a->id;
	inbox = mb->id;
	has_finished_at = query_int("SELECT count(*) FROM information_schema.columns WHERE "
				    "table_name = 'gn_blobs' AND column_name = 'finished_at'", 0, NULL) == 1;
	if (!ok(other_start(), "a second connection in a helper process"))
		return done_testing();

	test_append_separate(pool);
	test_cleanup(pool);
	test_two_deliveries(pool);
	test_delivery_after_delete(pool);
	test_finish_vanished(pool);
	test_append_same_tx(pool);
	test_hold_ends(pool);

	ok(other_stop(), "the helper ends");
	gn_pool_free(&pool);
	db_close();
	return done_testing();
}
