/*
 * core/runtime/registry.c: the one shape of what modules declare in their
 * register phase (runtime/internal.h, "registries").
 *
 * Hook points (hook.c), services (service.c), runner jobs (runner.c) and
 * CLI commands (cli.c) are each a table of named entries that a module
 * declares in its register phase and the core looks up afterwards.  They
 * share everything but their payload: the phase check (nothing registers
 * after modules_register(), so the tables are fixed before any process
 * starts and need no locking), the name check, uniqueness (of the name,
 * or of the name within one module for runner jobs), the owner named in
 * messages ("already provided by module quota") and the way an error comes
 * back (*error_r pointing at a message valid until the next failing
 * registration).  The payload stays with each registry, behind `item`.
 */
#include "runtime/internal.h"

#include <stdarg.h>
#include <string.h>

static char error_buf[1024];

int registry_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = error_buf;
	return -1;
}

bool registry_name_ok(const char *name, size_t max, bool upper)
{
	if (name == NULL || *name == '\0' || strlen(name) > max)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (upper && *p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

struct registry_entry *registry_find(const struct registry *r,
				     const struct gn_module_ctx *ctx,
				     const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < r->n; i++) {
		struct registry_entry *e = &r->entries[i];
		if ((!r->per_module || e->ctx == ctx) && strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

int registry_check(const struct registry *r, const char *api,
		   const struct gn_module_ctx *ctx, const char *name,
		   const char **error_r)
{
	if (modules_check_register(api, error_r) < 0)
		return -1;
	bool ok = r->valid_name != NULL ? r->valid_name(name)
		: name != NULL && *name != '\0';
	if (!ok)
		return registry_fail(error_r, "%s: invalid %s name \"%s\"%s%s%s", api, r->kind,
				     name != NULL ? name : "(null)",
				     r->name_rule != NULL ? " (" : "",
				     r->name_rule != NULL ? r->name_rule : "",
				     r->name_rule != NULL ? ")" : "");
	const struct registry_entry *old = registry_find(r, ctx, name);
	if (old == NULL)
		return 0;
	if (r->per_module)
		return registry_fail(error_r, "%s \"%s\" of module %s is already %s",
				     r->kind, name, gn_module_name(ctx), r->verb);
	return registry_fail(error_r, "%s \"%s\" is already %s by module %s",
			     r->kind, name, r->verb, gn_module_name(old->ctx));
}

struct registry_entry *registry_add(struct registry *r, struct gn_module_ctx *ctx,
				    const char *name, void *item)
{
	r->entries = gn_realloc(r->entries, (r->n + 1) * sizeof(*r->entries));
	struct registry_entry *e = &r->entries[r->n++];
	*e = (struct registry_entry){ .name = gn_strdup(name), .ctx = ctx, .item = item };
	return e;
}

void registry_clear(struct registry *r, void (*free_item)(void *item))
{
	for (size_t i = 0; i < r->n; i++) {
		if (free_item != NULL)
			free_item(r->entries[i].item);
		gn_free(r->entries[i].name);
	}
	gn_free(r->entries);
	r->entries = NULL;
	r->n = 0;
}
