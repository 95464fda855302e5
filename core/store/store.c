/*
 * core/store/store.c: domains, accounts, addresses, mailboxes, messages and
 * blobs in PostgreSQL (gannet/store.h), and their CLI commands.
 *
 * Transactions: every function that writes runs inside store_tx_begin() /
 * store_tx_end().  store_tx_begin() opens a transaction of its own only
 * when none is open (gn_db_in_transaction(): libpq's own view, no round
 * trip).  So a store function is atomic alone and part of the caller's
 * transaction inside one.
 *
 * Locks are always taken in the same order, so two changes never wait on
 * each other in a cycle: the account's settle lock (settles only), the
 * account row (every change takes the account's next modseq, which also
 * serialises changes within an account), then mailbox rows, then
 * messages, then blobs.  Deliveries take none of the first two: they store
 * pending messages that a settle numbers later (store/mailbox.c);
 * inside a delivery's transaction a settle only tries (SKIP LOCKED).
 *
 * Counters: each change computes the exact difference it makes to the
 * mailbox counters (messages, unseen, deleted, size, deleted size) and the
 * account's total size from the rows it changed (RETURNING), and applies it
 * in the same transaction.
 *
 * Blobs: gn_blobs (one row a body, hash NULL while it is written) and
 * gn_blob_chunks (GN_STORE_CHUNK_SIZE bytes a row, stored uncompressed
 * (STORAGE EXTERNAL) so that substring() reads only the bytes asked for).
 * refcount counts the messages using a blob; the statement that drops it to
 * zero is followed by the blob's deletion in the same transaction.
 *
 * The store is three files (store/internal.h says which holds what); this
 * one has the shared helpers, transactions, domains, accounts, addresses,
 * and the CLI commands (`gannet config domain|account|address ...`) at the
 * end, registered by store_register().
 */
#include "store/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gnutls/crypto.h>
#include <json-c/json.h>
#include <uninorm.h>
#include <unistr.h>


/* ---- small helpers ---- */

const uint32_t store_no_uids[1] = { 0 };

static char errbuf[1024];

const char *store_errf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return errbuf;
}

const char *store_i64s(struct gn_pool *pool, int64_t v)
{
	return gn_pool_printf(pool, "%" PRId64, v);
}

const char *store_u64s(struct gn_pool *pool, uint64_t v)
{
	return gn_pool_printf(pool, "%" PRIu64, v);
}

int64_t store_col_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

const char *store_col_str(struct gn_pool *pool, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return gn_pool_strdup(pool, PQgetvalue(res, row, col));
}

PGresult *store_q(const char *sql, int n, const char *const *params,
		   const char **error_r)
{
	return db_query(sql, n, params, error_r);
}

/* Runs a statement and returns its number of affected rows, or -1. */
int64_t store_q_count(const char *sql, int n, const char *const *params,
		       const char **error_r)
{
	PGresult *res = store_q(sql, n, params, error_r);
	if (res == NULL)
		return -1;
	int64_t c = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return c;
}

bool store_hash_from_hex(const char *s, unsigned char hash[GN_STORE_HASH_SIZE])
{
	return s != NULL && strlen(s) == 2 * GN_STORE_HASH_SIZE &&
	       hex_decode(hash, s, 2 * GN_STORE_HASH_SIZE) == 0;
}

/* A bytea parameter in text form. */
const char *store_hash_param(struct gn_pool *pool, const unsigned char hash[GN_STORE_HASH_SIZE])
{
	return gn_pool_printf(pool, "\\x%s", hex_encode_pool(pool, hash, GN_STORE_HASH_SIZE));
}

char *gn_store_hash_hex(struct gn_pool *pool, const unsigned char hash[GN_STORE_HASH_SIZE])
{
	return hex_encode_pool(pool, hash, GN_STORE_HASH_SIZE);
}

/* "{1,2,3}" for a bigint[] parameter; NULL (SQL NULL) when uids is NULL. */
const char *store_uid_array(struct gn_pool *pool, const uint32_t *uids, size_t n)
{
	if (uids == NULL)
		return NULL;
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < n; i++)
		gn_buf_printf(b, "%s%" PRIu32, i > 0 ? "," : "", uids[i]);
	gn_buf_append_str(b, "}");
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

const char *store_i64_array(struct gn_pool *pool, const int64_t *v, size_t n)
{
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < n; i++)
		gn_buf_printf(b, "%s%" PRId64, i > 0 ? "," : "", v[i]);
	gn_buf_append_str(b, "}");
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

/* A text[] parameter: each element quoted, '"' and '\' escaped. */
const char *store_text_array(struct gn_pool *pool, const char *const *v, size_t n)
{
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < n; i++) {
		gn_buf_append_str(b, i > 0 ? ",\"" : "\"");
		for (const char *p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				gn_buf_append(b, "\\", 1);
			gn_buf_append(b, p, 1);
		}
		gn_buf_append_str(b, "\"");
	}
	gn_buf_append_str(b, "}");
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

/* Parses a JSON array of strings (array_to_json(text[])). */
void store_json_strings(struct gn_pool *pool, const char *json,
			 const char ***list_r, size_t *count_r)
{
	*list_r = NULL;
	*count_r = 0;
	if (json == NULL)
		return;
	struct json_object *o = json_tokener_parse(json);
	if (o == NULL || !json_object_is_type(o, json_type_array)) {
		json_object_put(o);
		return;
	}
	size_t n = json_object_array_length(o), m = 0;
	const char **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		/* A NULL element (nothing the store writes) is no string. */
		struct json_object *e = json_object_array_get_idx(o, i);
		if (json_object_is_type(e, json_type_string))
			list[m++] = gn_pool_strdup(pool, json_object_get_string(e));
	}
	json_object_put(o);
	*list_r = list;
	*count_r = m;
}

/* Whether s is valid UTF-8 in NFC without control characters.  Returns
 * NULL when it is, else the problem. */
const char *store_text_problem(const char *s)
{
	size_t len = strlen(s);
	if (u8_check((const uint8_t *)s, len) != NULL)
		return "not valid UTF-8";
	const uint8_t *p = (const uint8_t *)s;
	ucs4_t c;
	while ((p = u8_next(&c, p)) != NULL && c != 0) {
		if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			return "contains a control character";
	}
	size_t nlen = 0;
	uint8_t *n = u8_normalize(UNINORM_NFC, (const uint8_t *)s, len, NULL, &nlen);
	if (n == NULL)
		return "cannot be normalised";
	bool same = nlen == len && memcmp(n, s, len) == 0;
	free(n);
	return same ? NULL : "not in Unicode NFC";
}

/* ---- transactions and notifications ---- */


int store_tx_begin(struct store_tx *tx, const char **error_r)
{
	tx->own = !gn_db_in_transaction();
	if (tx->own)
		return gn_db_begin(error_r);
	return 0;
}

/* Ends the function's transaction with ret (its return value): rolls back
 * our own on ret < 0, commits it otherwise.  Returns ret, or -1 when the
 * commit failed. */
int store_tx_end(struct store_tx *tx, int ret, const char **error_r)
{
	if (!tx->own)
		return ret;
	if (ret < 0) {
		gn_db_rollback();
		return ret;
	}
	if (gn_db_commit(error_r) < 0)
		return -1;
	return ret;
}

int store_notify(int64_t account_id, int64_t mailbox_id, uint64_t modseq,
		  const char **error_r)
{
	char payload[96];
	snprintf(payload, sizeof(payload), "%" PRId64 " %" PRId64 " %" PRIu64,
		 account_id, mailbox_id, modseq);
	return gn_db_notify(GN_STORE_NOTIFY_CHANNEL, payload, error_r);
}

/* Takes the account's next modseq (and its row lock).  Returns 1 with
 * *modseq_r, 0 unknown account, -1 error. */
int store_next_modseq(int64_t account_id, uint64_t *modseq_r, const char **error_r)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, account_id);
	const char *p[1] = { id };
	PGresult *res = store_q("UPDATE gn_accounts SET modseq = modseq + 1 WHERE id = $1 RETURNING modseq",
			  1, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found)
		*modseq_r = (uint64_t)store_col_i64(res, 0, 0);
	PQclear(res);
	return found;
}

/* Drops the blobs in ids whose reference count reached 0. */
int store_blobs_drop_unused(struct gn_pool *pool, const int64_t *ids, size_t n,
			     const char **error_r)
{
	if (n == 0)
		return 0;
	const char *p[1] = { store_i64_array(pool, ids, n) };
	return store_q_count("DELETE FROM gn_blobs WHERE id = ANY($1::bigint[]) AND refcount <= 0",
		       1, p, error_r) < 0 ? -1 : 0;
}

/* ---- domains ---- */

static const char *separators_problem(const char *seps)
{
	if (u8_check((const uint8_t *)seps, strlen(seps)) != NULL)
		return "not valid UTF-8";
	const uint8_t *p = (const uint8_t *)seps;
	ucs4_t c;
	while ((p = u8_next(&c, p)) != NULL && c != 0) {
		if (c <= 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) ||
		    (c < 0x80 && (c == '@' || c == '.' || c == '"' || c == '\\' ||
				  (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
				  (c >= 'A' && c <= 'Z'))))
			return "letters, digits, \"@\", \".\", quotes, backslashes, spaces and controls cannot separate";
	}
	return NULL;
}

static void domain_from_row(struct gn_pool *pool, const PGresult *res, int row,
			    struct gn_store_domain *d)
{
	d->id = store_col_i64(res, row, 0);
	d->name = store_col_str(pool, res, row, 1);
	d->name_utf8 = store_col_str(pool, res, row, 2);
	d->catchall_separators = store_col_str(pool, res, row, 3);
}

#define DOMAIN_COLS "id, name, name_utf8, catchall_separators"

/* The A-label form of a domain name, or NULL with *error_r. */
static const char *domain_ascii(struct gn_pool *pool, const char *name,
				const char **utf8_r, const char **error_r)
{
	const char *ascii = NULL, *err = NULL;
	if (name == NULL || gn_addr_parse_domain(pool, name, strlen(name), &ascii, utf8_r, &err) < 0) {
		*error_r = store_errf("invalid domain \"%s\": %s", name ? name : "", err ? err : "empty");
		return NULL;
	}
	return ascii;
}

int gn_store_domain_add(struct gn_pool *pool, const char *name,
			const char *catchall_separators,
			struct gn_store_domain **domain_r, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *utf8 = NULL;
	const char *ascii = domain_ascii(tmp, name, &utf8, error_r);
	int ret = -1;
	if (ascii == NULL)
		goto out;
	const char *seps = catchall_separators ? catchall_separators : "";
	const char *prob = separators_problem(seps);
	if (prob != NULL) {
		*error_r = store_errf("invalid catchall separators \"%s\": %s", seps, prob);
		goto out;
	}
	const char *p[3] = { ascii, utf8, seps };
	PGresult *res = store_q("INSERT INTO gn_domains (name, name_utf8, catchall_separators) "
			  "VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING " DOMAIN_COLS,
			  3, p, error_r);
	if (res == NULL)
		goto out;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("domain exists: %s", utf8);
		goto out;
	}
	if (domain_r != NULL) {
		*domain_r = gn_pool_alloc(pool, sizeof(**domain_r));
		domain_from_row(pool, res, 0, *domain_r);
	}
	PQclear(res);
	ret = 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_domain_remove(const char *name, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *ascii = domain_ascii(tmp, name, NULL, error_r);
	int ret = -1;
	if (ascii == NULL)
		goto out;
	const char *p[1] = { ascii };
	PGresult *res = store_q("SELECT (SELECT count(*) FROM gn_addresses a WHERE a.domain_id = d.id) "
			  "FROM gn_domains d WHERE d.name = $1", 1, p, error_r);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		PQclear(res);
		ret = 0;
		goto out;
	}
	int64_t used = store_col_i64(res, 0, 0);
	PQclear(res);
	if (used > 0) {
		*error_r = store_errf("domain %s is used by %" PRId64 " address%s: remove %s first",
				name, used, used == 1 ? "" : "es", used == 1 ? "it" : "them");
		goto out;
	}
	int64_t c = store_q_count("DELETE FROM gn_domains d WHERE name = $1 AND NOT EXISTS "
			    "(SELECT 1 FROM gn_addresses a WHERE a.domain_id = d.id)", 1, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_domain_set_catchall(const char *name, const char *separators,
				 const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *ascii = domain_ascii(tmp, name, NULL, error_r);
	int ret = -1;
	if (ascii == NULL)
		goto out;
	const char *seps = separators ? separators : "";
	const char *prob = separators_problem(seps);
	if (prob != NULL) {
		*error_r = store_errf("invalid catchall separators \"%s\": %s", seps, prob);
		goto out;
	}
	const char *p[2] = { ascii, seps };
	int64_t c = store_q_count("UPDATE gn_domains SET catchall_separators = $2 WHERE name = $1",
			    2, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_domain_list(struct gn_pool *pool, struct gn_store_domain ***list_r,
			 size_t *count_r, const char **error_r)
{
	PGresult *res = store_q("SELECT " DOMAIN_COLS " FROM gn_domains ORDER BY name", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	struct gn_store_domain **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i] = gn_pool_alloc(pool, sizeof(*list[i]));
		domain_from_row(pool, res, (int)i, list[i]);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

int gn_store_domain_find(struct gn_pool *pool, const char *name,
			 struct gn_store_domain **domain_r, const char **error_r)
{
	const char *err;
	const char *ascii = domain_ascii(pool, name, NULL, &err);
	if (ascii == NULL)
		return 0;
	const char *p[1] = { ascii };
	PGresult *res = store_q("SELECT " DOMAIN_COLS " FROM gn_domains WHERE name = $1", 1, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found && domain_r != NULL) {
		*domain_r = gn_pool_alloc(pool, sizeof(**domain_r));
		domain_from_row(pool, res, 0, *domain_r);
	}
	PQclear(res);
	return found;
}

/* ---- accounts ---- */

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

static int address_insert(struct gn_pool *pool, const char *address, int64_t account_id,
			  const char *account, const char **error_r);

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
	if (address_insert(tmp, address, a->id, name, error_r) < 0)
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

/* ---- addresses ---- */

/* Parses address for configuration: a domain name (no literal). */
static struct gn_addr *address_parse(struct gn_pool *pool, const char *address,
				     const char **error_r)
{
	struct gn_addr *a = NULL;
	const char *err = NULL;
	if (address == NULL || gn_addr_parse(pool, address, strlen(address), &a, &err) < 0) {
		*error_r = store_errf("invalid address \"%s\": %s", address ? address : "", err ? err : "empty");
		return NULL;
	}
	if (a->domain[0] == '[') {
		*error_r = store_errf("invalid address \"%s\": an address literal cannot be configured", address);
		return NULL;
	}
	return a;
}

static int address_insert(struct gn_pool *pool, const char *address, int64_t account_id,
			  const char *account, const char **error_r)
{
	struct gn_addr *a = address_parse(pool, address, error_r);
	if (a == NULL)
		return -1;
	struct gn_store_domain *d;
	int r = gn_store_domain_find(pool, a->domain, &d, error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		*error_r = store_errf("unknown domain: %s (add it with `gannet config domain add %s`)",
				a->domain_utf8, a->domain_utf8);
		return -1;
	}
	if (account_id == 0) {
		struct gn_store_account *acc;
		r = gn_store_account_find(pool, account, &acc, error_r);
		if (r < 0)
			return -1;
		if (r == 0) {
			*error_r = store_errf("unknown account: %s", account);
			return -1;
		}
		account_id = acc->id;
	}
	struct gn_addr *f = gn_addr_fold(pool, a);
	const char *p[4] = { store_i64s(pool, d->id), f->localpart, a->localpart, store_i64s(pool, account_id) };
	PGresult *res = store_q("INSERT INTO gn_addresses (domain_id, localpart_key, localpart, account_id) "
			  "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, error_r);
	if (res == NULL)
		return -1;
	bool added = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	if (!added) {
		*error_r = store_errf("address exists: %s", gn_addr_to_display(pool, a));
		return -1;
	}
	return 0;
}

int gn_store_address_add(const char *address, const char *account,
			 const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int ret = -1;
	/* Checks before the transaction so that the errors come in order. */
	struct gn_addr *a = address_parse(tmp, address, error_r);
	if (a == NULL)
		goto out;
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	ret = address_insert(tmp, address, 0, account, error_r);
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_address_remove(const char *address, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int ret = -1;
	struct gn_addr *a = address_parse(tmp, address, error_r);
	if (a == NULL)
		goto out;
	struct gn_addr *f = gn_addr_fold(tmp, a);
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	const char *p[2] = { a->domain, f->localpart };
	PGresult *res = store_q("SELECT a.account_id, acc.name, "
			  "(SELECT count(*) FROM gn_addresses o WHERE o.account_id = a.account_id) "
			  "FROM gn_addresses a JOIN gn_domains d ON d.id = a.domain_id "
			  "JOIN gn_accounts acc ON acc.id = a.account_id "
			  "WHERE d.name = $1 AND a.localpart_key = $2 FOR UPDATE OF acc", 2, p, error_r);
	if (res == NULL)
		goto end;
	if (PQntuples(res) == 0) {
		PQclear(res);
		ret = 0;
		goto end;
	}
	int64_t count = store_col_i64(res, 0, 2);
	char *acc = gn_pool_strdup(tmp, PQgetvalue(res, 0, 1));
	PQclear(res);
	if (count <= 1) {
		*error_r = store_errf("address %s is the last of account %s: remove the account instead",
				address, acc);
		goto end;
	}
	int64_t c = store_q_count("DELETE FROM gn_addresses a USING gn_domains d WHERE d.id = a.domain_id "
			    "AND d.name = $1 AND a.localpart_key = $2", 2, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
end:
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

static void address_from_parts(struct gn_pool *pool, const char *localpart,
			       const char *domain, const char **canonical_r,
			       const char **display_r)
{
	struct gn_addr *a = NULL;
	const char *err;
	if (gn_addr_from_parts(pool, localpart, domain, &a, &err) < 0) {
		/* stored addresses were valid when added */
		const char *s = gn_pool_printf(pool, "%s@%s", localpart, domain);
		if (canonical_r)
			*canonical_r = s;
		if (display_r)
			*display_r = s;
		return;
	}
	if (canonical_r)
		*canonical_r = gn_addr_to_string(pool, a);
	if (display_r)
		*display_r = gn_addr_to_display(pool, a);
}

int gn_store_address_list(struct gn_pool *pool, int64_t account_id,
			  struct gn_store_address ***list_r, size_t *count_r,
			  const char **error_r)
{
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res = store_q("SELECT a.localpart, d.name, a.account_id, acc.name FROM gn_addresses a "
			  "JOIN gn_domains d ON d.id = a.domain_id JOIN gn_accounts acc ON acc.id = a.account_id "
			  "WHERE a.account_id = $1 ORDER BY d.name, a.localpart_key", 1, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	struct gn_store_address **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		struct gn_store_address *a = list[i] = gn_pool_alloc(pool, sizeof(*a));
		address_from_parts(pool, PQgetvalue(res, (int)i, 0), PQgetvalue(res, (int)i, 1),
				   &a->address, &a->display);
		a->account_id = store_col_i64(res, (int)i, 2);
		a->account = store_col_str(pool, res, (int)i, 3);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

int gn_store_address_lookup(struct gn_pool *pool, const struct gn_addr *addr,
			    int64_t *account_id_r, const char **canonical_r,
			    const char **error_r)
{
	if (addr == NULL || addr->domain == NULL || addr->domain[0] == '\0' || addr->domain[0] == '[')
		return 0;
	struct gn_addr *f = gn_addr_fold(pool, addr);
	const char *p[2] = { addr->domain, f->localpart };
	PGresult *res = store_q("SELECT a.account_id, a.localpart, d.catchall_separators "
			  "FROM gn_domains d LEFT JOIN gn_addresses a "
			  "ON a.domain_id = d.id AND a.localpart_key = $2 WHERE d.name = $1",
			  2, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;	/* not our domain */
	}
	if (PQgetisnull(res, 0, 0)) {
		const char *seps = store_col_str(pool, res, 0, 2);
		PQclear(res);
		struct gn_addr *s = gn_addr_strip_catchall(pool, addr, seps);
		if (s == addr)
			return 0;
		f = gn_addr_fold(pool, s);
		p[1] = f->localpart;
		res = store_q("SELECT a.account_id, a.localpart FROM gn_domains d JOIN gn_addresses a "
			"ON a.domain_id = d.id WHERE d.name = $1 AND a.localpart_key = $2", 2, p, error_r);
		if (res == NULL)
			return -1;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return 0;
		}
	}
	if (account_id_r != NULL)
		*account_id_r = store_col_i64(res, 0, 0);
	if (canonical_r != NULL)
		address_from_parts(pool, PQgetvalue(res, 0, 1), addr->domain, canonical_r, NULL);
	PQclear(res);
	return 1;
}

/* ---- the CLI: gannet config domain|account|address ---- */

static int cli_usage(const char *usage)
{
	fprintf(stderr, "gannet: usage: gannet %s\n", usage);
	return 2;
}

static int cli_fail(const char *error)
{
	fprintf(stderr, "gannet: %s\n", error);
	return 1;
}

/* The arguments from i on joined with spaces (a full name or message
 * given without quotes), from pool; NULL when there are none. */
static const char *cli_rest(struct gn_pool *pool, int argc, char **argv, int i)
{
	if (i >= argc)
		return NULL;
	struct gn_buf *b = gn_buf_new(0);
	for (int j = i; j < argc; j++)
		gn_buf_printf(b, "%s%s", j > i ? " " : "", argv[j]);
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

#define USAGE_DOMAIN_ADD "config domain add DOMAIN [--catchall-separators SEPS]"

static int cli_domain_add(int argc, char **argv, void *data)
{
	(void)data;
	const char *name = NULL, *seps = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--catchall-separators") == 0) {
			if (++i >= argc || seps != NULL)
				return cli_usage(USAGE_DOMAIN_ADD);
			seps = argv[i];
		} else if (strncmp(argv[i], "--catchall-separators=", 22) == 0 && seps == NULL) {
			seps = argv[i] + 22;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "gannet: unknown option: %s\n", argv[i]);
			return cli_usage(USAGE_DOMAIN_ADD);
		} else if (name == NULL) {
			name = argv[i];
		} else {
			return cli_usage(USAGE_DOMAIN_ADD);
		}
	}
	if (name == NULL)
		return cli_usage(USAGE_DOMAIN_ADD);
	const char *err;
	struct gn_pool *pool = gn_pool_new();
	int r = gn_store_domain_add(pool, name, seps, NULL, &err);
	gn_pool_free(&pool);
	return r < 0 ? cli_fail(err) : 0;
}

static int cli_domain_rm(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return cli_usage("config domain rm DOMAIN");
	const char *err;
	int r = gn_store_domain_remove(argv[1], &err);
	if (r < 0)
		return cli_fail(err);
	if (r == 0)
		return cli_fail(store_errf("unknown domain: %s", argv[1]));
	return 0;
}

static int cli_domain_list(int argc, char **argv, void *data)
{
	(void)argv;
	(void)data;
	if (argc != 1)
		return cli_usage("config domain list");
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_domain **list;
	size_t n;
	const char *err;
	if (gn_store_domain_list(pool, &list, &n, &err) < 0) {
		gn_pool_free(&pool);
		return cli_fail(err);
	}
	for (size_t i = 0; i < n; i++) {
		printf("%s", list[i]->name);
		if (strcmp(list[i]->name, list[i]->name_utf8) != 0)
			printf(" (%s)", list[i]->name_utf8);
		if (list[i]->catchall_separators[0] != '\0')
			printf(" catchall-separators=%s", list[i]->catchall_separators);
		printf("\n");
	}
	gn_pool_free(&pool);
	return 0;
}

static int cli_account_add(int argc, char **argv, void *data)
{
	(void)data;
	if (argc < 3)
		return cli_usage("config account add ACCOUNT ADDRESS [FULL NAME]");
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	int r = gn_store_account_add(pool, argv[1], argv[2], cli_rest(pool, argc, argv, 3), NULL, &err);
	gn_pool_free(&pool);
	return r < 0 ? cli_fail(err) : 0;
}

static int cli_account_rm(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return cli_usage("config account rm ACCOUNT");
	const char *err;
	int r = gn_store_account_remove(argv[1], &err);
	if (r < 0)
		return cli_fail(err);
	if (r == 0)
		return cli_fail(store_errf("unknown account: %s", argv[1]));
	return 0;
}

static int cli_account_list(int argc, char **argv, void *data)
{
	(void)argv;
	(void)data;
	if (argc != 1)
		return cli_usage("config account list");
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account **list;
	size_t n;
	const char *err;
	int ret = 0;
	if (gn_store_account_list(pool, &list, &n, &err) < 0) {
		ret = cli_fail(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct gn_store_address **addrs;
		size_t na;
		if (gn_store_address_list(pool, list[i]->id, &addrs, &na, &err) < 0) {
			ret = cli_fail(err);
			goto out;
		}
		printf("%s", list[i]->name);
		for (size_t j = 0; j < na; j++)
			printf("%s%s", j == 0 ? "\t" : ", ", addrs[j]->display);
		if (list[i]->full_name[0] != '\0')
			printf("\t\"%s\"", list[i]->full_name);
		if (list[i]->login_disabled != NULL)
			printf("\tdisabled: %s", list[i]->login_disabled);
		printf("\n");
	}
out:
	gn_pool_free(&pool);
	return ret;
}

static int cli_account_disable(int argc, char **argv, void *data)
{
	(void)data;
	if (argc < 2)
		return cli_usage("config account disable ACCOUNT [MESSAGE]");
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	int r = gn_store_account_disable(argv[1], cli_rest(pool, argc, argv, 2), &err);
	gn_pool_free(&pool);
	if (r < 0)
		return cli_fail(err);
	if (r == 0)
		return cli_fail(store_errf("unknown account: %s", argv[1]));
	return 0;
}

static int cli_account_enable(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return cli_usage("config account enable ACCOUNT");
	const char *err;
	int r = gn_store_account_enable(argv[1], &err);
	if (r < 0)
		return cli_fail(err);
	if (r == 0)
		return cli_fail(store_errf("unknown account: %s", argv[1]));
	return 0;
}

static int cli_address_add(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 3)
		return cli_usage("config address add ADDRESS ACCOUNT");
	const char *err;
	return gn_store_address_add(argv[1], argv[2], &err) < 0 ? cli_fail(err) : 0;
}

static int cli_address_rm(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return cli_usage("config address rm ADDRESS");
	const char *err;
	int r = gn_store_address_remove(argv[1], &err);
	if (r < 0)
		return cli_fail(err);
	if (r == 0)
		return cli_fail(store_errf("unknown address: %s", argv[1]));
	return 0;
}

/* Blobs no message refers to: the last reference went in a transaction
 * that could not delete (rare), or a streamed body was abandoned before its
 * message was stored.  Six hours leaves any delivery still streaming alone. */
#define BLOB_CLEANUP_INTERVAL_MS (3600UL * 1000)
#define BLOB_CLEANUP_MIN_AGE_S (6L * 3600)

/* Pending messages whose delivering process did not settle them (it died
 * between its commit and its settle, or its settle failed): settled within
 * a few seconds.  Settling a fresh one early is harmless. */
#define SETTLE_INTERVAL_MS 2000UL

static void settle_job(void *data)
{
	(void)data;
	const char *err = NULL;
	int n = store_settle_all(&err);
	if (n > 0)
		gn_log(GN_LOG_INFO, "core", "event=settled_late messages=%d", n);
}

static void blob_cleanup_job(void *data)
{
	const char *err;
	int n = gn_store_blob_cleanup(BLOB_CLEANUP_MIN_AGE_S, &err);
	if (n < 0)
		gn_log(GN_LOG_WARN, "core", "event=blob_cleanup_failed error=%s", gn_log_quote(0, err));
	else if (n > 0)
		gn_log(GN_LOG_INFO, "core", "event=blob_cleanup removed=%d", n);
	if (store_delivery_tokens_cleanup(&err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=token_cleanup_failed error=%s", gn_log_quote(0, err));
}

int store_register(void)
{
	static const struct {
		const char *words, *usage;
		gn_cli_fn *fn;
	} cmds[] = {
		{ "config domain add", "DOMAIN [--catchall-separators SEPS]", cli_domain_add },
		{ "config domain rm", "DOMAIN", cli_domain_rm },
		{ "config domain list", "", cli_domain_list },
		{ "config account add", "ACCOUNT ADDRESS [FULL NAME]", cli_account_add },
		{ "config account rm", "ACCOUNT", cli_account_rm },
		{ "config account list", "", cli_account_list },
		{ "config account disable", "ACCOUNT [MESSAGE]", cli_account_disable },
		{ "config account enable", "ACCOUNT", cli_account_enable },
		{ "config address add", "ADDRESS ACCOUNT", cli_address_add },
		{ "config address rm", "ADDRESS", cli_address_rm },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *err;
		if (gn_cli_register(modules_core_ctx(), cmds[i].words, cmds[i].usage,
				    cmds[i].fn, NULL, &err) < 0) {
			conf_error("store: %s", err);
			return -1;
		}
	}
	const char *err;
	if (gn_runner_job_register(modules_core_ctx(), "store-blob-cleanup", BLOB_CLEANUP_INTERVAL_MS,
				   blob_cleanup_job, NULL, &err) < 0 ||
	    gn_runner_job_register(modules_core_ctx(), "store-settle", SETTLE_INTERVAL_MS,
				   settle_job, NULL, &err) < 0) {
		conf_error("store: %s", err);
		return -1;
	}
	return 0;
}
