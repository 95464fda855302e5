/*
 * modules/webhooks/hooks.c: the module's tables (schema/001_webhooks.sql)
 * and all of its SQL: accounts' settings, queueing a hook (with mox's
 * supersede rule, mox.md 1.4), claiming the due ones for the runner,
 * recording results, retiring, and the CLI's reads and changes.  Times
 * are the queue's clock (gn_queue_now()), so tests move them with it.
 */
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <json-c/json.h>

static const char *i64s(struct gn_pool *pool, int64_t v)
{
	return gn_pool_printf(pool, "%" PRId64, v);
}

static const char *epoch(struct gn_pool *pool, double t)
{
	return gn_pool_printf(pool, "%.6f", t);
}

static const char *val(struct gn_pool *pool, const struct gn_db_result *res, size_t row, size_t col)
{
	const char *v = gn_db_result_value(res, row, col);
	return gn_pool_strdup(pool, v != NULL ? v : "");
}

/* mox.md 1.4: 1m, 2m, 4m, 7.5m, 15m, 30m, 1h, 2h, 4h, 8h, 16h. */
double webhooks_backoff(unsigned n)
{
	static const double b[] = { 60, 120, 240, 450, 900, 1800, 3600, 7200, 14400, 28800, 57600 };
	if (n < 1)
		n = 1;
	if (n > sizeof(b) / sizeof(b[0]))
		n = sizeof(b) / sizeof(b[0]);
	return b[n - 1];
}

/* The backoff with mox's jitter: times 1 + (r - 0.5) / 50, r uniform in
 * [0, 1), so within ±1 %.  Without random bytes, no jitter. */
static double backoff_jittered(unsigned n)
{
	uint32_t r = 0;
	double base = webhooks_backoff(n);
	if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r)) < 0)
		return base;
	return base * (1 + ((double)r / 4294967296.0 - 0.5) / 50);
}

/* A text[] literal of strings without '"', '\\', ',' or braces (event
 * names, checked by the caller). */
static const char *text_array(struct gn_pool *pool, const char *const *v, size_t n)
{
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < n; i++)
		gn_buf_printf(b, "%s\"%s\"", i > 0 ? "," : "", v[i]);
	gn_buf_append_str(b, "}");
	const char *s = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

#define ACCOUNT_COLUMNS "outgoing_url, outgoing_authorization, array_to_string(outgoing_events, ','), " \
			"incoming_url, incoming_authorization, secret, keep_retired_s IS NULL, " \
			"COALESCE(keep_retired_s, 0)"

int webhooks_account_get(struct gn_pool *pool, int64_t account_id, struct webhooks_account *a_r,
			 const char **error_r)
{
	const char *p[1] = { i64s(pool, account_id) };
	struct gn_db_result *res = gn_db_query("SELECT " ACCOUNT_COLUMNS " FROM gn_webhook_accounts "
					       "WHERE account_id = $1", 1, p, error_r);
	if (res == NULL)
		return -1;
	if (gn_db_result_rows(res) != 1) {
		gn_db_result_free(&res);
		return 0;
	}
	memset(a_r, 0, sizeof(*a_r));
	a_r->account_id = account_id;
	a_r->outgoing_url = val(pool, res, 0, 0);
	a_r->outgoing_auth = val(pool, res, 0, 1);
	char *ev = (char *)val(pool, res, 0, 2);
	const char **events = gn_pool_alloc(pool, (strlen(ev) / 2 + 2) * sizeof(*events));
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(ev, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		events[n++] = t;
	events[n] = NULL;
	a_r->events = events;
	a_r->n_events = n;
	a_r->incoming_url = val(pool, res, 0, 3);
	a_r->incoming_auth = val(pool, res, 0, 4);
	a_r->secret = val(pool, res, 0, 5);
	a_r->keep_retired_default = gn_db_result_value(res, 0, 6)[0] == 't';
	a_r->keep_retired_s = a_r->keep_retired_default ? webhooks_settings.retired_keep_s
		: strtoll(gn_db_result_value(res, 0, 7), NULL, 10);
	gn_db_result_free(&res);
	return 1;
}

/* "whsec_" and 24 random bytes in base64 (Standard Webhooks). */
static const char *new_secret(struct gn_pool *pool, const char **error_r)
{
	unsigned char key[24];
	if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof(key)) < 0) {
		*error_r = "no random bytes for the secret";
		return NULL;
	}
	gnutls_datum_t in = { key, sizeof(key) }, out = { NULL, 0 };
	int r = gnutls_base64_encode2(&in, &out);
	gnutls_memset(key, 0, sizeof(key));
	if (r < 0) {
		*error_r = "encoding the secret";
		return NULL;
	}
	const char *s = gn_pool_printf(pool, "whsec_%.*s", (int)out.size, (const char *)out.data);
	gnutls_free(out.data);
	return s;
}

static int ensure_row(struct gn_pool *pool, int64_t account_id, const char **error_r)
{
	const char *secret = new_secret(pool, error_r);
	if (secret == NULL)
		return -1;
	const char *p[2] = { i64s(pool, account_id), secret };
	return gn_db_exec("INSERT INTO gn_webhook_accounts (account_id, secret) VALUES ($1, $2) "
			  "ON CONFLICT (account_id) DO NOTHING", 2, p, error_r);
}

int webhooks_account_set(int64_t account_id, const char *which, const char *url, const char *auth,
			 const char *const *events, size_t n_events, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	int r = ensure_row(pool, account_id, error_r);
	if (r == 0) {
		bool out = strcmp(which, "outgoing") == 0;
		const char *p[4] = { i64s(pool, account_id), url, auth != NULL ? auth : "",
				     text_array(pool, events, events != NULL ? n_events : 0) };
		r = gn_db_exec(out ? "UPDATE gn_webhook_accounts SET outgoing_url = $2, outgoing_authorization = $3, "
			       "outgoing_events = $4::text[] WHERE account_id = $1"
			       : "UPDATE gn_webhook_accounts SET incoming_url = $2, incoming_authorization = $3 "
			       "WHERE account_id = $1", out ? 4 : 3, p, error_r);
	}
	gn_pool_free(&pool);
	return r;
}

int webhooks_account_set_keep(int64_t account_id, long long keep_s, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	int r = ensure_row(pool, account_id, error_r);
	if (r == 0) {
		const char *p[2] = { i64s(pool, account_id), keep_s >= 0 ? gn_pool_printf(pool, "%lld", keep_s) : NULL };
		r = gn_db_exec("UPDATE gn_webhook_accounts SET keep_retired_s = $2::bigint WHERE account_id = $1", 2,
			       p, error_r);
	}
	gn_pool_free(&pool);
	return r;
}

int webhooks_account_new_secret(struct gn_pool *pool, int64_t account_id, const char **secret_r,
				const char **error_r)
{
	if (ensure_row(pool, account_id, error_r) < 0)
		return -1;
	const char *secret = new_secret(pool, error_r);
	if (secret == NULL)
		return -1;
	const char *p[2] = { i64s(pool, account_id), secret };
	if (gn_db_exec("UPDATE gn_webhook_accounts SET secret = $2 WHERE account_id = $1", 2, p, error_r) < 0)
		return -1;
	*secret_r = secret;
	return 0;
}

/* Moves pending hook id (locked by the caller's transaction) to the
 * retired ones, when its account keeps them (its own period, else
 * webhooks.retired_keep): success, superseded_by (0 none), an extra
 * result (NULL none) appended.  Then deletes it. */
static int retire(struct gn_pool *pool, int64_t id, bool success, int64_t superseded_by,
		  const char *extra_result, double now, const char **error_r)
{
	const char *p[6] = { i64s(pool, id), success ? "true" : "false",
			     superseded_by != 0 ? i64s(pool, superseded_by) : NULL,
			     extra_result != NULL ? extra_result : "[]", epoch(pool, now),
			     gn_pool_printf(pool, "%lld", webhooks_settings.retired_keep_s) };
	if (gn_db_exec("INSERT INTO gn_webhooks_retired (id, account_id, queue_msg_id, from_id, message_id, "
		       "subject, url, has_authorization, is_incoming, event, payload, submitted, attempts, results, "
		       "superseded_by, success, last_activity, keep_until) "
		       "SELECT h.id, h.account_id, h.queue_msg_id, h.from_id, h.message_id, h.subject, h.url, "
		       "h.auth_header <> '', h.is_incoming, h.event, h.payload, h.submitted, h.attempts, "
		       "h.results || $4::jsonb, $3::bigint, $2::boolean, to_timestamp($5::float8), "
		       "to_timestamp($5::float8) + make_interval(secs => COALESCE(a.keep_retired_s, $6::bigint)) "
		       "FROM gn_webhooks h JOIN gn_webhook_accounts a ON a.account_id = h.account_id "
		       "WHERE h.id = $1 AND COALESCE(a.keep_retired_s, $6::bigint) > 0", 6, p, error_r) < 0)
		return -1;
	return gn_db_exec("DELETE FROM gn_webhooks WHERE id = $1", 1, p, error_r);
}

int webhooks_queue(struct gn_pool *pool, const struct webhooks_account *a, int64_t queue_msg_id,
		   const char *from_id, const char *message_id, const char *subject, bool incoming,
		   const char *event, const char *payload, int64_t *id_r, const char **error_r)
{
	const char *url = incoming ? a->incoming_url : a->outgoing_url;
	const char *auth = incoming ? a->incoming_auth : a->outgoing_auth;
	double now = gn_queue_now();
	if (gn_db_begin(error_r) < 0)
		return -1;
	int64_t old = 0;
	if (queue_msg_id != 0) {
		/* mox.md 1.4: the pending hook of the same queue message is
		 * superseded by the new one. */
		const char *p[2] = { i64s(pool, a->account_id), i64s(pool, queue_msg_id) };
		struct gn_db_result *res = gn_db_query("SELECT id FROM gn_webhooks WHERE account_id = $1 AND "
						       "queue_msg_id = $2 FOR UPDATE", 2, p, error_r);
		if (res == NULL)
			goto fail;
		if (gn_db_result_rows(res) == 1)
			old = strtoll(gn_db_result_value(res, 0, 0), NULL, 10);
		gn_db_result_free(&res);
		/* Retired first (the unique index allows one pending), its
		 * superseded_by set once the new one has its id. */
		if (old != 0 && retire(pool, old, false, 0, NULL, now, error_r) < 0)
			goto fail;
	}
	const char *p[11] = { i64s(pool, a->account_id), i64s(pool, queue_msg_id), from_id != NULL ? from_id : "",
			      message_id != NULL ? message_id : "", subject != NULL ? subject : "", url,
			      auth, incoming ? "true" : "false", event != NULL ? event : "", payload,
			      epoch(pool, now) };
	/* The first attempt at once (mox: NextAttempt = now). */
	struct gn_db_result *res = gn_db_query("INSERT INTO gn_webhooks (account_id, queue_msg_id, from_id, "
					       "message_id, subject, url, auth_header, is_incoming, event, payload, "
					       "submitted, next_attempt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
					       "$10, to_timestamp($11::float8), to_timestamp($11::float8)) "
					       "RETURNING id", 11, p, error_r);
	if (res == NULL)
		goto fail;
	*id_r = strtoll(gn_db_result_value(res, 0, 0), NULL, 10);
	gn_db_result_free(&res);
	if (old != 0 && gn_db_exec("UPDATE gn_webhooks_retired SET superseded_by = $2 WHERE id = $1", 2,
				   (const char *[2]){ i64s(pool, old), i64s(pool, *id_r) }, error_r) < 0)
		goto fail;
	if (gn_db_commit(error_r) < 0)
		return -1;
	if (old != 0)
		gn_log(GN_LOG_INFO, WEBHOOKS_AREA, "event=webhook_superseded id=%" PRId64 " by=%" PRId64, old, *id_r);
	return 0;
fail:
	gn_db_rollback();
	return -1;
}

/* A text[] literal of any strings (URLs). */
static const char *quoted_array(struct gn_pool *pool, const char *const *v, size_t n)
{
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < n; i++) {
		gn_buf_append_str(b, i > 0 ? ",\"" : "\"");
		for (const char *c = v[i]; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				gn_buf_append_str(b, "\\");
			gn_buf_append(b, c, 1);
		}
		gn_buf_append_str(b, "\"");
	}
	gn_buf_append_str(b, "}");
	const char *s = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

int webhooks_claim(struct gn_pool *pool, double now, size_t max, const char *const *busy, size_t n_busy,
		   struct webhooks_claim **claims_r, size_t *n_r, const char **error_r)
{
	*n_r = 0;
	*claims_r = NULL;
	if (max == 0)
		return 0;
	if (gn_db_begin(error_r) < 0)
		return -1;
	const char *p[3] = { epoch(pool, now), quoted_array(pool, busy, n_busy),
			     gn_pool_printf(pool, "%zu", max * 4) };
	struct gn_db_result *res = gn_db_query("SELECT h.id, h.account_id, h.url, h.auth_header, h.payload, "
					       "h.attempts, h.is_incoming, a.secret FROM gn_webhooks h "
					       "JOIN gn_webhook_accounts a ON a.account_id = h.account_id "
					       "WHERE h.next_attempt <= to_timestamp($1::float8) AND "
					       "h.url <> ALL($2::text[]) ORDER BY h.next_attempt, h.id LIMIT $3::int "
					       "FOR UPDATE OF h SKIP LOCKED", 3, p, error_r);
	if (res == NULL) {
		gn_db_rollback();
		return -1;
	}
	size_t rows = gn_db_result_rows(res);
	struct webhooks_claim *c = gn_pool_alloc(pool, (rows > 0 ? rows : 1) * sizeof(*c));
	size_t n = 0;
	for (size_t i = 0; i < rows && n < max; i++) {
		const char *url = gn_db_result_value(res, i, 2);
		bool dup = false;
		/* mox.md 1.4: at most one in flight a URL. */
		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(c[k].url, url) == 0;
		if (dup)
			continue;
		struct webhooks_claim *w = &c[n++];
		w->id = strtoll(gn_db_result_value(res, i, 0), NULL, 10);
		w->account_id = strtoll(gn_db_result_value(res, i, 1), NULL, 10);
		w->url = val(pool, res, i, 2);
		w->auth = val(pool, res, i, 3);
		w->payload = val(pool, res, i, 4);
		w->attempt = (unsigned)strtoul(gn_db_result_value(res, i, 5), NULL, 10) + 1;
		w->incoming = gn_db_result_value(res, i, 6)[0] == 't';
		w->secret = val(pool, res, i, 7);
		/* The next attempt persisted before this one is made. */
		const char *pu[3] = { i64s(pool, w->id), gn_pool_printf(pool, "%u", w->attempt),
				      epoch(pool, now + backoff_jittered(w->attempt)) };
		if (gn_db_exec("UPDATE gn_webhooks SET attempts = $2::int, next_attempt = to_timestamp($3::float8) "
			       "WHERE id = $1", 3, pu, error_r) < 0) {
			gn_db_result_free(&res);
			gn_db_rollback();
			return -1;
		}
	}
	gn_db_result_free(&res);
	if (gn_db_commit(error_r) < 0)
		return -1;
	*claims_r = c;
	*n_r = n;
	return 0;
}

/* [result] as JSON text: mox's HookResult. */
static const char *result_json(struct gn_pool *pool, double start, double duration, const char *url, bool success,
			       int code, const char *error, const char *response, size_t response_len)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Start", json_object_new_string(webhooks_time(pool, start)));
	/* Go's time.Duration: nanoseconds. */
	json_object_object_add(o, "Duration", json_object_new_int64((int64_t)(duration * 1e9)));
	json_object_object_add(o, "URL", json_object_new_string(url));
	json_object_object_add(o, "Success", json_object_new_boolean(success));
	json_object_object_add(o, "Code", json_object_new_int(code));
	json_object_object_add(o, "Error", json_object_new_string(error != NULL ? error : ""));
	json_object_object_add(o, "Response", json_object_new_string_len(response != NULL ? response : "",
									  (int)(response != NULL ? response_len : 0)));
	struct json_object *a = json_object_new_array();
	json_object_array_add(a, o);
	const char *s = gn_pool_strdup(pool, json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	json_object_put(a);
	return s;
}

int webhooks_result(const struct webhooks_claim *c, double start, double duration, bool success, int code,
		    const char *error, const char *response, size_t response_len, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	double now = gn_queue_now();
	if (response_len > WEBHOOKS_RESPONSE_KEEP)
		response_len = WEBHOOKS_RESPONSE_KEEP;
	/* The response as text: bytes that are not UTF-8 would make the
	 * JSON invalid; those become '?'. */
	char *resp = gn_pool_strndup(pool, response != NULL ? response : "", response_len);
	for (size_t i = 0; i < response_len; i++)
		if ((unsigned char)resp[i] >= 0x80 || resp[i] == '\0')
			resp[i] = '?';
	int r = gn_db_begin(error_r);
	const char *p[2] = { i64s(pool, c->id), NULL };
	struct gn_db_result *res = NULL;
	if (r == 0) {
		res = gn_db_query("SELECT attempts FROM gn_webhooks WHERE id = $1 FOR UPDATE", 1, p, error_r);
		if (res == NULL)
			r = -1;
	}
	if (r == 0 && gn_db_result_rows(res) == 0) {
		/* mox.md 1.4: superseded (or canceled) while in flight: the
		 * result goes to the retired record. */
		const char *err = gn_pool_printf(pool, "%s (superseded)", error != NULL ? error : "");
		p[1] = result_json(pool, start, duration, c->url, success, code, err, resp, response_len);
		r = gn_db_exec("UPDATE gn_webhooks_retired SET results = results || $2::jsonb, "
			       "last_activity = now() WHERE id = $1", 2, p, error_r);
	} else if (r == 0) {
		p[1] = result_json(pool, start, duration, c->url, success, code, error, resp, response_len);
		if (success || c->attempt >= WEBHOOKS_MAX_ATTEMPTS) {
			/* Attempts as counted at the claim. */
			r = gn_db_exec("UPDATE gn_webhooks SET results = results || $2::jsonb WHERE id = $1", 2, p,
				       error_r);
			if (r == 0)
				r = retire(pool, c->id, success, 0, NULL, now, error_r);
		} else {
			r = gn_db_exec("UPDATE gn_webhooks SET results = results || $2::jsonb WHERE id = $1", 2, p,
				       error_r);
		}
	}
	gn_db_result_free(&res);
	if (r == 0)
		r = gn_db_commit(error_r);
	else if (gn_db_in_transaction())
		gn_db_rollback();
	gn_pool_free(&pool);
	return r;
}

#define HOOK_COLUMNS "h.id, h.account_id, a.name, h.queue_msg_id, h.from_id, h.message_id, h.subject, h.url, " \
		     "h.auth_header <> '', h.is_incoming, h.event, h.payload, h.results::text, " \
		     "extract(epoch FROM h.submitted), extract(epoch FROM h.next_attempt), h.attempts, " \
		     "false, 0, 0, 0"
#define RETIRED_COLUMNS "h.id, h.account_id, a.name, h.queue_msg_id, h.from_id, h.message_id, h.subject, " \
			"h.url, h.has_authorization, h.is_incoming, h.event, h.payload, h.results::text, " \
			"extract(epoch FROM h.submitted), 0, h.attempts, h.success, " \
			"coalesce(h.superseded_by, 0), extract(epoch FROM h.last_activity), " \
			"extract(epoch FROM h.keep_until)"

static void hook_row(struct gn_pool *pool, const struct gn_db_result *res, size_t i, bool retired,
		     struct webhooks_hook *h)
{
	h->id = strtoll(gn_db_result_value(res, i, 0), NULL, 10);
	h->account_id = strtoll(gn_db_result_value(res, i, 1), NULL, 10);
	h->account = val(pool, res, i, 2);
	h->queue_msg_id = strtoll(gn_db_result_value(res, i, 3), NULL, 10);
	h->from_id = val(pool, res, i, 4);
	h->message_id = val(pool, res, i, 5);
	h->subject = val(pool, res, i, 6);
	h->url = val(pool, res, i, 7);
	h->has_auth = gn_db_result_value(res, i, 8)[0] == 't';
	h->is_incoming = gn_db_result_value(res, i, 9)[0] == 't';
	h->event = val(pool, res, i, 10);
	h->payload = val(pool, res, i, 11);
	h->results = val(pool, res, i, 12);
	h->submitted = strtod(gn_db_result_value(res, i, 13), NULL);
	h->next_attempt = strtod(gn_db_result_value(res, i, 14), NULL);
	h->attempts = (unsigned)strtoul(gn_db_result_value(res, i, 15), NULL, 10);
	h->retired = retired;
	h->success = gn_db_result_value(res, i, 16)[0] == 't';
	h->superseded_by = strtoll(gn_db_result_value(res, i, 17), NULL, 10);
	h->last_activity = strtod(gn_db_result_value(res, i, 18), NULL);
	h->keep_until = strtod(gn_db_result_value(res, i, 19), NULL);
}

int webhooks_list(struct gn_pool *pool, bool retired, int64_t account_id, size_t max,
		  struct webhooks_hook **list_r, size_t *n_r, const char **error_r)
{
	const char *p[2] = { i64s(pool, account_id), gn_pool_printf(pool, "%zu", max) };
	struct gn_db_result *res = gn_db_query(retired
		? "SELECT " RETIRED_COLUMNS " FROM gn_webhooks_retired h JOIN gn_accounts a ON a.id = h.account_id "
		  "WHERE $1::bigint = 0 OR h.account_id = $1 ORDER BY h.id LIMIT $2::int"
		: "SELECT " HOOK_COLUMNS " FROM gn_webhooks h JOIN gn_accounts a ON a.id = h.account_id "
		  "WHERE $1::bigint = 0 OR h.account_id = $1 ORDER BY h.id LIMIT $2::int", 2, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = gn_db_result_rows(res);
	struct webhooks_hook *l = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*l));
	for (size_t i = 0; i < n; i++)
		hook_row(pool, res, i, retired, &l[i]);
	gn_db_result_free(&res);
	*list_r = l;
	*n_r = n;
	return 0;
}

int webhooks_get(struct gn_pool *pool, bool retired, int64_t id, struct webhooks_hook *h_r,
		 const char **error_r)
{
	const char *p[1] = { i64s(pool, id) };
	struct gn_db_result *res = gn_db_query(retired
		? "SELECT " RETIRED_COLUMNS " FROM gn_webhooks_retired h JOIN gn_accounts a ON a.id = h.account_id "
		  "WHERE h.id = $1"
		: "SELECT " HOOK_COLUMNS " FROM gn_webhooks h JOIN gn_accounts a ON a.id = h.account_id "
		  "WHERE h.id = $1", 1, p, error_r);
	if (res == NULL)
		return -1;
	int r = gn_db_result_rows(res) == 1 ? 1 : 0;
	if (r > 0)
		hook_row(pool, res, 0, retired, h_r);
	gn_db_result_free(&res);
	return r;
}

int webhooks_schedule(int64_t id, double when, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *p[2] = { i64s(pool, id), epoch(pool, when) };
	struct gn_db_result *res = gn_db_query("UPDATE gn_webhooks SET next_attempt = to_timestamp($2::float8) "
					       "WHERE id = $1", 2, p, error_r);
	int r = res == NULL ? -1 : gn_db_result_affected_rows(res) > 0 ? 1 : 0;
	gn_db_result_free(&res);
	gn_pool_free(&pool);
	return r;
}

int webhooks_cancel(int64_t id, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	double now = gn_queue_now();
	int r = gn_db_begin(error_r);
	struct gn_db_result *res = NULL;
	if (r == 0) {
		res = gn_db_query("SELECT url FROM gn_webhooks WHERE id = $1 FOR UPDATE", 1,
				  (const char *[1]){ i64s(pool, id) }, error_r);
		r = res == NULL ? -1 : gn_db_result_rows(res) == 1 ? 1 : 0;
	}
	if (r > 0) {
		/* mox: the result "canceled by admin". */
		const char *extra = result_json(pool, now, 0, gn_db_result_value(res, 0, 0), false, 0,
						"canceled by admin", "", 0);
		if (retire(pool, id, false, 0, extra, now, error_r) < 0 || gn_db_commit(error_r) < 0)
			r = -1;
	}
	gn_db_result_free(&res);
	if (r <= 0 && gn_db_in_transaction())
		gn_db_rollback();
	gn_pool_free(&pool);
	return r;
}

int webhooks_cleanup(const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *p[1] = { epoch(pool, gn_queue_now()) };
	struct gn_db_result *res = gn_db_query("DELETE FROM gn_webhooks_retired WHERE keep_until < "
					       "to_timestamp($1::float8)", 1, p, error_r);
	int r = res == NULL ? -1 : (int)gn_db_result_affected_rows(res);
	gn_db_result_free(&res);
	gn_pool_free(&pool);
	return r;
}
