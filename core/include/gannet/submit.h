/*
 * gannet/submit.h: the service "submission.v1", a complete message queued
 * for an authenticated account the way SMTP submission queues it (the
 * webapi's Send, later webmail).
 *
 * The submission module provides it (gannet/service.h) with a struct
 * gn_submit_ops; a user looks it up (gn_service_lookup()) and, when it is
 * there, calls submit() with a message it composed (gannet/compose.h).
 * The service does what the SMTP path does at the end of data, with the
 * same code:
 *
 *   - the From address must be one the account may send as: its own, or
 *     one the "account.send_as" hooks allow (an alias with AllowMsgFrom),
 *     gn_store_send_as_check(); else GN_SUBMIT_BAD_FROM;
 *   - the account's limits per day (messages, first-time recipients;
 *     mox's MaxOutgoingMessagesPerDay, MaxFirstTimeRecipientsPerDay);
 *   - FromIDs (mox.md 2.5) when login is one of the account's FromID
 *     login addresses and the From domain has a catchall separator: a
 *     random one per recipient, the envelope sender
 *     local<sep><fromid>@domain;
 *   - a hold until hold_until (at most 60 days ahead, mox's
 *     FutureReleaseIntervalMax), the extra data, DKIM signatures with the
 *     From domain's keys, then one queue message with every recipient,
 *     committed with the limits' record in one transaction.
 *
 * The envelope sender is the From address (or its FromID form).  The
 * message is taken as it is: no Date, Message-ID or Received field is
 * added (compose it with them; the caller knows its client for a
 * Received field).  Worker or CLI process, after start; the calls block on
 * the process's database connection.  Since ABI 1.1.
 */
#ifndef GANNET_SUBMIT_H
#define GANNET_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/addr.h>
#include <gannet/mem.h>
#include <gannet/queue.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GN_SUBMIT_SERVICE "submission.v1"

/* One key -> value of the extra data (mox.md 2.6).  Frozen (an array
 * element). */
struct gn_submit_extra {
	const char *key;
	const char *value;	/* UTF-8, no control characters but tab */
};

/* What to queue.  Zero it and set size = sizeof(struct
 * gn_submit_request); grows only at the end.  Nothing is kept after
 * submit() returns. */
struct gn_submit_request {
	size_t size;
	int64_t account_id;
	const char *login;		/* the address the account logged in as */
	const struct gn_addr *from;	/* the message's From address */
	const struct gn_addr *const *recipients;
	size_t n_recipients;		/* 1 to the submission module's limit */
	const char *data;		/* the whole message, CRLF line endings */
	size_t len;
	const char *message_id;		/* for logs; NULL: none */
	bool smtputf8;			/* an address needs SMTPUTF8 */
	time_t hold_until;		/* 0: send now; at most 60 days ahead */
	const struct gn_submit_extra *extra;
	size_t n_extra;
	/* RFC 8689 (gannet/queue.h): GN_QUEUE_TLS_DEFAULT, _REQUIRED
	 * (REQUIRETLS: verified TLS to a server that offers REQUIRETLS), or
	 * _RELAXED (as "TLS-Required: No": DANE and MTA-STS failures do not
	 * stop the delivery); mox's webapi RequireTLS null, true, false. */
	int require_tls;
};

/* Why submit() refused; the webapi maps them to mox's codes (mox.md 1.2). */
enum gn_submit_status {
	GN_SUBMIT_OK = 0,
	GN_SUBMIT_USER,			/* bad request ("user") */
	GN_SUBMIT_BAD_FROM,		/* "badFrom" */
	GN_SUBMIT_NO_RECIPIENTS,	/* "noRecipients" */
	GN_SUBMIT_MESSAGE_LIMIT,	/* "messageLimitReached" */
	GN_SUBMIT_RECIPIENT_LIMIT,	/* "recipientLimitReached" */
	GN_SUBMIT_TOO_LARGE,		/* over the submission listener's size ("messageTooLarge") */
	GN_SUBMIT_SERVER,		/* database, DKIM, queue ("server") */
};

/* One recipient's result.  Frozen (an array element). */
struct gn_submit_rcpt_result {
	int64_t queue_id;	/* the queue message (one for all recipients) */
	const char *from_id;	/* NULL: none */
};

/* The answer.  Zero it and set size = sizeof(struct gn_submit_result);
 * grows only at the end. */
struct gn_submit_result {
	size_t size;
	enum gn_submit_status status;
	const char *error_text;	/* for the person; static or from pool */
	/* GN_SUBMIT_OK: one per recipient in request order, from pool. */
	const struct gn_submit_rcpt_result *rcpts;
	size_t n_rcpts;
	/* GN_SUBMIT_OK: each recipient's queue row id (what `gannet queue
	 * hold ID` and the like take; mox's per-recipient QueueMsgID), n_rcpts
	 * of them in request order, from pool.  Read it only when the
	 * provider filled it: res->size covers it and it is not NULL. */
	const int64_t *recipient_ids;
};

struct gn_submit_ops {
	size_t size;		/* sizeof(struct gn_submit_ops) */
	/* Queues req; pool is the caller's, for res's strings and arrays.
	 * Returns 0 queued, or -1 with res->status and res->error_text
	 * (nothing queued, nothing counted). */
	int (*submit)(struct gn_pool *pool, const struct gn_submit_request *req,
		      struct gn_submit_result *res);
};

#ifdef __cplusplus
}
#endif

#endif
