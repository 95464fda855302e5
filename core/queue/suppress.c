/*
 * core/queue/suppress.c: the queue's side of the service "suppression.v1"
 * (gannet/suppression.h, mox.md 2.7), consulted only when a loaded module
 * provides it:
 *
 *   queue_suppress_check()    before an attempt: is a recipient on the
 *                             sender account's list?
 *   queue_suppress_failure()  after a recipient failed for good with a
 *                             remote SMTP code: counts the two recipients
 *                             to the same address that left the queue
 *                             before it (mox counts retired messages by
 *                             their last activity) and hands it all to
 *                             the provider's failure().
 *   queue_suppress_dsn()      a DSN came back to a retired recipient's
 *                             FromID (fromid.c): its one recipient
 *                             block's Action failed with a code (from
 *                             Diagnostic-Code, else Status) is such a
 *                             failure, source "DSN" (mox.md 1.8, 2.7).
 *
 * queue.c calls them (gn_queue_run(), recorded()), fromid.c the last.
 */
#include "queue/internal.h"

#include <gannet/deliver.h>
#include <gannet/mime.h>
#include <gannet/service.h>
#include <gannet/suppression.h>

#include <inttypes.h>
#include <string.h>

/* The provider's table, or NULL.  Services are provided in the register
 * phase only: looked up once. */
static const struct gn_suppression_ops *ops(void)
{
	static bool looked;
	static const struct gn_suppression_ops *o;
	if (!looked) {
		o = gn_service_lookup(GN_SUPPRESSION_SERVICE);
		looked = true;
	}
	return o;
}

bool queue_suppress_active(void)
{
	const struct gn_suppression_ops *o = ops();
	return GN_OPS_HAS(o, lookup) && o->lookup != NULL;
}

int queue_suppress_check(struct gn_pool *pool, int64_t account_id, const struct gn_addr *const *rcpts,
			 size_t n, bool *suppressed_r, const char **error_r)
{
	const struct gn_suppression_ops *o = ops();
	for (size_t i = 0; i < n; i++)
		suppressed_r[i] = false;
	if (!GN_OPS_HAS(o, lookup) || o->lookup == NULL || n == 0)
		return 0;
	*error_r = NULL;
	int count = 0;
	if (GN_OPS_HAS(o, lookup_many) && o->lookup_many != NULL) {
		count = o->lookup_many(pool, account_id, rcpts, n, suppressed_r, error_r);
	} else {
		/* A provider without lookup_many(): one lookup a recipient. */
		for (size_t i = 0; i < n && count >= 0; i++) {
			int r = o->lookup(pool, account_id, rcpts[i], NULL, error_r);
			if (r < 0)
				count = -1;
			else if (r > 0)
				suppressed_r[i] = true, count++;
		}
	}
	if (count < 0 && *error_r == NULL)
		*error_r = "suppression list lookup failed";
	return count < 0 ? -1 : count;
}

bool queue_suppress_failure(int64_t account_id, int64_t rcpt_id, const char *rcpt,
			    const struct gn_addr *addr, int code, const char *enhanced,
			    const char *source)
{
	const struct gn_suppression_ops *o = ops();
	if (!GN_OPS_HAS(o, failure) || o->failure == NULL || code == 0)
		return false;
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	/* mox's suppressionProcess: the two latest other retired messages to
	 * the recipient address; here the sender account's only (the lists
	 * are per account). */
	const char *p[3] = { store_i64s(pool, account_id), rcpt, store_i64s(pool, rcpt_id) };
	PGresult *res = store_q("SELECT result FROM gn_queue_retired WHERE account_id = $1 AND rcpt = $2 "
				"AND id <> $3 ORDER BY retired_at DESC, id DESC LIMIT 2", 3, p, &err);
	if (res == NULL) {
		gn_log(GN_LOG_WARN, "core", "event=queue_suppress_failed recipient=%" PRId64 " error=%s",
		       rcpt_id, gn_log_quote(0, err != NULL ? err : "?"));
		gn_pool_free(&pool);
		return false;
	}
	struct gn_suppression_failure f = {
		.size = sizeof(f), .account_id = account_id, .rcpt = addr, .code = code,
		.enhanced = enhanced != NULL && enhanced[0] != '\0' ? enhanced : NULL, .source = source,
	};
	f.previous = (unsigned)PQntuples(res);
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), "delivered") != 0)
			f.previous_failed++;
	PQclear(res);
	err = NULL;
	int r = o->failure(&f, &err);
	if (r < 0)
		gn_log(GN_LOG_WARN, "core", "event=queue_suppress_failed recipient=%" PRId64 " error=%s",
		       rcpt_id, gn_log_quote(0, err != NULL ? err : "?"));
	gn_pool_free(&pool);
	return r > 0;
}

int queue_dsn_of_delivery(struct gn_pool *pool, struct gn_delivery *d, int64_t account_id,
			  struct queue_dsn_status *ds, const char **why_r)
{
	const struct gn_mime_message *msg = gn_delivery_message(d);
	const struct gn_mime_part *root = msg != NULL ? gn_mime_message_root(msg) : NULL;
	const struct gn_mime_part *st = root != NULL ? gn_mime_part_child(root, 1) : NULL;
	struct gn_store_body *body = NULL;
	const char *err = NULL;
	int ret = -1;
	if (st == NULL) {
		*why_r = "no delivery status part";
		return -1;
	}
	const char *enc = gn_mime_part_encoding(st);
	if (enc != NULL && enc[0] != '\0' && strcmp(enc, "7bit") != 0 && strcmp(enc, "8bit") != 0 &&
	    strcmp(enc, "binary") != 0) {
		*why_r = "delivery status with a content-transfer-encoding";
		return -1;
	}
	/* The stored message is its prefix and the bytes the parser saw. */
	int r = gn_store_message_open(account_id, gn_delivery_current_mailbox_id(d),
				      gn_delivery_current_uid(d), &body, &err);
	if (r <= 0) {
		*why_r = r < 0 ? gn_pool_strdup(pool, err) : "stored message not found";
		goto out;
	}
	uint64_t total = gn_store_body_size(body), size = gn_mime_message_size(msg);
	if (total < size) {
		*why_r = "stored message shorter than parsed";
		goto out;
	}
	size_t len = gn_mime_part_body_size(st);
	if (len > QUEUE_DSN_STATUS_MAX)
		len = QUEUE_DSN_STATUS_MAX;
	char *buf = gn_pool_alloc(pool, len > 0 ? len : 1);
	size_t got = 0;
	if (gn_store_body_read(body, total - size + gn_mime_part_body_offset(st), buf, len, &got, &err) < 0) {
		*why_r = gn_pool_strdup(pool, err);
		goto out;
	}
	queue_dsn_status_read(pool, buf, got, ds);
	ret = 0;
out:
	gn_store_body_free(&body);
	return ret;
}

bool queue_suppress_dsn(struct gn_pool *pool, int64_t account_id, int64_t rcpt_id, const char *rcpt,
			const struct queue_dsn_status *ds)
{
	const struct gn_suppression_ops *o = ops();
	if (!GN_OPS_HAS(o, failure) || o->failure == NULL)
		return false;
	if (ds->recipients != 1 || ds->action == NULL || strcmp(ds->action, "failed") != 0 || ds->code == 0)
		return false;	/* not a failure, or no code (mox: nothing for the list) */
	struct gn_addr *addr;
	const char *err;
	if (gn_addr_parse(pool, rcpt, strlen(rcpt), &addr, &err) < 0) {
		gn_log(GN_LOG_INFO, "core", "event=queue_dsn_unread recipient=%" PRId64 " reason=%s", rcpt_id,
		       gn_log_quote(0, err));
		return false;
	}
	gn_log(GN_LOG_INFO, "core", "event=queue_dsn_failure recipient=%" PRId64 " code=%d enhanced=%s",
	       rcpt_id, ds->code, gn_log_quote(0, ds->enhanced != NULL ? ds->enhanced : ""));
	return queue_suppress_failure(account_id, rcpt_id, rcpt, addr, ds->code, ds->enhanced, "DSN");
}
