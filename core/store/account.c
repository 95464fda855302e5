/*
 * core/store/account.c: accounts (gannet/store.h): adding one with its
 * first address and initial mailboxes, removing one with everything of
 * it, lookups, login state and full name.  The commands that drive them
 * are in cli-account.c.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>


#define ACCOUNT_COLS "id, name, full_name, login_disabled, modseq, total_size"

static void account_from_row(struct gn_pool *pool, const PGresult *res, int row,
			     struct gn_store_account *a)
{
	a->id = store_col_i64(res, row, 0);
	a->name = store_col_str(pool, res, row, 1);
	a->full_name = store_col_str(pool, res, row, 2);
	a->login_disabled = store_col_str(pool, res, row, 3);
	a->modseq = (uint64_t)store_col_i64(res, row, 4);
	a->total_size = (uint64_t)store_col_i64(res, row, 5);
}

int gn_store_account_name_check(const char *name, const char **error_r)
{
	if (name == NULL || *name == '\0') {
		*error_r = "invalid account name \"\": empty";
		return -1;
	}
	size_t len = strlen(name);
	if (len > NAME_MAX_BYTES) {
		*error_r = store_errf("invalid account name \"%.40s...\": longer than %d bytes", name, NAME_MAX_BYTES);
		return -1;
	}
	const char *prob = store_text_problem(name);
	if (prob == NULL && (name[0] == ' ' || name[len - 1] == ' '))
		prob = "starts or ends with a space";
	if (prob != NULL) {
		*error_r = store_errf("invalid account name \"%s\": %s", name, prob);
		return -1;
	}
	return 0;
}

int gn_store_account_add(struct gn_pool *pool, const char *name,
			 const char *address, const char *full_name,
			 struct gn_store_account **account_r,
			 const char **error_r)
{
	static const struct {
		const char *name;
		enum gn_store_special_use use;
	} initial[] = {
		{ "Inbox", GN_STORE_SPECIAL_NONE },
		{ "Sent", GN_STORE_SPECIAL_SENT },
		{ "Drafts", GN_STORE_SPECIAL_DRAFTS },
		{ "Trash", GN_STORE_SPECIAL_TRASH },
		{ "Junk", GN_STORE_SPECIAL_JUNK },
		{ "Archive", GN_STORE_SPECIAL_ARCHIVE },
	};
	if (gn_store_account_name_check(name, error_r) < 0)
		return -1;
	if (full_name == NULL)
		full_name = "";
	const char *prob = store_text_problem(full_name);
	if (prob != NULL) {
		*error_r = store_errf("invalid full name \"%s\": %s", full_name, prob);
		return -1;
	}
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int ret = -1;
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	const char *p[2] = { name, full_name };
	PGresult *res = store_q("INSERT INTO gn_accounts (name, full_name) VALUES ($1, $2) "
			  "ON CONFLICT (name) DO NOTHING RETURNING " ACCOUNT_COLS, 2, p, error_r);
	if (res == NULL)
		goto end;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("account exists: %s", name);
		goto end;
	}
	struct gn_store_account *a = gn_pool_alloc(pool, sizeof(*a));
	account_from_row(pool, res, 0, a);
	PQclear(res);
	if (store_address_insert(tmp, address, a->id, name, error_r) < 0)
		goto end;
	for (size_t i = 0; i < sizeof(initial) / sizeof(initial[0]); i++) {
		if (store_mailbox_create_tx(tmp, a->id, initial[i].name, initial[i].use, true, NULL, error_r) < 0)
			goto end;
	}
	if (account_r != NULL) {
		/* modseq moved with the mailboxes */
		if (gn_store_account_get(pool, a->id, &a, error_r) < 0)
			goto end;
		*account_r = a;
	}
	ret = 0;
end:
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

/* Takes away the blob references of the messages of an account (mailbox_id
 * 0: all its mailboxes).  Returns 0 or -1; the blobs themselves go with
 * store_blobs_drop_unused() once the messages are deleted. */
int store_release_messages(struct gn_pool *pool, int64_t account_id, int64_t mailbox_id,
			    int64_t **ids_r, size_t *n_r, const char **error_r)
{
	const char *p[2] = { store_i64s(pool, account_id), store_i64s(pool, mailbox_id) };
	PGresult *res = store_q("WITH c AS (SELECT blob_id, count(*) AS n FROM gn_messages "
			  "WHERE account_id = $1 AND ($2::bigint = 0 OR mailbox_id = $2) GROUP BY blob_id) "
			  "UPDATE gn_blobs b SET refcount = b.refcount - c.n FROM c "
			  "WHERE b.id = c.blob_id RETURNING b.id, b.refcount", 2, p, error_r);
	if (res == NULL)
		return -1;
	size_t rows = (size_t)PQntuples(res), n = 0;
	int64_t *ids = gn_pool_alloc(pool, (rows + 1) * sizeof(*ids));
	for (size_t i = 0; i < rows; i++) {
		if (store_col_i64(res, (int)i, 1) <= 0)
			ids[n++] = store_col_i64(res, (int)i, 0);
	}
	PQclear(res);
	*ids_r = ids;
	*n_r = n;
	return 0;
}

int gn_store_account_remove(const char *name, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int ret = -1;
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	const char *p[1] = { name };
	PGresult *res = store_q("SELECT id FROM gn_accounts WHERE name = $1 FOR UPDATE", 1, p, error_r);
	if (res == NULL)
		goto end;
	if (PQntuples(res) == 0) {
		PQclear(res);
		ret = 0;
		goto end;
	}
	int64_t id = store_col_i64(res, 0, 0);
	PQclear(res);
	/* Deliveries lock no account row: wait for those in flight (they
	 * hold their mailbox's key), so that their messages are released
	 * too; later ones fail on the mailbox's removal. */
	const char *pl[1] = { store_i64s(tmp, id) };
	if (store_q_count("SELECT 1 FROM gn_mailboxes WHERE account_id = $1 FOR UPDATE", 1, pl, error_r) < 0)
		goto end;
	int64_t *ids;
	size_t n;
	if (store_release_messages(tmp, id, 0, &ids, &n, error_r) < 0)
		goto end;
	const char *pid[1] = { store_i64s(tmp, id) };
	if (store_q_count("DELETE FROM gn_accounts WHERE id = $1", 1, pid, error_r) < 0)
		goto end;
	if (store_blobs_drop_unused(tmp, ids, n, error_r) < 0)
		goto end;
	ret = 1;
end:
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_account_list(struct gn_pool *pool,
			  struct gn_store_account ***list_r, size_t *count_r,
			  const char **error_r)
{
	PGresult *res = store_q("SELECT " ACCOUNT_COLS " FROM gn_accounts ORDER BY name", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	struct gn_store_account **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i] = gn_pool_alloc(pool, sizeof(*list[i]));
		account_from_row(pool, res, (int)i, list[i]);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

static int account_one(struct gn_pool *pool, const char *sql, const char *param,
		       struct gn_store_account **account_r, const char **error_r)
{
	const char *p[1] = { param };
	PGresult *res = store_q(sql, 1, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found && account_r != NULL) {
		*account_r = gn_pool_alloc(pool, sizeof(**account_r));
		account_from_row(pool, res, 0, *account_r);
	}
	PQclear(res);
	return found;
}

int gn_store_account_find(struct gn_pool *pool, const char *name,
			  struct gn_store_account **account_r,
			  const char **error_r)
{
	return account_one(pool, "SELECT " ACCOUNT_COLS " FROM gn_accounts WHERE name = $1",
			   name, account_r, error_r);
}

int gn_store_account_get(struct gn_pool *pool, int64_t id,
			 struct gn_store_account **account_r,
			 const char **error_r)
{
	return account_one(pool, "SELECT " ACCOUNT_COLS " FROM gn_accounts WHERE id = $1",
			   store_i64s(pool, id), account_r, error_r);
}

int gn_store_account_lock(int64_t account_id, const char **error_r)
{
	if (!gn_db_in_transaction()) {
		*error_r = "gn_store_account_lock() outside a transaction";
		return -1;
	}
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, account_id);
	const char *p[1] = { id };
	/* The lock an UPDATE of the row (the modseq) takes. */
	int64_t c = store_q_count("SELECT 1 FROM gn_accounts WHERE id = $1 FOR NO KEY UPDATE", 1, p, error_r);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int gn_store_account_disable(const char *name, const char *message,
			     const char **error_r)
{
	if (message == NULL || *message == '\0')
		message = "account disabled";
	const char *prob = store_text_problem(message);
	if (prob != NULL) {
		*error_r = store_errf("invalid message \"%s\": %s", message, prob);
		return -1;
	}
	const char *p[2] = { name, message };
	int64_t c = store_q_count("UPDATE gn_accounts SET login_disabled = $2 WHERE name = $1", 2, p, error_r);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int gn_store_account_enable(const char *name, const char **error_r)
{
	const char *p[1] = { name };
	int64_t c = store_q_count("UPDATE gn_accounts SET login_disabled = NULL WHERE name = $1", 1, p, error_r);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int gn_store_account_set_full_name(int64_t account_id, const char *full_name,
				   const char **error_r)
{
	if (full_name == NULL)
		full_name = "";
	const char *prob = store_text_problem(full_name);
	if (prob != NULL) {
		*error_r = store_errf("invalid full name \"%s\": %s", full_name, prob);
		return -1;
	}
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, account_id);
	const char *p[2] = { id, full_name };
	int64_t c = store_q_count("UPDATE gn_accounts SET full_name = $2 WHERE id = $1", 2, p, error_r);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}
