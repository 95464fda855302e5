/*
 * modules/submission/enqueue.c: the hand-over of a submitted message to the
 * outbound queue (gannet/queue.h, gn_queue_add()).
 *
 *   1. DKIM: the message is signed with every enabled key of its From
 *      domain (gn_store_dkim_sign(); relaxed/relaxed); the signatures go
 *      in front of the message.  No key: sent unsigned (logged at debug).
 *   2. One transaction: gn_queue_add() (the body, recipients, FromIDs,
 *      release time, extra data) and submission_limits_record(); commit.
 *      A body of at most one blob chunk goes to gn_queue_add() as bytes,
 *      stored in the statement that queues it; a larger one is written
 *      as a blob first (outside the transaction, on the writer's lease)
 *      and finished in it.  No lock on the account: sessions of one
 *      account do not wait for each other's commits.
 *   3. Only after the commit: 250 2.0.0 with the queue id.  Any failure
 *      rolls the transaction back (nothing half-written) and answers 451
 *      4.3.0 with a log line (event=queue_failed): fail closed, the client
 *      keeps the message and retries.
 *
 * Steps 1 and 2 are submission_queue(), shared with the service
 * (service.c); step 3 is the SMTP path's.  The FromID helpers live here
 * too, for both paths.
 *
 * Group commit (the SMTP path): a worker's sessions whose messages end
 * within one turn of the loop (or within submission.group_commit_ms)
 * share one transaction: BEGIN, each message's step 2, COMMIT, and only
 * then each one's 250.  What a 250 promises is unchanged (the message
 * and its queue rows are committed, synchronous_commit as configured),
 * but the BEGIN, the COMMIT and its WAL flush are paid once for the
 * batch instead of once a message; the worker was blocked in the
 * previous batch's statements while the next batch's messages arrived.
 * When a statement of the batch fails, the transaction is rolled back and
 * every message of it is stored again in a transaction of its own, so
 * that only the one that fails again gets its 451 (logged:
 * event=queue_batch_failed).  A COMMIT that fails answers 451 to the
 * whole batch and is not tried again: its outcome may be unknown (a
 * broken connection), and a second copy of a message the client will
 * send again anyway is worse than a 451.  Messages larger than one blob
 * chunk (their chunks are written outside any transaction) and the
 * service's keep one transaction each.
 */
#include "submission.h"

#include <gannet/loop.h>

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

/* The signatures and the message into a new blob writer w: 0, or -1
 * (small bodies are only hashed and kept here; larger ones go to the
 * database chunk by chunk, each in its own transaction). */
static int blob_write(struct gn_store_blob_writer *w, const struct submission_message *msg,
		      const struct gn_buf *sigs, const char **error_r)
{
	if (gn_buf_len(sigs) > 0 &&
	    gn_store_blob_write(w, gn_buf_data(sigs), gn_buf_len(sigs), error_r) < 0)
		return -1;
	return gn_store_blob_write(w, msg->data, msg->size, error_r);
}

/* Whether the message and its signatures fit one blob chunk: then they go
 * to the queue as bytes (gn_queue_message.body), stored in the statement
 * that queues them; a larger body goes through a blob writer, chunk by
 * chunk. */
static bool small(const struct submission_message *msg, const struct gn_buf *sigs)
{
	return msg->size + gn_buf_len(sigs) <= GN_STORE_CHUNK_SIZE;
}

/* Step 2 inside the open transaction: the body (written to w, or with w
 * NULL a small one, given as bytes), the queue and (record) the limits'
 * record.  The held count (0 or more) with *id_r, or -1: the caller rolls
 * back. */
static int queue_in_tx(struct gn_pool *pool, struct gn_store_blob_writer *w,
		       const struct submission_message *msg, const struct gn_buf *sigs, bool record,
		       int64_t *id_r, const char **error_r)
{
	unsigned char hash[GN_STORE_HASH_SIZE];
	struct gn_queue_message q;
	int held;

	memset(&q, 0, sizeof(q));
	if (w != NULL) {
		if (gn_store_blob_finish(w, hash, NULL, error_r) < 0)
			return -1;
		q.blob_hash = hash;
	} else if (gn_buf_len(sigs) == 0) {
		q.body = msg->data;
		q.body_len = msg->size;
	} else {
		char *b = gn_pool_alloc(pool, gn_buf_len(sigs) + msg->size);
		memcpy(b, gn_buf_data(sigs), gn_buf_len(sigs));
		memcpy(b + gn_buf_len(sigs), msg->data, msg->size);
		q.body = b;
		q.body_len = gn_buf_len(sigs) + msg->size;
	}
	q.size = sizeof(q);
	q.account_id = msg->account_id;
	q.sender = msg->sender;
	q.recipients = msg->rcpts;
	q.n_recipients = msg->rcpt_count;
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
		return -1;
	if (record && submission_limits_record(pool, &msg, 1, error_r) < 0)
		return -1;
	return held;
}

/* Writes the body and queues it in one transaction with the limits'
 * record: the held count (0 or more) with *id_r, or -1 rolled back. */
static int store(struct gn_pool *pool, const struct submission_message *msg,
		 const struct gn_buf *sigs, int64_t *id_r, const char **error_r)
{
	struct gn_store_blob_writer *w = small(msg, sigs) ? NULL : gn_store_blob_writer_new();
	int held = -1;

	if ((w != NULL && blob_write(w, msg, sigs, error_r) < 0) || gn_db_begin(error_r) < 0)
		goto out;
	held = queue_in_tx(pool, w, msg, sigs, true, id_r, error_r);
	if (held < 0)
		gn_db_rollback();
	else if (gn_db_commit(error_r) < 0)
		held = -1;
out:
	gn_store_blob_writer_free(&w);
	return held;
}

/* The log line of a message handed over (or not: held < 0). */
static void log_queued(const char *conn, const struct submission_message *msg,
		       const struct gn_buf *sigs, int nsig, int held, int64_t id, const char *err)
{
	if (held < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=queue_failed id=%s tx=%s account=%s "
		       "error=%s", conn, msg->tx_id, gn_log_quote(0, msg->account),
		       gn_log_quote(1, err != NULL ? err : "?"));
		return;
	}
	gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=queued id=%s tx=%s account=%s "
	       "queue_id=%" PRId64 " recipients=%zu held=%d fromids=%s signatures=%d "
	       "size=%zu extra=%zu hold_until=%lld require_tls=%s message_id=%s", conn, msg->tx_id,
	       gn_log_quote(0, msg->account), id, msg->rcpt_count, held,
	       msg->from_ids != NULL ? "yes" : "no", nsig, msg->size + gn_buf_len(sigs),
	       msg->extra_count, (long long)msg->hold_until,
	       msg->requiretls ? "requiretls" : msg->tls_required_no ? "relaxed" : "default",
	       gn_log_quote(1, msg->message_id != NULL ? msg->message_id : "-"));
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
	log_queued(conn, msg, sigs, nsig, held, *id_r, err);
out:
	gn_buf_free(&sigs);
	gn_pool_free(&pool);
	return held;
}

/* ---- group commit (the SMTP path) ---- */

/* A message waiting for its batch: the session's answer is pending, so
 * the transaction's pool and buffer (msg's pointers) live until it is
 * answered or the engine resets the transaction (submission_enqueue_cancel()). */
struct pending {
	struct pending *next;
	struct gn_smtp_session *s;
	const char *conn;		/* the connection's id, for the logs */
	struct submission_message msg;
	struct gn_buf *sigs;
	int nsig;
	int held;			/* in the batch's transaction */
	int64_t id;
};

static struct {
	struct pending *head, **tail;	/* waiting for the next flush */
	struct pending *flushing;	/* of the flush under way, not yet answered */
	struct gn_timer *timer;
	bool armed;
	/* Counts for the debug log line of a flush. */
	unsigned long long batches, messages;
} batch;

static void pending_free(struct pending *p)
{
	gn_buf_free(&p->sigs);
	gn_free(p);
}

/* Answers p's session (and logs it): 250 with held >= 0, else 451. */
static void answer(struct pending *p, int held, int64_t id, const char *err)
{
	struct gn_smtp_session *s = p->s;
	log_queued(p->conn, &p->msg, p->sigs, p->nsig, held, id, err);
	pending_free(p);
	if (held >= 0)
		gn_smtp_answer(s, 250, "2.0.0", "Message queued as %" PRId64, id);
	else
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
}

/* Step 2 for the messages of list in one transaction: 1 committed (each
 * one's held and id set), 0 a statement failed and all was rolled back
 * (*error_r: the first failure), -1 the BEGIN or the COMMIT failed. */
static int batch_store(struct gn_pool *pool, struct pending *list, size_t n,
		       const char **error_r)
{
	if (gn_db_begin(error_r) < 0)
		return -1;
	/* Generic plans for the transaction's statements: PostgreSQL keeps
	 * planning the queue's statement anew for its parameters (custom
	 * plans: the generic one's estimate for arrays of unknown length is
	 * higher), which cost about as much as running it. */
	if (gn_db_exec("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)",
		       0, NULL, error_r) < 0) {
		gn_db_rollback();
		return -1;
	}
	for (struct pending *p = list; p != NULL; p = p->next) {
		p->held = queue_in_tx(pool, NULL, &p->msg, p->sigs, false, &p->id, error_r);
		if (p->held < 0)
			goto failed;
	}
	/* The limits' record once an account of the batch. */
	const struct submission_message **msgs = gn_pool_alloc(pool, n * sizeof(*msgs));
	for (struct pending *p = list; p != NULL; p = p->next) {
		size_t k = 0;
		bool first = true;
		for (struct pending *q = list; q != NULL; q = q->next) {
			if (q->msg.account_id != p->msg.account_id)
				continue;
			if (q == p)
				first = k == 0;
			msgs[k++] = &q->msg;
		}
		if (first && submission_limits_record(pool, msgs, k, error_r) < 0)
			goto failed;
	}
	return gn_db_commit(error_r) < 0 ? -1 : 1;
failed:
	gn_db_rollback();
	if (n > 1)
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=queue_batch_failed messages=%zu error=%s "
		       "note=\"each message again in its own transaction\"", n,
		       gn_log_quote(0, *error_r != NULL ? *error_r : "?"));
	return 0;
}

static void batch_flush(void *data)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	size_t n = 0;
	int r = 0;
	(void)data;

	/* Messages that end while this flush answers go to the next one. */
	batch.armed = false;
	batch.flushing = batch.head;
	batch.head = NULL;
	batch.tail = &batch.head;
	for (struct pending *p = batch.flushing; p != NULL; p = p->next)
		n++;
	if (n == 0) {		/* every one cancelled meanwhile */
		gn_pool_free(&pool);
		return;
	}
	r = batch_store(pool, batch.flushing, n, &err);
	batch.batches++;
	batch.messages += n;
	gn_log(GN_LOG_DEBUG, SUBMISSION_AREA, "event=queue_batch messages=%zu result=%s "
	       "batches=%llu mean=%.2f", n, r > 0 ? "committed" :
	       r == 0 ? "again_alone" : "failed", batch.batches,
	       (double)batch.messages / (double)batch.batches);
	/* Each popped before it is answered: an answer may run the
	 * session's next commands, even end its next message. */
	while (batch.flushing != NULL) {
		struct pending *p = batch.flushing;
		batch.flushing = p->next;
		if (r > 0) {
			answer(p, p->held, p->id, NULL);
		} else if (r < 0 || n == 1) {
			/* A COMMIT that failed is not tried again (the
			 * file's header says why); a message alone that
			 * failed would only fail again. */
			answer(p, -1, 0, err);
		} else {
			const char *e = NULL;
			int64_t id = 0;
			int held = store(pool, &p->msg, p->sigs, &id, &e);
			answer(p, held, id, e);
		}
	}
	gn_pool_free(&pool);
}

void submission_enqueue(struct gn_smtp_session *s, const struct submission_message *msg)
{
	const char *conn = gn_conn_id(gn_smtp_session_conn(s));
	struct gn_buf *sigs = gn_buf_new(0);
	const char *err = NULL;
	int nsig = sign(msg, sigs, &err);

	if (nsig < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=dkim_failed id=%s tx=%s domain=%s error=%s",
		       conn, msg->tx_id, gn_log_quote(0, msg->from_domain),
		       gn_log_quote(1, err != NULL ? err : "?"));
		gn_buf_free(&sigs);
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	if (nsig == 0)
		gn_log(GN_LOG_DEBUG, SUBMISSION_AREA, "event=dkim_unsigned id=%s tx=%s domain=%s "
		       "reason=\"no enabled DKIM key\"", conn, msg->tx_id,
		       gn_log_quote(0, msg->from_domain));
	struct pending *p = gn_calloc(1, sizeof(*p));
	p->s = s;
	p->conn = conn;
	p->msg = *msg;
	p->sigs = sigs;
	p->nsig = nsig;
	if (!small(msg, sigs)) {
		/* Its chunks go to the database as they fill, each in a
		 * transaction of its own: not inside a batch's. */
		int64_t id = 0;
		struct gn_pool *pool = gn_pool_new();
		int held = store(pool, msg, sigs, &id, &err);
		gn_pool_free(&pool);
		answer(p, held, id, err);
		return;
	}
	if (batch.tail == NULL)
		batch.tail = &batch.head;
	*batch.tail = p;
	batch.tail = &p->next;
	if (!batch.armed) {
		batch.armed = true;
		if (batch.timer == NULL)
			batch.timer = gn_timer_new((unsigned long)submission_settings.group_commit_ms,
						   false, batch_flush, NULL);
		else
			gn_timer_reset(batch.timer);
	}
}

void submission_enqueue_cancel(struct gn_smtp_session *s)
{
	struct pending **lists[2] = { &batch.head, &batch.flushing };
	for (size_t i = 0; i < 2; i++)
		for (struct pending **pp = lists[i]; *pp != NULL; pp = &(*pp)->next) {
			if ((*pp)->s != s)
				continue;
			struct pending *p = *pp;
			*pp = p->next;
			if (i == 0 && batch.tail == &p->next)
				batch.tail = pp;
			gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=queue_cancelled id=%s tx=%s "
			       "reason=\"the transaction ended before its commit\"", p->conn, p->msg.tx_id);
			pending_free(p);
			return;
		}
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
