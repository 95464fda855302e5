/*
 * modules/quota/quota.c: the quota module (README beside; mox.md 7): a
 * limit on the total size of an account's stored messages and one on
 * their number (RFC 9208 STORAGE and MESSAGE), each with a global default
 * (settings default_limit, default_message_limit) and an account's own
 * (table gn_quota_accounts, `gannet config account quota`).
 *
 * Usage is the store's exact counter: the account's total_size (settled
 * messages; an expunged message, even one whose UID is still kept for
 * QRESYNC, is no longer in it) plus its pending deliveries
 * (gn_store_account_pending_size()); messages likewise
 * (gn_store_account_message_count(): the mailboxes' counters and the
 * pending rows).  A check is used + new <= limit, for each resource.
 *
 * Settings (section "quota"):
 *   default_limit  "10M", "1G", "512K", bytes, or "unlimited" / "-1"
 *                  (default: unlimited; "0" is unlimited too, as in mox)
 *   default_message_limit  a number of messages (an integer), or -1
 *                  (default: unlimited; 0 is unlimited too, as
 *                  default_limit)
 *   warn_percent   1..100, or 0 for no warning (default 90), of either
 */
#include "quota.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct quota_settings quota_settings = { -1, -1, 90 };

int quota_parse_size(const char *s, int64_t *bytes_r, const char **error_r)
{
	if (s == NULL || *s == '\0') {
		*error_r = "empty size";
		return -1;
	}
	/* Negative: unlimited (mox.md 7). */
	if (strcmp(s, "unlimited") == 0 ||
	    (s[0] == '-' && s[1] >= '1' && s[1] <= '9' && strspn(s + 1, "0123456789") == strlen(s + 1))) {
		*bytes_r = -1;
		return 0;
	}
	if (*s < '0' || *s > '9') {
		*error_r = "a size is a number of bytes with an optional K, M or G, or unlimited";
		return -1;
	}
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	else if (*end == 'g' || *end == 'G')
		shift = 30;
	if (shift != 0)
		end++;
	if (errno != 0 || *end != '\0') {
		*error_r = "a size is a number of bytes with an optional K, M or G, or unlimited";
		return -1;
	}
	/* At most 2^62 bytes: far past any disk, and sums stay in int64. */
	if (v > (1ULL << (62 - shift))) {
		*error_r = "size too large";
		return -1;
	}
	*bytes_r = (int64_t)(v << shift);
	return 0;
}

const char *quota_format_size(struct gn_pool *pool, int64_t bytes)
{
	if (bytes < 0)
		return "unlimited";
	static const char units[] = "GMK";
	for (int i = 0; i < 3; i++) {
		int64_t unit = (int64_t)1 << (10 * (3 - i));
		if (bytes != 0 && bytes % unit == 0)
			return gn_pool_printf(pool, "%" PRId64 "%c", bytes / unit, units[i]);
	}
	return gn_pool_printf(pool, "%" PRId64, bytes);
}

int quota_parse_count(const char *s, int64_t *count_r, const char **error_r)
{
	if (s != NULL && (strcmp(s, "unlimited") == 0 ||
			  (s[0] == '-' && s[1] >= '1' && s[1] <= '9' &&
			   strspn(s + 1, "0123456789") == strlen(s + 1)))) {
		*count_r = -1;
		return 0;
	}
	if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s)) {
		*error_r = "a message count is a number, or unlimited";
		return -1;
	}
	/* At most 2^62: sums stay in int64. */
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno != 0 || v > (1ULL << 62)) {
		*error_r = "message count too large";
		return -1;
	}
	*count_r = (int64_t)v;
	return 0;
}

int quota_limits(int64_t account_id, struct quota_limits *limits_r, const char **error_r)
{
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, account_id);
	const char *p[1] = { id };
	struct gn_db_result *res = gn_db_query("SELECT limit_bytes, limit_messages FROM gn_quota_accounts "
					       "WHERE account_id = $1", 1, p, error_r);
	if (res == NULL)
		return -1;
	bool row = gn_db_result_rows(res) > 0;
	limits_r->own_bytes = row && !gn_db_result_is_null(res, 0, 0);
	limits_r->own_messages = row && !gn_db_result_is_null(res, 0, 1);
	limits_r->bytes = limits_r->own_bytes ? strtoll(gn_db_result_value(res, 0, 0), NULL, 10)
					      : quota_settings.default_limit;
	limits_r->messages = limits_r->own_messages ? strtoll(gn_db_result_value(res, 0, 1), NULL, 10)
						    : quota_settings.default_message_limit;
	gn_db_result_free(&res);
	if (limits_r->bytes < 0)
		limits_r->bytes = -1;
	if (limits_r->messages < 0)
		limits_r->messages = -1;
	return 0;
}

int quota_usage(int64_t account_id, bool bytes, bool messages, struct quota_usage *usage_r,
		const char **error_r)
{
	usage_r->bytes = 0;
	usage_r->messages = 0;
	if (messages && gn_store_account_message_count(account_id, &usage_r->messages, error_r) < 0)
		return -1;
	if (!bytes)
		return 0;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *a;
	uint64_t pending = 0;
	int r = gn_store_account_get(pool, account_id, &a, error_r);
	if (r == 0)
		*error_r = "no such account";
	if (r > 0) {
		usage_r->bytes = gn_store_account_total_size(a);
		r = gn_store_account_pending_size(account_id, &pending, error_r) < 0 ? -1 : 1;
		usage_r->bytes += pending;
	}
	gn_pool_free(&pool);
	return r > 0 ? 0 : -1;
}

static bool fits(uint64_t used, uint64_t more, int64_t limit)
{
	return limit < 0 || (used <= (uint64_t)limit && more <= (uint64_t)limit - used);
}

int quota_fits(int64_t account_id, uint64_t bytes, uint64_t messages, struct quota_limits *limits_r,
	       enum quota_resource *over_r, const char **error_r)
{
	struct quota_usage u;
	if (quota_limits(account_id, limits_r, error_r) < 0)
		return -1;
	if (limits_r->bytes < 0 && limits_r->messages < 0)
		return 1;
	if (quota_usage(account_id, limits_r->bytes >= 0, limits_r->messages >= 0, &u, error_r) < 0)
		return -1;
	if (!fits(u.bytes, bytes, limits_r->bytes)) {
		*over_r = QUOTA_STORAGE;
		return 0;
	}
	if (!fits(u.messages, messages, limits_r->messages)) {
		*over_r = QUOTA_MESSAGES;
		return 0;
	}
	return 1;
}

/* ---- the module ---- */

extern const struct gn_migration quota_migrations[];
extern const size_t quota_migrations_count;

static int quota_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	const char *def;
	long long pct;
	if (gn_config_string(sect, "default_limit", "unlimited", &def) > 0) {
		const char *why;
		int64_t v;
		if (quota_parse_size(def, &v, &why) < 0)
			gn_config_error(sect, "default_limit", "quota.default_limit \"%s\": %s", def, why);
		else
			quota_settings.default_limit = v > 0 ? v : -1;
	}
	long long msgs;
	if (gn_config_int(sect, "default_message_limit", -1, -1, 1LL << 62, &msgs) > 0)
		quota_settings.default_message_limit = msgs > 0 ? msgs : -1;
	gn_config_int(sect, "warn_percent", 90, 0, 100, &pct);
	quota_settings.warn_percent = (int)pct;
	if (gn_migrate_register(ctx, quota_migrations, quota_migrations_count, error_r) < 0 ||
	    quota_deliver_register(ctx, error_r) < 0 || quota_imap_register(ctx, error_r) < 0 ||
	    quota_cli_register(ctx, error_r) < 0)
		return -1;
	return 0;
}

/* imap first when it is loaded: its service is looked up in register. */
static const struct gn_module_require quota_requires[] = {
	{ "imap", GN_REQUIRE_OPTIONAL },
	{ NULL, 0 },
};

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "quota",
	.version = "0.1.0",
	.requires = quota_requires,
	.register_fn = quota_register,
};
