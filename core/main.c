/*
 * core/main.c: gn_main, the gannet command line.
 *
 *   gannet [-c FILE] [-v] COMMAND [ARGS]     (COMMAND --help: how to use it)
 *
 * Every command is in one registry (runtime/cli.c): gannet's own
 * (builtins[] below, registered first), the core areas' (core_areas[],
 * registered once the config is read) and the modules'.  A command says
 * what it needs, and gets no more:
 *   - gannet's own commands set up what they use: version and help need
 *     nothing, serve loads the config and the modules, and so on;
 *   - the core's data commands (domains, accounts, addresses, passwords,
 *     TLS public keys) need the config and a database connection, and run
 *     without loading any module: a script that runs gannet once per
 *     account pays for no dlopen() and no module start;
 *   - import, which delivers through the pipeline and so needs the
 *     modules' hooks, and every module's command run with the modules
 *     loaded, registered and started in process kind "cli".
 * Before anything is prepared, a command answers --help (usage on stdout,
 * exit 0) and refuses a wrong number of arguments (exit 2), so usage
 * errors never wait for a database or a module.  Config problems are
 * printed one a line and exit 1.
 *
 * Quiet: a command prints its result on stdout and its errors on stderr;
 * log lines below warn only with -v.  serve and localserve log as the
 * config says.
 *
 * Root: help, --help, config check and modules only read and report, so
 * as root they drop to the config's user before loading any module: no
 * module code runs as root for them.  migrate and the commands that do
 * work load the modules as the user who runs them, as serve's master does.
 */
#include "main.h"
#include "smtp/internal.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *config_path;	/* -c, $GANNET_CONFIG or the default */
static bool core_ready;		/* setup_core() ran */
static int core_status;		/* and returned this */
static bool modules_ready;	/* setup_modules() ran */

const char *gn_version(void)
{
	return PACKAGE_VERSION;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gannet [-c FILE] [-v] COMMAND [ARGS]\n"
		"       gannet COMMAND --help    how to use COMMAND\n"
		"       gannet help              every command, the modules' too\n"
		"\n"
		"options:\n"
		"  -c FILE, --config FILE   the config file (default $GANNET_CONFIG, else\n"
		"                           %s/gannet/gannet.conf)\n"
		"  -v, --verbose            log info lines too (serve and localserve always do)\n"
		"  -h, --help               this text\n",
		GN_SYSCONFDIR);
}

static const char *default_config_path(void)
{
	const char *env = getenv("GANNET_CONFIG");
	static char path[4096];
	if (env != NULL && *env != '\0')
		return env;
	snprintf(path, sizeof(path), "%s/gannet/gannet.conf", GN_SYSCONFDIR);
	return path;
}

/* ---- setup, in stages ---- */

/* The core's areas register before the modules, so modules find the
 * core's hook points and may add to them.  Each area declares what its
 * commands need (see the top of this file). */
static const struct {
	int (*register_fn)(void);
	enum cli_needs commands_need;
} core_areas[] = {
	{ db_register, CLI_NEEDS_CONFIG },		/* no commands: a runner job */
	{ store_register, CLI_NEEDS_DATABASE },		/* domains, accounts, addresses */
	{ auth_register, CLI_NEEDS_DATABASE },		/* setpassword */
	{ tlspubkey_register, CLI_NEEDS_DATABASE },	/* config tlspubkey */
	{ deliver_register, CLI_NEEDS_MODULES },
	{ smtp_register, CLI_NEEDS_MODULES },		/* the point "smtp.data_end" */
	{ import_register, CLI_NEEDS_MODULES },		/* delivers through the hooks */
	{ dns_register, CLI_NEEDS_CONFIG },		/* dns lookup */
	{ queue_register, CLI_NEEDS_MODULES },		/* DSNs through the hooks, the transport */
};

/* The config and the core's areas, once.  Returns 0, or -1 with the
 * errors recorded (the areas are registered all the same, on the
 * defaults, so that their commands are known). */
static int setup_core(void)
{
	if (core_ready)
		return core_status;
	core_ready = true;
	int ret = conf_load(config_path);
	for (size_t i = 0; i < sizeof(core_areas) / sizeof(core_areas[0]); i++) {
		cli_set_core_needs(core_areas[i].commands_need);
		if (core_areas[i].register_fn() < 0)
			ret = -1;
	}
	cli_set_core_needs(CLI_NEEDS_MODULES);
	core_status = ret < 0 || conf_error_count() > 0 ? -1 : 0;
	return core_status;
}

/* For commands that only read and report: as root, become the config's
 * user before any module code runs.  Returns 0 or -1 (error recorded). */
static int drop_to_read(void)
{
	const char *error;
	if (geteuid() != 0)
		return 0;
	/* Without a user the config is refused already ("user must be set
	 * when gannet starts as root"). */
	if (core_conf == NULL || core_conf->user == NULL ||
	    privileges_drop(core_conf->user, &error) < 0) {
		conf_error("%s", core_conf != NULL && core_conf->user != NULL ? error
			   : "started as root without a user to read the modules as (setting user)");
		return -1;
	}
	return 0;
}

enum setup_level {
	SETUP_MODULES,		/* modules loaded and registered */
	SETUP_SERVE,		/* and listeners matched to protocols */
};

/* After setup_core(): the modules, then the checks of the whole config.
 * Returns 0, or -1 with the errors recorded. */
static int setup_modules(enum setup_level level)
{
	modules_ready = true;
	if (setup_core() < 0)
		return -1;
	if (modules_load(core_conf) == 0 && modules_register() == 0) {
		conf_check_unused();
		hooks_check();
		if (level >= SETUP_SERVE)
			listeners_check_protocols();
	}
	return conf_error_count() > 0 ? -1 : 0;
}

static int errors_printed(void)
{
	conf_errors_print(stderr);
	return 1;
}

/* Connects to the database, refuses a schema that is not this build's,
 * starts the modules (when loaded) and runs cmd. */
static int run_connected(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *error;
	loop_init();
	if (db_init(core_conf->database, &error) < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	int pending = db_check_schema(&error);
	if (pending != 0) {
		fprintf(stderr, "gannet: database: %s\n",
			error != NULL ? error : "migrations pending: run gannet migrate");
		db_close();
		return 1;
	}
	if (modules_ready && modules_start("cli", &error) < 0) {
		fprintf(stderr, "gannet: %s\n", error);
		db_close();
		return 1;
	}
	int rc = cli_cmd_run(cmd, argc, argv);
	if (modules_ready)
		modules_stop();
	db_close();
	return rc;
}

/* No command is argv: say so, with the commands that start with the same
 * words when there are some.  to_help: `gannet help WORDS`, which lists
 * them on stdout and succeeds. */
static int no_such_command(int argc, char **argv, bool to_help)
{
	FILE *out = to_help ? stdout : stderr;
	int words = 0;
	while (words < argc && argv[words][0] != '-')
		words++;
	/* The longest prefix of the words that some commands start with. */
	for (int n = words; n > 0; n--) {
		if (cli_print_commands(NULL, n, argv, true) == 0)
			continue;
		if (n == words && to_help) {
			fprintf(out, "commands that start with \"");
		} else {
			fprintf(out, "gannet: no command \"");
			for (int i = 0; i < words; i++)
				fprintf(out, "%s%s", i > 0 ? " " : "", argv[i]);
			fprintf(out, "\"; commands that start with \"");
		}
		for (int i = 0; i < n; i++)
			fprintf(out, "%s%s", i > 0 ? " " : "", argv[i]);
		fprintf(out, "\":\n");
		cli_print_commands(out, n, argv, true);
		return n == words && to_help ? 0 : EXIT_USAGE;
	}
	fprintf(stderr, "gannet: no command \"%s\" (gannet help lists them)\n", argv[0]);
	return EXIT_USAGE;
}

/* Finds the command argv names with the least setup it takes; help
 * (--help, `gannet help`) loads modules only as the config's user.
 * Returns the command, or NULL with *rc_r the exit code: 1 after printing
 * the config's errors, EXIT_USAGE when there is no such command (for the
 * caller to say). */
static const struct cli_cmd *find_command(int argc, char **argv, bool help, int *rc_r)
{
	const struct cli_cmd *cmd = cli_lookup(argc, argv);
	if (cmd != NULL)
		return cmd;	/* one of gannet's own */
	int core = setup_core();
	cmd = cli_lookup(argc, argv);
	/* A core command with --help needs nothing more; a module may add
	 * a longer command only to one that needs the modules anyway. */
	if (cmd != NULL && (help || cli_cmd_needs(cmd) != CLI_NEEDS_MODULES))
		return cmd;
	if (core < 0) {
		errors_printed();
		if (cmd == NULL)
			fprintf(stderr, "gannet: \"%s\" is no command of the core, and the modules' commands need a valid config\n",
				argv[0]);
		*rc_r = 1;
		return NULL;
	}
	if ((help && drop_to_read() < 0) || setup_modules(SETUP_MODULES) < 0) {
		*rc_r = errors_printed();
		return NULL;
	}
	cmd = cli_lookup(argc, argv);
	if (cmd == NULL)
		*rc_r = EXIT_USAGE;
	return cmd;
}

/* ---- gannet's own commands ---- */

static int cmd_version(int argc, char **argv, void *data)
{
	(void)argc, (void)argv, (void)data;
	printf("gannet %s (plugin ABI %d.%d)\n", gn_version(), GN_ABI_MAJOR, GN_ABI_MINOR);
	return 0;
}

static int cmd_help(int argc, char **argv, void *data)
{
	(void)data;
	if (argc > 1) {
		/* `gannet help WORDS`: what `gannet WORDS --help` says. */
		int rc = 0;
		const struct cli_cmd *cmd = find_command(argc - 1, argv + 1, true, &rc);
		if (cmd == NULL)
			return rc == EXIT_USAGE ? no_such_command(argc - 1, argv + 1, true) : rc;
		cli_cmd_print_help(cmd, stdout);
		return 0;
	}
	usage(stdout);
	int core = setup_core();
	if (core == 0 && (drop_to_read() < 0 || setup_modules(SETUP_MODULES) < 0))
		core = -1;
	printf("\ncommands:\n");
	cli_print_commands(stdout, 0, NULL, true);
	if (core < 0) {
		fprintf(stderr, "gannet help: the modules' commands are not listed: the config has errors:\n");
		conf_errors_print(stderr);
	}
	return 0;
}

static int cmd_serve(int argc, char **argv, void *data)
{
	(void)data;
	bool foreground = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "-f") == 0) {
			foreground = true;
		} else {
			fprintf(stderr, "gannet serve: unknown option %s\nusage: gannet serve [--foreground]\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	return main_serve(config_path, foreground);
}

int main_serve(const char *path, bool foreground)
{
	/* A server logs what the config says: it has no terminal to answer. */
	log_set_ceiling(GN_LOG_DEBUG);
	config_path = path;
	if (setup_modules(SETUP_SERVE) < 0)
		return errors_printed();
	return master_serve(&serve_ops, foreground);
}

static int cmd_localserve(int argc, char **argv, void *data)
{
	(void)data;
	log_set_ceiling(GN_LOG_DEBUG);
	return localserve_main(argc, argv);
}

static int cmd_modules(int argc, char **argv, void *data)
{
	(void)argc, (void)argv, (void)data;
	if (setup_core() < 0 || drop_to_read() < 0 || setup_modules(SETUP_MODULES) < 0)
		return errors_printed();
	modules_print(stdout);
	return 0;
}

static int cmd_migrate(int argc, char **argv, void *data)
{
	(void)argc, (void)argv, (void)data;
	const char *error;
	if (setup_modules(SETUP_MODULES) < 0)
		return errors_printed();
	if (db_init(core_conf->database, &error) < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	int n = db_migrate(stdout, &error);
	if (n < 0) {
		fprintf(stderr, "gannet: migrate: %s\n", error);
		db_close();
		return 1;
	}
	printf("%d migration%s applied\n", n, n == 1 ? "" : "s");
	db_close();
	return 0;
}

static int cmd_config_check(int argc, char **argv, void *data)
{
	(void)data;
	if (argc == 2)
		config_path = argv[1];
	if (setup_core() < 0 || drop_to_read() < 0 || setup_modules(SETUP_SERVE) < 0)
		return errors_printed();
	printf("config ok: %s\n", config_path);
	return 0;
}

static const struct gn_cli_command builtins[] = {
	{ sizeof(struct gn_cli_command), "serve", "[--foreground]",
	  "Runs the server: a master process that binds the listeners, drops\n"
	  "privileges to the config's user and keeps its workers and its runner\n"
	  "running.  --foreground (-f): everything in one process, for\n"
	  "development and tests.",
	  0, 1, cmd_serve, NULL },
	{ sizeof(struct gn_cli_command), "localserve", "[--dir DIR]",
	  "A complete local setup for development: a private PostgreSQL cluster,\n"
	  "a config, a self-signed certificate and an account, in DIR (default\n"
	  "$GANNET_LOCALSERVE_DIR, ~/.local/share/gannet-localserve, or as root\n"
	  "/var/lib/gannet-localserve); then serves in the foreground.",
	  0, 2, cmd_localserve, NULL },
	{ sizeof(struct gn_cli_command), "modules", "",
	  "Lists the modules the config loads, in load order, with their\n"
	  "versions, ABI and requirements (an optional one marked ?).  As root,\n"
	  "the modules are loaded as the config's user.",
	  0, 0, cmd_modules, NULL },
	{ sizeof(struct gn_cli_command), "migrate", "",
	  "Applies the pending database migrations of the core and the modules\n"
	  "the config loads, and says which.",
	  0, 0, cmd_migrate, NULL },
	{ sizeof(struct gn_cli_command), "config check", "[FILE]",
	  "Checks a config file (default: the one -c names): every setting, the\n"
	  "modules and their settings, the listeners; prints each error with\n"
	  "its file and line.  As root, the modules are loaded as the config's\n"
	  "user.",
	  0, 1, cmd_config_check, NULL },
	{ sizeof(struct gn_cli_command), "smtp send",
	  "--server HOST:PORT --from ADDR --to ADDR [--to ADDR...] [--tls require|"
	  "opportunistic|none] [--tls-name NAME] [--tls-verify] [--ca FILE] [--helo NAME] "
	  "[--timeout MS] [--trace] [--requiretls] [--message FILE...]",
	  "Sends a message (standard input, or each --message in turn on one\n"
	  "connection) with gannet's SMTP client, and prints the session (TLS,\n"
	  "extensions) and every recipient's result: phase, code, enhanced code\n"
	  "and text.  --trace prints the commands and replies too.  Needs no\n"
	  "config and no database.  Exit 0 when every recipient was accepted.",
	  0, -1, smtp_cli_send, NULL },
	{ sizeof(struct gn_cli_command), "sendmail",
	  "[-t] [-i] [-oi] [-f FROM] [-F NAME] [-C FILE] [-v] [--] [RCPT...]",
	  "Submits the message on standard input to a submission server, as\n"
	  "sendmail(8) does for mutt, cron and git send-email: STARTTLS, then a\n"
	  "password (SCRAM, or PLAIN over TLS) or a TLS client certificate, from\n"
	  "/etc/gannet/sendmail.conf (-C FILE or $GANNET_SENDMAIL_CONF).  -t adds\n"
	  "the To, Cc and Bcc recipients and removes Bcc; -f sets the envelope\n"
	  "sender; -i/-oi: a line with only \".\" does not end the message.  Other\n"
	  "common options (-oem, -odi, -B, -N ...) are ignored.  Run as\n"
	  "\"sendmail\" (a link to gannet), gannet is this command.  Exit codes\n"
	  "of sysexits.h: 75 try again, 69 refused, 77 login refused, 78 config.",
	  0, -1, smtp_cli_sendmail, NULL },
	{ sizeof(struct gn_cli_command), "version", "",
	  "Prints gannet's version and the plugin ABI it offers modules.",
	  0, 0, cmd_version, NULL },
	{ sizeof(struct gn_cli_command), "help", "[COMMAND...]",
	  "Lists every command, the modules' too, or tells how to use one.",
	  0, -1, cmd_help, NULL },
};

static int register_builtins(void)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		const char *error;
		if (cli_register_core(&builtins[i], CLI_NEEDS_NOTHING, &error) < 0) {
			fprintf(stderr, "gannet: %s\n", error);
			return -1;
		}
	}
	return 0;
}

int gn_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool verbose = false, help_requested = false;
	int c;

	log_init("gannet");
	/* Called as "sendmail" (a link to gannet, where MUAs and cron look
	 * for one): `gannet sendmail` with the same arguments, which are
	 * sendmail's own, not gannet's. */
	const char *base = argv[0] != NULL ? strrchr(argv[0], '/') : NULL;
	base = base != NULL ? base + 1 : argv[0];
	if (base != NULL && strcmp(base, "sendmail") == 0) {
		char **nargv = gn_calloc((size_t)argc + 2, sizeof(char *));
		nargv[0] = "sendmail";
		for (int i = 1; i < argc; i++)
			nargv[i] = argv[i];
		log_set_ceiling(GN_LOG_WARN);
		int rc = smtp_cli_sendmail(argc, nargv, NULL);
		gn_free(nargv);
		return rc;
	}
	/* '+': stop at the command; its own options follow it. */
	while ((c = getopt_long(argc, argv, "+c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			help_requested = true;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (help_requested || argc < 1) {
		/* gannet's own commands need nothing to be listed. */
		FILE *out = help_requested ? stdout : stderr;
		usage(out);
		if (register_builtins() == 0) {
			fprintf(out, "\ngannet's own commands (gannet help lists the others too):\n");
			cli_print_commands(out, 0, NULL, true);
		}
		return help_requested ? 0 : EXIT_USAGE;
	}
	/* -c FILE is global: also accepted after the command
	 * ("gannet serve -c FILE"), and taken out of the command's arguments. */
	int kept = 1;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		} else if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[kept++] = argv[i++];
		} else {
			argv[kept++] = argv[i];
		}
	}
	argc = kept;
	argv[argc] = NULL;
	if (config_path == NULL)
		config_path = default_config_path();
	if (!verbose)
		log_set_ceiling(GN_LOG_WARN);
	if (argv[0][0] == '-') {
		fprintf(stderr, "gannet: unknown option %s\n", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}

	if (register_builtins() < 0)
		return 1;

	int rc = 1;
	bool help = cli_wants_help(argc, argv);
	const struct cli_cmd *cmd = find_command(argc, argv, help, &rc);
	if (cmd == NULL) {
		if (rc == EXIT_USAGE)
			rc = no_such_command(argc, argv, false);
	} else if (help) {
		cli_cmd_print_help(cmd, stdout);
		rc = 0;
	} else if ((rc = cli_usage_check(cmd, argc, argv)) != 0) {
		/* said */
	} else if (cli_cmd_needs(cmd) == CLI_NEEDS_NOTHING) {
		rc = cli_cmd_run(cmd, argc, argv);
	} else if (setup_core() < 0) {
		rc = errors_printed();
	} else if (cli_cmd_needs(cmd) == CLI_NEEDS_CONFIG) {
		loop_init();
		rc = cli_cmd_run(cmd, argc, argv);
	} else {
		rc = run_connected(cmd, argc, argv);
	}
	conf_free();
	return rc;
}
