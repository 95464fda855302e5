/*
 * modules/mailauth/mailauth.h: what the mailauth module's files share.
 */
#ifndef MAILAUTH_H
#define MAILAUTH_H

#include <gannet/module.h>

/* The module's settings (gannet.conf, mailauth { ... }), read at
 * register. */
struct mailauth_settings {
	unsigned spf_timeout_ms;	/* spf_timeout: a whole SPF evaluation */
	/* inbound_timeout: SPF, DKIM and iprev at the end of data, all of it */
	unsigned inbound_timeout_ms;
};
extern struct mailauth_settings mailauth_settings;

/* cli-spf.c: registers `gannet dns spf` (register phase). */
int mailauth_cli_spf_register(struct gn_module_ctx *ctx, const char **error_r);

/* inbound.c: the end-of-data hook on the smtp module's server (register
 * phase). */
int mailauth_inbound_register(struct gn_module_ctx *ctx, const char **error_r);

/* cli-dmarc.c: registers `gannet dns dmarc` and `gannet dmarc check`
 * (register phase). */
int mailauth_cli_dmarc_register(struct gn_module_ctx *ctx, const char **error_r);

/* cli-auth.c: registers `gannet mailauth show` (register phase). */
int mailauth_cli_auth_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
