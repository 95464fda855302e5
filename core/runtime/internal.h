/*
 * core/runtime/internal.h: the runtime layer's internals, for the layers
 * above it.
 *
 *   config.c   the config file (libconfig): the core's settings and the
 *              modules' sections, every error with file and line;
 *   module.c   the module loader, slots and the two phases;
 *   registry.c the one shape of the tables below: named entries that
 *              modules declare in their register phase;
 *   hook.c     hook points and chains;  service.c  named services;
 *   runner.c   runner jobs;  cli.c  the command registry of `gannet`;
 *   loop.c     the process's libev loop, timers and watches;
 *   master.c   `gannet serve`: master, workers and runner, signals,
 *              privileges.  What serving does in each process (database,
 *              listeners, connections) belongs to the layers above: they
 *              hand it in as struct master_ops (core/serve.c).
 *
 * Uses the base layer only.
 */
#ifndef GANNET_RUNTIME_INTERNAL_H
#define GANNET_RUNTIME_INTERNAL_H

#include "base/internal.h"

#include <ev.h>
#include <gannet/config.h>
#include <gannet/hook.h>
#include <gannet/service.h>
#include <gannet/loop.h>
#include <gannet/runner.h>
#include <gannet/cli.h>

/* ---- config (config.c) ---- */

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

/* dns { ... }: the resolver's settings (core/dns/). */
struct dns_conf {
	char **resolvers;	/* "IP" or "IP@port" (checked); none: resolv.conf */
	size_t n_resolvers;
	char *trust_anchor;	/* a file; NULL: the default; "": validation off */
	char **local_data;	/* RR strings, unbound local-data syntax */
	char **local_data_at;	/* "FILE:LINE" of each, for the dns layer's errors */
	size_t n_local_data;
	long long timeout_ms;	/* a lookup fails after this */
	unsigned max_queries;	/* lookups in flight per process */
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
	unsigned ipv6_prefix;	/* IPv6 clients count per prefix of this length */
	unsigned max_conns;	/* per worker */
	char *log_destination;	/* "stderr" or "syslog" */
	char *pid_file;		/* may be NULL */
	char *tls_priority;	/* GnuTLS priority string */
	struct cert_conf *certs;
	size_t n_certs;
	struct listener_conf *listeners;
	size_t n_listeners;
	struct dns_conf dns;
	unsigned queue_max_attempts;	/* queue { max_attempts }: default 8 */
	unsigned queue_concurrency;	/* queue { concurrency }: default 20 */
	bool queue_no_transport;	/* queue { transport = "none" } */
	unsigned queue_smtp_port;	/* queue { smtp_port }: default 25 */
	char *queue_relay;		/* queue { relay }: an IP address, or NULL (MX) */
	/* queue { retired_keep }: seconds an account that has no setting of
	 * its own keeps its retired records (gn_accounts.queue_retired_keep_s
	 * NULL); default 0, not kept. */
	long long queue_retired_keep_s;
	/* Idle SMTP connections kept for the next delivery (transport-smtp.c):
	 * queue { smtp_reuse_max (20, 0: none), smtp_reuse_per_host (20),
	 * smtp_reuse_idle (30 s, at most 60 s), smtp_reuse_transactions (100) }. */
	unsigned dkim_max_signatures;	/* dkim { max_signatures }: default 5 */
	unsigned queue_reuse_max;
	unsigned queue_reuse_per_host;
	long long queue_reuse_idle_ms;
	unsigned queue_reuse_transactions;
	/* http { ... }: the core's HTTP server (core/net/http.c). */
	size_t http_max_body;		/* max_body: default 10 MiB */
	size_t http_max_header;		/* max_header: default 16 KiB */
	long long http_timeout_ms;	/* request_timeout: default 30 s */
	unsigned http_max_conns;	/* connections: per worker, default 1000 */
	/* MTA-STS (core/queue/mtasts.c): queue { mta_sts_port } is the
	 * policy host's HTTPS port, 443 (RFC 8461 3.3); another one only
	 * for tests.  tls { client_ca_file }: CA certificates (PEM) that
	 * outbound TLS trusts besides the system's, or NULL. */
	unsigned queue_mta_sts_port;
	long long queue_mta_sts_timeout_ms;	/* queue { mta_sts_timeout }: 30 s */
	char *tls_client_ca_file;
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

/* ---- loop (loop.c) ---- */

/* The process's loop (ev default loop). */
extern struct ev_loop *core_loop;
void loop_init(void);
/* After fork in the child. */
void loop_after_fork(void);

/* Work for "soon": before the loop next waits for events, in the same
 * turn, without a timer or a turn of its own (an answer a cache already
 * has, a connection's deferred progress).  What runs may queue more,
 * which runs in the same turn too, up to LOOP_SOON_BUDGET calls; past
 * that the next poll does not wait and the rest runs after it.  The
 * caller owns the struct (zeroed before its first use) and keeps it
 * alive while queued; fn never runs from inside loop_soon(). */
struct loop_soon {
	struct loop_soon *next, *prev;
	void (*fn)(void *data);
	void *data;
	bool queued;
};
#define LOOP_SOON_BUDGET 4096
/* Queues s (a no-op when it is queued already). */
void loop_soon(struct loop_soon *s, void (*fn)(void *data), void *data);
/* Takes s off the queue; fn will not run for it. */
void loop_soon_cancel(struct loop_soon *s);

/* ---- registries (registry.c) ----
 *
 * The one shape of hook points, services, runner jobs and CLI commands: a
 * table of named entries, each owned by the module that registered it,
 * filled in the register phase only. */

struct registry_entry {
	char *name;
	struct gn_module_ctx *ctx;	/* the module that registered it */
	void *item;			/* the registry's own record */
};

struct registry {
	const char *kind;	/* "service", "hook point": for messages */
	const char *verb;	/* "provided", "defined", "registered" */
	bool per_module;	/* names unique within a module, not globally */
	/* NULL: any non-empty name. */
	bool (*valid_name)(const char *name);
	const char *name_rule;	/* said when a name is invalid; may be NULL */
	struct registry_entry *entries;	/* in registration order */
	size_t n;
};

/* What every registration checks first, for api (the public function's
 * name, for messages): the register phase, the name, uniqueness.  Returns
 * 0, or -1 with *error_r set. */
int registry_check(const struct registry *r, const char *api,
		   const struct gn_module_ctx *ctx, const char *name,
		   const char **error_r);
/* Appends an entry (after registry_check()); the name is copied.  The
 * pointer is valid until the next registry_add() to r. */
struct registry_entry *registry_add(struct registry *r, struct gn_module_ctx *ctx,
				    const char *name, void *item);
/* The entry named name (of module ctx, for a per-module registry), or
 * NULL. */
struct registry_entry *registry_find(const struct registry *r,
				     const struct gn_module_ctx *ctx,
				     const char *name);
/* Forgets every entry, calling free_item (may be NULL) on each item. */
void registry_clear(struct registry *r, void (*free_item)(void *item));
/* Sets *error_r to the formatted message (valid until the next call) and
 * returns -1: the one way registrations report an error. */
int registry_fail(const char **error_r, const char *fmt, ...) GN_PRINTF(2, 3);
/* Whether name is 1..max of a-z, 0-9, '_', '.', '-' (and A-Z with upper). */
bool registry_name_ok(const char *name, size_t max, bool upper);

/* ---- modules (module.c), hooks (hook.c), services (service.c) ---- */

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

/* ---- runner jobs (runner.c) and CLI commands (cli.c) ---- */

void runner_jobs_start(void);
void runner_jobs_stop(void);

/* What a command needs before it runs; core/main.c prepares that much. */
enum cli_needs {
	CLI_NEEDS_NOTHING,	/* gannet's own commands: they set up what they use */
	CLI_NEEDS_CONFIG,	/* the config and the core's areas, the loop; no
				 * database, no module (dns lookup) */
	CLI_NEEDS_DATABASE,	/* the config, the core's areas, a database
				 * connection; no module is loaded */
	CLI_NEEDS_MODULES,	/* and every module loaded, registered and started
				 * in process kind "cli" */
};

struct cli_cmd;

/* A command of gannet itself (core/main.c). */
int cli_register_core(const struct gn_cli_command *cmd, enum cli_needs needs,
		      const char **error_r);
/* What the commands the core's areas register from now on through
 * gn_cli_register() need (default CLI_NEEDS_MODULES): core/main.c says it
 * per area.  A module's commands always need the modules. */
void cli_set_core_needs(enum cli_needs needs);
/* The longest registered command that prefixes argv, or NULL. */
const struct cli_cmd *cli_lookup(int argc, char **argv);
enum cli_needs cli_cmd_needs(const struct cli_cmd *cmd);
const char *cli_cmd_words(const struct cli_cmd *cmd);
/* Whether argv (a command line, argv[0] its first word) asks for help:
 * --help or -h before any "--". */
bool cli_wants_help(int argc, char **argv);
/* `gannet WORDS --help`: usage, help text and owner, to out. */
void cli_cmd_print_help(const struct cli_cmd *cmd, FILE *out);
/* Checks the number of arguments of argv for cmd; returns 0, or 2 after
 * printing the problem and the usage to stderr. */
int cli_usage_check(const struct cli_cmd *cmd, int argc, char **argv);
/* Runs cmd for argv (the whole command line); returns its exit code. */
int cli_cmd_run(const struct cli_cmd *cmd, int argc, char **argv);
/* cli_lookup() and cli_cmd_run(); -1 when no command matches. */
int cli_dispatch(int argc, char **argv);
bool cli_exists(int argc, char **argv);
/* Prints "  gannet WORDS USAGE   (module M)" for every command whose words
 * start with argv[0..argc), sorted; gannet's own commands only when
 * with_builtin.  Returns how many there are (out NULL: only counts). */
size_t cli_print_commands(FILE *out, int argc, char **argv, bool with_builtin);
/* Every registered command but gannet's own. */
void cli_print_usage(FILE *out);
/* Forgets every command (tests). */
void cli_free(void);

/* ---- processes (master.c) ---- */

/* What serving means in each process, from the layers above (core/serve.c
 * fills it).  master.c calls these at fixed points and knows nothing of
 * databases, sockets or TLS. */
struct master_ops {
	/* The master, before privileges drop: schema, certificates,
	 * listeners, shared tables.  0, or -1 with *error_r. */
	int (*prepare)(const char **error_r);
	/* The master at the end, also after a failed prepare: closes what
	 * prepare opened. */
	void (*release)(void);
	/* A child or the single process, first thing: its database
	 * connection.  -1 with *error_r: the child exits and is restarted. */
	int (*child_open)(const char **error_r);
	/* The last thing a child does. */
	void (*child_close)(void);
	/* Accepting connections: start (workers, single), stop (a graceful
	 * stop), and close the listening sockets in a process that never
	 * accepts (the master when stopping, the runner). */
	void (*accept_start)(void);
	void (*accept_stop)(void);
	void (*listeners_close)(void);
	/* The connections of this process: how many, ask their protocols to
	 * end (graceful stop), close them now. */
	unsigned (*conns_count)(void);
	void (*conns_shutdown)(void);
	void (*conns_close)(const char *reason);
};

/* serve: master with workers and runner, or one process with foreground.
 * Returns the exit code. */
int master_serve(const struct master_ops *ops, bool foreground);
/* The number of workers for the setting "workers" (0: two per CPU). */
unsigned master_worker_count(unsigned setting);
/* Ask the loop of this process to stop gracefully (signal handlers). */
void master_request_stop(void);
/* Whether a graceful stop is under way in this process. */
bool master_stopping(void);

/* Switches to user (and its group) when running as root.  Returns 0 or -1. */
int privileges_drop(const char *user, const char **error_r);

#endif
