/*
 * t/modules/deliverfail/deliverfail.c: a "deliver.mailbox" hook that fails
 * recipients whose localpart starts with "full" (552 5.2.2, as a quota
 * would), for the tests of what happens to a recipient that fails after
 * the end of data (t/integration/232-smtp-late-dsn.t), and those whose
 * localpart starts with "overquota" for a while (452 4.2.2, as the quota
 * module answers: t/integration/264-aliases-results.t).  Built like any
 * module, <gannet/gannet.h> only.
 */
#include <string.h>
#include <strings.h>
#include <gannet/gannet.h>

static enum gn_hook_result mailbox_hook(struct gn_hook_call *call, void *data)
{
	struct gn_delivery *d = gn_hook_call_context(call);
	const struct gn_addr *a = gn_delivery_current(d);
	(void)data;
	if (a != NULL && strncasecmp(a->localpart, "overquota", 9) == 0) {
		gn_hook_call_reply(call, 452, "4.2.2", "account storage full (deliverfail)");
		return GN_HOOK_TEMPFAIL;
	}
	if (a == NULL || strncasecmp(a->localpart, "full", 4) != 0)
		return GN_HOOK_CONTINUE;
	gn_hook_call_reply(call, 552, "5.2.2", "mailbox full (deliverfail)");
	return GN_HOOK_REJECT;
}

static int deliverfail_register(struct gn_module_ctx *ctx, const char **error_r)
{
	return gn_hook_register(ctx, GN_DELIVER_MAILBOX, 0, 0, mailbox_hook, NULL, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "deliverfail",
	.version = "0.1.0",
	.register_fn = deliverfail_register,
};
