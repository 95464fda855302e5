/*
 * modules/aliases/aliases.c: aliases (lists) on the core's delivery
 * pipeline (gannet/deliver.h) and send-as check (gannet/store.h).  mox.md 5
 * is what it matches; the README says where it differs.
 *
 *   "deliver.resolve"  an address that is an alias (alias+tag@ too) is
 *                      replaced by its members (gn_delivery_expand()),
 *                      unless the setting rcpt_sender_check is on, the
 *                      alias has no PostPublic and the envelope sender is
 *                      not "<>" and neither a member nor (with
 *                      AllowMsgFrom) the alias itself: then 550 5.7.2 at
 *                      RCPT, before the message is sent (README: why it
 *                      is off by default):
 *                      each is then resolved and checked by the core as
 *                      any address (quota and the other checks apply per
 *                      member).  Members are account addresses, never
 *                      aliases, so only recipients as added (depth 0) are
 *                      looked at.
 *   "deliver.mailbox"  once the message is complete, for each member of
 *                      an alias: the sender check, judged by the message's
 *                      From (mox.md 5): a member may post, the alias itself
 *                      only with AllowMsgFrom, anyone only with PostPublic;
 *                      else the member fails with 550 5.7.2 (so does the
 *                      alias: RFC 3463 5.7.2, mailing list expansion
 *                      prohibited).  Then members left out on purpose
 *                      (gn_delivery_skip()): the one who sent it, and one
 *                      that is an explicit recipient of the same
 *                      transaction (its own copy is the one it gets).  Runs
 *                      first on that chain (priority -1000): a refused
 *                      message never reaches mailbox rules.
 *   "account.send_as"  AllowMsgFrom: an account with a member address may
 *                      send as the alias (MAIL FROM and From in submission).
 *
 * The result of an alias is the core's: accepted when any member got it,
 * else the first temporary failure (452 4.2.2 when every member is over
 * quota, from the quota module's check), else the first permanent one.
 */
#include "aliases.h"

#include <string.h>

/* Settings (aliases { ... }), read at register. */
static struct {
	bool rcpt_sender_check;	/* judge MAIL FROM at RCPT too */
} aliases_settings;

/* The recipient that target comes from, when it is an alias and target is
 * one of its members: 1 (*alias_r), 0 not, -1 database error. */
static int member_of_alias(struct gn_pool *pool, struct gn_delivery *d,
			   struct alias **alias_r, const char **error_r)
{
	if (gn_delivery_current_depth(d) != 1 || gn_delivery_current(d) == NULL)
		return 0;
	const struct gn_addr *rcpt = gn_delivery_recipient(d, gn_delivery_current_index(d));
	if (rcpt == NULL)
		return 0;
	return alias_find(pool, rcpt, alias_r, error_r);
}

static bool same_addr(struct gn_pool *pool, const struct gn_addr *a, const struct gn_addr *b)
{
	return a != NULL && b != NULL && gn_addr_equal(gn_addr_fold(pool, a), gn_addr_fold(pool, b));
}

/* The message's From: its one mailbox, else NULL (none, a group, a list,
 * unparsable: nobody a sender check could find). */
static const struct gn_addr *message_from(struct gn_pool *pool, struct gn_delivery *d)
{
	const struct gn_mime_message *msg = gn_delivery_message(d);
	const char *v = msg != NULL ? gn_mime_message_field_raw(msg, GN_MIME_FROM) : NULL;
	struct gn_addr_list list;
	const char *err;
	if (v == NULL || gn_addr_parse_header(pool, v, strlen(v), &list, &err) < 0 ||
	    list.count != 1 || list.items[0]->kind != GN_ADDR_MAILBOX)
		return NULL;
	return list.items[0]->addr;
}

static enum gn_hook_result on_resolve(struct gn_hook_call *call, void *data)
{
	struct gn_delivery *d = gn_hook_call_context(call);
	const struct gn_addr *addr = gn_delivery_current(d);
	(void)data;
	if (addr == NULL || gn_delivery_current_depth(d) != 0)
		return GN_HOOK_CONTINUE;
	struct gn_pool *pool = gn_pool_new();
	struct alias *al = NULL;
	struct alias_member *m = NULL;
	size_t n = 0;
	const char *err = NULL;
	enum gn_hook_result ret = GN_HOOK_CONTINUE;
	int r = alias_find(pool, addr, &al, &err);
	if (r > 0 && alias_members(pool, al->id, &m, &n, &err) < 0)
		r = -1;
	if (r < 0) {
		gn_log(GN_LOG_WARN, ALIASES_AREA, "event=lookup_failed error=%s",
		       gn_log_quote(0, err != NULL ? err : "?"));
		gn_hook_call_reply(call, 451, "4.3.0", "Temporary failure, please try again later");
		ret = GN_HOOK_TEMPFAIL;
		goto out;
	}
	if (r == 0)
		goto out;
	if (aliases_settings.rcpt_sender_check && !al->flags.post_public &&
	    gn_delivery_sender(d) != NULL && strcmp(gn_delivery_source(d), "smtp") == 0) {
		/* The envelope sender, judged as the From will be after DATA:
		 * a member, or the alias itself with AllowMsgFrom. */
		const struct gn_addr *sender = gn_delivery_sender(d);
		bool allowed = same_addr(pool, sender, al->addr) && al->flags.allow_msg_from;
		for (size_t i = 0; !allowed && i < n; i++)
			allowed = same_addr(pool, sender, m[i].addr);
		if (!allowed) {
			gn_log(GN_LOG_INFO, ALIASES_AREA,
			       "event=sender_refused stage=rcpt alias=%s mail_from=%s",
			       gn_log_quote(0, gn_addr_to_string(pool, al->addr)),
			       gn_log_quote(1, gn_addr_to_string(pool, sender)));
			gn_hook_call_reply(call, 550, "5.7.2", "Not allowed to send to this alias");
			ret = GN_HOOK_REJECT;
			goto out;
		}
	}
	if (n == 0) {
		/* The schema keeps one member; an alias found empty is a
		 * change under way: the sender retries. */
		gn_hook_call_reply(call, 451, "4.3.0", "Temporary failure, please try again later");
		ret = GN_HOOK_TEMPFAIL;
		goto out;
	}
	const struct gn_addr **addrs = gn_pool_alloc(pool, n * sizeof(*addrs));
	for (size_t i = 0; i < n; i++)
		addrs[i] = m[i].addr;
	if (gn_delivery_expand(d, addrs, n, &err) < 0) {
		gn_log(GN_LOG_WARN, ALIASES_AREA, "event=expand_refused alias=%s error=%s",
		       gn_log_quote(0, gn_addr_to_string(pool, al->addr)), gn_log_quote(1, err));
		gn_hook_call_reply(call, 550, "5.7.2", "Alias has too many members for this message");
		ret = GN_HOOK_REJECT;
		goto out;
	}
	ret = GN_HOOK_ACCEPT;
out:
	gn_pool_free(&pool);
	return ret;
}

static enum gn_hook_result on_mailbox(struct gn_hook_call *call, void *data)
{
	struct gn_delivery *d = gn_hook_call_context(call);
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	struct alias *al = NULL;
	const struct gn_addr *from = NULL;
	const char *err = NULL;
	enum gn_hook_result ret = GN_HOOK_CONTINUE;
	int member = 0;
	int r = member_of_alias(pool, d, &al, &err);
	if (r > 0) {
		/* mox.md 5: the sender check, by the message's From.  One
		 * query per member copy, whatever the alias's size. */
		from = message_from(pool, d);
		member = alias_has_member(pool, al->id, from, &err);
		if (member < 0)
			r = -1;
	}
	if (r < 0) {
		gn_log(GN_LOG_WARN, ALIASES_AREA, "event=lookup_failed error=%s",
		       gn_log_quote(0, err != NULL ? err : "?"));
		gn_hook_call_reply(call, 451, "4.3.0", "Temporary failure, please try again later");
		ret = GN_HOOK_TEMPFAIL;
		goto out;
	}
	if (r == 0)
		goto out;
	bool allowed = member > 0 ||
		       (same_addr(pool, from, al->addr) ? al->flags.allow_msg_from
							: al->flags.post_public);
	if (!allowed) {
		gn_log(GN_LOG_INFO, ALIASES_AREA, "event=sender_refused alias=%s from=%s",
		       gn_log_quote(0, gn_addr_to_string(pool, al->addr)),
		       gn_log_quote(1, from != NULL ? gn_addr_to_string(pool, from) : ""));
		gn_hook_call_reply(call, 550, "5.7.2", "Not allowed to send to this alias");
		ret = GN_HOOK_REJECT;
		goto out;
	}

	/* Members left out: the sender, and explicit recipients of the same
	 * transaction (not those refused at RCPT). */
	const struct gn_addr *addr = gn_delivery_current(d);
	bool skip = same_addr(pool, addr, from);
	size_t self = gn_delivery_current_index(d);
	for (size_t i = 0; !skip && i < gn_delivery_recipient_count(d); i++) {
		const struct gn_delivery_result *res = gn_delivery_result(d, i);
		if (i == self || res == NULL || res->status == GN_DELIVERY_REJECTED ||
		    res->status == GN_DELIVERY_TEMPFAIL)
			continue;
		skip = same_addr(pool, addr, gn_delivery_recipient(d, i));
	}
	if (skip && gn_delivery_skip(d) == 0)
		ret = GN_HOOK_ACCEPT;
out:
	gn_pool_free(&pool);
	return ret;
}

static enum gn_hook_result on_send_as(struct gn_hook_call *call, void *data)
{
	const struct gn_store_send_as *s = gn_hook_call_context(call);
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	struct alias *al = NULL;
	const char *err = NULL;
	enum gn_hook_result ret = GN_HOOK_CONTINUE;
	int r = alias_find(pool, gn_store_send_as_address(s), &al, &err);
	if (r > 0 && al->flags.allow_msg_from)
		r = alias_has_account(pool, al->id, gn_store_send_as_account(s), &err);
	else if (r > 0)
		r = 0;
	if (r < 0) {
		gn_log(GN_LOG_WARN, ALIASES_AREA, "event=lookup_failed error=%s",
		       gn_log_quote(0, err != NULL ? err : "?"));
		ret = GN_HOOK_TEMPFAIL;
	} else if (r > 0) {
		ret = GN_HOOK_ACCEPT;
	}
	gn_pool_free(&pool);
	return ret;
}

extern const struct gn_migration aliases_migrations[];
extern const size_t aliases_migrations_count;

static int aliases_register(struct gn_module_ctx *ctx, const char **error_r)
{
	bool on = false;
	gn_config_bool(gn_module_config(ctx), "rcpt_sender_check", false, &on);
	aliases_settings.rcpt_sender_check = on;
	if (gn_migrate_register(ctx, aliases_migrations, aliases_migrations_count, error_r) < 0 ||
	    gn_hook_register(ctx, GN_DELIVER_RESOLVE, 0, 0, on_resolve, NULL, error_r) < 0 ||
	    gn_hook_register(ctx, GN_DELIVER_MAILBOX, -1000, 0, on_mailbox, NULL, error_r) < 0 ||
	    gn_hook_register(ctx, GN_STORE_SEND_AS, 0, 0, on_send_as, NULL, error_r) < 0)
		return -1;
	return aliases_cli_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "aliases",
	.version = "0.1.0",
	.register_fn = aliases_register,
};
