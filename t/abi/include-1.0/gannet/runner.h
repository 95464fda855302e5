/*
 * gannet/runner.h: background jobs and CLI subcommands.
 *
 * Jobs run in the runner process (or the single process of localserve):
 * each is called every interval from the loop and must not block for long;
 * work is claimed from tables with SELECT ... FOR UPDATE SKIP LOCKED so that
 * runners on several nodes never do a job twice.
 *
 * CLI subcommands: `gannet <words...> args` runs fn with the config loaded,
 * modules registered and started in process kind "cli", and the database
 * connected.  fn returns the exit code: 0 done, 1 failed, 2 bad usage.
 */
#ifndef GANNET_RUNNER_H
#define GANNET_RUNNER_H

#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void gn_job_fn(void *data);

int gn_runner_job_register(struct gn_module_ctx *ctx, const char *name,
			   unsigned long interval_ms, gn_job_fn *fn, void *data,
			   const char **error_r);

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
