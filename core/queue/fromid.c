/*
 * core/queue/fromid.c: mail that comes back to a FromID address (issue 9
 * item 5, mox.md 1.8).  A recipient sent with a FromID had the envelope
 * sender local<sep><fromid>@domain; a bounce (or a reply to that sender)
 * reaches the account through the domain's catchall separator.  After it
 * is stored ("deliver.after"), this hook cuts the FromID from the
 * recipient address, finds the queued or retired recipient it was made
 * for (the same account only) and records the arrival in
 * gn_queue_fromid_incoming, with whether it is a DSN (multipart/report
 * with a delivery status as its second part), and logs it
 * (event=queue_fromid_incoming).  `gannet queue fromid ID` shows them.
 *
 * For a retired recipient (retired_incoming()): a DSN whose one
 * recipient block says Action failed with a code goes to the suppression
 * list's service, and the outgoing webhook event (mox.md 1.8) to the
 * webhooks service, when modules provide them.  Not done (mox does it):
 * the DSN's Action and Status in the retired record's result.
 */
#include "queue/internal.h"

#include <inttypes.h>
#include <string.h>
#include <gannet/deliver.h>
#include <gannet/hook.h>

/* mox.md 1.8 step 4: the DSN shape. */
static bool is_dsn(const struct gn_mime_message *msg)
{
	const struct gn_mime_part *root = msg != NULL ? gn_mime_message_root(msg) : NULL;
	if (root == NULL || strcasecmp(gn_mime_part_type(root), "multipart") != 0 ||
	    strcasecmp(gn_mime_part_subtype(root), "report") != 0 || gn_mime_part_child_count(root) < 2)
		return false;
	const struct gn_mime_part *st = gn_mime_part_child(root, 1);
	return strcasecmp(gn_mime_part_type(st), "message") == 0 &&
	       (strcasecmp(gn_mime_part_subtype(st), "delivery-status") == 0 ||
		strcasecmp(gn_mime_part_subtype(st), "global-delivery-status") == 0);
}

/* mox.md 1.8 steps 3 to 7, for a retired recipient: a DSN's Action makes
 * the outgoing event (failed, delayed, delivered, relayed, expanded;
 * anything else, a DSN that is not for one recipient, or a message that
 * is no DSN: unrecognized), a failure with a code may add the recipient
 * to the suppression list, and the event goes to the webhooks service
 * (when a module provides them). */
static void retired_incoming(struct gn_pool *pool, struct gn_delivery *d, int64_t account, int64_t id,
			     const char *rcpt, const char *from_id, bool dsn)
{
	const char *event = "unrecognized", *why = NULL, *text = NULL;
	struct queue_dsn_status ds = { 0 };
	bool suppressing = false;
	if (dsn && queue_dsn_of_delivery(pool, d, account, &ds, &why) == 0) {
		if (ds.recipients != 1) {
			why = gn_pool_printf(pool, "DSN with %u recipients, expecting 1", ds.recipients);
		} else if (ds.action != NULL && (strcmp(ds.action, "failed") == 0 || strcmp(ds.action, "delayed") == 0 ||
						 strcmp(ds.action, "delivered") == 0 || strcmp(ds.action, "relayed") == 0 ||
						 strcmp(ds.action, "expanded") == 0)) {
			event = ds.action;
			if (strcmp(event, "failed") == 0 && queue_suppress_active())
				suppressing = queue_suppress_dsn(pool, account, id, rcpt, &ds);
		}
	}
	if (why != NULL) {
		gn_log(GN_LOG_INFO, "core", "event=queue_dsn_unread recipient=%" PRId64 " reason=%s", id,
		       gn_log_quote(0, why));
		text = why;
	}
	const char *p[2] = { store_i64s(pool, account), store_i64s(pool, id) };
	const char *err = NULL;
	PGresult *res = store_q("SELECT message_id_field, subject, extra::text FROM gn_queue_retired "
				"WHERE account_id = $1 AND id = $2", 2, p, &err);
	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		return;
	}
	const char *msgid = store_col_str(pool, res, 0, 0), *subject = store_col_str(pool, res, 0, 1);
	const char *extra = store_col_str(pool, res, 0, 2);
	PQclear(res);
	queue_webhook_event_dsn(account, id, event, rcpt, from_id, msgid, subject, extra, ds.code, ds.enhanced,
				text, suppressing, dsn);
}

static enum gn_hook_result fromid_after(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	const struct gn_addr *to = gn_delivery_current(d);
	int64_t account = gn_delivery_current_account(d);
	if (to == NULL || account == 0)
		return GN_HOOK_CONTINUE;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_domain *dom;
	const char *err = NULL;
	int r = gn_store_domain_find(pool, to->domain, &dom, &err);
	const char *seps = r > 0 ? gn_store_domain_catchall_separators(dom) : "";
	const struct gn_addr *base = seps[0] != '\0' ? gn_addr_strip_catchall(pool, to, seps) : to;
	if (r < 0 || base == to)
		goto out;
	const char *tag = to->localpart + strlen(base->localpart);
	size_t sl = 1;	/* the separator: one code point */
	while (((unsigned char)tag[sl] & 0xc0) == 0x80)
		sl++;
	tag += sl;
	if (!queue_fromid_valid(tag))
		goto out;
	/* The queued or retired recipient of this account only: the sender's
	 * own account hears about its messages. */
	const char *pa[2] = { store_i64s(pool, account), tag };
	PGresult *res = store_q("SELECT id, message_id, 'queued', rcpt FROM gn_queue_recipients WHERE "
				"account_id = $1 AND from_id = $2 UNION ALL SELECT id, message_id, result, rcpt "
				"FROM gn_queue_retired WHERE account_id = $1 AND from_id = $2 LIMIT 1",
				2, pa, &err);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		PQclear(res);
		goto out;
	}
	int64_t id = store_col_i64(res, 0, 0), mid = store_col_i64(res, 0, 1);
	const char *state = store_col_str(pool, res, 0, 2);
	const char *rcpt = store_col_str(pool, res, 0, 3);
	PQclear(res);
	const char *kind = is_dsn(gn_delivery_message(d)) ? "dsn" : "message";
	const char *pi[5] = { pa[0], tag, kind, store_i64s(pool, gn_delivery_current_mailbox_id(d)),
			      store_u64s(pool, gn_delivery_current_uid(d)) };
	if (store_q_count("INSERT INTO gn_queue_fromid_incoming (account_id, from_id, kind, mailbox_id, "
			  "uid) VALUES ($1, $2, $3, $4, $5)", 5, pi, &err) < 0)
		goto out;
	gn_log(GN_LOG_INFO, "core", "event=queue_fromid_incoming account=%" PRId64 " recipient=%" PRId64
	       " message=%" PRId64 " state=%s kind=%s fromid=%s", account, id, mid, state, kind, tag);
	if (strcmp(state, "queued") != 0)
		retired_incoming(pool, d, account, id, rcpt, tag, strcmp(kind, "dsn") == 0);
	err = NULL;
out:
	if (err != NULL)
		gn_log(GN_LOG_WARN, "core", "event=queue_fromid_error error=%s", gn_log_quote(0, err));
	gn_pool_free(&pool);
	return GN_HOOK_CONTINUE;
}

int queue_fromid_register(void)
{
	const char *err;
	if (gn_hook_register(modules_core_ctx(), "deliver.after", 0, 0, fromid_after, NULL, &err) < 0) {
		conf_error("queue: %s", err);
		return -1;
	}
	return 0;
}
