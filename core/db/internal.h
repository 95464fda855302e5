/*
 * core/db/internal.h: the database layer's internals.
 *
 *   db.c       the process's PostgreSQL connection (gannet/db.h):
 *              parametrised queries, transactions, reconnecting with
 *              backoff, LISTEN/NOTIFY on the loop;
 *   migrate.c  numbered migrations of the core (db/schema/, compiled in
 *              as db/schema.c) and of the modules (gannet/migrate.h);
 *   result.c   gannet/db.h's queries for modules: libpq's results
 *              wrapped in struct gn_db_result.
 *
 * The layers above may use libpq's types through this header (db_query()
 * and PGresult); modules never see them.  Uses the runtime and base
 * layers.
 */
#ifndef GANNET_DB_INTERNAL_H
#define GANNET_DB_INTERNAL_H

#include "runtime/internal.h"

#include <libpq-fe.h>
#include <gannet/db.h>
#include <gannet/migrate.h>

/* gn_db_query() and gn_db_query_params() with libpq's result: the
 * result (the caller PQclear()s it) with status PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK, or NULL with *error_r set to a message (static until
 * the next query). */
PGresult *db_query(const char *sql, int nparams, const char *const *params,
		   const char **error_r);
PGresult *db_query_params(const char *sql, int nparams,
			  const char *const *values, const int *lengths,
			  const int *formats, int result_format,
			  const char **error_r);

/* Connects this process (after fork).  Failure to connect at first is an
 * error; later losses reconnect with backoff.  Returns 0 or -1. */
int db_init(const char *conninfo, const char **error_r);
/* Watches the connection's socket for notifications on core_loop, and
 * ends any transaction still open when the loop is about to wait (no
 * transaction may span a turn of the loop; one left open is a bug, logged
 * as event=db_transaction_abandoned). */
void db_watch(void);
/* Whether the last gn_db_commit() failed because the connection broke
 * while COMMIT was under way: the server may or may not have committed.
 * Only the transaction's own writes can tell, looked for once connected
 * again (a transaction id is no proof: after a crash that lost its WAL,
 * an id can be handed out again). */
bool db_commit_outcome_unknown(void);
void db_close(void);
/* Applies pending migrations of the core and every loaded module, each in
 * its own transaction; prints what it applies to out when not NULL.
 * Returns the number applied, or -1. */
int db_migrate(FILE *out, const char **error_r);
/* Refuses (-1) a database whose recorded schema version of any module is
 * newer than this build knows; 0 when all is known; 1 when migrations are
 * pending (then *error_r says which module is behind). */
int db_check_schema(const char **error_r);
/* The core's migrations (generated from db/schema/). */
extern const struct gn_migration core_migrations[];
extern const size_t core_migrations_count;
/* Registered migrations of a module (NULL, 0 when none). */
void migrations_of(const char *module, const struct gn_migration **list_r,
		   size_t *count_r);
/* gn_migrate_register() by module name (checks versions 1, 2, ...). */
int migrations_add(const char *module, const struct gn_migration *list,
		   size_t count, const char **error_r);
/* Runs constant multi-statement SQL compiled into gannet (migrations only:
 * the one PQexec() of gannet).  Returns 0 or -1. */
int db_exec_script(const char *sql, const char **error_r);

#endif
