/*
 * core/store/deliver.c: the delivery pipeline (gannet/deliver.h).
 *
 * A delivery keeps two lists: the recipients as the caller added them
 * (struct rcpt: what results are reported for), and the targets (struct
 * target): what is resolved, checked and stored.  Each recipient starts as
 * one target; an alias expansion adds targets that point back at the same
 * recipient, one level deeper.  Targets are kept by index (the array grows
 * while hooks expand), never by pointer.
 *
 * The work is a small state machine driven by drive(): each step either
 * finishes at once or starts a hook chain (gn_hook_run()) whose done
 * callback records the outcome and drives on.  A chain that completes
 * before gn_hook_run() returns is handled by the same loop, so thousands of
 * recipients never nest calls.  Stages:
 *
 *   STAGE_RESOLVE  per target: "deliver.resolve", then the store's lookup;
 *                  then "deliver.check".  (gn_delivery_check() stops here.)
 *   STAGE_MAILBOX  per accepted target: "deliver.mailbox" (which may also
 *                  leave a target out: gn_delivery_skip(), T_SKIPPED).
 *   STAGE_STORE    one transaction: finish the blob (with the body's MIME
 *                  structure, refused for good past its bound), one
 *                  message per distinct (account, mailbox) with
 *                  gn_store_message_deliver() (gannet/store.h: numbered at
 *                  once when nobody else is settling the account, else
 *                  pending, never waiting for another delivery's commit),
 *                  commit; then done is called (SMTP queues its 250).
 *   STAGE_UNKNOWN  only when the connection broke during COMMIT: whether
 *                  the transaction committed is unknown to us, and a wrong
 *                  guess either loses a message (250 for nothing) or stores
 *                  it twice (451, then the sender's retry).  So it is asked
 *                  of the server: the transaction wrote a random token
 *                  (gn_delivery_tokens), looked for on the new connection
 *                  (unknown_probe()) every UNKNOWN_POLL_MS from the loop (the
 *                  client waits for its reply meanwhile; nothing blocks)
 *                  until the answer is sure; only after UNKNOWN_TIMEOUT_MS
 *                  without one does the delivery fail with 451 (logged as an
 *                  error with the token).  Not pg_xact_status(): after a
 *                  crash that lost the WAL of an uncommitted transaction,
 *                  its id can be given to another one, which commits.
 *   STAGE_SETTLE   on the next turn of the loop (after the 250 went out):
 *                  settles the accounts again without waiting (what others
 *                  left while this transaction held the settle lock, or
 *                  this delivery's messages if they are still pending), and
 *                  learns the UIDs.  A settle that fails is logged: the
 *                  messages are stored, and the next settle by anyone (a
 *                  reader, the runner job) numbers them.
 *   STAGE_AFTER    per stored copy: "deliver.after"; done was called before.
 *
 * The body streams through gn_delivery_write() into the store's blob writer
 * (which sends full chunks to the database as they fill, outside any
 * transaction: no transaction stays open while a client is sending) and the
 * MIME parser at the same time.
 *
 * Memory: everything of a delivery comes from its pool, except the blob
 * writer and the MIME parser/message.  Lifetime: the caller's reference,
 * plus one while the after-delivery chains run (gn_delivery_free() during
 * them only drops the caller's).
 */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gnutls/crypto.h>

#define RESOLVE_TIMEOUT_MS 10000UL
#define CHECK_TIMEOUT_MS 10000UL
#define MAILBOX_TIMEOUT_MS 5000UL
#define AFTER_TIMEOUT_MS 10000UL
#define STORE_TIMEOUT_MS 1000UL
#define UNKNOWN_POLL_MS 200UL
#define UNKNOWN_TIMEOUT_MS 120000UL

enum target_state {
	T_NEW = 0,	/* to resolve */
	T_RESOLVED,	/* account known, to check */
	T_OK,		/* checked: to store */
	T_EXPANDED,	/* replaced by its expansion (alias) */
	T_FAILED,	/* code/enhanced/text say why */
	T_DROPPED,	/* expansion of a target whose resolve then failed */
	T_STORED,	/* stored (copy says which) */
	T_SKIPPED,	/* left out on purpose by a mailbox hook (gn_delivery_skip()) */
};

struct target {
	size_t rcpt;		/* the recipient it comes from */
	size_t parent;		/* the expanded target it comes from, or SIZE_MAX */
	unsigned depth;
	struct gn_addr *addr;	/* NULL: an account added directly */
	int64_t account_id;
	const char *mailbox;
	enum target_state state;
	bool mailbox_done;	/* the mailbox chain ran */
	bool expanding;		/* gn_delivery_expand() during this resolve */
	int code;
	const char *enhanced;
	const char *text;
	int64_t mailbox_id;	/* resolved id, then where stored */
	int64_t msg_id;		/* the stored (pending) message's id */
	uint32_t uid;		/* 0 until known (settled) */
	size_t copy_owner;	/* the target whose copy this one shares */
};

struct rcpt {
	struct gn_addr *addr;	/* NULL: an account added directly */
	const char *prefix;
	size_t prefix_len;
	bool over_limit;	/* failed when added (too many recipients) */
	struct gn_delivery_result result;
};

enum stage {
	STAGE_IDLE = 0,
	STAGE_RESOLVE,
	STAGE_MAILBOX,
	STAGE_STORE,
	STAGE_UNKNOWN,
	STAGE_SETTLE,
	STAGE_AFTER,
	STAGE_DONE,
};

struct gn_delivery {
	struct gn_pool *pool;
	const char *source;
	const char *remote_ip;	/* or NULL */
	struct gn_delivery_limits limits;
	struct gn_addr *sender;

	struct rcpt *rcpts;
	size_t n_rcpts, alloc_rcpts;
	struct target *targets;
	size_t n_targets, alloc_targets;
	unsigned expanded;	/* addresses added by expansions */

	const char *mailbox_default;
	/* gn_delivery_set_auth(): for every copy, from pool; or NULL */
	const struct gn_store_message_auth *auth;
	bool mailbox_fixed;
	unsigned flags;
	const char **keywords;
	size_t n_keywords;
	time_t internal_date;

	/* The body. */
	struct gn_store_blob_writer *blob;
	struct gn_mime_parser *parser;
	struct gn_mime_message *mime;
	const char *mime_json;	/* its structure as stored, from pool */
	uint64_t size;
	bool too_big;
	bool store_failed;	/* a blob write failed */
	bool ran;		/* gn_delivery_run() was called */
	bool store_done;	/* STAGE_STORE's transaction ended (or was resolved) */

	/* The machine. */
	enum stage stage;
	bool checking_only;	/* gn_delivery_check(): stop after resolve */
	size_t next;		/* next target (or copy) of the stage */
	size_t cur;		/* the current target (for hooks) */
	bool waiting;		/* a chain is pending */
	bool driving;		/* inside drive() */
	struct gn_hook_call *call;	/* the pending chain */
	struct gn_timer *settle_timer;	/* STAGE_SETTLE: the next turn */
	struct gn_timer *unknown_timer;	/* STAGE_UNKNOWN: asking the server */
	double unknown_deadline;	/* gn_now() */
	char token[33];			/* the store transaction's token (hex) */
	gn_delivery_done_fn *done;
	void *done_data;
	size_t *copies;		/* targets that own a stored copy */
	size_t n_copies;
	uint64_t store_bytes;	/* "deliver.store": what the current account gets */
	uint64_t store_count;	/* ... and how many messages (copies) */
	int refs;
};

/* ---- limits, life ---- */

void gn_delivery_limits_init(struct gn_delivery_limits *limits)
{
	memset(limits, 0, sizeof(*limits));
	limits->size = sizeof(*limits);
	limits->max_size = 0;
	limits->max_recipients = 1000;
	limits->max_expansion_depth = 10;
	limits->max_expansion_count = 1000;
}

struct gn_delivery *gn_delivery_new(const char *source,
				    const struct gn_delivery_limits *limits)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_delivery *d = gn_pool_alloc(pool, sizeof(*d));
	d->pool = pool;
	d->source = gn_pool_strdup(pool, source != NULL ? source : "unknown");
	gn_delivery_limits_init(&d->limits);
	if (limits != NULL) {
		/* Take what the caller's struct has (it may be older). */
		size_t n = limits->size < sizeof(d->limits) ? limits->size : sizeof(d->limits);
		memcpy(&d->limits, limits, n);
		d->limits.size = sizeof(d->limits);
	}
	d->mailbox_default = "Inbox";
	d->refs = 1;
	return d;
}

static void delivery_destroy(struct gn_delivery *d)
{
	gn_timer_free(&d->settle_timer);
	gn_timer_free(&d->unknown_timer);
	gn_store_blob_writer_free(&d->blob);
	gn_mime_parser_free(&d->parser);
	gn_mime_message_free(&d->mime);
	gn_free(d->rcpts);
	gn_free(d->targets);
	gn_free(d->copies);
	struct gn_pool *pool = d->pool;
	gn_pool_free(&pool);
}

static void delivery_unref(struct gn_delivery *d)
{
	if (--d->refs == 0)
		delivery_destroy(d);
}

void gn_delivery_free(struct gn_delivery **dp)
{
	if (dp == NULL || *dp == NULL)
		return;
	struct gn_delivery *d = *dp;
	*dp = NULL;
	if (d->stage == STAGE_UNKNOWN) {
		/* The caller went away while we asked what became of its
		 * COMMIT: stop asking; the pending blob (if the transaction
		 * did not take it) is left to the clean-up, never waited for. */
		gn_log(GN_LOG_WARN, "deliver", "event=commit_outcome_abandoned source=%s token=%s",
		       d->source, d->token);
		store_blob_writer_abandon(&d->blob);
	}
	if (d->stage != STAGE_SETTLE && d->stage != STAGE_AFTER) {
		/* Before the commit: the caller went away, stop. */
		if (d->call != NULL) {
			gn_hook_cancel(d->call);
			d->call = NULL;
		}
		d->done = NULL;
		d->stage = STAGE_DONE;
	}
	d->done = NULL;
	delivery_unref(d);
}

/* ---- set up ---- */

static struct gn_addr *addr_copy(struct gn_pool *pool, const struct gn_addr *a)
{
	struct gn_addr *c = gn_pool_alloc(pool, sizeof(*c));
	c->localpart = gn_pool_strdup(pool, a->localpart);
	c->domain = gn_pool_strdup(pool, a->domain);
	c->domain_utf8 = gn_pool_strdup(pool, a->domain_utf8 != NULL ? a->domain_utf8 : a->domain);
	return c;
}

void gn_delivery_set_sender(struct gn_delivery *d, const struct gn_addr *sender)
{
	d->sender = sender != NULL ? addr_copy(d->pool, sender) : NULL;
}

static size_t target_add(struct gn_delivery *d, size_t rcpt, size_t parent,
			 unsigned depth, struct gn_addr *addr, int64_t account_id)
{
	if (d->n_targets == d->alloc_targets) {
		d->alloc_targets = d->alloc_targets ? d->alloc_targets * 2 : 8;
		d->targets = gn_realloc(d->targets, d->alloc_targets * sizeof(*d->targets));
	}
	struct target *t = &d->targets[d->n_targets];
	memset(t, 0, sizeof(*t));
	t->rcpt = rcpt;
	t->parent = parent;
	t->depth = depth;
	t->addr = addr;
	t->account_id = account_id;
	t->mailbox = d->mailbox_default;
	t->state = account_id != 0 ? T_RESOLVED : T_NEW;
	t->copy_owner = SIZE_MAX;
	return d->n_targets++;
}

static int rcpt_add(struct gn_delivery *d, const struct gn_addr *addr, int64_t account_id,
		    const char *prefix, size_t prefix_len)
{
	if (d->ran)
		return -1;
	if (d->n_rcpts == d->alloc_rcpts) {
		d->alloc_rcpts = d->alloc_rcpts ? d->alloc_rcpts * 2 : 8;
		d->rcpts = gn_realloc(d->rcpts, d->alloc_rcpts * sizeof(*d->rcpts));
	}
	size_t i = d->n_rcpts++;
	struct rcpt *r = &d->rcpts[i];
	memset(r, 0, sizeof(*r));
	r->addr = addr != NULL ? addr_copy(d->pool, addr) : NULL;
	if (prefix != NULL && prefix_len > 0) {
		char *p = gn_pool_alloc(d->pool, prefix_len + 1);
		memcpy(p, prefix, prefix_len);
		r->prefix = p;
		r->prefix_len = prefix_len;
	}
	if (d->limits.max_recipients > 0 && i >= d->limits.max_recipients) {
		/* RFC 5321 4.5.3.1.8: 452 for too many recipients. */
		r->over_limit = true;
		r->result.status = GN_DELIVERY_TEMPFAIL;
		r->result.code = 452;
		r->result.enhanced = "4.5.3";
		r->result.text = "too many recipients";
		return (int)i;
	}
	target_add(d, i, SIZE_MAX, 0, r->addr, account_id);
	return (int)i;
}

int gn_delivery_add_recipient(struct gn_delivery *d, const struct gn_addr *rcpt,
			      const char *prefix, size_t prefix_len)
{
	if (rcpt == NULL)
		return -1;
	return rcpt_add(d, rcpt, 0, prefix, prefix_len);
}

int gn_delivery_add_account(struct gn_delivery *d, int64_t account_id,
			    const char *prefix, size_t prefix_len)
{
	if (account_id <= 0)
		return -1;
	return rcpt_add(d, NULL, account_id, prefix, prefix_len);
}

int gn_delivery_add_account_rcpt(struct gn_delivery *d, int64_t account_id,
				 const struct gn_addr *rcpt, const char *prefix,
				 size_t prefix_len)
{
	if (account_id <= 0 || rcpt == NULL)
		return -1;
	return rcpt_add(d, rcpt, account_id, prefix, prefix_len);
}

int gn_delivery_set_prefix(struct gn_delivery *d, size_t i, const char *prefix,
			   size_t prefix_len)
{
	/* Not once the run began: the copies may be built already. */
	if (d == NULL || d->ran || i >= d->n_rcpts)
		return -1;
	struct rcpt *r = &d->rcpts[i];
	r->prefix = NULL;
	r->prefix_len = 0;
	if (prefix != NULL && prefix_len > 0) {
		char *p = gn_pool_alloc(d->pool, prefix_len + 1);
		memcpy(p, prefix, prefix_len);
		p[prefix_len] = '\0';
		r->prefix = p;
		r->prefix_len = prefix_len;
	}
	return 0;
}

int gn_delivery_set_auth(struct gn_delivery *d, const struct gn_store_message_auth *auth)
{
	if (d == NULL || d->ran)
		return -1;
	if (auth == NULL) {
		d->auth = NULL;
		return 0;
	}
	d->auth = gn_store_message_auth_copy(d->pool, auth);
	return d->auth != NULL ? 0 : -1;
}

int gn_delivery_set_remote_ip(struct gn_delivery *d, const char *ip)
{
	if (d == NULL || d->ran || (ip != NULL && strlen(ip) > 45))
		return -1;
	d->remote_ip = ip != NULL ? gn_pool_strdup(d->pool, ip) : NULL;
	return 0;
}

void gn_delivery_set_mailbox_default(struct gn_delivery *d, const char *mailbox,
				     unsigned flags)
{
	d->mailbox_default = gn_pool_strdup(d->pool, mailbox != NULL ? mailbox : "Inbox");
	d->mailbox_fixed = (flags & GN_DELIVERY_FIXED_MAILBOX) != 0;
	for (size_t i = 0; i < d->n_targets; i++)
		if (!d->targets[i].mailbox_done)
			d->targets[i].mailbox = d->mailbox_default;
}

void gn_delivery_set_flags(struct gn_delivery *d, unsigned flags,
			   const char *const *keywords, size_t n_keywords)
{
	d->flags = flags & GN_STORE_FLAGS_ALL;
	d->keywords = n_keywords > 0 ? gn_pool_alloc(d->pool, n_keywords * sizeof(char *)) : NULL;
	for (size_t i = 0; i < n_keywords; i++)
		d->keywords[i] = gn_pool_strdup(d->pool, keywords[i]);
	d->n_keywords = n_keywords;
}

void gn_delivery_set_internal_date(struct gn_delivery *d, time_t date)
{
	d->internal_date = date;
}

/* ---- the body ---- */

int gn_delivery_write(struct gn_delivery *d, const void *data, size_t len)
{
	if (d->too_big)
		return -1;
	if (d->ran || len == 0)
		return d->store_failed ? -1 : 0;
	if (d->limits.max_size > 0 && d->size + len > d->limits.max_size) {
		/* Stop storing: the chunks written so far go with the writer. */
		d->too_big = true;
		gn_store_blob_writer_free(&d->blob);
		gn_mime_parser_free(&d->parser);
		return -1;
	}
	d->size += len;
	if (d->store_failed)
		return -1;
	if (d->parser == NULL)
		d->parser = gn_mime_parser_new(NULL);
	gn_mime_parser_feed(d->parser, data, len);
	if (d->blob == NULL)
		d->blob = gn_store_blob_writer_new();
	const char *error;
	if (gn_store_blob_write(d->blob, data, len, &error) < 0) {
		gn_log(GN_LOG_WARN, "deliver", "event=blob_write_failed source=%s error=%s",
		       d->source, gn_log_quote(0, error));
		d->store_failed = true;
		gn_store_blob_writer_free(&d->blob);
		return -1;
	}
	return 0;
}

/* ---- results ---- */

static void target_fail(struct gn_delivery *d, size_t ti, enum gn_hook_result r,
			const struct gn_hook_reply *reply, int def_code,
			const char *def_enhanced, const char *def_text)
{
	struct target *t = &d->targets[ti];
	bool temp = r == GN_HOOK_TEMPFAIL || r == GN_HOOK_DISCONNECT;
	int code = reply != NULL ? reply->code : 0;
	/* A reply whose class contradicts the result is not used. */
	if (code != 0 && ((temp && code / 100 != 4) || (!temp && code / 100 != 5)))
		code = 0;
	if (code != 0) {
		t->code = code;
		t->enhanced = reply->enhanced != NULL ? gn_pool_strdup(d->pool, reply->enhanced)
			: (temp ? "4.0.0" : "5.0.0");
		t->text = reply->text != NULL ? gn_pool_strdup(d->pool, reply->text)
			: (temp ? "temporary failure" : "rejected");
	} else if (temp) {
		t->code = 451;
		t->enhanced = "4.3.0";
		t->text = "temporary failure, try again later";
	} else {
		t->code = def_code;
		t->enhanced = def_enhanced;
		t->text = def_text;
	}
	t->state = T_FAILED;
	/* Targets this one had expanded into never count. */
	for (size_t i = ti + 1; i < d->n_targets; i++)
		if (d->targets[i].parent == ti)
			d->targets[i].state = T_DROPPED;
}

static void target_fail_code(struct gn_delivery *d, size_t ti, int code,
			     const char *enhanced, const char *text)
{
	struct gn_hook_reply reply = { code, enhanced, text, NULL };
	target_fail(d, ti, code / 100 == 4 ? GN_HOOK_TEMPFAIL : GN_HOOK_REJECT, &reply,
		    code, enhanced, text);
}

static size_t count_ok(const struct gn_delivery *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n_targets; i++)
		if (d->targets[i].state == T_OK)
			n++;
	return n;
}

/* The recipients' results from their targets. */
static void results_compute(struct gn_delivery *d)
{
	for (size_t i = 0; i < d->n_rcpts; i++) {
		struct rcpt *r = &d->rcpts[i];
		if (r->over_limit)
			continue;
		const struct target *ok_t = NULL, *temp_t = NULL, *perm_t = NULL;
		bool undecided = false, skipped = false;
		for (size_t j = 0; j < d->n_targets; j++) {
			const struct target *t = &d->targets[j];
			if (t->rcpt != i)
				continue;
			switch (t->state) {
			case T_NEW:
			case T_RESOLVED:
				undecided = true;
				break;
			case T_OK:
			case T_STORED:
				if (ok_t == NULL)
					ok_t = t;
				break;
			case T_FAILED:
				if (t->code / 100 == 4 && temp_t == NULL)
					temp_t = t;
				if (t->code / 100 != 4 && perm_t == NULL)
					perm_t = t;
				break;
			case T_SKIPPED:
				skipped = true;
				break;
			case T_EXPANDED:
			case T_DROPPED:
				break;
			}
		}
		struct gn_delivery_result *res = &r->result;
		memset(res, 0, sizeof(*res));
		if (ok_t != NULL) {
			res->status = GN_DELIVERY_ACCEPTED;
			res->code = 250;
			res->enhanced = d->stage >= STAGE_STORE ? "2.0.0" : "2.1.5";
			res->text = d->stage >= STAGE_STORE ? "delivered" : "recipient ok";
			res->account_id = ok_t->account_id;
			if (ok_t->state == T_STORED) {
				res->mailbox_id = ok_t->mailbox_id;
				res->uid = ok_t->uid;
			}
		} else if (undecided) {
			res->status = GN_DELIVERY_UNDECIDED;
		} else if (temp_t == NULL && perm_t == NULL && skipped) {
			/* Every target left out on purpose (an alias's only
			 * member sent it): nothing failed, nothing to store. */
			res->status = GN_DELIVERY_ACCEPTED;
			res->code = 250;
			res->enhanced = "2.0.0";
			res->text = "delivered";
		} else if (temp_t != NULL || perm_t != NULL) {
			const struct target *t = temp_t != NULL ? temp_t : perm_t;
			res->status = temp_t != NULL ? GN_DELIVERY_TEMPFAIL : GN_DELIVERY_REJECTED;
			res->code = t->code;
			res->enhanced = t->enhanced;
			res->text = t->text;
			res->account_id = t->account_id;
		} else {
			/* Only expansions that all went nowhere. */
			res->status = GN_DELIVERY_REJECTED;
			res->code = 550;
			res->enhanced = "5.1.1";
			res->text = "no deliverable address";
		}
	}
}

size_t gn_delivery_recipient_count(const struct gn_delivery *d)
{
	return d->n_rcpts;
}

const struct gn_delivery_result *gn_delivery_result(const struct gn_delivery *d, size_t i)
{
	return i < d->n_rcpts ? &d->rcpts[i].result : NULL;
}

const struct gn_addr *gn_delivery_recipient(const struct gn_delivery *d, size_t i)
{
	return i < d->n_rcpts ? d->rcpts[i].addr : NULL;
}

/* ---- for hooks ---- */

const char *gn_delivery_source(const struct gn_delivery *d)
{
	return d->source;
}

const char *gn_delivery_remote_ip(const struct gn_delivery *d)
{
	return d->remote_ip;
}

const struct gn_addr *gn_delivery_sender(const struct gn_delivery *d)
{
	return d->sender;
}

uint64_t gn_delivery_size(const struct gn_delivery *d)
{
	return d->size;
}

const struct gn_mime_message *gn_delivery_message(const struct gn_delivery *d)
{
	return d->mime;
}

static struct target *current(const struct gn_delivery *d)
{
	return d->cur < d->n_targets ? &d->targets[d->cur] : NULL;
}

const struct gn_addr *gn_delivery_current(const struct gn_delivery *d)
{
	const struct target *t = current(d);
	return t != NULL ? t->addr : NULL;
}

size_t gn_delivery_current_index(const struct gn_delivery *d)
{
	const struct target *t = current(d);
	return t != NULL ? t->rcpt : 0;
}

unsigned gn_delivery_current_depth(const struct gn_delivery *d)
{
	const struct target *t = current(d);
	return t != NULL ? t->depth : 0;
}

int64_t gn_delivery_current_account(const struct gn_delivery *d)
{
	const struct target *t = current(d);
	return t != NULL ? t->account_id : 0;
}

const char *gn_delivery_current_mailbox(const struct gn_delivery *d)
{
	const struct target *t = current(d);
	return t != NULL ? t->mailbox : NULL;
}

int64_t gn_delivery_current_mailbox_id(const struct gn_delivery *d)
{
	const struct target *t = current(d);
	return t != NULL && t->state == T_STORED ? t->mailbox_id : 0;
}

uint32_t gn_delivery_current_uid(const struct gn_delivery *d)
{
	struct target *t = current(d);
	if (t == NULL || t->state != T_STORED)
		return 0;
	struct target *o = &d->targets[t->copy_owner];
	if (o->uid == 0 && o->msg_id != 0 && !gn_db_in_transaction()) {
		/* Another process is settling it: wait for that one. */
		const char *error = NULL;
		uint32_t uid = 0;
		if (gn_store_settle(o->account_id, true, &error) < 0 ||
		    gn_store_message_lookup_uid(o->account_id, o->msg_id, &uid, &error) < 0)
			gn_log(GN_LOG_WARN, "deliver", "event=uid_unknown source=%s error=%s",
			       d->source, gn_log_quote(0, error != NULL ? error : "?"));
		o->uid = uid;
	}
	t->uid = o->uid;
	return t->uid;
}

uint64_t gn_delivery_current_store_size(const struct gn_delivery *d)
{
	return d->stage == STAGE_STORE && current(d) != NULL ? d->store_bytes : 0;
}

uint64_t gn_delivery_current_store_count(const struct gn_delivery *d)
{
	return d->stage == STAGE_STORE && current(d) != NULL ? d->store_count : 0;
}

static bool in_chain(const struct gn_delivery *d, enum stage stage, bool resolving)
{
	const struct target *t = current(d);
	if (t == NULL || !d->waiting || d->stage != stage)
		return false;
	if (stage == STAGE_RESOLVE)
		return resolving ? t->state == T_NEW : true;
	return true;
}

int gn_delivery_set_account(struct gn_delivery *d, int64_t account_id)
{
	if (account_id <= 0 || !in_chain(d, STAGE_RESOLVE, true))
		return -1;
	current(d)->account_id = account_id;
	return 0;
}

int gn_delivery_expand(struct gn_delivery *d, const struct gn_addr *const *addrs,
		       size_t n, const char **error_r)
{
	const char *dummy;
	if (error_r == NULL)
		error_r = &dummy;
	if (!in_chain(d, STAGE_RESOLVE, true)) {
		*error_r = "gn_delivery_expand: only in deliver.resolve";
		return -1;
	}
	if (n == 0 || addrs == NULL) {
		*error_r = "gn_delivery_expand: no addresses";
		return -1;
	}
	size_t ti = d->cur;
	unsigned depth = d->targets[ti].depth + 1;
	if (depth > d->limits.max_expansion_depth) {
		*error_r = "alias expansion too deep";
		return -1;
	}
	if (d->expanded + n > d->limits.max_expansion_count) {
		*error_r = "alias expansion gives too many addresses";
		return -1;
	}
	d->expanded += (unsigned)n;
	size_t rcpt = d->targets[ti].rcpt;
	for (size_t i = 0; i < n; i++)
		target_add(d, rcpt, ti, depth, addr_copy(d->pool, addrs[i]), 0);
	d->targets[ti].expanding = true;
	return 0;
}

int gn_delivery_set_mailbox(struct gn_delivery *d, const char *mailbox)
{
	struct target *t = current(d);
	if (t == NULL || mailbox == NULL || !d->waiting ||
	    (d->stage != STAGE_RESOLVE && d->stage != STAGE_MAILBOX))
		return -1;
	t->mailbox = gn_pool_strdup(d->pool, mailbox);
	return 0;
}

int gn_delivery_skip(struct gn_delivery *d)
{
	if (!in_chain(d, STAGE_MAILBOX, false) || current(d)->state != T_OK)
		return -1;
	current(d)->state = T_SKIPPED;
	return 0;
}

/* ---- the machine ---- */

static void drive(struct gn_delivery *d);

/* Starts point's chain on target ti; on_done records the outcome. */
static void chain_start(struct gn_delivery *d, const char *point, size_t ti,
			gn_hook_done_fn *on_done)
{
	d->cur = ti;
	d->waiting = true;
	struct gn_hook_call *call = gn_hook_run(gn_hook_point_find(point), d, on_done, d);
	if (d->waiting)
		d->call = call;
}

static void chain_finished(struct gn_delivery *d)
{
	d->waiting = false;
	d->call = NULL;
	if (!d->driving)
		drive(d);
}

static void on_resolved(enum gn_hook_result r, const struct gn_hook_reply *reply, void *data)
{
	struct gn_delivery *d = data;
	size_t ti = d->cur;
	struct target *t = &d->targets[ti];
	bool expanded = t->expanding;
	t->expanding = false;
	if (r == GN_HOOK_REJECT) {
		target_fail(d, ti, r, reply, 550, "5.1.1", "no such user here");
	} else if (r == GN_HOOK_TEMPFAIL || r == GN_HOOK_DISCONNECT) {
		target_fail(d, ti, r, reply, 451, "4.3.0", "temporary failure, try again later");
	} else if (expanded) {
		t->state = T_EXPANDED;
	} else if (t->account_id != 0) {
		t->state = T_RESOLVED;
	} else {
		/* The core's own resolution: the store's address lookup,
		 * catchall separators included. */
		const char *error;
		int64_t account = 0;
		int found = gn_store_address_lookup(d->pool, t->addr, &account, NULL, &error);
		if (found > 0) {
			t->account_id = account;
			t->state = T_RESOLVED;
		} else if (found == 0) {
			/* RFC 3463 5.1.1: bad destination mailbox address. */
			target_fail_code(d, ti, 550, "5.1.1", "no such user here");
		} else {
			gn_log(GN_LOG_WARN, "deliver", "event=lookup_failed source=%s error=%s",
			       d->source, gn_log_quote(0, error));
			target_fail_code(d, ti, 451, "4.3.0", "temporary failure, try again later");
		}
	}
	chain_finished(d);
}

static void on_checked(enum gn_hook_result r, const struct gn_hook_reply *reply, void *data)
{
	struct gn_delivery *d = data;
	size_t ti = d->cur;
	if (r == GN_HOOK_REJECT)
		target_fail(d, ti, r, reply, 550, "5.7.1", "delivery not authorized");
	else if (r == GN_HOOK_TEMPFAIL || r == GN_HOOK_DISCONNECT)
		target_fail(d, ti, r, reply, 451, "4.3.0", "temporary failure, try again later");
	else
		d->targets[ti].state = T_OK;
	chain_finished(d);
}

static void on_mailbox(enum gn_hook_result r, const struct gn_hook_reply *reply, void *data)
{
	struct gn_delivery *d = data;
	size_t ti = d->cur;
	d->targets[ti].mailbox_done = true;
	if (r == GN_HOOK_REJECT)
		target_fail(d, ti, r, reply, 550, "5.7.1", "delivery not authorized");
	else if (r == GN_HOOK_TEMPFAIL || r == GN_HOOK_DISCONNECT)
		target_fail(d, ti, r, reply, 451, "4.3.0", "temporary failure, try again later");
	chain_finished(d);
}

static void on_after(enum gn_hook_result r, const struct gn_hook_reply *reply, void *data)
{
	(void)r;
	(void)reply;
	chain_finished(data);
}

/* Fails every target still on its way with code. */
static void fail_accepted(struct gn_delivery *d, int code, const char *enhanced,
			  const char *text)
{
	for (size_t i = 0; i < d->n_targets; i++)
		if (d->targets[i].state == T_OK || d->targets[i].state == T_RESOLVED ||
		    d->targets[i].state == T_NEW)
			target_fail_code(d, i, code, enhanced, text);
}

/* The mailbox id of target t's mailbox: the named one, else Inbox.
 * Returns 0 or -1. */
static int mailbox_resolve(struct gn_delivery *d, struct target *t, const char **error_r)
{
	/* Only the id: gn_store_mailbox_find() would settle (and wait for
	 * other deliveries' settles) to report a status nobody reads here. */
	int r = gn_store_mailbox_lookup_id(t->account_id, t->mailbox, &t->mailbox_id, error_r);
	if (r < 0)
		return -1;
	if (r > 0)
		return 0;
	gn_log(GN_LOG_INFO, "deliver", "event=mailbox_missing account=%lld mailbox=%s fallback=Inbox",
	       (long long)t->account_id, gn_log_quote(0, t->mailbox));
	struct gn_store_mailbox *mb = NULL;
	if (gn_store_mailbox_create(d->pool, t->account_id, "Inbox", GN_STORE_SPECIAL_NONE,
				    &mb, error_r) < 0)
		return -1;
	t->mailbox_id = mb->id;
	return 0;
}

/* Target i's mailbox, and the copy it shares (or its own).  0 or -1. */
static int copy_plan_one(struct gn_delivery *d, size_t i, const char **error_r)
{
	struct target *t = &d->targets[i];
	if (mailbox_resolve(d, t, error_r) < 0)
		return -1;
	t->copy_owner = i;
	for (size_t c = 0; c < d->n_copies; c++) {
		const struct target *o = &d->targets[d->copies[c]];
		if (o->account_id == t->account_id && o->mailbox_id == t->mailbox_id) {
			t->copy_owner = d->copies[c];
			break;
		}
	}
	if (t->copy_owner == i)
		d->copies[d->n_copies++] = i;
	return 0;
}

/* The accepted targets' mailboxes, and the distinct copies among them
 * (one message per account and mailbox).  Recipients as added come first,
 * then the addresses of expansions: a copy that an explicit recipient and
 * an alias's member share is the explicit recipient's (its prefix), as
 * mox orders them (mox.md 5).  Returns the number of accepted targets, or
 * -1. */
static int copies_plan(struct gn_delivery *d, const char **error_r)
{
	size_t n_ok = 0;
	for (size_t i = 0; i < d->n_targets; i++)
		if (d->targets[i].state == T_OK)
			n_ok++;
	d->n_copies = 0;
	if (n_ok == 0)
		return 0;
	d->copies = gn_realloc(d->copies, n_ok * sizeof(*d->copies));
	for (size_t i = 0; i < d->n_targets; i++)
		if (d->targets[i].state == T_OK && d->targets[i].depth == 0 &&
		    copy_plan_one(d, i, error_r) < 0)
			return -1;
	for (size_t i = 0; i < d->n_targets; i++)
		if (d->targets[i].state == T_OK && d->targets[i].depth > 0 &&
		    copy_plan_one(d, i, error_r) < 0)
			return -1;
	return (int)n_ok;
}

/* The prefix of an expanded address's copy: the recipient's, with a
 * Delivered-To field for the address put above its first one (RFC 9228:
 * each step that resolves an address to another adds its own, the newest
 * on top), so that each member of an alias sees where its copy went and
 * through which alias.  A prefix without Delivered-To is kept as it is:
 * its writer did not want one. */
static const char *expanded_prefix(struct gn_delivery *d, const struct rcpt *r,
				   const struct gn_addr *addr, size_t *len_r)
{
	static const char field[] = "Delivered-To:";
	const char *p = r->prefix;
	size_t n = r->prefix_len, at = SIZE_MAX;
	for (size_t i = 0; i < n && at == SIZE_MAX; ) {
		if (n - i >= sizeof(field) - 1 && strncasecmp(p + i, field, sizeof(field) - 1) == 0)
			at = i;
		const char *nl = memchr(p + i, '\n', n - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - p) + 1;
	}
	if (at == SIZE_MAX) {
		*len_r = n;
		return p;
	}
	const char *line = gn_pool_printf(d->pool, "Delivered-To: %s\r\n",
					  gn_addr_to_string(d->pool, addr));
	size_t ll = strlen(line);
	char *out = gn_pool_alloc(d->pool, n + ll + 1);
	memcpy(out, p, at);
	memcpy(out + at, line, ll);
	memcpy(out + at + ll, p + at, n - at);
	out[n + ll] = '\0';
	*len_r = n + ll;
	return out;
}

/* Inside the transaction: the blob, then each copy (numbered in this
 * transaction when nobody else is settling the account, so a lone
 * delivery commits once; else pending, left to the holder of the settle
 * lock, never waiting), then a token of its own, for when the COMMIT's
 * outcome is unknown.  0 or -1. */
static int store_rows(struct gn_delivery *d, const char **error_r)
{
	if (d->blob == NULL)
		d->blob = gn_store_blob_writer_new();
	struct gn_store_message_new m;
	memset(&m, 0, sizeof(m));
	m.size = sizeof(m);
	if (store_blob_finish(d->blob, d->mime_json, m.blob_hash, NULL, error_r) < 0)
		return -1;
	for (size_t c = 0; c < d->n_copies; c++) {
		struct target *t = &d->targets[d->copies[c]];
		const struct rcpt *r = &d->rcpts[t->rcpt];
		m.account_id = t->account_id;
		m.mailbox_id = t->mailbox_id;
		m.prefix = r->prefix;
		m.prefix_len = r->prefix_len;
		if (t->depth > 0 && t->addr != NULL)
			m.prefix = expanded_prefix(d, r, t->addr, &m.prefix_len);
		m.flags = d->flags;
		m.keywords = d->keywords;
		m.n_keywords = d->n_keywords;
		m.internal_date = d->internal_date;
		m.mime = d->mime;
		m.auth = d->auth;
		t->uid = 0;
		if (gn_store_message_deliver(&m, &t->msg_id, &t->uid, error_r) < 0)
			return -1;
	}
	/* The token: 128 random bits, never used twice (a transaction id
	 * may be, after a crash that lost the WAL that used it). */
	unsigned char rnd[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0) {
		*error_r = "no random bytes for the delivery token";
		return -1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(d->token + 2 * i, 3, "%02x", rnd[i]);
	const char *p[1] = { gn_pool_printf(d->pool, "\\x%s", d->token) };
	return store_q_count("INSERT INTO gn_delivery_tokens (token) VALUES ($1)", 1, p, error_r) == 1
	       ? 0 : -1;
}

/* What a "deliver.store" chain said (its reply copied: it is only valid
 * during the done call). */
struct store_verdict {
	struct gn_delivery *d;
	enum gn_hook_result result;
	struct gn_hook_reply reply;
	bool done;
};

static void on_store_checked(enum gn_hook_result r, const struct gn_hook_reply *reply, void *data)
{
	struct store_verdict *v = data;
	v->result = r;
	v->done = true;
	if (reply != NULL) {
		v->reply.code = reply->code;
		v->reply.enhanced = reply->enhanced != NULL ? gn_pool_strdup(v->d->pool, reply->enhanced) : NULL;
		v->reply.text = reply->text != NULL ? gn_pool_strdup(v->d->pool, reply->text) : NULL;
		v->reply.module = reply->module != NULL ? gn_pool_strdup(v->d->pool, reply->module) : NULL;
	}
}

/* Step 4, inside the transaction and before anything is written:
 * "deliver.store" once per account that gets copies (quota: the check
 * that must see every other delivery's commit and hold its lock until
 * this one ends).  A refusal fails that account's targets and drops its
 * copies.  The chain must answer at once: one that pends is cancelled
 * and counts as a temporary failure (a transaction never waits on the
 * loop).  Accounts go in ascending id order. */
static int account_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void store_checks(struct gn_delivery *d)
{
	struct gn_hook_point *point = gn_hook_point_find(GN_DELIVER_STORE);
	/* The accounts in ascending id order: hooks that lock their rows
	 * (quota) then lock them in one order in every delivery, and two
	 * deliveries to the same accounts never deadlock. */
	int64_t *accounts = gn_pool_alloc(d->pool, (d->n_copies + 1) * sizeof(*accounts));
	size_t n_accounts = 0;
	for (size_t c = 0; c < d->n_copies; c++) {
		int64_t a = d->targets[d->copies[c]].account_id;
		bool seen = false;
		for (size_t k = 0; k < n_accounts && !seen; k++)
			seen = accounts[k] == a;
		if (!seen)
			accounts[n_accounts++] = a;
	}
	qsort(accounts, n_accounts, sizeof(*accounts), account_cmp);
	for (size_t ai = 0; ai < n_accounts; ai++) {
		int64_t account = accounts[ai];
		size_t ti = SIZE_MAX;
		d->store_bytes = 0;
		d->store_count = 0;
		for (size_t k = 0; k < d->n_copies; k++) {
			const struct target *o = &d->targets[d->copies[k]];
			if (o->account_id != account || o->state != T_OK)
				continue;
			if (ti == SIZE_MAX)
				ti = d->copies[k];
			d->store_bytes += d->size + d->rcpts[o->rcpt].prefix_len;
			d->store_count++;
		}
		if (ti == SIZE_MAX)
			continue;
		d->cur = ti;
		struct store_verdict v = { .d = d };
		struct gn_hook_call *call = gn_hook_run(point, d, on_store_checked, &v);
		if (!v.done) {
			gn_hook_cancel(call);
			gn_log(GN_LOG_ERROR, "deliver", "event=store_hook_pending source=%s account=%lld",
			       d->source, (long long)account);
			v.result = GN_HOOK_TEMPFAIL;
		}
		if (v.result != GN_HOOK_REJECT && v.result != GN_HOOK_TEMPFAIL &&
		    v.result != GN_HOOK_DISCONNECT)
			continue;
		for (size_t i = 0; i < d->n_targets; i++)
			if (d->targets[i].state == T_OK && d->targets[i].account_id == account)
				target_fail(d, i, v.result, &v.reply, 550, "5.7.1", "delivery not authorized");
	}
	size_t n = 0;
	for (size_t c = 0; c < d->n_copies; c++)
		if (d->targets[d->copies[c]].state == T_OK)
			d->copies[n++] = d->copies[c];
	d->n_copies = n;
	d->store_bytes = 0;
	d->store_count = 0;
}

/* The transaction committed: the accepted targets are stored. */
static void store_committed(struct gn_delivery *d, size_t n_ok)
{
	gn_store_blob_writer_free(&d->blob);
	for (size_t i = 0; i < d->n_targets; i++) {
		struct target *t = &d->targets[i];
		if (t->state != T_OK)
			continue;
		t->state = T_STORED;
		t->uid = d->targets[t->copy_owner].uid;
	}
	gn_log(GN_LOG_INFO, "deliver", "event=delivered source=%s size=%llu recipients=%zu copies=%zu",
	       d->source, (unsigned long long)d->size, n_ok, d->n_copies);
}

/* Nothing was stored: the sender retries. */
static void store_failed(struct gn_delivery *d, const char *error)
{
	gn_log(GN_LOG_WARN, "deliver", "event=store_failed source=%s temporary=%s error=%s",
	       d->source, gn_db_error_is_temporary() ? "yes" : "no",
	       gn_log_quote(0, error != NULL ? error : "?"));
	gn_store_blob_writer_free(&d->blob);
	d->n_copies = 0;
	fail_accepted(d, 451, "4.3.0", "temporary failure storing the message, try again later");
}

/* Step 4: one transaction for the blob and every copy.  Returns false
 * when the COMMIT's outcome is unknown (STAGE_UNKNOWN finds it out). */
static bool store(struct gn_delivery *d)
{
	const char *error = NULL;
	int n_ok = copies_plan(d, &error);
	if (n_ok == 0)
		return true;
	if (n_ok < 0 || gn_db_begin(&error) < 0) {
		store_failed(d, error);
		return true;
	}
	store_checks(d);
	if (d->n_copies == 0) {
		gn_db_rollback();
		return true;
	}
	n_ok = (int)count_ok(d);
	if (store_rows(d, &error) < 0) {
		gn_db_rollback();
		store_failed(d, error);
		return true;
	}
	if (gn_db_commit(&error) == 0) {
		store_committed(d, (size_t)n_ok);
		return true;
	}
	if (!db_commit_outcome_unknown()) {
		store_failed(d, error);
		return true;
	}
	gn_log(GN_LOG_WARN, "deliver", "event=commit_outcome_unknown source=%s token=%s error=%s",
	       d->source, d->token, gn_log_quote(0, error != NULL ? error : "?"));
	return false;
}

/* STAGE_UNKNOWN: whether the transaction committed, from its token.  The
 * probe inserts the token itself, marked as a probe: when the transaction
 * committed, its token is there and the insert does nothing; when it
 * aborted, the probe's row goes in (and the transaction can never commit
 * after it); while it is still in progress (its backend has not noticed
 * the broken connection yet), the insert waits for its end, a second at
 * most.  A probe row found there is an earlier probe's whose reply was
 * lost: the transaction had not committed then.  1 committed, 0 not, -1
 * unknown yet (error set). */
static int unknown_probe(struct gn_delivery *d, const char **error_r)
{
	const char *p[1] = { gn_pool_printf(d->pool, "\\x%s", d->token) };
	PGresult *res = db_query("WITH s AS (SELECT set_config('lock_timeout', '1000', true)), "
				 "i AS (INSERT INTO gn_delivery_tokens (token, probe) SELECT $1::bytea, true "
				 "FROM s ON CONFLICT (token) DO NOTHING RETURNING 1) "
				 "SELECT (SELECT count(*) FROM i), (SELECT probe FROM gn_delivery_tokens "
				 "WHERE token = $1::bytea)", 1, p, error_r);
	if (res == NULL)
		return -1;
	bool inserted = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	/* Not visible to this statement's snapshot (NULL): committed by the
	 * transaction we waited for, after the snapshot was taken. */
	bool earlier_probe = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return inserted || earlier_probe ? 0 : 1;
}

static void unknown_poll(void *data)
{
	struct gn_delivery *d = data;
	if (d->stage != STAGE_UNKNOWN)
		return;
	const char *error = NULL;
	int st = unknown_probe(d, &error);
	if (st < 0 && gn_now() < d->unknown_deadline)
		return;		/* no connection yet, or still in progress: ask again */
	gn_timer_free(&d->unknown_timer);
	/* Whatever the answer, the writer's pending row (if the transaction
	 * did not take it) is left to the clean-up. */
	store_blob_writer_abandon(&d->blob);
	if (st == 1) {
		gn_log(GN_LOG_INFO, "deliver", "event=commit_outcome_found source=%s token=%s committed=yes",
		       d->source, d->token);
		store_committed(d, count_ok(d));
	} else if (st == 0) {
		gn_log(GN_LOG_INFO, "deliver", "event=commit_outcome_found source=%s token=%s committed=no",
		       d->source, d->token);
		store_failed(d, "the connection broke during COMMIT, which did not complete");
	} else {
		gn_log(GN_LOG_ERROR, "deliver", "event=commit_outcome_lost source=%s token=%s error=%s",
		       d->source, d->token, gn_log_quote(0, error != NULL ? error : "?"));
		store_failed(d, "the outcome of COMMIT could not be found out");
	}
	d->waiting = false;
	d->stage = STAGE_STORE;		/* and on to what follows the store */
	d->store_done = true;
	drive(d);
}

/* After the commit: settles the accounts of the stored copies (without
 * waiting for another settle) and learns the UIDs. */
static void settle_after_commit(struct gn_delivery *d)
{
	const char *error = NULL;
	for (size_t c = 0; c < d->n_copies; c++) {
		int64_t acc = d->targets[d->copies[c]].account_id;
		bool seen = false;
		for (size_t e = 0; e < c && !seen; e++)
			seen = d->targets[d->copies[e]].account_id == acc;
		if (!seen && gn_store_settle(acc, false, &error) < 0)
			gn_log(GN_LOG_WARN, "deliver", "event=settle_failed source=%s account=%lld error=%s",
			       d->source, (long long)acc, gn_log_quote(0, error != NULL ? error : "?"));
	}
	for (size_t c = 0; c < d->n_copies; c++) {
		struct target *t = &d->targets[d->copies[c]];
		uint32_t uid = 0;
		if (t->uid == 0 && gn_store_message_lookup_uid(t->account_id, t->msg_id, &uid, &error) > 0)
			t->uid = uid;
	}
	for (size_t i = 0; i < d->n_targets; i++) {
		struct target *t = &d->targets[i];
		if (t->state == T_STORED)
			t->uid = d->targets[t->copy_owner].uid;
	}
	results_compute(d);
}

static void settle_turn(void *data)
{
	struct gn_delivery *d = data;
	if (d->stage != STAGE_SETTLE)
		return;
	settle_after_commit(d);
	d->waiting = false;
	d->stage = STAGE_AFTER;
	d->next = 0;
	drive(d);
}

/* Each stage's step returns false when the machine stops (waiting or
 * done), true to go on. */

/* Calls the caller's done once. */
static void call_done(struct gn_delivery *d)
{
	gn_delivery_done_fn *done = d->done;
	d->done = NULL;
	if (done != NULL)
		done(d, d->done_data);
}

/* The body is complete: its structure, and the failures it decides for
 * every accepted target (too big, a store failure while writing, a
 * structure past its bound). */
static void body_complete(struct gn_delivery *d)
{
	if (d->parser != NULL) {
		gn_mime_parser_finish(d->parser, &d->mime);
		gn_mime_parser_free(&d->parser);
	} else if (!d->too_big && d->mime == NULL) {
		d->mime = gn_mime_parse("", 0, NULL);
	}
	const char *why = NULL;
	if (d->too_big) {
		/* RFC 5321 4.5.3.1.10, RFC 3463 5.3.4. */
		fail_accepted(d, 552, "5.3.4", "message too big");
	} else if (d->store_failed) {
		fail_accepted(d, 451, "4.3.0", "temporary failure storing the message, try again later");
	} else if (count_ok(d) > 0 && store_mime_json(d->pool, d->mime, &d->mime_json, &why) < 0) {
		/* For good: the same message would fail the same way.
		 * RFC 3463 5.6.0: other or undefined media error. */
		gn_log(GN_LOG_INFO, "deliver", "event=refused source=%s error=%s",
		       d->source, gn_log_quote(0, why));
		fail_accepted(d, 554, "5.6.0", "message structure too complex (too many parts "
			      "or header fields)");
	}
}

static bool step_resolve(struct gn_delivery *d)
{
	while (d->next < d->n_targets) {
		size_t ti = d->next;
		struct target *t = &d->targets[ti];
		if (t->state == T_NEW) {
			chain_start(d, GN_DELIVER_RESOLVE, ti, on_resolved);
			return true;
		}
		if (t->state == T_RESOLVED) {
			chain_start(d, GN_DELIVER_CHECK, ti, on_checked);
			return true;
		}
		d->next++;
	}
	if (d->checking_only) {
		d->stage = STAGE_IDLE;
		d->checking_only = false;
		results_compute(d);
		call_done(d);
		return false;
	}
	body_complete(d);
	d->stage = STAGE_MAILBOX;
	d->next = 0;
	return true;
}

static bool step_mailbox(struct gn_delivery *d)
{
	while (!d->mailbox_fixed && d->next < d->n_targets) {
		size_t ti = d->next++;
		if (d->targets[ti].state == T_OK) {
			chain_start(d, GN_DELIVER_MAILBOX, ti, on_mailbox);
			return true;
		}
	}
	d->stage = STAGE_STORE;
	return true;
}

static bool step_store(struct gn_delivery *d)
{
	if (!d->store_done) {
		d->store_done = true;
		if (!store(d)) {
			d->stage = STAGE_UNKNOWN;
			d->waiting = true;
			d->unknown_deadline = gn_now() + UNKNOWN_TIMEOUT_MS / 1000.0;
			d->unknown_timer = gn_timer_new(UNKNOWN_POLL_MS, true, unknown_poll, d);
			return false;
		}
	}
	results_compute(d);
	d->stage = d->n_copies > 0 ? STAGE_SETTLE : STAGE_AFTER;
	d->next = 0;
	d->refs++;	/* the after chains' */
	call_done(d);
	return true;
}

static bool step_settle(struct gn_delivery *d)
{
	/* On the next turn of the loop: the replies that done queued are
	 * written before (the loop flushes them first). */
	d->waiting = true;
	if (d->settle_timer == NULL)
		d->settle_timer = gn_timer_new(0, false, settle_turn, d);
	else
		gn_timer_reset(d->settle_timer);
	return false;
}

static bool step_after(struct gn_delivery *d)
{
	if (d->next < d->n_copies) {
		size_t ti = d->copies[d->next++];
		chain_start(d, GN_DELIVER_AFTER, ti, on_after);
		return true;
	}
	d->stage = STAGE_DONE;
	delivery_unref(d);	/* the after chains' (drive() holds one) */
	return false;
}

static bool step(struct gn_delivery *d)
{
	switch (d->stage) {
	case STAGE_RESOLVE: return step_resolve(d);
	case STAGE_MAILBOX: return step_mailbox(d);
	case STAGE_STORE: return step_store(d);
	case STAGE_SETTLE: return step_settle(d);
	case STAGE_AFTER: return step_after(d);
	case STAGE_UNKNOWN:	/* unknown_poll() drives on */
	case STAGE_IDLE:
	case STAGE_DONE:
		return false;
	}
	return false;
}

/* Runs steps until a chain pends or the machine stops.  Holds a reference
 * meanwhile: a done callback may free the delivery. */
static void drive(struct gn_delivery *d)
{
	d->refs++;
	d->driving = true;
	while (!d->waiting && step(d))
		;
	d->driving = false;
	delivery_unref(d);
}

int gn_delivery_check(struct gn_delivery *d, gn_delivery_done_fn *done, void *data)
{
	if (d->stage != STAGE_IDLE || d->ran)
		return -1;
	d->done = done;
	d->done_data = data;
	d->checking_only = true;
	d->stage = STAGE_RESOLVE;
	drive(d);
	return 0;
}

int gn_delivery_run(struct gn_delivery *d, gn_delivery_done_fn *done, void *data)
{
	if (d->stage != STAGE_IDLE || d->ran)
		return -1;
	d->ran = true;
	d->done = done;
	d->done_data = data;
	d->checking_only = false;
	d->stage = STAGE_RESOLVE;
	d->next = 0;
	drive(d);
	return 0;
}

static void sync_done(struct gn_delivery *d, void *data)
{
	(void)d;
	*(bool *)data = true;
}

int gn_delivery_run_sync(struct gn_delivery *d)
{
	bool done = false;
	d->refs++;	/* ours, so that d outlives the after chains */
	if (gn_delivery_run(d, sync_done, &done) < 0) {
		d->refs--;
		return -1;
	}
	while (d->stage != STAGE_DONE)
		ev_run(core_loop, EVRUN_ONCE);
	int n = 0;
	for (size_t i = 0; i < d->n_rcpts; i++)
		if (d->rcpts[i].result.status == GN_DELIVERY_ACCEPTED)
			n++;
	delivery_unref(d);
	return n;
}

/* ---- clean-up ---- */

int store_delivery_tokens_cleanup(const char **error_r)
{
	/* A day: far longer than any delivery waits for its answer. */
	int64_t c = store_q_count("DELETE FROM gn_delivery_tokens WHERE created_at < now() - "
				  "interval '1 day'", 0, NULL, error_r);
	return c < 0 ? -1 : (int)c;
}

/* ---- register ---- */

int deliver_register(void)
{
	static const struct {
		const char *name;
		unsigned long timeout_ms;
		enum gn_hook_result def;
	} points[] = {
		/* A resolver that does not answer: the sender retries later
		 * rather than getting a bounce for an alias. */
		{ GN_DELIVER_RESOLVE, RESOLVE_TIMEOUT_MS, GN_HOOK_TEMPFAIL },
		{ GN_DELIVER_CHECK, CHECK_TIMEOUT_MS, GN_HOOK_CONTINUE },
		{ GN_DELIVER_MAILBOX, MAILBOX_TIMEOUT_MS, GN_HOOK_CONTINUE },
		{ GN_DELIVER_AFTER, AFTER_TIMEOUT_MS, GN_HOOK_CONTINUE },
		/* Inside the transaction: a hook that misbehaves refuses
		 * (fail closed; the sender retries). */
		{ GN_DELIVER_STORE, STORE_TIMEOUT_MS, GN_HOOK_TEMPFAIL },
	};
	/* The store's other policy point, registered with the pipeline's
	 * for the same commands' sake (they need the modules). */
	int ret = store_send_as_register();
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		const char *error;
		if (gn_hook_point_define(modules_core_ctx(), points[i].name, points[i].timeout_ms,
					 points[i].def, &error) < 0) {
			conf_error("%s", error);
			ret = -1;
		}
	}
	return ret;
}
