/*
 * gannet/queue.h: the outbound queue, shared by every node.
 *
 * A queued message is stored once (its body a blob of the store,
 * gannet/store.h) with one row a recipient.  The runner claims due
 * recipients with SELECT ... FOR UPDATE SKIP LOCKED, the recipients of one
 * domain of one message together, and hands them to the transport (the
 * core's SMTP client unless another is plugged in with
 * gn_queue_transport_set()); the transport
 * reports a result per recipient:
 *
 *   2xx                       delivered;
 *   4xx, or code 0 (no answer: connection failure, local problem)
 *                             retried 7.5 minutes later, doubling after
 *                             each attempt (7.5m, 15m, 30m, ...), until
 *                             the message's maximum attempts (the setting
 *                             queue.max_attempts, default 8) are used up;
 *   5xx, or the last attempt  failed for good.
 *
 * The sender's account gets a DSN (RFC 3464, into its Inbox through the
 * delivery pipeline) when a recipient fails for good and once when its
 * 5th attempt failed (delayed); a message from <> never gets one.  Every
 * attempt is recorded.  A recipient that leaves the queue (delivered,
 * failed, dropped) is kept with its attempts for its account's retention
 * period (0: not kept), then removed by a runner job.
 *
 * A claimed recipient is leased to its runner for an hour: a runner that
 * dies mid-delivery loses nothing, the recipient is claimed again when
 * the lease ran out (and may be delivered twice, never dropped).
 *
 * Hold rules (account, sender domain, recipient domain; an empty field
 * matches anything): a queued recipient matches when every non-empty field
 * equals its own; matching recipients are held (never attempted) until
 * released.  The rule applies to new messages and, when added, to the
 * recipients queued already.  Removing a rule releases nothing.
 *
 * Time: the queue's clock is the wall clock, moved forward by the
 * environment variable GANNET_TEST_CLOCK_OFFSET (seconds) when set: for
 * tests only, so that retries come due without waiting (logged at start).
 *
 * Every function here uses the process's database connection
 * (gannet/db.h), from the start phase on; ids are the recipients' queue
 * ids unless said otherwise.  Strings returned live as long as their
 * object.  Since ABI 1.1.
 */
#ifndef GANNET_QUEUE_H
#define GANNET_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/addr.h>
#include <gannet/module.h>
#include <gannet/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- adding ---- */

/* A message's TLS requirement for its delivery (RFC 8689). */
enum gn_queue_require_tls {
	/* The policy of the receiving domain: opportunistic STARTTLS, DANE
	 * and MTA-STS where they apply. */
	GN_QUEUE_TLS_DEFAULT = 0,
	/* REQUIRETLS (RFC 8689): only over TLS whose certificate
	 * verifies for the MX host name (PKIX, or DANE once the transport
	 * uses it), to a server that offers REQUIRETLS, with MAIL FROM ...
	 * REQUIRETLS; else the recipient fails for good (554 5.7.30) and
	 * the sender gets a DSN (which does not itself require TLS). */
	GN_QUEUE_TLS_REQUIRED = 1,
	/* "TLS-Required: No" (RFC 8689): deliver even when DANE or
	 * MTA-STS say the connection is not good enough (STARTTLS is still
	 * used when offered). */
	GN_QUEUE_TLS_RELAXED = 2,
};

/* A message to queue.  Starts with its own size and only ever grows at
 * the end; the core reads it by that size. */
struct gn_queue_message {
	size_t size;			/* sizeof(struct gn_queue_message) */
	int64_t account_id;		/* the sender's account */
	const struct gn_addr *sender;	/* NULL: the null path <> */
	const struct gn_addr *const *recipients;
	size_t n_recipients;		/* 1 to 1000 */
	/* The body: a blob stored already (gn_store_blob_finish()), in the
	 * caller's transaction or before; the queue takes a reference.  Or
	 * NULL, and the body's bytes in body (below). */
	const unsigned char *blob_hash;	/* GN_STORE_HASH_SIZE bytes */
	time_t release_at;		/* not attempted before; 0: now */
	unsigned max_attempts;		/* 0: the setting */
	/* The extra data: a JSON object of strings; NULL: none. */
	const char *extra_json;
	bool smtputf8;			/* needs SMTPUTF8 of the receiver */
	/* FromIDs (unique MAIL FROM, mox.md 2.5): NULL none, else one per
	 * recipient (an entry NULL: none): 1 to GN_QUEUE_FROMID_MAX of
	 * [A-Za-z0-9_-], unique among queued and retired recipients.  A
	 * recipient with one is sent with the envelope sender
	 * local<sep><fromid>@domain: sender's localpart up to its first
	 * catchall separator, the first separator of sender's domain (which
	 * must have one).  Since ABI 1.1 with the struct. */
	const char *const *from_ids;
	/* The message's header (or the whole message), from which the
	 * Message-ID and Subject kept with the queue are read; NULL: read
	 * from the blob.  Since ABI 1.1 with the struct. */
	const char *header;
	size_t header_len;
	/* What the message asks of the transport's TLS (RFC 8689):
	 * REQUIRETLS from MAIL FROM, or relaxed from "TLS-Required: No"
	 * (REQUIRETLS wins when both, RFC 8689).  Since ABI 1.1 with
	 * the struct; a shorter struct reads as the default. */
	enum gn_queue_require_tls require_tls;
	/* NULL, or n_recipients slots: gn_queue_add() writes each
	 * recipient's id (what `gannet queue hold ID` and the like take), in
	 * the order of recipients.  Since ABI 1.1 with the struct. */
	int64_t *recipient_ids_r;
	/* The body's bytes instead of blob_hash (one of the two, not both):
	 * gn_queue_add() stores the blob, one of at most GN_STORE_CHUNK_SIZE
	 * in the same statement as the message and its recipients (the
	 * quickest way to queue a small message: one round trip, and the
	 * blob's row written once), and takes the blob of the same bytes
	 * when one exists.  The header, when NULL, is read from them.
	 * Since ABI 1.1 with the struct. */
	const void *body;
	size_t body_len;
};

#define GN_QUEUE_FROMID_MAX 64

/* Queues m inside the caller's transaction (or its own when none is
 * open): the message, its recipients, each held when a hold rule matches.
 * It takes no lock on the sender's account (the foreign key keeps the
 * account from going), so a caller that finishes the blob in the same
 * transaction needs none either.
 * Returns the number of recipients held (0 or more) with the message's id
 * in *message_id_r (may be NULL), or -1 with *error_r (static until the
 * next call): no such account or blob, a bad address or extra data, too
 * many recipients, a database error. */
int gn_queue_add(const struct gn_queue_message *m, int64_t *message_id_r,
		 const char **error_r);

/* ---- a receiver's DSN ---- */

/* A recipient that failed after the message was accepted.  Frozen (an
 * array element). */
struct gn_queue_bounce_rcpt {
	const struct gn_addr *rcpt;
	int code;			/* the failure's SMTP code (4xx/5xx) */
	const char *enhanced;		/* "5.2.2", or NULL */
	const char *text;		/* or NULL */
};

/* A failure DSN for recipients a receiving server accepted at RCPT and
 * then could not deliver to (RFC 5321 3.6.3, 6.1: the receiver that said
 * 250 owes the sender a DSN).  Starts with its own size, grows only at
 * the end. */
struct gn_queue_bounce {
	size_t size;			/* sizeof(struct gn_queue_bounce) */
	/* The account the DSN is queued under (for its limits and history):
	 * the failed recipients' account, or the postmaster's. */
	int64_t account_id;
	const struct gn_addr *to;	/* the message's sender; never NULL */
	/* The original message's header (up to its blank line, at most 64
	 * KiB are used), or NULL; its Message-ID or NULL. */
	const char *header;
	size_t header_len;
	const char *message_id;
	const struct gn_queue_bounce_rcpt *rcpts;
	size_t n_rcpts;			/* 1 to 1000 */
};

/* Builds the DSN (RFC 3464 multipart/report, from <> and
 * postmaster@hostname, the original header attached) and queues it from
 * the null path to b->to, in a transaction of its own (none may be open).
 * Returns 0 with the queued message's id in *message_id_r (may be NULL),
 * or -1 with *error_r. */
int gn_queue_bounce_add(const struct gn_queue_bounce *b, int64_t *message_id_r,
			const char **error_r);

/* ---- the transport ---- */

/* The recipients of one domain of one message, claimed for an attempt.
 * Opaque; owned by the queue until gn_queue_delivery_done(). */
struct gn_queue_delivery;

/* The envelope sender (MAIL FROM) of the delivery: NULL for the null
 * path; with a FromID local<sep><fromid>@domain.  Recipients with
 * different envelope senders are never in one delivery. */
const struct gn_addr *gn_queue_delivery_sender(const struct gn_queue_delivery *qd);
/* The envelope sender of recipient i (the same for every i of qd; NULL
 * for the null path or out of range), and its FromID (NULL none). */
const struct gn_addr *gn_queue_delivery_recipient_sender(const struct gn_queue_delivery *qd,
							 size_t i);
const char *gn_queue_delivery_from_id(const struct gn_queue_delivery *qd, size_t i);
/* The recipients' domain (A-labels). */
const char *gn_queue_delivery_domain(const struct gn_queue_delivery *qd);
size_t gn_queue_delivery_recipient_count(const struct gn_queue_delivery *qd);
/* NULL out of range. */
const struct gn_addr *gn_queue_delivery_recipient(const struct gn_queue_delivery *qd, size_t i);
/* The attempt this is for the recipient (1 for the first); 0 out of range. */
unsigned gn_queue_delivery_attempt(const struct gn_queue_delivery *qd, size_t i);
bool gn_queue_delivery_smtputf8(const struct gn_queue_delivery *qd);
/* The message's TLS requirement (gn_queue_message.require_tls): what the
 * transport, DANE and MTA-STS must honour.  Since ABI 1.1. */
enum gn_queue_require_tls gn_queue_delivery_require_tls(const struct gn_queue_delivery *qd);
/* "default", "requiretls", "relaxed" (for logs and the CLI). */
const char *gn_queue_require_tls_name(enum gn_queue_require_tls r);
uint64_t gn_queue_delivery_size(const struct gn_queue_delivery *qd);
/* The message's bytes: 1 with *body_r (the caller frees it with
 * gn_store_body_free()), 0 gone, -1 error. */
int gn_queue_delivery_open_body(const struct gn_queue_delivery *qd,
				struct gn_store_body **body_r, const char **error_r);

/* The result of recipient i: code 0 when there was no answer (connection
 * failure, local problem; temporary), else the SMTP reply code; enhanced
 * ("4.4.1"), text, host and ip may be NULL (copied).  A later report for
 * the same recipient replaces an earlier one; a recipient without a
 * report counts as code 0, "no result from the transport". */
void gn_queue_delivery_report(struct gn_queue_delivery *qd, size_t i, int code,
			      const char *enhanced, const char *text,
			      const char *host, const char *ip);
/* ABI 1.1: the transport security under which recipient i's result was
 * had: the TLS version ("TLS1.3") and cipher ("AES-256-GCM"), NULL or ""
 * without TLS, and the policy that applied: "none" (plain text, also a
 * fallback after a failed handshake), "opportunistic", "dane",
 * "dane-unauthenticated" (TLSA records, none usable), later "mta-sts",
 * "requiretls".  Kept with the attempt (gannet queue retired print).
 * Strings copied; a later call replaces an earlier one. */
void gn_queue_delivery_report_tls(struct gn_queue_delivery *qd, size_t i, const char *version,
				  const char *cipher, const char *policy);
/* Ends the attempt, from any callback of the loop: records the results
 * (attempts, retries, DSNs, retirement) and frees qd.  Exactly once. */
void gn_queue_delivery_done(struct gn_queue_delivery *qd);

/* The transport.  Starts with its own size and only ever grows at the
 * end; copied by that size. */
struct gn_queue_transport {
	size_t size;			/* sizeof(struct gn_queue_transport) */
	const char *name;		/* for logs; copied */
	/* Starts delivering qd: reports each recipient, then calls
	 * gn_queue_delivery_done(), now or later from the loop. */
	void (*deliver)(struct gn_queue_delivery *qd, void *data);
	void *data;
};

/* Sets the transport of this process, from the register or start phase;
 * one only (-1 when one is set already, or t is malformed).  Without one
 * the core's own is used: SMTP to the recipients' MX hosts (or to the
 * setting queue.relay), unless the setting queue.transport is "none":
 * then every attempt fails temporarily, "no transport configured"
 * (nothing is ever dropped for it). */
int gn_queue_transport_set(const struct gn_queue_transport *t, const char **error_r);

/* Claims due recipients, at most max groups (one domain of one message
 * each), and starts their deliveries.  Returns the number started, or -1.
 * The runner calls it every second; also for tools and tests. */
int gn_queue_run(unsigned max, const char **error_r);

/* ---- administration ---- */

/* Each: 1 done, 0 no such queued recipient, -1 error. */
int gn_queue_hold(int64_t id, bool hold, const char **error_r);
/* Next attempt at when (a held recipient stays held). */
int gn_queue_schedule(int64_t id, time_t when, const char **error_r);
/* Fails the recipient for good now (a DSN unless from <>); drop removes
 * it without DSN.  Both retire it. */
int gn_queue_fail(int64_t id, const char **error_r);
int gn_queue_drop(int64_t id, const char **error_r);

/* Adds a hold rule (account_id 0 and "" / NULL domains: any) and holds
 * the queued recipients it matches: returns their number with the rule's
 * id in *id_r (may be NULL), or -1. */
int gn_queue_holdrule_add(int64_t account_id, const char *sender_domain,
			  const char *recipient_domain, int64_t *id_r,
			  const char **error_r);
/* 1 removed, 0 no such rule, -1 error.  Releases nothing. */
int gn_queue_holdrule_rm(int64_t id, const char **error_r);

/* ---- FromIDs ---- */

/* Matches a FromID (the tag of a bounce's recipient address after the
 * catchall separator) to the queued or retired recipient it was made
 * for: 1 with its queue id, its message's id, its address (canonical)
 * and its state: "queued", or how it left the queue ("delivered",
 * "failed", "dropped"); each out parameter may be NULL, strings from
 * pool.  0 unknown, -1 error. */
int gn_queue_fromid_find(struct gn_pool *pool, const char *from_id, int64_t *id_r,
			 int64_t *message_id_r, const char **rcpt_r, const char **state_r,
			 const char **error_r);

/* Removes retired recipients past their retention: their number or -1. */
int gn_queue_retired_cleanup(const char **error_r);

/* The queue's clock (see above), seconds since the epoch. */
double gn_queue_now(void);

/* Adds the deployment's tls.client_ca_file (when set) to the trust of
 * outbound TLS connections and the HTTPS client, once a process; for
 * modules that make such connections (webhooks) before the queue did.
 * A file that does not load is logged, and nothing verifies that needed
 * it.  From the start phase on. */
void gn_queue_tls_trust_init(void);

#ifdef __cplusplus
}
#endif
#endif
