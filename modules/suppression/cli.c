/*
 * modules/suppression/cli.c: `gannet queue suppress list [ACCOUNT] | add
 * ACCOUNT ADDRESS [REASON] | rm ACCOUNT ADDRESS | lookup ACCOUNT
 * ADDRESS`, mox's `mox queue suppress ...` (mox.md 2.7; its "remove" is
 * "rm" here, as in the other commands of gannet).
 *
 * list prints one line an entry:
 *   ACCOUNT BASE original=ADDRESS manual=yes|no created=TIME reason="..."
 * lookup prints the same line, or "not suppressed: BASE".
 */
#include "suppression.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int fail(const char *error)
{
	fprintf(stderr, "gannet: %s\n", error);
	return 1;
}

static void print(const struct gn_suppression *s)
{
	char when[32];
	struct tm tm;
	time_t t = s->created;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %s original=%s manual=%s created=%s reason=\"%s\"\n", s->account, s->base_address,
	       s->original_address, s->manual ? "yes" : "no", when, s->reason);
}

/* The account argv[1] and the address argv[2] (when want_addr): 0, or an
 * exit code. */
static int args(struct gn_pool *pool, char **argv, bool want_addr, int64_t *account_r,
		struct gn_addr **addr_r)
{
	struct gn_store_account *a;
	const char *err = NULL;
	int r = gn_store_account_find(pool, argv[1], &a, &err);
	if (r < 0)
		return fail(gn_pool_printf(pool, "reading the account: %s", err));
	if (r == 0)
		return fail(gn_pool_printf(pool, "unknown account: %s", argv[1]));
	*account_r = gn_store_account_id(a);
	if (!want_addr)
		return 0;
	if (gn_addr_parse(pool, argv[2], strlen(argv[2]), addr_r, &err) < 0)
		return fail(gn_pool_printf(pool, "invalid address \"%s\": %s", argv[2], err));
	return 0;
}

static int cmd_list(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t account = 0;
	struct gn_suppression *l = NULL;
	size_t n = 0;
	const char *err = NULL;
	int ret = argc > 1 ? args(pool, argv, false, &account, NULL) : 0;
	if (ret == 0 && suppression_list(pool, account, &l, &n, &err) < 0)
		ret = fail(gn_pool_printf(pool, "reading the suppression list: %s", err));
	for (size_t i = 0; ret == 0 && i < n; i++)
		print(&l[i]);
	gn_pool_free(&pool);
	return ret;
}

static int cmd_add(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t account = 0;
	struct gn_addr *addr = NULL;
	const char *err = NULL;
	int ret = args(pool, argv, true, &account, &addr);
	if (ret == 0) {
		int r = suppression_add(account, addr, true, argc > 3 ? argv[3] : "", &err);
		if (r < 0)
			ret = fail(gn_pool_printf(pool, "adding to the suppression list: %s", err));
		else if (r == 0)
			ret = fail(gn_pool_printf(pool, "already on the suppression list of account %s: %s",
						  argv[1], gn_addr_to_string(pool, suppression_base(pool, addr))));
	}
	gn_pool_free(&pool);
	return ret;
}

static int cmd_rm(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t account = 0;
	struct gn_addr *addr = NULL;
	const char *err = NULL;
	int ret = args(pool, argv, true, &account, &addr);
	if (ret == 0) {
		int r = suppression_remove(account, addr, &err);
		if (r < 0)
			ret = fail(gn_pool_printf(pool, "removing from the suppression list: %s", err));
		else if (r == 0)
			ret = fail(gn_pool_printf(pool, "not on the suppression list of account %s: %s",
						  argv[1], gn_addr_to_string(pool, suppression_base(pool, addr))));
	}
	gn_pool_free(&pool);
	return ret;
}

static int cmd_lookup(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t account = 0;
	struct gn_addr *addr = NULL;
	struct gn_suppression s;
	const char *err = NULL;
	int ret = args(pool, argv, true, &account, &addr);
	if (ret == 0) {
		int r = suppression_lookup(pool, account, addr, &s, &err);
		if (r < 0)
			ret = fail(gn_pool_printf(pool, "reading the suppression list: %s", err));
		else if (r > 0)
			print(&s);
		else
			printf("not suppressed: %s\n", gn_addr_to_string(pool, suppression_base(pool, addr)));
	}
	gn_pool_free(&pool);
	return ret;
}

int suppression_cli_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command cmds[] = {
		{ sizeof(struct gn_cli_command), "queue suppress list", "[ACCOUNT]",
		  "The suppression list of an account, or of every account: one line an address.",
		  0, 1, cmd_list, NULL },
		{ sizeof(struct gn_cli_command), "queue suppress add", "ACCOUNT ADDRESS [REASON]",
		  "Adds ADDRESS (its base address: localpart up to \"+\" or \"-\", without dots,\n"
		  "lower case) to the account's suppression list: the queue fails mail to it.",
		  2, 3, cmd_add, NULL },
		{ sizeof(struct gn_cli_command), "queue suppress rm", "ACCOUNT ADDRESS",
		  "Removes ADDRESS's base address from the account's suppression list.",
		  2, 2, cmd_rm, NULL },
		{ sizeof(struct gn_cli_command), "queue suppress lookup", "ACCOUNT ADDRESS",
		  "Whether ADDRESS's base address is on the account's suppression list.",
		  2, 2, cmd_lookup, NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (gn_cli_command_register(ctx, &cmds[i], error_r) < 0)
			return -1;
	return 0;
}
