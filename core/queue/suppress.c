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
 *
 * queue.c calls them (gn_queue_run(), recorded()).
 */
#include "queue/internal.h"

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

int queue_suppress_check(struct gn_pool *pool, int64_t account_id, const struct gn_addr *rcpt,
			 const char **error_r)
{
	const struct gn_suppression_ops *o = ops();
	if (!GN_OPS_HAS(o, lookup) || o->lookup == NULL)
		return 0;
	*error_r = NULL;
	int r = o->lookup(pool, account_id, rcpt, NULL, error_r);
	if (r < 0 && *error_r == NULL)
		*error_r = "suppression list lookup failed";
	return r < 0 ? -1 : r > 0;
}

void queue_suppress_failure(int64_t account_id, int64_t rcpt_id, const char *rcpt,
			    const struct gn_addr *addr, int code, const char *enhanced)
{
	const struct gn_suppression_ops *o = ops();
	if (!GN_OPS_HAS(o, failure) || o->failure == NULL || code == 0)
		return;
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
		return;
	}
	struct gn_suppression_failure f = {
		.size = sizeof(f), .account_id = account_id, .rcpt = addr, .code = code,
		.enhanced = enhanced != NULL && enhanced[0] != '\0' ? enhanced : NULL, .source = "queue",
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
}
