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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The rows a query returned.  Opaque (libpq's PGresult stays inside the
 * core, so modules never depend on libpq's headers); owned by the caller,
 * who frees it with gn_db_result_free().  Values stay valid until then. */
struct gn_db_result;

/* Runs a query with text parameters (NULL for SQL NULL).  Returns its
 * result (tuples, or none for a command), or NULL with *error_r set to a
 * message (static until the next query). */
struct gn_db_result *gn_db_query(const char *sql, int nparams,
				 const char *const *params,
				 const char **error_r);
/* The same with lengths and formats per parameter (binary data) and a
 * result format (0 text, 1 binary). */
struct gn_db_result *gn_db_query_params(const char *sql, int nparams,
					const char *const *values,
					const int *lengths, const int *formats,
					int result_format, const char **error_r);
/* Accepts NULL and *res == NULL; sets *res to NULL. */
void gn_db_result_free(struct gn_db_result **res);

/* Rows and columns (0 for a command without result rows). */
size_t gn_db_result_rows(const struct gn_db_result *res);
size_t gn_db_result_columns(const struct gn_db_result *res);
/* A column's name, NULL out of range; a column's number by name, -1 when
 * there is none. */
const char *gn_db_result_column_name(const struct gn_db_result *res, size_t col);
int gn_db_result_column_index(const struct gn_db_result *res, const char *name);
/* A value in text form, NUL-terminated: "" for SQL NULL (tell it apart
 * with gn_db_result_is_null()), NULL when row or col is out of range. */
const char *gn_db_result_value(const struct gn_db_result *res, size_t row,
			       size_t col);
/* Whether the value is SQL NULL (true out of range too). */
bool gn_db_result_is_null(const struct gn_db_result *res, size_t row,
			  size_t col);
/* The value's length in bytes (0 for SQL NULL and out of range). */
size_t gn_db_result_length(const struct gn_db_result *res, size_t row,
			   size_t col);
/* A value of a binary-format result (result_format 1): its bytes, with
 * their number in *len_r; NULL (and 0) for SQL NULL and out of range. */
const void *gn_db_result_binary(const struct gn_db_result *res, size_t row,
				size_t col, size_t *len_r);
/* The rows an INSERT, UPDATE, DELETE, MERGE, SELECT, MOVE, FETCH or COPY
 * processed; 0 for other commands. */
uint64_t gn_db_result_affected_rows(const struct gn_db_result *res);

/* For a statement without result rows: 0 or -1. */
int gn_db_exec(const char *sql, int nparams, const char *const *params,
	       const char **error_r);

/* Transactions: BEGIN, COMMIT, ROLLBACK.  Return 0 or -1.  gn_db_commit()
 * succeeding means the data is durable.  The transaction is over when
 * gn_db_commit() returns, whatever the result; when the connection broke
 * during COMMIT the outcome is unknown (the server may have committed):
 * only what the transaction wrote can tell, once connected again.  A
 * transaction must not span a turn of the loop: one still open when the
 * loop waits is rolled back (and logged). */
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
