/*
 * gannet/migrate.h: schema changes as numbered migrations.
 *
 * One list for the core and one per module, recorded in the table
 * gn_schema_migrations (module, version).  `gannet migrate` applies the
 * pending ones, each in its own transaction, and `gannet serve` applies
 * them at start and refuses a database whose schema is newer than it
 * knows.
 */
#ifndef GANNET_MIGRATE_H
#define GANNET_MIGRATE_H

#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Migrations: version numbers start at 1 and increase by one.  Frozen on
 * purpose: modules hand the core an array of these without a size, so a
 * member added would change the stride and misread every older module's
 * list.  A migration is a number, a name and SQL; anything more would
 * come as a new struct with its own register function. */
struct gn_migration {
	unsigned version;
	const char *name;	/* "001_accounts" */
	const char *sql;	/* one or more statements */
};

/* Register phase: the module's migrations, applied in one transaction each
 * by `gannet migrate` and at serve start.  list must stay valid. */
int gn_migrate_register(struct gn_module_ctx *ctx,
			const struct gn_migration *list, size_t count,
			const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
