/*
 * modules/aliases/aliases.h: the parts of the aliases module.
 *
 *   aliases.c  the module: its descriptor, the hooks on the delivery
 *              pipeline ("deliver.resolve": an alias expands into its
 *              members; "deliver.mailbox": the sender check and the
 *              members left out) and on "account.send_as" (AllowMsgFrom);
 *   alias.c    the data: the module's tables (schema/), one place for
 *              its SQL;
 *   cli.c      `gannet config alias ...` over alias.c.
 */
#ifndef ALIASES_H
#define ALIASES_H

#include <gannet/gannet.h>

#include <stdbool.h>
#include <stdint.h>

#define ALIASES_AREA "aliases"

/* Members an alias may have: one expansion of the delivery pipeline
 * (gn_delivery_limits.max_expansion_count defaults to 1000). */
#define ALIASES_MAX_MEMBERS 1000

struct alias_flags {
	bool post_public;	/* anyone may send to it (else only members) */
	bool list_members;	/* members may see the member list */
	bool allow_msg_from;	/* members may send as the alias */
};

struct alias {
	int64_t id;
	struct gn_addr *addr;	/* as configured (localpart case kept) */
	struct alias_flags flags;
};

struct alias_member {
	struct gn_addr *addr;
	int64_t account_id;
	const char *account;
};

/* ---- alias.c ---- */

/* The alias addr names: by its lower-cased localpart, then, when the
 * domain has catchall separators, with the tag cut off (alias+tag@ reaches
 * the alias, as an account's address does).  1 with *alias_r (from pool),
 * 0 none, -1 database error (*error_r). */
int alias_find(struct gn_pool *pool, const struct gn_addr *addr,
	       struct alias **alias_r, const char **error_r);
/* An alias's members, sorted by address.  0 with *list_r / *count_r, or
 * -1. */
int alias_members(struct gn_pool *pool, int64_t alias_id,
		  struct alias_member **list_r, size_t *count_r,
		  const char **error_r);
/* Whether addr (exactly, case aside) is a member of alias_id, and
 * whether an address of account_id is: 1, 0 or -1. */
int alias_has_member(struct gn_pool *pool, int64_t alias_id, const struct gn_addr *addr,
		     const char **error_r);
int alias_has_account(struct gn_pool *pool, int64_t alias_id, int64_t account_id,
		      const char **error_r);
/* All aliases, sorted by domain and localpart, each with its member
 * count.  0 or -1. */
int alias_list(struct gn_pool *pool, struct alias **list_r, size_t **counts_r,
	       size_t *count_r, const char **error_r);

/* The changes: each in one transaction, each 0 done or -1 with a message
 * for the admin in *error_r (from pool or static). */
int alias_add(struct gn_pool *pool, const char *address,
	      const char *const *members, size_t n_members,
	      const struct alias_flags *flags, const char **error_r);
/* Flags given as -1 stay as they are. */
int alias_update(struct gn_pool *pool, const char *address, int post_public,
		 int list_members, int allow_msg_from, const char **error_r);
int alias_remove(struct gn_pool *pool, const char *address, const char **error_r);
int alias_members_add(struct gn_pool *pool, const char *address,
		      const char *const *members, size_t n_members,
		      const char **error_r);
int alias_members_remove(struct gn_pool *pool, const char *address,
			 const char *const *members, size_t n_members,
			 const char **error_r);

/* ---- cli.c ---- */

int aliases_cli_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
