/*
 * gannet/db.h: the process's PostgreSQL connection.
 *
 * Every process has one connection, opened before modules start.  Queries
 * are synchronous and parametrised ($1, $2 ...): there is no function that
 * takes SQL built from input.  When the connection is lost a query fails
 * with a temporary error (gn_db_error_is_temporary() is true) and the core
 * reconnects with backoff; callers answer their peer with a temporary error
 * (SMTP 451, IMAP NO [UNAVAILABLE]) and never crash.

 * Schema changes: gannet/migrate.h.
 */
#ifndef GANNET_DB_H
#define GANNET_DB_H

#include <stddef.h>
#include <libpq-fe.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs a query with text parameters (NULL for SQL NULL).  Returns the
 * result (the caller PQclear()s it) with status PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK, or NULL with *error_r set to a message (static until the
 * next query). */
PGresult *gn_db_query(const char *sql, int nparams,
		      const char *const *params, const char **error_r);
/* The same with lengths and formats per parameter (binary data) and a
 * result format (0 text, 1 binary). */
PGresult *gn_db_query_params(const char *sql, int nparams,
			     const char *const *values, const int *lengths,
			     const int *formats, int result_format,
			     const char **error_r);
/* For a statement without result rows: 0 or -1. */
int gn_db_exec(const char *sql, int nparams, const char *const *params,
	       const char **error_r);

/* Transactions: BEGIN, COMMIT, ROLLBACK.  Return 0 or -1.  gn_db_commit()
 * succeeding means the data is durable. */
int gn_db_begin(const char **error_r);
int gn_db_commit(const char **error_r);
void gn_db_rollback(void);

/* Whether a transaction is open on this process's connection (begun with
 * gn_db_begin() and not yet committed or rolled back, or lost with the
 * connection and not yet ended): functions that write join it instead of
 * opening their own.  Returns 1 or 0; asks libpq, no round trip. */
int gn_db_in_transaction(void);

/* Whether the last failure was temporary: connection lost, serialization
 * failure, deadlock, admin shutdown.  A client gets a retry-later answer. */
int gn_db_error_is_temporary(void);
/* The SQLSTATE of the last failed query, or "" */
const char *gn_db_error_sqlstate(void);

/* Notifications.  fn runs from the loop for each NOTIFY on channel;
 * payload is valid during the call.  Register from start on. */
typedef void gn_db_notify_fn(const char *channel, const char *payload,
			     void *data);
int gn_db_listen(const char *channel, gn_db_notify_fn *fn, void *data,
		 const char **error_r);
/* pg_notify(channel, payload); delivered after the current transaction
 * commits, or at once outside one. */
int gn_db_notify(const char *channel, const char *payload,
		 const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
