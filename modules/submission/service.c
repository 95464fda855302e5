/*
 * modules/submission/service.c: the service "submission.v1"
 * (gannet/submit.h), a composed message queued for an account the way the
 * SMTP path queues it, with the SMTP path's code:
 *
 *   request      checked here: recipients (1 to max_recipients of the
 *                submission listener), size (its max_message_size), the
 *                hold (at most 60 days, as FUTURERELEASE), the extra data
 *                (max_extra keys, each once, no control characters);
 *   From         gn_store_send_as_check() as at MAIL FROM;
 *   FromIDs      the login's listing and the From domain's separator
 *                (enqueue.c, as at MAIL FROM), a random one per recipient;
 *   limits       submission_limits_check() (limits.c);
 *   hand-over    submission_queue() (enqueue.c): DKIM, blob, queue and the
 *                limits' record in one transaction.
 *
 * Refusals come back as a gn_submit_status for the caller to put in its
 * own protocol's terms (the webapi: mox's error codes).
 */
#include "submission.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

static int refuse(struct gn_submit_result *res, enum gn_submit_status st, const char *text)
{
	res->status = st;
	res->error_text = text;
	return -1;
}

/* A key of the extra data: printable ASCII, no space or ":" (it could be
 * an X-Gannet-Extra- field name); a value: no control character but tab. */
static bool extra_ok(const struct gn_submit_extra *e)
{
	if (e->key == NULL || e->value == NULL)
		return false;
	size_t kl = strlen(e->key), vl = strlen(e->value);
	if (kl == 0 || kl > 64 || vl > 4096)
		return false;
	for (size_t i = 0; i < kl; i++)
		if (e->key[i] <= ' ' || e->key[i] >= 0x7f || e->key[i] == ':')
			return false;
	for (size_t i = 0; i < vl; i++) {
		unsigned char c = (unsigned char)e->value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

static int submit(struct gn_pool *pool, const struct gn_submit_request *in,
		  struct gn_submit_result *out)
{
	struct gn_submit_request req;
	struct gn_submit_result res;
	struct submission_message msg;
	struct submission_refusal refusal;
	const char *err = NULL;
	int r;

	/* The caller must be able to hear the answer before anything is queued. */
	if (out == NULL || out->size < offsetof(struct gn_submit_result, n_rcpts) + sizeof(out->n_rcpts))
		return -1;
	memset(&res, 0, sizeof(res));
	memset(&req, 0, sizeof(req));
	memset(&msg, 0, sizeof(msg));
	memset(&refusal, 0, sizeof(refusal));
	if (in == NULL || in->size < offsetof(struct gn_submit_request, n_extra) + sizeof(in->n_extra)) {
		refuse(&res, GN_SUBMIT_USER, "struct gn_submit_request too small");
		goto done;
	}
	memcpy(&req, in, in->size < sizeof(req) ? in->size : sizeof(req));

	if (req.account_id <= 0 || req.from == NULL || req.data == NULL) {
		refuse(&res, GN_SUBMIT_USER, "an account, a From address and a message are needed");
		goto done;
	}
	if (req.n_recipients == 0 || req.recipients == NULL) {
		refuse(&res, GN_SUBMIT_NO_RECIPIENTS, "no recipients");
		goto done;
	}
	for (size_t i = 0; i < req.n_recipients; i++)
		if (req.recipients[i] == NULL || req.recipients[i]->domain[0] == '\0') {
			refuse(&res, GN_SUBMIT_USER, "a recipient without a domain");
			goto done;
		}
	if (req.n_recipients > submission_settings.smtp.max_recipients) {
		refuse(&res, GN_SUBMIT_USER, gn_pool_printf(pool, "more than %u recipients",
							    (unsigned)submission_settings.smtp.max_recipients));
		goto done;
	}
	if (req.len > submission_settings.smtp.max_message_size) {
		refuse(&res, GN_SUBMIT_TOO_LARGE, "message too large");
		goto done;
	}
	if (req.require_tls != GN_QUEUE_TLS_DEFAULT && req.require_tls != GN_QUEUE_TLS_REQUIRED &&
	    req.require_tls != GN_QUEUE_TLS_RELAXED) {
		refuse(&res, GN_SUBMIT_USER, "require_tls is not default, required or relaxed");
		goto done;
	}
	time_t now = time(NULL);
	if (req.hold_until > now + SUBMISSION_MAX_HOLD_SECONDS) {
		/* mox's FutureReleaseIntervalMax; as FUTURERELEASE. */
		refuse(&res, GN_SUBMIT_USER, "future release more than 60 days ahead");
		goto done;
	}
	if (req.hold_until <= now)
		req.hold_until = 0;
	if (req.n_extra > (size_t)submission_settings.max_extra) {
		refuse(&res, GN_SUBMIT_USER, "too many extra data keys");
		goto done;
	}
	struct submission_extra *extra = gn_pool_alloc(pool, (req.n_extra + 1) * sizeof(*extra));
	for (size_t i = 0; i < req.n_extra; i++) {
		if (!extra_ok(&req.extra[i])) {
			refuse(&res, GN_SUBMIT_USER, "bad extra data key or value");
			goto done;
		}
		for (size_t k = 0; k < i; k++)
			if (strcasecmp(req.extra[k].key, req.extra[i].key) == 0) {
				/* As the SMTP path (mox.md 2.6: 554 5.6.0). */
				refuse(&res, GN_SUBMIT_USER, "duplicate extra data key");
				goto done;
			}
		extra[i].key = req.extra[i].key;
		extra[i].value = req.extra[i].value;
	}

	r = gn_store_send_as_check(pool, req.account_id, req.from, &err);
	if (r < 0)
		goto server;
	if (r == 0) {
		refuse(&res, GN_SUBMIT_BAD_FROM, "From address not allowed for this account");
		goto done;
	}

	msg.account_id = req.account_id;
	msg.account = req.login != NULL ? req.login : "-";
	msg.login = req.login;
	msg.mail_from = req.from;
	msg.sender = req.from;
	msg.rcpts = req.recipients;
	msg.rcpt_count = req.n_recipients;
	msg.hold_until = req.hold_until;
	msg.extra = extra;
	msg.extra_count = req.n_extra;
	msg.message_id = req.message_id;
	msg.from_domain = req.from->domain;
	msg.data = req.data;
	msg.size = req.len;
	msg.smtputf8 = req.smtputf8;
	msg.requiretls = req.require_tls == GN_QUEUE_TLS_REQUIRED;
	msg.tls_required_no = req.require_tls == GN_QUEUE_TLS_RELAXED;
	msg.tx_id = "-";

	/* FromIDs: as at MAIL FROM, but always fresh ones (mox's webapi). */
	r = req.login != NULL ? gn_store_fromid_login_is(req.account_id, req.login, &err) : 0;
	if (r < 0)
		goto server;
	if (r > 0) {
		const struct gn_addr *base = NULL;
		r = submission_fromid_base(pool, req.from, &base, &err);
		if (r < 0)
			goto server;
		if (r > 0) {
			const char **ids = gn_pool_alloc(pool, req.n_recipients * sizeof(*ids));
			for (size_t i = 0; i < req.n_recipients; i++)
				if ((ids[i] = submission_fromid_random(pool, &err)) == NULL)
					goto server;
			msg.from_ids = ids;
			msg.sender = base;
		}
	}

	r = submission_limits_check(pool, &msg, &refusal, &err);
	if (r < 0)
		goto server;
	if (r > 0) {
		gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=message_refused id=submission.v1 "
		       "account_id=%" PRId64 " text=%s", req.account_id, gn_log_quote(0, refusal.text));
		refuse(&res, refusal.status, refusal.text);
		goto done;
	}

	int64_t id;
	int64_t *rids = gn_pool_alloc(pool, req.n_recipients * sizeof(*rids));
	msg.rcpt_ids_r = rids;
	if (submission_queue("submission.v1", &msg, &id) < 0) {
		refuse(&res, GN_SUBMIT_SERVER, "the message could not be queued, try again later");
		goto done;
	}
	struct gn_submit_rcpt_result *rr = gn_pool_alloc(pool, req.n_recipients * sizeof(*rr));
	for (size_t i = 0; i < req.n_recipients; i++) {
		rr[i].queue_id = id;
		rr[i].from_id = msg.from_ids != NULL ? msg.from_ids[i] : NULL;
	}
	res.rcpts = rr;
	res.n_rcpts = req.n_recipients;
	res.recipient_ids = rids;
	res.status = GN_SUBMIT_OK;
	goto done;

server:
	gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=message_tempfail id=submission.v1 "
	       "account_id=%" PRId64 " error=%s", req.account_id, gn_log_quote(0, err != NULL ? err : "?"));
	refuse(&res, GN_SUBMIT_SERVER, "temporary failure, try again later");
done:
	res.size = out->size;
	memcpy(out, &res, out->size < sizeof(res) ? out->size : sizeof(res));
	return res.status == GN_SUBMIT_OK ? 0 : -1;
}

const struct gn_submit_ops submission_service_ops = {
	.size = sizeof(struct gn_submit_ops),
	.submit = submit,
};
