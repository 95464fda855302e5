/*
 * gannet/suppression.h: the service "suppression.v1", per-account
 * suppression lists of recipient addresses (mox.md 2.7).
 *
 * A module (modules/suppression) provides it (gannet/service.h) with a
 * struct gn_suppression_ops; the core's queue consults it only when a
 * loaded module provides it:
 *
 *   - at each delivery attempt, before the transport runs (one
 *     lookup_many() for the recipients of the attempt), a recipient on
 *     the sender account's list fails for good (550 5.7.1 in the record,
 *     a DSN to the sender unless from <>), and is never handed to the
 *     transport; a lookup that fails makes the attempt fail temporarily;
 *   - after a recipient failed for good with an SMTP code from the remote
 *     side (not a local failure, not a suppressed one), the core calls
 *     failure(): the provider decides whether to add the recipient.
 *
 * Addresses are matched by their base address, the provider's to define
 * (mox: localpart cut at the first "+", then at the first "-", dots
 * removed, lower-cased; the domain as is).  Functions use the process's
 * database connection, outside or inside the caller's transaction.  The
 * header declares no function of the core: only the table.  Since ABI
 * 1.1.
 */
#ifndef GANNET_SUPPRESSION_H
#define GANNET_SUPPRESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/addr.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GN_SUPPRESSION_SERVICE "suppression.v1"

/* One entry of a list.  Strings from the caller's pool.  Frozen on
 * purpose: handed out in arrays and filled into the caller's struct by
 * the provider, so a member added would misread either side; more about
 * an entry would be a new struct of a new service version. */
struct gn_suppression {
	int64_t id;
	int64_t account_id;
	const char *account;		/* the account's name */
	const char *base_address;	/* the key (canonical form) */
	const char *original_address;	/* as added (canonical form) */
	bool manual;			/* added by a person, not a failure */
	const char *reason;		/* "" none */
	time_t created;
};

/* A recipient that failed for good with an SMTP code of the remote side.
 * Starts with its own size and only ever grows at the end. */
struct gn_suppression_failure {
	size_t size;			/* sizeof(struct gn_suppression_failure) */
	int64_t account_id;		/* the sender's account */
	const struct gn_addr *rcpt;
	int code;			/* 4xx (last attempt) or 5xx */
	const char *enhanced;		/* "5.1.1", or NULL */
	const char *source;		/* "queue", or "DSN" (a report received) */
	/* The two most recent other recipients to the same address that
	 * left the account's queue (by retirement time, as kept with the
	 * account's retention): how many of them there are (0 to 2), and
	 * whether each of those failed (mox: "three consecutive
	 * failures" counts this one and the two before it). */
	unsigned previous;
	unsigned previous_failed;
};

/* The service's table.  Starts with its own size and only ever grows at
 * the end; check a member with GN_OPS_HAS() before calling it.  Each
 * returns -1 with *error_r (static or from pool) on errors. */
struct gn_suppression_ops {
	size_t size;			/* sizeof(struct gn_suppression_ops) */
	/* Whether addr's base address is on the account's list: 1 (*s_r
	 * filled when not NULL, strings from pool), 0 not. */
	int (*lookup)(struct gn_pool *pool, int64_t account_id, const struct gn_addr *addr,
		      struct gn_suppression *s_r, const char **error_r);
	/* Adds addr (its base address) with a reason (NULL or "": none): 1
	 * added, 0 its base address was on the list already. */
	int (*add)(int64_t account_id, const struct gn_addr *addr, bool manual, const char *reason,
		   const char **error_r);
	/* Removes addr's base address: 1 removed, 0 was not on the list. */
	int (*remove)(int64_t account_id, const struct gn_addr *addr, const char **error_r);
	/* The account's list (account_id 0: every account's), by account and
	 * base address: 0 with *list_r (from pool) and *n_r. */
	int (*list)(struct gn_pool *pool, int64_t account_id, struct gn_suppression **list_r,
		    size_t *n_r, const char **error_r);
	/* A failure (see the struct): 1 the recipient was added now, 0 not
	 * (already listed, or the failure does not call for it). */
	int (*failure)(const struct gn_suppression_failure *f, const char **error_r);
	/* lookup() of n addresses in one query: suppressed_r[i] (an array
	 * of n the caller gives) says whether addrs[i] is listed.  Returns
	 * how many are. */
	int (*lookup_many)(struct gn_pool *pool, int64_t account_id, const struct gn_addr *const *addrs,
			   size_t n, bool *suppressed_r, const char **error_r);
};

#ifdef __cplusplus
}
#endif
#endif
