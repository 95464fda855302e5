/*
 * core/queue/webhook.c: the queue's side of the service "webhooks.v1"
 * (gannet/webhook.h, mox.md 1.6): each outcome of a queued recipient is
 * handed to the provider, when a loaded module provides it, which queues
 * the account's outgoing webhook.  queue.c calls it after the outcome is
 * committed (recorded(), end_now()).
 */
#include "queue/internal.h"

#include <gannet/service.h>
#include <gannet/webhook.h>

#include <inttypes.h>

static const struct gn_webhook_ops *ops(void)
{
	static bool looked;
	static const struct gn_webhook_ops *o;
	if (!looked) {
		o = gn_service_lookup(GN_WEBHOOK_SERVICE);
		looked = true;
	}
	return o;
}

void queue_webhook_event(int64_t account_id, int64_t rcpt_id, const char *event, const char *rcpt,
			 const char *from_id, const char *message_id, const char *subject,
			 const char *extra_json, int code, const char *enhanced, const char *text,
			 bool suppressing)
{
	queue_webhook_event_dsn(account_id, rcpt_id, event, rcpt, from_id, message_id, subject, extra_json, code,
				enhanced, text, suppressing, false);
}

void queue_webhook_event_dsn(int64_t account_id, int64_t rcpt_id, const char *event, const char *rcpt,
			     const char *from_id, const char *message_id, const char *subject,
			     const char *extra_json, int code, const char *enhanced, const char *text,
			     bool suppressing, bool dsn)
{
	const struct gn_webhook_ops *o = ops();
	if (!GN_OPS_HAS(o, outgoing) || o->outgoing == NULL)
		return;
	struct gn_webhook_event ev = {
		.size = sizeof(ev), .account_id = account_id, .queue_msg_id = rcpt_id, .event = event,
		.rcpt = rcpt, .from_id = from_id, .message_id = message_id != NULL ? message_id : "",
		.subject = subject != NULL ? subject : "", .extra_json = extra_json,
		/* A local failure (code 0 or the queue's own) has no remote code. */
		.code = code, .enhanced = enhanced, .error = text, .suppressing = suppressing, .dsn = dsn,
	};
	const char *err = NULL;
	if (o->outgoing(&ev, &err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=queue_webhook_failed recipient=%" PRId64 " webhook=%s error=%s",
		       rcpt_id, event, gn_log_quote(0, err != NULL ? err : "?"));
}
