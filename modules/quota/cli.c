/*
 * modules/quota/cli.c: `gannet config account quota ACCOUNT
 * [SIZE|default|unlimited]` and `... ACCOUNT messages
 * [COUNT|default|unlimited]`.
 *
 * Without a value it prints the account's limit, where it comes from and
 * its usage:
 *   limit 10485760 (10M, account)      or (..., default) / unlimited (...)
 *   used 1234
 * With one it sets the account's own limit ("default": none, the
 * setting default_limit applies).  The messages form prints
 *   limit 1000 (account)               or (default) / unlimited (...)
 *   used 12
 * and sets the account's own message limit (default_message_limit).
 */
#include "quota.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, const char *err)
{
	fprintf(stderr, "gannet: %s%s%s\n", what, err != NULL ? ": " : "", err != NULL ? err : "");
	return 1;
}

/* The size form: "limit ...\nused N\n"; the messages form the same with
 * a count. */
static int show(struct gn_pool *pool, struct gn_store_account *a, bool messages)
{
	int64_t id = gn_store_account_id(a);
	struct quota_limits l;
	struct quota_usage u;
	const char *err = NULL;
	if (quota_limits(id, &l, &err) < 0 || quota_usage(id, !messages, messages, &u, &err) < 0)
		return fail("reading the quota", err);
	int64_t limit = messages ? l.messages : l.bytes;
	const char *from = (messages ? l.own_messages : l.own_bytes) ? "account" : "default";
	if (limit < 0)
		printf("limit unlimited (%s)\n", from);
	else if (messages)
		printf("limit %" PRId64 " (%s)\n", limit, from);
	else
		printf("limit %" PRId64 " (%s, %s)\n", limit, quota_format_size(pool, limit), from);
	printf("used %" PRIu64 "\n", messages ? u.messages : u.bytes);
	return 0;
}

static int usage(const char *value, const char *err)
{
	fprintf(stderr, "gannet: %s: %s\nusage: gannet config account quota ACCOUNT "
		"[SIZE|default|unlimited]\n       gannet config account quota ACCOUNT messages "
		"[COUNT|default|unlimited]\n", value, err);
	return 2;
}

static int cmd_quota(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *a;
	const char *err = NULL;
	int ret = 0;
	/* ACCOUNT [SIZE...] or ACCOUNT messages [COUNT...] */
	bool messages = argc >= 3 && strcmp(argv[2], "messages") == 0;
	const char *value = messages ? (argc == 4 ? argv[3] : NULL) : (argc >= 3 ? argv[2] : NULL);
	if (argc == 4 && !messages) {
		ret = usage(argv[2], "two values are a message count: messages COUNT");
		goto out;
	}
	int r = gn_store_account_find(pool, argv[1], &a, &err);
	if (r <= 0) {
		ret = r == 0 ? fail("unknown account", argv[1]) : fail("reading the account", err);
		goto out;
	}
	if (value == NULL) {
		ret = show(pool, a, messages);
		goto out;
	}
	int64_t v = 0;
	bool def = strcmp(value, "default") == 0;
	if (!def && (messages ? quota_parse_count(value, &v, &err) : quota_parse_size(value, &v, &err)) < 0) {
		ret = usage(value, err);
		goto out;
	}
	const char *p[2] = { gn_pool_printf(pool, "%" PRId64, gn_store_account_id(a)),
			     def ? NULL : gn_pool_printf(pool, "%" PRId64, v) };
	if (gn_db_exec(messages
		       ? "INSERT INTO gn_quota_accounts (account_id, limit_messages) VALUES ($1, $2) "
			 "ON CONFLICT (account_id) DO UPDATE SET limit_messages = EXCLUDED.limit_messages"
		       : "INSERT INTO gn_quota_accounts (account_id, limit_bytes) VALUES ($1, $2) "
			 "ON CONFLICT (account_id) DO UPDATE SET limit_bytes = EXCLUDED.limit_bytes",
		       2, p, &err) < 0) {
		ret = fail("setting the quota", err);
		goto out;
	}
	ret = show(pool, a, messages);
out:
	gn_pool_free(&pool);
	return ret;
}

int quota_cli_register(struct gn_module_ctx *ctx, const char **error_r)
{
	const struct gn_cli_command cmd = {
		.size = sizeof(cmd),
		.words = "config account quota",
		.usage = "ACCOUNT [SIZE|default|unlimited] | ACCOUNT messages [COUNT|default|unlimited]",
		.help = "Prints the account's storage limit and usage, or sets its limit: a size in\n"
			"bytes with an optional K, M or G (powers of 1024), \"unlimited\" (or a\n"
			"negative number), or \"default\" for the quota module's default_limit.\n"
			"With \"messages\": the limit on the number of its messages and how many it\n"
			"stores, or sets it: a count, \"unlimited\" (or a negative number), or\n"
			"\"default\" for default_message_limit.",
		.min_args = 1,
		.max_args = 3,
		.fn = cmd_quota,
	};
	return gn_cli_command_register(ctx, &cmd, error_r);
}
