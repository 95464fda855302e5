/*
 * gannet/webhook.h: the service "webhooks.v1", through which the core's
 * queue reports each outcome of a queued recipient (mox.md 1.6) to the
 * module that sends outgoing webhooks (modules/webhooks).
 *
 * The queue calls outgoing() only when a loaded module provides the
 * service, after the outcome is committed (from recorded() of the
 * queue's deliveries, and from `gannet queue fail|drop`): "delivered",
 * "delayed" (each attempt that failed temporarily), "failed" (for good:
 * a 5xx, the last attempt, `queue fail`), "suppressed" (on the sender's
 * suppression list) and "canceled" (`queue drop`).  The provider decides
 * whether the account wants the event and queues the hook; what it
 * returns is logged by the queue and changes nothing of the queue's.
 * The header declares no function of the core: only the tables.  Since
 * ABI 1.1.
 */
#ifndef GANNET_WEBHOOK_H
#define GANNET_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GN_WEBHOOK_SERVICE "webhooks.v1"

/* One outcome of one queued recipient.  Strings belong to the caller
 * (valid during the call only).  Starts with its own size and only ever
 * grows at the end. */
struct gn_webhook_event {
	size_t size;			/* sizeof(struct gn_webhook_event) */
	int64_t account_id;		/* the sender's account */
	int64_t queue_msg_id;		/* the recipient's id in the queue (mox: QueueMsgID) */
	const char *event;		/* "delivered", "delayed", "failed", ... */
	const char *rcpt;		/* the recipient, canonical */
	const char *from_id;		/* NULL or "": none */
	const char *message_id;		/* the Message-ID field, with <>, or "" */
	const char *subject;		/* "" none */
	const char *extra_json;		/* a JSON object of strings, or NULL */
	int code;			/* the remote SMTP code, 0 none */
	const char *enhanced;		/* "5.1.1", or NULL */
	const char *error;		/* the last attempt's text, or NULL */
	bool dsn;			/* from an incoming DSN */
	bool suppressing;		/* this failure added a suppression */
};

/* The service's table.  Starts with its own size and only ever grows at
 * the end; check a member with GN_OPS_HAS() before calling it. */
struct gn_webhook_ops {
	size_t size;			/* sizeof(struct gn_webhook_ops) */
	/* An outcome: 1 a hook was queued, 0 the account wants none, -1
	 * with *error_r (static) on errors.  Uses the process's database
	 * connection, outside any transaction of the caller. */
	int (*outgoing)(const struct gn_webhook_event *ev, const char **error_r);
};

#ifdef __cplusplus
}
#endif
#endif
