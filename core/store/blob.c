/*
 * core/store/blob.c: message bodies of the store (gannet/store.h).
 *
 * gn_blobs holds one row a body, gn_blob_chunks its bytes in
 * GN_STORE_CHUNK_SIZE pieces, stored uncompressed (STORAGE EXTERNAL) so
 * that substring() fetches only the bytes a read asks for.  The writer
 * keeps at most one chunk in memory:
 *
 *   - A body that fits in one chunk is written at finish, after the hash
 *     is known (most messages): one statement inserts the blob and its
 *     chunk, or finds that the body exists already.
 *   - A larger one goes to a pending row (hash NULL, writing_until set:
 *     migration 007) chunk by chunk as the chunks fill, each chunk its own
 *     transaction outside the caller's (no transaction stays open while a
 *     client sends).  Those commits do not wait for the WAL flush
 *     (synchronous_commit off for that statement alone): PostgreSQL writes
 *     WAL in order, so the durable COMMIT of the delivery that uses the
 *     blob later flushes them too, and a crash before it loses nothing
 *     anyone was promised.  The pending row is a lease: every chunk, and
 *     every write a minute after the last refresh, moves writing_until
 *     forward, and the clean-up removes a pending row only once its lease
 *     ran out (a writer that crashed).  At finish the pending row becomes
 *     the blob (hash and size set), or is deleted when that body exists
 *     already.
 *
 * A finished body is held for the message about to use it (migration
 * 010): finish records the time in the blob's row (finished_at), with
 * an UPDATE that also locks an existing blob's row until the caller's
 * transaction ends.  An expunge that drops the last reference leaves a
 * blob finished within STORE_BLOB_HOLD to the clean-up, which goes by
 * the last finish: a message added in a later transaction (MULTIAPPEND,
 * callers of gn_store_blob_finish()) finds its blob, and one added in
 * the finish's transaction (deliveries, APPEND) has it locked.  A finish
 * that waited for the lock of a transaction that deleted the row stores
 * the body anew.
 *
 * Nothing is taken on trust: every statement's row count is checked (a
 * pending row that vanished fails the write, it is never written around),
 * and before the caller commits, finish verifies what the database holds:
 * the number of chunks, their total size and the SHA-256 of their bytes
 * against what was written (a blob that existed already: its chunks'
 * count and size against its recorded size; one found damaged is
 * repaired from the bytes just written).  A pending row is checked chunk
 * by chunk, each against the SHA-256 the writer took of it when it was
 * sent: the server hashes each chunk where it lies instead of first
 * gathering the whole body into one value, which for a body of a few MB
 * cost more than writing it.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <gnutls/crypto.h>

/* How long a pending blob is held without news from its writer, and how
 * often a writer that is still writing renews that. */
#define BLOB_LEASE "1 hour"
#define BLOB_LEASE_RENEW_S 60.0

/* Transaction-scoped advisory lock on a hash ("gnbl" and the hash's first
 * four bytes): finishers of the same body take turns, so that one finds
 * the other's blob instead of colliding on the unique hash. */
#define BLOB_LOCK_CLASS "1735287404"

/* How often a finish stores a body anew whose existing blob vanished
 * while it was looked up (deleted, its last reference gone, by a
 * transaction that committed meanwhile).  Once is enough unless the
 * clean-up runs with no minimum age. */
#define BLOB_FINISH_TRIES 3

/* ---- writing ---- */

struct gn_store_blob_writer {
	gnutls_hash_hd_t hash;
	unsigned char *buf;	/* GN_STORE_CHUNK_SIZE */
	size_t len;
	uint64_t size;		/* bytes written */
	int64_t pending_id;	/* gn_blobs row with hash NULL, 0 none */
	int seq;		/* next chunk number */
	unsigned char (*chunk_hash)[GN_STORE_HASH_SIZE];	/* of each chunk sent */
	size_t chunk_hash_cap;
	double leased_at;	/* monotonic time of the last lease renewal */
	bool finished;
	bool failed;
};

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct gn_store_blob_writer *gn_store_blob_writer_new(void)
{
	struct gn_store_blob_writer *w = gn_calloc(1, sizeof(*w));
	if (gnutls_hash_init(&w->hash, GNUTLS_DIG_SHA256) < 0)
		gn_log(GN_LOG_ERROR, "core", "event=store_sha256_failed");
	w->buf = gn_malloc(GN_STORE_CHUNK_SIZE);
	return w;
}

/* "t" when the statement runs as its own transaction (no caller's is
 * open): its commit then need not wait for the WAL flush (the header says
 * why that is safe).  Inside a caller's transaction nothing changes. */
static const char *lazy_commit_param(void)
{
	return gn_db_in_transaction() ? "f" : "t";
}

#define LAZY_CTE "lazy AS (SELECT CASE WHEN $1::boolean THEN " \
	"set_config('synchronous_commit', 'off', true) END)"

/* The statement that stores a chunk, the first one creating the pending
 * row ($1 the bytes, $2 the pending row, $3 the chunk's number).  The
 * others renew the lease, and write only while the row is ours. */
static PGresult *chunk_insert(struct gn_store_blob_writer *w, const char **error_r)
{
	char id[32], sq[16];
	snprintf(id, sizeof(id), "%" PRId64, w->pending_id);
	snprintf(sq, sizeof(sq), "%d", w->seq);
	const char *v[3] = { (const char *)w->buf, id, sq };
	int lens[3] = { (int)w->len, 0, 0 };
	int fmts[3] = { 1, 0, 0 };
	if (w->pending_id == 0)
		return db_query_params("WITH b AS (INSERT INTO gn_blobs (writing_until) "
				       "VALUES (now() + interval '" BLOB_LEASE "') RETURNING id) "
				       "INSERT INTO gn_blob_chunks (blob_id, seq, data) "
				       "SELECT id, 0, $1 FROM b RETURNING blob_id", 1, v, lens, fmts, 0, error_r);
	return db_query_params("WITH b AS (UPDATE gn_blobs SET writing_until = "
			       "now() + interval '" BLOB_LEASE "' WHERE id = $2 AND hash IS NULL "
			       "RETURNING id) INSERT INTO gn_blob_chunks (blob_id, seq, data) "
			       "SELECT id, $3, $1 FROM b RETURNING blob_id", 3, v, lens, fmts, 0, error_r);
}

/* Sends the buffered chunk.  Outside a caller's transaction (chunks that
 * fill while the client sends) it is a transaction of its own, whose
 * commit need not wait for the WAL flush (the header says why that is
 * safe) and whose plan is generic: PostgreSQL otherwise plans a statement
 * with its parameters folded in as constants, copying the chunk through
 * the planner several times, which took a quarter of the time of storing a
 * 1 MB body.  Inside a caller's transaction (the last piece of a body, at
 * finish) nothing is changed for the statements that follow. */
static int writer_flush(struct gn_store_blob_writer *w, const char **error_r)
{
	struct store_tx tx;
	if (store_tx_begin(&tx, error_r) < 0)
		return -1;
	int64_t inserted = -1;
	if (!tx.own || store_q_count("SELECT set_config('synchronous_commit', 'off', true), "
				     "set_config('plan_cache_mode', 'force_generic_plan', true)",
				     0, NULL, error_r) >= 0) {
		PGresult *res = chunk_insert(w, error_r);
		if (res != NULL) {
			inserted = PQntuples(res) == 1 ? store_col_i64(res, 0, 0) : 0;
			PQclear(res);
		}
	}
	if (inserted == 0)
		*error_r = store_errf("the blob being written (id %" PRId64 ") is gone: its lease ran out",
				      w->pending_id);
	if (store_tx_end(&tx, inserted > 0 ? 0 : -1, error_r) < 0)
		return -1;
	if ((size_t)w->seq >= w->chunk_hash_cap) {
		w->chunk_hash_cap = w->chunk_hash_cap == 0 ? 8 : w->chunk_hash_cap * 2;
		w->chunk_hash = gn_realloc(w->chunk_hash, w->chunk_hash_cap * sizeof(*w->chunk_hash));
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, w->buf, w->len, w->chunk_hash[w->seq]) < 0) {
		*error_r = "SHA-256 failed";
		return -1;
	}
	if (w->pending_id == 0)
		w->pending_id = inserted;
	w->seq++;
	w->len = 0;
	w->leased_at = mono_now();
	return 0;
}

/* A writer that has a pending row and has not renewed its lease for a
 * while (a slow sender: the chunk fills slowly) renews it now. */
static int writer_renew(struct gn_store_blob_writer *w, const char **error_r)
{
	if (w->pending_id == 0 || mono_now() - w->leased_at < BLOB_LEASE_RENEW_S)
		return 0;
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, w->pending_id);
	const char *p[2] = { lazy_commit_param(), id };
	int64_t c = store_q_count("WITH " LAZY_CTE " UPDATE gn_blobs SET writing_until = now() + "
				  "interval '" BLOB_LEASE "' FROM lazy WHERE id = $2 AND hash IS NULL",
				  2, p, error_r);
	if (c < 0)
		return -1;
	if (c != 1) {
		*error_r = store_errf("the blob being written (id %" PRId64 ") is gone: its lease ran out",
				      w->pending_id);
		return -1;
	}
	w->leased_at = mono_now();
	return 0;
}

int gn_store_blob_write(struct gn_store_blob_writer *w, const void *data,
			size_t len, const char **error_r)
{
	if (w->failed || w->finished) {
		*error_r = w->failed ? "blob writer failed earlier" : "blob already finished";
		return -1;
	}
	const unsigned char *p = data;
	gnutls_hash(w->hash, data, len);
	w->size += len;
	while (len > 0) {
		size_t n = GN_STORE_CHUNK_SIZE - w->len;
		if (n > len)
			n = len;
		memcpy(w->buf + w->len, p, n);
		w->len += n;
		p += n;
		len -= n;
		if (w->len == GN_STORE_CHUNK_SIZE && writer_flush(w, error_r) < 0) {
			w->failed = true;
			return -1;
		}
	}
	if (writer_renew(w, error_r) < 0) {
		w->failed = true;
		return -1;
	}
	return 0;
}

/* The chunks of blob id as stored: their number, total size, highest
 * seq, and (with_hash) the SHA-256 of their bytes in order.  0 or -1. */
struct stored {
	int64_t chunks, bytes, max_seq;
	unsigned char hash[GN_STORE_HASH_SIZE];
	bool has_hash;
};

static int blob_stored(struct gn_pool *pool, int64_t id, bool with_hash, struct stored *st,
		       const char **error_r)
{
	const char *p[2] = { store_i64s(pool, id), with_hash ? "t" : "f" };
	PGresult *res = store_q("SELECT count(*), coalesce(sum(length(data)), 0), coalesce(max(seq), -1), "
				"CASE WHEN $2::boolean THEN encode(sha256(coalesce(string_agg(data, ''::bytea "
				"ORDER BY seq), ''::bytea)), 'hex') END FROM gn_blob_chunks WHERE blob_id = $1",
				2, p, error_r);
	if (res == NULL)
		return -1;
	st->chunks = store_col_i64(res, 0, 0);
	st->bytes = store_col_i64(res, 0, 1);
	st->max_seq = store_col_i64(res, 0, 2);
	st->has_hash = !PQgetisnull(res, 0, 3) && store_hash_from_hex(PQgetvalue(res, 0, 3), st->hash);
	PQclear(res);
	return 0;
}

static int64_t chunks_for(uint64_t size)
{
	return (int64_t)((size + GN_STORE_CHUNK_SIZE - 1) / GN_STORE_CHUNK_SIZE);
}

/* Whether blob id holds exactly size bytes in whole chunks (and, when
 * hash is not NULL, those bytes).  1 yes, 0 no (*error_r says what is
 * wrong), -1 database error. */
static int blob_verify(struct gn_pool *pool, int64_t id, uint64_t size,
		       const unsigned char *hash, const char **error_r)
{
	struct stored st;
	if (blob_stored(pool, id, hash != NULL, &st, error_r) < 0)
		return -1;
	if (st.chunks != chunks_for(size) || st.max_seq != st.chunks - 1 || (uint64_t)st.bytes != size) {
		*error_r = store_errf("blob %" PRId64 " holds %" PRId64 " bytes in %" PRId64
				      " chunks, not the %" PRIu64 " bytes written", id, st.bytes, st.chunks, size);
		return 0;
	}
	if (hash != NULL && (!st.has_hash || memcmp(st.hash, hash, GN_STORE_HASH_SIZE) != 0)) {
		*error_r = store_errf("blob %" PRId64 " does not hold the bytes written (SHA-256 differs)", id);
		return 0;
	}
	return 1;
}

/* Whether the pending blob id holds exactly the chunks w sent, each with
 * the bytes it had (the SHA-256 taken when it was sent).  1 yes, 0 no
 * (*error_r says what is wrong), -1 database error. */
static int blob_verify_chunks(struct gn_pool *pool, const struct gn_store_blob_writer *w, int64_t id,
			      const char **error_r)
{
	const char *p[1] = { store_i64s(pool, id) };
	PGresult *res = store_q("SELECT seq, length(data), encode(sha256(data), 'hex') FROM gn_blob_chunks "
				"WHERE blob_id = $1 ORDER BY seq", 1, p, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res), bad = -1;
	uint64_t bytes = 0;
	for (int i = 0; i < n; i++) {
		unsigned char h[GN_STORE_HASH_SIZE];
		bytes += (uint64_t)store_col_i64(res, i, 1);
		if (bad < 0 && i < w->seq &&
		    (store_col_i64(res, i, 0) != i || !store_hash_from_hex(PQgetvalue(res, i, 2), h) ||
		     memcmp(h, w->chunk_hash[i], GN_STORE_HASH_SIZE) != 0))
			bad = i;
	}
	PQclear(res);
	if (n != w->seq || bytes != w->size) {
		*error_r = store_errf("blob %" PRId64 " holds %d chunks, not the %d (%" PRIu64 " bytes) written",
				      id, n, w->seq, w->size);
		return 0;
	}
	if (bad >= 0) {
		*error_r = store_errf("blob %" PRId64 " does not hold the bytes written (chunk %d differs)",
				      id, bad);
		return 0;
	}
	return 1;
}

/* The body exists already as blob id, recorded with rec_size bytes:
 * checks that it holds them and repairs it from ours when not (a body
 * damaged before these checks existed), then drops our pending row.
 * Returns 0 or -1. */
static int finish_existing(struct gn_store_blob_writer *w, struct gn_pool *pool, int64_t id,
			   uint64_t rec_size, const unsigned char hash[GN_STORE_HASH_SIZE],
			   const char **error_r)
{
	const char *why = NULL;
	int ok = rec_size == w->size ? blob_verify(pool, id, w->size, NULL, &why) : 0;
	if (ok < 0)
		return -1;
	if (rec_size != w->size)
		why = store_errf("blob %" PRId64 " is recorded with %" PRIu64 " bytes, not %" PRIu64,
				 id, rec_size, w->size);
	const char *pid = store_i64s(pool, id), *pend = store_i64s(pool, w->pending_id);
	if (!ok) {
		gn_log(GN_LOG_WARN, "core", "event=blob_repaired blob=%" PRId64 " hash=%s problem=%s",
		       id, gn_store_hash_hex(pool, hash), gn_log_quote(0, why));
		const char *p[2] = { pid, pend };
		const char *ps[2] = { pid, store_u64s(pool, w->size) };
		if (store_q_count("DELETE FROM gn_blob_chunks WHERE blob_id = $1", 1, p, error_r) < 0 ||
		    store_q_count("UPDATE gn_blobs SET size = $2 WHERE id = $1", 2, ps, error_r) < 0)
			return -1;
		if (w->pending_id != 0) {
			if (store_q_count("UPDATE gn_blob_chunks SET blob_id = $1 WHERE blob_id = $2",
					  2, p, error_r) != w->seq) {
				*error_r = store_errf("cannot repair blob %" PRId64 ": chunks of the blob "
						      "being written are missing", id);
				return -1;
			}
		} else if (w->len > 0) {
			const char *v[2] = { pid, (const char *)w->buf };
			int lens[2] = { 0, (int)w->len }, fmts[2] = { 0, 1 };
			PGresult *res = db_query_params("INSERT INTO gn_blob_chunks (blob_id, seq, data) "
							"VALUES ($1, 0, $2)", 2, v, lens, fmts, 0, error_r);
			if (res == NULL)
				return -1;
			PQclear(res);
		}
		if ((ok = blob_verify(pool, id, w->size, hash, error_r)) <= 0)
			return -1;
	}
	if (w->pending_id != 0) {
		const char *p[1] = { pend };
		if (store_q_count("DELETE FROM gn_blobs WHERE id = $1 AND hash IS NULL", 1, p, error_r) < 0)
			return -1;
		w->pending_id = 0;
	}
	return 0;
}

/* The body exists as the blob with hash hp (a parameter): records this
 * finish (finished_at, which holds the blob for the message about to use
 * it: store_blobs_drop_unused()) and adds its structure when it has none.
 * The UPDATE locks the row until the caller's transaction ends, where a
 * SELECT FOR SHARE let two deliveries of one body each hold a share and
 * then deadlock taking their references.  Waiting for a transaction that
 * dropped the last reference and deleted the row finds nothing: 0, and
 * the caller stores the body anew.  1 with *id_r and *size_r, 0, -1. */
static int blob_hold(const char *hp, const char *mime, int64_t *id_r, uint64_t *size_r,
		     const char **error_r)
{
	const char *p[2] = { hp, mime };
	PGresult *res = store_q("UPDATE gn_blobs SET finished_at = now(), mime = coalesce(mime, $2::jsonb) "
				"WHERE hash = $1 RETURNING id, size", 2, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found) {
		*id_r = store_col_i64(res, 0, 0);
		*size_r = (uint64_t)store_col_i64(res, 0, 1);
	}
	PQclear(res);
	return found;
}

/* A body that fit in one chunk: inserted with its chunk in one statement,
 * unless it exists.  Returns 0 or -1. */
static int finish_small(struct gn_store_blob_writer *w, struct gn_pool *pool, const char *mime,
			const unsigned char hash[GN_STORE_HASH_SIZE], const char **error_r)
{
	const char *hp = store_hash_param(pool, hash);
	const char *v[4] = { hp, store_u64s(pool, w->size), mime, (const char *)w->buf };
	int lens[4] = { 0, 0, 0, (int)w->len }, fmts[4] = { 0, 0, 0, 1 };
	for (int attempt = 1;; attempt++) {
		PGresult *res = db_query_params("WITH b AS (INSERT INTO gn_blobs (hash, size, mime, finished_at) "
						"VALUES ($1, $2, $3::jsonb, now()) ON CONFLICT (hash) DO NOTHING "
						"RETURNING id), "
						"c AS (INSERT INTO gn_blob_chunks (blob_id, seq, data) SELECT id, 0, $4 "
						"FROM b WHERE $2::bigint > 0 RETURNING length(data) AS n) "
						"SELECT (SELECT id FROM b), (SELECT count(*) FROM c), "
						"(SELECT coalesce(sum(n), 0) FROM c)", 4, v, lens, fmts, 0, error_r);
		if (res == NULL)
			return -1;
		int64_t id = store_col_i64(res, 0, 0), n = store_col_i64(res, 0, 1);
		int64_t bytes = store_col_i64(res, 0, 2);
		PQclear(res);
		if (id != 0) {
			if (n != chunks_for(w->size) || (uint64_t)bytes != w->size) {
				*error_r = store_errf("blob %" PRId64 ": %" PRId64 " bytes stored of %" PRIu64,
						      id, bytes, w->size);
				return -1;
			}
			return 0;
		}
		/* It exists (committed, or its writer's commit was waited
		 * for): held (blob_hold()), unless it went meanwhile. */
		uint64_t rec;
		int r = blob_hold(hp, mime, &id, &rec, error_r);
		if (r < 0)
			return -1;
		if (r > 0)
			return finish_existing(w, pool, id, rec, hash, error_r);
		if (attempt == BLOB_FINISH_TRIES) {
			*error_r = store_errf("blob %s vanished while it was looked up (%d tries)",
					      gn_store_hash_hex(pool, hash), attempt);
			return -1;
		}
	}
}

/* A body in a pending row: the row becomes the blob unless the body
 * exists.  Inside a transaction (the lock is the transaction's).
 * Returns 0 or -1. */
static int finish_pending(struct gn_store_blob_writer *w, struct gn_pool *pool, const char *mime,
			  const unsigned char hash[GN_STORE_HASH_SIZE], const char **error_r)
{
	char key[16];
	snprintf(key, sizeof(key), "%" PRId32, (int32_t)((uint32_t)hash[0] << 24 | (uint32_t)hash[1] << 16 |
							 (uint32_t)hash[2] << 8 | hash[3]));
	const char *pl[2] = { BLOB_LOCK_CLASS, key };
	if (store_q_count("SELECT pg_advisory_xact_lock($1::int, $2::int)", 2, pl, error_r) < 0)
		return -1;
	/* A new statement: its snapshot sees what the lock's last holder
	 * committed. */
	const char *p[4] = { store_hash_param(pool, hash), store_u64s(pool, w->size), mime,
			     store_i64s(pool, w->pending_id) };
	/* e as blob_hold(): when the row vanishes while e waits for its
	 * lock, e is empty and ours becomes the blob (the unique hash no
	 * longer conflicts: the deletion committed). */
	PGresult *res = store_q("WITH e AS (UPDATE gn_blobs SET finished_at = now(), "
				"mime = coalesce(mime, $3::jsonb) WHERE hash = $1 RETURNING id, size), "
				"f AS (UPDATE gn_blobs SET hash = $1, size = $2, writing_until = NULL, "
				"finished_at = now(), mime = $3::jsonb WHERE id = $4 AND hash IS NULL "
				"AND NOT EXISTS (SELECT 1 FROM e) RETURNING id) "
				"SELECT (SELECT id FROM e), (SELECT size FROM e), (SELECT id FROM f)", 4, p, error_r);
	if (res == NULL)
		return -1;
	int64_t existing = store_col_i64(res, 0, 0), mine = store_col_i64(res, 0, 2);
	uint64_t rec = (uint64_t)store_col_i64(res, 0, 1);
	PQclear(res);
	if (existing != 0)
		return finish_existing(w, pool, existing, rec, hash, error_r);
	if (mine != w->pending_id) {
		*error_r = store_errf("the blob being written (id %" PRId64 ") is gone: its lease ran out",
				      w->pending_id);
		return -1;
	}
	if (blob_verify_chunks(pool, w, mine, error_r) <= 0)
		return -1;
	w->pending_id = 0;	/* it is the blob now */
	return 0;
}

int store_blob_finish(struct gn_store_blob_writer *w, const char *mime,
		      unsigned char hash_r[GN_STORE_HASH_SIZE], uint64_t *size_r,
		      const char **error_r)
{
	if (w->failed || w->finished) {
		*error_r = w->failed ? "blob writer failed earlier" : "blob already finished";
		return -1;
	}
	unsigned char hash[GN_STORE_HASH_SIZE];
	gnutls_hash_output(w->hash, hash);
	w->finished = true;
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int r = store_tx_begin(&tx, error_r);
	if (r == 0) {
		/* A large blob's last part goes to the pending row too. */
		if (w->pending_id != 0 && w->len > 0)
			r = writer_flush(w, error_r);
		if (r == 0)
			r = w->pending_id != 0 ? finish_pending(w, tmp, mime, hash, error_r)
					       : finish_small(w, tmp, mime, hash, error_r);
		r = store_tx_end(&tx, r, error_r);
	}
	gn_pool_free(&tmp);
	if (r < 0) {
		w->failed = true;
		return -1;
	}
	memcpy(hash_r, hash, GN_STORE_HASH_SIZE);
	if (size_r != NULL)
		*size_r = w->size;
	return 0;
}

int gn_store_blob_finish(struct gn_store_blob_writer *w,
			 unsigned char hash_r[GN_STORE_HASH_SIZE],
			 uint64_t *size_r, const char **error_r)
{
	return store_blob_finish(w, NULL, hash_r, size_r, error_r);
}

void gn_store_blob_writer_free(struct gn_store_blob_writer **wp)
{
	struct gn_store_blob_writer *w = *wp;
	if (w == NULL)
		return;
	if (w->pending_id != 0) {
		/* Best effort: gn_store_blob_cleanup() removes what stays once
		 * the lease runs out. */
		char id[32];
		const char *err;
		snprintf(id, sizeof(id), "%" PRId64, w->pending_id);
		const char *p[1] = { id };
		(void)store_q_count("DELETE FROM gn_blobs WHERE id = $1 AND hash IS NULL", 1, p, &err);
	}
	gnutls_hash_deinit(w->hash, NULL);
	gn_free(w->chunk_hash);
	gn_free(w->buf);
	gn_free(w);
	*wp = NULL;
}

void store_blob_writer_abandon(struct gn_store_blob_writer **wp)
{
	if (*wp != NULL)
		(*wp)->pending_id = 0;
	gn_store_blob_writer_free(wp);
}

int gn_store_blob_cleanup(long min_age_seconds, const char **error_r)
{
	char age[32];
	snprintf(age, sizeof(age), "%ld", min_age_seconds < 0 ? 0 : min_age_seconds);
	const char *p[1] = { age };
	/* A blob being written goes only once its writer's lease ran out:
	 * never while a writer holds it, however slowly it writes.  A
	 * finished one by its last finish, not its creation: an old body
	 * finished again is about to get a message (store_blobs_drop_unused()). */
	int64_t c = store_q_count("DELETE FROM gn_blobs WHERE refcount <= 0 AND "
				  "CASE WHEN hash IS NULL THEN writing_until < now() ELSE "
				  "finished_at < now() - make_interval(secs => $1::double precision) END",
				  1, p, error_r);
	return c < 0 ? -1 : (int)c;
}

/* ---- reading bodies ---- */

/* A body keeps the bytes of its last read from the database (its
 * window), at most one chunk's worth: a caller that reads the same bytes
 * twice (IMAP reads a header to find its end, then again to filter its
 * fields) asks the database once.  gn_store_message_open_prefetch() fills
 * the window with the message's first bytes in the query that opens it. */
struct gn_store_body {
	int64_t blob_id;
	uint64_t blob_size;
	unsigned char *prefix;
	size_t prefix_len;
	unsigned char *win;	/* blob bytes [win_off, win_off + win_len) */
	uint64_t win_off;
	size_t win_len, win_cap;
};

/* Keeps len bytes of the blob at off as the body's window. */
static void window_set(struct gn_store_body *b, uint64_t off, const void *data, size_t len)
{
	if (len > b->win_cap) {
		gn_free(b->win);
		b->win = gn_malloc(len);
		b->win_cap = len;
	}
	memcpy(b->win, data, len);
	b->win_off = off;
	b->win_len = len;
}

int gn_store_blob_open(const unsigned char hash[GN_STORE_HASH_SIZE],
		       struct gn_store_body **body_r, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *p[1] = { store_hash_param(tmp, hash) };
	PGresult *res = store_q("SELECT id, size FROM gn_blobs WHERE hash = $1", 1, p, error_r);
	gn_pool_free(&tmp);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	struct gn_store_body *b = gn_calloc(1, sizeof(*b));
	b->blob_id = store_col_i64(res, 0, 0);
	b->blob_size = (uint64_t)store_col_i64(res, 0, 1);
	PQclear(res);
	*body_r = b;
	return 1;
}

struct gn_store_body *store_body_from_data(int64_t blob_id, uint64_t size, const void *data, size_t len)
{
	struct gn_store_body *b = gn_calloc(1, sizeof(*b));
	b->blob_id = blob_id;
	b->blob_size = size;
	if (len > 0)
		window_set(b, 0, data, len);
	return b;
}

/* A binary-format int8 value (network byte order). */
static int64_t binary_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return 0;
	const unsigned char *v = (const unsigned char *)PQgetvalue(res, row, col);
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | v[i];
	return (int64_t)x;
}

int gn_store_message_open_prefetch(int64_t account_id, int64_t mailbox_id, uint32_t uid,
				   size_t prefetch, struct gn_store_body **body_r,
				   const char **error_r)
{
	if (prefetch > GN_STORE_CHUNK_SIZE)
		prefetch = GN_STORE_CHUNK_SIZE;
	char a[32], m[32], u[16], w[32];
	snprintf(a, sizeof(a), "%" PRId64, account_id);
	snprintf(m, sizeof(m), "%" PRId64, mailbox_id);
	snprintf(u, sizeof(u), "%" PRIu32, uid);
	snprintf(w, sizeof(w), "%zu", prefetch);
	const char *p[4] = { a, m, u, w };
	/* The window: the first bytes of the body after the prefix, so at
	 * most prefetch bytes of the message in all (from chunk 0 only). */
	PGresult *res = db_query_params("SELECT b.id, b.size, m.prefix, CASE WHEN $4::int > coalesce(length(m.prefix), 0) "
					"THEN (SELECT substring(c.data FROM 1 FOR $4::int - coalesce(length(m.prefix), 0)) "
					"FROM gn_blob_chunks c WHERE c.blob_id = b.id AND c.seq = 0) END "
					"FROM gn_messages m JOIN gn_blobs b ON b.id = m.blob_id "
					"WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid = $3",
					4, p, NULL, NULL, 1, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	struct gn_store_body *b = gn_calloc(1, sizeof(*b));
	b->blob_id = binary_i64(res, 0, 0);
	b->blob_size = (uint64_t)binary_i64(res, 0, 1);
	size_t plen = (size_t)PQgetlength(res, 0, 2);
	if (!PQgetisnull(res, 0, 2) && plen > 0) {
		b->prefix = gn_malloc(plen);
		memcpy(b->prefix, PQgetvalue(res, 0, 2), plen);
		b->prefix_len = plen;
	}
	/* Kept only when it holds all it should: a short one (a damaged
	 * blob) is left to the reads, which report it. */
	if (!PQgetisnull(res, 0, 3) && prefetch > plen) {
		uint64_t want = prefetch - plen < b->blob_size ? prefetch - plen : b->blob_size;
		if ((uint64_t)PQgetlength(res, 0, 3) == want)
			window_set(b, 0, PQgetvalue(res, 0, 3), (size_t)want);
	}
	PQclear(res);
	*body_r = b;
	return 1;
}

int gn_store_message_open_batch(int64_t account_id, int64_t mailbox_id, const uint32_t *uids,
				size_t n, size_t prefetch, struct gn_store_body **bodies_r,
				const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		bodies_r[i] = NULL;
	if (n == 0)
		return 0;
	if (prefetch > GN_STORE_CHUNK_SIZE)
		prefetch = GN_STORE_CHUNK_SIZE;
	struct gn_pool *tmp = gn_pool_new();
	struct gn_buf *arr = gn_buf_new(0);
	(void)gn_buf_append_str(arr, "{");
	for (size_t i = 0; i < n; i++)
		(void)gn_buf_printf(arr, "%s%" PRIu32, i > 0 ? "," : "", uids[i]);
	(void)gn_buf_append_str(arr, "}");
	const char *p[4] = { store_i64s(tmp, account_id), store_i64s(tmp, mailbox_id), gn_buf_data(arr),
			     store_u64s(tmp, prefetch) };
	/* As gn_store_message_open_prefetch(), a row a message found, with
	 * its UID first. */
	PGresult *res = db_query_params("SELECT m.uid, b.id, b.size, m.prefix, CASE WHEN $4::int > "
					"coalesce(length(m.prefix), 0) THEN (SELECT substring(c.data FROM 1 FOR "
					"$4::int - coalesce(length(m.prefix), 0)) FROM gn_blob_chunks c "
					"WHERE c.blob_id = b.id AND c.seq = 0) END "
					"FROM gn_messages m JOIN gn_blobs b ON b.id = m.blob_id "
					"WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid = ANY($3::bigint[])",
					4, p, NULL, NULL, 1, error_r);
	gn_buf_free(&arr);
	gn_pool_free(&tmp);
	if (res == NULL)
		return -1;
	int found = 0;
	for (int row = 0; row < PQntuples(res); row++) {
		uint32_t uid = (uint32_t)binary_i64(res, row, 0);
		size_t i;
		for (i = 0; i < n && (uids[i] != uid || bodies_r[i] != NULL); i++)
			;
		if (i == n)
			continue;
		struct gn_store_body *b = gn_calloc(1, sizeof(*b));
		b->blob_id = binary_i64(res, row, 1);
		b->blob_size = (uint64_t)binary_i64(res, row, 2);
		size_t plen = (size_t)PQgetlength(res, row, 3);
		if (!PQgetisnull(res, row, 3) && plen > 0) {
			b->prefix = gn_malloc(plen);
			memcpy(b->prefix, PQgetvalue(res, row, 3), plen);
			b->prefix_len = plen;
		}
		if (!PQgetisnull(res, row, 4) && prefetch > plen) {
			uint64_t want = prefetch - plen < b->blob_size ? prefetch - plen : b->blob_size;
			if ((uint64_t)PQgetlength(res, row, 4) == want)
				window_set(b, 0, PQgetvalue(res, row, 4), (size_t)want);
		}
		bodies_r[i] = b;
		found++;
	}
	PQclear(res);
	return found;
}

int gn_store_message_open(int64_t account_id, int64_t mailbox_id, uint32_t uid,
			  struct gn_store_body **body_r, const char **error_r)
{
	return gn_store_message_open_prefetch(account_id, mailbox_id, uid, 0, body_r, error_r);
}

uint64_t gn_store_body_size(const struct gn_store_body *body)
{
	return body->prefix_len + body->blob_size;
}

int gn_store_body_read(struct gn_store_body *body, uint64_t offset, void *buf,
		       size_t len, size_t *got_r, const char **error_r)
{
	unsigned char *out = buf;
	size_t got = 0;
	while (got < len) {
		uint64_t off = offset + got;
		if (off < body->prefix_len) {
			size_t n = body->prefix_len - (size_t)off;
			if (n > len - got)
				n = len - got;
			memcpy(out + got, body->prefix + off, n);
			got += n;
			continue;
		}
		uint64_t boff = off - body->prefix_len;
		if (boff >= body->blob_size)
			break;
		if (boff >= body->win_off && boff - body->win_off < body->win_len) {
			size_t n = body->win_len - (size_t)(boff - body->win_off);
			if (n > len - got)
				n = len - got;
			memcpy(out + got, body->win + (boff - body->win_off), n);
			got += n;
			continue;
		}
		uint64_t seq = boff / GN_STORE_CHUNK_SIZE;
		uint64_t within = boff % GN_STORE_CHUNK_SIZE;
		uint64_t n = GN_STORE_CHUNK_SIZE - within;
		if (n > len - got)
			n = len - got;
		if (n > body->blob_size - boff)
			n = body->blob_size - boff;
		char id[32], sq[32], from[32], cnt[32];
		snprintf(id, sizeof(id), "%" PRId64, body->blob_id);
		snprintf(sq, sizeof(sq), "%" PRIu64, seq);
		snprintf(from, sizeof(from), "%" PRIu64, within + 1);
		snprintf(cnt, sizeof(cnt), "%" PRIu64, n);
		const char *p[4] = { id, sq, from, cnt };
		PGresult *res = db_query_params("SELECT substring(data FROM $3::int FOR $4::int) "
						"FROM gn_blob_chunks WHERE blob_id = $1 AND seq = $2",
						4, p, NULL, NULL, 1, error_r);
		if (res == NULL)
			return -1;
		if (PQntuples(res) != 1 || (uint64_t)PQgetlength(res, 0, 0) != n) {
			PQclear(res);
			*error_r = store_errf("blob %" PRId64 " is missing data at offset %" PRIu64,
					body->blob_id, boff);
			return -1;
		}
		memcpy(out + got, PQgetvalue(res, 0, 0), (size_t)n);
		window_set(body, boff, PQgetvalue(res, 0, 0), (size_t)n);
		PQclear(res);
		got += (size_t)n;
	}
	*got_r = got;
	return 0;
}

void gn_store_body_free(struct gn_store_body **body)
{
	if (*body == NULL)
		return;
	gn_free((*body)->prefix);
	gn_free((*body)->win);
	gn_free(*body);
	*body = NULL;
}

