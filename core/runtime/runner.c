/*
 * core/runtime/runner.c: the registry of runner jobs (gannet/runner.h).
 *
 * Jobs are registered in the register phase and started in the runner
 * process (or the single process of localserve) by runner_jobs_start(): a
 * repeating timer per job on the process's loop.
 */
#include "runtime/internal.h"

#include <string.h>

struct job {
	struct gn_module_ctx *ctx;
	const char *name;	/* the registry entry's */
	unsigned long interval_ms;
	gn_job_fn *fn;
	void *data;
	struct gn_timer *timer;
};

/* Names are unique within a module: two modules may each have a
 * "cleanup".  item: struct job. */
static struct registry jobs = {
	.kind = "runner job", .verb = "registered", .per_module = true,
};

int gn_runner_job_register(struct gn_module_ctx *ctx, const char *name,
			   unsigned long interval_ms, gn_job_fn *fn, void *data,
			   const char **error_r)
{
	if (registry_check(&jobs, "gn_runner_job_register", ctx, name, error_r) < 0)
		return -1;
	if (fn == NULL || interval_ms == 0)
		return registry_fail(error_r, "runner job %s: needs a function and an interval > 0", name);
	struct job *job = gn_calloc(1, sizeof(*job));
	*job = (struct job){ .ctx = ctx, .interval_ms = interval_ms, .fn = fn, .data = data };
	job->name = registry_add(&jobs, ctx, name, job)->name;
	return 0;
}

static void job_fire(void *data)
{
	struct job *job = data;
	gn_log(GN_LOG_DEBUG, "core", "event=job_run module=%s job=%s",
	       gn_module_name(job->ctx), gn_log_quote(0, job->name));
	job->fn(job->data);
}

void runner_jobs_start(void)
{
	for (size_t i = 0; i < jobs.n; i++) {
		struct job *job = jobs.entries[i].item;
		if (job->timer != NULL)
			continue;
		job->timer = gn_timer_new(job->interval_ms, true, job_fire, job);
		gn_log(GN_LOG_INFO, "core", "event=job_started module=%s job=%s interval_ms=%lu",
		       gn_module_name(job->ctx), gn_log_quote(0, job->name), job->interval_ms);
	}
}

void runner_jobs_stop(void)
{
	for (size_t i = 0; i < jobs.n; i++) {
		struct job *job = jobs.entries[i].item;
		gn_timer_free(&job->timer);
	}
}
