/*
 * core/store/internal.h: the store layer's internals.
 *
 *   store.c    shared helpers, transactions, runner jobs, register phase;
 *   domain.c   domains;
 *   account.c  accounts;
 *   address.c  addresses and their lookup;
 *   dkim.c     the DKIM keys of the domains, signing with them;
 *   cli.c      the commands' shared helpers and their registration, with
 *              cli-domain.c, cli-account.c, cli-address.c, cli-dkim.c
 *              beside the data files they drive (`gannet config
 *              domain|account|address|dkim`, `gannet dkim sign`);
 *   mailbox.c  mailboxes, subscriptions and messages, settling;
 *   blob.c     message bodies: blobs written and read in chunks;
 *   deliver.c  the delivery pipeline (gannet/deliver.h);
 *   import.c   `gannet import` and `gannet export`;
 *   handles.c  the accessors of the opaque objects of gannet/store.h;
 *   search.c   searching a mailbox (gn_store_query_*): one SQL statement.
 *
 * Uses the mail (MIME, addresses), db, runtime and base layers.
 */
#ifndef GANNET_STORE_INTERNAL_H
#define GANNET_STORE_INTERNAL_H

#include "db/internal.h"
#include "mail/internal.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/dkim.h>
#include <gannet/store.h>
#include <gannet/deliver.h>

#define NAME_MAX_BYTES 255
#define MAILBOX_NAME_MAX 1000
#define MAILBOX_LEVELS_MAX 32
#define KEYWORD_MAX 100
#define UID_MAX 4294967295ULL
/* The MIME structure of a body as stored (gn_mime_to_json_string()): at
 * most this many bytes.  It grows with the number of parts and header
 * fields, not with the size (9,990 parts in 4.9 MB gave 38.5 MB), and
 * PostgreSQL refuses a jsonb value past 256 MB: a message whose structure
 * is larger is refused for good (a permanent error), never retried. */
#define STORE_MIME_JSON_MAX (8 * 1024 * 1024)

/* ---- the objects of gannet/store.h (handles.c) ----
 * Opaque to modules, which read them through the accessors in handles.c;
 * the store's own code uses the members.  Members may be added anywhere:
 * modules only ever see pointers. */

struct gn_store_domain {
	int64_t id;
	const char *name;		/* A-labels, lower case */
	const char *name_utf8;		/* U-labels, for display */
	/* Each code point is a catchall separator ("+" or "+-"); "" none. */
	const char *catchall_separators;
};

struct gn_store_account {
	int64_t id;
	const char *name;
	const char *full_name;		/* "" when none */
	/* NULL: may log in; else the message a refused login gets. */
	const char *login_disabled;
	uint64_t modseq;		/* the last modseq handed out */
	uint64_t total_size;		/* bytes of its settled messages */
};

struct gn_store_address {
	const char *address;		/* canonical (gn_addr_to_string) */
	const char *display;		/* with U-labels (gn_addr_to_display) */
	int64_t account_id;
	const char *account;		/* the account's name */
};

struct gn_store_mailbox {
	int64_t account_id;
	int64_t id;
	const char *name;		/* NFC, "/"-separated, "Inbox" spelled so */
	enum gn_store_special_use special_use;
	bool subscribed;
	/* STATUS (RFC 9051 6.3.11, RFC 7162 3.1.1), exact: */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t messages;
	uint64_t unseen;		/* without \Seen */
	uint64_t deleted;		/* with \Deleted */
	uint64_t size;			/* bytes of its messages */
	uint64_t deleted_size;		/* bytes of those with \Deleted */
};

struct gn_store_message {
	int64_t account_id;
	int64_t mailbox_id;
	int64_t id;			/* unique in the account, kept by nothing
					   else: a copy gets a new one */
	uint32_t uid;
	uint64_t modseq;
	uint64_t size;			/* prefix + body */
	unsigned flags;
	const char **keywords;
	size_t n_keywords;
	time_t internal_date;
	unsigned char blob_hash[GN_STORE_HASH_SIZE];
	uint64_t prefix_len;
	/* Envelope: from the MIME parse, NULL when absent. */
	const char *subject;		/* decoded */
	const char *from;		/* decoded From field */
	const char *message_id;
	time_t date;			/* Date field, 0 when absent */
	time_t save_date;		/* RFC 8514; 0 when unknown */
	/* The stored gn_mime_to_json_string() text; NULL when none, and
	 * always NULL from gn_store_message_list(). */
	const char *mime_json;
};

/* The smallest struct gn_store_message_new a caller may pass: the first
 * one (ABI 1.0), which ends with mime. */
#define STORE_MESSAGE_NEW_SIZE_1_0 \
	(offsetof(struct gn_store_message_new, mime) + \
	 sizeof(((struct gn_store_message_new *)0)->mime))
/* Copies the caller's struct gn_store_message_new by its own size into
 * *copy (members it does not have are zero): 0, or -1 with *error_r when
 * its size is smaller than STORE_MESSAGE_NEW_SIZE_1_0. */
int store_message_new_copy(const struct gn_store_message_new *m,
			   struct gn_store_message_new *copy, const char **error_r);

/* An empty UID list that is not NULL. */
extern const uint32_t store_no_uids[1];

/* ---- the core's register phase (core/main.c) ----
 * Each defines its hook points, runner jobs and CLI commands; returns 0 or
 * -1 (error recorded with conf_error()). */
int store_register(void);	/* store.c */
int deliver_register(void);	/* deliver.c */
int store_send_as_register(void);	/* address.c: the point account.send_as */
int import_register(void);	/* import.c */

/* ---- helpers (store.c) ---- */

/* An error message in a static buffer, valid until the next call. */
const char *store_errf(const char *fmt, ...) GN_PRINTF(1, 2);
/* Numbers as query parameters, from pool. */
const char *store_i64s(struct gn_pool *pool, int64_t v);
const char *store_u64s(struct gn_pool *pool, uint64_t v);
/* Result values: 0 / NULL for SQL NULL; strings copied to pool. */
int64_t store_col_i64(const PGresult *res, int row, int col);
const char *store_col_str(struct gn_pool *pool, const PGresult *res, int row, int col);
/* db_query(); store_q_count() returns the rows affected, or -1. */
PGresult *store_q(const char *sql, int n, const char *const *params, const char **error_r);
int64_t store_q_count(const char *sql, int n, const char *const *params, const char **error_r);
bool store_hash_from_hex(const char *s, unsigned char hash[GN_STORE_HASH_SIZE]);
/* A hash as a bytea parameter in text form ("\x..."). */
const char *store_hash_param(struct gn_pool *pool, const unsigned char hash[GN_STORE_HASH_SIZE]);
/* Array parameters: "{1,2}" (NULL for uids == NULL: SQL NULL), and
 * text[] with every element quoted. */
const char *store_uid_array(struct gn_pool *pool, const uint32_t *uids, size_t n);
const char *store_i64_array(struct gn_pool *pool, const int64_t *v, size_t n);
const char *store_text_array(struct gn_pool *pool, const char *const *v, size_t n);
/* Parses array_to_json(text[]) output. */
void store_json_strings(struct gn_pool *pool, const char *json,
			const char ***list_r, size_t *count_r);
/* NULL when s is valid UTF-8 in NFC without control characters, else the
 * problem. */
const char *store_text_problem(const char *s);

/* ---- addresses (address.c) ---- */

/* Adds address to an account (account_id, or by name when account_id is
 * 0) inside the caller's transaction: 0 or -1 with *error_r. */
int store_address_insert(struct gn_pool *pool, const char *address, int64_t account_id,
			 const char *account, const char **error_r);

/* ---- DKIM keys (dkim.c) ---- */

struct store_dkim_key {
	const char *domain;		/* A-labels */
	const char *selector;		/* lower case */
	enum gn_dkim_algorithm alg;
	bool enabled;
	time_t created;
	const char *record;		/* the TXT record's text, when read with keys */
	struct gn_dkim_key *key;	/* loaded, when read with keys */
};

/* Generates a key of alg for selector of a hosted domain and stores it,
 * enabled: 0 with *key_r (from pool, with its record, without the key), or
 * -1 with *error_r (unknown domain, bad selector, selector exists). */
int store_dkim_add(struct gn_pool *pool, const char *domain, const char *selector,
		   enum gn_dkim_algorithm alg, struct store_dkim_key **key_r, const char **error_r);
/* 1 removed / changed, 0 no such selector, -1 with *error_r. */
int store_dkim_remove(const char *domain, const char *selector, const char **error_r);
int store_dkim_set_enabled(const char *domain, const char *selector, bool enabled,
			   const char **error_r);
/* The keys, all or of a domain (and selector), sorted: 0 or -1.  With
 * with_keys, each is loaded (free them with store_dkim_keys_free()) and its
 * record is set. */
int store_dkim_list(struct gn_pool *pool, const char *domain, const char *selector,
		    bool with_keys, struct store_dkim_key ***list_r, size_t *count_r,
		    const char **error_r);
void store_dkim_keys_free(struct store_dkim_key **list, size_t n);
/* "SELECTOR._domainkey.DOMAIN." from pool. */
const char *store_dkim_dns_name(struct gn_pool *pool, const char *domain, const char *selector);

/* ---- the commands (cli.c, cli-*.c) ---- */

/* Registers `gannet config domain|account|address ...`: 0 or -1. */
int store_cli_register(void);
/* Prints "usage: gannet USAGE" / the error; returns the exit status (2 /
 * 1). */
int store_cli_usage(const char *usage);
int store_cli_fail(const char *error);
/* The arguments from i on joined with spaces (a full name or message
 * given without quotes), from pool; NULL when there are none. */
const char *store_cli_rest(struct gn_pool *pool, int argc, char **argv, int i);
gn_cli_fn store_cli_domain_add, store_cli_domain_rm, store_cli_domain_list;
gn_cli_fn store_cli_account_add, store_cli_account_rm, store_cli_account_list,
	store_cli_account_disable, store_cli_account_enable, store_cli_account_fromid;
gn_cli_fn store_cli_address_add, store_cli_address_rm;
gn_cli_fn store_cli_dkim_add, store_cli_dkim_rm, store_cli_dkim_list, store_cli_dkim_export,
	store_cli_dkim_enable, store_cli_dkim_disable, store_cli_dkim_sign;

/* ---- transactions, modseqs, notifications (store.c) ---- */

struct store_tx {
	bool own;	/* we opened it (no caller's transaction) */
};

/* Joins the caller's transaction or opens one: 0 or -1. */
int store_tx_begin(struct store_tx *tx, const char **error_r);
/* Commits (ret >= 0) or rolls back (ret < 0) our own transaction; returns
 * ret, or -1 when the commit failed. */
int store_tx_end(struct store_tx *tx, int ret, const char **error_r);
/* NOTIFY gn_mailbox '<account> <mailbox> <modseq>'. */
int store_notify(int64_t account_id, int64_t mailbox_id, uint64_t modseq,
		 const char **error_r);
/* The account's next modseq, taking its row lock first (the lock order
 * of the store): 1, 0 unknown account, -1. */
int store_next_modseq(int64_t account_id, uint64_t *modseq_r, const char **error_r);
/* How long a blob is held after a writer last finished it (migration
 * 010): the body's messages may be added in a later transaction
 * (MULTIAPPEND, callers of gn_store_blob_finish()), and the last other
 * reference going meanwhile must not take the blob away under them.  An
 * SQL interval. */
#define STORE_BLOB_HOLD "1 hour"

/* Deletes the blobs in ids whose reference count is 0 or less, unless a
 * writer finished them within STORE_BLOB_HOLD (the clean-up takes those
 * later). */
/* A body of blob blob_id (size bytes) whose first len bytes are data
 * (copied): reads within them ask the database nothing.  For a reader
 * that fetched them already (the queue's claim). */
struct gn_store_body *store_body_from_data(int64_t blob_id, uint64_t size, const void *data,
					   size_t len);
int store_blobs_drop_unused(struct gn_pool *pool, const int64_t *ids, size_t n,
			    const char **error_r);
/* Takes the blob references of the messages of an account (mailbox_id 0:
 * all mailboxes) away; *ids_r: the blobs left unused, to drop with
 * store_blobs_drop_unused() after the messages are deleted. */
int store_release_messages(struct gn_pool *pool, int64_t account_id, int64_t mailbox_id,
			   int64_t **ids_r, size_t *n_r, const char **error_r);

/* The structure of mime as stored with its body: 0 with *json_r (from
 * pool; jsonb-safe), or -1 when it passes STORE_MIME_JSON_MAX (*error_r
 * says so). */
int store_mime_json(struct gn_pool *pool, const struct gn_mime_message *mime,
		    const char **json_r, const char **error_r);

/* ---- blobs (blob.c) ---- */

/* gn_store_blob_finish() that stores mime (the structure as JSON, from
 * store_mime_json(); NULL for none) with a new blob, or with an existing
 * one that has none.  Verifies what is stored before it returns; opens its
 * own transaction when none is open.  0 or -1. */
int store_blob_finish(struct gn_store_blob_writer *w, const char *mime,
		      unsigned char hash_r[GN_STORE_HASH_SIZE], uint64_t *size_r,
		      const char **error_r);

/* Frees the writer without touching its pending row (accepts NULL): when
 * the transaction that would have taken it may still be in progress, a
 * DELETE would wait for it.  The clean-up removes the row once its lease
 * ran out, unless a committed transaction made it a blob. */
void store_blob_writer_abandon(struct gn_store_blob_writer **w);

/* ---- deliveries (deliver.c) ---- */

/* Removes the tokens of deliveries older than a day (gn_delivery_tokens).
 * Returns the number removed, or -1.  For the runner. */
int store_delivery_tokens_cleanup(const char **error_r);

/* ---- mailboxes (mailbox.c) ---- */

/* Creates name (checked) and its missing parents inside a transaction:
 * 1 created, 0 existed, -1. */
int store_mailbox_create_tx(struct gn_pool *pool, int64_t account_id, const char *name,
			    enum gn_store_special_use special_use, bool subscribe,
			    struct gn_store_mailbox **mailbox_r, const char **error_r);
/* The runner job's work: settles every account with pending messages
 * (gn_store_settle() without waiting).  Returns the number settled, or -1
 * when some account failed (logged). */
int store_settle_all(const char **error_r);

#endif
