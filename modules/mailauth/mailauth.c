/*
 * modules/mailauth/mailauth.c: the mailauth module (issue 10): checks of
 * what comes in (SPF now; DKIM, DMARC and iprev later) and transport
 * security of what goes out (later).  README beside says what exists.
 *
 * Loaded only when the config names it (modules.load).  It has no config
 * section yet: SPF's limits are the RFC's (spf.h).  For now it registers
 * the admin's tool, `gannet dns spf` (cli-spf.c); the delivery hooks come
 * with the Authentication-Results writer.
 */
#include "mailauth.h"

static int mailauth_register(struct gn_module_ctx *ctx, const char **error_r)
{
	return mailauth_cli_spf_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "mailauth",
	.version = "0.1.0",
	.register_fn = mailauth_register,
};
