/*
 * core/store/cli.c: the store's commands (`gannet config domain|account|
 * address|dkim ...`, `gannet dkim sign`): what their files share, and
 * their registration.  Each subject's handlers are in its own file beside
 * its data code: cli-domain.c, cli-account.c, cli-address.c, cli-dkim.c.
 */
#include "store/internal.h"

#include <stdio.h>

int store_cli_usage(const char *usage)
{
	fprintf(stderr, "gannet: usage: gannet %s\n", usage);
	return 2;
}

int store_cli_fail(const char *error)
{
	fprintf(stderr, "gannet: %s\n", error);
	return 1;
}

/* The arguments from i on joined with spaces (a full name or message
 * given without quotes), from pool; NULL when there are none. */
const char *store_cli_rest(struct gn_pool *pool, int argc, char **argv, int i)
{
	if (i >= argc)
		return NULL;
	struct gn_buf *b = gn_buf_new(0);
	for (int j = i; j < argc; j++)
		gn_buf_printf(b, "%s%s", j > i ? " " : "", argv[j]);
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

int store_cli_register(void)
{
	static const struct {
		const char *words, *usage;
		gn_cli_fn *fn;
	} cmds[] = {
		{ "config domain add", "DOMAIN [--catchall-separators SEPS]", store_cli_domain_add },
		{ "config domain rm", "DOMAIN", store_cli_domain_rm },
		{ "config domain list", "", store_cli_domain_list },
		{ "config account add", "ACCOUNT ADDRESS [FULL NAME]", store_cli_account_add },
		{ "config account rm", "ACCOUNT", store_cli_account_rm },
		{ "config account list", "", store_cli_account_list },
		{ "config account disable", "ACCOUNT [MESSAGE]", store_cli_account_disable },
		{ "config account enable", "ACCOUNT", store_cli_account_enable },
		{ "config account fromid", "ACCOUNT add|rm|list [ADDRESS]", store_cli_account_fromid },
		{ "config address add", "ADDRESS ACCOUNT", store_cli_address_add },
		{ "config address rm", "ADDRESS", store_cli_address_rm },
		{ "config dkim add", "DOMAIN SELECTOR [rsa|ed25519]", store_cli_dkim_add },
		{ "config dkim rm", "DOMAIN SELECTOR", store_cli_dkim_rm },
		{ "config dkim list", "[DOMAIN]", store_cli_dkim_list },
		{ "config dkim export", "DOMAIN SELECTOR", store_cli_dkim_export },
		{ "config dkim enable", "DOMAIN SELECTOR", store_cli_dkim_enable },
		{ "config dkim disable", "DOMAIN SELECTOR", store_cli_dkim_disable },
		{ "dkim sign", "DOMAIN < MESSAGE", store_cli_dkim_sign },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *err;
		if (gn_cli_register(modules_core_ctx(), cmds[i].words, cmds[i].usage,
				    cmds[i].fn, NULL, &err) < 0) {
			conf_error("store: %s", err);
			return -1;
		}
	}
	return 0;
}
