/*
 * core/serve.c: what `gannet serve` does in each of its processes, for the
 * process machinery of runtime/master.c (struct master_ops).
 *
 *   master  checks and migrates the schema, loads the certificates, binds
 *           the listeners and sets up the per-IP table: the work that may
 *           need root, done before privileges drop;
 *   child   (worker, runner, single process) opens its own database
 *           connection, accepts connections (workers), and ends them on a
 *           graceful stop.
 */
#include "main.h"

static int serve_prepare(const char **error_r)
{
	/* The schema: refuse a newer one, apply what is pending.  The
	 * children open their own connections. */
	if (db_init(core_conf->database, error_r) < 0)
		return -1;
	int r = db_check_schema(error_r);
	int applied = r < 0 ? -1 : db_migrate(NULL, error_r);
	db_close();
	if (applied < 0)
		return -1;
	if (applied > 0)
		gn_log(GN_LOG_INFO, "core", "event=migrated applied=%d", applied);

	if (tls_init(core_conf, error_r) < 0 || listeners_bind(core_conf, error_r) < 0)
		return -1;
	if (iplimit_init(core_conf) < 0) {
		*error_r = "cannot set up the per-IP connection table";
		return -1;
	}
	return 0;
}

static void serve_release(void)
{
	listeners_close();
	tls_deinit();
}

static int serve_child_open(const char **error_r)
{
	if (db_init(core_conf->database, error_r) < 0)
		return -1;
	db_watch();
	return 0;
}

/* The connections are closed by now (their lookups cancelled with them):
 * the queue records what it delivered and its parked SMTP connections go,
 * then what is left of the resolver, then the database connection. */
static void serve_child_close(void)
{
	queue_shutdown();
	dns_shutdown();
	db_close();
}

const struct master_ops serve_ops = {
	.prepare = serve_prepare,
	.release = serve_release,
	.child_open = serve_child_open,
	.child_close = serve_child_close,
	.accept_start = listeners_start,
	.accept_stop = listeners_stop,
	.listeners_close = listeners_close,
	.conns_count = conns_count,
	.conns_shutdown = conns_shutdown,
	.conns_close = conns_close_all,
};
