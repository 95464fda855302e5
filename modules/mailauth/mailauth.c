/*
 * modules/mailauth/mailauth.c: the mailauth module (issue 10): checks of
 * what comes in (SPF now; DKIM, DMARC and iprev later) and transport
 * security of what goes out (later).  README beside says what exists.
 *
 * Loaded only when the config names it (modules.load).  Its section:
 *
 *   mailauth = {
 *     spf_timeout = "20s";   # a whole SPF evaluation, 1s to 10m; past it
 *                            # temperror (RFC 7208 4.6.4: at least 20 s)
 *     publicsuffix = "/usr/share/publicsuffix/public_suffix_list.dat";
 *                            # the PSL, for DMARC's organisational domains
 *                            # (Debian's publicsuffix package); read here,
 *                            # once: missing or empty is a config error
 *   };
 *
 * SPF's lookup limits are the RFC's (spf.h).  For now it registers the
 * admin's tool, `gannet dns spf` (cli-spf.c); the delivery hooks come with
 * the Authentication-Results writer.
 */
#include "mailauth.h"
#include "dmarc.h"
#include "spf.h"

#include <gannet/config.h>

struct mailauth_settings mailauth_settings;

static int mailauth_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	long long v;
	mailauth_settings.spf_timeout_ms = SPF_TIMEOUT_MS;
	if (gn_config_duration_ms(sect, "spf_timeout", SPF_TIMEOUT_MS, &v) > 0) {
		if (v < 1000 || v > 600 * 1000)
			gn_config_error(sect, "spf_timeout", "%s.spf_timeout must be from 1s to 10m",
					gn_config_path(sect));
		else
			mailauth_settings.spf_timeout_ms = (unsigned)v;
	}
	const char *path = DMARC_PSL_PATH, *err;
	gn_config_string(sect, "publicsuffix", DMARC_PSL_PATH, &path);
	dmarc_psl_free(&mailauth_psl);
	if (dmarc_psl_load(path, &mailauth_psl, &err) < 0)
		gn_config_error(sect, "publicsuffix", "%s.publicsuffix: cannot read the public suffix "
				"list %s: %s (Debian's package publicsuffix)", gn_config_path(sect),
				path, err);
	if (mailauth_cli_spf_register(ctx, error_r) < 0)
		return -1;
	return mailauth_cli_dmarc_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "mailauth",
	.version = "0.1.0",
	.register_fn = mailauth_register,
};
