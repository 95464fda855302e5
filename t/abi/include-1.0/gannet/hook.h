/*
 * gannet/hook.h: ordered chains of policy hooks.
 *
 * A hook point is a named chain ("smtp.rcpt", "deliver.after", ...) with a
 * timeout and a default result.  Modules register hooks on points in their
 * register phase, each with a priority: lower numbers run first; equal
 * priorities run in module load order, then registration order, so the
 * order is the same every time.
 *
 * Running a chain calls the hooks in order.  CONTINUE passes to the next
 * hook; any other result ends the chain and is the chain's result.  When
 * every hook continues, the result is CONTINUE.  A hook that needs to wait
 * (DNS, an HTTP call) returns PENDING and later calls gn_hook_complete()
 * from the event loop.  A hook that does not complete within the point's
 * timeout, or returns a value that is not a result, gets the point's
 * default result in its place, with a log line: a failing hook never takes
 * a session down.
 *
 * The context pointer given to gn_hook_run() is the point's own data (the
 * SMTP transaction for "smtp.rcpt", and so on), documented where the point
 * is defined.
 */
#ifndef GANNET_HOOK_H
#define GANNET_HOOK_H

#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum gn_hook_result {
	GN_HOOK_CONTINUE = 0,	/* no opinion: next hook */
	GN_HOOK_ACCEPT = 1,	/* accept now, skip the rest */
	GN_HOOK_REJECT = 2,	/* permanent failure (5xx) */
	GN_HOOK_TEMPFAIL = 3,	/* temporary failure (4xx) */
	GN_HOOK_DISCONNECT = 4,	/* end the session */
	GN_HOOK_PENDING = 5,	/* will complete through gn_hook_complete() */
};

/* What a REJECT, TEMPFAIL or DISCONNECT says to the peer.  Frozen on
 * purpose: the core hands one to done callbacks and modules build their
 * own to pass back (gn_smtp_answer_hook()), so neither side could tell
 * whether the other has a member added later.  A reply is an SMTP-style
 * code, an enhanced code, a text and who decided; protocols with other
 * reply shapes map from these. */
struct gn_hook_reply {
	int code;		/* SMTP-style code, e.g. 550; 0 when unset */
	const char *enhanced;	/* "5.7.1"; NULL when unset */
	const char *text;	/* human text; NULL when unset */
	const char *module;	/* the module whose hook decided; NULL if none */
};

struct gn_hook_point;	/* opaque */
struct gn_hook_call;	/* one run of a chain; opaque */

typedef enum gn_hook_result gn_hook_fn(struct gn_hook_call *call, void *data);
typedef void gn_hook_done_fn(enum gn_hook_result result,
			     const struct gn_hook_reply *reply, void *done_data);
typedef void gn_hook_cancel_fn(struct gn_hook_call *call, void *data);

/* Defines a hook point; register phase.  timeout_ms bounds each pending
 * hook; default_result (CONTINUE, ACCEPT, REJECT or TEMPFAIL) replaces the
 * result of a hook that times out or misbehaves.  Returns 0, or -1 when the
 * name is taken or the arguments are invalid. */
int gn_hook_point_define(struct gn_module_ctx *ctx, const char *name,
			 unsigned long timeout_ms,
			 enum gn_hook_result default_result,
			 const char **error_r);

/* Looks up a point by name (after register); NULL when none. */
struct gn_hook_point *gn_hook_point_find(const char *name);

/* Adds fn to a point's chain; register phase.  The point may be defined by
 * a module that registers later: unknown points are reported once every
 * module has registered, unless the hook is registered with
 * GN_HOOK_OPTIONAL_POINT in priority's companion flags argument. */
#define GN_HOOK_OPTIONAL_POINT 0x1u
int gn_hook_register(struct gn_module_ctx *ctx, const char *point,
		     int priority, unsigned flags, gn_hook_fn *fn, void *data,
		     const char **error_r);

/* Runs the chain of point with context.  done is called exactly once with
 * the chain's result: before gn_hook_run() returns when no hook pends (and
 * then NULL is returned), otherwise later from the event loop, and the
 * returned handle may be given to gn_hook_cancel().  The reply is valid only
 * during the done call. */
struct gn_hook_call *gn_hook_run(struct gn_hook_point *point, void *context,
				 gn_hook_done_fn *done, void *done_data);

/* Stops a pending run (its session went away): done is not called, and the
 * pending hook's cancel function runs if it set one. */
void gn_hook_cancel(struct gn_hook_call *call);

/* For hooks. */
void *gn_hook_call_context(const struct gn_hook_call *call);
const char *gn_hook_call_point(const struct gn_hook_call *call);
/* Sets what a REJECT, TEMPFAIL or DISCONNECT result says; the strings are
 * copied.  enhanced may be NULL. */
void gn_hook_call_reply(struct gn_hook_call *call, int code,
			const char *enhanced, const char *fmt, ...) GN_PRINTF(4, 5);
/* A pending hook may set a cancel function: it runs when the core gives up
 * on the hook (timeout, gn_hook_cancel()); after it the hook must not call
 * gn_hook_complete().  Without one, a late gn_hook_complete() is accepted
 * and ignored. */
void gn_hook_call_on_cancel(struct gn_hook_call *call, gn_hook_cancel_fn *fn,
			    void *data);
/* Completes a hook that returned PENDING; exactly once. */
void gn_hook_complete(struct gn_hook_call *call, enum gn_hook_result result);

#ifdef __cplusplus
}
#endif
#endif
