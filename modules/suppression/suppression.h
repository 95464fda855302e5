/*
 * modules/suppression/suppression.h: the suppression module's parts
 * (README beside).
 *
 *   suppression.c  the descriptor; the service "suppression.v1"
 *                  (gannet/suppression.h) that the queue consults;
 *                  failure(): the automatic additions (mox.md 2.7)
 *   list.c         the data: base addresses and the module's table
 *                  (schema/), one place for its SQL
 *   cli.c          `gannet queue suppress list|add|rm|lookup`
 */
#ifndef SUPPRESSION_SUPPRESSION_H
#define SUPPRESSION_SUPPRESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <gannet/gannet.h>

#define SUPPRESSION_AREA "suppression"

/* Entries an account's list may hold: additions past it are refused (the
 * automatic ones logged).  Remote servers' answers make entries. */
#define SUPPRESSION_MAX_PER_ACCOUNT 100000
/* Bytes of a reason. */
#define SUPPRESSION_REASON_MAX 1000

#define SUPPRESSION_STR_(x) #x
#define SUPPRESSION_STR(x) SUPPRESSION_STR_(x)

/* mox's baseAddress(): the localpart cut at the first "+", then at the
 * first "-", every "." removed, lower-cased; the domain as is. */
struct gn_addr *suppression_base(struct gn_pool *pool, const struct gn_addr *addr);

/* The operations of gannet/suppression.h (the service's table points at
 * them). */
int suppression_lookup(struct gn_pool *pool, int64_t account_id, const struct gn_addr *addr,
		       struct gn_suppression *s_r, const char **error_r);
int suppression_add(int64_t account_id, const struct gn_addr *addr, bool manual,
		    const char *reason, const char **error_r);
int suppression_remove(int64_t account_id, const struct gn_addr *addr, const char **error_r);
int suppression_list(struct gn_pool *pool, int64_t account_id, struct gn_suppression **list_r,
		     size_t *n_r, const char **error_r);
int suppression_failure(const struct gn_suppression_failure *f, const char **error_r);
int suppression_lookup_many(struct gn_pool *pool, int64_t account_id, const struct gn_addr *const *addrs,
			    size_t n, bool *suppressed_r, const char **error_r);

/* mox's isImmedateBlock(): code 521, 550, 551, 553 or 556, or a 5xx with
 * enhanced subject.detail 1.1, 1.2, 1.3, 1.6, 2.1 or 7.1. */
bool suppression_immediate(int code, const char *enhanced);

int suppression_cli_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
