/*
 * modules/webhooks/webhooks.h: the webhooks module's parts (README
 * beside; mox.md 1.4 to 1.7).
 *
 *   webhooks.c  the descriptor, the module's settings, the service
 *               "webhooks.v1" (gannet/webhook.h) the queue reports its
 *               outcomes to, and the "deliver.after" hook that queues an
 *               incoming webhook for each SMTP delivery
 *   hooks.c     the tables (schema/): accounts' settings, hooks, retired
 *               hooks; queueing with the supersede rule; all of the
 *               module's SQL
 *   send.c      the runner's job: claims hooks that are due and POSTs
 *               them, signed, with the core's HTTPS client
 *   cli.c       `gannet config account webhook ...`,
 *               `gannet queue webhook ...`
 */
#ifndef WEBHOOKS_WEBHOOKS_H
#define WEBHOOKS_WEBHOOKS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <gannet/gannet.h>

#define WEBHOOKS_AREA "webhooks"

/* mox.md 1.4: 12 attempts, the backoffs between them. */
#define WEBHOOKS_MAX_ATTEMPTS 12
/* Bytes of a URL and of an Authorization value (set by the account's
 * administrator; the limits keep a row and a request header sane). */
#define WEBHOOKS_URL_MAX 2048
#define WEBHOOKS_AUTH_MAX 1024
/* Bytes of a response kept in a result (mox: 512). */
#define WEBHOOKS_RESPONSE_KEEP 512
/* Results kept with a hook: one an attempt, and the extra line of a
 * superseded or canceled one. */
#define WEBHOOKS_RESULTS_MAX (WEBHOOKS_MAX_ATTEMPTS + 2)
/* The longest keeping period of retired hooks, seconds (10 years). */
#define WEBHOOKS_KEEP_MAX_S (10LL * 365 * 86400)
/* Bytes of Text and HTML of an incoming payload each (mox: 1 MiB). */
#define WEBHOOKS_TEXT_MAX (1024 * 1024)

/* The module's settings (section "webhooks"). */
struct webhooks_settings {
	unsigned concurrency;		/* requests in flight at once (mox: 10) */
	unsigned long timeout_ms;	/* one request (mox: 60 s) */
	/* retired_keep: seconds the retired hooks of an account without a
	 * period of its own are kept (mox's KeepRetiredWebhookPeriod: 0, not
	 * kept; localserve 72 h). */
	long long retired_keep_s;
};
extern struct webhooks_settings webhooks_settings;

/* An account's settings. */
struct webhooks_account {
	int64_t account_id;
	const char *outgoing_url, *outgoing_auth;	/* "" none */
	const char *const *events;			/* NULL-terminated; none: all */
	size_t n_events;
	const char *incoming_url, *incoming_auth;
	const char *secret;				/* "whsec_..." */
	long long keep_retired_s;			/* the effective period */
	bool keep_retired_default;			/* it is webhooks.retired_keep */
};

/* One hook, pending or retired (list and print). */
struct webhooks_hook {
	int64_t id, account_id, queue_msg_id;
	const char *account;
	const char *from_id, *message_id, *subject, *url;
	bool has_auth, is_incoming;
	const char *event;			/* "" incoming */
	const char *payload, *results;		/* JSON text */
	double submitted, next_attempt;		/* next_attempt: 0 retired */
	unsigned attempts;
	bool retired, success;
	int64_t superseded_by;
	double last_activity, keep_until;
};

extern const char *const webhooks_events[];	/* NULL-terminated */
bool webhooks_event_valid(const char *event);

/* hooks.c.  Each returns -1 with *error_r (static or from pool). */
/* 1 found (*a_r from pool), 0 the account has no settings. */
int webhooks_account_get(struct gn_pool *pool, int64_t account_id, struct webhooks_account *a_r,
			 const char **error_r);
/* Changes one side: which "outgoing" or "incoming"; url "" clears it.
 * events NULL: all.  Creates the row (and its secret) when missing. */
int webhooks_account_set(int64_t account_id, const char *which, const char *url, const char *auth,
			 const char *const *events, size_t n_events, const char **error_r);
/* keep_s < 0: the account's period becomes the setting's. */
int webhooks_account_set_keep(int64_t account_id, long long keep_s, const char **error_r);
/* A new secret (*secret_r from pool). */
int webhooks_account_new_secret(struct gn_pool *pool, int64_t account_id, const char **secret_r,
				const char **error_r);
/* Queues a hook: for an outgoing one (queue_msg_id != 0) the pending
 * one of the same queue message is retired, superseded by it.  *id_r
 * the new hook's id. */
int webhooks_queue(struct gn_pool *pool, const struct webhooks_account *a, int64_t queue_msg_id,
		   const char *from_id, const char *message_id, const char *subject, bool incoming,
		   const char *event, const char *payload, int64_t *id_r, const char **error_r);
/* Lists hooks (retired: the retired ones) of an account (0: all), at
 * most max, by id; *list_r from pool. */
int webhooks_list(struct gn_pool *pool, bool retired, int64_t account_id, size_t max,
		  struct webhooks_hook **list_r, size_t *n_r, const char **error_r);
/* 1 found, 0 not. */
int webhooks_get(struct gn_pool *pool, bool retired, int64_t id, struct webhooks_hook *h_r,
		 const char **error_r);
/* Sets the next attempt: 1 done, 0 no such pending hook. */
int webhooks_schedule(int64_t id, double when, const char **error_r);
/* Retires a pending hook with the result "canceled by admin": 1, 0 none. */
int webhooks_cancel(int64_t id, const char **error_r);
/* Deletes the retired hooks past their keeping time: how many. */
int webhooks_cleanup(const char **error_r);

/* A claimed hook, for send.c. */
struct webhooks_claim {
	int64_t id, account_id;
	const char *url, *auth, *payload, *secret;
	unsigned attempt;		/* this one's number, from 1 */
	bool incoming;
};
/* Claims up to max due hooks whose URLs are not in busy[0..n_busy), one
 * a URL, each with its attempt counted and its next attempt set (before
 * it is made, mox.md 1.4).  *claims_r from pool. */
int webhooks_claim(struct gn_pool *pool, double now, size_t max, const char *const *busy, size_t n_busy,
		   struct webhooks_claim **claims_r, size_t *n_r, const char **error_r);
/* The result of an attempt: done (success, or the last attempt) retires
 * the hook; a hook superseded or canceled meanwhile gets the result in
 * its retired record with " (superseded)" added to its error. */
int webhooks_result(const struct webhooks_claim *c, double start, double duration, bool success, int code,
		    const char *error, const char *response, size_t response_len, const char **error_r);
/* The backoff after attempt n (1-based), seconds. */
double webhooks_backoff(unsigned n);

/* send.c */
/* One pass: starts the due hooks (at most the free concurrency). */
void webhooks_send_pass(void);
/* The runner's: each attempt that ends starts another pass at once. */
void webhooks_send_chain(bool on);
/* fn(NULL) runs when the last request in flight ends (the CLI's run). */
void webhooks_send_on_idle(gn_timer_fn *fn);
/* Requests in flight. */
unsigned webhooks_in_flight(void);
/* Standard Webhooks signature "v1,<base64>" of "id.timestamp.body" with
 * the secret's key, from pool; NULL for a malformed secret. */
const char *webhooks_sign(struct gn_pool *pool, const char *secret, const char *id, long long ts,
			  const char *body, size_t len);
/* "https://host[:port]/path": 0 with the parts (from pool), -1 with
 * *error_r. */
int webhooks_url_parse(struct gn_pool *pool, const char *url, const char **host_r, unsigned *port_r,
		       const char **path_r, const char **error_r);

/* webhooks.c: RFC 3339 UTC with fractions, as Go's time.Time marshals. */
const char *webhooks_time(struct gn_pool *pool, double t);

int webhooks_cli_register(struct gn_module_ctx *ctx, const char **error_r);
/* incoming.c: the "deliver.after" hook. */
int webhooks_incoming_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
