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
 *     inbound_timeout = "30s"; # SPF, DKIM, DMARC and iprev (SPF and
 *                            # iprev from the first bytes of the message,
 *                            # DMARC from the header's end, DKIM at the
 *                            # end of data), 1s to 50s; past it what is
 *                            # missing is temperror
 *     publicsuffix = "/usr/share/publicsuffix/public_suffix_list.dat";
 *                            # the PSL, for DMARC's organisational domains
 *                            # (Debian's publicsuffix package); read here,
 *                            # once: missing or empty is a config error
 *     domain_policies = [ "example.com dmarc_reject=junk", ... ];
 *     allow_senders = [ "partner.example" ];
 *                            # per recipient domain, what to do with DMARC
 *                            # and SPF failures, and the validated sender
 *                            # domains that skip it (policy.c)
 *   };
 *
 * SPF's lookup limits are the RFC's (spf.h); DKIM evaluates the core's
 * dkim.max_signatures (gn_dkim_max_signatures()).  It registers the admin's
 * tool, `gannet dns spf` (cli-spf.c), and the end-of-data hook on the
 * smtp module's server (inbound.c): SPF and DKIM recorded in
 * Authentication-Results and Received-SPF.
 */
#include "mailauth.h"
#include "dmarc.h"
#include "policy.h"
#include "spf.h"

#include <gannet/config.h>
#include <gannet/dkim.h>

/* mailauth.inbound_timeout's default: SPF's 20 s and some. */
#define INBOUND_TIMEOUT_MS 30000

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
	/* Under the core's 60 s for the point "smtp.data_end": ours decides
	 * what a late answer is (temperror), not the chain's default. */
	mailauth_settings.inbound_timeout_ms = INBOUND_TIMEOUT_MS;
	if (gn_config_duration_ms(sect, "inbound_timeout", INBOUND_TIMEOUT_MS, &v) > 0) {
		if (v < 1000 || v > 50 * 1000)
			gn_config_error(sect, "inbound_timeout", "%s.inbound_timeout must be from 1s "
					"to 50s", gn_config_path(sect));
		else
			mailauth_settings.inbound_timeout_ms = (unsigned)v;
	}
	policy_load(sect);
	const char *path = DMARC_PSL_PATH, *err;
	gn_config_string(sect, "publicsuffix", DMARC_PSL_PATH, &path);
	dmarc_psl_free(&mailauth_psl);
	if (dmarc_psl_load(path, &mailauth_psl, &err) < 0)
		gn_config_error(sect, "publicsuffix", "%s.publicsuffix: cannot read the public suffix "
				"list %s: %s (Debian's package publicsuffix)", gn_config_path(sect),
				path, err);
	if (mailauth_cli_spf_register(ctx, error_r) < 0 || mailauth_cli_dmarc_register(ctx, error_r) < 0 ||
	    mailauth_cli_auth_register(ctx, error_r) < 0)
		return -1;
	return mailauth_inbound_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "mailauth",
	.version = "0.1.0",
	.register_fn = mailauth_register,
};
