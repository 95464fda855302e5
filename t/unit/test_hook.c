/*
 * t/unit/test_hook.c: hook chains (core/runtime/hook.c).
 *
 * Includes core/runtime/module.c to make modules without shared objects: each fake
 * module gets the next slot, as the loader would give it.  Pending hooks
 * complete from timers on the real loop (core/runtime/loop.c); every wait is
 * bounded by a guard timer so a broken chain fails instead of hanging.
 */
#include "../../core/runtime/module.c"

#include <string.h>
#include "tap.h"

static const struct gn_module fake_desc = {
	GN_MODULE_HEADER, .name = "fake", .version = "0",
};

static struct gn_module_ctx *fake_module(const char *name)
{
	struct gn_module_ctx *ctx = gn_calloc(1, sizeof(*ctx));
	ctx->desc = &fake_desc;
	ctx->name = gn_strdup(name);
	ctx->file = gn_strdup("(test)");
	modules = gn_realloc(modules, (n_modules + 1) * sizeof(*modules));
	modules[n_modules++] = ctx;
	ctx->slot = (unsigned)n_modules;
	return ctx;
}

/* What the hooks did, in order. */
static char trace[256];

static void trace_add(const char *s)
{
	size_t n = strlen(trace);
	snprintf(trace + n, sizeof(trace) - n, "%s", s);
}

/* Each hook's behaviour: a letter for the trace and a result. */
struct behave {
	const char *tag;
	enum gn_hook_result result;
	int code;		/* reply when non-zero */
	const char *enhanced;
	const char *text;
};

static enum gn_hook_result hook_fn(struct gn_hook_call *call, void *data)
{
	const struct behave *b = data;
	trace_add(b->tag);
	if (b->code != 0)
		gn_hook_call_reply(call, b->code, b->enhanced, "%s", b->text);
	return b->result;
}

/* The done callback's record. */
static struct {
	int calls;
	enum gn_hook_result result;
	int code;
	char enhanced[64];
	char text[256];
	char module[64];
} done;

static void done_reset(void)
{
	memset(&done, 0, sizeof(done));
	trace[0] = '\0';
}

static void on_done(enum gn_hook_result result, const struct gn_hook_reply *reply,
		    void *data)
{
	(void)data;
	done.calls++;
	done.result = result;
	done.code = reply->code;
	snprintf(done.enhanced, sizeof(done.enhanced), "%s", reply->enhanced ? reply->enhanced : "");
	snprintf(done.text, sizeof(done.text), "%s", reply->text ? reply->text : "");
	snprintf(done.module, sizeof(done.module), "%s", reply->module ? reply->module : "");
}

/* ---- the loop ---- */

static bool guard_fired;

static void guard_cb(void *data)
{
	(void)data;
	guard_fired = true;
}

/* Runs the loop until cond() or ms passed.  Returns cond(). */
static bool run_until(bool (*cond)(void), unsigned long ms)
{
	struct gn_timer *guard = gn_timer_new(ms, false, guard_cb, NULL);
	guard_fired = false;
	while (!cond() && !guard_fired)
		ev_run(core_loop, EVRUN_ONCE);
	gn_timer_free(&guard);
	return cond();
}

static bool done_called(void)
{
	return done.calls > 0;
}

static bool never(void)
{
	return false;
}

/* ---- pending hooks ---- */

struct pend {
	const char *tag;
	struct gn_hook_call *call;
	enum gn_hook_result complete_with;	/* from a timer */
	unsigned long after_ms;		/* 0: never completes by itself */
	bool set_cancel;
	int cancels;
	bool complete_inside;		/* gn_hook_complete() before returning */
	struct gn_timer *timer;
};

static void pend_complete_cb(void *data)
{
	struct pend *p = data;
	gn_hook_complete(p->call, p->complete_with);
}

static void pend_cancel(struct gn_hook_call *call, void *data)
{
	struct pend *p = data;
	(void)call;
	p->cancels++;
	gn_timer_free(&p->timer);
}

static enum gn_hook_result pend_fn(struct gn_hook_call *call, void *data)
{
	struct pend *p = data;
	trace_add(p->tag);
	p->call = call;
	if (p->complete_inside) {
		gn_hook_complete(call, p->complete_with);
		return GN_HOOK_PENDING;
	}
	if (p->set_cancel)
		gn_hook_call_on_cancel(call, pend_cancel, p);
	if (p->after_ms > 0)
		p->timer = gn_timer_new(p->after_ms, false, pend_complete_cb, p);
	return GN_HOOK_PENDING;
}

static struct gn_hook_point *define(struct gn_module_ctx *ctx, const char *name,
				    unsigned long timeout_ms, enum gn_hook_result def)
{
	const char *error = NULL;
	int r = gn_hook_point_define(ctx, name, timeout_ms, def, &error);
	if (r < 0)
		diag("define %s: %s", name, error);
	return gn_hook_point_find(name);
}

static void reg(struct gn_module_ctx *ctx, const char *point, int prio,
		unsigned flags, gn_hook_fn *fn, void *data)
{
	const char *error = NULL;
	if (gn_hook_register(ctx, point, prio, flags, fn, data, &error) < 0)
		diag("register on %s: %s", point, error);
}

int main(void)
{
	loop_init();
	struct gn_module_ctx *m1 = fake_module("alpha");
	struct gn_module_ctx *m2 = fake_module("beta");
	struct gn_module_ctx *core = modules_core_ctx();
	const char *error;

	/* Ordering: priority, then module order, then registration order;
	 * a hook registered before its point is defined joins it. */
	static const struct behave A = { "A", GN_HOOK_CONTINUE, 0, 0, 0 };
	static const struct behave B = { "B", GN_HOOK_CONTINUE, 0, 0, 0 };
	static const struct behave C = { "C", GN_HOOK_CONTINUE, 0, 0, 0 };
	static const struct behave D = { "D", GN_HOOK_CONTINUE, 0, 0, 0 };
	static const struct behave E = { "E", GN_HOOK_CONTINUE, 0, 0, 0 };
	static const struct behave F = { "F", GN_HOOK_CONTINUE, 0, 0, 0 };
	reg(m2, "t.order", 10, 0, hook_fn, (void *)&E);
	struct gn_hook_point *order = define(core, "t.order", 1000, GN_HOOK_TEMPFAIL);
	ok(order != NULL, "a point is found by name once defined");
	reg(m2, "t.order", 0, 0, hook_fn, (void *)&A);
	reg(m1, "t.order", 0, 0, hook_fn, (void *)&B);
	reg(m1, "t.order", -5, 0, hook_fn, (void *)&C);
	reg(m1, "t.order", 0, 0, hook_fn, (void *)&D);
	reg(core, "t.order", 0, 0, hook_fn, (void *)&F);
	done_reset();
	struct gn_hook_call *h = gn_hook_run(order, NULL, on_done, NULL);
	ok(h == NULL, "a chain without pending hooks returns NULL");
	is_int(done.calls, 1, "done is called once, before gn_hook_run returns");
	is_str(trace, "CFBDAE", "hooks run by priority, then module load order (core first), then registration order");
	is_int(done.result, GN_HOOK_CONTINUE, "every hook continues: the chain continues");
	is_str(done.module, "", "no module decided");

	/* Each decisive result ends the chain, with its reply. */
	static const struct {
		enum gn_hook_result r;
		int code;
		const char *enh, *text, *name;
	} ends[] = {
		{ GN_HOOK_ACCEPT, 0, NULL, NULL, "accept" },
		{ GN_HOOK_REJECT, 550, "5.7.1", "rejected here", "reject" },
		{ GN_HOOK_TEMPFAIL, 451, "4.7.1", "try later", "tempfail" },
		{ GN_HOOK_DISCONNECT, 421, NULL, "bye", "disconnect" },
	};
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "t.end.%s", ends[i].name);
		struct gn_hook_point *p = define(core, name, 1000, GN_HOOK_CONTINUE);
		static struct behave bs[4][3];
		struct behave *b = bs[i];
		b[0] = (struct behave){ "1", GN_HOOK_CONTINUE, 599, "5.9.9", "stale" };
		b[1] = (struct behave){ "2", ends[i].r, ends[i].code, ends[i].enh, ends[i].text };
		b[2] = (struct behave){ "3", GN_HOOK_ACCEPT, 0, 0, 0 };
		reg(m1, name, 1, 0, hook_fn, &b[0]);
		reg(m2, name, 2, 0, hook_fn, &b[1]);
		reg(m1, name, 3, 0, hook_fn, &b[2]);
		done_reset();
		gn_hook_run(p, NULL, on_done, NULL);
		is_str(trace, "12", "%s ends the chain: later hooks do not run", ends[i].name);
		is_int(done.result, ends[i].r, "%s is the chain's result", ends[i].name);
		is_int(done.code, ends[i].code, "%s: reply code (a continuing hook's reply is dropped)", ends[i].name);
		is_str(done.enhanced, ends[i].enh ? ends[i].enh : "", "%s: enhanced code", ends[i].name);
		is_str(done.text, ends[i].text ? ends[i].text : "", "%s: reply text", ends[i].name);
		is_str(done.module, "beta", "%s: the deciding module is named", ends[i].name);
	}

	/* Reply text goes to a peer: no line breaks can get through. */
	static const struct behave inj = { "I", GN_HOOK_REJECT, 550, "5.7.1", "no\r\n250 ok" };
	struct gn_hook_point *pinj = define(core, "t.inject", 1000, GN_HOOK_CONTINUE);
	reg(m1, "t.inject", 0, 0, hook_fn, (void *)&inj);
	done_reset();
	gn_hook_run(pinj, NULL, on_done, NULL);
	is_str(done.text, "no  250 ok", "CR and LF in reply text become spaces");

	/* A result that is not a result: the point's default. */
	static const struct behave bad = { "X", (enum gn_hook_result)42, 0, 0, 0 };
	static const struct behave after = { "Y", GN_HOOK_CONTINUE, 0, 0, 0 };
	struct gn_hook_point *pbad = define(core, "t.bad", 1000, GN_HOOK_REJECT);
	reg(m1, "t.bad", 0, 0, hook_fn, (void *)&bad);
	reg(m2, "t.bad", 1, 0, hook_fn, (void *)&after);
	done_reset();
	gn_hook_run(pbad, NULL, on_done, NULL);
	is_int(done.result, GN_HOOK_REJECT, "an invalid result is replaced by the default (reject)");
	is_str(trace, "X", "and the default ends the chain");
	is_str(done.module, "alpha", "the misbehaving module is named");
	struct gn_hook_point *pbad2 = define(core, "t.bad2", 1000, GN_HOOK_CONTINUE);
	reg(m1, "t.bad2", 0, 0, hook_fn, (void *)&bad);
	reg(m2, "t.bad2", 1, 0, hook_fn, (void *)&after);
	done_reset();
	gn_hook_run(pbad2, NULL, on_done, NULL);
	is_str(trace, "XY", "an invalid result with default continue goes on to the next hook");
	is_int(done.result, GN_HOOK_CONTINUE, "and the chain continues");

	/* PENDING completing later from the loop, then the chain goes on. */
	static struct pend p1 = { .tag = "P", .complete_with = GN_HOOK_CONTINUE, .after_ms = 10 };
	static const struct behave rej = { "R", GN_HOOK_REJECT, 554, NULL, "later no" };
	struct gn_hook_point *ppend = define(core, "t.pend", 5000, GN_HOOK_TEMPFAIL);
	reg(m1, "t.pend", 0, 0, pend_fn, &p1);
	reg(m2, "t.pend", 1, 0, hook_fn, (void *)&rej);
	done_reset();
	int marker = 7;
	h = gn_hook_run(ppend, &marker, on_done, NULL);
	ok(h != NULL, "a pending chain returns a handle");
	is_int(done.calls, 0, "done is not called while a hook pends");
	ok(gn_hook_call_context(p1.call) == &marker, "the hook sees the run's context");
	is_str(gn_hook_call_point(p1.call), "t.pend", "the hook sees its point's name");
	ok(run_until(done_called, 5000), "the chain completes from the loop");
	is_str(trace, "PR", "after the pending hook continued, the next hook ran");
	is_int(done.result, GN_HOOK_REJECT, "the chain's result is the later hook's");
	is_int(done.code, 554, "with its reply");
	gn_timer_free(&p1.timer);

	/* PENDING completed with a decision. */
	static struct pend p2 = { .tag = "Q", .complete_with = GN_HOOK_ACCEPT, .after_ms = 5 };
	struct gn_hook_point *ppend2 = define(core, "t.pend2", 5000, GN_HOOK_TEMPFAIL);
	reg(m2, "t.pend2", 0, 0, pend_fn, &p2);
	reg(m1, "t.pend2", 1, 0, hook_fn, (void *)&rej);
	done_reset();
	gn_hook_run(ppend2, NULL, on_done, NULL);
	run_until(done_called, 5000);
	is_str(trace, "Q", "a pending hook that accepts ends the chain");
	is_int(done.result, GN_HOOK_ACCEPT, "with its result");
	is_str(done.module, "beta", "naming its module");
	gn_timer_free(&p2.timer);

	/* Completed before the hook even returned PENDING. */
	static struct pend p3 = { .tag = "S", .complete_with = GN_HOOK_TEMPFAIL, .complete_inside = true };
	struct gn_hook_point *ppend3 = define(core, "t.pend3", 5000, GN_HOOK_ACCEPT);
	reg(m1, "t.pend3", 0, 0, pend_fn, &p3);
	done_reset();
	h = gn_hook_run(ppend3, NULL, on_done, NULL);
	ok(h == NULL && done.calls == 1, "a hook completing inside its own call finishes synchronously");
	is_int(done.result, GN_HOOK_TEMPFAIL, "with the result it completed with");

	/* Timeout: the default replaces the hook's result; cancel fn runs. */
	static struct pend p4 = { .tag = "T", .set_cancel = true };
	struct gn_hook_point *ptime = define(core, "t.timeout", 30, GN_HOOK_TEMPFAIL);
	reg(m2, "t.timeout", 0, 0, pend_fn, &p4);
	reg(m1, "t.timeout", 1, 0, hook_fn, (void *)&A);
	done_reset();
	gn_hook_run(ptime, NULL, on_done, NULL);
	ok(run_until(done_called, 5000), "a hook that never completes times out");
	is_int(done.result, GN_HOOK_TEMPFAIL, "the timeout applies the point's default (tempfail)");
	is_str(trace, "T", "the default ends the chain");
	is_str(done.module, "beta", "the timed-out module is named");
	is_int(p4.cancels, 1, "the hook's cancel function ran once");

	/* Timeout with default continue: the chain goes on.  Without a
	 * cancel fn, a late completion is ignored. */
	static struct pend p5 = { .tag = "U" };
	struct gn_hook_point *ptime2 = define(core, "t.timeout2", 30, GN_HOOK_CONTINUE);
	reg(m1, "t.timeout2", 0, 0, pend_fn, &p5);
	reg(m2, "t.timeout2", 1, 0, hook_fn, (void *)&B);
	done_reset();
	gn_hook_run(ptime2, NULL, on_done, NULL);
	run_until(done_called, 5000);
	is_str(trace, "UB", "after a timeout with default continue, the next hook runs");
	is_int(done.result, GN_HOOK_CONTINUE, "and decides the result");
	gn_hook_complete(p5.call, GN_HOOK_REJECT);
	is_int(done.calls, 1, "a late completion is ignored: done is not called again");
	is_int(done.result, GN_HOOK_CONTINUE, "and the result stands");

	/* Two pending hooks in one run, each with its own timeout. */
	static struct pend p6 = { .tag = "V", .complete_with = GN_HOOK_CONTINUE, .after_ms = 20 };
	static struct pend p7 = { .tag = "W", .complete_with = GN_HOOK_REJECT, .after_ms = 20 };
	struct gn_hook_point *ptwo = define(core, "t.two", 1000, GN_HOOK_ACCEPT);
	reg(m1, "t.two", 0, 0, pend_fn, &p6);
	reg(m2, "t.two", 0, 0, pend_fn, &p7);
	done_reset();
	gn_hook_run(ptwo, NULL, on_done, NULL);
	run_until(done_called, 5000);
	is_str(trace, "VW", "two pending hooks run one after the other");
	is_int(done.result, GN_HOOK_REJECT, "the second one's result ends the chain");
	gn_timer_free(&p6.timer);
	gn_timer_free(&p7.timer);

	/* Cancel: done never runs, the cancel fn does. */
	static struct pend p8 = { .tag = "Z", .set_cancel = true, .complete_with = GN_HOOK_ACCEPT, .after_ms = 20 };
	struct gn_hook_point *pcancel = define(core, "t.cancel", 40, GN_HOOK_REJECT);
	reg(m1, "t.cancel", 0, 0, pend_fn, &p8);
	done_reset();
	h = gn_hook_run(pcancel, NULL, on_done, NULL);
	ok(h != NULL, "pending run for cancel");
	gn_hook_cancel(h);
	is_int(p8.cancels, 1, "gn_hook_cancel runs the pending hook's cancel function");
	run_until(never, 120);
	is_int(done.calls, 0, "after gn_hook_cancel, done is never called (not by completion, not by timeout)");

	/* Definitions and registrations that are refused. */
	error = NULL;
	ok(gn_hook_point_define(core, "t.order", 10, GN_HOOK_CONTINUE, &error) < 0, "a point name is defined once");
	like(error, "already defined", "the error says so");
	ok(gn_hook_point_define(core, "t.disc", 10, GN_HOOK_DISCONNECT, &error) < 0, "disconnect is not a default result");
	ok(gn_hook_point_define(core, "bad name", 10, GN_HOOK_CONTINUE, &error) < 0, "a point name has no spaces");
	ok(gn_hook_register(m1, "t.order", 0, 0, NULL, NULL, &error) < 0, "a hook needs a function");
	ok(gn_hook_point_find("t.none") == NULL, "an unknown point is not found");
	done_reset();
	ok(gn_hook_run(NULL, NULL, on_done, NULL) == NULL && done.calls == 1 &&
	   done.result == GN_HOOK_CONTINUE, "running no point continues at once");

	/* hooks_check: unknown points are errors unless the hook is optional. */
	reg(m1, "t.optional", 0, GN_HOOK_OPTIONAL_POINT, hook_fn, (void *)&A);
	size_t before = conf_error_count();
	is_int(hooks_check(), 0, "a hook on an unknown optional point is fine");
	reg(m2, "t.unknown", 0, 0, hook_fn, (void *)&A);
	is_int(hooks_check(), -1, "a hook on an unknown point is an error");
	is_int((long long)(conf_error_count() - before), 1, "recorded as one config error");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	conf_errors_print(mem);
	fclose(mem);
	like(buf, "module beta registers a hook on the unknown hook point \"t.unknown\"",
	     "the error names the module and the point");
	free(buf);

	/* After the register phase, registering is refused. */
	modules_register();
	error = NULL;
	ok(gn_hook_register(m1, "t.order", 0, 0, hook_fn, (void *)&A, &error) < 0,
	   "gn_hook_register after the register phase fails");
	like(error, "gn_hook_register called after the register phase", "with an error saying why");
	ok(gn_hook_point_define(m1, "t.late", 10, GN_HOOK_CONTINUE, &error) < 0,
	   "gn_hook_point_define after the register phase fails");

	hooks_free();
	ok(gn_hook_point_find("t.order") == NULL, "hooks_free forgets the points");
	return done_testing();
}
