/*
 * gannet/cli.h: subcommands of the gannet command line.
 *
 * `gannet <words...> args` runs a module's command with the config loaded,
 * the modules registered and started in process kind "cli", and the
 * database connected.  Before any module starts, the core answers
 * `--help` and `-h` (anywhere before a "--" argument: the command's usage
 * and help on stdout, exit 0) and refuses a wrong number of arguments
 * (exit 2), so fn sees only calls that may run.  fn returns the exit code:
 * 0 done, 1 failed, 2 bad usage.  A command prints its result on stdout and
 * its errors on stderr; the core keeps info log lines out of both unless
 * the user asks with `gannet -v`.
 *
 * Commands are registered in the register phase (gannet/module.h).  Their
 * words are unique: a module cannot take a command of the core or of
 * another module.
 */
#ifndef GANNET_CLI_H
#define GANNET_CLI_H

#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* argv[0] is the last word of the command; argv[argc] is NULL. */
typedef int gn_cli_fn(int argc, char **argv, void *data);

/* A command.  Starts with its own size and only ever grows at the end;
 * the core copies it and its strings. */
struct gn_cli_command {
	size_t size;		/* sizeof(struct gn_cli_command) */
	const char *words;	/* 1 to 8 words separated by spaces, none starting
				 * with '-': "config tlspubkey list" */
	const char *usage;	/* one line of arguments after the words, for
				 * `gannet help` and errors; may be NULL */
	const char *help;	/* what the command does, one or a few lines
				 * for `--help`; may be NULL */
	int min_args;		/* arguments after the words (options count) */
	int max_args;		/* -1: no upper bound */
	gn_cli_fn *fn;
	void *data;		/* passed to fn */
};

/* Register phase.  Returns 0, or -1 with *error_r set (the words are
 * taken, malformed, no fn, min_args > max_args, called after the register
 * phase). */
int gn_cli_command_register(struct gn_module_ctx *ctx,
			    const struct gn_cli_command *cmd,
			    const char **error_r);

/* The same with usage only: any number of arguments, fn checks them
 * itself (after the modules started). */
int gn_cli_register(struct gn_module_ctx *ctx, const char *words,
		    const char *usage, gn_cli_fn *fn, void *data,
		    const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
