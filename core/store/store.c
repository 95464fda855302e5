/*
 * core/store/store.c: what the store's files share (gannet/store.h), and its
 * register phase.
 *
 * The store is a handful of files a subject (store/internal.h lists them):
 * domain.c, account.c, address.c, mailbox.c (mailboxes, subscriptions,
 * messages, settling), blob.c (bodies); the command line of the first three
 * is in cli-*.c beside them.  This file has the helpers they share, the
 * transactions, the runner jobs, and store_register().
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
 * zero is followed by the blob's deletion in the same transaction, unless
 * a writer finished that body within the last hour (STORE_BLOB_HOLD: a
 * message may be about to use it), which the clean-up removes later.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

/* Drops the blobs in ids whose reference count reached 0, except those
 * a writer finished lately: its message may be about to take a reference
 * in a transaction of its own (internal.h).  A finish that comes after
 * this statement waits for its row lock and, the row gone, stores the
 * body anew (store/blob.c). */
int store_blobs_drop_unused(struct gn_pool *pool, const int64_t *ids, size_t n,
			     const char **error_r)
{
	if (n == 0)
		return 0;
	const char *p[1] = { store_i64_array(pool, ids, n) };
	return store_q_count("DELETE FROM gn_blobs WHERE id = ANY($1::bigint[]) AND refcount <= 0 "
			     "AND finished_at < now() - interval '" STORE_BLOB_HOLD "'",
			     1, p, error_r) < 0 ? -1 : 0;
}

/* Blobs no message refers to: the last reference went in a transaction
 * that could not delete (rare) or while the body was held (a writer
 * finished it lately), a finished body was never used, or a writer died
 * while it wrote.  Finished ones go six hours after their last finish
 * (longer than STORE_BLOB_HOLD); one being
 * written only once its writer's lease ran out (store/blob.c), however
 * long that writer takes. */
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
	if (store_cli_register() < 0)
		return -1;
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

