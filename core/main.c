/*
 * core/main.c: gn_main, the gannet command line.
 *
 *   gannet [-c FILE] serve [--foreground]
 *   gannet [-c FILE] localserve [--dir DIR]
 *   gannet [-c FILE] modules | migrate | config check [FILE]
 *   gannet version | help
 *   gannet [-c FILE] <module command> ...
 *
 * Every command that needs the config goes through load_setup(): read and
 * check the config, load and register the modules, and turn every problem
 * found into one line on stderr and exit code 1.  Bad usage exits 2.
 */
#include "main.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

const char *gn_version(void)
{
	return PACKAGE_VERSION;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gannet [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  serve [--foreground]   run the server (master, workers, runner)\n"
		"  localserve [--dir DIR] a complete local setup for development\n"
		"  modules                list the configured modules in load order\n"
		"  migrate                apply pending database migrations\n"
		"  config check [FILE]    check a config file\n"
		"  version                print the version\n"
		"  help                   this text, with the modules' commands\n"
		"\n"
		"options:\n"
		"  -c FILE   config file (default $GANNET_CONFIG or %s/gannet/gannet.conf)\n",
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

/* The core's areas register before the modules, so modules find the
 * core's hook points and may add to them. */
static int core_register(void)
{
	int (*const fns[])(void) = {
		store_register, auth_register, tlspubkey_register,
		deliver_register, import_register,
	};
	int ret = 0;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (fns[i]() < 0)
			ret = -1;
	return ret;
}

enum setup_level {
	SETUP_CONFIG,		/* config file only */
	SETUP_MODULES,		/* and modules loaded and registered */
	SETUP_SERVE,		/* and listeners matched to protocols */
};

/* Returns 0, or 1 after printing every error. */
static int load_setup(const char *path, enum setup_level level)
{
	if (conf_load(path) == 0 && level >= SETUP_MODULES) {
		if (modules_load(core_conf) == 0 && core_register() == 0 &&
		    modules_register() == 0) {
			conf_check_unused();
			hooks_check();
			if (level >= SETUP_SERVE)
				listeners_check_protocols();
		}
	}
	if (conf_error_count() > 0) {
		conf_errors_print(stderr);
		return 1;
	}
	return 0;
}

static int cmd_serve(const char *path, int argc, char **argv)
{
	bool foreground = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "-f") == 0) {
			foreground = true;
		} else {
			fprintf(stderr, "gannet serve: unknown option %s\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	return main_serve(path, foreground);
}

int main_serve(const char *path, bool foreground)
{
	if (load_setup(path, SETUP_SERVE) != 0)
		return 1;
	return master_serve(&serve_ops, foreground);
}

static int cmd_modules(const char *path, int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: gannet modules\n");
		return EXIT_USAGE;
	}
	if (load_setup(path, SETUP_MODULES) != 0)
		return 1;
	modules_print(stdout);
	return 0;
}

static int cmd_migrate(const char *path, int argc, char **argv)
{
	const char *error;
	if (argc != 1) {
		fprintf(stderr, "usage: gannet migrate\n");
		return EXIT_USAGE;
	}
	if (load_setup(path, SETUP_MODULES) != 0)
		return 1;
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

static int cmd_config(const char *path, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0 && argc <= 3) {
		if (argc == 3)
			path = argv[2];
		if (load_setup(path, SETUP_SERVE) != 0)
			return 1;
		printf("config ok: %s\n", path);
		return 0;
	}
	return -1;	/* maybe a module's "config ..." command */
}

/* A command some module registered: load everything, start the modules
 * in process kind "cli" with a database connection, and run it. */
static int cmd_module(const char *path, int argc, char **argv)
{
	const char *error;
	if (load_setup(path, SETUP_MODULES) != 0) {
		fprintf(stderr, "gannet: '%s' is no core command, and module commands need a valid config\n", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!cli_exists(argc, argv)) {
		fprintf(stderr, "gannet: unknown command '%s'\n", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	loop_init();
	if (db_init(core_conf->database, &error) < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	if (db_check_schema(&error) != 0) {
		fprintf(stderr, "gannet: database: %s\n", error ? error : "migrations pending: run gannet migrate");
		db_close();
		return 1;
	}
	if (modules_start("cli", &error) < 0) {
		fprintf(stderr, "gannet: %s\n", error);
		db_close();
		return 1;
	}
	int rc = cli_dispatch(argc, argv);
	modules_stop();
	db_close();
	return rc;
}

int gn_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	int c;

	log_init("gannet");
	/* '+': stop at the command; its own options follow it. */
	while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* -c FILE is global: also accepted after the command
	 * ("gannet serve -c FILE"), and taken out of the command's arguments. */
	int kept = 1;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		} else if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[kept++] = argv[i++];
		} else {
			argv[kept++] = argv[i];
		}
	}
	argc = kept;
	argv[argc] = NULL;
	if (path == NULL)
		path = default_config_path();

	const char *cmd = argv[0];
	int rc;
	if (strcmp(cmd, "version") == 0) {
		if (argc != 1) {
			fprintf(stderr, "usage: gannet version\n");
			return EXIT_USAGE;
		}
		printf("gannet %s (plugin ABI %d.%d)\n", gn_version(), GN_ABI_MAJOR, GN_ABI_MINOR);
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		if (load_setup(path, SETUP_MODULES) == 0)
			cli_print_usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(path, argc, argv);
	else if (strcmp(cmd, "localserve") == 0)
		rc = localserve_main(argc, argv);
	else if (strcmp(cmd, "modules") == 0)
		rc = cmd_modules(path, argc, argv);
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate(path, argc, argv);
	else if (strcmp(cmd, "config") == 0 && (rc = cmd_config(path, argc, argv)) >= 0)
		;
	else if (cmd[0] == '-') {
		fprintf(stderr, "gannet: unknown option %s\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	} else {
		rc = cmd_module(path, argc, argv);
	}
	conf_free();
	return rc;
}
