/*
 * gannet/runner.h: background jobs.
 *
 * Jobs run in the runner process (or the single process of localserve):
 * each is called every interval from the loop and must not block for long;
 * work is claimed from tables with SELECT ... FOR UPDATE SKIP LOCKED so that
 * runners on several nodes never do a job twice.
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

#ifdef __cplusplus
}
#endif
#endif
