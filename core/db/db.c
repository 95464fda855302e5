/*
 * core/db/db.c: the process's one PostgreSQL connection (gannet/db.h).
 *
 * Queries are synchronous and parametrised: every statement goes through
 * PQexecParams(), or once its text came twice, PQprepare() and
 * PQexecPrepared() (stmt.c), so nothing built from input is ever parsed as
 * SQL.  The one exception is db_exec_script(), which runs the constant,
 * multi-statement text of a migration compiled into gannet or a module.
 *
 * Losing the connection never crashes and never blocks the loop:
 *
 *   - A query that finds the connection broken (PQstatus() bad after the
 *     call, or SQLSTATE class 08 / 57P01 / 57P02 from the server) fails with
 *     a temporary error, logs one line, and the connection is dropped.  A
 *     transaction that was open is gone: every query until its owner ends
 *     it (gn_db_commit() / gn_db_rollback() / gn_db_begin()) fails as
 *     temporary, and gn_db_commit() fails as temporary, so nothing of it
 *     runs in autocommit on the next connection.
 *   - Recovery from that is unconditional: gn_db_commit() ends the
 *     transaction whatever happens to the COMMIT (a connection lost during
 *     it leaves nothing "lost" behind: the outcome is unknown, see
 *     db_commit_outcome_unknown()), and no transaction
 *     outlives the turn of the loop that began it: a watcher that runs
 *     before the loop waits rolls back (and logs, as a bug) any transaction
 *     an error path left open or lost.  So a query outside a transaction
 *     never fails for a transaction lost earlier, and one forgotten
 *     rollback cannot wedge a worker.
 *   - While disconnected, a repeating timer on the loop (when there is a
 *     loop) starts an asynchronous connection attempt (PQconnectStartParams /
 *     PQconnectPoll driven by an I/O watch) each time the backoff has passed:
 *     100ms, doubling to 10s.  An attempt that does not finish within
 *     DB_CONNECT_TIMEOUT_MS is abandoned.
 *   - A query while disconnected makes one synchronous attempt only if the
 *     backoff time has passed (this is also how processes without a loop,
 *     like `gannet migrate`, reconnect); otherwise it fails at once as
 *     temporary.
 *   - After reconnecting, LISTEN is issued again for every channel and the
 *     socket watch (db_watch()) is re-added.
 *
 * Notifications arrive in two ways: on the socket (the db_watch() I/O watch
 * calls PQconsumeInput()) and together with query results (drained after
 * every query).  Either way they are queued and the gn_db_listen()
 * callbacks run from the loop, never inside the caller's query.
 *
 * Durability is PostgreSQL's: a successful gn_db_commit() means the data
 * is on disk.  Two kinds of transaction set synchronous_commit off for
 * themselves, because nothing is acknowledged on their strength: a large
 * blob's chunks written before the delivery that uses them commits
 * (core/store/blob.c: that durable commit flushes them too), and the
 * outbound queue's claims and result records (core/queue/queue.c: losing
 * one in a crash only brings queued recipients back, to be delivered
 * again).
 */
#include "db/internal.h"

#include <string.h>
#include <time.h>

#define DB_BACKOFF_MIN_MS 100UL
#define DB_BACKOFF_MAX_MS 10000UL
#define DB_TICK_MS 100UL
#define DB_CONNECT_TIMEOUT_MS 10000ULL
#define DB_CHANNEL_MAX 63	/* NAMEDATALEN - 1 */
#define DB_QUEUE_MAX 10000	/* queued notifications before dropping */

struct db_listener {
	char *channel;
	gn_db_notify_fn *fn;
	void *data;
};

struct db_note {
	char *channel;
	char *payload;
};

struct db_error {
	char message[1024];
	char sqlstate[6];
	bool temporary;
};

static struct {
	char *conninfo;
	PGconn *conn;			/* NULL while disconnected */
	bool initialized;		/* db_init() succeeded once */

	/* transaction state */
	bool tx_open;			/* gn_db_begin() succeeded */
	bool begin_pending;		/* ... and BEGIN goes with the first statement */
	bool tx_lost;			/* ... and the connection broke since */
	bool tx_failed_temporary;	/* a query in it failed temporarily */
	bool commit_unknown;		/* the last COMMIT lost the connection */
	bool prepare_on;		/* the end-of-turn watcher is started */
	ev_prepare prepare;

	/* reconnecting */
	unsigned long backoff_ms;
	unsigned long long next_attempt_ms;	/* monotonic */
	struct gn_timer *tick;		/* while disconnected, with a loop */
	PGconn *pending;		/* asynchronous attempt under way */
	struct gn_io *pending_io;
	int pending_fd;
	unsigned long long pending_deadline_ms;

	/* notifications */
	bool watch_wanted;		/* db_watch() was called */
	struct gn_io *io;		/* on PQsocket(conn) */
	struct gn_timer *dispatch;	/* runs queued callbacks */
	struct db_listener *listeners;
	size_t n_listeners;
	struct db_note *queue;
	size_t n_queue;

	struct db_error err;
} db = { .backoff_ms = DB_BACKOFF_MIN_MS, .pending_fd = -1 };

static void conn_lost(const char *why);

static unsigned long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000ULL +
	       (unsigned long long)ts.tv_nsec / 1000000ULL;
}

/* libpq messages end in a newline and may span lines: one line for logs,
 * runs of white space as one space. */
static void oneline(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	for (const char *p = src; *p != '\0' && n + 1 < size; p++) {
		bool space = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
		if (space && (n == 0 || dst[n - 1] == ' '))
			continue;
		dst[n++] = space ? ' ' : *p;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

static void set_message(const char *msg)
{
	if (msg == NULL || *msg == '\0')
		msg = "unknown database error";
	oneline(db.err.message, sizeof(db.err.message), msg);
}

/* libpq prints notices (and errors that arrive while idle) to stderr by
 * default: they go to the log instead, one line each. */
static void notice_cb(void *arg, const char *message)
{
	char line[512];
	(void)arg;
	oneline(line, sizeof(line), message);
	gn_log(GN_LOG_DEBUG, "core", "event=db_notice message=%s", gn_log_quote(0, line));
}

static void error_reset(void)
{
	db.err.message[0] = '\0';
	db.err.sqlstate[0] = '\0';
	db.err.temporary = false;
}

static void error_set(bool temporary, const char *sqlstate, const char *msg)
{
	set_message(msg);
	snprintf(db.err.sqlstate, sizeof(db.err.sqlstate), "%s", sqlstate ? sqlstate : "");
	db.err.temporary = temporary;
}

/* SQLSTATEs a client should retry later: connection exceptions (class 08),
 * serialization failure, deadlock, admin/crash shutdown, cannot connect now. */
static bool sqlstate_temporary(const char *s)
{
	if (s == NULL)
		return false;
	return strncmp(s, "08", 2) == 0 || strcmp(s, "40001") == 0 ||
	       strcmp(s, "40P01") == 0 || strcmp(s, "57P01") == 0 ||
	       strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

static void error_from_result(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[900];

	if (primary == NULL)
		primary = res ? PQresultErrorMessage(res) : PQerrorMessage(db.conn);
	if (state != NULL)
		snprintf(msg, sizeof(msg), "%s (SQLSTATE %s)", primary, state);
	else
		snprintf(msg, sizeof(msg), "%s", primary);
	error_set(sqlstate_temporary(state), state, msg);
	if (db.tx_open && db.err.temporary)
		db.tx_failed_temporary = true;
}

/* ---- notifications ---- */

static bool channel_valid(const char *channel)
{
	size_t n = channel ? strlen(channel) : 0;
	if (n == 0 || n > DB_CHANNEL_MAX)
		return false;
	if (channel[0] >= '0' && channel[0] <= '9')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = channel[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static bool channel_listened(const char *channel)
{
	for (size_t i = 0; i < db.n_listeners; i++)
		if (strcmp(db.listeners[i].channel, channel) == 0)
			return true;
	return false;
}

static void queue_clear(void)
{
	for (size_t i = 0; i < db.n_queue; i++) {
		gn_free(db.queue[i].channel);
		gn_free(db.queue[i].payload);
	}
	gn_free(db.queue);
	db.queue = NULL;
	db.n_queue = 0;
}

/* Runs the callbacks of what is queued.  A callback may query (and so
 * queue more, or lose the connection): the queue is taken over first. */
static void dispatch_now(void)
{
	while (db.n_queue > 0) {
		struct db_note *notes = db.queue;
		size_t n = db.n_queue;
		db.queue = NULL;
		db.n_queue = 0;
		for (size_t i = 0; i < n; i++) {
			/* Index loop: a callback may add listeners (realloc). */
			for (size_t j = 0; j < db.n_listeners; j++) {
				if (strcmp(db.listeners[j].channel, notes[i].channel) == 0)
					db.listeners[j].fn(notes[i].channel, notes[i].payload,
							   db.listeners[j].data);
			}
			gn_free(notes[i].channel);
			gn_free(notes[i].payload);
		}
		gn_free(notes);
	}
}

static void dispatch_cb(void *data)
{
	(void)data;
	dispatch_now();
}

/* Moves what libpq has received into the queue. */
static size_t drain_notifications(void)
{
	PGnotify *n;
	size_t got = 0;

	if (db.conn == NULL)
		return 0;
	while ((n = PQnotifies(db.conn)) != NULL) {
		if (channel_listened(n->relname)) {
			if (db.n_queue >= DB_QUEUE_MAX) {
				gn_log(GN_LOG_WARN, "core", "event=db_notify_dropped channel=%s",
				       gn_log_quote(0, n->relname));
			} else {
				db.queue = gn_realloc(db.queue, (db.n_queue + 1) * sizeof(*db.queue));
				db.queue[db.n_queue].channel = gn_strdup(n->relname);
				db.queue[db.n_queue].payload = gn_strdup(n->extra ? n->extra : "");
				db.n_queue++;
				got++;
			}
		}
		PQfreemem(n);
	}
	return got;
}

/* After a query: deliver from the loop, later. */
static void drain_and_schedule(void)
{
	if (drain_notifications() == 0)
		return;
	if (core_loop == NULL)
		return;		/* delivered when a loop exists (db_watch()) */
	if (db.dispatch == NULL)
		db.dispatch = gn_timer_new(1, false, dispatch_cb, NULL);
	else
		gn_timer_reset(db.dispatch);
}

static void io_cb(int fd, unsigned events, void *data)
{
	(void)fd;
	(void)events;
	(void)data;
	if (db.conn == NULL)
		return;
	if (PQconsumeInput(db.conn) == 0 || PQstatus(db.conn) != CONNECTION_OK) {
		char why[512];
		snprintf(why, sizeof(why), "%s", PQerrorMessage(db.conn));
		conn_lost(why);
		return;
	}
	drain_notifications();
	dispatch_now();
}

static void watch_add(void)
{
	if (!db.watch_wanted || db.conn == NULL || db.io != NULL || core_loop == NULL)
		return;
	int fd = PQsocket(db.conn);
	if (fd >= 0)
		db.io = gn_io_new(fd, GN_IO_READ, io_cb, NULL);
}

/* ---- connecting ---- */

/* Defaults come first so that the configured conninfo (expanded in place
 * of dbname) may override them.  TCP keepalives make a vanished server
 * (not just a stopped one) show up as a broken connection within a minute
 * instead of the kernel's hours; they do nothing on unix sockets. */
static const char *const conn_keys[] = {
	"application_name", "connect_timeout", "keepalives", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "dbname", NULL
};
#define CONN_NKEYS (sizeof(conn_keys) / sizeof(conn_keys[0]))

static void conn_values(const char **values)
{
	values[0] = "gannet";
	values[1] = "10";
	values[2] = "1";
	values[3] = "30";
	values[4] = "10";
	values[5] = "3";
	values[6] = db.conninfo;
	values[7] = NULL;
}

/* Issues LISTEN for every channel on a fresh connection.  Returns 0 or -1
 * (error set). */
static int listen_all(void)
{
	for (size_t i = 0; i < db.n_listeners; i++) {
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(db.listeners[j].channel, db.listeners[i].channel) == 0)
				seen = true;
		if (seen)
			continue;
		char *quoted = PQescapeIdentifier(db.conn, db.listeners[i].channel,
						  strlen(db.listeners[i].channel));
		if (quoted == NULL) {
			error_set(true, "", PQerrorMessage(db.conn));
			return -1;
		}
		char *sql = gn_strdup_printf("LISTEN %s", quoted);
		PQfreemem(quoted);
		PGresult *res = PQexecParams(db.conn, sql, 0, NULL, NULL, NULL, NULL, 0);
		gn_free(sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			error_from_result(res);
			if (PQstatus(db.conn) != CONNECTION_OK)
				db.err.temporary = true;
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

static void tick_stop(void)
{
	gn_timer_free(&db.tick);
}

static void pending_abort(void)
{
	gn_io_free(&db.pending_io);
	if (db.pending != NULL)
		PQfinish(db.pending);
	db.pending = NULL;
	db.pending_fd = -1;
}

/* A connection attempt failed: wait longer next time. */
static void attempt_failed(const char *why)
{
	db.backoff_ms *= 2;
	if (db.backoff_ms > DB_BACKOFF_MAX_MS)
		db.backoff_ms = DB_BACKOFF_MAX_MS;
	db.next_attempt_ms = now_ms() + db.backoff_ms;
	set_message(why);
	gn_log(GN_LOG_WARN, "core", "event=db_reconnect_failed error=%s retry_ms=%lu",
	       gn_log_quote(0, db.err.message), db.backoff_ms);
}

/* conn is connected: adopt it, re-LISTEN, watch.  Returns 0, or -1 when
 * the connection broke again at once (error set, conn dropped). */
static int conn_adopt(PGconn *conn, bool reconnect)
{
	db.conn = conn;
	db_stmt_reset();	/* a new session has no prepared statements */
	if (listen_all() < 0) {
		char why[1024];
		snprintf(why, sizeof(why), "LISTEN after connecting: %.900s", db.err.message);
		PQfinish(db.conn);
		db.conn = NULL;
		error_set(true, "08006", why);
		return -1;
	}
	db.backoff_ms = DB_BACKOFF_MIN_MS;
	tick_stop();
	watch_add();
	if (reconnect)
		gn_log(GN_LOG_INFO, "core", "event=db_reconnected listen=%zu", db.n_listeners);
	return 0;
}

/* One synchronous attempt.  Returns 0 or -1 (error set, temporary). */
static int connect_sync(bool reconnect)
{
	const char *values[CONN_NKEYS];
	conn_values(values);
	PGconn *conn = PQconnectdbParams(conn_keys, values, 1);
	if (conn != NULL)
		PQsetNoticeProcessor(conn, notice_cb, NULL);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		error_set(true, "08001", conn ? PQerrorMessage(conn) : "out of memory");
		if (conn != NULL)
			PQfinish(conn);
		return -1;
	}
	return conn_adopt(conn, reconnect);
}

static void pending_io_cb(int fd, unsigned events, void *data);

/* Drives the asynchronous attempt one step (RFC-less: libpq's documented
 * PQconnectPoll protocol; the socket may change between steps). */
static void pending_step(PostgresPollingStatusType st)
{
	if (st == PGRES_POLLING_OK) {
		PGconn *conn = db.pending;
		gn_io_free(&db.pending_io);
		db.pending = NULL;
		db.pending_fd = -1;
		if (conn_adopt(conn, true) < 0)
			attempt_failed(db.err.message);
		return;
	}
	if (st == PGRES_POLLING_FAILED) {
		char why[512];
		snprintf(why, sizeof(why), "%s", PQerrorMessage(db.pending));
		pending_abort();
		attempt_failed(why);
		return;
	}
	unsigned ev = st == PGRES_POLLING_WRITING ? GN_IO_WRITE : GN_IO_READ;
	int fd = PQsocket(db.pending);
	if (fd != db.pending_fd || db.pending_io == NULL) {
		gn_io_free(&db.pending_io);
		db.pending_fd = fd;
		db.pending_io = gn_io_new(fd, ev, pending_io_cb, NULL);
	} else {
		gn_io_set_events(db.pending_io, ev);
	}
}

static void pending_io_cb(int fd, unsigned events, void *data)
{
	(void)fd;
	(void)events;
	(void)data;
	if (db.pending != NULL)
		pending_step(PQconnectPoll(db.pending));
}

static void connect_async(void)
{
	const char *values[CONN_NKEYS];
	conn_values(values);
	db.pending = PQconnectStartParams(conn_keys, values, 1);
	if (db.pending != NULL)
		PQsetNoticeProcessor(db.pending, notice_cb, NULL);
	if (db.pending == NULL || PQstatus(db.pending) == CONNECTION_BAD) {
		char why[512];
		snprintf(why, sizeof(why), "%s",
			 db.pending ? PQerrorMessage(db.pending) : "out of memory");
		pending_abort();
		attempt_failed(why);
		return;
	}
	db.pending_deadline_ms = now_ms() + DB_CONNECT_TIMEOUT_MS;
	/* libpq: after PQconnectStart, behave as if PGRES_POLLING_WRITING. */
	pending_step(PGRES_POLLING_WRITING);
}

/* While disconnected: start an attempt when the backoff has passed; give
 * up on one that takes too long. */
static void tick_cb(void *data)
{
	(void)data;
	if (db.conn != NULL) {
		return;
	}
	unsigned long long now = now_ms();
	if (db.pending != NULL) {
		if (now >= db.pending_deadline_ms) {
			pending_abort();
			attempt_failed("timeout connecting to the database");
		}
		return;
	}
	if (now >= db.next_attempt_ms)
		connect_async();
}

static void tick_start(void)
{
	if (db.tick == NULL && core_loop != NULL)
		db.tick = gn_timer_new(DB_TICK_MS, true, tick_cb, NULL);
}

/* The connection broke: drop it, remember a lost transaction, schedule the
 * reconnection.  The current query's error is set to temporary. */
static void conn_lost(const char *why)
{
	char msg[900];
	snprintf(msg, sizeof(msg), "database connection lost: %s", why ? why : "");
	gn_io_free(&db.io);
	if (db.conn != NULL)
		PQfinish(db.conn);
	db.conn = NULL;
	db_stmt_reset();
	if (db.tx_open)
		db.tx_lost = true;
	db.begin_pending = false;
	db.backoff_ms = DB_BACKOFF_MIN_MS;
	db.next_attempt_ms = now_ms() + db.backoff_ms;
	error_set(true, "08006", msg);
	gn_log(GN_LOG_WARN, "core", "event=db_lost error=%s in_transaction=%s retry_ms=%lu",
	       gn_log_quote(0, db.err.message), db.tx_open ? "yes" : "no", db.backoff_ms);
	tick_start();
}

/* Whether a query may run now.  While disconnected: one synchronous attempt
 * when the backoff has passed, else a temporary error at once. */
static bool ensure_connected(void)
{
	if (db.conn != NULL)
		return true;
	if (!db.initialized) {
		error_set(false, "", "no database connection (db_init not called)");
		return false;
	}
	if (db.pending != NULL || now_ms() < db.next_attempt_ms) {
		error_set(true, "08006", "database unavailable, reconnecting");
		return false;
	}
	if (connect_sync(true) == 0)
		return true;
	char why[1024];
	snprintf(why, sizeof(why), "%s", db.err.message);
	attempt_failed(why);
	snprintf(why, sizeof(why), "database unavailable: %.900s", db.err.message);
	error_set(true, "08006", why);
	tick_start();
	return false;
}

/* Whether the query found the connection broken: libpq says so, or the
 * server reported a connection failure or that this session is being
 * terminated (the socket may not have shown EOF yet).  Then *why_r gets
 * the reason. */
static bool query_lost_connection(const PGresult *res, char *why, size_t size)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(db.conn) != CONNECTION_OK) {
		snprintf(why, size, "%s", PQerrorMessage(db.conn));
		return true;
	}
	if (st != NULL && (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 ||
			   strcmp(st, "57P02") == 0)) {
		snprintf(why, size, "%s", PQresultErrorMessage(res));
		return true;
	}
	return false;
}

/* ---- core.h ---- */

int db_init(const char *conninfo, const char **error_r)
{
	static char msg[1100];

	db_close();
	/* The first connection of the process loads libpq (pq.c). */
	if (db_pq_load(error_r) < 0)
		return -1;
	db.conninfo = gn_strdup(conninfo ? conninfo : "");
	db.backoff_ms = DB_BACKOFF_MIN_MS;
	db.next_attempt_ms = 0;
	error_reset();
	if (connect_sync(false) < 0) {
		snprintf(msg, sizeof(msg), "cannot connect to the database: %s", db.err.message);
		gn_free(db.conninfo);
		db.conninfo = NULL;
		*error_r = msg;
		return -1;
	}
	db.initialized = true;
	gn_log(GN_LOG_DEBUG, "core", "event=db_connected server_version=%d",
	       PQserverVersion(db.conn));
	return 0;
}

/* Before the loop waits: no transaction outlives the turn that began it
 * (no gannet code keeps one open across a wait, by design: it would hold
 * locks while a peer dawdles).  One still open or lost here was left by
 * an error path that forgot to end it: end it, so that the next query
 * (any session's) runs on a clean connection. */
static void prepare_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	bool open = db.tx_open || db.tx_lost;
	if (!open && db.conn != NULL) {
		PGTransactionStatusType st = PQtransactionStatus(db.conn);
		open = st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
	}
	if (!open)
		return;
	gn_log(GN_LOG_ERROR, "core", "event=db_transaction_abandoned lost=%s "
	       "note=\"rolled back at the end of the loop's turn\"", db.tx_lost ? "yes" : "no");
	gn_db_rollback();
}

void db_watch(void)
{
	db.watch_wanted = true;
	watch_add();
	if (!db.prepare_on && core_loop != NULL) {
		ev_prepare_init(&db.prepare, prepare_cb);
		ev_prepare_start(core_loop, &db.prepare);
		ev_unref(core_loop);	/* keeps no loop alive by itself */
		db.prepare_on = true;
	}
	/* Anything drained before there was a loop. */
	if (db.n_queue > 0 && core_loop != NULL) {
		if (db.dispatch == NULL)
			db.dispatch = gn_timer_new(1, false, dispatch_cb, NULL);
		else
			gn_timer_reset(db.dispatch);
	}
}

void db_close(void)
{
	if (db.prepare_on) {
		ev_ref(core_loop);
		ev_prepare_stop(core_loop, &db.prepare);
		db.prepare_on = false;
	}
	gn_io_free(&db.io);
	gn_timer_free(&db.dispatch);
	tick_stop();
	pending_abort();
	if (db.conn != NULL)
		PQfinish(db.conn);
	db.conn = NULL;
	db_stmt_reset();
	for (size_t i = 0; i < db.n_listeners; i++)
		gn_free(db.listeners[i].channel);
	gn_free(db.listeners);
	db.listeners = NULL;
	db.n_listeners = 0;
	queue_clear();
	gn_free(db.conninfo);
	db.conninfo = NULL;
	db.initialized = false;
	db.watch_wanted = false;
	db.tx_open = db.tx_lost = db.tx_failed_temporary = db.begin_pending = false;
	db.commit_unknown = false;
}

int db_exec_script(const char *sql, const char **error_r)
{
	error_reset();
	if (db.tx_lost) {
		error_set(true, "08006", "the transaction was lost with the database connection");
		*error_r = db.err.message;
		return -1;
	}
	if (!ensure_connected()) {
		*error_r = db.err.message;
		return -1;
	}
	/* Constant text compiled into gannet or a module (migrations), never
	 * input: the only PQexec() in gannet, for multi-statement scripts.
	 * A BEGIN left to the first statement goes first. */
	PGresult *res = PQexec(db.conn, db.begin_pending ? "BEGIN" : sql);
	if (db.begin_pending && PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		res = PQexec(db.conn, sql);
	}
	db.begin_pending = false;
	/* A migration may change what a prepared statement returns: they
	 * are prepared again (stmt.c). */
	db_stmt_reset();
	char why[512];
	if (query_lost_connection(res, why, sizeof(why))) {
		PQclear(res);
		conn_lost(why);
		*error_r = db.err.message;
		return -1;
	}
	drain_and_schedule();
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		error_from_result(res);
		PQclear(res);
		*error_r = db.err.message;
		return -1;
	}
	PQclear(res);
	return 0;
}

/* ---- gannet/db.h (the result wrappers: result.c) ---- */

PGresult *db_query_params(const char *sql, int nparams,
			  const char *const *values, const int *lengths,
			  const int *formats, int result_format,
			  const char **error_r)
{
	error_reset();
	if (db.tx_lost) {
		error_set(true, "08006", "the transaction was lost with the database connection");
		*error_r = db.err.message;
		return NULL;
	}
	if (!ensure_connected()) {
		*error_r = db.err.message;
		return NULL;
	}
	PGresult *res;
	if (db.begin_pending) {
		db.begin_pending = false;
		res = db_stmt_exec_begin(db.conn, sql, nparams, values, lengths, formats,
					 result_format);
		if (PQpipelineStatus(db.conn) != PQ_PIPELINE_OFF) {
			PQclear(res);
			conn_lost("the connection broke during a pipeline");
			*error_r = db.err.message;
			return NULL;
		}
	} else {
		res = db_stmt_exec(db.conn, sql, nparams, values, lengths, formats, result_format);
	}
	if (PQresultStatus(res) == PGRES_FATAL_ERROR && db_stmt_failed(sql, res) &&
	    !db.tx_open && PQtransactionStatus(db.conn) == PQTRANS_IDLE) {
		/* The prepared statement was the problem (stmt.c), and no
		 * transaction was open: the failed statement did nothing, so
		 * it runs again, unprepared. */
		PQclear(res);
		res = PQexecParams(db.conn, sql, nparams, NULL, values, lengths, formats,
				   result_format);
	}
	char why[512];
	if (query_lost_connection(res, why, sizeof(why))) {
		PQclear(res);
		conn_lost(why);
		*error_r = db.err.message;
		return NULL;
	}
	drain_and_schedule();
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	if (res == NULL)
		error_set(false, "", PQerrorMessage(db.conn));
	else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR)
		error_from_result(res);
	else
		error_set(false, "", "unexpected result (COPY is not supported)");
	PQclear(res);
	*error_r = db.err.message;
	return NULL;
}

PGresult *db_query(const char *sql, int nparams,
		   const char *const *params, const char **error_r)
{
	return db_query_params(sql, nparams, params, NULL, NULL, 0, error_r);
}

int gn_db_exec(const char *sql, int nparams, const char *const *params,
	       const char **error_r)
{
	PGresult *res = db_query(sql, nparams, params, error_r);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int gn_db_in_transaction(void)
{
	if (db.tx_lost)
		return 1;
	if (db.conn == NULL)
		return 0;
	if (db.begin_pending)
		return 1;
	PGTransactionStatusType st = PQtransactionStatus(db.conn);
	return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

int gn_db_begin(const char **error_r)
{
	if (db.tx_lost || db.tx_open) {
		if (db.tx_lost)
			gn_log(GN_LOG_DEBUG, "core", "event=db_begin note=\"previous transaction was lost\"");
		db.tx_open = db.tx_lost = false;
	}
	db.tx_failed_temporary = false;
	db.begin_pending = false;
	/* BEGIN goes with the transaction's first statement (db_query_params(),
	 * stmt.c's db_stmt_exec_begin()): a round trip less a transaction.
	 * Until then the server is idle and nothing of the transaction has
	 * happened, so a connection that breaks meanwhile loses it as one
	 * that breaks after BEGIN would (tx_lost). */
	error_reset();
	if (!ensure_connected()) {
		*error_r = db.err.message;
		return -1;
	}
	if (PQtransactionStatus(db.conn) != PQTRANS_IDLE) {
		/* Cannot happen (a transaction nobody owns): BEGIN now, and
		 * the server's warning says the rest. */
		if (gn_db_exec("BEGIN", 0, NULL, error_r) < 0)
			return -1;
	} else {
		db.begin_pending = true;
	}
	db.tx_open = true;
	return 0;
}

int gn_db_commit(const char **error_r)
{
	db.commit_unknown = false;
	if (db.tx_lost) {
		db.tx_open = db.tx_lost = false;
		error_set(true, "08006",
			  "transaction lost: the database connection broke before COMMIT");
		*error_r = db.err.message;
		return -1;
	}
	if (db.begin_pending) {
		/* Nothing ran in it: nothing to commit, and no round trip. */
		db.begin_pending = false;
		db.tx_open = false;
		db.tx_failed_temporary = false;
		return 0;
	}
	bool failed_temporary = db.tx_failed_temporary;
	bool connected = db.conn != NULL;
	/* The transaction ends here, whatever becomes of the COMMIT: a
	 * connection that breaks during it must not leave the transaction
	 * "lost" for whoever queries next (that wedged workers for good). */
	db.tx_open = false;
	db.tx_failed_temporary = false;
	PGresult *res = db_query("COMMIT", 0, NULL, error_r);
	if (res == NULL) {
		if (connected && db.conn == NULL) {
			/* The server may have committed before the connection
			 * broke, or not: only what the transaction wrote can
			 * tell (core/store/deliver.c looks for its token). */
			db.commit_unknown = true;
			char msg[1024];
			snprintf(msg, sizeof(msg), "outcome of COMMIT unknown: %.900s", db.err.message);
			error_set(true, "08006", msg);
			*error_r = db.err.message;
		}
		return -1;
	}
	/* COMMIT of a transaction aborted by an earlier error succeeds with the
	 * tag ROLLBACK: nothing was committed. */
	bool rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
	PQclear(res);
	if (rolled_back) {
		error_set(failed_temporary, "25P02",
			  "transaction rolled back because of an earlier error");
		*error_r = db.err.message;
		return -1;
	}
	return 0;
}

bool db_commit_outcome_unknown(void)
{
	return db.commit_unknown;
}

void gn_db_rollback(void)
{
	/* Keeps the error of the failure that led here for the caller. */
	struct db_error saved = db.err;
	bool lost = db.tx_lost;

	bool pending = db.begin_pending;
	db.tx_open = db.tx_lost = db.tx_failed_temporary = db.begin_pending = false;
	if (!lost && !pending && db.conn != NULL) {
		PGresult *res = PQexecParams(db.conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
		char why[512];
		if (query_lost_connection(res, why, sizeof(why))) {
			conn_lost(why);
		} else {
			drain_and_schedule();
		}
		PQclear(res);
	}
	db.err = saved;
}

int gn_db_error_is_temporary(void)
{
	return db.err.temporary ? 1 : 0;
}

const char *gn_db_error_sqlstate(void)
{
	return db.err.sqlstate;
}

int gn_db_listen(const char *channel, gn_db_notify_fn *fn, void *data,
		 const char **error_r)
{
	static char msg[160];

	if (!channel_valid(channel) || fn == NULL) {
		snprintf(msg, sizeof(msg), "invalid notification channel name "
			 "(want [a-z_][a-z0-9_]{0,62}): %.64s", channel ? channel : "(null)");
		*error_r = msg;
		return -1;
	}
	bool known = channel_listened(channel);
	db.listeners = gn_realloc(db.listeners, (db.n_listeners + 1) * sizeof(*db.listeners));
	db.listeners[db.n_listeners].channel = gn_strdup(channel);
	db.listeners[db.n_listeners].fn = fn;
	db.listeners[db.n_listeners].data = data;
	db.n_listeners++;
	if (known)
		return 0;

	/* LISTEN takes no parameters: the validated name, quoted. */
	error_reset();
	if (db.tx_lost || !ensure_connected())
		return 0;	/* issued after reconnecting */
	char *quoted = PQescapeIdentifier(db.conn, channel, strlen(channel));
	if (quoted == NULL) {
		db.n_listeners--;
		gn_free(db.listeners[db.n_listeners].channel);
		error_set(false, "", PQerrorMessage(db.conn));
		*error_r = db.err.message;
		return -1;
	}
	char *sql = gn_strdup_printf("LISTEN %s", quoted);
	PQfreemem(quoted);
	PGresult *res = db_query(sql, 0, NULL, error_r);
	gn_free(sql);
	if (res == NULL) {
		if (gn_db_error_is_temporary())
			return 0;	/* issued again after reconnecting */
		db.n_listeners--;
		gn_free(db.listeners[db.n_listeners].channel);
		return -1;
	}
	PQclear(res);
	return 0;
}

int gn_db_notify(const char *channel, const char *payload,
		 const char **error_r)
{
	static char msg[160];

	if (!channel_valid(channel)) {
		snprintf(msg, sizeof(msg), "invalid notification channel name: %.64s",
			 channel ? channel : "(null)");
		*error_r = msg;
		return -1;
	}
	const char *params[2] = { channel, payload ? payload : "" };
	return gn_db_exec("SELECT pg_notify($1, $2)", 2, params, error_r);
}
