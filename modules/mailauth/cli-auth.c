/*
 * modules/mailauth/cli-auth.c: `gannet mailauth show ACCOUNT MAILBOX UID`,
 * the check results kept with a stored message (gannet/store.h struct
 * gn_store_message_auth, ABI 1.1), read through the store's public API as
 * the HTTP API and webhooks will read them.
 *
 * Output, one item a line:
 *   checked yes|no                  (no: no check ran on it: the rest absent)
 *   mail_from_validated yes|no
 *   mail_from_validation RESULT     (SPF's, RFC 8601 names)
 *   msg_from_domain DOMAIN          (when there was one)
 *   msg_from_validated yes|no
 *   msg_from_validation strict|relaxed|fail|none|temperror|permerror
 *   dkim_domain DOMAIN              (each passing d=)
 *   remote_ip ADDRESS               (when there was one)
 *
 * Exit 0 when the message exists, 1 when it does not or the store fails,
 * 2 on usage errors.
 */
#include "mailauth.h"

#include <stdio.h>
#include <stdlib.h>

#include <gannet/cli.h>
#include <gannet/store.h>

static int cli_show(int argc, char **argv, void *data)
{
	struct gn_store_account *acc = NULL;
	struct gn_store_mailbox *mb = NULL;
	struct gn_store_message *msg = NULL;
	const char *err = NULL;
	char *end = NULL;
	int rc = 1;
	(void)data;
	(void)argc;
	unsigned long uid = strtoul(argv[3], &end, 10);
	if (end == argv[3] || *end != '\0' || uid == 0 || uid > 4294967295UL) {
		fprintf(stderr, "gannet: mailauth show: \"%s\" is not a UID\n", argv[3]);
		return 2;
	}
	struct gn_pool *pool = gn_pool_new();
	int r = gn_store_account_find(pool, argv[1], &acc, &err);
	if (r <= 0) {
		fprintf(stderr, "gannet: mailauth show: %s\n", r < 0 ? err : "no such account");
		goto out;
	}
	int64_t account = gn_store_account_id(acc);
	r = gn_store_mailbox_find(pool, account, argv[2], &mb, &err);
	if (r <= 0) {
		fprintf(stderr, "gannet: mailauth show: %s\n", r < 0 ? err : "no such mailbox");
		goto out;
	}
	r = gn_store_message_get(pool, account, gn_store_mailbox_id(mb), (uint32_t)uid, &msg, &err);
	if (r <= 0) {
		fprintf(stderr, "gannet: mailauth show: %s\n", r < 0 ? err : "no such message");
		goto out;
	}
	struct gn_store_message_auth a = { .size = sizeof(a) };
	r = gn_store_message_auth_get(pool, account, gn_store_message_id(msg), &a, &err);
	if (r <= 0) {
		fprintf(stderr, "gannet: mailauth show: %s\n", r < 0 ? err : "no such message");
		goto out;
	}
	printf("checked %s\n", a.checked ? "yes" : "no");
	if (a.checked) {
		printf("mail_from_validated %s\n", a.mail_from_validated ? "yes" : "no");
		if (a.mail_from_validation != NULL)
			printf("mail_from_validation %s\n", a.mail_from_validation);
		if (a.msg_from_domain != NULL)
			printf("msg_from_domain %s\n", a.msg_from_domain);
		printf("msg_from_validated %s\n", a.msg_from_validated ? "yes" : "no");
		if (a.msg_from_validation != NULL)
			printf("msg_from_validation %s\n", a.msg_from_validation);
		for (size_t i = 0; i < a.n_dkim_domains; i++)
			printf("dkim_domain %s\n", a.dkim_domains[i]);
		if (a.remote_ip != NULL)
			printf("remote_ip %s\n", a.remote_ip);
	}
	rc = 0;
out:
	gn_pool_free(&pool);
	return rc;
}

int mailauth_cli_auth_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command cmd = {
		sizeof(struct gn_cli_command), "mailauth show", "ACCOUNT MAILBOX UID",
		"Prints the results of the checks kept with a stored message: whether\n"
		"the SPF identity and the From domain (DMARC) were validated, how, the\n"
		"domains of the DKIM signatures that passed, the client's address.",
		3, 3, cli_show, NULL,
	};
	return gn_cli_command_register(ctx, &cmd, error_r);
}
