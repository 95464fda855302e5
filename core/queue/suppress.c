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

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The delivery-status part of a DSN: at most this many bytes are read. */
#define QUEUE_DSN_STATUS_MAX (64 * 1024)

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

void queue_suppress_failure(int64_t account_id, int64_t rcpt_id, const char *rcpt,
			    const struct gn_addr *addr, int code, const char *enhanced,
			    const char *source)
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
}

/* The value of field name (case-insensitive) in an unfolded line, or
 * NULL. */
static const char *field_value(const char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncasecmp(line, name, n) != 0)
		return NULL;
	const char *v = line + n;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v != ':')
		return NULL;
	v++;
	while (*v == ' ' || *v == '\t')
		v++;
	return v;
}

/* mox's parseSMTPCodes(): "550 5.1.1 text" gives 550 and "5.1.1". */
static int smtp_codes(struct gn_pool *pool, const char *s, const char **enhanced_r)
{
	*enhanced_r = NULL;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
	    s[3] != ' ')
		return 0;
	int code = atoi(s);
	if (code < 200 || code >= 600)
		return 0;
	const char *e = s + 4;
	if ((e[0] == '4' || e[0] == '5') && e[1] == '.')
		*enhanced_r = gn_pool_strndup(pool, e, strcspn(e, " "));
	return code;
}

void queue_suppress_dsn(struct gn_delivery *d, int64_t account_id, int64_t rcpt_id, const char *rcpt)
{
	const struct gn_suppression_ops *o = ops();
	const struct gn_mime_message *msg = gn_delivery_message(d);
	if (!GN_OPS_HAS(o, failure) || o->failure == NULL || msg == NULL)
		return;
	const struct gn_mime_part *root = gn_mime_message_root(msg);
	const struct gn_mime_part *st = root != NULL ? gn_mime_part_child(root, 1) : NULL;
	if (st == NULL)
		return;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_body *body = NULL;
	const char *err = NULL, *why = NULL;
	const char *enc = gn_mime_part_encoding(st);
	if (enc != NULL && enc[0] != '\0' && strcmp(enc, "7bit") != 0 && strcmp(enc, "8bit") != 0 &&
	    strcmp(enc, "binary") != 0) {
		why = "delivery status with a content-transfer-encoding";
		goto out;
	}
	/* The stored message is its prefix and the bytes the parser saw. */
	int r = gn_store_message_open(account_id, gn_delivery_current_mailbox_id(d),
				      gn_delivery_current_uid(d), &body, &err);
	if (r <= 0) {
		why = r < 0 ? err : "stored message not found";
		goto out;
	}
	uint64_t total = gn_store_body_size(body), size = gn_mime_message_size(msg);
	if (total < size) {
		why = "stored message shorter than parsed";
		goto out;
	}
	size_t len = gn_mime_part_body_size(st);
	if (len > QUEUE_DSN_STATUS_MAX)
		len = QUEUE_DSN_STATUS_MAX;
	char *buf = gn_pool_alloc(pool, len + 1);
	size_t got = 0;
	if (gn_store_body_read(body, total - size + gn_mime_part_body_offset(st), buf, len, &got, &err) < 0) {
		why = err;
		goto out;
	}
	buf[got] = '\0';
	/* Unfolded lines; blocks separated by empty lines: the per-message
	 * fields, then one block a recipient (RFC 3464 2.1). */
	char *text = gn_pool_alloc(pool, got + 1);
	size_t k = 0;
	for (size_t i = 0; i < got; i++) {
		if (buf[i] == '\r')
			continue;
		/* A line break before a space or tab folds the field. */
		if (buf[i] == '\n' && (buf[i + 1] == ' ' || buf[i + 1] == '\t'))
			continue;
		text[k++] = buf[i];
	}
	text[k] = '\0';
	unsigned block = 0, rcpts = 0;
	bool in_block = false;
	const char *action = NULL, *status = NULL, *diag = NULL;
	for (char *line = text; line != NULL;) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (line[0] == '\0') {
			if (in_block)
				block++;
			in_block = false;
		} else {
			if (!in_block && block > 0)
				rcpts++;
			in_block = true;
			const char *v;
			if (block > 0 && rcpts == 1) {
				if ((v = field_value(line, "Action")) != NULL)
					action = v;
				else if ((v = field_value(line, "Status")) != NULL)
					status = v;
				else if ((v = field_value(line, "Diagnostic-Code")) != NULL)
					diag = v;
			}
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	if (rcpts != 1) {
		why = gn_pool_printf(pool, "DSN with %u recipients, expecting 1", rcpts);
		goto out;
	}
	if (action == NULL || strncasecmp(action, "failed", 6) != 0 ||
	    (action[6] != '\0' && action[6] != ' ' && action[6] != '\t' && action[6] != '('))
		goto out;	/* not a failure: nothing for the list */
	int code = 0;
	const char *enhanced = NULL;
	if (diag != NULL && strncasecmp(diag, "smtp", 4) == 0 && strchr(diag, ';') != NULL) {
		const char *v = strchr(diag, ';') + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		code = smtp_codes(pool, v, &enhanced);
	}
	if (code == 0 && status != NULL && (status[0] == '4' || status[0] == '5') && status[1] == '.') {
		code = status[0] == '4' ? 400 : 500;
		enhanced = gn_pool_strndup(pool, status, strcspn(status, " \t("));
	}
	if (code == 0)
		goto out;	/* mox: no code, no suppression */
	struct gn_addr *addr;
	if (gn_addr_parse(pool, rcpt, strlen(rcpt), &addr, &err) < 0) {
		why = err;
		goto out;
	}
	gn_log(GN_LOG_INFO, "core", "event=queue_dsn_failure recipient=%" PRId64 " code=%d enhanced=%s",
	       rcpt_id, code, gn_log_quote(0, enhanced != NULL ? enhanced : ""));
	queue_suppress_failure(account_id, rcpt_id, rcpt, addr, code, enhanced, "DSN");
out:
	if (why != NULL)
		gn_log(GN_LOG_INFO, "core", "event=queue_dsn_unread recipient=%" PRId64 " reason=%s", rcpt_id,
		       gn_log_quote(0, why));
	gn_store_body_free(&body);
	gn_pool_free(&pool);
}
