/*
 * modules/smtp/smtp.c: the inbound MX.  Receives mail for the hosted
 * domains on port 25 (protocol "smtp") and delivers it through the core's
 * delivery pipeline (gannet/deliver.h) into the store.
 *
 * The protocol is the core's SMTP engine (gannet/smtp.h); this file is only
 * the policy on it:
 *
 *   MAIL        a delivery (gn_delivery_new("smtp")) with the sender.
 *   RCPT        the domain must be hosted (gn_store_domain_find()), else
 *               550 5.7.1: no relaying, ever.  Then the recipient is added
 *               to the delivery with its stored prefix (below) and checked
 *               at once (gn_delivery_check(): aliases, unknown addresses
 *               550 5.1.1, quota ...); its result is the RCPT reply.  A
 *               recipient refused here leaves the transaction: the
 *               delivery keeps its failed entry (it has no way to drop
 *               one), but this module remembers which entries were
 *               accepted and looks at no other, so a refused recipient
 *               counts against no limit and is never reported again after
 *               DATA (no backscatter to a sender already told no).
 *   Postmaster  RFC 5321 4.5.1: mail to the bare <Postmaster> and to
 *               postmaster@ every hosted domain MUST be accepted.  With
 *               the setting postmaster (an account name) it is: the bare
 *               form and a postmaster@ address that resolves to nothing
 *               go to that account (gn_delivery_add_account()); an
 *               address or alias added by hand for postmaster@domain
 *               still wins.
 *   DATA/BDAT   the message streams into the delivery chunk by chunk.
 *   end of data gn_delivery_run(): 250 only after the commit, when at least
 *               one recipient got the message.  Recipients that fail at
 *               this point (after the client was told 250 for them at
 *               RCPT) are logged (event=rcpt_failed_after_data) and get
 *               one DSN to the sender through the queue (send_dsn()).  When
 *               none got it, the reply is the first temporary failure
 *               (451 4.3.0 for a database failure: nothing was stored, the
 *               sender retries), else the first permanent one.
 *
 * Trace headers (RFC 5321 4.4) are never written into the body: each
 * recipient's copy gets a stored prefix
 *
 *   Return-Path: <sender>
 *   Delivered-To: recipient
 *   Received: ... (gn_smtp_session_received(): the HELO name escaped)
 *
 * The Received date is the time of the RCPT command (the prefix is fixed
 * when the recipient is added, so the check can run at RCPT time).
 *
 * End of data: before the store, the chain "smtp.data_end"
 * (GN_SMTP_DATA_END, gannet/smtp.h) runs with the session; its hooks
 * (mailauth: SPF, DKIM) may wait on the loop and add header lines
 * (Authentication-Results, Received-SPF), which go into each copy's
 * prefix between Delivered-To and Received (as mox writes them):
 *
 *   Return-Path, Delivered-To, <added lines>, Received
 *
 * A REJECT or TEMPFAIL of the chain is the reply and nothing is stored.
 *
 * Why the postmaster setting is here and not in the core: the rule is a
 * rule of receiving mail over SMTP (RFC 5321 4.5.1), and this module is the
 * one that receives; submission only sends for logged-in users.  Should
 * another receiver need it (LMTP, the queue's DSNs), it moves to the
 * core's config then.
 */
#include <gannet/gannet.h>

#include <string.h>
#include <strings.h>

#include "forged.h"
#include "localserve.h"

#define AREA "smtp"

struct mx_session {
	struct gn_smtp_session *s;
	struct gn_delivery *d;
	struct gn_pool *pool;		/* per transaction: cleared with it */
	/* Which entries of the delivery were accepted at RCPT (the others are
	 * refused recipients, no part of the transaction). */
	unsigned char *accepted;
	size_t n_accepted;
	/* The recipient being checked. */
	int pending_index;
	const struct gn_addr *pending_addr;
	bool pending_postmaster;	/* postmaster@ a hosted domain: fall back */
	bool checking;
	bool running;
	/* localserve: a failure answered after the delay (localserve.c). */
	struct gn_timer *ls_timer;
	struct ls_error ls_err;
	/* The recipient being checked asks for a failure at DATA; the first
	 * accepted recipient that does, for the end of data. */
	struct ls_error ls_pending, ls_data;
	/* The message's first bytes: its header for a DSN (RFC 3464). */
	struct gn_buf *header;
	/* Each delivery entry's prefix in two parts, around the lines the
	 * end-of-data hooks add: Return-Path + Delivered-To, and Received. */
	char **pre_head, **pre_trace;
	size_t n_pre;
	struct gn_hook_call *hook;	/* the "smtp.data_end" chain */
	char *last_head, *last_trace;	/* make_prefix()'s parts */
	/* Authentication-Results fields claiming to be ours, renamed on
	 * the way to the store (forged.c). */
	struct forged_filter forged;
};

/* The original header a DSN carries: at most this much. */
#define DSN_HEADER_MAX (64 * 1024)

static struct gn_smtp_settings settings;
/* The account that gets postmaster's mail (smtp.postmaster), or NULL. */
static const char *postmaster_account;
/* smtp.localserve: simulate failures (localserve.c), and take mail for
 * any address into the postmaster account (mox.md 3). */
static bool localserve;
static long long localserve_timeout_ms;

/* ---- the stored prefix ---- */

static char *make_prefix(struct mx_session *mx, const struct gn_addr *rcpt,
			 size_t *len_r)
{
	struct gn_smtp_session *s = mx->s;
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	const struct gn_addr *from = gn_smtp_tx_from(tx);
	struct gn_pool *pool = mx->pool;
	char *head, *trace;

	/* RFC 5321 4.4: Return-Path at final delivery, then the trace. */
	head = gn_pool_printf(pool, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
			      from != NULL ? gn_addr_to_string(pool, from) : "",
			      gn_addr_to_string(pool, rcpt));
	trace = gn_smtp_session_received(s, pool, rcpt);
	/* Kept for prefix_parts_set() once the entry's index is known. */
	mx->last_head = head;
	mx->last_trace = trace;
	char *p = gn_pool_printf(pool, "%s%s", head, trace != NULL ? trace : "");
	*len_r = strlen(p);
	return p;
}

/* Remembers entry i's prefix parts (from the last make_prefix()). */
static void prefix_parts_set(struct mx_session *mx, size_t i)
{
	if (i >= mx->n_pre) {
		size_t n = i + 16;
		mx->pre_head = gn_realloc(mx->pre_head, n * sizeof(*mx->pre_head));
		mx->pre_trace = gn_realloc(mx->pre_trace, n * sizeof(*mx->pre_trace));
		for (size_t k = mx->n_pre; k < n; k++)
			mx->pre_head[k] = mx->pre_trace[k] = NULL;
		mx->n_pre = n;
	}
	mx->pre_head[i] = mx->last_head;
	mx->pre_trace[i] = mx->last_trace;
}

/* ---- transactions ---- */

static void mx_tx_end(struct mx_session *mx)
{
	if (mx->hook != NULL) {
		gn_hook_cancel(mx->hook);
		mx->hook = NULL;
	}
	gn_free(mx->pre_head);
	gn_free(mx->pre_trace);
	mx->pre_head = mx->pre_trace = NULL;
	mx->n_pre = 0;
	gn_timer_free(&mx->ls_timer);	/* a delayed localserve answer */
	gn_delivery_free(&mx->d);	/* cancels a pending check or run */
	mx->checking = false;
	mx->running = false;
	gn_free(mx->accepted);
	mx->accepted = NULL;
	mx->n_accepted = 0;
	mx->pending_addr = NULL;
	memset(&mx->ls_data, 0, sizeof(mx->ls_data));
	gn_buf_free(&mx->header);
	smtp_forged_reset(&mx->forged);
	gn_pool_clear(mx->pool);
}

/* Remembers that delivery entry i was accepted at RCPT. */
static void mark_accepted(struct mx_session *mx, size_t i)
{
	if (i >= mx->n_accepted) {
		size_t n = i + 16;
		mx->accepted = gn_realloc(mx->accepted, n);
		memset(mx->accepted + mx->n_accepted, 0, n - mx->n_accepted);
		mx->n_accepted = n;
	}
	mx->accepted[i] = 1;
}

static bool was_accepted(const struct mx_session *mx, size_t i)
{
	return i < mx->n_accepted && mx->accepted[i];
}

/* ---- localserve's failures (localserve.c) ---- */

static void ls_timer_cb(void *data)
{
	struct mx_session *mx = data;
	gn_timer_free(&mx->ls_timer);
	gn_smtp_answer(mx->s, mx->ls_err.code, mx->ls_err.enhanced, "%s", mx->ls_err.text);
}

static void ls_answer(struct mx_session *mx, const struct ls_error *e, const char *where)
{
	gn_log(GN_LOG_INFO, AREA, "event=localserve_failure id=%s at=%s code=%d%s",
	       gn_conn_id(gn_smtp_session_conn(mx->s)), where, e->code, e->timeout ? " delayed=yes" : "");
	if (e->timeout) {
		mx->ls_err = *e;
		gn_timer_free(&mx->ls_timer);
		mx->ls_timer = gn_timer_new((unsigned long)localserve_timeout_ms, false, ls_timer_cb, mx);
	} else {
		gn_smtp_answer(mx->s, e->code, e->enhanced, "%s", e->text);
	}
}

/* Answers the failure localpart asks for, if it asks for one: true. */
static bool ls_fail(struct mx_session *mx, const char *localpart, const char *where)
{
	struct ls_error e;
	if (!localserve || !smtp_localserve_error(localpart, &e))
		return false;
	ls_answer(mx, &e, where);
	return true;
}

static void mx_connect(struct gn_smtp_session *s, void *data)
{
	struct mx_session *mx = gn_calloc(1, sizeof(*mx));
	(void)data;
	mx->s = s;
	mx->pool = gn_pool_new();
	gn_smtp_session_set_data(s, mx);
	gn_smtp_answer(s, 220, NULL, NULL);
}

static void mx_mail(struct gn_smtp_session *s, const struct gn_addr *from, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	struct gn_delivery_limits limits;
	(void)data;

	mx_tx_end(mx);
	if (from != NULL && localserve && smtp_localserve_prefix(from->localpart, "mailfrom") &&
	    ls_fail(mx, from->localpart, "mail"))
		return;
	gn_delivery_limits_init(&limits);
	limits.max_size = settings.max_message_size;
	/* The engine holds accepted recipients to max_recipients; the
	 * delivery also keeps the entries of refused ones (each an error
	 * reply, so at most max_errors of them) and of postmaster's
	 * fallbacks (one per accepted recipient at most). */
	limits.max_recipients = 2 * settings.max_recipients + settings.max_errors;
	mx->d = gn_delivery_new("smtp", &limits);
	gn_delivery_set_sender(mx->d, from);
	const char *ip = gn_conn_remote_ip(gn_smtp_session_conn(mx->s));
	if (ip != NULL)
		(void)gn_delivery_set_remote_ip(mx->d, ip);
	gn_smtp_answer(s, 250, NULL, NULL);
}

static void answer_result(struct gn_smtp_session *s, const struct gn_delivery_result *r)
{
	if (r == NULL) {
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	switch (r->status) {
	case GN_DELIVERY_ACCEPTED:
		gn_smtp_answer(s, 250, "2.1.5", "Recipient OK");
		return;
	case GN_DELIVERY_REJECTED:
	case GN_DELIVERY_TEMPFAIL:
		gn_smtp_answer(s, r->code, r->enhanced, "%s", r->text != NULL ? r->text :
			       (r->status == GN_DELIVERY_REJECTED ? "Recipient refused" :
				"Temporary failure, please try again later"));
		return;
	case GN_DELIVERY_UNDECIDED:
	default:
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
}

static void route_postmaster(struct mx_session *mx, const struct gn_addr *addr);

static void rcpt_checked(struct gn_delivery *d, void *data)
{
	struct mx_session *mx = data;
	const struct gn_delivery_result *r = gn_delivery_result(d, (size_t)mx->pending_index);

	mx->checking = false;
	if (mx->pending_postmaster && r != NULL && r->status == GN_DELIVERY_REJECTED &&
	    r->enhanced != NULL && strcmp(r->enhanced, "5.1.1") == 0) {
		/* RFC 5321 4.5.1: postmaster@ a hosted domain that nobody
		 * added by hand. */
		mx->pending_postmaster = false;
		route_postmaster(mx, mx->pending_addr);
		return;
	}
	if (r != NULL && r->status == GN_DELIVERY_ACCEPTED) {
		mark_accepted(mx, (size_t)mx->pending_index);
		if (mx->ls_data.code == 0)
			mx->ls_data = mx->ls_pending;
	}
	answer_result(mx->s, r);
}

static void check_pending(struct mx_session *mx)
{
	mx->checking = true;
	if (gn_delivery_check(mx->d, rcpt_checked, mx) < 0) {
		mx->checking = false;
		gn_smtp_answer(mx->s, 451, "4.3.0", "Temporary failure, please try again later");
	}
}

/* Postmaster's mail goes to the configured account; addr is what the
 * client wrote (postmaster@hostname for the bare form). */
static void route_postmaster(struct mx_session *mx, const struct gn_addr *addr)
{
	struct gn_store_account *acct = NULL;
	const char *err = NULL;
	char *prefix;
	size_t plen;
	int r = gn_store_account_find(mx->pool, postmaster_account, &acct, &err);

	if (r <= 0) {
		gn_log(GN_LOG_WARN, AREA, "event=postmaster_unavailable id=%s account=%s "
		       "error=%s", gn_conn_id(gn_smtp_session_conn(mx->s)),
		       gn_log_quote(0, postmaster_account),
		       gn_log_quote(1, r < 0 && err != NULL ? err : "no such account"));
		/* RFC 3463 4.3.5: the system is not configured right; the
		 * sender retries, the administrator sees the log. */
		gn_smtp_answer(mx->s, 451, r < 0 ? "4.3.0" : "4.3.5",
			       "Temporary failure, please try again later");
		return;
	}
	prefix = make_prefix(mx, addr, &plen);
	mx->pending_index = gn_delivery_add_account_rcpt(mx->d, gn_store_account_id(acct), addr,
						       prefix, plen);
	if (mx->pending_index < 0) {
		gn_smtp_answer(mx->s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	prefix_parts_set(mx, (size_t)mx->pending_index);
	check_pending(mx);
}

static void mx_rcpt(struct gn_smtp_session *s, struct gn_smtp_rcpt *rcpt, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	const struct gn_addr *addr = gn_smtp_rcpt_addr(rcpt);
	struct gn_addr *pm = NULL;
	struct gn_store_domain *dom = NULL;
	const char *err = NULL;
	char *prefix;
	size_t plen;
	int r;
	(void)data;

	if (mx->d == NULL) {
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	mx->pending_postmaster = false;
	memset(&mx->ls_pending, 0, sizeof(mx->ls_pending));
	if (localserve)
		(void)smtp_localserve_error(addr->localpart, &mx->ls_pending);
	if (addr->domain[0] != '\0' && smtp_localserve_prefix(addr->localpart, "rcptto") &&
	    ls_fail(mx, addr->localpart, "rcpt"))
		return;
	if (addr->domain[0] == '\0') {
		/* RFC 5321 4.5.1: the bare <Postmaster> is this host's. */
		if (gn_addr_from_parts(mx->pool, "postmaster", gn_smtp_session_hostname(s),
				       &pm, &err) < 0) {
			gn_smtp_answer(s, 550, "5.1.1", "No postmaster here");
			return;
		}
		if (postmaster_account != NULL) {
			route_postmaster(mx, pm);
			return;
		}
		addr = pm;
	}
	if (addr->domain[0] == '[') {
		gn_smtp_answer(s, 550, "5.7.1", "Relaying denied");
		return;
	}
	r = gn_store_domain_find(mx->pool, addr->domain, &dom, &err);
	if (r < 0) {
		gn_log(GN_LOG_WARN, AREA, "event=rcpt_tempfail id=%s error=%s",
		       gn_conn_id(gn_smtp_session_conn(s)), gn_log_quote(0, err ? err : "?"));
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	if (r == 0 && localserve && postmaster_account != NULL) {
		/* localserve: mail for anyone lands in the one account. */
		route_postmaster(mx, addr);
		return;
	}
	if (r == 0) {
		/* No relaying, ever: only hosted domains are accepted. */
		gn_smtp_answer(s, 550, "5.7.1", "Relaying denied: %s is not hosted here",
			       addr->domain_utf8);
		return;
	}
	prefix = make_prefix(mx, addr, &plen);
	mx->pending_index = gn_delivery_add_recipient(mx->d, addr, prefix, plen);
	if (mx->pending_index < 0) {
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	prefix_parts_set(mx, (size_t)mx->pending_index);
	/* RFC 5321 4.5.1: the localpart "postmaster" in any case. */
	mx->pending_addr = addr;
	mx->pending_postmaster = postmaster_account != NULL &&
				 (localserve || strcasecmp(addr->localpart, "postmaster") == 0);
	check_pending(mx);
}

/* forged.c's writer: into the delivery. */
static int write_delivery(void *ctx, const char *buf, size_t len)
{
	return gn_delivery_write(ctx, buf, len);
}

static int mx_data_chunk(struct gn_smtp_session *s, const char *buf, size_t len, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	(void)data;
	if (mx->d == NULL)
		return -1;
	if (mx->header == NULL)
		mx->header = gn_buf_new(DSN_HEADER_MAX);
	size_t room = DSN_HEADER_MAX - gn_buf_len(mx->header);
	if (room > 0)
		(void)gn_buf_append(mx->header, buf, len < room ? len : room);
	/* -1 (too big, store failed): the run's results say so. */
	return smtp_forged_write(&mx->forged, write_delivery, mx->d, gn_smtp_session_hostname(s),
				 buf, len);
}

/* RFC 5321 3.6.3 and 6.1: recipients accepted at RCPT that fail after the
 * end of data (while others got the message, which was answered 250) are
 * owed a DSN: one for all of them, from <>, queued to the sender
 * (gn_queue_bounce_add()), under the first failed recipient's account
 * (else the postmaster's).  None for a message from <> (RFC 3461 6.2:
 * never a DSN about a DSN), and none in localserve (as mox: the failures
 * there are asked for). */
static void send_dsn(struct mx_session *mx, struct gn_delivery *d, const char *id)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(mx->s);
	const struct gn_addr *from = tx != NULL ? gn_smtp_tx_from(tx) : NULL;
	size_t n = gn_delivery_recipient_count(d), k = 0;
	struct gn_queue_bounce_rcpt *rs = gn_pool_alloc(mx->pool, (n + 1) * sizeof(*rs));
	int64_t account = 0;
	for (size_t i = 0; i < n; i++) {
		const struct gn_delivery_result *r = gn_delivery_result(d, i);
		const struct gn_addr *a = gn_delivery_recipient(d, i);
		if (r == NULL || r->status == GN_DELIVERY_ACCEPTED || !was_accepted(mx, i))
			continue;
		gn_log(GN_LOG_WARN, AREA, "event=rcpt_failed_after_data id=%s tx=%s "
		       "rcpt=%s code=%d enhanced=%s text=%s",
		       gn_conn_id(gn_smtp_session_conn(mx->s)), id,
		       gn_log_quote(0, a != NULL ? gn_addr_to_string(mx->pool, a) : "-"),
		       r->code, r->enhanced ? r->enhanced : "-",
		       gn_log_quote(1, r->text ? r->text : ""));
		if (a == NULL)
			continue;
		if (account == 0)
			account = r->account_id;
		rs[k].rcpt = a;
		rs[k].code = r->code;
		rs[k].enhanced = r->enhanced;
		rs[k].text = r->text;
		k++;
	}
	if (k == 0 || from == NULL || localserve)
		return;
	/* Under the failed recipient's account, else (it is gone, or there
	 * is none) the postmaster's. */
	struct gn_store_account *acct = NULL;
	const char *err = "no account to queue it under (set smtp.postmaster)";
	int64_t accounts[2] = { account, 0 };
	if (postmaster_account != NULL && gn_store_account_find(mx->pool, postmaster_account, &acct, &err) > 0)
		accounts[1] = gn_store_account_id(acct);
	struct gn_queue_bounce b = {
		.size = sizeof(b), .to = from,
		.header = mx->header != NULL ? gn_buf_data(mx->header) : NULL,
		.header_len = mx->header != NULL ? gn_buf_len(mx->header) : 0,
		.rcpts = rs, .n_rcpts = k,
	};
	int64_t qid = 0;
	for (size_t j = 0; j < 2; j++) {
		if (accounts[j] == 0)
			continue;
		b.account_id = accounts[j];
		if (gn_queue_bounce_add(&b, &qid, &err) == 0) {
			gn_log(GN_LOG_INFO, AREA, "event=dsn_queued id=%s tx=%s to=%s recipients=%zu "
			       "queue_message=%lld", gn_conn_id(gn_smtp_session_conn(mx->s)), id,
			       gn_log_quote(0, gn_addr_to_string(mx->pool, from)), k, (long long)qid);
			return;
		}
	}
	gn_log(GN_LOG_ERROR, AREA, "event=dsn_failed id=%s tx=%s to=%s error=%s",
	       gn_conn_id(gn_smtp_session_conn(mx->s)), id,
	       gn_log_quote(0, gn_addr_to_string(mx->pool, from)), gn_log_quote(1, err ? err : "?"));
}

static void run_done(struct gn_delivery *d, void *data)
{
	struct mx_session *mx = data;
	struct gn_smtp_session *s = mx->s;
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	const struct gn_delivery_result *first_temp = NULL, *first_perm = NULL;
	size_t ok = 0, n = gn_delivery_recipient_count(d);
	const char *id = tx != NULL ? gn_smtp_tx_id(tx) : "-";

	mx->running = false;
	for (size_t i = 0; i < n; i++) {
		const struct gn_delivery_result *r = gn_delivery_result(d, i);
		if (r == NULL || !was_accepted(mx, i))
			continue;
		if (r->status == GN_DELIVERY_ACCEPTED) {
			ok++;
			continue;
		}
		if (r->status == GN_DELIVERY_TEMPFAIL && first_temp == NULL)
			first_temp = r;
		if (r->status == GN_DELIVERY_REJECTED && first_perm == NULL)
			first_perm = r;
	}
	if (ok > 0) {
		/* Some got it: 250 for the message.  The others that had been
		 * accepted at RCPT fail now: the sender gets a DSN. */
		send_dsn(mx, d, id);
		/* RFC 8689: a REQUIRETLS message is tagged as such;
		 * delivered locally, it goes nowhere else, so the tag is this
		 * log line (the store keeps no per-message TLS flag yet). */
		bool requiretls = tx != NULL && gn_smtp_tx_param(tx, "REQUIRETLS", NULL) == 1;
		gn_log(GN_LOG_INFO, AREA, "event=message_accepted id=%s tx=%s size=%llu "
		       "recipients=%zu requiretls=%s", gn_conn_id(gn_smtp_session_conn(s)), id,
		       (unsigned long long)gn_delivery_size(d), ok, requiretls ? "yes" : "no");
		mx->d = NULL;
		gn_delivery_free(&d);
		gn_smtp_answer(s, 250, "2.0.0", "Ok: stored as %s", id);
		return;
	}
	{
		const struct gn_delivery_result *r = first_temp != NULL ? first_temp : first_perm;
		int code = r != NULL ? r->code : 451;
		char *enh = gn_pool_strdup(mx->pool, r != NULL && r->enhanced ? r->enhanced : "4.3.0");
		char *text = gn_pool_strdup(mx->pool, r != NULL && r->text ? r->text :
					    "Temporary failure, please try again later");
		gn_log(GN_LOG_INFO, AREA, "event=message_refused id=%s tx=%s code=%d text=%s",
		       gn_conn_id(gn_smtp_session_conn(s)), id, code, gn_log_quote(0, text));
		mx->d = NULL;
		gn_delivery_free(&d);
		gn_smtp_answer(s, code, enh, "%s", text);
	}
}

/* The added lines go between each copy's Delivered-To and Received. */
static int add_header_lines(struct mx_session *mx)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(mx->s);
	size_t alen = 0;
	const char *added = tx != NULL ? gn_smtp_tx_added_header(tx, &alen) : "";
	if (alen == 0)
		return 0;
	size_t n = gn_delivery_recipient_count(mx->d);
	for (size_t i = 0; i < n && i < mx->n_pre; i++) {
		if (!was_accepted(mx, i) || mx->pre_head[i] == NULL)
			continue;
		const char *trace = mx->pre_trace[i] != NULL ? mx->pre_trace[i] : "";
		char *p = gn_pool_printf(mx->pool, "%s%.*s%s", mx->pre_head[i], (int)alen, added,
					 trace);
		if (gn_delivery_set_prefix(mx->d, i, p, strlen(p)) < 0)
			return -1;
	}
	return 0;
}

static void store_message(struct mx_session *mx)
{
	/* An end-of-data hook may have chosen the mailbox (DMARC
	 * quarantine); rulesets still decide after it. */
	struct gn_smtp_tx *tx = gn_smtp_session_tx(mx->s);
	const char *mailbox = tx != NULL ? gn_smtp_tx_mailbox(tx) : NULL;
	if (mailbox != NULL)
		gn_delivery_set_mailbox_default(mx->d, mailbox, 0);
	/* And the checks' results, kept with each copy (ABI 1.1). */
	const struct gn_store_message_auth *auth = tx != NULL ? gn_smtp_tx_auth(tx) : NULL;
	if ((auth != NULL && gn_delivery_set_auth(mx->d, auth) < 0) || add_header_lines(mx) < 0 || gn_delivery_run(mx->d, run_done, mx) < 0) {
		mx->running = false;
		gn_smtp_answer(mx->s, 451, "4.3.0", "Temporary failure, please try again later");
	}
}

static void data_end_done(enum gn_hook_result result, const struct gn_hook_reply *reply,
			  void *data)
{
	struct mx_session *mx = data;
	mx->hook = NULL;
	if (result == GN_HOOK_CONTINUE || result == GN_HOOK_ACCEPT) {
		store_message(mx);
		return;
	}
	mx->running = false;
	gn_log(GN_LOG_INFO, AREA, "event=message_refused id=%s by=%s code=%d",
	       gn_conn_id(gn_smtp_session_conn(mx->s)),
	       reply != NULL && reply->module != NULL ? reply->module : "-",
	       reply != NULL ? reply->code : 0);
	gn_smtp_answer_hook(mx->s, result, reply);
}

static void mx_data_end(struct gn_smtp_session *s, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	(void)data;
	if (mx->d == NULL) {
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	/* A message that is all header: it is still held.  -1: the run's
	 * results say so, as for a chunk. */
	(void)smtp_forged_flush(&mx->forged, write_delivery, mx->d, gn_smtp_session_hostname(s));
	if (mx->forged.renamed > 0)
		gn_log(GN_LOG_INFO, AREA, "event=authres_renamed id=%s fields=%u",
		       gn_conn_id(gn_smtp_session_conn(s)), mx->forged.renamed);
	/* localserve: a recipient that asks for a failure fails the message
	 * (one reply for all; nothing is stored). */
	if (mx->ls_data.code != 0) {
		ls_answer(mx, &mx->ls_data, "data");
		return;
	}
	struct gn_hook_point *point = gn_hook_point_find(GN_SMTP_DATA_END);
	mx->running = true;
	if (point == NULL) {
		store_message(mx);
		return;
	}
	mx->hook = gn_hook_run(point, s, data_end_done, mx);
}

static void mx_reset(struct gn_smtp_session *s, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	(void)data;
	if (mx != NULL)
		mx_tx_end(mx);
}

static void mx_disconnect(struct gn_smtp_session *s, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	(void)data;
	if (mx == NULL)
		return;
	mx_tx_end(mx);
	gn_pool_free(&mx->pool);
	gn_free(mx);
	gn_smtp_session_set_data(s, NULL);
}

static const struct gn_smtp_policy mx_policy = {
	.size = sizeof(struct gn_smtp_policy),
	.connect = mx_connect,
	.mail = mx_mail,
	.rcpt = mx_rcpt,
	.data_chunk = mx_data_chunk,
	.data_end = mx_data_end,
	.reset = mx_reset,
	.disconnect = mx_disconnect,
};

/* REQUIRETLS (RFC 8689): offered once TLS is active; the parameter is
 * known in every EHLO session so that one given in the clear gets 530
 * 5.7.10 (as mox) rather than "unknown parameter". */
static int requiretls_check(struct gn_smtp_session *s, const char *value,
			    struct gn_hook_reply *reply, void *data)
{
	(void)value;
	(void)data;
	if (gn_conn_is_tls(gn_smtp_session_conn(s)))
		return 0;
	reply->code = 530;
	reply->enhanced = "5.7.10";
	reply->text = "REQUIRETLS only over TLS: issue STARTTLS first";
	return -1;
}

static int add_requiretls(struct gn_smtp_server *srv, const char **error_r)
{
	static const struct gn_smtp_keyword kw = {
		.size = sizeof(struct gn_smtp_keyword),
		.keyword = "REQUIRETLS",
		.flags = GN_SMTP_KEYWORD_TLS,
	};
	static const struct gn_smtp_param param = {
		.size = sizeof(struct gn_smtp_param),
		.cmd = GN_SMTP_PARAM_MAIL,
		.keyword = "REQUIRETLS",
		.flags = GN_SMTP_PARAM_NO_VALUE,
		.check = requiretls_check,
	};
	if (gn_smtp_server_add_keyword(srv, &kw, error_r) < 0 ||
	    gn_smtp_server_add_param(srv, &param, error_r) < 0)
		return -1;
	return 0;
}

static int mx_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	struct gn_smtp_server *srv;
	const char *err = NULL;

	gn_smtp_settings_init(&settings);
	gn_smtp_settings_read(sect, &settings);
	if (gn_config_string(sect, "postmaster", NULL, &postmaster_account) > 0 &&
	    gn_store_account_name_check(postmaster_account, &err) < 0)
		gn_config_error(sect, "postmaster", "%s.postmaster: %s", gn_config_path(sect),
				err != NULL ? err : "not an account name");
	gn_config_bool(sect, "localserve", false, &localserve);
	gn_config_duration_ms(sect, "localserve_timeout", 3600 * 1000LL, &localserve_timeout_ms);
	if (localserve && postmaster_account == NULL)
		gn_config_error(sect, "localserve", "%s.localserve needs %s.postmaster (the account "
				"that gets the mail)", gn_config_path(sect), gn_config_path(sect));
	srv = gn_smtp_server_register(ctx, "smtp", &settings, &mx_policy, NULL, error_r);
	if (srv == NULL)
		return -1;
	return add_requiretls(srv, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "smtp",
	.version = "0.1.0",
	.register_fn = mx_register,
};
