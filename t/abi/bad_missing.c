/* t/abi/bad_missing.c: requires a module that is never loaded. */
#include <gannet/module.h>

static const struct gn_module_require reqs[] = {
	{ "zoo_base", GN_REQUIRE_OPTIONAL },
	{ "zoo_not_there", 0 },
	{ NULL, 0 },
};

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "bad_missing",
	.version = "1",
	.requires = reqs,
};
