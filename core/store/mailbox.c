/*
 * core/store/mailbox.c: mailboxes, subscriptions and messages of the store
 * (gannet/store.h; the principles are at the top of store/store.c).
 *
 * Every change takes the account's next modseq first (store_next_modseq(),
 * the account row lock), then changes mailbox and message rows, and
 * applies the exact difference to the counters from what the statements
 * returned.  Flag changes and copies are one statement for any number of
 * messages; a flag change is one statement in all, modseq, counters and
 * NOTIFY included (FLAGS_SQL), so that alone it is one round trip.
 *
 * Deliveries: pending, then settled.  A delivery that took the account's
 * modseq and the mailbox's UID in its own transaction would hold those
 * rows locked through its COMMIT and its fsync, so all deliveries to one
 * account would queue on commit latency and PostgreSQL could never group
 * their commits.  Instead (as Dovecot assigns UIDs lazily for LMTP):
 *
 *   1. The delivery transaction inserts its messages as pending: rows of
 *      gn_messages with uid and modseq NULL (migration 005_settle), plus
 *      the blob reference.  It locks no account or mailbox row (the
 *      foreign key takes a key-share lock on the mailbox row, which
 *      conflicts only with deleting the mailbox).  Pending rows are in no
 *      IMAP state: every read selects by UID, so none returns them, and no
 *      counter includes them.  The blob's reference is taken at once, so
 *      a pending message keeps its body; deleting its mailbox or account
 *      releases it like any other message.
 *
 *   2. Settling (gn_store_settle(), per account): in a transaction holding
 *      the account's settle lock (a transaction-scoped advisory lock only
 *      settles take) and then the account row (the store's lock order), it
 *      takes the account's next modseq, reads every pending row its
 *      snapshot sees (committed deliveries), and per mailbox, in id order,
 *      gives them consecutive UIDs from UIDNEXT, the modseq, the counters
 *      and HIGHESTMODSEQ, adds their sizes to the account's total, and
 *      queues the NOTIFY; then commits.  One settle covers any number of
 *      deliveries.  Settles of an account are serialised by the lock up to
 *      their commit (PostgreSQL makes a commit visible before it releases
 *      its locks), and so are they with every other change (the account
 *      row): UIDs and modseqs become visible in increasing order, and a
 *      client that saw UIDNEXT or HIGHESTMODSEQ never sees a new message
 *      below them.  Rows settled together become visible together.
 *
 *   3. Who settles.  The delivering process, twice: inside its delivery
 *      transaction when the lock and the account row are free at once
 *      (gn_store_message_deliver(): never waiting; the message is then
 *      numbered as it is inserted, after whatever others left pending, and
 *      a lone delivery commits once with one row version, as before; under
 *      load the others go on pending), and after its commit without
 *      waiting for the lock.  A settle that finds the lock taken leaves its
 *      messages to the holder: every holder looks for pending rows again
 *      after its commit released the lock, and a failed try always comes
 *      before that release, so the look sees the rows (a bounded number of
 *      rounds: past it, the next delivery's settle or the runner takes
 *      them).  Readers of mailbox status and message lists settle first,
 *      waiting for the lock, so that what a delivery acknowledged is in
 *      their answer.  The runner job "store-settle" (store.c) settles every
 *      account with pending rows every few seconds: a process that died
 *      between its commit and its settle leaves nothing pending for long.
 *
 * Quota: the account's total_size counts settled messages; the pending
 * ones add gn_store_account_pending_size(), a sum over the few rows of the
 * partial index gn_messages_pending.  The number of messages likewise:
 * gn_store_account_message_count() sums the mailboxes' message counters
 * and counts the pending rows.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistr.h>

/* ---- mailboxes ---- */

const char *gn_store_special_use_name(enum gn_store_special_use use)
{
	switch (use) {
	case GN_STORE_SPECIAL_SENT: return "\\Sent";
	case GN_STORE_SPECIAL_DRAFTS: return "\\Drafts";
	case GN_STORE_SPECIAL_TRASH: return "\\Trash";
	case GN_STORE_SPECIAL_JUNK: return "\\Junk";
	case GN_STORE_SPECIAL_ARCHIVE: return "\\Archive";
	case GN_STORE_SPECIAL_NONE: break;
	}
	return NULL;
}

int gn_store_mailbox_name_check(struct gn_pool *pool, const char *name,
				const char **name_r, const char **error_r)
{
	if (name == NULL || *name == '\0') {
		*error_r = "invalid mailbox name \"\": empty";
		return -1;
	}
	size_t len = strlen(name);
	if (len > MAILBOX_NAME_MAX) {
		*error_r = store_errf("invalid mailbox name \"%.40s...\": longer than %d bytes", name, MAILBOX_NAME_MAX);
		return -1;
	}
	const char *prob = store_text_problem(name);
	if (prob == NULL && strpbrk(name, "%*") != NULL)
		prob = "\"%\" and \"*\" are IMAP LIST wildcards";
	if (prob == NULL) {
		unsigned levels = 1;
		if (name[0] == GN_STORE_MAILBOX_SEP || name[len - 1] == GN_STORE_MAILBOX_SEP)
			prob = "empty hierarchy level";
		for (const char *p = name; prob == NULL && *p != '\0'; p++) {
			if (*p != GN_STORE_MAILBOX_SEP)
				continue;
			if (p[1] == GN_STORE_MAILBOX_SEP)
				prob = "empty hierarchy level";
			else if (++levels > MAILBOX_LEVELS_MAX)
				prob = "too many hierarchy levels";
		}
	}
	if (prob != NULL) {
		*error_r = store_errf("invalid mailbox name \"%s\": %s", name, prob);
		return -1;
	}
	if (name_r != NULL) {
		/* RFC 9051 5.1: INBOX is case-insensitive; so is its use as the
		 * first level of a hierarchy, as with most servers. */
		if (strncasecmp(name, "inbox", 5) == 0 &&
		    (name[5] == '\0' || name[5] == GN_STORE_MAILBOX_SEP))
			*name_r = gn_pool_printf(pool, "Inbox%s", name + 5);
		else
			*name_r = gn_pool_strdup(pool, name);
	}
	return 0;
}

#define MAILBOX_COLS "m.account_id, m.id, m.name, m.special_use, m.uidvalidity, m.uidnext, " \
	"m.highestmodseq, m.messages, m.unseen, m.deleted, m.size, m.deleted_size, " \
	"EXISTS (SELECT 1 FROM gn_subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)"

static void mailbox_from_row(struct gn_pool *pool, const PGresult *res, int row,
			     struct gn_store_mailbox *m)
{
	m->account_id = store_col_i64(res, row, 0);
	m->id = store_col_i64(res, row, 1);
	m->name = store_col_str(pool, res, row, 2);
	m->special_use = (enum gn_store_special_use)store_col_i64(res, row, 3);
	m->uidvalidity = (uint32_t)store_col_i64(res, row, 4);
	m->uidnext = (uint32_t)store_col_i64(res, row, 5);
	m->highestmodseq = (uint64_t)store_col_i64(res, row, 6);
	m->messages = (uint64_t)store_col_i64(res, row, 7);
	m->unseen = (uint64_t)store_col_i64(res, row, 8);
	m->deleted = (uint64_t)store_col_i64(res, row, 9);
	m->size = (uint64_t)store_col_i64(res, row, 10);
	m->deleted_size = (uint64_t)store_col_i64(res, row, 11);
	m->subscribed = strcmp(PQgetvalue(res, row, 12), "t") == 0;
}

/* Whether the account ($1) has pending messages, as a last column after
 * MAILBOX_COLS: in the same snapshot as the rows. */
#define MAILBOX_PENDING ", EXISTS (SELECT 1 FROM gn_messages WHERE account_id = $1 AND uid IS NULL)"

static void settle_for_read(int64_t account_id);

/* Runs a query of mailboxes (MAILBOX_COLS MAILBOX_PENDING, $1 the
 * account).  Readers settle first (mailbox.c's header); whether anything
 * is pending comes with the rows, so that the usual case (nothing is)
 * takes one round trip: only when something is does it settle, waiting
 * for a settle under way, and run the query again.  No rows: no mailbox
 * whose counters a settle could change. */
static PGresult *mailbox_q(int64_t account_id, const char *sql, int n, const char *const *p,
			   const char **error_r)
{
	PGresult *res = store_q(sql, n, p, error_r);
	if (res == NULL || PQntuples(res) == 0)
		return res;
	if (strcmp(PQgetvalue(res, 0, PQnfields(res) - 1), "t") == 0 && !gn_db_in_transaction()) {
		PQclear(res);
		settle_for_read(account_id);
		res = store_q(sql, n, p, error_r);
	}
	return res;
}

static int mailbox_one(struct gn_pool *pool, int64_t account_id, const char *sql, int n,
		       const char *const *p, struct gn_store_mailbox **mailbox_r, const char **error_r)
{
	PGresult *res = mailbox_q(account_id, sql, n, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) >= 1;
	if (found && mailbox_r != NULL) {
		*mailbox_r = gn_pool_alloc(pool, sizeof(**mailbox_r));
		mailbox_from_row(pool, res, 0, *mailbox_r);
	}
	PQclear(res);
	return found;
}

/* Before a read of mailbox status or message lists: settles what is
 * pending, outside a caller's transaction.  A failure is only logged:
 * the read then reports what is settled (or its own error). */
static void settle_for_read(int64_t account_id)
{
	if (gn_db_in_transaction())
		return;
	const char *err = NULL;
	if (gn_store_settle(account_id, true, &err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=settle_failed account=%" PRId64 " error=%s",
		       account_id, gn_log_quote(0, err != NULL ? err : "?"));
}

int gn_store_mailbox_lookup_id(int64_t account_id, const char *name,
			       int64_t *id_r, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *norm, *err;
	int ret = 0;
	if (gn_store_mailbox_name_check(tmp, name, &norm, &err) == 0) {
		const char *p[2] = { store_i64s(tmp, account_id), norm };
		PGresult *res = store_q("SELECT id FROM gn_mailboxes WHERE account_id = $1 AND name = $2",
				  2, p, error_r);
		if (res == NULL) {
			ret = -1;
		} else {
			ret = PQntuples(res) == 1;
			if (ret && id_r != NULL)
				*id_r = store_col_i64(res, 0, 0);
			PQclear(res);
		}
	}
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_mailbox_find(struct gn_pool *pool, int64_t account_id,
			  const char *name, struct gn_store_mailbox **mailbox_r,
			  const char **error_r)
{
	const char *norm, *err;
	if (gn_store_mailbox_name_check(pool, name, &norm, &err) < 0)
		return 0;
	const char *p[2] = { store_i64s(pool, account_id), norm };
	return mailbox_one(pool, account_id, "SELECT " MAILBOX_COLS MAILBOX_PENDING " FROM gn_mailboxes m "
			   "WHERE m.account_id = $1 AND m.name = $2", 2, p, mailbox_r, error_r);
}

int gn_store_mailbox_get(struct gn_pool *pool, int64_t account_id,
			 int64_t mailbox_id, struct gn_store_mailbox **mailbox_r,
			 const char **error_r)
{
	const char *p[2] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id) };
	return mailbox_one(pool, account_id, "SELECT " MAILBOX_COLS MAILBOX_PENDING " FROM gn_mailboxes m "
			   "WHERE m.account_id = $1 AND m.id = $2", 2, p, mailbox_r, error_r);
}

int gn_store_mailbox_find_special(struct gn_pool *pool, int64_t account_id,
				  enum gn_store_special_use special_use,
				  struct gn_store_mailbox **mailbox_r,
				  const char **error_r)
{
	const char *p[2] = { store_i64s(pool, account_id), store_i64s(pool, (int64_t)special_use) };
	return mailbox_one(pool, account_id, "SELECT " MAILBOX_COLS MAILBOX_PENDING " FROM gn_mailboxes m "
			   "WHERE m.account_id = $1 AND m.special_use = $2 ORDER BY m.name LIMIT 1",
			   2, p, mailbox_r, error_r);
}

int gn_store_mailbox_list(struct gn_pool *pool, int64_t account_id,
			  struct gn_store_mailbox ***list_r, size_t *count_r,
			  const char **error_r)
{
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res = mailbox_q(account_id, "SELECT " MAILBOX_COLS MAILBOX_PENDING " FROM gn_mailboxes m "
				  "WHERE m.account_id = $1 ORDER BY m.name COLLATE \"C\"", 1, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	struct gn_store_mailbox **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i] = gn_pool_alloc(pool, sizeof(*list[i]));
		mailbox_from_row(pool, res, (int)i, list[i]);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

/* Creates one mailbox (name normalised, parents not considered), inside a
 * transaction.  1 created, 0 existed, -1 error. */
static int store_mailbox_create_one(struct gn_pool *pool, int64_t account_id, const char *name,
			      enum gn_store_special_use special_use, bool subscribe,
			      struct gn_store_mailbox **mailbox_r, const char **error_r)
{
	const char *acc = store_i64s(pool, account_id);
	const char *p1[2] = { acc, name };
	int r = mailbox_one(pool, account_id, "SELECT " MAILBOX_COLS MAILBOX_PENDING " FROM gn_mailboxes m "
			    "WHERE m.account_id = $1 AND m.name = $2", 2, p1, mailbox_r, error_r);
	if (r != 0)
		return r < 0 ? -1 : 0;
	const char *p[1] = { acc };
	PGresult *res = store_q("UPDATE gn_accounts SET modseq = modseq + 1, uidvalidity = uidvalidity + 1 "
			  "WHERE id = $1 RETURNING modseq, uidvalidity", 1, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("unknown account id %" PRId64, account_id);
		return -1;
	}
	uint64_t modseq = (uint64_t)store_col_i64(res, 0, 0);
	/* RFC 9051 2.3.1.1: a 32-bit non-zero value. */
	uint64_t uidvalidity = (uint64_t)store_col_i64(res, 0, 1) % UID_MAX + 1;
	PQclear(res);
	const char *p2[5] = { acc, name, store_i64s(pool, (int64_t)special_use),
			      store_u64s(pool, uidvalidity), store_u64s(pool, modseq) };
	res = store_q("INSERT INTO gn_mailboxes (account_id, name, special_use, uidvalidity, highestmodseq) "
		"VALUES ($1, $2, $3, $4, $5) RETURNING id", 5, p2, error_r);
	if (res == NULL)
		return -1;
	int64_t id = store_col_i64(res, 0, 0);
	PQclear(res);
	if (subscribe && store_q_count("INSERT INTO gn_subscriptions (account_id, name) VALUES ($1, $2) "
				 "ON CONFLICT DO NOTHING", 2, p1, error_r) < 0)
		return -1;
	if (store_notify(account_id, id, modseq, error_r) < 0)
		return -1;
	if (mailbox_r != NULL && gn_store_mailbox_get(pool, account_id, id, mailbox_r, error_r) < 0)
		return -1;
	return 1;
}

/* Creates name (checked) and its missing parents. */
int store_mailbox_create_tx(struct gn_pool *pool, int64_t account_id, const char *name,
			     enum gn_store_special_use special_use, bool subscribe,
			     struct gn_store_mailbox **mailbox_r, const char **error_r)
{
	const char *norm;
	if (gn_store_mailbox_name_check(pool, name, &norm, error_r) < 0)
		return -1;
	for (const char *s = strchr(norm, GN_STORE_MAILBOX_SEP); s != NULL;
	     s = strchr(s + 1, GN_STORE_MAILBOX_SEP)) {
		const char *parent = gn_pool_strndup(pool, norm, (size_t)(s - norm));
		if (store_mailbox_create_one(pool, account_id, parent, GN_STORE_SPECIAL_NONE, false,
				       NULL, error_r) < 0)
			return -1;
	}
	return store_mailbox_create_one(pool, account_id, norm, special_use, subscribe, mailbox_r, error_r);
}

int gn_store_mailbox_create(struct gn_pool *pool, int64_t account_id,
			    const char *name,
			    enum gn_store_special_use special_use,
			    struct gn_store_mailbox **mailbox_r,
			    const char **error_r)
{
	const char *norm;
	if (gn_store_mailbox_name_check(pool, name, &norm, error_r) < 0)
		return -1;
	struct store_tx tx;
	if (store_tx_begin(&tx, error_r) < 0)
		return -1;
	int r = store_mailbox_create_tx(pool, account_id, norm, special_use, false, mailbox_r, error_r);
	return store_tx_end(&tx, r, error_r);
}

int gn_store_mailbox_delete(int64_t account_id, const char *name,
			    const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *norm;
	int ret = -1;
	struct store_tx tx;
	if (gn_store_mailbox_name_check(tmp, name, &norm, error_r) < 0)
		goto out;
	if (strcmp(norm, "Inbox") == 0) {
		*error_r = "Inbox cannot be deleted";
		goto out;
	}
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	uint64_t modseq;
	int r = store_next_modseq(account_id, &modseq, error_r);
	if (r <= 0) {
		ret = r;
		goto end;
	}
	const char *p[2] = { store_i64s(tmp, account_id), norm };
	PGresult *res = store_q("SELECT id, size FROM gn_mailboxes WHERE account_id = $1 AND name = $2 FOR UPDATE",
			  2, p, error_r);
	if (res == NULL)
		goto end;
	if (PQntuples(res) == 0) {
		PQclear(res);
		ret = 0;
		goto end;
	}
	int64_t id = store_col_i64(res, 0, 0);
	const char *size = gn_pool_strdup(tmp, PQgetvalue(res, 0, 1));
	PQclear(res);
	int64_t *ids;
	size_t n;
	if (store_release_messages(tmp, account_id, id, &ids, &n, error_r) < 0)
		goto end;
	const char *pd[2] = { p[0], store_i64s(tmp, id) };
	const char *ps[2] = { p[0], size };
	if (store_q_count("DELETE FROM gn_mailboxes WHERE account_id = $1 AND id = $2", 2, pd, error_r) < 0 ||
	    store_q_count("UPDATE gn_accounts SET total_size = total_size - $2 WHERE id = $1", 2, ps, error_r) < 0 ||
	    store_blobs_drop_unused(tmp, ids, n, error_r) < 0 ||
	    store_notify(account_id, id, modseq, error_r) < 0)
		goto end;
	ret = 1;
end:
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

static int store_message_copy_tx(struct gn_pool *pool, int64_t account_id, int64_t src,
			   const uint32_t *uids, size_t n_uids, int64_t dst, bool move,
			   uint64_t modseq, uint32_t **src_uids_r, uint32_t **dst_uids_r,
			   const char **error_r);

/* RFC 9051 6.3.6: renaming INBOX moves its messages to a new mailbox and
 * leaves INBOX empty; its children stay.  Inside the transaction: 0 or
 * -1. */
static int rename_inbox(struct gn_pool *tmp, int64_t account_id, const struct gn_store_mailbox *inbox,
			const char *to, uint64_t modseq, const char **error_r)
{
	struct gn_store_mailbox *nm;
	if (store_mailbox_create_tx(tmp, account_id, to, GN_STORE_SPECIAL_NONE, false, &nm, error_r) < 0)
		return -1;
	return store_message_copy_tx(tmp, account_id, inbox->id, NULL, 0, nm->id, true, modseq,
				     NULL, NULL, error_r) < 0 ? -1 : 0;
}

/* Renames from and its children to to (its missing parents created),
 * with their subscriptions.  Inside the transaction: 0 or -1. */
static int rename_tree(struct gn_pool *tmp, int64_t account_id, const char *from, const char *to,
		       uint64_t modseq, const char **error_r)
{
	/* Parents of the new name first (they are not inside the old one). */
	for (const char *s = strchr(to, GN_STORE_MAILBOX_SEP); s != NULL;
	     s = strchr(s + 1, GN_STORE_MAILBOX_SEP)) {
		const char *parent = gn_pool_strndup(tmp, to, (size_t)(s - to));
		if (store_mailbox_create_one(tmp, account_id, parent, GN_STORE_SPECIAL_NONE, false, NULL,
					     error_r) < 0)
			return -1;
	}
	const char *p[4] = { store_i64s(tmp, account_id), from, to, store_u64s(tmp, modseq) };
	/* Children move with it: "from/x" becomes "to/x".  A child whose new
	 * name exists violates the unique constraint: that error is ours. */
	PGresult *res = store_q("UPDATE gn_mailboxes SET name = $3 || substr(name, length($2) + 1), "
				"highestmodseq = $4 WHERE account_id = $1 AND (name = $2 OR "
				"left(name, length($2) + 1) = $2 || '/') RETURNING id", 4, p, error_r);
	if (res == NULL) {
		if (strcmp(gn_db_error_sqlstate(), "23505") == 0)
			*error_r = store_errf("cannot rename mailbox %s to %s: a child's new name exists", from, to);
		return -1;
	}
	size_t n = (size_t)PQntuples(res);
	int64_t *ids = gn_pool_alloc(tmp, (n + 1) * sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = store_col_i64(res, (int)i, 0);
	PQclear(res);
	/* Subscriptions follow the mailboxes (a deliberate choice: RFC 9051
	 * leaves it open, and users expect a renamed folder to stay shown). */
	if (store_q_count("UPDATE gn_subscriptions SET name = $3 || substr(name, length($2) + 1) "
			  "WHERE account_id = $1 AND (name = $2 OR left(name, length($2) + 1) = $2 || '/') "
			  "AND NOT EXISTS (SELECT 1 FROM gn_subscriptions o WHERE "
			  "o.account_id = $1 AND o.name = $3 || substr(gn_subscriptions.name, length($2) + 1))",
			  3, p, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (store_notify(account_id, ids[i], modseq, error_r) < 0)
			return -1;
	}
	return 0;
}

int gn_store_mailbox_rename(int64_t account_id, const char *old_name,
			    const char *new_name, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *from, *to;
	int ret = -1;
	struct store_tx tx;
	if (gn_store_mailbox_name_check(tmp, old_name, &from, error_r) < 0 ||
	    gn_store_mailbox_name_check(tmp, new_name, &to, error_r) < 0)
		goto out;
	size_t flen = strlen(from);
	if (strncmp(to, from, flen) == 0 && (to[flen] == '\0' || to[flen] == GN_STORE_MAILBOX_SEP)) {
		*error_r = store_errf("cannot rename mailbox %s to %s, inside itself", from, to);
		goto out;
	}
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	uint64_t modseq;
	int r = store_next_modseq(account_id, &modseq, error_r);
	if (r <= 0) {
		ret = r;
		goto end;
	}
	struct gn_store_mailbox *old, *exists;
	r = gn_store_mailbox_find(tmp, account_id, from, &old, error_r);
	if (r <= 0) {
		ret = r;
		goto end;
	}
	r = gn_store_mailbox_find(tmp, account_id, to, &exists, error_r);
	if (r < 0)
		goto end;
	if (r > 0) {
		*error_r = store_errf("mailbox exists: %s", to);
		goto end;
	}
	if (strcmp(from, "Inbox") == 0 ? rename_inbox(tmp, account_id, old, to, modseq, error_r) < 0
					 : rename_tree(tmp, account_id, from, to, modseq, error_r) < 0)
		goto end;
	ret = 1;
end:
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_mailbox_set_special_use(int64_t account_id, const char *name,
				     enum gn_store_special_use special_use,
				     const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *norm;
	int ret = -1;
	if (special_use > GN_STORE_SPECIAL_ARCHIVE) {
		*error_r = "invalid special use";
		goto out;
	}
	if (gn_store_mailbox_name_check(tmp, name, &norm, error_r) < 0)
		goto out;
	const char *p[3] = { store_i64s(tmp, account_id), norm, store_i64s(tmp, (int64_t)special_use) };
	int64_t c = store_q_count("UPDATE gn_mailboxes SET special_use = $3 WHERE account_id = $1 AND name = $2",
			    3, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_subscribe(int64_t account_id, const char *name,
		       const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *norm;
	int ret = -1;
	if (gn_store_mailbox_name_check(tmp, name, &norm, error_r) == 0) {
		const char *p[2] = { store_i64s(tmp, account_id), norm };
		int64_t c = store_q_count("INSERT INTO gn_subscriptions (account_id, name) VALUES ($1, $2) "
				    "ON CONFLICT DO NOTHING", 2, p, error_r);
		ret = c < 0 ? -1 : c > 0 ? 1 : 0;
	}
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_unsubscribe(int64_t account_id, const char *name,
			 const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *norm;
	int ret = -1;
	if (gn_store_mailbox_name_check(tmp, name, &norm, error_r) == 0) {
		const char *p[2] = { store_i64s(tmp, account_id), norm };
		int64_t c = store_q_count("DELETE FROM gn_subscriptions WHERE account_id = $1 AND name = $2",
				    2, p, error_r);
		ret = c < 0 ? -1 : c > 0 ? 1 : 0;
	}
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_subscription_list(struct gn_pool *pool, int64_t account_id,
			       const char ***names_r, size_t *count_r,
			       const char **error_r)
{
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res = store_q("SELECT name FROM gn_subscriptions WHERE account_id = $1 "
			  "ORDER BY name COLLATE \"C\"", 1, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	const char **names = gn_pool_alloc(pool, (n + 1) * sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = store_col_str(pool, res, (int)i, 0);
	PQclear(res);
	*names_r = names;
	*count_r = n;
	return 0;
}

/* ---- messages ---- */

/* Text for a text column: valid UTF-8 without NUL (a byte that is not
 * becomes U+FFFD), so that an odd header never fails a delivery. */
static const char *utf8_clean(struct gn_pool *pool, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t len = strlen(s);
	if (u8_check((const uint8_t *)s, len) == NULL)
		return s;
	struct gn_buf *b = gn_buf_new(0);
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	while (p < end) {
		ucs4_t c;
		int n = u8_mbtoucr(&c, p, (size_t)(end - p));
		if (n < 0) {
			gn_buf_append_str(b, "\xef\xbf\xbd");
			p++;
		} else {
			gn_buf_append(b, p, (size_t)n);
			p += n;
		}
	}
	const char *r = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return r;
}

/* jsonb refuses \u0000 (and invalid UTF-8): replace the escape with
 * \ufffd.  An escape is a backslash preceded by an even number of them. */
static char *json_clean(struct gn_pool *pool, const char *json)
{
	char *s = (char *)utf8_clean(pool, json);
	if (s == json)
		s = gn_pool_strdup(pool, json);
	size_t run = 0;
	for (char *p = s; *p != '\0'; p++) {
		if (*p == '\\') {
			if (run % 2 == 0 && strncmp(p, "\\u0000", 6) == 0)
				memcpy(p, "\\ufffd", 6);
			run++;
		} else {
			run = 0;
		}
	}
	return s;
}

int store_mime_json(struct gn_pool *pool, const struct gn_mime_message *mime,
		    const char **json_r, const char **error_r)
{
	char *j = gn_mime_to_json_string(mime);
	size_t len = strlen(j);
	if (len > STORE_MIME_JSON_MAX) {
		gn_free(j);
		*error_r = store_errf("message structure too complex: %zu bytes of MIME structure, "
				      "the limit is %d", len, STORE_MIME_JSON_MAX);
		return -1;
	}
	*json_r = json_clean(pool, j);
	gn_free(j);
	return 0;
}

static bool keyword_valid(const char *k)
{
	size_t len = strlen(k);
	if (len == 0 || len > KEYWORD_MAX)
		return false;
	/* RFC 9051 9: flag-keyword = atom; atom-specials and "\" excluded. */
	for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return false;
	}
	return true;
}

/* Checks keywords and drops repeats (ASCII case-insensitively). */
static int keywords_prepare(struct gn_pool *pool, const char *const *kw, size_t n,
			    const char ***out_r, size_t *n_r, const char **error_r)
{
	const char **out = gn_pool_alloc(pool, (n + 1) * sizeof(*out));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (!keyword_valid(kw[i])) {
			*error_r = store_errf("invalid keyword \"%s\"", kw[i]);
			return -1;
		}
		bool dup = false;
		for (size_t j = 0; j < m && !dup; j++)
			dup = strcasecmp(out[j], kw[i]) == 0;
		if (!dup)
			out[m++] = kw[i];
	}
	*out_r = out;
	*n_r = m;
	return 0;
}

#define MESSAGE_COLS "m.account_id, m.mailbox_id, m.id, m.uid, m.modseq, m.size, m.flags, " \
	"array_to_json(m.keywords)::text, extract(epoch FROM m.internal_date)::bigint, " \
	"encode(b.hash, 'hex'), length(m.prefix), m.subject, m.from_field, m.message_id, " \
	"extract(epoch FROM m.sent_date)::bigint, floor(extract(epoch FROM m.save_date))::bigint"

static void message_from_row(struct gn_pool *pool, const PGresult *res, int row,
			     struct gn_store_message *m, bool with_mime)
{
	memset(m, 0, sizeof(*m));
	m->account_id = store_col_i64(res, row, 0);
	m->mailbox_id = store_col_i64(res, row, 1);
	m->id = store_col_i64(res, row, 2);
	m->uid = (uint32_t)store_col_i64(res, row, 3);
	m->modseq = (uint64_t)store_col_i64(res, row, 4);
	m->size = (uint64_t)store_col_i64(res, row, 5);
	m->flags = (unsigned)store_col_i64(res, row, 6);
	store_json_strings(pool, PQgetvalue(res, row, 7), &m->keywords, &m->n_keywords);
	m->internal_date = (time_t)store_col_i64(res, row, 8);
	store_hash_from_hex(PQgetvalue(res, row, 9), m->blob_hash);
	m->prefix_len = (uint64_t)store_col_i64(res, row, 10);
	m->subject = store_col_str(pool, res, row, 11);
	m->from = store_col_str(pool, res, row, 12);
	m->message_id = store_col_str(pool, res, row, 13);
	m->date = (time_t)store_col_i64(res, row, 14);
	/* Truncated (floor) to the second, never rounded into the future. */
	m->save_date = (time_t)store_col_i64(res, row, 15);
	if (with_mime)
		m->mime_json = store_col_str(pool, res, row, 16);
}

static int settle_locked(struct gn_pool *pool, int64_t account_id, bool in_caller_tx,
			 const char **error_r);

enum add_mode {
	ADD_NOW,	/* numbered at once, waiting for the account row */
	ADD_PENDING,	/* pending, left to a settle */
	ADD_DELIVER,	/* numbered at once if nobody settles, else pending */
};

/* ADD_DELIVER: tries the account's settle lock and row without waiting.
 * Returns 1 when both are held (after settling what others left pending,
 * so that this message comes after them), 0 when not, -1 error. */
static int deliver_try_lock(struct gn_pool *pool, int64_t account_id, const char **error_r)
{
	const char *p[2] = { "1735292788", store_i64s(pool, account_id) };
	PGresult *res = store_q("SELECT CASE WHEN pg_try_advisory_xact_lock($1::int, "
			  "($2::bigint % 2147483647)::int) THEN (SELECT count(*) FROM (SELECT 1 "
			  "FROM gn_accounts WHERE id = $2 FOR NO KEY UPDATE SKIP LOCKED) x) ELSE 0 END, "
			  "EXISTS (SELECT 1 FROM gn_messages WHERE account_id = $2 AND uid IS NULL)",
			  2, p, error_r);
	if (res == NULL)
		return -1;
	bool got = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	bool others = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	if (!got)
		return 0;
	if (others && settle_locked(pool, account_id, true, error_r) < 0)
		return -1;
	return 1;
}

/* What a message row carries besides its numbers, prepared before the
 * transaction: checked keywords and the envelope fields. */
struct add_fields {
	const char **kw;
	size_t n_kw;
	const char *subject, *from, *msgid, *date;
	const struct gn_store_message_auth *auth;	/* checked copy, or NULL */
};

/* The first struct gn_store_message_auth (ABI 1.1) ends with remote_ip. */
#define STORE_AUTH_SIZE_1_1 \
	(offsetof(struct gn_store_message_auth, remote_ip) + \
	 sizeof(((struct gn_store_message_auth *)0)->remote_ip))

/* A value of the check results: a domain or an address is at most 255
 * octets, a result name a short token; printable ASCII only (they come
 * from a module, but from what a peer sent through it). */
static bool auth_value_ok(const char *v, size_t max)
{
	if (v == NULL)
		return true;
	size_t n = strlen(v);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	return true;
}

/* Copies the caller's results by their own size, checked; 0 or -1. */
static int auth_prepare(struct gn_pool *tmp, const struct gn_store_message_auth *in,
			const struct gn_store_message_auth **out_r, const char **error_r)
{
	*out_r = NULL;
	if (in == NULL)
		return 0;
	if (in->size < STORE_AUTH_SIZE_1_1) {
		*error_r = store_errf("struct gn_store_message_auth: size %zu, at least %zu expected",
				      in->size, (size_t)STORE_AUTH_SIZE_1_1);
		return -1;
	}
	struct gn_store_message_auth *a = gn_pool_alloc(tmp, sizeof(*a));
	memset(a, 0, sizeof(*a));
	memcpy(a, in, in->size < sizeof(*a) ? in->size : sizeof(*a));
	a->size = sizeof(*a);
	if (a->n_dkim_domains > GN_STORE_MAX_AUTH_DKIM_DOMAINS)
		a->n_dkim_domains = GN_STORE_MAX_AUTH_DKIM_DOMAINS;
	bool ok = auth_value_ok(a->mail_from_validation, 32) &&
		auth_value_ok(a->msg_from_validation, 32) &&
		auth_value_ok(a->msg_from_domain, 255) && auth_value_ok(a->remote_ip, 64) &&
		(a->n_dkim_domains == 0 || a->dkim_domains != NULL);
	for (size_t i = 0; ok && i < a->n_dkim_domains; i++)
		ok = a->dkim_domains[i] != NULL && auth_value_ok(a->dkim_domains[i], 255);
	if (!ok) {
		*error_r = "struct gn_store_message_auth: a value is empty, too long or not "
			"printable ASCII";
		return -1;
	}
	*out_r = a;
	return 0;
}

static int add_fields_prepare(struct gn_pool *tmp, const struct gn_store_message_new *m,
			      struct add_fields *f, const char **error_r)
{
	memset(f, 0, sizeof(*f));
	if ((m->flags & ~GN_STORE_FLAGS_ALL) != 0) {
		*error_r = store_errf("invalid flags 0x%x", m->flags);
		return -1;
	}
	if (keywords_prepare(tmp, m->keywords, m->n_keywords, &f->kw, &f->n_kw, error_r) < 0)
		return -1;
	if (auth_prepare(tmp, m->auth, &f->auth, error_r) < 0)
		return -1;
	if (m->mime != NULL) {
		f->subject = utf8_clean(tmp, gn_mime_message_field(m->mime, GN_MIME_SUBJECT));
		f->from = utf8_clean(tmp, gn_mime_message_field(m->mime, GN_MIME_FROM));
		f->msgid = utf8_clean(tmp, gn_mime_message_field_raw(m->mime, GN_MIME_MESSAGE_ID));
		time_t t;
		if (gn_mime_message_date(m->mime, &t) == 1)
			f->date = gn_pool_printf(tmp, "%lld", (long long)t);
	}
	return 0;
}

/* Takes a reference to the message's blob: *blob_id_r, and *size_r the
 * message's size (prefix + body).  A blob stored without its structure
 * (gn_store_blob_finish()) gets the one of m->mime.  0 or -1. */
static int add_blob_ref(struct gn_pool *tmp, const struct gn_store_message_new *m,
			int64_t *blob_id_r, uint64_t *size_r, const char **error_r)
{
	const char *pb[1] = { store_hash_param(tmp, m->blob_hash) };
	PGresult *res = store_q("UPDATE gn_blobs SET refcount = refcount + 1 WHERE hash = $1 "
				"RETURNING id, size, mime IS NULL", 1, pb, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("no such blob: %s", gn_store_hash_hex(tmp, m->blob_hash));
		return -1;
	}
	*blob_id_r = store_col_i64(res, 0, 0);
	*size_r = (uint64_t)store_col_i64(res, 0, 1) + m->prefix_len;
	bool no_mime = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	PQclear(res);
	if (!no_mime || m->mime == NULL)
		return 0;
	const char *json;
	if (store_mime_json(tmp, m->mime, &json, error_r) < 0)
		return -1;
	const char *p[2] = { store_i64s(tmp, *blob_id_r), json };
	return store_q_count("UPDATE gn_blobs SET mime = $2::jsonb WHERE id = $1 AND mime IS NULL",
			     2, p, error_r) < 0 ? -1 : 0;
}

/* Numbers a message in its mailbox: the next UID, the counters, the
 * account's size.  *uid_r; 0 or -1. */
static int add_number(struct gn_pool *tmp, const struct gn_store_message_new *m, uint64_t size,
		      uint64_t modseq, uint32_t *uid_r, const char **error_r)
{
	bool seen = (m->flags & GN_STORE_SEEN) != 0, del = (m->flags & GN_STORE_DELETED) != 0;
	const char *pm[7] = { store_i64s(tmp, m->account_id), store_i64s(tmp, m->mailbox_id),
			      store_u64s(tmp, size), store_u64s(tmp, modseq), seen ? "0" : "1",
			      del ? "1" : "0", del ? store_u64s(tmp, size) : "0" };
	PGresult *res = store_q("WITH a AS (UPDATE gn_accounts SET total_size = total_size + $3 WHERE id = $1) "
				"UPDATE gn_mailboxes SET uidnext = uidnext + 1, highestmodseq = $4, "
				"messages = messages + 1, unseen = unseen + $5, deleted = deleted + $6, "
				"size = size + $3, deleted_size = deleted_size + $7 "
				"WHERE account_id = $1 AND id = $2 AND uidnext < 4294967295 RETURNING uidnext - 1",
				7, pm, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("no such mailbox (or no UIDs left in it): %" PRId64, m->mailbox_id);
		return -1;
	}
	*uid_r = (uint32_t)store_col_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

/* The row itself (uid 0: pending).  The NOTIFY of a numbered message
 * rides on the insert (one round trip less); a pending message changes
 * nothing a client can see: no NOTIFY.  *id_r, *date_r (the internal
 * date as stored), *saved_r (the save date, the column's default); 0 or
 * -1. */
static int add_insert(struct gn_pool *tmp, const struct gn_store_message_new *m,
		      const struct add_fields *f, int64_t blob_id, uint64_t size, uint32_t uid,
		      uint64_t modseq, int64_t *id_r, time_t *date_r, time_t *saved_r,
		      const char **error_r)
{
	bool pending = uid == 0;
	const char *payload = pending ? NULL : gn_pool_printf(tmp, "%" PRId64 " %" PRId64 " %" PRIu64,
							     m->account_id, m->mailbox_id, modseq);
	const struct gn_store_message_auth *a = f->auth;
	const char *v[23] = {
		store_i64s(tmp, m->account_id), store_i64s(tmp, m->mailbox_id),
		pending ? NULL : store_u64s(tmp, uid), pending ? NULL : store_u64s(tmp, modseq),
		store_i64s(tmp, blob_id), m->prefix != NULL ? m->prefix : "", store_u64s(tmp, size),
		store_i64s(tmp, (int64_t)m->flags), store_text_array(tmp, f->kw, f->n_kw),
		m->internal_date != 0 ? gn_pool_printf(tmp, "%lld", (long long)m->internal_date) : NULL,
		f->subject, f->from, f->msgid, f->date, payload,
		a != NULL ? "t" : "f",
		a != NULL ? (a->mail_from_validated ? "t" : "f") : NULL,
		a != NULL ? a->mail_from_validation : NULL,
		a != NULL ? a->msg_from_domain : NULL,
		a != NULL ? (a->msg_from_validated ? "t" : "f") : NULL,
		a != NULL ? a->msg_from_validation : NULL,
		a != NULL ? store_text_array(tmp, a->dkim_domains, a->n_dkim_domains) : NULL,
		a != NULL ? a->remote_ip : NULL,
	};
	int lens[23] = { 0 };
	int fmts[23] = { 0 };
	lens[5] = (int)m->prefix_len;
	fmts[5] = 1;
	PGresult *res = db_query_params("INSERT INTO gn_messages (account_id, mailbox_id, uid, modseq, "
					"blob_id, prefix, size, flags, keywords, internal_date, subject, "
					"from_field, message_id, sent_date, auth_checked, "
					"mail_from_validated, mail_from_validation, msg_from_domain, "
					"msg_from_validated, msg_from_validation, dkim_domains, remote_ip) "
					"VALUES ($1, $2, $3, $4, $5, $6, "
					"$7, $8, $9, COALESCE(to_timestamp($10::double precision), now()), "
					"$11, $12, $13, to_timestamp($14::double precision), $16, $17, $18, "
					"$19, $20, $21, $22::text[], $23) RETURNING id, "
					"extract(epoch FROM internal_date)::bigint, "
					"CASE WHEN $15::text IS NULL THEN NULL ELSE "
					"pg_notify('" GN_STORE_NOTIFY_CHANNEL "', $15) END, "
					"floor(extract(epoch FROM save_date))::bigint",
					23, v, lens, fmts, 0, error_r);
	if (res == NULL) {
		if (strcmp(gn_db_error_sqlstate(), "23503") == 0)
			*error_r = store_errf("no such mailbox: %" PRId64, m->mailbox_id);
		return -1;
	}
	*id_r = store_col_i64(res, 0, 0);
	*date_r = (time_t)store_col_i64(res, 0, 1);
	*saved_r = (time_t)store_col_i64(res, 0, 3);
	PQclear(res);
	return 0;
}

/* The message as gn_store_message_add() returns it, from pool. */
static struct gn_store_message *add_result(struct gn_pool *pool, const struct gn_store_message_new *m,
					   const struct add_fields *f, int64_t id, uint32_t uid,
					   uint64_t modseq, uint64_t size, time_t internal_date,
					   time_t save_date)
{
	struct gn_store_message *msg = gn_pool_alloc(pool, sizeof(*msg));
	msg->account_id = m->account_id;
	msg->mailbox_id = m->mailbox_id;
	msg->id = id;
	msg->uid = uid;
	msg->modseq = modseq;
	msg->size = size;
	msg->flags = m->flags;
	msg->keywords = gn_pool_alloc(pool, (f->n_kw + 1) * sizeof(*msg->keywords));
	for (size_t i = 0; i < f->n_kw; i++)
		msg->keywords[i] = gn_pool_strdup(pool, f->kw[i]);
	msg->n_keywords = f->n_kw;
	msg->internal_date = internal_date;
	msg->save_date = save_date;
	memcpy(msg->blob_hash, m->blob_hash, GN_STORE_HASH_SIZE);
	msg->prefix_len = m->prefix_len;
	msg->subject = f->subject ? gn_pool_strdup(pool, f->subject) : NULL;
	msg->from = f->from ? gn_pool_strdup(pool, f->from) : NULL;
	msg->message_id = f->msgid ? gn_pool_strdup(pool, f->msgid) : NULL;
	msg->date = f->date ? (time_t)strtoll(f->date, NULL, 10) : 0;
	if (m->mime != NULL) {
		const char *json, *err;
		if (store_mime_json(pool, m->mime, &json, &err) == 0)
			msg->mime_json = json;
	}
	return msg;
}

/* Adds a message: numbered at once (the account's next modseq and the
 * mailbox's next UID, counters, NOTIFY), or pending (uid and modseq NULL,
 * nothing else touched but the blob's reference), as mode says. */
static int message_add(struct gn_pool *pool, const struct gn_store_message_new *m,
		       enum add_mode mode, struct gn_store_message **msg_r, int64_t *id_r,
		       uint32_t *uid_r, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	struct add_fields f;
	struct store_tx tx;
	bool pending = mode == ADD_PENDING;
	uint64_t modseq = 0, size = 0;
	int64_t blob_id = 0, id = 0;
	uint32_t uid = 0;
	time_t date = 0, saved = 0;
	int ret = -1;
	if (add_fields_prepare(tmp, m, &f, error_r) < 0)
		goto out;
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	if (mode == ADD_DELIVER) {
		int r = deliver_try_lock(tmp, m->account_id, error_r);
		if (r < 0)
			goto end;
		pending = r == 0;
	}
	if (!pending) {
		int r = store_next_modseq(m->account_id, &modseq, error_r);
		if (r <= 0) {
			if (r == 0)
				*error_r = store_errf("unknown account id %" PRId64, m->account_id);
			goto end;
		}
	}
	if (add_blob_ref(tmp, m, &blob_id, &size, error_r) < 0 ||
	    (!pending && add_number(tmp, m, size, modseq, &uid, error_r) < 0) ||
	    add_insert(tmp, m, &f, blob_id, size, uid, modseq, &id, &date, &saved, error_r) < 0)
		goto end;
	if (id_r != NULL)
		*id_r = id;
	if (uid_r != NULL)
		*uid_r = uid;
	if (msg_r != NULL)
		*msg_r = add_result(pool, m, &f, id, uid, modseq, size, date, saved);
	ret = 0;
end:
	ret = store_tx_end(&tx, ret, error_r);
	if (mode == ADD_DELIVER && tx.own) {
		/* Our own transaction held the settle lock, or left the
		 * message pending: settle now, as a caller would. */
		const char *err = NULL;
		if (gn_store_settle(m->account_id, false, &err) < 0)
			gn_log(GN_LOG_WARN, "core", "event=settle_failed account=%" PRId64 " error=%s",
			       m->account_id, gn_log_quote(0, err != NULL ? err : "?"));
		if (ret == 0 && uid_r != NULL && *uid_r == 0 && id_r != NULL)
			gn_store_message_lookup_uid(m->account_id, *id_r, uid_r, &err);
	}
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_message_add(struct gn_pool *pool,
			 const struct gn_store_message_new *m,
			 struct gn_store_message **msg_r, const char **error_r)
{
	struct gn_store_message_new copy;
	if (store_message_new_copy(m, &copy, error_r) < 0)
		return -1;
	return message_add(pool, &copy, ADD_NOW, msg_r, NULL, NULL, error_r);
}

int gn_store_message_add_pending(const struct gn_store_message_new *m,
				 int64_t *id_r, const char **error_r)
{
	struct gn_store_message_new copy;
	if (store_message_new_copy(m, &copy, error_r) < 0)
		return -1;
	return message_add(NULL, &copy, ADD_PENDING, NULL, id_r, NULL, error_r);
}

int gn_store_message_deliver(const struct gn_store_message_new *m,
			     int64_t *id_r, uint32_t *uid_r, const char **error_r)
{
	int64_t id = 0;
	uint32_t uid = 0;
	struct gn_store_message_new copy;
	if (store_message_new_copy(m, &copy, error_r) < 0)
		return -1;
	int r = message_add(NULL, &copy, ADD_DELIVER, NULL, &id, &uid, error_r);
	if (r == 0 && id_r != NULL)
		*id_r = id;
	if (r == 0 && uid_r != NULL)
		*uid_r = uid;
	return r;
}

int gn_store_message_auth_get(struct gn_pool *pool, int64_t account_id, int64_t message_id,
			      struct gn_store_message_auth *auth_r, const char **error_r)
{
	if (auth_r == NULL || auth_r->size < STORE_AUTH_SIZE_1_1) {
		*error_r = store_errf("struct gn_store_message_auth: size %zu, at least %zu expected",
				      auth_r != NULL ? auth_r->size : 0, (size_t)STORE_AUTH_SIZE_1_1);
		return -1;
	}
	const char *p[2] = { store_i64s(pool, account_id), store_i64s(pool, message_id) };
	PGresult *res = store_q("SELECT auth_checked, mail_from_validated IS TRUE, mail_from_validation, "
				"msg_from_domain, msg_from_validated IS TRUE, msg_from_validation, "
				"array_to_json(dkim_domains)::text, remote_ip FROM gn_messages "
				"WHERE account_id = $1 AND id = $2", 2, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 0;
	}
	struct gn_store_message_auth a;
	memset(&a, 0, sizeof(a));
	a.size = auth_r->size < sizeof(a) ? auth_r->size : sizeof(a);
	a.checked = PQgetvalue(res, 0, 0)[0] == 't';
	if (a.checked) {
		const char **dk = NULL;
		a.mail_from_validated = PQgetvalue(res, 0, 1)[0] == 't';
		a.mail_from_validation = store_col_str(pool, res, 0, 2);
		a.msg_from_domain = store_col_str(pool, res, 0, 3);
		a.msg_from_validated = PQgetvalue(res, 0, 4)[0] == 't';
		a.msg_from_validation = store_col_str(pool, res, 0, 5);
		store_json_strings(pool, store_col_str(pool, res, 0, 6), &dk, &a.n_dkim_domains);
		a.dkim_domains = dk;
		a.remote_ip = store_col_str(pool, res, 0, 7);
	}
	PQclear(res);
	memcpy(auth_r, &a, a.size);
	return 1;
}

int gn_store_message_get(struct gn_pool *pool, int64_t account_id,
			 int64_t mailbox_id, uint32_t uid,
			 struct gn_store_message **msg_r, const char **error_r)
{
	const char *p[3] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id), store_u64s(pool, uid) };
	PGresult *res = store_q("SELECT " MESSAGE_COLS ", b.mime::text FROM gn_messages m "
			  "JOIN gn_blobs b ON b.id = m.blob_id "
			  "WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid = $3", 3, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found && msg_r != NULL) {
		*msg_r = gn_pool_alloc(pool, sizeof(**msg_r));
		message_from_row(pool, res, 0, *msg_r, true);
	}
	PQclear(res);
	return found;
}

/* The messages of a range with, as their last column, whether the
 * account has pending messages (an InitPlan: computed once, in the same
 * snapshot).  LIST_OR_EMPTY_SQL says it also for an empty range, on a
 * row of NULLs (a LEFT JOIN, which costs a sort of the rows: only for a
 * range that LIST_SQL found empty). */
#define LIST_FROM " FROM gn_messages m JOIN gn_blobs b ON b.id = m.blob_id WHERE m.account_id = $1 " \
	"AND m.mailbox_id = $2 AND m.uid >= $3 AND ($4::bigint = 0 OR m.uid <= $4)"
#define LIST_PENDING "EXISTS (SELECT 1 FROM gn_messages WHERE account_id = $1 AND uid IS NULL)"
#define LIST_SQL "SELECT " MESSAGE_COLS ", " LIST_PENDING LIST_FROM " ORDER BY m.uid"
#define LIST_OR_EMPTY_SQL "SELECT l.*, p.pending FROM (SELECT " LIST_PENDING " AS pending) p " \
	"LEFT JOIN LATERAL (SELECT " MESSAGE_COLS LIST_FROM ") l ON true ORDER BY l.uid"

int gn_store_message_list(struct gn_pool *pool, int64_t account_id,
			  int64_t mailbox_id, uint32_t uid_min, uint32_t uid_max,
			  struct gn_store_message ***list_r, size_t *count_r,
			  const char **error_r)
{
	const char *p[4] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id), store_u64s(pool, uid_min),
			     store_u64s(pool, uid_max) };
	/* Readers settle first (mailbox.c's header).  Whether anything is
	 * pending comes with the list, so that the usual case (nothing is)
	 * takes one round trip instead of two: only when something is does
	 * it settle (waiting for a settle under way) and read again, which
	 * is what settling first would have read. */
	PGresult *res = store_q(LIST_SQL, 4, p, error_r);
	if (res != NULL && PQntuples(res) == 0) {
		PQclear(res);
		res = store_q(LIST_OR_EMPTY_SQL, 4, p, error_r);
	}
	if (res == NULL)
		return -1;
	int last = PQnfields(res) - 1;
	if (PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, last), "t") == 0 && !gn_db_in_transaction()) {
		PQclear(res);
		settle_for_read(account_id);
		if ((res = store_q(LIST_SQL, 4, p, error_r)) == NULL)
			return -1;
	}
	/* An empty range: no rows, or LIST_OR_EMPTY_SQL's row of NULLs. */
	size_t n = (size_t)PQntuples(res);
	if (n == 1 && PQgetisnull(res, 0, 2))
		n = 0;
	struct gn_store_message **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i] = gn_pool_alloc(pool, sizeof(*list[i]));
		message_from_row(pool, res, (int)i, list[i], false);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

/* What changed since a modseq, in one statement (one snapshot): the
 * mailbox row (none: no such mailbox), with the messages whose modseq is
 * greater joined to it (a row of NULLs when none), and as last columns
 * its HIGHESTMODSEQ, the UIDs expunged since (a JSON array, NULL for
 * none; InitPlans: computed once) and whether the account has pending
 * messages.  Both modseq lookups go by index (gn_messages_modseq,
 * gn_expunged_modseq). */
#define CHANGES_SQL "SELECT l.*, mb.highestmodseq, " \
	"(SELECT array_to_json(array_agg(e.uid ORDER BY e.uid))::text FROM gn_expunged e " \
	"WHERE e.account_id = $1 AND e.mailbox_id = $2 AND e.modseq > $3), " LIST_PENDING " " \
	"FROM gn_mailboxes mb LEFT JOIN LATERAL (SELECT " MESSAGE_COLS " FROM gn_messages m " \
	"JOIN gn_blobs b ON b.id = m.blob_id WHERE m.account_id = $1 AND m.mailbox_id = $2 " \
	"AND m.modseq > $3) l ON true WHERE mb.account_id = $1 AND mb.id = $2 ORDER BY l.uid"
#define CHANGES_MSG_COLS 16

int gn_store_mailbox_changes(struct gn_pool *pool, int64_t account_id,
			     int64_t mailbox_id, uint64_t since,
			     struct gn_store_message ***list_r, size_t *count_r,
			     uint32_t **expunged_r, size_t *n_expunged_r,
			     uint64_t *highestmodseq_r, const char **error_r)
{
	const char *p[3] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id), store_u64s(pool, since) };
	/* Readers settle first, as gn_store_message_list() does: only when
	 * the answer says something is pending. */
	PGresult *res = store_q(CHANGES_SQL, 3, p, error_r);
	if (res != NULL && PQntuples(res) > 0 &&
	    strcmp(PQgetvalue(res, 0, CHANGES_MSG_COLS + 2), "t") == 0 && !gn_db_in_transaction()) {
		PQclear(res);
		settle_for_read(account_id);
		res = store_q(CHANGES_SQL, 3, p, error_r);
	}
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	size_t n = (size_t)PQntuples(res);
	if (n == 1 && PQgetisnull(res, 0, 2))
		n = 0;
	struct gn_store_message **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i] = gn_pool_alloc(pool, sizeof(*list[i]));
		message_from_row(pool, res, (int)i, list[i], false);
	}
	/* "[3,7,12]": digits separated by commas. */
	const char *ex = PQgetisnull(res, 0, CHANGES_MSG_COLS + 1) ? "" : PQgetvalue(res, 0, CHANGES_MSG_COLS + 1);
	size_t n_ex = 0;
	for (const char *c = ex; *c != '\0'; c++)
		n_ex += *c == ',';
	uint32_t *uids = gn_pool_alloc(pool, (n_ex + 2) * sizeof(*uids));
	n_ex = 0;
	for (const char *c = ex; *c != '\0';) {
		if (*c < '0' || *c > '9') {
			c++;
			continue;
		}
		uint64_t u = 0;
		while (*c >= '0' && *c <= '9')
			u = u * 10 + (uint64_t)(*c++ - '0');
		uids[n_ex++] = (uint32_t)u;
	}
	*highestmodseq_r = (uint64_t)store_col_i64(res, 0, CHANGES_MSG_COLS);
	PQclear(res);
	*list_r = list;
	*count_r = n;
	*expunged_r = uids;
	*n_expunged_r = n_ex;
	return 1;
}

/* A flag change is one statement, so that outside a caller's transaction
 * it is one round trip (its own implicit transaction, durable when it
 * returns) instead of BEGIN, four statements and COMMIT.  In it, as in
 * every change (store.c's header): the account's next modseq first (the
 * row lock: a one-time filter on acc gates the messages' scan, so the
 * account row is locked before any message row), then the messages (FOR
 * UPDATE: READ COMMITTED re-reads a row changed since the snapshot, so
 * the new flags are computed from the latest ones), the mailbox's
 * counters from the exact difference, and the NOTIFY, only when something
 * changed.  $1 account, $2 mailbox, $3 uids, $4 flags, $5 keywords,
 * $6 unchanged-since (0 none), $7 the notification channel.  Rows: (0,
 * uid, old flags, new flags, size) for each message changed, (1, uid ...)
 * for each that failed UNCHANGEDSINCE, and one (2, the modseq taken or
 * NULL for an unknown account). */
#define FLAGS_SQL(FLAGS, KEYWORDS) \
	"WITH acc AS (UPDATE gn_accounts SET modseq = modseq + 1 WHERE id = $1 RETURNING modseq), " \
	"cur AS (SELECT uid, flags, keywords, size, modseq FROM gn_messages " \
	"WHERE account_id = $1 AND mailbox_id = $2 AND uid = ANY($3::bigint[]) " \
	"AND (SELECT modseq FROM acc) IS NOT NULL FOR UPDATE), " \
	"nv AS (SELECT uid, flags AS oflags, keywords AS okw, size, modseq AS omodseq, " \
	FLAGS " AS nflags, " KEYWORDS " AS nkw FROM cur), " \
	"upd AS (UPDATE gn_messages m SET flags = nv.nflags, keywords = nv.nkw, " \
	"modseq = (SELECT modseq FROM acc) " \
	"FROM nv WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid = nv.uid " \
	"AND (nv.nflags <> nv.oflags OR nv.nkw <> nv.okw) AND ($6::bigint = 0 OR nv.omodseq <= $6) " \
	"RETURNING m.uid, nv.oflags, nv.nflags, nv.size), " \
	"d AS (SELECT count(*) AS n, " \
	"coalesce(sum((oflags & 1 <> 0)::int - (nflags & 1 <> 0)::int), 0) AS du, " \
	"coalesce(sum((nflags & 8 <> 0)::int - (oflags & 8 <> 0)::int), 0) AS dd, " \
	"coalesce(sum(((nflags & 8 <> 0)::int - (oflags & 8 <> 0)::int) * size), 0) AS ds FROM upd), " \
	"mb AS (UPDATE gn_mailboxes SET highestmodseq = (SELECT modseq FROM acc), " \
	"unseen = unseen + d.du, deleted = deleted + d.dd, deleted_size = deleted_size + d.ds " \
	"FROM d WHERE account_id = $1 AND id = $2 AND d.n > 0), " \
	"fin AS (SELECT (SELECT modseq FROM acc) AS modseq, CASE WHEN d.n > 0 THEN pg_notify($7, " \
	"$1::bigint || ' ' || $2::bigint || ' ' || (SELECT modseq FROM acc)) END FROM d) " \
	"SELECT 0, uid, oflags, nflags, size FROM upd UNION ALL " \
	"SELECT 1, uid, 0, 0, 0 FROM nv WHERE $6::bigint <> 0 AND omodseq > $6 UNION ALL " \
	"SELECT 2, modseq, 0, 0, 0 FROM fin ORDER BY 1, 2"

/* The bits the counters follow, as FLAGS_SQL spells them. */
#if GN_STORE_SEEN != 1 || GN_STORE_DELETED != 8
#error "FLAGS_SQL counts \Seen as bit 1 and \Deleted as bit 8"
#endif

static const char *const flags_sql[] = {
	[GN_STORE_FLAGS_SET] = FLAGS_SQL("$4::int", "$5::text[]"),
	[GN_STORE_FLAGS_ADD] = FLAGS_SQL("(flags | $4::int)",
		"(keywords || ARRAY(SELECT k FROM unnest($5::text[]) k WHERE lower(k) <> ALL "
		"(SELECT lower(x) FROM unnest(keywords) x)))"),
	[GN_STORE_FLAGS_REMOVE] = FLAGS_SQL("(flags & ~$4::int)",
		"ARRAY(SELECT x FROM unnest(keywords) x WHERE lower(x) <> ALL "
		"(SELECT lower(k) FROM unnest($5::text[]) k))"),
};

int gn_store_message_set_flags(struct gn_pool *pool, int64_t account_id,
			       int64_t mailbox_id, const uint32_t *uids,
			       size_t n_uids, enum gn_store_flag_op op,
			       unsigned flags, const char *const *keywords,
			       size_t n_keywords, uint64_t unchanged_since,
			       uint64_t *modseq_r, uint32_t **failed_r,
			       size_t *n_failed_r, const char **error_r)
{
	if ((flags & ~GN_STORE_FLAGS_ALL) != 0 || op > GN_STORE_FLAGS_REMOVE) {
		*error_r = store_errf("invalid flags 0x%x or operation %d", flags, (int)op);
		return -1;
	}
	const char **kw;
	size_t n_kw;
	if (keywords_prepare(pool, keywords, n_keywords, &kw, &n_kw, error_r) < 0)
		return -1;
	if (failed_r != NULL)
		*failed_r = NULL;
	if (n_failed_r != NULL)
		*n_failed_r = 0;
	/* One statement: atomic alone, part of the caller's transaction
	 * inside one (no store_tx needed). */
	const char *p[7] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id),
			     store_uid_array(pool, uids ? uids : store_no_uids, n_uids),
			     store_i64s(pool, (int64_t)flags), store_text_array(pool, kw, n_kw),
			     store_u64s(pool, unchanged_since), GN_STORE_NOTIFY_CHANNEL };
	PGresult *res = store_q(flags_sql[op], 7, p, error_r);
	if (res == NULL)
		return -1;
	size_t changed = 0, nf = 0, rows = (size_t)PQntuples(res);
	uint32_t *failed = gn_pool_alloc(pool, (rows + 1) * sizeof(*failed));
	bool known = false;
	uint64_t modseq = 0;
	for (size_t i = 0; i < rows; i++) {
		const char *kind = PQgetvalue(res, (int)i, 0);
		if (strcmp(kind, "0") == 0) {
			changed++;
		} else if (strcmp(kind, "1") == 0) {
			failed[nf++] = (uint32_t)store_col_i64(res, (int)i, 1);
		} else if (!PQgetisnull(res, (int)i, 1)) {
			known = true;
			modseq = (uint64_t)store_col_i64(res, (int)i, 1);
		}
	}
	PQclear(res);
	if (!known) {
		*error_r = store_errf("unknown account id %" PRId64, account_id);
		return -1;
	}
	if (modseq_r != NULL)
		*modseq_r = modseq;
	if (failed_r != NULL)
		*failed_r = failed;
	if (n_failed_r != NULL)
		*n_failed_r = nf;
	return (int)changed;
}

/* Deletes messages (uids: an array parameter, or NULL for all \Deleted)
 * inside a transaction, keeps their UIDs with modseq, updates the mailbox
 * counters, and (unless keep_blobs: a move) the blob references and the
 * account's size.  Returns the number, with *uids_r sorted. */
static int expunge_tx(struct gn_pool *pool, int64_t account_id, int64_t mailbox_id,
		      const char *uids, bool keep_blobs, uint64_t modseq,
		      uint32_t **uids_r, const char **error_r)
{
	const char *acc = store_i64s(pool, account_id), *mbox = store_i64s(pool, mailbox_id);
	const char *p[5] = { acc, mbox, uids, store_u64s(pool, modseq), keep_blobs ? "t" : "f" };
	PGresult *res = store_q("WITH d AS (DELETE FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2 "
			  "AND (($3::bigint[] IS NULL AND flags & 8 <> 0 AND uid IS NOT NULL) OR uid = ANY($3::bigint[])) "
			  "RETURNING uid, flags, size, blob_id), "
			  "e AS (INSERT INTO gn_expunged (account_id, mailbox_id, uid, modseq) "
			  "SELECT $1, $2, uid, $4 FROM d ON CONFLICT (account_id, mailbox_id, uid) "
			  "DO UPDATE SET modseq = EXCLUDED.modseq), "
			  "c AS (SELECT blob_id, count(*) AS n FROM d GROUP BY blob_id), "
			  "bl AS (UPDATE gn_blobs b SET refcount = b.refcount - c.n FROM c "
			  "WHERE b.id = c.blob_id AND NOT $5::boolean RETURNING b.id, b.refcount) "
			  "SELECT 0, uid, flags, size FROM d UNION ALL "
			  "SELECT 1, id, refcount, 0 FROM bl ORDER BY 1, 2", 5, p, error_r);
	if (res == NULL)
		return -1;
	size_t rows = (size_t)PQntuples(res), n = 0, nb = 0;
	uint32_t *out = gn_pool_alloc(pool, (rows + 1) * sizeof(*out));
	int64_t *blobs = gn_pool_alloc(pool, (rows + 1) * sizeof(*blobs));
	int64_t unseen = 0, deleted = 0, size = 0, dsize = 0;
	for (size_t i = 0; i < rows; i++) {
		int64_t a = store_col_i64(res, (int)i, 1), b = store_col_i64(res, (int)i, 2);
		if (strcmp(PQgetvalue(res, (int)i, 0), "1") == 0) {
			if (b <= 0)
				blobs[nb++] = a;
			continue;
		}
		int64_t s = store_col_i64(res, (int)i, 3);
		out[n++] = (uint32_t)a;
		size += s;
		if ((b & GN_STORE_SEEN) == 0)
			unseen++;
		if ((b & GN_STORE_DELETED) != 0) {
			deleted++;
			dsize += s;
		}
	}
	PQclear(res);
	if (n > 0) {
		/* The NOTIFY (store_notify()'s payload) goes with the counters:
		 * one round trip less. */
		const char *pm[10] = { acc, mbox, store_u64s(pool, modseq), store_u64s(pool, n), store_i64s(pool, unseen),
				       store_i64s(pool, deleted), store_i64s(pool, size), store_i64s(pool, dsize),
				       keep_blobs ? "0" : store_i64s(pool, size),
				       gn_pool_printf(pool, "%" PRId64 " %" PRId64 " %" PRIu64, account_id,
						      mailbox_id, modseq) };
		if (store_q_count("WITH a AS (UPDATE gn_accounts SET total_size = total_size - $9 "
			    "WHERE id = $1 AND $9::bigint <> 0) "
			    "UPDATE gn_mailboxes SET highestmodseq = $3, messages = messages - $4, "
			    "unseen = unseen - $5, deleted = deleted - $6, size = size - $7, "
			    "deleted_size = deleted_size - $8 WHERE account_id = $1 AND id = $2 "
			    "RETURNING pg_notify('" GN_STORE_NOTIFY_CHANNEL "', $10)",
			    10, pm, error_r) < 0 ||
		    store_blobs_drop_unused(pool, blobs, nb, error_r) < 0)
			return -1;
	}
	if (uids_r != NULL)
		*uids_r = out;
	return (int)n;
}

int gn_store_message_expunge(struct gn_pool *pool, int64_t account_id,
			     int64_t mailbox_id, const uint32_t *uids,
			     size_t n_uids, uint32_t **expunged_r,
			     uint64_t *modseq_r, const char **error_r)
{
	struct store_tx tx;
	int ret = -1;
	if (store_tx_begin(&tx, error_r) < 0)
		return -1;
	uint64_t modseq;
	int r = store_next_modseq(account_id, &modseq, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = store_errf("unknown account id %" PRId64, account_id);
		goto end;
	}
	ret = expunge_tx(pool, account_id, mailbox_id, store_uid_array(pool, uids, n_uids), false,
			 modseq, expunged_r, error_r);
	if (ret >= 0 && modseq_r != NULL)
		*modseq_r = modseq;
end:
	return store_tx_end(&tx, ret, error_r);
}

static int store_message_copy_tx(struct gn_pool *pool, int64_t account_id, int64_t src,
			   const uint32_t *uids, size_t n_uids, int64_t dst, bool move,
			   uint64_t modseq, uint32_t **src_uids_r, uint32_t **dst_uids_r,
			   const char **error_r)
{
	const char *acc = store_i64s(pool, account_id), *smb = store_i64s(pool, src), *dmb = store_i64s(pool, dst);
	const char *p[3] = { acc, smb, store_uid_array(pool, uids, n_uids) };
	PGresult *res = store_q("SELECT uid, flags, size FROM gn_messages WHERE account_id = $1 AND "
			  "mailbox_id = $2 AND uid IS NOT NULL AND ($3::bigint[] IS NULL OR uid = ANY($3::bigint[])) "
			  "ORDER BY uid FOR UPDATE", 3, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	uint32_t *found = gn_pool_alloc(pool, (n + 1) * sizeof(*found));
	uint32_t *dsts = gn_pool_alloc(pool, (n + 1) * sizeof(*dsts));
	int64_t unseen = 0, deleted = 0, size = 0, dsize = 0;
	for (size_t i = 0; i < n; i++) {
		found[i] = (uint32_t)store_col_i64(res, (int)i, 0);
		unsigned f = (unsigned)store_col_i64(res, (int)i, 1);
		int64_t s = store_col_i64(res, (int)i, 2);
		size += s;
		if ((f & GN_STORE_SEEN) == 0)
			unseen++;
		if ((f & GN_STORE_DELETED) != 0) {
			deleted++;
			dsize += s;
		}
	}
	PQclear(res);
	if (n == 0) {
		/* Check the destination anyway: a copy to nowhere is an error. */
		struct gn_store_mailbox *mb;
		int r = gn_store_mailbox_get(pool, account_id, dst, &mb, error_r);
		if (r <= 0) {
			if (r == 0)
				*error_r = store_errf("no such mailbox: %" PRId64, dst);
			return -1;
		}
		goto done;
	}
	const char *list = store_uid_array(pool, found, n);
	if (!move) {
		const char *pb[3] = { acc, smb, list };
		if (store_q_count("UPDATE gn_blobs b SET refcount = b.refcount + c.n FROM "
			    "(SELECT blob_id, count(*) AS n FROM gn_messages WHERE account_id = $1 "
			    "AND mailbox_id = $2 AND uid = ANY($3::bigint[]) GROUP BY blob_id) c "
			    "WHERE b.id = c.blob_id", 3, pb, error_r) < 0)
			return -1;
	}
	const char *pm[9] = { acc, dmb, store_u64s(pool, n), store_u64s(pool, modseq), store_i64s(pool, unseen),
			      store_i64s(pool, deleted), store_i64s(pool, size), move ? "0" : store_i64s(pool, size),
			      store_i64s(pool, dsize) };
	res = store_q("WITH a AS (UPDATE gn_accounts SET total_size = total_size + $8 "
		"WHERE id = $1 AND $8::bigint <> 0) "
		"UPDATE gn_mailboxes SET uidnext = uidnext + $3, highestmodseq = $4, "
		"messages = messages + $3, unseen = unseen + $5, deleted = deleted + $6, "
		"size = size + $7, deleted_size = deleted_size + $9 "
		"WHERE account_id = $1 AND id = $2 AND uidnext + $3 - 1 < 4294967295 "
		"RETURNING uidnext - $3", 9, pm, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("no such mailbox (or no UIDs left in it): %" PRId64, dst);
		return -1;
	}
	uint32_t first = (uint32_t)store_col_i64(res, 0, 0);
	PQclear(res);
	for (size_t i = 0; i < n; i++)
		dsts[i] = first + (uint32_t)i;
	const char *pi[6] = { acc, smb, dmb, store_u64s(pool, first), store_u64s(pool, modseq), list };
	if (store_q_count("INSERT INTO gn_messages (account_id, mailbox_id, uid, modseq, blob_id, prefix, "
		    "size, flags, keywords, internal_date, subject, from_field, message_id, "
		    "sent_date, auth_checked, mail_from_validated, mail_from_validation, "
		    "msg_from_domain, msg_from_validated, msg_from_validation, dkim_domains, "
		    "remote_ip) SELECT account_id, $3, $4 + row_number() OVER (ORDER BY uid) - 1, $5, "
		    "blob_id, prefix, size, flags, keywords, internal_date, subject, from_field, "
		    "message_id, sent_date, auth_checked, mail_from_validated, mail_from_validation, "
		    "msg_from_domain, msg_from_validated, msg_from_validation, dkim_domains, "
		    "remote_ip FROM gn_messages WHERE account_id = $1 AND mailbox_id = $2 "
		    "AND uid = ANY($6::bigint[])", 6, pi, error_r) < 0)
		return -1;
	if (move && expunge_tx(pool, account_id, src, list, true, modseq, NULL, error_r) < 0)
		return -1;
	if (store_notify(account_id, dst, modseq, error_r) < 0)
		return -1;
done:
	if (src_uids_r != NULL)
		*src_uids_r = found;
	if (dst_uids_r != NULL)
		*dst_uids_r = dsts;
	return (int)n;
}

int gn_store_message_copy(struct gn_pool *pool, int64_t account_id,
			  int64_t src_mailbox_id, const uint32_t *uids,
			  size_t n_uids, int64_t dst_mailbox_id, bool move,
			  uint32_t **src_uids_r, uint32_t **dst_uids_r,
			  uint64_t *modseq_r, const char **error_r)
{
	struct store_tx tx;
	int ret = -1;
	if (store_tx_begin(&tx, error_r) < 0)
		return -1;
	uint64_t modseq;
	int r = store_next_modseq(account_id, &modseq, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = store_errf("unknown account id %" PRId64, account_id);
		goto end;
	}
	ret = store_message_copy_tx(pool, account_id, src_mailbox_id,
			      uids != NULL ? uids : store_no_uids, n_uids,
			      dst_mailbox_id, move, modseq, src_uids_r, dst_uids_r, error_r);
	if (ret >= 0 && modseq_r != NULL)
		*modseq_r = modseq;
end:
	return store_tx_end(&tx, ret, error_r);
}

int gn_store_expunged_since(struct gn_pool *pool, int64_t account_id,
			    int64_t mailbox_id, uint64_t since,
			    uint32_t **uids_r, const char **error_r)
{
	const char *p[3] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id), store_u64s(pool, since) };
	PGresult *res = store_q("SELECT uid FROM gn_expunged WHERE account_id = $1 AND mailbox_id = $2 "
			  "AND modseq > $3 ORDER BY uid", 3, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	uint32_t *uids = gn_pool_alloc(pool, (n + 1) * sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = (uint32_t)store_col_i64(res, (int)i, 0);
	PQclear(res);
	*uids_r = uids;
	return (int)n;
}


/* ---- settling pending messages ---- */

/* The settle lock of an account: pg_advisory_xact_lock(class, account)
 * with this class ("gnst"; the two-key form never meets the one-key
 * locks of db/migrate.c).  Only settles take it. */
#define SETTLE_LOCK_CLASS "1735292788"
#define SETTLE_LOCK_SQL(FN) "SELECT " FN "($1::int, ($2::bigint % 2147483647)::int)"
/* Rounds of one gn_store_settle() call: under a steady stream of
 * deliveries one caller never settles for everybody for long; what it
 * leaves goes to the next delivery's settle or the runner job. */
#define SETTLE_ROUNDS_MAX 8

/* Whether the account has pending messages that this statement's
 * snapshot sees: 1, 0, or -1. */
static int settle_pending_exists(struct gn_pool *pool, int64_t account_id, const char **error_r)
{
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res = store_q("SELECT EXISTS (SELECT 1 FROM gn_messages WHERE account_id = $1 "
			  "AND uid IS NULL)", 1, p, error_r);
	if (res == NULL)
		return -1;
	int r = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return r;
}

/* One mailbox's pending messages, collected from the rows in id order. */
struct settle_group {
	int64_t mailbox_id;
	struct gn_buf *ids;		/* "{1,2,3}" */
	const char *first_id, *last_id;	/* the lowest and highest of them */
	uint64_t n, unseen, deleted, size, deleted_size;
};

static int settle_group_apply(struct gn_pool *pool, int64_t account_id, uint64_t modseq,
			      struct settle_group *g, const char **error_r)
{
	gn_buf_append_str(g->ids, "}");
	const char *acc = store_i64s(pool, account_id), *mbox = store_i64s(pool, g->mailbox_id);
	const char *p[12] = { acc, mbox, store_u64s(pool, g->n), store_u64s(pool, modseq),
			      store_u64s(pool, g->unseen), store_u64s(pool, g->deleted),
			      store_u64s(pool, g->size), store_u64s(pool, g->deleted_size),
			      gn_buf_data(g->ids),
			      gn_pool_printf(pool, "%" PRId64 " %" PRId64 " %" PRIu64,
					     account_id, g->mailbox_id, modseq),
			      g->first_id, g->last_id };
	/* One statement: the account's size, the mailbox's UIDs and
	 * counters, the messages' UIDs in id order, the NOTIFY.  The ids'
	 * range ($11, $12) bounds the scan of the primary key: while
	 * gn_messages has no statistics (a new installation, until
	 * autovacuum's first ANALYZE) the planner takes it for a few rows,
	 * and a join with the ids alone was planned as a scan of the
	 * account's every message with a hash join, each settle reading them
	 * all (the ids as ANY(...) or the rows' ctids too: both became
	 * filters); a range is always an index condition.  The pending ids
	 * are the newest, so the range holds few others. */
	PGresult *res = store_q("WITH a AS (UPDATE gn_accounts SET total_size = total_size + $7 WHERE id = $1), "
			  "mb AS (UPDATE gn_mailboxes SET uidnext = uidnext + $3, highestmodseq = $4, "
			  "messages = messages + $3, unseen = unseen + $5, deleted = deleted + $6, "
			  "size = size + $7, deleted_size = deleted_size + $8 "
			  "WHERE account_id = $1 AND id = $2 AND uidnext + $3 - 1 < 4294967295 "
			  "RETURNING uidnext - $3 AS first), "
			  "msg AS (UPDATE gn_messages m SET uid = mb.first + o.n - 1, modseq = $4 "
			  "FROM mb, unnest($9::bigint[]) WITH ORDINALITY AS o(id, n) "
			  "WHERE m.account_id = $1 AND m.id >= $11 AND m.id <= $12 AND m.id = o.id "
			  "AND m.uid IS NULL RETURNING 1) "
			  "SELECT mb.first, (SELECT count(*) FROM msg), "
			  "pg_notify('" GN_STORE_NOTIFY_CHANNEL "', $10) FROM mb", 12, p, error_r);
	if (res == NULL)
		return -1;
	bool ok = PQntuples(res) == 1 && (uint64_t)store_col_i64(res, 0, 1) == g->n;
	PQclear(res);
	if (!ok) {
		*error_r = store_errf("cannot settle %" PRIu64 " message%s in mailbox %" PRId64
				      ": no UIDs left in it", g->n, g->n == 1 ? "" : "s", g->mailbox_id);
		return -1;
	}
	return 0;
}

/* Settles, holding the account's settle lock, inside a transaction.
 * in_caller_tx: take the account row only when it is free at once.
 * Returns the number settled, or -1. */
static int settle_locked(struct gn_pool *pool, int64_t account_id, bool in_caller_tx,
			 const char **error_r)
{
	/* Nothing left (a settle we waited for took it all): no write, so
	 * the commit costs no flush. */
	int r = settle_pending_exists(pool, account_id, error_r);
	if (r <= 0)
		return r;
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res;
	if (in_caller_tx) {
		/* The caller holds other locks (a delivery's blob and mailbox
		 * key locks): waiting for the account row here could close a
		 * cycle with a writer that holds it. */
		res = store_q("SELECT 1 FROM gn_accounts WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
			      1, p, error_r);
		if (res == NULL)
			return -1;
		int got = PQntuples(res) == 1;
		PQclear(res);
		if (!got)
			return 0;
	}
	/* The account row first (the store's lock order), and the modseq
	 * all these messages share. */
	uint64_t modseq;
	r = store_next_modseq(account_id, &modseq, error_r);
	if (r <= 0)
		return r;	/* the account is gone, and its messages with it */
	/* Under the account row lock: no mailbox or account removal runs
	 * now, and this snapshot sees every such removal that committed. */
	res = store_q("SELECT mailbox_id, id, size, flags FROM gn_messages WHERE account_id = $1 "
		      "AND uid IS NULL ORDER BY mailbox_id, id", 1, p, error_r);
	if (res == NULL)
		return -1;
	int rows = PQntuples(res), ret = 0;
	struct settle_group g;
	memset(&g, 0, sizeof(g));
	for (int i = 0; i <= rows && ret >= 0; i++) {
		int64_t mbox = i < rows ? store_col_i64(res, i, 0) : 0;
		if (g.ids != NULL && (i == rows || mbox != g.mailbox_id)) {
			if (settle_group_apply(pool, account_id, modseq, &g, error_r) < 0)
				ret = -1;
			else
				ret += (int)g.n;
			gn_buf_free(&g.ids);
		}
		if (i == rows || ret < 0)
			break;
		if (g.ids == NULL) {
			memset(&g, 0, sizeof(g));
			g.mailbox_id = mbox;
			g.ids = gn_buf_new(0);
			gn_buf_append_str(g.ids, "{");
		}
		uint64_t size = (uint64_t)store_col_i64(res, i, 2);
		unsigned flags = (unsigned)store_col_i64(res, i, 3);
		gn_buf_printf(g.ids, "%s%s", g.n > 0 ? "," : "", PQgetvalue(res, i, 1));
		/* In id order within a mailbox (ORDER BY mailbox_id, id). */
		if (g.n == 0)
			g.first_id = PQgetvalue(res, i, 1);
		g.last_id = PQgetvalue(res, i, 1);
		g.n++;
		g.size += size;
		if ((flags & GN_STORE_SEEN) == 0)
			g.unseen++;
		if ((flags & GN_STORE_DELETED) != 0) {
			g.deleted++;
			g.deleted_size += size;
		}
	}
	gn_buf_free(&g.ids);
	PQclear(res);
	return ret;
}

int gn_store_settle(int64_t account_id, bool wait, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *p[2] = { SETTLE_LOCK_CLASS, store_i64s(tmp, account_id) };
	int ret = -1, total = 0;
	PGresult *res;

	if (gn_db_in_transaction()) {
		/* Never waits: the caller's transaction holds locks. */
		int r = settle_pending_exists(tmp, account_id, error_r);
		if (r <= 0) {
			ret = r;
			goto out;
		}
		res = store_q(SETTLE_LOCK_SQL("pg_try_advisory_xact_lock"), 2, p, error_r);
		if (res == NULL)
			goto out;
		bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		ret = got ? settle_locked(tmp, account_id, true, error_r) : 0;
		goto out;
	}
	for (int round = 0; round < SETTLE_ROUNDS_MAX; round++) {
		/* Every holder of the lock comes back here after its commit,
		 * which released the lock: whoever failed to take it meanwhile
		 * left its messages to this look. */
		int r = settle_pending_exists(tmp, account_id, error_r);
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		if (gn_db_begin(error_r) < 0)
			goto out;
		res = store_q(SETTLE_LOCK_SQL("pg_try_advisory_xact_lock"), 2, p, error_r);
		if (res == NULL) {
			gn_db_rollback();
			goto out;
		}
		bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!got && wait) {
			res = store_q(SETTLE_LOCK_SQL("pg_advisory_xact_lock"), 2, p, error_r);
			if (res == NULL) {
				gn_db_rollback();
				goto out;
			}
			PQclear(res);
			got = true;
		}
		if (!got) {
			/* The holder settles ours after its commit. */
			gn_db_rollback();
			break;
		}
		int n = settle_locked(tmp, account_id, false, error_r);
		if (n < 0) {
			gn_db_rollback();
			goto out;
		}
		if (gn_db_commit(error_r) < 0)
			goto out;
		total += n;
	}
	ret = total;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_message_lookup_uid(int64_t account_id, int64_t message_id,
				uint32_t *uid_r, const char **error_r)
{
	char a[32], m[32];
	snprintf(a, sizeof(a), "%" PRId64, account_id);
	snprintf(m, sizeof(m), "%" PRId64, message_id);
	const char *p[2] = { a, m };
	PGresult *res = store_q("SELECT uid FROM gn_messages WHERE account_id = $1 AND id = $2",
			  2, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
	if (found && uid_r != NULL)
		*uid_r = (uint32_t)store_col_i64(res, 0, 0);
	PQclear(res);
	return found;
}

int gn_store_message_locate(int64_t account_id, int64_t message_id, int64_t *mailbox_id_r,
			    uint32_t *uid_r, const char **error_r)
{
	char a[32], m[32];
	snprintf(a, sizeof(a), "%" PRId64, account_id);
	snprintf(m, sizeof(m), "%" PRId64, message_id);
	const char *p[2] = { a, m };
	PGresult *res = store_q("SELECT mailbox_id, uid FROM gn_messages "
			  "WHERE account_id = $1 AND id = $2 AND uid IS NOT NULL", 2, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found) {
		if (mailbox_id_r != NULL)
			*mailbox_id_r = store_col_i64(res, 0, 0);
		if (uid_r != NULL)
			*uid_r = (uint32_t)store_col_i64(res, 0, 1);
	}
	PQclear(res);
	return found;
}

int gn_store_account_pending_size(int64_t account_id, uint64_t *size_r,
				  const char **error_r)
{
	char a[32];
	snprintf(a, sizeof(a), "%" PRId64, account_id);
	const char *p[1] = { a };
	PGresult *res = store_q("SELECT coalesce(sum(size), 0) FROM gn_messages "
			  "WHERE account_id = $1 AND uid IS NULL", 1, p, error_r);
	if (res == NULL)
		return -1;
	*size_r = (uint64_t)store_col_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

int gn_store_account_message_count(int64_t account_id, uint64_t *count_r,
				   const char **error_r)
{
	char a[32];
	snprintf(a, sizeof(a), "%" PRId64, account_id);
	const char *p[1] = { a };
	/* The mailboxes' exact counters (settled messages; an expunged one
	 * is in none, its UID alone kept in gn_expunged) and the pending
	 * rows through their partial index. */
	PGresult *res = store_q("SELECT (SELECT coalesce(sum(messages), 0) FROM gn_mailboxes "
				"WHERE account_id = $1) + (SELECT count(*) FROM gn_messages "
				"WHERE account_id = $1 AND uid IS NULL)", 1, p, error_r);
	if (res == NULL)
		return -1;
	*count_r = (uint64_t)store_col_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

int store_settle_all(const char **error_r)
{
	PGresult *res = store_q("SELECT DISTINCT account_id FROM gn_messages WHERE uid IS NULL",
			  0, NULL, error_r);
	if (res == NULL)
		return -1;
	int rows = PQntuples(res), total = 0, ret = 0;
	int64_t *ids = gn_malloc(((size_t)rows + 1) * sizeof(*ids));
	for (int i = 0; i < rows; i++)
		ids[i] = store_col_i64(res, i, 0);
	PQclear(res);
	for (int i = 0; i < rows; i++) {
		int n = gn_store_settle(ids[i], false, error_r);
		if (n < 0) {
			gn_log(GN_LOG_WARN, "core", "event=settle_failed account=%" PRId64 " error=%s",
			       ids[i], gn_log_quote(0, *error_r));
			ret = -1;
			continue;
		}
		total += n;
	}
	gn_free(ids);
	return ret < 0 ? -1 : total;
}
