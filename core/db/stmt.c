/*
 * core/db/stmt.c: prepared statements, kept per connection (db.c's
 * queries).
 *
 * Every query names its SQL text and sends its values apart, so a text
 * that comes again is the same statement with other values.  Parsing and
 * planning it anew each time (PQexecParams()'s unnamed statement) was a
 * good part of what the server spent on a short query, so a text seen
 * for the second time is prepared (PQprepare(), a named statement of the
 * session) and from then on only executed (PQexecPrepared()).  The first
 * sighting is only remembered: a statement that runs once (a LISTEN, a
 * migration's, a search of an unusual shape) costs no extra round trip.
 *
 * Nothing changes for the caller: the parameters' types are left to the
 * server to infer from the text (no types given), as PQexecParams() did,
 * so the same text means the same statement; results, errors and the
 * transaction's state are the same.  Prepared statements belong to the
 * session, not to a transaction: one prepared inside a transaction that
 * rolls back stays.
 *
 * The cache is bounded (STMT_MAX texts, least recently used out first: a
 * remembered text costs nothing to drop, a prepared one a DEALLOCATE,
 * sent only outside a transaction so that it can never abort one).  It is
 * forgotten whenever the session changes (db.c: a new connection) and
 * after a migration script (a result type may have changed).  Should the
 * server not know a statement after all (SQLSTATE 26000: a pooler or
 * DISCARD ALL reset the session), or refuse a plan whose result type
 * changed under it (0A000), db.c forgets it here and, outside a
 * transaction, runs the query again unprepared.
 *
 * Statement names are "gn_" and a counter that never repeats in a
 * process, so a forgotten statement's name is never reused.
 */
#include "db/internal.h"

#include <string.h>

/* Texts remembered (prepared or not) at most. */
#define STMT_MAX 256

struct stmt {
	char *sql;
	uint64_t hash;
	unsigned long long used;	/* stmt_clock at the last use */
	unsigned long long id;		/* 0: seen once, not prepared */
};

static struct {
	struct stmt list[STMT_MAX];
	size_t n;
	unsigned long long clock;
	unsigned long long next_id;
	unsigned long long prepared, executed, queries;	/* for the tests */
} cache;

/* FNV-1a: the texts are few and short; the hash only spares strcmp()s. */
static uint64_t text_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct stmt *find(const char *sql, uint64_t hash)
{
	for (size_t i = 0; i < cache.n; i++)
		if (cache.list[i].hash == hash && strcmp(cache.list[i].sql, sql) == 0)
			return &cache.list[i];
	return NULL;
}

static void name_of(const struct stmt *st, char *buf, size_t size)
{
	snprintf(buf, size, "gn_%llu", st->id);
}

static void drop(size_t i)
{
	gn_free(cache.list[i].sql);
	cache.list[i] = cache.list[--cache.n];
}

/* Makes room for one more text: drops the least recently used one that
 * is only remembered, else deallocates the least recently used prepared
 * one, which only happens outside a transaction (a DEALLOCATE that failed
 * inside one would abort it).  Returns whether there is room. */
static bool make_room(PGconn *conn)
{
	if (cache.n < STMT_MAX)
		return true;
	size_t lru = SIZE_MAX, lru_seen = SIZE_MAX;
	for (size_t i = 0; i < cache.n; i++) {
		if (cache.list[i].id == 0) {
			if (lru_seen == SIZE_MAX || cache.list[i].used < cache.list[lru_seen].used)
				lru_seen = i;
		} else if (lru == SIZE_MAX || cache.list[i].used < cache.list[lru].used) {
			lru = i;
		}
	}
	if (lru_seen != SIZE_MAX) {
		drop(lru_seen);
		return true;
	}
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	/* The name is ours ("gn_" and digits), never input. */
	char name[32], sql[48];
	name_of(&cache.list[lru], name, sizeof(name));
	snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
	PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
	bool done = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!done)
		return false;	/* the caller's query will tell what broke */
	drop(lru);
	return true;
}

/* The cache's entry for sql at this use: NULL when it runs unprepared
 * (its first sighting, remembered when room is made: room_ok is false in
 * pipeline mode, where make_room() cannot DEALLOCATE), else the entry,
 * with *prepare_r set when it is to be prepared now (its second sighting,
 * its id given; name_r gets its name either way). */
static struct stmt *stmt_use(PGconn *conn, const char *sql, bool room_ok, bool *prepare_r,
			     char *name_r, size_t name_size)
{
	uint64_t hash = text_hash(sql);
	struct stmt *st = find(sql, hash);
	cache.queries++;
	*prepare_r = false;
	if (st == NULL) {
		if (room_ok ? make_room(conn) : cache.n < STMT_MAX) {
			st = &cache.list[cache.n++];
			st->sql = gn_strdup(sql);
			st->hash = hash;
			st->id = 0;
			st->used = ++cache.clock;
		}
		return NULL;
	}
	st->used = ++cache.clock;
	if (st->id == 0) {
		st->id = ++cache.next_id;
		*prepare_r = true;
	}
	name_of(st, name_r, name_size);
	return st;
}

PGresult *db_stmt_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
		       const int *lengths, const int *formats, int result_format)
{
	bool prepare;
	char name[32];
	struct stmt *st = stmt_use(conn, sql, true, &prepare, name, sizeof(name));
	if (st == NULL)
		return PQexecParams(conn, sql, nparams, NULL, values, lengths, formats, result_format);
	if (prepare) {
		PGresult *res = PQprepare(conn, name, sql, nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* Its error is the query's (a syntax error, a lost
			 * connection, an aborted transaction): nothing was
			 * prepared. */
			st->id = 0;
			return res;
		}
		PQclear(res);
		cache.prepared++;
	}
	cache.executed++;
	return PQexecPrepared(conn, name, nparams, values, lengths, formats, result_format);
}

/* The next command's result in pipeline mode (NULL when none came: the
 * connection broke), the NULL that ends it consumed. */
static PGresult *pipeline_result(PGconn *conn)
{
	PGresult *res = PQgetResult(conn);
	if (res != NULL) {
		PGresult *more;
		while ((more = PQgetResult(conn)) != NULL)
			PQclear(more);
	}
	return res;
}

/* Whether a pipeline result is the command's success. */
static bool pipeline_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return res != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

PGresult *db_stmt_exec_begin(PGconn *conn, const char *sql, int nparams, const char *const *values,
			     const int *lengths, const int *formats, int result_format)
{
	if (PQenterPipelineMode(conn) != 1) {
		/* Not idle (cannot happen between queries): one at a time. */
		PGresult *res = PQexecParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return res;
		PQclear(res);
		return db_stmt_exec(conn, sql, nparams, values, lengths, formats, result_format);
	}
	bool prepare;
	char name[32];
	struct stmt *st = stmt_use(conn, sql, false, &prepare, name, sizeof(name));
	bool sent = PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
	if (sent && prepare)
		sent = PQsendPrepare(conn, name, sql, nparams, NULL) == 1;
	if (sent)
		sent = st != NULL ? PQsendQueryPrepared(conn, name, nparams, values, lengths, formats,
							result_format) == 1 :
				    PQsendQueryParams(conn, sql, nparams, NULL, values, lengths, formats,
						      result_format) == 1;
	if (sent)
		sent = PQpipelineSync(conn) == 1;
	if (!sent) {
		/* Nothing could be sent (the connection broke): libpq's
		 * error, as PQexecParams() gives it. */
		if (prepare)
			st->id = 0;
		PQexitPipelineMode(conn);
		return NULL;
	}
	PGresult *begin = pipeline_result(conn);
	PGresult *prep = prepare ? pipeline_result(conn) : NULL;
	PGresult *res = pipeline_result(conn);
	/* PGRES_PIPELINE_SYNC, then out of pipeline mode; whatever else
	 * came is read first.  A connection still in pipeline mode after
	 * that is broken: the caller drops it (PQpipelineStatus()). */
	for (int i = 0; i < 8 && PQexitPipelineMode(conn) != 1; i++) {
		PGresult *more = PQgetResult(conn);
		if (more == NULL && PQstatus(conn) != CONNECTION_OK)
			break;
		PQclear(more);
	}
	if (!pipeline_ok(begin)) {
		if (prepare)
			st->id = 0;
		PQclear(prep);
		PQclear(res);
		return begin;
	}
	PQclear(begin);
	if (prepare) {
		if (!pipeline_ok(prep)) {
			/* Its error is the query's (as in db_stmt_exec()). */
			st->id = 0;
			PQclear(res);
			return prep;
		}
		PQclear(prep);
		cache.prepared++;
	}
	if (st != NULL)
		cache.executed++;
	return res;
}

bool db_stmt_failed(const char *sql, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL)
		return false;
	if (strcmp(state, "26000") == 0) {
		/* The session lost its statements: all of them. */
		gn_log(GN_LOG_WARN, "core", "event=db_statements_lost note=\"prepared again as needed\"");
		db_stmt_reset();
		return true;
	}
	if (strcmp(state, "0A000") == 0) {
		/* "cached plan must not change result type": the schema
		 * changed under this statement.  Forgotten (its name is not
		 * reused), it is prepared again on its next use. */
		struct stmt *st = find(sql, text_hash(sql));
		if (st == NULL || st->id == 0)
			return false;
		gn_log(GN_LOG_INFO, "core", "event=db_statement_replanned error=%s",
		       gn_log_quote(0, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)));
		drop((size_t)(st - cache.list));
		return true;
	}
	return false;
}

void db_stmt_reset(void)
{
	for (size_t i = 0; i < cache.n; i++)
		gn_free(cache.list[i].sql);
	cache.n = 0;
}

void db_stmt_counts(unsigned long long *prepared_r, unsigned long long *executed_r,
		    unsigned long long *queries_r)
{
	*prepared_r = cache.prepared;
	*executed_r = cache.executed;
	if (queries_r != NULL)
		*queries_r = cache.queries;
}
