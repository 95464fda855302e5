/*
 * core/db/internal.h: the database layer's internals.
 *
 *   db.c       the process's PostgreSQL connection (gannet/db.h):
 *              parametrised queries, transactions, reconnecting with
 *              backoff, LISTEN/NOTIFY on the loop;
 *   migrate.c  numbered migrations of the core (db/schema/, compiled in
 *              as db/schema.c) and of the modules (gannet/migrate.h);
 *   result.c   gannet/db.h's queries for modules: libpq's results
 *              wrapped in struct gn_db_result;
 *   stmt.c     prepared statements: a text that comes again is parsed
 *              and planned once per connection, not at every query;
 *   analyze.c  the first statistics of Gannet's tables, before
 *              autovacuum's first round (the runner's job);
 *   pq.c       libpq itself, dlopen()ed by db_init(): libgannet does not
 *              link it, so that commands without a database do not load
 *              it and the twenty libraries it brings.
 *
 * The layers above may use libpq through this header (db_query() and
 * PGresult, PQgetvalue()...); modules never see it.  Uses the runtime and
 * base layers.
 */
#ifndef GANNET_DB_INTERNAL_H
#define GANNET_DB_INTERNAL_H

#include "runtime/internal.h"

#include <libpq-fe.h>
#include <gannet/db.h>
#include <gannet/migrate.h>

/* ---- libpq, loaded at run time (pq.c) ----
 *
 * <libpq-fe.h> gives the types and prototypes; the functions themselves
 * come from libpq.so.5, loaded by db_pq_load(), through the table db_pq.
 * The macros below make each name the table's entry, so the code reads
 * PQexecParams(conn, ...) as with a linked libpq.  A libpq function that
 * is not in this list is an undefined symbol at link time (libgannet does
 * not link libpq): add it here. */
#define DB_PQ_FUNCTIONS(X) \
	X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectPoll) \
	X(PQconnectStartParams) X(PQconnectdb) X(PQconnectdbParams) \
	X(PQconsumeInput) X(PQerrorMessage) X(PQescapeIdentifier) X(PQexec) \
	X(PQexecParams) X(PQexecPrepared) X(PQfinish) X(PQfname) X(PQfnumber) X(PQfreemem) \
	X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQnfields) \
	X(PQnotifies) X(PQntuples) X(PQprepare) X(PQresultErrorField) \
	X(PQresultErrorMessage) X(PQresultStatus) X(PQserverVersion) \
	X(PQsetNoticeProcessor) X(PQsocket) X(PQstatus) \
	X(PQtransactionStatus) X(PQunescapeBytea) \
	X(PQenterPipelineMode) X(PQexitPipelineMode) X(PQpipelineStatus) X(PQpipelineSync) \
	X(PQsendQueryParams) X(PQsendPrepare) X(PQsendQueryPrepared) X(PQgetResult)

struct db_pq {
#define DB_PQ_MEMBER(name) __typeof__(name) *name;
	DB_PQ_FUNCTIONS(DB_PQ_MEMBER)
#undef DB_PQ_MEMBER
};
extern struct db_pq db_pq;

/* Loads libpq.so.5 and resolves every function of the list, once per
 * process (later calls return 0 at once).  Returns 0, or -1 with *error_r
 * (static) naming the library or the function that is missing and the
 * Debian package; the table then stays unloaded.  db_init() calls it;
 * code that uses libpq before db_init() (tests) calls it first. */
int db_pq_load(const char **error_r);

/* pq.c itself needs the names as the table's members (offsetof). */
#ifndef DB_PQ_LOADER
#define PQclear (db_pq.PQclear)
#define PQcmdStatus (db_pq.PQcmdStatus)
#define PQcmdTuples (db_pq.PQcmdTuples)
#define PQconnectPoll (db_pq.PQconnectPoll)
#define PQconnectStartParams (db_pq.PQconnectStartParams)
#define PQconnectdb (db_pq.PQconnectdb)
#define PQconnectdbParams (db_pq.PQconnectdbParams)
#define PQconsumeInput (db_pq.PQconsumeInput)
#define PQerrorMessage (db_pq.PQerrorMessage)
#define PQescapeIdentifier (db_pq.PQescapeIdentifier)
#define PQexec (db_pq.PQexec)
#define PQexecParams (db_pq.PQexecParams)
#define PQexecPrepared (db_pq.PQexecPrepared)
#define PQfinish (db_pq.PQfinish)
#define PQfname (db_pq.PQfname)
#define PQfnumber (db_pq.PQfnumber)
#define PQfreemem (db_pq.PQfreemem)
#define PQgetisnull (db_pq.PQgetisnull)
#define PQgetlength (db_pq.PQgetlength)
#define PQgetvalue (db_pq.PQgetvalue)
#define PQnfields (db_pq.PQnfields)
#define PQnotifies (db_pq.PQnotifies)
#define PQntuples (db_pq.PQntuples)
#define PQprepare (db_pq.PQprepare)
#define PQresultErrorField (db_pq.PQresultErrorField)
#define PQresultErrorMessage (db_pq.PQresultErrorMessage)
#define PQresultStatus (db_pq.PQresultStatus)
#define PQserverVersion (db_pq.PQserverVersion)
#define PQsetNoticeProcessor (db_pq.PQsetNoticeProcessor)
#define PQsocket (db_pq.PQsocket)
#define PQstatus (db_pq.PQstatus)
#define PQtransactionStatus (db_pq.PQtransactionStatus)
#define PQunescapeBytea (db_pq.PQunescapeBytea)
#define PQenterPipelineMode (db_pq.PQenterPipelineMode)
#define PQexitPipelineMode (db_pq.PQexitPipelineMode)
#define PQpipelineStatus (db_pq.PQpipelineStatus)
#define PQpipelineSync (db_pq.PQpipelineSync)
#define PQsendQueryParams (db_pq.PQsendQueryParams)
#define PQsendPrepare (db_pq.PQsendPrepare)
#define PQsendQueryPrepared (db_pq.PQsendQueryPrepared)
#define PQgetResult (db_pq.PQgetResult)
#endif

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

/* ---- prepared statements (stmt.c) ---- */

/* Runs sql on conn as PQexecParams() would (no parameter types: the
 * server infers them from the text), preparing it as a named statement
 * of the session the second time the text comes and executing that from
 * then on.  The result is libpq's (NULL, or an error result, as from
 * PQexecParams()); the caller checks it and PQclear()s it. */
PGresult *db_stmt_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
		       const int *lengths, const int *formats, int result_format);
/* db_stmt_exec() in the transaction gn_db_begin() left to the first
 * statement: BEGIN and sql go to the server together (libpq's pipeline
 * mode), one round trip where there were two.  Returns the first failure
 * (BEGIN's, the PREPARE's) or sql's result; after a failure the server's
 * transaction is open and aborted, or was never begun (a failed BEGIN:
 * only a broken connection does that). */
PGresult *db_stmt_exec_begin(PGconn *conn, const char *sql, int nparams,
			     const char *const *values, const int *lengths,
			     const int *formats, int result_format);
/* sql failed with res: when the failure was the prepared statement's
 * (SQLSTATE 26000: the session does not have it; 0A000: its result type
 * changed with the schema), forgets it (or all) and returns true: the
 * query may run again, unprepared, when no transaction is open. */
bool db_stmt_failed(const char *sql, const PGresult *res);
/* Forgets every statement: a new session has none. */
void db_stmt_reset(void);
/* Statements prepared, executions of prepared ones, and queries (of
 * db_query_params()) in this process, for the tests; queries_r may be
 * NULL. */
void db_stmt_counts(unsigned long long *prepared_r, unsigned long long *executed_r,
		    unsigned long long *queries_r);

/* Connects this process (after fork), loading libpq first when this
 * process has not yet (db_pq_load()).  Failure to load libpq or to connect
 * at first is an error; later losses reconnect with backoff.  Returns 0
 * or -1. */
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

/* ---- first statistics (analyze.c) ---- */

/* ANALYZEs the tables of Gannet's (gn_ names) that have no statistics
 * yet and 50 changes or more.  Returns how many, or -1 with *error_r. */
int db_analyze_new(const char **error_r);
/* Registers the runner job "db-analyze-new", which calls it every 2 s. */
int db_register(void);

#endif
