/*
 * t/abi/zoo_base.c: a zoo module built against the frozen ABI 1.0 headers
 * (t/abi/include-1.0), which must keep loading into every later core.
 *
 * It uses most of what a module does: reads a setting of its section,
 * defines a hook point ("zoo.check") and hooks it, provides a service
 * ("zoo_base.v1"), keeps module data, and registers a CLI command
 * (`gannet zoo hello`) that prints what it sees and runs the chain, so the
 * integration tests can watch hooks of several modules work together.
 * It logs its start and stop so tests can see the order.
 */
#include <stdio.h>
#include <gannet/module.h>
#include <gannet/config.h>
#include <gannet/hook.h>
#include <gannet/log.h>
#include <gannet/cli.h>
#include <gannet/service.h>

struct zoo_base_ops {
	size_t size;
	int (*add)(int a, int b);
	const char *(*greeting)(void);
};

static struct {
	const char *greeting;
	struct gn_module_ctx *ctx;
	int started;
} zoo;

static int zoo_add(int a, int b)
{
	return a + b;
}

static const char *zoo_greeting(void)
{
	return zoo.greeting;
}

static const struct zoo_base_ops ops = {
	.size = sizeof(struct zoo_base_ops),
	.add = zoo_add,
	.greeting = zoo_greeting,
};

static enum gn_hook_result check_hook(struct gn_hook_call *call, void *data)
{
	(void)call;
	(void)data;
	return GN_HOOK_CONTINUE;
}

static const char *result_names[] = {
	"continue", "accept", "reject", "tempfail", "disconnect", "pending",
};

static void chain_done(enum gn_hook_result result,
		       const struct gn_hook_reply *reply, void *data)
{
	(void)data;
	printf("chain=%s code=%d enhanced=%s text=%s module=%s\n",
	       (unsigned)result < 6 ? result_names[result] : "?", reply->code,
	       reply->enhanced != NULL ? reply->enhanced : "-",
	       reply->text != NULL ? reply->text : "-",
	       reply->module != NULL ? reply->module : "-");
}

static int cmd_hello(int argc, char **argv, void *data)
{
	(void)data;
	printf("%s: greeting=%s slot=%u data=%s kind=%s started=%d args=%d\n",
	       argv[0], zoo.greeting, gn_module_slot(zoo.ctx),
	       gn_module_data(zoo.ctx) == &zoo ? "ok" : "lost",
	       gn_module_process_kind(), zoo.started, argc - 1);
	struct gn_hook_point *p = gn_hook_point_find("zoo.check");
	if (p == NULL) {
		printf("no hook point\n");
		return 1;
	}
	gn_hook_run(p, NULL, chain_done, NULL);
	fflush(stdout);
	return 0;
}

static int zoo_register(struct gn_module_ctx *ctx, const char **error_r)
{
	zoo.ctx = ctx;
	gn_module_set_data(ctx, &zoo);
	gn_config_string(gn_module_config(ctx), "greeting", "hello", &zoo.greeting);
	if (gn_hook_point_define(ctx, "zoo.check", 1000, GN_HOOK_TEMPFAIL, error_r) < 0 ||
	    gn_hook_register(ctx, "zoo.check", 10, 0, check_hook, NULL, error_r) < 0 ||
	    gn_service_provide(ctx, "zoo_base.v1", &ops, error_r) < 0 ||
	    gn_cli_register(ctx, "zoo hello", "[ARGS...]", cmd_hello, NULL, error_r) < 0)
		return -1;
	return 0;
}

static int zoo_start(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)error_r;
	zoo.started = 1;
	gn_log(GN_LOG_INFO, "zoo_base", "event=zoo_start module=%s slot=%u kind=%s",
	       gn_module_name(ctx), gn_module_slot(ctx), gn_module_process_kind());
	return 0;
}

static void zoo_stop(struct gn_module_ctx *ctx)
{
	gn_log(GN_LOG_INFO, "zoo_base", "event=zoo_stop module=%s", gn_module_name(ctx));
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "zoo_base",
	.version = "1.0.0",
	.register_fn = zoo_register,
	.start_fn = zoo_start,
	.stop_fn = zoo_stop,
};
