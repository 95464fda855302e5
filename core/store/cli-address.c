/*
 * core/store/cli-address.c: `gannet config address add|rm` over address.c.
 */
#include "store/internal.h"

#include <stdio.h>

int store_cli_address_add(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 3)
		return store_cli_usage("config address add ADDRESS ACCOUNT");
	const char *err;
	return gn_store_address_add(argv[1], argv[2], &err) < 0 ? store_cli_fail(err) : 0;
}

int store_cli_address_rm(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return store_cli_usage("config address rm ADDRESS");
	const char *err;
	int r = gn_store_address_remove(argv[1], &err);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("unknown address: %s", argv[1]));
	return 0;
}
