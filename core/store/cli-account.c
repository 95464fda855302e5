/*
 * core/store/cli-account.c: `gannet config account add|rm|list|disable|
 * enable|fromid` over account.c and fromid.c.
 */
#include "store/internal.h"

#include <stdio.h>
#include <string.h>

int store_cli_account_add(int argc, char **argv, void *data)
{
	(void)data;
	if (argc < 3)
		return store_cli_usage("config account add ACCOUNT ADDRESS [FULL NAME]");
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	int r = gn_store_account_add(pool, argv[1], argv[2], store_cli_rest(pool, argc, argv, 3), NULL, &err);
	gn_pool_free(&pool);
	return r < 0 ? store_cli_fail(err) : 0;
}

int store_cli_account_rm(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return store_cli_usage("config account rm ACCOUNT");
	const char *err;
	int r = gn_store_account_remove(argv[1], &err);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("unknown account: %s", argv[1]));
	return 0;
}

int store_cli_account_list(int argc, char **argv, void *data)
{
	(void)argv;
	(void)data;
	if (argc != 1)
		return store_cli_usage("config account list");
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account **list;
	size_t n;
	const char *err;
	int ret = 0;
	if (gn_store_account_list(pool, &list, &n, &err) < 0) {
		ret = store_cli_fail(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct gn_store_address **addrs;
		size_t na;
		if (gn_store_address_list(pool, list[i]->id, &addrs, &na, &err) < 0) {
			ret = store_cli_fail(err);
			goto out;
		}
		printf("%s", list[i]->name);
		for (size_t j = 0; j < na; j++)
			printf("%s%s", j == 0 ? "\t" : ", ", addrs[j]->display);
		if (list[i]->full_name[0] != '\0')
			printf("\t\"%s\"", list[i]->full_name);
		if (list[i]->login_disabled != NULL)
			printf("\tdisabled: %s", list[i]->login_disabled);
		printf("\n");
	}
out:
	gn_pool_free(&pool);
	return ret;
}

int store_cli_account_disable(int argc, char **argv, void *data)
{
	(void)data;
	if (argc < 2)
		return store_cli_usage("config account disable ACCOUNT [MESSAGE]");
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	int r = gn_store_account_disable(argv[1], store_cli_rest(pool, argc, argv, 2), &err);
	gn_pool_free(&pool);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("unknown account: %s", argv[1]));
	return 0;
}

int store_cli_account_enable(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return store_cli_usage("config account enable ACCOUNT");
	const char *err;
	int r = gn_store_account_enable(argv[1], &err);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("unknown account: %s", argv[1]));
	return 0;
}

/* `gannet config account fromid ACCOUNT add|rm ADDRESS | ACCOUNT list`:
 * the account's FromID login addresses (fromid.c). */
int store_cli_account_fromid(int argc, char **argv, void *data)
{
	static const char usage[] = "config account fromid ACCOUNT add|rm|list [ADDRESS]";
	(void)data;
	if (argc < 3)
		return store_cli_usage(usage);
	const char *err, *op = argv[2];
	if (strcmp(op, "list") == 0) {
		if (argc != 3)
			return store_cli_usage(usage);
		struct gn_pool *pool = gn_pool_new();
		struct gn_store_account *acc;
		const char **list;
		size_t n;
		int ret = 0, r = gn_store_account_find(pool, argv[1], &acc, &err);
		if (r == 0)
			err = store_errf("unknown account: %s", argv[1]);
		if (r <= 0 || gn_store_fromid_login_list(pool, gn_store_account_id(acc), &list, &n, &err) < 0)
			ret = store_cli_fail(err);
		else
			for (size_t i = 0; i < n; i++)
				printf("%s\n", list[i]);
		gn_pool_free(&pool);
		return ret;
	}
	if (argc != 4 || (strcmp(op, "add") != 0 && strcmp(op, "rm") != 0))
		return store_cli_usage(usage);
	if (strcmp(op, "add") == 0)
		return gn_store_fromid_login_add(argv[1], argv[3], &err) < 0 ? store_cli_fail(err) : 0;
	int r = gn_store_fromid_login_remove(argv[1], argv[3], &err);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("not a FromID login address of %s: %s", argv[1], argv[3]));
	return 0;
}
