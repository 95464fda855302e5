/*
 * modules/quota/deliver.c: quota in the delivery pipeline (gannet/deliver.h).
 *
 *   deliver.check  at RCPT (and before a run): an account already full
 *                  (no byte or no message more fits) gets 452 4.2.2 at
 *                  once, per recipient; the message's size is not known
 *                  yet.
 *   deliver.store  inside the store's transaction, before anything is
 *                  written: the account's row is locked
 *                  (gn_store_account_lock(), the store's lock order), then
 *                  used + this delivery's bytes <= the size limit and
 *                  messages + its copies (one per mailbox of the
 *                  account) <= the message limit are checked.  Two
 *                  deliveries to one account at the same moment take the
 *                  lock one after the other, and the second reads the
 *                  first's committed (pending) message: both cannot slip
 *                  under the limit.  Over: 452 4.2.2 (RFC 3463 4.2.2:
 *                  mailbox full; temporary, a later retry may fit).
 *                  Accounts without a limit take no lock.
 *   deliver.after  the warning: when usage is at or past warn_percent of
 *                  either limit (size or messages), one message goes
 *                  into the account's Inbox, claimed with a conditional UPDATE (two deliveries that
 *                  cross together send one); below it, the claim is
 *                  cleared, so the next crossing warns again.
 *
 * The warning's own delivery (source "quota") is not checked: it is small
 * and the one thing the user must see.
 */
#include "quota.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WARN_SOURCE "quota"

static bool own_delivery(const struct gn_delivery *d)
{
	return strcmp(gn_delivery_source(d), WARN_SOURCE) == 0;
}

static enum gn_hook_result db_failed(struct gn_hook_call *call, const char *what, const char *err)
{
	gn_log(GN_LOG_WARN, QUOTA_AREA, "event=check_failed at=%s error=%s", what,
	       gn_log_quote(0, err != NULL ? err : "?"));
	gn_hook_call_reply(call, 451, "4.3.0", "temporary failure, try again later");
	return GN_HOOK_TEMPFAIL;
}

static enum gn_hook_result over(struct gn_hook_call *call, int64_t account, uint64_t bytes,
				 const struct quota_limits *l, enum quota_resource what)
{
	bool msgs = what == QUOTA_MESSAGES;
	gn_log(GN_LOG_INFO, QUOTA_AREA, "event=over_quota account=%" PRId64 " resource=%s bytes=%" PRIu64
	       " limit=%" PRId64, account, msgs ? "messages" : "storage", msgs ? 1 : bytes,
	       msgs ? l->messages : l->bytes);
	/* mox.md 7: 452 4.2.2, per recipient (RFC 3463 4.2.2: mailbox full,
	 * for its size or its number of messages). */
	gn_hook_call_reply(call, 452, "4.2.2", msgs ? "account message limit reached" : "account storage full");
	return GN_HOOK_TEMPFAIL;
}

static enum gn_hook_result on_check(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	int64_t account = gn_delivery_current_account(d);
	struct quota_limits l;
	enum quota_resource what;
	const char *err = NULL;
	if (account <= 0 || own_delivery(d))
		return GN_HOOK_CONTINUE;
	/* Full means not one more byte, or not one more message, fits. */
	int r = quota_fits(account, 1, 1, &l, &what, &err);
	if (r < 0)
		return db_failed(call, "check", err);
	return r > 0 ? GN_HOOK_CONTINUE : over(call, account, 1, &l, what);
}

static enum gn_hook_result on_store(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	int64_t account = gn_delivery_current_account(d);
	uint64_t bytes = gn_delivery_current_store_size(d);
	struct quota_limits l;
	enum quota_resource what;
	const char *err = NULL;
	if (account <= 0 || own_delivery(d))
		return GN_HOOK_CONTINUE;
	if (quota_limits(account, &l, &err) < 0)
		return db_failed(call, "store", err);
	if (l.bytes < 0 && l.messages < 0)
		return GN_HOOK_CONTINUE;
	/* The lock first: what is read after it stays so until the
	 * transaction ends, and includes every delivery that held it
	 * before. */
	int r = gn_store_account_lock(account, &err);
	if (r <= 0)
		return db_failed(call, "store", r == 0 ? "no such account" : err);
	/* One message per mailbox of the account the delivery reaches. */
	r = quota_fits(account, bytes, gn_delivery_current_store_count(d), &l, &what, &err);
	if (r < 0)
		return db_failed(call, "store", err);
	return r > 0 ? GN_HOOK_CONTINUE : over(call, account, bytes, &l, what);
}

/* ---- the warning ---- */

static void warning_done(struct gn_delivery *d, void *data)
{
	(void)data;
	const struct gn_delivery_result *res = gn_delivery_result(d, 0);
	gn_log(res != NULL && res->status == GN_DELIVERY_ACCEPTED ? GN_LOG_INFO : GN_LOG_WARN,
	       QUOTA_AREA, "event=warning_delivered account=%" PRId64 " result=%d",
	       res != NULL ? res->account_id : 0, res != NULL ? res->code : 0);
	gn_delivery_free(&d);
}

/* used >= limit * pct / 100, without overflow; never for no limit. */
static bool past(uint64_t used, int64_t limit)
{
	if (limit < 0)
		return false;
	uint64_t pct = (uint64_t)quota_settings.warn_percent;
	return used * 100 >= (uint64_t)limit / 100 * 100 * pct + (uint64_t)limit % 100 * pct;
}

static unsigned percent(uint64_t used, int64_t limit)
{
	return (unsigned)(limit > 0 ? used * 100 / (uint64_t)limit : 100);
}

static void warning_send(int64_t account, const struct quota_usage *u, const struct quota_limits *l)
{
	struct gn_pool *pool = gn_pool_new();
	const char *host = gn_config_hostname();
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* The fuller of the two resources in the subject; each limited one in
	 * the text. */
	unsigned pb = l->bytes >= 0 ? percent(u->bytes, l->bytes) : 0;
	unsigned pm = l->messages >= 0 ? percent(u->messages, l->messages) : 0;
	unsigned pct = pb > pm ? pb : pm;
	const char *lines = "";
	if (l->bytes >= 0)
		lines = gn_pool_printf(pool, "Your account stores %" PRIu64 " bytes of its limit of %" PRId64
				       " bytes (%u%%).\r\n", u->bytes, l->bytes, pb);
	if (l->messages >= 0)
		lines = gn_pool_printf(pool, "%sYour account stores %" PRIu64 " messages of its limit of %"
				       PRId64 " messages (%u%%).\r\n", lines, u->messages, l->messages, pm);
	const char *msg = gn_pool_printf(pool,
		"From: Mail system <postmaster@%s>\r\n"
		"Subject: Your mailbox is %u%% full\r\n"
		"Date: %s\r\n"
		"Message-ID: <quota-%" PRId64 "-%lld@%s>\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"%s"
		"\r\n"
		"When it is full, new messages are refused (senders are told to try\r\n"
		"again later). Delete messages you no longer need, and expunge them\r\n"
		"(empty the trash), to make room.\r\n",
		host, pct, date, account, (long long)now, host, lines);
	struct gn_delivery *d = gn_delivery_new(WARN_SOURCE, NULL);
	gn_delivery_add_account(d, account, NULL, 0);
	gn_delivery_set_mailbox_default(d, "Inbox", GN_DELIVERY_FIXED_MAILBOX);
	if (gn_delivery_write(d, msg, strlen(msg)) < 0 || gn_delivery_run(d, warning_done, NULL) < 0)
		gn_delivery_free(&d);
	gn_pool_free(&pool);
}

static enum gn_hook_result on_after(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	int64_t account = gn_delivery_current_account(d);
	struct quota_limits l;
	struct quota_usage u;
	const char *err = NULL;
	if (account <= 0 || own_delivery(d) || quota_settings.warn_percent == 0)
		return GN_HOOK_CONTINUE;
	if (quota_limits(account, &l, &err) < 0 ||
	    quota_usage(account, l.bytes >= 0, l.messages >= 0, &u, &err) < 0) {
		gn_log(GN_LOG_WARN, QUOTA_AREA, "event=warning_check_failed error=%s", gn_log_quote(0, err));
		return GN_HOOK_CONTINUE;
	}
	if (l.bytes < 0 && l.messages < 0)
		return GN_HOOK_CONTINUE;
	/* Either resource at or past the threshold. */
	bool crossed = past(u.bytes, l.bytes) || past(u.messages, l.messages);
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, account);
	const char *p[1] = { id };
	struct gn_db_result *res = gn_db_query(crossed
		? "INSERT INTO gn_quota_accounts (account_id, warned) VALUES ($1, true) "
		  "ON CONFLICT (account_id) DO UPDATE SET warned = true WHERE NOT gn_quota_accounts.warned "
		  "RETURNING 1"
		: "UPDATE gn_quota_accounts SET warned = false WHERE account_id = $1 AND warned RETURNING 1",
		1, p, &err);
	if (res == NULL) {
		gn_log(GN_LOG_WARN, QUOTA_AREA, "event=warning_check_failed error=%s", gn_log_quote(0, err));
		return GN_HOOK_CONTINUE;
	}
	bool changed = gn_db_result_rows(res) > 0;
	gn_db_result_free(&res);
	if (crossed && changed)
		warning_send(account, &u, &l);
	else if (changed)
		gn_log(GN_LOG_INFO, QUOTA_AREA, "event=warning_rearmed account=%" PRId64, account);
	return GN_HOOK_CONTINUE;
}

int quota_deliver_register(struct gn_module_ctx *ctx, const char **error_r)
{
	if (gn_hook_register(ctx, GN_DELIVER_CHECK, 100, 0, on_check, NULL, error_r) < 0 ||
	    gn_hook_register(ctx, GN_DELIVER_STORE, 100, 0, on_store, NULL, error_r) < 0 ||
	    gn_hook_register(ctx, GN_DELIVER_AFTER, 100, 0, on_after, NULL, error_r) < 0)
		return -1;
	return 0;
}
