/*
 * core/db/migrate.c: numbered schema migrations of the core and of each module
 * (gannet/db.h, core.h "database").
 *
 * The core's list is compiled from core/db/schema/NNN_name.sql (db/schema.c,
 * made by build-aux/sql2c); a module registers its own list in its register
 * phase with gn_migrate_register().  Versions start at 1 and increase by
 * one, so "the highest version this build knows" is the length of the list.
 *
 * What has been applied is recorded in one table,
 *   gn_schema_migrations (module, version, name, applied_at),
 * which db_migrate() creates when missing.  db_migrate() applies the pending
 * migrations of the core first, then of each loaded module in load order,
 * each in its own transaction that holds a transaction-scoped advisory lock
 * and checks again that the version is still missing, so two nodes migrating
 * at once apply every migration exactly once.  A database recording a
 * version newer than this build knows is refused (`migrate` and `serve`
 * exit 1): running old code against a newer schema could corrupt data.
 */
#include "db/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock() key: "gannet" in ASCII. */
#define MIGRATE_LOCK_KEY "113723203675508"

struct mod_migrations {
	char *module;
	const struct gn_migration *list;
	size_t count;
};

static struct mod_migrations *registered;
static size_t n_registered;
static char migrate_msg[1400];

static const char create_table_sql[] =
	"CREATE TABLE IF NOT EXISTS gn_schema_migrations ("
	" module text NOT NULL,"
	" version integer NOT NULL,"
	" name text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now(),"
	" PRIMARY KEY (module, version))";

static int fail(const char **error_r, const char *fmt, ...) GN_PRINTF(2, 3);

static int fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(migrate_msg, sizeof(migrate_msg), fmt, ap);
	va_end(ap);
	*error_r = migrate_msg;
	return -1;
}

static int list_check(const char *module, const struct gn_migration *list,
		      size_t count, const char **error_r)
{
	if (count > 0 && list == NULL)
		return fail(error_r, "migrations of %s: list is NULL", module);
	for (size_t i = 0; i < count; i++) {
		if (list[i].version != i + 1)
			return fail(error_r, "migrations of %s: version %u at position %zu, "
				    "want %zu (versions start at 1 and increase by 1)",
				    module, list[i].version, i + 1, i + 1);
		if (list[i].name == NULL || list[i].sql == NULL)
			return fail(error_r, "migrations of %s: version %u has no name or SQL",
				    module, list[i].version);
	}
	return 0;
}

int migrations_add(const char *module, const struct gn_migration *list,
		   size_t count, const char **error_r)
{
	if (module == NULL || strcmp(module, "core") == 0)
		return fail(error_r, "the core's migrations are built in (core/schema/)");
	for (size_t i = 0; i < n_registered; i++)
		if (strcmp(registered[i].module, module) == 0)
			return fail(error_r, "migrations of %s registered twice", module);
	if (list_check(module, list, count, error_r) < 0)
		return -1;
	registered = gn_realloc(registered, (n_registered + 1) * sizeof(*registered));
	registered[n_registered].module = gn_strdup(module);
	registered[n_registered].list = list;
	registered[n_registered].count = count;
	n_registered++;
	return 0;
}

int gn_migrate_register(struct gn_module_ctx *ctx,
			const struct gn_migration *list, size_t count,
			const char **error_r)
{
	return migrations_add(gn_module_name(ctx), list, count, error_r);
}

void migrations_of(const char *module, const struct gn_migration **list_r,
		   size_t *count_r)
{
	*list_r = NULL;
	*count_r = 0;
	if (strcmp(module, "core") == 0) {
		if (core_migrations_count > 0)
			*list_r = core_migrations;
		*count_r = core_migrations_count;
		return;
	}
	for (size_t i = 0; i < n_registered; i++) {
		if (strcmp(registered[i].module, module) == 0) {
			*list_r = registered[i].list;
			*count_r = registered[i].count;
			return;
		}
	}
}

/* The names whose migrations this build knows: "core", then each loaded
 * module in load order.  NULL past the end. */
static const char *known_module(size_t i)
{
	if (i == 0)
		return "core";
	for (size_t k = 0, n = 1;; k++) {
		struct gn_module_ctx *ctx = modules_at(k);
		if (ctx == NULL)
			return NULL;
		const char *name = gn_module_name(ctx);
		if (strcmp(name, "core") == 0)
			continue;
		if (n++ == i)
			return name;
	}
}

static bool is_known(const char *module)
{
	for (size_t i = 0; known_module(i) != NULL; i++)
		if (strcmp(known_module(i), module) == 0)
			return true;
	return false;
}

/* Highest recorded version of module, 0 when none; -1 on error. */
static long recorded_version(const char *module, const char **error_r)
{
	const char *params[1] = { module };
	const char *err;
	PGresult *res = db_query("SELECT coalesce(max(version), 0) FROM gn_schema_migrations"
				 " WHERE module = $1", 1, params, &err);
	if (res == NULL)
		return fail(error_r, "reading gn_schema_migrations: %s", err);
	long v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* The recorded version of module in the rows of db_check_schema()'s query
 * (module, max(version)); 0 when it has none. */
static long version_in(const PGresult *res, const char *module)
{
	for (int r = 0; r < PQntuples(res); r++)
		if (strcmp(PQgetvalue(res, r, 0), module) == 0)
			return strtol(PQgetvalue(res, r, 1), NULL, 10);
	return 0;
}

/* One query, since every command that uses the database runs this first:
 * the highest version of every module at once.  The table is missing only
 * in a database never migrated: that query's "undefined table" error
 * (SQLSTATE 42P01) says so, without a second query to ask first. */
int db_check_schema(const char **error_r)
{
	const char *err;
	int pending = 0;

	PGresult *res = db_query("SELECT module, max(version) FROM gn_schema_migrations"
				 " GROUP BY module ORDER BY module", 0, NULL, &err);
	if (res == NULL && strcmp(gn_db_error_sqlstate(), "42P01") != 0)
		return fail(error_r, "reading gn_schema_migrations: %s", err);

	for (int r = 0; res != NULL && r < PQntuples(res); r++) {
		const char *module = PQgetvalue(res, r, 0);
		long have = strtol(PQgetvalue(res, r, 1), NULL, 10);
		const struct gn_migration *list;
		size_t count;
		/* A module not loaded by this config keeps its tables;
		 * its versions are not this build's business. */
		if (!is_known(module))
			continue;
		migrations_of(module, &list, &count);
		if (have > (long)count) {
			fail(error_r, "database schema of %s is at version %ld, "
			     "this gannet knows up to %zu: upgrade gannet",
			     module, have, count);
			PQclear(res);
			return -1;
		}
	}

	for (size_t i = 0; known_module(i) != NULL && !pending; i++) {
		const char *module = known_module(i);
		const struct gn_migration *list;
		size_t count;
		migrations_of(module, &list, &count);
		long have = res != NULL ? version_in(res, module) : 0;
		if (count > 0 && (size_t)have < count) {
			pending = 1;
			/* Not an error; said for callers that refuse to run. */
			fail(error_r, "database schema of %s is at version %ld of %zu: "
			     "run gannet migrate", module, have, count);
		}
	}
	PQclear(res);
	return pending;
}

/* BEGIN and take the migration lock.  Returns 0 or -1 (rolled back). */
static int begin_locked(const char **err_r)
{
	const char *params[1] = { MIGRATE_LOCK_KEY };
	if (gn_db_begin(err_r) < 0)
		return -1;
	if (gn_db_exec("SELECT pg_advisory_xact_lock($1::bigint)", 1, params, err_r) < 0) {
		gn_db_rollback();
		return -1;
	}
	return 0;
}

/* Applies one migration unless another node did meanwhile.  Returns 1
 * applied, 0 already there, -1 error. */
static int apply_one(const char *module, const struct gn_migration *m,
		     const char **error_r)
{
	const char *err;
	char version[16];
	snprintf(version, sizeof(version), "%u", m->version);
	const char *params[3] = { module, version, m->name };

	if (begin_locked(&err) < 0)
		return fail(error_r, "migration %s %s: %s", module, m->name, err);
	PGresult *res = db_query("SELECT 1 FROM gn_schema_migrations"
				 " WHERE module = $1 AND version = $2::integer",
				 2, params, &err);
	if (res == NULL)
		goto failed;
	bool done = PQntuples(res) > 0;
	PQclear(res);
	if (done) {
		gn_db_rollback();
		return 0;
	}
	if (db_exec_script(m->sql, &err) < 0)
		goto failed;
	if (gn_db_exec("INSERT INTO gn_schema_migrations (module, version, name)"
		       " VALUES ($1, $2::integer, $3)", 3, params, &err) < 0)
		goto failed;
	if (gn_db_commit(&err) < 0)
		goto failed_after_rollback;
	return 1;

failed:
	gn_db_rollback();
failed_after_rollback:
	return fail(error_r, "migration %s %s failed: %s", module, m->name, err);
}

int db_migrate(FILE *out, const char **error_r)
{
	const char *err;
	int applied = 0;

	if (list_check("core", core_migrations, core_migrations_count, error_r) < 0)
		return -1;

	/* The table itself, once, under the same lock. */
	if (begin_locked(&err) < 0)
		return fail(error_r, "creating gn_schema_migrations: %s", err);
	if (gn_db_exec(create_table_sql, 0, NULL, &err) < 0) {
		gn_db_rollback();
		return fail(error_r, "creating gn_schema_migrations: %s", err);
	}
	if (gn_db_commit(&err) < 0)
		return fail(error_r, "creating gn_schema_migrations: %s", err);

	if (db_check_schema(error_r) < 0)
		return -1;

	for (size_t i = 0; known_module(i) != NULL; i++) {
		const char *module = known_module(i);
		const struct gn_migration *list;
		size_t count;
		migrations_of(module, &list, &count);
		if (count == 0)
			continue;
		long have = recorded_version(module, error_r);
		if (have < 0)
			return -1;
		for (size_t k = (size_t)have; k < count; k++) {
			int r = apply_one(module, &list[k], error_r);
			if (r < 0)
				return -1;
			if (r == 0)
				continue;
			applied++;
			/* Said once: to out for `gannet migrate`, else to the log. */
			if (out != NULL) {
				fprintf(out, "applied %s %u %s\n", module,
					list[k].version, list[k].name);
				fflush(out);
			} else {
				gn_log(GN_LOG_INFO, "core", "event=migration_applied module=%s"
				       " version=%u name=%s", gn_log_quote(0, module),
				       list[k].version, gn_log_quote(1, list[k].name));
			}
		}
	}
	return applied;
}
