/*
 * t/unit/test_db.c: the database connection (core/db/db.c) and migrations
 * (core/db/migrate.c) against a real PostgreSQL.
 *
 * The cluster: GANNET_TEST_CONNINFO (key=value conninfo) if set, else
 * GANNET_TEST_PGHOST/GANNET_TEST_PGPORT (the cluster of `contrib/quickstart
 * check`), else one made for this test with t/lib/pgtmp and removed at exit.
 * Each run works in a fresh database of its own.
 *
 * Losing the server: with our own cluster the server is really stopped and
 * started (pg_ctl); with a shared one, our session is terminated with
 * pg_terminate_backend() instead (same error on the client's side, the
 * server just comes back at once).
 */
#include "db/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#ifndef GN_TEST_SRCDIR
#define GN_TEST_SRCDIR "."
#endif

static char pgdir[256];		/* our own cluster, or "" */
static char *base_conninfo;	/* the cluster, dbname=postgres */
static char *conninfo;		/* our fresh database */
static char dbname[64];

/* ---- helpers ---- */

static const char *srcdir(void)
{
	const char *s = getenv("GANNET_SRCDIR");
	return s && *s ? s : GN_TEST_SRCDIR;
}

static int pgtmp(const char *cmd)
{
	char *line = gn_strdup_printf("sh '%s/t/lib/pgtmp' %s '%s' >/dev/null", srcdir(), cmd, pgdir);
	int r = system(line);
	gn_free(line);
	return r;
}

static void cleanup(void)
{
	if (pgdir[0] != '\0') {
		pgtmp("destroy");
		pgdir[0] = '\0';
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A separate session (never through db.c), for looking from outside. */
static PGconn *admin(const char *ci)
{
	PGconn *c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		diag("admin connection failed: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Runs sql in a separate session of our database; returns the first value
 * of the first row as a new string, "" without rows, NULL on error. */
static char *outside(const char *sql)
{
	PGconn *c = admin(conninfo);
	char *v = NULL;
	if (c == NULL)
		return NULL;
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		v = gn_strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	else if (PQresultStatus(r) == PGRES_COMMAND_OK)
		v = gn_strdup("");
	else
		diag("outside(%s): %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return v;
}

static bool outside_is(const char *sql, const char *want)
{
	char *v = outside(sql);
	bool r = v != NULL && strcmp(v, want) == 0;
	if (!r)
		diag("%s: got %s, want %s", sql, v ? v : "(error)", want);
	gn_free(v);
	return r;
}

/* The value of a one-value query through db.c, or NULL. */
static char *query1(const char *sql, int n, const char *const *params)
{
	const char *err;
	PGresult *r = db_query(sql, n, params, &err);
	if (r == NULL) {
		diag("%s: %s", sql, err);
		return NULL;
	}
	char *v = gn_strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static bool own_cluster(void)
{
	return pgdir[0] != '\0';
}

/* Makes the server go away for our session. */
static void server_down(void)
{
	if (own_cluster()) {
		pgtmp("stop");
		return;
	}
	char *sql = gn_strdup_printf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				     " WHERE datname = '%s' AND application_name = 'gannet'", dbname);
	gn_free(outside(sql));
	gn_free(sql);
}

static void server_up(void)
{
	if (own_cluster() && pgtmp("start") != 0)
		diag("pgtmp start failed");
}

/* ---- the loop ---- */

static void nothing(void *data)
{
	(void)data;
}

/* Runs the loop until *flag or timeout; each() runs about every 200ms. */
static bool run_until(const int *flag, double timeout, void (*each)(void))
{
	struct gn_timer *wake = gn_timer_new(50, true, nothing, NULL);
	double deadline = mono() + timeout, next = 0;
	while (!*flag && mono() < deadline) {
		if (each != NULL && mono() >= next) {
			each();
			next = mono() + 0.2;
		}
		ev_run(core_loop, EVRUN_ONCE);
	}
	gn_timer_free(&wake);
	return *flag != 0;
}

static int notes;
static char last_payload[256];
static void *last_data;

static void on_note(const char *channel, const char *payload, void *data)
{
	(void)channel;
	notes++;
	snprintf(last_payload, sizeof(last_payload), "%s", payload);
	last_data = data;
}

/* outside(), its answer only told: ran or not. */
static bool outside_ran(const char *sql)
{
	char *v = outside(sql);
	bool ran = v != NULL;
	gn_free(v);
	return ran;
}

static void notify_from_outside(void)
{
	gn_free(outside("NOTIFY t_chan, 'from outside'"));
}

/* ---- tests ---- */

static void test_queries(void)
{
	const char *err = NULL;

	const char *p2[2] = { "2", "3" };
	char *v = query1("SELECT $1::int + $2::int", 2, p2);
	is_str(v, "5", "query with text parameters");
	gn_free(v);

	const char *pnull[1] = { NULL };
	v = query1("SELECT $1::text IS NULL", 1, pnull);
	is_str(v, "t", "a NULL parameter is SQL NULL");
	gn_free(v);

	ok(gn_db_exec("CREATE TABLE t (id serial PRIMARY KEY, v text UNIQUE, b bytea)",
		      0, NULL, &err) == 0, "gn_db_exec creates a table");
	const char *pins[1] = { NULL };
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, pins, &err) == 0,
	   "insert a NULL value");
	ok(outside_is("SELECT count(*) FROM t WHERE v IS NULL", "1"),
	   "the NULL row is visible outside (autocommit)");

	/* Binary: a NUL byte inside, sent as binary and read back binary. */
	static const char bin[5] = { 'a', '\0', 'b', '\xff', 'c' };
	const char *vals[1] = { bin };
	int lens[1] = { 5 }, fmts[1] = { 1 };
	struct gn_db_result *res = gn_db_query_params("SELECT length($1::bytea), $1::bytea, NULL::bytea",
						      1, vals, lens, fmts, 1, &err);
	ok(res != NULL, "binary parameter and binary result");
	if (res != NULL) {
		size_t blen = 0;
		const void *bv = gn_db_result_binary(res, 0, 1, &blen);
		is_int((long long)blen, 5, "binary result has all 5 bytes");
		ok(bv != NULL && memcmp(bv, bin, 5) == 0, "binary bytes round-trip");
		is_int((long long)gn_db_result_length(res, 0, 1), 5, "gn_db_result_length agrees");
		bv = gn_db_result_binary(res, 0, 2, &blen);
		ok(bv == NULL && blen == 0, "a binary NULL is NULL, length 0");
	}
	gn_db_result_free(&res);
	ok(res == NULL, "gn_db_result_free sets the pointer to NULL");
	gn_db_result_free(&res);
	gn_db_result_free(NULL);
	res = gn_db_query_params("INSERT INTO t (v, b) VALUES ('bin', $1) RETURNING encode(b, 'hex')",
				 1, vals, lens, fmts, 0, &err);
	is_str(res ? gn_db_result_value(res, 0, 0) : NULL, "610062ff63", "binary parameter stored as bytea");
	gn_db_result_free(&res);

	/* The public result type, read as a module reads it. */
	res = gn_db_query("SELECT 'a'::text AS word, NULL::int AS nothing, 42 AS n "
			  "UNION ALL SELECT 'bc', 7, 43", 0, NULL, &err);
	ok(res != NULL, "gn_db_query returns a struct gn_db_result");
	if (res != NULL) {
		is_int((long long)gn_db_result_rows(res), 2, "rows");
		is_int((long long)gn_db_result_columns(res), 3, "columns");
		is_str(gn_db_result_column_name(res, 1), "nothing", "column name");
		ok(gn_db_result_column_name(res, 3) == NULL, "no name past the last column");
		is_int(gn_db_result_column_index(res, "n"), 2, "column index by name");
		is_int(gn_db_result_column_index(res, "missing"), -1, "-1 for an unknown column");
		is_str(gn_db_result_value(res, 1, 0), "bc", "text value");
		is_int((long long)gn_db_result_length(res, 1, 0), 2, "its length");
		ok(gn_db_result_is_null(res, 0, 1) && !gn_db_result_is_null(res, 1, 1),
		   "SQL NULL told apart");
		is_str(gn_db_result_value(res, 0, 1), "", "a NULL value reads as \"\"");
		ok(gn_db_result_value(res, 2, 0) == NULL && gn_db_result_value(res, 0, 3) == NULL &&
		   gn_db_result_is_null(res, 2, 0) && gn_db_result_length(res, 0, 9) == 0,
		   "out of range: NULL, null, length 0");
		is_int((long long)gn_db_result_affected_rows(res), 2, "a SELECT's row count");
	}
	gn_db_result_free(&res);
	const char *pupd[1] = { "bin" };
	res = gn_db_query("UPDATE t SET b = NULL WHERE v = $1 OR v IS NULL", 1, pupd, &err);
	ok(res != NULL && gn_db_result_rows(res) == 0 && gn_db_result_columns(res) == 0 &&
	   gn_db_result_affected_rows(res) == 2, "an UPDATE: no rows, 2 affected");
	gn_db_result_free(&res);
	res = gn_db_query("SELEC 1", 0, NULL, &err);
	ok(res == NULL && strstr(err, "syntax error") != NULL, "an error: NULL with the message");

	/* Errors. */
	PGresult *r = db_query("SELEC 1", 0, NULL, &err);
	ok(r == NULL, "a syntax error fails");
	like(err, "syntax error", "the message says syntax error");
	is_str(gn_db_error_sqlstate(), "42601", "SQLSTATE of a syntax error");
	is_int(gn_db_error_is_temporary(), 0, "a syntax error is permanent");

	const char *pdup[1] = { "bin" };
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, pdup, &err) < 0, "unique violation fails");
	is_str(gn_db_error_sqlstate(), "23505", "SQLSTATE of a unique violation");
	is_int(gn_db_error_is_temporary(), 0, "a unique violation is permanent");

	v = query1("SELECT 1", 0, NULL);
	is_str(v, "1", "the connection works after errors");
	gn_free(v);
	is_str(gn_db_error_sqlstate(), "", "no SQLSTATE after a success");

	v = query1("SELECT current_setting('application_name')", 0, NULL);
	is_str(v, "gannet", "application_name is gannet");
	gn_free(v);
}

/* The number of prepared statements of our session, through db.c. */
static long long session_statements(void)
{
	char *v = query1("SELECT count(*) FROM pg_prepared_statements", 0, NULL);
	long long n = v != NULL ? atoll(v) : -1;
	gn_free(v);
	return n;
}

/* Prepared statements (stmt.c): invisible to callers, whatever happens to
 * the session or the schema under them. */
static void test_prepared(void)
{
	const char *err = NULL;
	unsigned long long p0, e0, p1, e1;
	const char *sql = "SELECT $1::int * 2 AS twice";

	db_stmt_counts(&p0, &e0, NULL);
	const char *a[1] = { "3" }, *b[1] = { "4" }, *c[1] = { "5" };
	char *v1 = query1(sql, 1, a), *v2 = query1(sql, 1, b), *v3 = query1(sql, 1, c);
	ok(v1 != NULL && v2 != NULL && v3 != NULL && strcmp(v1, "6") == 0 && strcmp(v2, "8") == 0 &&
	   strcmp(v3, "10") == 0, "a statement run three times gives each run's result");
	gn_free(v1);
	gn_free(v2);
	gn_free(v3);
	db_stmt_counts(&p1, &e1, NULL);
	ok(p1 - p0 == 1 && e1 - e0 == 2, "prepared at its second run, executed prepared twice "
	   "(prepared %llu, executed %llu)", p1 - p0, e1 - e0);
	char *v = query1("SELECT count(*) FROM pg_prepared_statements WHERE statement = "
			 "'SELECT $1::int * 2 AS twice'", 0, NULL);
	is_str(v, "1", "the session holds it as a prepared statement");
	gn_free(v);

	/* The schema changes under a prepared statement: its result type
	 * with it (PostgreSQL: "cached plan must not change result type"). */
	ok(gn_db_exec("CREATE TABLE pt (a int)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO pt VALUES (1)", 0, NULL, &err) == 0, "a table");
	struct gn_db_result *r = NULL;
	for (int i = 0; i < 2; i++) {
		gn_db_result_free(&r);
		r = gn_db_query("SELECT * FROM pt", 0, NULL, &err);
	}
	ok(r != NULL && gn_db_result_columns(r) == 1, "SELECT * of it, prepared: one column");
	gn_db_result_free(&r);
	ok(outside_ran("ALTER TABLE pt ADD COLUMN b text DEFAULT 'x'"), "a column added from outside");
	r = gn_db_query("SELECT * FROM pt", 0, NULL, &err);
	ok(r != NULL && gn_db_result_columns(r) == 2, "outside a transaction the same text runs again, "
	   "and sees the new column");
	is_str(r != NULL ? gn_db_result_value(r, 0, 1) : NULL, "x", "with its value");
	gn_db_result_free(&r);
	db_stmt_counts(&p0, &e0, NULL);
	for (int i = 0; i < 2; i++) {
		gn_db_result_free(&r);
		r = gn_db_query("SELECT * FROM pt", 0, NULL, &err);
	}
	db_stmt_counts(&p1, &e1, NULL);
	ok(r != NULL && gn_db_result_columns(r) == 2 && p1 - p0 == 1, "and is prepared anew");
	gn_db_result_free(&r);
	ok(outside_ran("ALTER TABLE pt ADD COLUMN c int DEFAULT 7"), "another column");
	ok(gn_db_begin(&err) == 0, "begin");
	r = gn_db_query("SELECT * FROM pt", 0, NULL, &err);
	if (r == NULL) {
		/* Inside a transaction it cannot run again: the error is the
		 * caller's, and nothing is committed. */
		is_str(gn_db_error_sqlstate(), "0A000", "inside a transaction it fails with 0A000");
		ok(gn_db_commit(&err) < 0, "and the transaction does not commit");
	} else {
		ok(false, "inside a transaction the changed statement should fail, got %zu columns",
		   gn_db_result_columns(r));
		gn_db_result_free(&r);
		gn_db_rollback();
	}
	r = gn_db_query("SELECT * FROM pt", 0, NULL, &err);
	ok(r != NULL && gn_db_result_columns(r) == 3, "after it the statement works again");
	gn_db_result_free(&r);

	/* The session loses its statements (a pooler's DISCARD ALL). */
	v = query1(sql, 1, a);
	gn_free(v);
	ok(gn_db_exec("DEALLOCATE ALL", 0, NULL, &err) == 0, "DEALLOCATE ALL behind the cache's back");
	is_int(session_statements(), 0, "the session has no prepared statement");
	v = query1(sql, 1, b);
	is_str(v, "8", "a prepared text runs again unprepared (26000 recovered)");
	gn_free(v);
	v = query1(sql, 1, c);
	is_str(v, "10", "and is prepared again");
	gn_free(v);

	/* Bounded: many texts, each run twice. */
	bool right = true;
	for (int i = 0; i < 300; i++) {
		char *q = gn_strdup_printf("SELECT $1::int + %d", i);
		for (int k = 0; k < 2; k++) {
			char *got = query1(q, 1, a);
			char want[16];
			snprintf(want, sizeof(want), "%d", 3 + i);
			if (got == NULL || strcmp(got, want) != 0)
				right = false;
			gn_free(got);
		}
		gn_free(q);
	}
	ok(right, "300 texts, each run twice, give their results");
	long long n = session_statements();
	ok(n > 0 && n <= 256, "the session holds at most 256 prepared statements (%lld)", n);

	/* Full, inside a transaction: nothing is deallocated there (a
	 * failed DEALLOCATE would abort the caller's transaction), so what
	 * the session had prepared when it began is all still there, and a
	 * new text finding no room runs unprepared. */
	const char *names_sql = "SELECT ',' || string_agg(name, ',') || ',' FROM pg_prepared_statements";
	gn_free(query1(names_sql, 0, NULL));
	gn_free(query1(names_sql, 0, NULL));
	ok(gn_db_begin(&err) == 0, "begin with the cache full");
	char *names = query1(names_sql, 0, NULL);
	right = true;
	for (int i = 0; i < 5; i++) {
		char *q = gn_strdup_printf("SELECT $1::int + %d", 1000 + i);
		for (int k = 0; k < 2; k++) {
			char *got = query1(q, 1, a);
			char want[16];
			snprintf(want, sizeof(want), "%d", 1003 + i);
			if (got == NULL || strcmp(got, want) != 0)
				right = false;
			gn_free(got);
		}
		gn_free(q);
	}
	ok(right, "new texts run inside it, each twice");
	char *names2 = query1(names_sql, 0, NULL);
	bool kept = names != NULL && names2 != NULL;
	for (const char *p = names; kept && p != NULL && p[1] != '\0'; p = strchr(p + 1, ',')) {
		/* ",gn_12," of the first list in the second. */
		const char *e = strchr(p + 1, ',');
		char *one = gn_strndup(p, (size_t)(e - p) + 1);
		kept = strstr(names2, one) != NULL;
		if (!kept)
			diag("%s was deallocated inside the transaction", one);
		gn_free(one);
	}
	ok(kept, "every statement prepared when it began is still there");
	gn_free(names);
	gn_free(names2);
	ok(gn_db_commit(&err) == 0, "the transaction commits");
}

/* After a reconnection the statements are prepared again on the new
 * session. */
static void test_prepared_after_reconnect(void)
{
	const char *a[1] = { "21" };
	unsigned long long p0, e0, p1, e1;
	db_stmt_counts(&p0, &e0, NULL);
	char *v1 = query1("SELECT $1::int * 2 AS twice", 1, a);
	char *v2 = query1("SELECT $1::int * 2 AS twice", 1, a);
	db_stmt_counts(&p1, &e1, NULL);
	ok(v1 != NULL && v2 != NULL && strcmp(v1, "42") == 0 && strcmp(v2, "42") == 0,
	   "a text prepared before the reconnection runs on the new session");
	ok(p1 - p0 == 1, "prepared again on it");
	gn_free(v1);
	gn_free(v2);
}

static void test_transactions(void)
{
	const char *err = NULL;
	const char *pa[1] = { "committed" }, *pb[1] = { "rolled back" }, *pc[1] = { "aborted" };

	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, pa, &err) == 0, "insert in a transaction");
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'committed'", "0"),
	   "not visible outside before commit");
	ok(gn_db_commit(&err) == 0, "commit");
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'committed'", "1"),
	   "visible outside after commit");

	ok(gn_db_begin(&err) == 0, "begin again");
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, pb, &err) == 0, "insert");
	gn_db_rollback();
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'rolled back'", "0"),
	   "rollback leaves nothing");

	/* An error inside a transaction: COMMIT must not report success. */
	ok(gn_db_begin(&err) == 0, "begin a transaction that will fail");
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, pc, &err) == 0, "insert");
	ok(gn_db_exec("SELEC", 0, NULL, &err) < 0, "an error inside it");
	ok(gn_db_commit(&err) < 0, "commit after an error fails");
	is_str(gn_db_error_sqlstate(), "25P02", "with SQLSTATE 25P02");
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'aborted'", "0"),
	   "nothing of the failed transaction was committed");

	/* gn_db_rollback() keeps the error that led to it. */
	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_db_exec("SELECT 1/0", 0, NULL, &err) < 0, "division by zero");
	gn_db_rollback();
	is_str(gn_db_error_sqlstate(), "22012", "rollback keeps the failure's SQLSTATE");
}

/* BEGIN goes with the transaction's first statement (db.c, stmt.c's
 * db_stmt_exec_begin()): until then the session is idle on the server. */
static void test_begin_with_first_statement(void)
{
	const char *err = NULL;
	char *pid = query1("SELECT pg_backend_pid()", 0, NULL);
	char *state_sql = gn_strdup_printf("SELECT state FROM pg_stat_activity WHERE pid = %s", pid);
	const char *pv[1] = { "pipelined" };
	unsigned long long prep0, exec0, q0, prep1, exec1, q1;

	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_db_in_transaction(), "in a transaction at once");
	ok(outside_is(state_sql, "idle"), "the server has not seen BEGIN yet");
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, pv, &err) == 0,
	   "the first statement (BEGIN with it)");
	ok(outside_is(state_sql, "idle in transaction"), "now the server is in the transaction");
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'pipelined'", "0"), "not visible outside");
	ok(gn_db_commit(&err) == 0, "commit");
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'pipelined'", "1"), "visible after commit");

	ok(gn_db_begin(&err) == 0 && gn_db_commit(&err) == 0, "an empty transaction commits");
	ok(outside_is(state_sql, "idle"), "without the server seeing it");
	ok(gn_db_begin(&err) == 0, "begin");
	gn_db_rollback();
	ok(!gn_db_in_transaction(), "rolled back before its first statement");

	/* The text's second coming prepares it, in the same round trip. */
	const char *sql = "SELECT count(*) FROM t WHERE v = $1 AND 'second coming' <> ''";
	char *v = query1(sql, 1, pv);
	is_str(v, "1", "a text seen once, outside a transaction");
	gn_free(v);
	db_stmt_counts(&prep0, &exec0, &q0);
	ok(gn_db_begin(&err) == 0, "begin");
	PGresult *r = db_query(sql, 1, pv, &err);
	ok(r != NULL && strcmp(PQgetvalue(r, 0, 0), "1") == 0,
	   "the same text first in a transaction: prepared and run after BEGIN");
	PQclear(r);
	r = db_query(sql, 1, pv, &err);
	ok(r != NULL && strcmp(PQgetvalue(r, 0, 0), "1") == 0, "and again, prepared");
	PQclear(r);
	ok(gn_db_commit(&err) == 0, "commit");
	db_stmt_counts(&prep1, &exec1, &q1);
	ok(prep1 == prep0 + 1 && exec1 == exec0 + 3,
	   "prepared once, executed twice (and COMMIT, prepared before) (%llu, %llu)",
	   prep1 - prep0, exec1 - exec0);

	/* A first statement that fails: the transaction is aborted, as
	 * after any failure in it. */
	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_db_exec("SELEC 1", 0, NULL, &err) < 0, "a first statement with a syntax error fails");
	is_str(gn_db_error_sqlstate(), "42601", "with its own SQLSTATE");
	ok(gn_db_exec("SELECT 1", 0, NULL, &err) < 0, "the next one finds the transaction aborted");
	is_str(gn_db_error_sqlstate(), "25P02", "25P02");
	ok(gn_db_commit(&err) < 0, "and COMMIT does not report success");
	v = query1("SELECT 2", 0, NULL);
	is_str(v, "2", "the connection works after it");
	gn_free(v);
	gn_free(state_sql);
	gn_free(pid);
}

static void test_notify(void)
{
	const char *err = NULL;

	ok(gn_db_listen("Bad-Name", on_note, NULL, &err) < 0, "a channel name with - is refused");
	ok(gn_db_listen("a\"; DROP TABLE t; --", on_note, NULL, &err) < 0,
	   "a channel name with quotes is refused");
	ok(gn_db_listen("1abc", on_note, NULL, &err) < 0, "a channel name starting with a digit is refused");
	ok(gn_db_notify("x y", "p", &err) < 0, "notify on an invalid channel is refused");

	static int tag;
	ok(gn_db_listen("t_chan", on_note, &tag, &err) == 0, "listen on t_chan");
	char *v = query1("SELECT count(*) FROM pg_listening_channels() c WHERE c = 't_chan'", 0, NULL);
	is_str(v, "1", "the session listens on t_chan");
	gn_free(v);

	notes = 0;
	notify_from_outside();
	ok(run_until(&notes, 10, NULL), "a NOTIFY from another session is delivered through the loop");
	is_str(last_payload, "from outside", "with its payload");
	ok(last_data == &tag, "and the listener's data");

	notes = 0;
	ok(gn_db_notify("t_chan", "own", &err) == 0, "gn_db_notify");
	is_int(notes, 0, "our own notification is not delivered inside the query");
	ok(run_until(&notes, 10, NULL), "but from the loop afterwards");
	is_str(last_payload, "own", "with its payload");

	notes = 0;
	ok(gn_db_notify("t_other", "x", &err) == 0, "notify on a channel nobody listens to");
	ok(!run_until(&notes, 0.3, NULL), "is not delivered");
}

/* The connection breaks: synchronous queries, no loop running. */
static void test_reconnect_sync(void)
{
	const char *err = NULL;

	server_down();
	PGresult *r = db_query("SELECT 1", 0, NULL, &err);
	ok(r == NULL, "a query after the server went away fails");
	PQclear(r);
	is_int(gn_db_error_is_temporary(), 1, "as temporary");
	like(err, "connection", "the message says the connection broke");

	r = db_query("SELECT 1", 0, NULL, &err);
	ok(r == NULL && gn_db_error_is_temporary(), "the next query at once fails as temporary too");
	PQclear(r);
	like(err, "reconnecting", "without a connection attempt before the backoff passed");

	server_up();
	/* The backoff passes; the first query after it reconnects. */
	char *v = NULL;
	double deadline = mono() + 30;
	while (v == NULL && mono() < deadline) {
		sleep_ms(150);
		r = db_query("SELECT 42", 0, NULL, &err);
		if (r != NULL) {
			v = gn_strdup(PQgetvalue(r, 0, 0));
			PQclear(r);
		} else if (!gn_db_error_is_temporary()) {
			diag("permanent error while reconnecting: %s", err);
			break;
		}
	}
	is_str(v, "42", "a query succeeds once the server is back");
	gn_free(v);
	v = query1("SELECT count(*) FROM pg_listening_channels() c WHERE c = 't_chan'", 0, NULL);
	is_str(v, "1", "LISTEN was issued again after reconnecting");
	gn_free(v);
}

/* The connection breaks while idle: the loop notices and reconnects. */
static void test_reconnect_loop(void)
{
	static int never;

	server_down();
	/* With our own cluster the server stays away for a while: attempts
	 * from the loop fail and back off. */
	if (own_cluster())
		run_until(&never, 0.8, NULL);
	server_up();
	notes = 0;
	last_payload[0] = '\0';
	/* Only a reconnection from the loop with LISTEN issued again can
	 * deliver this: nothing else queries meanwhile. */
	ok(run_until(&notes, 30, notify_from_outside),
	   "after a restart, the loop reconnects and notifications arrive again");
	is_str(last_payload, "from outside", "with their payload");
	char *v = query1("SELECT 7", 0, NULL);
	is_str(v, "7", "queries work after the background reconnection");
	gn_free(v);
}

static void test_transaction_lost(void)
{
	const char *err = NULL;
	const char *p[1] = { "lost" };

	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_db_exec("INSERT INTO t (v) VALUES ($1)", 1, p, &err) == 0, "insert");
	server_down();
	ok(gn_db_exec("INSERT INTO t (v) VALUES ('lost 2')", 0, NULL, &err) < 0 &&
	   gn_db_error_is_temporary(), "a query when the connection broke fails as temporary");
	server_up();
	sleep_ms(300);	/* past the backoff: a query could reconnect now */
	ok(gn_db_exec("INSERT INTO t (v) VALUES ('lost 3')", 0, NULL, &err) < 0 &&
	   gn_db_error_is_temporary(),
	   "later queries of the lost transaction fail as temporary (no autocommit)");
	ok(gn_db_commit(&err) < 0, "commit of the lost transaction fails");
	is_int(gn_db_error_is_temporary(), 1, "as temporary");
	like(err, "transaction", "saying the transaction was lost");
	gn_db_rollback();

	char *v = NULL;
	double deadline = mono() + 30;
	while (v == NULL && mono() < deadline) {
		v = query1("SELECT count(*) FROM t WHERE v LIKE 'lost%'", 0, NULL);
		if (v == NULL)
			sleep_ms(150);
	}
	is_str(v, "0", "nothing of the lost transaction was committed");
	gn_free(v);
}


/* A query outside a transaction, retried past the reconnection backoff
 * while the loop runs (as in a worker: it drives the reconnection): its
 * value, or NULL when every try failed for 20 s (the last error in
 * *err_r). */
static char *query1_retry(const char *sql, const char **err_r)
{
	double deadline = mono() + 20;
	while (mono() < deadline) {
		PGresult *r = db_query(sql, 0, NULL, err_r);
		if (r != NULL) {
			char *v = gn_strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
			PQclear(r);
			return v;
		}
		ev_run(core_loop, EVRUN_NOWAIT);
		sleep_ms(50);
	}
	return NULL;
}

/* The connection breaks while COMMIT runs (a deferred trigger keeps it
 * busy; another session terminates ours meanwhile): the outcome is
 * unknown to the client, the transaction must not stay "lost", and the
 * server tells what became of it. */
static void test_commit_connection_lost(void)
{
	const char *err = NULL;

	ok(gn_db_exec("CREATE TABLE tc (v text)", 0, NULL, &err) == 0 &&
	   gn_db_exec("CREATE FUNCTION tc_slow() RETURNS trigger LANGUAGE plpgsql AS "
		      "$$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$", 0, NULL, &err) == 0 &&
	   gn_db_exec("CREATE CONSTRAINT TRIGGER tc_slow AFTER INSERT ON tc DEFERRABLE "
		      "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tc_slow()", 0, NULL, &err) == 0,
	   "a table whose COMMIT takes 5 s");

	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_db_exec("INSERT INTO tc (v) VALUES ('x')", 0, NULL, &err) == 0, "insert");
	char *pid = query1("SELECT pg_backend_pid()", 0, NULL);
	ok(pid != NULL, "our backend's pid");

	pid_t child = fork();
	if (child == 0) {
		/* Terminates our session while its COMMIT runs the trigger. */
		sleep_ms(700);
		char *sql = gn_strdup_printf("SELECT pg_terminate_backend(%s)", pid ? pid : "0");
		PGconn *c = PQconnectdb(conninfo);
		PQclear(PQexec(c, sql));
		PQfinish(c);
		_exit(0);
	}
	int r = gn_db_commit(&err);
	int status;
	waitpid(child, &status, 0);
	ok(r < 0, "the commit fails when the connection breaks during it");
	is_int(gn_db_error_is_temporary(), 1, "as temporary");
	ok(db_commit_outcome_unknown(), "with its outcome unknown");
	like(err, "outcome of COMMIT unknown", "saying so");
	is_int(gn_db_in_transaction(), 0, "no transaction is left open or lost");

	char *v = query1_retry("SELECT 1", &err);
	is_str(v, "1", "a query outside a transaction succeeds after reconnecting "
	       "(the lost COMMIT does not wedge the connection)");
	if (v == NULL)
		diag("last error: %s", err);
	gn_free(v);
	ok(outside_is("SELECT count(*) FROM tc", "0"), "nothing of the cut-off transaction is stored");

	ok(gn_db_begin(&err) == 0 && gn_db_exec("DROP TRIGGER tc_slow ON tc", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO tc (v) VALUES ('y')", 0, NULL, &err) == 0, "another transaction");
	ok(gn_db_commit(&err) == 0, "commits");
	ok(!db_commit_outcome_unknown(), "with its outcome known");
	gn_free(pid);
}

/* An error path that forgets to end a lost transaction: the next turn of
 * the loop ends it, so that queries work again. */
static void test_abandoned_transaction(void)
{
	const char *err = NULL;

	ok(gn_db_begin(&err) == 0, "begin a transaction an error path will abandon");
	ok(gn_db_exec("INSERT INTO t (v) VALUES ('abandoned')", 0, NULL, &err) == 0, "insert");
	server_down();
	ok(gn_db_exec("SELECT 1", 0, NULL, &err) < 0, "the connection breaks in it");
	server_up();
	/* No rollback, no commit: the caller forgot.  One turn of the loop. */
	ev_run(core_loop, EVRUN_NOWAIT);
	is_int(gn_db_in_transaction(), 0, "after the loop's turn no transaction is open or lost");
	char *v = query1_retry("SELECT count(*) FROM t WHERE v = 'abandoned'", &err);
	is_str(v, "0", "queries work again, and nothing of the abandoned transaction was stored");
	if (v == NULL)
		diag("last error: %s", err);
	gn_free(v);

	/* The same with the connection intact: the transaction is rolled
	 * back, not left to autocommit what follows. */
	ok(gn_db_begin(&err) == 0 && gn_db_exec("INSERT INTO t (v) VALUES ('left open')", 0, NULL,
						&err) == 0, "a transaction left open");
	ev_run(core_loop, EVRUN_NOWAIT);
	is_int(gn_db_in_transaction(), 0, "is ended at the loop's turn");
	ok(outside_is("SELECT count(*) FROM t WHERE v = 'left open'", "0"), "rolled back");
}

static void test_migrations(void)
{
	const char *err = NULL;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	is_int(db_check_schema(&err), 1, "a fresh database has pending migrations");
	char *fresh = gn_strdup_printf("database schema of core is at version 0 of %zu:"
				       " run gannet migrate", core_migrations_count);
	is_str(err, fresh, "saying which module is behind and what to run");
	gn_free(fresh);
	ok(gn_db_exec("SELECT 1", 0, NULL, &err) == 0 && gn_db_in_transaction() == 0,
	   "the check's missing table leaves the connection usable, outside a transaction");

	f = open_memstream(&out, &outlen);
	int n = db_migrate(f, &err);
	fclose(f);
	ok(n >= 1, "migrate applies the core's migrations on a fresh database");
	if (n < 0)
		diag("%s", err);
	like(out, "applied core 1 001_core\n", "and prints what it applied");
	free(out);
	ok(outside_is("SELECT count(*) FROM gn_schema_migrations WHERE module = 'core'"
		      " AND version = 1 AND name = '001_core'", "1"), "the migration is recorded");
	ok(outside_is("SELECT value ~ '^[0-9a-f-]{36}$' FROM gn_meta WHERE key = 'installation_id'",
		      "t"), "the installation id was generated");
	is_int(db_check_schema(&err), 0, "nothing is pending afterwards");

	out = NULL;
	f = open_memstream(&out, &outlen);
	n = db_migrate(f, &err);
	fclose(f);
	is_int(n, 0, "migrate again applies nothing");
	is_str(out, "", "and prints nothing");
	free(out);

	/* A list with a gap, a list starting at 0, a list registered twice. */
	static const struct gn_migration gap[] = {
		{ 1, "001_a", "SELECT 1" }, { 3, "003_c", "SELECT 1" },
	};
	static const struct gn_migration zero[] = { { 0, "000_a", "SELECT 1" } };
	static const struct gn_migration good[] = {
		{ 1, "001_a", "SELECT 1" }, { 2, "002_b", "SELECT 1" },
	};
	ok(migrations_add("gapmod", gap, 2, &err) < 0, "a list with a gap in versions is refused");
	like(err, "version 3", "naming the version");
	ok(migrations_add("zeromod", zero, 1, &err) < 0, "a list starting at 0 is refused");
	ok(migrations_add("core", good, 2, &err) < 0, "nobody registers migrations as core");
	ok(migrations_add("goodmod", good, 2, &err) == 0, "a good list is accepted");
	ok(migrations_add("goodmod", good, 2, &err) < 0, "twice for one module is refused");
	const struct gn_migration *list;
	size_t count;
	migrations_of("goodmod", &list, &count);
	ok(list == good && count == 2, "migrations_of returns the list");
	migrations_of("gapmod", &list, &count);
	ok(list == NULL && count == 0, "the refused list was not kept");

	/* A schema newer than this build knows. */
	gn_free(outside("INSERT INTO gn_schema_migrations (module, version, name)"
			" VALUES ('core', 99, '099_future')"));
	is_int(db_check_schema(&err), -1, "a newer recorded schema is refused");
	char *want = gn_strdup_printf("database schema of core is at version 99, this gannet knows"
				      " up to %zu: upgrade gannet", core_migrations_count);
	is_str(err, want, "with a message saying what to do");
	ok(db_migrate(NULL, &err) < 0, "migrate refuses it too");
	is_str(err, want, "with the same message");
	gn_free(want);

	/* A module this config does not load may be ahead: not our business. */
	gn_free(outside("DELETE FROM gn_schema_migrations WHERE version = 99"));
	gn_free(outside("INSERT INTO gn_schema_migrations (module, version, name)"
			" VALUES ('notloaded', 5, '005_x')"));
	is_int(db_check_schema(&err), 0, "versions of modules not loaded are ignored");

	/* A database one migration behind. */
	char *sql = gn_strdup_printf("DELETE FROM gn_schema_migrations WHERE module = 'core'"
				     " AND version = %zu", core_migrations_count);
	gn_free(outside(sql));
	gn_free(sql);
	is_int(db_check_schema(&err), 1, "a database behind this build has pending migrations");
	char *behind = gn_strdup_printf("database schema of core is at version %zu of %zu:"
					" run gannet migrate", core_migrations_count - 1,
					core_migrations_count);
	is_str(err, behind, "saying which version it is at");
	gn_free(behind);
	sql = gn_strdup_printf("INSERT INTO gn_schema_migrations (module, version, name)"
			       " VALUES ('core', %zu, '%s')", core_migrations_count,
			       core_migrations[core_migrations_count - 1].name);
	gn_free(outside(sql));
	gn_free(sql);
	is_int(db_check_schema(&err), 0, "recorded again, nothing is pending");
}

/* ---- set-up ---- */

static bool setup(void)
{
	const char *ci = getenv("GANNET_TEST_CONNINFO");
	const char *host = getenv("GANNET_TEST_PGHOST"), *port = getenv("GANNET_TEST_PGPORT");
	const char *err;

	/* admin() uses libpq before db_init() loads it. */
	if (db_pq_load(&err) < 0) {
		diag("%s", err);
		return false;
	}
	if (ci != NULL && *ci != '\0') {
		base_conninfo = gn_strdup(ci);
	} else if (host != NULL && *host != '\0' && port != NULL && *port != '\0') {
		base_conninfo = gn_strdup_printf("host=%s port=%s user=gannet dbname=postgres",
						 host, port);
	} else {
		snprintf(pgdir, sizeof(pgdir), "/tmp/gannet-pgtmp-XXXXXX");
		if (mkdtemp(pgdir) == NULL) {
			diag("mkdtemp: %s", strerror(errno));
			pgdir[0] = '\0';
			return false;
		}
		atexit(cleanup);
		if (pgtmp("start") != 0) {
			diag("t/lib/pgtmp start failed");
			return false;
		}
		base_conninfo = gn_strdup_printf("host=%s port=5432 user=gannet dbname=postgres",
						 pgdir);
	}

	snprintf(dbname, sizeof(dbname), "t_db_%ld_%ld", (long)getpid(), (long)time(NULL));
	PGconn *c = admin(base_conninfo);
	if (c == NULL)
		return false;
	char *sql = gn_strdup_printf("CREATE DATABASE %s", dbname);
	PGresult *r = PQexec(c, sql);
	gn_free(sql);
	bool okay = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!okay)
		diag("CREATE DATABASE: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	/* Later keywords win in a key=value conninfo. */
	conninfo = gn_strdup_printf("%s dbname=%s", base_conninfo, dbname);
	return okay;
}

static void drop_db(void)
{
	if (own_cluster())
		return;		/* the whole cluster goes */
	PGconn *c = admin(base_conninfo);
	if (c == NULL)
		return;
	char *sql = gn_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
	PQclear(PQexec(c, sql));
	gn_free(sql);
	PQfinish(c);
}

/* The first statistics (core/db/analyze.c): Gannet's tables without
 * statistics and with 50 changes or more are analyzed, others not. */
static void test_analyze_new(void)
{
	const char *err = NULL;
	ok(gn_db_exec("CREATE TABLE gn_t_busy (id int PRIMARY KEY)", 0, NULL, &err) == 0 &&
	   gn_db_exec("CREATE TABLE gn_t_quiet (id int PRIMARY KEY)", 0, NULL, &err) == 0 &&
	   gn_db_exec("CREATE TABLE \"gn_t Odd\" (id int PRIMARY KEY)", 0, NULL, &err) == 0 &&
	   gn_db_exec("CREATE TABLE other_busy (id int PRIMARY KEY)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO gn_t_busy SELECT generate_series(1, 60)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO \"gn_t Odd\" SELECT generate_series(1, 60)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO gn_t_quiet SELECT generate_series(1, 10)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO other_busy SELECT generate_series(1, 60)", 0, NULL, &err) == 0,
	   "four tables without statistics");
	/* The counts reach the statistics when this session goes idle. */
	gn_db_exec("SELECT pg_stat_force_next_flush()", 0, NULL, &err);
	const char *stats = "SELECT string_agg(relname || '=' || (reltuples >= 0)::text, ' ' "
			    "ORDER BY relname) FROM pg_class WHERE relname IN "
			    "('gn_t_busy', 'gn_t_quiet', 'gn_t Odd', 'other_busy')";
	char *v = query1(stats, 0, NULL);
	is_str(v, "gn_t Odd=false gn_t_busy=false gn_t_quiet=false other_busy=false",
	       "none has statistics");
	gn_free(v);
	int n = db_analyze_new(&err);
	ok(n >= 2, "db_analyze_new() analyzed %d tables (the gn_ ones with 60 rows, and "
	   "the migrations' that had changes)", n);
	v = query1(stats, 0, NULL);
	is_str(v, "gn_t Odd=true gn_t_busy=true gn_t_quiet=false other_busy=false",
	       "Gannet's tables with 50 changes or more have statistics now (a name that "
	       "needs quoting too), the others not");
	gn_free(v);
	is_int(db_analyze_new(&err), 0, "the next round has nothing to do");

	/* A role that owns one table and not the other (the database is
	 * the superuser's): only its own is asked for.  Roles are the
	 * cluster's, which other tests' runs may share: a name of this
	 * process's, removed at the end. */
	char role[64], sql[160];
	snprintf(role, sizeof(role), "t_analyze_plain_%ld", (long)getpid());
	snprintf(sql, sizeof(sql), "CREATE ROLE %s NOLOGIN", role);
	bool made = gn_db_exec(sql, 0, NULL, &err) == 0;
	snprintf(sql, sizeof(sql), "GRANT CREATE ON SCHEMA public TO %s", role);
	made = made && gn_db_exec(sql, 0, NULL, &err) == 0;
	snprintf(sql, sizeof(sql), "SET ROLE %s", role);
	ok(made &&
	   gn_db_exec("CREATE TABLE gn_t_theirs (id int PRIMARY KEY)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO gn_t_theirs SELECT generate_series(1, 60)", 0, NULL, &err) == 0 &&
	   gn_db_exec(sql, 0, NULL, &err) == 0 &&
	   gn_db_exec("CREATE TABLE gn_t_mine (id int PRIMARY KEY)", 0, NULL, &err) == 0 &&
	   gn_db_exec("INSERT INTO gn_t_mine SELECT generate_series(1, 60)", 0, NULL, &err) == 0,
	   "a plain role's table and the superuser's, both without statistics");
	gn_db_exec("SELECT pg_stat_force_next_flush()", 0, NULL, &err);
	is_int(db_analyze_new(&err), 1, "the plain role analyzes one table");
	gn_db_exec("RESET ROLE", 0, NULL, &err);
	v = query1("SELECT string_agg(relname || '=' || (reltuples >= 0)::text, ' ' ORDER BY relname) "
		   "FROM pg_class WHERE relname IN ('gn_t_mine', 'gn_t_theirs')", 0, NULL);
	is_str(v, "gn_t_mine=true gn_t_theirs=false",
	       "its own; the other's is not asked for (it would be skipped, every round)");
	gn_free(v);
	gn_db_exec("DROP TABLE gn_t_mine", 0, NULL, &err);
	snprintf(sql, sizeof(sql), "REVOKE CREATE ON SCHEMA public FROM %s", role);
	gn_db_exec(sql, 0, NULL, &err);
	snprintf(sql, sizeof(sql), "DROP ROLE %s", role);
	ok(gn_db_exec(sql, 0, NULL, &err) == 0, "the role is removed");
}

int main(void)
{
	const char *err = NULL;

	log_init("test_db");
	if (!setup()) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	loop_init();

	ok(db_init("host=/nonexistent/dir port=1 dbname=x connect_timeout=2", &err) < 0,
	   "db_init fails when the database cannot be reached");
	like(err, "cannot connect", "saying so");

	ok(db_init(conninfo, &err) == 0, "db_init connects");
	db_watch();

	test_migrations();
	test_queries();
	test_transactions();
	test_begin_with_first_statement();
	test_prepared();
	test_notify();
	test_reconnect_sync();
	test_prepared_after_reconnect();
	test_reconnect_loop();
	test_transaction_lost();
	test_commit_connection_lost();
	test_abandoned_transaction();
	test_analyze_new();

	db_close();
	drop_db();
	cleanup();
	return done_testing();
}
