/*
 * gannet/service.h: named, versioned operation tables that modules share.
 *
 * A module provides a service in its register phase ("quota.v1") with a
 * pointer to a static operation table that begins with a size_t holding its
 * own sizeof.  Tables grow only at the end; a user checks that a member is
 * present with GN_OPS_HAS() before calling it.  The version is part of the
 * name: an incompatible redesign is a new name ("quota.v2").
 */
#ifndef GANNET_SERVICE_H
#define GANNET_SERVICE_H

#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether an operation table (pointer) has member m. */
#define GN_OPS_HAS(ops, m) \
	((ops) != NULL && *(const size_t *)(ops) >= offsetof(__typeof__(*(ops)), m) + sizeof((ops)->m))

/* Register phase.  ops must stay valid for the life of the process and
 * start with its size.  Returns -1 when the name is already provided. */
int gn_service_provide(struct gn_module_ctx *ctx, const char *name,
		       const void *ops, const char **error_r);

/* The table, or NULL when no loaded module provides name.  Valid to call
 * from register (for services of modules registered earlier: require them)
 * and afterwards. */
const void *gn_service_lookup(const char *name);

/* The module that provides name, or NULL. */
const char *gn_service_provider(const char *name);

#ifdef __cplusplus
}
#endif
#endif
