/*
 * modules/quota/cli.c: `gannet config account quota ACCOUNT
 * [SIZE|default|unlimited]`.
 *
 * Without a value it prints the account's limit, where it comes from and
 * its usage:
 *   limit 10485760 (10M, account)      or (..., default) / unlimited (...)
 *   used 1234
 * With one it sets the account's own limit ("default": none, the
 * setting default_limit applies).
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

static int show(struct gn_pool *pool, struct gn_store_account *a)
{
	int64_t id = gn_store_account_id(a), own, limit;
	uint64_t used;
	const char *err = NULL;
	int r = quota_account_limit(id, &own, &err);
	if (r < 0 || quota_limit(id, &limit, &err) < 0 || quota_usage(id, &used, &err) < 0)
		return fail("reading the quota", err);
	if (limit < 0)
		printf("limit unlimited (%s)\n", r > 0 ? "account" : "default");
	else
		printf("limit %" PRId64 " (%s, %s)\n", limit, quota_format_size(pool, limit),
		       r > 0 ? "account" : "default");
	printf("used %" PRIu64 "\n", used);
	return 0;
}

static int cmd_quota(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *a;
	const char *err = NULL;
	int ret = 0;
	int r = gn_store_account_find(pool, argv[1], &a, &err);
	if (r <= 0) {
		ret = r == 0 ? fail("unknown account", argv[1]) : fail("reading the account", err);
		goto out;
	}
	if (argc == 2) {
		ret = show(pool, a);
		goto out;
	}
	int64_t v = 0;
	bool def = strcmp(argv[2], "default") == 0;
	if (!def && quota_parse_size(argv[2], &v, &err) < 0) {
		fprintf(stderr, "gannet: %s: %s\nusage: gannet config account quota ACCOUNT "
			"[SIZE|default|unlimited]\n", argv[2], err);
		ret = 2;
		goto out;
	}
	const char *p[2] = { gn_pool_printf(pool, "%" PRId64, gn_store_account_id(a)),
			     def ? NULL : gn_pool_printf(pool, "%" PRId64, v) };
	if (gn_db_exec("INSERT INTO gn_quota_accounts (account_id, limit_bytes) VALUES ($1, $2) "
		       "ON CONFLICT (account_id) DO UPDATE SET limit_bytes = EXCLUDED.limit_bytes",
		       2, p, &err) < 0) {
		ret = fail("setting the quota", err);
		goto out;
	}
	ret = show(pool, a);
out:
	gn_pool_free(&pool);
	return ret;
}

int quota_cli_register(struct gn_module_ctx *ctx, const char **error_r)
{
	const struct gn_cli_command cmd = {
		.size = sizeof(cmd),
		.words = "config account quota",
		.usage = "ACCOUNT [SIZE|default|unlimited]",
		.help = "Prints the account's storage limit and usage, or sets its limit: a size in\n"
			"bytes with an optional K, M or G (powers of 1024), \"unlimited\" (or a\n"
			"negative number), or \"default\" for the quota module's default_limit.",
		.min_args = 1,
		.max_args = 2,
		.fn = cmd_quota,
	};
	return gn_cli_command_register(ctx, &cmd, error_r);
}
