/*
 * gannet/cli.h: subcommands of the gannet command line.
 *
 * `gannet <words...> args` runs fn with the config loaded, modules
 * registered and started in process kind "cli", and the database
 * connected.  fn returns the exit code: 0 done, 1 failed, 2 bad usage.
 */
#ifndef GANNET_CLI_H
#define GANNET_CLI_H

#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* argv[0] is the last word of the command. */
typedef int gn_cli_fn(int argc, char **argv, void *data);

/* words: the command's words separated by spaces ("config tlspubkey").
 * usage: one line of arguments, printed by `gannet help`. */
int gn_cli_register(struct gn_module_ctx *ctx, const char *words,
		    const char *usage, gn_cli_fn *fn, void *data,
		    const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
