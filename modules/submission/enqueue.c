/*
 * modules/submission/enqueue.c: the hand-over of a submitted message to the
 * outbound queue (gannet/queue.h, gn_queue_add()).
 *
 *   1. DKIM: the message is signed with every enabled key of its From
 *      domain (gn_store_dkim_sign(); relaxed/relaxed); the signatures go
 *      in front of the message.  No key: sent unsigned (logged at debug).
 *   2. The body is written as a blob (outside the transaction, on the
 *      writer's lease), then one transaction: the blob's finish,
 *      gn_queue_add() (recipients, FromIDs, release time, extra data) and
 *      submission_limits_record(); commit.  No lock on the account:
 *      sessions of one account do not wait for each other's commits.
 *   3. Only after the commit: 250 2.0.0 with the queue id.  Any failure
 *      rolls the transaction back (nothing half-written) and answers 451
 *      4.3.0 with a log line (event=queue_failed): fail closed, the client
 *      keeps the message and retries.
 *
 * Steps 1 and 2 are submission_queue(), shared with the service
 * (service.c); step 3 is the SMTP path's.  The FromID helpers live here
 * too, for both paths.
 */
#include "submission.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* The extra data as a JSON object of strings (keys and values are UTF-8
 * without control characters other than tab, message.c). */
static const char *extra_json(struct gn_pool *pool, const struct submission_message *msg)
{
	struct gn_buf *b;
	const char *out;

	if (msg->extra_count == 0)
		return NULL;
	b = gn_buf_new(0);
	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < msg->extra_count; i++) {
		const char *kv[2] = { msg->extra[i].key, msg->extra[i].value };
		if (i > 0)
			gn_buf_append_str(b, ",");
		for (int k = 0; k < 2; k++) {
			gn_buf_append_str(b, "\"");
			for (const char *p = kv[k]; *p != '\0'; p++) {
				if (*p == '"' || *p == '\\')
					gn_buf_printf(b, "\\%c", *p);
				else if ((unsigned char)*p < 0x20)
					gn_buf_printf(b, "\\u%04x", (unsigned)(unsigned char)*p);
				else
					gn_buf_append(b, p, 1);
			}
			gn_buf_append_str(b, k == 0 ? "\":" : "\"");
		}
	}
	gn_buf_append_str(b, "}");
	out = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return out;
}

/* The DKIM-Signature fields for the message into sigs: their number (0:
 * no key for the domain), or -1. */
static int sign(const struct submission_message *msg, struct gn_buf *sigs, const char **error_r)
{
	struct gn_dkim_signer *signer = gn_dkim_signer_new();
	int r = -1;

	if (gn_dkim_signer_update(signer, msg->data, msg->size, error_r) == 0 &&
	    gn_dkim_signer_finish(signer, error_r) == 0)
		r = gn_store_dkim_sign(signer, msg->from_domain, time(NULL), sigs, error_r);
	gn_dkim_signer_free(&signer);
	return r;
}

/* Writes the body and queues it in one transaction with the limits'
 * record: the held count (0 or more) with *id_r, or -1 rolled back. */
static int store(struct gn_pool *pool, const struct submission_message *msg,
		 const struct gn_buf *sigs, int64_t *id_r, const char **error_r)
{
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	unsigned char hash[GN_STORE_HASH_SIZE];
	struct gn_queue_message q;
	int held = -1;

	if ((gn_buf_len(sigs) > 0 &&
	     gn_store_blob_write(w, gn_buf_data(sigs), gn_buf_len(sigs), error_r) < 0) ||
	    gn_store_blob_write(w, msg->data, msg->size, error_r) < 0)
		goto out;
	if (gn_db_begin(error_r) < 0)
		goto out;
	if (gn_store_blob_finish(w, hash, NULL, error_r) < 0)
		goto rollback;
	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.account_id = msg->account_id;
	q.sender = msg->sender;
	q.recipients = msg->rcpts;
	q.n_recipients = msg->rcpt_count;
	q.blob_hash = hash;
	q.release_at = msg->hold_until;
	q.extra_json = extra_json(pool, msg);
	q.smtputf8 = msg->smtputf8;
	q.from_ids = msg->from_ids;
	q.header = msg->data;
	q.header_len = msg->size;
	q.require_tls = msg->requiretls ? GN_QUEUE_TLS_REQUIRED :
		msg->tls_required_no ? GN_QUEUE_TLS_RELAXED : GN_QUEUE_TLS_DEFAULT;
	q.recipient_ids_r = msg->rcpt_ids_r;
	held = gn_queue_add(&q, id_r, error_r);
	if (held < 0)
		goto rollback;
	if (submission_limits_record(pool, msg, error_r) < 0)
		goto rollback;
	if (gn_db_commit(error_r) < 0) {
		held = -1;
		goto out;
	}
	goto out;
rollback:
	held = -1;
	gn_db_rollback();
out:
	gn_store_blob_writer_free(&w);
	return held;
}

int submission_queue(const char *conn, const struct submission_message *msg, int64_t *id_r)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_buf *sigs = gn_buf_new(0);
	const char *err = NULL;
	int nsig, held = -1;

	*id_r = 0;
	nsig = sign(msg, sigs, &err);
	if (nsig < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=dkim_failed id=%s tx=%s domain=%s error=%s",
		       conn, msg->tx_id, gn_log_quote(0, msg->from_domain),
		       gn_log_quote(1, err != NULL ? err : "?"));
		goto out;
	}
	if (nsig == 0)
		gn_log(GN_LOG_DEBUG, SUBMISSION_AREA, "event=dkim_unsigned id=%s tx=%s domain=%s "
		       "reason=\"no enabled DKIM key\"", conn, msg->tx_id,
		       gn_log_quote(0, msg->from_domain));
	held = store(pool, msg, sigs, id_r, &err);
	if (held < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=queue_failed id=%s tx=%s account=%s "
		       "error=%s", conn, msg->tx_id, gn_log_quote(0, msg->account),
		       gn_log_quote(1, err != NULL ? err : "?"));
		goto out;
	}
	gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=queued id=%s tx=%s account=%s "
	       "queue_id=%" PRId64 " recipients=%zu held=%d fromids=%s signatures=%d "
	       "size=%zu extra=%zu hold_until=%lld require_tls=%s message_id=%s", conn, msg->tx_id,
	       gn_log_quote(0, msg->account), *id_r, msg->rcpt_count, held,
	       msg->from_ids != NULL ? "yes" : "no", nsig, msg->size + gn_buf_len(sigs),
	       msg->extra_count, (long long)msg->hold_until,
	       msg->requiretls ? "requiretls" : msg->tls_required_no ? "relaxed" : "default",
	       gn_log_quote(1, msg->message_id != NULL ? msg->message_id : "-"));
out:
	gn_buf_free(&sigs);
	gn_pool_free(&pool);
	return held;
}

void submission_enqueue(struct gn_smtp_session *s, const struct submission_message *msg)
{
	int64_t id;

	if (submission_queue(gn_conn_id(gn_smtp_session_conn(s)), msg, &id) >= 0)
		gn_smtp_answer(s, 250, "2.0.0", "Message queued as %" PRId64, id);
	else
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
}

/* ---- FromIDs (mox.md 2.5) ---- */

const char *submission_fromid_random(struct gn_pool *pool, const char **error_r)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char rnd[16];
	char out[23];
	size_t o = 0;
	unsigned bits = 0, nbits = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		*error_r = "no random bytes for a FromID";
		return NULL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		bits = (bits << 8) | rnd[i];
		nbits += 8;
		while (nbits >= 6) {
			nbits -= 6;
			out[o++] = b64[(bits >> nbits) & 0x3f];
		}
	}
	if (nbits > 0)
		out[o++] = b64[(bits << (6 - nbits)) & 0x3f];
	out[o] = '\0';
	return gn_pool_strdup(pool, out);
}

int submission_fromid_base(struct gn_pool *pool, const struct gn_addr *from,
			   const struct gn_addr **base_r, const char **error_r)
{
	struct gn_store_domain *dom = NULL;
	int r = gn_store_domain_find(pool, from->domain, &dom, error_r);
	if (r < 0)
		return -1;
	const char *seps = r > 0 ? gn_store_domain_catchall_separators(dom) : "";
	if (seps[0] == '\0')
		return 0;
	*base_r = gn_addr_strip_catchall(pool, from, seps);
	return 1;
}
