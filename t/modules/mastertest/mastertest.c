/*
 * t/modules/mastertest/mastertest.c: a test module for the process tests
 * (t/integration/05x-*.t): a line protocol whose sessions show how a worker
 * stops, and a start that can be made to fail.
 *
 * Protocol "mastertest":
 *   greeting   "+READY pid=<worker pid>"
 *   QUIT       "+BYE", then the connection closes
 *   any line   echoed back
 * When the server stops (shutdown()), the session ends at its next clean
 * point: the command in progress, the next line the client sends, is
 * answered, followed by "+BYE stopping", and the connection closes.  A
 * client that sends nothing keeps the session open until the grace period
 * ends.
 *
 * Config: mastertest = { fail_start_in = "worker"; }  makes the start phase
 * fail in processes of that kind ("worker", "runner", "single").
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gannet/gannet.h>

static const char *fail_start_in = "";

struct session {
	bool stopping;
};

static int mt_open(struct gn_conn *conn, void *data)
{
	(void)data;
	struct session *s = gn_pool_alloc(gn_conn_pool(conn), sizeof(*s));
	gn_conn_set_data(conn, s);
	return gn_conn_printf(conn, "+READY pid=%d\r\n", (int)getpid());
}

static void mt_input(struct gn_conn *conn, void *data)
{
	(void)data;
	struct session *s = gn_conn_data(conn);
	const char *line;
	size_t len;
	int r;
	while (!gn_conn_is_closed(conn) && (r = gn_conn_read_line(conn, &line, &len)) != 0) {
		if (r < 0) {
			gn_conn_close(conn, "line too long");
			return;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 4 && strncmp(line, "QUIT", 4) == 0) {
			gn_conn_printf(conn, "+BYE\r\n");
			gn_conn_close(conn, "quit");
			return;
		}
		gn_conn_write(conn, line, len);
		gn_conn_write(conn, "\r\n", 2);
		if (s->stopping) {
			gn_conn_printf(conn, "+BYE stopping\r\n");
			gn_conn_close(conn, "server stopping");
			return;
		}
	}
}

static void mt_shutdown(struct gn_conn *conn, void *data)
{
	(void)data;
	struct session *s = gn_conn_data(conn);
	if (s != NULL)
		s->stopping = true;
}

static void mt_close(struct gn_conn *conn, void *data)
{
	(void)conn;
	(void)data;
}

static const struct gn_protocol mt_protocol = {
	.size = sizeof(struct gn_protocol),
	.name = "mastertest",
	.open = mt_open,
	.input = mt_input,
	.shutdown = mt_shutdown,
	.close = mt_close,
};

static int mt_register(struct gn_module_ctx *ctx, const char **error_r)
{
	gn_config_string(gn_module_config(ctx), "fail_start_in", "", &fail_start_in);
	return gn_protocol_register(ctx, &mt_protocol, NULL, error_r);
}

static int mt_start(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)ctx;
	if (strcmp(fail_start_in, gn_module_process_kind()) == 0) {
		*error_r = "mastertest: start fails here on purpose (fail_start_in)";
		return -1;
	}
	return 0;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "mastertest",
	.version = "1.0",
	.register_fn = mt_register,
	.start_fn = mt_start,
};
