/*
 * core/db/analyze.c: the first statistics of Gannet's tables, taken early.
 *
 * PostgreSQL plans with the statistics ANALYZE gathers.  A table that has
 * never been analyzed (pg_class.reltuples < 0: a new installation, a
 * table a migration made) is taken for a few pages and its columns for
 * unknown, so every index whose first column a query names costs alike:
 * a lookup by (account_id, id) could be planned on an index of
 * (account_id, mailbox_id, uid) with id a filter, a queue update as a
 * sequential scan.  Each connection keeps the generic plan of a prepared
 * statement (core/db/stmt.c), made while the table was small, until the
 * table's statistics change; until then every use reads the table's
 * rows.  contrib/bench/smtp and contrib/bench/send measured it: a
 * delivery's PostgreSQL CPU went from 1 to 5 ms as one account filled.
 *
 * Autovacuum takes the first statistics once a table has 50 changes, but
 * only at its next round (autovacuum_naptime, a minute by default, or
 * never where it is off).  The runner's job "db-analyze-new" does it
 * sooner: every DB_ANALYZE_INTERVAL_MS it asks the catalog for tables of
 * Gannet's (gn_ names, in the connection's schema) that have no
 * statistics and DB_ANALYZE_MIN_CHANGES changes or more, and that its
 * role may analyze, and ANALYZEs them (SKIP_LOCKED: another node's runner that is at it is left to it).
 * ANALYZE invalidates the plans that used the table, in every session.
 * Once every table has statistics, the job is one catalog query that
 * returns nothing; later statistics are autovacuum's.
 */
#include "db/internal.h"

#include <gannet/runner.h>

#define DB_ANALYZE_INTERVAL_MS 2000UL
/* Autovacuum's first ANALYZE of a table: autovacuum_analyze_threshold. */
#define DB_ANALYZE_MIN_CHANGES "50"

int db_analyze_new(const char **error_r)
{
	const char *p[1] = { DB_ANALYZE_MIN_CHANGES };
	/* The statement comes from the server, the name quoted there
	 * (format's %I).  Only tables this role may analyze (PostgreSQL 15:
	 * the table's or the database's owner, or a superuser): another's
	 * would be skipped with a warning, and asked for again every round. */
	PGresult *res = db_query("SELECT c.relname, format('ANALYZE (SKIP_LOCKED) %I', c.relname) "
				 "FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid "
				 "WHERE c.relnamespace = current_schema()::regnamespace "
				 "AND c.relkind = 'r' AND c.relname LIKE 'gn\\_%' AND c.reltuples < 0 "
				 "AND s.n_mod_since_analyze >= $1::bigint "
				 "AND (pg_has_role(c.relowner, 'MEMBER') "
				 "OR pg_has_role((SELECT datdba FROM pg_database "
				 "WHERE datname = current_database()), 'MEMBER') "
				 "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)) "
				 "ORDER BY c.relname",
				 1, p, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res), done = 0;
	for (int i = 0; i < n; i++) {
		PGresult *r = db_query(PQgetvalue(res, i, 1), 0, NULL, error_r);
		if (r == NULL) {
			done = -1;
			break;
		}
		PQclear(r);
		gn_log(GN_LOG_INFO, "core", "event=db_analyzed table=%s reason=no_statistics",
		       PQgetvalue(res, i, 0));
		done++;
	}
	PQclear(res);
	return done;
}

static void analyze_job(void *data)
{
	(void)data;
	const char *err = NULL;
	if (db_analyze_new(&err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=db_analyze_failed error=%s",
		       gn_log_quote(0, err != NULL ? err : "?"));
}

int db_register(void)
{
	const char *err;
	if (gn_runner_job_register(modules_core_ctx(), "db-analyze-new", DB_ANALYZE_INTERVAL_MS,
				   analyze_job, NULL, &err) < 0) {
		conf_error("db: %s", err);
		return -1;
	}
	return 0;
}
