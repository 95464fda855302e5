/*
 * modules/suppression/suppression.c: the module.  It provides the service
 * "suppression.v1" (gannet/suppression.h) that the core's queue consults
 * at each delivery attempt and after each failure for good with a remote
 * SMTP code, and registers `gannet queue suppress ...`.  mox.md 2.7 is
 * what it matches; the README says where it differs.
 */
#include "suppression.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool suppression_immediate(int code, const char *enhanced)
{
	switch (code) {
	case 521:	/* the host accepts no mail */
	case 550:	/* mailbox unavailable */
	case 551:	/* user not local */
	case 553:	/* mailbox name not allowed */
	case 556:	/* the domain accepts no mail */
		return true;
	}
	if (code / 100 != 5 || enhanced == NULL)
		return false;
	/* The subject.detail after the class: "5.1.1" gives "1.1". */
	const char *sd = strchr(enhanced, '.');
	if (sd == NULL)
		return false;
	sd++;
	static const char *const codes[] = { "1.1", "1.2", "1.3", "1.6", "2.1", "7.1" };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(sd, codes[i]) == 0)
			return true;
	return false;
}

int suppression_failure(const struct gn_suppression_failure *f, const char **error_r)
{
	if (f == NULL || f->size < sizeof(struct gn_suppression_failure) || f->rcpt == NULL) {
		*error_r = "malformed struct gn_suppression_failure";
		return -1;
	}
	struct gn_pool *pool = gn_pool_new();
	const char *source = f->source != NULL ? f->source : "queue";
	const char *sd = f->enhanced != NULL ? strchr(f->enhanced, '.') : NULL;
	const char *secode = sd != NULL ? sd + 1 : "";
	const char *reason = NULL;
	int r = suppression_lookup(pool, f->account_id, f->rcpt, NULL, error_r);
	if (r != 0)
		goto out;	/* listed already (mox: nothing), or an error */
	if (suppression_immediate(f->code, f->enhanced))
		reason = gn_pool_printf(pool, "delivery failure from %s with smtp code %d, enhanced code \"%s\"",
					source, f->code, secode);
	else if (f->previous >= 2 && f->previous_failed >= 2)
		reason = gn_pool_printf(pool, "delivery failure from %s and three consecutive failures", source);
	else
		goto out;
	r = suppression_add(f->account_id, f->rcpt, false, reason, error_r);
	if (r > 0)
		gn_log(GN_LOG_INFO, SUPPRESSION_AREA, "event=suppression_added account=%" PRId64 " address=%s "
		       "reason=%s", f->account_id, gn_log_quote(0, gn_addr_to_string(pool, f->rcpt)),
		       gn_log_quote(1, reason));
out:
	gn_pool_free(&pool);
	return r;
}

static const struct gn_suppression_ops ops = {
	.size = sizeof(struct gn_suppression_ops),
	.lookup = suppression_lookup,
	.add = suppression_add,
	.remove = suppression_remove,
	.list = suppression_list,
	.failure = suppression_failure,
	.lookup_many = suppression_lookup_many,
};

extern const struct gn_migration suppression_migrations[];
extern const size_t suppression_migrations_count;

static int suppression_register(struct gn_module_ctx *ctx, const char **error_r)
{
	if (gn_migrate_register(ctx, suppression_migrations, suppression_migrations_count, error_r) < 0 ||
	    gn_service_provide(ctx, GN_SUPPRESSION_SERVICE, &ops, error_r) < 0)
		return -1;
	return suppression_cli_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "suppression",
	.version = "0.1.0",
	.register_fn = suppression_register,
};
