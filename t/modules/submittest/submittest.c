/*
 * t/modules/submittest/submittest.c: a module that uses the service
 * "submission.v1" (gannet/submit.h) the way the webapi's Send does: it
 * composes a message with gn_compose() (gannet/compose.h) and queues it;
 * for t/integration/224-submission-service.t.
 *
 *   gannet submittest send ACCOUNT LOGIN FROM HOLD EXTRA RCPT...
 *
 * HOLD: seconds from now (0: none); EXTRA: "key=value" or "-".  Prints
 * "message_id=<...>" and one line "rcpt=ADDR queue_id=N fromid=ID|-" per
 * recipient (exit 0), or "refused status=N text=..." (exit 1).  Requires
 * the submission module, so that the service is there when it is loaded.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gannet/gannet.h>

static int cmd_send(int argc, char **argv, void *data)
{
	const struct gn_submit_ops *ops = gn_service_lookup(GN_SUBMIT_SERVICE);
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	int rc = 2;
	(void)data;

	if (!GN_OPS_HAS(ops, submit)) {
		fprintf(stderr, "submittest: no service %s\n", GN_SUBMIT_SERVICE);
		goto out;
	}
	/* argv[1..]: the arguments after the words. */
	const char *account = argv[1], *login = argv[2], *from_s = argv[3];
	long hold = strtol(argv[4], NULL, 10);
	const char *extra_s = argv[5];
	size_t n = (size_t)(argc - 6);

	struct gn_store_account *acc;
	if (gn_store_account_find(pool, account, &acc, &err) <= 0) {
		fprintf(stderr, "submittest: no account %s\n", account);
		goto out;
	}
	struct gn_addr *from;
	if (gn_addr_parse(pool, from_s, strlen(from_s), &from, &err) < 0) {
		fprintf(stderr, "submittest: bad From: %s\n", err);
		goto out;
	}
	const struct gn_addr **rcpts = gn_pool_alloc(pool, (n + 1) * sizeof(*rcpts));
	struct gn_compose_address *to = gn_pool_alloc(pool, (n + 1) * sizeof(*to));
	for (size_t i = 0; i < n; i++) {
		struct gn_addr *a;
		if (gn_addr_parse(pool, argv[6 + i], strlen(argv[6 + i]), &a, &err) < 0) {
			fprintf(stderr, "submittest: bad recipient: %s\n", err);
			goto out;
		}
		rcpts[i] = a;
		to[i].address = argv[6 + i];
	}

	struct gn_compose_address f = { "Service Test", from_s };
	struct gn_compose c;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.from = &f;
	c.to = to;
	c.n_to = n;
	c.subject = "Grüße from submission.v1";
	c.text = "Hello through the service.\n";
	c.html = "<p>Hello through the service.</p>\n";
	c.host = "mail.test";
	struct gn_compose_result cr;
	memset(&cr, 0, sizeof(cr));
	cr.size = sizeof(cr);
	if (gn_compose(pool, &c, &cr) < 0) {
		fprintf(stderr, "submittest: compose: %s\n", cr.error_text);
		goto out;
	}

	struct gn_submit_extra extra = { NULL, NULL };
	if (strcmp(extra_s, "-") != 0) {
		const char *eq = strchr(extra_s, '=');
		if (eq == NULL) {
			fprintf(stderr, "submittest: EXTRA is key=value or -\n");
			gn_free(cr.data);
			goto out;
		}
		extra.key = gn_pool_strndup(pool, extra_s, (size_t)(eq - extra_s));
		extra.value = eq + 1;
	}
	struct gn_submit_request req;
	memset(&req, 0, sizeof(req));
	req.size = sizeof(req);
	req.account_id = gn_store_account_id(acc);
	req.login = login;
	req.from = from;
	req.recipients = rcpts;
	req.n_recipients = n;
	req.data = cr.data;
	req.len = cr.len;
	req.message_id = cr.message_id;
	req.smtputf8 = cr.smtputf8;
	req.hold_until = hold != 0 ? time(NULL) + hold : 0;
	req.extra = extra.key != NULL ? &extra : NULL;
	req.n_extra = extra.key != NULL ? 1 : 0;

	struct gn_submit_result res;
	memset(&res, 0, sizeof(res));
	res.size = sizeof(res);
	if (ops->submit(pool, &req, &res) < 0) {
		printf("refused status=%d text=%s\n", (int)res.status,
		       res.error_text != NULL ? res.error_text : "-");
		rc = 1;
	} else {
		printf("message_id=%s\n", cr.message_id);
		for (size_t i = 0; i < res.n_rcpts; i++)
			printf("rcpt=%s queue_id=%" PRId64 " fromid=%s\n", argv[6 + i],
			       res.rcpts[i].queue_id,
			       res.rcpts[i].from_id != NULL ? res.rcpts[i].from_id : "-");
		rc = 0;
	}
	gn_free(cr.data);
out:
	gn_pool_free(&pool);
	return rc;
}

static int submittest_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command send = {
		.size = sizeof(struct gn_cli_command),
		.words = "submittest send",
		.usage = "ACCOUNT LOGIN FROM HOLD EXTRA RCPT...",
		.help = "Composes a message and queues it through submission.v1.",
		.min_args = 6,
		.max_args = -1,
		.fn = cmd_send,
	};
	return gn_cli_command_register(ctx, &send, error_r);
}

static const struct gn_module_require submittest_requires[] = {
	{ "submission", 0 },
	{ NULL, 0 },
};

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "submittest",
	.version = "1",
	.requires = submittest_requires,
	.register_fn = submittest_register,
};
