/* t/abi/bad_cycle_b.c: requires bad_cycle_a, which requires it back. */
#include <gannet/module.h>

static const struct gn_module_require reqs[] = {
	{ "bad_cycle_a", 0 },
	{ NULL, 0 },
};

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "bad_cycle_b",
	.version = "1",
	.requires = reqs,
};
