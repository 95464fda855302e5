/*
 * core/auth/cli-cram-md5.c: `gannet config account cram-md5 ACCOUNT
 * [on|off]`: the CRAM-MD5 opt-in of an account (gn_auth_cram_md5_set()).
 *
 * CRAM-MD5 needs password-equivalent state (RFC 2195: the server keeps
 * HMAC-MD5 midstates of the password, unsalted), so it is stored only for
 * accounts that ask for it.  on: stored at the next password set, which
 * the output says; off: removed at once.  Without on|off: prints the
 * account's state.
 */
#include "auth/internal.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: gannet config account cram-md5 ACCOUNT [on|off]\n");
	return 2;
}

static int cmd_cram_md5(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	if (argc < 2 || argc > 3 || argv[1][0] == '-')
		return usage();
	int want = -1;
	if (argc == 3) {
		if (strcmp(argv[2], "on") == 0)
			want = 1;
		else if (strcmp(argv[2], "off") == 0)
			want = 0;
		else
			return usage();
	}
	const char *params[] = { argv[1] };
	PGresult *res = db_query("SELECT id FROM gn_accounts WHERE name = $1",
				 1, params, &error);
	if (res == NULL) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		fprintf(stderr, "gannet: no such account: %s\n", argv[1]);
		return 1;
	}
	int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);

	if (want >= 0 && gn_auth_cram_md5_set(id, want == 1, &error) < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	bool on, stored;
	if (gn_auth_cram_md5_get(id, &on, &stored, &error) < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	if (!on)
		printf("CRAM-MD5 is off for %s%s\n", argv[1],
		       want == 0 ? ": its stored state was removed" : "");
	else if (stored)
		printf("CRAM-MD5 is on for %s, its state is stored\n", argv[1]);
	else
		printf("CRAM-MD5 is on for %s; its state is written at the next password set "
		       "(gannet setpassword %s): until then CRAM-MD5 logins fail\n",
		       argv[1], argv[1]);
	return 0;
}

int cli_cram_md5_register(void)
{
	const char *error;
	if (gn_cli_register(modules_core_ctx(), "config account cram-md5",
			    "ACCOUNT [on|off]  (CRAM-MD5 needs password-equivalent state: off by default)",
			    cmd_cram_md5, NULL, &error) < 0) {
		conf_error("%s", error);
		return -1;
	}
	return 0;
}
