/*
 * t/unit/test_settle.c: deliveries stored as pending and settled
 * (core/store/mailbox.c), against a real PostgreSQL.
 *
 *   - Several processes deliver to one mailbox at once, each the way
 *     core/store/deliver.c does (gn_store_message_deliver(): numbered at once
 *     when nobody settles, else pending; commit; a settle that does not
 *     wait), while another
 *     process reads the mailbox's status and messages over and over.
 *     Afterwards: every message is there exactly once, UIDs are 1..total,
 *     a message whose commit returned before another's transaction began
 *     has the lower UID, modseqs follow UIDs, nothing is pending, and the
 *     counters equal a recount.  The reader never saw a pending message,
 *     never saw UIDNEXT or HIGHESTMODSEQ go down, and never saw a new
 *     message below a UIDNEXT it had seen before.
 *   - Plans made while the table was new: a delivery to an account of
 *     400 messages reads a few rows.
 *   - A pending message nobody settled (its process died after the
 *     commit) is invisible inside a transaction, counted by the pending
 *     size, and settled by the runner job's work and by a reader.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "pgtest.h"
#include "tap.h"

#define WRITERS 4
#define PER_WRITER 60
#define TOTAL (WRITERS * PER_WRITER)

static int64_t account;
static int64_t inbox;

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

/* Every counter equals a recount of the settled rows, and every blob
 * reference a recount of all rows (pending ones hold theirs). */
static bool counters_exact(void)
{
	long long bad_mb = query_int(
		"SELECT count(*) FROM gn_mailboxes mb, LATERAL (SELECT count(*) AS n, "
		"count(*) FILTER (WHERE flags & 1 = 0) AS u, count(*) FILTER (WHERE flags & 8 <> 0) AS d, "
		"coalesce(sum(size), 0) AS s, coalesce(sum(size) FILTER (WHERE flags & 8 <> 0), 0) AS ds, "
		"coalesce(max(uid), 0) AS mu, coalesce(max(modseq), 0) AS mm "
		"FROM gn_messages m WHERE m.account_id = mb.account_id AND m.mailbox_id = mb.id "
		"AND m.uid IS NOT NULL) r "
		"WHERE (mb.messages, mb.unseen, mb.deleted, mb.size, mb.deleted_size) IS DISTINCT FROM "
		"(r.n, r.u, r.d, r.s, r.ds) OR mb.uidnext <= r.mu OR mb.highestmodseq < r.mm", 0, NULL);
	long long bad_acc = query_int(
		"SELECT count(*) FROM gn_accounts a WHERE a.total_size <> "
		"(SELECT coalesce(sum(size), 0) FROM gn_messages m WHERE m.account_id = a.id "
		"AND m.uid IS NOT NULL) OR a.modseq < (SELECT coalesce(max(highestmodseq), 0) "
		"FROM gn_mailboxes mb WHERE mb.account_id = a.id)", 0, NULL);
	long long bad_blob = query_int(
		"SELECT count(*) FROM gn_blobs b WHERE b.hash IS NOT NULL AND b.refcount <> "
		"(SELECT count(*) FROM gn_messages m WHERE m.blob_id = b.id)", 0, NULL);
	if (bad_mb != 0 || bad_acc != 0 || bad_blob != 0)
		diag("counters off: mailboxes %lld, accounts %lld, blobs %lld", bad_mb, bad_acc, bad_blob);
	return bad_mb == 0 && bad_acc == 0 && bad_blob == 0;
}

static long long pending_rows(void)
{
	return query_int("SELECT count(*) FROM gn_messages WHERE uid IS NULL", 0, NULL);
}

/* A blob with this text. */
static int blob_of(const char *s, unsigned char hash[GN_STORE_HASH_SIZE], const char **err)
{
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	int r = gn_store_blob_write(w, s, strlen(s), err) < 0 ||
		gn_store_blob_finish(w, hash, NULL, err) < 0 ? -1 : 0;
	gn_store_blob_writer_free(&w);
	return r;
}

/* One delivery as core/store/deliver.c does it.  The subject (prefix) names
 * the message.  Returns 0 or -1. */
static int deliver_one(const char *name, bool settle, int64_t *id_r, const char **err)
{
	char body[256];
	snprintf(body, sizeof(body), "Subject: %s\r\n\r\nbody of %s\r\n", name, name);
	struct gn_store_message_new m;
	memset(&m, 0, sizeof(m));
	m.size = sizeof(m);
	m.account_id = account;
	m.mailbox_id = inbox;
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "X-Name: %s\r\n", name);
	m.prefix = prefix;
	m.prefix_len = strlen(prefix);
	if (gn_db_begin(err) < 0)
		return -1;
	if (blob_of(body, m.blob_hash, err) < 0 ||
	    (settle ? gn_store_message_deliver(&m, id_r, NULL, err) :
		      gn_store_message_add_pending(&m, id_r, err)) < 0) {
		gn_db_rollback();
		return -1;
	}
	if (gn_db_commit(err) < 0)
		return -1;
	return settle && gn_store_settle(account, false, err) < 0 ? -1 : 0;
}

/* ---- plans made while the table was small ---- */

/* Rows of gn_messages this session read so far, from the statistics it
 * reports (flushed at once: pg_stat_force_next_flush()). */
static long long rows_read(void)
{
	PQclear(db_query("SELECT pg_stat_force_next_flush()", 0, NULL, NULL));
	return query_int("SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
			 "FROM pg_stat_user_tables WHERE relname = 'gn_messages'", 0, NULL);
}

/* A delivery as a busy server makes it (core/store/deliver.c): stored
 * pending, committed, settled without waiting, its UID looked up. */
static int deliver_pending(const char *name, uint32_t *uid_r, const char **err)
{
	int64_t id;
	if (deliver_one(name, false, &id, err) < 0 || gn_store_settle(account, false, err) < 0)
		return -1;
	return gn_store_message_lookup_uid(account, id, uid_r, err) == 1 ? 0 : -1;
}

/*
 * Plans this session made while gn_messages was new and nearly empty
 * (no statistics: the planner takes it for a few rows and costs every
 * index with account_id first alike), used when the account has many
 * messages: a delivery, its settle and the UID lookup after it still read
 * a few rows, not the account's every message (settle_group_apply()'s
 * id range: without it 4,095 rows for the 10 deliveries below).
 */
static void test_plans(void)
{
	const char *err = NULL;
	uint32_t uid = 0;
	bool ok_all = true;

	ok(query_int("SELECT count(*) FROM pg_class WHERE relname = 'gn_messages' "
		     "AND reltuples < 0", 0, NULL) == 1,
	   "gn_messages has no statistics yet");
	for (int i = 0; i < 400 && ok_all; i++) {
		char name[32];
		snprintf(name, sizeof(name), "plan-%d", i);
		ok_all = deliver_pending(name, &uid, &err) == 0;
	}
	ok(ok_all, "400 deliveries%s%s", ok_all ? "" : ": ", ok_all ? "" : err);
	long long before = rows_read();
	for (int i = 0; i < 10 && ok_all; i++) {
		char name[32];
		snprintf(name, sizeof(name), "plan-last-%d", i);
		ok_all = deliver_pending(name, &uid, &err) == 0;
	}
	long long after = rows_read();
	is_int(uid, 410, "10 more, each settled with the next UID");
	ok(before >= 0 && after - before < 200,
	   "10 deliveries to an account of 400 messages read a few of its messages (%lld rows)",
	   after - before);
	ok(counters_exact(), "counters exact");

	/* The UID and modseq indexes hold settled rows only, so that no
	 * lookup by (account_id, id) can be planned on them with id a
	 * filter (019_messages_settled_indexes.sql; seen in
	 * contrib/bench/smtp, not made to happen here). */
	is_int(query_int("SELECT count(*) FROM pg_indexes WHERE tablename = 'gn_messages' AND "
			 "((indexname = 'gn_messages_uid' AND indexdef LIKE '%UNIQUE%' AND "
			 "indexdef LIKE '%WHERE (uid IS NOT NULL)') OR (indexname = 'gn_messages_modseq' "
			 "AND indexdef LIKE '%WHERE (modseq IS NOT NULL)'))", 0, NULL), 2,
	       "the UID and modseq indexes are partial");
}

/* ---- several processes at once ---- */

struct record {
	int writer, seq;
	int64_t id;
	double begin, committed;
};

static int writer_main(int w, int fd)
{
	const char *err = NULL;
	if (db_init(pgtest_conninfo(), &err) < 0) {
		fprintf(stderr, "writer %d: %s\n", w, err);
		return 1;
	}
	for (int i = 0; i < PER_WRITER; i++) {
		struct record rec = { w, i, 0, mono(), 0 };
		char name[64];
		snprintf(name, sizeof(name), "w%d-%d", w, i);
		int tries = 0;
		while (deliver_one(name, true, &rec.id, &err) < 0) {
			/* Only a temporary failure (none expected) is retried. */
			if (!gn_db_error_is_temporary() || ++tries > 5) {
				fprintf(stderr, "writer %d message %d: %s\n", w, i, err);
				return 1;
			}
			rec.begin = mono();
		}
		rec.committed = mono();
		if (write(fd, &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			return 1;
	}
	db_close();
	return 0;
}

/* Reads status and messages until the writers are done (a byte on fd).
 * Exits 0, or 1 after printing what went wrong. */
static int reader_main(int fd)
{
	const char *err = NULL;
	if (db_init(pgtest_conninfo(), &err) < 0) {
		fprintf(stderr, "reader: %s\n", err);
		return 1;
	}
	bool *seen = calloc(TOTAL + 2, sizeof(*seen));
	uint32_t last_uidnext = 0;
	uint64_t last_hms = 0;
	int bad = 0, rounds = 0;
	for (;;) {
		char c;
		bool last = read(fd, &c, 1) == 1;	/* nonblocking: 1 once they are done */
		struct gn_pool *pool = gn_pool_new();
		struct gn_store_mailbox *mb;
		struct gn_store_message **list;
		size_t n;
		if (gn_store_mailbox_get(pool, account, inbox, &mb, &err) != 1 ||
		    gn_store_message_list(pool, account, inbox, 1, 0, &list, &n, &err) < 0) {
			fprintf(stderr, "reader: %s\n", err);
			return 1;
		}
		if (mb->uidnext < last_uidnext || mb->highestmodseq < last_hms) {
			fprintf(stderr, "reader: UIDNEXT %u after %u, HIGHESTMODSEQ %" PRIu64 " after %" PRIu64 "\n",
				mb->uidnext, last_uidnext, mb->highestmodseq, last_hms);
			bad++;
		}
		for (size_t i = 0; i < n; i++) {
			uint32_t uid = list[i]->uid;
			if (uid == 0 || uid > TOTAL || list[i]->modseq == 0) {
				fprintf(stderr, "reader: a message with UID %u modseq %" PRIu64 "\n",
					uid, list[i]->modseq);
				bad++;
				continue;
			}
			if (!seen[uid] && uid < last_uidnext) {
				fprintf(stderr, "reader: new UID %u below a UIDNEXT seen before (%u)\n",
					uid, last_uidnext);
				bad++;
			}
			seen[uid] = true;
		}
		last_uidnext = mb->uidnext;
		last_hms = mb->highestmodseq;
		gn_pool_free(&pool);
		rounds++;
		if (last || bad > 10)
			break;
	}
	fprintf(stderr, "# reader: %d rounds\n", rounds);
	free(seen);
	db_close();
	return bad == 0 ? 0 : 1;
}

static void test_concurrent(void)
{
	int recs[2], stop[2];
	if (pipe(recs) < 0 || pipe(stop) < 0) {
		ok(false, "pipes");
		return;
	}
	/* No child may share the parent's connection. */
	db_close();
	pid_t writers[WRITERS], reader;
	reader = fork();
	if (reader == 0) {
		close(stop[1]);
		close(recs[0]);
		close(recs[1]);
		int fl = fcntl(stop[0], F_GETFL);
		fcntl(stop[0], F_SETFL, fl | O_NONBLOCK);
		_exit(reader_main(stop[0]));
	}
	for (int w = 0; w < WRITERS; w++) {
		writers[w] = fork();
		if (writers[w] == 0) {
			close(recs[0]);
			close(stop[0]);
			close(stop[1]);
			_exit(writer_main(w, recs[1]));
		}
	}
	close(recs[1]);
	close(stop[0]);
	struct record *all = calloc(TOTAL, sizeof(*all));
	size_t got = 0;
	while (got < TOTAL && read(recs[0], &all[got], sizeof(*all)) == (ssize_t)sizeof(*all))
		got++;
	close(recs[0]);
	bool writers_ok = true;
	for (int w = 0; w < WRITERS; w++) {
		int st;
		waitpid(writers[w], &st, 0);
		writers_ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	if (write(stop[1], "x", 1) != 1)
		diag("cannot stop the reader");
	int rst;
	waitpid(reader, &rst, 0);
	close(stop[1]);
	ok(writers_ok && got == TOTAL, "%d processes delivered %d messages each to one mailbox at once",
	   WRITERS, PER_WRITER);
	ok(WIFEXITED(rst) && WEXITSTATUS(rst) == 0,
	   "a reader meanwhile: no pending message, UIDNEXT and HIGHESTMODSEQ never down, "
	   "no new UID below a UIDNEXT seen");

	const char *err = NULL;
	if (db_init(pgtest_conninfo(), &err) < 0) {
		ok(false, "reconnect: %s", err);
		free(all);
		return;
	}
	/* The runner's work would settle leftovers; there must be none:
	 * every writer's last settle ran after its commit. */
	is_int(pending_rows(), 0, "nothing is left pending");
	char acc[32], mbx[32];
	snprintf(acc, sizeof(acc), "%" PRId64, account);
	snprintf(mbx, sizeof(mbx), "%" PRId64, inbox);
	const char *p[2] = { acc, mbx };
	is_int(query_int("SELECT count(*) FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2",
			 2, p), TOTAL, "every message is stored");
	is_int(query_int("SELECT count(DISTINCT prefix) FROM gn_messages WHERE account_id = $1 "
			 "AND mailbox_id = $2", 2, p), TOTAL, "each exactly once");
	ok(query_int("SELECT min(uid) FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2", 2, p) == 1 &&
	   query_int("SELECT max(uid) FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2", 2, p) == TOTAL &&
	   query_int("SELECT count(DISTINCT uid) FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2",
		     2, p) == TOTAL, "UIDs 1..%d without a duplicate or a gap", TOTAL);
	is_int(query_int("SELECT count(*) FROM (SELECT modseq, lag(modseq) OVER (ORDER BY uid) AS prev "
			 "FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2) x WHERE modseq < prev",
			 2, p), 0, "modseqs never go down in UID order");
	ok(counters_exact(), "counters equal a recount");
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_mailbox *mb = NULL;
	ok(gn_store_mailbox_get(pool, account, inbox, &mb, &err) == 1 && mb->uidnext == TOTAL + 1 &&
	   mb->messages == TOTAL, "the mailbox's status: UIDNEXT %d, %d messages", TOTAL + 1, TOTAL);

	/* Commit order: a message whose commit returned before another's
	 * transaction began has the lower UID. */
	uint32_t *uid_of = calloc(TOTAL, sizeof(*uid_of));
	for (size_t i = 0; i < got; i++) {
		char id[32];
		snprintf(id, sizeof(id), "%" PRId64, all[i].id);
		const char *pi[2] = { acc, id };
		uid_of[i] = (uint32_t)query_int("SELECT uid FROM gn_messages WHERE account_id = $1 AND id = $2",
						2, pi);
	}
	size_t pairs = 0, bad = 0;
	for (size_t a = 0; a < got; a++) {
		for (size_t b = 0; b < got; b++) {
			if (all[a].committed >= all[b].begin)
				continue;
			pairs++;
			if (uid_of[a] >= uid_of[b]) {
				if (bad++ < 5)
					diag("w%d-%d (UID %u) committed before w%d-%d (UID %u) began",
					     all[a].writer, all[a].seq, uid_of[a], all[b].writer, all[b].seq,
					     uid_of[b]);
			}
		}
	}
	ok(bad == 0 && pairs > 0, "UIDs follow commit order (%zu ordered pairs checked)", pairs);
	free(uid_of);
	gn_pool_free(&pool);
	free(all);
}

/* ---- a pending message nobody settled ---- */

static void test_left_pending(void)
{
	const char *err = NULL;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_mailbox *before = NULL, *mb = NULL;
	gn_store_mailbox_get(pool, account, inbox, &before, &err);

	/* A delivery that committed and died before its settle. */
	int64_t id = 0;
	ok(deliver_one("crashed-1", false, &id, &err) == 0 && id > 0, "a pending message, not settled");
	is_int(pending_rows(), 1, "it is pending");
	uint64_t psize = 0;
	int pr = gn_store_account_pending_size(account, &psize, &err);
	ok(pr == 0 && psize > 0, "the account's pending size counts it (%" PRIu64 " bytes)", psize);
	uint64_t count_pending = 0, count_settled = 0;
	ok(gn_store_account_message_count(account, &count_pending, &err) == 0, "the account's message count");
	is_int((long long)count_pending, (long long)before->messages + 1,
	       "the account's message count counts it");
	uint32_t uid = 99;
	is_int(gn_store_message_lookup_uid(account, id, &uid, &err), 0, "it has no UID yet");

	/* Inside a transaction a reader does not settle: it must not see it. */
	struct gn_store_message **list = NULL;
	size_t n = 0;
	gn_db_begin(&err);
	ok(gn_store_mailbox_get(pool, account, inbox, &mb, &err) == 1 &&
	   mb->messages == before->messages && mb->uidnext == before->uidnext,
	   "a reader (in a transaction) does not count it");
	ok(gn_store_message_list(pool, account, inbox, 0, 0, &list, &n, &err) == 0 &&
	   n == before->messages, "nor list it");
	uint32_t one = before->uidnext;
	uint32_t *exp = NULL;
	uint64_t ems = 0;
	ok(gn_store_message_expunge(pool, account, inbox, NULL, 0, &exp, &ems, &err) == 0,
	   "an expunge of all \\Deleted leaves it alone");
	ok(gn_store_message_get(pool, account, inbox, one, NULL, &err) == 0, "nor get it by the next UID");
	gn_db_commit(&err);
	is_int(pending_rows(), 1, "still pending");

	/* The runner job's work. */
	is_int(store_settle_all(&err), 1, "the runner's settle numbers it");
	is_int(pending_rows(), 0, "nothing pending");
	int ur = gn_store_message_lookup_uid(account, id, &uid, &err);
	ok(ur == 1 && uid == before->uidnext, "it got the next UID (%u)", uid);
	ok(gn_store_account_pending_size(account, &psize, &err) == 0 && psize == 0, "no pending size");
	ok(gn_store_account_message_count(account, &count_settled, &err) == 0, "the account's message count");
	is_int((long long)count_settled, (long long)count_pending, "settled, it is counted once");
	ok(counters_exact(), "counters exact");

	/* A reader outside a transaction settles first. */
	ok(deliver_one("crashed-2", false, &id, &err) == 0, "another pending message");
	ok(gn_store_mailbox_get(pool, account, inbox, &mb, &err) == 1 &&
	   mb->messages == before->messages + 2 && mb->uidnext == before->uidnext + 2 &&
	   mb->highestmodseq > before->highestmodseq, "a reader's status settles it first");
	ok(gn_store_message_lookup_uid(account, id, &uid, &err) == 1 && uid == before->uidnext + 1,
	   "with the UID after");
	ok(deliver_one("crashed-3", false, &id, &err) == 0 &&
	   gn_store_message_list(pool, account, inbox, mb->uidnext, 0, &list, &n, &err) == 0 &&
	   n == 1 && list[0]->uid == mb->uidnext, "a message list settles first too");
	ok(deliver_one("crashed-4", false, &id, &err) == 0 &&
	   gn_store_message_list(pool, account, inbox, 1, 0, &list, &n, &err) == 0 &&
	   n > 1 && list[n - 1]->uid == mb->uidnext + 1 && pending_rows() == 0,
	   "so does the list of a range that has messages already");
	{
		struct gn_store_mailbox **mbs = NULL;
		size_t nmb = 0, found = 0;
		ok(deliver_one("crashed-5", false, &id, &err) == 0 && pending_rows() == 1 &&
		   gn_store_mailbox_list(pool, account, &mbs, &nmb, &err) == 0, "a mailbox list");
		for (size_t i = 0; i < nmb; i++)
			if (mbs[i]->id == inbox && mbs[i]->messages == before->messages + 5 &&
			    mbs[i]->uidnext == before->uidnext + 5)
				found++;
		ok(found == 1 && pending_rows() == 0, "settles first too: the Inbox counts the new message");
	}
	ok(counters_exact(), "counters exact");

	/* A lone delivery is numbered inside its own transaction. */
	{
		struct gn_store_message_new m;
		memset(&m, 0, sizeof(m));
		m.size = sizeof(m);
		m.account_id = account;
		m.mailbox_id = inbox;
		int64_t lid = 0;
		uint32_t luid = 0;
		gn_db_begin(&err);
		int a1 = blob_of("Subject: lone\r\n\r\nlone\r\n", m.blob_hash, &err);
		int a2 = gn_store_message_add_pending(&m, &lid, &err);
		int a3 = gn_store_settle(account, false, &err);
		int a4 = gn_db_commit(&err);
		ok(a1 == 0 && a2 == 0 && a3 == 1 && a4 == 0 &&
		   gn_store_message_lookup_uid(account, lid, &luid, &err) == 1 && luid > 0,
		   "a lone delivery is numbered in its own transaction (%d %d %d %d)", a1, a2, a3, a4);
	}

	/* A settle inside a transaction while another holds the lock: it
	 * does not wait, and leaves the message pending. */
	PGconn *other = PQconnectdb(pgtest_conninfo());
	PQclear(PQexec(other, "BEGIN"));
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(1735292788, %" PRId64 ")", account);
	PQclear(PQexec(other, sql));
	gn_db_begin(&err);
	int r1 = deliver_one("locked", true, &id, &err);	/* joins our transaction */
	gn_db_commit(&err);
	is_int(r1, 0, "a delivery while another holds the settle lock does not wait");
	is_int(pending_rows(), 1, "its message stays pending");
	is_int(gn_store_settle(account, false, &err), 0, "a settle that does not wait leaves it");
	PQclear(PQexec(other, "COMMIT"));
	PQfinish(other);
	is_int(gn_store_settle(account, false, &err), 1, "once the lock is free it is settled");
	ok(counters_exact(), "counters exact");
	gn_pool_free(&pool);
}

int main(void)
{
	const char *err = NULL;

	log_init("test_settle");
	if (!pgtest_setup("settle")) {
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
	struct gn_store_account *b = NULL;
	struct gn_store_mailbox *bmb = NULL;
	if (gn_store_account_add(pool, "bob", "bob@example.com", NULL, &b, &err) < 0 ||
	    gn_store_mailbox_find(pool, b->id, "Inbox", &bmb, &err) != 1) {
		ok(false, "a second account: %s", err);
		return done_testing();
	}
	/* bob's Inbox first, then alice's, which the rest wants empty. */
	account = b->id;
	inbox = bmb->id;
	test_plans();
	account = a->id;
	inbox = mb->id;
	gn_pool_free(&pool);

	test_concurrent();
	test_left_pending();

	db_close();
	return done_testing();
}
