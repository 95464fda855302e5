/*
 * t/abi/zoo_app.c: a zoo module (ABI 1.0 headers) that requires zoo_base,
 * and zoo_extra and zoo_absent optionally.  It uses zoo_base's service in
 * its register phase (so it must be registered after zoo_base), hooks
 * zoo.check twice (priority 5 continues, priority 20 rejects with a
 * reply), and hooks a point nobody defines with GN_HOOK_OPTIONAL_POINT.
 */
#include <stddef.h>
#include <gannet/module.h>
#include <gannet/hook.h>
#include <gannet/log.h>
#include <gannet/service.h>

struct zoo_base_ops {
	size_t size;
	int (*add)(int a, int b);
	const char *(*greeting)(void);
};

static enum gn_hook_result app_first(struct gn_hook_call *call, void *data)
{
	(void)call;
	(void)data;
	return GN_HOOK_CONTINUE;
}

static enum gn_hook_result app_reject(struct gn_hook_call *call, void *data)
{
	(void)data;
	gn_hook_call_reply(call, 550, "5.7.1", "zoo_app says no to %s",
			   gn_hook_call_point(call));
	return GN_HOOK_REJECT;
}

static int app_register(struct gn_module_ctx *ctx, const char **error_r)
{
	const struct zoo_base_ops *ops = gn_service_lookup("zoo_base.v1");
	if (ops == NULL || !GN_OPS_HAS(ops, greeting) || ops->add(2, 3) != 5) {
		*error_r = "service zoo_base.v1 missing or incomplete";
		return -1;
	}
	gn_log(GN_LOG_INFO, "zoo_app", "event=zoo_register provider=%s extra=%d absent=%d",
	       gn_service_provider("zoo_base.v1"), gn_module_is_loaded("zoo_extra"),
	       gn_module_is_loaded("zoo_absent"));
	if (gn_hook_register(ctx, "zoo.check", 20, 0, app_reject, NULL, error_r) < 0 ||
	    gn_hook_register(ctx, "zoo.check", 5, 0, app_first, NULL, error_r) < 0 ||
	    gn_hook_register(ctx, "zoo.nowhere", 0, GN_HOOK_OPTIONAL_POINT, app_first,
			     NULL, error_r) < 0)
		return -1;
	return 0;
}

static int app_start(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)error_r;
	gn_log(GN_LOG_INFO, "zoo_app", "event=zoo_start module=%s slot=%u kind=%s",
	       gn_module_name(ctx), gn_module_slot(ctx), gn_module_process_kind());
	return 0;
}

static void app_stop(struct gn_module_ctx *ctx)
{
	gn_log(GN_LOG_INFO, "zoo_app", "event=zoo_stop module=%s", gn_module_name(ctx));
}

static const struct gn_module_require app_requires[] = {
	{ "zoo_base", 0 },
	{ "zoo_extra", GN_REQUIRE_OPTIONAL },
	{ "zoo_absent", GN_REQUIRE_OPTIONAL },
	{ NULL, 0 },
};

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "zoo_app",
	.version = "2.1",
	.requires = app_requires,
	.register_fn = app_register,
	.start_fn = app_start,
	.stop_fn = app_stop,
};
