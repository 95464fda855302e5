/*
 * core/runtime/service.c: named, versioned operation tables (gannet/service.h).
 *
 * One module provides a name ("quota.v1") with a static table whose first
 * member is its own size; others look it up by name.  Provided in the
 * register phase only, so the set is fixed before any process starts and
 * lookups need no locking.  A handful of services exist: a list will do.
 */
#include "runtime/internal.h"

#include <stdarg.h>
#include <string.h>

struct service {
	char *name;
	const void *ops;
	struct gn_module_ctx *ctx;
};

static struct service *services;
static size_t n_services;
static char error_buf[512];

static int set_error(const char **error_r, const char *fmt, ...) GN_PRINTF(2, 3);

static int set_error(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = error_buf;
	return -1;
}

static const struct service *find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < n_services; i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

static bool valid_name(const char *name)
{
	if (name == NULL || *name == '\0' || strlen(name) > 128)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

int gn_service_provide(struct gn_module_ctx *ctx, const char *name,
		       const void *ops, const char **error_r)
{
	if (modules_check_register("gn_service_provide", error_r) < 0)
		return -1;
	if (!valid_name(name))
		return set_error(error_r, "gn_service_provide: invalid service name \"%s\" (a-z, 0-9, '_', '.', '-')",
				 name != NULL ? name : "(null)");
	if (ops == NULL || *(const size_t *)ops < sizeof(size_t))
		return set_error(error_r, "service %s: the operation table must start with its size", name);
	const struct service *old = find(name);
	if (old != NULL)
		return set_error(error_r, "service %s is already provided by module %s",
				 name, gn_module_name(old->ctx));
	services = gn_realloc(services, (n_services + 1) * sizeof(*services));
	services[n_services].name = gn_strdup(name);
	services[n_services].ops = ops;
	services[n_services].ctx = ctx;
	n_services++;
	gn_log(GN_LOG_DEBUG, "core", "event=service_provided service=%s module=%s",
	       name, gn_module_name(ctx));
	return 0;
}

const void *gn_service_lookup(const char *name)
{
	const struct service *s = find(name);
	return s != NULL ? s->ops : NULL;
}

const char *gn_service_provider(const char *name)
{
	const struct service *s = find(name);
	return s != NULL ? gn_module_name(s->ctx) : NULL;
}

void services_free(void)
{
	for (size_t i = 0; i < n_services; i++)
		gn_free(services[i].name);
	gn_free(services);
	services = NULL;
	n_services = 0;
}
