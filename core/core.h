/*
 * core/core.h: what the parts of the core share with each other.
 *
 * Private to libgannet (and its unit tests): modules see only
 * <gannet/...h> headers.  Names here carry their area as prefix without "gn_" so the
 * linker version script (gn_* only) keeps them out of the exported ABI.
 *
 * Start-up order (core/main.c, core/master.c):
 *   conf_load -> log_configure -> modules_load -> modules_register ->
 *   conf_check_unused -> hooks_check -> (errors? exit 1) ->
 *   tls_init -> listeners_bind -> iplimit_init -> drop privileges ->
 *   fork workers and runner -> in each child: loop_init, db_init,
 *   modules_start(kind) -> run the loop.
 */
#ifndef GANNET_CORE_H
#define GANNET_CORE_H

#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <ev.h>
#include <gannet/gannet.h>

/* ---- config (core/config.c) ---- */

enum tls_mode { TLS_MODE_NONE = 0, TLS_MODE_STARTTLS, TLS_MODE_IMPLICIT };

struct listener_conf {
	char *name;		/* listener name (default "<protocol>-<port>") */
	char *address;		/* "127.0.0.1", "::1", "0.0.0.0", "::" */
	unsigned port;
	char *protocol;		/* protocol handler name */
	enum tls_mode tls;
	const char *file;	/* for errors */
	int line;
};

struct cert_conf {
	char *cert_file;	/* PEM chain */
	char *key_file;		/* PEM key */
};

struct module_conf {
	char *name;
	int line;
};

struct core_conf {
	char *path;		/* the config file */
	char *hostname;		/* default: gethostname() */
	char *user;		/* drop to this user when started as root */
	char *database;		/* libpq conninfo */
	char *module_dir;	/* default: $libdir/gannet/modules */
	struct module_conf *modules;
	size_t n_modules;
	unsigned workers;	/* 0: two per CPU */
	long long grace_ms;	/* graceful stop period */
	long long idle_timeout_ms;	/* default per-connection idle timeout */
	unsigned max_conns_per_ip;
	unsigned max_conns;	/* per worker */
	char *log_destination;	/* "stderr" or "syslog" */
	char *pid_file;		/* may be NULL */
	char *tls_priority;	/* GnuTLS priority string */
	struct cert_conf *certs;
	size_t n_certs;
	struct listener_conf *listeners;
	size_t n_listeners;
};

/* The loaded configuration; NULL before conf_load(). */
extern struct core_conf *core_conf;

/* Parses path, fills core_conf.  Syntax errors and bad core settings are
 * recorded (conf_error_count()); returns 0 when the file was readable and
 * parsed, -1 otherwise. */
int conf_load(const char *path);
/* A config from memory (tests, localserve); name is used in messages. */
int conf_load_string(const char *name, const char *text);
/* The section for a module (empty if absent). */
struct gn_config *conf_module_section(const char *module);
/* After register: every setting that nothing read becomes an error. */
void conf_check_unused(void);
/* Records an error not tied to a setting ("FILE:LINE" may be in msg). */
void conf_error(const char *fmt, ...) GN_PRINTF(1, 2);
size_t conf_error_count(void);
/* Prints the recorded errors, one a line, to out. */
void conf_errors_print(FILE *out);
void conf_free(void);

/* ---- log (core/log.c) ---- */

void log_init(const char *ident);
/* destination "stderr" or "syslog". */
void log_set_destination(const char *destination);
/* area NULL sets the global level. */
void log_set_level(const char *area, enum gn_log_level level);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);

/* ---- loop (core/loop.c) ---- */

/* The process's loop (ev default loop). */
extern struct ev_loop *core_loop;
void loop_init(void);
/* After fork in the child. */
void loop_after_fork(void);

/* ---- modules (core/module.c), hooks (core/hook.c), services
 * (core/service.c) ---- */

/* dlopen()s the modules the config names, checks and sorts them.  Each
 * refusal is recorded as a config error; returns 0 or -1. */
int modules_load(const struct core_conf *conf);
/* Calls every register function in order; returns 0 or -1 (errors
 * recorded). */
int modules_register(void);
/* Start phase in this process; on failure stops the modules already
 * started, in reverse, and returns -1 with *error_r set. */
int modules_start(const char *kind, const char **error_r);
void modules_stop(void);
/* `gannet modules`: the resolved order, versions and ABI. */
void modules_print(FILE *out);
/* The core's own context, for hook points and migrations the core
 * defines ("core"). */
struct gn_module_ctx *modules_core_ctx(void);
/* Number of slots (modules + 1 for the core). */
unsigned modules_slot_count(void);
/* Iterates loaded modules in order: returns the ctx at index i, NULL past
 * the end. */
struct gn_module_ctx *modules_at(size_t i);
/* Registrations (hooks, services, protocols, jobs, migrations, CLI
 * commands) are allowed until modules_register() has returned.  Returns 0,
 * or -1 with *error_r saying that what (a function name) was called after
 * the register phase. */
int modules_check_register(const char *what, const char **error_r);

/* After register: sorts chains, reports hooks on unknown points. */
int hooks_check(void);
void hooks_free(void);
void services_free(void);

/* ---- runner jobs and CLI (core/runner.c) ---- */

void runner_jobs_start(void);
void runner_jobs_stop(void);
/* Finds a module CLI command for argv; returns its exit code, or -1 when
 * no module registered such a command. */
int cli_dispatch(int argc, char **argv);
/* Whether some module registered a command for argv. */
bool cli_exists(int argc, char **argv);
void cli_print_usage(FILE *out);

/* ---- TLS (core/tls.c), listeners (core/listener.c), connections
 * (core/conn.c), per-IP limits (core/iplimit.c) ---- */

/* Loads the certificates; master, before fork. */
int tls_init(const struct core_conf *conf, const char **error_r);
void tls_deinit(void);
/* Binds every listener; master, before dropping privileges. */
int listeners_bind(const struct core_conf *conf, const char **error_r);
/* After register: every listener's protocol has a handler (else config
 * error with file and line). */
int listeners_check_protocols(void);
/* In a worker: accept connections from the loop. */
void listeners_start(void);
/* Stop accepting (graceful stop) and close the listening sockets. */
void listeners_stop(void);
/* Close the listening sockets in a process that never accepts (runner). */
void listeners_close(void);
/* Graceful stop: tell every connection's protocol (shutdown()). */
void conns_shutdown(void);
/* Close everything now. */
void conns_close_all(const char *reason);
unsigned conns_count(void);
/* Shared-memory table of connections per client IP, before fork. */
int iplimit_init(unsigned max_per_ip);
/* 1 acquired, 0 over the limit. */
int iplimit_acquire(const char *ip);
void iplimit_release(const char *ip);

/* ---- database (core/db.c) and migrations (core/migrate.c) ---- */

/* Connects this process (after fork).  Failure to connect at first is an
 * error; later losses reconnect with backoff.  Returns 0 or -1. */
int db_init(const char *conninfo, const char **error_r);
/* Watches the connection's socket for notifications on core_loop. */
void db_watch(void);
void db_close(void);
/* Applies pending migrations of the core and every loaded module, each in
 * its own transaction; prints what it applies to out when not NULL.
 * Returns the number applied, or -1. */
int db_migrate(FILE *out, const char **error_r);
/* Refuses (-1) a database whose recorded schema version of any module is
 * newer than this build knows; 0 when all is known; 1 when migrations are
 * pending (then *error_r says which module is behind). */
int db_check_schema(const char **error_r);
/* The core's migrations (generated from core/schema/). */
extern const struct gn_migration core_migrations[];
extern const size_t core_migrations_count;
/* Registered migrations of a module (NULL, 0 when none). */
void migrations_of(const char *module, const struct gn_migration **list_r,
		   size_t *count_r);
/* gn_migrations_register() by module name (checks versions 1, 2, ...). */
int migrations_add(const char *module, const struct gn_migration *list,
		   size_t count, const char **error_r);
/* Runs constant multi-statement SQL compiled into gannet (migrations only:
 * the one PQexec() of gannet).  Returns 0 or -1. */
int db_exec_script(const char *sql, const char **error_r);

/* ---- processes (core/master.c) ---- */

/* serve: master with workers and runner, or one process with foreground.
 * Returns the exit code. */
int master_serve(bool foreground);
/* Ask the loop of this process to stop gracefully (signal handlers). */
void master_request_stop(void);
/* Whether a graceful stop is under way in this process. */
bool master_stopping(void);

/* ---- the core's own register phase ----
 * Called before the modules register (core/main.c): each area of the core
 * defines its hook points, CLI commands and the like with
 * modules_core_ctx().  Each returns 0 or -1 (error recorded with
 * conf_error()). */
int store_register(void);	/* core/store.c */
int auth_register(void);	/* core/auth.c */
int tlspubkey_register(void);	/* core/tlspubkey.c */
int deliver_register(void);	/* core/deliver.c */
int import_register(void);	/* core/import.c */

/* ---- the command line (core/main.c) ---- */

/* Loads and checks the config at path, loads the modules, and serves
 * (master_serve).  Returns the exit code. */
int main_serve(const char *path, bool foreground);

/* ---- localserve (core/localserve.c) ---- */

int localserve_main(int argc, char **argv);

/* ---- privileges (core/master.c) ---- */

/* Switches to user (and its group) when running as root.  Returns 0 or -1. */
int privileges_drop(const char *user, const char **error_r);

#endif
