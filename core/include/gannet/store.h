/*
 * gannet/store.h: domains, accounts, addresses, mailboxes and messages.
 *
 * The data model every protocol shares, in PostgreSQL (core/store/store.c,
 * schema in core/schema/002_accounts.sql and 003_mailstore.sql).
 *
 * Names and text:
 *   - domains are stored as lower-case A-labels with the U-labels kept for
 *     display (gn_addr_parse_domain());
 *   - addresses are normalised with gannet/addr.h; the lookup key of a
 *     localpart is its gn_addr_fold() form, so "John@x", "john@x" and the NFD
 *     and Punycode spellings of one address find the same account;
 *   - mailbox names are UTF-8 in Unicode NFC (mox refuses non-NFC names; so
 *     do we), "/" separates hierarchy levels, and "Inbox" as first level is
 *     case-insensitive (RFC 9051 5.1): "INBOX", "inbox/x" become "Inbox",
 *     "Inbox/x".
 *
 * IMAP state (RFC 9051, RFC 7162): each mailbox has UIDVALIDITY, UIDNEXT and
 * HIGHESTMODSEQ; each message a UID and a modseq.  Modseqs come from one
 * counter per account (gn_store_account_modseq()): every change takes the
 * next value, so they increase across all mailboxes of an account; one
 * operation on several messages gives them all the same new modseq.
 * Expunged UIDs are kept with the modseq of their expunge (QRESYNC).  The
 * per-mailbox counters (messages, unseen, deleted, size, deleted size) and
 * the account's total size are updated in the same transaction as every
 * change, so they are always exact.
 *
 * Deliveries are pending, then settled (core/store/mailbox.c has the
 * design).  gn_store_message_deliver() stores a message durably but, when
 * another process is settling the account, without UID or modseq
 * (pending; gn_store_message_add_pending() always so), and takes no lock
 * that other deliveries to the account wait for: deliveries to one
 * mailbox commit in parallel.  A
 * pending message is in no mailbox's IMAP state: no read function returns
 * it and no counter (mailbox or account total_size) includes it.
 * gn_store_settle() then gives all pending messages of the account their
 * UIDs (in the order of their ids, each mailbox from its UIDNEXT) and one
 * new modseq, updates the counters and notifies, in one transaction under
 * the account's settle lock, so one settle covers any number of
 * deliveries.  Settles of an account are serialised through their commit,
 * so UIDs and modseqs become visible in increasing order: a client that
 * saw UID n or UIDNEXT never later sees a new message below it.  The
 * delivering process settles right after its commit; readers settle
 * before they report status (gn_store_mailbox_find/get/find_special/list,
 * gn_store_message_list); the runner job "store-settle" settles whatever
 * is left (a process that died between its commit and its settle).
 *
 * Bodies: a message body is a blob, stored once by its SHA-256 however many
 * messages (recipients, copies) use it, in chunks of GN_STORE_CHUNK_SIZE
 * bytes, written and read piecewise so that no worker holds a whole large
 * message.  A message = a per-message prefix (header lines a protocol adds:
 * Received, Return-Path, Delivered-To; never a rewrite of the body) + the
 * blob.  Blobs carry a reference count: removing the last message that uses
 * one removes it in the same transaction.
 *
 * Transactions: every function that writes takes part in the caller's
 * transaction when one is open (gn_db_begin() ... gn_db_commit()), and then
 * an error leaves that transaction aborted: the caller rolls back.  When no
 * transaction is open, the function opens its own and commits before it
 * returns (so it is atomic either way).  Read functions never open one.
 *
 * Notifications: each change to a mailbox or its messages sends
 *   NOTIFY gn_mailbox '<account_id> <mailbox_id> <modseq>'
 * in the same transaction (PostgreSQL delivers it at COMMIT, and never for
 * a rolled-back transaction).  Workers LISTEN (gn_db_listen()) and wake
 * their IDLE sessions.
 *
 * Objects: domains, accounts, addresses, mailboxes and messages come back
 * as opaque handles read through accessors (gn_store_mailbox_uidnext() ...),
 * and lists as arrays of handle pointers, never as arrays of structs: the
 * core may add to what it keeps about each without changing the size of
 * anything a module compiled in.  Accessors take a handle that is not NULL
 * and never fail.  The one struct a module fills, gn_store_message_new,
 * starts with its own size.
 *
 * Memory: results come from the struct gn_pool the caller passes and live
 * as long as it.  Errors are static strings or from the pool, valid until
 * the next store or database call; they name the bad argument ("unknown
 * domain: example.org").  A database failure comes back as -1 with the
 * database's message, and gn_db_error_is_temporary() tells whether to ask
 * the peer to retry.
 *
 * Processes: any process with a database connection (workers, runner, CLI)
 * from the start phase on; never from the master.
 */
#ifndef GANNET_STORE_H
#define GANNET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/mem.h>
#include <gannet/addr.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The channel of change notifications (payload above). */
#define GN_STORE_NOTIFY_CHANNEL "gn_mailbox"

struct gn_mime_message;	/* gannet/mime.h */

/* ---- domains ---- */

struct gn_store_domain;		/* opaque */

int64_t gn_store_domain_id(const struct gn_store_domain *domain);
/* A-labels, lower case. */
const char *gn_store_domain_name(const struct gn_store_domain *domain);
/* U-labels, for display. */
const char *gn_store_domain_name_utf8(const struct gn_store_domain *domain);
/* Each code point is a catchall separator ("+" or "+-"); "" none. */
const char *gn_store_domain_catchall_separators(const struct gn_store_domain *domain);

/* Adds a domain.  name is parsed with gn_addr_parse_domain() (Unicode or
 * Punycode); catchall_separators may be NULL or "" (none), else each of its
 * code points separates a tag (no letters, digits, "@", "." or white space).
 * Returns 0 with *domain_r (may be NULL) from pool, or -1 with *error_r:
 * invalid name, invalid separator, or "domain exists". */
int gn_store_domain_add(struct gn_pool *pool, const char *name,
			const char *catchall_separators,
			struct gn_store_domain **domain_r, const char **error_r);
/* Removes a domain by name (any spelling).  Refused (-1) while addresses
 * use it.  Returns 1 removed, 0 no such domain, -1 error. */
int gn_store_domain_remove(const char *name, const char **error_r);
/* Sets the catchall separators (same rules as add).  1 / 0 unknown / -1. */
int gn_store_domain_set_catchall(const char *name, const char *separators,
				 const char **error_r);
/* All domains sorted by name: 0 with *list_r, an array of *count_r
 * handles (from pool), or -1. */
int gn_store_domain_list(struct gn_pool *pool, struct gn_store_domain ***list_r,
			 size_t *count_r, const char **error_r);
/* A domain by name (any spelling).  1 found (*domain_r), 0 not found or
 * not a valid domain name, -1 database error. */
int gn_store_domain_find(struct gn_pool *pool, const char *name,
			 struct gn_store_domain **domain_r, const char **error_r);

/* ---- DKIM keys (schema 011_dkim.sql) ---- */

struct gn_dkim_signer;	/* gannet/dkim.h */

/* Signs a message with every enabled DKIM key of domain (the From
 * domain, any spelling; keys are added with `gannet config dkim add`):
 * appends one DKIM-Signature field per key, in selector order, to out.
 * signer has the whole message and gn_dkim_signer_finish() succeeded.
 * Returns the number of signatures (0: the domain is not hosted or has no
 * enabled key), or -1 with *error_r (a database error, a key that cannot
 * be used, signing failed). */
int gn_store_dkim_sign(struct gn_dkim_signer *signer, const char *domain, time_t now,
		       struct gn_buf *out, const char **error_r);

/* ---- FromID login addresses (schema 013_fromid.sql) ---- */

/* A login listed for its account sends with a unique envelope sender per
 * recipient, local<sep><fromid>@domain (gannet/queue.h; mox.md 2.5).  An
 * address is kept in folded canonical form; it must reach the account
 * (itself or through the catchall) and its domain must have catchall
 * separators.  Since ABI 1.1.
 * add: 0, or -1: invalid address, "unknown account: A", "unknown domain:
 * D", no catchall separator, not an address of the account, already
 * listed, database error. */
int gn_store_fromid_login_add(const char *account, const char *address, const char **error_r);
/* 1 removed, 0 not listed, -1 error (unknown account, invalid address). */
int gn_store_fromid_login_remove(const char *account, const char *address, const char **error_r);
/* The account's list, sorted: 0 with *list_r (from pool) and *count_r, or -1. */
int gn_store_fromid_login_list(struct gn_pool *pool, int64_t account_id, const char ***list_r,
			       size_t *count_r, const char **error_r);
/* Whether login (as the client gave it) is listed for the account: 1, 0
 * (also when login is not an address), -1 database error. */
int gn_store_fromid_login_is(int64_t account_id, const char *login, const char **error_r);

/* ---- accounts ---- */

struct gn_store_account;	/* opaque */

int64_t gn_store_account_id(const struct gn_store_account *account);
const char *gn_store_account_name(const struct gn_store_account *account);
/* "" when none. */
const char *gn_store_account_full_name(const struct gn_store_account *account);
/* NULL: may log in; else the message a refused login gets. */
const char *gn_store_account_login_disabled(const struct gn_store_account *account);
/* The last modseq handed out. */
uint64_t gn_store_account_modseq(const struct gn_store_account *account);
/* Bytes of all its settled messages.  With the pending ones (what a quota
 * must count): this + gn_store_account_pending_size(), which sums the few
 * pending rows through a small partial index. */
uint64_t gn_store_account_total_size(const struct gn_store_account *account);

/* Account names: 1 to 255 bytes of valid UTF-8 in NFC, no control
 * characters, no white space at either end.  Returns 0 or -1. */
int gn_store_account_name_check(const char *name, const char **error_r);

/* Adds an account with its first address (which must be in a configured
 * domain and not yet used), full_name may be NULL.  Creates its Inbox and
 * the special-use mailboxes Sent, Drafts, Trash, Junk, Archive (RFC 6154
 * attributes), all subscribed.  No password: see gannet/auth.h.
 * Returns 0 with *account_r (may be NULL), or -1: invalid name or address,
 * "account exists", "unknown domain: D", "address exists: A". */
int gn_store_account_add(struct gn_pool *pool, const char *name,
			 const char *address, const char *full_name,
			 struct gn_store_account **account_r,
			 const char **error_r);
/* Removes an account and everything of it: addresses, mailboxes,
 * messages (blob reference counts drop, unused blobs go), subscriptions.
 * Returns 1 removed, 0 unknown account, -1 error. */
int gn_store_account_remove(const char *name, const char **error_r);
/* All accounts sorted by name: 0 with *list_r, an array of *count_r
 * handles (from pool), or -1. */
int gn_store_account_list(struct gn_pool *pool,
			  struct gn_store_account ***list_r, size_t *count_r,
			  const char **error_r);
/* By name or by id: 1 found, 0 not found, -1 error. */
int gn_store_account_find(struct gn_pool *pool, const char *name,
			  struct gn_store_account **account_r,
			  const char **error_r);
int gn_store_account_get(struct gn_pool *pool, int64_t id,
			 struct gn_store_account **account_r,
			 const char **error_r);
/* Inside the caller's transaction (gn_db_begin()): locks the account's
 * row as every change to its mailboxes and messages does first (the
 * store's lock order: the account, then messages, then blobs), until the
 * transaction ends.  For a caller that finishes a blob in the transaction
 * that adds its message (gn_store_blob_finish(), then
 * gn_store_message_add()): the finish locks an existing blob's row, which
 * an expunge of another message with the same body, holding the account,
 * waits for; taken first, the account lock makes the two wait in one
 * order instead of deadlocking.  1 locked, 0 no such account, -1 error
 * (also outside a transaction).  Since ABI 1.1. */
int gn_store_account_lock(int64_t account_id, const char **error_r);
/* The bytes of the account's pending messages (delivered, not yet
 * settled; see above): 0 with *size_r, or -1.  Cheap: the pending rows
 * are few and have their own index. */
int gn_store_account_pending_size(int64_t account_id, uint64_t *size_r,
				  const char **error_r);
/* The number of messages the account stores: the settled ones (the sum of
 * its mailboxes' exact counters; a message expunged but with its UID kept
 * for QRESYNC is not counted) plus the pending ones (delivered, not yet
 * settled).  What a message-count quota must count.  0 with *count_r, or
 * -1.  Cheap: one row a mailbox, and the pending rows' own index.  Since
 * ABI 1.1. */
int gn_store_account_message_count(int64_t account_id, uint64_t *count_r,
				   const char **error_r);
/* Disables login with message (NULL or "": "account disabled"), or enables
 * it again.  1 done, 0 unknown account, -1 error. */
int gn_store_account_disable(const char *name, const char *message,
			     const char **error_r);
int gn_store_account_enable(const char *name, const char **error_r);
/* Sets the full name ("" for none).  1 / 0 unknown / -1. */
int gn_store_account_set_full_name(int64_t account_id, const char *full_name,
				   const char **error_r);

/* ---- addresses ---- */

struct gn_store_address;	/* opaque */

/* Canonical form (gn_addr_to_string()). */
const char *gn_store_address_canonical(const struct gn_store_address *address);
/* With U-labels, for display (gn_addr_to_display()). */
const char *gn_store_address_display(const struct gn_store_address *address);
int64_t gn_store_address_account_id(const struct gn_store_address *address);
/* The account's name. */
const char *gn_store_address_account_name(const struct gn_store_address *address);

/* Adds address (any spelling gn_addr_parse() accepts) to the account
 * named account.  The domain must exist; the localpart is kept as given
 * (NFC), and looked up by its lower-cased key.  Returns 0, or -1:
 * "invalid address: ...", "unknown domain: D", "unknown account: A",
 * "address exists: X". */
int gn_store_address_add(const char *address, const char *account,
			 const char **error_r);
/* Removes an address.  Refused (-1) for the last address of its account
 * (remove the account instead).  1 removed, 0 unknown address, -1 error. */
int gn_store_address_remove(const char *address, const char **error_r);
/* The addresses of an account, sorted: 0 with *list_r, an array of
 * *count_r handles (from pool), or -1. */
int gn_store_address_list(struct gn_pool *pool, int64_t account_id,
			  struct gn_store_address ***list_r, size_t *count_r,
			  const char **error_r);
/* Delivery and login: the account of addr.  Tries the address itself (by
 * its folded key), then, when the domain has catchall separators, the
 * address with the tag cut off (gn_addr_strip_catchall()).  Returns 1 with
 * *account_id_r and *canonical_r (the configured address the lookup
 * landed on, canonical form, from pool; either may be NULL), 0 when no
 * account has it (unknown domain included), -1 database error. */
int gn_store_address_lookup(struct gn_pool *pool, const struct gn_addr *addr,
			    int64_t *account_id_r, const char **canonical_r,
			    const char **error_r);

/* Sending as an address (since ABI 1.1): may an account use addr as its
 * MAIL FROM and message From (submission, and later the HTTP API and
 * webmail)?  Its own addresses, found as gn_store_address_lookup() finds
 * them, always; any other when a hook of the point "account.send_as"
 * (timeout 5s, default CONTINUE) returns ACCEPT (aliases whose members may
 * send as the alias).  The hook's context is a struct gn_store_send_as,
 * read with the accessors below.  CONTINUE: no opinion (the next hook);
 * REJECT: no, whatever later hooks say.  Hooks answer at once (a database
 * query, no network): one that returns PENDING is cancelled and the check
 * fails as a temporary error. */
#define GN_STORE_SEND_AS "account.send_as"
struct gn_store_send_as;	/* opaque */
int64_t gn_store_send_as_account(const struct gn_store_send_as *s);
const struct gn_addr *gn_store_send_as_address(const struct gn_store_send_as *s);
/* Any process, from start on.  Returns 1 allowed, 0 not, -1 database or
 * hook error (*error_r, static). */
int gn_store_send_as_check(struct gn_pool *pool, int64_t account_id,
			   const struct gn_addr *addr, const char **error_r);

/* ---- mailboxes ---- */

/* RFC 6154 special-use attributes. */
enum gn_store_special_use {
	GN_STORE_SPECIAL_NONE = 0,
	GN_STORE_SPECIAL_SENT,		/* \Sent */
	GN_STORE_SPECIAL_DRAFTS,	/* \Drafts */
	GN_STORE_SPECIAL_TRASH,		/* \Trash */
	GN_STORE_SPECIAL_JUNK,		/* \Junk */
	GN_STORE_SPECIAL_ARCHIVE,	/* \Archive */
};
/* "\Sent" ... ; NULL for NONE. */
const char *gn_store_special_use_name(enum gn_store_special_use use);

/* The hierarchy separator of mailbox names. */
#define GN_STORE_MAILBOX_SEP '/'

struct gn_store_mailbox;	/* opaque */

int64_t gn_store_mailbox_account_id(const struct gn_store_mailbox *mailbox);
int64_t gn_store_mailbox_id(const struct gn_store_mailbox *mailbox);
/* NFC, "/"-separated, "Inbox" spelled so. */
const char *gn_store_mailbox_name(const struct gn_store_mailbox *mailbox);
enum gn_store_special_use gn_store_mailbox_special_use(const struct gn_store_mailbox *mailbox);
bool gn_store_mailbox_subscribed(const struct gn_store_mailbox *mailbox);
/* STATUS (RFC 9051 6.3.11, RFC 7162 3.1.1), exact as of the read: */
uint32_t gn_store_mailbox_uidvalidity(const struct gn_store_mailbox *mailbox);
uint32_t gn_store_mailbox_uidnext(const struct gn_store_mailbox *mailbox);
uint64_t gn_store_mailbox_highestmodseq(const struct gn_store_mailbox *mailbox);
uint64_t gn_store_mailbox_messages(const struct gn_store_mailbox *mailbox);
/* Messages without \Seen. */
uint64_t gn_store_mailbox_unseen(const struct gn_store_mailbox *mailbox);
/* Messages with \Deleted. */
uint64_t gn_store_mailbox_deleted(const struct gn_store_mailbox *mailbox);
/* Bytes of its messages, and of those with \Deleted. */
uint64_t gn_store_mailbox_size(const struct gn_store_mailbox *mailbox);
uint64_t gn_store_mailbox_deleted_size(const struct gn_store_mailbox *mailbox);

/* Checks and normalises a mailbox name: valid UTF-8 in NFC, no control
 * characters, no empty level ("a//b", "/a", "a/"), at most 1000 bytes and
 * 32 levels, the Inbox spelling normalised.  Returns 0 with *name_r (from
 * pool; may be NULL), or -1 with *error_r. */
int gn_store_mailbox_name_check(struct gn_pool *pool, const char *name,
				const char **name_r, const char **error_r);
/* Creates a mailbox, and its missing parents (RFC 9051 6.3.4).  special_use
 * may be NONE.  Returns 1 created (*mailbox_r, may be NULL), 0 when it
 * exists already (*mailbox_r is the existing one), -1 error. */
int gn_store_mailbox_create(struct gn_pool *pool, int64_t account_id,
			    const char *name,
			    enum gn_store_special_use special_use,
			    struct gn_store_mailbox **mailbox_r,
			    const char **error_r);
/* Deletes a mailbox and its messages (RFC 9051 6.3.5); children stay.
 * Refused (-1) for Inbox.  1 deleted, 0 no such mailbox, -1 error. */
int gn_store_mailbox_delete(int64_t account_id, const char *name,
			    const char **error_r);
/* Renames a mailbox and its children with it, creating missing parents of
 * the new name; UIDVALIDITY and UIDs are kept.  Renaming Inbox (RFC 9051
 * 6.3.6) creates the new mailbox, moves all of Inbox's messages to it and
 * leaves Inbox empty; Inbox's children stay.  The new name must not exist
 * and must not be inside the old one.  1 renamed, 0 no such mailbox, -1
 * error ("mailbox exists: N"). */
int gn_store_mailbox_rename(int64_t account_id, const char *old_name,
			    const char *new_name, const char **error_r);
/* Sets or clears the special use.  1 / 0 no such mailbox / -1. */
int gn_store_mailbox_set_special_use(int64_t account_id, const char *name,
				     enum gn_store_special_use special_use,
				     const char **error_r);
/* The status-returning functions below (list, find, get, find_special)
 * settle the account's pending messages first (gn_store_settle(), waiting)
 * when no transaction is open, so their status includes every message
 * whose delivery committed before the call; inside a caller's transaction
 * they read what is settled. */
/* All mailboxes of an account sorted by name (with their status): 0 with
 * *list_r, an array of *count_r handles (from pool), or -1. */
int gn_store_mailbox_list(struct gn_pool *pool, int64_t account_id,
			  struct gn_store_mailbox ***list_r, size_t *count_r,
			  const char **error_r);
/* By name (any Inbox spelling), by id, or the first with a special use:
 * 1 found, 0 not found (an invalid name too), -1 error. */
int gn_store_mailbox_find(struct gn_pool *pool, int64_t account_id,
			  const char *name, struct gn_store_mailbox **mailbox_r,
			  const char **error_r);
int gn_store_mailbox_get(struct gn_pool *pool, int64_t account_id,
			 int64_t mailbox_id, struct gn_store_mailbox **mailbox_r,
			 const char **error_r);
int gn_store_mailbox_find_special(struct gn_pool *pool, int64_t account_id,
				  enum gn_store_special_use special_use,
				  struct gn_store_mailbox **mailbox_r,
				  const char **error_r);
/* Only the id of a mailbox by name (any Inbox spelling), without status
 * and without settling: for deliveries.  1 found (*id_r), 0 not found (an
 * invalid name too), -1 error. */
int gn_store_mailbox_lookup_id(int64_t account_id, const char *name,
			       int64_t *id_r, const char **error_r);

/* Subscriptions (RFC 9051 6.3.7): by name, which need not exist (the name
 * is checked and normalised like a mailbox name).  subscribe: 1 added, 0
 * already subscribed; unsubscribe: 1 removed, 0 was not; -1 error. */
int gn_store_subscribe(int64_t account_id, const char *name,
		       const char **error_r);
int gn_store_unsubscribe(int64_t account_id, const char *name,
			 const char **error_r);
/* The subscribed names, sorted.  0 or -1. */
int gn_store_subscription_list(struct gn_pool *pool, int64_t account_id,
			       const char ***names_r, size_t *count_r,
			       const char **error_r);

/* ---- blobs: message bodies stored once ---- */

#define GN_STORE_HASH_SIZE 32			/* SHA-256 */
#define GN_STORE_CHUNK_SIZE (256 * 1024)	/* bytes a chunk row */

/* A streaming writer.  Data is buffered up to one chunk; larger bodies go
 * to the database chunk by chunk as they are written (in the caller's
 * transaction, or each chunk in a transaction of its own when none is
 * open: it need not wait for the WAL flush, the caller's later COMMIT
 * makes it durable), into a pending blob that the writer holds on a lease
 * renewed as it writes (at least every minute while data arrives), so
 * the clean-up never takes it however slowly the data comes.  finish
 * computes the SHA-256, verifies what the database holds (chunk count,
 * size, and SHA-256 of the stored bytes) and fails rather than keep a
 * body that differs; when a blob with that hash exists already, nothing
 * new is kept (and that blob is repaired if it is found damaged).  A blob
 * nothing refers to is removed by gn_store_blob_cleanup();
 * gn_store_message_add() takes the reference.  Typical use in a delivery:
 * begin a transaction, new / write... / finish, gn_store_message_add() for
 * each mailbox, commit. */
struct gn_store_blob_writer;

struct gn_store_blob_writer *gn_store_blob_writer_new(void);
/* Appends data.  0, or -1 (database error). */
int gn_store_blob_write(struct gn_store_blob_writer *w, const void *data,
			size_t len, const char **error_r);
/* Completes the blob: 0 with hash_r and *size_r (may be NULL), or -1
 * (a database error, or the pending blob was lost: its lease ran out
 * while the writer was silent for an hour, or what is stored is not what
 * was written).  Opens its own transaction when none is open.  The
 * blob is held for an hour from the finish, however its other messages
 * go: add its message within that time, or in the finish's transaction
 * (which keeps an existing blob's row locked until it ends). */
int gn_store_blob_finish(struct gn_store_blob_writer *w,
			 unsigned char hash_r[GN_STORE_HASH_SIZE],
			 uint64_t *size_r, const char **error_r);
/* Frees the writer (accepts NULL, sets *w to NULL); an unfinished blob's
 * chunks are deleted. */
void gn_store_blob_writer_free(struct gn_store_blob_writer **w);

/* Removes blobs no message refers to: finished ones last finished more
 * than min_age_seconds ago (written by gn_store_blob_finish() but never
 * used by a message, or left by an expunge while held: an expunge keeps a
 * body finished within the last hour for the message about to use it),
 * and pending ones whose writer's lease ran out (it crashed, or
 * was silent for an hour); never a blob a writer still holds.  Returns the
 * number removed, or -1.  Own statement; for a runner job. */
int gn_store_blob_cleanup(long min_age_seconds, const char **error_r);

/* The hash as 64 lower-case hex digits, from pool. */
char *gn_store_hash_hex(struct gn_pool *pool,
			const unsigned char hash[GN_STORE_HASH_SIZE]);

/* Reading bodies in pieces: a blob alone, or a message (prefix + blob).
 * Each read asks the database for at most the bytes it returns (a read
 * of bytes the body holds already asks nothing), so memory stays bounded
 * by the caller's buffer and, per open body, one chunk
 * (GN_STORE_CHUNK_SIZE) that it keeps of its last read. */
struct gn_store_body;

/* 1 with *body_r, 0 no such blob / message, -1 error. */
int gn_store_blob_open(const unsigned char hash[GN_STORE_HASH_SIZE],
		       struct gn_store_body **body_r, const char **error_r);
int gn_store_message_open(int64_t account_id, int64_t mailbox_id, uint32_t uid,
			  struct gn_store_body **body_r, const char **error_r);
/* gn_store_message_open() that also reads the message's first prefetch
 * bytes (the prefix included; at most GN_STORE_CHUNK_SIZE) in the same
 * query, so that reads within them ask the database nothing: one round
 * trip for a caller that reads a header.  Since ABI 1.1. */
int gn_store_message_open_prefetch(int64_t account_id, int64_t mailbox_id, uint32_t uid,
				   size_t prefetch, struct gn_store_body **body_r,
				   const char **error_r);
/* gn_store_message_open_prefetch() of n messages in one query (a FETCH
 * of several): bodies_r[i] (an array of n the caller gives) is the body
 * of uids[i], or NULL when there is no such message; the caller frees
 * each.  Returns the number opened, or -1 (then none is).  Since ABI
 * 1.1. */
int gn_store_message_open_batch(int64_t account_id, int64_t mailbox_id, const uint32_t *uids,
				size_t n, size_t prefetch, struct gn_store_body **bodies_r,
				const char **error_r);
uint64_t gn_store_body_size(const struct gn_store_body *body);
/* Reads up to len bytes at offset into buf: 0 with *got_r (less than len
 * only at the end, 0 at or past it), or -1. */
int gn_store_body_read(struct gn_store_body *body, uint64_t offset, void *buf,
		       size_t len, size_t *got_r, const char **error_r);
void gn_store_body_free(struct gn_store_body **body);	/* accepts NULL */

/* ---- messages ---- */

/* System flags (RFC 9051 2.3.2); \Recent is not kept (IMAP4rev2). */
#define GN_STORE_SEEN		0x01u
#define GN_STORE_ANSWERED	0x02u
#define GN_STORE_FLAGGED	0x04u
#define GN_STORE_DELETED	0x08u
#define GN_STORE_DRAFT		0x10u
#define GN_STORE_FLAGS_ALL	0x1fu

/* Keywords: atoms of at most 100 bytes without "\" (RFC 9051 flag-keyword),
 * compared case-insensitively (ASCII), kept with the first spelling. */

/* Filled by the caller: set size to sizeof(struct gn_store_message_new)
 * (the core refuses a smaller one, and gives members added after the
 * caller's size their zero value), the rest as below.  Members are only
 * ever added at the end. */
struct gn_store_message_new {
	size_t size;			/* sizeof(struct gn_store_message_new) */
	int64_t account_id;
	int64_t mailbox_id;
	unsigned char blob_hash[GN_STORE_HASH_SIZE];
	/* Header lines to put before the body (CRLF-terminated), or NULL. */
	const char *prefix;
	size_t prefix_len;
	unsigned flags;			/* GN_STORE_* */
	const char *const *keywords;
	size_t n_keywords;
	time_t internal_date;		/* 0: now */
	/* The parsed body (the blob, without the prefix): stored as the
	 * JSON of gn_mime_to_json_string() and the envelope columns.  May be
	 * NULL (nothing stored; IMAP then parses when needed). */
	const struct gn_mime_message *mime;
	/* Since ABI 1.1: what the receiving server's checks found (below);
	 * NULL: none ran (IMAP APPEND, submission, mailauth not loaded). */
	const struct gn_store_message_auth *auth;
};

/* Since ABI 1.1: the results of the checks of a received message kept
 * with each of its copies, for the HTTP API and webhooks (mox's
 * MessageMeta: MailFromValidated, MsgFromValidated, DKIMVerifiedDomains,
 * RemoteIP, and the validations).  Filled by the caller with .size =
 * sizeof(struct gn_store_message_auth); members are only ever added at
 * the end, and the core reads only .size bytes of it and fills only
 * .size bytes.  Strings are copied by whoever takes the struct. */
#define GN_STORE_MAX_AUTH_DKIM_DOMAINS 16
struct gn_store_message_auth {
	size_t size;			/* sizeof(struct gn_store_message_auth) */
	/* Read back: true when the message has results (a setter leaves
	 * it: the struct's presence says so). */
	bool checked;
	/* The SPF identity (RFC 7208 2.4: MAIL FROM's domain, HELO's for
	 * <>) passed. */
	bool mail_from_validated;
	/* SPF's result for it (RFC 8601 2.7.2 names: "pass", "fail",
	 * "softfail", "neutral", "none", "temperror", "permerror"); NULL
	 * when unknown. */
	const char *mail_from_validation;
	/* The domain of the message's From field (RFC 7489 3.1), NULL when
	 * there was none usable. */
	const char *msg_from_domain;
	/* That domain is validated: DMARC passed (RFC 7489 4.2). */
	bool msg_from_validated;
	/* How: "strict" (SPF or DKIM passed for the From domain itself),
	 * "relaxed" (for another domain of its organisational domain), else
	 * DMARC's result ("fail", "none", "temperror", "permerror"); NULL
	 * when unknown. */
	const char *msg_from_validation;
	/* The d= of the DKIM signatures that passed, lower case, each once,
	 * at most GN_STORE_MAX_AUTH_DKIM_DOMAINS (the rest are dropped). */
	const char *const *dkim_domains;
	size_t n_dkim_domains;
	/* The client's address as text; NULL without one (a local socket). */
	const char *remote_ip;
};

struct gn_store_message;	/* a stored message; opaque */

int64_t gn_store_message_account_id(const struct gn_store_message *msg);
int64_t gn_store_message_mailbox_id(const struct gn_store_message *msg);
/* Unique in the account, kept by nothing else: a copy gets a new one. */
int64_t gn_store_message_id(const struct gn_store_message *msg);
uint32_t gn_store_message_uid(const struct gn_store_message *msg);
uint64_t gn_store_message_modseq(const struct gn_store_message *msg);
/* Bytes: prefix + body. */
uint64_t gn_store_message_size(const struct gn_store_message *msg);
/* GN_STORE_SEEN ... */
unsigned gn_store_message_flags(const struct gn_store_message *msg);
/* The keywords, *count_r of them (the array may be NULL when 0). */
const char *const *gn_store_message_keywords(const struct gn_store_message *msg,
					     size_t *count_r);
time_t gn_store_message_internal_date(const struct gn_store_message *msg);
/* The body's SHA-256: GN_STORE_HASH_SIZE bytes. */
const unsigned char *gn_store_message_blob_hash(const struct gn_store_message *msg);
/* Bytes of the prefix before the body. */
uint64_t gn_store_message_prefix_len(const struct gn_store_message *msg);
/* Envelope, from the MIME parse; NULL (date: 0) when absent.  Subject
 * and From decoded for display. */
const char *gn_store_message_subject(const struct gn_store_message *msg);
const char *gn_store_message_from(const struct gn_store_message *msg);
const char *gn_store_message_message_id(const struct gn_store_message *msg);
time_t gn_store_message_date(const struct gn_store_message *msg);
/* The stored gn_mime_to_json_string() text; NULL when none, and always
 * NULL from gn_store_message_list(). */
const char *gn_store_message_mime_json(const struct gn_store_message *msg);
/* RFC 8514: when the message was saved in its current mailbox (added,
 * delivered, copied or moved there); 0 when unknown (messages stored
 * before ABI 1.1 kept none).  Since ABI 1.1. */
time_t gn_store_message_save_date(const struct gn_store_message *msg);
/* Since ABI 1.1: the check results kept with message id (by
 * gn_store_message_id()) of the account.  The caller sets auth_r->size;
 * the core fills that much (strings and the array from pool).  Returns 1
 * with *auth_r (->checked false when none were kept), 0 when the account
 * has no such message, -1 with *error_r (database error, a size below
 * the first version's). */
/* Since ABI 1.1: a deep copy of auth in pool (its strings and array;
 * dkim_domains cut at GN_STORE_MAX_AUTH_DKIM_DOMAINS), read by its own
 * size; NULL when auth is NULL or its size is below the first version's. */
struct gn_store_message_auth *gn_store_message_auth_copy(struct gn_pool *pool,
							 const struct gn_store_message_auth *auth);
int gn_store_message_auth_get(struct gn_pool *pool, int64_t account_id, int64_t message_id,
			      struct gn_store_message_auth *auth_r, const char **error_r);

/* Adds a message to a mailbox at once: takes the mailbox's next UID and
 * the account's next modseq (locking the account until the transaction
 * ends), the blob's reference, and updates the counters.  For IMAP APPEND
 * and the like; deliveries use gn_store_message_add_pending().  The blob
 * must exist (gn_store_blob_finish() before).  The structure of m->mime
 * belongs to the body: it is stored once, with the blob, when the blob has
 * none yet (so every copy of a body shares one), and refused past 8 MiB
 * of JSON ("message structure too complex": a permanent error; SMTP
 * answers 554 5.6.0).  Returns 0 with *msg_r (may be NULL), or -1 ("no
 * such mailbox", "no such blob", invalid keyword, structure too complex,
 * a size member smaller than the first struct gn_store_message_new,
 * database error). */
int gn_store_message_add(struct gn_pool *pool,
			 const struct gn_store_message_new *m,
			 struct gn_store_message **msg_r, const char **error_r);

/* Deliveries: adds a message as pending (no UID, no modseq; invisible to
 * readers and counters until settled), taking the blob's reference.  No
 * account or mailbox row is locked beyond what the foreign keys take (a
 * share lock that no other delivery or settle waits for).  Returns 0 with
 * *id_r (may be NULL: the message's id, kept when it is settled), or -1
 * (same errors as gn_store_message_add()).  After the commit the caller
 * calls gn_store_settle() for the account. */
int gn_store_message_add_pending(const struct gn_store_message_new *m,
				 int64_t *id_r, const char **error_r);

/* Deliveries, the usual way: like gn_store_message_add_pending(), except
 * that when the account's settle lock and row are free at once (nothing
 * is waited for), it first settles what others left pending and then
 * numbers this message as gn_store_message_add() does, holding both until
 * the transaction ends: a lone delivery commits once.  Returns 0 with
 * *id_r and *uid_r (either may be NULL; the UID is 0 when the message was
 * left pending), or -1.  After the commit the caller calls
 * gn_store_settle() (wait false) for the account: others may have left
 * their messages to it.  Without a caller's transaction it does all that
 * itself. */
int gn_store_message_deliver(const struct gn_store_message_new *m,
			     int64_t *id_r, uint32_t *uid_r, const char **error_r);

/* Settles the pending messages of an account (all its mailboxes): each
 * gets the next UID of its mailbox, in id order, and all get one new
 * modseq; counters, HIGHESTMODSEQ and the account's modseq and total size
 * follow, and a NOTIFY goes out per mailbox; one transaction.
 *   - Outside a transaction: wait true waits for the account's settle lock
 *     (another settle's commit); wait false returns at once when another
 *     process holds it (that one settles them: every holder looks again
 *     after its commit).  It repeats until nothing it can see is pending.
 *   - Inside the caller's transaction (wait ignored): settles only when
 *     the lock and the account row are free at once, never waits, and
 *     holds both until the caller's transaction ends; the caller calls it
 *     again after that ends (outside), to settle what others left meanwhile.
 * Returns the number of messages settled, or -1 (rows that cannot be
 * settled, e.g. a mailbox out of UIDs, stay pending). */
int gn_store_settle(int64_t account_id, bool wait, const char **error_r);

/* The UID of message id of an account (gn_store_message_add_pending()):
 * 1 with *uid_r (may be NULL) once settled, 0 while pending or when no
 * such message exists, -1 error.  Does not settle. */
int gn_store_message_lookup_uid(int64_t account_id, int64_t message_id,
				uint32_t *uid_r, const char **error_r);
/* Since ABI 1.1: where message id (gn_store_message_id()) of an account
 * is: 1 with *mailbox_id_r and *uid_r (either may be NULL) once settled,
 * 0 while pending or when the account has no such message, -1 error.
 * For APIs that name messages by id (the HTTP API). */
int gn_store_message_locate(int64_t account_id, int64_t message_id, int64_t *mailbox_id_r,
			    uint32_t *uid_r, const char **error_r);
/* One message with its mime_json.  1 / 0 not found / -1. */
int gn_store_message_get(struct gn_pool *pool, int64_t account_id,
			 int64_t mailbox_id, uint32_t uid,
			 struct gn_store_message **msg_r, const char **error_r);
/* Messages with uid_min <= UID <= uid_max (0: no upper bound) sorted by
 * UID, without mime_json; settles first like the mailbox status
 * functions.  (The functions that take UIDs do not settle: a UID exists
 * only once settled.)  0 with *list_r, an array of *count_r handles (from
 * pool), or -1. */
int gn_store_message_list(struct gn_pool *pool, int64_t account_id,
			  int64_t mailbox_id, uint32_t uid_min, uint32_t uid_max,
			  struct gn_store_message ***list_r, size_t *count_r,
			  const char **error_r);

enum gn_store_flag_op {
	GN_STORE_FLAGS_SET = 0,		/* FLAGS: replace flags and keywords */
	GN_STORE_FLAGS_ADD,		/* +FLAGS */
	GN_STORE_FLAGS_REMOVE,		/* -FLAGS */
};

/* Changes flags and keywords of the messages with the given UIDs (absent
 * ones are ignored).  Only messages that really change get the new modseq
 * (one for the whole operation).  unchanged_since (RFC 7162 3.1.3): when
 * not 0, messages whose modseq is greater are left alone and their UIDs
 * returned in *failed_r (from pool; may be NULL).  Returns the number of
 * messages changed (0: none, and then nothing is notified), with *modseq_r
 * (may be NULL) the modseq they got; or -1. */
int gn_store_message_set_flags(struct gn_pool *pool, int64_t account_id,
			       int64_t mailbox_id, const uint32_t *uids,
			       size_t n_uids, enum gn_store_flag_op op,
			       unsigned flags, const char *const *keywords,
			       size_t n_keywords, uint64_t unchanged_since,
			       uint64_t *modseq_r, uint32_t **failed_r,
			       size_t *n_failed_r, const char **error_r);

/* Expunges messages: those with the given UIDs, or with uids == NULL all
 * with \Deleted (RFC 9051 6.4.3).  Their UIDs are kept with the new modseq
 * for QRESYNC; blobs lose a reference.  Returns the number expunged with
 * *expunged_r (sorted, from pool; may be NULL) and *modseq_r, or -1. */
int gn_store_message_expunge(struct gn_pool *pool, int64_t account_id,
			     int64_t mailbox_id, const uint32_t *uids,
			     size_t n_uids, uint32_t **expunged_r,
			     uint64_t *modseq_r, const char **error_r);

/* Copies (move false) or moves (RFC 6851) the messages with the given UIDs
 * to another mailbox of the same account: new UIDs in UID order, flags and
 * keywords and internal date kept, the blob shared (no bytes copied).  A
 * move expunges the sources (their UIDs kept for QRESYNC).  Returns the
 * number of messages with *src_uids_r and *dst_uids_r (pairs, from pool;
 * may be NULL: RFC 4315 COPYUID), or -1. */
int gn_store_message_copy(struct gn_pool *pool, int64_t account_id,
			  int64_t src_mailbox_id, const uint32_t *uids,
			  size_t n_uids, int64_t dst_mailbox_id, bool move,
			  uint32_t **src_uids_r, uint32_t **dst_uids_r,
			  uint64_t *modseq_r, const char **error_r);

/* QRESYNC (RFC 7162 3.2.5): the UIDs expunged from a mailbox with a
 * modseq greater than since, sorted.  Returns the count, or -1. */
int gn_store_expunged_since(struct gn_pool *pool, int64_t account_id,
			    int64_t mailbox_id, uint64_t since,
			    uint32_t **uids_r, const char **error_r);

/* What changed in a mailbox since a modseq, for a reader that keeps its
 * own copy of the message list (an IMAP session, RFC 9051 7.5, RFC 7162
 * 3.2.10): the messages whose modseq is greater than since (new ones and
 * ones whose flags changed; sorted by UID, without mime_json), the UIDs
 * expunged with a modseq greater than since (sorted) and the mailbox's
 * HIGHESTMODSEQ, all read in one statement (one snapshot): every change
 * with a modseq up to *highestmodseq_r is in them, so the next call takes
 * that as since.  Settles first like gn_store_message_list().  Returns 1
 * with *list_r, *count_r, *expunged_r, *n_expunged_r (arrays from pool)
 * and *highestmodseq_r; 0 when the mailbox does not exist; -1 error.
 * Since ABI 1.1. */
int gn_store_mailbox_changes(struct gn_pool *pool, int64_t account_id,
			     int64_t mailbox_id, uint64_t since,
			     struct gn_store_message ***list_r, size_t *count_r,
			     uint32_t **expunged_r, size_t *n_expunged_r,
			     uint64_t *highestmodseq_r, const char **error_r);

/* ---- searching (since ABI 1.1) ---- */

/* A search of one mailbox (IMAP SEARCH, RFC 9051 6.4.4), built as a tree
 * of conditions and run as one parametrised SQL statement: values never
 * become SQL text.  The builder is opaque so that conditions can be added
 * without changing anything a module compiled in.
 *
 *   struct gn_store_query *q = gn_store_query_new(pool);
 *   gn_store_query_flags(q, GN_STORE_SEEN, false);           UNSEEN
 *   gn_store_query_or(q);                                    OR
 *   gn_store_query_header(q, GN_STORE_QUERY_SUBJECT, "x");     SUBJECT x
 *   gn_store_query_size(q, true, 1000);                        LARGER 1000
 *   gn_store_query_end(q);
 *   n = gn_store_query_run(pool, q, account, mailbox, &uids, &modseqs, &err);
 *
 * The top level and a group opened by gn_store_query_and() match when all
 * their conditions do (an empty one matches everything); a group opened by
 * gn_store_query_or() when any does (an empty one matches nothing);
 * gn_store_query_not() when its conditions do not all match (its content
 * is an AND group).  Every group is closed by gn_store_query_end().  A
 * builder call with a bad argument (a NULL string, an end without a group,
 * more than GN_STORE_QUERY_MAX conditions) is remembered, and
 * gn_store_query_run() fails with it.
 *
 * Dates: BEFORE, ON and SINCE compare days as RFC 9051 6.4.4 does
 * ("disregarding time and timezone"): the day is given as the time_t of
 * its 00:00 UTC, and a message's time is taken as its day in UTC (all
 * nodes of a deployment agree, whatever their time zone).  The sent date
 * is the stored Date header (gn_store_message_date()); a message without a
 * usable one matches no sent-date condition.  A message without a save
 * date is compared by its internal date (RFC 8514 4.3). */

struct gn_store_query;	/* opaque, from the caller's pool */

/* Conditions (groups included) a query may hold. */
#define GN_STORE_QUERY_MAX 10000

enum gn_store_query_date {
	GN_STORE_QUERY_INTERNAL = 0,	/* internal date (BEFORE, ON, SINCE) */
	GN_STORE_QUERY_SENT,		/* the Date header (SENTBEFORE ...) */
	GN_STORE_QUERY_SAVED,		/* the save date (RFC 8514 SAVEDBEFORE ...) */
};

enum gn_store_query_cmp {
	GN_STORE_QUERY_BEFORE = 0,	/* the day is earlier than the given one */
	GN_STORE_QUERY_ON,		/* the same day */
	GN_STORE_QUERY_SINCE,		/* the same day or later */
};

/* Header fields the store keeps (gn_store_message_subject() ...). */
enum gn_store_query_header {
	GN_STORE_QUERY_SUBJECT = 0,	/* decoded Subject */
	GN_STORE_QUERY_FROM,		/* decoded From field */
	GN_STORE_QUERY_MESSAGE_ID,	/* Message-ID as sent */
};

/* A new query that matches every message, from pool (freed with it). */
struct gn_store_query *gn_store_query_new(struct gn_pool *pool);
/* Groups: the conditions that follow, up to the matching
 * gn_store_query_end(), are one condition of the enclosing group. */
void gn_store_query_and(struct gn_store_query *q);
void gn_store_query_or(struct gn_store_query *q);
void gn_store_query_not(struct gn_store_query *q);
void gn_store_query_end(struct gn_store_query *q);

/* UIDs in any of n ranges: ranges[2i] <= UID <= ranges[2i + 1] (the
 * array is copied).  n == 0 matches nothing. */
void gn_store_query_uids(struct gn_store_query *q, const uint32_t *ranges, size_t n);
/* set: every flag of flags (GN_STORE_SEEN ...) is set; !set: none is. */
void gn_store_query_flags(struct gn_store_query *q, unsigned flags, bool set);
/* The keyword is set (compared case-insensitively), or is not. */
void gn_store_query_keyword(struct gn_store_query *q, const char *keyword, bool set);
/* larger: size > bytes (RFC 9051 LARGER); else size < bytes (SMALLER). */
void gn_store_query_size(struct gn_store_query *q, bool larger, uint64_t bytes);
/* A date condition; day as above (00:00 UTC). */
void gn_store_query_date(struct gn_store_query *q, enum gn_store_query_date which,
			 enum gn_store_query_cmp cmp, time_t day);
/* The internal date is before t (older), or t or later (!older): the
 * exact times of RFC 5032 OLDER and YOUNGER. */
void gn_store_query_time(struct gn_store_query *q, bool older, time_t t);
/* modseq >= min (RFC 7162 3.1.5 MODSEQ). */
void gn_store_query_modseq(struct gn_store_query *q, uint64_t min);
/* The field contains text, compared case-insensitively (the database's
 * lower()); a message without the field does not match.  text is
 * copied. */
void gn_store_query_header(struct gn_store_query *q, enum gn_store_query_header field,
			   const char *text);

/* Runs the query on the settled messages of a mailbox: returns the number
 * of matches with *uids_r (ascending) and *modseqs_r (each match's modseq;
 * may be NULL), from pool; or -1 with *error_r (a builder error, an
 * unclosed group, a database failure).  A read: it opens no transaction
 * and does not settle. */
int gn_store_query_run(struct gn_pool *pool, const struct gn_store_query *q,
		       int64_t account_id, int64_t mailbox_id, uint32_t **uids_r,
		       uint64_t **modseqs_r, const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
