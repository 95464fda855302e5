/*
 * plugins/hello/hello.c: a third-party-style Gannet module.
 *
 * It is built the way an outsider builds a plugin: only against the
 * installed <gannet/gannet.h> and `pkg-config gannet` (see Makefile and
 * README beside it), never against the core's source tree.  It exercises
 * the public ABI end to end:
 *
 *   descriptor   gannet_module_v1, the one exported symbol;
 *   config       its own section: hello = { greeting = "..."; };
 *   hooks        defines the hook point "hello.line" and registers a hook
 *                on it that rejects lines containing "forbidden";
 *   protocol     "hello-echo", a tiny line protocol to attach to a
 *                listener (listeners = ({ ...; protocol = "hello-echo"; }));
 *   slots        counts the lines of each connection in the module's slot.
 *
 * The protocol, one line per command, one line per answer:
 *
 *   S: +OK <greeting>
 *   C: any line      S: the same line (after the "hello.line" chain let it
 *                       through), or -ERR <text the rejecting hook set>
 *   C: COUNT         S: +OK <lines received before this one>
 *   C: QUIT          S: +OK bye            (then the server closes)
 *   a line longer than the input limit: -ERR line too long, then close.
 *
 * Each line runs the chain of "hello.line" with the line (a NUL-terminated
 * string without its line end) as the context, so other modules may add
 * their own policy to this protocol, including hooks that complete later
 * (PENDING): input is paused until the chain's result comes back.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <gannet/gannet.h>

#define HELLO_AREA "hello"
#define HELLO_POINT "hello.line"
#define HELLO_DEFAULT_GREETING "hello from a plugin"
/* The longest line the protocol accepts, line end included. */
#define HELLO_MAX_LINE 1024
/* How long a pending hook on "hello.line" may take. */
#define HELLO_HOOK_TIMEOUT_MS 5000

/* The module's state, set in register, read by every connection. */
struct hello_module {
	const char *greeting;
	unsigned slot;
	struct gn_hook_point *point;	/* looked up in start */
};

/* One connection. */
struct hello_session {
	struct gn_conn *conn;
	struct hello_module *mod;
	struct gn_hook_call *pending;	/* a hook chain still running */
	char *line;			/* the line it runs on (gn_malloc) */
	bool stopping;			/* the server asked us to end */
};

static struct hello_module hello_state;

static unsigned long *hello_counter(struct gn_conn *conn,
				    const struct hello_module *mod)
{
	return gn_conn_slot_get(conn, mod->slot);
}

static void hello_line_too_long(struct gn_conn *conn, void *data)
{
	(void)data;
	gn_log(GN_LOG_INFO, HELLO_AREA, "event=line_too_long conn=%s",
	       gn_conn_id(conn));
	gn_conn_printf(conn, "-ERR line too long\r\n");
	gn_conn_close(conn, "line too long");
}

/* The end of a "hello.line" chain: answer for the line it ran on. */
static void hello_line_done(enum gn_hook_result result,
			    const struct gn_hook_reply *reply, void *done_data)
{
	struct hello_session *s = done_data;
	struct gn_conn *conn = s->conn;
	bool was_pending = s->pending != NULL;

	s->pending = NULL;
	switch (result) {
	case GN_HOOK_REJECT:
	case GN_HOOK_TEMPFAIL:
		gn_log(GN_LOG_INFO, HELLO_AREA,
		       "event=line_rejected conn=%s by=%s", gn_conn_id(conn),
		       gn_log_quote(0, reply != NULL && reply->module != NULL ?
				    reply->module : "default"));
		gn_conn_printf(conn, "-ERR %s\r\n",
			       reply != NULL && reply->text != NULL ?
			       reply->text : "rejected");
		break;
	case GN_HOOK_DISCONNECT:
		gn_conn_printf(conn, "-ERR %s\r\n",
			       reply != NULL && reply->text != NULL ?
			       reply->text : "goodbye");
		gn_conn_close(conn, "disconnected by hook");
		break;
	default:
		gn_conn_printf(conn, "%s\r\n", s->line);
		break;
	}
	gn_free(s->line);
	s->line = NULL;

	if (!gn_conn_is_closed(conn)) {
		if (s->stopping) {
			gn_conn_printf(conn, "-ERR server stopping\r\n");
			gn_conn_close(conn, "shutdown");
		} else if (was_pending) {
			/* Resuming calls input() from the loop when more
			 * lines wait. */
			gn_conn_input_resume(conn);
		}
	}
	/* Last: this may free the connection and the session with it. */
	if (was_pending)
		gn_conn_unref(&conn);
}

/* One command line, without its line end.  Returns false when the
 * connection must not read further for now (closed, or a hook pends). */
static bool hello_command(struct hello_session *s, const char *line,
			  size_t len)
{
	struct gn_conn *conn = s->conn;
	unsigned long *count = hello_counter(conn, s->mod);
	unsigned long before = *count;
	struct gn_hook_call *call;

	(*count)++;
	if (len == 4 && strncmp(line, "QUIT", 4) == 0) {
		gn_conn_printf(conn, "+OK bye\r\n");
		gn_conn_close(conn, "quit");
		return false;
	}
	if (len == 5 && strncmp(line, "COUNT", 5) == 0) {
		gn_conn_printf(conn, "+OK %lu\r\n", before);
		return true;
	}

	/* The line as a string for the hooks: the chain may outlive this
	 * call (PENDING), the input buffer may not. */
	s->line = gn_strndup(line, len);
	call = gn_hook_run(s->mod->point, s->line, hello_line_done, s);
	if (call == NULL)	/* done already ran */
		return !gn_conn_is_closed(conn);
	/* A hook pends: keep the connection until done comes back. */
	s->pending = call;
	gn_conn_ref(conn);
	gn_conn_input_pause(conn);
	return false;
}

static void hello_input(struct gn_conn *conn, void *data)
{
	struct hello_session *s = gn_conn_data(conn);
	const char *line;
	size_t len;
	int r;

	while (s->pending == NULL && !gn_conn_is_closed(conn)) {
		r = gn_conn_read_line(conn, &line, &len);
		if (r == 0)
			return;
		if (r < 0) {
			hello_line_too_long(conn, data);
			return;
		}
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!hello_command(s, line, len))
			return;
	}
}

static int hello_open(struct gn_conn *conn, void *data)
{
	struct hello_module *mod = data;
	struct gn_pool *pool = gn_conn_pool(conn);
	struct hello_session *s = gn_pool_alloc(pool, sizeof(*s));

	s->conn = conn;
	s->mod = mod;
	gn_conn_set_data(conn, s);
	/* The per-connection line count lives in the module's slot, the way
	 * a module keeps data on core objects without a field of its own. */
	gn_conn_slot_set(conn, mod->slot,
			 gn_pool_alloc(pool, sizeof(unsigned long)));
	gn_log(GN_LOG_DEBUG, HELLO_AREA, "event=open conn=%s remote=%s",
	       gn_conn_id(conn), gn_conn_remote_ip(conn));
	return gn_conn_printf(conn, "+OK %s\r\n", mod->greeting) < 0 ? -1 : 0;
}

static void hello_timeout(struct gn_conn *conn, void *data)
{
	(void)data;
	gn_conn_printf(conn, "-ERR idle timeout\r\n");
}

static void hello_shutdown(struct gn_conn *conn, void *data)
{
	struct hello_session *s = gn_conn_data(conn);

	(void)data;
	if (s->pending != NULL) {
		/* Answer the line first; done closes. */
		s->stopping = true;
		return;
	}
	gn_conn_printf(conn, "-ERR server stopping\r\n");
	gn_conn_close(conn, "shutdown");
}

static void hello_close(struct gn_conn *conn, void *data)
{
	struct hello_session *s = gn_conn_data(conn);
	struct gn_conn *ref = conn;
	unsigned long *count;

	(void)data;
	if (s == NULL)
		return;
	if (s->pending != NULL) {
		gn_hook_cancel(s->pending);
		s->pending = NULL;
		gn_conn_unref(&ref);
	}
	gn_free(s->line);
	s->line = NULL;
	count = hello_counter(conn, s->mod);
	gn_log(GN_LOG_DEBUG, HELLO_AREA, "event=close conn=%s lines=%lu",
	       gn_conn_id(conn), count != NULL ? *count : 0);
}

static const struct gn_protocol hello_protocol = {
	.size = sizeof(struct gn_protocol),
	.name = "hello-echo",
	.max_input = HELLO_MAX_LINE,
	.open = hello_open,
	.input = hello_input,
	.input_full = hello_line_too_long,
	.timeout = hello_timeout,
	.shutdown = hello_shutdown,
	.close = hello_close,
};

/* The module's own policy on "hello.line": no line with "forbidden". */
static enum gn_hook_result hello_forbid(struct gn_hook_call *call, void *data)
{
	const char *line = gn_hook_call_context(call);

	(void)data;
	if (line != NULL && strstr(line, "forbidden") != NULL) {
		gn_hook_call_reply(call, 550, "5.7.1",
				   "that word is forbidden here");
		return GN_HOOK_REJECT;
	}
	return GN_HOOK_CONTINUE;
}

static int hello_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *conf = gn_module_config(ctx);
	struct hello_module *mod = &hello_state;

	gn_config_string(conf, "greeting", HELLO_DEFAULT_GREETING,
			 &mod->greeting);
	if (strpbrk(mod->greeting, "\r\n") != NULL) {
		gn_config_error(conf, "greeting", "must be a single line");
		mod->greeting = HELLO_DEFAULT_GREETING;
	}
	mod->slot = gn_module_slot(ctx);
	gn_module_set_data(ctx, mod);

	if (gn_hook_point_define(ctx, HELLO_POINT, HELLO_HOOK_TIMEOUT_MS,
				 GN_HOOK_CONTINUE, error_r) < 0)
		return -1;
	if (gn_hook_register(ctx, HELLO_POINT, 100, 0, hello_forbid, mod,
			     error_r) < 0)
		return -1;
	if (gn_protocol_register(ctx, &hello_protocol, mod, error_r) < 0)
		return -1;
	gn_log(GN_LOG_DEBUG, HELLO_AREA, "event=register greeting=%s",
	       gn_log_quote(0, mod->greeting));
	return 0;
}

static int hello_start(struct gn_module_ctx *ctx, const char **error_r)
{
	struct hello_module *mod = gn_module_data(ctx);

	mod->point = gn_hook_point_find(HELLO_POINT);
	if (mod->point == NULL) {
		*error_r = "hook point " HELLO_POINT " is not defined";
		return -1;
	}
	gn_log(GN_LOG_INFO, HELLO_AREA, "event=start process=%s",
	       gn_module_process_kind());
	return 0;
}

static void hello_stop(struct gn_module_ctx *ctx)
{
	(void)ctx;
	gn_log(GN_LOG_INFO, HELLO_AREA, "event=stop process=%s",
	       gn_module_process_kind());
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "hello",
	.version = "1.0",
	.requires = NULL,
	.register_fn = hello_register,
	.start_fn = hello_start,
	.stop_fn = hello_stop,
};
