/*
 * core/queue/queue.c: the outbound queue (gannet/queue.h).
 *
 * Tables (migration 012): gn_queue_messages (one row a message: sender,
 * blob, Message-ID, Subject, extra data, release time), gn_queue_recipients
 * (one row a recipient: state, held, next attempt, attempts, last result),
 * gn_queue_attempts (every attempt), their retired twins, and
 * gn_queue_holdrules.
 *
 * The life of a recipient:
 *
 *   add        'queued', next_attempt = release time (or now), held when a
 *              hold rule matches; the message takes a blob reference.
 *   claim      one transaction: the first due recipient (FOR UPDATE SKIP
 *              LOCKED), then every due recipient of the same message and
 *              domain (SKIP LOCKED again: a row another runner holds is
 *              its), set 'delivering' with attempts + 1 and next_attempt
 *              at the end of a lease; commit, then the transport.  A
 *              runner that dies leaves the rows 'delivering' until the
 *              lease ends; they are due again then (never dropped).
 *   done       the DSNs first (so a DSN is never lost for a result that
 *              was recorded: when one cannot be stored, nothing is
 *              recorded and the lease brings the recipient back), then one
 *              transaction records each attempt and moves each recipient
 *              on: retry later, or retire.  A row whose attempt count
 *              changed meanwhile (its lease ran out and another runner
 *              took it) is left to that runner.
 *   retire     the recipient is copied to gn_queue_retired with its
 *              attempts when its account keeps history, then deleted; the
 *              message goes with its last recipient and gives its blob
 *              reference back.
 *
 * Locks, in the store's order: the sender's account row, then queue rows,
 * then blobs.
 *
 * Times are the queue's clock (gn_queue_now()), passed to SQL as
 * parameters, never now(): the tests move that clock.
 */
#include "queue/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <gnutls/crypto.h>
#include <json-c/json.h>

/* ---- the clock ---- */

static double clock_offset;
static bool clock_read;

void queue_clock_set_offset(double seconds)
{
	clock_offset = seconds;
	clock_read = true;
}

double gn_queue_now(void)
{
	if (!clock_read) {
		clock_read = true;
		const char *s = getenv("GANNET_TEST_CLOCK_OFFSET");
		if (s != NULL && *s != '\0') {
			char *end;
			double v = strtod(s, &end);
			if (*end == '\0' && isfinite(v)) {
				clock_offset = v;
				gn_log(GN_LOG_WARN, "core", "event=queue_test_clock offset_s=%.0f", v);
			} else {
				gn_log(GN_LOG_ERROR, "core", "event=queue_test_clock_invalid value=%s",
				       gn_log_quote(0, s));
			}
		}
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6 + clock_offset;
}

const char *queue_now_param(struct gn_pool *pool)
{
	return gn_pool_printf(pool, "%.6f", gn_queue_now());
}

static const char *epoch_param(struct gn_pool *pool, double t)
{
	return gn_pool_printf(pool, "%.6f", t);
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- settings ---- */

unsigned queue_max_attempts(void)
{
	return core_conf != NULL && core_conf->queue_max_attempts > 0 ? core_conf->queue_max_attempts : 8;
}

long long queue_retired_keep_default(void)
{
	return core_conf != NULL ? core_conf->queue_retired_keep_s : 0;
}

double queue_backoff(unsigned attempt)
{
	if (attempt < 1)
		attempt = 1;
	if (attempt > 30)
		attempt = 30;
	return QUEUE_BACKOFF_S * (double)(1u << (attempt - 1));
}

/* ---- adding ---- */

/* A recipient matches a hold rule h when every non-empty field of h
 * equals its own (m: its message, r: the recipient). */
#define HOLD_MATCH "(h.account_id IS NULL OR h.account_id = m.account_id) AND " \
	"(h.sender_domain = '' OR h.sender_domain = m.sender_domain) AND " \
	"(h.recipient_domain = '' OR h.recipient_domain = r.rcpt_domain)"

/* Whether json is an object of strings: NULL yes, else the problem. */
static const char *extra_problem(const char *json)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, json, (int)strlen(json));
	const char *why = NULL;
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success)
		why = "not JSON";
	else if (!json_object_is_type(o, json_type_object))
		why = "not a JSON object";
	else {
		json_object_object_foreach(o, key, val) {
			(void)key;
			if (!json_object_is_type(val, json_type_string)) {
				why = "a value is not a string";
				break;
			}
		}
	}
	json_object_put(o);
	json_tokener_free(tok);
	return why;
}

/* Whether id is a valid FromID: 1 to GN_QUEUE_FROMID_MAX of [A-Za-z0-9_-]
 * (it becomes part of a localpart and a text column). */
bool queue_fromid_valid(const char *id)
{
	size_t n = 0;
	for (const char *p = id; *p != '\0'; p++, n++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return n >= 1 && n <= GN_QUEUE_FROMID_MAX;
}

/* The Message-ID and Subject of a header (the first bytes of a message). */
static void header_fields_of(struct gn_pool *pool, const char *buf, size_t len, const char **msgid_r,
			     const char **subject_r)
{
	struct gn_mime_message *msg = gn_mime_parse(buf, len, NULL);
	const char *v = gn_mime_message_field_raw(msg, GN_MIME_MESSAGE_ID);
	if (v != NULL)
		*msgid_r = gn_pool_strdup(pool, v);
	v = gn_mime_message_field(msg, GN_MIME_SUBJECT);
	if (v != NULL)
		*subject_r = gn_pool_strdup(pool, v);
	gn_mime_message_free(&msg);
}

/* The Message-ID and Subject of m: from the header it gives, else from
 * the first bytes of its body's blob. */
static void header_fields(struct gn_pool *pool, const struct gn_queue_message *m, const char **msgid_r,
			  const char **subject_r)
{
	*msgid_r = "";
	*subject_r = "";
	if (m->header != NULL) {
		header_fields_of(pool, m->header, m->header_len < QUEUE_DSN_HEADER_MAX ? m->header_len
				 : QUEUE_DSN_HEADER_MAX, msgid_r, subject_r);
	} else {
		struct gn_store_body *body = NULL;
		const char *err;
		if (gn_store_blob_open(m->blob_hash, &body, &err) <= 0)
			return;
		size_t want = QUEUE_DSN_HEADER_MAX, got = 0;
		char *buf = gn_malloc(want);
		if (gn_store_body_read(body, 0, buf, want, &got, &err) == 0)
			header_fields_of(pool, buf, got, msgid_r, subject_r);
		gn_free(buf);
		gn_store_body_free(&body);
	}
	/* Kept as text columns: valid UTF-8 only. */
	if (store_text_problem(*msgid_r) != NULL)
		*msgid_r = "";
	if (store_text_problem(*subject_r) != NULL)
		*subject_r = "";
}

/* ---- waking the runners ----
 *
 * A queued message NOTIFYs QUEUE_NOTIFY_CHANNEL so that an idle runner
 * claims it at once rather than at its next tick.  PostgreSQL serialises
 * the commits of notifying transactions (a cluster-wide lock from
 * PreCommit_Notify until after the commit's WAL flush), so that with one
 * NOTIFY a submission transaction those commits never share a flush.  A
 * process whose loop runs for its life (a worker, the runner, "single")
 * notifies at most once in QUEUE_NOTIFY_COALESCE_MS: a message queued
 * within that time of the last NOTIFY goes without one, and a timer sends
 * one, outside any transaction, once that time is over, so that every
 * committed message is followed by a NOTIFY within the window.  Other
 * processes (a CLI command, a test) notify with every message: their
 * loop may not run again.  The runner's tick still claims whatever a
 * lost NOTIFY leaves. */
#define QUEUE_NOTIFY_COALESCE_MS 10

static double notify_last;		/* monotonic seconds */
static bool notify_owed;		/* a message went without one */
static unsigned long notify_deferred;	/* how many, for the debug log */
static struct gn_timer *notify_timer;

static void notify_fire(void *data)
{
	(void)data;
	if (!notify_owed)
		return;
	if (gn_db_in_transaction() > 0) {
		/* Its messages are not committed yet: after them. */
		gn_timer_reset(notify_timer);
		return;
	}
	notify_owed = false;
	notify_last = mono_now();
	unsigned long n = notify_deferred;
	notify_deferred = 0;
	const char *p[1] = { QUEUE_NOTIFY_CHANNEL }, *err;
	PGresult *res = store_q("SELECT pg_notify($1, '')", 1, p, &err);
	if (res == NULL)
		gn_log(GN_LOG_WARN, "core", "event=queue_notify_failed error=%s", gn_log_quote(0, err));
	else
		gn_log(GN_LOG_DEBUG, "core", "event=queue_notify_sent deferred=%lu", n);
	PQclear(res);
}

/* Whether the message being queued carries the NOTIFY itself. */
static bool notify_with_message(void)
{
	const char *kind = gn_module_process_kind();
	if (strcmp(kind, "worker") != 0 && strcmp(kind, "runner") != 0 && strcmp(kind, "single") != 0)
		return true;
	double now = mono_now();
	if (now - notify_last >= QUEUE_NOTIFY_COALESCE_MS / 1000.0) {
		notify_last = now;
		return true;
	}
	notify_deferred++;
	if (!notify_owed) {
		notify_owed = true;
		if (notify_timer == NULL)
			notify_timer = gn_timer_new(QUEUE_NOTIFY_COALESCE_MS, false, notify_fire, NULL);
		else
			gn_timer_reset(notify_timer);
	}
	return false;
}

/* Stores len bytes of data as a blob through a blob writer (which finds
 * a blob of the same bytes, checks it, and takes a large body chunk by
 * chunk): 0 with its hash, or -1. */
static int blob_store(const void *data, size_t len, unsigned char hash[GN_STORE_HASH_SIZE],
		      const char **error_r)
{
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	int r = gn_store_blob_write(w, data, len, error_r) < 0 ||
		gn_store_blob_finish(w, hash, NULL, error_r) < 0 ? -1 : 0;
	gn_store_blob_writer_free(&w);
	return r;
}

/* Queues m, its body the blob of m->blob_hash; with body (body_len bytes
 * of that hash, at most one chunk) the blob is stored in the same
 * statement, or, when one of these bytes exists already (that statement
 * then did nothing), through blob_store() before the statement that only
 * references it.  The held count, or -1. */
static int add_tx(struct gn_pool *pool, const struct gn_queue_message *m, const void *body,
		  size_t body_len, int64_t *message_id_r, const char **error_r)
{
	/* No lock on the account: the foreign key keeps it from going
	 * meanwhile (a key share lock), and nothing here waits for a lock an
	 * account's holder may take, so concurrent submissions of one account
	 * do not wait for each other's commits. */
	const char *msgid, *subject;
	header_fields(pool, m, &msgid, &subject);
	double now = gn_queue_now();
	double release = m->release_at > 0 && (double)m->release_at > now ? (double)m->release_at : 0;
	const char **rc = gn_pool_alloc(pool, m->n_recipients * sizeof(*rc));
	const char **rd = gn_pool_alloc(pool, m->n_recipients * sizeof(*rd));
	const char **rf = gn_pool_alloc(pool, m->n_recipients * sizeof(*rf));
	for (size_t i = 0; i < m->n_recipients; i++) {
		rc[i] = gn_addr_to_string(pool, m->recipients[i]);
		rd[i] = m->recipients[i]->domain;
		rf[i] = m->from_ids != NULL && m->from_ids[i] != NULL ? m->from_ids[i] : "";
	}
	const char *fids = store_text_array(pool, rf, m->n_recipients);
	PGresult *res;
	if (m->from_ids != NULL) {
		/* Unique across the queue and the retired recipients (mox's
		 * ErrFromID): a bounce must match one message only. */
		const char *pf[1] = { fids };
		res = store_q("SELECT f FROM unnest($1::text[]) AS f WHERE f <> '' AND (EXISTS "
			      "(SELECT 1 FROM gn_queue_recipients WHERE from_id = f) OR EXISTS "
			      "(SELECT 1 FROM gn_queue_retired WHERE from_id = f)) LIMIT 1", 1, pf, error_r);
		if (res == NULL)
			return -1;
		bool used = PQntuples(res) > 0;
		PQclear(res);
		if (used) {
			*error_r = "a FromID was used before";
			return -1;
		}
	}
	/* One statement: the blob's reference, the message, its recipients
	 * (each held when a hold rule matches), and a NOTIFY on
	 * QUEUE_NOTIFY_CHANNEL unless every one is held or the NOTIFY is
	 * left to notify_fire() (notify_with_message()), which wakes the
	 * runners after the commit so that a message due now does not wait
	 * for the next tick.  With body the statement stores the blob too,
	 * with its reference counted (one row version, not an insert and an
	 * update), unless a blob of that hash exists: then it does nothing
	 * and counts no blob. */
	const char *p[19] = {
		store_hash_param(pool, m->blob_hash), store_i64s(pool, m->account_id),
		m->sender != NULL ? gn_addr_to_string(pool, m->sender) : "",
		m->sender != NULL ? m->sender->domain : "",
		msgid, subject, m->smtputf8 ? "t" : "f", store_u64s(pool, m->max_attempts),
		m->extra_json != NULL ? m->extra_json : "{}",
		epoch_param(pool, now), release > 0 ? epoch_param(pool, release) : NULL,
		epoch_param(pool, release > 0 ? release : now),
		store_text_array(pool, rc, m->n_recipients), store_text_array(pool, rd, m->n_recipients),
		fids, notify_with_message() ? QUEUE_NOTIFY_CHANNEL : "",
		m->require_tls == GN_QUEUE_TLS_REQUIRED ? "t" :
		m->require_tls == GN_QUEUE_TLS_RELAXED ? "f" : NULL,
		body != NULL ? store_u64s(pool, body_len) : NULL, (const char *)body,
	};
	/* The message and its recipients, after b (the blob's id and size). */
#define ADD_MESSAGE_SQL \
	"m AS (INSERT INTO gn_queue_messages (account_id, blob_id, sender, sender_domain, size, " \
	"message_id, subject, smtputf8, max_attempts, extra, queued_at, release_at, require_tls) " \
	"SELECT $2, b.id, $3, $4, b.size, $5, $6, $7, $8, $9::jsonb, to_timestamp($10::float8), " \
	"to_timestamp($11::float8), $17::boolean FROM b RETURNING id), " \
	"i AS (INSERT INTO gn_queue_recipients (account_id, message_id, rcpt, rcpt_domain, " \
	"next_attempt, from_id, held) SELECT $2, m.id, u.r, u.d, to_timestamp($12::float8), " \
	"NULLIF(u.f, ''), EXISTS (SELECT 1 FROM gn_queue_holdrules h, (SELECT $2::bigint " \
	"AS account_id, $4::text AS sender_domain) m, (SELECT u.d AS rcpt_domain) r WHERE " \
	HOLD_MATCH ") FROM m, unnest($13::text[], $14::text[], $15::text[]) WITH ORDINALITY " \
	"AS u(r, d, f, n) ORDER BY u.n RETURNING id, held) " \
	"SELECT (SELECT id FROM m), (SELECT count(*) FROM b), count(*), " \
	"count(*) FILTER (WHERE held), " \
	"CASE WHEN bool_or(NOT held) AND $16 <> '' THEN pg_notify($16, '') END IS NULL, " \
	"array_to_string(array_agg(id ORDER BY id), ',')"
	bool by_reference = body == NULL;	/* the blob is stored already */
	if (body != NULL) {
		int lens[19] = { [18] = (int)body_len }, fmts[19] = { [18] = 1 };
		res = db_query_params("WITH nb AS (INSERT INTO gn_blobs (hash, size, finished_at, refcount) "
				      "VALUES ($1, $18::bigint, now(), 1) ON CONFLICT (hash) DO NOTHING "
				      "RETURNING id, size), "
				      "c AS (INSERT INTO gn_blob_chunks (blob_id, seq, data) SELECT id, 0, $19 "
				      "FROM nb WHERE $18::bigint > 0 RETURNING length(data) AS n), "
				      "b AS (SELECT id, size FROM nb), " ADD_MESSAGE_SQL ", "
				      "(SELECT coalesce(sum(n), 0) FROM c) FROM i",
				      19, p, lens, fmts, 0, error_r);
		if (res != NULL && PQntuples(res) == 1 && store_col_i64(res, 0, 1) == 0) {
			/* Those bytes are stored already: nothing was done. */
			PQclear(res);
			res = NULL;
			unsigned char hash[GN_STORE_HASH_SIZE];
			if (blob_store(body, body_len, hash, error_r) < 0)
				return -1;
			if (memcmp(hash, m->blob_hash, sizeof(hash)) != 0) {
				*error_r = "the body's blob has another hash than its bytes";
				return -1;
			}
			body = NULL;
			by_reference = true;
		}
	}
	if (by_reference)
		res = store_q("WITH b AS (UPDATE gn_blobs SET refcount = refcount + 1 WHERE hash = $1 "
			      "RETURNING id, size), " ADD_MESSAGE_SQL " FROM i", 17, p, error_r);
#undef ADD_MESSAGE_SQL
	if (res == NULL) {
		if (strcmp(gn_db_error_sqlstate(), "23503") == 0)
			*error_r = store_errf("no account with id %" PRId64, m->account_id);
		return -1;
	}
	if (PQntuples(res) != 1 || store_col_i64(res, 0, 1) != 1) {
		PQclear(res);
		*error_r = "no such blob: the body must be stored first";
		return -1;
	}
	if (body != NULL && store_col_i64(res, 0, 6) != (int64_t)body_len) {
		*error_r = store_errf("blob: %" PRId64 " bytes stored of %zu", store_col_i64(res, 0, 6),
				      body_len);
		PQclear(res);
		return -1;
	}
	if (store_col_i64(res, 0, 2) != (int64_t)m->n_recipients) {
		PQclear(res);
		*error_r = "the recipients were not all queued";
		return -1;
	}
	int64_t id = store_col_i64(res, 0, 0);
	int64_t held = store_col_i64(res, 0, 3);
	if (m->recipient_ids_r != NULL) {
		/* The ids come from one sequence in the insert's order (ORDER
		 * BY u.n), so sorted they are the recipients' order. */
		const char *ids = PQgetvalue(res, 0, 5);
		for (size_t i = 0; i < m->n_recipients; i++) {
			char *end;
			m->recipient_ids_r[i] = strtoll(ids, &end, 10);
			ids = *end == ',' ? end + 1 : end;
		}
	}
	PQclear(res);
	if (message_id_r != NULL)
		*message_id_r = id;
	return (int)held;
}

/* add_tx() for m->body: stored in the queue's statement when it fits one
 * chunk, else through blob_store() first. */
static int add_body(struct gn_pool *pool, struct gn_queue_message *m, int64_t *message_id_r,
		    const char **error_r)
{
	unsigned char *hash = gn_pool_alloc(pool, GN_STORE_HASH_SIZE);
	if (m->header == NULL) {
		m->header = m->body;
		m->header_len = m->body_len;
	}
	m->blob_hash = hash;
	if (m->body_len <= GN_STORE_CHUNK_SIZE) {
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, m->body, m->body_len, hash) < 0) {
			*error_r = "SHA-256 failed";
			return -1;
		}
		return add_tx(pool, m, m->body, m->body_len, message_id_r, error_r);
	}
	if (blob_store(m->body, m->body_len, hash, error_r) < 0)
		return -1;
	return add_tx(pool, m, NULL, 0, message_id_r, error_r);
}

int gn_queue_add(const struct gn_queue_message *mp, int64_t *message_id_r, const char **error_r)
{
	struct gn_queue_message m = { 0 };
	if (mp == NULL || mp->size < offsetof(struct gn_queue_message, smtputf8) + sizeof(bool)) {
		*error_r = "gn_queue_add: struct gn_queue_message too small";
		return -1;
	}
	memcpy(&m, mp, mp->size < sizeof(m) ? mp->size : sizeof(m));
	if (m.n_recipients == 0 || m.recipients == NULL) {
		*error_r = "no recipients";
		return -1;
	}
	if (m.n_recipients > QUEUE_MAX_RECIPIENTS) {
		*error_r = store_errf("too many recipients (%zu, at most %d)", m.n_recipients,
				      QUEUE_MAX_RECIPIENTS);
		return -1;
	}
	if (m.blob_hash == NULL && m.body == NULL) {
		*error_r = "no body";
		return -1;
	}
	if (m.blob_hash != NULL && m.body != NULL) {
		*error_r = "blob_hash and body both given";
		return -1;
	}
	for (size_t i = 0; i < m.n_recipients; i++)
		if (m.recipients[i] == NULL || m.recipients[i]->domain[0] == '\0') {
			*error_r = "a recipient without domain";
			return -1;
		}
	if (m.require_tls != GN_QUEUE_TLS_DEFAULT && m.require_tls != GN_QUEUE_TLS_REQUIRED &&
	    m.require_tls != GN_QUEUE_TLS_RELAXED) {
		*error_r = "require_tls is not one of GN_QUEUE_TLS_*";
		return -1;
	}
	if (m.from_ids != NULL) {
		if (m.sender == NULL) {
			*error_r = "FromIDs without a sender";
			return -1;
		}
		for (size_t i = 0; i < m.n_recipients; i++) {
			if (m.from_ids[i] != NULL && !queue_fromid_valid(m.from_ids[i])) {
				*error_r = "a FromID is not 1 to 64 of A-Z a-z 0-9 - _";
				return -1;
			}
			for (size_t j = 0; m.from_ids[i] != NULL && j < i; j++)
				if (m.from_ids[j] != NULL && strcmp(m.from_ids[i], m.from_ids[j]) == 0) {
					*error_r = "a FromID given twice";
					return -1;
				}
		}
	}
	if (m.extra_json != NULL) {
		const char *why = extra_problem(m.extra_json);
		if (why != NULL) {
			*error_r = store_errf("bad extra data: %s", why);
			return -1;
		}
	}
	struct gn_pool *pool = gn_pool_new();
	struct store_tx tx;
	int r = store_tx_begin(&tx, error_r);
	if (r == 0)
		r = store_tx_end(&tx, m.body != NULL ? add_body(pool, &m, message_id_r, error_r)
				 : add_tx(pool, &m, NULL, 0, message_id_r, error_r), error_r);
	/* In a caller's transaction, which may still roll back, the caller
	 * logs what became of the message (submission: event=queued; DSNs:
	 * event=queue_dsn): at info level this line would only repeat it,
	 * once a message. */
	if (r >= 0)
		gn_log(tx.own ? GN_LOG_INFO : GN_LOG_DEBUG, "core", "event=queue_add account=%" PRId64
		       " recipients=%zu held=%d", m.account_id, m.n_recipients, r);
	gn_pool_free(&pool);
	return r;
}

/* ---- deliveries ---- */

/* What becomes of a recipient after its attempt. */
enum outcome { OUT_DELIVERED, OUT_RETRY, OUT_FAILED };

struct qrcpt {
	int64_t id;
	struct gn_addr *addr;
	const char *rcpt;		/* canonical */
	unsigned attempts;		/* this one's number */
	bool delayed_dsn;		/* sent already */
	bool reported;
	int code;
	const char *enhanced, *text, *host, *ip;
	const char *tls_version, *tls_cipher, *tls_policy;	/* NULL: not reported */
	double reported_at;		/* monotonic */
	enum outcome out;		/* when done */
	bool delayed;			/* done: its delayed DSN went now */
	bool suppressed;		/* on the sender's suppression list */
};

struct gn_queue_delivery {
	struct gn_pool *pool;
	int64_t account_id;
	int64_t message_id;
	const char *domain;
	const char *sender;		/* "" for <> */
	struct gn_addr *sender_addr;	/* NULL for <> */
	const char *from_id;		/* NULL none: every recipient's */
	struct gn_addr *mail_from;	/* the envelope sender; NULL for <> */
	unsigned char hash[GN_STORE_HASH_SIZE];
	const char *message_id_field;
	const char *subject, *extra;	/* for webhooks */
	double queued_at;
	bool smtputf8;
	enum gn_queue_require_tls require_tls;
	uint64_t size;
	unsigned max_attempts;
	double started;			/* the queue's clock */
	double started_mono;
	struct qrcpt *rcpts;
	size_t n;
	/* Recipients kept from the transport (suppress_first()): the last
	 * ones of rcpts, past n until done. */
	size_t n_kept_back;
	bool done;
	/* The body's blob, and its bytes when the claim fetched them (a
	 * small one); NULL: read from the database when opened. */
	int64_t blob_id;
	unsigned char *body_data;
	size_t body_len;
};

const struct gn_addr *gn_queue_delivery_sender(const struct gn_queue_delivery *qd)
{
	return qd->mail_from;
}

const struct gn_addr *gn_queue_delivery_recipient_sender(const struct gn_queue_delivery *qd,
							 size_t i)
{
	return i < qd->n ? qd->mail_from : NULL;
}

const char *gn_queue_delivery_from_id(const struct gn_queue_delivery *qd, size_t i)
{
	return i < qd->n ? qd->from_id : NULL;
}

const char *gn_queue_delivery_domain(const struct gn_queue_delivery *qd)
{
	return qd->domain;
}

size_t gn_queue_delivery_recipient_count(const struct gn_queue_delivery *qd)
{
	return qd->n;
}

const struct gn_addr *gn_queue_delivery_recipient(const struct gn_queue_delivery *qd, size_t i)
{
	return i < qd->n ? qd->rcpts[i].addr : NULL;
}

unsigned gn_queue_delivery_attempt(const struct gn_queue_delivery *qd, size_t i)
{
	return i < qd->n ? qd->rcpts[i].attempts : 0;
}

bool gn_queue_delivery_smtputf8(const struct gn_queue_delivery *qd)
{
	return qd->smtputf8;
}

enum gn_queue_require_tls gn_queue_delivery_require_tls(const struct gn_queue_delivery *qd)
{
	return qd->require_tls;
}

const char *gn_queue_require_tls_name(enum gn_queue_require_tls r)
{
	switch (r) {
	case GN_QUEUE_TLS_REQUIRED:
		return "requiretls";
	case GN_QUEUE_TLS_RELAXED:
		return "relaxed";
	case GN_QUEUE_TLS_DEFAULT:
	default:
		return "default";
	}
}

uint64_t gn_queue_delivery_size(const struct gn_queue_delivery *qd)
{
	return qd->size;
}

int gn_queue_delivery_open_body(const struct gn_queue_delivery *qd, struct gn_store_body **body_r,
				const char **error_r)
{
	if (qd->body_data != NULL) {
		*body_r = store_body_from_data(qd->blob_id, qd->body_len, qd->body_data, qd->body_len);
		return 1;
	}
	return gn_store_blob_open(qd->hash, body_r, error_r);
}

/* A server's text as kept and shown: control characters (CR, LF) become
 * spaces, at most QUEUE_TEXT_MAX bytes, cut at a character boundary. */
static const char *clean_text(struct gn_pool *pool, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s);
	if (n > QUEUE_TEXT_MAX) {
		n = QUEUE_TEXT_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	char *c = gn_pool_strndup(pool, s, n);
	for (char *p = c; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (store_text_problem(c) != NULL)
		for (char *p = c; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	return c;
}

void gn_queue_delivery_report(struct gn_queue_delivery *qd, size_t i, int code, const char *enhanced,
			      const char *text, const char *host, const char *ip)
{
	if (qd == NULL || i >= qd->n || qd->done)
		return;
	struct qrcpt *r = &qd->rcpts[i];
	r->reported = true;
	r->code = code >= 200 && code <= 599 ? code : 0;
	r->enhanced = clean_text(qd->pool, enhanced);
	r->text = clean_text(qd->pool, text);
	r->host = clean_text(qd->pool, host);
	r->ip = clean_text(qd->pool, ip);
	r->reported_at = mono_now();
}

void gn_queue_delivery_report_tls(struct gn_queue_delivery *qd, size_t i, const char *version,
				  const char *cipher, const char *policy)
{
	if (qd == NULL || i >= qd->n || qd->done)
		return;
	struct qrcpt *r = &qd->rcpts[i];
	r->tls_version = clean_text(qd->pool, version);
	r->tls_cipher = clean_text(qd->pool, cipher);
	r->tls_policy = clean_text(qd->pool, policy);
}

static void delivery_free(struct gn_queue_delivery *qd)
{
	gn_pool_free(&qd->pool);
	gn_free(qd);
}

/* The envelope sender of a FromID: sender's localpart up to its first
 * catchall separator, the domain's first separator, the FromID.  Without
 * a separator now (the domain changed since), the sender itself. */
static struct gn_addr *fromid_sender(struct gn_pool *pool, struct gn_addr *sender, const char *fid)
{
	struct gn_store_domain *dom;
	const char *err;
	if (sender == NULL || gn_store_domain_find(pool, sender->domain, &dom, &err) <= 0)
		return sender;
	const char *seps = gn_store_domain_catchall_separators(dom);
	if (seps[0] == '\0')
		return sender;
	size_t sl = 1;	/* the first code point of seps */
	while (((unsigned char)seps[sl] & 0xc0) == 0x80)
		sl++;
	struct gn_addr *base = gn_addr_strip_catchall(pool, sender, seps);
	struct gn_addr *a = gn_pool_alloc(pool, sizeof(*a));
	*a = *base;
	a->localpart = gn_pool_printf(pool, "%s%.*s%s", base->localpart, (int)sl, seps, fid);
	return a;
}

/* A group of due recipients that goes in one delivery: one domain of one
 * message, with one envelope sender (a recipient with a FromID goes
 * alone). */
struct claim_group {
	const char *acc, *msg, *dom, *fid;	/* fid "" none */
	size_t first, n;			/* its rows in the claim's order */
};

static int rcpt_row_cmp(const void *a, const void *b)
{
	const struct qrcpt *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Builds the delivery of group g: its message's row is mres's row mrow
 * (from the claim's message query), its recipients rows[]. */
static struct gn_queue_delivery *delivery_new(struct gn_pool *pool, const struct claim_group *g,
					      const PGresult *mres, int mrow, struct qrcpt *rows,
					      double now, double now_mono)
{
	struct gn_queue_delivery *qd = gn_calloc(1, sizeof(*qd));
	qd->pool = pool;
	qd->account_id = strtoll(g->acc, NULL, 10);
	qd->message_id = strtoll(g->msg, NULL, 10);
	qd->domain = gn_pool_strdup(pool, g->dom);
	qd->sender = store_col_str(pool, mres, mrow, 2);
	const char *perr;
	if (qd->sender[0] != '\0' &&
	    gn_addr_parse(pool, qd->sender, strlen(qd->sender), &qd->sender_addr, &perr) < 0)
		gn_log(GN_LOG_WARN, "core", "event=queue_bad_sender message=%s error=%s", g->msg,
		       gn_log_quote(0, perr));
	qd->from_id = g->fid[0] != '\0' ? gn_pool_strdup(pool, g->fid) : NULL;
	qd->mail_from = qd->from_id != NULL ? fromid_sender(pool, qd->sender_addr, qd->from_id)
		: qd->sender_addr;
	(void)store_hash_from_hex(PQgetvalue(mres, mrow, 3), qd->hash);
	qd->message_id_field = store_col_str(pool, mres, mrow, 4);
	qd->queued_at = strtod(PQgetvalue(mres, mrow, 5), NULL);
	qd->smtputf8 = PQgetvalue(mres, mrow, 6)[0] == 't';
	qd->size = (uint64_t)store_col_i64(mres, mrow, 7);
	qd->max_attempts = (unsigned)store_col_i64(mres, mrow, 8);
	if (qd->max_attempts == 0)
		qd->max_attempts = queue_max_attempts();
	qd->blob_id = store_col_i64(mres, mrow, 9);
	/* 016_requiretls.sql: NULL default, true REQUIRETLS, false relaxed. */
	qd->require_tls = PQgetisnull(mres, mrow, 11) ? GN_QUEUE_TLS_DEFAULT
		: PQgetvalue(mres, mrow, 11)[0] == 't' ? GN_QUEUE_TLS_REQUIRED : GN_QUEUE_TLS_RELAXED;
	qd->subject = store_col_str(pool, mres, mrow, 12);
	qd->extra = store_col_str(pool, mres, mrow, 13);
	qd->n = g->n;
	qd->rcpts = gn_pool_alloc(pool, (qd->n > 0 ? qd->n : 1) * sizeof(*qd->rcpts));
	memset(qd->rcpts, 0, (qd->n > 0 ? qd->n : 1) * sizeof(*qd->rcpts));
	for (size_t i = 0; i < qd->n; i++) {
		struct qrcpt *r = &qd->rcpts[i];
		r->id = rows[g->first + i].id;
		r->rcpt = gn_pool_strdup(pool, rows[g->first + i].rcpt);
		r->attempts = rows[g->first + i].attempts;
		r->delayed_dsn = rows[g->first + i].delayed_dsn;
	}
	/* In the order they were queued. */
	qsort(qd->rcpts, qd->n, sizeof(*qd->rcpts), rcpt_row_cmp);
	for (size_t i = 0; i < qd->n; i++) {
		struct qrcpt *r = &qd->rcpts[i];
		if (gn_addr_parse(pool, r->rcpt, strlen(r->rcpt), &r->addr, &perr) < 0) {
			/* Stored canonical by gn_queue_add(): cannot happen
			 * unless the table was changed by hand.  Failing it is
			 * the transport's job; keep a domain-only stand-in. */
			r->addr = NULL;
			gn_queue_delivery_report(qd, i, 550, "5.1.3", "bad recipient address in the queue",
						 NULL, NULL);
		}
	}
	qd->started = now;
	qd->started_mono = now_mono;
	return qd;
}

/* The bodies of the small messages of a claim (one chunk each, at most
 * PRELOAD_MAX bytes in all), fetched in one query instead of two for
 * each delivery; a body not fetched is read when the transport opens it. */
#define PRELOAD_MAX (4 * 1024 * 1024)

static int64_t be_i64(const char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char)p[i];
	return (int64_t)v;
}

static void preload_bodies(struct gn_queue_delivery **qds, size_t n)
{
	struct gn_pool *tmp = gn_pool_new();
	int64_t *ids = gn_pool_alloc(tmp, (n > 0 ? n : 1) * sizeof(*ids));
	size_t k = 0, total = 0;
	for (size_t i = 0; i < n; i++) {
		if (qds[i]->size > GN_STORE_CHUNK_SIZE || total + qds[i]->size > PRELOAD_MAX)
			continue;
		bool seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = ids[j] == qds[i]->blob_id;
		if (!seen) {
			ids[k++] = qds[i]->blob_id;
			total += qds[i]->size;
		}
	}
	if (k == 0) {
		gn_pool_free(&tmp);
		return;
	}
	const char *p[1] = { store_i64_array(tmp, ids, k) };
	const char *err;
	PGresult *res = db_query_params("SELECT blob_id, data FROM gn_blob_chunks "
					"WHERE blob_id = ANY($1::bigint[]) AND seq = 0", 1, p, NULL, NULL, 1,
					&err);
	gn_pool_free(&tmp);
	if (res == NULL)
		return;	/* read when opened */
	for (int r = 0; r < PQntuples(res); r++) {
		if (PQgetlength(res, r, 0) != 8)
			continue;
		int64_t id = be_i64(PQgetvalue(res, r, 0));
		size_t len = (size_t)PQgetlength(res, r, 1);
		for (size_t i = 0; i < n; i++) {
			struct gn_queue_delivery *qd = qds[i];
			/* Only a whole body: a blob of one chunk. */
			if (qd->blob_id != id || qd->body_data != NULL || (uint64_t)len != qd->size)
				continue;
			qd->body_data = gn_pool_alloc(qd->pool, len > 0 ? len : 1);
			memcpy(qd->body_data, PQgetvalue(res, r, 1), len);
			qd->body_len = len;
		}
	}
	PQclear(res);
}

/* Claims up to max groups in one transaction:
 *   1. up to max due recipients, the earliest first, locked (SKIP LOCKED:
 *      a row another runner holds is its), whose groups are the claim's;
 *   2. every due recipient of those groups (QUEUE_MAX_RECIPIENTS a group
 *      at most; SKIP LOCKED again), set 'delivering' with attempts + 1
 *      and next_attempt at the end of the lease;
 *   3. the groups' messages;
 * then commits, without waiting for the commit to reach the disk
 * (synchronous_commit off): a claim lost in a crash leaves its rows as
 * they were, due, so they are claimed again (a delivery then may happen
 * twice, never not at all).  The deliveries go into qds[0..*n_r), at most
 * max.  Returns 0 (also when nothing is due), or -1. */
int queue_claim_batch(unsigned max, struct gn_queue_delivery **qds, size_t *n_r, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	double now = gn_queue_now();
	const char *np = epoch_param(tmp, now);
	PGresult *res = NULL, *rr = NULL;
	*n_r = 0;
	if (max == 0) {
		gn_pool_free(&tmp);
		return 0;
	}
	if (gn_db_begin(error_r) < 0) {
		gn_pool_free(&tmp);
		return -1;
	}
	if (store_q_count("SET LOCAL synchronous_commit = off", 0, NULL, error_r) < 0)
		goto fail;
	const char *p1[2] = { np, gn_pool_printf(tmp, "%u", max) };
	res = store_q("SELECT account_id, message_id, rcpt_domain, coalesce(from_id, '') "
		      "FROM gn_queue_recipients WHERE NOT held AND next_attempt <= to_timestamp($1::float8) "
		      "ORDER BY next_attempt, id LIMIT $2::int FOR UPDATE SKIP LOCKED", 2, p1, error_r);
	if (res == NULL)
		goto fail;
	size_t seeds = (size_t)PQntuples(res);
	if (seeds == 0) {
		PQclear(res);
		gn_db_rollback();
		gn_pool_free(&tmp);
		return 0;
	}
	struct claim_group *g = gn_pool_alloc(tmp, seeds * sizeof(*g));
	size_t ng = 0;
	for (size_t i = 0; i < seeds; i++) {
		const char *a = PQgetvalue(res, (int)i, 0), *m = PQgetvalue(res, (int)i, 1);
		const char *d = PQgetvalue(res, (int)i, 2), *f = PQgetvalue(res, (int)i, 3);
		size_t k;
		for (k = 0; k < ng; k++)
			if (strcmp(g[k].acc, a) == 0 && strcmp(g[k].msg, m) == 0 &&
			    strcmp(g[k].dom, d) == 0 && strcmp(g[k].fid, f) == 0)
				break;
		if (k == ng) {
			memset(&g[ng], 0, sizeof(g[ng]));
			g[ng].acc = gn_pool_strdup(tmp, a);
			g[ng].msg = gn_pool_strdup(tmp, m);
			g[ng].dom = gn_pool_strdup(tmp, d);
			g[ng].fid = gn_pool_strdup(tmp, f);
			ng++;
		}
	}
	PQclear(res);
	res = NULL;
	const char **ga = gn_pool_alloc(tmp, ng * sizeof(*ga)), **gm = gn_pool_alloc(tmp, ng * sizeof(*gm));
	const char **gd = gn_pool_alloc(tmp, ng * sizeof(*gd)), **gf = gn_pool_alloc(tmp, ng * sizeof(*gf));
	for (size_t k = 0; k < ng; k++) {
		ga[k] = g[k].acc;
		gm[k] = g[k].msg;
		gd[k] = g[k].dom;
		gf[k] = g[k].fid;
	}
	const char *p2[6] = { np, store_text_array(tmp, ga, ng), store_text_array(tmp, gm, ng),
			      store_text_array(tmp, gd, ng), store_text_array(tmp, gf, ng),
			      gn_pool_printf(tmp, "%d", QUEUE_MAX_RECIPIENTS) };
	rr = store_q("UPDATE gn_queue_recipients r SET state = 'delivering', "
		     "attempts = r.attempts + 1, last_attempt = to_timestamp($1::float8), "
		     "next_attempt = to_timestamp($1::float8) + interval '" QUEUE_LEASE "' "
		     "FROM (SELECT d.account_id, d.id, g.gn FROM unnest($2::bigint[], $3::bigint[], "
		     "$4::text[], $5::text[]) WITH ORDINALITY AS g(a, m, dom, f, gn) "
		     "CROSS JOIN LATERAL (SELECT q.account_id, q.id "
		     "FROM gn_queue_recipients q WHERE q.account_id = g.a AND q.message_id = g.m "
		     "AND q.rcpt_domain = g.dom AND NOT q.held AND q.from_id IS NOT DISTINCT FROM NULLIF(g.f, '') "
		     "AND q.next_attempt <= to_timestamp($1::float8) ORDER BY q.id LIMIT $6::int "
		     "FOR UPDATE SKIP LOCKED) d) d "
		     "WHERE r.account_id = d.account_id AND r.id = d.id "
		     "RETURNING d.gn, r.id, r.rcpt, r.attempts, r.delayed_dsn", 6, p2, error_r);
	if (rr == NULL)
		goto fail;
	/* The rows by group, in the groups' order. */
	size_t nrows = (size_t)PQntuples(rr);
	struct qrcpt *rows = gn_pool_alloc(tmp, (nrows > 0 ? nrows : 1) * sizeof(*rows));
	size_t *rg = gn_pool_alloc(tmp, (nrows > 0 ? nrows : 1) * sizeof(*rg));
	for (size_t i = 0; i < nrows; i++) {
		/* Its group's place in the arrays (1-based ordinality). */
		int64_t gn = store_col_i64(rr, (int)i, 0);
		rg[i] = gn >= 1 && (uint64_t)gn <= ng ? (size_t)(gn - 1) : ng;
		if (rg[i] < ng)
			g[rg[i]].n++;
	}
	size_t pos = 0;
	for (size_t k = 0; k < ng; k++) {
		g[k].first = pos;
		pos += g[k].n;
		g[k].n = 0;
	}
	for (size_t i = 0; i < nrows; i++) {
		if (rg[i] == ng)
			continue;	/* cannot happen: the update joins the groups */
		struct claim_group *gk = &g[rg[i]];
		struct qrcpt *r = &rows[gk->first + gk->n++];
		memset(r, 0, sizeof(*r));
		r->id = store_col_i64(rr, (int)i, 1);
		r->rcpt = store_col_str(tmp, rr, (int)i, 2);
		r->attempts = (unsigned)store_col_i64(rr, (int)i, 3);
		r->delayed_dsn = PQgetvalue(rr, (int)i, 4)[0] == 't';
	}
	PQclear(rr);
	rr = NULL;
	const char *p3[2] = { p2[1], p2[2] };
	res = store_q("SELECT m.account_id, m.id, m.sender, encode(b.hash, 'hex'), m.message_id, "
		      "extract(epoch FROM m.queued_at), m.smtputf8, m.size, m.max_attempts, b.id, b.size, "
		      "m.require_tls, m.subject, m.extra::text "
		      "FROM gn_queue_messages m JOIN gn_blobs b ON b.id = m.blob_id "
		      "JOIN (SELECT DISTINCT a, i FROM unnest($1::bigint[], $2::bigint[]) AS u(a, i)) u "
		      "ON m.account_id = u.a AND m.id = u.i", 2, p3, error_r);
	if (res == NULL)
		goto fail;
	if (gn_db_commit(error_r) < 0) {
		PQclear(res);
		gn_pool_free(&tmp);
		return -1;
	}
	double now_mono = mono_now();
	int nm = PQntuples(res);
	for (size_t k = 0; k < ng; k++) {
		if (g[k].n == 0)
			continue;	/* its rows were taken meanwhile */
		int mrow = -1;
		for (int j = 0; j < nm && mrow < 0; j++)
			if (strcmp(PQgetvalue(res, j, 0), g[k].acc) == 0 &&
			    strcmp(PQgetvalue(res, j, 1), g[k].msg) == 0)
				mrow = j;
		if (mrow < 0) {
			/* Cannot happen (the recipients reference it); the
			 * rows come back when the lease ends. */
			gn_log(GN_LOG_ERROR, "core", "event=queue_claim_failed message=%s "
			       "error=\"a queued recipient's message is gone\"", g[k].msg);
			continue;
		}
		qds[(*n_r)++] = delivery_new(gn_pool_new(), &g[k], res, mrow, rows, now, now_mono);
	}
	PQclear(res);
	preload_bodies(qds, *n_r);
	gn_pool_free(&tmp);
	return 0;
fail:
	PQclear(res);
	PQclear(rr);
	gn_db_rollback();
	gn_pool_free(&tmp);
	return -1;
}

int queue_claim(struct gn_queue_delivery **qd_r, const char **error_r)
{
	size_t n = 0;
	if (queue_claim_batch(1, qd_r, &n, error_r) < 0)
		return -1;
	return n > 0 ? 1 : 0;
}

static enum outcome outcome_of(const struct gn_queue_delivery *qd, const struct qrcpt *r)
{
	if (r->code >= 200 && r->code < 300)
		return OUT_DELIVERED;
	if (r->code >= 500)
		return OUT_FAILED;
	return r->attempts >= qd->max_attempts ? OUT_FAILED : OUT_RETRY;
}

/* Moves recipient id of account acc to the retired tables (when the
 * account keeps history) and out of the queue, and the message with its
 * last recipient.  Inside a transaction holding the account's lock.
 * Returns 0 or -1. */
static int retire(struct gn_pool *pool, const char *acc, const char *id, const char *result,
		  double now, const char **error_r)
{
	const char *p[5] = { acc, id, result, epoch_param(pool, now),
			     store_i64s(pool, queue_retired_keep_default()) };
	if (store_q_count("INSERT INTO gn_queue_retired (account_id, id, message_id, sender, rcpt, "
			  "rcpt_domain, from_id, size, message_id_field, subject, extra, queued_at, "
			  "release_at, attempts, last_attempt, last_code, last_enhanced, last_text, result, "
			  "retired_at, keep_until, require_tls) SELECT r.account_id, r.id, m.id, m.sender, r.rcpt, "
			  "r.rcpt_domain, r.from_id, m.size, m.message_id, m.subject, m.extra, m.queued_at, "
			  "m.release_at, r.attempts, r.last_attempt, r.last_code, r.last_enhanced, "
			  "r.last_text, $3, to_timestamp($4::float8), to_timestamp($4::float8) + "
			  "make_interval(secs => COALESCE(a.queue_retired_keep_s, $5::bigint)), m.require_tls "
			  "FROM gn_queue_recipients r "
			  "JOIN gn_queue_messages m ON m.account_id = r.account_id AND m.id = r.message_id "
			  "JOIN gn_accounts a ON a.id = r.account_id "
			  "WHERE r.account_id = $1 AND r.id = $2 AND COALESCE(a.queue_retired_keep_s, $5::bigint) > 0",
			  5, p, error_r) < 0)
		return -1;
	if (store_q_count("INSERT INTO gn_queue_retired_attempts (account_id, recipient_id, seq, "
			  "started_at, duration_ms, host, ip, code, enhanced, text, tls_version, tls_cipher, "
			  "tls_policy) SELECT account_id, recipient_id, seq, started_at, duration_ms, host, "
			  "ip, code, enhanced, text, tls_version, tls_cipher, tls_policy "
			  "FROM gn_queue_attempts t WHERE account_id = $1 AND recipient_id = $2 AND "
			  "EXISTS (SELECT 1 FROM gn_queue_retired WHERE account_id = $1 AND id = $2)",
			  2, p, error_r) < 0)
		return -1;
	PGresult *res = store_q("DELETE FROM gn_queue_recipients WHERE account_id = $1 AND id = $2 "
				"RETURNING message_id", 2, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 0;
	}
	const char *pm[2] = { acc, store_col_str(pool, res, 0, 0) };
	PQclear(res);
	res = store_q("DELETE FROM gn_queue_messages m WHERE account_id = $1 AND id = $2 AND NOT EXISTS "
		      "(SELECT 1 FROM gn_queue_recipients r WHERE r.account_id = $1 AND r.message_id = $2) "
		      "RETURNING blob_id", 2, pm, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		int64_t blob = store_col_i64(res, 0, 0);
		const char *pb[1] = { store_i64s(pool, blob) };
		PQclear(res);
		res = store_q("UPDATE gn_blobs SET refcount = refcount - 1 WHERE id = $1 RETURNING refcount",
			      1, pb, error_r);
		if (res == NULL)
			return -1;
		bool unused = PQntuples(res) == 1 && store_col_i64(res, 0, 0) <= 0;
		PQclear(res);
		if (unused && store_blobs_drop_unused(pool, &blob, 1, error_r) < 0)
			return -1;
		return 0;
	}
	PQclear(res);
	return 0;
}

/* The DSN's status code for a recipient: class 5 (failed) or 4
 * (delayed) with the reported enhanced code's subject and detail. */
static void dsn_rcpt(const struct gn_queue_delivery *qd, const struct qrcpt *r, struct queue_dsn_rcpt *d)
{
	d->rcpt = r->rcpt;
	/* Suppressed: no server said it (the text says why). */
	d->code = r->suppressed ? 0 : r->code;
	d->enhanced = r->enhanced;
	d->text = r->reported ? r->text : "no result from the transport";
	d->host = r->host;
	d->last_attempt = qd->started;
	d->retry_until = 0;
}

/* Delivers the DSNs the results call for: 0, or -1 when one could not be
 * stored (then nothing is recorded). */
static int send_dsns(struct gn_queue_delivery *qd, const enum outcome *out, bool *delayed)
{
	if (qd->sender[0] == '\0')
		return 0;	/* RFC 3461 / 5321 6.1: never for a message from <> */
	struct queue_dsn_rcpt *failed = gn_pool_alloc(qd->pool, qd->n * sizeof(*failed));
	struct queue_dsn_rcpt *late = gn_pool_alloc(qd->pool, qd->n * sizeof(*late));
	size_t nf = 0, nl = 0;
	double last_retry = qd->started;
	for (size_t i = 0; i < qd->n; i++) {
		struct qrcpt *r = &qd->rcpts[i];
		if (out[i] == OUT_FAILED) {
			dsn_rcpt(qd, r, &failed[nf++]);
		} else if (out[i] == OUT_RETRY && r->attempts >= QUEUE_DELAYED_DSN_ATTEMPT && !r->delayed_dsn) {
			struct queue_dsn_rcpt *d = &late[nl++];
			dsn_rcpt(qd, r, d);
			/* Until the last attempt: the backoffs still to come. */
			double t = qd->started;
			for (unsigned a = r->attempts; a < qd->max_attempts; a++)
				t += queue_backoff(a);
			d->retry_until = t;
			if (t > last_retry)
				last_retry = t;
			delayed[i] = true;
		}
	}
	struct queue_dsn dsn = {
		.account_id = qd->account_id, .sender = qd->sender, .blob_hash = qd->hash,
		.message_id = qd->message_id_field, .queued_at = qd->queued_at,
	};
	const char *err;
	if (nf > 0) {
		dsn.kind = QUEUE_DSN_FAILED;
		dsn.rcpts = failed;
		dsn.n_rcpts = nf;
		if (queue_dsn_deliver(&dsn, &err) < 0) {
			gn_log(GN_LOG_ERROR, "core", "event=queue_dsn_failed message=%" PRId64 " kind=failed error=%s",
			       qd->message_id, gn_log_quote(0, err));
			return -1;
		}
	}
	if (nl > 0) {
		dsn.kind = QUEUE_DSN_DELAYED;
		dsn.rcpts = late;
		dsn.n_rcpts = nl;
		if (queue_dsn_deliver(&dsn, &err) < 0) {
			gn_log(GN_LOG_ERROR, "core", "event=queue_dsn_failed message=%" PRId64 " kind=delayed error=%s",
			       qd->message_id, gn_log_quote(0, err));
			return -1;
		}
	}
	return 0;
}

/* Records the results of deliveries qds[0..n) in one transaction: each
 * attempt, each recipient moved on (retry later, or retire), without
 * waiting for the commit to reach the disk (synchronous_commit off: a
 * record lost in a crash leaves the recipients 'delivering' until their
 * lease ends, then they are delivered again: twice, never not at all).
 * A row whose attempt count changed meanwhile (its lease ran out and
 * another runner took it) is left to that runner.  Locks in the store's
 * order: the senders' accounts (by id), queue rows, blobs.  0 or -1
 * (rolled back). */
static int record_batch(struct gn_queue_delivery *const *qds, size_t n, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	double now = gn_queue_now(), mono = mono_now();
	size_t total = 0;
	for (size_t k = 0; k < n; k++)
		total += qds[k]->n;
	size_t cap = total > 0 ? total : 1;
	const char **acc = gn_pool_alloc(tmp, cap * sizeof(*acc)), **id = gn_pool_alloc(tmp, cap * sizeof(*id));
	const char **seq = gn_pool_alloc(tmp, cap * sizeof(*seq)), **st = gn_pool_alloc(tmp, cap * sizeof(*st));
	const char **dur = gn_pool_alloc(tmp, cap * sizeof(*dur)), **host = gn_pool_alloc(tmp, cap * sizeof(*host));
	const char **ip = gn_pool_alloc(tmp, cap * sizeof(*ip)), **code = gn_pool_alloc(tmp, cap * sizeof(*code));
	const char **enh = gn_pool_alloc(tmp, cap * sizeof(*enh)), **txt = gn_pool_alloc(tmp, cap * sizeof(*txt));
	const char **nxt = gn_pool_alloc(tmp, cap * sizeof(*nxt)), **dly = gn_pool_alloc(tmp, cap * sizeof(*dly));
	const char **res_ = gn_pool_alloc(tmp, cap * sizeof(*res_));
	const char **tlsv = gn_pool_alloc(tmp, cap * sizeof(*tlsv)), **tlsc = gn_pool_alloc(tmp, cap * sizeof(*tlsc));
	const char **tlsp = gn_pool_alloc(tmp, cap * sizeof(*tlsp));
	int64_t *accounts = gn_pool_alloc(tmp, (n > 0 ? n : 1) * sizeof(*accounts));
	size_t na = 0, j = 0;
	for (size_t k = 0; k < n; k++) {
		struct gn_queue_delivery *qd = qds[k];
		size_t a;
		for (a = 0; a < na && accounts[a] != qd->account_id; a++)
			;
		if (a == na)
			accounts[na++] = qd->account_id;
		for (size_t i = 0; i < qd->n; i++, j++) {
			struct qrcpt *r = &qd->rcpts[i];
			if (!r->reported)
				r->text = "no result from the transport";
			double d = (r->reported ? r->reported_at : mono) - qd->started_mono;
			acc[j] = store_i64s(tmp, qd->account_id);
			id[j] = store_i64s(tmp, r->id);
			seq[j] = store_u64s(tmp, r->attempts);
			st[j] = epoch_param(tmp, qd->started);
			dur[j] = store_i64s(tmp, (int64_t)(d * 1000.0));
			host[j] = r->host != NULL ? r->host : "";
			ip[j] = r->ip != NULL ? r->ip : "";
			code[j] = store_i64s(tmp, r->code);
			enh[j] = r->enhanced != NULL ? r->enhanced : "";
			txt[j] = r->text != NULL ? r->text : "";
			nxt[j] = epoch_param(tmp, now + (r->out == OUT_RETRY ? queue_backoff(r->attempts) : 0));
			dly[j] = r->delayed ? "t" : "f";
			res_[j] = r->out == OUT_RETRY ? "" : r->out == OUT_DELIVERED ? "delivered" : "failed";
			tlsv[j] = r->tls_version != NULL ? r->tls_version : "";
			tlsc[j] = r->tls_cipher != NULL ? r->tls_cipher : "";
			tlsp[j] = r->tls_policy != NULL ? r->tls_policy : "";
		}
	}
	/* The accounts' locks in id order: two runners never wait in a circle. */
	for (size_t a = 1; a < na; a++)
		for (size_t b = a; b > 0 && accounts[b - 1] > accounts[b]; b--) {
			int64_t t = accounts[b];
			accounts[b] = accounts[b - 1];
			accounts[b - 1] = t;
		}
	PGresult *res = NULL;
	if (gn_db_begin(error_r) < 0) {
		gn_pool_free(&tmp);
		return -1;
	}
	if (store_q_count("SET LOCAL synchronous_commit = off", 0, NULL, error_r) < 0)
		goto fail;
	const char *pl[1] = { store_i64_array(tmp, accounts, na) };
	if (store_q_count("SELECT 1 FROM gn_accounts WHERE id = ANY($1::bigint[]) ORDER BY id "
			  "FOR NO KEY UPDATE", 1, pl, error_r) < 0)
		goto fail;
	const char *keep = store_i64s(tmp, queue_retired_keep_default());
	const char *pa[17] = {
		store_text_array(tmp, acc, total), store_text_array(tmp, id, total),
		store_text_array(tmp, seq, total), store_text_array(tmp, st, total),
		store_text_array(tmp, dur, total), store_text_array(tmp, host, total),
		store_text_array(tmp, ip, total), store_text_array(tmp, code, total),
		store_text_array(tmp, enh, total), store_text_array(tmp, txt, total),
		store_text_array(tmp, nxt, total), store_text_array(tmp, dly, total),
		store_text_array(tmp, res_, total), store_text_array(tmp, tlsv, total),
		store_text_array(tmp, tlsc, total), store_text_array(tmp, tlsp, total), keep,
	};
	/* The attempts of the rows still ours (kept unless the recipient
	 * retires from an account that keeps no history), their rows moved
	 * on; returns the rows that retire. */
	res = store_q("WITH u AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], "
		      "$4::float8[], $5::bigint[], $6::text[], $7::text[], $8::int[], $9::text[], "
		      "$10::text[], $11::float8[], $12::boolean[], $13::text[], $14::text[], $15::text[], "
		      "$16::text[]) WITH ORDINALITY AS u(acc, id, seq, st, dur, host, ip, code, enh, txt, "
		      "nxt, dly, res, tlsv, tlsc, tlsp, n)), "
		      "o AS (UPDATE gn_queue_recipients r SET state = 'queued', "
		      "next_attempt = to_timestamp(u.nxt), last_code = u.code, last_enhanced = u.enh, "
		      "last_text = u.txt, delayed_dsn = r.delayed_dsn OR u.dly, "
		      "last_attempt = to_timestamp(u.st) FROM u WHERE r.account_id = u.acc AND r.id = u.id "
		      "AND r.id = ANY($2::bigint[]) AND r.attempts = u.seq AND r.state = 'delivering' "
		      "RETURNING u.*), "
		      "i AS (INSERT INTO gn_queue_attempts (account_id, recipient_id, seq, started_at, "
		      "duration_ms, host, ip, code, enhanced, text, tls_version, tls_cipher, tls_policy) "
		      "SELECT o.acc, o.id, o.seq, to_timestamp(o.st), o.dur, o.host, o.ip, o.code, o.enh, "
		      "o.txt, o.tlsv, o.tlsc, o.tlsp FROM o "
		      "JOIN gn_accounts a ON a.id = o.acc "
		      "WHERE o.res = '' OR COALESCE(a.queue_retired_keep_s, $17::bigint) > 0 "
		      "ON CONFLICT DO NOTHING) "
		      "SELECT acc, id, res, n FROM o", 17, pa, error_r);
	if (res == NULL)
		goto fail;
	size_t nr = (size_t)PQntuples(res), nret = 0;
	const char **ra = gn_pool_alloc(tmp, (nr > 0 ? nr : 1) * sizeof(*ra));
	const char **ri = gn_pool_alloc(tmp, (nr > 0 ? nr : 1) * sizeof(*ri));
	const char **rr = gn_pool_alloc(tmp, (nr > 0 ? nr : 1) * sizeof(*rr));
	bool *ours = gn_pool_alloc(tmp, cap * sizeof(*ours));
	memset(ours, 0, cap * sizeof(*ours));
	for (size_t i = 0; i < nr; i++) {
		/* Its place in the arrays (1-based ordinality): no search. */
		int64_t at = store_col_i64(res, (int)i, 3);
		if (at >= 1 && (uint64_t)at <= total)
			ours[at - 1] = true;
		if (PQgetvalue(res, (int)i, 2)[0] == '\0')
			continue;
		ra[nret] = store_col_str(tmp, res, (int)i, 0);
		ri[nret] = store_col_str(tmp, res, (int)i, 1);
		rr[nret] = store_col_str(tmp, res, (int)i, 2);
		nret++;
	}
	PQclear(res);
	res = NULL;
	for (size_t t = 0; t < total; t++)
		if (!ours[t])
			gn_log(GN_LOG_WARN, "core", "event=queue_result_stale recipient=%s attempt=%s", id[t],
			       seq[t]);
	if (nret > 0) {
		const char *pr[5] = { store_text_array(tmp, ra, nret), store_text_array(tmp, ri, nret),
				      store_text_array(tmp, rr, nret), epoch_param(tmp, now), keep };
		int64_t kept = store_q_count(
			"INSERT INTO gn_queue_retired (account_id, id, message_id, sender, rcpt, "
			"rcpt_domain, from_id, size, message_id_field, subject, extra, queued_at, "
			"release_at, attempts, last_attempt, last_code, last_enhanced, last_text, result, "
			"retired_at, keep_until, require_tls) SELECT r.account_id, r.id, m.id, m.sender, r.rcpt, "
			"r.rcpt_domain, r.from_id, m.size, m.message_id, m.subject, m.extra, m.queued_at, "
			"m.release_at, r.attempts, r.last_attempt, r.last_code, r.last_enhanced, "
			"r.last_text, u.res, to_timestamp($4::float8), to_timestamp($4::float8) + "
			"make_interval(secs => COALESCE(a.queue_retired_keep_s, $5::bigint)), m.require_tls "
			"FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(acc, id, res) "
			"JOIN gn_queue_recipients r ON r.account_id = u.acc AND r.id = u.id "
			"JOIN gn_queue_messages m ON m.account_id = r.account_id AND m.id = r.message_id "
			"JOIN gn_accounts a ON a.id = r.account_id "
			"WHERE COALESCE(a.queue_retired_keep_s, $5::bigint) > 0", 5, pr, error_r);
		if (kept < 0)
			goto fail;
		if (kept > 0 &&
		    store_q_count("INSERT INTO gn_queue_retired_attempts (account_id, recipient_id, seq, "
				  "started_at, duration_ms, host, ip, code, enhanced, text, tls_version, "
				  "tls_cipher, tls_policy) SELECT t.account_id, t.recipient_id, t.seq, "
				  "t.started_at, t.duration_ms, t.host, t.ip, t.code, t.enhanced, t.text, "
				  "t.tls_version, t.tls_cipher, t.tls_policy FROM unnest($1::bigint[], $2::bigint[]) AS u(acc, id) "
				  "JOIN gn_queue_attempts t ON t.account_id = u.acc AND t.recipient_id = u.id "
				  "WHERE EXISTS (SELECT 1 FROM gn_queue_retired x WHERE x.account_id = u.acc "
				  "AND x.id = u.id)", 2, pr, error_r) < 0)
			goto fail;
		res = store_q("DELETE FROM gn_queue_recipients r USING unnest($1::bigint[], $2::bigint[]) "
			      "AS u(acc, id) WHERE r.account_id = u.acc AND r.id = u.id "
			      "AND r.id = ANY($2::bigint[]) RETURNING r.account_id, r.message_id", 2, pr,
			      error_r);
		if (res == NULL)
			goto fail;
		size_t nd = (size_t)PQntuples(res);
		const char **da = gn_pool_alloc(tmp, (nd > 0 ? nd : 1) * sizeof(*da));
		const char **dm = gn_pool_alloc(tmp, (nd > 0 ? nd : 1) * sizeof(*dm));
		for (size_t i = 0; i < nd; i++) {
			da[i] = store_col_str(tmp, res, (int)i, 0);
			dm[i] = store_col_str(tmp, res, (int)i, 1);
		}
		PQclear(res);
		res = NULL;
		if (nd > 0) {
			/* The messages whose last recipient went, and their
			 * blob references. */
			const char *pm[2] = { store_text_array(tmp, da, nd), store_text_array(tmp, dm, nd) };
			/* (ids are unique: the account ids only make the
			 * pairs) */
			res = store_q("DELETE FROM gn_queue_messages m WHERE m.id = ANY($2::bigint[]) "
				      "AND m.account_id = ANY($1::bigint[]) AND NOT EXISTS (SELECT 1 FROM "
				      "gn_queue_recipients r WHERE r.account_id = m.account_id AND "
				      "r.message_id = m.id) RETURNING m.blob_id", 2, pm, error_r);
			if (res == NULL)
				goto fail;
			size_t nb = (size_t)PQntuples(res);
			const char **blobs = gn_pool_alloc(tmp, (nb > 0 ? nb : 1) * sizeof(*blobs));
			for (size_t i = 0; i < nb; i++)
				blobs[i] = store_col_str(tmp, res, (int)i, 0);
			PQclear(res);
			res = NULL;
			if (nb > 0) {
				const char *pb[1] = { store_text_array(tmp, blobs, nb) };
				res = store_q("UPDATE gn_blobs b SET refcount = b.refcount - (SELECT count(*) "
					      "FROM unnest($1::bigint[]) AS x WHERE x = b.id) "
					      "WHERE b.id = ANY($1::bigint[]) RETURNING b.id, b.refcount", 1, pb,
					      error_r);
				if (res == NULL)
					goto fail;
				size_t nu = 0, rows = (size_t)PQntuples(res);
				int64_t *unused = gn_pool_alloc(tmp, (rows > 0 ? rows : 1) * sizeof(*unused));
				for (size_t i = 0; i < rows; i++)
					if (store_col_i64(res, (int)i, 1) <= 0)
						unused[nu++] = store_col_i64(res, (int)i, 0);
				PQclear(res);
				res = NULL;
				if (nu > 0 && store_blobs_drop_unused(tmp, unused, nu, error_r) < 0)
					goto fail;
			}
		}
	}
	if (gn_db_commit(error_r) < 0) {
		gn_pool_free(&tmp);
		return -1;
	}
	gn_pool_free(&tmp);
	return 0;
fail:
	PQclear(res);
	gn_db_rollback();
	gn_pool_free(&tmp);
	return -1;
}

static unsigned in_flight;
static void queue_kick(void);

unsigned queue_in_flight(void)
{
	return in_flight;
}

/* The runner records its results in batches (record_batch()): a
 * delivery that ends waits in pending until the flush, RECORD_DELAY_MS
 * after the first one waited, or at once when RECORD_BATCH_MAX wait.
 * Outside the runner (`gannet queue run`, tests) each is recorded when it
 * ends. */
#define RECORD_BATCH_MAX 64
#define RECORD_DELAY_MS 20UL
static bool runner_active;
static bool flush_armed;
static struct gn_queue_delivery *pending[RECORD_BATCH_MAX];
static size_t n_pending;
static struct gn_timer *flush_timer;

static void recorded(struct gn_queue_delivery *qd)
{
	for (size_t i = 0; i < qd->n; i++) {
		struct qrcpt *r = &qd->rcpts[i];
		gn_log(GN_LOG_INFO, "core", "event=queue_attempt message=%" PRId64 " recipient=%" PRId64
		       " attempt=%u code=%d result=%s", qd->message_id, r->id, r->attempts, r->code,
		       r->out == OUT_DELIVERED ? "delivered" : r->out == OUT_FAILED ? "failed" : "retry");
		const char *event = r->out == OUT_DELIVERED ? "delivered" : r->out == OUT_FAILED ? "failed"
			: "delayed";
		bool suppressing = false;
		if (r->suppressed) {
			gn_log(GN_LOG_INFO, "core", "event=queue_suppressed message=%" PRId64 " recipient=%"
			       PRId64 " rcpt=%s", qd->message_id, r->id, gn_log_quote(0, r->rcpt));
			event = "suppressed";
		} else if (r->out == OUT_FAILED && r->code != 0) {
			/* mox.md 2.7: failed for good with a remote code. */
			suppressing = queue_suppress_failure(qd->account_id, r->id, r->rcpt, r->addr, r->code,
							     r->enhanced, "queue");
		}
		/* mox.md 1.6: SMTPCode is 0 in the queue's "delivered" events. */
		queue_webhook_event(qd->account_id, r->id, event, r->rcpt, qd->from_id, qd->message_id_field,
				    qd->subject, qd->extra, r->out == OUT_DELIVERED || r->suppressed ? 0 : r->code,
				    r->out == OUT_DELIVERED ? NULL : r->enhanced,
				    r->out == OUT_DELIVERED ? NULL : r->reported ? r->text : "no result from the transport",
				    suppressing);
	}
}

/* Records qds[0..n) and frees them.  A batch that fails is recorded
 * again one delivery at a time, so that one bad row does not hold back
 * the others; what still fails is logged, and its recipients come back
 * when their lease ends. */
static void record_and_free(struct gn_queue_delivery **qds, size_t n)
{
	const char *err = NULL;
	if (n > 1 && record_batch(qds, n, &err) == 0) {
		for (size_t k = 0; k < n; k++)
			recorded(qds[k]);
	} else {
		if (n > 1)
			gn_log(GN_LOG_WARN, "core", "event=queue_record_batch_failed deliveries=%zu error=%s",
			       n, gn_log_quote(0, err != NULL ? err : "?"));
		for (size_t k = 0; k < n; k++) {
			err = NULL;
			if (record_batch(&qds[k], 1, &err) == 0)
				recorded(qds[k]);
			else
				gn_log(GN_LOG_ERROR, "core", "event=queue_record_failed message=%" PRId64
				       " error=%s", qds[k]->message_id, gn_log_quote(0, err != NULL ? err : "?"));
		}
	}
	for (size_t k = 0; k < n; k++)
		delivery_free(qds[k]);
}

static void flush_pending(void)
{
	flush_armed = false;
	struct gn_queue_delivery *batch[RECORD_BATCH_MAX];
	size_t n = n_pending;
	memcpy(batch, pending, n * sizeof(*batch));
	n_pending = 0;
	if (n > 0)
		record_and_free(batch, n);
}

static void flush_fire(void *data)
{
	(void)data;
	flush_pending();
}

void queue_shutdown(void)
{
	flush_pending();
	gn_timer_free(&flush_timer);
	queue_smtp_shutdown();
}

void gn_queue_delivery_done(struct gn_queue_delivery *qd)
{
	if (qd == NULL || qd->done)
		return;
	qd->done = true;
	qd->n += qd->n_kept_back;
	qd->n_kept_back = 0;
	enum outcome *out = gn_pool_alloc(qd->pool, (qd->n + 1) * sizeof(*out));
	bool *delayed = gn_pool_alloc(qd->pool, (qd->n + 1) * sizeof(*delayed));
	for (size_t i = 0; i < qd->n; i++) {
		out[i] = outcome_of(qd, &qd->rcpts[i]);
		delayed[i] = false;
	}
	/* DSNs first: when one cannot be stored, nothing is recorded and the
	 * lease brings the recipients back (a DSN is never lost). */
	if (send_dsns(qd, out, delayed) < 0) {
		delivery_free(qd);
	} else {
		for (size_t i = 0; i < qd->n; i++) {
			qd->rcpts[i].out = out[i];
			qd->rcpts[i].delayed = delayed[i];
		}
		if (!runner_active) {
			record_and_free(&qd, 1);
		} else {
			if (n_pending == RECORD_BATCH_MAX)
				flush_pending();
			pending[n_pending++] = qd;
			if (!flush_armed) {
				flush_armed = true;
				if (flush_timer == NULL)
					flush_timer = gn_timer_new(RECORD_DELAY_MS, false, flush_fire, NULL);
				else
					gn_timer_reset(flush_timer);
			}
		}
	}
	if (in_flight > 0)
		in_flight--;
	queue_kick();
}

/* ---- the transport ---- */

static void no_transport(struct gn_queue_delivery *qd, void *data)
{
	(void)data;
	for (size_t i = 0; i < gn_queue_delivery_recipient_count(qd); i++)
		gn_queue_delivery_report(qd, i, 0, "4.3.0", "no transport configured", NULL, NULL);
	gn_queue_delivery_done(qd);
}

static struct gn_queue_transport transport = {
	sizeof(struct gn_queue_transport), "none", no_transport, NULL,
};
static bool transport_set;

int gn_queue_transport_set(const struct gn_queue_transport *t, const char **error_r)
{
	if (transport_set) {
		*error_r = "a queue transport is set already";
		return -1;
	}
	if (t == NULL || t->size < offsetof(struct gn_queue_transport, data) + sizeof(void *) ||
	    t->deliver == NULL || t->name == NULL) {
		*error_r = "malformed struct gn_queue_transport";
		return -1;
	}
	transport.deliver = t->deliver;
	transport.data = t->data;
	transport.name = gn_strdup(t->name);
	transport_set = true;
	return 0;
}

/* A module's transport, else the core's SMTP transport, unless the config
 * says none (or there is no config: unit tests of the queue alone). */
static const struct gn_queue_transport *current_transport(void)
{
	if (transport_set)
		return &transport;
	if (core_conf != NULL && !core_conf->queue_no_transport)
		return &queue_transport_smtp;
	return &transport;
}

/* The suppression list (core/queue/suppress.c), when a module provides
 * it: recipients on the sender account's list (one lookup for all of
 * them) fail for good now (mox.md 2.7; mox records no code, here 550
 * 5.7.1), and when the lookup fails every one fails temporarily (never
 * delivered unchecked); they are moved behind the others and kept from
 * the transport until gn_queue_delivery_done().  Returns whether none is
 * left for the transport. */
static bool suppress_first(struct gn_queue_delivery *qd)
{
	if (!queue_suppress_active() || qd->n == 0)
		return false;
	const struct gn_addr **addrs = gn_pool_alloc(qd->pool, qd->n * sizeof(*addrs));
	bool *listed = gn_pool_alloc(qd->pool, qd->n * sizeof(*listed));
	for (size_t i = 0; i < qd->n; i++)
		addrs[i] = qd->rcpts[i].addr;
	const char *err = NULL;
	int ns = queue_suppress_check(qd->pool, qd->account_id, addrs, qd->n, listed, &err);
	if (ns == 0)
		return false;
	if (ns < 0)
		gn_log(GN_LOG_WARN, "core", "event=queue_suppress_lookup_failed message=%" PRId64
		       " error=%s", qd->message_id, gn_log_quote(0, err));
	struct qrcpt *keep = gn_pool_alloc(qd->pool, qd->n * sizeof(*keep));
	struct qrcpt *back = gn_pool_alloc(qd->pool, qd->n * sizeof(*back));
	size_t nk = 0, nb = 0;
	for (size_t i = 0; i < qd->n; i++) {
		struct qrcpt *r = &qd->rcpts[i];
		if (ns > 0 && !listed[i]) {
			keep[nk++] = *r;
			continue;
		}
		struct qrcpt *b = &back[nb++];
		*b = *r;
		b->reported = true;
		b->reported_at = mono_now();
		if (ns > 0) {
			b->suppressed = true;
			b->code = 550;
			b->enhanced = "5.7.1";
			b->text = gn_pool_printf(qd->pool, "not delivering to recipient address %s: "
						 "address is on suppression list", r->rcpt);
		} else {
			b->code = 0;
			b->enhanced = "4.3.0";
			b->text = clean_text(qd->pool, gn_pool_printf(qd->pool, "suppression list lookup "
								      "failed: %s", err));
		}
	}
	if (nb == 0)
		return false;
	memcpy(qd->rcpts, keep, nk * sizeof(*keep));
	memcpy(qd->rcpts + nk, back, nb * sizeof(*back));
	qd->n = nk;
	qd->n_kept_back = nb;
	return nk == 0;
}

/* Claims at most this many groups in one transaction. */
#define CLAIM_BATCH_MAX 256

int gn_queue_run(unsigned max, const char **error_r)
{
	const struct gn_queue_transport *tr = current_transport();
	struct gn_queue_delivery *qds[CLAIM_BATCH_MAX];
	size_t n = 0;
	if (max > CLAIM_BATCH_MAX)
		max = CLAIM_BATCH_MAX;
	if (queue_claim_batch(max, qds, &n, error_r) < 0)
		return -1;
	/* Counted first: a transport may finish a delivery before it
	 * returns. */
	in_flight += (unsigned)n;
	for (size_t i = 0; i < n; i++) {
		struct gn_queue_delivery *qd = qds[i];
		gn_log(GN_LOG_DEBUG, "core", "event=queue_deliver message=%" PRId64 " domain=%s recipients=%zu "
		       "transport=%s", qd->message_id, gn_log_quote(0, qd->domain), qd->n, tr->name);
		if (suppress_first(qd))
			gn_queue_delivery_done(qd);
		else
			tr->deliver(qd, tr->data);
	}
	return (int)n;
}

/* ---- administration ---- */

/* The queued recipient id, locked, with its account: 1, 0 none, -1. */
static int rcpt_lock(struct gn_pool *pool, int64_t id, const char **acc_r, const char **error_r)
{
	const char *p[1] = { store_i64s(pool, id) };
	PGresult *res = store_q("SELECT account_id FROM gn_queue_recipients WHERE id = $1", 1, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	*acc_r = store_col_str(pool, res, 0, 0);
	PQclear(res);
	if (gn_store_account_lock(strtoll(*acc_r, NULL, 10), error_r) < 0)
		return -1;
	const char *p2[2] = { *acc_r, p[0] };
	int64_t c = store_q_count("SELECT 1 FROM gn_queue_recipients WHERE account_id = $1 AND id = $2 "
				  "FOR UPDATE", 2, p2, error_r);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

static int simple_update(const char *sql, int64_t id, const char *arg, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *p[2] = { store_i64s(pool, id), arg };
	int64_t c = store_q_count(sql, arg != NULL ? 2 : 1, p, error_r);
	gn_pool_free(&pool);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int gn_queue_hold(int64_t id, bool hold, const char **error_r)
{
	return simple_update("UPDATE gn_queue_recipients SET held = $2::boolean WHERE id = $1",
			     id, hold ? "t" : "f", error_r);
}

int gn_queue_schedule(int64_t id, time_t when, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	int r = simple_update("UPDATE gn_queue_recipients SET next_attempt = to_timestamp($2::float8) "
			      "WHERE id = $1 AND state = 'queued'", id, epoch_param(pool, (double)when), error_r);
	gn_pool_free(&pool);
	return r;
}

/* fail / drop: retires a queued (not delivering) recipient now. */
static int end_now(int64_t id, bool with_dsn, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *acc = NULL;
	int r = gn_db_begin(error_r);
	if (r == 0)
		r = rcpt_lock(pool, id, &acc, error_r);
	PGresult *res = NULL;
	if (r > 0) {
		const char *p[2] = { acc, store_i64s(pool, id) };
		res = store_q("SELECT r.rcpt, m.sender, encode(b.hash, 'hex'), m.message_id, "
			      "extract(epoch FROM m.queued_at), r.state, r.last_code, r.last_enhanced, r.last_text, "
			      "coalesce(extract(epoch FROM r.last_attempt), 0), r.from_id, m.subject, m.extra::text "
			      "FROM gn_queue_recipients r JOIN gn_queue_messages m ON m.account_id = r.account_id "
			      "AND m.id = r.message_id JOIN gn_blobs b ON b.id = m.blob_id "
			      "WHERE r.account_id = $1 AND r.id = $2", 2, p, error_r);
		if (res == NULL)
			r = -1;
		else if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 5), "queued") != 0) {
			if (PQntuples(res) == 1)
				*error_r = "the recipient is being delivered: try again when the attempt is over";
			r = PQntuples(res) == 1 ? -1 : 0;
		}
	}
	if (r > 0 && with_dsn && PQgetvalue(res, 0, 1)[0] != '\0') {
		unsigned char hash[GN_STORE_HASH_SIZE];
		(void)store_hash_from_hex(PQgetvalue(res, 0, 2), hash);
		struct queue_dsn_rcpt d = {
			.rcpt = store_col_str(pool, res, 0, 0), .code = (int)store_col_i64(res, 0, 6),
			.enhanced = "5.0.0", .text = "failed by the administrator",
			.last_attempt = strtod(PQgetvalue(res, 0, 9), NULL),
		};
		struct queue_dsn dsn = {
			.kind = QUEUE_DSN_FAILED, .account_id = strtoll(acc, NULL, 10),
			.sender = store_col_str(pool, res, 0, 1), .blob_hash = hash,
			.message_id = store_col_str(pool, res, 0, 3),
			.queued_at = strtod(PQgetvalue(res, 0, 4), NULL), .rcpts = &d, .n_rcpts = 1,
		};
		/* Not inside our transaction: the delivery has its own.  The
		 * row stays locked meanwhile; a DSN that cannot be stored
		 * fails the command and changes nothing. */
		gn_db_rollback();
		if (queue_dsn_deliver(&dsn, error_r) < 0)
			r = -1;
		else if ((r = gn_db_begin(error_r)) == 0)
			r = rcpt_lock(pool, id, &acc, error_r);
	}
	/* For the webhook after the commit (mox.md 1.6: "failed", "canceled"). */
	const char *wh_rcpt = NULL, *wh_msgid = NULL, *wh_fid = NULL, *wh_subject = NULL, *wh_extra = NULL;
	int wh_code = 0;
	if (r > 0 && res != NULL) {
		wh_rcpt = store_col_str(pool, res, 0, 0);
		wh_msgid = store_col_str(pool, res, 0, 3);
		wh_code = (int)store_col_i64(res, 0, 6);
		wh_fid = PQgetisnull(res, 0, 10) ? NULL : store_col_str(pool, res, 0, 10);
		wh_subject = store_col_str(pool, res, 0, 11);
		wh_extra = store_col_str(pool, res, 0, 12);
	}
	PQclear(res);
	if (r > 0) {
		const char *p[2] = { acc, store_i64s(pool, id) };
		if (store_q_count("UPDATE gn_queue_recipients SET last_text = $3 WHERE account_id = $1 AND id = $2",
				  3, (const char *[3]){ p[0], p[1], with_dsn ? "failed by the administrator"
								      : "dropped by the administrator" },
				  error_r) < 0 ||
		    retire(pool, acc, p[1], with_dsn ? "failed" : "dropped", gn_queue_now(), error_r) < 0)
			r = -1;
	}
	if (r > 0) {
		if (gn_db_commit(error_r) < 0)
			r = -1;
		else
			queue_webhook_event(strtoll(acc, NULL, 10), id, with_dsn ? "failed" : "canceled", wh_rcpt,
					    wh_fid, wh_msgid, wh_subject, wh_extra, with_dsn ? wh_code : 0, NULL,
					    with_dsn ? "failed by the administrator" : "dropped by the administrator",
					    false);
	} else if (gn_db_in_transaction()) {
		gn_db_rollback();
	}
	gn_pool_free(&pool);
	return r;
}

int gn_queue_fail(int64_t id, const char **error_r)
{
	return end_now(id, true, error_r);
}

int gn_queue_drop(int64_t id, const char **error_r)
{
	return end_now(id, false, error_r);
}

int gn_queue_holdrule_add(int64_t account_id, const char *sender_domain, const char *recipient_domain,
			  int64_t *id_r, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *sd = "", *rd = "";
	int r = 0;
	if (sender_domain != NULL && *sender_domain != '\0' &&
	    gn_addr_parse_domain(pool, sender_domain, strlen(sender_domain), &sd, NULL, error_r) < 0)
		r = -1;
	if (r == 0 && recipient_domain != NULL && *recipient_domain != '\0' &&
	    gn_addr_parse_domain(pool, recipient_domain, strlen(recipient_domain), &rd, NULL, error_r) < 0)
		r = -1;
	struct store_tx tx;
	if (r == 0 && (r = store_tx_begin(&tx, error_r)) == 0) {
		const char *p[3] = { account_id > 0 ? store_i64s(pool, account_id) : NULL, sd, rd };
		PGresult *res = store_q("INSERT INTO gn_queue_holdrules (account_id, sender_domain, "
					"recipient_domain) VALUES ($1, $2, $3) RETURNING id", 3, p, error_r);
		int64_t held = -1;
		if (res != NULL) {
			int64_t id = store_col_i64(res, 0, 0);
			PQclear(res);
			const char *ph[1] = { store_i64s(pool, id) };
			/* The same matching as for new messages (HOLD_MATCH). */
			held = store_q_count("UPDATE gn_queue_recipients r SET held = true FROM "
					     "gn_queue_messages m, gn_queue_holdrules h WHERE h.id = $1 AND "
					     "m.account_id = r.account_id AND m.id = r.message_id AND NOT r.held "
					     "AND " HOLD_MATCH, 1, ph, error_r);
			if (id_r != NULL)
				*id_r = id;
		}
		r = store_tx_end(&tx, held < 0 ? -1 : (int)held, error_r);
	}
	gn_pool_free(&pool);
	return r;
}

int gn_queue_holdrule_rm(int64_t id, const char **error_r)
{
	return simple_update("DELETE FROM gn_queue_holdrules WHERE id = $1", id, NULL, error_r);
}

/* ---- FromIDs ---- */

int gn_queue_fromid_find(struct gn_pool *pool, const char *from_id, int64_t *id_r,
			 int64_t *message_id_r, const char **rcpt_r, const char **state_r,
			 const char **error_r)
{
	if (from_id == NULL || !queue_fromid_valid(from_id))
		return 0;
	const char *p[1] = { from_id };
	PGresult *res = store_q("SELECT id, message_id, rcpt, 'queued' FROM gn_queue_recipients "
				"WHERE from_id = $1 UNION ALL SELECT id, message_id, rcpt, result "
				"FROM gn_queue_retired WHERE from_id = $1 LIMIT 1", 1, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) > 0;
	if (found) {
		if (id_r != NULL)
			*id_r = store_col_i64(res, 0, 0);
		if (message_id_r != NULL)
			*message_id_r = store_col_i64(res, 0, 1);
		if (rcpt_r != NULL)
			*rcpt_r = store_col_str(pool, res, 0, 2);
		if (state_r != NULL)
			*state_r = store_col_str(pool, res, 0, 3);
	}
	PQclear(res);
	return found;
}

int gn_queue_retired_cleanup(const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *p[1] = { queue_now_param(pool) };
	int64_t c = store_q_count("DELETE FROM gn_queue_retired WHERE keep_until <= to_timestamp($1::float8)",
				  1, p, error_r);
	gn_pool_free(&pool);
	return c < 0 ? -1 : (int)c;
}

/* ---- runner jobs and registration ---- */

#define QUEUE_RUN_INTERVAL_MS 1000UL
#define QUEUE_CLEANUP_INTERVAL_MS (3600UL * 1000)

/* The runner claims what is due every QUEUE_RUN_INTERVAL_MS, and also
 * at once (from the loop, through kick_timer) when one of its deliveries
 * ends and when a message is queued anywhere (NOTIFY on
 * QUEUE_NOTIFY_CHANNEL): a tick alone would cap a runner at
 * queue.concurrency deliveries a second.  It claims when at most half of
 * queue.concurrency deliveries are under way, as many as fill it up, in
 * one transaction: a busy queue is claimed in batches, not a message at
 * a time.  A claim that finds nothing due starts nothing, so a delivery
 * that fails (its next attempt later) does not make a loop.  Only the
 * runner (the process whose job ran) is kicked; `gannet queue run`
 * drives gn_queue_run() itself. */
static struct gn_timer *kick_timer;

static void run_job(void *data);

static void kick_fire(void *data)
{
	run_job(data);
}

static void queue_kick(void)
{
	if (!runner_active)
		return;
	if (kick_timer == NULL)
		kick_timer = gn_timer_new(0, false, kick_fire, NULL);
	else
		gn_timer_reset(kick_timer);
}

static void on_queue_notify(const char *channel, const char *payload, void *data)
{
	(void)channel;
	(void)payload;
	(void)data;
	queue_kick();
}

static void run_job(void *data)
{
	(void)data;
	const char *err;
	if (!runner_active) {
		runner_active = true;
		if (gn_db_listen(QUEUE_NOTIFY_CHANNEL, on_queue_notify, NULL, &err) < 0)
			gn_log(GN_LOG_WARN, "core", "event=queue_listen_failed error=%s", gn_log_quote(0, err));
	}
	unsigned conc = core_conf != NULL && core_conf->queue_concurrency > 0 ? core_conf->queue_concurrency : 20;
	if (in_flight > conc / 2)
		return;
	if (gn_queue_run(conc - in_flight, &err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=queue_run_failed error=%s", gn_log_quote(0, err));
}

static void cleanup_job(void *data)
{
	(void)data;
	const char *err;
	int n = gn_queue_retired_cleanup(&err);
	if (n < 0)
		gn_log(GN_LOG_WARN, "core", "event=queue_retired_cleanup_failed error=%s", gn_log_quote(0, err));
	else if (n > 0)
		gn_log(GN_LOG_INFO, "core", "event=queue_retired_cleanup removed=%d", n);
}

/* MTA-STS policies near their expiry fetched again (mtasts.c). */
#define QUEUE_MTASTS_REFRESH_INTERVAL_MS (300UL * 1000)

static void mtasts_refresh_job(void *data)
{
	(void)data;
	const char *err;
	if (queue_mtasts_refresh(10, &err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=mtasts_refresh_failed error=%s", gn_log_quote(0, err));
}

int queue_register(void)
{
	if (queue_cli_register() < 0 || queue_fromid_register() < 0 || queue_mtasts_cli_register() < 0)
		return -1;
	const char *err;
	if (gn_runner_job_register(modules_core_ctx(), "queue-deliver", QUEUE_RUN_INTERVAL_MS, run_job, NULL,
				   &err) < 0 ||
	    gn_runner_job_register(modules_core_ctx(), "queue-retired-cleanup", QUEUE_CLEANUP_INTERVAL_MS,
				   cleanup_job, NULL, &err) < 0 ||
	    gn_runner_job_register(modules_core_ctx(), "queue-mtasts-refresh", QUEUE_MTASTS_REFRESH_INTERVAL_MS,
				   mtasts_refresh_job, NULL, &err) < 0) {
		conf_error("queue: %s", err);
		return -1;
	}
	return 0;
}
