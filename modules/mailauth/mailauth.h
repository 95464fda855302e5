/*
 * modules/mailauth/mailauth.h: what the mailauth module's files share.
 */
#ifndef MAILAUTH_H
#define MAILAUTH_H

#include <gannet/module.h>

/* cli-spf.c: registers `gannet dns spf` (register phase). */
int mailauth_cli_spf_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
