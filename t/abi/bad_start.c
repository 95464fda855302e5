/* t/abi/bad_start.c: its start fails.  It requires zoo_app, so the modules
 * started before it (zoo_base, zoo_extra, zoo_app) must be stopped in
 * reverse order. */
#include <gannet/module.h>
#include <gannet/log.h>

static int bad_start_fn(struct gn_module_ctx *ctx, const char **error_r)
{
	gn_log(GN_LOG_INFO, "bad_start", "event=zoo_start_failing module=%s", gn_module_name(ctx));
	*error_r = "refusing to start on purpose";
	return -1;
}

static void bad_stop_fn(struct gn_module_ctx *ctx)
{
	/* Must not run: a module whose start failed is not stopped. */
	gn_log(GN_LOG_ERROR, "bad_start", "event=zoo_stop module=%s", gn_module_name(ctx));
}

static const struct gn_module_require reqs[] = {
	{ "zoo_app", 0 },
	{ NULL, 0 },
};

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "bad_start",
	.version = "1",
	.requires = reqs,
	.start_fn = bad_start_fn,
	.stop_fn = bad_stop_fn,
};
