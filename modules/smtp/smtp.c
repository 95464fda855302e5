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
 *               550 5.1.1, quota ...); its result is the RCPT reply.
 *   DATA/BDAT   the message streams into the delivery chunk by chunk.
 *   end of data gn_delivery_run(): 250 only after the commit, when at least
 *               one recipient got the message.  Recipients that fail at
 *               this point (after the client was told 250 for them at
 *               RCPT) are logged (event=rcpt_failed_after_data); a DSN to
 *               the sender follows once the outbound queue exists.  When
 *               none got it, the reply is the first temporary failure
 *               (451 4.3.0 for a database failure: nothing was stored, the
 *               sender retries), else the first permanent one.
 *
 * Trace headers (RFC 5321 4.4) are never written into the body: each
 * recipient's copy gets a stored prefix
 *
 *   Return-Path: <sender>
 *   Delivered-To: recipient
 *   Received: from HELO ([IP]) by HOSTNAME (Gannet) with ESMTPS
 *           (using TLS1.3 with cipher AES-256-GCM) id TXID for <recipient>;
 *           DATE
 *
 * The Received date is the time of the RCPT command (the prefix is fixed
 * when the recipient is added, so the check can run at RCPT time).
 */
#include <gannet/gannet.h>

#include <string.h>
#include <time.h>

#define AREA "smtp"

struct mx_session {
	struct gn_smtp_session *s;
	struct gn_delivery *d;
	struct gn_pool *pool;		/* per transaction: cleared with it */
	/* The recipient being checked. */
	int pending_index;
	bool checking;
	bool running;
};

static struct gn_smtp_settings settings;

/* ---- the stored prefix ---- */

/* RFC 5322 3.3 date-time in UTC ("Mon, 02 Jan 2026 15:04:05 +0000"),
 * independent of the locale. */
static char *rfc5322_date(struct gn_pool *pool, time_t now)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&now, &tm);
	return gn_pool_printf(pool, "%s, %02d %s %04d %02d:%02d:%02d +0000",
			      days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
			      tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A HELO name as it may appear in a header: printable, no parentheses
 * that would end the comment-less "from" clause early. */
static const char *safe_word(struct gn_pool *pool, const char *s)
{
	char *out = gn_pool_strdup(pool, s != NULL ? s : "unknown");
	for (char *p = out; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x21 || c == 0x7f || c == '(' || c == ')' || c == ';' || c == '\\')
			*p = '_';
	}
	return out;
}

static char *make_prefix(struct mx_session *mx, const struct gn_addr *rcpt,
			 size_t *len_r)
{
	struct gn_smtp_session *s = mx->s;
	struct gn_conn *conn = gn_smtp_session_conn(s);
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	const struct gn_addr *from = gn_smtp_tx_from(tx);
	struct gn_pool *pool = mx->pool;
	const char *ip = gn_conn_remote_ip(conn);
	const char *rcpt_s = gn_addr_to_string(pool, rcpt);
	char *tls = NULL, *p;

	if (gn_conn_is_tls(conn)) {
		const char *v = gn_conn_tls_version(conn), *c = gn_conn_tls_cipher(conn);
		/* RFC 8314 4.3 asks for the TLS details in Received; in the
		 * comment form Postfix made familiar. */
		tls = gn_pool_printf(pool, "\r\n\t(using %s with cipher %s)",
				     v != NULL ? v : "TLS", c != NULL ? c : "unknown");
	}
	/* RFC 5321 4.4: Return-Path at final delivery, then the trace. */
	p = gn_pool_printf(pool,
			   "Return-Path: <%s>\r\n"
			   "Delivered-To: %s\r\n"
			   "Received: from %s (%s%s]) by %s (Gannet)\r\n"
			   "\twith %s%s id %s\r\n"
			   "\tfor <%s>; %s\r\n",
			   from != NULL ? gn_addr_to_string(pool, from) : "",
			   rcpt_s,
			   safe_word(pool, gn_smtp_session_helo(s)),
			   strchr(ip, ':') != NULL ? "[IPv6:" : "[", ip,
			   gn_smtp_session_hostname(s),
			   gn_smtp_session_protocol(s), tls != NULL ? tls : "",
			   gn_smtp_tx_id(tx), rcpt_s, rfc5322_date(pool, time(NULL)));
	*len_r = strlen(p);
	return p;
}

/* ---- transactions ---- */

static void mx_tx_end(struct mx_session *mx)
{
	gn_delivery_free(&mx->d);	/* cancels a pending check or run */
	mx->checking = false;
	mx->running = false;
	gn_pool_clear(mx->pool);
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
	gn_delivery_limits_init(&limits);
	limits.max_size = settings.max_message_size;
	limits.max_recipients = settings.max_recipients;
	mx->d = gn_delivery_new("smtp", &limits);
	gn_delivery_set_sender(mx->d, from);
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

static void rcpt_checked(struct gn_delivery *d, void *data)
{
	struct mx_session *mx = data;
	mx->checking = false;
	answer_result(mx->s, gn_delivery_result(d, (size_t)mx->pending_index));
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
	if (addr->domain[0] == '\0') {
		/* RFC 5321 4.5.1: the bare <Postmaster> is this host's. */
		if (gn_addr_from_parts(mx->pool, "postmaster", gn_smtp_session_hostname(s),
				       &pm, &err) < 0) {
			gn_smtp_answer(s, 550, "5.1.1", "No postmaster here");
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
	mx->checking = true;
	if (gn_delivery_check(mx->d, rcpt_checked, mx) < 0) {
		mx->checking = false;
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
	}
}

static int mx_data_chunk(struct gn_smtp_session *s, const char *buf, size_t len, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	(void)data;
	if (mx->d == NULL)
		return -1;
	/* -1 (too big, store failed): the run's results say so. */
	return gn_delivery_write(mx->d, buf, len);
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
		if (r == NULL)
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
		 * accepted at RCPT fail now: logged (a DSN with the queue). */
		for (size_t i = 0; i < n; i++) {
			const struct gn_delivery_result *r = gn_delivery_result(d, i);
			const struct gn_addr *a = gn_delivery_recipient(d, i);
			if (r == NULL || r->status == GN_DELIVERY_ACCEPTED)
				continue;
			gn_log(GN_LOG_WARN, AREA, "event=rcpt_failed_after_data id=%s tx=%s "
			       "rcpt=%s code=%d enhanced=%s text=%s",
			       gn_conn_id(gn_smtp_session_conn(s)), id,
			       gn_log_quote(0, a != NULL ? gn_addr_to_string(mx->pool, a) : "-"),
			       r->code, r->enhanced ? r->enhanced : "-",
			       gn_log_quote(1, r->text ? r->text : ""));
		}
		gn_log(GN_LOG_INFO, AREA, "event=message_accepted id=%s tx=%s size=%llu "
		       "recipients=%zu", gn_conn_id(gn_smtp_session_conn(s)), id,
		       (unsigned long long)gn_delivery_size(d), ok);
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

static void mx_data_end(struct gn_smtp_session *s, void *data)
{
	struct mx_session *mx = gn_smtp_session_data(s);
	(void)data;
	if (mx->d == NULL) {
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	mx->running = true;
	if (gn_delivery_run(mx->d, run_done, mx) < 0) {
		mx->running = false;
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
	}
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

static int mx_register(struct gn_module_ctx *ctx, const char **error_r)
{
	gn_smtp_settings_init(&settings);
	gn_smtp_settings_read(gn_module_config(ctx), &settings);
	return gn_smtp_server_register(ctx, "smtp", &settings, &mx_policy, NULL, error_r)
		!= NULL ? 0 : -1;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "smtp",
	.version = "0.1.0",
	.register_fn = mx_register,
};
