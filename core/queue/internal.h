/*
 * core/queue/internal.h: the outbound queue's internals (gannet/queue.h).
 *
 *   queue.c   adding, claiming, results, retirement, hold rules, the
 *             administration functions, the runner jobs and
 *             queue_register();
 *   dsn.c     the DSNs (RFC 3464) delivered into the sender's account;
 *   dsn-read.c  the delivery-status part of a DSN that came back;
 *   cli.c     `gannet queue ...` (and cli-rules.c: holdrules, retired);
 *   transport-smtp.c  the default transport: MX lookups, the SMTP client;
 *   requiretls.c  REQUIRETLS (RFC 8689) rules of that transport;
 *   fromid.c  mail to FromID addresses matched to their recipients;
 *   suppress.c  the suppression list's service, when a module provides it
 *             (also for DSNs fromid.c matched).
 *   mtasts.c  MTA-STS policies (RFC 8461): discovery, cache, refresh,
 *             for transport-smtp.c; mtasts-policy.c: its pure parsers;
 *             cli-mtasts.c: `gannet dns mtasts`, `gannet queue mtasts refresh`.
 *
 * Uses the store (blobs, the delivery pipeline), the mail layer (MIME,
 * addresses), smtp (the client), dns, db, runtime and base.
 */
#ifndef GANNET_QUEUE_INTERNAL_H
#define GANNET_QUEUE_INTERNAL_H

#include "store/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gannet/cli.h>
#include <gannet/queue.h>

#define QUEUE_MAX_RECIPIENTS 1000
/* RFC 3461-style DSN diagnostics and kept result texts: at most this many
 * bytes of a server's reply. */
#define QUEUE_TEXT_MAX 1000
/* The first retry comes this long after a failed attempt, and each later
 * one twice as long as the one before (mox: 7.5 minutes). */
#define QUEUE_BACKOFF_S 450.0
/* The delayed DSN goes once, after this attempt failed. */
#define QUEUE_DELAYED_DSN_ATTEMPT 5
/* A claimed recipient is the runner's for this long (SQL interval). */
#define QUEUE_LEASE "1 hour"
/* NOTIFY channel that wakes the runners when a message is queued. */
#define QUEUE_NOTIFY_CHANNEL "gn_queue"
/* The original header in a DSN: at most this many bytes. */
#define QUEUE_DSN_HEADER_MAX (64 * 1024)

/* A timestamp column as text: ISO 8601 in UTC. */
#define QUEUE_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---- queue.c ---- */

int queue_register(void);
/* The attempts a message may have (the setting; 0 in the message). */
unsigned queue_max_attempts(void);
/* queue { retired_keep } in seconds (0: not kept): how long the retired
 * records of an account whose gn_accounts.queue_retired_keep_s is NULL
 * are kept.  The retention SQL takes it as a parameter and applies
 * COALESCE(queue_retired_keep_s, it). */
long long queue_retired_keep_default(void);
/* The delay before the retry that follows failed attempt n (1, 2, ...). */
double queue_backoff(unsigned attempt);
/* Claims one group of due recipients: 1 with *qd_r, 0 none due, -1. */
int queue_claim(struct gn_queue_delivery **qd_r, const char **error_r);
/* Claims up to max groups in one transaction: their deliveries into
 * qds[0..*n_r) (at most max).  0 (also when none is due), or -1. */
int queue_claim_batch(unsigned max, struct gn_queue_delivery **qds, size_t *n_r,
		      const char **error_r);
/* When the process stops: records the results that wait for a batch,
 * then drops the parked SMTP connections (queue_smtp_shutdown()). */
void queue_shutdown(void);
/* Deliveries started and not done yet (in this process). */
unsigned queue_in_flight(void);
/* Whether id is a valid FromID: 1 to GN_QUEUE_FROMID_MAX of [A-Za-z0-9_-]. */
bool queue_fromid_valid(const char *id);
/* The test clock: seconds added to the wall clock (set from
 * GANNET_TEST_CLOCK_OFFSET at the first gn_queue_now(); tests may set it). */
void queue_clock_set_offset(double seconds);
/* A parameter: seconds since the epoch, for to_timestamp($n). */
const char *queue_now_param(struct gn_pool *pool);

/* ---- dsn.c ---- */

enum queue_dsn_kind { QUEUE_DSN_FAILED, QUEUE_DSN_DELAYED };

struct queue_dsn_rcpt {
	const char *rcpt;		/* canonical address */
	int code;			/* 0: no answer */
	const char *enhanced;		/* may be NULL */
	const char *text;		/* may be NULL */
	const char *host;		/* may be NULL */
	double last_attempt;		/* epoch; 0: none */
	double retry_until;		/* delayed: epoch */
};

struct queue_dsn {
	enum queue_dsn_kind kind;
	int64_t account_id;		/* the sender's */
	const char *sender;		/* canonical address */
	const unsigned char *blob_hash;	/* the original, for its header */
	const char *header;		/* or the header itself (blob_hash NULL) */
	size_t header_len;
	const char *message_id;		/* its Message-ID field, "" none */
	double queued_at;
	const struct queue_dsn_rcpt *rcpts;
	size_t n_rcpts;
};

/* The DSN's bytes (CRLF lines), from pool. */
const char *queue_dsn_build(struct gn_pool *pool, const struct queue_dsn *dsn,
			    size_t *len_r, const char **error_r);
/* Builds and delivers it into the sender account's Inbox: 0 stored, -1
 * not (*error_r).  Waits for the delivery on the loop. */
int queue_dsn_deliver(const struct queue_dsn *dsn, const char **error_r);

/* ---- transport-smtp.c ---- */

/* The core's transport, used when no module set one and the setting
 * queue.transport is not "none". */
extern const struct gn_queue_transport queue_transport_smtp;
/* Drops the SMTP connections parked for reuse (transport-smtp.c): when
 * the process stops delivering. */
void queue_smtp_shutdown(void);

/* ---- requiretls.c (RFC 8689, for transport-smtp.c) ---- */

struct gn_smtp_client;
struct gn_smtp_client_settings;
struct gn_smtp_result;

/* Whether qd requires TLS (GN_QUEUE_TLS_REQUIRED). */
bool queue_requiretls(const struct gn_queue_delivery *qd);
/* Loads tls.client_ca_file into the client TLS trust, once a process
 * (transport-smtp.c; MTA-STS and REQUIRETLS verify with it). */
void queue_tls_trust_init(void);
/* TLS required and verified for qd's connections (else unchanged). */
void queue_requiretls_settings(const struct gn_queue_delivery *qd, bool dane,
			       struct gn_smtp_client_settings *set);
/* Whether the connection's certificate verified: PKIX, or dane (the
 * connection is under the DANE policy, so its chain matched TLSA). */
bool queue_requiretls_verified(const struct gn_smtp_client *client, bool dane);
/* Whether a host's failure at ready() is REQUIRETLS's refusal of it
 * (no STARTTLS, the handshake or the verification failed). */
bool queue_requiretls_tls_failed(const struct gn_queue_delivery *qd,
				 const struct gn_smtp_result *failure);
/* NULL when the ready connection may take qd, else why not (from pool). */
const char *queue_requiretls_refusal(struct gn_pool *pool, const struct gn_queue_delivery *qd,
				     const struct gn_smtp_client *client, const char *host, bool dane);
/* After the last host: refused of the n_hosts refused qd for REQUIRETLS;
 * turns *code_r and *enhanced_r into 554 5.7.30 (all refused) or a
 * temporary 4.7.30 (some host not reached). */
void queue_requiretls_final(const struct gn_queue_delivery *qd, unsigned refused,
			    size_t n_hosts, int *code_r, const char **enhanced_r);
/* ---- mtasts.c ---- */

enum queue_mtasts_mode { QUEUE_MTASTS_NONE = 0, QUEUE_MTASTS_TESTING, QUEUE_MTASTS_ENFORCE };

/* RFC 8461 3.2: max_age at most 31557600 s; the policy body is read up to
 * 64 KiB (RFC 8461 3.3 "a max size of 64 KiB" is the advice given). */
#define QUEUE_MTASTS_MAX_AGE_MAX 31557600LL
#define QUEUE_MTASTS_BODY_MAX (64 * 1024)
#define QUEUE_MTASTS_MAX_LINES 1000
#define QUEUE_MTASTS_MAX_MX 100
#define QUEUE_MTASTS_ID_MAX 32


/* A policy (RFC 8461 3.2), parsed or from the cache. */
struct queue_mtasts_policy {
	int mode;			/* enum queue_mtasts_mode */
	const char **mx;		/* patterns, lower case ("*.example.com") */
	size_t n_mx;
	long long max_age;
	const char *id;			/* the TXT record's id it was fetched for */
	double fetched_at, expires_at;	/* epoch */
	bool expired;			/* a cached copy past its max_age */
	const char *last_error;		/* cached: the last refresh's failure */
};

/* What discovery found; valid during the callback only. */
struct queue_mtasts_result {
	const struct queue_mtasts_policy *policy;	/* applies; NULL: none */
	const struct queue_mtasts_policy *cached;	/* the cache's copy, or NULL */
	const char *txt_status;		/* the TXT lookup's DNS status */
	const char *txt;		/* the v=STSv1 record, or NULL */
	const char *txt_id;		/* its id when valid */
	const char *txt_error;		/* why there is no usable record */
	bool fetched;			/* policy is the one just fetched */
	const char *body;		/* the fetched text (also when invalid) */
	const char *fetch_error;	/* why the fetch failed */
};

/* Lookup flags: always fetch (refresh, CLI); never write the cache, and
 * report an expired cached copy too (CLI). */
#define QUEUE_MTASTS_FETCH 0x1u
#define QUEUE_MTASTS_NO_STORE 0x2u

typedef void queue_mtasts_fn(const struct queue_mtasts_result *result, void *data);
struct queue_mtasts_lookup;
/* Starts the discovery for domain (A-labels); fn runs once from the loop,
 * unless cancelled.  Reads (and writes) the cache synchronously. */
struct queue_mtasts_lookup *queue_mtasts_lookup(const char *domain, unsigned flags, queue_mtasts_fn *fn,
						void *data);
void queue_mtasts_cancel(struct queue_mtasts_lookup **lookup);
/* The record: 1 with *id_r, 0 not an STS record (no "v=STSv1" first), -1
 * an STS record that is not valid (*error_r). */
int queue_mtasts_txt_parse(struct gn_pool *pool, const char *text, size_t len, const char **id_r,
			   const char **error_r);
/* The policy text: 0 with *p, or -1 with *error_r. */
int queue_mtasts_policy_parse(struct gn_pool *pool, const char *text, size_t len,
			      struct queue_mtasts_policy *p, const char **error_r);
/* Whether an MX host name matches one of the policy's patterns (RFC 8461 4.1). */
bool queue_mtasts_mx_match(const struct queue_mtasts_policy *p, const char *host);
const char *queue_mtasts_mode_name(int mode);
/* "enforce", "testing", "none": the mode, or -1. */
int queue_mtasts_mode_parse(const char *s);
/* Starts refreshes of policies near their expiry, at most max at once:
 * how many started, or -1. */
int queue_mtasts_refresh(unsigned max, const char **error_r);
/* Refreshes started and not over yet. */
unsigned queue_mtasts_refreshing(void);
/* One log line: the policy a delivery applies. */
void queue_mtasts_log_applied(const char *domain, const struct queue_mtasts_result *res);
int queue_mtasts_cli_register(void);

/* ---- cli.c ---- */

int queue_cli_register(void);
/* Parses "now", "+DURATION" or a duration ("30s", "15m", "2h", "3d", a
 * number of seconds): seconds, or -1. */
long long queue_parse_duration(const char *s);
int queue_cli_usage(const char *usage);
int queue_cli_fail(const char *error);
gn_cli_fn queue_cli_holdrules_list, queue_cli_holdrules_add, queue_cli_holdrules_rm;
gn_cli_fn queue_cli_retired_list, queue_cli_retired_print, queue_cli_retired_keep;

/* ---- fromid.c ---- */

/* Registers the "deliver.after" hook that matches mail delivered to a
 * FromID address to its recipient (queue_register()).  0 or -1. */
int queue_fromid_register(void);

/* ---- dsn-read.c ---- */

/* A DSN's delivery-status part: at most this many bytes are read. */
#define QUEUE_DSN_STATUS_MAX (64 * 1024)

/* What a delivery-status part says of its recipients. */
struct queue_dsn_status {
	unsigned recipients;	/* recipient blocks */
	/* Of the first recipient block: the Action, lower case ("failed"),
	 * or NULL; the code (Diagnostic-Code smtp, else 400/500 from
	 * Status), 0 none; the enhanced code ("5.1.1") or NULL. */
	const char *action;
	int code;
	const char *enhanced;
};

/* Reads buf[0..len) (at most QUEUE_DSN_STATUS_MAX of it) into *st,
 * strings from pool.  Never fails: what it cannot read is absent. */
void queue_dsn_status_read(struct gn_pool *pool, const char *buf, size_t len,
			   struct queue_dsn_status *st);

/* ---- suppress.c ---- */

/* Whether a loaded module provides "suppression.v1" (gannet/suppression.h). */
bool queue_suppress_active(void);
/* Which of rcpts[0..n) are on the list of the sender's account
 * (suppressed_r[i], an array of n): how many (0 also without a
 * provider), or -1 (*error_r). */
int queue_suppress_check(struct gn_pool *pool, int64_t account_id, const struct gn_addr *const *rcpts,
			 size_t n, bool *suppressed_r, const char **error_r);
/* Recipient rcpt_id (canonical rcpt, addr) failed for good with a remote
 * SMTP code: the provider may add it to the list.  Errors are logged.
 * Whether it was added now. */
bool queue_suppress_failure(int64_t account_id, int64_t rcpt_id, const char *rcpt,
			    const struct gn_addr *addr, int code, const char *enhanced,
			    const char *source);
/* The delivery status of a DSN delivered (d in "deliver.after") to an
 * account: 0 with *ds (strings from pool), or -1 with *why_r when it
 * cannot be read. */
struct gn_delivery;
int queue_dsn_of_delivery(struct gn_pool *pool, struct gn_delivery *d, int64_t account_id,
			  struct queue_dsn_status *ds, const char **why_r);
/* A DSN's status for retired recipient rcpt_id (canonical rcpt) of the
 * account: its one recipient block's failure with a code goes to
 * queue_suppress_failure() (source "DSN").  Whether that added it. */
bool queue_suppress_dsn(struct gn_pool *pool, int64_t account_id, int64_t rcpt_id, const char *rcpt,
			const struct queue_dsn_status *ds);

/* ---- webhook.c ---- */

/* An outcome of a queued recipient for the service "webhooks.v1"
 * (gannet/webhook.h), when a loaded module provides it: event
 * "delivered", "delayed", "failed", "suppressed" or "canceled"; the
 * strings may be NULL.  Outside any transaction; errors are logged. */
void queue_webhook_event(int64_t account_id, int64_t rcpt_id, const char *event, const char *rcpt,
			 const char *from_id, const char *message_id, const char *subject,
			 const char *extra_json, int code, const char *enhanced, const char *text,
			 bool suppressing);
/* The same from an incoming DSN (dsn true: mox's DSN field) or message
 * matched by FromID to a retired recipient (fromid.c). */
void queue_webhook_event_dsn(int64_t account_id, int64_t rcpt_id, const char *event, const char *rcpt,
			     const char *from_id, const char *message_id, const char *subject,
			     const char *extra_json, int code, const char *enhanced, const char *text,
			     bool suppressing, bool dsn);

#endif
