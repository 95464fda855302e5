/*
 * core/queue/dsn.c: delivery status notifications of the queue.
 *
 * RFC 3464 (and RFC 3462, now 6522, multipart/report): a human part, the
 * machine-readable message/delivery-status, and the original message's
 * header as text/rfc822-headers.  When an address or the header is not
 * ASCII, the RFC 6533 types message/global-delivery-status and
 * message/global-headers carry them as UTF-8.
 *
 * The DSN goes straight into the sender account's Inbox through the
 * delivery pipeline (gannet/deliver.h: an account added directly, its
 * mailbox fixed), from postmaster@<hostname> with the null return path:
 * the queue generates DSNs only for mail its own accounts submitted
 * (mox.md 2.8), and never for a message from <> (the caller's check).
 */
#include "queue/internal.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <gnutls/crypto.h>

static const char *hostname(void)
{
	return core_conf != NULL && core_conf->hostname != NULL ? core_conf->hostname : "localhost";
}

/* RFC 5322 3.3 date-time in UTC. */
static const char *rfc5322_date(struct gn_pool *pool, double t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	char buf[64];
	strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return gn_pool_strdup(pool, buf);
}

static const char *random_hex(struct gn_pool *pool, size_t n)
{
	unsigned char b[32];
	if (n > sizeof(b))
		n = sizeof(b);
	if (gnutls_rnd(GNUTLS_RND_NONCE, b, n) < 0)
		memset(b, 0x5a, n);
	char *s = gn_pool_alloc(pool, 2 * n + 1);
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = "0123456789abcdef"[b[i] >> 4];
		s[2 * i + 1] = "0123456789abcdef"[b[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

static bool is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* The header in buf[0..got): up to the blank line that ends it, at most
 * QUEUE_DSN_HEADER_MAX bytes (then cut after its last whole line), with
 * CRLF line ends. */
static const char *header_of(struct gn_pool *pool, const char *buf, size_t got, size_t *len_r)
{
	if (got > QUEUE_DSN_HEADER_MAX)
		got = QUEUE_DSN_HEADER_MAX;
	size_t end = got;
	for (size_t i = 0; i < got; i++) {
		if (buf[i] == '\n' && i + 1 < got && buf[i + 1] == '\n') {
			end = i + 1;
			break;
		}
		if (buf[i] == '\n' && i + 2 < got && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 1;
			break;
		}
	}
	if (end == got)	/* no blank line within the limit: whole lines only */
		while (end > 0 && buf[end - 1] != '\n')
			end--;
	/* Normalise line ends to CRLF. */
	struct gn_buf *b = gn_buf_new(0);
	for (size_t i = 0; i < end; i++) {
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			gn_buf_append(b, "\r", 1);
		if (buf[i] == '\r' && (i + 1 >= end || buf[i + 1] != '\n'))
			continue;	/* a bare CR */
		gn_buf_append(b, &buf[i], 1);
	}
	*len_r = gn_buf_len(b);
	const char *s = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

/* The original's header from its blob; "" when it cannot be read. */
static const char *original_header(struct gn_pool *pool, const unsigned char *hash, size_t *len_r)
{
	*len_r = 0;
	struct gn_store_body *body = NULL;
	const char *err;
	if (hash == NULL || gn_store_blob_open(hash, &body, &err) <= 0)
		return "";
	char *buf = gn_pool_alloc(pool, QUEUE_DSN_HEADER_MAX + 1);
	size_t got = 0;
	if (gn_store_body_read(body, 0, buf, QUEUE_DSN_HEADER_MAX, &got, &err) < 0)
		got = 0;
	gn_store_body_free(&body);
	return header_of(pool, buf, got, len_r);
}

/* RFC 3464 2.3.4: the status, class 5 (failed) or 4 (delayed), keeping the
 * subject and detail of the reported enhanced code when it has them. */
static const char *status_of(struct gn_pool *pool, const struct queue_dsn_rcpt *r, char cls)
{
	const char *e = r->enhanced;
	if (e != NULL && (e[0] == '4' || e[0] == '5') && e[1] == '.') {
		/* x.y.z with digits only */
		size_t i = 2, dots = 0;
		for (; e[i] != '\0' && i < 12; i++) {
			if (e[i] == '.')
				dots++;
			else if (e[i] < '0' || e[i] > '9')
				break;
		}
		if (e[i] == '\0' && dots == 1)
			return gn_pool_printf(pool, "%c.%s", cls, e + 2);
	}
	return gn_pool_printf(pool, "%c.0.0", cls);
}

const char *queue_dsn_build(struct gn_pool *pool, const struct queue_dsn *dsn, size_t *len_r,
			    const char **error_r)
{
	if (dsn->sender == NULL || dsn->sender[0] == '\0') {
		*error_r = "no DSN for a message from <>";
		return NULL;
	}
	bool failed = dsn->kind == QUEUE_DSN_FAILED;
	char cls = failed ? '5' : '4';
	size_t hlen;
	const char *hdr = dsn->blob_hash == NULL && dsn->header != NULL
			  ? header_of(pool, dsn->header, dsn->header_len, &hlen)
			  : original_header(pool, dsn->blob_hash, &hlen);
	bool utf8 = !is_ascii(dsn->sender, strlen(dsn->sender)) || !is_ascii(hdr, hlen);
	for (size_t i = 0; i < dsn->n_rcpts; i++)
		if (!is_ascii(dsn->rcpts[i].rcpt, strlen(dsn->rcpts[i].rcpt)))
			utf8 = true;
	const char *host = hostname();
	const char *boundary = gn_pool_printf(pool, "gannet-dsn-%s", random_hex(pool, 12));
	double now = gn_queue_now();

	struct gn_buf *b = gn_buf_new(0);
	gn_buf_printf(b, "From: Mail Delivery Subsystem <postmaster@%s>\r\n", host);
	gn_buf_printf(b, "To: <%s>\r\n", dsn->sender);
	gn_buf_printf(b, "Subject: %s\r\n", failed ? "mail delivery failed" : "mail delivery delayed");
	gn_buf_printf(b, "Date: %s\r\n", rfc5322_date(pool, now));
	gn_buf_printf(b, "Message-ID: <dsn-%s@%s>\r\n", random_hex(pool, 12), host);
	if (dsn->message_id != NULL && dsn->message_id[0] != '\0' && strlen(dsn->message_id) < 900 &&
	    strpbrk(dsn->message_id, "\r\n") == NULL)
		gn_buf_printf(b, "References: %s\r\n", dsn->message_id);
	/* RFC 3834 5: a machine's answer, which nothing answers in turn. */
	gn_buf_printf(b, "Auto-Submitted: auto-replied\r\n");
	gn_buf_printf(b, "MIME-Version: 1.0\r\n");
	gn_buf_printf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		      "\tboundary=\"%s\"\r\n\r\n", boundary);
	gn_buf_printf(b, "This is a delivery status notification in MIME format.\r\n\r\n");

	/* The human part. */
	gn_buf_printf(b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n\r\n", boundary);
	if (failed)
		gn_buf_printf(b, "Your message could not be delivered to the following recipient%s:\r\n\r\n",
			      dsn->n_rcpts == 1 ? "" : "s");
	else
		gn_buf_printf(b, "Delivery of your message to the following recipient%s has been delayed;\r\n"
			      "it will be attempted again, and you will be told if it fails for good:\r\n\r\n",
			      dsn->n_rcpts == 1 ? "" : "s");
	for (size_t i = 0; i < dsn->n_rcpts; i++) {
		const struct queue_dsn_rcpt *r = &dsn->rcpts[i];
		gn_buf_printf(b, "  %s\r\n", r->rcpt);
		if (r->code > 0)
			gn_buf_printf(b, "    the server%s%s answered: %d %s%s%s\r\n", r->host ? " " : "",
				      r->host ? r->host : "", r->code, r->enhanced ? r->enhanced : "",
				      r->enhanced ? " " : "", r->text ? r->text : "");
		else if (r->text != NULL)
			gn_buf_printf(b, "    %s\r\n", r->text);
		if (!failed && r->retry_until > 0)
			gn_buf_printf(b, "    attempts continue until %s\r\n", rfc5322_date(pool, r->retry_until));
	}
	gn_buf_printf(b, "\r\nThe header of your message follows at the end.\r\n\r\n");

	/* RFC 3464 2.2: per-message fields, then a block per recipient. */
	gn_buf_printf(b, "--%s\r\nContent-Type: message/%sdelivery-status\r\n\r\n", boundary,
		      utf8 ? "global-" : "");
	gn_buf_printf(b, "Reporting-MTA: dns; %s\r\n", host);
	if (dsn->queued_at > 0)
		gn_buf_printf(b, "Arrival-Date: %s\r\n", rfc5322_date(pool, dsn->queued_at));
	for (size_t i = 0; i < dsn->n_rcpts; i++) {
		const struct queue_dsn_rcpt *r = &dsn->rcpts[i];
		/* RFC 6533 3.2: utf-8 address type for non-ASCII. */
		gn_buf_printf(b, "\r\nFinal-Recipient: %s; %s\r\n",
			      is_ascii(r->rcpt, strlen(r->rcpt)) ? "rfc822" : "utf-8", r->rcpt);
		gn_buf_printf(b, "Action: %s\r\n", failed ? "failed" : "delayed");
		gn_buf_printf(b, "Status: %s\r\n", status_of(pool, r, cls));
		if (r->host != NULL && r->host[0] != '\0')
			gn_buf_printf(b, "Remote-MTA: dns; %s\r\n", r->host);
		if (r->code > 0)
			gn_buf_printf(b, "Diagnostic-Code: smtp; %d %s%s%s\r\n", r->code,
				      r->enhanced ? r->enhanced : "", r->enhanced ? " " : "",
				      r->text ? r->text : "");
		if (r->last_attempt > 0)
			gn_buf_printf(b, "Last-Attempt-Date: %s\r\n", rfc5322_date(pool, r->last_attempt));
		if (!failed && r->retry_until > 0)
			gn_buf_printf(b, "Will-Retry-Until: %s\r\n", rfc5322_date(pool, r->retry_until));
	}
	gn_buf_printf(b, "\r\n");

	/* RFC 6522 3 / RFC 6533 3.4: the original header. */
	gn_buf_printf(b, "--%s\r\nContent-Type: %s\r\n%s\r\n", boundary,
		      utf8 ? "message/global-headers" : "text/rfc822-headers",
		      utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	gn_buf_append(b, hdr, hlen);
	gn_buf_printf(b, "\r\n--%s--\r\n", boundary);

	*len_r = gn_buf_len(b);
	const char *s = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

int queue_dsn_deliver(const struct queue_dsn *dsn, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	size_t len;
	const char *text = queue_dsn_build(pool, dsn, &len, error_r);
	if (text == NULL) {
		gn_pool_free(&pool);
		return -1;
	}
	const char *prefix = gn_pool_printf(pool, "Return-Path: <>\r\nDelivered-To: %s\r\n", dsn->sender);
	struct gn_delivery *d = gn_delivery_new("queue", NULL);
	gn_delivery_set_sender(d, NULL);
	gn_delivery_set_mailbox_default(d, "Inbox", GN_DELIVERY_FIXED_MAILBOX);
	(void)gn_delivery_add_account(d, dsn->account_id, prefix, strlen(prefix));
	int r = gn_delivery_write(d, text, len);
	if (r == 0)
		r = gn_delivery_run_sync(d) == 1 ? 0 : -1;
	if (r < 0) {
		const struct gn_delivery_result *res = gn_delivery_result(d, 0);
		*error_r = store_errf("the DSN was not stored: %d %s %s", res ? res->code : 0,
				      res && res->enhanced ? res->enhanced : "",
				      res && res->text ? res->text : "");
	} else {
		gn_log(GN_LOG_INFO, "core", "event=queue_dsn kind=%s account=%" PRId64 " recipients=%zu",
		       dsn->kind == QUEUE_DSN_FAILED ? "failed" : "delayed", dsn->account_id, dsn->n_rcpts);
	}
	gn_delivery_free(&d);
	gn_pool_free(&pool);
	return r;
}

/* ---- a receiver's DSN ---- */

int gn_queue_bounce_add(const struct gn_queue_bounce *bp, int64_t *message_id_r, const char **error_r)
{
	struct gn_queue_bounce b;
	memset(&b, 0, sizeof(b));
	if (bp == NULL || bp->size < offsetof(struct gn_queue_bounce, n_rcpts) + sizeof(size_t)) {
		*error_r = "malformed struct gn_queue_bounce";
		return -1;
	}
	memcpy(&b, bp, bp->size < sizeof(b) ? bp->size : sizeof(b));
	if (b.to == NULL || b.n_rcpts == 0 || b.n_rcpts > QUEUE_MAX_RECIPIENTS || b.rcpts == NULL) {
		*error_r = "a bounce needs a sender to go to and 1 to 1000 recipients";
		return -1;
	}
	struct gn_pool *pool = gn_pool_new();
	struct queue_dsn_rcpt *rs = gn_pool_alloc(pool, b.n_rcpts * sizeof(*rs));
	double now = gn_queue_now();
	for (size_t i = 0; i < b.n_rcpts; i++) {
		rs[i].rcpt = gn_addr_to_string(pool, b.rcpts[i].rcpt);
		rs[i].code = b.rcpts[i].code;
		rs[i].enhanced = b.rcpts[i].enhanced;
		rs[i].text = b.rcpts[i].text;
		rs[i].host = NULL;
		rs[i].last_attempt = now;
	}
	struct queue_dsn dsn = {
		.kind = QUEUE_DSN_FAILED, .account_id = b.account_id,
		.sender = gn_addr_to_string(pool, b.to), .header = b.header, .header_len = b.header_len,
		.message_id = b.message_id != NULL ? b.message_id : "", .queued_at = now,
		.rcpts = rs, .n_rcpts = b.n_rcpts,
	};
	size_t len;
	const char *text = queue_dsn_build(pool, &dsn, &len, error_r);
	if (text == NULL) {
		gn_pool_free(&pool);
		return -1;
	}
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	unsigned char hash[GN_STORE_HASH_SIZE];
	const struct gn_addr *to[1] = { b.to };
	struct gn_queue_message m = {
		.size = sizeof(m), .account_id = b.account_id, .sender = NULL,
		.recipients = to, .n_recipients = 1, .blob_hash = hash,
		.smtputf8 = gn_addr_needs_smtputf8(b.to),
	};
	int r = -1;
	/* The store's lock order: the account before the blob. */
	if (gn_store_blob_write(w, text, len, error_r) == 0 && gn_db_begin(error_r) == 0) {
		int locked = gn_store_account_lock(b.account_id, error_r);
		if (locked == 0)
			*error_r = "no such account";
		if (locked > 0 && gn_store_blob_finish(w, hash, NULL, error_r) == 0 &&
		    gn_queue_add(&m, message_id_r, error_r) >= 0 && gn_db_commit(error_r) == 0)
			r = 0;
		if (r < 0 && gn_db_in_transaction())
			gn_db_rollback();
	}
	gn_store_blob_writer_free(&w);
	gn_pool_free(&pool);
	return r;
}
