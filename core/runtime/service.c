/*
 * core/runtime/service.c: named, versioned operation tables (gannet/service.h).
 *
 * One module provides a name ("quota.v1") with a static table whose first
 * member is its own size; others look it up by name.  Provided in the
 * register phase only, so the set is fixed before any process starts and
 * lookups need no locking.  A handful of services exist: the registry's
 * list will do.
 */
#include "runtime/internal.h"

#include <string.h>

static bool valid_name(const char *name)
{
	return registry_name_ok(name, 128, false);
}

/* item: the operation table. */
static struct registry services = {
	.kind = "service", .verb = "provided", .valid_name = valid_name,
	.name_rule = "a-z, 0-9, '_', '.', '-'",
};

int gn_service_provide(struct gn_module_ctx *ctx, const char *name,
		       const void *ops, const char **error_r)
{
	if (registry_check(&services, "gn_service_provide", ctx, name, error_r) < 0)
		return -1;
	if (ops == NULL || *(const size_t *)ops < sizeof(size_t))
		return registry_fail(error_r, "service %s: the operation table must start with its size", name);
	registry_add(&services, ctx, name, (void *)ops);
	gn_log(GN_LOG_DEBUG, "core", "event=service_provided service=%s module=%s",
	       name, gn_module_name(ctx));
	return 0;
}

const void *gn_service_lookup(const char *name)
{
	const struct registry_entry *e = registry_find(&services, NULL, name);
	return e != NULL ? e->item : NULL;
}

const char *gn_service_provider(const char *name)
{
	const struct registry_entry *e = registry_find(&services, NULL, name);
	return e != NULL ? gn_module_name(e->ctx) : NULL;
}

void services_free(void)
{
	registry_clear(&services, NULL);
}
