/*
 * core/store/cli-domain.c: `gannet config domain add|rm|list` over
 * domain.c.
 */
#include "store/internal.h"

#include <stdio.h>
#include <string.h>

#define USAGE_DOMAIN_ADD "config domain add DOMAIN [--catchall-separators SEPS]"

int store_cli_domain_add(int argc, char **argv, void *data)
{
	(void)data;
	const char *name = NULL, *seps = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--catchall-separators") == 0) {
			if (++i >= argc || seps != NULL)
				return store_cli_usage(USAGE_DOMAIN_ADD);
			seps = argv[i];
		} else if (strncmp(argv[i], "--catchall-separators=", 22) == 0 && seps == NULL) {
			seps = argv[i] + 22;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "gannet: unknown option: %s\n", argv[i]);
			return store_cli_usage(USAGE_DOMAIN_ADD);
		} else if (name == NULL) {
			name = argv[i];
		} else {
			return store_cli_usage(USAGE_DOMAIN_ADD);
		}
	}
	if (name == NULL)
		return store_cli_usage(USAGE_DOMAIN_ADD);
	const char *err;
	struct gn_pool *pool = gn_pool_new();
	int r = gn_store_domain_add(pool, name, seps, NULL, &err);
	gn_pool_free(&pool);
	return r < 0 ? store_cli_fail(err) : 0;
}

int store_cli_domain_rm(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return store_cli_usage("config domain rm DOMAIN");
	const char *err;
	int r = gn_store_domain_remove(argv[1], &err);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("unknown domain: %s", argv[1]));
	return 0;
}

int store_cli_domain_list(int argc, char **argv, void *data)
{
	(void)argv;
	(void)data;
	if (argc != 1)
		return store_cli_usage("config domain list");
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_domain **list;
	size_t n;
	const char *err;
	if (gn_store_domain_list(pool, &list, &n, &err) < 0) {
		gn_pool_free(&pool);
		return store_cli_fail(err);
	}
	for (size_t i = 0; i < n; i++) {
		printf("%s", list[i]->name);
		if (strcmp(list[i]->name, list[i]->name_utf8) != 0)
			printf(" (%s)", list[i]->name_utf8);
		if (list[i]->catchall_separators[0] != '\0')
			printf(" catchall-separators=%s", list[i]->catchall_separators);
		printf("\n");
	}
	gn_pool_free(&pool);
	return 0;
}
