/*
 * core/store/blob.c: message bodies of the store (gannet/store.h).
 *
 * gn_blobs holds one row a body (hash NULL while a large one is written),
 * gn_blob_chunks its bytes in GN_STORE_CHUNK_SIZE pieces, stored
 * uncompressed (STORAGE EXTERNAL) so that substring() fetches only the
 * bytes a read asks for.  The writer keeps at most one chunk in memory:
 * a body that fits in one is written at finish, after the hash is known
 * (most messages; an existing body then costs one lookup); a larger one
 * goes to a pending row chunk by chunk and moves to its final row at
 * finish, or is deleted when that body exists already.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <string.h>
#include <gnutls/crypto.h>

/* ---- blobs ---- */

struct gn_store_blob_writer {
	gnutls_hash_hd_t hash;
	unsigned char *buf;	/* GN_STORE_CHUNK_SIZE */
	size_t len;
	uint64_t size;
	int64_t pending_id;	/* gn_blobs row with hash NULL, 0 none */
	int seq;		/* next chunk number */
	bool finished;
	bool failed;
};

struct gn_store_blob_writer *gn_store_blob_writer_new(void)
{
	struct gn_store_blob_writer *w = gn_calloc(1, sizeof(*w));
	if (gnutls_hash_init(&w->hash, GNUTLS_DIG_SHA256) < 0)
		gn_log(GN_LOG_ERROR, "core", "event=store_sha256_failed");
	w->buf = gn_malloc(GN_STORE_CHUNK_SIZE);
	return w;
}

static int chunk_insert(int64_t blob_id, int seq, const void *data, size_t len,
			const char **error_r)
{
	char id[32], sq[16];
	snprintf(id, sizeof(id), "%" PRId64, blob_id);
	snprintf(sq, sizeof(sq), "%d", seq);
	const char *v[3] = { id, sq, data };
	int lens[3] = { 0, 0, (int)len };
	int fmts[3] = { 0, 0, 1 };
	PGresult *res = db_query_params("INSERT INTO gn_blob_chunks (blob_id, seq, data) "
					"VALUES ($1, $2, $3)", 3, v, lens, fmts, 0, error_r);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static int writer_flush(struct gn_store_blob_writer *w, const char **error_r)
{
	if (w->pending_id == 0) {
		PGresult *res = store_q("INSERT INTO gn_blobs DEFAULT VALUES RETURNING id", 0, NULL, error_r);
		if (res == NULL)
			return -1;
		w->pending_id = store_col_i64(res, 0, 0);
		PQclear(res);
	}
	if (chunk_insert(w->pending_id, w->seq, w->buf, w->len, error_r) < 0)
		return -1;
	w->seq++;
	w->len = 0;
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
	return 0;
}

/* The id of the finished blob with hash (locked FOR SHARE until the end of
 * the transaction, so that no expunge drops it before the caller's
 * gn_store_message_add()), 0 when there is none. */
static int64_t blob_existing(const char *hashp, const char **error_r)
{
	const char *p[1] = { hashp };
	PGresult *res = store_q("SELECT id FROM gn_blobs WHERE hash = $1 FOR SHARE", 1, p, error_r);
	if (res == NULL)
		return -1;
	int64_t id = PQntuples(res) == 1 ? store_col_i64(res, 0, 0) : 0;
	PQclear(res);
	return id;
}

static int writer_finish(struct gn_store_blob_writer *w, struct gn_pool *pool,
			 const unsigned char hash[GN_STORE_HASH_SIZE], const char **error_r)
{
	const char *hp = store_hash_param(pool, hash);
	int64_t id = blob_existing(hp, error_r);
	if (id < 0)
		return -1;
	if (id > 0) {
		/* The same body exists: keep nothing of ours. */
		if (w->pending_id != 0) {
			const char *p[1] = { store_i64s(pool, w->pending_id) };
			if (store_q_count("DELETE FROM gn_blobs WHERE id = $1", 1, p, error_r) < 0)
				return -1;
			w->pending_id = 0;
		}
		return 0;
	}
	const char *p[2] = { hp, store_u64s(pool, w->size) };
	PGresult *res = store_q("INSERT INTO gn_blobs (hash, size) VALUES ($1, $2) "
			  "ON CONFLICT (hash) DO NOTHING RETURNING id", 2, p, error_r);
	if (res == NULL)
		return -1;
	id = PQntuples(res) == 1 ? store_col_i64(res, 0, 0) : 0;
	PQclear(res);
	if (id == 0) {
		/* Another transaction stored it meanwhile. */
		if (w->pending_id != 0) {
			const char *pp[1] = { store_i64s(pool, w->pending_id) };
			if (store_q_count("DELETE FROM gn_blobs WHERE id = $1", 1, pp, error_r) < 0)
				return -1;
			w->pending_id = 0;
		}
		return blob_existing(hp, error_r) < 0 ? -1 : 0;
	}
	if (w->pending_id != 0) {
		const char *pm[2] = { store_i64s(pool, id), store_i64s(pool, w->pending_id) };
		if (store_q_count("UPDATE gn_blob_chunks SET blob_id = $1 WHERE blob_id = $2", 2, pm, error_r) < 0 ||
		    store_q_count("DELETE FROM gn_blobs WHERE id = $1", 1, pm + 1, error_r) < 0)
			return -1;
		w->pending_id = 0;
	}
	if (w->len > 0 && chunk_insert(id, w->seq, w->buf, w->len, error_r) < 0)
		return -1;
	return 0;
}

int gn_store_blob_finish(struct gn_store_blob_writer *w,
			 unsigned char hash_r[GN_STORE_HASH_SIZE],
			 uint64_t *size_r, const char **error_r)
{
	if (w->failed || w->finished) {
		*error_r = w->failed ? "blob writer failed earlier" : "blob already finished";
		return -1;
	}
	unsigned char hash[GN_STORE_HASH_SIZE];
	gnutls_hash_output(w->hash, hash);
	w->finished = true;
	/* A large blob's last part goes to the pending row first, so that
	 * the chunks move together below. */
	if (w->pending_id != 0 && w->len > 0 && writer_flush(w, error_r) < 0) {
		w->failed = true;
		return -1;
	}
	struct gn_pool *tmp = gn_pool_new();
	int r = writer_finish(w, tmp, hash, error_r);
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

void gn_store_blob_writer_free(struct gn_store_blob_writer **wp)
{
	struct gn_store_blob_writer *w = *wp;
	if (w == NULL)
		return;
	if (w->pending_id != 0) {
		/* Best effort: gn_store_blob_cleanup() removes what stays. */
		char id[32];
		const char *err;
		snprintf(id, sizeof(id), "%" PRId64, w->pending_id);
		const char *p[1] = { id };
		(void)store_q_count("DELETE FROM gn_blobs WHERE id = $1 AND hash IS NULL", 1, p, &err);
	}
	gnutls_hash_deinit(w->hash, NULL);
	gn_free(w->buf);
	gn_free(w);
	*wp = NULL;
}

int gn_store_blob_cleanup(long min_age_seconds, const char **error_r)
{
	char age[32];
	snprintf(age, sizeof(age), "%ld", min_age_seconds < 0 ? 0 : min_age_seconds);
	const char *p[1] = { age };
	int64_t c = store_q_count("DELETE FROM gn_blobs WHERE refcount <= 0 AND "
			    "created_at < now() - make_interval(secs => $1::double precision)",
			    1, p, error_r);
	return c < 0 ? -1 : (int)c;
}

/* ---- reading bodies ---- */

struct gn_store_body {
	int64_t blob_id;
	uint64_t blob_size;
	unsigned char *prefix;
	size_t prefix_len;
};

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

int gn_store_message_open(int64_t account_id, int64_t mailbox_id, uint32_t uid,
			  struct gn_store_body **body_r, const char **error_r)
{
	char a[32], m[32], u[16];
	snprintf(a, sizeof(a), "%" PRId64, account_id);
	snprintf(m, sizeof(m), "%" PRId64, mailbox_id);
	snprintf(u, sizeof(u), "%" PRIu32, uid);
	const char *p[3] = { a, m, u };
	PGresult *res = store_q("SELECT b.id, b.size, m.prefix FROM gn_messages m JOIN gn_blobs b ON b.id = m.blob_id "
			  "WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid = $3", 3, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	struct gn_store_body *b = gn_calloc(1, sizeof(*b));
	b->blob_id = store_col_i64(res, 0, 0);
	b->blob_size = (uint64_t)store_col_i64(res, 0, 1);
	size_t plen = 0;
	unsigned char *pre = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &plen);
	PQclear(res);
	if (pre != NULL && plen > 0) {
		b->prefix = gn_malloc(plen);
		memcpy(b->prefix, pre, plen);
		b->prefix_len = plen;
	}
	PQfreemem(pre);
	*body_r = b;
	return 1;
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
	gn_free(*body);
	*body = NULL;
}

