/*
 * gannet/deliver.h: the delivery pipeline, the one way into mailboxes.
 *
 * SMTP, submission copies, the HTTP API and `gannet import` all deliver
 * through it.  A delivery is one message and its recipients:
 *
 *   struct gn_delivery *d = gn_delivery_new("smtp", NULL);
 *   gn_delivery_set_sender(d, sender);              (NULL: the null path)
 *   gn_delivery_add_recipient(d, rcpt, prefix, prefix_len);   (each RCPT)
 *   gn_delivery_check(d, on_checked, data);         (optional: RCPT time)
 *   gn_delivery_write(d, chunk, len);               (any number of times)
 *   gn_delivery_run(d, on_done, data);              (after the last chunk)
 *   ... in on_done: gn_delivery_result(d, i) for each recipient ...
 *   gn_delivery_free(&d);
 *
 * Streaming: each chunk goes at once to the store's blob writer and to the
 * MIME parser, so the body is parsed once and never held whole in memory.
 * The bytes are stored as given (SMTP gives CRLF lines, dot-unstuffed).
 *
 * gn_delivery_run() then, for each recipient:
 *   1. "deliver.resolve" (timeout 10s, default TEMPFAIL): recipient
 *      resolution.  A hook may set the account (gn_delivery_set_account())
 *      or replace the recipient by other addresses (gn_delivery_expand(),
 *      aliases), and return ACCEPT; REJECT or TEMPFAIL fail the recipient
 *      with the hook's reply.  When the chain continues (or accepts without
 *      setting anything), the core looks the address up in the store
 *      (gn_store_address_lookup(): catchall separators included); no
 *      account: 550 5.1.1.  Expanded addresses are resolved the same way,
 *      up to the depth and count limits.
 *   2. "deliver.check" (timeout 10s, default CONTINUE): recipient checks,
 *      the account known (quota).  REJECT / TEMPFAIL fail the recipient.
 *   Then, for the recipients still accepted, once the body is complete:
 *   3. "deliver.mailbox" (timeout 5s, default CONTINUE): mailbox choice
 *      (rulesets); the current mailbox starts as the caller's (see
 *      gn_delivery_set_mailbox()) or "Inbox"; a hook changes it with
 *      gn_delivery_set_mailbox().  A mailbox that does not exist means
 *      Inbox (logged).  REJECT / TEMPFAIL fail the recipient.  Not run
 *      when the caller fixed the mailbox (GN_DELIVERY_FIXED_MAILBOX).
 *   4. One transaction: first, per account that gets copies,
 *      "deliver.store" (since ABI 1.1; default TEMPFAIL): a check inside
 *      the transaction, before anything is written, that may lock rows
 *      (gn_store_account_lock(): the account first, as the store's lock
 *      order wants) and read what every delivery committed before;
 *      gn_delivery_current_store_size() says how many bytes the account
 *      is about to get, gn_delivery_current_store_count() in how many
 *      messages.  Its hooks must answer at once (PENDING counts
 *      as TEMPFAIL: a transaction never waits on the loop); REJECT /
 *      TEMPFAIL fail every recipient of that account with the hook's
 *      reply (quota: 452 4.2.2).  A query that fails aborts the
 *      transaction, and every recipient fails with 451 4.3.0.  Then the
 *      body is stored once (with its MIME structure;
 *      a structure past 8 MiB fails every recipient with 554 5.6.0, for
 *      good), one message per distinct (account, mailbox) with the prefix
 *      of the first recipient that reached it (recipients as added come
 *      before the addresses of expansions; the copy of an expanded
 *      address gets a "Delivered-To: address" field above the first
 *      Delivered-To of its recipient's prefix, RFC 9228), as pending
 *      (gannet/store.h), numbered in the same transaction only when no
 *      other process is settling the account; commit.  A database failure
 *      fails every recipient still accepted with 451 4.3.0, and nothing is
 *      stored.  When the connection breaks during the COMMIT itself, the
 *      delivery finds out from the server (once it is reachable again, from
 *      the loop, for up to two minutes) whether the transaction committed,
 *      and reports it stored or failed accordingly: a 250 is never given
 *      for a message that is not stored, and a 451 never for one that is.
 *   5. on_done is called: results are final (a UID may still be 0).
 *   6. On the loop's next turn (after what on_done queued is written):
 *      gn_store_settle() for the accounts, without waiting; the UIDs are
 *      known from then on unless another process is numbering them.
 *   7. "deliver.after" (timeout 10s, default CONTINUE), once per stored
 *      message, the current recipient being the first that reached it:
 *      after-delivery actions (webhooks).  Results are ignored.  These
 *      runs keep the delivery alive after gn_delivery_free() if needed.
 *
 * Hook context: every chain gets the struct gn_delivery * as its context
 * (gn_hook_call_context()); the accessors below read it, and the setters
 * say in which chain they may be used (-1 elsewhere).
 *
 * Results: per recipient as added (an alias's result is its targets':
 * accepted when any was stored, else a temporary failure when any failed
 * temporarily, else the first permanent failure; accepted when all were
 * skipped, gn_delivery_skip()).
 *
 * Threads and processes: a delivery is used by one process from the start
 * phase on (it needs the database and the loop).  Strings returned live as
 * long as the delivery.
 */
#ifndef GANNET_DELIVER_H
#define GANNET_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/addr.h>
#include <gannet/hook.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gn_mime_message;

/* Hook point names. */
#define GN_DELIVER_RESOLVE "deliver.resolve"
#define GN_DELIVER_CHECK "deliver.check"
#define GN_DELIVER_MAILBOX "deliver.mailbox"
#define GN_DELIVER_AFTER "deliver.after"
/* Since ABI 1.1: step 4's check inside the store's transaction. */
#define GN_DELIVER_STORE "deliver.store"

/* Limits; fill with gn_delivery_limits_init() and change what you want.
 * The core reads it by its size: members are only ever added at the end. */
struct gn_delivery_limits {
	size_t size;			/* sizeof(struct gn_delivery_limits) */
	uint64_t max_size;		/* bytes of the message; 0: no limit */
	unsigned max_recipients;	/* as added (default 1000) */
	unsigned max_expansion_depth;	/* alias of alias of ... (default 10) */
	unsigned max_expansion_count;	/* addresses from all expansions (default 1000) */
};

void gn_delivery_limits_init(struct gn_delivery_limits *limits);

struct gn_delivery;	/* opaque */

/* source: who delivers ("smtp", "submission", "http", "import"), for hooks
 * and logs; copied.  limits NULL: the defaults; copied. */
struct gn_delivery *gn_delivery_new(const char *source,
				    const struct gn_delivery_limits *limits);
/* Frees the delivery (accepts NULL, sets *d to NULL).  A pending check or
 * run is cancelled (its done is not called); pending after-delivery hooks
 * go on and the memory is released when they finish. */
void gn_delivery_free(struct gn_delivery **d);

/* ---- set up by the caller ---- */

/* The envelope sender; NULL for the null path "<>".  Copied. */
void gn_delivery_set_sender(struct gn_delivery *d, const struct gn_addr *sender);

/* Adds a recipient (copied) with its prefix: header lines
 * ("Delivered-To: ...\r\n", CRLF-terminated) put before the body of the
 * copy this recipient gets (NULL / 0: none).  Returns its index (0, 1, ...).
 * Past the limit the recipient is added already failed (452 4.5.3). */
int gn_delivery_add_recipient(struct gn_delivery *d, const struct gn_addr *rcpt,
			      const char *prefix, size_t prefix_len);
/* Adds an account directly (import, copies to Sent): no resolution, the
 * check chain still runs. */
int gn_delivery_add_account(struct gn_delivery *d, int64_t account_id,
			    const char *prefix, size_t prefix_len);
/* As gn_delivery_add_account(), for a message sent to rcpt (copied) that
 * goes to that account without resolving the address (a catch-all, the
 * postmaster's): hooks see rcpt as gn_delivery_current() (an incoming
 * webhook's RcptTo).  Since ABI 1.1. */
int gn_delivery_add_account_rcpt(struct gn_delivery *d, int64_t account_id,
				 const struct gn_addr *rcpt, const char *prefix,
				 size_t prefix_len);

/* Replaces recipient i's prefix (copied; NULL / 0: none), before
 * gn_delivery_run(): for a receiver that adds header lines once the
 * message is in (Authentication-Results at the end of data) to a prefix
 * it gave at RCPT.  Returns 0, or -1 for an index out of range or once
 * the run began.  Since ABI 1.1. */
int gn_delivery_set_prefix(struct gn_delivery *d, size_t i, const char *prefix,
			   size_t prefix_len);

/* Flags for gn_delivery_set_mailbox_default(). */
#define GN_DELIVERY_FIXED_MAILBOX 0x1u	/* no "deliver.mailbox" chain */

/* The mailbox every recipient starts with (default "Inbox"); copied. */
/* Since ABI 1.1: the results of the checks of the received message
 * (gannet/store.h struct gn_store_message_auth), kept with each copy it
 * stores; copied (gn_store_message_auth_copy()); NULL: none.  Before
 * the run; 0, or -1 when it has begun or auth's size is too small. */
struct gn_store_message_auth;
int gn_delivery_set_auth(struct gn_delivery *d, const struct gn_store_message_auth *auth);
/* The IP address (text) of the client that handed the message over (the
 * SMTP receiver sets it), copied; at most 45 characters.  Before the run;
 * 0, or -1 when it has begun or the text is too long (ABI 1.1). */
int gn_delivery_set_remote_ip(struct gn_delivery *d, const char *ip);

void gn_delivery_set_mailbox_default(struct gn_delivery *d, const char *mailbox,
				     unsigned flags);
/* Flags (GN_STORE_SEEN ...) and keywords (copied) of the stored copies,
 * and their internal date (0: now).  For import. */
void gn_delivery_set_flags(struct gn_delivery *d, unsigned flags,
			   const char *const *keywords, size_t n_keywords);
void gn_delivery_set_internal_date(struct gn_delivery *d, time_t date);

/* Streams the message.  Returns 0, or -1 when the message passes the size
 * limit (then every recipient fails with 552 5.3.4; further writes are
 * ignored, the caller keeps reading its input) or the store failed (451
 * 4.3.0 at run). */
int gn_delivery_write(struct gn_delivery *d, const void *data, size_t len);

typedef void gn_delivery_done_fn(struct gn_delivery *d, void *data);

/* Resolves and checks the recipients added since the last check (chains 1
 * and 2), without a message: for SMTP's RCPT.  done is called once, maybe
 * before this returns; then gn_delivery_result() tells each recipient's
 * fate so far.  Not while a check or run is under way (-1). */
int gn_delivery_check(struct gn_delivery *d, gn_delivery_done_fn *done, void *data);
/* Delivers (after the last write): resolves and checks the recipients not
 * checked yet, then steps 3 to 6.  done is called once with the final
 * results, maybe before this returns.  Once per delivery (-1 otherwise). */
int gn_delivery_run(struct gn_delivery *d, gn_delivery_done_fn *done, void *data);
/* The same, waiting on the loop until done and the after-delivery hooks
 * have finished: for the CLI.  Returns the number of recipients accepted,
 * or -1 when called twice. */
int gn_delivery_run_sync(struct gn_delivery *d);

/* ---- results ---- */

enum gn_delivery_status {
	GN_DELIVERY_UNDECIDED = 0,	/* not checked yet */
	GN_DELIVERY_ACCEPTED,		/* checked (and, after run, stored) */
	GN_DELIVERY_REJECTED,		/* permanent failure: code 5xx */
	GN_DELIVERY_TEMPFAIL,		/* temporary failure: code 4xx */
};

/* A recipient's result.  Allocated by the core only and handed out by
 * pointer, never as an array, read-only for modules: members may be added
 * at the end (a module built earlier reads only those it knows). */
struct gn_delivery_result {
	enum gn_delivery_status status;
	int code;			/* 250, 550, 451, ...; 0 while undecided */
	const char *enhanced;		/* "2.0.0", "5.1.1", ... */
	const char *text;		/* human text */
	int64_t account_id;		/* once resolved (first target for aliases), else 0 */
	int64_t mailbox_id;		/* after a run: where it was stored, else 0 */
	/* After a run: the message's UID once known (after step 6 unless
	 * another process was numbering it meanwhile), else 0. */
	uint32_t uid;
};

size_t gn_delivery_recipient_count(const struct gn_delivery *d);
/* NULL for an index out of range. */
const struct gn_delivery_result *gn_delivery_result(const struct gn_delivery *d,
						    size_t i);
/* The recipient as added; NULL for an account added directly. */
const struct gn_addr *gn_delivery_recipient(const struct gn_delivery *d, size_t i);

/* ---- for hooks: the delivery and its current recipient ---- */

const char *gn_delivery_source(const struct gn_delivery *d);
/* The client's IP address set by gn_delivery_set_remote_ip(), or NULL
 * (ABI 1.1). */
const char *gn_delivery_remote_ip(const struct gn_delivery *d);
/* NULL for the null path. */
const struct gn_addr *gn_delivery_sender(const struct gn_delivery *d);
/* Bytes written so far (all of them from "deliver.mailbox" on). */
uint64_t gn_delivery_size(const struct gn_delivery *d);
/* The parsed message: from "deliver.mailbox" on, else NULL. */
const struct gn_mime_message *gn_delivery_message(const struct gn_delivery *d);

/* The current recipient's address (an expanded address for an alias's
 * targets; NULL for an account added directly), the index of the
 * recipient it comes from, and its expansion depth (0: as added). */
const struct gn_addr *gn_delivery_current(const struct gn_delivery *d);
size_t gn_delivery_current_index(const struct gn_delivery *d);
unsigned gn_delivery_current_depth(const struct gn_delivery *d);
/* Its account: 0 until resolved. */
int64_t gn_delivery_current_account(const struct gn_delivery *d);
/* Its mailbox name ("Inbox" unless changed). */
const char *gn_delivery_current_mailbox(const struct gn_delivery *d);
/* In "deliver.after": where it was stored, and its UID: when another
 * process is still numbering the message, this waits for that settle
 * (gn_store_settle() with wait); 0 only when the database fails. */
int64_t gn_delivery_current_mailbox_id(const struct gn_delivery *d);
uint32_t gn_delivery_current_uid(const struct gn_delivery *d);

/* In "deliver.store": the bytes this delivery is about to store for the
 * current account (each of its copies there: prefix + body); 0
 * elsewhere.  Since ABI 1.1. */
uint64_t gn_delivery_current_store_size(const struct gn_delivery *d);
/* In "deliver.store": how many messages this delivery is about to store
 * for the current account (one per distinct mailbox there); 0 elsewhere.
 * Since ABI 1.1. */
uint64_t gn_delivery_current_store_count(const struct gn_delivery *d);

/* "deliver.resolve": the current recipient is this account.  0 or -1. */
int gn_delivery_set_account(struct gn_delivery *d, int64_t account_id);
/* "deliver.resolve": replaces the current recipient by addrs (copied;
 * n >= 1), each resolved in turn (depth + 1).  Returns 0, or -1 with
 * *error_r (static) past the depth or count limits (the hook then
 * rejects or tempfails as it sees fit). */
int gn_delivery_expand(struct gn_delivery *d, const struct gn_addr *const *addrs,
		       size_t n, const char **error_r);
/* "deliver.mailbox", since ABI 1.1: leaves the current target out on
 * purpose (an alias's member who is the message's From, or who is an
 * explicit recipient too): nothing is stored for it and it fails nothing;
 * a recipient whose targets were all skipped counts as accepted.  The hook
 * then returns ACCEPT (later hooks have nothing to decide).  0, or -1
 * outside that chain. */
int gn_delivery_skip(struct gn_delivery *d);
/* "deliver.mailbox" (also "deliver.resolve" and "deliver.check"): the
 * mailbox for the current recipient (copied).  0 or -1. */
int gn_delivery_set_mailbox(struct gn_delivery *d, const char *mailbox);

#ifdef __cplusplus
}
#endif
#endif
