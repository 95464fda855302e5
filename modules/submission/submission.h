/*
 * modules/submission/submission.h: the parts of the submission module.
 *
 *   submission.c  the policy on the core's SMTP engine: sessions, STARTTLS
 *                 required, AUTH through the core's SASL server, TLS client
 *                 certificates, MAIL FROM, RCPT, FUTURERELEASE, data_end;
 *   message.c     the end of data: From, Date, Message-ID, the extra data
 *                 headers, the final message bytes;
 *   limits.c      per-account limits per day (messages, first-time
 *                 recipients) on the module's tables (schema/);
 *   enqueue.c     the hand-over of a submitted message to the outbound
 *                 queue: ONE function, so that wiring the queue is a change
 *                 of that file only; FromIDs;
 *   service.c     the service "submission.v1" (gannet/submit.h): the same
 *                 checks, limits and hand-over for a message composed by
 *                 another module (the webapi).
 */
#ifndef SUBMISSION_H
#define SUBMISSION_H

#include <gannet/gannet.h>

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SUBMISSION_AREA "submission"

/* RFC 4865: the longest hold (mox's FutureReleaseIntervalMax, 60 days). */
#define SUBMISSION_MAX_HOLD_SECONDS (60LL * 24 * 60 * 60)

struct submission_settings {
	struct gn_smtp_settings smtp;
	long long max_messages_per_day;		/* default for every account */
	long long max_first_time_recipients_per_day;
	long long auth_max_failures;		/* per session; then 421 */
	long long max_extra;			/* extra data headers a message */
	/* How long the end of a message waits for others of the worker to
	 * share its commit (enqueue.c), in ms; 0: those that ended in the
	 * same turn of the loop. */
	long long group_commit_ms;
};
extern struct submission_settings submission_settings;

/* One key -> value of the message's extra data. */
struct submission_extra {
	const char *key;	/* MIME-canonical ("User-Id") */
	const char *value;	/* unfolded, trimmed */
};

/* Everything the end of data hands to the queue: the envelope, the extra
 * data and the final message (headers added, extra data headers removed).
 * All of it lives until submission_enqueue() answers (the transaction's
 * pool and the session's buffer); the queue copies what it keeps. */
struct submission_message {
	int64_t account_id;
	const char *account;		/* the account's name */
	const char *login;		/* the address it logged in as */
	const struct gn_addr *mail_from;	/* never NULL: "<>" is refused */
	const struct gn_addr *const *rcpts;
	size_t rcpt_count;
	/* The recipients this account never sent to before (folded
	 * canonical form), for the limits' record. */
	const char *const *first_time;
	size_t first_time_count;
	/* The check saw rows older than two days: the record removes them. */
	bool limits_old_rows;
	time_t hold_until;		/* FUTURERELEASE; 0: send now */
	const struct submission_extra *extra;
	size_t extra_count;
	const char *message_id;		/* as in the message, with <> */
	const char *from_domain;	/* the From address's (A-labels): DKIM */
	const char *data;		/* the final message */
	size_t size;
	bool smtputf8;
	bool body_8bit;
	const char *tx_id;		/* the SMTP transaction's id, for logs */
	/* FromIDs (mox.md 2.5): NULL when the login does not use them, else
	 * one per recipient; sender is then the envelope sender without its
	 * tag (the queue adds <sep><fromid>), else mail_from itself. */
	const char *const *from_ids;
	const struct gn_addr *sender;
	/* RFC 8689: MAIL FROM ... REQUIRETLS; a "TLS-Required: No" field
	 * (message.c).  The queue gets REQUIRETLS when both (RFC 8689). */
	bool requiretls;
	bool tls_required_no;
	/* NULL, or rcpt_count slots for the queued recipients' ids. */
	int64_t *rcpt_ids_r;
};

/* ---- message.c ---- */

/* A refusal at the end of data, in SMTP's terms, and for the service
 * (status: GN_SUBMIT_USER unless a limit says which). */
struct submission_refusal {
	int code;
	const char *enhanced;
	const char *text;
	enum gn_submit_status status;
};

/* Checks and rewrites the message in data[0..len) for the account:
 * exactly one From, an address of account_id; the extra data headers
 * taken out into *msg; Date and Message-ID added when missing; the
 * Received header of the submission first.  Fills msg->data, size,
 * from_domain, extra, message_id (from pool).  Returns 0, 1 with *refusal for the
 * client, -1 on a database error (*error_r). */
/* A session remembers what it asked the database this long (seconds),
 * for at most SEND_AS_CACHE addresses. */
#define SESSION_CACHE_S 60
#define SEND_AS_CACHE 4

/* gn_store_send_as_check() for the session's account, remembered by the
 * session for SESSION_CACHE_S (a yes only): 1 may, 0 may not, -1 error. */
int submission_send_as(struct gn_smtp_session *s, struct gn_pool *pool, const struct gn_addr *addr,
		       const char **error_r);

int submission_message_prepare(struct gn_smtp_session *s, struct gn_pool *pool,
			       const char *data, size_t len, int64_t account_id,
			       struct submission_message *msg,
			       struct submission_refusal *refusal, const char **error_r);

/* ---- limits.c ---- */

/* Checks the account's limits for a message to msg->rcpts; fills
 * msg->first_time.  Returns 0 within them, 1 over one (*refusal: 451
 * 4.7.1, as mox, and GN_SUBMIT_MESSAGE_LIMIT or
 * GN_SUBMIT_RECIPIENT_LIMIT), -1 on a database error. */
int submission_limits_check(struct gn_pool *pool, struct submission_message *msg,
			    struct submission_refusal *refusal, const char **error_r);
/* Records messages that were handed over, msgs[0..n) (n >= 1, all of one
 * account): n more messages today, and their first-time recipients.  To
 * run in the transaction that commits them to the queue (enqueue.c).
 * 0 or -1. */
int submission_limits_record(struct gn_pool *pool, const struct submission_message *const *msgs,
			     size_t n, const char **error_r);

/* ---- enqueue.c ---- */

/* Signs the message (DKIM), stores it and queues it with the limits'
 * record in one transaction, and logs it (conn: the caller's id for the
 * log lines).  Returns the held count (0 or more) with *id_r once
 * committed, or -1 (logged; rolled back, nothing half-written). */
int submission_queue(const char *conn, const struct submission_message *msg, int64_t *id_r);

/* submission_queue() for the SMTP path, answering the pending data_end
 * with gn_smtp_answer(): 250 only once the message is committed, in a
 * transaction it may share with other sessions' messages (group commit:
 * from the loop, after this returns).  msg's pointers must stay valid
 * until the answer, or until submission_enqueue_cancel(). */
void submission_enqueue(struct gn_smtp_session *s, const struct submission_message *msg);
/* The session's transaction ended without its answer (reset, disconnect):
 * its message, if one waits for a group commit, is dropped unanswered. */
void submission_enqueue_cancel(struct gn_smtp_session *s);

/* A random FromID: 16 random bytes in base64url without padding (22
 * characters, as mox), from pool; NULL with *error_r. */
const char *submission_fromid_random(struct gn_pool *pool, const char **error_r);

/* The envelope sender that FromIDs are added to for from (a login that
 * uses them): 1 with *base_r (from without its catchall tag), 0 when
 * from's domain has no catchall separator (no FromIDs), -1 database
 * error. */
int submission_fromid_base(struct gn_pool *pool, const struct gn_addr *from,
			   const struct gn_addr **base_r, const char **error_r);

/* ---- service.c ---- */

/* The table of "submission.v1". */
extern const struct gn_submit_ops submission_service_ops;

#endif
