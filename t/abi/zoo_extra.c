/*
 * t/abi/zoo_extra.c: a zoo module (ABI 1.0 headers) that zoo_app requires
 * optionally.  It hooks zoo.check, a point another module defines, logs
 * its start and stop, and checks that registering from start is refused.
 */
#include <gannet/module.h>
#include <gannet/hook.h>
#include <gannet/log.h>

static enum gn_hook_result extra_hook(struct gn_hook_call *call, void *data)
{
	(void)call;
	(void)data;
	return GN_HOOK_CONTINUE;
}

static int extra_register(struct gn_module_ctx *ctx, const char **error_r)
{
	return gn_hook_register(ctx, "zoo.check", 10, 0, extra_hook, NULL, error_r);
}

static int extra_start(struct gn_module_ctx *ctx, const char **error_r)
{
	const char *late_error = NULL;
	(void)error_r;
	/* Registering outside the register phase must fail. */
	int late = gn_hook_register(ctx, "zoo.check", 0, 0, extra_hook, NULL, &late_error);
	gn_log(GN_LOG_INFO, "zoo_extra", "event=zoo_start module=%s slot=%u kind=%s late_register=%s",
	       gn_module_name(ctx), gn_module_slot(ctx), gn_module_process_kind(),
	       late < 0 && late_error != NULL ? "refused" : "accepted");
	return 0;
}

static void extra_stop(struct gn_module_ctx *ctx)
{
	gn_log(GN_LOG_INFO, "zoo_extra", "event=zoo_stop module=%s", gn_module_name(ctx));
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "zoo_extra",
	.version = "0.3",
	.register_fn = extra_register,
	.start_fn = extra_start,
	.stop_fn = extra_stop,
};
