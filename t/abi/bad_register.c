/* t/abi/bad_register.c: its register fails. */
#include <gannet/module.h>

static int bad_register_fn(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)ctx;
	*error_r = "refusing to register on purpose";
	return -1;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "bad_register",
	.version = "1",
	.register_fn = bad_register_fn,
};
