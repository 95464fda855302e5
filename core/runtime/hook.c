/*
 * core/runtime/hook.c: hook points and their ordered chains (gannet/hook.h).
 *
 * A point keeps its chain sorted at all times: by priority, then by the
 * registering module's slot (load order), then by registration order.  A
 * hook may be registered before its point is defined; it waits in the list
 * of all hooks and joins the chain when the point appears.  hooks_check()
 * reports the hooks whose point never appeared.
 *
 * A run (struct hook_run) walks the chain.  Each hook called gets its own
 * struct gn_hook_call: a hook that returns PENDING keeps that object, and
 * the run waits for gn_hook_complete() on it, bounded by the point's timeout.
 * When the core gives up on a pending hook (timeout, gn_hook_cancel()) the
 * call is detached from the run: its cancel function runs and the object is
 * freed, or, without one, the object stays until the late
 * gn_hook_complete() that is then ignored.  So a hook's pointer is never
 * left dangling and a late answer can never be taken for a later hook's.
 * The handle gn_hook_run() returns is a struct gn_hook_call embedded in the
 * run (hook == NULL); it is valid until done is called or the run is
 * cancelled.
 */
#include "runtime/internal.h"

#include <stdarg.h>
#include <string.h>

/* Used for timeout_ms 0. */
#define HOOK_DEFAULT_TIMEOUT_MS 30000UL

struct hook {
	struct gn_module_ctx *ctx;
	char *point;		/* point name */
	int priority;
	unsigned flags;
	unsigned seq;		/* registration order */
	gn_hook_fn *fn;
	void *data;
	bool attached;
};

struct gn_hook_point {
	const char *name;	/* the registry entry's */
	struct gn_module_ctx *ctx;
	unsigned long timeout_ms;
	enum gn_hook_result default_result;
	struct hook **chain;
	size_t n_chain;
};

struct hook_run;

struct gn_hook_call {
	struct hook_run *run;	/* NULL once detached */
	const struct hook *hook;	/* NULL for the run's handle */
	const char *point;	/* the point's name (points live forever) */
	void *context;
	gn_hook_cancel_fn *cancel_fn;
	void *cancel_data;
	bool in_fn;		/* the hook function is running */
	bool completed;		/* gn_hook_complete() was called */
	enum gn_hook_result result;	/* its result */
};

struct hook_run {
	struct gn_hook_call handle;	/* what gn_hook_run() returns */
	struct gn_hook_point *point;
	void *context;
	gn_hook_done_fn *done;
	void *done_data;
	size_t next;		/* index of the next hook to call */
	struct gn_hook_call *pending;	/* the hook being waited for */
	struct gn_timer *timer;
	bool walking;		/* inside walk() */
	bool cancelled;		/* gn_hook_cancel() during walk() */
	bool finished;		/* done is being called */
	/* The reply of the hook that decided. */
	int code;
	char *enhanced;
	char *text;
	const char *module;
};

static bool valid_point_name(const char *name)
{
	return registry_name_ok(name, 128, true);
}

/* item: struct gn_hook_point. */
static struct registry points = {
	.kind = "hook point", .verb = "defined", .valid_name = valid_point_name,
	.name_rule = "letters, digits, '_', '.', '-'",
};
/* Every hook in registration order, attached to its point's chain or
 * waiting for the point to be defined. */
static struct hook **hooks;
static size_t n_hooks;
static unsigned hook_seq;

static const char *result_names[] = {
	"continue", "accept", "reject", "tempfail", "disconnect", "pending",
};

static const char *result_name(enum gn_hook_result r)
{
	return (unsigned)r < sizeof(result_names) / sizeof(result_names[0])
		? result_names[r] : "invalid";
}

/* ---- registration ---- */

/* Whether a runs before b. */
static bool hook_before(const struct hook *a, const struct hook *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority;
	unsigned sa = gn_module_slot(a->ctx), sb = gn_module_slot(b->ctx);
	if (sa != sb)
		return sa < sb;
	return a->seq < b->seq;
}

static void chain_insert(struct gn_hook_point *p, struct hook *h)
{
	size_t i = p->n_chain;
	p->chain = gn_realloc(p->chain, (p->n_chain + 1) * sizeof(*p->chain));
	while (i > 0 && hook_before(h, p->chain[i - 1])) {
		p->chain[i] = p->chain[i - 1];
		i--;
	}
	p->chain[i] = h;
	p->n_chain++;
	h->attached = true;
}

struct gn_hook_point *gn_hook_point_find(const char *name)
{
	const struct registry_entry *e = registry_find(&points, NULL, name);
	return e != NULL ? e->item : NULL;
}

int gn_hook_point_define(struct gn_module_ctx *ctx, const char *name,
			 unsigned long timeout_ms,
			 enum gn_hook_result default_result,
			 const char **error_r)
{
	if (registry_check(&points, "gn_hook_point_define", ctx, name, error_r) < 0)
		return -1;
	if (default_result != GN_HOOK_CONTINUE && default_result != GN_HOOK_ACCEPT &&
	    default_result != GN_HOOK_REJECT && default_result != GN_HOOK_TEMPFAIL)
		return registry_fail(error_r, "hook point %s: default result must be continue, accept, reject or tempfail",
				     name);

	struct gn_hook_point *p = gn_calloc(1, sizeof(*p));
	p->ctx = ctx;
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : HOOK_DEFAULT_TIMEOUT_MS;
	p->default_result = default_result;
	p->name = registry_add(&points, ctx, name, p)->name;
	/* Hooks registered before the point existed join now. */
	for (size_t i = 0; i < n_hooks; i++)
		if (!hooks[i]->attached && strcmp(hooks[i]->point, name) == 0)
			chain_insert(p, hooks[i]);
	return 0;
}

int gn_hook_register(struct gn_module_ctx *ctx, const char *point,
		     int priority, unsigned flags, gn_hook_fn *fn, void *data,
		     const char **error_r)
{
	/* Hooks have no names of their own: the point's name is checked as
	 * the point registry would check it. */
	if (modules_check_register("gn_hook_register", error_r) < 0)
		return -1;
	if (!valid_point_name(point))
		return registry_fail(error_r, "gn_hook_register: invalid hook point name \"%s\" (%s)",
				     point != NULL ? point : "(null)", points.name_rule);
	if (fn == NULL)
		return registry_fail(error_r, "gn_hook_register: no function for hook point %s", point);

	struct hook *h = gn_calloc(1, sizeof(*h));
	h->ctx = ctx;
	h->point = gn_strdup(point);
	h->priority = priority;
	h->flags = flags;
	h->seq = hook_seq++;
	h->fn = fn;
	h->data = data;
	hooks = gn_realloc(hooks, (n_hooks + 1) * sizeof(*hooks));
	hooks[n_hooks++] = h;
	struct gn_hook_point *p = gn_hook_point_find(point);
	if (p != NULL)
		chain_insert(p, h);
	return 0;
}

int hooks_check(void)
{
	int ret = 0;
	for (size_t i = 0; i < n_hooks; i++) {
		const struct hook *h = hooks[i];
		if (h->attached || (h->flags & GN_HOOK_OPTIONAL_POINT) != 0)
			continue;
		conf_error("module %s registers a hook on the unknown hook point \"%s\" (is the module that defines it in modules.load?)",
			   gn_module_name(h->ctx), h->point);
		ret = -1;
	}
	for (size_t i = 0; i < points.n; i++) {
		const struct gn_hook_point *p = points.entries[i].item;
		for (size_t j = 0; j < p->n_chain; j++)
			gn_log(GN_LOG_DEBUG, "core", "event=hook_chain point=%s position=%zu module=%s priority=%d",
			       p->name, j, gn_module_name(p->chain[j]->ctx), p->chain[j]->priority);
	}
	return ret;
}

static void point_free(void *item)
{
	struct gn_hook_point *p = item;
	gn_free(p->chain);
	gn_free(p);
}

void hooks_free(void)
{
	registry_clear(&points, point_free);
	for (size_t i = 0; i < n_hooks; i++) {
		gn_free(hooks[i]->point);
		gn_free(hooks[i]);
	}
	gn_free(hooks);
	hooks = NULL;
	n_hooks = 0;
	hook_seq = 0;
}

/* ---- running ---- */

static void reply_clear(struct hook_run *run)
{
	run->code = 0;
	gn_free(run->enhanced);
	gn_free(run->text);
	run->enhanced = NULL;
	run->text = NULL;
	run->module = NULL;
}

static void run_free(struct hook_run *run)
{
	gn_timer_free(&run->timer);
	reply_clear(run);
	gn_free(run);
}


/* Ends the run with result: done, then free. */
static void run_finish(struct hook_run *run, enum gn_hook_result result)
{
	struct gn_hook_reply reply = {
		.code = run->code, .enhanced = run->enhanced, .text = run->text,
		.module = run->module,
	};
	run->finished = true;
	run->handle.run = NULL;
	gn_log(GN_LOG_DEBUG, "core", "event=hook_chain_done point=%s result=%s module=%s",
	       run->point->name, result_name(result), run->module != NULL ? run->module : "-");
	if (run->done != NULL)
		run->done(result, &reply, run->done_data);
	run_free(run);
}

/* The pending hook answered (or the core gave up on it with the point's
 * default): go on or end.  Returns true when the run ended. */
static bool take_result(struct hook_run *run, const struct hook *h,
			enum gn_hook_result r)
{
	if (r == GN_HOOK_CONTINUE) {
		reply_clear(run);
		return false;
	}
	run->module = gn_module_name(h->ctx);
	run_finish(run, r);
	return true;
}

static enum gn_hook_result checked(struct hook_run *run, const struct hook *h,
				   enum gn_hook_result r, bool may_pend)
{
	if ((unsigned)r <= GN_HOOK_DISCONNECT || (may_pend && r == GN_HOOK_PENDING))
		return r;
	gn_log(GN_LOG_WARN, "core",
	       "event=hook_bad_result point=%s module=%s result=%d default=%s",
	       run->point->name, gn_module_name(h->ctx), (int)r,
	       result_name(run->point->default_result));
	reply_clear(run);
	return run->point->default_result;
}

static void on_timeout(void *data);

/* Detaches the pending call (the core no longer waits for it). */
static void detach_pending(struct hook_run *run)
{
	struct gn_hook_call *call = run->pending;
	run->pending = NULL;
	if (call == NULL)
		return;
	call->run = NULL;
	if (call->cancel_fn != NULL) {
		/* The hook promised not to complete after its cancel fn. */
		call->cancel_fn(call, call->cancel_data);
		gn_free(call);
	}
	/* Otherwise the call lives until its late gn_hook_complete(). */
}

/* Calls hooks from run->next until one pends or decides.  Returns true
 * when a hook pends (the run waits), false when the run ended and is
 * freed. */
static bool walk(struct hook_run *run)
{
	struct gn_hook_point *p = run->point;
	run->walking = true;
	while (run->next < p->n_chain) {
		const struct hook *h = p->chain[run->next++];
		struct gn_hook_call *call = gn_calloc(1, sizeof(*call));
		call->run = run;
		call->hook = h;
		call->point = p->name;
		call->context = run->context;
		call->in_fn = true;
		enum gn_hook_result r = h->fn(call, h->data);
		call->in_fn = false;
		if (run->cancelled) {
			/* The run was cancelled from inside the hook. */
			if (r == GN_HOOK_PENDING && !call->completed) {
				run->pending = call;
				detach_pending(run);
			} else {
				gn_free(call);
			}
			run_free(run);
			return false;
		}
		r = checked(run, h, r, true);
		if (r == GN_HOOK_PENDING) {
			if (!call->completed) {
				run->pending = call;
				run->walking = false;
				if (run->timer == NULL)
					run->timer = gn_timer_new(p->timeout_ms, false, on_timeout, run);
				else
					gn_timer_reset(run->timer);
				return true;
			}
			/* Completed before it even returned. */
			r = checked(run, h, call->result, false);
		}
		gn_free(call);
		if (take_result(run, h, r))
			return false;
	}
	run_finish(run, GN_HOOK_CONTINUE);
	return false;
}

static void on_timeout(void *data)
{
	struct hook_run *run = data;
	struct gn_hook_call *call = run->pending;
	if (call == NULL)
		return;
	const struct hook *h = call->hook;
	gn_log(GN_LOG_WARN, "core",
	       "event=hook_timeout point=%s module=%s timeout_ms=%lu default=%s",
	       run->point->name, gn_module_name(h->ctx), run->point->timeout_ms,
	       result_name(run->point->default_result));
	detach_pending(run);
	reply_clear(run);
	if (!take_result(run, h, run->point->default_result))
		walk(run);
}

struct gn_hook_call *gn_hook_run(struct gn_hook_point *point, void *context,
				 gn_hook_done_fn *done, void *done_data)
{
	if (point == NULL) {
		struct gn_hook_reply reply = { 0, NULL, NULL, NULL };
		if (done != NULL)
			done(GN_HOOK_CONTINUE, &reply, done_data);
		return NULL;
	}
	struct hook_run *run = gn_calloc(1, sizeof(*run));
	run->handle.run = run;
	run->handle.point = point->name;
	run->handle.context = context;
	run->point = point;
	run->context = context;
	run->done = done;
	run->done_data = done_data;
	return walk(run) ? &run->handle : NULL;
}

void gn_hook_cancel(struct gn_hook_call *call)
{
	if (call == NULL)
		return;
	struct hook_run *run = call->run;
	if (run == NULL || run->finished)
		return;
	if (run->walking) {
		/* A hook of this very run is on the stack: walk() frees. */
		run->cancelled = true;
		return;
	}
	gn_log(GN_LOG_DEBUG, "core", "event=hook_chain_cancelled point=%s", run->point->name);
	detach_pending(run);
	run_free(run);
}

void gn_hook_complete(struct gn_hook_call *call, enum gn_hook_result result)
{
	if (call == NULL || call->hook == NULL || call->completed)
		return;
	if (call->in_fn) {
		/* Before the hook returned PENDING; walk() takes it. */
		call->completed = true;
		call->result = result;
		return;
	}
	struct hook_run *run = call->run;
	if (run == NULL) {
		/* The core gave up on this hook already. */
		gn_log(GN_LOG_DEBUG, "core", "event=hook_late_completion point=%s module=%s result=%s",
		       call->point, gn_module_name(call->hook->ctx), result_name(result));
		gn_free(call);
		return;
	}
	if (run->pending != call)
		return;
	const struct hook *h = call->hook;
	run->pending = NULL;
	gn_free(call);
	gn_timer_free(&run->timer);
	enum gn_hook_result r = checked(run, h, result, false);
	if (!take_result(run, h, r))
		walk(run);
}

void *gn_hook_call_context(const struct gn_hook_call *call)
{
	return call != NULL ? call->context : NULL;
}

const char *gn_hook_call_point(const struct gn_hook_call *call)
{
	return call != NULL ? call->point : NULL;
}

/* Reply text goes to the peer on one line: no control characters. */
static char *reply_strdup(const char *s)
{
	char *d = gn_strdup(s);
	for (char *p = d; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return d;
}

void gn_hook_call_reply(struct gn_hook_call *call, int code,
			const char *enhanced, const char *fmt, ...)
{
	if (call == NULL || call->hook == NULL || call->run == NULL)
		return;
	struct hook_run *run = call->run;
	char text[1024];
	text[0] = '\0';
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	reply_clear(run);
	run->code = code;
	run->enhanced = enhanced != NULL ? reply_strdup(enhanced) : NULL;
	run->text = fmt != NULL ? reply_strdup(text) : NULL;
}

void gn_hook_call_on_cancel(struct gn_hook_call *call, gn_hook_cancel_fn *fn,
			    void *data)
{
	if (call == NULL || call->hook == NULL)
		return;
	call->cancel_fn = fn;
	call->cancel_data = data;
}
