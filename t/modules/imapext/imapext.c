/*
 * t/modules/imapext/imapext.c: a module that extends the IMAP server
 * through the imap.v1 service (gannet/imap.h) as the quota module will,
 * for t/integration/170-imap-service.t.  Built like any module: the
 * installed headers only, one exported symbol.
 *
 *   XWHO [args...]        "* XWHO <account> <login> <n args> <selected>"
 *                         where each argument is echoed: atoms as they
 *                         are, strings quoted, NIL, lists as (n)
 *   XSILENT               answers nothing (the server must say NO)
 *   capability            X-GANNET-TEST, once logged in
 *   STATUS items          X-MAILBOX-ID (the mailbox's store id),
 *                         X-BROKEN (fails: the STATUS answers NO)
 *
 * At register it also checks that the service refuses what it must
 * (a name the server has, a lower-case name, a second registration),
 * and fails the module's load when one is accepted.
 */
#include <gannet/gannet.h>
#include <gannet/imap.h>
#include <gannet/service.h>

#include <string.h>

static const struct gn_imap_v1 *imap;

static void xwho(struct gn_imap_session *s, const char *name, const struct gn_imap_args *args,
		 void *data)
{
	(void)name;
	(void)data;
	struct gn_buf *b = gn_buf_new(0);
	bool ro;
	int64_t sel = imap->session_selected(s, &ro);
	(void)gn_buf_printf(b, "XWHO %s %s %u %s", imap->session_account_name(s), imap->session_login(s),
			    imap->args_count(args), sel > 0 ? (ro ? "examined" : "selected") : "none");
	for (unsigned i = 0; i < imap->args_count(args); i++) {
		const struct gn_imap_arg *a = imap->args_get(args, i);
		size_t len;
		const char *str = imap->arg_str(a, &len);
		switch (imap->arg_type(a)) {
		case GN_IMAP_ARG_ATOM:
			(void)gn_buf_printf(b, " %s", str);
			break;
		case GN_IMAP_ARG_STRING:
		case GN_IMAP_ARG_LITERAL:
			(void)gn_buf_append_str(b, " ");
			imap->append_string(b, str, len);
			break;
		case GN_IMAP_ARG_NIL:
			(void)gn_buf_append_str(b, " NIL");
			break;
		case GN_IMAP_ARG_LIST:
			(void)gn_buf_printf(b, " (%u)", imap->args_count(imap->arg_list(a)));
			break;
		}
	}
	imap->untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
	imap->tagged(s, "OK", NULL, "XWHO completed");
}

static void xsilent(struct gn_imap_session *s, const char *name, const struct gn_imap_args *args,
		    void *data)
{
	(void)s;
	(void)name;
	(void)args;
	(void)data;
}

static int mailbox_id(struct gn_imap_session *s, int64_t id, uint64_t *value_r, void *data)
{
	(void)s;
	(void)data;
	*value_r = (uint64_t)id;
	return 0;
}

static int broken(struct gn_imap_session *s, int64_t id, uint64_t *value_r, void *data)
{
	(void)s;
	(void)id;
	(void)value_r;
	(void)data;
	gn_log(GN_LOG_ERROR, "imapext", "event=status_item_failed item=X-BROKEN");
	return -1;
}

static int refused(int r, const char *what, const char **error_r)
{
	if (r == 0) {
		*error_r = what;
		return -1;
	}
	return 0;
}

static int imapext_register(struct gn_module_ctx *ctx, const char **error_r)
{
	imap = gn_service_lookup(GN_IMAP_V1);
	if (imap == NULL) {
		*error_r = "imapext needs the imap module (imap.v1), loaded before it";
		return -1;
	}
	const unsigned in = GN_IMAP_STATE_AUTH | GN_IMAP_STATE_SELECTED;
	const char *e;
	if (imap->command_register(ctx, "XWHO", in, xwho, NULL, error_r) < 0 ||
	    imap->command_register(ctx, "XSILENT", in, xsilent, NULL, error_r) < 0 ||
	    imap->capability_add(ctx, "X-GANNET-TEST", in, error_r) < 0 ||
	    imap->status_item_register(ctx, "X-MAILBOX-ID", mailbox_id, NULL, error_r) < 0 ||
	    imap->status_item_register(ctx, "X-BROKEN", broken, NULL, error_r) < 0)
		return -1;
	if (refused(imap->command_register(ctx, "FETCH", in, xwho, NULL, &e),
		    "imap.v1 let FETCH be registered again", error_r) < 0 ||
	    refused(imap->command_register(ctx, "XWHO", in, xwho, NULL, &e),
		    "imap.v1 let XWHO be registered twice", error_r) < 0 ||
	    refused(imap->command_register(ctx, "xlower", in, xwho, NULL, &e),
		    "imap.v1 took a lower-case name", error_r) < 0 ||
	    refused(imap->status_item_register(ctx, "MESSAGES", mailbox_id, NULL, &e),
		    "imap.v1 let MESSAGES be registered again", error_r) < 0 ||
	    refused(imap->command_register(ctx, "XNOSTATE", 0, xwho, NULL, &e),
		    "imap.v1 took a command valid in no state", error_r) < 0)
		return -1;
	return 0;
}

static int imapext_start(struct gn_module_ctx *ctx, const char **error_r)
{
	const char *e;
	if (imap->capability_add(ctx, "X-LATE", GN_IMAP_STATE_AUTH, &e) == 0) {
		*error_r = "imap.v1 took a capability after the register phase";
		return -1;
	}
	return 0;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "imapext",
	.version = "1",
	.register_fn = imapext_register,
	.start_fn = imapext_start,
};
