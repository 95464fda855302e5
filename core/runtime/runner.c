/*
 * core/runtime/runner.c: the registry of runner jobs (gannet/runner.h).
 *
 * Jobs are registered in the register phase and started in the runner
 * process (or the single process of localserve) by runner_jobs_start(): a
 * repeating timer per job on the process's loop.
 */
#include "runtime/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct job {
	struct gn_module_ctx *ctx;
	char *name;
	unsigned long interval_ms;
	gn_job_fn *fn;
	void *data;
	struct gn_timer *timer;
};

static struct job *jobs;
static size_t n_jobs;
static char error_buf[512];

static int set_error(const char **error_r, const char *fmt, ...) GN_PRINTF(2, 3);

static int set_error(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = error_buf;
	return -1;
}

/* ---- jobs ---- */

int gn_runner_job_register(struct gn_module_ctx *ctx, const char *name,
			   unsigned long interval_ms, gn_job_fn *fn, void *data,
			   const char **error_r)
{
	if (modules_check_register("gn_runner_job_register", error_r) < 0)
		return -1;
	if (name == NULL || *name == '\0')
		return set_error(error_r, "gn_runner_job_register: a job needs a name");
	if (fn == NULL || interval_ms == 0)
		return set_error(error_r, "runner job %s: needs a function and an interval > 0", name);
	for (size_t i = 0; i < n_jobs; i++)
		if (jobs[i].ctx == ctx && strcmp(jobs[i].name, name) == 0)
			return set_error(error_r, "runner job %s of module %s is already registered",
					 name, gn_module_name(ctx));
	jobs = gn_realloc(jobs, (n_jobs + 1) * sizeof(*jobs));
	jobs[n_jobs] = (struct job){
		.ctx = ctx, .name = gn_strdup(name), .interval_ms = interval_ms,
		.fn = fn, .data = data,
	};
	n_jobs++;
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
	for (size_t i = 0; i < n_jobs; i++) {
		if (jobs[i].timer != NULL)
			continue;
		jobs[i].timer = gn_timer_new(jobs[i].interval_ms, true, job_fire, &jobs[i]);
		gn_log(GN_LOG_INFO, "core", "event=job_started module=%s job=%s interval_ms=%lu",
		       gn_module_name(jobs[i].ctx), gn_log_quote(0, jobs[i].name),
		       jobs[i].interval_ms);
	}
}

void runner_jobs_stop(void)
{
	for (size_t i = 0; i < n_jobs; i++)
		gn_timer_free(&jobs[i].timer);
}
